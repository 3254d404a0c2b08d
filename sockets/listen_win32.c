/* SPDX-License-Identifier: MIT */
/*
 * Windows listeners (contract: sockets/sock.h, "On Windows"): named pipes
 * for unix: addresses, Winsock2 for tcp://.
 *
 * A pipe listener keeps one instance of the pipe waiting for a client in an
 * overlapped ConnectNamedPipe; accept hands that instance out as the
 * server's end of the connection and puts a new one in its place. Only the
 * first instance is made with FILE_FLAG_FIRST_PIPE_INSTANCE: a name that
 * anybody else holds already (a squatter, or another master) is refused
 * rather than shared, since a client picks an instance it cannot choose.
 * Every instance gets a DACL with one entry, the current user (the default
 * one lets everybody read), and PIPE_REJECT_REMOTE_CLIENTS.
 */
#include "sockets/sock_win32.h"

#include <errno.h>
#include <sddl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#ifndef PIPE_REJECT_REMOTE_CLIENTS
#define PIPE_REJECT_REMOTE_CLIENTS 0x00000008
#endif

int ripc__pipe_name(const ripc__addr *a, wchar_t *name, size_t cap, char *why, size_t why_len)
{
    size_t n = strnlen(a->path, sizeof a->path);
    if (a->kind != RIPC_ADDR_UNIX || n == 0) {
        set_why(why, why_len, 0, "not a pipe address");
        return -EINVAL;
    }
    if (ripc__addr_abstract(a)) {
        set_why(why, why_len, 0, "unix:@name is Linux's; a pipe name is unix:NAME here");
        return -ENOTSUP;
    }
    size_t pre = wcslen(W_PIPE_PREFIX);
    if (pre + n + 1 > cap) {
        set_why(why, why_len, 0, "pipe name too long");
        return -ENAMETOOLONG;
    }
    wmemcpy(name, W_PIPE_PREFIX, pre);
    /* Bytes as they are (UTF-8 names become their bytes' code points: the
     * same name on both sides, whatever the code page); a backslash, which
     * a pipe name may not hold past the prefix, is a slash. */
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)a->path[i];
        name[pre + i] = ch == '\\' ? L'/' : (wchar_t)ch;
    }
    name[pre + n] = 0;
    return 0;
}

/* A security descriptor whose DACL admits the current user alone (and
 * protects itself from inherited entries): LocalFree it. NULL on failure. */
static PSECURITY_DESCRIPTOR own_user_sd(void)
{
    HANDLE tok;
    PSECURITY_DESCRIPTOR sd = NULL;
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok))
        return NULL;
    union {
        TOKEN_USER tu;
        char buf[256];
    } u;
    DWORD len = 0;
    wchar_t *sid = NULL;
    if (GetTokenInformation(tok, TokenUser, &u, sizeof u, &len) &&
        ConvertSidToStringSidW(u.tu.User.Sid, &sid)) {
        wchar_t sddl[256];
        _snwprintf(sddl, sizeof sddl / sizeof sddl[0], L"D:P(A;;GA;;;%ls)", sid);
        sddl[sizeof sddl / sizeof sddl[0] - 1] = 0;
        if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl, SDDL_REVISION_1, &sd, NULL))
            sd = NULL;
        LocalFree(sid);
    }
    CloseHandle(tok);
    return sd;
}

/* A new instance of the listener's pipe: the handle, or NULL with the last
 * error set. */
static HANDLE pipe_instance(const wchar_t *name, int first)
{
    PSECURITY_DESCRIPTOR sd = own_user_sd();
    if (sd == NULL)
        return NULL;
    SECURITY_ATTRIBUTES sa = {.nLength = sizeof sa, .lpSecurityDescriptor = sd};
    DWORD open =
        PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED | (first ? FILE_FLAG_FIRST_PIPE_INSTANCE : 0);
    DWORD mode = PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS;
    HANDLE h = CreateNamedPipeW(name, open, mode, PIPE_UNLIMITED_INSTANCES, W_PIPE_BUF, W_PIPE_BUF,
                                0, &sa);
    DWORD e = GetLastError();
    LocalFree(sd);
    if (h == INVALID_HANDLE_VALUE) {
        SetLastError(e);
        return NULL;
    }
    ripc__wconn_bind(h);
    return h;
}

