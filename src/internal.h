/* SPDX-License-Identifier: MIT */
/* Internals shared across src/: limits, options and small helpers (the
 * channel has src/chan.h, the clock shm/clock.h). */
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
 * The master's memory for socket-mode workers' receive buffers: each has
 * RIPC_RX_BASE (256 KiB) of its own; beyond that a buffer grows (for a frame
 * larger than its base) only with bytes from one budget shared by all
 * workers: max(RIPC_RX_SERVER_BUDGET, 2 x max_message + 128 KiB). A worker
 * refused is not read until budget frees (back-pressure through its
 * socket). Frames sent to workers have a second budget of the same size: a
 * frame over RIPC_RX_BASE takes its size from it before its first byte (the
 * send waits for it up to its timeout), so that what the worker has not
 * read when the sender's timeout comes can be kept. A worker holding budget
 * of either kind while others wait for it must move at least
 * 1/RIPC_RX_STALL_SHARE of it every RIPC_RX_STALL_MS, or it is dropped
 * (-ETIMEDOUT): see ripc__pace_late.
 */
#define RIPC_RX_SERVER_BUDGET ((size_t)64 << 20)
#define RIPC_RX_STALL_MS      2000
#define RIPC_RX_STALL_SHARE   8

/* The smallest max_message either side may ask for: an error reply (the
 * library's own "no handler for type N" among them) must always fit, or a
 * request would wait for an answer that cannot be sent. */
#define RIPC_MIN_MAX_MESSAGE ((uint64_t)256)

/* ---- util.c ---- */
/* May a wait spin, given the peer's pid (0: unknown)? See util.c. */
int ripc__spin_ok(int32_t peer_pid);
void ripc__cpu_relax(void);
/* Lock mu, waiting until a deadline (shm/clock.h; RIPC_DEADLINE_NEVER: for
 * ever). 0, ETIMEDOUT, or another pthread error (positive, as pthread's). */
int ripc__mutex_lock_until(pthread_mutex_t *mu, uint64_t deadline);
/* A condition variable whose timed waits use CLOCK_MONOTONIC. */
void ripc__cond_init_monotonic(pthread_cond_t *cv);
/* Unblock SIGBUS in the calling thread (and the threads it creates from
 * now on), writing the mask it had into *old: a fault on a truncated
 * shm_open segment with SIGBUS blocked kills the process before the fault
 * guard can run (shm/fault_guard.h). 0 or -errno. */
int ripc__sigbus_unblock(sigset_t *old);
/* Is uid one the options accept as the other side's: our own effective
 * uid, one in allow_uids, or any with allow_any_uid? */
int ripc__uid_allowed(const ripc_options *o, uint32_t uid);
/* Effective options: checked (values out of range and a RIPC_TRANSPORT
 * that names no transport are -EINVAL, with the field and value in why),
 * defaults filled in, RIPC_TRANSPORT applied. */
int ripc__options_resolve(ripc_options *out, const ripc_options *in, char *why, size_t why_len);
int ripc__ring_bytes_ok(size_t ring_bytes);

#endif
