/* SPDX-License-Identifier: MIT */
/* ringipc-bench's rows on Linux (and other POSIX systems). */
#include <stddef.h>

#include "bench.h"

static const struct xport *const rows[] = {
    &xp_flag_bare,     &xp_flag,          &xp_eventfd,    &xp_unix,        &xp_socketpair,
    &xp_pipe,          &xp_fifo,          &xp_tcp,        &xp_mq,          &xp_naive,
    &xp_ripc_spin,     &xp_ripc_adaptive, &xp_ripc_loan,  &xp_ripc_fill,   &xp_ripc_m2w,
    &xp_ripc_m2w_loan, &xp_ripc_m2w_fill, &xp_ripc_block, &xp_ripc_socket, &xp_ripc_tcp,
    &xp_zmq,           &xp_nng,
};

static const struct xport *const keep[] = {&xp_unix, &xp_flag_bare, &xp_eventfd, &xp_naive};

/* Spinning vs the bare flag, sleeping vs eventfd; on one CPU adaptive
 * sleeps too (the last pair). */
static const char *const floors[][2] = {{"ringipc spin", "shm flag (floor)"},
                                        {"ringipc spin", "shm flag + payload"},
                                        {"ringipc block", "eventfd ping-pong"},
                                        {"ringipc adaptive", "eventfd ping-pong"}};

const struct bench_rows bench_rows = {
    .list = rows,
    .n = sizeof rows / sizeof rows[0],
    .base = &xp_unix,
    .base_name = "unix",
    .keep = keep,
    .nkeep = sizeof keep / sizeof keep[0],
    .naive = &xp_naive,
    .floors = floors,
    .nfloors = sizeof floors / sizeof floors[0],
    .large = 1,
    .notes =
        "Every number is the median over the repetitions (max: the largest seen). 'vs unix':\n"
        "p50 (round trip) or msgs/s (one-way) divided by the unix socket's of the same size\n"
        "and repetition. cpu cli/snd, srv/rcv: user+sys CPU (getrusage) each process burned\n"
        "over the measured interval, in % of one core (100% = a spinning or busy core).\n"
        "Streams (unix socket, socketpair, pipe, FIFO, TCP): one write() per message; the\n"
        "reader reads up to 256 KiB at a time. eventfd and shm flag (floor) carry only the\n"
        "8-byte sequence number whatever the size (the flag: one cache line each way, two\n"
        "spinning cores: the hardware floor); shm flag + payload also copies the payload,\n"
        "on lines of its own. POSIX mq: queue depth 8. ZeroMQ: ZMQ_PAIR sockets, NNG:\n"
        "pair1 sockets, both over ipc://. ringipc round trip: ripc_client_request -> master\n"
        "handler -> ripc_reply; one-way: ripc_client_send -> handler reads every byte;\n"
        "ringipc to worker: ripc_server_send (one message per call) -> ripc_client_recv;\n"
        "loan rows: reserve, write every byte in place, commit; fill+copy rows: write every\n"
        "byte into the sender's own buffer, then the copying send. One-way runs start\n"
        "after an untimed warm-up (8 MiB of messages, at least 4).\n"
        "Every message carries a sequence number checked on arrival. naive ring (bound): a\n"
        "cached-index SPSC ring with 8-byte length headers and no checks (bench/naive_ring.h),\n"
        "the ceiling for the ringipc one-way rows.\n",
};
