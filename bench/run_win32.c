/* SPDX-License-Identifier: MIT */
/*
 * ringipc-bench on Windows. There is no fork: the driver starts this
 * program again for each side of a run (`--bench-child server|client CPU
 * PAGE`, CreateProcess with inheritance), and the two children inherit the
 * page (one mapping of the paging file, inheritable, made once) and what the
 * row's setup made inheritable (events, a mapping), under the same handle
 * values. The run's parameters travel in the page beside the results; a
 * child finds its row by name and maps again what the driver mapped. A job
 * object ends the children with the driver. The clock is
 * QueryPerformanceCounter, CPU time GetProcessTimes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "bench.h"

/* The page: what the run measures, then what the children are to run. */
struct shared {
    struct xp_page pg;
    struct xp_run run; /* the driver's: pg, arg and mem are made again in the child */
    char row[64];
    double budget_s;
};

static struct shared *sh;
static HANDLE sh_map;
static HANDLE job;

static uint64_t qpc_hz(void)
{
    static uint64_t hz;
    if (hz == 0) {
        LARGE_INTEGER f;
        QueryPerformanceFrequency(&f);
        hz = (uint64_t)f.QuadPart;
    }
    return hz;
}

uint64_t xp_now_ns(void)
{
    LARGE_INTEGER c;
    uint64_t hz = qpc_hz();
    QueryPerformanceCounter(&c);
    uint64_t t = (uint64_t)c.QuadPart;
    return t / hz * 1000000000ull + t % hz * 1000000000ull / hz;
}

double xp_now(void)
{
    return (double)xp_now_ns() / 1e9;
}

static uint64_t ft64(FILETIME t)
{
    return (uint64_t)t.dwHighDateTime << 32 | t.dwLowDateTime;
}

double xp_cpu(void)
{
    FILETIME made, ended, kernel, user;
    if (!GetProcessTimes(GetCurrentProcess(), &made, &ended, &kernel, &user))
        return 0;
    return (double)(ft64(kernel) + ft64(user)) / 1e7; /* 100 ns units */
}

/* Inheritable: both children get it under the same value. */
static SECURITY_ATTRIBUTES inherit = {.nLength = sizeof inherit, .bInheritHandle = TRUE};

int xp_map_shared(struct xp_run *r, size_t len)
{
    uint64_t n = len;
    HANDLE h = CreateFileMappingA(INVALID_HANDLE_VALUE, &inherit, PAGE_READWRITE, (DWORD)(n >> 32),
                                  (DWORD)n, NULL);
    if (h == NULL)
        return -ENOMEM;
    void *p = MapViewOfFile(h, FILE_MAP_ALL_ACCESS, 0, 0, len);
    if (p == NULL) {
        CloseHandle(h);
        return -ENOMEM;
    }
    memset(p, 0, len); /* commit the pages before timing */
    r->mem = p;
    r->mem_len = len;
    r->mem_handle = h;
    return 0;
}

void xp_unmap(struct xp_run *r)
{
    if (r->mem)
        UnmapViewOfFile(r->mem);
    if (r->mem_handle)
        CloseHandle(r->mem_handle);
    r->mem = NULL;
    r->mem_handle = NULL;
}

struct xp_page *bench_page(void)
{
    if (sh == NULL) {
        sh_map = CreateFileMappingA(INVALID_HANDLE_VALUE, &inherit, PAGE_READWRITE, 0,
                                    (DWORD)sizeof *sh, NULL);
        sh = sh_map ? MapViewOfFile(sh_map, FILE_MAP_ALL_ACCESS, 0, 0, sizeof *sh) : NULL;
        if (sh == NULL) {
            fprintf(stderr, "ringipc-bench: the shared page: Windows error %lu\n",
                    (unsigned long)GetLastError());
            exit(1);
        }
    }
    return &sh->pg;
}

/* Both children end with the driver (the job's last handle closes). */
static void make_job(void)
{
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION lim = {0};
    lim.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
    job = CreateJobObjectA(NULL, NULL);
    if (job && !SetInformationJobObject(job, JobObjectExtendedLimitInformation, &lim, sizeof lim)) {
        CloseHandle(job);
        job = NULL;
    }
}

