/* SPDX-License-Identifier: MIT */
/*
 * The control channel on Windows (sockets/sock.h, "On Windows"): named
 * pipes for unix: addresses, Winsock2 for tcp://; bytes both ways,
 * timeouts, the peer's pid and user, a broken pipe when the peer ends,
 * shutdown.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shm/clock.h"
#include "sockets/closer.h"
#include "sockets/sock.h"
#include "windows/win_support.h"

/* A pipe address of this process alone: the pipe name space is the
 * machine's. */
static void pipe_addr(ripc__addr *a, const char *tag)
{
    char url[96];
    snprintf(url, sizeof url, "unix:ringipc-test/%lu/%s", (unsigned long)GetCurrentProcessId(),
             tag);
    char why[128];
    WCHECK_EQ(ripc__addr_parse(a, url, why, sizeof why), 0);
}

/* A connected pair over a pipe (or tcp): the listener, our client end, the
 * server's end. */
static void pair(ripc__addr *a, intptr_t *lfd, intptr_t *cfd, intptr_t *sfd)
{
    char why[160] = "";
    WCHECK_EQ(ripc__sock_listen(a, lfd, why, sizeof why), 0);
    WCHECK_EQ(ripc__sock_accept(*lfd, sfd), -EAGAIN);
    WCHECK_EQ(ripc__sock_connect(a, cfd, 2000, why, sizeof why), 0);
    WCHECK_EQ(ripc__sock_wait(*lfd, RIPC_SOCK_IN, ripc__deadline(5000)), RIPC_SOCK_IN);
    WCHECK_EQ(ripc__sock_accept(*lfd, sfd), 0);
    WCHECK(*sfd != *cfd);
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(seed + i * 7 + (i >> 9));
}

static void exchange(intptr_t x, intptr_t y)
{
    char buf[16];
    WCHECK_EQ(ripc__sock_send_all(x, "hello", 5), 0);
    WCHECK_EQ(ripc__sock_recv_all(y, buf, 5, 2000), 0);
    WCHECK(memcmp(buf, "hello", 5) == 0);
    WCHECK_EQ(ripc__sock_send_all(y, "back!", 5), 0);
    WCHECK_EQ(ripc__sock_recv_all(x, buf, 5, 2000), 0);
    WCHECK(memcmp(buf, "back!", 5) == 0);
}

/* ---- many bytes while the other side reads ---- */

#define BULK (3u * 1024 * 1024 + 777)

struct bulk {
    intptr_t fd;
    int rc;
};

static DWORD WINAPI bulk_reader(void *arg)
{
    struct bulk *b = arg;
    unsigned char *got = malloc(BULK), *want = malloc(BULK);
    fill(want, BULK, 3);
    b->rc = ripc__sock_recv_all(b->fd, got, BULK, 20000);
    if (b->rc == 0 && memcmp(got, want, BULK) != 0)
        b->rc = -EILSEQ;
    free(got);
    free(want);
    return 0;
}

static void bulk(intptr_t from, intptr_t to)
{
    struct bulk b = {.fd = to, .rc = 1};
    unsigned char *data = malloc(BULK);
    fill(data, BULK, 3);
    HANDLE t = CreateThread(NULL, 0, bulk_reader, &b, 0, NULL);
    WCHECK(t != NULL);
    /* try_send and waits for room, as a master's sender does. */
    size_t done = 0;
    while (done < BULK) {
        /* Two pieces, as a frame's header and payload go. */
        size_t rest = BULK - done, alen = rest < 1000 ? rest : 1000;
        long r = ripc__sock_try_send2(from, data + done, alen, data + done + alen, rest - alen);
        if (r == -EAGAIN) {
            WCHECK_EQ(ripc__sock_wait(from, RIPC_SOCK_OUT, ripc__deadline(10000)), RIPC_SOCK_OUT);
            continue;
        }
        WCHECK(r > 0);
        done += (size_t)r;
    }
    WCHECK_EQ(WaitForSingleObject(t, 30000), WAIT_OBJECT_0);
    CloseHandle(t);
    WCHECK_EQ(b.rc, 0);
    free(data);
}

