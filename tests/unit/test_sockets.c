/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for sockets/sock.h (POSIX implementation). Unix socket files
 * live in a mkdtemp() directory under /tmp, removed at the end; TCP uses
 * 127.0.0.1 only. Forked children check with plain code and report through
 * their exit status (cmocka asserts must not run in a child): 0 = fine,
 * anything else names the failed check. Processes are sequenced with pipes
 * and waitpid, never with sleeps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "sockets/closer.h"
#include "sockets/sock.h"
#include "support/support.h"

/* The pid the credentials of a unix peer (this process) carry: getpeereid
 * (the portable build) gives none. */
#ifdef RIPC_PORTABLE_POSIX
#define EXPECTED_PEER_PID (-1)
#else
#define EXPECTED_PEER_PID ((int32_t)getpid())
#endif

static char g_dir[] = "/tmp/ripc-sock-XXXXXX";

/* ---- helpers ---- */

static void path_in(char *buf, size_t len, const char *name)
{
    int n = snprintf(buf, len, "%s/%s", g_dir, name);
    assert_true(n > 0 && (size_t)n < len);
}

static void addr_in(ripc__addr *a, const char *name)
{
    char url[RIPC_ADDR_PATH_MAX + 8], why[128];
    int n = snprintf(url, sizeof url, "unix:%s/%s", g_dir, name);
    assert_true(n > 0 && (size_t)n < sizeof url);
    assert_int_equal(ripc__addr_parse(a, url, why, sizeof why), 0);
}

/* Open descriptors, once those handed to the closer (sockets/closer.h)
 * are closed. */
static int count_fds(void)
{
    ripc__fd_dispose_wait();
    return ripc_test_count_fds();
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int has_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFD);
    return fl >= 0 && (fl & FD_CLOEXEC);
}

static int is_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl >= 0 && (fl & O_NONBLOCK);
}

static int nodelay(int fd)
{
    int v = 0;
    socklen_t l = sizeof v;
    if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &l) != 0)
        return -1;
    return v != 0;
}

/* Wait (bounded, no sleep) until fd has an event; 1 when it does. */
static int wait_event(intptr_t fd, short events, int timeout_ms)
{
    struct pollfd p = {.fd = (int)fd, .events = events};
    int r;
    do
        r = poll(&p, 1, timeout_ms);
    while (r < 0 && errno == EINTR);
    return r > 0;
}

/* Accept on a non-blocking listener, waiting up to 5 s for a connection. */
static intptr_t accept_wait(intptr_t lfd)
{
    intptr_t fd = -1;
    assert_true(wait_event(lfd, POLLIN, 5000));
    assert_int_equal(ripc__sock_accept(lfd, &fd), 0);
    assert_true(fd >= 0);
    return fd;
}

/* A connected pair: *c from connect, *s from accept. The listener is closed
 * and its file removed. */
static void pair_on(ripc__addr *a, intptr_t *c, intptr_t *s)
{
    char why[256] = "";
    intptr_t lfd = -1;
    int r = ripc__sock_listen(a, &lfd, why, sizeof why);
    if (r != 0)
        fail_msg("listen: %d (%s)", r, why);
    r = ripc__sock_connect(a, c, 5000, why, sizeof why);
    if (r != 0)
        fail_msg("connect: %d (%s)", r, why);
    *s = accept_wait(lfd);
    ripc__sock_unlink(a, lfd);
    ripc__sock_close(lfd);
}

static void unix_pair(const char *name, intptr_t *c, intptr_t *s)
{
    ripc__addr a;
    addr_in(&a, name);
    pair_on(&a, c, s);
}

static void tcp_pair(intptr_t *c, intptr_t *s)
{
    ripc__addr a;
    char why[128];
    assert_int_equal(ripc__addr_parse(&a, "tcp://127.0.0.1:0", why, sizeof why), 0);
    pair_on(&a, c, s);
}

static void roundtrip(intptr_t x, intptr_t y)
{
    char buf[32];
    assert_int_equal(ripc__sock_send_all(x, "ping", 4), 0);
    assert_int_equal(ripc__sock_recv_all(y, buf, 4, 5000), 0);
    assert_memory_equal(buf, "ping", 4);
    assert_int_equal(ripc__sock_send_all(y, "pong!", 5), 0);
    assert_int_equal(ripc__sock_recv_all(x, buf, 5, 5000), 0);
    assert_memory_equal(buf, "pong!", 5);
}

static void make_file(const char *path)
{
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    close(fd);
}

/* ---- parsing ---- */

static void expect_unix(const char *url, const char *path)
{
    ripc__addr a;
    char why[128] = "";
    int r = ripc__addr_parse(&a, url, why, sizeof why);
    if (r != 0)
        fail_msg("parse '%s': %d (%s)", url, r, why);
    assert_int_equal(a.kind, RIPC_ADDR_UNIX);
    assert_string_equal(a.path, path);
    assert_int_equal(a.dev, 0);
    assert_int_equal(a.ino, 0);
}

static void expect_tcp(const char *url, const char *host, unsigned port)
{
    ripc__addr a;
    char why[128] = "";
    int r = ripc__addr_parse(&a, url, why, sizeof why);
    if (r != 0)
        fail_msg("parse '%s': %d (%s)", url, r, why);
    assert_int_equal(a.kind, RIPC_ADDR_TCP);
    assert_string_equal(a.host, host);
    assert_int_equal(a.port, port);
}

static void test_sockets_parse_unix_forms(void **state)
{
    (void)state;
    expect_unix("unix:/p", "/p");
    expect_unix("unix:rel", "rel");
    expect_unix("unix:rel/dir/x.sock", "rel/dir/x.sock");
    expect_unix("/tmp/x.sock", "/tmp/x.sock");
    expect_unix("x.sock", "x.sock");
    expect_unix("unix:///tmp/y.sock", "/tmp/y.sock");
    expect_unix("weird:name.sock", "weird:name.sock"); /* no "://": a path */
    expect_unix("unix:////x.sock", "//x.sock");
    expect_unix("unix:./@at.sock", "./@at.sock"); /* a file whose name starts with '@' */
#ifdef RIPC_TEST_ABSTRACT
    expect_unix("unix:@ripc-abstract", "@ripc-abstract");
    expect_unix("@bare-abstract", "@bare-abstract");
#else
    ripc__addr a;
    char why[160] = "";
    assert_int_equal(ripc__addr_parse(&a, "unix:@x", why, sizeof why), -ENOTSUP);
    assert_non_null(strstr(why, "only on Linux"));
#ifdef __linux__
    assert_non_null(strstr(why, "portable build"));
#endif
#endif
}

