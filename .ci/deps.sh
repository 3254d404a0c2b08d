#!/bin/sh
# Make sure the Debian packages a build needs are present.
#   .ci/deps.sh test    -> build + tests (iproute2: the netns TCP test)
#   .ci/deps.sh bench   -> build + benchmarks
#   .ci/deps.sh ci      -> tests + sanitizer toolchain
# As root it installs what is missing with apt-get; otherwise it prints the
# one command to run and fails.
set -e
what=${1:-test}
pkgs="cmake make gcc g++ pkg-config liburcu-dev libcmocka-dev"
case "$what" in
  bench) pkgs="$pkgs libbenchmark-dev" ;;
  ci) pkgs="$pkgs libbenchmark-dev clang libclang-rt-14-dev iproute2" ;;
  test) pkgs="$pkgs libbenchmark-dev iproute2" ;;
esac
missing=""
for p in $pkgs; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ringipc: missing packages:$missing (install them with your package manager)" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "ringipc: missing Debian packages. Run this once, then retry:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y$missing" >&2
  exit 1
fi
echo "ringipc: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing
