/* SPDX-License-Identifier: MIT */
/*
 * The ring path of one worker: two SPSC rings in one segment, a doorbell
 * each way, and the wait strategies. Used by both the client and the server;
 * who may call what: src/chan.h. The ring's own barriers (publication,
 * eventcount) are in shm/ring.c.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "src/chan.h"
#include "src/internal.h"

size_t ripc__chan_seg_bytes(size_t ring_bytes)
{
    return 2 * ripc_ring_size(ring_bytes);
}

int ripc__chan_create_segment(ripc__chan *ch, size_t ring_bytes, char *why, size_t why_len)
{
    size_t one = ripc_ring_size(ring_bytes);
    if (one == 0)
        return -EINVAL;
    int rc = ripc__segment_create(&ch->seg, 2 * one, RIPC_SEG_DEFAULT, why, why_len);
    if (rc < 0)
        return rc;
    unsigned char *base = ch->seg.base;
    /* The segment is zero-filled: only the headers are written. */
    if ((rc = ripc__ring_format_zeroed(base, one, ring_bytes)) < 0 ||
        (rc = ripc__ring_format_zeroed(base + one, one, ring_bytes)) < 0) {
        ripc__segment_close(&ch->seg);
        return rc;
    }
    return 0;
}

int ripc__chan_attach(ripc__chan *ch, size_t ring_bytes, int master)
{
    size_t one = ripc_ring_size(ring_bytes);
    if (one == 0 || ch->seg.len < 2 * one)
        return -EPROTO;
    unsigned char *w2m = ch->seg.base, *m2w = w2m + one;
    int rc = ripc_ring_attach(&ch->rx, master ? w2m : m2w, one, RIPC_RING_CONSUMER);
    if (rc == 0)
        rc = ripc_ring_attach(&ch->tx, master ? m2w : w2m, one, RIPC_RING_PRODUCER);
    if (rc < 0) {
        ripc_ring_detach(ch->rx);
        ch->rx = NULL;
        return rc;
    }
    ch->max_payload = ripc_ring_payload_max(ch->tx) - RIPC_MSG_HDR;
    ch->max_inline = ch->max_payload;
    /* The worker's ring starts armed, as if its consumer had looked and
     * found nothing: the master's first message rings the worker's
     * doorbell, so that a worker that polls ripc_client_fd() before its
     * first recv is woken (messages sent before it could arm would not
     * ring it otherwise). The master attaches before anything is sent. */
    if (master)
        ripc__ring_arm_consumer_flag(ch->tx);
    return 0;
}

void ripc__chan_init(ripc__chan *ch)
{
    ch->seg.fd = -1;
    ch->bell.wait_fd = ch->bell.ring_fd = -1;
    ch->peer_bell.wait_fd = ch->peer_bell.ring_fd = -1;
    ch->sock = ch->watch = -1;
    ripc__pass_init(&ch->pass);
    ch->sleep_how = RIPC_SLEEP_BELL;
    ripc__large_init(&ch->lg);
    ch->lg.pass = &ch->pass;
}

void ripc__chan_close(ripc__chan *ch)
{
    ripc__large_free(&ch->lg);
    ripc_ring_detach(ch->tx);
    ripc_ring_detach(ch->rx);
    ch->tx = ch->rx = NULL;
    ripc__doorbell_close(&ch->bell);
    ripc__doorbell_close(&ch->peer_bell);
    ripc__segment_close(&ch->seg);
    ripc__pass_close(&ch->pass);
}

/* The peer slept (its flag was `how`, taken from it by our exchange, so no
 * other waker rings for the same sleep): wake it the way it asked for,
 * counted in the waker's half h. */
static inline void wake_peer(ripc__chan *ch, uint32_t how, struct ripc__stats_half *h)
{
    ripc__stat_add(&h->bells, 1);
    if (how == RIPC_SLEEP_WORD)
        ripc__doorbell_ring_word(&ch->peer_bell);
    else
        ripc__doorbell_ring(&ch->peer_bell);
}

