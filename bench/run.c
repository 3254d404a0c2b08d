/* SPDX-License-Identifier: MIT */
/*
 * One measured run: the driver forks a server (first CPU) and a client
 * (second CPU), both fresh from a process that has never opened a library
 * connection (liburcu, ZeroMQ and NNG threads do not survive a fork), and
 * waits for both, killing the pair if either fails or the run hangs.
 *
 * Round trip: the client times each call (send + receive of the echo).
 * One-way:    the client sends as fast as the transport takes messages and
 *             stops the clock when the server has echoed the end marker, so
 *             the time covers every message having been read.
 * Runs are bounded by time (budget_s), not by a message count, so a 1 MiB
 * row and an 8 B row cost the same wall time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define MIN_ROUND_TRIPS 50           /* even when the budget is spent */
#define MAX_ONEWAY      200000000ull /* messages, a bound only */
#define START_TIMEOUT_S 10.0         /* server open, client open */
#define RUN_SLACK_S     30.0         /* past the budget: the run hangs, kill it */

const char *const metric_name[M_COUNT] = {
    "p50_us",     "p90_us",      "p99_us",         "p99.9_us",       "max_us",
    "msgs_per_s", "bytes_per_s", "cpu_client_pct", "cpu_server_pct",
};

/* ---- helpers for transports ---- */

double xp_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

double xp_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

