/* SPDX-License-Identifier: MIT */
/*
 * Helpers the POSIX socket files share (sockets/listen_posix.c,
 * dial_posix.c, conn_posix.c, cred_posix.c); not a contract, only those
 * files include it (the contract is sockets/sock.h).
 *
 * Every descriptor made or received here is close-on-exec. The default
 * Linux build sets that atomically (SOCK_CLOEXEC, accept4,
 * MSG_CMSG_CLOEXEC), so a fork+exec in another thread never inherits one;
 * the portable build (RIPC_PORTABLE_POSIX, and systems without those
 * flags) sets it with fcntl right after the call, which leaves that window
 * open. Without MSG_NOSIGNAL (macOS), each socket made or accepted here
 * gets SO_NOSIGPIPE instead.
 *
 * Blocking model: listeners are non-blocking (the caller polls them); every
 * connected socket handed out is blocking, and time limits are enforced with
 * poll() before the call, never with SO_RCVTIMEO/SO_SNDTIMEO left on the fd.
 */
#ifndef RIPC_SOCKETS_SOCK_POSIX_H
#define RIPC_SOCKETS_SOCK_POSIX_H

#include "shm/clock.h"
#include "shm/why.h"
#include "sockets/sock.h"
#include "sockets/sun_path.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define set_why ripc__set_why

/* ---- close-on-exec, non-blocking, no SIGPIPE ---- */

#if !defined(RIPC_PORTABLE_POSIX) && defined(SOCK_CLOEXEC) && defined(SOCK_NONBLOCK) && \
    defined(MSG_CMSG_CLOEXEC)
#define SOCK_ATOMIC_CLOEXEC 1
#define RECV_CLOEXEC        MSG_CMSG_CLOEXEC
#else
#define RECV_CLOEXEC 0 /* take_fds sets FD_CLOEXEC on what arrives */
#endif

#ifdef MSG_NOSIGNAL
#define SEND_NOSIGNAL MSG_NOSIGNAL
#else
#define SEND_NOSIGNAL 0 /* sock_prepare sets SO_NOSIGPIPE on the socket */
#endif

/* Close-on-exec, non-blocking when nonblock, and no SIGPIPE on a send to a
 * gone peer: what every socket made or accepted here needs where the
 * flags of the call itself could not say it. 0 or -errno. */
static inline int sock_prepare(int fd, int nonblock)
{
    int rc = ripc__fd_prepare(fd, nonblock);
#if !defined(MSG_NOSIGNAL) && defined(SO_NOSIGPIPE)
    int one = 1;
    if (rc == 0 && setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one) != 0)
        rc = -errno;
#endif
    return rc;
}

/* socket(2) for a close-on-exec, non-blocking socket: the descriptor, or -1
 * with errno set. */
static inline int sock_new(int domain, int type, int proto)
{
#ifdef SOCK_ATOMIC_CLOEXEC
    return socket(domain, type | SOCK_CLOEXEC | SOCK_NONBLOCK, proto);
#else
    int fd = socket(domain, type, proto);
    if (fd < 0)
        return -1;
    int rc = sock_prepare(fd, 1);
    if (rc < 0) {
        (void)close(fd);
        errno = -rc;
        return -1;
    }
    return fd;
#endif
}

/* accept(2) for a close-on-exec, blocking socket: the descriptor, or -1 with
 * errno set (a failure to prepare it closes it and says EINTR: try the next
 * connection). */
static inline int sock_accept_new(int lfd)
{
#ifdef SOCK_ATOMIC_CLOEXEC
    /* Linux: the accepted socket does not inherit O_NONBLOCK, so it is blocking. */
    return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
#else
    /* The BSDs hand down the listener's O_NONBLOCK: clear it. */
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0)
        return -1;
    if (sock_prepare(fd, 0) < 0 || ripc__sock_set_nonblock(fd, 0) < 0) {
        (void)close(fd);
        errno = EINTR;
        return -1;
    }
    return fd;
#endif
}

/* ---- time limits (deadlines: shm/clock.h) ---- */

/* 1 when fd is ready for events (or has an error/hang-up the next call will
 * report), 0 when the deadline passed, -errno on a poll failure. */
static inline int wait_fd(int fd, short events, uint64_t deadline)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, ripc__remaining_ms(deadline));
        if (r > 0)
            return 1;
        if (r == 0)
            return 0;
        if (errno != EINTR)
            return -errno;
    }
}

/* ---- addresses to sockaddrs ---- */

static inline int unix_sockaddr(const ripc__addr *a, struct sockaddr_un *sun, socklen_t *slen,
                                char *why, size_t why_len)
{
    size_t n = strnlen(a->path, sizeof a->path);
    if (n == 0 || n > SOCK_PATH_MAX) {
        set_why(why, why_len, 0, "bad unix socket path (%zu bytes, max %zu)", n,
                (size_t)SOCK_PATH_MAX);
        return n == 0 ? -EINVAL : -ENAMETOOLONG;
    }
    memset(sun, 0, sizeof *sun);
    sun->sun_family = AF_UNIX;
    if (ripc__addr_abstract(a)) {
        /* sun_path[0] = 0, then the name; the length ends the name (no NUL:
         * a trailing zero byte would be part of it). */
        memcpy(sun->sun_path + 1, a->path + 1, n - 1);
        *slen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
        return 0;
    }
    memcpy(sun->sun_path, a->path, n);
    *slen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
}

/* getaddrinfo's errors as -errno; name-not-found becomes notfound. */
static inline int resolve(const ripc__addr *a, int passive, int notfound, struct addrinfo **res,
                          char *why, size_t why_len)
{
    struct addrinfo hints;
    char port[8];
    int r;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
    snprintf(port, sizeof port, "%u", (unsigned)a->port);
    r = getaddrinfo(a->host, port, &hints, res);
    if (r == 0)
        return 0;
    *res = NULL;
    if (r == EAI_SYSTEM) {
        int e = errno != 0 ? errno : EIO;
        set_why(why, why_len, e, "resolve '%s'", a->host);
        return -e;
    }
    set_why(why, why_len, 0, "resolve '%s': %s", a->host, gai_strerror(r));
    if (r == EAI_MEMORY)
        return -ENOMEM;
    if (r == EAI_AGAIN)
        return -EAGAIN;
    return notfound;
}

static inline void set_nodelay(int fd)
{
    int one = 1;
    /* Best effort: a missing NODELAY costs latency, not correctness. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static inline int sock_family(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
        return -errno;
    return ss.ss_family;
}

#endif /* RIPC_SOCKETS_SOCK_POSIX_H */
