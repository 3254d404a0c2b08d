/* SPDX-License-Identifier: MIT */
/*
 * ringipc: one master (ripc_server), many workers (ripc_client), messages
 * through per-worker shared-memory rings, a socket control channel beside.
 *
 * Errors: 0 (or a count) on success, a negative errno on failure:
 *   -EAGAIN      would block (ring full / nothing to receive, timeout 0)
 *   -ETIMEDOUT   the timeout passed
 *   -EPIPE       the peer is gone (or said goodbye)
 *   -EMSGSIZE    larger than the negotiated limit
 *   -EPROTO      the peer broke the protocol or corrupted shared memory
 *   -EPROTONOSUPPORT  no common protocol version (REJECT)
 *   -EACCES      credentials refused (REJECT), or no access to a socket path
 *   -ECONNREFUSED nobody listens at the URL
 *   -ENOENT      no such peer (server send), no such directory (server open),
 *                or no handler for a request's type (client request)
 *   -EINVAL      a bad argument: a NULL, a reserved type, an option value
 *                out of range, a malformed URL (the _ex calls say which)
 *   -ECANCELED   the server is closing (ripc_server_close)
 *   -EDEADLK     ripc_server_close was called from the server's own dispatch
 *                thread (run/poll return it; see ripc_server_close)
 *   -EBUSY       another thread is inside a call on the same client, or
 *                the client holds a loan (ripc_client_reserve)
 *   -ENOMEM, -EADDRINUSE
 * A request answered with ripc_reply_error() returns the code the master's
 * handler chose (ripc_client_error() has its text). ripc_strerror() gives
 * the text. Timeouts are milliseconds: 0 = do not
 * wait, -1 = wait forever (but a dead peer still ends the wait with -EPIPE).
 *
 * Threads. A server may be used from any thread: send, broadcast, reply,
 * the loan calls and stop are thread-safe; poll and run are not concurrent
 * with each other. A client handle is used by one thread at a time:
 * ripc_client_send, _request and _recv (and the loan calls, _reserve,
 * _commit, _abandon) called while another thread is inside one of them on
 * the same client return -EBUSY at once and change nothing (nothing is
 * sent, no message or reply is taken). Handing a client from thread to
 * thread between calls is fine. ripc_server_close may run while other
 * threads are inside the server's calls: see there.
 *
 * Signals. Where segments come from shm_open (memfd_create refused by a
 * seccomp profile or missing, as on older kernels and other systems, or
 * -DRIPC_SEGMENT_DEFAULT=shm_open) a worker can truncate its
 * segment, and the master's next access to it raises SIGBUS; the library
 * catches that and drops the worker (-EPROTO), but only in a thread that
 * does not block SIGBUS: the kernel kills a process whose thread faults
 * with the signal blocked. ripc_server_run unblocks SIGBUS in its dispatch
 * threads, the calling thread included (its mask is back when run
 * returns), and the library's other threads do the same. Threads that call
 * ripc_server_poll, ripc_server_send, ripc_server_send_batch,
 * ripc_server_broadcast, ripc_reply, ripc_reply_error, the server's loan
 * calls (and write into a loan's buffer) or ripc_server_close must not
 * block SIGBUS (a program that blocks every signal to sigwait() for them
 * should leave SIGBUS out). Large messages in
 * shared memory travel in such segments too there (in either direction: a
 * worker can cut the one it sent while the master reads it), under the same
 * rule. The library installs its SIGBUS handler with the first such segment
 * (in a worker too, whose large messages use them) and passes
 * every SIGBUS not about its segments on to the handler installed before
 * (or the default action; one ignored before stays ignored when sent).
 *
 * Fork. A master commonly forks its workers after ripc_server_open(). The
 * child may open clients but must never use the server it inherited;
 * ripc_server_close() on it there does nothing (it releases nothing the
 * parent shares: no stop, no goodbyes, the socket file stays; the child's
 * copies of its descriptors are close-on-exec). It may open a server of
 * its own, at any time, with or without exec(). Once a worker has left,
 * the library runs a thread that frees what departed workers leave behind,
 * until the last server is closed (a library unloaded after that leaves no
 * thread); its pthread_atfork() handlers hold that thread between two
 * frees across fork() (a fork never finds it inside the
 * allocator) and run liburcu-bp's fork handlers, so a child's server never
 * waits for a thread that did not come along. A program that uses
 * liburcu-bp itself must therefore not call urcu_bp_before_fork() and its
 * two siblings around fork() a second time.
 * Every descriptor the library opens is close-on-exec.
 */
#ifndef RINGIPC_RINGIPC_H
#define RINGIPC_RINGIPC_H

#include <stddef.h>
#include <stdint.h>

#include "ringipc/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Version of these headers. The shared library's SONAME is
 * libringipc.so.<RIPC_VERSION_MAJOR>, and the CMake package and pkg-config
 * module carry the same MAJOR.MINOR.PATCH (CMakeLists.txt sets all of them
 * from its project() line, and refuses to configure when these disagree).
 * Within one major version the API only grows (CHANGELOG.md says what
 * changed, and when a program must be rebuilt).
 */
#define RIPC_VERSION_MAJOR 0
#define RIPC_VERSION_MINOR 1
#define RIPC_VERSION_PATCH 0
/* One comparable number: (major << 16) | (minor << 8) | patch. */
#define RIPC_VERSION_NUMBER                                                                        \
    ((RIPC_VERSION_MAJOR << 16) | (RIPC_VERSION_MINOR << 8) | RIPC_VERSION_PATCH)

