/* SPDX-License-Identifier: MIT */
/*
 * The worker side: send and receive through the rings (or the socket in
 * socket mode), and close. Connecting, HELLO and mapping what WELCOME hands
 * over are in client_open.c. The public calls' contracts are in ringipc.h.
 *
 * Context: everything here runs on the application thread that is inside
 * the client's guard (GUARDED below), unless its comment says otherwise; no
 * lock is held. Messages returned are lent until the next call.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "src/chan.h"
#include "src/client_internal.h"
#include "src/frames.h"
#include "src/internal.h"
#include "src/outq.h"

/* A message taken in (handed out, stashed, or dropped as a late reply):
 * counted once, by the client's thread (src/stats.h). */
static inline void count_in(ripc_client *c, const ripc_msg *m)
{
    ripc__stat_msg(&c->ch.st.in, m->kind, m->len);
}

/* The message last returned by peek_msg is done with. Shared memory:
 * publishes the consumer index and wakes a master waiting for room. */
static void release_msg(ripc_client *c)
{
    if (c->xport == RIPC_XPORT_SHM)
        ripc__chan_release(&c->ch, 1);
    /* socket mode: the frame left the buffer when it was peeked */
}

static void stash_free(ripc_client *c, struct stash *s)
{
    c->q_bytes -= (size_t)s->m.len;
    free(s);
}

/* Take back what the last recv / request lent the caller. */
static void release_lent(ripc_client *c)
{
    if (c->held) {
        release_msg(c);
        c->held = 0;
    }
    if (c->lent) {
        stash_free(c, c->lent);
        c->lent = NULL;
    }
}

/* The control socket needs attention: large-message frames, BYE or EOF.
 * 0 (BYE or EOF set peer_gone: the ring is drained first) or -EPROTO. */
static int handle_sock(ripc_client *c)
{
    int rc = ripc__large_read(&c->ch.lg, c->sock, c->ch.max_message);
    if (rc == 0)
        return 0;
    c->peer_gone = 1; /* BYE or EOF: drain the ring, then -EPIPE */
    return rc == -EPROTO ? rc : 0;
}

static int send_kind(ripc_client *c, uint16_t type, uint8_t kind, uint64_t id, const void *data,
                     uint64_t len, uint64_t deadline, int nowait);

/* Socket mode: the next MSG frame, reading what the socket has if needed,
 * without waiting. *at (if not NULL): where it began in the receive buffer,
 * to put it back (c->rx.start = *at) before anything else is read. 0 (*m
 * points into the buffer until the next read), -EAGAIN (peer_gone set on BYE
 * or EOF), -EPROTO, -ENOMEM, or a read error. */
static int sock_peek(ripc_client *c, ripc_msg *m, size_t *at)
{
    for (;;) {
        ripc__frame f;
        const uint8_t *pl;
        size_t start = c->rx.start;
        int rc = ripc__rx_next(&c->rx, &f, &pl, c->ch.max_message);
        if (rc < 0)
            return rc == -ENOMEM ? rc : -EPROTO;
        if (rc == 0) {
            long n = c->peer_gone ? 0 : ripc__rx_fill(&c->rx, c->sock);
            if (n > 0)
                continue;
            if (n == -EPIPE)
                c->peer_gone = 1;
            else if (n < 0)
                return (int)n;
            return -EAGAIN;
        }
        if (f.ftype == RIPC_FRAME_BYE) {
            c->peer_gone = 1;
            continue;
        }
        if (f.ftype != RIPC_FRAME_MSG)
            return -EPROTO;
        m->type = f.type;
        m->kind = f.kind;
        m->id = f.id;
        m->data = pl;
        m->len = f.len;
        if (at)
            *at = start;
        return 0;
    }
}

/* The next message, not waiting: 0 (lent until release_msg), -EAGAIN,
 * -EPROTO, -ENOMEM. */
static int peek_msg(ripc_client *c, ripc_msg *m)
{
    return c->xport == RIPC_XPORT_SHM ? ripc__chan_peek(&c->ch, m) : sock_peek(c, m, NULL);
}

