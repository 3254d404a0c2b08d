/* SPDX-License-Identifier: MIT */
/*
 * The numbers of docs/protocol.md, checked against the code: every offset
 * and size its tables give for frames, the HELLO and WELCOME payloads, the
 * message header, the error payload and the ring layout. A change to
 * src/proto.h or shm/ring_layout.h that moves a field fails here until the
 * document says the same. (test_proto checks the codecs' behaviour; this
 * checks where the bytes go.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "ringipc/ring.h"
#include "shm/doorbell.h"
#include "shm/ring_layout.h"
#include "src/proto.h"

/* Little-endian value of `size` bytes at off. */
static uint64_t le(const uint8_t *p, size_t off, size_t size)
{
    uint64_t v = 0;
    for (size_t i = size; i-- > 0;)
        v = (v << 8) | p[off + i];
    return v;
}

static void test_layout_frame(void **state)
{
    (void)state;
    assert_int_equal(RIPC_FRAME_HDR, 32);
    ripc__frame f = {.ftype = RIPC_FRAME_LARGE,
                     .kind = 2,
                     .type = 0xBEEF,
                     .id = 0x1122334455667788ull,
                     .len = 0x0102030405060708ull};
    uint8_t b[RIPC_FRAME_HDR];
    ripc__frame_encode(b, &f);
    assert_memory_equal(b, "RIPC", 4);
    assert_int_equal(le(b, 0, 4), 0x43504952u);
    assert_int_equal(b[4], 6);
    assert_int_equal(b[5], 2);
    assert_int_equal(le(b, 6, 2), 0xBEEF);
    assert_int_equal(le(b, 8, 4), 0);
    assert_int_equal(le(b, 12, 4), 0);
    assert_int_equal(le(b, 16, 8), 0x1122334455667788ull);
    assert_int_equal(le(b, 24, 8), 0x0102030405060708ull);
    assert_int_equal(RIPC_FRAME_HELLO, 1);
    assert_int_equal(RIPC_FRAME_WELCOME, 2);
    assert_int_equal(RIPC_FRAME_REJECT, 3);
    assert_int_equal(RIPC_FRAME_MSG, 4);
    assert_int_equal(RIPC_FRAME_BYE, 5);
    assert_int_equal(RIPC_FRAME_LARGE, 6);
    assert_int_equal(RIPC_FRAME_SNAPSHOT, 7);
    assert_int_equal(RIPC_HANDSHAKE_MAX, 1024);
    assert_int_equal(RIPC_PROTO_VERSION, 1);
    assert_int_equal(RIPC_PROTO_MONITOR, 2);
    assert_int_equal(RIPC_PROTO_VERSION_MAX, 2);
    assert_int_equal(RIPC_CAP_MONITOR, 1u << 25);
}

static void test_layout_hello(void **state)
{
    (void)state;
    ripc__hello h = {.version_min = 0x0102,
                     .version_max = 0x0304,
                     .caps = 0x05060708,
                     .pid = 0x090A0B0C,
                     .transport = 2,
                     .ring_bytes = 0x1112131415161718ull,
                     .max_message = 0x2122232425262728ull,
                     .name = "nm",
                     .token_len = 3,
                     .token = {'t', 'o', 'k'}};
    uint8_t b[RIPC_HANDSHAKE_MAX];
    assert_int_equal(RIPC_HELLO_FIXED, 40);
    assert_int_equal(ripc__hello_encode(b, sizeof b, &h), 40 + 2 + 3);
    assert_int_equal(le(b, 0, 2), 0x0102);
    assert_int_equal(le(b, 2, 2), 0x0304);
    assert_int_equal(le(b, 4, 4), 0x05060708);
    assert_int_equal(le(b, 8, 4), 0x090A0B0C);
    assert_int_equal(le(b, 12, 4), 2);
    assert_int_equal(le(b, 16, 8), 0x1112131415161718ull);
    assert_int_equal(le(b, 24, 8), 0x2122232425262728ull);
    assert_int_equal(b[32], 2);
    assert_int_equal(b[33], 3);
    for (int i = 34; i < 40; i++)
        assert_int_equal(b[i], 0);
    assert_memory_equal(b + 40, "nmtok", 5);
    assert_int_equal(RIPC_NAME_MAX, 63);
    assert_int_equal(RIPC_TOKEN_MAX, 128);
    /* capability bits */
    assert_int_equal(RIPC_DB_CAP(RIPC_DB_EVENTFD), 1u << 1);
    assert_int_equal(RIPC_DB_CAP(RIPC_DB_FUTEX), 1u << 2);
    assert_int_equal(RIPC_DB_CAP(RIPC_DB_SOCKET), 1u << 3);
    assert_int_equal(RIPC_CAP_MEMFD, 1u << 8);
    assert_int_equal(RIPC_CAP_SHM_OPEN, 1u << 9);
    assert_int_equal(RIPC_CAP_SHM, 1u << 10);
    assert_int_equal(RIPC_CAP_SOCKET, 1u << 11);
    assert_int_equal(RIPC_CAP_MEMBARRIER, 1u << 12);
    assert_int_equal(RIPC_CAP_FAST_W2M, 1u << 13);
    assert_int_equal(RIPC_CAP_FAST_M2W, 1u << 14);
    assert_int_equal(RIPC_CAP_SLEEP_WORD, 1u << 15);
    assert_int_equal(RIPC_CAP_WAIT_SHIFT, 20);
}

