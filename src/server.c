/* SPDX-License-Identifier: MIT */
/* The master's public face: open, run, poll, stop, close, and small
 * accessors. How it works: src/server_internal.h. */
#include <stdlib.h>

#include "src/server_internal.h"

static _Thread_local ripc_server *tls_closing; /* close() under way on this thread */

/* run() and poll() count themselves in s->users, so that close waits for
 * them; one that would begin after close has begun does not. Sequentially
 * consistent on both sides (here: add, then load closing; close: store
 * closing, then load users): either we see closing or close sees us. */
static int users_enter(ripc_server *s)
{
    /* C1: seq_cst add, then load; pairs with C2 in shut (store, then the
     * loads of wait_drained). */
    atomic_fetch_add(&s->users, 1);
    if (atomic_load(&s->closing)) {
        atomic_fetch_sub(&s->users, 1);
        return -ECANCELED;
    }
    return 0;
}

/* Run and poll end here: a close from a dispatch thread (-EDEADLK) or from
 * another thread (-ECANCELED) ended them. The caller's last touch of s. */
static int users_leave(ripc_server *s, int rc)
{
    if (atomic_load(&s->closing))
        rc = rc > 0 ? rc : -ECANCELED;
    else if (atomic_load_explicit(&s->misuse, memory_order_relaxed) &&
             atomic_exchange(&s->misuse, 0))
        rc = -EDEADLK;
    /* D1: release, pairs with D2 in wait_drained: our last touch of s
     * happens before close frees it. */
    atomic_fetch_sub_explicit(&s->users, 1, memory_order_release);
    return rc;
}

int ripc_server_poll(ripc_server *s, int timeout_ms)
{
    if (!s)
        return -EINVAL;
    int rc = users_enter(s);
    if (rc < 0)
        return rc;
    return users_leave(s, ripc__loop_poll(s, timeout_ms));
}

int ripc_server_run(ripc_server *s, unsigned threads)
{
    if (!s)
        return -EINVAL;
    int rc = users_enter(s);
    if (rc < 0)
        return rc;
    return users_leave(s, ripc__loop_run(s, threads));
}

void ripc_server_stop(ripc_server *s)
{
    if (!s)
        return;
    /* seq_cst flag, read by every loop after its poller wakes for the
     * stop handle (server_loop.c); no data rides on it. */
    atomic_store(&s->stopping, 1);
    ripc__wake_signal(&s->stop);
}

/* ---- open / close ---- */

int ripc_server_handle(ripc_server *s, uint16_t type, ripc_handler fn, void *arg)
{
    if (!s || (type >= RIPC_TYPE_RESERVED))
        return -EINVAL;
    return ripc__handler_set(s->t, type, fn, arg);
}

int ripc_server_handle_batch(ripc_server *s, uint16_t type, ripc_batch_handler fn, size_t max_batch,
                             void *arg)
{
    if (!s || (type >= RIPC_TYPE_RESERVED))
        return -EINVAL;
    ripc__handler h = {.bfn = fn, .max_batch = max_batch, .arg = arg};
    return ripc__handler_put(s->t, type, &h);
}

int ripc_server_on_peer(ripc_server *s, void (*joined)(ripc_peer *, void *),
                        void (*left)(ripc_peer *, int, void *), void *arg)
{
    if (!s)
        return -EINVAL;
    s->joined = joined;
    s->left = left;
    s->cb_arg = arg;
    return 0;
}

int ripc_server_url(ripc_server *s, char *buf, size_t len)
{
    if (!s || !buf)
        return -EINVAL;
    return ripc__addr_format(&s->addr, buf, len);
}

int ripc_server_fd(ripc_server *s)
{
    return s ? ripc__poller_fd(s->loops[0].pl) : -EINVAL;
}

unsigned ripc_server_peer_count(ripc_server *s)
{
    return s ? atomic_load(&s->npeers) : 0;
}

unsigned ripc_server_parked_count(ripc_server *s)
{
    return s ? atomic_load_explicit(&s->nparked, memory_order_relaxed) : 0;
}

uint64_t ripc_server_dropped(ripc_server *s)
{
    return s ? atomic_load_explicit(&s->dropped, memory_order_relaxed) : 0;
}

static const ripc__peer_ops peer_ops = {.try_ref = ripc__peer_try_ref, .unref = ripc__peer_unref};

