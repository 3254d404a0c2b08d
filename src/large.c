/* SPDX-License-Identifier: MIT */
/* Large messages in shared-memory mode: see src/large.h. */
#include <errno.h>
#include <string.h>

#include "src/internal.h"
#include "src/large.h"

void ripc__large_init(ripc__large *lg)
{
    memset(lg, 0, sizeof *lg);
    lg->hdr_fd = -1;
    for (int i = 0; i < RIPC_LARGE_SLOTS; i++) {
        lg->out[i].seg.fd = -1;
        lg->in[i].fd = -1;
        lg->kept[i].seg.fd = -1;
    }
    lg->lent.fd = -1;
}

/* A descriptor from the peer that we never mapped: it may be anything
 * (sockets/closer.h). */
static void close_fd(int *fd)
{
    ripc__fd_dispose(*fd);
    *fd = -1;
}

/* x is no longer idle-and-counted (taken, or about to be closed). The
 * budget's count is relaxed: it publishes nothing. */
static void uncount(ripc__large *lg, ripc__large_buf *x)
{
    if (x->counted && lg->budget)
        atomic_fetch_sub_explicit(&lg->budget->idle, x->seg.len, memory_order_relaxed);
    x->counted = 0;
}

/* x came back idle: may it stay within the shared budget? Counts it if so
 * (relaxed, as uncount). */
static int count(ripc__large *lg, ripc__large_buf *x)
{
    if (!lg->budget)
        return 1;
    size_t cur = atomic_load_explicit(&lg->budget->idle, memory_order_relaxed);
    do {
        if (cur + x->seg.len > lg->budget->cap)
            return 0;
    } while (!atomic_compare_exchange_weak_explicit(&lg->budget->idle, &cur, cur + x->seg.len,
                                                    memory_order_relaxed, memory_order_relaxed));
    x->counted = 1;
    return 1;
}

void ripc__large_free(ripc__large *lg)
{
    ripc__large_budget *budget = lg->budget;
    ripc__pass *pass = lg->pass;
    for (int i = 0; i < RIPC_LARGE_SLOTS; i++) {
        uncount(lg, &lg->out[i]);
        ripc__segment_close(&lg->out[i].seg);
    }
    while (lg->in_n) {
        close_fd(&lg->in[lg->in_head].fd);
        lg->in_head = (lg->in_head + 1) % RIPC_LARGE_SLOTS;
        lg->in_n--;
    }
    close_fd(&lg->hdr_fd);
    ripc__segment_close(&lg->lent);
    for (int i = 0; i < RIPC_LARGE_SLOTS; i++)
        ripc__segment_close(&lg->kept[i].seg);
    ripc__large_init(lg);
    lg->budget = budget;
    lg->pass = pass;
}

/* ---- receiving ---- */

/* One read for the rest of the header being read. >0 bytes, 0 nothing
 * there now, -EPIPE end of stream, -EPROTO descriptors we cannot accept
 * (a second one for this header: the frame carries exactly one). */
static long read_hdr(ripc__large *lg, int sock)
{
    int nfds = lg->hdr_fd >= 0;
    int fds[1] = {lg->hdr_fd};
    long n = ripc__sock_try_recv_fds(sock, lg->hdr + lg->hdr_len, RIPC_FRAME_HDR - lg->hdr_len, fds,
                                     1, &nfds);
    if (nfds)
        lg->hdr_fd = fds[0];
    if (n == -EAGAIN)
        return 0;
    if (n == -EPROTO)
        return -EPROTO;
    return n <= 0 ? -EPIPE : n;
}

