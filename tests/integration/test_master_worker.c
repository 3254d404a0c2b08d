/*
 * Master/worker integration tests: the public API across real processes.
 * The test process is the master (except where a test says otherwise);
 * workers are fork()ed children that only ever open clients (ringipc.h
 * "Fork"). Sequencing uses pipes, waitpid and the protocol itself, never
 * sleeps; a hang is caught by the ctest timeout.
 *
 * Usage: test_master_worker [shm|socket] [test-name-filter]
 *   The transport (default shm) goes into every ripc_options.transport, for
 *   the master and the workers alike. The filter runs only the tests whose
 *   name contains it (e.g. "four_dispatch_threads").
 *
 * Children never call cmocka (a failed assert would longjmp into the
 * child's copy of the test runner): they print what went wrong to stderr
 * and _exit() non-zero; the master asserts on their exit status.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <urcu-bp.h> /* test 13: a reader inside its section across fork */

#include "ringipc/ringipc.h"
#include "shm/doorbell.h"
#include "sockets/sock.h"
#include "src/proto.h"
#include "support/support.h"
#include "support/workers.h"

/* ---- transport, fixture ---- */

static int g_transport = RIPC_TRANSPORT_SHM;
static const char *g_transport_name = "shm";

enum {
    T_ECHO = 1, /* request: reply with the payload reversed and xor'ed */
    T_BCAST,
    T_STREAM,
    T_END,
    T_GO,
    T_DATA,
    T_SUM,
    T_SEQ,
    T_QUIT,
    T_PING,
    T_LATE,
    T_FAST,
    T_PUSH, /* test 11: the master's handler sends each one back */
    T_BIG,  /* test 11: the master's handler sends 4 MiB back */
    T_TWIN, /* client_busy: a request from one of two threads */
    T_TWIN_END,
    T_SPARE, /* test 14: a handler set and removed over and over */
};

#define MAX_PEERS   64
#define MAX_KIDS    16
#define HDR         16 /* payload header: u32 worker index, u32 extra length, u64 seq */
#define MAX_PAYLOAD (HDR + 4096)

struct pstate {
    int joined, left, left_reason;
    uint32_t widx;
    uint64_t count;     /* messages of the main stream seen */
    uint64_t next_seq;  /* the main stream (requests / one-way) */
    uint64_t next_seq2; /* the second stream (test 10's one-way messages) */
    uint64_t rcount;    /* requests (T_ECHO) seen, in order */
    uint64_t sum;       /* running checksum of the stream */
    int ended, sum_ok;
};

/* What the master's callbacks see. Counters are atomic: test 10 updates
 * them from four dispatch threads. */
struct mctx {
    ripc_server *s;
    _Atomic int joined, left;
    _Atomic uint64_t requests, oneways;
    _Atomic int ends, sums, pings;
    _Atomic int threads;      /* distinct dispatch threads that ran a handler */
    int gen;                  /* this test's generation, for the thread count */
    int left_target, left_fd; /* write a byte to left_fd when left reaches target */
    uint32_t victim_widx;     /* test 3 */
    _Atomic uint32_t victim_id;
    _Atomic uint64_t victim_count;
    int ping_back;          /* test 11: answer T_PING with a T_PING one-way */
    int note_fd;            /* test 11: h_big writes a byte here when its send returned */
    int big_on_join;        /* test 11: on_joined sends BIG_LEN bytes, 100 ms timeout */
    _Atomic uint64_t twins; /* client_busy: T_TWIN requests answered */
    ripc_peer *saved_peer;  /* test 9 */
    ripc_msg saved_req;
    _Atomic int saved;
    struct pstate ps[MAX_PEERS];
    ripc_test_failure fail; /* the first failure of a handler or callback */
};

struct kid {
    pid_t pid;
    int reaped, status;
    int expect; /* the status it should end with (0, or 128 + SIGKILL) */
};

static struct {
    char dir[64];
    char path[128];
    char url[140];
    struct kid kids[MAX_KIDS];
    int nkids;
    struct mctx *m;
    ripc_test_runner run; /* a test's dispatch thread, when it has one */
} g_fx;

static _Atomic int g_gen;

static int setup(void **state)
{
    (void)state;
    memset(&g_fx, 0, sizeof g_fx);
    snprintf(g_fx.dir, sizeof g_fx.dir, "/tmp/ripc-mw-XXXXXX");
    if (!mkdtemp(g_fx.dir))
        return -1;
    snprintf(g_fx.path, sizeof g_fx.path, "%s/mw.sock", g_fx.dir);
    snprintf(g_fx.url, sizeof g_fx.url, "unix:%s", g_fx.path);
    g_fx.m = calloc(1, sizeof *g_fx.m);
    if (!g_fx.m)
        return -1;
    g_fx.m->left_fd = -1;
    g_fx.m->gen = atomic_fetch_add(&g_gen, 1) + 1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    struct mctx *m = g_fx.m;
    if (g_fx.run.started) {
        ripc_server_stop(m->s);
        ripc_test_run_join(&g_fx.run);
    }
    for (int i = 0; i < g_fx.nkids; i++)
        if (!g_fx.kids[i].reaped) {
            kill(g_fx.kids[i].pid, SIGKILL);
            ripc_test_wait(g_fx.kids[i].pid);
        }
    if (m) {
        ripc_server_close(m->s);
        free(m);
    }
    unlink(g_fx.path);
    rmdir(g_fx.dir);
    memset(&g_fx, 0, sizeof g_fx);
    return 0;
}

/* Spin budget for adaptive mode in every option set (0: the default). A
 * tiny budget makes both sides sleep on nearly every message, which is what
 * exercises the doorbell protocol (and its asymmetric fences) hardest. */
static uint32_t g_spin_us;
/* The worker's doorbell in every option set (0: the default, a socket the
 * library's own waits replace by the futex word, shm/doorbell.h). */
static int g_doorbell;

static ripc_options base_opts(int wait)
{
    ripc_options o;
    memset(&o, 0, sizeof o);
    o.transport = g_transport;
    o.wait = wait;
    o.spin_us = g_spin_us;
    o.doorbell = g_doorbell;
    return o;
}

static int shm_mode(void)
{
    return g_transport == RIPC_TRANSPORT_SHM;
}

/* ---- payloads and checksums ---- */

static void put32(unsigned char *p, uint32_t v)
{
    memcpy(p, &v, 4);
}
static void put64(unsigned char *p, uint64_t v)
{
    memcpy(p, &v, 8);
}
static uint32_t get32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static uint64_t get64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static uint64_t fill_seed(uint32_t widx, uint64_t seq)
{
    return ((uint64_t)widx << 40) ^ seq;
}

/* Header {widx, extra, seq} + `extra` bytes only (widx, seq) produce. */
static size_t mk_payload(unsigned char *buf, uint32_t widx, uint64_t seq, size_t extra)
{
    put32(buf, widx);
    put32(buf + 4, (uint32_t)extra);
    put64(buf + 8, seq);
    ripc_test_fill(buf + HDR, extra, fill_seed(widx, seq));
    return HDR + extra;
}

/* 1 when data/len is a payload mk_payload made; *widx and *seq out. */
static int ck_payload(const void *data, uint64_t len, uint32_t *widx, uint64_t *seq)
{
    const unsigned char *p = data;
    if (len < HDR || len > MAX_PAYLOAD)
        return 0;
    *widx = get32(p);
    *seq = get64(p + 8);
    if (get32(p + 4) != len - HDR)
        return 0;
    return ripc_test_check(p + HDR, (size_t)len - HDR, fill_seed(*widx, *seq));
}

static uint64_t sum_update(uint64_t h, const void *data, uint64_t len)
{
    const unsigned char *p = data;
    size_t i = 0;
    for (; i + 8 <= len; i += 8)
        h = (h ^ get64(p + i)) * 0x100000001b3ULL;
    for (; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return (h ^ len) * 0x9E3779B97F4A7C15ULL;
}

static unsigned char xor_key(uint32_t peer_id)
{
    return (unsigned char)(peer_id * 31u + 7u);
}

/* The master's reply: the request reversed, every byte xor'ed with the key. */
static void transform(unsigned char *out, const unsigned char *in, size_t len, uint32_t peer_id)
{
    unsigned char k = xor_key(peer_id);
    for (size_t i = 0; i < len; i++)
        out[i] = in[len - 1 - i] ^ k;
}

static int transformed_ok(const unsigned char *reply, const unsigned char *req, size_t len,
                          uint32_t peer_id)
{
    unsigned char k = xor_key(peer_id);
    for (size_t i = 0; i < len; i++)
        if (reply[i] != (req[len - 1 - i] ^ k))
            return 0;
    return 1;
}

/* ---- children ---- */

typedef int (*child_fn)(int idx, void *arg);

static pid_t spawn(child_fn fn, int idx, void *arg)
{
    assert_true(g_fx.nkids < MAX_KIDS);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* cmocka's handlers would longjmp into this copy of the runner. */
        static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGSYS};
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
            signal(sigs[i], SIG_DFL);
        _exit(fn(idx, arg));
    }
    g_fx.kids[g_fx.nkids++] = (struct kid){.pid = pid};
    return pid;
}

static struct kid *kid_of(pid_t pid)
{
    for (int i = 0; i < g_fx.nkids; i++)
        if (g_fx.kids[i].pid == pid)
            return &g_fx.kids[i];
    return NULL;
}

static int decode_status(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return -1;
}

/* Wait for one child; its exit code or 128 + signal. */
static int kid_reap(pid_t pid)
{
    struct kid *k = kid_of(pid);
    assert_non_null(k);
    if (!k->reaped) {
        k->status = ripc_test_wait(pid);
        k->reaped = 1;
    }
    return k->status;
}

/* Fail fast when a child has died unsuccessfully (without blocking). */
static void kids_check(void)
{
    for (int i = 0; i < g_fx.nkids; i++) {
        struct kid *k = &g_fx.kids[i];
        int st;
        if (k->reaped)
            continue;
        if (waitpid(k->pid, &st, WNOHANG) == k->pid) {
            k->reaped = 1;
            k->status = decode_status(st);
        }
        if (k->reaped && k->status != k->expect)
            fail_msg("child %d (#%d) ended with status %d", (int)k->pid, i, k->status);
    }
}

/* Wait for every child; each must have ended as expected (exit 0). */
static void kids_reap_all_ok(void)
{
    for (int i = 0; i < g_fx.nkids; i++) {
        int st = kid_reap(g_fx.kids[i].pid);
        if (st != g_fx.kids[i].expect)
            fail_msg("child %d (#%d) ended with status %d", (int)g_fx.kids[i].pid, i, st);
    }
}

static ripc_client *w_open(int wait, size_t ring_bytes, const char *name)
{
    ripc_options o = base_opts(wait);
    o.ring_bytes = ring_bytes;
    o.name = name;
    char why[256] = "";
    ripc_client *c = NULL;
    int rc = ripc_client_open_ex(&c, g_fx.url, &o, why, sizeof why);
    WCHECK(rc == 0, "open %s: %s (%s)", g_fx.url, ripc_strerror(rc), why);
    WCHECK(strcmp(ripc_client_transport(c), g_transport_name) == 0, "transport %s",
           ripc_client_transport(c));
    return c;
}

/* ---- master callbacks ---- */

static struct pstate *pstate_of(struct mctx *m, ripc_peer *p, const ripc_msg *msg)
{
    uint32_t id = ripc_peer_id(p);
    if (id == 0 || id >= MAX_PEERS) {
        ripc_test_fail_once(&m->fail, "peer id %u out of range", id);
        return NULL;
    }
    if (msg && msg->peer_id != id) {
        ripc_test_fail_once(&m->fail, "msg->peer_id %u != ripc_peer_id %u", msg->peer_id, id);
        return NULL;
    }
    return &m->ps[id];
}

static void send_big(struct mctx *m, ripc_peer *p, int timeout_ms);

static void on_joined(ripc_peer *p, void *arg)
{
    struct mctx *m = arg;
    struct pstate *ps = pstate_of(m, p, NULL);
    if (ps) {
        if (ps->joined)
            ripc_test_fail_once(&m->fail, "joined twice for peer %u", ripc_peer_id(p));
        ps->joined = 1;
    }
    if (m->big_on_join)
        send_big(m, p, 100);
    atomic_fetch_add(&m->joined, 1);
}

static void on_left(ripc_peer *p, int reason, void *arg)
{
    struct mctx *m = arg;
    struct pstate *ps = pstate_of(m, p, NULL);
    if (ps) {
        if (!ps->joined || ps->left)
            ripc_test_fail_once(&m->fail, "left for peer %u (joined %d, left %d)", ripc_peer_id(p),
                                ps->joined, ps->left);
        ps->left = 1;
        ps->left_reason = reason;
    }
    int n = atomic_fetch_add(&m->left, 1) + 1;
    if (m->left_fd >= 0 && n == m->left_target)
        ripc_test_write_all(m->left_fd, "L", 1);
}

static _Thread_local int tl_gen;

