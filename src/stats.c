/* SPDX-License-Identifier: MIT */
/*
 * ripc_server_stats, ripc_server_peer_stats, ripc_client_stats: the
 * counters the threads keep as they work (src/stats.h says who writes
 * what), read here from any thread.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "src/client_internal.h"
#include "src/server_internal.h"
#include "src/stats.h"

/* The first published layouts: a caller's size below these is refused,
 * and the macros of the public header must keep these values. */
_Static_assert(sizeof(ripc_peer_stats_t) >= RIPC_PEER_STATS_SIZE_V1, "ripc_peer_stats_t v1");
_Static_assert(sizeof(ripc_server_stats_t) >= RIPC_SERVER_STATS_SIZE_V1, "ripc_server_stats_t v1");
_Static_assert(offsetof(ripc_peer_stats_t, reason) == 312, "ripc_peer_stats_t v1 layout");
_Static_assert(offsetof(ripc_server_stats_t, large_pool_limit) == 168,
               "ripc_server_stats_t v1 layout");

/* The handle h and the caller's struct out, at least v1 bytes by the size
 * it says (*caller), to be filled up to that size or ours, whichever is
 * less (*n). 0 or -EINVAL. */
static int stats_size(const void *h, const void *out, uint32_t v1, uint32_t ours, uint32_t *n,
                      uint32_t *caller)
{
    if (!h || !out)
        return -EINVAL;
    memcpy(caller, out, sizeof *caller);
    if (*caller < v1)
        return -EINVAL;
    *n = *caller < ours ? *caller : ours;
    return 0;
}

/* Copy what we filled into the caller's struct of size n, its size field
 * saying how much; the caller's fields beyond ours are zeroed. */
static void stats_copy(void *out, void *ours, uint32_t n, uint32_t caller_size)
{
    memcpy(ours, &n, sizeof n);
    memcpy(out, ours, n);
    if (caller_size > n)
        memset((unsigned char *)out + n, 0, caller_size - n);
}

/* The two halves of a connection's counters into o. */
static void halves(ripc_peer_stats_t *o, const ripc__stats *st)
{
    for (int k = 0; k < 3; k++) {
        o->msgs_in[k] = ripc__stat_get(&st->in.msgs[k]);
        o->bytes_in[k] = ripc__stat_get(&st->in.bytes[k]);
        o->msgs_out[k] = ripc__stat_get(&st->out.msgs[k]);
        o->bytes_out[k] = ripc__stat_get(&st->out.bytes[k]);
    }
    o->large_in = ripc__stat_get(&st->in.large);
    o->large_bytes_in = ripc__stat_get(&st->in.large_bytes);
    o->large_out = ripc__stat_get(&st->out.large);
    o->large_bytes_out = ripc__stat_get(&st->out.large_bytes);
    o->send_waits = ripc__stat_get(&st->out.waits);
    o->send_wait_ns = ripc__stat_get(&st->out.wait_ns);
    o->sleeps = ripc__stat_get(&st->in.sleeps);
    o->wakeups = ripc__stat_get(&st->in.wakeups);
    o->doorbells = ripc__stat_get(&st->in.bells) + ripc__stat_get(&st->out.bells);
    o->dropped = ripc__stat_get(&st->in.dropped);
    o->proto_errors = ripc__stat_get(&st->in.proto);
}

