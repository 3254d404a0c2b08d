/* Starting a worker process: posix_spawn, or CreateProcess on Windows (proc.h). */
#define _POSIX_C_SOURCE 200809L
#include "proc.h"

#include <stdio.h>
#include <string.h>

#ifdef _WIN32
#include <windows.h>

/* argv as one command line that the child's C runtime splits back into
 * the same arguments: each one quoted, a quote escaped with a backslash,
 * and backslashes doubled where they precede a quote. */
static int command_line(char *cmd, size_t cap, char *const argv[])
{
    size_t n = 0;
    for (int i = 0; argv[i]; i++) {
        const char *a = argv[i];
        if (n + 3 > cap)
            return -1;
        if (i)
            cmd[n++] = ' ';
        cmd[n++] = '"';
        for (;; a++) {
            size_t slashes = strspn(a, "\\");
            size_t copies = a[slashes] == '"' || a[slashes] == '\0' ? 2 * slashes : slashes;
            if (n + copies + 3 > cap)
                return -1;
            memset(cmd + n, '\\', copies);
            n += copies;
            a += slashes;
            if (*a == '\0')
                break;
            if (*a == '"')
                cmd[n++] = '\\';
            cmd[n++] = *a;
        }
        cmd[n++] = '"';
    }
    cmd[n] = '\0';
    return 0;
}

int proc_start(proc *p, char *const argv[])
{
    char self[MAX_PATH], cmd[4096];
    DWORD len = GetModuleFileNameA(NULL, self, sizeof self);
    if (len == 0 || len == sizeof self || command_line(cmd, sizeof cmd, argv) < 0) {
        fprintf(stderr, "%s: cannot start a worker: path or arguments too long\n", argv[0]);
        return -1;
    }
    /* Our stdout and stderr (ctest's pipes, a console) are the child's too. */
    STARTUPINFOA si = {.cb = sizeof si, .dwFlags = STARTF_USESTDHANDLES};
    si.hStdInput = GetStdHandle(STD_INPUT_HANDLE);
    si.hStdOutput = GetStdHandle(STD_OUTPUT_HANDLE);
    si.hStdError = GetStdHandle(STD_ERROR_HANDLE);
    PROCESS_INFORMATION pi;
    if (!CreateProcessA(self, cmd, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi)) {
        fprintf(stderr, "%s: CreateProcess: Windows error %lu\n", argv[0],
                (unsigned long)GetLastError());
        return -1;
    }
    CloseHandle(pi.hThread);
    p->id = (intptr_t)pi.hProcess;
    return 0;
}

int proc_ended(proc *p, int wait, int *code)
{
    HANDLE h = (HANDLE)p->id;
    DWORD rc = WaitForSingleObject(h, wait ? INFINITE : 0), status;
    if (rc == WAIT_TIMEOUT)
        return 0;
    int ok = rc == WAIT_OBJECT_0 && GetExitCodeProcess(h, &status);
    CloseHandle(h);
    p->id = 0;
    *code = ok ? (int)status : -1;
    return ok ? 1 : -1;
}

#else
#include <errno.h>
#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

int proc_start(proc *p, char *const argv[])
{
    pid_t pid;
    /* spawnp: argv[0] is found as the shell found it (a path, or in PATH). */
    int rc = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
    if (rc != 0) {
        fprintf(stderr, "%s: posix_spawn: %s\n", argv[0], strerror(rc));
        return -1;
    }
    p->id = pid;
    return 0;
}

int proc_ended(proc *p, int wait, int *code)
{
    int status;
    pid_t rc;
    while ((rc = waitpid((pid_t)p->id, &status, wait ? 0 : WNOHANG)) < 0 && errno == EINTR)
        ;
    if (rc == 0)
        return 0;
    p->id = 0;
    *code = rc > 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return rc > 0 ? 1 : -1;
}
#endif