static void test_sockets_parse_tcp_forms(void **state)
{
    (void)state;
    expect_tcp("tcp://127.0.0.1:5555", "127.0.0.1", 5555);
    expect_tcp("tcp://localhost:80", "localhost", 80);
    expect_tcp("tcp://[::1]:5555", "::1", 5555);
    expect_tcp("tcp://127.0.0.1:0", "127.0.0.1", 0);
    expect_tcp("tcp://host.example:65535", "host.example", 65535);
}

static void test_sockets_parse_errors(void **state)
{
    static const struct {
        const char *url;
        int err;
        const char *word;
    } cases[] = {
        {"", -EINVAL, "empty"},
        {"unix:", -EINVAL, "empty"},
        {"udp://1.2.3.4:5", -EINVAL, "unknown scheme 'udp'"},
        {"http://x:80", -EINVAL, "unknown scheme 'http'"},
        {"tcp:127.0.0.1:80", -EINVAL, "tcp://"},
        {"tcp://127.0.0.1", -EINVAL, "missing port"},
        {"tcp://127.0.0.1:", -EINVAL, "missing port"},
        {"tcp://127.0.0.1:99999", -EINVAL, "bad port '99999'"},
        {"tcp://127.0.0.1:123456", -EINVAL, "bad port"},
        {"tcp://127.0.0.1:8o", -EINVAL, "bad port '8o'"},
        {"tcp://127.0.0.1:-1", -EINVAL, "bad port"},
        {"tcp://:80", -EINVAL, "empty host"},
        {"tcp://[]:80", -EINVAL, "empty host"},
        {"tcp://[::1]", -EINVAL, "missing port"},
        {"tcp://[::1:80", -EINVAL, "']'"},
        {"tcp://[::1]x80", -EINVAL, "':port'"},
        {"tcp://::1:80", -EINVAL, "brackets"},
        {"unix://tmp/x", -EINVAL, "unix:///tmp/x"},
        {"unix://tmp/x", -EINVAL, "unix:/tmp/x"},
        {"unix://", -EINVAL, "absolute path"},
        {"unix://@name", -EINVAL, "unix:@name"},
#ifdef RIPC_TEST_ABSTRACT
        {"unix:@", -EINVAL, "empty abstract"},
#else
        {"unix:@", -ENOTSUP, "only on Linux"},
        {"@name", -ENOTSUP, "only on Linux"},
#endif
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ripc__addr a;
        char why[192] = "";
        int r = ripc__addr_parse(&a, cases[i].url, why, sizeof why);
        if (r != cases[i].err || strstr(why, cases[i].word) == NULL)
            fail_msg("'%s': got %d (%s), want %d with '%s'", cases[i].url, r, why, cases[i].err,
                     cases[i].word);
        /* A NULL why is allowed. */
        assert_int_equal(ripc__addr_parse(&a, cases[i].url, NULL, 0), cases[i].err);
    }
    {
        ripc__addr a;
        char why[128] = "";
        assert_int_equal(ripc__addr_parse(&a, NULL, why, sizeof why), -EINVAL);
        assert_non_null(strstr(why, "empty"));
    }
}

static void test_sockets_parse_length_limits(void **state)
{
    char url[600], why[128];
    ripc__addr a;
    const size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
    (void)state;

    /* The longest path that fits (with its NUL) works, one more byte does not. */
    memset(url, 'p', max);
    url[max] = '\0';
    assert_int_equal(ripc__addr_parse(&a, url, why, sizeof why), 0);
    assert_int_equal(strlen(a.path), max);

    strcpy(url, "unix:/");
    memset(url + 6, 'q', 119);
    url[125] = '\0'; /* a 120-byte path */
    assert_int_equal(ripc__addr_parse(&a, url, why, sizeof why), -ENAMETOOLONG);
    assert_non_null(strstr(why, "too long"));
    assert_non_null(strstr(why, "120 bytes"));
    assert_non_null(strstr(why, "max 107"));

    memset(url, 'r', max + 1);
    url[max + 1] = '\0';
    assert_int_equal(ripc__addr_parse(&a, url, why, sizeof why), -ENAMETOOLONG);

    /* A host name of 256 bytes does not fit host[]. */
    strcpy(url, "tcp://");
    memset(url + 6, 'h', 256);
    strcpy(url + 262, ":80");
    assert_int_equal(ripc__addr_parse(&a, url, why, sizeof why), -EINVAL);
    assert_non_null(strstr(why, "host too long"));
}

static void test_sockets_format_roundtrip(void **state)
{
    static const char *urls[] = {
        "unix:/tmp/a.sock",     "unix:rel.sock",      "unix:////x.sock",
        "tcp://127.0.0.1:5555", "tcp://localhost:80", "tcp://[::1]:5555",
#ifdef RIPC_TEST_ABSTRACT
        "unix:@abstract.name",
#endif
    };
    (void)state;
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        ripc__addr a, b;
        char buf[400], why[128];
        assert_int_equal(ripc__addr_parse(&a, urls[i], why, sizeof why), 0);
        assert_int_equal(ripc__addr_format(&a, buf, sizeof buf), (int)strlen(urls[i]));
        assert_string_equal(buf, urls[i]);
        assert_int_equal(ripc__addr_parse(&b, buf, why, sizeof why), 0);
        assert_memory_equal(&a, &b, sizeof a);
    }
    {
        ripc__addr a;
        char small[8], why[128];
        assert_int_equal(ripc__addr_parse(&a, "x.sock", why, sizeof why), 0);
        /* snprintf semantics: the full length comes back, the buffer is cut. */
        assert_int_equal(ripc__addr_format(&a, small, sizeof small), 11);
        assert_string_equal(small, "unix:x.");
    }
}

/* ---- unix listen / connect ---- */

static void test_sockets_unix_roundtrip(void **state)
{
    ripc__addr a;
    char why[256], path[256];
    intptr_t lfd = -1, c = -1, s = -1, none = 7;
    struct stat st;
    (void)state;

    addr_in(&a, "rt.sock");
    path_in(path, sizeof path, "rt.sock");
    assert_int_equal(ripc__sock_listen(&a, &lfd, why, sizeof why), 0);
    assert_true(lfd >= 0);
    assert_true(is_nonblock((int)lfd));
    assert_true(has_cloexec((int)lfd));
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(a.dev, (uint64_t)st.st_dev);
    assert_int_equal(a.ino, (uint64_t)st.st_ino);

    assert_int_equal(ripc__sock_accept(lfd, &none), -EAGAIN);
    assert_int_equal(none, -1);

    assert_int_equal(ripc__sock_connect(&a, &c, 5000, why, sizeof why), 0);
    s = accept_wait(lfd);
    assert_false(is_nonblock((int)c));
    assert_false(is_nonblock((int)s));
    assert_true(has_cloexec((int)c));
    assert_true(has_cloexec((int)s));
    roundtrip(c, s);

    assert_int_equal(ripc__sock_set_nonblock(c, 1), 0);
    assert_true(is_nonblock((int)c));
    assert_int_equal(ripc__sock_set_nonblock(c, 0), 0);
    assert_false(is_nonblock((int)c));

    ripc__sock_close(c);
    ripc__sock_close(s);
    ripc__sock_unlink(&a, lfd);
    assert_int_equal(lstat(path, &st), -1);
    assert_int_equal(errno, ENOENT);
    ripc__sock_close(lfd);
    ripc__sock_close(-1); /* harmless */
}

