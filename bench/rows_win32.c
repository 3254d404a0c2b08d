/* SPDX-License-Identifier: MIT */
/*
 * ringipc-bench's rows on Windows: those of Linux that exist there, and
 * Windows' own baselines (xport_win32.c) in the places of the POSIX ones.
 */
#include <stddef.h>

#include "bench.h"

static const struct xport *const rows[] = {
    &xp_flag_bare,     &xp_flag,       &xp_event,       &xp_npipe,
    &xp_wtcp,          &xp_naive,      &xp_ripc_spin,   &xp_ripc_adaptive,
    &xp_ripc_loan,     &xp_ripc_fill,  &xp_ripc_m2w,    &xp_ripc_m2w_loan,
    &xp_ripc_m2w_fill, &xp_ripc_block, &xp_ripc_socket, &xp_ripc_tcp,
};

static const struct xport *const keep[] = {&xp_npipe, &xp_flag_bare, &xp_event, &xp_naive};

/* Spinning vs the bare flag, sleeping vs the events; on one CPU adaptive
 * sleeps too (the last pair). */
static const char *const floors[][2] = {{"ringipc spin", "shm flag (floor)"},
                                        {"ringipc spin", "shm flag + payload"},
                                        {"ringipc block", "event ping-pong"},
                                        {"ringipc adaptive", "event ping-pong"}};

const struct bench_rows bench_rows = {
    .list = rows,
    .n = sizeof rows / sizeof rows[0],
    .base = &xp_npipe,
    .base_name = "pipe",
    .keep = keep,
    .nkeep = sizeof keep / sizeof keep[0],
    .naive = &xp_naive,
    .floors = floors,
    .nfloors = sizeof floors / sizeof floors[0],
    .large = 0,
    .notes =
        "Every number is the median over the repetitions (max: the largest seen). 'vs pipe':\n"
        "p50 (round trip) or msgs/s (one-way) divided by the named pipe's of the same size\n"
        "and repetition. cpu cli/snd, srv/rcv: user+kernel CPU (GetProcessTimes) each process\n"
        "burned over the measured interval, in % of one core (100% = a spinning or busy core).\n"
        "The two processes are this program started again (CreateProcess), inheriting the\n"
        "mappings and events of the run. named pipe (byte mode, one instance) and TCP loopback\n"
        "(TCP_NODELAY): one WriteFile or send per message; the reader reads up to 256 KiB at a\n"
        "time. event ping-pong: two auto-reset events, the 8-byte sequence number beside them\n"
        "in shared memory, whatever the size. shm flag (floor) carries only the sequence\n"
        "number (one cache line each way, two spinning cores); shm flag + payload also copies\n"
        "the payload. ringipc rows as on Linux (unix:NAME is a named pipe here); round trip:\n"
        "ripc_client_request -> master handler -> ripc_reply; one-way: ripc_client_send ->\n"
        "handler reads every byte; ringipc to worker: ripc_server_send -> ripc_client_recv;\n"
        "loan rows write every byte in place, fill+copy rows into the sender's own buffer\n"
        "before the copying send. One-way runs start after an untimed warm-up.\n"
        "Every message carries a sequence number checked on arrival. naive ring (bound): a\n"
        "cached-index SPSC ring with no checks (bench/naive_ring.h).\n"
        "Rows of the Linux table that are not here: eventfd, unix socket, socketpair, pipe,\n"
        "FIFO, POSIX mq (POSIX calls), ZeroMQ and NNG (not built for Windows), the large-message\n"
        "rows (not measured under wine so far); no --workers.\n",
};
