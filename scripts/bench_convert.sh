#!/usr/bin/env bash
# Benchmark (issue 3): conversion throughput and memory on the full-size PixArt-XL-2 transformer.
#   1. gguf-py (scripts/bench_convert.py): safetensors numpy read + gguf.quants.quantize to Q8_0
#      and F16 (pixconv's precision policy), streamed into a GGUF file; quantize-only; and the
#      same write with os.pread reads instead of safetensors' memory map.
#   2. `pixconv convert` of the diffusers safetensors file and of the original .pth to q8_0 and
#      f16 (--force), page cache warmed first (cat FILE >/dev/null), under /usr/bin/time.
# Reports input GB/s (input file bytes / wall seconds; also per CPU second, steadier on a shared
# machine), peak RSS, the ratio pixconv/gguf-py (against gguf-py `write` of the same type), and
# checks the issue's targets: >= 1 GB/s and peak RSS < largest tensor + 64 MB. For pixconv it also
# samples RssAnon/RssFile to tell the program's own memory from pages of a memory-mapped input.
# Usage: bash scripts/bench_convert.sh [PYTHON]   (PYTHON has torch, diffusers, safetensors, gguf;
#        default venv/bin/python)
#   PIXCONV=path/to/pixconv skips the release build; SKIP_GGUFPY=1 reuses $res/gguf-py.json.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${1:-}
if [ -z "$py" ]; then
  py=venv/bin/python
fi
out=/tmp/pixconv-bench
res=$out/out
mkdir -p "$res"
nice=${NICE:-10}  # the same niceness for pixconv as for the Python side

source scripts/bench_lib.sh  # the scripts run from the repository root (cd above)
st=$out/transformer/diffusion_pytorch_model.safetensors
pth=$out/PixArt-XL-2-512x512.pth
[ -f "$pth" ] && [ -f "$st" ] || nice -n 10 "$py" scripts/make_fullsize_checkpoint.py --out "$out"

if [ "${SKIP_GGUFPY:-0}" != 1 ] || [ ! -s "$res/gguf-py.json" ]; then
  nice -n "$nice" "$py" scripts/bench_convert.py --input "$st" --out-dir "$res" > "$res/gguf-py.json.tmp"
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
    size=$(stat -c %s "$f")
    if sampled /usr/bin/time -f "%e %M %U %S" -o "$res/time.txt" nice -n "$nice" "$bin" convert "$f" -o "$o" --type "$t" \
        --force > "$res/convert.log" 2>&1; then
      read -r secs kb usr sys < "$res/time.txt"
      read -r anon file < "$res/rss.txt"
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(basename "$f")" "$t" "$size" "$secs" "$kb" \
        "$(stat -c %s "$o")" "$usr+$sys" "$anon" "$file" >> "$res/pixconv-convert.tsv"
    else
      echo "pixconv convert $(basename "$f") --type $t failed:" >&2
      tail -5 "$res/convert.log" >&2
      printf '%s\t%s\t%s\tfailed\t\t\t\t\t\n' "$(basename "$f")" "$t" "$size" >> "$res/pixconv-convert.tsv"
    fi
    rm -f "$o"
  done
done

"$py" - "$res/gguf-py.json" "$res/pixconv-convert.tsv" <<'PY'
import json, os, sys
g = json.load(open(sys.argv[1]))
big = g["largest_tensor_bytes"]
limit_mb = big / 2**20 + 64
print(f"largest tensor: {g['largest_tensor']} {big} bytes ({big / 2**20:.1f} MiB); "
      f"RSS target < {limit_mb:.1f} MiB; speed target >= 1 GB/s; load average "
      f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
print(f"{'tool':8} {'input':36} {'type':5} {'mode':11} {'wall s':>7} {'CPU s':>6} {'GB/s':>6} "
      f"{'GB/CPU-s':>8} {'RSS MiB':>8} {'vs gguf-py':>10} {'targets':>8}")
gp = {}
anon_notes = []
for r in g["runs"]:
    gp[(r["type"], r["mode"])] = r
    print(f"{'gguf-py':8} {'diffusion_pytorch_model.safetensors':36} {r['type']:5} {r['mode']:11} "
          f"{r['seconds']:7.2f} {r['cpu_seconds']:6.2f} {r['input_gb_per_s']:6.3f} "
          f"{r['input_gb_per_cpu_s']:8.3f} {r['peak_rss_mb']:8.1f}")
for line in open(sys.argv[2]):
    name, t, size, secs, kb, osize, cpu, anon, file = line.rstrip("\n").split("\t")
    if secs == "failed":
        print(f"{'pixconv':8} {name:36} {t:5} {'convert':11} {'failed':>7}")
        continue
    secs = max(float(secs), 0.01)
    cpu = max(sum(float(x) for x in cpu.split("+")), 0.01)
    gbs, gbc = int(size) / secs / 1e9, int(size) / cpu / 1e9
    rss = int(kb) / 1024
    ref = gp.get((t, "write"))
    ratio = f"{gbs / ref['input_gb_per_s']:9.1f}x" if ref else " " * 10
    ok = "ok" if gbs >= 1 and rss < limit_mb else "MISSED"
    print(f"{'pixconv':8} {name:36} {t:5} {'convert':11} {secs:7.2f} {cpu:6.2f} {gbs:6.3f} "
          f"{gbc:8.3f} {rss:8.1f} {ratio} {ok:>8}")
    anon_notes.append(f"pixconv {name} {t}: sampled peak RssAnon {int(anon) / 1024:.1f} MiB, "
                      f"RssFile {int(file) / 1024:.1f} MiB (mapped input pages count in RSS)")
for n in anon_notes:
    print(n)
PY
