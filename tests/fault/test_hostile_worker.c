/*
 * A hostile worker against a real master. The hostile side is built here
 * from the internal pieces (wire format, sockets, segment, ring layout): it
 * performs a valid handshake, maps the segment the master hands over, and
 * then breaks the rules in a forked child, while a well-behaved worker
 * (ripc_client) does request/reply in another child. The master is this
 * process, running ripc_server_poll() in a loop.
 *
 * Every case checks: the master survives, the hostile peer leaves with the
 * reason the case calls for (a peer that never completed the handshake never
 * joins, so it never "leaves" either: it gets a REJECT and a closed socket),
 * and the good worker completes every request.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ringipc/ring.h"
#include "ringipc/ringipc.h"
#include "shm/doorbell.h"
#include "shm/ring_layout.h"
#include "shm/segment.h"
#include "sockets/sock.h"
#include "src/proto.h"
#include "support/hconn.h"
#include "support/support.h"

#define T_ECHO       1 /* request: the master replies with the same bytes */
#define T_NOTE       2 /* one-way: the master counts it */
#define HOSTILE_RING 4096u
#define GOOD_EXTRA   50 /* requests the good worker makes after "stop" */

/* ---- state shared by the master and its children ---- */

struct shared {
    _Atomic int stop_good;    /* master -> good worker: finish up */
    ripc_test_tally good;     /* the good worker's requests (the master resets max_ms) */
    _Atomic int hostile_done; /* hostile -> master: the damage is done */
    _Atomic int release;      /* master -> hostile: you may go now */
    _Atomic int pause;        /* master -> good worker: hold on */
    _Atomic int paused;       /* good worker -> master: holding */
    _Atomic int hostile_ms;   /* hostile -> master: how long its attack took */
};

struct rec {
    char name[RIPC_NAME_MAX + 1];
    uint32_t id;
    int reason;
};

static struct {
    ripc_server *s;
    char url[96];
    struct shared *sh;
    /* Written under rec_mu (callbacks may come from several dispatch
     * threads), each record before the count that publishes it. */
    struct rec joined[256], left[256];
    _Atomic int nj, nl;
    pid_t good, hostile;
    int good_status, hostile_status;
    _Atomic int notes;
    int own_loop; /* pump as an application with its own event loop would */
    int running;  /* ripc_server_run() dispatches on its own threads */
    pthread_t run_th;
    void (*join_hook)(ripc_peer *); /* called by `joined` as well */
} M;

static pthread_mutex_t rec_mu = PTHREAD_MUTEX_INITIALIZER;

/* ---- the master ---- */

static struct {
    int handled, ok, timedout, again, other;
} DEAF;

static void on_echo(ripc_peer *from, const ripc_msg *msg, void *arg)
{
    (void)arg;
    int rc = ripc_reply(from, msg, msg->data, msg->len);
    if (strcmp(ripc_peer_name(from), "deaf") == 0) {
        DEAF.handled++;
        if (rc == 0)
            DEAF.ok++;
        else if (rc == -ETIMEDOUT)
            DEAF.timedout++;
        else if (rc == -EAGAIN)
            DEAF.again++;
        else
            DEAF.other++;
    }
}

static void on_note(ripc_peer *from, const ripc_msg *msg, void *arg)
{
    (void)from;
    (void)arg;
    /* A large note (hostile case h) must arrive whole: its bytes are 0x5A. */
    for (uint64_t i = 0; i < msg->len; i += 4093)
        if (((const unsigned char *)msg->data)[i] != 0x5A)
            return;
    M.notes++;
}

static void on_join(ripc_peer *p, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&rec_mu);
    if (M.nj < 256) {
        struct rec *r = &M.joined[M.nj];
        snprintf(r->name, sizeof r->name, "%s", ripc_peer_name(p));
        r->id = ripc_peer_id(p);
        M.nj++;
    }
    pthread_mutex_unlock(&rec_mu);
    if (M.join_hook)
        M.join_hook(p);
}

static void on_leave(ripc_peer *p, int reason, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&rec_mu);
    if (M.nl < 256) {
        struct rec *r = &M.left[M.nl];
        snprintf(r->name, sizeof r->name, "%s", ripc_peer_name(p));
        r->id = ripc_peer_id(p);
        r->reason = reason;
        M.nl++;
    }
    pthread_mutex_unlock(&rec_mu);
}

static const struct rec *find(const struct rec *v, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(v[i].name, name) == 0)
            return &v[i];
    return NULL;
}

static void reap(void)
{
    int st;
    if (M.good > 0 && waitpid(M.good, &st, WNOHANG) == M.good) {
        M.good_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        M.good = 0;
    }
    if (M.hostile > 0 && waitpid(M.hostile, &st, WNOHANG) == M.hostile) {
        M.hostile_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        M.hostile = 0;
    }
}

static void pump(void)
{
    if (M.running) {
        /* The master serves on its own threads: only watch the children. */
        usleep(1000);
    } else if (M.own_loop) {
        /* ringipc.h: poll(s, 0) until it returns 0, then wait for the fd.
         * The long wait makes a missed wake-up visible as a stall. A build
         * without the fd (-ENOTSUP, poll(2)) polls on a timer instead. */
        int rc;
        while ((rc = ripc_server_poll(M.s, 0)) > 0)
            ;
        assert_true(rc == 0);
        int fd = ripc_server_fd(M.s);
        assert_true(fd >= 0 || fd == -ENOTSUP);
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        poll(&pf, fd >= 0 ? 1 : 0, fd >= 0 ? 1000 : 10);
    } else {
        assert_true(ripc_server_poll(M.s, 10) >= 0);
    }
    reap();
}

/* Serve until cond holds or ms pass. */
#define PUMP_UNTIL(cond, ms)                                                                       \
    do {                                                                                           \
        uint64_t end_ = ripc_test_now_ms() + (ms);                                                 \
        while (!(cond) && ripc_test_now_ms() < end_)                                               \
            pump();                                                                                \
    } while (0)

/* ---- the good worker ---- */

static int good_worker(void)
{
    ripc_client *c;
    ripc_options opt = {.name = "good"};
    int rc = ripc_client_open(&c, M.url, &opt);
    if (rc < 0) {
        atomic_store(&M.sh->good.err, rc);
        return 2;
    }
    for (uint64_t seq = 1, extra = GOOD_EXTRA; extra > 0; seq++) {
        if (atomic_load(&M.sh->stop_good))
            extra--;
        while (atomic_load(&M.sh->pause)) {
            atomic_store(&M.sh->paused, 1);
            usleep(1000);
        }
        atomic_store(&M.sh->paused, 0);
        size_t len = (size_t)(seq * 37 % 256); /* sizes that wrap the ring */
        if (ripc_test_echo_request(c, T_ECHO, seq, len, 5000, &M.sh->good) < 0) {
            ripc_client_close(c);
            return 3;
        }
    }
    ripc_client_close(c);
    return 0;
}

/* ---- the hostile worker's tools (child side) ---- */

/* The hand-made worker of support/hconn.h, bound to this master. */
typedef ripc_test_hconn hconn;

static int h_connect(const char *url)
{
    return ripc_test_hconnect(url);
}

static size_t h_hello(uint8_t *out, const char *name)
{
    return ripc_test_hello(out, name, HOSTILE_RING, RIPC_XPORT_SHM);
}

static int h_open(hconn *h, const char *name)
{
    return ripc_test_hopen(h, M.url, name, HOSTILE_RING, RIPC_XPORT_SHM);
}

static void h_ring_master(hconn *h)
{
    ripc_test_hring(h);
}

static int h_wait_drop(int sock, int ms)
{
    return ripc_test_hwait_drop(sock, ms);
}

/* Tell the master the damage is done, then wait to be thrown out. */
static int h_finish(hconn *h)
{
    atomic_store(&M.sh->hostile_done, 1);
    return h_wait_drop(h->sock, 20000) ? 10 : 0;
}

/* A case's opening: the handshake as "<prefix><variant>" (exit code 2 when
 * refused) and, when r is given, the w->m ring attached as its producer (3
 * when not). 0 once done. */
static int h_begin(hconn *h, const char *prefix, int variant, ripc_ring **r)
{
    char name[32];
    snprintf(name, sizeof name, "%s%d", prefix, variant);
    if (h_open(h, name) < 0)
        return 2;
    if (r && ripc_ring_attach(r, h->w2m, h->ring_sz, RIPC_RING_PRODUCER) < 0)
        return 3;
    return 0;
}

/* A valid one-way note, header only, committed to r (not rung). 0 or -1. */
static int h_note(ripc_ring *r)
{
    void *buf;
    if (ripc_ring_reserve(r, RIPC_MSG_HDR, &buf) < 0)
        return -1;
    ripc__msg_encode(buf, T_NOTE, RIPC_KIND_ONEWAY, 0, 0);
    ripc_ring_commit(r, RIPC_MSG_HDR);
    return 0;
}

/* A valid note of 64 bytes of 0x5A pushed and rung; then wait (up to 10 s)
 * until the master has taken it. 0, 4 (no room) or 5 (not taken). */
static int h_note_taken(hconn *h, ripc_ring *r)
{
    uint8_t rec[RIPC_MSG_HDR + 64];
    memset(rec, 0x5A, sizeof rec);
    ripc__msg_encode(rec, T_NOTE, RIPC_KIND_ONEWAY, 0, 0);
    if (ripc_ring_push(r, rec, sizeof rec) < 0)
        return 4;
    h_ring_master(h);
    for (uint64_t end = ripc_test_now_ms() + 10000; ripc_ring_used(r) > 0;) /* the master took it */
        if (ripc_test_now_ms() > end)
            return 5;
        else
            sched_yield();
    return 0;
}

typedef int (*hostile_fn)(int variant);

/* ---- master-side case driver ---- */

