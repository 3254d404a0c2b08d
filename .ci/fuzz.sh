#!/bin/sh
# Fuzz each libFuzzer target for a fixed time, ASan + UBSan (clang):
#   sh .ci/fuzz.sh [seconds per target, default 60] [target...]
# Each target starts from its committed corpus (tests/fuzz/corpus/<target>/),
# copied to a scratch directory so the tree stays clean. A crash, a leak, a
# timeout (one input over 10 s) or an out-of-memory fails the run; the
# input that did it is kept in build-fuzz/artifacts/<target>/ (add it,
# minimized, to the corpus with the fix). The last line per target is
# libFuzzer's final status: executions (#), coverage (cov, ft), corpus size.
set -eu
cd "$(dirname "$0")/.."
secs=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-fuzz_proto fuzz_ring fuzz_server fuzz_large fuzz_client}
build=build-fuzz
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang -DRIPC_FUZZ=ON \
  -DRIPC_WERROR=ON -DRIPC_LTO=OFF -DRIPC_BUILD_BENCH=OFF -DRIPC_BUILD_EXAMPLES=OFF >/dev/null
# shellcheck disable=SC2086
cmake --build "$build" -j"$(nproc)" --target $targets
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=""
for t in $targets; do
  mkdir -p "$work/$t" "$build/artifacts/$t"
  cp tests/fuzz/corpus/"$t"/* "$work/$t/"
  echo "--- $t: $secs s"
  if ! "$build/tests/fuzz/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$build/artifacts/$t/" "$work/$t" >"$work/$t.log" 2>&1; then
    tail -n 60 "$work/$t.log"
    failed="$failed $t"
  fi
  grep -E '^#[0-9]+' "$work/$t.log" | tail -n 1
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$work/$t.log" || true
done
if [ -n "$failed" ]; then
  echo "fuzz: failed:$failed (inputs in $build/artifacts/)"
  exit 1
fi
