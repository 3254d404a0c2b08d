/* SPDX-License-Identifier: MIT */
/*
 * The master's internals, shared by its files:
 *
 *   server.c            open, run, poll, stop, close; small public accessors
 *   server_peer.c       references, the peer's state, dropping
 *   server_handshake.c  accept, HELLO checks, transport choice, WELCOME/REJECT
 *   server_send.c       send, batch, broadcast, replies, waiting for room
 *   server_loan.c       loans: reserve, commit, abandon (zero-copy sends)
 *   server_sockmode.c   socket mode: frames in, tails out, receive budget
 *   server_loop.c       the loops: the poller, waiting, spinning, dispatch
 *   server_park.c       a loop's active set: parking idle peers, notices
 *   server_monitor.c    a monitor's snapshot (ringipc-stat)
 *   stats.c             the counters' public calls
 *
 * Three kinds of object:
 *
 *   ripc_server      listener, options, the RCU tables, 1..n loops
 *   struct loop      one dispatch thread's world: a poller (doorbells,
 *                    control sockets; loop 0 also the listener) and the list
 *                    of peers whose inbound ring it alone consumes
 *   ripc_peer        one worker: its channel (two rings + doorbells), its
 *                    control socket, a send lock for outbound producers
 *
 * Peer lifetime (references; rings unmapped under the send lock once
 * P_DEAD) and closing: docs/design.md, Threads and ownership. Atomic pairs
 * are labelled where they are used: C1/C2 and D1..D3 (close), Q1/Q2 (the
 * lookup's stop flag), R1/R2 (references), H1/H2 (hand-over), W1/W2
 * (senders waiting for room), V1/V2 (p->watch; P1, parking a socket-mode
 * peer, pairs with V1), N1/N2 (budget waiters),
 * O1/O2 (a parked peer's notice), J1/J2 (the send budget's line), A1 and
 * Z1/Z2 (the peer's state, below), S1..S6 (the send lock's bias), X1/X2
 * (the removal count that keeps a sender's cached peer valid,
 * tables_urcu.c).
 *
 * Contracts below name the calling thread: "the owning loop" is the thread
 * running the loop p->loop (or close, once no loop runs); "loop 0" is the
 * thread that polls or runs loop 0, which alone accepts and handshakes.
 */
#ifndef RIPC_SRC_SERVER_INTERNAL_H
#define RIPC_SRC_SERVER_INTERNAL_H

#include <errno.h>

#include "src/chan.h"
#include "src/frames.h"
#include "src/guard.h"
#include "src/internal.h"
#include "src/platform.h"
#include "src/tables.h"

enum { EV_LISTEN = 1, EV_STOP, EV_SOCK, EV_BELL, EV_WAKE };
#define MAX_LOOPS 64
/*
 * A peer's state (ripc_peer.state):
 *
 *   P_HANDSHAKE  loop 0 reads its HELLO
 *   P_ACTIVE     in the table: messages flow
 *   P_ENDING     its connection ended (end_reason says how): the owning
 *                loop drains its ring, then drops it with end_reason
 *   P_BROKEN     our outbound channel to it is broken for good: the owning
 *                loop drops it (-EPROTO) without draining
 *   P_DEAD       dropped: rings and socket gone, only references remain
 *
 * Who moves it (every store and CAS seq_cst):
 *
 *   from            to         by                          how
 *   HANDSHAKE       ACTIVE     loop 0, before the insert   store (A1)
 *   ACTIVE          HANDSHAKE  loop 0, the insert failed   store (nobody found p)
 *   ACTIVE          ENDING     the owning loop             CAS, ripc__peer_end
 *   ACTIVE, ENDING  BROKEN     a sender (send lock held),  CAS, ripc__peer_break
 *                              or the owning loop
 *   any             DEAD       ripc__peer_drop: the owning store, send lock
 *                              loop, or close (no loop     held (Z1)
 *                              runs)
 *
 * BROKEN wins over ENDING, never the reverse (ripc__peer_end moves only
 * from ACTIVE), and neither CAS moves a DEAD peer. A1: the table insert
 * publishes p (T1 in tables_urcu.c), so whoever finds p there sees at
 * least ACTIVE. Z1/Z2: senders load the state under the send lock (Z2:
 * send_mu, or a sender's bias, which a drop withdraws before Z1), so one
 * that sees anything but DEAD may touch the rings until it lets go.
 * The owning loop reads ENDING and BROKEN without the lock: flags, no data
 * rides on them; a sender's BROKEN comes with a ripc__loop_wake.
 */
