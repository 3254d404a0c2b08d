/* The raw ring between two processes: an anonymous shared mapping inherited across fork(). */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, usleep */
#include <errno.h>
#include <ringipc/ring.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
    size_t len = ripc_ring_size(1 << 16);
    void *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ripc_ring *r;
    ripc_ring_format(mem, len, 1 << 16);
    if (fork() == 0) { /* child: consumer */
        ripc_ring_attach(&r, mem, len, RIPC_RING_CONSUMER);
        char msg[64];
        size_t n;
        while (ripc_ring_pop(r, msg, sizeof msg, &n) == -EAGAIN)
            usleep(100);
        printf("child got: %.*s\n", (int)n, msg);
        ripc_ring_detach(r);
        return 0;
    }
    ripc_ring_attach(&r, mem, len, RIPC_RING_PRODUCER);
    ripc_ring_push(r, "hello through shared memory", 27);
    wait(NULL);
    ripc_ring_detach(r);
    return 0;
}
