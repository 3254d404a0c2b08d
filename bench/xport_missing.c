/* SPDX-License-Identifier: MIT */
/* Rows for the optional libraries that were not found at build time. */
#include <stdio.h>

#include "xport.h"

#if !defined(RIPC_BENCH_HAVE_ZMQ) || !defined(RIPC_BENCH_HAVE_NNG)
static const char *not_built(const struct xp_run *r, char *why, size_t n)
{
    snprintf(why, n, "skipped: %s", (const char *)r->arg);
    return why;
}
#define NOT_BUILT(nm, text)                                                                        \
    {                                                                                              \
        .name = nm, .flags = XP_RTT | XP_ONEWAY | XP_NOT_BUILT, .arg = text, .na = not_built       \
    }
#endif

#ifndef RIPC_BENCH_HAVE_ZMQ
const struct xport xp_zmq =
    NOT_BUILT("ZeroMQ ipc://", "libzmq not installed (apt-get install libzmq3-dev)");
#endif
#ifndef RIPC_BENCH_HAVE_NNG
const struct xport xp_nng =
    NOT_BUILT("NNG ipc://", "libnng not installed (apt-get install libnng-dev)");
#endif
