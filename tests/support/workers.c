#include "support/workers.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

void ripc_test_fail_once(ripc_test_failure *f, const char *fmt, ...)
{
    if (atomic_exchange(&f->claimed, 1))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->msg, sizeof f->msg, fmt, ap);
    va_end(ap);
    /* Pairs with the acquire load in ripc_test_failed: msg is whole. */
    atomic_store(&f->set, 1);
}

int ripc_test_failed(ripc_test_failure *f)
{
    return atomic_load(&f->set);
}

void ripc_test_assert_no_failure(ripc_test_failure *f)
{
    if (ripc_test_failed(f))
        fail_msg("master: %s", f->msg);
}

void ripc_test_on_count_request(ripc_peer *from, const ripc_msg *msg, void *arg)
{
    uint64_t n = atomic_load((_Atomic uint64_t *)arg);
    ripc_reply(from, msg, &n, sizeof n);
}

int ripc_test_fork(int (*fn)(void *), void *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        _exit(fn(arg));
    return pid;
}

int ripc_test_fork_dispatch(int (*fn)(void *), void *arg, ripc_test_runner *r, ripc_server *s)
{
    int pid = ripc_test_fork(fn, arg);
    if (!r->started)
        ripc_test_run_start(r, s, 1);
    return pid;
}

void ripc_test_expect_worker(int pid, ripc_test_failure *f, _Atomic uint64_t *got,
                             uint64_t want_got)
{
    int st = ripc_test_wait(pid);
    ripc_test_assert_no_failure(f);
    assert_int_equal(st, 0);
    assert_int_equal(atomic_load(got), want_got);
}

int ripc_test_kid_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "worker %d: ", (int)getpid());
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

int ripc_test_kid_open(ripc_client **c, const char *url, const ripc_options *o, const char *want)
{
    char why[256] = "";
    int rc = ripc_client_open_ex(c, url, o, why, sizeof why);
    if (rc < 0)
        return ripc_test_kid_fail("open %s: %s (%s)", url, ripc_strerror(rc), why);
    if (strcmp(ripc_client_transport(*c), want) != 0)
        return ripc_test_kid_fail("transport %s, wanted %s", ripc_client_transport(*c), want);
    return 0;
}

int ripc_test_kid_count(ripc_client *c, uint16_t type, uint64_t want)
{
    ripc_msg r;
    int rc = ripc_client_request(c, type, NULL, 0, &r, 30000);
    if (rc < 0)
        return ripc_test_kid_fail("count request: %s", ripc_strerror(rc));
    uint64_t got = 0;
    if (r.len == sizeof got)
        memcpy(&got, r.data, sizeof got);
    if (got != want)
        return ripc_test_kid_fail("the master checked %llu messages, wanted %llu",
                                  (unsigned long long)got, (unsigned long long)want);
    return 0;
}

void ripc_test_say(const char *line)
{
    fputs(line, stdout);
    fflush(stdout);
}

ripc_test_child ripc_test_child_spawn(char *const argv[], const char *label)
{
    ripc_test_child w = {.label = label};
    w.pid = ripc_test_spawn_self(argv, NULL, NULL, &w.out);
    assert_true(w.pid > 0);
    return w;
}

void ripc_test_child_expect(ripc_test_child *w, char what)
{
    char line[16];
    if (!fgets(line, sizeof line, w->out) || line[0] != what) {
        int st = ripc_test_wait(w->pid);
        fail_msg("worker %d (%s): expected '%c', it ended with status %d", w->pid,
                 w->label ? w->label : "-", what, st);
    }
}

void ripc_test_child_finish(ripc_test_child *w, int want_status)
{
    int st = ripc_test_wait(w->pid);
    fclose(w->out);
    w->out = NULL;
    if (st != want_status)
        fail_msg("worker %d (%s) ended with status %d, want %d", w->pid, w->label ? w->label : "-",
                 st, want_status);
}
