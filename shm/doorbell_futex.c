/* SPDX-License-Identifier: MIT */
/*
 * futex doorbell (Linux). The doorbell is a u32 in shared memory (the ring's
 * data_seq / space_seq word): the ringer increments it and wakes whoever
 * sleeps on it, the sleeper sleeps while it still holds the value it read
 * before arming its sleep flag. No descriptors at all.
 *
 * Not FUTEX_PRIVATE_FLAG: the two sides are different processes, and a
 * private futex is keyed by (mm, address), which never matches across them.
 *
 * A futex cannot be polled together with a descriptor, so the wait sleeps in
 * slices of at most SLICE_NS while it has a watch_fd and looks at the watch_fd
 * (poll, timeout 0) between slices: a dead peer is noticed within a slice.
 * It also looks before the first slice, unless this thread looked at the
 * same watch_fd within the current tick of the coarse clock: a worker in a
 * request loop sleeps once per round trip, and there the look was a third of
 * its system calls. The last look is the thread's, not the doorbell's: a
 * field in the doorbell would move the channel's hot fields, and a thread
 * that alternates between two clients merely looks more often.
 */
#include "shm/doorbell.h"

#include <errno.h>

#include "shm/clock.h"
#include "shm/doorbell_common.h"
#include "shm/doorbell_impl.h"

#if defined(RIPC_HAVE_FUTEX)

#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SLICE_NS (50 * 1000000ull)

/* The watch_fd this thread last looked at, and when (ripc__coarse_ns). */
static _Thread_local struct {
    int fd;
    uint64_t at;
} last_look = {-1, 0};

static long futex(_Atomic uint32_t *word, int op, uint32_t val, const struct timespec *ts)
{
    /* The kernel reads and compares the word atomically itself. */
    uint32_t *uaddr = (uint32_t *)(uintptr_t)word;
#if defined(SYS_futex_time64)
    /* 32-bit with a 64-bit time_t: the old call would misread ts. */
    if (sizeof(time_t) > sizeof(long))
        return syscall(SYS_futex_time64, uaddr, op, val, ts, NULL, 0);
#endif
    return syscall(SYS_futex, uaddr, op, val, ts, NULL, 0);
}

int ripc__doorbell_futex_usable(void)
{
    _Atomic uint32_t probe = 0;
    /* Waking nobody is harmless and tells us whether the call exists here
     * (seccomp filters and old emulators answer ENOSYS). */
    return futex(&probe, FUTEX_WAKE, 1, NULL) >= 0;
}

int ripc__doorbell_futex_open(ripc__doorbell *db, _Atomic uint32_t *word)
{
    if (!ripc__doorbell_futex_usable())
        return -ENOSYS;
    /* The word belongs to the ring's memory and may already be in use by
     * the peer: it is not reset here. */
    db->kind = RIPC_DB_FUTEX;
    db->word = word;
    return 0;
}

int ripc__doorbell_futex_adopt(ripc__doorbell *db, int wait_fd, int ring_fd, _Atomic uint32_t *word)
{
    (void)wait_fd;
    (void)ring_fd;
    return ripc__doorbell_futex_open(db, word);
}

void ripc__doorbell_futex_ring(ripc__doorbell *db)
{
    /* Release pairs with the acquire load in ripc__doorbell_seq() and in the
     * wait below: what the ringer wrote before ringing is visible to a
     * sleeper that sees the new value. (The ring's data itself is ordered by
     * its own index stores; this is for callers that use the word alone.) */
    atomic_fetch_add_explicit(db->word, 1, memory_order_release);
    /* Wake everyone: waits are by one thread at a time, so this is one
     * sleeper at most, and INT_MAX costs nothing more than 1. */
    (void)futex(db->word, FUTEX_WAKE, INT_MAX, NULL);
}

int ripc__doorbell_futex_wait(ripc__doorbell *db, uint32_t seen, int watch_fd, int timeout_ms)
{
    uint64_t deadline = ripc__deadline(timeout_ms);
    for (;;) {
        /* The word wins over watch_fd, as a readable doorbell does in the
         * other kinds. Acquire: see ripc__doorbell_futex_ring(). */
        if (atomic_load_explicit(db->word, memory_order_acquire) != seen)
            return 1;
        /* A look for a wait of 0 always: that wait is nothing else. */
        uint64_t cnow = watch_fd >= 0 ? ripc__coarse_ns() : 0;
        if (watch_fd >= 0 &&
            (timeout_ms == 0 || cnow != last_look.at || watch_fd != last_look.fd)) {
            last_look.fd = watch_fd;
            last_look.at = cnow;
            int rc = ripc__doorbell_poll(-1, watch_fd, 0);
            if (rc != 0)
                return rc < 0 ? rc : 2;
        }
        uint64_t slice = ripc__remaining_ns(deadline);
        if (slice == 0)
            return 0;
        if (watch_fd >= 0 && slice > SLICE_NS)
            slice = SLICE_NS;
        struct timespec ts, *tsp = NULL;
        if (slice != RIPC_DEADLINE_NEVER) {
            ts.tv_sec = (time_t)(slice / 1000000000);
            ts.tv_nsec = (long)(slice % 1000000000);
            tsp = &ts; /* FUTEX_WAIT takes a relative CLOCK_MONOTONIC time */
        }
        /* Sleeps only while *word == seen (checked atomically with queueing
         * us, so a ring between our load and this call is not lost: EAGAIN). */
        if (futex(db->word, FUTEX_WAIT, seen, tsp) < 0 && errno != EAGAIN && errno != ETIMEDOUT &&
            errno != EINTR)
            return -errno;
        /* Woken, timed out, interrupted or spurious: the loop re-checks the
         * word, watch_fd and the clock. */
    }
}

int ripc__doorbell_futex_drain(ripc__doorbell *db)
{
    (void)db;
    return 0;
}

#else /* !RIPC_HAVE_FUTEX */

int ripc__doorbell_futex_usable(void)
{
    return 0;
}

int ripc__doorbell_futex_open(ripc__doorbell *db, _Atomic uint32_t *word)
{
    (void)db;
    (void)word;
    return -ENOSYS;
}

int ripc__doorbell_futex_adopt(ripc__doorbell *db, int wait_fd, int ring_fd, _Atomic uint32_t *word)
{
    (void)db;
    (void)wait_fd;
    (void)ring_fd;
    (void)word;
    return -ENOSYS;
}

void ripc__doorbell_futex_ring(ripc__doorbell *db)
{
    (void)db;
}

int ripc__doorbell_futex_wait(ripc__doorbell *db, uint32_t seen, int watch_fd, int timeout_ms)
{
    (void)db;
    (void)seen;
    (void)watch_fd;
    (void)timeout_ms;
    return -ENOSYS;
}

int ripc__doorbell_futex_drain(ripc__doorbell *db)
{
    (void)db;
    return 0;
}

#endif