/* Wait for something to read: 0 (look again), -ETIMEDOUT, or -errno. */
static int wait_msg(ripc_client *c, uint64_t deadline)
{
    if (c->xport == RIPC_XPORT_SHM) {
        int rc = ripc__chan_wait(&c->ch, NULL, deadline);
        return rc == 1 ? handle_sock(c) : rc;
    }
    int n = ripc__sock_wait(c->sock, RIPC_SOCK_IN, deadline);
    if (n == 0)
        return -ETIMEDOUT;
    return n < 0 ? n : 0;
}

/*
 * One thread at a time per client (src/guard.h): a second thread that comes
 * in while one is inside send / request / recv gets -EBUSY and changes
 * nothing (its request is not sent, no reply or message is taken from the
 * other).
 */
#define GUARDED(c, call)                                                                           \
    do {                                                                                           \
        ripc__guard_token tok_ = ripc__guard_enter(&(c)->guard);                                   \
        if (!tok_)                                                                                 \
            return -EBUSY;                                                                         \
        int rc_ = (call);                                                                          \
        if (__builtin_expect(rc_ == -EPROTO, 0))                                                   \
            ripc__stat_add(&(c)->ch.st.in.proto, 1);                                               \
        ripc__guard_leave(&(c)->guard, tok_);                                                      \
        return rc_;                                                                                \
    } while (0)

/* ripc_client_send inside the guard. A message that goes into the ring at
 * once costs no clock read: the deadline is read only for a wait. */
static int send_oneway(ripc_client *c, uint16_t type, const void *data, uint64_t len,
                       int timeout_ms)
{
    if (c->loan_open)
        return -EBUSY;
    if (c->xport == RIPC_XPORT_SHM && !c->peer_gone && len <= c->ch.max_inline) {
        ripc__waitfor w;
        int rc = ripc__chan_try_send(&c->ch, type, RIPC_KIND_ONEWAY, 0, data, len, &w);
        if (rc != -EAGAIN || timeout_ms == 0)
            return rc;
    }
    return send_kind(c, type, RIPC_KIND_ONEWAY, 0, data, len, ripc__deadline(timeout_ms),
                     timeout_ms == 0);
}

int ripc_client_send(ripc_client *c, uint16_t type, const void *data, uint64_t len, int timeout_ms)
{
    if (!c || (len && !data) || type >= RIPC_TYPE_RESERVED)
        return -EINVAL;
    GUARDED(c, send_oneway(c, type, data, len, timeout_ms));
}

static int stash_incoming(ripc_client *c);

/* A one-way socket-mode send that must wait takes what the master sent
 * into the stash this often (see stash_incoming). */
#define SEND_SLICE_NS 2000000u

/* Where the slice that begins now ends (requests: no slices). */
static uint64_t slice_end(uint64_t deadline, int slices)
{
    uint64_t now = ripc__now_ns();
    return slices && deadline > now && deadline - now > SEND_SLICE_NS ? now + SEND_SLICE_NS
                                                                      : deadline;
}

/* Socket mode, a frame that got -EAGAIN: ripc__outq_wait, then try again.
 * One-way sends wait in slices with stash_incoming between them; a request
 * waits in one piece. Calls only go down (client -> outq -> frames): see
 * docs/design.md, Socket mode. Returns what ripc__outq_try_send returns, or
 * -ETIMEDOUT / an error of the wait or of stash_incoming. */
__attribute__((noinline, cold)) static int send_socket_wait(ripc_client *c, const ripc__frame *f,
                                                            const void *data, uint64_t deadline,
                                                            int flags)
{
    int slices = !(flags & RIPC_OUTQ_NOW);
    uint64_t end = slice_end(deadline, slices);
    for (;;) {
        uint64_t t0 = ripc__now_ns();
        int rc = ripc__outq_wait(c->outq, end), again = RIPC_OUTQ_AGAIN;
        ripc__stat_add(&c->ch.st.out.waits, 1);
        ripc__stat_add(&c->ch.st.out.wait_ns, ripc__now_ns() - t0);
        if (rc == -ETIMEDOUT) {
            if (ripc__expired(deadline))
                return -ETIMEDOUT;
            int more = stash_incoming(c);
            if (more < 0)
                return more;
            end = slice_end(deadline, slices);
            again = 0; /* a new slice: the frame chooses its way afresh */
        } else if (rc < 0) {
            return rc;
        }
        rc = ripc__outq_try_send(c->outq, f, data, flags | again);
        if (rc != -EAGAIN)
            return rc;
    }
}

