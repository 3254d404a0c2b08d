/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the worker's side of the handshake: ripc_client_open over
 * one end of a socketpair (ripc__client_open_fd), the fuzzer a fake master
 * on the other end whose answer (WELCOME, REJECT or junk, and the
 * descriptors that come with it) is written before the client starts; then,
 * if the client opened, a few rounds of hostile master traffic.
 *
 *   byte 0       client options: bits 0-1 transport (auto, shm, socket),
 *                bits 2-3 doorbell, bits 4-5 wait mode, bit 6 max_inline 64
 *   answer       how (1 byte): bits 0-1 WELCOME, REJECT, or raw bytes;
 *                bit 2 the frame's length field from the input; bit 3 the
 *                master closes its end right after the answer. WELCOME:
 *                transport, nfds field, worker and master doorbell kinds,
 *                caps, ring size, seg_bytes (right or from the input),
 *                max_message, reason; then one byte per descriptor slot
 *                (up to 4): what to pass there (the segment, honest or
 *                not, doorbell ends of several kinds, fz_make_fd kinds)
 *   then ops     (at most MAX_OPS, client open only; SOCK: bits 0-2 frame
 *                type, 3-4 descriptors, 5-6 their kind, 7 raw bytes): RECV, SEND, REQUEST
 *                (all with timeout 0), RECORD (the master's producer side of
 *                the master->worker ring), SCRIBBLE (anywhere in the
 *                segment), SOCK (bytes or a frame with descriptors on the
 *                control socket), BELL (ring or close the worker's
 *                doorbell), DRAIN (read what the client sent)
 *
 * Properties beyond ASan/UBSan: ripc__client_open_fd returns 0 or a
 * documented error and never waits longer than its timeout; a client
 * opened from a WELCOME obeys it (transport, id); every later call returns
 * a documented code; a message handed out is readable; nothing blocks;
 * no descriptor is left open after ripc_client_close.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ringipc/ring.h"
#include "ringipc/ringipc.h"
#include "shm/doorbell.h"
#include "sockets/sock.h"
#include "src/adopt.h"
#include "src/proto.h"
#include "tests/fuzz/fuzz_util.h"

#define MAX_OPS 64

enum {
    OP_RECV,
    OP_SEND,
    OP_REQUEST,
    OP_RECORD,
    OP_SCRIBBLE,
    OP_SOCK,
    OP_BELL,
    OP_DRAIN,
    OP_COUNT_
};

/* The fake master's side. */
struct fmaster {
    int fd;             /* control socket, our end */
    unsigned char *seg; /* the segment we made and passed, still mapped */
    size_t seg_len;
    ripc_ring *tx; /* master->worker, we produce */
    int bell;      /* our end of the worker's doorbell socketpair (we ring) */
    int keep[4];   /* other ends we hold so the client's ends stay connected */
    int nkeep;
};

static volatile uint8_t sink;

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* A formatted segment for rings of ring_bytes, mapped in m; its fd, sealed
 * unless `unsealed`, or -1. */
static int make_segment(struct fmaster *m, size_t ring_bytes, int unsealed)
{
    size_t one = ripc_ring_size(ring_bytes);
    int fd = fz_make_fd(unsealed ? 1 : 0, 2 * one, NULL, 0);
    if (fd < 0)
        return -1;
    void *base = mmap(NULL, 2 * one, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        close(fd);
        return -1;
    }
    CHECK(ripc_ring_format(base, one, ring_bytes) == 0);
    CHECK(ripc_ring_format((unsigned char *)base + one, one, ring_bytes) == 0);
    if (m->seg == NULL) {
        m->seg = base;
        m->seg_len = 2 * one;
        CHECK(ripc_ring_attach(&m->tx, m->seg + one, one, RIPC_RING_PRODUCER) == 0);
    } else {
        munmap(base, 2 * one);
    }
    return fd;
}

/* One end of a new socketpair for the client; the other kept in m (as the
 * worker's doorbell if `bell`). */
static int make_pair(struct fmaster *m, int bell)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return -1;
    ripc__sock_set_nonblock(sv[1], 1);
    if (bell && m->bell < 0)
        m->bell = sv[1];
    else if (m->nkeep < 4)
        m->keep[m->nkeep++] = sv[1];
    else
        close(sv[1]);
    return sv[0];
}

