/* SPDX-License-Identifier: MIT */
/*
 * The SRWLOCK tables (src/tables_win32.c): handlers, peers and their
 * references, the stop flag, nested read-side sections while a writer
 * waits, and threads looking up while another inserts and removes (every
 * peer freed once, none used after).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "platform/win32.h"
#include "src/tables.h"
#include "windows/win_support.h"

#define MAGIC 0x5eed5eedu

struct fake {
    _Atomic int refs;
    _Atomic unsigned magic; /* MAGIC while allocated; 0 once freed */
};

static _Atomic int frees;

static int fake_try_ref(void *peer)
{
    struct fake *f = peer;
    int n = atomic_load(&f->refs);
    while (n > 0)
        if (atomic_compare_exchange_weak(&f->refs, &n, n + 1))
            return 1;
    return 0;
}

static void fake_unref(void *peer)
{
    struct fake *f = peer;
    WCHECK_EQ(atomic_load(&f->magic), MAGIC);
    if (atomic_fetch_sub(&f->refs, 1) == 1) {
        atomic_store(&f->magic, 0);
        atomic_fetch_add(&frees, 1);
        /* Kept allocated (and checked): a use after this is seen by magic. */
    }
}

static const ripc__peer_ops ops = {fake_try_ref, fake_unref};

static struct fake *fake_new(void)
{
    struct fake *f = calloc(1, sizeof *f);
    WCHECK(f != NULL);
    atomic_store(&f->refs, 1); /* the table's */
    atomic_store(&f->magic, MAGIC);
    return f;
}

static void h1(ripc_peer *p, const ripc_msg *m, void *a)
{
    (void)a, (void)p, (void)m;
}

static void h2(ripc_peer *p, const ripc_msg *m, void *a)
{
    (void)a, (void)p, (void)m;
}

static void handlers(void)
{
    ripc__tables *t;
    WCHECK_EQ(ripc__tables_open(&t), 0);
    WCHECK(!ripc__tables_inherited(t));
    ripc_handler fn;
    void *arg;
    uint64_t g0 = ripc__handler_gen(t);
    WCHECK_EQ(ripc__handler_get(t, 7, &fn, &arg), 0);
    WCHECK_EQ(ripc__handler_set(t, 7, h1, &frees), 0);
    WCHECK(ripc__handler_gen(t) > g0);
    WCHECK_EQ(ripc__handler_get(t, 7, &fn, &arg), 1);
    WCHECK(fn == h1 && arg == &frees);
    /* Types in one bucket or not, replaced, removed. */
    for (unsigned ty = 0; ty < 2000; ty += 3)
        WCHECK_EQ(ripc__handler_set(t, (uint16_t)ty, h2, NULL), 0);
    WCHECK_EQ(ripc__handler_get(t, 7, &fn, &arg), 1);
    WCHECK(fn == h1);
    WCHECK_EQ(ripc__handler_get(t, 999, &fn, &arg), 1);
    WCHECK(fn == h2);
    WCHECK_EQ(ripc__handler_set(t, 999, h1, NULL), 0);
    WCHECK_EQ(ripc__handler_get(t, 999, &fn, &arg), 1);
    WCHECK(fn == h1);
    WCHECK_EQ(ripc__handler_set(t, 999, NULL, NULL), 0);
    WCHECK_EQ(ripc__handler_get(t, 999, &fn, &arg), 0);
    WCHECK_EQ(ripc__handler_set(t, 999, NULL, NULL), 0); /* absent: fine */
    WCHECK_EQ(ripc__handler_get(t, 996, &fn, &arg), 1);
    ripc__tables_close(t); /* frees the handlers still set */
}

static void peers(void)
{
    ripc__tables *t;
    WCHECK_EQ(ripc__tables_open(&t), 0);
    ripc__peers_set_ops(t, &ops);
    _Atomic int stop = 0;
    atomic_store(&frees, 0);
    struct fake *a = fake_new(), *b = fake_new();
    WCHECK_EQ(ripc__peer_insert(t, 1, a), 0);
    WCHECK_EQ(ripc__peer_insert(t, 1 + 1024, b), 0); /* same bucket */
    WCHECK_EQ(ripc__peer_insert(t, 1, b), -EEXIST);
    void *got;
    WCHECK_EQ(ripc__peer_get(t, 1, &stop, &got), 0);
    WCHECK(got == a && atomic_load(&a->refs) == 2);
    WCHECK_EQ(ripc__peer_get(t, 2, &stop, &got), -ENOENT);
    /* Inside a section: found without a reference, nested lookups fine. */
    ripc__tables_read_lock();
    uint64_t removed = ripc__peers_removed(t);
    WCHECK(ripc__peer_find(t, 1025) == b);
    WCHECK(ripc__peer_find(t, 3) == NULL);
    void *got2;
    WCHECK_EQ(ripc__peer_get(t, 1025, &stop, &got2), 0);
    ripc__tables_read_unlock();
    fake_unref(got2);
    void **all;
    WCHECK_EQ(ripc__peer_all(t, &stop, &all), 2);
    for (int i = 0; i < 2; i++)
        fake_unref(all[i]);
    free(all);
    /* Removal drops the table's reference; ours keeps a alive. */
    ripc__peer_remove(t, 1);
    WCHECK(ripc__peers_removed(t) == removed + 1);
    WCHECK_EQ(atomic_load(&a->refs), 1);
    WCHECK_EQ(ripc__peer_get(t, 1, &stop, &got2), -ENOENT);
    fake_unref(a);
    WCHECK_EQ(atomic_load(&frees), 1);
    ripc__peer_remove(t, 1); /* absent: nothing */
    WCHECK(ripc__peers_removed(t) == removed + 1);
    /* A peer whose count fell to 0 is not handed out. */
    atomic_store(&b->refs, 0);
    WCHECK_EQ(ripc__peer_get(t, 1025, &stop, &got2), -ENOENT);
    atomic_store(&b->refs, 1);
    atomic_store(&stop, 1);
    WCHECK_EQ(ripc__peer_get(t, 1025, &stop, &got2), -ECANCELED);
    WCHECK_EQ(ripc__peer_all(t, &stop, &all), -ECANCELED);
    ripc__tables_quiesce();
    ripc__peer_remove(t, 1025);
    WCHECK_EQ(atomic_load(&frees), 2);
    ripc__tables_close(t);
    free(a);
    free(b);
}

