/* SPDX-License-Identifier: MIT */
/*
 * Replay driver for the fuzz targets, so that every normal build (gcc, no
 * libFuzzer) runs them: `fuzz_x_replay FILE|DIR...` feeds each file (each
 * regular file of a directory) to LLVMFuzzerTestOneInput; without arguments
 * it feeds a few hundred deterministic pseudo-random inputs of several
 * shapes. A target signals a failure by aborting; this returns 0 otherwise.
 *
 * `fuzz_x_replay --write-seeds DIR` is the corpus generator: it writes the
 * target's seeds (valid encodings, see ripc_fuzz_seeds in each target) as
 * DIR/seed-NNN, without running them. tests/fuzz/corpus/<target>/ holds
 * those plus minimized inputs that found bugs (named after the bug).
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Optional, from the target: hand-made valid inputs, each passed to `run`.
 * Without arguments every seed is run as is and in MUTATIONS mutated
 * copies, which reach much deeper than uniform noise. */
typedef void (*ripc_fuzz_run_fn)(const uint8_t *data, size_t size);
void ripc_fuzz_seeds(ripc_fuzz_run_fn run) __attribute__((weak));

/* Optional, from the target: its inputs are costly (a server per input),
 * so it gets 1/ripc_fuzz_replay_divisor of the generated inputs. */
extern const int ripc_fuzz_replay_divisor __attribute__((weak));

#define MUTATIONS 200

#define RANDOM_INPUTS  1000
#define RANDOM_MAX_LEN 1100

static uint64_t next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Exactly sized heap copy, so that an over-read is an ASan error here as it
 * is under libFuzzer. */
static void run(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (copy == NULL) {
        perror("malloc");
        exit(2);
    }
    if (size)
        memcpy(copy, data, size);
    LLVMFuzzerTestOneInput(copy, size);
    free(copy);
}

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    size_t cap = 4096, len = 0, n;
    uint8_t *buf = malloc(cap);
    while (buf != NULL && (n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            uint8_t *bigger = realloc(buf, cap *= 2);
            if (bigger == NULL)
                free(buf);
            buf = bigger;
        }
    }
    fclose(f);
    if (buf == NULL) {
        fprintf(stderr, "%s: out of memory\n", path);
        return -1;
    }
    run(buf, len);
    free(buf);
    return 1;
}

static int run_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        perror(path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return run_file(path);
    DIR *d = opendir(path);
    if (d == NULL) {
        perror(path);
        return -1;
    }
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char sub[4096];
        if (e->d_name[0] == '.')
            continue;
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        if (stat(sub, &st) == 0 && S_ISREG(st.st_mode)) {
            if (run_file(sub) < 0) {
                closedir(d);
                return -1;
            }
            count++;
        }
    }
    closedir(d);
    return count;
}

static int divisor(void)
{
    return &ripc_fuzz_replay_divisor != NULL && ripc_fuzz_replay_divisor > 0
               ? ripc_fuzz_replay_divisor
               : 1;
}

static uint64_t g_mut_state = 0xD1B54A32D192ED03ULL;
static int g_seed_runs;

/* A seed as is, then mutated: a few bytes overwritten, bits flipped,
 * small increments, the length cut or grown. */
static void run_seed(const uint8_t *data, size_t size)
{
    uint8_t buf[4096];
    if (size > sizeof buf / 2)
        size = sizeof buf / 2;
    run(data, size);
    g_seed_runs++;
    for (int m = 0; m < MUTATIONS / divisor(); m++) {
        uint64_t *s = &g_mut_state;
        size_t len = size;
        memcpy(buf, data, size);
        int edits = 1 + (int)(next(s) % 4);
        for (int e = 0; e < edits && len > 0; e++) {
            size_t at = (size_t)(next(s) % len);
            switch (next(s) % 5) {
            case 0:
                buf[at] = (uint8_t)next(s);
                break;
            case 1:
                buf[at] ^= (uint8_t)(1u << (next(s) % 8));
                break;
            case 2:
                buf[at] = (uint8_t)(buf[at] + 1 + next(s) % 8);
                break;
            case 3:
                len = at + 1;
                break;
            default:
                for (size_t k = len; k < len + 16; k++)
                    buf[k] = (uint8_t)next(s);
                len += 16;
                break;
            }
        }
        run(buf, len);
        g_seed_runs++;
    }
}

/* Shapes: uniform bytes, mostly zeros, a small alphabet of "interesting"
 * values, a repeated 8-byte word (plausible indices and headers), and
 * mostly small numbers (plausible modes, lengths and offsets). */
static void random_inputs(void)
{
    static const uint8_t alphabet[] = {0,    1,    2,    3,    4,    5,   7,   8,   0x10,
                                       0x40, 0x7F, 0x80, 0xF8, 0xFF, 'R', 'I', 'P', 'C'};
    uint8_t buf[RANDOM_MAX_LEN];
    uint64_t s = 0x9E3779B97F4A7C15ULL;
    int n = RANDOM_INPUTS / divisor();
    for (int i = 0; i < n; i++) {
        size_t len = (size_t)(next(&s) % RANDOM_MAX_LEN);
        uint64_t word = next(&s);
        for (size_t j = 0; j < len; j++) {
            uint64_t r = next(&s);
            switch (i % 5) {
            case 0:
                buf[j] = (uint8_t)r;
                break;
            case 1:
                buf[j] = r % 16 == 0 ? (uint8_t)(r >> 8) : 0;
                break;
            case 2:
                buf[j] = alphabet[(r >> 8) % sizeof alphabet];
                break;
            case 3:
                buf[j] = r % 32 == 0 ? (uint8_t)(r >> 8) : (uint8_t)(word >> (8 * (j % 8)));
                break;
            default:
                buf[j] = (uint8_t)(r % 8 == 0 ? r >> 8 : (r >> 8) % 8);
                break;
            }
        }
        run(buf, len);
    }
    printf("%d pseudo-random inputs: ok\n", n);
}

static const char *g_seed_dir;
static int g_seeds_written;

static void write_seed(const uint8_t *data, size_t size)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/seed-%03d", g_seed_dir, g_seeds_written++);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, size, f) != size || fclose(f) != 0) {
        perror(path);
        exit(2);
    }
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0) {
        if (ripc_fuzz_seeds == NULL) {
            fprintf(stderr, "this target has no seeds\n");
            return 2;
        }
        g_seed_dir = argv[2];
        ripc_fuzz_seeds(write_seed);
        printf("%d seeds written to %s\n", g_seeds_written, g_seed_dir);
        return 0;
    }
    if (argc < 2) {
        if (ripc_fuzz_seeds != NULL) {
            ripc_fuzz_seeds(run_seed);
            printf("%d seeded inputs: ok\n", g_seed_runs);
        }
        random_inputs();
        return 0;
    }
    int total = 0;
    for (int i = 1; i < argc; i++) {
        int n = run_path(argv[i]);
        if (n < 0)
            return 2;
        total += n;
    }
    printf("%d inputs: ok\n", total);
    return 0;
}
