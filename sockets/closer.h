/* SPDX-License-Identifier: MIT */
/*
 * Closing what a peer may have handed us, away from the threads that serve.
 * POSIX implementation: sockets/closer_posix.c.
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
 * nobody); everything else goes to the closer, one thread per process
 * started at the first such descriptor. The closer turns SO_LINGER off on
 * the sockets it gets (the kernel then sends what is left in the background
 * instead of holding the close), so one lingering socket does not hold up
 * those queued behind it; a file whose close blocks holds the closer alone.
 * The closer never keeps the process alive (detached, all signals blocked),
 * and the library never waits for it: ripc_server_close returns with such
 * descriptors possibly still open (a peer could make that wait last for
 * ever); a test that counts descriptors calls ripc__fd_dispose_wait first.
 * Descriptors from honest peers (memfds, and sockets with nothing but those
 * queued) are all closed inline, so an honest master's count is exact.
 * It allocates only under its lock, so fork() never waits for a close in
 * progress; in a child, what was queued stays queued and a new closer takes
 * it at the child's first hand-over.
 *
 * Any thread may call these, concurrently.
 */
#ifndef RIPC_SOCKETS_CLOSER_H
#define RIPC_SOCKETS_CLOSER_H

/* Close fd, which a peer may have passed us, without running its release
 * on this thread unless it is known to be cheap. Takes fd; never fails (if
 * no closer can be had, fd is closed here). fd < 0: nothing. */
void ripc__fd_dispose(int fd);

/* Wait until every descriptor handed to the closer so far is closed. For
 * tests that count descriptors (no deadline: a descriptor whose release
 * blocks makes this block as long); the library itself never waits. */
void ripc__fd_dispose_wait(void);

/*
 * Close our end of a socket whose peer may have queued descriptors in it:
 * read what is queued (descriptors that come go to ripc__fd_dispose), then
 * close it here if nothing but cheap ones came, or hand it to the closer
 * (with the rest of its queue) otherwise. Shut it down first (SHUT_RD at
 * least, on a unix socket) when the peer must not be able to queue more
 * after the last read. Takes fd. fd < 0: nothing.
 */
void ripc__sock_dispose(int fd);

#endif /* RIPC_SOCKETS_CLOSER_H */
