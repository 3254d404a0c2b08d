/*
 * The master's limits under hostile or unlucky conditions: its accept path
 * (handshake slots, a failing epoll registration, floods of connections
 * that never say HELLO), a dispatch loop that cannot take a new peer,
 * memory for socket-mode peers that announce large frames and stall,
 * running out of descriptors, and descriptors passed by a worker whose
 * close() blocks. The master is this process, driven by ripc_server_poll()
 * (ripc_server_run(2) where a second loop is the point); attackers and
 * honest workers are forked children.
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
#include "sockets/closer.h"
#include "sockets/sock.h"
#include "src/proto.h"
#include "support/hconn.h"
#include "support/support.h"

#define T_ECHO 1
#define TOKEN  "limits-token"
/* The honest workers' connect and request timeouts: a bound on a hang, not
 * a speed (a loaded machine keeps a process off the CPU for seconds). A
 * case that checks the master serves them despite connections that hold
 * its handshake slots gives those connections a deadline past this. */
#define HONEST_TIMEOUT_MS 20000

/* ---- a test-only fault: epoll registrations of connections fail ----
 * This executable's epoll_ctl takes the place of libc's for the library
 * linked into it (the static build): while fail_conn_adds is set, adding a
 * connected socket fails as the kernel does when it runs out of memory.
 * While fail_other_set is an epoll set's descriptor (loop 0's), one
 * registration in any other set (another loop's) fails so, after
 * other_set_pass have gone through. */
static _Atomic int fail_conn_adds;
static _Atomic int fail_other_set = -1, other_set_pass, other_set_failed;

int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    int keep = atomic_load(&fail_other_set);
    if (op == EPOLL_CTL_ADD && keep >= 0 && epfd != keep &&
        atomic_fetch_sub(&other_set_pass, 1) == 0) {
        atomic_store(&fail_other_set, -1);
        atomic_fetch_add(&other_set_failed, 1);
        errno = ENOMEM;
        return -1;
    }
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
    _Atomic int gate;    /* master -> gated children: the last step that may start */
};

static struct {
    ripc_server *s;
    char url[128];
    struct shared *sh;
    /* callbacks: on the polling thread, or on run()'s loops */
    _Atomic int joined, left, left_stalled, left_reason;
} M;

static void on_join(ripc_peer *p, void *arg)
{
    (void)p;
    (void)arg;
    M.joined++;
}

static void on_leave(ripc_peer *p, int reason, void *arg)
{
    (void)p;
    (void)arg;
    M.left_reason = reason;
    M.left++;
    M.left_stalled += reason == -ETIMEDOUT;
}

static void open_master(const char *url, const ripc_options *opt)
{
    memset(&M, 0, sizeof M);
    M.sh = ripc_test_shared_alloc(sizeof *M.sh);
    assert_int_equal(ripc_test_echo_master(&M.s, url, opt, T_ECHO), 0);
    ripc_server_url(M.s, M.url, sizeof M.url);
    ripc_server_on_peer(M.s, on_join, on_leave, NULL);
}

static void close_master(void)
{
    ripc_server_close(M.s);
    ripc_test_shared_free(M.sh, sizeof *M.sh);
}

static const char *fresh_unix_url(void)
{
    static char url[96];
    ripc_test_unix_url(url, sizeof url, "limits");
    return url;
}

static pid_t spawn(int (*fn)(void *), void *arg)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int rc = fn(arg); /* never touches the inherited server */
        fflush(stdout);   /* what it printed, also when stdout is a pipe */
        _exit(rc);
    }
    return pid;
}

