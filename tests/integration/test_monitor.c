/*
 * ringipc-stat and the monitor HELLO between real processes: the test is
 * the master, forked workers stream known numbers of messages, and the
 * real ringipc-stat binary (RIPC_STAT_BIN, from CMake) is run against it
 * with --json; its numbers must be exactly what the workers sent. A
 * monitor is not a worker (no joined/left, not counted, not broadcast to);
 * versions that do not meet give a clear error both ways (an old master is
 * played by a raw socket that answers as one did); hostile monitors
 * (garbage, silence, huge lengths, never reading) are dropped while the
 * workers go on.
 *
 * Usage: test_monitor [shm|socket] [test-name-filter]
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ringipc/ringipc.h"
#include "sockets/sock.h"
#include "src/proto.h"
#include "support/hconn.h"
#include "support/support.h"
#include "support/workers.h"

#ifndef RIPC_STAT_BIN
#error "RIPC_STAT_BIN: the ringipc-stat binary's path, from tests/CMakeLists.txt"
#endif

static int g_transport = RIPC_TRANSPORT_SHM;
static const char *g_transport_name = "shm";

enum {
    T_ONE = 1, /* one-way: taken */
    T_SYNC,    /* request: RIPC_TEST_SYNC_REPLY bytes back (everything before it was dispatched) */
    T_BCAST,   /* master -> workers: a broadcast */
};

#define NW          3
#define CHILD_ALARM 60
#define RING        ((size_t)64 << 10)
#define OUT_MAX     (1 << 20)
/* Worker i sends n_one(i) one-way messages of len_one(i) bytes, then one
 * sync request of 0 bytes. */
static int n_one(int i)
{
    return 100 * (i + 1);
}
static size_t len_one(int i)
{
    return 10 * (size_t)(i + 1);
}

static struct {
    char url[160]; /* where the server listens (tcp: its port once open) */
    ripc_test_master m;
    const char *token; /* the server's and the workers' (tcp://) */
    int any_transport; /* the server takes either transport */
    int nkids;
    pid_t kid[NW];
    int to_kid[NW], from_kid[NW];
} F;

/* ---- master side ---- */

static int setup(void **state)
{
    (void)state;
    memset(&F, 0, sizeof F);
    for (int i = 0; i < NW; i++)
        F.to_kid[i] = F.from_kid[i] = -1;
    ripc_test_unix_url(F.url, sizeof F.url, "mon");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ripc_test_run_stop(&F.m.run);
    for (int i = 0; i < F.nkids; i++) {
        if (F.kid[i] > 0) {
            kill(F.kid[i], SIGKILL);
            ripc_test_wait(F.kid[i]);
        }
        if (F.to_kid[i] >= 0)
            close(F.to_kid[i]);
        if (F.from_kid[i] >= 0)
            close(F.from_kid[i]);
    }
    ripc_server_close(F.m.s);
    return 0;
}

static void open_server(int connect_timeout_ms)
{
    ripc_options o;
    memset(&o, 0, sizeof o);
    o.transport = F.token || F.any_transport ? RIPC_TRANSPORT_AUTO : g_transport;
    o.connect_timeout_ms = connect_timeout_ms;
    o.token = F.token;
    assert_int_equal(ripc_test_master_listen(&F.m, F.url, &o), 0);
    snprintf(F.url, sizeof F.url, "%s", F.m.url); /* tcp: the port */
    assert_int_equal(ripc_server_handle(F.m.s, T_ONE, ripc_test_on_count, NULL), 0);
    assert_int_equal(ripc_server_handle(F.m.s, T_SYNC, ripc_test_on_sync, NULL), 0);
}

/* ---- the workers ---- */

static void w_sync(ripc_client *c)
{
    ripc_msg r;
    int rc = ripc_client_request(c, T_SYNC, NULL, 0, &r, 10000);
    WCHECK(rc == 0 && r.len == RIPC_TEST_SYNC_REPLY, "sync: %s", ripc_strerror(rc));
}

/* Worker i: its one-way messages and a sync, then "r"; on 's' one more
 * sync (the master still serves it) and "s"; on 'c' it takes the
 * broadcast and says "c"; on 'b' it leaves. */
