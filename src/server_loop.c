/* SPDX-License-Identifier: MIT */
/*
 * The loops. Each is one dispatch thread's world (src/server_internal.h):
 * it consumes its peers' inbound rings (or their frames, in socket mode),
 * calls the handlers, spins or sleeps in its poller per the wait strategy, and
 * handles what wakes it: the listener and handshakes (loop 0), control
 * sockets, doorbells, hand-overs. poll() runs rounds of loop 0; run()
 * starts loops 1..n-1 on threads of their own and runs loop 0 itself. Which
 * of a loop's peers a pass looks at (the active set, parking): server_park.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/server_internal.h"

_Thread_local struct loop *ripc__tls_loop __attribute__((tls_model("local-dynamic")));

#define BATCH       RIPC_LOOP_BATCH
#define RX_RETRY_MS 100

int ripc__loop_init(ripc_server *s, struct loop *L, int idx)
{
    memset(L, 0, sizeof *L);
    L->s = s;
    L->idx = idx;
    L->cache_type = -1;
    L->wake.rfd = L->wake.wfd = -1;
    L->in_tail = &L->in_head;
    pthread_mutex_init(&L->in_mu, NULL);
    int rc = ripc__poller_open(&L->pl);
    if (rc < 0 || (rc = ripc__wake_open(&L->wake)) < 0)
        return rc;
    L->batch = malloc(BATCH * sizeof *L->batch);
    if (!L->batch)
        return -ENOMEM;
    L->ev_wake = (struct evsrc){EV_WAKE, NULL};
    rc = ripc__loop_watch(L, s->stop.rfd, &s->ev_stop);
    return rc ? rc : ripc__loop_watch(L, L->wake.rfd, &L->ev_wake);
}

void ripc__loop_fini(struct loop *L)
{
    ripc__poller_close(L->pl);
    L->pl = NULL;
    ripc__wake_close(&L->wake);
    free(L->peers);
    L->peers = NULL;
    free(L->batch);
    L->batch = NULL;
    L->n = L->cap = 0;
    L->in_head = NULL;
    L->in_tail = &L->in_head;
    pthread_mutex_destroy(&L->in_mu);
}

/* Must the owning loop drop p (-EPROTO)? Its outbound channel broke, or the
 * worker cut its segment under our mapping (shm/fault_guard.h: the access
 * that faulted completed on zeros, on whatever thread made it). */
static int peer_broken(struct ripc_peer *p)
{
    return atomic_load(&p->state) == P_BROKEN || ripc__segment_faulted(&p->ch.seg);
}

/* A busy loop looks at its poller every LOOK_ROUNDS busy rounds while peers
 * are parked (the adaptive spin every LOOK_SPINS looks), so a parked
 * worker's next message waits at most that long for a busy loop (a sleeping
 * loop wakes at once); a loop about to sleep with shm rings not parked yet
 * wakes after SWEEP_MS for the sweeps that park them (server_park.c). */
#define LOOK_ROUNDS 256
#define LOOK_SPINS  1024
#define SWEEP_MS    5

/* Register an active peer with loop L: its list (active set), its count,
 * p->loop, and its socket and doorbell in L's poller. L's own thread, or any
 * thread while L's does not run (run's start and end). 0, or -errno with p
 * on no list of L's (p->loop may be L already). */
static int loop_adopt(struct loop *L, struct ripc_peer *p)
{
    int rc = ripc__park_list_add(L, p);
    if (rc < 0)
        return rc;
    atomic_fetch_add(&L->count, 1);
    /* Under the send lock: senders read p->loop there (watch_set), and a
     * socket-mode send made before now (from `joined`, say) may have left
     * the rest of a frame, which this loop must then write (writability). */
    ripc__peer_lock(p, 0);
    p->loop = L;
    rc = ripc__loop_watch(L, p->sock, &p->ev_sock);
    if (rc == 0 && (ripc__frame_out_left(&p->tail) || p->rx_blocked))
        ripc__sockmode_watch(p, ripc__frame_out_left(&p->tail) != 0);
    pthread_mutex_unlock(&p->send_mu);
    if (rc < 0 || (p->ch.bell.wait_fd >= 0 &&
                   (rc = ripc__loop_watch(L, p->ch.bell.wait_fd, &p->ev_bell)) < 0)) {
        ripc__poller_del(L->pl, p->sock);
        ripc__park_list_del(L, p->slot);
        atomic_fetch_sub(&L->count, 1);
        return rc;
    }
    return 0;
}