enum { P_HANDSHAKE = 0, P_ACTIVE, P_ENDING, P_BROKEN, P_DEAD };

/* ripc_peer.lent: no loan; a loan open; its commit under way (socket mode
 * may let go of the send lock meanwhile: a second commit or an abandon is
 * -EBUSY then). */
enum { L_NONE = 0, L_OPEN, L_COMMITTING };

/* Threads that may hold a peer's bias over its life (more fall back to the
 * mutex), and the sends in a row through the mutex that earn it. */
#define RIPC_BIAS_SLOTS  4
#define RIPC_BIAS_STREAK 256

struct evsrc {
    int kind;
    struct ripc_peer *p;
};

struct loop;

struct ripc_peer {
    _Atomic int refs;
    ripc_server *srv;
    uint32_t id;
    int32_t pid;
    uint32_t uid;
    _Atomic int state; /* P_*, above */
    int end_reason;    /* P_ENDING: for `left`; the owning loop only */
    int sock;
    int xport;   /* RIPC_XPORT_SHM or RIPC_XPORT_SOCKET */
    ripc__rx rx; /* socket mode: frames read ahead */
    /* socket mode, owning loop only: the receive buffer is full and may not
     * grow (budget); the socket is not read until that changes */
    int rx_blocked;
    /* shm, owning loop only: a batch handler reads the records from ring
     * position rx_hold on (server_batch.c); a send that publishes our
     * consumer index from inside it publishes up to there only */
    int rx_held;
    uint64_t rx_hold;
    /* socket mode: the events p's socket is watched for (W_* bits and a
     * generation, server_sockmode.c: watch_set) */
    _Atomic unsigned watch;
    ripc__pace rx_pace; /* the frame being read holds budget: its progress */
    /* socket mode, under the send lock: a frame begun and not yet written
     * whole; written before anything else. Its sender writes it while it
     * waits (the payload is the sender's then); after the sender's deadline
     * it is a copy, written by the next sender or by the owning loop when
     * the socket turns writable. */
    ripc__frame_out tail;
    uint64_t tail_seq;    /* frames begun: a sender knows its own */
    size_t tail_charged;  /* of the tail's bytes, taken from the server's tx_budget */
    ripc__pace tail_pace; /* the owning loop's, under the send lock */
    ripc__chan ch;
    struct loop *loop;
    struct ripc_peer *in_next; /* on a loop's hand-over list (its in_mu) */
    struct evsrc ev_sock, ev_bell;
    pthread_mutex_t send_mu;
    /* The send lock's fast path (server_send.c, "The bias"): the thread
     * whose slot this is holds the lock while its slot's flag is up, without
     * send_mu. Granted and revoked under send_mu; slots are never reused
     * while p lives (a thread that read a stale bias may still write its
     * own slot's flag). */
    struct ripc__guard_slot *_Atomic bias;
    struct ripc__guard_slot bias_slots[RIPC_BIAS_SLOTS];
    int bias_nslots;      /* slots handed out, under send_mu */
    pthread_t bias_cand;  /* under send_mu: the thread of the last slow-path sends */
    unsigned bias_streak; /* ...and how many in a row */
    pthread_cond_t space_cv;
    _Atomic int space_waiters;
    _Atomic int reply_stalled; /* a reply timed out: later ones do not wait */
    /* A loan (server_loan.c): L_* above, stored under the send lock (read
     * there or under the bias). While one is open it holds a reference on
     * p, nothing else is produced to p (other senders wait on space_cv;
     * p's own loop and the loan's thread get -EBUSY), and a drop leaves
     * p's rings and large buffers mapped for its end (loan_orphan). */
    _Atomic int lent;
    uint64_t loan_cap;       /* payload bytes reserved */
    int loan_timeout_ms;     /* socket mode: how long commit waits for the socket */
    pthread_t loan_tid;      /* the thread that reserved */
    ripc__loan loan;         /* shared memory: the reservation in the ring */
    unsigned char *loan_buf; /* socket mode: the library's buffer lent */
    size_t loan_buf_cap;
    /* Loans committed through the bias; written by the bias holder alone
     * (a relaxed load and store), read by ripc__peer_loans_fast. */
    _Atomic uint64_t loans_fast;
    /* Dropped while lent (under the send lock): 1 on s->orphans (so that
     * commit finds p once the table does not), 2 also with the unmap left
     * to the loan's end (ripc__peer_drop ran past it); loan_punch: the
     * large buffers' pages go too at that end (the drop's reason). */
    int loan_orphan;
    int loan_punch;
    struct ripc_peer *orphan_prev, *orphan_next; /* on s->orphans, under orphan_mu */
    char name[RIPC_NAME_MAX + 1];
    char reason[RIPC_REASON_MAX + 1];
    /* handshake */
    uint8_t hs[RIPC_FRAME_HDR + RIPC_HANDSHAKE_MAX];
    size_t hs_len, hs_need;
    uint64_t hs_deadline; /* a HELLO not complete by then: dropped */
    /* all peers, for close */
    struct ripc_peer *all_prev, *all_next;
    /* Its place in its loop's list, and whether it is parked there (the
     * loop's active set, server_park.c): the owning loop only. */
    size_t slot;
    int parked;
    unsigned idle_sweeps;  /* sweeps since it last had a message */
    _Atomic int notice;    /* another thread wants the owning loop to look at it */
    uint64_t connected_ns; /* wall clock at the join (before A1 publishes p) */
};