struct writer {
    ripc__tables *t;
    struct fake *f;
    _Atomic int started, done;
};

static void *insert_one(void *arg)
{
    struct writer *w = arg;
    atomic_store(&w->started, 1);
    WCHECK_EQ(ripc__peer_insert(w->t, 77, w->f), 0);
    atomic_store(&w->done, 1);
    return NULL;
}

/* A writer queued on the lock while this thread is inside a section must
 * not deadlock a nested lookup, and must wait for the section to end. */
static void nested_with_writer(void)
{
    ripc__tables *t;
    WCHECK_EQ(ripc__tables_open(&t), 0);
    ripc__peers_set_ops(t, &ops);
    _Atomic int stop = 0;
    struct writer w = {.t = t, .f = fake_new()};
    ripc__tables_read_lock();
    pthread_t th;
    WCHECK_EQ(pthread_create(&th, NULL, insert_one, &w), 0);
    while (!atomic_load(&w.started))
        SwitchToThread();
    /* Give it time to queue on the lock: it is only more likely to be
     * there, the checks below hold either way. */
    Sleep(50);
    void *got;
    for (int i = 0; i < 100; i++)
        WCHECK_EQ(ripc__peer_get(t, 77, &stop, &got), -ENOENT);
    WCHECK_EQ(atomic_load(&w.done), 0); /* held off by the section */
    ripc__tables_read_unlock();
    pthread_join(th, NULL);
    WCHECK_EQ(ripc__peer_get(t, 77, &stop, &got), 0);
    fake_unref(got);
    atomic_store(&frees, 0);
    ripc__peer_remove(t, 77);
    WCHECK_EQ(atomic_load(&frees), 1);
    ripc__tables_close(t);
    free(w.f);
}

#define IDS    64
#define ROUNDS 20000

struct stress {
    ripc__tables *t;
    _Atomic int stop_readers;
    _Atomic long lookups;
};

static void *reader(void *arg)
{
    struct stress *s = arg;
    _Atomic int stop = 0;
    unsigned x = (unsigned)(uintptr_t)&stop;
    while (!atomic_load(&s->stop_readers)) {
        x = x * 1103515245u + 12345u;
        uint32_t id = (x >> 8) % IDS;
        void *got;
        if (ripc__peer_get(s->t, id, &stop, &got) == 0) {
            WCHECK_EQ(atomic_load(&((struct fake *)got)->magic), MAGIC);
            fake_unref(got);
        }
        ripc__tables_read_lock();
        struct fake *f = ripc__peer_find(s->t, id);
        if (f) {
            /* Still alive after a while inside the section: a removal
             * waits for the section to end before it drops the ref. */
            for (int k = 0; k < 4; k++) {
                WCHECK_EQ(atomic_load(&f->magic), MAGIC);
                SwitchToThread();
            }
        }
        ripc__tables_read_unlock();
        atomic_fetch_add(&s->lookups, 1);
    }
    return NULL;
}

static void threads(void)
{
    struct stress s = {0};
    WCHECK_EQ(ripc__tables_open(&s.t), 0);
    ripc__peers_set_ops(s.t, &ops);
    atomic_store(&frees, 0);
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        WCHECK_EQ(pthread_create(&th[i], NULL, reader, &s), 0);
    static struct fake *made[ROUNDS];
    int live[IDS] = {0};
    long seen = 0;
    for (int r = 0; r < ROUNDS; r++) {
        /* The readers must run while the table changes: every 1,000
         * rounds the writer waits until they have made progress since
         * the last such point (a slow thread start under wine otherwise
         * lets the writer finish alone). */
        if (r % 1000 == 0) {
            while (atomic_load(&s.lookups) <= seen)
                SwitchToThread();
            seen = atomic_load(&s.lookups);
        }
        uint32_t id = (uint32_t)(r * 7) % IDS;
        if (live[id]) {
            ripc__peer_remove(s.t, id);
            live[id] = 0;
        } else {
            made[r] = fake_new();
            WCHECK_EQ(ripc__peer_insert(s.t, id, made[r]), 0);
            live[id] = 1;
        }
    }
    for (uint32_t id = 0; id < IDS; id++)
        if (live[id])
            ripc__peer_remove(s.t, id);
    atomic_store(&s.stop_readers, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    int n = 0;
    for (int r = 0; r < ROUNDS; r++) {
        if (made[r]) {
            WCHECK_EQ(atomic_load(&made[r]->refs), 0);
            WCHECK_EQ(atomic_load(&made[r]->magic), 0);
            free(made[r]);
            n++;
        }
    }
    WCHECK_EQ(atomic_load(&frees), n); /* each freed exactly once */
    ripc__tables_close(s.t);
}

int main(void)
{
    win_case("tables_handlers", handlers);
    win_case("tables_peers", peers);
    win_case("tables_nested_with_writer", nested_with_writer);
    win_case("tables_threads", threads);
    return 0;
}
