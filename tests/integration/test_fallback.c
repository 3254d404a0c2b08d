/* Socket mode chosen at the handshake through the real failure paths: a
 * process whose memfd_create / shm_open / shared mmap fail (LD_PRELOAD shim,
 * tests/support/noshm_preload.c) on either side, RIPC_TRANSPORT=socket, and
 * RIPC_TRANSPORT=shm turning the missing shared memory into an error.
 *
 * The program plays three roles: the cmocka tests (no arguments), and, when
 * re-executed by them, "--worker URL" or "--master URL". Roles report one
 * line on stdout that the test reads through a pipe. */
#include <errno.h>
#include <poll.h>
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

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif

#define T_ECHO 1
#define REQUESTS 200

static char g_url[128];

/* ---- roles (run in re-executed children) ---- */

static void on_echo(ripc_peer *p, const ripc_msg *m, void *arg)
{
    (void)arg;
    ripc_reply(p, m, m->data, m->len);
}

static char g_peer_transport[16], g_peer_reason[256];
static int g_left;

static void on_join(ripc_peer *p, void *arg)
{
    (void)arg;
    snprintf(g_peer_transport, sizeof g_peer_transport, "%s", ripc_peer_transport(p));
    snprintf(g_peer_reason, sizeof g_peer_reason, "%s", ripc_peer_transport_reason(p));
}

static void on_left(ripc_peer *p, int reason, void *arg)
{
    (void)p;
    (void)reason;
    (void)arg;
    g_left++;
}

/* Worker: connect, REQUESTS echoes with content checks, report. */
static int worker_role(const char *url)
{
    ripc_client *c;
    char why[256] = "";
    int rc = ripc_client_open_ex(&c, url, NULL, why, sizeof why);
    if (rc < 0) {
        printf("rc=%d transport=- reason=%s\n", rc, why);
        return 0;
    }
    for (int i = 0; i < REQUESTS && rc == 0; i++) {
        char buf[64];
        int n = snprintf(buf, sizeof buf, "request %d", i);
        ripc_msg r;
        rc = ripc_client_request(c, T_ECHO, buf, (uint64_t)n, &r, 10000);
        if (rc == 0 && (r.len != (uint64_t)n || memcmp(r.data, buf, (size_t)n) != 0))
            rc = -EBADMSG;
    }
    printf("rc=%d transport=%s reason=%s\n", rc, ripc_client_transport(c),
           ripc_client_transport_reason(c));
    ripc_client_close(c);
    return 0;
}

/* Master: serve one worker until it leaves, report what it got. */
static int master_role(const char *url)
{
    ripc_server *s;
    char why[256] = "";
    int rc = ripc_server_open_ex(&s, url, NULL, why, sizeof why);
    if (rc < 0) {
        printf("open failed: %s\n", why);
        return 1;
    }
    ripc_server_handle(s, T_ECHO, on_echo, NULL);
    ripc_server_on_peer(s, on_join, on_left, NULL);
    printf("ready\n");
    fflush(stdout);
    /* Until one worker has come and gone (refused ones do not count); if
     * the test that started us dies, so do we. */
    while (g_left == 0 && getppid() != 1)
        if (ripc_server_poll(s, 100) < 0)
            break;
    printf("peer transport=%s reason=%s\n", g_peer_transport, g_peer_reason);
    ripc_server_close(s);
    return 0;
}

/* ---- the tests' side ---- */

struct child {
    pid_t pid;
    FILE *out; /* the child's stdout */
};

/* Re-execute this program in `role`, optionally with the no-shm shim and a
 * RIPC_TRANSPORT value. */
static struct child spawn_role(const char *role, int noshm, const char *transport)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        if (noshm)
            setenv("LD_PRELOAD", RIPC_NOSHM_PRELOAD, 1);
        if (transport)
            setenv("RIPC_TRANSPORT", transport, 1);
        else
            unsetenv("RIPC_TRANSPORT");
        char *argv[] = {"test_fallback", (char *)role, g_url, NULL};
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    close(p[1]);
    struct child c = {pid, fdopen(p[0], "r")};
    assert_non_null(c.out);
    return c;
}

static void read_line(struct child *c, char *buf, size_t len)
{
    if (!fgets(buf, (int)len, c->out))
        fail_msg("child %d said nothing", (int)c->pid);
    buf[strcspn(buf, "\n")] = 0;
}

static void finish(struct child *c)
{
    fclose(c->out);
    assert_int_equal(ripc_test_wait(c->pid), 0);
}

static void need_shim(void)
{
#ifdef SANITIZED
    print_message("SKIP: LD_PRELOAD shims and sanitizer runtimes do not mix\n");
    skip();
#endif
}

static ripc_server *serve_open(void)
{
    ripc_server *s;
    char why[256] = "";
    int rc = ripc_server_open_ex(&s, g_url, NULL, why, sizeof why);
    if (rc < 0)
        fail_msg("server: %s (%s)", ripc_strerror(rc), why);
    g_left = 0;
    g_peer_transport[0] = 0;
    ripc_server_handle(s, T_ECHO, on_echo, NULL);
    ripc_server_on_peer(s, on_join, on_left, NULL);
    return s;
}

