/* SPDX-License-Identifier: MIT */
/*
 * Internal entry points that hand an already-connected stream socket to a
 * server or a client, as if it had been accepted or connected: for the fuzz
 * targets (tests/fuzz/), which drive a real server or client through one end
 * of a socketpair. Not exported from the shared library.
 */
#ifndef RIPC_SRC_ADOPT_H
#define RIPC_SRC_ADOPT_H

#include "ringipc/ringipc.h"

/*
 * Start a handshake on fd as if the listener had accepted it: the server
 * owns fd from now on, also on failure. Call from the thread that polls s
 * (ripc_server_poll), never while ripc_server_run runs. 0, -EINVAL, -ENOMEM.
 */
int ripc__server_adopt_fd(ripc_server *s, int fd);

/*
 * ripc_client_open_ex over fd, an already-connected socket to a master (it
 * may be blocking): HELLO, then WELCOME or REJECT, within
 * opt->connect_timeout_ms. The client owns fd from now on, also on failure.
 * Same returns as ripc_client_open_ex.
 */
int ripc__client_open_fd(ripc_client **out, int fd, const ripc_options *opt, char *why,
                         size_t why_len);

#endif
