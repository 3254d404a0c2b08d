/* SPDX-License-Identifier: MIT */
/*
 * Closing what a peer may have handed us, away from the threads that serve.
 * POSIX implementation: sockets/closer_posix.c; Windows: closer_win32.c,
 * where every close is inline (nothing arrives with bytes there).
 *
 * The last close() of a file runs its release in the closing thread, and a
 * peer chooses how long that takes: a TCP socket with SO_LINGER and unsent
 * data holds it for the linger time, a file on a stuck FUSE mount for ever.
 * On Linux that thread is also the one that:
 *   - read()s or recv()s a unix socket where the peer attached descriptors
 *     (the kernel drops them in the reader),
 *   - receives more descriptors than its control buffer holds, or than its
 *     descriptor table has room for (MSG_CTRUNC: the rest are dropped there),
 *   - closes a unix socket with descriptors still queued in it (they are
 *     released with it).
 * So on a socket a peer can write to, every read is a recvmsg that takes
 * descriptors (ripc__sock_try_recv: room for the kernel's maximum of one
 * message), and what came is given to ripc__fd_dispose; such a socket is
 * closed with ripc__sock_dispose.
 *
 * ripc__fd_dispose closes at once only what it can tell is cheap (a memfd
 * or other sealable shmem file: its release frees pages and waits for
 * nobody); everything else goes to the closers, threads of the process
 * started as they are needed: one at the first such descriptor, another
 * (up to RIPC_CLOSER_THREADS) whenever more are queued than closers wait
 * for work. A closer turns SO_LINGER off on the sockets it gets (the
 * kernel then sends what is left in the background instead of holding the
 * close), so one lingering socket does not hold up those queued behind it;
 * a file whose close blocks (a stuck FUSE mount, a unix socket with such
 * descriptors queued in it) holds one closer, and RIPC_CLOSER_THREADS of
 * them hold all.
 *
 * What the closers hold is bounded by their users, not here (a descriptor
 * handed over must be kept until it can be closed somewhere): a master
 * drops every peer that attaches a descriptor where the protocol has none
 * (so a peer gets at most two messages' worth, 2 x RIPC_SOCK_RECV_FDS, to
 * the closers before it is gone: the one that broke the rules, and one
 * read as its socket is disposed of), and accepts no connection while
 * ripc__fd_dispose_full() says the closers hold RIPC_CLOSER_MAX or more, so
 * a peer cannot come back to feed them more while they are stuck.
 *
 * The closers never keep the process alive (detached, the application's
 * signals blocked), and the library never waits for them:
 * ripc_server_close returns with such descriptors possibly still open (a
 * peer could make that wait last for ever); a test that counts descriptors
 * calls ripc__fd_dispose_wait first.
 *
 * Descriptors from honest peers (memfds, and sockets with nothing but those
 * queued) are all closed inline, so an honest master's count is exact.
 * It allocates only under its lock, so fork() never waits for a close in
 * progress; in a child, what was queued stays queued and a new closer takes
 * it at the child's first hand-over (what the parent's closers were closing
 * as it forked stays open in the child).
 *
 * Any thread may call these, concurrently.
 */
#ifndef RIPC_SOCKETS_CLOSER_H
#define RIPC_SOCKETS_CLOSER_H

#include <stdint.h>

/* Closer threads at most, per process. */
#define RIPC_CLOSER_THREADS 4
/* Descriptors handed over and not yet closed at which
 * ripc__fd_dispose_full() says so. */
#define RIPC_CLOSER_MAX 128

/* Close fd, which a peer may have passed us, without running its release
 * on this thread unless it is known to be cheap. Takes fd; never fails (if
 * no closer can be had, fd is closed here). fd < 0: nothing. */
void ripc__fd_dispose(int fd);

/* Register the closers' fork handlers now (once; they are otherwise
 * registered at the first hand-over), so that handlers registered later
 * run their prepare before ours (src/tables_urcu.c). POSIX only. */
void ripc__fd_fork_register(void);

/* Wait until every descriptor handed to the closer so far is closed. For
 * tests that count descriptors (no deadline: a descriptor whose release
 * blocks makes this block as long); the library itself never waits. */
void ripc__fd_dispose_wait(void);

/* Do the closers hold RIPC_CLOSER_MAX descriptors or more (handed over, not
 * yet closed)? Then a master takes no new connection (sockets/closer.h). */
int ripc__fd_dispose_full(void);

/*
 * Close our end of a socket whose peer may have queued descriptors in it:
 * read what is queued (descriptors that come go to ripc__fd_dispose), then
 * close it here if nothing but cheap ones came, or hand it to the closer
 * (with the rest of its queue) otherwise. Shut it down first (SHUT_RD at
 * least, on a unix socket) when the peer must not be able to queue more
 * after the last read. Takes fd. fd < 0: nothing.
 */
void ripc__sock_dispose(int fd);

/* Close a descriptor of our own, or one whose release is known to be cheap
 * (a mapped memfd, a doorbell end we made), on this thread. fd < 0:
 * nothing. */
void ripc__fd_close(int fd);

/* A descriptor held in reserve (on /dev/null, close-on-exec), to be closed
 * when the table is full so that one more can be had for a moment: the
 * descriptor, or -errno. */
int ripc__fd_reserve(void);

/* The descriptor limit (RLIMIT_NOFILE): a master holds 3 descriptors per
 * worker, and the usual soft limit of 1024 stops it after a few hundred.
 * Raise the soft limit to the hard one (once per process), unless the
 * environment says RIPC_NOFILE=keep. 0, or -errno. */
int ripc__fd_limit_raise(void);
/* The soft limit now (0: none known, or unlimited). */
uint64_t ripc__fd_limit(void);

#endif /* RIPC_SOCKETS_CLOSER_H */