static void test_pipe_exchange(void)
{
    ripc__addr a;
    intptr_t l, c, s;
    pipe_addr(&a, "exchange");
    pair(&a, &l, &c, &s);
    exchange(c, s);
    bulk(c, s);
    bulk(s, c);
    exchange(s, c);
    WCHECK_EQ(ripc__sock_alive(c), 1);
    WCHECK_EQ(ripc__sock_alive(s), 1);
    ripc__sock_close(c);
    /* Our end is gone: theirs reads the end of the stream. */
    char buf[4];
    WCHECK_EQ(ripc__sock_wait(s, RIPC_SOCK_IN, ripc__deadline(5000)), RIPC_SOCK_IN | RIPC_SOCK_HUP);
    WCHECK_EQ(ripc__sock_try_recv(s, buf, sizeof buf), 0);
    WCHECK_EQ(ripc__sock_recv_all(s, buf, 1, 1000), -EPIPE);
    WCHECK_EQ(ripc__sock_alive(s), 0);
    ripc__sock_close(s);
    ripc__sock_close(l);
}

static void test_pipe_names(void)
{
    ripc__addr a, b;
    intptr_t l, l2, c;
    char why[160] = "";
    pipe_addr(&a, "names");
    WCHECK_EQ(ripc__sock_listen(&a, &l, why, sizeof why), 0);
    WCHECK(a.dev == 0 && a.ino == 0);
    /* The name is held: a second listener is refused, not a second
     * instance of the first. */
    b = a;
    WCHECK_EQ(ripc__sock_listen(&b, &l2, why, sizeof why), -EADDRINUSE);
    /* '\' and '/' are the same name; a bare name is unix:. */
    char url[96];
    snprintf(url, sizeof url, "ringipc-test\\%lu\\names", (unsigned long)GetCurrentProcessId());
    WCHECK_EQ(ripc__addr_parse(&b, url, why, sizeof why), 0);
    WCHECK_EQ(ripc__sock_connect(&b, &c, 2000, why, sizeof why), 0);
    ripc__sock_close(c);
    ripc__sock_unlink(&a, l);
    ripc__sock_close(l);
    /* Gone with its last handle: nobody listens, and it can be had again. */
    WCHECK_EQ(ripc__sock_connect(&a, &c, 500, why, sizeof why), -ECONNREFUSED);
    WCHECK_EQ(ripc__sock_listen(&a, &l, why, sizeof why), 0);
    ripc__sock_close(l);
    WCHECK_EQ(ripc__addr_parse(&b, "unix:@abstract", why, sizeof why), -ENOTSUP);
}

static void test_timeouts(void)
{
    ripc__addr a;
    intptr_t l, c, s;
    pipe_addr(&a, "timeouts");
    pair(&a, &l, &c, &s);
    char buf[8];
    uint64_t t0 = ripc__now_ns();
    WCHECK_EQ(ripc__sock_recv_all(s, buf, sizeof buf, 200), -ETIMEDOUT);
    uint64_t dt = ripc__now_ns() - t0;
    WCHECK(dt >= 150000000u && dt < 5000000000u);
    WCHECK_EQ(ripc__sock_wait(s, RIPC_SOCK_IN, ripc__deadline(100)), 0);
    WCHECK_EQ(ripc__sock_try_recv(s, buf, sizeof buf), -EAGAIN);
    /* Writable until the pipe and our buffer are full; then a bounded
     * wait for room ends at its deadline; a read on the other side makes
     * room. */
    WCHECK_EQ(ripc__sock_wait(c, RIPC_SOCK_OUT, ripc__deadline(100)), RIPC_SOCK_OUT);
    static char junk[64 * 1024];
    size_t sent = 0;
    long r;
    while ((r = ripc__sock_try_send2(c, junk, sizeof junk, NULL, 0)) > 0)
        sent += (size_t)r;
    WCHECK_EQ(r, -EAGAIN);
    WCHECK(sent >= sizeof junk);
    WCHECK_EQ(ripc__sock_wait(c, RIPC_SOCK_OUT, ripc__deadline(100)), 0);
    char *sink = malloc(sent);
    WCHECK_EQ(ripc__sock_recv_all(s, sink, sent, 5000), 0);
    free(sink);
    WCHECK_EQ(ripc__sock_wait(c, RIPC_SOCK_OUT, ripc__deadline(5000)), RIPC_SOCK_OUT);
    /* Descriptors do not travel here. */
    int fds[1] = {0};
    WCHECK_EQ(ripc__sock_send_fds(c, "x", 1, fds, 1), -ENOTSUP);
    WCHECK_EQ(ripc__sock_try_send_fds(c, "x", 1, fds, 1), -ENOTSUP);
    ripc__sock_close(c);
    ripc__sock_close(s);
    ripc__sock_close(l);
}

