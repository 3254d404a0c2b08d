/*
 * Churn: ten thousand workers come and go against one master, in every way
 * a worker can leave, and the master must end where it started.
 *
 * The master is this process: ripc_server_run(s, 2) on a thread, greeting
 * each peer from `joined`, the main thread broadcasting now and then, and
 * one more thread sending to the newest peer without a timeout (so that
 * sends, and their waits for room, meet peers that are dying).
 * A handful of worker processes (this program re-executed, role "worker")
 * each run many cycles; a cycle is one connection:
 *
 *   bye      open, requests checked byte for byte (one in 16 larger than a
 *            ring record: the memfd path in shm mode), one-way notes, close
 *   exit     a forked child opens, sends, and exits without goodbye
 *   kill     a forked child opens and sends a burst; it is SIGKILLed in the
 *            middle of it (one in 8 at once, mid-handshake)
 *   hs       a handshake abandoned half way: nothing, half a header, half a
 *            HELLO, a whole HELLO and no reading, or the WELCOME taken and
 *            the connection closed
 *   hostile  a hand-made worker (support/hconn.h) that corrupts its ring or
 *            its consumer index, or sends junk on its control socket, and
 *            waits to be thrown out; or junk instead of a HELLO
 *
 * Measured in the master after a warm-up and again at the end, once every
 * connection has been dealt with: open descriptors (/proc/self/fd), memfds
 * among them, threads (/proc/self/task) must be exactly as before; the
 * resident set (/proc/self/statm) may grow by at most RSS_SLACK (allocator
 * caches and fragmentation; a leak of a peer or a ring per cycle would be
 * far more: 10,000 cycles x 34 KiB of segment alone is 340 MiB); every peer
 * id joined at most once and left exactly as often as it joined, with the
 * reason its kind calls for; ripc_server_peer_count() is 0. Under ASan the
 * resident set mostly measures its quarantine of freed blocks (+35 MiB over
 * a run here), so the bound applies to the live heap it reports instead
 * (__sanitizer_get_current_allocated_bytes); its leak check at exit covers
 * what is no longer reachable.
 *
 * Usage: test_churn [shm|socket]   (default: both transports)
 * Environment: RIPC_CHURN_CYCLES overrides the number of cycles per
 * transport (default 10000).
 */
#include <dirent.h>
#include <errno.h>
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
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CHURN_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define CHURN_ASAN 1
#endif
#ifdef CHURN_ASAN
#include <sanitizer/allocator_interface.h>
#define MEM_NAME "live heap"
#else
#define MEM_NAME "rss"
#endif

#include "ringipc/ring.h"
#include "ringipc/ringipc.h"
#include "sockets/closer.h"
#include "sockets/sock.h"
#include "support/hconn.h"
#include "support/support.h"

#define T_ECHO    1
#define T_NOTE    2
#define WORKERS   4
#define WARMUP    40 /* cycles per worker before the first measurement */
#define RING      16384u
#define BIG       (64u * 1024) /* over a 16 KiB ring's largest record */
#define MAX_IDS   (1u << 16)
#define RSS_SLACK ((uint64_t)16 << 20)

enum { K_BYE, K_EXIT, K_KILL, K_HS, K_HOSTILE, K_N };
static const char *const kind_name[K_N] = {"bye", "exit", "kill", "hs", "hostile"};

/* ==== worker side (a re-executed child: never calls cmocka) ==== */

static const char *W_url;
static int W_socket; /* the master runs socket mode */

static int wfail(const char *what, int rc)
{
    printf("%s: %d (%s)\n", what, rc, ripc_strerror(rc));
    fflush(stdout);
    return 1;
}

static int open_client(ripc_client **c, const char *name)
{
    ripc_options o = {.name = name, .ring_bytes = RING};
    return ripc_client_open(c, W_url, &o);
}

/* Drain broadcasts without waiting. */
static void drain(ripc_client *c)
{
    ripc_msg m;
    while (ripc_client_recv(c, &m, 0) == 0)
        ;
}

static int echo(ripc_client *c, unsigned char *buf, size_t len, uint64_t seq)
{
    ripc_test_fill(buf, len, seq);
    ripc_msg r;
    int rc = ripc_client_request(c, T_ECHO, buf, len, &r, 5000);
    if (rc < 0)
        return rc;
    return r.len == len && ripc_test_check(r.data, len, seq) ? 0 : -EBADMSG;
}

