/*
 * The examples' one platform difference: starting a worker. Windows has no
 * fork, so a master starts its own program again with arguments that make
 * it a worker (posix_spawn on POSIX, CreateProcess on Windows). The worker
 * shares nothing with the master but stdout, stderr and the URL in its
 * arguments, which is all a ringipc worker needs.
 */
#ifndef EXAMPLES_PROC_H
#define EXAMPLES_PROC_H

#include <stdint.h>

typedef struct proc {
    intptr_t id; /* the pid on POSIX, the process handle on Windows */
} proc;

/* Start this program again with argv (argv[0] is how it was started, as
 * main got it; NULL-terminated). 0, or -1 after a message on stderr. */
int proc_start(proc *p, char *const argv[]);

/* Has p ended? 1 and its exit code in *code (-1 when it was killed), 0
 * while it runs (only when wait is 0; otherwise wait until it ends), -1 on
 * an error. After 1 or -1, p->id is 0: there is nothing more to wait for. */
int proc_ended(proc *p, int wait, int *code);

#endif
