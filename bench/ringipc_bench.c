/* SPDX-License-Identifier: MIT */
/*
 * ringipc-bench: side-by-side round trip and one-way throughput between two
 * processes pinned to two CPUs (--same-cpu: both to one), for ringipc and the
 * mechanisms it competes with. Every row runs in the same invocation, repetitions interleaved, so
 * the ratios compare like with like on this machine, now.
 *
 * This file: options, the rows, repetitions, medians and ratios. run.c
 * measures one run, run_posix.c / run_win32.c start its processes;
 * rows_posix.c / rows_win32.c list the rows; xport_*.c are the transports;
 * report.c prints.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringipc/ringipc.h"

#include "bench.h"
#include "workers.h"

#define MAX_SIZES         8
#define MAX_ROWS          512
#define DEFAULT_BUDGET_MS 150

/* "8,64,1k,64K,1M" -> sizes; returns the new count, or -1. */
static int parse_sizes(const char *arg, size_t *sizes, int n)
{
    const char *p = arg;
    while (*p) {
        char *e;
        unsigned long long v = strtoull(p, &e, 0);
        if (*e == 'k' || *e == 'K')
            v <<= 10, e++;
        else if (*e == 'm' || *e == 'M')
            v <<= 20, e++;
        if (e == p || v == 0 || v > (64ull << 20) || (*e && *e != ',') || n >= MAX_SIZES)
            return -1;
        sizes[n++] = v < 8 ? 8 : (size_t)v;
        p = *e ? e + 1 : e;
    }
    return n;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(const double *v, int n)
{
    double t[MAX_REPS];
    if (n == 0)
        return 0;
    memcpy(t, v, (size_t)n * sizeof *t);
    qsort(t, (size_t)n, sizeof *t, cmp_d);
    return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

/* One row: n/a rows keep their reason. */
static void add_row(struct row *r, const struct xport *x, size_t size, int oneway, int first)
{
    memset(r, 0, sizeof *r);
    r->x = x;
    r->size = size;
    r->oneway = oneway;
    struct xp_run probe = {.size = size, .oneway = oneway, .arg = x->arg};
    if (x->na && x->na(&probe, r->status, sizeof r->status))
        r->show_status = !(x->flags & XP_NOT_BUILT) || first;
}

/* --only keeps the baselines. */
static int kept(const struct xport *x)
{
    for (size_t i = 0; i < bench_rows.nkeep; i++)
        if (bench_rows.keep[i] == x)
            return 1;
    return 0;
}

/* The rows to measure; same_cpu leaves out those that spin (XP_SPINS). */
static int add_rows(struct row *rows, const size_t *sizes, int nsizes, const char *only,
                    size_t large, int same_cpu)
{
    int n = 0;
    for (int oneway = 0; oneway < 2; oneway++)
        for (int z = 0; z < nsizes; z++)
            for (size_t k = 0; k < bench_rows.n; k++) {
                const struct xport *x = bench_rows.list[k];
                if (!(x->flags & (oneway ? XP_ONEWAY : XP_RTT)) ||
                    (same_cpu && (x->flags & XP_SPINS)))
                    continue;
                if (only && !strstr(x->name, only) && !kept(x))
                    continue;
                add_row(&rows[n++], x, sizes[z], oneway, z == 0);
            }
    /* The large-message path beside the same bytes over a unix socket:
     * copied, lent, and written then copied; then the same to the worker,
     * from the master. */
    static const struct xport *const big[2][3] = {
        {&xp_ripc_large, &xp_ripc_large_loan, &xp_ripc_large_fill},
        {&xp_ripc_m2w_large, &xp_ripc_m2w_large_loan, &xp_ripc_m2w_large_fill}};
    int unix_large = 0;
    if (!bench_rows.large)
        large = 0;
    for (int d = 0; large && d < 2; d++) {
        int any = !only;
        for (int k = 0; k < 3; k++)
            any |= only && strstr(big[d][k]->name, only) != NULL;
        if (!any)
            continue;
        if (!unix_large++)
            add_row(&rows[n++], bench_rows.base, large, 1, 1);
        for (int k = 0; k < 3; k++)
            add_row(&rows[n++], big[d][k], large, 1, 1);
    }
    return n;
}

/* The measured row of transport x at r's size and direction, or NULL. */
static struct row *peer_row(struct row *rows, int nrows, const struct row *r, const struct xport *x)
{
    for (int j = 0; j < nrows; j++)
        if (rows[j].x == x && rows[j].size == r->size && rows[j].oneway == r->oneway &&
            !rows[j].status[0])
            return &rows[j];
    return NULL;
}

/* Median over repetitions of a's msgs/s over b's, repetition by repetition. */
static double rate_ratio(const struct row *a, const struct row *b)
{
    double v[MAX_REPS];
    int n = a->reps < b->reps ? a->reps : b->reps;
    for (int k = 0; k < n; k++)
        v[k] = a->rep[k].v[M_RATE] / b->rep[k].v[M_RATE];
    return median(v, n);
}

static void summarise(struct row *rows, int nrows)
{
    for (int i = 0; i < nrows; i++) {
        struct row *r = &rows[i], *base = peer_row(rows, nrows, r, bench_rows.base);
        struct row *naive = bench_rows.naive ? peer_row(rows, nrows, r, bench_rows.naive) : NULL;
        if (r->status[0])
            continue;
        r->ratio_naive = naive && r->oneway ? rate_ratio(r, naive) : 0;
        for (int m = 0; m < M_COUNT; m++) {
            double v[MAX_REPS];
            for (int k = 0; k < r->reps; k++)
                v[k] = r->rep[k].v[m];
            if (m == M_MAX) {
                qsort(v, (size_t)r->reps, sizeof *v, cmp_d);
                r->med.v[m] = v[r->reps - 1];
            } else {
                r->med.v[m] = median(v, r->reps);
            }
        }
        for (int k = 0; base && k < r->reps && k < base->reps; k++) {
            const double *a = r->rep[k].v, *b = base->rep[k].v;
            r->ratio[k] = r->oneway ? a[M_RATE] / b[M_RATE] : a[M_P50] / b[M_P50];
        }
        r->ratio_med = base ? median(r->ratio, r->reps < base->reps ? r->reps : base->reps) : 0;
    }
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ringipc-bench [options]\n"
            "  --size LIST      message sizes, e.g. 8,64,1k,64k,1M (default 64,1k,64k,1M)\n"
            "  --repeat N       repetitions, interleaved (default 3, at most %d)\n"
            "  --time MS        length of one run (default %d ms)\n"
            "  --quick          runs of a fifth of that\n"
            "  --only TEXT      only rows whose name contains TEXT (and the unix socket,\n"
            "                   the bare flag and eventfd: the baselines)\n"
            "  --large SIZE     one-way rows for the large-message path at SIZE (default\n"
            "                   16M; 0: none)\n"
            "  --json FILE, --csv FILE   also write the results there\n"
            "  --plot FILE.png  draw latency and throughput per size (needs gnuplot)\n"
            "  --workers LIST   instead: one master with many workers, e.g. 0,1,8,64,256,1000\n"
            "                   (idle + 1 busy: round trip; 1..256 all sending: msgs/s;\n"
            "                   run(1) and run(2); master CPU; --only idle: the first)\n"
            "  --idle-transport shm|socket, --busy-transport shm|socket\n"
            "                   with --workers: the transport the idle workers (the busy\n"
            "                   and sending ones) ask for (default shm)\n"
            "  --same-cpu       both processes on one CPU (the first we may use), without\n"
            "                   the rows that spin (shm flags, naive ring, ringipc spin):\n"
            "                   the sleeping rows and ringipc adaptive, which must not\n"
            "                   spin there; e.g. --same-cpu --only ringipc --size 64\n"
            "  --spin-us N      the ringipc rows' spin_us (adaptive: how long a reader\n"
            "                   spins before it sleeps; default the library's, 50)\n",
            MAX_REPS, DEFAULT_BUDGET_MS);
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {{"quick", no_argument, NULL, 'q'},
                                       {"repeat", required_argument, NULL, 'r'},
                                       {"size", required_argument, NULL, 's'},
                                       {"only", required_argument, NULL, 'o'},
                                       {"time", required_argument, NULL, 't'},
                                       {"json", required_argument, NULL, 'j'},
                                       {"csv", required_argument, NULL, 'c'},
                                       {"plot", required_argument, NULL, 'p'},
                                       {"large", required_argument, NULL, 'L'},
                                       {"workers", required_argument, NULL, 'w'},
                                       {"same-cpu", no_argument, NULL, 'S'},
                                       {"idle-transport", required_argument, NULL, 'I'},
                                       {"busy-transport", required_argument, NULL, 'B'},
                                       {"spin-us", required_argument, NULL, 'U'},
                                       {"help", no_argument, NULL, 'h'},
                                       {0, 0, 0, 0}};
    size_t sizes[MAX_SIZES] = {64, 1024, 65536, 1 << 20};
    size_t large = (size_t)16 << 20;
    int nsizes = 4, user_sizes = 0, reps = 3, quick = 0, same_cpu = 0, ch;
    double budget_s = DEFAULT_BUDGET_MS / 1e3;
    const char *only = NULL, *json = NULL, *csv = NULL, *plot = NULL;
    int wcounts[16], nw = 0, idle_xport = RIPC_TRANSPORT_SHM, busy_xport = RIPC_TRANSPORT_SHM;

    int child = bench_init(argc, argv);
    if (child >= 0)
        return child;
    while ((ch = getopt_long(argc, argv, "qr:s:o:t:h", lo, NULL)) != -1) {
        switch (ch) {
        case 'q':
            quick = 1;
            break;
        case 'r':
            reps = atoi(optarg);
            if (reps < 1 || reps > MAX_REPS) {
                fprintf(stderr, "ringipc-bench: --repeat takes 1..%d\n", MAX_REPS);
                return 2;
            }
            break;
        case 's':
            nsizes = parse_sizes(optarg, sizes, user_sizes ? nsizes : 0);
            user_sizes = 1;
            if (nsizes < 0) {
                fprintf(stderr, "ringipc-bench: bad --size %s\n", optarg);
                return 2;
            }
            break;
        case 't':
            budget_s = atof(optarg) / 1e3;
            if (budget_s <= 0) {
                fprintf(stderr, "ringipc-bench: bad --time %s\n", optarg);
                return 2;
            }
            break;
        case 'o':
            only = optarg;
            break;
        case 'L': {
            size_t one[1];
            if (strcmp(optarg, "0") == 0)
                large = 0;
            else if (parse_sizes(optarg, one, 0) == 1)
                large = one[0];
            else {
                fprintf(stderr, "ringipc-bench: bad --large %s\n", optarg);
                return 2;
            }
            break;
        }
        case 'j':
            json = optarg;
            break;
        case 'c':
            csv = optarg;
            break;
        case 'p':
            plot = optarg;
            break;
        case 'w':
            for (const char *p = optarg; *p && nw < 16;) {
                char *e;
                long v = strtol(p, &e, 10);
                if (e == p || v < 0 || v > 4096 || (*e && *e != ',')) {
                    fprintf(stderr, "ringipc-bench: bad --workers %s\n", optarg);
                    return 2;
                }
                wcounts[nw++] = (int)v;
                p = *e ? e + 1 : e;
            }
            break;
        case 'S':
            same_cpu = 1;
            break;
        case 'U': {
            char *e;
            long v = strtol(optarg, &e, 10);
            if (e == optarg || *e || v < 1 || v > 1000000) {
                fprintf(stderr, "ringipc-bench: --spin-us takes 1..1000000\n");
                return 2;
            }
            bench_spin_us = (unsigned)v;
            break;
        }
        case 'I':
        case 'B': {
            int t = strcmp(optarg, "socket") == 0 ? RIPC_TRANSPORT_SOCKET
                    : strcmp(optarg, "shm") == 0  ? RIPC_TRANSPORT_SHM
                                                  : -1;
            if (t < 0) {
                fprintf(stderr, "ringipc-bench: bad --%s-transport %s (shm or socket)\n",
                        ch == 'I' ? "idle" : "busy", optarg);
                return 2;
            }
            *(ch == 'I' ? &idle_xport : &busy_xport) = t;
            break;
        }
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (quick)
        budget_s /= 5;
    if (nw)
        return workers_main(wcounts, nw, reps, budget_s, !only || strcmp(only, "idle") != 0,
                            idle_xport, busy_xport);

    static struct row rows[MAX_ROWS];
    char model[128], command[512] = "";
    bench_cpu_model(model, sizeof model);
    for (int i = 0; i < argc; i++)
        snprintf(command + strlen(command), sizeof command - strlen(command), "%s%s", i ? " " : "",
                 argv[i]);
    struct report rep = {.cpu_model = model,
                         .where = bench_where(),
                         .cpu = bench_pick_cpus(same_cpu),
                         .reps = reps,
                         .budget_s = budget_s,
                         .command = command,
                         .rows = rows,
                         .nrows = add_rows(rows, sizes, nsizes, only, large, same_cpu)};

    int runs = 0;
    for (int i = 0; i < rep.nrows; i++)
        runs += !rows[i].status[0];
    fprintf(stderr, "ringipc-bench: %d runs of ~%.0f ms, %d repetitions\n", runs, budget_s * 1e3,
            reps);
    int failed = 0;
    for (int k = 0; k < reps; k++) {
        for (int i = 0; i < rep.nrows; i++) {
            struct row *r = &rows[i];
            char why[160];
            if (r->status[0])
                continue;
            /* Messages of megabytes: a run long enough for more than a
             * handful of them, and past the first ones (fresh pages). */
            double b = r->size >= ((size_t)8 << 20) && budget_s < 0.5 ? 0.5 : budget_s;
            if (run_one(r->x, r->size, r->oneway, b, rep.cpu, &r->rep[r->reps], why, sizeof why) <
                0) {
                snprintf(r->status, sizeof r->status, "FAILED: %s", why);
                r->show_status = 1;
                fprintf(stderr, "FAILED %s %s/%zu: %s\n", r->x->name,
                        r->oneway ? "one-way" : "round trip", r->size, why);
                failed = 1;
                continue;
            }
            r->reps++;
        }
        fprintf(stderr, "ringipc-bench: repetition %d/%d done\n", k + 1, reps);
    }
    summarise(rows, rep.nrows);
    report_table(&rep);
    if (json && report_json(&rep, json) < 0)
        failed = 1;
    if (csv && report_csv(&rep, csv) < 0)
        failed = 1;
    if (plot)
        report_plot(&rep, plot);
    return failed;
}
