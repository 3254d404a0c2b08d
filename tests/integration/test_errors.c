/*
 * Errors across the API, between real processes: requests nobody handles,
 * error replies (ripc_reply_error, ripc_client_error), reserved types at
 * every entry point, option values and URLs the open calls refuse, the
 * abstract unix namespace end to end, and error texts.
 *
 * Usage: test_errors [shm|socket] [test-name-filter]
 *   The transport (default shm) goes into every ripc_options.transport.
 *
 * The test process is the master; workers are fork()ed children that only
 * open clients. They report through their exit status (and stderr), and
 * arm alarm() so that a call that hangs ends the child with SIGALRM rather
 * than the test with the ctest timeout.
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ringipc/ringipc.h"
#include "sockets/sock.h"
#include "src/proto.h"
#include "support/support.h"
#include "support/workers.h"

static int g_transport = RIPC_TRANSPORT_SHM;
static const char *g_transport_name = "shm";

enum {
    T_ECHO = 1, /* request: the payload back */
    T_DENY,     /* request: ripc_reply_error(-EPERM, "denied: <payload>") */
    T_QUIET,    /* request: ripc_reply_error(-EINVAL, NULL) */
    T_LONG,     /* request: ripc_reply_error(-E2BIG, 300 bytes of text) */
    T_NOTE,     /* one-way: the handler checks the calls a one-way refuses */
    T_UNHANDLED = 7,
    T_UNHANDLED2 = 9,
};

#define CHILD_ALARM_S 20
#define QUICK_MS      2000 /* "at once": far below any timeout used here */

static struct {
    char dir[64];
    char url[160]; /* a server's address in dir */
    ripc_test_master m;
    pid_t kid;
    _Atomic int fallback_calls, note_checks_ok, deny_checks_ok;
} F;

static ripc_options opts(void)
{
    ripc_options o;
    memset(&o, 0, sizeof o);
    o.transport = g_transport;
    return o;
}

/* ---- master side ---- */

static void h_deny(ripc_peer *p, const ripc_msg *m, void *arg)
{
    (void)arg;
    /* Arguments the call refuses, before the real answer. */
    ripc_msg reserved = *m;
    reserved.type = 0xF000;
    int ok = ripc_reply_error(p, m, 0, "x") == -EINVAL &&
             ripc_reply_error(p, m, EPERM, "x") == -EINVAL &&
             ripc_reply_error(p, m, -4096, "x") == -EINVAL &&
             ripc_reply_error(NULL, m, -EPERM, "x") == -EINVAL &&
             ripc_reply_error(p, NULL, -EPERM, "x") == -EINVAL &&
             ripc_reply_error(p, &reserved, -EPERM, "x") == -EINVAL &&
             ripc_reply(p, &reserved, "x", 1) == -EINVAL && ripc_reply(p, m, NULL, 3) == -EINVAL;
    if (ok)
        atomic_fetch_add(&F.deny_checks_ok, 1);
    char text[64];
    snprintf(text, sizeof text, "denied: %.*s", (int)(m->len > 32 ? 32 : m->len),
             (const char *)m->data);
    ripc_reply_error(p, m, -EPERM, text);
}

static void h_quiet(ripc_peer *p, const ripc_msg *m, void *arg)
{
    (void)arg;
    ripc_reply_error(p, m, -EINVAL, NULL);
}

static void h_long(ripc_peer *p, const ripc_msg *m, void *arg)
{
    (void)arg;
    char text[301];
    memset(text, 'L', 300);
    text[300] = 0;
    ripc_reply_error(p, m, -E2BIG, text);
}

static void h_note(ripc_peer *p, const ripc_msg *m, void *arg)
{
    (void)arg;
    /* A one-way message cannot be answered, with a result or an error. */
    if (ripc_reply_error(p, m, -EPERM, "x") == -EINVAL && ripc_reply(p, m, "x", 1) == -EINVAL)
        atomic_fetch_add(&F.note_checks_ok, 1);
}

static void h_fallback(ripc_peer *p, const ripc_msg *m, void *arg)
{
    (void)arg;
    atomic_fetch_add(&F.fallback_calls, 1);
    if (m->kind == RIPC_REQUEST) {
        char out[32];
        int n = snprintf(out, sizeof out, "fallback %u", (unsigned)m->type);
        ripc_reply(p, m, out, (uint64_t)n);
    }
}

