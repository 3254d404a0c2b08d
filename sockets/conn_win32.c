/* SPDX-License-Identifier: MIT */
/*
 * Windows connections (contract: sockets/sock.h, "On Windows"; the model:
 * sockets/sock_win32.h): the table of connections, reads into the
 * connection's buffer, writes from its own, the waits, shutdown and close.
 */
#include "sockets/sock_win32.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- the table ---- */

static SRWLOCK table_lock = SRWLOCK_INIT;
static wconn **table; /* under table_lock */
static size_t table_cap, table_hint;

#define TABLE_MAX ((size_t)1 << 24)

int ripc__wconn_insert(wconn *c)
{
    int fd = -EMFILE;
    AcquireSRWLockExclusive(&table_lock);
    for (size_t n = 0; n < table_cap; n++) {
        size_t i = (table_hint + n) % table_cap;
        if (table[i] == NULL) {
            table[i] = c;
            table_hint = i + 1;
            fd = (int)((i << 2) | 3);
            goto out;
        }
    }
    if (table_cap < TABLE_MAX) {
        size_t cap = table_cap ? table_cap * 2 : 64;
        wconn **t = realloc(table, cap * sizeof *t);
        if (t == NULL) {
            fd = -ENOMEM;
            goto out;
        }
        memset(t + table_cap, 0, (cap - table_cap) * sizeof *t);
        t[table_cap] = c;
        fd = (int)((table_cap << 2) | 3);
        table_hint = table_cap + 1;
        table = t;
        table_cap = cap;
    }
out:
    ReleaseSRWLockExclusive(&table_lock);
    return fd;
}

wconn *ripc__wconn_get(intptr_t fd)
{
    if (!wconn_is(fd))
        return NULL;
    size_t i = (size_t)fd >> 2;
    wconn *c = NULL;
    AcquireSRWLockShared(&table_lock);
    if (i < table_cap)
        c = table[i];
    ReleaseSRWLockShared(&table_lock);
    return c;
}

void ripc__wconn_remove(intptr_t fd)
{
    if (!wconn_is(fd))
        return;
    size_t i = (size_t)fd >> 2;
    AcquireSRWLockExclusive(&table_lock);
    if (i < table_cap)
        table[i] = NULL;
    ReleaseSRWLockExclusive(&table_lock);
}

/* ---- I/O that outlives the thread that started it (sock_win32.h) ---- */

static INIT_ONCE port_once = INIT_ONCE_STATIC_INIT;
static HANDLE port;
static int rescue; /* wine: packets come, and the rescuer takes them */

static DWORD WINAPI rescuer_main(void *arg)
{
    (void)arg;
    for (;;) {
        DWORD n;
        ULONG_PTR key;
        OVERLAPPED *ov = NULL;
        BOOL ok = GetQueuedCompletionStatus(port, &n, &key, &ov, INFINITE);
        if (ov == NULL) {
            if (!ok)
                Sleep(10); /* the port itself failed: do not spin */
            continue;
        }
        wconn *c = ((struct wov *)ov)->c;
        if (c->kind == W_PIPE || c->kind == W_TCP) {
            /* Whatever the packet was for, collect what is done now: a
             * cancelled read or write starts again from this thread. */
            CRITICAL_SECTION *mu = ov == &c->rov.ov ? &c->rmu : &c->wmu;
            EnterCriticalSection(mu);
            if (ov == &c->rov.ov)
                ripc__wconn_harvest_read(c);
            else
                ripc__wconn_harvest_write(c);
            LeaveCriticalSection(mu);
        }
        ripc__wconn_unref(c);
    }
    return 0;
}

static BOOL CALLBACK port_init(PINIT_ONCE once, PVOID param, PVOID *ctx)
{
    port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1);
    HMODULE nt = GetModuleHandleW(L"ntdll.dll");
    if (port != NULL && nt != NULL && GetProcAddress(nt, "wine_get_version") != NULL) {
        HANDLE t = CreateThread(NULL, 64 * 1024, rescuer_main, NULL,
                                STACK_SIZE_PARAM_IS_A_RESERVATION, NULL);
        if (t != NULL) {
            rescue = 1;
            CloseHandle(t);
        }
    }
    return TRUE;
}

