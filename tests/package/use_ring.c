/* Built against an installed ringipc: push one record and read it back, and
 * check that the installed library is the version its headers say. */
#include <ringipc/ring.h>
#include <ringipc/ringipc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    if (ripc_version_number() != RIPC_VERSION_NUMBER) {
        fprintf(stderr, "library %s, headers %d.%d.%d\n", ripc_version(), RIPC_VERSION_MAJOR,
                RIPC_VERSION_MINOR, RIPC_VERSION_PATCH);
        return 3;
    }
    size_t len = ripc_ring_size(4096);
    void *mem = aligned_alloc(128, len);
    ripc_ring *p, *c;
    if (!mem || ripc_ring_format(mem, len, 4096) ||
        ripc_ring_attach(&p, mem, len, RIPC_RING_PRODUCER) ||
        ripc_ring_attach(&c, mem, len, RIPC_RING_CONSUMER))
        return 1;
    char out[16];
    size_t n;
    if (ripc_ring_push(p, "installed", 9) || ripc_ring_pop(c, out, sizeof out, &n) || n != 9 ||
        memcmp(out, "installed", 9) != 0)
        return 2;
    ripc_ring_detach(p);
    ripc_ring_detach(c);
    free(mem);
    puts("ok");
    return 0;
}