static void start_good(void)
{
    fflush(stdout);
    M.good = fork();
    assert_true(M.good >= 0);
    if (M.good == 0)
        _exit(good_worker()); /* never touches the inherited server */
    PUMP_UNTIL(find(M.joined, M.nj, "good"), 5000);
    assert_non_null(find(M.joined, M.nj, "good"));
}

static void start_hostile(hostile_fn fn, int variant)
{
    atomic_store(&M.sh->hostile_done, 0);
    atomic_store(&M.sh->release, 0);
    fflush(stdout);
    M.hostile = fork();
    assert_true(M.hostile >= 0);
    if (M.hostile == 0)
        _exit(fn(variant));
    M.hostile_status = -1;
}

static void wait_hostile_exit(void)
{
    PUMP_UNTIL(M.hostile == 0, 30000);
    assert_int_equal(M.hostile, 0);
    assert_int_equal(M.hostile_status, 0);
}

/* The case's hostile peer `name` must leave with `reason`; its child must
 * have seen itself dropped; the good worker must still be making progress. */
static void expect_left(const char *name, int reason)
{
    int ok0 = atomic_load(&M.sh->good.ok);
    PUMP_UNTIL(find(M.left, M.nl, name) != NULL, 10000);
    const struct rec *r = find(M.left, M.nl, name);
    if (!r)
        fail_msg("%s never left", name);
    if (r->reason != reason)
        fail_msg("%s left with %d (%s), expected %d (%s)", name, r->reason,
                 ripc_strerror(r->reason), reason, ripc_strerror(reason));
    wait_hostile_exit();
    assert_null(find(M.left, M.nl, "good"));
    PUMP_UNTIL(atomic_load(&M.sh->good.ok) > ok0 + 5, 5000);
    assert_true(atomic_load(&M.sh->good.ok) > ok0 + 5);
}

static void finish_good(void)
{
    atomic_store(&M.sh->stop_good, 1);
    PUMP_UNTIL(M.good == 0 && find(M.left, M.nl, "good"), 30000);
    if (M.good != 0 || M.good_status != 0)
        fail_msg("good worker: status %d, %d ok, %d failed (%s)", M.good_status,
                 atomic_load(&M.sh->good.ok), atomic_load(&M.sh->good.bad),
                 ripc_strerror(atomic_load(&M.sh->good.err)));
    assert_int_equal(atomic_load(&M.sh->good.bad), 0);
    assert_true(atomic_load(&M.sh->good.ok) >= GOOD_EXTRA);
    const struct rec *g = find(M.left, M.nl, "good");
    assert_non_null(g);
    assert_int_equal(g->reason, RIPC_LEFT_BYE);
}

static int setup(void **state)
{
    (void)state;
    memset(&M, 0, sizeof M);
    ripc_test_unix_url(M.url, sizeof M.url, "hostile");
    M.sh = ripc_test_shared_alloc(sizeof *M.sh);
    assert_int_equal(ripc_test_echo_master(&M.s, M.url, NULL, T_ECHO), 0);
    /* Echo that also counts what the deaf peer's replies came to; notes
     * that arrive whole. */
    ripc_server_handle(M.s, T_ECHO, on_echo, NULL);
    ripc_server_handle(M.s, T_NOTE, on_note, NULL);
    ripc_server_on_peer(M.s, on_join, on_leave, NULL);
    start_good();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (M.good > 0)
        kill(M.good, SIGKILL);
    if (M.hostile > 0)
        kill(M.hostile, SIGKILL);
    while (M.good > 0 || M.hostile > 0) {
        reap();
        usleep(1000);
    }
    ripc_server_close(M.s);
    ripc_test_shared_free(M.sh, sizeof *M.sh);
    return 0;
}

/* ---- (a) garbage in the w->m data area and a bogus head ---- */

static int hostile_garbage(int variant)
{
    hconn h;
    int rc = h_begin(&h, "hostile-a", variant, NULL);
    if (rc)
        return rc;
    uint64_t cap = h.w.ring_bytes;
    memset(h.w2m_data, 0xA5, (size_t)cap);
    static const uint64_t heads[] = {0xFFFFFFFFFFFFFF03ull, 256, 0, 4};
    uint64_t head = variant == 2 ? cap + 8 : heads[variant];
    atomic_store_explicit(&h.w2m->prod.head, head, memory_order_release);
    h_ring_master(&h);
    return h_finish(&h);
}

/* Variants 0..n-1 of a case named "hostile-<letter><v>": each breaks the
 * protocol and must leave with -EPROTO; with notes = 1 it first delivers one
 * valid note, which must arrive (notes = -1: the case promises none). */
static void run_variants(hostile_fn fn, char letter, int n, int notes)
{
    for (int v = 0; v < n; v++) {
        char name[32];
        snprintf(name, sizeof name, "hostile-%c%d", letter, v);
        int notes0 = M.notes;
        start_hostile(fn, v);
        expect_left(name, -EPROTO);
        if (notes >= 0 && M.notes != notes0 + notes) /* the valid message came through */
            fail_msg("%s: %d notes, expected %d", name, M.notes - notes0, notes);
    }
}

static void test_hostile_ring_garbage(void **state)
{
    (void)state;
    /* 0: unaligned head far beyond the ring; 1: a plausible head over
     * garbage records; 2: head one record more than the capacity allows;
     * 3: a head that is not a multiple of 8. */
    run_variants(hostile_garbage, 'a', 4, -1);
    finish_good();
}

/* ---- (b) a well-formed ring record carrying a malformed message header ---- */

static int hostile_bad_message(int variant)
{
    hconn h;
    ripc_ring *r;
    int rc = h_begin(&h, "hostile-b", variant, &r);
    if (rc)
        return rc;
    /* First a valid one-way message: it must be delivered before the drop. */
    if (h_note(r) < 0)
        return 4;

    void *buf;
    size_t len = variant == 4 ? 8 : RIPC_MSG_HDR + 4;
    if (ripc_ring_reserve(r, len, &buf) < 0)
        return 5;
    uint8_t *m = buf;
    memset(m, 0, len);
    switch (variant) {
    case 0: /* reserved bytes 4..7 of the header */
        ripc__msg_encode(m, T_NOTE, RIPC_KIND_ONEWAY, 0, 0);
        m[5] = 0x40;
        break;
    case 1: /* kind 7 */
        ripc__msg_encode(m, T_NOTE, 7, 0, 0);
        break;
    case 2: /* a flag nobody defined */
        ripc__msg_encode(m, T_NOTE, RIPC_KIND_ONEWAY, 0x80, 0);
        break;
    case 3: /* workers never send replies */
        ripc__msg_encode(m, T_NOTE, RIPC_KIND_REPLY, 0, 99);
        break;
    case 4: /* a record too short to hold a message header */
        memset(m, 0, len);
        break;
    case 5: /* a request of a reserved type (the library's own, e.g. an error) */
        ripc__msg_encode(m, RIPC_MSG_ERROR, RIPC_KIND_REQUEST, 0, 1);
        break;
    case 6: /* a one-way message of a reserved type */
        ripc__msg_encode(m, 0xFFFF, RIPC_KIND_ONEWAY, 0, 0);
        break;
    }
    ripc_ring_commit(r, len);
    h_ring_master(&h);
    return h_finish(&h);
}

static void test_hostile_bad_message(void **state)
{
    (void)state;
    run_variants(hostile_bad_message, 'b', 7, 1);
    finish_good();
}

/* ---- (c) random bytes over the whole w->m ring, header and data ---- */

static int hostile_random(int seed)
{
    hconn h;
    int rc = h_begin(&h, "hostile-c", seed, NULL);
    if (rc)
        return rc;
    uint64_t s = 0x9E3779B97F4A7C15ull * (uint64_t)(seed + 1);
    unsigned char *p = (unsigned char *)h.w2m;
    for (size_t i = 0; i < h.ring_sz; i += 8) {
        uint64_t v = ripc_test_rand(&s);
        memcpy(p + i, &v, 8);
    }
    if (seed & 1) {
        /* A plausible head, so the master parses the random records too. */
        uint64_t cap = h.w.ring_bytes;
        uint64_t head = (ripc_test_rand(&s) % (cap / 8) + 1) * 8;
        atomic_store_explicit(&h.w2m->prod.head, head, memory_order_release);
    }
    h_ring_master(&h);
    return h_finish(&h);
}

static void test_hostile_random_ring(void **state)
{
    (void)state;
    run_variants(hostile_random, 'c', 24, -1);
    finish_good();
}

/* ---- (d) garbage on the control socket after the handshake ---- */

static int hostile_control(int variant)
{
    hconn h;
    ripc_ring *r;
    int rc = h_begin(&h, "hostile-d", variant, &r);
    if (rc)
        return rc;
    /* A valid message in the ring first: delivered, then the drop. */
    if (h_note(r) < 0)
        return 3;
    h_ring_master(&h);

    uint8_t fr[RIPC_FRAME_HDR + RIPC_HANDSHAKE_MAX];
    size_t n = RIPC_FRAME_HDR;
    ripc__frame f = {.ftype = RIPC_FRAME_MSG};
    switch (variant) {
    case 0: /* bad magic */
        memset(fr, 0xEE, 3 * RIPC_FRAME_HDR);
        n = 3 * RIPC_FRAME_HDR;
        break;
    case 1: /* a message of 2^60 bytes */
        f.len = (uint64_t)1 << 60;
        ripc__frame_encode(fr, &f);
        break;
    case 2: /* a BYE with a payload */
        f.ftype = RIPC_FRAME_BYE;
        f.len = 8;
        ripc__frame_encode(fr, &f);
        memset(fr + RIPC_FRAME_HDR, 0, 8);
        n += 8;
        break;
    case 3: /* a second HELLO, with the name it joined with */
        n = h_hello(fr, "hostile-d3");
        break;
    case 4: /* half a BYE header, a stall, then the rest: a clean goodbye */
        f.ftype = RIPC_FRAME_BYE;
        ripc__frame_encode(fr, &f);
        if (send(h.sock, fr, 10, MSG_NOSIGNAL) != 10)
            return 4;
        atomic_store(&M.sh->hostile_done, 1);
        for (uint64_t end = ripc_test_now_ms() + 30000; !atomic_load(&M.sh->release);)
            if (ripc_test_now_ms() > end)
                return 5;
            else
                usleep(1000);
        if (send(h.sock, fr + 10, RIPC_FRAME_HDR - 10, MSG_NOSIGNAL) != RIPC_FRAME_HDR - 10)
            return 4;
        return h_wait_drop(h.sock, 20000) ? 10 : 0;
    }
    if (send(h.sock, fr, n, MSG_NOSIGNAL) != (ssize_t)n)
        return 4;
    return h_finish(&h);
}