/* Serve until the child exits (its exit code), or ms pass (-1). */
static int serve_until_exit(pid_t pid, int ms)
{
    uint64_t end = ripc_test_now_ms() + (uint64_t)ms;
    for (;;) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (ripc_test_now_ms() > end) {
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
        uint64_t end_ = ripc_test_now_ms() + (ms);                                                 \
        while (!(cond) && ripc_test_now_ms() < end_)                                               \
            assert_true(ripc_server_poll(M.s, 10) >= 0);                                           \
    } while (0)

/* ---- the honest worker ---- */

/* A worker called name joins in transport (intptr_t) within its connect
 * timeout: 0, or it says why and returns 2 (its exit code). */
static int worker_open(const char *name, void *transport, ripc_client **c)
{
    ripc_options opt = {.name = name,
                        .token = TOKEN,
                        .transport = (int)(intptr_t)transport,
                        .connect_timeout_ms = HONEST_TIMEOUT_MS};
    char why[200] = "";
    uint64_t t0 = ripc_test_now_ms();
    int rc = ripc_client_open_ex(c, M.url, &opt, why, sizeof why);
    if (rc < 0) {
        printf("%s: open after %llu ms: %s (%s)\n", name,
               (unsigned long long)(ripc_test_now_ms() - t0), ripc_strerror(rc), why);
        return 2;
    }
    return 0;
}

/* Connects in transport (intptr_t) within its connect timeout and gets ten
 * echoes: exit 0. */
static int honest_worker(void *arg)
{
    ripc_client *c;
    int rc = worker_open("honest", arg, &c);
    if (rc)
        return rc;
    ripc_test_tally t = {0};
    for (uint64_t seq = 1; seq <= 10; seq++) {
        if ((rc = ripc_test_echo_request(c, T_ECHO, seq, 64, HONEST_TIMEOUT_MS, &t)) < 0) {
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
    int j0 = M.joined;
    int st = serve_until_exit(spawn(honest_worker, (void *)(intptr_t)transport),
                              2 * HONEST_TIMEOUT_MS + 10000);
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

/* Block until the master says release (or 60 s). */
static void hold_until_release(void)
{
    for (uint64_t end = ripc_test_now_ms() + 60000;
         !atomic_load(&M.sh->release) && ripc_test_now_ms() < end;)
        usleep(2000);
}

/* ---- (1) a failed epoll registration gives its handshake slot back ---- */

/* Connect n times; each connection is dropped by the master at once. */
static int connect_n_dropped(void *arg)
{
    int n = *(const int *)arg, ok = 0;
    for (int i = 0; i < n; i++) {
        int fd = ripc_test_hconnect_within(M.url, 1000);
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
    if (ripc_server_fd(M.s) == -ENOTSUP) {
        close_master();
        print_message("SKIP: the fault comes through epoll_ctl; this build polls with poll(2)\n");
        skip();
    }
    atomic_store(&fail_conn_adds, 1);
    int n = 300;
    int st = serve_until_exit(spawn(connect_n_dropped, &n), 60000);
    atomic_store(&fail_conn_adds, 0);
    assert_int_equal(st, 0);
    assert_int_equal(atomic_load(&M.sh->count), n);
    /* A connection that has not said HELLO keeps its slot until its
     * deadline: joining next to it must not evict it, which a master that
     * believed its slots full (leaked by the failures) would do. */
    int silent = ripc_test_hconnect_within(M.url, 1000);
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
        if ((fds[i] = ripc_test_hconnect_within(M.url, 200)) >= 0)
            ok++;
    atomic_store(&M.sh->count, ok);
    atomic_store(&M.sh->ready, 1);
    hold_until_release();
    return 0;
}

static void stalled_handshakes(const char *url)
{
    /* Deadlines past the honest worker's timeout: it joins by taking the
     * slot of one of them, or not in time. */
    ripc_options opt = {.token = TOKEN, .connect_timeout_ms = 3 * HONEST_TIMEOUT_MS};
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

/* ---- (2b) a full set of handshakes: one eviction per connection ----
 * The slots full, a connection that arrives takes the oldest one's slot,
 * and only that one: the accept that finds nobody waiting evicts nothing
 * (it could be an honest worker in the middle of its HELLO). */
static int is_dropped(int fd)
{
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    return poll(&pf, 1, 0) == 1;
}

#define SLOTS 256 /* the master's handshake slots */

/* Let the master accept what is waiting: it takes up to 64 a round. */
static void accept_rounds(void)
{
    for (int r = 0; r < 3; r++)
        assert_true(ripc_server_poll(M.s, 0) >= 0);
}

/* A master with long handshake deadlines and all its slots taken, by the
 * connections fds[0..SLOTS-1] (oldest first) that have not said HELLO. */
static void fill_slots(int fds[SLOTS + 1])
{
    ripc_options opt = {.connect_timeout_ms = 60000};
    open_master(fresh_unix_url(), &opt);
    /* A batch at a time, each accepted before the next. */
    for (int i = 0; i < SLOTS; i++) {
        fds[i] = ripc_test_hconnect_within(M.url, 1000);
        assert_true(fds[i] >= 0);
        if (i % 32 == 31)
            accept_rounds();
    }
}

/* One connection, fds[SLOTS], arrived after fill_slots: the oldest gave
 * its slot (the master closed it: readable at once), and only it. Closes
 * the connections and the master. */
static void expect_oldest_evicted(int fds[SLOTS + 1])
{
    struct pollfd pf = {.fd = fds[0], .events = POLLIN};
    assert_int_equal(poll(&pf, 1, 5000), 1);
    for (int i = 1; i <= SLOTS; i++)
        if (is_dropped(fds[i]))
            fail_msg("connection %d dropped too: one arrival evicts one", i);
    for (int i = 0; i <= SLOTS; i++)
        close(fds[i]);
    close_master();
}

static void test_limits_full_slots_evict_one(void **state)
{
    (void)state;
    int fds[SLOTS + 1];
    fill_slots(fds);
    for (int i = 0; i < SLOTS; i++)
        if (is_dropped(fds[i]))
            fail_msg("connection %d of %d dropped with no one waiting for its slot", i, SLOTS);
    fds[SLOTS] = ripc_test_hconnect_within(M.url, 1000);
    assert_true(fds[SLOTS] >= 0);
    accept_rounds();
    expect_oldest_evicted(fds);
}

/* ---- (3) slow and hostile peers in socket mode ---- */

#define SLOW_MAX_MESSAGE ((uint64_t)4 << 20)
#define SLOW_PEERS       40

/* A socket-mode handshake done by hand (the master's max_message to
 * *max_message when not NULL): the socket, or -1. */
static int socket_mode_peer(const char *name, uint64_t *max_message)
{
    int sock = ripc_test_hconnect_within(M.url, 5000);
    if (sock < 0)
        return -1;
    if (ripc_test_socket_hello(sock, name, max_message) < 0) {
        close(sock);
        return -1;
    }
    return sock;
}

/* SLOW_PEERS peers each announce a max_message frame and send all of it
 * but its last byte, as fast as the master takes it; then they stall. */
static int slow_peers(void *arg)
{
    (void)arg;
    static int fd[SLOW_PEERS];
    static size_t left[SLOW_PEERS];
    static uint8_t junk[256 * 1024];
    memset(junk, 0x33, sizeof junk);
    for (int i = 0; i < SLOW_PEERS; i++) {
        char name[32];
        snprintf(name, sizeof name, "slow-%d", i);
        if ((fd[i] = socket_mode_peer(name, NULL)) < 0)
            return 2;
        uint8_t hdr[RIPC_FRAME_HDR];
        ripc__frame f = {.ftype = RIPC_FRAME_MSG, .type = T_ECHO, .len = SLOW_MAX_MESSAGE};
        ripc__frame_encode(hdr, &f);
        if (ripc__sock_send_all(fd[i], hdr, sizeof hdr) < 0)
            return 3;
        ripc__sock_set_nonblock(fd[i], 1);
        left[i] = SLOW_MAX_MESSAGE - 1;
    }
    uint64_t quiet_since = ripc_test_now_ms();
    while (!atomic_load(&M.sh->release)) {
        int moved = 0, open = 0;
        for (int i = 0; i < SLOW_PEERS; i++) {
            if (fd[i] < 0)
                continue;
            open++;
            size_t n = left[i] < sizeof junk ? left[i] : sizeof junk;
            ssize_t k = n ? send(fd[i], junk, n, MSG_DONTWAIT | MSG_NOSIGNAL) : 0;
            if (k > 0) {
                left[i] -= (size_t)k;
                moved = 1;
            } else if (k < 0 && errno != EAGAIN) {
                close(fd[i]); /* dropped */
                fd[i] = -1;
                atomic_fetch_add(&M.sh->count, 1);
            } else if (!ripc__sock_alive(fd[i])) {
                close(fd[i]);
                fd[i] = -1;
                atomic_fetch_add(&M.sh->count, 1);
            }
        }
        if (moved)
            quiet_since = ripc_test_now_ms();
        else if (ripc_test_now_ms() - quiet_since > 300)
            atomic_store(&M.sh->ready, 1); /* everything stalls */
        if (!moved)
            usleep(10000);
        if (!open)
            break;
    }
    atomic_store(&M.sh->ready, 1);
    return 0;
}

static size_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, res = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &res) != 2)
        res = 0;
    fclose(f);
    return res * (size_t)sysconf(_SC_PAGESIZE);
}

#if defined(__SANITIZE_ADDRESS__)
#define RSS_CHECKED 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RSS_CHECKED 0
#endif
#endif
#ifndef RSS_CHECKED
#define RSS_CHECKED 1
#endif

/* The master's memory grew by at most what src/internal.h promises for
 * `peers` socket-mode workers (RIPC_RX_SERVER_BUDGET, as 2 x max_message is
 * less here, plus a base each), with some slack for the allocator. */
static void expect_growth_bounded(size_t growth, int peers)
{
    size_t bound = ((size_t)64 << 20) + (size_t)peers * 256 * 1024;
    printf("master RSS: +%zu KiB at peak (bound %zu KiB + slack)\n", growth >> 10, bound >> 10);
    if (!RSS_CHECKED)
        printf("(not checked: ASan keeps freed memory in quarantine)\n");
    else if (growth > bound + ((size_t)24 << 20))
        fail_msg("the master's memory grew past its bound");
}

/* The honest worker's large request: over its receive buffer's base, so it
 * needs budget, which stalled peers hold. */
static int honest_large(void *arg)
{
    (void)arg;
    ripc_options opt = {.name = "honest-large",
                        .transport = RIPC_TRANSPORT_SOCKET,
                        .connect_timeout_ms = HONEST_TIMEOUT_MS};
    ripc_client *c;
    char why[200] = "";
    uint64_t t0 = ripc_test_now_ms();
    int rc = ripc_client_open_ex(&c, M.url, &opt, why, sizeof why);
    if (rc < 0) {
        printf("honest-large: open after %llu ms: %s (%s)\n",
               (unsigned long long)(ripc_test_now_ms() - t0), ripc_strerror(rc), why);
        return 2;
    }
    size_t len = (size_t)SLOW_MAX_MESSAGE - 1024; /* more than what stalled peers leave */
    uint8_t *buf = malloc(len);
    ripc_test_fill(buf, len, 7);
    ripc_msg r;
    t0 = ripc_test_now_ms();
    rc = ripc_client_request(c, T_ECHO, buf, len, &r, 30000);
    int ok = rc == 0 && r.len == len && ripc_test_check(r.data, len, 7);
    if (!ok)
        printf("honest-large: request after %llu ms: %s\n",
               (unsigned long long)(ripc_test_now_ms() - t0), ripc_strerror(rc));
    free(buf);
    ripc_client_close(c);
    return ok ? 0 : 3;
}

static void test_limits_slow_socket_peers(void **state)
{
    (void)state;
    ripc_options opt = {.max_message = SLOW_MAX_MESSAGE};
    open_master(fresh_unix_url(), &opt);
    size_t rss0 = rss_bytes(), peak = rss0;
    pid_t att = spawn(slow_peers, NULL);
    uint64_t end = ripc_test_now_ms() + 60000;
    while (!atomic_load(&M.sh->ready) && ripc_test_now_ms() < end) {
        assert_true(ripc_server_poll(M.s, 10) >= 0);
        size_t r = rss_bytes();
        peak = r > peak ? r : peak;
    }
    assert_true(atomic_load(&M.sh->ready));
    /* Nothing to do but wait for stalled peers: no spinning. */
    double c0 = ripc_test_cpu_seconds();
    uint64_t t0 = ripc_test_now_ms();
    SERVE_UNTIL(0, 1000);
    double used = ripc_test_cpu_seconds() - c0, wall = (double)(ripc_test_now_ms() - t0) / 1e3;
    printf("master CPU with stalled peers: %.3f s in %.3f s\n", used, wall);
    if (used > wall / 10)
        fail_msg("the master burnt %.3f s of CPU in %.3f s with stalled peers", used, wall);
    /* Small messages are served at once; a large one once the stalled
     * holders of the budget are dropped. */
    expect_honest_served(RIPC_TRANSPORT_SOCKET);
    pid_t big = spawn(honest_large, NULL);
    int st = -1;
    for (end = ripc_test_now_ms() + HONEST_TIMEOUT_MS + 40000; ripc_test_now_ms() < end;) {
        assert_true(ripc_server_poll(M.s, 10) >= 0);
        size_t r = rss_bytes();
        peak = r > peak ? r : peak;
        if (waitpid(big, &st, WNOHANG) == big)
            break;
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        kill(big, SIGKILL);
        fail_msg("the honest large request was not served (status 0x%x)", (unsigned)st);
    }
    expect_growth_bounded(peak - rss0, SLOW_PEERS + 2);
    atomic_store(&M.sh->release, 1);
    assert_int_equal(serve_until_exit(att, 30000), 0);
    assert_true(M.left_stalled > 0); /* stalled holders were dropped, with the reason */
    close_master();
}

/* Socket-mode peers that never read: what the master cannot send them in
 * time waits in tails, within the same budget. */
static int deaf_peers(void *arg)
{
    (void)arg;
    int fds[SLOW_PEERS];
    for (int i = 0; i < SLOW_PEERS; i++) {
        char name[32];
        snprintf(name, sizeof name, "deaf-%d", i);
        if ((fds[i] = socket_mode_peer(name, NULL)) < 0)
            return 2;
    }
    atomic_store(&M.sh->ready, 1);
    hold_until_release();
    return 0;
}

static void test_limits_deaf_socket_peers(void **state)
{
    (void)state;
    ripc_options opt = {.max_message = SLOW_MAX_MESSAGE};
    open_master(fresh_unix_url(), &opt);
    size_t len = (size_t)SLOW_MAX_MESSAGE;
    uint8_t *msg = malloc(len);
    assert_non_null(msg);
    memset(msg, 0x44, len);
    pid_t att = spawn(deaf_peers, NULL);
    serve_until_ready(30000);
    SERVE_UNTIL(M.joined == SLOW_PEERS, 10000);
    assert_int_equal(M.joined, SLOW_PEERS);
    size_t rss0 = rss_bytes();
    int reached = ripc_server_broadcast(M.s, T_ECHO, msg, len, 50);
    size_t peak = rss_bytes();
    printf("broadcast of %zu KiB reached %d of %d deaf peers\n", len >> 10, reached, SLOW_PEERS);
    expect_growth_bounded(peak > rss0 ? peak - rss0 : 0, SLOW_PEERS);
    SERVE_UNTIL(0, 200);
    expect_honest_served(RIPC_TRANSPORT_SOCKET);
    atomic_store(&M.sh->release, 1);
    assert_int_equal(serve_until_exit(att, 30000), 0);
    free(msg);
    close_master();
}

/* ---- (3b) peers that hold the receive budget with a trickle ----
 * Two socket-mode peers announce max_message frames (the master grows
 * their receive buffers for them: nearly the whole budget) and then send a
 * byte every 200 ms, never stalling for the 2 s of the stall rule. A worker
 * holding budget others wait for must move a share of it every period
 * (src/internal.h): the honest worker's large request must be served, and
 * a trickler dropped with -ETIMEDOUT within a period or two of its wait
 * (one is enough: then nobody waits, and the other may keep its frame). */

#define TRICKLERS       2
#define TRICKLE_MAX_MSG ((uint64_t)64 << 20)

static int tricklers(void *arg)
{
    (void)arg;
    int fd[TRICKLERS];
    for (int i = 0; i < TRICKLERS; i++) {
        char name[32];
        snprintf(name, sizeof name, "trickle-%d", i);
        uint64_t max = 0;
        int sock = socket_mode_peer(name, &max);
        if (sock < 0 || max != TRICKLE_MAX_MSG)
            return 2;
        uint8_t hdr[RIPC_FRAME_HDR + 1] = {0};
        ripc__frame f = {.ftype = RIPC_FRAME_MSG, .type = T_ECHO, .len = max};
        ripc__frame_encode(hdr, &f);
        if (ripc__sock_send_all(sock, hdr, sizeof hdr) < 0)
            return 3;
        fd[i] = sock;
    }
    /* Ready once the master has read the headers (and so holds the budget
     * for both frames: it grows a buffer as soon as it sees a header). */
    for (int i = 0; i < TRICKLERS; i++)
        while (ripc_test_unread(fd[i]) > 0)
            usleep(1000);
    atomic_store(&M.sh->ready, 1);
    int open = TRICKLERS;
    while (open && !atomic_load(&M.sh->release)) {
        usleep(200000);
        for (int i = 0; i < TRICKLERS; i++)
            if (fd[i] >= 0 && (send(fd[i], "t", 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 ||
                               !ripc__sock_alive(fd[i]))) {
                close(fd[i]); /* dropped */
                fd[i] = -1;
                open--;
                atomic_fetch_add(&M.sh->count, 1);
            }
    }
    return 0;
}

static void test_limits_trickling_socket_peers(void **state)
{
    (void)state;
    ripc_options opt = {.max_message = TRICKLE_MAX_MSG};
    open_master(fresh_unix_url(), &opt);
    pid_t att = spawn(tricklers, NULL);
    serve_until_ready(30000);
    SERVE_UNTIL(M.joined == TRICKLERS, 10000);
    assert_int_equal(M.joined, TRICKLERS);
    /* The headers are in; the honest worker's handshake takes several
     * rounds more, in which the master grows the tricklers' buffers. */
    uint64_t t0 = ripc_test_now_ms();
    pid_t big = spawn(honest_large, NULL);
    SERVE_UNTIL(M.left_stalled > 0, 30000);
    uint64_t dropped_ms = ripc_test_now_ms() - t0;
    int st = serve_until_exit(big, HONEST_TIMEOUT_MS + 40000);
    printf("first trickler dropped (-ETIMEDOUT) after %llu ms, %d of %d in all; honest large "
           "request: exit %d\n",
           (unsigned long long)dropped_ms, M.left_stalled, TRICKLERS, st);
    if (st != 0)
        fail_msg("the honest large request was not served (exit %d)", st);
    assert_true(M.left_stalled > 0);
    /* One period of the rule after the honest worker began to wait, two at
     * the most, with room for a loaded machine. */
    if (dropped_ms > 2 * 2000 + 6000)
        fail_msg("no trickler was dropped within %llu ms", (unsigned long long)dropped_ms);
    atomic_store(&M.sh->release, 1);
    assert_int_equal(serve_until_exit(att, 30000), 0);
    close_master();
}

/* ---- (4) the master runs out of descriptors ---- */

#define FD_WORKERS 30

struct fd_results {
    _Atomic int reported;
    int rc[FD_WORKERS];
    char why[FD_WORKERS][200];
};

static struct fd_results *FR;
static struct rlimit fd_limit_saved;

static int open_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 4096; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            n++;
    return n;
}

/* Worker i: join (or learn why not), then hold on until released. */
static int fd_worker(void *arg)
{
    int i = (int)(intptr_t)arg;
    setrlimit(RLIMIT_NOFILE, &fd_limit_saved); /* only the master is short */
    char name[32];
    snprintf(name, sizeof name, "fdw-%d", i);
    ripc_options opt = {.name = name, .connect_timeout_ms = 3000};
    ripc_client *c = NULL;
    FR->rc[i] = ripc_client_open_ex(&c, M.url, &opt, FR->why[i], sizeof FR->why[i]);
    if (FR->rc[i] == 0) {
        ripc_msg r;
        FR->rc[i] = ripc_client_request(c, T_ECHO, "x", 1, &r, 3000);
        if (FR->rc[i] < 0)
            snprintf(FR->why[i], sizeof FR->why[i], "request failed");
    }
    atomic_fetch_add(&FR->reported, 1);
    if (c)
        hold_until_release();
    ripc_client_close(c);
    return 0;
}

static void test_limits_out_of_descriptors(void **state)
{
    (void)state;
    open_master(fresh_unix_url(), NULL);
    FR = ripc_test_shared_alloc(sizeof *FR);
    memset(FR, 0, sizeof *FR);
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &fd_limit_saved), 0);
    struct rlimit low = fd_limit_saved;
    low.rlim_cur = (rlim_t)open_fds() + 10;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    pid_t pid[FD_WORKERS];
    for (int i = 0; i < FD_WORKERS; i++)
        pid[i] = spawn(fd_worker, (void *)(intptr_t)i);
    SERVE_UNTIL(atomic_load(&FR->reported) == FD_WORKERS, 30000);
    assert_int_equal(atomic_load(&FR->reported), FD_WORKERS);
    int ok = 0, refused = 0;
    for (int i = 0; i < FD_WORKERS; i++) {
        if (FR->rc[i] == 0) {
            ok++;
            continue;
        }
        refused++;
        printf("worker %d: %s (%s)\n", i, ripc_strerror(FR->rc[i]), FR->why[i]);
        if (!strstr(FR->why[i], "descriptors") && !strstr(FR->why[i], "open files"))
            fail_msg("worker %d refused without the reason: %s", i, FR->why[i]);
    }
    printf("%d workers joined, %d refused with the reason\n", ok, refused);
    int named = 0;
    for (int i = 0; i < FD_WORKERS; i++)
        named += FR->rc[i] != 0 && strstr(FR->why[i], "RLIMIT_NOFILE") != NULL;
    if (named == 0)
        fail_msg("no refused worker was told which limit was reached");
    assert_true(ok > 0);
    assert_true(refused > 0);
    /* At the limit with nothing to do: no spinning. */
    double c0 = ripc_test_cpu_seconds();
    uint64_t t0 = ripc_test_now_ms();
    SERVE_UNTIL(0, 500);
    double used = ripc_test_cpu_seconds() - c0, wall = (double)(ripc_test_now_ms() - t0) / 1e3;
    if (used > wall / 10)
        fail_msg("the master burnt %.3f s of CPU in %.3f s out of descriptors", used, wall);
    /* Workers leave: the master takes new ones again. */
    atomic_store(&M.sh->release, 1);
    for (int i = 0; i < FD_WORKERS; i++)
        assert_int_equal(serve_until_exit(pid[i], 10000), 0);
    SERVE_UNTIL(M.left == ok, 5000);
    expect_honest_served(RIPC_TRANSPORT_AUTO);
    setrlimit(RLIMIT_NOFILE, &fd_limit_saved);
    ripc_test_shared_free(FR, sizeof *FR);
    close_master();
}

/* ---- (2c) an eviction and the evicted one's bytes in one batch ----
 * The slots full, a connection arrives, and then the oldest handshake sends
 * a byte: one look at the sockets finds the listener first and the oldest's
 * socket after it. The eviction the arrival causes must not free a peer
 * whose event is still to be handled in that look (ASan: use after free). */
static void test_limits_evict_with_event_pending(void **state)
{
    (void)state;
    int fds[SLOTS + 1];
    fill_slots(fds);
    fds[SLOTS] = ripc_test_hconnect_within(M.url, 1000); /* the listener is ready first ... */
    assert_true(fds[SLOTS] >= 0);
    uint8_t junk = 0x5a; /* ... then the oldest handshake's socket */
    assert_int_equal(send(fds[0], &junk, 1, MSG_NOSIGNAL), 1);
    accept_rounds();
    expect_oldest_evicted(fds); /* (or refused for its junk) */
}

/* ---- (2d) an arrival, and a handshake that ends, in one batch ----
 * The slots full, a connection arrives, and then the newest handshake
 * sends its whole HELLO: one look at the sockets finds the listener first
 * (an eviction is due) and the HELLO after it (a slot frees). The slot the
 * arrival needed is there then: nobody is evicted. */
static void test_limits_evict_none_when_one_finishes(void **state)
{
    (void)state;
    int fds[SLOTS + 1];
    fill_slots(fds);
    fds[SLOTS] = ripc_test_hconnect_within(M.url, 1000); /* the listener is ready first ... */
    assert_true(fds[SLOTS] >= 0);
    uint8_t hello[RIPC_FRAME_HDR + RIPC_HANDSHAKE_MAX]; /* ... then a whole HELLO */
    size_t n = ripc_test_hello(hello, "late", 0, RIPC_XPORT_SOCKET);
    assert_int_equal(ripc__sock_send_all(fds[SLOTS - 1], hello, n), 0);
    accept_rounds();
    for (int i = 0; i <= SLOTS; i++)
        if (i != SLOTS - 1 && is_dropped(fds[i]))
            fail_msg("connection %d dropped: a handshake ended, its slot was free", i);
    for (int i = 0; i <= SLOTS; i++)
        close(fds[i]);
    close_master();
}

/* ---- (5) ripc_server_open raises the soft descriptor limit ---- */

/* In a child: soft limit lowered to 256, a server opened; the soft limit
 * is then the hard one, or stays 256 with RIPC_NOFILE=keep. 0 when so. */
static int nofile_child(void *arg)
{
    int keep = (int)(intptr_t)arg;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_max <= 256)
        return 77;
    rl.rlim_cur = 256;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 77;
    if (keep)
        setenv("RIPC_NOFILE", "keep", 1);
    ripc_server *s;
    if (ripc_server_open(&s, fresh_unix_url(), NULL) != 0)
        return 2;
    struct rlimit now;
    getrlimit(RLIMIT_NOFILE, &now);
    ripc_server_close(s);
    printf("soft limit after open%s: %llu (hard %llu)\n", keep ? " (RIPC_NOFILE=keep)" : "",
           (unsigned long long)now.rlim_cur, (unsigned long long)now.rlim_max);
    return now.rlim_cur == (keep ? 256 : rl.rlim_max) ? 0 : 1;
}