/* Socket mode send, out of line so that the shared-memory path of send_kind
 * stays small. 0 (written, queued, or its rest handed to the writer
 * thread), -EAGAIN (nowait), -ETIMEDOUT, -EMSGSIZE, -EPIPE (peer_gone set),
 * or another -errno. */
__attribute__((noinline)) static int send_socket(ripc_client *c, uint16_t type, uint8_t kind,
                                                 uint64_t id, const void *data, uint64_t len,
                                                 uint64_t deadline, int nowait)
{
    if (c->peer_gone)
        return -EPIPE;
    if (len > c->ch.max_message)
        return -EMSGSIZE;
    ripc__frame f = {.ftype = RIPC_FRAME_MSG, .kind = kind, .type = type, .id = id, .len = len};
    int flags = kind == RIPC_KIND_REQUEST ? RIPC_OUTQ_NOW : 0;
    /* Counted before the master can see it, taken back if it did not go. */
    ripc__stat_msg(&c->ch.st.out, kind, len);
    int rc = ripc__outq_try_send(c->outq, &f, data, flags);
    if (rc == -EAGAIN && !nowait)
        rc = send_socket_wait(c, &f, data, deadline, flags);
    if (rc == -EINPROGRESS) /* begun: finish it, or hand its rest on, by the deadline */
        rc = ripc__outq_finish(c->outq, deadline);
    if (rc == -EPIPE)
        c->peer_gone = 1;
    if (rc < 0)
        ripc__stat_unmsg(&c->ch.st.out, kind, len);
    return rc;
}

/* Keep a copy of the message just peeked for recv(), and release it from
 * the ring. Bounded (one ring's worth, plus one large message): -ENOBUFS,
 * and the message stays where it is. Never keep a large message's mapping:
 * once its marker is released the sender may refill that memfd. */
static int stash_push(ripc_client *c, const ripc_msg *m)
{
    if (c->q_bytes + m->len > c->q_cap)
        return -ENOBUFS;
    struct stash *s = malloc(sizeof *s + (size_t)m->len);
    if (!s)
        return -ENOMEM;
    s->next = NULL;
    s->m = *m;
    memcpy(s->data, m->data, (size_t)m->len);
    c->q_bytes += (size_t)m->len;
    count_in(c, m);
    if (c->q_tail)
        c->q_tail->next = s;
    else
        c->q_head = s;
    c->q_tail = s;
    release_msg(c);
    return 0;
}

/*
 * A send waits for room: take what the master sent meanwhile into the
 * stash, so that a master handler sending to us is not left waiting for us
 * (docs/design.md, Requests, replies and errors: "Both sides pushing").
 * Both transports (socket mode: the frames the socket has now). Returns 1
 * when the wait may also wake for data (more can be taken), 0 when not (the
 * stash is full, or the caller still holds a message from recv), -EPROTO or
 * a read error.
 */
__attribute__((noinline)) static int stash_incoming(ripc_client *c)
{
    if (c->held)
        return 0; /* shm: it pins the ring; socket: its payload is in the buffer */
    int sock = c->xport == RIPC_XPORT_SOCKET;
    for (;;) {
        ripc_msg m;
        size_t at = 0;
        int rc = sock ? sock_peek(c, &m, &at) : ripc__chan_peek(&c->ch, &m);
        if (rc == -EAGAIN)
            return 1;
        if (rc < 0)
            return rc == -ENOMEM ? 0 : rc;
        m.peer_id = 0;
        if (m.kind == RIPC_KIND_REPLY) {
            count_in(c, &m);
            ripc__stat_add(&c->ch.st.in.dropped, 1); /* no request waits: we are sending */
            release_msg(c);
            continue;
        }
        if (stash_push(c, &m) < 0) {
            /* Full (or no memory): wait for room only. The message stays
             * first in line: peeked in the ring, or put back in the
             * receive buffer (nothing was read since it was taken out). */
            if (sock)
                c->rx.start = at;
            return 0;
        }
    }
}

/* Shared memory: a send or a reserve got -EAGAIN for *w. Take what the
 * master sent meanwhile (stash_incoming), then wait until *w holds or
 * something else needs a look: 0 (try again), -ETIMEDOUT, -EPIPE, -EPROTO,
 * or another -errno. */
