/* SPDX-License-Identifier: MIT */
/* Socket mode, sending side of a client: see src/outq.h. Functions that say
 * "mutex held" are called with q->mu held and return with it held. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "src/frames.h"
#include "src/internal.h"
#include "src/outq.h"

#define QUIET_NS 20000u /* a send this long after the previous one goes direct */

struct ripc__outq {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* writer: work; senders: room / idle */
    int fd;
    uint8_t *buf, *spare;
    size_t len, cap;
    /* The rest of a frame whose direct write met its deadline part way:
     * the writer sends it before anything queued (busy stays set until it
     * has), so that the caller returns on time and the stream keeps its
     * framing. */
    uint8_t *tail;
    size_t tail_len;
    /* A direct frame part written: the caller finishes it (ripc__outq_finish)
     * from its own payload while busy is set. */
    ripc__frame_out cur;
    int busy;         /* somebody is writing to fd (or a tail waits) */
    _Atomic int stop; /* set under mu; read by the writer outside it too (S1/S2) */
    int err;          /* first write error, sticky */
    /* Counts what a waiting sender may wake for (a batch taken or written,
     * a direct frame ended); `seen` is its value at the sender's last
     * -EAGAIN. */
    unsigned moves, seen;
    int direct; /* the way chosen for the frame of the last -EAGAIN */
    int started;
    pthread_t th;
    uint64_t last_ns;
};

/* Wait on cv until deadline (mutex held). -ETIMEDOUT when it passed. */
static int wait_until(ripc__outq *q, uint64_t deadline)
{
    if (deadline == RIPC_DEADLINE_NEVER) {
        pthread_cond_wait(&q->cv, &q->mu);
        return 0;
    }
    if (ripc__expired(deadline))
        return -ETIMEDOUT;
    ripc__cond_wait_until(&q->cv, &q->mu, deadline);
    return 0;
}

/* Something moved (mutex held): wake whoever waits for it. */
static void progress(ripc__outq *q)
{
    q->moves++;
    pthread_cond_broadcast(&q->cv);
}

/* The writer's write: all of b, waiting for room in slices so that close
 * can stop a writer whose peer no longer reads. Writer thread, mutex not
 * held. 0, -ECANCELED (stop), -EPIPE, or another -errno. */
static int write_all(ripc__outq *q, const uint8_t *b, size_t n)
{
    size_t done = 0;
    while (done < n) {
        long w = ripc__sock_try_send_fds(q->fd, b + done, n - done, NULL, 0);
        if (w > 0) {
            done += (size_t)w;
            continue;
        }
        if (w == -EAGAIN) {
            /* S2: seq_cst, pairs with S1 in ripc__outq_close; a flag, no
             * data rides on it */
            if (atomic_load(&q->stop))
                return -ECANCELED;
            int r = ripc__sock_wait(q->fd, RIPC_SOCK_OUT, ripc__deadline(100));
            if (r > 0 && (r & RIPC_SOCK_HUP))
                return -EPIPE;
            continue;
        }
        return w == 0 ? -EPIPE : (int)w;
    }
    return 0;
}

/* The writer thread: writes a waiting tail, else the whole queue, until
 * stop with nothing left. The first error is kept in q->err (sticky). */
static void *writer(void *arg)
{
    ripc__outq *q = arg;
    /* It writes from its own buffer, never from a segment; SIGBUS stays
     * open in every thread of the library all the same (internal.h), so
     * that none can be the one a truncated segment kills. */
    (void)ripc__sigbus_unblock(NULL);
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->tail && q->len == 0 && !q->stop)
            pthread_cond_wait(&q->cv, &q->mu);
        uint8_t *b;
        size_t n;
        int is_tail = q->tail != NULL;
        if (is_tail) {
            /* busy was left set for it by ripc__outq_finish: nothing else
             * goes out until it has. */
            b = q->tail;
            n = q->tail_len;
            q->tail = NULL;
        } else {
            if (q->len == 0)
                break; /* stop, and nothing left */
            /* A direct write is in progress: keep the order. */
            while (q->busy && !q->tail)
                pthread_cond_wait(&q->cv, &q->mu);
            if (q->tail)
                continue;
            b = q->buf;
            n = q->len;
            q->buf = q->spare;
            q->spare = b;
            q->len = 0;
            q->busy = 1;
            progress(q); /* room for senders */
        }
        int err = q->err;
        pthread_mutex_unlock(&q->mu);
        int rc = err ? err : write_all(q, b, n);
        if (is_tail)
            free(b);
        pthread_mutex_lock(&q->mu);
        q->busy = 0;
        if (rc < 0 && !q->err)
            q->err = rc;
        progress(q);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

