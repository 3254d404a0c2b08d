/* SPDX-License-Identifier: MIT */
/*
 * ringipc-bench: side-by-side round trip and one-way throughput between two
 * processes pinned to two CPUs. Every row runs in the same invocation, so the
 * ratios compare like with like on this machine, now.
 *
 * Round trip rows (p50/p90/p99/p99.9/max, microseconds):
 *   shm flag        bare shared-memory ping-pong on two spinning cores: the floor
 *   eventfd         two eventfds, blocking reads: the floor for a sleeping reader
 *   unix socket     a bound AF_UNIX stream socket (connect/accept), blocking I/O
 *   socketpair, pipe, FIFO, TCP loopback (NODELAY), POSIX mq: the mechanisms
 *                   the seeds compare, each a ping-pong of the same size
 *   ringipc spin / adaptive / block
 *                   ripc_client_request -> master handler -> ripc_reply
 * One-way rows (messages/s): ripc_client_send with a handler that reads every
 * payload byte, against one write() per message on a unix stream socket.
 *
 * Each message carries a sequence number that the receiver checks: a lossy or
 * reordering path fails the run loudly.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <mqueue.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ringipc/ringipc.h"

#define MAX_SAMPLES 400000

static int g_quick;
static int g_cpu_a = -1, g_cpu_b = -1;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, int err)
{
    fprintf(stderr, "ringipc-bench: %s: %s\n", what, strerror(err < 0 ? -err : err));
    exit(1);
}

static void pin(int cpu)
{
    if (cpu < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

static void pick_cpus(void)
{
    cpu_set_t set;
    sched_getaffinity(0, sizeof set, &set);
    for (int i = 0; i < CPU_SETSIZE; i++)
        if (CPU_ISSET(i, &set)) {
            if (g_cpu_a < 0)
                g_cpu_a = i;
            else if (g_cpu_b < 0) {
                g_cpu_b = i;
                break;
            }
        }
    if (g_cpu_b < 0)
        g_cpu_b = g_cpu_a; /* one CPU: both sides share it */
}

static void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Shared results page: the child writes its samples here. */
struct shared {
    _Alignas(128) _Atomic uint64_t ping;
    _Alignas(128) _Atomic uint64_t pong;
    _Alignas(128) _Atomic int ready;
    int failed;
    char fail_msg[128];
    double rate; /* one-way rows: messages/s measured by the child */
    uint32_t n;
    uint32_t samples[MAX_SAMPLES]; /* ns */
};

static struct shared *sh_new(void)
{
    struct shared *s =
        mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (s == MAP_FAILED)
        die("mmap", errno);
    return s;
}

static void sh_fail(struct shared *s, const char *fmt, unsigned long long a, unsigned long long b)
{
    s->failed = 1;
    snprintf(s->fail_msg, sizeof s->fail_msg, fmt, a, b);
}

