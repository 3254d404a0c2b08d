/*
 * Descriptors a worker passes the master: the last close of one runs its
 * release in the closing thread, and a worker chooses how long that takes.
 * Here it passes a TCP socket with SO_LINGER {1, 10} and unsent data (its
 * peer, a listener of the hostile child, never accepts), and closes its own
 * copy, so that the master holds the last reference; a close of it on a
 * dispatch thread would hold that thread for 10 s. The master is this
 * process with ripc_server_run(s, 1): one dispatch thread, which a good
 * worker (ripc_client, another child) keeps busy with requests. Every
 * request of the good worker, from before the hostile child starts until
 * 20 requests after the master has dealt with it, must be answered within
 * 2 s. A descriptor anywhere but with a LARGE frame (docs/protocol.md)
 * breaks the protocol: the worker is dropped (-EPROTO), or its handshake
 * refused with a REJECT that says why. The ways in:
 *
 *   large_socket     the socket instead of the memfd of a LARGE frame
 *   large_extra      a LARGE frame with a memfd and the socket: one too many
 *   hello_fd         attached to the HELLO (the kernel drops descriptors a
 *                    plain read meets, in the reader)
 *   frame_fd         socket mode: attached to a frame (the same, on the stream)
 *   bell_fd          attached to a ring of the master's doorbell socket
 *   queued_at_close  queued in the control socket behind junk that gets the
 *                    worker dropped: closing a unix socket releases what is
 *                    queued in it, in the closing thread
 *
 * And many: a worker that connects again and again (socket mode), each
 * time with a frame that carries as many descriptors as the kernel lets
 * one message carry. The first time, RIPC_CLOSER_THREADS of them are unix
 * sockets whose close blocks for SLOW_S s (a lingering socket queued in
 * each, which the closers cannot unlinger), so every closer is held and
 * the rest wait. Each connection must be dropped (-EPROTO), the good worker
 * served throughout, the master's descriptors must stay within the bound
 * of sockets/closer.h (it accepts no connection while the closers hold
 * RIPC_CLOSER_MAX), and come back to where they were once the closers are
 * done.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ringipc/ring.h"
#include "ringipc/ringipc.h"
#include "sockets/closer.h"
#include "sockets/sock.h"
#include "src/proto.h"
#include "support/hconn.h"
#include "support/support.h"

#define T_ECHO      1 /* request: echoed */
#define T_NOTE      2 /* one-way: counted */
#define T_HOLD      3 /* one-way: the handler holds the dispatch thread until `go` */
#define RING        4096u
#define LINGER_S    10
#define BOUND_MS    2000 /* the slowest good request allowed */
#define AFTER       20   /* good requests after the master dealt with the hostile */
#define LARGE_BYTES 4096u
#define MANY_CONNS  8 /* connections of the `many` worker */
#define SLOW_S      2 /* how long its slow closes take */

struct shared {
    ripc_test_tally good;
    _Atomic int stop_good;
    _Atomic int hostile_done; /* hostile -> master: all sent, own copy closed */
    _Atomic int release;      /* master -> hostile: you may go (and your listener) */
    _Atomic int holding;      /* master -> hostile: inside the T_HOLD handler */
    _Atomic int go;           /* hostile -> master: the T_HOLD handler may return */
    _Atomic int rejected;     /* hostile -> master: 1 its HELLO was refused as it should be */
    char reject_why[128];     /* what the REJECT said */
    _Atomic int many_dropped; /* hostile -> master: `many` connections dropped */
    _Atomic int many_err;     /* hostile -> master: the step of `many` that failed */
    _Atomic int play;         /* master -> hostile: the case to play, plus one */
};

static struct {
    ripc_server *s;
    char url[96];
    struct shared *sh;
    pthread_t run_th;
    pid_t good, hostile;
    _Atomic int notes;
    _Atomic int joined_hostile;
    _Atomic int left_hostile, left_reason;
} M;

/* Wait (polling, bounded) for a condition another process or thread sets. */
#define WAIT_FOR(cond, ms)                                                                         \
    do {                                                                                           \
        uint64_t end_ = ripc_test_now_ms() + (ms);                                                 \
        while (!(cond) && ripc_test_now_ms() < end_)                                               \
            usleep(1000);                                                                          \
    } while (0)

