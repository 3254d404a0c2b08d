/* SPDX-License-Identifier: MIT */
/*
 * Frames on a stream socket (socket mode): a receive buffer that reads in
 * large chunks and hands out whole frames, and a frame written over several
 * non-blocking writes (its callers, src/outq.c and src/server_sockmode.c,
 * decide how long to wait and what becomes of a rest). Nothing here calls
 * back into them. The format is src/proto.h.
 */
#ifndef RIPC_SRC_FRAMES_H
#define RIPC_SRC_FRAMES_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "src/proto.h"

/*
 * Memory that the receive buffers of several peers share beyond a base of
 * RIPC_RX_BASE bytes each (the master's socket-mode workers): a buffer
 * grows past its base only with bytes taken from here. Any thread.
 */
typedef struct ripc__rx_budget {
    _Atomic size_t used;
    size_t cap;
    _Atomic unsigned waiters; /* buffers full and refused: their sockets wait */
} ripc__rx_budget;

/*
 * The rule for a peer that holds budget others wait for: in each period of
 * RIPC_RX_STALL_MS it must move at least 1/RIPC_RX_STALL_SHARE of the most
 * it has held (a frame that only trickles would hold the budget for good),
 * so a frame holds budget others want for at most about RIPC_RX_STALL_SHARE
 * periods.
 * The owner counts the bytes moved; ripc__pace_late judges a period.
 */
typedef struct ripc__pace {
    uint64_t since; /* coarse clock: the period began (0: none running) */
    size_t moved;   /* bytes moved in it */
    size_t most;    /* the most held since the budget was taken */
} ripc__pace;

/* `held` bytes of budget are held now (0: none, the rule rests). 1 when a
 * period ended with too little moved while others waited: drop the peer.
 * `back`: when the owner last came back from being away (coarse clock, 0:
 * never): a period that began before then starts over, for the bytes did
 * not move because nobody moved them. */
int ripc__pace_late(ripc__pace *pc, size_t held, int others_wait, uint64_t back);

typedef struct ripc__rx {
    uint8_t *buf;
    size_t cap;              /* bytes allocated */
    size_t start;            /* first unconsumed byte */
    size_t end;              /* one past the last byte read */
    ripc__rx_budget *budget; /* NULL: none (grow as frames need) */
    size_t charged;          /* bytes of cap beyond the base taken from budget */
} ripc__rx;

#define RIPC_RX_CHUNK ((size_t)64 * 1024)
#define RIPC_RX_BASE  (4 * RIPC_RX_CHUNK)

/* Free the buffer (its budget is given back; the budget pointer stays). */
void ripc__rx_free(ripc__rx *rx);

/* Nothing buffered and grown past the base: give the memory back. 1 when
 * budget was given back. */
int ripc__rx_trim(ripc__rx *rx);

/* No room left to read into, even after compacting. */
int ripc__rx_full(const ripc__rx *rx);

/* Bytes of a frame not yet whole are buffered. */
int ripc__rx_partial(const ripc__rx *rx);

/* Take n bytes from / give them back to a budget (NULL: always granted).
 * Take: 0 or -ENOBUFS. */
int ripc__rx_budget_take(ripc__rx_budget *b, size_t n);
void ripc__rx_budget_give(ripc__rx_budget *b, size_t n);

/*
 * Read what the socket has now, without blocking. Returns the bytes read
 * (> 0), 0 when nothing was there or the buffer is full of frames not yet
 * taken, -EPIPE at end of stream, -EPROTO when
 * the peer attached descriptors (none belong on this stream), -ENOMEM or
 * another -errno. Moves buffered bytes: payload pointers from earlier
 * ripc__rx_next calls are invalid afterwards.
 */
long ripc__rx_fill(ripc__rx *rx, int fd);

/*
 * The next whole frame in the buffer: 1 with *f and *payload set (valid until
 * the next fill), 0 when more bytes are needed, -EPROTO / -EMSGSIZE for a
 * frame the peer must be dropped for. The buffer grows to hold a frame of up
 * to max_len payload bytes (checked before any allocation), never more;
 * -ENOMEM when that allocation failed, -ENOBUFS when the budget refused it
 * (the buffer is unchanged: call again later).
 */
int ripc__rx_next(ripc__rx *rx, ripc__frame *f, const uint8_t **payload, uint64_t max_len);

/* A whole frame is buffered (cheap; for "do not sleep yet" checks). */
int ripc__rx_ready(const ripc__rx *rx);

/* The header of the next frame into *f, taking nothing: 1 when the whole
 * frame is buffered and well formed (ripc__rx_next then takes it without
 * moving any buffered byte), else 0 (ripc__rx_next says what it is). */
int ripc__rx_peek(const ripc__rx *rx, ripc__frame *f, uint64_t max_len);

/*
 * A frame being written to a stream socket over several writes: its header
 * is kept here, its payload is either the sender's (valid only while that
 * sender waits for it to go out) or, once kept, a copy of its own. All
 * zero: no frame.
 */
typedef struct ripc__frame_out {
    uint8_t hdr[RIPC_FRAME_HDR];
    size_t hdr_left;     /* header bytes not yet written (from its end) */
    const uint8_t *data; /* payload bytes not yet written */
    size_t left;
    uint8_t *own; /* the copy data points into, or NULL */
} ripc__frame_out;

/* What copying n bytes into fresh memory costs here, in ns: an estimate
 * from the copies ripc__frame_out_keep made (any thread). */
uint64_t ripc__frame_copy_ns(size_t n);

/* Start frame f, its payload the caller's (not copied: see
 * ripc__frame_out_keep). Any earlier frame in o is forgotten, not freed. */
void ripc__frame_out_begin(ripc__frame_out *o, const ripc__frame *f, const void *payload);
/* Bytes of the frame not yet written (0: none, or all out). */
static inline size_t ripc__frame_out_left(const ripc__frame_out *o)
{
    return o->hdr_left + o->left;
}
/* Write what the socket takes now, without waiting: 0 all out, -EAGAIN some
 * left, -EPIPE, or another -errno. Adds the bytes written to *moved. */
int ripc__frame_out_write(ripc__frame_out *o, int fd, size_t *moved);
/* Copy what is not yet written into memory of its own (the sender is about
 * to return), in slices whose cost feeds ripc__frame_copy_ns: 0 or -ENOMEM
 * (the frame is unchanged). */
int ripc__frame_out_keep(ripc__frame_out *o);
/* Forget the frame (its copy is freed). */
void ripc__frame_out_end(ripc__frame_out *o);

/* Wait until fd is writable: 0, -ETIMEDOUT at the deadline, -EPIPE. */
int ripc__frame_wait_out(int fd, uint64_t deadline);

#endif