static int reap(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- results ---- */

struct row {
    char name[40];
    size_t size;
    int is_rtt;
    double p50, p90, p99, p999, max; /* us, medians over repeats */
    double rate;                     /* msg/s, median over repeats */
    double ratio;                    /* vs unix socket, median of per-repeat ratios */
    double rep_p50[8], rep_p90[8], rep_p99[8], rep_p999[8], rep_rate[8], rep_ratio[8];
    int reps;
    int spec, zi;
    int failed;
    char fail_msg[128];
};

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    double t[8];
    memcpy(t, v, (size_t)n * sizeof *t);
    qsort(t, (size_t)n, sizeof *t, cmp_d);
    return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

static void pct(struct shared *s, double *p50, double *p90, double *p99, double *p999, double *max)
{
    uint32_t n = s->n;
    qsort(s->samples, n, sizeof s->samples[0], cmp_u32);
    *p50 = s->samples[n / 2] / 1000.0;
    *p90 = s->samples[(size_t)(n * 0.90)] / 1000.0;
    *p99 = s->samples[(size_t)(n * 0.99)] / 1000.0;
    *p999 = s->samples[(size_t)(n * 0.999)] / 1000.0;
    *max = s->samples[n - 1] / 1000.0;
}

/* ---- baselines ---- */

static void rtt_flag(struct shared *s, size_t size, uint32_t iters)
{
    (void)size;
    pid_t pid = fork();
    if (pid == 0) {
        pin(g_cpu_b);
        for (uint64_t i = 1; i <= iters; i++) {
            while (atomic_load_explicit(&s->ping, memory_order_acquire) != i)
                relax();
            atomic_store_explicit(&s->pong, i, memory_order_release);
        }
        _exit(0);
    }
    pin(g_cpu_a);
    for (uint64_t i = 1; i <= iters; i++) {
        uint64_t t0 = now_ns();
        atomic_store_explicit(&s->ping, i, memory_order_release);
        while (atomic_load_explicit(&s->pong, memory_order_acquire) != i)
            relax();
        s->samples[i - 1] = (uint32_t)(now_ns() - t0);
    }
    s->n = iters;
    reap(pid);
}

static void rtt_eventfd(struct shared *s, size_t size, uint32_t iters)
{
    (void)size;
    int a = eventfd(0, EFD_CLOEXEC), b = eventfd(0, EFD_CLOEXEC);
    pid_t pid = fork();
    if (pid == 0) {
        pin(g_cpu_b);
        uint64_t v;
        for (uint32_t i = 0; i < iters; i++) {
            if (read(a, &v, 8) != 8 || write(b, &v, 8) != 8)
                _exit(1);
        }
        _exit(0);
    }
    pin(g_cpu_a);
    for (uint32_t i = 0; i < iters; i++) {
        uint64_t t0 = now_ns(), v = i + 1;
        if (write(a, &v, 8) != 8 || read(b, &v, 8) != 8)
            die("eventfd", errno);
        if (v != i + 1)
            sh_fail(s, "eventfd: got %llu want %llu", v, i + 1);
        s->samples[i] = (uint32_t)(now_ns() - t0);
    }
    s->n = iters;
    reap(pid);
    close(a);
    close(b);
}

static int xfer(int fd, void *buf, size_t len, int wr)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n =
            wr ? write(fd, (char *)buf + off, len - off) : read(fd, (char *)buf + off, len - off);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            return -1;
        }
        off += (size_t)n;
    }
    return 0;
}

/* Byte-stream baselines: a pair of descriptors each way, made before fork.
 * pr/pw: the parent's read/write ends, cr/cw: the child's. */
enum { FD_SOCKETPAIR, FD_UNIX, FD_PIPE, FD_FIFO, FD_TCP };

struct fds {
    int pr, pw, cr, cw;
};

static void fds_open(int kind, struct fds *f)
{
    int a[2], b[2];
    switch (kind) {
    case FD_SOCKETPAIR:
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a) < 0)
            die("socketpair", errno);
        *f = (struct fds){a[0], a[0], a[1], a[1]};
        return;
    case FD_PIPE:
        if (pipe(a) < 0 || pipe(b) < 0)
            die("pipe", errno);
        *f = (struct fds){b[0], a[1], a[0], b[1]};
        return;
    case FD_FIFO: {
        char pa[64], pb[64];
        snprintf(pa, sizeof pa, "/tmp/ringipc-bench-%d.fa", (int)getpid());
        snprintf(pb, sizeof pb, "/tmp/ringipc-bench-%d.fb", (int)getpid());
        unlink(pa);
        unlink(pb);
        if (mkfifo(pa, 0600) < 0 || mkfifo(pb, 0600) < 0)
            die("mkfifo", errno);
        /* O_RDWR opens without waiting for the other end (Linux). */
        int fa = open(pa, O_RDWR), fb = open(pb, O_RDWR);
        if (fa < 0 || fb < 0)
            die("open fifo", errno);
        unlink(pa);
        unlink(pb);
        *f = (struct fds){fb, fa, fa, fb};
        return;
    }
    case FD_UNIX:
    case FD_TCP: {
        int l;
        struct sockaddr_un un = {.sun_family = AF_UNIX};
        struct sockaddr_in in = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
        socklen_t alen;
        if (kind == FD_UNIX) {
            snprintf(un.sun_path, sizeof un.sun_path, "/tmp/ringipc-bench-%d.u", (int)getpid());
            unlink(un.sun_path);
            l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (l < 0 || bind(l, (struct sockaddr *)&un, sizeof un) < 0)
                die("bind unix", errno);
            alen = sizeof un;
        } else {
            l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (l < 0 || bind(l, (struct sockaddr *)&in, sizeof in) < 0)
                die("bind tcp", errno);
            alen = sizeof in;
            getsockname(l, (struct sockaddr *)&in, &alen);
        }
        if (listen(l, 1) < 0)
            die("listen", errno);
        int c = socket(kind == FD_UNIX ? AF_UNIX : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c < 0 ||
            connect(c, kind == FD_UNIX ? (struct sockaddr *)&un : (struct sockaddr *)&in, alen) < 0)
            die("connect", errno);
        int acc = accept(l, NULL, NULL);
        if (acc < 0)
            die("accept", errno);
        close(l);
        if (kind == FD_UNIX)
            unlink(un.sun_path);
        int one = 1;
        if (kind == FD_TCP) {
            setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            setsockopt(acc, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        *f = (struct fds){c, c, acc, acc};
        return;
    }
    }
}