static void test_sockets_unix_stale_reclaimed(void **state)
{
    ripc__addr a;
    struct sockaddr_un sun;
    char why[256], path[256];
    intptr_t lfd = -1, c = -1, s = -1;
    struct stat st;
    int raw;
    (void)state;

    /* A server that died without unlinking: bound, listened, closed. */
    addr_in(&a, "stale.sock");
    path_in(path, sizeof path, "stale.sock");
    raw = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(raw >= 0);
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    strcpy(sun.sun_path, path);
    assert_int_equal(bind(raw, (struct sockaddr *)&sun, sizeof sun), 0);
    assert_int_equal(listen(raw, 1), 0);
    close(raw);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));

    /* Nobody answers there. */
    assert_int_equal(ripc__sock_connect(&a, &c, 1000, why, sizeof why), -ECONNREFUSED);

    assert_int_equal(ripc__sock_listen(&a, &lfd, why, sizeof why), 0);
    assert_int_equal(ripc__sock_connect(&a, &c, 5000, why, sizeof why), 0);
    s = accept_wait(lfd);
    roundtrip(c, s);
    ripc__sock_close(c);
    ripc__sock_close(s);
    ripc__sock_unlink(&a, lfd);
    ripc__sock_close(lfd);
    assert_int_equal(lstat(path, &st), -1);
}

static void test_sockets_unix_live_server_in_use(void **state)
{
    ripc__addr a, b;
    char why[256] = "";
    intptr_t lfd = -1, lfd2 = -1, c = -1, probe = -1, s = -1;
    (void)state;

    addr_in(&a, "live.sock");
    addr_in(&b, "live.sock");
    assert_int_equal(ripc__sock_listen(&a, &lfd, why, sizeof why), 0);
    assert_int_equal(ripc__sock_listen(&b, &lfd2, why, sizeof why), -EADDRINUSE);
    assert_int_equal(lfd2, -1);
    assert_non_null(strstr(why, "already listening"));

    /* The first server is untouched: its only trace is the closed probe. */
    assert_int_equal(ripc__sock_connect(&a, &c, 5000, why, sizeof why), 0);
    probe = accept_wait(lfd);
    assert_int_equal(ripc__sock_alive(probe), 0);
    s = accept_wait(lfd);
    roundtrip(c, s);
    ripc__sock_close(probe);
    ripc__sock_close(c);
    ripc__sock_close(s);
    ripc__sock_unlink(&a, lfd);
    ripc__sock_close(lfd);
}

static void test_sockets_unix_not_socket_exists(void **state)
{
    ripc__addr a;
    char why[256] = "", path[256];
    intptr_t lfd = -1;
    struct stat st;
    (void)state;

    addr_in(&a, "plain.file");
    path_in(path, sizeof path, "plain.file");
    make_file(path);
    assert_int_equal(ripc__sock_listen(&a, &lfd, why, sizeof why), -EEXIST);
    assert_non_null(strstr(why, "not a socket"));
    assert_int_equal(lfd, -1);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    unlink(path);

    addr_in(&a, "a.dir");
    path_in(path, sizeof path, "a.dir");
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(ripc__sock_listen(&a, &lfd, why, sizeof why), -EEXIST);
    assert_int_equal(rmdir(path), 0);

    /* A missing directory is reported as such. */
    addr_in(&a, "no/such/dir.sock");
    assert_int_equal(ripc__sock_listen(&a, &lfd, why, sizeof why), -ENOENT);
    assert_non_null(strstr(why, "bind"));
}

