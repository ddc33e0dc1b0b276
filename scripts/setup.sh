#!/usr/bin/env bash
# Sets everything up and runs the main job on the bundled tiny model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
swift build -c release --product pixconv
bin=$(swift build -c release --show-bin-path)/pixconv
echo "== pixconv inspect fixtures/tiny-pixart-512/transformer"
"$bin" inspect fixtures/tiny-pixart-512/transformer
