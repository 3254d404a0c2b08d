/* SPDX-License-Identifier: MIT */
/*
 * Shared by the fuzz targets: the failure check, a reader that turns the
 * input into numbers and byte strings (0 / short past its end, so every
 * input is a complete script), descriptors of several kinds for a hostile
 * peer to pass, and a count of open descriptors (a target checks that an
 * input leaves none behind).
 */
#ifndef RIPC_TESTS_FUZZ_UTIL_H
#define RIPC_TESTS_FUZZ_UTIL_H

#include <dirent.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sockets/closer.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);                  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Seeds for the replay driver and the corpus generator (replay_main.c). */
typedef void (*ripc_fuzz_run_fn)(const uint8_t *data, size_t size);
void ripc_fuzz_seeds(ripc_fuzz_run_fn run);
/* Optional: a costly target replays 1/this of the generated inputs. */
extern const int ripc_fuzz_replay_divisor;

/* Seed scripts: append the bytes listed (each taken modulo 256) at b + n,
 * and advance n past them. */
#define FZ_PUT(b, n, ...)                                                                          \
    do {                                                                                           \
        const uint8_t fz_put_[] = {__VA_ARGS__};                                                   \
        memcpy((b) + (n), fz_put_, sizeof fz_put_);                                                \
        (n) += sizeof fz_put_;                                                                     \
    } while (0)

typedef struct fz_in {
    const uint8_t *p;
    size_t left;
} fz_in;

/* n little-endian bytes (n <= 8). */
static inline uint64_t fz_take(fz_in *in, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n && in->left > 0; i++, in->left--)
        v |= (uint64_t)*in->p++ << (8 * i);
    return v;
}

/* Up to n bytes: a pointer into the input, *got how many there were. */
static inline const uint8_t *fz_bytes(fz_in *in, size_t n, size_t *got)
{
    const uint8_t *p = in->p;
    *got = n < in->left ? n : in->left;
    in->p += *got;
    in->left -= *got;
    return p;
}

/* Descriptors open now (/proc/self/fd, less the one that reads it). */
static inline int fz_fd_count(void)
{
    ripc__fd_dispose_wait(); /* what went to the closer counts once closed */
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    int n = 0;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n - 3; /* ".", "..", and the directory's own descriptor */
}

/* Resident memory of this process in MiB (shared mappings included). */
static inline long fz_resident_mb(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = 0;
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024) / 1024;
}

/* A hostile peer's descriptor, by kind (any value; taken modulo):
 *   0 a memfd of len bytes sealed against shrinking and growing (what an
 *     honest peer passes), holding `fill` bytes of data
 *   1 the same, unsealed
 *   2 a sealed memfd of the wrong size (len / 2 + 1)
 *   3 the read end of a pipe
 *   4 /dev/null
 *   5 one end of a socketpair
 * -1 when the system refuses (the caller skips the step). */
enum { FZ_FD_KINDS = 6 };
static inline int fz_make_fd(unsigned kind, size_t len, const uint8_t *fill, size_t fill_len)
{
    int fd = -1, pair[2];
    switch (kind % FZ_FD_KINDS) {
    case 0:
    case 1:
    case 2: {
        fd = memfd_create("ripc-fuzz", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        size_t sz = kind % FZ_FD_KINDS == 2 ? len / 2 + 1 : len;
        if (fd < 0 || ftruncate(fd, (off_t)sz) != 0) {
            if (fd >= 0)
                close(fd);
            return -1;
        }
        if (fill_len > sz)
            fill_len = sz;
        if (fill_len && pwrite(fd, fill, fill_len, 0) < 0) {
            /* contents are only a detail */
        }
        if (kind % FZ_FD_KINDS != 1 &&
            fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
            close(fd);
            return -1;
        }
        return fd;
    }
    case 3:
        if (pipe2(pair, O_CLOEXEC) != 0)
            return -1;
        close(pair[1]);
        return pair[0];
    case 4:
        return open("/dev/null", O_RDONLY | O_CLOEXEC);
    default:
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
            return -1;
        close(pair[1]);
        return pair[0];
    }
}

#endif