/*
 * When a loop stopped watching its sockets (left, 0 while it watches) and
 * when it last came back after an absence longer than RIPC_AWAY_MS (back):
 * a worker is not blamed for bytes that did not move while its loop was
 * away (ripc__pace_late). One for reading (the loop's waits), one for
 * writing tails (those waits, and a dispatch thread waiting for send
 * budget, which writes its loop's tails). Coarse clock; the loop's thread.
 */
struct presence {
    uint64_t left, back;
};
#define RIPC_AWAY_MS 50

static inline void ripc__presence_arrive(struct presence *pr, uint64_t now)
{
    if (pr->left && now - pr->left > RIPC_AWAY_MS * 1000000ull)
        pr->back = now;
    pr->left = 0;
}

static inline void ripc__presence_leave(struct presence *pr, uint64_t now)
{
    pr->left = now;
}

/* For ripc__pace_late, from outside a wait: a loop away for long now is
 * coming back now. */
static inline uint64_t ripc__presence_back(const struct presence *pr, uint64_t now)
{
    return pr->left && now - pr->left > RIPC_AWAY_MS * 1000000ull ? now : pr->back;
}

struct loop {
    ripc_server *s;
    int idx;
    ripc__poller *pl;
    ripc__wake wake; /* new peers were handed over */
    struct evsrc ev_wake;
    /* Peers this loop consumes (loop thread only): [0, nact) the active
     * set, looked at every pass; [nact, n) parked: found empty for a while,
     * their rings armed, brought back by their doorbell (server_park.c). */
    struct ripc_peer **peers;
    size_t n, nact, cap;
    uint64_t next_sweep;  /* coarse clock: next look for peers to park */
    unsigned busy_rounds; /* rounds that found messages, since the last look */
    _Atomic int notice;   /* some peer's notice is set (ripc__loop_notice) */
    /* Hand-over of new peers from loop 0: a list through ripc_peer.in_next
     * (nothing to allocate, so a hand-over cannot fail), oldest first. */
    pthread_mutex_t in_mu;
    struct ripc_peer *in_head, **in_tail;
    _Atomic int has_incoming;
    _Atomic unsigned count; /* peers owned, for placement (any thread reads) */
    _Atomic int active;     /* its thread is inside loop_round: someone reads the bells */
    pthread_t th;
    uint64_t next_look; /* busy loop: next non-blocking look at sockets */
    int rx_retry;       /* receive budget was given back: blocked peers try again */
    struct presence rx_here, tx_here;
    unsigned hs_evict; /* handshakes to evict once this look's events are handled */
    /* handler cache: valid while the table generation is unchanged */
    uint64_t cache_gen;
    int cache_type;
    ripc_handler cache_fn;
    ripc_batch_handler cache_bfn; /* a batch handler: cache_fn is NULL */
    size_t cache_max;             /* its max_batch */
    void *cache_arg;
    ripc_msg *batch; /* RIPC_LOOP_BATCH of them: a batch handler's run */
};

