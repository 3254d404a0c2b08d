/* SPDX-License-Identifier: MIT */
/*
 * The server's tables (contract: src/tables.h), the calls that do not
 * depend on the backend: the handler generation, the peer ops, the removal
 * count, and handler lookups and changes over the backend's
 * ripc__handler_find / ripc__handler_replace (src/tables_impl.h).
 */
#include <stdatomic.h>

#include "src/tables_impl.h"

static struct ripc__tables_base *base(ripc__tables *t)
{
    return (struct ripc__tables_base *)(void *)t; /* its first member */
}

int ripc__handler_put(ripc__tables *t, uint16_t type, const ripc__handler *h)
{
    if (h && !h->fn && !h->bfn)
        h = NULL;
    int rc = ripc__handler_replace(t, type, h);
    if (rc < 0)
        return rc;
    /* G1: release, pairs with G2 in ripc__handler_gen: a loop that sees the
     * new generation looks the handler up again and finds this change. */
    atomic_fetch_add_explicit(&base(t)->gen, 1, memory_order_release);
    return 0;
}

int ripc__handler_lookup(ripc__tables *t, uint16_t type, ripc__handler *out)
{
    int found = 0;
    ripc__tables_read_lock();
    const struct ripc__handler_entry *e = ripc__handler_find(t, type);
    if (e) {
        *out = e->h;
        found = 1;
    }
    ripc__tables_read_unlock();
    return found;
}

int ripc__handler_set(ripc__tables *t, uint16_t type, ripc_handler fn, void *arg)
{
    ripc__handler h = {.fn = fn, .arg = arg};
    return ripc__handler_put(t, type, &h);
}

int ripc__handler_get(ripc__tables *t, uint16_t type, ripc_handler *fn, void **arg)
{
    ripc__handler h;
    if (!ripc__handler_lookup(t, type, &h))
        return 0;
    *fn = h.fn;
    *arg = h.arg;
    return 1;
}

uint64_t ripc__handler_gen(ripc__tables *t)
{
    return atomic_load_explicit(&base(t)->gen, memory_order_acquire); /* G2: pairs with G1 */
}

void ripc__peers_set_ops(ripc__tables *t, const ripc__peer_ops *ops)
{
    base(t)->ops = *ops;
}

uint64_t ripc__peers_removed(ripc__tables *t)
{
    /* X2: pairs with X1 in each backend's ripc__peer_remove. */
    return atomic_load_explicit(&base(t)->removed, memory_order_acquire);
}