static int kid_main(int rd, int wr, void *arg)
{
    int i = (int)(intptr_t)arg;
    ripc_options o;
    memset(&o, 0, sizeof o);
    o.transport = F.token ? RIPC_TRANSPORT_AUTO : g_transport;
    o.token = F.token;
    o.ring_bytes = RING;
    char name[32];
    snprintf(name, sizeof name, "mon-w%d", i);
    o.name = name;
    ripc_client *c = NULL;
    char why[256] = "";
    int rc = ripc_client_open_ex(&c, F.url, &o, why, sizeof why);
    WCHECK(rc == 0, "open %s: %s (%s)", F.url, ripc_strerror(rc), why);
    static unsigned char buf[1024];
    for (int k = 0; k < n_one(i); k++) {
        rc = ripc_client_send(c, T_ONE, buf, len_one(i), 10000);
        WCHECK(rc == 0, "send %d: %s", k, ripc_strerror(rc));
    }
    w_sync(c);
    ripc_test_write_all(wr, "r", 1);
    for (;;) {
        char cmd = 0;
        WCHECK(ripc_test_read_all(rd, &cmd, 1) == 0, "the test's pipe ended");
        if (cmd == 's') {
            w_sync(c);
            ripc_test_write_all(wr, "s", 1);
        } else if (cmd == 'c') {
            ripc_msg m;
            rc = ripc_client_recv(c, &m, 10000);
            WCHECK(rc == 0 && m.type == T_BCAST, "broadcast: %s", ripc_strerror(rc));
            ripc_test_write_all(wr, "c", 1);
        } else if (cmd == 'b') {
            break;
        }
    }
    ripc_client_close(c);
    return 0;
}

/* Fork n workers (no thread exists yet), start dispatching, and wait for
 * each one's "r": every message of theirs was dispatched. */
static void start_workers(int n)
{
    for (int i = 0; i < n; i++) {
        F.kid[i] = ripc_test_fork_piped(kid_main, (void *)(intptr_t)i, CHILD_ALARM, &F.to_kid[i],
                                        &F.from_kid[i]);
        F.nkids = i + 1;
    }
    assert_int_equal(ripc_test_run_start(&F.m.run, F.m.s, 2), 0);
    for (int i = 0; i < n; i++) {
        char c = 0;
        if (ripc_test_read_within(F.from_kid[i], &c, 1, 30000) != 0 || c != 'r')
            fail_msg("worker %d did not report", i);
    }
}

/* Worker i does one more round trip: the master still serves workers. */
static void kid_roundtrip(int i, char cmd)
{
    ripc_test_write_all(F.to_kid[i], &cmd, 1);
    char c = 0;
    if (ripc_test_read_within(F.from_kid[i], &c, 1, 20000) != 0 || c != cmd)
        fail_msg("worker %d: no answer to '%c'", i, cmd);
}

static void end_workers(void)
{
    for (int i = 0; i < F.nkids; i++) {
        ripc_test_write_all(F.to_kid[i], "b", 1);
        assert_int_equal(ripc_test_wait(F.kid[i]), 0);
        F.kid[i] = 0;
    }
}

static ripc_server_stats_t server_stats(void)
{
    ripc_server_stats_t st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    assert_int_equal(ripc_server_stats(F.m.s, &st), 0);
    return st;
}

/* The master counts a snapshot once its send returned, which may be after
 * the monitor has read it: wait (10 s at most) for the count to reach n. */
static int monitors_at_least(uint64_t n)
{
    uint64_t end = ripc_test_now_ms() + 10000;
    while (server_stats().monitors < n && ripc_test_now_ms() < end)
        usleep(1000);
    return server_stats().monitors >= n;
}

/* ---- running ringipc-stat ---- */

struct stat_run {
    int status; /* ripc_test_wait's: the exit code, 128 + signal */
    char out[OUT_MAX], err[4096];
};

