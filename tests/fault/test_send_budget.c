/*
 * The master's send budget in socket mode (src/server_sockmode.c): a frame
 * over a receive buffer's base takes its size from one budget all workers
 * share, and what a sender leaves at its deadline is a tail the worker's
 * loop writes as the worker reads. Honest workers that read must get their
 * messages, a sender must not wait for what only its own thread can do, and
 * a send ends within its timeout.
 *
 *   handler_waits_for_its_own_loop  a handler on the only dispatch thread
 *                                   sends while the budget is held by tails
 *                                   that thread writes
 *   busy_loop_drops_no_reader       the loop is in a long handler while a
 *                                   sender waits for budget: the tails did
 *                                   not move because nobody wrote them
 *   timeout_cut_returns_in_time     a large send with a short timeout to a
 *                                   worker that does not read
 *   blocked_reader_keeps_its_tail   a worker whose receive buffer waits for
 *                                   budget still gets its tail written
 *   waiters_served_in_line          senders waiting for budget get it in the
 *                                   order they came, and sleep until it
 *                                   comes back (no naps to look)
 *   parked_holders_dropped          workers parked while idle are left
 *                                   tails they never read while a sender
 *                                   waits for budget: still judged, dropped
 *
 * The master is this process (ripc_server_run(1) on a thread); workers are
 * forked children, ordered by pipes.
 *
 * Usage: test_send_budget [test-name-filter]
 */
#include <errno.h>
#include <fcntl.h>
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
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ringipc/ringipc.h"
#include "sockets/sock.h"
#include "src/internal.h"
#include "src/proto.h"
#include "support/hconn.h"
#include "support/support.h"

#define BIG ((uint64_t)32 << 20)

enum { T_DATA = 1, T_ASK, T_PING, T_BUSY, T_END, T_FRAME };

#define MAX_KIDS 8

static struct {
    ripc_server *s;
    char url[128];
    ripc_test_runner run;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int joined;
    char names[MAX_KIDS][16];
    uint32_t ids[MAX_KIDS];
    _Atomic int left_stalled, left;
    unsigned char *big; /* BIG bytes, ripc_test_fill(.., 1) */
    /* handler_waits_for_its_own_loop */
    _Atomic int ask_rc;
    _Atomic uint64_t ask_ms;
    _Atomic int asked;
    /* busy_loop_drops_no_reader */
    int busy_fd; /* the handler says it is busy */
    int busy_ms;
    /* blocked_reader_keeps_its_tail */
    _Atomic int frames;
} M;

static void on_join(ripc_peer *p, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&M.mu);
    if (M.joined < MAX_KIDS) {
        snprintf(M.names[M.joined], sizeof M.names[0], "%s", ripc_peer_name(p));
        M.ids[M.joined] = ripc_peer_id(p);
        M.joined++;
    }
    pthread_cond_broadcast(&M.cv);
    pthread_mutex_unlock(&M.mu);
}

static void on_left(ripc_peer *p, int reason, void *arg)
{
    (void)arg;
    if (reason == -ETIMEDOUT) {
        print_message("%s dropped as stalled\n", ripc_peer_name(p));
        atomic_fetch_add(&M.left_stalled, 1);
    }
    atomic_fetch_add(&M.left, 1);
}

/* The id of the worker called name, once n workers joined. */
static uint32_t id_of(const char *name, int n)
{
    uint32_t id = 0;
    pthread_mutex_lock(&M.mu);
    while (M.joined < n)
        pthread_cond_wait(&M.cv, &M.mu);
    for (int i = 0; i < M.joined; i++)
        if (strcmp(M.names[i], name) == 0)
            id = M.ids[i];
    pthread_mutex_unlock(&M.mu);
    assert_true(id != 0);
    return id;
}

/* A handler sends BIG to the worker "A" from the dispatch thread. */
static void on_ask(ripc_peer *from, const ripc_msg *m, void *arg)
{
    (void)m;
    (void)arg;
    uint64_t t0 = ripc_test_now_ms();
    int rc = ripc_server_send(M.s, ripc_peer_id(from), T_DATA, M.big, BIG, 10000);
    atomic_store(&M.ask_ms, ripc_test_now_ms() - t0);
    atomic_store(&M.ask_rc, rc);
    atomic_store(&M.asked, 1);
}

static void on_ping(ripc_peer *from, const ripc_msg *m, void *arg)
{
    (void)arg;
    ripc_reply(from, m, "p", 1);
}

/* The dispatch thread is away: a handler that takes long (the case itself,
 * not a synchronisation). */
