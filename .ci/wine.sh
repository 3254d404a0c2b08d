#!/bin/sh
# Run the Windows tests of cross-build dir $1 under wine (extra args go to
# ctest), or with --run one program of it: .ci/wine.sh --run DIR PROGRAM ARGS.
# The wine prefix lives in the build tree, so a run depends on nothing in
# the home directory; it is made once, before ctest, so that tests running
# at once do not all make it.
set -eu
run=""
if [ "$1" = "--run" ]; then
  run=1
  shift
fi
dir=$1
shift
WINEPREFIX=$(cd "$dir" && pwd)/wineprefix
WINEDEBUG=-all
export WINEPREFIX WINEDEBUG
if [ ! -f "$WINEPREFIX/system.reg" ]; then
  echo "ringipc: making the wine prefix $WINEPREFIX"
  # It complains about the display it does not have; the prefix is fine.
  wine cmd /c exit 0 >/dev/null 2>&1 || true
  wineserver -w 2>/dev/null || true
fi
# One wine server for the whole run (it would start and stop with every
# test, a few seconds each); it goes 10 s after the last program.
wineserver -p10 2>/dev/null || true
if [ -n "$run" ]; then
  exec wine "$@"
fi
exec sh "$(dirname "$0")/ctest.sh" "$dir" "$@"