/* T_ECHO: check order and content per peer, reply transformed. */
static void h_echo(ripc_peer *p, const ripc_msg *msg, void *arg)
{
    struct mctx *m = arg;
    static _Thread_local unsigned char out[MAX_PAYLOAD];
    if (tl_gen != m->gen) {
        tl_gen = m->gen;
        atomic_fetch_add(&m->threads, 1);
    }
    struct pstate *ps = pstate_of(m, p, msg);
    if (!ps)
        return;
    uint32_t widx;
    uint64_t seq;
    if (msg->kind != RIPC_REQUEST || msg->type != T_ECHO) {
        ripc_test_fail_once(&m->fail, "peer %u: kind %u type %u, want a T_ECHO request",
                            msg->peer_id, msg->kind, msg->type);
        return;
    }
    if (!ck_payload(msg->data, msg->len, &widx, &seq)) {
        ripc_test_fail_once(&m->fail, "peer %u: request %llu: bad content (len %llu)", msg->peer_id,
                            (unsigned long long)ps->rcount, (unsigned long long)msg->len);
        return;
    }
    if (ps->rcount == 0 && ps->count == 0)
        ps->widx = widx;
    if (widx != ps->widx || seq != ps->rcount) {
        ripc_test_fail_once(
            &m->fail, "peer %u: request from worker %u seq %llu, want worker %u seq %llu",
            msg->peer_id, widx, (unsigned long long)seq, ps->widx, (unsigned long long)ps->rcount);
        return;
    }
    ps->rcount++;
    transform(out, msg->data, (size_t)msg->len, msg->peer_id);
    int rc = ripc_reply(p, msg, out, msg->len);
    if (rc != 0)
        ripc_test_fail_once(&m->fail, "peer %u: ripc_reply: %s", msg->peer_id, ripc_strerror(rc));
    atomic_fetch_add(&m->requests, 1);
}

/* T_STREAM / T_DATA one-way messages, T_SEQ (second stream), T_END, T_SUM. */
static void h_oneway(ripc_peer *p, const ripc_msg *msg, void *arg)
{
    struct mctx *m = arg;
    struct pstate *ps = pstate_of(m, p, msg);
    if (!ps)
        return;
    if (msg->kind != RIPC_ONEWAY) {
        ripc_test_fail_once(&m->fail, "peer %u: kind %u, want one-way", msg->peer_id, msg->kind);
        return;
    }
    const unsigned char *d = msg->data;
    switch (msg->type) {
    case T_STREAM:
    case T_DATA: {
        uint32_t widx;
        uint64_t seq;
        if (!ck_payload(d, msg->len, &widx, &seq)) {
            ripc_test_fail_once(&m->fail, "peer %u: message %llu: bad content (len %llu)",
                                msg->peer_id, (unsigned long long)ps->count,
                                (unsigned long long)msg->len);
            return;
        }
        if (ps->count == 0 && ps->rcount == 0)
            ps->widx = widx;
        if (widx != ps->widx || seq != ps->next_seq) {
            ripc_test_fail_once(&m->fail, "peer %u: worker %u seq %llu, want worker %u seq %llu",
                                msg->peer_id, widx, (unsigned long long)seq, ps->widx,
                                (unsigned long long)ps->next_seq);
            return;
        }
        ps->next_seq++;
        ps->count++;
        ps->sum = sum_update(ps->sum, d, msg->len);
        atomic_fetch_add(&m->oneways, 1);
        if (msg->type == T_STREAM && widx == m->victim_widx) {
            atomic_store(&m->victim_id, msg->peer_id);
            atomic_store(&m->victim_count, ps->count);
        }
        break;
    }
    case T_SEQ:
        if (msg->len != 8 || get64(d) != ps->next_seq2) {
            ripc_test_fail_once(&m->fail, "peer %u: T_SEQ len %llu value %llu, want %llu",
                                msg->peer_id, (unsigned long long)msg->len,
                                (unsigned long long)(msg->len == 8 ? get64(d) : 0),
                                (unsigned long long)ps->next_seq2);
            return;
        }
        ps->next_seq2++;
        atomic_fetch_add(&m->oneways, 1);
        break;
    case T_END:
        if (msg->len != 8 || get64(d) != ps->count) {
            ripc_test_fail_once(&m->fail, "peer %u: T_END says %llu messages, master saw %llu",
                                msg->peer_id, (unsigned long long)(msg->len == 8 ? get64(d) : 0),
                                (unsigned long long)ps->count);
            return;
        }
        ps->ended = 1;
        atomic_fetch_add(&m->ends, 1);
        break;
    case T_SUM:
        if (msg->len != 16 || get64(d) != ps->count || get64(d + 8) != ps->sum) {
            ripc_test_fail_once(&m->fail,
                                "peer %u: T_SUM count/sum mismatch (worker %llu/%016llx, master "
                                "%llu/%016llx)",
                                msg->peer_id, (unsigned long long)(msg->len == 16 ? get64(d) : 0),
                                (unsigned long long)(msg->len == 16 ? get64(d + 8) : 0),
                                (unsigned long long)ps->count, (unsigned long long)ps->sum);
            return;
        }
        ps->sum_ok = 1;
        atomic_fetch_add(&m->sums, 1);
        break;
    case T_PING:
        atomic_fetch_add(&m->pings, 1);
        if (m->ping_back) {
            int rc = ripc_server_send(m->s, msg->peer_id, T_PING, d, msg->len, -1);
            if (rc != 0)
                ripc_test_fail_once(&m->fail, "peer %u: send T_PING back: %s", msg->peer_id,
                                    ripc_strerror(rc));
        }
        break;
    default:
        ripc_test_fail_once(&m->fail, "peer %u: unexpected type %u", msg->peer_id, msg->type);
    }
}

static ripc_server *open_server(struct mctx *m, const ripc_options *o)
{
    char why[256] = "";
    ripc_server *s = NULL;
    int rc = ripc_server_open_ex(&s, g_fx.url, o, why, sizeof why);
    if (rc != 0)
        fail_msg("ripc_server_open(%s): %s (%s)", g_fx.url, ripc_strerror(rc), why);
    m->s = s;
    assert_int_equal(ripc_server_on_peer(s, on_joined, on_left, m), 0);
    assert_int_equal(ripc_server_handle(s, T_ECHO, h_echo, m), 0);
    assert_int_equal(ripc_server_handle(s, 0, h_oneway, m), 0);
    return s;
}

static void close_server(struct mctx *m)
{
    ripc_server_close(m->s);
    m->s = NULL;
}

/* Poll until *ctr >= target; fail fast on a handler error or a dead child. */
static void serve_until(struct mctx *m, _Atomic int *ctr, int target)
{
    unsigned iter = 0;
    while (atomic_load(ctr) < target && !ripc_test_failed(&m->fail)) {
        int n = ripc_server_poll(m->s, 100);
        if (n < 0)
            fail_msg("ripc_server_poll: %s", ripc_strerror(n));
        if (n == 0 || (++iter & 1023) == 0)
            kids_check();
    }
    ripc_test_assert_no_failure(&m->fail);
}

static void check_all_left_bye(struct mctx *m, int n)
{
    assert_int_equal(atomic_load(&m->joined), n);
    assert_int_equal(atomic_load(&m->left), n);
    for (int id = 1; id <= n; id++) {
        assert_true(m->ps[id].joined && m->ps[id].left);
        assert_int_equal(m->ps[id].left_reason, RIPC_LEFT_BYE);
    }
}

/* The usual start of a test: the fixture's master, open in adaptive mode. */
static struct mctx *open_adaptive(void)
{
    struct mctx *m = g_fx.m;
    ripc_options o = base_opts(RIPC_WAIT_ADAPTIVE);
    open_server(m, &o);
    return m;
}

/* The usual end: serve until n workers have left; each exited 0 and said
 * goodbye. */
static void expect_all_left_bye(struct mctx *m, int n)
{
    serve_until(m, &m->left, n);
    kids_reap_all_ok();
    check_all_left_bye(m, n);
}

/* A byte on lp[0] once `target` workers have left (on_left writes it). */
static void left_pipe_arm(struct mctx *m, int lp[2], int target)
{
    assert_int_equal(pipe(lp), 0);
    m->left_fd = lp[1];
    m->left_target = target;
}

/* Dispatch on a thread of its own: ripc_server_run(s, threads). */
static void run_start(struct mctx *m, unsigned threads)
{
    assert_int_equal(ripc_test_run_start(&g_fx.run, m->s, threads), 0);
}

/* Wait for the left pipe's byte, stop and join the dispatch thread, close
 * the pipe; fail on a handler's error. Returns what ripc_server_run did. */
static int run_stop_after_left(struct mctx *m, int lp[2])
{
    char b;
    assert_int_equal(ripc_test_read_all(lp[0], &b, 1), 0); /* left fired */
    ripc_server_stop(m->s);
    int rc = ripc_test_run_join(&g_fx.run);
    m->left_fd = -1;
    close(lp[0]);
    close(lp[1]);
    ripc_test_assert_no_failure(&m->fail);
    return rc;
}

/* ================================================================== 1 */

#define ECHO_WORKERS  8
#define ECHO_REQUESTS 20000

/* Requests with per-worker content; every reply checked byte for byte. */
static int w_echo(int idx, void *arg)
{
    uintptr_t nreq = (uintptr_t)arg;
    char name[32];
    snprintf(name, sizeof name, "echo-%d", idx);
    ripc_client *c = w_open(RIPC_WAIT_ADAPTIVE, 0, name);
    uint32_t id = ripc_client_id(c);
    WCHECK(id != 0, "client id 0");
    uint64_t rs = 0xC0FFEE00u + (uint64_t)idx;
    static unsigned char buf[MAX_PAYLOAD];
    for (uint64_t seq = 0; seq < nreq; seq++) {
        size_t len = mk_payload(buf, (uint32_t)idx, seq, ripc_test_rand(&rs) % 2001);
        ripc_msg r;
        int rc = ripc_client_request(c, T_ECHO, buf, len, &r, 30000);
        WCHECK(rc == 0, "request %llu: %s", (unsigned long long)seq, ripc_strerror(rc));
        WCHECK(r.kind == RIPC_REPLY && r.type == T_ECHO && r.peer_id == 0 && r.len == len,
               "reply %llu: kind %u type %u peer %u len %llu (want %zu)", (unsigned long long)seq,
               r.kind, r.type, r.peer_id, (unsigned long long)r.len, len);
        WCHECK(transformed_ok(r.data, buf, len, id), "reply %llu: wrong content",
               (unsigned long long)seq);
    }
    WCHECK(ripc_client_dropped(c) == 0, "dropped %llu", (unsigned long long)ripc_client_dropped(c));
    ripc_client_close(c);
    return 0;
}

static void test_mw_request_reply_8_workers(void **state)
{
    (void)state;
    struct mctx *m = open_adaptive();
    for (int i = 0; i < ECHO_WORKERS; i++)
        spawn(w_echo, i, (void *)(uintptr_t)ECHO_REQUESTS);
    expect_all_left_bye(m, ECHO_WORKERS);
    assert_int_equal(atomic_load(&m->requests), (uint64_t)ECHO_WORKERS * ECHO_REQUESTS);
    int seen[ECHO_WORKERS] = {0};
    for (int id = 1; id <= ECHO_WORKERS; id++) {
        assert_int_equal(m->ps[id].rcount, ECHO_REQUESTS);
        assert_true(m->ps[id].widx < ECHO_WORKERS);
        seen[m->ps[id].widx]++;
    }
    for (int i = 0; i < ECHO_WORKERS; i++)
        assert_int_equal(seen[i], 1); /* each worker was one peer */
    assert_int_equal(ripc_server_peer_count(m->s), 0);
}

/* ================================================================== 2 */

#define BC_WORKERS  8
#define BC_MESSAGES 1000

static size_t bc_extra(uint64_t seq)
{
    return (size_t)((seq * 37u) % 300u);
}

static int w_broadcast(int idx, void *arg)
{
    int fd = (int)(intptr_t)arg;
    ripc_client *c = w_open(RIPC_WAIT_ADAPTIVE, 0, "bcast");
    uint64_t sum = 0;
    for (uint64_t seq = 0; seq < BC_MESSAGES; seq++) {
        ripc_msg msg;
        int rc = ripc_client_recv(c, &msg, 30000);
        WCHECK(rc == 0, "recv %llu: %s", (unsigned long long)seq, ripc_strerror(rc));
        uint32_t widx;
        uint64_t got;
        WCHECK(msg.type == T_BCAST && msg.kind == RIPC_ONEWAY && msg.peer_id == 0,
               "message %llu: type %u kind %u peer %u", (unsigned long long)seq, msg.type, msg.kind,
               msg.peer_id);
        WCHECK(ck_payload(msg.data, msg.len, &widx, &got) && widx == 0xB0B0u && got == seq &&
                   msg.len == HDR + bc_extra(seq),
               "message %llu: bad content or order (len %llu)", (unsigned long long)seq,
               (unsigned long long)msg.len);
        sum = sum_update(sum, msg.data, msg.len);
    }
    unsigned char rec[12];
    put32(rec, (uint32_t)idx);
    put64(rec + 4, sum);
    ripc_test_write_all(fd, rec, sizeof rec); /* < PIPE_BUF: atomic among the workers */
    ripc_client_close(c);
    return 0;
}