/* Let c's instance wait for a client: 0 or -errno. */
static int pipe_wait_client(wconn *c)
{
    memset(&c->rov.ov, 0, sizeof c->rov.ov);
    c->rov.ov.hEvent = ripc__wconn_event(c->rev);
    c->connected = 0;
    ripc__wconn_started(c);
    if (ConnectNamedPipe(c->h, &c->rov.ov))
        return 0; /* connected at once; rov completed and rev set */
    DWORD e = GetLastError();
    if (e == ERROR_IO_PENDING)
        return 0;
    ripc__wconn_unstarted(c);
    if (e == ERROR_PIPE_CONNECTED) {
        /* A client came between CreateNamedPipe and here. */
        c->connected = 1;
        SetEvent(c->rev);
        return 0;
    }
    return ripc__win32_errno(e);
}

/* A fresh instance in c, waiting: 0 or -errno (c->h stays NULL then). */
static int pipe_renew(wconn *c, int first)
{
    /* wine 8 makes the instance despite FILE_FLAG_FIRST_PIPE_INSTANCE when
     * the name exists: ask first whether it does (WaitNamedPipe fails with
     * ERROR_FILE_NOT_FOUND only for a name nobody holds). The flag still
     * closes the gap between the two on Windows. */
    if (first && (WaitNamedPipeW(c->name, 1) || GetLastError() != ERROR_FILE_NOT_FOUND))
        return -EADDRINUSE;
    c->h = pipe_instance(c->name, first);
    if (c->h == NULL) {
        DWORD e = GetLastError();
        /* FIRST_PIPE_INSTANCE on a name somebody holds: access denied. */
        return first && e == ERROR_ACCESS_DENIED ? -EADDRINUSE : ripc__win32_errno(e);
    }
    int rc = pipe_wait_client(c);
    if (rc < 0) {
        CloseHandle(c->h);
        c->h = NULL;
    }
    return rc;
}

static int listen_pipe(ripc__addr *a, intptr_t *fd, char *why, size_t why_len)
{
    wconn *c = ripc__wconn_alloc(W_PIPE_LISTEN);
    if (c == NULL)
        return -ENOMEM;
    int rc = ripc__pipe_name(a, c->name, W_PIPE_NAME_MAX, why, why_len);
    if (rc == 0 && (rc = pipe_renew(c, 1)) < 0)
        set_why(why, why_len, 0, "%s pipe for unix:%s",
                rc == -EADDRINUSE ? "another process holds the" : "cannot make the", a->path);
    if (rc == 0 && (rc = ripc__wconn_insert(c)) > 0) {
        *fd = rc;
        return 0;
    }
    if (c->h != NULL) {
        DWORD n;
        CancelIoEx(c->h, &c->rov.ov);
        WaitForSingleObject(c->rev, INFINITE);
        GetOverlappedResult(c->h, &c->rov.ov, &n, FALSE);
        CloseHandle(c->h);
    }
    ripc__wconn_unref(c); /* a packet on its way holds it */
    return rc;
}

static int accept_pipe(wconn *c, intptr_t *fd)
{
    if (c->h == NULL) {
        /* The last renewal failed: try again, the caller polls us. */
        int rc = pipe_renew(c, 0);
        return rc < 0 ? rc : -EAGAIN;
    }
    if (!c->connected) {
        if (!HasOverlappedIoCompleted(&c->rov.ov))
            return -EAGAIN;
        DWORD n;
        if (!GetOverlappedResult(c->h, &c->rov.ov, &n, FALSE)) {
            /* The client came and went (ERROR_NO_DATA), or the wait broke:
             * this instance is spent; the next one waits. */
            DisconnectNamedPipe(c->h);
            CloseHandle(c->h);
            int rc = pipe_renew(c, 0);
            return rc < 0 ? rc : -EAGAIN;
        }
    }
    HANDLE h = c->h;
    ResetEvent(c->rev);
    int rc = pipe_renew(c, 0);
    (void)rc; /* no next instance now: the next accept tries again */
    if (c->h == NULL)
        SetEvent(c->rev); /* so the owner's poller brings it back here */
    int cfd = ripc__wconn_open_pipe(h, 1);
    if (cfd < 0)
        return cfd;
    *fd = cfd;
    return 0;
}

