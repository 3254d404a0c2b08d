/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the master's handshake state machine and control stream:
 * a real in-process ripc_server whose workers are the fuzzer's ends of
 * socketpairs handed to it as accepted connections (ripc__server_adopt_fd).
 * The input is a script for hostile workers:
 *
 *   byte 0        server setup: bit 0 master forces socket mode; bit 1 a
 *                 fallback handler (type 0) besides the one for type 1;
 *                 bit 2 wait mode spin (else block); bit 3 max_inline 64;
 *                 bits 4-7 == 1: a fresh server, closed at the end of the
 *                 input (else one kept across inputs, see server_open)
 *   then ops      (at most MAX_OPS), each an op byte and its arguments:
 *     RAW         bytes as they are, on the current worker's socket
 *     HELLO       a HELLO frame built from a few argument bytes (versions,
 *                 caps, transport, ring size, max_message, name, token)
 *     FRAME       a frame header (mostly valid type and kind) + payload
 *     POLL        ripc_server_poll(s, 0), then read what every worker got
 *                 (the WELCOME: its segment is mapped, its rings attached;
 *                 later messages, socket and ring, are thrown away)
 *     LARGE       a LARGE frame carrying a descriptor of some kind
 *                 (fuzz_util.h fz_make_fd), or two of them
 *     RECORD      shm worker: a record in the worker->master ring (a
 *                 message, a large-message marker, or raw header bytes)
 *     SCRIBBLE    shm worker: bytes anywhere in the segment (both rings'
 *                 headers, indices and data)
 *     BELL        shm worker: ring the master's doorbell
 *     SHUT        half-close the socket, close it, or close the doorbells
 *     NEWPEER     another worker (at most MAX_PEERS), now the current one
 *     SELECT      pick the current worker
 *     DRAIN       the same for the current worker only
 *   then two more polls; then ripc_server_close (fresh server), or every
 *   worker hangs up and a few more polls must drop them all.
 *
 * Properties beyond ASan/UBSan: no call blocks (poll(s, 0) only; handlers
 * reply at most MAX_REPLIES times per input with small payloads, so a reply
 * never waits for room); the master's WELCOME is well formed and its
 * descriptors match it; every `joined` gets exactly one `left`; the peer
 * count returns to 0; no descriptor is left open at the end; the process
 * stays under MAX_RESIDENT_MB resident.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ringipc/ring.h"
#include "ringipc/ringipc.h"
#include "shm/doorbell.h"
#include "sockets/sock.h"
#include "src/adopt.h"
#include "src/proto.h"
#include "tests/fuzz/fuzz_util.h"

#define MAX_PEERS 4
/* The master's first frame: a WELCOME or REJECT, or a monitor's SNAPSHOT
 * (a page of at most MAX_PEERS workers). */
#define FIRST_MAX   (RIPC_FRAME_HDR + RIPC_SNAP_HDR + MAX_PEERS * (RIPC_SNAP_REC + RIPC_NAME_MAX))
#define MAX_OPS     96
#define MAX_REPLIES 8
#define RING_BYTES  4096u
#define MAX_MESSAGE ((uint64_t)1 << 20)
/* Far above what the inputs legitimately need (ASan's shadow included). */
#define MAX_RESIDENT_MB 1024

enum {
    OP_RAW,
    OP_HELLO,
    OP_FRAME,
    OP_POLL,
    OP_LARGE,
    OP_RECORD,
    OP_SCRIBBLE,
    OP_BELL,
    OP_SHUT,
    OP_NEWPEER,
    OP_SELECT,
    OP_DRAIN,
    OP_COUNT_
};

/* One hostile worker, as the fuzzer holds it. */
struct fpeer {
    int fd; /* our end of the control socket, -1 once closed */
    uint8_t first[FIRST_MAX];
    size_t first_len, first_need; /* the master's first frame, being read */
    int answered;                 /* it was read whole */
    int fds[3], nfds;             /* descriptors that came with it */
    unsigned char *seg;           /* shm: the segment, mapped */
    size_t seg_len;
    ripc_ring *tx, *rx; /* worker->master (we produce), master->worker */
    int bell;           /* the master's doorbell, our ringing end */
    int my_bell;        /* our doorbell, the master's ringing end reaches it */
};

