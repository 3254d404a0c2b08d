#include "support/workers.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
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

static void master_on_join(ripc_peer *p, void *arg)
{
    ripc_test_master *m = arg;
    pthread_mutex_lock(&m->mu);
    m->joined++;
    m->last_joined = ripc_peer_id(p);
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
}

static void master_on_left(ripc_peer *p, int reason, void *arg)
{
    ripc_test_master *m = arg;
    pthread_mutex_lock(&m->mu);
    m->left++;
    m->last_left = ripc_peer_id(p);
    m->left_reason = reason;
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
}

int ripc_test_master_listen(ripc_test_master *m, const char *url, const ripc_options *o)
{
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->cv, NULL);
    int rc = ripc_test_server_open(&m->s, url, o);
    if (rc < 0)
        return rc;
    ripc_server_url(m->s, m->url, sizeof m->url);
    ripc_server_on_peer(m->s, master_on_join, master_on_left, m);
    return 0;
}

int ripc_test_master_open(ripc_test_master *m, const char *tag, const ripc_options *o)
{
    char url[sizeof m->url];
    ripc_test_unix_url(url, sizeof url, tag);
    return ripc_test_master_listen(m, url, o) < 0 ? -1 : 0;
}

void ripc_test_master_close(ripc_test_master *m)
{
    if (m->s)
        ripc_server_stop(m->s);
    ripc_test_run_join(&m->run);
    ripc_server_close(m->s);
    m->s = NULL;
}

static int master_count(ripc_test_master *m, const int *n)
{
    pthread_mutex_lock(&m->mu);
    int v = *n;
    pthread_mutex_unlock(&m->mu);
    return v;
}

int ripc_test_master_await(ripc_test_master *m, const int *count, int n, int ms)
{
    struct timespec end;
    clock_gettime(CLOCK_REALTIME, &end); /* the clock of a default condition */
    end.tv_sec += ms / 1000;
    end.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (end.tv_nsec >= 1000000000L) {
        end.tv_sec++;
        end.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&m->mu);
    while (*count < n && pthread_cond_timedwait(&m->cv, &m->mu, &end) == 0)
        ;
    int v = *count;
    pthread_mutex_unlock(&m->mu);
    return v;
}

uint32_t ripc_test_master_last_id(ripc_test_master *m)
{
    pthread_mutex_lock(&m->mu);
    uint32_t id = m->last_joined;
    pthread_mutex_unlock(&m->mu);
    return id;
}

int ripc_test_master_left_reason(ripc_test_master *m)
{
    return master_count(m, &m->left_reason);
}

int ripc_test_master_joined(ripc_test_master *m)
{
    return master_count(m, &m->joined);
}

int ripc_test_master_left(ripc_test_master *m)
{
    return master_count(m, &m->left);
}

uint32_t ripc_test_master_wait_joined(ripc_test_master *m, int joined0)
{
    pthread_mutex_lock(&m->mu);
    while (m->joined == joined0)
        pthread_cond_wait(&m->cv, &m->mu);
    uint32_t id = m->last_joined;
    pthread_mutex_unlock(&m->mu);
    return id;
}

int ripc_test_master_wait_left(ripc_test_master *m, int left0)
{
    pthread_mutex_lock(&m->mu);
    while (m->left == left0)
        pthread_cond_wait(&m->cv, &m->mu);
    int reason = m->left_reason;
    pthread_mutex_unlock(&m->mu);
    return reason;
}

void ripc_test_on_hold(ripc_peer *from, const ripc_msg *msg, void *arg)
{
    (void)from;
    (void)msg;
    ripc_test_master *m = arg;
    pthread_mutex_lock(&m->mu);
    m->in_hold = 1;
    pthread_cond_broadcast(&m->cv);
    while (m->hold)
        pthread_cond_wait(&m->cv, &m->mu);
    m->in_hold = 0;
    pthread_mutex_unlock(&m->mu);
}

void ripc_test_master_hold(ripc_test_master *m, int on)
{
    pthread_mutex_lock(&m->mu);
    m->hold = on;
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
}

void ripc_test_master_wait_held(ripc_test_master *m)
{
    pthread_mutex_lock(&m->mu);
    while (!m->in_hold)
        pthread_cond_wait(&m->cv, &m->mu);
    pthread_mutex_unlock(&m->mu);
}

void ripc_test_on_count_request(ripc_peer *from, const ripc_msg *msg, void *arg)
{
    uint64_t n = atomic_load((_Atomic uint64_t *)arg);
    ripc_reply(from, msg, &n, sizeof n);
}

int ripc_test_fork(int (*fn)(void *), void *arg)
{
    return ripc_test_fork_alarm(fn, arg, 0);
}

int ripc_test_fork_alarm(int (*fn)(void *), void *arg, unsigned alarm_s)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (alarm_s)
            alarm(alarm_s);
        _exit(fn(arg));
    }
    return pid;
}

struct piped {
    int (*fn)(int rd, int wr, void *arg);
    void *arg;
    int down[2], up[2];
};

static int piped_main(void *arg)
{
    struct piped *p = arg;
    close(p->down[1]);
    close(p->up[0]);
    return p->fn(p->down[0], p->up[1], p->arg);
}

int ripc_test_fork_piped(int (*fn)(int rd, int wr, void *arg), void *arg, unsigned alarm_s,
                         int *to_kid, int *from_kid)
{
    struct piped p = {.fn = fn, .arg = arg};
    assert_int_equal(pipe(p.down), 0);
    assert_int_equal(pipe(p.up), 0);
    int pid = ripc_test_fork_alarm(piped_main, &p, alarm_s);
    assert_true(pid >= 0);
    close(p.down[0]);
    close(p.up[1]);
    *to_kid = p.down[1];
    *from_kid = p.up[0];
    return pid;
}

int ripc_test_fork_dispatch(int (*fn)(void *), void *arg, ripc_test_runner *r, ripc_server *s)
{
    /* Never fork while the dispatch thread runs: it allocates after a
     * callback (a join places the peer, a drop frees its rings), and a
     * child forked then may find the allocator locked (ASan's, before
     * LLVM 18, takes no lock around fork). Stopped and joined, it is
     * started again after the fork, on one thread: its peers stay on it. */
    assert_true(!r->started || r->threads == 1);
    ripc_test_run_stop(r);
    int pid = ripc_test_fork(fn, arg);
    assert_int_equal(ripc_test_run_start(r, s, 1), 0);
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
