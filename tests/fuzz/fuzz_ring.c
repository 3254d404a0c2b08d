/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the SPSC ring (shm/ring.c, ring_attach.c) against a hostile peer: the
 * input is what the other process wrote into the shared memory.
 *
 * A ring of capacity 256 is formatted in an exactly sized heap buffer (ASan
 * flags any access outside it). Then the input overwrites, in order:
 *   byte 0           mode: bit 0 fuzz the constants too (else they stay
 *                    valid); bit 1 raw indices (else derived: head = tail +
 *                    a small delta, both 8-byte aligned unless bit 4, so
 *                    most inputs get past attach); bit 2 attach a producer
 *                    handle as well (its attach walks the committed
 *                    headers from head, so it may refuse); bit 3 leave the
 *                    data area zeroed (an empty ring, as formatted)
 *   [32 bytes]       the constants line (mode bit 0 only)
 *   8 + 8 bytes      head, tail (raw) / tail + 2-byte delta (derived)
 *   [256 bytes]      the data area, as much as there is (not with bit 3)
 * and the rest is a script of up to 64 operations: peek (+ release), the
 * peer moving head or tail, the peer scribbling on the data area, and (with
 * a producer) reserve + commit.
 *
 * Properties: attach and every call return documented codes; -EPROTO is
 * sticky; a record returned by peek, and a reservation, lie inside the data
 * area, 8-byte aligned, within the payload maximum; after our producer's
 * commit the header slot after its record reads 0 (format 2's phantom-record
 * rule) unless the script let the peer scribble since.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringipc/ring.h"
#include "shm/ring_layout.h"
#include "tests/fuzz/fuzz_util.h"

#define CAP     256u
#define MAX_OPS 64

static volatile unsigned sink;

struct input {
    const uint8_t *p;
    size_t left;
};

static uint64_t take(struct input *in, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n && in->left > 0; i++, in->left--)
        v |= (uint64_t)*in->p++ << (8 * i);
    return v;
}

static void take_bytes(struct input *in, void *dst, size_t n)
{
    if (n > in->left)
        n = in->left;
    memcpy(dst, in->p, n);
    in->p += n;
    in->left -= n;
}

/* A pointer handed out by the ring must address [data + 8, data + CAP]: past
 * a record header, aligned, and with its len bytes inside the data area. */
static void check_in_area(const unsigned char *area, const void *buf, size_t len, size_t max)
{
    const unsigned char *b = buf;
    CHECK(b >= area + RIPC_REC_HDR && b <= area + CAP);
    CHECK(((size_t)(b - area) & (RIPC_RING_ALIGN - 1)) == 0);
    CHECK(len <= max);
    CHECK(len <= (size_t)(area + CAP - b));
}

