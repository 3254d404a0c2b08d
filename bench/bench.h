/* SPDX-License-Identifier: MIT */
/* ringipc-bench: one run (run.c), the rows and their output (report.c). */
#ifndef RIPC_BENCH_BENCH_H
#define RIPC_BENCH_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "xport.h"

#define MAX_REPS 9

/* What one run measured; the metrics a row reports, in output order. */
enum {
    M_P50,
    M_P90,
    M_P99,
    M_P999,
    M_MAX,  /* us, round trip */
    M_RATE, /* messages/s, one-way */
    M_BPS,  /* bytes/s, one-way */
    M_CCPU, /* client (requester / sender): % of one core */
    M_SCPU, /* server (echo / receiver) */
    M_COUNT,
};
extern const char *const metric_name[M_COUNT];

struct result {
    double v[M_COUNT];
    uint64_t messages; /* round trips or one-way messages measured */
};

struct cpus {
    int server, client; /* the CPUs the two processes are pinned to */
};

/* Run `x` once: fork a server and a client, measure for about budget_s
 * seconds. Returns 0, or -1 with the reason in why. */
int run_one(const struct xport *x, size_t size, int oneway, double budget_s, struct cpus cpu,
            struct result *out, char *why, size_t why_len);

struct row {
    const struct xport *x;
    size_t size;
    int oneway;
    char status[200]; /* "" = measured; else "n/a: ...", "skipped: ...", "FAILED: ..." */
    int reps;         /* successful repetitions */
    struct result rep[MAX_REPS];
    double ratio[MAX_REPS]; /* p50 (round trip) or msgs/s (one-way) over the unix socket's */
    struct result med;      /* medians over repetitions (max: the largest) */
    double ratio_med;
    double ratio_naive; /* one-way: msgs/s over the naive ring's, median of repetitions */
    int show_status;    /* print the status line (a skipped library: once) */
};

struct report {
    const char *cpu_model;
    struct cpus cpu;
    int reps;
    double budget_s;
    const char *command;
    struct row *rows;
    int nrows;
};

void report_table(const struct report *r);
int report_json(const struct report *r, const char *path);
int report_csv(const struct report *r, const char *path);
void report_plot(const struct report *r, const char *path);

#endif /* RIPC_BENCH_BENCH_H */