static unsigned char W_buf[BIG];

static int cycle_bye(uint64_t *rng)
{
    ripc_client *c;
    int rc = open_client(&c, "bye");
    if (rc < 0)
        return wfail("bye: open", rc);
    int n = 1 + (int)(ripc_test_rand(rng) % 6);
    for (int i = 0; i < n && rc == 0; i++) {
        uint64_t r = ripc_test_rand(rng);
        size_t len = r % 16 == 0 ? BIG - (size_t)(r >> 40) % 512 : (size_t)(r >> 40) % 2048;
        if ((rc = echo(c, W_buf, len, r)) < 0)
            break;
        rc = ripc_client_send(c, T_NOTE, W_buf, len % 300, 5000);
        drain(c);
    }
    ripc_client_close(c);
    return rc < 0 ? wfail("bye: request", rc) : 0;
}

/* Run fn in a forked child; 0 when it exited 0. */
static int in_child(int (*fn)(uint64_t *), uint64_t *rng, const char *what)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return wfail(what, -errno);
    if (pid == 0)
        _exit(fn(rng));
    ripc_test_rand(rng); /* the child took this path's numbers */
    int st = ripc_test_wait(pid);
    return st == 0 ? 0 : wfail(what, -st);
}

static int exit_child(uint64_t *rng)
{
    ripc_client *c;
    int rc = open_client(&c, "exit");
    if (rc < 0)
        return wfail("exit: open", rc);
    int n = (int)(ripc_test_rand(rng) % 4);
    for (int i = 0; i < n; i++)
        if ((rc = ripc_client_send(c, T_NOTE, W_buf, (size_t)i * 100, 5000)) < 0)
            return wfail("exit: send", rc);
    if (n & 1 && (rc = echo(c, W_buf, 100, 7)) < 0)
        return wfail("exit: request", rc);
    return 0; /* _exit: no goodbye, nothing freed */
}

static int W_ready = -1; /* kill child: says "in the burst" here */

static int kill_child(uint64_t *rng)
{
    ripc_client *c;
    int rc = open_client(&c, "kill");
    if (rc < 0)
        return wfail("kill: open", rc);
    int at = (int)(ripc_test_rand(rng) % 24);
    uint64_t end = ripc_test_now_ms() + 20000; /* never killed: the parent is gone */
    for (int i = 0; ripc_test_now_ms() < end; i++) {
        if (i == at && write(W_ready, "k", 1) != 1)
            return 3;
        uint64_t r = ripc_test_rand(rng);
        size_t len = r % 8 == 0 ? BIG : (size_t)(r >> 40) % 1500;
        if (r % 5 == 0)
            rc = echo(c, W_buf, len, r);
        else
            rc = ripc_client_send(c, T_NOTE, W_buf, len, 5000);
        if (rc < 0)
            return wfail("kill: send", rc);
    }
    return 4;
}

static int cycle_kill(uint64_t *rng)
{
    int pp[2];
    if (pipe(pp) != 0)
        return wfail("kill: pipe", -errno);
    int at_once = ripc_test_rand(rng) % 8 == 0;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return wfail("kill: fork", -errno);
    if (pid == 0) {
        close(pp[0]);
        W_ready = pp[1];
        _exit(kill_child(rng));
    }
    ripc_test_rand(rng);
    close(pp[1]);
    char b = 0;
    ssize_t got = at_once ? 1 : read(pp[0], &b, 1);
    close(pp[0]);
    kill(pid, SIGKILL);
    int st = ripc_test_wait(pid);
    if (got != 1 || st != 128 + SIGKILL)
        return wfail("kill: child ended on its own", -st);
    return 0;
}

static int cycle_exit(uint64_t *rng)
{
    return in_child(exit_child, rng, "exit");
}

/* A handshake abandoned half way (never a failure for the worker). */
static int cycle_hs(uint64_t *rng)
{
    int v = (int)(ripc_test_rand(rng) % 5);
    int xp = W_socket ? RIPC_XPORT_SOCKET : RIPC_XPORT_SHM;
    if (v == 4) {
        ripc_test_hconn h;
        if (ripc_test_hopen(&h, W_url, "hs", RING, xp) < 0)
            return wfail("hs: handshake", -EPROTO);
        ripc_test_hclose(&h); /* joined, then gone without a word */
        return 0;
    }
    int sock = ripc_test_hconnect(W_url);
    if (sock < 0)
        return wfail("hs: connect", -ECONNREFUSED);
    uint8_t buf[RIPC_FRAME_HDR + RIPC_HANDSHAKE_MAX];
    size_t n = ripc_test_hello(buf, "hs", RING, xp);
    size_t part[4] = {0, RIPC_FRAME_HDR / 2, RIPC_FRAME_HDR + (n - RIPC_FRAME_HDR) / 2, n};
    if (part[v] && send(sock, buf, part[v], MSG_NOSIGNAL) != (ssize_t)part[v])
        return wfail("hs: send", -errno);
    close(sock);
    return 0;
}

