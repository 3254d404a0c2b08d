/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for src/proto.h, the wire format: frame headers, the HELLO and
 * WELCOME payloads and the ring message header. Encoders are checked against
 * the decoders and, once, byte for byte against a hand-written frame; every
 * field the decoders must refuse is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "src/proto.h"

#define GiB ((uint64_t)1 << 30)

/* Hide a buffer size from the optimiser. GCC 12 at -O2 follows a constant
 * small `cap` into the inlined encoders and warns (-Wstringop-overflow)
 * about a memcpy on the path that `cap < need` has already cut off. */
static size_t opaque(size_t len)
{
    volatile size_t v = len;
    return v;
}

static ripc__frame frame(uint8_t ftype, uint8_t kind, uint16_t type, uint64_t id, uint64_t len)
{
    ripc__frame f = {.ftype = ftype, .kind = kind, .type = type, .flags = 0, .id = id, .len = len};
    return f;
}

static int decode_frame(const ripc__frame *in, uint64_t max_len)
{
    uint8_t b[RIPC_FRAME_HDR];
    ripc__frame out;
    ripc__frame_encode(b, in);
    return ripc__frame_decode(b, &out, max_len);
}

static void assert_frame_roundtrip(ripc__frame f, uint64_t max_len)
{
    uint8_t b[RIPC_FRAME_HDR];
    ripc__frame out;
    memset(&out, 0xA5, sizeof out);
    ripc__frame_encode(b, &f);
    assert_int_equal(ripc__frame_decode(b, &out, max_len), 0);
    assert_int_equal(out.ftype, f.ftype);
    assert_int_equal(out.kind, f.kind);
    assert_int_equal(out.type, f.type);
    assert_int_equal(out.flags, 0);
    assert_true(out.id == f.id);
    assert_true(out.len == f.len);
}

/* ---- frames ---- */

static void test_proto_frame_roundtrip(void **state)
{
    static const uint64_t lens[] = {
        0, 1, 31, 0xFFFFFFFFu, (uint64_t)1 << 32, 5 * GiB, ((uint64_t)1 << 62) + 3, UINT64_MAX,
    };
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        for (uint8_t k = RIPC_KIND_ONEWAY; k <= RIPC_KIND_REPLY; k++)
            assert_frame_roundtrip(frame(RIPC_FRAME_MSG, k, 0xBEEF, 0x0123456789ABCDEFull, lens[i]),
                                   UINT64_MAX);
        assert_frame_roundtrip(frame(RIPC_FRAME_HELLO, 0, 0, 0, lens[i]), lens[i]);
        assert_frame_roundtrip(frame(RIPC_FRAME_WELCOME, 0, 0, 0, lens[i]), lens[i]);
        assert_frame_roundtrip(frame(RIPC_FRAME_REJECT, 0, EACCES, 0, lens[i]), UINT64_MAX);
    }
    assert_frame_roundtrip(frame(RIPC_FRAME_BYE, 0, 0, 0, 0), 0);
    assert_frame_roundtrip(frame(RIPC_FRAME_MSG, RIPC_KIND_REQUEST, 0xFFFF, UINT64_MAX, 0), 0);
}

static void test_proto_frame_bytes(void **state)
{
    static const uint8_t want[RIPC_FRAME_HDR] = {
        'R',  'I',  'P',  'C',                          /* magic */
        0x04,                                           /* frame type MSG */
        0x01,                                           /* kind REQUEST */
        0x34, 0x12,                                     /* message type 0x1234 */
        0x00, 0x00, 0x00, 0x00,                         /* flags */
        0x00, 0x00, 0x00, 0x00,                         /* reserved */
        0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* id */
        0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, /* len */
    };
    uint8_t b[RIPC_FRAME_HDR];
    ripc__frame f = frame(RIPC_FRAME_MSG, RIPC_KIND_REQUEST, 0x1234, 0x0102030405060708ull,
                          0x1122334455667788ull);
    ripc__frame_encode(b, &f);
    assert_memory_equal(b, want, sizeof want);

    ripc__frame out;
    assert_int_equal(ripc__frame_decode(want, &out, UINT64_MAX), 0);
    assert_int_equal(out.ftype, RIPC_FRAME_MSG);
    assert_int_equal(out.kind, RIPC_KIND_REQUEST);
    assert_int_equal(out.type, 0x1234);
    assert_true(out.id == 0x0102030405060708ull);
    assert_true(out.len == 0x1122334455667788ull);
}

static void test_proto_frame_bad_magic(void **state)
{
    uint8_t b[RIPC_FRAME_HDR];
    ripc__frame f = frame(RIPC_FRAME_MSG, 0, 1, 2, 3), out;
    for (int i = 0; i < 4; i++) {
        for (int bit = 0; bit < 8; bit++) {
            ripc__frame_encode(b, &f);
            b[i] ^= (uint8_t)(1u << bit);
            assert_int_equal(ripc__frame_decode(b, &out, UINT64_MAX), -EPROTO);
        }
    }
    memset(b, 0, sizeof b);
    assert_int_equal(ripc__frame_decode(b, &out, UINT64_MAX), -EPROTO);
}

static void test_proto_frame_bad_type(void **state)
{
    static const uint8_t bad[] = {0, RIPC_FRAME_MAX_ + 1, 8, 0x7F, 0x80, 0xFF};
    for (size_t i = 0; i < sizeof bad; i++)
        assert_int_equal(decode_frame(&(ripc__frame){.ftype = bad[i]}, UINT64_MAX), -EPROTO);
    for (uint8_t t = RIPC_FRAME_HELLO; t <= RIPC_FRAME_MAX_; t++)
        assert_int_equal(decode_frame(&(ripc__frame){.ftype = t}, UINT64_MAX), 0);
}

static void test_proto_frame_bad_kind(void **state)
{
    static const uint8_t non_msg[] = {RIPC_FRAME_HELLO, RIPC_FRAME_WELCOME, RIPC_FRAME_REJECT,
                                      RIPC_FRAME_BYE};
    for (size_t i = 0; i < sizeof non_msg; i++) {
        for (unsigned k = 1; k < 256; k++)
            assert_int_equal(
                decode_frame(&(ripc__frame){.ftype = non_msg[i], .kind = (uint8_t)k}, UINT64_MAX),
                -EPROTO);
    }
    for (unsigned k = 0; k < 256; k++) {
        int want = k <= RIPC_KIND_REPLY ? 0 : -EPROTO;
        assert_int_equal(
            decode_frame(&(ripc__frame){.ftype = RIPC_FRAME_MSG, .kind = (uint8_t)k}, UINT64_MAX),
            want);
        assert_int_equal(
            decode_frame(&(ripc__frame){.ftype = RIPC_FRAME_LARGE, .kind = (uint8_t)k}, UINT64_MAX),
            want);
    }
}

static void test_proto_frame_reserved_and_flags(void **state)
{
    uint8_t b[RIPC_FRAME_HDR];
    ripc__frame f = frame(RIPC_FRAME_MSG, 0, 7, 9, 11), out;
    /* bytes 8..11 are flags, 12..15 reserved: any bit set is refused */
    for (int i = 8; i < 16; i++) {
        for (int bit = 0; bit < 8; bit++) {
            ripc__frame_encode(b, &f);
            b[i] |= (uint8_t)(1u << bit);
            assert_int_equal(ripc__frame_decode(b, &out, UINT64_MAX), -EPROTO);
        }
    }
    /* ... including through the encoder's flags field */
    for (int bit = 0; bit < 32; bit++) {
        f.flags = 1u << bit;
        assert_int_equal(decode_frame(&f, UINT64_MAX), -EPROTO);
    }
}

/* In-band (Windows): a LARGE frame's word at offset 12 is its buffer's
 * handle value, little-endian; on any other frame, and not in-band, it
 * stays reserved. */
static void test_proto_frame_large_handle_inband(void **state)
{
    uint8_t b[RIPC_FRAME_HDR];
    ripc__frame out;
    for (unsigned t = RIPC_FRAME_HELLO; t <= RIPC_FRAME_MAX_; t++) {
        int msg = t == RIPC_FRAME_MSG || t == RIPC_FRAME_LARGE;
        ripc__frame f = {.ftype = (uint8_t)t,
                         .kind = msg ? RIPC_KIND_REQUEST : 0,
                         .type = msg || t == RIPC_FRAME_REJECT ? 9 : 0,
                         .id = msg ? 7 : 0,
                         .handle = 0x00abcdecu,
                         .len = t == RIPC_FRAME_BYE ? 0 : 300};
        ripc__frame_encode(b, &f);
        assert_int_equal(b[12], 0xec);
        assert_int_equal(b[15], 0x00);
        assert_int_equal(ripc__frame_decode(b, &out, UINT64_MAX), -EPROTO);
        int rc = ripc__frame_decode_as(b, &out, UINT64_MAX, 1);
        if (t != RIPC_FRAME_LARGE) {
            assert_int_equal(rc, -EPROTO);
            continue;
        }
        assert_int_equal(rc, 0);
        assert_int_equal(out.handle, 0x00abcdecu);
        assert_true(out.id == 7 && out.len == 300 && out.type == 9);
        /* the flags word stays reserved */
        b[8] = 1;
        assert_int_equal(ripc__frame_decode_as(b, &out, UINT64_MAX, 1), -EPROTO);
    }
    /* ... and a decoded frame not in-band says handle 0 */
    ripc__frame f = {.ftype = RIPC_FRAME_LARGE, .len = 5};
    ripc__frame_encode(b, &f);
    out.handle = 1;
    assert_int_equal(ripc__frame_decode(b, &out, UINT64_MAX), 0);
    assert_int_equal(out.handle, 0);
}