/*
 * Version of the library actually loaded, which may be newer than the
 * headers a program was built with: ripc_version() returns
 * "MAJOR.MINOR.PATCH" (static storage, never NULL), ripc_version_number()
 * the number as RIPC_VERSION_NUMBER builds it. Any thread, any time.
 */
RIPC_API const char *ripc_version(void);
RIPC_API unsigned ripc_version_number(void);

typedef struct ripc_server ripc_server;
typedef struct ripc_client ripc_client;
typedef struct ripc_peer ripc_peer; /* a connected worker, as the master sees it */

enum { RIPC_ONEWAY = 0, RIPC_REQUEST = 1, RIPC_REPLY = 2 };
enum { RIPC_TRANSPORT_AUTO = 0, RIPC_TRANSPORT_SHM = 1, RIPC_TRANSPORT_SOCKET = 2 };
enum { RIPC_WAIT_ADAPTIVE = 0, RIPC_WAIT_SPIN = 1, RIPC_WAIT_BLOCK = 2 };
/*
 * What a worker sleeps on (ripc_options.doorbell; shared-memory mode only).
 *   AUTO     a socketpair plus a futex word in the segment: the library's
 *            own waits sleep on the word, ripc_client_fd() users poll the
 *            socket. Where futexes are missing, the socketpair alone.
 *   SOCKET   the socketpair alone.
 *   FUTEX    the futex word alone: no descriptor (ripc_client_fd() is
 *            -ENOTSUP).
 *   EVENTFD  accepted, and served as SOCKET: a master never hands a worker
 *            an eventfd, since a worker sharing one could make the master's
 *            wake-ups block (docs/design.md, doorbells).
 * ripc_client_transport_reason() names the doorbell a connection got.
 */
enum {
    RIPC_DOORBELL_AUTO = 0,
    RIPC_DOORBELL_EVENTFD = 1,
    RIPC_DOORBELL_FUTEX = 2,
    RIPC_DOORBELL_SOCKET = 3,
};

/* Reasons given to the `left` callback (negative errno style). */
#define RIPC_LEFT_BYE 0 /* the worker said goodbye (ripc_client_close) */
/* -EPIPE: connection lost (EOF, killed); -EPROTO: protocol error or corrupt
 * shared memory; -ECANCELED: the server is closing; -ETIMEDOUT: socket mode,
 * stalled in the middle of a frame for 2 s while holding receive memory
 * that other workers wait for (docs/design.md, socket mode). */

#define RIPC_TYPE_RESERVED 0xF000u /* types >= this are the library's */

/*
 * Options. The open calls check them: a value out of range is -EINVAL, and
 * the _ex calls name the field and the value in `why`. So is a RIPC_TRANSPORT
 * environment variable other than "auto", "shm" or "socket" (unset or empty:
 * the option decides). New fields are only ever appended, and zero always
 * means the default, so zero-initialised code keeps its meaning when
 * rebuilt against a newer header.
 */
typedef struct ripc_options {   /* all-zero = defaults */
    size_t ring_bytes;          /* per direction, power of two in [4 KiB, 1 GiB] (default 1 MiB) */
    size_t max_inline;          /* larger payloads take the control channel (default, and at
                                   most: the ring's largest record; more means that) */
    uint64_t max_message;       /* largest message accepted (default 64 MiB; at least 256,
                                   so that an error reply always fits) */
    int transport;              /* RIPC_TRANSPORT_* (0..2); env RIPC_TRANSPORT overrides */
    int wait;                   /* RIPC_WAIT_* (0..2) */
    uint32_t spin_us;           /* adaptive: spin this long before sleeping (default 50,
                                   at most 1000000) */
    const char *name;           /* worker name shown by tools (up to 63 bytes are kept) */
    int doorbell;               /* RIPC_DOORBELL_* (0..3): what the worker sleeps on */
    const uint32_t *allow_uids; /* uids accepted besides our own (effective) uid: server,
                                   a worker's; client, a unix:@name master's */
    size_t n_allow_uids;        /* entries in allow_uids (not NULL when this is not 0) */
    int allow_any_uid;          /* accept every local uid (not the default): server, of
                                   workers; client, of a unix:@name master */
    int connect_timeout_ms;     /* client: connect + handshake (0: 5000; -1: no limit);
                                   server: how long a worker's handshake may take (0 or
                                   -1: 5000, a master never waits on a worker for good) */
    const char *token;          /* shared secret for tcp:// (env RIPC_TOKEN when NULL) */
    int tcp_without_token; /* server: accept tcp:// workers without a token (not the default) */
} ripc_options;

typedef struct ripc_msg {
    uint16_t type;    /* user message type: the dispatch key; 0xF000.. reserved */
    uint8_t kind;     /* RIPC_ONEWAY | RIPC_REQUEST | RIPC_REPLY */
    uint32_t peer_id; /* the worker it came from (0 = the master) */
    uint64_t id;      /* request id; a reply carries its request's id */
    const void *data; /* valid until the handler returns / the next recv */
    uint64_t len;
} ripc_msg;

typedef void (*ripc_handler)(ripc_peer *from, const ripc_msg *msg, void *arg);
/* A batch handler: n >= 1 messages of one type from one worker, in the
 * order it sent them (ripc_server_handle_batch). */
typedef void (*ripc_batch_handler)(ripc_peer *from, const ripc_msg *msgs, size_t n, void *arg);

/* ---- master ---- */