/* Wait to be thrown out; 0 when the master did. */
static int thrown_out(ripc_test_hconn *h, const char *what)
{
    int rc = ripc_test_hwait_drop(h->sock, 10000);
    ripc_test_hclose(h);
    return rc ? wfail(what, -ETIMEDOUT) : 0;
}

static int cycle_hostile(uint64_t *rng)
{
    int v = (int)(ripc_test_rand(rng) % 4);
    uint8_t buf[3 * RIPC_FRAME_HDR];
    if (v == 3) {
        /* Junk instead of a HELLO: REJECTed, never joins. */
        int sock = ripc_test_hconnect(W_url);
        if (sock < 0)
            return wfail("hostile: connect", -ECONNREFUSED);
        memset(buf, 0xEE, sizeof buf);
        if (send(sock, buf, sizeof buf, MSG_NOSIGNAL) != (ssize_t)sizeof buf)
            return wfail("hostile: send", -errno);
        ripc_test_hconn h = {.sock = sock, .master_bell = -1, .own_bell = -1};
        return thrown_out(&h, "hostile: junk HELLO kept");
    }
    ripc_test_hconn h;
    if (ripc_test_hopen(&h, W_url, "hostile", RING, W_socket ? RIPC_XPORT_SOCKET : RIPC_XPORT_SHM) <
        0)
        return wfail("hostile: handshake", -EPROTO);
    ripc__frame f = {.ftype = RIPC_FRAME_MSG, .type = T_NOTE};
    size_t n = RIPC_FRAME_HDR;
    if (W_socket || v == 0) {
        switch (W_socket ? v : 0) {
        case 0: /* bad magic */
            memset(buf, 0xEE, sizeof buf);
            n = sizeof buf;
            break;
        case 1: /* more than max_message */
            f.len = h.w.max_message + 1;
            ripc__frame_encode(buf, &f);
            break;
        case 2: /* workers never reply */
            f.kind = RIPC_KIND_REPLY;
            ripc__frame_encode(buf, &f);
            break;
        }
        if (send(h.sock, buf, n, MSG_NOSIGNAL) != (ssize_t)n)
            return wfail("hostile: send", -errno);
        return thrown_out(&h, "hostile: junk on the socket kept");
    }
    if (v == 1) {
        /* An unaligned head far beyond the ring. */
        atomic_store_explicit(&h.w2m->prod.head, 0xFFFFFFFFFFFFFF03ull, memory_order_release);
        memset(h.w2m_data, 0xA5, (size_t)h.w.ring_bytes);
    } else {
        /* Our consumer index beyond anything produced, then requests until
         * the master's replies fill our ring: the first reply that needs
         * the index finds it corrupt. */
        atomic_store_explicit(&h.m2w->cons.tail, 0xDEADBEEF00000003ull, memory_order_release);
        ripc_ring *r;
        if (ripc_ring_attach(&r, h.w2m, h.ring_sz, RIPC_RING_PRODUCER) < 0)
            return wfail("hostile: ring", -EPROTO);
        for (uint64_t id = 1; id <= 4 * RING / 1024 && ripc__sock_alive(h.sock); id++) {
            void *rec;
            int rc;
            while ((rc = ripc_ring_reserve(r, RIPC_MSG_HDR + 1024, &rec)) == -EAGAIN &&
                   ripc__sock_alive(h.sock))
                sched_yield(); /* the master is taking our requests */
            if (rc < 0)
                break;
            ripc__msg_encode(rec, T_ECHO, RIPC_KIND_REQUEST, 0, id);
            ripc_ring_commit(r, RIPC_MSG_HDR + 1024);
            ripc_test_hring(&h);
        }
        ripc_ring_detach(r);
    }
    ripc_test_hring(&h);
    return thrown_out(&h, "hostile: corrupt ring kept");
}