static void test_sockets_unix_mode_0600(void **state)
{
    static const mode_t masks[] = {0, 022, 077};
    (void)state;
    for (size_t i = 0; i < sizeof masks / sizeof masks[0]; i++) {
        ripc__addr a;
        char why[256], path[256];
        intptr_t lfd = -1;
        struct stat st;
        mode_t old = umask(masks[i]); /* single-threaded test: umask is safe here */
        addr_in(&a, "mode.sock");
        path_in(path, sizeof path, "mode.sock");
        assert_int_equal(ripc__sock_listen(&a, &lfd, why, sizeof why), 0);
        umask(old);
        assert_int_equal(lstat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        ripc__sock_unlink(&a, lfd);
        ripc__sock_close(lfd);
    }
}

static void test_sockets_unlink_own_inode_only(void **state)
{
    ripc__addr a, b;
    char why[256], path[256];
    intptr_t la = -1, lb = -1, c = -1, s = -1;
    struct stat st;
    (void)state;

    addr_in(&a, "own.sock");
    path_in(path, sizeof path, "own.sock");
    assert_int_equal(ripc__sock_listen(&a, &la, why, sizeof why), 0);

    /* Someone replaced the path by a regular file: unlink must leave it. */
    assert_int_equal(unlink(path), 0);
    make_file(path);
    ripc__sock_unlink(&a, la);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(unlink(path), 0);

    /* ... or by another server's socket: that one stays too. */
    addr_in(&b, "own.sock");
    assert_int_equal(ripc__sock_listen(&b, &lb, why, sizeof why), 0);
    assert_true(a.ino != b.ino || a.dev != b.dev);
    ripc__sock_unlink(&a, la);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal((uint64_t)st.st_ino, b.ino);
    assert_int_equal(ripc__sock_connect(&b, &c, 5000, why, sizeof why), 0);
    s = accept_wait(lb);
    roundtrip(c, s);
    ripc__sock_close(c);
    ripc__sock_close(s);

    /* A TCP address or an unfilled one is a no-op; the owner removes its own. */
    {
        ripc__addr t, u;
        assert_int_equal(ripc__addr_parse(&t, "tcp://127.0.0.1:1", why, sizeof why), 0);
        ripc__sock_unlink(&t, lb);
        addr_in(&u, "own.sock"); /* same path, dev/ino never filled */
        ripc__sock_unlink(&u, lb);
        assert_int_equal(lstat(path, &st), 0);
    }
    ripc__sock_unlink(&b, lb);
    assert_int_equal(lstat(path, &st), -1);
    ripc__sock_close(la);
    ripc__sock_close(lb);

    /* Too late once the listener is closed: the file stays (stale, reclaimable). */
    assert_int_equal(ripc__sock_listen(&b, &lb, why, sizeof why), 0);
    ripc__sock_close(lb);
    ripc__sock_unlink(&b, lb);
    assert_int_equal(lstat(path, &st), 0);
    assert_int_equal(ripc__sock_listen(&b, &lb, why, sizeof why), 0);
    ripc__sock_unlink(&b, lb);
    ripc__sock_close(lb);
    assert_int_equal(lstat(path, &st), -1);
}

/* ---- descriptor passing ---- */

/* Child of test_sockets_fd_passing_fork: receive 3 descriptors, write
 * through them, exit 0; a non-zero exit code names the failed step. */
static int fd_child(const ripc__addr *a, int p1w, int p2w, int efd)
{
    intptr_t c = -1;
    int fds[4] = {-1, -1, -1, -1}, n = -1;
    char buf[4];
    uint64_t v = 7;

    /* Drop the inherited copies so only the passed ones can reach the parent. */
    close(p1w);
    close(p2w);
    close(efd);
    if (ripc__sock_connect(a, &c, 5000, NULL, 0) != 0)
        return 10;
    if (ripc__sock_recv_fds(c, buf, 4, fds, 4, &n, 5000) != 0)
        return 11;
    if (n != 3 || memcmp(buf, "fds!", 4) != 0)
        return 12;
    for (int i = 0; i < 3; i++)
        if (!has_cloexec(fds[i]))
            return 13;
    if (write(fds[0], "one", 3) != 3 || write(fds[1], "two", 3) != 3)
        return 14;
    if (write(fds[2], &v, sizeof v) != (ssize_t)sizeof v)
        return 15;
    if (ripc__sock_send_all(c, "k", 1) != 0)
        return 16;
    return 0;
}

static void test_sockets_fd_passing_fork(void **state)
{
    ripc__addr a;
    char why[256], buf[8];
    intptr_t lfd = -1, s = -1;
    int p1[2], p2[2], efd, pid;
    uint64_t v = 0;
    (void)state;

    addr_in(&a, "fdpass.sock");
    assert_int_equal(ripc__sock_listen(&a, &lfd, why, sizeof why), 0);
    assert_int_equal(pipe2(p1, O_CLOEXEC), 0);
    assert_int_equal(pipe2(p2, O_CLOEXEC), 0);
    efd = eventfd(0, EFD_CLOEXEC);
    assert_true(efd >= 0);

    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(fd_child(&a, p1[1], p2[1], efd));

    s = accept_wait(lfd);
    {
        int pass[3] = {p1[1], p2[1], efd};
        assert_int_equal(ripc__sock_send_fds(s, "fds!", 4, pass, 3), 0);
    }
    close(p1[1]);
    close(p2[1]);
    assert_int_equal(ripc__sock_recv_all(s, buf, 1, 10000), 0);
    assert_int_equal(ripc_test_wait(pid), 0);

    assert_int_equal(read(p1[0], buf, sizeof buf), 3);
    assert_memory_equal(buf, "one", 3);
    assert_int_equal(read(p1[0], buf, sizeof buf), 0); /* no writer left anywhere */
    assert_int_equal(read(p2[0], buf, sizeof buf), 3);
    assert_memory_equal(buf, "two", 3);
    assert_int_equal(read(p2[0], buf, sizeof buf), 0);
    assert_int_equal(read(efd, &v, sizeof v), (ssize_t)sizeof v);
    assert_int_equal(v, 7);

    close(p1[0]);
    close(p2[0]);
    close(efd);
    ripc__sock_close(s);
    ripc__sock_unlink(&a, lfd);
    ripc__sock_close(lfd);
}

static void test_sockets_fds_received_cloexec(void **state)
{
    intptr_t c = -1, s = -1;
    int p[2], got[8], n = -1;
    char buf[64];
    (void)state;

    unix_pair("cloexec.sock", &c, &s);
    assert_int_equal(pipe(p), 0); /* deliberately without O_CLOEXEC */
    assert_false(has_cloexec(p[1]));
    /* Descriptors arrive with the first byte, even across a long payload. */
    memset(buf, 'x', sizeof buf);
    assert_int_equal(ripc__sock_send_fds(c, buf, sizeof buf, &p[1], 1), 0);
    assert_int_equal(ripc__sock_recv_fds(s, buf, sizeof buf, got, 8, &n, 5000), 0);
    assert_int_equal(n, 1);
    assert_true(got[0] != p[1]);
    assert_true(has_cloexec(got[0]));
    assert_int_equal(write(got[0], "z", 1), 1);
    assert_int_equal(read(p[0], buf, 1), 1);
    assert_int_equal(buf[0], 'z');

    /* Plain data with room for descriptors: none reported. */
    assert_int_equal(ripc__sock_send_all(c, "abc", 3), 0);
    assert_int_equal(ripc__sock_recv_fds(s, buf, 3, got, 8, &n, 5000), 0);
    assert_int_equal(n, 0);

    close(got[0]);
    close(p[0]);
    close(p[1]);
    ripc__sock_close(c);
    ripc__sock_close(s);
}

static void test_sockets_fds_too_many_eproto(void **state)
{
    intptr_t c = -1, s = -1;
    int p[2], e, got[2] = {-1, -1}, n = -1, before;
    char buf[4];
    (void)state;

    unix_pair("toomany.sock", &c, &s);
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    e = eventfd(0, EFD_CLOEXEC);
    assert_true(e >= 0);
    before = count_fds();
    {
        int pass[3] = {p[0], p[1], e};
        assert_int_equal(ripc__sock_send_fds(c, "abcd", 4, pass, 3), 0);
    }
    /* Room for 2, 3 arrive: all are closed, nothing is reported. */
    assert_int_equal(ripc__sock_recv_fds(s, buf, 4, got, 2, &n, 5000), -EPROTO);
    assert_int_equal(n, 0);
    assert_int_equal(count_fds(), before);

    /* Descriptors nobody asked for are just as wrong. */
    assert_int_equal(ripc__sock_send_fds(c, "abcd", 4, p, 1), 0);
    assert_int_equal(ripc__sock_recv_all(s, buf, 4, 5000), -EPROTO);
    assert_int_equal(count_fds(), before);

    close(p[0]);
    close(p[1]);
    close(e);
    ripc__sock_close(c);
    ripc__sock_close(s);
}

static void test_sockets_fds_ctrunc_eproto(void **state)
{
    intptr_t c = -1, s = -1;
    int p[2], got[8], n = -1, before;
    char cbuf[CMSG_SPACE(sizeof(int) * 12)], data = 'd', buf[1];
    struct iovec iov = {.iov_base = &data, .iov_len = 1};
    struct msghdr m;
    struct cmsghdr *cm;
    (void)state;

    /* 12 descriptors (more than our control buffer) sent by hand. */
    unix_pair("ctrunc.sock", &c, &s);
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    memset(&m, 0, sizeof m);
    memset(cbuf, 0, sizeof cbuf);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = cbuf;
    m.msg_controllen = sizeof cbuf;
    cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * 12);
    for (int i = 0; i < 12; i++)
        memcpy(CMSG_DATA(cm) + i * sizeof(int), &p[i & 1], sizeof(int));
    before = count_fds();
    assert_int_equal(sendmsg((int)c, &m, MSG_NOSIGNAL), 1);
    assert_int_equal(ripc__sock_recv_fds(s, buf, 1, got, 8, &n, 5000), -EPROTO);
    assert_int_equal(n, 0);
    assert_int_equal(count_fds(), before);
    close(p[0]);
    close(p[1]);
    ripc__sock_close(c);
    ripc__sock_close(s);
}

