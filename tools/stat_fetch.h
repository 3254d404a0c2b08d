/* SPDX-License-Identifier: MIT */
/*
 * ringipc-stat's side of the monitor protocol (docs/protocol.md, Monitors):
 * connect to a master's control socket, send a monitor HELLO, read its
 * SNAPSHOT, page by page, into one snapshot of all its workers.
 */
#ifndef RIPC_TOOLS_STAT_FETCH_H
#define RIPC_TOOLS_STAT_FETCH_H

#include <stddef.h>

#include "src/proto.h"

typedef struct stat_snap {
    ripc__snap_head head;   /* the first page's: the server's counters */
    ripc__snap_peer *peers; /* every page's workers, by id (malloc'd) */
    size_t n;
} stat_snap;

/* The snapshot of the master at url into *out (stat_snap_free it), every
 * page, each connection bounded by timeout_ms. token: for tcp:// (NULL:
 * RIPC_TOKEN). 0, or -errno with why saying what went wrong in words a
 * user can act on: no master there, refused (uid, token), a master
 * without monitors (its protocol version), no answer in time, a malformed
 * answer. */
int stat_fetch(const char *url, const char *token, int timeout_ms, stat_snap *out, char *why,
               size_t why_len);
void stat_snap_free(stat_snap *s);

#endif
