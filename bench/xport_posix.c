/* SPDX-License-Identifier: MIT */
/*
 * The POSIX baselines: eventfd, byte streams (unix socket, socketpair,
 * pipe, FIFO, TCP loopback) and POSIX message queues (the shared-memory
 * flags: xport_flag.c).
 *
 * Descriptors are made by the driver before it forks, in one convention:
 * fd[0], fd[1] the server's read and write ends, fd[2], fd[3] the client's
 * (the same descriptor twice for a socket). Each child closes the other
 * side's descriptors when it opens its end.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "xport.h"

static int set_fds(struct xp_run *r, int srd, int swr, int crd, int cwr)
{
    r->fd[0] = srd;
    r->fd[1] = swr;
    r->fd[2] = crd;
    r->fd[3] = cwr;
    return 0;
}

/* Close each of fd[] once; keep[] (may be NULL) are left open. */
static void close_fds(struct xp_run *r, const int *keep)
{
    for (int i = 0; i < 4; i++) {
        int fd = r->fd[i], dup = fd < 0;
        for (int j = 0; j < i && !dup; j++)
            dup = r->fd[j] == fd;
        for (int j = 0; keep && j < 2 && !dup; j++)
            dup = keep[j] == fd;
        if (!dup)
            close(fd);
    }
}

static void fds_teardown(struct xp_run *r)
{
    close_fds(r, NULL);
}

/* ---- one end over two descriptors (streams, eventfd, mq) ---- */

struct fd_end {
    int rd, wr;
    struct xp_stream in;
};

static int fd_open(struct xp_run *r, int side, void **end)
{
    const int *own = &r->fd[side == XP_SERVER ? 0 : 2];
    struct fd_end *e = calloc(1, sizeof *e);
    if (e == NULL)
        return -ENOMEM;
    e->rd = own[0];
    e->wr = own[1];
    if (xp_stream_init(&e->in, r->size) < 0) {
        free(e);
        return -ENOMEM;
    }
    close_fds(r, own);
    *end = e;
    return 0;
}

static void fd_close(void *end)
{
    struct fd_end *e = end;
    close(e->rd);
    if (e->wr != e->rd)
        close(e->wr);
    xp_stream_free(&e->in);
    free(e);
}

/* One write() per message, as users of a stream do (a large one may take a
 * few when the kernel accepts part of it). */
static int stream_send(void *end, const void *buf, size_t len)
{
    struct fd_end *e = end;
    return xp_write_all(e->wr, buf, len);
}

static long fd_read(void *ctx, void *buf, size_t len)
{
    const struct fd_end *e = ctx;
    for (;;) {
        ssize_t n = read(e->rd, buf, len);
        if (n >= 0)
            return (long)n;
        if (errno != EINTR)
            return -errno;
    }
}

/* Messages are all the same size; read as much as the kernel has (up to
 * XP_STREAM_READ) and hand them out one by one. */
static int stream_recv(void *end, const void **buf, size_t *len)
{
    struct fd_end *e = end;
    return xp_stream_next(&e->in, fd_read, e, buf, len);
}

/* ---- byte streams ---- */

static int setup_socketpair(struct xp_run *r)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    return set_fds(r, sv[0], sv[0], sv[1], sv[1]);
}

static int setup_pipe(struct xp_run *r)
{
    int cs[2], sc[2];
    if (pipe2(cs, O_CLOEXEC) < 0)
        return -errno;
    if (pipe2(sc, O_CLOEXEC) < 0) {
        int err = -errno;
        close(cs[0]);
        close(cs[1]);
        return err;
    }
    return set_fds(r, cs[0], sc[1], sc[0], cs[1]);
}

static int setup_fifo(struct xp_run *r)
{
    int fd[2];
    for (int i = 0; i < 2; i++) {
        snprintf(r->path[i], sizeof r->path[i], "/tmp/ringipc-bench-%d.fifo%d", (int)getpid(), i);
        unlink(r->path[i]);
        if (mkfifo(r->path[i], 0600) < 0)
            return -errno;
        /* O_RDWR opens without waiting for the other end (Linux). */
        fd[i] = open(r->path[i], O_RDWR | O_CLOEXEC);
        unlink(r->path[i]);
        if (fd[i] < 0)
            return -errno;
    }
    return set_fds(r, fd[0], fd[1], fd[1], fd[0]);
}

/* A listening socket, one connect, one accept, all in the driver. */
static int setup_connected(struct xp_run *r, int family)
{
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct sockaddr *sa = family == AF_UNIX ? (struct sockaddr *)&un : (struct sockaddr *)&in;
    socklen_t alen = family == AF_UNIX ? sizeof un : sizeof in;
    int l, c = -1, a = -1, one = 1;

    if (family == AF_UNIX) {
        snprintf(un.sun_path, sizeof un.sun_path, "/tmp/ringipc-bench-%d.u", (int)getpid());
        unlink(un.sun_path);
    }
    l = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (l < 0 || bind(l, sa, alen) < 0 || listen(l, 1) < 0 || getsockname(l, sa, &alen) < 0)
        goto fail;
    c = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c < 0 || connect(c, sa, alen) < 0)
        goto fail;
    a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    if (a < 0)
        goto fail;
    if (family == AF_INET) {
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    } else {
        unlink(un.sun_path);
    }
    close(l);
    return set_fds(r, a, a, c, c);
