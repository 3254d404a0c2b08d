/* SPDX-License-Identifier: MIT */
/*
 * Large messages in shared-memory mode on Windows, end to end through the
 * public API (a master and worker processes on a named pipe):
 *
 *   both_ways   a worker sends one-way messages of 3 MiB, 16 MiB and more
 *               above max_inline, several in a row, interleaved with small
 *               ones; the master checks each byte and the order, and says
 *               how many came. A large request gets a large reply (each
 *               byte + 1). Then the master sends the same mix down, and the
 *               worker checks it. The counters say the large path carried
 *               them (not a ring record, not socket mode);
 *   send_close  a worker sends large one-way messages and closes at once:
 *               the master gets every one (its buffers outlive nothing
 *               the worker closed too early) and `left` says goodbye;
 *   hostile     workers whose LARGE frame names a handle value they do not
 *               hold, one that cannot be a handle, an event, or a section
 *               smaller than the message: each is dropped with -EPROTO,
 *               while another worker, joined before, carries large messages
 *               both ways afterwards, every byte checked.
 *
 * A hostile worker writes its frame and marker through the client's
 * internals (src/client_internal.h): the public API has no way to forge
 * one.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringipc/ringipc.h"
#include "shm/ring_internal.h"
#include "src/client_internal.h"
#include "src/proto.h"
#include "windows/win_master.h"
#include "windows/win_support.h"

#define T_UP    1 /* one-way worker -> master: seq, then the pattern */
#define T_COUNT 2 /* request: how many T_UP came, how many were bad */
#define T_ECHO  3 /* request: the reply is the payload, each byte + 1 */
#define T_PUSH  4 /* request: the master sends the mix down first */
#define T_DOWN  5 /* one-way master -> worker: seq, then the pattern */

#define MIB     ((size_t)1 << 20)
#define WAIT_MS 60000

/* The mix, in order: large ones in a row, small ones between. */
static const size_t SIZES[] = {
    3 * MIB, 100, 3 * MIB + 1, 16 * MIB, 5 * MIB + 4093, 9, 16 * MIB, 3 * MIB, 200 * 1024, 4 * MIB,
};
#define NSIZES (sizeof SIZES / sizeof SIZES[0])

static unsigned char pat(uint64_t seq, size_t i)
{
    return (unsigned char)(seq * 131 + i * 7 + (i >> 12));
}

static void fill(unsigned char *b, uint64_t seq, size_t len)
{
    memcpy(b, &seq, 8);
    for (size_t i = 8; i < len; i++)
        b[i] = pat(seq, i);
}

/* Is b the message seq of the mix? */
static int good(const unsigned char *b, size_t len, uint64_t seq)
{
    uint64_t s;
    if (len != SIZES[seq % NSIZES] || len < 8)
        return 0;
    memcpy(&s, b, 8);
    if (s != seq)
        return 0;
    for (size_t i = 8; i < len; i++)
        if (b[i] != pat(seq, i))
            return 0;
    return 1;
}

/* ---- the master ---- */

static struct master {
    win_master m;
    uint64_t next[64], bad[64]; /* by peer id */
    unsigned char *big;         /* a buffer for replies and sends */
    HANDLE inside, gate;        /* send_close: h_up is in its first message; let it go */
} M;

static void h_up(ripc_peer *from, const ripc_msg *m, void *arg)
{
    (void)arg;
    uint32_t id = ripc_peer_id(from) % 64;
    if (M.gate != NULL && M.next[id] == 0) {
        SetEvent(M.inside);
        WCHECK_EQ(WaitForSingleObject(M.gate, WAIT_MS), WAIT_OBJECT_0);
    }
    M.bad[id] += !good(m->data, m->len, M.next[id]);
    M.next[id]++;
}

static void h_count(ripc_peer *from, const ripc_msg *m, void *arg)
{
    (void)arg;
    uint32_t id = ripc_peer_id(from) % 64;
    uint64_t out[2] = {M.next[id], M.bad[id]};
    WCHECK_EQ(ripc_reply(from, m, out, sizeof out), 0);
}

static void h_echo(ripc_peer *from, const ripc_msg *m, void *arg)
{
    (void)arg;
    WCHECK(m->len <= 16 * MIB);
    const unsigned char *d = m->data;
    for (uint64_t i = 0; i < m->len; i++)
        M.big[i] = (unsigned char)(d[i] + 1);
    WCHECK_EQ(ripc_reply(from, m, M.big, m->len), 0);
}

