/* SPDX-License-Identifier: MIT */
/* ringipc-bench output: the table, JSON, CSV and a gnuplot chart. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

static const char *size_str(size_t size, char *buf, size_t len)
{
    if (size >= (1u << 20) && size % (1u << 20) == 0)
        snprintf(buf, len, "%zuM", size >> 20);
    else if (size >= 1024 && size % 1024 == 0)
        snprintf(buf, len, "%zuK", size >> 10);
    else
        snprintf(buf, len, "%zu", size);
    return buf;
}

/* Latency in microseconds with three significant digits or so. */
static const char *us_str(double us, char *buf, size_t len)
{
    snprintf(buf, len, us < 10 ? "%.2f" : us < 1000 ? "%.1f" : "%.0f", us);
    return buf;
}

static int is_row(const struct row *r, const char *name)
{
    return strcmp(r->x->name, name) == 0;
}

static const struct row *find(const struct report *rp, const char *name, size_t size, int oneway)
{
    for (int i = 0; i < rp->nrows; i++) {
        const struct row *r = &rp->rows[i];
        if (r->size == size && r->oneway == oneway && is_row(r, name) && !r->status[0])
            return r;
    }
    return NULL;
}

static void print_rtt(const struct row *r)
{
    char p[5][24], sz[24];
    for (int m = M_P50; m <= M_MAX; m++)
        us_str(r->med.v[m], p[m - M_P50], sizeof p[0]);
    printf("%-33s %5s %8s %8s %8s %8s %8s %7.3fx %6.0f%% %6.0f%%\n", r->x->name,
           size_str(r->size, sz, sizeof sz), p[0], p[1], p[2], p[3], p[4], r->ratio_med,
           r->med.v[M_CCPU], r->med.v[M_SCPU]);
}

static void print_oneway(const struct row *r)
{
    char sz[24];
    printf("%-33s %5s %12.0f %10.1f %7.2fx %6.0f%% %6.0f%%\n", r->x->name,
           size_str(r->size, sz, sizeof sz), r->med.v[M_RATE], r->med.v[M_BPS] / 1e6, r->ratio_med,
           r->med.v[M_CCPU], r->med.v[M_SCPU]);
}

static void print_section(const struct report *rp, int oneway)
{
    size_t last = 0;
    char vs[24];
    snprintf(vs, sizeof vs, "vs %s", bench_rows.base_name);
    if (!oneway)
        printf("\nRound trip (microseconds): the client sends SIZE bytes, the server echoes them\n"
               "%-33s %5s %8s %8s %8s %8s %8s %8s %7s %7s\n",
               "row", "size", "p50", "p90", "p99", "p99.9", "max", vs, "cpu cli", "cpu srv");
    else
        printf("\nOne-way: the client sends SIZE-byte messages, the server reads every byte\n"
               "%-33s %5s %12s %10s %8s %7s %7s\n",
               "row", "size", "msgs/s", "MB/s", vs, "cpu snd", "cpu rcv");
    for (int i = 0; i < rp->nrows; i++) {
        const struct row *r = &rp->rows[i];
        char sz[24];
        if (r->oneway != oneway)
            continue;
        if (last && r->size != last)
            printf("\n");
        last = r->size;
        if (r->status[0]) {
            if (r->show_status)
                printf("%-33s %5s   %s\n", r->x->name, size_str(r->size, sz, sizeof sz), r->status);
        } else if (oneway) {
            print_oneway(r);
        } else {
            print_rtt(r);
        }
    }
}

/* ringipc against the floor of its own kind (bench_rows.floors). */
static void print_floors(const struct report *rp)
{
    size_t npairs = bench_rows.nfloors - (rp->cpu.server != rp->cpu.client);
    const char *const(*pairs)[2] = bench_rows.floors;
    printf("\n");
    for (int i = 0; i < rp->nrows; i++) {
        const struct row *r = &rp->rows[i];
        for (size_t k = 0; k < npairs; k++) {
            if (r->oneway || r->status[0] || !is_row(r, pairs[k][0]))
                continue;
            const struct row *b = find(rp, pairs[k][1], r->size, 0);
            if (b)
                printf("%-16s %8zu B: p50 %.2fx %s\n", r->x->name, r->size,
                       r->med.v[M_P50] / b->med.v[M_P50], b->x->name);
        }
    }
}