/* Publish the record reserved in tx (rec_len bytes) and wake the peer if
 * it sleeps. */
static inline void publish(ripc__chan *ch, size_t rec_len)
{
    uint32_t how = ripc__ring_commit_wake(ch->tx, rec_len);
    if (how)
        wake_peer(ch, how, &ch->st.out);
}

/* The loan's record: rec_len bytes in tx (message header first), for a
 * payload of len bytes in b (NULL: in the record). Returns as
 * ripc__chan_reserve. */
static int reserve_rec(ripc__chan *ch, size_t rec_len, uint64_t len, ripc__large_buf *b,
                       ripc__loan *l, void **buf, ripc__waitfor *w)
{
    void *rec;
    int rc = ripc_ring_reserve(ch->tx, rec_len, &rec);
    if (rc < 0) {
        w->what = RIPC_CHAN_ROOM;
        w->arg = rec_len;
        return rc;
    }
    l->rec = rec;
    l->b = b;
    l->cap = len;
    *buf = b ? b->seg.base : l->rec + RIPC_MSG_HDR;
    return 0;
}

/* A large loan: a buffer from the pool, and its marker record in the ring
 * (steps 1 and 2 of src/large.h). Returns as ripc__chan_reserve. */
static int reserve_large(ripc__chan *ch, uint64_t len, ripc__loan *l, void **buf, ripc__waitfor *w)
{
    ripc__large_buf *b;
    int rc = ripc__large_get(&ch->lg, ch->tx, len, &b, &w->arg);
    if (rc == -EAGAIN)
        w->what = RIPC_CHAN_CONSUMED;
    if (rc < 0)
        return rc;
    return reserve_rec(ch, RIPC_MSG_HDR + RIPC_MARKER_BYTES, len, b, l, buf, w);
}

int ripc__chan_reserve(ripc__chan *ch, uint64_t len, ripc__loan *l, void **buf, ripc__waitfor *w)
{
    w->also_data = 0;
    if (len > ch->max_message)
        return -EMSGSIZE;
    if (len > ch->max_inline)
        return reserve_large(ch, len, l, buf, w);
    return reserve_rec(ch, RIPC_MSG_HDR + (size_t)len, len, NULL, l, buf, w);
}

void ripc__chan_abandon(ripc__chan *ch, ripc__loan *l)
{
    ripc__ring_abandon(ch->tx);
    l->rec = NULL;
    l->b = NULL;
}

int ripc__chan_commit(ripc__chan *ch, ripc__loan *l, uint16_t type, uint8_t kind, uint64_t id,
                      uint64_t len)
{
    ripc__large_buf *b = l->b;
    /* An unsealed buffer the peer holds a descriptor of (it received it
     * with an earlier message) may have been cut under us: what was written
     * landed in the guard's zeros, and the peer broke the rules. */
    if (b && ripc__segment_faulted(&b->seg)) {
        ripc__chan_abandon(ch, l);
        return -EPROTO;
    }
    /* Counted before it is published: once the peer answers, it is in. */
    ripc__stat_msg(&ch->st.out, kind, len);
    if (!b || len <= RIPC_MARKER_BYTES) {
        if (b && len) /* short enough for the marker's own room */
            memcpy(l->rec + RIPC_MSG_HDR, b->seg.base, (size_t)len);
        ripc__msg_encode(l->rec, type, kind, 0, id);
        publish(ch, RIPC_MSG_HDR + (size_t)len);
        l->rec = NULL;
        l->b = NULL;
        return 0;
    }
    ripc__frame f = {.ftype = RIPC_FRAME_LARGE, .kind = kind, .type = type, .id = id, .len = len};
    /* Frame first: a receiver that sees the marker finds the frame. */
    int rc = ripc__large_send_frame(&ch->lg, ch->sock, &f, b);
    if (rc < 0) {
        ripc__chan_abandon(ch, l);
        return rc; /* the connection is done: its counts no longer matter */
    }
    ripc__stat_add(&ch->st.out.large, 1);
    ripc__stat_add(&ch->st.out.large_bytes, len);
    ripc__msg_encode(l->rec, type, kind, RIPC_MSGF_LARGE, id);
    memcpy(l->rec + RIPC_MSG_HDR, &len, sizeof len);
    publish(ch, RIPC_MSG_HDR + RIPC_MARKER_BYTES);
    ripc__large_sent(&ch->lg, b, ripc__ring_pos(ch->tx));
    l->rec = NULL;
    l->b = NULL;
    return 0;
}