int ripc__large_read(ripc__large *lg, int sock, uint64_t max_message)
{
    for (;;) {
        if (lg->err)
            return lg->err;
        if (lg->bye)
            return 1;
        long n = read_hdr(lg, sock);
        if (n == -EPROTO)
            lg->err = -EPROTO;
        if (n <= 0)
            return (int)n;
        if ((lg->hdr_len += (size_t)n) < RIPC_FRAME_HDR)
            continue;
        lg->hdr_len = 0;
        ripc__frame f;
        int rc = ripc__frame_decode_as(lg->hdr, &f, max_message, RIPC_PASS_INBAND);
        if (rc == 0 && f.ftype == RIPC_FRAME_BYE && lg->hdr_fd < 0) {
            lg->bye = 1;
            continue;
        }
        /* Windows: the frame names its buffer; nothing came attached. */
        if (RIPC_PASS_INBAND && rc == 0 && f.ftype == RIPC_FRAME_LARGE && lg->hdr_fd < 0 &&
            f.len != 0 && lg->in_n < RIPC_LARGE_SLOTS)
            rc = ripc__pass_borrow(lg->pass, f.handle, &lg->hdr_fd);
        if (rc < 0 || f.ftype != RIPC_FRAME_LARGE || lg->hdr_fd < 0 || f.len == 0 ||
            lg->in_n == RIPC_LARGE_SLOTS) {
            close_fd(&lg->hdr_fd);
            return lg->err = -EPROTO;
        }
        ripc__large_in *in = &lg->in[(lg->in_head + lg->in_n) % RIPC_LARGE_SLOTS];
        in->fd = lg->hdr_fd;
        in->f = f;
        lg->hdr_fd = -1;
        lg->in_n++;
    }
}

/*
 * Kept mappings. A sender's pool sends the same few buffers again and again
 * (src/large.h): mapping each message afresh costs a mmap, the populating of
 * every page and a munmap, and the reader then takes a TLB miss on every
 * page of new addresses. Keeping the mapping of a sealed buffer (it cannot
 * shrink: no SIGBUS) is safe for as long as we like; what the sender writes
 * into it later is what it could write while we read anyway. A kept
 * mapping keeps its descriptor: a descriptor the peer sends is of the same
 * buffer when it is the same open file (kcmp(2); an inode number is no
 * proof, the kernel's internal tmpfs may reuse one while the file lives).
 * Where that cannot be told, nothing is kept. Kept bytes
 * are bounded as the sender's idle buffers are (RIPC_LARGE_KEEP); a buffer
 * the sender drops has its pages freed by the sender's hole punch, mapped
 * here or not.
 */

/* The kept mapping of fd's file that holds at least want bytes, moved out
 * of the kept list into lent; 0 if there is none. */
static int unkeep(ripc__large *lg, int fd, uint64_t want)
{
    for (int i = 0; i < RIPC_LARGE_SLOTS && lg->kept[i].seg.base; i++) {
        ripc__large_kept *k = &lg->kept[i];
        if (k->seg.len < want || ripc__segment_same_file(k->seg.fd, fd) != 1)
            continue;
        lg->lent = k->seg;
        memmove(k, k + 1, (size_t)(RIPC_LARGE_SLOTS - 1 - i) * sizeof *k);
        ripc__large_kept *last = &lg->kept[RIPC_LARGE_SLOTS - 1];
        memset(last, 0, sizeof *last);
        last->seg.fd = -1;
        return 1;
    }
    return 0;
}

/* Put lent at the head of the kept list, dropping any older mapping of the
 * same file and, from the least recently used, whatever exceeds the
 * bound. */
static void keep(ripc__large *lg)
{
    size_t total = lg->lent.len;
    int n = 0;
    ripc__large_kept next = {.seg = lg->lent};
    for (int i = 0; i < RIPC_LARGE_SLOTS; i++) {
        ripc__large_kept k = lg->kept[i];
        if (!k.seg.base)
            continue;
        if (n + 1 < RIPC_LARGE_SLOTS && total + k.seg.len <= RIPC_LARGE_KEEP &&
            ripc__segment_same_file(k.seg.fd, next.seg.fd) != 1) {
            total += k.seg.len;
            lg->kept[n++] = k; /* n <= i: nothing unread is overwritten */
        } else {
            ripc__segment_close(&k.seg);
        }
    }
    for (int i = RIPC_LARGE_SLOTS - 1; i > 0; i--)
        lg->kept[i] = i <= n ? lg->kept[i - 1] : (ripc__large_kept){.seg.fd = -1};
    lg->kept[0] = next;
    memset(&lg->lent, 0, sizeof lg->lent);
    lg->lent.fd = -1;
}

