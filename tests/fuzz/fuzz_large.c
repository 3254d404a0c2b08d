/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for large messages (src/large.c) as a receiver meets them:
 * LARGE frames with their descriptors on the control socket, and marker
 * records in the ring, paired by ripc__chan_peek (the consumer path of both
 * the master and the worker). The peer is hostile: the input is what it
 * writes to its end of a socketpair and into the ring.
 *
 *   byte 0      max_message: 1 << (byte % 24), at least 16
 *   then ops    (at most MAX_OPS), each an op byte and its arguments:
 *     FRAME     a frame header (LARGE unless the input says another type;
 *               the length mostly small) with 0, 1 or 2 descriptors of a
 *               kind from fuzz_util.h fz_make_fd (a sealed memfd of the
 *               frame's length holding a few input bytes, unsealed, the
 *               wrong size, a pipe, /dev/null, a socket)
 *     RAW       bytes as they are, on the socket
 *     MARKER    a marker record in the ring: message header with the LARGE
 *               flag (or raw header bytes) and the 8-byte length (or a
 *               payload of another size)
 *     MSG       a plain record
 *     READ      ripc__large_read
 *     PEEK      ripc__chan_peek (pairs a marker with its frame, maps it)
 *     RELEASE   ripc__chan_release of what peek returned
 *     SHUT      the peer half-closes its end (end of stream)
 *
 * Properties beyond ASan/UBSan: every call returns one of its documented
 * codes; -EPROTO from read is sticky; a message peek returns lies wholly in
 * readable memory, at most max_message long, and for a marker its length is
 * the marker's; when a frame of ours paired, the payload starts with the
 * bytes we put in its memfd; nothing blocks; every descriptor is closed
 * after ripc__chan_close.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ringipc/ring.h"
#include "sockets/sock.h"
#include "src/chan.h"
#include "src/internal.h"
#include "src/proto.h"
#include "tests/fuzz/fuzz_util.h"

#define MAX_OPS  128
#define CAP      4096u
#define FILL_MAX 16

enum { OP_FRAME, OP_RAW, OP_MARKER, OP_MSG, OP_READ, OP_PEEK, OP_RELEASE, OP_SHUT, OP_COUNT_ };

static volatile uint8_t sink;

/* The frames we sent with exactly one honest memfd (sealed or not: an
 * unsealed one maps under the fault guard), oldest first: what a marker
 * that pairs must map. */
struct sent {
    ripc__frame f;
    uint8_t fill[FILL_MAX];
    size_t fill_len;
};

static void op_frame(int peer, fz_in *in, struct sent *q, size_t *nq)
{
    unsigned how = (unsigned)fz_take(in, 1);
    /* One statement per read: the order of the input's fields is fixed. */
    ripc__frame f = {.ftype = RIPC_FRAME_LARGE};
    if (how & 0x80)
        f.ftype = (uint8_t)(1 + fz_take(in, 1) % 6);
    f.kind = (uint8_t)(fz_take(in, 1) % 3);
    f.type = (uint16_t)fz_take(in, 1);
    f.id = fz_take(in, 1);
    f.len = how & 0x40 ? fz_take(in, 8) : fz_take(in, 2);
    size_t got;
    const uint8_t *fill = fz_bytes(in, fz_take(in, 1) % (FILL_MAX + 1), &got);
    int nfds = (int)(how & 3) % 3, fds[2] = {-1, -1};
    size_t sz = f.len && f.len < ((uint64_t)1 << 24) ? (size_t)f.len : 4096;
    for (int i = 0; i < nfds; i++)
        if ((fds[i] = fz_make_fd(i ? how >> 5 : (how >> 2) & 7, sz, fill, got)) < 0)
            nfds = i;
    uint8_t hdr[RIPC_FRAME_HDR];
    ripc__frame_encode(hdr, &f);
    long n = ripc__sock_try_send_fds(peer, hdr, sizeof hdr, fds, nfds);
    if (n == (long)sizeof hdr && nfds == 1 && ((how >> 2) & 7) % FZ_FD_KINDS <= 1 &&
        f.ftype == RIPC_FRAME_LARGE && *nq < MAX_OPS) {
        struct sent *s = &q[(*nq)++];
        s->f = f;
        s->fill_len = got < sz ? got : sz;
        memcpy(s->fill, fill, s->fill_len);
    }
    for (int i = 0; i < nfds; i++)
        close(fds[i]);
}

