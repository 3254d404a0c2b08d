/* SPDX-License-Identifier: MIT */
/*
 * A connected control-channel socket (contract: sockets/sock.h): sending and
 * receiving bytes with descriptors attached (SCM_RIGHTS), blocking with a
 * time limit or one non-blocking call at a time, and the liveness probe.
 */
#include "sockets/closer.h"
#include "sockets/sock_posix.h"

#include <fcntl.h>
#include <unistd.h>

#ifndef POLLRDHUP
#define POLLRDHUP 0 /* Linux only; POLLHUP and the MSG_PEEK probe still catch EOF */
#endif

#define SOCK_MAX_FDS 8

int ripc__sock_set_nonblock(intptr_t fd, int on)
{
    int fl = fcntl((int)fd, F_GETFL);
    if (fl < 0)
        return -errno;
    fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
    if (fcntl((int)fd, F_SETFL, fl) != 0)
        return -errno;
    return 0;
}

int ripc__sock_set_sndbuf(intptr_t fd, size_t bytes)
{
    int v = bytes > (size_t)INT32_MAX ? INT32_MAX : (int)bytes, cur = 0;
    socklen_t l = sizeof cur;
    /* Never lower it: the system's default may be larger already. */
    if (getsockopt((int)fd, SOL_SOCKET, SO_SNDBUF, &cur, &l) == 0 && cur >= v)
        return 0;
    return setsockopt((int)fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v) == 0 ? 0 : -errno;
}

void ripc__sock_close(intptr_t fd)
{
    /* No retry on EINTR: on Linux the descriptor is gone either way. */
    if (fd >= 0)
        close((int)fd);
}

int ripc__fd_prepare(int fd, int nonblock)
{
    int fl = fcntl(fd, F_GETFD);
    if (fl < 0)
        return -errno;
    if (!(fl & FD_CLOEXEC) && fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0)
        return -errno;
    if (nonblock) {
        fl = fcntl(fd, F_GETFL);
        if (fl < 0)
            return -errno;
        if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
            return -errno;
    }
    return 0;
}

void ripc__sock_shutdown(intptr_t fd, int how)
{
    (void)shutdown((int)fd, how == RIPC_SOCK_SHUT_WR ? SHUT_WR : SHUT_RDWR);
}

/* ---- waiting ---- */

#define SOCK_WAIT_MAX RIPC_SOCK_WAIT_MAX

int ripc__sock_wait_many(ripc__sock_watch *w, int n, uint64_t deadline)
{
    struct pollfd pf[SOCK_WAIT_MAX];
    if (n < 0 || n > SOCK_WAIT_MAX)
        return -EINVAL;
    for (int i = 0; i < n; i++) {
        short ev = 0;
        if (w[i].events & RIPC_SOCK_IN)
            ev |= POLLIN;
        if (w[i].events & RIPC_SOCK_OUT)
            ev |= POLLOUT;
        if (w[i].events & RIPC_SOCK_HUP)
            ev |= POLLRDHUP;
        pf[i] = (struct pollfd){.fd = (int)w[i].fd, .events = ev};
        w[i].ready = 0;
    }
    int r;
    do
        r = poll(pf, (nfds_t)n, ripc__remaining_ms(deadline));
    while (r < 0 && errno == EINTR);
    if (r <= 0)
        return r < 0 ? -errno : 0;
    for (int i = 0; i < n; i++) {
        short re = pf[i].revents;
        w[i].ready = ((re & POLLIN) ? RIPC_SOCK_IN : 0) | ((re & POLLOUT) ? RIPC_SOCK_OUT : 0) |
                     ((re & (POLLERR | POLLHUP | POLLNVAL | POLLRDHUP)) ? RIPC_SOCK_HUP : 0);
    }
    return r;
}

int ripc__sock_wait(intptr_t fd, int events, uint64_t deadline)
{
    ripc__sock_watch w = {.fd = fd, .events = events};
    int r = ripc__sock_wait_many(&w, 1, deadline);
    return r > 0 ? w.ready : r;
}

/* ---- data and descriptors ---- */

typedef union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int) * SOCK_MAX_FDS)];
} fd_control;

/* Room for the most descriptors one message can carry: the kernel never
 * truncates what a peer sent, as what it drops it releases in the receiving
 * thread (sockets/closer.h). */
typedef union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int) * RIPC_SOCK_RECV_FDS)];
} fd_recv_control;

