#!/bin/sh
# Make sure the Debian packages a build needs are present.
#   .ci/deps.sh test    -> build + tests (iproute2: the netns TCP test;
#                          python3-pytest: the Python package's tests)
#   .ci/deps.sh bench   -> build + benchmarks
#   .ci/deps.sh ci      -> tests + sanitizer toolchain
#   .ci/deps.sh windows -> cross-build for Windows, tests under wine
# As root it installs what is missing with apt-get; otherwise it prints the
# one command to run and fails. Optional packages (the benchmark's ZeroMQ and
# NNG rows, its --plot, the Python benchmark and its pyzmq row) are installed
# when possible; without them the build goes on and the benchmark says what
# it skipped.
set -e
what=${1:-test}
pkgs="cmake make gcc g++ pkg-config liburcu-dev libcmocka-dev"
optional=""
case "$what" in
  bench) pkgs="$pkgs libbenchmark-dev"; optional="libzmq3-dev libnng-dev gnuplot-nox python3 python3-zmq" ;;
  ci) pkgs="$pkgs libbenchmark-dev clang libclang-rt-14-dev iproute2 python3-pytest" ;;
  test) pkgs="$pkgs libbenchmark-dev iproute2 python3-pytest" ;;
  windows) pkgs="cmake make mingw-w64 wine wine64" ;;
esac
missing_of() {
  out=""
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
      out="$out $p"
    fi
  done
  echo "$out"
}
missing=$(missing_of $pkgs)
opt_missing=$(missing_of $optional)
[ -z "$missing" ] && [ -z "$opt_missing" ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  [ -n "$opt_missing" ] && echo "ringipc: optional packages missing:$opt_missing" >&2
  [ -z "$missing" ] && exit 0
  echo "ringipc: missing packages:$missing (install them with your package manager)" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  if [ -z "$missing" ]; then
    echo "ringipc: optional, for more benchmark rows: sudo apt-get install -y$opt_missing" >&2
    exit 0
  fi
  echo "ringipc: missing Debian packages. Run this once, then retry:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y$missing$opt_missing" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || true
if [ -n "$missing" ]; then
  echo "ringipc: installing$missing"
  apt-get install -y -qq --no-install-recommends $missing
fi
# One at a time: a package this release does not have must not stop the rest.
for p in $opt_missing; do
  echo "ringipc: installing $p (optional)"
  apt-get install -y -qq --no-install-recommends "$p" >/dev/null 2>&1 ||
    echo "ringipc: could not install $p; going on without it" >&2
done
exit 0