/* A plain try_recv expects no descriptors: one that comes is closed (not
 * kept, not dropped by the kernel here) and the read says -EPROTO. */
static void test_sockets_try_recv_fd_eproto(void **state)
{
    intptr_t c = -1, s = -1;
    int p[2], before;
    char buf[4];
    (void)state;

    unix_pair("tryfd.sock", &c, &s);
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    before = count_fds();
    assert_int_equal(ripc__sock_send_fds(c, "ab", 2, p, 2), 0);
    ripc__sock_set_nonblock(s, 1);
    assert_int_equal(ripc__sock_try_recv(s, buf, sizeof buf), -EPROTO);
    assert_int_equal(count_fds(), before);
    assert_int_equal(ripc__sock_send_all(c, "cd", 2), 0); /* without: as ever */
    assert_int_equal(ripc__sock_try_recv(s, buf, sizeof buf), 2);
    close(p[0]);
    close(p[1]);
    ripc__sock_close(c);
    ripc__sock_close(s);
}

/* SigBlk of thread tid of this process, or 0 when it is gone. */
static unsigned long long sig_blocked(const char *tid)
{
    char path[64], line[256];
    unsigned long long blk = 0;
    snprintf(path, sizeof path, "/proc/self/task/%s/status", tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "SigBlk: %llx", &blk) == 1)
            break;
    fclose(f);
    return blk;
}

/* The closers block the application's signals, never those a fault
 * raises: the kernel kills a process whose thread faults with the signal
 * blocked, before any handler (the SIGBUS guard's) can run. The threads
 * of this process that block SIGUSR1 are the library's own. glibc starts
 * a thread with every signal blocked and sets the mask it inherits in its
 * first steps: one seen that way is looked at again, for up to 2 s. */
static void test_sockets_closer_fault_signals_unblocked(void **state)
{
    const int faults[] = {SIGBUS, SIGSEGV, SIGFPE, SIGILL};
    unsigned long long fault_bits = 0;
    int p[2], found = 0;
    (void)state;

    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++)
        fault_bits |= 1ull << (faults[i] - 1);
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    ripc__fd_dispose(p[0]); /* not a memfd: a closer takes it */
    ripc__fd_dispose(p[1]);
    ripc__fd_dispose_wait();
    DIR *d = opendir("/proc/self/task");
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        unsigned long long blk = sig_blocked(e->d_name);
        for (int64_t end = now_ms() + 2000; (blk & fault_bits) && now_ms() < end;) {
            sched_yield();
            blk = sig_blocked(e->d_name);
        }
        if (!(blk & (1ull << (SIGUSR1 - 1))))
            continue;
        found++;
        if (blk & fault_bits)
            fail_msg("thread %s blocks a fault's signal (SigBlk %llx)", e->d_name, blk);
    }
    closedir(d);
    assert_true(found > 0);
}

static void test_sockets_send_fds_bad_args(void **state)
{
    intptr_t c = -1, s = -1;
    int nine[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0}, got[1], n;
    char buf[1];
    (void)state;

    unix_pair("badargs.sock", &c, &s);
    assert_int_equal(ripc__sock_send_fds(c, "x", 1, nine, 9), -EINVAL);
    assert_int_equal(ripc__sock_send_fds(c, "x", 0, nine, 1), -EINVAL); /* nothing to carry them */
    assert_int_equal(ripc__sock_send_fds(c, "x", 1, NULL, 1), -EINVAL);
    assert_int_equal(ripc__sock_send_fds(c, "x", 1, nine, -1), -EINVAL);
    assert_int_equal(ripc__sock_recv_fds(s, buf, 1, NULL, 1, &n, 0), -EINVAL);
    assert_int_equal(ripc__sock_recv_fds(s, buf, 1, got, 1, NULL, 0), -EINVAL);
    assert_int_equal(ripc__sock_send_all(c, "", 0), 0);
    assert_int_equal(ripc__sock_recv_all(s, buf, 0, 0), 0);
    ripc__sock_close(c);
    ripc__sock_close(s);
}

/* ---- the Linux abstract namespace ---- */

static void test_sockets_unix_abstract(void **state)
{
    (void)state;
#ifndef RIPC_TEST_ABSTRACT
    print_message("SKIP: no abstract unix namespace here (-ENOTSUP: test_sockets_parse_unix_forms)\n");
    skip();
#else
    ripc__addr a, b;
    char url[96], why[256] = "", cwd_name[96];
    snprintf(url, sizeof url, "unix:@ripc-sock-test-%d", (int)getpid());
    assert_int_equal(ripc__addr_parse(&a, url, why, sizeof why), 0);
    b = a;
    intptr_t lfd = -1, lfd2 = -1, c = -1, s = -1;
    assert_int_equal(ripc__sock_listen(&a, &lfd, why, sizeof why), 0);
    assert_true(has_cloexec((int)lfd) && is_nonblock((int)lfd));
    assert_int_equal(a.dev, 0); /* no file: nothing for unlink to remove */
    assert_int_equal(a.ino, 0);
    /* The name in the kernel: sun_path[0] = 0, the name, no trailing NUL. */
    struct sockaddr_un sun;
    socklen_t sl = sizeof sun;
    assert_int_equal(getsockname((int)lfd, (struct sockaddr *)&sun, &sl), 0);
    size_t nlen = strlen(url + 6);
    assert_int_equal(sl, offsetof(struct sockaddr_un, sun_path) + 1 + nlen);
    assert_int_equal(sun.sun_path[0], 0);
    assert_memory_equal(sun.sun_path + 1, url + 6, nlen);
    /* No file appeared where the name would be a relative path. */
    struct stat st;
    snprintf(cwd_name, sizeof cwd_name, "%s", url + 5);
    assert_int_equal(lstat(cwd_name, &st), -1);
    /* Taken while it listens; nothing stale is reclaimed. */
    assert_int_equal(ripc__sock_listen(&b, &lfd2, why, sizeof why), -EADDRINUSE);
    assert_non_null(strstr(why, "already listening"));
    assert_int_equal(lfd2, -1);

    assert_int_equal(ripc__sock_connect(&a, &c, 5000, why, sizeof why), 0);
    s = accept_wait(lfd);
    roundtrip(c, s);
    /* Credentials work on it as on a path. */
    uint32_t uid = 12345;
    int32_t pid = 0;
    assert_int_equal(ripc__sock_peer_cred(s, &uid, NULL, &pid), 0);
    assert_int_equal(uid, (uint32_t)getuid());
    assert_int_equal(pid, EXPECTED_PEER_PID);
    ripc__sock_close(c);
    ripc__sock_close(s);
    ripc__sock_unlink(&a, lfd); /* a no-op */
    ripc__sock_close(lfd);
    /* Closed: the name is free at once, and nobody answers on it. */
    assert_int_equal(ripc__sock_connect(&a, &c, 1000, why, sizeof why), -ECONNREFUSED);
    assert_int_equal(ripc__sock_listen(&b, &lfd2, why, sizeof why), 0);
    ripc__sock_close(lfd2);
#endif
}

