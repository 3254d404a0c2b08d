/* SPDX-License-Identifier: MIT */
/*
 * ringipc-stat URL: what a running master's workers are doing, from the
 * master's own control socket (a monitor HELLO; nothing runs in the master
 * but the answer). A table, or JSON, once or every few seconds. Options
 * and output: docs/ringipc-stat.md.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ringipc/ringipc.h"
#include "tools/stat_fetch.h"

#define DEFAULT_TIMEOUT_MS 2000

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

struct args {
    const char *url, *token;
    double watch; /* seconds between snapshots; 0: one snapshot */
    long count;   /* snapshots to print with --watch (0: until Ctrl-C) */
    int json, timeout_ms;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ringipc-stat [options] URL\n"
            "\n"
            "Show what the workers of the ringipc master listening at URL are doing\n"
            "(unix:/path, unix:@name, tcp://host:port), from its own control socket.\n"
            "\n"
            "  --once          one snapshot, then exit (the default)\n"
            "  --watch SECS    a new snapshot every SECS seconds until Ctrl-C\n"
            "  --count N       with --watch: stop after N snapshots\n"
            "  --json          one JSON object per snapshot, one per line\n"
            "  --timeout MS    give up on a master that has not answered in MS\n"
            "                  milliseconds (default %d)\n"
            "  --token TOKEN   the master's token for tcp:// (default: $RIPC_TOKEN)\n"
            "  --help          this text\n"
            "\n"
            "Rates (msgs/s, MB/s, sleeps/s) are over the last interval; in the first\n"
            "snapshot, since each worker connected. Exit status: 0, 1 when the master\n"
            "could not be read, 2 for a usage error.\n",
            DEFAULT_TIMEOUT_MS);
}

static int parse_args(int argc, char **argv, struct args *a)
{
    *a = (struct args){.timeout_ms = DEFAULT_TIMEOUT_MS};
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(s, "--once")) {
            a->watch = 0;
        } else if (!strcmp(s, "--json")) {
            a->json = 1;
        } else if (!strcmp(s, "--watch") && v) {
            a->watch = strtod(v, &end);
            if (*end || !(a->watch > 0) || a->watch > 86400) {
                fprintf(stderr, "ringipc-stat: --watch wants seconds, > 0, not '%s'\n", v);
                return -1;
            }
            i++;
        } else if (!strcmp(s, "--count") && v) {
            a->count = strtol(v, &end, 10);
            if (*end || a->count < 1) {
                fprintf(stderr, "ringipc-stat: --count wants a number >= 1, not '%s'\n", v);
                return -1;
            }
            i++;
        } else if (!strcmp(s, "--timeout") && v) {
            long t = strtol(v, &end, 10);
            if (*end || t < 1 || t > 3600000) {
                fprintf(stderr, "ringipc-stat: --timeout wants milliseconds, 1..3600000\n");
                return -1;
            }
            a->timeout_ms = (int)t;
            i++;
        } else if (!strcmp(s, "--token") && v) {
            a->token = v;
            i++;
        } else if (s[0] == '-' && s[1]) {
            fprintf(stderr, "ringipc-stat: unknown option or missing value: %s\n", s);
            return -1;
        } else if (!a->url) {
            a->url = s;
        } else {
            fprintf(stderr, "ringipc-stat: one URL only (have %s and %s)\n", a->url, s);
            return -1;
        }
    }
    if (!a->url) {
        fprintf(stderr, "ringipc-stat: which master? give its URL (--help)\n");
        return -1;
    }
    return 0;
}

/* ---- rates ---- */

struct rates {
    double msgs_in, msgs_out, mb_in, mb_out, sleeps, secs;
};