static void test_proto_frame_bye_with_payload(void **state)
{
    assert_int_equal(decode_frame(&(ripc__frame){.ftype = RIPC_FRAME_BYE, .len = 0}, 0), 0);
    assert_int_equal(decode_frame(&(ripc__frame){.ftype = RIPC_FRAME_BYE, .len = 1}, UINT64_MAX),
                     -EPROTO);
    assert_int_equal(
        decode_frame(&(ripc__frame){.ftype = RIPC_FRAME_BYE, .len = UINT64_MAX}, UINT64_MAX),
        -EPROTO);
}

static void test_proto_frame_len_limit(void **state)
{
    ripc__frame f = frame(RIPC_FRAME_MSG, 0, 1, 1, 0);
    f.len = RIPC_HANDSHAKE_MAX;
    assert_int_equal(decode_frame(&f, RIPC_HANDSHAKE_MAX), 0);
    f.len = RIPC_HANDSHAKE_MAX + 1;
    assert_int_equal(decode_frame(&f, RIPC_HANDSHAKE_MAX), -EMSGSIZE);
    f.len = 1;
    assert_int_equal(decode_frame(&f, 0), -EMSGSIZE);
    /* Past 4 GiB: no truncation to 32 bits anywhere. */
    f.len = 4 * GiB + 1;
    assert_int_equal(decode_frame(&f, 4 * GiB), -EMSGSIZE);
    assert_int_equal(decode_frame(&f, 4 * GiB + 1), 0);
    f.len = 4 * GiB;
    assert_int_equal(decode_frame(&f, 4 * GiB), 0);
    f.len = UINT64_MAX;
    assert_int_equal(decode_frame(&f, UINT64_MAX - 1), -EMSGSIZE);
    assert_int_equal(decode_frame(&f, UINT64_MAX), 0);
    /* Handshake frames are capped the same way. */
    f = frame(RIPC_FRAME_HELLO, 0, 0, 0, (uint64_t)1 << 40);
    assert_int_equal(decode_frame(&f, RIPC_HANDSHAKE_MAX), -EMSGSIZE);
}

/* ---- HELLO ---- */

static ripc__hello sample_hello(void)
{
    ripc__hello h;
    memset(&h, 0, sizeof h);
    h.version_min = 1;
    h.version_max = 0xFEDC;
    h.caps = 0x80000E0Eu;
    h.pid = 0xDEADBEEFu;
    h.transport = RIPC_XPORT_SOCKET;
    h.ring_bytes = 6 * GiB;
    h.max_message = UINT64_MAX - 5;
    strcpy(h.name, "worker-7");
    h.token_len = 5;
    memcpy(h.token, "\x00\x01\xFFzz", 5);
    return h;
}

static void assert_hello_equal(const ripc__hello *a, const ripc__hello *b)
{
    assert_int_equal(a->version_min, b->version_min);
    assert_int_equal(a->version_max, b->version_max);
    assert_int_equal(a->caps, b->caps);
    assert_int_equal(a->pid, b->pid);
    assert_int_equal(a->transport, b->transport);
    assert_true(a->ring_bytes == b->ring_bytes);
    assert_true(a->max_message == b->max_message);
    assert_string_equal(a->name, b->name);
    assert_int_equal(a->token_len, b->token_len);
    assert_memory_equal(a->token, b->token, a->token_len);
}

static void test_proto_hello_roundtrip(void **state)
{
    uint8_t buf[RIPC_HANDSHAKE_MAX];
    ripc__hello h = sample_hello(), out;
    size_t n = ripc__hello_encode(buf, sizeof buf, &h);
    assert_int_equal(n, RIPC_HELLO_FIXED + 8 + 5);
    assert_int_equal(ripc__hello_decode(buf, n, &out), 0);
    assert_hello_equal(&h, &out);

    /* Largest: 63-byte name, 128-byte token. */
    memset(h.name, 'n', RIPC_NAME_MAX);
    h.name[RIPC_NAME_MAX] = 0;
    h.token_len = RIPC_TOKEN_MAX;
    memset(h.token, 0xEE, RIPC_TOKEN_MAX);
    n = ripc__hello_encode(buf, sizeof buf, &h);
    assert_int_equal(n, RIPC_HELLO_FIXED + RIPC_NAME_MAX + RIPC_TOKEN_MAX);
    assert_true(n <= RIPC_HANDSHAKE_MAX);
    assert_int_equal(ripc__hello_decode(buf, n, &out), 0);
    assert_hello_equal(&h, &out);

    /* Smallest: no name, no token. */
    h.name[0] = 0;
    h.token_len = 0;
    n = ripc__hello_encode(buf, sizeof buf, &h);
    assert_int_equal(n, RIPC_HELLO_FIXED);
    assert_int_equal(ripc__hello_decode(buf, n, &out), 0);
    assert_hello_equal(&h, &out);

    /* The encoder caps what it is given: an unterminated name at 63 bytes,
     * an oversized token_len at RIPC_TOKEN_MAX. */
    memset(h.name, 'x', sizeof h.name);
    h.token_len = 255;
    n = ripc__hello_encode(buf, sizeof buf, &h);
    assert_int_equal(n, RIPC_HELLO_FIXED + RIPC_NAME_MAX + RIPC_TOKEN_MAX);
    assert_int_equal(ripc__hello_decode(buf, n, &out), 0);
    assert_int_equal(strlen(out.name), RIPC_NAME_MAX);
    assert_int_equal(out.token_len, RIPC_TOKEN_MAX);

    /* Too little room: 0, nothing claimed. */
    h = sample_hello();
    size_t need = RIPC_HELLO_FIXED + 8 + 5;
    assert_int_equal(ripc__hello_encode(buf, opaque(need - 1), &h), 0);
    assert_int_equal(ripc__hello_encode(buf, need, &h), need);
    assert_int_equal(ripc__hello_encode(buf, opaque(0), &h), 0);
}