static void test_limits_open_raises_nofile(void **state)
{
    (void)state;
    for (int keep = 0; keep < 2; keep++) {
        pid_t pid = spawn(nofile_child, (void *)(intptr_t)keep);
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st));
        if (WEXITSTATUS(st) == 77)
            skip();
        assert_int_equal(WEXITSTATUS(st), 0);
    }
}

/* ---- (6) a loop that cannot take a new peer drops it ----
 * Under run(2) the second worker is handed from loop 0 to loop 1, which
 * registers its socket (and in shm mode its doorbell) in its own epoll set.
 * When a registration fails, as when the kernel is out of memory, the
 * peer must be dropped there and then: its worker sees the connection end,
 * `left` gets the error, the master keeps none of its descriptors, and the
 * next worker is taken on that loop as usual. */

/* Wait (no sleeps to order anything: a bounded look at a condition that
 * other threads make true) until cond holds or ms pass. */
#define WAIT_UNTIL(cond, ms)                                                                       \
    do {                                                                                           \
        uint64_t end_ = ripc_test_now_ms() + (ms);                                                 \
        while (!(cond) && ripc_test_now_ms() < end_)                                               \
            usleep(1000);                                                                          \
    } while (0)

/* Joins in transport (intptr_t) and stays until released. */
static int holding_worker(void *arg)
{
    ripc_client *c;
    int rc = worker_open("holder", arg, &c);
    if (rc)
        return rc;
    hold_until_release();
    ripc_client_close(c);
    return 0;
}