static void port_start(void)
{
    InitOnceExecuteOnce(&port_once, port_init, NULL, NULL);
}

void ripc__wconn_bind(HANDLE h)
{
    port_start();
    /* Best effort: an unbound handle's I/O is started again by whoever
     * looks next after a cancel (ripc__wconn_harvest_read / _write). */
    if (port != NULL)
        (void)CreateIoCompletionPort(h, port, 0, 0);
}

HANDLE ripc__wconn_event(HANDLE ev)
{
    port_start();
    return rescue ? ev : (HANDLE)((uintptr_t)ev | 1);
}

void ripc__wconn_started(wconn *c)
{
    if (rescue)
        InterlockedIncrement(&c->refs);
}

void ripc__wconn_unstarted(wconn *c)
{
    if (rescue)
        InterlockedDecrement(&c->refs); /* never the last: c's own is held */
}

void ripc__wconn_unref(wconn *c)
{
    if (InterlockedDecrement(&c->refs) == 0)
        ripc__wconn_free(c);
}

/* ---- making and freeing ---- */

wconn *ripc__wconn_alloc(int kind)
{
    wconn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->kind = kind;
    c->s = INVALID_SOCKET;
    InitializeCriticalSection(&c->rmu);
    InitializeCriticalSection(&c->wmu);
    c->rev = CreateEventW(NULL, TRUE, FALSE, NULL);
    c->wev = CreateEventW(NULL, TRUE, TRUE, NULL);
    if (kind == W_PIPE || kind == W_TCP) {
        c->rbuf = malloc(W_RBUF);
        c->wbuf = malloc(W_WBUF);
    }
    if (c->rev == NULL || c->wev == NULL ||
        ((kind == W_PIPE || kind == W_TCP) && (c->rbuf == NULL || c->wbuf == NULL))) {
        ripc__wconn_free(c);
        return NULL;
    }
    c->rov.ov.hEvent = ripc__wconn_event(c->rev);
    c->wov.ov.hEvent = ripc__wconn_event(c->wev);
    c->rov.c = c->wov.c = c;
    c->refs = 1;
    return c;
}

void ripc__wconn_free(wconn *c)
{
    if (c == NULL)
        return;
    if (c->rev)
        CloseHandle(c->rev);
    if (c->wev)
        CloseHandle(c->wev);
    DeleteCriticalSection(&c->rmu);
    DeleteCriticalSection(&c->wmu);
    free(c->rbuf);
    free(c->wbuf);
    free(c);
}

/* ---- reading: rmu held ---- */

static int is_tcp(const wconn *c)
{
    return c->kind == W_TCP;
}

/* The result of the I/O on ov: 1 done (*n bytes), 0 still in flight,
 * W_ABORTED (cancelled after *n bytes), or -errno. */
#define W_ABORTED (-ECANCELED)
static int io_result(wconn *c, OVERLAPPED *ov, DWORD *n, BOOL wait)
{
    if (wait) /* on the event itself: hEvent may carry the no-packet bit */
        WaitForSingleObject(ov == &c->rov.ov ? c->rev : c->wev, INFINITE);
    if (!HasOverlappedIoCompleted(ov))
        return 0;
    wait = FALSE;
    if (is_tcp(c)) {
        DWORD flags = 0;
        if (WSAGetOverlappedResult(c->s, ov, n, wait, &flags))
            return 1;
        int e = WSAGetLastError();
        if (e == WSA_OPERATION_ABORTED) {
            *n = (DWORD)ov->InternalHigh;
            return W_ABORTED;
        }
        return e == WSA_IO_INCOMPLETE ? 0 : ripc__wsa_errno(e);
    }
    if (GetOverlappedResult(c->h, ov, n, wait))
        return 1;
    DWORD e = GetLastError();
    if (e == ERROR_OPERATION_ABORTED) {
        *n = (DWORD)ov->InternalHigh; /* what went before the cancel */
        return W_ABORTED;
    }
    return e == ERROR_IO_INCOMPLETE ? 0 : ripc__win32_errno(e);
}