/* With the good worker paused, the master has nothing to do: it must not
 * burn CPU while the hostile one (named) sits there, still connected. */
static void expect_master_idle(const char *hostile, const char *what)
{
    atomic_store(&M.sh->pause, 1);
    PUMP_UNTIL(atomic_load(&M.sh->paused), 5000);
    assert_true(atomic_load(&M.sh->paused));
    double c0 = ripc_test_cpu_seconds();
    uint64_t t0 = ripc_test_now_ms();
    PUMP_UNTIL(0, 300);
    double used = ripc_test_cpu_seconds() - c0, wall = (double)(ripc_test_now_ms() - t0) / 1e3;
    if (used > wall / 3)
        fail_msg("the master burnt %.3f s of CPU in %.3f s %s", used, wall, what);
    assert_null(find(M.left, M.nl, hostile));
    atomic_store(&M.sh->pause, 0);
}

/* Half a frame header on an active peer's socket: the master waits for the
 * rest without spinning on the readable socket, then takes the BYE. */
static void stalled_goodbye(void)
{
    int notes0 = M.notes;
    start_hostile(hostile_control, 4);
    PUMP_UNTIL(atomic_load(&M.sh->hostile_done), 5000);
    assert_true(atomic_load(&M.sh->hostile_done));
    expect_master_idle("hostile-d4", "with nothing to do");
    atomic_store(&M.sh->release, 1);
    expect_left("hostile-d4", RIPC_LEFT_BYE);
    assert_int_equal(M.notes, notes0 + 1);
}

static void test_hostile_control_garbage(void **state)
{
    (void)state;
    run_variants(hostile_control, 'd', 4, 1);
    stalled_goodbye();
    finish_good();
}

/* ---- (h) large messages: markers, LARGE frames and the memfds they carry ---- */

#define H_LARGE (256u * 1024)

/* A memfd of len bytes of 0x5A, sealed as asked (-1: not sealable). */
static int h_memfd(size_t len, int seals)
{
    int fd = memfd_create("hostile", MFD_CLOEXEC | (seals >= 0 ? MFD_ALLOW_SEALING : 0));
    if (fd < 0 || ftruncate(fd, (off_t)len) != 0)
        return -1;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return -1;
    memset(p, 0x5A, len);
    munmap(p, len);
    if (seals > 0 && fcntl(fd, F_ADD_SEALS, seals) != 0)
        return -1;
    return fd;
}

static int h_large_frame_k(hconn *h, uint16_t type, uint8_t kind, uint64_t id, uint64_t len, int fd)
{
    uint8_t fr[RIPC_FRAME_HDR];
    ripc__frame f = {.ftype = RIPC_FRAME_LARGE, .kind = kind, .type = type, .id = id, .len = len};
    ripc__frame_encode(fr, &f);
    return ripc__sock_send_fds(h->sock, fr, sizeof fr, &fd, fd >= 0 ? 1 : 0);
}

static int h_marker_k(ripc_ring *r, uint16_t type, uint8_t kind, uint64_t id, uint64_t len,
                      size_t marker_bytes)
{
    void *buf;
    if (ripc_ring_reserve(r, RIPC_MSG_HDR + marker_bytes, &buf) < 0)
        return -1;
    ripc__msg_encode(buf, type, kind, RIPC_MSGF_LARGE, id);
    memcpy((uint8_t *)buf + RIPC_MSG_HDR, &len, marker_bytes < 8 ? marker_bytes : 8);
    ripc_ring_commit(r, RIPC_MSG_HDR + marker_bytes);
    return 0;
}

static int h_large_frame(hconn *h, uint64_t id, uint64_t len, int fd)
{
    return h_large_frame_k(h, T_NOTE, RIPC_KIND_ONEWAY, id, len, fd);
}

static int h_marker(ripc_ring *r, uint64_t id, uint64_t len, size_t marker_bytes)
{
    return h_marker_k(r, T_NOTE, RIPC_KIND_ONEWAY, id, len, marker_bytes);
}

static int hostile_large(int variant)
{
    hconn h;
    ripc_ring *r;
    int rc = h_begin(&h, "hostile-h", variant, &r);
    if (rc)
        return rc;
    /* First a valid large message, as ripc_client_send makes it. */
    int seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
    int fd = h_memfd(H_LARGE, seals);
    if (fd < 0 || h_large_frame(&h, 1, H_LARGE, fd) < 0 || h_marker(r, 1, H_LARGE, 8) < 0)
        return 4;
    close(fd);
    h_ring_master(&h);
    uint64_t len = H_LARGE, id = 2;
    size_t marker_bytes = 8;
    int frames = 1;
    switch (variant) {
    case 0: /* a marker whose frame never comes */
        fd = -2;
        break;
    case 1: /* more than max_message */
        len = (uint64_t)1 << 40;
        fd = h_memfd(H_LARGE, seals);
        break;
    case 2: /* a pipe instead of a memfd */
    {
        int pp[2];
        if (pipe(pp) != 0)
            return 5;
        fd = pp[0];
        break;
    }
    case 3: /* unsealed, and cut to nothing after its frame went out,
             * before its marker: the master finds it too small */
        fd = h_memfd(H_LARGE, -1);
        break;
    case 4: /* sealed, but smaller than the message */
        fd = h_memfd(H_LARGE / 2, seals);
        break;
    case 5: /* frame and marker disagree (id) */
        fd = h_memfd(H_LARGE, seals);
        id = 3;
        break;
    case 6: /* a LARGE frame without a descriptor */
        fd = -1;
        break;
    case 7: /* more frames in flight than any sender may have (no markers:
             * the overflow alone must be the reason) */
        fd = h_memfd(H_LARGE, seals);
        frames = 6;
        marker_bytes = 0;
        break;
    case 8: /* a marker of the wrong size */
        fd = h_memfd(H_LARGE, seals);
        marker_bytes = 4;
        break;
    }
    if (fd == -1 && variant != 6)
        return 6;
    for (int i = 0; i < frames && fd != -2; i++)
        if (h_large_frame(&h, id, len, fd) < 0)
            return 7;
    if (variant == 3 && ftruncate(fd, 0) != 0)
        return 9;
    if (marker_bytes && h_marker(r, 2, len, marker_bytes) < 0)
        return 8;
    h_ring_master(&h);
    return h_finish(&h);
}

static void test_hostile_large(void **state)
{
    (void)state;
    run_variants(hostile_large, 'h', 9, 1);
    finish_good();
}

/* ---- (i) socket mode: a frame over max_message (0), or of a reserved
 * type (1) ---- */

static int hostile_socket_oversize(int variant)
{
    int sock = h_connect(M.url);
    if (sock < 0)
        return 2;
    char name[32];
    snprintf(name, sizeof name, "hostile-i%d", variant);
    uint64_t max_message;
    if (ripc_test_socket_hello(sock, name, &max_message) < 0)
        return 3;
    uint8_t buf[2 * RIPC_FRAME_HDR];
    ripc__frame f;
    /* A valid note, then a header announcing max_message + 1 bytes, or a
     * request of a reserved type. */
    f = (ripc__frame){.ftype = RIPC_FRAME_MSG, .type = T_NOTE};
    ripc__frame_encode(buf, &f);
    if (variant == 0)
        f.len = max_message + 1;
    else
        f = (ripc__frame){
            .ftype = RIPC_FRAME_MSG, .kind = RIPC_KIND_REQUEST, .type = RIPC_MSG_ERROR, .id = 1};
    ripc__frame_encode(buf + RIPC_FRAME_HDR, &f);
    if (ripc__sock_send_all(sock, buf, 2 * RIPC_FRAME_HDR) < 0)
        return 4;
    atomic_store(&M.sh->hostile_done, 1);
    return h_wait_drop(sock, 20000) ? 10 : 0;
}

static void test_hostile_socket_oversize(void **state)
{
    (void)state;
    run_variants(hostile_socket_oversize, 'i', 2, 1);
    finish_good();
}

/* ---- (j) takes the master's large replies without reading their frames ----
 * The worker sends large requests, moves the consumer index of its inbound
 * ring past every reply marker, and never reads its control socket. The
 * master's buffers look free, so without a check it would go on sending
 * frames (each pinning a memfd) until the socket is full, and then wait there
 * holding the send lock. It must drop the worker with -EPROTO instead. */