static void on_busy(ripc_peer *from, const ripc_msg *m, void *arg)
{
    (void)from;
    (void)m;
    (void)arg;
    ripc_test_write_all(M.busy_fd, "b", 1);
    usleep((useconds_t)M.busy_ms * 1000u);
}

static void on_frame(ripc_peer *from, const ripc_msg *m, void *arg)
{
    (void)from;
    (void)arg;
    if (m->len == BIG)
        atomic_fetch_add(&M.frames, 1);
}

static void open_master(uint64_t max_message)
{
    memset(&M, 0, sizeof M);
    pthread_mutex_init(&M.mu, NULL);
    pthread_cond_init(&M.cv, NULL);
    static int n;
    char url[96];
    snprintf(url, sizeof url, "unix:/tmp/ripc-budget-%d-%d.sock", (int)getpid(), n++);
    ripc_options opt = {.max_message = max_message, .transport = RIPC_TRANSPORT_SOCKET};
    char why[160] = "";
    int rc = ripc_server_open_ex(&M.s, url, &opt, why, sizeof why);
    if (rc < 0)
        fail_msg("server open %s: %s (%s)", url, ripc_strerror(rc), why);
    ripc_server_url(M.s, M.url, sizeof M.url);
    ripc_server_on_peer(M.s, on_join, on_left, NULL);
    ripc_server_handle(M.s, T_ASK, on_ask, NULL);
    ripc_server_handle(M.s, T_PING, on_ping, NULL);
    ripc_server_handle(M.s, T_BUSY, on_busy, NULL);
    ripc_server_handle(M.s, T_FRAME, on_frame, NULL);
    M.big = malloc((size_t)BIG);
    assert_non_null(M.big);
    ripc_test_fill(M.big, (size_t)BIG, 1);
}

/* Dispatch on a thread of its own, once the workers are forked (a child
 * forked from a process with more threads than this one would inherit a
 * dispatch thread's locks). */
static void start_dispatch(void)
{
    assert_int_equal(ripc_test_run_start(&M.run, M.s, 1), 0);
}

static void close_master(void)
{
    ripc_server_stop(M.s);
    ripc_test_run_join(&M.run);
    ripc_server_close(M.s);
    free(M.big);
}

/* ---- workers (forked children) ---- */

struct kid {
    const char *name;
    int go;        /* read a byte from it before the part that matters */
    int msgs;      /* BIG messages to receive (checked) */
    int recv_ms;   /* each */
    int ask, ping; /* send T_ASK / request T_PING then send T_BUSY first */
    int hold;      /* then wait for T_END before closing */
    uint64_t max;  /* max_message */
    pid_t pid;
};

static int kid_fail(const char *name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "worker %s: ", name);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return 1;
}

static int kid_main(struct kid *k)
{
    ripc_options o = {.name = k->name,
                      .transport = RIPC_TRANSPORT_SOCKET,
                      .max_message = k->max,
                      .connect_timeout_ms = 10000};
    ripc_client *c;
    char why[200] = "";
    int rc = ripc_client_open_ex(&c, M.url, &o, why, sizeof why);
    if (rc < 0)
        return kid_fail(k->name, "open: %s (%s)", ripc_strerror(rc), why);
    char b;
    if (ripc_test_read_within(k->go, &b, 1, 120000) < 0)
        return kid_fail(k->name, "go");
    if (k->ask && (rc = ripc_client_send(c, T_ASK, "a", 1, 5000)) < 0)
        return kid_fail(k->name, "ask: %s", ripc_strerror(rc));
    if (k->ping) {
        ripc_msg r;
        if ((rc = ripc_client_request(c, T_PING, "p", 1, &r, 10000)) < 0)
            return kid_fail(k->name, "ping: %s", ripc_strerror(rc));
        if ((rc = ripc_client_send(c, T_BUSY, "b", 1, 5000)) < 0)
            return kid_fail(k->name, "busy: %s", ripc_strerror(rc));
    }
    for (int i = 0; i < k->msgs; i++) {
        ripc_msg m;
        uint64_t t0 = ripc_test_now_ms();
        if ((rc = ripc_client_recv(c, &m, k->recv_ms)) < 0)
            return kid_fail(k->name, "recv %d: %s after %llu ms", i, ripc_strerror(rc),
                            (unsigned long long)(ripc_test_now_ms() - t0));
        if (m.type == T_END)
            return kid_fail(k->name, "end after %d of %d", i, k->msgs);
        if (m.len != BIG || !ripc_test_check(m.data, m.len, 1))
            return kid_fail(k->name, "message %d wrong (%llu bytes)", i, (unsigned long long)m.len);
    }
    for (ripc_msg m; k->hold;)
        if ((rc = ripc_client_recv(c, &m, 60000)) < 0 || m.type == T_END)
            break;
    ripc_client_close(c);
    return 0;
}

