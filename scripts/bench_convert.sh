#!/usr/bin/env bash
# Benchmark (issue 3): conversion throughput and memory on the full-size PixArt-XL-2 transformer.
#   1. gguf-py (scripts/bench_convert.py): safetensors numpy read + gguf.quants.quantize to Q8_0
#      and F16 (pixconv's precision policy), streamed into a GGUF file, and quantize-only.
#   2. `pixconv convert` of the diffusers safetensors file and of the original .pth to q8_0 and
#      f16 (--force), page cache warmed first (cat FILE >/dev/null), under /usr/bin/time.
# Reports input GB/s (input file bytes / wall seconds), peak RSS, the ratio pixconv/gguf-py, and
# checks the issue's targets: >= 1 GB/s and peak RSS < largest tensor + 64 MB.
# Usage: bash scripts/bench_convert.sh [PYTHON]   (PYTHON has torch, diffusers, safetensors, gguf;
#        default venv/bin/python, else /work/venv/bin/python)
#   PIXCONV=path/to/pixconv skips the release build; SKIP_GGUFPY=1 reuses $out/out/gguf-py.json.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${1:-}
if [ -z "$py" ]; then
  if [ -x venv/bin/python ]; then py=venv/bin/python; else py=/work/venv/bin/python; fi
fi
out=/tmp/pixconv-bench
res=$out/out
mkdir -p "$res"
st=$out/transformer/diffusion_pytorch_model.safetensors
pth=$out/PixArt-XL-2-512x512.pth
[ -f "$pth" ] && [ -f "$st" ] || nice -n 10 "$py" scripts/make_fullsize_checkpoint.py --out "$out"

if [ "${SKIP_GGUFPY:-0}" != 1 ] || [ ! -s "$res/gguf-py.json" ]; then
  nice -n 10 "$py" scripts/bench_convert.py --input "$st" --out-dir "$res" > "$res/gguf-py.json.tmp"
  mv "$res/gguf-py.json.tmp" "$res/gguf-py.json"
fi

if [ -n "${PIXCONV:-}" ]; then
  bin=$PIXCONV
else
  swift build -c release --product pixconv >/dev/null
  bin=$(swift build -c release --show-bin-path)/pixconv
fi

: > "$res/pixconv-convert.tsv"
for f in "$st" "$pth"; do
  for t in q8_0 f16; do
    cat "$f" > /dev/null
    o=$res/pixconv.$(basename "$f" | tr . _).$t.gguf
    if /usr/bin/time -f "%e %M" -o "$res/time.txt" "$bin" convert "$f" -o "$o" --type "$t" --force \
        > "$res/convert.log" 2>&1; then
      read -r secs kb < "$res/time.txt"
      osize=$(stat -c %s "$o")
      printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$(basename "$f")" "$t" "$(stat -c %s "$f")" "$secs" "$kb" "$osize" \
        >> "$res/pixconv-convert.tsv"
    else
      echo "pixconv convert $(basename "$f") --type $t failed:" >&2
      tail -5 "$res/convert.log" >&2
      printf '%s\t%s\t%s\tfailed\t\t\n' "$(basename "$f")" "$t" "$(stat -c %s "$f")" >> "$res/pixconv-convert.tsv"
    fi
    rm -f "$o"
  done
done

"$py" - "$res/gguf-py.json" "$res/pixconv-convert.tsv" <<'EOF'
import json, sys
g = json.load(open(sys.argv[1]))
big = g["largest_tensor_bytes"]
limit_mb = big / 2**20 + 64
print(f"largest tensor: {g['largest_tensor']} {big} bytes ({big / 2**20:.1f} MiB); "
      f"RSS target < {limit_mb:.1f} MiB; speed target >= 1 GB/s")
print(f"{'tool':8} {'input':40} {'type':5} {'mode':9} {'s':>8} {'GB/s':>7} {'RSS MiB':>8} "
      f"{'vs gguf-py':>10} {'targets':>8}")
gp = {}
for r in g["runs"]:
    gp[(r["type"], r["mode"])] = r["input_gb_per_s"]
    print(f"{'gguf-py':8} {'diffusion_pytorch_model.safetensors':40} {r['type']:5} {r['mode']:9} "
          f"{r['seconds']:8.2f} {r['input_gb_per_s']:7.3f} {r['peak_rss_mb']:8.1f}")
for line in open(sys.argv[2]):
    name, t, size, secs, kb, osize = line.rstrip("\n").split("\t")
    if secs == "failed":
        print(f"{'pixconv':8} {name:40} {t:5} {'write':9} {'failed':>8}")
        continue
    gbs = int(size) / float(secs) / 1e9
    rss = int(kb) / 1024
    ref = gp.get((t, "write"))
    ratio = f"{gbs / ref:9.1f}x" if ref else " " * 10
    ok = "ok" if gbs >= 1 and rss < limit_mb else "MISSED"
    print(f"{'pixconv':8} {name:40} {t:5} {'write':9} {float(secs):8.2f} {gbs:7.3f} {rss:8.1f} "
          f"{ratio} {ok:>8}")
EOF
