/* SPDX-License-Identifier: MIT */
/*
 * The poller over poll(2) and the wake handle over a pipe (contract:
 * sockets/poller.h): what any POSIX system has.
 *
 * The registrations live in a table under a mutex. A wait copies the table
 * into a pollfd array of its own (sized by the add that grew the table: a
 * wait never allocates), with an interrupt pipe as the last entry, and
 * polls that. A change made by another thread while the owner polls
 * (a sender turning writability on) writes to the interrupt pipe: the wait
 * wakes, takes the change in and polls again. What poll reports is checked
 * against the table as it is then: events of a registration deleted or
 * replaced meanwhile, or no longer asked for, are not reported.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "shm/clock.h"
#include "sockets/poller.h"

struct reg {
    int fd;
    unsigned events;
    void *data;
};

struct ripc__poller {
    pthread_mutex_t mu;
    struct reg *regs; /* under mu */
    size_t n, cap;
    int polling;       /* under mu: the owner is inside poll() */
    size_t start;      /* owner only: where the next wait starts reporting */
    struct pollfd *pf; /* owner only: the wait's copy, cap + 1 entries */
    void **pdata;      /* owner only: the data each copied entry had */
    struct pollfd *next_pf; /* under mu: larger copy arrays, made by an add */
    void **next_pdata;      /* that grew the table, for the next wait to take */
    ripc__wake intr; /* a change from another thread ends the poll */
};

/* A pipe with both ends non-blocking and close-on-exec. fcntl after pipe():
 * pipe2 is not everywhere; a fork+exec in another thread in between could
 * inherit the two descriptors, which the library tolerates (they carry no
 * authority). */
static int pipe_open(int fds[2])
{
    if (pipe(fds) != 0)
        return -errno;
    for (int i = 0; i < 2; i++) {
        int fl = fcntl(fds[i], F_GETFL);
        int fd = fcntl(fds[i], F_GETFD);
        if (fl < 0 || fd < 0 || fcntl(fds[i], F_SETFL, fl | O_NONBLOCK) != 0 ||
            fcntl(fds[i], F_SETFD, fd | FD_CLOEXEC) != 0) {
            int err = errno;
            close(fds[0]);
            close(fds[1]);
            fds[0] = fds[1] = -1;
            return -err;
        }
    }
    return 0;
}

int ripc__wake_open(ripc__wake *w)
{
    int fds[2];
    int rc = pipe_open(fds);
    w->rfd = fds[0];
    w->wfd = fds[1];
    return rc;
}

void ripc__wake_close(ripc__wake *w)
{
    if (w->rfd >= 0)
        close(w->rfd);
    if (w->wfd >= 0)
        close(w->wfd);
    w->rfd = w->wfd = -1;
}

void ripc__wake_signal(ripc__wake *w)
{
    char c = 1;
    if (write(w->wfd, &c, 1) < 0) {
        /* EAGAIN: the pipe is full, so it is readable already */
    }
}

void ripc__wake_drain(ripc__wake *w)
{
    char buf[64];
    while (read(w->rfd, buf, sizeof buf) == (ssize_t)sizeof buf)
        ;
}

/*
 * Under mu (or before anybody else has pl): room for twice the
 * registrations, and copy arrays for a table that full, made here so that
 * a wait never allocates (a wait that could not copy the table would fail
 * at once, and a loop that retries it would spin while memory is short).
 * The owner may be polling its copy without mu: the new arrays wait in
 * next_pf / next_pdata until its next snapshot. -ENOMEM changes nothing.
 */
static int grow(ripc__poller *pl)
{
    size_t nc = pl->cap ? pl->cap * 2 : 16;
    struct pollfd *pf = malloc((nc + 1) * sizeof *pf);
    void **pd = malloc((nc + 1) * sizeof *pd);
    struct reg *nr = pf && pd ? realloc(pl->regs, nc * sizeof *nr) : NULL;
    if (!nr) {
        free(pf);
        free(pd);
        return -ENOMEM;
    }
    pl->regs = nr;
    pl->cap = nc;
    free(pl->next_pf);
    free(pl->next_pdata);
    pl->next_pf = pf;
    pl->next_pdata = pd;
    return 0;
}

int ripc__poller_open(ripc__poller **out)
{
    *out = NULL;
    ripc__poller *pl = calloc(1, sizeof *pl);
    if (!pl)
        return -ENOMEM;
    int rc = grow(pl);
    if (rc == 0)
        rc = ripc__wake_open(&pl->intr);
    if (rc < 0) {
        free(pl->regs);
        free(pl->next_pf);
        free(pl->next_pdata);
        free(pl);
        return rc;
    }
    pthread_mutex_init(&pl->mu, NULL);
    *out = pl;
    return 0;
}

void ripc__poller_close(ripc__poller *pl)
{
    if (!pl)
        return;
    ripc__wake_close(&pl->intr);
    pthread_mutex_destroy(&pl->mu);
    free(pl->regs);
    free(pl->pf);
    free(pl->pdata);
    free(pl->next_pf);
    free(pl->next_pdata);
    free(pl);
}

/* Index of fd's registration, or n. Under mu. */
static size_t find(const ripc__poller *pl, int fd)
{
    size_t i = 0;
    while (i < pl->n && pl->regs[i].fd != fd)
        i++;
    return i;
}

