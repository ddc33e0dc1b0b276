#!/usr/bin/env bash
# Runs every test: installs the system libraries, builds, runs the Swift test suite, then the
# verify gate: every store type converted from the bundled fixtures must pass `pixconv verify`,
# then the whole suite again under AddressSanitizer (with leak checking) and ThreadSanitizer
# (scripts/test_sanitizers.sh; PIXCONV_SKIP_SANITIZERS=1 leaves that out for a quick local run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh --test
swift build --build-tests
swift test --skip-build
bash scripts/verify_fixtures.sh "$(swift build --show-bin-path)/pixconv"
if [ "${PIXCONV_SKIP_SANITIZERS:-0}" != 1 ]; then
  bash scripts/test_sanitizers.sh
fi
