/* SPDX-License-Identifier: MIT */
/*
 * Producer/consumer plumbing for the google-benchmark suites: see shim.h.
 *
 * Timing hygiene, since the numbers are what this file is for:
 *   - everything slow (mmap, page faults, fork, attach, pinning) happens in
 *     ripc_bench_open() before the timed loop; the consumer touches every
 *     page of the ring and says "ready" only then;
 *   - the control block's fields each sit on their own 128-byte line and are
 *     written only at the start (ready) and end (ack, errors) of a run, so
 *     they cost nothing while records flow;
 *   - the producer's spin loops look at the control block only every
 *     SPIN_CHECK pauses, to notice a dead consumer without slowing down.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_setaffinity, CPU_SET, prctl */
#endif

#include "shim.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "naive_ring.h"
#include "ringipc/ring.h"

#define LINE             128            /* matches the ring's header lines */
#define CTL_BYTES        4096           /* control block, then the ring */
#define STREAM_READ      (256u * 1024u) /* unix-socket receiver's read size */
#define FRAME_HDR        4u             /* [u32 len] before each stream payload */
#define SPIN_CHECK       1024u          /* pauses between liveness checks */
#define PUSH_SOURCES     16u            /* rotating push sources, records <= 4 KiB */
#define READY_TIMEOUT_NS 10000000000LL  /* consumer must start within 10 s */

/* Sequence values that are not records: flush-and-acknowledge, and quit. */
#define SEQ_END  (UINT64_MAX - 1)
#define SEQ_STOP UINT64_MAX

struct control {
    _Alignas(LINE) atomic_uint ready;      /* consumer: attached, pinned, pages touched */
    _Alignas(LINE) _Atomic uint64_t acked; /* consumer: records seen at SEQ_END, + 1 */
    _Alignas(LINE) atomic_int failed;      /* consumer: first error (-errno), 0 = none */
    atomic_int exited;                     /* consumer: leaving, by either path */
    long preempted;                        /* consumer: involuntary switches, ready..end */
    char why[256];                         /* text for failed, written before it */
};

