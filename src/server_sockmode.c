/* SPDX-License-Identifier: MIT */
/*
 * Socket mode on the master: every message is a frame on the worker's
 * control socket. In: frames read ahead into a receive buffer (src/frames.h)
 * whose growth beyond its base comes from one budget for all workers. Out: a
 * frame over a receive buffer's base takes its size from a send budget for
 * all workers; one a sender could not finish within its deadline leaves a
 * tail, which the owning loop writes as the worker reads. A worker holding
 * budget others wait for with a frame that does not move is dropped.
 * Senders refused budget wait in line (struct tx_line), woken as it comes
 * back.
 */
#include <stdlib.h>

#include "src/server_internal.h"

/* Not with p's last reference: other workers may be waiting for its budget
 * (their loops look again within RX_RETRY_MS; this one at once). */
void ripc__sockmode_release(struct loop *L, struct ripc_peer *p)
{
    if (p->rx_blocked) {
        p->rx_blocked = 0;
        atomic_fetch_sub(&p->srv->rx_budget.waiters, 1);
    }
    if (L && p->rx.charged)
        L->rx_retry = 1;
    ripc__rx_free(&p->rx);
}

/* p->watch: what p's socket is watched for, and a generation. */
enum { W_OUT = 1u, W_NOIN = 2u, W_FLAGS = 3u, W_GEN = 4u };

/*
 * The one place p's poller events change. Two wishes make them, changed by
 * different threads: writability while a tail waits (senders, under the send
 * lock, and the owning loop) and no readability while the receive buffer is
 * blocked (the owning loop; the socket stays in the set, so a tail's
 * watch is not lost meanwhile, and a hang-up still wakes the loop).
 * Every change bumps the generation, and whoever changed a wish applies
 * both until no change came in between: the last poller change is always made
 * after the last change, whichever thread makes it.
 */
static void watch_set(struct ripc_peer *p, unsigned bit, int on)
{
    /* V1: seq_cst CAS, the wish and a new generation; pairs with V2 of
     * whichever thread applies the wishes now. */
    unsigned w = atomic_load(&p->watch), nw;
    do
        nw = (((w & ~W_FLAGS) + W_GEN) & ~W_FLAGS) | ((on ? w | bit : w & ~bit) & W_FLAGS);
    while (!atomic_compare_exchange_weak(&p->watch, &w, nw));
    struct loop *L = p->loop;
    if (!L)
        return; /* no set yet: loop_adopt applies them */
    do {
        w = atomic_load(&p->watch);
        unsigned ev = (w & W_NOIN ? 0u : RIPC_POLL_IN) | (w & W_OUT ? RIPC_POLL_OUT : 0u);
        if (ripc__poller_mod(L->pl, p->sock, ev, &p->ev_sock) != 0) {
            /* not in the set any more (the connection ended): nothing to watch */
        }
        /* V2: seq_cst, after the poller change; pairs with every V1. The
         * same generation: the next V1 comes after this load, and the
         * thread behind it applies again after our change. */
    } while (atomic_load(&p->watch) != w);
}

void ripc__sockmode_watch(struct ripc_peer *p, int on)
{
    watch_set(p, W_OUT, on);
}

/* ---- the send budget's line ----
 * A sender refused budget joins the line and waits there in the order it
 * came: only the first may take, and a sender that comes while others wait
 * goes behind them (it looks at `queued` first), so a large frame is not
 * starved by smaller ones that keep fitting in what comes back. Off the
 * dispatch threads a sender sleeps on the line's condition variable until
 * it is first and its frame fits (every give looks), a peer is dropped,
 * close begins, or its deadline; a sender on a dispatch thread writes its
 * loop's tails meanwhile and looks again after each slice (own_tails). */

void ripc__sockmode_line_init(struct tx_line *q)
{
    pthread_mutex_init(&q->mu, NULL);
    ripc__cond_init_monotonic(&q->cv);
    q->head = NULL;
    q->tail = &q->head;
    atomic_init(&q->queued, 0);
}

void ripc__sockmode_line_fini(struct tx_line *q)
{
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
}

