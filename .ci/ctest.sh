#!/bin/sh
# Run ctest in build dir $1 (extra args passed on), then say why each skipped
# test skipped: ctest itself only prints "Skipped".
set -u
dir=$1
shift
rc=0
ctest --test-dir "$dir" --output-on-failure "$@" || rc=$?
log="$dir/Testing/Temporary/LastTest.log"
if [ -f "$log" ] && grep -q '^SKIP: ' "$log"; then
  echo "Skip reasons:"
  awk '/^[0-9]+\/[0-9]+ Test: /{t=$3} /^SKIP: /{print "  " t ": " substr($0, 7)}' "$log"
fi
exit $rc