int ripc_server_open_ex(ripc_server **out, const char *url, const ripc_options *opt, char *why,
                        size_t why_len)
{
    if (!out || !url)
        return -EINVAL;
    *out = NULL;
    ripc_server *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->lfd = s->spare_fd = -1;
    s->stop.rfd = s->stop.wfd = -1;
    int rc;
    if ((rc = ripc__options_resolve(&s->opt, opt, why, why_len)) < 0 ||
        (rc = ripc__addr_parse(&s->addr, url, why, why_len)) < 0) {
        free(s);
        return rc;
    }
    /* A handshake is always bounded here: a worker that stalls in it must
     * not hold its slot for good (ringipc.h, connect_timeout_ms). */
    if (s->opt.connect_timeout_ms < 0)
        s->opt.connect_timeout_ms = RIPC_DEFAULT_CONNECT_MS;
    pthread_mutex_init(&s->all_mu, NULL);
    pthread_mutex_init(&s->orphan_mu, NULL);
    ripc__sockmode_line_init(&s->tx_line);
    atomic_init(&s->next_id, 1);
    /* 3 descriptors per worker: the usual soft limit (1024) would stop us
     * after a few hundred (RIPC_NOFILE=keep leaves it as it is: docs/api.md). */
    (void)ripc__fd_limit_raise();
    static _Atomic uint64_t serials;
    s->serial = atomic_fetch_add_explicit(&serials, 1, memory_order_relaxed) + 1;
    s->st.opened_ns = ripc__wall_ns();
    s->spare_fd = ripc__fd_reserve();
    s->ev_listen = (struct evsrc){EV_LISTEN, NULL};
    s->ev_stop = (struct evsrc){EV_STOP, NULL};
    uint32_t dbcaps = ripc__doorbell_caps();
    s->worker_db_caps = (int)dbcaps;
    s->large_idle.cap = RIPC_LARGE_SERVER_KEEP;
    /* At least two frames of max_message in flight at once, however many
     * workers there are (see RIPC_RX_SERVER_BUDGET). */
    size_t two = s->opt.max_message < SIZE_MAX / 4
                     ? 2 * (size_t)s->opt.max_message + 2 * RIPC_RX_CHUNK
                     : SIZE_MAX / 2;
    s->rx_budget.cap = two > RIPC_RX_SERVER_BUDGET ? two : RIPC_RX_SERVER_BUDGET;
    s->tx_budget.cap = s->rx_budget.cap;
    /* Our own doorbell: a socketpair whose reading end only we hold; we
     * drain it with MSG_DONTWAIT, so a worker cannot make that block either
     * (see pick_worker_db). Windows has none: an event of our own, of
     * which the worker gets a handle that can only set or reset it
     * (platform/pass.h). */
    s->master_db = (dbcaps & RIPC_DB_CAP(RIPC_DB_SOCKET)) ? RIPC_DB_SOCKET : RIPC_DB_EVENT;
    if ((rc = ripc__wake_open(&s->stop)) < 0 || (rc = ripc__tables_open(&s->t)) < 0)
        goto fail;
    ripc__peers_set_ops(s->t, &peer_ops);
    s->loops = calloc(MAX_LOOPS, sizeof *s->loops); /* never moves: peers point in */
    if (!s->loops) {
        rc = -ENOMEM;
        goto fail;
    }
    s->nloops = 1;
    if ((rc = ripc__loop_init(s, &s->loops[0], 0)) < 0)
        goto fail;
    intptr_t lfd;
    if ((rc = ripc__sock_listen(&s->addr, &lfd, why, why_len)) < 0)
        goto fail;
    s->lfd = (int)lfd;
    if ((rc = ripc__loop_watch(&s->loops[0], s->lfd, &s->ev_listen)) < 0)
        goto fail;
    *out = s;
    return 0;
fail:
    ripc_server_close(s);
    return rc;
}

int ripc_server_open(ripc_server **s, const char *url, const ripc_options *opt)
{
    return ripc_server_open_ex(s, url, opt, NULL, 0);
}

/* close: end every wait on a worker. Shutting a control socket ends a
 * socket-mode sender's wait for the socket and a sender's poll of the
 * doorbell (it watches the socket too), and tells the worker: its calls
 * see the end of the stream, as after a BYE (one asleep on its futex word
 * is woken to look, as in ripc__peer_drop). space_cv waiters look at `closing`
 * when woken (see wait_space), and so do senders in line for the send
 * budget. Under all_mu, a linked peer's socket and
 * segment are still there: ripc__peer_drop unlinks p before it closes them.
 * space_cv is woken under the send lock, which its waiter holds from its
 * look at `closing` until it sleeps, so that no wake-up is lost to a wait
 * about to begin (it would cost a slice of 10 ms). Holders of the lock let
 * go of it soon once the socket is shut (their waits watch it); a bound all
 * the same, after which the broadcast goes without the lock. */
