/* SPDX-License-Identifier: MIT */
/*
 * The control channel's sockets: addresses, listen/connect/accept, descriptor
 * passing and peer credentials. One file per concept: sockets/addr.c
 * (parse/format, portable), and for POSIX listen_posix.c (listen, unlink,
 * accept), dial_posix.c (connect), conn_posix.c (send/receive with
 * descriptors, liveness), cred_posix.c (peer credentials), sharing
 * sock_posix.h. Windows: listen_win32.c, dial_win32.c, conn_win32.c
 * (connections, their I/O, shutdown, close), wait_win32.c (readiness,
 * waits), tcp_win32.c (Winsock2), cred_win32.c, sharing sock_win32.h.
 *
 * Every descriptor made here is close-on-exec. Functions return 0 or a
 * negative errno; where a `why` buffer is taken it gets one line of detail.
 *
 * On Windows:
 *   - Descriptors. What listen/connect/accept hand out is a connection
 *     descriptor: an int > 0 with its two low bits set (3, 7, 11, ...),
 *     naming an entry in the process's table of connections (pipe or
 *     socket handle, overlapped reads into a buffer of its own, a pending
 *     write). A kernel handle value is a multiple of 4, so the two never
 *     mix: every call here that takes "any pollable descriptor"
 *     (ripc__sock_wait_many, the poller) also takes a plain waitable
 *     handle as an int (platform/win32.h: a doorbell event, a process
 *     handle), ready for RIPC_SOCK_IN while signalled; a wait that takes
 *     the signal of an auto-reset event puts it back (SetEvent), so it
 *     stays ready until the owner drains it. ripc__sock_close (or
 *     ripc__sock_dispose, ripc__fd_close) frees a connection descriptor;
 *     CloseHandle on it is wrong. Not inheritable.
 *   - Addresses. unix:NAME and a bare NAME are the named pipe
 *     \\.\pipe\ringipc-NAME, NAME as given with '\' turned into '/'
 *     (the pipe name space is one per machine, flat and case-insensitive;
 *     a relative NAME is not resolved against the working directory);
 *     NAME is at most 107 bytes as elsewhere. unix:@name is -ENOTSUP.
 *     tcp:// is Winsock2 (WSAStartup once, by the first call that needs it).
 *   - Pipes are byte mode, overlapped, PIPE_REJECT_REMOTE_CLIENTS; the
 *     first instance is made with FILE_FLAG_FIRST_PIPE_INSTANCE (a name
 *     somebody else holds is -EADDRINUSE: no stale file to reclaim), and
 *     every instance with a DACL that admits the current user alone.
 *     ripc__sock_unlink does nothing (a pipe name goes with its last
 *     handle); a->dev/a->ino stay 0.
 *   - Blocking: every connection behaves the same whatever
 *     ripc__sock_set_nonblock said (which is a no-op returning 0): the
 *     blocking calls wait (bounded), the try_ calls never do. A try_send
 *     that returns n has copied n bytes into the connection's write buffer
 *     and started the write; RIPC_SOCK_OUT holds while no write is pending.
 *   - Descriptor passing: send_fds / try_send_fds with nfds > 0 are
 *     -ENOTSUP, and nothing arrives with received bytes (*nfds is 0):
 *     handles travel by DuplicateHandle into the peer's process
 *     (platform/win32.h), their values in the messages.
 *   - Shutdown: RIPC_SOCK_SHUT_RDWR ends every wait on the connection and
 *     breaks it for the peer (a pipe server instance is disconnected, a
 *     client's pending I/O cancelled and its handle closed under it; TCP
 *     shutdown(SD_BOTH)); later calls say -EPIPE. RIPC_SOCK_SHUT_WR on TCP
 *     is shutdown(SD_SEND); a pipe has no half-close, so there it waits
 *     (at most 1 s) for the pending write and then does what SHUT_RDWR
 *     does: the peer reads what was sent and then the end of the stream.
 *   - Credentials: see ripc__sock_peer_cred and ripc__sock_peer_same_user.
 */
