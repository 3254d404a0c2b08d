/* SPDX-License-Identifier: MIT */
/* Private to the worker side: the client handle, shared by client.c (send,
 * receive, close) and client_open.c (connect and handshake). Every field is
 * the application thread's inside the client's guard (src/guard.h), except
 * fd_lent (any thread) and what outq shares with its writer thread. */
#ifndef RIPC_SRC_CLIENT_INTERNAL_H
#define RIPC_SRC_CLIENT_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ringipc/ringipc.h"
#include "src/chan.h"
#include "src/frames.h"
#include "src/guard.h"
#include "src/outq.h"
#include "src/proto.h"

/* A message that arrived while a request waited for its reply: copied out of
 * the ring (the ring must keep moving) and kept for the next recv. */
struct stash {
    struct stash *next;
    ripc_msg m;
    unsigned char data[];
};

struct ripc_client {
    ripc_options opt;
    ripc__chan ch;
    int xport;        /* RIPC_XPORT_SHM or RIPC_XPORT_SOCKET */
    ripc__rx rx;      /* socket mode: frames read ahead */
    ripc__outq *outq; /* socket mode: batched writes */
    int sock;
    uint32_t id;
    int held;             /* a ring record is lent to the caller */
    int peer_gone;        /* BYE or EOF seen: drain the ring, then -EPIPE */
    unsigned quick_looks; /* recv(c, m, 0) calls that found the arm standing */
    _Atomic int fd_lent;  /* ripc_client_fd() was asked: no quick looks */
    ripc__guard guard;    /* one thread inside send / request / recv */
    uint64_t next_id;
    struct stash *q_head, *q_tail;
    size_t q_bytes, q_cap;
    struct stash *lent; /* stash entry lent to the caller */
    /* A loan (ripc_client_reserve) open until commit or abandon: sends and
     * requests meanwhile are -EBUSY. */
    int loan_open;
    uint64_t loan_cap;   /* payload bytes reserved */
    int loan_timeout_ms; /* socket mode: how long commit waits for the socket */
    ripc__loan loan;     /* shared memory: the reservation in the ring */
    unsigned char *sbuf; /* socket mode: the library buffer lent */
    size_t sbuf_cap;
    char reason[RIPC_REASON_MAX + 1];
    int err_code; /* the last request ended with an error reply: its code (< 0) */
    char err_text[RIPC_ERR_TEXT_MAX + 1]; /* and its text (ripc_client_error) */
    /* For ripc_client_stats (any thread reads them): set at open. The
     * counters themselves are in ch.st (src/stats.h), in socket mode too. */
    char name[RIPC_NAME_MAX + 1];
    uint64_t connected_ns;
};

/* Free everything c holds, without a goodbye (ripc_client_close sends
 * one). For a client whose open failed part way, too. Application thread,
 * with no other thread inside c; stops and joins the outq writer. */
void ripc__client_free(ripc_client *c);

#endif /* RIPC_SRC_CLIENT_INTERNAL_H */
