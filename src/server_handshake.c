/* SPDX-License-Identifier: MIT */
/*
 * A worker's handshake, all on loop 0: accept (bounded: slots, eviction of
 * silent connections, a refusal when out of descriptors), read its HELLO,
 * check who it is and what it speaks, choose the transport, build the
 * channel and answer WELCOME or REJECT. An accepted worker goes to a loop
 * (ripc__loop_place).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/adopt.h"
#include "src/server_internal.h"

#define MAX_HANDSHAKES  256
#define LISTEN_PAUSE_NS 100000000u

/* At most this many accepts per wake-up: the handshakes already accepted
 * are read in between (the listener is level-triggered, it comes back). */
#define ACCEPT_BATCH 64

/* REJECT with code (a positive errno) and a reason, best effort: the
 * caller drops p whatever happens here. Loop 0; leaves p's socket blocking. */
static void send_reject(struct ripc_peer *p, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void send_reject(struct ripc_peer *p, int code, const char *fmt, ...)
{
    uint8_t buf[RIPC_FRAME_HDR + RIPC_REASON_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf((char *)buf + RIPC_FRAME_HDR, RIPC_REASON_MAX + 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if (n > (int)RIPC_REASON_MAX)
        n = RIPC_REASON_MAX;
    int why = code == EPROTONOSUPPORT ? RIPC__REFUSED_VERSION
              : code == EACCES        ? RIPC__REFUSED_CREDENTIALS
              : code == EMSGSIZE      ? RIPC__REFUSED_LIMITS
              : code == ENOTSUP       ? RIPC__REFUSED_TRANSPORT
              : code == EPROTO        ? RIPC__REFUSED_MALFORMED
                                      : RIPC__REFUSED_RESOURCES;
    ripc__server_count(&p->srv->st.refused[why]);
    ripc__frame f = {.ftype = RIPC_FRAME_REJECT, .type = (uint16_t)code, .len = (uint64_t)n};
    ripc__frame_encode(buf, &f);
    ripc__sock_set_nonblock(p->sock, 0);
    /* Best effort, bounded: the socket buffer takes a frame this small. */
    (void)ripc__sock_try_send_fds(p->sock, buf, RIPC_FRAME_HDR + (size_t)n, NULL, 0);
}

/*
 * The worker's doorbell. Never an eventfd: the worker would share the open
 * file with us, could clear O_NONBLOCK on it and fill the counter, and our
 * next ring (write) would block the dispatch thread for good. A socketpair
 * (send with MSG_DONTWAIT, per call) or a futex word (atomic add + wake)
 * cannot block us whatever the worker does.
 */
static int pick_worker_db(ripc_server *s, uint32_t caps)
{
    int pref = (int)((caps >> 16) & 0xF);
    uint32_t both = caps & (uint32_t)s->worker_db_caps & ~RIPC_DB_CAP(RIPC_DB_EVENTFD);
    if (pref && (both & RIPC_DB_CAP(pref)))
        return pref;
    if (both & RIPC_DB_CAP(RIPC_DB_SOCKET))
        return RIPC_DB_SOCKET;
    if (both & RIPC_DB_CAP(RIPC_DB_FUTEX))
        return RIPC_DB_FUTEX;
    if (both & RIPC_DB_CAP(RIPC_DB_EVENT)) /* Windows: shm/doorbell_win32.c says why it is safe */
        return RIPC_DB_EVENT;
    return RIPC_DB_NONE;
}

/* Compare a token in time that depends only on the lengths, not on where
 * the first difference is. */
static int token_equal(const char *want, size_t wl, const uint8_t *got, size_t gl)
{
    unsigned diff = (unsigned)(wl ^ gl);
    for (size_t i = 0; i < wl; i++)
        diff |= (unsigned)((uint8_t)want[i] ^ (i < gl ? got[i] : 0));
    return diff == 0;
}

/* For the REJECT's text only. */
static uint32_t own_uid(void)
{
    return ripc__self_euid();
}

/* Handshake done: table, callbacks, then a loop (joined runs before any
 * handler). Loop 0. 0, or the insert's -errno with p still handshaking
 * (the caller drops it). */
static int peer_activate(struct loop *L, struct ripc_peer *p)
{
    ripc_server *s = p->srv;
    int rc;
    ripc__poller_del(L->pl, p->sock);
    atomic_fetch_add(&p->refs, 1); /* the table's reference */
    /* A1: active before the insert publishes p (T1 in tables_urcu.c): a
     * sender that finds it may mark it broken, which only a joined peer can
     * be. */
    p->connected_ns = ripc__wall_ns();
    atomic_store(&p->state, P_ACTIVE);
    if ((rc = ripc__peer_insert(s->t, p->id, p)) < 0) {
        atomic_store(&p->state, P_HANDSHAKE); /* nobody could find it */
        atomic_fetch_sub(&p->refs, 1);
        return rc;
    }
    s->n_hs--;
    p->hs_len = 0;
    atomic_fetch_add(&s->npeers, 1);
    ripc__server_count(&s->st.joined);
    if (s->joined)
        s->joined(p, s->cb_arg);
    ripc__loop_place(L, p);
    return 0;
}

/* WELCOME w to p, with the objects it is to hold (platform/pass.h), on
 * the socket made blocking for it (a frame this small goes at once unless
 * the worker hangs up). 0 or -errno. */
static int send_welcome(struct ripc_peer *p, ripc__welcome *w, const ripc__pass_obj *o, int n)
{
    snprintf(w->reason, sizeof w->reason, "%s", p->reason);
    w->nfds = (uint8_t)n;
    w->inband = RIPC_PASS_INBAND;
    int rc = ripc__pass_give(&p->ch.pass, o, n, w->handles);
    if (rc < 0)
        return rc;
    uint8_t buf[RIPC_FRAME_HDR + RIPC_HANDSHAKE_MAX];
    size_t plen = ripc__welcome_encode(buf + RIPC_FRAME_HDR, RIPC_HANDSHAKE_MAX, w);
    ripc__frame fr = {.ftype = RIPC_FRAME_WELCOME, .len = plen};
    ripc__frame_encode(buf, &fr);
    ripc__sock_set_nonblock(p->sock, 0);
    rc = ripc__pass_send(&p->ch.pass, p->sock, buf, RIPC_FRAME_HDR + plen, o, w->handles, n);
    ripc__sock_set_nonblock(p->sock, 1);
    return rc;
}

/* Socket mode for p: WELCOME without descriptors; every message will be a
 * frame on the control socket. Loop 0. 0 (p active), or -errno: the caller
 * drops p. */
static int socket_welcome(struct loop *L, struct ripc_peer *p, uint16_t version, uint64_t maxmsg,
                          const char *why)
{
    ripc_server *s = p->srv;
    p->xport = RIPC_XPORT_SOCKET;
    p->ch.max_message = maxmsg;
    p->rx.budget = &s->rx_budget;
    p->ch.sock = p->ch.watch = p->sock;
    p->id = atomic_fetch_add(&s->next_id, 1);
    snprintf(p->reason, sizeof p->reason, "socket mode: %s", why);
    ripc__welcome w = {.version = version,
                       .transport = RIPC_XPORT_SOCKET,
                       .peer_id = p->id,
                       .max_message = maxmsg};
    int rc = send_welcome(p, &w, NULL, 0);
    return rc < 0 ? rc : peer_activate(L, p);
}

/* ---- HELLO, step by step: each check sends its REJECT and returns <0 ---- */

/* The worker's range of protocol versions must meet ours; a monitor's
 * must reach the least version with a monitor. The highest in common is
 * chosen (*version). */
static int check_version(struct ripc_peer *p, const ripc__hello *h, uint16_t *version)
{
    unsigned least = (h->caps & RIPC_CAP_MONITOR) ? RIPC_PROTO_MONITOR : RIPC_PROTO_VERSION;
    if (h->version_min > RIPC_PROTO_VERSION_MAX || h->version_max < least ||
        h->version_min > h->version_max) {
        send_reject(p, EPROTONOSUPPORT, "%s speaks protocol versions %u..%u, master speaks %u..%u",
                    (h->caps & RIPC_CAP_MONITOR) ? "monitor" : "worker", h->version_min,
                    h->version_max, least, RIPC_PROTO_VERSION_MAX);
        return -EPROTONOSUPPORT;
    }
    *version = h->version_max < RIPC_PROTO_VERSION_MAX ? h->version_max : RIPC_PROTO_VERSION_MAX;
    return 0;
}

/* The kernel's word on who connected: its uid must be one we accept, and
 * its pid, where the platform tells it (not getpeereid: sockets/sock.h),
 * replaces the one the HELLO claims. A unix socket without credentials is
 * refused; TCP has none (the token stands in). */
static int check_credentials(struct ripc_peer *p)
{
    ripc_server *s = p->srv;
    uint32_t uid, gid;
    int32_t pid;
    if (ripc__sock_peer_cred(p->sock, &uid, &gid, &pid) == 0) {
        p->uid = uid;
        if (pid >= 0) /* -1: unknown */
            p->pid = pid;
        if (!ripc__uid_allowed(&s->opt, uid)) {
            send_reject(p, EACCES, "uid %u is not allowed (the master runs as uid %u)", uid,
                        own_uid());
            return -EACCES;
        }
    } else if (s->addr.kind == RIPC_ADDR_UNIX) {
        send_reject(p, EACCES, "peer credentials unavailable");
        return -EACCES;
    }
    return 0;
}

/* TCP: the worker must present the master's token, unless configured not
 * to need one. */
static int check_token(struct ripc_peer *p, const ripc__hello *h)
{
    ripc_server *s = p->srv;
    if (s->addr.kind != RIPC_ADDR_TCP || s->opt.tcp_without_token)
        return 0;
    const char *want = s->opt.token ? s->opt.token : "";
    size_t wl = strlen(want);
    if (wl == 0) {
        send_reject(p, EACCES,
                    "this master has no token, and tcp:// needs one "
                    "(ripc_options.token or RIPC_TOKEN)");
        return -EACCES;
    }
    if (!token_equal(want, wl, h->token, h->token_len)) {
        send_reject(p, EACCES, "wrong token");
        return -EACCES;
    }
    return 0;
}

/* The smaller of the two sides' max_message into *maxmsg; a worker's below
 * the least is refused: our error replies would not fit, and its requests
 * could hang. */
static int check_max_message(struct ripc_peer *p, const ripc__hello *h, uint64_t *maxmsg)
{
    if (h->max_message && h->max_message < RIPC_MIN_MAX_MESSAGE) {
        send_reject(p, EMSGSIZE, "max_message %llu is below the least of %llu bytes",
                    (unsigned long long)h->max_message, (unsigned long long)RIPC_MIN_MAX_MESSAGE);
        return -EMSGSIZE;
    }
    *maxmsg = p->srv->opt.max_message;
    if (h->max_message && h->max_message < *maxmsg)
        *maxmsg = h->max_message;
    return 0;
}

/*
 * Shared memory when both sides can and neither side asks otherwise (the
 * segment, of ring bytes per ring, is made here), else socket mode when the
 * worker takes it. RIPC_XPORT_SHM (*wdb: the worker's doorbell kind),
 * RIPC_XPORT_SOCKET (why: the reason, for ripc_peer_transport_reason), or
 * <0 after a REJECT.
 */
static int choose_transport(struct ripc_peer *p, const ripc__hello *h, size_t ring, int *wdb,
                            char *why, size_t why_len)
{
    ripc_server *s = p->srv;
    int need_shm = h->transport == RIPC_TRANSPORT_SHM || s->opt.transport == RIPC_TRANSPORT_SHM;
    int can_sock = (h->caps & RIPC_CAP_SOCKET) != 0;
    const char *sock_why = NULL;
    if (s->addr.kind == RIPC_ADDR_TCP)
        sock_why = "the connection is TCP (descriptors cannot be passed)";
    else if (h->transport == RIPC_TRANSPORT_SOCKET)
        sock_why = "the worker asked for it";
    else if (s->opt.transport == RIPC_TRANSPORT_SOCKET)
        sock_why = "the master is configured for it";
    else if (!(h->caps & RIPC_CAP_SHM))
        sock_why = "the worker cannot map shared memory";
    if (sock_why) {
        if (need_shm || !can_sock) {
            send_reject(p, ENOTSUP, "shared memory was required but %s",
                        need_shm ? sock_why : "the worker supports neither transport");
            return -ENOTSUP;
        }
        snprintf(why, why_len, "%s", sock_why);
        return RIPC_XPORT_SOCKET;
    }
    if ((*wdb = pick_worker_db(s, h->caps)) == RIPC_DB_NONE) {
        send_reject(p, EPROTONOSUPPORT, "no doorbell kind in common");
        return -EPROTONOSUPPORT;
    }
    char seg_why[RIPC_SEG_WHY_LEN] = "";
    int rc = ripc__chan_create_segment(&p->ch, ring, seg_why, sizeof seg_why);
    if (rc < 0) {
        if (need_shm || !can_sock) {
            send_reject(p, ENOTSUP, "shared memory unavailable on the master: %s", seg_why);
            return rc;
        }
        snprintf(why, why_len, "shared memory unavailable on the master (%s)", seg_why);
        return RIPC_XPORT_SOCKET;
    }
    return RIPC_XPORT_SHM;
}

/*
 * Asymmetric fences where both sides registered and the consumer of the
 * ring does not sleep after every message. Block mode would pay a remote
 * fence per message, and so would the other modes where the two sides
 * cannot run at once (!spins: ripc__spin_ok said no, both then sleep at
 * once); a plain fence is cheaper there. The worker decides its own
 * spinning from the same two affinities, so our answer stands for its side
 * too. RIPC_CAP_FAST_* bits for the WELCOME.
 */
static uint32_t shm_fences(struct ripc_peer *p, const ripc__hello *h, int spins)
{
    int mb = spins && ripc__remote_fence_init() && (h->caps & RIPC_CAP_MEMBARRIER);
    int w_wait = (int)((h->caps >> RIPC_CAP_WAIT_SHIFT) & 3);
    int fast_w2m = mb && p->srv->opt.wait != RIPC_WAIT_BLOCK;
    int fast_m2w = mb && w_wait != RIPC_WAIT_BLOCK;
    ripc__ring_set_fastpub(p->ch.rx, fast_w2m);
    ripc__ring_set_fastpub(p->ch.tx, fast_m2w);
    /* Space direction: the producer arms, so the producer's wait mode
     * decides (w->m: the worker's, as for fast_m2w; m->w: ours). */
    ripc__ring_set_fastspace(p->ch.rx, fast_m2w);
    ripc__ring_set_fastspace(p->ch.tx, fast_w2m);
    return (fast_w2m ? RIPC_CAP_FAST_W2M : 0u) | (fast_m2w ? RIPC_CAP_FAST_M2W : 0u);
}

/*
 * Both doorbells: the worker's of kind wdb (a futex waits on the m->w
 * ring's data word; a socket doorbell gets the word too where the worker
 * offers to sleep on it, RIPC_CAP_SLEEP_WORD, and we can wake it) and ours.
 * 1 when the worker may sleep on the word, 0, or <0 after a REJECT.
 */
static int shm_doorbells(struct ripc_peer *p, const ripc__hello *h, size_t ring, int wdb)
{
    ripc_server *s = p->srv;
    _Atomic uint32_t *word =
        &((struct ripc_ring_hdr *)((unsigned char *)p->ch.seg.base + ripc_ring_size(ring)))
             ->wait.w.data_seq;
    int sleep_word = wdb == RIPC_DB_SOCKET && (h->caps & RIPC_CAP_SLEEP_WORD) &&
                     (s->worker_db_caps & RIPC_DB_CAP(RIPC_DB_FUTEX));
    int rc;
    if ((rc = ripc__doorbell_open(&p->ch.peer_bell, wdb, wdb == RIPC_DB_FUTEX ? word : NULL)) < 0 ||
        (rc = ripc__doorbell_open(&p->ch.bell, s->master_db, NULL)) < 0) {
        send_reject(p, ENOMEM, "doorbell setup failed: %s", ripc_strerror(rc));
        return rc;
    }
    if (sleep_word)
        p->ch.peer_bell.word = word;
    return sleep_word;
}

/* Shared memory for p, its segment made: rings, fences, sizes, doorbells,
 * then WELCOME with the descriptors the worker is to hold. Loop 0. 0 (p
 * active), or -errno: the caller drops p. */
static int shm_welcome(struct loop *L, struct ripc_peer *p, const ripc__hello *h, uint16_t version,
                       size_t ring, int wdb, uint64_t maxmsg)
{
    ripc_server *s = p->srv;
    int rc;
    if ((rc = ripc__chan_attach(&p->ch, ring, 1)) < 0) {
        send_reject(p, ENOMEM, "ring setup failed");
        return rc;
    }
    int spins = ripc__spin_ok(p->pid);
    uint32_t caps = shm_fences(p, h, spins);
    /* Large messages travel in buffers of their own (src/large.h): sealed
     * memfds, which any peer maps, or shm_open objects, which only a worker
     * that maps them under its fault guard takes. Otherwise a message is at
     * most one ring record. */
    if (!RIPC_PASS_LARGE ||
        (!(h->caps & RIPC_CAP_LARGE_UNSEALED) &&
         (!(h->caps & RIPC_CAP_MEMFD) || !ripc__segment_supported(RIPC_SEG_MEMFD))))
        maxmsg = maxmsg < p->ch.max_payload ? maxmsg : p->ch.max_payload;
    p->ch.max_message = maxmsg;
    if (maxmsg > p->ch.max_payload && s->opt.max_inline && s->opt.max_inline < p->ch.max_inline)
        p->ch.max_inline = s->opt.max_inline; /* only where large messages can go */
    p->ch.sock = p->sock;
    /* The worker's process as the connection reports it (never HELLO's
     * pid): where its handles go, and what our waits watch (Windows). */
    int32_t kpid = -1;
    (void)ripc__sock_peer_cred(p->sock, NULL, NULL, &kpid);
    if ((rc = ripc__pass_open(&p->ch.pass, kpid, 1)) < 0) {
        send_reject(p, ENOMEM, "cannot open the worker's process: %s", ripc_strerror(rc));
        return rc;
    }
    p->ch.watch = (int)ripc__pass_watch(&p->ch.pass, p->sock);
    p->ch.wait_mode = s->opt.wait;
    p->ch.spin_us = spins ? s->opt.spin_us : 0;
    int sleep_word = shm_doorbells(p, h, ring, wdb);
    if (sleep_word < 0)
        return sleep_word;
    p->id = atomic_fetch_add(&s->next_id, 1);
    p->xport = RIPC_XPORT_SHM;
    snprintf(p->reason, sizeof p->reason, "shared memory (%s segment, %s doorbell%s)",
             ripc__segment_backend_name(p->ch.seg.backend), ripc__doorbell_name(wdb),
             sleep_word ? " + futex word" : "");

    ripc__welcome w = {.version = version,
                       .transport = RIPC_XPORT_SHM,
                       .peer_id = p->id,
                       .caps = caps | (sleep_word ? RIPC_CAP_SLEEP_WORD : 0u),
                       .worker_db = (uint8_t)wdb,
                       .master_db = (uint8_t)s->master_db,
                       .ring_bytes = ring,
                       .seg_bytes = p->ch.seg.len,
                       .max_message = maxmsg,
                       .max_inline = p->ch.max_payload};
    ripc__pass_obj o[RIPC_PASS_MAX];
    int n = 0;
    o[n++] = (ripc__pass_obj){p->ch.seg.fd, RIPC_PASS_SEGMENT};
    o[n++] = (ripc__pass_obj){p->ch.bell.ring_fd, RIPC_PASS_RING_END};
    if (wdb != RIPC_DB_FUTEX)
        o[n++] = (ripc__pass_obj){p->ch.peer_bell.wait_fd, RIPC_PASS_WAIT_END};
    if ((rc = send_welcome(p, &w, o, n)) < 0)
        return rc;
    /* What the worker now holds we no longer need. */
    ripc__segment_close_fd(&p->ch.seg);
    if (p->ch.bell.ring_fd != p->ch.bell.wait_fd) {
        ripc__fd_close(p->ch.bell.ring_fd);
        p->ch.bell.ring_fd = -1;
    }
    if (wdb == RIPC_DB_SOCKET) {
        ripc__fd_close(p->ch.peer_bell.wait_fd);
        p->ch.peer_bell.wait_fd = -1;
    }
    return peer_activate(L, p);
}

/* HELLO complete in p->hs: check it, choose the transport, build the
 * channel, WELCOME or REJECT. 0 when p is now active, <0 when it must be
 * closed; a monitor: 1 when it got its snapshot, 2 when it could not take
 * it (closed too). */
static int process_hello(struct loop *L, struct ripc_peer *p, const ripc__frame *f)
{
    ripc_server *s = p->srv;
    ripc__hello h;
    if (ripc__hello_decode(p->hs + RIPC_FRAME_HDR, (size_t)f->len, &h) < 0) {
        send_reject(p, EPROTO, "malformed HELLO");
        return -EPROTO;
    }
    memcpy(p->name, h.name, sizeof p->name);
    p->pid = (int32_t)h.pid;
    uint64_t maxmsg;
    uint16_t version;
    int rc;
    if ((rc = check_version(p, &h, &version)) < 0 || (rc = check_credentials(p)) < 0 ||
        (rc = check_token(p, &h)) < 0)
        return rc;
    /* A monitor: the same door as a worker's, then a snapshot and the
     * hang-up (src/server_monitor.c); its ring_bytes is where its page
     * starts. */
    if (h.caps & RIPC_CAP_MONITOR)
        return ripc__monitor_answer(p, h.ring_bytes) < 0 ? 2 : 1;
    if ((rc = check_max_message(p, &h, &maxmsg)) < 0)
        return rc;
    size_t ring = s->opt.ring_bytes;
    if (h.ring_bytes && ripc__ring_bytes_ok((size_t)h.ring_bytes))
        ring = (size_t)h.ring_bytes;
    int wdb = RIPC_DB_NONE;
    char why[RIPC_SEG_WHY_LEN + 48];
    rc = choose_transport(p, &h, ring, &wdb, why, sizeof why);
    if (rc == RIPC_XPORT_SOCKET)
        return socket_welcome(L, p, version, maxmsg, why);
    return rc < 0 ? rc : shm_welcome(L, p, &h, version, ring, wdb, maxmsg);
}

/* A handshake ends without a join (bad HELLO, hang-up, deadline, evicted):
 * its slot back, its socket out of loop 0's poller, p dropped. why: the
 * counter of a handshake that ended without a REJECT (RIPC__HS_*), or -1
 * (one was sent, and counted). Loop 0. */
static void hs_fail(struct loop *L, struct ripc_peer *p, int why)
{
    if (why >= 0)
        ripc__server_count(&p->srv->st.refused[why]);
    p->srv->n_hs--;
    ripc__poller_del(L->pl, p->sock);
    ripc__peer_drop(NULL, p, -EPROTO);
}

void ripc__handshake_readable(struct loop *L, struct ripc_peer *p)
{
    for (;;) {
        size_t want = p->hs_need ? p->hs_need : RIPC_FRAME_HDR;
        long n = ripc__sock_try_recv(p->sock, p->hs + p->hs_len, want - p->hs_len);
        if (n == -EPROTO)
            send_reject(p, EPROTO, "a descriptor attached to the HELLO");
        if (n == 0 || (n < 0 && n != -EAGAIN)) {
            hs_fail(L, p, n == -EPROTO ? -1 : RIPC__HS_HANGUP);
            return;
        }
        if (n < 0)
            return; /* EAGAIN: the rest comes later */
        p->hs_len += (size_t)n;
        if (p->hs_len < want)
            return;
        ripc__frame f;
        if (ripc__frame_decode(p->hs, &f, RIPC_HANDSHAKE_MAX) < 0 || f.ftype != RIPC_FRAME_HELLO) {
            send_reject(p, EPROTO, "expected a HELLO frame");
            hs_fail(L, p, -1);
            return;
        }
        if (p->hs_need == 0 && f.len > 0) {
            p->hs_need = RIPC_FRAME_HDR + (size_t)f.len;
            continue;
        }
        int rc = process_hello(L, p, &f);
        if (rc == 2)
            hs_fail(L, p, RIPC__HS_HANGUP); /* a monitor that could not take its snapshot */
        else if (rc != 0)
            hs_fail(L, p, -1); /* after its REJECT, or a monitor served */
        return;
    }
}

/* Stop accepting for a moment: out of descriptors or memory. A
 * level-triggered listener left in the poller would otherwise spin the loop. */
static void pause_listener(struct loop *L)
{
    ripc_server *s = L->s;
    if (s->listen_paused)
        return;
    ripc__poller_del(L->pl, s->lfd);
    s->listen_paused = ripc__now_ns() + LISTEN_PAUSE_NS;
}

/*
 * The handshake slots are full: give the slot of the oldest unfinished
 * handshake to the connection waiting in the listener. An honest worker
 * sends its HELLO as soon as it connects and finishes within a round or
 * two, so connections that sit there silent (a flood, or a scanner) evict
 * each other instead of keeping everyone out until their deadline.
 */
static void hs_evict_oldest(struct loop *L)
{
    ripc_server *s = L->s;
    struct ripc_peer *old = NULL;
    pthread_mutex_lock(&s->all_mu);
    for (struct ripc_peer *p = s->all; p; p = p->all_next)
        if (p->state == P_HANDSHAKE && (!old || p->hs_deadline < old->hs_deadline))
            old = p;
    pthread_mutex_unlock(&s->all_mu);
    if (old)
        hs_fail(L, old, RIPC__HS_EVICTED);
}

void ripc__handshake_sweep(struct loop *L)
{
    ripc_server *s = L->s;
    /* Arrivals counted one eviction each, but handshakes that ended in the
     * same look (a worker joined, or failed) gave their slots back: evict
     * only down to the limit. */
    for (; L->hs_evict && s->n_hs > MAX_HANDSHAKES; L->hs_evict--)
        hs_evict_oldest(L);
    L->hs_evict = 0;
    if (L->idx != 0 || (s->n_hs == 0 && s->listen_paused == 0))
        return;
    uint64_t now = ripc__now_ns();
    if (s->listen_paused && now >= s->listen_paused) {
        s->listen_paused = 0;
        ripc__loop_watch(L, s->lfd, &s->ev_listen);
    }
    for (;;) {
        struct ripc_peer *late = NULL;
        pthread_mutex_lock(&s->all_mu);
        for (struct ripc_peer *p = s->all; p && !late; p = p->all_next)
            if (p->state == P_HANDSHAKE && now >= p->hs_deadline)
                late = p;
        pthread_mutex_unlock(&s->all_mu);
        if (!late)
            break;
        hs_fail(L, late, RIPC__HS_TIMEOUT);
    }
}

/* A connection to handshake on loop L (loop 0): a peer that waits for its
 * HELLO. Takes fd, also on failure (-ENOMEM). */
static int hs_start(struct loop *L, int fd)
{
    ripc_server *s = L->s;
    struct ripc_peer *p = ripc__peer_new(s, fd);
    if (!p)
        return -ENOMEM;
    p->hs_deadline = ripc__now_ns() + (uint64_t)s->opt.connect_timeout_ms * 1000000u;
    s->n_hs++;
    if (ripc__loop_watch(L, p->sock, &p->ev_sock) < 0) {
        s->n_hs--; /* ripc__peer_drop gives back only what an active peer holds */
        ripc__peer_drop(NULL, p, -ENOMEM);
        return -ENOMEM;
    }
    return 0;
}

/*
 * Out of descriptors: accept one waiting connection on the descriptor kept
 * in reserve, tell it why with a REJECT, and close it, so that a worker
 * learns at once what is wrong rather than waiting for its connect timeout.
 * 0: one refused; <0: none was waiting, or the reserve could not be had.
 */
static int refuse_one(ripc_server *s)
{
    if (s->spare_fd < 0)
        return -EMFILE;
    ripc__fd_close(s->spare_fd);
    intptr_t fd;
    int rc = ripc__sock_accept(s->lfd, &fd);
    if (rc == 0) {
        struct ripc_peer tmp = {.srv = s, .sock = (int)fd};
        send_reject(&tmp, EMFILE,
                    "master out of descriptors: its limit of %llu open files (RLIMIT_NOFILE) "
                    "is reached",
                    (unsigned long long)ripc__fd_limit());
        /* Read what the worker sent first: closing a TCP socket with
         * unread bytes resets it, and the worker could lose the REJECT.
         * Shut for reading too: a unix worker can queue nothing (no
         * descriptors) after that read. */
        ripc__sock_shutdown(fd, RIPC_SOCK_SHUT_RDWR);
        ripc__sock_dispose((int)fd);
    }
    s->spare_fd = ripc__fd_reserve();
    return rc;
}

void ripc__handshake_accept(struct loop *L)
{
    ripc_server *s = L->s;
    /* The closers hold many descriptors peers passed, and their closes do
     * not end: no new connection (sockets/closer.h), or a peer that was
     * dropped for it could come back to pass more, until our table is
     * full. The connected peers are served meanwhile. */
    if (ripc__fd_dispose_full()) {
        pause_listener(L);
        return;
    }
    for (int k = 0; k < ACCEPT_BATCH; k++) {
        intptr_t fd;
        int arc = ripc__sock_accept(s->lfd, &fd);
        if ((arc == -EMFILE || arc == -ENFILE) && refuse_one(s) == 0)
            continue;
        if (arc == -EMFILE || arc == -ENFILE || arc == -ENOBUFS || arc == -ENOMEM)
            pause_listener(L);
        if (arc < 0)
            return;
        /* Evict only for a connection that came: not when none waits; and
         * only after the events of this look, one of which may be the
         * evicted peer's (ripc__handshake_sweep). */
        if (s->n_hs >= MAX_HANDSHAKES + L->hs_evict)
            L->hs_evict++;
        hs_start(L, (int)fd);
    }
}

int ripc__server_adopt_fd(ripc_server *s, int fd)
{
    if (!s || fd < 0)
        return -EINVAL;
    return hs_start(&s->loops[0], fd);
}
