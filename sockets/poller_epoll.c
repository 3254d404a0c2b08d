/* SPDX-License-Identifier: MIT */
/* The poller over epoll and the wake handle over an eventfd (contract:
 * sockets/poller.h). Linux. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "sockets/poller.h"

struct ripc__poller {
    int epfd;
};

/* Largest batch collected at once; wait's callers ask for about that many. */
#define EPOLL_BATCH 64

int ripc__poller_open(ripc__poller **out)
{
    *out = NULL;
    ripc__poller *pl = malloc(sizeof *pl);
    if (!pl)
        return -ENOMEM;
    pl->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (pl->epfd < 0) {
        int err = errno;
        free(pl);
        return -err;
    }
    *out = pl;
    return 0;
}

void ripc__poller_close(ripc__poller *pl)
{
    if (!pl)
        return;
    close(pl->epfd);
    free(pl);
}

static uint32_t to_epoll(unsigned events)
{
    return ((events & RIPC_POLL_IN) ? EPOLLIN : 0u) | ((events & RIPC_POLL_OUT) ? EPOLLOUT : 0u);
}

static int ctl(ripc__poller *pl, int op, int fd, unsigned events, void *data)
{
    struct epoll_event e = {.events = to_epoll(events), .data.ptr = data};
    return epoll_ctl(pl->epfd, op, fd, &e) == 0 ? 0 : -errno;
}

int ripc__poller_add(ripc__poller *pl, int fd, unsigned events, void *data)
{
    return ctl(pl, EPOLL_CTL_ADD, fd, events, data);
}

int ripc__poller_mod(ripc__poller *pl, int fd, unsigned events, void *data)
{
    return ctl(pl, EPOLL_CTL_MOD, fd, events, data);
}

void ripc__poller_del(ripc__poller *pl, int fd)
{
    if (pl && fd >= 0)
        epoll_ctl(pl->epfd, EPOLL_CTL_DEL, fd, NULL);
}

int ripc__poller_wait(ripc__poller *pl, ripc__poll_event *ev, int max, int timeout_ms)
{
    struct epoll_event e[EPOLL_BATCH];
    int n = epoll_wait(pl->epfd, e, max < EPOLL_BATCH ? max : EPOLL_BATCH, timeout_ms);
    if (n < 0)
        return -errno;
    for (int i = 0; i < n; i++) {
        /* Anything but writability (data, hang-up, error) is for a read. */
        ev[i].data = e[i].data.ptr;
        ev[i].events = ((e[i].events & ~(uint32_t)EPOLLOUT) ? RIPC_POLL_IN : 0u) |
                       ((e[i].events & EPOLLOUT) ? RIPC_POLL_OUT : 0u) |
                       ((e[i].events & (EPOLLHUP | EPOLLERR)) ? RIPC_POLL_HUP : 0u);
    }
    return n;
}

int ripc__poller_fd(const ripc__poller *pl)
{
    return pl->epfd;
}

/* ---- the wake handle: one eventfd, read and written ---- */

int ripc__wake_open(ripc__wake *w)
{
    w->rfd = w->wfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return w->rfd >= 0 ? 0 : -errno;
}

void ripc__wake_close(ripc__wake *w)
{
    if (w->rfd >= 0)
        close(w->rfd);
    w->rfd = w->wfd = -1;
}

void ripc__wake_signal(ripc__wake *w)
{
    uint64_t one = 1;
    if (write(w->wfd, &one, sizeof one) < 0) {
        /* the counter is already non-zero */
    }
}

void ripc__wake_drain(ripc__wake *w)
{
    uint64_t v;
    if (read(w->rfd, &v, sizeof v) < 0) {
        /* nothing pending, or another reader took it */
    }
}