int ripc__chan_lend_buf(unsigned char **buf, size_t *cap, uint64_t len, void **out)
{
    if (len > SIZE_MAX)
        return -ENOMEM;
    size_t want = len ? (size_t)len : 1;
    if (want > *cap) {
        unsigned char *p = malloc(want);
        if (!p)
            return -ENOMEM;
        free(*buf);
        *buf = p;
        *cap = want;
    }
    *out = *buf;
    return 0;
}

void ripc__chan_lend_buf_trim(unsigned char **buf, size_t *cap)
{
    if (*cap > RIPC_LEND_KEEP) {
        free(*buf);
        *buf = NULL;
        *cap = 0;
    }
}

/* A large message sent by copy: a loan filled from data. */
static int try_send_large(ripc__chan *ch, uint16_t type, uint8_t kind, uint64_t id,
                          const void *data, uint64_t len, ripc__waitfor *w)
{
    ripc__loan l;
    void *buf;
    int rc = reserve_large(ch, len, &l, &buf, w);
    if (rc < 0)
        return rc;
    memcpy(buf, data, (size_t)len);
    return ripc__chan_commit(ch, &l, type, kind, id, len);
}

/* ripc__chan_try_send; wake: look at the peer's sleep flag after the
 * commit (inline records; a large message always does). */
static inline int try_send(ripc__chan *ch, uint16_t type, uint8_t kind, uint64_t id,
                           const void *data, uint64_t len, ripc__waitfor *w, int wake)
{
    w->also_data = 0;
    if (len > ch->max_message)
        return -EMSGSIZE;
    if (len > ch->max_inline)
        return try_send_large(ch, type, kind, id, data, len, w);
    size_t total = RIPC_MSG_HDR + (size_t)len;
    void *buf;
    /* Someone waits for a request or a reply: take its lines early. */
    int rc = kind == RIPC_KIND_ONEWAY ? ripc_ring_reserve(ch->tx, total, &buf)
                                      : ripc__ring_reserve_urgent(ch->tx, total, &buf);
    if (rc < 0) {
        w->what = RIPC_CHAN_ROOM;
        w->arg = total;
        return rc;
    }
    ripc__msg_encode(buf, type, kind, 0, id);
    if (len)
        memcpy((unsigned char *)buf + RIPC_MSG_HDR, data, (size_t)len);
    ripc__stat_msg(&ch->st.out, kind, len);
    if (wake)
        publish(ch, total);
    else
        ripc_ring_commit(ch->tx, total);
    return 0;
}

int ripc__chan_try_send(ripc__chan *ch, uint16_t type, uint8_t kind, uint64_t id, const void *data,
                        uint64_t len, ripc__waitfor *w)
{
    return try_send(ch, type, kind, id, data, len, w, 1);
}

int ripc__chan_try_send_quiet(ripc__chan *ch, uint16_t type, uint8_t kind, uint64_t id,
                              const void *data, uint64_t len, ripc__waitfor *w)
{
    return try_send(ch, type, kind, id, data, len, w, 0);
}

void ripc__chan_data_wake(ripc__chan *ch)
{
    uint32_t how = ripc__ring_data_wake(ch->tx);
    if (how)
        wake_peer(ch, how, &ch->st.out);
}

/* The record at the consumer's position as a message: *m (its inline
 * payload) and the record's flags; 0, ripc_ring_peek's error, or -EPROTO
 * (a broken stream, a short record, a bad header). */
