/* SPDX-License-Identifier: MIT */
/*
 * POSIX shared-memory segments (contract: shm/segment.h).
 *
 * Ownership rule used throughout: a segment owns its descriptor only while it
 * holds a mapping. create/map never return success without a mapping, and
 * close_fd keeps the mapping but drops the fd (fd = -1). So a segment with
 * base == NULL never owns a descriptor, whatever its fd field says; this is
 * what makes close() safe on a zero-initialised struct, whose fd is 0 (a
 * valid descriptor we must not close).
 */
#include "shm/why.h"
#include "shm/segment.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#ifdef __linux__
#include <sys/vfs.h>
#define RIPC_TMPFS_MAGIC 0x01021994 /* linux/magic.h TMPFS_MAGIC */
#endif
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/kcmp.h>
#include <sys/syscall.h>
#endif

#if defined(__linux__) && defined(__has_include)
#if __has_include(<sys/random.h>)
#include <sys/random.h>
#define RIPC_HAVE_GETRANDOM 1
#endif
#endif

/* Largest value an off_t holds (off_t is signed; 32 or 64 bits). */
#define SEG_OFF_MAX ((uint64_t)(((uint64_t)1 << (sizeof(off_t) * CHAR_BIT - 1)) - 1))

static void seg_reset(ripc__segment *seg)
{
    seg->base = NULL;
    seg->len = 0;
    seg->fd = -1;
    seg->backend = RIPC_SEG_DEFAULT;
    seg->guard = NULL;
}

#define set_why ripc__set_why

static int check_len(size_t len, char *why, size_t why_len)
{
    if (len == 0 || (uint64_t)len > RIPC_SEG_MAX) {
        set_why(why, why_len, 0, "segment length %zu out of range (1..%llu)", len,
                (unsigned long long)RIPC_SEG_MAX);
        return -EINVAL;
    }
    if ((uint64_t)len > SEG_OFF_MAX) {
        set_why(why, why_len, 0, "segment length %zu does not fit off_t", len);
        return -EINVAL;
    }
    return 0;
}

static int map_rw(int fd, size_t len, void **out, char *why, size_t why_len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        int err = errno;
        set_why(why, why_len, err, "mmap(%zu)", len);
        return -err;
    }
    *out = p;
    return 0;
}

/* ---------------------------------------------------------------- memfd */

#ifdef RIPC_HAVE_MEMFD
static int memfd_open(char *why, size_t why_len)
{
    int fd = memfd_create("ringipc", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
        int err = errno;
        set_why(why, why_len, err, "memfd_create");
        return -err;
    }
    return fd;
}

static int create_memfd(ripc__segment *seg, size_t len, char *why, size_t why_len)
{
    void *p = NULL;
    int err;
    int fd = memfd_open(why, why_len);
    if (fd < 0)
        return fd;
    if (ftruncate(fd, (off_t)len) != 0) {
        err = errno;
        set_why(why, why_len, err, "ftruncate(%zu)", len);
        goto fail;
    }
    /* Sealed before anyone else can see the fd: the peer that maps it can
     * rely on the size never changing under its mapping (no SIGBUS). */
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
        err = errno;
        set_why(why, why_len, err, "fcntl(F_ADD_SEALS)");
        goto fail;
    }
    err = -map_rw(fd, len, &p, why, why_len);
    if (err != 0)
        goto fail;
    seg->base = p;
    seg->len = len;
    seg->fd = fd;
    seg->backend = RIPC_SEG_MEMFD;
    return 0;
fail:
    close(fd);
    return -err;
}
#endif

/* ------------------------------------------------------------- shm_open */

#ifdef RIPC_HAVE_SHM_OPEN
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/* Unpredictable enough that another local user cannot pre-create the name;
 * O_EXCL catches collisions anyway, so the weak fallback is only a DoS risk. */
static uint64_t random64(void)
{
    static atomic_uint_fast64_t counter;
    uint64_t v = 0;
    struct timespec ts;
    int fd;

#ifdef RIPC_HAVE_GETRANDOM
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) == (ssize_t)sizeof v)
        return v;