/*
 * Listen on url: "unix:/abs/path", "unix:///abs/path", "unix:rel/path", a
 * bare path, "unix:@name" (Linux: the abstract namespace, no file; -ENOTSUP
 * elsewhere), or "tcp://host:port". "unix://x" (no third slash) is refused:
 * it would mean the relative path "x". A stale unix socket file (nobody
 * answers) is replaced; a live one, or an abstract name in use, is
 * -EADDRINUSE. Workers on a unix socket, abstract or not, are checked by
 * their uid (allow_uids). An abstract name has no permissions: anybody may
 * bind it first, so workers check the master's uid there in turn (see
 * ripc_client_open). On success *s owns the listener; free it with
 * ripc_server_close().
 */
RIPC_API int ripc_server_open(ripc_server **s, const char *url, const ripc_options *opt);
/* Same, with one line of detail about a failure written into why. */
RIPC_API int ripc_server_open_ex(ripc_server **s, const char *url, const ripc_options *opt,
                                 char *why, size_t why_len);

/*
 * Register fn for messages of `type` (0: the fallback for types without a
 * handler). Replaces an earlier handler; fn NULL removes it. Any thread, any
 * time; a dispatch already under way may still call the old handler once.
 */
RIPC_API int ripc_server_handle(ripc_server *s, uint16_t type, ripc_handler fn, void *arg);
/*
 * Register a batch handler for messages of `type` (0: the fallback, as
 * above): one call takes a run of that type's one-way messages from one
 * worker, in the order it sent them, so that a stream of small messages
 * costs one call per run instead of one per message. A run is what is
 * already queued, consecutive in that worker's stream: it ends before a
 * message of another type, a request, or (shared memory) a large message
 * (above max_inline), after max_batch messages (0, or more than 256: 256),
 * and at the end of the dispatch round's share of that worker (256
 * messages). A request, and a large message in shared memory, comes alone
 * (n = 1; reply to a request with ripc_reply(from, &msgs[0], ...) as
 * usual). Order is
 * per worker: every message of a worker, of whatever type and handler
 * kind, reaches its handler after the ones it sent before, as with single
 * handlers; runs of different workers are not ordered.
 *
 * msgs[] and every msgs[i].data are valid during the call only: they are
 * views into the worker's ring (or the socket-mode receive buffer), whose
 * room the master keeps for all n messages until fn returns. Socket mode:
 * a run is taken from what the socket has delivered already.
 *
 * Replaces the type's handler, single or batch (and ripc_server_handle
 * replaces a batch handler); fn NULL removes it. Any thread, any time; a
 * dispatch already under way may still call the old handler once.
 * 0, -EINVAL (s NULL, or a reserved type), -ENOMEM.
 */
RIPC_API int ripc_server_handle_batch(ripc_server *s, uint16_t type, ripc_batch_handler fn,
                                      size_t max_batch, void *arg);

/* Callbacks when a worker has joined (after WELCOME) and when it has left
 * (reason: RIPC_LEFT_BYE, -EPIPE, -EPROTO, -ECANCELED, -ETIMEDOUT). Called from the
 * dispatch thread that owns the peer. Set them before workers connect. */
RIPC_API int ripc_server_on_peer(ripc_server *s, void (*joined)(ripc_peer *, void *),
                                 void (*left)(ripc_peer *, int reason, void *), void *arg);

/*
 * Accept workers and dispatch what is ready, waiting up to timeout_ms for
 * something to arrive. Returns the number of messages dispatched: 0 after a
 * timeout, or when the wait ended with only joins/leaves handled (or a
 * ripc_server_stop() from another thread). A negative errno on failure:
 * -ECANCELED once ripc_server_close() has begun on another thread,
 * -EDEADLK after a handler called ripc_server_close(). For callers with
 * their own event loop: call ripc_server_poll(s, 0) until it returns 0, then
 * wait for ripc_server_fd() to become readable (where the build has one:
 * see there). Not concurrent with itself
 * or ripc_server_run().
 */
RIPC_API int ripc_server_poll(ripc_server *s, int timeout_ms);

/*
 * Dispatch on `threads` threads (0 or 1: the calling thread only) until
 * ripc_server_stop(). Peers are spread over the threads; each peer's inbound
 * ring is read by exactly one thread, so its messages are handled in order.
 * Returns 0 after stop, -ECANCELED when ripc_server_close() on another
 * thread ended it (s is being freed: touch it no more) or after
 * ripc_server_shutdown() (s is valid until closed), -EDEADLK when a
 * handler called ripc_server_close() (s is still valid), or another
 * negative errno.
 */
RIPC_API int ripc_server_run(ripc_server *s, unsigned threads);
RIPC_API void ripc_server_stop(ripc_server *s); /* any thread, async-signal-safe */

/*
 * Send a one-way message to a worker. Thread-safe. Waits up to timeout_ms
 * for ring space. Returns 0, -EAGAIN/-ETIMEDOUT (full), -EPIPE, -ENOENT (no
 * such peer), -EMSGSIZE, -EINVAL (a reserved type, or data NULL with len > 0;
 * checked before the peer is looked up), -ECANCELED (the server is closing).
 */
RIPC_API int ripc_server_send(ripc_server *s, uint32_t peer_id, uint16_t type, const void *data,
                              uint64_t len, int timeout_ms);
/* One message of ripc_server_send_batch(). */
typedef struct ripc_out {
    uint16_t type;
    const void *data;
    uint64_t len;
} ripc_out;
/*
 * Send n one-way messages to one worker, in order, under one acquisition of
 * its send lock. Every send to a worker takes that lock, and on x86 each
 * lock operation waits until the previous message's stores have reached
 * the worker's cache: a master streaming to a worker pays that once per
 * batch instead of once per message (docs/benchmarks.md has figures).
 * timeout_ms covers the whole batch. The batch keeps its order; it is not atomic: a
 * sender that must wait for room lets go of the lock meanwhile (unless it
 * is the worker's own dispatch thread), so another thread's message to the
 * same worker may come between two of the batch's.
 * Returns how many were sent (n, or fewer when a send failed or timed out:
 * msgs[ret] is the first one not sent), or a negative errno when none was
 * (the errors of ripc_server_send; -EINVAL for a reserved type in any of
 * them, checked before anything is sent).
 */
