/* SPDX-License-Identifier: MIT */
/*
 * The server's tables over liburcu (bullet-proof flavour: any thread may read
 * without registering, which a library cannot ask its callers to do).
 * _LGPL_SOURCE is defined in this file only: it inlines the read-side fast
 * path; liburcu itself is linked dynamically.
 */
#define _LGPL_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

/* liburcu 0.13 keeps its urcu_bp_reader records (128-byte aligned type) at a
 * 32-byte offset inside its registry chunks, so the inlined read-side code
 * below reads a misaligned pointer: UBSan's alignment check aborts the first
 * rcu_read_lock. Harmless on the CPUs we build for; exempt that one check, in
 * liburcu's inline functions only. (GCC has no such pragma: a GCC UBSan build
 * needs -fno-sanitize=alignment for this file.) */
#if defined(__clang__)
#pragma clang attribute push(__attribute__((no_sanitize("alignment"))), apply_to = function)
#endif
#include <urcu-bp.h>
#include <urcu/rculfhash.h>
#if defined(__clang__)
#pragma clang attribute pop
#endif

#include "shm/fault_guard.h"
#include "sockets/closer.h"
#include "src/platform.h"
#include "src/tables_impl.h"
#include "src/tsan.h"

/*
 * Removed nodes are freed after a grace period on the library's own
 * reclaimer thread, which is held between batches across fork(); TSan is
 * told liburcu's ordering (T1/T2 on nodes, U1/U2 on rcu_hb). See
 * docs/design.md, Threads and ownership: "The reclaimer thread", "Fork",
 * "ThreadSanitizer".
 */
static char rcu_hb;

/* Leave a read-side section. */
static void read_unlock(void)
{
    RIPC_TSAN_RELEASE(&rcu_hb); /* U1: pairs with U2 after each synchronize */
    urcu_bp_read_unlock();
}

struct gone { /* a removed node waiting for its grace period */
    struct gone *next;
    void (*free)(struct gone *);
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t work; /* nodes queued, a fork done, or time to stop */
    pthread_cond_t done; /* a batch was freed */
    struct gone *head;
    uint64_t queued, freed; /* nodes handed over / freed (counts, for waits) */
    int started, busy;      /* the thread runs; it is inside a batch */
    unsigned gen;           /* which thread is the reclaimer (one that is not stops) */
    unsigned booting;       /* threads started that have not reached their loop */
    unsigned fork_waiting;  /* forks waiting for the batch under way */
    unsigned tables;        /* tables open (by this process) */
    unsigned forks;         /* forks that made this process (changed in the child only) */
    pthread_t th;
} R = {.mu = PTHREAD_MUTEX_INITIALIZER,
       .work = PTHREAD_COND_INITIALIZER,
       .done = PTHREAD_COND_INITIALIZER};

/* Grace period, then free. Called without the read lock or R.mu. */
static void free_batch(struct gone *g)
{
    urcu_bp_synchronize_rcu();
    RIPC_TSAN_ACQUIRE(&rcu_hb); /* U2: pairs with U1 in read_unlock */
    while (g) {
        struct gone *next = g->next;
        g->free(g);
        g = next;
    }
}

/* The reclaimer thread: frees batches until it is stopped (R.started
 * cleared) or replaced (R.gen moved on, in a forked child). */
static void *reclaimer(void *arg)
{
    unsigned gen = (unsigned)(uintptr_t)arg;
    pthread_mutex_lock(&R.mu);
    R.booting--; /* past its start-up: see fork_prepare */
    pthread_cond_broadcast(&R.done);
    for (;;) {
        while (R.started && R.gen == gen && (!R.head || R.fork_waiting))
            pthread_cond_wait(&R.work, &R.mu);
        if (!R.started || R.gen != gen)
            break; /* stopped (the last table closed) */
        struct gone *batch = R.head;
        uint64_t upto = R.queued;
        R.head = NULL;
        R.busy = 1;
        pthread_mutex_unlock(&R.mu);
        free_batch(batch);
        pthread_mutex_lock(&R.mu);
        R.busy = 0;
        R.freed = upto;
        pthread_cond_broadcast(&R.done);
    }
    pthread_mutex_unlock(&R.mu);
    return NULL;
}

/* Start the reclaimer (R.mu held); R.started says whether it runs. Its
 * signal mask: docs/design.md, "The reclaimer thread". */