static void test_mw_broadcast_reaches_all(void **state)
{
    (void)state;
    struct mctx *m = open_adaptive();
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    for (int i = 0; i < BC_WORKERS; i++)
        spawn(w_broadcast, i, (void *)(intptr_t)pfd[1]);
    close(pfd[1]);
    serve_until(m, &m->joined, BC_WORKERS);
    assert_int_equal(ripc_server_peer_count(m->s), BC_WORKERS);

    static unsigned char buf[MAX_PAYLOAD];
    uint64_t sum = 0;
    for (uint64_t seq = 0; seq < BC_MESSAGES; seq++) {
        size_t len = mk_payload(buf, 0xB0B0u, seq, bc_extra(seq));
        int rc = ripc_server_broadcast(m->s, T_BCAST, buf, len, -1);
        if (rc != BC_WORKERS)
            fail_msg("broadcast %llu reached %d (%s)", (unsigned long long)seq, rc,
                     rc < 0 ? ripc_strerror(rc) : "");
        sum = sum_update(sum, buf, len);
    }
    int got[BC_WORKERS] = {0};
    for (int i = 0; i < BC_WORKERS; i++) {
        unsigned char rec[12];
        if (ripc_test_read_all(pfd[0], rec, sizeof rec) != 0) {
            kids_reap_all_ok();
            fail_msg("only %d of %d workers reported a checksum", i, BC_WORKERS);
        }
        uint32_t idx = get32(rec);
        assert_true(idx < BC_WORKERS);
        got[idx]++;
        if (get64(rec + 4) != sum)
            fail_msg("worker %u: checksum %016llx, master %016llx", idx,
                     (unsigned long long)get64(rec + 4), (unsigned long long)sum);
    }
    close(pfd[0]);
    for (int i = 0; i < BC_WORKERS; i++)
        assert_int_equal(got[i], 1);
    expect_all_left_bye(m, BC_WORKERS);
}

/* ================================================================== 3 */

#define SK_WORKERS    4
#define SK_VICTIM     3
#define SK_MESSAGES   50000
#define SK_KILL_AFTER 1000

static int segment_mappings(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return -1;
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, "memfd:ringipc") || strstr(line, "/dev/shm/ringipc-")) /* or shm_open */
            n++;
    fclose(f);
    return n;
}

static int w_stream(int idx, void *arg)
{
    (void)arg;
    ripc_client *c = w_open(RIPC_WAIT_ADAPTIVE, 0, "stream");
    uint64_t rs = 0x5EED0000u + (uint64_t)idx;
    static unsigned char buf[MAX_PAYLOAD];
    uint64_t n = idx == SK_VICTIM ? UINT64_MAX : SK_MESSAGES;
    for (uint64_t seq = 0; seq < n; seq++) {
        size_t len = mk_payload(buf, (uint32_t)idx, seq, ripc_test_rand(&rs) % 512);
        int rc = ripc_client_send(c, T_STREAM, buf, len, -1);
        WCHECK(rc == 0, "send %llu: %s", (unsigned long long)seq, ripc_strerror(rc));
    }
    unsigned char end[8];
    put64(end, n);
    int rc = ripc_client_send(c, T_END, end, 8, -1);
    WCHECK(rc == 0, "send T_END: %s", ripc_strerror(rc));
    ripc_msg msg;
    rc = ripc_client_recv(c, &msg, -1);
    WCHECK(rc == 0 && msg.type == T_GO, "recv T_GO: %s (type %u)", ripc_strerror(rc), msg.type);
    ripc_client_close(c);
    return 0;
}

static void test_mw_worker_sigkill_mid_stream(void **state)
{
    (void)state;
    struct mctx *m = g_fx.m;
    m->victim_widx = SK_VICTIM;
    ripc_options o = base_opts(RIPC_WAIT_ADAPTIVE);
    open_server(m, &o);
    int maps0 = segment_mappings();
    pid_t pids[SK_WORKERS];
    for (int i = 0; i < SK_WORKERS; i++)
        pids[i] = spawn(w_stream, i, NULL);

    unsigned iter = 0;
    while (!(atomic_load(&m->joined) == SK_WORKERS &&
             atomic_load(&m->victim_count) >= SK_KILL_AFTER) &&
           !ripc_test_failed(&m->fail)) {
        int n = ripc_server_poll(m->s, 100);
        assert_true(n >= 0);
        if (n == 0 || (++iter & 1023) == 0)
            kids_check();
    }
    ripc_test_assert_no_failure(&m->fail);
    uint32_t vid = atomic_load(&m->victim_id);
    assert_true(vid > 0 && vid < MAX_PEERS);
    assert_int_equal(ripc_server_peer_count(m->s), SK_WORKERS);
    int maps1 = segment_mappings();
    if (shm_mode())
        assert_int_equal(maps1, maps0 + SK_WORKERS);

    kid_of(pids[SK_VICTIM])->expect = 128 + SIGKILL;
    assert_int_equal(kill(pids[SK_VICTIM], SIGKILL), 0);
    assert_int_equal(kid_reap(pids[SK_VICTIM]), 128 + SIGKILL);
    while (!m->ps[vid].left && !ripc_test_failed(&m->fail)) {
        assert_true(ripc_server_poll(m->s, 100) >= 0);
        kids_check();
    }
    ripc_test_assert_no_failure(&m->fail);
    assert_int_equal(m->ps[vid].left_reason, -EPIPE);
    assert_int_equal(ripc_server_peer_count(m->s), SK_WORKERS - 1);
    int maps2 = segment_mappings();
    if (shm_mode())
        assert_int_equal(maps2, maps1 - 1); /* the victim's segment is unmapped */
    assert_true(m->ps[vid].count >= SK_KILL_AFTER);

    /* The others finish their streams, in order, completely. */
    serve_until(m, &m->ends, SK_WORKERS - 1);
    for (int id = 1; id <= SK_WORKERS; id++) {
        if ((uint32_t)id == vid)
            continue;
        assert_true(m->ps[id].ended);
        assert_int_equal(m->ps[id].count, SK_MESSAGES);
    }
    assert_int_equal(ripc_server_broadcast(m->s, T_GO, NULL, 0, -1), SK_WORKERS - 1);
    serve_until(m, &m->left, SK_WORKERS);
    kids_reap_all_ok();
    for (int id = 1; id <= SK_WORKERS; id++)
        if ((uint32_t)id != vid)
            assert_int_equal(m->ps[id].left_reason, RIPC_LEFT_BYE);
    assert_int_equal(ripc_server_peer_count(m->s), 0);
    if (shm_mode())
        assert_int_equal(segment_mappings(), maps0);
}

/* ================================================================== 4 */

struct mk_arg {
    int wait;
    int ready_w; /* master -> worker: listening */
    int go_r;    /* worker -> master: about to block */
};

static _Atomic int mk_joined;
static void mk_on_joined(ripc_peer *p, void *arg)
{
    (void)p;
    (void)arg;
    atomic_fetch_add(&mk_joined, 1);
}

/* A master in a child: accept one worker, then never poll again; once the
 * worker sleeps in its blocking call, die by SIGKILL. */
static int master_to_be_killed(int idx, void *arg)
{
    (void)idx;
    struct mk_arg *a = arg;
    ripc_options o = base_opts(a->wait);
    o.ring_bytes = 4096;
    ripc_server *s = NULL;
    char why[256] = "";
    int rc = ripc_server_open_ex(&s, g_fx.url, &o, why, sizeof why);
    WCHECK(rc == 0, "server open: %s (%s)", ripc_strerror(rc), why);
    ripc_server_on_peer(s, mk_on_joined, NULL, NULL);
    ripc_test_write_all(a->ready_w, "R", 1);
    while (atomic_load(&mk_joined) == 0) {
        rc = ripc_server_poll(s, 100);
        WCHECK(rc >= 0, "poll: %s", ripc_strerror(rc));
    }
    ripc_test_write_all(a->ready_w, "J", 1); /* not polling any more */
    char b;
    WCHECK(ripc_test_read_all(a->go_r, &b, 1) == 0, "go pipe");
    ripc_test_wait_sleeping(getppid(), getppid());
    kill(getpid(), SIGKILL);
    for (;;)
        pause();
}

enum { MK_RECV, MK_SEND, MK_POLL };

