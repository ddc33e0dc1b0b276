// See include/file_guard.h. Everything the signal handler touches is a static table of slots
// whose state is an atomic int: 0 free, 1 being filled or emptied, 2 published.
#define _GNU_SOURCE
#include "file_guard.h"

#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

enum { FREE = 0, BUSY = 1, LIVE = 2 };
enum { MAP_SLOTS = 256, MAP_PATH = PIXCONV_FILE_GUARD_MAP_PATH, TEMP_SLOTS = 32, TEMP_PATH = PATH_MAX };

struct map_slot {
    atomic_int state;
    uintptr_t base;
    size_t length;
    char path[MAP_PATH];
};

struct temp_slot {
    atomic_int state;
    char path[TEMP_PATH];
};

static struct map_slot maps[MAP_SLOTS];
static struct temp_slot temps[TEMP_SLOTS];
static atomic_int installed;
static atomic_int handling;  // the first faulting thread reports; others wait for its _exit

static int claim(atomic_int *state) {
    int expected = FREE;
    return atomic_compare_exchange_strong(state, &expected, BUSY);
}

int pixconv_file_guard_mapped(const void *base, size_t length, const char *path) {
    if (base == NULL || length == 0 || path == NULL) return -1;
    for (int i = 0; i < MAP_SLOTS; i++) {
        if (!claim(&maps[i].state)) continue;
        maps[i].base = (uintptr_t)base;
        maps[i].length = length;
        strncpy(maps[i].path, path, MAP_PATH - 1);
        maps[i].path[MAP_PATH - 1] = '\0';
        atomic_store(&maps[i].state, LIVE);
        return i;
    }
    return -1;
}

void pixconv_file_guard_unmapped(int slot) {
    if (slot < 0 || slot >= MAP_SLOTS) return;
    atomic_store(&maps[slot].state, FREE);
}

int pixconv_file_guard_temporary(const char *path) {
    if (path == NULL || strlen(path) >= TEMP_PATH) return -1;
    for (int i = 0; i < TEMP_SLOTS; i++) {
        if (!claim(&temps[i].state)) continue;
        strcpy(temps[i].path, path);
        atomic_store(&temps[i].state, LIVE);
        return i;
    }
    return -1;
}

void pixconv_file_guard_temporary_done(int slot) {
    if (slot < 0 || slot >= TEMP_SLOTS) return;
    atomic_store(&temps[slot].state, FREE);
}

// Async-signal-safe: reads published slots only.
static int find(uintptr_t address, int *slot) {
    for (int i = 0; i < MAP_SLOTS; i++) {
        if (atomic_load(&maps[i].state) != LIVE) continue;
        if (address >= maps[i].base && address - maps[i].base < maps[i].length) {
            *slot = i;
            return 1;
        }
    }
    return 0;
}

int pixconv_file_guard_lookup(const void *address, char *path, size_t capacity, uint64_t *offset) {
    int slot;
    if (!find((uintptr_t)address, &slot)) return 0;
    if (path != NULL && capacity > 0) {
        strncpy(path, maps[slot].path, capacity - 1);
        path[capacity - 1] = '\0';
    }
    if (offset != NULL) *offset = (uint64_t)((uintptr_t)address - maps[slot].base);
    return 1;
}

// --- the handler: write(2), unlink(2) and _exit(2) only ---

static size_t put(char *out, size_t at, size_t capacity, const char *text) {
    for (; *text != '\0' && at + 1 < capacity; text++) {
        unsigned char c = (unsigned char)*text;
        out[at++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;  // one line, no terminal controls
    }
    return at;
}

static size_t put_decimal(char *out, size_t at, size_t capacity, uint64_t value) {
    char digits[24];
    int n = 0;
    do { digits[n++] = (char)('0' + value % 10); value /= 10; } while (value != 0);
    while (n > 0 && at + 1 < capacity) out[at++] = digits[--n];
    return at;
}

static void on_sigbus(int signal, siginfo_t *info, void *context) {
    (void)signal;
    (void)context;
    // Two threads can fault on the same truncated file at once (the converter and the hasher):
    // one line, one clean-up.
    if (atomic_exchange(&handling, 1) != 0) {
        for (;;) pause();
    }
    char message[MAP_PATH + 256];
    size_t at = put(message, 0, sizeof message, "pixconv: ");
    int slot;
    uintptr_t address = (uintptr_t)info->si_addr;
    if (find(address, &slot)) {
        at = put(message, at, sizeof message, maps[slot].path);
        at = put(message, at, sizeof message, ": file changed while being read: byte ");
        at = put_decimal(message, at, sizeof message, (uint64_t)(address - maps[slot].base));
        at = put(message, at, sizeof message, " is past its end now (truncated or replaced by another process)");
    } else {
        at = put(message, at, sizeof message, "bus error: a mapped file changed while being read (truncated by another process?)");
    }
    int removed = 0;
    for (int i = 0; i < TEMP_SLOTS; i++) {
        if (atomic_load(&temps[i].state) == LIVE && unlink(temps[i].path) == 0) removed++;
    }
    // only a command that was writing something (convert, generate) has output to remove
    if (removed > 0) at = put(message, at, sizeof message, "; unfinished output removed");
    message[at++] = '\n';
    ssize_t ignored = write(STDERR_FILENO, message, at);
    (void)ignored;
    _exit(1);
}

void pixconv_file_guard_install(void) {
    int expected = 0;
    if (!atomic_compare_exchange_strong(&installed, &expected, 1)) return;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_sigbus;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    sigaction(SIGBUS, &action, NULL);
}
