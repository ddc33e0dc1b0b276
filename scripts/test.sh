#!/usr/bin/env bash
# Runs every test: installs the system libraries, builds, and runs the Swift test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
swift build --build-tests
swift test --skip-build 2>&1 | tee /tmp/pixconv-test.log
