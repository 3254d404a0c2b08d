/*
 * Every blocking call ends within its timeout, whatever the size of the
 * message, when the peer stops reading; and the connection is still usable
 * afterwards (what was reported sent arrives, in order, intact).
 *
 * A table: (call x size), run once per transport.
 *   worker_<size>       the master's handler is stuck (blocked on a pipe
 *                       the test holds): the worker's request waiting for
 *                       its reply, sends until one times out, a request
 *                       that cannot go out, a recv with nothing to receive
 *   worker_close_<size> the same fill, then ripc_client_close
 *   master_<call>_<size> the worker does not read: ripc_server_send,
 *                       _send_batch, _broadcast, ripc_reply until one
 *                       times out
 *   open_slow_welcome   a listener that answers HELLO with the header of
 *                       a WELCOME just before connect_timeout_ms, and never
 *                       the rest
 * Sizes: 64 B, 1 MiB (larger than the 64 KiB ring: shared memory moves it
 * in a buffer of its own, a marker in the ring), max_message (4 MiB here).
 *
 * "Within its timeout" is checked with a generous margin (timeout + 2 s):
 * it tells a call that returned from one that hung, it is not a speed test.
 *
 * Usage: test_timeouts [shm|socket] [test-name-filter]
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
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ringipc/ringipc.h"
#include "src/proto.h"
#include "support/support.h"

/* SLACK_MS is a hang bound, not a speed check: a loaded 2-core machine has
 * kept a process off the CPU for 2.7 s. */
#define TMO_MS     200
#define SLACK_MS   5000
#define CLOSE_MS   1100 /* ripc_client_close's bound (ringipc.h) */
#define REPLY_MS   1000 /* ripc_reply's own timeout */
#define RING       ((size_t)64 * 1024)
#define MAXMSG     ((uint64_t)4 << 20)
#define FILL_LIMIT 1000000 /* sends before giving up on filling anything */
#define WATCHDOG_S 120
/* The test's own guard against a worker call that never returns (the
 * worker checks each call against its timeout + SLACK_MS itself). */
#define HUNG_MS 10000

enum { T_BLOCK = 1, T_DATA, T_ECHO, T_DONE, T_HOLD, T_END };
enum { C_SEND, C_BATCH, C_BROADCAST, C_REPLY };
#define BATCH 4

static int g_transport = RIPC_TRANSPORT_SHM;
static const char *g_tname = "shm";

struct tcase {
    const char *name;
    void (*fn)(const struct tcase *);
    uint64_t size;
    int call;
    int (*child)(const struct tcase *); /* the worker's part, in a re-executed child */
};

static struct {
    char dir[64], path[128], url[140];
    ripc_server *s;
    pthread_t run_th;
    int running;
    int block[2]; /* the T_BLOCK handler reads a byte from block[0] */
    int note[2];  /* worker / handler -> test */
    int go[2];    /* test -> worker */
    pid_t kid;
    FILE *kid_out;
    _Atomic uint64_t got; /* T_DATA seen in order */
    _Atomic int bad;      /* a T_DATA out of order or with wrong content */
    ripc_peer *ask_peer;  /* T_HOLD: the request kept for ripc_reply */
    ripc_msg ask;
} g;

/* ---- helpers ---- */

static void xwrite(int fd, const char *b)
{
    while (write(fd, b, 1) != 1)
        if (errno != EINTR)
            _exit(4);
}

/* One byte from fd within ms (-1 forever): the byte, or -1 (timeout, EOF). */
static int xread_within(int fd, int ms)
{
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    int r;
    while ((r = poll(&pf, 1, ms)) < 0 && errno == EINTR)
        ;
    char b;
    if (r != 1 || read(fd, &b, 1) != 1)
        return -1;
    return (unsigned char)b;
}

/* Payload: u64 seq, then bytes only (seq, len) produce. */
static void mk(unsigned char *buf, uint64_t size, uint64_t seq)
{
    memcpy(buf, &seq, 8);
    ripc_test_fill(buf + 8, (size_t)size - 8, seq);
}

