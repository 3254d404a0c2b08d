/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for src/proto.h: every decoder gets the raw input, and a
 * "repaired" copy (magic set, lengths made to add up) so that random bytes
 * also reach the checks behind the first one. Properties, beyond "no
 * out-of-bounds access" (ASan) and "no UB" (UBSan):
 *   - a decoder returns 0 or one of its documented errors;
 *   - what it accepts obeys the format's rules (lengths, kinds, limits);
 *   - what it accepts re-encodes to the same bytes (frames, message
 *     headers) or to the same values (HELLO / WELCOME; see the notes there).
 * Built as a libFuzzer target (RIPC_FUZZ=ON, clang) and as a replay driver
 * run by ctest (tests/fuzz/replay_main.c).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/proto.h"
#include "tests/fuzz/fuzz_util.h"

static void frame_one(const uint8_t *in)
{
    static const uint64_t limits[] = {0, RIPC_HANDSHAKE_MAX, (uint64_t)1 << 32, UINT64_MAX};
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        ripc__frame f;
        int rc = ripc__frame_decode(in, &f, limits[i]);
        CHECK(rc == 0 || rc == -EPROTO || rc == -EMSGSIZE);
        if (rc == -EMSGSIZE)
            CHECK(f.len > limits[i]);
        if (rc != 0)
            continue;
        CHECK(f.ftype >= RIPC_FRAME_HELLO && f.ftype <= RIPC_FRAME_MAX_);
        CHECK(f.ftype == RIPC_FRAME_MSG || f.ftype == RIPC_FRAME_LARGE ? f.kind <= RIPC_KIND_REPLY
                                                                       : f.kind == 0);
        CHECK(f.flags == 0);
        CHECK(f.len <= limits[i]);
        CHECK(f.ftype != RIPC_FRAME_BYE || f.len == 0);
        /* Nothing in an accepted header is free: it re-encodes exactly. */
        uint8_t out[RIPC_FRAME_HDR];
        ripc__frame_encode(out, &f);
        CHECK(memcmp(out, in, RIPC_FRAME_HDR) == 0);
    }
}

static void hello_one(const uint8_t *in, size_t len)
{
    ripc__hello h;
    int rc = ripc__hello_decode(in, len, &h);
    CHECK(rc == 0 || rc == -EPROTO);
    if (rc != 0)
        return;
    size_t nlen = strnlen(h.name, sizeof h.name);
    CHECK(nlen <= RIPC_NAME_MAX);
    CHECK(h.token_len <= RIPC_TOKEN_MAX);
    CHECK(len == RIPC_HELLO_FIXED + nlen + h.token_len);
    uint8_t out[RIPC_HELLO_FIXED + RIPC_NAME_MAX + RIPC_TOKEN_MAX];
    size_t n = ripc__hello_encode(out, sizeof out, &h);
    CHECK(n == len);
    /* Bytes 34..39 of the fixed part carry nothing and the decoder does not
     * look at them, so only the rest must match. */
    CHECK(memcmp(out, in, 34) == 0);
    CHECK(memcmp(out + RIPC_HELLO_FIXED, in + RIPC_HELLO_FIXED, len - RIPC_HELLO_FIXED) == 0);
}

static void welcome_one(const uint8_t *in, size_t len)
{
    ripc__welcome w, w2;
    int rc = ripc__welcome_decode(in, len, &w);
    CHECK(rc == 0 || rc == -EPROTO);
    if (rc != 0)
        return;
    CHECK(w.reason_len <= RIPC_REASON_MAX);
    CHECK(len == RIPC_WELCOME_FIXED + w.reason_len);
    CHECK(w.transport == RIPC_XPORT_SHM || w.transport == RIPC_XPORT_SOCKET);
    CHECK(w.nfds <= 3);
    CHECK(w.reason[w.reason_len] == 0);
    /* The reason is text: a NUL inside it ends it, so only the values (not
     * the bytes) survive a round trip. */
    uint8_t out[RIPC_WELCOME_FIXED + RIPC_REASON_MAX];
    size_t n = ripc__welcome_encode(out, sizeof out, &w);
    CHECK(n == RIPC_WELCOME_FIXED + strlen(w.reason));
    CHECK(ripc__welcome_decode(out, n, &w2) == 0);
    CHECK(w2.version == w.version && w2.transport == w.transport && w2.nfds == w.nfds);
    CHECK(w2.peer_id == w.peer_id && w2.caps == w.caps);
    CHECK(w2.worker_db == w.worker_db && w2.master_db == w.master_db);
    CHECK(w2.ring_bytes == w.ring_bytes && w2.seg_bytes == w.seg_bytes);
    CHECK(w2.max_message == w.max_message && w2.max_inline == w.max_inline);
    CHECK(strcmp(w2.reason, w.reason) == 0);
}

