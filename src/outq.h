/* SPDX-License-Identifier: MIT */
/*
 * Socket mode, sending side of a client: batched writes without a latency
 * penalty for lone messages.
 *
 * A message sent when the stream is quiet (nothing queued, nothing being
 * written, no send in the last 20 us) is written at once by the caller. A
 * message that follows closely on others is appended to a bounded queue and
 * a writer thread, started on first use, writes everything queued with one
 * system call per batch: while it is in write(), the next messages gather.
 * Requests (which wait for an answer anyway) go out at once, after what is
 * queued. The queue bound is the back-pressure: a full queue waits up to the
 * caller's deadline, like a full ring. A frame written directly that the
 * deadline interrupts part way is finished by the writer thread, from a
 * copy of its rest: the caller returns on time (the frame counts as sent)
 * and the stream keeps its framing; later frames wait for it.
 *
 * Locking: one sending thread at a time (the client's), plus the writer
 * thread; `mu` guards the queue, and `busy` says who owns the socket.
 */
#ifndef RIPC_SRC_OUTQ_H
#define RIPC_SRC_OUTQ_H

#include <stddef.h>
#include <stdint.h>

#include "src/proto.h"

typedef struct ripc__outq ripc__outq;

int ripc__outq_open(ripc__outq **q, int fd, size_t cap);
/* Flush what is queued (waiting at most timeout_ms, then up to the
 * writer's 100 ms poll slice for it to notice), stop the writer, free.
 * Returns 0 when everything went out, else a negative errno: the stream
 * may then end inside a frame. */
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
