#!/bin/sh
# test_package: install the built tree into a scratch prefix, then configure,
# build and run a consumer project against it. Args: <build dir> <source dir>.
set -eu
build=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
for f in include/ringipc/ringipc.h include/ringipc/ring.h include/ringipc/export.h; do
  test -f "$work/prefix/$f" || { echo "missing $f"; exit 1; }
done
# ringipc-stat: installed, answers --help, and says plainly when no master
# listens (exit 1).
stat="$work/prefix/bin/ringipc-stat"
test -x "$stat" || { echo "missing bin/ringipc-stat"; exit 1; }
"$stat" --help | grep -q -- '--watch SECS' || { echo "ringipc-stat --help"; exit 1; }
rc=0
"$stat" --timeout 2000 "unix:$work/nobody.sock" 2>"$work/stat.err" >/dev/null || rc=$?
[ "$rc" = 1 ] && grep -q "no master at" "$work/stat.err" ||
  { echo "ringipc-stat without a master: exit $rc, $(cat "$work/stat.err")"; exit 1; }
libdir=$(ls -d "$work"/prefix/lib*/ | head -n1)
ls "$libdir"/libringipc.so.0* >/dev/null || { echo "no SONAME'd shared library"; exit 1; }
# The SONAME carries the header's major version (CMakeLists.txt sets both).
major=$(awk '$1 == "#define" && $2 == "RIPC_VERSION_MAJOR" {print $3}' \
  "$work/prefix/include/ringipc/ringipc.h")
soname=$(objdump -p "$libdir"/libringipc.so | awk '/SONAME/{print $2}')
[ -n "$major" ] && [ "$soname" = "libringipc.so.$major" ] ||
  { echo "SONAME is '$soname', header major '$major'"; exit 1; }
# Hidden visibility: only ripc_* (public) symbols are exported, and the one
# internal symbol the header's inline code calls (ring.h).
extra=$(nm -D --defined-only "$libdir"/libringipc.so | awk '{print $3}' |
  grep -v -e '^ripc_[a-z]' -e '^ripc__ring_pop_slow$' || true)
[ -z "$extra" ] || { echo "unexpected exported symbols: $extra"; exit 1; }
PKG_CONFIG_PATH="$libdir/pkgconfig" cmake -S "$src/tests/package" -B "$work/b" \
  -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/b" >/dev/null
LD_LIBRARY_PATH="$libdir" "$work/b/use_shared"
"$work/b/use_static"
LD_LIBRARY_PATH="$libdir" "$work/b/use_pkgconfig"
LD_LIBRARY_PATH="$libdir" "$work/b/use_noinline"
[ ! -x "$work/b/use_cxx" ] || "$work/b/use_cxx"
# An optimised build against the installed header takes ripc_ring_push and
# ripc_ring_pop inline: the object calls only their slow paths.
cc=${CC:-cc}
if command -v "$cc" >/dev/null && command -v nm >/dev/null; then
  "$cc" -O2 -c -I"$work/prefix/include" "$src/tests/package/use_ring.c" -o "$work/use_ring.o"
  calls=$(nm -u "$work/use_ring.o" | awk '{print $2}' | grep -E '^_?ripc_ring_(push|pop)$' || true)
  [ -z "$calls" ] || { echo "not inlined from the installed header: $calls"; exit 1; }
  "$cc" -O2 -DRIPC_RING_NO_INLINE -c -I"$work/prefix/include" "$src/tests/package/use_ring.c" \
    -o "$work/use_ring_noinline.o"
  nm -u "$work/use_ring_noinline.o" | grep -q 'ripc_ring_push' ||
    { echo "RIPC_RING_NO_INLINE still inlines"; exit 1; }
fi
# The Python package: installed where the system's python3 looks (under the
# prefix), it loads the library installed beside it, with no variable set.
py=/usr/bin/python3
if [ -x "$py" ] && ! grep -q '^RIPC_INSTALL_PYTHON:BOOL=OFF$' "$build/CMakeCache.txt"; then
  pydir=$(find "$work/prefix" -type d -path '*-packages/ringipc' | head -n1)
  [ -n "$pydir" ] || { echo "the Python package was not installed"; exit 1; }
  env -u RINGIPC_LIBRARY PYTHONPATH="$(dirname "$pydir")" PYTHONDONTWRITEBYTECODE=1 \
    "$py" - "$libdir" "$work/py.sock" <<'PYEOF'
import os, sys, threading
import ringipc, ringipc._lib
libdir, sock = sys.argv[1], sys.argv[2]
loaded = os.path.realpath(ringipc._lib.lib._name)
assert loaded.startswith(os.path.realpath(libdir)), loaded
srv = ringipc.Server("unix:" + sock, lambda msg: bytes(msg.data)[::-1])
t = threading.Thread(target=srv.run)
t.start()
with ringipc.Client("unix:" + sock) as c:
    assert c.request(1, b"abc", timeout=10) == b"cba"
srv.stop()
t.join()
srv.close()
PYEOF
  pymsg="; the Python package imported and served a request"
else
  pymsg=""
fi
echo "package: find_package (shared, static, C++), pkg-config and out-of-line consumers built and ran; push/pop inlined$pymsg"
