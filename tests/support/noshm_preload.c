/* LD_PRELOAD shim for the fallback tests: this process cannot have shared
 * memory. memfd_create and shm_open fail as on a system without them, and a
 * shared mapping of a descriptor fails as with a full or missing tmpfs.
 * Anonymous and private mappings (malloc, the loader) keep working.
 * With RIPC_NOSHM=memfd only memfd_create fails (as under a seccomp profile
 * that refuses it); shm_open and mmap are the real ones. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>

static int only_memfd(void)
{
    const char *m = getenv("RIPC_NOSHM");
    return m != NULL && strcmp(m, "memfd") == 0;
}

int memfd_create(const char *name, unsigned int flags)
{
    (void)name;
    (void)flags;
    errno = ENOSYS;
    return -1;
}

int shm_open(const char *name, int oflag, mode_t mode)
{
    if (only_memfd()) {
        int (*real)(const char *, int, mode_t) =
            (int (*)(const char *, int, mode_t))dlsym(RTLD_NEXT, "shm_open");
        if (real != NULL)
            return real(name, oflag, mode);
    }
    errno = EACCES;
    return -1;
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    static void *(*real)(void *, size_t, int, int, int, off_t);
    if (fd >= 0 && (flags & MAP_SHARED) && !only_memfd()) {
        errno = ENODEV;
        return MAP_FAILED;
    }
    if (!real)
        real = (void *(*)(void *, size_t, int, int, int, off_t))dlsym(RTLD_NEXT, "mmap");
    return real(addr, len, prot, flags, fd, off);
}
