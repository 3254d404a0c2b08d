/* SPDX-License-Identifier: MIT */
/*
 * POSIX fault guard (contract: shm/fault_guard.h).
 *
 * Slot states and who moves them:
 *   FREE -> ARMED        add, under the mutex (base and len written first,
 *                        the state last, with release)
 *   ARMED -> FIXING      the handler (CAS), then HIT once the replacement
 *                        is mapped, or back to ARMED when it cannot be
 *   ARMED/HIT -> FREE    remove (CAS); FIXING makes it wait
 * So a slot that is FIXING cannot be freed, and one that is not FREE cannot
 * be reused: once its CAS succeeded, the handler reads a stable range.
 */
#include "shm/fault_guard.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#ifndef MAP_ANONYMOUS
#define MAP_ANONYMOUS MAP_ANON
#endif

#if defined(__SANITIZE_THREAD__)
#define GUARD_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GUARD_TSAN 1
#endif
#endif
#if defined(GUARD_TSAN) && defined(__linux__) && defined(__LP64__)
#include <sys/syscall.h>
#include <unistd.h>
#define GUARD_RAW_MMAP 1
#endif

#define CHUNKS     26 /* 64 << 25: far more ranges than mappings a process may have */
#define CHUNK0_LOG 6

static ripc__fault_guard_slot *_Atomic chunks[CHUNKS];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

/* The handler that was in place before ours. Two copies: a reinstall writes
 * the one the handler is not reading, then publishes it. */
static struct sigaction prev[2];
static _Atomic int prev_idx;
/* Recursion through the previous handler, per thread: one installed after
 * us that saved ours and chains to it would otherwise loop. A thread that
 * enters chain() again while its own call of the previous handler is under
 * way takes the default action instead; another thread's call says nothing
 * about this one (its fault may be one the previous handler recovers from).
 * The mark is the installation generation at entry, 0 when none: a
 * previous handler that does not return (siglongjmp, as test harnesses do)
 * leaves its thread's mark standing, and a later installation makes it
 * stale. Initial-exec TLS: a plain load from the thread pointer, nothing to
 * allocate in a signal handler. */
static _Atomic unsigned install_gen = 1;
static _Thread_local unsigned chain_mark __attribute__((tls_model("initial-exec")));

static size_t chunk_slots(int k)
{
    return (size_t)1 << (CHUNK0_LOG + k);
}

/* ---- the handler ---- */

/* Zero-filled private memory in place of [b, b + l). */
static void *replace(void *b, size_t l)
{
    int prot = PROT_READ | PROT_WRITE, flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
#ifdef GUARD_RAW_MMAP
    /* TSan takes an mmap for a write of the whole range by this thread, and
     * every later access by another thread for a race with it. Nothing
     * relies on what the range holds from now on (its owner drops the peer),
     * so TSan is not told. */
    return (void *)syscall(SYS_mmap, b, l, prot, flags, -1, 0);
#else
    return mmap(b, l, prot, flags, -1, 0);
#endif
}

/* Is a, a faulting address, in the range of slot s? If so make the range
 * harmless. 1: the access may run again; 0: not ours, or not fixable. */
static int fix_slot(ripc__fault_guard_slot *s, uintptr_t a)
{
    int st = atomic_load_explicit(&s->state, memory_order_acquire);
    for (;;) {
        if (st == RIPC_GUARD_FREE)
            return 0;
        /* Before the CAS the pair may be torn by a concurrent reuse of the
         * slot; that only decides whether we look closer. */
        uintptr_t b = atomic_load_explicit(&s->base, memory_order_relaxed);
        size_t l = atomic_load_explicit(&s->len, memory_order_relaxed);
        if (a - b >= l)
            return 0;
        if (st == RIPC_GUARD_HIT)
            return 1; /* replaced by another thread meanwhile: just retry */
        if (st == RIPC_GUARD_FIXING) {
            sched_yield(); /* another thread's handler is in mmap */
            st = atomic_load_explicit(&s->state, memory_order_acquire);
            continue;
        }
        if (!atomic_compare_exchange_weak_explicit(&s->state, &st, RIPC_GUARD_FIXING,
                                                   memory_order_acquire, memory_order_acquire))
            continue;
        /* FIXING: nobody can free or reuse the slot now; read it again. */
        b = atomic_load_explicit(&s->base, memory_order_relaxed);
        l = atomic_load_explicit(&s->len, memory_order_relaxed);
        if (a - b >= l) {
            atomic_store_explicit(&s->state, RIPC_GUARD_ARMED, memory_order_release);
            return 0;
        }
        void *p = replace((void *)b, l);
        if (p == MAP_FAILED) {
            atomic_store_explicit(&s->state, RIPC_GUARD_ARMED, memory_order_release);
            return 0;
        }
        atomic_store_explicit(&s->state, RIPC_GUARD_HIT, memory_order_release);
        return 1;
    }
}

static int fix(uintptr_t a)
{
    for (int k = 0; k < CHUNKS; k++) {
        ripc__fault_guard_slot *c = atomic_load_explicit(&chunks[k], memory_order_acquire);
        if (c == NULL)
            return 0;
        for (size_t i = 0, n = chunk_slots(k); i < n; i++)
            if (fix_slot(&c[i], a))
                return 1;
    }
    return 0;
}

