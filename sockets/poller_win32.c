/* SPDX-License-Identifier: MIT */
/*
 * The poller and the wake handle on Windows (contract: sockets/poller.h).
 *
 * Registrations are connection descriptors (their readiness events:
 * sockets/sock_win32.h) or plain waitable handles (doorbell events,
 * process handles, a wake handle). A wait first looks at every
 * registration (collecting completions; a 0-time wait on each plain
 * handle, putting back a signal it takes), and returns what holds; only
 * when nothing does does it sleep, on every registration's handles and an
 * interrupt event, then looks again. Readiness is thus worked out from the
 * state of each connection, not from which handle woke us: level-
 * triggered, and a spurious wake-up costs one more look.
 *
 * More than MAXIMUM_WAIT_OBJECTS (64) handles: the owner waits on its
 * interrupt, a "fired" event and the first 62 handles itself, and helper
 * threads of the poller (made by the add that needs them, idle between
 * waits) wait on 63 more each plus a shared stop event. A helper woken by
 * one of its handles sets "fired"; the owner, awake for any reason, sets
 * stop and waits until every helper it started is idle again before it
 * looks, so no helper takes a signal while it does. The cost is two event
 * round trips per helper per sleep, paid only by a poller with more than
 * 62 handles, and only when it sleeps.
 *
 * Changes from another thread while the owner sleeps (add, mod, del) set
 * the interrupt event: the owner rebuilds its list and looks again.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sockets/poller.h"
#include "sockets/sock_win32.h"

#define OWN_HANDLES   (MAXIMUM_WAIT_OBJECTS - 2) /* beside intr and fired */
#define GROUP_HANDLES (MAXIMUM_WAIT_OBJECTS - 1) /* beside stop */

struct reg {
    int fd;
    unsigned events;
    void *data;
};

struct helper {
    ripc__poller *pl;
    HANDLE thread;
    HANDLE go;   /* auto-reset: the owner starts a wait */
    HANDLE done; /* auto-reset: the wait is over, idle again */
    int n;       /* handles in hs after stop */
    volatile LONG quit;
    HANDLE hs[MAXIMUM_WAIT_OBJECTS]; /* [0] stop */
    int raw[MAXIMUM_WAIT_OBJECTS];
};

struct ripc__poller {
    CRITICAL_SECTION mu;
    struct reg *regs; /* under mu */
    size_t n, cap;
    int waiting;  /* under mu: the owner sleeps */
    HANDLE intr;  /* auto-reset: a change from another thread */
    HANDLE fired; /* auto-reset: a helper's handle was signalled */
    HANDLE stop;  /* manual-reset: helpers, end your wait */
    size_t start; /* owner only: where the next look starts */
    /* The owner's handle list, [0] intr, [1] fired, then 2 per
     * registration at most; larger lists are made by the add that needs
     * them (next_*, under mu) for the next wait to take: a wait never
     * allocates. */
    HANDLE *hs;
    int *raw;
    size_t hcap;
    HANDLE *next_hs;
    int *next_raw;
    size_t next_hcap;
    struct helper **helpers; /* made by add, under mu */
    size_t nhelpers;
};

static DWORD WINAPI helper_main(void *arg)
{
    struct helper *h = arg;
    for (;;) {
        WaitForSingleObject(h->go, INFINITE);
        if (h->quit)
            return 0;
        DWORD r = WaitForMultipleObjects((DWORD)h->n + 1, h->hs, FALSE, INFINITE);
        if (r > WAIT_OBJECT_0 && r <= WAIT_OBJECT_0 + (DWORD)h->n) {
            if (h->raw[r - WAIT_OBJECT_0])
                ripc__handle_putback(h->hs[r - WAIT_OBJECT_0]);
            SetEvent(h->pl->fired);
        } else if (r != WAIT_OBJECT_0) {
            SetEvent(h->pl->fired); /* a failed wait: let the owner look */
        }
        SetEvent(h->done);
    }
}

