/* SPDX-License-Identifier: MIT */
/*
 * What the Windows socket files share (sockets/listen_win32.c,
 * dial_win32.c, conn_win32.c, cred_win32.c, poller_win32.c,
 * closer_win32.c); not a contract, only those files include it (the
 * contract is sockets/sock.h, whose "On Windows" part says what the
 * descriptors are).
 *
 * A connection (struct wconn) is a pipe end or a socket with an overlapped
 * read always in flight into a buffer of its own, and at most one
 * overlapped write from another buffer of its own. That keeps two manual-
 * reset events that tell readiness, level-triggered, to anybody who waits
 * on them:
 *   rev  signalled while bytes are buffered, the stream ended, or an error
 *        or a shutdown is recorded; unsignalled while the read is in flight
 *        (ReadFile / WSARecv reset it when started; completion sets it).
 *   wev  signalled while no write is in flight.
 * Whoever takes the last buffered byte starts the next read at once, so
 * "buffer empty, no read in flight, nothing recorded" never lasts beyond
 * one call. Completions are collected (harvest_*) by whoever looks next,
 * under the side's lock; nobody sleeps holding a lock.
 *
 * A listener keeps one pipe instance waiting in an overlapped
 * ConnectNamedPipe (its event: a client came), or a TCP socket under
 * WSAEventSelect(FD_ACCEPT).
 */
#ifndef RIPC_SOCKETS_SOCK_WIN32_H
#define RIPC_SOCKETS_SOCK_WIN32_H

#include <winsock2.h>
#include <ws2tcpip.h>

#include <stddef.h>
#include <stdint.h>
#include <windows.h>

#include "platform/win32.h"
#include "shm/clock.h"
#include "shm/why.h"
#include "sockets/sock.h"

#define set_why ripc__set_why

enum { W_PIPE = 1, W_PIPE_LISTEN, W_TCP, W_TCP_LISTEN };

#define W_RBUF (64u * 1024u)
#define W_WBUF (64u * 1024u)
/* The pipe's own buffers, each way (a hint to the system). */
#define W_PIPE_BUF (64u * 1024u)
/* "\\.\pipe\ringipc-" and a name of at most RIPC_ADDR_PATH_MAX - 1. */
#define W_PIPE_PREFIX   L"\\\\.\\pipe\\ringipc-"
#define W_PIPE_NAME_MAX (32 + RIPC_ADDR_PATH_MAX)

/* An OVERLAPPED that knows its connection (for the rescuer, below). */
struct wov {
    OVERLAPPED ov;
    struct wconn *c;
};

typedef struct wconn {
    int kind;
    int server; /* W_PIPE: our end is the server's (CreateNamedPipe) */
    HANDLE h;   /* W_PIPE, W_PIPE_LISTEN: the pipe (NULL once shut) */
    SOCKET s;   /* W_TCP, W_TCP_LISTEN (INVALID_SOCKET once shut) */
    volatile LONG shut;
    /* 1 for the descriptor, 1 per completion packet on its way to the
     * rescuer; the last to drop it frees c. */
    volatile LONG refs;

    /* reading (W_PIPE, W_TCP), under rmu */
    CRITICAL_SECTION rmu;
    struct wov rov;
    HANDLE rev;
    int rpending; /* a read is in flight */
    int reof;     /* the stream ended (after what is buffered) */
    int rerr;     /* a negative errno the stream broke with */
    size_t roff, rlen;
    char *rbuf;

    /* writing, under wmu */
    CRITICAL_SECTION wmu;
    struct wov wov;
    HANDLE wev;
    int wpending;
    int werr;
    size_t woff, wlen; /* the write in flight: wbuf[woff, woff + wlen) */
    char *wbuf;

    /* W_PIPE_LISTEN: the instance waiting for a client (h), its
     * ConnectNamedPipe (rov, rev), done when connected is set or rov
     * completed; W_TCP_LISTEN: rev is the WSAEventSelect event. */
    int connected;
    wchar_t name[W_PIPE_NAME_MAX];
} wconn;

/* The connection table. A connection descriptor is (slot << 2) | 3. */
static inline int wconn_is(intptr_t fd)
{
    return fd > 0 && fd <= INT32_MAX && (fd & 3) == 3;
}

/* A new entry for c: its descriptor (> 0) or -EMFILE / -ENOMEM. */
int ripc__wconn_insert(wconn *c);
/* The connection, or NULL for anything else (a handle, a closed slot). The
 * pointer is valid until the descriptor is closed (ripc__sock_close). */
wconn *ripc__wconn_get(intptr_t fd);
/* Take the entry out of the table; its memory stays the caller's. */
void ripc__wconn_remove(intptr_t fd);

