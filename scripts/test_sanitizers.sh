#!/usr/bin/env bash
# Runs the whole test suite twice more, built with AddressSanitizer (+ LeakSanitizer) and with
# ThreadSanitizer, each in its own scratch folder (the two cannot share one build):
#
#   bash scripts/test_sanitizers.sh            # both
#   bash scripts/test_sanitizers.sh address    # one of: address thread
#
# Leak checking stays on: XCTest's own leaks are suppressed by module through
# Tests/SanitizerSupport (LeakSanitizer's __lsan_default_suppressions hook), nothing else is.
# Any sanitizer report fails the run (halt_on_error / exitcode), so does any test failure.
# formats/fuzzing.md §5 has the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
sanitizers=("$@")
[ ${#sanitizers[@]} -eq 0 ] && sanitizers=(address thread)
for s in "${sanitizers[@]}"; do
    case "$s" in
        address) scratch=.build-asan ;;
        thread) scratch=.build-tsan ;;
        *) echo "test_sanitizers.sh: unknown sanitizer '$s' (address or thread)" >&2; exit 2 ;;
    esac
    echo "== swift test --sanitize=$s ($scratch)"
    start=$(date +%s)
    swift build --build-tests --sanitize="$s" --scratch-path "$scratch"
    ASAN_OPTIONS="${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1}" \
    TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1}" \
        swift test --skip-build --sanitize="$s" --scratch-path "$scratch"
    echo "== --sanitize=$s passed in $(( $(date +%s) - start )) s"
done
