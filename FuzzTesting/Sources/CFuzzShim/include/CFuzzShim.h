#ifndef PIXCONV_CFUZZSHIM_H
#define PIXCONV_CFUZZSHIM_H
#include <stddef.h>
#include <stdint.h>

/// libFuzzer's driver (compiler-rt `FuzzerDriver.cpp`), linked by `-sanitize=fuzzer`.
/// SwiftPM links executables with its own `main`, so the harness hands control to libFuzzer here.
int LLVMFuzzerRunDriver(int *argc, char ***argv,
                        int (*UserCb)(const uint8_t *Data, size_t Size));
#endif
