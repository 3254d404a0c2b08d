/* SPDX-License-Identifier: MIT */
/*
 * The wire format, all of it: control-channel frames, the handshake payloads,
 * and the message header that prefixes every record in a ring. Little-endian
 * on the wire whatever the host. No OS calls here: unit-tested and fuzzed
 * alone (tests/unit/test_proto.c, tests/fuzz/fuzz_proto.c). Every function
 * is pure (any thread, no state); every decoder treats its input as hostile.
 * Byte by byte, with the rules: docs/protocol.md.
 *
 * Frame: a 32-byte header, then `len` payload bytes.
 *
 *   off size field
 *   0   4    magic "RIPC"
 *   4   1    frame type (RIPC_FRAME_*)
 *   5   1    kind (MSG, LARGE: RIPC_KIND_*; else 0)
 *   6   2    message type (MSG, LARGE) / reject code (REJECT) / 0
 *   8   4    flags (reserved, 0)
 *   12  4    reserved, 0; LARGE on Windows: the buffer's handle value
 *   16  8    request id (MSG, LARGE) / 0
 *   24  8    payload length (64-bit: no 2 GiB / 4 GiB ceiling)
 *
 * A decoder checks magic, type, kind, the reserved fields, and the length
 * against the caller's limit *before* anything is allocated.
 */
#ifndef RIPC_SRC_PROTO_H
#define RIPC_SRC_PROTO_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define RIPC_PROTO_MAGIC 0x43504952u /* "RIPC" */
/* Protocol versions (docs/protocol.md, Versions): a worker connection is
 * the same in every version this master speaks, and workers offer
 * RIPC_PROTO_VERSION; version 2 adds the monitor HELLO and the SNAPSHOT
 * frame. The master speaks RIPC_PROTO_VERSION..RIPC_PROTO_VERSION_MAX. */
#define RIPC_PROTO_VERSION     1u
#define RIPC_PROTO_MONITOR     2u /* the least version with a monitor */
#define RIPC_PROTO_VERSION_MAX 2u
#define RIPC_FRAME_HDR         32u

enum {
    RIPC_FRAME_HELLO = 1,    /* worker -> master: ripc__hello */
    RIPC_FRAME_WELCOME = 2,  /* master -> worker: ripc__welcome (+ fds) */
    RIPC_FRAME_REJECT = 3,   /* master -> worker: code in `type`, reason text */
    RIPC_FRAME_MSG = 4,      /* socket mode: a message, of any size */
    RIPC_FRAME_BYE = 5,      /* clean goodbye, either way, empty */
    RIPC_FRAME_LARGE = 6,    /* shm mode: a large payload's buffer (SCM_RIGHTS, or
                              * its handle value at offset 12: platform/pass.h);
                              * kind, type, id and len repeat the ring marker's,
                              * and no payload bytes follow on the stream */
    RIPC_FRAME_SNAPSHOT = 7, /* master -> monitor: the snapshot (version 2) */
    RIPC_FRAME_MAX_ = 7,
};

/* Message kinds (public values, see ringipc.h). */
#define RIPC_KIND_ONEWAY  0
#define RIPC_KIND_REQUEST 1
#define RIPC_KIND_REPLY   2

/* Transports. */
enum {
    RIPC_XPORT_SHM = 1,
    RIPC_XPORT_SOCKET = 2,
};

/* Capabilities (HELLO / WELCOME caps). Doorbell kinds use RIPC_DB_CAP(). */
#define RIPC_CAP_MEMFD      (1u << 8)
#define RIPC_CAP_SHM_OPEN   (1u << 9)
#define RIPC_CAP_SHM        (1u << 10) /* willing and able to map shared memory */
#define RIPC_CAP_SOCKET     (1u << 11) /* can run socket mode */
#define RIPC_CAP_MEMBARRIER (1u << 12) /* HELLO: registered for asymmetric fences */
#define RIPC_CAP_FAST_W2M   (1u << 13) /* WELCOME: w->m ring uses asymmetric fences */
#define RIPC_CAP_FAST_M2W   (1u << 14) /* WELCOME: m->w ring uses asymmetric fences */
/* HELLO: with a socket doorbell, the worker would also sleep on the m->w
 * ring's futex word (sleep flag RIPC_SLEEP_WORD); WELCOME: agreed, the
 * master wakes such sleepers through the word (shm/doorbell.h). */