/* Read fd until EOF into buf (NUL-terminated), up to the deadline. */
static void read_until_eof(int fds[2], char *bufs[2], size_t caps[2], uint64_t end)
{
    size_t len[2] = {0, 0};
    int open_n = 2;
    while (open_n > 0 && ripc_test_now_ms() < end) {
        struct pollfd pf[2] = {{.fd = fds[0], .events = POLLIN}, {.fd = fds[1], .events = POLLIN}};
        if (poll(pf, 2, 100) <= 0)
            continue;
        for (int k = 0; k < 2; k++) {
            if (fds[k] < 0 || !(pf[k].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t n = read(fds[k], bufs[k] + len[k], caps[k] - 1 - len[k]);
            if (n <= 0 || len[k] + (size_t)n >= caps[k] - 1) {
                if (n > 0)
                    len[k] += (size_t)n;
                close(fds[k]);
                fds[k] = -1;
                open_n--;
            } else {
                len[k] += (size_t)n;
            }
        }
    }
    for (int k = 0; k < 2; k++) {
        bufs[k][len[k]] = 0;
        if (fds[k] >= 0)
            close(fds[k]);
    }
}

/* Run ringipc-stat with args (NULL-terminated) and collect what it says;
 * killed after 30 s. */
static void run_stat(struct stat_run *r, const char *const *args)
{
    char *argv[16];
    int n = 0;
    argv[n++] = (char *)RIPC_STAT_BIN;
    for (; args[n - 1] && n < 15; n++)
        argv[n] = (char *)args[n - 1];
    argv[n] = NULL;
    int o[2], e[2];
    assert_int_equal(pipe(o), 0);
    assert_int_equal(pipe(e), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(o[1], 1);
        dup2(e[1], 2);
        close(o[0]);
        close(e[0]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(o[1]);
    close(e[1]);
    int fds[2] = {o[0], e[0]};
    char *bufs[2] = {r->out, r->err};
    size_t caps[2] = {sizeof r->out, sizeof r->err};
    read_until_eof(fds, bufs, caps, ripc_test_now_ms() + 30000);
    kill(pid, SIGKILL); /* a no-op when it ended */
    r->status = ripc_test_wait(pid);
}

/* ---- a small JSON checker: the syntax of one value, and our keys ---- */

static const char *json_ws(const char *p)
{
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
        p++;
    return p;
}

/* Past one JSON value at p, or NULL when it is not one. */
static const char *json_value(const char *p, int depth)
{
    p = json_ws(p);
    if (depth > 16)
        return NULL;
    if (*p == '"') {
        for (p++; *p && *p != '"'; p++) {
            if ((unsigned char)*p < 0x20)
                return NULL;
            if (*p == '\\') {
                p++;
                if (*p == 'u') {
                    for (int i = 1; i <= 4; i++)
                        if (!strchr("0123456789abcdefABCDEF", p[i]) || !p[i])
                            return NULL;
                    p += 4;
                } else if (!*p || !strchr("\"\\/bfnrt", *p)) {
                    return NULL;
                }
            }
        }
        return *p == '"' ? p + 1 : NULL;
    }
    if (*p == '{' || *p == '[') {
        char close_c = *p == '{' ? '}' : ']';
        p = json_ws(p + 1);
        if (*p == close_c)
            return p + 1;
        for (;;) {
            if (close_c == '}') {
                if (*p != '"' || !(p = json_value(p, depth + 1)))
                    return NULL;
                p = json_ws(p);
                if (*p++ != ':')
                    return NULL;
            }
            if (!(p = json_value(p, depth + 1)))
                return NULL;
            p = json_ws(p);
            if (*p == close_c)
                return p + 1;
            if (*p++ != ',')
                return NULL;
            p = json_ws(p);
        }
    }
    if (*p == '-' || (*p >= '0' && *p <= '9')) {
        char *end;
        (void)strtod(p, &end);
        return end > p ? end : NULL;
    }
    for (const char *lit = "true\0false\0null\0"; *lit; lit += strlen(lit) + 1)
        if (!strncmp(p, lit, strlen(lit)))
            return p + strlen(lit);
    return NULL;
}

/* Is line exactly one JSON object (and a newline)? */
static int json_line_ok(const char *line, const char **end)
{
    const char *p = json_ws(line);
    if (*p != '{' || !(p = json_value(p, 0)) || *p != '\n')
        return 0;
    *end = p + 1;
    return 1;
}

/* The number after "key": in [from, to), or -1 (absent). */
static long long json_num(const char *from, const char *to, const char *key)
{
    char k[64];
    snprintf(k, sizeof k, "\"%s\": ", key);
    const char *p = strstr(from, k);
    if (!p || p >= to)
        return -1;
    return strtoll(p + strlen(k), NULL, 10);
}

/* The string after "key": in [from, to) into buf, or 0 (absent). */
static int json_str(const char *from, const char *to, const char *key, char *buf, size_t len)
{
    char k[64];
    snprintf(k, sizeof k, "\"%s\": \"", key);
    const char *p = strstr(from, k);
    if (!p || p >= to)
        return 0;
    p += strlen(k);
    const char *q = strchr(p, '"');
    if (!q || q >= to || (size_t)(q - p) >= len)
        return 0;
    memcpy(buf, p, (size_t)(q - p));
    buf[q - p] = 0;
    return 1;
}

/* The peer object with this id in a snapshot line: [*from, *to). */
static int json_peer(const char *line, unsigned id, const char **from, const char **to)
{
    char k[32];
    snprintf(k, sizeof k, "{\"id\": %u,", id);
    const char *p = strstr(line, k);
    if (!p)
        return 0;
    *from = p;
    *to = strchr(p, '}');
    return *to != NULL;
}

/* ---- the numbers ---- */

static void check_snapshot_line(const char *line, int n)
{
    const char *peers = strstr(line, "\"peers\": [");
    assert_non_null(peers);
    assert_int_equal(json_num(line, peers, "pid"), getpid());
    assert_int_equal(json_num(line, peers, "peers_now"), n);
    assert_int_equal(json_num(line, peers, "peers_total"), n);
    char url[200];
    assert_true(json_str(line, peers, "url", url, sizeof url));
    assert_string_equal(url, F.url);
    assert_non_null(strstr(line, "\"uptime_s\": "));
    int shm = g_transport != RIPC_TRANSPORT_SOCKET;
    for (int i = 0; i < n; i++) {
        /* The ids are given in join order, from 1; the workers' order of
         * joining is theirs: find each by its pid. */
        const char *from = NULL, *to = NULL;
        for (unsigned id = 1; id <= (unsigned)n; id++) {
            const char *f, *t;
            if (json_peer(line, id, &f, &t) && json_num(f, t, "pid") == F.kid[i]) {
                from = f;
                to = t;
            }
        }
        if (!from)
            fail_msg("worker %d (pid %d) is not in: %s", i, (int)F.kid[i], line);
        char name[64], xp[16];
        assert_true(json_str(from, to, "name", name, sizeof name));
        char want[32];
        snprintf(want, sizeof want, "mon-w%d", i);
        assert_string_equal(name, want);
        assert_true(json_str(from, to, "transport", xp, sizeof xp));
        assert_string_equal(xp, shm ? "shm" : "socket");
        /* Exactly what worker i sent: its one-ways and the sync request;
         * the master sent it the sync's reply. */
        assert_int_equal(json_num(from, to, "msgs_in"), n_one(i) + 1);
        assert_int_equal(json_num(from, to, "bytes_in"),
                         (long long)n_one(i) * (long long)len_one(i));
        assert_int_equal(json_num(from, to, "msgs_out"), 1);
        assert_int_equal(json_num(from, to, "bytes_out"), RIPC_TEST_SYNC_REPLY);
        assert_int_equal(json_num(from, to, "requests_in"), 1);
        assert_int_equal(json_num(from, to, "ring_bytes"), shm ? (long long)RING : 0);
        assert_int_equal(json_num(from, to, "ring_in_used"), 0);
        assert_true(json_num(from, to, "ring_out_used") >= 0);
        assert_int_equal(json_num(from, to, "dropped"), 0);
        assert_true(json_num(from, to, "sleeps") >= 0);
        assert_true(json_num(from, to, "send_waits") >= 0);
    }
}

static void test_monitor_json_counts(void **state)
{
    (void)state;
    open_server(0);
    start_workers(NW);
    struct stat_run *r = calloc(1, sizeof *r);
    assert_non_null(r);
    run_stat(r, (const char *[]){"--json", "--once", "--timeout", "10000", F.url, NULL});
    if (r->status != 0)
        fail_msg("ringipc-stat exited %d: %s", r->status, r->err);
    const char *end;
    if (!json_line_ok(r->out, &end) || *end != 0)
        fail_msg("not one JSON object on one line: %s", r->out);
    check_snapshot_line(r->out, NW);

    /* --watch with --json: one object per line, one per snapshot. */
    run_stat(r, (const char *[]){"--json", "--watch", "0.05", "--count", "3", F.url, NULL});
    assert_int_equal(r->status, 0);
    const char *p = r->out;
    for (int k = 0; k < 3; k++) {
        if (!json_line_ok(p, &end))
            fail_msg("snapshot %d is not a JSON line: %s", k, p);
        static char line[OUT_MAX];
        memcpy(line, p, (size_t)(end - p));
        line[end - p] = 0;
        check_snapshot_line(line, NW);
        if (k > 0)
            assert_true(json_num(line, strstr(line, "\"peers\""), "interval_s") >= 0);
        p = end;
    }
    assert_int_equal(*p, 0);

    /* The table: a header and a row per worker. */
    run_stat(r, (const char *[]){"--once", F.url, NULL});
    assert_int_equal(r->status, 0);
    assert_non_null(strstr(r->out, "MSG/S IN"));
    for (int i = 0; i < NW; i++) {
        char want[32];
        snprintf(want, sizeof want, "mon-w%d", i);
        assert_non_null(strstr(r->out, want));
    }
    free(r);
    end_workers();
}

/* ---- a monitor is not a worker ---- */

static void test_monitor_not_a_worker(void **state)
{
    (void)state;
    open_server(0);
    start_workers(1);
    assert_int_equal(ripc_test_master_joined(&F.m), 1);
    struct stat_run *r = calloc(1, sizeof *r);
    assert_non_null(r);
    for (int k = 0; k < 3; k++) {
        run_stat(r, (const char *[]){"--json", F.url, NULL});
        if (r->status != 0)
            fail_msg("ringipc-stat exited %d: %s", r->status, r->err);
    }
    free(r);
    assert_int_equal(ripc_test_master_joined(&F.m), 1);
    assert_int_equal(ripc_test_master_left(&F.m), 0);
    assert_int_equal(ripc_server_peer_count(F.m.s), 1);
    assert_true(monitors_at_least(3));
    ripc_server_stats_t st = server_stats();
    assert_int_equal(st.peers_now, 1);
    assert_int_equal(st.peers_total, 1);
    assert_int_equal(st.monitors, 3);
    assert_int_equal(st.handshake_hangups + st.handshake_timeouts + st.handshake_evicted, 0);
    /* A broadcast reaches the one worker only. */
    assert_int_equal(ripc_server_broadcast(F.m.s, T_BCAST, "x", 1, 5000), 1);
    kid_roundtrip(0, 'c');
    end_workers();
}

/* ---- versions ---- */

struct fake_master {
    pthread_t th;
    intptr_t lfd;
    int answer; /* RIPC_FRAME_REJECT (as a version 1 master) or RIPC_FRAME_WELCOME */
    ripc__hello got;
    int got_hello;
};

/* Answer one connection's HELLO as a master of version 1 did: a REJECT
 * with its text, or a WELCOME (a master that took the monitor for a
 * worker). */
static void *fake_master_main(void *arg)
{
    struct fake_master *m = arg;
    intptr_t fd = -1;
    for (int i = 0; i < 2000 && ripc__sock_accept(m->lfd, &fd) == -EAGAIN; i++)
        usleep(5000);
    if (fd < 0)
        return NULL;
    uint8_t b[RIPC_FRAME_HDR + RIPC_HANDSHAKE_MAX];
    ripc__frame f;
    if (ripc__sock_recv_all(fd, b, RIPC_FRAME_HDR, 10000) == 0 &&
        ripc__frame_decode(b, &f, RIPC_HANDSHAKE_MAX) == 0 && f.ftype == RIPC_FRAME_HELLO &&
        ripc__sock_recv_all(fd, b + RIPC_FRAME_HDR, (size_t)f.len, 10000) == 0 &&
        ripc__hello_decode(b + RIPC_FRAME_HDR, (size_t)f.len, &m->got) == 0)
        m->got_hello = 1;
    size_t plen;
    if (m->answer == RIPC_FRAME_REJECT) {
        char text[RIPC_REASON_MAX + 1];
        snprintf(text, sizeof text, "worker speaks protocol versions %u..%u, master speaks 1..1",
                 m->got.version_min, m->got.version_max);
        plen = strlen(text);
        memcpy(b + RIPC_FRAME_HDR, text, plen);
        f = (ripc__frame){.ftype = RIPC_FRAME_REJECT, .type = EPROTONOSUPPORT, .len = plen};
    } else {
        ripc__welcome w = {
            .version = 1, .transport = RIPC_XPORT_SOCKET, .peer_id = 1, .max_message = 1 << 20};
        plen = ripc__welcome_encode(b + RIPC_FRAME_HDR, RIPC_HANDSHAKE_MAX, &w);
        f = (ripc__frame){.ftype = RIPC_FRAME_WELCOME, .len = plen};
    }
    ripc__frame_encode(b, &f);
    (void)ripc__sock_send_all(fd, b, RIPC_FRAME_HDR + plen);
    ripc__sock_shutdown(fd, RIPC_SOCK_SHUT_RDWR);
    ripc__sock_close(fd);
    return NULL;
}

static void fake_master_run(int answer, struct stat_run *r)
{
    struct fake_master m = {.answer = answer};
    ripc__addr a;
    char why[256] = "";
    assert_int_equal(ripc__addr_parse(&a, F.url, why, sizeof why), 0);
    assert_int_equal(ripc__sock_listen(&a, &m.lfd, why, sizeof why), 0);
    assert_int_equal(pthread_create(&m.th, NULL, fake_master_main, &m), 0);
    run_stat(r, (const char *[]){"--timeout", "5000", F.url, NULL});
    pthread_join(m.th, NULL);
    ripc__sock_unlink(&a, m.lfd);
    ripc__sock_close(m.lfd);
    /* What a monitor sends: a HELLO of version 2 only, with the bit. */
    assert_true(m.got_hello);
    assert_int_equal(m.got.version_min, RIPC_PROTO_MONITOR);
    assert_int_equal(m.got.version_max, RIPC_PROTO_MONITOR);
    assert_true(m.got.caps & RIPC_CAP_MONITOR);
}

static void test_monitor_versions(void **state)
{
    (void)state;
    struct stat_run *r = calloc(1, sizeof *r);
    assert_non_null(r);
    /* A master of version 1 refuses the version: the tool says so. */
    fake_master_run(RIPC_FRAME_REJECT, r);
    assert_int_equal(r->status, 1);
    char want[256];
    snprintf(want, sizeof want,
             "the master at %s speaks protocol 1..1, which has no monitor; ringipc-stat needs >= 2",
             F.url);
    if (!strstr(r->err, want))
        fail_msg("ringipc-stat said: %s", r->err);
    assert_int_equal(r->out[0], 0);
    /* One that took it for a worker. */
    fake_master_run(RIPC_FRAME_WELCOME, r);
    assert_int_equal(r->status, 1);
    if (!strstr(r->err, "took the monitor for a worker"))
        fail_msg("ringipc-stat said: %s", r->err);
    /* No master at all. */
    run_stat(r, (const char *[]){"--timeout", "2000", F.url, NULL});
    assert_int_equal(r->status, 1);
    if (!strstr(r->err, "no master at"))
        fail_msg("ringipc-stat said: %s", r->err);
    /* Usage. */
    run_stat(r, (const char *[]){"--watch", "x", F.url, NULL});
    assert_int_equal(r->status, 2);
    run_stat(r, (const char *[]){"--help", NULL});
    assert_int_equal(r->status, 0);
    assert_non_null(strstr(r->out, "--watch SECS"));
    free(r);

    /* A monitor of version 1 only (no such thing: the bit came with 2)
     * at a real master: refused for its version, the worker unharmed. */
    open_server(0);
    start_workers(1);
    int fd = ripc_test_hconnect(F.url);
    assert_true(fd >= 0);
    ripc__hello h = {.version_min = 1, .version_max = 1, .caps = RIPC_CAP_MONITOR};
    uint8_t b[RIPC_FRAME_HDR + RIPC_HANDSHAKE_MAX];
    size_t plen = ripc__hello_encode(b + RIPC_FRAME_HDR, RIPC_HANDSHAKE_MAX, &h);
    ripc__frame f = {.ftype = RIPC_FRAME_HELLO, .len = plen};
    ripc__frame_encode(b, &f);
    ripc_test_write_all(fd, b, RIPC_FRAME_HDR + plen);
    assert_int_equal(ripc_test_read_within(fd, b, RIPC_FRAME_HDR, 10000), 0);
    assert_int_equal(ripc__frame_decode(b, &f, RIPC_HANDSHAKE_MAX), 0);
    assert_int_equal(f.ftype, RIPC_FRAME_REJECT);
    assert_int_equal(f.type, EPROTONOSUPPORT);
    assert_int_equal(ripc_test_read_within(fd, b, (size_t)f.len, 10000), 0);
    b[f.len] = 0;
    if (!strstr((char *)b, "monitor speaks protocol versions 1..1, master speaks 2..2"))
        fail_msg("REJECT said: %s", (char *)b);
    close(fd);
    kid_roundtrip(0, 's');
    assert_int_equal(ripc_test_master_joined(&F.m), 1);
    assert_int_equal(server_stats().refused_version, 1);
    end_workers();
}

/* ---- hostile monitors ---- */

/* A monitor HELLO frame into b, for the workers from id `from`; its
 * length. */
static size_t monitor_hello(uint8_t *b, uint64_t from)
{
    ripc__hello h = {.version_min = RIPC_PROTO_MONITOR,
                     .version_max = RIPC_PROTO_MONITOR,
                     .caps = RIPC_CAP_MONITOR,
                     .ring_bytes = from};
    size_t plen = ripc__hello_encode(b + RIPC_FRAME_HDR, RIPC_HANDSHAKE_MAX, &h);
    ripc__frame f = {.ftype = RIPC_FRAME_HELLO, .len = plen};
    ripc__frame_encode(b, &f);
    return RIPC_FRAME_HDR + plen;
}

#define N_DEAF 64

static void test_monitor_hostile(void **state)
{
    (void)state;
    open_server(500); /* a silent connection goes after 500 ms */
    start_workers(1);
    uint8_t b[RIPC_FRAME_HDR + RIPC_HANDSHAKE_MAX + 4096];

    /* Garbage after the HELLO: the snapshot, then the hang-up. */
    int fd = ripc_test_hconnect(F.url);
    assert_true(fd >= 0);
    size_t n = monitor_hello(b, 0);
    memset(b + n, 0xEE, 4096);
    ripc_test_write_all(fd, b, n + 4096);
    assert_int_equal(ripc_test_read_within(fd, b, RIPC_FRAME_HDR, 10000), 0);
    ripc__frame f;
    assert_int_equal(ripc__frame_decode(b, &f, RIPC_SNAP_LEN_MAX), 0);
    assert_int_equal(f.ftype, RIPC_FRAME_SNAPSHOT);
    assert_int_equal(ripc_test_hwait_drop(fd, 10000), 0);
    close(fd);
    kid_roundtrip(0, 's');

    /* Silence: dropped at its deadline; meanwhile the master answers. */
    int quiet = ripc_test_hconnect(F.url);
    assert_true(quiet >= 0);
    struct stat_run *r = calloc(1, sizeof *r);
    assert_non_null(r);
    run_stat(r, (const char *[]){"--json", F.url, NULL});
    if (r->status != 0)
        fail_msg("ringipc-stat exited %d: %s", r->status, r->err);
    assert_int_equal(ripc_test_hwait_drop(quiet, 10000), 0);
    close(quiet);
    assert_true(server_stats().handshake_timeouts >= 1);

    /* A huge length in a monitor's HELLO header: refused before anything
     * is allocated for it. */
    fd = ripc_test_hconnect(F.url);
    assert_true(fd >= 0);
    n = monitor_hello(b, 0);
    ripc__put64(b + 24, (uint64_t)1 << 40);
    ripc_test_write_all(fd, b, n);
    assert_int_equal(ripc_test_read_within(fd, b, RIPC_FRAME_HDR, 10000), 0);
    assert_int_equal(ripc__frame_decode(b, &f, RIPC_HANDSHAKE_MAX), 0);
    assert_int_equal(f.ftype, RIPC_FRAME_REJECT);
    assert_int_equal(ripc_test_hwait_drop(fd, 10000), 0);
    close(fd);

    /* Monitors that never read their snapshots: the master writes each
     * without waiting and goes on. */
    uint64_t before = server_stats().monitors;
    int deaf[N_DEAF];
    for (int i = 0; i < N_DEAF; i++) {
        deaf[i] = ripc_test_hconnect(F.url);
        assert_true(deaf[i] >= 0);
        int one = 1;
        (void)setsockopt(deaf[i], SOL_SOCKET, SO_RCVBUF, &one, sizeof one);
        n = monitor_hello(b, 0);
        ripc_test_write_all(deaf[i], b, n);
    }
    assert_true(monitors_at_least(before + N_DEAF));
    kid_roundtrip(0, 's');
    run_stat(r, (const char *[]){"--json", F.url, NULL});
    if (r->status != 0)
        fail_msg("ringipc-stat exited %d: %s", r->status, r->err);
    for (int i = 0; i < N_DEAF; i++)
        close(deaf[i]);
    free(r);
    assert_int_equal(ripc_test_master_joined(&F.m), 1);
    assert_int_equal(ripc_test_master_left(&F.m), 0);
    assert_int_equal(ripc_server_peer_count(F.m.s), 1);
    end_workers();
}

/* ---- tcp:// and its token ---- */

static void test_monitor_tcp_token(void **state)
{
    (void)state;
    snprintf(F.url, sizeof F.url, "tcp://127.0.0.1:0");
    F.token = "monitor-test-token";
    open_server(0);
    start_workers(1);
    struct stat_run *r = calloc(1, sizeof *r);
    assert_non_null(r);
    /* No token, a wrong one: refused, and the tool says why. */
    unsetenv("RIPC_TOKEN");
    run_stat(r, (const char *[]){"--json", F.url, NULL});
    assert_int_equal(r->status, 1);
    if (!strstr(r->err, "refused the monitor: wrong token"))
        fail_msg("ringipc-stat said: %s", r->err);
    run_stat(r, (const char *[]){"--token", "nope", "--json", F.url, NULL});
    assert_int_equal(r->status, 1);
    /* The token, from the option or from RIPC_TOKEN. */
    run_stat(r, (const char *[]){"--token", F.token, "--json", F.url, NULL});
    if (r->status != 0)
        fail_msg("ringipc-stat exited %d: %s", r->status, r->err);
    const char *from, *to;
    assert_true(json_peer(r->out, 1, &from, &to));
    assert_int_equal(json_num(from, to, "msgs_in"), n_one(0) + 1);
    char xp[16];
    assert_true(json_str(from, to, "transport", xp, sizeof xp));
    assert_string_equal(xp, "socket");
    setenv("RIPC_TOKEN", F.token, 1);
    run_stat(r, (const char *[]){"--json", F.url, NULL});
    unsetenv("RIPC_TOKEN");
    if (r->status != 0)
        fail_msg("ringipc-stat with RIPC_TOKEN exited %d: %s", r->status, r->err);
    free(r);
    assert_true(monitors_at_least(2));
    ripc_server_stats_t st = server_stats();
    assert_int_equal(st.monitors, 2);
    assert_int_equal(st.refused_credentials, 2);
    assert_int_equal(st.peers_total, 1);
    end_workers();
}

/* ---- pages: more workers than one SNAPSHOT lists ---- */

#define N_MANY 299 /* with the forked worker: 300, two pages of 256 at most */

/* A raw monitor's SNAPSHOT for the workers from id `from`: its header and
 * the ids listed. */
static void raw_page(uint64_t from, ripc__snap_head *h, uint32_t *ids)
{
    int fd = ripc_test_hconnect(F.url);
    assert_true(fd >= 0);
    static uint8_t
        b[RIPC_FRAME_HDR + RIPC_SNAP_HDR + RIPC_SNAP_PEERS_MAX * (RIPC_SNAP_REC + RIPC_NAME_MAX)];
    ripc_test_write_all(fd, b, monitor_hello(b, from));
    ripc__frame f;
    assert_int_equal(ripc_test_read_within(fd, b, RIPC_FRAME_HDR, 10000), 0);
    assert_int_equal(ripc__frame_decode(b, &f, sizeof b - RIPC_FRAME_HDR), 0);
    assert_int_equal(f.ftype, RIPC_FRAME_SNAPSHOT);
    assert_int_equal(ripc_test_read_within(fd, b, (size_t)f.len, 10000), 0);
    close(fd);
    assert_int_equal(ripc__snap_head_decode(b, (size_t)f.len, h), 0);
    size_t off = h->hdr_len;
    for (unsigned i = 0; i < h->count; i++) {
        ripc__snap_peer p;
        assert_int_equal(ripc__snap_peer_decode(b, (size_t)f.len, h->rec_len, &off, &p), 0);
        ids[i] = p.id;
    }
    assert_int_equal(off, f.len);
}

static void test_monitor_pages(void **state)
{
    (void)state;
    F.any_transport = 1;
    open_server(0);
    start_workers(1);
    ripc_test_hconn *h = calloc(N_MANY, sizeof *h);
    assert_non_null(h);
    for (int i = 0; i < N_MANY; i++)
        if (ripc_test_hopen(&h[i], F.url, "many", 0, RIPC_XPORT_SOCKET) < 0)
            fail_msg("hand-made worker %d could not join", i);
    uint64_t end = ripc_test_now_ms() + 10000;
    while (ripc_server_peer_count(F.m.s) < N_MANY + 1 && ripc_test_now_ms() < end)
        usleep(1000);
    assert_int_equal(ripc_server_peer_count(F.m.s), N_MANY + 1);

    /* The master's pages: 256 from the first id, the rest from next_id. */
    static uint32_t ids[RIPC_SNAP_PEERS_MAX];
    ripc__snap_head hd;
    raw_page(0, &hd, ids);
    assert_int_equal(hd.count, RIPC_SNAP_PEERS_MAX);
    assert_int_equal(hd.peers_now, N_MANY + 1);
    assert_int_equal(ids[0], 1);
    for (unsigned i = 1; i < hd.count; i++)
        assert_true(ids[i] > ids[i - 1]);
    assert_int_equal(hd.next_id, ids[hd.count - 1] + 1);
    raw_page(hd.next_id, &hd, ids);
    assert_int_equal(hd.count, N_MANY + 1 - RIPC_SNAP_PEERS_MAX);
    assert_int_equal(hd.next_id, 0);
    assert_int_equal(ids[hd.count - 1], N_MANY + 1);

    /* ringipc-stat puts them together: every worker once, in id order. */
    struct stat_run *r = calloc(1, sizeof *r);
    assert_non_null(r);
    run_stat(r, (const char *[]){"--json", F.url, NULL});
    if (r->status != 0)
        fail_msg("ringipc-stat exited %d: %s", r->status, r->err);
    const char *p = r->out;
    for (unsigned id = 1; id <= N_MANY + 1; id++) {
        char k[32];
        snprintf(k, sizeof k, "{\"id\": %u,", id);
        const char *q = strstr(p, k);
        if (!q)
            fail_msg("worker %u missing or out of order", id);
        p = q + 1;
    }
    assert_null(strstr(p, "{\"id\": "));
    const char *from, *to;
    assert_true(json_peer(r->out, 1, &from, &to));
    assert_int_equal(json_num(from, to, "msgs_in"), n_one(0) + 1);
    free(r);
    for (int i = 0; i < N_MANY; i++)
        ripc_test_hclose(&h[i]);
    free(h);
    end_workers();
}

/* --watch until Ctrl-C: a snapshot per line, and SIGINT ends it with 0. */
static void test_monitor_watch_ctrl_c(void **state)
{
    (void)state;
    open_server(0);
    start_workers(1);
    int o[2];
    assert_int_equal(pipe(o), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(o[1], 1);
        close(o[0]);
        execl(RIPC_STAT_BIN, RIPC_STAT_BIN, "--json", "--watch", "0.05", F.url, (char *)NULL);
        _exit(127);
    }
    close(o[1]);
    /* Two snapshots seen: it is in its loop. */
    FILE *f = fdopen(o[0], "r");
    assert_non_null(f);
    static char line[OUT_MAX];
    for (int k = 0; k < 2; k++) {
        if (!fgets(line, sizeof line, f)) {
            kill(pid, SIGKILL);
            fail_msg("ringipc-stat --watch ended early (status %d)", ripc_test_wait(pid));
        }
        const char *end;
        assert_true(json_line_ok(line, &end));
    }
    assert_int_equal(kill(pid, SIGINT), 0);
    /* Within 10 s, or it is killed and the status says so. */
    int status = -1;
    for (int i = 0; i < 1000; i++) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            break;
        }
        usleep(10000);
    }
    if (status < 0) {
        kill(pid, SIGKILL);
        ripc_test_wait(pid);
    }
    fclose(f);
    assert_int_equal(status, 0);
    end_workers();
}

int main(int argc, char **argv)
{
    if ((g_transport = ripc_test_transport_args(argc, argv, &g_transport_name)) < 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_monitor_json_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_monitor_not_a_worker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_monitor_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_monitor_hostile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_monitor_tcp_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_monitor_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_monitor_watch_ctrl_c, setup, teardown),
    };
    return RIPC_TEST_RUN_GROUP("monitor", g_transport_name, tests);
}
