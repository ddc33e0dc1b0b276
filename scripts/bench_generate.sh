#!/usr/bin/env bash
# Benchmark: 512×512 generation on CPU, torch (diffusers) against `pixconv generate`, both in ONE run,
# alternating, on the random full-size pipeline from scripts/make_fullsize_pipeline.py (full DiT
# and VAE; T5 at full width but 2 of 24 layers). formats/benchmarks.md describes it.
#   0. pixconv convert MODEL -o STORE --type T --force, once per type in $TYPES (timed).
#   1. RUNS rounds (default 3), each in this order, every run a fresh process:
#        torch f32, pixconv f32 store, torch bf16, pixconv bf16 store, pixconv f16 store,
#        torch int8 (dynamic), pixconv q8_0 store, pixconv q4_0 store
#      torch: scripts/bench_generate.py --mode f32|bf16|int8 (s/guided step, T5 encode, VAE decode,
#      peak RSS); pixconv: generate --model STORE --prompt "a red fox" --steps 3 --height 512
#      --width 512 -o OUT.png --json. Every run under /usr/bin/time -f "%e %M" with RssAnon/RssFile
#      sampled, and /proc/loadavg recorded before and after it.
#   2. T5XXL=1 (or T5XXL=only: this part alone): the full-depth T5-v1.1-XXL pipeline from
#      scripts/make_fullsize_t5xxl.py (made when missing: 9.5 GB), converted once to $T5XXL_TYPE;
#      RUNS rounds of torch t5xxl-bf16 encode, pixconv generate --steps 1 on the store (read
#      into the page cache first, as torch's weights are in memory when its encode is timed),
#      torch t5xxl-int8 encode.
#   3. A table of medians over the rounds per configuration, pixconv ÷ torch ratios, load averages
#      (also in $res/generate-summary.txt and .json).
# Usage: bash scripts/bench_generate.sh [PYTHON]   (default venv/bin/python)
# Knobs: RUNS=3  TYPES="f32 bf16 f16 q8_0 q4_0"  SKIP_TORCH=1 (no torch runs; the torch rows of the
#   previous manifest are kept, marked earlier)  TORCH_MODES="f32 bf16 int8" (default: those paired
#   with TYPES)  PIXCONV=path (else a release build)  T5XXL=0|1|only  T5XXL_TYPE=q8_0
#   MODEL=pipeline folder (default /tmp/pixconv-bench/pipeline-512)  T5XXL_MODEL=folder
#   SIZE=512 (e.g. 32 for a tiny model; torch uses it too)  STEPS=3  THREADS=2  NICE=10
#   SKIP_CONVERT=1 (reuse the stores)  RESULTS=/tmp/pixconv-bench/out  E2E=1 (torch also times pipe())
#   COMPUTE=native|f32 (pixconv generate --compute)  PIXCONV_ARGS="..." (more generate options);
#   pixconv gets --threads $THREADS when its generate has that option.
#   PROMPT="a red fox" (both sides; the negative prompt is empty)  T5XXL_TORCH="bf16 int8" (the torch
#   T5-XXL modes timed; torch bf16 takes minutes on a CPU without bf16 arithmetic)
set -euo pipefail
cd "$(dirname "$0")/.."
py=${1:-}
if [ -z "$py" ]; then
  py=venv/bin/python
fi
threads=${THREADS:-2}
runs=${RUNS:-3}
types=${TYPES:-f32 bf16 f16 q8_0 q4_0}
size=${SIZE:-512}
steps=${STEPS:-3}
nice=${NICE:-10}  # the same niceness for pixconv as for the Python side
t5xxl=${T5XXL:-0}
t5xxl_type=${T5XXL_TYPE:-q8_0}
t5xxl_torch=${T5XXL_TORCH:-bf16 int8}
prompt=${PROMPT:-a red fox}
out=/tmp/pixconv-bench
model=${MODEL:-$out/pipeline-512}
t5xxl_model=${T5XXL_MODEL:-$out/pipeline-512-t5xxl}
res=${RESULTS:-$out/out}
gen=$res/generate
mkdir -p "$gen"
manifest=$res/generate-runs.tsv