static void test_proto_hello_malformed(void **state)
{
    uint8_t buf[RIPC_HANDSHAKE_MAX + 8];
    ripc__hello h = sample_hello(), out;
    size_t n = ripc__hello_encode(buf, sizeof buf, &h);

    /* Short: every length below the fixed part. */
    for (size_t len = 0; len < RIPC_HELLO_FIXED; len++)
        assert_int_equal(ripc__hello_decode(buf, len, &out), -EPROTO);
    /* Lengths that do not add up, either way. */
    assert_int_equal(ripc__hello_decode(buf, n - 1, &out), -EPROTO);
    assert_int_equal(ripc__hello_decode(buf, n + 1, &out), -EPROTO);
    assert_int_equal(ripc__hello_decode(buf, RIPC_HELLO_FIXED, &out), -EPROTO);

    /* name_len over the maximum, even when the total matches. */
    uint8_t big[RIPC_HANDSHAKE_MAX];
    memset(big, 'a', sizeof big);
    memcpy(big, buf, RIPC_HELLO_FIXED);
    big[32] = RIPC_NAME_MAX + 1;
    big[33] = 0;
    assert_int_equal(ripc__hello_decode(big, RIPC_HELLO_FIXED + RIPC_NAME_MAX + 1, &out), -EPROTO);
    big[32] = 0xFF;
    assert_int_equal(ripc__hello_decode(big, RIPC_HELLO_FIXED + 0xFF, &out), -EPROTO);
    /* token_len over the maximum, even when the total matches. */
    big[32] = 0;
    big[33] = RIPC_TOKEN_MAX + 1;
    assert_int_equal(ripc__hello_decode(big, RIPC_HELLO_FIXED + RIPC_TOKEN_MAX + 1, &out), -EPROTO);
    big[33] = 0xFF;
    assert_int_equal(ripc__hello_decode(big, RIPC_HELLO_FIXED + 0xFF, &out), -EPROTO);
    /* At the maxima it is fine. */
    big[32] = RIPC_NAME_MAX;
    big[33] = RIPC_TOKEN_MAX;
    assert_int_equal(
        ripc__hello_decode(big, RIPC_HELLO_FIXED + RIPC_NAME_MAX + RIPC_TOKEN_MAX, &out), 0);

    /* A NUL inside the name (anywhere) is refused; in the token it is data. */
    for (size_t i = 0; i < 8; i++) {
        n = ripc__hello_encode(buf, sizeof buf, &h);
        buf[RIPC_HELLO_FIXED + i] = 0;
        assert_int_equal(ripc__hello_decode(buf, n, &out), -EPROTO);
    }
    n = ripc__hello_encode(buf, sizeof buf, &h);
    buf[n - 1] = 0;
    assert_int_equal(ripc__hello_decode(buf, n, &out), 0);
}

/* ---- WELCOME ---- */

static ripc__welcome sample_welcome(void)
{
    ripc__welcome w;
    memset(&w, 0, sizeof w);
    w.version = 1;
    w.transport = RIPC_XPORT_SHM;
    w.nfds = 3;
    w.peer_id = 0x10203040u;
    w.caps = 0x0Eu;
    w.worker_db = 1;
    w.master_db = 3;
    w.ring_bytes = 1 << 20;
    w.seg_bytes = 8 * GiB + 1024;
    w.max_message = UINT64_MAX;
    w.max_inline = 65536;
    strcpy(w.reason, "memfd + eventfd");
    w.reason_len = (uint16_t)strlen(w.reason);
    return w;
}

static void assert_welcome_equal(const ripc__welcome *a, const ripc__welcome *b)
{
    assert_int_equal(a->version, b->version);
    assert_int_equal(a->transport, b->transport);
    assert_int_equal(a->nfds, b->nfds);
    assert_int_equal(a->peer_id, b->peer_id);
    assert_int_equal(a->caps, b->caps);
    assert_int_equal(a->worker_db, b->worker_db);
    assert_int_equal(a->master_db, b->master_db);
    assert_true(a->ring_bytes == b->ring_bytes);
    assert_true(a->seg_bytes == b->seg_bytes);
    assert_true(a->max_message == b->max_message);
    assert_true(a->max_inline == b->max_inline);
    assert_string_equal(a->reason, b->reason);
}