void ripc__loop_forget(struct loop *L, struct ripc_peer *p)
{
    if (p->slot < L->n && L->peers[p->slot] == p) {
        ripc__park_list_del(L, p->slot);
        atomic_fetch_sub(&L->count, 1);
    }
    ripc__poller_del(L->pl, p->sock);
    ripc__poller_del(L->pl, p->ch.bell.wait_fd);
}

/* p, in no loop's list or poller, goes to L; when L cannot take it, it is
 * dropped with the error (its worker sees the connection end; `left` gets
 * the error). L's own thread, or run() while no other loop runs. */
static void adopt_or_drop(struct loop *L, struct ripc_peer *p)
{
    int rc = loop_adopt(L, p);
    if (rc < 0)
        ripc__peer_drop(NULL, p, rc); /* loop_adopt left nothing behind in L */
}

/* The peers handed over to L, taken off its list, go to T (L itself, or
 * loop 0 when run() ends). */
static void loop_take_incoming(struct loop *L, struct loop *T)
{
    pthread_mutex_lock(&L->in_mu);
    struct ripc_peer *p = L->in_head;
    L->in_head = NULL;
    L->in_tail = &L->in_head;
    atomic_store(&L->has_incoming, 0);
    pthread_mutex_unlock(&L->in_mu);
    /* Without in_mu: a drop calls `left`. */
    while (p) {
        struct ripc_peer *next = p->in_next;
        p->in_next = NULL;
        atomic_fetch_sub(&L->count, 1); /* loop_adopt counts it again */
        adopt_or_drop(T, p);
        p = next;
    }
}

/* The running loop with the fewest peers (counts read without a lock: a
 * hint, a race costs balance only). Loop 0's thread. */
static struct loop *least_loaded(ripc_server *s)
{
    struct loop *best = &s->loops[0];
    for (unsigned i = 1; i < s->nloops; i++)
        if (atomic_load(&s->loops[i].count) < atomic_load(&best->count))
            best = &s->loops[i];
    return best;
}

void ripc__loop_wake(struct loop *L)
{
    ripc__wake_signal(&L->wake);
}

void ripc__loop_place(struct loop *L, struct ripc_peer *p)
{
    struct loop *T = least_loaded(L->s);
    if (T == L) {
        adopt_or_drop(L, p);
        return;
    }
    pthread_mutex_lock(&T->in_mu);
    p->in_next = NULL;
    *T->in_tail = p;
    T->in_tail = &p->in_next;
    atomic_fetch_add(&T->count, 1); /* counted now so placement spreads */
    /* H1: seq_cst, pairs with H2 in loop_dispatch; the list itself is under
     * in_mu, and the wake below covers a loop that read 0 just before. */
    atomic_store(&T->has_incoming, 1);
    pthread_mutex_unlock(&T->in_mu);
    /* Wake T: it has not armed this peer's ring yet. */
    ripc__loop_wake(T);
}

/* An active shm peer's control socket is readable: large-message frames,
 * BYE, EOF, or junk. Once the connection ends, the ring is drained, then p
 * is dropped with the reason. */
static void active_readable(struct ripc_peer *p)
{
    int rc = ripc__large_read(&p->ch.lg, p->sock, p->ch.max_message);
    if (rc == 0)
        return;
    ripc__peer_end(p, rc == 1 ? RIPC_LEFT_BYE : rc);
    ripc__poller_del(p->loop->pl, p->sock); /* nothing more to read from it */
}

/* No handler took m: counted, and a request answered with -ENOENT at once
 * (its worker would otherwise wait for a reply that never comes). That
 * answer never waits: a worker that leaves its replies unread and keeps
 * sending requests of such a type would otherwise hold this dispatch
 * thread, and every other worker on it, for the reply timeout again and
 * again (each reply that gets through ends the stall rule of reply_send).
 * When it cannot go at once it is dropped; the request is counted all the
 * same, and its worker's request ends with its own timeout. */