/* Median over the repetitions of a's msgs/s over b's, repetition by
 * repetition (the two ran back to back: a slow moment of the machine
 * weighs on both). */
static double paired_rate_ratio(const struct row *a, const struct row *b)
{
    double v[MAX_REPS];
    int n = a->reps < b->reps ? a->reps : b->reps;
    for (int k = 0; k < n; k++)
        v[k] = a->rep[k].v[M_RATE] / b->rep[k].v[M_RATE];
    for (int i = 1; i < n; i++) /* insertion sort: a handful */
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return n == 0 ? 0 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Loans against the copying sends of the same channel, one-way (msgs/s):
 * the copy of bytes the sender already has, and the copy of bytes it
 * wrote for this message (the loan writes them in place). */
static void print_loans(const struct report *rp)
{
    static const char *const rows[][3] = {
        {"ringipc adaptive loan", "ringipc adaptive", "ringipc adaptive fill+copy"},
        {"ringipc large loan (memfd)", "ringipc large (memfd)", "ringipc large fill+copy (memfd)"},
        {"ringipc to worker loan", "ringipc to worker", "ringipc to worker fill+copy"},
        {"ringipc to worker memfd loan", "ringipc to worker memfd",
         "ringipc to worker memfd fill+copy"}};
    int any = 0;
    for (int i = 0; i < rp->nrows; i++) {
        const struct row *r = &rp->rows[i];
        for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
            if (!r->oneway || r->status[0] || !is_row(r, rows[k][0]))
                continue;
            const struct row *copy = find(rp, rows[k][1], r->size, 1);
            const struct row *fill = find(rp, rows[k][2], r->size, 1);
            if (!copy && !fill)
                continue;
            if (!any++)
                printf(
                    "\nLoans, msgs/s over the copying send's (median of per-repetition ratios):\n"
                    "  vs copy: the sender's bytes were ready; vs fill+copy: the sender wrote\n"
                    "  them for this message, as the loan does in place\n");
            char sz[24];
            printf("%-33s %5s:", r->x->name, size_str(r->size, sz, sizeof sz));
            if (copy)
                printf(" %.2fx vs copy", paired_rate_ratio(r, copy));
            if (fill)
                printf("%s %.2fx vs fill+copy", copy ? "," : "", paired_rate_ratio(r, fill));
            printf("\n");
        }
    }
}

/* ringipc one-way against the naive ring (naive_ring.h): what the checks,
 * the framing and the dispatch cost over a ring that trusts its peer. */
static void print_ceilings(const struct report *rp)
{
    int any = 0;
    for (int i = 0; i < rp->nrows; i++) {
        const struct row *r = &rp->rows[i];
        if (!r->oneway || r->status[0] || r->ratio_naive == 0 || strncmp(r->x->name, "ringipc", 7))
            continue;
        if (!any++)
            printf("\nOne-way msgs/s over the naive ring's (median of per-repetition ratios):\n");
        printf("%-33s %8zu B: %.2fx naive ring\n", r->x->name, r->size, r->ratio_naive);
    }
}

void report_table(const struct report *rp)
{
    printf("ringipc-bench: %s; server on CPU %d, client on CPU %d; %d repetitions "
           "(interleaved), %.0f ms a run\n",
           rp->cpu_model, rp->cpu.server, rp->cpu.client, rp->reps, rp->budget_s * 1e3);
    if (rp->where)
        printf("%s\n", rp->where);
    print_section(rp, 0);
    print_section(rp, 1);
    print_floors(rp);
    print_loans(rp);
    print_ceilings(rp);
    printf("\n%s", bench_rows.notes);
}

