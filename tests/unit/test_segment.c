/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for shm/segment.h. Every backend-specific test runs once per
 * backend (names end in _memfd / _shm_open) and skips with a reason when that
 * backend is not usable here. Tests that fork check in the child with plain
 * code and report through the exit status (cmocka asserts must not run in a
 * child): 0 = fine, anything else names the failed check.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shm/segment.h"
#include "support/support.h"

#if defined(__linux__) && defined(MFD_ALLOW_SEALING) && defined(F_GET_SEALS)
#define TEST_HAVE_MEMFD 1
#endif

static int backend_memfd = RIPC_SEG_MEMFD;
static int backend_shm = RIPC_SEG_SHM_OPEN;

#define BACKEND_OF(state) (*(const int *)*(state))

/* Skip the current test (with a reason) when the backend is not usable. */
static void need(int backend)
{
    if (!ripc__segment_supported(backend)) {
        print_message("SKIP: %s segments are not supported here\n",
                      ripc__segment_backend_name(backend));
        skip();
    }
}

static int count_fds(void)
{
    return ripc_test_count_fds();
}

static int fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

static int all_zero(const void *p, size_t len)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < len; i++)
        if (b[i] != 0)
            return 0;
    return 1;
}

static void assert_closed(const ripc__segment *seg)
{
    assert_null(seg->base);
    assert_int_equal(seg->len, 0);
    assert_int_equal(seg->fd, -1);
}

static void create_ok(ripc__segment *seg, size_t len, int backend)
{
    char why[RIPC_SEG_WHY_LEN] = "";
    int rc = ripc__segment_create(seg, len, backend, why, sizeof why);
    if (rc != 0)
        print_message("create(%zu, %s): %d %s\n", len, ripc__segment_backend_name(backend), rc,
                      why);
    assert_int_equal(rc, 0);
    assert_non_null(seg->base);
    assert_int_equal(seg->len, len);
    assert_true(seg->fd >= 0);
    assert_int_equal(seg->backend, backend);
}

/* --------------------------------------------------------------- basics */

static void test_segment_roundtrip(void **state)
{
    int backend = BACKEND_OF(state);
    const size_t len = (1u << 20) + 4096;
    ripc__segment a, b;
    char why[RIPC_SEG_WHY_LEN];
    int fd2;

    need(backend);
    create_ok(&a, len, backend);
    ripc_test_fill(a.base, len, 1);

    fd2 = dup((int)a.fd);
    assert_true(fd2 >= 0);
    assert_int_equal(ripc__segment_map(&b, fd2, len, why, sizeof why), 0);
    assert_int_equal(b.fd, fd2);
    assert_int_equal(b.len, len);
    assert_int_equal(b.backend, backend);
    assert_ptr_not_equal(b.base, a.base);
    assert_true(ripc_test_check(b.base, len, 1));

    ripc_test_fill(b.base, len, 2);
    assert_true(ripc_test_check(a.base, len, 2));

    ripc__segment_close(&b);
    assert_closed(&b);
    assert_false(fd_is_open(fd2));
    assert_true(ripc_test_check(a.base, len, 2));
    ripc__segment_close(&a);
    assert_closed(&a);
}

static void test_segment_zero_fill(void **state)
{
    int backend = BACKEND_OF(state);
    const size_t sizes[] = {1, 7, 4095, 4096, 65537, (1u << 20) + 3};

    need(backend);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        ripc__segment s;
        struct stat st;
        create_ok(&s, sizes[i], backend);
        assert_int_equal(fstat((int)s.fd, &st), 0);
        assert_int_equal(st.st_size, (off_t)sizes[i]);
        assert_true(all_zero(s.base, sizes[i]));
        ripc__segment_close(&s);
    }
}

static void test_segment_cloexec(void **state)
{
    int backend = BACKEND_OF(state);
    ripc__segment s;
    int flags;

    need(backend);
    create_ok(&s, 4096, backend);
    flags = fcntl((int)s.fd, F_GETFD);
    assert_true(flags >= 0);
    assert_true(flags & FD_CLOEXEC);
    ripc__segment_close(&s);
}