static void master_killed_case(int wait, int how)
{
    int ready[2], go[2];
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(go), 0);
    struct mk_arg a = {.wait = wait, .ready_w = ready[1], .go_r = go[0]};
    pid_t mpid = spawn(master_to_be_killed, 0, &a);
    kid_of(mpid)->expect = 128 + SIGKILL;
    close(ready[1]);
    close(go[0]);
    char b;
    assert_int_equal(ripc_test_read_all(ready[0], &b, 1), 0); /* listening */

    ripc_options o = base_opts(wait);
    o.ring_bytes = 4096;
    ripc_client *c = NULL;
    char why[256] = "";
    int rc = ripc_client_open_ex(&c, g_fx.url, &o, why, sizeof why);
    if (rc != 0)
        fail_msg("client open: %s (%s)", ripc_strerror(rc), why);
    assert_int_equal(ripc_test_read_all(ready[0], &b, 1), 0); /* the master stopped polling */
    close(ready[0]);
    if (how == MK_POLL) {
        /* An outside event loop: poll() on ripc_client_fd(), recv(c, m, 0)
         * until -EAGAIN. The dead master's doorbell hangs up, poll() says
         * so every time, and recv must turn that into -EPIPE, not spin. */
        int fd = ripc_client_fd(c);
        assert_true(fd >= 0);
        ripc_msg msg;
        assert_int_equal(ripc_client_recv(c, &msg, 0), -EAGAIN);
        ripc_test_write_all(go[1], "B", 1);
        long looks = 0;
        while ((rc = ripc_client_recv(c, &msg, 0)) == -EAGAIN) {
            struct pollfd pf = {.fd = fd, .events = POLLIN};
            int r = poll(&pf, 1, 20000);
            if (r == 0)
                fail_msg("ripc_client_fd stayed quiet for 20 s after the master died");
            if (++looks > 100000)
                fail_msg("recv(c, m, 0) still -EAGAIN after %ld wake-ups", looks);
        }
        print_message("wait %d: poll + recv(0) saw the master's death after %ld wake-ups\n", wait,
                      looks);
        assert_int_equal(rc, -EPIPE);
        assert_int_equal(ripc_client_recv(c, &msg, 0), -EPIPE);
        /* The fd was handed out, so every empty recv(c, m, 0) is a full
         * look: the first one after poll() woke for the death sees the
         * doorbell's end of stream (shared memory) or the socket's (socket
         * mode). */
        assert_int_equal(looks, 1);
    } else if (how == MK_SEND) {
        unsigned char buf[100];
        memset(buf, 0x5A, sizeof buf);
        int sent = 0;
        while ((rc = ripc_client_send(c, T_DATA, buf, sizeof buf, 0)) == 0)
            sent++;
        assert_int_equal(rc, -EAGAIN);
        assert_true(sent > 0);
        if (shm_mode())
            assert_true(sent < 4096 / (int)sizeof buf); /* the ring really is 4 KiB */
        ripc_test_write_all(go[1], "B", 1);
        rc = ripc_client_send(c, T_DATA, buf, sizeof buf, -1);
        /* Socket mode: our queue's writer thread may still be draining into
         * the kernel's buffers, so "full" is not stable until those are
         * full too: keep sending until we block for good. */
        while (!shm_mode() && rc == 0)
            rc = ripc_client_send(c, T_DATA, buf, sizeof buf, -1);
        assert_int_equal(rc, -EPIPE);
        assert_int_equal(ripc_client_send(c, T_DATA, buf, sizeof buf, -1), -EPIPE);
    } else {
        ripc_msg msg;
        ripc_test_write_all(go[1], "B", 1);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        rc = ripc_client_recv(c, &msg, -1);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        /* Printed, not asserted (a loaded machine may stretch it): the
         * bound is by construction, the futex word's sleeps are 50 ms
         * slices with the socket polled between them. */
        print_message("wait %d: recv(-1) saw the master's death after %.1f ms (kill sent "
                      "after the worker blocked)\n",
                      wait,
                      (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
        assert_int_equal(rc, -EPIPE);
        assert_int_equal(ripc_client_recv(c, &msg, -1), -EPIPE);
        assert_int_equal(ripc_client_request(c, T_ECHO, "x", 1, &msg, -1), -EPIPE);
    }
    close(go[1]);
    ripc_client_close(c);
    assert_int_equal(kid_reap(mpid), 128 + SIGKILL);
    unlink(g_fx.path); /* the dead master's socket file */
}

static void test_mw_master_killed(void **state)
{
    (void)state;
    static const int waits[] = {RIPC_WAIT_ADAPTIVE, RIPC_WAIT_BLOCK};
    for (size_t i = 0; i < sizeof waits / sizeof waits[0]; i++) {
        atomic_store(&mk_joined, 0);
        master_killed_case(waits[i], MK_RECV); /* blocked in recv(-1) */
        master_killed_case(waits[i], MK_SEND); /* blocked in send(-1), ring full */
        master_killed_case(waits[i], MK_POLL); /* poll(ripc_client_fd) + recv(0) */
    }
}

/* ================================================================== 5 */

static int w_ping_once(int idx, void *arg)
{
    (void)idx;
    (void)arg;
    ripc_client *c = w_open(RIPC_WAIT_ADAPTIVE, 0, "ping");
    int rc = ripc_client_send(c, T_PING, "p", 1, -1);
    WCHECK(rc == 0, "send: %s", ripc_strerror(rc));
    ripc_client_close(c);
    return 0;
}

static void version_mismatch_raw_hello(void)
{
    struct mctx *m = g_fx.m;
    ripc_options o = base_opts(RIPC_WAIT_ADAPTIVE);
    open_server(m, &o);

    ripc__addr a;
    char why[256] = "";
    assert_int_equal(ripc__addr_parse(&a, g_fx.url, why, sizeof why), 0);
    intptr_t fd;
    assert_int_equal(ripc__sock_connect(&a, &fd, 5000, why, sizeof why), 0);
    ripc__hello h;
    memset(&h, 0, sizeof h);
    h.version_min = 99;
    h.version_max = 99;
    h.caps =
        RIPC_CAP_SHM | RIPC_CAP_MEMFD | RIPC_DB_CAP(RIPC_DB_EVENTFD) | RIPC_DB_CAP(RIPC_DB_SOCKET);
    h.pid = (uint32_t)getpid();
    snprintf(h.name, sizeof h.name, "from-the-future");
    uint8_t buf[RIPC_FRAME_HDR + RIPC_HANDSHAKE_MAX];
    size_t plen = ripc__hello_encode(buf + RIPC_FRAME_HDR, RIPC_HANDSHAKE_MAX, &h);
    assert_true(plen > 0);
    ripc__frame f = {.ftype = RIPC_FRAME_HELLO, .len = plen};
    ripc__frame_encode(buf, &f);
    assert_int_equal(ripc__sock_send_all(fd, buf, RIPC_FRAME_HDR + plen), 0);

    /* The master answers while it polls; the answer is our signal. */
    struct pollfd pf = {.fd = (int)fd, .events = POLLIN};
    for (;;) {
        assert_true(ripc_server_poll(m->s, 50) >= 0);
        int r = poll(&pf, 1, 0);
        assert_true(r >= 0);
        if (r == 1)
            break;
    }
    uint8_t hdr[RIPC_FRAME_HDR];
    assert_int_equal(ripc__sock_recv_all(fd, hdr, sizeof hdr, 5000), 0);
    assert_int_equal(ripc__frame_decode(hdr, &f, RIPC_REASON_MAX), 0);
    assert_int_equal(f.ftype, RIPC_FRAME_REJECT);
    assert_int_equal(f.type, EPROTONOSUPPORT);
    assert_true(f.len > 0);
    char text[RIPC_REASON_MAX + 1];
    assert_int_equal(ripc__sock_recv_all(fd, text, (size_t)f.len, 5000), 0);
    text[f.len] = 0;
    print_message("REJECT: %s\n", text);
    if (!strstr(text, "99") || !strstr(text, "1"))
        fail_msg("REJECT text does not name the versions: \"%s\"", text);
    /* ... and the master hangs up. */
    assert_int_equal(ripc__sock_recv_all(fd, text, 1, 5000), -EPIPE);
    ripc__sock_close(fd);
    assert_int_equal(atomic_load(&m->joined), 0);
    assert_int_equal(ripc_server_peer_count(m->s), 0);

    /* The master keeps serving: a normal worker gets in. */
    spawn(w_ping_once, 0, NULL);
    expect_all_left_bye(m, 1);
    assert_int_equal(atomic_load(&m->pings), 1);
    close_server(m);
}

struct rej_report {
    int rc;
    char why[256];
};

static int w_open_report(int idx, void *arg)
{
    (void)idx;
    int fd = (int)(intptr_t)arg;
    struct rej_report r;
    memset(&r, 0, sizeof r);
    ripc_options o = base_opts(RIPC_WAIT_ADAPTIVE);
    ripc_client *c = NULL;
    r.rc = ripc_client_open_ex(&c, g_fx.url, &o, r.why, sizeof r.why);
    ripc_test_write_all(fd, &r, sizeof r);
    ripc_client_close(c);
    return 0;
}

static void version_mismatch_fake_master(void)
{
    ripc__addr a;
    char why[256] = "";
    assert_int_equal(ripc__addr_parse(&a, g_fx.url, why, sizeof why), 0);
    intptr_t lfd;
    assert_int_equal(ripc__sock_listen(&a, &lfd, why, sizeof why), 0);
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    spawn(w_open_report, 0, (void *)(intptr_t)pfd[1]);
    close(pfd[1]);

    struct pollfd pf = {.fd = (int)lfd, .events = POLLIN};
    while (poll(&pf, 1, 1000) == 0)
        kids_check();
    intptr_t cfd;
    assert_int_equal(ripc__sock_accept(lfd, &cfd), 0);
    uint8_t buf[RIPC_FRAME_HDR + RIPC_HANDSHAKE_MAX];
    ripc__frame f;
    assert_int_equal(ripc__sock_recv_all(cfd, buf, RIPC_FRAME_HDR, 5000), 0);
    assert_int_equal(ripc__frame_decode(buf, &f, RIPC_HANDSHAKE_MAX), 0);
    assert_int_equal(f.ftype, RIPC_FRAME_HELLO);
    assert_int_equal(ripc__sock_recv_all(cfd, buf, (size_t)f.len, 5000), 0);
    ripc__hello h;
    memset(&h, 0, sizeof h);
    assert_int_equal(ripc__hello_decode(buf, (size_t)f.len, &h), 0);
    assert_int_equal(h.version_min, RIPC_PROTO_VERSION);

    const char *reason = "fake master speaks protocol version 7 only";
    size_t n = strlen(reason);
    ripc__frame rf = {.ftype = RIPC_FRAME_REJECT, .type = EPROTONOSUPPORT, .len = n};
    ripc__frame_encode(buf, &rf);
    memcpy(buf + RIPC_FRAME_HDR, reason, n);
    assert_int_equal(ripc__sock_send_all(cfd, buf, RIPC_FRAME_HDR + n), 0);

    struct rej_report r;
    assert_int_equal(ripc_test_read_all(pfd[0], &r, sizeof r), 0);
    close(pfd[0]);
    r.why[sizeof r.why - 1] = 0;
    print_message("client open: %s; why: %s\n", ripc_strerror(r.rc), r.why);
    assert_int_equal(r.rc, -EPROTONOSUPPORT);
    if (!strstr(r.why, reason))
        fail_msg("why does not carry the master's reason: \"%s\"", r.why);
    kids_reap_all_ok();
    ripc__sock_close(cfd);
    ripc__sock_unlink(&a, lfd);
    ripc__sock_close(lfd);
}

static void test_mw_version_mismatch(void **state)
{
    (void)state;
    version_mismatch_raw_hello();
    version_mismatch_fake_master();
}

/* ================================================================== 6 */

#define NOBODY 65534u

/* Become nobody, open, report; with `echo` also do one request. */
static int w_as_nobody(int idx, void *arg)
{
    int fd = (int)(intptr_t)arg;
    struct rej_report r;
    memset(&r, 0, sizeof r);
    if (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 || setuid(NOBODY) != 0) {
        r.rc = 77;
        snprintf(r.why, sizeof r.why, "setuid(%u): %s", NOBODY, strerror(errno));
        ripc_test_write_all(fd, &r, sizeof r);
        return 0;
    }
    ripc_options o = base_opts(RIPC_WAIT_ADAPTIVE);
    ripc_client *c = NULL;
    r.rc = ripc_client_open_ex(&c, g_fx.url, &o, r.why, sizeof r.why);
    if (r.rc == 0 && idx == 1) {
        unsigned char buf[MAX_PAYLOAD];
        size_t len = mk_payload(buf, 0, 0, 100);
        ripc_msg rep;
        int rc = ripc_client_request(c, T_ECHO, buf, len, &rep, 30000);
        WCHECK(rc == 0, "request as nobody: %s", ripc_strerror(rc));
        WCHECK(rep.len == len && transformed_ok(rep.data, buf, len, ripc_client_id(c)),
               "reply content");
    }
    ripc_test_write_all(fd, &r, sizeof r);
    ripc_client_close(c);
    return 0;
}

static struct rej_report run_as_nobody(struct mctx *m, int echo)
{
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    spawn(w_as_nobody, echo, (void *)(intptr_t)pfd[1]);
    close(pfd[1]);
    /* Serve until the child reports (a REJECT or a completed request). */
    struct pollfd pf = {.fd = pfd[0], .events = POLLIN};
    while (poll(&pf, 1, 0) == 0) {
        assert_true(ripc_server_poll(m->s, 20) >= 0);
        kids_check();
    }
    struct rej_report r;
    assert_int_equal(ripc_test_read_all(pfd[0], &r, sizeof r), 0);
    close(pfd[0]);
    r.why[sizeof r.why - 1] = 0;
    return r;
}

static void test_mw_other_uid_rejected(void **state)
{
    (void)state;
    struct mctx *m = g_fx.m;
    if (geteuid() != 0) {
        print_message("SKIP: needs root to switch to uid %u\n", NOBODY);
        skip();
    }
    /* nobody must reach the socket: traverse the directory, connect. */
    assert_int_equal(chmod(g_fx.dir, 0711), 0);
    ripc_options o = base_opts(RIPC_WAIT_ADAPTIVE);
    open_server(m, &o);
    assert_int_equal(chmod(g_fx.path, 0666), 0);
    struct rej_report r = run_as_nobody(m, 0);
    kids_reap_all_ok();
    if (r.rc == 77) {
        print_message("SKIP: %s\n", r.why);
        skip();
    }
    print_message("open as uid %u: %s; why: %s\n", NOBODY, ripc_strerror(r.rc), r.why);
    assert_int_equal(r.rc, -EACCES);
    if (!strstr(r.why, "65534"))
        fail_msg("why does not name the uid: \"%s\"", r.why);
    assert_int_equal(atomic_load(&m->joined), 0);
    close_server(m);

    /* The allow-list lets the same child in. */
    static const uint32_t allow[] = {NOBODY};
    o.allow_uids = allow;
    o.n_allow_uids = 1;
    open_server(m, &o);
    assert_int_equal(chmod(g_fx.path, 0666), 0);
    r = run_as_nobody(m, 1);
    if (r.rc != 0)
        fail_msg("allowed uid refused: %s (%s)", ripc_strerror(r.rc), r.why);
    expect_all_left_bye(m, 1);
    assert_int_equal(atomic_load(&m->requests), 1);
}

/* ================================================================== 7 */

#define MODE_MESSAGES 1000000
#define MODE_REQUESTS 10000

/* One-way stream with sequence numbers and a running checksum (sent last),
 * then request/replies, all in one wait mode. */
static int w_modes(int idx, void *arg)
{
    int wait = (int)(intptr_t)arg;
    ripc_client *c = w_open(wait, 0, "modes");
    uint32_t id = ripc_client_id(c);
    /* Shared memory: the default worker doorbell is a socket whose sleeps
     * the futex word replaces (shm/doorbell.h); an explicit one is only
     * what was asked for. */
    const char *why = ripc_client_transport_reason(c);
    int word = strstr(why, "+ futex word") != NULL;
    int futex = (ripc__doorbell_caps() & RIPC_DB_CAP(RIPC_DB_FUTEX)) != 0;
    WCHECK(g_transport == RIPC_TRANSPORT_SOCKET || word == (g_doorbell == 0 && futex),
           "doorbell %d: %s", g_doorbell, why);
    uint64_t rs = 0xABCD0000u + (uint64_t)wait;
    static unsigned char buf[MAX_PAYLOAD];
    uint64_t sum = 0;
    for (uint64_t seq = 0; seq < MODE_MESSAGES; seq++) {
        size_t len = mk_payload(buf, (uint32_t)idx, seq, ripc_test_rand(&rs) % 257);
        int rc = ripc_client_send(c, T_DATA, buf, len, -1);
        WCHECK(rc == 0, "send %llu: %s", (unsigned long long)seq, ripc_strerror(rc));
        sum = sum_update(sum, buf, len);
    }
    unsigned char tail[16];
    put64(tail, MODE_MESSAGES);
    put64(tail + 8, sum);
    int rc = ripc_client_send(c, T_SUM, tail, sizeof tail, -1);
    WCHECK(rc == 0, "send T_SUM: %s", ripc_strerror(rc));
    for (uint64_t seq = 0; seq < MODE_REQUESTS; seq++) {
        size_t len = mk_payload(buf, (uint32_t)idx, seq, ripc_test_rand(&rs) % 257);
        ripc_msg r;
        rc = ripc_client_request(c, T_ECHO, buf, len, &r, 30000);
        WCHECK(rc == 0, "request %llu: %s", (unsigned long long)seq, ripc_strerror(rc));
        WCHECK(r.kind == RIPC_REPLY && r.type == T_ECHO && r.len == len &&
                   transformed_ok(r.data, buf, len, id),
               "reply %llu: kind %u type %u len %llu", (unsigned long long)seq, r.kind, r.type,
               (unsigned long long)r.len);
    }
    ripc_client_close(c);
    return 0;
}

static void test_mw_modes_1M(void **state)
{
    (void)state;
    static const struct {
        int wait;
        uint32_t spin_us;
        int doorbell;
        const char *name;
    } modes[] = {
        {RIPC_WAIT_SPIN, 0, 0, "spin"},
        {RIPC_WAIT_ADAPTIVE, 0, 0, "adaptive"},
        {RIPC_WAIT_BLOCK, 0, 0, "block"},
        {RIPC_WAIT_ADAPTIVE, 1, 0, "adaptive, 1 us spin (sleeps on most messages)"},
        {RIPC_WAIT_BLOCK, 0, RIPC_DOORBELL_SOCKET, "block, socket doorbell only"},
        {RIPC_WAIT_BLOCK, 0, RIPC_DOORBELL_FUTEX, "block, futex doorbell"},
    };
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        if (modes[i].doorbell == RIPC_DOORBELL_FUTEX &&
            !(ripc__doorbell_caps() & RIPC_DB_CAP(RIPC_DB_FUTEX))) {
            print_message("SKIP: %s: this build has no futex doorbell\n", modes[i].name);
            continue;
        }
        g_spin_us = modes[i].spin_us;
        g_doorbell = modes[i].doorbell;
        struct mctx *m = g_fx.m;
        memset(m->ps, 0, sizeof m->ps);
        atomic_store(&m->joined, 0);
        atomic_store(&m->left, 0);
        atomic_store(&m->sums, 0);
        atomic_store(&m->requests, 0);
        atomic_store(&m->oneways, 0);
        ripc_options o = base_opts(modes[i].wait);
        open_server(m, &o);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        pid_t pid = spawn(w_modes, 1, (void *)(intptr_t)modes[i].wait);
        serve_until(m, &m->left, 1);
        assert_int_equal(kid_reap(pid), 0);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        print_message("%-8s %d messages + %d requests: %.2f s\n", modes[i].name, MODE_MESSAGES,
                      MODE_REQUESTS,
                      (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
        check_all_left_bye(m, 1);
        assert_int_equal(m->ps[1].count, MODE_MESSAGES);
        assert_true(m->ps[1].sum_ok);
        assert_int_equal(atomic_load(&m->sums), 1);
        assert_int_equal(atomic_load(&m->requests), MODE_REQUESTS);
        assert_int_equal(m->ps[1].rcount, MODE_REQUESTS);
        close_server(m);
    }
    g_spin_us = 0;
    g_doorbell = 0;
}

/* ================================================================== 8 */

/* utime + stime of pid, in clock ticks; -1 if unreadable. */
static long cpu_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    char *rp = strrchr(buf, ')');
    unsigned long ut, st;
    if (!rp ||
        sscanf(rp + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (long)(ut + st);
}

static int w_idle(int idx, void *arg)
{
    (void)idx;
    (void)arg;
    ripc_client *c = w_open(RIPC_WAIT_ADAPTIVE, 0, "idle");
    ripc_msg msg;
    int rc = ripc_client_recv(c, &msg, -1);
    WCHECK(rc == 0 && msg.type == T_QUIT, "recv: %s (type %u)", ripc_strerror(rc), msg.type);
    ripc_client_close(c);
    return 0;
}

static void test_mw_idle_adaptive_no_cpu(void **state)
{
    (void)state;
    struct mctx *m = open_adaptive();
    pid_t pid = spawn(w_idle, 0, NULL);
    serve_until(m, &m->joined, 1);
    long t0 = cpu_ticks(pid);
    assert_true(t0 >= 0);
    /* A 500 ms window; the master waits in its own poll meanwhile. */
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    double el;
    do {
        assert_int_equal(ripc_server_poll(m->s, 500), 0);
        clock_gettime(CLOCK_MONOTONIC, &b);
        el = (double)(b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6;
    } while (el < 500);
    long t1 = cpu_ticks(pid);
    assert_true(t1 >= t0);
    double used_ms = (double)(t1 - t0) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
    print_message("idle worker used %.0f ms CPU in %.0f ms\n", used_ms, el);
    assert_int_equal(ripc_server_send(m->s, 1, T_QUIT, NULL, 0, -1), 0);
    expect_all_left_bye(m, 1);
    if (used_ms >= 100)
        fail_msg("a worker blocked in recv(-1) used %.0f ms CPU in %.0f ms", used_ms, el);
}

/* ================================================================== 9 */

/* T_LATE: the first one is answered only after the worker gave up on it. */
static void h_late(ripc_peer *p, const ripc_msg *msg, void *arg)
{
    struct mctx *m = arg;
    if (msg->kind != RIPC_REQUEST) {
        ripc_test_fail_once(&m->fail, "T_LATE kind %u", msg->kind);
        return;
    }
    if (!atomic_load(&m->saved)) {
        m->saved_peer = p;
        m->saved_req = *msg;
        m->saved_req.data = NULL; /* not valid after the handler */
        m->saved_req.len = 0;
        atomic_store(&m->saved, 1);
        return;
    }
    ripc_test_fail_once(&m->fail, "a second T_LATE");
}

static void h_fast(ripc_peer *p, const ripc_msg *msg, void *arg)
{
    struct mctx *m = arg;
    int rc = ripc_reply(p, msg, "fast", 4);
    if (rc != 0)
        ripc_test_fail_once(&m->fail, "reply to T_FAST: %s", ripc_strerror(rc));
}

struct late_arg {
    int to_master, from_master;
};

static int w_late(int idx, void *arg)
{
    (void)idx;
    struct late_arg *a = arg;
    ripc_client *c = w_open(RIPC_WAIT_ADAPTIVE, 0, "late");
    ripc_msg r;
    int rc = ripc_client_request(c, T_LATE, "slow", 4, &r, 50);
    WCHECK(rc == -ETIMEDOUT, "first request: %s, want -ETIMEDOUT", ripc_strerror(rc));
    ripc_test_write_all(a->to_master, "T", 1);
    char b;
    WCHECK(ripc_test_read_all(a->from_master, &b, 1) == 0 && b == 'S', "late reply not sent");
    rc = ripc_client_request(c, T_FAST, "quick", 5, &r, 30000);
    WCHECK(rc == 0, "second request: %s", ripc_strerror(rc));
    WCHECK(r.kind == RIPC_REPLY && r.type == T_FAST && r.len == 4 && memcmp(r.data, "fast", 4) == 0,
           "second reply: kind %u type %u len %llu", r.kind, r.type, (unsigned long long)r.len);
    WCHECK(ripc_client_dropped(c) == 1, "dropped %llu, want 1",
           (unsigned long long)ripc_client_dropped(c));
    rc = ripc_client_recv(c, &r, 0);
    WCHECK(rc == -EAGAIN, "recv after the late reply: %s, want -EAGAIN", ripc_strerror(rc));
    ripc_client_close(c);
    return 0;
}

static void test_mw_reply_unknown_id_dropped(void **state)
{
    (void)state;
    struct mctx *m = open_adaptive();
    assert_int_equal(ripc_server_handle(m->s, T_LATE, h_late, m), 0);
    assert_int_equal(ripc_server_handle(m->s, T_FAST, h_fast, m), 0);
    int to_m[2], from_m[2];
    assert_int_equal(pipe(to_m), 0);
    assert_int_equal(pipe(from_m), 0);
    struct late_arg a = {.to_master = to_m[1], .from_master = from_m[0]};
    spawn(w_late, 0, &a);
    close(to_m[1]);
    close(from_m[0]);
    int replied = 0;
    while (atomic_load(&m->left) < 1 && !ripc_test_failed(&m->fail)) {
        assert_true(ripc_server_poll(m->s, 20) >= 0);
        struct pollfd pf = {.fd = to_m[0], .events = POLLIN};
        if (!replied && poll(&pf, 1, 0) == 1) {
            char b;
            assert_int_equal(ripc_test_read_all(to_m[0], &b, 1), 0);
            assert_true(atomic_load(&m->saved));
            assert_int_equal(ripc_reply(m->saved_peer, &m->saved_req, "late", 4), 0);
            replied = 1;
            char s = 'S';
            assert_int_equal(write(from_m[1], &s, 1), 1);
        }
        kids_check();
    }
    ripc_test_assert_no_failure(&m->fail);
    close(to_m[0]);
    close(from_m[1]);
    kids_reap_all_ok();
    assert_true(replied);
    check_all_left_bye(m, 1);
}

/* ================================================================= 10 */

#define TH_WORKERS   8
#define TH_REQUESTS  50000
#define TH_SEQ_EVERY 4 /* a one-way T_SEQ after every 4th request */

static uint64_t g_th_requests = TH_REQUESTS;

static int w_threads(int idx, void *arg)
{
    (void)arg;
    ripc_client *c = w_open(RIPC_WAIT_ADAPTIVE, 0, "threads");
    uint32_t id = ripc_client_id(c);
    uint64_t rs = 0x7777u + (uint64_t)idx, seq2 = 0;
    static unsigned char buf[MAX_PAYLOAD];
    for (uint64_t seq = 0; seq < g_th_requests; seq++) {
        size_t len = mk_payload(buf, (uint32_t)idx, seq, ripc_test_rand(&rs) % 200);
        ripc_msg r;
        int rc = ripc_client_request(c, T_ECHO, buf, len, &r, 30000);
        WCHECK(rc == 0, "request %llu: %s", (unsigned long long)seq, ripc_strerror(rc));
        WCHECK(r.kind == RIPC_REPLY && r.type == T_ECHO && r.len == len &&
                   transformed_ok(r.data, buf, len, id),
               "reply %llu: kind %u type %u len %llu", (unsigned long long)seq, r.kind, r.type,
               (unsigned long long)r.len);
        if (seq % TH_SEQ_EVERY == 0) {
            unsigned char s8[8];
            put64(s8, seq2++);
            rc = ripc_client_send(c, T_SEQ, s8, 8, -1);
            WCHECK(rc == 0, "send T_SEQ: %s", ripc_strerror(rc));
        }
    }
    ripc_client_close(c);
    return 0;
}

static void test_mw_four_dispatch_threads(void **state)
{
    (void)state;
    struct mctx *m = open_adaptive();
    int lp[2];
    left_pipe_arm(m, lp, TH_WORKERS);
    /* Workers first: a child forked later would inherit the master's end
     * of earlier workers' sockets. */
    for (int i = 0; i < TH_WORKERS; i++)
        spawn(w_threads, i, NULL);
    run_start(m, 4);

    kids_reap_all_ok();
    assert_int_equal(run_stop_after_left(m, lp), 0); /* left fired for all of them */
    check_all_left_bye(m, TH_WORKERS);
    uint64_t seqs = (g_th_requests + TH_SEQ_EVERY - 1) / TH_SEQ_EVERY;
    assert_int_equal(atomic_load(&m->requests), TH_WORKERS * g_th_requests);
    assert_int_equal(atomic_load(&m->oneways), TH_WORKERS * seqs);
    for (int id = 1; id <= TH_WORKERS; id++) {
        assert_int_equal(m->ps[id].rcount, g_th_requests);
        assert_int_equal(m->ps[id].next_seq2, seqs);
    }
    print_message("handlers ran on %d threads\n", atomic_load(&m->threads));
    assert_int_equal(atomic_load(&m->threads), 4);
    /* After run() the server polls again on the calling thread. */
    assert_int_equal(ripc_server_poll(m->s, 0), 0);
}

/* ================================================================= 11 */

static int w_fd(int idx, void *arg)
{
    (void)idx;
    int go = (int)(intptr_t)arg;
    ripc_client *c = w_open(RIPC_WAIT_ADAPTIVE, 0, "fd");
    char b;
    WCHECK(ripc_test_read_all(go, &b, 1) == 0, "go pipe");
    int rc = ripc_client_send(c, T_PING, "ping", 4, -1);
    WCHECK(rc == 0, "send: %s", ripc_strerror(rc));
    ripc_msg msg;
    rc = ripc_client_recv(c, &msg, -1);
    WCHECK(rc == 0 && msg.type == T_QUIT, "recv: %s", ripc_strerror(rc));
    ripc_client_close(c);
    return 0;
}

/* An outside event loop: ripc_server_poll(s, 0) until 0, then poll() the fd. */
static void fd_serve_until(struct mctx *m, _Atomic int *ctr, int target)
{
    int fd = ripc_server_fd(m->s);
    assert_true(fd >= 0);
    for (int rounds = 0; atomic_load(ctr) < target; rounds++) {
        if (rounds > 10000)
            fail_msg("the server fd keeps waking up but ripc_server_poll(s, 0) makes no "
                     "progress");
        int n;
        while ((n = ripc_server_poll(m->s, 0)) > 0)
            ;
        assert_int_equal(n, 0);
        ripc_test_assert_no_failure(&m->fail);
        if (atomic_load(ctr) >= target)
            break;
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int r = poll(&pf, 1, 20000);
        kids_check();
        if (r == 0)
            fail_msg("the server fd stayed quiet for 20 s (waiting for %d, have %d)", target,
                     atomic_load(ctr));
    }
}

static void test_mw_server_fd_pollable(void **state)
{
    (void)state;
    struct mctx *m = open_adaptive();
    if (ripc_server_fd(m->s) == -ENOTSUP) {
        print_message("SKIP: this build's poller has no descriptor (poll(2))\n");
        skip();
    }
    int go[2];
    assert_int_equal(pipe(go), 0);
    spawn(w_fd, 0, (void *)(intptr_t)go[0]);
    close(go[0]);
    /* Accept and handshake through the fd alone. */
    fd_serve_until(m, &m->joined, 1);
    assert_int_equal(ripc_server_poll(m->s, 0), 0);
    assert_int_equal(write(go[1], "G", 1), 1);
    close(go[1]);
    struct pollfd pf = {.fd = ripc_server_fd(m->s), .events = POLLIN};
    int r = poll(&pf, 1, 20000);
    kids_check();
    if (r != 1)
        fail_msg("poll(ripc_server_fd) did not wake for the worker's message (%d)", r);
    assert_true(pf.revents & POLLIN);
    assert_int_equal(ripc_server_poll(m->s, 0), 1);
    assert_int_equal(atomic_load(&m->pings), 1);
    assert_int_equal(ripc_server_send(m->s, 1, T_QUIT, NULL, 0, -1), 0);
    fd_serve_until(m, &m->left, 1);
    kids_reap_all_ok();
    check_all_left_bye(m, 1);
}

/* The worker's side of an outside event loop: recv(c, m, 0) == -EAGAIN leaves
 * ripc_client_fd() armed; it must turn readable when the master sends, and
 * be quiet again once that message is taken (a doorbell left readable would
 * make the caller's loop spin). Every wake-up here comes from a real sleep:
 * the master sends only after the worker's ping, which follows the arming. */
#define FD_ROUNDS 300

static int w_client_fd(int idx, void *arg)
{
    (void)idx;
    (void)arg;
    ripc_client *c = w_open(RIPC_WAIT_ADAPTIVE, 0, "client-fd");
    int fd = ripc_client_fd(c);
    WCHECK(fd >= 0, "ripc_client_fd: %s", ripc_strerror(fd));
    ripc_msg msg;
    for (uint64_t i = 0; i < FD_ROUNDS; i++) {
        int rc = ripc_client_recv(c, &msg, 0);
        WCHECK(rc == -EAGAIN, "round %llu: recv(0) with nothing sent: %s", (unsigned long long)i,
               ripc_strerror(rc));
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        WCHECK(poll(&pf, 1, 0) == 0, "round %llu: ripc_client_fd readable with nothing to read",
               (unsigned long long)i);
        unsigned char b[8];
        put64(b, i);
        rc = ripc_client_send(c, T_PING, b, sizeof b, -1);
        WCHECK(rc == 0, "send: %s", ripc_strerror(rc));
        int r = poll(&pf, 1, 20000);
        WCHECK(r == 1 && (pf.revents & POLLIN),
               "round %llu: poll(ripc_client_fd) did not wake for the master's message (%d)",
               (unsigned long long)i, r);
        rc = ripc_client_recv(c, &msg, 0);
        WCHECK(rc == 0 && msg.type == T_PING && msg.len == 8 && get64(msg.data) == i,
               "round %llu: recv: %s (type %u, len %llu)", (unsigned long long)i, ripc_strerror(rc),
               msg.type, (unsigned long long)msg.len);
    }
    int rc = ripc_client_recv(c, &msg, -1);
    WCHECK(rc == 0 && msg.type == T_QUIT, "recv: %s", ripc_strerror(rc));
    ripc_client_close(c);
    return 0;
}

static void test_mw_client_fd_pollable(void **state)
{
    (void)state;
    struct mctx *m = open_adaptive();
    m->ping_back = 1;
    spawn(w_client_fd, 0, NULL);
    serve_until(m, &m->pings, FD_ROUNDS);
    m->ping_back = 0;
    assert_int_equal(ripc_server_send(m->s, 1, T_QUIT, NULL, 0, -1), 0);
    expect_all_left_bye(m, 1);
}

/* ripc_client_fd is armed at open: a worker that polls before its first
 * recv wakes for what the master sends right after `joined`. */
static int w_first_poll(int idx, void *arg)
{
    (void)idx;
    (void)arg;
    ripc_client *c = w_open(RIPC_WAIT_ADAPTIVE, 0, "first-poll");
    int fd = ripc_client_fd(c);
    WCHECK(fd >= 0, "ripc_client_fd: %s", ripc_strerror(fd));
    ripc_msg msg;
    int got = 0, quit = 0;
    while (!quit) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int r = poll(&pf, 1, 5000);
        WCHECK(r == 1, "poll(ripc_client_fd) did not wake in 5 s with %d of 3 messages taken", got);
        int rc;
        while (!quit && (rc = ripc_client_recv(c, &msg, 0)) == 0) {
            if (got == 2) {
                WCHECK(msg.type == T_QUIT, "message 2: type %u", msg.type);
                quit = 1;
            } else {
                WCHECK(msg.type == T_PING && msg.len == 8 && get64(msg.data) == (uint64_t)got,
                       "message %d: type %u len %llu", got, msg.type, (unsigned long long)msg.len);
            }
            got++;
        }
        WCHECK(quit || rc == -EAGAIN, "recv: %s", ripc_strerror(rc));
    }
    ripc_client_close(c);
    return 0;
}

static void test_mw_client_fd_first_poll(void **state)
{
    (void)state;
    struct mctx *m = open_adaptive();
    spawn(w_first_poll, 0, NULL);
    serve_until(m, &m->joined, 1);
    for (uint64_t i = 0; i < 2; i++) {
        unsigned char b[8];
        put64(b, i);
        assert_int_equal(ripc_server_send(m->s, 1, T_PING, b, sizeof b, -1), 0);
    }
    assert_int_equal(ripc_server_send(m->s, 1, T_QUIT, NULL, 0, -1), 0);
    expect_all_left_bye(m, 1);
}

/* Two threads calling ripc_client_request on one client (ringipc.h: one
 * thread at a time): the one that comes in while the other is inside gets
 * -EBUSY, and nothing is lost: every request that returned 0 got its own
 * reply, none was dropped, and the master answered exactly those. The
 * reply's length is derived from its request (its data may be released by
 * the other thread's next call, so only the copied fields are checked).
 * Master and client in this one process (no fork: the sanitizers see both
 * threads, and TSan allows no thread in a child forked after threads). */
#define BUSY_MIN 2000

static uint64_t twin_len(uint32_t t, uint64_t seq)
{
    return 16 + (t * 131u + seq * 7u) % 301u;
}

static void h_twin(ripc_peer *p, const ripc_msg *msg, void *arg)
{
    struct mctx *m = arg;
    static _Thread_local unsigned char out[16 + 301];
    if (msg->type == T_TWIN_END) {
        uint64_t n = msg->len == 8 ? get64(msg->data) : 0;
        if (n != atomic_load(&m->twins))
            ripc_test_fail_once(&m->fail, "the client had %llu replies, the master answered %llu",
                                (unsigned long long)n, (unsigned long long)atomic_load(&m->twins));
        atomic_fetch_add(&m->ends, 1);
        return;
    }
    if (msg->kind != RIPC_REQUEST || msg->len != 12) {
        ripc_test_fail_once(&m->fail, "T_TWIN: kind %u len %llu", msg->kind,
                            (unsigned long long)msg->len);
        return;
    }
    const unsigned char *d = msg->data;
    memset(out, 0, sizeof out);
    int rc = ripc_reply(p, msg, out, twin_len(get32(d), get64(d + 4)));
    if (rc != 0)
        ripc_test_fail_once(&m->fail, "T_TWIN reply: %s", ripc_strerror(rc));
    atomic_fetch_add(&m->twins, 1);
}

struct twin {
    ripc_client *c;
    uint32_t t;
    uint64_t ok, busy;
    _Atomic uint64_t *busy_all;
    char err[200];
};

static void *twin_main(void *arg)
{
    struct twin *w = arg;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    time_t until = ts.tv_sec + 30;
    uint64_t seq = 0;
    while (w->ok < BUSY_MIN || atomic_load(w->busy_all) == 0) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        if (ts.tv_sec > until)
            break;
        unsigned char req[12];
        put32(req, w->t);
        put64(req + 4, seq);
        ripc_msg r;
        int rc = ripc_client_request(w->c, T_TWIN, req, sizeof req, &r, 10000);
        if (rc == -EBUSY) {
            w->busy++;
            atomic_fetch_add(w->busy_all, 1);
            sched_yield();
            continue;
        }
        if (rc != 0 || r.kind != RIPC_REPLY || r.type != T_TWIN || r.len != twin_len(w->t, seq)) {
            snprintf(w->err, sizeof w->err, "thread %u request %llu: %s (kind %u type %u len %llu)",
                     w->t, (unsigned long long)seq, ripc_strerror(rc), r.kind, r.type,
                     (unsigned long long)r.len);
            break;
        }
        w->ok++;
        seq++;
    }
    return NULL;
}

static void test_mw_client_busy(void **state)
{
    (void)state;
    struct mctx *m = g_fx.m;
    ripc_options o = base_opts(RIPC_WAIT_ADAPTIVE);
    open_server(m, &o);
    assert_int_equal(ripc_server_handle(m->s, T_TWIN, h_twin, m), 0);
    assert_int_equal(ripc_server_handle(m->s, T_TWIN_END, h_twin, m), 0);
    int lp[2];
    left_pipe_arm(m, lp, 1);
    run_start(m, 1);

    ripc_client *c = NULL;
    char why[256] = "";
    int rc = ripc_client_open_ex(&c, g_fx.url, &o, why, sizeof why);
    if (rc != 0)
        fail_msg("client open: %s (%s)", ripc_strerror(rc), why);
    _Atomic uint64_t busy_all = 0;
    struct twin w[2] = {{.c = c, .t = 0, .busy_all = &busy_all},
                        {.c = c, .t = 1, .busy_all = &busy_all}};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, twin_main, &w[1]), 0);
    twin_main(&w[0]);
    pthread_join(th, NULL);
    print_message("twins: %llu + %llu requests, %llu + %llu -EBUSY\n", (unsigned long long)w[0].ok,
                  (unsigned long long)w[1].ok, (unsigned long long)w[0].busy,
                  (unsigned long long)w[1].busy);
    for (int i = 0; i < 2; i++)
        if (w[i].err[0])
            fail_msg("%s", w[i].err);
    if (atomic_load(&busy_all) == 0)
        fail_msg("two threads in one client for 30 s, never -EBUSY");
    assert_int_equal(ripc_client_dropped(c), 0);
    unsigned char b[8];
    put64(b, w[0].ok + w[1].ok);
    assert_int_equal(ripc_client_send(c, T_TWIN_END, b, sizeof b, -1), 0);
    ripc_client_close(c);
    run_stop_after_left(m, lp); /* it left */
    assert_int_equal(atomic_load(&m->ends), 1);
    check_all_left_bye(m, 1);
}