static void test_layout_welcome(void **state)
{
    (void)state;
    ripc__welcome w = {.version = 0x0102,
                       .transport = RIPC_XPORT_SHM,
                       .nfds = 3,
                       .peer_id = 0x03040506,
                       .caps = 0x0708090A,
                       .worker_db = RIPC_DB_FUTEX,
                       .master_db = RIPC_DB_SOCKET,
                       .ring_bytes = 0x1112131415161718ull,
                       .seg_bytes = 0x2122232425262728ull,
                       .max_message = 0x3132333435363738ull,
                       .max_inline = 0x4142434445464748ull,
                       .reason = "why"};
    uint8_t b[RIPC_HANDSHAKE_MAX];
    assert_int_equal(RIPC_WELCOME_FIXED, 48);
    assert_int_equal(ripc__welcome_encode(b, sizeof b, &w), 48 + 3);
    assert_int_equal(le(b, 0, 2), 0x0102);
    assert_int_equal(b[2], 1);
    assert_int_equal(b[3], 3);
    assert_int_equal(le(b, 4, 4), 0x03040506);
    assert_int_equal(le(b, 8, 4), 0x0708090A);
    assert_int_equal(b[12], 2);
    assert_int_equal(b[13], 3);
    assert_int_equal(le(b, 14, 2), 3);
    assert_int_equal(le(b, 16, 8), 0x1112131415161718ull);
    assert_int_equal(le(b, 24, 8), 0x2122232425262728ull);
    assert_int_equal(le(b, 32, 8), 0x3132333435363738ull);
    assert_int_equal(le(b, 40, 8), 0x4142434445464748ull);
    assert_memory_equal(b + 48, "why", 3);
    assert_int_equal(RIPC_REASON_MAX, 200);
    assert_int_equal(RIPC_XPORT_SOCKET, 2);
}

/* The ring-record message header is host order; the document's offsets are
 * those of a little-endian host, the only kind built for. */
static void test_layout_message(void **state)
{
    (void)state;
    uint8_t b[RIPC_MSG_HDR];
    assert_int_equal(RIPC_MSG_HDR, 16);
    ripc__msg_encode(b, 0xA1A2, 2, RIPC_MSGF_LARGE, 0x1122334455667788ull);
    assert_int_equal(le(b, 0, 2), 0xA1A2);
    assert_int_equal(b[2], 2);
    assert_int_equal(b[3], 1);
    assert_int_equal(le(b, 4, 4), 0);
    assert_int_equal(le(b, 8, 8), 0x1122334455667788ull);
    assert_int_equal(RIPC_MARKER_BYTES, 8);
    /* 64 payload bytes make an 88-byte record */
    assert_int_equal(ripc__rec_size(RIPC_MSG_HDR + 64), 88);
    /* error payload */
    uint8_t e[RIPC_ERR_FIXED + RIPC_ERR_TEXT_MAX];
    assert_int_equal(RIPC_MSG_ERROR, 0xF000);
    assert_int_equal(ripc__err_encode(e, 0x0102, "no", 1000), 4 + 2);
    assert_int_equal(le(e, 0, 4), 0x0102);
    assert_memory_equal(e + 4, "no", 2);
    assert_int_equal(RIPC_ERR_TEXT_MAX, 200);
    assert_int_equal(RIPC_ERR_CODE_MAX, 4095);
}