static int setup(void **state)
{
    (void)state;
    memset(&F, 0, sizeof F);
    snprintf(F.dir, sizeof F.dir, "/tmp/ripc-err-XXXXXX");
    if (!mkdtemp(F.dir))
        return -1;
    snprintf(F.url, sizeof F.url, "unix:%s/e.sock", F.dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ripc_test_end_server(F.m.s, &F.m.run, F.kid);
    char path[200];
    snprintf(path, sizeof path, "%s/e.sock", F.dir);
    unlink(path);
    rmdir(F.dir);
    return 0;
}

static void open_server(const char *url)
{
    ripc_options o = opts();
    assert_int_equal(ripc_test_master_listen(&F.m, url, &o), 0);
}

static void start_kid(int (*child)(void *), void *arg)
{
    F.kid = ripc_test_fork_alarm(child, arg, CHILD_ALARM_S);
    assert_true(F.kid >= 0);
}

static void start_run(void)
{
    assert_int_equal(ripc_test_run_start(&F.m.run, F.m.s, 1), 0);
}

/* Fork the worker first, then start dispatching (no thread exists when the
 * child is made). */
static void start(int (*child)(void *), void *arg)
{
    start_kid(child, arg);
    start_run();
}

/* Wait (up to 10 s) until n workers have left. */
static void wait_left(int n)
{
    assert_int_equal(ripc_test_master_await(&F.m, &F.m.left, n, 10000), n);
}

/* The worker's exit status (0: all its checks passed). */
static int finish(void)
{
    int st = ripc_test_wait(F.kid);
    F.kid = 0;
    return st;
}

/* One worker from start to end: it must exit 0 and leave with a goodbye;
 * then dispatching stops, so the test may read the server's counters. */
static void serve_worker(int (*child)(void *), void *arg)
{
    start(child, arg);
    assert_int_equal(finish(), 0);
    wait_left(1);
    ripc_test_run_stop(&F.m.run);
    assert_int_equal(ripc_test_master_left_reason(&F.m), RIPC_LEFT_BYE);
}

static ripc_client *w_open(const char *url)
{
    ripc_options o = opts();
    ripc_client *c = NULL;
    char why[256] = "";
    int rc = ripc_client_open_ex(&c, url, &o, why, sizeof why);
    WCHECK(rc == 0, "open %s: %s (%s)", url, ripc_strerror(rc), why);
    return c;
}

static void w_echo(ripc_client *c)
{
    ripc_msg r;
    int rc = ripc_client_request(c, T_ECHO, "abc", 3, &r, 10000);
    WCHECK(rc == 0 && r.len == 3 && memcmp(r.data, "abc", 3) == 0, "echo: %s", ripc_strerror(rc));
    WCHECK(ripc_client_error(c)[0] == 0, "error text after a reply: '%s'", ripc_client_error(c));
}

/* ---- a request nobody handles ---- */

static int w_unhandled(void *arg)
{
    (void)arg;
    ripc_client *c = w_open(F.url);
    ripc_msg r;
    memset(&r, 0x55, sizeof r);
    uint64_t t0 = ripc_test_now_ms();
    int rc = ripc_client_request(c, T_UNHANDLED, "x", 1, &r, -1);
    uint64_t dt = ripc_test_now_ms() - t0;
    WCHECK(rc == -ENOENT, "request type 7, timeout -1: %d (%s)", rc, ripc_strerror(rc));
    WCHECK(dt < QUICK_MS, "took %llu ms", (unsigned long long)dt);
    WCHECK(strcmp(ripc_client_error(c), "no handler for type 7") == 0, "text '%s'",
           ripc_client_error(c));
    WCHECK(r.data == NULL && r.len == 0, "reply not cleared");

    t0 = ripc_test_now_ms();
    rc = ripc_client_request(c, T_UNHANDLED2, NULL, 0, &r, 10000);
    dt = ripc_test_now_ms() - t0;
    WCHECK(rc == -ENOENT && dt < QUICK_MS, "type 9: %s after %llu ms", ripc_strerror(rc),
           (unsigned long long)dt);
    WCHECK(strcmp(ripc_client_error(c), "no handler for type 9") == 0, "text '%s'",
           ripc_client_error(c));

    /* A one-way of an unhandled type is dropped; the connection goes on. */
    rc = ripc_client_send(c, T_UNHANDLED, "y", 1, 5000);
    WCHECK(rc == 0, "one-way: %s", ripc_strerror(rc));
    w_echo(c);
    WCHECK(ripc_client_recv(c, &r, 0) == -EAGAIN, "a stray message");
    WCHECK(ripc_client_dropped(c) == 0, "%llu replies dropped",
           (unsigned long long)ripc_client_dropped(c));
    ripc_client_close(c);
    return 0;
}

static void test_errors_unhandled_request(void **state)
{
    (void)state;
    open_server(F.url);
    ripc_server_handle(F.m.s, T_ECHO, ripc_test_on_echo, NULL);
    serve_worker(w_unhandled, NULL);
    /* Two requests and one one-way had no handler. */
    assert_int_equal(ripc_server_dropped(F.m.s), 3);
}

/* ---- a handler answers with an error ---- */

static int w_reply_error(void *arg)
{
    (void)arg;
    ripc_client *c = w_open(F.url);
    WCHECK(ripc_client_error(c)[0] == 0, "text before any request");
    ripc_msg r;
    int rc = ripc_client_request(c, T_DENY, "door", 4, &r, -1);
    WCHECK(rc == -EPERM, "deny: %d (%s)", rc, ripc_strerror(rc));
    WCHECK(strcmp(ripc_client_error(c), "denied: door") == 0, "text '%s'", ripc_client_error(c));
    w_echo(c); /* the text is the last request's only */
    rc = ripc_client_request(c, T_DENY, "door", 4, &r, -1);
    WCHECK(rc == -EPERM && ripc_client_error(c)[0] != 0, "deny again: %s", ripc_strerror(rc));
    rc = ripc_client_request(c, 0xF001, NULL, 0, &r, 1000);
    WCHECK(rc == -EINVAL && ripc_client_error(c)[0] == 0, "a refused request: %s, text '%s'",
           ripc_strerror(rc), ripc_client_error(c));

    rc = ripc_client_request(c, T_QUIET, NULL, 0, &r, 10000);
    WCHECK(rc == -EINVAL && ripc_client_error(c)[0] == 0, "quiet: %s, '%s'", ripc_strerror(rc),
           ripc_client_error(c));

    rc = ripc_client_request(c, T_LONG, NULL, 0, &r, 10000);
    const char *t = ripc_client_error(c);
    WCHECK(rc == -E2BIG && strlen(t) == RIPC_ERR_TEXT_MAX && t[0] == 'L' &&
               t[RIPC_ERR_TEXT_MAX - 1] == 'L',
           "long: %s, %zu bytes", ripc_strerror(rc), strlen(t));

    WCHECK(ripc_client_send(c, T_NOTE, NULL, 0, 5000) == 0, "note");
    w_echo(c); /* after the note was handled */
    ripc_client_close(c);
    return 0;
}

static void test_errors_reply_error(void **state)
{
    (void)state;
    open_server(F.url);
    ripc_server_handle(F.m.s, T_ECHO, ripc_test_on_echo, NULL);
    ripc_server_handle(F.m.s, T_DENY, h_deny, NULL);
    ripc_server_handle(F.m.s, T_QUIET, h_quiet, NULL);
    ripc_server_handle(F.m.s, T_LONG, h_long, NULL);
    ripc_server_handle(F.m.s, T_NOTE, h_note, NULL);
    serve_worker(w_reply_error, NULL);
    assert_int_equal(atomic_load(&F.deny_checks_ok), 2);
    assert_int_equal(atomic_load(&F.note_checks_ok), 1);
    assert_int_equal(ripc_server_dropped(F.m.s), 0);
}

/* ---- the fallback handler still gets the types without a handler ---- */

static int w_fallback(void *arg)
{
    (void)arg;
    ripc_client *c = w_open(F.url);
    ripc_msg r;
    int rc = ripc_client_request(c, T_UNHANDLED, NULL, 0, &r, 10000);
    WCHECK(rc == 0 && r.len == 10 && memcmp(r.data, "fallback 7", 10) == 0, "request: %s",
           ripc_strerror(rc));
    WCHECK(ripc_client_send(c, T_UNHANDLED2, NULL, 0, 5000) == 0, "one-way");
    w_echo(c);
    ripc_client_close(c);
    return 0;
}

static void test_errors_fallback_handler(void **state)
{
    (void)state;
    open_server(F.url);
    ripc_server_handle(F.m.s, T_ECHO, ripc_test_on_echo, NULL);
    ripc_server_handle(F.m.s, 0, h_fallback, NULL);
    serve_worker(w_fallback, NULL);
    assert_int_equal(atomic_load(&F.fallback_calls), 2);
    assert_int_equal(ripc_server_dropped(F.m.s), 0);
}

/* ---- the smallest max_message still gets its error replies ----
 * 256 bytes, the least either side may ask for: the library's "no handler"
 * answer and a handler's longest text fit. A hand-made HELLO asking for
 * less is refused (-EMSGSIZE): an error reply would not fit, and its
 * requests would wait for good. */

static int w_small_max(void *arg)
{
    (void)arg;
    ripc_options o = opts();
    o.max_message = 256;
    ripc_client *c = NULL;
    char why[256] = "";
    int rc = ripc_client_open_ex(&c, F.url, &o, why, sizeof why);
    WCHECK(rc == 0, "open with max_message 256: %s (%s)", ripc_strerror(rc), why);
    ripc_msg r;
    rc = ripc_client_request(c, T_UNHANDLED, NULL, 0, &r, -1);
    WCHECK(rc == -ENOENT && strcmp(ripc_client_error(c), "no handler for type 7") == 0,
           "unhandled: %s, '%s'", ripc_strerror(rc), ripc_client_error(c));
    rc = ripc_client_request(c, T_LONG, NULL, 0, &r, -1);
    WCHECK(rc == -E2BIG && strlen(ripc_client_error(c)) == RIPC_ERR_TEXT_MAX, "long: %s, %zu bytes",
           ripc_strerror(rc), strlen(ripc_client_error(c)));
    ripc_client_close(c);

    /* By hand: a HELLO with max_message 3. */
    ripc__addr a;
    intptr_t fd;
    WCHECK(ripc__addr_parse(&a, F.url, NULL, 0) == 0 &&
               ripc__sock_connect(&a, &fd, 5000, NULL, 0) == 0,
           "connect");
    ripc__hello h = {.version_min = RIPC_PROTO_VERSION,
                     .version_max = RIPC_PROTO_VERSION,
                     .caps = RIPC_CAP_SOCKET,
                     .pid = (uint32_t)getpid(),
                     .max_message = 3};
    uint8_t buf[RIPC_FRAME_HDR + RIPC_HANDSHAKE_MAX];
    size_t plen = ripc__hello_encode(buf + RIPC_FRAME_HDR, RIPC_HANDSHAKE_MAX, &h);
    ripc__frame f = {.ftype = RIPC_FRAME_HELLO, .len = plen};
    ripc__frame_encode(buf, &f);
    WCHECK(ripc__sock_send_all(fd, buf, RIPC_FRAME_HDR + plen) == 0, "send HELLO");
    WCHECK(ripc__sock_recv_all(fd, buf, RIPC_FRAME_HDR, 10000) == 0 &&
               ripc__frame_decode(buf, &f, RIPC_HANDSHAKE_MAX) == 0,
           "answer");
    WCHECK(f.ftype == RIPC_FRAME_REJECT && f.type == EMSGSIZE,
           "HELLO max_message 3: frame %u code %u", (unsigned)f.ftype, (unsigned)f.type);
    ripc__sock_close(fd);
    return 0;
}

static void test_errors_small_max_message(void **state)
{
    (void)state;
    /* Transport left to the worker: the HELLO by hand asks for socket mode
     * and would get it, but for its max_message. */
    assert_int_equal(ripc_test_master_listen(&F.m, F.url, NULL), 0);
    ripc_server_handle(F.m.s, T_LONG, h_long, NULL);
    start(w_small_max, NULL);
    assert_int_equal(finish(), 0);
}

/* ---- reserved types at every entry point ---- */

static int w_reserved(void *arg)
{
    int go = (int)(intptr_t)arg;
    ripc_client *c = w_open(F.url);
    ripc_msg r;
    WCHECK(ripc_client_send(c, 0xF000, NULL, 0, 0) == -EINVAL, "send 0xF000");
    WCHECK(ripc_client_send(c, RIPC_MSG_ERROR, NULL, 0, 0) == -EINVAL, "send error type");
    WCHECK(ripc_client_request(c, 0xFFFF, NULL, 0, &r, 1000) == -EINVAL, "request 0xFFFF");
    char b;
    WCHECK(read(go, &b, 1) == 1, "go");
    /* The master's bad broadcasts sent nothing; its good one arrives. */
    int rc = ripc_client_recv(c, &r, 10000);
    WCHECK(rc == 0 && r.type == T_NOTE && r.len == 2 && memcmp(r.data, "ok", 2) == 0,
           "recv: %s (type %u)", ripc_strerror(rc), r.type);
    w_echo(c);
    ripc_client_close(c);
    return 0;
}

static void test_errors_reserved_types(void **state)
{
    (void)state;
    open_server(F.url);
    ripc_server_handle(F.m.s, T_ECHO, ripc_test_on_echo, NULL);
    assert_int_equal(ripc_server_handle(F.m.s, 0xF000, ripc_test_on_echo, NULL), -EINVAL);
    int go[2];
    assert_int_equal(pipe(go), 0);
    start(w_reserved, (void *)(intptr_t)go[0]);
    close(go[0]);
    assert_int_equal(ripc_test_master_await(&F.m, &F.m.joined, 1, 10000), 1);
    assert_int_equal(ripc_server_broadcast(F.m.s, 0xF000, "no", 2, 1000), -EINVAL);
    assert_int_equal(ripc_server_broadcast(F.m.s, 0xFFFF, NULL, 0, 1000), -EINVAL);
    assert_int_equal(ripc_server_broadcast(F.m.s, T_NOTE, NULL, 2, 1000), -EINVAL);
    assert_int_equal(ripc_server_send(F.m.s, 1, 0xF001, NULL, 0, 1000), -EINVAL);
    assert_int_equal(ripc_server_send(F.m.s, 999, 0xF001, NULL, 0, 1000), -EINVAL);
    assert_int_equal(ripc_server_broadcast(F.m.s, T_NOTE, "ok", 2, 1000), 1);
    assert_int_equal(write(go[1], "g", 1), 1);
    close(go[1]);
    assert_int_equal(finish(), 0);
}

/* ---- option values and the RIPC_TRANSPORT variable ---- */

struct bad_opt {
    const char *field, *value;
    ripc_options o;
};

static void expect_refused(const struct bad_opt *b, int client)
{
    char why[256] = "";
    int rc;
    if (client) {
        ripc_client *c = (ripc_client *)1;
        rc = ripc_client_open_ex(&c, F.url, &b->o, why, sizeof why);
        assert_null(c);
    } else {
        ripc_server *s = (ripc_server *)1;
        rc = ripc_server_open_ex(&s, F.url, &b->o, why, sizeof why);
        assert_null(s);
    }
    if (rc != -EINVAL || !strstr(why, b->field) || !strstr(why, b->value))
        fail_msg("%s %s = %s: %d (%s)", client ? "client" : "server", b->field, b->value, rc, why);
    print_message("%s: %s\n", client ? "client" : "server", why);
}

static void test_errors_option_values(void **state)
{
    (void)state;
    static const uint32_t uids[1] = {0};
    struct bad_opt bad[] = {
        {"transport", "7", {.transport = 7}},
        {"transport", "-1", {.transport = -1}},
        {"wait", "9", {.wait = 9}},
        {"doorbell", "42", {.doorbell = 42}},
        {"spin_us", "4000000000", {.spin_us = 4000000000u}},
        {"connect_timeout_ms", "-2", {.connect_timeout_ms = -2}},
        {"n_allow_uids", "2", {.n_allow_uids = 2}},
        {"ring_bytes", "5000", {.ring_bytes = 5000}},
        {"max_message", "3", {.max_message = 3}},
        {"max_message", "255", {.max_message = 255}},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        expect_refused(&bad[i], 0);
        expect_refused(&bad[i], 1);
    }
    /* The largest values in range are taken. */
    ripc_options ok = {.spin_us = 1000000,
                       .connect_timeout_ms = -1,
                       .doorbell = RIPC_DOORBELL_SOCKET,
                       .wait = RIPC_WAIT_BLOCK,
                       .transport = g_transport,
                       .allow_uids = uids,
                       .n_allow_uids = 1};
    char why[256] = "";
    int rc = ripc_server_open_ex(&F.m.s, F.url, &ok, why, sizeof why);
    if (rc != 0)
        fail_msg("in range: %s (%s)", ripc_strerror(rc), why);

    /* A RIPC_TRANSPORT that names no transport is refused, by both. */
    const char *old = getenv("RIPC_TRANSPORT");
    char *saved = old ? strdup(old) : NULL;
    setenv("RIPC_TRANSPORT", "sockets", 1);
    struct bad_opt env = {"RIPC_TRANSPORT", "sockets", {0}};
    expect_refused(&env, 0);
    expect_refused(&env, 1);
    setenv("RIPC_TRANSPORT", "", 1); /* empty: the option decides */
    ripc_client *c = NULL;
    ripc_options co = opts();
    start_run();
    rc = ripc_client_open_ex(&c, F.url, &co, why, sizeof why);
    if (rc != 0)
        fail_msg("empty RIPC_TRANSPORT: %s (%s)", ripc_strerror(rc), why);
    assert_string_equal(ripc_client_transport(c), g_transport_name);
    ripc_client_close(c);
    if (saved) {
        setenv("RIPC_TRANSPORT", saved, 1);
        free(saved);
    } else {
        unsetenv("RIPC_TRANSPORT");
    }
}

/* ---- URLs ---- */

static int w_abstract(void *arg)
{
    const char *url = arg;
    ripc_client *c = w_open(url);
    w_echo(c);
    ripc_client_close(c);
    return 0;
}

static void test_errors_abstract_socket(void **state)
{
    (void)state;
#ifndef RIPC_TEST_ABSTRACT
    /* Refused by both sides, with the reason. */
    ripc_options o0 = opts();
    ripc_server *s0 = NULL;
    ripc_client *c0 = NULL;
    char why0[256] = "";
    assert_int_equal(ripc_server_open_ex(&s0, "unix:@ripc-test", &o0, why0, sizeof why0), -ENOTSUP);
    assert_non_null(strstr(why0, "only on Linux"));
    print_message("server: %s\n", why0);
    assert_int_equal(ripc_client_open_ex(&c0, "unix:@ripc-test", &o0, why0, sizeof why0), -ENOTSUP);
    assert_non_null(strstr(why0, "only on Linux"));
    return;
#endif
    char url[96], got[128], why[256] = "";
    uint64_t rs = ripc_test_now_ms() ^ ((uint64_t)getpid() << 32);
    snprintf(url, sizeof url, "unix:@ripc-test-%d-%016llx", (int)getpid(),
             (unsigned long long)ripc_test_rand(&rs));
    open_server(url);
    ripc_server_handle(F.m.s, T_ECHO, ripc_test_on_echo, NULL);
    assert_int_equal(ripc_server_url(F.m.s, got, sizeof got), (int)strlen(url));
    assert_string_equal(got, url);
    /* No file of that name (relative to here, where a path would be). */
    struct stat st;
    assert_int_equal(lstat(url + 5, &st), -1);
    /* The name is taken while the server lives. */
    ripc_server *s2 = NULL;
    ripc_options o = opts();
    assert_int_equal(ripc_server_open_ex(&s2, url, &o, why, sizeof why), -EADDRINUSE);
    print_message("second server: %s\n", why);
    serve_worker(w_abstract, url);
    ripc_server_close(F.m.s);
    F.m.s = NULL;
    /* Closed: the name is free again at once (nothing stale to reclaim). */
    assert_int_equal(ripc_server_open_ex(&s2, url, &o, why, sizeof why), 0);
    ripc_server_close(s2);
}

/* Somebody else bound the abstract name first: a "master" running as
 * nobody (a forked child that drops root, then listens and never answers).
 * The worker must refuse it with -EACCES before sending anything, unless
 * its own allow_uids / allow_any_uid accept that uid (then it sends HELLO
 * and waits for an answer that never comes). */
#define NOBODY 65534u

static void test_errors_abstract_foreign_master(void **state)
{
    (void)state;
#ifndef RIPC_TEST_ABSTRACT
    print_message("SKIP: no abstract unix namespace here (test_errors_abstract_socket)\n");
    skip();
#endif
    if (geteuid() != 0) {
        print_message("SKIP: a master of another uid needs root here (to become nobody)\n");
        skip();
    }
    char url[96], why[256] = "";
    uint64_t rs = ripc_test_now_ms() ^ ((uint64_t)getpid() << 32);
    snprintf(url, sizeof url, "unix:@ripc-test-squat-%d-%016llx", (int)getpid(),
             (unsigned long long)ripc_test_rand(&rs));
    int ready[2], hold[2];
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(hold), 0);
    fflush(NULL);
    F.kid = fork();
    assert_true(F.kid >= 0);
    if (F.kid == 0) {
        close(ready[0]);
        close(hold[1]);
        WCHECK(setgid(NOBODY) == 0 && setuid(NOBODY) == 0, "become nobody");
        ripc__addr a;
        intptr_t lfd;
        WCHECK(ripc__addr_parse(&a, url, NULL, 0) == 0 && ripc__sock_listen(&a, &lfd, NULL, 0) == 0,
               "listen on %s", url);
        WCHECK(write(ready[1], "r", 1) == 1, "ready");
        char b;
        while (read(hold[0], &b, 1) > 0) /* until the test is done */
            ;
        _exit(0);
    }
    close(ready[1]);
    close(hold[0]);
    char b;
    assert_int_equal(read(ready[0], &b, 1), 1);
    close(ready[0]);

    ripc_options o = opts();
    o.connect_timeout_ms = 300;
    ripc_client *c = NULL;
    int rc = ripc_client_open_ex(&c, url, &o, why, sizeof why);
    print_message("refused: %s (%s)\n", ripc_strerror(rc), why);
    assert_int_equal(rc, -EACCES);
    assert_null(c);
    assert_non_null(strstr(why, "uid 65534"));

    static const uint32_t nobody[1] = {NOBODY};
    for (int how = 0; how < 2; how++) {
        ripc_options w = o;
        if (how == 0) {
            w.allow_uids = nobody;
            w.n_allow_uids = 1;
        } else {
            w.allow_any_uid = 1;
        }
        why[0] = 0;
        rc = ripc_client_open_ex(&c, url, &w, why, sizeof why);
        print_message("%s: %s (%s)\n", how ? "allow_any_uid" : "allow_uids", ripc_strerror(rc),
                      why);
        assert_true(rc < 0 && rc != -EACCES); /* accepted, then no answer */
        assert_null(c);
    }
    close(hold[1]);
    assert_int_equal(finish(), 0);
}

