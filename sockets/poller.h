/* SPDX-License-Identifier: MIT */
/*
 * The poller: one thread sleeps until any of a set of descriptors is ready,
 * and the wake handle ends such a sleep from any other thread.
 * Implementations, one per file with the same names (CMake picks one):
 *
 *   sockets/poller_epoll.c  Linux: an epoll set; the wake handle an eventfd.
 *   sockets/poller_poll.c   any POSIX: poll(2) over a table of
 *                           registrations; the wake handle a pipe.
 *   sockets/poller_win32.c  Windows: connection descriptors and plain
 *                           waitable handles (sockets/sock.h, "On
 *                           Windows"), WaitForMultipleObjects with helper
 *                           threads past 62 handles; the wake handle a
 *                           manual-reset event (rfd == wfd).
 *
 * Semantics, the same for both: level-triggered (a descriptor that stays
 * ready is reported by every wait until the condition ends or it is
 * deleted); hang-up and error are reported as RIPC_POLL_IN (the read that
 * follows says which) and RIPC_POLL_HUP, the latter also for a registration
 * that does not watch readability; each registration carries one user pointer, given
 * back with its events. A descriptor is registered at most once per poller.
 *
 * Threads: one thread waits on a poller at a time (its owner). add, mod and
 * del may come from the owner, or from another thread while the owner
 * waits: the change takes effect in that wait (the poll(2) poller ends the
 * wait early, re-reads its table and waits again). A registration deleted
 * after a wait collected its events may still be in that wait's results
 * (epoll); the caller keeps the user pointer valid until its next wait.
 *
 * A descriptor must be deleted before it is closed.
 */
#ifndef RIPC_SOCKETS_POLLER_H
#define RIPC_SOCKETS_POLLER_H

enum {
    RIPC_POLL_IN = 1u,  /* readable, hung up, or in error */
    RIPC_POLL_OUT = 2u, /* writable */
    RIPC_POLL_HUP = 4u, /* reported only: hung up or in error (with RIPC_POLL_IN),
                           also where readability is not watched */
};

typedef struct ripc__poller ripc__poller;

typedef struct ripc__poll_event {
    void *data;      /* the pointer given to add/mod */
    unsigned events; /* RIPC_POLL_IN | RIPC_POLL_OUT: what is ready */
} ripc__poll_event;

/* An empty poller, close-on-exec. 0, -ENOMEM, -EMFILE or -errno; *out is
 * NULL on failure. */
int ripc__poller_open(ripc__poller **out);

/* Free it (its registrations go with it; the descriptors stay open). NULL
 * is fine. No thread may be waiting on it. */
void ripc__poller_close(ripc__poller *pl);

/* Watch fd for events (RIPC_POLL_IN and/or RIPC_POLL_OUT), reporting data.
 * 0, -EEXIST (already watched), -ENOMEM, -EBADF or -errno. */
int ripc__poller_add(ripc__poller *pl, int fd, unsigned events, void *data);

/* Change what a watched fd is watched for, and its pointer. 0, -ENOENT
 * (not watched: nothing is added), or -errno. */
int ripc__poller_mod(ripc__poller *pl, int fd, unsigned events, void *data);

/* Stop watching fd. Not watched, fd < 0, or pl NULL: nothing. */
void ripc__poller_del(ripc__poller *pl, int fd);

/*
 * Wait until a watched descriptor is ready or timeout_ms passes (-1: no
 * limit; 0: just look). Up to max events go to ev (more ready ones wait for
 * the next call; the poll(2) poller rotates where it starts, so none
 * starves). The owner only. The count (0 on timeout), -EINTR when a signal
 * ended the wait, or -errno.
 */
int ripc__poller_wait(ripc__poller *pl, ripc__poll_event *ev, int max, int timeout_ms);

/* A descriptor that is readable while some watched one is ready (the epoll
 * set itself), for callers with an event loop of their own; -ENOTSUP for
 * the poll(2) poller, which has none. */
int ripc__poller_fd(const ripc__poller *pl);

/*
 * The wake handle: a descriptor one thread watches (in a poller, or with
 * poll) and any thread signals. Signals before a drain coalesce into one
 * readiness.
 */
typedef struct ripc__wake {
    int rfd; /* watched: readable while signalled */
    int wfd; /* written by signal (the same fd as rfd for an eventfd) */
} ripc__wake;

/* Both ends non-blocking and close-on-exec. 0 or -errno (w is then closed:
 * both fds -1). */
int ripc__wake_open(ripc__wake *w);
/* Close both ends; a closed or failed handle (fds -1) is fine. */
void ripc__wake_close(ripc__wake *w);
/* Make rfd readable. Any thread; async-signal-safe; never blocks. */
void ripc__wake_signal(ripc__wake *w);
/* Consume every signal so far: rfd is quiet until the next one. */
void ripc__wake_drain(ripc__wake *w);

#endif /* RIPC_SOCKETS_POLLER_H */
