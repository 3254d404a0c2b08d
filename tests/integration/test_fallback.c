/* Socket mode chosen at the handshake through the real failure paths: a
 * process whose memfd_create / shm_open / shared mmap fail (LD_PRELOAD shim,
 * tests/support/noshm_preload.c) on either side, RIPC_TRANSPORT=socket, and
 * RIPC_TRANSPORT=shm turning the missing shared memory into an error. Then
 * the segment fallback memfd -> shm_open: memfd_create refused (the shim with
 * RIPC_NOSHM=memfd) over a writable /dev/shm gives shm mode through
 * shm_open, and over a read-only /dev/shm (an empty read-only tmpfs mounted
 * in a mount namespace of our own) gives socket mode; memfd alone needs no
 * /dev/shm at all.
 *
 * The program plays five roles: the cmocka tests (no arguments), and, when
 * re-executed by them, "--worker URL", "--master URL", "--ro-shm=MW URL" or
 * "--tiny-shm=MW URL"
 * (enter the namespace, then run a master with shim mode M and a worker with
 * shim mode W in it). Roles report lines on stdout that the test reads
 * through a pipe. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <fcntl.h>
#include <sched.h>
#endif

#include <cmocka.h>

#include "ringipc/ringipc.h"
#include "shm/segment.h"
#include "support/support.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif

#define T_ECHO   1
#define REQUESTS 200

/* What the LD_PRELOAD shim refuses in a child. */
enum { SHIM_NONE, SHIM_ALL, SHIM_MEMFD };

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

struct spawn_env {
    int noshm;
    const char *transport;
};

static void set_env(void *arg)
{
    const struct spawn_env *e = arg;
    if (e->noshm)
        setenv("LD_PRELOAD", RIPC_NOSHM_PRELOAD, 1);
    if (e->noshm == SHIM_MEMFD)
        setenv("RIPC_NOSHM", "memfd", 1);
    else
        unsetenv("RIPC_NOSHM");
    if (e->transport)
        setenv("RIPC_TRANSPORT", e->transport, 1);
    else
        unsetenv("RIPC_TRANSPORT");
}

/* Re-execute this program in `role`, optionally with the no-shm shim (a
 * SHIM_* mode) and a RIPC_TRANSPORT value. */