/* Put nfds (<= SOCK_MAX_FDS) descriptors into m's control data (SCM_RIGHTS). */
static void attach_fds(struct msghdr *m, fd_control *ctl, const int *fds, int nfds)
{
    if (nfds <= 0)
        return;
    memset(ctl, 0, sizeof *ctl);
    m->msg_control = ctl->buf;
    m->msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
    struct cmsghdr *c = CMSG_FIRSTHDR(m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
}

/* One non-blocking sendmsg: bytes sent, -EAGAIN, -EPIPE or -errno. */
static long send_once(int fd, const struct msghdr *m)
{
    ssize_t n;
    do
        n = sendmsg(fd, m, SEND_NOSIGNAL | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n >= 0)
        return (long)n;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return -EAGAIN;
    return errno == EPIPE || errno == ECONNRESET ? -EPIPE : -errno;
}

long ripc__sock_try_send_fds(intptr_t fd, const void *buf, size_t len, const int *fds, int nfds)
{
    fd_control ctl;
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    struct msghdr m;

    if (nfds < 0 || nfds > SOCK_MAX_FDS || (nfds > 0 && (fds == NULL || len == 0)))
        return -EINVAL;
    memset(&m, 0, sizeof m);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    attach_fds(&m, &ctl, fds, nfds);
    return send_once((int)fd, &m);
}

long ripc__sock_try_send2(intptr_t fd, const void *a, size_t alen, const void *b, size_t blen)
{
    struct iovec iov[2];
    struct msghdr m;
    int n = 0;

    if (alen)
        iov[n++] = (struct iovec){.iov_base = (void *)a, .iov_len = alen};
    if (blen)
        iov[n++] = (struct iovec){.iov_base = (void *)b, .iov_len = blen};
    memset(&m, 0, sizeof m);
    m.msg_iov = iov;
    m.msg_iovlen = (size_t)n;
    return send_once((int)fd, &m);
}

int ripc__sock_send_fds(intptr_t fd, const void *buf, size_t len, const int *fds, int nfds)
{
    const char *p = buf;
    size_t done = 0;
    fd_control ctl;

    if (nfds < 0 || nfds > SOCK_MAX_FDS || (nfds > 0 && (fds == NULL || len == 0)))
        return -EINVAL;
    while (done < len) {
        struct iovec iov = {.iov_base = (void *)(p + done), .iov_len = len - done};
        struct msghdr m;
        ssize_t n;

        memset(&m, 0, sizeof m);
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        /* The descriptors ride on the first byte: attach them until a send
         * has taken at least one byte, then never again. */
        if (done == 0)
            attach_fds(&m, &ctl, fds, nfds);
        n = sendmsg((int)fd, &m, SEND_NOSIGNAL);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n == 0)
            return -EIO; /* cannot happen with len > 0; do not spin */
        switch (errno) {
        case EINTR:
            continue;
        case EAGAIN:
#if EWOULDBLOCK != EAGAIN
        case EWOULDBLOCK:
#endif
        {
            /* The contract says blocking, but cope with a non-blocking fd. */
            int r = wait_fd((int)fd, POLLOUT, -1);
            if (r < 0)
                return r;
            continue;
        }
        case EPIPE:
        case ECONNRESET:
            return -EPIPE;
        default:
            return -errno;
        }
    }
    return 0;
}

/* Move the descriptors of one received message into fds; 1 when any did not
 * fit (those are disposed of), else 0. */
static int take_fds(struct msghdr *m, int *fds, int max_fds, int *have)
{
    int overflow = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c != NULL; c = CMSG_NXTHDR(m, c)) {
        size_t k;
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len < CMSG_LEN(0))
            continue;
        k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int x;
            memcpy(&x, CMSG_DATA(c) + i * sizeof(int), sizeof x);
#ifndef SOCK_ATOMIC_CLOEXEC
            (void)ripc__fd_prepare(x, 0);
#endif
            if (*have < max_fds) {
                fds[(*have)++] = x;
            } else {
                ripc__fd_dispose(x);
                overflow = 1;
            }
        }
    }
    return overflow;
}

/* One recvmsg (flags: 0 or MSG_DONTWAIT) with room for every descriptor the
 * message may carry; they go to fds[*have .. max_fds), the rest are
 * disposed of (*over set, as with MSG_CTRUNC). Bytes, 0 at end of stream,
 * or -errno as recvmsg set it (EINTR and EAGAIN too: the caller decides). */
static long recv_msg(int fd, void *buf, size_t len, int flags, int *fds, int max_fds, int *have,
                     int *over)
{
    fd_recv_control ctl;
    struct iovec iov = {.iov_base = buf, .iov_len = len};
    struct msghdr m;

    memset(&m, 0, sizeof m);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctl.buf;
    m.msg_controllen = sizeof ctl.buf;
    ssize_t n = recvmsg(fd, &m, flags | RECV_CLOEXEC);
    if (n < 0)
        return -errno;
    *over = take_fds(&m, fds, max_fds, have) || (m.msg_flags & MSG_CTRUNC);
    return (long)n;
}