static int ck(const void *data, uint64_t len, uint64_t size, uint64_t seq)
{
    uint64_t s;
    if (len != size)
        return 0;
    memcpy(&s, data, 8);
    return s == seq && ripc_test_check((const unsigned char *)data + 8, (size_t)len - 8, seq);
}

static ripc_options opts(void)
{
    ripc_options o;
    memset(&o, 0, sizeof o);
    o.transport = g_transport;
    o.ring_bytes = RING;
    o.max_message = MAXMSG;
    return o;
}

/* ---- the master ---- */

static void h_block(ripc_peer *p, const ripc_msg *m, void *arg)
{
    (void)p, (void)m, (void)arg;
    xread_within(g.block[0], -1);
}

static void h_data(ripc_peer *p, const ripc_msg *m, void *arg)
{
    (void)p, (void)arg;
    uint64_t seq = atomic_load(&g.got);
    if (m->len < 8 || !ck(m->data, m->len, m->len, seq))
        atomic_store(&g.bad, 1);
    else
        atomic_store(&g.got, seq + 1);
}

static void h_echo(ripc_peer *p, const ripc_msg *m, void *arg)
{
    (void)arg;
    ripc_reply(p, m, m->data, m->len);
}

/* T_DONE: the worker says how many T_DATA it was told were sent; answer
 * with what arrived, and whether all of it was right. */
static void h_done(ripc_peer *p, const ripc_msg *m, void *arg)
{
    (void)arg;
    uint64_t out[2] = {atomic_load(&g.got), (uint64_t)atomic_load(&g.bad)};
    ripc_reply(p, m, out, sizeof out);
}

/* T_HOLD: a request kept unanswered, for the test to reply to later. */
static void h_hold(ripc_peer *p, const ripc_msg *m, void *arg)
{
    (void)arg;
    g.ask_peer = p;
    g.ask = *m;
    g.ask.data = NULL;
    g.ask.len = 0;
    xwrite(g.note[1], "A");
}

static void *run_main(void *arg)
{
    (void)arg;
    ripc_server_run(g.s, 1);
    return NULL;
}

static int setup(void **state)
{
    (void)state;
    memset(&g, 0, sizeof g);
    g.block[0] = g.block[1] = g.note[0] = g.note[1] = g.go[0] = g.go[1] = -1;
    snprintf(g.dir, sizeof g.dir, "/tmp/ripc-to-XXXXXX");
    if (!mkdtemp(g.dir))
        return -1;
    snprintf(g.path, sizeof g.path, "%s/s", g.dir);
    snprintf(g.url, sizeof g.url, "unix:%s", g.path);
    if (pipe(g.block) || pipe(g.note) || pipe(g.go))
        return -1;
    alarm(WATCHDOG_S); /* a call that hangs ends the run with SIGALRM */
    return 0;
}

static void start_master(void)
{
    ripc_options o = opts();
    char why[256] = "";
    int rc = ripc_server_open_ex(&g.s, g.url, &o, why, sizeof why);
    if (rc != 0)
        fail_msg("server open: %s (%s)", ripc_strerror(rc), why);
    ripc_server_handle(g.s, T_BLOCK, h_block, NULL);
    ripc_server_handle(g.s, T_DATA, h_data, NULL);
    ripc_server_handle(g.s, T_ECHO, h_echo, NULL);
    ripc_server_handle(g.s, T_DONE, h_done, NULL);
    ripc_server_handle(g.s, T_HOLD, h_hold, NULL);
}

/* The dispatch thread starts after the worker is forked (a fork while a
 * thread allocates can leave the child's allocator locked). */
static void start_dispatch(void)
{
    assert_int_equal(pthread_create(&g.run_th, NULL, run_main, NULL), 0);
    g.running = 1;
}

