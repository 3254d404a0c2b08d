/* SPDX-License-Identifier: MIT */
/*
 * The server's tables on Windows (contract: src/tables.h), where there is
 * no liburcu: chained hash tables of fixed size under one reader/writer
 * lock (SRWLOCK) per process. Lookups and read-side sections hold it
 * shared, changes hold it exclusive.
 *
 * The grace period is the exclusive acquisition itself: a writer gets the
 * lock only once every section under way has ended, so a node it unlinks
 * is in no reader's hands once it lets go, and is freed (a peer's table
 * reference dropped) right there, on the writer's thread, with no lock
 * held. No reclaimer thread, then, and nothing to do around fork (there
 * is none). The price against liburcu: readers write the lock word, and a
 * change waits for the sections under way (each short: nothing in one
 * blocks, tables.h).
 *
 * Sections nest on one thread (a lookup inside ripc__tables_read_lock):
 * an SRWLOCK taken shared twice by one thread can deadlock when a writer
 * queues in between, so only the outermost section takes it (a per-thread
 * depth). A change from inside a section on the same thread would wait for
 * itself: the core makes none (tables.h), and one would be a bug of the
 * library, stopped with a message rather than a hang.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "platform/win32.h"
#include "src/tables.h"

#define HANDLER_BUCKETS 256u
#define PEER_BUCKETS    1024u

struct hnode {
    struct hnode *next;
    uint16_t type;
    ripc_handler fn;
    void *arg;
};

struct pnode {
    struct pnode *next;
    uint32_t id;
    void *peer;
};

struct ripc__tables {
    struct hnode *handlers[HANDLER_BUCKETS];
    struct pnode *peers[PEER_BUCKETS];
    ripc__peer_ops ops;
    _Atomic uint64_t gen;
    _Atomic uint64_t removed; /* peers removed (ripc__peers_removed) */
};

static SRWLOCK lock = SRWLOCK_INIT;
static _Thread_local unsigned depth; /* this thread's nested sections */

static unsigned hash32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

static void write_lock(void)
{
    if (depth != 0) {
        fprintf(stderr, "ringipc: tables changed inside a read-side section (a library bug)\n");
        abort();
    }
    AcquireSRWLockExclusive(&lock);
}

static void write_unlock(void)
{
    ReleaseSRWLockExclusive(&lock);
}

void ripc__tables_read_lock(void)
{
    if (depth++ == 0)
        AcquireSRWLockShared(&lock);
}

void ripc__tables_read_unlock(void)
{
    if (--depth == 0)
        ReleaseSRWLockShared(&lock);
}

int ripc__tables_open(ripc__tables **out)
{
    ripc__tables *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    *out = t;
    return 0;
}

/* No fork on Windows: tables are always the opener's. */
int ripc__tables_inherited(const ripc__tables *t)
{
    (void)t;
    return 0;
}

void ripc__tables_quiesce(void)
{
    /* Every section under way has ended once the lock is ours. */
    write_lock();
    write_unlock();
}

void ripc__tables_close(ripc__tables *t)
{
    if (!t)
        return;
    struct hnode *gone = NULL;
    write_lock();
    for (unsigned b = 0; b < HANDLER_BUCKETS; b++) {
        while (t->handlers[b]) {
            struct hnode *h = t->handlers[b];
            t->handlers[b] = h->next;
            h->next = gone;
            gone = h;
        }
    }
    write_unlock();
    while (gone) {
        struct hnode *h = gone;
        gone = h->next;
        free(h);
    }
    free(t);
}

static struct hnode **handler_slot(ripc__tables *t, uint16_t type)
{
    struct hnode **pp = &t->handlers[hash32(type) % HANDLER_BUCKETS];
    while (*pp && (*pp)->type != type)
        pp = &(*pp)->next;
    return pp;
}

int ripc__handler_set(ripc__tables *t, uint16_t type, ripc_handler fn, void *arg)
{
    struct hnode *h = NULL, *old;
    if (fn != NULL) {
        h = malloc(sizeof *h);
        if (!h)
            return -ENOMEM;
        h->type = type;
        h->fn = fn;
        h->arg = arg;
    }
    write_lock();
    struct hnode **pp = handler_slot(t, type);
    old = *pp;
    if (h) {
        h->next = old ? old->next : NULL;
        *pp = h;
    } else if (old) {
        *pp = old->next;
    }
    write_unlock();
    free(old);
    /* G1: release, pairs with G2 in ripc__handler_gen: a loop that sees the
     * new generation looks the handler up again and finds this change. */
    atomic_fetch_add_explicit(&t->gen, 1, memory_order_release);
    return 0;
}