int ripc__large_take(ripc__large *lg, int sock, uint64_t max_message, uint16_t type, uint8_t kind,
                     uint64_t id, const void *marker, size_t marker_len, const void **data,
                     uint64_t *len)
{
    if (lg->lent.base) { /* peeked again before release: the same payload */
        *data = lg->lent.base;
        *len = lg->lent_len;
        return 0;
    }
    uint64_t want;
    if (lg->bad_take || marker_len != RIPC_MARKER_BYTES)
        return -EPROTO;
    memcpy(&want, marker, sizeof want);
    if (want == 0 || want > max_message || want > SIZE_MAX)
        return -EPROTO;
    if (lg->in_n == 0)
        ripc__large_read(lg, sock, max_message); /* a broken stream stays broken */
    if (lg->in_n == 0)
        return -EPROTO; /* the frame was sent before the marker: it must be here */
    ripc__large_in *in = &lg->in[lg->in_head];
    lg->in_head = (lg->in_head + 1) % RIPC_LARGE_SLOTS;
    lg->in_n--;
    int fd = in->fd;
    in->fd = -1;
    int rc = -EPROTO;
    if (in->f.type == type && in->f.kind == kind && in->f.id == id && in->f.len == want) {
        if (unkeep(lg, fd, want)) {
            rc = 0;
            lg->lent_keep = 1;
        } else {
            rc = ripc__segment_map_payload(&lg->lent, fd, (size_t)want, NULL, 0);
            /* Only a sealed buffer is kept: any other may be cut under us
             * (then its guard stays with it only while it is lent). */
            lg->lent_keep = rc == 0 && lg->lent.backend == RIPC_SEG_MEMFD &&
                            lg->lent.guard == NULL && lg->lent.len <= RIPC_LARGE_KEEP &&
                            ripc__segment_same_file(fd, fd) == 1;
            if (lg->lent_keep) {
                lg->lent.fd = fd; /* closed with the mapping */
                fd = -1;
            }
        }
    }
    if (rc == 0)
        ripc__fd_close(fd); /* the mapping holds the file: not its last reference */
    else
        ripc__fd_dispose(fd);
    if (rc < 0) {
        /* The frame is gone: a retry must not pair this marker with the
         * next one. Our own lack of memory stays -ENOMEM for the caller. */
        lg->bad_take = 1;
        return rc == -ENOMEM ? -ENOMEM : -EPROTO;
    }
    lg->lent_len = want;
    *data = lg->lent.base;
    *len = want;
    return 0;
}

int ripc__large_done(ripc__large *lg)
{
    if (!lg->lent.base)
        return 0; /* the common case: the message was in the ring */
    /* Cut under us while it was read (an unsealed buffer: shm/segment.h):
     * the reader saw zeros, and the peer has broken the rules. */
    int cut = lg->lent.base && ripc__segment_faulted(&lg->lent);
    if (lg->lent.base && lg->lent_keep && !cut)
        keep(lg);
    else
        ripc__segment_close(&lg->lent);
    if (cut)
        lg->bad_take = 1;
    return cut ? -EPROTO : 0;
}

/* ---- sending ---- */

/* Free a buffer's pages whoever still holds its descriptor (a peer may
 * keep it; a memfd's seals allow punching holes, and so does an shm_open
 * object, on tmpfs), then close it. */
static void drop_buf(ripc__large *lg, ripc__large_buf *x)
{
    uncount(lg, x);
#if defined(FALLOC_FL_PUNCH_HOLE) && defined(FALLOC_FL_KEEP_SIZE)
    if (x->seg.base && x->seg.fd >= 0)
        (void)fallocate((int)x->seg.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
                        (off_t)x->seg.len);
#endif
    ripc__segment_close(&x->seg);
}

void ripc__large_punch_out(ripc__large *lg)
{
    for (int i = 0; i < RIPC_LARGE_SLOTS; i++)
        drop_buf(lg, &lg->out[i]);
}

int ripc__large_in_flight(const ripc__large *lg, ripc_ring *tx, uint64_t *pos)
{
    int any = 0;
    for (int i = 0; i < RIPC_LARGE_SLOTS; i++) {
        const ripc__large_buf *x = &lg->out[i];
        if (!x->busy || ripc__ring_consumed(tx, x->until))
            continue;
        if (!any || (int64_t)(x->until - *pos) > 0)
            *pos = x->until;
        any = 1;
    }
    return any;
}