static void fork_kids(struct kid *k, int n)
{
    fflush(NULL);
    for (int i = 0; i < n; i++) {
        k[i].pid = fork();
        assert_true(k[i].pid >= 0);
        if (k[i].pid == 0)
            _exit(kid_main(&k[i]));
    }
}

/* Every worker exited 0. */
static void expect_kids_ok(struct kid *k, int n)
{
    int bad = 0;
    for (int i = 0; i < n; i++) {
        int st = ripc_test_wait(k[i].pid);
        if (st != 0) {
            print_message("worker %s: exit %d\n", k[i].name, st);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

/* ---- a handler on the only dispatch thread waits for budget that only
 * that thread can free: it writes those tails while it waits ---- */

static void test_budget_handler_waits_for_its_own_loop(void **state)
{
    (void)state;
    open_master(BIG);
    int go[2];
    assert_int_equal(pipe(go), 0);
    struct kid k[3] = {
        {.name = "B", .go = go[0], .msgs = 1, .recv_ms = 30000, .max = BIG},
        {.name = "C", .go = go[0], .msgs = 1, .recv_ms = 30000, .max = BIG},
        {.name = "A", .go = go[0], .msgs = 1, .recv_ms = 20000, .ask = 1, .max = BIG},
    };
    fork_kids(k, 3);
    close(go[0]);
    start_dispatch();
    uint32_t b = id_of("B", 3), c = id_of("C", 3);
    /* B and C do not read yet: their tails (kept at once: timeout 0) hold
     * nearly the whole budget. */
    assert_int_equal(ripc_server_send(M.s, b, T_DATA, M.big, BIG, 0), 0);
    assert_int_equal(ripc_server_send(M.s, c, T_DATA, M.big, BIG, 0), 0);
    ripc_test_write_all(go[1], "ggg", 3); /* B, C read; A asks the handler */
    expect_kids_ok(k, 3);
    close(go[1]);
    print_message("the handler's send: %s after %llu ms\n", ripc_strerror(atomic_load(&M.ask_rc)),
                  (unsigned long long)atomic_load(&M.ask_ms));
    assert_true(atomic_load(&M.asked));
    assert_int_equal(atomic_load(&M.ask_rc), 0);
    assert_int_equal(atomic_load(&M.left_stalled), 0);
    close_master();
}

/* ---- the loop is away in a long handler while a sender waits for budget:
 * the workers holding it read all along, their tails did not move because
 * nobody wrote them ---- */

struct waiter {
    uint32_t id;
    int timeout_ms;
    _Atomic pid_t tid;
    int rc;
};

static void *wait_budget(void *arg)
{
    struct waiter *w = arg;
    atomic_store(&w->tid, (pid_t)syscall(SYS_gettid));
    w->rc = ripc_server_send(M.s, w->id, T_DATA, M.big, BIG, w->timeout_ms);
    return NULL;
}

static void test_budget_busy_loop_drops_no_reader(void **state)
{
    (void)state;
    open_master(BIG);
    M.busy_ms = RIPC_RX_STALL_MS + 1500; /* longer than a period of the pace rule */
    int go[2], goa[2], busy[2];
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(goa), 0);
    assert_int_equal(pipe(busy), 0);
    M.busy_fd = busy[1];
    struct kid k[4] = {
        {.name = "B", .go = go[0], .msgs = 1, .recv_ms = 30000, .max = BIG},
        {.name = "C", .go = go[0], .msgs = 1, .recv_ms = 30000, .max = BIG},
        {.name = "D", .go = go[0], .msgs = 1, .recv_ms = 30000, .max = BIG},
        {.name = "A", .go = goa[0], .ping = 1, .hold = 1, .max = BIG},
    };
    fork_kids(k, 4);
    close(go[0]);
    close(goa[0]);
    start_dispatch();
    uint32_t b = id_of("B", 4), c = id_of("C", 4);
    assert_int_equal(ripc_server_send(M.s, b, T_DATA, M.big, BIG, 0), 0);
    assert_int_equal(ripc_server_send(M.s, c, T_DATA, M.big, BIG, 0), 0);
    /* A third waits for budget; once it sleeps, A's request makes the loop
     * look at the tails with a sender waiting, then keeps it busy. */
    struct waiter w = {.id = id_of("D", 4), .timeout_ms = 30000};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, wait_budget, &w), 0);
    while (atomic_load(&w.tid) == 0)
        sched_yield();
    ripc_test_wait_sleeping(getpid(), atomic_load(&w.tid));
    ripc_test_write_all(goa[1], "g", 1);
    char x;
    assert_int_equal(ripc_test_read_within(busy[0], &x, 1, 20000), 0);
    ripc_test_write_all(go[1], "ggg", 3); /* B, C, D read from now on */
    expect_kids_ok(k, 3);
    pthread_join(th, NULL);
    assert_int_equal(ripc_server_send(M.s, id_of("A", 4), T_END, "e", 1, 5000), 0);
    expect_kids_ok(k + 3, 1);
    close(goa[1]);
    print_message("the waiting send: %s\n", ripc_strerror(w.rc));
    assert_int_equal(w.rc, 0);
    assert_int_equal(atomic_load(&M.left_stalled), 0);
    close(go[1]);
    close(busy[0]);
    close(busy[1]);
    close_master();
}

