/* SPDX-License-Identifier: MIT */
/*
 * ringipc-bench --workers N,...: one master with many workers.
 *
 *   idle  N idle workers (one process, 64 KiB rings) and one busy worker
 *         (its own process) making 64 B requests: the busy one's round trip
 *         p50/p99, and the master's CPU while only the idle ones are
 *         connected (after 200 ms for them to settle).
 *   busy  N workers (a process each) sending 64 B one-way messages as fast
 *         as they can: messages per second through the master.
 *
 * Each for ripc_server_run(s, 1) and run(s, 2). The row with 0 idle workers
 * is the baseline of the others: ratios are taken per repetition in this
 * run, then the median. The idle workers, and the busy one, ask for the
 * transport they are given (--idle-transport, --busy-transport; default
 * shared memory).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ringipc/ringipc.h"
#include "workers.h"

enum { T_CALL = 1, T_ONEWAY = 2 };
#define MAX_SAMPLES 400000u

struct wpage {
    atomic_int ready;     /* master listening */
    atomic_int connected; /* workers connected */
    atomic_int go;        /* 1: measure */
    atomic_int stop;      /* 1: workers stop; 2: master stops */
    atomic_int mark;      /* driver -> master: 1 record start, 2 record end */
    atomic_int marked;    /* master -> driver: the mark it recorded */
    atomic_int failed;
    _Atomic uint64_t received;
    uint64_t recv_at[3];
    double cpu_at[3], wall_at[3];
    uint64_t rtt_n;
    double p50_us, p99_us;
    char url[128];
    char fail_msg[160];
    uint32_t samples[MAX_SAMPLES];
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The master's CPU time, less its watcher thread's own (the caller). */
static double cpu_s(void)
{
    struct rusage ru;
    struct timespec self;
    getrusage(RUSAGE_SELF, &ru);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &self);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6 -
           ((double)self.tv_sec + (double)self.tv_nsec / 1e9);
}

/* Master on the first CPU we may use, the busy worker on the second. */
static void pin(int which)
{
    cpu_set_t set;
    int seen = 0;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return;
    for (int i = 0; i < CPU_SETSIZE; i++)
        if (CPU_ISSET(i, &set) && seen++ == which) {
            CPU_ZERO(&set);
            CPU_SET(i, &set);
            sched_setaffinity(0, sizeof set, &set);
            return;
        }
}