/* ripc_server_send_batch: batches of 1..64 messages of random sizes, checked
 * in order and byte for byte by the worker; argument errors that send
 * nothing; and (shared memory) a batch cut short by a full ring returns how
 * many went, and exactly those arrive. */
#define BATCH_TOTAL 20000
#define BATCH_MAX   64

struct batch_arg {
    int go_r; /* the worker starts reading once the count arrives here */
    int go_w; /* the parent's end: closed in the worker, so that a parent
               * that dies first means end of file, not a hang */
};

static int w_batch(int idx, void *arg)
{
    (void)idx;
    struct batch_arg *a = arg;
    close(a->go_w);
    ripc_client *c = w_open(RIPC_WAIT_ADAPTIVE, 4096, "batch");
    uint64_t expect = 0;
    WCHECK(ripc_test_read_all(a->go_r, &expect, sizeof expect) == 0, "go pipe");
    ripc_msg msg;
    for (uint64_t seq = 0; seq < expect; seq++) {
        int rc = ripc_client_recv(c, &msg, -1);
        uint32_t widx;
        uint64_t got;
        WCHECK(rc == 0 && msg.type == T_DATA && ck_payload(msg.data, msg.len, &widx, &got) &&
                   got == seq,
               "message %llu: %s (type %u, len %llu)", (unsigned long long)seq, ripc_strerror(rc),
               msg.type, (unsigned long long)msg.len);
    }
    int rc = ripc_client_recv(c, &msg, -1);
    WCHECK(rc == 0 && msg.type == T_QUIT, "after %llu messages: %s (type %u)",
           (unsigned long long)expect, ripc_strerror(rc), msg.type);
    ripc_client_close(c);
    return 0;
}