/* ---- machine-readable ---- */

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        if ((unsigned char)*s >= 0x20)
            fputc(*s, f);
    }
    fputc('"', f);
}

static int metric_applies(const struct row *r, int m)
{
    if (m == M_CCPU || m == M_SCPU)
        return 1;
    return r->oneway ? (m == M_RATE || m == M_BPS) : m <= M_MAX;
}

static FILE *open_out(const char *path)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        fprintf(stderr, "ringipc-bench: %s: %s\n", path, strerror(errno));
    return f;
}

static int close_out(FILE *f, const char *path)
{
    if (fclose(f) != 0) {
        fprintf(stderr, "ringipc-bench: %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

int report_json(const struct report *rp, const char *path)
{
    FILE *f = open_out(path);
    if (f == NULL)
        return -1;
    fprintf(f, "{\n  \"cpu_model\": ");
    json_str(f, rp->cpu_model);
    fprintf(f, ",\n  \"command\": ");
    json_str(f, rp->command);
    fprintf(f,
            ",\n  \"cpu_server\": %d, \"cpu_client\": %d, \"repetitions\": %d, "
            "\"run_ms\": %.0f,\n  \"results\": [",
            rp->cpu.server, rp->cpu.client, rp->reps, rp->budget_s * 1e3);
    for (int i = 0; i < rp->nrows; i++) {
        const struct row *r = &rp->rows[i];
        fprintf(f, "%s\n    {\"row\": ", i ? "," : "");
        json_str(f, r->x->name);
        fprintf(f, ", \"mode\": \"%s\", \"size\": %zu, \"status\": ", r->oneway ? "oneway" : "rtt",
                r->size);
        json_str(f, r->status[0] ? r->status : "ok");
        if (r->status[0]) {
            fprintf(f, "}");
            continue;
        }
        fprintf(f, ", \"ratio_vs_unix\": %.6g, \"ratio_vs_naive\": %.6g, \"ratio_reps\": [",
                r->ratio_med, r->ratio_naive);
        for (int k = 0; k < r->reps; k++)
            fprintf(f, "%s%.6g", k ? ", " : "", r->ratio[k]);
        fprintf(f, "], \"metrics\": {");
        for (int m = 0, first = 1; m < M_COUNT; m++) {
            if (!metric_applies(r, m))
                continue;
            fprintf(f, "%s\n      \"%s\": {\"median\": %.6g, \"reps\": [", first ? "" : ",",
                    metric_name[m], r->med.v[m]);
            first = 0;
            for (int k = 0; k < r->reps; k++)
                fprintf(f, "%s%.6g", k ? ", " : "", r->rep[k].v[m]);
            fprintf(f, "]}");
        }
        fprintf(f, "}}");
    }
    fprintf(f, "\n  ]\n}\n");
    return close_out(f, path);
}

int report_csv(const struct report *rp, const char *path)
{
    FILE *f = open_out(path);
    if (f == NULL)
        return -1;
    fprintf(f, "row,mode,size,metric,median,reps,ratio_vs_unix,cpu_client_pct,cpu_server_pct,"
               "status\n");
    for (int i = 0; i < rp->nrows; i++) {
        const struct row *r = &rp->rows[i];
        const char *mode = r->oneway ? "oneway" : "rtt";
        if (r->status[0]) {
            fprintf(f, "%s,%s,%zu,,,,,,,\"%s\"\n", r->x->name, mode, r->size, r->status);
            continue;
        }
        for (int m = 0; m < M_COUNT; m++) {
            if (!metric_applies(r, m))
                continue;
            fprintf(f, "%s,%s,%zu,%s,%.6g,", r->x->name, mode, r->size, metric_name[m],
                    r->med.v[m]);
            for (int k = 0; k < r->reps; k++)
                fprintf(f, "%s%.6g", k ? ";" : "", r->rep[k].v[m]);
            fprintf(f, ",%.6g,%.1f,%.1f,ok\n", r->ratio_med, r->med.v[M_CCPU], r->med.v[M_SCPU]);
        }
    }
    return close_out(f, path);
}

/* ---- gnuplot ---- */

static int have_gnuplot(void)
{
    const char *path = getenv("PATH");
    char dir[512], exe[600];
    while (path && *path) {
        size_t n = strcspn(path, ":");
        snprintf(dir, sizeof dir, "%.*s", (int)n, path);
        snprintf(exe, sizeof exe, "%s/gnuplot", n ? dir : ".");
        if (access(exe, X_OK) == 0)
            return 1;
        path += n + (path[n] == ':');
    }
    return 0;
}

/* One data block per row (gnuplot "index"): size, then the metrics. */
static int write_blocks(const struct report *rp, const char *path, int oneway, FILE *gp,
                        const char *using, const char *with)
{
    FILE *f = fopen(path, "w");
    int block = 0;
    if (f == NULL)
        return -1;
    for (int i = 0; i < rp->nrows; i++) {
        const struct row *r = &rp->rows[i];
        int seen = 0;
        if (r->oneway != oneway || r->status[0])
            continue;
        for (int j = 0; j < i && !seen; j++) /* one block per name, every size */
            seen = rp->rows[j].oneway == oneway && rp->rows[j].x == r->x;
        if (seen)
            continue;
        for (int j = i; j < rp->nrows; j++) {
            const struct row *s = &rp->rows[j];
            if (s->oneway == oneway && s->x == r->x && !s->status[0])
                fprintf(f, "%zu %g %g %g\n", s->size, s->med.v[M_P50], s->med.v[M_P99],
                        s->med.v[M_BPS] / 1e6);
        }
        fprintf(f, "\n\n");
        fprintf(gp, "%s'%s' index %d using %s with %s title '%s'", block ? ", \\\n  " : "", path,
                block, using, with, r->x->name);
        block++;
    }
    fprintf(gp, block ? "\n" : "NaN notitle\n");
    fclose(f);
    return block;
}

void report_plot(const struct report *rp, const char *out)
{
    char gpath[64], rtt[64], ow[64], cmd[160];
    if (!have_gnuplot()) {
        printf("\nno plot: gnuplot not found (apt-get install gnuplot-nox)\n");
        return;
    }
    snprintf(gpath, sizeof gpath, "/tmp/ringipc-bench-%d.gp", (int)getpid());
    snprintf(rtt, sizeof rtt, "/tmp/ringipc-bench-%d.rtt", (int)getpid());
    snprintf(ow, sizeof ow, "/tmp/ringipc-bench-%d.oneway", (int)getpid());
    FILE *gp = fopen(gpath, "w");
    if (gp == NULL) {
        printf("\nno plot: %s: %s\n", gpath, strerror(errno));
        return;
    }
    fprintf(gp,
            "set terminal pngcairo size 1800,650 font ',10'\nset output '%s'\n"
            "set multiplot layout 1,3 title 'ringipc-bench: %s'\n"
            "set logscale xy\nset grid\nset key outside bottom center maxrows 6 font ',8'\n"
            "set xlabel 'message bytes'\n",
            out, rp->cpu_model);
    fprintf(gp, "set title 'round trip p50'\nset ylabel 'microseconds'\nplot ");
    write_blocks(rp, rtt, 0, gp, "1:2", "linespoints");
    fprintf(gp, "set title 'round trip p99'\nplot ");
    write_blocks(rp, rtt, 0, gp, "1:3", "linespoints");
    fprintf(gp, "set title 'one-way throughput'\nset ylabel 'MB/s'\nplot ");
    write_blocks(rp, ow, 1, gp, "1:4", "linespoints");
    fprintf(gp, "unset multiplot\n");
    fclose(gp);
    snprintf(cmd, sizeof cmd, "gnuplot %s", gpath);
    int rc = system(cmd);
    printf("\n%s %s\n", rc == 0 ? "plot written to" : "gnuplot failed, no plot:", out);
    unlink(gpath);
    unlink(rtt);
    unlink(ow);
}