void xp_fail(struct xp_page *pg, const char *fmt, ...)
{
    int expect = 0;
    char msg[sizeof pg->fail_msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* The first failure wins; later ones are its consequences. */
    if (atomic_compare_exchange_strong(&pg->failed, &expect, -1)) {
        memcpy(pg->fail_msg, msg, sizeof msg);
        atomic_store(&pg->failed, 1);
    }
}

int xp_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EPIPE;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int xp_map_shared(struct xp_run *r, size_t len)
{
    r->mem_len = len;
    r->mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (r->mem == MAP_FAILED) {
        r->mem = NULL;
        return -errno;
    }
    memset(r->mem, 0, len); /* fault the pages in before timing */
    return 0;
}

void xp_unmap(struct xp_run *r)
{
    if (r->mem)
        munmap(r->mem, r->mem_len);
    r->mem = NULL;
}

int xp_ipc_setup(struct xp_run *r)
{
    static unsigned serial;
    snprintf(r->path[0], 100, "/tmp/ringipc-bench-%d.ipc%u", (int)getpid(), serial++);
    snprintf(r->path[1], sizeof r->path[1], "ipc://%.100s", r->path[0]);
    return 0;
}

void xp_ipc_teardown(struct xp_run *r)
{
    unlink(r->path[0]);
}

/* ---- the server ---- */

int xp_sink_take(struct xp_sink *k, const void *data, size_t len)
{
    struct xp_run *r = k->run;
    uint64_t seq;
    if (len < sizeof seq) {
        xp_fail(r->pg, "message %llu: %zu bytes", (unsigned long long)k->want, len);
        return -EPROTO;
    }
    memcpy(&seq, data, sizeof seq);
    if (k->t0 == 0) {
        k->t0 = xp_now();
        k->cpu0 = xp_cpu();
    }
    if (seq == XP_SEQ_END) {
        r->pg->s_wall = xp_now() - k->t0;
        r->pg->s_cpu = xp_cpu() - k->cpu0;
        r->pg->received = k->want;
        return XP_TAKE_ECHO | XP_TAKE_LAST;
    }
    if (seq != k->want || (k->check_len && len != r->size)) {
        xp_fail(r->pg, "server: message %llu arrived as %llu (%zu bytes, want %zu)",
                (unsigned long long)k->want, (unsigned long long)seq, len, r->size);
        return -EPROTO;
    }
    k->want++;
    if (!r->oneway)
        return XP_TAKE_ECHO;
    /* One-way: the receiver reads every byte, as a real one would. */
    const unsigned char *p = data;
    uint64_t sum = 0, w;
    size_t i = 0;
    for (; i + sizeof w <= len; i += sizeof w) {
        memcpy(&w, p + i, sizeof w);
        sum += w;
    }
    for (; i < len; i++)
        sum += p[i];
    k->sum += sum;
    return 0;
}

static int serve_loop(const struct xport *x, void *end, struct xp_sink *k)
{
    for (;;) {
        const void *buf;
        size_t len;
        int rc = x->recv(end, &buf, &len);
        if (rc < 0)
            return rc;
        int a = xp_sink_take(k, buf, len);
        if (a < 0)
            return a;
        if ((a & XP_TAKE_ECHO) && (rc = x->send(end, buf, len)) < 0)
            return rc;
        if (a & XP_TAKE_LAST)
            return 0;
    }
}

/* Wait until flag is set (or someone failed), yielding; 0 or -ETIMEDOUT. */
static int await(atomic_int *flag, struct xp_page *pg, double timeout_s)
{
    double deadline = xp_now() + timeout_s;
    while (!atomic_load(flag)) {
        if (atomic_load(&pg->failed))
            return -EPIPE;
        if (xp_now() > deadline)
            return -ETIMEDOUT;
        usleep(100);
    }
    return 0;
}

static int server_main(const struct xport *x, struct xp_run *r)
{
    struct xp_page *pg = r->pg;
    struct xp_sink k = {.run = r, .check_len = !(x->flags & XP_NOPAYLOAD)};
    void *end;
    int rc = x->open(r, XP_SERVER, &end);
    if (rc < 0) {
        xp_fail(pg, "server open: %s", strerror(-rc));
        return 1;
    }
    atomic_store(&pg->ready, 1);
    rc = x->serve ? x->serve(end, &k) : serve_loop(x, end, &k);
    if (rc < 0)
        xp_fail(pg, "server: %s", strerror(-rc));
    /* Close only once the client has its last reply: some libraries drop
     * what is still queued when a socket closes. */
    await(&pg->done, pg, START_TIMEOUT_S);
    x->close(end);
    (void)*(volatile uint64_t *)&k.sum;
    return atomic_load(&pg->failed) ? 1 : 0;
}

/* ---- the client ---- */

static int call(const struct xport *x, void *end, const void *buf, size_t len, const void **rbuf,
                size_t *rlen)
{
    if (x->call)
        return x->call(end, buf, len, rbuf, rlen);
    int rc = x->send(end, buf, len);
    return rc < 0 ? rc : x->recv(end, rbuf, rlen);
}

/* One round trip of `seq`; checks the echo. */
static int call_checked(const struct xport *x, struct xp_run *r, void *end, unsigned char *buf,
                        uint64_t seq)
{
    const void *rb;
    size_t rlen;
    uint64_t got;
    memcpy(buf, &seq, sizeof seq);
    int rc = call(x, end, buf, r->size, &rb, &rlen);
    if (rc < 0) {
        xp_fail(r->pg, "client: call %llu: %s", (unsigned long long)seq, strerror(-rc));
        return rc;
    }
    if (rlen < sizeof got)
        got = ~0ull;
    else
        memcpy(&got, rb, sizeof got);
    if (got != seq || (!(x->flags & XP_NOPAYLOAD) && rlen != r->size)) {
        xp_fail(r->pg, "client: reply to %llu was %llu (%zu bytes)", (unsigned long long)seq,
                (unsigned long long)got, rlen);
        return -EPROTO;
    }
    return 0;
}

static int client_main(const struct xport *x, struct xp_run *r, double budget_s)
{
    struct xp_page *pg = r->pg;
    void *end;
    uint64_t i = 0;
    int rc = await(&pg->ready, pg, START_TIMEOUT_S);
    if (rc < 0) {
        xp_fail(pg, "client: the server did not start");
        return 1;
    }
    rc = x->open(r, XP_CLIENT, &end);
    if (rc < 0) {
        xp_fail(pg, "client open: %s", strerror(-rc));
        return 1;
    }
    unsigned char *buf = malloc(r->size);
    if (buf == NULL)
        return 1;
    memset(buf, 0xa5, r->size);
    double t0 = xp_now(), cpu0 = xp_cpu();
    uint64_t deadline = now_ns() + (uint64_t)(budget_s * 1e9);
    if (!r->oneway) {
        for (; i < XP_MAX_SAMPLES; i++) {
            uint64_t a = now_ns();
            if (i >= MIN_ROUND_TRIPS && a > deadline)
                break;
            if (call_checked(x, r, end, buf, i) < 0)
                return 1;
            pg->samples[i] = (uint32_t)(now_ns() - a);
        }
        pg->n = (uint32_t)i;
    } else {
        /* Look at the clock every message only when messages are slow. */
        uint64_t mask = r->size >= 4096 ? 0 : 255;
        for (; i < MAX_ONEWAY; i++) {
            if ((i & mask) == 0 && now_ns() > deadline)
                break;
            memcpy(buf, &i, sizeof i);
            if ((rc = x->send(end, buf, r->size)) < 0) {
                xp_fail(pg, "client: send %llu: %s", (unsigned long long)i, strerror(-rc));
                return 1;
            }
        }
    }
    if (call_checked(x, r, end, buf, XP_SEQ_END) < 0)
        return 1;
    pg->c_wall = xp_now() - t0;
    pg->c_cpu = xp_cpu() - cpu0;
    pg->sent = i;
    x->close(end);
    free(buf);
    atomic_store(&pg->done, 1);
    return 0;
}

/* ---- the driver ---- */

static void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

static pid_t spawn(int cpu, int (*fn)(const struct xport *, struct xp_run *, double),
                   const struct xport *x, struct xp_run *r, double budget_s)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the driver */
    pin(cpu);
    _exit(fn(x, r, budget_s));
}

