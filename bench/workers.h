/* SPDX-License-Identifier: MIT */
/* ringipc-bench --workers: one master, many workers (bench/workers.c). */
#ifndef RIPC_BENCH_WORKERS_H
#define RIPC_BENCH_WORKERS_H

enum { W_IDLE = 0, W_BUSY = 1 };

struct wresult {
    double p50_us, p99_us; /* W_IDLE: the busy worker's round trip */
    double idle_cpu;       /* W_IDLE: master CPU (s/s) with only the idle ones */
    double rate;           /* W_BUSY: messages/s through the master */
    double busy_cpu;       /* W_BUSY: master CPU (s/s) meanwhile */
};

/* Run the --workers tables: counts[ncounts] workers, reps repetitions of
 * budget_s each; busy_rows 0: the idle table only; the transport
 * (RIPC_TRANSPORT_SHM or _SOCKET) the idle workers ask for, and the one the
 * busy and sending workers ask for. 0, or 1 when a run failed. */
int workers_main(const int *counts, int ncounts, int reps, double budget_s, int busy_rows,
                 int idle_transport, int busy_transport);

#endif