/* Start the writer thread if it is not running (mutex held). 0, or -EAGAIN
 * when no thread can be had (nothing was started). */
static int start_writer(ripc__outq *q)
{
    if (!q->started && pthread_create(&q->th, NULL, writer, q) == 0)
        q->started = 1;
    return q->started ? 0 : -EAGAIN;
}

int ripc__outq_open(ripc__outq **out, int fd, size_t cap)
{
    ripc__outq *q = calloc(1, sizeof *q);
    if (!q)
        return -ENOMEM;
    q->buf = malloc(cap);
    q->spare = malloc(cap);
    if (!q->buf || !q->spare) {
        free(q->buf);
        free(q->spare);
        free(q);
        return -ENOMEM;
    }
    pthread_mutex_init(&q->mu, NULL);
    ripc__cond_init_monotonic(&q->cv);
    q->fd = fd;
    q->cap = cap;
    *out = q;
    return 0;
}

/* The caller's direct frame is done with (mutex held): rc is how it ended.
 * Returns what the caller gets. */
static int end_direct(ripc__outq *q, int rc)
{
    ripc__frame_out_end(&q->cur);
    if (rc == -ENOMEM) {
        /* Part of the frame is out and the rest cannot follow: the stream
         * is broken. End it, so that the peer drops us rather than wait
         * for the rest of the frame. */
        ripc__sock_shutdown(q->fd, RIPC_SOCK_SHUT_WR);
        rc = -EPIPE;
    }
    q->busy = 0;
    if (rc == -EPIPE && !q->err)
        q->err = -EPIPE;
    progress(q);
    return rc;
}

/* Write f now, as the one writer, as much as the socket takes without
 * waiting (mutex held on entry and exit; nothing queued, nobody writing).
 * -EINPROGRESS: part of it is out, q->cur holds the rest (over the
 * caller's payload) and busy stays set for ripc__outq_finish. */
static int write_direct(ripc__outq *q, const ripc__frame *f, const void *payload)
{
    size_t moved = 0;
    q->busy = 1;
    pthread_mutex_unlock(&q->mu);
    ripc__frame_out_begin(&q->cur, f, payload);
    int rc = ripc__frame_out_write(&q->cur, q->fd, &moved);
    pthread_mutex_lock(&q->mu);
    if (rc == -EAGAIN && moved > 0)
        return -EINPROGRESS;
    return end_direct(q, rc); /* all out, nothing out (-EAGAIN), or failed */
}

/* Copy f into the queue for the writer thread (mutex held; room checked).
 * 0, or -EAGAIN with nothing queued when no writer thread can be had. */
static int enqueue(ripc__outq *q, const ripc__frame *f, const void *payload, size_t need)
{
    ripc__frame_encode(q->buf + q->len, f);
    if (f->len)
        memcpy(q->buf + q->len + RIPC_FRAME_HDR, payload, (size_t)f->len);
    q->len += need;
    int rc = start_writer(q); /* no writer: nothing queued may stay */
    if (rc == 0)
        pthread_cond_broadcast(&q->cv);
    else
        q->len -= need;
    return rc;
}

