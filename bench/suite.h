// SPDX-License-Identifier: MIT
// What the master/worker google-benchmark suites share.
#ifndef RIPC_BENCH_SUITE_H
#define RIPC_BENCH_SUITE_H

#include <benchmark/benchmark.h>

#include <cstdint>

#include "ringipc/ringipc.h"

// Arguments {bytes, wait}: 64 B and 1 KiB, spinning and blocking.
inline void ripc_bench_sizes_and_waits(benchmark::internal::Benchmark *b)
{
    for (int64_t wait : {RIPC_WAIT_SPIN, RIPC_WAIT_BLOCK})
        for (int64_t size : {64, 1024})
            b->Args({size, wait});
    b->ArgNames({"bytes", "wait"})->UseRealTime();
}

#endif // RIPC_BENCH_SUITE_H
