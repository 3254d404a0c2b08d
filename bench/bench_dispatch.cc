// SPDX-License-Identifier: MIT
//
// google-benchmark suite for the master's dispatch, through the public API.
// This process is the master (pinned to one CPU); a forked worker (pinned to
// another) is the other end. All the plumbing is C, in shim_ripc.c.
//
//   BM_dispatch_worker_send/bytes:N/wait:W
//       the worker streams ripc_client_send; the master's handler checks and
//       counts each message. One iteration = one ripc_server_poll (any number
//       of messages): read items_per_second, not the time per iteration.
//   BM_dispatch_master_send/bytes:N/wait:W
//       one iteration = one ripc_server_send; the worker ripc_client_recv's
//       and checks; the last iteration waits until the worker has them all.
//   BM_dispatch_master_send_batch/bytes:N/wait:W
//       the same with ripc_server_send_batch, 16 messages per call (one
//       iteration = one call: read items_per_second).
//
// wait: 1 = RIPC_WAIT_SPIN, 2 = RIPC_WAIT_BLOCK (both sides).

#include <benchmark/benchmark.h>

#include <cstdint>

#include "shim.h"
#include "suite.h"

namespace
{

void finish(benchmark::State &state, ripc_bench_master *m, bool ok, uint64_t items, size_t len)
{
    char why[256] = "";
    const int rc = ripc_bench_master_close(m, why, sizeof why);
    if (!ok || rc < 0) {
        state.SkipWithError(why[0] != '\0' ? why : "worker lost or miscounted messages");
        return;
    }
    state.SetItemsProcessed(static_cast<int64_t>(items));
    state.SetBytesProcessed(static_cast<int64_t>(items * len));
}

// Open a master with its worker for this run, or mark the run skipped.
ripc_bench_master *open_master(benchmark::State &state, int mode)
{
    char why[256] = "";
    ripc_bench_master *m = nullptr;
    if (ripc_bench_master_open(&m, mode, static_cast<size_t>(state.range(0)),
                               static_cast<int>(state.range(1)), why, sizeof why) < 0) {
        state.SkipWithError(why);
        return nullptr;
    }
    return m;
}

void BM_dispatch_worker_send(benchmark::State &state)
{
    ripc_bench_master *m = open_master(state, RIPC_BENCH_WORKER_SENDS);
    if (m == nullptr)
        return;
    uint64_t handled = 0;
    bool ok = true;
    for (auto _ : state) {
        const long n = ripc_bench_master_poll(m);
        if (n < 0) {
            ok = false;
            break;
        }
        handled += static_cast<uint64_t>(n);
    }
    finish(state, m, ok, handled, static_cast<size_t>(state.range(0)));
}

// batch 0: one ripc_server_send per record; else ripc_server_send_batch of
// `batch` records per iteration.
void master_send(benchmark::State &state, unsigned batch)
{
    const unsigned per = batch ? batch : 1;
    const auto last = static_cast<uint64_t>(state.max_iterations) * per;
    ripc_bench_master *m = open_master(state, RIPC_BENCH_MASTER_SENDS);
    if (m == nullptr)
        return;
    uint64_t sent = 0;
    bool ok = true;
    for (auto _ : state) {
        const int rc =
            batch ? ripc_bench_master_send_batch(m, sent, batch) : ripc_bench_master_send(m, sent);
        sent += per;
        if (rc < 0 || (sent == last && ripc_bench_master_drain(m, sent) < 0)) {
            ok = false;
            break;
        }
    }
    finish(state, m, ok, sent, static_cast<size_t>(state.range(0)));
}

void BM_dispatch_master_send(benchmark::State &state)
{
    master_send(state, 0);
}

void BM_dispatch_master_send_batch(benchmark::State &state)
{
    master_send(state, RIPC_BENCH_BATCH);
}

} // namespace

BENCHMARK(BM_dispatch_worker_send)->Apply(ripc_bench_sizes_and_waits);
BENCHMARK(BM_dispatch_master_send)->Apply(ripc_bench_sizes_and_waits);
BENCHMARK(BM_dispatch_master_send_batch)->Apply(ripc_bench_sizes_and_waits);

BENCHMARK_MAIN();
