/* SPDX-License-Identifier: MIT */
/*
 * The library end to end on Windows, through the public API: a master and
 * worker processes (this program started again, win_support.h) on a named
 * pipe (unix:NAME), in shared memory and in socket mode.
 *
 *   three_workers_shm  three workers at once: requests whose replies are
 *                      checked byte by byte, a one-way stream to the master
 *                      (every message checked there, in order, and counted
 *                      back), and a stream from the master to each worker
 *                      (checked by the worker);
 *   socket_mode        the same for one worker with the transport forced
 *                      to socket mode;
 *   worker_killed      TerminateProcess on a joined worker: `left` fires
 *                      (the time it took is printed, not judged);
 *   master_killed      a worker waiting in recv when its master is
 *                      terminated: the wait ends with -EPIPE, and so does
 *                      the next request;
 *   scribbler          a joined worker (shm) writes garbage into the
 *                      consumer index of its master->worker ring: the
 *                      master's sends to it end with -EPROTO (or -EPIPE)
 *                      and `left` fires with -EPROTO, while another worker,
 *                      joined before and running its traffic after, is
 *                      served with every byte checked;
 *   tcp_token          a master on tcp://127.0.0.1:0 with a token: a worker
 *                      with a wrong token, and one with none, are refused
 *                      with -EACCES and never join, while a worker with the
 *                      right one (socket mode) is served before and after.
 *
 * A worker gets the master's address from RIPC_TEST_URL and the token from
 * RIPC_TOKEN (both set before it is started) and its index over the pipe
 * from the parent. The scribbler reaches its ring through the client's
 * internals (src/client_internal.h): the public API has no way to it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringipc/ringipc.h"
#include "shm/ring_internal.h"
#include "src/client_internal.h"
#include "windows/win_master.h"
#include "windows/win_support.h"

#define T_ECHO   1 /* request: the reply is the payload, each byte + 1 */
#define T_STREAM 2 /* one-way worker -> master: seq, worker index, pattern */
#define T_COUNT  3 /* request: how many T_STREAM messages came, all good? */
#define T_PUSH   4 /* request: the master sends n one-way T_DOWN first */
#define T_DOWN   5 /* one-way master -> worker: seq, pattern */

#define WORKERS  3
#define REQUESTS 2000
#define STREAM   20000
#define DOWN     1000
#define WAIT_MS  30000
#define TOKEN    "win-test-token"

static unsigned char pat(uint64_t seq, unsigned w, size_t i)
{
    return (unsigned char)(seq * 31 + w * 7 + i * 3);
}

static size_t stream_len(uint64_t seq)
{
    return 16 + (size_t)((seq * 2654435761u) >> 9) % 900;
}

/* ---- the master ---- */

struct per_worker {
    uint64_t next;  /* next T_STREAM seq expected */
    uint64_t bad;   /* messages out of order or with bad bytes */
    unsigned index; /* from its first message */
};

static struct master {
    win_master m;
    struct per_worker w[64]; /* by peer id (small ids: one server per case) */
} M;

static void h_echo(ripc_peer *from, const ripc_msg *m, void *arg)
{
    (void)arg;
    unsigned char buf[4096];
    WCHECK(m->len <= sizeof buf);
    const unsigned char *d = m->data;
    for (uint64_t i = 0; i < m->len; i++)
        buf[i] = (unsigned char)(d[i] + 1);
    WCHECK_EQ(ripc_reply(from, m, buf, m->len), 0);
}

static void h_stream(ripc_peer *from, const ripc_msg *m, void *arg)
{
    (void)arg;
    struct per_worker *pw = &M.w[ripc_peer_id(from) % 64];
    const unsigned char *d = m->data;
    uint64_t seq;
    uint32_t w;
    if (m->len < 12) {
        pw->bad++;
        return;
    }
    memcpy(&seq, d, 8);
    memcpy(&w, d + 8, 4);
    int ok = seq == pw->next && m->len == stream_len(seq);
    for (size_t i = 12; ok && i < m->len; i++)
        ok = d[i] == pat(seq, w, i);
    if (seq == 0)
        pw->index = w;
    pw->bad += !ok || w != pw->index;
    pw->next++;
}