__attribute__((noinline, cold)) static void unhandled(ripc_server *s, struct ripc_peer *p,
                                                      const ripc_msg *m)
{
    atomic_fetch_add_explicit(&s->dropped, 1, memory_order_relaxed);
    ripc__stat_add(&p->ch.st.in.dropped, 1);
    if (m->kind == RIPC_KIND_REQUEST) {
        char text[40];
        snprintf(text, sizeof text, "no handler for type %u", (unsigned)m->type);
        (void)ripc__reply_error(p, m->id, -ENOENT, text, 0);
    }
}

/* Call m's handler (the type's, else the catch-all of type 0), through L's
 * cache while the handler table's generation holds (G2 in tables_common.c).
 * 1 when that handler is a batch one: not called, the caller hands m and
 * its run to ripc__batch_ring / ripc__batch_frames; else 0. */
static int dispatch_one(struct loop *L, struct ripc_peer *p, ripc_msg *m)
{
    ripc_server *s = L->s;
    uint64_t gen = ripc__handler_gen(s->t);
    if (L->cache_type != m->type || L->cache_gen != gen) {
        ripc__handler h = {0};
        if (!ripc__handler_lookup(s->t, m->type, &h))
            ripc__handler_lookup(s->t, 0, &h);
        L->cache_type = m->type;
        L->cache_gen = gen;
        L->cache_fn = h.fn;
        L->cache_bfn = h.bfn;
        L->cache_max = h.max_batch;
        L->cache_arg = h.arg;
    }
    if (L->cache_fn)
        L->cache_fn(p, m, L->cache_arg);
    else if (L->cache_bfn)
        return 1;
    else
        unhandled(s, p, m);
    return 0;
}

/* Socket mode: dispatch the whole frames already read (up to BATCH). *rc:
 * -EAGAIN when none is left, -EPROTO when the peer broke the protocol. */
static int dispatch_frames(struct loop *L, struct ripc_peer *p, int *rc)
{
    int n = 0;
    *rc = -EAGAIN;
    while (n < BATCH) {
        ripc__frame f;
        const uint8_t *pl;
        int r = ripc__rx_next(&p->rx, &f, &pl, p->ch.max_message);
        if (r == 0 || r == -ENOBUFS || r == -ENOMEM)
            break; /* more bytes, or memory for them: ripc__sockmode_readable blocks p */
        if (r < 0 || (f.ftype != RIPC_FRAME_MSG && f.ftype != RIPC_FRAME_BYE) ||
            f.kind == RIPC_KIND_REPLY || f.type >= RIPC_TYPE_RESERVED) {
            *rc = -EPROTO;
            break;
        }
        if (f.ftype == RIPC_FRAME_BYE) {
            ripc__peer_end(p, RIPC_LEFT_BYE);
            break;
        }
        ripc_msg m = {
            .type = f.type, .kind = f.kind, .peer_id = p->id, .id = f.id, .data = pl, .len = f.len};
        ripc__stat_msg(&p->ch.st.in, m.kind, m.len);
        if (dispatch_one(L, p, &m))
            n += ripc__batch_frames(L, p, &m, BATCH - n);
        else
            n++;
    }
    return n;
}

/* Publish p's consumer index (read since pos0) and wake a worker waiting
 * for room. The bytes since pos0 were all queued at once before this
 * publish (the tail moves only now): a fill the ring really had. Returns
 * the new position. */
static uint64_t publish_rx(struct ripc_peer *p, uint64_t pos0)
{
    uint64_t pos = ripc__ring_pos(p->ch.rx);
    ripc__stat_max(&p->ch.st.in.high, pos - pos0);
    ripc__ring_publish_tail(p->ch.rx);
    ripc__chan_space_wake(&p->ch);
    return pos;
}

/* Take the peers handed over, then up to BATCH messages from each active
 * peer of L, and drop the peers that are due (broken, late with budget, or
 * ended and drained). L's thread. The count dispatched. */