static void test_segment_default_backend(void **state)
{
    ripc__segment s;
    char why[RIPC_SEG_WHY_LEN];
    int rc;

    (void)state;
    if (!ripc__segment_supported(RIPC_SEG_DEFAULT)) {
        print_message("SKIP: default backend %s not supported here\n",
                      ripc__segment_backend_name(RIPC_SEG_DEFAULT));
        skip();
    }
    rc = ripc__segment_create(&s, 8192, RIPC_SEG_DEFAULT, why, sizeof why);
    assert_int_equal(rc, 0);
    assert_true(s.backend == RIPC_SEG_MEMFD || s.backend == RIPC_SEG_SHM_OPEN);
    /* The name of DEFAULT is the name of what it resolves to. */
    assert_string_equal(ripc__segment_backend_name(RIPC_SEG_DEFAULT),
                        ripc__segment_backend_name(s.backend));
    print_message("default backend: %s\n", ripc__segment_backend_name(s.backend));
    ripc__segment_close(&s);
}

static void test_segment_backend_args(void **state)
{
    ripc__segment s;
    char why[RIPC_SEG_WHY_LEN];

    (void)state;
    assert_string_equal(ripc__segment_backend_name(RIPC_SEG_MEMFD), "memfd");
    assert_string_equal(ripc__segment_backend_name(RIPC_SEG_SHM_OPEN), "shm_open");
    assert_string_equal(ripc__segment_backend_name(RIPC_SEG_WIN32), "win32");
    assert_string_equal(ripc__segment_backend_name(42), "unknown");
    assert_int_equal(ripc__segment_supported(RIPC_SEG_WIN32), 0);
    assert_int_equal(ripc__segment_supported(42), 0);

    why[0] = '\0';
    assert_int_equal(ripc__segment_create(&s, 4096, 42, why, sizeof why), -EINVAL);
    assert_closed(&s);
    assert_true(why[0] != '\0');

    why[0] = '\0';
    assert_int_equal(ripc__segment_create(&s, 4096, RIPC_SEG_WIN32, why, sizeof why), -EOPNOTSUPP);
    assert_closed(&s);
    assert_true(why[0] != '\0');

    /* why is optional. */
    assert_int_equal(ripc__segment_create(&s, 0, RIPC_SEG_DEFAULT, NULL, 0), -EINVAL);
    assert_int_equal(ripc__segment_create(NULL, 4096, RIPC_SEG_DEFAULT, NULL, 0), -EINVAL);
}

/* ----------------------------------------------------------- per backend */

static void test_segment_memfd_sealed(void **state)
{
    (void)state;
#ifdef TEST_HAVE_MEMFD
    const size_t len = 65536;
    ripc__segment s;
    int seals;

    need(RIPC_SEG_MEMFD);
    create_ok(&s, len, RIPC_SEG_MEMFD);
    seals = fcntl((int)s.fd, F_GET_SEALS);
    assert_true(seals >= 0);
    assert_int_equal(seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL),
                     F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
    assert_false(seals & F_SEAL_WRITE);

    errno = 0;
    assert_int_equal(ftruncate((int)s.fd, len / 2), -1);
    assert_int_equal(errno, EPERM);
    errno = 0;
    assert_int_equal(ftruncate((int)s.fd, len * 2), -1);
    assert_int_equal(errno, EPERM);
    errno = 0;
    assert_int_equal(fcntl((int)s.fd, F_ADD_SEALS, F_SEAL_WRITE), -1);
    assert_int_equal(errno, EPERM);

    /* Still writable through the mapping. */
    ripc_test_fill(s.base, len, 3);
    assert_true(ripc_test_check(s.base, len, 3));
    ripc__segment_close(&s);
#else
    print_message("SKIP: memfd/F_GET_SEALS not available to the test\n");
    skip();
#endif
}

