/* SPDX-License-Identifier: MIT */
/* Helpers the doorbell kinds share (contract: shm/doorbell_common.h). */
#include "shm/doorbell_common.h"

#include <errno.h>
#include <poll.h>

#include "shm/clock.h"

int ripc__doorbell_poll(int fd, int watch_fd, uint64_t deadline)
{
    short watch_events = POLLIN;
#ifdef POLLRDHUP
    watch_events |= POLLRDHUP; /* the peer shut down its side: as good as dead */
#endif
    struct pollfd p[2] = {
        {.fd = fd, .events = POLLIN},
        {.fd = watch_fd, .events = watch_events},
    };
    for (;;) {
        int ms = ripc__remaining_ms(deadline);
        int n = poll(p, 2, ms);
        if (n < 0) {
            if (errno == EINTR)
                continue; /* the next round gets what is left of the time */
            return -errno;
        }
        if (n == 0) {
            if (ms == 0 || ripc__expired(deadline))
                return 0;
            continue;
        }
        if ((p[0].revents | p[1].revents) & POLLNVAL)
            return -EBADF;
        /* POLLHUP / POLLERR / POLLRDHUP are never asked for but always
         * reported: any bit set means "look at this fd". */
        return (p[0].revents ? 1 : 0) | (p[1].revents ? 2 : 0);
    }
}
