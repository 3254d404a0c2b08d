// SPDX-License-Identifier: MIT
//
// google-benchmark suite for the raw SPSC ring (include/ringipc/ring.h),
// with a unix-socket stream as the baseline in the same run.
//
// Every benchmark moves records of state.range(0) bytes from this process
// (pinned to one CPU) to a forked consumer (pinned to another); one iteration
// is one record. The last iteration also waits until the consumer has taken
// every record, so real time covers the whole transfer, not just the
// enqueueing. All the plumbing is C, in shim.c; this file is only the loop.
//
//   BM_ring_push_pop/N        ripc_ring_push -> ripc_ring_pop (copy both sides)
//   BM_ring_reserve_commit/N  reserve + write + commit -> peek + release
//   BM_unix_stream/N          write([u32 len][payload]) -> read(256 KiB) + parse
//   BM_naive_ring/N           the naive ring (naive_ring.h: no checks) push -> pop
//
// Compare items_per_second of BM_ring_push_pop/N with BM_naive_ring/N (the
// ceiling) and BM_unix_stream/N. The same file builds bench_ring (library
// sources link-time optimised into the program) and bench_ring_shared /
// bench_ring_static (the installed package's way: public headers, the shared
// library or the archive).

#include <benchmark/benchmark.h>

#include <cstdint>

#include "shim.h"

namespace
{

void run_link(benchmark::State &state, int mode)
{
    const auto len = static_cast<size_t>(state.range(0));
    const auto last = static_cast<uint64_t>(state.max_iterations);
    char why[256] = "";
    ripc_bench_link *link = nullptr;

    if (ripc_bench_open(&link, mode, len, why, sizeof why) < 0) {
        state.SkipWithError(why);
        return;
    }
    uint64_t sent = 0;
    bool ok = true;
    for (auto _ : state) {
        if (ripc_bench_send(link, sent) < 0) {
            ok = false;
            break;
        }
        // The last record: wait for the consumer to drain the queue.
        if (++sent == last && ripc_bench_drain(link, sent) < 0) {
            ok = false;
            break;
        }
    }
    const long preempted = ok ? ripc_bench_preempted(link) : 0;
    const int rc = ripc_bench_close(link, why, sizeof why);
    if (!ok || rc < 0) {
        state.SkipWithError(why[0] != '\0' ? why : "consumer lost or miscounted records");
        return;
    }
    // Involuntary context switches of both processes in the last run: other
    // work on the CPUs. Distrust a row where this is more than a few.
    state.counters["preempted"] = static_cast<double>(preempted);
    state.SetItemsProcessed(static_cast<int64_t>(sent));
    state.SetBytesProcessed(static_cast<int64_t>(sent * len));
}

void BM_ring_push_pop(benchmark::State &state)
{
    run_link(state, RIPC_BENCH_PUSH_POP);
}

void BM_ring_reserve_commit(benchmark::State &state)
{
    run_link(state, RIPC_BENCH_RESERVE_COMMIT);
}

void BM_unix_stream(benchmark::State &state)
{
    run_link(state, RIPC_BENCH_UNIX_STREAM);
}

void BM_naive_ring(benchmark::State &state)
{
    run_link(state, RIPC_BENCH_NAIVE_RING);
}

void record_sizes(benchmark::internal::Benchmark *b)
{
    for (int64_t size : {8, 64, 512, 4096, 64 << 10, 1 << 20})
        b->Arg(size);
    b->ArgName("bytes")->UseRealTime();
}

} // namespace

BENCHMARK(BM_ring_push_pop)->Apply(record_sizes);
BENCHMARK(BM_ring_reserve_commit)->Apply(record_sizes);
BENCHMARK(BM_unix_stream)->Apply(record_sizes);
BENCHMARK(BM_naive_ring)->Apply(record_sizes);

BENCHMARK_MAIN();