struct ripc_bench_link {
    int mode;
    size_t len;         /* record bytes */
    pid_t child;        /* consumer; 0 once reaped */
    int child_status;   /* wait status when reaped early */
    int sock;           /* unix stream: producer end, else -1 */
    unsigned char *map; /* control block + ring */
    size_t map_len;
    struct control *ctl;
    ripc_ring *ring;        /* producer handle */
    struct naive_end naive; /* NAIVE_RING: producer end */
    unsigned char *src;     /* push sources / reserve payload source / stream frame */
    size_t nsrc;            /* push sources (see ripc_bench_send) */
    unsigned spins;
    int broken;           /* the consumer is gone or the ring failed */
    cpu_set_t saved_cpus; /* caller's affinity, restored by close */
    int cpu_consumer;
    long preempted_at_open; /* our involuntary context switches */
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

static void say(char *why, size_t why_len, const char *fmt, ...)
{
    va_list ap;

    if (why == NULL || why_len == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
}

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int pin_to(int cpu)
{
    cpu_set_t set;

    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set) == 0 ? 0 : -errno;
}

/* Involuntary context switches of the calling thread: other work took our
 * CPU, so the numbers of that run are suspect. */
static long preemptions(void)
{
    struct rusage ru;
#ifdef RUSAGE_THREAD
    const int who = RUSAGE_THREAD;
#else
    const int who = RUSAGE_SELF;
#endif

    return getrusage(who, &ru) == 0 ? ru.ru_nivcsw : 0;
}

/* ---- consumer side (runs in the forked child) -------------------------- */

/* Record the consumer's first error; later ones are consequences. */
static void consumer_fail(struct control *c, int err, const char *fmt, ...)
{
    va_list ap;

    if (atomic_load_explicit(&c->failed, memory_order_relaxed) != 0)
        return;
    va_start(ap, fmt);
    vsnprintf(c->why, sizeof c->why, fmt, ap);
    va_end(ap);
    /* Release: why[] is complete before the parent sees failed != 0. */
    atomic_store_explicit(&c->failed, err, memory_order_release);
}

/* Checks one record; returns 1 when it was the stop marker. */
struct checker {
    struct control *c;
    size_t len;
    uint64_t expect;
};

static int check_record(struct checker *k, uint64_t seq, size_t got)
{
    if (seq == SEQ_STOP)
        return 1;
    if (seq == SEQ_END) {
        k->c->preempted = preemptions() - k->c->preempted; /* published by acked */
        /* Release: pairs with the producer's acquire in ripc_bench_drain(). */
        atomic_store_explicit(&k->c->acked, k->expect + 1, memory_order_release);
        return 0;
    }
    if (seq != k->expect || got != k->len)
        consumer_fail(k->c, -EPROTO, "record %llu arrived as seq %llu with %zu bytes (want %zu)",
                      (unsigned long long)k->expect, (unsigned long long)seq, got, k->len);
    k->expect++;
    return 0;
}

static void consume_ring(struct control *c, void *mem, size_t mem_len, int mode, size_t len)
{
    struct checker k = {c, len, 0};
    unsigned char *buf = NULL;
    ripc_ring *r = NULL;
    int rc;

    rc = ripc_ring_attach(&r, mem, mem_len, RIPC_RING_CONSUMER);
    if (rc < 0) {
        consumer_fail(c, rc, "consumer attach: %d", rc);
        return;
    }
    if (mode == RIPC_BENCH_PUSH_POP) {
        buf = malloc(len);
        if (buf == NULL) {
            consumer_fail(c, -ENOMEM, "consumer: no memory for %zu bytes", len);
            ripc_ring_detach(r);
            return;
        }
        memset(buf, 0, len);
    }
    /* MAP_SHARED pages are not in the child's page table after fork: fault
     * them in now rather than inside the timed loop. */
    for (size_t off = 0; off < mem_len; off += 4096)
        (void)*(volatile unsigned char *)((unsigned char *)mem + off);
    c->preempted = preemptions();
    atomic_store_explicit(&c->ready, 1, memory_order_release);

    for (;;) {
        uint64_t seq = SEQ_END - 1; /* a value no short record can match */
        size_t got = 0;

        if (mode == RIPC_BENCH_PUSH_POP) {
            rc = ripc_ring_pop(r, buf, len, &got);
            if (rc == 0 && got >= sizeof seq)
                memcpy(&seq, buf, sizeof seq);
        } else {
            const void *p;

            rc = ripc_ring_peek(r, &p, &got);
            if (rc == 0) {
                if (got >= sizeof seq)
                    memcpy(&seq, p, sizeof seq);
                ripc_ring_release(r);
            }
        }
        if (rc == -EAGAIN) {
            cpu_relax();
            continue;
        }
        if (rc < 0) {
            consumer_fail(c, rc, "consumer %s: %d", mode == RIPC_BENCH_PUSH_POP ? "pop" : "peek",
                          rc);
            break;
        }
        if (check_record(&k, seq, got))
            break;
    }
    free(buf);
    ripc_ring_detach(r);
}

/* The naive ring's consumer: pop (copy out) like PUSH_POP, no checks. */
static void consume_naive(struct control *c, void *mem, size_t cap, size_t len)
{
    struct checker k = {c, len, 0};
    struct naive_end e;
    unsigned char *buf = malloc(len);

    if (buf == NULL) {
        consumer_fail(c, -ENOMEM, "consumer: no memory for %zu bytes", len);
        return;
    }
    memset(buf, 0, len);
    naive_attach(&e, mem, cap);
    for (size_t off = 0; off < naive_ring_bytes(cap); off += 4096)
        (void)*(volatile unsigned char *)((unsigned char *)mem + off);
    c->preempted = preemptions();
    atomic_store_explicit(&c->ready, 1, memory_order_release);
    for (;;) {
        uint64_t seq = SEQ_END - 1;
        size_t got = 0;
        int rc = naive_pop(&e, buf, len, &got);

        if (rc == -EAGAIN) {
            cpu_relax();
            continue;
        }
        if (rc < 0) {
            consumer_fail(c, rc, "naive consumer: %d", rc);
            break;
        }
        if (got >= sizeof seq)
            memcpy(&seq, buf, sizeof seq);
        if (check_record(&k, seq, got))
            break;
    }
    free(buf);
}

/*
 * Stream receiver: frames may straddle reads (and a 1 MiB frame spans
 * several), so parse with a small state machine that keeps only the length
 * and the first 8 payload bytes.
 */
static void consume_stream(struct control *c, int fd, size_t len)
{
    struct checker k = {c, len, 0};
    unsigned char hdr[FRAME_HDR], seqb[8];
    size_t hdr_have = 0, body_have = 0;
    uint32_t flen = 0;
    unsigned char *buf = malloc(STREAM_READ);

    if (buf == NULL) {
        consumer_fail(c, -ENOMEM, "receiver: no memory");
        return;
    }
    memset(buf, 0, STREAM_READ);
    c->preempted = preemptions();
    atomic_store_explicit(&c->ready, 1, memory_order_release);

    for (;;) {
        ssize_t n = read(fd, buf, STREAM_READ);
        const unsigned char *p = buf, *end;

        if (n == 0)
            break; /* producer shut down its side: stop */
        if (n < 0) {
            if (errno == EINTR)
                continue;
            consumer_fail(c, -errno, "receiver read: %s", strerror(errno));
            break;
        }
        end = buf + n;
        while (p < end) {
            size_t avail = (size_t)(end - p), take;

            if (hdr_have < FRAME_HDR) {
                take = FRAME_HDR - hdr_have < avail ? FRAME_HDR - hdr_have : avail;
                memcpy(hdr + hdr_have, p, take);
                hdr_have += take;
                p += take;
                if (hdr_have == FRAME_HDR) {
                    memcpy(&flen, hdr, sizeof flen);
                    body_have = 0;
                    if (flen < sizeof seqb) {
                        consumer_fail(c, -EPROTO, "receiver: frame of %u bytes", (unsigned)flen);
                        goto out;
                    }
                }
                continue;
            }
            if (body_have < sizeof seqb) {
                take = sizeof seqb - body_have < avail ? sizeof seqb - body_have : avail;
                memcpy(seqb + body_have, p, take);
            } else {
                take = flen - body_have < avail ? flen - body_have : avail;
            }
            p += take;
            body_have += take;
            if (body_have == flen) {
                uint64_t seq;

                memcpy(&seq, seqb, sizeof seq);
                hdr_have = 0;
                check_record(&k, seq, flen);
                if (seq == SEQ_END) {
                    const unsigned char one = 1;

                    while (write(fd, &one, 1) < 0 && errno == EINTR)
                        ;
                }
            }
        }
    }
out:
    free(buf);
}

static void consumer_main(struct ripc_bench_link *l, int fd)
{
    struct control *c = l->ctl;
    int rc;

#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the benchmark */
#endif
    rc = pin_to(l->cpu_consumer);
    if (rc < 0)
        consumer_fail(c, rc, "consumer: cannot pin to CPU %d: %s", l->cpu_consumer, strerror(-rc));
    else if (l->mode == RIPC_BENCH_UNIX_STREAM)
        consume_stream(c, fd, l->len);
    else if (l->mode == RIPC_BENCH_NAIVE_RING)
        consume_naive(c, l->map + CTL_BYTES, l->naive.cap, l->len);
    else
        consume_ring(c, l->map + CTL_BYTES, l->map_len - CTL_BYTES, l->mode, l->len);
    atomic_store_explicit(&c->exited, 1, memory_order_release);
    _exit(0); /* not exit(): the C++ runtime and stdio belong to the parent */
}

/* ---- producer side ------------------------------------------------------ */

/* True when the consumer has gone (or failed so that it no longer reads). */
static int consumer_gone(struct ripc_bench_link *l)
{
    if (!l->broken && atomic_load_explicit(&l->ctl->exited, memory_order_acquire) != 0)
        l->broken = 1;
    if (!l->broken && l->child > 0 && waitpid(l->child, &l->child_status, WNOHANG) == l->child) {
        l->child = 0; /* reaped: close() must not wait for it again */
        l->broken = 1;
    }
    return l->broken;
}

/* One pause of a wait loop; every SPIN_CHECK pauses, see if waiting is futile. */
static inline int spin_once(struct ripc_bench_link *l)
{
    cpu_relax();
    if ((++l->spins & (SPIN_CHECK - 1)) != 0)
        return 0;
    return consumer_gone(l);
}

static inline int link_push(struct ripc_bench_link *l, const void *buf, size_t len)
{
    if (l->mode == RIPC_BENCH_NAIVE_RING)
        return naive_push(&l->naive, buf, len);
    return ripc_ring_push(l->ring, buf, len);
}

static int ring_push_spin(struct ripc_bench_link *l, const void *buf, size_t len)
{
    int rc;

    while ((rc = link_push(l, buf, len)) == -EAGAIN)
        if (spin_once(l))
            return -EPIPE;
    if (rc < 0)
        l->broken = 1;
    return rc;
}

static int stream_send_all(struct ripc_bench_link *l, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(l->sock, p, n, MSG_NOSIGNAL);

        if (w < 0) {
            if (errno == EINTR)
                continue;
            l->broken = 1;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int stream_send(struct ripc_bench_link *l, uint64_t seq, size_t len)
{
    uint32_t flen = (uint32_t)len;

    memcpy(l->src, &flen, sizeof flen);
    memcpy(l->src + FRAME_HDR, &seq, sizeof seq);
    return stream_send_all(l, l->src, FRAME_HDR + len);
}

int ripc_bench_send(ripc_bench_link *l, uint64_t seq)
{
    void *p;
    int rc;

    switch (l->mode) {
    case RIPC_BENCH_PUSH_POP:
    case RIPC_BENCH_NAIVE_RING: {
        /* Record seq goes out of source seq % nsrc, whose sequence number was
         * written nsrc records ago. Writing it just before the push would
         * make push's wide loads wait on a failed store-to-load forward,
         * i.e. for the whole store buffer (full of stores to ring lines the
         * consumer is reading) to drain: a cost of this loop, not the ring. */
        unsigned char *b = l->src + (seq % l->nsrc) * l->len;
        uint64_t have, next = seq + l->nsrc;

        memcpy(&have, b, sizeof have);
        if (have != seq)
            memcpy(b, &seq, sizeof seq);
        rc = ring_push_spin(l, b, l->len);
        if (rc == 0)
            memcpy(b, &next, sizeof next);
        return rc;
    }
    case RIPC_BENCH_RESERVE_COMMIT:
        while ((rc = ripc_ring_reserve(l->ring, l->len, &p)) == -EAGAIN)
            if (spin_once(l))
                return -EPIPE;
        if (rc < 0) {
            l->broken = 1;
            return rc;
        }
        memcpy(p, &seq, sizeof seq);
        memcpy((unsigned char *)p + sizeof seq, l->src + sizeof seq, l->len - sizeof seq);
        ripc_ring_commit(l->ring, l->len);
        return 0;
    default:
        return stream_send(l, seq, l->len);
    }
}

int ripc_bench_drain(ripc_bench_link *l, uint64_t sent)
{
    const uint64_t end = SEQ_END;
    uint64_t acked;
    int rc;

    if (l->mode == RIPC_BENCH_UNIX_STREAM) {
        unsigned char ack;
        ssize_t n;

        rc = stream_send(l, SEQ_END, sizeof end);
        if (rc < 0)
            return rc;
        while ((n = read(l->sock, &ack, 1)) < 0 && errno == EINTR)
            ;
        if (n != 1) {
            l->broken = 1;
            return -EPIPE;
        }
        acked = atomic_load_explicit(&l->ctl->acked, memory_order_acquire);
    } else {
        rc = ring_push_spin(l, &end, sizeof end);
        if (rc < 0)
            return rc;
        /* Acquire: pairs with the release in check_record(). */
        while ((acked = atomic_load_explicit(&l->ctl->acked, memory_order_acquire)) == 0)
            if (spin_once(l))
                return -EPIPE;
    }
    return acked == sent + 1 ? 0 : -EPROTO;
}

/* ---- open / close -------------------------------------------------------- */

static size_t ring_capacity(size_t len)
{
    size_t cap = len <= 65536 ? (size_t)4 << 20 : (size_t)8 << 20;

    while (ripc_ring_max_payload(cap) < len && cap < RIPC_RING_MAX_CAPACITY)
        cap <<= 1;
    return cap;
}

static void link_free(struct ripc_bench_link *l)
{
    if (l->ring != NULL)
        ripc_ring_detach(l->ring);
    if (l->sock >= 0)
        close(l->sock);
    if (l->map != NULL)
        munmap(l->map, l->map_len);
    free(l->src);
    sched_setaffinity(0, sizeof l->saved_cpus, &l->saved_cpus);
    free(l);
}

int ripc_bench_open(ripc_bench_link **out, int mode, size_t record_len, char *why, size_t why_len)
{
    struct ripc_bench_link *l;
    int sv[2] = {-1, -1};
    int cpus[2], ncpu = 0, rc;
    size_t cap = 0;
    int64_t deadline;

    *out = NULL;
    if (record_len < sizeof(uint64_t) || record_len > UINT32_MAX ||
        (mode != RIPC_BENCH_PUSH_POP && mode != RIPC_BENCH_RESERVE_COMMIT &&
         mode != RIPC_BENCH_UNIX_STREAM && mode != RIPC_BENCH_NAIVE_RING)) {
        say(why, why_len, "bad mode %d or record size %zu (>= 8 needed)", mode, record_len);
        return -EINVAL;
    }
    l = calloc(1, sizeof *l);
    if (l == NULL) {
        say(why, why_len, "out of memory");
        return -ENOMEM;
    }
    l->mode = mode;
    l->len = record_len;
    l->sock = -1;
    if (sched_getaffinity(0, sizeof l->saved_cpus, &l->saved_cpus) != 0) {
        rc = -errno;
        say(why, why_len, "sched_getaffinity: %s", strerror(errno));
        free(l);
        return rc;
    }
    for (int i = 0; i < CPU_SETSIZE && ncpu < 2; i++)
        if (CPU_ISSET(i, &l->saved_cpus))
            cpus[ncpu++] = i;
    if (ncpu < 2) {
        say(why, why_len, "needs 2 CPUs (producer and consumer each spin on one); %d allowed",
            ncpu);
        free(l);
        return -EOPNOTSUPP;
    }
    l->cpu_consumer = cpus[1];

    l->map_len = CTL_BYTES;
    if (mode != RIPC_BENCH_UNIX_STREAM) {
        cap = ring_capacity(record_len);
        if (ripc_ring_max_payload(cap) < record_len) {
            say(why, why_len, "record of %zu bytes is larger than any ring", record_len);
            link_free(l);
            return -EMSGSIZE;
        }
        l->map_len += mode == RIPC_BENCH_NAIVE_RING ? naive_ring_bytes(cap) : ripc_ring_size(cap);
    }
    l->map = mmap(NULL, l->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (l->map == MAP_FAILED) {
        rc = -errno;
        l->map = NULL;
        say(why, why_len, "mmap %zu bytes: %s", l->map_len, strerror(-rc));
        link_free(l);
        return rc;
    }
    memset(l->map, 0, l->map_len); /* fault every page in now, not while timing */
    l->ctl = (struct control *)l->map;
    l->nsrc = (mode == RIPC_BENCH_PUSH_POP || mode == RIPC_BENCH_NAIVE_RING) && record_len <= 4096
                  ? PUSH_SOURCES
                  : 1;
    l->src = malloc(l->nsrc * record_len + FRAME_HDR);
    if (l->src == NULL) {
        say(why, why_len, "out of memory");
        link_free(l);
        return -ENOMEM;
    }
    memset(l->src, 0xa5, l->nsrc * record_len + FRAME_HDR);
    for (uint64_t i = 0; i < l->nsrc; i++)
        memcpy(l->src + i * record_len, &i, sizeof i);

    if (mode == RIPC_BENCH_UNIX_STREAM) {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
            rc = -errno;
            say(why, why_len, "socketpair: %s", strerror(errno));
            link_free(l);
            return rc;
        }
        l->sock = sv[0];
    } else if (mode == RIPC_BENCH_NAIVE_RING) {
        naive_attach(&l->naive, l->map + CTL_BYTES, cap);
    } else {
        rc = ripc_ring_format(l->map + CTL_BYTES, l->map_len - CTL_BYTES, cap);
        if (rc == 0)
            rc = ripc_ring_attach(&l->ring, l->map + CTL_BYTES, l->map_len - CTL_BYTES,
                                  RIPC_RING_PRODUCER);
        if (rc < 0) {
            say(why, why_len, "ring format/attach (capacity %zu): %d", cap, rc);
            link_free(l);
            return rc;
        }
    }

    rc = pin_to(cpus[0]);
    if (rc < 0) {
        say(why, why_len, "cannot pin to CPU %d: %s", cpus[0], strerror(-rc));
        if (sv[1] >= 0)
            close(sv[1]);
        link_free(l);
        return rc;
    }
    l->child = fork();
    if (l->child < 0) {
        rc = -errno;
        l->child = 0;
        say(why, why_len, "fork: %s", strerror(-rc));
        if (sv[1] >= 0)
            close(sv[1]);
        link_free(l);
        return rc;
    }
    if (l->child == 0) {
        if (sv[0] >= 0)
            close(sv[0]);
        consumer_main(l, sv[1]); /* does not return */
    }
    if (sv[1] >= 0)
        close(sv[1]);

    deadline = now_ns() + READY_TIMEOUT_NS;
    while (atomic_load_explicit(&l->ctl->ready, memory_order_acquire) == 0) {
        if (consumer_gone(l)) {
            rc = ripc_bench_close(l, why, why_len);
            return rc < 0 ? rc : -EPIPE;
        }
        if (now_ns() > deadline) {
            l->broken = 1; /* close() kills it */
            ripc_bench_close(l, NULL, 0);
            say(why, why_len, "consumer did not start within 10 s");
            return -ETIMEDOUT;
        }
        sched_yield();
    }
    l->preempted_at_open = preemptions();
    *out = l;
    return 0;
}

long ripc_bench_preempted(const ripc_bench_link *l)
{
    long own = preemptions() - l->preempted_at_open;

    /* Acquire: the consumer wrote its count before its release of acked. */
    if (atomic_load_explicit(&l->ctl->acked, memory_order_acquire) == 0)
        return own;
    return own + l->ctl->preempted;
}

int ripc_bench_close(ripc_bench_link *l, char *why, size_t why_len)
{
    const uint64_t stop = SEQ_STOP;
    int rc = 0, st, failed;

    if (l == NULL)
        return 0;
    /* Tell the consumer to stop; if that cannot be delivered, make it stop. */
    if (l->mode == RIPC_BENCH_UNIX_STREAM) {
        shutdown(l->sock, SHUT_WR);
    } else if (!l->broken && ring_push_spin(l, &stop, sizeof stop) < 0) {
        l->broken = 1;
    }
    if (l->child > 0) {
        if (l->broken && !atomic_load_explicit(&l->ctl->exited, memory_order_acquire))
            kill(l->child, SIGKILL);
        while (waitpid(l->child, &l->child_status, 0) < 0 && errno == EINTR)
            ;
        l->child = 0;
    }
    st = l->child_status;
    failed = atomic_load_explicit(&l->ctl->failed, memory_order_acquire);
    if (failed != 0) {
        say(why, why_len, "consumer: %s", l->ctl->why);
        rc = failed;
    } else if (WIFSIGNALED(st)) {
        say(why, why_len, "consumer killed by signal %d", WTERMSIG(st));
        rc = -EPIPE;
    } else if (l->broken) {
        say(why, why_len, "consumer stopped early (ring or socket failed)");
        rc = -EPIPE;
    }
    link_free(l);
    return rc;
}