static int worker_main(uint64_t seed, int cycles)
{
    signal(SIGPIPE, SIG_IGN);
    uint64_t rng = seed * 0x9E3779B97F4A7C15ull + 1;
    static int (*const cycle[K_N])(uint64_t *) = {cycle_bye, cycle_exit, cycle_kill, cycle_hs,
                                                  cycle_hostile};
    int count[K_N] = {0};
    uint64_t ms[K_N] = {0};
    for (int i = 0; i < cycles; i++) {
        unsigned r = (unsigned)(ripc_test_rand(&rng) % 100);
        int k = r < 35 ? K_BYE : r < 50 ? K_EXIT : r < 65 ? K_KILL : r < 85 ? K_HS : K_HOSTILE;
        uint64_t t0 = ripc_test_now_ms();
        if (cycle[k](&rng) != 0) {
            printf("worker %llu: cycle %d (%s) failed\n", (unsigned long long)seed, i,
                   kind_name[k]);
            return 1;
        }
        ms[k] += ripc_test_now_ms() - t0;
        count[k]++;
    }
    /* cycles and milliseconds per kind */
    for (int k = 0; k < K_N; k++)
        printf("%s %d %llu ms%s", kind_name[k], count[k], (unsigned long long)ms[k],
               k + 1 < K_N ? ", " : "\n");
    return 0;
}

/* ==== master side ==== */

static struct {
    ripc_server *s;
    char url[96];
    pthread_t run_th;
    _Atomic unsigned char joined[MAX_IDS], left[MAX_IDS];
    _Atomic int nj[K_N], nl[K_N];
    _Atomic int bad; /* a leave with the wrong reason, or an id out of range */
    _Atomic int bad_kind, bad_reason;
    _Atomic uint32_t last_id; /* the peer that joined last */
    _Atomic int sender_stop;
    pthread_t sender_th;
} C;

static int kind_of(const char *name)
{
    for (int k = 0; k < K_N; k++)
        if (strcmp(name, kind_name[k]) == 0)
            return k;
    return -1;
}

static void on_join(ripc_peer *p, void *arg)
{
    (void)arg;
    uint32_t id = ripc_peer_id(p);
    int k = kind_of(ripc_peer_name(p));
    if (id >= MAX_IDS || k < 0 || atomic_fetch_add(&C.joined[id], 1) != 0) {
        atomic_store(&C.bad, 1);
        return;
    }
    atomic_fetch_add(&C.nj[k], 1);
    atomic_store(&C.last_id, id);
    /* A greeting before the peer has a loop (socket mode may leave part of
     * it for that loop to write). */
    unsigned char hi[100] = {0};
    ripc_server_send(C.s, id, T_NOTE, hi, sizeof hi, 0);
}

static void on_left(ripc_peer *p, int reason, void *arg)
{
    (void)arg;
    uint32_t id = ripc_peer_id(p);
    int k = kind_of(ripc_peer_name(p));
    if (id >= MAX_IDS || k < 0) {
        atomic_store(&C.bad, 1);
        return;
    }
    atomic_fetch_add(&C.left[id], 1);
    atomic_fetch_add(&C.nl[k], 1);
    int want = k == K_BYE ? RIPC_LEFT_BYE : k == K_HOSTILE ? -EPROTO : -EPIPE;
    if (reason != want && !atomic_exchange(&C.bad, 1)) {
        atomic_store(&C.bad_kind, k);
        atomic_store(&C.bad_reason, reason);
    }
}

/* An application thread that sends to the peer that joined last and waits
 * as long as it takes (timeout -1): a peer that does not read holds it
 * until the peer dies or is dropped, which must end the wait. */
static void *sender_main(void *arg)
{
    (void)arg;
    unsigned char buf[200] = {0};
    while (!atomic_load(&C.sender_stop)) {
        uint32_t id = atomic_load(&C.last_id);
        if (id == 0 || ripc_server_send(C.s, id, T_NOTE, buf, sizeof buf, -1) == -ENOENT)
            usleep(1000); /* gone already: wait for the next one */
    }
    return NULL;
}

static void *run_main(void *arg)
{
    (void)arg;
    int rc = ripc_server_run(C.s, 2);
    if (rc < 0)
        fprintf(stderr, "run: %s\n", ripc_strerror(rc));
    return NULL;
}

struct usage {
    int fds, memfds, sockets, threads;
    uint64_t rss; /* resident bytes (ASan: live heap bytes) */
};

