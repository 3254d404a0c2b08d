/* SPDX-License-Identifier: MIT */
/*
 * Batch handlers (ripc_server_handle_batch): a run of one type's one-way
 * messages from one worker goes to its handler in one call. The loop
 * (server_loop.c) resolves each message's handler through its cache; a
 * message whose handler is a batch one comes here with the rest of its
 * run. The run's messages are views into what the worker sent, so their
 * room stays the worker's until the call returns: in a ring, the consumer
 * index moves past them only after it (lazy releases, published once per
 * round, or up to rx_hold by a send from inside the handler that waits for
 * room); in socket mode, nothing is read into the receive buffer during a
 * round, and a run takes only the frames that are there whole.
 */
#include "src/server_internal.h"

/* The most messages a run of L's cached batch handler may hold. */
static size_t run_max(const struct loop *L, int budget)
{
    size_t max = L->cache_max && L->cache_max < RIPC_LOOP_BATCH ? L->cache_max : RIPC_LOOP_BATCH;
    return budget > 0 && (size_t)budget < max ? (size_t)budget : max;
}

int ripc__batch_ring(struct loop *L, struct ripc_peer *p, const ripc_msg *m, int budget, int *rc)
{
    ripc__chan *ch = &p->ch;
    ripc_msg *b = L->batch;
    size_t max = run_max(L, budget), k = 1;
    int released = 0;
    b[0] = *m;
    /* A request or a large message (its own mapping) comes alone. */
    if (k < max && m->kind == RIPC_KIND_ONEWAY && !ch->lg.lent.base) {
        p->rx_hold = ripc__ring_pos(ch->rx);
        p->rx_held = 1;
        do {
            /* An inline record: the release has no payload to unmap, and
             * cannot fail. */
            (void)ripc__chan_release_lazy(ch);
            released = 1;
            if (!ripc__chan_peek_run(ch, m->type, &b[k]))
                break;
            released = 0;
            b[k].peer_id = p->id;
            ripc__stat_msg(&ch->st.in, RIPC_KIND_ONEWAY, b[k].len);
        } while (++k < max);
    }
    L->cache_bfn(p, b, k, L->cache_arg);
    p->rx_held = 0;
    /* A large payload cut while the handler read it: the caller drops the
     * worker before it is handed anything else. */
    *rc = released ? 0 : ripc__chan_release_lazy(ch);
    return (int)k;
}

int ripc__batch_frames(struct loop *L, struct ripc_peer *p, const ripc_msg *m, int budget)
{
    ripc_msg *b = L->batch;
    size_t max = run_max(L, budget), k = 1;
    b[0] = *m;
    if (m->kind == RIPC_KIND_ONEWAY) {
        ripc__frame f;
        const uint8_t *pl;
        /* Whole frames only: taking one never moves the buffered bytes the
         * run's earlier payloads point into. */
        while (k < max && ripc__rx_peek(&p->rx, &f, p->ch.max_message) &&
               f.ftype == RIPC_FRAME_MSG && f.kind == RIPC_KIND_ONEWAY && f.type == m->type &&
               ripc__rx_next(&p->rx, &f, &pl, p->ch.max_message) == 1) {
            b[k] = (ripc_msg){.type = f.type,
                              .kind = f.kind,
                              .peer_id = p->id,
                              .id = f.id,
                              .data = pl,
                              .len = f.len};
            ripc__stat_msg(&p->ch.st.in, RIPC_KIND_ONEWAY, f.len);
            k++;
        }
    }
    L->cache_bfn(p, b, k, L->cache_arg);
    return (int)k;
}