for t in $types; do
  case $t in f32|bf16|f16|q8_0|q4_0) ;; *) echo "TYPES: unknown type '$t'" >&2; exit 2 ;; esac
done
has() { case " $1 " in *" $2 "*) return 0 ;; *) return 1 ;; esac; }
if [ -n "${TORCH_MODES+x}" ]; then
  torch_modes=$TORCH_MODES
else
  torch_modes=""
  has "$types" f32 && torch_modes+=" f32"
  { has "$types" bf16 || has "$types" f16; } && torch_modes+=" bf16"
  { has "$types" q8_0 || has "$types" q4_0; } && torch_modes+=" int8"
fi
[ "${SKIP_TORCH:-0}" = 1 ] && torch_modes=""

source scripts/bench_lib.sh  # sampled(); the scripts run from the repository root (cd above)

if [ "$t5xxl" != only ]; then
  [ -f "$model/model_index.json" ] || nice -n 10 "$py" scripts/make_fullsize_pipeline.py --out "$out"
fi
if [ "$t5xxl" = 1 ] || [ "$t5xxl" = only ]; then
  if [ ! -f "$t5xxl_model/text_encoder/model.safetensors.index.json" ]; then
    base=()  # the DiT, VAE, scheduler and tokenizer of MODEL (else make_fullsize_t5xxl.py's default)
    [ -f "$model/model_index.json" ] && base=(--base "$model")
    nice -n 10 "$py" scripts/make_fullsize_t5xxl.py --out "$(dirname "$t5xxl_model")" \
      --name "$(basename "$t5xxl_model")" "${base[@]}"
  fi
fi

if [ -n "${PIXCONV:-}" ]; then
  bin=$PIXCONV
else
  swift build -c release --product pixconv >/dev/null
  bin=$(swift build -c release --show-bin-path)/pixconv
fi
export OPENBLAS_NUM_THREADS=$threads
# pixconv's own options: the same thread count as torch where generate takes --threads (newer
# builds), --compute $COMPUTE when set, and $PIXCONV_ARGS as given.
pix_args=()
if "$bin" generate --help 2>/dev/null | grep -q -- '--threads'; then pix_args+=(--threads "$threads"); fi
[ -n "${COMPUTE:-}" ] && pix_args+=(--compute "$COMPUTE")
# shellcheck disable=SC2206  # word splitting wanted
[ -n "${PIXCONV_ARGS:-}" ] && pix_args+=($PIXCONV_ARGS)

# The manifest: one line per run: round, config, side, status, wall s, max RSS KiB, RssAnon KiB,
# RssFile KiB, load before, load after, output file, note.
old_manifest=""
[ -s "$manifest" ] && old_manifest=$(cat "$manifest")
: > "$manifest"
if [ "${SKIP_TORCH:-0}" = 1 ] && [ -n "$old_manifest" ]; then
  printf '%s\n' "$old_manifest" | awk -F'\t' -v OFS='\t' '$3 == "torch" { $12 = "earlier"; print }' >> "$manifest"
fi

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# record ROUND CONFIG SIDE BASE COMMAND...: runs COMMAND with stdout to BASE.json, stderr to BASE.log.
record() {
  local r=$1 config=$2 side=$3 base=$4 status=0 before after secs="" kb="" anon="" file=""
  shift 4
  before=$(loadavg)
  sampled /usr/bin/time -f "%e %M" -o "$base.time" "$@" > "$base.json" 2> "$base.log" || status=$?
  after=$(loadavg)
  read -r secs kb < <(tail -1 "$base.time" 2>/dev/null || true) || true
  read -r anon file < "$res/rss.txt" || true
  if [ "$status" != 0 ]; then
    echo "round $r: $config failed (status $status):" >&2
    tail -5 "$base.log" >&2
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n' "$r" "$config" "$side" "$status" \
    "$secs" "$kb" "$anon" "$file" "$before" "$after" "$base.json" >> "$manifest"
  echo "round $r: $config: status $status, ${secs:-?} s, $(( ${kb:-0} / 1024 )) MiB, load $before" >&2
}

# torch_run ROUND MODE MODEL
torch_run() {
  local e2e=()
  [ "${E2E:-0}" = 1 ] && e2e=(--e2e)
  record "$1" "torch $2" torch "$gen/$1-torch-$2" nice -n "$nice" "$py" scripts/bench_generate.py \
    --mode "$2" --model "$3" --threads "$threads" --size "$size" --total-steps "$steps" --prompt "$prompt" "${e2e[@]}"
}

