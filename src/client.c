/* SPDX-License-Identifier: MIT */
/*
 * The worker side: connect, HELLO, map what WELCOME hands over, then send and
 * receive through the rings. One thread at a time per client.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <poll.h>

#include "shm/fence.h"
#include "src/adopt.h"
#include "src/frames.h"
#include "src/chan.h"
#include "src/internal.h"
#include "src/outq.h"

/* A message that arrived while a request waited for its reply: copied out of
 * the ring (the ring must keep moving) and kept for the next recv. */
struct stash {
    struct stash *next;
    ripc_msg m;
    unsigned char data[];
};

struct ripc_client {
    ripc_options opt;
    ripc__chan ch;
    int xport;        /* RIPC_XPORT_SHM or RIPC_XPORT_SOCKET */
    ripc__rx rx;      /* socket mode: frames read ahead */
    ripc__outq *outq; /* socket mode: batched writes */
    int sock;
    uint32_t id;
    int held;             /* a ring record is lent to the caller */
    int peer_gone;        /* BYE or EOF seen: drain the ring, then -EPIPE */
    unsigned quick_looks; /* recv(c, m, 0) calls that found the arm standing */
    _Atomic int fd_lent;  /* ripc_client_fd() was asked: no quick looks */
    _Atomic int in_use;   /* a thread is inside send / request / recv */
    uint64_t next_id;
    uint64_t dropped;
    struct stash *q_head, *q_tail;
    size_t q_bytes, q_cap;
    struct stash *lent; /* stash entry lent to the caller */
    char reason[RIPC_REASON_MAX + 1];
    int err_code; /* the last request ended with an error reply: its code (< 0) */
    char err_text[RIPC_ERR_TEXT_MAX + 1]; /* and its text (ripc_client_error) */
};

/* The message last returned by peek_msg is done with. */
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

/* The control socket needs attention: large-message frames, BYE or EOF. */
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
 * to put it back (c->rx.start = *at) before anything else is read. */
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
    struct pollfd pf = {.fd = c->sock, .events = POLLIN};
    int n = poll(&pf, 1, ripc__remaining_ms(deadline));
    if (n == 0)
        return -ETIMEDOUT;
    if (n < 0 && errno != EINTR)
        return -errno;
    return 0;
}

/*
 * One thread at a time per client: a second thread that comes in while one
 * is inside send / request / recv gets -EBUSY and changes nothing (its
 * request is not sent, no reply or message is taken from the other). One
 * uncontended exchange on entry, a release store on the way out; the
 * acquire/release pair also orders the client's state for a program that
 * hands the client from one thread to another between calls.
 */
static inline int enter(ripc_client *c)
{
    return atomic_exchange_explicit(&c->in_use, 1, memory_order_acquire) ? -EBUSY : 0;
}

static inline int leave(ripc_client *c, int rc)
{
    atomic_store_explicit(&c->in_use, 0, memory_order_release);
    return rc;
}

int ripc_client_send(ripc_client *c, uint16_t type, const void *data, uint64_t len, int timeout_ms)
{
    if (!c || (len && !data) || type >= RIPC_TYPE_RESERVED)
        return -EINVAL;
    if (enter(c) < 0)
        return -EBUSY;
    return leave(c, send_kind(c, type, RIPC_KIND_ONEWAY, 0, data, len, ripc__deadline(timeout_ms),
                              timeout_ms == 0));
}

static int stash_incoming(ripc_client *c);

/* Socket mode, a one-way send that has waited a slice for the queue: go on
 * in slices of 2 ms, taking what the master sent into the stash between
 * them (see stash_incoming: a master handler sending to us must not wait
 * for us while we wait for it). Out of line: the common send never comes
 * here. */
#define SEND_SLICE_NS 2000000u
__attribute__((noinline, cold)) static int send_socket_wait(ripc_client *c, const ripc__frame *f,
                                                            const void *data, uint64_t deadline)
{
    for (;;) {
        if (ripc__expired(deadline))
            return -ETIMEDOUT;
        int more = stash_incoming(c);
        if (more < 0)
            return more;
        int rc = ripc__outq_send(c->outq, f, data, deadline, 0, SEND_SLICE_NS);
        if (rc != -ETIMEDOUT)
            return rc;
    }
}

