/*
 * Pi by N workers, the way the seeds compute it through every IPC mechanism:
 *
 *     pi^2 / 8 = sum over k >= 0 of 1 / (2k + 1)^2
 *
 * Each worker sums its slice of k in [0, n) and sends the partial sum to the
 * master as one one-way message; the master adds them up and prints
 * sqrt(8 * total). For n = 10,000,000 that is 3.14159262176 (the series
 * converges slowly: the error is about 1 / (pi n)).
 *
 *   pi [workers=10] [n=10000000]
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <ringipc/ringipc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define PART 1 /* message type: one worker's partial sum, a double */

struct total {
    double sum;
    int parts;
};

static void on_part(ripc_peer *from, const ripc_msg *msg, void *arg)
{
    struct total *t = arg;
    double part;
    if (msg->len != sizeof part) {
        fprintf(stderr, "pi: worker %u sent %llu bytes\n", ripc_peer_id(from),
                (unsigned long long)msg->len);
        return;
    }
    memcpy(&part, msg->data, sizeof part); /* msg->data need not be aligned for double */
    t->sum += part;
    t->parts++;
}

/* A worker: compute the slice [lo, hi) and send it. Runs in a forked child. */
static int worker(const char *url, long lo, long hi)
{
    double part = 0;
    for (long k = lo; k < hi; k++) {
        double d = 2.0 * (double)k + 1.0;
        part += 1.0 / (d * d);
    }
    ripc_client *c;
    int rc = ripc_client_open(&c, url, &(ripc_options){.name = "pi-worker"});
    if (rc == 0) {
        rc = ripc_client_send(c, PART, &part, sizeof part, 5000);
        ripc_client_close(c); /* a goodbye after the message: nothing is lost */
    }
    if (rc < 0)
        fprintf(stderr, "pi: worker [%ld, %ld): %s\n", lo, hi, ripc_strerror(rc));
    return rc < 0;
}

int main(int argc, char **argv)
{
    int nworkers = argc > 1 ? atoi(argv[1]) : 10;
    long n = argc > 2 ? atol(argv[2]) : 10000000L;
    if (nworkers < 1 || nworkers > 1000 || n < 1) {
        fprintf(stderr, "usage: pi [workers=10 (1..1000)] [n=10000000]\n");
        return 2;
    }
    char url[64];
    snprintf(url, sizeof url, "unix:/tmp/ringipc-pi-%d.sock", (int)getpid());
    ripc_server *s;
    int rc = ripc_server_open(&s, url, NULL);
    if (rc < 0) {
        fprintf(stderr, "pi: %s: %s\n", url, ripc_strerror(rc));
        return 1;
    }
    struct total t = {0, 0};
    ripc_server_handle(s, PART, on_part, &t);

    /* Fork after ripc_server_open: the listener exists before any worker
     * connects. The children open clients only (see ringipc.h, "Fork"). */
    pid_t *pids = calloc((size_t)nworkers, sizeof *pids);
    if (!pids)
        return 1;
    fflush(stdout);
    for (int i = 0; i < nworkers; i++) {
        long lo = n * i / nworkers, hi = n * (i + 1) / nworkers;
        if ((pids[i] = fork()) == 0)
            _exit(worker(url, lo, hi)); /* _exit: the server is the parent's */
        if (pids[i] < 0) {
            perror("fork");
            nworkers = i;
            break;
        }
    }

    /* Dispatch until every partial sum is in, or every worker is gone. */
    int failed = 0, reaped = 0;
    while (t.parts < nworkers && reaped < nworkers) {
        ripc_server_poll(s, 100);
        for (int i = 0; i < nworkers; i++) {
            int st;
            if (pids[i] > 0 && waitpid(pids[i], &st, WNOHANG) == pids[i]) {
                failed |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
                pids[i] = -1;
                reaped++;
            }
        }
        if (reaped == nworkers)
            ripc_server_poll(s, 100); /* the last messages may still be in the rings */
    }
    for (int i = 0; i < nworkers; i++) {
        int st;
        if (pids[i] > 0 && waitpid(pids[i], &st, 0) == pids[i])
            failed |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
    }
    free(pids);
    ripc_server_close(s);
    if (t.parts < nworkers || failed) {
        fprintf(stderr, "pi: %d of %d partial sums arrived\n", t.parts, nworkers);
        return 1;
    }
    printf("pi = %.11f (%d workers, n = %ld)\n", sqrt(8 * t.sum), nworkers, n);
    return 0;
}