static size_t idle_bytes(const ripc__large *lg)
{
    size_t n = 0;
    for (int i = 0; i < RIPC_LARGE_SLOTS; i++)
        if (lg->out[i].seg.base && !lg->out[i].busy)
            n += lg->out[i].seg.len;
    return n;
}

int ripc__large_get(ripc__large *lg, ripc_ring *tx, uint64_t len, ripc__large_buf **b,
                    uint64_t *wait_pos)
{
    ripc__large_buf *fit = NULL, *spare = NULL, *oldest = NULL;
    for (int i = 0; i < RIPC_LARGE_SLOTS; i++) {
        ripc__large_buf *x = &lg->out[i];
        if (x->busy && ripc__ring_consumed(tx, x->until)) {
            /* Back from the consumer: keep it only within the idle budgets,
             * this channel's and the shared one. */
            if (x->seg.len > RIPC_LARGE_KEEP || idle_bytes(lg) + x->seg.len > RIPC_LARGE_KEEP ||
                !count(lg, x))
                drop_buf(lg, x);
            x->busy = 0;
        }
        if (x->busy) {
            if (!oldest || (int64_t)(x->until - oldest->until) < 0)
                oldest = x;
        } else if (x->seg.base && x->seg.len >= len) {
            if (!fit || x->seg.len < fit->seg.len)
                fit = x;
        } else if (!spare || (spare->seg.base && !x->seg.base)) {
            spare = x; /* prefer an empty slot over a too-small buffer */
        }
    }
    if (fit) {
        *b = fit;
        return 0;
    }
    /* A fresh buffer costs far more than waiting for one in flight (new
     * pages: about 4 us each here, against 1.4 ms to fill 16 MiB): within
     * the budget, wait for a buffer to come back rather than grow the pool. */
    size_t held = 0;
    for (int i = 0; i < RIPC_LARGE_SLOTS; i++)
        if (lg->out[i].seg.base && &lg->out[i] != spare)
            held += lg->out[i].seg.len;
    if (!spare || (oldest && len <= RIPC_LARGE_KEEP && held + len > RIPC_LARGE_KEEP)) {
        *wait_pos = oldest->until;
        return -EAGAIN;
    }
    drop_buf(lg, spare);
    /* Round up so that a stream of slightly different sizes reuses one. */
    uint64_t cap = (len + 0xFFFFu) & ~(uint64_t)0xFFFFu;
    if (cap > SIZE_MAX)
        return -ENOMEM;
    /* A sealed memfd where there is one; else shm_open, which the peer maps
     * under its fault guard (docs/design.md, Large messages). */
    int rc = ripc__segment_create(&spare->seg, (size_t)cap, RIPC_SEG_DEFAULT, NULL, 0);
    if (rc < 0)
        return rc == -EINVAL ? -ENOMEM : rc;
    *b = spare;
    return 0;
}

void ripc__large_sent(ripc__large *lg, ripc__large_buf *b, uint64_t until)
{
    uncount(lg, b); /* in flight: no longer idle */
    b->busy = 1;
    b->until = until;
}

int ripc__large_send_frame(ripc__large *lg, int sock, const ripc__frame *f,
                           const ripc__large_buf *b)
{
    uint64_t val;
    int rc = ripc__pass_lend(lg->pass, b->seg.fd, &val);
    if (rc < 0)
        return rc;
    ripc__frame lf = *f;
    lf.handle = (uint32_t)val; /* a handle value fits 32 bits (platform/pass.h) */
    uint8_t hdr[RIPC_FRAME_HDR];
    ripc__frame_encode(hdr, &lf);
    long n = ripc__pass_try_send_one(lg->pass, sock, hdr, sizeof hdr, b->seg.fd, val);
    if (n == (long)sizeof hdr)
        return 0;
    /* An honest peer has at most RIPC_LARGE_SLOTS small frames unread:
     * a socket too full for one more (or for all of this one) means it
     * takes markers without reading their frames. Never wait for it (we
     * may hold a send lock). */
    return n >= 0 || n == -EAGAIN ? -EPROTO : -EPIPE;
}
