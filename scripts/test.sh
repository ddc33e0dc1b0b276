#!/usr/bin/env bash
# Runs every test: installs the system libraries, builds, runs the Swift test suite, then the
# verify gate: every store type converted from the bundled fixtures must pass `pixconv verify`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
swift build --build-tests
swift test --skip-build
bash scripts/verify_fixtures.sh "$(swift build --show-bin-path)/pixconv"