static int server_entry(const struct xport *x, struct xp_run *r, double budget_s)
{
    (void)budget_s;
    return server_main(x, r);
}

/* Reap both; a failure or a hang kills the other. Returns 0 when both
 * exited 0. SIGCHLD is blocked in the driver (main), so it can be waited
 * for with a timeout. */
static int reap_both(pid_t pid[2], double timeout_s, char *why, size_t why_len)
{
    double deadline = xp_now() + timeout_s;
    int bad = 0, alive = 2;
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    while (alive > 0) {
        int st;
        pid_t p;
        while (alive > 0 && (p = waitpid(-1, &st, WNOHANG)) > 0) {
            int i = pid[0] == p ? 0 : pid[1] == p ? 1 : -1;
            if (i < 0)
                continue;
            pid[i] = 0;
            alive--;
            if (!bad && WIFSIGNALED(st))
                snprintf(why, why_len, "%s killed by signal %d", i == 0 ? "server" : "client",
                         WTERMSIG(st));
            bad |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
        }
        if (alive == 0)
            break;
        double left = deadline - xp_now();
        if (bad || left <= 0) {
            if (!bad)
                snprintf(why, why_len, "timed out after %.0f s", timeout_s);
            bad = 1;
            for (int i = 0; i < 2; i++)
                if (pid[i] > 0)
                    kill(pid[i], SIGKILL);
            deadline = xp_now() + 5;
            continue;
        }
        struct timespec ts = {(time_t)left, (long)((left - (time_t)left) * 1e9)};
        if (ts.tv_sec > 1)
            ts = (struct timespec){1, 0};
        sigtimedwait(&chld, NULL, &ts);
    }
    return bad ? -1 : 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static struct xp_page *page(void)
{
    static struct xp_page *pg;
    if (pg == NULL) {
        pg = mmap(NULL, sizeof *pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (pg == MAP_FAILED) {
            perror("ringipc-bench: mmap");
            exit(1);
        }
    }
    return pg;
}

int run_one(const struct xport *x, size_t size, int oneway, double budget_s, struct cpus cpu,
            struct result *out, char *why, size_t why_len)
{
    struct xp_page *pg = page();
    struct xp_run r = {.pg = pg, .size = size, .oneway = oneway, .arg = x->arg};
    pid_t pid[2];
    int rc;

    memset(pg, 0, offsetof(struct xp_page, samples));
    memset(out, 0, sizeof *out);
    why[0] = 0;
    for (int i = 0; i < 4; i++)
        r.fd[i] = -1;
    if (x->setup && (rc = x->setup(&r)) < 0) {
        snprintf(why, why_len, "setup: %s", strerror(-rc));
        return -1;
    }
    pid[0] = spawn(cpu.server, server_entry, x, &r, budget_s);
    pid[1] = spawn(cpu.client, client_main, x, &r, budget_s);
    rc = reap_both(pid, budget_s + RUN_SLACK_S, why, why_len);
    if (x->teardown)
        x->teardown(&r);
    if (atomic_load(&pg->failed)) {
        snprintf(why, why_len, "%s", pg->fail_msg);
        return -1;
    }
    if (rc < 0)
        return -1;
    if (pg->received != pg->sent) { /* lost messages */
        snprintf(why, why_len, "client sent %llu, server received %llu",
                 (unsigned long long)pg->sent, (unsigned long long)pg->received);
        return -1;
    }
    out->messages = pg->sent;
    if (!oneway && pg->n > 0) {
        uint32_t n = pg->n, *s = pg->samples;
        qsort(s, n, sizeof *s, cmp_u32);
        out->v[M_P50] = s[n / 2] / 1e3;
        out->v[M_P90] = s[(size_t)(n * 0.90)] / 1e3;
        out->v[M_P99] = s[(size_t)(n * 0.99)] / 1e3;
        out->v[M_P999] = s[(size_t)(n * 0.999)] / 1e3;
        out->v[M_MAX] = s[n - 1] / 1e3;
    }
    if (oneway && pg->c_wall > 0) {
        out->v[M_RATE] = pg->sent / pg->c_wall;
        out->v[M_BPS] = out->v[M_RATE] * (double)size;
    }
    out->v[M_CCPU] = pg->c_wall > 0 ? 100 * pg->c_cpu / pg->c_wall : 0;
    out->v[M_SCPU] = pg->s_wall > 0 ? 100 * pg->s_cpu / pg->s_wall : 0;
    return 0;
}
