/* SPDX-License-Identifier: MIT */
/*
 * The shared-memory flags, on every platform (the mapping: xp_map_shared).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "xport.h"

static inline void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* ---- bare shared-memory flag: the floor for two spinning cores ----
 *
 * Two slots, client->server and server->client, each a counter on its own
 * line and a payload buffer. Send copies the payload and publishes the next
 * count (release); receive spins until the count moves (acquire, pairs with
 * that release) and reads the payload in place. One message in flight, so
 * round trips only. */

struct flag_slot {
    _Alignas(128) _Atomic uint64_t count;
    _Alignas(128) unsigned char data[];
};

struct flag_end {
    struct flag_slot *in, *out;
    uint64_t local; /* bare flag: the message, rebuilt from the counter */
    uint64_t seen, posted;
    size_t size;
};

static size_t slot_bytes(size_t size)
{
    return (sizeof(struct flag_slot) + size + 127) & ~(size_t)127;
}

static int setup_flag(struct xp_run *r)
{
    return xp_map_shared(r, 2 * slot_bytes(r->size));
}

static int flag_open(struct xp_run *r, int side, void **end)
{
    struct flag_end *e = calloc(1, sizeof *e);
    if (e == NULL)
        return -ENOMEM;
    struct flag_slot *cs = r->mem;
    struct flag_slot *sc = (struct flag_slot *)((unsigned char *)r->mem + slot_bytes(r->size));
    e->in = side == XP_SERVER ? cs : sc;
    e->out = side == XP_SERVER ? sc : cs;
    e->size = r->size;
    *end = e;
    return 0;
}

static int flag_send(void *end, const void *buf, size_t len)
{
    struct flag_end *e = end;
    memcpy(e->out->data, buf, len);
    atomic_store_explicit(&e->out->count, ++e->posted, memory_order_release);
    return 0;
}

static int flag_recv(void *end, const void **buf, size_t *len)
{
    struct flag_end *e = end;
    /* Acquire: pairs with the release in flag_send(); the payload is there. */
    while (atomic_load_explicit(&e->in->count, memory_order_acquire) == e->seen)
        relax();
    e->seen++;
    *buf = e->in->data;
    *len = e->size;
    return 0;
}

static void flag_close(void *end)
{
    free(end);
}

/* The bare flag: the counter is the message (sequence number + 1), one
 * cache line each way, nothing else: the floor of the targets. */
static int bare_send(void *end, const void *buf, size_t len)
{
    struct flag_end *e = end;
    uint64_t v;
    (void)len;
    memcpy(&v, buf, sizeof v);
    atomic_store_explicit(&e->out->count, v + 1, memory_order_release);
    return 0;
}

static int bare_recv(void *end, const void **buf, size_t *len)
{
    struct flag_end *e = end;
    uint64_t v;
    while ((v = atomic_load_explicit(&e->in->count, memory_order_acquire)) == e->seen)
        relax();
    e->seen = v;
    v--;
    e->local = v;
    *buf = &e->local;
    *len = sizeof v;
    return 0;
}

const struct xport xp_flag_bare = {
    .name = "shm flag (floor)",
    .flags = XP_RTT | XP_NOPAYLOAD | XP_SPINS,
    .setup = setup_flag,
    .open = flag_open,
    .send = bare_send,
    .recv = bare_recv,
    .close = flag_close,
    .teardown = xp_unmap,
};

const struct xport xp_flag = {
    .name = "shm flag + payload",
    .flags = XP_RTT | XP_SPINS,
    .setup = setup_flag,
    .open = flag_open,
    .send = flag_send,
    .recv = flag_recv,
    .close = flag_close,
    .teardown = xp_unmap,
};