#endif
    fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, &v, sizeof v);
        close(fd);
        if (n == (ssize_t)sizeof v)
            return v;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    v = mix64((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    v ^= mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32));
    v ^= mix64(atomic_fetch_add(&counter, 1) + (uint64_t)(uintptr_t)&v);
    return mix64(v);
}

/* Create a fresh object under a random name and unlink it at once; from then
 * on only the descriptor refers to it. Returns the fd (close-on-exec). */
static int shm_open_unlinked(char *why, size_t why_len)
{
    char name[64];
    int fd = -1, err = EEXIST, flags;

    for (int tries = 0; tries < 8 && fd < 0; tries++) {
        snprintf(name, sizeof name, "/ringipc-%ld-%016llx", (long)getpid(),
                 (unsigned long long)random64());
        fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
        if (fd < 0) {
            err = errno;
            if (err != EEXIST && err != EINTR)
                break;
        }
    }
    if (fd < 0) {
        set_why(why, why_len, err, "shm_open");
        return -err;
    }
    shm_unlink(name);
    /* glibc's shm_open already sets FD_CLOEXEC; POSIX does not promise it. */
    flags = fcntl(fd, F_GETFD);
    if (flags < 0 || (!(flags & FD_CLOEXEC) && fcntl(fd, F_SETFD, flags | FD_CLOEXEC) != 0)) {
        err = errno;
        close(fd);
        set_why(why, why_len, err, "fcntl(FD_CLOEXEC)");
        return -err;
    }
    return fd;
}

static int create_shm(ripc__segment *seg, size_t len, char *why, size_t why_len)
{
    void *p = NULL;
    int err;
    int fd = shm_open_unlinked(why, why_len);
    if (fd < 0)
        return fd;
    if (ftruncate(fd, (off_t)len) != 0) {
        err = errno;
        set_why(why, why_len, err, "ftruncate(%zu)", len);
        goto fail;
    }
#ifdef __linux__
    /* /dev/shm is a size-limited tmpfs (64 MiB in many containers) and
     * ftruncate does not reserve pages: without this a full /dev/shm shows
     * up later as SIGBUS on first touch instead of -ENOSPC here. */
    err = posix_fallocate(fd, 0, (off_t)len);
    if (err != 0 && err != EOPNOTSUPP && err != EINVAL) {
        set_why(why, why_len, err, "posix_fallocate(%zu)", len);
        goto fail;
    }
#endif
    err = -map_rw(fd, len, &p, why, why_len);
    if (err != 0)
        goto fail;
    /* Whoever we hand the descriptor to can truncate the object under our
     * mapping (no seals here): a fault in it must not kill us. */
    err = -ripc__fault_guard_add(p, len, &seg->guard);
    if (err != 0) {
        set_why(why, why_len, err, "SIGBUS guard for an unsealable segment");
        munmap(p, len);
        goto fail;
    }
    seg->base = p;
    seg->len = len;
    seg->fd = fd;
    seg->backend = RIPC_SEG_SHM_OPEN;
    return 0;
fail:
    close(fd);
    return -err;
}
#endif

/* ---------------------------------------------------------------- public */

/* The order RIPC_SEG_DEFAULT tries the backends in: the preferred one, then
 * the other as a fallback where both are built in (a seccomp filter may
 * refuse memfd_create, /dev/shm may be missing or read-only). */
static int default_order(int order[2])
{
#if defined(RIPC_HAVE_MEMFD) && defined(RIPC_HAVE_SHM_OPEN)
#ifdef RIPC_SEGMENT_DEFAULT_SHM_OPEN
    order[0] = RIPC_SEG_SHM_OPEN;
    order[1] = RIPC_SEG_MEMFD;
#else
    order[0] = RIPC_SEG_MEMFD;
    order[1] = RIPC_SEG_SHM_OPEN;
#endif
    return 2;
#elif defined(RIPC_HAVE_MEMFD)
    order[0] = RIPC_SEG_MEMFD;
    return 1;
#else
    order[0] = RIPC_SEG_SHM_OPEN; /* reported unsupported below if missing */
    return 1;
#endif
}

#if defined(RIPC_HAVE_MEMFD) || defined(RIPC_HAVE_SHM_OPEN)
/* Open (and close) one descriptor of the kind asked for. The cache holds
 * 0 = not probed yet, 1 = usable, 2 = not usable; only definite answers are
 * kept: running out of descriptors or memory says nothing about the OS. */