#ifndef RIPC_SOCKETS_SOCK_H
#define RIPC_SOCKETS_SOCK_H

#include <stddef.h>
#include <stdint.h>

enum {
    RIPC_ADDR_UNIX = 1,
    RIPC_ADDR_TCP = 2,
};

#define RIPC_ADDR_PATH_MAX 108 /* sizeof(sun_path) on Linux */
#define RIPC_ADDR_HOST_MAX 256

typedef struct ripc__addr {
    int kind;                      /* RIPC_ADDR_UNIX or RIPC_ADDR_TCP */
    char path[RIPC_ADDR_PATH_MAX]; /* unix: NUL-terminated path, or "@name": the
                                      Linux abstract socket "name" */
    char host[RIPC_ADDR_HOST_MAX]; /* tcp: host name or literal (IPv6 without []) */
    uint16_t port;                 /* tcp: 1..65535 (0 only when listening: any port) */
    uint64_t dev, ino;             /* unix: identity of the socket file made by
                                      ripc__sock_listen (0 until then; parse zeroes) */
} ripc__addr;

/*
 * Parse "unix:/path", "unix:relative/path", "unix:///path" (URL style: the
 * absolute path is what follows "unix://"; "unix://tmp/x" is refused, as it
 * would silently mean the relative path "tmp/x"), "unix:@name" (Linux
 * abstract namespace: no file; -ENOTSUP elsewhere), a bare path (the same
 * as after "unix:", "@name" included), or "tcp://host:port" /
 * "tcp://[v6addr]:port" (port 0..65535). *a is zeroed first. Errors: -EINVAL
 * (empty, unknown scheme, missing/bad port, empty or too long host, unix://
 * without an absolute path, empty abstract name), -ENAMETOOLONG (path or
 * "@name" longer than 107 bytes), -ENOTSUP. why says which.
 */
int ripc__addr_parse(ripc__addr *a, const char *url, char *why, size_t why_len);

/* A Linux abstract unix name ("@name"): no file, so no mode keeps anybody
 * from binding it first. */
static inline int ripc__addr_abstract(const ripc__addr *a)
{
    return a->kind == RIPC_ADDR_UNIX && a->path[0] == '@';
}

/* Format back to a URL ("unix:/p", "unix:@name" or "tcp://h:port"); returns
 * snprintf's count. */
int ripc__addr_format(const ripc__addr *a, char *buf, size_t len);

/*
 * Listen. Unix abstract name: -EADDRINUSE when taken, nothing else (no file,
 * no mode, dev/ino stay 0). Unix path: if it exists and is a socket that nobody answers on
 * (connect gives ECONNREFUSED), it is stale and removed; if a server answers
 * -EADDRINUSE; if the path is not a socket -EEXIST. The socket file is made
 * mode 0600 (umask-independent) and its device/inode are stored in a->dev and
 * a->ino for ripc__sock_unlink. TCP: SO_REUSEADDR, backlog 128; port 0 picks
 * one, and *a is updated with the port actually bound. *fd is non-blocking.
 * On failure nothing is left open and no file is left behind.
 */
int ripc__sock_listen(ripc__addr *a, intptr_t *fd, char *why, size_t why_len);

/* Remove the unix socket file made by ripc__sock_listen on lfd, but only if
 * the path still names that very socket (same device and inode as recorded in
 * a->dev/a->ino; pass the ripc__addr that listen filled). Call it before
 * closing lfd: the open listener pins the inode so its number cannot have been
 * reused; with lfd closed (or not bound to a->path) nothing is removed and the
 * file is left for the next listen to reclaim as stale. Does not close lfd.
 * No-op for TCP or when a->dev/a->ino were never filled. */
void ripc__sock_unlink(const ripc__addr *a, intptr_t lfd);

/*
 * Connect, waiting at most timeout_ms (-1 forever). The returned *fd is
 * blocking. TCP gets TCP_NODELAY. A missing unix path or a refused TCP port
 * is -ECONNREFUSED; a timeout -ETIMEDOUT.
 */
