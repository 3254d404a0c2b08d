#include "support/support.h"

#include "ringipc/ringipc.h"
#include "shm/segment.h"
#include "sockets/sock.h"
#include "src/proto.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#if defined(__linux__)
#include <linux/sockios.h>
#endif
#include <netinet/in.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <poll.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__linux__) && defined(__has_include)
#if __has_include(<linux/seccomp.h>) && __has_include(<linux/filter.h>)
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#ifdef __NR_memfd_create
#define TEST_HAVE_SECCOMP 1
#endif
#endif
#endif

#include <cmocka.h>

#include "ringipc/ringipc.h"

int ripc_test_transport_args(int argc, char **argv, const char **name)
{
    int t = RIPC_TRANSPORT_SHM;
    *name = "shm";
    if (argc > 1) {
        if (strcmp(argv[1], "socket") == 0) {
            t = RIPC_TRANSPORT_SOCKET;
        } else if (strcmp(argv[1], "shm") != 0) {
            fprintf(stderr, "usage: %s [shm|socket] [test-name-filter]\n", argv[0]);
            return -1;
        }
        *name = argv[1];
    }
    ripc_test_filter(argc > 2 ? argv[2] : NULL);
    return t;
}

void ripc_test_filter(const char *part)
{
    static char filter[128]; /* cmocka keeps the pointer */
    if (part) {
        snprintf(filter, sizeof filter, "*%s*", part);
        cmocka_set_test_filter(filter);
    }
}

int ripc_test_run_group(const char *suite, const char *transport_name,
                        const struct CMUnitTest *tests, size_t n)
{
    char group[64];
    snprintf(group, sizeof group, "%s_%s", suite, transport_name);
    return _cmocka_run_group_tests(group, tests, n, NULL, NULL);
}

void ripc_test_skip(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("SKIP: ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
    exit(77);
}

int ripc_test_cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return 1;
    return CPU_COUNT(&set);
}

void ripc_test_fill(void *buf, size_t len, uint64_t seq)
{
    unsigned char *p = buf;
    uint64_t s = seq * 0x9E3779B97F4A7C15ULL + len + 1;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t v = ripc_test_rand(&s);
        memcpy(p + i, &v, 8);
    }
    if (i < len) {
        uint64_t v = ripc_test_rand(&s);
        memcpy(p + i, &v, len - i);
    }
}

int ripc_test_check(const void *buf, size_t len, uint64_t seq)
{
    const unsigned char *p = buf;
    uint64_t s = seq * 0x9E3779B97F4A7C15ULL + len + 1;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t v = ripc_test_rand(&s);
        if (memcmp(p + i, &v, 8) != 0)
            return 0;
    }
    if (i < len) {
        uint64_t v = ripc_test_rand(&s);
        if (memcmp(p + i, &v, len - i) != 0)
            return 0;
    }
    return 1;
}

void *ripc_test_shared_alloc(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        abort();
    }
    return p;
}

void ripc_test_shared_free(void *p, size_t len)
{
    munmap(p, len);
}

/* State of a thread ('R', 'S', 'D', ...), 0 when unknown. */
static char task_state(int pid, int tid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/task/%d/stat", pid, tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    char *rp = strrchr(buf, ')');
    return rp && rp[1] == ' ' ? rp[2] : 0;
}

void ripc_test_wait_sleeping(int pid, int tid)
{
    for (;;) {
        char st = task_state(pid, tid);
        if (st == 'S' || st == 0)
            return;
        sched_yield();
    }
}

int ripc_test_wait(int pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0)
        ;
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return -1;
}

int ripc_test_spawn_self(char *const argv[], void (*prepare)(void *), void *arg, FILE **out)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        if (prepare)
            prepare(arg);
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    close(p[1]);
    *out = pid > 0 ? fdopen(p[0], "r") : NULL;
    if (*out == NULL) {
        close(p[0]);
        return -1; /* a child that was started sees EOF on stdout and dies of SIGPIPE */
    }
    return pid;
}

int ripc_test_refuse_memfd(void)
{
#ifdef TEST_HAVE_SECCOMP
    /* No architecture check: a foreign-ABI call with the same number would
     * fail too, which a test does not make. */
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_memfd_create, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof f / sizeof f[0], f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -errno;
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0 ? -errno : 0;
#else
    return -ENOSYS;
#endif
}

