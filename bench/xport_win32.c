/* SPDX-License-Identifier: MIT */
/*
 * The Windows baselines: a byte-mode named pipe and TCP loopback (the byte
 * streams), and an event ping-pong (two auto-reset events, the sequence
 * number beside them in shared memory: what eventfd is on Linux).
 *
 * The streams are made by the server child (it listens, the client child
 * connects once the server is ready), so no socket or pipe crosses a
 * process boundary; the events are made by the driver, inheritable
 * (run_win32.c), so both children hold them under the same values.
 */
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xport.h"

#define PIPE_BUF_BYTES (64u * 1024u) /* each direction's buffer */

static int win_errno(DWORD err)
{
    switch (err) {
    case ERROR_BROKEN_PIPE:
    case ERROR_NO_DATA:
    case ERROR_PIPE_NOT_CONNECTED:
        return -EPIPE;
    case ERROR_FILE_NOT_FOUND:
        return -ENOENT;
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY:
        return -ENOMEM;
    default:
        return -EIO;
    }
}

/* ---- byte streams: the named pipe, TCP loopback ---- */

struct stream_end;
struct stream_ops {
    int (*accept)(struct stream_end *e); /* server: take the client; 0 or -errno */
    /* Bytes written or read (> 0; read: 0 at the end), or -errno. */
    long (*write)(struct stream_end *e, const void *buf, size_t len);
    long (*read)(void *e, void *buf, size_t len);
};

struct stream_end {
    const struct stream_ops *ops;
    HANDLE pipe;     /* named pipe */
    SOCKET sock;     /* TCP: the connection */
    SOCKET listener; /* TCP server: until the client is accepted */
    int connected;
    struct xp_stream in;
};

static struct stream_end *stream_end_new(const struct xp_run *r, const struct stream_ops *ops)
{
    struct stream_end *e = calloc(1, sizeof *e);
    if (e == NULL)
        return NULL;
    e->ops = ops;
    e->pipe = INVALID_HANDLE_VALUE;
    e->sock = e->listener = INVALID_SOCKET;
    if (xp_stream_init(&e->in, r->size) < 0) {
        free(e);
        return NULL;
    }
    return e;
}

static void stream_end_free(struct stream_end *e)
{
    xp_stream_free(&e->in);
    free(e);
}

/* One write per message, as a user of a stream writes (a large one may
 * take a few). */