static void test_proto_welcome_roundtrip(void **state)
{
    uint8_t buf[RIPC_HANDSHAKE_MAX];
    ripc__welcome w = sample_welcome(), out;
    size_t n = ripc__welcome_encode(buf, sizeof buf, &w);
    assert_int_equal(n, RIPC_WELCOME_FIXED + strlen(w.reason));
    assert_int_equal(ripc__welcome_decode(buf, n, &out), 0);
    assert_welcome_equal(&w, &out);
    assert_int_equal(out.reason_len, strlen(w.reason));

    /* Every transport, fd count, and the longest reason. */
    w.transport = RIPC_XPORT_SOCKET;
    w.nfds = 0;
    memset(w.reason, 'r', RIPC_REASON_MAX);
    w.reason[RIPC_REASON_MAX] = 0;
    n = ripc__welcome_encode(buf, sizeof buf, &w);
    assert_int_equal(n, RIPC_WELCOME_FIXED + RIPC_REASON_MAX);
    assert_int_equal(ripc__welcome_decode(buf, n, &out), 0);
    assert_welcome_equal(&w, &out);

    /* Empty reason. */
    w.reason[0] = 0;
    n = ripc__welcome_encode(buf, sizeof buf, &w);
    assert_int_equal(n, RIPC_WELCOME_FIXED);
    assert_int_equal(ripc__welcome_decode(buf, n, &out), 0);
    assert_welcome_equal(&w, &out);

    /* Too little room. */
    w = sample_welcome();
    size_t need = RIPC_WELCOME_FIXED + strlen(w.reason);
    assert_int_equal(ripc__welcome_encode(buf, opaque(need - 1), &w), 0);
    assert_int_equal(ripc__welcome_encode(buf, need, &w), need);
}

static void test_proto_welcome_malformed(void **state)
{
    uint8_t buf[RIPC_HANDSHAKE_MAX];
    ripc__welcome w = sample_welcome(), out;
    size_t n = ripc__welcome_encode(buf, sizeof buf, &w);

    for (size_t len = 0; len < RIPC_WELCOME_FIXED; len++)
        assert_int_equal(ripc__welcome_decode(buf, len, &out), -EPROTO);
    assert_int_equal(ripc__welcome_decode(buf, n - 1, &out), -EPROTO);
    assert_int_equal(ripc__welcome_decode(buf, n + 1, &out), -EPROTO);
    assert_int_equal(ripc__welcome_decode(buf, RIPC_WELCOME_FIXED, &out), -EPROTO);

    /* reason_len over the maximum, even when the total matches. */
    uint8_t big[RIPC_WELCOME_FIXED + 0x10000];
    memset(big, 'a', sizeof big);
    memcpy(big, buf, RIPC_WELCOME_FIXED);
    ripc__put16(big + 14, RIPC_REASON_MAX + 1);
    assert_int_equal(ripc__welcome_decode(big, RIPC_WELCOME_FIXED + RIPC_REASON_MAX + 1, &out),
                     -EPROTO);
    ripc__put16(big + 14, 0xFFFF);
    assert_int_equal(ripc__welcome_decode(big, RIPC_WELCOME_FIXED + 0xFFFF, &out), -EPROTO);
    ripc__put16(big + 14, RIPC_REASON_MAX);
    assert_int_equal(ripc__welcome_decode(big, RIPC_WELCOME_FIXED + RIPC_REASON_MAX, &out), 0);
    assert_int_equal(strlen(out.reason), RIPC_REASON_MAX);

    /* transport other than SHM / SOCKET, more than three fds */
    static const uint8_t bad_xport[] = {0, 3, 0xFF};
    for (size_t i = 0; i < sizeof bad_xport; i++) {
        n = ripc__welcome_encode(buf, sizeof buf, &w);
        buf[2] = bad_xport[i];
        assert_int_equal(ripc__welcome_decode(buf, n, &out), -EPROTO);
    }
    for (unsigned fds = 0; fds < 256; fds++) {
        n = ripc__welcome_encode(buf, sizeof buf, &w);
        buf[3] = (uint8_t)fds;
        assert_int_equal(ripc__welcome_decode(buf, n, &out), fds <= 3 ? 0 : -EPROTO);
    }
}

