/* SPDX-License-Identifier: MIT */
/*
 * Private to the doorbell files: helpers every kind may use (waiting on a
 * descriptor and the peer's watch_fd together, preparing a received
 * descriptor). They depend on no kind and on no dispatcher code.
 */
#ifndef RIPC_SHM_DOORBELL_COMMON_H
#define RIPC_SHM_DOORBELL_COMMON_H

#include <stdint.h>

/*
 * poll() fd for readability and watch_fd for readable / hang-up / error,
 * until the deadline (shm/clock.h; 0 = just look), retrying EINTR with the time left.
 * Either fd may be -1. Returns a bitmask: 1 = fd readable (or hung up),
 * 2 = watch_fd ready; 0 on timeout; -EBADF when either fd is not open,
 * or another -errno from poll.
 */
int ripc__doorbell_poll(int fd, int watch_fd, uint64_t deadline);

#endif /* RIPC_SHM_DOORBELL_COMMON_H */
