#!/usr/bin/env bash
# Benchmark: 512×512 generation on CPU, diffusers (torch f32) against `pixconv generate` (f32 and
# q8_0 stores), on the random full-size pipeline from scripts/make_fullsize_pipeline.py
# (full DiT and VAE; T5 at full width but 2 of 24 layers, so the T5 stage is not full-size).
#   1. scripts/bench_generate.py: diffusers seconds per guided step (batch-2 DiT forward),
#      T5 encode, VAE decode, peak RSS (torch threads = $THREADS, default 2).
#   2. pixconv convert PIPELINE -o STORE --type f32|q8_0 --force (timed).
#   3. pixconv generate --model STORE --prompt "a red fox" --steps 3 --height 512 --width 512
#      -o OUT.png [--json] under /usr/bin/time: total seconds, peak RSS, and seconds per step
#      when --json output carries `step_seconds` (a number or a list); sampled peak RssAnon and
#      RssFile (memory-mapped weights count in RSS as file pages).
# Usage: bash scripts/bench_generate.sh [PYTHON]   (default venv/bin/python, else /work/venv/bin/python)
#   PIXCONV=path/to/pixconv skips the release build; SKIP_DIFFUSERS=1 reuses $res/diffusers.json;
#   E2E=1 also times a whole 3-step diffusers pipe() call.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${1:-}
if [ -z "$py" ]; then
  if [ -x venv/bin/python ]; then py=venv/bin/python; else py=/work/venv/bin/python; fi
fi
threads=${THREADS:-2}
out=/tmp/pixconv-bench
model=$out/pipeline-512
res=$out/out
mkdir -p "$res"
nice=${NICE:-10}  # the same niceness for pixconv as for the Python side

source scripts/bench_lib.sh  # the scripts run from the repository root (cd above)
[ -f "$model/model_index.json" ] || nice -n 10 "$py" scripts/make_fullsize_pipeline.py --out "$out"

if [ "${SKIP_DIFFUSERS:-0}" != 1 ] || [ ! -s "$res/diffusers.json" ]; then
  e2e=()
  [ "${E2E:-0}" = 1 ] && e2e=(--e2e)
  nice -n "$nice" "$py" scripts/bench_generate.py --model "$model" --threads "$threads" "${e2e[@]}" \
    > "$res/diffusers.json.tmp" 2> "$res/diffusers.log"
  mv "$res/diffusers.json.tmp" "$res/diffusers.json"
fi

if [ -n "${PIXCONV:-}" ]; then
  bin=$PIXCONV
else
  swift build -c release --product pixconv >/dev/null
  bin=$(swift build -c release --show-bin-path)/pixconv
fi
export OPENBLAS_NUM_THREADS=$threads

: > "$res/pixconv-generate.tsv"
for t in f32 q8_0; do
  store=$res/pipeline-512.$t.gguf
  if ! sampled /usr/bin/time -f "%e %M" -o "$res/time.txt" nice -n "$nice" "$bin" convert "$model" -o "$store" --type "$t" --force \
      > "$res/convert-$t.log" 2>&1; then
    echo "pixconv convert --type $t failed:" >&2
    tail -5 "$res/convert-$t.log" >&2
    printf '%s\tconvert\tfailed\t\t\n' "$t" >> "$res/pixconv-generate.tsv"
    continue
  fi
  read -r secs kb < "$res/time.txt"
  read -r anon file < "$res/rss.txt"
  printf '%s\tconvert\t%s\t%s\t\t%s\t%s\n' "$t" "$secs" "$kb" "$anon" "$file" >> "$res/pixconv-generate.tsv"
  args=(generate --model "$store" --prompt "a red fox" --steps 3 --height 512 --width 512
        -o "$res/fox-$t.png")
  status=0
  sampled /usr/bin/time -f "%e %M" -o "$res/time.txt" nice -n "$nice" "$bin" "${args[@]}" --json \
    > "$res/generate-$t.json" 2> "$res/generate-$t.log" || status=$?
  if [ "$status" = 2 ]; then  # usage error: no --json option, run without it
    status=0
    : > "$res/generate-$t.json"
    sampled /usr/bin/time -f "%e %M" -o "$res/time.txt" nice -n "$nice" "$bin" "${args[@]}" \
      > "$res/generate-$t.log" 2>&1 || status=$?
  fi
  if [ "$status" != 0 ]; then
    echo "pixconv generate ($t) failed:" >&2
    tail -5 "$res/generate-$t.log" >&2
    printf '%s\tgenerate\tfailed\t\t\n' "$t" >> "$res/pixconv-generate.tsv"
    continue
  fi
  read -r secs kb < "$res/time.txt"
  read -r anon file < "$res/rss.txt"
  printf '%s\tgenerate\t%s\t%s\t%s\t%s\t%s\n' "$t" "$secs" "$kb" "$res/generate-$t.json" "$anon" "$file" \
    >> "$res/pixconv-generate.tsv"
done

"$py" - "$res/diffusers.json" "$res/pixconv-generate.tsv" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))

def step_seconds(path):
    """Mean seconds per step from pixconv's --json output (`step_seconds`: number or list)."""
    try:
        text = open(path).read().strip()
        obj = json.loads(text[text.index("{"):]) if "{" in text else None
    except (OSError, ValueError):
        return None
    v = obj.get("step_seconds") if isinstance(obj, dict) else None
    if isinstance(v, list) and v:
        return sum(v) / len(v)
    return v if isinstance(v, (int, float)) else None

print(f"512x512, 3 steps, guidance (batch-2 DiT), {d['threads']} threads; {d['generator']}")
print(f"{'run':22} {'total s':>9} {'s/step':>8} {'T5 s':>7} {'VAE s':>7} {'peak RSS MiB':>13} "
      f"{'anon MiB':>9} {'file MiB':>9}")
total = d.get("e2e_seconds", d["estimated_total_seconds"])
tag = "" if "e2e_seconds" in d else " (est.)"
print(f"{'diffusers f32':22} {total:9.1f} {d['step_seconds']:8.2f} {d['t5_encode_seconds']:7.2f} "
      f"{d['vae_decode_seconds']:7.2f} {d['peak_rss_mb']:13.0f}{tag}")
for line in open(sys.argv[2]):
    t, what, secs, kb, js, anon, file = (line.rstrip("\n").split("\t") + [""] * 7)[:7]
    label = f"pixconv {t} {what}"
    if secs == "failed":
        print(f"{label:22} {'failed':>9}")
        continue
    s = step_seconds(js) if what == "generate" else None
    step = f"{s:8.2f}" if s is not None else f"{'':8}"
    mib = lambda v: f"{int(v) / 1024:9.0f}" if v else f"{'':9}"
    print(f"{label:22} {float(secs):9.1f} {step} {'':7} {'':7} {int(kb) / 1024:13.0f} {mib(anon)} {mib(file)}")
EOF