#define RIPC_CAP_SLEEP_WORD (1u << 15)
/* HELLO caps bits 16..19: preferred worker doorbell kind; 20..21: the
 * worker's wait strategy (RIPC_WAIT_*). */
#define RIPC_CAP_WAIT_SHIFT 20
/* HELLO: takes large-message buffers that cannot be sealed (shm_open),
 * mapping them under its fault guard; without it, large messages need a
 * memfd on both sides. */
#define RIPC_CAP_LARGE_UNSEALED (1u << 24)
/* HELLO (version 2 and up): a monitor, not a worker. The master answers
 * with one SNAPSHOT frame and closes (docs/protocol.md, Monitors). */
#define RIPC_CAP_MONITOR (1u << 25)

/* REJECT codes: positive errno values; the client returns those a caller
 * can act on negated, the rest as -ECONNREFUSED (client_open.c). */

typedef struct ripc__frame {
    uint8_t ftype;
    uint8_t kind;
    uint16_t type;
    uint32_t flags;
    uint32_t handle; /* LARGE, in-band (Windows): the buffer's handle value; else 0 */
    uint64_t id;
    uint64_t len;
} ripc__frame;

static inline void ripc__put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void ripc__put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void ripc__put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t ripc__get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t ripc__get32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}
static inline uint64_t ripc__get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* Encode a frame header (f->handle in the reserved word: 0 but for an
 * in-band LARGE frame); no checks. */
static inline void ripc__frame_encode(uint8_t out[RIPC_FRAME_HDR], const ripc__frame *f)
{
    ripc__put32(out, RIPC_PROTO_MAGIC);
    out[4] = f->ftype;
    out[5] = f->kind;
    ripc__put16(out + 6, f->type);
    ripc__put32(out + 8, f->flags);
    ripc__put32(out + 12, f->handle);
    ripc__put64(out + 16, f->id);
    ripc__put64(out + 24, f->len);
}

/*
 * Decode and check a frame header. max_len caps the payload (the negotiated
 * max_message for MSG; the handshake limit for the others). inband
 * (platform/pass.h, RIPC_PASS_INBAND: Windows): a LARGE frame's word at
 * offset 12 is its buffer's handle value (f->handle, checked by whoever
 * takes it); otherwise, and on every other frame, it is reserved. Returns
 * 0, -EPROTO (bad magic, frame type, kind, reserved bits) or -EMSGSIZE
 * (len > max_len): both mean "drop this peer".
 */
static inline int ripc__frame_decode_as(const uint8_t in[RIPC_FRAME_HDR], ripc__frame *f,
                                        uint64_t max_len, int inband)
{
    if (ripc__get32(in) != RIPC_PROTO_MAGIC)
        return -EPROTO;
    f->ftype = in[4];
    f->kind = in[5];
    f->type = ripc__get16(in + 6);
    f->flags = ripc__get32(in + 8);
    f->handle = ripc__get32(in + 12);
    f->id = ripc__get64(in + 16);
    f->len = ripc__get64(in + 24);
    if (f->ftype < RIPC_FRAME_HELLO || f->ftype > RIPC_FRAME_MAX_)
        return -EPROTO;
    if ((f->handle != 0 && !(inband && f->ftype == RIPC_FRAME_LARGE)) || f->flags != 0)
        return -EPROTO;
    int is_msg = f->ftype == RIPC_FRAME_MSG || f->ftype == RIPC_FRAME_LARGE;
    if (is_msg ? f->kind > RIPC_KIND_REPLY : f->kind != 0)
        return -EPROTO;
    if (!is_msg && (f->id != 0 || (f->ftype != RIPC_FRAME_REJECT && f->type)))
        return -EPROTO;
    if (f->ftype == RIPC_FRAME_BYE && f->len != 0)
        return -EPROTO;
    if (f->len > max_len)
        return -EMSGSIZE;
    return 0;
}

/* ripc__frame_decode_as, with every reserved word 0 (not in-band). */
static inline int ripc__frame_decode(const uint8_t in[RIPC_FRAME_HDR], ripc__frame *f,
                                     uint64_t max_len)
{
    return ripc__frame_decode_as(in, f, max_len, 0);
}

/* ---- handshake payloads ---- */

#define RIPC_NAME_MAX      63
#define RIPC_TOKEN_MAX     128
#define RIPC_REASON_MAX    200
#define RIPC_HANDSHAKE_MAX 1024 /* no handshake payload is larger */