int ripc__handler_get(ripc__tables *t, uint16_t type, ripc_handler *fn, void **arg)
{
    int found = 0;
    ripc__tables_read_lock();
    struct hnode *h = *handler_slot(t, type);
    if (h) {
        *fn = h->fn;
        *arg = h->arg;
        found = 1;
    }
    ripc__tables_read_unlock();
    return found;
}

uint64_t ripc__handler_gen(ripc__tables *t)
{
    return atomic_load_explicit(&t->gen, memory_order_acquire); /* G2: pairs with G1 */
}

void ripc__peers_set_ops(ripc__tables *t, const ripc__peer_ops *ops)
{
    t->ops = *ops;
}

static struct pnode **peer_slot(ripc__tables *t, uint32_t id)
{
    struct pnode **pp = &t->peers[hash32(id) % PEER_BUCKETS];
    while (*pp && (*pp)->id != id)
        pp = &(*pp)->next;
    return pp;
}

int ripc__peer_insert(ripc__tables *t, uint32_t id, void *peer)
{
    struct pnode *p = malloc(sizeof *p);
    if (!p)
        return -ENOMEM;
    p->id = id;
    p->peer = peer;
    p->next = NULL;
    write_lock();
    struct pnode **pp = peer_slot(t, id);
    int rc = *pp ? -EEXIST : 0;
    if (rc == 0)
        *pp = p;
    write_unlock();
    if (rc < 0)
        free(p);
    return rc;
}

void ripc__peer_remove(ripc__tables *t, uint32_t id)
{
    write_lock();
    struct pnode **pp = peer_slot(t, id);
    struct pnode *p = *pp;
    if (p) {
        *pp = p->next;
        /* X1: release, pairs with X2 in ripc__peers_removed; under the
         * exclusive lock, so a section that reads the old count began
         * before the removal and has ended before the unref below. */
        atomic_fetch_add_explicit(&t->removed, 1, memory_order_release);
    }
    write_unlock();
    if (p) {
        t->ops.unref(p->peer);
        free(p);
    }
}

int ripc__peer_get(ripc__tables *t, uint32_t id, const _Atomic int *stop, void **out)
{
    int rc = -ENOENT;
    ripc__tables_read_lock();
    /* Q2: seq_cst, inside the section; pairs with Q1, the caller's store of
     * *stop before ripc__tables_quiesce (server.c, shut). */
    if (atomic_load(stop)) {
        ripc__tables_read_unlock();
        return -ECANCELED;
    }
    struct pnode *p = *peer_slot(t, id);
    if (p && t->ops.try_ref(p->peer)) {
        *out = p->peer;
        rc = 0;
    }
    ripc__tables_read_unlock();
    return rc;
}

void *ripc__peer_find(ripc__tables *t, uint32_t id)
{
    struct pnode *p = *peer_slot(t, id);
    return p ? p->peer : NULL;
}

uint64_t ripc__peers_removed(ripc__tables *t)
{
    return atomic_load_explicit(&t->removed, memory_order_acquire); /* X2: pairs with X1 */
}

int ripc__peer_all(ripc__tables *t, const _Atomic int *stop, void ***out)
{
    size_t cap = 16, n = 0;
    void **v = malloc(cap * sizeof *v);
    if (!v)
        return -ENOMEM;
    ripc__tables_read_lock();
    if (atomic_load(stop)) { /* Q2: see ripc__peer_get */
        ripc__tables_read_unlock();
        free(v);
        return -ECANCELED;
    }
    for (unsigned b = 0; b < PEER_BUCKETS; b++) {
        for (struct pnode *p = t->peers[b]; p; p = p->next) {
            if (n == cap) {
                void **nv = realloc(v, 2 * cap * sizeof *v);
                if (!nv)
                    goto out; /* reach who we can */
                v = nv;
                cap *= 2;
            }
            if (t->ops.try_ref(p->peer))
                v[n++] = p->peer;
        }
    }
out:
    ripc__tables_read_unlock();
    *out = v;
    return (int)n;
}
