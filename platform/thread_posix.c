/* SPDX-License-Identifier: MIT */
/*
 * The parts of platform/thread.h that any POSIX system has in one form:
 * monotonic condition variables, signal masks, naps and ids.
 */
#include "platform/thread.h"

#include <errno.h>
#include <time.h>
#include <unistd.h>

void ripc__cond_init_monotonic(pthread_cond_t *cv)
{
#if defined(__APPLE__)
    /* No pthread_condattr_setclock: waits are relative there
     * (ripc__cond_wait_until), so the clock does not matter. */
    pthread_cond_init(cv, NULL);
    return;
#endif
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
}

int ripc__sigbus_unblock(sigset_t *old)
{
    sigset_t bus;
    sigemptyset(&bus);
    sigaddset(&bus, SIGBUS);
    return -pthread_sigmask(SIG_UNBLOCK, &bus, old);
}

void ripc__sigmask_restore(const sigset_t *mask)
{
    pthread_sigmask(SIG_SETMASK, mask, NULL);
}

void ripc__nap_ns(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u)};
    nanosleep(&ts, NULL);
}

int32_t ripc__self_pid(void)
{
    return (int32_t)getpid();
}

uint32_t ripc__self_euid(void)
{
    return (uint32_t)geteuid();
}