static void op_record(ripc_ring *tx, fz_in *in, int marker)
{
    unsigned how = (unsigned)fz_take(in, 1);
    uint8_t hdr[RIPC_MSG_HDR];
    uint16_t type = (uint16_t)fz_take(in, 1);
    uint8_t kind = (uint8_t)(fz_take(in, 1) % 3);
    uint64_t id = fz_take(in, 1);
    ripc__msg_encode(hdr, type, kind, marker ? RIPC_MSGF_LARGE : 0, id);
    if (how & 0x80) {
        size_t got;
        const uint8_t *raw = fz_bytes(in, RIPC_MSG_HDR, &got);
        memcpy(hdr, raw, got);
    }
    uint64_t len = how & 0x40 ? fz_take(in, 8) : fz_take(in, 2);
    size_t plen = marker && !(how & 0x20) ? RIPC_MARKER_BYTES : (size_t)fz_take(in, 1) % 64;
    void *buf;
    if (ripc_ring_reserve(tx, RIPC_MSG_HDR + plen, &buf) != 0)
        return;
    memcpy(buf, hdr, RIPC_MSG_HDR);
    memset((uint8_t *)buf + RIPC_MSG_HDR, 0x5A, plen);
    memcpy((uint8_t *)buf + RIPC_MSG_HDR, &len, plen < sizeof len ? plen : sizeof len);
    ripc_ring_commit(tx, RIPC_MSG_HDR + plen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    int fds_before = fz_fd_count();
    unsigned shift = (unsigned)(fz_take(&in, 1) % 24);
    uint64_t max_message = (uint64_t)1 << (shift < 4 ? 4 : shift);

    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    ripc__sock_set_nonblock(sv[0], 1);
    ripc__sock_set_nonblock(sv[1], 1);
    size_t mem_len = ripc_ring_size(CAP);
    void *mem = aligned_alloc(128, mem_len);
    CHECK(mem != NULL && ripc_ring_format(mem, mem_len, CAP) == 0);
    ripc_ring *tx;
    CHECK(ripc_ring_attach(&tx, mem, mem_len, RIPC_RING_PRODUCER) == 0);
    ripc__chan ch;
    memset(&ch, 0, sizeof ch);
    ripc__chan_init(&ch);
    CHECK(ripc_ring_attach(&ch.rx, mem, mem_len, RIPC_RING_CONSUMER) == 0);
    ch.sock = sv[0];
    ch.max_message = max_message;

    struct sent q[MAX_OPS];
    size_t nq = 0;
    int held = 0, read_err = 0, mapped = 0;
    for (int ops = 0; ops < MAX_OPS && in.left > 0; ops++) {
        size_t got;
        const uint8_t *b;
        int rc;
        int op = (int)(fz_take(&in, 1) % OP_COUNT_);
        switch (op) {
        case OP_FRAME:
            op_frame(sv[1], &in, q, &nq);
            break;
        case OP_RAW:
            b = fz_bytes(&in, (size_t)fz_take(&in, 1) % 64, &got);
            if (got && send(sv[1], b, got, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
                /* full: the reader's business */
            }
            break;
        case OP_MARKER:
        case OP_MSG:
            op_record(tx, &in, op == OP_MARKER);
            break;
        case OP_READ: {
            unsigned before = ch.lg.in_n;
            rc = ripc__large_read(&ch.lg, ch.sock, max_message);
            CHECK(rc == 0 || rc == 1 || rc == -EPIPE || rc == -EPROTO);
            CHECK(ch.lg.in_n >= before && ch.lg.in_n <= RIPC_LARGE_SLOTS);
            if (read_err)
                CHECK(rc == -EPROTO);
            read_err = rc == -EPROTO;
            break;
        }
        case OP_PEEK: {
            ripc_msg m;
            rc = ripc__chan_peek(&ch, &m);
            CHECK(rc == 0 || rc == -EAGAIN || rc == -EPROTO || rc == -ENOMEM);
            if (rc != 0)
                break;
            held = 1;
            CHECK(m.len <= max_message || ch.lg.lent.base == NULL);
            if (m.len) {
                const uint8_t *d = m.data;
                sink = (uint8_t)(d[0] ^ d[m.len - 1]);
            }
            if (ch.lg.lent.base == NULL)
                break;
            /* A marker paired with a frame: only our honest frames (one
             * memfd of the right size, sealed, or unsealed and mapped under
             * the fault guard) can map, so the payload is the memfd of one
             * we sent with the marker's values. */
            CHECK(m.data == ch.lg.lent.base);
            mapped++;
            int found = 0;
            for (size_t i = 0; i < nq && !found; i++)
                found = q[i].f.len == m.len && q[i].f.type == m.type && q[i].f.kind == m.kind &&
                        q[i].f.id == m.id && memcmp(m.data, q[i].fill, q[i].fill_len) == 0;
            CHECK(found);
            break;
        }
        case OP_RELEASE:
            if (held)
                ripc__chan_release(&ch, 0);
            held = 0;
            break;
        default:
            shutdown(sv[1], SHUT_WR);
            break;
        }
    }
    if (getenv("RIPC_FUZZ_VERBOSE"))
        fprintf(stderr, "fuzz_large: %zu honest frames, %d large peeks\n", nq, mapped);
    ripc__chan_close(&ch);
    ripc_ring_detach(tx);
    free(mem);
    close(sv[0]);
    close(sv[1]);
    CHECK(fz_fd_count() == fds_before);
    return 0;
}

/* ---- seeds (replay driver, corpus generator) ---- */

static size_t put_frame(uint8_t *b, uint8_t ftype, unsigned how, uint8_t kind, uint8_t type,
                        uint8_t id, uint16_t len, const char *fill)
{
    size_t n = 0, fl = strlen(fill);
    FZ_PUT(b, n, OP_FRAME, how | (ftype != RIPC_FRAME_LARGE ? 0x80u : 0u));
    if (ftype != RIPC_FRAME_LARGE)
        FZ_PUT(b, n, ftype - 1);
    FZ_PUT(b, n, kind, type, id, len, len >> 8, fl);
    memcpy(b + n, fill, fl);
    return n + fl;
}

static size_t put_marker(uint8_t *b, uint8_t kind, uint8_t type, uint8_t id, uint16_t len)
{
    size_t n = 0;
    FZ_PUT(b, n, OP_MARKER, 0, type, kind, id, len, len >> 8);
    return n;
}

void ripc_fuzz_seeds(ripc_fuzz_run_fn run)
{
    uint8_t b[256];
    size_t n;
    /* Every script starts with the setup byte 20. One honest frame (one
     * sealed memfd) per fd kind, its marker, peek, release; then the same
     * with the marker first, two frames in a row, a mismatch, and no frame
     * at all. */
    for (unsigned kind = 0; kind < FZ_FD_KINDS; kind++) {
        n = 0;
        FZ_PUT(b, n, 20);
        n += put_frame(b + n, RIPC_FRAME_LARGE, 1 | (kind << 2), RIPC_REQUEST, 7, 3, 5000,
                       "payload");
        n += put_marker(b + n, RIPC_REQUEST, 7, 3, 5000);
        FZ_PUT(b, n, OP_PEEK, OP_RELEASE, OP_PEEK);
        run(b, n);
    }
    n = 0;
    FZ_PUT(b, n, 20);
    n += put_marker(b + n, RIPC_ONEWAY, 1, 0, 100);
    n += put_frame(b + n, RIPC_FRAME_LARGE, 1, RIPC_ONEWAY, 1, 0, 100, "late");
    FZ_PUT(b, n, OP_PEEK, OP_READ, OP_PEEK);
    run(b, n);
    n = 0;
    FZ_PUT(b, n, 20);
    n += put_frame(b + n, RIPC_FRAME_LARGE, 1, RIPC_ONEWAY, 1, 1, 100, "first");
    n += put_frame(b + n, RIPC_FRAME_LARGE, 1, RIPC_ONEWAY, 1, 2, 200, "second");
    FZ_PUT(b, n, OP_READ);
    n += put_marker(b + n, RIPC_ONEWAY, 1, 1, 100);
    n += put_marker(b + n, RIPC_ONEWAY, 1, 2, 200);
    FZ_PUT(b, n, OP_PEEK, OP_RELEASE, OP_PEEK, OP_RELEASE);
    run(b, n);
    n = 0;
    FZ_PUT(b, n, 20);
    n += put_frame(b + n, RIPC_FRAME_LARGE, 1, RIPC_ONEWAY, 1, 1, 100, "x");
    n += put_marker(b + n, RIPC_ONEWAY, 1, 9, 100);
    FZ_PUT(b, n, OP_PEEK, OP_PEEK);
    run(b, n);
    n = 0;
    FZ_PUT(b, n, 20);
    n += put_marker(b + n, RIPC_ONEWAY, 1, 1, 100);
    FZ_PUT(b, n, OP_SHUT, OP_PEEK, OP_MSG, 0, 1, 0, 0, 4, 0, 4, OP_PEEK);
    run(b, n);
    /* A BYE, then a frame after it; junk bytes. */
    n = 0;
    FZ_PUT(b, n, 20);
    n += put_frame(b + n, RIPC_FRAME_BYE, 0, 0, 0, 0, 0, "");
    FZ_PUT(b, n, OP_READ);
    n += put_frame(b + n, RIPC_FRAME_LARGE, 1, RIPC_ONEWAY, 1, 1, 100, "x");
    FZ_PUT(b, n, OP_READ, OP_RAW, 8, 'R', 'I', 'P', 'C', 'j', 'u', 'n', 'k', OP_READ);
    run(b, n);
}
