// The installed ring header from C++: the inline fast paths compile there too.
#include <ringipc/ring.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

int main()
{
    const size_t len = ripc_ring_size(4096);
    void *mem = std::aligned_alloc(128, len);
    ripc_ring *p = nullptr, *c = nullptr;
    if (mem == nullptr || ripc_ring_format(mem, len, 4096) != 0 ||
        ripc_ring_attach(&p, mem, len, RIPC_RING_PRODUCER) != 0 ||
        ripc_ring_attach(&c, mem, len, RIPC_RING_CONSUMER) != 0)
        return 1;
    char out[16];
    size_t n = 0;
    if (ripc_ring_push(p, "c++", 3) != 0 || ripc_ring_pop(c, out, sizeof out, &n) != 0 || n != 3 ||
        std::memcmp(out, "c++", 3) != 0)
        return 2;
    ripc_ring_detach(p);
    ripc_ring_detach(c);
    std::free(mem);
    std::puts("ok (C++)");
    return 0;
}