static int count_dir(const char *path)
{
    DIR *d = opendir(path);
    int n = 0;
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* Print the descriptors (what they point at) when asked to. */
static struct usage measure(int show)
{
    struct usage u = {0};
    ripc__fd_dispose_wait();                /* descriptors handed to the closer: closed first */
    u.fds = count_dir("/proc/self/fd") - 1; /* opendir's own */
    u.threads = count_dir("/proc/self/task");
    DIR *d = opendir("/proc/self/fd");
    for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
        char path[64], to[256];
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(path, to, sizeof to - 1);
        if (e->d_name[0] == '.' || n < 0)
            continue;
        to[n] = 0;
        if (strncmp(to, "/memfd:", 7) == 0)
            u.memfds++;
        if (strncmp(to, "socket:", 7) == 0)
            u.sockets++;
        if (show)
            print_message("  fd %s -> %s\n", e->d_name, to);
    }
    if (d)
        closedir(d);
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%llu %llu", &size, &res) != 2)
            res = 0;
        fclose(f);
    }
    u.rss = res * (uint64_t)sysconf(_SC_PAGESIZE);
#ifdef CHURN_ASAN
    u.rss = __sanitizer_get_current_allocated_bytes();
#endif
    return u;
}

/* Run WORKERS workers of `cycles` cycles each; broadcast meanwhile. */
static void run_workers(const char *mode, int cycles, uint64_t seed0)
{
    pid_t pid[WORKERS];
    FILE *out[WORKERS];
    char n[16];
    snprintf(n, sizeof n, "%d", cycles);
    for (int i = 0; i < WORKERS; i++) {
        char seed[24];
        snprintf(seed, sizeof seed, "%llu", (unsigned long long)(seed0 + (uint64_t)i));
        char *argv[] = {"test_churn", "worker", C.url, (char *)mode, seed, n, NULL};
        pid[i] = ripc_test_spawn_self(argv, NULL, NULL, &out[i]);
        assert_true(pid[i] > 0);
    }
    unsigned char note[64] = {0};
    for (int left = WORKERS; left > 0;) {
        /* Sends that meet peers joining, dying and being dropped. */
        ripc_server_broadcast(C.s, T_NOTE, note, sizeof note, 1);
        struct pollfd pf[WORKERS];
        int np = 0;
        for (int i = 0; i < WORKERS; i++)
            if (out[i])
                pf[np++] = (struct pollfd){.fd = fileno(out[i]), .events = POLLIN};
        poll(pf, (nfds_t)np, 5);
        for (int i = 0; i < WORKERS; i++) {
            if (!out[i])
                continue;
            int st;
            if (waitpid(pid[i], &st, WNOHANG) != pid[i])
                continue;
            char line[256] = "";
            if (!fgets(line, sizeof line, out[i]))
                line[0] = 0;
            fclose(out[i]);
            out[i] = NULL;
            left--;
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                fail_msg("worker %d: status %d: %s", i, st, line);
            print_message("worker %d: %s", i, line);
        }
    }
}

/* Wait (bounded) until every connection has been dealt with: no peers, and
 * no socket open but the listener (connections and doorbells are sockets;
 * the workers are gone, so each of them ends). */
static void settle(void)
{
    uint64_t end = ripc_test_now_ms() + 10000;
    while (ripc_test_now_ms() < end &&
           (ripc_server_peer_count(C.s) != 0 || measure(0).sockets != 1))
        usleep(2000);
}

static void check_callbacks(void)
{
    if (atomic_load(&C.bad))
        fail_msg("a %s peer left with %d (%s), or a peer joined twice / was unnamed",
                 kind_name[atomic_load(&C.bad_kind)], atomic_load(&C.bad_reason),
                 ripc_strerror(atomic_load(&C.bad_reason)));
    for (uint32_t id = 0; id < MAX_IDS; id++)
        if (atomic_load(&C.left[id]) != atomic_load(&C.joined[id]))
            fail_msg("peer %u: joined %d times, left %d times", id, atomic_load(&C.joined[id]),
                     atomic_load(&C.left[id]));
    for (int k = 0; k < K_N; k++)
        assert_int_equal(atomic_load(&C.nj[k]), atomic_load(&C.nl[k]));
}

