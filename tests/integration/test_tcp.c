/* tcp:// control channel: socket mode over TCP, and the shared token it
 * requires (compared in constant time on the master). The token cases run on
 * 127.0.0.1 in this process. test_tcp_netns_veth runs the master and the
 * worker as separate processes in two network namespaces joined by a veth
 * pair (root, `ip`, and `ip netns add` working), otherwise over loopback, and
 * says which. The program re-executes itself as "--master URL TOKEN" for it:
 * serve until one worker has come and gone, reporting on stdout. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <spawn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

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

/* Move this process into the network namespace `ip netns add name` made
 * (none when name is NULL). 0 or -errno. */
static int enter_netns(const char *name)
{
    char path[96];
    if (name == NULL)
        return 0;
    snprintf(path, sizeof path, "/run/netns/%s", name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = setns(fd, CLONE_NEWNET) != 0 ? -errno : 0;
    close(fd);
    return rc;
}

/* Fork a worker (in network namespace netns unless NULL) that opens url
 * with token and does 100 echo requests; poll s (unless NULL) meanwhile. */
static struct report run_worker(ripc_server *s, const char *netns, const char *url,
                                const char *token)
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
        r.rc = enter_netns(netns);
        if (r.rc < 0)
            snprintf(r.why, sizeof r.why, "setns(%s)", netns);
        else
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
    while (waitpid(pid, &st, s ? WNOHANG : 0) == 0)
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
    struct report r = run_worker(s, NULL, url, "s3cret-token");
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
        struct report r = run_worker(s, NULL, url, bad[i]);
        assert_int_equal(r.rc, -EACCES);
        assert_non_null(strstr(r.why, "wrong token"));
    }
    struct report r = run_worker(s, NULL, url, NULL); /* none at all */
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
    struct report r = run_worker(s, NULL, url, "anything");
    assert_int_equal(r.rc, -EACCES);
    assert_non_null(strstr(r.why, "needs one"));
    ripc_server_close(s);

    /* Explicitly disabled: no token needed. */
    ripc_options o = {.tcp_without_token = 1};
    s = open_tcp(&o, url, sizeof url);
    r = run_worker(s, NULL, url, NULL);
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
    struct report r = run_worker(s, NULL, url, NULL);
    assert_int_equal(r.rc, 0);
    ripc_server_close(s);
    unsetenv("RIPC_TOKEN");
}

/* ---- master and worker in two network namespaces joined by veth ---- */

static int g_left;

static void on_left(ripc_peer *p, int reason, void *arg)
{
    (void)p;
    (void)reason;
    (void)arg;
    g_left++;
}

/* The --master role: "url <bound url>", then "left" once a worker has come
 * and gone (refused ones never join); exits early if the test dies. */
static int master_role(const char *url, const char *token)
{
    ripc_server *s;
    ripc_options o = {.token = token};
    char why[200] = "", bound[128];
    int rc = ripc_server_open_ex(&s, url, &o, why, sizeof why);
    if (rc < 0 || ripc_server_url(s, bound, sizeof bound) <= 0) {
        printf("open %s failed: %s (%s)\n", url, ripc_strerror(rc), why);
        return 1;
    }
    ripc_server_handle(s, T_ECHO, on_echo, NULL);
    ripc_server_on_peer(s, NULL, on_left, NULL);
    printf("url %s\n", bound);
    fflush(stdout);
    while (g_left == 0 && getppid() != 1)
        if (ripc_server_poll(s, 100) < 0)
            break;
    printf("left %d\n", g_left);
    ripc_server_close(s);
    return 0;
}

static struct {
    char ns[2][32];   /* namespace names */
    int made[2];      /* which of them exist (teardown deletes those) */
    int netns;        /* 1: master in ns[0], worker in ns[1]; 0: loopback */
    char host[32];    /* the master's address */
    char reason[160]; /* why loopback */
    pid_t master;
} g_net;

/* Run `ip args...` (NULL-terminated); its exit status, or -1 if it could
 * not be started (ENOENT: no ip). On failure say why in g_net.reason. */
static int ip(const char *const *args)
{
    char *argv[16] = {"ip"};
    int n = 1;
    while (n < 15 && args[n - 1] != NULL) {
        argv[n] = (char *)args[n - 1];
        n++;
    }
    argv[n] = NULL;
    pid_t pid;
    int rc = posix_spawnp(&pid, "ip", NULL, NULL, argv, environ);
    if (rc != 0) {
        snprintf(g_net.reason, sizeof g_net.reason, "cannot run ip: %s", strerror(rc));
        return -1;
    }
    rc = ripc_test_wait(pid);
    if (rc != 0)
        snprintf(g_net.reason, sizeof g_net.reason, "`ip %s %s %s` exited with %d", args[0],
                 args[1], args[2] ? args[2] : "", rc);
    return rc;
}

static int teardown_net(void **state)
{
    (void)state;
    int bad = 0;
    if (g_net.master > 0) { /* a failed test left it running */
        kill(g_net.master, SIGKILL);
        ripc_test_wait(g_net.master);
    }
    for (int i = 0; i < 2; i++)
        if (g_net.made[i] && ip((const char *[]){"netns", "del", g_net.ns[i], NULL}) != 0)
            bad = 1;
    memset(&g_net, 0, sizeof g_net);
    return bad ? -1 : 0;
}