RIPC_API int ripc_server_send_batch(ripc_server *s, uint32_t peer_id, const ripc_out *msgs,
                                    size_t n, int timeout_ms);
/*
 * Zero-copy sends to a worker (loans): the client's loans
 * (ripc_client_reserve, below) with the worker named by its id. Reserve
 * room for a message of up to len bytes to peer_id, write it at *buf, then
 * commit it with its type and final length (<= len), or abandon it. The
 * same three paths as the client's (the ring record up to max_inline, the
 * large-message memfd above, a library buffer in socket mode), with the
 * same guarantees: the worker sees nothing before the commit.
 *
 * The loan is the worker's channel's, not a thread's: between reserve and
 * commit nothing else is sent to that worker. ripc_server_send, _send_batch,
 * _broadcast, ripc_reply and a second _reserve to it wait for the loan's end
 * within their own timeouts (timeout 0: -EAGAIN), except from the thread
 * that reserved and from the dispatch thread that owns the worker (replies
 * from its handlers), which get -EBUSY at once: they would wait for
 * themselves. Sends to other workers are not affected. Any thread may
 * commit or abandon the loan.
 *
 * *buf stays valid and writable until commit or abandon, also when the
 * worker dies or is dropped meanwhile (its memory is released at the
 * loan's end), but not past ripc_server_close(), which ends every loan
 * still open and frees its buffer: stop writing to buffers before close
 * (ripc_server_shutdown, then join the threads that hold loans: their
 * commits return -ECANCELED). Alignment and reading rules as for the
 * client's loans (shared memory is shared with the worker: a hostile one
 * may scribble on it; commit never trusts what it finds there).
 *
 * ripc_server_reserve waits up to timeout_ms for an open loan to that
 * worker to end and for room as ripc_server_send does. Returns 0 with *buf
 * set, -EAGAIN (timeout 0) / -ETIMEDOUT, -EMSGSIZE (len > the worker's
 * max_message; len 0 is a valid empty message), -ENOENT (no such peer),
 * -EPIPE, -EPROTO, -EBUSY (see above), -ECANCELED, -EINVAL (s or buf
 * NULL), -ENOMEM. *buf is NULL on failure.
 */
RIPC_API int ripc_server_reserve(ripc_server *s, uint32_t peer_id, uint64_t len, void **buf,
                                 int timeout_ms);
/*
 * Publish peer_id's open loan as a one-way message of `len` bytes (len <=
 * reserved) of type `type`. Shared memory: never waits. Socket mode: waits
 * for room in the socket up to the timeout_ms given to reserve (counted
 * from the commit); -EAGAIN (timeout 0) / -ETIMEDOUT: none of it went, the
 * loan stays open (commit again or abandon). -EINVAL: no loan open to that
 * worker, len larger than reserved, or a reserved type (the loan, if any,
 * stays open). -EBUSY: another thread's commit of this loan is under way.
 * Any other return ends the loan: 0 (sent), -EPIPE (the worker died or was
 * dropped since the reserve: nothing is sent, and its memory goes now),
 * -EPROTO, -ECANCELED (the server is shutting down: close ends the loan),
 * -ENOENT (no such peer, and no loan).
 */
RIPC_API int ripc_server_commit(ripc_server *s, uint32_t peer_id, uint16_t type, uint64_t len);
/* Drop peer_id's open loan unsent (also once the worker is gone): the next
 * send or reserve to it may go. 0, -EINVAL (no loan open), -EBUSY (its
 * commit is under way), -ENOENT, -ECANCELED (close ends it). */
RIPC_API int ripc_server_abandon(ripc_server *s, uint32_t peer_id);
/* Send to every connected worker; returns how many it reached, or
 * -ECANCELED when the server's close began before or during it. The timeout
 * applies to each worker in turn. -EINVAL for a reserved type (or data NULL
 * with len > 0), whether or not workers are connected. */
RIPC_API int ripc_server_broadcast(ripc_server *s, uint16_t type, const void *data, uint64_t len,
                                   int timeout_ms);
/*
 * Reply to a request (from its handler, or later while the peer lives).
 * -EINVAL when req is not a request (or has a reserved type: workers cannot
 * send those). Waits for ring space up to 1 s (-ETIMEDOUT). After one reply to a worker
 * timed out, later replies to it do not wait (-EAGAIN at once) until one
 * gets through again: a worker that stops reading its replies costs the
 * dispatch thread one second, not one second per request.
 */
RIPC_API int ripc_reply(ripc_peer *p, const ripc_msg *req, const void *data, uint64_t len);

/* A ripc_peer pointer is valid from `joined` until `left` returns (and in
 * handlers for messages from that peer); keep the id to talk to it later. */
RIPC_API uint32_t ripc_peer_id(const ripc_peer *p);
RIPC_API const char *ripc_peer_name(const ripc_peer *p);
/* "shm" or "socket", and a short reason why that transport. */
RIPC_API const char *ripc_peer_transport(const ripc_peer *p);
RIPC_API const char *ripc_peer_transport_reason(const ripc_peer *p);
/* The worker's pid: the kernel's word on a unix socket where the platform
 * gives one (Linux), else (TCP, getpeereid platforms) what the worker's
 * HELLO says. */
RIPC_API int32_t ripc_peer_pid(const ripc_peer *p);

