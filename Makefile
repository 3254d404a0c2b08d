# Thin wrapper over CMake. The two README commands:
#   make test    install missing Debian packages (as root), build, run every test
#   make bench   install missing Debian packages (as root), build Release, run the benchmark
BUILD       ?= build
BENCH_BUILD ?= build-release
JOBS        ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS  ?=

.PHONY: all test bench deps clean format

all: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS)

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DRIPC_WERROR=ON $(CMAKE_ARGS)

test:
	@sh .ci/deps.sh test
	cmake -S . -B $(BUILD) -DRIPC_WERROR=ON $(CMAKE_ARGS)
	cmake --build $(BUILD) -j$(JOBS)
	@sh .ci/ctest.sh $(BUILD)

bench:
	@sh .ci/deps.sh bench
	cmake -S . -B $(BENCH_BUILD) -DCMAKE_BUILD_TYPE=Release -DRIPC_BUILD_TESTS=OFF $(CMAKE_ARGS)
	cmake --build $(BENCH_BUILD) -j$(JOBS)
	cmake --build $(BENCH_BUILD) --target bench-ring

format:
	clang-format -i $$(git ls-files '*.c' '*.h' '*.cc')

clean:
	rm -rf $(BUILD) $(BENCH_BUILD)
