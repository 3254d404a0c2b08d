/* SPDX-License-Identifier: MIT */
/*
 * Private to the tables files: what the two backends (tables_urcu.c,
 * tables_win32.c) and the backend-independent calls (tables_common.c)
 * share. The core includes src/tables.h only.
 */
#ifndef RIPC_SRC_TABLES_IMPL_H
#define RIPC_SRC_TABLES_IMPL_H

#include <stdint.h>

#include "src/tables.h"

/* The start of every backend's struct ripc__tables (its first member,
 * named `base`), the part tables_common.c reads and writes. */
struct ripc__tables_base {
    ripc__peer_ops ops;
    _Atomic uint64_t gen;     /* handler changes (G1/G2 in tables_common.c) */
    _Atomic uint64_t removed; /* peers removed (ripc__peers_removed) */
};

/* A handler as a backend stores it (inside its node). */
struct ripc__handler_entry {
    uint16_t type;
    ripc__handler h;
};

/* Backend: the handler of this type, or NULL. Inside a read-side section
 * (ripc__tables_read_lock); the entry stays valid until it ends. */
const struct ripc__handler_entry *ripc__handler_find(ripc__tables *t, uint16_t type);
/* Backend: put a copy of *h in place of the type's handler (h NULL:
 * remove it). Outside a read-side section; 0 or -ENOMEM. tables_common.c's
 * ripc__handler_put then moves the generation on. */
int ripc__handler_replace(ripc__tables *t, uint16_t type, const ripc__handler *h);

/* The bucket hash both backends use for ids and types. */
static inline uint32_t ripc__tables_hash(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

#endif /* RIPC_SRC_TABLES_IMPL_H */