/* The address the server listens on, as a URL ("tcp://127.0.0.1:40321" when
 * it was opened on port 0). Returns snprintf's count. */
RIPC_API int ripc_server_url(ripc_server *s, char *buf, size_t len);

/*
 * Answer a request with an error instead of a result (from its handler, or
 * later while the peer lives): the worker's ripc_client_request returns err
 * as its own code, and ripc_client_error() gives text. err is a negative
 * errno (-1 .. -4095); the worker cannot tell it from a failure of its own
 * except by that text, so prefer codes the library does not return itself
 * (-ENOENT, -EINVAL, -EPERM, ...). text may be NULL; at most 200 bytes of it
 * are sent, fewer if the worker's max_message is smaller. Waits for room as
 * ripc_reply does. Returns 0, -EINVAL (err out of range, req not a request,
 * a reserved type), or ripc_reply's errors. A request whose type no handler
 * takes (and no fallback handler, type 0) is answered this way by the
 * library: -ENOENT, "no handler for type N". That answer never waits (for
 * room in the worker's ring or for its send lock): when it cannot go at
 * once, as to a worker that leaves its replies unread, it is dropped, and
 * the worker's request ends with its own timeout.
 */
RIPC_API int ripc_reply_error(ripc_peer *p, const ripc_msg *req, int err, const char *text);

/* Messages no handler took (and no fallback handler), since open: one-way
 * ones are dropped, requests answered with -ENOENT (ripc_reply_error) when
 * the answer can go at once. */
RIPC_API uint64_t ripc_server_dropped(ripc_server *s);

/* Readable when ripc_server_poll() has work (see there). -ENOTSUP in a
 * build whose poller has no such descriptor (RIPC_PORTABLE_POSIX: poll(2)),
 * where an outside event loop calls ripc_server_poll(s, 0) on a timer. */
RIPC_API int ripc_server_fd(ripc_server *s);
/* Workers connected now. */
RIPC_API unsigned ripc_server_peer_count(ripc_server *s);
/* Of those, the ones parked now: idle for a few milliseconds, their rings
 * are no longer looked at on each pass of the dispatch loop (a pass costs
 * the same with 1,000 idle workers as with none); the next message of such
 * a worker rings the master's doorbell and brings it back. Any thread; a
 * snapshot, for monitoring and tests. */
RIPC_API unsigned ripc_server_parked_count(ripc_server *s);
/*
 * Stop, end every worker's connection, free everything. NULL is fine.
 *
 * From any thread but the server's dispatch, while other threads are inside
 * run, poll, send, send_batch, broadcast, reply or the loan calls
 * (reserve, commit, abandon): close stops the server
 * and ends each wait those calls are in, at once (a send waiting for ring
 * or socket room, a wait for the send lock behind it, a poll or run waiting
 * for work); they return -ECANCELED (poll returns its count when it
 * dispatched something first). close returns only after every one of them
 * has returned, so nothing is freed under them; a handler that blocks on
 * something else holds close up until it returns. Workers see the end of
 * the stream (their calls return -EPIPE, as after a goodbye), and `left`
 * runs for each with -ECANCELED, on the dispatch thread that owns it or on
 * the closing thread.
 *
 * What may overlap close: the calls named above, already under way when
 * close begins. Close takes care of those; it cannot take care of a call
 * that begins after it did (that one may read freed memory), nor tell one
 * that is only starting, its first instructions not yet run, from one
 * that has not been made. Nor may ripc_server_handle, _on_peer, _stop,
 * _url, _fd, _peer_count or _dropped overlap close. So a program whose
 * threads call the server at any time (a loop that sends until an error,
 * polls until an error) ends them first: ripc_server_shutdown(s), then it
 * joins or otherwise waits for those threads (each call they make returns
 * -ECANCELED at once, or does nothing), then ripc_server_close(s).
 *
 * From a handler or callback of this server (its dispatch thread), close
 * cannot free the server under the dispatch that called it: it acts as
 * ripc_server_stop(), the run() or poll() that dispatched returns -EDEADLK,
 * and the server stays valid, to be closed from outside. A close from the
 * `left` callback that close itself makes is ignored. Close s only once.
 */
RIPC_API void ripc_server_close(ripc_server *s);
/*
 * Close's first half, without the free: ends every call under way on s as
 * close does (they return -ECANCELED; workers see the end of the stream
 * and `left` runs with -ECANCELED as they go) and makes every later call
 * on s return -ECANCELED (run, poll, send, send_batch, broadcast, reply,
 * reserve, commit, abandon)
 * or do what it does on a stopped server (the others), until
 * ripc_server_close(s), which is still needed and may follow at once.
 * Any thread, a handler's included; s stays valid. Waits for the peer
 * lookups under way (they end at once), never for a worker. NULL is fine.
 */
RIPC_API void ripc_server_shutdown(ripc_server *s);

/* ---- worker ---- */

/*
 * Connect and register. On success *c is ready for send/recv. A REJECT is
 * returned as its own error (-EPROTONOSUPPORT version, -EACCES credentials,
 * -EMSGSIZE limits); ripc_client_open_ex writes the master's reason text.
 * On a "unix:@name" address (no file, no permissions: anybody may have
 * bound the name) the master must run as our effective uid, one in
 * allow_uids, or any with allow_any_uid; otherwise -EACCES before anything
 * is sent to it. On a path the socket file's mode keeps others out.
 */
RIPC_API int ripc_client_open(ripc_client **c, const char *url, const ripc_options *opt);
RIPC_API int ripc_client_open_ex(ripc_client **c, const char *url, const ripc_options *opt,
                                 char *why, size_t why_len);

