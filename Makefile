# Thin wrapper over CMake. The two README commands:
#   make test    install missing Debian packages (as root), build, run every test
#   make bench   install missing Debian packages (as root), build Release, run ringipc-bench,
#                then bench/python/pybench.py (the same comparison from Python, ~15 s)
#   make bench-python pybench.py alone (PYBENCH_ARGS passes its options)
#   make bench-suites the google-benchmark suites (ring, dispatch, request/reply), JSON in
#                     build-release/bench_*.json; `make bench-ring` is the same
#   make test-windows install mingw-w64 and wine (as root), cross-build for Windows
#                     in build-mingw, run the Windows tests under wine
#   make bench-windows the same cross-build, then ringipc-bench under wine (its table
#                     says so: numbers of wine, not of Windows); BENCH_ARGS as for bench
# BENCH_ARGS passes options to ringipc-bench (e.g. BENCH_ARGS="--size 8,1M --json out.json").
# PYTHON: Debian's own interpreter, the one python3-zmq installs into, even
# where another python3 comes first in PATH.
BUILD       ?= build
BENCH_BUILD ?= build-release
WIN_BUILD   ?= build-mingw
JOBS        ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS  ?=
PYTHON      ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || echo python3)
PYBENCH_ARGS ?=

.PHONY: all test test-windows bench-windows bench bench-python pybench bench-suites bench-ring bench-build clean format

all: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS)

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DRIPC_WERROR=ON $(CMAKE_ARGS)

test:
	@sh .ci/deps.sh test
	cmake -S . -B $(BUILD) -DRIPC_WERROR=ON $(CMAKE_ARGS)
	cmake --build $(BUILD) -j$(JOBS)
	@sh .ci/ctest.sh $(BUILD)

test-windows:
	@sh .ci/deps.sh windows
	cmake -S . -B $(WIN_BUILD) --toolchain cmake/toolchain-mingw-w64.cmake -DRIPC_WERROR=ON $(CMAKE_ARGS)
	cmake --build $(WIN_BUILD) -j$(JOBS)
	@sh .ci/wine.sh $(WIN_BUILD)

bench-windows:
	@sh .ci/deps.sh windows
	cmake -S . -B $(WIN_BUILD) --toolchain cmake/toolchain-mingw-w64.cmake -DRIPC_WERROR=ON $(CMAKE_ARGS)
	cmake --build $(WIN_BUILD) -j$(JOBS) --target ringipc-bench
	@sh .ci/wine.sh --run $(WIN_BUILD) $(WIN_BUILD)/bench/ringipc-bench.exe $(BENCH_ARGS)

bench-build:
	@sh .ci/deps.sh bench
	cmake -S . -B $(BENCH_BUILD) -DCMAKE_BUILD_TYPE=Release -DRIPC_BUILD_TESTS=OFF $(CMAKE_ARGS)
	cmake --build $(BENCH_BUILD) -j$(JOBS)

bench: bench-build
	$(BENCH_BUILD)/bench/ringipc-bench $(BENCH_ARGS)
	@echo
	@$(MAKE) --no-print-directory pybench

bench-python: bench-build
	@$(MAKE) --no-print-directory pybench

# The library of the Release build and the package of this tree.
pybench:
	@if command -v $(PYTHON) >/dev/null 2>&1; then \
	  RINGIPC_LIBRARY=$(CURDIR)/$(BENCH_BUILD)/libringipc.so PYTHONPATH=$(CURDIR)/python \
	    $(PYTHON) bench/python/pybench.py $(PYBENCH_ARGS); \
	else echo "pybench: skipped, no $(PYTHON)"; fi

bench-suites: bench-build
	cmake --build $(BENCH_BUILD) --target bench-suites

bench-ring: bench-suites

format:
	clang-format -i $$(git ls-files '*.c' '*.h' '*.cc')

clean:
	rm -rf $(BUILD) $(BENCH_BUILD) $(WIN_BUILD)