/* Entries in /dev/shm named by this process's shm_open backend, or -1. */
static int own_shm_names(void)
{
    char prefix[48];
    DIR *d = opendir("/dev/shm");
    struct dirent *e;
    int n = 0;
    size_t plen;

    if (d == NULL)
        return -1;
    snprintf(prefix, sizeof prefix, "ringipc-%ld-", (long)getpid());
    plen = strlen(prefix);
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, prefix, plen) == 0)
            n++;
    closedir(d);
    return n;
}

static void test_segment_shm_open_no_name(void **state)
{
    ripc__segment s[4];
    int before;

    (void)state;
    need(RIPC_SEG_SHM_OPEN);
    before = own_shm_names();
    if (before < 0) {
        print_message("SKIP: no /dev/shm to list\n");
        skip();
    }
    for (int i = 0; i < 4; i++)
        create_ok(&s[i], 4096 * (size_t)(i + 1), RIPC_SEG_SHM_OPEN);
    /* The name is gone while the segments live... */
    assert_int_equal(own_shm_names(), before);
#ifdef __linux__
    {
        char path[64], link[256];
        ssize_t n;
        snprintf(path, sizeof path, "/proc/self/fd/%d", (int)s[0].fd);
        n = readlink(path, link, sizeof link - 1);
        assert_true(n > 0);
        link[n] = '\0';
        assert_non_null(strstr(link, "(deleted)"));
    }
#endif
    for (int i = 0; i < 4; i++)
        ripc__segment_close(&s[i]);
    /* ...and after. */
    assert_int_equal(own_shm_names(), before);
}

/* A real fork: the child maps the inherited fd on its own (as a worker would
 * after SCM_RIGHTS), checks the parent's bytes and writes its own back. */
static void test_segment_fork_child_maps(void **state)
{
    int backend = BACKEND_OF(state);
    const size_t len = 256 * 1024;
    ripc__segment s;
    pid_t pid;

    need(backend);
    create_ok(&s, len, backend);
    ripc_test_fill(s.base, len / 2, 10);
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        ripc__segment c;
        char why[RIPC_SEG_WHY_LEN];
        unsigned char *p;
        /* Drop the inherited mapping so only the child's own one is used. */
        munmap(s.base, s.len);
        if (ripc__segment_map(&c, s.fd, len, why, sizeof why) != 0)
            _exit(10);
        if (c.backend != backend)
            _exit(11);
        p = c.base;
        if (!ripc_test_check(p, len / 2, 10))
            _exit(12);
        if (!all_zero(p + len / 2, len / 2))
            _exit(13);
        ripc_test_fill(p + len / 2, len / 2, 11);
        ripc__segment_close(&c);
        _exit(0);
    }
    assert_int_equal(ripc_test_wait(pid), 0);
    assert_true(ripc_test_check(s.base, len / 2, 10));
    assert_true(ripc_test_check((unsigned char *)s.base + len / 2, len / 2, 11));
    ripc__segment_close(&s);
}

static void test_segment_map_wrong_len(void **state)
{
    int backend = BACKEND_OF(state);
    const size_t len = 3 * 4096;
    const size_t wrong[] = {len - 1, len + 1, len - 4096, len + 4096, 1};
    ripc__segment s, m;
    char why[RIPC_SEG_WHY_LEN];

    need(backend);
    create_ok(&s, len, backend);
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        why[0] = '\0';
        assert_int_equal(ripc__segment_map(&m, s.fd, wrong[i], why, sizeof why), -EPROTO);
        assert_closed(&m);
        assert_true(why[0] != '\0');
        /* On failure the caller still owns the fd. */
        assert_true(fd_is_open((int)s.fd));
    }
    ripc__segment_close(&s);
}

#ifdef TEST_HAVE_MEMFD
/* A memfd of len bytes with exactly the given seals (and sealing allowed or not). */
static int make_memfd(size_t len, unsigned flags, int seals)
{
    int fd = memfd_create("ringipc-test", MFD_CLOEXEC | flags);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)len), 0);
    if (seals != 0)
        assert_int_equal(fcntl(fd, F_ADD_SEALS, seals), 0);
    return fd;
}
#endif