/* The messages a dispatch round takes from one worker at most. */
#define RIPC_LOOP_BATCH 256

/* server_batch.c, L's thread. m (peeked and counted, the message of p's
 * ring or frames that L's handler cache resolved to a batch handler) and
 * the run that follows it, at most `budget` messages, go to that handler
 * in one call, and are released after it. The count dispatched (>= 1);
 * the ring's: *rc is 0, or the release's error (-EPROTO). */
int ripc__batch_ring(struct loop *L, struct ripc_peer *p, const ripc_msg *m, int budget, int *rc);
int ripc__batch_frames(struct loop *L, struct ripc_peer *p, const ripc_msg *m, int budget);

/*
 * Senders waiting for the send budget (server_sockmode.c), in the order
 * they came: only the first may take budget, and one that comes while
 * others wait goes behind them. Lock order: a peer's send lock, then mu.
 */
struct tx_waiter {
    struct tx_waiter *next;
    size_t charge; /* what it waits for */
    int in_line;
};

struct tx_line {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* monotonic: the first's frame fits, a peer dropped, close */
    struct tx_waiter *head, **tail;
    _Atomic unsigned queued; /* in line: a giver with none does not lock mu */
};

/* ripc_server_stats' reasons, in its order. */
enum {
    RIPC__LEFT_BYE,
    RIPC__LEFT_PIPE,
    RIPC__LEFT_PROTO,
    RIPC__LEFT_TIMEDOUT,
    RIPC__LEFT_CANCELED,
    RIPC__LEFT_OTHER,
    RIPC__LEFT_N
};
enum {
    RIPC__REFUSED_VERSION,
    RIPC__REFUSED_CREDENTIALS,
    RIPC__REFUSED_LIMITS,
    RIPC__REFUSED_TRANSPORT,
    RIPC__REFUSED_RESOURCES,
    RIPC__REFUSED_MALFORMED,
    RIPC__HS_HANGUP,
    RIPC__HS_TIMEOUT,
    RIPC__HS_EVICTED,
    RIPC__REFUSED_N
};

struct ripc_server {
    ripc_options opt;
    ripc__addr addr;
    int lfd;
    ripc__wake stop; /* signalled by ripc_server_stop; in every loop's poller */
    ripc__tables *t;
    struct loop *loops;
    unsigned nloops;
    void (*joined)(ripc_peer *, void *);
    void (*left)(ripc_peer *, int, void *);
    void *cb_arg;
    _Atomic uint32_t next_id;
    uint64_t serial; /* unique per server opened in this process: senders' caches */
    _Atomic int stopping;
    _Atomic unsigned npeers;
    _Atomic unsigned nparked; /* peers parked in their loops (server_park.c) */
    pthread_mutex_t all_mu;
    struct ripc_peer *all;
    struct evsrc ev_listen, ev_stop;
    int worker_db_caps;            /* doorbell kinds we can make for workers */
    int master_db;                 /* what we sleep on */
    _Atomic uint64_t dropped;      /* messages without a handler */
    ripc__large_budget large_idle; /* idle large-message buffers, all workers */
    ripc__rx_budget rx_budget;     /* socket-mode receive buffers beyond their base */
    ripc__rx_budget tx_budget;     /* socket-mode frames being sent beyond the same base */
    struct tx_line tx_line;        /* senders waiting for tx_budget */
    unsigned n_hs;                 /* connections still in the handshake (loop 0) */
    int spare_fd;                  /* held in reserve to refuse workers when out of fds */
    uint64_t listen_paused;        /* listener out of the poller until then (0: in) */
    /* close() from any thread: see ripc_server_close */
    _Atomic int closing;           /* close has begun: waits for room end */
    _Atomic int misuse;            /* close from a dispatch thread: run/poll say -EDEADLK */
    _Atomic unsigned users;        /* run() and poll() calls under way */
    _Atomic unsigned peer_structs; /* ripc_peer structs not yet freed */
    /* Peers dropped while lent, until their loan ends (server_loan.c).
     * Lock order: a peer's send lock, then orphan_mu. */
    pthread_mutex_t orphan_mu;
    struct ripc_peer *orphans;
    /* Counters of ripc_server_stats: joins, leaves and refusals, counted
     * by whichever loop makes them (a relaxed fetch_add: once per
     * connection, not per message). */
    struct {
        uint64_t opened_ns;
        _Atomic uint64_t joined;
        _Atomic uint64_t left[RIPC__LEFT_N];
        _Atomic uint64_t refused[RIPC__REFUSED_N];
        _Atomic uint64_t monitors; /* snapshots sent (server_monitor.c) */
    } st;
};