typedef struct ripc__hello {
    uint16_t version_min; /* protocol versions the worker speaks */
    uint16_t version_max;
    uint32_t caps; /* RIPC_CAP_* | RIPC_DB_CAP(kind) */
    uint32_t pid;
    uint32_t transport;   /* what the worker asks: 0 auto, RIPC_XPORT_* */
    uint64_t ring_bytes;  /* wish per direction (0: master's choice) */
    uint64_t max_message; /* the worker's own cap (0: none) */
    char name[RIPC_NAME_MAX + 1];
    uint8_t token_len;
    uint8_t token[RIPC_TOKEN_MAX];
} ripc__hello;

/* HELLO payload: fixed 40 bytes, then name (name_len), then token. */
#define RIPC_HELLO_FIXED 40u

/* Returns the payload length, or 0 when it does not fit in cap bytes. */
static inline size_t ripc__hello_encode(uint8_t *out, size_t cap, const ripc__hello *h)
{
    size_t nlen = strnlen(h->name, RIPC_NAME_MAX);
    size_t tlen = h->token_len > RIPC_TOKEN_MAX ? RIPC_TOKEN_MAX : h->token_len;
    size_t need = RIPC_HELLO_FIXED + nlen + tlen;
    if (cap < need)
        return 0;
    memset(out, 0, RIPC_HELLO_FIXED);
    ripc__put16(out, h->version_min);
    ripc__put16(out + 2, h->version_max);
    ripc__put32(out + 4, h->caps);
    ripc__put32(out + 8, h->pid);
    ripc__put32(out + 12, h->transport);
    ripc__put64(out + 16, h->ring_bytes);
    ripc__put64(out + 24, h->max_message);
    out[32] = (uint8_t)nlen;
    out[33] = (uint8_t)tlen;
    memcpy(out + RIPC_HELLO_FIXED, h->name, nlen);
    memcpy(out + RIPC_HELLO_FIXED + nlen, h->token, tlen);
    return need;
}

/* Returns 0 or -EPROTO (short, lengths that do not add up, reserved bytes
 * not zero, NUL in name). Versions, caps and sizes are the master's to
 * judge. */
static inline int ripc__hello_decode(const uint8_t *in, size_t len, ripc__hello *h)
{
    if (len < RIPC_HELLO_FIXED)
        return -EPROTO;
    memset(h, 0, sizeof *h);
    h->version_min = ripc__get16(in);
    h->version_max = ripc__get16(in + 2);
    h->caps = ripc__get32(in + 4);
    h->pid = ripc__get32(in + 8);
    h->transport = ripc__get32(in + 12);
    h->ring_bytes = ripc__get64(in + 16);
    h->max_message = ripc__get64(in + 24);
    size_t nlen = in[32], tlen = in[33];
    for (int i = 34; i < (int)RIPC_HELLO_FIXED; i++)
        if (in[i] != 0)
            return -EPROTO;
    if (nlen > RIPC_NAME_MAX || tlen > RIPC_TOKEN_MAX || RIPC_HELLO_FIXED + nlen + tlen != len)
        return -EPROTO;
    if (memchr(in + RIPC_HELLO_FIXED, 0, nlen) != NULL)
        return -EPROTO;
    memcpy(h->name, in + RIPC_HELLO_FIXED, nlen);
    h->name[nlen] = 0;
    h->token_len = (uint8_t)tlen;
    memcpy(h->token, in + RIPC_HELLO_FIXED + nlen, tlen);
    return 0;
}

typedef struct ripc__welcome {
    uint16_t version;  /* chosen protocol version */
    uint8_t transport; /* RIPC_XPORT_* */
    uint8_t nfds;      /* descriptors attached: segment, master bell, worker bell */
    uint32_t peer_id;
    uint32_t caps;       /* chosen: RIPC_CAP_FAST_W2M / _FAST_M2W / _SLEEP_WORD */
    uint8_t worker_db;   /* doorbell kind the worker sleeps on */
    uint8_t master_db;   /* doorbell kind the worker rings to wake the master */
    uint16_t reason_len; /* why this transport (text follows the fixed part) */
    uint64_t ring_bytes; /* capacity of each ring */
    uint64_t seg_bytes;  /* size of the segment (both rings) */
    uint64_t max_message;
    uint64_t max_inline;
    char reason[RIPC_REASON_MAX + 1];
    /* Where objects travel in the bytes (platform/pass.h, RIPC_PASS_INBAND:
     * Windows): nfds handle values follow the reason, 8 bytes each. Never
     * on POSIX, whose descriptors come attached to the frame. */
    uint8_t inband;
    uint64_t handles[3];
} ripc__welcome;