int ripc__sock_recv_fds(intptr_t fd, void *buf, size_t len, int *fds, int max_fds, int *nfds,
                        int timeout_ms)
{
    uint64_t deadline = ripc__deadline(timeout_ms);
    char *p = buf;
    size_t got = 0;
    int have = 0, r = 0;

    if (nfds != NULL)
        *nfds = 0;
    if (max_fds < 0 || (max_fds > 0 && (fds == NULL || nfds == NULL)))
        return -EINVAL;
    while (got < len) {
        if (deadline != RIPC_DEADLINE_NEVER) {
            r = wait_fd((int)fd, POLLIN, deadline);
            if (r == 0)
                r = -ETIMEDOUT;
            if (r <= 0)
                goto fail;
        }
        int over = 0;
        long n = recv_msg((int)fd, p + got, len - got, 0, fds, max_fds, &have, &over);
        if (n < 0) {
            int err = (int)-n;
            if (err == EINTR)
                continue;
            if (err == EAGAIN || err == EWOULDBLOCK) {
                /* Non-blocking fd with no deadline: wait here instead of spinning. */
                if (deadline == RIPC_DEADLINE_NEVER &&
                    (r = wait_fd((int)fd, POLLIN, RIPC_DEADLINE_NEVER)) < 0)
                    goto fail;
                continue;
            }
            r = err == ECONNRESET ? -EPIPE : -err;
            goto fail;
        }
        /* Descriptors first (recv_msg took them): whatever happens next,
         * none may leak. More than the caller takes, or MSG_CTRUNC (no room
         * left in our descriptor table: the kernel has dropped the rest):
         * the stream is not ours to trust any more. */
        if (over) {
            r = -EPROTO;
            goto fail;
        }
        if (n == 0) {
            r = -EPIPE;
            goto fail;
        }
        got += (size_t)n;
    }
    if (nfds != NULL)
        *nfds = have;
    return 0;

fail:
    for (int i = 0; i < have; i++) {
        ripc__fd_dispose(fds[i]);
        fds[i] = -1;
    }
    return r;
}

/* recv_msg without waiting: bytes, 0 at end of stream, -EAGAIN, -EPIPE
 * (reset too) or -errno; descriptors as there. */
static long recv_once(int fd, void *buf, size_t len, int *fds, int max_fds, int *have, int *over)
{
    long n;
    do
        n = recv_msg(fd, buf, len, MSG_DONTWAIT, fds, max_fds, have, over);
    while (n == -EINTR);
    if (n == -EAGAIN || n == -EWOULDBLOCK)
        return -EAGAIN;
    return n == -ECONNRESET ? -EPIPE : n;
}

long ripc__sock_try_recv_fds(intptr_t fd, void *buf, size_t len, int *fds, int max_fds, int *nfds)
{
    if (max_fds < 0 || max_fds > RIPC_SOCK_RECV_FDS ||
        (max_fds > 0 && (fds == NULL || nfds == NULL)))
        return -EINVAL;
    int have = nfds ? *nfds : 0, over = 0;
    long n = recv_once((int)fd, buf, len, fds, max_fds, &have, &over);
    if (nfds)
        *nfds = have;
    if (n >= 0 && over)
        return -EPROTO;
    return n;
}

long ripc__sock_try_recv(intptr_t fd, void *buf, size_t len)
{
    int have = 0, over = 0;
    long n = recv_once((int)fd, buf, len, NULL, 0, &have, &over);
    return n >= 0 && over ? -EPROTO : n;
}

int ripc__sock_send_all(intptr_t fd, const void *buf, size_t len)
{
    return ripc__sock_send_fds(fd, buf, len, NULL, 0);
}

int ripc__sock_recv_all(intptr_t fd, void *buf, size_t len, int timeout_ms)
{
    return ripc__sock_recv_fds(fd, buf, len, NULL, 0, NULL, timeout_ms);
}

int ripc__sock_alive(intptr_t fd)
{
    struct pollfd p = {.fd = (int)fd, .events = POLLIN | POLLRDHUP};
    char c;
    ssize_t n;
    int r;

    do
        r = poll(&p, 1, 0);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return 0;
    if (r == 0)
        return 1;
    if (p.revents & (POLLHUP | POLLERR | POLLNVAL | POLLRDHUP))
        return 0;
    if (!(p.revents & POLLIN))
        return 1;
    /* Readable: either data (alive) or a plain EOF (gone). */
    do
        n = recv((int)fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n > 0)
        return 1;
    if (n == 0)
        return 0;
    return errno == EAGAIN || errno == EWOULDBLOCK;
}
