/* SPDX-License-Identifier: MIT */
/* Internals shared across src/: limits, options and small helpers (the
 * channel has src/chan.h, the clock shm/clock.h). Every helper here may be
 * called from any thread and takes no lock of the library's. */
#ifndef RIPC_SRC_INTERNAL_H
#define RIPC_SRC_INTERNAL_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "ringipc/ring.h"
#include "ringipc/ringipc.h"
#include "shm/ring_internal.h"
#include "shm/why.h"
#include "src/large.h"
#include "src/platform.h"
#include "src/proto.h"

#define RIPC_DEFAULT_RING_BYTES  ((size_t)1 << 20)
#define RIPC_MIN_RING_BYTES      ((size_t)4096)
#define RIPC_MAX_RING_BYTES      ((size_t)1 << 30)
#define RIPC_DEFAULT_MAX_MESSAGE ((uint64_t)64 << 20)
#define RIPC_DEFAULT_SPIN_US     50u
#define RIPC_MAX_SPIN_US         1000000u
#define RIPC_DEFAULT_CONNECT_MS  5000
#define RIPC_REPLY_TIMEOUT_MS    1000
/*
 * The master's memory for socket-mode workers beyond RIPC_RX_BASE each: a
 * receive budget and a send budget, each max(RIPC_RX_SERVER_BUDGET,
 * 2 x max_message + 128 KiB); a holder others wait for must move a
 * RIPC_RX_STALL_SHARE-th of it every RIPC_RX_STALL_MS (ripc__pace_late).
 * See docs/design.md, Socket mode.
 */
#define RIPC_RX_SERVER_BUDGET ((size_t)64 << 20)
#define RIPC_RX_STALL_MS      2000
#define RIPC_RX_STALL_SHARE   8

/* The smallest max_message either side may ask for: an error reply (the
 * library's own "no handler for type N" among them) must always fit, or a
 * request would wait for an answer that cannot be sent. */
#define RIPC_MIN_MAX_MESSAGE ((uint64_t)256)

/* ---- util.c ---- */
/* ripc__spin_ok, ripc__mutex_lock_until and the like: platform/thread.h. */
void ripc__cpu_relax(void);
/* Is uid one the options accept as the other side's: our own effective
 * uid, one in allow_uids, or any with allow_any_uid? 1 or 0. */
int ripc__uid_allowed(const ripc_options *o, uint32_t uid);
/* Effective options: checked (values out of range and a RIPC_TRANSPORT
 * that names no transport are -EINVAL, with the field and value in why),
 * defaults filled in, RIPC_TOKEN and RIPC_TRANSPORT applied (getenv: at
 * open). 0 or -EINVAL. out's pointers still point into in (or environ). */
int ripc__options_resolve(ripc_options *out, const ripc_options *in, char *why, size_t why_len);
/* size bytes, zeroed, aligned to a cache line (ripc__free_aligned frees
 * it), or NULL: for structs whose members are aligned to one (src/stats.h). */
void *ripc__zalloc_aligned(size_t size);
/* Free what ripc__zalloc_aligned gave (NULL: nothing). */
void ripc__free_aligned(void *p);
/* 1 when ring_bytes is a power of two within [RIPC_MIN_RING_BYTES,
 * RIPC_MAX_RING_BYTES], else 0. */
int ripc__ring_bytes_ok(size_t ring_bytes);

#endif
