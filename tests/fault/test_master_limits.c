/*
 * The master's limits under hostile or unlucky conditions: its accept path
 * (handshake slots, a failing epoll registration, floods of connections
 * that never say HELLO), memory for socket-mode peers that announce large
 * frames and stall, running out of descriptors, and descriptors passed by a
 * worker whose close() blocks. The master is this process, driven by
 * ripc_server_poll(); attackers and honest workers are forked children.
 * Every case ends with an honest worker served within its connect timeout.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>

#include <cmocka.h>

#include "ringipc/ringipc.h"
#include "sockets/sock.h"
#include "src/proto.h"
#include "support/support.h"

#define T_ECHO            1
#define TOKEN             "limits-token"
#define HONEST_TIMEOUT_MS 2000

/* ---- a test-only fault: epoll registrations of connections fail ----
 * This executable's epoll_ctl takes the place of libc's for the library
 * linked into it (the static build): while fail_conn_adds is set, adding a
 * connected socket fails as the kernel does when it runs out of memory. */
static _Atomic int fail_conn_adds;

int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    if (op == EPOLL_CTL_ADD && atomic_load(&fail_conn_adds)) {
        int listening = 0;
        socklen_t sl = sizeof listening;
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &sl) == 0 && !listening) {
            errno = ENOMEM;
            return -1;
        }
    }
    return (int)syscall(SYS_epoll_ctl, epfd, op, fd, ev);
}

/* ---- state shared by the master and its children ---- */

struct shared {
    _Atomic int ready;   /* child -> master: the attack is in place */
    _Atomic int release; /* master -> child: you may go now */
    _Atomic int count;   /* child -> master: what it managed (connections, ...) */
};

static struct {
    ripc_server *s;
    char url[128];
    struct shared *sh;
    int joined, left;
} M;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void on_echo(ripc_peer *from, const ripc_msg *msg, void *arg)
{
    (void)arg;
    ripc_reply(from, msg, msg->data, msg->len);
}

static void on_join(ripc_peer *p, void *arg)
{
    (void)p;
    (void)arg;
    M.joined++;
}

static void on_leave(ripc_peer *p, int reason, void *arg)
{
    (void)p;
    (void)reason;
    (void)arg;
    M.left++;
}

static void open_master(const char *url, const ripc_options *opt)
{
    memset(&M, 0, sizeof M);
    M.sh = ripc_test_shared_alloc(sizeof *M.sh);
    memset(M.sh, 0, sizeof *M.sh);
    char why[160] = "";
    int rc = ripc_server_open_ex(&M.s, url, opt, why, sizeof why);
    if (rc < 0)
        fail_msg("server open %s: %s (%s)", url, ripc_strerror(rc), why);
    ripc_server_url(M.s, M.url, sizeof M.url);
    ripc_server_handle(M.s, T_ECHO, on_echo, NULL);
    ripc_server_on_peer(M.s, on_join, on_leave, NULL);
}

static void close_master(void)
{
    ripc_server_close(M.s);
    ripc_test_shared_free(M.sh, sizeof *M.sh);
}

static char unix_url[96];

static const char *fresh_unix_url(void)
{
    static int n;
    snprintf(unix_url, sizeof unix_url, "unix:/tmp/ripc-limits-%d-%d.sock", (int)getpid(), n++);
    return unix_url;
}

static pid_t spawn(int (*fn)(void *), void *arg)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(fn(arg)); /* never touches the inherited server */
    return pid;
}

/* Serve until the child exits (its exit code), or ms pass (-1). */
static int serve_until_exit(pid_t pid, int ms)
{
    uint64_t end = now_ms() + (uint64_t)ms;
    for (;;) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (now_ms() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        assert_true(ripc_server_poll(M.s, 10) >= 0);
    }
}

/* Serve until cond holds or ms pass. */
#define SERVE_UNTIL(cond, ms)                                                                      \
    do {                                                                                           \
        uint64_t end_ = now_ms() + (ms);                                                           \
        while (!(cond) && now_ms() < end_)                                                         \
            assert_true(ripc_server_poll(M.s, 10) >= 0);                                           \
    } while (0)

/* ---- the honest worker ---- */

struct honest_cfg {
    int transport;
    int timeout_ms; /* connect + handshake */
};

/* Connects within its connect timeout and gets ten echoes: exit 0. */
static int honest_worker(void *arg)
{
    const struct honest_cfg *cfg = arg;
    ripc_options opt = {.name = "honest",
                        .token = TOKEN,
                        .transport = cfg->transport,
                        .connect_timeout_ms = cfg->timeout_ms};
    ripc_client *c;
    char why[200] = "";
    uint64_t t0 = now_ms();
    int rc = ripc_client_open_ex(&c, M.url, &opt, why, sizeof why);
    if (rc < 0) {
        printf("honest: open after %llu ms: %s (%s)\n", (unsigned long long)(now_ms() - t0),
               ripc_strerror(rc), why);
        return 2;
    }
    for (uint64_t seq = 1; seq <= 10; seq++) {
        unsigned char buf[64];
        ripc_test_fill(buf, sizeof buf, seq);
        ripc_msg r;
        rc = ripc_client_request(c, T_ECHO, buf, sizeof buf, &r, 2000);
        if (rc < 0 || r.len != sizeof buf || !ripc_test_check(r.data, r.len, seq)) {
            printf("honest: request %llu: %s\n", (unsigned long long)seq, ripc_strerror(rc));
            ripc_client_close(c);
            return 3;
        }
    }
    ripc_client_close(c);
    return 0;
}

