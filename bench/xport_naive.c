/* SPDX-License-Identifier: MIT */
/*
 * The naive ring row (naive_ring.h): the ceiling the ringipc one-way rows
 * are measured against. Two rings in one anonymous shared mapping, client ->
 * server for the messages and server -> client for the echo of the end
 * marker; the server reads every byte through the same sink as every row.
 * The rings are sized like ringipc's (xport_ripc.c): at least 1 MiB and four
 * times the message.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "naive_ring.h"
#include "xport.h"

struct naive_xend {
    struct naive_end in, out;
    int holding; /* the last record recv returned is still in the ring */
};

static size_t naive_cap(size_t size)
{
    size_t cap = (size_t)1 << 20;
    while (cap < 4 * (size + 16))
        cap <<= 1;
    return cap;
}

static int naive_setup(struct xp_run *r)
{
    return xp_map_shared(r, 2 * naive_ring_bytes(naive_cap(r->size)));
}

static int naive_open(struct xp_run *r, int side, void **end)
{
    struct naive_xend *e = calloc(1, sizeof *e);
    if (e == NULL)
        return -ENOMEM;
    size_t cap = naive_cap(r->size);
    unsigned char *cs = r->mem, *sc = cs + naive_ring_bytes(cap);
    naive_attach(&e->in, side == XP_SERVER ? cs : sc, cap);
    naive_attach(&e->out, side == XP_SERVER ? sc : cs, cap);
    *end = e;
    return 0;
}

static int naive_send(void *end, const void *buf, size_t len)
{
    struct naive_xend *e = end;
    int rc;
    while ((rc = naive_push(&e->out, buf, len)) == -EAGAIN)
        ;
    return rc;
}

static int naive_recv(void *end, const void **buf, size_t *len)
{
    struct naive_xend *e = end;
    if (e->holding)
        naive_release(&e->in);
    while (naive_peek(&e->in, buf, len) == -EAGAIN)
        ;
    e->holding = 1;
    return 0;
}

static void naive_close(void *end)
{
    free(end);
}

const struct xport xp_naive = {
    .name = "naive ring (bound)",
    .flags = XP_ONEWAY | XP_SPINS,
    .setup = naive_setup,
    .open = naive_open,
    .send = naive_send,
    .recv = naive_recv,
    .close = naive_close,
    .teardown = xp_unmap,
};