static HANDLE start(const char *role, int cpu, char *why, size_t why_len)
{
    char self[MAX_PATH], cmd[MAX_PATH + 128];
    DWORD n = GetModuleFileNameA(NULL, self, sizeof self);
    if (n == 0 || n >= sizeof self) {
        snprintf(why, why_len, "GetModuleFileName: Windows error %lu",
                 (unsigned long)GetLastError());
        return NULL;
    }
    snprintf(cmd, sizeof cmd, "\"%s\" --bench-child %s %d %llu", self, role, cpu,
             (unsigned long long)(uintptr_t)sh_map);
    STARTUPINFOA si = {.cb = sizeof si};
    PROCESS_INFORMATION pi;
    if (!CreateProcessA(self, cmd, NULL, NULL, TRUE, CREATE_SUSPENDED, NULL, NULL, &si, &pi)) {
        snprintf(why, why_len, "CreateProcess: Windows error %lu", (unsigned long)GetLastError());
        return NULL;
    }
    if (job)
        AssignProcessToJobObject(job, pi.hProcess);
    ResumeThread(pi.hThread);
    CloseHandle(pi.hThread);
    return pi.hProcess;
}

int bench_launch(const struct xport *x, struct xp_run *r, struct cpus cpu, double budget_s,
                 double timeout_s, char *why, size_t why_len)
{
    static const char *const role[2] = {"server", "client"};
    HANDLE p[2];
    int bad = 0, alive = 0;
    if (job == NULL)
        make_job();
    sh->run = *r;
    snprintf(sh->row, sizeof sh->row, "%s", x->name);
    sh->budget_s = budget_s;
    p[0] = start(role[0], cpu.server, why, why_len);
    p[1] = p[0] ? start(role[1], cpu.client, why, why_len) : NULL;
    alive = (p[0] != NULL) + (p[1] != NULL);
    bad = alive < 2;
    double deadline = xp_now() + timeout_s;
    /* A failure or a hang kills the other. */
    while (alive > 0) {
        HANDLE live[2];
        int idx[2], k = 0;
        for (int i = 0; i < 2; i++)
            if (p[i])
                live[k] = p[i], idx[k++] = i;
        double left = deadline - xp_now();
        DWORD w = bad || left <= 0
                      ? WAIT_TIMEOUT
                      : WaitForMultipleObjects((DWORD)k, live, FALSE, (DWORD)(left * 1e3) + 1);
        if (w < WAIT_OBJECT_0 + (DWORD)k) {
            int i = idx[w - WAIT_OBJECT_0];
            DWORD code = 1;
            GetExitCodeProcess(p[i], &code);
            CloseHandle(p[i]);
            p[i] = NULL;
            alive--;
            if (code != 0 && !bad)
                snprintf(why, why_len, "%s exited with %lu (0x%lx)", role[i], (unsigned long)code,
                         (unsigned long)code);
            bad |= code != 0;
            continue;
        }
        if (!bad && w == WAIT_TIMEOUT)
            snprintf(why, why_len, "timed out after %.0f s", timeout_s);
        bad = 1;
        for (int i = 0; i < 2; i++)
            if (p[i]) {
                TerminateProcess(p[i], 99);
                WaitForSingleObject(p[i], 5000);
                CloseHandle(p[i]);
                p[i] = NULL;
            }
        alive = 0;
    }
    return bad ? -1 : 0;
}

/* The side's thread, as sched_setaffinity(0) pins the calling thread on
 * Linux: the process keeps its mask, from which the library decides
 * whether a wait may spin (ripc__spin_ok), as the Linux one looks at its
 * peer's too. */
static void pin(int cpu)
{
    if (cpu >= 0 && cpu < (int)(8 * sizeof(DWORD_PTR)))
        SetThreadAffinityMask(GetCurrentThread(), (DWORD_PTR)1 << cpu);
}

