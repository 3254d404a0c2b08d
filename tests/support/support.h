/* Helpers shared by the tests (not part of the library). */
#ifndef RIPC_TEST_SUPPORT_H
#define RIPC_TEST_SUPPORT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "ringipc/ringipc.h"

/* In a forked child (which must not call cmocka: a failed assert would
 * longjmp into the child's copy of the runner): when cond is false, say
 * what failed on stderr and _exit(1), for the parent to see in the status. */
#define WCHECK(cond, ...)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "child %d: %s:%d: check failed: %s: ", (int)getpid(), __FILE__,        \
                    __LINE__, #cond);                                                              \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            _exit(1);                                                                              \
        }                                                                                          \
    } while (0)

/* The arguments of a suite that runs in both transports: [shm|socket]
 * [test-name-filter]. Returns RIPC_TRANSPORT_SHM (the default) or
 * RIPC_TRANSPORT_SOCKET with *name set to "shm" / "socket", and hands the
 * filter to cmocka; -1 after printing the usage. */
int ripc_test_transport_args(int argc, char **argv, const char **name);
/* Run only the cmocka tests whose name contains part (NULL: every test). */
void ripc_test_filter(const char *part);

struct CMUnitTest;
/* Run a suite's n cmocka tests as the group "<suite>_<transport_name>"
 * (transport_name as ripc_test_transport_args set it); cmocka's result. */
int ripc_test_run_group(const char *suite, const char *transport_name,
                        const struct CMUnitTest *tests, size_t n);
#define RIPC_TEST_RUN_GROUP(suite, transport_name, tests)                                          \
    ripc_test_run_group((suite), (transport_name), (tests), sizeof(tests) / sizeof((tests)[0]))

/* The Linux abstract unix namespace ("unix:@name"): the portable build
 * refuses it with -ENOTSUP (sockets/addr.c), as other systems do. */
#if defined(__linux__) && !defined(RIPC_PORTABLE_POSIX)
#define RIPC_TEST_ABSTRACT 1
#endif

/* Print "SKIP: <reason>" and exit 77 (ctest counts the test as skipped). */
_Noreturn void ripc_test_skip(const char *fmt, ...);

/* CPUs this process may run on (sched_getaffinity). */
int ripc_test_cpus(void);

/* Small fast deterministic PRNG (xorshift64*). */
static inline uint64_t ripc_test_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Fill buf with bytes derived from seq (so a receiver can check content). */
void ripc_test_fill(void *buf, size_t len, uint64_t seq);
/* Return 1 when buf holds exactly what ripc_test_fill(buf, len, seq) wrote. */
int ripc_test_check(const void *buf, size_t len, uint64_t seq);

/* Map len bytes of anonymous shared memory (survives fork), zero-filled;
 * aborts on error. */
void *ripc_test_shared_alloc(size_t len);
void ripc_test_shared_free(void *p, size_t len);

/* Re-execute this program (/proc/self/exe) with argv in a forked child whose
 * stdout is a pipe: in the child, prepare(arg) runs first when given (to
 * change the environment or a namespace; it may _exit). Returns the child's
 * pid with *out reading its stdout, or -1. */
int ripc_test_spawn_self(char *const argv[], void (*prepare)(void *), void *arg, FILE **out);

/* From now on memfd_create fails with ENOSYS in this process and the
 * children it forks, as under a container's seccomp profile (the library
 * then takes its segments from shm_open). Returns 0, or -errno when the
 * filter cannot be installed (-ENOSYS where seccomp filters do not exist). */
int ripc_test_refuse_memfd(void);

/* Wait (yielding, no sleeps) until thread tid of process pid sleeps in the
 * kernel ('S'), or is gone: a thread that said it is about to block has. */
void ripc_test_wait_sleeping(int pid, int tid);
/* A socket-mode handshake done by hand on a connected socket (as a hostile
 * worker would start): HELLO with name, then the master's WELCOME, whose
 * max_message goes to *max_message. 0, or -1 when the master did not
 * welcome us in socket mode. */
int ripc_test_socket_hello(int sock, const char *name, uint64_t *max_message);

/* A TCP socket whose close waits linger_s seconds: connected over
 * loopback to a listener that never accepts (kept open in *listener, which
 * keeps the connection), its send buffer full, SO_LINGER on. -1 when
 * loopback TCP is not to be had (errno says why). */
int ripc_test_lingering_socket(int linger_s, int *listener);
/* A unix socket whose last close waits linger_s seconds even where the
 * closer turns SO_LINGER off on what it closes: a lingering socket (above)
 * is queued in it, and its release runs in the thread that closes it. The
 * caller's copy of the lingering socket is closed; *listener as above.
 * -1 on failure. */