static void arm_read(wconn *c);

/* Collect the read in flight, if it is done. */
void ripc__wconn_harvest_read(wconn *c)
{
    if (!c->rpending)
        return;
    DWORD n = 0;
    int r = io_result(c, &c->rov.ov, &n, FALSE);
    if (r == 0)
        return;
    c->rpending = 0;
    if (r == W_ABORTED && !c->shut) {
        /* The thread that started it ended (sockets/sock_win32.h): no
         * byte was taken; start it again from this one. */
        if (n > 0) {
            c->roff = 0;
            c->rlen = n;
        } else {
            arm_read(c);
        }
        return;
    }
    if (r < 0) {
        /* A broken pipe is the end of the stream: the peer closed. */
        if (r == -EPIPE && !c->shut)
            c->reof = 1;
        else
            c->rerr = c->shut ? -EPIPE : r;
    } else if (n == 0) {
        c->reof = 1; /* TCP: the peer's FIN */
    } else {
        c->roff = 0;
        c->rlen = n;
    }
}

/* Start the next read (the buffer is empty, nothing recorded). */
static void arm_read(wconn *c)
{
    if (c->rpending || c->rlen > 0 || c->reof || c->rerr)
        return;
    if (c->shut) {
        c->rerr = -EPIPE;
        SetEvent(c->rev);
        return;
    }
    int r;
    ripc__wconn_started(c);
    if (is_tcp(c)) {
        WSABUF b = {.len = W_RBUF, .buf = c->rbuf};
        DWORD flags = 0;
        r = WSARecv(c->s, &b, 1, NULL, &flags, &c->rov.ov, NULL) == 0 ? 0 : WSAGetLastError();
        r = r == 0 || r == WSA_IO_PENDING ? 0 : ripc__wsa_errno(r);
    } else {
        r = ReadFile(c->h, c->rbuf, W_RBUF, NULL, &c->rov.ov) ? 0 : (int)GetLastError();
        r = r == 0 || r == ERROR_IO_PENDING ? 0 : ripc__win32_errno((DWORD)r);
    }
    if (r != 0)
        ripc__wconn_unstarted(c);
    if (r == 0) {
        c->rpending = 1;
        ripc__wconn_harvest_read(c); /* done at once: take it now */
        return;
    }
    if (r == -EPIPE)
        c->reof = 1;
    else
        c->rerr = r;
    SetEvent(c->rev);
}

/* Copy up to len buffered bytes; restart the read when the buffer empties.
 * Bytes copied, 0 at the end of the stream, -EAGAIN, or -errno. */
static long take(wconn *c, char *buf, size_t len)
{
    size_t got = 0;
    ripc__wconn_harvest_read(c);
    while (got < len) {
        if (c->rlen == 0) {
            arm_read(c);
            if (c->rlen == 0)
                break;
        }
        size_t k = c->rlen < len - got ? c->rlen : len - got;
        memcpy(buf + got, c->rbuf + c->roff, k);
        c->roff += k;
        c->rlen -= k;
        got += k;
    }
    if (c->rlen == 0)
        arm_read(c);
    if (got > 0)
        return (long)got;
    if (c->rerr)
        return c->rerr;
    return c->reof ? 0 : -EAGAIN;
}

/* ---- writing: wmu held ---- */

static int start_write(wconn *c, size_t off, size_t len);

void ripc__wconn_harvest_write(wconn *c)
{
    if (!c->wpending)
        return;
    DWORD n = 0;
    int r = io_result(c, &c->wov.ov, &n, FALSE);
    if (r == 0)
        return;
    c->wpending = 0;
    if (r == W_ABORTED && !c->shut) {
        /* The thread that started it ended: the rest goes now. */
        if (n < c->wlen)
            (void)start_write(c, c->woff + n, c->wlen - n);
        return;
    }
    if (r < 0 && !c->werr)
        c->werr = r == W_ABORTED ? -EPIPE : r;
}

