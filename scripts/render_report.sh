#!/usr/bin/env bash
# Renders a `pixconv verify --report DIR` page to a PNG with headless Chromium, to see the page as
# a person does (or keep a picture of it):
#   bash scripts/render_report.sh DIR OUT.png [WIDTH [HEIGHT]]
# WIDTH×HEIGHT is the browser window and so the picture (default 1100×1600; the page is cut at
# HEIGHT). Installs the Debian package `chromium` (with sudo when not root) when it is missing.
set -euo pipefail
if [ $# -lt 2 ] || [ $# -gt 4 ]; then
  echo "usage: $0 DIR OUT.png [WIDTH [HEIGHT]]" >&2
  exit 2
fi
dir=$1
out=$2
width=${3:-1100}
height=${4:-1600}
if [ ! -f "$dir/index.html" ]; then
  echo "$0: $dir/index.html does not exist (make it with pixconv verify --reference BUNDLE --report $dir)" >&2
  exit 1
fi
browser=""
for name in chromium chromium-browser; do
  if command -v "$name" >/dev/null 2>&1; then browser=$name; break; fi
done
if [ -z "$browser" ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing: chromium"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium
  browser=chromium
fi
page="$(cd "$dir" && pwd)/index.html"
case "$out" in
  /*) target=$out ;;
  *) target="$(pwd)/$out" ;;
esac
# Chromium writes the screenshot itself; write it beside OUT first so a failed run leaves no half file.
tmp="$(dirname "$target")/.$(basename "$target").render-$$.png"
trap 'rm -f "$tmp"' EXIT
# Its own profile folder, so that no running browser or earlier profile is touched.
profile=$(mktemp -d)
trap 'rm -f "$tmp"; rm -rf "$profile"' EXIT
# Chromium is chatty on stderr even when it works (D-Bus, GPU probing): keep its output for a failure.
log="$profile/render.log"
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$profile" \
  --screenshot="$tmp" --window-size="$width,$height" "file://$page" >"$log" 2>&1 || true
if [ ! -s "$tmp" ]; then
  echo "$0: $browser wrote no screenshot of $page; its output ends:" >&2
  tail -n 20 "$log" >&2
  exit 1
fi
mv "$tmp" "$target"
echo "rendered $page to $out (${width}×${height})"
