#!/usr/bin/env bash
# Sets everything up and runs the main job on the bundled tiny PixArt-α models:
# convert the random test pipeline's diffusers folder to a q8_0 store, generate an image from the
# store, and verify the store against the bundled diffusers reference images, printing the figures;
# then the same for the trained demo model (fixtures/demo-pixart, scripts/train_demo.py), whose
# contact sheet of prompts (colours × shapes) shows that the pipeline draws what it is asked.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
swift build -c release --product pixconv
bin=$(swift build -c release --show-bin-path)/pixconv
out=${PIXCONV_OUT:-out}
mkdir -p "$out"

echo "== 1. inspect the bundled diffusers pipeline"
"$bin" inspect fixtures/tiny-pixart-512 > "$out/inspect.txt"
sed -n '1,7p' "$out/inspect.txt"
echo "== 2. convert it to a q8_0 store"
"$bin" convert fixtures/tiny-pixart-512 -o "$out/tiny-pixart-512.q8_0.gguf" --type q8_0 --force
"$bin" inspect "$out/tiny-pixart-512.q8_0.gguf" > "$out/inspect-store.txt"
sed -n '1,8p' "$out/inspect-store.txt"
echo "== 3. generate an image from the store"
"$bin" generate --model "$out/tiny-pixart-512.q8_0.gguf" --prompt "a small cactus with a happy face in the sahara desert" \
  --seed 0 --steps 20 --height 32 --width 32 -o "$out/cactus.png"
echo "== 4. verify the store: integrity, then against the diffusers reference images"
"$bin" verify --model "$out/tiny-pixart-512.q8_0.gguf"
"$bin" verify --model "$out/tiny-pixart-512.q8_0.gguf" --reference fixtures/reference-512 --save-diff "$out/diffs"

echo "== 5. the trained demo model: convert to q8_0, draw a contact sheet, verify against diffusers"
"$bin" convert fixtures/demo-pixart -o "$out/demo-pixart.q8_0.gguf" --type q8_0 --force
"$bin" generate --model "$out/demo-pixart.q8_0.gguf" --prompts fixtures/demo-sheet/prompts.txt --columns 6 \
  --seed 0 -o "$out/demo-contact-sheet.png"
"$bin" verify --model "$out/demo-pixart.q8_0.gguf" --reference fixtures/reference-demo --save-diff "$out/demo-diffs"