static void close_pair(int a, int b)
{
    close(a);
    if (b != a)
        close(b);
}

static void rtt_fds(struct shared *s, size_t size, uint32_t iters, int kind)
{
    struct fds f;
    fds_open(kind, &f);
    char *buf = calloc(1, size < 8 ? 8 : size);
    pid_t pid = fork();
    if (pid == 0) {
        pin(g_cpu_b);
        for (uint32_t i = 0; i < iters; i++)
            if (xfer(f.cr, buf, size, 0) || xfer(f.cw, buf, size, 1))
                _exit(1);
        _exit(0);
    }
    pin(g_cpu_a);
    for (uint32_t i = 0; i < iters; i++) {
        uint64_t seq = i;
        memcpy(buf, &seq, 8);
        uint64_t t0 = now_ns();
        if (xfer(f.pw, buf, size, 1) || xfer(f.pr, buf, size, 0))
            die("ping-pong", errno);
        s->samples[i] = (uint32_t)(now_ns() - t0);
        memcpy(&seq, buf, 8);
        if (seq != i)
            sh_fail(s, "stream: got %llu want %llu", seq, i);
    }
    s->n = iters;
    close_pair(f.pr, f.pw);
    close_pair(f.cr, f.cw);
    reap(pid);
    free(buf);
}

static void rtt_unix(struct shared *s, size_t size, uint32_t iters)
{
    rtt_fds(s, size, iters, FD_UNIX);
}

static void rtt_socketpair(struct shared *s, size_t size, uint32_t iters)
{
    rtt_fds(s, size, iters, FD_SOCKETPAIR);
}

static void rtt_pipe(struct shared *s, size_t size, uint32_t iters)
{
    rtt_fds(s, size, iters, FD_PIPE);
}

static void rtt_fifo(struct shared *s, size_t size, uint32_t iters)
{
    rtt_fds(s, size, iters, FD_FIFO);
}

static void rtt_tcp(struct shared *s, size_t size, uint32_t iters)
{
    rtt_fds(s, size, iters, FD_TCP);
}

/* POSIX message queues: one each way, unlinked as soon as both are open. */
static void rtt_mq(struct shared *s, size_t size, uint32_t iters)
{
    char na[64], nb[64];
    snprintf(na, sizeof na, "/ringipc-bench-%d-a", (int)getpid());
    snprintf(nb, sizeof nb, "/ringipc-bench-%d-b", (int)getpid());
    struct mq_attr at = {.mq_maxmsg = 8, .mq_msgsize = (long)(size < 8 ? 8 : size)};
    mqd_t a = mq_open(na, O_CREAT | O_EXCL | O_RDWR, 0600, &at);
    mqd_t b = mq_open(nb, O_CREAT | O_EXCL | O_RDWR, 0600, &at);
    mq_unlink(na);
    mq_unlink(nb);
    if (a == (mqd_t)-1 || b == (mqd_t)-1) {
        sh_fail(s, "mq_open: error %llu (size %llu)", (unsigned long long)errno,
                (unsigned long long)size);
        return;
    }
    char *buf = calloc(1, (size_t)at.mq_msgsize);
    pid_t pid = fork();
    if (pid == 0) {
        pin(g_cpu_b);
        for (uint32_t i = 0; i < iters; i++)
            if (mq_receive(a, buf, (size_t)at.mq_msgsize, NULL) < 0 || mq_send(b, buf, size, 0) < 0)
                _exit(1);
        _exit(0);
    }
    pin(g_cpu_a);
    for (uint32_t i = 0; i < iters; i++) {
        uint64_t seq = i;
        memcpy(buf, &seq, 8);
        uint64_t t0 = now_ns();
        if (mq_send(a, buf, size, 0) < 0 || mq_receive(b, buf, (size_t)at.mq_msgsize, NULL) < 0)
            die("mq", errno);
        s->samples[i] = (uint32_t)(now_ns() - t0);
        memcpy(&seq, buf, 8);
        if (seq != i)
            sh_fail(s, "mq: got %llu want %llu", seq, i);
    }
    s->n = iters;
    mq_close(a);
    mq_close(b);
    reap(pid);
    free(buf);
}

