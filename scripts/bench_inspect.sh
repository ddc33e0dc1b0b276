#!/usr/bin/env bash
# Benchmark (issue: foundation): `pixconv inspect` on a full-size PixArt-XL-2 transformer must read
# no tensor data: well under a second and under 50 MB peak RSS, for safetensors and torch zip.
# Usage: bash scripts/bench_inspect.sh [PYTHON]   (PYTHON has torch + diffusers; default venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
py=${1:-venv/bin/python}
out=/tmp/pixconv-bench
[ -f "$out/PixArt-XL-2-512x512.pth" ] || "$py" scripts/make_fullsize_checkpoint.py --out "$out"
swift build -c release --product pixconv >/dev/null
bin=$(swift build -c release --show-bin-path)/pixconv
for f in "$out/transformer/diffusion_pytorch_model.safetensors" "$out/PixArt-XL-2-512x512.pth"; do
  size=$(stat -c %s "$f")
  /usr/bin/time -f "%e %M" -o /tmp/pixconv-time "$bin" inspect "$f" >/dev/null
  read -r secs kb < /tmp/pixconv-time
  echo "inspect $(basename "$f") ($((size / 1000000)) MB): ${secs} s, peak RSS $((kb / 1024)) MB"
done