static int loop_dispatch(struct loop *L)
{
    /* H2: acquire, pairs with H1 in ripc__loop_place */
    if (atomic_load_explicit(&L->has_incoming, memory_order_acquire))
        loop_take_incoming(L, L);
    int total = 0;
    for (size_t i = 0; i < L->nact; i++) {
        struct ripc_peer *p = L->peers[i];
        int n = 0, rc = 0;
        if (p->xport == RIPC_XPORT_SOCKET) {
            n = dispatch_frames(L, p, &rc);
            if (n)
                p->idle_sweeps = 0;
            if (rc != -EPROTO && ripc__sockmode_after_dispatch(L, p)) {
                total += n;
                i--;
                continue;
            }
            goto after;
        }
        uint64_t pos0 = ripc__ring_pos(p->ch.rx);
        uint64_t quarter = ripc__ring_capacity(p->ch.rx) / 4;
        while (n < BATCH) {
            ripc_msg m;
            rc = ripc__chan_peek(&p->ch, &m);
            if (rc < 0)
                break;
            /* Workers neither reply nor send reserved types. */
            if (m.kind == RIPC_KIND_REPLY || m.type >= RIPC_TYPE_RESERVED) {
                rc = -EPROTO;
                break;
            }
            m.peer_id = p->id;
            ripc__stat_msg(&p->ch.st.in, m.kind, m.len);
            if (dispatch_one(L, p, &m)) {
                n += ripc__batch_ring(L, p, &m, BATCH - n, &rc);
                if (rc < 0)
                    break;
                continue;
            }
            n++;
            /* A large payload cut while the handler read it: drop the
             * worker now, before it is handed anything else. */
            if ((rc = ripc__chan_release_lazy(&p->ch)) < 0)
                break;
            /* A quarter of the ring read: hand its room back now. A batch
             * of big messages (four of 1 MiB in a 4 MiB ring) would
             * otherwise keep the worker waiting until the last one is
             * read, and the two sides would take turns instead of
             * overlapping. */
            if (ripc__ring_pos(p->ch.rx) - pos0 >= quarter)
                pos0 = publish_rx(p, pos0);
        }
        if (n) {
            (void)publish_rx(p, pos0);
            p->idle_sweeps = 0;
        }
    after:
        total += n;
        if (rc == -EPROTO || peer_broken(p)) {
            ripc__peer_drop(L, p, -EPROTO);
            i--;
        } else if (rc == -EAGAIN && atomic_load(&p->state) == P_ENDING) {
            ripc__peer_drop(L, p, p->end_reason);
            i--;
        }
    }
    return total;
}

