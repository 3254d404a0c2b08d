/* SPDX-License-Identifier: MIT */
/*
 * Large messages in shared-memory mode: payloads over max_inline (or over
 * what a ring record holds) travel in a memfd, and a marker record keeps
 * their place in the ring.
 *
 * Sender, for one message:
 *   1. take a payload buffer from the channel's pool (at most
 *      RIPC_LARGE_SLOTS in flight; a busy one is free again once the
 *      consumer's ring index passes its marker);
 *   2. reserve the marker record in the ring;
 *   3. copy the payload into the buffer (a memfd sealed against shrinking);
 *   4. send a LARGE frame carrying the memfd (SCM_RIGHTS) on the control
 *      socket;
 *   5. commit the marker {type, kind, id, flags LARGE, u64 len}.
 * The frame is in the receiver's socket before the marker is visible, so a
 * receiver that meets a marker finds its frame without waiting; frames and
 * markers pair up in order. The receiver maps the memfd read-only (no copy
 * through the kernel), hands the mapping to the handler or to recv, and
 * unmaps it when it releases the marker, which is also what tells the
 * sender that the buffer is free.
 *
 * Why a memfd and not the payload streamed on the socket: measured on the
 * 2-vCPU test machine, 16 MiB messages, the reused memfd moves 2.5 GB/s
 * against 0.85 GB/s for the same bytes over a unix socket (and a fresh
 * memfd per message, 0.7 GB/s, loses to the socket: new tmpfs pages are
 * the expensive part, hence the pool). Idle buffers above RIPC_LARGE_KEEP
 * bytes per channel are closed when they come back, and so are those over
 * a budget shared by several channels where one is set (the master's: all
 * its workers together keep at most RIPC_LARGE_SERVER_KEEP idle, not
 * RIPC_LARGE_KEEP times the number of workers).
 *
 * Every byte from the peer is hostile: frames are checked against the
 * marker, the length against max_message, and only a memfd sealed against
 * shrinking is mapped (shm/segment.h ripc__segment_map_sealed).
 */
#ifndef RIPC_SRC_LARGE_H
#define RIPC_SRC_LARGE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ringipc/ring.h"
#include "src/platform.h"
#include "src/proto.h"

#define RIPC_LARGE_SLOTS       4
#define RIPC_LARGE_KEEP        ((size_t)32 << 20)
#define RIPC_LARGE_SERVER_KEEP ((size_t)64 << 20)

/* Idle bytes kept by several channels together (any thread). */
typedef struct ripc__large_budget {
    _Atomic size_t idle;
    size_t cap;
} ripc__large_budget;

typedef struct ripc__large_buf {
    ripc__segment seg; /* memfd mapped read-write; base NULL when empty */
    uint64_t until;    /* busy: until the consumer's index reaches this */
    int busy;
    int counted; /* idle, and its bytes are in the shared budget */
} ripc__large_buf;

typedef struct ripc__large_in {
    int fd;
    ripc__frame f;
} ripc__large_in;

typedef struct ripc__large {
    /* sending side (the channel's producer) */
    ripc__large_buf out[RIPC_LARGE_SLOTS];
    ripc__large_budget *budget; /* shared idle budget, or NULL: set after init */
    /* receiving side: LARGE frames read off the control socket, in order */
    ripc__large_in in[RIPC_LARGE_SLOTS];
    unsigned in_head, in_n;
    uint8_t hdr[RIPC_FRAME_HDR]; /* a frame header being read */
    size_t hdr_len;
    int hdr_fd;         /* descriptor that came with it, -1 */
    int bye;            /* BYE read: nothing may follow */
    int err;            /* sticky: the stream broke the protocol (frames
                         * queued before that still pair with their markers) */
    int bad_take;       /* a marker failed to pair or map: no more takes */
    ripc__segment lent; /* mapping of the payload handed out */
} ripc__large;

void ripc__large_init(ripc__large *lg);
void ripc__large_free(ripc__large *lg);

/*
 * Read the frames the control socket has now, without blocking. LARGE frames
 * are queued for their markers. Returns 0 (nothing more for now), 1 (BYE),
 * -EPIPE (end of stream or error) or -EPROTO (anything else: a bad header,
 * a frame type that has no business here, descriptors where none belong, a
 * LARGE frame over max_message or beyond the queue).
 */
int ripc__large_read(ripc__large *lg, int sock, uint64_t max_message);

/*
 * A marker record was peeked (payload: the 8-byte length). Pair it with the
 * next queued frame (reading the socket once more if none is queued), check
 * that they agree, and map the payload: *data valid until ripc__large_done.
 * 0 or -EPROTO (why says what was wrong).
 */
int ripc__large_take(ripc__large *lg, int sock, uint64_t max_message, uint16_t type, uint8_t kind,
                     uint64_t id, const void *marker, size_t marker_len, const void **data,
                     uint64_t *len);

/* The payload handed out by take is done with: unmap it. */
void ripc__large_done(ripc__large *lg);

/*
 * Sending, step 1: a free buffer of at least len bytes, reclaiming those the
 * consumer of tx is done with. -EAGAIN when all slots are in flight (*wait_pos:
 * the ring position to wait for), -ENOMEM / -errno when no memfd can be made.
 */
int ripc__large_get(ripc__large *lg, ripc_ring *tx, uint64_t len, ripc__large_buf **b,
                    uint64_t *wait_pos);

/* Step 5, once the marker is committed: b is in flight until the consumer's
 * index reaches `until` (ring position after the marker). */
void ripc__large_sent(ripc__large *lg, ripc__large_buf *b, uint64_t until);

/*
 * Step 4: write a LARGE frame with b's descriptor, without waiting: 0,
 * -EPROTO (the peer's socket is full: it takes markers without reading their
 * frames, or a frame went out in part), -EPIPE.
 */
int ripc__large_send_frame(int sock, const ripc__frame *f, const ripc__large_buf *b);

/* The peer is being dropped: free the pages of every buffer, in flight or
 * not, whoever still holds a descriptor, and close them. */
void ripc__large_punch_out(ripc__large *lg);

#endif
