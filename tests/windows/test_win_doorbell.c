/* SPDX-License-Identifier: MIT */
/*
 * Event doorbells on Windows (shm/doorbell_win32.c): rings, coalescing,
 * timeouts, a ping-pong with another process over duplicated handles, and
 * a peer that ends (or is killed) while we sleep seen through its process
 * handle.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "platform/win32.h"
#include "shm/clock.h"
#include "shm/doorbell.h"
#include "windows/win_support.h"

#define PEER_ACCESS (EVENT_MODIFY_STATE | SYNCHRONIZE)
#define ROUNDS      2000

static void kinds(void)
{
    WCHECK_EQ(ripc__doorbell_caps(), RIPC_DB_CAP(RIPC_DB_EVENT));
    WCHECK_EQ(strcmp(ripc__doorbell_name(RIPC_DB_EVENT), "event"), 0);
    ripc__doorbell db;
    WCHECK_EQ(ripc__doorbell_open(&db, RIPC_DB_EVENTFD, NULL), -ENOSYS);
    WCHECK_EQ(ripc__doorbell_open(&db, RIPC_DB_SOCKET, NULL), -ENOSYS);
    WCHECK_EQ(ripc__doorbell_open(&db, RIPC_DB_FUTEX, NULL), -ENOSYS);
    WCHECK_EQ(ripc__doorbell_open(&db, 99, NULL), -EINVAL);
    WCHECK_EQ(db.kind, RIPC_DB_NONE);
    WCHECK_EQ(ripc__doorbell_adopt(&db, RIPC_DB_EVENT, -1, -1, NULL), -EINVAL);
    WCHECK_EQ(ripc__doorbell_adopt(&db, RIPC_DB_EVENT, 8, 12, NULL), -EINVAL);
    WCHECK_EQ(ripc__doorbell_wait(&db, 0, -1, 0), -EINVAL);
    ripc__doorbell_close(&db); /* reset: a no-op */
    ripc__doorbell zero;
    memset(&zero, 0, sizeof zero);
    ripc__doorbell_close(&zero); /* kind NONE owns nothing */
    ripc__doorbell_ring(&zero);
}

static void ring_and_wait(void)
{
    ripc__doorbell db;
    WCHECK_EQ(ripc__doorbell_open(&db, RIPC_DB_EVENT, NULL), 0);
    WCHECK(db.wait_fd >= 0 && db.wait_fd == db.ring_fd && db.word == NULL);
    DWORD flags = 0;
    WCHECK(GetHandleInformation(ripc__fd_to_handle(db.wait_fd), &flags));
    WCHECK_EQ(flags & HANDLE_FLAG_INHERIT, 0);
    WCHECK_EQ(ripc__doorbell_wait(&db, 0, -1, 0), 0);
    /* Rings before the wait stay pending and coalesce into one. */
    ripc__doorbell_ring(&db);
    ripc__doorbell_ring(&db);
    ripc__doorbell_ring(&db);
    WCHECK_EQ(ripc__doorbell_wait(&db, 0, -1, 0), 1);
    WCHECK_EQ(ripc__doorbell_wait(&db, 0, -1, 0), 0);
    /* drain consumes a pending ring. */
    ripc__doorbell_ring(&db);
    WCHECK_EQ(ripc__doorbell_drain(&db), 0);
    WCHECK_EQ(ripc__doorbell_wait(&db, 0, -1, 0), 0);
    /* A ring leaves errno and the last error as they were. */
    errno = EDOM;
    SetLastError(ERROR_FILE_EXISTS);
    ripc__doorbell_ring(&db);
    WCHECK_EQ(errno, EDOM);
    WCHECK_EQ(GetLastError(), ERROR_FILE_EXISTS);
    WCHECK_EQ(ripc__doorbell_wait(&db, 0, -1, -1), 1);
    /* Timeouts: not early, not hanging. */
    uint64_t t0 = ripc__now_ns();
    WCHECK_EQ(ripc__doorbell_wait(&db, 0, -1, 200), 0);
    uint64_t took = ripc__now_ns() - t0;
    WCHECK(took >= 199000000u && took < 5000000000u);
    /* No word on Windows. */
    WCHECK_EQ(ripc__doorbell_seq(&db), 0);
    WCHECK_EQ(ripc__doorbell_wait_word(&db, 0, -1, 0), -EINVAL);
    ripc__doorbell_ring_word(&db); /* rings the event */
    WCHECK_EQ(ripc__doorbell_wait(&db, 0, -1, 0), 1);
    ripc__doorbell_hangup(&db);
    ripc__doorbell_close(&db);
    WCHECK_EQ(db.wait_fd, -1);
}