__attribute__((noinline)) static int wait_room(ripc_client *c, ripc__waitfor *w, uint64_t deadline)
{
    int more = stash_incoming(c);
    if (more < 0)
        return more;
    w->also_data = more;
    uint64_t t0 = ripc__now_ns();
    int rc = ripc__chan_wait(&c->ch, w, deadline);
    ripc__stat_add(&c->ch.st.out.waits, 1);
    ripc__stat_add(&c->ch.st.out.wait_ns, ripc__now_ns() - t0);
    return rc == 1 ? handle_sock(c) : rc;
}

/* Send one message, waiting for room until deadline (nowait: not at all).
 * 0, -EAGAIN (nowait), -ETIMEDOUT, -EMSGSIZE, -EPIPE (peer_gone set),
 * -EPROTO, -ENOMEM, or another -errno. */
static int send_kind(ripc_client *c, uint16_t type, uint8_t kind, uint64_t id, const void *data,
                     uint64_t len, uint64_t deadline, int nowait)
{
    if (c->xport == RIPC_XPORT_SOCKET)
        return send_socket(c, type, kind, id, data, len, deadline, nowait);
    for (;;) {
        if (c->peer_gone)
            return -EPIPE;
        ripc__waitfor w;
        int rc = ripc__chan_try_send(&c->ch, type, kind, id, data, len, &w);
        if (rc == -EPIPE)
            c->peer_gone = 1;
        if (rc != -EAGAIN)
            return rc;
        if (nowait)
            return -EAGAIN;
        if ((rc = wait_room(c, &w, deadline)) < 0)
            return rc;
    }
}

/* The messages of a batch, one by one, waiting for room until deadline
 * (nowait: not at all). Shared memory: inline records are published
 * quietly, the master's doorbell looked at before any wait and at the end.
 * Returns how many went, or the first failure's -errno when none did. */
static int send_batch(ripc_client *c, uint16_t type, const unsigned char *buf, const uint64_t *lens,
                      size_t n, uint64_t deadline, int nowait)
{
    int shm = c->xport == RIPC_XPORT_SHM, rc = 0;
    size_t i = 0, off = 0;
    for (; i < n; off += (size_t)lens[i], i++) {
        /* buf may be NULL when every message is empty: no offset from it then */
        const unsigned char *p = lens[i] ? buf + off : buf;
        if (!shm) {
            rc = send_socket(c, type, RIPC_KIND_ONEWAY, 0, p, lens[i], deadline, nowait);
            if (rc < 0)
                break;
            continue;
        }
        for (;;) {
            ripc__waitfor w;
            rc = c->peer_gone
                     ? -EPIPE
                     : ripc__chan_try_send_quiet(&c->ch, type, RIPC_KIND_ONEWAY, 0, p, lens[i], &w);
            if (rc == -EPIPE)
                c->peer_gone = 1;
            if (rc != -EAGAIN)
                break;
            ripc__chan_data_wake(&c->ch); /* the master may be asleep over a full ring */
            if (nowait || (rc = wait_room(c, &w, deadline)) < 0)
                break;
        }
        if (rc < 0)
            break;
    }
    if (shm)
        ripc__chan_data_wake(&c->ch);
    return i > 0 || rc == 0 ? (int)i : rc;
}

int ripc_client_send_batch(ripc_client *c, uint16_t type, const void *buf, const uint64_t *lens,
                           size_t n, int timeout_ms)
{
    if (!c || (n && !lens) || type >= RIPC_TYPE_RESERVED || n > INT_MAX)
        return -EINVAL;
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (lens[i] > c->ch.max_message)
            return -EMSGSIZE;
        if (total + lens[i] < total || total + lens[i] > SIZE_MAX)
            return -EINVAL;
        total += lens[i];
    }
    if (total && !buf)
        return -EINVAL;
    GUARDED(c, c->loan_open ? -EBUSY
                            : send_batch(c, type, buf, lens, n, ripc__deadline(timeout_ms),
                                         timeout_ms == 0));
}

/* The reply a request waits for has a reserved type: an error reply (its
 * code negated, its text kept for ripc_client_error), or the master broke
 * the protocol: -EPROTO, and the connection is done as after a bad frame
 * on the control socket (the ring is drained, then -EPIPE). */
