/* SPDX-License-Identifier: MIT */
/* Handing objects to the peer on Windows (platform/pass.h): duplicated
 * into the peer's process, their values sent in the frame's bytes. */
#include "platform/pass.h"

#include <errno.h>

#include "platform/win32.h"
#include "sockets/sock.h"

int ripc__pass_open(ripc__pass *ps, int32_t pid, int give)
{
    ps->peer = -1;
    ps->give = give;
    if (pid <= 0)
        return -ESRCH;
    DWORD access = SYNCHRONIZE | (give ? PROCESS_DUP_HANDLE : 0);
    HANDLE h = OpenProcess(access, FALSE, (DWORD)pid);
    if (h == NULL)
        return ripc__win32_errno(GetLastError());
    ps->peer = (intptr_t)h;
    return 0;
}

void ripc__pass_close(ripc__pass *ps)
{
    if (ps->peer >= 0)
        CloseHandle((HANDLE)ps->peer);
    ps->peer = -1;
}

intptr_t ripc__pass_watch(const ripc__pass *ps, intptr_t sock)
{
    return ps->peer >= 0 ? ps->peer : sock;
}

static DWORD role_access(int role)
{
    switch (role) {
    case RIPC_PASS_SEGMENT:
        /* Map and query the size (shm/segment_win32.c checks it); never
         * SECTION_EXTEND_SIZE. */
        return FILE_MAP_READ | FILE_MAP_WRITE | SECTION_QUERY;
    case RIPC_PASS_RING_END:
        return EVENT_MODIFY_STATE;
    case RIPC_PASS_WAIT_END:
        return SYNCHRONIZE;
    case RIPC_PASS_PAYLOAD:
        /* Read it and check its size (shm/segment_win32.c); the sender
         * keeps the only writable handle. */
        return FILE_MAP_READ | SECTION_QUERY;
    default:
        return 0;
    }
}

/* Close, in the peer's process, the handles we gave it. */
static void revoke(ripc__pass *ps, const uint64_t *vals, int n)
{
    for (int i = 0; i < n; i++)
        if (vals[i] != 0)
            DuplicateHandle((HANDLE)ps->peer, (HANDLE)(uintptr_t)vals[i], NULL, NULL, 0, FALSE,
                            DUPLICATE_CLOSE_SOURCE);
}

int ripc__pass_give(ripc__pass *ps, const ripc__pass_obj *o, int n, uint64_t *vals)
{
    if (n < 0 || n > RIPC_PASS_MAX)
        return -EINVAL;
    if (ps->peer < 0)
        return n == 0 ? 0 : -ESRCH;
    for (int i = 0; i < n; i++) {
        HANDLE there;
        DWORD access = role_access(o[i].role);
        int rc = access ? ripc__handle_give((HANDLE)ps->peer, ripc__fd_to_handle(o[i].fd), access,
                                            &there)
                        : -EINVAL;
        if (rc < 0) {
            revoke(ps, vals, i);
            return rc;
        }
        vals[i] = (uint64_t)(uintptr_t)there;
    }
    return 0;
}

int ripc__pass_send(ripc__pass *ps, intptr_t sock, const void *buf, size_t len,
                    const ripc__pass_obj *o, const uint64_t *vals, int n)
{
    (void)o;
    int rc = ripc__sock_send_all(sock, buf, len);
    if (rc < 0)
        revoke(ps, vals, n);
    return rc;
}

/* A handle value is a positive multiple of 4 that fits 32 bits
 * (platform/win32.h). */
static int handle_value(uint64_t v)
{
    return v != 0 && v <= INT32_MAX && (v & 3) == 0;
}

int ripc__pass_take(const uint64_t *vals, int n, int *fds, int *nfds)
{
    if (n < 0 || n > RIPC_PASS_MAX || *nfds != 0)
        return -EPROTO;
    for (int i = 0; i < n; i++)
        if (!handle_value(vals[i]))
            return -EPROTO;
    for (int i = 0; i < n; i++)
        fds[i] = (int)vals[i];
    *nfds = n;
    return 0;
}

int ripc__pass_lend(ripc__pass *ps, intptr_t fd, uint64_t *val)
{
    *val = 0;
    if (!ps->give) {
        /* The worker names its own handle; the master pulls it. */
        *val = (uint64_t)fd;
        return handle_value(*val) ? 0 : -EINVAL;
    }
    ripc__pass_obj o = {.fd = fd, .role = RIPC_PASS_PAYLOAD};
    return ripc__pass_give(ps, &o, 1, val);
}

long ripc__pass_try_send_one(ripc__pass *ps, intptr_t sock, const void *buf, size_t len,
                             intptr_t fd, uint64_t val)
{
    (void)fd;
    long n = ripc__sock_try_send_fds(sock, buf, len, NULL, 0);
    /* A frame cut short ends the connection: the peer never reads the
     * value as a whole, so the handle is ours to take back. */
    if (n != (long)len && ps->give)
        revoke(ps, &val, 1);
    return n;
}

int ripc__pass_borrow(ripc__pass *ps, uint64_t val, int *fd)
{
    *fd = -1;
    if (!handle_value(val))
        return -EPROTO;
    if (!ps->give) {
        *fd = (int)val; /* the master put it into our process */
        return 0;
    }
    /* Out of the worker's process, a copy with our own rights; its handle
     * stays as it was (no DUPLICATE_CLOSE_SOURCE), nothing is written into
     * its table. A value it does not hold fails here. */
    HANDLE h = NULL;
    if (ps->peer < 0 ||
        !DuplicateHandle((HANDLE)ps->peer, (HANDLE)(uintptr_t)val, GetCurrentProcess(), &h,
                         role_access(RIPC_PASS_PAYLOAD), FALSE, 0))
        return -EPROTO;
    *fd = ripc__handle_to_fd(h);
    return 0;
}