int ripc_test_socket_hello(int sock, const char *name, uint64_t *max_message)
{
    ripc__hello hl = {.version_min = RIPC_PROTO_VERSION,
                      .version_max = RIPC_PROTO_VERSION,
                      .caps = RIPC_CAP_SOCKET,
                      .pid = (uint32_t)getpid(),
                      .transport = RIPC_TRANSPORT_SOCKET};
    snprintf(hl.name, sizeof hl.name, "%s", name);
    uint8_t buf[RIPC_FRAME_HDR + RIPC_HANDSHAKE_MAX];
    size_t plen = ripc__hello_encode(buf + RIPC_FRAME_HDR, RIPC_HANDSHAKE_MAX, &hl);
    ripc__frame f = {.ftype = RIPC_FRAME_HELLO, .len = plen};
    ripc__frame_encode(buf, &f);
    ripc__welcome w;
    if (ripc__sock_send_all(sock, buf, RIPC_FRAME_HDR + plen) < 0 ||
        ripc__sock_recv_all(sock, buf, RIPC_FRAME_HDR, 5000) < 0 ||
        ripc__frame_decode(buf, &f, RIPC_HANDSHAKE_MAX) < 0 || f.ftype != RIPC_FRAME_WELCOME ||
        ripc__sock_recv_all(sock, buf, (size_t)f.len, 5000) < 0 ||
        ripc__welcome_decode(buf, (size_t)f.len, &w) < 0 || w.transport != RIPC_XPORT_SOCKET)
        return -1;
    if (max_message)
        *max_message = w.max_message;
    return 0;
}

int ripc_test_lingering_socket(int linger_s, int *listener)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    int small = 4096;
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (l < 0 || setsockopt(l, SOL_SOCKET, SO_RCVBUF, &small, sizeof small) != 0 ||
        bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 1) != 0 ||
        getsockname(l, (struct sockaddr *)&a, &al) != 0)
        return -1;
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0 || setsockopt(s, SOL_SOCKET, SO_SNDBUF, &small, sizeof small) != 0 ||
        connect(s, (struct sockaddr *)&a, al) != 0 || fcntl(s, F_SETFL, O_NONBLOCK) != 0)
        return -1;
    static char junk[65536];
    while (send(s, junk, sizeof junk, MSG_NOSIGNAL) > 0)
        ;
    struct linger on = {1, linger_s};
#ifdef SIOCOUTQ
    int unsent = 0;
    if (ioctl(s, SIOCOUTQ, &unsent) != 0 || unsent == 0)
        return -1;
#endif
    if (setsockopt(s, SOL_SOCKET, SO_LINGER, &on, sizeof on) != 0)
        return -1;
    *listener = l;
    return s;
}

int ripc_test_slow_close_socket(int linger_s, int *listener)
{
    int sv[2];
    int ls = ripc_test_lingering_socket(linger_s, listener);
    if (ls < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return -1;
    if (ripc__sock_send_fds(sv[0], "!", 1, &ls, 1) != 0)
        return -1;
    close(ls);
    close(sv[0]);
    return sv[1];
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

int ripc_test_count_fds(void)
{
    int n = count_entries("/proc/self/fd");
    return n < 0 ? n : n - 1; /* opendir's own */
}

int ripc_test_count_threads(void)
{
    return count_entries("/proc/self/task");
}

double ripc_test_cpu_seconds(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

uint64_t ripc_test_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t ripc_test_now_ms(void)
{
    return ripc_test_now_ns() / 1000000u;
}

void ripc_test_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "write to pipe: %s\n", n < 0 ? strerror(errno) : "nothing written");
            _exit(4);
        }
        p += n;
        len -= (size_t)n;
    }
}