static int stream_send(void *end, const void *buf, size_t len)
{
    struct stream_end *e = end;
    const char *p = buf;
    int rc;
    if (!e->connected && (rc = e->ops->accept(e)) < 0)
        return rc;
    while (len > 0) {
        long n = e->ops->write(e, p, len > 0x40000000u ? 0x40000000u : len);
        if (n < 0)
            return (int)n;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int stream_recv(void *end, const void **buf, size_t *len)
{
    struct stream_end *e = end;
    int rc;
    if (!e->connected && (rc = e->ops->accept(e)) < 0)
        return rc;
    return xp_stream_next(&e->in, e->ops->read, e, buf, len);
}

static const struct stream_ops npipe_ops;

static int npipe_setup(struct xp_run *r)
{
    static unsigned serial;
    snprintf(r->path[0], sizeof r->path[0], "\\\\.\\pipe\\ringipc-bench-%lu-%u",
             (unsigned long)GetCurrentProcessId(), serial++);
    return 0;
}

/* The server makes the pipe's one instance; it takes its client in the
 * first recv (ConnectNamedPipe). The client opens it. */
static int npipe_open(struct xp_run *r, int side, void **end)
{
    struct stream_end *e = stream_end_new(r, &npipe_ops);
    if (e == NULL)
        return -ENOMEM;
    if (side == XP_SERVER)
        e->pipe = CreateNamedPipeA(r->path[0], PIPE_ACCESS_DUPLEX,
                                   PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT, 1,
                                   PIPE_BUF_BYTES, PIPE_BUF_BYTES, 0, NULL);
    else
        e->pipe =
            CreateFileA(r->path[0], GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
    if (e->pipe == INVALID_HANDLE_VALUE) {
        int rc = win_errno(GetLastError());
        stream_end_free(e);
        return rc;
    }
    e->connected = side == XP_CLIENT;
    *end = e;
    return 0;
}

static int npipe_accept(struct stream_end *e)
{
    if (!ConnectNamedPipe(e->pipe, NULL) && GetLastError() != ERROR_PIPE_CONNECTED)
        return win_errno(GetLastError());
    e->connected = 1;
    return 0;
}

static long npipe_write(struct stream_end *e, const void *buf, size_t len)
{
    DWORD n = 0;
    if (!WriteFile(e->pipe, buf, (DWORD)len, &n, NULL))
        return win_errno(GetLastError());
    return (long)n;
}

static long npipe_read(void *ctx, void *buf, size_t len)
{
    struct stream_end *e = ctx;
    DWORD n = 0;
    if (!ReadFile(e->pipe, buf, len > 0x40000000u ? 0x40000000u : (DWORD)len, &n, NULL))
        return GetLastError() == ERROR_BROKEN_PIPE ? 0 : win_errno(GetLastError());
    return (long)n;
}

static const struct stream_ops npipe_ops = {npipe_accept, npipe_write, npipe_read};

static void npipe_close(void *end)
{
    struct stream_end *e = end;
    CloseHandle(e->pipe);
    stream_end_free(e);
}

const struct xport xp_npipe = {
    .name = "named pipe",
    .flags = XP_RTT | XP_ONEWAY,
    .setup = npipe_setup,
    .open = npipe_open,
    .send = stream_send,
    .recv = stream_recv,
    .close = npipe_close,
};

static int wsa_errno(void)
{
    int err = WSAGetLastError();
    return err == WSAECONNRESET || err == WSAECONNABORTED || err == WSAESHUTDOWN ? -EPIPE : -EIO;
}

static void nodelay(SOCKET s)
{
    int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, (const char *)&one, sizeof one);
}

static const struct stream_ops wtcp_ops;

/* The server listens on a port of its own and writes it in the page's url
 * before it says ready; it accepts in the first recv. */
static int wtcp_open(struct xp_run *r, int side, void **end)
{
    WSADATA wsa;
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int alen = sizeof in, rc = -EIO;
    if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0)
        return -EIO;
    struct stream_end *e = stream_end_new(r, &wtcp_ops);
    if (e == NULL)
        return -ENOMEM;
    SOCKET s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    if (s == INVALID_SOCKET)
        goto fail;
    if (side == XP_SERVER) {
        if (bind(s, (struct sockaddr *)&in, sizeof in) != 0 || listen(s, 1) != 0 ||
            getsockname(s, (struct sockaddr *)&in, &alen) != 0)
            goto fail;
        snprintf(r->pg->url, sizeof r->pg->url, "%u", (unsigned)ntohs(in.sin_port));
        e->listener = s;
    } else {
        in.sin_port = htons((unsigned short)atoi(r->pg->url));
        if (connect(s, (struct sockaddr *)&in, sizeof in) != 0)
            goto fail;
        nodelay(s);
        e->sock = s;
        e->connected = 1;
    }
    *end = e;
    return 0;
fail:
    rc = wsa_errno();
    if (s != INVALID_SOCKET)
        closesocket(s);
    stream_end_free(e);
    return rc;
}

static int wtcp_accept(struct stream_end *e)
{
    e->sock = accept(e->listener, NULL, NULL);
    if (e->sock == INVALID_SOCKET)
        return wsa_errno();
    nodelay(e->sock);
    closesocket(e->listener);
    e->listener = INVALID_SOCKET;
    e->connected = 1;
    return 0;
}

static long wtcp_write(struct stream_end *e, const void *buf, size_t len)
{
    int n = send(e->sock, buf, (int)len, 0);
    return n > 0 ? n : n < 0 ? wsa_errno() : -EPIPE;
}

static long wtcp_read(void *ctx, void *buf, size_t len)
{
    struct stream_end *e = ctx;
    int n = recv(e->sock, buf, len > 0x40000000u ? 0x40000000 : (int)len, 0);
    return n < 0 ? wsa_errno() : n;
}

static const struct stream_ops wtcp_ops = {wtcp_accept, wtcp_write, wtcp_read};

static void wtcp_close(void *end)
{
    struct stream_end *e = end;
    if (e->sock != INVALID_SOCKET)
        closesocket(e->sock);
    if (e->listener != INVALID_SOCKET)
        closesocket(e->listener);
    stream_end_free(e);
    WSACleanup();
}

const struct xport xp_wtcp = {
    .name = "TCP loopback",
    .flags = XP_RTT | XP_ONEWAY,
    .open = wtcp_open,
    .send = stream_send,
    .recv = stream_recv,
    .close = wtcp_close,
};

/* ---- event ping-pong ----
 *
 * handle[0] rings the server (client -> server), handle[1] the client; the
 * sequence number goes in the sender's slot of the shared mapping first.
 * One message in flight, so one slot each way. */

struct event_slot {
    _Alignas(128) _Atomic uint64_t seq;
};

struct event_end {
    HANDLE in, out;
    struct event_slot *rx, *tx;
    uint64_t local;
};

static void event_teardown(struct xp_run *r)
{
    for (int i = 0; i < 2; i++)
        if (r->handle[i])
            CloseHandle(r->handle[i]);
    xp_unmap(r);
}

static int event_setup(struct xp_run *r)
{
    SECURITY_ATTRIBUTES inherit = {.nLength = sizeof inherit, .bInheritHandle = TRUE};
    int rc = xp_map_shared(r, 2 * sizeof(struct event_slot));
    if (rc < 0)
        return rc;
    for (int i = 0; i < 2; i++)
        if ((r->handle[i] = CreateEventA(&inherit, FALSE, FALSE, NULL)) == NULL) {
            rc = win_errno(GetLastError());
            event_teardown(r);
            return rc;
        }
    return 0;
}

static int event_open(struct xp_run *r, int side, void **end)
{
    struct event_end *e = calloc(1, sizeof *e);
    struct event_slot *slot = r->mem;
    if (e == NULL)
        return -ENOMEM;
    e->in = r->handle[side == XP_SERVER ? 0 : 1];
    e->out = r->handle[side == XP_SERVER ? 1 : 0];
    e->rx = &slot[side == XP_SERVER ? 0 : 1];
    e->tx = &slot[side == XP_SERVER ? 1 : 0];
    *end = e;
    return 0;
}

static int event_send(void *end, const void *buf, size_t len)
{
    struct event_end *e = end;
    uint64_t v;
    (void)len;
    memcpy(&v, buf, sizeof v);
    /* Release: pairs with the acquire in event_recv() after the wake-up. */
    atomic_store_explicit(&e->tx->seq, v, memory_order_release);
    return SetEvent(e->out) ? 0 : win_errno(GetLastError());
}

static int event_recv(void *end, const void **buf, size_t *len)
{
    struct event_end *e = end;
    if (WaitForSingleObject(e->in, INFINITE) != WAIT_OBJECT_0)
        return win_errno(GetLastError());
    e->local = atomic_load_explicit(&e->rx->seq, memory_order_acquire);
    *buf = &e->local;
    *len = sizeof e->local;
    return 0;
}

static void event_close(void *end)
{
    free(end);
}

const struct xport xp_event = {
    .name = "event ping-pong",
    .flags = XP_RTT | XP_NOPAYLOAD,
    .setup = event_setup,
    .open = event_open,
    .send = event_send,
    .recv = event_recv,
    .close = event_close,
    .teardown = event_teardown,
};
