/* SPDX-License-Identifier: MIT */
/*
 * Segments on Windows (shm/segment_win32.c): create, size, map in another
 * process through a duplicated handle, the size check, payload mappings
 * of what a peer hands over (file-backed and reserved sections refused).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "platform/win32.h"
#include "shm/segment.h"
#include "windows/win_support.h"

#define PEER_ACCESS (FILE_MAP_READ | FILE_MAP_WRITE | SECTION_QUERY)

static unsigned char pattern(size_t i, unsigned seed)
{
    return (unsigned char)(i * 131u + seed);
}

static void create_sizes(void)
{
    static const size_t sizes[] = {1, 4095, 4096, 65536 + 3, (size_t)1 << 24};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        ripc__segment seg;
        char why[RIPC_SEG_WHY_LEN];
        WCHECK_EQ(ripc__segment_create(&seg, sizes[k], RIPC_SEG_DEFAULT, why, sizeof why), 0);
        WCHECK_EQ(why[0], '\0');
        WCHECK_EQ(seg.backend, RIPC_SEG_WIN32);
        WCHECK_EQ(seg.len, sizes[k]);
        WCHECK(seg.base != NULL && seg.fd >= 0 && seg.guard == NULL);
        WCHECK(!ripc__segment_faulted(&seg));
        /* Zero-filled, writable end to end. */
        unsigned char *b = seg.base;
        for (size_t i = 0; i < sizes[k]; i += 977)
            WCHECK_EQ(b[i], 0);
        WCHECK_EQ(b[sizes[k] - 1], 0);
        b[0] = 1;
        b[sizes[k] - 1] = 2;
        /* Not inheritable: the counterpart of close-on-exec. */
        DWORD flags = 0;
        WCHECK(GetHandleInformation(ripc__fd_to_handle(seg.fd), &flags));
        WCHECK_EQ(flags & HANDLE_FLAG_INHERIT, 0);
        ripc__segment_close_fd(&seg);
        WCHECK_EQ(seg.fd, -1);
        WCHECK_EQ(b[sizes[k] - 1], 2); /* the mapping outlives the handle */
        ripc__segment_close(&seg);
        WCHECK(seg.base == NULL && seg.fd == -1);
        ripc__segment_close(&seg); /* twice: a no-op */
    }
}

static void create_refused(void)
{
    ripc__segment seg;
    char why[RIPC_SEG_WHY_LEN];
    WCHECK_EQ(ripc__segment_create(&seg, 0, RIPC_SEG_DEFAULT, why, sizeof why), -EINVAL);
    WCHECK(seg.base == NULL && seg.fd == -1);
    WCHECK_EQ(
        ripc__segment_create(&seg, (size_t)RIPC_SEG_MAX + 1, RIPC_SEG_DEFAULT, why, sizeof why),
        -EINVAL);
    WCHECK_EQ(ripc__segment_create(&seg, 4096, RIPC_SEG_MEMFD, why, sizeof why), -EOPNOTSUPP);
    WCHECK(strstr(why, "memfd") != NULL);
    WCHECK_EQ(ripc__segment_create(&seg, 4096, RIPC_SEG_SHM_OPEN, NULL, 0), -EOPNOTSUPP);
    WCHECK_EQ(ripc__segment_create(&seg, 4096, 42, NULL, 0), -EINVAL);
    WCHECK(ripc__segment_supported(RIPC_SEG_DEFAULT) && ripc__segment_supported(RIPC_SEG_WIN32));
    WCHECK(!ripc__segment_supported(RIPC_SEG_MEMFD));
    WCHECK_EQ(strcmp(ripc__segment_backend_name(RIPC_SEG_DEFAULT), "win32"), 0);
    /* More than the commit limit allows: an error, not a crash. */
    int rc = ripc__segment_create(&seg, (size_t)RIPC_SEG_MAX, RIPC_SEG_DEFAULT, why, sizeof why);
    if (rc == 0)
        ripc__segment_close(&seg);
    else
        WCHECK(rc == -ENOMEM || rc == -ENOSPC || rc == -EINVAL || rc == -EIO);
}

/* The child maps what the parent made, checks it, answers in it. */
static int child_map(HANDLE in, HANDLE out)
{
    intptr_t h = (intptr_t)win_get(in);
    size_t len = (size_t)win_get(in);
    ripc__segment seg;
    char why[RIPC_SEG_WHY_LEN];
    /* Wrong sizes first: refused, the handle still ours. */
    WCHECK_EQ(ripc__segment_map(&seg, h, len + 1, why, sizeof why), -EPROTO);
    WCHECK(strstr(why, "expected") != NULL);
    WCHECK_EQ(ripc__segment_map(&seg, h, len - 4096, NULL, 0), -EPROTO);
    WCHECK_EQ(ripc__segment_map(&seg, h, len, why, sizeof why), 0);
    unsigned char *b = seg.base;
    for (size_t i = 0; i < len; i++)
        if (b[i] != pattern(i, 7))
            WCHECK_EQ(b[i], pattern(i, 7));
    for (size_t i = 0; i < len; i++)
        b[i] = pattern(i, 11);
    ripc__segment_close(&seg);
    win_put(out, 1);
    return 0;
}