/* Child: adopts the parent's bell (to ring) and its own (to wait on),
 * watching the parent's process; answers every ring with one. */
static int child_pong(HANDLE in, HANDLE out)
{
    int ping = (int)win_get(in);
    int pong = (int)win_get(in);
    int parent = (int)win_get(in);
    ripc__doorbell mine, theirs;
    WCHECK_EQ(ripc__doorbell_adopt(&mine, RIPC_DB_EVENT, ping, -1, NULL), 0);
    WCHECK_EQ(ripc__doorbell_adopt(&theirs, RIPC_DB_EVENT, -1, pong, NULL), 0);
    win_put(out, 1);
    for (int i = 0; i < ROUNDS; i++) {
        WCHECK_EQ(ripc__doorbell_wait(&mine, 0, parent, 30000), 1);
        ripc__doorbell_ring(&theirs);
    }
    ripc__doorbell_close(&mine);
    ripc__doorbell_close(&theirs);
    return 0;
}

static void ping_pong(void)
{
    ripc__doorbell ping, pong;
    WCHECK_EQ(ripc__doorbell_open(&ping, RIPC_DB_EVENT, NULL), 0);
    WCHECK_EQ(ripc__doorbell_open(&pong, RIPC_DB_EVENT, NULL), 0);
    win_child c;
    win_child_start(&c, "pong");
    win_put(c.to, win_give(&c, ripc__fd_to_handle(ping.wait_fd), PEER_ACCESS));
    win_put(c.to, win_give(&c, ripc__fd_to_handle(pong.ring_fd), PEER_ACCESS));
    win_put(c.to, win_give(&c, GetCurrentProcess(), SYNCHRONIZE));
    WCHECK_EQ(win_get(c.from), 1);
    int watch = ripc__handle_to_fd(c.process);
    for (int i = 0; i < ROUNDS; i++) {
        ripc__doorbell_ring(&ping);
        WCHECK_EQ(ripc__doorbell_wait(&pong, 0, watch, 30000), 1);
    }
    WCHECK_EQ(win_child_end(&c, 30000), 0);
    ripc__doorbell_close(&ping);
    ripc__doorbell_close(&pong);
}

/* Child: says it is ready, then exits at once or waits to be killed. */
static int child_quit(HANDLE in, HANDLE out)
{
    uint64_t how = win_get(in);
    win_put(out, 1);
    if (how == 0)
        return 0;
    uint64_t never;
    win_get_try(in, &never); /* killed while reading */
    return 3;
}

struct killer {
    win_child *c;
};

static void *kill_when_ready(void *arg)
{
    struct killer *k = arg;
    WCHECK_EQ(win_get(k->c->from), 1);
    WCHECK(TerminateProcess(k->c->process, 9));
    return NULL;
}

static void peer_gone(void)
{
    ripc__doorbell db;
    WCHECK_EQ(ripc__doorbell_open(&db, RIPC_DB_EVENT, NULL), 0);
    /* It exits by itself while we sleep. */
    win_child c;
    win_child_start(&c, "quit");
    win_put(c.to, 0);
    WCHECK_EQ(win_get(c.from), 1);
    WCHECK_EQ(ripc__doorbell_wait(&db, 0, ripc__handle_to_fd(c.process), 30000), 2);
    WCHECK_EQ(win_child_end(&c, 30000), 0);
    /* Killed, by another thread, once it is ready, while we sleep. */
    win_child_start(&c, "quit");
    win_put(c.to, 1);
    struct killer k = {&c};
    pthread_t th;
    WCHECK_EQ(pthread_create(&th, NULL, kill_when_ready, &k), 0);
    uint64_t t0 = ripc__now_ns();
    WCHECK_EQ(ripc__doorbell_wait(&db, 0, ripc__handle_to_fd(c.process), -1), 2);
    WCHECK(ripc__now_ns() - t0 < 30000000000u);
    pthread_join(th, NULL);
    WCHECK_EQ(win_child_end(&c, 30000), 9);
    ripc__doorbell_close(&db);
}

int main(int argc, char **argv)
{
    const char *role;
    HANDLE in, out;
    if (win_child_args(argc, argv, &role, &in, &out)) {
        if (strcmp(role, "pong") == 0)
            return child_pong(in, out);
        if (strcmp(role, "quit") == 0)
            return child_quit(in, out);
        return 2;
    }
    win_case("doorbell_kinds", kinds);
    win_case("doorbell_ring_and_wait", ring_and_wait);
    win_case("doorbell_ping_pong_across_processes", ping_pong);
    win_case("doorbell_peer_gone", peer_gone);
    return 0;
}