#define RIPC_WELCOME_FIXED  48u
#define RIPC_WELCOME_HANDLE 8u /* bytes per in-band handle value */

/* Returns the payload length, or 0 when it does not fit in cap bytes. */
static inline size_t ripc__welcome_encode(uint8_t *out, size_t cap, const ripc__welcome *w)
{
    size_t rlen = strnlen(w->reason, RIPC_REASON_MAX);
    size_t hlen = w->inband ? (size_t)w->nfds * RIPC_WELCOME_HANDLE : 0;
    if ((w->inband && w->nfds > 3) || cap < RIPC_WELCOME_FIXED + rlen + hlen)
        return 0;
    memset(out, 0, RIPC_WELCOME_FIXED);
    ripc__put16(out, w->version);
    out[2] = w->transport;
    out[3] = w->nfds;
    ripc__put32(out + 4, w->peer_id);
    ripc__put32(out + 8, w->caps);
    out[12] = w->worker_db;
    out[13] = w->master_db;
    ripc__put16(out + 14, (uint16_t)rlen);
    ripc__put64(out + 16, w->ring_bytes);
    ripc__put64(out + 24, w->seg_bytes);
    ripc__put64(out + 32, w->max_message);
    ripc__put64(out + 40, w->max_inline);
    memcpy(out + RIPC_WELCOME_FIXED, w->reason, rlen);
    for (size_t i = 0; i < hlen / RIPC_WELCOME_HANDLE; i++)
        ripc__put64(out + RIPC_WELCOME_FIXED + rlen + i * RIPC_WELCOME_HANDLE, w->handles[i]);
    return RIPC_WELCOME_FIXED + rlen + hlen;
}

/* Returns 0 or -EPROTO (short, lengths that do not add up, unknown
 * transport, more than 3 descriptors, NUL in reason). inband: the frame
 * carries nfds handle values after the reason (and w->handles gets them);
 * otherwise nothing follows the reason. Version, sizes and descriptor count
 * against the doorbell kinds are the worker's to check. */
static inline int ripc__welcome_decode_as(const uint8_t *in, size_t len, ripc__welcome *w,
                                          int inband)
{
    if (len < RIPC_WELCOME_FIXED)
        return -EPROTO;
    memset(w, 0, sizeof *w);
    w->version = ripc__get16(in);
    w->transport = in[2];
    w->nfds = in[3];
    w->peer_id = ripc__get32(in + 4);
    w->caps = ripc__get32(in + 8);
    w->worker_db = in[12];
    w->master_db = in[13];
    w->reason_len = ripc__get16(in + 14);
    w->ring_bytes = ripc__get64(in + 16);
    w->seg_bytes = ripc__get64(in + 24);
    w->max_message = ripc__get64(in + 32);
    w->max_inline = ripc__get64(in + 40);
    w->inband = inband ? 1 : 0;
    size_t hlen = w->inband ? (size_t)w->nfds * RIPC_WELCOME_HANDLE : 0;
    if (w->nfds > 3 || w->reason_len > RIPC_REASON_MAX ||
        RIPC_WELCOME_FIXED + w->reason_len + hlen != len)
        return -EPROTO;
    if (w->transport != RIPC_XPORT_SHM && w->transport != RIPC_XPORT_SOCKET)
        return -EPROTO;
    if (memchr(in + RIPC_WELCOME_FIXED, 0, w->reason_len) != NULL)
        return -EPROTO;
    memcpy(w->reason, in + RIPC_WELCOME_FIXED, w->reason_len);
    w->reason[w->reason_len] = 0;
    for (size_t i = 0; i < hlen / RIPC_WELCOME_HANDLE; i++)
        w->handles[i] =
            ripc__get64(in + RIPC_WELCOME_FIXED + w->reason_len + i * RIPC_WELCOME_HANDLE);
    return 0;
}

/* The POSIX form: descriptors come attached, nothing follows the reason. */
static inline int ripc__welcome_decode(const uint8_t *in, size_t len, ripc__welcome *w)
{
    return ripc__welcome_decode_as(in, len, w, 0);
}