/* Start writing wbuf[off, off + len): 0 or -errno. */
static int start_write(wconn *c, size_t off, size_t len)
{
    int r;
    c->woff = off;
    c->wlen = len;
    ripc__wconn_started(c);
    if (is_tcp(c)) {
        WSABUF b = {.len = (ULONG)len, .buf = c->wbuf + off};
        r = WSASend(c->s, &b, 1, NULL, 0, &c->wov.ov, NULL) == 0 ? 0 : WSAGetLastError();
        r = r == 0 || r == WSA_IO_PENDING ? 0 : ripc__wsa_errno(r);
    } else {
        r = WriteFile(c->h, c->wbuf + off, (DWORD)len, NULL, &c->wov.ov) ? 0 : (int)GetLastError();
        r = r == 0 || r == ERROR_IO_PENDING ? 0 : ripc__win32_errno((DWORD)r);
    }
    if (r != 0)
        ripc__wconn_unstarted(c);
    if (r == 0) {
        c->wpending = 1;
        ripc__wconn_harvest_write(c);
        return c->werr;
    }
    c->werr = r == -EIO || r == -EBADF ? -EPIPE : r;
    SetEvent(c->wev);
    return c->werr;
}

static long try_send_pieces(wconn *c, const void *a, size_t alen, const void *b, size_t blen)
{
    long rc;
    EnterCriticalSection(&c->wmu);
    ripc__wconn_harvest_write(c);
    if (c->shut || c->werr) {
        rc = c->werr ? c->werr : -EPIPE;
    } else if (c->wpending) {
        rc = -EAGAIN;
    } else {
        size_t ka = alen < W_WBUF ? alen : W_WBUF;
        size_t kb = blen < W_WBUF - ka ? blen : W_WBUF - ka;
        memcpy(c->wbuf, a, ka);
        if (kb)
            memcpy(c->wbuf + ka, b, kb);
        rc = ka + kb == 0 ? 0 : start_write(c, 0, ka + kb);
        if (rc == 0)
            rc = (long)(ka + kb);
    }
    LeaveCriticalSection(&c->wmu);
    return rc;
}

/* ---- data ---- */

long ripc__sock_try_send2(intptr_t fd, const void *a, size_t alen, const void *b, size_t blen)
{
    wconn *c = ripc__wconn_get(fd);
    if (c == NULL || (c->kind != W_PIPE && c->kind != W_TCP))
        return -EBADF;
    return try_send_pieces(c, a, alen, b, blen);
}

long ripc__sock_try_send_fds(intptr_t fd, const void *buf, size_t len, const int *fds, int nfds)
{
    if (nfds > 0)
        return -ENOTSUP; /* handles go by DuplicateHandle (platform/win32.h) */
    return ripc__sock_try_send2(fd, buf, len, NULL, 0);
}

int ripc__sock_send_fds(intptr_t fd, const void *buf, size_t len, const int *fds, int nfds)
{
    if (nfds > 0)
        return -ENOTSUP;
    const char *p = buf;
    size_t done = 0;
    while (done < len) {
        long r = ripc__sock_try_send2(fd, p + done, len - done, NULL, 0);
        if (r > 0) {
            done += (size_t)r;
            continue;
        }
        if (r != -EAGAIN)
            return (int)r;
        int w = ripc__sock_wait(fd, RIPC_SOCK_OUT, UINT64_MAX);
        if (w < 0)
            return w;
    }
    return 0;
}

int ripc__sock_send_all(intptr_t fd, const void *buf, size_t len)
{
    return ripc__sock_send_fds(fd, buf, len, NULL, 0);
}

long ripc__sock_try_recv(intptr_t fd, void *buf, size_t len)
{
    wconn *c = ripc__wconn_get(fd);
    if (c == NULL || (c->kind != W_PIPE && c->kind != W_TCP))
        return -EBADF;
    EnterCriticalSection(&c->rmu);
    long r = take(c, buf, len);
    LeaveCriticalSection(&c->rmu);
    return r;
}

long ripc__sock_try_recv_fds(intptr_t fd, void *buf, size_t len, int *fds, int max_fds, int *nfds)
{
    (void)fds;
    (void)max_fds;
    (void)nfds; /* nothing arrives with bytes here: *nfds stays as it is */
    return ripc__sock_try_recv(fd, buf, len);
}