static inline int peek_rec(ripc__chan *ch, ripc_msg *m, uint8_t *flags)
{
    if (ch->lg.bad_take)
        return -EPROTO; /* a payload was cut under us, or a marker broke */
    const void *buf;
    size_t n;
    int rc = ripc_ring_peek(ch->rx, &buf, &n);
    if (rc < 0)
        return rc;
    if (n < RIPC_MSG_HDR || ripc__msg_decode(buf, &m->type, &m->kind, flags, &m->id) < 0)
        return -EPROTO;
    m->data = (const unsigned char *)buf + RIPC_MSG_HDR;
    m->len = n - RIPC_MSG_HDR;
    return 0;
}

int ripc__chan_peek(ripc__chan *ch, ripc_msg *m)
{
    uint8_t flags;
    int rc = peek_rec(ch, m, &flags);
    if (rc < 0)
        return rc;
    if (flags & RIPC_MSGF_LARGE) {
        rc = ripc__large_take(&ch->lg, ch->sock, ch->max_message, m->type, m->kind, m->id, m->data,
                              (size_t)m->len, &m->data, &m->len);
        ch->large_len = m->len;
        return rc;
    }
    return 0;
}

int ripc__chan_peek_run(ripc__chan *ch, uint16_t type, ripc_msg *m)
{
    uint8_t flags;
    return peek_rec(ch, m, &flags) == 0 && !(flags & RIPC_MSGF_LARGE) && m->type == type &&
           m->kind == RIPC_KIND_ONEWAY;
}

/* The message being released was large: counted once, at its release (a
 * peek may return the same message again). */
static inline void count_large(ripc__chan *ch)
{
    if (ch->lg.lent.base) {
        ripc__stat_add(&ch->st.in.large, 1);
        ripc__stat_add(&ch->st.in.large_bytes, ch->large_len);
    }
}

int ripc__chan_release(ripc__chan *ch, int wake)
{
    count_large(ch);
    int rc = ripc__large_done(&ch->lg);
    ripc_ring_release(ch->rx);
    if (wake)
        ripc__chan_space_wake(ch);
    return rc;
}

int ripc__chan_release_lazy(ripc__chan *ch)
{
    count_large(ch);
    int rc = ripc__large_done(&ch->lg);
    ripc__ring_release_lazy(ch->rx);
    return rc;
}

void ripc__chan_space_wake(ripc__chan *ch)
{
    uint32_t how = ripc__ring_space_wake(ch->rx);
    if (how)
        wake_peer(ch, how, &ch->st.in);
}

/* Does what *w waits for hold now? Loads only, nothing armed. */
static int ready(ripc__chan *ch, const ripc__waitfor *w)
{
    switch (w->what) {
    case RIPC_CHAN_ROOM:
        return ripc__ring_writable(ch->tx, (size_t)w->arg) ||
               (w->also_data && ripc__ring_readable(ch->rx));
    case RIPC_CHAN_CONSUMED:
        return ripc__ring_consumed(ch->tx, w->arg) || (w->also_data && ripc__ring_readable(ch->rx));
    default:
        return ripc__ring_readable(ch->rx);
    }
}

int ripc__chan_arm_space(ripc__chan *ch, const ripc__waitfor *w)
{
    return w->what == RIPC_CHAN_CONSUMED
               ? ripc__ring_arm_producer_pos(ch->tx, w->arg, ch->sleep_how)
               : ripc__ring_arm_producer(ch->tx, (size_t)w->arg, ch->sleep_how);
}

void ripc__chan_disarm_space(ripc__chan *ch)
{
    ripc__ring_disarm_producer(ch->tx);
}