/* Joins in transport (intptr_t); the master then drops it: its recv must
 * say so (-EPIPE) well within its timeout. */
static int dropped_worker(void *arg)
{
    ripc_client *c;
    int rc = worker_open("unplaced", arg, &c);
    if (rc)
        return rc;
    ripc_msg m;
    rc = ripc_client_recv(c, &m, HONEST_TIMEOUT_MS);
    ripc_client_close(c);
    if (rc != -EPIPE) {
        printf("unplaced: recv: %s, expected the connection's end\n", ripc_strerror(rc));
        return 3;
    }
    return 0;
}

/* A child forked before run()'s threads start (a fork while one of them
 * allocates could leave the child's allocator locked), which begins once
 * the master opens its gate at `step`. */
struct gated {
    int (*fn)(void *);
    void *arg;
    int step;
};

static int gated_main(void *arg)
{
    const struct gated *g = arg;
    for (uint64_t end = ripc_test_now_ms() + 3 * HONEST_TIMEOUT_MS + 20000;
         atomic_load(&M.sh->gate) < g->step && ripc_test_now_ms() < end;)
        usleep(1000);
    if (atomic_load(&M.sh->gate) < g->step) {
        printf("gated worker %d: never started\n", g->step);
        return 4;
    }
    return g->fn(g->arg);
}

