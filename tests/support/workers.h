/*
 * Worker processes of the multi-process tests and what their master checks
 * of them: the first failure among the master's threads, forked workers
 * that count what the master took, and re-executed workers that report
 * each milestone as a line on their stdout.
 */
#ifndef RIPC_TEST_WORKERS_H
#define RIPC_TEST_WORKERS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include "ringipc/ringipc.h"
#include "support/support.h"

/* ---- the master's side ---- */

/* The first failure seen by the master's threads (handlers, senders): the
 * later ones are dropped, the first is the cause. Zeroed memory is a record
 * with no failure. */
typedef struct ripc_test_failure {
    _Atomic int claimed; /* a thread is writing msg */
    _Atomic int set;     /* msg is complete */
    char msg[512];
} ripc_test_failure;

/* Record a failure in f unless one is recorded already; any thread. */
void ripc_test_fail_once(ripc_test_failure *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* 1 when f holds a complete failure. */
int ripc_test_failed(ripc_test_failure *f);
/* cmocka (test thread only): fail with f's message when it has one. */
void ripc_test_assert_no_failure(ripc_test_failure *f);

/* A master under test: its server, its dispatch (started by the first
 * ripc_test_fork_dispatch(..., &m->run, m->s)) and who joined and left.
 * mu / cv guard the counts, and serve the test's own waits too. */
typedef struct ripc_test_master {
    ripc_server *s; /* NULL once closed */
    ripc_test_runner run;
    char url[128];
    pthread_mutex_t mu;
    pthread_cond_t cv; /* broadcast at every join and leave */
    int joined, left;
    uint32_t last_joined, last_left; /* peer ids */
    int left_reason;                 /* why the last one left */
    int hold;                        /* ripc_test_on_hold waits while this is set */
    int in_hold;                     /* it is waiting */
} ripc_test_master;

/* A cmocka setup's part: zero m, open its server at a fresh unix URL
 * tagged `tag` with o, and count joins and leaves. 0, or -1 after saying
 * why. */
int ripc_test_master_open(ripc_test_master *m, const char *tag, const ripc_options *o);
/* The same at url (m->url after: the server's own, a tcp:// port
 * resolved), from a test's body as well: 0, or the negative errno after
 * saying why. */
int ripc_test_master_listen(ripc_test_master *m, const char *url, const ripc_options *o);
/* Stop m's server, wait for its dispatch, close it (m->s NULL after); a
 * closed one only waits for its dispatch. */
void ripc_test_master_close(ripc_test_master *m);
/* m->joined / m->left now (under mu). */
int ripc_test_master_joined(ripc_test_master *m);
int ripc_test_master_left(ripc_test_master *m);
/* Wait until m->joined is past joined0; the peer id of the last to join. */
uint32_t ripc_test_master_wait_joined(ripc_test_master *m, int joined0);
/* Wait until m->left is past left0; why the last to leave left. */
int ripc_test_master_wait_left(ripc_test_master *m, int left0);

/* Wait up to ms milliseconds until *count (&m->joined or &m->left)
 * reaches n; *count then. */
int ripc_test_master_await(ripc_test_master *m, const int *count, int n, int ms);
/* The peer id of the last to join, and why the last to leave left (under
 * mu). */
uint32_t ripc_test_master_last_id(ripc_test_master *m);
int ripc_test_master_left_reason(ripc_test_master *m);
/* A handler that holds its dispatch thread (and so its worker's ring)
 * while the ripc_test_master arg points to is held: ripc_test_master_hold
 * sets and clears that; ripc_test_master_wait_held waits until the handler
 * waits. */
void ripc_test_on_hold(ripc_peer *from, const ripc_msg *msg, void *arg);
void ripc_test_master_hold(ripc_test_master *m, int on);
void ripc_test_master_wait_held(ripc_test_master *m);

/* A handler for the request that ends a forked worker's run: it replies
 * with the _Atomic uint64_t arg points to (the messages that checked out). */
void ripc_test_on_count_request(ripc_peer *from, const ripc_msg *msg, void *arg);

/* Fork a worker that runs fn(arg) and _exit()s with what it returns (stdio
 * is flushed first, so that nothing buffered is written twice). The pid,
 * or -1. The child must not call cmocka (see WCHECK). */
int ripc_test_fork(int (*fn)(void *), void *arg);
/* The same, the child under alarm(alarm_s) (0: none), so that a call that
 * hangs ends it with SIGALRM rather than the test with ctest's timeout. */
int ripc_test_fork_alarm(int (*fn)(void *), void *arg, unsigned alarm_s);
/* cmocka: ripc_test_fork_alarm of a worker that talks to the test over two
 * pipes: fn(rd, wr, arg) in the child; *to_kid and *from_kid the test's
 * ends. The pid. */
int ripc_test_fork_piped(int (*fn)(int rd, int wr, void *arg), void *arg, unsigned alarm_s,
                         int *to_kid, int *from_kid);
/* ripc_test_fork with r's dispatch of s stopped, then r dispatching again
 * on one thread (r runs on one or not at all). A fork while another thread
 * is inside the allocator (dispatch allocates as peers join and leave) can
 * leave the child's allocator locked for good under ASan. Not while a
 * handler is held: the stop waits for it. */
int ripc_test_fork_dispatch(int (*fn)(void *), void *arg, ripc_test_runner *r, ripc_server *s);
/* cmocka: wait for a forked worker, fail with f's message when the master
 * recorded one, assert the worker exited with 0 and that *got (the
 * messages that checked out on the master's side) is want_got. */
void ripc_test_expect_worker(int pid, ripc_test_failure *f, _Atomic uint64_t *got,
                             uint64_t want_got);

/* ---- a forked worker's side ---- */

/* Say "worker <pid>: <what>" on stderr; returns 1, a failed worker's exit
 * code. */
int ripc_test_kid_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Open a client at url with o and check it took the transport named
 * want ("shm" / "socket"): 0, or 1 after saying why (ripc_test_kid_fail). */
int ripc_test_kid_open(ripc_client **c, const char *url, const ripc_options *o, const char *want);
/* Send the request of type `type` that ripc_test_on_count_request answers
 * and compare the count with want: 0, or 1 after saying why. */
int ripc_test_kid_count(ripc_client *c, uint16_t type, uint64_t want);

/* ---- workers re-executed (ripc_test_spawn_self) that report by lines ---- */

/* In the worker: write line to stdout and flush it, for the master reading
 * the pipe to see this milestone at once. */
void ripc_test_say(const char *line);

typedef struct ripc_test_child {
    int pid;
    FILE *out;         /* the worker's stdout */
    const char *label; /* in failure messages ("worker <pid> (<label>)"); may be NULL */
} ripc_test_child;

/* cmocka: spawn this program with argv (ripc_test_spawn_self) as a worker,
 * failing the test when it cannot. */
ripc_test_child ripc_test_child_spawn(char *const argv[], const char *label);
/* cmocka: read the worker's next line; fail, saying how the worker ended,
 * unless the line starts with what. */
void ripc_test_child_expect(ripc_test_child *w, char what);
/* cmocka: wait for the worker and close its pipe; fail unless it ended
 * with want_status (ripc_test_wait's code: 128 + signal when killed). */
void ripc_test_child_finish(ripc_test_child *w, int want_status);

#endif