/* ms < 0: no bound. */
static int read_bounded(int fd, void *buf, size_t len, int ms)
{
    char *p = buf;
    uint64_t end = ms < 0 ? 0 : ripc_test_now_ns() + (uint64_t)ms * 1000000u;
    while (len) {
        if (ms >= 0) {
            struct pollfd pf = {.fd = fd, .events = POLLIN};
            uint64_t now = ripc_test_now_ns();
            if (now >= end)
                return -1;
            int r = poll(&pf, 1, (int)((end - now) / 1000000u) + 1);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                return -1;
        }
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int ripc_test_read_all(int fd, void *buf, size_t len)
{
    return read_bounded(fd, buf, len, -1);
}

int ripc_test_read_within(int fd, void *buf, size_t len, int ms)
{
    return read_bounded(fd, buf, len, ms);
}

static void *runner_main(void *arg)
{
    ripc_test_runner *r = arg;
    r->rc = ripc_server_run(r->s, r->threads);
    r->end_ns = ripc_test_now_ns();
    return NULL;
}

int ripc_test_run_start(ripc_test_runner *r, ripc_server *s, unsigned threads)
{
    r->s = s;
    r->threads = threads;
    r->rc = -1;
    r->end_ns = 0;
    int rc = pthread_create(&r->th, NULL, runner_main, r);
    r->started = rc == 0;
    return rc;
}

int ripc_test_run_join(ripc_test_runner *r)
{
    if (r->started)
        pthread_join(r->th, NULL);
    r->started = 0;
    return r->rc;
}

void ripc_test_run_stop(ripc_test_runner *r)
{
    if (r->started) {
        ripc_server_stop(r->s);
        ripc_test_run_join(r);
    }
}

void ripc_test_end_server(ripc_server *s, ripc_test_runner *r, int kid)
{
    ripc_test_run_stop(r);
    if (kid > 0) {
        kill(kid, SIGKILL);
        ripc_test_wait(kid);
    }
    ripc_server_close(s);
}

void ripc_test_unix_url(char *buf, size_t len, const char *tag)
{
    static _Atomic int n;
    snprintf(buf, len, "unix:/tmp/ripc-%s-%d-%d.sock", tag, (int)getpid(), atomic_fetch_add(&n, 1));
}

void ripc_test_on_echo(ripc_peer *from, const ripc_msg *msg, void *arg)
{
    (void)arg;
    ripc_reply(from, msg, msg->data, msg->len);
}

void ripc_test_on_count(ripc_peer *from, const ripc_msg *msg, void *arg)
{
    (void)from;
    (void)msg;
    if (arg)
        atomic_fetch_add((_Atomic int *)arg, 1);
}

void ripc_test_on_sync(ripc_peer *from, const ripc_msg *msg, void *arg)
{
    (void)arg;
    static const char done[RIPC_TEST_SYNC_REPLY] = "synced!";
    ripc_reply(from, msg, done, sizeof done);
}

int ripc_test_server_open(ripc_server **out, const char *url, const ripc_options *opt)
{
    char why[256] = "";
    int rc = ripc_server_open_ex(out, url, opt, why, sizeof why);
    if (rc < 0)
        fprintf(stderr, "server open %s: %s (%s)\n", url, ripc_strerror(rc), why);
    return rc;
}

int ripc_test_echo_master(ripc_server **out, const char *url, const ripc_options *opt,
                          uint16_t echo_type)
{
    int rc = ripc_test_server_open(out, url, opt);
    if (rc < 0)
        return rc;
    ripc_server_handle(*out, echo_type, ripc_test_on_echo, NULL);
    return 0;
}

int ripc_test_echo_request(ripc_client *c, uint16_t type, uint64_t seq, size_t len, int timeout_ms,
                           ripc_test_tally *t)
{
    unsigned char buf[4096];
    if (len > sizeof buf)
        abort();
    ripc_test_fill(buf, len, seq);
    ripc_msg r;
    uint64_t t0 = ripc_test_now_ms();
    int rc = ripc_client_request(c, type, buf, len, &r, timeout_ms);
    int ms = (int)(ripc_test_now_ms() - t0);
    if (ms > atomic_load(&t->max_ms))
        atomic_store(&t->max_ms, ms);
    if (rc == 0 && (r.len != len || !ripc_test_check(r.data, len, seq)))
        rc = -EBADMSG;
    if (rc < 0) {
        atomic_store(&t->err, rc);
        atomic_fetch_add(&t->bad, 1);
        return rc;
    }
    atomic_fetch_add(&t->ok, 1);
    return 0;
}
