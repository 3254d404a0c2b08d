/* SPDX-License-Identifier: MIT */
/*
 * Windows connect (contract: sockets/sock.h, "On Windows"): a pipe client
 * end, or a Winsock2 TCP connection, within the caller's time limit.
 */
#include "sockets/sock_win32.h"

#include <errno.h>
#include <string.h>

static int dial_pipe(const ripc__addr *a, intptr_t *fd, uint64_t deadline, char *why,
                     size_t why_len)
{
    wchar_t name[W_PIPE_NAME_MAX];
    int rc = ripc__pipe_name(a, name, W_PIPE_NAME_MAX, why, why_len);
    if (rc < 0)
        return rc;
    for (;;) {
        /* SECURITY_IDENTIFICATION: whoever holds the name may learn who
         * we are, not act as us. */
        HANDLE h = CreateFileW(
            name, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
            FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, NULL);
        if (h != INVALID_HANDLE_VALUE) {
            rc = ripc__wconn_open_pipe(h, 0);
            if (rc < 0)
                return rc;
            *fd = rc;
            return 0;
        }
        DWORD e = GetLastError();
        if (e == ERROR_FILE_NOT_FOUND || e == ERROR_PATH_NOT_FOUND) {
            set_why(why, why_len, 0, "nobody listens at unix:%s", a->path);
            return -ECONNREFUSED;
        }
        if (e != ERROR_PIPE_BUSY) {
            set_why(why, why_len, 0, "open the pipe of unix:%s (Windows error %lu)", a->path,
                    (unsigned long)e);
            return ripc__win32_errno(e);
        }
        /* Every instance is taken: wait for the listener's next one. */
        int ms = ripc__remaining_ms(deadline);
        if (ms == 0) {
            set_why(why, why_len, 0, "the pipe of unix:%s stayed busy", a->path);
            return -ETIMEDOUT;
        }
        if (!WaitNamedPipeW(name, ms < 0 ? NMPWAIT_WAIT_FOREVER : (DWORD)ms) &&
            GetLastError() == ERROR_FILE_NOT_FOUND) {
            set_why(why, why_len, 0, "nobody listens at unix:%s", a->path);
            return -ECONNREFUSED;
        }
    }
}

/* One non-blocking connect within the deadline: 0 or -errno. */
static int connect_one(SOCKET s, const struct addrinfo *ai, uint64_t deadline)
{
    u_long one = 1;
    if (ioctlsocket(s, FIONBIO, &one) != 0)
        return ripc__wsa_errno(WSAGetLastError());
    if (connect(s, ai->ai_addr, (int)ai->ai_addrlen) == 0)
        return 0;
    int e = WSAGetLastError();
    if (e != WSAEWOULDBLOCK)
        return ripc__wsa_errno(e);
    for (;;) {
        fd_set wr, ex;
        FD_ZERO(&wr);
        FD_ZERO(&ex);
        FD_SET(s, &wr);
        FD_SET(s, &ex);
        int ms = ripc__remaining_ms(deadline);
        struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
        int r = select(0, NULL, &wr, &ex, ms < 0 ? NULL : &tv);
        if (r < 0)
            return ripc__wsa_errno(WSAGetLastError());
        if (r == 0) {
            if (ripc__expired(deadline))
                return -ETIMEDOUT;
            continue;
        }
        int err = 0, len = sizeof err;
        if (getsockopt(s, SOL_SOCKET, SO_ERROR, (char *)&err, &len) != 0)
            return ripc__wsa_errno(WSAGetLastError());
        return err == 0 ? 0 : ripc__wsa_errno(err);
    }
}

static int dial_tcp(const ripc__addr *a, intptr_t *fd, uint64_t deadline, char *why, size_t why_len)
{
    struct addrinfo *res;
    int rc = ripc__tcp_resolve(a, 0, -ECONNREFUSED, &res, why, why_len);
    if (rc < 0)
        return rc;
    rc = -ECONNREFUSED;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        SOCKET s;
        if ((rc = ripc__tcp_socket(ai, &s)) < 0)
            continue;
        rc = connect_one(s, ai, deadline);
        if (rc < 0) {
            closesocket(s);
            if (rc == -ETIMEDOUT)
                break;
            continue;
        }
        ripc__tcp_prepare(s);
        rc = ripc__wconn_open_tcp(s);
        if (rc >= 0) {
            *fd = rc;
            rc = 0;
        }
        break;
    }
    freeaddrinfo(res);
    if (rc < 0)
        set_why(why, why_len, 0, "connect to tcp://%s:%u: %s", a->host, (unsigned)a->port,
                rc == -ETIMEDOUT ? "timed out" : "failed");
    return rc;
}

int ripc__sock_connect(const ripc__addr *a, intptr_t *fd, int timeout_ms, char *why, size_t why_len)
{
    uint64_t deadline = ripc__deadline(timeout_ms);
    *fd = -1;
    if (a->kind == RIPC_ADDR_UNIX)
        return dial_pipe(a, fd, deadline, why, why_len);
    if (a->kind == RIPC_ADDR_TCP)
        return dial_tcp(a, fd, deadline, why, why_len);
    set_why(why, why_len, 0, "unknown address kind");
    return -EINVAL;
}