/* Windows' form (platform/pass.h): nfds handle values after the reason. */
static void test_proto_welcome_inband(void **state)
{
    uint8_t buf[RIPC_HANDSHAKE_MAX];
    ripc__welcome w = sample_welcome(), out;
    w.inband = 1;
    w.handles[0] = 0x104;
    w.handles[1] = 0x7FFFFFFCu;
    w.handles[2] = UINT64_MAX;
    size_t n = ripc__welcome_encode(buf, sizeof buf, &w);
    size_t plain = RIPC_WELCOME_FIXED + strlen(w.reason);
    assert_int_equal(n, plain + 3 * RIPC_WELCOME_HANDLE);
    assert_int_equal(ripc__welcome_decode_as(buf, n, &out, 1), 0);
    assert_welcome_equal(&w, &out);
    for (int i = 0; i < 3; i++)
        assert_true(out.handles[i] == w.handles[i]);
    /* The trailer is counted: one byte more or less, or none, is malformed,
     * and the POSIX decoder takes no trailer at all. */
    assert_int_equal(ripc__welcome_decode_as(buf, n - 1, &out, 1), -EPROTO);
    assert_int_equal(ripc__welcome_decode_as(buf, n + 1, &out, 1), -EPROTO);
    assert_int_equal(ripc__welcome_decode_as(buf, plain, &out, 1), -EPROTO);
    assert_int_equal(ripc__welcome_decode(buf, n, &out), -EPROTO);
    /* Not in band: the Linux bytes, unchanged. */
    w.inband = 0;
    assert_int_equal(ripc__welcome_encode(buf, sizeof buf, &w), plain);
    assert_int_equal(ripc__welcome_decode_as(buf, plain, &out, 1), -EPROTO);
    /* Socket mode: no handles, no trailer, either way. */
    w = sample_welcome();
    w.inband = 1;
    w.transport = RIPC_XPORT_SOCKET;
    w.nfds = 0;
    n = ripc__welcome_encode(buf, sizeof buf, &w);
    assert_int_equal(n, plain);
    assert_int_equal(ripc__welcome_decode_as(buf, n, &out, 1), 0);
    assert_int_equal(ripc__welcome_decode(buf, n, &out), 0);
    /* Room for the trailer too, and no more than three handles. */
    w = sample_welcome();
    w.inband = 1;
    size_t need = plain + 3 * RIPC_WELCOME_HANDLE;
    assert_int_equal(ripc__welcome_encode(buf, opaque(need - 1), &w), 0);
    assert_int_equal(ripc__welcome_encode(buf, need, &w), need);
    w.nfds = 4;
    assert_int_equal(ripc__welcome_encode(buf, sizeof buf, &w), 0);
    for (unsigned fds = 4; fds < 256; fds++) {
        w.nfds = 3;
        n = ripc__welcome_encode(buf, sizeof buf, &w);
        buf[3] = (uint8_t)fds;
        assert_int_equal(ripc__welcome_decode_as(buf, n, &out, 1), -EPROTO);
    }
}

/* ---- ring message header ---- */

static void test_proto_msg_roundtrip(void **state)
{
    static const uint16_t types[] = {0, 1, 0x7FFF, 0xF000, 0xFFFF};
    static const uint64_t ids[] = {0, 1, 0xFFFFFFFFu, (uint64_t)1 << 32, UINT64_MAX};
    static const uint8_t flags[] = {0, RIPC_MSGF_LARGE};
    uint8_t b[RIPC_MSG_HDR];
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
        for (uint8_t k = RIPC_KIND_ONEWAY; k <= RIPC_KIND_REPLY; k++)
            for (size_t f = 0; f < sizeof flags; f++)
                for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
                    uint16_t type;
                    uint8_t kind, fl;
                    uint64_t id;
                    ripc__msg_encode(b, types[t], k, flags[f], ids[i]);
                    assert_int_equal(ripc__msg_decode(b, &type, &kind, &fl, &id), 0);
                    assert_int_equal(type, types[t]);
                    assert_int_equal(kind, k);
                    assert_int_equal(fl, flags[f]);
                    assert_true(id == ids[i]);
                }
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* Host order, which is little-endian here. */
    static const uint8_t want[RIPC_MSG_HDR] = {0x34, 0x12, 0x02, 0x01, 0,    0,    0,    0,
                                               0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01};
    ripc__msg_encode(b, 0x1234, RIPC_KIND_REPLY, RIPC_MSGF_LARGE, 0x0102030405060708ull);
    assert_memory_equal(b, want, sizeof want);
#endif
}

static void test_proto_msg_malformed(void **state)
{
    uint8_t b[RIPC_MSG_HDR];
    uint16_t type;
    uint8_t kind, fl;
    uint64_t id;
    /* kind > REPLY */
    for (unsigned k = RIPC_KIND_REPLY + 1; k < 256; k++) {
        ripc__msg_encode(b, 1, (uint8_t)k, 0, 1);
        assert_int_equal(ripc__msg_decode(b, &type, &kind, &fl, &id), -EPROTO);
    }
    /* unknown flags */
    for (unsigned f = 0; f < 256; f++) {
        ripc__msg_encode(b, 1, 0, (uint8_t)f, 1);
        int want = (f & ~RIPC_MSGF_KNOWN) ? -EPROTO : 0;
        assert_int_equal(ripc__msg_decode(b, &type, &kind, &fl, &id), want);
    }
    /* reserved bytes 4..7: any bit */
    for (int i = 4; i < 8; i++) {
        for (int bit = 0; bit < 8; bit++) {
            ripc__msg_encode(b, 1, 0, 0, 1);
            b[i] |= (uint8_t)(1u << bit);
            assert_int_equal(ripc__msg_decode(b, &type, &kind, &fl, &id), -EPROTO);
        }
    }
}

/* ---- error replies ---- */

