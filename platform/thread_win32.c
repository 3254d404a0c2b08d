/* SPDX-License-Identifier: MIT */
/*
 * platform/thread.h on Windows, over mingw-w64's winpthreads and Win32:
 * winpthreads' timed waits measure CLOCK_REALTIME, so the waits here are
 * relative to the time left until the monotonic deadline; Windows has no
 * signals to mask. Timed locks and absolute naps: platform/naps.c.
 */
#include "platform/thread.h"

#include <errno.h>
#include <time.h>

#include "platform/win32.h"
#include "shm/clock.h"

/* May a wait spin? Only with two CPUs in our affinity mask: a peer that
 * Windows keeps on our one CPU is not seen (it spins, for at most spin_us
 * per wait), as in the portable POSIX build. */
int ripc__spin_ok(int32_t peer_pid)
{
    (void)peer_pid;
    DWORD_PTR mine = 0, sys = 0;
    if (!GetProcessAffinityMask(GetCurrentProcess(), &mine, &sys))
        return 0;
    int n = 0;
    for (; mine != 0; mine &= mine - 1)
        n++;
    return n >= 2;
}

/* Waits are relative (ripc__cond_wait_until): the clock does not matter. */
void ripc__cond_init_monotonic(pthread_cond_t *cv)
{
    pthread_cond_init(cv, NULL);
}

int ripc__cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, uint64_t deadline)
{
    if (deadline == RIPC_DEADLINE_NEVER)
        return pthread_cond_wait(cv, mu);
    uint64_t left = ripc__remaining_ns(deadline);
    struct timespec rel = {.tv_sec = (time_t)(left / 1000000000u),
                           .tv_nsec = (long)(left % 1000000000u)};
    return pthread_cond_timedwait_relative_np(cv, mu, &rel);
}

/* No SIGBUS on Windows: a view of a section never faults
 * (shm/segment_win32.c). */
int ripc__sigbus_unblock(sigset_t *old)
{
    if (old != NULL)
        *old = 0;
    return 0;
}

void ripc__sigmask_restore(const sigset_t *mask)
{
    (void)mask;
}

/* Sleep() counts in scheduler ticks (15.6 ms by default); a
 * high-resolution waitable timer (Windows 10 1803 on) sleeps what is
 * asked. Where there is none, Sleep, rounded up. */
void ripc__nap_ns(uint64_t ns)
{
#ifndef CREATE_WAITABLE_TIMER_HIGH_RESOLUTION
#define CREATE_WAITABLE_TIMER_HIGH_RESOLUTION 0x2
#endif
    HANDLE t =
        CreateWaitableTimerExW(NULL, NULL, CREATE_WAITABLE_TIMER_HIGH_RESOLUTION, TIMER_ALL_ACCESS);
    if (t != NULL) {
        LARGE_INTEGER due;
        due.QuadPart = -(LONGLONG)((ns + 99) / 100); /* relative, in 100 ns units */
        if (SetWaitableTimer(t, &due, 0, NULL, NULL, FALSE)) {
            WaitForSingleObject(t, INFINITE);
            CloseHandle(t);
            return;
        }
        CloseHandle(t);
    }
    uint64_t ms = (ns + 999999) / 1000000;
    Sleep(ms > 0xfffffffe ? 0xfffffffe : (DWORD)ms);
}

int32_t ripc__self_pid(void)
{
    return (int32_t)GetCurrentProcessId();
}

/* No uids on Windows: the control channel compares token users (SIDs)
 * instead, and this stays 0. */
uint32_t ripc__self_euid(void)
{
    return 0;
}