static struct child spawn_role(const char *role, int noshm, const char *transport)
{
    struct spawn_env e = {noshm, transport};
    char *argv[] = {"test_fallback", (char *)role, g_url, NULL};
    struct child c;
    c.pid = ripc_test_spawn_self(argv, set_env, &e, &c.out);
    assert_true(c.pid > 0);
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

/* A case about memfd (refused, or the one that works). */
static void need_memfd(void)
{
    if (!ripc__segment_supported(RIPC_SEG_MEMFD)) {
        print_message("SKIP: this build has no memfd\n");
        skip();
    }
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

/* ---- memfd refused: shm_open, or with a read-only /dev/shm socket mode ---- */

/* A master with shim mode mshim and a worker with wshim, both children of
 * this process: the worker's report line and the master's last line. */
static void run_pair(int mshim, int wshim, char *wline, char *mline, size_t len)
{
    struct child m = spawn_role("--master", mshim, NULL);
    read_line(&m, mline, len);
    assert_string_equal(mline, "ready");
    struct child w = spawn_role("--worker", wshim, NULL);
    read_line(&w, wline, len);
    finish(&w);
    read_line(&m, mline, len); /* once the worker has left */
    finish(&m);
}

#ifdef __linux__
static int ns_fail(char *why, size_t len, const char *step)
{
    snprintf(why, len, "%s: %s", step, strerror(errno));
    return -1;
}

static int write_text(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, strlen(text));
    int err = n == (ssize_t)strlen(text) ? 0 : n < 0 ? errno : EIO;
    close(fd);
    errno = err;
    return err ? -1 : 0;
}

/* A user namespace mapping our uid and gid to themselves, with a mount
 * namespace it owns (for when plain unshare(CLONE_NEWNS) is not allowed). */
static int user_mount_ns(char *why, size_t len)
{
    char uids[48], gids[48];
    snprintf(uids, sizeof uids, "%u %u 1\n", (unsigned)getuid(), (unsigned)getuid());
    snprintf(gids, sizeof gids, "%u %u 1\n", (unsigned)getgid(), (unsigned)getgid());
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
        return ns_fail(why, len, "unshare(CLONE_NEWUSER | CLONE_NEWNS)");
    if (write_text("/proc/self/setgroups", "deny") != 0 && errno != ENOENT)
        return ns_fail(why, len, "write /proc/self/setgroups");
    if (write_text("/proc/self/uid_map", uids) != 0)
        return ns_fail(why, len, "write /proc/self/uid_map");
    if (write_text("/proc/self/gid_map", gids) != 0)
        return ns_fail(why, len, "write /proc/self/gid_map");
    return 0;
}

/* Enter a mount namespace of our own in which /dev/shm is an empty read-only
 * tmpfs (tiny: a writable one of 64 KiB, too small for any segment); /tmp
 * (the socket) stays shared. The mounts vanish with the last process in the
 * namespace. Returns 0 with how in why, or -1 with the reason. */
static int enter_ro_shm(char *why, size_t len, int tiny)
{
    const char *how = "mount namespace";
    if (unshare(CLONE_NEWNS) != 0) {
        if (errno != EPERM)
            return ns_fail(why, len, "unshare(CLONE_NEWNS)");
        if (user_mount_ns(why, len) != 0)
            return -1;
        how = "user + mount namespace";
    }
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        return ns_fail(why, len, "mount(/, MS_REC | MS_PRIVATE)");
    if (mkdir("/dev/shm", 01777) != 0 && errno != EEXIST)
        return ns_fail(why, len, "mkdir /dev/shm");
    unsigned long fl = MS_NOSUID | MS_NODEV | MS_NOEXEC | (tiny ? 0 : MS_RDONLY);
    if (mount("ripc-ro", "/dev/shm", "tmpfs", fl, tiny ? "size=64k" : "size=4k") != 0)
        return ns_fail(why, len, "mount a small tmpfs on /dev/shm");
    snprintf(why, len, "%s, %s tmpfs on /dev/shm", how, tiny ? "a 64 KiB" : "a read-only empty");
    return 0;
}
#endif

/* The --ro-shm=MW role: "SKIP: reason", or "ns: how" then run_pair's lines. */
static int ro_shm_role(const char *modes, const char *url, int tiny)
{
    char why[256], wline[512], mline[512];
    snprintf(g_url, sizeof g_url, "%s", url);
#ifdef __linux__
    if (enter_ro_shm(why, sizeof why, tiny) != 0) {
        printf("SKIP: no mount namespace with a read-only /dev/shm: %s\n", why);
        return 0;
    }
#else
    printf("SKIP: mount namespaces are Linux only\n");
    return 0;
#endif
    printf("ns: %s\n", why);
    run_pair(modes[0] - '0', modes[1] - '0', wline, mline, sizeof wline);
    printf("%s\n%s\n", wline, mline);
    return 0;
}

/* Run --ro-shm=MW (role), or skip with its reason; the worker's line (in
 * wline[512]) must contain want_w and the master's want_m. */
static void ro_shm_pair(const char *role, const char *want_w, const char *want_m, char *wline)
{
    struct child ns = spawn_role(role, SHIM_NONE, NULL);
    char line[512], mline[512];
    read_line(&ns, line, sizeof line);
    print_message("%s\n", line);
    if (strncmp(line, "SKIP: ", 6) == 0) {
        finish(&ns);
        skip();
    }
    assert_true(strncmp(line, "ns: ", 4) == 0);
    read_line(&ns, wline, 512);
    read_line(&ns, mline, sizeof mline);
    finish(&ns);
    print_message("worker: %s\nmaster: %s\n", wline, mline);
    assert_non_null(strstr(wline, want_w));
    assert_non_null(strstr(mline, want_m));
}

/* memfd_create refused, /dev/shm writable: shm mode through shm_open. */
static void test_fallback_memfd_refused_shm_open(void **state)
{
    (void)state;
    need_shim();
    char wline[512], mline[512];
    run_pair(SHIM_MEMFD, SHIM_MEMFD, wline, mline, sizeof wline);
    print_message("worker: %s\nmaster: %s\n", wline, mline);
    assert_non_null(strstr(wline, "rc=0 transport=shm reason=shared memory (shm_open segment"));
    assert_non_null(strstr(mline, "peer transport=shm reason=shared memory (shm_open segment"));
}

/* The worker's line when the master could not make a segment (the reason
 * in parentheses follows). */
#define W_MASTER_REFUSED                                                                           \
    "rc=0 transport=socket reason=socket mode: shared memory unavailable on the master ("

/* memfd_create refused on both sides, /dev/shm read-only: neither backend
 * works in the worker, so it offers no shared memory at all. */
static void test_fallback_ro_shm_both_refused(void **state)
{
    (void)state;
    need_shim();
    char wline[512];
    ro_shm_pair("--ro-shm=22",
                "rc=0 transport=socket reason=socket mode: the worker cannot map shared memory",
                "peer transport=socket", wline);
}

/* memfd_create refused on the master only: the worker offers shared memory,
 * the master's segment fails both ways, and the reason says how. */
static void test_fallback_ro_shm_master_refused(void **state)
{
    (void)state;
    need_shim();
    need_memfd();
    char wline[512];
    ro_shm_pair("--ro-shm=20", W_MASTER_REFUSED, "peer transport=socket", wline);
    /* Both failures, in the order of the build's preference. */
    assert_non_null(strstr(wline, "memfd_create: Function not implemented"));
    assert_non_null(strstr(wline, "shm_open: Read-only file system"));
}

/* memfd_create refused on the master, /dev/shm writable but too small for
 * the segment: shm_open's space reservation fails, socket mode says so. */
static void test_fallback_tiny_shm_master(void **state)
{
    (void)state;
    need_shim();
    char wline[512];
    ro_shm_pair("--tiny-shm=20", W_MASTER_REFUSED, "peer transport=socket", wline);
    assert_non_null(strstr(wline, "No space left on device"));
}

/* No shim: memfd needs no /dev/shm, so shm mode without it. */
static void test_fallback_ro_shm_memfd_works(void **state)
{
    (void)state;
    need_memfd();
    char wline[512];
    ro_shm_pair("--ro-shm=00", "rc=0 transport=shm reason=shared memory (memfd segment",
                "peer transport=shm", wline);
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
    if (argc == 3 && strncmp(argv[1], "--ro-shm=", 9) == 0 && strlen(argv[1]) == 11)
        return ro_shm_role(argv[1] + 9, argv[2], 0);
    if (argc == 3 && strncmp(argv[1], "--tiny-shm=", 11) == 0 && strlen(argv[1]) == 13)
        return ro_shm_role(argv[1] + 11, argv[2], 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_fallback_worker_cannot_map, setup),
        cmocka_unit_test_setup(test_fallback_master_cannot_map, setup),
        cmocka_unit_test_setup(test_fallback_shm_required_worker_side, setup),
        cmocka_unit_test_setup(test_fallback_shm_required_master_cannot, setup),
        cmocka_unit_test_setup(test_fallback_env_socket, setup),
        cmocka_unit_test_setup(test_fallback_memfd_refused_shm_open, setup),
        cmocka_unit_test_setup(test_fallback_ro_shm_both_refused, setup),
        cmocka_unit_test_setup(test_fallback_ro_shm_master_refused, setup),
        cmocka_unit_test_setup(test_fallback_ro_shm_memfd_works, setup),
        cmocka_unit_test_setup(test_fallback_tiny_shm_master, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
