/* SPDX-License-Identifier: MIT */
#include "windows/win_master.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "windows/win_support.h"

static void on_joined(ripc_peer *p, void *arg)
{
    win_master *m = arg;
    InterlockedExchange(&m->last_joined, (LONG)ripc_peer_id(p));
    InterlockedIncrement(&m->joined);
}

static void on_left(ripc_peer *p, int reason, void *arg)
{
    win_master *m = arg;
    printf("  worker %u left: %s\n", (unsigned)ripc_peer_id(p), ripc_strerror(reason));
    fflush(stdout);
    m->left_reason = reason;
    InterlockedIncrement(&m->left);
    SetEvent(m->left_ev);
}

void win_master_open(win_master *m, const char *tag, const char *url, const ripc_options *o)
{
    memset(m, 0, sizeof *m);
    char name[128];
    if (url == NULL) {
        snprintf(name, sizeof name, "unix:ripc-test-%s-%lu", tag,
                 (unsigned long)GetCurrentProcessId());
        url = name;
    }
    m->left_ev = CreateEventW(NULL, FALSE, FALSE, NULL);
    WCHECK(m->left_ev != NULL);
    char why[256] = "";
    int rc = ripc_server_open_ex(&m->s, url, o, why, sizeof why);
    if (rc < 0)
        fprintf(stderr, "ripc_server_open %s: %s (%s)\n", url, ripc_strerror(rc), why);
    WCHECK_EQ(rc, 0);
    char bound[128];
    WCHECK(ripc_server_url(m->s, bound, sizeof bound) < (int)sizeof bound);
    WCHECK(SetEnvironmentVariableA("RIPC_TEST_URL", bound));
    WCHECK_EQ(ripc_server_on_peer(m->s, on_joined, on_left, m), 0);
}

static void *run(void *arg)
{
    win_master *m = arg;
    int rc = ripc_server_run(m->s, 2);
    WCHECK(rc == 0 || rc == -ECANCELED);
    return NULL;
}

void win_master_run(win_master *m)
{
    WCHECK_EQ(pthread_create(&m->th, NULL, run, m), 0);
}

void win_master_stop(win_master *m)
{
    ripc_server_stop(m->s);
    pthread_join(m->th, NULL);
    ripc_server_close(m->s);
    CloseHandle(m->left_ev);
}

ripc_client *win_worker_open(const char *url, int transport, const char *name)
{
    /* getenv: SetEnvironmentVariable in this process does not change it,
     * so it says what the parent set before it started us. */
    if (url == NULL)
        url = getenv("RIPC_TEST_URL");
    WCHECK(url != NULL);
    ripc_options o = {.transport = transport, .name = name};
    ripc_client *c = NULL;
    char why[256] = "";
    int rc = ripc_client_open_ex(&c, url, &o, why, sizeof why);
    if (rc < 0)
        fprintf(stderr, "ripc_client_open %s: %s (%s)\n", url, ripc_strerror(rc), why);
    WCHECK_EQ(rc, 0);
    return c;
}
