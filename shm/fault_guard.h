/* SPDX-License-Identifier: MIT */
/*
 * Fault guard: survive a peer that truncates a shared segment we map.
 *
 * A segment that cannot be sealed against shrinking (shm_open, on every
 * POSIX system; a memfd is sealed and needs none of this) can be truncated
 * by any process that holds its descriptor, and the next load or store of
 * ours in the part cut off raises SIGBUS, which kills the process by
 * default. The master hands every worker the descriptor of its segment, so
 * without a guard any worker could kill the master, and with it every other
 * worker, at will.
 *
 * What the guard does: every mapping registered here is covered by one
 * process-wide SIGBUS handler. A fault inside a registered range makes the
 * handler map anonymous zero-filled memory over the whole range (MAP_FIXED,
 * same address and length), mark the range hit, and return: the faulting
 * load or store runs again against the new memory and completes, whichever
 * thread made it (a dispatch thread reading a ring, an application thread
 * sending, a message handler reading msg->data). From then on the range
 * reads as zeros and writes to it reach nobody. The owner sees the mark
 * (ripc__fault_guard_hit) and gives up the peer. A SIGBUS outside every
 * range goes to the handler installed before ours (same arguments); with
 * none it gets the default action, and the process dies as it would have
 * without us. One that was ignored before stays ignored when it was sent
 * (kill, raise: si_code <= 0); a fault outside our ranges still gets the
 * default action then, as without us (the kernel kills a process that
 * ignores the signal of its own fault). The previous handler may run on
 * several threads at once; only a thread that enters our handler again
 * from inside its own call of it (a handler installed after ours that
 * chains back to us) gets the default action, so that the two never loop.
 *
 * Signal masks: a thread that has SIGBUS blocked is not protected (the
 * kernel kills a process whose thread faults with the signal blocked, and
 * no handler runs). Every thread that may touch a guarded range must leave
 * SIGBUS unblocked: the library unblocks it in the threads it runs itself,
 * and include/ringipc/ringipc.h tells applications which calls need it.
 *
 * Cost: nothing on the paths that touch the memory (no check before an
 * access, no system call); one load of the mark where the owner wants to
 * know. The handler is installed with the first registration, not before,
 * and installed again by a later registration when someone replaced it
 * (chaining to the replacement).
 *
 * The handler is async-signal-safe: no lock, no allocation; it reads the
 * range table with atomic loads and calls only mmap (and, for faults not
 * ours, the previous handler, or sigaction and raise for the default
 * action). Registration and removal take a mutex and may allocate; they are
 * never called from the handler, and never from one.
 *
 * Rules for the owner of a range:
 *   - register after mmap; remove BEFORE munmap. Removal waits for a handler
 *     that is replacing the range on another thread, so a handler never maps
 *     over an address that was unmapped meanwhile and may belong to someone
 *     else now.
 *   - after a hit the range stays registered, and the replacement mapped,
 *     until removal; munmap of the original range unmaps the replacement.
 *
 * Memory: the replacement is writable anonymous memory, charged to the
 * commit limit like any (shared anonymous memory is charged the same, and
 * MAP_NORESERVE is ignored under vm.overcommit_memory=2). Where that limit
 * is reached the mmap fails, the range stays as it was, and the fault gets
 * the default action: the process dies as it would have without us.
 * Reserving the memory ahead (to move it in with mremap) would double the
 * charge of every guarded range for a case that is rare.
 *
 * Capacity: no fixed limit. Slots live in chunks of 64 << k (never freed, so
 * the handler can read them without a lock); the handler scans the chunks
 * linearly, which with 1,000 ranges is about 1,000 compares per fault.
 *
 * Sanitizers: ASan and TSan (clang 14, gcc 12) accept a user SIGBUS handler
 * by default and ours chains to theirs. With ASan's allow_user_segv_handler=0
 * the installation is silently ignored: registration notices (it reads the
 * disposition back) and fails with -ENOTSUP, so an unguarded range is never
 * handed out.
 */
#ifndef RIPC_SHM_FAULT_GUARD_H
#define RIPC_SHM_FAULT_GUARD_H

#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h> /* sigset_t, on mingw-w64 */

enum {
    RIPC_GUARD_FREE = 0,   /* slot unused */
    RIPC_GUARD_ARMED = 1,  /* range registered, intact as far as we know */
    RIPC_GUARD_FIXING = 2, /* a handler is replacing it right now */
    RIPC_GUARD_HIT = 3,    /* replaced: the peer cut the memory under us */
};

typedef struct ripc__fault_guard_slot {
    _Atomic int state; /* RIPC_GUARD_* */
    _Atomic uintptr_t base;
    _Atomic size_t len;
} ripc__fault_guard_slot;

/*
 * Guard [base, base + len), a shared mapping of this process. Installs the
 * handler if it is not in place. On success *out is the slot to test and to
 * remove. Returns 0, -EINVAL (NULL base, len 0), -ENOMEM (no memory for a
 * new chunk of slots), -ENOTSUP (the handler could not be installed: a
 * sanitizer refused it), or -errno from sigaction. Any thread.
 */
int ripc__fault_guard_add(void *base, size_t len, ripc__fault_guard_slot **out);

/* Register the guard table's fork handlers now (once; otherwise at the first
 * add), so that handlers registered later run their prepare before ours
 * (src/tables_urcu.c). */
void ripc__fault_guard_fork_register(void);

/* Stop guarding a range (before munmap). Waits while a handler on another
 * thread is replacing it. NULL is a no-op. Any thread, never a handler. */
void ripc__fault_guard_remove(ripc__fault_guard_slot *slot);

/* Was the range cut under us (and replaced by zeros)? Any thread, any time
 * between add and remove; one atomic load. */
static inline int ripc__fault_guard_hit(ripc__fault_guard_slot *slot)
{
    return atomic_load_explicit(&slot->state, memory_order_acquire) == RIPC_GUARD_HIT;
}

/*
 * The mask for a thread of the library's own that runs none of the
 * application's signal handlers (the closer, the reclaimer): block every
 * signal but those a fault raises (SIGBUS, SIGSEGV, SIGFPE, SIGILL), which
 * the kernel turns into a kill when they are blocked, with no handler run
 * (this guard's for one). Sets it on the calling thread, writing the mask
 * it had into *old: call it just before pthread_create (the new thread
 * inherits it) and restore *old just after. Any thread.
 */
void ripc__sigmask_own_thread(sigset_t *old);

#endif /* RIPC_SHM_FAULT_GUARD_H */
