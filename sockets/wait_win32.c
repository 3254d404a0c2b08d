/* SPDX-License-Identifier: MIT */
/*
 * Waiting on Windows connections and handles (contract: sockets/sock.h,
 * ripc__sock_wait_many; the readiness model: sockets/sock_win32.h), and
 * the readiness the poller (sockets/poller_win32.c) works from.
 */
#include "sockets/sock_win32.h"

#include <errno.h>

int ripc__wait_handles(HANDLE *hs, const int *raw, int n, int ms)
{
    if (n == 0) {
        if (ms != 0)
            Sleep(ms < 0 ? INFINITE : (DWORD)ms);
        return 0;
    }
    /* More than one call can wait on: slices of W_SLOW_MS over the first
     * MAXIMUM_WAIT_OBJECTS; the caller looks at all of them after each. */
    int cnt = n;
    int slice = ms;
    if (n > MAXIMUM_WAIT_OBJECTS) {
        cnt = MAXIMUM_WAIT_OBJECTS;
        if (slice < 0 || slice > W_SLOW_MS)
            slice = W_SLOW_MS;
    }
    DWORD r = WaitForMultipleObjects((DWORD)cnt, hs, FALSE, slice < 0 ? INFINITE : (DWORD)slice);
    if (r < WAIT_OBJECT_0 + (DWORD)cnt) {
        if (raw[r - WAIT_OBJECT_0])
            ripc__handle_putback(hs[r - WAIT_OBJECT_0]);
        return 1;
    }
    if (r >= WAIT_ABANDONED_0 && r < WAIT_ABANDONED_0 + (DWORD)cnt)
        return 1;
    if (r == WAIT_TIMEOUT)
        return cnt < n ? 1 : 0;
    return ripc__win32_errno(GetLastError());
}

int ripc__wconn_handles(intptr_t fd, int events, HANDLE *hs, int *raw, int *slow)
{
    wconn *c = ripc__wconn_get(fd);
    int k = 0;
    if (c == NULL) {
        if (wconn_is(fd) || fd < 0)
            return -EBADF;
        if (events & (RIPC_SOCK_IN | RIPC_SOCK_HUP)) {
            hs[k] = ripc__fd_to_handle(fd);
            raw[k++] = 1;
        }
        return k;
    }
    if (c->kind == W_PIPE_LISTEN || c->kind == W_TCP_LISTEN) {
        if (events & RIPC_SOCK_IN) {
            hs[k] = c->rev;
            raw[k++] = 0;
        }
        return k;
    }
    if (events & RIPC_SOCK_IN) {
        hs[k] = c->rev;
        raw[k++] = 0;
    } else if (events & RIPC_SOCK_HUP) {
        /* With bytes buffered rev stays signalled and says nothing about
         * a hang-up; the read in flight, which would, starts only when
         * they are taken. */
        EnterCriticalSection(&c->rmu);
        ripc__wconn_harvest_read(c);
        int buffered = c->rlen > 0 && !c->reof && !c->rerr;
        LeaveCriticalSection(&c->rmu);
        if (buffered) {
            *slow = 1;
        } else {
            hs[k] = c->rev;
            raw[k++] = 0;
        }
    }
    if (events & RIPC_SOCK_OUT) {
        hs[k] = c->wev;
        raw[k++] = 0;
    }
    return k;
}

/* A pipe whose peer is gone, seen without reading (bytes may wait in our
 * buffer in front of the end). */
int ripc__wconn_pipe_broken(wconn *c)
{
    DWORD avail = 0;
    if (c->kind != W_PIPE || c->h == NULL)
        return 0;
    if (PeekNamedPipe(c->h, NULL, 0, NULL, &avail, NULL))
        return 0;
    DWORD e = GetLastError();
    return e == ERROR_BROKEN_PIPE || e == ERROR_PIPE_NOT_CONNECTED || e == ERROR_NO_DATA;
}

int ripc__wconn_ready(intptr_t fd, int events)
{
    wconn *c = ripc__wconn_get(fd);
    if (c == NULL) {
        if (wconn_is(fd) || fd < 0)
            return RIPC_SOCK_HUP;
        HANDLE h = ripc__fd_to_handle(fd);
        if (!(events & (RIPC_SOCK_IN | RIPC_SOCK_HUP)))
            return 0;
        DWORD r = WaitForSingleObject(h, 0);
        if (r == WAIT_OBJECT_0 || r == WAIT_ABANDONED) {
            ripc__handle_putback(h);
            return RIPC_SOCK_IN & events ? RIPC_SOCK_IN : RIPC_SOCK_HUP;
        }
        return r == WAIT_FAILED ? RIPC_SOCK_HUP : 0;
    }
    int ready = 0;
    if (c->kind == W_PIPE_LISTEN) {
        if (c->connected || (c->h != NULL && HasOverlappedIoCompleted(&c->rov.ov)))
            ready |= RIPC_SOCK_IN;
        return ready & events;
    }
    if (c->kind == W_TCP_LISTEN)
        return WaitForSingleObject(c->rev, 0) == WAIT_OBJECT_0 ? RIPC_SOCK_IN & events : 0;
    EnterCriticalSection(&c->rmu);
    ripc__wconn_harvest_read(c);
    if (c->rlen > 0)
        ready |= RIPC_SOCK_IN;
    if (c->reof || c->rerr || c->shut)
        ready |= RIPC_SOCK_IN | RIPC_SOCK_HUP;
    else if (c->rlen > 0 && (events & RIPC_SOCK_HUP) && !(events & RIPC_SOCK_IN) &&
             ripc__wconn_pipe_broken(c))
        ready |= RIPC_SOCK_HUP;
    LeaveCriticalSection(&c->rmu);
    EnterCriticalSection(&c->wmu);
    ripc__wconn_harvest_write(c);
    if (!c->wpending)
        ready |= RIPC_SOCK_OUT;
    if (c->werr)
        ready |= RIPC_SOCK_HUP;
    LeaveCriticalSection(&c->wmu);
    return (ready & events) | (ready & RIPC_SOCK_HUP);
}

#define WAIT_HANDLES (2 * RIPC_SOCK_WAIT_MAX)

int ripc__sock_wait_many(ripc__sock_watch *w, int n, uint64_t deadline)
{
    HANDLE hs[WAIT_HANDLES];
    int raw[WAIT_HANDLES];
    if (n < 0 || n > RIPC_SOCK_WAIT_MAX)
        return -EINVAL;
    for (;;) {
        int ready = 0, nh = 0, slow = 0;
        for (int i = 0; i < n; i++) {
            w[i].ready = ripc__wconn_ready(w[i].fd, w[i].events);
            ready += w[i].ready != 0;
        }
        if (ready > 0)
            return ready;
        int ms = ripc__remaining_ms(deadline);
        if (ms == 0)
            return 0;
        for (int i = 0; i < n; i++) {
            int k = ripc__wconn_handles(w[i].fd, w[i].events, hs + nh, raw + nh, &slow);
            if (k < 0) {
                w[i].ready = RIPC_SOCK_HUP;
                return 1;
            }
            nh += k;
        }
        if (slow && (ms < 0 || ms > W_SLOW_MS))
            ms = W_SLOW_MS;
        int r = ripc__wait_handles(hs, raw, nh, ms);
        if (r < 0)
            return r;
    }
}

int ripc__sock_wait(intptr_t fd, int events, uint64_t deadline)
{
    ripc__sock_watch w = {.fd = fd, .events = events};
    int r = ripc__sock_wait_many(&w, 1, deadline);
    return r > 0 ? w.ready : r;
}