/* ---- a large send with a short timeout to workers that do not read: it
 * ends within its timeout (a generous margin), and the stream stays
 * framed ---- */

#define CUT_LEN  ((uint64_t)64 << 20)
#define CUT_TMO  10
#define CUT_KIDS 3

static int cut_kid(const char *name, int go)
{
    ripc_options o = {.name = name,
                      .transport = RIPC_TRANSPORT_SOCKET,
                      .max_message = CUT_LEN,
                      .connect_timeout_ms = 10000};
    ripc_client *c;
    char why[200] = "";
    int rc = ripc_client_open_ex(&c, M.url, &o, why, sizeof why);
    if (rc < 0)
        return kid_fail(name, "open: %s (%s)", ripc_strerror(rc), why);
    char b;
    if (ripc_test_read_within(go, &b, 1, 120000) < 0)
        return kid_fail(name, "go");
    for (;;) {
        ripc_msg m;
        if ((rc = ripc_client_recv(c, &m, 30000)) < 0)
            return kid_fail(name, "recv: %s", ripc_strerror(rc));
        if (m.type == T_END)
            break;
        if (m.len != CUT_LEN || !ripc_test_check(m.data, m.len, 2))
            return kid_fail(name, "message wrong (%llu bytes)", (unsigned long long)m.len);
    }
    ripc_client_close(c);
    return 0;
}

static void test_budget_timeout_cut_returns_in_time(void **state)
{
    (void)state;
    open_master(CUT_LEN);
    int go[2];
    assert_int_equal(pipe(go), 0);
    pid_t pid[CUT_KIDS];
    fflush(NULL);
    for (int i = 0; i < CUT_KIDS; i++) {
        char name[8];
        snprintf(name, sizeof name, "K%d", i);
        pid[i] = fork();
        assert_true(pid[i] >= 0);
        if (pid[i] == 0)
            _exit(cut_kid(name, go[0]));
    }
    close(go[0]);
    start_dispatch();
    unsigned char *buf = malloc((size_t)CUT_LEN);
    assert_non_null(buf);
    ripc_test_fill(buf, (size_t)CUT_LEN, 2);
    id_of("K0", CUT_KIDS);
    uint64_t worst = 0;
    for (int i = 0; i < CUT_KIDS; i++) {
        uint64_t t0 = ripc_test_now_ms();
        int rc = ripc_server_send(M.s, M.ids[i], T_DATA, buf, CUT_LEN, CUT_TMO);
        uint64_t el = ripc_test_now_ms() - t0;
        print_message("send of %llu MiB, timeout %d ms: %s after %llu ms\n",
                      (unsigned long long)(CUT_LEN >> 20), CUT_TMO, ripc_strerror(rc),
                      (unsigned long long)el);
        assert_true(rc == 0 || rc == -ETIMEDOUT);
        worst = el > worst ? el : worst;
    }
    free(buf);
    ripc_test_write_all(go[1], "ggg", CUT_KIDS); /* the workers read from now on */
    for (int i = 0; i < CUT_KIDS; i++)
        assert_int_equal(ripc_server_send(M.s, M.ids[i], T_END, "e", 1, 30000), 0);
    for (int i = 0; i < CUT_KIDS; i++)
        assert_int_equal(ripc_test_wait(pid[i]), 0);
    close(go[1]);
    if (worst > CUT_TMO + 100)
        fail_msg("a send with a %d ms timeout took %llu ms", CUT_TMO, (unsigned long long)worst);
    close_master();
}