int ripc__chan_wait(ripc__chan *ch, const ripc__waitfor *w, uint64_t deadline)
{
    static const ripc__waitfor data = {RIPC_CHAN_DATA, 0, 0};
    if (!w)
        w = &data;
    int space = w->what != RIPC_CHAN_DATA;
    if (ready(ch, w))
        return 0;
    /* Spin phase: only pays when the peer has a CPU of its own. */
    if (ch->wait_mode != RIPC_WAIT_BLOCK && ch->spin_us > 0) {
        /* The clock is first read after 64 looks (a reply that comes
         * within them costs no clock read); the budgets start there. */
        uint64_t spin_end = 0, next_check = 0;
        for (unsigned i = 1;; i++) {
            ripc__cpu_relax();
            if (ready(ch, w))
                return 0;
            if ((i & 63) == 0) {
                uint64_t now = ripc__now_ns();
                if (now >= deadline)
                    return -ETIMEDOUT;
                if (spin_end == 0) {
                    spin_end = ch->wait_mode == RIPC_WAIT_SPIN
                                   ? RIPC_DEADLINE_NEVER
                                   : now + (uint64_t)ch->spin_us * 1000u;
                    next_check = now + 1000000u; /* peer liveness, every ms */
                }
                if (now >= next_check) {
                    if (!ripc__sock_alive(ch->sock))
                        return 1;
                    next_check = now + 1000000u;
                    ripc__yield(); /* let a co-scheduled peer run */
                }
                if (now >= spin_end)
                    break;
            }
        }
    } else if (ch->wait_mode == RIPC_WAIT_SPIN) {
        /* Spin mode on one CPU: spinning would only steal the peer's CPU,
         * so yield between looks. */
        for (unsigned i = 1;; i++) {
            ripc__yield();
            if (ready(ch, w))
                return 0;
            if ((i & 15) == 0) {
                if (ripc__expired(deadline))
                    return -ETIMEDOUT;
                if (!ripc__sock_alive(ch->sock))
                    return 1;
            }
        }
    }
    /* Sleep phase: the eventcount. */
    for (;;) {
        uint32_t seen = ripc__doorbell_seq(&ch->bell);
        int now_ready =
            space ? ripc__chan_arm_space(ch, w) : ripc__ring_arm_consumer_as(ch->rx, ch->sleep_how);
        if (!now_ready && space && w->also_data &&
            ripc__ring_arm_consumer_as(ch->rx, ch->sleep_how)) {
            ripc__ring_disarm_producer(ch->tx); /* data came: not waiting any more */
            now_ready = 1;
        }
        if (now_ready)
            return 0;
        int ms = ripc__remaining_ms(deadline);
        ripc__stat_add(&ch->st.in.sleeps, 1); /* the worker's thread: it owns both halves */
        int rc = ch->sleep_how == RIPC_SLEEP_WORD
                     ? ripc__doorbell_wait_word(&ch->bell, seen, ch->watch, ms)
                     : ripc__doorbell_wait(&ch->bell, seen, ch->watch, ms);
        if (rc == 1)
            ripc__stat_add(&ch->st.in.wakeups, 1);
        if (space)
            ripc__ring_disarm_producer(ch->tx);
        if (!space || w->also_data)
            ripc__ring_disarm_consumer(ch->rx);
        if (ready(ch, w))
            return 0;
        if (rc == 2)
            return 1;
        if (rc < 0)
            return rc;
        /* Also after a wake-up that brought nothing: rings without data (a
         * peer that keeps ringing, a doorbell descriptor that is always
         * readable) must not stretch the wait past its deadline. */
        if (ms >= 0 && ripc__expired(deadline))
            return -ETIMEDOUT;
    }
}

int ripc__chan_settle_large(ripc__chan *ch, uint64_t deadline)
{
    ripc__waitfor w = {.what = RIPC_CHAN_CONSUMED};
    if (!RIPC_PASS_INBAND || !ch->tx)
        return 0;
    while (ripc__large_in_flight(&ch->lg, ch->tx, &w.arg)) {
        int rc = ripc__chan_wait(ch, &w, deadline);
        if (rc != 0)
            return rc;
    }
    return 0;
}
