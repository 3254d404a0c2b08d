/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "src/internal.h"

uint64_t ripc__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t ripc__coarse_ns(void)
{
#ifdef CLOCK_MONOTONIC_COARSE
    /* The tick-granular clock: one read of the vDSO page (~5 ns here,
     * against ~22 ns for CLOCK_MONOTONIC, which reads the TSC). */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
#else
    return ripc__now_ns();
#endif
}

uint64_t ripc__deadline(int timeout_ms)
{
    if (timeout_ms < 0)
        return UINT64_MAX;
    return ripc__now_ns() + (uint64_t)timeout_ms * 1000000ull;
}

int ripc__remaining_ms(uint64_t deadline)
{
    if (deadline == UINT64_MAX)
        return -1;
    uint64_t now = ripc__now_ns();
    if (now >= deadline)
        return 0;
    uint64_t ms = (deadline - now + 999999) / 1000000;
    return ms > 0x7fffffff ? 0x7fffffff : (int)ms;
}

int ripc__spin_ok(int32_t peer_pid)
{
    /* Spinning pays only when the two sides can run at the same time: we
     * may use two CPUs, or the peer is allowed a CPU we are not on. Two
     * processes confined to one and the same CPU (taskset -c 0) must not
     * spin: each spin would only delay the peer it waits for. */
    cpu_set_t ours, theirs;
    if (sched_getaffinity(0, sizeof ours, &ours) != 0)
        return 0;
    if (CPU_COUNT(&ours) >= 2)
        return 1;
    if (peer_pid <= 0 || sched_getaffinity(peer_pid, sizeof theirs, &theirs) != 0)
        return 0;
    CPU_OR(&theirs, &theirs, &ours);
    return CPU_COUNT(&theirs) >= 2;
}

struct timespec ripc__timespec_at(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u),
                          .tv_nsec = (long)(ns % 1000000000u)};
    return ts;
}

void ripc__cond_init_monotonic(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
}

void ripc__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

void ripc__whyf(char *why, size_t len, const char *fmt, ...)
{
    if (why == NULL || len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
}

int ripc__ring_bytes_ok(size_t x)
{
    return x && (x & (x - 1)) == 0 && x >= RIPC_MIN_RING_BYTES && x <= RIPC_MAX_RING_BYTES;
}

void ripc__options_resolve(ripc_options *o, const ripc_options *in)
{
    static const ripc_options zero;
    *o = in ? *in : zero;
    if (o->ring_bytes == 0)
        o->ring_bytes = RIPC_DEFAULT_RING_BYTES;
    if (o->max_message == 0)
        o->max_message = RIPC_DEFAULT_MAX_MESSAGE;
    if (o->spin_us == 0 && o->wait != RIPC_WAIT_BLOCK)
        o->spin_us = RIPC_DEFAULT_SPIN_US;
    if (o->connect_timeout_ms == 0)
        o->connect_timeout_ms = 5000;
    if (o->token == NULL) {
        const char *t = getenv("RIPC_TOKEN");
        if (t && *t)
            o->token = t;
    }
    const char *env = getenv("RIPC_TRANSPORT");
    if (env && *env) {
        if (strcmp(env, "socket") == 0)
            o->transport = RIPC_TRANSPORT_SOCKET;
        else if (strcmp(env, "shm") == 0)
            o->transport = RIPC_TRANSPORT_SHM;
        else if (strcmp(env, "auto") == 0)
            o->transport = RIPC_TRANSPORT_AUTO;
    }
}

const char *ripc_strerror(int err)
{
    if (err > 0)
        err = -err;
    switch (err) {
    case 0:
        return "success";
    case -EAGAIN:
        return "would block (ring full or nothing to receive)";
    case -ETIMEDOUT:
        return "timed out";
    case -EPIPE:
        return "peer is gone";
    case -EMSGSIZE:
        return "message larger than the negotiated limit";
    case -EPROTO:
        return "peer broke the protocol or corrupted shared memory";
    case -EPROTONOSUPPORT:
        return "no common protocol version";
    case -EACCES:
        return "credentials refused";
    case -ECONNREFUSED:
        return "nobody listens at that address";
    case -EADDRINUSE:
        return "a live server already listens at that address";
    case -ENOENT:
        return "no such peer";
    case -ENOBUFS:
        return "too many messages queued while waiting for a reply";
    case -EINVAL:
        return "invalid argument";
    case -ENOMEM:
        return "out of memory";
    default:
        return strerror(-err);
    }
}