static void wfail(struct wpage *pg, const char *what, int rc)
{
    if (atomic_exchange(&pg->failed, 1) == 0)
        snprintf(pg->fail_msg, sizeof pg->fail_msg, "%s: %s", what, ripc_strerror(rc));
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void on_call(ripc_peer *p, const ripc_msg *m, void *arg)
{
    (void)arg;
    ripc_reply(p, m, m->data, m->len);
}

static void on_oneway(ripc_peer *p, const ripc_msg *m, void *arg)
{
    (void)p;
    (void)m;
    struct wpage *pg = arg;
    atomic_fetch_add_explicit(&pg->received, 1, memory_order_relaxed);
}

struct mstate {
    struct wpage *pg;
    ripc_server *s;
};

/* The master's watcher: records CPU and counts when the driver asks. */
static void *watch(void *arg)
{
    struct mstate *m = arg;
    struct wpage *pg = m->pg;
    int done = 0;
    while (atomic_load(&pg->stop) != 2) {
        int k = atomic_load(&pg->mark);
        if (k > done && k < 3) {
            pg->cpu_at[k] = cpu_s();
            pg->wall_at[k] = now_s();
            pg->recv_at[k] = atomic_load(&pg->received);
            atomic_store(&pg->marked, k);
            done = k;
        }
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    ripc_server_stop(m->s);
    return NULL;
}

/* The master keeps the limits it was given: ripc_server_open raises its
 * soft descriptor limit itself. */
static _Noreturn void master(struct wpage *pg, unsigned threads)
{
    pin(0);
    ripc_options o = {.wait = RIPC_WAIT_ADAPTIVE, .token = "ringipc-bench"};
    ripc_server *s;
    snprintf(pg->url, sizeof pg->url, "unix:/tmp/ringipc-bench-w-%d.sock", (int)getpid());
    int rc = ripc_server_open(&s, pg->url, &o);
    if (rc < 0) {
        wfail(pg, "server open", rc);
        _exit(1);
    }
    ripc_server_handle(s, T_CALL, on_call, pg);
    ripc_server_handle(s, T_ONEWAY, on_oneway, pg);
    struct mstate m = {pg, s};
    pthread_t th;
    pthread_create(&th, NULL, watch, &m);
    atomic_store(&pg->ready, 1);
    while (atomic_load(&pg->stop) != 2)
        if ((rc = ripc_server_run(s, threads)) < 0) {
            wfail(pg, "run", rc);
            break;
        }
    pthread_join(th, NULL);
    ripc_server_close(s);
    _exit(0);
}

/* The transports asked for (RIPC_TRANSPORT_*): set once, before any fork. */
static int idle_xport = RIPC_TRANSPORT_SHM, busy_xport = RIPC_TRANSPORT_SHM;

static ripc_client *connect_one(struct wpage *pg, size_t ring, int transport)
{
    ripc_options o = {.wait = RIPC_WAIT_ADAPTIVE,
                      .ring_bytes = ring,
                      .token = "ringipc-bench",
                      .transport = transport};
    ripc_client *c;
    int rc = ripc_client_open(&c, pg->url, &o);
    if (rc < 0) {
        wfail(pg, "client open", rc);
        return NULL;
    }
    atomic_fetch_add(&pg->connected, 1);
    return c;
}

/* Until the driver says go (0), or stop (-1: a run that failed). Napping,
 * not spinning: hundreds of workers wait here while others still connect,
 * on as few CPUs. */
static int wait_go(struct wpage *pg)
{
    while (!atomic_load(&pg->go))
        if (atomic_load(&pg->stop))
            return -1;
        else
            nanosleep(&(struct timespec){0, 200000}, NULL);
    return 0;
}

static _Noreturn void idle_workers(struct wpage *pg, int n)
{
    raise_nofile();
    ripc_client **c = calloc((size_t)n + 1, sizeof *c);
    for (int i = 0; i < n; i++)
        if ((c[i] = connect_one(pg, 64 << 10, idle_xport)) == NULL)
            _exit(1);
    while (atomic_load(&pg->stop) == 0)
        nanosleep(&(struct timespec){0, 2000000}, NULL);
    for (int i = 0; i < n; i++)
        ripc_client_close(c[i]);
    _exit(0);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static _Noreturn void busy_worker(struct wpage *pg, double budget_s)
{
    pin(1);
    ripc_client *c = connect_one(pg, 0, busy_xport);
    if (!c)
        _exit(1);
    uint64_t buf[8] = {0};
    ripc_msg r;
    if (wait_go(pg) < 0)
        _exit(0);
    for (int i = 0; i < 20000; i++) /* warm-up */
        if (ripc_client_request(c, T_CALL, buf, sizeof buf, &r, 5000) < 0)
            _exit(1);
    uint32_t n = 0;
    double end = now_s() + budget_s;
    struct timespec a, b;
    while (n < MAX_SAMPLES && ((n & 255) || now_s() < end)) {
        clock_gettime(CLOCK_MONOTONIC, &a);
        int rc = ripc_client_request(c, T_CALL, buf, sizeof buf, &r, 5000);
        clock_gettime(CLOCK_MONOTONIC, &b);
        if (rc < 0) {
            wfail(pg, "request", rc);
            _exit(1);
        }
        pg->samples[n++] =
            (uint32_t)((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec));
    }
    qsort(pg->samples, n, sizeof pg->samples[0], cmp_u32);
    pg->rtt_n = n;
    pg->p50_us = pg->samples[n / 2] / 1e3;
    pg->p99_us = pg->samples[(size_t)n * 99 / 100] / 1e3;
    ripc_client_close(c);
    _exit(0);
}

static _Noreturn void sender(struct wpage *pg)
{
    ripc_client *c = connect_one(pg, 0, busy_xport);
    if (!c)
        _exit(1);
    uint64_t buf[8] = {0};
    if (wait_go(pg) < 0) {
        ripc_client_close(c);
        _exit(0);
    }
    while (!atomic_load(&pg->stop)) {
        int rc = ripc_client_send(c, T_ONEWAY, buf, sizeof buf, 1000);
        if (rc < 0 && rc != -ETIMEDOUT) {
            wfail(pg, "send", rc);
            break;
        }
    }
    ripc_client_close(c);
    _exit(0);
}

static void mark(struct wpage *pg, int k)
{
    atomic_store(&pg->mark, k);
    while (atomic_load(&pg->marked) < k && !atomic_load(&pg->failed))
        nanosleep(&(struct timespec){0, 100000}, NULL);
}

static void nap(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static int wait_until(struct wpage *pg, atomic_int *v, int want, double limit_s)
{
    double end = now_s() + limit_s;
    while (atomic_load(v) < want) {
        if (atomic_load(&pg->failed) || now_s() > end)
            return -1;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    return 0;
}

static pid_t spawn(void)
{
    pid_t p = fork();
    if (p == 0)
        signal(SIGINT, SIG_DFL);
    return p;
}

/* One measurement; r gets its numbers. 0, or -1 with a reason printed. */
int workers_run(int kind, int n, unsigned threads, double budget_s, struct wresult *r)
{
    struct wpage *pg =
        mmap(NULL, sizeof *pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (pg == MAP_FAILED)
        return -1;
    pid_t kids[1024 + 2];
    int nk = 0, rc = -1;
    pid_t mp = spawn();
    if (mp == 0)
        master(pg, threads);
    if (wait_until(pg, &pg->ready, 1, 10) < 0)
        goto out;
    if (kind == W_IDLE) {
        if (n > 0 && (kids[nk++] = spawn()) == 0)
            idle_workers(pg, n);
        if (wait_until(pg, &pg->connected, n, 120) < 0)
            goto out;
        nap(0.2); /* the master parks them */
        mark(pg, 1);
        nap(0.3);
        mark(pg, 2);
        r->idle_cpu = (pg->cpu_at[2] - pg->cpu_at[1]) / (pg->wall_at[2] - pg->wall_at[1]);
        if ((kids[nk++] = spawn()) == 0)
            busy_worker(pg, budget_s);
        if (wait_until(pg, &pg->connected, n + 1, 10) < 0)
            goto out;
        atomic_store(&pg->go, 1);
        int st;
        waitpid(kids[--nk], &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            goto out;
        r->p50_us = pg->p50_us;
        r->p99_us = pg->p99_us;
    } else {
        for (int i = 0; i < n; i++)
            if ((kids[nk++] = spawn()) == 0)
                sender(pg);
        if (wait_until(pg, &pg->connected, n, 60) < 0)
            goto out;
        atomic_store(&pg->go, 1);
        nap(0.05);
        mark(pg, 1);
        nap(budget_s);
        mark(pg, 2);
        r->rate = (double)(pg->recv_at[2] - pg->recv_at[1]) / (pg->wall_at[2] - pg->wall_at[1]);
        r->busy_cpu = (pg->cpu_at[2] - pg->cpu_at[1]) / (pg->wall_at[2] - pg->wall_at[1]);
    }
    rc = atomic_load(&pg->failed) ? -1 : 0;
out:
    if (atomic_load(&pg->failed))
        fprintf(stderr, "ringipc-bench --workers: %s\n", pg->fail_msg);
    atomic_store(&pg->stop, 1);
    for (int i = 0; i < nk; i++)
        waitpid(kids[i], NULL, 0);
    atomic_store(&pg->stop, 2);
    waitpid(mp, NULL, 0);
    munmap(pg, sizeof *pg);
    return rc;
}

#define MAX_COUNTS 16
#define MAX_WREPS  16

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double med(double *v, int n)
{
    if (n == 0)
        return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static const char *xport_name(int t)
{
    return t == RIPC_TRANSPORT_SOCKET ? "socket" : "shm";
}

int workers_main(const int *counts, int ncounts, int reps, double budget_s, int busy_rows,
                 int idle_transport, int busy_transport)
{
    idle_xport = idle_transport;
    busy_xport = busy_transport;
    static struct wresult res[2][2][MAX_COUNTS][MAX_WREPS]; /* kind, threads-1, count, rep */
    static int ok[2][2][MAX_COUNTS][MAX_WREPS];
    int failed = 0, base = -1;
    if (ncounts > MAX_COUNTS || reps > MAX_WREPS)
        return 1;
    for (int i = 0; i < ncounts; i++)
        if (counts[i] == 0)
            base = i;
    for (int k = 0; k < reps; k++) {
        for (int t = 0; t < 2; t++)
            for (int i = 0; i < ncounts; i++) {
                for (int kind = 0; kind < 2; kind++) {
                    if (kind == W_BUSY && (!busy_rows || counts[i] == 0 || counts[i] > 256))
                        continue;
                    struct wresult *r = &res[kind][t][i][k];
                    ok[kind][t][i][k] =
                        workers_run(kind, counts[i], (unsigned)t + 1, budget_s, r) == 0;
                    failed |= !ok[kind][t][i][k];
                }
            }
        fprintf(stderr, "ringipc-bench --workers: repetition %d/%d done\n", k + 1, reps);
    }
    printf("One master, many workers; 64 B messages; medians of %d repetitions of %.0f ms\n"
           "(ratios per repetition against 0 idle workers in the same repetition, then the "
           "median).\nIdle workers: %s; busy and sending workers: %s.\n\n",
           reps, budget_s * 1e3, xport_name(idle_xport), xport_name(busy_xport));
    printf("| run(n) | idle workers + 1 busy | round trip p50 (us) | p99 (us) | p50 vs 0 idle | "
           "master CPU, idle only |\n");
    printf("| --- | ---: | ---: | ---: | ---: | ---: |\n");
    for (int t = 0; t < 2; t++)
        for (int i = 0; i < ncounts; i++) {
            double a[MAX_WREPS], b[MAX_WREPS], c[MAX_WREPS], q[MAX_WREPS];
            int n = 0, nq = 0;
            for (int k = 0; k < reps; k++) {
                if (!ok[W_IDLE][t][i][k])
                    continue;
                a[n] = res[W_IDLE][t][i][k].p50_us;
                b[n] = res[W_IDLE][t][i][k].p99_us;
                c[n] = res[W_IDLE][t][i][k].idle_cpu;
                n++;
                if (base >= 0 && ok[W_IDLE][t][base][k])
                    q[nq++] = res[W_IDLE][t][i][k].p50_us / res[W_IDLE][t][base][k].p50_us;
            }
            if (n == 0) {
                printf("| %d | %d | failed | | | |\n", t + 1, counts[i]);
                continue;
            }
            printf("| %d | %d | %.2f | %.2f | %s%.2fx | %.1f%% |\n", t + 1, counts[i], med(a, n),
                   med(b, n), nq ? "" : "n/a ", nq ? med(q, nq) : 0.0,
                   med(c, n) > 0 ? med(c, n) * 100 : 0.0);
        }
    printf("\n| run(n) | workers, all sending one-way | aggregate msgs/s | master CPU |\n");
    printf("| --- | ---: | ---: | ---: |\n");
    for (int t = 0; t < 2; t++)
        for (int i = 0; i < ncounts; i++) {
            if (!busy_rows || counts[i] == 0 || counts[i] > 256)
                continue;
            double a[MAX_WREPS], c[MAX_WREPS];
            int n = 0;
            for (int k = 0; k < reps; k++)
                if (ok[W_BUSY][t][i][k]) {
                    a[n] = res[W_BUSY][t][i][k].rate;
                    c[n++] = res[W_BUSY][t][i][k].busy_cpu;
                }
            if (n == 0)
                printf("| %d | %d | failed | |\n", t + 1, counts[i]);
            else
                printf("| %d | %d | %.2f M | %.0f%% |\n", t + 1, counts[i], med(a, n) / 1e6,
                       med(c, n) * 100);
        }
    return failed;
}