static void h_push(ripc_peer *from, const ripc_msg *m, void *arg)
{
    (void)arg;
    uint64_t n;
    WCHECK_EQ(m->len, 8);
    memcpy(&n, m->data, 8);
    /* The reply first: the worker reads the mix after it, in order, rather
     * than stashing it while it waits for the reply. */
    WCHECK_EQ(ripc_reply(from, m, NULL, 0), 0);
    for (uint64_t seq = 0; seq < n; seq++) {
        size_t len = SIZES[seq % NSIZES];
        fill(M.big, seq, len);
        WCHECK_EQ(ripc_server_send(M.m.s, ripc_peer_id(from), T_DOWN, M.big, len, WAIT_MS), 0);
    }
}

static void master_start(const char *tag)
{
    memset(&M, 0, sizeof M);
    M.big = malloc(16 * MIB);
    WCHECK(M.big != NULL);
    char name[64];
    snprintf(name, sizeof name, "large-%s", tag);
    win_master_open(&M.m, name, NULL, NULL);
    WCHECK_EQ(ripc_server_handle(M.m.s, T_UP, h_up, NULL), 0);
    WCHECK_EQ(ripc_server_handle(M.m.s, T_COUNT, h_count, NULL), 0);
    WCHECK_EQ(ripc_server_handle(M.m.s, T_ECHO, h_echo, NULL), 0);
    WCHECK_EQ(ripc_server_handle(M.m.s, T_PUSH, h_push, NULL), 0);
    win_master_run(&M.m);
}

static void master_stop(void)
{
    win_master_stop(&M.m);
    free(M.big);
}

/* ---- workers ---- */

static ripc_client *worker_open(void)
{
    ripc_client *c = win_worker_open(NULL, RIPC_TRANSPORT_SHM, "win-large");
    if (strcmp(ripc_client_transport(c), "shm") != 0)
        fprintf(stderr, "transport %s: %s\n", ripc_client_transport(c),
                ripc_client_transport_reason(c));
    WCHECK(strcmp(ripc_client_transport(c), "shm") == 0);
    return c;
}

#define ROUNDS 2 /* the mix this many times each way */

/* The mix up (checked by the master, counted back), a large request and
 * its reply, the mix down (checked here); the counters say how many went
 * the large way. */
static void worker_large_traffic(ripc_client *c)
{
    unsigned char *buf = malloc(16 * MIB);
    WCHECK(buf != NULL);
    uint64_t n = ROUNDS * NSIZES, nlarge = 0;
    for (uint64_t seq = 0; seq < n; seq++) {
        size_t len = SIZES[seq % NSIZES];
        fill(buf, seq, len);
        WCHECK_EQ(ripc_client_send(c, T_UP, buf, len, WAIT_MS), 0);
        nlarge += len > 256 * 1024;
    }
    ripc_msg r;
    WCHECK_EQ(ripc_client_request(c, T_COUNT, NULL, 0, &r, WAIT_MS), 0);
    WCHECK_EQ(r.len, 16);
    uint64_t got[2];
    memcpy(got, r.data, 16);
    WCHECK_EQ(got[0], n);
    WCHECK_EQ(got[1], 0);

    size_t elen = 3 * MIB + 17;
    for (size_t i = 0; i < elen; i++)
        buf[i] = pat(7, i);
    WCHECK_EQ(ripc_client_request(c, T_ECHO, buf, elen, &r, WAIT_MS), 0);
    WCHECK_EQ(r.len, elen);
    const unsigned char *d = r.data;
    size_t wrong = 0;
    for (size_t i = 0; i < elen; i++)
        wrong += d[i] != (unsigned char)(pat(7, i) + 1);
    WCHECK_EQ(wrong, 0);

    WCHECK_EQ(ripc_client_request(c, T_PUSH, &n, 8, &r, WAIT_MS), 0);
    for (uint64_t seq = 0; seq < n; seq++) {
        WCHECK_EQ(ripc_client_recv(c, &r, WAIT_MS), 0);
        WCHECK_EQ(r.type, T_DOWN);
        WCHECK_EQ(r.len, SIZES[seq % NSIZES]);
        WCHECK(good(r.data, r.len, seq));
    }
    ripc_peer_stats_t st = {.size = sizeof st};
    WCHECK_EQ(ripc_client_stats(c, &st), 0);
    printf("  worker: %llu large out, %llu large in\n", (unsigned long long)st.large_out,
           (unsigned long long)st.large_in);
    WCHECK(st.large_out >= nlarge + 1); /* the mix and the echo request */
    WCHECK(st.large_in >= nlarge);      /* the echo reply and the mix, but the last
                                         * message, counted at its release */
    free(buf);
}

