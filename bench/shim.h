/* SPDX-License-Identifier: MIT */
/*
 * C side of the google-benchmark suites (bench/bench_ring.cc). The C++ file
 * only drives the timing loop; everything that touches rings, sockets,
 * processes and CPU affinity lives here, in C11.
 *
 * One "link" is a producer (the calling process, pinned to the first allowed
 * CPU) and a consumer child process (forked, pinned to the second allowed
 * CPU) joined by one transport:
 *
 *   RIPC_BENCH_PUSH_POP        raw ring in an anonymous MAP_SHARED mapping;
 *                              producer ripc_ring_push() from a private
 *                              buffer, consumer ripc_ring_pop() into one.
 *   RIPC_BENCH_RESERVE_COMMIT  same ring; producer reserve + write + commit,
 *                              consumer peek + read the sequence + release.
 *   RIPC_BENCH_UNIX_STREAM     socketpair(AF_UNIX, SOCK_STREAM); one write()
 *                              per [u32 len][payload] frame, the consumer
 *                              reads 256 KiB at a time and parses frames.
 *
 * Every record's first 8 bytes hold its sequence number (0, 1, 2, ...); the
 * consumer checks order and length and reports the first mismatch through a
 * control block in shared memory.
 *
 * Usage (one link per benchmark run, all calls from one thread):
 *   ripc_bench_open()   fork + pin + wait until the consumer spins (untimed)
 *   ripc_bench_send()   once per timed iteration
 *   ripc_bench_drain()  at the last timed iteration: end marker, wait for the
 *                       consumer to acknowledge every record
 *   ripc_bench_preempted()  optional: was the run disturbed?
 *   ripc_bench_close()  stop and reap the child, restore affinity (untimed)
 */
#ifndef RIPC_BENCH_SHIM_H
#define RIPC_BENCH_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    RIPC_BENCH_PUSH_POP = 1,
    RIPC_BENCH_RESERVE_COMMIT = 2,
    RIPC_BENCH_UNIX_STREAM = 3,
};

typedef struct ripc_bench_link ripc_bench_link;

/*
 * Start a link moving records of `record_len` bytes (>= 8). On failure
 * returns a negative errno and writes one line saying why into why[why_len]
 * (e.g. "needs 2 CPUs" when fewer than two CPUs are allowed).
 */
int ripc_bench_open(ripc_bench_link **out, int mode, size_t record_len, char *why, size_t why_len);

/*
 * Send the record with sequence `seq`, spinning (cpu pause) while the ring is
 * full. Returns 0, or a negative errno when the consumer died or the ring
 * failed; ripc_bench_close() then tells why.
 */
int ripc_bench_send(ripc_bench_link *l, uint64_t seq);

/*
 * Send the end marker and spin until the consumer has acknowledged it, so
 * that the records still queued are part of the measured time. Returns 0,
 * -EPROTO when the consumer counted a different number of records than
 * `sent`, or another negative errno.
 */
int ripc_bench_drain(ripc_bench_link *l, uint64_t sent);

/*
 * After ripc_bench_drain(): involuntary context switches of producer and
 * consumer during the run. Anything but a handful means other work shared
 * the CPUs and the run's numbers are not clean.
 */
long ripc_bench_preempted(const ripc_bench_link *l);

/*
 * Stop the consumer, reap it, unmap, restore the caller's CPU affinity and
 * free l (NULL is fine). Returns 0 when the consumer saw every record in
 * order, else a negative errno with the first problem in why[why_len].
 */
int ripc_bench_close(ripc_bench_link *l, char *why, size_t why_len);

#ifdef __cplusplus
}
#endif

#endif /* RIPC_BENCH_SHIM_H */
