/* SPDX-License-Identifier: MIT */
/* Frames on a stream socket: see src/frames.h. One thread per ripc__rx and
 * per ripc__frame_out at a time (their owners' locks or threads); only the
 * budgets and the copy estimate are shared. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "src/frames.h"
#include "src/internal.h"

/* The budget's `used` is a count only: relaxed, it publishes nothing (the
 * bytes it stands for are each owner's own). */
int ripc__rx_budget_take(ripc__rx_budget *b, size_t n)
{
    if (!b || n == 0)
        return 0;
    size_t cur = atomic_load_explicit(&b->used, memory_order_relaxed);
    do {
        if (n > b->cap || cur > b->cap - n)
            return -ENOBUFS;
    } while (!atomic_compare_exchange_weak_explicit(&b->used, &cur, cur + n, memory_order_relaxed,
                                                    memory_order_relaxed));
    return 0;
}

void ripc__rx_budget_give(ripc__rx_budget *b, size_t n)
{
    if (b && n)
        atomic_fetch_sub_explicit(&b->used, n, memory_order_relaxed);
}

int ripc__pace_late(ripc__pace *pc, size_t held, int others_wait, uint64_t back)
{
    if (!held) {
        *pc = (ripc__pace){0};
        return 0;
    }
    /* The share is of the most held: a tail shrinks as it is read, and 1/8
     * of what is left each period would let it linger for dozens. */
    if (held > pc->most)
        pc->most = held;
    uint64_t now = ripc__coarse_ns();
    if (pc->since == 0 || pc->since <= back) {
        pc->since = now;
        pc->moved = 0;
        return 0;
    }
    if (now - pc->since < RIPC_RX_STALL_MS * 1000000ull)
        return 0;
    int late = others_wait && pc->moved <= pc->most / RIPC_RX_STALL_SHARE;
    pc->since = now;
    pc->moved = 0;
    return late;
}

/* Settle what a buffer of cap bytes owes the budget (take more, or give
 * back): 0, or -ENOBUFS with nothing changed. */
static int rx_charge(ripc__rx *rx, size_t cap)
{
    if (!rx->budget)
        return 0;
    size_t want = cap > RIPC_RX_BASE ? cap - RIPC_RX_BASE : 0;
    if (want > rx->charged && ripc__rx_budget_take(rx->budget, want - rx->charged) < 0)
        return -ENOBUFS;
    if (want < rx->charged)
        ripc__rx_budget_give(rx->budget, rx->charged - want);
    rx->charged = want;
    return 0;
}

void ripc__rx_free(ripc__rx *rx)
{
    free(rx->buf);
    rx->buf = NULL;
    rx->cap = rx->start = rx->end = 0;
    rx_charge(rx, 0);
}

int ripc__rx_trim(ripc__rx *rx)
{
    if (rx->start != rx->end || rx->cap <= RIPC_RX_BASE)
        return 0;
    int charged = rx->charged > 0;
    ripc__rx_free(rx);
    return charged;
}

int ripc__rx_full(const ripc__rx *rx)
{
    return rx->cap > 0 && rx->end - rx->start == rx->cap;
}

int ripc__rx_partial(const ripc__rx *rx)
{
    return rx->end > rx->start && !ripc__rx_ready(rx);
}

/* Make room for at least `want` more bytes after end (compact, then grow):
 * 0, -ENOBUFS (the budget refused) or -ENOMEM, the buffer unchanged but
 * perhaps compacted. */
static int rx_room(ripc__rx *rx, size_t want)
{
    if (rx->start > 0 && (rx->start == rx->end || rx->cap - rx->end < want)) {
        memmove(rx->buf, rx->buf + rx->start, rx->end - rx->start);
        rx->end -= rx->start;
        rx->start = 0;
    }
    if (rx->cap - rx->end >= want)
        return 0;
    /* Double for a run of frames; a single large frame gets what it needs. */
    size_t ncap = rx->cap ? 2 * rx->cap : RIPC_RX_CHUNK;
    if (ncap - rx->end < want)
        ncap = (rx->end + want + RIPC_RX_CHUNK - 1) / RIPC_RX_CHUNK * RIPC_RX_CHUNK;
    size_t ocap = rx->cap;
    if (rx_charge(rx, ncap) < 0)
        return -ENOBUFS;
    uint8_t *nb = realloc(rx->buf, ncap);
    if (!nb) {
        rx_charge(rx, ocap);
        return -ENOMEM;
    }
    rx->buf = nb;
    rx->cap = ncap;
    return 0;
}

long ripc__rx_fill(ripc__rx *rx, int fd)
{
    /* Never grow here: a peer sending faster than we dispatch must not make
     * us buffer without bound. Only ripc__rx_next grows, for one frame. */
    if (rx->start == rx->end) {
        rx->start = rx->end = 0;
        /* Grown for a large frame that is gone now: give the memory back. */
        ripc__rx_trim(rx);
    }
    if (rx->cap == 0 && rx_room(rx, RIPC_RX_CHUNK) < 0)
        return -ENOMEM;
    if (rx->start > 0 && rx->end == rx->cap) {
        memmove(rx->buf, rx->buf + rx->start, rx->end - rx->start);
        rx->end -= rx->start;
        rx->start = 0;
    }
    if (rx->end == rx->cap)
        return 0; /* full of frames not yet taken */
    /* A recvmsg: descriptors attached by the peer are disposed of, not
     * dropped by the kernel in this thread (sockets/closer.h). */
    long n = ripc__sock_try_recv(fd, rx->buf + rx->end, rx->cap - rx->end);
    if (n > 0) {
        rx->end += (size_t)n;
        return n;
    }
    if (n == 0)
        return -EPIPE;
    return n == -EAGAIN ? 0 : n;
}