static void set_index(_Atomic uint64_t *idx, uint64_t v)
{
    atomic_store_explicit(idx, v, memory_order_relaxed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct input in = {data, size};
    size_t mem_len = ripc_ring_size(CAP);
    /* 768 bytes: a multiple of the alignment, as aligned_alloc wants. */
    unsigned char *mem = aligned_alloc(RIPC_RING_LINE, mem_len);
    if (mem == NULL)
        return 0;
    CHECK(ripc_ring_format(mem, mem_len, CAP) == 0);
    struct ripc_ring_hdr *h = (struct ripc_ring_hdr *)mem;
    unsigned char *area = mem + RIPC_RING_HDR_BYTES;

    unsigned mode = (unsigned)take(&in, 1);
    if (mode & 1)
        take_bytes(&in, &h->consts.c, sizeof h->consts.c);
    uint64_t head, tail;
    if (mode & 2) {
        head = take(&in, 8);
        tail = take(&in, 8);
    } else {
        tail = take(&in, 8);
        head = tail + take(&in, 2) % (CAP + 16);
        if (!(mode & 16)) {
            tail &= ~(uint64_t)(RIPC_RING_ALIGN - 1);
            head &= ~(uint64_t)(RIPC_RING_ALIGN - 1);
        }
    }
    set_index(&h->prod.head, head);
    set_index(&h->cons.tail, tail);
    if (!(mode & 8))
        take_bytes(&in, area, CAP);

    ripc_ring *c = NULL, *p = NULL;
    int rc = ripc_ring_attach(&c, mem, mem_len, RIPC_RING_CONSUMER);
    CHECK(rc == 0 || rc == -EPROTO || rc == -EPROTONOSUPPORT);
    if (!(mode & 1))
        CHECK(rc == 0 || rc == -EPROTO); /* valid constants: only indices can fail */
    if (rc != 0) {
        CHECK(c == NULL);
        free(mem);
        return 0;
    }
    size_t max = ripc_ring_payload_max(c);
    CHECK(ripc_ring_capacity(c) == CAP && max == CAP / 2 - RIPC_REC_HDR);
    if (mode & 4) {
        rc = ripc_ring_attach(&p, mem, mem_len, RIPC_RING_PRODUCER);
        CHECK(rc == 0 || rc == -EPROTO);
        CHECK((rc == 0) == (p != NULL));
        if (mode & 8 && !(mode & 2) && !(mode & 16) && head - tail <= CAP - RIPC_REC_SPARE)
            CHECK(rc == 0); /* zero data, sane indices: nothing to refuse */
    }

    int c_dead = 0, p_dead = 0;
    unsigned sum = 0;
    for (int n = 0; n < MAX_OPS; n++) {
        unsigned op = in.left ? (unsigned)take(&in, 1) : 0;
        switch (op % 6) {
        case 0: /* peek + release */
        case 1: /* peek only (a second peek must give the same record) */
        {
            const void *buf;
            size_t len;
            rc = ripc_ring_peek(c, &buf, &len);
            CHECK(rc == 0 || rc == -EAGAIN || rc == -EPROTO);
            CHECK(!c_dead || rc == -EPROTO);
            if (rc == -EPROTO) {
                c_dead = 1;
                break;
            }
            if (rc != 0)
                break;
            check_in_area(area, buf, len, max);
            for (size_t i = 0; i < len; i++) /* read it all: ASan checks */
                sum += ((const unsigned char *)buf)[i];
            if (op % 6 == 0) {
                ripc_ring_release(c);
            } else {
                const void *buf2;
                size_t len2;
                CHECK(ripc_ring_peek(c, &buf2, &len2) == 0);
                CHECK(buf2 == buf && len2 == len);
            }
            break;
        }
        case 2: /* the peer moves head: by a small step, or anywhere */
            if (op & 0x80)
                set_index(&h->prod.head, take(&in, 8));
            else
                set_index(&h->prod.head,
                          atomic_load_explicit(&h->prod.head, memory_order_relaxed) + take(&in, 1));
            break;
        case 3: /* the peer moves tail (only a producer reads it) */
            if (op & 0x80)
                set_index(&h->cons.tail, take(&in, 8));
            else
                set_index(&h->cons.tail,
                          atomic_load_explicit(&h->cons.tail, memory_order_relaxed) + take(&in, 1));
            break;
        case 4: /* the peer scribbles on the data area */
        {
            size_t off = (size_t)take(&in, 1) % CAP;
            size_t n_bytes = (size_t)take(&in, 1) % (CAP - off + 1);
            take_bytes(&in, area + off, n_bytes);
            break;
        }
        case 5: /* our own producer pushes a record */
        {
            if (p == NULL)
                break;
            size_t len = (size_t)take(&in, 1) % (max + 16);
            void *buf;
            rc = ripc_ring_reserve(p, len, &buf);
            CHECK(rc == 0 || rc == -EAGAIN || rc == -EMSGSIZE || rc == -EPROTO);
            CHECK(!p_dead || rc == -EPROTO || rc == -EMSGSIZE);
            CHECK(rc != -EMSGSIZE || len > max);
            CHECK(len <= max || rc == -EMSGSIZE || rc == -EPROTO);
            if (rc == -EPROTO)
                p_dead = 1;
            if (rc != 0)
                break;
            check_in_area(area, buf, len, max);
            memset(buf, (int)op, len);
            ripc_ring_commit(p, len);
            {
                /* Our own head: the peer does not write it between here and
                 * the commit (single-threaded script). */
                uint64_t hd = atomic_load_explicit(&h->prod.head, memory_order_relaxed);
                uint64_t w;
                memcpy(&w, area + (hd & (CAP - 1)), 8);
                CHECK(w == 0);
            }
            break;
        }
        }
        (void)ripc_ring_used(c);
        if (p != NULL)
            (void)ripc_ring_used(p);
    }
    sink = sum; /* keep the reads from being optimised away */
    ripc_ring_detach(p);
    ripc_ring_detach(c);
    free(mem);
    return 0;
}

/* ---- seeds for the replay driver (tests/fuzz/replay_main.c) ---- */

struct seed {
    uint8_t b[1024];
    size_t n;
};

static void put(struct seed *s, uint64_t v, size_t bytes)
{
    for (size_t i = 0; i < bytes; i++)
        s->b[s->n++] = (uint8_t)(v >> (8 * i));
}

static void put_ops(struct seed *s, const uint8_t *ops, size_t n)
{
    memcpy(s->b + s->n, ops, n);
    s->n += n;
}

void ripc_fuzz_seeds(ripc_fuzz_run_fn run)
{
    /* op bytes: 0 peek+release, 1 peek twice, 2 head += next byte,
     * 3 tail += next byte, 4 scribble (off, n, bytes), 5 push (len) */
    static const uint8_t stream[] = {0, 1, 0, 5, 20, 0, 0, 5, 100, 0, 5, 120, 0, 0, 0, 0,
                                     0, 0, 0, 5, 50, 0, 5, 8, 5,   8, 5, 8,   0, 0, 0, 0};
    static const uint8_t wrap[] = {5, 100, 0, 5, 120, 0, 5, 8, 0, 5, 119, 0, 0, 5, 0, 0};
    static const uint8_t hostile[] = {0, 2, 16, 0, 4, 0,   8, 1,    0, 0, 0, 0, 0, 0, 0, 0, 3,
                                      8, 5, 10, 0, 2, 200, 0, 0x82, 1, 2, 3, 4, 5, 6, 7, 8, 0};
    struct seed s;

    /* Zeroed data area: empty wherever the indices stand, then real pushes. */
    s.n = 0;
    put(&s, 4 | 8, 1);
    put(&s, 0x100, 8);
    put(&s, 64, 2);
    put_ops(&s, stream, sizeof stream);
    run(s.b, s.n);

    /* Empty ring at offset 240: the first push needs a pad record. */
    s.n = 0;
    put(&s, 4 | 8, 1);
    put(&s, 240, 8);
    put(&s, 0, 2);
    put_ops(&s, wrap, sizeof wrap);
    run(s.b, s.n);

    /* A peer-written pad at 248 and an 8-byte record at 0, then a peer
     * that moves head and tail and scribbles. */
    s.n = 0;
    put(&s, 4, 1);
    put(&s, 248, 8);
    put(&s, 24, 2);
    size_t area = s.n;
    memset(s.b + area, 0, CAP);
    memcpy(s.b + area + 248, (const uint8_t[]){0, 0, 0, 0, RIPC_REC_PAD | RIPC_REC_VALID, 0, 0, 0},
           8);
    memcpy(s.b + area, (const uint8_t[]){8, 0, 0, 0, RIPC_REC_VALID, 0, 0, 0}, 8);
    memcpy(s.b + area + 8, "payload!", 8);
    s.n += CAP;
    put_ops(&s, hostile, sizeof hostile);
    run(s.b, s.n);

    /* Valid constants written by the peer (mutations break each one). */
    s.n = 0;
    put(&s, 1 | 4 | 8, 1);
    put(&s, RIPC_RING_MAGIC, 8);
    put(&s, RIPC_RING_LAYOUT_VERSION, 4);
    put(&s, RIPC_RING_HDR_BYTES, 4);
    put(&s, CAP, 8);
    put(&s, CAP / 2 - RIPC_REC_HDR, 8);
    put(&s, 0, 8);
    put(&s, 32, 2);
    put_ops(&s, stream, sizeof stream);
    run(s.b, s.n);

    /* Raw indices. */
    s.n = 0;
    put(&s, 2 | 4 | 8, 1);
    put(&s, 64, 8);
    put(&s, 0, 8);
    put_ops(&s, stream, sizeof stream);
    run(s.b, s.n);
}
