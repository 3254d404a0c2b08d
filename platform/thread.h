/* SPDX-License-Identifier: MIT */
/*
 * What the core needs around POSIX threads that POSIX itself does not give
 * everywhere in the same form: locks and condition waits bounded by a
 * CLOCK_MONOTONIC deadline (shm/clock.h), whether two processes can run at
 * once (for spinning), signal masks, naps and yields, our pid and uid.
 *
 * Files: platform/thread_posix.c (any POSIX: masks, naps, ids, monotonic
 * condition variables) and one of platform/sched_linux.c (glibc's
 * pthread_mutex_clocklock, pthread_cond_clockwait, clock_nanosleep,
 * sched_getaffinity) or platform/sched_posix.c (the portable build and
 * other systems: trylock with naps, pthread_cond_timedwait on a
 * CLOCK_MONOTONIC condition variable (macOS, which cannot set a condition
 * variable's clock: pthread_cond_timedwait_relative_np; not built by CI),
 * relative naps,
 * sysconf(_SC_NPROCESSORS_ONLN)); the trylock and the naps are in
 * platform/naps.c, which Windows (platform/thread_win32.c) uses too.
 *
 * Plain pthread calls (mutexes, condition variables, create / join /
 * atfork) are used directly by the core: see src/platform.h. Any thread may call
 * everything here.
 */
#ifndef RIPC_PLATFORM_THREAD_H
#define RIPC_PLATFORM_THREAD_H

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>

/* Lock mu, waiting until a deadline (shm/clock.h; RIPC_DEADLINE_NEVER: for
 * ever). 0, ETIMEDOUT, or another pthread error (positive, as pthread's). */
int ripc__mutex_lock_until(pthread_mutex_t *mu, uint64_t deadline);

/* A condition variable whose timed waits (ripc__cond_wait_until) measure
 * CLOCK_MONOTONIC. */
void ripc__cond_init_monotonic(pthread_cond_t *cv);

/* Wait on cv (made by ripc__cond_init_monotonic; mu held, as for
 * pthread_cond_wait) until woken or the deadline; RIPC_DEADLINE_NEVER: no
 * limit. 0 (woken, or spuriously), ETIMEDOUT (positive, as pthread's). */
int ripc__cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, uint64_t deadline);

/* May a wait spin, given the peer's pid (<= 0: unknown)? Only when the two
 * sides can run at the same time: we may use two CPUs, or the peer may run
 * on one we are not on. Two processes confined to one and the same CPU
 * (taskset -c 0) must not spin: each spin would only delay the peer it
 * waits for. Where affinity cannot be read, the number of CPUs online. */
int ripc__spin_ok(int32_t peer_pid);

/* Unblock SIGBUS in the calling thread (and the threads it creates from
 * now on), writing the mask it had into *old (may be NULL): a fault on a
 * truncated shm_open segment with SIGBUS blocked kills the process before
 * the fault guard can run (shm/fault_guard.h). 0 or -errno. */
int ripc__sigbus_unblock(sigset_t *old);

/* Set the calling thread's mask back to *mask (from ripc__sigbus_unblock
 * or shm/fault_guard.h's ripc__sigmask_own_thread). */
void ripc__sigmask_restore(const sigset_t *mask);

/* Sleep for about ns nanoseconds (a signal may cut it short). */
void ripc__nap_ns(uint64_t ns);

/* Sleep until a deadline (shm/clock.h; not RIPC_DEADLINE_NEVER), signals
 * or not. */
void ripc__nap_until(uint64_t deadline);

/* Let another thread or process have the CPU. Inline: spin loops call it. */
static inline void ripc__yield(void)
{
    sched_yield();
}

/* Our process id, and our effective user id. */
int32_t ripc__self_pid(void);
uint32_t ripc__self_euid(void);

#endif /* RIPC_PLATFORM_THREAD_H */