/* ---- tcp ---- */

static int listen_tcp(ripc__addr *a, intptr_t *fd, char *why, size_t why_len)
{
    struct addrinfo *res;
    int rc = ripc__tcp_resolve(a, 1, -EADDRNOTAVAIL, &res, why, why_len);
    if (rc < 0)
        return rc;
    rc = -EADDRNOTAVAIL;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        SOCKET s;
        if ((rc = ripc__tcp_socket(ai, &s)) < 0)
            continue;
        /* Not SO_REUSEADDR: on Windows it lets another socket take the
         * port from under us. */
        BOOL one = TRUE;
        setsockopt(s, SOL_SOCKET, SO_EXCLUSIVEADDRUSE, (const char *)&one, sizeof one);
        if (bind(s, ai->ai_addr, (int)ai->ai_addrlen) != 0 || listen(s, 128) != 0) {
            rc = ripc__wsa_errno(WSAGetLastError());
            closesocket(s);
            continue;
        }
        wconn *c = ripc__wconn_alloc(W_TCP_LISTEN);
        if (c == NULL) {
            closesocket(s);
            rc = -ENOMEM;
            break;
        }
        c->s = s;
        /* FD_ACCEPT sets rev while a connection waits (and makes s
         * non-blocking): accept re-arms it. */
        if (WSAEventSelect(s, c->rev, FD_ACCEPT) != 0) {
            rc = ripc__wsa_errno(WSAGetLastError());
            closesocket(s);
            ripc__wconn_free(c);
            continue;
        }
        struct sockaddr_storage ss;
        int sl = sizeof ss;
        if (getsockname(s, (struct sockaddr *)&ss, &sl) == 0)
            a->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                     : ((struct sockaddr_in *)&ss)->sin_port);
        rc = ripc__wconn_insert(c);
        if (rc < 0) {
            closesocket(s);
            ripc__wconn_free(c);
            break;
        }
        *fd = rc;
        rc = 0;
        break;
    }
    freeaddrinfo(res);
    if (rc < 0)
        set_why(why, why_len, 0, "listen on tcp://%s:%u", a->host, (unsigned)a->port);
    return rc;
}

static int accept_tcp(wconn *c, intptr_t *fd)
{
    WSANETWORKEVENTS ne;
    /* Reset rev with what it recorded, then accept: a connection that
     * comes after the accept sets rev again. */
    WSAEnumNetworkEvents(c->s, c->rev, &ne);
    SOCKET s = accept(c->s, NULL, NULL);
    if (s == INVALID_SOCKET) {
        int e = WSAGetLastError();
        if (e == WSAECONNRESET)
            return -EAGAIN; /* gone before we took it */
        return ripc__wsa_errno(e);
    }
    SetEvent(c->rev); /* more may wait: the next accept says */
    ripc__tcp_prepare(s);
    int cfd = ripc__wconn_open_tcp(s);
    if (cfd < 0)
        return cfd;
    *fd = cfd;
    return 0;
}

int ripc__sock_listen(ripc__addr *a, intptr_t *fd, char *why, size_t why_len)
{
    *fd = -1;
    a->dev = a->ino = 0;
    if (a->kind == RIPC_ADDR_UNIX)
        return listen_pipe(a, fd, why, why_len);
    if (a->kind == RIPC_ADDR_TCP)
        return listen_tcp(a, fd, why, why_len);
    set_why(why, why_len, 0, "unknown address kind");
    return -EINVAL;
}

int ripc__sock_accept(intptr_t lfd, intptr_t *fd)
{
    wconn *c = ripc__wconn_get(lfd);
    *fd = -1;
    if (c == NULL)
        return -EBADF;
    int rc = -EINVAL;
    EnterCriticalSection(&c->rmu);
    if (c->kind == W_PIPE_LISTEN)
        rc = accept_pipe(c, fd);
    else if (c->kind == W_TCP_LISTEN)
        rc = accept_tcp(c, fd);
    LeaveCriticalSection(&c->rmu);
    return rc;
}

/* A pipe name goes with its last handle: nothing to remove. */
void ripc__sock_unlink(const ripc__addr *a, intptr_t lfd)
{
    (void)a;
    (void)lfd;
}
