/* SPDX-License-Identifier: MIT */
/*
 * A ring across two processes on Windows: the child produces a stream of
 * records into a section it got by DuplicateHandle, the parent consumes
 * and checks every byte and the order. Both sides sleep on event doorbells
 * through the ring's eventcount (shm/ring_internal.h), unchanged from
 * Linux: the consumer when the ring is empty, the producer when it is full
 * (a small ring, so both happen often). A lost wake-up hangs the test.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "platform/win32.h"
#include "ringipc/ring.h"
#include "shm/doorbell.h"
#include "shm/ring_internal.h"
#include "shm/ring_layout.h"
#include "shm/segment.h"
#include "windows/win_support.h"

#define CAPACITY 4096
#define RECORDS  100000
#define MAX_LEN  700
#define WAIT_MS  30000

static size_t rec_len(uint64_t n)
{
    return (size_t)((n * 2654435761u) >> 7) % (MAX_LEN + 1);
}

static unsigned char rec_byte(uint64_t n, size_t i)
{
    return (unsigned char)(n * 7 + i * 13);
}

/* Child: the producer. */
static int child_produce(HANDLE in, HANDLE out)
{
    intptr_t seg_h = (intptr_t)win_get(in);
    size_t seg_len = (size_t)win_get(in);
    int data_bell = (int)win_get(in);  /* we ring it */
    int space_bell = (int)win_get(in); /* we wait on it */
    int parent = (int)win_get(in);
    ripc__segment seg;
    WCHECK_EQ(ripc__segment_map(&seg, seg_h, seg_len, NULL, 0), 0);
    ripc_ring *r;
    WCHECK_EQ(ripc_ring_attach(&r, seg.base, seg_len, RIPC_RING_PRODUCER), 0);
    ripc__doorbell data, space;
    WCHECK_EQ(ripc__doorbell_adopt(&data, RIPC_DB_EVENT, -1, data_bell, NULL), 0);
    WCHECK_EQ(ripc__doorbell_adopt(&space, RIPC_DB_EVENT, space_bell, -1, NULL), 0);
    win_put(out, 1);
    for (uint64_t n = 0; n < RECORDS; n++) {
        size_t len = rec_len(n);
        void *buf;
        int rc;
        while ((rc = ripc_ring_reserve(r, len, &buf)) == -EAGAIN) {
            if (ripc__ring_arm_producer(r, len, RIPC_SLEEP_BELL) == 1)
                continue; /* room came while arming */
            rc = ripc__doorbell_wait(&space, 0, parent, WAIT_MS);
            if (rc != 1)
                ripc__ring_disarm_producer(r);
            WCHECK_EQ(rc, 1);
        }
        WCHECK_EQ(rc, 0);
        unsigned char *p = buf;
        for (size_t i = 0; i < len; i++)
            p[i] = rec_byte(n, i);
        if (ripc__ring_commit_wake(r, len) != 0)
            ripc__doorbell_ring(&data);
    }
    WCHECK_EQ(win_get(in), 2); /* the parent has it all */
    ripc_ring_detach(r);
    ripc__segment_close(&seg);
    ripc__doorbell_close(&data);
    ripc__doorbell_close(&space);
    return 0;
}

static void stream(void)
{
    size_t len = ripc_ring_size(CAPACITY);
    ripc__segment seg;
    WCHECK_EQ(ripc__segment_create(&seg, len, RIPC_SEG_DEFAULT, NULL, 0), 0);
    WCHECK_EQ(ripc_ring_format(seg.base, len, CAPACITY), 0);
    ripc_ring *r;
    WCHECK_EQ(ripc_ring_attach(&r, seg.base, len, RIPC_RING_CONSUMER), 0);
    ripc__doorbell data, space;
    WCHECK_EQ(ripc__doorbell_open(&data, RIPC_DB_EVENT, NULL), 0);
    WCHECK_EQ(ripc__doorbell_open(&space, RIPC_DB_EVENT, NULL), 0);
    win_child c;
    win_child_start(&c, "produce");
    win_put(c.to, win_give(&c, ripc__fd_to_handle(seg.fd),
                           FILE_MAP_READ | FILE_MAP_WRITE | SECTION_QUERY));
    win_put(c.to, len);
    win_put(c.to, win_give(&c, ripc__fd_to_handle(data.ring_fd), EVENT_MODIFY_STATE));
    win_put(c.to, win_give(&c, ripc__fd_to_handle(space.wait_fd), SYNCHRONIZE));
    win_put(c.to, win_give(&c, GetCurrentProcess(), SYNCHRONIZE));
    WCHECK_EQ(win_get(c.from), 1);
    int watch = ripc__handle_to_fd(c.process);
    long sleeps = 0;
    for (uint64_t n = 0; n < RECORDS; n++) {
        const void *buf;
        size_t got;
        int rc;
        while ((rc = ripc_ring_peek(r, &buf, &got)) == -EAGAIN) {
            if (ripc__ring_arm_consumer(r) == 1)
                continue; /* data came while arming */
            rc = ripc__doorbell_wait(&data, 0, watch, WAIT_MS);
            if (rc != 1)
                ripc__ring_disarm_consumer(r);
            WCHECK_EQ(rc, 1);
            sleeps++;
        }
        WCHECK_EQ(rc, 0);
        WCHECK_EQ(got, rec_len(n));
        const unsigned char *p = buf;
        for (size_t i = 0; i < got; i++)
            if (p[i] != rec_byte(n, i))
                WCHECK_EQ(p[i], rec_byte(n, i));
        ripc_ring_release(r);
        if (ripc__ring_space_wake(r) != 0)
            ripc__doorbell_ring(&space);
    }
    const void *buf;
    size_t got;
    WCHECK_EQ(ripc_ring_peek(r, &buf, &got), -EAGAIN);
    win_put(c.to, 2);
    WCHECK_EQ(win_child_end(&c, WAIT_MS), 0);
    printf("  %d records, the consumer slept %ld times\n", RECORDS, sleeps);
    ripc_ring_detach(r);
    ripc__segment_close(&seg);
    ripc__doorbell_close(&data);
    ripc__doorbell_close(&space);
}

int main(int argc, char **argv)
{
    const char *role;
    HANDLE in, out;
    if (win_child_args(argc, argv, &role, &in, &out)) {
        if (strcmp(role, "produce") == 0)
            return child_produce(in, out);
        return 2;
    }
    win_case("ring_stream_across_processes", stream);
    return 0;
}
