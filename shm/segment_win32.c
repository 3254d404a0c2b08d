/* SPDX-License-Identifier: MIT */
/*
 * Windows shared-memory segments (contract: shm/segment.h): a section on
 * the paging file (CreateFileMapping with INVALID_HANDLE_VALUE), unnamed,
 * committed and sized once at creation. The handle is not inheritable; a
 * peer gets it by DuplicateHandle into its process (platform/win32.h), with
 * FILE_MAP_READ | FILE_MAP_WRITE | SECTION_QUERY and nothing more.
 *
 * What a peer can do to a section it was given: nothing that reaches our
 * mapping. A section never shrinks while a view of it exists, and without
 * SECTION_EXTEND_SIZE it cannot be grown either, so a view never faults:
 * the counterpart of a sealed memfd, and no fault guard is needed.
 *
 * What a section we were given must be, before we map it: a section whose
 * size is what the peer says (NtQuerySection, ntdll's, present in every
 * Windows since NT and in wine; it may report the size rounded up to whole
 * pages, the unit a section really has, so len rounded up agrees too), not backed by a file (a file
 * on a share that goes away makes reads fault: a paging-file section cannot), and committed (a
 * SEC_RESERVE section's pages fault until the peer commits them).
 */
#include "shm/segment.h"

#include <errno.h>
#include <stdio.h>

#include "platform/win32.h"
#include "shm/why.h"

/* SectionBasicInformation (class 0) of NtQuerySection. */
typedef struct {
    PVOID base;
    ULONG attributes; /* SEC_* */
    LARGE_INTEGER size;
} section_basic;
typedef LONG(WINAPI *nt_query_section_fn)(HANDLE, int, PVOID, SIZE_T, PSIZE_T);

static nt_query_section_fn nt_query_section(void)
{
    static nt_query_section_fn fn;
    static volatile LONG looked;
    if (!looked) {
        HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
        FARPROC p = ntdll ? GetProcAddress(ntdll, "NtQuerySection") : NULL;
        /* Two threads may look at once: both find the same address. */
        fn = (nt_query_section_fn)(void (*)(void))p;
        InterlockedExchange(&looked, 1);
    }
    return fn;
}

static void seg_reset(ripc__segment *seg)
{
    seg->base = NULL;
    seg->len = 0;
    seg->fd = -1;
    seg->backend = RIPC_SEG_DEFAULT;
    seg->guard = NULL;
}

static int seg_fail(char *why, size_t why_len, const char *step, DWORD err)
{
    ripc__set_why(why, why_len, 0, "%s: Windows error %lu", step, (unsigned long)err);
    return ripc__win32_errno(err);
}

int ripc__segment_supported(int backend)
{
    return backend == RIPC_SEG_DEFAULT || backend == RIPC_SEG_WIN32;
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
    if (why != NULL && why_len > 0)
        why[0] = '\0';
    if (seg == NULL)
        return -EINVAL;
    seg_reset(seg);
    if (len == 0 || (uint64_t)len > RIPC_SEG_MAX) {
        ripc__set_why(why, why_len, 0, "segment size %zu out of range", len);
        return -EINVAL;
    }
    if (backend == RIPC_SEG_MEMFD || backend == RIPC_SEG_SHM_OPEN) {
        ripc__set_why(why, why_len, 0, "%s: not on Windows", ripc__segment_backend_name(backend));
        return -EOPNOTSUPP;
    }
    if (backend != RIPC_SEG_DEFAULT && backend != RIPC_SEG_WIN32)
        return -EINVAL;
    uint64_t size = len;
    /* SEC_COMMIT: charged against the commit limit now, so no page can
     * fail later; the pages read as zeros. No name, no inheritance. */
    HANDLE h = CreateFileMappingW(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE | SEC_COMMIT,
                                  (DWORD)(size >> 32), (DWORD)size, NULL);
    if (h == NULL)
        return seg_fail(why, why_len, "CreateFileMapping", GetLastError());
    void *base = MapViewOfFile(h, FILE_MAP_READ | FILE_MAP_WRITE, 0, 0, len);
    if (base == NULL) {
        int rc = seg_fail(why, why_len, "MapViewOfFile", GetLastError());
        CloseHandle(h);
        return rc;
    }
    seg->base = base;
    seg->len = len;
    seg->fd = (intptr_t)h;
    seg->backend = RIPC_SEG_WIN32;
    return 0;
}

static uint64_t page_round(uint64_t len)
{
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    uint64_t page = si.dwPageSize ? si.dwPageSize : 4096;
    return (len + page - 1) / page * page;
}