/* Arm every ring, sleep in the poller, handle what woke us. */
static void loop_wait(struct loop *L, int timeout_ms)
{
    ripc__park_take_notices(L);
    ripc__park_sweep(L);
    /* Before sleeping: arm every active ring (parked ones are), one remote fence for all of them if
     * any uses asymmetric fences, then look at each once more. A look
     * without sleeping (timeout 0) needs no arming. */
    size_t armed = 0;
    int unparked = 0; /* a shm ring was armed here, or a socket peer may be parked */
    int sleep_ok = !L->rx_retry, rx_tick = 0;
    L->rx_retry = 0;
    if (timeout_ms != 0) {
        int remote = 0;
        for (; armed < L->nact && sleep_ok; armed++) {
            struct ripc_peer *p = L->peers[armed];
            if (ripc__peer_drop_due(p)) {
                sleep_ok = 0; /* a drop is due */
                break;
            }
            if (p->xport == RIPC_XPORT_SOCKET) {
                if (ripc__rx_ready(&p->rx))
                    sleep_ok = 0; /* frames read ahead wait for dispatch */
                /* Memory to retry, or a stall to notice: receive budget
                 * held here, or send budget anywhere (its holders may be
                 * this loop's tails, and a sender may begin to wait for
                 * it without waking us). */
                if (p->rx_blocked || p->rx.charged ||
                    atomic_load_explicit(&L->s->tx_budget.used, memory_order_relaxed))
                    rx_tick = 1;
                unparked |= ripc__sockmode_parkable(p); /* a sweep would park it */
                continue;
            }
            ripc__ring_arm_consumer_flag(p->ch.rx);
            ripc__stat_add(&p->ch.st.in.sleeps, 1);
            remote |= ripc__ring_fastpub(p->ch.rx);
            unparked = 1;
        }
        if (sleep_ok && remote)
            ripc__remote_fence();
        for (size_t i = 0; i < armed && sleep_ok; i++)
            if (L->peers[i]->xport == RIPC_XPORT_SHM &&
                (ripc__ring_consumer_recheck(L->peers[i]->ch.rx) ||
                 ripc__segment_faulted(&L->peers[i]->ch.seg))) /* arming faulted */
                sleep_ok = 0;
    }
    /* closing as well as stopping: a poll may have consumed close's stop. */
    if (sleep_ok && !atomic_load(&L->has_incoming) && !atomic_load(&L->s->stopping) &&
        !atomic_load(&L->s->closing)) {
        ripc__poll_event ev[64];
        ripc_server *sv = L->s;
        if (((L->idx == 0 && (sv->n_hs || sv->listen_paused)) || rx_tick) &&
            (timeout_ms < 0 || timeout_ms > RX_RETRY_MS))
            timeout_ms = RX_RETRY_MS; /* handshake deadlines, paused listener, memory */
        /* Active rings not parked yet: wake for the sweeps that park them
         * (PARK_SWEEPS of them at most, server_park.c), then sleep for as long as asked. */
        if (unparked && (timeout_ms < 0 || timeout_ms > SWEEP_MS))
            timeout_ms = SWEEP_MS;
        /* The loop watches its sockets again (and stops when the wait
         * ends): a worker is not blamed for its absence (ripc__pace_late). */
        uint64_t cnow = ripc__coarse_ns();
        ripc__presence_arrive(&L->rx_here, cnow);
        ripc__presence_arrive(&L->tx_here, cnow);
        int n = ripc__poller_wait(L->pl, ev, 64, timeout_ms);
        cnow = ripc__coarse_ns();
        ripc__presence_leave(&L->rx_here, cnow);
        ripc__presence_leave(&L->tx_here, cnow);
        for (int i = 0; i < n; i++) {
            struct evsrc *e = ev[i].data;
            switch (e->kind) {
            case EV_LISTEN:
                ripc__handshake_accept(L);
                break;
            case EV_STOP:
                break;
            case EV_WAKE:
                ripc__wake_drain(&L->wake);
                break;
            case EV_SOCK: {
                /* An ending peer's socket is out of the set already; a
                 * broken one is still read until its drop (this round). */
                int st = atomic_load(&e->p->state);
                if (st == P_HANDSHAKE)
                    ripc__handshake_readable(L, e->p);
                else if (st == P_ACTIVE || st == P_BROKEN) {
                    ripc__park_readmit(L, e->p);
                    if (e->p->xport != RIPC_XPORT_SOCKET)
                        active_readable(e->p);
                    else {
                        if (ev[i].events & RIPC_POLL_OUT)
                            ripc__sockmode_writable(e->p);
                        if (ev[i].events & RIPC_POLL_IN)
                            ripc__sockmode_readable(L, e->p, ev[i].events);
                    }
                }
                break;
            }
            case EV_BELL: {
                ripc__stat_add(&e->p->ch.st.in.wakeups, 1);
                ripc__park_readmit(L, e->p); /* data, most likely: its worker saw the flag */
                /* End of stream: the worker closed its end of our doorbell
                 * (it cannot wake us any more; its socket says when it is
                 * gone). Stop watching it, or the poller reports it forever. */
                int drc = ripc__doorbell_drain(&e->p->ch.bell);
                if (drc == -EPIPE || drc == -EPROTO)
                    ripc__poller_del(L->pl, e->p->ch.bell.wait_fd);
                if (drc == -EPROTO)
                    ripc__peer_break(e->p); /* a descriptor with a ring: dropped */
                /* W2: seq_cst, pairs with W1 in wait_space (server_send.c):
                 * a sender counted before it armed is woken here. */
                if (atomic_load(&e->p->space_waiters)) {
                    pthread_mutex_lock(&e->p->send_mu);
                    pthread_cond_broadcast(&e->p->space_cv);
                    pthread_mutex_unlock(&e->p->send_mu);
                }
                break;
            }
            }
        }
        ripc__handshake_sweep(L);
        ripc__park_take_notices(L);
    }
    /* [0, nact) holds active peers only, whatever moved meanwhile: a
     * parked ring keeps its flag. */
    for (size_t i = 0; i < armed && i < L->nact; i++)
        if (L->peers[i]->xport == RIPC_XPORT_SHM)
            ripc__ring_disarm_consumer(L->peers[i]->ch.rx);
}

