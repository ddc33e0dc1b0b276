#!/usr/bin/env bash
# Benchmark (issue 6; reliability property 6 of formats/hostile-inputs.md): files of a few KB that declare terabyte tensors or 2^62
# counts must be rejected by `pixconv inspect` in < 100 ms with peak RSS < 64 MB.
# Usage: bash scripts/bench_hostile.sh [--no-build]
# Prints one row per file: size, exit status, median wall and CPU (user + sys) seconds and largest
# peak RSS of RUNS runs (default 5; /usr/bin/time %e %U %S %M), verdict, and the first words of pixconv's message, after two
# baselines (process start-up, a valid tiny file). Exits 1 when a file is accepted or breaks a bound.
# PIXCONV_BIN overrides the binary (e.g. .build/debug/pixconv with --no-build).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" != "--no-build" ]; then swift build -c release --product pixconv >/dev/null; fi
bin=${PIXCONV_BIN:-$(swift build -c release --show-bin-path)/pixconv}
dir=$(mktemp -d /tmp/pixconv-hostile.XXXXXX)
trap 'rm -rf "$dir"' EXIT

python3 - "$dir" <<'EOF'
import struct, sys, zlib
d = sys.argv[1]
def w(name, b): open(f"{d}/{name}", "wb").write(b)
u32 = lambda v: struct.pack("<I", v)
u64 = lambda v: struct.pack("<Q", v)

# safetensors: a 4 TiB F32 tensor ([2^20, 2^20]) on a tiny file; a 2^50-element U8 tensor;
# a header length prefix of 100 MB on a 1 KB file.
h = b'{"w":{"dtype":"F32","shape":[1048576,1048576],"data_offsets":[0,4398046511104]}}'
w("st-4TiB-tensor.safetensors", u64(len(h)) + h + bytes(64))
h = b'{"w":{"dtype":"U8","shape":[1125899906842624],"data_offsets":[0,1125899906842624]}}'
w("st-2^50-elements.safetensors", u64(len(h)) + h + bytes(64))
w("st-100MB-header-claim.safetensors", u64(100_000_000) + b"{}" + bytes(1000))

# GGUF: tensor count 2^62; KV count 2^62; one tensor of ne [2^20, 2^20] F32 (4 TiB); dims whose
# element count is 2^62; a KV array of 2^62 uint8.
def gguf(n_t, n_kv, body=b""): return b"GGUF" + u32(3) + u64(n_t) + u64(n_kv) + body
w("gguf-2^62-tensors.gguf", gguf(1 << 62, 0, bytes(64)))
w("gguf-2^62-kvs.gguf", gguf(0, 1 << 62, bytes(64)))
def info(name, dims, t, off=0): return u64(len(name)) + name + u32(len(dims)) + b"".join(u64(x) for x in dims) + u32(t) + u64(off)
body = info(b"w", [1 << 20, 1 << 20], 0)
w("gguf-4TiB-tensor.gguf", gguf(1, 0, body + bytes((-len(body) - 24) % 32) + bytes(32)))
body = info(b"w", [1 << 31, 1 << 31], 24)
w("gguf-2^62-elements.gguf", gguf(1, 0, body + bytes((-len(body) - 24) % 32) + bytes(32)))
w("gguf-2^62-array.gguf", gguf(0, 1, u64(1) + b"k" + u32(9) + u32(0) + u64(1 << 62) + bytes(64)))

# zip (torch): data.pkl declared 1 TiB through a ZIP64 extra field; a ZIP64 end record with
# 2^62 entries and a 2^62-byte central directory.
def local(name, data, method=0, crc=None, csize=None, usize=None, extra=b""):
    crc = zlib.crc32(data) if crc is None else crc
    return (b"PK\x03\x04" + struct.pack("<HHHHHIIIHH", 45, 0, method, 0, 0x21, crc,
            len(data) if csize is None else csize, len(data) if usize is None else usize, len(name), len(extra)) + name + extra + data)
def central(name, data, off, method=0, crc=None, csize=None, usize=None, extra=b""):
    crc = zlib.crc32(data) if crc is None else crc
    return (b"PK\x01\x02" + struct.pack("<HHHHHHIIIHHHHHII", 45, 45, 0, method, 0, 0x21, crc,
            len(data) if csize is None else csize, len(data) if usize is None else usize,
            len(name), len(extra), 0, 0, 0, 0, off) + name + extra)
def end(count, size, off): return b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, count, count, size, off, 0)
pkl = zlib.compressobj(9, zlib.DEFLATED, -15)
z = pkl.compress(bytes(4096)) + pkl.flush()
name = b"archive/data.pkl"
extra = struct.pack("<HHQQ", 1, 16, 1 << 40, len(z))
body = local(name, z, 8, crc=0, csize=0xFFFFFFFF, usize=0xFFFFFFFF, extra=extra)
cd = central(name, z, 0, 8, crc=0, csize=0xFFFFFFFF, usize=0xFFFFFFFF, extra=extra)
for n, data in ((b"archive/byteorder", b"little"), (b"archive/version", b"3\n")):
    cd += central(n, data, len(body)); body += local(n, data)
