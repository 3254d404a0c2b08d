// SPDX-License-Identifier: MIT
//
// google-benchmark suite for request/reply through the public API: this
// process is a worker (pinned to one CPU) calling ripc_client_request; a
// forked master (pinned to another) echoes every request from its handler
// with ripc_reply. One iteration = one round trip, checked (shim_ripc.c).
//
//   BM_request/bytes:N/wait:W    wait: 1 = RIPC_WAIT_SPIN, 2 = RIPC_WAIT_BLOCK

#include <benchmark/benchmark.h>

#include <cstdint>

#include "shim.h"
#include "suite.h"

namespace
{

void BM_request(benchmark::State &state)
{
    const auto len = static_cast<size_t>(state.range(0));
    char why[256] = "";
    ripc_bench_worker *w = nullptr;
    if (ripc_bench_worker_open(&w, len, static_cast<int>(state.range(1)), why, sizeof why) < 0) {
        state.SkipWithError(why);
        return;
    }
    uint64_t seq = 0;
    bool ok = true;
    for (auto _ : state) {
        if (ripc_bench_worker_request(w, seq++) < 0) {
            ok = false;
            break;
        }
    }
    const int rc = ripc_bench_worker_close(w, why, sizeof why);
    if (!ok || rc < 0) {
        state.SkipWithError(why[0] != '\0' ? why : "a request failed");
        return;
    }
    state.SetItemsProcessed(static_cast<int64_t>(seq));
}

} // namespace

BENCHMARK(BM_request)->Apply(ripc_bench_sizes_and_waits);

BENCHMARK_MAIN();