/* REJECT payload: the reason text (no NUL), at most RIPC_REASON_MAX bytes;
 * the code (positive errno) travels in the frame's `type` field. */

/* ---- error replies ----
 *
 * A request answered with an error gets a REPLY of message type
 * RIPC_MSG_ERROR (reserved: users cannot send it) with the request's id, in
 * either transport. Its payload:
 *
 *   off  size  field
 *   0    4     code: the positive errno value, 1..RIPC_ERR_CODE_MAX,
 *              little-endian (the worker's request returns it negated)
 *   4    n     text: 0..RIPC_ERR_TEXT_MAX bytes, no NUL, not terminated
 *
 * Anything else in a reply of a reserved type is the master breaking the
 * protocol (-EPROTO). The rules: docs/protocol.md, Error replies.
 */
#define RIPC_MSG_ERROR    0xF000u
#define RIPC_ERR_FIXED    4u
#define RIPC_ERR_TEXT_MAX 200u
#define RIPC_ERR_CODE_MAX 4095u

/* Encode an error payload into out (RIPC_ERR_FIXED + RIPC_ERR_TEXT_MAX
 * bytes at least) for code (positive errno) and text (NULL: none), at most
 * max_len bytes in all. Returns the payload length, or 0 when not even the
 * code fits max_len. */
static inline size_t ripc__err_encode(uint8_t *out, uint32_t code, const char *text,
                                      uint64_t max_len)
{
    if (max_len < RIPC_ERR_FIXED)
        return 0;
    size_t n = text ? strnlen(text, RIPC_ERR_TEXT_MAX) : 0;
    if (n > max_len - RIPC_ERR_FIXED)
        n = (size_t)(max_len - RIPC_ERR_FIXED);
    ripc__put32(out, code);
    memcpy(out + RIPC_ERR_FIXED, text ? text : "", n);
    return RIPC_ERR_FIXED + n;
}

/* Decode an error payload: 0 with *code (positive) and text (NUL-terminated,
 * RIPC_ERR_TEXT_MAX + 1 bytes), or -EPROTO. Reads each byte once. */
static inline int ripc__err_decode(const uint8_t *in, uint64_t len, uint32_t *code,
                                   char text[RIPC_ERR_TEXT_MAX + 1])
{
    if (len < RIPC_ERR_FIXED || len > RIPC_ERR_FIXED + RIPC_ERR_TEXT_MAX)
        return -EPROTO;
    uint8_t buf[RIPC_ERR_FIXED + RIPC_ERR_TEXT_MAX];
    memcpy(buf, in, (size_t)len); /* shared memory: one read, then checks */
    size_t n = (size_t)len - RIPC_ERR_FIXED;
    *code = ripc__get32(buf);
    if (*code == 0 || *code > RIPC_ERR_CODE_MAX || memchr(buf + RIPC_ERR_FIXED, 0, n) != NULL)
        return -EPROTO;
    memcpy(text, buf + RIPC_ERR_FIXED, n);
    text[n] = 0;
    return 0;
}

/* ---- the message header inside a ring record ----
 *
 *   0  2  type
 *   2  1  kind
 *   3  1  flags (RIPC_MSGF_*)
 *   4  4  reserved, 0
 *   8  8  id
 */
#define RIPC_MSG_HDR 16u
/* A large message's marker: the record's payload is the message length (8
 * bytes, host order); the bytes are in a memfd that a RIPC_FRAME_LARGE frame
 * on the control socket carries (src/large.h). */
#define RIPC_MSGF_LARGE   0x1u
#define RIPC_MARKER_BYTES 8u
#define RIPC_MSGF_KNOWN   0x1u

/* Encode a message header into a reserved record (the producer's own
 * memory until the commit publishes it). */
static inline void ripc__msg_encode(uint8_t out[RIPC_MSG_HDR], uint16_t type, uint8_t kind,
                                    uint8_t flags, uint64_t id)
{
    uint64_t w0 = (uint64_t)type | ((uint64_t)kind << 16) | ((uint64_t)flags << 24);
    /* Host order == little-endian on every platform we build for; the
     * segment never leaves the machine, so the ring header is host order. */
    memcpy(out, &w0, 8);
    memcpy(out + 8, &id, 8);
}