/* One-way: one send() per message of `size` bytes; the reader reads big
 * chunks and checks the sequence numbers. */
static void oneway_unix(struct shared *s, size_t size, uint32_t iters)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        die("socketpair", errno);
    pid_t pid = fork();
    if (pid == 0) { /* the writer measures, like the ringipc row */
        pin(g_cpu_b);
        close(sv[0]);
        char *buf = calloc(1, size);
        char ack;
        uint64_t t0 = now_ns();
        for (uint64_t i = 0; i < iters; i++) {
            memcpy(buf, &i, 8);
            if (xfer(sv[1], buf, size, 1))
                _exit(1);
        }
        if (xfer(sv[1], &ack, 1, 0)) /* the reader has everything */
            _exit(1);
        s->rate = iters / ((now_ns() - t0) / 1e9);
        _exit(0);
    }
    close(sv[1]);
    pin(g_cpu_a);
    size_t cap = 256 * 1024, have = 0;
    char *buf = malloc(cap);
    uint64_t want = 0, total = (uint64_t)iters * size, got = 0;
    volatile unsigned sink = 0;
    while (got < total) {
        ssize_t n = recv(sv[0], buf + have, cap - have, 0);
        if (n <= 0)
            die("oneway unix recv", errno);
        have += (size_t)n;
        got += (uint64_t)n;
        size_t off = 0;
        for (; off + size <= have; off += size) {
            uint64_t seq;
            memcpy(&seq, buf + off, 8);
            if (seq != want)
                sh_fail(s, "unix one-way: got %llu want %llu", seq, want);
            for (size_t k = 0; k < size; k++)
                sink += (unsigned char)buf[off + k];
            want++;
        }
        memmove(buf, buf + off, have - off);
        have -= off;
    }
    char ack = 1;
    xfer(sv[0], &ack, 1, 1);
    close(sv[0]);
    reap(pid);
    free(buf);
}

/* ---- ringipc ---- */

struct mctx {
    struct shared *s;
    uint64_t want;
    unsigned sum;
    size_t size;
};

static void h_echo(ripc_peer *p, const ripc_msg *m, void *arg)
{
    (void)arg;
    ripc_reply(p, m, m->data, m->len);
}

static void h_sink(ripc_peer *p, const ripc_msg *m, void *arg)
{
    (void)p;
    struct mctx *x = arg;
    const unsigned char *d = m->data;
    uint64_t seq;
    memcpy(&seq, d, 8);
    if (seq != x->want)
        sh_fail(x->s, "ringipc one-way: got %llu want %llu", seq, x->want);
    x->want++;
    unsigned sum = 0;
    for (uint64_t k = 0; k < m->len; k++) /* touch every payload byte */
        sum += d[k];
    x->sum += sum;
}

static int g_wait, g_transport, g_tcp;
static char g_url[128];