/*
 * One-way message to the master. Waits up to timeout_ms for ring space
 * (socket mode: for room in the socket). Returns 0 once the message is
 * committed: in socket mode a message that the deadline interrupts after
 * its first byte went out still counts as sent and its rest follows in the
 * background, before anything sent later (the stream keeps its framing);
 * -ETIMEDOUT / -EAGAIN mean none of it was sent.
 */
RIPC_API int ripc_client_send(ripc_client *c, uint16_t type, const void *data, uint64_t len,
                              int timeout_ms);
/*
 * Send n one-way messages of one type to the master, in order, in one call:
 * message i is lens[i] bytes of buf, right after message i-1 (buf holds
 * them back to back; NULL when they are all empty). The client's
 * counterpart of ripc_server_send_batch, for callers that pay per call (a
 * binding such as the Python package's): in shared memory the peer's
 * sleep flag is looked at, and its doorbell rung, once per batch (and
 * before each wait for room) instead of once per message. Each message
 * takes the path ripc_client_send gives it (ring record, large-message
 * buffer above max_inline, socket frame in socket mode), with the same
 * guarantees, and nothing else is sent between two of them.
 * timeout_ms covers the whole batch (0: send what fits now, never wait).
 * Returns how many were sent (n, or fewer when a send failed or the time
 * ran out: message ret is the first one not sent, and the same call on the
 * rest reports why), or a negative errno when none was: the errors of
 * ripc_client_send; -EINVAL (c NULL, lens NULL with n > 0, buf NULL with
 * bytes to send, a reserved type, n > INT_MAX, lengths whose sum
 * overflows) and -EMSGSIZE (any lens[i] > max_message) are checked before
 * anything is sent. n == 0 returns 0.
 */
RIPC_API int ripc_client_send_batch(ripc_client *c, uint16_t type, const void *buf,
                                    const uint64_t *lens, size_t n, int timeout_ms);
/*
 * Zero-copy sends (loans). Reserve room for a message of up to len bytes,
 * write it at *buf, then commit it with its type and final length (<= len):
 *
 *   void *p;
 *   if (ripc_client_reserve(c, n, &p, 1000) == 0) {
 *       size_t used = fill(p, n);
 *       ripc_client_commit(c, MY_TYPE, used);
 *   }
 *
 * The same calls work on every path, so code written against them runs
 * everywhere: up to max_inline the buffer is the ring record itself; above
 * it, the large-message buffer (a memfd the master maps, no byte copied);
 * in socket mode a library buffer that commit writes to the socket as
 * ripc_client_send would. The master sees nothing until the commit: a
 * worker that dies, or abandons the loan, between the two leaves no trace
 * but its bytes in free space. Between reserve and commit the caller holds
 * the channel to the master: ripc_client_send, _request and a second
 * _reserve return -EBUSY (recv is fine). Messages keep their order with the
 * client's sends.
 *
 * *buf is the caller's from reserve until commit or abandon, writable (its
 * prior contents are undefined; 8-byte aligned in shared memory, malloc's
 * alignment in socket mode); do not read it for anything the master may
 * have written (the ring's memory is shared with it). A client's loan may
 * be committed from another thread than the one that reserved it (one at a
 * time, as every client call).
 *
 * ripc_client_reserve waits up to timeout_ms for room as ripc_client_send
 * does (room in the ring for the record, or a large-message buffer back
 * from the master; messages that arrive meanwhile are kept for recv).
 * Returns 0 with *buf set, -EAGAIN (timeout 0) / -ETIMEDOUT, -EMSGSIZE
 * (len > max_message), -EPIPE (the master is gone), -EBUSY (a loan is
 * already open, or another thread is inside a call on c), -EINVAL (c or buf
 * NULL), -ENOMEM, -EPROTO.
 */
RIPC_API int ripc_client_reserve(ripc_client *c, uint64_t len, void **buf, int timeout_ms);
/*
 * Publish the open loan as a one-way message of `len` bytes (len <= the
 * length reserved) of type `type`. Shared memory: never waits. Socket mode:
 * waits for room in the socket up to the timeout_ms given to reserve
 * (counted from the commit) and may return -EAGAIN (timeout 0) /
 * -ETIMEDOUT: none of it went, the loan stays open (commit again or
 * abandon). -EINVAL: no loan open, len larger than reserved, or a reserved
 * type (the loan stays open). Any other return ends the loan: 0 (sent),
 * -EPIPE (the master is gone), -EPROTO, or another -errno (nothing sent).
 */
RIPC_API int ripc_client_commit(ripc_client *c, uint16_t type, uint64_t len);
/* Drop the open loan: nothing is sent, the next send or reserve may go.
 * 0, or -EINVAL when no loan is open (-EBUSY: another thread is inside). */
RIPC_API int ripc_client_abandon(ripc_client *c);
/*
 * Receive the next message from the master (one-way or broadcast). msg->data
 * stays valid until the next recv/request on this client. Replies to
 * requests that are no longer awaited are dropped and counted
 * (ripc_client_dropped), never returned here.
 */
RIPC_API int ripc_client_recv(ripc_client *c, ripc_msg *msg, int timeout_ms);
/*
 * Send a request and wait for its reply (the whole exchange within
 * timeout_ms). Messages that arrive meanwhile are kept for ripc_client_recv()
 * (at most one ring's worth; beyond that -ENOBUFS). reply->data stays valid
 * until the next recv/request. When the master answers with an error
 * (ripc_reply_error, or -ENOENT when no handler takes `type`), that code is
 * returned at once, *reply is zeroed, and ripc_client_error() has the text.
 * A malformed error reply is -EPROTO, and the connection is done (as after
 * any protocol error of the master: later calls end with -EPIPE).
 */