__attribute__((noinline, cold)) static int error_reply(ripc_client *c, ripc_msg *m)
{
    uint32_t code = 0;
    int rc =
        m->type == RIPC_MSG_ERROR ? ripc__err_decode(m->data, m->len, &code, c->err_text) : -EPROTO;
    release_msg(c);
    *m = (ripc_msg){0};
    if (rc < 0) {
        c->err_text[0] = 0;
        c->peer_gone = 1;
        return rc;
    }
    c->err_code = -(int)code;
    return c->err_code;
}

/*
 * Next record from the ring or the stash. want_id != 0: a request waits for
 * the reply with that id; other messages go to the stash. Returns 0 with *m
 * filled (lent until the next call), an error reply's code (see
 * error_reply), -EAGAIN (nowait), -ETIMEDOUT, -EPIPE, -ENOBUFS (stash
 * full), -EPROTO, or another -errno.
 */
static int next_msg(ripc_client *c, ripc_msg *m, uint64_t want_id, uint64_t deadline, int nowait)
{
    release_lent(c);
    if (!want_id && c->q_head) {
        struct stash *s = c->q_head;
        c->q_head = s->next;
        if (!c->q_head)
            c->q_tail = NULL;
        c->lent = s;
        *m = s->m;
        m->data = s->data;
        return 0;
    }
    for (;;) {
        int rc = peek_msg(c, m);
        if (rc == 0) {
            m->peer_id = 0;
            if (m->kind == RIPC_KIND_REPLY) {
                count_in(c, m);
                if (want_id && m->id == want_id) {
                    if (m->type >= RIPC_TYPE_RESERVED)
                        return error_reply(c, m);
                    c->held = 1;
                    return 0;
                }
                ripc__stat_add(&c->ch.st.in.dropped, 1); /* nobody waits for it any more */
                release_msg(c);
                continue;
            }
            if (!want_id) {
                count_in(c, m);
                c->held = 1;
                return 0;
            }
            if ((rc = stash_push(c, m)) < 0)
                return rc;
            continue;
        }
        if (rc != -EAGAIN)
            return rc;
        if (c->peer_gone)
            return -EPIPE;
        if (nowait) {
            /* Leave the consumer armed so ripc_client_fd() turns readable. */
            if (c->xport == RIPC_XPORT_SHM) {
                /* Quick look: still armed from an earlier look and nobody
                 * has rung since (the ringer clears the flag first), so the
                 * peek above was enough. Every 64th look is a full one, and
                 * so is every look once the fd was lent: see docs/design.md,
                 * The eventcount and doorbells (ripc_client_fd()). */
                if ((++c->quick_looks & 63) != 0 &&
                    ripc__ring_consumer_flag(c->ch.rx) == RIPC_SLEEP_BELL &&
                    /* F2: relaxed, pairs with F1 in ripc_client_fd: a
                     * flag alone, no data rides on it */
                    !atomic_load_explicit(&c->fd_lent, memory_order_relaxed))
                    return -EAGAIN;
                /* Rings already consumed first (or the fd would stay
                 * readable and its poller spin), then the control socket
                 * (large-message frames, BYE, EOF), then arm and look once
                 * more. */
                if (ripc__doorbell_drain(&c->ch.bell) == -EPIPE)
                    c->peer_gone = 1; /* nobody holds the ringing end: the master is gone */
                else if ((rc = handle_sock(c)) < 0)
                    return rc;
                if (c->peer_gone)
                    continue; /* drain the ring, then -EPIPE */
                if (ripc__ring_arm_consumer(c->ch.rx))
                    continue;
            }
            return -EAGAIN;
        }
        rc = wait_msg(c, deadline);
        if (rc < 0)
            return rc;
    }
}

int ripc_client_recv(ripc_client *c, ripc_msg *msg, int timeout_ms)
{
    if (!c || !msg)
        return -EINVAL;
    GUARDED(c, next_msg(c, msg, 0, ripc__deadline(timeout_ms), timeout_ms == 0));
}

/* ripc_client_request inside the guard: 0 with *reply lent until the next
 * call, an error reply's code (< 0; text in err_text), -ETIMEDOUT, -EPIPE,
 * -EMSGSIZE, -ENOBUFS, -EPROTO, -EINVAL, or another -errno. */
