#!/bin/sh
# test_python: the Python package's pytest suite against the build's library,
# run by the system's python3 (/usr/bin/python3: Debian's own, where apt's
# python3-pytest is, even when another python3 comes first in PATH).
# Args: <libringipc.so> <source dir> [pytest args...]
set -eu
lib=$1
src=$2
shift 2
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3 || true)
if [ -z "$py" ]; then
  echo "SKIP: no python3"
  exit 77
fi
if ! "$py" -c "import pytest" 2>/dev/null; then
  echo "SKIP: pytest is not installed for $py (Debian: apt-get install python3-pytest)"
  exit 77
fi
export RINGIPC_LIBRARY="$lib"
export PYTHONPATH="$src/python${PYTHONPATH:+:$PYTHONPATH}"
# Nothing written into the source tree (no __pycache__, no .pytest_cache).
export PYTHONDONTWRITEBYTECODE=1
exec "$py" -m pytest -p no:cacheprovider -q -rs "$src/tests/python" "$@"