/* The descriptor for a slot: by default what a master would put there. */
static int slot_fd(struct fmaster *m, unsigned slot, unsigned what, size_t ring_bytes)
{
    switch (what % 8) {
    case 0: /* the honest one */
        if (slot == 0)
            return make_segment(m, ring_bytes, 0);
        return make_pair(m, slot == 2);
    case 1:
        return make_segment(m, ring_bytes, 1);
    case 2:
        return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    case 3:
        return make_pair(m, 0);
    default:
        return fz_make_fd(what >> 3, ring_bytes, NULL, 0);
    }
}

/* Write the answer to HELLO (before the client starts). */
static void answer(struct fmaster *m, fz_in *in, uint32_t *want_id, int *socket_mode)
{
    uint8_t buf[RIPC_FRAME_HDR + RIPC_HANDSHAKE_MAX];
    unsigned how = (unsigned)fz_take(in, 1);
    size_t plen = 0, got;
    ripc__frame fr = {0};
    int fds[4] = {-1, -1, -1, -1}, nfds = 0;
    switch (how & 3) {
    case 0:
    case 3: {
        ripc__welcome w = {.version = RIPC_PROTO_VERSION};
        unsigned t = (unsigned)fz_take(in, 1);
        w.transport = (uint8_t)(t & 0x80 ? fz_take(in, 1)
                                : t & 1  ? RIPC_XPORT_SOCKET
                                         : RIPC_XPORT_SHM);
        unsigned dbs = (unsigned)fz_take(in, 1);
        w.worker_db = (uint8_t)(dbs & 0x80 ? dbs & 0xF : dbs & 1 ? RIPC_DB_FUTEX : RIPC_DB_SOCKET);
        w.master_db = (uint8_t)(dbs & 0x40 ? (dbs >> 4) & 3 : RIPC_DB_SOCKET);
        w.caps = (uint32_t)fz_take(in, 1) << 12;
        w.peer_id = (uint32_t)fz_take(in, 2);
        unsigned rs = (unsigned)fz_take(in, 1);
        w.ring_bytes = rs & 0x80 ? fz_take(in, 8) : (uint64_t)1 << (12 + rs % 4);
        size_t ring = w.ring_bytes >= 4096 && w.ring_bytes <= 32768 ? (size_t)w.ring_bytes : 4096;
        w.seg_bytes = rs & 0x40 ? fz_take(in, 8) : 2 * ripc_ring_size(ring);
        unsigned mm = (unsigned)fz_take(in, 1);
        w.max_message = mm & 0x80 ? fz_take(in, 8) : (uint64_t)1 << (mm % 32);
        w.max_inline = fz_take(in, 2);
        const uint8_t *r = fz_bytes(in, fz_take(in, 1) % 16, &got);
        for (size_t i = 0; i < got; i++)
            w.reason[i] = (char)(r[i] ? r[i] : 'r');
        int want = w.transport == RIPC_XPORT_SOCKET ? 0 : w.worker_db == RIPC_DB_FUTEX ? 2 : 3;
        unsigned slots = (unsigned)fz_take(in, 1);
        nfds = slots & 0x80 ? (int)(slots & 7) % 5 : want;
        w.nfds = (uint8_t)(slots & 0x40 ? (slots >> 3) & 3 : (unsigned)nfds);
        for (int i = 0; i < nfds; i++)
            if ((fds[i] = slot_fd(m, (unsigned)i, (unsigned)fz_take(in, 1), ring)) < 0)
                nfds = i;
        plen = ripc__welcome_encode(buf + RIPC_FRAME_HDR, RIPC_HANDSHAKE_MAX, &w);
        fr.ftype = RIPC_FRAME_WELCOME;
        *want_id = w.peer_id;
        *socket_mode = w.transport == RIPC_XPORT_SOCKET;
        break;
    }
    case 1: {
        fr.ftype = RIPC_FRAME_REJECT;
        fr.type = (uint16_t)fz_take(in, 1);
        const uint8_t *r = fz_bytes(in, fz_take(in, 1), &got);
        memcpy(buf + RIPC_FRAME_HDR, r, got);
        plen = got;
        break;
    }
    default: {
        const uint8_t *r = fz_bytes(in, fz_take(in, 1), &got);
        memcpy(buf, r, got);
        send(m->fd, buf, got, MSG_NOSIGNAL | MSG_DONTWAIT);
        return;
    }
    }
    fr.len = how & 4 ? fz_take(in, 2) : plen;
    ripc__frame_encode(buf, &fr);
    if (ripc__sock_try_send_fds(m->fd, buf, RIPC_FRAME_HDR + plen, fds, nfds) < 0) {
        /* the client side is ours and empty: cannot happen, but harmless */
    }
    for (int i = 0; i < nfds; i++)
        close(fds[i]);
    if (how & 8)
        shutdown(m->fd, SHUT_WR);
}