static void reclaimer_start(void)
{
    sigset_t old;
    ripc__sigmask_own_thread(&old);
    R.gen++;
    R.started = pthread_create(&R.th, NULL, reclaimer, (void *)(uintptr_t)R.gen) == 0;
    if (R.started)
        R.booting++;
    ripc__sigmask_restore(&old);
}

/* Hand a removed node over (any thread, outside a read-side section: it
 * may wait for a grace period). Without a reclaimer (it could not be
 * started) the caller frees it after the grace period itself. */
static void retire(struct gone *g, void (*fn)(struct gone *))
{
    g->free = fn;
    g->next = NULL;
    pthread_mutex_lock(&R.mu);
    if (!R.started)
        reclaimer_start();
    if (!R.started) {
        pthread_mutex_unlock(&R.mu);
        free_batch(g);
        return;
    }
    g->next = R.head;
    R.head = g;
    R.queued++;
    pthread_cond_signal(&R.work);
    pthread_mutex_unlock(&R.mu);
}

/* Wait until every node handed over so far is freed (takes R.mu; never
 * from the reclaimer). */
static void reclaim_wait(void)
{
    pthread_mutex_lock(&R.mu);
    uint64_t upto = R.queued;
    while (R.freed < upto)
        pthread_cond_wait(&R.done, &R.mu);
    pthread_mutex_unlock(&R.mu);
}

/* pthread_atfork handlers: prepare returns with R.mu held and the
 * reclaimer between batches; parent and child let go of it. A reclaimer
 * just created is waited for until it reaches its loop: the start of a
 * thread may allocate (a sanitizer's runtime does, under its allocator's
 * lock), and a child forked then would find that lock held forever. */
static void fork_prepare(void)
{
    pthread_mutex_lock(&R.mu);
    R.fork_waiting++; /* no new batch: the reclaimer waits on R.work */
    while (R.busy || R.booting)
        pthread_cond_wait(&R.done, &R.mu);
    R.fork_waiting--;
    urcu_bp_before_fork();
}

static void fork_parent(void)
{
    urcu_bp_after_fork_parent();
    pthread_cond_broadcast(&R.work); /* it may have work it left for the fork */
    pthread_mutex_unlock(&R.mu);
}

static void fork_child(void)
{
    urcu_bp_after_fork_child();
    R.started = 0;
    R.booting = 0;
    R.head = NULL;
    R.freed = R.queued;
    R.tables = 0; /* the parent's are not ours to close (ripc__tables_inherited) */
    R.forks++;
    pthread_cond_init(&R.work, NULL); /* no waiter came along */
    pthread_cond_init(&R.done, NULL);
    pthread_mutex_unlock(&R.mu);
}

static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
static int fork_rc;

static void fork_register(void)
{
    /* The closers' and the fault guard's handlers first: prepare handlers
     * run in the reverse order, so ours holds the reclaimer between batches
     * before theirs take their locks, which a batch may need (a peer freed
     * here closes its socket and unmaps its segments). */
    ripc__fd_fork_register();
    ripc__fault_guard_fork_register();
    fork_rc = -pthread_atfork(fork_prepare, fork_parent, fork_child);
}

struct hnode {
    struct cds_lfht_node node;
    struct gone gone;
    struct ripc__handler_entry e;
};

struct pnode {
    struct cds_lfht_node node;
    struct gone gone;
    uint32_t id;
    void *peer;
    ripc__peer_ops ops;
};

struct ripc__tables {
    struct ripc__tables_base base; /* first (src/tables_impl.h) */
    struct cds_lfht *handlers;
    struct cds_lfht *peers;
    unsigned forks; /* R.forks when opened: a child's copy of its parent's differs */
};

/* cds_lfht match callbacks, inside a read-side section. */
static int match_type(struct cds_lfht_node *n, const void *key)
{
    RIPC_TSAN_ACQUIRE(n); /* T2: pairs with T1 where the node was added */
    return caa_container_of(n, struct hnode, node)->e.type == *(const uint16_t *)key;
}

static int match_id(struct cds_lfht_node *n, const void *key)
{
    RIPC_TSAN_ACQUIRE(n); /* T2 */
    return caa_container_of(n, struct pnode, node)->id == *(const uint32_t *)key;
}

/* A table is gone: the last one stops the reclaimer, and waits for it to
 * be gone (it may still be inside pthread_cond_wait's return: the library
 * may be unloaded next). A removal meanwhile starts a new one. */