static int teardown(void **state)
{
    (void)state;
    if (g.block[1] >= 0)
        xwrite(g.block[1], "G"); /* a stuck handler must let the loop stop */
    if (g.kid > 0) {
        kill(g.kid, SIGKILL);
        ripc_test_wait(g.kid);
    }
    if (g.kid_out)
        fclose(g.kid_out);
    if (g.running) {
        ripc_server_stop(g.s);
        pthread_join(g.run_th, NULL);
    }
    ripc_server_close(g.s);
    for (int i = 0; i < 2; i++) {
        if (g.block[i] >= 0)
            close(g.block[i]);
        if (g.note[i] >= 0)
            close(g.note[i]);
        if (g.go[i] >= 0)
            close(g.go[i]);
    }
    unlink(g.path);
    rmdir(g.dir);
    alarm(0);
    return 0;
}

/* The worker runs t->child in a fresh process (this program re-executed:
 * no threads inherited, which the sanitizers need), with the url and the
 * pipe ends it uses on its command line. */
static void spawn(const struct tcase *t)
{
    char note[16], go[16];
    snprintf(note, sizeof note, "%d", g.note[1]);
    snprintf(go, sizeof go, "%d", g.go[0]);
    char *argv[] = {
        "test_timeouts", (char *)g_tname, "--child", (char *)t->name, g.url, note, go, NULL};
    g.kid = ripc_test_spawn_self(argv, NULL, NULL, &g.kid_out);
    assert_true(g.kid > 0);
}

static void reap_ok(void)
{
    int st = ripc_test_wait(g.kid);
    g.kid = 0;
    assert_int_equal(st, 0);
}

/* ---- the worker's calls, the master stuck ---- */

static ripc_client *w_open(void)
{
    ripc_options o = opts();
    ripc_client *c = NULL;
    char why[256] = "";
    int rc = ripc_client_open_ex(&c, g.url, &o, why, sizeof why);
    WCHECK(rc == 0, "open: %s (%s)", ripc_strerror(rc), why);
    WCHECK(strcmp(ripc_client_transport(c), g_tname) == 0, "transport %s",
           ripc_client_transport(c));
    return c;
}

/* A blocking call of the worker returned: on time? Tell the test it did. */
static void w_returned(const char *what, uint64_t t0, int tmo)
{
    uint64_t el = ripc_test_now_ms() - t0;
    WCHECK(el <= (uint64_t)tmo + SLACK_MS, "%s with a %d ms timeout took %llu ms", what, tmo,
           (unsigned long long)el);
    xwrite(g.note[1], "p");
}

