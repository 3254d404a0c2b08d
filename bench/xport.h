/* SPDX-License-Identifier: MIT */
/*
 * ringipc-bench transports: one small table of operations per mechanism, so
 * that the measuring loops (ringipc_bench.c) are written once.
 *
 * A run has a server process (pinned to the first CPU) and a client process
 * (pinned to the second; with --same-cpu to the first too), both started by
 * the driver (forked; on Windows, the program again):
 *
 *   driver   setup()                          before fork: pipes, sockets, maps
 *                                             (Windows: inheritable handles)
 *   server   open(SERVER) -> ready -> serve   echo (round trip) or consume (one-way)
 *   client   wait ready -> open(CLIENT) -> call()/send() ... -> close()
 *   server   waits until the client has closed, then close()
 *   driver   teardown()                       after both have exited
 *
 * Every message starts with its 8-byte sequence number (0, 1, 2, ...); the
 * last one carries XP_SEQ_END and is always a round trip, so the client
 * knows the server has taken everything before it stops the clock.
 */
#ifndef RIPC_BENCH_XPORT_H
#define RIPC_BENCH_XPORT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define XP_SEQ_END (UINT64_C(1) << 62) /* fits an eventfd counter */

enum { XP_SERVER = 0, XP_CLIENT = 1 };

enum {
    XP_RTT = 1u,       /* has round-trip rows */
    XP_ONEWAY = 2u,    /* has one-way rows */
    XP_NOPAYLOAD = 4u, /* carries the sequence number only (eventfd) */
    XP_NOT_BUILT = 8u, /* the library was not found at build time */
    XP_SPINS = 16u,    /* waits by spinning: with both sides on one CPU it only
                        * burns the time slice its peer needs (--same-cpu omits it) */
};

#define XP_MAX_SAMPLES 400000u

/* Shared (MAP_SHARED; on Windows a mapping both children inherit) between
 * driver, server and client for one run. */
struct xp_page {
    _Alignas(128) atomic_int ready;  /* server: open, listening */
    _Alignas(128) atomic_int done;   /* client: closed its end */
    _Alignas(128) atomic_int failed; /* first failure, its text in fail_msg */
    char fail_msg[160];
    char url[160]; /* server -> client: where to connect (ringipc, tcp port 0) */
    /* client */
    _Atomic uint64_t warm; /* one-way: messages sent before the clock started */
    uint64_t sent;         /* messages before the end marker, warm-up included */
    double c_wall, c_cpu;  /* seconds: the measured loop, and the CPU it burned */
    uint32_t n;            /* round-trip samples */
    /* server */
    uint64_t received;
    double s_wall, s_cpu;
    uint32_t samples[XP_MAX_SAMPLES]; /* round trips, ns */
};

/* Per-run parameters, filled by the driver before fork; both children see
 * their own copy (on Windows: a copy in the shared mapping, with `pg`,
 * `arg` and `mem` made again in the child). Transports keep what setup()
 * made in `fd`, `path`, `mem`; on Windows in `handle` and `mem_handle`,
 * inheritable, so that they have the same values in both children. */
struct xp_run {
    struct xp_page *pg;
    size_t size;      /* message bytes, >= 8 */
    int oneway;       /* 0: round trip, 1: one-way */
    const void *arg;  /* the row's transport argument (ringipc variants) */
    unsigned spin_us; /* ringipc rows: ripc_options.spin_us (0: the library's default) */
    int fd[4];
    char path[2][128];
    void *mem;
    size_t mem_len;
    void *handle[4]; /* Windows: HANDLEs */
    void *mem_handle;
};

/* What the server does with each message: check its sequence number, read
 * every byte (one-way), and say whether to echo it and whether it was last. */
struct xp_sink {
    struct xp_run *run;
    uint64_t want;
    uint64_t sum;
    double t0, cpu0;
    int check_len;
};
enum { XP_TAKE_ECHO = 1, XP_TAKE_LAST = 2 };
/* Returns XP_TAKE_* bits, or -EPROTO (the failure is in run->pg). */
int xp_sink_take(struct xp_sink *k, const void *data, size_t len);