static int request(ripc_client *c, uint16_t type, const void *data, uint64_t len, ripc_msg *reply,
                   int timeout_ms)
{
    if (c) { /* the last request's text goes, whatever this one returns */
        c->err_code = 0;
        c->err_text[0] = 0;
    }
    if (!c || !reply || (len && !data) || type >= RIPC_TYPE_RESERVED)
        return -EINVAL;
    if (c->loan_open)
        return -EBUSY;
    uint64_t id = ++c->next_id;
    /* Send first, then release the reply the caller held: the release's
     * fence (space_wake) then runs while the request is on its way, not
     * before it. When the request cannot go at once, release first: the
     * master may be waiting for that room before it reads our ring. */
    int rc = -EAGAIN;
    if (c->xport == RIPC_XPORT_SHM && !c->peer_gone && len <= c->ch.max_inline) {
        ripc__waitfor w;
        rc = ripc__chan_try_send(&c->ch, type, RIPC_KIND_REQUEST, id, data, len, &w);
    }
    release_lent(c);
    uint64_t deadline = ripc__deadline(timeout_ms);
    if (rc == -EAGAIN)
        rc = send_kind(c, type, RIPC_KIND_REQUEST, id, data, len, deadline, 0);
    if (rc < 0)
        return rc == -EAGAIN ? -ETIMEDOUT : rc;
    rc = next_msg(c, reply, id, deadline, 0);
    return rc == -EAGAIN && !c->err_code ? -ETIMEDOUT : rc;
}

/* ---- loans: ripc_client_reserve / _commit / _abandon ---- */

/* Shared memory: the ring record (or a large buffer and its marker),
 * waiting for room as a send does. Returns as ripc__chan_reserve, or
 * -ETIMEDOUT, -EPIPE (peer_gone set), or an error of the wait. */
static int lend_shm(ripc_client *c, uint64_t len, void **buf, int timeout_ms)
{
    uint64_t deadline = ripc__deadline(timeout_ms);
    for (;;) {
        if (c->peer_gone)
            return -EPIPE;
        ripc__waitfor w;
        int rc = ripc__chan_reserve(&c->ch, len, &c->loan, buf, &w);
        if (rc == -EPIPE)
            c->peer_gone = 1;
        if (rc != -EAGAIN)
            return rc;
        if (timeout_ms == 0)
            return -EAGAIN;
        if ((rc = wait_room(c, &w, deadline)) < 0)
            return rc;
    }
}

static int loan_reserve(ripc_client *c, uint64_t len, void **buf, int timeout_ms)
{
    if (c->loan_open)
        return -EBUSY;
    if (c->peer_gone)
        return -EPIPE;
    if (len > c->ch.max_message)
        return -EMSGSIZE;
    int rc = c->xport == RIPC_XPORT_SOCKET ? ripc__chan_lend_buf(&c->sbuf, &c->sbuf_cap, len, buf)
                                           : lend_shm(c, len, buf, timeout_ms);
    if (rc < 0)
        return rc;
    c->loan_open = 1;
    c->loan_cap = len;
    c->loan_timeout_ms = timeout_ms;
    return 0;
}

/* The loan is over (committed, failed, or abandoned). */
static void loan_end(ripc_client *c)
{
    c->loan_open = 0;
    ripc__chan_lend_buf_trim(&c->sbuf, &c->sbuf_cap);
}

static int loan_commit(ripc_client *c, uint16_t type, uint64_t len)
{
    if (!c->loan_open || len > c->loan_cap || type >= RIPC_TYPE_RESERVED)
        return -EINVAL; /* the loan, if any, stays open */
    int rc;
    if (c->xport == RIPC_XPORT_SOCKET) {
        int ms = c->loan_timeout_ms;
        rc = send_socket(c, type, RIPC_KIND_ONEWAY, 0, c->sbuf, len, ripc__deadline(ms), ms == 0);
        if (rc == -EAGAIN || rc == -ETIMEDOUT)
            return rc; /* none of it went: the loan stays open */
    } else if (c->peer_gone) {
        ripc__chan_abandon(&c->ch, &c->loan);
        rc = -EPIPE;
    } else {
        rc = ripc__chan_commit(&c->ch, &c->loan, type, RIPC_KIND_ONEWAY, 0, len);
        if (rc == -EPIPE)
            c->peer_gone = 1;
    }
    loan_end(c);
    return rc;
}