/* pass: registrations in loop 1's set that succeed before the one that
 * fails (shm mode: 0 the socket, 1 the doorbell). */
static void adopt_failure(int transport, int pass)
{
    ripc_options opt = {.token = TOKEN};
    open_master(fresh_unix_url(), &opt);
    int ep0 = ripc_server_fd(M.s);
    if (ep0 == -ENOTSUP) {
        close_master();
        print_message("SKIP: the fault comes through epoll_ctl; this build polls with poll(2)\n");
        skip();
    }
    void *t = (void *)(intptr_t)transport;
    struct gated dropped = {dropped_worker, t, 1}, honest = {honest_worker, t, 2};
    pid_t holder = spawn(holding_worker, t); /* loop 0 */
    pid_t dropped_pid = spawn(gated_main, &dropped), honest_pid = spawn(gated_main, &honest);
    ripc_test_runner run;
    assert_int_equal(ripc_test_run_start(&run, M.s, 2), 0);
    WAIT_UNTIL(M.joined == 1, 2 * HONEST_TIMEOUT_MS);
    assert_int_equal(M.joined, 1);
    ripc__fd_dispose_wait();
    int fds0 = ripc_test_count_fds();
    atomic_store(&other_set_failed, 0);
    atomic_store(&other_set_pass, pass);
    atomic_store(&fail_other_set, ep0);
    atomic_store(&M.sh->gate, 1);
    int st = ripc_test_wait(dropped_pid); /* loop 1 */
    atomic_store(&fail_other_set, -1);
    print_message("%s, registration %d in loop 1 failed: worker exit %d, left %d (%s)\n",
                  transport == RIPC_TRANSPORT_SOCKET ? "socket" : "shm", pass, st, M.left,
                  ripc_strerror(M.left_reason));
    assert_int_equal(atomic_load(&other_set_failed), 1);
    assert_int_equal(st, 0);
    assert_int_equal(M.joined, 2);
    assert_int_equal(M.left, 1);
    assert_int_equal(M.left_reason, -ENOMEM);
    assert_int_equal(ripc_server_peer_count(M.s), 1);
    /* The worker saw its socket shut; the master closes what it held right
     * after that, on loop 1's thread. */
    int fds = -1;
    for (uint64_t end = ripc_test_now_ms() + 10000; ripc_test_now_ms() < end; usleep(1000)) {
        ripc__fd_dispose_wait();
        if ((fds = ripc_test_count_fds()) == fds0)
            break;
    }
    assert_int_equal(fds, fds0);
    /* Loop 1 is still the least loaded: the next worker goes there. */
    atomic_store(&M.sh->gate, 2);
    assert_int_equal(ripc_test_wait(honest_pid), 0);
    atomic_store(&M.sh->release, 1);
    assert_int_equal(ripc_test_wait(holder), 0);
    WAIT_UNTIL(M.left == 3, 10000);
    assert_int_equal(M.left, 3);
    ripc_server_stop(M.s);
    assert_int_equal(ripc_test_run_join(&run), 0);
    close_master();
}

