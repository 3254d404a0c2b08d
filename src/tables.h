/* SPDX-License-Identifier: MIT */
/*
 * The server's two lookup tables, read on every message and changed when
 * workers come and go: id -> peer and type -> handler, as liburcu
 * lock-free hash tables (tables_urcu.c, the only file built with
 * _LGPL_SOURCE).
 *
 * Context: every function may be called from any thread. Lookups return a
 * reference (peers) or a copy (handlers), so nothing is used after the
 * read-side critical section ends. Removed entries are freed after a grace
 * period on the library's reclaimer thread, which is held between batches
 * across fork(): a forked child may open tables of its own (tables_urcu.c,
 * "Fork").
 */
#ifndef RIPC_SRC_TABLES_H
#define RIPC_SRC_TABLES_H

#include <stdint.h>

#include "ringipc/ringipc.h"

typedef struct ripc__tables ripc__tables;

int ripc__tables_open(ripc__tables **t);
/* Frees the tables; the peer table must be empty. Waits until every entry
 * removed so far is freed (peers' references dropped). Tables a forked
 * child inherited (ripc__tables_inherited) are left as they are there. */
void ripc__tables_close(ripc__tables *t);
/* Were t opened before a fork() that made this process (t is a forked
 * child's copy of its parent's)? Any thread. */
int ripc__tables_inherited(const ripc__tables *t);
/* Wait until every lookup under way (ripc__peer_get, ripc__peer_all) has
 * ended. Their `stop` flag is read inside the lookup: set it, then call
 * this, and every lookup either saw it (-ECANCELED), or has returned with
 * its references taken, or found nothing; none reads the tables or the
 * flag any more. */
void ripc__tables_quiesce(void);

/* Handlers: set (fn NULL removes); lookup copies fn/arg out. Returns 1 when
 * found. The generation counter changes on every set (for caches). */
int ripc__handler_set(ripc__tables *t, uint16_t type, ripc_handler fn, void *arg);
int ripc__handler_get(ripc__tables *t, uint16_t type, ripc_handler *fn, void **arg);
uint64_t ripc__handler_gen(ripc__tables *t);

/* Peers. The table holds one reference to each peer it contains; the
 * server supplies how references are taken and dropped. */
typedef struct ripc__peer_ops {
    int (*try_ref)(void *peer); /* take a ref unless the count is 0; 1 = taken */
    void (*unref)(void *peer);  /* drop a ref (frees at 0) */
} ripc__peer_ops;
void ripc__peers_set_ops(ripc__tables *t, const ripc__peer_ops *ops);
/* Insert (takes over one reference). -EEXIST if the id is in use. */
int ripc__peer_insert(ripc__tables *t, uint32_t id, void *peer);
/* Remove; the table's reference is dropped after a grace period, on the
 * reclaimer thread. */
void ripc__peer_remove(ripc__tables *t, uint32_t id);
/* Find by id and take a reference: 0 (*out set), -ENOENT, or -ECANCELED
 * when *stop is set (see ripc__tables_quiesce). */
int ripc__peer_get(ripc__tables *t, uint32_t id, const _Atomic int *stop, void **out);
/* Every peer, each with a reference taken: *out is malloc'd (free it and
 * unref each). Returns the count, -ENOMEM, or -ECANCELED when *stop is
 * set (nothing to free then). */
int ripc__peer_all(ripc__tables *t, const _Atomic int *stop, void ***out);

#endif
