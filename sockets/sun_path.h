/* SPDX-License-Identifier: MIT */
/*
 * The longest unix socket path an address may hold: what parsing accepts
 * (sockets/addr.c) is what a sockaddr_un takes (sockets/sock_posix.h).
 * Windows declares the same struct sockaddr_un in <afunix.h>.
 */
#ifndef RIPC_SOCKETS_SUN_PATH_H
#define RIPC_SOCKETS_SUN_PATH_H

#include "sockets/sock.h"

#ifdef _WIN32
/* A unix: name is a pipe name there (sockets/sock.h, "On Windows"): the
 * same bound as Linux's, so an address means the same everywhere. */
#define SUN_PATH_SIZE ((size_t)RIPC_ADDR_PATH_MAX)
#else
#include <sys/un.h>

#define SUN_PATH_SIZE (sizeof(((struct sockaddr_un *)0)->sun_path))
#endif
/* Longest path we accept: sun_path must also hold the terminating NUL. */
#define SOCK_PATH_MAX (SUN_PATH_SIZE - 1)

_Static_assert(SUN_PATH_SIZE <= RIPC_ADDR_PATH_MAX, "ripc__addr.path must hold any sun_path");

#endif /* RIPC_SOCKETS_SUN_PATH_H */
