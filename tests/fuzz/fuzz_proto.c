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

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);                  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
        CHECK(f.ftype == RIPC_FRAME_MSG ? f.kind <= RIPC_KIND_REPLY : f.kind == 0);
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
        memcpy(c, data, size);
        ripc__put32(c, RIPC_PROTO_MAGIC);
        if (c[8] & 1) /* sometimes keep the flags / reserved bytes fuzzed */
            memset(c + 8, 0, 8);
        frame_one(c);
    }
    if (size >= RIPC_MSG_HDR) {
        memcpy(c, data, size);
        c[2] %= 4;
        memset(c + 4, 0, c[3] & 0x80 ? 0 : 4);
        msg_one(c);
    }
    if (size >= RIPC_HELLO_FIXED) {
        /* name_len from the input, token_len whatever is left */
        memcpy(c, data, size);
        size_t rest = size - RIPC_HELLO_FIXED;
        size_t nlen = c[32] % (RIPC_NAME_MAX + 1);
        if (nlen > rest)
            nlen = rest;
        c[32] = (uint8_t)nlen;
        c[33] = (uint8_t)(rest - nlen > 255 ? 255 : rest - nlen);
        hello_one(c, size);
    }
    if (size >= RIPC_WELCOME_FIXED) {
        memcpy(c, data, size);
        ripc__put16(c + 14, (uint16_t)(size - RIPC_WELCOME_FIXED));
        c[2] = (uint8_t)(1 + (c[2] & 1) + (c[2] & 0x80 ? 2 : 0));
        c[3] %= 5;
        welcome_one(c, size);
    }
    free(c);
    return 0;
}
