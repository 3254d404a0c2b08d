/* SPDX-License-Identifier: MIT */
/*
 * getpeereid(3): the uid and gid of the process at the other end of a
 * connected unix socket (no pid). The BSDs and macOS have it in libc;
 * glibc does not, and the portable POSIX build on Linux uses
 * ripc__getpeereid from sockets/peereid_linux.c instead. 0, or -1 with
 * errno set, as getpeereid.
 */
#ifndef RIPC_SOCKETS_PEEREID_H
#define RIPC_SOCKETS_PEEREID_H

#include <sys/types.h>
#include <unistd.h>

#if defined(RIPC_HAVE_GETPEEREID)
#define ripc__getpeereid getpeereid
#else
int ripc__getpeereid(int fd, uid_t *uid, gid_t *gid);
#endif

#endif /* RIPC_SOCKETS_PEEREID_H */