int ripc__outq_try_send(ripc__outq *q, const ripc__frame *f, const void *payload, int flags)
{
    size_t need = RIPC_FRAME_HDR + (size_t)f->len;
    uint64_t now = ripc__now_ns();
    pthread_mutex_lock(&q->mu);
    int rc = q->err;
    if (rc == 0) {
        int ahead = q->len > 0 || q->busy, direct = q->direct;
        if (!(flags & RIPC_OUTQ_AGAIN)) {
            int quiet = !ahead && now - q->last_ns > QUIET_NS;
            direct = (flags & RIPC_OUTQ_NOW) || quiet || need > q->cap;
            q->last_ns = now;
        }
        if (!direct) {
            rc = q->len + need > q->cap ? -EAGAIN : enqueue(q, f, payload, need);
            /* No writer thread to be had: nothing is queued (enqueue took
             * the frame back), so the caller writes it itself rather than
             * wait for room that no thread will make. */
            direct = rc == -EAGAIN && !q->started;
        }
        if (direct) /* written by the caller, after whatever is ahead of it */
            rc = ahead ? -EAGAIN : write_direct(q, f, payload);
        if (rc == -EAGAIN) {
            q->seen = q->moves; /* what ripc__outq_wait waits to change */
            q->direct = direct;
        }
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

int ripc__outq_wait(ripc__outq *q, uint64_t deadline)
{
    pthread_mutex_lock(&q->mu);
    int rc = q->err;
    if (rc == 0 && q->moves != q->seen) {
        pthread_mutex_unlock(&q->mu); /* moved since the try: try again */
        return 0;
    }
    if (rc == 0 && (q->len > 0 || q->busy)) {
        /* The writer thread is ahead: it broadcasts when it takes a batch
         * (room) and when it is done with one (idle). */
        rc = wait_until(q, deadline);
        if (rc == 0)
            rc = q->err;
        pthread_mutex_unlock(&q->mu);
        return rc;
    }
    pthread_mutex_unlock(&q->mu);
    if (rc != 0)
        return rc;
    /* Nothing ahead: what a direct frame waits for is room in the socket.
     * Only this thread starts writes, so nothing gets ahead meanwhile. */
    rc = ripc__frame_wait_out(q->fd, deadline);
    if (rc == -EPIPE) {
        pthread_mutex_lock(&q->mu);
        if (!q->err)
            q->err = -EPIPE;
        pthread_mutex_unlock(&q->mu);
    }
    return rc;
}

int ripc__outq_finish(ripc__outq *q, uint64_t finish)
{
    /* busy is still set from write_direct: the socket is ours, q->cur too. */
    size_t moved = 0;
    int rc;
    do {
        rc = ripc__frame_wait_out(q->fd, finish);
        if (rc == 0)
            rc = ripc__frame_out_write(&q->cur, q->fd, &moved);
    } while (rc == -EAGAIN);
    pthread_mutex_lock(&q->mu);
    if (rc == -ETIMEDOUT) {
        /* The rest goes to the writer thread; busy stays set until it has
         * written it, so nothing else goes out before. */
        rc = ripc__frame_out_keep(&q->cur) < 0 ? -ENOMEM : start_writer(q) < 0 ? -ENOMEM : 0;
        if (rc == 0) {
            q->tail = q->cur.own;
            q->tail_len = q->cur.left;
            q->cur = (ripc__frame_out){0};
            pthread_cond_broadcast(&q->cv);
            pthread_mutex_unlock(&q->mu);
            return 0;
        }
    }
    rc = end_direct(q, rc);
    pthread_mutex_unlock(&q->mu);
    return rc;
}

int ripc__outq_close(ripc__outq *q, int timeout_ms)
{
    if (!q)
        return 0;
    uint64_t deadline = ripc__deadline(timeout_ms);
    pthread_mutex_lock(&q->mu);
    while (q->started && (q->len > 0 || q->busy) && !q->err)
        if (wait_until(q, deadline) < 0)
            break;
    q->stop = 1; /* S1: seq_cst, pairs with S2 in write_all */
    if ((q->len > 0 || q->busy) && !q->err)
        q->err = -ECANCELED; /* give up on what is left: the writer exits */
    q->len = 0;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    if (q->started)
        pthread_join(q->th, NULL);
    int rc = q->err;
    free(q->tail);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    free(q->buf);
    free(q->spare);
    free(q);
    return rc;
}