/* Serve until the worker child has reported, then until it has left (when
 * it got in at all), then reap it. */
static void serve_worker(ripc_server *s, struct child *w, char *line, size_t len)
{
    struct pollfd pf = {.fd = fileno(w->out), .events = POLLIN};
    do
        assert_true(ripc_server_poll(s, 20) >= 0);
    while (poll(&pf, 1, 0) == 0);
    read_line(w, line, len);
    while (g_left == 0 && g_peer_transport[0])
        assert_true(ripc_server_poll(s, 20) >= 0);
    finish(w);
}

static void test_fallback_worker_cannot_map(void **state)
{
    (void)state;
    need_shim();
    ripc_server *s = serve_open();
    struct child w = spawn_role("--worker", 1, NULL);
    char line[512];
    serve_worker(s, &w, line, sizeof line);
    print_message("worker: %s\n", line);
    assert_non_null(strstr(line, "rc=0 transport=socket"));
    assert_non_null(strstr(line, "cannot map shared memory"));
    assert_string_equal(g_peer_transport, "socket");
    ripc_server_close(s);
}

static void test_fallback_master_cannot_map(void **state)
{
    (void)state;
    need_shim();
    struct child m = spawn_role("--master", 1, NULL);
    char line[512];
    read_line(&m, line, sizeof line);
    assert_string_equal(line, "ready");
    ripc_client *c;
    char why[256] = "";
    int rc = ripc_client_open_ex(&c, g_url, NULL, why, sizeof why);
    if (rc < 0)
        fail_msg("open: %s (%s)", ripc_strerror(rc), why);
    print_message("client: %s (%s)\n", ripc_client_transport(c), ripc_client_transport_reason(c));
    assert_string_equal(ripc_client_transport(c), "socket");
    assert_non_null(strstr(ripc_client_transport_reason(c), "unavailable on the master"));
    for (int i = 0; i < REQUESTS; i++) {
        ripc_msg r;
        assert_int_equal(ripc_client_request(c, T_ECHO, &i, sizeof i, &r, 10000), 0);
        assert_int_equal(r.len, sizeof i);
        assert_memory_equal(r.data, &i, sizeof i);
    }
    ripc_client_close(c);
    read_line(&m, line, sizeof line);
    assert_non_null(strstr(line, "peer transport=socket"));
    finish(&m);
}

static void test_fallback_shm_required_worker_side(void **state)
{
    (void)state;
    need_shim();
    ripc_server *s = serve_open();
    struct child w = spawn_role("--worker", 1, "shm");
    char line[512];
    serve_worker(s, &w, line, sizeof line);
    print_message("worker: %s\n", line);
    char want[32];
    snprintf(want, sizeof want, "rc=%d ", -ENOTSUP);
    assert_non_null(strstr(line, want));
    assert_non_null(strstr(line, "shared memory is not available"));
    ripc_server_close(s);
}

static void test_fallback_shm_required_master_cannot(void **state)
{
    (void)state;
    need_shim();
    struct child m = spawn_role("--master", 1, NULL);
    char line[512];
    read_line(&m, line, sizeof line);
    assert_string_equal(line, "ready");
    ripc_options o = {.transport = RIPC_TRANSPORT_SHM};
    ripc_client *c = NULL;
    char why[256] = "";
    int rc = ripc_client_open_ex(&c, g_url, &o, why, sizeof why);
    print_message("open with transport=shm: %s (%s)\n", ripc_strerror(rc), why);
    assert_int_equal(rc, -ENOTSUP);
    assert_non_null(strstr(why, "unavailable on the master"));
    /* The master stays up for others: a default worker gets socket mode. */
    assert_int_equal(ripc_client_open(&c, g_url, NULL), 0);
    assert_string_equal(ripc_client_transport(c), "socket");
    ripc_client_close(c);
    read_line(&m, line, sizeof line);
    finish(&m);
}

static void test_fallback_env_socket(void **state)
{
    (void)state;
    ripc_server *s = serve_open();
    struct child w = spawn_role("--worker", 0, "socket");
    char line[512];
    serve_worker(s, &w, line, sizeof line);
    print_message("worker: %s\n", line);
    assert_non_null(strstr(line, "rc=0 transport=socket"));
    assert_non_null(strstr(line, "the worker asked for it"));
    assert_string_equal(g_peer_transport, "socket");
    ripc_server_close(s);
}

static int setup(void **state)
{
    (void)state;
    static int n;
    snprintf(g_url, sizeof g_url, "unix:/tmp/ripc-fallback-%d-%d.sock", (int)getpid(), n++);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--worker") == 0)
        return worker_role(argv[2]);
    if (argc == 3 && strcmp(argv[1], "--master") == 0)
        return master_role(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_fallback_worker_cannot_map, setup),
        cmocka_unit_test_setup(test_fallback_master_cannot_map, setup),
        cmocka_unit_test_setup(test_fallback_shm_required_worker_side, setup),
        cmocka_unit_test_setup(test_fallback_shm_required_master_cannot, setup),
        cmocka_unit_test_setup(test_fallback_env_socket, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