static void test_errors_malformed_urls(void **state)
{
    (void)state;
    static const struct {
        const char *url, *word;
    } cases[] = {
        {"unix://tmp/x", "unix:///tmp/x"},
        {"unix://", "absolute"},
#ifdef RIPC_TEST_ABSTRACT
        {"unix:@", "empty abstract"},
#endif
    };
    ripc_options o = opts();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char why[256] = "";
        ripc_server *s = NULL;
        ripc_client *c = NULL;
        int rc = ripc_server_open_ex(&s, cases[i].url, &o, why, sizeof why);
        if (rc != -EINVAL || !strstr(why, cases[i].word))
            fail_msg("server '%s': %d (%s)", cases[i].url, rc, why);
        rc = ripc_client_open_ex(&c, cases[i].url, &o, why, sizeof why);
        if (rc != -EINVAL || !strstr(why, cases[i].word))
            fail_msg("client '%s': %d (%s)", cases[i].url, rc, why);
        print_message("%s: %s\n", cases[i].url, why);
    }
}

/* ---- error texts fit every call that returns them ---- */

static void test_errors_texts(void **state)
{
    (void)state;
    char url[200], why[256] = "";
    snprintf(url, sizeof url, "unix:%s/no-such-dir/s.sock", F.dir);
    ripc_options o = opts();
    int rc = ripc_server_open_ex(&F.m.s, url, &o, why, sizeof why);
    assert_int_equal(rc, -ENOENT);
    print_message("missing directory: %s: %s\n", ripc_strerror(rc), why);
    assert_non_null(strstr(ripc_strerror(rc), "no such file or directory"));
    /* The same code from the other calls that return it. */
    assert_non_null(strstr(ripc_strerror(-ENOENT), "no such peer"));
    assert_non_null(strstr(ripc_strerror(-ENOENT), "no handler"));
    /* Permission: credentials, or a path we may not use. */
    assert_non_null(strstr(ripc_strerror(-EACCES), "credentials"));
    assert_non_null(strstr(ripc_strerror(-EACCES), "path"));
    static const int codes[] = {EAGAIN,       ETIMEDOUT, EPIPE,  EMSGSIZE, EPROTO,  EPROTONOSUPPORT,
                                ECONNREFUSED, ENOENT,    EINVAL, ENOMEM,   ENOBUFS, EADDRINUSE};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        assert_true(strlen(ripc_strerror(-codes[i])) > 5);
}