/* prev: the same worker in the last snapshot (NULL: since it connected). */
static struct rates rates_of(const ripc__snap_peer *p, const ripc__snap_peer *prev,
                             const stat_snap *now, const stat_snap *before)
{
    struct rates r = {0};
    double secs;
    ripc__snap_peer zero = {0};
    if (prev && before) {
        secs = (double)(now->head.mono_ns - before->head.mono_ns) / 1e9;
    } else {
        prev = &zero;
        secs = now->head.now_ns > p->connected_ns
                   ? (double)(now->head.now_ns - p->connected_ns) / 1e9
                   : 0;
    }
    r.secs = secs;
    if (secs <= 0)
        return r;
    r.msgs_in = (double)(p->msgs_in - prev->msgs_in) / secs;
    r.msgs_out = (double)(p->msgs_out - prev->msgs_out) / secs;
    r.mb_in = (double)(p->bytes_in - prev->bytes_in) / secs / 1e6;
    r.mb_out = (double)(p->bytes_out - prev->bytes_out) / secs / 1e6;
    r.sleeps = (double)(p->sleeps - prev->sleeps) / secs;
    return r;
}

/* The worker with id in s, or NULL (both lists are in id order). */
static const ripc__snap_peer *find(const stat_snap *s, uint32_t id)
{
    if (!s)
        return NULL;
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->peers[mid].id == id)
            return &s->peers[mid];
        if (s->peers[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static double pct(uint64_t used, uint64_t size)
{
    return size ? 100.0 * (double)used / (double)size : 0;
}

static const char *xport(const ripc__snap_peer *p)
{
    return p->transport == RIPC_XPORT_SHM ? "shm" : "socket";
}

/* ---- output ---- */

static void json_str(const char *s)
{
    putchar('"');
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\')
            printf("\\%c", *c);
        else if (*c < 0x20 || *c >= 0x7F)
            printf("\\u%04x", *c);
        else
            putchar(*c);
    }
    putchar('"');
}

/* A worker's counters in --json, in their order after its transport; each
 * key is the field's name. */
#define PEER(f) offsetof(ripc__snap_peer, f)
/* clang-format off */
#define COUNT(f) {#f, PEER(f)}
/* clang-format on */
static const struct {
    const char *key;
    size_t off; /* of a uint64_t in ripc__snap_peer */
} json_counts[] = {
    COUNT(connected_ns),  COUNT(msgs_in),       COUNT(msgs_out),   COUNT(bytes_in),
    COUNT(bytes_out),     COUNT(requests_in),   COUNT(large_in),   COUNT(large_out),
    COUNT(ring_in_used),  COUNT(ring_out_used), COUNT(ring_bytes), COUNT(ring_in_high),
    COUNT(ring_out_high), COUNT(sleeps),        COUNT(wakeups),    COUNT(doorbells),
    COUNT(send_waits),    COUNT(send_wait_ns),  COUNT(dropped),
};

/* Then its rates. */
#define RATE(f) offsetof(struct rates, f)
static const struct {
    const char *key;
    size_t off; /* of a double in struct rates */
    int decimals;
} json_rates[] = {
    {"msgs_in_per_s", RATE(msgs_in), 1}, {"msgs_out_per_s", RATE(msgs_out), 1},
    {"mb_in_per_s", RATE(mb_in), 3},     {"mb_out_per_s", RATE(mb_out), 3},
    {"sleeps_per_s", RATE(sleeps), 1},
};

static void print_json(const struct args *a, const stat_snap *s, const stat_snap *before)
{
    const ripc__snap_head *h = &s->head;
    printf("{\"url\": ");
    json_str(a->url);
    printf(", \"pid\": %u, \"uptime_s\": %.3f, \"time_ns\": %llu, \"protocol\": %u", h->pid,
           h->now_ns > h->opened_ns ? (double)(h->now_ns - h->opened_ns) / 1e9 : 0.0,
           (unsigned long long)h->now_ns, RIPC_PROTO_MONITOR);
    printf(", \"interval_s\": %.3f",
           before ? (double)(h->mono_ns - before->head.mono_ns) / 1e9 : 0.0);
    printf(", \"peers_now\": %u, \"peers_total\": %llu, \"parked_now\": %llu, \"unhandled\": %llu",
           h->peers_now, (unsigned long long)h->peers_total, (unsigned long long)h->parked_now,
           (unsigned long long)h->unhandled);
    static const char *const left[6] = {"bye", "pipe", "proto", "timedout", "canceled", "other"};
    printf(", \"left\": {");
    for (int i = 0; i < 6; i++)
        printf("%s\"%s\": %llu", i ? ", " : "", left[i], (unsigned long long)h->left[i]);
    printf("}, \"refused\": %llu, \"handshakes_failed\": %llu, \"large_pool_bytes\": %llu",
           (unsigned long long)h->refused, (unsigned long long)h->hs_failed,
           (unsigned long long)h->large_pool_bytes);
    printf(", \"peers\": [");
    for (size_t i = 0; i < s->n; i++) {
        const ripc__snap_peer *p = &s->peers[i];
        struct rates r = rates_of(p, find(before, p->id), s, before);
        printf("%s{\"id\": %u, \"name\": ", i ? ", " : "", p->id);
        json_str(p->name);
        printf(", \"pid\": %d, \"transport\": \"%s\"", p->pid, xport(p));
        for (size_t k = 0; k < sizeof json_counts / sizeof json_counts[0]; k++) {
            uint64_t v;
            memcpy(&v, (const char *)p + json_counts[k].off, sizeof v);
            printf(", \"%s\": %llu", json_counts[k].key, (unsigned long long)v);
        }
        for (size_t k = 0; k < sizeof json_rates / sizeof json_rates[0]; k++) {
            double v;
            memcpy(&v, (const char *)&r + json_rates[k].off, sizeof v);
            printf(", \"%s\": %.*f", json_rates[k].key, json_rates[k].decimals, v);
        }
        putchar('}');
    }
    printf("]}\n");
}

/* 12345678 -> "12.3M": numbers that fit a column. */
static const char *human(double v, char *buf, size_t len)
{
    static const char unit[] = " kMGT";
    int u = 0;
    while (fabs(v) >= 9999.5 && u < 4) {
        v /= 1000;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%.0f", v);
    else
        snprintf(buf, len, "%.1f%c", v, unit[u]);
    return buf;
}

/* The table's columns, left to right: a title, a width (negative:
 * left-aligned, and cut to fit) and what the cell shows. */
enum cell_kind {
    CELL_ID,
    CELL_NAME,
    CELL_PID,
    CELL_XPORT,
    CELL_RATE,  /* a double of struct rates at off, human() */
    CELL_MB,    /* a double of struct rates at off, 2 decimals */
    CELL_RING,  /* a uint64_t of ripc__snap_peer at off, in % of ring_bytes */
    CELL_COUNT, /* a uint64_t of ripc__snap_peer at off, human() */
};

struct column {
    const char *title;
    int width;
    enum cell_kind kind;
    size_t off;
};

static const struct column columns[] = {
    {"ID", 6, CELL_ID, 0},
    {"NAME", -16, CELL_NAME, 0},
    {"PID", 7, CELL_PID, 0},
    {"XPORT", -6, CELL_XPORT, 0},
    {"MSG/S IN", 9, CELL_RATE, RATE(msgs_in)},
    {"MB/S IN", 8, CELL_MB, RATE(mb_in)},
    {"MSG/S OUT", 9, CELL_RATE, RATE(msgs_out)},
    {"MB/S OUT", 8, CELL_MB, RATE(mb_out)},
    {"RING<%", 6, CELL_RING, PEER(ring_in_used)},
    {"RING>%", 6, CELL_RING, PEER(ring_out_used)},
    {"SLEEP/S", 8, CELL_RATE, RATE(sleeps)},
    {"WAITS", 6, CELL_COUNT, PEER(send_waits)},
    {"DROPS", 6, CELL_COUNT, PEER(dropped)},
};

/* Column col's cell for worker p with rates r: buf, or a string of p's. */
static const char *cell(const struct column *col, const ripc__snap_peer *p, const struct rates *r,
                        char *buf, size_t len)
{
    double d;
    uint64_t u;
    switch (col->kind) {
    case CELL_ID:
        snprintf(buf, len, "%u", p->id);
        return buf;
    case CELL_NAME:
        return p->name[0] ? p->name : "-";
    case CELL_PID:
        snprintf(buf, len, "%d", p->pid);
        return buf;
    case CELL_XPORT:
        return xport(p);
    case CELL_RATE:
    case CELL_MB:
        memcpy(&d, (const char *)r + col->off, sizeof d);
        if (col->kind == CELL_RATE)
            return human(d, buf, len);
        snprintf(buf, len, "%.2f", d);
        return buf;
    case CELL_RING:
    case CELL_COUNT:
        memcpy(&u, (const char *)p + col->off, sizeof u);
        if (col->kind == CELL_COUNT)
            return human((double)u, buf, len);
        snprintf(buf, len, "%.1f", pct(u, p->ring_bytes));
        return buf;
    }
    return "?";
}

static void print_table(const struct args *a, const stat_snap *s, const stat_snap *before)
{
    const ripc__snap_head *h = &s->head;
    double up = h->now_ns > h->opened_ns ? (double)(h->now_ns - h->opened_ns) / 1e9 : 0;
    printf("master %s  pid %u  up %.1f s  workers %u (%llu joined, %llu left)  ", a->url, h->pid,
           up, h->peers_now, (unsigned long long)h->peers_total,
           (unsigned long long)(h->left[0] + h->left[1] + h->left[2] + h->left[3] + h->left[4] +
                                h->left[5]));
    if (before)
        printf("over %.1f s\n", (double)(h->mono_ns - before->head.mono_ns) / 1e9);
    else
        printf("since connected\n");
    for (size_t c = 0; c < sizeof columns / sizeof columns[0]; c++)
        printf("%s%*s", c ? " " : "", columns[c].width, columns[c].title);
    putchar('\n');
    for (size_t i = 0; i < s->n; i++) {
        const ripc__snap_peer *p = &s->peers[i];
        struct rates r = rates_of(p, find(before, p->id), s, before);
        for (size_t c = 0; c < sizeof columns / sizeof columns[0]; c++) {
            const struct column *col = &columns[c];
            char buf[64];
            /* A negative precision is none: right-aligned cells are never cut. */
            printf("%s%*.*s", c ? " " : "", col->width, col->width < 0 ? -col->width : -1,
                   cell(col, p, &r, buf, sizeof buf));
        }
        putchar('\n');
    }
    if (s->n != h->peers_now)
        printf("(%zu listed of %u: workers came or went while the pages were read)\n", s->n,
               h->peers_now);
}

/* Sleep secs, or less when Ctrl-C came. */
static void nap(double secs)
{
    struct timespec ts = {(time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9)};
    while (!stop_flag && nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int main(int argc, char **argv)
{
    struct args a;
    if (parse_args(argc, argv, &a) < 0)
        return 2;
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    int tty = isatty(STDOUT_FILENO);
    stat_snap prev = {0}, now;
    int have_prev = 0;
    for (long k = 0; !stop_flag; k++) {
        char why[512] = "";
        int rc = stat_fetch(a.url, a.token, a.timeout_ms, &now, why, sizeof why);
        if (rc < 0) {
            if (stop_flag)
                break;
            fprintf(stderr, "ringipc-stat: %s\n", why[0] ? why : ripc_strerror(rc));
            stat_snap_free(&prev);
            return 1;
        }
        if (a.json) {
            print_json(&a, &now, have_prev ? &prev : NULL);
        } else {
            if (a.watch > 0 && tty)
                printf("\033[H\033[2J");
            else if (k > 0)
                putchar('\n');
            print_table(&a, &now, have_prev ? &prev : NULL);
        }
        fflush(stdout);
        stat_snap_free(&prev);
        prev = now;
        have_prev = 1;
        if (a.watch <= 0 || (a.count && k + 1 >= a.count))
            break;
        nap(a.watch);
    }
    stat_snap_free(&prev);
    return 0;
}