static void drain(struct fmaster *m)
{
    for (int k = 0; m->fd >= 0 && k < 256; k++) {
        uint8_t junk[4096];
        int fds[4], nfds = 0;
        long n = ripc__sock_try_recv_fds(m->fd, junk, sizeof junk, fds, 4, &nfds);
        for (int i = 0; i < nfds; i++)
            close(fds[i]);
        if (n <= 0)
            break;
    }
}

static void op_record(struct fmaster *m, fz_in *in)
{
    unsigned how = (unsigned)fz_take(in, 1);
    uint16_t type = (uint16_t)fz_take(in, 1);
    uint8_t kind = (uint8_t)(fz_take(in, 1) % 3);
    uint64_t id = fz_take(in, 1);
    size_t plen = how & 1 ? RIPC_MARKER_BYTES : (size_t)fz_take(in, 1);
    uint64_t marker = how & 1 ? fz_take(in, 3) : 0;
    void *buf;
    if (!m->tx || ripc_ring_reserve(m->tx, RIPC_MSG_HDR + plen, &buf) != 0)
        return;
    ripc__msg_encode(buf, type, kind, how & 1 ? RIPC_MSGF_LARGE : 0, id);
    memset((uint8_t *)buf + RIPC_MSG_HDR, 0xA5, plen);
    if (how & 1)
        memcpy((uint8_t *)buf + RIPC_MSG_HDR, &marker, sizeof marker);
    ripc_ring_commit(m->tx, RIPC_MSG_HDR + plen);
}

/* Bytes, or a frame with 0..2 descriptors, on the control socket. */
static void op_sock(struct fmaster *m, fz_in *in)
{
    unsigned how = (unsigned)fz_take(in, 1);
    uint8_t buf[RIPC_FRAME_HDR + 256];
    size_t got;
    if (how & 0x80) {
        const uint8_t *r = fz_bytes(in, fz_take(in, 1), &got);
        memcpy(buf, r, got);
        if (m->fd >= 0)
            send(m->fd, buf, got, MSG_NOSIGNAL | MSG_DONTWAIT);
        return;
    }
    ripc__frame fr = {.ftype = (uint8_t)(1 + (how & 7) % 6)};
    fr.kind = (uint8_t)(fz_take(in, 1) % 3);
    fr.type = (uint16_t)fz_take(in, 1);
    fr.id = fz_take(in, 1);
    fr.len = fz_take(in, 3);
    if (fr.ftype != RIPC_FRAME_MSG && fr.ftype != RIPC_FRAME_LARGE)
        fr.kind = 0, fr.id = 0, fr.type = 0;
    if (fr.ftype == RIPC_FRAME_BYE)
        fr.len = 0;
    size_t plen = fr.ftype == RIPC_FRAME_MSG && fr.len <= 256 ? (size_t)fr.len : 0;
    const uint8_t *p = fz_bytes(in, plen, &got);
    memset(buf + RIPC_FRAME_HDR, 0, plen);
    memcpy(buf + RIPC_FRAME_HDR, p, got);
    int fds[2] = {-1, -1}, nfds = (int)((how >> 3) & 3) % 3;
    for (int i = 0; i < nfds; i++)
        if ((fds[i] = fz_make_fd(how >> 5, fr.len && fr.len < (1u << 20) ? (size_t)fr.len : 1, NULL,
                                 0)) < 0)
            nfds = i;
    ripc__frame_encode(buf, &fr);
    if (m->fd >= 0 && ripc__sock_try_send_fds(m->fd, buf, RIPC_FRAME_HDR + plen, fds, nfds) < 0) {
        /* full or gone */
    }
    for (int i = 0; i < nfds; i++)
        close(fds[i]);
}