static void test_segment_map_unsealed_memfd(void **state)
{
    (void)state;
#ifdef TEST_HAVE_MEMFD
    const size_t len = 8192;
    const struct {
        unsigned flags;
        int seals;
        int want;
    } cases[] = {
        {MFD_ALLOW_SEALING, 0, -EPERM},                         /* sealable, left open */
        {0, 0, -EPERM},                                         /* can never be sealed */
        {MFD_ALLOW_SEALING, F_SEAL_GROW | F_SEAL_SEAL, -EPERM}, /* may still shrink */
        {MFD_ALLOW_SEALING, F_SEAL_SHRINK, 0},                  /* enough */
    };
    need(RIPC_SEG_MEMFD);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ripc__segment m;
        char why[RIPC_SEG_WHY_LEN] = "";
        int fd = make_memfd(len, cases[i].flags, cases[i].seals);
        int rc = ripc__segment_map(&m, fd, len, why, sizeof why);
        assert_int_equal(rc, cases[i].want);
        if (rc == 0) {
            assert_int_equal(m.backend, RIPC_SEG_MEMFD);
            ripc__segment_close(&m);
        } else {
            assert_closed(&m);
            assert_true(why[0] != '\0');
            assert_true(fd_is_open(fd));
            close(fd);
        }
    }
#else
    print_message("SKIP: memfd not available to the test\n");
    skip();
#endif
}

/* A descriptor that is negative, not open or out of int range is -EINVAL
 * (the header's "bad fd"), never -EBADF. Something open but not a segment
 * (a pipe) has the wrong size: -EPROTO. */
static void test_segment_map_bad_fd(void **state)
{
    ripc__segment m;
    char why[RIPC_SEG_WHY_LEN];
    int p[2], closed_fd;

    (void)state;
    why[0] = '\0';
    assert_int_equal(ripc__segment_map(&m, -1, 4096, why, sizeof why), -EINVAL);
    assert_closed(&m);
    assert_true(why[0] != '\0');

    closed_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(closed_fd >= 0);
    close(closed_fd);
    why[0] = '\0';
    assert_int_equal(ripc__segment_map(&m, closed_fd, 4096, why, sizeof why), -EINVAL);
    assert_closed(&m);
    assert_true(why[0] != '\0');

    assert_int_equal(ripc__segment_map(&m, (intptr_t)1 << 40, 4096, why, sizeof why), -EINVAL);
    assert_closed(&m);

    assert_int_equal(pipe(p), 0);
    assert_int_equal(ripc__segment_map(&m, p[0], 4096, why, sizeof why), -EPROTO);
    assert_closed(&m);
    assert_true(fd_is_open(p[0]));
    close(p[0]);
    close(p[1]);

    assert_int_equal(ripc__segment_map(NULL, 0, 4096, NULL, 0), -EINVAL);
}

static void test_segment_size_limits(void **state)
{
    int backend = BACKEND_OF(state);
    const size_t bad[] = {0, (size_t)RIPC_SEG_MAX + 1, SIZE_MAX};
    ripc__segment s, m;
    char why[RIPC_SEG_WHY_LEN];

    need(backend);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = '\0';
        assert_int_equal(ripc__segment_create(&s, bad[i], backend, why, sizeof why), -EINVAL);
        assert_closed(&s);
        assert_true(why[0] != '\0');
    }
    /* map applies the same limits before looking at the fd. */
    create_ok(&s, 4096, backend);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = '\0';
        assert_int_equal(ripc__segment_map(&m, s.fd, bad[i], why, sizeof why), -EINVAL);
        assert_closed(&m);
        assert_true(why[0] != '\0');
    }
    /* A short why buffer is truncated, still terminated. */
    memset(why, 'x', sizeof why);
    assert_int_equal(ripc__segment_create(&m, 0, backend, why, 5), -EINVAL);
    assert_int_equal(strlen(why), 4);
    ripc__segment_close(&s);
}