/* Line lock held: does the first one's frame fit in the budget now? */
static int first_fits(ripc_server *s)
{
    const struct tx_waiter *w = s->tx_line.head;
    size_t used = atomic_load_explicit(&s->tx_budget.used, memory_order_relaxed);
    return w && w->charge <= s->tx_budget.cap && used <= s->tx_budget.cap - w->charge;
}

/* Line lock held: w leaves; a new first one looks, if its frame fits. */
static void line_remove(ripc_server *s, struct tx_waiter *w)
{
    struct tx_line *q = &s->tx_line;
    struct tx_waiter **at = &q->head;
    while (*at != w)
        at = &(*at)->next;
    *at = w->next;
    if (q->tail == &w->next)
        q->tail = at;
    w->in_line = 0;
    atomic_fetch_sub(&q->queued, 1);
    if (at == &q->head && first_fits(s))
        pthread_cond_broadcast(&q->cv);
}

static void line_leave(ripc_server *s, struct tx_waiter *w)
{
    if (!w->in_line)
        return;
    pthread_mutex_lock(&s->tx_line.mu);
    line_remove(s, w);
    pthread_mutex_unlock(&s->tx_line.mu);
}

void ripc__sockmode_budget_give(ripc_server *s, size_t n)
{
    if (!n)
        return;
    ripc__rx_budget_give(&s->tx_budget, n);
    /* J1: pairs with J2 (budget_take): this give's look at the line sees
     * a sender that joined it, or that sender's look at the budget sees
     * what was given. */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&s->tx_line.queued, memory_order_relaxed) == 0)
        return;
    pthread_mutex_lock(&s->tx_line.mu);
    if (first_fits(s))
        pthread_cond_broadcast(&s->tx_line.cv);
    pthread_mutex_unlock(&s->tx_line.mu);
}

void ripc__sockmode_budget_wake(ripc_server *s)
{
    /* J1 as in a give, for the state or `closing` stored before. */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&s->tx_line.queued, memory_order_relaxed) == 0)
        return;
    pthread_mutex_lock(&s->tx_line.mu);
    pthread_cond_broadcast(&s->tx_line.cv);
    pthread_mutex_unlock(&s->tx_line.mu);
}

/* Send lock held: take `charge` bytes of send budget, in line. 0: taken (w
 * out of line); -ENOBUFS: not now, w in line (until it takes, or
 * line_leave). */