/* ---- a worker whose receive buffer waits for budget (its socket is not
 * read) still has its tail written as it reads ----
 * W and X each get a tail, and a third send (to Y) waits for the send
 * budget they hold. Then, on one signal, H1 and H2 begin large frames that
 * take the receive budget, W's large frame is refused that budget, and W
 * reads its tail at once while X reads at a steady pace. H1 and H2 keep
 * the last bytes of their frames until W has its whole tail, so W's frame
 * stays refused until then: its tail must be written while its socket is
 * not read. Every worker here moves its bytes in time, so nobody may be
 * dropped.
 * The pace rule judges holders by the clock, and a holder that waits for a
 * signal moves nothing: so nobody holds budget others wait for while this
 * process sets the case up (which under load takes seconds). The tails are
 * kept before anyone waits; the receive budget is taken only after the
 * signal; and each holder starts with a lead of more than the rule's share
 * (1/RIPC_RX_STALL_SHARE of the frame), so the period that was running when
 * others began to wait is met at once, however late the signal came. */

#define H_RATE ((uint64_t)5 << 20) /* bytes per second H1, H2 send */
#define X_RATE ((uint64_t)6 << 20) /* bytes per second X reads (and W, until refused) */
#define LEAD   (BIG / RIPC_RX_STALL_SHARE + ((uint64_t)2 << 20)) /* moved at once */
#define HOLD   ((uint64_t)64 << 10) /* of H1's and H2's frames, kept until W has its tail */

enum { R_H1, R_H2, R_W, R_X, R_Y, R_N };
static const char *const raw_names[R_N] = {"H1", "H2", "W", "X", "Y"};

struct raw {
    int fd;
    uint8_t hdr[RIPC_FRAME_HDR];
    uint64_t out, out_total;    /* frame bytes sent (header first) */
    uint64_t in, in_total;      /* bytes of the master's frame received */
    uint64_t out_rate, in_rate; /* bytes per second at most after the lead (0: any) */
};

/* Send what the pace allows (and the socket takes) of r's frame. */
static int raw_send(struct raw *r, uint64_t elapsed_ms, const uint8_t *payload)
{
    while (r->out < r->out_total) {
        uint64_t allow =
            r->out_rate ? RIPC_FRAME_HDR + LEAD + r->out_rate * elapsed_ms / 1000 : UINT64_MAX;
        if (r->out >= allow)
            return 0;
        uint64_t want = (r->out_total < allow ? r->out_total : allow) - r->out;
        const uint8_t *p =
            r->out < RIPC_FRAME_HDR ? r->hdr + r->out : payload + (r->out - RIPC_FRAME_HDR);
        if (r->out < RIPC_FRAME_HDR && want > RIPC_FRAME_HDR - r->out)
            want = RIPC_FRAME_HDR - r->out;
        ssize_t k = send(r->fd, p, want > (1u << 20) ? (1u << 20) : (size_t)want,
                         MSG_DONTWAIT | MSG_NOSIGNAL);
        if (k < 0)
            return errno == EAGAIN ? 0 : -1;
        r->out += (uint64_t)k;
    }
    return 0;
}

/* Read what the pace allows of the master's frame, checking its payload. */
static int raw_recv(struct raw *r, uint64_t elapsed_ms, uint8_t *scratch, const uint8_t *expect)
{
    while (r->in < r->in_total) {
        uint64_t allow =
            r->in_rate ? RIPC_FRAME_HDR + LEAD + r->in_rate * elapsed_ms / 1000 : UINT64_MAX;
        if (r->in >= allow)
            return 0;
        uint64_t want = (r->in_total < allow ? r->in_total : allow) - r->in;
        ssize_t k =
            recv(r->fd, scratch, want > (1u << 20) ? (1u << 20) : (size_t)want, MSG_DONTWAIT);
        if (k == 0 || (k < 0 && errno != EAGAIN))
            return -1;
        if (k < 0)
            return 0;
        for (ssize_t i = 0; i < k; i++) {
            uint64_t at = r->in + (uint64_t)i;
            if (at >= RIPC_FRAME_HDR && scratch[i] != expect[at - RIPC_FRAME_HDR])
                return -2;
        }
        r->in += (uint64_t)k;
    }
    return 0;
}

/* Bytes of r's frame the master has read (SIOCOUTQ: sent, not yet read). */
static uint64_t raw_taken(const struct raw *r)
{
    int unread = ripc_test_unread(r->fd);
    return unread > 0 && (uint64_t)unread < r->out ? r->out - (uint64_t)unread : r->out;
}

