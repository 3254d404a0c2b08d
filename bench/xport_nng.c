/* SPDX-License-Identifier: MIT */
/*
 * NNG over ipc://: one pair1 socket each side, both directions (round trip
 * and one-way alike). nng starts its threads on first use, in each child;
 * the driver never touches it (they would not survive its next fork).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <nng/nng.h>
#include <nng/protocol/pair1/pair.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "xport.h"

#define QUEUE_DEPTH 128 /* messages, each way */

struct nng_end {
    nng_socket sock;
    void *msg; /* the last message received, ours to free */
    size_t msg_len;
};

static int nng_xopen(struct xp_run *r, int side, void **end)
{
    struct nng_end *e = calloc(1, sizeof *e);
    int rc;
    if (e == NULL)
        return -ENOMEM;
    rc = nng_pair1_open(&e->sock);
    /* Queue messages like the other transports do (the default, no buffer,
     * hands each message over in lock step with the reader). */
    if (rc == 0)
        rc = nng_socket_set_int(e->sock, NNG_OPT_SENDBUF, QUEUE_DEPTH);
    if (rc == 0)
        rc = nng_socket_set_int(e->sock, NNG_OPT_RECVBUF, QUEUE_DEPTH);
    if (rc == 0)
        rc = side == XP_SERVER ? nng_listen(e->sock, r->path[1], NULL, 0)
                               : nng_dial(e->sock, r->path[1], NULL, 0);
    if (rc != 0) {
        xp_fail(r->pg, "nng %s: %s", r->path[1], nng_strerror(rc));
        nng_close(e->sock);
        free(e);
        return -EPROTO;
    }
    *end = e;
    return 0;
}

static int nng_xsend(void *end, const void *buf, size_t len)
{
    struct nng_end *e = end;
    return nng_send(e->sock, (void *)buf, len, 0) == 0 ? 0 : -EPIPE;
}

static int nng_xrecv(void *end, const void **buf, size_t *len)
{
    struct nng_end *e = end;
    if (e->msg)
        nng_free(e->msg, e->msg_len);
    e->msg = NULL;
    if (nng_recv(e->sock, &e->msg, &e->msg_len, NNG_FLAG_ALLOC) != 0)
        return -EPIPE;
    *buf = e->msg;
    *len = e->msg_len;
    return 0;
}

static void nng_xclose(void *end)
{
    struct nng_end *e = end;
    if (e->msg)
        nng_free(e->msg, e->msg_len);
    nng_close(e->sock);
    free(e);
}

const struct xport xp_nng = {
    .name = "NNG ipc://",
    .flags = XP_RTT | XP_ONEWAY,
    .setup = xp_ipc_setup,
    .open = nng_xopen,
    .send = nng_xsend,
    .recv = nng_xrecv,
    .close = nng_xclose,
    .teardown = xp_ipc_teardown,
};