static void helper_free(struct helper *h)
{
    if (h == NULL)
        return;
    if (h->thread) {
        h->quit = 1;
        SetEvent(h->go);
        WaitForSingleObject(h->thread, INFINITE);
        CloseHandle(h->thread);
    }
    if (h->go)
        CloseHandle(h->go);
    if (h->done)
        CloseHandle(h->done);
    free(h);
}

static struct helper *helper_new(ripc__poller *pl)
{
    struct helper *h = calloc(1, sizeof *h);
    if (h == NULL)
        return NULL;
    h->pl = pl;
    h->hs[0] = pl->stop;
    h->go = CreateEventW(NULL, FALSE, FALSE, NULL);
    h->done = CreateEventW(NULL, FALSE, FALSE, NULL);
    if (h->go && h->done)
        h->thread =
            CreateThread(NULL, 64 * 1024, helper_main, h, STACK_SIZE_PARAM_IS_A_RESERVATION, NULL);
    if (h->thread == NULL) {
        helper_free(h);
        return NULL;
    }
    return h;
}

int ripc__poller_open(ripc__poller **out)
{
    *out = NULL;
    ripc__poller *pl = calloc(1, sizeof *pl);
    if (pl == NULL)
        return -ENOMEM;
    InitializeCriticalSection(&pl->mu);
    pl->intr = CreateEventW(NULL, FALSE, FALSE, NULL);
    pl->fired = CreateEventW(NULL, FALSE, FALSE, NULL);
    pl->stop = CreateEventW(NULL, TRUE, FALSE, NULL);
    pl->hcap = 2 + 2 * 8;
    pl->hs = calloc(pl->hcap, sizeof *pl->hs);
    pl->raw = calloc(pl->hcap, sizeof *pl->raw);
    if (!pl->intr || !pl->fired || !pl->stop || !pl->hs || !pl->raw) {
        int rc = pl->hs && pl->raw ? ripc__win32_errno(GetLastError()) : -ENOMEM;
        ripc__poller_close(pl);
        return rc;
    }
    *out = pl;
    return 0;
}

void ripc__poller_close(ripc__poller *pl)
{
    if (pl == NULL)
        return;
    for (size_t i = 0; i < pl->nhelpers; i++)
        helper_free(pl->helpers[i]);
    free(pl->helpers);
    if (pl->intr)
        CloseHandle(pl->intr);
    if (pl->fired)
        CloseHandle(pl->fired);
    if (pl->stop)
        CloseHandle(pl->stop);
    DeleteCriticalSection(&pl->mu);
    free(pl->regs);
    free(pl->hs);
    free(pl->raw);
    free(pl->next_hs);
    free(pl->next_raw);
    free(pl);
}

static struct reg *find(ripc__poller *pl, int fd)
{
    for (size_t i = 0; i < pl->n; i++)
        if (pl->regs[i].fd == fd)
            return &pl->regs[i];
    return NULL;
}

/* Room for n registrations: the table, the next wait's handle list, the
 * helpers. Under mu. 0 or -errno. */
static int reserve(ripc__poller *pl, size_t n)
{
    if (n > pl->cap) {
        size_t cap = pl->cap ? pl->cap * 2 : 16;
        struct reg *r = realloc(pl->regs, cap * sizeof *r);
        if (r == NULL)
            return -ENOMEM;
        pl->regs = r;
        pl->cap = cap;
    }
    size_t need = 2 + 2 * n;
    size_t have = pl->next_hs ? pl->next_hcap : pl->hcap;
    if (need > have) {
        size_t cap = 2 * need;
        HANDLE *hs = calloc(cap, sizeof *hs);
        int *raw = calloc(cap, sizeof *raw);
        if (hs == NULL || raw == NULL) {
            free(hs);
            free(raw);
            return -ENOMEM;
        }
        free(pl->next_hs);
        free(pl->next_raw);
        pl->next_hs = hs;
        pl->next_raw = raw;
        pl->next_hcap = cap;
    }
    size_t groups =
        2 * n > OWN_HANDLES ? (2 * n - OWN_HANDLES + GROUP_HANDLES - 1) / GROUP_HANDLES : 0;
    if (groups > pl->nhelpers) {
        struct helper **hv = realloc(pl->helpers, groups * sizeof *hv);
        if (hv == NULL)
            return -ENOMEM;
        pl->helpers = hv;
        while (pl->nhelpers < groups) {
            struct helper *h = helper_new(pl);
            if (h == NULL)
                return -ENOMEM;
            pl->helpers[pl->nhelpers++] = h;
        }
    }
    return 0;
}