static int child_large(HANDLE in, HANDLE out)
{
    (void)in;
    ripc_client *c = worker_open();
    worker_large_traffic(c);
    ripc_client_close(c);
    win_put(out, 1);
    return 0;
}

#define CLOSE_N 3 /* the first CLOSE_N of the mix, then a close */

/* The first message, then (the master held in its handler) the rest, says
 * so and closes at once. */
static int child_send_close(HANDLE in, HANDLE out)
{
    ripc_client *c = worker_open();
    unsigned char *buf = malloc(16 * MIB);
    WCHECK(buf != NULL);
    for (uint64_t seq = 0; seq < CLOSE_N; seq++) {
        if (seq == 1)
            WCHECK_EQ(win_get(in), 1);
        fill(buf, seq, SIZES[seq]);
        WCHECK_EQ(ripc_client_send(c, T_UP, buf, SIZES[seq], WAIT_MS), 0);
    }
    win_put(out, 1);
    ripc_client_close(c);
    free(buf);
    win_put(out, 1);
    return 0;
}

/* Joins, proves it with a request, says so, waits for the parent's go,
 * then runs worker_large_traffic. */
static int child_phased(HANDLE in, HANDLE out)
{
    ripc_client *c = worker_open();
    ripc_msg r;
    WCHECK_EQ(ripc_client_request(c, T_COUNT, NULL, 0, &r, WAIT_MS), 0);
    win_put(out, 1);
    WCHECK_EQ(win_get(in), 1);
    worker_large_traffic(c);
    ripc_client_close(c);
    win_put(out, 1);
    return 0;
}

enum { BOGUS_VALUE = 0, NOT_A_HANDLE = 1, AN_EVENT = 2, SMALL_SECTION = 3, HOSTILE_KINDS = 4 };
static const char *const HOSTILE_NAME[] = {"a value it holds no handle by", "a value no handle has",
                                           "an event", "a section of 64 KiB for 3 MiB"};

/* Joins, then sends one LARGE frame and its marker the way the library
 * does, but naming (per the parent's word) something that is not a buffer
 * of the message's size; says so and stays until the parent ends it. */
static int child_hostile(HANDLE in, HANDLE out)
{
    int kind = (int)win_get(in);
    ripc_client *c = worker_open();
    ripc_msg r;
    WCHECK_EQ(ripc_client_request(c, T_COUNT, NULL, 0, &r, WAIT_MS), 0);
    uint64_t len = 3 * MIB;
    HANDLE h = NULL;
    uint32_t val = 0;
    switch (kind) {
    case BOGUS_VALUE:
        val = 0x7ffff000u; /* a multiple of 4 far above any handle of ours */
        break;
    case NOT_A_HANDLE:
        val = 0x1002u; /* not a multiple of 4 */
        break;
    case AN_EVENT:
        h = CreateEventW(NULL, FALSE, FALSE, NULL);
        break;
    case SMALL_SECTION:
        h = CreateFileMappingW(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE | SEC_COMMIT, 0,
                               64 * 1024, NULL);
        break;
    }
    if (h != NULL)
        val = (uint32_t)(uintptr_t)h;
    WCHECK(val != 0);
    ripc__frame f = {.ftype = RIPC_FRAME_LARGE,
                     .kind = RIPC_KIND_ONEWAY,
                     .type = T_UP,
                     .handle = val,
                     .len = len};
    uint8_t hdr[RIPC_FRAME_HDR];
    ripc__frame_encode(hdr, &f);
    WCHECK_EQ(ripc__sock_send_fds(c->sock, hdr, sizeof hdr, NULL, 0), 0);
    void *rec;
    WCHECK_EQ(ripc_ring_reserve(c->ch.tx, RIPC_MSG_HDR + RIPC_MARKER_BYTES, &rec), 0);
    ripc__msg_encode(rec, T_UP, RIPC_KIND_ONEWAY, RIPC_MSGF_LARGE, 0);
    memcpy((unsigned char *)rec + RIPC_MSG_HDR, &len, sizeof len);
    if (ripc__ring_commit_wake(c->ch.tx, RIPC_MSG_HDR + RIPC_MARKER_BYTES))
        ripc__doorbell_ring(&c->ch.peer_bell);
    win_put(out, 1);
    uint64_t v;
    (void)win_get_try(in, &v); /* until the parent ends us */
    return 0;
}