RIPC_API int ripc_client_request(ripc_client *c, uint16_t type, const void *data, uint64_t len,
                                 ripc_msg *reply, int timeout_ms);
/*
 * The text of the error reply the last ripc_client_request returned (the
 * master answered with ripc_reply_error, or no handler took the type:
 * -ENOENT, "no handler for type 7"). "" when the last request ended any
 * other way (a reply, or an error of the worker's own such as -ETIMEDOUT),
 * or the master gave no text. Valid until the next request on c.
 */
RIPC_API const char *ripc_client_error(const ripc_client *c);
RIPC_API const char *ripc_client_transport(const ripc_client *c); /* "shm" or "socket" */
RIPC_API const char *ripc_client_transport_reason(const ripc_client *c);
RIPC_API uint32_t ripc_client_id(const ripc_client *c);
/* Readable when the master may have sent something, or is gone. Armed at
 * open (a poll before the first recv wakes for the first message) and by
 * recv(c, &m, 0) returning -EAGAIN. A send or request that had to wait may
 * take messages in meanwhile (kept for recv) and leaves the fd unarmed:
 * after one, call recv(c, &m, 0) until -EAGAIN before polling again.
 * After a wake-up for a master that died, the first recv returns -EPIPE.
 * Once this has been called, every recv(c, &m, 0) that finds nothing looks
 * at the descriptors (a few hundred ns); a client that never asks for the
 * fd and loops on recv(c, &m, 0) pays a few tens of ns per empty look.
 * -ENOTSUP with the futex doorbell, which has no descriptor. */
RIPC_API int ripc_client_fd(ripc_client *c);
/* Replies dropped because no request awaited their id. */
RIPC_API uint64_t ripc_client_dropped(const ripc_client *c);
/* Say goodbye and free everything. NULL is fine. Socket mode: messages
 * still queued get at most 1 s (plus a 100 ms slice) to go out to a master
 * that does not read; after that they are dropped and the master sees the
 * connection end (-EPIPE) instead of a goodbye. Shared memory on Windows:
 * large messages sent but not yet taken by the master get the same 1 s
 * (their buffers must outlive them here); a master that takes one later
 * drops the worker with -EPROTO instead. Never waits otherwise. */
RIPC_API void ripc_client_close(ripc_client *c);

/* ---- counters ----
 *
 * What a running master and its workers have done, for monitoring (the
 * ringipc-stat tool, a dashboard): ripc_server_stats, ripc_server_peer_stats
 * and ripc_client_stats fill a struct the caller owns.
 *
 * Versioning. Each struct starts with `size`: the caller sets it to
 * sizeof the struct as its header declares it. The library fills that many
 * bytes (those it knows; a newer caller's fields beyond them are zeroed)
 * and never more, so fields are only ever appended and a program built
 * against an older header keeps working with a newer library. A size
 * smaller than the first version of the struct (RIPC_PEER_STATS_SIZE_V1,
 * RIPC_SERVER_STATS_SIZE_V1) is -EINVAL.
 *
 * Cost and consistency. Each counter is written by one thread at a time,
 * the one that owns what it counts (a message in: the dispatch loop that
 * owns the worker, or the worker's thread; a message out: the sender
 * holding the worker's send lock, or the worker's thread), with plain
 * stores: counting takes no locked instruction and no lock. A stats call
 * reads each counter with a relaxed atomic load of an aligned 64-bit word
 * (never torn on the 64-bit platforms the library supports), so each
 * value is one the counter really had, but the values are not one
 * snapshot: a message counted in msgs_in may not be in bytes_in yet.
 * Everything is counted before the message is handed on (to a handler, to
 * recv) or published (to the other side), so once the other side has
 * answered a message, the counts include it. Counters only grow, from 0
 * when the connection was made (or the server opened).
 *
 * Directions: _in is received by the side that asks (the master: from that
 * worker; a worker: from its master), _out sent by it.
 */
#define RIPC_PEER_STATS_SIZE_V1   520u /* sizeof(ripc_peer_stats_t) in its first version */
#define RIPC_SERVER_STATS_SIZE_V1 176u /* sizeof(ripc_server_stats_t) in its first version */