/* ---- I/O started by a thread that ends ---- */

struct filler {
    intptr_t fd;
    size_t sent;
};

/* Write numbered bytes until the pipe is full (the last write left in
 * flight), then end: Windows cancels what a thread started when it exits. */
static DWORD WINAPI filler_main(void *arg)
{
    struct filler *f = arg;
    unsigned char chunk[24000];
    for (;;) {
        fill(chunk, sizeof chunk, 0);
        for (size_t i = 0; i < sizeof chunk; i++)
            chunk[i] = (unsigned char)((f->sent + i) % 251);
        long r = ripc__sock_try_send2(f->fd, chunk, sizeof chunk, NULL, 0);
        if (r <= 0)
            break;
        f->sent += (size_t)r;
    }
    return 0;
}

static void test_io_outlives_thread(void)
{
    ripc__addr a;
    intptr_t l, c, s;
    pipe_addr(&a, "outlives");
    pair(&a, &l, &c, &s);
    /* s's read was started by this thread; c's write by one that ends. */
    struct filler f = {.fd = c};
    HANDLE t = CreateThread(NULL, 0, filler_main, &f, 0, NULL);
    WCHECK(t != NULL);
    WCHECK_EQ(WaitForSingleObject(t, 10000), WAIT_OBJECT_0);
    CloseHandle(t);
    WCHECK(f.sent > 0);
    /* Every byte handed over arrives, in order, and nothing more. */
    unsigned char *got = malloc(f.sent);
    WCHECK_EQ(ripc__sock_recv_all(s, got, f.sent, 10000), 0);
    for (size_t i = 0; i < f.sent; i++)
        if (got[i] != (unsigned char)(i % 251))
            WCHECK_EQ(i, f.sent);
    free(got);
    WCHECK_EQ(ripc__sock_wait(s, RIPC_SOCK_IN, ripc__deadline(200)), 0);
    WCHECK_EQ(ripc__sock_alive(c), 1);
    exchange(c, s);
    ripc__sock_close(c);
    ripc__sock_close(s);
    ripc__sock_close(l);
}

/* ---- shutdown ---- */

struct blocked {
    intptr_t fd;
    int rc;
    HANDLE started;
};

static DWORD WINAPI blocked_reader(void *arg)
{
    struct blocked *b = arg;
    char buf[4];
    SetEvent(b->started);
    b->rc = ripc__sock_recv_all(b->fd, buf, sizeof buf, -1);
    return 0;
}