static int probe(atomic_int *cache, int (*open_fn)(char *, size_t))
{
    int v = atomic_load_explicit(cache, memory_order_relaxed);
    int fd;

    if (v != 0)
        return v == 1;
    fd = open_fn(NULL, 0);
    if (fd >= 0) {
        close(fd);
        v = 1;
    } else if (fd == -EMFILE || fd == -ENFILE || fd == -ENOMEM || fd == -EINTR) {
        return 1;
    } else {
        v = 2;
    }
    atomic_store_explicit(cache, v, memory_order_relaxed);
    return v == 1;
}
#endif

/* The first backend in default order that is usable here, or 0. */
static int first_usable(void)
{
    int order[2], n = default_order(order);
    for (int i = 0; i < n; i++)
        if (ripc__segment_supported(order[i]))
            return order[i];
    return 0;
}

int ripc__segment_supported(int backend)
{
    if (backend == RIPC_SEG_DEFAULT)
        return first_usable() != 0;
    switch (backend) {
#ifdef RIPC_HAVE_MEMFD
    case RIPC_SEG_MEMFD: {
        static atomic_int cache;
        return probe(&cache, memfd_open);
    }
#endif
#ifdef RIPC_HAVE_SHM_OPEN
    case RIPC_SEG_SHM_OPEN: {
        static atomic_int cache;
        return probe(&cache, shm_open_unlinked);
    }
#endif
    default:
        return 0;
    }
}

const char *ripc__segment_backend_name(int backend)
{
    if (backend == RIPC_SEG_DEFAULT) {
        /* What a create would use now; the preferred one when none works. */
        int order[2];
        default_order(order);
        backend = first_usable();
        if (backend == 0)
            backend = order[0];
    }
    switch (backend) {
    case RIPC_SEG_MEMFD:
        return "memfd";
    case RIPC_SEG_SHM_OPEN:
        return "shm_open";
    case RIPC_SEG_WIN32:
        return "win32";
    default:
        return "unknown";
    }
}

static int create_one(ripc__segment *seg, size_t len, int backend, char *why, size_t why_len)
{
    int rc;

    switch (backend) {
    case RIPC_SEG_MEMFD:
#ifdef RIPC_HAVE_MEMFD
        rc = create_memfd(seg, len, why, why_len);
#else
        set_why(why, why_len, 0, "memfd segments not built in");
        rc = -EOPNOTSUPP;
#endif
        break;
    case RIPC_SEG_SHM_OPEN:
#ifdef RIPC_HAVE_SHM_OPEN
        rc = create_shm(seg, len, why, why_len);
#else
        set_why(why, why_len, 0, "shm_open segments not built in");
        rc = -EOPNOTSUPP;
#endif
        break;
    case RIPC_SEG_WIN32:
        set_why(why, why_len, 0, "win32 segments exist only on Windows");
        rc = -EOPNOTSUPP;
        break;
    default:
        set_why(why, why_len, 0, "unknown segment backend %d", backend);
        rc = -EINVAL;
        break;
    }
    if (rc != 0)
        seg_reset(seg);
    return rc;
}

/* Each backend in default order until one works. Any failure moves on: the
 * step that failed may be specific to the backend (memfd_create refused by
 * seccomp, a read-only /dev/shm), and when both fail, why holds both lines
 * ("memfd_create: ...; shm_open: ...") and the error is the last one's. */
static int create_default(ripc__segment *seg, size_t len, char *why, size_t why_len)
{
    int order[2], n = default_order(order), rc = -EOPNOTSUPP;
    size_t used = 0;

    for (int i = 0; i < n; i++) {
        char one[RIPC_SEG_WHY_LEN] = "";
        rc = create_one(seg, len, order[i], one, sizeof one);
        if (rc == 0) {
            if (why != NULL && why_len > 0)
                why[0] = '\0';
            return 0;
        }
        if (why != NULL && used < why_len) {
            int k = snprintf(why + used, why_len - used, "%s%s", i > 0 ? "; " : "", one);
            used += k > 0 ? (size_t)k : 0;
        }
    }
    return rc;
}

