# Thin wrapper over CMake. The two README commands:
#   make test    install missing Debian packages (as root), build, run every test
#   make bench   install missing Debian packages (as root), build Release, run ringipc-bench
#   make bench-ring   the google-benchmark suites (raw ring vs unix socket), JSON in build-release/
BUILD       ?= build
BENCH_BUILD ?= build-release
JOBS        ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS  ?=

.PHONY: all test bench bench-ring bench-build clean format

all: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS)

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DRIPC_WERROR=ON $(CMAKE_ARGS)

test:
	@sh .ci/deps.sh test
	cmake -S . -B $(BUILD) -DRIPC_WERROR=ON $(CMAKE_ARGS)
	cmake --build $(BUILD) -j$(JOBS)
	@sh .ci/ctest.sh $(BUILD)

bench-build:
	@sh .ci/deps.sh bench
	cmake -S . -B $(BENCH_BUILD) -DCMAKE_BUILD_TYPE=Release -DRIPC_BUILD_TESTS=OFF $(CMAKE_ARGS)
	cmake --build $(BENCH_BUILD) -j$(JOBS)

bench: bench-build
	$(BENCH_BUILD)/bench/ringipc-bench $(BENCH_ARGS)

bench-ring: bench-build
	cmake --build $(BENCH_BUILD) --target bench-ring

format:
	clang-format -i $$(git ls-files '*.c' '*.h' '*.cc')

clean:
	rm -rf $(BUILD) $(BENCH_BUILD)