static int raw_kid(int up, int go)
{
    uint8_t *payload = malloc((size_t)BIG), *scratch = malloc((size_t)1 << 20);
    if (!payload || !scratch)
        return kid_fail("raw", "malloc");
    ripc_test_fill(payload, (size_t)BIG, 1); /* what the master sends too */
    struct raw r[R_N];
    memset(r, 0, sizeof r);
    for (int i = 0; i < R_N; i++) {
        uint64_t max = 0;
        if ((r[i].fd = ripc_test_hconnect_within(M.url, 10000)) < 0 ||
            ripc_test_socket_hello(r[i].fd, raw_names[i], &max) < 0 || max != BIG)
            return kid_fail(raw_names[i], "handshake");
        ripc__sock_set_nonblock(r[i].fd, 1);
    }
    for (int i = R_H1; i <= R_W; i++) {
        ripc__frame f = {.ftype = RIPC_FRAME_MSG, .type = T_FRAME, .len = BIG};
        ripc__frame_encode(r[i].hdr, &f);
        r[i].out_rate = i == R_W ? 0 : H_RATE;
    }
    /* W's frame begins once H1 and H2 hold the receive budget (below). */
    r[R_H1].out_total = r[R_H2].out_total = RIPC_FRAME_HDR + BIG - HOLD;
    r[R_W].in_total = r[R_X].in_total = r[R_Y].in_total = RIPC_FRAME_HDR + BIG;
    r[R_W].in_rate = r[R_X].in_rate = X_RATE;
    ripc_test_write_all(up, "r", 1);
    char b;
    if (ripc_test_read_within(go, &b, 1, 120000) < 0)
        return kid_fail("raw", "go");
    uint64_t t0 = ripc_test_now_ms();
    for (int refused = 0;;) {
        uint64_t el = ripc_test_now_ms() - t0;
        int done = 1;
        for (int i = 0; i < R_N; i++) {
            if (raw_send(&r[i], el, payload) < 0)
                return kid_fail(raw_names[i], "send: dropped after %llu ms",
                                (unsigned long long)el);
            int rc = raw_recv(&r[i], el, scratch, payload);
            if (rc < 0)
                return kid_fail(raw_names[i],
                                rc == -2 ? "bytes wrong" : "recv: dropped after %llu ms",
                                (unsigned long long)el);
            done &= r[i].out == r[i].out_total && r[i].in == r[i].in_total;
        }
        /* The master read past the base of H1's and H2's frames, so it holds
         * budget for both: W's frame is refused it, and W reads at once. */
        if (!refused && raw_taken(&r[R_H1]) > RIPC_FRAME_HDR + LEAD &&
            raw_taken(&r[R_H2]) > RIPC_FRAME_HDR + LEAD) {
            refused = 1;
            r[R_W].out_total = RIPC_FRAME_HDR + BIG;
            r[R_W].in_rate = 0;
            done = 0;
        }
        if (r[R_W].in == r[R_W].in_total && r[R_H1].out_total < RIPC_FRAME_HDR + BIG) {
            r[R_H1].out_total = r[R_H2].out_total = RIPC_FRAME_HDR + BIG;
            done = 0;
        }
        if (done)
            break;
        if (el > 60000)
            return kid_fail("raw", "not done after 60 s (W got %llu of %llu)",
                            (unsigned long long)r[R_W].in, (unsigned long long)r[R_W].in_total);
        usleep(2000);
    }
    free(payload);
    free(scratch);
    for (int i = 0; i < R_N; i++)
        close(r[i].fd);
    return 0;
}

static void test_budget_blocked_reader_keeps_its_tail(void **state)
{
    (void)state;
    open_master(BIG);
    int up[2], go[2];
    assert_int_equal(pipe(up), 0);
    assert_int_equal(pipe(go), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(raw_kid(up[1], go[0]));
    start_dispatch();
    char b;
    assert_int_equal(ripc_test_read_within(up[0], &b, 1, 60000), 0);
    uint32_t w = id_of("W", R_N), x = id_of("X", R_N);
    assert_int_equal(ripc_server_send(M.s, w, T_DATA, M.big, BIG, 0), 0);
    assert_int_equal(ripc_server_send(M.s, x, T_DATA, M.big, BIG, 0), 0);
    struct waiter wy = {.id = id_of("Y", R_N), .timeout_ms = 60000};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, wait_budget, &wy), 0);
    while (atomic_load(&wy.tid) == 0)
        sched_yield();
    ripc_test_wait_sleeping(getpid(), atomic_load(&wy.tid));
    ripc_test_write_all(go[1], "g", 1);
    int st = ripc_test_wait(pid);
    pthread_join(th, NULL);
    print_message("raw workers: exit %d; the waiting send: %s; frames in: %d\n", st,
                  ripc_strerror(wy.rc), atomic_load(&M.frames));
    assert_int_equal(st, 0);
    assert_int_equal(wy.rc, 0);
    assert_int_equal(atomic_load(&M.left_stalled), 0);
    for (int i = 0; i < 4; i++) {
        close(i < 2 ? up[i] : go[i - 2]);
    }
    close_master();
}

