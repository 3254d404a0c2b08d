/* SPDX-License-Identifier: MIT */
/*
 * Handing kernel objects (a ring segment, doorbell ends) to the peer at the
 * other end of a control connection, and taking those the peer handed us.
 * Files: platform/pass_posix.c, platform/pass_win32.c (same names).
 *
 *   POSIX    the objects are descriptors attached to the frame's first byte
 *            (SCM_RIGHTS); nothing about them is in the frame's bytes, and
 *            the receiver gets its own descriptors with the bytes.
 *   Windows  a handle cannot ride a pipe: the sender duplicates each object
 *            INTO the receiver's process (DuplicateHandle, through a handle
 *            to that process it opened from the pid the pipe reports) with
 *            the rights its role needs and no more, and sends the values the
 *            handles have there in the frame's bytes (RIPC_PASS_INBAND: the
 *            WELCOME's handle trailer, docs/protocol.md). The receiver's
 *            handles exist before it reads the frame; it adopts the values.
 *
 * Only the master gives: with WELCOME, and with each large-message buffer
 * it sends. A worker never duplicates anything into the master, so nothing
 * a worker does puts a handle into the master's table but what the master
 * itself pulls out of the worker's process (a large-message buffer the
 * worker names, ripc__pass_borrow) and checks before it maps it. The rights
 * given keep the Linux design's rule that a worker cannot make the master's
 * waits block or its writes fail: a segment without SECTION_EXTEND_SIZE
 * cannot be resized, an event given EVENT_MODIFY_STATE (the master's bell:
 * the worker rings it) or SYNCHRONIZE (the worker's own bell: it waits on
 * it) can be set or reset, never made to block SetEvent.
 *
 * The peer's process is also what a wait watches for the peer's death on
 * Windows (shm/doorbell.h, watch_fd): ripc__pass_watch says what to watch.
 *
 * Large-message buffers (src/large.h), one per LARGE frame:
 *   POSIX    the descriptor attached to the frame's header (SCM_RIGHTS).
 *   Windows  the frame's header carries a handle value (src/proto.h,
 *            RIPC_PASS_INBAND). Master to worker: a handle the master
 *            duplicated into the worker (read and query rights), as WELCOME
 *            does. Worker to master: the worker's own handle; the master
 *            pulls a copy out of the worker's process (DuplicateHandle from
 *            the process handle it holds) and maps it only once the mapping
 *            code has found it a committed paging-file section at least as
 *            long as the message (shm/segment.h, map_payload).
 *
 * Any thread; one ripc__pass per connection, owned by its connection.
 */
#ifndef RIPC_PLATFORM_PASS_H
#define RIPC_PLATFORM_PASS_H

#include <stddef.h>
#include <stdint.h>

#ifdef _WIN32
#define RIPC_PASS_INBAND 1 /* object values travel in the frame's bytes */
#define RIPC_PASS_LARGE  1 /* large-message buffers can be handed over */
#else
#define RIPC_PASS_INBAND 0
#define RIPC_PASS_LARGE  1
#endif

/* Objects one frame hands over at most (WELCOME: segment, two bells). */
#define RIPC_PASS_MAX 3

/* What an object is to the receiver: its rights on Windows. */
enum {
    RIPC_PASS_SEGMENT = 1,  /* a ring segment: map read-write, query its size */
    RIPC_PASS_RING_END = 2, /* a doorbell the receiver rings */
    RIPC_PASS_WAIT_END = 3, /* a doorbell the receiver sleeps on */
    RIPC_PASS_PAYLOAD = 4,  /* a large message's buffer: map read-only, query its size */
};

typedef struct ripc__pass_obj {
    intptr_t fd; /* ours: descriptor or handle; stays ours */
    int role;    /* RIPC_PASS_* */
} ripc__pass_obj;

typedef struct ripc__pass {
    intptr_t peer; /* Windows: the peer's process handle; -1 when none (POSIX) */
    int give;      /* we hand objects to the peer (the master) */
} ripc__pass;

/* No peer yet: ps->peer = -1. */
static inline void ripc__pass_init(ripc__pass *ps)
{
    ps->peer = -1;
    ps->give = 0;
}