static void test_shutdown(void)
{
    ripc__addr a;
    intptr_t l, c, s;
    char buf[8];
    pipe_addr(&a, "shutdown");
    pair(&a, &l, &c, &s);
    /* SHUT_WR: what was sent is read, then the end of the stream. */
    WCHECK_EQ(ripc__sock_send_all(c, "last", 4), 0);
    ripc__sock_shutdown(c, RIPC_SOCK_SHUT_WR);
    WCHECK_EQ(ripc__sock_recv_all(s, buf, 4, 2000), 0);
    WCHECK(memcmp(buf, "last", 4) == 0);
    WCHECK_EQ(ripc__sock_recv_all(s, buf, 1, 2000), -EPIPE);
    WCHECK_EQ(ripc__sock_try_send2(c, "x", 1, NULL, 0), -EPIPE);
    ripc__sock_close(c);
    ripc__sock_close(s);

    /* SHUT_RDWR from another thread ends a wait without a limit. */
    WCHECK_EQ(ripc__sock_connect(&a, &c, 2000, NULL, 0), 0);
    WCHECK_EQ(ripc__sock_wait(l, RIPC_SOCK_IN, ripc__deadline(5000)), RIPC_SOCK_IN);
    WCHECK_EQ(ripc__sock_accept(l, &s), 0);
    struct blocked b = {.fd = s, .rc = 1, .started = CreateEventW(NULL, TRUE, FALSE, NULL)};
    HANDLE t = CreateThread(NULL, 0, blocked_reader, &b, 0, NULL);
    WCHECK(t != NULL);
    WCHECK_EQ(WaitForSingleObject(b.started, 5000), WAIT_OBJECT_0);
    ripc__sock_shutdown(s, RIPC_SOCK_SHUT_RDWR);
    WCHECK_EQ(WaitForSingleObject(t, 5000), WAIT_OBJECT_0);
    WCHECK_EQ(b.rc, -EPIPE);
    CloseHandle(t);
    CloseHandle(b.started);
    /* ... and the peer sees its end. */
    WCHECK_EQ(ripc__sock_recv_all(c, buf, 1, 2000), -EPIPE);
    ripc__sock_close(s);
    ripc__sock_close(c);
    ripc__sock_close(l);
}

/* ---- a second process: pid, user, its end ---- */

/* The child: connect to the address the parent names, say our pid, send
 * three bytes, then wait to be terminated (or exit, as told). */
static int child_main(const char *role, HANDLE from, HANDLE to)
{
    ripc__addr a;
    char why[160];
    uint64_t tag = win_get(from);
    char url[96];
    snprintf(url, sizeof url, "unix:ringipc-test/%lu/peer", (unsigned long)tag);
    if (ripc__addr_parse(&a, url, why, sizeof why) != 0)
        return 2;
    intptr_t c;
    if (ripc__sock_connect(&a, &c, 5000, why, sizeof why) != 0)
        return 3;
    int32_t pid = -1;
    uint32_t uid = 1;
    if (ripc__sock_peer_cred(c, &uid, NULL, &pid) != 0 || (uint64_t)pid != tag || uid != 0 ||
        ripc__sock_peer_same_user(c) != 1)
        return 4;
    if (ripc__sock_send_all(c, "hi!", 3) != 0)
        return 5;
    win_put(to, 1);
    if (strcmp(role, "exit") == 0)
        return 0; /* the pipe closes with the process */
    Sleep(INFINITE);
    return 6;
}

static void peer_ends(const char *role)
{
    ripc__addr a;
    intptr_t l, s;
    char why[160];
    pipe_addr(&a, "peer");
    WCHECK_EQ(ripc__sock_listen(&a, &l, why, sizeof why), 0);
    win_child c;
    win_child_start(&c, role);
    win_put(c.to, GetCurrentProcessId());
    WCHECK_EQ(ripc__sock_wait(l, RIPC_SOCK_IN, ripc__deadline(10000)), RIPC_SOCK_IN);
    WCHECK_EQ(ripc__sock_accept(l, &s), 0);
    int32_t pid = -1;
    uint32_t uid = 1, gid = 1;
    WCHECK_EQ(ripc__sock_peer_cred(s, &uid, &gid, &pid), 0);
    WCHECK_EQ(pid, c.pid);
    WCHECK_EQ(uid, 0);
    WCHECK_EQ(gid, 0);
    WCHECK_EQ(ripc__sock_peer_same_user(s), 1);
    WCHECK_EQ(win_get(c.from), 1);
    char buf[4];
    WCHECK_EQ(ripc__sock_recv_all(s, buf, 3, 5000), 0);
    WCHECK(memcmp(buf, "hi!", 3) == 0);
    if (strcmp(role, "kill") == 0)
        WCHECK(TerminateProcess(c.process, 9));
    /* Its end of the pipe goes with it: a wait for a hang-up ends, reads
     * and writes say -EPIPE. */
    WCHECK(ripc__sock_wait(s, RIPC_SOCK_HUP, ripc__deadline(5000)) & RIPC_SOCK_HUP);
    WCHECK_EQ(ripc__sock_recv_all(s, buf, 1, 5000), -EPIPE);
    WCHECK_EQ(ripc__sock_alive(s), 0);
    long r = 0;
    for (int i = 0; i < 100 && r >= 0; i++) {
        r = ripc__sock_try_send2(s, "x", 1, NULL, 0);
        if (r == -EAGAIN)
            (void)ripc__sock_wait(s, RIPC_SOCK_OUT, ripc__deadline(100));
    }
    WCHECK_EQ(r, -EPIPE);
    long code = win_child_end(&c, 10000);
    WCHECK_EQ(code, strcmp(role, "kill") == 0 ? 9 : 0);
    ripc__sock_close(s);
    ripc__sock_close(l);
}