/* ---- senders waiting for the send budget get it in the order they came,
 * and each sleeps until budget comes back ----
 * The workers are sockets of this process, handshaken by hand: a frame the
 * master sends shows as bytes waiting in one (FIONREAD) without being read,
 * and reading one whole gives its budget back. H0 and H1 hold the budget
 * with tails (two frames of BIG fill it), then LINE_N senders queue for it,
 * one after another, each to a worker of its own that does not read yet.
 * Budget comes back one frame at a time (a holder read whole); whoever
 * takes it writes the start of its frame at once, and keeps the budget
 * until its worker reads: so the order in which the workers see bytes is
 * the order in which the senders got budget. */

#define LINE_N 4

/* A socket-mode worker called name, handshaken by hand, connected to M.url. */
static int line_connect(const char *name)
{
    int fd = ripc_test_hconnect_within(M.url, 10000);
    uint64_t max = 0;
    assert_true(fd >= 0);
    assert_int_equal(ripc_test_socket_hello(fd, name, &max), 0);
    assert_int_equal(max, BIG);
    return fd;
}

/* Read one whole frame of BIG from the master on fd (within a generous
 * bound: the master writes it as we read). */
static void read_frame(int fd, unsigned char *scratch)
{
    for (uint64_t left = RIPC_FRAME_HDR + BIG; left;) {
        size_t n = left > ((size_t)1 << 20) ? (size_t)1 << 20 : (size_t)left;
        if (ripc_test_read_within(fd, scratch, n, 30000) < 0)
            fail_msg("a frame did not come whole (%llu bytes left)", (unsigned long long)left);
        left -= n;
    }
}

/* Of the workers d[0..n) not done yet, wait (30 s at most) until one has
 * bytes from the master: a mask of those that have. */
static unsigned wait_bytes(const int *d, int n, unsigned done)
{
    struct pollfd pf[LINE_N];
    for (int i = 0; i < n; i++)
        pf[i] = (struct pollfd){.fd = done & (1u << i) ? -1 : d[i], .events = POLLIN};
    int r = poll(pf, (nfds_t)n, 30000);
    assert_true(r > 0);
    unsigned got = 0;
    for (int i = 0; i < n; i++)
        if (pf[i].revents & POLLIN)
            got |= 1u << i;
    return got;
}

/* Times thread tid of this process went to sleep (and so woke) so far. */
static long sleeps_of(pid_t tid)
{
    char path[64], line[128];
    snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)tid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    long v = -1;
    while (fgets(line, sizeof line, f))
        (void)sscanf(line, "voluntary_ctxt_switches: %ld", &v);
    fclose(f);
    assert_true(v >= 0);
    return v;
}

