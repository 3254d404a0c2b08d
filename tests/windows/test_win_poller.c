/* SPDX-License-Identifier: MIT */
/*
 * The poller and the wake handle on Windows (sockets/poller.h,
 * sockets/poller_win32.c): level-triggered readiness of pipe connections
 * and event handles, more registrations than one WaitForMultipleObjects
 * takes, changes from another thread while the owner sleeps.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "platform/win32.h"
#include "shm/clock.h"
#include "shm/doorbell.h"
#include "sockets/poller.h"
#include "sockets/sock.h"
#include "windows/win_support.h"

#define NBELLS 100 /* event handles: auto-reset, as doorbells are */
#define NPIPES 40  /* connections, each watched on its server's end */

static ripc__doorbell bells[NBELLS];
static intptr_t lfd, cli[NPIPES], srv[NPIPES];

/* Tags for the user pointers: bells at 1000 + i, pipes at 2000 + i. */
static void *tag(int base, int i)
{
    return (void *)(intptr_t)(base + i);
}

static void setup(void)
{
    char url[96], why[160] = "";
    ripc__addr a;
    snprintf(url, sizeof url, "unix:ringipc-test/%lu/poller", (unsigned long)GetCurrentProcessId());
    WCHECK_EQ(ripc__addr_parse(&a, url, why, sizeof why), 0);
    WCHECK_EQ(ripc__sock_listen(&a, &lfd, why, sizeof why), 0);
    for (int i = 0; i < NPIPES; i++) {
        WCHECK_EQ(ripc__sock_connect(&a, &cli[i], 5000, why, sizeof why), 0);
        WCHECK_EQ(ripc__sock_wait(lfd, RIPC_SOCK_IN, ripc__deadline(5000)), RIPC_SOCK_IN);
        WCHECK_EQ(ripc__sock_accept(lfd, &srv[i]), 0);
    }
    for (int i = 0; i < NBELLS; i++)
        WCHECK_EQ(ripc__doorbell_open(&bells[i], RIPC_DB_EVENT, NULL), 0);
}

static ripc__poller *open_all(void)
{
    ripc__poller *pl;
    WCHECK_EQ(ripc__poller_open(&pl), 0);
    for (int i = 0; i < NBELLS; i++)
        WCHECK_EQ(ripc__poller_add(pl, bells[i].wait_fd, RIPC_POLL_IN, tag(1000, i)), 0);
    for (int i = 0; i < NPIPES; i++)
        if (cli[i] >= 0) /* not one test_many hung up */
            WCHECK_EQ(ripc__poller_add(pl, (int)srv[i], RIPC_POLL_IN, tag(2000, i)), 0);
    WCHECK_EQ(ripc__poller_add(pl, bells[0].wait_fd, RIPC_POLL_IN, NULL), -EEXIST);
    return pl;
}

/* One wait: exactly one event, for want, with events ev. */
static void expect_one(ripc__poller *pl, void *want, unsigned ev, int timeout_ms)
{
    ripc__poll_event e[8];
    int n = ripc__poller_wait(pl, e, 8, timeout_ms);
    WCHECK_EQ(n, 1);
    WCHECK_EQ((intptr_t)e[0].data, (intptr_t)want);
    WCHECK_EQ(e[0].events, ev);
}

static void test_many(void)
{
    ripc__poller *pl = open_all();
    ripc__poll_event e[8];
    uint64_t t0 = ripc__now_ns();
    WCHECK_EQ(ripc__poller_wait(pl, e, 8, 150), 0);
    WCHECK(ripc__now_ns() - t0 >= 100000000u);
    /* The last bell and the last pipe sit far past the first 64 handles:
     * they are a helper's. */
    for (int round = 0; round < 3; round++) {
        int i = NBELLS - 1 - round * 7;
        ripc__doorbell_ring(&bells[i]);
        /* Level-triggered: reported until drained. */
        expect_one(pl, tag(1000, i), RIPC_POLL_IN, 5000);
        expect_one(pl, tag(1000, i), RIPC_POLL_IN, 0);
        ripc__doorbell_drain(&bells[i]);
        WCHECK_EQ(ripc__poller_wait(pl, e, 8, 0), 0);

        int p = NPIPES - 1 - round * 5;
        WCHECK_EQ(ripc__sock_send_all(cli[p], "ab", 2), 0);
        expect_one(pl, tag(2000, p), RIPC_POLL_IN, 5000);
        expect_one(pl, tag(2000, p), RIPC_POLL_IN, 0);
        char buf[2];
        WCHECK_EQ(ripc__sock_recv_all(srv[p], buf, 2, 1000), 0);
        WCHECK_EQ(ripc__poller_wait(pl, e, 8, 0), 0);
    }
    /* Many ready at once: max at a time, and none starves. */
    for (int i = 0; i < NBELLS; i += 10)
        ripc__doorbell_ring(&bells[i]);
    int seen[NBELLS] = {0}, total = 0;
    for (int w = 0; w < 20 && total < NBELLS / 10; w++) {
        int n = ripc__poller_wait(pl, e, 3, 1000);
        WCHECK(n > 0 && n <= 3);
        for (int k = 0; k < n; k++) {
            int i = (int)(intptr_t)e[k].data - 1000;
            WCHECK(i >= 0 && i < NBELLS && i % 10 == 0);
            if (!seen[i]++)
                total++;
            ripc__doorbell_drain(&bells[i]);
        }
    }
    WCHECK_EQ(total, NBELLS / 10);
    WCHECK_EQ(ripc__poller_wait(pl, e, 8, 0), 0);
    /* A hang-up: IN and HUP. */
    ripc__sock_close(cli[NPIPES - 2]);
    cli[NPIPES - 2] = -1;
    expect_one(pl, tag(2000, NPIPES - 2), RIPC_POLL_IN | RIPC_POLL_HUP, 5000);
    ripc__poller_del(pl, (int)srv[NPIPES - 2]);
    WCHECK_EQ(ripc__poller_wait(pl, e, 8, 0), 0);
    /* Writability, switched on and off. */
    WCHECK_EQ(ripc__poller_mod(pl, (int)srv[3], RIPC_POLL_IN | RIPC_POLL_OUT, tag(3000, 3)), 0);
    expect_one(pl, tag(3000, 3), RIPC_POLL_OUT, 0);
    WCHECK_EQ(ripc__poller_mod(pl, (int)srv[3], RIPC_POLL_IN, tag(2000, 3)), 0);
    WCHECK_EQ(ripc__poller_wait(pl, e, 8, 0), 0);
    WCHECK_EQ(ripc__poller_mod(pl, 4 * 1000 + 3, RIPC_POLL_IN, NULL), -ENOENT);
    ripc__poller_close(pl);
}

