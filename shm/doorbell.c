/* SPDX-License-Identifier: MIT */
/*
 * Doorbells: the dispatcher (contract: shm/doorbell.h). Everything that does
 * not depend on the kind lives here: argument checks, close, caps, names.
 * The kinds themselves are in doorbell_eventfd.c, doorbell_futex.c and
 * doorbell_socket.c; the helpers they share in doorbell_common.c.
 */
#include "shm/doorbell.h"

#include <errno.h>
#include <stddef.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shm/doorbell_impl.h"
#include "sockets/closer.h"

static void db_reset(ripc__doorbell *db)
{
    db->kind = RIPC_DB_NONE;
    db->wait_fd = -1;
    db->ring_fd = -1;
    db->word = NULL;
}

uint32_t ripc__doorbell_caps(void)
{
    uint32_t caps = 0;
    if (ripc__doorbell_eventfd_usable())
        caps |= RIPC_DB_CAP(RIPC_DB_EVENTFD);
    if (ripc__doorbell_futex_usable())
        caps |= RIPC_DB_CAP(RIPC_DB_FUTEX);
    if (ripc__doorbell_socket_usable())
        caps |= RIPC_DB_CAP(RIPC_DB_SOCKET);
    return caps;
}

/* The futex word must be a naturally aligned u32 (the kernel says -EINVAL
 * otherwise, but only once somebody waits). */
static int word_ok(_Atomic uint32_t *word)
{
    return word != NULL && ((uintptr_t)word & (sizeof(uint32_t) - 1)) == 0;
}

int ripc__doorbell_open(ripc__doorbell *db, int kind, _Atomic uint32_t *word)
{
    if (db == NULL)
        return -EINVAL;
    db_reset(db);
    switch (kind) {
    case RIPC_DB_EVENTFD:
        return ripc__doorbell_eventfd_open(db, NULL);
    case RIPC_DB_FUTEX:
        if (!word_ok(word))
            return -EINVAL;
        return ripc__doorbell_futex_open(db, word);
    case RIPC_DB_SOCKET:
        return ripc__doorbell_socket_open(db, NULL);
    default:
        return -EINVAL;
    }
}

int ripc__doorbell_adopt(ripc__doorbell *db, int kind, int wait_fd, int ring_fd,
                         _Atomic uint32_t *word)
{
    if (db == NULL)
        return -EINVAL;
    db_reset(db);
    switch (kind) {
    case RIPC_DB_EVENTFD:
        /* One object: the same fd waits and rings. */
        if ((wait_fd < 0 && ring_fd < 0) || (wait_fd >= 0 && ring_fd >= 0 && wait_fd != ring_fd))
            return -EINVAL;
        return ripc__doorbell_eventfd_adopt(db, wait_fd, ring_fd, NULL);
    case RIPC_DB_FUTEX:
        /* No descriptors: a futex doorbell is only the shared word. */
        if (!word_ok(word) || wait_fd >= 0 || ring_fd >= 0)
            return -EINVAL;
        return ripc__doorbell_futex_adopt(db, -1, -1, word);
    case RIPC_DB_SOCKET:
        if ((wait_fd < 0 && ring_fd < 0) || (wait_fd >= 0 && wait_fd == ring_fd))
            return -EINVAL;
        return ripc__doorbell_socket_adopt(db, wait_fd, ring_fd, NULL);
    default:
        return -EINVAL;
    }
}

void ripc__doorbell_close(ripc__doorbell *db)
{
    if (db == NULL)
        return;
    /* Only kinds that own descriptors close anything: a zeroed struct
     * (kind NONE, fds 0) must not close stdin. */
    if (db->kind == RIPC_DB_EVENTFD) {
        if (db->wait_fd >= 0)
            close(db->wait_fd);
        if (db->ring_fd >= 0 && db->ring_fd != db->wait_fd)
            close(db->ring_fd);
    } else if (db->kind == RIPC_DB_SOCKET) {
        /* The peer can queue descriptors in either end (a socketpair goes
         * both ways): they must not be released on this thread. */
        ripc__sock_dispose(db->wait_fd);
        if (db->ring_fd != db->wait_fd)
            ripc__sock_dispose(db->ring_fd);
    }
    db_reset(db);
}

void ripc__doorbell_hangup(ripc__doorbell *db)
{
    if (db == NULL || db->kind != RIPC_DB_SOCKET)
        return;
    if (db->wait_fd >= 0)
        shutdown(db->wait_fd, SHUT_RDWR);
    if (db->ring_fd >= 0)
        shutdown(db->ring_fd, SHUT_RDWR);
}

void ripc__doorbell_ring(ripc__doorbell *db)
{
    /* May run in a signal handler: leave errno as we found it. */
    int saved = errno;
    switch (db->kind) {
    case RIPC_DB_EVENTFD:
        ripc__doorbell_eventfd_ring(db);
        break;
    case RIPC_DB_FUTEX:
        ripc__doorbell_futex_ring(db);
        break;
    case RIPC_DB_SOCKET:
        ripc__doorbell_socket_ring(db);
        break;
    default:
        break;
    }
    errno = saved;
}

int ripc__doorbell_wait(ripc__doorbell *db, uint32_t seen, int watch_fd, int timeout_ms)
{
    if (db == NULL)
        return -EINVAL;
    switch (db->kind) {
    case RIPC_DB_EVENTFD:
        if (db->wait_fd < 0)
            return -EINVAL;
        return ripc__doorbell_eventfd_wait(db, seen, watch_fd, timeout_ms);
    case RIPC_DB_FUTEX:
        if (db->word == NULL)
            return -EINVAL;
        return ripc__doorbell_futex_wait(db, seen, watch_fd, timeout_ms);
    case RIPC_DB_SOCKET:
        if (db->wait_fd < 0)
            return -EINVAL;
        return ripc__doorbell_socket_wait(db, seen, watch_fd, timeout_ms);
    default:
        return -EINVAL;
    }
}

void ripc__doorbell_ring_word(ripc__doorbell *db)
{
    int saved = errno;
    if (db->word != NULL)
        ripc__doorbell_futex_ring(db);
    else
        ripc__doorbell_ring(db);
    errno = saved;
}

int ripc__doorbell_wait_word(ripc__doorbell *db, uint32_t seen, int watch_fd, int timeout_ms)
{
    if (db == NULL || db->word == NULL)
        return -EINVAL;
    return ripc__doorbell_futex_wait(db, seen, watch_fd, timeout_ms);
}

uint32_t ripc__doorbell_seq(const ripc__doorbell *db)
{
    if (db->word == NULL)
        return 0;
    /* Acquire pairs with the release increment in the futex ring: whatever
     * the ringer wrote before ringing is visible once we see the new value. */
    return atomic_load_explicit(db->word, memory_order_acquire);
}

int ripc__doorbell_drain(ripc__doorbell *db)
{
    switch (db->kind) {
    case RIPC_DB_EVENTFD:
        return db->wait_fd >= 0 ? ripc__doorbell_eventfd_drain(db) : 0;
    case RIPC_DB_SOCKET:
        return db->wait_fd >= 0 ? ripc__doorbell_socket_drain(db) : 0;
    default:
        return 0; /* futex: nothing is queued; the caller re-reads the word */
    }
}
