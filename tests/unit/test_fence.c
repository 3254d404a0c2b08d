/* The asymmetric fence's registration (shm/fence.h) across fork: a child
 * forked while another thread registers its process must be able to
 * register its own. Each round makes a fresh process (nothing registered),
 * starts a thread that registers, forks as it does (at a different point
 * each round) and asks the grandchild to register within 10 s. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "shm/fence.h"
#include "support/workers.h"

#define ROUNDS 200

static void *registrar(void *arg)
{
    (void)arg;
    (void)ripc__remote_fence_init();
    return NULL;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int register_here(void *arg)
{
    (void)arg;
    return ripc__remote_fence_init() >= 0 ? 0 : 3;
}

/* One round, in a fresh child: 0, 1 when the grandchild never got through
 * its registration (SIGALRM), 2 when the round could not be set up. */
static int round_in_child(int round)
{
    pthread_t th;
    if (pthread_create(&th, NULL, registrar, NULL) != 0)
        return 2;
    /* The registration takes from microseconds to milliseconds (two
     * system calls, the second one waits on every CPU): fork at a
     * different point of it each round. */
    for (uint64_t t0 = now_ns(); now_ns() - t0 < (uint64_t)(round % 40) * 5000;)
        ;
    pid_t g = ripc_test_fork_alarm(register_here, NULL, 10);
    if (g < 0)
        return 2;
    int st;
    waitpid(g, &st, 0);
    pthread_join(th, NULL);
    if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
        return 1;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 2;
}

static void test_fence_fork_while_registering(void **state)
{
    (void)state;
    for (int i = 0; i < ROUNDS; i++) {
        fflush(stdout);
        pid_t c = fork();
        assert_true(c >= 0);
        if (c == 0)
            _exit(round_in_child(i));
        int st;
        assert_int_equal(waitpid(c, &st, 0), c);
        assert_true(WIFEXITED(st));
        if (WEXITSTATUS(st) == 1)
            fail_msg("round %d: a child forked while its parent registered never registered itself",
                     i);
        assert_int_equal(WEXITSTATUS(st), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fence_fork_while_registering),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