/* Count one of the server's events (the enums above). Any thread. */
static inline void ripc__server_count(_Atomic uint64_t *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

/* The loop this thread is inside (loop_round), or NULL: a sender on p's
 * own loop must not wait for that loop. Defined in server_loop.c; hidden
 * and local-dynamic, so that it is never resolved through another module's
 * TLS. */
extern _Thread_local struct loop *ripc__tls_loop
    __attribute__((visibility("hidden"), tls_model("local-dynamic")));

/* Watch fd for reading in L's poller, reporting ev. 0 or -errno. */
static inline int ripc__loop_watch(struct loop *L, int fd, struct evsrc *ev)
{
    return ripc__poller_add(L->pl, fd, RIPC_POLL_IN, ev);
}

/* ---- server_peer.c ---- */

/* A peer for a connection that starts its handshake, on the list of all
 * peers, holding one reference (the handshake's, then its loop's). Takes fd,
 * also on failure. Loop 0. NULL: out of memory. */
struct ripc_peer *ripc__peer_new(ripc_server *s, int fd);
/* Take a reference unless the count is already 0 (the table's lookups,
 * any thread, inside its read-side section). 1: taken. */
int ripc__peer_try_ref(void *p);
/* Frees p and everything it still holds; from the last ripc__peer_unref. */
void ripc__peer_free(struct ripc_peer *p);

/* Drop a reference, any thread; the last one frees p (and is the last
 * touch of p->srv by whoever held it: close waits for peer_structs). */
static inline void ripc__peer_unref(void *pp)
{
    struct ripc_peer *p = pp;
    /* R2: acq_rel, pairs with R1 (ripc__peer_try_ref) and with every other
     * holder's R2: all their accesses to p happen before the free. */
    if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1)
        ripc__peer_free(p);
}

/* Take p's send lock to exclude every sender: send_mu, then the bias
 * withdrawn (waiting for its holder to leave the fast path). keep_own 1:
 * a sender's own bias stays (it is here, not in the fast path); 0: the bias
 * goes whoever holds it (a drop, the loop adopting p). Any thread, no lock
 * held; ripc__peer_revoke_bias alone after taking send_mu otherwise
 * (trylock, a condition wait). Unlock with pthread_mutex_unlock. */
void ripc__peer_lock(struct ripc_peer *p, int keep_own);
void ripc__peer_revoke_bias(struct ripc_peer *p, int keep_own);

/* End p: off its loop L (NULL: in no loop's list), P_DEAD under the send
 * lock (senders waiting are woken and see it), off the table with `left`
 * called if it was active, its rings, segment and socket gone, and the
 * reference of its loop (or handshake) dropped. The owning loop, or close
 * once no loop runs; no lock held. */
void ripc__peer_drop(struct loop *L, struct ripc_peer *p, int reason);
/* p's outbound channel is broken for good: flag it for the owning loop,
 * which alone may drop p (-EPROTO), and wake that loop. A sender with the
 * send lock held, or the owning loop (which needs no lock: it is the thread
 * that drops p). */
void ripc__peer_break(struct ripc_peer *p);
/* p's connection ended (reason: RIPC_LEFT_BYE or -errno): P_ENDING, so
 * that the owning loop drains its ring and then drops it with the reason.
 * The first reason stays, but a goodbye wins over the end of stream that
 * follows it. The owning loop. */
void ripc__peer_end(struct ripc_peer *p, int reason);

