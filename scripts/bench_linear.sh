#!/usr/bin/env bash
# The linear operation alone on a guided 512² DiT step's and a T5-v1.1-XXL encode's shapes:
# pixconv's pe_linear per stored type and kernel (scripts/bench_linear.c), then torch's f32 and
# dynamic-int8 linear layers on the same shapes (scripts/bench_linear.py), in one run, REPS
# calls each, medians. Needs the venv of the fixture scripts for the torch half (PYTHON=…).
#   bash scripts/bench_linear.sh [REPS] [shape filter]     (THREADS=2 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${TMPDIR:-/tmp}/pixconv-bench-linear
${CC:-clang} -O3 -ffp-contract=off -std=gnu11 -I Sources/CEngine/include -o "$bin" \
  scripts/bench_linear.c Sources/CEngine/*.c -ldnnl -lgomp -lopenblas -lpthread -lm
export THREADS=${THREADS:-2} OMP_NUM_THREADS=${OMP_NUM_THREADS:-${THREADS:-2}}
PYTHON=${PYTHON:-venv/bin/python}
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$bin" "${1:-5}" "${2:-}"
if [ -x "$PYTHON" ]; then "$PYTHON" scripts/bench_linear.py "${1:-5}" "${2:-}"; else echo "no $PYTHON: torch half skipped"; fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
