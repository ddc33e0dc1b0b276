#!/usr/bin/env bash
# Benchmark of the few-step models (issue 12), diffusers f32 against `pixconv generate` on q8_0
# stores, in ONE run, alternating, on random full-size weights (formats/benchmarks.md):
#   LCM: a 1024-MS transformer (28 blocks, hidden 1152, micro-conditions; random, made here from
#        pipeline-512's transformer config with sample_size 128) with the T5 and VAE of
#        scripts/make_fullsize_pipeline.py's pipeline-512 and PixArt-LCM's LCMScheduler config;
#        4 steps, no guidance, 1024x1024.
#   DMD: pipeline-512 with PixArt-α-DMD's DDPMScheduler; 1 step at timestep 400, guidance 1, 512x512.
# Each round: torch lcm, pixconv lcm, torch dmd, pixconv dmd; every run a fresh process under
# /usr/bin/time -f "%e %M", the 1-minute load average before and after it. Then medians per row.
# Usage: bash scripts/bench_fewstep.sh [PYTHON]   Knobs: RUNS=2 THREADS=2 NICE=10 PIXCONV=path
#   SKIP_CONVERT=1 ONLY="lcm dmd" RESULTS=/tmp/pixconv-bench/out
set -euo pipefail
cd "$(dirname "$0")/.."
py=${1:-venv/bin/python}
runs=${RUNS:-2}
threads=${THREADS:-2}
nice=${NICE:-10}
only=${ONLY:-lcm dmd}
bench=/tmp/pixconv-bench
res=${RESULTS:-$bench/out}
mkdir -p "$res/fewstep"
pixconv=${PIXCONV:-}
if [ -z "$pixconv" ]; then
  swift build -c release --product pixconv >/dev/null
  pixconv=$(swift build -c release --show-bin-path)/pixconv
fi
[ -d "$bench/pipeline-512" ] || nice -n "$nice" "$py" scripts/make_fullsize_pipeline.py --out "$bench"

lcm=$bench/pipeline-1024-lcm
if [ ! -d "$lcm" ]; then
  echo "== making $lcm (random 1024-MS transformer, LCM scheduler)"
  tmp=$lcm.tmp; rm -rf "$tmp"; mkdir -p "$tmp"
  nice -n "$nice" "$py" - "$bench/pipeline-512/transformer" "$tmp/transformer" <<'PY'
import sys, torch
from diffusers import PixArtTransformer2DModel
cfg = dict(PixArtTransformer2DModel.load_config(sys.argv[1]))
cfg.update(sample_size=128, interpolation_scale=None, use_additional_conditions=None)
torch.manual_seed(1024)
m = PixArtTransformer2DModel.from_config(cfg)
with torch.no_grad():
    for p in m.parameters():
        p.normal_(0, 0.02)
m.save_pretrained(sys.argv[2], safe_serialization=True)
PY
  for c in text_encoder vae tokenizer; do ln -s "$bench/pipeline-512/$c" "$tmp/$c"; done
  mkdir "$tmp/scheduler"; cp fixtures/tiny-pixart-lcm/scheduler/scheduler_config.json "$tmp/scheduler/"
  sed 's/"DPMSolverMultistepScheduler"/"LCMScheduler"/' "$bench/pipeline-512/model_index.json" > "$tmp/model_index.json"
  mv "$tmp" "$lcm"
fi
if [ -z "${SKIP_CONVERT:-}" ]; then
  has() { case " $only " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
  has lcm && "$pixconv" convert "$lcm" -o "$res/pipeline-1024-lcm.q8_0.gguf" --type q8_0 --force
  has dmd && [ ! -f "$res/pipeline-512.q8_0.gguf" ] && "$pixconv" convert "$bench/pipeline-512" -o "$res/pipeline-512.q8_0.gguf" --type q8_0 --force
fi

tsv=$res/fewstep-runs.tsv
: > "$tsv"
load() { cut -d' ' -f1 /proc/loadavg; }
one() {  # label command...
  local label=$1; shift
  local l0; l0=$(load)
  /usr/bin/time -f "%e %M" -o "$res/fewstep/time.txt" nice -n "$nice" "$@" > "$res/fewstep/$label.out" 2> "$res/fewstep/$label.err"
  read -r wall rss < "$res/fewstep/time.txt"
  # pixconv --json: "seconds" from start, "load_seconds" its model opening; torch: the pipe() call alone.
  local inner; inner=$(python3 -c 'import json,sys; t=open(sys.argv[1]).read(); d=json.loads(t[t.index("{"):]); print(d["seconds"] - (d.get("load_seconds", 0) if "images" in d else 0), d.get("text_encoder_seconds", 0))' "$res/fewstep/$label.out")
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$inner" "$wall" "$((rss / 1024))" "$l0" "$(load)" | tr ' ' '\t' >> "$tsv"
  tail -1 "$tsv"
}
for r in $(seq "$runs"); do
  for m in $only; do
    if [ "$m" = lcm ]; then
      one torch-lcm "$py" scripts/bench_fewstep.py --mode lcm --model "$lcm" --threads "$threads"
      one pixconv-lcm "$pixconv" generate --model "$res/pipeline-1024-lcm.q8_0.gguf" --prompt "a red fox" \
        --scheduler lcm --steps 4 --guidance-scale 0 --height 1024 --width 1024 --threads "$threads" \
        -o "$res/fewstep/lcm.png" --json
    else
      one torch-dmd "$py" scripts/bench_fewstep.py --mode dmd --model "$bench/pipeline-512" \
        --scheduler fixtures/tiny-pixart-dmd/scheduler --threads "$threads"
      one pixconv-dmd "$pixconv" generate --model "$res/pipeline-512.q8_0.gguf" --model fixtures/tiny-pixart-dmd \
        --prompt "a red fox" --scheduler ddpm --timesteps 400 --guidance-scale 1 --height 512 --width 512 \
        --threads "$threads" -o "$res/fewstep/dmd.png" --json
    fi
  done
done
echo "== medians (label, pipeline seconds, T5 seconds, wall seconds, peak RSS MiB, load before/after)"
python3 - "$tsv" <<'PY'
import sys, statistics as st, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    f = line.split("\t")
    rows[f[0]].append([float(x) for x in f[1:]])
for label, rs in rows.items():
    med = [st.median(c) for c in zip(*rs)]
    print(f"{label:12s} pipeline {med[0]:7.2f} s  T5 {med[1]:6.2f} s  wall {med[2]:7.2f} s  "
          f"peak RSS {med[3]:6.0f} MiB  load {min(min(r[4], r[5]) for r in rs):.2f}-{max(max(r[4], r[5]) for r in rs):.2f}  ({len(rs)} runs)")
for m in ("lcm", "dmd"):
    if f"torch-{m}" in rows and f"pixconv-{m}" in rows:
        a = st.median(r[0] for r in rows[f"pixconv-{m}"]); b = st.median(r[0] for r in rows[f"torch-{m}"])
        print(f"{m}: pixconv / torch = {a / b:.2f}")
PY