static void ringipc_row(struct shared *s, size_t size, uint32_t iters, int oneway)
{
    ripc_options o = {
        .wait = g_wait, .ring_bytes = 1 << 20, .transport = g_transport, .token = "ringipc-bench"};
    ripc_server *srv;
    char why[200] = "", url[160];
    int rc = ripc_server_open_ex(&srv, g_tcp ? "tcp://127.0.0.1:0" : g_url, &o, why, sizeof why);
    if (rc == 0)
        ripc_server_url(srv, url, sizeof url);
    if (rc < 0) {
        fprintf(stderr, "ringipc-bench: server: %s (%s)\n", ripc_strerror(rc), why);
        exit(1);
    }
    struct mctx x = {.s = s, .size = size};
    ripc_server_handle(srv, 1, h_echo, NULL);
    ripc_server_handle(srv, 2, h_sink, &x);
    pid_t pid = fork();
    if (pid == 0) {
        pin(g_cpu_b);
        ripc_client *c;
        rc = ripc_client_open_ex(&c, url, &o, why, sizeof why);
        if (rc < 0) {
            sh_fail(s, "client open %lld %llu", (long long)rc, 0);
            _exit(1);
        }
        unsigned char *buf = calloc(1, size);
        ripc_msg r;
        if (oneway) {
            uint64_t t0 = now_ns();
            for (uint64_t i = 0; i < iters; i++) {
                memcpy(buf, &i, 8);
                if ((rc = ripc_client_send(c, 2, buf, size, -1)) < 0) {
                    sh_fail(s, "send %llu rc %llu", i, (unsigned long long)-rc);
                    _exit(1);
                }
            }
            /* FIFO: the reply comes after the master handled every message. */
            if (ripc_client_request(c, 1, buf, 8, &r, -1) < 0)
                _exit(1);
            s->rate = iters / ((now_ns() - t0) / 1e9);
        } else {
            for (uint32_t i = 0; i < iters; i++) {
                uint64_t seq = i;
                memcpy(buf, &seq, 8);
                uint64_t t0 = now_ns();
                rc = ripc_client_request(c, 1, buf, size, &r, -1);
                uint64_t dt = now_ns() - t0;
                if (rc < 0 || r.len != size || memcmp(r.data, &seq, 8) != 0) {
                    sh_fail(s, "request %llu rc %llu", seq, (unsigned long long)-rc);
                    _exit(1);
                }
                s->samples[i] = (uint32_t)dt;
            }
            s->n = iters;
        }
        ripc_client_close(c);
        _exit(0);
    }
    pin(g_cpu_a);
    while (1) {
        int n = ripc_server_poll(srv, 50);
        if (n < 0)
            break;
        int st;
        if (n == 0 && ripc_server_peer_count(srv) == 0 && waitpid(pid, &st, WNOHANG) == pid) {
            pid = -1;
            break;
        }
    }
    if (pid > 0)
        reap(pid);
    ripc_server_close(srv);
}

static void rtt_ringipc(struct shared *s, size_t size, uint32_t iters)
{
    ringipc_row(s, size, iters, 0);
}

static void oneway_ringipc(struct shared *s, size_t size, uint32_t iters)
{
    ringipc_row(s, size, iters, 1);
}

/* ---- driver ---- */

typedef void (*row_fn)(struct shared *, size_t, uint32_t);

struct spec {
    const char *name;
    row_fn fn;
    int wait;      /* ringipc rows */
    int transport; /* RIPC_TRANSPORT_*, or -1: socket mode over tcp:// */
    int is_rtt;
    uint32_t iters; /* full run */
};

static const struct spec specs[] = {
    {"shm flag (floor)", rtt_flag, 0, 0, 1, 200000},
    {"eventfd ping-pong", rtt_eventfd, 0, 0, 1, 20000},
    {"unix socket", rtt_unix, 0, 0, 1, 20000},
    {"socketpair", rtt_socketpair, 0, 0, 1, 10000},
    {"pipe", rtt_pipe, 0, 0, 1, 10000},
    {"FIFO", rtt_fifo, 0, 0, 1, 10000},
    {"TCP loopback", rtt_tcp, 0, 0, 1, 10000},
    {"POSIX mq", rtt_mq, 0, 0, 1, 10000},
    {"ringipc spin", rtt_ringipc, RIPC_WAIT_SPIN, RIPC_TRANSPORT_SHM, 1, 200000},
    {"ringipc adaptive", rtt_ringipc, RIPC_WAIT_ADAPTIVE, RIPC_TRANSPORT_SHM, 1, 100000},
    {"ringipc block", rtt_ringipc, RIPC_WAIT_BLOCK, RIPC_TRANSPORT_SHM, 1, 20000},
    {"ringipc socket mode", rtt_ringipc, RIPC_WAIT_BLOCK, RIPC_TRANSPORT_SOCKET, 1, 20000},
    {"ringipc over TCP", rtt_ringipc, RIPC_WAIT_BLOCK, -1, 1, 10000},
    {"unix socket one-way", oneway_unix, 0, 0, 0, 300000},
    {"ringipc one-way (spin)", oneway_ringipc, RIPC_WAIT_SPIN, RIPC_TRANSPORT_SHM, 0, 20000000},
    {"ringipc one-way socket", oneway_ringipc, RIPC_WAIT_BLOCK, RIPC_TRANSPORT_SOCKET, 0, 300000},
};
#define NSPECS (sizeof specs / sizeof specs[0])