static void test_mw_send_batch(void **state)
{
    (void)state;
    struct mctx *m = open_adaptive();
    int go[2];
    assert_int_equal(pipe(go), 0);
    struct batch_arg a = {.go_r = go[0], .go_w = go[1]};
    spawn(w_batch, 0, &a);
    close(go[0]);
    serve_until(m, &m->joined, 1);

    static unsigned char bufs[BATCH_MAX][HDR + 300];
    ripc_out out[BATCH_MAX];
    uint64_t seq = 0, rs = 0xBA7C4;
    /* Nothing is sent when an argument is wrong, whichever message has it. */
    assert_int_equal(ripc_server_send_batch(m->s, 1, out, 0, -1), 0);
    assert_int_equal(ripc_server_send_batch(m->s, 99, out, 0, -1), -ENOENT);
    assert_int_equal(ripc_server_send_batch(m->s, 1, NULL, 1, -1), -EINVAL);
    for (int i = 0; i < 3; i++)
        out[i] = (ripc_out){
            .type = T_DATA, .data = bufs[i], .len = mk_payload(bufs[i], 0, seq + (uint64_t)i, 10)};
    out[2].type = 0xF000; /* reserved */
    assert_int_equal(ripc_server_send_batch(m->s, 1, out, 3, -1), -EINVAL);
    out[2] = (ripc_out){.type = T_DATA, .data = NULL, .len = 5};
    assert_int_equal(ripc_server_send_batch(m->s, 1, out, 3, -1), -EINVAL);

    if (shm_mode()) {
        /* The worker does not read yet and its ring is 4 KiB: batches that
         * may not wait fill it; the first short one returns its count, and
         * the next one nothing at all. */
        int partial = 0;
        while (!partial) {
            for (int i = 0; i < 8; i++)
                out[i] = (ripc_out){.type = T_DATA,
                                    .data = bufs[i],
                                    .len = mk_payload(bufs[i], 0, seq + (uint64_t)i, 100)};
            int rc = ripc_server_send_batch(m->s, 1, out, 8, 0);
            assert_true(rc >= 0 && rc <= 8);
            seq += (uint64_t)rc;
            partial = rc < 8;
            assert_true(seq < 4096 / 16); /* the ring really is small */
        }
        out[0] =
            (ripc_out){.type = T_DATA, .data = bufs[0], .len = mk_payload(bufs[0], 0, seq, 100)};
        assert_int_equal(ripc_server_send_batch(m->s, 1, out, 1, 0), -EAGAIN);
        print_message("a full 4 KiB ring took %llu messages in batches of 8\n",
                      (unsigned long long)seq);
    }
    /* Let the worker read; then the rest in batches of 1..64 that wait. */
    uint64_t total = seq + BATCH_TOTAL;
    assert_int_equal(write(go[1], &total, sizeof total), (ssize_t)sizeof total);
    close(go[1]);
    while (seq < total) {
        int n = 1 + (int)(ripc_test_rand(&rs) % BATCH_MAX);
        if ((uint64_t)n > total - seq)
            n = (int)(total - seq);
        for (int i = 0; i < n; i++)
            out[i] = (ripc_out){
                .type = T_DATA,
                .data = bufs[i],
                .len = mk_payload(bufs[i], 0, seq + (uint64_t)i, ripc_test_rand(&rs) % 301)};
        int rc = ripc_server_send_batch(m->s, 1, out, (size_t)n, -1);
        if (rc != n)
            fail_msg("batch at %llu: %d of %d sent (%s)", (unsigned long long)seq, rc, n,
                     ripc_strerror(rc));
        seq += (uint64_t)n;
        ripc_server_poll(m->s, 0);
    }
    assert_int_equal(ripc_server_send(m->s, 1, T_QUIT, NULL, 0, -1), 0);
    expect_all_left_bye(m, 1);
}