/*
 * Learn the peer's process from the pid the connection reports (never the
 * one HELLO claims). give: we are to hand objects to it (the master),
 * otherwise we only watch it (a worker). POSIX: nothing to do, 0. Windows:
 * OpenProcess (PROCESS_DUP_HANDLE | SYNCHRONIZE, or SYNCHRONIZE); pid <= 0
 * is -ESRCH; 0 or -errno.
 */
int ripc__pass_open(ripc__pass *ps, int32_t pid, int give);

/* Let go of the peer's process. Safe on an initialised or closed one. */
void ripc__pass_close(ripc__pass *ps);

/* What a wait watches to see the peer end (shm/doorbell.h watch_fd): the
 * control socket on POSIX; the peer's process on Windows (the socket when
 * there is none). */
intptr_t ripc__pass_watch(const ripc__pass *ps, intptr_t sock);

/*
 * Sender, before encoding the frame: make the n objects the peer's.
 * vals[i] gets what the frame's bytes carry for object i (RIPC_PASS_INBAND:
 * the handle's value in the peer's process; 0 otherwise). 0 or -errno (then
 * nothing was given).
 */
int ripc__pass_give(ripc__pass *ps, const ripc__pass_obj *o, int n, uint64_t *vals);

/*
 * Sender: the encoded frame (len bytes, blocking socket) with the objects
 * given by ripc__pass_give (o, vals, n the same). POSIX: the descriptors go
 * attached to the first byte. Windows: the bytes alone; when they cannot be
 * sent, the handles given are closed in the peer again. 0 or -errno
 * (-EPIPE: the peer is gone).
 */
int ripc__pass_send(ripc__pass *ps, intptr_t sock, const void *buf, size_t len,
                    const ripc__pass_obj *o, const uint64_t *vals, int n);

/*
 * Receiver: the objects of a frame whose bytes name n of them (vals, from
 * its payload: RIPC_PASS_INBAND only) and with which fds[0..*nfds) came
 * attached (POSIX only). On success fds[0..n) are ours, in order, and *nfds
 * is n. POSIX: *nfds must already be n. Windows: nothing may have come
 * attached, and each value must be one a handle can have. 0, or -EPROTO
 * (the caller still closes what *nfds counts).
 */
int ripc__pass_take(const uint64_t *vals, int n, int *fds, int *nfds);

/*
 * Sender of a large-message buffer (fd, ours, read-write), before the
 * LARGE frame is encoded: *val is what the frame's header carries for it.
 * POSIX: 0 (the descriptor goes attached). Windows, master: the value of a
 * handle duplicated into the worker with RIPC_PASS_PAYLOAD's rights (it
 * is the worker's from now on: ripc__pass_try_send_one takes it back when
 * the frame cannot go); worker: its own handle's value, which must stay
 * open until the master has taken the message. 0 or -errno.
 */
int ripc__pass_lend(ripc__pass *ps, intptr_t fd, uint64_t *val);

/*
 * Sender: the bytes of a frame that hands over one buffer (fd, and val
 * from ripc__pass_lend), without waiting. POSIX: fd attached to the first
 * byte. Windows: the bytes alone; when they did not all go, a handle lent
 * into the peer is closed there again. Returns as ripc__sock_try_send_fds.
 */
long ripc__pass_try_send_one(ripc__pass *ps, intptr_t sock, const void *buf, size_t len,
                             intptr_t fd, uint64_t val);

/*
 * Receiver: the buffer a frame's header names by val (RIPC_PASS_INBAND
 * only; POSIX descriptors come attached, and this is -EPROTO). Windows,
 * master: a copy pulled out of the worker's process with RIPC_PASS_PAYLOAD's
 * rights, the worker's handle left as it was; worker: val taken as a handle
 * of its own. Nothing here says what the object is: map it with
 * ripc__segment_map_payload, which checks. On success *fd is ours (close
 * it). 0, or -EPROTO (val cannot be a handle, or the worker has no handle
 * by that value); *fd -1 then.
 */
int ripc__pass_borrow(ripc__pass *ps, uint64_t val, int *fd);

#endif /* RIPC_PLATFORM_PASS_H */
