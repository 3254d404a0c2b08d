/* SPDX-License-Identifier: MIT */
/*
 * Doorbells on Windows (contract: shm/doorbell.h): the event kind alone,
 * dispatcher included, since none of the POSIX kinds exists there.
 *
 * An auto-reset event is the eventfd's counterpart: one object that both
 * waits and rings, a ring that finds nobody asleep stays pending until the
 * next wait consumes it, and rings coalesce. What a peer holding the handle
 * (EVENT_MODIFY_STATE | SYNCHRONIZE) can do to it: set it (a spurious
 * wake-up, which callers allow) or reset it (a lost wake-up of its own
 * ring: each worker has its own events, so it delays only itself). It
 * cannot make SetEvent block or fail, the reason the Linux design keeps
 * eventfds away from workers.
 *
 * No futex word: WaitOnAddress wakes threads of one process only. The
 * sleeper that wants to see its peer die waits on the peer's process
 * handle too (watch_fd), which is signalled however the peer ends.
 */
#include "shm/doorbell.h"

#include <errno.h>
#include <stddef.h>

#include "platform/win32.h"
#include "shm/clock.h"

static void db_reset(ripc__doorbell *db)
{
    db->kind = RIPC_DB_NONE;
    db->wait_fd = -1;
    db->ring_fd = -1;
    db->word = NULL;
}

uint32_t ripc__doorbell_caps(void)
{
    return RIPC_DB_CAP(RIPC_DB_EVENT);
}

int ripc__doorbell_open(ripc__doorbell *db, int kind, _Atomic uint32_t *word)
{
    (void)word;
    if (db == NULL)
        return -EINVAL;
    db_reset(db);
    if (kind == RIPC_DB_EVENTFD || kind == RIPC_DB_FUTEX || kind == RIPC_DB_SOCKET)
        return -ENOSYS;
    if (kind != RIPC_DB_EVENT)
        return -EINVAL;
    /* Auto-reset, not signalled, unnamed, not inheritable. */
    HANDLE h = CreateEventW(NULL, FALSE, FALSE, NULL);
    if (h == NULL)
        return ripc__win32_errno(GetLastError());
    db->kind = RIPC_DB_EVENT;
    db->wait_fd = db->ring_fd = ripc__handle_to_fd(h);
    return 0;
}

int ripc__doorbell_adopt(ripc__doorbell *db, int kind, int wait_fd, int ring_fd,
                         _Atomic uint32_t *word)
{
    if (db == NULL)
        return -EINVAL;
    db_reset(db);
    if (kind == RIPC_DB_EVENTFD || kind == RIPC_DB_FUTEX || kind == RIPC_DB_SOCKET)
        return -ENOSYS;
    if (kind != RIPC_DB_EVENT || word != NULL)
        return -EINVAL;
    /* One object: the same handle waits and rings. */
    if ((wait_fd < 0 && ring_fd < 0) || (wait_fd >= 0 && ring_fd >= 0 && wait_fd != ring_fd))
        return -EINVAL;
    db->kind = RIPC_DB_EVENT;
    db->wait_fd = wait_fd;
    db->ring_fd = ring_fd;
    return 0;
}

void ripc__doorbell_close(ripc__doorbell *db)
{
    if (db == NULL)
        return;
    /* A zeroed struct (kind NONE) owns nothing. */
    if (db->kind == RIPC_DB_EVENT) {
        if (db->wait_fd >= 0)
            CloseHandle(ripc__fd_to_handle(db->wait_fd));
        if (db->ring_fd >= 0 && db->ring_fd != db->wait_fd)
            CloseHandle(ripc__fd_to_handle(db->ring_fd));
    }
    db_reset(db);
}

/* Nothing queues in an event: there is nothing to shut. */
void ripc__doorbell_hangup(ripc__doorbell *db)
{
    (void)db;
}

void ripc__doorbell_ring(ripc__doorbell *db)
{
    if (db == NULL || db->kind != RIPC_DB_EVENT || db->ring_fd < 0)
        return;
    /* Callers may look at errno or the last error after us. */
    int saved = errno;
    DWORD saved_last = GetLastError();
    SetEvent(ripc__fd_to_handle(db->ring_fd));
    SetLastError(saved_last);
    errno = saved;
}

int ripc__doorbell_wait(ripc__doorbell *db, uint32_t seen, int watch_fd, int timeout_ms)
{
    (void)seen;
    if (db == NULL || db->kind != RIPC_DB_EVENT || db->wait_fd < 0)
        return -EINVAL;
    HANDLE hs[2] = {ripc__fd_to_handle(db->wait_fd), ripc__fd_to_handle(watch_fd)};
    DWORD n = watch_fd >= 0 ? 2 : 1;
    uint64_t deadline = ripc__deadline(timeout_ms);
    for (;;) {
        int ms = ripc__remaining_ms(deadline);
        /* INFINITE is 0xffffffff; a finite wait is cut below it. */
        DWORD r = WaitForMultipleObjects(n, hs, FALSE, ms < 0 ? INFINITE : (DWORD)ms);
        if (r == WAIT_OBJECT_0)
            return 1;
        if (r == WAIT_OBJECT_0 + 1 || r == WAIT_ABANDONED_0 + 1)
            return 2;
        if (r == WAIT_TIMEOUT) {
            if (ms == 0 || ripc__expired(deadline))
                return 0;
            continue; /* woke a little early: the rest of the time */
        }
        return r == WAIT_FAILED ? ripc__win32_errno(GetLastError()) : -EIO;
    }
}

void ripc__doorbell_ring_word(ripc__doorbell *db)
{
    ripc__doorbell_ring(db); /* no word on Windows */
}

int ripc__doorbell_wait_word(ripc__doorbell *db, uint32_t seen, int watch_fd, int timeout_ms)
{
    (void)seen;
    (void)watch_fd;
    (void)timeout_ms;
    (void)db;
    return -EINVAL; /* no word on Windows */
}

uint32_t ripc__doorbell_seq(const ripc__doorbell *db)
{
    (void)db;
    return 0;
}

/* An event cannot tell whether its ringers are gone: the caller learns
 * that from the peer's process handle or its control pipe. */
int ripc__doorbell_drain(ripc__doorbell *db)
{
    if (db != NULL && db->kind == RIPC_DB_EVENT && db->wait_fd >= 0)
        WaitForSingleObject(ripc__fd_to_handle(db->wait_fd), 0);
    return 0;
}