/* Has p joined (in the table, `joined` called) and not been dropped? Any
 * thread; st from atomic_load(&p->state). */
static inline int ripc__peer_joined(int st)
{
    return st == P_ACTIVE || st == P_ENDING || st == P_BROKEN;
}

/* Is a drop of p due (it ended, broke, or its segment faulted)? The owning
 * loop, before it sleeps or parks p. */
static inline int ripc__peer_drop_due(struct ripc_peer *p)
{
    return atomic_load(&p->state) != P_ACTIVE || ripc__segment_faulted(&p->ch.seg);
}

/* ---- server_send.c ---- */

/* An error reply to request id (src/proto.h, "error replies"); err is a
 * negative errno. wait 1: as a reply waits (the reply timeout, unless p's
 * replies stall); 0: not at all, neither for the send lock nor for room
 * (-EAGAIN), and the stall mark is left as it is. Any thread, no lock held.
 * 0 or a send's error. */
int ripc__reply_error(struct ripc_peer *p, uint64_t id, int err, const char *text, int wait);

/* The peer with this id, with a reference: -ENOENT when there is none,
 * -ECANCELED once close has begun. Any thread, no lock held. */
int ripc__send_lookup(ripc_server *s, uint32_t id, struct ripc_peer **out);
/* Take p's send lock (holding a reference on p), waiting for it until the
 * deadline (*deadline 0: read from the clock when the lock is taken).
 * 0, or -EAGAIN / -errno (not locked). */
int ripc__send_lock(struct ripc_peer *p, int timeout_ms, uint64_t *deadline);
/* Send lock held, after a try at p's outbound ring that answered rc (and
 * *wf): 1 to try again (the wait for room is over: look at p's state
 * first, the lock was let go), else what to return: rc, -EPROTO (the
 * channel broken for good, flagged for p's loop), or the wait's -errno
 * (-ETIMEDOUT, -EPIPE: p dropped, -ECANCELED). */
int ripc__send_after_try(struct ripc_peer *p, int rc, const ripc__waitfor *wf, int timeout_ms,
                         uint64_t *deadline);
/* Send lock held, p lent: wait for the loan's end. 0 (look again),
 * -EAGAIN (timeout 0), -ETIMEDOUT, -EBUSY (this thread is p's loop or
 * holds the loan: it would wait for itself), -ECANCELED. */
int ripc__send_wait_unlent(struct ripc_peer *p, int timeout_ms, uint64_t *deadline);
/* A send's -EPIPE that close caused is -ECANCELED. */
int ripc__send_cut_by_close(struct ripc_peer *p, int rc);
/* Loans of inline records by the thread that holds p's bias, without the
 * send lock: 0 (done), 1 (take the slow way), or (commit) -EPROTO: the
 * worker cut the segment under it (p broken, the loan over). Any thread,
 * no lock held. */
int ripc__loan_fast_reserve(ripc_server *s, uint32_t id, uint64_t len, void **buf, int timeout_ms);
int ripc__loan_fast_commit(ripc_server *s, uint32_t id, uint16_t type, uint64_t len);
/* How many loans to peer id were committed through the bias (0 when there
 * is no such peer): lets a test tell that the fast path runs. */
uint64_t ripc__peer_loans_fast(ripc_server *s, uint32_t id);
/* Send lock held, after a loan committed through it: count it towards this
 * thread's bias, as a send is counted. */
void ripc__send_bias_earn(struct ripc_peer *p);

/* ---- server_loan.c ---- */

/* Send lock held, p P_DEAD: p was lent, its loan goes on (the rings stay
 * mapped until it ends): put p on s->orphans. From ripc__peer_drop. */
void ripc__loan_orphan(struct ripc_peer *p);
/* Close, once every peer was dropped and no loop runs: end the loans
 * still open (their buffers go: include/ringipc/ringipc.h, close). */
void ripc__loan_end_all(ripc_server *s);

/* ---- server_handshake.c ---- */

/* The listener is readable: accept what waits (a bounded number), each a
 * new handshake. Loop 0. */
void ripc__handshake_accept(struct loop *L);
/* A handshaking peer's socket is readable: read its HELLO, and once it is
 * whole answer it (p active, or dropped). Loop 0. */
