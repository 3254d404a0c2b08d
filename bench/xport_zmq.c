/* SPDX-License-Identifier: MIT */
/*
 * ZeroMQ over ipc://: one ZMQ_PAIR socket each side, both directions (round
 * trip and one-way alike). Each child makes its own context after fork.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <zmq.h>

#include "xport.h"

struct zmq_end {
    void *ctx, *sock;
    zmq_msg_t msg;
};

static int zmq_xopen(struct xp_run *r, int side, void **end)
{
    struct zmq_end *e = calloc(1, sizeof *e);
    int linger = 1000, rc;
    if (e == NULL)
        return -ENOMEM;
    e->ctx = zmq_ctx_new();
    e->sock = e->ctx ? zmq_socket(e->ctx, ZMQ_PAIR) : NULL;
    if (e->sock == NULL) {
        rc = -zmq_errno();
    } else {
        zmq_setsockopt(e->sock, ZMQ_LINGER, &linger, sizeof linger);
        rc = side == XP_SERVER ? zmq_bind(e->sock, r->path[1]) : zmq_connect(e->sock, r->path[1]);
        rc = rc < 0 ? -zmq_errno() : 0;
    }
    if (rc < 0) {
        xp_fail(r->pg, "zmq %s: %s", r->path[1], zmq_strerror(-rc));
        if (e->sock)
            zmq_close(e->sock);
        if (e->ctx)
            zmq_ctx_term(e->ctx);
        free(e);
        return rc;
    }
    zmq_msg_init(&e->msg);
    *end = e;
    return 0;
}

static int zmq_xsend(void *end, const void *buf, size_t len)
{
    struct zmq_end *e = end;
    return zmq_send(e->sock, buf, len, 0) == (int)len ? 0 : -zmq_errno();
}

static int zmq_xrecv(void *end, const void **buf, size_t *len)
{
    struct zmq_end *e = end;
    if (zmq_msg_recv(&e->msg, e->sock, 0) < 0)
        return -zmq_errno();
    *buf = zmq_msg_data(&e->msg);
    *len = zmq_msg_size(&e->msg);
    return 0;
}

static void zmq_xclose(void *end)
{
    struct zmq_end *e = end;
    zmq_msg_close(&e->msg);
    zmq_close(e->sock);
    zmq_ctx_term(e->ctx);
    free(e);
}

const struct xport xp_zmq = {
    .name = "ZeroMQ ipc://",
    .flags = XP_RTT | XP_ONEWAY,
    .setup = xp_ipc_setup,
    .open = zmq_xopen,
    .send = zmq_xsend,
    .recv = zmq_xrecv,
    .close = zmq_xclose,
    .teardown = xp_ipc_teardown,
};