int ripc__rx_ready(const ripc__rx *rx)
{
    size_t have = rx->end - rx->start;
    if (have < RIPC_FRAME_HDR)
        return 0;
    uint64_t len = ripc__get64(rx->buf + rx->start + 24);
    return len <= have - RIPC_FRAME_HDR;
}

int ripc__rx_peek(const ripc__rx *rx, ripc__frame *f, uint64_t max_len)
{
    size_t have = rx->end - rx->start;
    return have >= RIPC_FRAME_HDR && ripc__frame_decode(rx->buf + rx->start, f, max_len) == 0 &&
           f->len <= have - RIPC_FRAME_HDR;
}

int ripc__rx_next(ripc__rx *rx, ripc__frame *f, const uint8_t **payload, uint64_t max_len)
{
    size_t have = rx->end - rx->start;
    if (have < RIPC_FRAME_HDR)
        return 0;
    int rc = ripc__frame_decode(rx->buf + rx->start, f, max_len);
    if (rc < 0)
        return rc;
    if (f->len > have - RIPC_FRAME_HDR) {
        /* Make sure the whole frame will fit once it arrives (the length
         * was checked against max_len above, before this allocation). */
        size_t whole = RIPC_FRAME_HDR + (size_t)f->len;
        if (whole > rx->cap - rx->start && (rc = rx_room(rx, whole - have)) < 0)
            return rc;
        return 0;
    }
    *payload = rx->buf + rx->start + RIPC_FRAME_HDR;
    rx->start += RIPC_FRAME_HDR + (size_t)f->len;
    return 1;
}

int ripc__frame_wait_out(int fd, uint64_t deadline)
{
    if (ripc__remaining_ms(deadline) == 0)
        return -ETIMEDOUT;
    int n = ripc__sock_wait(fd, RIPC_SOCK_OUT, deadline);
    if (n < 0)
        return n;
    if (n == 0)
        return -ETIMEDOUT;
    if (n & RIPC_SOCK_HUP)
        return -EPIPE;
    return 0;
}

void ripc__frame_out_begin(ripc__frame_out *o, const ripc__frame *f, const void *payload)
{
    ripc__frame_encode(o->hdr, f);
    o->hdr_left = RIPC_FRAME_HDR;
    o->data = payload;
    o->left = (size_t)f->len;
    o->own = NULL;
}

int ripc__frame_out_write(ripc__frame_out *o, int fd, size_t *moved)
{
    while (ripc__frame_out_left(o)) {
        long w = ripc__sock_try_send2(fd, o->hdr + RIPC_FRAME_HDR - o->hdr_left, o->hdr_left,
                                      o->data, o->left);
        if (w > 0) {
            size_t k = (size_t)w, h = k < o->hdr_left ? k : o->hdr_left;
            o->hdr_left -= h;
            if (k > h) { /* data may be NULL for an empty payload */
                o->data += k - h;
                o->left -= k - h;
            }
            *moved += k;
            continue;
        }
        return w == 0 ? -EPIPE : (int)w;
    }
    return 0;
}

/* ns per MiB copied into fresh memory, page faults included: the mean of
 * the last slice measured and those before (half each), within 0.25 to
 * 32 ms. It starts at 4 ms: a machine with more runnable threads than
 * cores, where 1 MiB into fresh pages took 3 to 20 ms. */
static _Atomic uint64_t copy_ns_per_mib = 4000000;
#define COPY_SLICE ((size_t)1 << 20)

uint64_t ripc__frame_copy_ns(size_t n)
{
    uint64_t per = atomic_load_explicit(&copy_ns_per_mib, memory_order_relaxed);
    return (uint64_t)(n >> 10) * (per >> 10) + 1000;
}

/* memcpy in slices of COPY_SLICE, each long one timed into the estimate. */
static void copy_measured(uint8_t *dst, const uint8_t *src, size_t n)
{
    while (n) {
        size_t k = n < COPY_SLICE ? n : COPY_SLICE;
        uint64_t t0 = ripc__now_ns();
        memcpy(dst, src, k);
        uint64_t ns = ripc__now_ns() - t0;
        dst += k;
        src += k;
        n -= k;
        if (k < COPY_SLICE / 4)
            continue; /* too short to say much */
        uint64_t per = ns * (COPY_SLICE / k);
        per = per < 250000 ? 250000 : per > 32000000 ? 32000000 : per;
        /* Relaxed, an estimate with no partner: two threads racing here lose
         * one sample, which the average does not miss. */
        uint64_t cur = atomic_load_explicit(&copy_ns_per_mib, memory_order_relaxed);
        atomic_store_explicit(&copy_ns_per_mib, (cur + per) / 2, memory_order_relaxed);
    }
}

int ripc__frame_out_keep(ripc__frame_out *o)
{
    if (o->own)
        return 0;
    size_t n = ripc__frame_out_left(o);
    uint8_t *b = malloc(n ? n : 1);
    if (!b)
        return -ENOMEM;
    memcpy(b, o->hdr + RIPC_FRAME_HDR - o->hdr_left, o->hdr_left);
    if (o->left)
        copy_measured(b + o->hdr_left, o->data, o->left);
    o->hdr_left = 0;
    o->data = o->own = b;
    o->left = n;
    return 0;
}

void ripc__frame_out_end(ripc__frame_out *o)
{
    free(o->own);
    *o = (ripc__frame_out){0};
}