void ripc__handshake_readable(struct loop *L, struct ripc_peer *p);
/* After every wait on loop 0, once its events are handled: the handshakes
 * ripc__handshake_accept chose to evict are dropped (oldest first), so are
 * handshakes past their deadline, and a listener paused for want of
 * descriptors comes back. Loop 0 (any
 * other L: nothing). */
void ripc__handshake_sweep(struct loop *L);

/* ---- server_monitor.c, stats.c ---- */

/* Answer a monitor's HELLO on p (still handshaking, checked and allowed):
 * one SNAPSHOT frame listing the workers from id `from` up, written
 * without waiting. Loop 0. 0 when it went whole, or -errno (the caller
 * drops p either way). */
int ripc__monitor_answer(struct ripc_peer *p, uint64_t from);
/* p's counters into *o (zeroed first), as ripc_server_peer_stats gives
 * them; takes p's send lock for a moment in shared-memory mode. The caller
 * holds a reference on p. 0, or -ENOENT when p was dropped meanwhile. */
int ripc__peer_stats_fill(struct ripc_peer *p, ripc_peer_stats_t *o);

/* ---- server_loop.c ---- */

/* A loop's poller and wake handle, with the server's stop handle in it. Open (loop 0) or run (the
 * others), no loop thread running. 0 or -errno (ripc__loop_fini cleans up either way). */
int ripc__loop_init(ripc_server *s, struct loop *L, int idx);
/* Close and free what ripc__loop_init made, and L's lists. */
void ripc__loop_fini(struct loop *L);
/* ripc_server_poll's rounds of loop 0: until a message was dispatched or
 * timeout_ms passed (a pending stop ends it sooner). The caller counts
 * itself in users. The count dispatched, or 0. */
int ripc__loop_poll(ripc_server *s, int timeout_ms);
/* ripc_server_run: loops 1..threads-1 on threads of their own, loop 0 on
 * the caller's, until ripc_server_stop; then every peer back on loop 0.
 * The caller counts itself in users. 0 or -EMFILE. */
int ripc__loop_run(ripc_server *s, unsigned threads);

/* Wake L's thread from its poller wait. Any thread. */
void ripc__loop_wake(struct loop *L);
/* An active peer goes to the least loaded loop: adopted at once when that
 * is L, else handed over (L's thread, loop 0; the hand-over itself cannot
 * fail). A loop that cannot adopt p (no memory for its list, or its poller
 * refuses p's descriptors) drops it there and then with that error: its
 * worker sees the connection end, and `left`, as `joined` was called,
 * gets the error. */
void ripc__loop_place(struct loop *L, struct ripc_peer *p);

/* Take p off L: its list and its poller (socket and doorbell). L's own
 * thread, or any thread while L's does not run (run's end, close). */
void ripc__loop_forget(struct loop *L, struct ripc_peer *p);

/* ---- server_park.c ----
 *
 * A loop's list of peers, L->peers: the active set [0, L->nact), looked at
 * by every pass, then the parked peers [nact, n), their rings armed, each
 * peer at p->slot. All of it belongs to L's thread (or to any thread while
 * L's does not run), but for the notices other threads raise (O1/O2).
 * s->nparked follows every move in or out of the parked part (relaxed: a
 * count for ripc_server_parked_count, nothing rides on it).
 */

/* Append p to L's list, active. L's own thread, or any thread while L's
 * does not run. 0 or -ENOMEM (the list as it was). */
int ripc__park_list_add(struct loop *L, struct ripc_peer *p);
/* Take the peer at slot i off L's list, active or parked (the two parts
 * stay apart; other peers' slots may change). The same threads. */
void ripc__park_list_del(struct loop *L, size_t i);
/* At most once per coarse tick (else it returns at once): park the active
 * shm peers whose rings stayed empty over a few sweeps. Each ring is armed
 * (E1), one remote fence covers all of them, and each is re-checked (E2):
 * a ring with data, or whose segment faulted, stays active. L's thread,
 * before it looks at its poller (loop_wait). */
void ripc__park_sweep(struct loop *L);
/* p, parked on L, back in the active set, its ring's flag lowered. L's
 * thread; through ripc__park_readmit. */