static void check_msg(int rc, const ripc_msg *msg)
{
    if (rc != 0)
        return;
    CHECK(msg->kind <= RIPC_REPLY);
    if (msg->len) {
        const uint8_t *d = msg->data;
        sink = (uint8_t)(d[0] ^ d[msg->len - 1]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    int fds_before = fz_fd_count();
    unsigned o0 = (unsigned)fz_take(&in, 1);
    ripc_options o = {.transport = (int)(o0 & 3) % 3,
                      .doorbell = (int)((o0 >> 2) & 3),
                      .wait = (int)((o0 >> 4) & 3) % 3,
                      .ring_bytes = 4096,
                      .max_inline = o0 & 0x40 ? 64 : 0,
                      .connect_timeout_ms = 1,
                      .name = "fuzz"};
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    struct fmaster m = {.fd = sv[1], .bell = -1};
    ripc__sock_set_nonblock(m.fd, 1);
    uint32_t want_id = 0;
    int socket_mode = 0;
    answer(&m, &in, &want_id, &socket_mode);

    ripc_client *c = NULL;
    char why[256] = "";
    int rc = ripc__client_open_fd(&c, sv[0], &o, why, sizeof why);
    if (getenv("RIPC_FUZZ_VERBOSE"))
        fprintf(stderr, "fuzz_client: open %d (%s)%s%s\n", rc, why, c ? " transport " : "",
                c ? ripc_client_transport_reason(c) : "");
    CHECK(rc == 0 || rc == -EPROTO || rc == -ETIMEDOUT || rc == -ECONNREFUSED || rc == -EPIPE ||
          rc == -EACCES || rc == -EPROTONOSUPPORT || rc == -EMSGSIZE || rc == -ENOMEM ||
          rc == -ENOTSUP || rc == -EPERM || rc == -EINVAL || rc == -ENOSYS);
    CHECK((rc == 0) == (c != NULL));
    if (c) {
        CHECK(ripc_client_id(c) == want_id);
        CHECK(strcmp(ripc_client_transport(c), socket_mode ? "socket" : "shm") == 0);
    }
    for (int ops = 0; c && ops < MAX_OPS && in.left > 0; ops++) {
        ripc_msg msg;
        uint8_t small[64] = {0};
        size_t got;
        const uint8_t *b;
        switch (fz_take(&in, 1) % OP_COUNT_) {
        case OP_RECV:
            rc = ripc_client_recv(c, &msg, 0);
            CHECK(rc == 0 || rc == -EAGAIN || rc == -EPIPE || rc == -EPROTO || rc == -ENOMEM);
            check_msg(rc, &msg);
            break;
        case OP_SEND:
            rc = ripc_client_send(c, (uint16_t)fz_take(&in, 1), small, fz_take(&in, 1) % 64, 0);
            CHECK(rc == 0 || rc == -EAGAIN || rc == -EPIPE || rc == -EPROTO || rc == -EMSGSIZE ||
                  rc == -ENOMEM || rc == -ETIMEDOUT);
            break;
        case OP_REQUEST:
            rc = ripc_client_request(c, 1, small, 8, &msg, 0);
            CHECK(rc == 0 || rc == -ETIMEDOUT || rc == -EPIPE || rc == -EPROTO || rc == -EMSGSIZE ||
                  rc == -ENOMEM);
            check_msg(rc, &msg);
            break;
        case OP_RECORD:
            op_record(&m, &in);
            break;
        case OP_SCRIBBLE: {
            size_t off = (size_t)fz_take(&in, 2);
            b = fz_bytes(&in, fz_take(&in, 1) % 32, &got);
            if (m.seg) {
                off %= m.seg_len;
                memcpy(m.seg + off, b, got < m.seg_len - off ? got : m.seg_len - off);
            }
            break;
        }
        case OP_SOCK:
            op_sock(&m, &in);
            break;
        case OP_BELL:
            if (fz_take(&in, 1) & 1)
                close_fd(&m.bell);
            else if (m.bell >= 0)
                send(m.bell, "", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            break;
        default:
            drain(&m);
            break;
        }
    }
    /* Room for the client's goodbye and queued sends: close never waits. */
    drain(&m);
    ripc_client_close(c);
    close_fd(&m.fd);
    close_fd(&m.bell);
    for (int i = 0; i < m.nkeep; i++)
        close(m.keep[i]);
    ripc_ring_detach(m.tx);
    if (m.seg)
        munmap(m.seg, m.seg_len);
    CHECK(fz_fd_count() == fds_before);
    return 0;
}

/* ---- seeds (replay driver, corpus generator) ---- */

/* A WELCOME as the master sends it: shm (socket doorbell, or futex) or
 * socket mode; `slot` replaces what goes into descriptor slot 0. */
static size_t put_welcome(uint8_t *b, int xport, int futex, unsigned slot0)
{
    size_t n = 0;
    b[n++] = 0; /* WELCOME, honest length */
    b[n++] = xport == RIPC_XPORT_SOCKET ? 1 : 0;
    b[n++] = futex ? 1 : 0;
    b[n++] = 0; /* caps */
    b[n++] = 42;
    b[n++] = 0; /* peer id 42 */
    b[n++] = 0; /* ring 4096 */
    b[n++] = 20;
    b[n++] = 0;
    b[n++] = 0; /* max_inline 0 */
    b[n++] = 4;
    memcpy(b + n, "seed", 4);
    n += 4;
    b[n++] = 0; /* the honest number of descriptors */
    if (xport == RIPC_XPORT_SHM) {
        b[n++] = (uint8_t)slot0;
        b[n++] = 0;
        if (!futex)
            b[n++] = 0;
    }
    return n;
}

void ripc_fuzz_seeds(ripc_fuzz_run_fn run)
{
    uint8_t b[256];
    size_t n;
    static const uint8_t ops[] = {OP_RECV,  OP_RECORD, 0,       1,       0,          0,      5,
                                  OP_BELL,  0,         OP_RECV, OP_RECV, OP_SEND,    1,      8,
                                  OP_DRAIN, OP_RECORD, 1,       1,       1,          3,      0x00,
                                  0x20,     0x00,      OP_SOCK, 13,      1,          1,      3,
                                  0x00,     0x20,      0x00,    OP_RECV, OP_REQUEST, OP_RECV};
    for (unsigned slot0 = 0; slot0 < 8; slot0++)
        for (int futex = 0; futex < 2; futex++) {
            if (futex && slot0)
                continue;
            n = 0;
            b[n++] = 2 << 4; /* wait: block */
            n += put_welcome(b + n, RIPC_XPORT_SHM, futex, slot0);
            memcpy(b + n, ops, sizeof ops);
            n += sizeof ops;
            run(b, n);
        }
    n = 0;
    b[n++] = 2;
    n += put_welcome(b + n, RIPC_XPORT_SOCKET, 0, 0);
    static const uint8_t sops[] = {OP_SEND, 1, 8,   OP_SOCK, 4 - 1, 0,   1,       0,       4,
                                   0,       0, 'a', 'b',     'c',   'd', OP_RECV, OP_SOCK, 5 - 1,
                                   0,       0, 0,   0,       0,     0,   OP_RECV, OP_DRAIN};
    memcpy(b + n, sops, sizeof sops);
    n += sizeof sops;
    run(b, n);
    /* REJECT with a known code and an unknown one; junk; a WELCOME whose
     * length field lies; the master hanging up. */
    static const uint8_t rej[] = {0, 1, 13, 6, 'n', 'o', ' ', 'w', 'a', 'y'};
    run(rej, sizeof rej);
    static const uint8_t rej2[] = {0, 1, 200, 0};
    run(rej2, sizeof rej2);
    static const uint8_t junk[] = {0, 2, 8, 'R', 'I', 'P', 'C', 2, 0, 0, 0};
    run(junk, sizeof junk);
    n = 0;
    b[n++] = 0;
    n += put_welcome(b + n, RIPC_XPORT_SHM, 0, 0);
    b[1] = 4; /* length from the input (2 bytes, at the end: 0) */
    run(b, n);
    n = 0;
    b[n++] = 0;
    n += put_welcome(b + n, RIPC_XPORT_SHM, 0, 0);
    b[1] = 8;
    run(b, n);
}
