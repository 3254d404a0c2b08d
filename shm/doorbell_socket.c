/* SPDX-License-Identifier: MIT */
/*
 * Socket doorbell (any POSIX): a unix stream socketpair. The sleeper holds
 * one end (wait_fd) and polls it; the ringer holds the other (ring_fd) and
 * writes one byte per ring. The sleeper drains every queued byte when it
 * wakes, so rings coalesce; when the socket buffer is full the ring gets
 * EAGAIN, which only means a wake-up is pending already.
 *
 * Every send and recv passes MSG_DONTWAIT, so they never block even if a
 * peer clears O_NONBLOCK on the file it shares with us. End of stream on
 * wait_fd means every ringer is gone: the wait says -EPIPE (unless watch_fd
 * is ready too, which then explains why).
 */
#include "shm/doorbell.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shm/clock.h"
#include "shm/doorbell_common.h"
#include "shm/doorbell_impl.h"
#include "sockets/sock.h"

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* macOS: SO_NOSIGPIPE on the socket instead */
#endif

/* A ring into a socket whose reader is gone must not raise SIGPIPE. */
static int no_sigpipe(int fd)
{
#if defined(SO_NOSIGPIPE)
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one) < 0)
        return -errno;
#endif
    (void)fd;
    return 0;
}

static int make_pair(int sv[2])
{
#if !defined(RIPC_PORTABLE_POSIX) && defined(SOCK_CLOEXEC) && defined(SOCK_NONBLOCK)
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
        return -errno;
    return 0;
#else
    /* No atomic flags here: a fork in another thread between the two calls
     * could leak the fds into a child; nothing better exists. */
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return -errno;
    int rc = ripc__fd_prepare(sv[0], 1);
    if (rc == 0)
        rc = ripc__fd_prepare(sv[1], 1);
    if (rc < 0) {
        close(sv[0]);
        close(sv[1]);
    }
    return rc;
#endif
}

int ripc__doorbell_socket_usable(void)
{
    int sv[2];
    if (make_pair(sv) < 0)
        return 0;
    close(sv[0]);
    close(sv[1]);
    return 1;
}

int ripc__doorbell_socket_open(ripc__doorbell *db, _Atomic uint32_t *word)
{
    (void)word;
    int sv[2];
    int rc = make_pair(sv);
    if (rc < 0)
        return rc;
    rc = no_sigpipe(sv[1]);
    if (rc < 0) {
        close(sv[0]);
        close(sv[1]);
        return rc;
    }
    db->kind = RIPC_DB_SOCKET;
    db->wait_fd = sv[0];
    db->ring_fd = sv[1];
    return 0;
}

/* A descriptor from the peer: check that it is a socket before we trust
 * send/recv flags to keep us from blocking on it. */
static int check_sock(int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (!S_ISSOCK(st.st_mode))
        return -ENOTSOCK;
    return ripc__fd_prepare(fd, 1);
}

int ripc__doorbell_socket_adopt(ripc__doorbell *db, int wait_fd, int ring_fd,
                                _Atomic uint32_t *word)
{
    (void)word;
    int rc = 0;
    if (wait_fd >= 0)
        rc = check_sock(wait_fd);
    if (rc == 0 && ring_fd >= 0) {
        rc = check_sock(ring_fd);
        if (rc == 0)
            rc = no_sigpipe(ring_fd);
    }
    if (rc < 0)
        return rc;
    db->kind = RIPC_DB_SOCKET;
    db->wait_fd = wait_fd;
    db->ring_fd = ring_fd;
    return 0;
}

void ripc__doorbell_socket_ring(ripc__doorbell *db)
{
    const char b = 1;
    if (db->ring_fd < 0)
        return;
    /* EAGAIN: the buffer is full of earlier rings, a wake-up is pending.
     * EPIPE / ECONNRESET: the sleeper is gone; its side finds out. */
    while (send(db->ring_fd, &b, 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno == EINTR)
        ;
}

/* Read all queued bytes. Returns 1 if any came, 0 if none was there,
 * -EPIPE at end of stream with nothing before it, -EPROTO when a ring came
 * with descriptors, or another -errno.
 * Descriptors a peer attaches to its rings are disposed of
 * (sockets/closer.h), not dropped by the kernel in this thread. */
static int drain_bytes(int fd)
{
    char buf[256];
    int got = 0;
    for (;;) {
        long n = ripc__sock_try_recv(fd, buf, sizeof buf);
        if (n > 0) {
            got = 1;
            if ((size_t)n < sizeof buf)
                return 1; /* a short read empties a stream socket */
            continue;
        }
        if (n == 0)
            return got ? 1 : -EPIPE;
        if (n == -EAGAIN)
            return got;
        if (n == -EPROTO)
            return -EPROTO; /* a descriptor with a ring: the ringer broke the rules */
        return got ? 1 : (int)n;
    }
}

int ripc__doorbell_socket_wait(ripc__doorbell *db, uint32_t seen, int watch_fd, int timeout_ms)
{
    (void)seen;
    int rc = ripc__doorbell_poll(db->wait_fd, watch_fd, ripc__deadline(timeout_ms));
    if (rc <= 0)
        return rc;
    if (rc & 1) {
        /* A ring wins over watch_fd (the caller takes what was published
         * first; watch_fd is level-triggered). A dead ringer loses to it:
         * watch_fd says why. */
        int d = drain_bytes(db->wait_fd);
        if (d > 0)
            return 1;
        if (rc & 2)
            return 2;
        return d < 0 ? d : 1; /* 0: readable but empty, a spurious 1 */
    }
    return 2;
}

int ripc__doorbell_socket_drain(ripc__doorbell *db)
{
    int d = drain_bytes(db->wait_fd);
    return d == -EPIPE || d == -EPROTO ? d : 0;
}
