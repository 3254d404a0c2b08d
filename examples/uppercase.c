/*
 * The classic first socket program, on ringipc: a service that translates
 * text to upper case.
 *
 *   uppercase serve <url>           master: serve until SIGINT / SIGTERM
 *   uppercase ask <url> <text>...   worker: one request per argument
 *   uppercase                       both: start `uppercase ask` as a worker,
 *                                   serve it until it leaves
 */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <ringipc/ringipc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc.h"

#define UPPER 1 /* our one message type */

static void upper(ripc_peer *from, const ripc_msg *msg, void *arg)
{
    (void)arg;
    char *out = malloc(msg->len ? (size_t)msg->len : 1);
    if (!out)
        return; /* no reply: the worker's request times out */
    const unsigned char *in = msg->data;
    for (uint64_t i = 0; i < msg->len; i++)
        out[i] = (char)toupper(in[i]);
    ripc_reply(from, msg, out, msg->len);
    free(out);
}

static void joined(ripc_peer *p, void *arg)
{
    (void)arg;
    printf("worker %u (%s) joined\n", ripc_peer_id(p), ripc_peer_name(p));
    fflush(stdout);
}

static void left(ripc_peer *p, int reason, void *arg)
{
    printf("worker %u left: %s\n", ripc_peer_id(p),
           reason == RIPC_LEFT_BYE ? "goodbye" : ripc_strerror(reason));
    fflush(stdout);
    if (arg)
        *(int *)arg = 1; /* self-contained mode: the worker is done */
}

static ripc_server *open_server(const char *url, int *gone)
{
    ripc_server *s;
    int rc = ripc_server_open(&s, url, NULL);
    if (rc < 0) {
        fprintf(stderr, "uppercase: listen on %s: %s\n", url, ripc_strerror(rc));
        return NULL;
    }
    ripc_server_handle(s, UPPER, upper, NULL);
    ripc_server_on_peer(s, joined, left, gone);
    return s;
}

static int ask(const char *url, char **texts, int n)
{
    ripc_client *c;
    ripc_options opt = {.name = "uppercase-ask"};
    int rc = ripc_client_open(&c, url, &opt);
    if (rc < 0) {
        fprintf(stderr, "uppercase: connect to %s: %s\n", url, ripc_strerror(rc));
        return 1;
    }
    for (int i = 0; i < n && rc >= 0; i++) {
        ripc_msg reply;
        rc = ripc_client_request(c, UPPER, texts[i], strlen(texts[i]), &reply, 5000);
        if (rc < 0)
            fprintf(stderr, "uppercase: request: %s\n", ripc_strerror(rc));
        else
            printf("%s -> %.*s\n", texts[i], (int)reply.len, (const char *)reply.data);
    }
    fflush(stdout);
    ripc_client_close(c);
    return rc < 0;
}

static ripc_server *g_server; /* for the signal handler */

static void on_signal(int sig)
{
    (void)sig;
    ripc_server_stop(g_server); /* async-signal-safe */
}

static int serve(const char *url)
{
    if (!(g_server = open_server(url, NULL)))
        return 1;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    printf("serving on %s (Ctrl-C stops)\n", url);
    fflush(stdout);
    int rc = ripc_server_run(g_server, 1);
    ripc_server_close(g_server);
    return rc < 0;
}

/* No arguments: master and worker in one run, for a quick look (and the test). */
static int demo(char *self)
{
    char url[64];
    snprintf(url, sizeof url, "unix:/tmp/uppercase-%d.sock", (int)getpid());
    int gone = 0;
    ripc_server *s = open_server(url, &gone);
    if (!s)
        return 1;
    fflush(stdout); /* before the worker writes to the same stdout */
    char *args[] = {self, "ask", url, "hello world", "shared memory is fast", "ringipc", NULL};
    proc worker;
    if (proc_start(&worker, args) < 0) {
        ripc_server_close(s);
        return 1;
    }
    int code = 1, ended = 0;
    /* Serve until the worker has left (or died without a word). */
    for (int after = 0; !gone && after < 10;) {
        ripc_server_poll(s, 100);
        if (!ended)
            ended = proc_ended(&worker, 0, &code) != 0;
        else
            after++; /* exited: give its goodbye a moment to arrive */
    }
    if (!ended)
        proc_ended(&worker, 1, &code);
    ripc_server_close(s);
    return code != 0;
}

int main(int argc, char **argv)
{
    if (argc == 1)
        return demo(argv[0]);
    if (argc == 3 && strcmp(argv[1], "serve") == 0)
        return serve(argv[2]);
    if (argc >= 4 && strcmp(argv[1], "ask") == 0)
        return ask(argv[2], argv + 3, argc - 3);
    fprintf(stderr, "usage: uppercase [serve <url> | ask <url> <text>...]\n");
    return 2;
}
