#ifndef PIXCONV_FILE_GUARD_H
#define PIXCONV_FILE_GUARD_H

#include <stddef.h>
#include <stdint.h>

// A process-wide record of the files pixconv has mapped and of the temporary output files it is
// writing, readable from a signal handler (fixed tables, atomics, no allocation, no locks).
//
// A mapped file that another process truncates raises SIGBUS when a page past its new end is
// touched. With the handler installed (pixconv_file_guard_install, by the CLI), that becomes a
// one-line error naming the file and the byte offset, the temporary output files are removed and
// the process exits with status 1 instead of crashing and leaving a preallocated temporary file.

/// Longest mapped-file path kept, terminating NUL included (longer ones are cut).
#define PIXCONV_FILE_GUARD_MAP_PATH 1024

/// Records the mapping [base, base + length) of `path`. Returns a slot for
/// pixconv_file_guard_unmapped, or -1 when the table is full (the mapping is then only unnamed).
int pixconv_file_guard_mapped(const void *base, size_t length, const char *path);
void pixconv_file_guard_unmapped(int slot);

/// Records a temporary output file to remove if the process dies of SIGBUS. -1 when the table is
/// full or the path too long (the next writer's start-up still removes it).
int pixconv_file_guard_temporary(const char *path);
void pixconv_file_guard_temporary_done(int slot);

/// If `address` lies in a recorded mapping: copies its path (NUL-terminated, truncated to
/// `capacity`) and stores the byte offset; returns 1. Otherwise returns 0.
int pixconv_file_guard_lookup(const void *address, char *path, size_t capacity, uint64_t *offset);

/// Installs the SIGBUS handler (once; later calls do nothing).
void pixconv_file_guard_install(void);

#endif
