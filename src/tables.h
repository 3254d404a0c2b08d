/* SPDX-License-Identifier: MIT */
/*
 * The server's two lookup tables, read on every message and changed when
 * workers come and go: id -> peer and type -> handler, as liburcu
 * lock-free hash tables (tables_urcu.c, the only file built with
 * _LGPL_SOURCE); on Windows, where there is no liburcu, hash tables under
 * an SRWLOCK (tables_win32.c: the grace period is the writer's exclusive
 * acquisition, and a removed peer's reference is dropped by the remover).
 *
 * Context: every function may be called from any thread, with no lock of
 * the library's held (removals and close may wait for a grace period, and
 * the peers' unref runs on the reclaimer), and the changes (set, insert,
 * remove, close, quiesce) never inside a read-side section. Lookups return a reference
 * (peers) or a copy (handlers), so nothing is used after the read-side
 * critical section ends. Removed entries are freed after a grace period on
 * the library's reclaimer thread (docs/design.md, Threads and ownership).
 * The calls that do not depend on the backend are in tables_common.c
 * (over src/tables_impl.h).
 */
#ifndef RIPC_SRC_TABLES_H
#define RIPC_SRC_TABLES_H

#include <stdint.h>

#include "ringipc/ringipc.h"

typedef struct ripc__tables ripc__tables;

/* 0 with *t, -ENOMEM, or the -errno of registering the fork handlers. */
int ripc__tables_open(ripc__tables **t);
/* Frees the tables; the peer table must be empty. Waits until every entry
 * removed so far is freed (peers' references dropped). Tables a forked
 * child inherited (ripc__tables_inherited) are left as they are there.
 * NULL is a no-op. */
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

/* A type's handler: a single one (fn) or a batch one (bfn, up to
 * max_batch messages a call), never both. */
typedef struct ripc__handler {
    ripc_handler fn;
    ripc_batch_handler bfn;
    size_t max_batch;
    void *arg;
} ripc__handler;

/* Handlers: put replaces the type's handler with *h (h NULL, or fn and bfn
 * both NULL, removes it; 0 or -ENOMEM); lookup copies it out and returns 1
 * when found, else 0. set and get are put and lookup for single handlers
 * (get finds a batch handler too, with *fn NULL). The generation changes
 * after every put (release), so a cache that reads it (acquire) and then
 * looks up sees the change (G1/G2 in tables_common.c). */
int ripc__handler_put(ripc__tables *t, uint16_t type, const ripc__handler *h);
int ripc__handler_lookup(ripc__tables *t, uint16_t type, ripc__handler *out);
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
/* Insert (takes over one reference on success). 0, -EEXIST if the id is in
 * use, or -ENOMEM. */
int ripc__peer_insert(ripc__tables *t, uint32_t id, void *peer);
/* Remove; the table's reference is dropped after a grace period, on the
 * reclaimer thread. */
void ripc__peer_remove(ripc__tables *t, uint32_t id);
/* Find by id and take a reference (the caller's to unref): 0 (*out set),
 * -ENOENT (absent, or its count already 0), or -ECANCELED when *stop is set
 * (see ripc__tables_quiesce). */
int ripc__peer_get(ripc__tables *t, uint32_t id, const _Atomic int *stop, void **out);
/* Every peer, each with a reference taken: *out is malloc'd (free it and
 * unref each). Returns the count (short of all when the array could not
 * grow), -ENOMEM, or -ECANCELED when *stop is set (nothing to free then). */
int ripc__peer_all(ripc__tables *t, const _Atomic int *stop, void ***out);

/*
 * The send fast path (server_send.c): a peer used inside one read-side
 * critical section without a reference of its own. The table's reference
 * is dropped only after a grace period, so a peer found in the table (or
 * cached and checked against the removal count, below) stays allocated
 * until ripc__tables_read_unlock. Nothing in the section may block, wait
 * for a grace period or take a lock that a grace period waits behind.
 */
void ripc__tables_read_lock(void);
void ripc__tables_read_unlock(void);
/* Inside the section: the peer with this id, or NULL; no reference taken. */
void *ripc__peer_find(ripc__tables *t, uint32_t id);
/* Removals so far. Inside the section: a peer found while the count read
 * c (acquire) stays allocated in every later section that reads c again
 * (it was not removed before that section began, so its grace period has
 * not ended). X1 in each backend's ripc__peer_remove, X2 in
 * tables_common.c. */
uint64_t ripc__peers_removed(ripc__tables *t);

#endif