/* ---- the master ---- */

static void on_hold(ripc_peer *from, const ripc_msg *msg, void *arg)
{
    (void)from;
    (void)msg;
    (void)arg;
    atomic_store(&M.sh->holding, 1);
    WAIT_FOR(atomic_load(&M.sh->go), 10000);
}

static void on_join(ripc_peer *p, void *arg)
{
    (void)arg;
    if (strcmp(ripc_peer_name(p), "hostile") == 0)
        atomic_store(&M.joined_hostile, 1);
}

static void on_left(ripc_peer *p, int reason, void *arg)
{
    (void)arg;
    if (strcmp(ripc_peer_name(p), "hostile") == 0) {
        atomic_store(&M.left_reason, reason);
        atomic_store(&M.left_hostile, 1);
    }
}

static void *run_main(void *arg)
{
    (void)arg;
    ripc_server_run(M.s, 1);
    return NULL;
}

/* ---- the good worker (child) ---- */

static int good_worker(void)
{
    ripc_client *c;
    ripc_options opt = {.name = "good"};
    int rc = ripc_client_open(&c, M.url, &opt);
    if (rc < 0) {
        atomic_store(&M.sh->good.err, rc);
        return 2;
    }
    for (uint64_t seq = 1; !atomic_load(&M.sh->stop_good); seq++) {
        /* Far longer than the linger time: a stall shows as a slow answer. */
        if (ripc_test_echo_request(c, T_ECHO, seq, 64, 4 * LINGER_S * 1000, &M.sh->good) < 0) {
            ripc_client_close(c);
            return 3;
        }
    }
    ripc_client_close(c);
    return 0;
}

/* ---- the hostile worker's tools (child side) ---- */

/* The master's answer to a HELLO that came with a descriptor: a REJECT
 * (EPROTO) whose reason names the descriptor, then the end of the stream. */
static void h_read_reject(int sock)
{
    uint8_t fr[RIPC_FRAME_HDR + RIPC_REASON_MAX + 1];
    ripc__frame f;
    ripc__sock_set_nonblock(sock, 0);
    if (ripc__sock_recv_all(sock, fr, RIPC_FRAME_HDR, 4 * LINGER_S * 1000) != 0 ||
        ripc__frame_decode(fr, &f, RIPC_REASON_MAX) != 0 || f.ftype != RIPC_FRAME_REJECT ||
        ripc__sock_recv_all(sock, fr + RIPC_FRAME_HDR, (size_t)f.len, 1000) != 0)
        return;
    size_t n =
        (size_t)f.len < sizeof M.sh->reject_why - 1 ? (size_t)f.len : sizeof M.sh->reject_why - 1;
    memcpy(M.sh->reject_why, fr + RIPC_FRAME_HDR, n);
    M.sh->reject_why[n] = 0;
    if (f.type == EPROTO && strstr(M.sh->reject_why, "descriptor") != NULL)
        atomic_store(&M.sh->rejected, 1);
}

/* All sent and our copy closed: say so, and keep the listener (and with it
 * the lingering connection) until the master has measured. */
static int h_done(void)
{
    atomic_store(&M.sh->hostile_done, 1);
    WAIT_FOR(atomic_load(&M.sh->release), 60000);
    return 0;
}

static int h_record(ripc_ring *r, uint16_t type, uint16_t flags, uint64_t id, const void *p,
                    size_t len)
{
    void *buf;
    if (ripc_ring_reserve(r, RIPC_MSG_HDR + len, &buf) < 0)
        return -1;
    ripc__msg_encode(buf, type, RIPC_KIND_ONEWAY, flags, id);
    memcpy((uint8_t *)buf + RIPC_MSG_HDR, p, len);
    ripc_ring_commit(r, RIPC_MSG_HDR + len);
    return 0;
}

static int h_open_shm(ripc_test_hconn *h, ripc_ring **r, const char *name)
{
    if (ripc_test_hopen(h, M.url, name, RING, RIPC_XPORT_SHM) < 0 ||
        ripc_ring_attach(r, h->w2m, h->ring_sz, RIPC_RING_PRODUCER) < 0)
        return -1;
    return 0;
}