static int hostile_unread_frames(int variant)
{
    (void)variant;
    hconn h;
    if (h_open(&h, "hostile-j") < 0)
        return 2;
    ripc_ring *r;
    if (ripc_ring_attach(&r, h.w2m, h.ring_sz, RIPC_RING_PRODUCER) < 0)
        return 3;
    int fd = h_memfd(H_LARGE, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
    if (fd < 0)
        return 4;
    for (uint64_t id = 1; id < 100000; id++) {
        /* One valid note first: delivered before the drop. */
        int note = id == 1;
        if (h_large_frame_k(&h, note ? T_NOTE : T_ECHO, note ? RIPC_KIND_ONEWAY : RIPC_KIND_REQUEST,
                            id, H_LARGE, fd) < 0)
            break; /* dropped: the master closed the socket */
        int put;
        while ((put = h_marker_k(r, note ? T_NOTE : T_ECHO,
                                 note ? RIPC_KIND_ONEWAY : RIPC_KIND_REQUEST, id, H_LARGE, 8)) <
                   0 &&
               ripc__sock_alive(h.sock))
            sched_yield(); /* our ring is full: the master is busy with it */
        if (put < 0)
            break; /* dropped meanwhile */
        h_ring_master(&h);
        /* Play by the in-flight rule ourselves (one large request at a
         * time): only the master's side of it is under test. */
        while (ripc_ring_used(r) > 0 && ripc__sock_alive(h.sock))
            sched_yield();
        /* "Consume" every reply so far without looking at the socket. */
        _Atomic uint64_t *head = &h.m2w->prod.head, *tail = &h.m2w->cons.tail;
        atomic_store(tail, atomic_load(head));
        if (!ripc__sock_alive(h.sock))
            break;
    }
    close(fd);
    return h_finish(&h);
}

static void test_hostile_unread_frames(void **state)
{
    (void)state;
    int notes0 = M.notes;
    start_hostile(hostile_unread_frames, 0);
    expect_left("hostile-j", -EPROTO);
    assert_int_equal(M.notes, notes0 + 1);
    finish_good();
}

/* ---- (e) a broken handshake ---- */

/* Expect a REJECT with code `code`, then the socket closed. */
static int h_expect_reject(int sock, int code)
{
    uint8_t buf[RIPC_FRAME_HDR + RIPC_HANDSHAKE_MAX];
    ripc__frame f;
    if (ripc__sock_recv_all(sock, buf, RIPC_FRAME_HDR, 5000) < 0 ||
        ripc__frame_decode(buf, &f, RIPC_HANDSHAKE_MAX) < 0 || f.ftype != RIPC_FRAME_REJECT ||
        f.type != code || ripc__sock_recv_all(sock, buf, (size_t)f.len, 5000) < 0)
        return 20;
    return h_wait_drop(sock, 5000) ? 21 : 0;
}

static int hostile_handshake(int variant)
{
    int sock = h_connect(M.url);
    if (sock < 0)
        return 2;
    uint8_t buf[RIPC_FRAME_HDR + RIPC_HANDSHAKE_MAX];
    size_t n = h_hello(buf, "hostile-e");
    ripc__frame f;
    switch (variant) {
    case 0: /* name and token lengths that do not add up to the frame length */
        buf[RIPC_FRAME_HDR + 32] = 10;
        buf[RIPC_FRAME_HDR + 33] = 5;
        break;
    case 1: /* a NUL inside the name */
        buf[RIPC_FRAME_HDR + RIPC_HELLO_FIXED + 2] = 0;
        break;
    case 2: /* a HELLO of 2^40 bytes: only its header is sent */
        ripc__frame_decode(buf, &f, RIPC_HANDSHAKE_MAX);
        f.len = (uint64_t)1 << 40;
        ripc__frame_encode(buf, &f);
        n = RIPC_FRAME_HDR;
        break;
    case 3: /* half a header, then nothing until the master let us go */
        if (send(sock, buf, RIPC_FRAME_HDR / 2, MSG_NOSIGNAL) != RIPC_FRAME_HDR / 2)
            return 3;
        atomic_store(&M.sh->hostile_done, 1);
        for (uint64_t end = ripc_test_now_ms() + 30000; !atomic_load(&M.sh->release);)
            if (ripc_test_now_ms() > end)
                return 4;
            else
                usleep(1000);
        close(sock);
        return 0;
    }
    if (send(sock, buf, n, MSG_NOSIGNAL) != (ssize_t)n)
        return 3;
    return h_expect_reject(sock, EPROTO);
}

static void test_hostile_handshake(void **state)
{
    (void)state;
    for (int v = 0; v < 4; v++) {
        int nj = M.nj, nl = M.nl;
        start_hostile(hostile_handshake, v);
        if (v == 3) {
            /* While the stalled connection is open the master serves on. */
            PUMP_UNTIL(atomic_load(&M.sh->hostile_done), 5000);
            assert_true(atomic_load(&M.sh->hostile_done));
            int ok0 = atomic_load(&M.sh->good.ok);
            PUMP_UNTIL(atomic_load(&M.sh->good.ok) > ok0 + 100, 10000);
            assert_true(atomic_load(&M.sh->good.ok) > ok0 + 100);
            assert_int_equal(ripc_server_peer_count(M.s), 1);
            atomic_store(&M.sh->release, 1);
        }
        wait_hostile_exit();
        /* It never joined, so it never leaves: no callbacks at all. */
        assert_int_equal(M.nj, nj);
        assert_int_equal(M.nl, nl);
    }
    finish_good();
}

/* ---- (f) nonsense in the consumer index of the m->w ring ---- */

static int hostile_tail(int variant)
{
    hconn h;
    int rc = h_begin(&h, "hostile-f", variant, NULL);
    if (rc)
        return rc;
    /* 0: unaligned garbage; 1: beyond anything produced; 2: backwards. */
    static const uint64_t tails[] = {0xDEADBEEF00000003ull, (uint64_t)1 << 20, (uint64_t)0 - 8};
    atomic_store_explicit(&h.m2w->cons.tail, tails[variant], memory_order_release);
    return h_finish(&h);
}

static void test_hostile_tail_scribble(void **state)
{
    (void)state;
    for (int v = 0; v < 3; v++) {
        char name[32];
        snprintf(name, sizeof name, "hostile-f%d", v);
        start_hostile(hostile_tail, v);
        PUMP_UNTIL(atomic_load(&M.sh->hostile_done), 5000);
        const struct rec *j = find(M.joined, M.nj, name);
        assert_non_null(j);
        unsigned char payload[100] = {0};
        int rc = 0, sent = 0;
        while (sent < 100000) {
            rc = ripc_server_send(M.s, j->id, T_NOTE, payload, sizeof payload, 0);
            if (rc != 0)
                break;
            if (++sent % 8 == 0)
                pump(); /* keep the good worker served */
        }
        if (rc != -EPROTO && rc != -EPIPE)
            fail_msg("send to %s: %d (%s) after %d sends", name, rc, ripc_strerror(rc), sent);
        expect_left(name, -EPROTO);
        assert_int_equal(ripc_server_send(M.s, j->id, T_NOTE, payload, 1, 0), -ENOENT);
    }
    finish_good();
}

/* ---- (g) a worker that sends requests and never reads the replies ---- */

#define DEAF_REQUESTS 300

/* Push one record, waiting (up to 20 s) for room; then ring. 0 or -1. */
static int h_push(hconn *h, ripc_ring *p, const void *rec, size_t len)
{
    for (uint64_t end = ripc_test_now_ms() + 20000; ripc_ring_push(p, rec, len) == -EAGAIN;) {
        if (ripc_test_now_ms() > end)
            return -1;
        h_ring_master(h); /* our own wake-ups: we never arm a sleep flag */
        sched_yield();
    }
    h_ring_master(h);
    return 0;
}

/* The damage is done: say so, and stay connected until the master has
 * seen everything. */
static int h_done_stay(void)
{
    atomic_store(&M.sh->hostile_done, 1);
    while (!atomic_load(&M.sh->release))
        sched_yield();
    return 0;
}

static int hostile_deaf(int variant)
{
    (void)variant;
    hconn h;
    if (h_open(&h, "deaf") < 0)
        return 2;
    ripc_ring *p;
    if (ripc_ring_attach(&p, h.w2m, h.ring_sz, RIPC_RING_PRODUCER) < 0)
        return 3;
    uint8_t rec[RIPC_MSG_HDR + 100] = {0};
    for (uint64_t i = 1; i <= DEAF_REQUESTS; i++) {
        ripc__msg_encode(rec, T_ECHO, RIPC_KIND_REQUEST, 0, i);
        if (h_push(&h, p, rec, sizeof rec) < 0)
            return 4;
    }
    ripc_ring_detach(p);
    return h_done_stay();
}

static void test_hostile_deaf_worker(void **state)
{
    (void)state;
    memset(&DEAF, 0, sizeof DEAF);
    start_hostile(hostile_deaf, 0);
    int ok0 = atomic_load(&M.sh->good.ok);
    /* Without the stall rule each reply would wait 1 s: 300 s in all. */
    PUMP_UNTIL(DEAF.handled == DEAF_REQUESTS, 30000);
    assert_int_equal(DEAF.handled, DEAF_REQUESTS);
    assert_true(DEAF.ok > 0 && DEAF.ok < DEAF_REQUESTS);
    assert_int_equal(DEAF.timedout, 1); /* one reply waited, then none did */
    assert_int_equal(DEAF.again, DEAF_REQUESTS - DEAF.ok - 1);
    assert_int_equal(DEAF.other, 0);
    PUMP_UNTIL(atomic_load(&M.sh->good.ok) > ok0 + 5, 5000);
    assert_true(atomic_load(&M.sh->good.ok) > ok0 + 5);
    atomic_store(&M.sh->release, 1);
    wait_hostile_exit();
    finish_good();
}

/* ---- (g2) a worker that leaves replies unread and sends requests nobody
 * handles ----
 * The master answers each with -ENOENT. The worker fills its reply ring
 * that way, then 5 times reads one reply and sends two more requests: the
 * first answer fits, the second does not. An answer that waited for room
 * would hold the only dispatch thread, and the good worker with it, for
 * the reply timeout (1 s) every time. */

#define T_NOBODY     7 /* no handler, no fallback */
#define UNREAD_FILL  200
#define UNREAD_LOOPS 5

static int h_push_wait(hconn *h, ripc_ring *p, uint64_t id)
{
    uint8_t rec[RIPC_MSG_HDR];
    ripc__msg_encode(rec, T_NOBODY, RIPC_KIND_REQUEST, 0, id);
    return h_push(h, p, rec, sizeof rec);
}

/* Until the master has taken (and answered, or not) all we sent. */
static int h_wait_taken(hconn *h, ripc_ring *p)
{
    for (uint64_t end = ripc_test_now_ms() + 20000; ripc_ring_used(p) > 0; sched_yield()) {
        if (ripc_test_now_ms() > end)
            return -1;
        h_ring_master(h);
    }
    return 0;
}

static int hostile_unread(int variant)
{
    (void)variant;
    hconn h;
    if (h_open(&h, "unread") < 0)
        return 2;
    ripc_ring *p, *c;
    if (ripc_ring_attach(&p, h.w2m, h.ring_sz, RIPC_RING_PRODUCER) < 0 ||
        ripc_ring_attach(&c, h.m2w, h.ring_sz, RIPC_RING_CONSUMER) < 0)
        return 3;
    uint64_t id = 0;
    for (int i = 0; i < UNREAD_FILL; i++)
        if (h_push_wait(&h, p, ++id) < 0)
            return 4;
    if (h_wait_taken(&h, p) < 0)
        return 5;
    /* Far more answers than the ring holds: it is full now. */
    uint64_t t0 = ripc_test_now_ms();
    for (int i = 0; i < UNREAD_LOOPS; i++) {
        const void *rec;
        size_t len;
        if (ripc_ring_peek(c, &rec, &len) != 0)
            return 6;
        ripc_ring_release(c);
        if (h_push_wait(&h, p, ++id) < 0 || h_push_wait(&h, p, ++id) < 0 || h_wait_taken(&h, p) < 0)
            return 7;
    }
    atomic_store(&M.sh->hostile_ms, (int)(ripc_test_now_ms() - t0));
    return h_done_stay();
}

static void test_hostile_unread_unhandled(void **state)
{
    (void)state;
    atomic_store(&M.sh->good.max_ms, 0);
    uint64_t dropped0 = ripc_server_dropped(M.s);
    start_hostile(hostile_unread, 0);
    PUMP_UNTIL(atomic_load(&M.sh->hostile_done) || M.hostile == 0, 30000);
    if (!atomic_load(&M.sh->hostile_done))
        fail_msg("the unread worker did not finish (exit %d)", M.hostile_status);
    int good_ms = atomic_load(&M.sh->good.max_ms), bad_ms = atomic_load(&M.sh->hostile_ms);
    print_message("unread: %d loops in %d ms; the good worker's slowest request %d ms\n",
                  UNREAD_LOOPS, bad_ms, good_ms);
    assert_int_equal(ripc_server_dropped(M.s) - dropped0, UNREAD_FILL + 2 * UNREAD_LOOPS);
    if (good_ms >= 500)
        fail_msg("a good worker's request took %d ms beside the unread one", good_ms);
    atomic_store(&M.sh->release, 1);
    wait_hostile_exit();
    finish_good();
}

/* ---- (h) a worker that tries to make the master's doorbell writes block:
 * its descriptors set blocking, its own doorbell never read, its sleep flag
 * raised again and again so that every master send rings ---- */

static int hostile_bells(int variant)
{
    (void)variant;
    hconn h;
    if (h_open(&h, "bells") < 0)
        return 2;
    int fds[2] = {h.own_bell, h.master_bell};
    for (int i = 0; i < 2; i++) {
        int fl = fcntl(fds[i], F_GETFL);
        if (fl >= 0)
            fcntl(fds[i], F_SETFL, fl & ~O_NONBLOCK);
    }
    atomic_store(&M.sh->hostile_done, 1);
    while (!atomic_load(&M.sh->release)) {
        /* Swallow every record (so the master keeps sending) without ever
         * reading the doorbell, and ask to be woken for each one. */
        uint64_t head = atomic_load_explicit(&h.m2w->prod.head, memory_order_acquire);
        atomic_store_explicit(&h.m2w->cons.tail, head, memory_order_release);
        atomic_store_explicit(&h.m2w->wait.w.consumer_sleeping, 1, memory_order_seq_cst);
        sched_yield();
    }
    return 0;
}

static void test_hostile_blocking_bells(void **state)
{
    (void)state;
    start_hostile(hostile_bells, 0);
    PUMP_UNTIL(atomic_load(&M.sh->hostile_done), 5000);
    const struct rec *j = find(M.joined, M.nj, "bells");
    assert_non_null(j);
    int ok0 = atomic_load(&M.sh->good.ok), sent = 0, full = 0;
    unsigned char payload[32] = {0};
    /* Far more rings than a doorbell socket buffers: a blocking write in the
     * master would hang here (the test's timeout), not fail an assert. */
    for (int i = 0; sent < 3000; i++) {
        int rc = ripc_server_send(M.s, j->id, T_NOTE, payload, sizeof payload, 0);
        if (rc == 0) {
            sent++;
        } else if (rc == -EAGAIN) {
            full++;
            sched_yield(); /* one CPU: let the worker swallow */
        } else {
            fail_msg("send: %s", ripc_strerror(rc));
        }
        if (i % 64 == 0)
            pump();
    }
    print_message("bells: %d sent, %d found the ring full\n", sent, full);
    /* 3000 rings is well past what a doorbell socket buffers. */
    PUMP_UNTIL(atomic_load(&M.sh->good.ok) > ok0 + 5, 5000);
    assert_true(atomic_load(&M.sh->good.ok) > ok0 + 5);
    atomic_store(&M.sh->release, 1);
    wait_hostile_exit();
    finish_good();
}

/* A worker that closes its end of the master's doorbell: the master's end
 * then reports end of stream on every wait. The master must stop watching
 * it, not spin on it (it did: 100% of a CPU while otherwise idle). */
static int hostile_closed_bell(int variant)
{
    (void)variant;
    hconn h;
    if (h_open(&h, "closed-bell") < 0)
        return 2;
    close(h.master_bell);
    h.master_bell = -1;
    atomic_store(&M.sh->hostile_done, 1);
    while (!atomic_load(&M.sh->release))
        usleep(1000); /* idle, alive: only the socket says we are here */
    return 0;
}

static void test_hostile_closed_bell(void **state)
{
    (void)state;
    start_hostile(hostile_closed_bell, 0);
    PUMP_UNTIL(atomic_load(&M.sh->hostile_done), 5000);
    assert_true(atomic_load(&M.sh->hostile_done));
    expect_master_idle("closed-bell", "on a closed doorbell");
    atomic_store(&M.sh->release, 1);
    wait_hostile_exit();
    finish_good();
}

/* ---- (k) a worker that truncates its segment ----
 * Where segments come from shm_open (no memfd, or memfd_create refused by a
 * seccomp profile: `test_hostile_worker shm_open` runs these cases under
 * such a filter), nothing stops a worker from truncating the segment the
 * master maps, and the master's next access to it faults (SIGBUS). The
 * master must drop that worker alone, with -EPROTO, and go on serving the
 * good one. On memfd the seal refuses the truncation (EPERM). Variants:
 *   0: one note, then truncate and ring the master's doorbell;
 *   1: a batch of ours in the ring, truncated while the master is inside a
 *      handler for its first message (whose data points into the segment);
 *   2: truncate and stay quiet: the master's own send to us, from an
 *      application thread, is the first access and must fail, not crash. */

#define T_HOLD 3 /* one-way: the handler waits until the worker truncated */

struct trunc_shared {
    _Atomic int backend;   /* hostile -> master: the segment's RIPC_SEG_* */
    _Atomic int err;       /* hostile -> master: errno of its ftruncate, 0 */
    _Atomic int truncated; /* hostile -> master: ftruncate was tried */
    _Atomic int holding;   /* master -> hostile: inside the T_HOLD handler */
    _Atomic int go;        /* master -> hostile: not polling, truncate now */
};
static struct trunc_shared *TS;

static int trunc_expect_shm_open; /* the shm_open run (seccomp filter on) */

/* Wait (either side) until the other side raised *flag: 0, or -1 after
 * 10 s. */
static int await_flag(_Atomic int *flag)
{
    for (uint64_t end = ripc_test_now_ms() + 10000; !atomic_load(flag);)
        if (ripc_test_now_ms() > end)
            return -1;
        else
            sched_yield();
    return 0;
}

static void on_hold(ripc_peer *from, const ripc_msg *msg, void *arg)
{
    (void)from;
    (void)arg;
    atomic_store(&TS->holding, 1);
    await_flag(&TS->truncated);
    /* The message is still in the (now truncated) ring: read all of it. */
    unsigned sum = 0;
    for (uint64_t i = 0; i < msg->len; i++)
        sum += ((const volatile unsigned char *)msg->data)[i];
    (void)sum;
}

static int hostile_truncate(int variant)
{
    hconn h;
    ripc_ring *r;
    int rc = h_begin(&h, "hostile-k", variant, &r);
    if (rc)
        return rc;
    atomic_store(&TS->backend, h.seg.backend);
    uint8_t rec[RIPC_MSG_HDR + 64];
    memset(rec, 0x5A, sizeof rec);
    if (variant == 0) {
        if ((rc = h_note_taken(&h, r)) != 0)
            return rc;
    } else if (variant == 1) {
        ripc__msg_encode(rec, T_HOLD, RIPC_KIND_ONEWAY, 0, 0);
        if (ripc_ring_push(r, rec, sizeof rec) < 0)
            return 4;
        ripc__msg_encode(rec, T_NOTE, RIPC_KIND_ONEWAY, 0, 0);
        while (ripc_ring_push(r, rec, sizeof rec) == 0)
            ; /* fill the ring behind it */
        h_ring_master(&h);
        if (await_flag(&TS->holding) < 0)
            return 5;
    } else if (await_flag(&TS->go) < 0) {
        return 5;
    }
    rc = ftruncate((int)h.seg.fd, 0);
    atomic_store(&TS->err, rc == 0 ? 0 : errno);
    atomic_store(&TS->truncated, 1);
    if (rc != 0) {
        /* Sealed: nothing happened. Leave when the master says so. */
        return await_flag(&M.sh->release) < 0 ? 6 : 0;
    }
    if (variant != 2)
        h_ring_master(&h);
    return h_finish(&h); /* never touches its own mapping again */
}

struct trunc_send {
    uint32_t id;
    int rc;
};

static void *trunc_send_main(void *arg)
{
    struct trunc_send *t = arg;
    unsigned char payload[100] = {0};
    t->rc = ripc_server_send(M.s, t->id, T_NOTE, payload, sizeof payload, 1000);
    return NULL;
}

static void test_hostile_truncate(void **state)
{
    (void)state;
    for (int v = 0; v < 3; v++) {
        char name[32];
        snprintf(name, sizeof name, "hostile-k%d", v);
        memset(TS, 0, sizeof *TS);
        int notes0 = M.notes;
        start_hostile(hostile_truncate, v);
        if (v == 2) {
            /* Every poll arms the ring (a store into the segment): stop
             * polling, so that the send below is the first access. */
            PUMP_UNTIL(find(M.joined, M.nj, name) != NULL || M.hostile == 0, 10000);
            atomic_store(&TS->go, 1);
            await_flag(&TS->truncated);
        }
        PUMP_UNTIL(atomic_load(&TS->truncated) || M.hostile == 0, 10000);
        if (!atomic_load(&TS->truncated))
            fail_msg("%s: no truncation (exit %d)", name, M.hostile_status);
        /* shm_open where memfd is refused or not built (the portable build). */
        int want = trunc_expect_shm_open || !ripc__segment_supported(RIPC_SEG_MEMFD)
                       ? RIPC_SEG_SHM_OPEN
                       : RIPC_SEG_MEMFD;
        assert_int_equal(atomic_load(&TS->backend), want);
        assert_int_equal(atomic_load(&TS->err), want == RIPC_SEG_MEMFD ? EPERM : 0);
        if (v == 2) {
            /* The master's send is the first access to the segment. */
            const struct rec *j = find(M.joined, M.nj, name);
            assert_non_null(j);
            struct trunc_send t = {.id = j->id};
            pthread_t th;
            assert_int_equal(pthread_create(&th, NULL, trunc_send_main, &t), 0);
            pthread_join(th, NULL);
            print_message("%s: the master's send returned %d (%s)\n", name, t.rc,
                          ripc_strerror(t.rc));
            if (want == RIPC_SEG_MEMFD)
                assert_int_equal(t.rc, 0);
            else if (t.rc != -EPROTO && t.rc != -EPIPE)
                fail_msg("send to %s: %d (%s)", name, t.rc, ripc_strerror(t.rc));
        }
        if (want == RIPC_SEG_MEMFD) {
            atomic_store(&M.sh->release, 1); /* it stayed whole: let it go */
            PUMP_UNTIL(find(M.left, M.nl, name) != NULL, 10000);
            assert_non_null(find(M.left, M.nl, name));
            wait_hostile_exit();
        } else {
            expect_left(name, -EPROTO);
        }
        if (v == 0)
            assert_int_equal(M.notes, notes0 + 1); /* the note before it */
    }
    finish_good();
}

static int setup_truncate(void **state)
{
    TS = ripc_test_shared_alloc(sizeof *TS);
    setup(state);
    ripc_server_handle(M.s, T_HOLD, on_hold, NULL);
    return 0;
}

static int teardown_truncate(void **state)
{
    teardown(state);
    ripc_test_shared_free(TS, sizeof *TS);
    return 0;
}

/* ---- (l) a worker that cuts a large-message buffer ----
 * Large messages travel in buffers of their own. One that cannot be sealed
 * (shm_open, on every build; the only kind where memfd is refused or not
 * built) can be truncated by whoever holds its descriptor while the other
 * side reads or writes it. The master maps such buffers under its fault
 * guard: the access completes on zeros, and the worker is dropped with
 * -EPROTO. Variants:
 *   0: the worker's own buffer, cut while the master's handler reads it;
 *   1: the master's buffer (a large reply the worker received), cut before
 *      the master fills it again for the next reply. Only where the
 *      master's buffers come from shm_open: a memfd refuses the cut. */

#define L_LARGE (256u * 1024)

/* A buffer as a peer without memfd makes it (shm_open, unlinked at once),
 * len bytes of 0x5A: the descriptor, or -1. */
static int h_shm_buf(size_t len)
{
    char name[64];
    snprintf(name, sizeof name, "/ripc-hostile-%d", (int)getpid());
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return -1;
    shm_unlink(name);
    if (ftruncate(fd, (off_t)len) != 0)
        return -1;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return -1;
    memset(p, 0x5A, len);
    munmap(p, len);
    return fd;
}

/* A large message in buffer fd: its frame, then its marker, rung. 0/-1. */
static int h_send_large(hconn *h, ripc_ring *r, uint16_t type, uint8_t kind, uint64_t id, int fd)
{
    if (h_large_frame_k(h, type, kind, id, L_LARGE, fd) < 0 ||
        h_marker_k(r, type, kind, id, L_LARGE, 8) < 0)
        return -1;
    h_ring_master(h);
    return 0;
}

static int hostile_large_cut(int variant)
{
    hconn h;
    ripc_ring *r;
    int rc = h_begin(&h, "hostile-l", variant, &r);
    if (rc)
        return rc;
    int fd = h_shm_buf(L_LARGE), cut = fd;
    if (fd < 0)
        return 4;
    if (variant == 0) {
        if (h_send_large(&h, r, T_HOLD, RIPC_KIND_ONEWAY, 0, fd) < 0)
            return 5;
        if (await_flag(&TS->holding) < 0) /* the handler holds the mapping */
            return 6;
    } else {
        if (h_send_large(&h, r, T_ECHO, RIPC_KIND_REQUEST, 1, fd) < 0)
            return 5;
        /* The reply's frame, with the master's buffer. */
        uint8_t hdr[RIPC_FRAME_HDR];
        int nfds = 0;
        if (ripc__sock_recv_fds(h.sock, hdr, sizeof hdr, &cut, 1, &nfds, 10000) < 0 || nfds != 1)
            return 6;
    }
    rc = ftruncate(cut, 0);
    atomic_store(&TS->err, rc == 0 ? 0 : errno);
    atomic_store(&TS->truncated, 1);
    if (rc != 0)
        return 7;
    if (variant == 1) {
        /* Take the reply without reading it (its buffer goes back to the
         * master's pool), then ask again: the master refills that buffer. */
        while (atomic_load(&h.m2w->prod.head) == atomic_load(&h.m2w->cons.tail))
            if (!ripc__sock_alive(h.sock))
                return 8;
            else
                sched_yield();
        atomic_store(&h.m2w->cons.tail, atomic_load(&h.m2w->prod.head));
        while (ripc_ring_used(r) > 0 && ripc__sock_alive(h.sock))
            sched_yield(); /* the master took the first request */
        if (h_send_large(&h, r, T_ECHO, RIPC_KIND_REQUEST, 2, fd) < 0)
            return 9;
    }
    return h_finish(&h);
}

static void test_hostile_large_truncate(void **state)
{
    (void)state;
    /* The master's large buffers come from shm_open where memfd is refused
     * or not built (the portable build). */
    int shm_open_master = trunc_expect_shm_open || !ripc__segment_supported(RIPC_SEG_MEMFD);
    for (int v = 0; v < 2; v++) {
        if (v == 1 && !shm_open_master) {
            print_message("hostile-l1: the master's buffers are sealed memfds here (the "
                          "shm_open run covers it)\n");
            continue;
        }
        char name[32];
        snprintf(name, sizeof name, "hostile-l%d", v);
        memset(TS, 0, sizeof *TS);
        int notes0 = M.notes;
        start_hostile(hostile_large_cut, v);
        expect_left(name, -EPROTO);
        assert_int_equal(atomic_load(&TS->err), 0);
        assert_int_equal(M.notes, notes0);
    }
    finish_good();
}

/* A master that blocks every signal (as programs that sigwait() do) and
 * runs run(2): its dispatch threads must still catch the SIGBUS of a
 * truncated segment. The master is this program run again ("blocked-master":
 * if it dies, the test runner must not, and a fresh process may open a
 * server, which a forked copy of this one may not: ringipc.h, "Fork"); two
 * hostile workers, one per dispatch thread, each send a note and then
 * truncate. */

static _Atomic int blk_eproto, blk_other, blk_notes;

static void blk_note(ripc_peer *from, const ripc_msg *msg, void *arg)
{
    (void)from;
    (void)msg;
    (void)arg;
    atomic_fetch_add(&blk_notes, 1); /* on either dispatch thread */
}

static void blk_left(ripc_peer *p, int reason, void *arg)
{
    (void)p;
    atomic_fetch_add(reason == -EPROTO ? &blk_eproto : &blk_other, 1);
    if (atomic_load(&blk_eproto) + atomic_load(&blk_other) == 2)
        ripc_server_stop(arg);
}

static int hostile_cut(int idx)
{
    hconn h;
    ripc_ring *r;
    int rc = h_begin(&h, "hostile-cut", idx, &r);
    if (rc == 0)
        rc = h_note_taken(&h, r);
    if (rc)
        return rc;
    if (ftruncate((int)h.seg.fd, 0) != 0)
        return 6;
    h_ring_master(&h);
    return h_wait_drop(h.sock, 20000) ? 10 : 0; /* never touches its mapping again */
}

static int master_signals_blocked(void)
{
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    memset(&M, 0, sizeof M);
    snprintf(M.url, sizeof M.url, "unix:/tmp/ripc-hostile-blk-%d.sock", (int)getpid());
    char why[128] = "";
    int rc = ripc_server_open_ex(&M.s, M.url, NULL, why, sizeof why);
    if (rc < 0) {
        fprintf(stderr, "master: open: %s (%s)\n", ripc_strerror(rc), why);
        return 2;
    }
    ripc_server_handle(M.s, T_NOTE, blk_note, NULL);
    ripc_server_on_peer(M.s, NULL, blk_left, M.s);
    pid_t kids[2];
    for (int i = 0; i < 2; i++) {
        fflush(NULL);
        if ((kids[i] = fork()) == 0)
            _exit(hostile_cut(i));
        if (kids[i] < 0)
            return 3;
    }
    rc = ripc_server_run(M.s, 2); /* the two peers go to the two loops */
    ripc_server_close(M.s);
    int st0 = ripc_test_wait(kids[0]), st1 = ripc_test_wait(kids[1]);
    if (rc != 0 || atomic_load(&blk_eproto) != 2 || atomic_load(&blk_notes) != 2 || st0 != 0 ||
        st1 != 0) {
        fprintf(stderr,
                "master: run %d, %d left with -EPROTO, %d otherwise, %d notes, kids %d %d\n", rc,
                atomic_load(&blk_eproto), atomic_load(&blk_other), atomic_load(&blk_notes), st0,
                st1);
        return 4;
    }
    /* run gave the mask back. */
    sigset_t now;
    pthread_sigmask(SIG_BLOCK, NULL, &now);
    return sigismember(&now, SIGBUS) ? 0 : 5;
}

static void test_hostile_truncate_signals_blocked(void **state)
{
    (void)state;
    char *argv[] = {"test_hostile_worker", "blocked-master", NULL};
    FILE *out;
    pid_t pid = ripc_test_spawn_self(argv, NULL, NULL, &out);
    assert_true(pid > 0);
    int st = -1;
    for (uint64_t end = ripc_test_now_ms() + 30000; ripc_test_now_ms() < end; usleep(10000)) {
        int w;
        if (waitpid(pid, &w, WNOHANG) == pid) {
            st = WIFEXITED(w) ? WEXITSTATUS(w) : 128 + WTERMSIG(w);
            break;
        }
    }
    if (st < 0) {
        kill(pid, SIGKILL);
        ripc_test_wait(pid);
        fail_msg("the master with every signal blocked hangs");
    }
    fclose(out);
    if (st != 0)
        fail_msg("the master with every signal blocked: exit %d%s", st,
                 st == 128 + SIGBUS ? " (killed by SIGBUS)" : "");
}

/* The cases above with the master's segments from shm_open: memfd_create
 * refused in this process and its children, as by a seccomp profile. */
static int run_shm_open_cases(void)
{
    int rc = ripc_test_refuse_memfd();
    if (rc < 0)
        ripc_test_skip("cannot refuse memfd_create: %s", strerror(-rc));
    trunc_expect_shm_open = 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hostile_truncate, setup_truncate, teardown_truncate),
        cmocka_unit_test_setup_teardown(test_hostile_large_truncate, setup_truncate,
                                        teardown_truncate),
        cmocka_unit_test(test_hostile_truncate_signals_blocked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The same attacks against a master driven by its own event loop
 * (ripc_server_poll(s, 0) + ripc_server_fd()). */
static int setup_own_loop(void **state)
{
    setup(state);
    M.own_loop = 1; /* setup() made the good worker join through poll(s, 10) */
    return 0;
}

static void test_hostile_own_event_loop(void **state)
{
    (void)state;
    start_hostile(hostile_garbage, 1);
    expect_left("hostile-a1", -EPROTO);
    int notes0 = M.notes;
    start_hostile(hostile_bad_message, 1);
    expect_left("hostile-b1", -EPROTO);
    assert_int_equal(M.notes, notes0 + 1);
    start_hostile(hostile_control, 1);
    expect_left("hostile-d1", -EPROTO);
    stalled_goodbye();
    finish_good();
}

/* ---- (l) scribbling while the master dispatches on n threads ----
 * Until now every case did its damage before the master looked. Here a
 * worker scribbles on its segment while the master reads and writes it
 * from ripc_server_run(s, n) threads, and while this thread sends to it:
 * indices, record headers and lengths, message headers, the wait words and
 * the constants line of both rings, with random and adversarial values,
 * between valid requests and notes (it swallows the replies as they come).
 * Some scribbles are harmless (a wait word, payload bytes, the constants
 * the master copied at attach) and the connection goes on; after
 * SCRIBBLE_STEPS it makes sure of its end (garbage over its whole w->m data
 * area). So every scribbler joins, and leaves exactly once, with -EPROTO.
 * Meanwhile the good worker's requests must all come back intact, and once
 * it is over the master must be idle, then stop. A fixed number of rounds
 * (connections) and steps, not a time. */

#define SCRIBBLE_ROUNDS 64
#define SCRIBBLE_STEPS  256

static uint64_t adversarial(uint64_t *s, uint64_t near, uint64_t cap)
{
    uint64_t r = ripc_test_rand(s);
    switch (r % 8) {
    case 0:
        return 0;
    case 1:
        return UINT64_MAX - (r >> 8) % 16;
    case 2:
        return near + cap + 8 * ((r >> 8) % 4); /* just over a lap */
    case 3:
        return near - 8 * (1 + (r >> 8) % 8); /* backwards */
    case 4:
        return near + 1 + (r >> 8) % 7; /* unaligned */
    case 5:
        return (uint64_t)1 << (32 + (r >> 8) % 32); /* far */
    case 6:
        return near + 8 * ((r >> 8) % (cap / 8)); /* plausible */
    default:
        return ripc_test_rand(s);
    }
}

/* A record header as a hostile producer might write one. */
static uint64_t bad_header(uint64_t *s, uint64_t cap)
{
    uint64_t r = ripc_test_rand(s);
    uint32_t len = (uint32_t)(r >> 32);
    switch (r % 6) {
    case 0:
        return ripc__rec_pack(len, RIPC_REC_VALID); /* any length */
    case 1:
        return ripc__rec_pack((uint32_t)(cap / 2 + 8 * (r % 3)), RIPC_REC_VALID);
    case 2:
        return ripc__rec_pack((uint32_t)(r % cap), RIPC_REC_VALID | RIPC_REC_PAD);
    case 3:
        return ripc__rec_pack(len % 64, RIPC_REC_VALID | 0x80u);
    case 4:
        return ripc__rec_pack(len % 64, 0); /* not committed, yet nonzero */
    default:
        return ripc_test_rand(s);
    }
}

/* One scribble on either ring of h, wherever the master may be right now. */
static void scribble(hconn *h, uint64_t *s)
{
    uint64_t r = ripc_test_rand(s);
    struct ripc_ring_hdr *g = r & 1 ? h->m2w : h->w2m;
    unsigned char *data = (unsigned char *)g + RIPC_RING_HDR_BYTES;
    uint64_t cap = h->w.ring_bytes;
    uint64_t tail = atomic_load(&g->cons.tail), head = atomic_load(&g->prod.head);
    uint64_t at = (tail + 8 * ((r >> 8) % 8)) & (cap - 8); /* a header slot the master reads */
    switch ((r >> 4) % 8) {
    case 0:
        atomic_store(&g->prod.head, adversarial(s, head, cap));
        break;
    case 1:
        atomic_store(&g->cons.tail, adversarial(s, tail, cap));
        break;
    case 2:
        __atomic_store_n((uint64_t *)(data + at), bad_header(s, cap), __ATOMIC_RELEASE);
        break;
    case 3: { /* the message header (or large marker) behind a record header */
        uint64_t v[2] = {ripc_test_rand(s), ripc_test_rand(s)};
        if (r & 0x100)
            v[0] &= 0x00000000FFFFFFFFull; /* reserved bytes clear: kind/flags decide */
        memcpy(data + ((at + 8) & (cap - 16)), v, sizeof v);
        break;
    }
    case 4: { /* a wait word */
        _Atomic uint32_t *w[4] = {&g->wait.w.consumer_sleeping, &g->wait.w.producer_sleeping,
                                  &g->wait.w.data_seq, &g->wait.w.space_seq};
        uint32_t vals[4] = {1, 2, 0xFFFFFFFFu, (uint32_t)ripc_test_rand(s)};
        atomic_store(w[(r >> 8) % 4], vals[(r >> 10) % 4]);
        break;
    }
    case 5: /* the constants line: the master must not read it again */
        g->consts.c.capacity = adversarial(s, cap, cap);
        g->consts.c.max_payload = ripc_test_rand(s);
        break;
    case 6: { /* random bytes over a span of the data area */
        uint64_t from = ripc_test_rand(s) % cap, n = ripc_test_rand(s) % 256;
        for (uint64_t i = 0; i < n && from + i < cap; i++)
            data[from + i] = (unsigned char)ripc_test_rand(s);
        break;
    }
    default: /* a committed record's length changed under the reader */
        __atomic_store_n((uint64_t *)(data + at),
                         ripc__rec_pack((uint32_t)(ripc_test_rand(s) % cap), RIPC_REC_VALID),
                         __ATOMIC_RELEASE);
        break;
    }
}

/* The m->w ring: take whatever the master put there. */
static void swallow(hconn *h)
{
    atomic_store_explicit(&h->m2w->cons.tail, atomic_load(&h->m2w->prod.head),
                          memory_order_release);
}

static int hostile_scribbler(int n)
{
    uint64_t s = 0x5C21BB1E5ull + (uint64_t)n;
    int steps = 0, scribbles = 0, survived = 0;
    for (int round = 0; round < SCRIBBLE_ROUNDS; round++) {
        hconn h;
        ripc_ring *r;
        if (h_open(&h, "scribbler") < 0 ||
            ripc_ring_attach(&r, h.w2m, h.ring_sz, RIPC_RING_PRODUCER) < 0)
            return 2;
        unsigned char payload[512];
        memset(payload, 0x5A, sizeof payload);
        for (int step = 0; step < SCRIBBLE_STEPS && ripc__sock_alive(h.sock); step++) {
            uint64_t x = ripc_test_rand(&s);
            size_t len = (size_t)(x >> 20) % sizeof payload;
            void *rec;
            if (ripc_ring_reserve(r, RIPC_MSG_HDR + len, &rec) == 0) {
                int req = x & 1;
                ripc__msg_encode(rec, req ? T_ECHO : T_NOTE,
                                 req ? RIPC_KIND_REQUEST : RIPC_KIND_ONEWAY, 0, (uint64_t)step);
                memcpy((uint8_t *)rec + RIPC_MSG_HDR, payload, len);
                ripc_ring_commit(r, RIPC_MSG_HDR + len);
            }
            h_ring_master(&h);
            if ((x >> 8) % 4 == 0) {
                scribble(&h, &s);
                scribbles++;
            }
            steps++;
            swallow(&h);
            if ((x >> 12) % 16 == 0)
                sched_yield(); /* let the master catch up now and then */
        }
        /* The end: garbage wherever the master's position is. */
        survived += ripc__sock_alive(h.sock);
        memset(h.w2m_data, 0xA5, (size_t)h.w.ring_bytes);
        h_ring_master(&h);
        for (uint64_t end = ripc_test_now_ms() + 20000; ripc__sock_alive(h.sock); sched_yield()) {
            if (ripc_test_now_ms() > end)
                return 10;
            swallow(&h);
        }
        ripc_ring_detach(r);
        ripc_test_hclose(&h);
    }
    printf("scribbler: %d rounds, %d steps, %d scribbles, %d rounds survived them all\n",
           SCRIBBLE_ROUNDS, steps, scribbles, survived);
    fflush(stdout);
    return 0;
}

static void *run_thread(void *arg)
{
    int rc = ripc_server_run(M.s, (unsigned)(uintptr_t)arg);
    if (rc < 0)
        fprintf(stderr, "run: %s\n", ripc_strerror(rc));
    return NULL;
}

static int teardown_run(void **state)
{
    if (M.running) {
        ripc_server_stop(M.s);
        pthread_join(M.run_th, NULL);
        M.running = 0;
    }
    return teardown(state);
}

static void scribble_under_run(unsigned threads)
{
    /* Fork before the dispatch threads start (a child forked while another
     * thread allocates may find the allocator locked). */
    start_hostile(hostile_scribbler, (int)threads);
    assert_int_equal(pthread_create(&M.run_th, NULL, run_thread, (void *)(uintptr_t)threads), 0);
    M.running = 1;
    unsigned char note[64];
    memset(note, 0x5A, sizeof note);
    uint64_t end = ripc_test_now_ms() + 120000;
    while (M.hostile != 0 && ripc_test_now_ms() < end) {
        /* Sends from outside the dispatch threads, to the scribbler of the
         * moment (the last to join), meet its scribbles too. */
        int nj = M.nj;
        const struct rec *last = nj > 0 ? &M.joined[nj - 1] : NULL;
        if (last && strcmp(last->name, "scribbler") == 0)
            ripc_server_send(M.s, last->id, T_NOTE, note, sizeof note, 5);
        pump();
    }
    wait_hostile_exit();
    int joined = 0, left = 0;
    for (int i = 0; i < M.nj; i++)
        joined += strcmp(M.joined[i].name, "scribbler") == 0;
    PUMP_UNTIL(M.nl >= joined, 5000);
    for (int i = 0; i < M.nl; i++) {
        if (strcmp(M.left[i].name, "scribbler") != 0)
            continue;
        left++;
        if (M.left[i].reason != -EPROTO)
            fail_msg("scribbler %u left with %d (%s)", M.left[i].id, M.left[i].reason,
                     ripc_strerror(M.left[i].reason));
    }
    assert_int_equal(joined, SCRIBBLE_ROUNDS);
    assert_int_equal(left, SCRIBBLE_ROUNDS);
    assert_int_equal(ripc_server_peer_count(M.s), 1); /* the good worker */
    expect_master_idle("(none)", "after the scribblers left");
    finish_good();
    assert_int_equal(ripc_server_peer_count(M.s), 0);
}

static void test_hostile_scribble_run2(void **state)
{
    (void)state;
    scribble_under_run(2);
}

static void test_hostile_scribble_run4(void **state)
{
    (void)state;
    scribble_under_run(4);
}

/* ---- (m) a worker that does not read, sent to from the moment it joins ----
 * An application thread sends to the worker with timeout -1 from `joined`
 * on, before any loop owns it, and the worker never reads: the send waits
 * for room. It must not hold the worker's send lock while it waits, or the
 * loop that adopts the worker (which takes that lock) waits with it, and
 * with the loop every other worker, until this one dies (the churn test
 * found all of a master's loops stuck behind such a send). */

static struct {
    pthread_t th;
    uint32_t id;
    _Atomic int tid;
    _Atomic int rc;
} SENDER;

static void *unread_sender(void *arg)
{
    (void)arg;
    atomic_store(&SENDER.tid, (int)syscall(SYS_gettid));
    unsigned char buf[200] = {0};
    int rc;
    while ((rc = ripc_server_send(M.s, SENDER.id, T_NOTE, buf, sizeof buf, -1)) == 0)
        ;
    atomic_store(&SENDER.rc, rc);
    return NULL;
}

/* Is thread tid of this process asleep? The sender only ever sleeps in its
 * wait for room (nothing else contends: this loop is in `joined`). */
static int asleep(int tid)
{
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char *st = fgets(line, sizeof line, f) ? strrchr(line, ')') : NULL;
    fclose(f);
    return st && st[1] == ' ' && st[2] == 'S';
}

static void join_unread(ripc_peer *p)
{
    int sock = strcmp(ripc_peer_name(p), "unread-join-sock") == 0;
    if (!sock && strcmp(ripc_peer_name(p), "unread-join") != 0)
        return;
    SENDER.id = ripc_peer_id(p);
    assert_int_equal(pthread_create(&SENDER.th, NULL, unread_sender, NULL), 0);
    /* Stay in `joined` until the send waits for room (shm: the worker sees
     * the flag it arms; socket: the sender sleeps), so that it waits while
     * no loop owns the worker. */
    for (uint64_t end = ripc_test_now_ms() + 10000; ripc_test_now_ms() < end; usleep(1000)) {
        if (sock && atomic_load(&SENDER.tid) && asleep(atomic_load(&SENDER.tid)))
            atomic_store(&M.sh->hostile_done, 1);
        if (atomic_load(&M.sh->hostile_done))
            break;
    }
}

static int hostile_unread_from_join(int variant)
{
    hconn h;
    uint64_t end = ripc_test_now_ms() + 10000;
    if (variant == 0) {
        if (h_open(&h, "unread-join") < 0)
            return 2;
        while (atomic_load(&h.m2w->wait.w.producer_sleeping) == 0)
            if (ripc_test_now_ms() > end)
                return 3;
        atomic_store(&M.sh->hostile_done, 1);
    } else if (ripc_test_hopen(&h, M.url, "unread-join-sock", 0, RIPC_XPORT_SOCKET) < 0) {
        return 2;
    }
    /* Still never reading: the master must serve on and let us go. */
    for (end = ripc_test_now_ms() + 5000; !atomic_load(&M.sh->release);)
        if (ripc_test_now_ms() > end)
            return 11; /* the master is stuck: leaving unsticks it */
        else
            usleep(1000);
    return 0; /* the connection ends, and with it the send */
}

static void test_hostile_unread_from_join(void **state)
{
    (void)state;
    M.join_hook = join_unread;
    for (int v = 0; v < 2; v++) {
        memset(&SENDER, 0, sizeof SENDER);
        atomic_store(&M.sh->release, 0);
        start_hostile(hostile_unread_from_join, v);
        PUMP_UNTIL(atomic_load(&M.sh->hostile_done), 10000);
        assert_true(atomic_load(&M.sh->hostile_done));
        int ok0 = atomic_load(&M.sh->good.ok);
        PUMP_UNTIL(atomic_load(&M.sh->good.ok) > ok0 + 5, 5000);
        assert_true(atomic_load(&M.sh->good.ok) > ok0 + 5);
        atomic_store(&M.sh->release, 1);
        expect_left(v ? "unread-join-sock" : "unread-join", -EPIPE);
        pthread_join(SENDER.th, NULL);
        assert_int_equal(atomic_load(&SENDER.rc), -EPIPE);
    }
    M.join_hook = NULL;
    finish_good();
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc > 1 && strcmp(argv[1], "shm_open") == 0)
        return run_shm_open_cases();
    if (argc > 1 && strcmp(argv[1], "blocked-master") == 0)
        return ripc_test_refuse_memfd() < 0 ? 9 : master_signals_blocked();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hostile_ring_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_bad_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_random_ring, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_control_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_socket_oversize, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_unread_frames, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_handshake, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_tail_scribble, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_deaf_worker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_unread_unhandled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_blocking_bells, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_closed_bell, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_truncate, setup_truncate, teardown_truncate),
        cmocka_unit_test_setup_teardown(test_hostile_large_truncate, setup_truncate,
                                        teardown_truncate),
        cmocka_unit_test_setup_teardown(test_hostile_own_event_loop, setup_own_loop, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_scribble_run2, setup, teardown_run),
        cmocka_unit_test_setup_teardown(test_hostile_scribble_run4, setup, teardown_run),
        cmocka_unit_test_setup_teardown(test_hostile_unread_from_join, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