/* ---- another thread: wake, add while the owner sleeps ---- */

struct other {
    ripc__poller *pl;
    ripc__wake *wake;
    HANDLE go;
    int what; /* 0 signal the wake handle, 1 add a rung bell */
    ripc__doorbell *bell;
    int rc;
};

static DWORD WINAPI other_main(void *arg)
{
    struct other *o = arg;
    WaitForSingleObject(o->go, INFINITE);
    /* The owner is in its wait, or about to be: either way the change
     * must end it. */
    Sleep(50);
    if (o->what == 0) {
        ripc__wake_signal(o->wake);
    } else {
        ripc__doorbell_ring(o->bell);
        o->rc = ripc__poller_add(o->pl, o->bell->wait_fd, RIPC_POLL_IN, o->bell);
    }
    return 0;
}

static void from_other(struct other *o)
{
    o->go = CreateEventW(NULL, TRUE, FALSE, NULL);
    HANDLE t = CreateThread(NULL, 0, other_main, o, 0, NULL);
    WCHECK(t != NULL);
    SetEvent(o->go);
    ripc__poll_event e[8];
    uint64_t t0 = ripc__now_ns();
    int n = ripc__poller_wait(o->pl, e, 8, -1);
    WCHECK(ripc__now_ns() - t0 < 10000000000u);
    WCHECK_EQ(n, 1);
    WCHECK_EQ(e[0].events, RIPC_POLL_IN);
    WCHECK_EQ(WaitForSingleObject(t, 5000), WAIT_OBJECT_0);
    CloseHandle(t);
    CloseHandle(o->go);
}

static void test_wake_and_add(void)
{
    ripc__poller *pl = open_all();
    ripc__wake w;
    WCHECK_EQ(ripc__wake_open(&w), 0);
    WCHECK_EQ(ripc__poller_add(pl, w.rfd, RIPC_POLL_IN, &w), 0);
    struct other o = {.pl = pl, .wake = &w, .what = 0};
    from_other(&o);
    /* Signals coalesce and stay until drained. */
    ripc__wake_signal(&w);
    expect_one(pl, &w, RIPC_POLL_IN, 0);
    ripc__wake_drain(&w);
    ripc__poll_event e[8];
    WCHECK_EQ(ripc__poller_wait(pl, e, 8, 0), 0);

    ripc__doorbell extra;
    WCHECK_EQ(ripc__doorbell_open(&extra, RIPC_DB_EVENT, NULL), 0);
    struct other o2 = {.pl = pl, .what = 1, .bell = &extra, .rc = 1};
    from_other(&o2);
    WCHECK_EQ(o2.rc, 0);
    expect_one(pl, &extra, RIPC_POLL_IN, 0);
    ripc__doorbell_drain(&extra);
    ripc__poller_del(pl, extra.wait_fd);
    ripc__poller_del(pl, w.rfd);
    ripc__doorbell_close(&extra);
    ripc__wake_close(&w);
    ripc__poller_close(pl);
}

/* The wake handle alone, polled by ripc__sock_wait as a plain handle. */
static void test_wake_handle(void)
{
    ripc__wake w;
    WCHECK_EQ(ripc__wake_open(&w), 0);
    WCHECK_EQ(ripc__sock_wait(w.rfd, RIPC_SOCK_IN, ripc__deadline(0)), 0);
    ripc__wake_signal(&w);
    ripc__wake_signal(&w);
    WCHECK_EQ(ripc__sock_wait(w.rfd, RIPC_SOCK_IN, ripc__deadline(0)), RIPC_SOCK_IN);
    WCHECK_EQ(ripc__sock_wait(w.rfd, RIPC_SOCK_IN, ripc__deadline(0)), RIPC_SOCK_IN);
    ripc__wake_drain(&w);
    WCHECK_EQ(ripc__sock_wait(w.rfd, RIPC_SOCK_IN, ripc__deadline(50)), 0);
    ripc__wake_close(&w);
    ripc__wake_close(&w); /* closed: fine */
}

int main(void)
{
    setup();
    win_case("wake_handle", test_wake_handle);
    win_case("many", test_many);
    win_case("wake_and_add", test_wake_and_add);
    for (int i = 0; i < NPIPES; i++) {
        ripc__sock_close(cli[i]);
        ripc__sock_close(srv[i]);
    }
    ripc__sock_close(lfd);
    for (int i = 0; i < NBELLS; i++)
        ripc__doorbell_close(&bells[i]);
    return 0;
}