/* Under mu, after a change: a poll under way takes it in. */
static void changed(ripc__poller *pl)
{
    if (pl->polling)
        ripc__wake_signal(&pl->intr);
}

int ripc__poller_add(ripc__poller *pl, int fd, unsigned events, void *data)
{
    if (fd < 0 || fcntl(fd, F_GETFD) < 0)
        return -EBADF;
    int rc = 0;
    pthread_mutex_lock(&pl->mu);
    if (find(pl, fd) < pl->n) {
        rc = -EEXIST;
    } else if (pl->n == pl->cap) {
        rc = grow(pl);
    }
    if (rc == 0) {
        pl->regs[pl->n++] = (struct reg){fd, events, data};
        changed(pl);
    }
    pthread_mutex_unlock(&pl->mu);
    return rc;
}

int ripc__poller_mod(ripc__poller *pl, int fd, unsigned events, void *data)
{
    int rc = 0;
    pthread_mutex_lock(&pl->mu);
    size_t i = find(pl, fd);
    if (i == pl->n) {
        rc = -ENOENT;
    } else {
        pl->regs[i].events = events;
        pl->regs[i].data = data;
        changed(pl);
    }
    pthread_mutex_unlock(&pl->mu);
    return rc;
}

/* Under mu. */
static void del_at(ripc__poller *pl, size_t i)
{
    pl->regs[i] = pl->regs[--pl->n];
    changed(pl);
}

void ripc__poller_del(ripc__poller *pl, int fd)
{
    if (!pl || fd < 0)
        return;
    pthread_mutex_lock(&pl->mu);
    size_t i = find(pl, fd);
    if (i < pl->n)
        del_at(pl, i);
    pthread_mutex_unlock(&pl->mu);
}

/* Under mu, by the owner: copy the table for poll(), the interrupt pipe
 * last, into arrays an add made big enough (grow). */
static void snapshot(ripc__poller *pl)
{
    if (pl->next_pf) {
        free(pl->pf);
        free(pl->pdata);
        pl->pf = pl->next_pf;
        pl->pdata = pl->next_pdata;
        pl->next_pf = NULL;
        pl->next_pdata = NULL;
    }
    for (size_t i = 0; i < pl->n; i++) {
        short ev = (short)(((pl->regs[i].events & RIPC_POLL_IN) ? POLLIN : 0) |
                           ((pl->regs[i].events & RIPC_POLL_OUT) ? POLLOUT : 0));
        pl->pf[i] = (struct pollfd){.fd = pl->regs[i].fd, .events = ev};
        pl->pdata[i] = pl->regs[i].data;
    }
    pl->pf[pl->n] = (struct pollfd){.fd = pl->intr.rfd, .events = POLLIN};
}

/* Under mu: the events of the copy's entries, as the table now asks for
 * them, into ev (at most max), starting at the rotating start. */
static int collect(ripc__poller *pl, size_t np, ripc__poll_event *ev, int max)
{
    int k = 0;
    size_t first = pl->start, next = first;
    for (size_t j = 0; j < np && k < max; j++) {
        size_t c = (first + j) % np;
        short re = pl->pf[c].revents;
        if (!re)
            continue;
        size_t i = find(pl, pl->pf[c].fd);
        if (i == pl->n || pl->regs[i].data != pl->pdata[c])
            continue; /* deleted or replaced meanwhile: the next wait sees it */
        if (re & POLLNVAL) {
            del_at(pl, i); /* closed under us: as epoll forgets a closed fd */
            continue;
        }
        unsigned e = 0;
        if (re & (POLLIN | POLLHUP | POLLERR))
            e |= RIPC_POLL_IN;
        if (re & (POLLHUP | POLLERR))
            e |= RIPC_POLL_HUP;
        if ((re & POLLOUT) && (pl->regs[i].events & RIPC_POLL_OUT))
            e |= RIPC_POLL_OUT;
        if (!e)
            continue;
        ev[k++] = (ripc__poll_event){pl->regs[i].data, e};
        next = c + 1;
    }
    pl->start = next;
    return k;
}

int ripc__poller_wait(ripc__poller *pl, ripc__poll_event *ev, int max, int timeout_ms)
{
    uint64_t deadline = ripc__deadline(timeout_ms);
    for (;;) {
        pthread_mutex_lock(&pl->mu);
        snapshot(pl);
        size_t np = pl->n;
        pl->polling = 1;
        pthread_mutex_unlock(&pl->mu);
        int r = poll(pl->pf, (nfds_t)np + 1, timeout_ms == 0 ? 0 : ripc__remaining_ms(deadline));
        int err = errno;
        pthread_mutex_lock(&pl->mu);
        pl->polling = 0;
        if (r > 0 && pl->pf[np].revents)
            ripc__wake_drain(&pl->intr);
        int k = r > 0 ? collect(pl, np, ev, max) : 0;
        pthread_mutex_unlock(&pl->mu);
        if (r < 0)
            return -err;
        /* Woken only to take a change in, or for events no longer asked
         * for: wait again for what is left of the time. */
        if (k > 0 || r == 0 || timeout_ms == 0 || ripc__expired(deadline))
            return k;
    }
}

int ripc__poller_fd(const ripc__poller *pl)
{
    (void)pl;
    return -ENOTSUP;
}
