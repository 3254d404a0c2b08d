/* SPDX-License-Identifier: MIT */
/*
 * Credentials of the process at the other end of a unix socket (contract:
 * sockets/sock.h).
 */
#include "sockets/peereid.h"
#include "sockets/sock_posix.h"

#include <unistd.h>

/* ---- peer ---- */

int ripc__sock_peer_cred(intptr_t fd, uint32_t *uid, uint32_t *gid, int32_t *pid)
{
    int fam = sock_family((int)fd);
    if (fam < 0)
        return fam;
    if (fam != AF_UNIX)
        return -ENOTSUP;
#if defined(RIPC_HAVE_SO_PEERCRED) && defined(__linux__)
    struct ucred uc;
    socklen_t ul = sizeof uc;
    if (getsockopt((int)fd, SOL_SOCKET, SO_PEERCRED, &uc, &ul) != 0)
        return -errno;
    if (uid != NULL)
        *uid = (uint32_t)uc.uid;
    if (gid != NULL)
        *gid = (uint32_t)uc.gid;
    if (pid != NULL)
        *pid = (int32_t)uc.pid;
#else
    uid_t u;
    gid_t g;
    if (ripc__getpeereid((int)fd, &u, &g) != 0)
        return -errno;
    if (uid != NULL)
        *uid = (uint32_t)u;
    if (gid != NULL)
        *gid = (uint32_t)g;
    if (pid != NULL)
        *pid = -1; /* getpeereid does not tell */
#endif
    return 0;
}