/*
 * poll(s, 0) found nothing in the rings: look at the sockets without
 * sleeping (accept, handshakes, BYE; a caller with its own event loop only
 * ever polls with 0), and when that yields nothing either, return with every
 * ring armed, so that the next commit rings our doorbell and
 * ripc_server_fd() turns readable (like ripc_client_recv(c, m, 0)); parked
 * rings are armed already.
 */
static int poll_nowait(struct loop *L)
{
    loop_wait(L, 0);
    int n = loop_dispatch(L);
    for (size_t i = 0; n == 0 && i < L->nact; i++) {
        struct ripc_peer *p = L->peers[i];
        int ready = p->xport == RIPC_XPORT_SOCKET ? ripc__rx_ready(&p->rx)
                                                  : ripc__ring_arm_consumer(p->ch.rx);
        if (ripc__peer_drop_due(p) || ready) {
            n = loop_dispatch(L); /* data raced in, or a drop is due */
            i = (size_t)-1;       /* the set may have changed: arm from the start */
        }
    }
    return n;
}

/* One round: dispatch, spin (adaptive/spin), then sleep up to timeout_ms. */
static int loop_round(struct loop *L, int timeout_ms)
{
    ripc__tls_loop = L;
    atomic_store_explicit(&L->active, 1, memory_order_relaxed); /* one thread per loop */
    int n = loop_dispatch(L);
    if (n > 0) {
        /* Busy: still look at the sockets (joins, goodbyes, dead workers,
         * handshake deadlines) about once a millisecond, and at the parked
         * peers' doorbells every LOOK_ROUNDS busy rounds. */
        uint64_t now = ripc__coarse_ns(); /* every round: the cheap clock */
        if (now >= L->next_look || (L->nact < L->n && ++L->busy_rounds >= LOOK_ROUNDS)) {
            L->next_look = now + 1000000u;
            L->busy_rounds = 0;
            loop_wait(L, 0);
        }
        goto out;
    }
    if (timeout_ms == 0) {
        n = poll_nowait(L);
        goto out;
    }
    ripc_server *s = L->s;
    /* Adaptive spins for active peers only (a parked one rings); spin mode
     * spins whenever it has peers, looking at its poller for parked ones. */
    size_t spinners = s->opt.wait == RIPC_WAIT_SPIN ? L->n : L->nact;
    int spin = 0;
    for (size_t k = 0; k < spinners && !spin; k++)
        spin = L->peers[k]->ch.spin_us > 0;
    if (s->opt.wait != RIPC_WAIT_BLOCK && spin) {
        /* The clock is first read after 64 looks: a request that lands
         * within them (a worker in a request loop) costs no clock read. */
        uint64_t budget = s->opt.wait == RIPC_WAIT_SPIN ? 1000000u /* sockets every ms */
                                                        : (uint64_t)s->opt.spin_us * 1000u;
        uint64_t end = 0;
        for (unsigned i = 1;; i++) {
            ripc__cpu_relax();
            int any = 0;
            for (size_t k = 0; k < L->nact && !any; k++)
                any =
                    L->peers[k]->xport == RIPC_XPORT_SHM && ripc__ring_readable(L->peers[k]->ch.rx);
            if (any) {
                n = loop_dispatch(L);
                /* A request loop's rounds mostly find their message here:
                 * they count as busy ones for the parked peers' look. */
                if (L->nact < L->n && ++L->busy_rounds >= LOOK_ROUNDS) {
                    L->busy_rounds = 0;
                    loop_wait(L, 0);
                }
                goto out;
            }
            if ((i & 63) == 0) {
                if (atomic_load(&s->stopping) || atomic_load(&L->has_incoming))
                    break;
                uint64_t now = ripc__now_ns();
                if (end == 0)
                    end = now + budget;
                else if (now >= end)
                    break;
                if ((i & (LOOK_SPINS - 1)) == 0 && L->nact < L->n) {
                    loop_wait(L, 0); /* a parked worker's doorbell */
                    if ((n = loop_dispatch(L)) > 0)
                        goto out;
                }
            }
        }
        if (s->opt.wait == RIPC_WAIT_SPIN)
            timeout_ms = 0; /* look at sockets without sleeping, then spin again */
    }
    loop_wait(L, timeout_ms);
    n = loop_dispatch(L);
out:
    atomic_store_explicit(&L->active, 0, memory_order_relaxed);
    ripc__tls_loop = NULL;
    return n;
}

