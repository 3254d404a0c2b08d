/* SPDX-License-Identifier: MIT */
/*
 * The channel: one worker's pair of rings in one shared segment, seen from
 * either side (the master's peer or the worker's client), with the
 * doorbells and the wait strategy that go with them.
 *
 * Context. Producer calls (try_send, arm_space, disarm_space): on the master
 * any thread holding the peer's send_mu; on the worker the application
 * thread inside the client's guard. Consumer calls (peek, release*,
 * space_wake): the dispatch loop that owns the peer (space_wake also a
 * sender on that loop, send_mu held), or the worker's application thread.
 * None takes a lock; none blocks except ripc__chan_wait.
 */
#ifndef RIPC_SRC_CHAN_H
#define RIPC_SRC_CHAN_H

#include <stddef.h>
#include <stdint.h>

#include "ringipc/ring.h"
#include "ringipc/ringipc.h"
#include "shm/ring_internal.h"
#include "src/platform.h"
#include "src/large.h"
#include "src/stats.h"

typedef struct ripc__chan {
    ripc__segment seg;
    ripc_ring *tx;            /* we produce */
    ripc_ring *rx;            /* we consume */
    ripc__doorbell bell;      /* we sleep on it */
    ripc__doorbell peer_bell; /* we ring it */
    int sock;                 /* control socket */
    int watch;                /* watched by every wait to see the peer end: the
                                 socket, or the peer's process (platform/pass.h) */
    ripc__pass pass;          /* handing objects to the peer (platform/pass.h) */
    int wait_mode;            /* RIPC_WAIT_* */
    uint32_t spin_us;         /* 0 when only one CPU is usable */
    uint32_t sleep_how;       /* RIPC_SLEEP_*: how our own waits ask to be woken */
    uint64_t max_payload;     /* largest message payload a record carries */
    uint64_t max_message;
    uint64_t max_inline; /* larger payloads go through ripc__large */
    ripc__large lg;
    uint64_t large_len; /* consumer: the large message peeked, its length */
    /* Counters (src/stats.h): `in` the consumer's, `out` the producer's,
     * the same two sides as the calls below. */
    ripc__stats st;
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

/* Segment layout: ring worker->master at 0, ring master->worker after it.
 * The size for two rings of ring_bytes each (0: ring_bytes invalid). */
size_t ripc__chan_seg_bytes(size_t ring_bytes);
/* Master, in the handshake (loop 0): create ch->seg and format both rings.
 * 0, -EINVAL, or the segment's -errno with its reason in why; nothing is
 * left open on failure. */
int ripc__chan_create_segment(ripc__chan *ch, size_t ring_bytes, char *why, size_t why_len);
/* Attach the rings in ch->seg: master = 1 (rx = w->m), worker = 0 (rx =
 * m->w). 0, or -EPROTO (segment too small, corrupt ring header) with
 * tx and rx NULL. Before the channel is used by anyone else. */
int ripc__chan_attach(ripc__chan *ch, size_t ring_bytes, int master);
/* Detach the rings, close doorbells, segment and large-message buffers.
 * Master: under send_mu (no sender may be inside); worker: free. Idempotent
 * after ripc__chan_init. */
void ripc__chan_close(ripc__chan *ch);

/* Zero the parts of a channel that hold descriptors (before anything else). */
void ripc__chan_init(ripc__chan *ch);

/*
 * Producer. Put a message in tx if it can go now: 0, -EAGAIN (*w says what
 * to wait for), -EMSGSIZE, -EPROTO (our ring is corrupt, the peer does not
 * read the frames of large messages, or it cut a large-message buffer of
 * ours), or for a large message -ENOMEM / -EPIPE / -errno (no buffer).
 * Rings the peer's doorbell when the peer sleeps. Never blocks.
 */
int ripc__chan_try_send(ripc__chan *ch, uint16_t type, uint8_t kind, uint64_t id, const void *data,
                        uint64_t len, ripc__waitfor *w);
/* Producer. ripc__chan_try_send for one message of a batch: an inline
 * record is published without looking whether the peer sleeps (a large one
 * goes as with try_send). The batch then calls ripc__chan_data_wake once,
 * at its end and before any wait: until then a sleeping peer may not see
 * what was sent. */
int ripc__chan_try_send_quiet(ripc__chan *ch, uint16_t type, uint8_t kind, uint64_t id,
                              const void *data, uint64_t len, ripc__waitfor *w);
/* Producer. Wake the peer if it sleeps, for the records published by
 * ripc__chan_try_send_quiet. */
void ripc__chan_data_wake(ripc__chan *ch);
/* A loan: room reserved in tx for one message that its sender writes in
 * place, published by ripc__chan_commit or dropped by ripc__chan_abandon.
 * The producer's; while one is open nothing else is produced on tx (the
 * ring holds one reservation at a time). */
typedef struct ripc__loan {
    unsigned char *rec; /* the ring record: message header, then payload or marker */
    ripc__large_buf *b; /* large: the payload's buffer (still the pool's), else NULL */
    uint64_t cap;       /* payload bytes reserved */
} ripc__loan;

/*
 * Producer. Reserve room for a message of up to len bytes and point *buf at
 * its payload: in the ring record itself when len <= max_inline, else in a
 * large-message buffer, its marker record reserved beside it (steps 1-2 of
 * src/large.h, without the copy). Nothing is visible to the peer until the
 * commit. 0, -EAGAIN (*w says what to wait for), -EMSGSIZE, -EPROTO, or for
 * a large message -ENOMEM / -errno. Never blocks.
 */
int ripc__chan_reserve(ripc__chan *ch, uint64_t len, ripc__loan *l, void **buf, ripc__waitfor *w);
/*
 * Producer. Publish the loan as a message of len <= l->cap bytes and ring
 * the peer when it sleeps; a large one in the order src/large.h gives
 * (frame, then marker). A large loan committed with len <=
 * RIPC_MARKER_BYTES goes inline in its marker record instead (a marker may
 * not say 0). The loan ends whatever the result: 0, or (large) -EPROTO /
 * -EPIPE with nothing published. Never blocks.
 */
int ripc__chan_commit(ripc__chan *ch, ripc__loan *l, uint16_t type, uint8_t kind, uint64_t id,
                      uint64_t len);
/* Producer. Drop the loan unpublished; a large buffer stays the pool's. */
void ripc__chan_abandon(ripc__chan *ch, ripc__loan *l);

/* Socket mode: a loan is a library buffer, written to the socket at
 * commit. Point *out at *buf grown to len bytes (its old bytes need not
 * survive): 0 or -ENOMEM. The owner's, as the loan. */
int ripc__chan_lend_buf(unsigned char **buf, size_t *cap, uint64_t len, void **out);
/* The loan is over: a buffer above RIPC_LEND_KEEP goes, a smaller one is
 * kept for the next loan. */
void ripc__chan_lend_buf_trim(unsigned char **buf, size_t *cap);
#define RIPC_LEND_KEEP ((size_t)1 << 20)

/* Consumer. Look at the next message in rx without waiting: 0, -EAGAIN,
 * -EPROTO (also for good once a large payload failed or was cut), or
 * -ENOMEM (a large payload could not be mapped). m->data points into the
 * ring (or a large payload's mapping) until the release; the same message
 * again until then. */
int ripc__chan_peek(ripc__chan *ch, ripc_msg *m);
/* Consumer. Drop the message returned by peek (unmapping a large payload)
 * and publish the consumer index; wake: also wake a producer that sleeps
 * for room. 0, or -EPROTO when the peer cut the large payload while it was
 * read (it read as zeros from then on): every later peek is -EPROTO. */
int ripc__chan_release(ripc__chan *ch, int wake);
/* The same without publishing the consumer index (ripc__ring_release_lazy). */
int ripc__chan_release_lazy(ripc__chan *ch);
/* Consumer, after a peek and a lazy release: the next message when it
 * continues a run of one-way messages of `type` held in the ring (inline,
 * one-way, that type): 1 with *m set (peer_id untouched) as peek sets it,
 * else 0 (none, another message, or one peek refuses: left for peek). */
int ripc__chan_peek_run(ripc__chan *ch, uint16_t type, ripc_msg *m);
/* Producer. Sender side of the eventcount for *w: 1 when it already holds
 * (not armed), else 0 and armed; disarm after the wait. */
int ripc__chan_arm_space(ripc__chan *ch, const ripc__waitfor *w);
void ripc__chan_disarm_space(ripc__chan *ch);
/* Consumer. After releases with wake = 0, or lazy ones once
 * ripc__ring_publish_tail has run: wake a producer that sleeps for room. */
void ripc__chan_space_wake(ripc__chan *ch);
/*
 * Worker only (the master waits in its loops and senders). Wait until rx has
 * a record (w NULL or RIPC_CHAN_DATA) or what *w says holds, per the
 * channel's wait strategy. Returns 0 when the condition holds, 1 when the
 * control socket needs attention (readable or hung up), -ETIMEDOUT, or
 * -EPIPE. Leaves nothing armed.
 */
int ripc__chan_wait(ripc__chan *ch, const ripc__waitfor *w, uint64_t deadline);

/*
 * Worker, closing, on Windows (RIPC_PASS_INBAND): the master takes a large
 * message's buffer out of this process by its handle (platform/pass.h), so
 * the handle must stay open until the master has taken the message. Wait
 * (ripc__chan_wait) until the master is past every large message in flight,
 * or until deadline, or until the control socket needs attention (the
 * master sent something, or is gone). 0 when nothing is in flight any
 * more, else what the wait said. Elsewhere (the buffer travels with its
 * frame) 0 at once.
 */
int ripc__chan_settle_large(ripc__chan *ch, uint64_t deadline);

#endif /* RIPC_SRC_CHAN_H */
