#!/usr/bin/env bash
# The CI gate of `pixconv verify`: converts both bundled tiny pipelines to every store type and
# verifies each store (integrity, then the diffusers reference bundle with the default thresholds).
# Prints "N passed, M failed" and exits non-zero if any check fails.
set -uo pipefail
cd "$(dirname "$0")/.."
bin=${1:-$(swift build --show-bin-path)/pixconv}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
for model in 512 1024ms; do
  for type in f32 f16 bf16 q8_0 q4_0; do
    store="$tmp/tiny-$model.$type.gguf"
    if "$bin" convert "fixtures/tiny-pixart-$model" -o "$store" --type "$type" >/dev/null \
       && "$bin" verify --model "$store" >/dev/null \
       && "$bin" verify --model "$store" --reference "fixtures/reference-$model" > "$tmp/out.txt"; then
      passed=$((passed + 1)); echo "verify $model $type: ok ($(tail -1 "$tmp/out.txt"))"
    else
      failed=$((failed + 1)); echo "verify $model $type: FAILED"; cat "$tmp/out.txt" 2>/dev/null
    fi
  done
done
echo "verify: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