/* ---- a master whose error reply is malformed (socket mode) ----
 * A fake master here, built from the wire format: it welcomes the worker in
 * socket mode, reads its request and answers with a REPLY of a reserved type
 * whose payload breaks src/proto.h's rules. The worker's request must end
 * with -EPROTO (not crash, not return it as a reply), and the connection is
 * done after it. */

static int w_bad_error(void *arg)
{
    int variant = (int)(intptr_t)arg;
    ripc_options o = opts();
    o.transport = RIPC_TRANSPORT_SOCKET;
    ripc_client *c = NULL;
    char why[256] = "";
    int rc = ripc_client_open_ex(&c, F.url, &o, why, sizeof why);
    WCHECK(rc == 0, "open: %s (%s)", ripc_strerror(rc), why);
    ripc_msg r;
    rc = ripc_client_request(c, T_ECHO, "q", 1, &r, 10000);
    if (variant == 0) { /* the well-formed one */
        WCHECK(rc == -EPERM && strcmp(ripc_client_error(c), "fine") == 0, "valid: %d (%s) '%s'", rc,
               ripc_strerror(rc), ripc_client_error(c));
    } else {
        WCHECK(rc == -EPROTO, "variant %d: %d (%s)", variant, rc, ripc_strerror(rc));
        WCHECK(ripc_client_error(c)[0] == 0, "text '%s'", ripc_client_error(c));
        rc = ripc_client_request(c, T_ECHO, "q", 1, &r, 1000);
        WCHECK(rc == -EPIPE, "after: %d (%s)", rc, ripc_strerror(rc));
    }
    ripc_client_close(c);
    return 0;
}

