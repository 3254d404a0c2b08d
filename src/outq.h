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

/* One-way frame: written now or queued. 0, -EAGAIN (queue full, nowait),
 * -ETIMEDOUT, -EPIPE (this or an earlier write failed), -ENOMEM. With
 * slice_ns != 0, waits at most that long past now, whatever the deadline
 * (-ETIMEDOUT then: the caller looks elsewhere and comes back). */
int ripc__outq_send(ripc__outq *q, const ripc__frame *f, const void *payload, uint64_t deadline,
                    int nowait, uint64_t slice_ns);
/* Frame that must go out now (after everything queued). */
int ripc__outq_send_now(ripc__outq *q, const ripc__frame *f, const void *payload,
                        uint64_t deadline);

#endif