static void test_proto_err_roundtrip(void **state)
{
    (void)state;
    uint8_t b[RIPC_ERR_FIXED + RIPC_ERR_TEXT_MAX];
    char text[RIPC_ERR_TEXT_MAX + 1];
    uint32_t code = 0;
    size_t n = ripc__err_encode(b, ENOENT, "no handler for type 7", 1 << 20);
    assert_int_equal(n, RIPC_ERR_FIXED + 21);
    static const uint8_t le[4] = {ENOENT, 0, 0, 0}; /* little-endian code */
    assert_memory_equal(b, le, 4);
    assert_int_equal(ripc__err_decode(b, n, &code, text), 0);
    assert_int_equal(code, ENOENT);
    assert_string_equal(text, "no handler for type 7");
    /* No text; the largest code. */
    n = ripc__err_encode(b, RIPC_ERR_CODE_MAX, NULL, 1 << 20);
    assert_int_equal(n, RIPC_ERR_FIXED);
    assert_int_equal(ripc__err_decode(b, n, &code, text), 0);
    assert_int_equal(code, RIPC_ERR_CODE_MAX);
    assert_string_equal(text, "");
    /* Text cut to RIPC_ERR_TEXT_MAX, and to the peer's max_message. */
    char longer[RIPC_ERR_TEXT_MAX + 50];
    memset(longer, 't', sizeof longer - 1);
    longer[sizeof longer - 1] = 0;
    n = ripc__err_encode(b, EPERM, longer, 1 << 20);
    assert_int_equal(n, RIPC_ERR_FIXED + RIPC_ERR_TEXT_MAX);
    assert_int_equal(ripc__err_decode(b, n, &code, text), 0);
    assert_int_equal(strlen(text), RIPC_ERR_TEXT_MAX);
    n = ripc__err_encode(b, EPERM, longer, 10);
    assert_int_equal(n, 10);
    assert_int_equal(ripc__err_decode(b, n, &code, text), 0);
    assert_string_equal(text, "tttttt");
    assert_int_equal(ripc__err_encode(b, EPERM, "x", 3), 0); /* not even the code */
}

static void test_proto_err_malformed(void **state)
{
    (void)state;
    uint8_t b[RIPC_ERR_FIXED + RIPC_ERR_TEXT_MAX + 1];
    char text[RIPC_ERR_TEXT_MAX + 1];
    uint32_t code;
    memset(b, 'x', sizeof b);
    for (uint64_t len = 0; len < RIPC_ERR_FIXED; len++) {
        ripc__put32(b, EPERM);
        assert_int_equal(ripc__err_decode(b, len, &code, text), -EPROTO);
    }
    ripc__put32(b, EPERM);
    assert_int_equal(ripc__err_decode(b, sizeof b - 1, &code, text), 0);
    assert_int_equal(ripc__err_decode(b, sizeof b, &code, text), -EPROTO); /* text too long */
    assert_int_equal(ripc__err_decode(b, UINT64_MAX, &code, text), -EPROTO);
    static const uint32_t bad[] = {0, RIPC_ERR_CODE_MAX + 1, 0x80000000u, UINT32_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ripc__put32(b, bad[i]);
        assert_int_equal(ripc__err_decode(b, 8, &code, text), -EPROTO);
    }
    ripc__put32(b, EPERM);
    b[RIPC_ERR_FIXED + 2] = 0; /* a NUL in the text */
    assert_int_equal(ripc__err_decode(b, 8, &code, text), -EPROTO);
    assert_int_equal(ripc__err_decode(b, RIPC_ERR_FIXED + 2, &code, text), 0);
}

/* ---- the monitor's SNAPSHOT ---- */

static size_t snap_build(uint8_t *b, unsigned count)
{
    ripc__snap_head h = {.count = (uint16_t)count, .pid = 42, .peers_now = count, .next_id = 0};
    ripc__snap_head_encode(b, &h);
    size_t off = RIPC_SNAP_HDR;
    for (unsigned i = 0; i < count; i++) {
        ripc__snap_peer p = {.id = i + 1,
                             .pid = -1,
                             .transport = RIPC_XPORT_SHM,
                             .msgs_in = 1000 + i,
                             .large_out = 7};
        snprintf(p.name, sizeof p.name, "w%u", i);
        off += ripc__snap_peer_encode(b + off, &p);
    }
    return off;
}

static void test_proto_snapshot_roundtrip(void **state)
{
    (void)state;
    uint8_t b[RIPC_SNAP_HDR + 3 * (RIPC_SNAP_REC + RIPC_NAME_MAX)];
    size_t len = snap_build(b, 3);
    ripc__snap_head h;
    assert_int_equal(ripc__snap_head_decode(b, len, &h), 0);
    assert_int_equal(h.format, RIPC_SNAP_FORMAT);
    assert_int_equal(h.count, 3);
    assert_int_equal(h.pid, 42);
    size_t off = h.hdr_len;
    for (unsigned i = 0; i < 3; i++) {
        ripc__snap_peer p;
        assert_int_equal(ripc__snap_peer_decode(b, len, h.rec_len, &off, &p), 0);
        assert_int_equal(p.id, i + 1);
        assert_int_equal(p.pid, -1);
        assert_int_equal(p.msgs_in, 1000 + i);
        assert_int_equal(p.large_out, 7);
        char want[8];
        snprintf(want, sizeof want, "w%u", i);
        assert_string_equal(p.name, want);
    }
    assert_int_equal(off, len);
}

