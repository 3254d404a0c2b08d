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
#include "src/tables_impl.h"

#define HANDLER_BUCKETS 256u
#define PEER_BUCKETS    1024u

struct hnode {
    struct hnode *next;
    struct ripc__handler_entry e;
};

struct pnode {
    struct pnode *next;
    uint32_t id;
    void *peer;
};

struct ripc__tables {
    struct ripc__tables_base base; /* first (src/tables_impl.h) */
    struct hnode *handlers[HANDLER_BUCKETS];
    struct pnode *peers[PEER_BUCKETS];
};

static SRWLOCK lock = SRWLOCK_INIT;
static _Thread_local unsigned depth; /* this thread's nested sections */

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
    struct hnode **pp = &t->handlers[ripc__tables_hash(type) % HANDLER_BUCKETS];
    while (*pp && (*pp)->e.type != type)
        pp = &(*pp)->next;
    return pp;
}

int ripc__handler_replace(ripc__tables *t, uint16_t type, const ripc__handler *hd)
{
    struct hnode *h = NULL, *old;
    if (hd != NULL) {
        h = malloc(sizeof *h);
        if (!h)
            return -ENOMEM;
        h->e.type = type;
        h->e.h = *hd;
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
    return 0;
}

const struct ripc__handler_entry *ripc__handler_find(ripc__tables *t, uint16_t type)
{
    struct hnode *h = *handler_slot(t, type);
    return h ? &h->e : NULL;
}

static struct pnode **peer_slot(ripc__tables *t, uint32_t id)
{
    struct pnode **pp = &t->peers[ripc__tables_hash(id) % PEER_BUCKETS];
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
        /* X1: release, pairs with X2 in ripc__peers_removed (tables_common.c); under the
         * exclusive lock, so a section that reads the old count began
         * before the removal and has ended before the unref below. */
        atomic_fetch_add_explicit(&t->base.removed, 1, memory_order_release);
    }
    write_unlock();
    if (p) {
        t->base.ops.unref(p->peer);
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
    if (p && t->base.ops.try_ref(p->peer)) {
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
            if (t->base.ops.try_ref(p->peer))
                v[n++] = p->peer;
        }
    }
out:
    ripc__tables_read_unlock();
    *out = v;
    return (int)n;
}
