/* SPDX-License-Identifier: MIT */
/*
 * Socket mode, sending side of a client: batched writes without a latency
 * penalty for lone messages (docs/design.md, Socket mode: "the writer
 * thread").
 *
 * Context: one sending thread at a time (the application thread inside the
 * client's guard), plus the writer thread; `mu` guards the queue, and `busy`
 * says who owns the socket. No call here returns with `mu` held.
 */
#ifndef RIPC_SRC_OUTQ_H
#define RIPC_SRC_OUTQ_H

#include <stddef.h>
#include <stdint.h>

#include "src/proto.h"

typedef struct ripc__outq ripc__outq;

/* A queue of cap bytes writing to fd (non-blocking; still the caller's to
 * close). 0 with *q, or -ENOMEM. The writer thread starts on first use. */
int ripc__outq_open(ripc__outq **q, int fd, size_t cap);
/* Flush what is queued (waiting at most timeout_ms, then up to the
 * writer's 100 ms poll slice for it to notice), stop the writer, free.
 * Returns 0 when everything went out, else a negative errno: the stream
 * may then end inside a frame. The sending thread, with no send under way;
 * q NULL is 0. */
int ripc__outq_close(ripc__outq *q, int timeout_ms);

/*
 * The sender's three calls, one direction (the client loops over them,
 * stashing what arrives between waits; nothing here calls back up):
 *
 * try_send never waits. A quiet stream, a frame too big for the queue, or
 * RIPC_OUTQ_NOW (a request: it goes at once, after what is queued) is
 * written by the caller, as much as the socket takes now; anything else is
 * queued for the writer thread. 0: the frame went (all written, or queued);
 * -EAGAIN: nothing of it went and nothing changed (queue full, queue or
 * writer ahead of a direct frame, socket full): ripc__outq_wait, then try
 * again; -EINPROGRESS: part of it is written and the rest is still the
 * caller's payload: call ripc__outq_finish next, nothing else; -EPIPE
 * (this or an earlier write failed) or another -errno. With
 * RIPC_OUTQ_AGAIN (the same frame after ripc__outq_wait returned 0) the
 * frame keeps the way chosen when it got -EAGAIN: one that waited for room
 * in the queue takes the room when it comes, rather than turn into a
 * direct write (which waits for the socket without stashing) as soon as
 * the queue is empty.
 */
#define RIPC_OUTQ_NOW   1
#define RIPC_OUTQ_AGAIN 2
int ripc__outq_try_send(ripc__outq *q, const ripc__frame *f, const void *payload, int flags);
/* Wait for what a try_send that returned -EAGAIN waits for: the queue
 * moving (the writer took or finished a batch) or, with nothing queued or
 * being written, room in the socket. 0 (something moved; try again),
 * -ETIMEDOUT at the deadline, -EPIPE, or another -errno. */
int ripc__outq_wait(ripc__outq *q, uint64_t deadline);
/* After -EINPROGRESS: write the rest of the frame until `finish`; what is
 * left then goes to the writer thread from a copy (the frame counts as
 * sent, the caller returns on time, the stream keeps its framing). 0,
 * -EPIPE (the write failed, or the rest could not be kept: the stream is
 * ended) or another -errno. */
int ripc__outq_finish(ripc__outq *q, uint64_t finish);

#endif