static int budget_take(ripc_server *s, struct tx_waiter *w, size_t charge)
{
    struct tx_line *q = &s->tx_line;
    if (charge == 0)
        return 0;
    if (!w->in_line && atomic_load_explicit(&q->queued, memory_order_relaxed) == 0 &&
        ripc__rx_budget_take(&s->tx_budget, charge) == 0)
        return 0;
    pthread_mutex_lock(&q->mu);
    if (!w->in_line) {
        w->charge = charge;
        w->next = NULL;
        *q->tail = w;
        q->tail = &w->next;
        w->in_line = 1;
        atomic_fetch_add_explicit(&q->queued, 1, memory_order_relaxed);
        /* J2: pairs with J1 (gives, wakes) */
        atomic_thread_fence(memory_order_seq_cst);
    }
    int rc = -ENOBUFS;
    if (q->head == w && ripc__rx_budget_take(&s->tx_budget, charge) == 0) {
        line_remove(s, w);
        rc = 0;
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

/*
 * For stream_take off the dispatch threads, p's lock held (let go
 * meanwhile), w in line: sleep until w is first and its frame fits, p is
 * dropped, close begins, or `until`. 0: look again; otherwise as
 * sock_wait.
 */
static int budget_wait(struct ripc_peer *p, struct tx_waiter *w, uint64_t until)
{
    ripc_server *s = p->srv;
    struct tx_line *q = &s->tx_line;
    int rc = 0;
    pthread_mutex_unlock(&p->send_mu);
    pthread_mutex_lock(&q->mu);
    while (!(q->head == w && first_fits(s))) {
        if (atomic_load(&s->closing)) {
            rc = -ECANCELED;
            break;
        }
        if (atomic_load(&p->state) == P_DEAD) {
            rc = -EPIPE;
            break;
        }
        if (ripc__cond_wait_until(&q->cv, &q->mu, until) == ETIMEDOUT) {
            rc = -ETIMEDOUT;
            break;
        }
    }
    pthread_mutex_unlock(&q->mu);
    pthread_mutex_lock(&p->send_mu);
    return atomic_load(&p->state) == P_DEAD ? -EPIPE : rc;
}

/* What a frame (or the rest of one) of n bytes takes from the send budget:
 * the bytes beyond a receive buffer's base (small ones are free). */
static size_t tail_charge(size_t n)
{
    return n > RIPC_RX_BASE ? n : 0;
}

/* Send lock held: p's tail is gone (out, or dropped with the stream); its
 * budget goes back. */
static void tail_end(struct ripc_peer *p)
{
    ripc__frame_out_end(&p->tail);
    ripc__sockmode_budget_give(p->srv, p->tail_charged);
    p->tail_charged = 0;
}

/* Send lock held: budget p's tail no longer needs goes back as the worker
 * reads. */
static void tail_recharge(struct ripc_peer *p)
{
    size_t keep = tail_charge(ripc__frame_out_left(&p->tail));
    if (keep < p->tail_charged) {
        ripc__sockmode_budget_give(p->srv, p->tail_charged - keep);
        p->tail_charged = keep;
    }
}

/* Send lock held: write what is left of p's tail without waiting. 0 all
 * out (or none), -EAGAIN some left, -EPIPE. */
static int tail_flush(struct ripc_peer *p)
{
    if (!ripc__frame_out_left(&p->tail))
        return 0;
    size_t moved = 0;
    int rc = ripc__frame_out_write(&p->tail, p->sock, &moved);
    p->tail_pace.moved += moved;
    if (rc == 0) {
        tail_end(p);
        ripc__sockmode_watch(p, 0);
        return 0;
    }
    tail_recharge(p);
    return rc == -EAGAIN ? -EAGAIN : -EPIPE;
}

/* The owning loop L: does p hold send budget others wait for with a tail it
 * does not read (ripc__pace_late)? A sender holding the lock is moving it. */
static int tail_late(struct loop *L, struct ripc_peer *p)
{
    /* N2: relaxed, pairs with N1 (stream_take): a count, no data; a waiter
     * not seen yet is judged for at the next period. */
    int wait = atomic_load_explicit(&p->srv->tx_budget.waiters, memory_order_relaxed) != 0;
    if (!wait || pthread_mutex_trylock(&p->send_mu) != 0)
        return 0;
    uint64_t back = ripc__presence_back(&L->tx_here, ripc__coarse_ns());
    int late = ripc__pace_late(&p->tail_pace, p->tail_charged, wait, back);
    pthread_mutex_unlock(&p->send_mu);
    return late;
}

/*
 * The owning loop, inside a handler, q's lock held: q's tail is late (see
 * tail_late) but q cannot be dropped from here. Its budget goes back now;
 * its stream, torn in the middle of a frame, is shut for writing (a later
 * send finds -EPIPE), and q ends (-ETIMEDOUT): the loop drops it once the
 * handler returns.
 */
static void tail_abandon(struct ripc_peer *q)
{
    tail_end(q);
    ripc__sock_shutdown(q->sock, RIPC_SOCK_SHUT_WR);
    ripc__peer_end(q, -ETIMEDOUT);
}

#define OWN_POLL 64
_Static_assert(OWN_POLL <= RIPC_SOCK_WAIT_MAX, "one ripc__sock_wait_many");

/*
 * For stream_take on a dispatch thread L, p's lock held (let go meanwhile
 * unless p is L's): the send budget is short, and the tails of L's peers,
 * which hold part of it, are written by L alone, which waits here. Write
 * them, and wait (a slice at most) until one of their sockets takes more;
 * a tail that does not move while others wait is abandoned by the rule
 * the loop applies (tail_late). 0: look again; otherwise as sock_wait.
 */
static int own_tails(struct loop *L, struct ripc_peer *p, int own, uint64_t until)
{
    uint64_t now = ripc__now_ns();
    if (now >= until)
        return -ETIMEDOUT;
    if (atomic_load_explicit(&p->srv->closing, memory_order_relaxed))
        return -ECANCELED;
    uint64_t end = until - now > 2000000u ? now + 2000000u : until;
    if (!own)
        pthread_mutex_unlock(&p->send_mu);
    uint64_t cnow = ripc__coarse_ns();
    ripc__presence_arrive(&L->tx_here, cnow);
    ripc__sock_watch pf[OWN_POLL];
    int n = 0, freed = 0;
    for (size_t i = 0; i < L->n; i++) {
        struct ripc_peer *q = L->peers[i];
        if (q == p || q->xport != RIPC_XPORT_SOCKET || pthread_mutex_trylock(&q->send_mu) != 0)
            continue; /* a sender holding q's lock writes its tail itself */
        size_t held = q->tail_charged;
        if (atomic_load(&q->state) != P_DEAD && tail_flush(q) == -EAGAIN) {
            if (ripc__pace_late(&q->tail_pace, q->tail_charged, 1, L->tx_here.back))
                tail_abandon(q);
            else if (n < OWN_POLL)
                pf[n++] = (ripc__sock_watch){.fd = q->sock, .events = RIPC_SOCK_OUT};
        }
        freed |= q->tail_charged < held;
        pthread_mutex_unlock(&q->send_mu);
    }
    if (!freed) {
        if (n == 0 || ripc__sock_wait_many(pf, n, end) < 0)
            ripc__nap_until(end);
    }
    ripc__presence_leave(&L->tx_here, ripc__coarse_ns());
    if (!own) {
        pthread_mutex_lock(&p->send_mu);
        if (atomic_load(&p->state) == P_DEAD)
            return -EPIPE;
    }
    return 0;
}

/*
 * For ripc__sockmode_send, send lock held: wait until p's socket may take
 * more, never past `until`. A thread other than p's loop lets go of the
 * lock meanwhile (see wait_space) and waits in slices: the descriptor may
 * be closed and its number reused while it waits. 0: look again,
 * -ETIMEDOUT: until has passed, -EPIPE: p was dropped (or hung up),
 * -ECANCELED: close has begun.
 */
static int sock_wait(struct ripc_peer *p, int own, uint64_t until)
{
    uint64_t now = ripc__now_ns();
    if (now >= until)
        return -ETIMEDOUT;
    if (atomic_load_explicit(&p->srv->closing, memory_order_relaxed))
        return -ECANCELED;
    uint64_t slice = own ? UINT64_MAX : 10000000u;
    uint64_t end = until - now > slice ? now + slice : until;
    int sock = p->sock, rc;
    if (!own)
        pthread_mutex_unlock(&p->send_mu);
    rc = ripc__frame_wait_out(sock, end);
    if (!own) {
        pthread_mutex_lock(&p->send_mu);
        if (atomic_load(&p->state) == P_DEAD)
            return -EPIPE;
    }
    return rc == -ETIMEDOUT ? 0 : rc;
}

/*
 * For ripc__sockmode_send, send lock held: the stream is ours once the
 * frame before ours is out and `charge` bytes of send budget are had,
 * waiting for both up to the deadline. Waiting for budget counts as
 * waiting: holders must move (tail_late). Budget is waited for in line; a
 * sender on a dispatch thread writes that loop's tails meanwhile, for
 * nobody else would (own_tails). One that must wait for its peer's socket
 * (another sender's frame to p came first) leaves the line meanwhile:
 * the first in line must not hold up the others for one worker. 0, or as
 * sock_wait.
 */
static int stream_take(struct ripc_peer *p, int own, size_t charge, uint64_t deadline)
{
    ripc_server *s = p->srv;
    struct tx_waiter w = {0};
    int rc, waiting = 0;
    for (;;) {
        if ((rc = tail_flush(p)) == 0 && (rc = budget_take(s, &w, charge)) == 0)
            break;
        if (rc == -ENOBUFS) {
            if (!waiting) {
                waiting = 1;
                /* N1: seq_cst count of who waits for budget; pairs with N2
                 * in tail_late. */
                atomic_fetch_add(&s->tx_budget.waiters, 1);
            }
            rc = ripc__tls_loop ? own_tails(ripc__tls_loop, p, own, deadline)
                                : budget_wait(p, &w, deadline);
        } else if (rc == -EAGAIN) {
            line_leave(s, &w);
            rc = sock_wait(p, own, deadline);
        }
        if (rc < 0)
            break;
    }
    line_leave(s, &w);
    if (waiting)
        atomic_fetch_sub(&s->tx_budget.waiters, 1);
    return rc;
}

/* What a send may end past its deadline copying the rest of its frame
 * (about a scheduling slice). */
#define COPY_SLACK_NS 2000000u

/*
 * A frame over a receive buffer's base first takes its size from the send
 * budget all workers share, waiting for it up to the deadline (nothing is
 * written then: -ETIMEDOUT). The frame is then written as the worker reads
 * until the deadline less the time to copy what is left, which is then
 * copied into p's tail (within the budget taken), for the owning loop to
 * write as the worker reads (writability). A frame that could not even be
 * copied by its deadline is not begun: its send would end past the
 * deadline by the copy. A worker that does not read therefore costs a
 * sender its timeout, never more; the memory kept for it is bounded; and a
 * frame, once begun, is finished, so the stream keeps its framing.
 */
int ripc__sockmode_send(struct ripc_peer *p, const ripc__frame *f, const void *data,
                        uint64_t deadline, int nowait)
{
    int own = ripc__tls_loop != NULL && ripc__tls_loop == p->loop;
    size_t charge = tail_charge(RIPC_FRAME_HDR + (size_t)f->len);
    int rc = stream_take(p, own, charge, deadline);
    if (rc < 0)
        return rc;
    if (charge && !nowait && deadline != RIPC_DEADLINE_NEVER) {
        uint64_t now = ripc__now_ns(), left = deadline > now ? deadline - now : 0;
        if (ripc__frame_copy_ns(charge) > left + COPY_SLACK_NS) {
            ripc__sockmode_budget_give(p->srv, charge);
            return -ETIMEDOUT;
        }
    }
    ripc__frame_out o;
    ripc__frame_out_begin(&o, f, data);
    size_t moved = 0;
    rc = ripc__frame_out_write(&o, p->sock, &moved);
    if (rc != -EAGAIN) { /* all out at once (or the stream is gone) */
        ripc__sockmode_budget_give(p->srv, charge);
        return rc == 0 ? 0 : -EPIPE;
    }
    /* The rest is p's tail from now on: whoever writes to p writes it first
     * (the owning loop too, as room comes), from our buffer until we return. */
    p->tail = o;
    p->tail_charged = charge;
    p->tail_pace = (ripc__pace){0};
    tail_recharge(p);
    uint64_t mine = ++p->tail_seq;
    if (!own)
        ripc__sockmode_watch(p, 1);
    for (;;) {
        /* Stop in time to copy the rest. */
        uint64_t cost = ripc__frame_copy_ns(ripc__frame_out_left(&p->tail));
        uint64_t stop = deadline > cost ? deadline - cost : 0;
        if ((rc = sock_wait(p, own, stop)) < 0)
            break;
        if (p->tail_seq != mine || !ripc__frame_out_left(&p->tail))
            return 0; /* out: another thread may have finished it */
        if ((rc = tail_flush(p)) == 0)
            return 0;
        if (rc != -EAGAIN)
            break;
    }
    if (p->tail_seq != mine || !ripc__frame_out_left(&p->tail))
        return 0;
    if (rc == -ETIMEDOUT && p->tail.hdr_left == RIPC_FRAME_HDR) {
        tail_end(p); /* not begun: the stream is as it was */
        return -ETIMEDOUT;
    }
    if (rc == -ETIMEDOUT && ripc__frame_out_keep(&p->tail) == 0) {
        ripc__sockmode_watch(p, 1);
        /* The owning loop looks at the budget's holders (loop_wait): p among
         * its active peers, parked or not (P1). */
        ripc__loop_notice(p);
        return 0;
    }
    /* The stream is broken or gone: the caller's buffer must not stay. */
    tail_end(p);
    if (rc == -ETIMEDOUT) {
        ripc__peer_break(p); /* part of the frame is out, the rest cannot be kept */
        return -ENOMEM;
    }
    return rc;
}

/* Not when a sender holds the lock: that sender writes the tail first
 * anyway. */
void ripc__sockmode_writable(struct ripc_peer *p)
{
    if (pthread_mutex_trylock(&p->send_mu) != 0)
        return;
    if (atomic_load(&p->state) != P_DEAD) {
        if (!ripc__frame_out_left(&p->tail))
            ripc__sockmode_watch(p, 0);
        else if (tail_flush(p) == -EPIPE)
            ripc__sockmode_watch(p, 0); /* the hang-up comes as readable */
    }
    pthread_mutex_unlock(&p->send_mu);
}

/*
 * Socket mode: p's receive buffer is full and may not grow (the frame in it
 * waits for budget, or for memory): stop reading the socket, whose data
 * waits in the kernel (the worker's sends feel it), or the level-triggered
 * descriptor would wake us for ever. It stays watched for a tail (writable)
 * and a hang-up. loop_dispatch looks again when the budget frees, and
 * every RX_RETRY_MS.
 */
static void rx_block(struct loop *L, struct ripc_peer *p)
{
    if (!p->rx_blocked) {
        p->rx_blocked = 1;
        /* N1: as in stream_take; pairs with N2 in ripc__sockmode_after_dispatch */
        atomic_fetch_add(&L->s->rx_budget.waiters, 1);
        watch_set(p, W_NOIN, 1);
    }
}

/* The buffer has room again: read the socket. The owning loop, p blocked. */
static void rx_unblock(struct loop *L, struct ripc_peer *p)
{
    p->rx_blocked = 0;
    atomic_fetch_sub(&L->s->rx_budget.waiters, 1);
    watch_set(p, W_NOIN, 0);
}

int ripc__sockmode_after_dispatch(struct loop *L, struct ripc_peer *p)
{
    ripc_server *s = L->s;
    if (ripc__rx_trim(&p->rx))
        L->rx_retry = 1;
    if (p->rx_blocked && atomic_load(&p->state) != P_ENDING && !ripc__rx_full(&p->rx))
        rx_unblock(L, p);
    size_t held = p->rx_blocked || !ripc__rx_partial(&p->rx) ? 0 : p->rx.charged;
    /* Nothing held (the usual case): pace_late only resets, and the clock
     * is not read. */
    uint64_t back = held ? ripc__presence_back(&L->rx_here, ripc__coarse_ns()) : 0;
    /* N2: relaxed, pairs with N1 in rx_block, as in tail_late. */
    if (ripc__pace_late(&p->rx_pace, held,
                        atomic_load_explicit(&s->rx_budget.waiters, memory_order_relaxed) != 0,
                        back) ||
        tail_late(L, p)) {
        ripc__peer_drop(L, p, -ETIMEDOUT);
        return 1;
    }
    return 0;
}

int ripc__sockmode_parkable(const struct ripc_peer *p)
{
    /* P1: seq_cst, pairs with the V1 of a sender that leaves a tail
     * (W_OUT): a CAS this load does not see comes before that sender's
     * notice (O1), which the loop then takes after the park. */
    unsigned w = atomic_load(&p->watch);
    return !(w & (W_OUT | W_NOIN)) && !p->rx_blocked && p->rx.charged == 0 &&
           !ripc__rx_ready(&p->rx) && !ripc__rx_partial(&p->rx);
}

void ripc__sockmode_readable(struct loop *L, struct ripc_peer *p, unsigned events)
{
    if (p->rx_blocked) {
        /* Not read: only a hang-up or an error brings us here (or readability
         * reported before the block). A worker gone cannot finish the
         * frame its buffer waits for. */
        if (events & RIPC_POLL_HUP) {
            ripc__peer_end(p, -EPIPE);
            ripc__poller_del(L->pl, p->sock);
        }
        return;
    }
    long n = ripc__rx_fill(&p->rx, p->sock);
    if (n > 0)
        p->rx_pace.moved += (size_t)n;
    else if (n == -ENOMEM || (n == 0 && ripc__rx_full(&p->rx)))
        rx_block(L, p);
    else if (n == -EPROTO) {
        ripc__peer_break(p); /* descriptors with a frame: dropped (-EPROTO) */
        ripc__poller_del(L->pl, p->sock);
    } else if (n < 0) {
        ripc__peer_end(p, -EPIPE);
        ripc__poller_del(L->pl, p->sock);
    }
}
