/* SPDX-License-Identifier: MIT */
/*
 * The receiving side's kept mappings of large-message buffers (src/large.h):
 * a buffer the sender's pool sends again is read through the mapping kept
 * from its last message, with the bytes the sender wrote since; a longer
 * message in the same buffer is mapped again; kept bytes stay within
 * RIPC_LARGE_KEEP; a buffer that is not sealed (shm_open) is never kept.
 * Frames and descriptors go through a real socketpair, as from a peer.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "src/large.h"
#include "support/support.h"

#define MIB  ((uint64_t)1 << 20)
#define TYPE 7

struct rx {
    int sp[2]; /* [0] the sender's end, [1] the receiver's */
    ripc__large lg;
    uint64_t id;
};

static void rx_open(struct rx *r)
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, r->sp), 0);
    ripc__large_init(&r->lg);
    r->id = 0;
}

static void rx_close(struct rx *r)
{
    ripc__large_free(&r->lg);
    close(r->sp[0]);
    close(r->sp[1]);
}

/* A memfd backend, and a way to tell a file sent again (kcmp(2)): without
 * it nothing is kept. */
static void need(int backend, const char *what)
{
    if (!ripc__segment_supported(backend)) {
        print_message("SKIP: no %s here\n", what);
        skip();
    }
    int rc = ripc__segment_same_file(STDERR_FILENO, STDERR_FILENO);
    if (rc != 1) {
        print_message("SKIP: kcmp(2) cannot tell files apart here (%d): nothing is kept\n", rc);
        skip();
    }
}

/* A sender's buffer of cap bytes. */
static void buf_open(ripc__large_buf *b, size_t cap, int backend)
{
    memset(b, 0, sizeof *b);
    assert_int_equal(ripc__segment_create(&b->seg, cap, backend, NULL, 0), 0);
}

/* A receiving side and one sealed buffer of cap bytes to send it. */
static void open_memfd(struct rx *r, ripc__large_buf *b, size_t cap)
{
    need(RIPC_SEG_MEMFD, "memfd");
    rx_open(r);
    buf_open(b, cap, RIPC_SEG_MEMFD);
}

/* Write len bytes of c into b, send its frame, take the message on the
 * receiving side and check every byte: the payload as handed out. */
static const unsigned char *send_take(struct rx *r, ripc__large_buf *b, uint64_t len, int c)
{
    memset(b->seg.base, c, (size_t)len);
    uint64_t id = ++r->id;
    ripc__frame f = {
        .ftype = RIPC_FRAME_LARGE, .kind = RIPC_KIND_ONEWAY, .type = TYPE, .id = id, .len = len};
    ripc__large tx; /* the sending side: its descriptor goes attached */
    ripc__large_init(&tx);
    assert_int_equal(ripc__large_send_frame(&tx, r->sp[0], &f, b), 0);
    const void *data;
    uint64_t got;
    assert_int_equal(ripc__large_take(&r->lg, r->sp[1], 64 * MIB, TYPE, RIPC_KIND_ONEWAY, id, &len,
                                      sizeof len, &data, &got),
                     0);
    assert_int_equal(got, len);
    const unsigned char *p = data;
    for (uint64_t i = 0; i < len; i += 4096)
        assert_int_equal(p[i], c);
    assert_int_equal(p[len - 1], c);
    /* Peeked again before release: the same payload and length. */
    const void *again;
    assert_int_equal(ripc__large_take(&r->lg, r->sp[1], 64 * MIB, TYPE, RIPC_KIND_ONEWAY, id, &len,
                                      sizeof len, &again, &got),
                     0);
    assert_ptr_equal(again, data);
    assert_int_equal(got, len);
    return p;
}

static int kept(const struct rx *r, size_t *bytes)
{
    int n = 0;
    *bytes = 0;
    for (int i = 0; i < RIPC_LARGE_SLOTS; i++)
        if (r->lg.kept[i].seg.base) {
            n++;
            *bytes += r->lg.kept[i].seg.len;
        }
    return n;
}

/* The same sealed buffer twice: the second message is read through the
 * first one's mapping (no new mapping), and shows the new bytes. */