/* Every call that fills a segment begins with an empty why and a closed seg. */
static int start(ripc__segment *seg, char *why, size_t why_len)
{
    if (why != NULL && why_len > 0)
        why[0] = '\0';
    if (seg == NULL) {
        set_why(why, why_len, 0, "no segment given");
        return -EINVAL;
    }
    seg_reset(seg);
    return 0;
}

int ripc__segment_create(ripc__segment *seg, size_t len, int backend, char *why, size_t why_len)
{
    int rc;

    if ((rc = start(seg, why, why_len)) != 0)
        return rc;
    rc = check_len(len, why, why_len);
    if (rc != 0)
        return rc;
    if (backend == RIPC_SEG_DEFAULT)
        return create_default(seg, len, why, why_len);
    return create_one(seg, len, backend, why, why_len);
}

/*
 * Which kind of object is fd, and may we map it? Returns the backend or
 * -errno. Linux answers F_GET_SEALS for every shmem file, not just memfds:
 * a shm_open object in /dev/shm reports F_SEAL_SEAL (it can never be sealed),
 * and so does a memfd created without MFD_ALLOW_SEALING. Only the link name
 * ("/memfd:...") tells those two apart; if /proc is not there we cannot, and
 * call it shm_open, which makes no promise about shrinking.
 */
static int classify(int fd, char *why, size_t why_len)
{
#ifdef F_GET_SEALS
    int seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0) {
        int err = errno;
        if (err == EINVAL)
            return RIPC_SEG_SHM_OPEN; /* not a sealable file: shm_open elsewhere */
        set_why(why, why_len, err, "fcntl(F_GET_SEALS)");
        return -err;
    }
    if (seals & F_SEAL_SHRINK)
        return RIPC_SEG_MEMFD;
    if (!(seals & F_SEAL_SEAL)) {
        set_why(why, why_len, 0, "memfd is not sealed against shrinking");
        return -EPERM;
    }
#ifdef __linux__
    {
        char path[32], link[16];
        ssize_t n;
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        n = readlink(path, link, sizeof link);
        if (n >= 7 && memcmp(link, "/memfd:", 7) == 0) {
            set_why(why, why_len, 0, "memfd cannot be sealed against shrinking");
            return -EPERM;
        }
    }
#endif
#else
    (void)fd;
    (void)why;
    (void)why_len;
#endif
    return RIPC_SEG_SHM_OPEN;
}

int ripc__segment_map(ripc__segment *seg, intptr_t fd, size_t len, char *why, size_t why_len)
{
    struct stat st;
    void *p = NULL;
    int rc, kind;

    if ((rc = start(seg, why, why_len)) != 0)
        return rc;
    if (fd < 0 || fd > INT_MAX) {
        set_why(why, why_len, 0, "bad descriptor %lld", (long long)fd);
        return -EINVAL;
    }
    rc = check_len(len, why, why_len);
    if (rc != 0)
        return rc;
    /* A descriptor that is not open is a bad argument too (-EINVAL, as the
     * header promises), not something the peer did to the segment. */
    if (fstat((int)fd, &st) != 0) {
        int err = errno;
        set_why(why, why_len, err, "fstat(fd %d)", (int)fd);
        return err == EBADF ? -EINVAL : -err;
    }
    if (st.st_size < 0 || (uint64_t)st.st_size != (uint64_t)len) {
        set_why(why, why_len, 0, "segment is %lld bytes, expected %zu", (long long)st.st_size, len);
        return -EPROTO;
    }
    kind = classify((int)fd, why, why_len);
    if (kind < 0)
        return kind;
    rc = map_rw((int)fd, len, &p, why, why_len);
    if (rc != 0)
        return rc;
    seg->base = p;
    seg->len = len;
    seg->fd = fd;
    seg->backend = kind;
    return 0;
}

/* Is the object behind fd sealed against shrinking? Only a memfd can be. */
static int sealed_against_shrink(int fd)
{
#ifdef F_GET_SEALS
    int seals = fcntl(fd, F_GET_SEALS);
    return seals >= 0 && (seals & F_SEAL_SHRINK);
#else
    (void)fd;
    return 0;
#endif
}

