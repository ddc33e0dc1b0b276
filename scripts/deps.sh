#!/usr/bin/env bash
# Installs the C libraries pixconv links (oneDNN, OpenBLAS, libpng, zlib) when they are missing.
#   bash scripts/deps.sh          # what building pixconv needs
#   bash scripts/deps.sh --test   # also strace, for the durability-order test (best effort: the
#                                 # test skips itself where strace is missing or not permitted)
set -euo pipefail
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
need=()
for pkg in libdnnl-dev libopenblas-dev libpng-dev zlib1g-dev pkg-config; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi
if [ "${1:-}" = "--test" ] && ! command -v strace >/dev/null 2>&1; then
  echo "installing: strace"
  { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq strace; } \
    || echo "strace could not be installed: the durability-order test will be skipped" >&2
fi