static void test_limits_adopt_failure_shm_socket(void **state)
{
    (void)state;
    adopt_failure(RIPC_TRANSPORT_SHM, 0);
}

static void test_limits_adopt_failure_shm_doorbell(void **state)
{
    (void)state;
    adopt_failure(RIPC_TRANSPORT_SHM, 1);
}

static void test_limits_adopt_failure_socket_mode(void **state)
{
    (void)state;
    adopt_failure(RIPC_TRANSPORT_SOCKET, 0);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limits_epoll_failure_slot),
        cmocka_unit_test(test_limits_stalled_handshakes_unix),
        cmocka_unit_test(test_limits_stalled_handshakes_tcp),
        cmocka_unit_test(test_limits_full_slots_evict_one),
        cmocka_unit_test(test_limits_evict_with_event_pending),
        cmocka_unit_test(test_limits_evict_none_when_one_finishes),
        cmocka_unit_test(test_limits_slow_socket_peers),
        cmocka_unit_test(test_limits_deaf_socket_peers),
        cmocka_unit_test(test_limits_trickling_socket_peers),
        cmocka_unit_test(test_limits_out_of_descriptors),
        cmocka_unit_test(test_limits_open_raises_nofile),
        cmocka_unit_test(test_limits_adopt_failure_shm_socket),
        cmocka_unit_test(test_limits_adopt_failure_shm_doorbell),
        cmocka_unit_test(test_limits_adopt_failure_socket_mode),
    };
    ripc_test_filter(argc > 1 ? argv[1] : NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