static void test_layout_ring(void **state)
{
    (void)state;
    assert_int_equal(sizeof(struct ripc_ring_hdr), 512);
    assert_int_equal(RIPC_RING_HDR_BYTES, 512);
    assert_int_equal(offsetof(struct ripc_ring_hdr, consts), 0);
    assert_int_equal(offsetof(struct ripc_ring_hdr, prod.head), 128);
    assert_int_equal(offsetof(struct ripc_ring_hdr, cons.tail), 256);
    assert_int_equal(offsetof(struct ripc_ring_hdr, wait), 384);
    assert_int_equal(sizeof(uint64_t), sizeof(((struct ripc_ring_hdr *)0)->prod.head));
    assert_int_equal(offsetof(struct ripc_ring_consts, magic), 0);
    assert_int_equal(offsetof(struct ripc_ring_consts, version), 8);
    assert_int_equal(offsetof(struct ripc_ring_consts, hdr_bytes), 12);
    assert_int_equal(offsetof(struct ripc_ring_consts, capacity), 16);
    assert_int_equal(offsetof(struct ripc_ring_consts, max_payload), 24);
    assert_memory_equal(&(uint64_t){RIPC_RING_MAGIC}, "RIPCRNG1", 8);
    assert_int_equal(RIPC_RING_LAYOUT_VERSION, 2);
    size_t w = offsetof(struct ripc_ring_hdr, wait.w);
    assert_int_equal(w + offsetof(struct ripc_ring_wait, consumer_sleeping), 384);
    assert_int_equal(w + offsetof(struct ripc_ring_wait, producer_sleeping), 388);
    assert_int_equal(w + offsetof(struct ripc_ring_wait, data_seq), 392);
    assert_int_equal(w + offsetof(struct ripc_ring_wait, space_seq), 396);
    assert_int_equal(RIPC_SLEEP_BELL, 1);
    assert_int_equal(RIPC_SLEEP_WORD, 2);
    assert_int_equal(RIPC_REC_HDR, 8);
    assert_int_equal(RIPC_REC_PAD, 1u << 0);
    assert_int_equal(RIPC_REC_VALID, 1u << 1);
    uint64_t h = ripc__rec_pack(0x01020304, RIPC_REC_VALID);
    assert_int_equal(h & 0xFFFFFFFFu, 0x01020304);
    assert_int_equal(h >> 32, RIPC_REC_VALID);
    /* ring size = header + capacity; two rings per segment */
    assert_int_equal(ripc_ring_size(4096), 512 + 4096);
    assert_int_equal(ripc_ring_max_payload(4096), 4096 / 2 - 8);
    assert_int_equal(RIPC_RING_MIN_CAPACITY, 64);
    assert_int_equal(RIPC_RING_MAX_CAPACITY, (size_t)1 << 32);
}

/* docs/protocol.md, Monitors: the SNAPSHOT header and a peer record. */
static void test_layout_snapshot(void **state)
{
    (void)state;
    ripc__snap_head h = {.count = 0x0102,
                         .pid = 0x03040506,
                         .peers_now = 0x0708090A,
                         .next_id = 0x10,
                         .now_ns = 0x11,
                         .mono_ns = 0x12,
                         .opened_ns = 0x13,
                         .peers_total = 0x14,
                         .parked_now = 0x15,
                         .unhandled = 0x16,
                         .left = {0x17, 0x18, 0x19, 0x1A, 0x1B, 0x1C},
                         .refused = 0x1D,
                         .hs_failed = 0x1E,
                         .large_pool_bytes = 0x1F};
    uint8_t b[RIPC_SNAP_HDR + RIPC_SNAP_REC + RIPC_NAME_MAX];
    assert_int_equal(RIPC_SNAP_HDR, 144);
    assert_int_equal(RIPC_SNAP_REC, 168);
    assert_int_equal(RIPC_SNAP_PEERS_MAX, 256);
    assert_int_equal(RIPC_SNAP_LEN_MAX, 1u << 20);
    ripc__snap_head_encode(b, &h);
    assert_int_equal(le(b, 0, 2), 1);
    assert_int_equal(le(b, 2, 2), 144);
    assert_int_equal(le(b, 4, 2), 168);
    assert_int_equal(le(b, 6, 2), 0x0102);
    assert_int_equal(le(b, 8, 4), 0x03040506);
    assert_int_equal(le(b, 12, 4), 0x0708090A);
    for (unsigned i = 0; i < 16; i++) /* next_id at 16 .. large_pool_bytes at 136 */
        assert_int_equal(le(b, 16 + 8 * i, 8), 0x10 + i);
    ripc__snap_peer p = {.id = 0x01020304, .pid = 0x05060708, .transport = 2, .name = "abc"};
    uint64_t *w[] = {&p.connected_ns,  &p.msgs_in,      &p.bytes_in,      &p.msgs_out,
                     &p.bytes_out,     &p.requests_in,  &p.ring_bytes,    &p.ring_in_used,
                     &p.ring_out_used, &p.ring_in_high, &p.ring_out_high, &p.send_waits,
                     &p.send_wait_ns,  &p.sleeps,       &p.wakeups,       &p.doorbells,
                     &p.dropped,       &p.large_in,     &p.large_out};
    for (unsigned i = 0; i < 19; i++)
        *w[i] = 0x20 + i;
    assert_int_equal(ripc__snap_peer_encode(b, &p), 168 + 3);
    assert_int_equal(le(b, 0, 4), 0x01020304);
    assert_int_equal(le(b, 4, 4), 0x05060708);
    assert_int_equal(b[8], 2);
    assert_int_equal(b[9], 3);
    assert_int_equal(le(b, 10, 6), 0);
    for (unsigned i = 0; i < 19; i++) /* connected_ns at 16 .. large_out at 160 */
        assert_int_equal(le(b, 16 + 8 * i, 8), 0x20 + i);
    assert_memory_equal(b + 168, "abc", 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_frame),   cmocka_unit_test(test_layout_hello),
        cmocka_unit_test(test_layout_welcome), cmocka_unit_test(test_layout_message),
        cmocka_unit_test(test_layout_ring),    cmocka_unit_test(test_layout_snapshot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
