/* SPDX-License-Identifier: MIT */
/*
 * A monitor's snapshot (ringipc-stat): the server's counters and a page of
 * its workers', encoded as one SNAPSHOT frame (src/proto.h) and written
 * without waiting. A monitor is a handshake that ends here: it never
 * joins, so it is in no table, no count, no broadcast, and it gets no
 * rings. Loop 0.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "src/server_internal.h"

static uint32_t id_of(void *p)
{
    return ((struct ripc_peer *)p)->id;
}

static int by_id(const void *a, const void *b)
{
    uint32_t x = id_of(*(void *const *)a), y = id_of(*(void *const *)b);
    return x < y ? -1 : x > y;
}

static void head_fill(ripc_server *s, ripc__snap_head *h)
{
    ripc_server_stats_t st = {.size = sizeof st};
    (void)ripc_server_stats(s, &st);
    h->pid = (uint32_t)ripc__self_pid();
    h->peers_now = st.peers_now;
    h->now_ns = ripc__wall_ns();
    h->mono_ns = ripc__now_ns();
    h->opened_ns = st.opened_ns;
    h->peers_total = st.peers_total;
    h->parked_now = st.parked_now;
    h->unhandled = st.unhandled;
    const uint64_t left[6] = {st.left_bye,      st.left_pipe,     st.left_proto,
                              st.left_timedout, st.left_canceled, st.left_other};
    memcpy(h->left, left, sizeof left);
    h->refused = st.refused_version + st.refused_credentials + st.refused_limits +
                 st.refused_transport + st.refused_resources + st.refused_malformed;
    h->hs_failed = st.handshake_hangups + st.handshake_timeouts + st.handshake_evicted;
    h->large_pool_bytes = st.large_pool_bytes;
}

/* The fields a snapshot record carries as ripc_peer_stats_t has them,
 * uint64_t on both sides; the rest peer_fill sums or narrows. */
#define SAME_U64(X)                                                                                \
    X(connected_ns)                                                                                \
    X(ring_bytes)                                                                                  \
    X(ring_in_used)                                                                                \
    X(ring_out_used)                                                                               \
    X(ring_in_high)                                                                                \
    X(ring_out_high)                                                                               \
    X(send_waits)                                                                                  \
    X(send_wait_ns)                                                                                \
    X(sleeps)                                                                                      \
    X(wakeups)                                                                                     \
    X(doorbells)                                                                                   \
    X(dropped)                                                                                     \
    X(large_in)                                                                                    \
    X(large_out)

#define SAME_CHECK(f)                                                                              \
    _Static_assert(sizeof(((ripc_peer_stats_t *)0)->f) == sizeof(uint64_t) &&                      \
                       sizeof(((ripc__snap_peer *)0)->f) == sizeof(uint64_t),                      \
                   #f " is not a uint64_t on both sides");
SAME_U64(SAME_CHECK)

#define SAME_ENTRY(f) {offsetof(ripc_peer_stats_t, f), offsetof(ripc__snap_peer, f)},
static const struct {
    uint16_t from, to;
} same_u64[] = {SAME_U64(SAME_ENTRY)};

static void peer_fill(const ripc_peer_stats_t *o, ripc__snap_peer *r)
{
    memset(r, 0, sizeof *r);
    for (size_t i = 0; i < sizeof same_u64 / sizeof same_u64[0]; i++)
        memcpy((char *)r + same_u64[i].to, (const char *)o + same_u64[i].from, sizeof(uint64_t));
    r->id = o->peer_id;
    r->pid = o->pid;
    r->transport = o->transport == RIPC_TRANSPORT_SHM ? RIPC_XPORT_SHM : RIPC_XPORT_SOCKET;
    for (int k = 0; k < 3; k++) {
        r->msgs_in += o->msgs_in[k];
        r->bytes_in += o->bytes_in[k];
        r->msgs_out += o->msgs_out[k];
        r->bytes_out += o->bytes_out[k];
    }
    r->requests_in = o->msgs_in[RIPC_REQUEST];
    memcpy(r->name, o->name, sizeof r->name - 1);
}

/*
 * The page: the workers with ids from `from` up, lowest first, at most
 * RIPC_SNAP_PEERS_MAX, so that the work done here (a moment under each
 * one's send lock) and the frame stay bounded whatever the number of
 * workers; next_id says where the next page starts. buf holds
 * RIPC_FRAME_HDR + the largest page. Returns the frame's length, or -errno.
 */
static long page_build(ripc_server *s, uint64_t from, uint8_t *buf)
{
    void **all;
    int n = ripc__peer_all(s->t, &s->closing, &all);
    if (n < 0)
        return n;
    void **v = all;
    qsort(v, (size_t)n, sizeof *v, by_id);
    int i = 0;
    while (i < n && id_of(v[i]) < from)
        i++;
    ripc__snap_head h = {0};
    size_t off = RIPC_FRAME_HDR + RIPC_SNAP_HDR;
    for (; i < n && h.count < RIPC_SNAP_PEERS_MAX; i++) {
        ripc_peer_stats_t o;
        ripc__snap_peer r;
        if (ripc__peer_stats_fill(v[i], &o) < 0)
            continue; /* left while we looked */
        peer_fill(&o, &r);
        off += ripc__snap_peer_encode(buf + off, &r);
        h.count++;
    }
    h.next_id = i < n ? id_of(v[i]) : 0;
    for (int k = 0; k < n; k++)
        ripc__peer_unref(v[k]);
    free(all);
    head_fill(s, &h);
    ripc__snap_head_encode(buf + RIPC_FRAME_HDR, &h);
    ripc__frame f = {.ftype = RIPC_FRAME_SNAPSHOT, .len = off - RIPC_FRAME_HDR};
    ripc__frame_encode(buf, &f);
    return (long)off;
}

int ripc__monitor_answer(struct ripc_peer *p, uint64_t from)
{
    ripc_server *s = p->srv;
    size_t cap = RIPC_FRAME_HDR + RIPC_SNAP_HDR +
                 (size_t)RIPC_SNAP_PEERS_MAX * (RIPC_SNAP_REC + RIPC_NAME_MAX);
    uint8_t *buf = malloc(cap);
    if (!buf)
        return -ENOMEM;
    long len = page_build(s, from, buf);
    if (len > 0) {
        /* One send, never a wait: the socket's buffer is made to hold the
         * page (59,280 bytes at most); a monitor whose buffer still cannot take
         * it (a system cap on SO_SNDBUF, or it sent more than its HELLO)
         * gets a short frame and the hang-up. */
        (void)ripc__sock_set_sndbuf(p->sock, (size_t)len);
        long sent = ripc__sock_try_send_fds(p->sock, buf, (size_t)len, NULL, 0);
        if (sent == len)
            ripc__server_count(&s->st.monitors);
        len = sent == len ? 0 : sent < 0 ? sent : -EAGAIN;
    }
    free(buf);
    return (int)len;
}
