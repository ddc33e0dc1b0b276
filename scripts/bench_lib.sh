# Shared by the bench_*.sh scripts (sourced, not run). Needs $res (the results folder).

# Runs "$@" (a /usr/bin/time command line) in the background and samples the timed process's
# RssAnon and RssFile (/proc/PID/status, every 0.1 s) into $res/rss.txt as "ANON_KB FILE_KB":
# file-backed pages (a memory-mapped input) count in /usr/bin/time's %M, anonymous ones are the
# program's own allocations.
sampled() {
  "$@" &
  local tp=$! child="" a=0 f=0 x y
  while kill -0 "$tp" 2>/dev/null; do
    [ -n "$child" ] || child=$(pgrep -P "$tp" | head -1 || true)
    if [ -n "$child" ]; then
      read -r x y < <(awk '/^RssAnon/{a=$2} /^RssFile/{f=$2} END{print a+0, f+0}' \
        "/proc/$child/status" 2>/dev/null || echo "0 0")
      [ "${x:-0}" -gt "$a" ] && a=$x
      [ "${y:-0}" -gt "$f" ] && f=$y
    fi
    sleep 0.1
  done
  echo "$a $f" > "$res/rss.txt"
  wait "$tp"
}