static void fake_reply(int sock, int variant, uint64_t id)
{
    uint8_t pl[RIPC_ERR_FIXED + RIPC_ERR_TEXT_MAX + 8];
    size_t n = 0;
    uint16_t type = RIPC_MSG_ERROR;
    memset(pl, 'e', sizeof pl);
    switch (variant) {
    case 0: /* valid: EPERM, "fine" */
        n = ripc__err_encode(pl, EPERM, "fine", 1000);
        break;
    case 1: /* shorter than the code */
        n = 2;
        break;
    case 2: /* code 0 */
        n = ripc__err_encode(pl, 0, "zero", 1000);
        break;
    case 3: /* code beyond errno values */
        n = ripc__err_encode(pl, 5000, "big", 1000);
        break;
    case 4: /* a NUL in the text */
        n = ripc__err_encode(pl, EPERM, "a b", 1000);
        pl[RIPC_ERR_FIXED + 1] = 0;
        break;
    case 5: /* text longer than allowed */
        ripc__put32(pl, EPERM);
        n = sizeof pl;
        break;
    case 6: /* another reserved type */
        n = ripc__err_encode(pl, EPERM, "fine", 1000);
        type = 0xF00D;
        break;
    }
    uint8_t hdr[RIPC_FRAME_HDR];
    ripc__frame f = {
        .ftype = RIPC_FRAME_MSG, .kind = RIPC_KIND_REPLY, .type = type, .id = id, .len = n};
    ripc__frame_encode(hdr, &f);
    assert_int_equal(ripc__sock_send_all(sock, hdr, sizeof hdr), 0);
    assert_int_equal(ripc__sock_send_all(sock, pl, n), 0);
}