static void test_peer_killed(void)
{
    peer_ends("kill");
}

static void test_peer_exits(void)
{
    peer_ends("exit");
}

static void test_own_pid(void)
{
    ripc__addr a;
    intptr_t l, c, s;
    pipe_addr(&a, "ownpid");
    pair(&a, &l, &c, &s);
    int32_t pid = -1;
    WCHECK_EQ(ripc__sock_peer_cred(c, NULL, NULL, &pid), 0);
    WCHECK_EQ(pid, GetCurrentProcessId());
    pid = -1;
    WCHECK_EQ(ripc__sock_peer_cred(s, NULL, NULL, &pid), 0);
    WCHECK_EQ(pid, GetCurrentProcessId());
    ripc__sock_close(c);
    ripc__sock_close(s);
    ripc__sock_close(l);
}

/* ---- tcp ---- */

static void test_tcp_loopback(void)
{
    ripc__addr a;
    intptr_t l, c, s;
    char why[160] = "";
    WCHECK_EQ(ripc__addr_parse(&a, "tcp://127.0.0.1:0", why, sizeof why), 0);
    pair(&a, &l, &c, &s);
    WCHECK(a.port != 0);
    exchange(c, s);
    bulk(s, c);
    WCHECK_EQ(ripc__sock_peer_cred(s, NULL, NULL, NULL), -ENOTSUP);
    char buf[4];
    WCHECK_EQ(ripc__sock_wait(s, RIPC_SOCK_IN, ripc__deadline(100)), 0);
    /* SHUT_WR: the peer reads the end, and can still write to us. */
    ripc__sock_shutdown(c, RIPC_SOCK_SHUT_WR);
    WCHECK_EQ(ripc__sock_recv_all(s, buf, 1, 2000), -EPIPE);
    WCHECK_EQ(ripc__sock_send_all(s, "ok", 2), 0);
    WCHECK_EQ(ripc__sock_recv_all(c, buf, 2, 2000), 0);
    ripc__sock_close(c);
    ripc__sock_close(s);
    /* Nobody at the port any more: refused. */
    ripc__sock_close(l);
    WCHECK_EQ(ripc__sock_connect(&a, &c, 2000, why, sizeof why), -ECONNREFUSED);
}

int main(int argc, char **argv)
{
    const char *role;
    HANDLE from, to;
    if (win_child_args(argc, argv, &role, &from, &to))
        return child_main(role, from, to);
    win_case("pipe_exchange", test_pipe_exchange);
    win_case("pipe_names", test_pipe_names);
    win_case("timeouts", test_timeouts);
    win_case("io_outlives_thread", test_io_outlives_thread);
    win_case("shutdown", test_shutdown);
    win_case("own_pid", test_own_pid);
    win_case("peer_killed", test_peer_killed);
    win_case("peer_exits", test_peer_exits);
    win_case("tcp_loopback", test_tcp_loopback);
    return 0;
}