w("zip-zip64-1TiB-datapkl.pt", body + cd + end(3, len(cd), len(body)))
z64 = (b"PK\x06\x06" + u64(44) + struct.pack("<HHII", 45, 45, 0, 0) + u64(1 << 62) + u64(1 << 62) + u64(1 << 62) + u64(0)
       + b"PK\x06\x07" + u32(0) + u64(0) + u32(1))
w("zip-zip64-2^62-entries.pt", z64 + end(0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF))

# pickle inside a valid torch zip: BINUNICODE8 and BINBYTES8 of 2^62 bytes; LONG_BINPUT at index
# 2^32-1 then LONG_BINGET of 2^32-2 (a sparse memo must not be an array of 2^32 slots).
def torch_zip(p):
    items = [(b"archive/data.pkl", p), (b"archive/byteorder", b"little"), (b"archive/version", b"3\n")]
    body, cd = b"", b""
    for n, data in items:
        cd += central(n, data, len(body)); body += local(n, data)
    return body + cd + end(len(items), len(cd), len(body))
w("pk-binunicode8-2^62.pt", torch_zip(b"\x80\x04\x8d" + u64(1 << 62) + b"AB"))
w("pk-binbytes8-2^62.pt", torch_zip(b"\x80\x04\x8e" + u64(1 << 62) + b"AB"))
w("pk-long-binget-2^32-1.pt", torch_zip(b"\x80\x02K\x01r" + u32(0xFFFFFFFF) + b"j" + u32(0xFFFFFFFE) + b"."))
EOF

# Baselines in the same run: process start-up alone, and a valid 100-byte file.
python3 - "$dir" <<'EOF2'
import struct, sys
h = b'{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}'
open(f"{sys.argv[1]}/valid-tiny.safetensors", "wb").write(struct.pack("<Q", len(h)) + h + bytes(24))
EOF2

runs=${RUNS:-5}
# Median wall time and largest peak RSS of $runs runs of "$bin" "$@"; sets secs, kb, status.
measure() {
  local times=() cpus=() k=0 t m u y
  for _ in $(seq "$runs"); do
    set +e
    /usr/bin/time -f "%e %M %U %S" -o "$dir.time" "$bin" "$@" >/dev/null 2>"$dir.err"
    status=$?
    set -e
    read -r t m u y < <(tail -n 1 "$dir.time")
    times+=("$t")
    cpus+=("$(awk -v u="$u" -v y="$y" 'BEGIN { printf "%.2f", u + y }')")
    [ "$m" -gt "$k" ] && k=$m
  done
  secs=$(printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
  cpu=$(printf '%s\n' "${cpus[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
  kb=$k
}

echo "pixconv inspect on hostile files: median of $runs runs, largest peak RSS ($(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg))"
printf '%-36s %9s %6s %8s %8s %10s  %-7s %s\n' file bytes exit wall_s cpu_s "RSS(MB)" verdict message
measure --version
printf '%-36s %9s %6s %8s %8s %10s  %-7s %s\n' "(baseline: pixconv --version)" - "$status" "$secs" "$cpu" "$(awk -v k="$kb" 'BEGIN { printf "%.1f", k / 1024 }')" - -
measure inspect "$dir/valid-tiny.safetensors"
printf '%-36s %9s %6s %8s %8s %10s  %-7s %s\n' "(baseline: valid 100-byte file)" 100 "$status" "$secs" "$cpu" "$(awk -v k="$kb" 'BEGIN { printf "%.1f", k / 1024 }')" - -
rm "$dir/valid-tiny.safetensors"
fail=0
for f in "$dir"/*; do
  size=$(stat -c %s "$f")
  measure inspect "$f"
  mb=$(awk -v k="$kb" 'BEGIN { printf "%.1f", k / 1024 }')
  verdict=ok
  # The bound is checked on CPU time (user + sys): on a shared, loaded machine wall time measures
  # the scheduler; wall time is printed beside it.
  if [ "$status" -ne 1 ] || awk -v s="$cpu" -v k="$kb" 'BEGIN { exit !(s >= 0.1 || k >= 65536) }'; then verdict=FAIL; fail=1; fi
  msg=$(head -c 300 "$dir.err" | sed "s|$f|<file>|; s|^pixconv: ||" | cut -c1-70)
  printf '%-36s %9s %6s %8s %8s %10s  %-7s %s\n' "$(basename "$f")" "$size" "$status" "$secs" "$cpu" "$mb" "$verdict" "$msg"
done
rm -f "$dir.time" "$dir.err"
exit $fail