static void h_count(ripc_peer *from, const ripc_msg *m, void *arg)
{
    (void)arg;
    struct per_worker *pw = &M.w[ripc_peer_id(from) % 64];
    uint64_t out[2] = {pw->next, pw->bad};
    WCHECK_EQ(ripc_reply(from, m, out, sizeof out), 0);
}

static void h_push(ripc_peer *from, const ripc_msg *m, void *arg)
{
    (void)arg;
    uint64_t n;
    WCHECK_EQ(m->len, 8);
    memcpy(&n, m->data, 8);
    unsigned char buf[512];
    for (uint64_t seq = 0; seq < n; seq++) {
        size_t len = 8 + (size_t)(seq % 500);
        memcpy(buf, &seq, 8);
        for (size_t i = 8; i < len; i++)
            buf[i] = pat(seq, 0, i);
        WCHECK_EQ(ripc_server_send(M.m.s, ripc_peer_id(from), T_DOWN, buf, len, WAIT_MS), 0);
    }
    WCHECK_EQ(ripc_reply(from, m, NULL, 0), 0);
}

/* A server on url (NULL: a fresh pipe name from tag) with options o (may
 * be NULL), running on its own threads (win_master.h). */
static void master_start_at(const char *tag, const char *url, const ripc_options *o)
{
    memset(&M, 0, sizeof M);
    win_master_open(&M.m, tag, url, o);
    WCHECK_EQ(ripc_server_handle(M.m.s, T_ECHO, h_echo, NULL), 0);
    WCHECK_EQ(ripc_server_handle(M.m.s, T_STREAM, h_stream, NULL), 0);
    WCHECK_EQ(ripc_server_handle(M.m.s, T_COUNT, h_count, NULL), 0);
    WCHECK_EQ(ripc_server_handle(M.m.s, T_PUSH, h_push, NULL), 0);
    win_master_run(&M.m);
}

static void master_start(const char *tag)
{
    master_start_at(tag, NULL, NULL);
}

static void master_stop(void)
{
    win_master_stop(&M.m);
}

/* ---- a worker ---- */

static ripc_client *worker_open(const char *url, int transport)
{
    return win_worker_open(url, transport, "win-worker");
}

/* Requests, a stream up, a count back, a stream down: every byte checked. */
static void worker_traffic(ripc_client *c, unsigned w)
{
    unsigned char buf[1024];
    ripc_msg r;
    for (uint64_t n = 0; n < REQUESTS; n++) {
        size_t len = 1 + (size_t)(n % 700);
        for (size_t i = 0; i < len; i++)
            buf[i] = pat(n, w, i);
        WCHECK_EQ(ripc_client_request(c, T_ECHO, buf, len, &r, WAIT_MS), 0);
        WCHECK_EQ(r.kind, RIPC_REPLY);
        WCHECK_EQ(r.len, len);
        const unsigned char *d = r.data;
        for (size_t i = 0; i < len; i++)
            WCHECK_EQ(d[i], (unsigned char)(pat(n, w, i) + 1));
    }
    for (uint64_t seq = 0; seq < STREAM; seq++) {
        size_t len = stream_len(seq);
        uint32_t w32 = w;
        memcpy(buf, &seq, 8);
        memcpy(buf + 8, &w32, 4);
        for (size_t i = 12; i < len; i++)
            buf[i] = pat(seq, w, i);
        WCHECK_EQ(ripc_client_send(c, T_STREAM, buf, len, WAIT_MS), 0);
    }
    WCHECK_EQ(ripc_client_request(c, T_COUNT, NULL, 0, &r, WAIT_MS), 0);
    WCHECK_EQ(r.len, 16);
    uint64_t got[2];
    memcpy(got, r.data, 16);
    WCHECK_EQ(got[0], STREAM);
    WCHECK_EQ(got[1], 0);
    uint64_t n = DOWN;
    WCHECK_EQ(ripc_client_request(c, T_PUSH, &n, 8, &r, WAIT_MS), 0);
    for (uint64_t seq = 0; seq < DOWN; seq++) {
        WCHECK_EQ(ripc_client_recv(c, &r, WAIT_MS), 0);
        WCHECK_EQ(r.type, T_DOWN);
        WCHECK_EQ(r.len, 8 + seq % 500);
        const unsigned char *d = r.data;
        uint64_t s;
        memcpy(&s, d, 8);
        WCHECK_EQ(s, seq);
        for (size_t i = 8; i < r.len; i++)
            WCHECK_EQ(d[i], pat(seq, 0, i));
    }
}