static void changed(ripc__poller *pl)
{
    if (pl->waiting)
        SetEvent(pl->intr);
}

int ripc__poller_add(ripc__poller *pl, int fd, unsigned events, void *data)
{
    if (fd < 0 || (wconn_is(fd) && ripc__wconn_get(fd) == NULL))
        return -EBADF;
    EnterCriticalSection(&pl->mu);
    int rc = find(pl, fd) ? -EEXIST : reserve(pl, pl->n + 1);
    if (rc == 0) {
        pl->regs[pl->n++] = (struct reg){.fd = fd, .events = events, .data = data};
        changed(pl);
    }
    LeaveCriticalSection(&pl->mu);
    return rc;
}

int ripc__poller_mod(ripc__poller *pl, int fd, unsigned events, void *data)
{
    EnterCriticalSection(&pl->mu);
    struct reg *r = find(pl, fd);
    if (r) {
        r->events = events;
        r->data = data;
        changed(pl);
    }
    LeaveCriticalSection(&pl->mu);
    return r ? 0 : -ENOENT;
}

void ripc__poller_del(ripc__poller *pl, int fd)
{
    if (pl == NULL || fd < 0)
        return;
    EnterCriticalSection(&pl->mu);
    struct reg *r = find(pl, fd);
    if (r) {
        *r = pl->regs[--pl->n];
        changed(pl);
    }
    LeaveCriticalSection(&pl->mu);
}

static int sock_events(unsigned events)
{
    return ((events & RIPC_POLL_IN) ? RIPC_SOCK_IN : 0) |
           ((events & RIPC_POLL_OUT) ? RIPC_SOCK_OUT : 0);
}

/* Look at every registration (under mu), from pl->start round: what holds
 * goes to ev (max at most). The count. */
static int look(ripc__poller *pl, ripc__poll_event *ev, int max)
{
    int k = 0;
    size_t n = pl->n;
    for (size_t j = 0; j < n && k < max; j++) {
        struct reg *r = &pl->regs[(pl->start + j) % n];
        int ready = ripc__wconn_ready(r->fd, sock_events(r->events));
        unsigned out = (unsigned)ready & r->events & (RIPC_POLL_IN | RIPC_POLL_OUT);
        if (ready & RIPC_SOCK_HUP)
            out |= RIPC_POLL_IN | RIPC_POLL_HUP;
        if (out) {
            ev[k].data = r->data;
            ev[k].events = out;
            k++;
        }
    }
    if (n > 0)
        pl->start = (pl->start + 1) % n;
    return k;
}

/* Under mu: the handles of every registration into pl->hs from [2]; the
 * count. *slow as ripc__wconn_handles says. */
static int gather(ripc__poller *pl, int *slow)
{
    if (pl->next_hs) {
        free(pl->hs);
        free(pl->raw);
        pl->hs = pl->next_hs;
        pl->raw = pl->next_raw;
        pl->hcap = pl->next_hcap;
        pl->next_hs = NULL;
        pl->next_raw = NULL;
    }
    pl->hs[0] = pl->intr;
    pl->hs[1] = pl->fired;
    pl->raw[0] = pl->raw[1] = 0;
    int nh = 0;
    for (size_t i = 0; i < pl->n; i++) {
        struct reg *r = &pl->regs[i];
        int k = ripc__wconn_handles(r->fd, sock_events(r->events), pl->hs + 2 + nh,
                                    pl->raw + 2 + nh, slow);
        if (k > 0)
            nh += k;
    }
    return nh;
}

/* Sleep on nh handles (pl->hs from [2]) and intr for at most ms: 1 woken,
 * 0 timeout, -errno. */
