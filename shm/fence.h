/* SPDX-License-Identifier: MIT */
/*
 * Asymmetric fences across processes.
 *
 * The doorbell protocol is a Dekker pair: the writer publishes its index and
 * then reads the reader's sleep flag; the reader sets the flag and then
 * re-reads the index. Both sides need a full fence between their store and
 * their load, and on x86 the writer's fence (a locked instruction after the
 * payload stores) is the single largest cost of sending a small message: it
 * waits for every pending store to become visible.
 *
 * With an asymmetric fence the writer's fence becomes a compiler barrier and
 * the reader, on its slow path only (about to sleep), forces a full barrier
 * on every CPU running a registered process: Linux membarrier(2)
 * MEMBARRIER_CMD_GLOBAL_EXPEDITED. Either the writer's flag load comes after
 * that barrier and sees the flag, or its earlier index store is visible to
 * the reader's re-check. Both processes must have registered; where the call
 * is missing (old kernel, seccomp, other OS) ripc__remote_fence_init() says 0
 * and the channel keeps the symmetric fences.
 *
 * Windows keeps the symmetric fences too (fence_none.c). Its nearest call,
 * FlushProcessWriteBuffers, is documented to flush the processors running
 * threads of the *calling* process (and those of its affinity mask), not
 * every processor running the peer: the worker's store could still sit in
 * its CPU's buffer after our flush, and a wake-up would be lost. (wine's
 * versions, a TLB shootdown of a page of the caller's own, reach the same
 * CPUs at most.)
 */
#ifndef RIPC_SHM_FENCE_H
#define RIPC_SHM_FENCE_H

/* Register this process (once; thread-safe). 1 = asymmetric fences usable. */
int ripc__remote_fence_init(void);

/* Full barrier on every CPU running a registered process (the caller's
 * included). Only after ripc__remote_fence_init() returned 1. */
void ripc__remote_fence(void);

#endif