static void tables_gone(void)
{
    pthread_t th;
    int join = 0;
    pthread_mutex_lock(&R.mu);
    if (--R.tables == 0 && R.started) {
        R.started = 0;
        th = R.th;
        join = 1;
        pthread_cond_broadcast(&R.work);
    }
    pthread_mutex_unlock(&R.mu);
    if (join)
        pthread_join(th, NULL);
}

int ripc__tables_inherited(const ripc__tables *t)
{
    pthread_mutex_lock(&R.mu);
    int inherited = t->forks != R.forks;
    pthread_mutex_unlock(&R.mu);
    return inherited;
}

void ripc__tables_quiesce(void)
{
    urcu_bp_synchronize_rcu();
    RIPC_TSAN_ACQUIRE(&rcu_hb); /* U2 */
}

int ripc__tables_open(ripc__tables **out)
{
    pthread_once(&fork_once, fork_register);
    if (fork_rc < 0)
        return fork_rc;
    ripc__tables *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    pthread_mutex_lock(&R.mu);
    R.tables++;
    t->forks = R.forks;
    pthread_mutex_unlock(&R.mu);
    /* Fixed sizes, no automatic resize: resizing runs on a liburcu worker
     * thread, with the fork hazards of the call_rcu thread (design.md).
     * 256 / 1024 buckets keep chains short for a few thousand workers. */
    t->handlers = cds_lfht_new_flavor(256, 256, 256, 0, &urcu_bp_flavor, NULL);
    t->peers = cds_lfht_new_flavor(1024, 1024, 1024, 0, &urcu_bp_flavor, NULL);
    if (!t->handlers || !t->peers) {
        if (t->handlers)
            cds_lfht_destroy(t->handlers, NULL);
        if (t->peers)
            cds_lfht_destroy(t->peers, NULL);
        free(t);
        tables_gone();
        return -ENOMEM;
    }
    *out = t;
    return 0;
}

static void hnode_free(struct gone *g)
{
    free(caa_container_of(g, struct hnode, gone));
}

static void pnode_free(struct gone *g)
{
    struct pnode *p = caa_container_of(g, struct pnode, gone);
    p->ops.unref(p->peer);
    free(p);
}

void ripc__tables_close(ripc__tables *t)
{
    if (!t || ripc__tables_inherited(t))
        return; /* a parent's: its nodes, its count (R.tables) */
    struct cds_lfht_iter it;
    struct cds_lfht_node *n;
    struct gone *gone = NULL;
    urcu_bp_read_lock();
    /* cds_lfht_for_each, not _for_each_entry: the latter applies
     * container_of to the NULL that ends the walk (UB, and UBSan says so). */
    cds_lfht_for_each(t->handlers, &it, n)
    {
        struct hnode *h = caa_container_of(n, struct hnode, node);
        if (cds_lfht_del(t->handlers, n) == 0) {
            h->gone.next = gone;
            gone = &h->gone;
        }
    }
    read_unlock();
    while (gone) { /* handed over outside the read-side section */
        struct gone *g = gone;
        gone = g->next;
        retire(g, hnode_free);
    }
    reclaim_wait(); /* the peers' table references too: they may use the server */
    cds_lfht_destroy(t->handlers, NULL);
    cds_lfht_destroy(t->peers, NULL);
    free(t);
    tables_gone();
}

int ripc__handler_replace(ripc__tables *t, uint16_t type, const ripc__handler *hd)
{
    struct cds_lfht_node *old;
    urcu_bp_read_lock();
    if (hd == NULL) {
        struct cds_lfht_iter it;
        cds_lfht_lookup(t->handlers, ripc__tables_hash(type), match_type, &type, &it);
        old = cds_lfht_iter_get_node(&it);
        if (old && cds_lfht_del(t->handlers, old) != 0)
            old = NULL;
    } else {
        struct hnode *h = malloc(sizeof *h);
        if (!h) {
            read_unlock();
            return -ENOMEM;
        }
        cds_lfht_node_init(&h->node);
        h->e.type = type;
        h->e.h = *hd;
        RIPC_TSAN_RELEASE(&h->node); /* T1: its contents, before it is seen */
        old =
            cds_lfht_add_replace(t->handlers, ripc__tables_hash(type), match_type, &type, &h->node);
    }
    read_unlock();
    if (old)
        retire(&caa_container_of(old, struct hnode, node)->gone, hnode_free);
    return 0;
}

