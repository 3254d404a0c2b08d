/* SPDX-License-Identifier: MIT */
#include "windows/win_support.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform/win32.h"

void win_fail(const char *file, int line, const char *what, long long a, long long b)
{
    if (a != b)
        printf("FAIL %s:%d: %s (%lld != %lld)\n", file, line, what, a, b);
    else
        printf("FAIL %s:%d: %s (Windows error %lu)\n", file, line, what,
               (unsigned long)GetLastError());
    fflush(stdout);
    exit(1);
}

void win_skip(const char *reason)
{
    printf("SKIP: %s\n", reason);
    fflush(stdout);
    exit(77);
}

void win_case(const char *name, void (*fn)(void))
{
    printf("[ RUN      ] %s\n", name);
    fflush(stdout);
    fn();
    printf("[       OK ] %s\n", name);
    fflush(stdout);
}

/* An anonymous pipe whose `child_end` (0 read, 1 write) is inheritable. */
static void pipe_for_child(HANDLE *ours, HANDLE *theirs, int child_reads)
{
    SECURITY_ATTRIBUTES sa = {.nLength = sizeof sa, .bInheritHandle = TRUE};
    HANDLE rd, wr;
    WCHECK(CreatePipe(&rd, &wr, &sa, 0));
    *ours = child_reads ? wr : rd;
    *theirs = child_reads ? rd : wr;
    WCHECK(SetHandleInformation(*ours, HANDLE_FLAG_INHERIT, 0));
}

void win_child_start(win_child *c, const char *role)
{
    char self[MAX_PATH];
    DWORD n = GetModuleFileNameA(NULL, self, sizeof self);
    WCHECK(n > 0 && n < sizeof self);
    HANDLE child_in, child_out;
    pipe_for_child(&c->to, &child_in, 1);
    pipe_for_child(&c->from, &child_out, 0);
    char cmd[2 * MAX_PATH];
    snprintf(cmd, sizeof cmd, "\"%s\" child %s %" PRIuPTR " %" PRIuPTR, self, role,
             (uintptr_t)child_in, (uintptr_t)child_out);
    STARTUPINFOA si = {.cb = sizeof si};
    PROCESS_INFORMATION pi;
    /* Only the two pipe ends are inheritable in this process. */
    WCHECK(CreateProcessA(self, cmd, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi));
    CloseHandle(pi.hThread);
    CloseHandle(child_in);
    CloseHandle(child_out);
    c->process = pi.hProcess;
    c->pid = pi.dwProcessId;
}

int win_child_args(int argc, char **argv, const char **role, HANDLE *from_parent, HANDLE *to_parent)
{
    if (argc != 5 || strcmp(argv[1], "child") != 0)
        return 0;
    *role = argv[2];
    *from_parent = (HANDLE)(uintptr_t)strtoull(argv[3], NULL, 10);
    *to_parent = (HANDLE)(uintptr_t)strtoull(argv[4], NULL, 10);
    return 1;
}

long win_child_end(win_child *c, DWORD timeout_ms)
{
    long rc = -1;
    CloseHandle(c->to);
    if (WaitForSingleObject(c->process, timeout_ms) == WAIT_OBJECT_0) {
        DWORD code;
        if (GetExitCodeProcess(c->process, &code))
            rc = (long)code;
    } else {
        TerminateProcess(c->process, 99);
        WaitForSingleObject(c->process, INFINITE);
    }
    CloseHandle(c->from);
    CloseHandle(c->process);
    memset(c, 0, sizeof *c);
    return rc;
}

void win_put(HANDLE pipe, uint64_t v)
{
    DWORD n = 0;
    WCHECK(WriteFile(pipe, &v, sizeof v, &n, NULL) && n == sizeof v);
}

int win_get_try(HANDLE pipe, uint64_t *v)
{
    char *p = (char *)v;
    DWORD got = 0;
    while (got < sizeof *v) {
        DWORD n = 0;
        if (!ReadFile(pipe, p + got, (DWORD)sizeof *v - got, &n, NULL) || n == 0)
            return -1;
        got += n;
    }
    return 0;
}

uint64_t win_get(HANDLE pipe)
{
    uint64_t v = 0;
    WCHECK(win_get_try(pipe, &v) == 0);
    return v;
}

uint64_t win_give(win_child *c, HANDLE h, DWORD access)
{
    HANDLE there;
    WCHECK_EQ(ripc__handle_give(c->process, h, access, &there), 0);
    return (uint64_t)(uintptr_t)there;
}