/* Both sides push: the worker streams one-way messages into a 4 KiB ring
 * without reading, and the master's handler sends each one straight back
 * (ripc_server_send from the dispatch thread, to the same worker). Once the
 * worker's inbound ring is full the handler waits for room there, so the
 * master stops draining the worker's outbound ring, and the worker's send
 * waits too. The worker's send takes the master's messages into its stash
 * while it waits, so neither side waits for its timeout (the handler's 3 s
 * would fail the test). Socket mode: the same with the sockets' buffers
 * and the worker's send queue in place of the rings. */
#define PUSH_COUNT 5000

static void h_push(ripc_peer *p, const ripc_msg *msg, void *arg)
{
    struct mctx *m = arg;
    if (ripc_test_failed(&m->fail))
        return; /* one timeout is the verdict: do not wait 3 s per message */
    int rc = ripc_server_send(m->s, ripc_peer_id(p), T_PUSH, msg->data, msg->len, 3000);
    if (rc != 0)
        ripc_test_fail_once(&m->fail,
                            "handler: sending back message %d: %s (both sides blocked sending?)",
                            atomic_load(&m->pings), ripc_strerror(rc));
    atomic_fetch_add(&m->pings, 1);
}

static int w_push(int idx, void *arg)
{
    (void)arg;
    ripc_client *c = w_open(RIPC_WAIT_ADAPTIVE, 4096, "push");
    static unsigned char buf[MAX_PAYLOAD];
    for (uint64_t seq = 0; seq < PUSH_COUNT; seq++) {
        size_t len = mk_payload(buf, (uint32_t)idx, seq, 80);
        int rc = ripc_client_send(c, T_PUSH, buf, len, 20000);
        WCHECK(rc == 0, "send %llu: %s", (unsigned long long)seq, ripc_strerror(rc));
    }
    for (uint64_t seq = 0; seq < PUSH_COUNT; seq++) {
        ripc_msg msg;
        uint32_t widx;
        uint64_t got;
        int rc = ripc_client_recv(c, &msg, 20000);
        WCHECK(rc == 0 && msg.type == T_PUSH && ck_payload(msg.data, msg.len, &widx, &got) &&
                   got == seq && widx == (uint32_t)idx,
               "message %llu back: %s (type %u)", (unsigned long long)seq, ripc_strerror(rc),
               msg.type);
    }
    ripc_client_close(c);
    return 0;
}

static void test_mw_both_push(void **state)
{
    (void)state;
    struct mctx *m = open_adaptive();
    assert_int_equal(ripc_server_handle(m->s, T_PUSH, h_push, m), 0);
    spawn(w_push, 3, NULL);
    expect_all_left_bye(m, 1);
    assert_int_equal(atomic_load(&m->pings), PUSH_COUNT);
}

/* A worker that does not read must cost a sender its timeout, not the
 * dispatch thread until that worker reads again. Worker A asks for 4 MiB
 * and then does not read; the handler sends it with a 200 ms timeout (in
 * socket mode the frame does not fit the socket: what the timeout leaves
 * unsent is written by the loop as A reads). Worker B, on the same single
 * dispatch thread, then does 200 checked requests; only after B is done
 * does A read its 4 MiB, checked byte for byte. */
#define BIG_LEN ((size_t)4 << 20)

/* Send BIG_LEN checked bytes to p (which does not read yet), then say so on
 * m->note_fd. */
static void send_big(struct mctx *m, ripc_peer *p, int timeout_ms)
{
    unsigned char *big = malloc(BIG_LEN);
    if (!big) {
        ripc_test_fail_once(&m->fail, "no memory");
        return;
    }
    ripc_test_fill(big, BIG_LEN, 0xB16);
    int rc = ripc_server_send(m->s, ripc_peer_id(p), T_BIG, big, BIG_LEN, timeout_ms);
    free(big);
    if (rc != 0)
        ripc_test_fail_once(&m->fail, "sending 4 MiB to a worker that does not read: %s",
                            ripc_strerror(rc));
    ripc_test_write_all(m->note_fd, "S", 1);
}

static void h_big(ripc_peer *p, const ripc_msg *msg, void *arg)
{
    (void)msg;
    send_big(arg, p, 200);
}

/* The parent's pipes to its workers. A worker closes every write end first,
 * so that a parent that dies means end of file for it, not a hang. */
struct kid_pipes {
    int go[2], start[2];
};

static void close_write_ends(struct kid_pipes *kp)
{
    close(kp->go[1]);
    if (kp->start[1] >= 0)
        close(kp->start[1]);
}

/* Waits for a byte on kp->go before it reads. */
static int w_slow(int idx, void *arg)
{
    struct kid_pipes *kp = arg;
    int go = kp->go[0];
    close_write_ends(kp);
    ripc_client *c = w_open(RIPC_WAIT_ADAPTIVE, 0, "slow");
    int rc = 0;
    if (idx == 0) /* ask for it; 1: the master sends it when we join */
        rc = ripc_client_send(c, T_BIG, "?", 1, -1);
    WCHECK(rc == 0, "send: %s", ripc_strerror(rc));
    char b;
    WCHECK(ripc_test_read_all(go, &b, 1) == 0, "go pipe");
    ripc_msg msg;
    rc = ripc_client_recv(c, &msg, 30000);
    WCHECK(rc == 0 && msg.type == T_BIG && msg.len == BIG_LEN &&
               ripc_test_check(msg.data, BIG_LEN, 0xB16),
           "recv: %s (type %u, len %llu)", ripc_strerror(rc), msg.type,
           (unsigned long long)msg.len);
    ripc_client_close(c);
    return 0;
}

static int w_slow_b(int idx, void *arg)
{
    struct kid_pipes *kp = arg;
    int start = kp->start[0];
    close_write_ends(kp);
    char b;
    WCHECK(ripc_test_read_all(start, &b, 1) == 0, "start pipe");
    return w_echo(idx, (void *)(uintptr_t)200);
}

static void test_mw_reader_stalls(void **state)
{
    (void)state;
    struct mctx *m = open_adaptive();
    assert_int_equal(ripc_server_handle(m->s, T_BIG, h_big, m), 0);
    struct kid_pipes kp;
    int *go = kp.go, *start = kp.start, note[2], lp[2];
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(start), 0);
    assert_int_equal(pipe(note), 0);
    left_pipe_arm(m, lp, 2);
    m->note_fd = note[1];
    /* Both workers before the dispatch thread (see test 10). */
    spawn(w_slow, 0, &kp);
    pid_t b_pid = spawn(w_slow_b, 1, &kp);
    close(go[0]);
    close(start[0]);
    run_start(m, 1);

    struct pollfd pf = {.fd = note[0], .events = POLLIN};
    if (poll(&pf, 1, 20000) != 1) {
        ripc_test_write_all(go[1], "G", 1); /* let A read, or the stuck thread never returns */
        fail_msg("a send with a 200 ms timeout to a worker that does not read had not "
                 "returned after 20 s");
    }
    ripc_test_write_all(start[1], "S", 1);
    int b_status = kid_reap(b_pid);
    ripc_test_write_all(go[1], "G", 1);
    assert_int_equal(b_status, 0); /* 200 requests served while A did not read */
    run_stop_after_left(m, lp);    /* both left */
    kids_reap_all_ok();
    check_all_left_bye(m, 2);
    close(go[1]);
    close(start[1]);
    close(note[0]);
    close(note[1]);
}

/* The same from the `joined` callback, before any dispatch loop has taken
 * the worker: the rest of the frame must still go out as the worker reads. */
static void test_mw_send_from_joined(void **state)
{
    (void)state;
    struct mctx *m = g_fx.m;
    ripc_options o = base_opts(RIPC_WAIT_ADAPTIVE);
    struct kid_pipes kp = {.start = {-1, -1}};
    int *go = kp.go, note[2];
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(note), 0);
    m->note_fd = note[1];
    m->big_on_join = 1;
    open_server(m, &o);
    spawn(w_slow, 1, &kp);
    close(go[0]);
    serve_until(m, &m->joined, 1);
    char b;
    assert_int_equal(ripc_test_read_all(note[0], &b, 1), 0); /* the send returned */
    m->big_on_join = 0;
    ripc_test_write_all(go[1], "G", 1);
    expect_all_left_bye(m, 1);
    close(go[1]);
    close(note[0]);
    close(note[1]);
}

/* ================================================================= 12 */

static int master_in_child(int idx, void *arg)
{
    (void)idx;
    int ready = (int)(intptr_t)arg;
    ripc_options o = base_opts(RIPC_WAIT_ADAPTIVE);
    ripc_server *s = NULL;
    char why[256] = "";
    int rc = ripc_server_open_ex(&s, g_fx.url, &o, why, sizeof why);
    WCHECK(rc == 0, "server open: %s (%s)", ripc_strerror(rc), why);
    ripc_test_write_all(ready, "R", 1);
    for (;;)
        pause(); /* until SIGKILL */
}

static void test_mw_stale_socket_and_inuse(void **state)
{
    (void)state;
    struct mctx *m = g_fx.m;
    ripc_options o = base_opts(RIPC_WAIT_ADAPTIVE);
    char why[256] = "";

    /* In one process: a live server keeps its path; close removes it. */
    open_server(m, &o);
    ripc_server *s2 = NULL;
    assert_int_equal(ripc_server_open_ex(&s2, g_fx.url, &o, why, sizeof why), -EADDRINUSE);
    assert_null(s2);
    print_message("second open: %s\n", why);
    close_server(m);
    assert_int_equal(access(g_fx.path, F_OK), -1);

    /* A server in a child: in use while it lives, stale once it is killed. */
    int rp[2];
    assert_int_equal(pipe(rp), 0);
    pid_t pid = spawn(master_in_child, 0, (void *)(intptr_t)rp[1]);
    kid_of(pid)->expect = 128 + SIGKILL;
    close(rp[1]);
    char b;
    assert_int_equal(ripc_test_read_all(rp[0], &b, 1), 0);
    close(rp[0]);
    assert_int_equal(ripc_server_open_ex(&s2, g_fx.url, &o, why, sizeof why), -EADDRINUSE);
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(kid_reap(pid), 128 + SIGKILL);
    assert_int_equal(access(g_fx.path, F_OK), 0); /* left behind */
    open_server(m, &o);                           /* reclaimed */
    spawn(w_ping_once, 0, NULL);
    expect_all_left_bye(m, 1);
    assert_int_equal(atomic_load(&m->pings), 1);
    close_server(m);
    assert_int_equal(access(g_fx.path, F_OK), -1);
}

/* ================================================================= 13 */

/* A thread of the master inside an RCU read-side section, as a thread in a
 * table lookup (ripc_server_send finding its peer) is, while another
 * thread forks. The child has no such thread, but liburcu-bp's record of
 * it comes along. */
struct reader_arg {
    int inside_w; /* reader -> test: inside the section */
    int leave_r;  /* test -> reader: leave it */
};

static void *rcu_reader(void *p)
{
    struct reader_arg *a = p;
    urcu_bp_read_lock();
    ripc_test_write_all(a->inside_w, "I", 1);
    char b;
    (void)ripc_test_read_all(a->leave_r, &b, 1);
    urcu_bp_read_unlock();
    return NULL;
}

static _Atomic int fc_left, fc_pings;
static void fc_on_left(ripc_peer *p, int reason, void *arg)
{
    (void)p;
    (void)reason;
    (void)arg;
    atomic_fetch_add(&fc_left, 1);
}