const struct ripc__handler_entry *ripc__handler_find(ripc__tables *t, uint16_t type)
{
    struct cds_lfht_iter it;
    cds_lfht_lookup(t->handlers, ripc__tables_hash(type), match_type, &type, &it);
    struct cds_lfht_node *n = cds_lfht_iter_get_node(&it);
    return n ? &caa_container_of(n, struct hnode, node)->e : NULL;
}

int ripc__peer_insert(ripc__tables *t, uint32_t id, void *peer)
{
    struct pnode *p = malloc(sizeof *p);
    if (!p)
        return -ENOMEM;
    cds_lfht_node_init(&p->node);
    p->id = id;
    p->peer = peer;
    p->ops = t->base.ops;
    RIPC_TSAN_RELEASE(&p->node); /* T1: its contents and the peer's, before they are seen */
    urcu_bp_read_lock();
    struct cds_lfht_node *n =
        cds_lfht_add_unique(t->peers, ripc__tables_hash(id), match_id, &id, &p->node);
    read_unlock();
    if (n != &p->node) {
        free(p);
        return -EEXIST;
    }
    return 0;
}

void ripc__peer_remove(ripc__tables *t, uint32_t id)
{
    struct cds_lfht_iter it;
    urcu_bp_read_lock();
    cds_lfht_lookup(t->peers, ripc__tables_hash(id), match_id, &id, &it);
    struct cds_lfht_node *n = cds_lfht_iter_get_node(&it);
    if (n && cds_lfht_del(t->peers, n) != 0)
        n = NULL; /* someone else removed it */
    read_unlock();
    if (n) {
        /* X1: release, before the grace period that ends with the unref;
         * pairs with X2 in ripc__peers_removed (tables_common.c). A section that began after
         * that grace period began sees the new count, so a cache that still
         * reads the old one is inside a section the grace period waits for. */
        atomic_fetch_add_explicit(&t->base.removed, 1, memory_order_release);
        retire(&caa_container_of(n, struct pnode, node)->gone, pnode_free);
    }
}

int ripc__peer_get(ripc__tables *t, uint32_t id, const _Atomic int *stop, void **out)
{
    struct cds_lfht_iter it;
    int rc = -ENOENT;
    urcu_bp_read_lock();
    /* Q2: seq_cst, inside the section; pairs with Q1, the caller's store of
     * *stop before ripc__tables_quiesce (server.c, shut). */
    if (atomic_load(stop)) {
        read_unlock();
        return -ECANCELED;
    }
    cds_lfht_lookup(t->peers, ripc__tables_hash(id), match_id, &id, &it);
    struct cds_lfht_node *n = cds_lfht_iter_get_node(&it);
    if (n) {
        struct pnode *p = caa_container_of(n, struct pnode, node);
        if (p->ops.try_ref(p->peer)) {
            *out = p->peer;
            rc = 0;
        }
    }
    read_unlock();
    return rc;
}

void ripc__tables_read_lock(void)
{
    urcu_bp_read_lock();
}

void ripc__tables_read_unlock(void)
{
    read_unlock();
}

void *ripc__peer_find(ripc__tables *t, uint32_t id)
{
    struct cds_lfht_iter it;
    cds_lfht_lookup(t->peers, ripc__tables_hash(id), match_id, &id, &it);
    struct cds_lfht_node *n = cds_lfht_iter_get_node(&it);
    return n ? caa_container_of(n, struct pnode, node)->peer : NULL;
}

int ripc__peer_all(ripc__tables *t, const _Atomic int *stop, void ***out)
{
    size_t cap = 16, n = 0;
    void **v = malloc(cap * sizeof *v);
    if (!v)
        return -ENOMEM;
    struct cds_lfht_iter it;
    struct cds_lfht_node *nd;
    urcu_bp_read_lock();
    if (atomic_load(stop)) { /* Q2: see ripc__peer_get */
        read_unlock();
        free(v);
        return -ECANCELED;
    }
    cds_lfht_for_each(t->peers, &it, nd) /* not _entry: see ripc__tables_close */
    {
        RIPC_TSAN_ACQUIRE(nd); /* T2 */
        struct pnode *p = caa_container_of(nd, struct pnode, node);
        if (n == cap) {
            void **nv = realloc(v, 2 * cap * sizeof *v);
            if (!nv)
                break; /* reach who we can */
            v = nv;
            cap *= 2;
        }
        if (p->ops.try_ref(p->peer))
            v[n++] = p->peer;
    }
    read_unlock();
    *out = v;
    return (int)n;
}