int ripc__sock_connect(const ripc__addr *a, intptr_t *fd, int timeout_ms, char *why,
                       size_t why_len);

/* Accept one connection (non-blocking listener): -EAGAIN when none is
 * pending. The new *fd is blocking and close-on-exec; TCP gets NODELAY. */
int ripc__sock_accept(intptr_t lfd, intptr_t *fd);

int ripc__sock_set_nonblock(intptr_t fd, int on);
/* Ask for a send buffer of at least bytes (SO_SNDBUF; the system may cap
 * it), so that one non-blocking send of that many fits. 0 or -errno. */
int ripc__sock_set_sndbuf(intptr_t fd, size_t bytes);
void ripc__sock_close(intptr_t fd);

/* Make a descriptor (a socket, pipe or any file) close-on-exec, and
 * non-blocking when nonblock; for descriptors made without atomic flags.
 * 0 or -errno. */
int ripc__fd_prepare(int fd, int nonblock);

/* Shut a connected socket down: RIPC_SOCK_SHUT_WR ends our sending (the peer
 * reads the end of the stream after what was sent), RIPC_SOCK_SHUT_RDWR
 * both ways (ends every wait of another thread on it). Errors ignored (a
 * socket already shut or reset needs nothing more). */
enum { RIPC_SOCK_SHUT_WR = 1, RIPC_SOCK_SHUT_RDWR = 2 };
void ripc__sock_shutdown(intptr_t fd, int how);

/*
 * Wait for sockets (or any pollable descriptor: pipes, doorbell ends).
 * events: RIPC_SOCK_IN (readable), RIPC_SOCK_OUT (writable), RIPC_SOCK_HUP
 * (the peer ended its stream, where the system tells: Linux POLLRDHUP;
 * elsewhere only a full hang-up shows). ready gets what holds, out of
 * those asked, plus RIPC_SOCK_HUP for an error or hang-up, asked or not.
 * Returns how many descriptors are ready (> 0), 0 when the deadline
 * (shm/clock.h) passed first, or -errno; a signal does not end the wait.
 * A poll(2) on the caller's stack: for a few descriptors, not a loop's.
 * ripc__sock_wait is the one-descriptor form: ready's mask, 0 or -errno.
 */
enum { RIPC_SOCK_IN = 1, RIPC_SOCK_OUT = 2, RIPC_SOCK_HUP = 4 };
#define RIPC_SOCK_WAIT_MAX 64 /* n at most: more is -EINVAL */
typedef struct ripc__sock_watch {
    intptr_t fd;
    int events;
    int ready;
} ripc__sock_watch;
int ripc__sock_wait_many(ripc__sock_watch *w, int n, uint64_t deadline);
int ripc__sock_wait(intptr_t fd, int events, uint64_t deadline);

/*
 * Send all len bytes (blocking socket; loops over partial writes, retries
 * EINTR, never raises SIGPIPE), attaching nfds descriptors (<= 8) to the first
 * byte with SCM_RIGHTS. -EPIPE when the peer is gone.
 */
int ripc__sock_send_fds(intptr_t fd, const void *buf, size_t len, const int *fds, int nfds);

/* Descriptors one received message may carry (Linux: SCM_MAX_FD). Every
 * receive leaves room for that many, so the kernel never drops any in the
 * receiving thread (see sockets/closer.h); only a full descriptor table
 * still makes it drop the rest (MSG_CTRUNC). */
#define RIPC_SOCK_RECV_FDS 253

/*
 * Receive exactly len bytes (blocking; waits at most timeout_ms in total, -1
 * forever). Descriptors that arrive with any of those bytes are stored in
 * fds[0..max_fds) and counted in *nfds (close-on-exec); the caller owns them.
 * More than max_fds descriptors, or a truncated control message: -EPROTO.
 * EOF before len bytes: -EPIPE; timeout: -ETIMEDOUT. On any failure every
 * descriptor that arrived is disposed of (ripc__fd_dispose) and *nfds is 0
 * (fds/nfds may be NULL/0 when no descriptors are expected).
 */