int ripc__sock_recv_fds(intptr_t fd, void *buf, size_t len, int *fds, int max_fds, int *nfds,
                        int timeout_ms)
{
    (void)fds;
    (void)max_fds;
    if (nfds)
        *nfds = 0;
    uint64_t deadline = ripc__deadline(timeout_ms);
    char *p = buf;
    size_t got = 0;
    while (got < len) {
        long r = ripc__sock_try_recv(fd, p + got, len - got);
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        if (r == 0)
            return -EPIPE;
        if (r != -EAGAIN)
            return (int)r;
        int w = ripc__sock_wait(fd, RIPC_SOCK_IN, deadline);
        if (w < 0)
            return w;
        if (w == 0)
            return -ETIMEDOUT;
    }
    return 0;
}

int ripc__sock_recv_all(intptr_t fd, void *buf, size_t len, int timeout_ms)
{
    return ripc__sock_recv_fds(fd, buf, len, NULL, 0, NULL, timeout_ms);
}

int ripc__sock_alive(intptr_t fd)
{
    wconn *c = ripc__wconn_get(fd);
    if (c == NULL)
        return 0;
    if (c->kind != W_PIPE && c->kind != W_TCP)
        return !c->shut;
    EnterCriticalSection(&c->rmu);
    ripc__wconn_harvest_read(c);
    int alive = !c->shut && !c->reof && !c->rerr && !ripc__wconn_pipe_broken(c);
    LeaveCriticalSection(&c->rmu);
    if (alive) {
        EnterCriticalSection(&c->wmu);
        ripc__wconn_harvest_write(c);
        alive = !c->werr;
        LeaveCriticalSection(&c->wmu);
    }
    return alive;
}

/* ---- shutdown and close ---- */

/* Cancel our I/O in flight on c and wait until it has ended (it writes
 * into c's buffers). Both locks held. */
static void cancel_io(wconn *c)
{
    HANDLE h = is_tcp(c) ? (HANDLE)c->s : c->h;
    if (h == NULL || h == INVALID_HANDLE_VALUE || (!c->rpending && !c->wpending))
        return;
    CancelIoEx(h, NULL);
    DWORD n;
    if (c->rpending) {
        int r = io_result(c, &c->rov.ov, &n, TRUE);
        c->rpending = 0;
        if (r > 0 && n > 0) {
            c->roff = 0;
            c->rlen = n; /* came before the cancel: stays readable */
        }
    }
    if (c->wpending) {
        (void)io_result(c, &c->wov.ov, &n, TRUE);
        c->wpending = 0;
    }
}

/* Break the connection for both sides, both locks held. A pipe handle is
 * closed here: a pipe has no half-close, and closing is what lets the peer
 * read what was sent before the end (DisconnectNamedPipe would throw it
 * away). Every later call finds shut and touches no handle. */
static void shut_locked(wconn *c, int how)
{
    if (c->shut)
        return;
    c->shut = 1;
    if (is_tcp(c)) {
        shutdown(c->s, how == RIPC_SOCK_SHUT_WR ? SD_SEND : SD_BOTH);
        if (how == RIPC_SOCK_SHUT_WR) {
            /* Reads go on: the peer's stream is still ours to read. */
            c->shut = 0;
            if (!c->werr)
                c->werr = -EPIPE;
            SetEvent(c->wev);
            return;
        }
        cancel_io(c);
    } else if (c->kind == W_PIPE) {
        cancel_io(c);
        CloseHandle(c->h);
        c->h = NULL;
    }
    if (!c->rerr && !c->reof)
        c->rerr = -EPIPE;
    if (!c->werr)
        c->werr = -EPIPE;
    SetEvent(c->rev);
    SetEvent(c->wev);
}

