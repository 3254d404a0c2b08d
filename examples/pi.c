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
 *
 * The master starts each worker as this program again, `pi worker <url> <lo>
 * <hi>`, so the same code runs where there is no fork (Windows).
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <ringipc/ringipc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc.h"

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

/* A worker: compute the slice [lo, hi) and send it. */
static int worker(const char *url, long long lo, long long hi)
{
    double part = 0;
    for (long long k = lo; k < hi; k++) {
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
        fprintf(stderr, "pi: worker [%lld, %lld): %s\n", lo, hi, ripc_strerror(rc));
    return rc < 0;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "worker") == 0)
        return worker(argv[2], atoll(argv[3]), atoll(argv[4]));
    int nworkers = argc > 1 ? atoi(argv[1]) : 10;
    long long n = argc > 2 ? atoll(argv[2]) : 10000000;
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

    /* Start the workers after ripc_server_open: the listener exists before
     * any of them connects. */
    proc *workers = calloc((size_t)nworkers, sizeof *workers);
    if (!workers)
        return 1;
    fflush(stdout);
    int running = 0, failed = 0;
    for (; running < nworkers; running++) {
        char lo[24], hi[24];
        snprintf(lo, sizeof lo, "%lld", n * running / nworkers);
        snprintf(hi, sizeof hi, "%lld", n * (running + 1) / nworkers);
        char *args[] = {argv[0], "worker", url, lo, hi, NULL};
        if (proc_start(&workers[running], args) < 0) {
            failed = 1;
            break;
        }
    }

    /* Dispatch until every partial sum is in, or every worker is gone. */
    int started = running;
    while (t.parts < started && running > 0) {
        ripc_server_poll(s, 100);
        for (int i = 0; i < started; i++) {
            int code;
            if (workers[i].id && proc_ended(&workers[i], 0, &code) != 0) {
                failed |= code != 0;
                running--;
            }
        }
        if (running == 0)
            ripc_server_poll(s, 100); /* the last messages may still be in the rings */
    }
    for (int i = 0; i < started; i++) {
        int code;
        if (workers[i].id && proc_ended(&workers[i], 1, &code) != 0)
            failed |= code != 0;
    }
    free(workers);
    ripc_server_close(s);
    if (t.parts < nworkers || failed) {
        fprintf(stderr, "pi: %d of %d partial sums arrived\n", t.parts, nworkers);
        return 1;
    }
    printf("pi = %.11f (%d workers, n = %lld)\n", sqrt(8 * t.sum), nworkers, n);
    return 0;
}