/* ---- credentials ---- */

static void test_sockets_peer_cred_unix(void **state)
{
    intptr_t c = -1, s = -1;
    uint32_t uid = 1234567, gid = 1234567;
    int32_t pid = -5;
    (void)state;

    unix_pair("cred.sock", &c, &s);
    assert_int_equal(ripc__sock_peer_cred(s, &uid, &gid, &pid), 0);
    assert_int_equal(uid, (uint32_t)getuid());
    assert_int_equal(gid, (uint32_t)getgid());
    assert_int_equal(pid, EXPECTED_PEER_PID);
    assert_int_equal(ripc__sock_peer_cred(c, &uid, NULL, NULL), 0); /* NULLs allowed */
    assert_int_equal(uid, (uint32_t)getuid());
    ripc__sock_close(c);
    ripc__sock_close(s);
}

static void test_sockets_peer_cred_tcp_enotsup(void **state)
{
    intptr_t c = -1, s = -1;
    uint32_t uid, gid;
    int32_t pid;
    (void)state;

    tcp_pair(&c, &s);
    assert_int_equal(ripc__sock_peer_cred(s, &uid, &gid, &pid), -ENOTSUP);
    assert_int_equal(ripc__sock_peer_cred(c, &uid, &gid, &pid), -ENOTSUP);
    ripc__sock_close(c);
    ripc__sock_close(s);
}

/* ---- TCP ---- */

static void test_sockets_tcp_roundtrip(void **state)
{
    ripc__addr a, b;
    char why[256], url[64];
    intptr_t lfd = -1, c = -1, s = -1;
    (void)state;

    assert_int_equal(ripc__addr_parse(&a, "tcp://127.0.0.1:0", why, sizeof why), 0);
    assert_int_equal(ripc__sock_listen(&a, &lfd, why, sizeof why), 0);
    assert_true(a.port != 0);
    assert_true(is_nonblock((int)lfd));
    assert_true(has_cloexec((int)lfd));

    /* Connect through the formatted URL, as a worker would. */
    ripc__addr_format(&a, url, sizeof url);
    assert_int_equal(ripc__addr_parse(&b, url, why, sizeof why), 0);
    assert_int_equal(b.port, a.port);
    assert_int_equal(ripc__sock_connect(&b, &c, 5000, why, sizeof why), 0);
    s = accept_wait(lfd);
    assert_false(is_nonblock((int)c));
    assert_false(is_nonblock((int)s));
    assert_true(has_cloexec((int)c));
    assert_true(has_cloexec((int)s));
    assert_int_equal(nodelay((int)c), 1);
    assert_int_equal(nodelay((int)s), 1);
    roundtrip(c, s);
    ripc__sock_close(c);
    ripc__sock_close(s);

    /* "localhost" may resolve to ::1 first: connect falls through to 127.0.0.1. */
    snprintf(url, sizeof url, "tcp://localhost:%u", (unsigned)a.port);
    assert_int_equal(ripc__addr_parse(&b, url, why, sizeof why), 0);
    if (ripc__sock_connect(&b, &c, 5000, why, sizeof why) == 0) {
        s = accept_wait(lfd);
        roundtrip(c, s);
        ripc__sock_close(c);
        ripc__sock_close(s);
    } else {
        print_message("note: localhost did not reach 127.0.0.1 here (%s)\n", why);
    }
    ripc__sock_unlink(&a, lfd); /* no-op for TCP */
    ripc__sock_close(lfd);
}

static void test_sockets_tcp_ipv6_loopback(void **state)
{
    ripc__addr a;
    char why[256];
    intptr_t lfd = -1, c = -1, s = -1;
    (void)state;

    assert_int_equal(ripc__addr_parse(&a, "tcp://[::1]:0", why, sizeof why), 0);
    if (ripc__sock_listen(&a, &lfd, why, sizeof why) != 0) {
        print_message("SKIP: no IPv6 loopback here (%s)\n", why);
        skip();
    }
    assert_true(a.port != 0);
    assert_int_equal(ripc__sock_connect(&a, &c, 5000, why, sizeof why), 0);
    s = accept_wait(lfd);
    assert_int_equal(nodelay((int)s), 1);
    roundtrip(c, s);
    ripc__sock_close(c);
    ripc__sock_close(s);
    ripc__sock_close(lfd);
}

/* ---- failures ---- */

static void test_sockets_connect_refused_unix(void **state)
{
    ripc__addr a;
    char why[256] = "";
    intptr_t c = 99;
    (void)state;

    addr_in(&a, "nobody-here.sock");
    assert_int_equal(ripc__sock_connect(&a, &c, 1000, why, sizeof why), -ECONNREFUSED);
    assert_int_equal(c, -1);
    assert_non_null(strstr(why, "nobody-here.sock"));
    assert_int_equal(ripc__sock_connect(&a, &c, -1, why, sizeof why), -ECONNREFUSED);
    assert_int_equal(ripc__sock_connect(&a, &c, 0, why, sizeof why), -ECONNREFUSED);
}

static void test_sockets_connect_refused_tcp(void **state)
{
    ripc__addr a;
    char why[256] = "";
    intptr_t lfd = -1, c = 99;
    (void)state;

    /* A port that was just ours and is now closed. */
    assert_int_equal(ripc__addr_parse(&a, "tcp://127.0.0.1:0", why, sizeof why), 0);
    assert_int_equal(ripc__sock_listen(&a, &lfd, why, sizeof why), 0);
    ripc__sock_close(lfd);
    assert_int_equal(ripc__sock_connect(&a, &c, 5000, why, sizeof why), -ECONNREFUSED);
    assert_int_equal(c, -1);
    assert_non_null(strstr(why, "connect"));

    a.port = 0;
    assert_int_equal(ripc__sock_connect(&a, &c, 5000, why, sizeof why), -EINVAL);
}