#define CANCEL_LOCK_MS 20

static void cancel_waits(ripc_server *s)
{
    pthread_mutex_lock(&s->all_mu);
    for (struct ripc_peer *p = s->all; p; p = p->all_next) {
        ripc__sock_shutdown(p->sock, RIPC_SOCK_SHUT_RDWR);
        if (ripc__peer_joined(atomic_load(&p->state)) && p->ch.peer_bell.word)
            ripc__doorbell_ring_word(&p->ch.peer_bell);
        int locked = ripc__mutex_lock_until(&p->send_mu, ripc__deadline(CANCEL_LOCK_MS)) == 0;
        pthread_cond_broadcast(&p->space_cv);
        if (locked)
            pthread_mutex_unlock(&p->send_mu);
    }
    pthread_mutex_unlock(&s->all_mu);
    ripc__sockmode_budget_wake(s); /* senders in line for the send budget */
}

/* close: wait for a count to drain. Naps rather than a condition variable:
 * the last one out must not touch s after it counts down, and the calls
 * counted were all woken, so this is short. */
static void wait_drained(_Atomic unsigned *n)
{
    /* D2: seq_cst load, pairs with D1 (users_leave) and D3 (ripc__peer_free) */
    while (atomic_load(n) != 0)
        ripc__nap_ns(200000);
}

/* Close's first half, all of shutdown: every call under way ends, every
 * later one returns -ECANCELED. */
static void shut(ripc_server *s)
{
    /* C2 / Q1: seq_cst; pairs with C1 in users_enter and with Q2, the load
     * inside ripc__peer_get / ripc__peer_all's read-side section. */
    atomic_store(&s->closing, 1);
    /* Every call blocked now ends at once, not after the grace period
     * below (with lookups under way, urcu-bp waits for it in naps of 10 ms). */
    ripc_server_stop(s);
    cancel_waits(s);
    /* A sender that looked at closing before we set it is inside its
     * lookup: wait until it has its peer (peer_structs counts it) or is
     * gone, then reach the wait it may have begun since. Every lookup from
     * here on sees closing. */
    ripc__tables_quiesce();
    cancel_waits(s);
}

void ripc_server_shutdown(ripc_server *s)
{
    if (s)
        shut(s);
}

void ripc_server_close(ripc_server *s)
{
    if (!s || tls_closing == s) /* from a callback that this close makes (left) */
        return;
    /* A forked child's copy of its parent's server: everything in it that
     * could be released is the parent's too (a stop would stop the
     * parent's loops, a shutdown end its workers' connections, the unlink
     * take its socket file, and the wait for run() threads that did not
     * come along never end). Left as it is (include/ringipc/ringipc.h,
     * "Fork"). */
    if (s->t && ripc__tables_inherited(s->t))
        return;
    if (ripc__tls_loop && ripc__tls_loop->s == s) {
        /* From a handler or callback of s: freeing s would pull the loop
         * out from under the dispatch that called us. */
        atomic_store(&s->misuse, 1);
        ripc_server_stop(s);
        return;
    }
    tls_closing = s;
    shut(s);
    wait_drained(&s->users); /* run() and poll() have returned */
    /* No loop runs now: drop every peer (left gets -ECANCELED). */
    for (;;) {
        pthread_mutex_lock(&s->all_mu);
        struct ripc_peer *p = s->all;
        pthread_mutex_unlock(&s->all_mu);
        if (!p)
            break;
        struct loop *L = p->loop;
        if (L == NULL && s->loops)
            ripc__poller_del(s->loops[0].pl, p->sock);
        ripc__peer_drop(L, p, -ECANCELED);
    }
    /* Loans the application still holds must not hold close up. */
    ripc__loan_end_all(s);
    if (s->t) {
        ripc__tables_close(s->t); /* waits for the deferred frees */
        s->t = NULL;
    }
    /* Senders still holding a peer (they were woken) touch s until they let
     * go of it. */
    wait_drained(&s->peer_structs);
    if (s->lfd >= 0) {
        ripc__sock_unlink(&s->addr, s->lfd); /* before close: see sock.h */
        ripc__sock_close(s->lfd);
    }
    for (unsigned i = 0; s->loops && i < s->nloops; i++)
        ripc__loop_fini(&s->loops[i]);
    free(s->loops);
    ripc__wake_close(&s->stop);
    if (s->spare_fd >= 0)
        ripc__fd_close(s->spare_fd);
    pthread_mutex_destroy(&s->all_mu);
    pthread_mutex_destroy(&s->orphan_mu);
    ripc__sockmode_line_fini(&s->tx_line);
    free(s);
    tls_closing = NULL;
}
