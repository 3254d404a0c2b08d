/* SPDX-License-Identifier: MIT */
/*
 * Connecting to a control-channel address within a time limit (contract:
 * sockets/sock.h).
 */
#include "sockets/sock_posix.h"

#include <sys/time.h>
#include <unistd.h>

/* ---- connect ---- */

/*
 * Linux unix sockets: a non-blocking connect to a listener whose backlog is
 * full fails with EAGAIN and cannot be polled for completion. A blocking
 * connect waits for room, bounded by SO_SNDTIMEO, so use that for the time
 * left and clear it afterwards.
 */
static int connect_unix_wait(int fd, const struct sockaddr *sa, socklen_t slen, uint64_t deadline)
{
    static const struct timeval forever = {0, 0};
    int r, err;

    r = ripc__sock_set_nonblock(fd, 0);
    if (r != 0)
        return r;
    for (;;) {
        int left = ripc__remaining_ms(deadline);
        struct timeval tv = forever;
        if (left == 0) {
            err = ETIMEDOUT;
            break;
        }
        if (left > 0) {
            tv.tv_sec = left / 1000;
            tv.tv_usec = (left % 1000) * 1000;
        }
        if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) {
            err = errno;
            break;
        }
        if (connect(fd, sa, slen) == 0) {
            err = 0;
            break;
        }
        err = errno;
        if (err != EINTR && err != EAGAIN && err != EWOULDBLOCK)
            break;
    }
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &forever, sizeof forever);
    return -err;
}

/* Connect the non-blocking fd to sa before deadline. */
static int connect_fd(int fd, const struct sockaddr *sa, socklen_t slen, uint64_t deadline)
{
    socklen_t elen;
    int err, r;

    for (;;) {
        if (connect(fd, sa, slen) == 0)
            return 0;
        err = errno;
        if (err == EINTR && sa->sa_family == AF_UNIX)
            continue; /* unix connect has no in-progress state to wait for */
        break;
    }
    if ((err == EAGAIN || err == EWOULDBLOCK) && sa->sa_family == AF_UNIX)
        return connect_unix_wait(fd, sa, slen, deadline);
    if (err != EINPROGRESS && err != EINTR)
        return -err;
    r = wait_fd(fd, POLLOUT, deadline);
    if (r == 0)
        return -ETIMEDOUT;
    if (r < 0)
        return r;
    elen = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
        return -errno;
    return -err;
}

static int connect_unix(const ripc__addr *a, int *out, uint64_t deadline, char *why, size_t why_len)
{
    struct sockaddr_un sun;
    socklen_t slen;
    int fd, r;

    r = unix_sockaddr(a, &sun, &slen, why, why_len);
    if (r != 0)
        return r;
    fd = sock_new(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) {
        r = -errno;
        set_why(why, why_len, -r, "socket");
        return r;
    }
    r = connect_fd(fd, (const struct sockaddr *)&sun, slen, deadline);
    if (r == -ENOENT)
        r = -ECONNREFUSED; /* no file: nobody listens, same as a stale one */
    if (r != 0) {
        set_why(why, why_len, -r, "connect unix:%s", a->path);
        close(fd);
        return r;
    }
    *out = fd;
    return 0;
}

static int connect_tcp(const ripc__addr *a, int *out, uint64_t deadline, char *why, size_t why_len)
{
    struct addrinfo *res, *ai;
    int fd = -1, r = -EHOSTUNREACH;

    if (a->port == 0) {
        set_why(why, why_len, 0, "cannot connect to port 0");
        return -EINVAL;
    }
    r = resolve(a, 0, -EHOSTUNREACH, &res, why, why_len);
    if (r != 0)
        return r;
    r = -EHOSTUNREACH;
    /* "localhost" may give ::1 then 127.0.0.1: try each until one answers. */
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = sock_new(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) {
            r = -errno;
            continue;
        }
        r = connect_fd(fd, ai->ai_addr, ai->ai_addrlen, deadline);
        if (r == 0)
            break;
        close(fd);
        fd = -1;
        if (r == -ETIMEDOUT)
            break;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        set_why(why, why_len, -r, "connect tcp://%s:%u", a->host, (unsigned)a->port);
        return r;
    }
    set_nodelay(fd);
    *out = fd;
    return 0;
}

int ripc__sock_connect(const ripc__addr *a, intptr_t *fd, int timeout_ms, char *why, size_t why_len)
{
    uint64_t deadline = ripc__deadline(timeout_ms);
    int nfd = -1, r;

    *fd = -1;
    if (a->kind == RIPC_ADDR_UNIX) {
        r = connect_unix(a, &nfd, deadline, why, why_len);
    } else if (a->kind == RIPC_ADDR_TCP) {
        r = connect_tcp(a, &nfd, deadline, why, why_len);
    } else {
        set_why(why, why_len, 0, "bad address kind %d", a->kind);
        return -EINVAL;
    }
    if (r != 0)
        return r;
    r = ripc__sock_set_nonblock(nfd, 0);
    if (r != 0) {
        set_why(why, why_len, -r, "fcntl");
        close(nfd);
        return r;
    }
    *fd = nfd;
    return 0;
}