static int w_stall(const struct tcase *t)
{
    ripc_client *c = w_open();
    unsigned char *buf = malloc((size_t)t->size);
    WCHECK(buf, "malloc");
    ripc_msg r;
    int rc = ripc_client_send(c, T_BLOCK, NULL, 0, -1);
    WCHECK(rc == 0, "send T_BLOCK: %s", ripc_strerror(rc));

    /* A request whose reply cannot come. */
    mk(buf, t->size, 0);
    uint64_t t0 = ripc_test_now_ms();
    rc = ripc_client_request(c, T_ECHO, buf, t->size, &r, TMO_MS);
    w_returned("request (waiting for the reply)", t0, TMO_MS);
    WCHECK(rc == -ETIMEDOUT, "request: %s", ripc_strerror(rc));

    /* Sends until the master's side is full. */
    uint64_t seq = 0;
    for (int i = 0;; i++) {
        WCHECK(i < FILL_LIMIT, "%d sends of %llu bytes went through a stuck master", i,
               (unsigned long long)t->size);
        mk(buf, t->size, seq);
        t0 = ripc_test_now_ms();
        rc = ripc_client_send(c, T_DATA, buf, t->size, TMO_MS);
        w_returned("send", t0, TMO_MS);
        if (rc != 0) {
            WCHECK(rc == -ETIMEDOUT, "send %llu: %s", (unsigned long long)seq, ripc_strerror(rc));
            break;
        }
        seq++;
    }
    t0 = ripc_test_now_ms();
    rc = ripc_client_send(c, T_DATA, buf, t->size, 0);
    w_returned("send", t0, 0);
    WCHECK(rc == -EAGAIN, "send, timeout 0, full: %s", ripc_strerror(rc));

    /* A request that cannot go out, a recv with nothing to receive. */
    t0 = ripc_test_now_ms();
    rc = ripc_client_request(c, T_ECHO, buf, t->size, &r, TMO_MS);
    w_returned("request (full)", t0, TMO_MS);
    WCHECK(rc == -ETIMEDOUT, "request (full): %s", ripc_strerror(rc));
    t0 = ripc_test_now_ms();
    rc = ripc_client_recv(c, &r, TMO_MS);
    w_returned("recv", t0, TMO_MS);
    WCHECK(rc == -ETIMEDOUT, "recv: %s", ripc_strerror(rc));

    if (t->call) { /* worker_close */
        t0 = ripc_test_now_ms();
        ripc_client_close(c);
        w_returned("close", t0, CLOSE_MS);
        xwrite(g.note[1], "T");
        free(buf);
        return 0;
    }
    xwrite(g.note[1], "T");
    /* The test lets the handler go: everything reported sent arrives. */
    rc = ripc_client_request(c, T_DONE, &seq, 8, &r, 30000);
    WCHECK(rc == 0 && r.len == 16, "T_DONE: %s", ripc_strerror(rc));
    uint64_t res[2];
    memcpy(res, r.data, sizeof res);
    WCHECK(res[0] == seq && res[1] == 0,
           "%llu messages of %llu bytes reported sent, the master got %llu (bad %llu)",
           (unsigned long long)seq, (unsigned long long)t->size, (unsigned long long)res[0],
           (unsigned long long)res[1]);
    /* Still usable both ways. */
    mk(buf, t->size, 7);
    rc = ripc_client_request(c, T_ECHO, buf, t->size, &r, 30000);
    WCHECK(rc == 0 && ck(r.data, r.len, t->size, 7), "echo after the stall: %s", ripc_strerror(rc));
    ripc_client_close(c);
    free(buf);
    return 0;
}

static void worker_case(const struct tcase *t)
{
    start_master();
    spawn(t);
    start_dispatch();
    for (;;) {
        int b = xread_within(g.note[0], HUNG_MS);
        if (b < 0)
            fail_msg("%s, %llu bytes: a worker call with a %d ms timeout had not returned "
                     "after %d ms (or the worker died)",
                     g_tname, (unsigned long long)t->size, TMO_MS, HUNG_MS);
        if (b == 'T')
            break;
    }
    xwrite(g.block[1], "G");
    reap_ok();
}

/* ---- the master's calls, the worker not reading ---- */

static int w_hold(const struct tcase *t)
{
    ripc_client *c = w_open();
    ripc_msg r;
    int rc = ripc_client_request(c, T_HOLD, NULL, 0, &r, 0);
    WCHECK(rc == -ETIMEDOUT, "request T_HOLD: %s", ripc_strerror(rc));
    xwrite(g.note[1], "H"); /* not reading from now on */
    WCHECK(xread_within(g.go[0], -1) == 'G', "go pipe");
    uint64_t n = 0, want;
    for (;;) {
        rc = ripc_client_recv(c, &r, 30000);
        WCHECK(rc == 0, "recv after %llu: %s", (unsigned long long)n, ripc_strerror(rc));
        if (r.type == T_END) {
            WCHECK(r.len == 8, "T_END");
            memcpy(&want, r.data, 8);
            break;
        }
        WCHECK(r.type == T_DATA && ck(r.data, r.len, t->size, n), "message %llu wrong",
               (unsigned long long)n);
        n++;
    }
    if (t->call == C_REPLY)
        WCHECK(ripc_client_dropped(c) == want, "%llu replies reported sent, %llu arrived",
               (unsigned long long)want, (unsigned long long)ripc_client_dropped(c));
    else
        WCHECK(n == want, "%llu messages reported sent, %llu arrived", (unsigned long long)want,
               (unsigned long long)n);
    ripc_client_close(c);
    return 0;
}