static void fc_ping(ripc_peer *p, const ripc_msg *msg, void *arg)
{
    (void)p;
    (void)msg;
    (void)arg;
    atomic_fetch_add(&fc_pings, 1);
}

/* A forked child of a master whose workers came and went: it opens a
 * server of its own (never touching the one it inherited), serves one
 * worker of its own until it leaves, and closes. arg: the reading end of
 * the pipe whose writing end it holds until it ends. */
static int master_forked(int idx, void *arg)
{
    (void)idx;
    close((int)(intptr_t)arg);
    snprintf(g_fx.path, sizeof g_fx.path, "%s/child.sock", g_fx.dir);
    snprintf(g_fx.url, sizeof g_fx.url, "unix:%s", g_fx.path); /* for w_open */
    ripc_options o = base_opts(RIPC_WAIT_ADAPTIVE);
    ripc_server *s = NULL;
    char why[256] = "";
    int rc = ripc_server_open_ex(&s, g_fx.url, &o, why, sizeof why);
    WCHECK(rc == 0, "server open in the child: %s (%s)", ripc_strerror(rc), why);
    WCHECK(ripc_server_on_peer(s, NULL, fc_on_left, NULL) == 0, "on_peer");
    WCHECK(ripc_server_handle(s, T_PING, fc_ping, NULL) == 0, "handle");
    fflush(NULL);
    pid_t w = fork();
    WCHECK(w >= 0, "fork: %s", strerror(errno));
    if (w == 0)
        _exit(w_ping_once(0, NULL));
    while (atomic_load(&fc_left) < 1) {
        rc = ripc_server_poll(s, 100);
        WCHECK(rc >= 0, "poll: %s", ripc_strerror(rc));
    }
    WCHECK(ripc_test_wait(w) == 0, "the child's worker failed");
    WCHECK(atomic_load(&fc_pings) == 1, "pings %d", atomic_load(&fc_pings));
    ripc_server_close(s);
    WCHECK(access(g_fx.path, F_OK) != 0, "the child's socket file is still there");
    return 0;
}

/* Fork a child that runs master_forked; *alive: the reading end of the
 * pipe whose writing end only the child holds. */
static pid_t fork_master(int *alive)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = spawn(master_forked, 0, (void *)(intptr_t)fds[0]);
    close(fds[1]);
    *alive = fds[0];
    return pid;
}

/* The child of fork_master ends (alive reads end of file) and exits 0. A
 * child stuck in liburcu waits with every signal blocked: the wait is
 * bounded, generously, and the child killed. Closes alive. */
static void expect_forked_master_done(pid_t pid, int alive)
{
    struct pollfd pf = {.fd = alive, .events = POLLIN};
    int ended = poll(&pf, 1, 60000) != 0;
    close(alive);
    if (!ended) {
        kill(pid, SIGKILL);
        kid_reap(pid);
        fail_msg("the forked child's own server hung (no end after 60 s)");
    }
    int st = kid_reap(pid);
    if (st != 0)
        fail_msg("the forked child's own server: status %d", st);
}

static void test_mw_fork_child_serves(void **state)
{
    (void)state;
    struct mctx *m = g_fx.m;
    ripc_options o = base_opts(RIPC_WAIT_ADAPTIVE);
    open_server(m, &o);
    /* Workers come and go first: the tables have freed peers. */
    spawn(w_ping_once, 0, NULL);
    spawn(w_ping_once, 1, NULL);
    expect_all_left_bye(m, 2);
    /* Closed, the server has waited for the frees its workers left: no
     * grace period is under way. One would wait for the reader below, and
     * the fork for it, as long as the reader stays inside (a real lookup
     * leaves at once; this one waits for the fork). */
    close_server(m);

    int inside[2], leave[2];
    assert_int_equal(pipe(inside), 0);
    assert_int_equal(pipe(leave), 0);
    struct reader_arg ra = {.inside_w = inside[1], .leave_r = leave[0]};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, rcu_reader, &ra), 0);
    char b;
    assert_int_equal(ripc_test_read_all(inside[0], &b, 1), 0);
    int alive;
    pid_t pid = fork_master(&alive);
    ripc_test_write_all(leave[1], "L", 1);
    assert_int_equal(pthread_join(th, NULL), 0);
    expect_forked_master_done(pid, alive);

    /* The master itself goes on as before. */
    atomic_store(&m->joined, 0);
    atomic_store(&m->left, 0);
    atomic_store(&m->pings, 0);
    memset(m->ps, 0, sizeof m->ps);
    open_server(m, &o);
    spawn(w_ping_once, 2, NULL);
    expect_all_left_bye(m, 1);
    assert_int_equal(atomic_load(&m->pings), 1);
    close_server(m);
    for (int i = 0; i < 2; i++) {
        close(inside[i]);
        close(leave[i]);
    }
}

/* ================================================================= 13b */

static void fc_nop(ripc_peer *p, const ripc_msg *msg, void *arg)
{
    (void)p;
    (void)msg;
    (void)arg;
}

/* A forked child that closes the server it inherited (which it must not
 * use: the close leaves it alone), then opens one of its own and closes
 * it: the library's count of the child's tables is its own, so that close
 * stops the reclaimer its handler changes started, and the child is back
 * to its one thread. arg: the reading end of the pipe whose writing end
 * it holds until it ends. */
static int closes_inherited(int idx, void *arg)
{
    (void)idx;
    close((int)(intptr_t)arg);
    int threads = ripc_test_count_threads();
    ripc_server_close(g_fx.m->s);
    for (int round = 0; round < 2; round++) {
        char url[sizeof g_fx.url + 16];
        snprintf(url, sizeof url, "unix:%s/own%d.sock", g_fx.dir, round);
        ripc_server *s = NULL;
        char why[256] = "";
        int rc = ripc_server_open_ex(&s, url, NULL, why, sizeof why);
        WCHECK(rc == 0, "server open in the child: %s (%s)", ripc_strerror(rc), why);
        /* A replaced handler goes through the reclaimer: it starts. */
        WCHECK(ripc_server_handle(s, T_PING, fc_ping, NULL) == 0, "handle");
        WCHECK(ripc_server_handle(s, T_PING, fc_nop, NULL) == 0, "handle again");
        ripc_server_close(s);
        WCHECK(ripc_test_count_threads() == threads,
               "round %d: %d threads after the close, %d before", round, ripc_test_count_threads(),
               threads);
    }
    return 0;
}

static void test_mw_fork_child_closes_inherited(void **state)
{
    (void)state;
    struct mctx *m = g_fx.m;
    ripc_options o = base_opts(RIPC_WAIT_ADAPTIVE);
    open_server(m, &o);
    spawn(w_ping_once, 0, NULL);
    expect_all_left_bye(m, 1);
    int alive[2]; /* the child holds the writing end until it ends */
    assert_int_equal(pipe(alive), 0);
    pid_t pid = spawn(closes_inherited, 0, (void *)(intptr_t)alive[0]);
    close(alive[1]);
    struct pollfd pf = {.fd = alive[0], .events = POLLIN};
    if (poll(&pf, 1, 30000) == 0) {
        kill(pid, SIGKILL);
        kid_reap(pid);
        fail_msg("the child's close of the server it inherited hung (no end after 30 s)");
    }
    close(alive[0]);
    int st = kid_reap(pid);
    if (st != 0)
        fail_msg("the child: status %d", st);
    /* The master goes on: its socket file, its loop, its tables. */
    spawn(w_ping_once, 1, NULL);
    expect_all_left_bye(m, 2);
    assert_int_equal(atomic_load(&m->pings), 2);
    close_server(m);
}

/* ================================================================= 14 */

/* fork() while the reclaimer has work, and more keeps arriving: workers
 * leave, and a thread of the master keeps a read-side section open nearly
 * all the time, as senders in their lookups do, and changes a handler at
 * the end of each (every change hands a removed entry over). A grace
 * period waits for the section under way when it began, which ends with
 * new removals: each batch ends with the next one queued. Every fork must
 * return after one batch, not once the removals stop; the children,
 * forked with the parent's server open and its reclaimer busy, open a
 * server of their own and serve with it. */
static _Atomic int fr_stop, fr_starved;

/* The churn thread allocates (each handle() call) and the test forks: a
 * fork while that thread is inside the allocator can leave the child's
 * allocator locked for good under ASan (clang 14's fork does not take its
 * allocator's locks). So a fork waits until the churn thread is between two
 * rounds (fr_mu, taken by the fork's prepare handler; fr_want keeps the
 * churn thread from taking it again at once). The reclaimer still has the
 * removals' frees queued when the fork happens. */
static pthread_mutex_t fr_mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int fr_want;
/* Threads past their start (a thread's own start-up allocates too, before
 * fr_mu can cover it): the first fork waits for both. */
static _Atomic int fr_started;

static void fr_prepare(void)
{
    atomic_store(&fr_want, 1);
    pthread_mutex_lock(&fr_mu);
}

static void fr_after(void)
{
    atomic_store(&fr_want, 0);
    pthread_mutex_unlock(&fr_mu);
}

static void fr_nop(ripc_peer *p, const ripc_msg *msg, void *arg)
{
    (void)p;
    (void)msg;
    (void)arg;
}

static void *fr_churn(void *arg)
{
    ripc_server *s = arg;
    atomic_fetch_add(&fr_started, 1);
    while (!atomic_load(&fr_stop)) {
        while (atomic_load(&fr_want))
            sched_yield(); /* a fork is waiting for us to be between rounds */
        pthread_mutex_lock(&fr_mu);
        urcu_bp_read_lock();
        for (volatile int i = 0; i < 20000; i++)
            ;
        ripc_server_handle(s, T_SPARE, fr_nop, NULL); /* its own section nests */
        ripc_server_handle(s, T_SPARE, NULL, NULL);
        urcu_bp_read_unlock();
        pthread_mutex_unlock(&fr_mu);
    }
    return NULL;
}

/* No fork for 30 s: stop the removals (the fork then goes on) and say so. */
static void *fr_watchdog(void *arg)
{
    int fd = *(const int *)arg;
    atomic_fetch_add(&fr_started, 1);
    for (;;) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        char b = 0;
        if (poll(&pf, 1, 30000) == 0) {
            atomic_store(&fr_starved, 1);
            atomic_store(&fr_stop, 1);
            continue;
        }
        if (read(fd, &b, 1) != 1 || b == 'E')
            return NULL;
    }
}

static void test_mw_fork_while_reclaiming(void **state)
{
    (void)state;
    struct mctx *m = g_fx.m;
    ripc_options o = base_opts(RIPC_WAIT_ADAPTIVE);
    open_server(m, &o);
    atomic_store(&fr_stop, 0);
    atomic_store(&fr_starved, 0);
    atomic_store(&fr_started, 0);
    static int registered;
    if (!registered++)
        assert_int_equal(pthread_atfork(fr_prepare, fr_after, fr_after), 0);
    int prog[2];
    assert_int_equal(pipe(prog), 0);
    pthread_t churn, dog;
    assert_int_equal(pthread_create(&churn, NULL, fr_churn, m->s), 0);
    assert_int_equal(pthread_create(&dog, NULL, fr_watchdog, &prog[0]), 0);
    while (atomic_load(&fr_started) < 2)
        usleep(1000);
    enum { ROUNDS = 6 };
    for (int i = 0; i < ROUNDS; i++) {
        spawn(w_ping_once, i, NULL); /* a fork too */
        ripc_test_write_all(prog[1], "F", 1);
        serve_until(m, &m->left, i + 1); /* the worker's peer is removed */
        int alive;
        pid_t pid = fork_master(&alive);
        ripc_test_write_all(prog[1], "F", 1);
        if (atomic_load(&fr_starved)) {
            close(alive);
            break;
        }
        expect_forked_master_done(pid, alive);
    }
    atomic_store(&fr_stop, 1);
    ripc_test_write_all(prog[1], "E", 1);
    assert_int_equal(pthread_join(churn, NULL), 0);
    assert_int_equal(pthread_join(dog, NULL), 0);
    close(prog[0]);
    close(prog[1]);
    if (atomic_load(&fr_starved))
        fail_msg("fork() waited more than 30 s for the reclaimer while removals kept coming");
    kids_reap_all_ok();
    check_all_left_bye(m, ROUNDS);
    close_server(m);
}

/* ================================================================= main */

int main(int argc, char **argv)
{
    if ((g_transport = ripc_test_transport_args(argc, argv, &g_transport_name)) < 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    const char *th = getenv("RIPC_TEST_THREAD_REQUESTS"); /* for slow sanitizer runs */
    if (th && *th)
        g_th_requests = strtoull(th, NULL, 10);

    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mw_request_reply_8_workers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mw_broadcast_reaches_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mw_worker_sigkill_mid_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mw_master_killed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mw_version_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mw_other_uid_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mw_modes_1M, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mw_idle_adaptive_no_cpu, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mw_reply_unknown_id_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mw_four_dispatch_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mw_server_fd_pollable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mw_client_fd_pollable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mw_client_fd_first_poll, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mw_client_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mw_send_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mw_both_push, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mw_reader_stalls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mw_send_from_joined, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mw_stale_socket_and_inuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mw_fork_child_serves, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mw_fork_child_closes_inherited, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mw_fork_while_reclaiming, setup, teardown),
    };
    return RIPC_TEST_RUN_GROUP("master_worker", g_transport_name, tests);
}