/* Decode from shared memory: each word read once, then checked. 0 or
 * -EPROTO (reserved bits, unknown kind or flags). */
static inline int ripc__msg_decode(const uint8_t in[RIPC_MSG_HDR], uint16_t *type, uint8_t *kind,
                                   uint8_t *flags, uint64_t *id)
{
    uint64_t w0, w1;
    memcpy(&w0, in, 8);
    memcpy(&w1, in + 8, 8);
    *type = (uint16_t)w0;
    *kind = (uint8_t)(w0 >> 16);
    *flags = (uint8_t)(w0 >> 24);
    *id = w1;
    if ((w0 >> 32) != 0 || *kind > RIPC_KIND_REPLY || (*flags & ~RIPC_MSGF_KNOWN) != 0)
        return -EPROTO;
    return 0;
}

/* ---- the monitor's snapshot (protocol version 2) ----
 *
 * A monitor HELLO (caps RIPC_CAP_MONITOR, versions 2..2) uses the HELLO's
 * ring_bytes field for the lowest peer id to list; the master answers one
 * SNAPSHOT frame and closes. Its payload: a header, then `count` peer
 * records, each a fixed part and the name. The header says how long it
 * and each record's fixed part are, so a later format may append fields
 * that an older reader skips. Byte by byte: docs/protocol.md, Monitors.
 */
#define RIPC_SNAP_FORMAT    1u
#define RIPC_SNAP_HDR       144u /* the header, format 1 */
#define RIPC_SNAP_REC       168u /* a peer record's fixed part, format 1 */
#define RIPC_SNAP_PEERS_MAX 256u /* peer records in one SNAPSHOT at most */
/* What a reader accepts as a SNAPSHOT's length; a format-1 one is at most
 * RIPC_SNAP_HDR + RIPC_SNAP_PEERS_MAX * (RIPC_SNAP_REC + RIPC_NAME_MAX). */
#define RIPC_SNAP_LEN_MAX (1u << 20)

typedef struct ripc__snap_head {
    uint16_t format, hdr_len, rec_len, count;
    uint32_t pid;       /* the master's */
    uint32_t peers_now; /* workers connected, all of them (count may be fewer) */
    uint64_t next_id;   /* 0: the last page; else ask again from this id */
    uint64_t now_ns;    /* CLOCK_REALTIME at the master when taken */
    uint64_t mono_ns;   /* CLOCK_MONOTONIC at the master when taken */
    uint64_t opened_ns, peers_total, parked_now, unhandled;
    uint64_t left[6]; /* bye, pipe, proto, timedout, canceled, other */
    uint64_t refused, hs_failed, large_pool_bytes;
} ripc__snap_head;

typedef struct ripc__snap_peer {
    uint32_t id;
    int32_t pid;
    uint8_t transport; /* RIPC_XPORT_* */
    uint64_t connected_ns;
    uint64_t msgs_in, bytes_in, msgs_out, bytes_out, requests_in;
    uint64_t ring_bytes, ring_in_used, ring_out_used, ring_in_high, ring_out_high;
    uint64_t send_waits, send_wait_ns, sleeps, wakeups, doorbells, dropped;
    uint64_t large_in, large_out;
    char name[RIPC_NAME_MAX + 1];
} ripc__snap_peer;

/* The header into out (RIPC_SNAP_HDR bytes), format 1. */
static inline void ripc__snap_head_encode(uint8_t *out, const ripc__snap_head *h)
{
    memset(out, 0, RIPC_SNAP_HDR);
    ripc__put16(out, RIPC_SNAP_FORMAT);
    ripc__put16(out + 2, RIPC_SNAP_HDR);
    ripc__put16(out + 4, RIPC_SNAP_REC);
    ripc__put16(out + 6, h->count);
    ripc__put32(out + 8, h->pid);
    ripc__put32(out + 12, h->peers_now);
    const uint64_t w[] = {h->next_id,     h->now_ns,     h->mono_ns,   h->opened_ns,
                          h->peers_total, h->parked_now, h->unhandled, h->left[0],
                          h->left[1],     h->left[2],    h->left[3],   h->left[4],
                          h->left[5],     h->refused,    h->hs_failed, h->large_pool_bytes};
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
        ripc__put64(out + 16 + 8 * i, w[i]);
}

/* One peer record into out (RIPC_SNAP_REC + RIPC_NAME_MAX bytes at
 * least); returns its length. */