static const char *call_name(int call)
{
    static const char *const n[] = {"ripc_server_send", "ripc_server_send_batch",
                                    "ripc_server_broadcast", "ripc_reply"};
    return n[call];
}

/* One call of the table: how many messages went (0 = none, it timed out). */
static int master_call(const struct tcase *t, uint32_t id, unsigned char *bufs[BATCH], uint64_t seq,
                       int *err)
{
    int rc;
    *err = 0;
    switch (t->call) {
    case C_SEND:
        mk(bufs[0], t->size, seq);
        rc = ripc_server_send(g.s, id, T_DATA, bufs[0], t->size, TMO_MS);
        *err = rc;
        return rc == 0;
    case C_BATCH: {
        ripc_out out[BATCH];
        for (int i = 0; i < BATCH; i++) {
            mk(bufs[i], t->size, seq + (uint64_t)i);
            out[i] = (ripc_out){.type = T_DATA, .data = bufs[i], .len = t->size};
        }
        rc = ripc_server_send_batch(g.s, id, out, BATCH, TMO_MS);
        *err = rc < 0 ? rc : 0;
        return rc < 0 ? 0 : rc;
    }
    case C_BROADCAST:
        mk(bufs[0], t->size, seq);
        return ripc_server_broadcast(g.s, T_DATA, bufs[0], t->size, TMO_MS);
    default:
        rc = ripc_reply(g.ask_peer, &g.ask, bufs[0], t->size);
        *err = rc;
        return rc == 0;
    }
}

static void master_case(const struct tcase *t)
{
    start_master();
    spawn(t);
    start_dispatch();
    /* Both: the handler has the request ('A'), and the worker is out of
     * its request call and reads no more ('H'). */
    for (int i = 0; i < 2; i++)
        if (xread_within(g.note[0], 10000) < 0)
            fail_msg("the worker's T_HOLD request did not arrive");
    uint32_t id = ripc_peer_id(g.ask_peer);
    unsigned char *bufs[BATCH];
    for (int i = 0; i < BATCH; i++)
        assert_non_null(bufs[i] = malloc((size_t)t->size));
    int tmo = t->call == C_REPLY ? REPLY_MS : TMO_MS;
    uint64_t seq = 0;
    int stalls = 0;
    for (int i = 0; stalls < 2; i++) {
        if (i >= FILL_LIMIT)
            fail_msg("%d calls went through to a worker that does not read", i);
        int err;
        uint64_t t0 = ripc_test_now_ms();
        int n = master_call(t, id, bufs, seq, &err);
        uint64_t el = ripc_test_now_ms() - t0;
        if (el > (uint64_t)tmo + SLACK_MS)
            fail_msg("%s %s, %llu bytes: %s with a %d ms timeout took %llu ms", g_tname,
                     call_name(t->call), (unsigned long long)t->size, call_name(t->call), tmo,
                     (unsigned long long)el);
        if (err != 0 && err != -ETIMEDOUT && err != -EAGAIN)
            fail_msg("%s: %s", call_name(t->call), ripc_strerror(err));
        seq += (uint64_t)n;
        if (n < (t->call == C_BATCH ? BATCH : 1))
            stalls++; /* twice: the second call finds it full at once */
    }
    xwrite(g.go[1], "G");
    assert_int_equal(ripc_server_send(g.s, id, T_END, &seq, 8, 30000), 0);
    reap_ok();
    for (int i = 0; i < BATCH; i++)
        free(bufs[i]);
}

/* ---- open: a listener that answers slowly ---- */

struct slow_arg {
    int lfd;
    int stop_r;
};

