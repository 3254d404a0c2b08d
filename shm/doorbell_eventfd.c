/* SPDX-License-Identifier: MIT */
/*
 * eventfd doorbell (Linux). One counter object: the ringer adds 1, the
 * sleeper polls for readability and reads, which resets the counter to 0, so
 * any number of rings between two waits coalesce into one wake-up. Both
 * sides hold the same file (the master's fd travels by SCM_RIGHTS).
 *
 * O_NONBLOCK lives on the shared open file, not on our descriptor: a ring
 * that finds the counter saturated gets EAGAIN (already pending: fine) and a
 * read that finds it empty gets EAGAIN, instead of either blocking.
 */
#include "shm/doorbell.h"

#include <errno.h>

#include "shm/clock.h"
#include "shm/doorbell_common.h"
#include "shm/doorbell_impl.h"
#include "sockets/sock.h"

#if defined(RIPC_HAVE_EVENTFD)

#include <sys/eventfd.h>
#include <unistd.h>

int ripc__doorbell_eventfd_usable(void)
{
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0)
        return 0;
    close(fd);
    return 1;
}

int ripc__doorbell_eventfd_open(ripc__doorbell *db, _Atomic uint32_t *word)
{
    (void)word;
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0)
        return errno == EINVAL ? -ENOSYS : -errno;
    db->kind = RIPC_DB_EVENTFD;
    db->wait_fd = fd;
    db->ring_fd = fd;
    return 0;
}

int ripc__doorbell_eventfd_adopt(ripc__doorbell *db, int wait_fd, int ring_fd,
                                 _Atomic uint32_t *word)
{
    (void)word;
    int fd = wait_fd >= 0 ? wait_fd : ring_fd;
    int rc = ripc__fd_prepare(fd, 1);
    if (rc < 0)
        return rc;
    db->kind = RIPC_DB_EVENTFD;
    db->wait_fd = fd;
    db->ring_fd = fd;
    return 0;
}

void ripc__doorbell_eventfd_ring(ripc__doorbell *db)
{
    uint64_t one = 1;
    if (db->ring_fd < 0)
        return;
    /* EAGAIN: the counter is saturated, a wake-up is pending anyway. Any
     * other error means the fd is gone; the waiter's watch_fd tells. */
    while (write(db->ring_fd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

static int consume(int fd)
{
    uint64_t v;
    ssize_t n;
    do {
        n = read(fd, &v, sizeof v);
    } while (n < 0 && errno == EINTR);
    /* EAGAIN after a readable poll: a peer holding the same file read it
     * first. Callers treat 1 as a hint and re-check anyway. */
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
        return -errno;
    return 1;
}

int ripc__doorbell_eventfd_wait(ripc__doorbell *db, uint32_t seen, int watch_fd, int timeout_ms)
{
    (void)seen;
    int rc = ripc__doorbell_poll(db->wait_fd, watch_fd, ripc__deadline(timeout_ms));
    if (rc <= 0)
        return rc;
    /* A ring wins over watch_fd: the caller takes what was published
     * first; watch_fd is level-triggered and reports again next time. */
    if (rc & 1)
        return consume(db->wait_fd);
    return 2;
}

int ripc__doorbell_eventfd_drain(ripc__doorbell *db)
{
    (void)consume(db->wait_fd);
    return 0; /* an eventfd has no end of stream */
}

#else /* !RIPC_HAVE_EVENTFD */

int ripc__doorbell_eventfd_usable(void)
{
    return 0;
}

int ripc__doorbell_eventfd_open(ripc__doorbell *db, _Atomic uint32_t *word)
{
    (void)db;
    (void)word;
    return -ENOSYS;
}

int ripc__doorbell_eventfd_adopt(ripc__doorbell *db, int wait_fd, int ring_fd,
                                 _Atomic uint32_t *word)
{
    (void)db;
    (void)wait_fd;
    (void)ring_fd;
    (void)word;
    return -ENOSYS;
}

void ripc__doorbell_eventfd_ring(ripc__doorbell *db)
{
    (void)db;
}

int ripc__doorbell_eventfd_wait(ripc__doorbell *db, uint32_t seen, int watch_fd, int timeout_ms)
{
    (void)db;
    (void)seen;
    (void)watch_fd;
    (void)timeout_ms;
    return -ENOSYS;
}

int ripc__doorbell_eventfd_drain(ripc__doorbell *db)
{
    (void)db;
    return 0;
}

#endif