static void test_sockets_connect_timeout_backlog_full(void **state)
{
    ripc__addr a;
    char why[256];
    intptr_t lfd = -1, fds[4096], c = -1, s = -1;
    int n = 0, r = 0;
    int64_t t0;
    (void)state;

    /* Fill the listener's backlog with connections nobody accepts. */
    addr_in(&a, "full.sock");
    assert_int_equal(ripc__sock_listen(&a, &lfd, why, sizeof why), 0);
    while (n < (int)(sizeof fds / sizeof fds[0])) {
        r = ripc__sock_connect(&a, &fds[n], 0, why, sizeof why);
        if (r != 0)
            break;
        n++;
    }
    if (r != -ETIMEDOUT) {
        for (int i = 0; i < n; i++)
            ripc__sock_close(fds[i]);
        ripc__sock_unlink(&a, lfd);
        ripc__sock_close(lfd);
        print_message("SKIP: backlog never filled (%d connections, last %d)\n", n, r);
        skip();
    }
    assert_true(n > 0);

    t0 = now_ms();
    assert_int_equal(ripc__sock_connect(&a, &c, 100, why, sizeof why), -ETIMEDOUT);
    assert_true(now_ms() - t0 >= 90);
    assert_int_equal(c, -1);

    /* Room again after one accept: the next connect goes through. */
    s = accept_wait(lfd);
    assert_int_equal(ripc__sock_connect(&a, &c, 1000, why, sizeof why), 0);
    assert_false(is_nonblock((int)c));
    ripc__sock_close(c);
    ripc__sock_close(s);
    for (int i = 0; i < n; i++)
        ripc__sock_close(fds[i]);
    ripc__sock_unlink(&a, lfd);
    ripc__sock_close(lfd);
}

static void test_sockets_recv_timeout(void **state)
{
    intptr_t c = -1, s = -1;
    char buf[8];
    int64_t t0;
    (void)state;

    unix_pair("timeout.sock", &c, &s);
    t0 = now_ms();
    assert_int_equal(ripc__sock_recv_all(s, buf, 4, 50), -ETIMEDOUT);
    assert_true(now_ms() - t0 >= 45);
    assert_int_equal(ripc__sock_recv_all(s, buf, 4, 0), -ETIMEDOUT);

    /* Half a message is still a timeout: the limit is for the whole call. */
    assert_int_equal(ripc__sock_send_all(c, "ab", 2), 0);
    t0 = now_ms();
    assert_int_equal(ripc__sock_recv_all(s, buf, 4, 50), -ETIMEDOUT);
    assert_true(now_ms() - t0 >= 45);
    ripc__sock_close(c);
    ripc__sock_close(s);
}

static void test_sockets_recv_eof_mid_message(void **state)
{
    intptr_t c = -1, s = -1;
    int p[2], got[2] = {-1, -1}, n = -1, before;
    char buf[8];
    (void)state;

    unix_pair("eof.sock", &c, &s);
    assert_int_equal(ripc__sock_send_all(c, "abc", 3), 0);
    ripc__sock_close(c);
    assert_int_equal(ripc__sock_recv_all(s, buf, 8, 5000), -EPIPE);
    assert_int_equal(ripc__sock_recv_all(s, buf, 1, -1), -EPIPE);
    ripc__sock_close(s);

    /* Descriptors that came with the bytes before EOF do not leak. */
    unix_pair("eof2.sock", &c, &s);
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    before = count_fds();
    assert_int_equal(ripc__sock_send_fds(c, "ab", 2, p, 2), 0);
    ripc__sock_close(c);
    assert_int_equal(ripc__sock_recv_fds(s, buf, 4, got, 2, &n, 5000), -EPIPE);
    assert_int_equal(n, 0);
    assert_int_equal(count_fds(), before - 1); /* c is closed, nothing else changed */
    close(p[0]);
    close(p[1]);
    ripc__sock_close(s);

    /* Same over TCP, where EOF is a FIN. */
    tcp_pair(&c, &s);
    assert_int_equal(ripc__sock_send_all(c, "xyz", 3), 0);
    ripc__sock_close(c);
    assert_int_equal(ripc__sock_recv_all(s, buf, 8, 5000), -EPIPE);
    ripc__sock_close(s);
}

static volatile sig_atomic_t g_sigpipes;

static void on_sigpipe(int sig)
{
    (void)sig;
    g_sigpipes++;
}

static void test_sockets_send_closed_peer_epipe(void **state)
{
    struct sigaction sa, old;
    intptr_t c = -1, s = -1;
    char chunk[1024];
    int r = 0;
    (void)state;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigpipe;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGPIPE, &sa, &old), 0);
    g_sigpipes = 0;

    unix_pair("epipe.sock", &c, &s);
    ripc__sock_close(s);
    assert_int_equal(ripc__sock_send_all(c, "x", 1), -EPIPE);
    {
        int p[2];
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        assert_int_equal(ripc__sock_send_fds(c, "x", 1, p, 1), -EPIPE);
        close(p[0]);
        close(p[1]);
    }
    ripc__sock_close(c);

    /* TCP: the first write after the peer's close may still be accepted; the
     * peer's RST makes a later one fail. Wait for the error event, not a clock. */
    tcp_pair(&c, &s);
    ripc__sock_close(s);
    memset(chunk, 'c', sizeof chunk);
    for (int i = 0; i < 100; i++) {
        r = ripc__sock_send_all(c, chunk, sizeof chunk);
        if (r != 0)
            break;
        (void)wait_event(c, POLLERR | POLLHUP, 1000);
    }
    assert_int_equal(r, -EPIPE);
    ripc__sock_close(c);

    assert_int_equal(g_sigpipes, 0);
    assert_int_equal(sigaction(SIGPIPE, &old, NULL), 0);
}

#define BIG_LEN (8u << 20)

struct big_send {
    intptr_t fd;
    int rc;
};

static void *big_sender(void *arg)
{
    struct big_send *b = arg;
    char *buf = malloc(BIG_LEN);
    if (buf == NULL) {
        b->rc = -ENOMEM;
        return NULL;
    }
    ripc_test_fill(buf, BIG_LEN, 42);
    b->rc = ripc__sock_send_all(b->fd, buf, BIG_LEN);
    free(buf);
    return NULL;
}