/* ---- the cases ---- */

static void both_ways(void)
{
    master_start("both");
    win_child k;
    win_child_start(&k, "large");
    WCHECK_EQ(win_get(k.from), 1);
    WCHECK_EQ(win_child_end(&k, WAIT_MS), 0);
    WCHECK_EQ(M.m.joined, 1);
    master_stop();
}

/* The master takes the last messages only once the worker is closing (its
 * loop held in the handler of the first): a worker that let go of their
 * buffers at once would be dropped with -EPROTO and they would be lost. */
static void send_close(void)
{
    master_start("close");
    M.inside = CreateEventW(NULL, TRUE, FALSE, NULL);
    M.gate = CreateEventW(NULL, TRUE, FALSE, NULL);
    WCHECK(M.inside != NULL && M.gate != NULL);
    win_child k;
    win_child_start(&k, "send_close");
    WCHECK_EQ(WaitForSingleObject(M.inside, WAIT_MS), WAIT_OBJECT_0);
    win_put(k.to, 1);
    WCHECK_EQ(win_get(k.from), 1);
    SetEvent(M.gate);
    WCHECK_EQ(win_child_end(&k, WAIT_MS), 0);
    WCHECK_EQ(WaitForSingleObject(M.m.left_ev, WAIT_MS), WAIT_OBJECT_0);
    WCHECK_EQ(M.m.left_reason, RIPC_LEFT_BYE);
    WCHECK_EQ(M.next[M.m.last_joined % 64], CLOSE_N);
    WCHECK_EQ(M.bad[M.m.last_joined % 64], 0);
    master_stop();
    CloseHandle(M.inside);
    CloseHandle(M.gate);
}

static void hostile(void)
{
    master_start("hostile");
    win_child good;
    win_child_start(&good, "phased");
    WCHECK_EQ(win_get(good.from), 1);
    WCHECK_EQ(M.m.joined, 1);
    for (int kind = 0; kind < HOSTILE_KINDS; kind++) {
        printf("  hostile worker: %s\n", HOSTILE_NAME[kind]);
        fflush(stdout);
        win_child bad;
        win_child_start(&bad, "hostile");
        win_put(bad.to, (uint64_t)kind);
        WCHECK_EQ(win_get(bad.from), 1);
        WCHECK_EQ(M.m.joined, 2 + kind);
        WCHECK_EQ(WaitForSingleObject(M.m.left_ev, WAIT_MS), WAIT_OBJECT_0);
        WCHECK_EQ(M.m.left, 1 + kind);
        WCHECK_EQ(M.m.left_reason, -EPROTO);
        WCHECK_EQ(M.bad[M.m.last_joined % 64], 0); /* nothing of it was handed out */
        WCHECK_EQ(M.next[M.m.last_joined % 64], 0);
        WCHECK(TerminateProcess(bad.process, 9));
        win_child_end(&bad, WAIT_MS);
    }
    /* The good worker goes on: large messages both ways, every byte checked. */
    win_put(good.to, 1);
    WCHECK_EQ(win_get(good.from), 1);
    WCHECK_EQ(win_child_end(&good, WAIT_MS), 0);
    WCHECK_EQ(WaitForSingleObject(M.m.left_ev, WAIT_MS), WAIT_OBJECT_0);
    WCHECK_EQ(M.m.left, HOSTILE_KINDS + 1);
    WCHECK_EQ(M.m.left_reason, RIPC_LEFT_BYE);
    master_stop();
}

int main(int argc, char **argv)
{
    const char *role;
    HANDLE in, out;
    if (win_child_args(argc, argv, &role, &in, &out)) {
        if (strcmp(role, "large") == 0)
            return child_large(in, out);
        if (strcmp(role, "send_close") == 0)
            return child_send_close(in, out);
        if (strcmp(role, "phased") == 0)
            return child_phased(in, out);
        if (strcmp(role, "hostile") == 0)
            return child_hostile(in, out);
        return 2;
    }
    win_case("both_ways", both_ways);
    win_case("send_close", send_close);
    win_case("hostile", hostile);
    return 0;
}