static inline size_t ripc__snap_peer_encode(uint8_t *out, const ripc__snap_peer *p)
{
    size_t nlen = strnlen(p->name, RIPC_NAME_MAX);
    memset(out, 0, RIPC_SNAP_REC);
    ripc__put32(out, p->id);
    ripc__put32(out + 4, (uint32_t)p->pid);
    out[8] = p->transport;
    out[9] = (uint8_t)nlen;
    const uint64_t w[] = {p->connected_ns,  p->msgs_in,      p->bytes_in,      p->msgs_out,
                          p->bytes_out,     p->requests_in,  p->ring_bytes,    p->ring_in_used,
                          p->ring_out_used, p->ring_in_high, p->ring_out_high, p->send_waits,
                          p->send_wait_ns,  p->sleeps,       p->wakeups,       p->doorbells,
                          p->dropped,       p->large_in,     p->large_out};
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
        ripc__put64(out + 16 + 8 * i, w[i]);
    memcpy(out + RIPC_SNAP_REC, p->name, nlen);
    return RIPC_SNAP_REC + nlen;
}

/* The header of a SNAPSHOT payload of len bytes: 0 or -EPROTO (short, a
 * format below 1, sizes below format 1's or past the end). Fields a later
 * format appends are skipped. */
static inline int ripc__snap_head_decode(const uint8_t *in, size_t len, ripc__snap_head *h)
{
    if (len < RIPC_SNAP_HDR)
        return -EPROTO;
    memset(h, 0, sizeof *h);
    h->format = ripc__get16(in);
    h->hdr_len = ripc__get16(in + 2);
    h->rec_len = ripc__get16(in + 4);
    h->count = ripc__get16(in + 6);
    if (h->format < 1 || h->hdr_len < RIPC_SNAP_HDR || h->hdr_len > len ||
        h->rec_len < RIPC_SNAP_REC)
        return -EPROTO;
    h->pid = ripc__get32(in + 8);
    h->peers_now = ripc__get32(in + 12);
    uint64_t *w[] = {&h->next_id,     &h->now_ns,     &h->mono_ns,   &h->opened_ns,
                     &h->peers_total, &h->parked_now, &h->unhandled, &h->left[0],
                     &h->left[1],     &h->left[2],    &h->left[3],   &h->left[4],
                     &h->left[5],     &h->refused,    &h->hs_failed, &h->large_pool_bytes};
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
        *w[i] = ripc__get64(in + 16 + 8 * i);
    return 0;
}

/* The peer record at *off of a payload of len bytes whose header said
 * rec_len: 0 with *off past it, or -EPROTO (past the end, a name too long
 * or with a NUL, an unknown transport, reserved bytes not zero). */
static inline int ripc__snap_peer_decode(const uint8_t *in, size_t len, size_t rec_len, size_t *off,
                                         ripc__snap_peer *p)
{
    if (*off > len || len - *off < rec_len)
        return -EPROTO;
    const uint8_t *r = in + *off;
    size_t nlen = r[9];
    if (nlen > RIPC_NAME_MAX || len - *off - rec_len < nlen)
        return -EPROTO;
    for (int i = 10; i < 16; i++)
        if (r[i] != 0)
            return -EPROTO;
    if ((r[8] != RIPC_XPORT_SHM && r[8] != RIPC_XPORT_SOCKET) ||
        memchr(r + rec_len, 0, nlen) != NULL)
        return -EPROTO;
    memset(p, 0, sizeof *p);
    p->id = ripc__get32(r);
    p->pid = (int32_t)ripc__get32(r + 4);
    p->transport = r[8];
    uint64_t *w[] = {&p->connected_ns,  &p->msgs_in,      &p->bytes_in,      &p->msgs_out,
                     &p->bytes_out,     &p->requests_in,  &p->ring_bytes,    &p->ring_in_used,
                     &p->ring_out_used, &p->ring_in_high, &p->ring_out_high, &p->send_waits,
                     &p->send_wait_ns,  &p->sleeps,       &p->wakeups,       &p->doorbells,
                     &p->dropped,       &p->large_in,     &p->large_out};
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
        *w[i] = ripc__get64(r + 16 + 8 * i);
    memcpy(p->name, r + rec_len, nlen);
    p->name[nlen] = 0;
    *off += rec_len + nlen;
    return 0;
}

#endif /* RIPC_SRC_PROTO_H */