static void test_sockets_large_transfer(void **state)
{
    intptr_t c = -1, s = -1;
    struct big_send b;
    pthread_t th;
    char *buf = malloc(BIG_LEN);
    size_t got = 0, step = 777;
    (void)state;

    assert_non_null(buf);
    unix_pair("big.sock", &c, &s);
    b.fd = c;
    b.rc = 1;
    assert_int_equal(pthread_create(&th, NULL, big_sender, &b), 0);
    /* Odd-sized reads, then one huge one: both paths loop over partial reads. */
    for (int i = 0; i < 100; i++, got += step)
        assert_int_equal(ripc__sock_recv_all(s, buf + got, step, 10000), 0);
    assert_int_equal(ripc__sock_recv_all(s, buf + got, BIG_LEN - got, 10000), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(b.rc, 0);
    assert_true(ripc_test_check(buf, BIG_LEN, 42));
    free(buf);
    ripc__sock_close(c);
    ripc__sock_close(s);
}

/* ---- liveness ---- */

static void alive_after_close(intptr_t c, intptr_t s, int is_tcp)
{
    char buf[8];
    assert_int_equal(ripc__sock_alive(c), 1);
    assert_int_equal(ripc__sock_alive(s), 1);
    /* Pending data keeps it alive and is not consumed by the check. */
    assert_int_equal(ripc__sock_send_all(s, "hello", 5), 0);
    if (is_tcp)
        assert_true(wait_event(c, POLLIN, 5000));
    assert_int_equal(ripc__sock_alive(c), 1);
    assert_int_equal(ripc__sock_alive(c), 1);
    assert_int_equal(ripc__sock_recv_all(c, buf, 5, 5000), 0);
    assert_memory_equal(buf, "hello", 5);
    assert_int_equal(ripc__sock_alive(c), 1);

    ripc__sock_close(s);
    if (is_tcp) /* the FIN crosses loopback asynchronously: wait for it */
        assert_true(wait_event(c, POLLIN | POLLRDHUP, 5000));
    assert_int_equal(ripc__sock_alive(c), 0);
    ripc__sock_close(c);
}

static void test_sockets_alive_peer_close(void **state)
{
    intptr_t c = -1, s = -1;
    (void)state;
    unix_pair("alive.sock", &c, &s);
    alive_after_close(c, s, 0);
    tcp_pair(&c, &s);
    alive_after_close(c, s, 1);
}

static void alive_after_sigkill(ripc__addr *a, int is_tcp)
{
    char why[256], b;
    intptr_t lfd = -1, s = -1;
    int ready[2], pid;

    assert_int_equal(ripc__sock_listen(a, &lfd, why, sizeof why), 0);
    assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        intptr_t c = -1;
        close(ready[0]);
        if (ripc__sock_connect(a, &c, 5000, NULL, 0) != 0)
            _exit(10);
        if (write(ready[1], "r", 1) != 1)
            _exit(11);
        for (;;)
            pause();
    }
    close(ready[1]);
    assert_int_equal(read(ready[0], &b, 1), 1); /* the child is connected */
    close(ready[0]);
    s = accept_wait(lfd);
    assert_int_equal(ripc__sock_alive(s), 1);
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(ripc_test_wait(pid), 128 + SIGKILL);
    if (is_tcp)
        assert_true(wait_event(s, POLLIN | POLLRDHUP, 5000));
    assert_int_equal(ripc__sock_alive(s), 0);
    ripc__sock_close(s);
    ripc__sock_unlink(a, lfd);
    ripc__sock_close(lfd);
}

static void test_sockets_alive_peer_sigkill(void **state)
{
    ripc__addr a;
    char why[128];
    (void)state;
    addr_in(&a, "kill.sock");
    alive_after_sigkill(&a, 0);
    assert_int_equal(ripc__addr_parse(&a, "tcp://127.0.0.1:0", why, sizeof why), 0);
    alive_after_sigkill(&a, 1);
}

static void test_sockets_alive_bad_fd(void **state)
{
    int p[2];
    (void)state;
    assert_int_equal(pipe(p), 0);
    close(p[0]);
    close(p[1]);
    assert_int_equal(ripc__sock_alive(p[0]), 0); /* closed descriptor: POLLNVAL */
}

/* ---- setup ---- */

static int group_setup(void **state)
{
    (void)state;
    if (mkdtemp(g_dir) == NULL) {
        perror("mkdtemp");
        return -1;
    }
    return 0;
}

/* Remove g_dir and whatever a failed test left in it (one level of subdirs). */
static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[512];
    if (d != NULL) {
        while ((e = readdir(d)) != NULL) {
            struct stat st;
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
                remove_tree(p);
            else
                unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

static int group_teardown(void **state)
{
    (void)state;
    remove_tree(g_dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sockets_parse_unix_forms),
        cmocka_unit_test(test_sockets_parse_tcp_forms),
        cmocka_unit_test(test_sockets_parse_errors),
        cmocka_unit_test(test_sockets_parse_length_limits),
        cmocka_unit_test(test_sockets_format_roundtrip),
        cmocka_unit_test(test_sockets_unix_roundtrip),
        cmocka_unit_test(test_sockets_unix_stale_reclaimed),
        cmocka_unit_test(test_sockets_unix_live_server_in_use),
        cmocka_unit_test(test_sockets_unix_not_socket_exists),
        cmocka_unit_test(test_sockets_unix_mode_0600),
        cmocka_unit_test(test_sockets_unlink_own_inode_only),
        cmocka_unit_test(test_sockets_unix_abstract),
        cmocka_unit_test(test_sockets_fd_passing_fork),
        cmocka_unit_test(test_sockets_fds_received_cloexec),
        cmocka_unit_test(test_sockets_fds_too_many_eproto),
        cmocka_unit_test(test_sockets_fds_ctrunc_eproto),
        cmocka_unit_test(test_sockets_try_recv_fd_eproto),
        cmocka_unit_test(test_sockets_closer_fault_signals_unblocked),
        cmocka_unit_test(test_sockets_send_fds_bad_args),
        cmocka_unit_test(test_sockets_peer_cred_unix),
        cmocka_unit_test(test_sockets_peer_cred_tcp_enotsup),
        cmocka_unit_test(test_sockets_tcp_roundtrip),
        cmocka_unit_test(test_sockets_tcp_ipv6_loopback),
        cmocka_unit_test(test_sockets_connect_refused_unix),
        cmocka_unit_test(test_sockets_connect_refused_tcp),
        cmocka_unit_test(test_sockets_connect_timeout_backlog_full),
        cmocka_unit_test(test_sockets_recv_timeout),
        cmocka_unit_test(test_sockets_recv_eof_mid_message),
        cmocka_unit_test(test_sockets_send_closed_peer_epipe),
        cmocka_unit_test(test_sockets_large_transfer),
        cmocka_unit_test(test_sockets_alive_peer_close),
        cmocka_unit_test(test_sockets_alive_peer_sigkill),
        cmocka_unit_test(test_sockets_alive_bad_fd),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