int ripc__loop_poll(ripc_server *s, int timeout_ms)
{
    struct loop *L = &s->loops[0];
    if (atomic_load(&s->stopping)) {
        /* stop() is for run(); a poller consumes it instead of spinning. */
        atomic_store(&s->stopping, 0);
        ripc__wake_drain(&s->stop);
    }
    if (timeout_ms <= 0)
        return loop_round(L, timeout_ms);
    /* The first round gets timeout_ms itself: a poll that finds messages
     * (the busy case) reads the clock once, not twice. */
    uint64_t deadline = ripc__deadline(timeout_ms);
    for (int ms = timeout_ms;; ms = ripc__remaining_ms(deadline)) {
        int n = loop_round(L, ms);
        /* A round does not sleep while a stop is pending: end the poll
         * rather than spin to the deadline (the next poll consumes it). */
        if (n != 0 || ripc__now_ns() >= deadline || atomic_load(&s->stopping))
            return n;
    }
}

/* A loop's thread (and loop 0's in run): rounds until stop. */
static void *loop_main(void *arg)
{
    struct loop *L = arg;
    while (!atomic_load(&L->s->stopping))
        loop_round(L, -1);
    return NULL;
}

int ripc__loop_run(ripc_server *s, unsigned threads)
{
    if (threads == 0)
        threads = 1;
    if (threads > MAX_LOOPS)
        threads = MAX_LOOPS;
    /* The dispatch threads read worker segments: SIGBUS must reach the
     * fault guard there (internal.h), whatever mask the caller keeps. The
     * threads created below inherit the unblocked mask; the caller's is
     * back when run returns. */
    sigset_t mask;
    int restore = ripc__sigbus_unblock(&mask) == 0;
    struct loop *loops = s->loops;
    unsigned started = 1;
    if (threads > 1) {
        /* Start loops 1..threads-1 and spread the peers of loop 0. */
        for (unsigned i = 1; i < threads; i++)
            if (ripc__loop_init(s, &loops[i], (int)i) < 0) {
                for (unsigned k = 1; k <= i; k++)
                    ripc__loop_fini(&loops[k]);
                if (restore)
                    ripc__sigmask_restore(&mask);
                return -EMFILE;
            }
        s->nloops = threads;
        struct loop *L0 = &loops[0];
        for (size_t i = L0->n; i-- > 0;) {
            if (i % threads == 0)
                continue;
            struct ripc_peer *p = L0->peers[i];
            ripc__loop_forget(L0, p);
            adopt_or_drop(&loops[i % threads], p);
        }
        for (; started < threads; started++)
            if (pthread_create(&loops[started].th, NULL, loop_main, &loops[started]) != 0) {
                ripc_server_stop(s);
                break;
            }
    }
    loop_main(&loops[0]);
    for (unsigned i = 1; i < started; i++)
        pthread_join(loops[i].th, NULL);
    /* Back to one loop: its peers return to loop 0 for poll(). */
    for (unsigned i = 1; i < s->nloops; i++) {
        struct loop *L = &loops[i];
        loop_take_incoming(L, &loops[0]);
        while (L->n) {
            struct ripc_peer *p = L->peers[L->n - 1];
            ripc__loop_forget(L, p);
            adopt_or_drop(&loops[0], p);
        }
        ripc__loop_fini(L);
    }
    s->nloops = 1;
    /* Clear the flag before draining: a stop() landing in between leaves
     * the stop handle signalled and the flag set again, which the next run
     * honours, instead of being half lost. */
    atomic_store(&s->stopping, 0);
    ripc__wake_drain(&s->stop);
    if (restore)
        ripc__sigmask_restore(&mask);
    return 0;
}