/* The first two CPUs we may use; both sides on the first when same_cpu is
 * set or there is only one. */
struct cpus bench_pick_cpus(int same_cpu)
{
    DWORD_PTR mine = 1, sys;
    int found[2] = {0, -1}, n = 0;
    GetProcessAffinityMask(GetCurrentProcess(), &mine, &sys);
    for (int i = 0; i < (int)(8 * sizeof mine) && n < 2; i++)
        if (mine & ((DWORD_PTR)1 << i))
            found[n++] = i;
    if (n < 2 || same_cpu)
        found[1] = found[0];
    return (struct cpus){.server = found[0], .client = found[1]};
}

void bench_cpu_model(char *buf, size_t len)
{
    snprintf(buf, len, "unknown CPU");
#if defined(__x86_64__) || defined(__i386__)
    unsigned int v[12], top = 0, b, c, d;
    if (__get_cpuid(0x80000000u, &top, &b, &c, &d) && top >= 0x80000004u) {
        for (unsigned int i = 0; i < 3; i++)
            __get_cpuid(0x80000002u + i, &v[4 * i], &v[4 * i + 1], &v[4 * i + 2], &v[4 * i + 3]);
        char name[49];
        memcpy(name, v, 48);
        name[48] = 0;
        size_t n = strlen(name);
        while (n > 0 && name[n - 1] == ' ')
            name[--n] = 0;
        const char *s = name;
        while (*s == ' ')
            s++;
        snprintf(buf, len, "%s", s);
    }
#endif
}

typedef const char *(CDECL *wine_version_fn)(void);
typedef void(CDECL *wine_host_fn)(const char **sysname, const char **release);

/* Under wine the numbers are wine's, on the host's kernel: say so. */
const char *bench_where(void)
{
    static char line[256];
    HMODULE nt = GetModuleHandleA("ntdll.dll");
    wine_version_fn ver =
        nt ? (wine_version_fn)(void (*)(void))GetProcAddress(nt, "wine_get_version") : NULL;
    wine_host_fn host =
        nt ? (wine_host_fn)(void (*)(void))GetProcAddress(nt, "wine_get_host_version") : NULL;
    const char *sys = "?", *rel = "?";
    if (ver == NULL)
        return NULL;
    if (host)
        host(&sys, &rel);
    snprintf(line, sizeof line,
             "Measured under wine %s on %s %s: numbers of wine's Windows API over that kernel, "
             "not of Windows.",
             ver(), sys, rel);
    return line;
}

int bench_init(int argc, char **argv)
{
    /* Each row names its transport; the environment must not change it. */
    _putenv("RIPC_TRANSPORT=");
    if (argc != 5 || strcmp(argv[1], "--bench-child") != 0)
        return -1;
    int server = strcmp(argv[2], "server") == 0;
    int cpu = atoi(argv[3]);
    HANDLE h = (HANDLE)(uintptr_t)strtoull(argv[4], NULL, 10);
    struct shared *s = MapViewOfFile(h, FILE_MAP_ALL_ACCESS, 0, 0, sizeof *s);
    if (s == NULL)
        return 3;
    const struct xport *x = NULL;
    for (size_t i = 0; i < bench_rows.n && x == NULL; i++)
        if (strcmp(bench_rows.list[i]->name, s->row) == 0)
            x = bench_rows.list[i];
    if (x == NULL) {
        xp_fail(&s->pg, "%s: no row named %s", argv[2], s->row);
        return 1;
    }
    struct xp_run r = s->run;
    r.pg = &s->pg;
    r.arg = x->arg;
    r.mem = NULL;
    if (r.mem_handle &&
        (r.mem = MapViewOfFile(r.mem_handle, FILE_MAP_ALL_ACCESS, 0, 0, r.mem_len)) == NULL) {
        xp_fail(&s->pg, "%s: MapViewOfFile: Windows error %lu", argv[2],
                (unsigned long)GetLastError());
        return 1;
    }
    pin(cpu);
    return server ? xp_server_side(x, &r, s->budget_s) : xp_client_side(x, &r, s->budget_s);
}
