/* SPDX-License-Identifier: MIT */
/*
 * platform/thread.h and shm/clock.h on Windows (platform/thread_win32.c):
 * the monotonic clock, timed locks and condition waits against a
 * deadline, naps, ids.
 */
#include <errno.h>
#include <pthread.h>

#include "platform/thread.h"
#include "platform/win32.h"
#include "shm/clock.h"
#include "windows/win_support.h"

static void clock_moves(void)
{
    uint64_t a = ripc__now_ns();
    ripc__nap_ns(2000000);
    uint64_t b = ripc__now_ns();
    WCHECK(b - a >= 1900000u && b - a < 5000000000u);
    WCHECK(ripc__coarse_ns() > 0);
    WCHECK_EQ(ripc__deadline(-1), RIPC_DEADLINE_NEVER);
    WCHECK(!ripc__expired(RIPC_DEADLINE_NEVER));
    WCHECK(ripc__expired(ripc__deadline(0)));
    uint64_t d = ripc__deadline(30);
    ripc__nap_until(d);
    WCHECK(ripc__expired(d));
}

struct held {
    pthread_mutex_t mu;
    HANDLE locked, release;
};

static void *hold(void *arg)
{
    struct held *h = arg;
    pthread_mutex_lock(&h->mu);
    SetEvent(h->locked);
    WaitForSingleObject(h->release, INFINITE);
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

static void timed_lock(void)
{
    struct held h = {.mu = PTHREAD_MUTEX_INITIALIZER};
    h.locked = CreateEventW(NULL, TRUE, FALSE, NULL);
    h.release = CreateEventW(NULL, TRUE, FALSE, NULL);
    WCHECK_EQ(ripc__mutex_lock_until(&h.mu, ripc__deadline(0)), 0);
    pthread_mutex_unlock(&h.mu);
    pthread_t th;
    WCHECK_EQ(pthread_create(&th, NULL, hold, &h), 0);
    WaitForSingleObject(h.locked, INFINITE);
    uint64_t t0 = ripc__now_ns();
    WCHECK_EQ(ripc__mutex_lock_until(&h.mu, ripc__deadline(100)), ETIMEDOUT);
    uint64_t took = ripc__now_ns() - t0;
    WCHECK(took >= 99000000u && took < 5000000000u);
    SetEvent(h.release);
    WCHECK_EQ(ripc__mutex_lock_until(&h.mu, ripc__deadline(30000)), 0);
    pthread_mutex_unlock(&h.mu);
    pthread_join(th, NULL);
    CloseHandle(h.locked);
    CloseHandle(h.release);
}

struct cv {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int flag;
};

static void *signal_it(void *arg)
{
    struct cv *c = arg;
    pthread_mutex_lock(&c->mu);
    c->flag = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

static void cond_wait(void)
{
    struct cv c = {.mu = PTHREAD_MUTEX_INITIALIZER};
    ripc__cond_init_monotonic(&c.cv);
    pthread_mutex_lock(&c.mu);
    uint64_t t0 = ripc__now_ns();
    int rc;
    do
        rc = ripc__cond_wait_until(&c.cv, &c.mu, ripc__deadline(100));
    while (rc == 0);
    WCHECK_EQ(rc, ETIMEDOUT);
    uint64_t took = ripc__now_ns() - t0;
    WCHECK(took >= 95000000u && took < 5000000000u);
    pthread_t th;
    WCHECK_EQ(pthread_create(&th, NULL, signal_it, &c), 0);
    uint64_t d = ripc__deadline(30000);
    while (!c.flag)
        WCHECK_EQ(ripc__cond_wait_until(&c.cv, &c.mu, d), 0);
    pthread_mutex_unlock(&c.mu);
    pthread_join(th, NULL);
    pthread_cond_destroy(&c.cv);
}

static void ids(void)
{
    WCHECK_EQ(ripc__self_pid(), (int32_t)GetCurrentProcessId());
    WCHECK_EQ(ripc__self_euid(), 0);
    sigset_t old;
    WCHECK_EQ(ripc__sigbus_unblock(&old), 0);
    ripc__sigmask_restore(&old);
    DWORD_PTR mine, sys;
    WCHECK(GetProcessAffinityMask(GetCurrentProcess(), &mine, &sys));
    WCHECK_EQ(ripc__spin_ok(0), (mine & (mine - 1)) != 0);
    ripc__yield();
}

int main(void)
{
    win_case("thread_clock", clock_moves);
    win_case("thread_timed_lock", timed_lock);
    win_case("thread_cond_wait", cond_wait);
    win_case("thread_ids", ids);
    return 0;
}