void ripc__park_unpark(struct loop *L, struct ripc_peer *p);
/* p back in L's active set, when it is parked there (else nothing): the
 * dispatch looks at its ring again, its worker need not ring. L's thread.
 * Inline: the poller's every event for p passes here. */
static inline void ripc__park_readmit(struct loop *L, struct ripc_peer *p)
{
    if (p->parked && p->loop == L)
        ripc__park_unpark(L, p);
}
/* The owning loop must look at p again (it may be parked, its ring armed):
 * p broke, someone else drained its doorbell, or a sender left p a tail
 * (socket mode). Any thread; p's own loop
 * brings p back at once, another thread flags it (O1) and wakes the loop. */
void ripc__loop_notice(struct ripc_peer *p);
/* Bring back the parked peers someone flagged (ripc__loop_notice; O2 reads
 * L's flag), and those whose drop is due: one walk of the parked part, when
 * L's flag is up (else one relaxed load). L's thread, around its waits. */
void ripc__park_take_notices(struct loop *L);

/* ---- server_sockmode.c ---- */

/* The send budget's line: with the server (open; close, once no sender
 * is left). */
void ripc__sockmode_line_init(struct tx_line *q);
void ripc__sockmode_line_fini(struct tx_line *q);
/* n bytes of send budget go back; the first sender in line is woken when
 * its frame now fits. Any thread (a send lock may be held). */
void ripc__sockmode_budget_give(ripc_server *s, size_t n);
/* Every sender waiting in line for the send budget looks again: a peer
 * was dropped (its senders end, -EPIPE) or close has begun (-ECANCELED).
 * Any thread; no send lock held. */
void ripc__sockmode_budget_wake(ripc_server *s);

/* p's receive buffer goes now, with the budget it holds; blocked workers
 * on L (NULL: none) look again at once. The owning loop, from a drop. */
void ripc__sockmode_release(struct loop *L, struct ripc_peer *p);
/* One frame to p, after the rest of any earlier one: a frame over a
 * receive buffer's base first takes its size from the send budget (waiting
 * for it in line until deadline; a dispatch thread writes its own loop's
 * tails meanwhile; nothing written then: -ETIMEDOUT). A frame whose copy would
 * not be done by the deadline is not begun (-ETIMEDOUT), unless nowait (a
 * send that never waits for the worker, whose copy is its own work). The
 * frame is written as the worker reads until the deadline (p's own loop
 * with the lock held; any other thread without it, in slices), less the
 * time to copy what is left, which then becomes p's tail. Send lock held.
 * 0, -ETIMEDOUT, -EPIPE (p dropped, or hung up), -ENOMEM (the rest could
 * not be kept: p's stream broken), -ECANCELED (close has begun). */
int ripc__sockmode_send(struct ripc_peer *p, const ripc__frame *f, const void *data,
                        uint64_t deadline, int nowait);
/* Writability of p's socket watched (a tail waits) or not; readability as the
 * owning loop wants it (not while p's receive buffer is blocked). Send lock
 * held, or the owning loop. */
void ripc__sockmode_watch(struct ripc_peer *p, int on);
/* p's socket is writable: write its tail. The owning loop, no lock held. */
void ripc__sockmode_writable(struct ripc_peer *p);
/* p's socket is readable (or hung up: `events` from the poller): read ahead,
 * within the receive budget (a full buffer is not read until it has room).
 * The owning loop. */
void ripc__sockmode_readable(struct loop *L, struct ripc_peer *p, unsigned events);
/* After p's frames were dispatched: memory back, p's socket watched again
 * when its buffer has room, and p dropped (-ETIMEDOUT) when it holds budget
 * others wait for with a frame that does not move on (being read, or being
 * sent to it: ripc__pace_late). The owning loop. 1: p dropped. */
int ripc__sockmode_after_dispatch(struct loop *L, struct ripc_peer *p);
/* May p, idle, be parked (server_park.c)? Nothing is buffered from it,
 * its receive buffer holds no budget and is not blocked, and no tail waits
 * for its socket (a sender that leaves one raises a notice after it shows
 * here). The owning loop. */
int ripc__sockmode_parkable(const struct ripc_peer *p);

#endif
