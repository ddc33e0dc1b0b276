// Linked into the pixconv executable only. In a `--sanitize=address` build LeakSanitizer asks the
// program for default suppressions through this weak hook; without a sanitizer nothing calls it.
//
// The one leak: swift-corelibs-foundation's `_CFRegularExpressionCreate` mallocs a UTF-16 copy of
// a pattern longer than its stack buffer and never frees it (594 bytes for a 200-character pattern,
// reproduced with a bare NSRegularExpression outside pixconv). The caption cleaner compiles each of
// its fixed patterns once and caches it, so the leak is bounded (once per pattern, about 20 KB) and
// suppressed by that one function; every other leak still fails a sanitizer run.
#include "leak_suppressions.h"

const char *__lsan_default_suppressions(void) {
    return "leak:_CFRegularExpressionCreate\n";
}
