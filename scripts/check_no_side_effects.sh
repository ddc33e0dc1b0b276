#!/usr/bin/env bash
# Reliability property 7 of formats/hostile-inputs.md: pixconv inspect on the malicious pickle and zip corpus (cases 26–52) under
# strace: exactly one execve (pixconv itself), no socket/connect, nothing created, written,
# renamed or removed, and no file opened but the input (shared libraries, /proc/self/maps and
# /sys CPU lists aside).
# Usage: PIXCONV_CORPUS_OUT=/tmp/corpus swift test --skip-build --filter BadInputCorpusTests/testGoldenTable
#        bash scripts/check_no_side_effects.sh /tmp/corpus [pixconv binary]
set -euo pipefail
corpus=${1:?corpus folder}
bin=${2:-$(cd "$(dirname "$0")/.." && swift build -c release --show-bin-path)/pixconv}
log=$(mktemp /tmp/pixconv-strace.XXXXXX)
trap 'rm -f "$log"' EXIT
bad=0 n=0
for f in "$corpus"/pk-*.pt "$corpus"/zip-*.pt "$corpus"/not-a-zip*.pt; do
  strace -f -qq -o "$log" -e trace=execve,execveat,connect,socket,openat,open,creat,unlink,unlinkat,rename,renameat,renameat2,mkdir,mkdirat \
    "$bin" inspect "$f" >/dev/null 2>&1 || true
  n=$((n + 1))
  execs=$(grep -cE 'execve(at)?\(' "$log" || true)
  net=$(grep -cE '(connect|socket)\(' "$log" || true)
  writes=$(grep -E 'creat\(|unlink|rename|mkdir|O_WRONLY|O_RDWR|O_CREAT' "$log" | grep -vc ENOENT || true)
  opens=$(grep -E 'open(at)?\(' "$log" | grep -vE '\.so|/etc/ld\.so|/proc/self/maps|/sys/devices/system/cpu|ENOENT' | grep -vcF "\"$f\"" || true)
  if [ "$execs" != 1 ] || [ "$net" != 0 ] || [ "$writes" != 0 ] || [ "$opens" != 0 ]; then
    echo "$(basename "$f"): execve $execs, sockets $net, writes $writes, other opens $opens"
    bad=1
  fi
done
echo "$n files: $([ $bad = 0 ] && echo 'no execution, no network, no writes, only the input opened' || echo 'SIDE EFFECTS above')"
exit $bad