static int sealed_memfd(size_t len)
{
    int fd = memfd_create("passed", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0 || ftruncate(fd, (off_t)len) != 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
        return -1;
    return fd;
}

enum {
    C_LARGE_SOCKET,
    C_LARGE_EXTRA,
    C_HELLO_FD,
    C_FRAME_FD,
    C_BELL_FD,
    C_QUEUED_AT_CLOSE,
    C_MANY
};

/* Every case holds the master's only dispatch thread (a T_HOLD note) while
 * it sends and closes its own copy, so that whatever the master does with
 * the descriptor it does as its last holder (were it to read it first, our
 * close would be the last one), and reads nothing before all is sent. */
static int hostile(int which)
{
    int listener, ls = ripc_test_lingering_socket(LINGER_S, &listener);
    WCHECK(ls >= 0, "no lingering loopback TCP socket: %s", strerror(errno));
    ripc_test_hconn h;
    ripc_ring *r;
    uint8_t fr[RIPC_FRAME_HDR + RIPC_HANDSHAKE_MAX];
    int shm = which != C_HELLO_FD && which != C_FRAME_FD;
    WCHECK(h_open_shm(&h, &r, shm ? "hostile" : "holder") == 0, "handshake");
    int sock = -1;
    if (which == C_HELLO_FD)
        WCHECK((sock = ripc_test_hconnect(M.url)) >= 0, "connect");
    if (which == C_FRAME_FD)
        WCHECK((sock = ripc_test_hconnect(M.url)) >= 0 &&
                   ripc_test_socket_hello(sock, "hostile", NULL) == 0,
               "socket-mode handshake");
    WCHECK(h_record(r, T_HOLD, 0, 1, "", 0) == 0, "hold");
    ripc_test_hring(&h);
    WAIT_FOR(atomic_load(&M.sh->holding), 10000);
    WCHECK(atomic_load(&M.sh->holding), "the master never held");
    switch (which) {
    case C_LARGE_SOCKET:
    case C_LARGE_EXTRA: {
        int fds[2] = {ls, ls}, n = 1;
        if (which == C_LARGE_EXTRA) {
            fds[0] = sealed_memfd(LARGE_BYTES);
            WCHECK(fds[0] >= 0, "memfd: %s", strerror(errno));
            n = 2;
        }
        ripc__frame f = {.ftype = RIPC_FRAME_LARGE,
                         .kind = RIPC_KIND_ONEWAY,
                         .type = T_NOTE,
                         .id = 2,
                         .len = LARGE_BYTES};
        ripc__frame_encode(fr, &f);
        WCHECK(ripc__sock_send_fds(h.sock, fr, RIPC_FRAME_HDR, fds, n) == 0, "LARGE frame");
        uint64_t len = LARGE_BYTES;
        WCHECK(h_record(r, T_NOTE, RIPC_MSGF_LARGE, 2, &len, sizeof len) == 0, "marker");
        break;
    }
    case C_HELLO_FD: {
        size_t n = ripc_test_hello(fr, "hostile", RING, RIPC_XPORT_SOCKET);
        WCHECK(ripc__sock_send_fds(sock, fr, n, &ls, 1) == 0, "HELLO");
        break;
    }
    case C_FRAME_FD: {
        ripc__frame f = {.ftype = RIPC_FRAME_MSG, .kind = RIPC_KIND_ONEWAY, .type = T_NOTE};
        ripc__frame_encode(fr, &f);
        WCHECK(ripc__sock_send_fds(sock, fr, RIPC_FRAME_HDR, &ls, 1) == 0, "frame");
        break;
    }
    case C_BELL_FD:
        WCHECK(h_record(r, T_NOTE, 0, 2, "", 0) == 0, "note");
        WCHECK(ripc__sock_send_fds(h.master_bell, "!", 1, &ls, 1) == 0, "ring with a descriptor");
        break;
    case C_QUEUED_AT_CLOSE:
        /* The master reads the junk (a frame header's worth) and drops us,
         * with the descriptor still queued behind it. */
        memset(fr, 0xEE, RIPC_FRAME_HDR);
        WCHECK(ripc__sock_send_all(h.sock, fr, RIPC_FRAME_HDR) == 0, "junk");
        WCHECK(ripc__sock_send_fds(h.sock, "!", 1, &ls, 1) == 0, "queued descriptor");
        break;
    }
    close(ls); /* the master holds the last reference now */
    atomic_store(&M.sh->go, 1);
    ripc_test_hring(&h);
    if (which == C_HELLO_FD)
        h_read_reject(sock);
    return h_done();
}

/* Send one frame header on sock with n descriptors attached (up to the
 * kernel's maximum for one message: more than ripc__sock_send_fds takes). */
static int send_many_fds(int sock, const int *fds, int n)
{
    uint8_t fr[RIPC_FRAME_HDR];
    ripc__frame f = {.ftype = RIPC_FRAME_MSG, .kind = RIPC_KIND_ONEWAY, .type = T_NOTE};
    ripc__frame_encode(fr, &f);
    static union {
        char buf[CMSG_SPACE(sizeof(int) * RIPC_SOCK_RECV_FDS)];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {.iov_base = fr, .iov_len = sizeof fr};
    struct msghdr m = {.msg_iov = &iov,
                       .msg_iovlen = 1,
                       .msg_control = ctl.buf,
                       .msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)n);
    return sendmsg(sock, &m, MSG_NOSIGNAL) == (ssize_t)sizeof fr ? 0 : -1;
}

static int hostile_many(void)
{
    int listener[RIPC_CLOSER_THREADS], slow[RIPC_CLOSER_THREADS], p[2];
    for (int i = 0; i < RIPC_CLOSER_THREADS; i++) {
        slow[i] = ripc_test_slow_close_socket(SLOW_S, &listener[i]);
        WCHECK(slow[i] >= 0, "no slow-closing socket: %s", strerror(errno));
    }
    WCHECK(pipe2(p, O_CLOEXEC) == 0, "pipe");
    /* The dispatch thread held (as in hostile()) while the first frame
     * goes and we close our copies of the slow sockets, so that the
     * master's closes of them are the last. */
    ripc_test_hconn h;
    ripc_ring *r;
    WCHECK(h_open_shm(&h, &r, "holder") == 0, "handshake");
    int fds[RIPC_SOCK_RECV_FDS];
    for (int k = 0; k < MANY_CONNS; k++) {
        for (int i = 0; i < RIPC_SOCK_RECV_FDS; i++) /* each a descriptor of its own there */
            fds[i] = k == 0 && i < RIPC_CLOSER_THREADS ? slow[i] : p[i & 1];
        int sock = ripc_test_hconnect(M.url);
        /* The master may take a while to accept this one: that is the
         * bound at work (it waits for the closers). */
        int rc = sock < 0 ? -1 : ripc_test_socket_hello(sock, "hostile", NULL);
        if (rc == 0 && k == 0) {
            WCHECK(h_record(r, T_HOLD, 0, 1, "", 0) == 0, "hold");
            ripc_test_hring(&h);
            WAIT_FOR(atomic_load(&M.sh->holding), 10000);
            WCHECK(atomic_load(&M.sh->holding), "the master never held");
        }
        if (rc == 0)
            rc = send_many_fds(sock, fds, RIPC_SOCK_RECV_FDS);
        if (k == 0) {
            for (int i = 0; i < RIPC_CLOSER_THREADS; i++)
                close(slow[i]); /* the master holds the last references */
            atomic_store(&M.sh->go, 1);
        }
        if (rc == 0)
            rc = ripc_test_hwait_drop(sock, 4 * LINGER_S * 1000) == 0 ? 0 : -2;
        if (rc < 0) {
            atomic_store(&M.sh->many_err, (k + 1) * 10 - rc);
            break;
        }
        close(sock);
        atomic_fetch_add(&M.sh->many_dropped, 1);
    }
    return h_done();
}

/* Forked at setup: plays the case the test names, or leaves at teardown. */
static int hostile_parked(void)
{
    WAIT_FOR(atomic_load(&M.sh->play) || atomic_load(&M.sh->release), 120000);
    int play = atomic_load(&M.sh->play);
    if (play == 0)
        return 0;
    return play - 1 == C_MANY ? hostile_many() : hostile(play - 1);
}

/* ---- master-side driver ---- */

static int teardown(void **state);

/* Both children are forked before the dispatch thread starts: a child
 * forked while another thread is inside the allocator may find it locked
 * (ASan's, before LLVM 18, takes no lock around fork). The hostile child
 * waits for the case the test gives it. */
static int setup(void **state)
{
    (void)state;
    memset(&M, 0, sizeof M);
    ripc_test_unix_url(M.url, sizeof M.url, "passed");
    M.sh = ripc_test_shared_alloc(sizeof *M.sh);
    assert_int_equal(ripc_test_echo_master(&M.s, M.url, NULL, T_ECHO), 0);
    ripc_server_handle(M.s, T_NOTE, ripc_test_on_count, &M.notes);
    ripc_server_handle(M.s, T_HOLD, on_hold, NULL);
    ripc_server_on_peer(M.s, on_join, on_left, NULL);
    fflush(stdout);
    M.good = fork();
    assert_true(M.good >= 0);
    if (M.good == 0)
        _exit(good_worker());
    M.hostile = fork();
    if (M.hostile == 0)
        _exit(hostile_parked());
    if (M.hostile < 0 || pthread_create(&M.run_th, NULL, run_main, NULL) != 0) {
        kill(M.good, SIGKILL);
        ripc_test_wait(M.good);
        if (M.hostile > 0) {
            kill(M.hostile, SIGKILL);
            ripc_test_wait(M.hostile);
        }
        ripc_server_close(M.s);
        ripc_test_shared_free(M.sh, sizeof *M.sh);
        fail_msg("could not start the hostile child or the dispatch thread");
    }
    WAIT_FOR(atomic_load(&M.sh->good.ok) >= 5 || atomic_load(&M.sh->good.bad), 10000);
    if (atomic_load(&M.sh->good.ok) < 5) {
        /* No child may outlive a failed setup (cmocka skips the teardown). */
        kill(M.good, SIGKILL);
        ripc_test_wait(M.good);
        M.good = 0;
        int ok = atomic_load(&M.sh->good.ok), err = atomic_load(&M.sh->good.err);
        teardown(state);
        fail_msg("the good worker made %d requests in 10 s (error: %s)", ok, ripc_strerror(err));
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    atomic_store(&M.sh->release, 1);
    atomic_store(&M.sh->go, 1);
    atomic_store(&M.sh->stop_good, 1);
    int gst = M.good > 0 ? ripc_test_wait(M.good) : 0;
    int hst = M.hostile > 0 ? ripc_test_wait(M.hostile) : 0;
    ripc_server_stop(M.s);
    pthread_join(M.run_th, NULL);
    ripc_server_close(M.s);
    ripc_test_shared_free(M.sh, sizeof *M.sh);
    if (gst != 0 || hst != 0)
        fail_msg("good worker exited %d, hostile %d", gst, hst);
    return 0;
}

static void good_after(uint64_t t0);

static void run_case(int which)
{
    atomic_store(&M.sh->good.max_ms, 0);
    uint64_t t0 = ripc_test_now_ms();
    atomic_store(&M.sh->play, which + 1);
    WAIT_FOR(atomic_load(&M.sh->hostile_done), 20000);
    assert_true(atomic_load(&M.sh->hostile_done));
    /* Until the master has dealt with what was sent (a stall would come
     * before these), then AFTER more good requests. */
    if (which == C_HELLO_FD) {
        WAIT_FOR(atomic_load(&M.sh->rejected), 4 * LINGER_S * 1000);
        if (!atomic_load(&M.sh->rejected))
            fail_msg("the HELLO with a descriptor was not refused (REJECT: \"%s\")",
                     M.sh->reject_why);
        assert_false(atomic_load(&M.joined_hostile));
    } else {
        WAIT_FOR(atomic_load(&M.left_hostile), 4 * LINGER_S * 1000);
        assert_true(atomic_load(&M.left_hostile));
        assert_int_equal(atomic_load(&M.left_reason), -EPROTO);
    }
    good_after(t0);
}

/* The master has dealt with the hostile: AFTER more good requests, and
 * none of them (nor any before) slow or failed. */
static void good_after(uint64_t t0)
{
    int ok0 = atomic_load(&M.sh->good.ok);
    WAIT_FOR(atomic_load(&M.sh->good.ok) >= ok0 + AFTER || atomic_load(&M.sh->good.bad),
             4 * LINGER_S * 1000);
    int max_ms = atomic_load(&M.sh->good.max_ms);
    print_message("good worker: slowest request %d ms (%d ok, %d failed), case took %.1f s\n",
                  max_ms, atomic_load(&M.sh->good.ok), atomic_load(&M.sh->good.bad),
                  (double)(ripc_test_now_ms() - t0) / 1e3);
    if (atomic_load(&M.sh->good.bad))
        fail_msg("a good request failed: %s", ripc_strerror(atomic_load(&M.sh->good.err)));
    assert_true(atomic_load(&M.sh->good.ok) >= ok0 + AFTER);
    if (max_ms > BOUND_MS)
        fail_msg("a good request took %d ms: the dispatch thread was held", max_ms);
}

static void test_passed_fds_many(void **state)
{
    (void)state;
    atomic_store(&M.sh->good.max_ms, 0);
    ripc__fd_dispose_wait();
    int base = ripc_test_count_fds(), peak = base;
    uint64_t t0 = ripc_test_now_ms();
    atomic_store(&M.sh->play, C_MANY + 1);
    while (!atomic_load(&M.sh->hostile_done) && ripc_test_now_ms() < t0 + 8 * LINGER_S * 1000) {
        int n = ripc_test_count_fds();
        if (n > peak)
            peak = n;
        usleep(500);
    }
    assert_true(atomic_load(&M.sh->hostile_done));
    /* One message's worth where it broke the rules and one more read as
     * its socket goes, per connection in the master's hands at once (one),
     * past what the closers may hold before it stops accepting. */
    int bound = RIPC_CLOSER_MAX + 2 * RIPC_SOCK_RECV_FDS + 16;
    print_message("descriptors: %d before, %d at the most (bound %d above)\n", base, peak, bound);
    if (atomic_load(&M.sh->many_err))
        fail_msg("hostile worker failed at step %d", atomic_load(&M.sh->many_err));
    assert_int_equal(atomic_load(&M.sh->many_dropped), MANY_CONNS);
    assert_int_equal(atomic_load(&M.left_reason), -EPROTO);
    if (peak > base + bound)
        fail_msg("the master held %d descriptors more than before (bound %d)", peak - base, bound);
    good_after(t0);
    /* The hostile's holder connection goes with it; then every descriptor
     * it passed must be closed. */
    atomic_store(&M.sh->release, 1);
    assert_int_equal(ripc_test_wait(M.hostile), 0);
    M.hostile = 0;
    ripc__fd_dispose_wait();
    WAIT_FOR(ripc_test_count_fds() == base, 10000);
    assert_int_equal(ripc_test_count_fds(), base);
}

static void test_passed_fds_large_socket(void **state)
{
    (void)state;
    run_case(C_LARGE_SOCKET);
}

static void test_passed_fds_large_extra(void **state)
{
    (void)state;
    run_case(C_LARGE_EXTRA);
}

static void test_passed_fds_hello_fd(void **state)
{
    (void)state;
    run_case(C_HELLO_FD);
}

static void test_passed_fds_frame_fd(void **state)
{
    (void)state;
    run_case(C_FRAME_FD);
}

static void test_passed_fds_bell_fd(void **state)
{
    (void)state;
    run_case(C_BELL_FD);
}

static void test_passed_fds_queued_at_close(void **state)
{
    (void)state;
    run_case(C_QUEUED_AT_CLOSE);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    ripc_test_filter(argc > 1 ? argv[1] : NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_passed_fds_large_socket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_passed_fds_large_extra, setup, teardown),
        cmocka_unit_test_setup_teardown(test_passed_fds_hello_fd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_passed_fds_frame_fd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_passed_fds_bell_fd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_passed_fds_queued_at_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_passed_fds_many, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