static uint64_t max2(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

/* Ring fill now and the marks, from the indices; the rings must stay
 * attached meanwhile (the master: send lock held, peer not dead). */
static void rings(ripc_peer_stats_t *o, const ripc__chan *ch)
{
    if (!ch->tx || !ch->rx)
        return;
    o->ring_bytes = ripc__ring_capacity(ch->tx);
    o->ring_in_used = ripc__ring_fill(ch->rx);
    o->ring_out_used = ripc__ring_fill(ch->tx);
    o->ring_in_high = max2(o->ring_in_used, ripc__stat_get(&ch->st.in.high));
    o->ring_out_high = max2(o->ring_out_used, ripc__ring_high(ch->tx));
}

int ripc_server_stats(ripc_server *s, ripc_server_stats_t *out)
{
    uint32_t n, caller;
    int rc = stats_size(s, out, RIPC_SERVER_STATS_SIZE_V1, sizeof *out, &n, &caller);
    if (rc < 0)
        return rc;
    ripc_server_stats_t o = {0};
    o.peers_now = atomic_load_explicit(&s->npeers, memory_order_relaxed);
    o.peers_total = atomic_load_explicit(&s->st.joined, memory_order_relaxed);
    o.parked_now = atomic_load_explicit(&s->nparked, memory_order_relaxed);
    o.opened_ns = s->st.opened_ns;
    uint64_t l[RIPC__LEFT_N], r[RIPC__REFUSED_N];
    for (int i = 0; i < RIPC__LEFT_N; i++)
        l[i] = atomic_load_explicit(&s->st.left[i], memory_order_relaxed);
    for (int i = 0; i < RIPC__REFUSED_N; i++)
        r[i] = atomic_load_explicit(&s->st.refused[i], memory_order_relaxed);
    o.left_bye = l[RIPC__LEFT_BYE];
    o.left_pipe = l[RIPC__LEFT_PIPE];
    o.left_proto = l[RIPC__LEFT_PROTO];
    o.left_timedout = l[RIPC__LEFT_TIMEDOUT];
    o.left_canceled = l[RIPC__LEFT_CANCELED];
    o.left_other = l[RIPC__LEFT_OTHER];
    o.refused_version = r[RIPC__REFUSED_VERSION];
    o.refused_credentials = r[RIPC__REFUSED_CREDENTIALS];
    o.refused_limits = r[RIPC__REFUSED_LIMITS];
    o.refused_transport = r[RIPC__REFUSED_TRANSPORT];
    o.refused_resources = r[RIPC__REFUSED_RESOURCES];
    o.refused_malformed = r[RIPC__REFUSED_MALFORMED];
    o.handshake_hangups = r[RIPC__HS_HANGUP];
    o.handshake_timeouts = r[RIPC__HS_TIMEOUT];
    o.handshake_evicted = r[RIPC__HS_EVICTED];
    o.unhandled = atomic_load_explicit(&s->dropped, memory_order_relaxed);
    o.large_pool_bytes = atomic_load_explicit(&s->large_idle.idle, memory_order_relaxed);
    o.large_pool_limit = s->large_idle.cap;
    o.monitors = atomic_load_explicit(&s->st.monitors, memory_order_relaxed);
    stats_copy(out, &o, n, caller);
    return 0;
}

int ripc__peer_stats_fill(struct ripc_peer *p, ripc_peer_stats_t *o)
{
    memset(o, 0, sizeof *o);
    /* Written before the table published p (A1), never after. */
    o->peer_id = p->id;
    o->pid = p->pid;
    o->transport = p->xport == RIPC_XPORT_SHM ? RIPC_TRANSPORT_SHM : RIPC_TRANSPORT_SOCKET;
    o->connected_ns = p->connected_ns;
    snprintf(o->name, sizeof o->name, "%s", p->name);
    snprintf(o->reason, sizeof o->reason, "%s", p->reason);
    halves(o, &p->ch.st);
    if (p->xport == RIPC_XPORT_SHM) {
        /* The rings are unmapped by a drop, under the send lock (Z1): held,
         * and p not dead, they stay. Our own bias, if we hold one, stays. */
        ripc__peer_lock(p, 1);
        if (atomic_load(&p->state) != P_DEAD) /* Z2 */
            rings(o, &p->ch);
        pthread_mutex_unlock(&p->send_mu);
    }
    return atomic_load(&p->state) == P_DEAD ? -ENOENT : 0; /* it left while we looked */
}

int ripc_server_peer_stats(ripc_server *s, uint32_t peer_id, ripc_peer_stats_t *out)
{
    uint32_t n, caller;
    int rc = stats_size(s, out, RIPC_PEER_STATS_SIZE_V1, sizeof *out, &n, &caller);
    if (rc < 0)
        return rc;
    /* A reference, as the send calls take on their slow path: p stays a
     * valid struct until we let go, whatever its loop does meanwhile. */
    void *pv;
    if ((rc = ripc__peer_get(s->t, peer_id, &s->closing, &pv)) < 0)
        return rc;
    ripc_peer_stats_t o;
    rc = ripc__peer_stats_fill(pv, &o);
    ripc__peer_unref(pv);
    if (rc < 0)
        return rc;
    stats_copy(out, &o, n, caller);
    return 0;
}

int ripc_client_stats(ripc_client *c, ripc_peer_stats_t *out)
{
    uint32_t n, caller;
    int rc = stats_size(c, out, RIPC_PEER_STATS_SIZE_V1, sizeof *out, &n, &caller);
    if (rc < 0)
        return rc;
    ripc_peer_stats_t o = {0};
    o.peer_id = c->id;
    o.transport = c->xport == RIPC_XPORT_SHM ? RIPC_TRANSPORT_SHM : RIPC_TRANSPORT_SOCKET;
    o.connected_ns = c->connected_ns;
    snprintf(o.name, sizeof o.name, "%s", c->name);
    snprintf(o.reason, sizeof o.reason, "%s", c->reason);
    halves(&o, &c->ch.st);
    if (c->xport == RIPC_XPORT_SHM)
        rings(&o, &c->ch); /* attached until close */
    stats_copy(out, &o, n, caller);
    return 0;
}