/* Current address-space size in bytes (first field of /proc/self/statm). */
static long long address_space_bytes(void)
{
    long long pages = -1;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return -1;
    if (fscanf(f, "%lld", &pages) != 1)
        pages = -1;
    fclose(f);
    return pages < 0 ? -1 : pages * sysconf(_SC_PAGESIZE);
}

/* A size we allow but this process cannot map: RLIMIT_AS a little above what
 * the child already uses (so sanitizer reservations do not matter), then ask
 * for 64 MiB. Must be -ENOMEM with a reason, nothing leaked, and a small
 * segment must still work afterwards. */
static void test_segment_rlimit_as_enomem(void **state)
{
    int backend = BACKEND_OF(state);
    pid_t pid;

    need(backend);
    if (address_space_bytes() < 0 || count_fds() < 0) {
        print_message("SKIP: no /proc/self/statm or /proc/self/fd\n");
        skip();
    }
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        ripc__segment s;
        char why[RIPC_SEG_WHY_LEN] = "";
        long long as = address_space_bytes();
        struct rlimit rl = {(rlim_t)as + (16u << 20), (rlim_t)as + (16u << 20)};
        int fds, rc;
        if (setrlimit(RLIMIT_AS, &rl) != 0)
            _exit(20);
        fds = count_fds();
        rc = ripc__segment_create(&s, (size_t)64 << 20, backend, why, sizeof why);
        printf("  rlimit_as(%s): rc=%d why=\"%s\"\n", ripc__segment_backend_name(backend), rc, why);
        fflush(stdout);
        if (rc != -ENOMEM)
            _exit(21);
        if (why[0] == '\0')
            _exit(22);
        if (s.base != NULL || s.len != 0 || s.fd != -1)
            _exit(23);
        if (count_fds() != fds)
            _exit(24);
        if (ripc__segment_create(&s, 4096, backend, why, sizeof why) != 0)
            _exit(25);
        ripc__segment_close(&s);
        if (count_fds() != fds)
            _exit(26);
        _exit(0);
    }
    assert_int_equal(ripc_test_wait(pid), 0);
}

/* Set RLIMIT_NOFILE to the lowest free descriptor, so that the next open
 * fails with EMFILE. Returns that descriptor number, or -1. */
static int no_more_fds(void)
{
    struct rlimit rl;
    int lowest = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (lowest < 0 || close(lowest) != 0 || getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    rl.rlim_cur = (rlim_t)lowest;
    return setrlimit(RLIMIT_NOFILE, &rl) != 0 ? -1 : lowest;
}

/* RLIMIT_NOFILE at the lowest free descriptor: the next open must fail. */
static void test_segment_rlimit_nofile_emfile(void **state)
{
    int backend = BACKEND_OF(state);
    pid_t pid;

    need(backend);
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        ripc__segment s;
        char why[RIPC_SEG_WHY_LEN] = "";
        int lowest = no_more_fds(), rc;
        if (lowest < 0)
            _exit(30);
        rc = ripc__segment_create(&s, 4096, backend, why, sizeof why);
        printf("  rlimit_nofile(%s, %d): rc=%d why=\"%s\"\n", ripc__segment_backend_name(backend),
               lowest, rc, why);
        fflush(stdout);
        if (rc != -EMFILE)
            _exit(33);
        if (why[0] == '\0')
            _exit(34);
        if (s.base != NULL || s.len != 0 || s.fd != -1)
            _exit(35);
        _exit(0);
    }
    assert_int_equal(ripc_test_wait(pid), 0);
}

/* RIPC_SEG_DEFAULT when memfd_create is refused (seccomp): the segment comes
 * from shm_open instead; when shm_open fails as well (no descriptor left),
 * the error is the last one tried (EMFILE, or ENOSYS when the build prefers
 * shm_open) and why names both steps. */