/* Not ours: what would have happened without us. */
static void chain(int sig, siginfo_t *si, void *ctx)
{
    const struct sigaction *p = &prev[atomic_load_explicit(&prev_idx, memory_order_acquire)];
    int sent = si == NULL || si->si_code <= 0; /* kill, raise, sigqueue: not a fault */
    unsigned gen = atomic_load_explicit(&install_gen, memory_order_relaxed);
    int again = chain_mark != 0 && chain_mark == gen;
    /* sa_handler and sa_sigaction share storage: SIG_DFL and SIG_IGN read
     * the same through either, SA_SIGINFO or not. */
    int is_dfl = p->sa_handler == SIG_DFL, is_ign = p->sa_handler == SIG_IGN;
    if (!again && !is_dfl && !is_ign) {
        unsigned saved = chain_mark;
        chain_mark = gen;
        if (p->sa_flags & SA_SIGINFO)
            p->sa_sigaction(sig, si, ctx);
        else
            p->sa_handler(sig);
        chain_mark = saved;
        return;
    }
    /* Ignored before us: a sent SIGBUS stays ignored. A fault cannot be
     * ignored (the kernel kills a process that ignores or blocks the signal
     * of its own fault), so it gets the default action below, as it would
     * have without us. */
    if (sent && is_ign)
        return;
    /* The default action: a fault runs again on return and kills the
     * process where it was; a SIGBUS that was sent is sent once more,
     * delivered as soon as the handler returns. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    if (sent)
        raise(sig);
}

static void on_sigbus(int sig, siginfo_t *si, void *ctx)
{
    int saved = errno; /* mmap and sigaction may change it */
    /* Only a fault on an address (an access past the end of the object):
     * BUS_ADRALN, and signals sent by a process, are not about our ranges. */
    int fault = si != NULL && si->si_code > 0 && si->si_code != BUS_ADRALN;
    if (!fault || !fix((uintptr_t)si->si_addr))
        chain(sig, si, ctx);
    errno = saved;
}

/* ---- registration (mutex held) ---- */

static int is_ours(const struct sigaction *sa)
{
    return (sa->sa_flags & SA_SIGINFO) && sa->sa_sigaction == on_sigbus;
}

/* Our handler in place, whatever happened to it since last time. */
static int install(void)
{
    struct sigaction cur, sa;
    if (sigaction(SIGBUS, NULL, &cur) != 0)
        return -errno;
    if (is_ours(&cur))
        return 0;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    int idx = !atomic_load_explicit(&prev_idx, memory_order_relaxed);
    prev[idx] = cur;
    atomic_store_explicit(&prev_idx, idx, memory_order_release);
    atomic_fetch_add_explicit(&install_gen, 1, memory_order_relaxed);
    if (sigaction(SIGBUS, &sa, NULL) != 0)
        return -errno;
    /* A sanitizer that keeps SIGBUS to itself says yes and does nothing. */
    if (sigaction(SIGBUS, NULL, &cur) != 0)
        return -errno;
    return is_ours(&cur) ? 0 : -ENOTSUP;
}

static ripc__fault_guard_slot *free_slot(void)
{
    for (int k = 0; k < CHUNKS; k++) {
        ripc__fault_guard_slot *c = atomic_load_explicit(&chunks[k], memory_order_relaxed);
        if (c == NULL) {
            c = calloc(chunk_slots(k), sizeof *c);
            if (c == NULL)
                return NULL;
            atomic_store_explicit(&chunks[k], c, memory_order_release);
        }
        for (size_t i = 0, n = chunk_slots(k); i < n; i++)
            if (atomic_load_explicit(&c[i].state, memory_order_relaxed) == RIPC_GUARD_FREE)
                return &c[i];
    }
    return NULL;
}

/* mu across fork: held by the forking thread, so that no other thread holds
 * it in the child (whose first add would wait for it forever). It is held
 * only for short table updates (and, in remove, while a fault handler
 * finishes mapping over the range). */
static void fork_prepare(void)
{
    pthread_mutex_lock(&mu);
}

static void fork_done(void)
{
    pthread_mutex_unlock(&mu);
}

static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void fork_register(void)
{
    (void)pthread_atfork(fork_prepare, fork_done, fork_done);
}

void ripc__fault_guard_fork_register(void)
{
    pthread_once(&fork_once, fork_register);
}

int ripc__fault_guard_add(void *base, size_t len, ripc__fault_guard_slot **out)
{
    if (base == NULL || len == 0 || out == NULL)
        return -EINVAL;
    *out = NULL;
    ripc__fault_guard_fork_register();
    pthread_mutex_lock(&mu);
    int rc = install();
    ripc__fault_guard_slot *s = rc == 0 ? free_slot() : NULL;
    if (rc == 0 && s == NULL)
        rc = -ENOMEM;
    if (rc == 0) {
        atomic_store_explicit(&s->base, (uintptr_t)base, memory_order_relaxed);
        atomic_store_explicit(&s->len, len, memory_order_relaxed);
        /* Pairs with the acquire loads of the state in the handler. */
        atomic_store_explicit(&s->state, RIPC_GUARD_ARMED, memory_order_release);
        *out = s;
    }
    pthread_mutex_unlock(&mu);
    return rc;
}

void ripc__fault_guard_remove(ripc__fault_guard_slot *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&mu);
    for (;;) {
        int st = atomic_load_explicit(&s->state, memory_order_acquire);
        if (st == RIPC_GUARD_FIXING) {
            sched_yield(); /* a handler is mapping over the range: let it finish */
            continue;
        }
        if (atomic_compare_exchange_weak_explicit(&s->state, &st, RIPC_GUARD_FREE,
                                                  memory_order_acq_rel, memory_order_acquire))
            break;
    }
    pthread_mutex_unlock(&mu);
}

void ripc__sigmask_own_thread(sigset_t *old)
{
    sigset_t mask;
    sigfillset(&mask);
    sigdelset(&mask, SIGBUS);
    sigdelset(&mask, SIGSEGV);
    sigdelset(&mask, SIGFPE);
    sigdelset(&mask, SIGILL);
    pthread_sigmask(SIG_SETMASK, &mask, old);
}
