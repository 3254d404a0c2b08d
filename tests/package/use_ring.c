/* Built against an installed ringipc: move records through a ring (the
 * header's inline fast paths where the build inlines them, the library's
 * calls otherwise: wraps, a full ring, a short buffer), check that a corrupt
 * record header kills the consumer, and that the installed library is the
 * version its headers say. */
#include <errno.h>
#include <ringipc/ring.h>
#include <ringipc/ringipc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CAP 4096u

static int traffic(ripc_ring *p, ripc_ring *c)
{
    unsigned char in[600], out[600];
    size_t n;
    unsigned sent = 0, got = 0;
    while (got < 5000) {
        size_t len = sent * 53u % sizeof in;
        memset(in, (int)(sent & 0xff), len);
        int rc = sent < 5000 ? ripc_ring_push(p, in, len) : -EAGAIN;
        if (rc == 0) {
            sent++;
            continue;
        }
        if (rc != -EAGAIN)
            return 10;
        size_t want = got * 53u % sizeof out;
        if (want > 0 && ripc_ring_pop(c, out, want - 1, &n) != -EMSGSIZE)
            return 11; /* too small: the record stays */
        if (ripc_ring_pop(c, out, sizeof out, &n) != 0 || n != want)
            return 12;
        for (size_t i = 0; i < n; i++)
            if (out[i] != (unsigned char)(got & 0xff))
                return 13;
        got++;
    }
    return ripc_ring_pop(c, out, sizeof out, &n) == -EAGAIN ? 0 : 14;
}

int main(void)
{
    if (ripc_version_number() != RIPC_VERSION_NUMBER) {
        fprintf(stderr, "library %s, headers %d.%d.%d\n", ripc_version(), RIPC_VERSION_MAJOR,
                RIPC_VERSION_MINOR, RIPC_VERSION_PATCH);
        return 3;
    }
    size_t len = ripc_ring_size(CAP);
    unsigned char *mem = aligned_alloc(128, len);
    ripc_ring *p, *c;
    if (!mem || ripc_ring_format(mem, len, CAP) ||
        ripc_ring_attach(&p, mem, len, RIPC_RING_PRODUCER) ||
        ripc_ring_attach(&c, mem, len, RIPC_RING_CONSUMER))
        return 1;
    char out[16];
    size_t n;
    if (ripc_ring_push(p, "installed", 9) || ripc_ring_pop(c, out, sizeof out, &n) || n != 9 ||
        memcmp(out, "installed", 9) != 0)
        return 2;
    int rc = traffic(p, c);
    if (rc != 0) {
        fprintf(stderr, "ring traffic failed at step %d\n", rc);
        return rc;
    }
    /* A hostile producer: a committed header whose length runs past the end
     * of the data area. The data area follows the 512-byte ring header; the
     * consumer stands at some offset, so corrupt every slot. */
    if (ripc_ring_push(p, "x", 1) != 0)
        return 4;
    for (size_t off = 0; off < CAP; off += 8) {
        unsigned long long bad = (unsigned long long)CAP | 2ull << 32;
        memcpy(mem + len - CAP + off, &bad, sizeof bad);
    }
    static unsigned char big[CAP];
    if (ripc_ring_pop(c, big, sizeof big, &n) != -EPROTO ||
        ripc_ring_pop(c, big, sizeof big, &n) != -EPROTO)
        return 5;
    ripc_ring_detach(p);
    ripc_ring_detach(c);
    free(mem);
    puts("ok");
    return 0;
}