int ripc_test_slow_close_socket(int linger_s, int *listener);

/* Open descriptors of this process (/proc/self/fd; the one the count
 * itself opens is not counted), or -1. */
int ripc_test_count_fds(void);
/* Threads of this process (/proc/self/task), or -1. */
int ripc_test_count_threads(void);

/* CPU time this process has used (user + system), in seconds. */
double ripc_test_cpu_seconds(void);

/* Wait for pid and return its exit code, or 128 + signal. */
int ripc_test_wait(int pid);

/* CLOCK_MONOTONIC in nanoseconds / milliseconds. */
uint64_t ripc_test_now_ns(void);
uint64_t ripc_test_now_ms(void);

/* Write all len bytes to fd (a pipe to the parent, in a child): on an
 * error, say so on stderr and _exit(4). */
void ripc_test_write_all(int fd, const void *buf, size_t len);
/* Read exactly len bytes: 0, or -1 at end of file or on an error. */
int ripc_test_read_all(int fd, void *buf, size_t len);
/* The same within ms milliseconds: 0, or -1 (end of file, error, time out). */
int ripc_test_read_within(int fd, void *buf, size_t len, int ms);

/* "unix:/tmp/ripc-<tag>-<pid>-<n>.sock" into buf, n counting the calls:
 * an address of its own for each server a test opens. */
void ripc_test_unix_url(char *buf, size_t len, const char *tag);

/* A handler that replies with the request's own bytes. */
void ripc_test_on_echo(ripc_peer *from, const ripc_msg *msg, void *arg);
/* A handler that adds one to the _Atomic int arg points to (arg NULL: it
 * takes the message and does nothing). */
void ripc_test_on_count(ripc_peer *from, const ripc_msg *msg, void *arg);
/* A request's answer of RIPC_TEST_SYNC_REPLY bytes: dispatch took every
 * message its worker sent before the request. */
#define RIPC_TEST_SYNC_REPLY 8
void ripc_test_on_sync(ripc_peer *from, const ripc_msg *msg, void *arg);
/* ripc_server_open_ex, saying on stderr why it failed: 0, or the negative
 * errno. */
int ripc_test_server_open(ripc_server **out, const char *url, const ripc_options *opt);
/* The fault tests' master: a server at url with opt (NULL: the defaults)
 * whose type echo_type replies with the request's own bytes. 0, or a
 * negative errno after saying why on stderr. */
int ripc_test_echo_master(ripc_server **out, const char *url, const ripc_options *opt,
                          uint16_t echo_type);

/* A well-behaved worker's tally, in memory it shares with the master. */
typedef struct ripc_test_tally {
    _Atomic int ok;     /* requests answered with their own bytes */
    _Atomic int bad;    /* requests that failed, the last error in err */
    _Atomic int err;    /* (-EBADMSG: other bytes came back) */
    _Atomic int max_ms; /* the slowest request (the master may reset it) */
} ripc_test_tally;

/* One request of type `type` on c: len bytes (at most 4096) filled from
 * seq, answered within timeout_ms with the same bytes, timed and counted
 * in t. 0, or the error (also in t->err). */
int ripc_test_echo_request(ripc_client *c, uint16_t type, uint64_t seq, size_t len, int timeout_ms,
                           ripc_test_tally *t);

/* ripc_server_run(s, threads) on a thread of its own, for a test that
 * stops or closes the server from another. */
typedef struct ripc_test_runner {
    ripc_server *s;
    unsigned threads;
    pthread_t th;
    int started;     /* th exists and has not been joined */
    int rc;          /* what ripc_server_run returned */
    uint64_t end_ns; /* when it returned (ripc_test_now_ns) */
} ripc_test_runner;

/* Start r: 0, or the error number of pthread_create. */
int ripc_test_run_start(ripc_test_runner *r, ripc_server *s, unsigned threads);
/* Wait for r's thread when it was started (it must be ending: stopped,
 * closed, or out of work); returns r->rc. */
int ripc_test_run_join(ripc_test_runner *r);
/* Stop r's server and wait for r's thread, when it was started (the
 * server stays open). */
void ripc_test_run_stop(ripc_test_runner *r);
/* A cmocka teardown's part for a test with one server s dispatched by r
 * and one forked worker kid (0: none): stop r, SIGKILL and reap the
 * worker, close s (NULL is fine). */
void ripc_test_end_server(ripc_server *s, ripc_test_runner *r, int kid);

#endif
