/* SPDX-License-Identifier: MIT */
/* Closing what a peer may have handed us: see sockets/closer.h. */
#include "sockets/closer.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shm/fault_guard.h"
#include "sockets/sock.h"

/* Reads of a socket's queue before it is handed over rather than closed
 * here: a unix peer can have no more queued than its send buffer (about
 * 208 KiB unless raised by root), which this reads whole. A TCP peer may
 * keep sending; its socket then goes to the closer as it is. */
#define DRAIN_READS 16
#define DRAIN_BUF   16384

static struct {
    pthread_mutex_t mu;
    pthread_cond_t work; /* descriptors queued */
    pthread_cond_t done; /* one closed */
    int *q;              /* descriptors to close, q[0..n) */
    size_t n, cap;
    uint64_t queued, closed; /* handed over / closed (counts, for waits) */
    unsigned threads;        /* closers running (in this process) */
    unsigned idle;           /* of them, waiting for work */
    unsigned booting;        /* of them, not yet at their loop (fork_prepare) */
} K = {.mu = PTHREAD_MUTEX_INITIALIZER,
       .work = PTHREAD_COND_INITIALIZER,
       .done = PTHREAD_COND_INITIALIZER};

/* A sealable shmem file (memfd, hugetlbfs): its release frees pages and
 * waits for nobody. F_GET_SEALS fails at once on anything else, without
 * asking its file system (an fstat would, and a stuck FUSE mount would
 * never answer). */
static int cheap(int fd)
{
#ifdef F_GET_SEALS
    return fcntl(fd, F_GET_SEALS) >= 0;
#else
    (void)fd;
    return 0;
#endif
}

static void *closer(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&K.mu);
    K.booting--;
    pthread_cond_broadcast(&K.done);
    for (;;) { /* counted idle here (closer_start, and the end of a close) */
        while (K.n == 0)
            pthread_cond_wait(&K.work, &K.mu);
        K.idle--;
        int fd = K.q[--K.n];
        pthread_mutex_unlock(&K.mu);
        /* A lingering socket would hold us for its linger time: without
         * SO_LINGER the kernel sends what is left in the background (and
         * the peer gets its data rather than a reset at the deadline).
         * Anything but a socket says ENOTSOCK without looking further. */
        struct linger off = {0, 0};
        (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &off, sizeof off);
        close(fd);
        pthread_mutex_lock(&K.mu);
        K.closed++;
        K.idle++;
        pthread_cond_broadcast(&K.done);
    }
    return NULL;
}

static void fork_prepare(void)
{
    /* Held only around queue updates (never across a close): fork never
     * waits for a descriptor's release. A closer just started is waited
     * for until it reaches its loop, as the reclaimer is
     * (src/tables_urcu.c, fork_prepare). */
    pthread_mutex_lock(&K.mu);
    while (K.booting)
        pthread_cond_wait(&K.done, &K.mu);
}

static void fork_parent(void)
{
    pthread_mutex_unlock(&K.mu);
}

static void fork_child(void)
{
    /* The closers did not come along. The child holds copies of what was
     * queued: a new closer, started at the child's first hand-over, closes
     * them (the parent closes its own). */
    K.threads = K.idle = K.booting = 0;
    K.closed = K.queued - K.n;        /* those in the parent's hands are not ours */
    pthread_cond_init(&K.work, NULL); /* no waiter came along */
    pthread_cond_init(&K.done, NULL);
    pthread_mutex_unlock(&K.mu);
}

static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
static int fork_ok;

static void fork_register(void)
{
    fork_ok = pthread_atfork(fork_prepare, fork_parent, fork_child) == 0;
}

/* One more closer (K.mu held): 0 or -1. */
static int closer_start(void)
{
    sigset_t old;
    pthread_t th;
    ripc__sigmask_own_thread(&old); /* no signal of the application's on it */
    int rc = pthread_create(&th, NULL, closer, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return -1;
    pthread_detach(th);
    K.threads++;
    K.idle++; /* until it takes one */
    K.booting++;
    return 0;
}

/* Give fd to the closers; 0, or -1 when there is none to be had (fd is
 * still ours then). Called with K.mu held. */
static int hand_over(int fd)
{
    if (!fork_ok || (K.threads == 0 && closer_start() < 0))
        return -1;
    if (K.n == K.cap) {
        size_t cap = K.cap ? 2 * K.cap : 64;
        int *q = realloc(K.q, cap * sizeof *q);
        if (!q)
            return -1;
        K.q = q;
        K.cap = cap;
    }
    K.q[K.n++] = fd;
    K.queued++;
    pthread_cond_signal(&K.work);
    /* More queued than closers free to take them: those that run are
     * inside closes that take their time. */
    if (K.n > K.idle && K.threads < RIPC_CLOSER_THREADS)
        (void)closer_start();
    return 0;
}

void ripc__fd_fork_register(void)
{
    pthread_once(&fork_once, fork_register);
}

static void defer(int fd)
{
    ripc__fd_fork_register();
    pthread_mutex_lock(&K.mu);
    int rc = hand_over(fd);
    pthread_mutex_unlock(&K.mu);
    if (rc < 0)
        close(fd); /* no thread or no memory: better here than a leak */
}

void ripc__fd_close(int fd)
{
    if (fd >= 0)
        (void)close(fd);
}

int ripc__fd_limit_raise(void)
{
    const char *keep = getenv("RIPC_NOFILE");
    if (keep && strcmp(keep, "keep") == 0)
        return 0;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -errno;
    if (rl.rlim_cur == rl.rlim_max)
        return 0;
    rl.rlim_cur = rl.rlim_max;
    return setrlimit(RLIMIT_NOFILE, &rl) == 0 ? 0 : -errno;
}

uint64_t ripc__fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return 0;
    return (uint64_t)rl.rlim_cur;
}

int ripc__fd_reserve(void)
{
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    return fd >= 0 ? fd : -errno;
}

void ripc__fd_dispose(int fd)
{
    if (fd < 0)
        return;
    if (cheap(fd))
        close(fd);
    else
        defer(fd);
}

void ripc__fd_dispose_wait(void)
{
    pthread_mutex_lock(&K.mu);
    uint64_t upto = K.queued;
    while (K.threads && K.closed < upto)
        pthread_cond_wait(&K.done, &K.mu);
    pthread_mutex_unlock(&K.mu);
}

int ripc__fd_dispose_full(void)
{
    pthread_mutex_lock(&K.mu);
    uint64_t held = K.queued - K.closed;
    pthread_mutex_unlock(&K.mu);
    return held >= RIPC_CLOSER_MAX;
}

void ripc__sock_dispose(int fd)
{
    if (fd < 0)
        return;
    char buf[DRAIN_BUF];
    int fds[RIPC_SOCK_RECV_FDS];
    for (int i = 0; i < DRAIN_READS; i++) {
        int nfds = 0, costly = 0;
        long n = ripc__sock_try_recv_fds(fd, buf, sizeof buf, fds, RIPC_SOCK_RECV_FDS, &nfds);
        for (int k = 0; k < nfds; k++) {
            if (!cheap(fds[k]))
                costly = 1;
            ripc__fd_dispose(fds[k]);
        }
        /* A descriptor that is not cheap, or the kernel's truncation: the
         * rest of the queue may hold more of them; it goes with the socket,
         * rather than fill our descriptor table while the closer is busy. */
        if (costly || n == -EPROTO)
            break;
        if (n <= 0) { /* empty (EAGAIN), end of stream, or an error */
            close(fd);
            return;
        }
    }
    defer(fd);
}