static void test_proto_snapshot_malformed(void **state)
{
    (void)state;
    uint8_t b[RIPC_SNAP_HDR + 2 * (RIPC_SNAP_REC + RIPC_NAME_MAX)];
    size_t len = snap_build(b, 1);
    ripc__snap_head h;
    ripc__snap_peer p;
    size_t off;
    assert_int_equal(ripc__snap_head_decode(b, RIPC_SNAP_HDR - 1, &h), -EPROTO);
    uint8_t c[sizeof b];
    /* Format 0, a header or record shorter than format 1's, a header
     * longer than the payload. */
    const struct {
        size_t at;
        uint16_t v;
    } bad_head[] = {{0, 0}, {2, RIPC_SNAP_HDR - 1}, {4, RIPC_SNAP_REC - 1}, {2, 0xFFFF}};
    for (size_t i = 0; i < sizeof bad_head / sizeof bad_head[0]; i++) {
        memcpy(c, b, len);
        ripc__put16(c + bad_head[i].at, bad_head[i].v);
        assert_int_equal(ripc__snap_head_decode(c, len, &h), -EPROTO);
    }
    /* A record: cut short, a name too long or past the end, a NUL in the
     * name, a reserved byte, an unknown transport. */
    assert_int_equal(ripc__snap_head_decode(b, len, &h), 0);
    off = RIPC_SNAP_HDR;
    assert_int_equal(ripc__snap_peer_decode(b, len - 1, h.rec_len, &off, &p), -EPROTO);
    const struct {
        size_t at;
        uint8_t v;
    } bad_rec[] = {{9, RIPC_NAME_MAX + 1}, {9, 40}, {RIPC_SNAP_REC, 0}, {12, 1}, {8, 0}, {8, 3}};
    for (size_t i = 0; i < sizeof bad_rec / sizeof bad_rec[0]; i++) {
        memcpy(c, b, len);
        c[RIPC_SNAP_HDR + bad_rec[i].at] = bad_rec[i].v;
        off = RIPC_SNAP_HDR;
        assert_int_equal(ripc__snap_peer_decode(c, len, h.rec_len, &off, &p), -EPROTO);
    }
    /* A later format's longer header and records are skipped. */
    uint8_t d[sizeof b + 16];
    memcpy(d, b, RIPC_SNAP_HDR);
    memset(d + RIPC_SNAP_HDR, 0xAB, 8);
    ripc__put16(d + 2, RIPC_SNAP_HDR + 8);
    ripc__put16(d + 4, RIPC_SNAP_REC + 8);
    size_t rl = len - RIPC_SNAP_HDR; /* the record with its name */
    memcpy(d + RIPC_SNAP_HDR + 8, b + RIPC_SNAP_HDR, RIPC_SNAP_REC);
    memset(d + RIPC_SNAP_HDR + 8 + RIPC_SNAP_REC, 0xCD, 8);
    memcpy(d + RIPC_SNAP_HDR + 16 + RIPC_SNAP_REC, b + RIPC_SNAP_HDR + RIPC_SNAP_REC,
           rl - RIPC_SNAP_REC);
    size_t dl = len + 16;
    assert_int_equal(ripc__snap_head_decode(d, dl, &h), 0);
    off = h.hdr_len;
    assert_int_equal(ripc__snap_peer_decode(d, dl, h.rec_len, &off, &p), 0);
    assert_int_equal(off, dl);
    assert_string_equal(p.name, "w0");
    assert_int_equal(p.msgs_in, 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proto_frame_roundtrip),
        cmocka_unit_test(test_proto_frame_bytes),
        cmocka_unit_test(test_proto_frame_bad_magic),
        cmocka_unit_test(test_proto_frame_bad_type),
        cmocka_unit_test(test_proto_frame_bad_kind),
        cmocka_unit_test(test_proto_frame_reserved_and_flags),
        cmocka_unit_test(test_proto_frame_large_handle_inband),
        cmocka_unit_test(test_proto_frame_bye_with_payload),
        cmocka_unit_test(test_proto_frame_len_limit),
        cmocka_unit_test(test_proto_hello_roundtrip),
        cmocka_unit_test(test_proto_hello_malformed),
        cmocka_unit_test(test_proto_welcome_roundtrip),
        cmocka_unit_test(test_proto_welcome_malformed),
        cmocka_unit_test(test_proto_welcome_inband),
        cmocka_unit_test(test_proto_msg_roundtrip),
        cmocka_unit_test(test_proto_msg_malformed),
        cmocka_unit_test(test_proto_err_roundtrip),
        cmocka_unit_test(test_proto_err_malformed),
        cmocka_unit_test(test_proto_snapshot_roundtrip),
        cmocka_unit_test(test_proto_snapshot_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