static void test_segment_default_falls_back(void **state)
{
    (void)state;
#ifndef TEST_HAVE_MEMFD
    print_message("SKIP: no memfd to refuse\n");
    skip();
#else
    pid_t pid;
    need(RIPC_SEG_MEMFD); /* built in (not in the portable build), to be refused */
    need(RIPC_SEG_SHM_OPEN);
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        ripc__segment s;
        char why[RIPC_SEG_WHY_LEN] = "x";
        int rc = ripc_test_refuse_memfd();
        if (rc != 0) {
            printf("SKIP: seccomp filter refused: %s\n", strerror(-rc));
            _exit(77);
        }
        if (ripc__segment_create(&s, 4096, RIPC_SEG_MEMFD, why, sizeof why) != -ENOSYS)
            _exit(40);
        printf("  memfd refused: \"%s\"\n", why);
        if (ripc__segment_create(&s, 4096, RIPC_SEG_DEFAULT, why, sizeof why) != 0)
            _exit(41);
        if (s.backend != RIPC_SEG_SHM_OPEN || why[0] != '\0' || s.base == NULL)
            _exit(42);
        ripc__segment_close(&s);
        if (no_more_fds() < 0)
            _exit(43);
        rc = ripc__segment_create(&s, 4096, RIPC_SEG_DEFAULT, why, sizeof why);
        printf("  both refused: rc=%d why=\"%s\"\n", rc, why);
        fflush(stdout);
        if ((rc != -EMFILE && rc != -ENOSYS) || s.base != NULL || s.fd != -1)
            _exit(45);
        if (!strstr(why, "memfd_create: ") || !strstr(why, "; ") || !strstr(why, "shm_open: "))
            _exit(46);
        _exit(0);
    }
    int st = ripc_test_wait(pid);
    if (st == 77)
        skip(); /* the child said why */
    assert_int_equal(st, 0);
#endif
}

/* ---------------------------------------------------------------- close */

static void test_segment_close_twice(void **state)
{
    ripc__segment s, z;
    int opened_null = -1;

    (void)state;
    ripc__segment_close(NULL);
    ripc__segment_close_fd(NULL);

    if (ripc__segment_supported(RIPC_SEG_DEFAULT)) {
        create_ok(&s, 4096,
                  ripc__segment_supported(RIPC_SEG_MEMFD) ? RIPC_SEG_MEMFD : RIPC_SEG_SHM_OPEN);
        ripc__segment_close(&s);
        assert_closed(&s);
        ripc__segment_close(&s);
        assert_closed(&s);
        ripc__segment_close_fd(&s);
        assert_closed(&s);
    }

    /* A zero-initialised segment has fd 0: closing it must leave fd 0 open. */
    if (!fd_is_open(0)) {
        opened_null = open("/dev/null", O_RDONLY);
        assert_int_equal(opened_null, 0);
    }
    memset(&z, 0, sizeof z);
    ripc__segment_close_fd(&z);
    assert_true(fd_is_open(0));
    memset(&z, 0, sizeof z);
    ripc__segment_close(&z);
    assert_closed(&z);
    assert_true(fd_is_open(0));
    if (opened_null == 0)
        close(0);
}

static void test_segment_close_fd_keeps_mapping(void **state)
{
    int backend = BACKEND_OF(state);
    const size_t len = 16384;
    ripc__segment s;
    int fd;

    need(backend);
    create_ok(&s, len, backend);
    fd = (int)s.fd;
    ripc__segment_close_fd(&s);
    assert_int_equal(s.fd, -1);
    assert_false(fd_is_open(fd));
    assert_non_null(s.base);
    assert_int_equal(s.len, len);
    ripc_test_fill(s.base, len, 5);
    assert_true(ripc_test_check(s.base, len, 5));
    ripc__segment_close_fd(&s); /* again: no-op */
    ripc__segment_close(&s);
    assert_closed(&s);
}

