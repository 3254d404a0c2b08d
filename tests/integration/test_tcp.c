/* tcp:// control channel: socket mode over TCP loopback, and the shared
 * token it requires (compared in constant time on the master). The network
 * namespace variant of issue 4 is still to come: this runs on 127.0.0.1. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ringipc/ringipc.h"
#include "support/support.h"

#define T_ECHO 1

static void on_echo(ripc_peer *p, const ripc_msg *m, void *arg)
{
    (void)arg;
    ripc_reply(p, m, m->data, m->len);
}

/* Result a worker child reports through a pipe. */
struct report {
    int rc;
    char transport[16];
    char why[200];
};

/* Fork a worker that opens url with token and does 100 echo requests. */
static struct report run_worker(ripc_server *s, const char *url, const char *token)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        struct report r = {0};
        ripc_options o = {.token = token};
        ripc_client *c;
        r.rc = ripc_client_open_ex(&c, url, &o, r.why, sizeof r.why);
        if (r.rc == 0) {
            snprintf(r.transport, sizeof r.transport, "%s", ripc_client_transport(c));
            snprintf(r.why, sizeof r.why, "%s", ripc_client_transport_reason(c));
            for (int i = 0; i < 100 && r.rc == 0; i++) {
                ripc_msg m;
                r.rc = ripc_client_request(c, T_ECHO, &i, sizeof i, &m, 10000);
                if (r.rc == 0 && (m.len != sizeof i || memcmp(m.data, &i, sizeof i) != 0))
                    r.rc = -EBADMSG;
            }
            ripc_client_close(c);
        }
        if (write(p[1], &r, sizeof r) != (ssize_t)sizeof r)
            _exit(2);
        _exit(0);
    }
    close(p[1]);
    int st;
    while (waitpid(pid, &st, WNOHANG) == 0)
        assert_true(ripc_server_poll(s, 10) >= 0);
    struct report r;
    assert_int_equal(read(p[0], &r, sizeof r), (ssize_t)sizeof r);
    close(p[0]);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    return r;
}

static ripc_server *open_tcp(const ripc_options *o, char *url, size_t len)
{
    ripc_server *s;
    char why[200] = "";
    int rc = ripc_server_open_ex(&s, "tcp://127.0.0.1:0", o, why, sizeof why);
    if (rc < 0)
        fail_msg("server: %s (%s)", ripc_strerror(rc), why);
    assert_true(ripc_server_url(s, url, len) > 0);
    assert_non_null(strstr(url, "tcp://127.0.0.1:"));
    assert_true(strcmp(strrchr(url, ':'), ":0") != 0); /* the port actually bound */
    ripc_server_handle(s, T_ECHO, on_echo, NULL);
    print_message("listening on %s (loopback; no network namespace)\n", url);
    return s;
}

static void test_tcp_token_accepted(void **state)
{
    (void)state;
    char url[128];
    ripc_options o = {.token = "s3cret-token"};
    ripc_server *s = open_tcp(&o, url, sizeof url);
    struct report r = run_worker(s, url, "s3cret-token");
    print_message("worker: %s, %s (%s)\n", ripc_strerror(r.rc), r.transport, r.why);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.transport, "socket");
    assert_non_null(strstr(r.why, "TCP"));
    ripc_server_close(s);
}

static void test_tcp_wrong_token(void **state)
{
    (void)state;
    char url[128];
    ripc_options o = {.token = "s3cret-token"};
    ripc_server *s = open_tcp(&o, url, sizeof url);
    static const char *bad[] = {"s3cret-tokeN", "s3cret-token-", "s3cret", "x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct report r = run_worker(s, url, bad[i]);
        assert_int_equal(r.rc, -EACCES);
        assert_non_null(strstr(r.why, "wrong token"));
    }
    struct report r = run_worker(s, url, NULL); /* none at all */
    assert_int_equal(r.rc, -EACCES);
    assert_int_equal(ripc_server_peer_count(s), 0);
    ripc_server_close(s);
}

static void test_tcp_master_without_token(void **state)
{
    (void)state;
    char url[128];
    unsetenv("RIPC_TOKEN");
    ripc_server *s = open_tcp(NULL, url, sizeof url);
    struct report r = run_worker(s, url, "anything");
    assert_int_equal(r.rc, -EACCES);
    assert_non_null(strstr(r.why, "needs one"));
    ripc_server_close(s);

    /* Explicitly disabled: no token needed. */
    ripc_options o = {.tcp_without_token = 1};
    s = open_tcp(&o, url, sizeof url);
    r = run_worker(s, url, NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.transport, "socket");
    ripc_server_close(s);
}

static void test_tcp_token_from_environment(void **state)
{
    (void)state;
    char url[128];
    setenv("RIPC_TOKEN", "from-env", 1);
    ripc_server *s = open_tcp(NULL, url, sizeof url); /* the master reads it too */
    struct report r = run_worker(s, url, NULL);
    assert_int_equal(r.rc, 0);
    ripc_server_close(s);
    unsetenv("RIPC_TOKEN");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_token_accepted),
        cmocka_unit_test(test_tcp_wrong_token),
        cmocka_unit_test(test_tcp_master_without_token),
        cmocka_unit_test(test_tcp_token_from_environment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