int main(int argc, char **argv)
{
    int reps = 3;
    size_t sizes[8] = {64, 1024};
    int nsizes = 2;
    static const struct option lo[] = {
        {"quick", no_argument, NULL, 'q'},      {"repeat", required_argument, NULL, 'r'},
        {"size", required_argument, NULL, 's'}, {"only", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},       {0, 0, 0, 0}};
    int ch, user_sizes = 0;
    const char *only = NULL;
    while ((ch = getopt_long(argc, argv, "qr:s:o:h", lo, NULL)) != -1) {
        switch (ch) {
        case 'o':
            only = optarg;
            break;
        case 'q':
            g_quick = 1;
            break;
        case 'r':
            reps = atoi(optarg);
            if (reps < 1 || reps > 8)
                reps = 3;
            break;
        case 's':
            if (!user_sizes)
                nsizes = 0;
            user_sizes = 1;
            if (nsizes < 8)
                sizes[nsizes++] = (size_t)strtoull(optarg, NULL, 0);
            break;
        default:
            printf("usage: ringipc-bench [--quick] [--repeat N] [--size BYTES]... [--only TEXT]\n"
                   "  --only TEXT   run only rows whose name contains TEXT (plus the unix\n"
                   "                baselines, which every ratio needs)\n");
            return ch == 'h' ? 0 : 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    /* Each row names its transport; the environment must not change it. */
    unsetenv("RIPC_TRANSPORT");
    pick_cpus();
    snprintf(g_url, sizeof g_url, "unix:/tmp/ringipc-bench-%d.sock", (int)getpid());
    struct shared *s = sh_new();
    struct row rows[NSPECS * 8];
    int nrows = 0;
    for (int z = 0; z < nsizes; z++)
        for (size_t k = 0; k < NSPECS; k++) {
            if (only && !strstr(specs[k].name, only) && strncmp(specs[k].name, "unix", 4) != 0)
                continue;
            struct row *r = &rows[nrows++];
            memset(r, 0, sizeof *r);
            snprintf(r->name, sizeof r->name, "%s", specs[k].name);
            r->spec = (int)k;
            r->zi = z;
            r->size = sizes[z];
            r->is_rtt = specs[k].is_rtt;
        }
    char cpu[128] = "unknown CPU";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "model name", 10) == 0) {
                char *c = strchr(line, ':');
                if (c) {
                    snprintf(cpu, sizeof cpu, "%s", c + 2);
                    cpu[strcspn(cpu, "\n")] = 0;
                }
                break;
            }
        fclose(f);
    }
    printf("ringipc-bench: %s, CPUs %d and %d, %d repetitions (interleaved)\n", cpu, g_cpu_a,
           g_cpu_b, reps);
    for (int rep = 0; rep < reps; rep++) {
        for (int ri = 0; ri < nrows; ri++) {
            {
                struct row *r = &rows[ri];
                size_t k = (size_t)r->spec;
                int z = r->zi;
                uint32_t iters = specs[k].iters / (g_quick ? 10 : 1);
                if (sizes[z] >= 1024 && !specs[k].is_rtt)
                    iters /= 4;
                if (iters > MAX_SAMPLES && specs[k].is_rtt)
                    iters = MAX_SAMPLES;
                if (sizes[z] < 8)
                    sizes[z] = 8;
                memset(s, 0, offsetof(struct shared, samples));
                g_wait = specs[k].wait;
                g_tcp = specs[k].transport == -1;
                g_transport = g_tcp ? RIPC_TRANSPORT_AUTO : specs[k].transport;
                specs[k].fn(s, sizes[z], iters);
                if (s->failed) {
                    r->failed = 1;
                    snprintf(r->fail_msg, sizeof r->fail_msg, "%s", s->fail_msg);
                    fprintf(stderr, "FAILED %s/%zu: %s\n", r->name, r->size, s->fail_msg);
                    continue;
                }
                if (r->is_rtt) {
                    double p50, p90, p99, p999, mx;
                    pct(s, &p50, &p90, &p99, &p999, &mx);
                    r->rep_p50[rep] = p50;
                    r->rep_p90[rep] = p90;
                    r->rep_p99[rep] = p99;
                    r->rep_p999[rep] = p999;
                    if (mx > r->max)
                        r->max = mx;

                } else {
                    r->rep_rate[rep] = s->rate;
                }
                r->reps++;
            }
        }
    }
    /* Ratios against the unix socket row of the same size and repetition. */
    for (int i = 0; i < nrows; i++) {
        struct row *r = &rows[i], *base = NULL;
        for (int j = 0; j < nrows; j++)
            if (rows[j].size == r->size &&
                strcmp(rows[j].name, r->is_rtt ? "unix socket" : "unix socket one-way") == 0)
                base = &rows[j];
        for (int rep = 0; base && rep < r->reps && rep < base->reps; rep++)
            r->rep_ratio[rep] = r->is_rtt ? r->rep_p50[rep] / base->rep_p50[rep]
                                          : r->rep_rate[rep] / base->rep_rate[rep];
    }
    printf("\n%-24s %7s %9s %9s %9s %9s %9s %14s %9s\n", "row", "size", "p50 us", "p90 us",
           "p99 us", "p99.9 us", "max us", "msgs/s", "vs unix");
    int failed = 0;
    for (int i = 0; i < nrows; i++) {
        struct row *r = &rows[i];
        if (r->failed) {
            failed = 1;
            printf("%-24s %7zu FAILED: %s\n", r->name, r->size, r->fail_msg);
            continue;
        }
        if (r->is_rtt) {
            r->p50 = median(r->rep_p50, r->reps);
            r->p90 = median(r->rep_p90, r->reps);
            r->p99 = median(r->rep_p99, r->reps);
            r->p999 = median(r->rep_p999, r->reps);
            r->ratio = median(r->rep_ratio, r->reps);
            printf("%-24s %7zu %9.2f %9.2f %9.2f %9.2f %9.1f %14s %8.3fx\n", r->name, r->size,
                   r->p50, r->p90, r->p99, r->p999, r->max, "-", r->ratio);
        } else {
            r->rate = median(r->rep_rate, r->reps);
            r->ratio = median(r->rep_ratio, r->reps);
            printf("%-24s %7zu %9s %9s %9s %9s %9s %14.0f %8.1fx\n", r->name, r->size, "-", "-",
                   "-", "-", "-", r->rate, r->ratio);
        }
    }
    /* The two comparisons that matter most: ringipc against the floor of its
     * own kind (spinning vs the bare flag ping-pong, sleeping vs eventfd). */
    printf("\n");
    for (int i = 0; i < nrows; i++) {
        struct row *r = &rows[i];
        const char *base = strcmp(r->name, "ringipc spin") == 0    ? "shm flag (floor)"
                           : strcmp(r->name, "ringipc block") == 0 ? "eventfd ping-pong"
                                                                   : NULL;
        if (!base || r->failed)
            continue;
        for (int j = 0; j < nrows; j++) {
            struct row *b = &rows[j];
            if (b->size != r->size || strcmp(b->name, base) != 0 || b->failed)
                continue;
            double rt[8];
            int n = r->reps < b->reps ? r->reps : b->reps;
            for (int k = 0; k < n; k++)
                rt[k] = r->rep_p50[k] / b->rep_p50[k];
            printf("%-16s %5zu B: p50 %.3fx %s\n", r->name, r->size, median(rt, n), base);
        }
    }
    printf("\nAll columns: median over repetitions (max: the largest seen). 'vs unix': the "
           "row's p50\n(or msgs/s) divided by the unix socket's from the same repetition, median "
           "over repetitions.\n");
    munmap(s, sizeof *s);
    return failed;
}