static int sleep_on(ripc__poller *pl, int nh, int ms)
{
    int own = nh < OWN_HANDLES ? nh : OWN_HANDLES;
    size_t groups = 0;
    for (int at = own; at < nh; at += GROUP_HANDLES) {
        struct helper *h = pl->helpers[groups++];
        int cnt = nh - at < GROUP_HANDLES ? nh - at : GROUP_HANDLES;
        memcpy(h->hs + 1, pl->hs + 2 + at, (size_t)cnt * sizeof *h->hs);
        memcpy(h->raw + 1, pl->raw + 2 + at, (size_t)cnt * sizeof *h->raw);
        h->raw[0] = 0;
        h->n = cnt;
        SetEvent(h->go);
    }
    DWORD r = WaitForMultipleObjects((DWORD)own + 2, pl->hs, FALSE, ms < 0 ? INFINITE : (DWORD)ms);
    DWORD err = GetLastError();
    if (groups > 0) {
        SetEvent(pl->stop);
        for (size_t g = 0; g < groups; g++)
            WaitForSingleObject(pl->helpers[g]->done, INFINITE);
        ResetEvent(pl->stop);
        WaitForSingleObject(pl->fired, 0);
    }
    if (r >= WAIT_OBJECT_0 + 2 && r < WAIT_OBJECT_0 + 2 + (DWORD)own && pl->raw[r - WAIT_OBJECT_0])
        ripc__handle_putback(pl->hs[r - WAIT_OBJECT_0]);
    if (r == WAIT_TIMEOUT)
        return 0;
    if (r == WAIT_FAILED)
        return ripc__win32_errno(err);
    return 1;
}

int ripc__poller_wait(ripc__poller *pl, ripc__poll_event *ev, int max, int timeout_ms)
{
    uint64_t deadline = ripc__deadline(timeout_ms);
    if (max <= 0)
        return -EINVAL;
    for (;;) {
        int slow = 0;
        EnterCriticalSection(&pl->mu);
        int k = look(pl, ev, max);
        int nh = k > 0 ? 0 : gather(pl, &slow);
        pl->waiting = k == 0;
        LeaveCriticalSection(&pl->mu);
        if (k > 0)
            return k;
        int ms = ripc__remaining_ms(deadline);
        if (ms != 0) {
            if (slow && (ms < 0 || ms > W_SLOW_MS))
                ms = W_SLOW_MS;
            int r = sleep_on(pl, nh, ms);
            EnterCriticalSection(&pl->mu);
            pl->waiting = 0;
            LeaveCriticalSection(&pl->mu);
            if (r < 0)
                return r;
            if (r == 1 || slow || !ripc__expired(deadline))
                continue;
        } else {
            EnterCriticalSection(&pl->mu);
            pl->waiting = 0;
            LeaveCriticalSection(&pl->mu);
        }
        /* The time is up: one last look, for what came as it ended. */
        EnterCriticalSection(&pl->mu);
        k = look(pl, ev, max);
        LeaveCriticalSection(&pl->mu);
        return k;
    }
}

int ripc__poller_fd(const ripc__poller *pl)
{
    (void)pl;
    return -ENOTSUP;
}

/* ---- the wake handle: one manual-reset event ---- */

int ripc__wake_open(ripc__wake *w)
{
    HANDLE h = CreateEventW(NULL, TRUE, FALSE, NULL);
    w->rfd = w->wfd = ripc__handle_to_fd(h);
    return h ? 0 : ripc__win32_errno(GetLastError());
}

void ripc__wake_close(ripc__wake *w)
{
    if (w->rfd >= 0)
        CloseHandle(ripc__fd_to_handle(w->rfd));
    w->rfd = w->wfd = -1;
}

void ripc__wake_signal(ripc__wake *w)
{
    if (w->wfd >= 0)
        ripc__handle_putback(ripc__fd_to_handle(w->wfd));
}

void ripc__wake_drain(ripc__wake *w)
{
    if (w->rfd >= 0)
        ResetEvent(ripc__fd_to_handle(w->rfd));
}