# pixconv_run ROUND CONFIG STORE STEPS
pixconv_run() {
  local tag=${2// /-}
  record "$1" "$2" pixconv "$gen/$1-$tag" nice -n "$nice" "$bin" generate --model "$3" \
    --prompt "$prompt" --steps "$4" --height "$size" --width "$size" -o "$gen/$1-$tag.png" --json \
    "${pix_args[@]}"
}

# convert MODEL STORE TYPE CONFIG: 0 when the store is there to use.
convert() {
  if [ "${SKIP_CONVERT:-0}" = 1 ] && [ -s "$2" ]; then return 0; fi
  local tag=${4// /-}
  record 0 "convert $4" convert "$gen/convert-$tag" nice -n "$nice" "$bin" convert "$1" -o "$2" \
    --type "$3" --force
  [ "$(tail -1 "$manifest" | cut -f4)" = 0 ]
}

ok_types=""
if [ "$t5xxl" != only ]; then
  name=$(basename "$model")
  for t in $types; do
    if convert "$model" "$res/$name.$t.gguf" "$t" "pixconv $t"; then ok_types+=" $t"; fi
  done
  for r in $(seq 1 "$runs"); do
    has "$torch_modes" f32 && torch_run "$r" f32 "$model"
    for t in f32; do has "$ok_types" $t && pixconv_run "$r" "pixconv $t" "$res/$name.$t.gguf" "$steps"; done
    has "$torch_modes" bf16 && torch_run "$r" bf16 "$model"
    for t in bf16 f16; do has "$ok_types" $t && pixconv_run "$r" "pixconv $t" "$res/$name.$t.gguf" "$steps"; done
    has "$torch_modes" int8 && torch_run "$r" int8 "$model"
    for t in q8_0 q4_0; do has "$ok_types" $t && pixconv_run "$r" "pixconv $t" "$res/$name.$t.gguf" "$steps"; done
  done
fi

if [ "$t5xxl" = 1 ] || [ "$t5xxl" = only ]; then
  xstore=$res/$(basename "$t5xxl_model").$t5xxl_type.gguf
  xok=0
  convert "$t5xxl_model" "$xstore" "$t5xxl_type" "t5xxl pixconv $t5xxl_type" && xok=1
  for r in $(seq 1 "$runs"); do
    [ "${SKIP_TORCH:-0}" = 1 ] || ! has "$t5xxl_torch" bf16 || torch_run "$r" t5xxl-bf16 "$t5xxl_model"
    # torch times its encode with the weights already in memory; so the store is read into the
    # page cache first (the torch run before it may have evicted it). A cold store's encode is
    # bound by the disk instead: see formats/benchmarks.md.
    [ "$xok" = 1 ] && cat "$xstore" > /dev/null && pixconv_run "$r" "t5xxl pixconv $t5xxl_type" "$xstore" 1
    [ "${SKIP_TORCH:-0}" = 1 ] || ! has "$t5xxl_torch" int8 || torch_run "$r" t5xxl-int8 "$t5xxl_model"
  done
fi

pixver="$("$bin" --version 2>/dev/null | head -1 || true) ($(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- Sources 2>/dev/null || echo '+changes'))"
"$py" - "$manifest" "$size" "$steps" "$threads" "$t5xxl_type" "$res/generate-summary.json" "$pixver" <<'EOF' | tee "$res/generate-summary.txt"
import json, sys
manifest, size, steps, threads, xtype, summary_path, pixver = sys.argv[1:8]

def median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2

def load_json(path):
    try:
        text = open(path).read()
        return json.loads(text[text.index("{"):text.rindex("}") + 1])
    except (OSError, ValueError):
        return {}

def num(v):
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None

notes = set()
rows = []  # one dict per run
for line in open(manifest):
    f = (line.rstrip("\n").split("\t") + [""] * 12)[:12]
    r, config, side, status, secs, kb, anon, fil, before, after, path, note = f
    row = {"round": r, "config": config, "side": side, "ok": status == "0", "status": status,
           "wall": float(secs) if secs else None, "rss_mib": int(kb) / 1024 if kb else None,
           "anon_mib": int(anon) / 1024 if anon and anon != "0" else None,
           "file_mib": int(fil) / 1024 if fil and fil != "0" else None,
           "load": [float(x) for x in before.split()] if before else None,
           "load_after": [float(x) for x in after.split()] if after else None,
           "earlier": note == "earlier"}
    j = load_json(path)
    if not row["ok"]:  # bench_generate.py reports what did not fit in its JSON (exit 3)
        if j.get("error"):
            row["error"] = j["error"]
        j = {}
    if side == "torch" and j:
        if "error" in j:
            row["ok"], row["error"] = False, j["error"]
        row["step"] = num(j.get("step_seconds_median", j.get("step_seconds")))
        row["t5"] = num(j.get("t5_encode_seconds"))
        row["vae"] = num(j.get("vae_decode_seconds"))
        row["total"] = num(j.get("e2e_seconds", j.get("estimated_total_seconds")))
        row["total_est"] = "e2e_seconds" not in j
        row["rss_json"] = num(j.get("peak_rss_mb"))
        row["generator"] = j.get("generator")
        row["t5_layers"] = j.get("t5_layers")
    elif side == "pixconv" and j:
        st = j.get("step_seconds")
        if isinstance(st, list):
            st = [x for x in st if num(x) is not None]
            if "text_encoder_seconds" not in j and len(st) > 1:
                st = st[1:]  # without a separate T5 time the first step may hold the T5 stage
                notes.add("pixconv s/step: first step left out (no text_encoder_seconds in its JSON)")
            row["step"] = median(st)
        else:
            row["step"] = num(st)
        row["t5"] = num(j.get("text_encoder_seconds"))
        row["vae"] = num(j.get("vae_seconds"))
        row["total"] = num(j.get("seconds")) or row["wall"]
        row["rss_json"] = num(j.get("peak_rss_mb"))
        row["kernels"] = j.get("kernels")
        row["pixconv_setup"] = {k: j[k] for k in ("threads", "compute", "cpu") if k in j}
    rows.append(row)

# int8 torch: the VAE is the f32 one; its estimated total gets the same round's torch f32 VAE.
for row in rows:
    if row["config"] == "torch int8" and row.get("ok") and row.get("total") is not None and row.get("total_est"):
        vae = [x.get("vae") for x in rows if x["config"] == "torch f32" and x["round"] == row["round"] and x.get("ok")]
        if vae and vae[0] is not None:
            row["total"] += vae[0]
            notes.add("torch int8 total: estimated, VAE decode from the same round's torch f32 run")
        else:
            row["total"] = None

configs = []
for row in rows:
    if row["config"] not in configs:
        configs.append(row["config"])

def stats(config, key):
    return median([x.get(key) for x in rows if x["config"] == config and x.get("ok")])

def fmt(v, width, prec):
    return f"{v:{width}.{prec}f}" if v is not None else " " * (width - 1) + "-"

summary = {"size": int(size), "steps": int(steps), "threads": int(threads), "configs": {}, "ratios": {}}
xxl = any(x["config"].startswith(("t5xxl", "torch t5xxl")) for x in rows)
print(f"{size}x{size}, {steps} steps{' (t5xxl rows: 1)' if xxl else ''}, guidance (batch-2 DiT), "
      f"{threads} threads; medians over the rounds")
head = (f"{'configuration':26} {'runs':>5} {'s/step':>8} {'T5 s':>7} {'VAE s':>7} {'total s':>8} "
        f"{'wall s':>8} {'peak RSS MiB':>12} {'anon MiB':>9} {'file MiB':>9} {'load 1-min':>14}")
print(head)
print("-" * len(head))
for c in configs:
    mine = [x for x in rows if x["config"] == c]
    ok = [x for x in mine if x.get("ok")]
    loads = [x["load"][0] for x in mine if x.get("load")]
    lr = f"{median(loads):.1f} ({min(loads):.1f}-{max(loads):.1f})" if loads else ""
    s = {k: stats(c, k) for k in ("step", "t5", "vae", "total", "wall", "rss_mib", "anon_mib", "file_mib")}
    s["runs_ok"], s["runs"], s["load_1min_median"] = len(ok), len(mine), median(loads)
    s["earlier"] = any(x.get("earlier") for x in mine)
    summary["configs"][c] = s
    label = c + (" (earlier)" if s["earlier"] else "")
    print(f"{label:26} {len(ok):>2}/{len(mine):<2} {fmt(s['step'], 8, 2)} {fmt(s['t5'], 7, 2)} "
          f"{fmt(s['vae'], 7, 2)} {fmt(s['total'], 8, 1)} {fmt(s['wall'], 8, 1)} "
          f"{fmt(s['rss_mib'], 12, 0)} {fmt(s['anon_mib'], 9, 0)} {fmt(s['file_mib'], 9, 0)} {lr:>14}")
    for x in mine:
        if x.get("error"):
            print(f"    {c}, round {x['round']}: {x['error']}")

pairs = [("pixconv f32", "torch f32"), ("pixconv bf16", "torch bf16"), ("pixconv f16", "torch bf16"),
         ("pixconv q8_0", "torch int8"), ("pixconv q4_0", "torch int8"),
         (f"t5xxl pixconv {xtype}", "torch t5xxl-bf16"), (f"t5xxl pixconv {xtype}", "torch t5xxl-int8")]

def ratio(a, b):
    return a / b if a is not None and b else None

lines = []
for p, t in pairs:
    if p not in summary["configs"] or t not in summary["configs"]:
        continue
    P, T = summary["configs"][p], summary["configs"][t]
    # s/step paired within each round (the two runs of a round ran minutes apart).
    per_round = [ratio(x.get("step"), y.get("step")) for x in rows if x["config"] == p and x.get("ok")
                 for y in rows if y["config"] == t and y.get("ok") and y["round"] == x["round"] and not y["earlier"]]
    rr = {k: ratio(P[k], T[k]) for k in ("step", "t5", "vae", "total", "rss_mib")}
    rr["step_per_round"] = median(per_round)
    summary["ratios"][f"{p} / {t}"] = rr
    lines.append(f"{p + ' / ' + t:40} {fmt(rr['step'], 7, 2)} {fmt(rr['step_per_round'], 9, 2)} "
                 f"{fmt(rr['t5'], 6, 2)} {fmt(rr['vae'], 6, 2)} {fmt(rr['total'], 7, 2)} {fmt(rr['rss_mib'], 9, 2)}")
if lines:
    print()
    print("ratio pixconv / torch (< 1: pixconv faster or smaller); s/step: of the medians, and the median of")
    print("the per-round ratios")
    print(f"{'pair':40} {'s/step':>7} {'per round':>9} {'T5':>6} {'VAE':>6} {'total':>7} {'peak RSS':>9}")
    for l in lines:
        print(l)

all_loads = [x["load"] for x in rows if x.get("load")]
if all_loads:
    print()
    print(f"load average (1/5/15 min) before the runs: first {' '.join(map(str, all_loads[0]))}, "
          f"last {' '.join(map(str, all_loads[-1]))}, 1-min median {median([l[0] for l in all_loads]):.1f}, "
          f"range {min(l[0] for l in all_loads):.1f}-{max(l[0] for l in all_loads):.1f}")
print("pixconv:", pixver)
summary["pixconv"] = pixver
gens = {x.get("generator") for x in rows if x.get("generator")}
for g in sorted(gens):
    print("torch:", g)
layers = {x.get("t5_layers") for x in rows if x["side"] == "torch" and x.get("t5_layers")}
if layers:
    print("torch T5 layers:", ", ".join(map(str, sorted(layers))))
for c in configs:
    k = [x.get("kernels") for x in rows if x["config"] == c and x.get("kernels")]
    if k:
        print(f"kernels, {c}: {json.dumps(k[-1], separators=(',', ':'))}")
        summary["configs"][c]["kernels"] = k[-1]
setups = {json.dumps(x["pixconv_setup"], sort_keys=True) for x in rows if x.get("pixconv_setup")}
for st in sorted(setups):
    print("pixconv run:", st)
for n in sorted(notes):
    print("note:", n)
summary["notes"] = sorted(notes)
summary["runs"] = rows
json.dump(summary, open(summary_path, "w"), indent=1)
EOF