static void fake_master_once(intptr_t lfd, int variant)
{
    start_kid(w_bad_error, (void *)(intptr_t)variant);
    struct pollfd pf = {.fd = (int)lfd, .events = POLLIN};
    assert_int_equal(poll(&pf, 1, 10000), 1);
    intptr_t sock;
    assert_int_equal(ripc__sock_accept(lfd, &sock), 0);
    uint8_t buf[RIPC_FRAME_HDR + RIPC_HANDSHAKE_MAX];
    ripc__frame f;
    assert_int_equal(ripc__sock_recv_all(sock, buf, RIPC_FRAME_HDR, 10000), 0);
    assert_int_equal(ripc__frame_decode(buf, &f, RIPC_HANDSHAKE_MAX), 0);
    assert_int_equal(f.ftype, RIPC_FRAME_HELLO);
    assert_int_equal(ripc__sock_recv_all(sock, buf, (size_t)f.len, 10000), 0);
    ripc__welcome w = {.version = RIPC_PROTO_VERSION,
                       .transport = RIPC_XPORT_SOCKET,
                       .peer_id = 1,
                       .max_message = 1 << 20};
    snprintf(w.reason, sizeof w.reason, "fake master");
    size_t plen = ripc__welcome_encode(buf + RIPC_FRAME_HDR, RIPC_HANDSHAKE_MAX, &w);
    f = (ripc__frame){.ftype = RIPC_FRAME_WELCOME, .len = plen};
    ripc__frame_encode(buf, &f);
    assert_int_equal(ripc__sock_send_all(sock, buf, RIPC_FRAME_HDR + plen), 0);
    /* The request: a header and one byte. */
    assert_int_equal(ripc__sock_recv_all(sock, buf, RIPC_FRAME_HDR + 1, 10000), 0);
    assert_int_equal(ripc__frame_decode(buf, &f, 1 << 20), 0);
    assert_int_equal(f.kind, RIPC_KIND_REQUEST);
    fake_reply((int)sock, variant, f.id);
    int st = finish();
    if (st != 0)
        fail_msg("variant %d: worker status %d", variant, st);
    ripc__sock_close(sock);
}

static void test_errors_malformed_error_reply(void **state)
{
    (void)state;
    ripc__addr a;
    char why[256] = "";
    assert_int_equal(ripc__addr_parse(&a, F.url, why, sizeof why), 0);
    intptr_t lfd;
    assert_int_equal(ripc__sock_listen(&a, &lfd, why, sizeof why), 0);
    for (int v = 0; v <= 6; v++)
        fake_master_once(lfd, v);
    ripc__sock_unlink(&a, lfd);
    ripc__sock_close(lfd);
}

/* ---- main ---- */

int main(int argc, char **argv)
{
    if ((g_transport = ripc_test_transport_args(argc, argv, &g_transport_name)) < 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_errors_unhandled_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_reply_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_fallback_handler, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_small_max_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_reserved_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_option_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_malformed_urls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_abstract_socket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_abstract_foreign_master, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_texts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_malformed_error_reply, setup, teardown),
    };
    return RIPC_TEST_RUN_GROUP("errors", g_transport_name, tests);
}