static void test_budget_waiters_served_in_line(void **state)
{
    (void)state;
    open_master(BIG);
    start_dispatch();
    int h[2], d[LINE_N];
    char name[8];
    for (int i = 0; i < 2; i++) {
        snprintf(name, sizeof name, "H%d", i);
        h[i] = line_connect(name);
    }
    for (int i = 0; i < LINE_N; i++) {
        snprintf(name, sizeof name, "D%d", i);
        d[i] = line_connect(name);
    }
    for (int i = 0; i < 2; i++) {
        snprintf(name, sizeof name, "H%d", i);
        assert_int_equal(ripc_server_send(M.s, id_of(name, 2 + LINE_N), T_DATA, M.big, BIG, 0), 0);
    }
    struct waiter w[LINE_N];
    pthread_t th[LINE_N];
    for (int i = 0; i < LINE_N; i++) {
        snprintf(name, sizeof name, "D%d", i);
        w[i] = (struct waiter){.id = id_of(name, 2 + LINE_N), .timeout_ms = 60000};
        assert_int_equal(pthread_create(&th[i], NULL, wait_budget, &w[i]), 0);
        while (atomic_load(&w[i].tid) == 0)
            sched_yield();
        ripc_test_wait_sleeping(getpid(), atomic_load(&w[i].tid)); /* in line */
    }
    /* Nothing comes back for a while (a window to count in, not an
     * ordering): the last in line sleeps through it. A sender that naps
     * to look for budget wakes dozens of times here. */
    pid_t last = atomic_load(&w[LINE_N - 1].tid);
    long s0 = sleeps_of(last);
    usleep(300000);
    long woke = sleeps_of(last) - s0;
    print_message("the last in line woke %ld times in 300 ms without budget\n", woke);
    if (woke > 10)
        fail_msg("a sender waiting for budget woke %ld times while none came back", woke);
    unsigned char *scratch = malloc((size_t)1 << 20);
    assert_non_null(scratch);
    /* One frame of budget back at a time: H0, H1, then each worker served. */
    unsigned done = 0;
    int order[LINE_N], norder = 0;
    for (int step = 0; step < LINE_N; step++) {
        read_frame(step < 2 ? h[step] : d[order[step - 2]], scratch);
        unsigned got = wait_bytes(d, LINE_N, done);
        for (int i = 0; i < LINE_N; i++)
            if (got & (1u << i)) {
                order[norder++] = i;
                done |= 1u << i;
            }
        print_message("budget back (%d): worker D%d has bytes%s\n", step, order[norder - 1],
                      __builtin_popcount(got) > 1 ? ", and others" : "");
        assert_int_equal(__builtin_popcount(got), 1);
        assert_int_equal(order[step], step); /* the order they came in */
    }
    for (int i = LINE_N - 2; i < LINE_N; i++)
        read_frame(d[order[i]], scratch);
    for (int i = 0; i < LINE_N; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].rc, 0);
    }
    free(scratch);
    assert_int_equal(atomic_load(&M.left_stalled), 0);
    for (int i = 0; i < LINE_N; i++)
        close(d[i]);
    close(h[0]);
    close(h[1]);
    close_master();
}

/* ---- workers the loop parked while they were idle (src/server_park.c)
 * are left tails they never read, while a sender waits for the budget
 * those tails hold: a tail brings its worker back into the loop's active
 * set, where the pace rule judges it, so the holders are dropped and the
 * sender gets through. A parked holder nobody looked at would hold the
 * budget for good. ---- */

static void test_budget_parked_holders_dropped(void **state)
{
    (void)state;
    open_master(BIG);
    start_dispatch();
    int h0 = line_connect("H0"), h1 = line_connect("H1"), d = line_connect("D");
    uint32_t id0 = id_of("H0", 3), id1 = id_of("H1", 3);
    /* All three idle: parked within a few sweeps (the bound only ends a
     * broken run). */
    for (uint64_t end = ripc_test_now_ms() + 30000; ripc_server_parked_count(M.s) < 3;) {
        if (ripc_test_now_ms() > end)
            fail_msg("only %u of 3 idle workers parked after 30 s", ripc_server_parked_count(M.s));
        usleep(1000);
    }
    assert_int_equal(ripc_server_send(M.s, id0, T_DATA, M.big, BIG, 0), 0);
    assert_int_equal(ripc_server_send(M.s, id1, T_DATA, M.big, BIG, 0), 0);
    struct waiter w = {.id = id_of("D", 3), .timeout_ms = 30000};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, wait_budget, &w), 0);
    /* The first byte comes once a holder is dropped (a few periods of the
     * pace rule; far less than the bound). */
    struct pollfd pf = {.fd = d, .events = POLLIN};
    int got = poll(&pf, 1, 25000);
    if (got != 1)
        print_message("no byte for D in 25 s: the parked holders were not judged\n");
    unsigned char *scratch = malloc((size_t)1 << 20);
    assert_non_null(scratch);
    if (got == 1)
        read_frame(d, scratch);
    pthread_join(th, NULL);
    free(scratch);
    print_message("the waiting send: %s; holders dropped as stalled: %d\n", ripc_strerror(w.rc),
                  atomic_load(&M.left_stalled));
    assert_int_equal(got, 1);
    assert_int_equal(w.rc, 0);
    assert_true(atomic_load(&M.left_stalled) >= 1);
    close(d);
    close(h0);
    close(h1);
    close_master();
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_budget_handler_waits_for_its_own_loop),
        cmocka_unit_test(test_budget_busy_loop_drops_no_reader),
        cmocka_unit_test(test_budget_timeout_cut_returns_in_time),
        cmocka_unit_test(test_budget_blocked_reader_keeps_its_tail),
        cmocka_unit_test(test_budget_waiters_served_in_line),
        cmocka_unit_test(test_budget_parked_holders_dropped),
    };
    ripc_test_filter(argc > 1 ? argv[1] : NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