struct xport {
    const char *name;
    unsigned flags;
    const void *arg;
    /* NULL when `size` can run, else why not (written into why). Optional. */
    const char *(*na)(const struct xp_run *r, char *why, size_t n);
    int (*setup)(struct xp_run *r); /* optional */
    /* In the child. On success *end is the side's state. */
    int (*open)(struct xp_run *r, int side, void **end);
    int (*send)(void *end, const void *buf, size_t len);
    /* Next message; *buf stays valid until the next recv/call/close. */
    int (*recv)(void *end, const void **buf, size_t *len);
    /* Optional: client round trip (default send + recv). */
    int (*call)(void *end, const void *buf, size_t len, const void **rbuf, size_t *rlen);
    /* Optional: server loop (default recv, xp_sink_take, send when echoing). */
    int (*serve)(void *end, struct xp_sink *k);
    void (*close)(void *end);
    void (*teardown)(struct xp_run *r); /* optional */
};

/* Byte streams: messages all `size` bytes, read in chunks of up to
 * XP_STREAM_READ and handed out one by one. */
#define XP_STREAM_READ (256u * 1024u)
struct xp_stream {
    size_t size;
    unsigned char *buf; /* received bytes [off, have) */
    size_t cap, off, have;
};
int xp_stream_init(struct xp_stream *s, size_t size); /* 0 or -ENOMEM */
void xp_stream_free(struct xp_stream *s);
/* The next message; rd(ctx, buf, len) returns bytes read (> 0), 0 at the
 * end of the stream or -errno. 0, -EPIPE at the end, or rd's error. */
int xp_stream_next(struct xp_stream *s, long (*rd)(void *ctx, void *buf, size_t len), void *ctx,
                   const void **buf, size_t *len);

/* Helpers shared by transports. */
void xp_fail(struct xp_page *pg, const char *fmt, ...);
int xp_write_all(int fd, const void *buf, size_t len); /* 0 or -errno (POSIX) */
double xp_now(void);                                   /* seconds, monotonic */
uint64_t xp_now_ns(void);                              /* the same clock, ns */
double xp_cpu(void); /* this process's user+sys CPU, s (getrusage, GetProcessTimes) */
/* Shared-memory transports: len bytes of anonymous MAP_SHARED memory in
 * r->mem, every page faulted in before timing; xp_unmap undoes it. */
int xp_map_shared(struct xp_run *r, size_t len); /* 0 or -errno */
void xp_unmap(struct xp_run *r);
/* ipc:// transports (POSIX): a socket file path in path[0], its URL in
 * path[1]. */
int xp_ipc_setup(struct xp_run *r);
void xp_ipc_teardown(struct xp_run *r);

/* The transport tables, in row order. */
extern const struct xport xp_flag_bare, xp_flag, xp_eventfd, xp_unix, xp_socketpair, xp_pipe,
    xp_fifo, xp_tcp, xp_mq, xp_naive;
extern const struct xport xp_ripc_spin, xp_ripc_adaptive, xp_ripc_loan, xp_ripc_fill, xp_ripc_block,
    xp_ripc_socket, xp_ripc_tcp, xp_ripc_large, xp_ripc_large_loan, xp_ripc_large_fill, xp_ripc_m2w,
    xp_ripc_m2w_loan, xp_ripc_m2w_fill, xp_ripc_m2w_large, xp_ripc_m2w_large_loan,
    xp_ripc_m2w_large_fill;
extern const struct xport xp_zmq, xp_nng;
/* Windows (xport_win32.c): a byte-mode named pipe, TCP loopback, two
 * auto-reset events. */
extern const struct xport xp_npipe, xp_wtcp, xp_event;

#endif /* RIPC_BENCH_XPORT_H */