static int child_worker(HANDLE in, HANDLE out, int transport)
{
    unsigned w = (unsigned)win_get(in);
    ripc_client *c = worker_open(NULL, transport);
    const char *want = transport == RIPC_TRANSPORT_SOCKET ? "socket" : "shm";
    if (strcmp(ripc_client_transport(c), want) != 0)
        fprintf(stderr, "transport %s: %s\n", ripc_client_transport(c),
                ripc_client_transport_reason(c));
    WCHECK(strcmp(ripc_client_transport(c), want) == 0);
    worker_traffic(c, w);
    ripc_client_close(c);
    win_put(out, 1);
    return 0;
}

/* Joins and proves it with one request, says so, waits for the parent's
 * go, then runs worker_traffic: a worker served before and after what the
 * parent does in between. */
static int child_phased(HANDLE in, HANDLE out, int transport)
{
    unsigned w = (unsigned)win_get(in);
    ripc_client *c = worker_open(NULL, transport);
    const char *want = transport == RIPC_TRANSPORT_SOCKET ? "socket" : "shm";
    WCHECK(strcmp(ripc_client_transport(c), want) == 0);
    ripc_msg r;
    unsigned char b = 41;
    WCHECK_EQ(ripc_client_request(c, T_ECHO, &b, 1, &r, WAIT_MS), 0);
    WCHECK_EQ(r.len, 1);
    WCHECK_EQ(*(const unsigned char *)r.data, 42);
    win_put(out, 1);
    WCHECK_EQ(win_get(in), 1);
    worker_traffic(c, w);
    ripc_client_close(c);
    win_put(out, 1);
    return 0;
}

/* Opens with RIPC_TOKEN's token (or none) and tells the parent what that
 * gave: -rc, or 0 when it was let in (it then closes again). */
static int child_token(HANDLE in, HANDLE out)
{
    (void)in;
    const char *url = getenv("RIPC_TEST_URL");
    WCHECK(url != NULL);
    ripc_client *c = NULL;
    char why[256] = "";
    int rc = ripc_client_open_ex(&c, url, NULL, why, sizeof why);
    printf("  token %s: %s (%s)\n", getenv("RIPC_TOKEN") ? "wrong" : "none", ripc_strerror(rc),
           why);
    fflush(stdout);
    if (rc == 0)
        ripc_client_close(c);
    win_put(out, (uint64_t)-rc);
    return 0;
}

/* Joins (shm), then writes garbage into the consumer index (tail) of its
 * master->worker ring, unaligned and far past anything the master
 * produced, says so, and stays until the parent ends it. The master reads
 * that index when it runs out of the room it knows of: it must find the
 * index impossible and drop us. */
static int child_scribbler(HANDLE in, HANDLE out)
{
    ripc_client *c = worker_open(NULL, RIPC_TRANSPORT_SHM);
    WCHECK(strcmp(ripc_client_transport(c), "shm") == 0);
    ripc_msg r;
    unsigned char b = 1;
    WCHECK_EQ(ripc_client_request(c, T_ECHO, &b, 1, &r, WAIT_MS), 0);
    struct ripc_ring_hdr *m2w = c->ch.rx->hdr;
    atomic_store_explicit(&m2w->cons.tail, 0xDEADBEEF00000003ull, memory_order_release);
    win_put(out, 1);
    uint64_t v;
    (void)win_get_try(in, &v); /* until the parent ends us */
    return 0;
}

/* Joins, says so, then waits to be terminated. */
static int child_idle(HANDLE in, HANDLE out)
{
    ripc_client *c = worker_open(NULL, RIPC_TRANSPORT_SHM);
    ripc_msg r;
    unsigned char b = 1;
    WCHECK_EQ(ripc_client_request(c, T_ECHO, &b, 1, &r, WAIT_MS), 0);
    win_put(out, 1);
    uint64_t v;
    (void)win_get_try(in, &v); /* until the parent ends us */
    return 0;
}

