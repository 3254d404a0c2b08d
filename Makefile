# Thin wrapper over CMake. The two README commands:
#   make test    install missing Debian packages (as root), build, run every test
#   make bench   install missing Debian packages (as root), build Release, run ringipc-bench
#   make bench-suites the google-benchmark suites (ring, dispatch, request/reply), JSON in
#                     build-release/bench_*.json; `make bench-ring` is the same
#   make test-windows install mingw-w64 and wine (as root), cross-build for Windows
#                     in build-mingw, run the Windows tests under wine
# BENCH_ARGS passes options to ringipc-bench (e.g. BENCH_ARGS="--size 8,1M --json out.json").
BUILD       ?= build
BENCH_BUILD ?= build-release
WIN_BUILD   ?= build-mingw
JOBS        ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS  ?=

.PHONY: all test test-windows bench bench-suites bench-ring bench-build clean format

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

bench-build:
	@sh .ci/deps.sh bench
	cmake -S . -B $(BENCH_BUILD) -DCMAKE_BUILD_TYPE=Release -DRIPC_BUILD_TESTS=OFF $(CMAKE_ARGS)
	cmake --build $(BENCH_BUILD) -j$(JOBS)

bench: bench-build
	$(BENCH_BUILD)/bench/ringipc-bench $(BENCH_ARGS)

bench-suites: bench-build
	cmake --build $(BENCH_BUILD) --target bench-suites

bench-ring: bench-suites

format:
	clang-format -i $$(git ls-files '*.c' '*.h' '*.cc')

clean:
	rm -rf $(BUILD) $(BENCH_BUILD) $(WIN_BUILD)
