/* SPDX-License-Identifier: MIT */
/*
 * ringipc-bench on Linux (and other POSIX systems): the driver forks the
 * two sides of a run, pins them with sched_setaffinity and waits for them
 * with sigtimedwait(SIGCHLD); shared memory is MAP_SHARED | MAP_ANONYMOUS,
 * inherited through the fork; CPU time from getrusage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

double xp_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

uint64_t xp_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

double xp_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

int xp_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EPIPE;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int xp_map_shared(struct xp_run *r, size_t len)
{
    r->mem_len = len;
    r->mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (r->mem == MAP_FAILED) {
        r->mem = NULL;
        return -errno;
    }
    memset(r->mem, 0, len); /* fault the pages in before timing */
    return 0;
}

void xp_unmap(struct xp_run *r)
{
    if (r->mem)
        munmap(r->mem, r->mem_len);
    r->mem = NULL;
}

int xp_ipc_setup(struct xp_run *r)
{
    static unsigned serial;
    snprintf(r->path[0], 100, "/tmp/ringipc-bench-%d.ipc%u", (int)getpid(), serial++);
    snprintf(r->path[1], sizeof r->path[1], "ipc://%.100s", r->path[0]);
    return 0;
}

void xp_ipc_teardown(struct xp_run *r)
{
    unlink(r->path[0]);
}

static void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

static pid_t spawn(int cpu, int (*fn)(const struct xport *, struct xp_run *, double),
                   const struct xport *x, struct xp_run *r, double budget_s)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the driver */
    pin(cpu);
    _exit(fn(x, r, budget_s));
}

/* Reap both; a failure or a hang kills the other. Returns 0 when both
 * exited 0. SIGCHLD is blocked in the driver (bench_launch), so it can be waited
 * for with a timeout. */
static int reap_both(pid_t pid[2], double timeout_s, char *why, size_t why_len)
{
    double deadline = xp_now() + timeout_s;
    int bad = 0, alive = 2;
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    while (alive > 0) {
        int st;
        pid_t p;
        while (alive > 0 && (p = waitpid(-1, &st, WNOHANG)) > 0) {
            int i = pid[0] == p ? 0 : pid[1] == p ? 1 : -1;
            if (i < 0)
                continue;
            pid[i] = 0;
            alive--;
            if (!bad && WIFSIGNALED(st))
                snprintf(why, why_len, "%s killed by signal %d", i == 0 ? "server" : "client",
                         WTERMSIG(st));
            bad |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
        }
        if (alive == 0)
            break;
        double left = deadline - xp_now();
        if (bad || left <= 0) {
            if (!bad)
                snprintf(why, why_len, "timed out after %.0f s", timeout_s);
            bad = 1;
            for (int i = 0; i < 2; i++)
                if (pid[i] > 0)
                    kill(pid[i], SIGKILL);
            deadline = xp_now() + 5;
            continue;
        }
        struct timespec ts = {(time_t)left, (long)((left - (time_t)left) * 1e9)};
        if (ts.tv_sec > 1)
            ts = (struct timespec){1, 0};
        sigtimedwait(&chld, NULL, &ts);
    }
    return bad ? -1 : 0;
}

struct xp_page *bench_page(void)
{
    static struct xp_page *pg;
    if (pg == NULL) {
        pg = mmap(NULL, sizeof *pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (pg == MAP_FAILED) {
            perror("ringipc-bench: mmap");
            exit(1);
        }
    }
    return pg;
}

int bench_launch(const struct xport *x, struct xp_run *r, struct cpus cpu, double budget_s,
                 double timeout_s, char *why, size_t why_len)
{
    static int once;
    if (!once++) {
        /* The driver waits for its children with sigtimedwait(SIGCHLD). */
        sigset_t chld;
        sigemptyset(&chld);
        sigaddset(&chld, SIGCHLD);
        sigprocmask(SIG_BLOCK, &chld, NULL);
        signal(SIGPIPE, SIG_IGN);
    }
    pid_t pid[2];
    pid[0] = spawn(cpu.server, xp_server_side, x, r, budget_s);
    pid[1] = spawn(cpu.client, xp_client_side, x, r, budget_s);
    return reap_both(pid, timeout_s, why, why_len);
}

/* The first two CPUs we may use; both sides on the first when same_cpu is
 * set or there is only one. */
struct cpus bench_pick_cpus(int same_cpu)
{
    cpu_set_t set;
    int found[2] = {-1, -1}, n = 0;
    sched_getaffinity(0, sizeof set, &set);
    for (int i = 0; i < CPU_SETSIZE && n < 2; i++)
        if (CPU_ISSET(i, &set))
            found[n++] = i;
    if (n < 2 || same_cpu)
        found[1] = found[0]; /* one CPU: both sides share it */
    return (struct cpus){.server = found[0], .client = found[1]};
}

void bench_cpu_model(char *buf, size_t len)
{
    char line[256];
    FILE *f = fopen("/proc/cpuinfo", "r");
    snprintf(buf, len, "unknown CPU");
    while (f && fgets(line, sizeof line, f)) {
        char *c = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && c) {
            snprintf(buf, len, "%s", c + 2);
            buf[strcspn(buf, "\n")] = 0;
            break;
        }
    }
    if (f)
        fclose(f);
}

const char *bench_where(void)
{
    return NULL;
}

int bench_init(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    /* Each row (or --workers side) names its transport; the environment
     * must not change it. */
    unsetenv("RIPC_TRANSPORT");
    return -1;
}
