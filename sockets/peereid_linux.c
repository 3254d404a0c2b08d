/* SPDX-License-Identifier: MIT */
/*
 * The portable POSIX build's stand-in for getpeereid on Linux (contract:
 * sockets/peereid.h), where glibc has none: SO_PEERCRED with the pid
 * dropped, so that the build answers as a BSD or macOS would. The default
 * Linux build reads SO_PEERCRED itself, pid included (cred_posix.c).
 */
#include <errno.h>
#include <sys/socket.h>

#include "sockets/peereid.h"

int ripc__getpeereid(int fd, uid_t *uid, gid_t *gid)
{
    struct ucred uc;
    socklen_t len = sizeof uc;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) != 0)
        return -1;
    *uid = uc.uid;
    *gid = uc.gid;
    return 0;
}