static void *slow_listener(void *p)
{
    struct slow_arg *a = p;
    int fd = accept(a->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    unsigned char hello[RIPC_FRAME_HDR];
    ssize_t n = recv(fd, hello, sizeof hello, 0); /* a HELLO began */
    (void)n;
    /* The header of a WELCOME just before the client's timeout, then
     * nothing: the client must not start its timeout over for the rest. */
    struct pollfd pf = {.fd = a->stop_r, .events = POLLIN};
    if (poll(&pf, 1, 2700) == 0) {
        uint8_t hdr[RIPC_FRAME_HDR];
        ripc__frame f = {.ftype = RIPC_FRAME_WELCOME, .len = 100};
        ripc__frame_encode(hdr, &f);
        if (send(fd, hdr, sizeof hdr, MSG_NOSIGNAL) < 0) {
            /* the client gave up */
        }
        poll(&pf, 1, -1);
    }
    close(fd);
    return NULL;
}

static void open_case(const struct tcase *t)
{
    (void)t;
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(lfd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", g.path);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(lfd, 4), 0);
    struct slow_arg a = {.lfd = lfd, .stop_r = g.go[0]};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, slow_listener, &a), 0);
    ripc_options o = opts();
    o.connect_timeout_ms = 3000;
    ripc_client *c = NULL;
    uint64_t t0 = ripc_test_now_ms();
    int rc = ripc_client_open(&c, g.url, &o);
    uint64_t el = ripc_test_now_ms() - t0;
    xwrite(g.go[1], "S");
    pthread_join(th, NULL);
    close(lfd);
    assert_null(c);
    assert_int_equal(rc, -ETIMEDOUT);
    if (el > (uint64_t)o.connect_timeout_ms + SLACK_MS)
        fail_msg("ripc_client_open with connect_timeout_ms %d took %llu ms", o.connect_timeout_ms,
                 (unsigned long long)el);
}

/* ---- the table ---- */

static void run_case(void **state)
{
    const struct tcase *t = *state;
    print_message("%s: %s\n", g_tname, t->name);
    t->fn(t);
}

#define SIZES(name, fn, call, child)                                                               \
    {name "_64", fn, 64, call, child}, {name "_1m", fn, (uint64_t)1 << 20, call, child},           \
    {                                                                                              \
        name "_max", fn, MAXMSG, call, child                                                       \
    }

static const struct tcase g_cases[] = {
    SIZES("worker", worker_case, 0, w_stall),
    SIZES("worker_close", worker_case, 1, w_stall),
    SIZES("master_send", master_case, C_SEND, w_hold),
    SIZES("master_batch", master_case, C_BATCH, w_hold),
    SIZES("master_broadcast", master_case, C_BROADCAST, w_hold),
    SIZES("master_reply", master_case, C_REPLY, w_hold),
    {"open_slow_welcome", open_case, 0, 0, NULL},
};
#define NCASES (sizeof g_cases / sizeof g_cases[0])

int main(int argc, char **argv)
{
    if (argc == 7 && strcmp(argv[2], "--child") == 0) {
        g_transport = ripc_test_transport_args(2, argv, &g_tname);
        snprintf(g.url, sizeof g.url, "%s", argv[4]);
        g.note[1] = atoi(argv[5]);
        g.go[0] = atoi(argv[6]);
        signal(SIGPIPE, SIG_IGN);
        for (size_t i = 0; i < NCASES; i++)
            if (strcmp(g_cases[i].name, argv[3]) == 0 && g_cases[i].child)
                return g_cases[i].child(&g_cases[i]);
        return 2;
    }
    if ((g_transport = ripc_test_transport_args(argc, argv, &g_tname)) < 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    struct CMUnitTest tests[NCASES];
    for (size_t i = 0; i < NCASES; i++)
        tests[i] = (struct CMUnitTest){.name = g_cases[i].name,
                                       .test_func = run_case,
                                       .setup_func = setup,
                                       .teardown_func = teardown,
                                       .initial_state = (void *)&g_cases[i]};
    char group[64];
    snprintf(group, sizeof group, "timeouts_%s", g_tname);
    return _cmocka_run_group_tests(group, tests, NCASES, NULL, NULL);
}