int ripc__segment_map_payload(ripc__segment *seg, intptr_t fd, size_t len, char *why,
                              size_t why_len)
{
    struct stat st;
    int rc;

    if (why != NULL && why_len > 0)
        why[0] = '\0';
    seg_reset(seg);
    if (fd < 0 || fd > INT_MAX)
        return -EINVAL;
    rc = check_len(len, why, why_len);
    if (rc != 0)
        return rc;
#if defined(__linux__) && defined(F_GET_SEALS)
    /* First a question the kernel answers alone: only shmem (tmpfs, memfd)
     * and hugetlbfs files have seals. fstat and fstatfs below may wait for
     * a file system's server (FUSE, NFS), and the peer chose the file. */
    if (fcntl((int)fd, F_GET_SEALS) < 0) {
        set_why(why, why_len, 0, "payload descriptor is not on tmpfs");
        return -EPERM;
    }
#endif
    if (fstat((int)fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        set_why(why, why_len, 0, "payload descriptor is not a regular file");
        return -EPERM;
    }
#ifdef __linux__
    /* Only tmpfs (memfd, /dev/shm): its pages never wait for a device or a
     * server (a file on a stuck FUSE or NFS mount would hold the reader in
     * a page fault), and hugetlbfs, which honours seals, faults with SIGBUS
     * on a hole punched after we mapped it. */
    struct statfs sf;
    if (fstatfs((int)fd, &sf) != 0 || sf.f_type != RIPC_TMPFS_MAGIC) {
        set_why(why, why_len, 0, "payload descriptor is not on tmpfs");
        return -EPERM;
    }
#endif
    if (st.st_size < 0 || (uint64_t)st.st_size < (uint64_t)len) {
        set_why(why, why_len, 0, "payload segment is %lld bytes, message says %zu",
                (long long)st.st_size, len);
        return -EPROTO;
    }
    int sealed = sealed_against_shrink((int)fd);
    int flags = MAP_SHARED;
#ifdef MAP_POPULATE
    flags |= MAP_POPULATE; /* one call instead of a fault per page */
#endif
    void *p = mmap(NULL, len, PROT_READ, flags, (int)fd, 0);
    if (p == MAP_FAILED) {
        int err = errno;
        set_why(why, why_len, err, "mmap(%zu)", len);
        return -err;
    }
    /* Unsealed: the sender may truncate it under us from now on (even the
     * pages just populated go with it). Nothing here touches the mapping
     * before the guard covers it. */
    if (!sealed && (rc = ripc__fault_guard_add(p, len, &seg->guard)) != 0) {
        set_why(why, why_len, -rc, "SIGBUS guard for an unsealed payload");
        munmap(p, len);
        return rc;
    }
    seg->base = p;
    seg->len = len;
    seg->fd = -1;
    seg->backend = sealed ? RIPC_SEG_MEMFD : RIPC_SEG_SHM_OPEN;
    return 0;
}

int ripc__segment_same_file(intptr_t a, intptr_t b)
{
#if defined(__linux__) && defined(SYS_kcmp)
    if (a < 0 || a > INT_MAX || b < 0 || b > INT_MAX)
        return -EINVAL;
    pid_t me = getpid();
    long r = syscall(SYS_kcmp, me, me, KCMP_FILE, (unsigned long)a, (unsigned long)b);
    return r < 0 ? -errno : r == 0;
#else
    (void)a;
    (void)b;
    return -ENOTSUP;
#endif
}

void ripc__segment_close_fd(ripc__segment *seg)
{
    if (seg == NULL)
        return;
    /* base == NULL: closed or zeroed, owns no descriptor (see top of file). */
    if (seg->base != NULL && seg->fd >= 0)
        close((int)seg->fd);
    seg->fd = -1;
}

void ripc__segment_close(ripc__segment *seg)
{
    if (seg == NULL)
        return;
    if (seg->base != NULL) {
        /* Out of the guard's table first: the handler must never map over
         * an address that is no longer ours. */
        ripc__fault_guard_remove(seg->guard);
        munmap(seg->base, seg->len);
        if (seg->fd >= 0)
            close((int)seg->fd);
    }
    seg_reset(seg);
}