/*
 * I/O that outlives the thread that started it. Windows cancels the I/O a
 * thread started when that thread exits, unless the handle is bound to a
 * completion port (thread-agnostic I/O, Vista on). Any thread may start a
 * connection's next read (whoever takes its last buffered byte) or write,
 * and then end; so every connection's handle is bound to one completion
 * port of the process. On Windows the port's packets are not wanted: the
 * OVERLAPPED events carry the low bit that says so. wine 8 cancels such
 * I/O anyway: there packets are queued, and a rescuer thread takes each
 * one and collects the I/O it reports, which starts it again if it was
 * cancelled (ripc__wconn_harvest_read / _write). ripc__wconn_event is the
 * hEvent for an OVERLAPPED of c; ripc__wconn_started counts a started I/O
 * (a packet will come) when there is a rescuer.
 */
void ripc__wconn_bind(HANDLE h);
HANDLE ripc__wconn_event(HANDLE ev);
void ripc__wconn_started(wconn *c);
/* The I/O just counted failed at once: no packet comes for it. */
void ripc__wconn_unstarted(wconn *c);
/* Drop one reference (sockets/conn_win32.c): the last frees c. */
void ripc__wconn_unref(wconn *c);

/* A connection of kind for an open pipe handle or socket: its buffers and
 * events made, its first read started. Takes h / s (closed on failure).
 * The descriptor, or -errno. */
int ripc__wconn_open_pipe(HANDLE h, int server);
int ripc__wconn_open_tcp(SOCKET s);
/* An empty wconn of kind with its two events (manual-reset: rev unsignalled,
 * wev signalled), its locks and one reference; NULL on failure.
 * ripc__wconn_free undoes it (and frees the buffers; the handle or socket
 * is the caller's) when no I/O was ever started on it; after that,
 * ripc__wconn_unref. */
wconn *ripc__wconn_alloc(int kind);
void ripc__wconn_free(wconn *c);

/* Collect a finished read (rmu held) or write (wmu held); a cancelled one
 * starts again. */
void ripc__wconn_harvest_read(wconn *c);
void ripc__wconn_harvest_write(wconn *c);
/* A pipe whose peer is gone, seen without reading (rmu held). */
int ripc__wconn_pipe_broken(wconn *c);

/* Readiness, for ripc__sock_wait_many and the poller. Handles to wait on
 * for fd watched for events (RIPC_SOCK_IN/OUT/HUP): up to 2 into hs, with
 * raw[i] = 1 for a plain handle (a waiter that takes its signal puts it
 * back), and *slow = 1 when a change could come without any of them being
 * signalled (a hang-up behind buffered bytes: look again within
 * W_SLOW_MS). The count, or -EBADF. */
#define W_SLOW_MS 50
int ripc__wconn_handles(intptr_t fd, int events, HANDLE *hs, int *raw, int *slow);
/* What holds now for fd (RIPC_SOCK_* bits, HUP for hang-up or error
 * whatever was asked): collects completions; for a plain handle, 0-time
 * waits (and puts back a signal it took). */
int ripc__wconn_ready(intptr_t fd, int events);

/* Put back the signal a wait took from a plain handle: an auto-reset event
 * stays signalled until its owner drains it; SetEvent on anything else
 * fails harmlessly. */
static inline void ripc__handle_putback(HANDLE h)
{
    DWORD saved = GetLastError();
    SetEvent(h);
    SetLastError(saved);
}

/* Block until one of hs[0..n) is signalled (n may pass 64: then in slices)
 * or ms passes (-1: no limit). 1 signalled (or could be: a slice ended),
 * 0 timeout, -errno. raw as for ripc__wconn_handles. */
int ripc__wait_handles(HANDLE *hs, const int *raw, int n, int ms);

/* Winsock started (once per process): 0 or -errno. */
int ripc__wsa_start(void);
/* The negative errno of a Winsock error (WSAGetLastError()). */
int ripc__wsa_errno(int err);

/* The pipe name for a unix address: 0, or -ENAMETOOLONG / -EINVAL /
 * -ENOTSUP with why. */
int ripc__pipe_name(const ripc__addr *a, wchar_t *name, size_t cap, char *why, size_t why_len);

/* tcp: start Winsock and resolve host:port (passive for listening);
 * getaddrinfo's failure to find the name is notfound. */
int ripc__tcp_resolve(const ripc__addr *a, int passive, int notfound, struct addrinfo **res,
                      char *why, size_t why_len);

/* An overlapped, not inheritable socket for ai: 0 or -errno. */
int ripc__tcp_socket(const struct addrinfo *ai, SOCKET *s);

/* Make an accepted or connected socket a plain blocking one with
 * TCP_NODELAY, not inheritable, with no event selected. */
void ripc__tcp_prepare(SOCKET s);

#endif /* RIPC_SOCKETS_SOCK_WIN32_H */