/* Two namespaces with a veth pair between them, addresses 10.211.X.1 and
 * .2 (X from the pid; the namespaces isolate parallel runs anyway), links
 * and lo up. Any step failing: undo, and the test runs on loopback. */
static int setup_net(void **state)
{
    char va[16], vb[16], a1[24], a2[24];
    int x = (int)(getpid() % 250) + 1;
    memset(&g_net, 0, sizeof g_net);
    snprintf(g_net.host, sizeof g_net.host, "127.0.0.1");
    if (geteuid() != 0) {
        snprintf(g_net.reason, sizeof g_net.reason, "not root");
        return 0;
    }
    for (int i = 0; i < 2; i++)
        snprintf(g_net.ns[i], sizeof g_net.ns[i], "ripc-tcp-%d-%c", (int)getpid(), 'a' + i);
    snprintf(va, sizeof va, "rt%da", (int)getpid() % 10000000);
    snprintf(vb, sizeof vb, "rt%db", (int)getpid() % 10000000);
    snprintf(a1, sizeof a1, "10.211.%d.1/24", x);
    snprintf(a2, sizeof a2, "10.211.%d.2/24", x);
    const char *a = g_net.ns[0], *b = g_net.ns[1];
    const char *steps[][13] = {
        {"netns", "add", a, NULL},
        {"netns", "add", b, NULL},
        {"link", "add", va, "netns", a, "type", "veth", "peer", "name", vb, "netns", b, NULL},
        {"-n", a, "addr", "add", a1, "dev", va, NULL},
        {"-n", b, "addr", "add", a2, "dev", vb, NULL},
        {"-n", a, "link", "set", va, "up", NULL},
        {"-n", b, "link", "set", vb, "up", NULL},
        {"-n", a, "link", "set", "lo", "up", NULL},
        {"-n", b, "link", "set", "lo", "up", NULL},
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        if (ip(steps[i]) != 0) {
            char why[sizeof g_net.reason];
            memcpy(why, g_net.reason, sizeof why);
            teardown_net(state);
            memcpy(g_net.reason, why, sizeof why);
            snprintf(g_net.host, sizeof g_net.host, "127.0.0.1");
            return 0;
        }
        if (i < 2)
            g_net.made[i] = 1;
    }
    g_net.netns = 1;
    snprintf(g_net.host, sizeof g_net.host, "10.211.%d.1", x);
    return 0;
}

static void enter_netns_or_die(void *name)
{
    int rc = enter_netns(name);
    if (rc < 0) {
        printf("setns(%s): %s\n", (const char *)name, strerror(-rc));
        _exit(1);
    }
}

/* Fork and exec the --master role (in namespace netns unless NULL). */
static FILE *spawn_master(const char *netns, const char *url, const char *token)
{
    char *argv[] = {"test_tcp", "--master", (char *)url, (char *)token, NULL};
    FILE *out;
    g_net.master = ripc_test_spawn_self(argv, enter_netns_or_die, (void *)netns, &out);
    assert_true(g_net.master > 0);
    return out;
}

static void read_line(FILE *f, char *buf, size_t len)
{
    if (!fgets(buf, (int)len, f))
        fail_msg("the master said nothing");
    buf[strcspn(buf, "\n")] = 0;
}

/* The master in one namespace, the worker in the other, over veth: a wrong
 * token refused, then 100 echoes. Over loopback when namespaces cannot be
 * made here. */
static void test_tcp_netns_veth(void **state)
{
    (void)state;
    const char *token = "veth-token";
    const char *mns = g_net.netns ? g_net.ns[0] : NULL, *wns = g_net.netns ? g_net.ns[1] : NULL;
    char url[128], line[256], want[64];
    if (g_net.netns)
        print_message("tcp: master and worker in network namespaces %s/%s over veth\n", mns, wns);
    else
        print_message("tcp: over loopback: %s\n", g_net.reason);
    snprintf(url, sizeof url, "tcp://%s:0", g_net.host);
    FILE *m = spawn_master(mns, url, token);
    read_line(m, line, sizeof line);
    print_message("master: %s\n", line);
    snprintf(want, sizeof want, "url tcp://%s:", g_net.host);
    assert_true(strncmp(line, want, strlen(want)) == 0);
    assert_true(strcmp(strrchr(line, ':'), ":0") != 0);
    snprintf(url, sizeof url, "%.*s", (int)sizeof url - 1, line + 4);

    struct report r = run_worker(NULL, wns, url, "not-the-token");
    print_message("wrong token: %s (%s)\n", ripc_strerror(r.rc), r.why);
    assert_int_equal(r.rc, -EACCES);
    assert_non_null(strstr(r.why, "wrong token"));
    r = run_worker(NULL, wns, url, token);
    print_message("worker: %s, %s (%s)\n", ripc_strerror(r.rc), r.transport, r.why);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.transport, "socket");
    assert_non_null(strstr(r.why, "TCP"));

    read_line(m, line, sizeof line);
    assert_string_equal(line, "left 1");
    fclose(m);
    assert_int_equal(ripc_test_wait(g_net.master), 0);
    g_net.master = 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--master") == 0)
        return master_role(argv[2], argv[3]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_token_accepted),
        cmocka_unit_test(test_tcp_wrong_token),
        cmocka_unit_test(test_tcp_master_without_token),
        cmocka_unit_test(test_tcp_token_from_environment),
        cmocka_unit_test_setup_teardown(test_tcp_netns_veth, setup_net, teardown_net),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