/* Socket mode send, out of line so that the shared-memory path of send_kind
 * stays small. */
__attribute__((noinline)) static int send_socket(ripc_client *c, uint16_t type, uint8_t kind,
                                                 uint64_t id, const void *data, uint64_t len,
                                                 uint64_t deadline, int nowait)
{
    if (c->peer_gone)
        return -EPIPE;
    if (len > c->ch.max_message)
        return -EMSGSIZE;
    ripc__frame f = {.ftype = RIPC_FRAME_MSG, .kind = kind, .type = type, .id = id, .len = len};
    int rc = kind == RIPC_KIND_REQUEST
                 ? ripc__outq_send_now(c->outq, &f, data, deadline)
                 : ripc__outq_send(c->outq, &f, data, deadline, nowait, SEND_SLICE_NS);
    if (!nowait && kind != RIPC_KIND_REQUEST && rc == -ETIMEDOUT)
        rc = send_socket_wait(c, &f, data, deadline);
    if (rc == -ETIMEDOUT && nowait)
        rc = -EAGAIN;
    if (rc == -EPIPE)
        c->peer_gone = 1;
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
 * stash, as a request does while it waits for its reply. A master handler
 * that is itself sending to us (waiting for room in our inbound ring, or
 * for its large-message buffers to come back) then gets what it waits for,
 * and drains our outbound ring again: without this, both sides would wait
 * for each other until their timeouts. Both transports (socket mode: the
 * frames the socket has now). Returns 1 when the wait may also wake for
 * data (more can be taken), 0 when not (the stash is full, or the caller
 * still holds a message from recv), -EPROTO or a read error.
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
            c->dropped++; /* no request waits: we are sending */
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
        int more = stash_incoming(c);
        if (more < 0)
            return more;
        w.also_data = more;
        rc = ripc__chan_wait(&c->ch, &w, deadline);
        if (rc == 1)
            rc = handle_sock(c);
        if (rc < 0)
            return rc;
    }
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
 * filled (lent until the next call), or a negative errno.
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
                if (want_id && m->id == want_id) {
                    if (m->type >= RIPC_TYPE_RESERVED)
                        return error_reply(c, m);
                    c->held = 1;
                    return 0;
                }
                c->dropped++; /* nobody waits for it any more */
                release_msg(c);
                continue;
            }
            if (!want_id) {
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
            /* Leave the consumer armed so ripc_client_fd() turns readable:
             * rings already consumed first (or the fd would stay readable
             * and its poller spin), then arm, then look once more. */
            if (c->xport == RIPC_XPORT_SHM) {
                /* Still armed from an earlier look, and nobody has rung
                 * since (the ringer clears the flag first): the arm stands,
                 * and the peek above already looked. A caller polling with
                 * recv(c, m, 0) in its own loop then pays no syscall per
                 * empty look (404 -> 25 ns here). Every 64th look is a
                 * full one, which also notices a master that died without
                 * ringing (its doorbell hangs up). A caller that polls
                 * ripc_client_fd() gets full looks only: the fd wakes it
                 * for a hang-up as well as for a ring, and a hang-up does
                 * not clear the flag, so only a full look tells them
                 * apart; it pays for a poll() per empty look anyway. */
                if ((++c->quick_looks & 63) != 0 &&
                    ripc__ring_consumer_flag(c->ch.rx) == RIPC_SLEEP_BELL &&
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
    if (enter(c) < 0)
        return -EBUSY;
    return leave(c, next_msg(c, msg, 0, ripc__deadline(timeout_ms), timeout_ms == 0));
}

static int request(ripc_client *c, uint16_t type, const void *data, uint64_t len, ripc_msg *reply,
                   int timeout_ms)
{
    if (c) { /* the last request's text goes, whatever this one returns */
        c->err_code = 0;
        c->err_text[0] = 0;
    }
    if (!c || !reply || (len && !data) || type >= RIPC_TYPE_RESERVED)
        return -EINVAL;
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

const char *ripc_client_error(const ripc_client *c)
{
    return c ? c->err_text : "";
}

int ripc_client_request(ripc_client *c, uint16_t type, const void *data, uint64_t len,
                        ripc_msg *reply, int timeout_ms)
{
    if (!c)
        return -EINVAL;
    if (enter(c) < 0)
        return -EBUSY;
    return leave(c, request(c, type, data, len, reply, timeout_ms));
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
    atomic_store_explicit(&c->fd_lent, 1, memory_order_relaxed); /* see next_msg */
    if (c->xport == RIPC_XPORT_SOCKET)
        return c->sock;
    /* A futex doorbell has no descriptor to poll. */
    return c->ch.bell.wait_fd >= 0 ? c->ch.bell.wait_fd : -ENOTSUP;
}

uint64_t ripc_client_dropped(const ripc_client *c)
{
    return c ? c->dropped : 0;
}

/* ---- open / close ---- */

static void client_free(ripc_client *c)
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
    if (c->sock >= 0)
        close(c->sock);
    free(c);
}

static int reject_errno(unsigned code)
{
    switch (code) {
    case EPROTONOSUPPORT:
    case EACCES:
    case EMSGSIZE:
    case EPROTO:
    case ENOMEM:
    case ENOTSUP:
        return -(int)code;
    default:
        return -ECONNREFUSED;
    }
}

static uint32_t hello_caps(const ripc_options *o)
{
    uint32_t caps = ripc__doorbell_caps() | RIPC_CAP_SOCKET;
    /* Offer shared memory only if we could map a segment here at all. */
    if (o->transport != RIPC_TRANSPORT_SOCKET && ripc__segment_supported(RIPC_SEG_DEFAULT))
        caps |= RIPC_CAP_SHM;
    if (ripc__segment_supported(RIPC_SEG_MEMFD))
        caps |= RIPC_CAP_MEMFD;
    if (ripc__segment_supported(RIPC_SEG_SHM_OPEN))
        caps |= RIPC_CAP_SHM_OPEN;
    int pref = o->doorbell == RIPC_DOORBELL_FUTEX     ? RIPC_DB_FUTEX
               : o->doorbell == RIPC_DOORBELL_SOCKET  ? RIPC_DB_SOCKET
               : o->doorbell == RIPC_DOORBELL_EVENTFD ? RIPC_DB_EVENTFD
                                                      : 0;
    if (ripc__remote_fence_init())
        caps |= RIPC_CAP_MEMBARRIER;
    if (o->doorbell == RIPC_DOORBELL_AUTO && (caps & RIPC_DB_CAP(RIPC_DB_FUTEX)))
        caps |= RIPC_CAP_SLEEP_WORD; /* an explicit socket doorbell is only that */
    caps |= (uint32_t)(o->wait & 3) << RIPC_CAP_WAIT_SHIFT;
    return caps | ((uint32_t)pref << 16);
}

static int handshake(ripc_client *c, uint64_t deadline, char *why, size_t why_len)
{
    ripc__hello h = {.version_min = RIPC_PROTO_VERSION,
                     .version_max = RIPC_PROTO_VERSION,
                     .caps = hello_caps(&c->opt),
                     .pid = (uint32_t)getpid(),
                     .transport = (uint32_t)c->opt.transport,
                     .ring_bytes = c->opt.ring_bytes,
                     .max_message = c->opt.max_message};
    snprintf(h.name, sizeof h.name, "%s", c->opt.name ? c->opt.name : "");
    if (c->opt.token) {
        size_t tl = strlen(c->opt.token);
        if (tl > RIPC_TOKEN_MAX) {
            ripc__set_why(why, why_len, 0, "token longer than %d bytes", RIPC_TOKEN_MAX);
            return -EINVAL;
        }
        memcpy(h.token, c->opt.token, tl);
        h.token_len = (uint8_t)tl;
    }
    uint8_t buf[RIPC_FRAME_HDR + RIPC_HANDSHAKE_MAX];
    size_t plen = ripc__hello_encode(buf + RIPC_FRAME_HDR, RIPC_HANDSHAKE_MAX, &h);
    ripc__frame f = {.ftype = RIPC_FRAME_HELLO, .len = plen};
    ripc__frame_encode(buf, &f);
    int rc = ripc__sock_send_all(c->sock, buf, RIPC_FRAME_HDR + plen);
    if (rc < 0 && rc != -EPIPE)
        return rc;
    /* -EPIPE: the master may have refused us before reading the HELLO (out
     * of descriptors): its REJECT can still be read. */

    int fds[3] = {-1, -1, -1}, nfds = 0;
    /* connect_timeout_ms bounds the whole open: each read gets what is left. */
    rc = ripc__sock_recv_fds(c->sock, buf, RIPC_FRAME_HDR, fds, 3, &nfds,
                             ripc__remaining_ms(deadline));
    if (rc < 0) {
        ripc__set_why(why, why_len, 0, "no answer to HELLO (%s)", ripc_strerror(rc));
        return rc == -EPIPE ? -ECONNREFUSED : rc;
    }
    if ((rc = ripc__frame_decode(buf, &f, RIPC_HANDSHAKE_MAX)) < 0 ||
        (f.ftype != RIPC_FRAME_WELCOME && f.ftype != RIPC_FRAME_REJECT)) {
        ripc__set_why(why, why_len, 0, "bad answer to HELLO");
        rc = -EPROTO;
        goto out;
    }
    if ((rc = ripc__sock_recv_all(c->sock, buf, (size_t)f.len, ripc__remaining_ms(deadline))) < 0)
        goto out;
    if (f.ftype == RIPC_FRAME_REJECT) {
        size_t n = f.len > RIPC_REASON_MAX ? RIPC_REASON_MAX : (size_t)f.len;
        memcpy(c->reason, buf, n);
        c->reason[n] = 0;
        ripc__set_why(why, why_len, 0, "rejected: %s", c->reason);
        rc = reject_errno(f.type);
        goto out;
    }
    ripc__welcome w;
    if (ripc__welcome_decode(buf, (size_t)f.len, &w) < 0 || w.version != RIPC_PROTO_VERSION) {
        ripc__set_why(why, why_len, 0, "malformed WELCOME");
        rc = -EPROTO;
        goto out;
    }
    if (w.transport == RIPC_XPORT_SOCKET) {
        /* Socket mode: every message is a frame on this socket. */
        if (nfds != 0 || w.nfds != 0 || c->opt.transport == RIPC_TRANSPORT_SHM) {
            ripc__set_why(why, why_len, 0, "unexpected socket-mode WELCOME");
            rc = -EPROTO;
            goto out;
        }
        c->xport = RIPC_XPORT_SOCKET;
        c->id = w.peer_id;
        c->ch.max_message = w.max_message;
        c->q_cap = RIPC_RX_CHUNK > w.max_message ? RIPC_RX_CHUNK : (size_t)w.max_message;
        snprintf(c->reason, sizeof c->reason, "%s", w.reason);
        ripc__sock_set_nonblock(c->sock, 1);
        rc = ripc__outq_open(&c->outq, c->sock, 256 * 1024);
        goto out;
    }
    if (w.transport != RIPC_XPORT_SHM || w.nfds != nfds || nfds < 2 ||
        !ripc__ring_bytes_ok((size_t)w.ring_bytes) ||
        w.seg_bytes != ripc__chan_seg_bytes((size_t)w.ring_bytes) ||
        (w.worker_db == RIPC_DB_FUTEX) != (nfds == 2)) {
        ripc__set_why(why, why_len, 0, "malformed WELCOME");
        rc = -EPROTO;
        goto out;
    }
    char swhy[RIPC_SEG_WHY_LEN];
    if ((rc = ripc__segment_map(&c->ch.seg, fds[0], (size_t)w.seg_bytes, swhy, sizeof swhy)) < 0) {
        ripc__set_why(why, why_len, 0, "cannot map the segment: %s", swhy);
        goto out;
    }
    fds[0] = -1; /* the segment owns it now */
    if ((rc = ripc__chan_attach(&c->ch, (size_t)w.ring_bytes, 0)) < 0) {
        ripc__set_why(why, why_len, 0, "rings in the segment are invalid");
        goto out;
    }
    _Atomic uint32_t *word = &((struct ripc_ring_hdr *)((unsigned char *)c->ch.seg.base +
                                                        ripc_ring_size((size_t)w.ring_bytes)))
                                  ->wait.w.data_seq;
    /* A doorbell kind or descriptor we cannot use is the master's protocol
     * error, like any other malformed WELCOME. */
    if ((rc = ripc__doorbell_adopt(&c->ch.peer_bell, w.master_db, -1, fds[1], NULL)) < 0) {
        ripc__set_why(why, why_len, 0, "master doorbell (kind %u) unusable: %s", w.master_db,
                      ripc_strerror(rc));
        rc = -EPROTO;
        goto out;
    }
    fds[1] = -1;
    if ((rc = ripc__doorbell_adopt(&c->ch.bell, w.worker_db, nfds > 2 ? fds[2] : -1, -1,
                                   w.worker_db == RIPC_DB_FUTEX ? word : NULL)) < 0) {
        ripc__set_why(why, why_len, 0, "worker doorbell (kind %u) unusable: %s", w.worker_db,
                      ripc_strerror(rc));
        rc = -EPROTO;
        goto out;
    }
    fds[2] = -1;
    /* Socket doorbell + futex word (shm/doorbell.h): our own waits sleep on
     * the word; the socket stays for ripc_client_fd(). */
    if (w.worker_db == RIPC_DB_SOCKET && (w.caps & RIPC_CAP_SLEEP_WORD) &&
        (ripc__doorbell_caps() & RIPC_DB_CAP(RIPC_DB_FUTEX))) {
        c->ch.bell.word = word;
        c->ch.sleep_how = RIPC_SLEEP_WORD;
    }
    /* Asymmetric fences only as the master decided, and only if we could
     * register ourselves (otherwise the master's fences do not reach us). */
    int mb = ripc__remote_fence_init();
    int f_w2m = mb && (w.caps & RIPC_CAP_FAST_W2M), f_m2w = mb && (w.caps & RIPC_CAP_FAST_M2W);
    ripc__ring_set_fastpub(c->ch.tx, f_w2m);
    ripc__ring_set_fastpub(c->ch.rx, f_m2w);
    /* The space direction of a ring is armed by its producer: asymmetric
     * where that producer's side does not block (the other ring's flag). */
    ripc__ring_set_fastspace(c->ch.tx, f_m2w);
    ripc__ring_set_fastspace(c->ch.rx, f_w2m);
    c->xport = RIPC_XPORT_SHM;
    c->id = w.peer_id;
    c->ch.max_message = w.max_message;
    if (c->ch.max_message > c->ch.max_payload && c->opt.max_inline &&
        c->opt.max_inline < c->ch.max_inline)
        c->ch.max_inline = c->opt.max_inline; /* only where large messages can go */
    c->ch.sock = c->sock;
    c->ch.wait_mode = c->opt.wait;
    uint32_t muid, mgid;
    int32_t mpid = 0;
    if (ripc__sock_peer_cred(c->sock, &muid, &mgid, &mpid) < 0)
        mpid = 0;
    c->ch.spin_us = ripc__spin_ok(mpid) ? c->opt.spin_us : 0;
    c->q_cap = (size_t)w.ring_bytes;
    if (c->ch.max_message > c->ch.max_payload)
        c->q_cap += (size_t)c->ch.max_message; /* room for one large message */
    snprintf(c->reason, sizeof c->reason, "%s", w.reason);
    rc = 0;
out:
    for (int i = 0; i < 3; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    return rc;
}

/* An abstract name has no permissions: anybody on the machine may bind it
 * first and pose as the master (and read our HELLO, token included). The
 * master on fd must run as a uid we accept, as we must for it (allow_uids,
 * allow_any_uid). A path socket needs no such check: the master makes its
 * file mode 0600. */
static int master_uid_ok(intptr_t fd, const ripc__addr *a, const ripc_options *o, char *why,
                         size_t why_len)
{
    uint32_t uid;
    int rc = ripc__sock_peer_cred(fd, &uid, NULL, NULL);
    if (rc < 0) {
        ripc__set_why(why, why_len, 0, "cannot tell who listens at unix:%s (%s)", a->path,
                      ripc_strerror(rc));
        return -EACCES;
    }
    if (ripc__uid_allowed(o, uid))
        return 0;
    ripc__set_why(why, why_len, 0,
                  "the master at unix:%s runs as uid %u, not ours (%u) nor one in allow_uids: "
                  "anybody may bind an abstract name",
                  a->path, uid, (unsigned)geteuid());
    return -EACCES;
}

/* A client with the effective options, not connected yet: NULL with *rc
 * and why set when the options cannot work. */
static ripc_client *client_new(const ripc_options *opt, int *rc, char *why, size_t why_len)
{
    ripc_client *c = calloc(1, sizeof *c);
    if (!c) {
        *rc = -ENOMEM;
        return NULL;
    }
    c->sock = -1;
    ripc__chan_init(&c->ch);
    int r = ripc__options_resolve(&c->opt, opt, why, why_len);
    if (r < 0) {
        free(c);
        *rc = r;
        return NULL;
    }
    if (c->opt.transport == RIPC_TRANSPORT_SHM && !ripc__segment_supported(RIPC_SEG_DEFAULT)) {
        ripc__set_why(why, why_len, 0,
                      "shared memory is not available in this process and the "
                      "transport is forced to shm");
        free(c);
        *rc = -ENOTSUP;
        return NULL;
    }
    return c;
}

/* c takes fd and shakes hands; c is freed on failure. */
/* deadline: connect_timeout_ms from the start of the open, for the whole
 * handshake. */
static int client_start(ripc_client **out, ripc_client *c, int fd, uint64_t deadline, char *why,
                        size_t why_len)
{
    c->sock = fd;
    int rc = handshake(c, deadline, why, why_len);
    if (rc < 0) {
        client_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

int ripc_client_open_ex(ripc_client **out, const char *url, const ripc_options *opt, char *why,
                        size_t why_len)
{
    if (!out || !url)
        return -EINVAL;
    *out = NULL;
    int rc;
    ripc_client *c = client_new(opt, &rc, why, why_len);
    if (!c)
        return rc;
    ripc__addr a;
    if ((rc = ripc__addr_parse(&a, url, why, why_len)) < 0) {
        free(c);
        return rc;
    }
    intptr_t fd;
    uint64_t deadline = ripc__deadline(c->opt.connect_timeout_ms);
    if ((rc = ripc__sock_connect(&a, &fd, c->opt.connect_timeout_ms, why, why_len)) < 0) {
        free(c);
        return rc;
    }
    if (ripc__addr_abstract(&a) && (rc = master_uid_ok(fd, &a, &c->opt, why, why_len)) < 0) {
        ripc__sock_close(fd);
        free(c);
        return rc;
    }
    return client_start(out, c, (int)fd, deadline, why, why_len);
}

int ripc__client_open_fd(ripc_client **out, int fd, const ripc_options *opt, char *why,
                         size_t why_len)
{
    if (!out || fd < 0) {
        if (fd >= 0)
            close(fd);
        return -EINVAL;
    }
    *out = NULL;
    int rc;
    ripc_client *c = client_new(opt, &rc, why, why_len);
    if (!c) {
        close(fd);
        return rc;
    }
    return client_start(out, c, fd, ripc__deadline(c->opt.connect_timeout_ms), why, why_len);
}

int ripc_client_open(ripc_client **c, const char *url, const ripc_options *opt)
{
    return ripc_client_open_ex(c, url, opt, NULL, 0);
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
    if (flushed && !c->peer_gone && c->sock >= 0) {
        uint8_t bye[RIPC_FRAME_HDR];
        ripc__frame f = {.ftype = RIPC_FRAME_BYE};
        ripc__frame_encode(bye, &f);
        send(c->sock, bye, sizeof bye, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    client_free(c);
}
