/* SPDX-License-Identifier: MIT */
/*
 * A master and its workers for the Windows end-to-end tests, through the
 * public API: a server on its own threads that counts who joins and who
 * leaves (and why), and a worker's open. The workers it starts get the
 * master's address from RIPC_TEST_URL.
 */
#ifndef RIPC_TESTS_WIN_MASTER_H
#define RIPC_TESTS_WIN_MASTER_H

#include <pthread.h>
#include <windows.h>

#include "ringipc/ringipc.h"

typedef struct win_master {
    ripc_server *s;
    pthread_t th;
    HANDLE left_ev; /* set by `left` (auto-reset) */
    volatile LONG joined, left;
    volatile LONG last_joined; /* the id of the worker that joined last */
    int left_reason;           /* the last `left`'s */
} win_master;

/* Open a server on url (NULL: a fresh pipe name from tag) with options o
 * (may be NULL) and put the address it listens on into RIPC_TEST_URL for
 * the workers this process starts. Register handlers, then win_master_run. */
void win_master_open(win_master *m, const char *tag, const char *url, const ripc_options *o);

/* Run the server on a thread of its own (two dispatch loops). */
void win_master_run(win_master *m);

/* Stop and close it. */
void win_master_stop(win_master *m);

/* A worker on url (NULL: RIPC_TEST_URL's, as the parent set it before
 * starting us), with the transport asked for (RIPC_TRANSPORT_*) and a
 * name. Fails the test when it cannot open. */
ripc_client *win_worker_open(const char *url, int transport, const char *name);

#endif