/* A master for master_killed: says when it listens, runs until killed. */
static int child_master(HANDLE in, HANDLE out)
{
    master_start("killed");
    win_put(out, 1);
    uint64_t v;
    (void)win_get_try(in, &v);
    return 0;
}

/* ---- the cases ---- */

static void run_workers(int n, const char *role)
{
    win_child k[WORKERS];
    for (int i = 0; i < n; i++) {
        win_child_start(&k[i], role);
        win_put(k[i].to, (uint64_t)i);
    }
    for (int i = 0; i < n; i++)
        WCHECK_EQ(win_get(k[i].from), 1);
    for (int i = 0; i < n; i++)
        WCHECK_EQ(win_child_end(&k[i], WAIT_MS), 0);
}

static void three_workers_shm(void)
{
    master_start("shm");
    run_workers(WORKERS, "worker_shm");
    WCHECK_EQ(M.m.joined, WORKERS);
    master_stop();
}

static void socket_mode(void)
{
    master_start("sock");
    run_workers(1, "worker_socket");
    WCHECK_EQ(M.m.joined, 1);
    master_stop();
}

static void worker_killed(void)
{
    master_start("wkill");
    win_child k;
    win_child_start(&k, "idle");
    WCHECK_EQ(win_get(k.from), 1);
    WCHECK_EQ(M.m.joined, 1);
    LARGE_INTEGER f, t0, t1;
    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&t0);
    WCHECK(TerminateProcess(k.process, 9));
    WCHECK_EQ(WaitForSingleObject(M.m.left_ev, WAIT_MS), WAIT_OBJECT_0);
    QueryPerformanceCounter(&t1);
    printf("  left %.1f ms after TerminateProcess (reason %d; under wine: says nothing of "
           "Windows)\n",
           (double)(t1.QuadPart - t0.QuadPart) * 1000.0 / (double)f.QuadPart, M.m.left_reason);
    WCHECK_EQ(M.m.left, 1);
    win_child_end(&k, WAIT_MS);
    master_stop();
}

struct waiter {
    ripc_client *c;
    int rc;
};

static void *wait_recv(void *arg)
{
    struct waiter *w = arg;
    ripc_msg m;
    w->rc = ripc_client_recv(w->c, &m, WAIT_MS);
    return NULL;
}

static void master_killed(void)
{
    win_child k;
    win_child_start(&k, "master");
    WCHECK_EQ(win_get(k.from), 1);
    char url[128];
    snprintf(url, sizeof url, "unix:ripc-test-killed-%lu", (unsigned long)k.pid);
    struct waiter w = {.c = worker_open(url, RIPC_TRANSPORT_SHM), .rc = 1};
    ripc_msg r;
    unsigned char b = 1;
    WCHECK_EQ(ripc_client_request(w.c, T_ECHO, &b, 1, &r, WAIT_MS), 0);
    pthread_t th;
    WCHECK_EQ(pthread_create(&th, NULL, wait_recv, &w), 0);
    /* The waiter may not be asleep yet when the master dies: either way
     * its wait must end with -EPIPE, not at its timeout. */
    Sleep(100);
    WCHECK(TerminateProcess(k.process, 9));
    pthread_join(th, NULL);
    WCHECK_EQ(w.rc, -EPIPE);
    WCHECK_EQ(ripc_client_request(w.c, T_ECHO, &b, 1, &r, WAIT_MS), -EPIPE);
    ripc_client_close(w.c);
    win_child_end(&k, WAIT_MS);
}

