/* SPDX-License-Identifier: MIT */
/*
 * C side of the google-benchmark suites (bench/bench_*.cc). The C++ files
 * only drive the timing loop; everything that touches rings, sockets,
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
 *   RIPC_BENCH_NAIVE_RING      the naive ring (naive_ring.h, no checks) in
 *                              the same mapping, push/pop like PUSH_POP:
 *                              the ceiling the ring rows are held against.
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
    RIPC_BENCH_NAIVE_RING = 4,
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

/* ---- master/worker suites (bench/bench_dispatch.cc, bench/bench_reqrep.cc) ----
 *
 * Same shape, over the library's public API (shim_ripc.c). The benchmark
 * process is pinned to the first allowed CPU, the forked peer to the second.
 * Messages carry their sequence number in the first 8 bytes; every receiver
 * checks it. `wait` is RIPC_WAIT_SPIN / _ADAPTIVE / _BLOCK for both sides.
 */
enum {
    RIPC_BENCH_WORKER_SENDS = 1, /* worker: ripc_client_send in a loop; master handler counts */
    RIPC_BENCH_MASTER_SENDS = 2, /* master: ripc_server_send; worker: ripc_client_recv */
};

/* This process is the master (ripc_server); one forked worker. */
typedef struct ripc_bench_master ripc_bench_master;

/* Open the server, fork the worker, wait until it has joined. Returns 0 or
 * a negative errno with one line in why. */
int ripc_bench_master_open(ripc_bench_master **out, int mode, size_t len, int wait, char *why,
                           size_t why_len);
/* WORKER_SENDS: dispatch what has arrived (ripc_server_poll), waiting up to
 * 100 ms; returns the messages handled (>= 0) or a negative errno. */
long ripc_bench_master_poll(ripc_bench_master *m);
/* MASTER_SENDS: send record `seq` (waits for ring space). 0 or -errno. */
int ripc_bench_master_send(ripc_bench_master *m, uint64_t seq);
/* MASTER_SENDS: send records first .. first + n - 1 (n <= RIPC_BENCH_BATCH)
 * with one ripc_server_send_batch. 0 or -errno. */
#define RIPC_BENCH_BATCH 16
int ripc_bench_master_send_batch(ripc_bench_master *m, uint64_t first, unsigned n);
/* MASTER_SENDS: wait until the worker has received all `sent` records;
 * -EPROTO when it counted another number. */
int ripc_bench_master_drain(ripc_bench_master *m, uint64_t sent);
/* Stop and reap the worker, close the server, free m (NULL is fine).
 * Returns 0 when every record arrived in order, else -errno and why. */
int ripc_bench_master_close(ripc_bench_master *m, char *why, size_t why_len);

/* This process is a worker (ripc_client); a forked master echoes requests. */
typedef struct ripc_bench_worker ripc_bench_worker;

int ripc_bench_worker_open(ripc_bench_worker **out, size_t len, int wait, char *why,
                           size_t why_len);
/* One ripc_client_request of record `seq`; checks the echoed reply. */
int ripc_bench_worker_request(ripc_bench_worker *w, uint64_t seq);
int ripc_bench_worker_close(ripc_bench_worker *w, char *why, size_t why_len);

#ifdef __cplusplus
}
#endif

#endif /* RIPC_BENCH_SHIM_H */
