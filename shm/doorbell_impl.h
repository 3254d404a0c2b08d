/* SPDX-License-Identifier: MIT */
/*
 * Private to the doorbell files: what shm/doorbell.c (the dispatcher) calls
 * in each kind's file (the helpers the kinds share are in
 * shm/doorbell_common.h; a kind never calls the dispatcher). Each kind's file
 * defines all five of its functions; where the kind is not built they are
 * stubs (usable() 0, open/adopt/wait -ENOSYS, ring/drain no-ops), so the
 * dispatcher needs no #ifdef.
 *
 * open/adopt are called with db already reset (kind NONE, fds -1, word
 * NULL) and arguments already checked against the kind's shape; on success
 * they fill the struct, on failure they leave it reset and close nothing
 * they did not open. wait is called with the struct checked (right kind,
 * wait side present).
 */
#ifndef RIPC_SHM_DOORBELL_IMPL_H
#define RIPC_SHM_DOORBELL_IMPL_H

#include <stdint.h>

#include "shm/doorbell.h"

#define RIPC_DB_KIND_FUNCS(k)                                                                      \
    int ripc__doorbell_##k##_usable(void);                                                         \
    int ripc__doorbell_##k##_open(ripc__doorbell *db, _Atomic uint32_t *word);                     \
    int ripc__doorbell_##k##_adopt(ripc__doorbell *db, int wait_fd, int ring_fd,                   \
                                   _Atomic uint32_t *word);                                        \
    void ripc__doorbell_##k##_ring(ripc__doorbell *db);                                            \
    int ripc__doorbell_##k##_wait(ripc__doorbell *db, uint32_t seen, int watch_fd,                 \
                                  int timeout_ms);                                                 \
    int ripc__doorbell_##k##_drain(ripc__doorbell *db); /* -EPIPE: ringers gone */

RIPC_DB_KIND_FUNCS(eventfd)
RIPC_DB_KIND_FUNCS(futex)
RIPC_DB_KIND_FUNCS(socket)

#endif /* RIPC_SHM_DOORBELL_IMPL_H */
