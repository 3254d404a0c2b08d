/* SPDX-License-Identifier: MIT */
/* Small helpers shared across src/: contracts in src/internal.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/internal.h"

void ripc__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

int ripc__uid_allowed(const ripc_options *o, uint32_t uid)
{
    if (o->allow_any_uid || uid == ripc__self_euid())
        return 1;
    for (size_t i = 0; i < o->n_allow_uids; i++)
        if (o->allow_uids && o->allow_uids[i] == uid)
            return 1;
    return 0;
}

int ripc__ring_bytes_ok(size_t x)
{
    return x && (x & (x - 1)) == 0 && x >= RIPC_MIN_RING_BYTES && x <= RIPC_MAX_RING_BYTES;
}

/* One field out of range: -EINVAL with its name and value in why. */
static int bad_option(char *why, size_t why_len, const char *field, long long v, const char *want)
{
    ripc__set_why(why, why_len, 0, "ripc_options.%s = %lld: %s", field, v, want);
    return -EINVAL;
}

int ripc__options_resolve(ripc_options *o, const ripc_options *in, char *why, size_t why_len)
{
    static const ripc_options zero;
    *o = in ? *in : zero;
    /* Values the enums do not name are refused rather than read as a
     * default: a typo must not silently pick another transport. */
    if (o->transport < RIPC_TRANSPORT_AUTO || o->transport > RIPC_TRANSPORT_SOCKET)
        return bad_option(why, why_len, "transport", o->transport,
                          "want RIPC_TRANSPORT_AUTO, _SHM or _SOCKET (0..2)");
    if (o->wait < RIPC_WAIT_ADAPTIVE || o->wait > RIPC_WAIT_BLOCK)
        return bad_option(why, why_len, "wait", o->wait,
                          "want RIPC_WAIT_ADAPTIVE, _SPIN or _BLOCK (0..2)");
    if (o->doorbell < RIPC_DOORBELL_AUTO || o->doorbell > RIPC_DOORBELL_SOCKET)
        return bad_option(why, why_len, "doorbell", o->doorbell,
                          "want RIPC_DOORBELL_AUTO, _EVENTFD, _FUTEX or _SOCKET (0..3)");
    if (o->spin_us > RIPC_MAX_SPIN_US)
        return bad_option(why, why_len, "spin_us", o->spin_us,
                          "at most 1000000 (1 s); RIPC_WAIT_SPIN spins without a limit");
    if (o->connect_timeout_ms < -1)
        return bad_option(why, why_len, "connect_timeout_ms", o->connect_timeout_ms,
                          "want milliseconds, 0 for the default or -1 for no limit");
    if (o->n_allow_uids && !o->allow_uids)
        return bad_option(why, why_len, "n_allow_uids", (long long)o->n_allow_uids,
                          "but allow_uids is NULL");
    if (o->ring_bytes == 0)
        o->ring_bytes = RIPC_DEFAULT_RING_BYTES;
    if (!ripc__ring_bytes_ok(o->ring_bytes))
        return bad_option(why, why_len, "ring_bytes", (long long)o->ring_bytes,
                          "want a power of two in [4 KiB, 1 GiB]");
    if (o->max_message == 0)
        o->max_message = RIPC_DEFAULT_MAX_MESSAGE;
    if (o->max_message < RIPC_MIN_MAX_MESSAGE)
        return bad_option(why, why_len, "max_message", (long long)o->max_message,
                          "at least 256 bytes (0 for the default), so that an error reply fits");
    if (o->spin_us == 0 && o->wait != RIPC_WAIT_BLOCK)
        o->spin_us = RIPC_DEFAULT_SPIN_US;
    if (o->connect_timeout_ms == 0)
        o->connect_timeout_ms = RIPC_DEFAULT_CONNECT_MS;
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
        else {
            ripc__set_why(why, why_len, 0, "RIPC_TRANSPORT=%.32s: want auto, shm or socket", env);
            return -EINVAL;
        }
    }
    return 0;
}

const char *ripc_strerror(int err)
{
    if (err > 0)
        err = -err;
    switch (err) {
    case 0:
        return "success";
    case -EAGAIN:
        return "would block (no room, or nothing to receive), try again";
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
        return "permission denied (credentials refused, or no access to the path)";
    case -ECONNREFUSED:
        return "connection refused (nobody listens at that address, or the master refused)";
    case -EADDRINUSE:
        return "address in use (a live server listens there)";
    case -ENOENT:
        return "not found (no such peer, no handler for the type, or no such file or directory)";
    case -EBUSY:
        return "another thread is using this client";
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

void *ripc__zalloc_aligned(size_t size)
{
    size_t n = (size + 63) & ~(size_t)63; /* aligned_alloc wants a multiple */
#ifdef _WIN32
    void *p = _aligned_malloc(n, 64); /* Windows' C library has no aligned_alloc */
#else
    void *p = aligned_alloc(64, n);
#endif
    if (p)
        memset(p, 0, n);
    return p;
}

void ripc__free_aligned(void *p)
{
#ifdef _WIN32
    _aligned_free(p);
#else
    free(p);
#endif
}