static void msg_one(const uint8_t *in)
{
    uint16_t type;
    uint8_t kind, flags;
    uint64_t id;
    int rc = ripc__msg_decode(in, &type, &kind, &flags, &id);
    CHECK(rc == 0 || rc == -EPROTO);
    if (rc != 0)
        return;
    CHECK(kind <= RIPC_KIND_REPLY);
    CHECK((flags & ~RIPC_MSGF_KNOWN) == 0);
    uint8_t out[RIPC_MSG_HDR];
    ripc__msg_encode(out, type, kind, flags, id);
    CHECK(memcmp(out, in, RIPC_MSG_HDR) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Raw: each decoder reads the input as it came (exactly sized, so any
     * over-read is caught). */
    if (size >= RIPC_FRAME_HDR)
        frame_one(data);
    if (size >= RIPC_MSG_HDR)
        msg_one(data);
    hello_one(data, size);
    welcome_one(data, size);

    /* Repaired copies: the first checks pass, the later ones get tried. */
    uint8_t *c = malloc(size ? size : 1);
    if (c == NULL)
        return 0;
    if (size >= RIPC_FRAME_HDR) {
        /* Magic set; frame type mostly valid; unless the input's top bits
         * say otherwise, a kind that fits the type, flags and reserved
         * cleared, and no payload on BYE. */
        memcpy(c, data, size);
        ripc__put32(c, RIPC_PROTO_MAGIC);
        c[4] = (uint8_t)(1 + c[4] % 6);
        if (!(data[5] & 0x80))
            c[5] = c[4] == RIPC_FRAME_MSG ? c[5] % 3 : 0;
        if (!(data[8] & 0x80))
            memset(c + 8, 0, 8);
        if (c[4] == RIPC_FRAME_BYE && !(data[31] & 0x80))
            memset(c + 24, 0, 8);
        frame_one(c);
    }
    if (size >= RIPC_MSG_HDR) {
        memcpy(c, data, size);
        c[2] %= 4;
        memset(c + 4, 0, c[3] & 0x80 ? 0 : 4);
        msg_one(c);
    }
    if (size >= RIPC_HELLO_FIXED) {
        /* name_len from the input, token_len what is left (both capped and
         * the length cut to match); NULs in the name replaced unless bit 7
         * of name_len asks to keep them. */
        memcpy(c, data, size);
        size_t rest = size - RIPC_HELLO_FIXED;
        size_t nlen = c[32] % (RIPC_NAME_MAX + 1);
        if (nlen > rest)
            nlen = rest;
        size_t tlen = rest - nlen > RIPC_TOKEN_MAX ? RIPC_TOKEN_MAX : rest - nlen;
        if (!(data[32] & 0x80))
            for (size_t i = 0; i < nlen; i++)
                c[RIPC_HELLO_FIXED + i] |= c[RIPC_HELLO_FIXED + i] ? 0 : 'a';
        c[32] = (uint8_t)nlen;
        c[33] = (uint8_t)tlen;
        hello_one(c, RIPC_HELLO_FIXED + nlen + tlen);
    }
    if (size >= RIPC_WELCOME_FIXED) {
        /* reason_len what is left (capped, length cut to match); transport
         * and nfds mostly valid. */
        memcpy(c, data, size);
        size_t rlen = size - RIPC_WELCOME_FIXED;
        if (rlen > RIPC_REASON_MAX)
            rlen = RIPC_REASON_MAX;
        ripc__put16(c + 14, (uint16_t)rlen);
        c[2] = (uint8_t)(1 + (c[2] & 1) + (c[2] & 0x80 ? 2 : 0));
        c[3] %= 5;
        welcome_one(c, RIPC_WELCOME_FIXED + rlen);
    }
    free(c);
    return 0;
}

/* ---- seeds for the replay driver (tests/fuzz/replay_main.c) ---- */

void ripc_fuzz_seeds(ripc_fuzz_run_fn run)
{
    uint8_t b[RIPC_HANDSHAKE_MAX];
    size_t n;

    for (uint8_t t = RIPC_FRAME_HELLO; t <= RIPC_FRAME_MAX_; t++) {
        ripc__frame f = {.ftype = t,
                         .kind = t == RIPC_FRAME_MSG ? RIPC_KIND_REQUEST : 0,
                         .type = t == RIPC_FRAME_BYE ? 0 : 0x1234,
                         .id = 77,
                         .len = t == RIPC_FRAME_BYE ? 0 : (uint64_t)1 << 33};
        ripc__frame_encode(b, &f);
        run(b, RIPC_FRAME_HDR);
    }

    ripc__hello h = {.version_min = 1,
                     .version_max = 1,
                     .caps = 0xE0E,
                     .pid = 1234,
                     .ring_bytes = 1 << 20,
                     .max_message = 1 << 30,
                     .token_len = 16};
    strcpy(h.name, "seed-worker");
    memset(h.token, 0x5A, 16);
    n = ripc__hello_encode(b, sizeof b, &h);
    run(b, n);

    ripc__welcome w = {.version = 1,
                       .transport = RIPC_XPORT_SHM,
                       .nfds = 3,
                       .peer_id = 9,
                       .caps = 0x6,
                       .worker_db = 1,
                       .master_db = 2,
                       .ring_bytes = 1 << 20,
                       .seg_bytes = 3 << 20,
                       .max_message = 1 << 30,
                       .max_inline = 1 << 16};
    strcpy(w.reason, "memfd, eventfd");
    n = ripc__welcome_encode(b, sizeof b, &w);
    run(b, n);

    ripc__msg_encode(b, 0xBEEF, RIPC_KIND_REPLY, RIPC_MSGF_LARGE, 42);
    run(b, RIPC_MSG_HDR);
}