static void map_in_child(void)
{
    const size_t len = 3 * 65536 + 4096;
    ripc__segment seg;
    WCHECK_EQ(ripc__segment_create(&seg, len, RIPC_SEG_DEFAULT, NULL, 0), 0);
    unsigned char *b = seg.base;
    for (size_t i = 0; i < len; i++)
        b[i] = pattern(i, 7);
    win_child c;
    win_child_start(&c, "map");
    win_put(c.to, win_give(&c, ripc__fd_to_handle(seg.fd), PEER_ACCESS));
    win_put(c.to, len);
    WCHECK_EQ(win_get(c.from), 1);
    WCHECK_EQ(win_child_end(&c, 30000), 0);
    for (size_t i = 0; i < len; i++)
        if (b[i] != pattern(i, 11))
            WCHECK_EQ(b[i], pattern(i, 11));
    ripc__segment_close(&seg);
}

static void map_bad_handles(void)
{
    ripc__segment seg;
    char why[RIPC_SEG_WHY_LEN];
    WCHECK_EQ(ripc__segment_map(&seg, -1, 4096, NULL, 0), -EINVAL);
    /* An event is not a section. */
    HANDLE ev = CreateEventW(NULL, FALSE, FALSE, NULL);
    WCHECK(ev != NULL);
    WCHECK_EQ(ripc__segment_map(&seg, (intptr_t)ev, 4096, why, sizeof why), -EINVAL);
    WCHECK_EQ(ripc__segment_map_payload(&seg, (intptr_t)ev, 4096, why, sizeof why), -EINVAL);
    WCHECK(seg.base == NULL);
    CloseHandle(ev);
}

static void payload(void)
{
    const size_t len = 100000;
    ripc__segment seg, pay;
    char why[RIPC_SEG_WHY_LEN];
    WCHECK_EQ(ripc__segment_create(&seg, len, RIPC_SEG_DEFAULT, NULL, 0), 0);
    memset(seg.base, 0x5a, len);
    /* A prefix of it, read-only; the handle stays the caller's. */
    WCHECK_EQ(ripc__segment_map_payload(&pay, seg.fd, len - 10, why, sizeof why), 0);
    WCHECK_EQ(pay.fd, -1);
    WCHECK_EQ(((unsigned char *)pay.base)[len - 11], 0x5a);
    MEMORY_BASIC_INFORMATION mi;
    WCHECK(VirtualQuery(pay.base, &mi, sizeof mi) != 0);
    WCHECK_EQ(mi.Protect, PAGE_READONLY);
    ripc__segment_close(&pay);
    /* Past its last page (a section has whole pages: up to the page's end
     * is still inside it). */
    WCHECK_EQ(ripc__segment_map_payload(&pay, seg.fd, len + 65536, why, sizeof why), -EPROTO);
    WCHECK_EQ(ripc__segment_map_payload(&pay, seg.fd, 0, NULL, 0), -EINVAL);
    ripc__segment_close(&seg);

    /* Reserved, not committed: its pages would fault. */
    HANDLE r = CreateFileMappingW(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE | SEC_RESERVE, 0,
                                  65536, NULL);
    WCHECK(r != NULL);
    WCHECK_EQ(ripc__segment_map_payload(&pay, (intptr_t)r, 65536, why, sizeof why), -EPERM);
    WCHECK_EQ(ripc__segment_map(&pay, (intptr_t)r, 65536, NULL, 0), -EPERM);
    CloseHandle(r);

    /* Backed by a file (which could sit on a share that goes away). */
    char dir[MAX_PATH], path[MAX_PATH];
    WCHECK(GetTempPathA(sizeof dir, dir) > 0);
    WCHECK(GetTempFileNameA(dir, "rip", 0, path) != 0);
    HANDLE f = CreateFileA(path, GENERIC_READ | GENERIC_WRITE, 0, NULL, CREATE_ALWAYS,
                           FILE_ATTRIBUTE_TEMPORARY | FILE_FLAG_DELETE_ON_CLOSE, NULL);
    WCHECK(f != INVALID_HANDLE_VALUE);
    HANDLE fm = CreateFileMappingW(f, NULL, PAGE_READWRITE, 0, 65536, NULL);
    WCHECK(fm != NULL);
    WCHECK_EQ(ripc__segment_map_payload(&pay, (intptr_t)fm, 65536, why, sizeof why), -EPERM);
    WCHECK(strstr(why, "file") != NULL);
    CloseHandle(fm);
    CloseHandle(f);
}

int main(int argc, char **argv)
{
    const char *role;
    HANDLE in, out;
    if (win_child_args(argc, argv, &role, &in, &out)) {
        if (strcmp(role, "map") == 0)
            return child_map(in, out);
        return 2;
    }
    win_case("segment_create_sizes", create_sizes);
    win_case("segment_create_refused", create_refused);
    win_case("segment_map_in_child", map_in_child);
    win_case("segment_map_bad_handles", map_bad_handles);
    win_case("segment_payload", payload);
    return 0;
}
