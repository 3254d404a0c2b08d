/* SPDX-License-Identifier: MIT */
/* Internals shared across src/: the channel (ring path), clocks, tables. */
#ifndef RIPC_SRC_INTERNAL_H
#define RIPC_SRC_INTERNAL_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "ringipc/ring.h"
#include "ringipc/ringipc.h"
#include "shm/clock.h"
#include "shm/doorbell.h"
#include "shm/ring_internal.h"
#include "shm/segment.h"
#include "shm/why.h"
#include "sockets/sock.h"
#include "src/large.h"
#include "src/proto.h"

#define RIPC_DEFAULT_RING_BYTES  ((size_t)1 << 20)
#define RIPC_MIN_RING_BYTES      ((size_t)4096)
#define RIPC_MAX_RING_BYTES      ((size_t)1 << 30)
#define RIPC_DEFAULT_MAX_MESSAGE ((uint64_t)64 << 20)
#define RIPC_DEFAULT_SPIN_US     50u
#define RIPC_MAX_SPIN_US         1000000u
#define RIPC_DEFAULT_CONNECT_MS  5000
#define RIPC_REPLY_TIMEOUT_MS    1000
/*
 * The master's memory for socket-mode workers' receive buffers: each has
 * RIPC_RX_BASE (256 KiB) of its own; beyond that a buffer grows (for a frame
 * larger than its base) only with bytes from one budget shared by all
 * workers: max(RIPC_RX_SERVER_BUDGET, 2 x max_message + 128 KiB). A worker
 * refused is not read until budget frees (back-pressure through its
 * socket). A worker holding budget while others wait must keep its frame
 * moving: no byte for RIPC_RX_STALL_MS and it is dropped (-ETIMEDOUT).
 */
#define RIPC_RX_SERVER_BUDGET ((size_t)64 << 20)
#define RIPC_RX_STALL_MS      2000

/* The smallest max_message either side may ask for: an error reply (the
 * library's own "no handler for type N" among them) must always fit, or a
 * request would wait for an answer that cannot be sent. */
#define RIPC_MIN_MAX_MESSAGE ((uint64_t)256)

/* ---- util.c ---- */
/* May a wait spin, given the peer's pid (0: unknown)? See util.c. */
int ripc__spin_ok(int32_t peer_pid);
void ripc__cpu_relax(void);
/* Lock mu, waiting until a deadline (shm/clock.h; RIPC_DEADLINE_NEVER: for
 * ever). 0, ETIMEDOUT, or another pthread error (positive, as pthread's). */
int ripc__mutex_lock_until(pthread_mutex_t *mu, uint64_t deadline);
/* A condition variable whose timed waits use CLOCK_MONOTONIC. */
void ripc__cond_init_monotonic(pthread_cond_t *cv);
/* Unblock SIGBUS in the calling thread (and the threads it creates from
 * now on), writing the mask it had into *old: a fault on a truncated
 * shm_open segment with SIGBUS blocked kills the process before the fault
 * guard can run (shm/fault_guard.h). 0 or -errno. */
int ripc__sigbus_unblock(sigset_t *old);
/* Is uid one the options accept as the other side's: our own effective
 * uid, one in allow_uids, or any with allow_any_uid? */
int ripc__uid_allowed(const ripc_options *o, uint32_t uid);
/* Effective options: checked (values out of range and a RIPC_TRANSPORT
 * that names no transport are -EINVAL, with the field and value in why),
 * defaults filled in, RIPC_TRANSPORT applied. */
int ripc__options_resolve(ripc_options *out, const ripc_options *in, char *why, size_t why_len);
int ripc__ring_bytes_ok(size_t ring_bytes);

/* ---- chan.c: one worker's pair of rings, seen from either side ---- */
typedef struct ripc__chan {
    ripc__segment seg;
    ripc_ring *tx;            /* we produce */
    ripc_ring *rx;            /* we consume */
    ripc__doorbell bell;      /* we sleep on it */
    ripc__doorbell peer_bell; /* we ring it */
    int sock;                 /* control socket: watched by every wait */
    int wait_mode;            /* RIPC_WAIT_* */
    uint32_t spin_us;         /* 0 when only one CPU is usable */
    uint32_t sleep_how;       /* RIPC_SLEEP_*: how our own waits ask to be woken */
    uint64_t max_payload;     /* largest message payload a record carries */
    uint64_t max_message;
    uint64_t max_inline; /* larger payloads go through ripc__large */
    ripc__large lg;
} ripc__chan;

/* What a sender waits for: room in tx for `arg` bytes, or the consumer of tx
 * past position `arg` (a large-message buffer coming back); with also_data,
 * a record in rx ends the wait too. try_send sets what/arg and clears
 * also_data. */
enum { RIPC_CHAN_DATA = 0, RIPC_CHAN_ROOM = 1, RIPC_CHAN_CONSUMED = 2 };
typedef struct ripc__waitfor {
    int what;
    int also_data;
    uint64_t arg;
} ripc__waitfor;

/* Segment layout: ring worker->master at 0, ring master->worker after it. */
size_t ripc__chan_seg_bytes(size_t ring_bytes);
/* Master: create the segment and format both rings. */
int ripc__chan_create_segment(ripc__chan *ch, size_t ring_bytes, char *why, size_t why_len);
/* Attach the rings: master = 1 (rx = w->m), worker = 0 (rx = m->w). */
int ripc__chan_attach(ripc__chan *ch, size_t ring_bytes, int master);
void ripc__chan_close(ripc__chan *ch);

/* Zero the parts of a channel that hold descriptors (before anything else). */
void ripc__chan_init(ripc__chan *ch);

/*
 * Put a message in tx if it can go now: 0, -EAGAIN (*w says what to wait
 * for), -EMSGSIZE, -EPROTO (our ring is corrupt, or the peer does not read
 * the frames of large messages), or for a large message -ENOMEM / -EPIPE.
 * Rings the peer's doorbell when the peer sleeps. Never blocks.
 */
int ripc__chan_try_send(ripc__chan *ch, uint16_t type, uint8_t kind, uint64_t id, const void *data,
                        uint64_t len, ripc__waitfor *w);
/* Look at the next message in rx without waiting: 0, -EAGAIN, -EPROTO. A
 * large message's payload is mapped until the release. */
int ripc__chan_peek(ripc__chan *ch, ripc_msg *m);
/* Drop the message returned by peek; wake a producer waiting for room. */
void ripc__chan_release(ripc__chan *ch, int wake);
/* The same without publishing the consumer index (ripc__ring_release_lazy). */
void ripc__chan_release_lazy(ripc__chan *ch);
/* Sender side of the eventcount for *w: 1 when it already holds (not
 * armed), else armed; disarm after the wait. */
int ripc__chan_arm_space(ripc__chan *ch, const ripc__waitfor *w);
void ripc__chan_disarm_space(ripc__chan *ch);
/* After releases with wake = 0: one check for a sleeping producer. */
void ripc__chan_space_wake(ripc__chan *ch);
/*
 * Wait until rx has a record (w NULL or RIPC_CHAN_DATA) or what *w says holds,
 * per the channel's wait strategy. Returns 0 when the condition holds, 1 when
 * the control socket needs attention (readable or hung up), -ETIMEDOUT, or
 * -EPIPE.
 */
int ripc__chan_wait(ripc__chan *ch, const ripc__waitfor *w, uint64_t deadline);

#endif