static int loan_abandon(ripc_client *c)
{
    if (!c->loan_open)
        return -EINVAL;
    if (c->xport == RIPC_XPORT_SHM)
        ripc__chan_abandon(&c->ch, &c->loan);
    loan_end(c);
    return 0;
}

int ripc_client_reserve(ripc_client *c, uint64_t len, void **buf, int timeout_ms)
{
    if (!c || !buf)
        return -EINVAL;
    GUARDED(c, loan_reserve(c, len, buf, timeout_ms));
}

int ripc_client_commit(ripc_client *c, uint16_t type, uint64_t len)
{
    if (!c)
        return -EINVAL;
    GUARDED(c, loan_commit(c, type, len));
}

int ripc_client_abandon(ripc_client *c)
{
    if (!c)
        return -EINVAL;
    GUARDED(c, loan_abandon(c));
}

const char *ripc_client_error(const ripc_client *c)
{
    return c ? c->err_text : "";
}

int ripc_client_request(ripc_client *c, uint16_t type, const void *data, uint64_t len,
                        ripc_msg *reply, int timeout_ms)
{
    if (!c)
        return -EINVAL;
    GUARDED(c, request(c, type, data, len, reply, timeout_ms));
}

const char *ripc_client_transport(const ripc_client *c)
{
    return c && c->xport == RIPC_XPORT_SOCKET ? "socket" : "shm";
}

const char *ripc_client_transport_reason(const ripc_client *c)
{
    return c ? c->reason : "";
}

uint32_t ripc_client_id(const ripc_client *c)
{
    return c ? c->id : 0;
}

int ripc_client_fd(ripc_client *c)
{
    if (!c)
        return -EINVAL;
    /* F1: relaxed, pairs with F2 in next_msg. Any thread may ask. */
    atomic_store_explicit(&c->fd_lent, 1, memory_order_relaxed);
    if (c->xport == RIPC_XPORT_SOCKET)
        return c->sock;
    /* A futex doorbell has no descriptor to poll. */
    return c->ch.bell.wait_fd >= 0 ? c->ch.bell.wait_fd : -ENOTSUP;
}

uint64_t ripc_client_dropped(const ripc_client *c)
{
    return c ? ripc__stat_get(&c->ch.st.in.dropped) : 0;
}

/* ---- close (opening: client_open.c) ---- */

void ripc__client_free(ripc_client *c)
{
    release_lent(c);
    while (c->q_head) {
        struct stash *s = c->q_head;
        c->q_head = s->next;
        stash_free(c, s);
    }
    ripc__outq_close(c->outq, 0);
    ripc__chan_close(&c->ch);
    ripc__rx_free(&c->rx);
    free(c->sbuf);
    if (c->sock >= 0)
        ripc__sock_close(c->sock);
    ripc__free_aligned(c);
}

#define CLOSE_FLUSH_MS 1000

void ripc_client_close(ripc_client *c)
{
    if (!c)
        return;
    /* Socket mode: what is queued goes out before the goodbye, within
     * CLOSE_FLUSH_MS (ringipc.h). A master that does not read meanwhile
     * gets no goodbye: the stream may end inside a frame, and it sees the
     * end of the stream instead. */
    int flushed = ripc__outq_close(c->outq, CLOSE_FLUSH_MS) == 0;
    c->outq = NULL;
    /* Shared memory on Windows: the master takes each large message's
     * buffer out of this process by its handle, so the buffers stay until
     * it is past them, within the same bound (src/chan.h). */
    if (!c->peer_gone)
        (void)ripc__chan_settle_large(&c->ch, ripc__deadline(CLOSE_FLUSH_MS));
    if (flushed && !c->peer_gone && c->sock >= 0) {
        uint8_t bye[RIPC_FRAME_HDR];
        ripc__frame f = {.ftype = RIPC_FRAME_BYE};
        ripc__frame_encode(bye, &f);
        (void)ripc__sock_try_send_fds(c->sock, bye, sizeof bye, NULL, 0);
    }
    ripc__client_free(c);
}