typedef struct ripc_peer_stats_t {
    uint32_t size;         /* in: sizeof(ripc_peer_stats_t); out: the bytes filled */
    uint32_t peer_id;      /* the worker's id (ripc_peer_id / ripc_client_id) */
    int32_t pid;           /* the other side's pid (master: ripc_peer_pid; worker: 0) */
    int32_t transport;     /* RIPC_TRANSPORT_SHM or RIPC_TRANSPORT_SOCKET */
    uint64_t connected_ns; /* when the handshake ended: CLOCK_REALTIME, ns since 1970 */
    /* Messages and payload bytes, indexed by kind: [RIPC_ONEWAY],
     * [RIPC_REQUEST], [RIPC_REPLY] (a master receives no replies, a worker
     * sends none). Large messages are in these too. Error replies
     * (ripc_reply_error) count as replies of their encoded size. */
    uint64_t msgs_in[3], bytes_in[3];
    uint64_t msgs_out[3], bytes_out[3];
    /* Of those, the large messages (above max_inline, each in a buffer of
     * its own; shared-memory mode only) and their payload bytes. */
    uint64_t large_in, large_bytes_in, large_out, large_bytes_out;
    /* Rings (shared-memory mode; 0 in socket mode): the capacity of each
     * direction, and the bytes queued in each, now, read from the ring
     * indices at the call (the master's consumer index moves once per batch
     * of up to 256 messages, so `in` counts a batch being handled). The
     * high-water marks are the highest fill seen where the library looks,
     * which costs nothing per message: out, by this side's writer each time
     * it re-reads the reader's index (about once per lap of the ring, and
     * whenever the ring looks full, so it nears the capacity once a send
     * had to wait for room); in, on the master, the bytes of the largest
     * batch it read at once; and the fill this call reads. A lower bound
     * of the true peak. */
    uint64_t ring_bytes;
    uint64_t ring_in_used, ring_out_used;
    uint64_t ring_in_high, ring_out_high;
    /* Sends that found the ring full and waited for room (a send that waits
     * in several slices counts once per slice), and the nanoseconds they
     * waited in all. Shared-memory mode; a worker's socket-mode sends that
     * waited for the socket count here too. */
    uint64_t send_waits, send_wait_ns;
    /* Sleeps: worker, the times it blocked on its doorbell (recv, request,
     * a full ring); master, the times the loop that owns this worker armed
     * its ring to sleep, or parked it. Wake-ups: the times this side's
     * doorbell was rung by the other (master: the worker's doorbell events
     * its loop handled; worker: sleeps that ended by a ring rather than a
     * timeout). Doorbells: the times this side rang the other's, because it
     * slept (for data or for room). Shared-memory mode. */
    uint64_t sleeps, wakeups, doorbells;
    /* Worker: replies that came after their request had ended, dropped
     * (ripc_client_dropped). Master: this worker's messages no handler took
     * (ripc_server_dropped counts all workers'). */
    uint64_t dropped;
    /* Worker: calls that ended with -EPROTO (the master broke the protocol;
     * the connection is done after the first). Master: always 0, as a
     * worker that breaks the protocol is dropped and its counters go with it
     * (ripc_server_stats counts it in left_proto). */
    uint64_t proto_errors;
    char name[64];    /* the worker's name (ripc_options.name) */
    char reason[208]; /* why this transport (ripc_peer_transport_reason) */
} ripc_peer_stats_t;

typedef struct ripc_server_stats_t {
    uint32_t size;        /* in: sizeof(ripc_server_stats_t); out: the bytes filled */
    uint32_t peers_now;   /* workers connected now (ripc_server_peer_count) */
    uint64_t peers_total; /* workers that joined since open */
    uint64_t parked_now;  /* of peers_now, parked (ripc_server_parked_count) */
    uint64_t opened_ns;   /* ripc_server_open: CLOCK_REALTIME, ns since 1970 */
    /* Workers that left, by the reason `left` was given: a goodbye, the
     * connection lost (-EPIPE), a protocol error or corrupt shared memory
     * (-EPROTO), a socket-mode stall (-ETIMEDOUT), the server closing
     * (-ECANCELED), or another error (a loop that could not take it). */
    uint64_t left_bye, left_pipe, left_proto, left_timedout, left_canceled, left_other;
    /* Connections that never joined. Refused with a REJECT, by its code: no
     * common protocol version or doorbell (-EPROTONOSUPPORT), credentials
     * or token (-EACCES), limits (-EMSGSIZE), shared memory required but
     * unavailable (-ENOTSUP), out of memory or descriptors (-ENOMEM,
     * -EMFILE), a malformed HELLO (-EPROTO). Ended without one: the
     * connection closed during the handshake, its deadline passed
     * (connect_timeout_ms), or it was evicted for a newer connection while
     * the handshake slots were full. */
    uint64_t refused_version, refused_credentials, refused_limits, refused_transport;
    uint64_t refused_resources, refused_malformed;
    uint64_t handshake_hangups, handshake_timeouts, handshake_evicted;
    uint64_t unhandled;        /* messages no handler took (ripc_server_dropped) */
    uint64_t large_pool_bytes; /* idle large-message buffers kept for reuse, all workers */
    uint64_t large_pool_limit; /* ...and the most kept */
    /* Snapshots sent to monitors (ringipc-stat): connections that asked
     * for one, were allowed, and were answered. Not workers: never in the
     * counts above. */
    uint64_t monitors;
} ripc_server_stats_t;

/*
 * The server's counters. Any thread, any time but during ripc_server_close
 * (as ripc_server_peer_count); never waits. 0, -EINVAL (s or out NULL, or
 * out->size too small).
 */
RIPC_API int ripc_server_stats(ripc_server *s, ripc_server_stats_t *out);
/*
 * The counters of the worker with this id, as the master sees them. Any
 * thread, a handler's included, while dispatch threads run; safe against
 * the worker leaving meanwhile (the peer is looked up as ripc_server_send
 * does, and held until the call returns). Reading the ring fill takes the
 * worker's send lock for a moment: it may wait for a send to that worker
 * under way, and a thread streaming to it loses its fast path until it
 * earns it again (docs/design.md, Senders); call it at monitoring rates,
 * not per message. Like the send calls, not from a thread that blocks
 * SIGBUS (the ring header is read). 0, -EINVAL (s or out NULL, or
 * out->size too small), -ENOENT (no such worker: never joined, or left),
 * -ECANCELED (the server is closing).
 */
RIPC_API int ripc_server_peer_stats(ripc_server *s, uint32_t peer_id, ripc_peer_stats_t *out);
/*
 * The worker's counters for its connection. Any thread, also while another
 * is inside a call on c (the counters are read, never written); not
 * during ripc_client_close. Never waits. 0, -EINVAL (c or out NULL, or
 * out->size too small).
 */
RIPC_API int ripc_client_stats(ripc_client *c, ripc_peer_stats_t *out);

RIPC_API const char *ripc_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif /* RINGIPC_RINGIPC_H */