static void scribbler(void)
{
    master_start("scribble");
    win_child good, bad;
    win_child_start(&good, "phased_shm");
    win_put(good.to, 0);
    WCHECK_EQ(win_get(good.from), 1);
    WCHECK_EQ(M.m.joined, 1);
    win_child_start(&bad, "scribbler");
    WCHECK_EQ(win_get(bad.from), 1);
    WCHECK_EQ(M.m.joined, 2);
    uint32_t id = (uint32_t)M.m.last_joined;
    /* One-way messages it never reads: the master's room runs out within a
     * ring's worth, and it must then read the scribbled index and give up.
     * A master that believed the index would go on sending into room that
     * is not there (or wait for room and time out), and the worker would
     * stay. A timeout, not 0: with one CPU a send with 0 was seen to end
     * at -EAGAIN at once, the master's own threads busy with the peer. */
    unsigned char payload[100];
    memset(payload, 0x5A, sizeof payload);
    int rc = 0, sent = 0;
    while (sent < 100000 &&
           (rc = ripc_server_send(M.m.s, id, T_DOWN, payload, sizeof payload, 2000)) == 0)
        sent++;
    printf("  send to the scribbler: %s after %d sends\n", ripc_strerror(rc), sent);
    WCHECK(rc == -EPROTO || rc == -EPIPE);
    WCHECK_EQ(WaitForSingleObject(M.m.left_ev, WAIT_MS), WAIT_OBJECT_0);
    WCHECK_EQ(M.m.left, 1);
    WCHECK_EQ(M.m.left_reason, -EPROTO);
    WCHECK_EQ(ripc_server_send(M.m.s, id, T_DOWN, payload, 1, 0), -ENOENT);
    /* The other worker goes on: its whole traffic, every byte checked. */
    win_put(good.to, 1);
    WCHECK_EQ(win_get(good.from), 1);
    WCHECK_EQ(win_child_end(&good, WAIT_MS), 0);
    WCHECK(TerminateProcess(bad.process, 9));
    win_child_end(&bad, WAIT_MS);
    master_stop();
}

static void tcp_token(void)
{
    ripc_options o = {.token = TOKEN};
    master_start_at("tcp", "tcp://127.0.0.1:0", &o);
    char url[128];
    ripc_server_url(M.m.s, url, sizeof url);
    WCHECK(strncmp(url, "tcp://127.0.0.1:", 16) == 0 && strcmp(url, "tcp://127.0.0.1:0") != 0);
    WCHECK(SetEnvironmentVariableA("RIPC_TOKEN", TOKEN));
    win_child good;
    win_child_start(&good, "phased_socket");
    win_put(good.to, 0);
    WCHECK_EQ(win_get(good.from), 1);
    WCHECK_EQ(M.m.joined, 1);
    /* A wrong token, then none: refused, and nobody joins. A master that
     * let either in would see it join, and the child would report 0. */
    const char *tokens[] = {"win-test-tokeN", NULL};
    for (int i = 0; i < 2; i++) {
        WCHECK(SetEnvironmentVariableA("RIPC_TOKEN", tokens[i]));
        win_child k;
        win_child_start(&k, "token");
        WCHECK_EQ(win_get(k.from), EACCES);
        WCHECK_EQ(win_child_end(&k, WAIT_MS), 0);
    }
    WCHECK(SetEnvironmentVariableA("RIPC_TOKEN", NULL));
    WCHECK_EQ(M.m.joined, 1);
    /* The good worker is served on. */
    win_put(good.to, 1);
    WCHECK_EQ(win_get(good.from), 1);
    WCHECK_EQ(win_child_end(&good, WAIT_MS), 0);
    WCHECK_EQ(M.m.joined, 1);
    master_stop();
}

int main(int argc, char **argv)
{
    const char *role;
    HANDLE in, out;
    if (win_child_args(argc, argv, &role, &in, &out)) {
        if (strcmp(role, "worker_shm") == 0)
            return child_worker(in, out, RIPC_TRANSPORT_SHM);
        if (strcmp(role, "worker_socket") == 0)
            return child_worker(in, out, RIPC_TRANSPORT_SOCKET);
        if (strcmp(role, "idle") == 0)
            return child_idle(in, out);
        if (strcmp(role, "master") == 0)
            return child_master(in, out);
        if (strcmp(role, "phased_shm") == 0)
            return child_phased(in, out, RIPC_TRANSPORT_SHM);
        if (strcmp(role, "phased_socket") == 0)
            return child_phased(in, out, RIPC_TRANSPORT_SOCKET);
        if (strcmp(role, "scribbler") == 0)
            return child_scribbler(in, out);
        if (strcmp(role, "token") == 0)
            return child_token(in, out);
        return 2;
    }
    win_case("three_workers_shm", three_workers_shm);
    win_case("socket_mode", socket_mode);
    win_case("worker_killed", worker_killed);
    win_case("master_killed", master_killed);
    win_case("scribbler", scribbler);
    win_case("tcp_token", tcp_token);
    return 0;
}
