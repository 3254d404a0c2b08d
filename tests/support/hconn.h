/*
 * A worker built by hand from the library's internal pieces (wire format,
 * sockets, segment, ring layout), for tests that must break the rules a
 * real ripc_client keeps: it performs a valid handshake, maps the segment
 * the master hands over, and then does whatever the test wants.
 */
#ifndef RIPC_TEST_HCONN_H
#define RIPC_TEST_HCONN_H

#include <stddef.h>
#include <stdint.h>

#include "shm/ring_layout.h"
#include "shm/segment.h"
#include "src/proto.h"

typedef struct ripc_test_hconn {
    int sock;
    ripc__welcome w;
    ripc__segment seg; /* shm mode: the worker's mapping of its segment */
    int master_bell;   /* shm mode: we ring it (eventfd or socket) */
    int own_bell;
    size_t ring_sz; /* bytes of one ring: header + data */
    struct ripc_ring_hdr *w2m, *m2w;
    unsigned char *w2m_data;
} ripc_test_hconn;

/* Connect to url without a handshake, waiting up to timeout_ms: the
 * socket, or -1. */
int ripc_test_hconnect_within(const char *url, int timeout_ms);
/* The same within 5 s. */
int ripc_test_hconnect(const char *url);
/* Bytes sent on fd that its peer has not read yet (a unix socket: what
 * waits in the peer's receive queue), or -1 where that cannot be told. */
int ripc_test_unread(int fd);
/* The HELLO frame a real client sends (src/client.c), into out (at least
 * RIPC_FRAME_HDR + RIPC_HANDSHAKE_MAX bytes); returns its length. transport
 * RIPC_XPORT_SOCKET asks for socket mode, anything else offers shm. */
size_t ripc_test_hello(uint8_t *out, const char *name, uint64_t ring_bytes, int transport);
/* Handshake as `name`: 0 once WELCOMEd (shm mode: the segment mapped and
 * both doorbells held), -1 otherwise (descriptors may leak: for children). */
int ripc_test_hopen(ripc_test_hconn *h, const char *url, const char *name, uint64_t ring_bytes,
                    int transport);
/* Wake the master as a commit would. */
void ripc_test_hring(const ripc_test_hconn *h);
/* The master drops a worker by closing its socket: wait up to ms for that.
 * 0 = dropped, 1 = still connected. */
int ripc_test_hwait_drop(int sock, int ms);
/* Close and unmap everything h holds. */
void ripc_test_hclose(ripc_test_hconn *h);

#endif
