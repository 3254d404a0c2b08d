/* SPDX-License-Identifier: MIT */
/*
 * Large messages in shared-memory mode: payloads over max_inline travel in a
 * buffer of their own (a sealed memfd, or an shm_open object the receiver
 * maps under its fault guard), and a marker record keeps their place in the
 * ring. Why, and the
 * memory bounds: docs/design.md, Large messages; the bytes: docs/protocol.md.
 *
 * Sender, for one message (src/chan.c, try_send_large):
 *   1. ripc__large_get: a buffer from the channel's pool;
 *   2. reserve the marker record in the ring, copy the payload in;
 *   3. ripc__large_send_frame: the LARGE frame with the buffer's descriptor
 *      (or, on Windows, its handle's value: platform/pass.h);
 *   4. commit the marker {type, kind, id, flags LARGE, u64 len}, then
 *      ripc__large_sent.
 * The frame is in the receiver's socket before the marker is visible.
 *
 * Context: the sending calls are the channel's producer's, the receiving
 * ones (read, take, done) its consumer's (src/chan.h says which thread);
 * a budget is any thread's. Every byte from the peer is checked before use.
 */
#ifndef RIPC_SRC_LARGE_H
#define RIPC_SRC_LARGE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "platform/pass.h"
#include "ringipc/ring.h"
#include "src/platform.h"
#include "src/proto.h"

#define RIPC_LARGE_SLOTS       4
#define RIPC_LARGE_KEEP        ((size_t)32 << 20)
#define RIPC_LARGE_SERVER_KEEP ((size_t)64 << 20)

/* Idle bytes kept by several channels together (any thread; a count only,
 * relaxed: it publishes nothing). */
typedef struct ripc__large_budget {
    _Atomic size_t idle;
    size_t cap;
} ripc__large_budget;

typedef struct ripc__large_buf {
    ripc__segment seg; /* memfd or shm_open, read-write; base NULL when empty */
    uint64_t until;    /* busy: until the consumer's index reaches this */
    int busy;
    int counted; /* idle, and its bytes are in the shared budget */
} ripc__large_buf;

typedef struct ripc__large_in {
    int fd;
    ripc__frame f;
} ripc__large_in;

/* Receiving side: a sealed payload buffer kept mapped after its message,
 * for the next message the sender's pool puts in the same buffer. */
typedef struct ripc__large_kept {
    ripc__segment seg; /* read-only mapping and its descriptor (to tell the
                        * file again: ripc__segment_same_file); base NULL
                        * when empty */
} ripc__large_kept;

typedef struct ripc__large {
    /* sending side (the channel's producer) */
    ripc__large_buf out[RIPC_LARGE_SLOTS];
    ripc__large_budget *budget; /* shared idle budget, or NULL: set after init */
    ripc__pass *pass;           /* the connection's (platform/pass.h): set after init */
    /* receiving side: LARGE frames read off the control socket, in order */
    ripc__large_in in[RIPC_LARGE_SLOTS];
    unsigned in_head, in_n;
    uint8_t hdr[RIPC_FRAME_HDR]; /* a frame header being read */
    size_t hdr_len;
    int hdr_fd;         /* descriptor that came with it (or that it named), -1 */
    int bye;            /* BYE read: nothing may follow */
    int err;            /* sticky: the stream broke the protocol (frames
                         * queued before that still pair with their markers) */
    int bad_take;       /* a marker failed to pair or map, or a payload was
                         * cut under us: nothing more is taken */
    ripc__segment lent; /* mapping of the payload handed out */
    uint64_t lent_len;  /* its payload bytes (the mapping may be longer) */
    int lent_keep;      /* lent may be kept after done: sealed, with an identity */
    ripc__large_kept kept[RIPC_LARGE_SLOTS]; /* most recently used first */
} ripc__large;

/* Empty, every descriptor -1; budget and pass NULL. */
void ripc__large_init(ripc__large *lg);
/* Close every buffer and queued descriptor, give idle bytes back to the
 * budget; lg is as after init, its budget and pass kept. The channel's owner, with
 * neither side in use (master: send_mu held, the loop done with it). */
void ripc__large_free(ripc__large *lg);

/*
 * Consumer. Read the frames the control socket has now, without blocking.
 * LARGE frames are queued for their markers, each with its buffer (on
 * Windows taken by the value it names: ripc__pass_borrow). Returns 0
 * (nothing more for now), 1 (BYE), -EPIPE (end of stream or error) or
 * -EPROTO (anything else: a bad header, a frame type that has no business
 * here, descriptors where none belong, a LARGE frame over max_message or
 * beyond the queue, a handle value the worker does not hold); -EPROTO is
 * sticky.
 */
int ripc__large_read(ripc__large *lg, int sock, uint64_t max_message);

/*
 * Consumer. A marker record was peeked (payload: the 8-byte length). Pair it
 * with the next queued frame (reading the socket once more if none is
 * queued), check that they agree, and map the payload read-only, or take
 * the kept mapping of the same buffer: *data valid until ripc__large_done;
 * a second take before then returns the same. 0, -EPROTO, or -ENOMEM (the
 * mapping failed here); after a failure every later take is -EPROTO.
 */
int ripc__large_take(ripc__large *lg, int sock, uint64_t max_message, uint16_t type, uint8_t kind,
                     uint64_t id, const void *marker, size_t marker_len, const void **data,
                     uint64_t *len);

/* Consumer. The payload handed out by take is done with: keep its mapping
 * (a sealed memfd, within RIPC_LARGE_KEEP bytes kept in all, the least
 * recently used dropped first) or unmap it. 0, or
 * -EPROTO when the peer cut it while it was read (the reader saw zeros
 * from the fault on: shm/fault_guard.h); every later take is -EPROTO. */
int ripc__large_done(ripc__large *lg);

/*
 * Producer, step 1: a free buffer of at least len bytes (*b, still the
 * pool's), reclaiming those the consumer of tx is done with. 0, -EAGAIN when
 * the pool must wait for one in flight (*wait_pos: the ring position to wait
 * for), -ENOMEM / -errno when no buffer can be made.
 */
int ripc__large_get(ripc__large *lg, ripc_ring *tx, uint64_t len, ripc__large_buf **b,
                    uint64_t *wait_pos);

/* Producer, step 4, once the marker is committed: b is in flight until the
 * consumer's index reaches `until` (ring position after the marker). */
void ripc__large_sent(ripc__large *lg, ripc__large_buf *b, uint64_t until);

/*
 * Producer, step 3: write a LARGE frame with b's descriptor (Windows: its
 * handle's value, lent through lg->pass), without waiting (master: send_mu
 * may be held): 0, -EPROTO (the peer's socket is full: it takes markers
 * without reading their frames, or a frame went out in part), -EPIPE, or
 * the -errno of lending the handle.
 */
int ripc__large_send_frame(ripc__large *lg, int sock, const ripc__frame *f,
                           const ripc__large_buf *b);

/* Producer: is a buffer in flight (its consumer not yet past its
 * marker)? Then 1, and *pos is the ring position that takes them all back
 * (the newest one's); else 0. */
int ripc__large_in_flight(const ripc__large *lg, ripc_ring *tx, uint64_t *pos);

/* The peer is being dropped (master, send_mu held): free the pages of every
 * buffer, in flight or not, whoever still holds a descriptor, and close
 * them. */
void ripc__large_punch_out(ripc__large *lg);

#endif