static struct {
    int joined, left, replies;
} g;

static void on_joined(ripc_peer *p, void *arg)
{
    (void)p;
    (void)arg;
    g.joined++;
}

static void on_left(ripc_peer *p, int reason, void *arg)
{
    (void)p;
    (void)arg;
    CHECK(reason == RIPC_LEFT_BYE || reason < 0);
    g.left++;
}

static volatile uint8_t sink;

static void on_msg(ripc_peer *p, const ripc_msg *m, void *arg)
{
    (void)arg;
    CHECK(m->kind == RIPC_ONEWAY || m->kind == RIPC_REQUEST);
    CHECK(m->len <= MAX_MESSAGE);
    if (m->len) {
        /* Every byte handed out must be readable: the first and the last. */
        const uint8_t *d = m->data;
        sink = (uint8_t)(d[0] ^ d[m->len - 1]);
    }
    if (m->kind == RIPC_REQUEST && g.replies < MAX_REPLIES) {
        g.replies++;
        int rc = ripc_reply(p, m, m->data, m->len < 256 ? m->len : 256);
        CHECK(rc == 0 || rc == -EPIPE || rc == -EPROTO || rc == -ETIMEDOUT || rc == -EAGAIN ||
              rc == -EMSGSIZE || rc == -ENOMEM);
    }
}