fail:;
    int err = -errno;
    if (family == AF_UNIX)
        unlink(un.sun_path);
    if (c >= 0)
        close(c);
    if (l >= 0)
        close(l);
    return err;
}

static int setup_unix(struct xp_run *r)
{
    return setup_connected(r, AF_UNIX);
}

static int setup_tcp(struct xp_run *r)
{
    return setup_connected(r, AF_INET);
}

#define STREAM_XPORT(nm, setupfn)                                                                  \
    {                                                                                              \
        .name = nm, .flags = XP_RTT | XP_ONEWAY, .setup = setupfn, .open = fd_open,                \
        .send = stream_send, .recv = stream_recv, .close = fd_close, .teardown = fds_teardown,     \
    }

const struct xport xp_unix = STREAM_XPORT("unix socket", setup_unix);
const struct xport xp_socketpair = STREAM_XPORT("socketpair", setup_socketpair);
const struct xport xp_pipe = STREAM_XPORT("pipe", setup_pipe);
const struct xport xp_fifo = STREAM_XPORT("FIFO", setup_fifo);
const struct xport xp_tcp = STREAM_XPORT("TCP loopback", setup_tcp);

/* ---- eventfd: the sequence number is the counter (plus one) ---- */

static int setup_eventfd(struct xp_run *r)
{
    int cs = eventfd(0, EFD_CLOEXEC), sc = eventfd(0, EFD_CLOEXEC);
    if (cs < 0 || sc < 0) {
        int err = -errno;
        if (cs >= 0)
            close(cs);
        return err;
    }
    return set_fds(r, cs, sc, sc, cs);
}

static int efd_send(void *end, const void *buf, size_t len)
{
    struct fd_end *e = end;
    uint64_t v;
    (void)len;
    memcpy(&v, buf, sizeof v);
    v++;
    return write(e->wr, &v, sizeof v) == (ssize_t)sizeof v ? 0 : -errno;
}

static int efd_recv(void *end, const void **buf, size_t *len)
{
    struct fd_end *e = end;
    uint64_t v;
    if (read(e->rd, &v, sizeof v) != (ssize_t)sizeof v)
        return -errno;
    v--;
    memcpy(e->in.buf, &v, sizeof v);
    *buf = e->in.buf;
    *len = sizeof v;
    return 0;
}

const struct xport xp_eventfd = {
    .name = "eventfd ping-pong",
    .flags = XP_RTT | XP_NOPAYLOAD,
    .setup = setup_eventfd,
    .open = fd_open,
    .send = efd_send,
    .recv = efd_recv,
    .close = fd_close,
    .teardown = fds_teardown,
};

/* ---- POSIX message queues: one each way, unlinked once open ---- */

#define MQ_DEPTH 8 /* below the default /proc/sys/fs/mqueue/msg_max (10) */

static long mq_limit(void)
{
    long v = 8192;
    FILE *f = fopen("/proc/sys/fs/mqueue/msgsize_max", "r");
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = 8192;
        fclose(f);
    }
    return v;
}

static const char *mq_na(const struct xp_run *r, char *why, size_t n)
{
    long max = mq_limit();
    if ((long)r->size <= max)
        return NULL;
    snprintf(why, n, "n/a: > /proc/sys/fs/mqueue/msgsize_max (%ld B)", max);
    return why;
}

static int setup_mq(struct xp_run *r)
{
    struct mq_attr at = {.mq_maxmsg = MQ_DEPTH, .mq_msgsize = (long)r->size};
    mqd_t q[2];
    for (int i = 0; i < 2; i++) {
        snprintf(r->path[i], sizeof r->path[i], "/ringipc-bench-%d-%d", (int)getpid(), i);
        mq_unlink(r->path[i]);
        q[i] = mq_open(r->path[i], O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600, &at);
        mq_unlink(r->path[i]);
        if (q[i] == (mqd_t)-1) {
            int err = -errno;
            if (i == 1)
                mq_close(q[0]);
            return err;
        }
    }
    /* An mqd_t is a descriptor on Linux: close() works on it. */
    return set_fds(r, q[0], q[1], q[1], q[0]);
}

static int mq_xsend(void *end, const void *buf, size_t len)
{
    struct fd_end *e = end;
    return mq_send(e->wr, buf, len, 0) == 0 ? 0 : -errno;
}

static int mq_xrecv(void *end, const void **buf, size_t *len)
{
    struct fd_end *e = end;
    ssize_t n = mq_receive(e->rd, (char *)e->in.buf, e->in.cap, NULL);
    if (n < 0)
        return -errno;
    *buf = e->in.buf;
    *len = (size_t)n;
    return 0;
}

const struct xport xp_mq = {
    .name = "POSIX mq",
    .flags = XP_RTT | XP_ONEWAY,
    .na = mq_na,
    .setup = setup_mq,
    .open = fd_open,
    .send = mq_xsend,
    .recv = mq_xrecv,
    .close = fd_close,
    .teardown = fds_teardown,
};
