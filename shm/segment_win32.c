/* SPDX-License-Identifier: MIT */
/*
 * Windows shared-memory segments (contract: shm/segment.h). Placeholder until
 * the CreateFileMapping backend lands: every create/map fails with -ENOSYS and
 * says so, which makes the library fall back to socket mode.
 */
#include "shm/segment.h"

#include <errno.h>
#include <stdio.h>

static int not_yet(ripc__segment *seg, char *why, size_t why_len)
{
    if (seg != NULL) {
        seg->base = NULL;
        seg->len = 0;
        seg->fd = -1;
        seg->backend = RIPC_SEG_DEFAULT;
        seg->guard = NULL;
    }
    if (why != NULL && why_len > 0)
        snprintf(why, why_len, "%s", "Windows segments not implemented yet");
    return -ENOSYS;
}

int ripc__segment_supported(int backend)
{
    (void)backend;
    return 0;
}

const char *ripc__segment_backend_name(int backend)
{
    switch (backend) {
    case RIPC_SEG_DEFAULT:
    case RIPC_SEG_WIN32:
        return "win32";
    case RIPC_SEG_MEMFD:
        return "memfd";
    case RIPC_SEG_SHM_OPEN:
        return "shm_open";
    default:
        return "unknown";
    }
}

int ripc__segment_create(ripc__segment *seg, size_t len, int backend, char *why, size_t why_len)
{
    (void)len;
    (void)backend;
    return not_yet(seg, why, why_len);
}

int ripc__segment_map(ripc__segment *seg, intptr_t fd, size_t len, char *why, size_t why_len)
{
    (void)fd;
    (void)len;
    return not_yet(seg, why, why_len);
}

int ripc__segment_map_payload(ripc__segment *seg, intptr_t fd, size_t len, char *why,
                              size_t why_len)
{
    (void)fd;
    (void)len;
    return not_yet(seg, why, why_len);
}

/* Nothing can be open yet: create/map never succeed. Reset to closed. */
void ripc__segment_close_fd(ripc__segment *seg)
{
    if (seg != NULL)
        seg->fd = -1;
}

void ripc__segment_close(ripc__segment *seg)
{
    if (seg != NULL) {
        seg->base = NULL;
        seg->len = 0;
        seg->fd = -1;
        seg->backend = RIPC_SEG_DEFAULT;
    }
}