static void fpeer_unmap(struct fpeer *f)
{
    ripc_ring_detach(f->tx);
    ripc_ring_detach(f->rx);
    f->tx = f->rx = NULL;
    if (f->seg)
        munmap(f->seg, f->seg_len);
    f->seg = NULL;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void fpeer_close(struct fpeer *f)
{
    fpeer_unmap(f);
    close_fd(&f->fd);
    close_fd(&f->bell);
    close_fd(&f->my_bell);
    for (int i = 0; i < f->nfds; i++)
        close_fd(&f->fds[i]);
    f->nfds = 0;
}

/* The master's first frame is whole: a REJECT, or a WELCOME whose
 * descriptors we take over (shm: map the segment, attach the rings). */
static void take_answer(struct fpeer *f)
{
    ripc__frame fr;
    f->answered = 1;
    CHECK(ripc__frame_decode(f->first, &fr, FIRST_MAX - RIPC_FRAME_HDR) == 0);
    CHECK(fr.ftype == RIPC_FRAME_WELCOME || fr.ftype == RIPC_FRAME_REJECT ||
          fr.ftype == RIPC_FRAME_SNAPSHOT);
    if (fr.ftype == RIPC_FRAME_SNAPSHOT) {
        /* A monitor's: well formed, every worker listed, no descriptor. */
        ripc__snap_head h;
        const uint8_t *pl = f->first + RIPC_FRAME_HDR;
        CHECK(f->nfds == 0 && ripc__snap_head_decode(pl, (size_t)fr.len, &h) == 0);
        CHECK(h.format == RIPC_SNAP_FORMAT && h.count <= MAX_PEERS && h.next_id == 0);
        size_t off = h.hdr_len;
        for (unsigned i = 0; i < h.count; i++) {
            ripc__snap_peer p;
            CHECK(ripc__snap_peer_decode(pl, (size_t)fr.len, h.rec_len, &off, &p) == 0);
        }
        CHECK(off == fr.len);
        return;
    }
    if (fr.ftype == RIPC_FRAME_REJECT) {
        CHECK(f->nfds == 0 && fr.len <= RIPC_REASON_MAX);
        return;
    }
    ripc__welcome w;
    CHECK(ripc__welcome_decode(f->first + RIPC_FRAME_HDR, (size_t)fr.len, &w) == 0);
    CHECK(w.version >= RIPC_PROTO_VERSION && w.version <= RIPC_PROTO_VERSION_MAX);
    CHECK(w.nfds == f->nfds);
    CHECK(w.max_message <= MAX_MESSAGE);
    if (w.transport == RIPC_XPORT_SOCKET) {
        CHECK(f->nfds == 0);
        return;
    }
    CHECK(f->nfds == 2 || f->nfds == 3);
    CHECK(w.seg_bytes == 2 * ripc_ring_size((size_t)w.ring_bytes) && w.seg_bytes > 0);
    void *base = mmap(NULL, (size_t)w.seg_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, f->fds[0], 0);
    CHECK(base != MAP_FAILED);
    f->seg = base;
    f->seg_len = (size_t)w.seg_bytes;
    size_t one = f->seg_len / 2;
    CHECK(ripc_ring_attach(&f->tx, f->seg, one, RIPC_RING_PRODUCER) == 0);
    CHECK(ripc_ring_attach(&f->rx, f->seg + one, one, RIPC_RING_CONSUMER) == 0);
    close_fd(&f->fds[0]);
    f->bell = f->fds[1];
    f->fds[1] = -1;
    if (f->nfds == 3) {
        f->my_bell = f->fds[2];
        f->fds[2] = -1;
    }
    f->nfds = 0;
}

/* Read what the master sent: its first frame whole (with the descriptors
 * that came with it), the rest thrown away (descriptors closed); with
 * `ring`, also empty the master->worker ring. Never waits. */
static void fpeer_drain(struct fpeer *f, int ring)
{
    for (int k = 0; f->fd >= 0 && k < 64; k++) {
        uint8_t junk[4096];
        uint8_t *to = junk;
        size_t want = sizeof junk;
        if (!f->answered) {
            size_t need = f->first_need ? f->first_need : RIPC_FRAME_HDR;
            to = f->first + f->first_len;
            want = need - f->first_len;
        }
        int fds[3] = {-1, -1, -1}, nfds = 0;
        long n = ripc__sock_try_recv_fds(f->fd, to, want, fds, 3, &nfds);
        if (!f->answered && f->nfds + nfds <= 3) {
            for (int i = 0; i < nfds; i++)
                f->fds[f->nfds++] = fds[i];
        } else {
            for (int i = 0; i < nfds; i++)
                close(fds[i]);
        }
        if (n <= 0)
            break;
        if (f->answered)
            continue;
        f->first_len += (size_t)n;
        if (f->first_len < (f->first_need ? f->first_need : RIPC_FRAME_HDR))
            continue;
        if (f->first_need == 0) {
            ripc__frame fr;
            CHECK(ripc__frame_decode(f->first, &fr, FIRST_MAX - RIPC_FRAME_HDR) == 0);
            CHECK(fr.ftype == RIPC_FRAME_SNAPSHOT || fr.len <= RIPC_HANDSHAKE_MAX);
            f->first_need = RIPC_FRAME_HDR + (size_t)fr.len;
            if (fr.len > 0)
                continue;
        }
        take_answer(f);
    }
    while (ring && f->rx) {
        const void *b;
        size_t n;
        if (ripc_ring_peek(f->rx, &b, &n) != 0)
            break;
        ripc_ring_release(f->rx);
    }
}

static void send_bytes(struct fpeer *f, const void *b, size_t n)
{
    if (f->fd >= 0 && n > 0 && send(f->fd, b, n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
        /* full or gone: that is the master's business */
    }
}

static void op_hello(struct fpeer *f, fz_in *in)
{
    ripc__hello h = {.version_min = RIPC_PROTO_VERSION, .version_max = RIPC_PROTO_VERSION};
    unsigned how = (unsigned)fz_take(in, 1);
    if (how & 0x80) {
        h.caps = (uint32_t)fz_take(in, 4);
    } else {
        /* What a real worker offers, its preferences from the input. */
        h.caps = ripc__doorbell_caps() | RIPC_CAP_SOCKET | RIPC_CAP_SHM | RIPC_CAP_MEMFD;
        h.caps |= (uint32_t)(how & 0xF) << 16;
        h.caps |= (uint32_t)((how >> 4) & 3) << RIPC_CAP_WAIT_SHIFT;
        if (how & 0x40)
            h.caps |= RIPC_CAP_SLEEP_WORD;
    }
    if (how & 0x20) {
        h.version_min = (uint16_t)fz_take(in, 2);
        h.version_max = (uint16_t)fz_take(in, 2);
    }
    unsigned t = (unsigned)fz_take(in, 1);
    h.transport = t % 4;
    unsigned rb = (unsigned)fz_take(in, 1);
    h.ring_bytes = rb == 0 ? 0 : (uint64_t)1 << (rb % 34);
    unsigned mm = (unsigned)fz_take(in, 1);
    h.max_message = mm == 0 ? 0 : (uint64_t)1 << (mm % 48);
    h.pid = (uint32_t)getpid();
    size_t got;
    const uint8_t *name = fz_bytes(in, t >> 4, &got);
    for (size_t i = 0; i < got; i++)
        h.name[i] = (char)(name[i] ? name[i] : 'n');
    const uint8_t *tok = fz_bytes(in, (t >> 2) & 3 ? 16 : 0, &got);
    memcpy(h.token, tok, got);
    h.token_len = (uint8_t)got;
    uint8_t buf[RIPC_FRAME_HDR + RIPC_HANDSHAKE_MAX];
    size_t plen = ripc__hello_encode(buf + RIPC_FRAME_HDR, RIPC_HANDSHAKE_MAX, &h);
    ripc__frame fr = {.ftype = RIPC_FRAME_HELLO, .len = plen};
    ripc__frame_encode(buf, &fr);
    send_bytes(f, buf, RIPC_FRAME_HDR + plen);
}

/* A frame header: ftype 1..6 and a kind that fits, unless the input's top
 * bits say raw; the length field the payload's, unless it says lie. */
static void op_frame(struct fpeer *f, fz_in *in)
{
    unsigned a = (unsigned)fz_take(in, 1), k = (unsigned)fz_take(in, 1);
    /* One statement per read: the order of the input's fields is fixed. */
    ripc__frame fr = {.ftype = (uint8_t)(a & 0x80 ? a : 1 + a % 6),
                      .kind = (uint8_t)(k & 0x80 ? k : k % 3)};
    fr.type = (uint16_t)fz_take(in, 2);
    fr.id = fz_take(in, 1);
    int is_msg = fr.ftype == RIPC_FRAME_MSG || fr.ftype == RIPC_FRAME_LARGE;
    if (!(a & 0x80) && !is_msg) {
        fr.kind = 0;
        fr.id = 0;
        if (fr.ftype != RIPC_FRAME_REJECT)
            fr.type = 0;
    }
    size_t plen = (size_t)fz_take(in, 2) % 2048, got;
    if (fr.ftype == RIPC_FRAME_BYE && !(a & 0x40))
        plen = 0;
    const uint8_t *pl = fz_bytes(in, plen, &got);
    fr.len = a & 0x40 ? fz_take(in, 4) : got;
    uint8_t buf[RIPC_FRAME_HDR + 2048];
    ripc__frame_encode(buf, &fr);
    memcpy(buf + RIPC_FRAME_HDR, pl, got);
    send_bytes(f, buf, RIPC_FRAME_HDR + got);
}

static void op_large(struct fpeer *f, fz_in *in)
{
    unsigned how = (unsigned)fz_take(in, 1);
    ripc__frame fr = {.ftype = RIPC_FRAME_LARGE};
    fr.kind = (uint8_t)(fz_take(in, 1) % 3);
    fr.type = (uint16_t)fz_take(in, 2);
    fr.id = fz_take(in, 1);
    fr.len = fz_take(in, 3);
    size_t got;
    const uint8_t *fill = fz_bytes(in, (size_t)fz_take(in, 1), &got);
    int fds[2];
    int n = 1 + ((how >> 3) & 1);
    fds[0] = fz_make_fd(how & 7, (size_t)(fr.len ? fr.len : 1), fill, got);
    fds[1] = n == 2 ? fz_make_fd(how >> 4, 4096, NULL, 0) : -1;
    if (fds[0] < 0 || (n == 2 && fds[1] < 0)) {
        close_fd(&fds[0]);
        close_fd(&fds[1]);
        return;
    }
    uint8_t hdr[RIPC_FRAME_HDR];
    ripc__frame_encode(hdr, &fr);
    if (f->fd >= 0 && ripc__sock_try_send_fds(f->fd, hdr, sizeof hdr, fds, n) < 0) {
        /* full or gone */
    }
    close_fd(&fds[0]);
    close_fd(&fds[1]);
}

/* A record in the worker->master ring: a message, a large-message marker
 * (its payload the 8-byte length), or header bytes as they come. */
static void op_record(struct fpeer *f, fz_in *in)
{
    unsigned how = (unsigned)fz_take(in, 1);
    uint16_t type = (uint16_t)fz_take(in, 2);
    uint8_t kind = (uint8_t)(fz_take(in, 1) % 3);
    uint64_t id = fz_take(in, 1);
    size_t plen = how & 1 ? RIPC_MARKER_BYTES : (size_t)fz_take(in, 2) % 1024;
    uint64_t marker = how & 1 ? fz_take(in, 3) : 0;
    uint8_t hdr[RIPC_MSG_HDR];
    if (how & 0x80) {
        size_t got;
        const uint8_t *raw = fz_bytes(in, RIPC_MSG_HDR, &got);
        memset(hdr, 0, sizeof hdr);
        memcpy(hdr, raw, got);
    } else {
        ripc__msg_encode(hdr, type, kind, how & 1 ? RIPC_MSGF_LARGE : 0, id);
    }
    size_t got;
    const uint8_t *pl = fz_bytes(in, how & 1 ? 0 : plen, &got);
    void *buf;
    if (!f->tx || ripc_ring_reserve(f->tx, RIPC_MSG_HDR + plen, &buf) != 0)
        return;
    memcpy(buf, hdr, RIPC_MSG_HDR);
    if (how & 1)
        memcpy((uint8_t *)buf + RIPC_MSG_HDR, &marker, sizeof marker);
    else {
        memset((uint8_t *)buf + RIPC_MSG_HDR, 0, plen);
        memcpy((uint8_t *)buf + RIPC_MSG_HDR, pl, got);
    }
    ripc_ring_commit(f->tx, RIPC_MSG_HDR + plen);
}

static void op_scribble(struct fpeer *f, fz_in *in)
{
    size_t off = (size_t)fz_take(in, 3), got;
    const uint8_t *b = fz_bytes(in, (size_t)fz_take(in, 1) % 64, &got);
    if (!f->seg)
        return;
    off %= f->seg_len;
    if (got > f->seg_len - off)
        got = f->seg_len - off;
    memcpy(f->seg + off, b, got);
}

static void op_shut(struct fpeer *f, fz_in *in)
{
    switch (fz_take(in, 1) % 4) {
    case 0:
        if (f->fd >= 0)
            shutdown(f->fd, SHUT_WR);
        break;
    case 1:
        fpeer_close(f);
        break;
    case 2:
        close_fd(&f->bell);
        break;
    default:
        close_fd(&f->my_bell);
        break;
    }
}

static int add_peer(ripc_server *s, struct fpeer *peers, int *n)
{
    int sv[2];
    if (*n >= MAX_PEERS || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return -1;
    struct fpeer *f = &peers[*n];
    memset(f, 0, sizeof *f);
    f->fd = sv[0];
    f->bell = f->my_bell = -1;
    f->fds[0] = f->fds[1] = f->fds[2] = -1;
    ripc__sock_set_nonblock(f->fd, 1);
    CHECK(ripc__server_adopt_fd(s, sv[1]) == 0);
    return (*n)++;
}

/* A server for a setup byte. ripc_server_close waits for liburcu's deferred
 * frees (about 10 ms: its call_rcu thread sleeps between batches), so a
 * server per input would cap the fuzzer near 80 inputs/s: servers are kept
 * across inputs (one per setup), and a setup byte 0x1? asks for a fresh one
 * that the input ends by closing, with its workers in whatever state they
 * are. */
static ripc_server *server_open(unsigned setup)
{
    static int seq;
    char url[96], why[256];
    snprintf(url, sizeof url, "unix:/tmp/ripc-fuzz-server-%d-%d.sock", (int)getpid(), seq++);
    ripc_options o = {.ring_bytes = RING_BYTES,
                      .max_message = MAX_MESSAGE,
                      .transport = setup & 1 ? RIPC_TRANSPORT_SOCKET : RIPC_TRANSPORT_AUTO,
                      .wait = setup & 4 ? RIPC_WAIT_SPIN : RIPC_WAIT_BLOCK,
                      .max_inline = setup & 8 ? 64 : 0};
    ripc_server *s;
    if (ripc_server_open_ex(&s, url, &o, why, sizeof why) < 0) {
        fprintf(stderr, "fuzz_server: cannot open %s: %s\n", url, why);
        abort();
    }
    CHECK(ripc_server_on_peer(s, on_joined, on_left, NULL) == 0);
    CHECK(ripc_server_handle(s, 1, on_msg, NULL) == 0);
    if (setup & 2)
        CHECK(ripc_server_handle(s, 0, on_msg, NULL) == 0);
    return s;
}

static ripc_server *kept[16];

/* No socket file left in /tmp when the fuzzer exits. */
static void close_kept(void)
{
    for (int i = 0; i < 16; i++)
        ripc_server_close(kept[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int registered;
    if (!registered++)
        atexit(close_kept);
    fz_in in = {data, size};
    unsigned setup = (unsigned)fz_take(&in, 1);
    int fresh = (setup & 0xF0) == 0x10;
    ripc_server *s = fresh ? NULL : kept[setup & 15];
    if (!fresh && s == NULL)
        s = kept[setup & 15] = server_open(setup);
    int fds_before = fz_fd_count();
    if (fresh)
        s = server_open(setup);
    memset(&g, 0, sizeof g);
    int rc;

    struct fpeer peers[MAX_PEERS];
    int np = 0, cur = add_peer(s, peers, &np);
    CHECK(cur == 0);
    for (int ops = 0; ops < MAX_OPS && in.left > 0; ops++) {
        struct fpeer *f = &peers[cur];
        size_t got;
        const uint8_t *b;
        switch (fz_take(&in, 1) % OP_COUNT_) {
        case OP_RAW:
            b = fz_bytes(&in, (size_t)fz_take(&in, 1), &got);
            send_bytes(f, b, got);
            break;
        case OP_HELLO:
            op_hello(f, &in);
            break;
        case OP_FRAME:
            op_frame(f, &in);
            break;
        case OP_POLL:
            rc = ripc_server_poll(s, 0);
            CHECK(rc >= 0);
            /* The rings too: the master answers requests without a
             * handler, and a full ring would cost a reply its timeout. */
            for (int i = 0; i < np; i++)
                fpeer_drain(&peers[i], 1);
            break;
        case OP_LARGE:
            op_large(f, &in);
            break;
        case OP_RECORD:
            op_record(f, &in);
            break;
        case OP_SCRIBBLE:
            op_scribble(f, &in);
            break;
        case OP_BELL:
            if (f->bell >= 0 && send(f->bell, "", 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
                /* full: the master has a wake-up pending anyway */
            }
            break;
        case OP_SHUT:
            op_shut(f, &in);
            break;
        case OP_NEWPEER:
            if (add_peer(s, peers, &np) >= 0)
                cur = np - 1;
            break;
        case OP_SELECT:
            cur = (int)(fz_take(&in, 1) % (uint64_t)np);
            break;
        default:
            fpeer_drain(f, 1);
            break;
        }
    }
    for (int k = 0; k < 2; k++) {
        CHECK(ripc_server_poll(s, 0) >= 0);
        for (int i = 0; i < np; i++)
            fpeer_drain(&peers[i], 1);
    }
    /* What a worker asks for (a 1 GiB ring each way) must not be memory
     * the master touches before it is used. */
    CHECK(fz_resident_mb() < MAX_RESIDENT_MB);
    if (getenv("RIPC_FUZZ_VERBOSE"))
        fprintf(stderr, "fuzz_server: %d workers, %d joined, %u active, %d replies\n", np, g.joined,
                ripc_server_peer_count(s), g.replies);
    if (fresh) {
        ripc_server_close(s);
        for (int i = 0; i < np; i++)
            fpeer_close(&peers[i]);
    } else {
        /* Every worker hangs up: within a few rounds the master must have
         * dropped them all, handshakes included (descriptors back). */
        for (int i = 0; i < np; i++)
            fpeer_close(&peers[i]);
        for (int k = 0; k < 16 && (ripc_server_peer_count(s) || fz_fd_count() != fds_before); k++)
            CHECK(ripc_server_poll(s, 0) >= 0);
        CHECK(ripc_server_peer_count(s) == 0);
    }
    CHECK(g.left == g.joined);
    CHECK(fz_fd_count() == fds_before);
    return 0;
}

/* ---- seeds (replay driver, corpus generator) ---- */

const int ripc_fuzz_replay_divisor = 10;

static size_t put_hello(uint8_t *b, unsigned how, unsigned transport, unsigned ring_shift)
{
    size_t n = 0;
    /* A 4-byte name and no token; max_message 0: the master's. */
    FZ_PUT(b, n, OP_HELLO, how, transport | (4u << 4), ring_shift, 0, 's', 'e', 'e', 'd');
    return n;
}

static size_t put_frame(uint8_t *b, uint8_t ftype, uint8_t kind, uint16_t type, const char *pl)
{
    size_t n = 0, len = strlen(pl);
    FZ_PUT(b, n, OP_FRAME, ftype - 1, kind, type, type >> 8, 7 /* id */, len, 0);
    memcpy(b + n, pl, len);
    return n + len;
}

static size_t put_record(uint8_t *b, int large, uint8_t kind, const char *pl)
{
    size_t n = 0, len = strlen(pl);
    FZ_PUT(b, n, OP_RECORD, large ? 1 : 0, 1, 0 /* type 1 */, kind, 9 /* id */);
    if (large) {
        FZ_PUT(b, n, 0x00, 0x10, 0x00); /* marker: 4096 bytes */
        return n;
    }
    FZ_PUT(b, n, len, 0);
    memcpy(b + n, pl, len);
    return n + len;
}

static size_t put_large(uint8_t *b, unsigned fdkind, uint8_t kind)
{
    size_t n = 0;
    /* Type 1, id 9, 4096 bytes, of which 4 bytes of contents. */
    FZ_PUT(b, n, OP_LARGE, fdkind, kind, 1, 0, 9, 0x00, 0x10, 0x00, 4, 'd', 'a', 't', 'a');
    return n;
}

/* A script's start: its setup byte, a worker's HELLO, a poll. */
static size_t put_start(uint8_t *b, unsigned setup, unsigned how, unsigned transport,
                        unsigned ring_shift)
{
    size_t n = 0;
    FZ_PUT(b, n, setup);
    n += put_hello(b + n, how, transport, ring_shift);
    FZ_PUT(b, n, OP_POLL);
    return n;
}

void ripc_fuzz_seeds(ripc_fuzz_run_fn run)
{
    uint8_t b[512];
    size_t n;
    /* Handshakes: shm with each doorbell preference, socket mode asked by
     * the worker and forced by the master, a wrong version, garbage. */
    for (unsigned how = 0; how < 4; how++) {
        n = put_start(b, how << 3, how, 0, 12); /* a fresh server for 2 and 3 */
        FZ_PUT(b, n, OP_DRAIN);
        run(b, n);
    }
    for (unsigned setup = 0; setup < 2; setup++)
        run(b, put_start(b, setup, 0, setup ? 0 : 2, 0));
    static const uint8_t v3[] = {0,  OP_HELLO, 0x20, 3,   0,   4,   0,      0x40,
                                 12, 0,        'v',  '3', 'v', '4', OP_POLL};
    run(v3, sizeof v3);
    /* A monitor (its caps raw: RIPC_CAP_MONITOR; versions 2..2), alone and
     * beside a worker, and one that sends more after its HELLO. */
    for (int k = 0; k < 3; k++) {
        n = k ? put_start(b, 0, 0, k == 1 ? 1 : 2, 12) : 1;
        if (k == 0)
            b[0] = 0;
        else
            FZ_PUT(b, n, OP_NEWPEER);
        FZ_PUT(b, n, OP_HELLO, 0xA0, 0, 0, 0, 0x02, 2, 0, 2, 0, 4u << 4, 0, 0, 'm', 'o', 'n', 'i');
        if (k == 2)
            n += put_frame(b + n, RIPC_FRAME_MSG, RIPC_ONEWAY, 1, "after");
        FZ_PUT(b, n, OP_POLL, OP_DRAIN, OP_POLL);
        run(b, n);
    }
    n = 0;
    FZ_PUT(b, n, 0, OP_RAW, 40);
    memset(b + n, 'x', 40);
    n += 40;
    FZ_PUT(b, n, OP_POLL);
    run(b, n);

    /* Socket mode: messages, requests, junk, goodbye. */
    n = put_start(b, 3, 0, 2, 0);
    n += put_frame(b + n, RIPC_FRAME_MSG, RIPC_ONEWAY, 1, "hello");
    n += put_frame(b + n, RIPC_FRAME_MSG, RIPC_REQUEST, 1, "ask");
    n += put_frame(b + n, RIPC_FRAME_MSG, RIPC_REQUEST, 5, "other");
    FZ_PUT(b, n, OP_POLL, OP_DRAIN);
    n += put_frame(b + n, RIPC_FRAME_BYE, 0, 0, "");
    FZ_PUT(b, n, OP_POLL);
    run(b, n);
    n = put_start(b, 1, 0, 2, 0);
    n += put_frame(b + n, RIPC_FRAME_MSG, RIPC_REPLY, 1, "no");
    FZ_PUT(b, n, OP_POLL);
    run(b, n);

    /* Shared memory: records, large messages with each kind of descriptor,
     * a marker without its frame, goodbye, a second worker. */
    for (unsigned fdkind = 0; fdkind < FZ_FD_KINDS + 1; fdkind++) {
        n = put_start(b, fdkind & 1 ? 0x10 : 0, 0, 1, 12);
        n += put_record(b + n, 0, RIPC_ONEWAY, "one");
        n += put_record(b + n, 0, RIPC_REQUEST, "two");
        n += put_large(b + n, fdkind == FZ_FD_KINDS ? 0x08 : fdkind, RIPC_REQUEST);
        n += put_record(b + n, 1, RIPC_REQUEST, "");
        FZ_PUT(b, n, OP_BELL, OP_POLL, OP_DRAIN);
        n += put_frame(b + n, RIPC_FRAME_BYE, 0, 0, "");
        FZ_PUT(b, n, OP_POLL);
        run(b, n);
    }
    n = put_start(b, 2, 0, 1, 12);
    n += put_record(b + n, 1, RIPC_ONEWAY, "");
    FZ_PUT(b, n, OP_POLL, OP_NEWPEER);
    n += put_hello(b + n, 0, 1, 12);
    FZ_PUT(b, n, OP_POLL, OP_SCRIBBLE, 0, 0, 0, 8);
    memset(b + n, 0xFF, 8);
    n += 8;
    n += put_record(b + n, 0, RIPC_ONEWAY, "after");
    FZ_PUT(b, n, OP_POLL, OP_SHUT, 1, OP_POLL);
    run(b, n);
}
