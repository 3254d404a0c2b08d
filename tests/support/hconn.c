#include "support/hconn.h"

#include <errno.h>
#if defined(__linux__)
#include <linux/sockios.h>
#endif
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ringipc/ring.h"
#include "shm/doorbell.h"
#include "sockets/sock.h"
#include "support/support.h"

int ripc_test_hconnect_within(const char *url, int timeout_ms)
{
    ripc__addr a;
    intptr_t fd;
    if (ripc__addr_parse(&a, url, NULL, 0) < 0 ||
        ripc__sock_connect(&a, &fd, timeout_ms, NULL, 0) < 0)
        return -1;
    return (int)fd;
}

int ripc_test_hconnect(const char *url)
{
    return ripc_test_hconnect_within(url, 5000);
}

int ripc_test_unread(int fd)
{
#ifdef SIOCOUTQ
    int n = 0;
    return ioctl(fd, SIOCOUTQ, &n) == 0 ? n : -1;
#else
    (void)fd;
    return -1;
#endif
}

size_t ripc_test_hello(uint8_t *out, const char *name, uint64_t ring_bytes, int transport)
{
    int sock = transport == RIPC_XPORT_SOCKET;
    ripc__hello h = {.version_min = RIPC_PROTO_VERSION,
                     .version_max = RIPC_PROTO_VERSION,
                     .caps = sock ? RIPC_CAP_SOCKET
                                  : ripc__doorbell_caps() | RIPC_CAP_SHM | RIPC_CAP_MEMFD |
                                        RIPC_CAP_LARGE_UNSEALED,
                     .pid = (uint32_t)getpid(),
                     .transport = sock ? RIPC_XPORT_SOCKET : 0,
                     .ring_bytes = ring_bytes};
    snprintf(h.name, sizeof h.name, "%s", name);
    size_t plen = ripc__hello_encode(out + RIPC_FRAME_HDR, RIPC_HANDSHAKE_MAX, &h);
    ripc__frame f = {.ftype = RIPC_FRAME_HELLO, .len = plen};
    ripc__frame_encode(out, &f);
    return RIPC_FRAME_HDR + plen;
}

int ripc_test_hopen(ripc_test_hconn *h, const char *url, const char *name, uint64_t ring_bytes,
                    int transport)
{
    memset(h, 0, sizeof *h);
    h->sock = h->master_bell = h->own_bell = -1;
    if ((h->sock = ripc_test_hconnect(url)) < 0)
        return -1;
    uint8_t buf[RIPC_FRAME_HDR + RIPC_HANDSHAKE_MAX];
    size_t n = ripc_test_hello(buf, name, ring_bytes, transport);
    if (ripc__sock_send_all(h->sock, buf, n) < 0)
        return -1;
    int fds[3] = {-1, -1, -1}, nfds = 0;
    ripc__frame f;
    if (ripc__sock_recv_fds(h->sock, buf, RIPC_FRAME_HDR, fds, 3, &nfds, 5000) < 0 ||
        ripc__frame_decode(buf, &f, RIPC_HANDSHAKE_MAX) < 0 || f.ftype != RIPC_FRAME_WELCOME ||
        ripc__sock_recv_all(h->sock, buf, (size_t)f.len, 5000) < 0 ||
        ripc__welcome_decode(buf, (size_t)f.len, &h->w) < 0)
        return -1;
    if (transport == RIPC_XPORT_SOCKET)
        return h->w.transport == RIPC_XPORT_SOCKET && nfds == 0 ? 0 : -1;
    if (nfds != 3 || (h->w.master_db != RIPC_DB_EVENTFD && h->w.master_db != RIPC_DB_SOCKET))
        return -1;
    if (ripc__segment_map(&h->seg, fds[0], (size_t)h->w.seg_bytes, NULL, 0) < 0)
        return -1;
    h->master_bell = fds[1];
    h->own_bell = fds[2];
    h->ring_sz = ripc_ring_size((size_t)h->w.ring_bytes);
    h->w2m = h->seg.base;
    h->m2w = (struct ripc_ring_hdr *)((unsigned char *)h->seg.base + h->ring_sz);
    h->w2m_data = (unsigned char *)h->w2m + RIPC_RING_HDR_BYTES;
    return 0;
}

void ripc_test_hring(const ripc_test_hconn *h)
{
    if (h->w.master_db == RIPC_DB_SOCKET) {
        /* A full doorbell socket already means "wake up". */
        if (send(h->master_bell, "!", 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 && errno != EAGAIN &&
            errno != EPIPE && errno != ECONNRESET) /* gone: the master dropped us */
            perror("hostile: ring");
        return;
    }
    uint64_t one = 1;
    if (write(h->master_bell, &one, sizeof one) != sizeof one)
        perror("hostile: ring");
}

int ripc_test_hwait_drop(int sock, int ms)
{
    uint64_t end = ripc_test_now_ms() + (uint64_t)ms;
    char junk[256];
    while (ripc_test_now_ms() < end) {
        struct pollfd pf = {.fd = sock, .events = POLLIN};
        if (poll(&pf, 1, 100) <= 0)
            continue;
        ssize_t n = recv(sock, junk, sizeof junk, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return 0;
    }
    return 1;
}

void ripc_test_hclose(ripc_test_hconn *h)
{
    if (h->seg.base)
        ripc__segment_close(&h->seg);
    int fds[3] = {h->sock, h->master_bell, h->own_bell};
    for (int i = 0; i < 3; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    memset(h, 0, sizeof *h);
    h->sock = h->master_bell = h->own_bell = -1;
}
