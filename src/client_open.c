/* SPDX-License-Identifier: MIT */
/*
 * Opening a client: connect (or take a connected descriptor), check who
 * listens, send HELLO, and set up the transport WELCOME chose: map the
 * segment and adopt the doorbells, or start socket mode's writer queue.
 * Everything here runs on the thread that opens, before anyone else can see
 * the client; the blocking steps share one deadline (connect_timeout_ms).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/adopt.h"
#include "src/chan.h"
#include "src/client_internal.h"
#include "src/frames.h"
#include "src/internal.h"
#include "src/outq.h"

/* A REJECT's code (positive errno from the master) as open returns it: the
 * codes a caller can act on pass through, anything else -ECONNREFUSED. */
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

/* HELLO's caps: what this process can do (segments, doorbells, fences),
 * the preferred doorbell in bits 16..19 and the wait mode (src/proto.h). */
static uint32_t hello_caps(const ripc_options *o)
{
    uint32_t caps = ripc__doorbell_caps() | RIPC_CAP_SOCKET;
    if (RIPC_PASS_LARGE) /* Windows: a large message's buffer cannot be passed */
        caps |= RIPC_CAP_LARGE_UNSEALED;
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

/* HELLO, then WELCOME or REJECT on c->sock, by deadline; sets up the
 * transport WELCOME chose (mapped segment and doorbells, or the outq). 0, a
 * REJECT's code (reject_errno), -EPROTO (malformed WELCOME: why says what),
 * -ECONNREFUSED, -ETIMEDOUT, -EINVAL, or another -errno. Received
 * descriptors not taken over are closed on every path. */
static int handshake(ripc_client *c, uint64_t deadline, char *why, size_t why_len)
{
    ripc__hello h = {.version_min = RIPC_PROTO_VERSION,
                     .version_max = RIPC_PROTO_VERSION,
                     .caps = hello_caps(&c->opt),
                     .pid = (uint32_t)ripc__self_pid(),
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
    if (ripc__welcome_decode_as(buf, (size_t)f.len, &w, RIPC_PASS_INBAND) < 0 ||
        w.version != RIPC_PROTO_VERSION) {
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
    if (w.transport != RIPC_XPORT_SHM || ripc__pass_take(w.handles, w.nfds, fds, &nfds) < 0 ||
        nfds < 2 || !ripc__ring_bytes_ok((size_t)w.ring_bytes) ||
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
    /* Windows: our waits watch the master's process (platform/pass.h). */
    if ((rc = ripc__pass_open(&c->ch.pass, mpid, 0)) < 0) {
        ripc__set_why(why, why_len, 0, "cannot watch the master's process: %s", ripc_strerror(rc));
        goto out;
    }
    c->ch.watch = (int)ripc__pass_watch(&c->ch.pass, c->sock);
    c->ch.spin_us = ripc__spin_ok(mpid) ? c->opt.spin_us : 0;
    c->q_cap = (size_t)w.ring_bytes;
    if (c->ch.max_message > c->ch.max_payload)
        c->q_cap += (size_t)c->ch.max_message; /* room for one large message */
    snprintf(c->reason, sizeof c->reason, "%s", w.reason);
    rc = 0;
out:
    for (int i = 0; i < 3; i++)
        if (fds[i] >= 0)
            ripc__fd_close(fds[i]);
    return rc;
}

/* An abstract name has no permissions: anybody on the machine may bind it
 * first and pose as the master (and read our HELLO, token included). The
 * master on fd must run as a uid we accept, as we must for it (allow_uids,
 * allow_any_uid). A path socket needs no such check: the master makes its
 * file mode 0600. 0 or -EACCES (why says whose uid). */
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
                  a->path, uid, (unsigned)ripc__self_euid());
    return -EACCES;
}

/* A client with the effective options, not connected yet: NULL with *rc
 * and why set when the options cannot work. */
static ripc_client *client_new(const ripc_options *opt, int *rc, char *why, size_t why_len)
{
    /* Aligned: the counters' halves each have cache lines of their own. */
    ripc_client *c = ripc__zalloc_aligned(sizeof *c);
    if (!c) {
        *rc = -ENOMEM;
        return NULL;
    }
    c->sock = -1;
    ripc__chan_init(&c->ch);
    ripc__guard_init(&c->guard, ripc__remote_fence_init());
    int r = ripc__options_resolve(&c->opt, opt, why, why_len);
    if (r < 0) {
        ripc__free_aligned(c);
        *rc = r;
        return NULL;
    }
    if (c->opt.transport == RIPC_TRANSPORT_SHM && !ripc__segment_supported(RIPC_SEG_DEFAULT)) {
        ripc__set_why(why, why_len, 0,
                      "shared memory is not available in this process and the "
                      "transport is forced to shm");
        ripc__free_aligned(c);
        *rc = -ENOTSUP;
        return NULL;
    }
    return c;
}

/* c takes fd and shakes hands, by deadline (connect_timeout_ms from the
 * start of the open, for the whole handshake). 0 with *out = c, or
 * handshake's error with c (and fd) freed. */
static int client_start(ripc_client **out, ripc_client *c, int fd, uint64_t deadline, char *why,
                        size_t why_len)
{
    c->sock = fd;
    int rc = handshake(c, deadline, why, why_len);
    if (rc < 0) {
        ripc__client_free(c);
        return rc;
    }
    /* The options' name is the caller's memory: a copy for the counters. */
    snprintf(c->name, sizeof c->name, "%s", c->opt.name ? c->opt.name : "");
    c->connected_ns = ripc__wall_ns();
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
        ripc__free_aligned(c);
        return rc;
    }
    intptr_t fd;
    uint64_t deadline = ripc__deadline(c->opt.connect_timeout_ms);
    if ((rc = ripc__sock_connect(&a, &fd, c->opt.connect_timeout_ms, why, why_len)) < 0) {
        ripc__free_aligned(c);
        return rc;
    }
    if (ripc__addr_abstract(&a) && (rc = master_uid_ok(fd, &a, &c->opt, why, why_len)) < 0) {
        ripc__sock_close(fd);
        ripc__free_aligned(c);
        return rc;
    }
    return client_start(out, c, (int)fd, deadline, why, why_len);
}

int ripc__client_open_fd(ripc_client **out, int fd, const ripc_options *opt, char *why,
                         size_t why_len)
{
    if (!out || fd < 0) {
        if (fd >= 0)
            ripc__sock_close(fd);
        return -EINVAL;
    }
    *out = NULL;
    int rc;
    ripc_client *c = client_new(opt, &rc, why, why_len);
    if (!c) {
        ripc__sock_close(fd);
        return rc;
    }
    return client_start(out, c, fd, ripc__deadline(c->opt.connect_timeout_ms), why, why_len);
}

int ripc_client_open(ripc_client **c, const char *url, const ripc_options *opt)
{
    return ripc_client_open_ex(c, url, opt, NULL, 0);
}
