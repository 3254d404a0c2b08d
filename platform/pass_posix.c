/* SPDX-License-Identifier: MIT */
/* Handing objects to the peer on POSIX (platform/pass.h): descriptors
 * attached to the frame (SCM_RIGHTS); no process to open, no bytes to add. */
#include "platform/pass.h"

#include <errno.h>

#include "sockets/sock.h"

int ripc__pass_open(ripc__pass *ps, int32_t pid, int give)
{
    (void)pid;
    ps->peer = -1;
    ps->give = give;
    return 0;
}

void ripc__pass_close(ripc__pass *ps)
{
    ps->peer = -1;
}

intptr_t ripc__pass_watch(const ripc__pass *ps, intptr_t sock)
{
    (void)ps;
    return sock;
}

int ripc__pass_give(ripc__pass *ps, const ripc__pass_obj *o, int n, uint64_t *vals)
{
    (void)ps;
    (void)o;
    if (n < 0 || n > RIPC_PASS_MAX)
        return -EINVAL;
    for (int i = 0; i < n; i++)
        vals[i] = 0;
    return 0;
}

int ripc__pass_send(ripc__pass *ps, intptr_t sock, const void *buf, size_t len,
                    const ripc__pass_obj *o, const uint64_t *vals, int n)
{
    (void)ps;
    (void)vals;
    if (n < 0 || n > RIPC_PASS_MAX)
        return -EINVAL;
    int fds[RIPC_PASS_MAX];
    for (int i = 0; i < n; i++)
        fds[i] = (int)o[i].fd;
    return ripc__sock_send_fds(sock, buf, len, fds, n);
}

int ripc__pass_take(const uint64_t *vals, int n, int *fds, int *nfds)
{
    (void)vals;
    (void)fds;
    return n >= 0 && n <= RIPC_PASS_MAX && *nfds == n ? 0 : -EPROTO;
}

int ripc__pass_lend(ripc__pass *ps, intptr_t fd, uint64_t *val)
{
    (void)ps;
    (void)fd;
    *val = 0;
    return 0;
}

long ripc__pass_try_send_one(ripc__pass *ps, intptr_t sock, const void *buf, size_t len,
                             intptr_t fd, uint64_t val)
{
    (void)ps;
    (void)val;
    int one = (int)fd;
    return ripc__sock_try_send_fds(sock, buf, len, &one, 1);
}

int ripc__pass_borrow(ripc__pass *ps, uint64_t val, int *fd)
{
    (void)ps;
    (void)val;
    *fd = -1;
    return -EPROTO;
}