static void test_large_keep_same_buffer(void **state)
{
    (void)state;
    struct rx r;
    ripc__large_buf b;
    size_t bytes;
    open_memfd(&r, &b, MIB);

    const unsigned char *first = send_take(&r, &b, MIB, 'a');
    assert_int_equal(ripc__large_done(&r.lg), 0);
    assert_int_equal(kept(&r, &bytes), 1);
    assert_int_equal(bytes, MIB);

    const unsigned char *second = send_take(&r, &b, MIB / 2, 'b');
    assert_ptr_equal(second, first);
    assert_int_equal(kept(&r, &bytes), 0); /* lent, not kept, while it is read */
    assert_int_equal(ripc__large_done(&r.lg), 0);
    assert_int_equal(kept(&r, &bytes), 1);

    ripc__segment_close(&b.seg);
    rx_close(&r);
    assert_int_equal(kept(&r, &bytes), 0);
}

/* A message longer than the kept mapping of its buffer maps it again; the
 * shorter mapping is dropped, not kept beside it. */
static void test_large_keep_longer_maps_again(void **state)
{
    (void)state;
    struct rx r;
    ripc__large_buf b;
    size_t bytes;
    open_memfd(&r, &b, 4 * MIB);

    send_take(&r, &b, MIB, 'a');
    assert_int_equal(ripc__large_done(&r.lg), 0);
    send_take(&r, &b, 4 * MIB, 'b');
    assert_int_equal(ripc__large_done(&r.lg), 0);
    assert_int_equal(kept(&r, &bytes), 1);
    assert_int_equal(bytes, 4 * MIB);

    ripc__segment_close(&b.seg);
    rx_close(&r);
}

/* Three 12 MiB buffers: at most RIPC_LARGE_KEEP (32 MiB) stay kept, the
 * least recently used goes first; the one sent again is kept again. */
static void test_large_keep_bounded(void **state)
{
    (void)state;
    need(RIPC_SEG_MEMFD, "memfd");
    struct rx r;
    ripc__large_buf b[3];
    size_t bytes;
    rx_open(&r);
    for (int i = 0; i < 3; i++) {
        buf_open(&b[i], 12 * MIB, RIPC_SEG_MEMFD);
        send_take(&r, &b[i], 12 * MIB, 'a' + i);
        assert_int_equal(ripc__large_done(&r.lg), 0);
        assert_true(kept(&r, &bytes) <= 2);
        assert_true(bytes <= RIPC_LARGE_KEEP);
    }
    /* b[1] and b[2] are kept; b[0] was dropped and is mapped anew, which
     * drops b[1], now the least recently used. */
    assert_int_equal(kept(&r, &bytes), 2);
    const unsigned char *p2 = send_take(&r, &b[2], 12 * MIB, 'z');
    assert_int_equal(ripc__large_done(&r.lg), 0);
    send_take(&r, &b[0], 12 * MIB, 'y');
    assert_int_equal(ripc__large_done(&r.lg), 0);
    assert_int_equal(kept(&r, &bytes), 2);
    assert_ptr_equal(send_take(&r, &b[2], 12 * MIB, 'x'), p2);
    assert_int_equal(ripc__large_done(&r.lg), 0);

    for (int i = 0; i < 3; i++)
        ripc__segment_close(&b[i].seg);
    rx_close(&r);
}

/* A buffer the sender could cut under us (shm_open: no seals) is read
 * under the fault guard and unmapped after its message. */
static void test_large_keep_not_unsealed(void **state)
{
    (void)state;
    need(RIPC_SEG_SHM_OPEN, "shm_open");
    struct rx r;
    ripc__large_buf b;
    size_t bytes;
    rx_open(&r);
    buf_open(&b, MIB, RIPC_SEG_SHM_OPEN);
    send_take(&r, &b, MIB, 'a');
    assert_int_equal(ripc__large_done(&r.lg), 0);
    assert_int_equal(kept(&r, &bytes), 0);
    ripc__segment_close(&b.seg);
    rx_close(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_large_keep_same_buffer),
        cmocka_unit_test(test_large_keep_longer_maps_again),
        cmocka_unit_test(test_large_keep_bounded),
        cmocka_unit_test(test_large_keep_not_unsealed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
