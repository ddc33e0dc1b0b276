#!/usr/bin/env bash
# The VAE decoder's 3×3 convolutions: pixconv's engine against oneDNN (Debian's libdnnl-dev), layer
# by layer, f32 and bf16, in one process (scripts/bench_conv_onednn.c says what is timed).
#   bash scripts/bench_conv_onednn.sh [REPS]     (default 3; THREADS=2 OMP_NUM_THREADS=2)
# Installs libdnnl-dev when missing (the benchmark only: pixconv does not link oneDNN). Compiles
# the engine's C sources with the flags Package.swift gives them. Results: formats/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! dpkg -s libdnnl-dev >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libdnnl-dev
fi
bin=${TMPDIR:-/tmp}/pixconv-bench-conv-onednn
gcc -O3 -ffp-contract=off -std=gnu11 -I Sources/CEngine/include -o "$bin" \
  scripts/bench_conv_onednn.c Sources/CEngine/*.c -ldnnl -lopenblas -lpthread -lm
export THREADS=${THREADS:-2} OMP_NUM_THREADS=${OMP_NUM_THREADS:-${THREADS:-2}}
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$bin" "${1:-3}"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
