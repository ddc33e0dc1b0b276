// Linked into the test runner only. When the tests are built with `swift test --sanitize=address`,
// LeakSanitizer asks the program for its default suppressions through this weak hook. The only
// leaks in the suite are XCTest's own (its test-list closures, test names and XCTestCase
// instances, about 110 KB in 1 500 allocations, no pixconv frame in any stack; formats/fuzzing.md
// §5), so they are suppressed by module and leak checking stays on for everything else.
// Without a sanitizer nothing calls this function.
#include "sanitizer_support.h"

const char *__lsan_default_suppressions(void) {
    // And Foundation's one (Sources/CLeakSuppressions/leak_suppressions.c says why): the caption
    // cleaner runs in the test process too.
    return "leak:libXCTest.so\nleak:_CFRegularExpressionCreate\n";
}