void ripc__sock_shutdown(intptr_t fd, int how)
{
    wconn *c = ripc__wconn_get(fd);
    if (c == NULL || (c->kind != W_PIPE && c->kind != W_TCP))
        return;
    if (how == RIPC_SOCK_SHUT_WR && c->kind == W_PIPE) {
        /* What was handed to us goes out first, if the peer takes it
         * within a second. */
        uint64_t deadline = ripc__deadline(1000);
        while (!ripc__expired(deadline)) {
            EnterCriticalSection(&c->wmu);
            ripc__wconn_harvest_write(c);
            int pending = c->wpending;
            LeaveCriticalSection(&c->wmu);
            if (!pending)
                break;
            WaitForSingleObject(c->wev, (DWORD)ripc__remaining_ms(deadline));
        }
    }
    EnterCriticalSection(&c->rmu);
    EnterCriticalSection(&c->wmu);
    shut_locked(c, how);
    LeaveCriticalSection(&c->wmu);
    LeaveCriticalSection(&c->rmu);
}

void ripc__sock_close(intptr_t fd)
{
    wconn *c = ripc__wconn_get(fd);
    if (c == NULL) {
        if (fd >= 0 && !wconn_is(fd))
            CloseHandle(ripc__fd_to_handle(fd));
        return;
    }
    ripc__wconn_remove(fd);
    EnterCriticalSection(&c->rmu);
    EnterCriticalSection(&c->wmu);
    switch (c->kind) {
    case W_PIPE:
    case W_TCP:
        cancel_io(c);
        break;
    case W_PIPE_LISTEN:
        if (c->h != NULL && !c->connected && !HasOverlappedIoCompleted(&c->rov.ov)) {
            DWORD n;
            CancelIoEx(c->h, &c->rov.ov);
            WaitForSingleObject(c->rev, INFINITE);
            GetOverlappedResult(c->h, &c->rov.ov, &n, FALSE);
        }
        break;
    default:
        break;
    }
    if (c->h != NULL)
        CloseHandle(c->h);
    if (c->s != INVALID_SOCKET)
        closesocket(c->s);
    LeaveCriticalSection(&c->wmu);
    LeaveCriticalSection(&c->rmu);
    ripc__wconn_unref(c);
}

/* Every connection behaves the same (sockets/sock.h, "On Windows"). */
int ripc__sock_set_nonblock(intptr_t fd, int on)
{
    (void)on;
    return ripc__wconn_get(fd) != NULL ? 0 : -EBADF;
}

/* A connection's writes go through its own buffer of W_WBUF bytes: a send
 * of up to that many fits in one try_send once the previous write is done;
 * the size is fixed, so a larger one cannot be promised. */
int ripc__sock_set_sndbuf(intptr_t fd, size_t bytes)
{
    if (ripc__wconn_get(fd) == NULL)
        return -EBADF;
    return bytes <= W_WBUF ? 0 : -ENOBUFS;
}

/* Nothing is inherited unless asked for, and no handle is non-blocking. */
int ripc__fd_prepare(int fd, int nonblock)
{
    (void)fd;
    (void)nonblock;
    return 0;
}

/* ---- opening ---- */

static int open_conn(wconn *c)
{
    int fd = ripc__wconn_insert(c);
    if (fd < 0)
        return fd;
    if (!(c->kind == W_PIPE && c->server)) /* a listener's instance is bound */
        ripc__wconn_bind(is_tcp(c) ? (HANDLE)c->s : c->h);
    EnterCriticalSection(&c->rmu);
    arm_read(c);
    LeaveCriticalSection(&c->rmu);
    return fd;
}

int ripc__wconn_open_pipe(HANDLE h, int server)
{
    wconn *c = ripc__wconn_alloc(W_PIPE);
    if (c == NULL) {
        CloseHandle(h);
        return -ENOMEM;
    }
    c->h = h;
    c->server = server;
    int fd = open_conn(c);
    if (fd < 0) {
        CloseHandle(h);
        ripc__wconn_free(c);
    }
    return fd;
}

int ripc__wconn_open_tcp(SOCKET s)
{
    wconn *c = ripc__wconn_alloc(W_TCP);
    if (c == NULL) {
        closesocket(s);
        return -ENOMEM;
    }
    c->s = s;
    int fd = open_conn(c);
    if (fd < 0) {
        closesocket(s);
        ripc__wconn_free(c);
    }
    return fd;
}