static int teardown(void **state)
{
    (void)state;
    if (C.sender_th) {
        atomic_store(&C.sender_stop, 1);
        pthread_join(C.sender_th, NULL);
        C.sender_th = 0;
    }
    if (C.s) {
        ripc_server_stop(C.s);
        pthread_join(C.run_th, NULL);
        ripc_server_close(C.s);
        C.s = NULL;
    }
    return 0;
}

static void churn(const char *mode)
{
    memset(&C, 0, sizeof C);
    ripc_test_unix_url(C.url, sizeof C.url, "churn");
    int socket_mode = strcmp(mode, "socket") == 0;
    ripc_options o = {.ring_bytes = RING,
                      .transport = socket_mode ? RIPC_TRANSPORT_SOCKET : RIPC_TRANSPORT_SHM};
    assert_int_equal(ripc_test_echo_master(&C.s, C.url, &o, T_ECHO), 0);
    ripc_server_handle(C.s, T_NOTE, ripc_test_on_count, NULL);
    ripc_server_on_peer(C.s, on_join, on_left, NULL);
    assert_int_equal(pthread_create(&C.run_th, NULL, run_main, NULL), 0);
    assert_int_equal(pthread_create(&C.sender_th, NULL, sender_main, NULL), 0);

    const char *env = getenv("RIPC_CHURN_CYCLES");
    int cycles = env && *env ? atoi(env) : 10000;
    uint64_t t0 = ripc_test_now_ms();
    run_workers(mode, WARMUP, 1000);
    settle();
    struct usage a = measure(0);
    if (a.sockets != 1 || ripc_server_peer_count(C.s) != 0) {
        measure(1);
        fail_msg("after the warm-up: %d sockets open, %u peers", a.sockets,
                 ripc_server_peer_count(C.s));
    }
    uint64_t t1 = ripc_test_now_ms();
    run_workers(mode, (cycles + WORKERS - 1) / WORKERS, 2000);
    uint64_t t2 = ripc_test_now_ms();
    settle();
    struct usage b = measure(0);
    print_message("%s: warm-up %.1f s, %d cycles %.1f s, settled in %.1f s; fds %d -> %d, "
                  "memfds %d -> %d, threads %d -> %d, " MEM_NAME " %.2f -> %.2f MiB\n",
                  mode, (double)(t1 - t0) / 1e3, cycles, (double)(t2 - t1) / 1e3,
                  (double)(ripc_test_now_ms() - t2) / 1e3, a.fds, b.fds, a.memfds, b.memfds,
                  a.threads, b.threads, (double)a.rss / 1048576.0, (double)b.rss / 1048576.0);
    int joined = 0;
    for (int k = 0; k < K_N; k++) {
        print_message("  %-8s joined %d, left %d\n", kind_name[k], atomic_load(&C.nj[k]),
                      atomic_load(&C.nl[k]));
        joined += atomic_load(&C.nj[k]);
    }
    assert_int_equal(ripc_server_peer_count(C.s), 0);
    if (b.fds != a.fds)
        measure(1);
    assert_int_equal(b.fds, a.fds);
    assert_int_equal(b.memfds, a.memfds);
    assert_int_equal(b.threads, a.threads);
    if (b.rss > a.rss + RSS_SLACK)
        fail_msg(MEM_NAME " grew by %.1f MiB", (double)(b.rss - a.rss) / 1048576.0);
    check_callbacks();
    assert_true(joined > cycles / 2); /* the churn did reach the master */

    teardown(NULL);
    check_callbacks();
}

static void test_churn_shm(void **state)
{
    (void)state;
    churn("shm");
}

static void test_churn_socket(void **state)
{
    (void)state;
    churn("socket");
}

int main(int argc, char **argv)
{
    if (argc == 6 && strcmp(argv[1], "worker") == 0) {
        W_url = argv[2];
        W_socket = strcmp(argv[3], "socket") == 0;
        return worker_main(strtoull(argv[4], NULL, 10), atoi(argv[5]));
    }
    signal(SIGPIPE, SIG_IGN);
    if (argc > 1 && strcmp(argv[1], "shm") != 0 && strcmp(argv[1], "socket") != 0) {
        fprintf(stderr, "usage: %s [shm|socket]\n", argv[0]);
        return 2;
    }
    if (argc > 1)
        cmocka_set_test_filter(strcmp(argv[1], "shm") == 0 ? "*shm" : "*socket");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_churn_shm, teardown),
        cmocka_unit_test_teardown(test_churn_socket, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
