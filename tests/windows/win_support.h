/* SPDX-License-Identifier: MIT */
/*
 * Support for the Windows tests: plain programs (Debian has no mingw build
 * of cmocka), each a main that runs its cases in order. Exit code 0 passes,
 * 77 skips (after "SKIP: <reason>"), anything else fails (after
 * "FAIL file:line: what").
 *
 * There is no fork: a test that needs a second process starts the test
 * program again (win_child_start) in a role the program's main dispatches
 * on. Parent and child talk over two anonymous pipes, the only handles the
 * child inherits; the objects under test travel by DuplicateHandle into
 * the child (ripc__handle_give) and their values over the pipe, as the
 * library passes them.
 */
#ifndef RIPC_TESTS_WIN_SUPPORT_H
#define RIPC_TESTS_WIN_SUPPORT_H

#include <stdint.h>
#include <windows.h>

void win_fail(const char *file, int line, const char *what, long long a, long long b);
void win_skip(const char *reason);

#define WCHECK(cond)                                                                               \
    do {                                                                                           \
        if (!(cond))                                                                               \
            win_fail(__FILE__, __LINE__, #cond, 0, 0);                                             \
    } while (0)
/* Both values are printed when they differ. */
#define WCHECK_EQ(a, b)                                                                            \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_)                                                                              \
            win_fail(__FILE__, __LINE__, #a " == " #b, a_, b_);                                    \
    } while (0)

/* Print "[ RUN ] name", run fn, print "[  OK ] name" (a failure exits). */
void win_case(const char *name, void (*fn)(void));

typedef struct win_child {
    HANDLE process; /* PROCESS_ALL_ACCESS: wait, duplicate into, terminate */
    DWORD pid;
    HANDLE to;   /* our end of the pipe to the child */
    HANDLE from; /* our end of the pipe from the child */
} win_child;

/* Start this program again as `child <role> <in> <out>`. Fails the test
 * when it cannot. */
void win_child_start(win_child *c, const char *role);

/* In main: is this process a child? Then *role, and the pipe ends to the
 * parent (from it, to it). */
int win_child_args(int argc, char **argv, const char **role, HANDLE *from_parent,
                   HANDLE *to_parent);

/* Wait up to timeout_ms for the child to end: its exit code, or -1 when it
 * did not end in time (it is terminated then). Closes everything. */
long win_child_end(win_child *c, DWORD timeout_ms);

/* One u64 over a pipe. win_get fails the test on a broken pipe;
 * win_get_try says -1 instead. */
void win_put(HANDLE pipe, uint64_t v);
uint64_t win_get(HANDLE pipe);
int win_get_try(HANDLE pipe, uint64_t *v);

/* Duplicate h into the child with `access`: the value there. */
uint64_t win_give(win_child *c, HANDLE h, DWORD access);

#endif
