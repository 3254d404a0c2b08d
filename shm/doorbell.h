/* SPDX-License-Identifier: MIT */
/*
 * Doorbells: how one side wakes the other when (and only when) it sleeps.
 * The sleep flags and the eventcount protocol live with the ring (see
 * shm/ring_internal.h); a doorbell is just the kernel object the sleeper
 * blocks on. One file per kind: doorbell_eventfd.c (Linux),
 * doorbell_futex.c (Linux), doorbell_socket.c (any POSIX); on Windows
 * doorbell_win32.c, the event kind alone.
 *
 *   kind                  wait object             ring                  pollable fd
 *   RIPC_DB_EVENTFD       eventfd (one fd)        write 1               yes
 *   RIPC_DB_FUTEX         a u32 word in shared    ++word, FUTEX_WAKE    no
 *                         memory (the ring's wait
 *                         line)
 *   RIPC_DB_SOCKET        socketpair: the sleeper write 1 byte          yes
 *                         holds the read end,     (EAGAIN = already
 *                         the ringer the write    pending: fine)
 *                         end
 *   RIPC_DB_EVENT         an auto-reset event     SetEvent              no (a waitable
 *                         (Windows; one handle                          handle)
 *                         both waits and rings)
 *
 * A doorbell is made by the master, which passes the descriptors to the
 * worker over SCM_RIGHTS (on Windows it duplicates the event's handle into
 * the worker's process, platform/win32.h; the fd fields hold handles).
 * Rings may come at any time, from any thread; a ring that finds the
 * sleeper awake is simply consumed by its next wait. Waits are by one
 * thread at a time.
 */
#ifndef RIPC_SHM_DOORBELL_H
#define RIPC_SHM_DOORBELL_H

#include <stdatomic.h>
#include <stdint.h>

enum {
    RIPC_DB_NONE = 0,
    RIPC_DB_EVENTFD = 1,
    RIPC_DB_FUTEX = 2,
    RIPC_DB_SOCKET = 3,
    RIPC_DB_EVENT = 4,
};

/* Capability bits (also sent in HELLO): which kinds this build supports. */
#define RIPC_DB_CAP(kind) (1u << (kind))

typedef struct ripc__doorbell {
    int kind;
    int wait_fd;            /* eventfd / read end; -1 if none */
    int ring_fd;            /* eventfd (same fd) / write end; -1 if none */
    _Atomic uint32_t *word; /* futex (or socket + word): the shared word, else NULL */
} ripc__doorbell;

/* Bitmask of RIPC_DB_CAP(kind) for the kinds compiled in and usable. */
uint32_t ripc__doorbell_caps(void);
/* The kind's name, for messages (every platform's, so inline here). */
static inline const char *ripc__doorbell_name(int kind)
{
    switch (kind) {
    case RIPC_DB_NONE:
        return "none";
    case RIPC_DB_EVENTFD:
        return "eventfd";
    case RIPC_DB_FUTEX:
        return "futex";
    case RIPC_DB_SOCKET:
        return "socket";
    case RIPC_DB_EVENT:
        return "event";
    default:
        return "unknown";
    }
}

/*
 * Make a doorbell of `kind`. For RIPC_DB_FUTEX pass the shared word (it must
 * live in memory both processes map); the others ignore it. The sleeper's
 * side and the ringer's side are the same struct in one process; to hand one
 * side to a peer, send wait_fd or ring_fd. Returns 0, -ENOSYS (kind not
 * built), -EMFILE, -ENOMEM.
 */
int ripc__doorbell_open(ripc__doorbell *db, int kind, _Atomic uint32_t *word);

/*
 * Build the peer's end from received descriptors: a sleeper's end needs
 * wait_fd (ring_fd -1), a ringer's end ring_fd (wait_fd -1); eventfd uses the
 * same fd for both. Takes ownership of the fds on success only.
 */
int ripc__doorbell_adopt(ripc__doorbell *db, int kind, int wait_fd, int ring_fd,
                         _Atomic uint32_t *word);

/* Close what this side holds; safe on a zeroed or closed doorbell (fds < 0
 * or kind NONE are skipped: the struct must have been opened or adopted, or
 * zeroed with kind = RIPC_DB_NONE). */
void ripc__doorbell_close(ripc__doorbell *db);

/* The peer is not to be trusted any more (the master drops a worker): shut
 * a socket doorbell down, so that the peer can queue nothing more in it,
 * descriptors included, before ripc__doorbell_close reads what is queued
 * (sockets/closer.h). The peer's waits see the hang-up. Other kinds: no-op.
 * Not for a side that may share the sockets with a forked process still
 * using them. */
void ripc__doorbell_hangup(ripc__doorbell *db);

/* Wake the sleeper. Async-signal-safe, never blocks, never fails visibly. */
void ripc__doorbell_ring(ripc__doorbell *db);

/*
 * Sleep until the doorbell rings, watch_fd (the peer's control socket; -1 =
 * none) becomes readable or hangs up, or timeout_ms passes (-1 = forever).
 * On Windows watch_fd is a waitable handle instead: the peer's process
 * (signalled when it ends, however it ends) or an event the control
 * channel's reader sets.
 * Pending rings are consumed. Returns 1 when rung, 2 when watch_fd is ready
 * (the caller finds out whether that is data or death), 0 on timeout, or a
 * negative errno. Spurious returns of 1 are allowed: callers re-check their
 * condition. The futex kind cannot poll watch_fd while asleep: it sleeps in
 * slices of at most 50 ms and polls watch_fd between them, and before the
 * first unless this thread looked at the same watch_fd less than a clock
 * tick ago (a request loop sleeps thousands of times a second: one system
 * call less per sleep; a watch_fd that became ready since is seen after one
 * slice).
 * `seen` is for the futex kind: the word's value read before the caller
 * armed its sleep flag (the wait returns at once if the word has moved on).
 */
int ripc__doorbell_wait(ripc__doorbell *db, uint32_t seen, int watch_fd, int timeout_ms);

/*
 * A socket doorbell that also has a futex word (db->word, the m->w ring's
 * data word, set after open/adopt where the handshake agreed on it:
 * RIPC_CAP_SLEEP_WORD). The worker then picks per sleep, by the value of
 * its sleep flag (shm/ring_layout.h), how it wants to be woken: on the
 * socket (RIPC_SLEEP_BELL: a descriptor ripc_client_fd() users can poll) or
 * on the word (RIPC_SLEEP_WORD: one syscall on each side, against a send and
 * a poll + recv for the socket; block-mode round trip 1.02-1.09x eventfd ->
 * 0.92-0.98x here). ring_word bumps and wakes the word (plain ring when
 * there is none); wait_word sleeps on it like the futex kind (50 ms slices,
 * watch_fd polled between them).
 */
void ripc__doorbell_ring_word(ripc__doorbell *db);
int ripc__doorbell_wait_word(ripc__doorbell *db, uint32_t seen, int watch_fd, int timeout_ms);

/* Read the futex word (none: 0), to pass as `seen` to a later wait. */
uint32_t ripc__doorbell_seq(const ripc__doorbell *db);

/* Consume pending rings without sleeping (eventfd read / socket drain).
 * -EPIPE when the ringing end is closed (socket kind: every ringer is gone,
 * which for a worker means the master died or dropped it), -EPROTO when a
 * ring came with descriptors attached (socket kind: the ringer broke the
 * protocol; they are disposed of), else 0. */
int ripc__doorbell_drain(ripc__doorbell *db);

#endif /* RIPC_SHM_DOORBELL_H */
