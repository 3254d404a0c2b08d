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

/* Run `x` once: start a server and a client, measure for about budget_s
 * seconds. Returns 0, or -1 with the reason in why. */
int run_one(const struct xport *x, size_t size, int oneway, double budget_s, struct cpus cpu,
            struct result *out, char *why, size_t why_len);
/* The two sides of a run (run.c), each in its own process: the exit code. */
int xp_server_side(const struct xport *x, struct xp_run *r, double budget_s);
int xp_client_side(const struct xport *x, struct xp_run *r, double budget_s);

/*
 * What differs by platform: run_posix.c (fork) and run_win32.c
 * (CreateProcess of this program in a child role).
 *
 * bench_init: first thing in main. -1: go on; else this process was a
 * child and that is its exit code. bench_launch: start the server side on
 * cpu.server and the client side on cpu.client with r, wait for both (up
 * to timeout_s, then kill them); 0 when both exited 0, else -1 with the
 * reason in why (when it knows one). bench_where: NULL, or a line saying
 * where the numbers were measured when the machine is not what it seems
 * (wine).
 */
int bench_init(int argc, char **argv);
struct xp_page *bench_page(void);
int bench_launch(const struct xport *x, struct xp_run *r, struct cpus cpu, double budget_s,
                 double timeout_s, char *why, size_t why_len);
struct cpus bench_pick_cpus(int same_cpu);
/* --spin-us: the ringipc rows' spin_us (0: the library's default). */
extern unsigned bench_spin_us;
void bench_cpu_model(char *buf, size_t len);
const char *bench_where(void);

/* The platform's rows (rows_posix.c, rows_win32.c). */
struct bench_rows {
    const struct xport *const *list; /* in table order */
    size_t n;
    const struct xport *base; /* the "vs <base_name>" column divides by its numbers */
    const char *base_name;
    const struct xport *const *keep; /* kept by --only: the baselines */
    size_t nkeep;
    const struct xport *naive; /* the one-way ceiling, or NULL */
    /* ringipc row, the floor of its kind it is compared with; the last
     * pair only with both processes on one CPU */
    const char *const (*floors)[2];
    size_t nfloors;
    int large;         /* the large-message rows exist here */
    const char *notes; /* what the rows are, under the table */
};
extern const struct bench_rows bench_rows;

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
    const char *where; /* bench_where() */
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
