#!/usr/bin/env bash
# The CI gate of `pixconv verify`: converts the bundled pipelines (the tiny random PixArt-α 512 and
# 1024-MS, the tiny random PixArt-Σ 512, 1024 and 2K, the trained demo model) to every store type
# and verifies each store (integrity, then its diffusers reference bundle with the default thresholds).
# Prints "N passed, M failed" and exits non-zero if any check fails.
set -uo pipefail
cd "$(dirname "$0")/.."
bin=${1:-$(swift build --show-bin-path)/pixconv}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
for pair in tiny-pixart-512:reference-512 tiny-pixart-1024ms:reference-1024ms \
            tiny-pixart-sigma-512:reference-sigma-512 tiny-pixart-sigma-1024:reference-sigma-1024 \
            tiny-pixart-sigma-2k:reference-sigma-2k demo-pixart:reference-demo; do
  folder=${pair%%:*} bundle=${pair#*:} model=${pair#*:reference-}
  for type in f32 f16 bf16 q8_0 q4_0; do
    store="$tmp/$folder.$type.gguf"
    if "$bin" convert "fixtures/$folder" -o "$store" --type "$type" >/dev/null \
       && "$bin" verify --model "$store" >/dev/null \
       && "$bin" verify --model "$store" --reference "fixtures/$bundle" > "$tmp/out.txt"; then
      passed=$((passed + 1)); echo "verify $model $type: ok ($(tail -1 "$tmp/out.txt"))"
    else
      failed=$((failed + 1)); echo "verify $model $type: FAILED"; cat "$tmp/out.txt" 2>/dev/null
    fi
  done
done
echo "verify: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