/* Is every page of [base, base + len) committed and readable? */
static int committed(const void *base, size_t len)
{
    const char *p = base, *end = (const char *)base + len;
    while (p < end) {
        MEMORY_BASIC_INFORMATION mi;
        if (VirtualQuery(p, &mi, sizeof mi) == 0 || mi.State != MEM_COMMIT ||
            (mi.Protect & (PAGE_NOACCESS | PAGE_GUARD)) != 0)
            return 0;
        p = (const char *)mi.BaseAddress + mi.RegionSize;
    }
    return 1;
}

/* Check a section from a peer (header comment); its size into *size. */
static int check_section(HANDLE h, uint64_t *size, char *why, size_t why_len)
{
    nt_query_section_fn q = nt_query_section();
    if (q == NULL) {
        ripc__set_why(why, why_len, 0, "NtQuerySection: not found");
        return -ENOSYS;
    }
    section_basic sb;
    SIZE_T got = 0;
    LONG st = q(h, 0, &sb, sizeof sb, &got);
    if (st < 0) {
        /* Not a section, or no SECTION_QUERY right. */
        ripc__set_why(why, why_len, 0, "NtQuerySection: status 0x%08lx", (unsigned long)st);
        return -EINVAL;
    }
    if (sb.attributes & (SEC_FILE | SEC_IMAGE)) {
        ripc__set_why(why, why_len, 0, "section is backed by a file");
        return -EPERM;
    }
    if (sb.attributes & SEC_RESERVE) {
        ripc__set_why(why, why_len, 0, "section is reserved, not committed");
        return -EPERM;
    }
    *size = (uint64_t)sb.size.QuadPart;
    return 0;
}

/* What map and map_payload both do first: reset seg, check the arguments
 * and the section (header comment); its size into *size. */
static int begin_map(ripc__segment *seg, intptr_t fd, size_t len, uint64_t *size, char *why,
                     size_t why_len)
{
    if (why != NULL && why_len > 0)
        why[0] = '\0';
    if (seg == NULL)
        return -EINVAL;
    seg_reset(seg);
    if (ripc__fd_to_handle(fd) == NULL || len == 0 || (uint64_t)len > RIPC_SEG_MAX)
        return -EINVAL;
    return check_section(ripc__fd_to_handle(fd), size, why, why_len);
}

int ripc__segment_map(ripc__segment *seg, intptr_t fd, size_t len, char *why, size_t why_len)
{
    uint64_t size;
    int rc = begin_map(seg, fd, len, &size, why, why_len);
    if (rc < 0)
        return rc;
    if (size != len && size != page_round(len)) {
        ripc__set_why(why, why_len, 0, "segment is %llu bytes, expected %zu",
                      (unsigned long long)size, len);
        return -EPROTO;
    }
    void *base = MapViewOfFile(ripc__fd_to_handle(fd), FILE_MAP_READ | FILE_MAP_WRITE, 0, 0, len);
    if (base == NULL)
        return seg_fail(why, why_len, "MapViewOfFile", GetLastError());
    seg->base = base;
    seg->len = len;
    seg->fd = fd;
    seg->backend = RIPC_SEG_WIN32;
    return 0;
}

int ripc__segment_map_payload(ripc__segment *seg, intptr_t fd, size_t len, char *why,
                              size_t why_len)
{
    uint64_t size;
    int rc = begin_map(seg, fd, len, &size, why, why_len);
    if (rc < 0)
        return rc;
    if (size < len) {
        ripc__set_why(why, why_len, 0, "payload segment is %llu bytes, expected %zu",
                      (unsigned long long)size, len);
        return -EPROTO;
    }
    void *base = MapViewOfFile(ripc__fd_to_handle(fd), FILE_MAP_READ, 0, 0, len);
    if (base == NULL)
        return seg_fail(why, why_len, "MapViewOfFile", GetLastError());
    if (!committed(base, len)) {
        UnmapViewOfFile(base);
        ripc__set_why(why, why_len, 0, "payload segment has pages not committed");
        return -EPERM;
    }
    seg->base = base;
    seg->len = len;
    seg->fd = -1; /* never ours: the caller closes its handle */
    seg->backend = RIPC_SEG_WIN32;
    return 0;
}

/* Not told here: every payload is mapped for its own message (src/large.c
 * keeps none). */
int ripc__segment_same_file(intptr_t a, intptr_t b)
{
    (void)a;
    (void)b;
    return -ENOTSUP;
}

void ripc__segment_close_fd(ripc__segment *seg)
{
    if (seg == NULL)
        return;
    HANDLE h = ripc__fd_to_handle(seg->fd);
    if (h != NULL)
        CloseHandle(h);
    seg->fd = -1;
}

void ripc__segment_close(ripc__segment *seg)
{
    if (seg == NULL)
        return;
    if (seg->base != NULL)
        UnmapViewOfFile(seg->base);
    ripc__segment_close_fd(seg);
    seg_reset(seg);
}