static void expect_honest_served(int transport)
{
    struct honest_cfg cfg = {.transport = transport, .timeout_ms = HONEST_TIMEOUT_MS};
    int j0 = M.joined;
    int st = serve_until_exit(spawn(honest_worker, &cfg), 3 * HONEST_TIMEOUT_MS + 5000);
    if (st != 0)
        fail_msg("the honest worker was not served (exit %d)", st);
    assert_true(M.joined > j0);
}

/* Wait for the child's "ready" while serving. */
static void serve_until_ready(int ms)
{
    SERVE_UNTIL(atomic_load(&M.sh->ready), (uint64_t)ms);
    assert_true(atomic_load(&M.sh->ready));
}

static int raw_connect(int timeout_ms)
{
    ripc__addr a;
    intptr_t fd;
    if (ripc__addr_parse(&a, M.url, NULL, 0) < 0 ||
        ripc__sock_connect(&a, &fd, timeout_ms, NULL, 0) < 0)
        return -1;
    return (int)fd;
}

/* Block until the master says release (or 60 s). */
static void hold_until_release(void)
{
    for (uint64_t end = now_ms() + 60000; !atomic_load(&M.sh->release) && now_ms() < end;)
        usleep(2000);
}

/* ---- (1) a failed epoll registration gives its handshake slot back ---- */

/* Connect n times; each connection is dropped by the master at once. */
static int connect_n_dropped(void *arg)
{
    int n = *(const int *)arg, ok = 0;
    for (int i = 0; i < n; i++) {
        int fd = raw_connect(1000);
        if (fd < 0)
            continue;
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        char b;
        if (poll(&pf, 1, 2000) == 1 && recv(fd, &b, 1, 0) == 0)
            ok++;
        close(fd);
    }
    atomic_store(&M.sh->count, ok);
    return 0;
}

static void test_limits_epoll_failure_slot(void **state)
{
    (void)state;
    ripc_options opt = {.connect_timeout_ms = 30000};
    open_master(fresh_unix_url(), &opt);
    atomic_store(&fail_conn_adds, 1);
    int n = 300;
    int st = serve_until_exit(spawn(connect_n_dropped, &n), 60000);
    atomic_store(&fail_conn_adds, 0);
    assert_int_equal(st, 0);
    assert_int_equal(atomic_load(&M.sh->count), n);
    /* A connection that has not said HELLO keeps its slot until its
     * deadline: joining next to it must not evict it, which a master that
     * believed its slots full (leaked by the failures) would do. */
    int silent = raw_connect(1000);
    assert_true(silent >= 0);
    expect_honest_served(RIPC_TRANSPORT_AUTO);
    SERVE_UNTIL(0, 50);
    struct pollfd pf = {.fd = silent, .events = POLLIN};
    if (poll(&pf, 1, 0) == 1)
        fail_msg("a silent connection was evicted long before its deadline");
    close(silent);
    close_master();
}

/* ---- (2) connections that never say HELLO cannot lock workers out ---- */

static int stall_connections(void *arg)
{
    int n = *(const int *)arg, *fds = calloc((size_t)n, sizeof *fds), ok = 0;
    for (int i = 0; i < n; i++)
        if ((fds[i] = raw_connect(200)) >= 0)
            ok++;
    atomic_store(&M.sh->count, ok);
    atomic_store(&M.sh->ready, 1);
    hold_until_release();
    return 0;
}

static void stalled_handshakes(const char *url)
{
    ripc_options opt = {.token = TOKEN}; /* the default handshake deadline: 5 s */
    open_master(url, &opt);
    int n = 300;
    pid_t att = spawn(stall_connections, &n);
    serve_until_ready(60000);
    assert_true(atomic_load(&M.sh->count) > 256);
    expect_honest_served(RIPC_TRANSPORT_AUTO);
    atomic_store(&M.sh->release, 1);
    assert_int_equal(serve_until_exit(att, 60000), 0);
    close_master();
}

static void test_limits_stalled_handshakes_unix(void **state)
{
    (void)state;
    stalled_handshakes(fresh_unix_url());
}

static void test_limits_stalled_handshakes_tcp(void **state)
{
    (void)state;
    stalled_handshakes("tcp://127.0.0.1:0");
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limits_epoll_failure_slot),
        cmocka_unit_test(test_limits_stalled_handshakes_unix),
        cmocka_unit_test(test_limits_stalled_handshakes_tcp),
    };
    static char filter[128];
    if (argc > 1) {
        snprintf(filter, sizeof filter, "*%s*", argv[1]);
        cmocka_set_test_filter(filter);
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