static void test_segment_no_fd_leak(void **state)
{
    int backend = BACKEND_OF(state);
    char why[RIPC_SEG_WHY_LEN];
    int before;

    need(backend);
    before = count_fds();
    if (before < 0) {
        print_message("SKIP: no /proc/self/fd to count descriptors\n");
        skip();
    }
    for (int i = 0; i < 100; i++) {
        ripc__segment s, m;
        int fd2;
        create_ok(&s, 4096 + (size_t)i * 64, backend);
        /* failed creates */
        assert_int_equal(ripc__segment_create(&m, 0, backend, why, sizeof why), -EINVAL);
        assert_int_equal(
            ripc__segment_create(&m, (size_t)RIPC_SEG_MAX + 1, backend, why, sizeof why), -EINVAL);
        /* a failed map leaves the fd with us; a good one takes it */
        fd2 = dup((int)s.fd);
        assert_true(fd2 >= 0);
        assert_int_equal(ripc__segment_map(&m, fd2, s.len + 1, why, sizeof why), -EPROTO);
        assert_int_equal(ripc__segment_map(&m, fd2, s.len, why, sizeof why), 0);
        ripc__segment_close(&m);
        ripc__segment_close(&s);
    }
    assert_int_equal(count_fds(), before);
}

/* A large message's payload is mapped only from tmpfs (memfd, /dev/shm):
 * a pipe, /dev/null and a file on another file system are refused, before
 * any call that could wait for that file system's server. */
static void test_segment_payload_only_tmpfs(void **state)
{
    (void)state;
    ripc__segment m;
    char why[RIPC_SEG_WHY_LEN];
    int before = count_fds();
#ifdef __linux__
    int mfd = memfd_create("ringipc-test", MFD_CLOEXEC);
    assert_true(mfd >= 0);
    assert_int_equal(ftruncate(mfd, 65536), 0);
    assert_int_equal(ripc__segment_map_payload(&m, mfd, 4096, why, sizeof why), 0);
    ripc__segment_close(&m);
    close(mfd);
#endif
    int p[2];
    assert_int_equal(pipe(p), 0);
    why[0] = '\0';
    assert_int_equal(ripc__segment_map_payload(&m, p[0], 4096, why, sizeof why), -EPERM);
    assert_true(why[0] != '\0');
    assert_closed(&m);
    close(p[0]);
    close(p[1]);
    int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(nul >= 0);
    assert_int_equal(ripc__segment_map_payload(&m, nul, 4096, why, sizeof why), -EPERM);
    close(nul);
    /* A regular file here (the build tree), unless that is tmpfs too. */
    char path[] = "ripc-payload-XXXXXX";
    int f = mkstemp(path);
    assert_true(f >= 0);
    unlink(path);
    assert_int_equal(ftruncate(f, 65536), 0);
    why[0] = '\0';
    int rc = ripc__segment_map_payload(&m, f, 4096, why, sizeof why);
    if (rc == 0) {
        ripc__segment_close(&m);
        print_message("the build tree is on tmpfs: the regular-file case proves nothing here\n");
    } else {
        assert_int_equal(rc, -EPERM);
        assert_non_null(strstr(why, "tmpfs"));
    }
    close(f);
    assert_int_equal(count_fds(), before);
}

#define BOTH(fn)                                                                                   \
    {#fn "_memfd", fn, NULL, NULL, &backend_memfd},                                                \
    {                                                                                              \
#fn "_shm_open", fn, NULL, NULL, &backend_shm                                              \
    }

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(test_segment_roundtrip),
        BOTH(test_segment_zero_fill),
        BOTH(test_segment_cloexec),
        cmocka_unit_test(test_segment_default_backend),
        cmocka_unit_test(test_segment_backend_args),
        cmocka_unit_test(test_segment_memfd_sealed),
        cmocka_unit_test(test_segment_shm_open_no_name),
        BOTH(test_segment_fork_child_maps),
        BOTH(test_segment_map_wrong_len),
        cmocka_unit_test(test_segment_map_unsealed_memfd),
        cmocka_unit_test(test_segment_map_bad_fd),
        cmocka_unit_test(test_segment_payload_only_tmpfs),
        BOTH(test_segment_size_limits),
        BOTH(test_segment_rlimit_as_enomem),
        BOTH(test_segment_rlimit_nofile_emfile),
        cmocka_unit_test(test_segment_default_falls_back),
        cmocka_unit_test(test_segment_close_twice),
        BOTH(test_segment_close_fd_keeps_mapping),
        BOTH(test_segment_no_fd_leak),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