int ripc__sock_recv_fds(intptr_t fd, void *buf, size_t len, int *fds, int max_fds, int *nfds,
                        int timeout_ms);

/*
 * The same without waiting, one system call each (for callers that must not
 * block, e.g. holding a lock). try_send: bytes sent (> 0; descriptors went
 * with them), -EAGAIN (nothing sent), -EPIPE or -errno. try_recv_fds: bytes
 * read (> 0), 0 at end of stream, -EAGAIN, -EPIPE or -errno; descriptors
 * that arrive are appended to fds[*nfds .. max_fds) (max_fds <=
 * RIPC_SOCK_RECV_FDS; close-on-exec, the caller owns them and *nfds counts
 * them); more than fit, or truncated control data, is -EPROTO (the extra
 * ones are disposed of, the ones kept stay counted).
 */
long ripc__sock_try_send_fds(intptr_t fd, const void *buf, size_t len, const int *fds, int nfds);
/* try_send of two pieces in one call (a frame's header and its payload):
 * bytes sent from a then b (> 0), -EAGAIN, -EPIPE or -errno. */
long ripc__sock_try_send2(intptr_t fd, const void *a, size_t alen, const void *b, size_t blen);
long ripc__sock_try_recv_fds(intptr_t fd, void *buf, size_t len, int *fds, int max_fds, int *nfds);

/* recv(fd, buf, len, MSG_DONTWAIT) for a socket whose peer may attach
 * descriptors where none belong: a recvmsg that takes them and disposes of
 * them (ripc__fd_dispose) rather than let the kernel drop them here. Bytes
 * read (> 0), 0 at end of stream, -EAGAIN, -EPIPE or -errno; -EPROTO when
 * descriptors came (the bytes that came with them are in buf, but the
 * peer broke the protocol: no caller expects any here). */
long ripc__sock_try_recv(intptr_t fd, void *buf, size_t len);

/* Send / receive without descriptors: thin wrappers over the blocking two. */
int ripc__sock_send_all(intptr_t fd, const void *buf, size_t len);
int ripc__sock_recv_all(intptr_t fd, void *buf, size_t len, int timeout_ms);

/*
 * Credentials of the process at the other end of a unix socket: Linux
 * SO_PEERCRED (uid, gid, pid), or getpeereid (sockets/peereid.h: uid and
 * gid; *pid is -1, unknown) in the portable build and elsewhere. Any of
 * uid, gid, pid may be NULL. -ENOTSUP for TCP.
 */
int ripc__sock_peer_cred(intptr_t fd, uint32_t *uid, uint32_t *gid, int32_t *pid);

/*
 * Windows: there are no uids. ripc__sock_peer_cred on a pipe gives the
 * peer's process id (GetNamedPipeClientProcessId on the server's end,
 * GetNamedPipeServerProcessId on the client's) and uid 0 when that
 * process runs as our user (the user SIDs of the two tokens are equal),
 * RIPC_UID_OTHER otherwise, gid 0: so ripc__self_euid() (0 there) and
 * ripc__uid_allowed admit the same user alone, as on POSIX. A peer whose
 * token cannot be read (it ended, or we may not open it) is -EACCES: the
 * pid is known but not who runs it. ripc__sock_peer_same_user says the
 * same as a yes/no (Windows only): 1 same user, 0 another, or -errno
 * (-ENOTSUP for TCP). A pid names the process while
 * it runs; one that ended may be reused, which is why a pipe whose peer
 * ended reads as broken before anybody asks.
 */
#define RIPC_UID_OTHER 0xfffffffeu
#ifdef _WIN32
int ripc__sock_peer_same_user(intptr_t fd);
#endif

/*
 * Is the peer still there? 1 = alive, 0 = gone (EOF, HUP, error). Never
 * blocks and never consumes data (MSG_PEEK).
 */
int ripc__sock_alive(intptr_t fd);

#endif /* RIPC_SOCKETS_SOCK_H */
