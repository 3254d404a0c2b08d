/* SPDX-License-Identifier: MIT */
/*
 * Shared-memory segments: create, size and map a region another process can
 * map too, identified by a descriptor that travels over SCM_RIGHTS (POSIX) or
 * a duplicated HANDLE (Windows). No name ever outlives the creating call.
 *
 * Backends (one file per platform: segment_posix.c, segment_win32.c):
 *   RIPC_SEG_MEMFD     Linux memfd_create, sealed against shrink and grow
 *                      once sized (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL).
 *   RIPC_SEG_SHM_OPEN  shm_open with a random name, O_EXCL, mode 0600,
 *                      unlinked before the call returns. Cannot be sealed:
 *                      whoever holds the descriptor can truncate it, so the
 *                      creator's mapping is guarded (shm/fault_guard.h).
 *   RIPC_SEG_WIN32     CreateFileMapping (Windows).
 *   RIPC_SEG_DEFAULT   decided at run time: memfd first, then shm_open
 *                      when memfd fails (a seccomp filter refusing
 *                      memfd_create, an old kernel); the build option
 *                      RIPC_SEGMENT_DEFAULT=shm_open reverses the order.
 *                      Win32 on Windows. seg->backend says which was used.
 *
 * Failure to get shared memory returns a negative errno and fills `why` (when
 * given) with one line saying which step failed; the library uses that to
 * fall back to socket mode.
 *
 * What a peer can do to a segment it was given, and what that costs us: a
 * memfd cannot be shrunk or grown (seals), so our mapping never faults. A
 * shm_open segment can be truncated by the peer; our accesses to the part
 * cut off would raise SIGBUS. The creator's mapping of such a segment is
 * therefore registered with the fault guard: a fault in it, on any thread,
 * replaces the whole mapping by zero-filled private memory, the access
 * completes, and ripc__segment_faulted() turns true, so the owner drops that
 * peer (the master: -EPROTO). The process, and every other peer, carries on.
 * No check stands in front of any access. Where the guard cannot be
 * installed (a sanitizer keeping SIGBUS to itself), shm_open segments are
 * refused rather than handed out unguarded. Ring segments mapped from a peer
 * (ripc__segment_map) are not guarded: a worker maps only what its master
 * created. Payload segments (ripc__segment_map_payload) come from either
 * side and are guarded unless sealed.
 */
#ifndef RIPC_SHM_SEGMENT_H
#define RIPC_SHM_SEGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "shm/fault_guard.h"

enum {
    RIPC_SEG_DEFAULT = 0,
    RIPC_SEG_MEMFD = 1,
    RIPC_SEG_SHM_OPEN = 2,
    RIPC_SEG_WIN32 = 3,
};

/* Largest segment we agree to create or map (bytes). */
#define RIPC_SEG_MAX ((uint64_t)1 << 40)

typedef struct ripc__segment {
    void *base;                    /* mapping, NULL when closed */
    size_t len;                    /* mapped bytes */
    intptr_t fd;                   /* descriptor (POSIX fd, or Windows HANDLE); -1 when none */
    int backend;                   /* RIPC_SEG_* actually used */
    ripc__fault_guard_slot *guard; /* our mapping is guarded (shm_open); else NULL */
} ripc__segment;

/* Did the peer cut the segment under our mapping (which now reads as zeros)?
 * Never for a memfd. Any thread, while the segment is open; one load when
 * the segment is not guarded. */
static inline int ripc__segment_faulted(ripc__segment *seg)
{
    return seg->guard != NULL && ripc__fault_guard_hit(seg->guard);
}

#define RIPC_SEG_WHY_LEN 128

/* Is this backend compiled in and usable on this platform? (1/0). For
 * RIPC_SEG_DEFAULT: is either backend usable. The answer is probed once per
 * process (one descriptor opened and closed) and cached. */
int ripc__segment_supported(int backend);

/* Backend name for messages: "memfd", "shm_open", "win32", "unknown". For
 * RIPC_SEG_DEFAULT the name of the backend a create would use now (the
 * first usable one in order; the preferred one when none is usable). */
const char *ripc__segment_backend_name(int backend);

/*
 * Create a segment of len bytes (0 < len <= RIPC_SEG_MAX), size it, map it
 * read-write and zero-filled. On success seg owns the mapping and the
 * descriptor (close-on-exec). On failure seg is left closed (base NULL,
 * fd -1) and nothing is leaked. Returns 0, -EINVAL (len, backend),
 * -ENOSYS / -EOPNOTSUPP (backend missing), -EMFILE, -ENOMEM, -ENOSPC,
 * -EACCES, -ENOTSUP (shm_open: the fault guard cannot be installed) or
 * another -errno from the failing step. With RIPC_SEG_DEFAULT,
 * when every backend fails, the error is the last one tried and why holds
 * each backend's line joined by "; " (e.g. "memfd_create: Function not
 * implemented; shm_open: Read-only file system"); on success why is "".
 */
int ripc__segment_create(ripc__segment *seg, size_t len, int backend, char *why, size_t why_len);

/*
 * Map a segment received from a peer. Its size is checked with fstat and must
 * be exactly len; a memfd must carry F_SEAL_SHRINK (otherwise the peer could
 * truncate it under us and make us fault), so an unsealed memfd is -EPERM.
 * On success seg takes ownership of fd; on failure the caller still owns fd.
 * Returns 0, -EINVAL (bad fd/len), -EPROTO (size mismatch), -EPERM, -ENOMEM.
 */
int ripc__segment_map(ripc__segment *seg, intptr_t fd, size_t len, char *why, size_t why_len);

/*
 * Map, read-only and prefaulted, the first len bytes of a payload segment
 * received from a peer that may be hostile (large messages): a regular file
 * (on Linux: on tmpfs, which a memfd and an shm_open object are) of at
 * least len bytes. A memfd sealed against shrinking is mapped as it is; any
 * other object could be truncated under the mapping, so its mapping is
 * registered with the fault guard (seg->guard; ripc__segment_faulted tells
 * whether it was cut), like the creator's mapping of an shm_open segment.
 * Never takes ownership of fd (close it after the call; the mapping stays).
 * Returns 0, -EINVAL (len 0 or too large), -EPERM (not a regular file, not
 * on tmpfs), -EPROTO (smaller than len), -ENOMEM, -ENOTSUP (the guard
 * cannot be installed) or another -errno.
 */
int ripc__segment_map_payload(ripc__segment *seg, intptr_t fd, size_t len, char *why,
                              size_t why_len);

/*
 * Whether descriptors a and b are the same open file (the one a peer sends
 * again: SCM_RIGHTS passes the open file itself). 1 or 0; -errno where this
 * cannot be told (-ENOTSUP: Windows or not Linux; kcmp(2) refused by a
 * seccomp filter or missing from the kernel). An inode number is no proof:
 * the kernel's internal tmpfs may hand one out again while the first file
 * lives. Takes ownership of neither.
 */
int ripc__segment_same_file(intptr_t a, intptr_t b);

/* Close the descriptor but keep the mapping (after it was passed on). */
void ripc__segment_close_fd(ripc__segment *seg);

/* Unmap and close everything; safe on a closed or zeroed segment. */
void ripc__segment_close(ripc__segment *seg);

#endif /* RIPC_SHM_SEGMENT_H */
