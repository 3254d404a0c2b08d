/* SPDX-License-Identifier: MIT */
/*
 * The monitor's handshake and the SNAPSHOT pages (tools/stat_fetch.h).
 * One connection per page: the master answers one SNAPSHOT and hangs up.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sockets/sock.h"
#include "src/internal.h"
#include "tools/stat_fetch.h"

/* More pages than this (256 workers each) is a master that keeps asking
 * us to go on: we stop. */
#define PAGES_MAX 4096

/* An old master's REJECT for a version it does not speak says "master
 * speaks A..B" (src/server_handshake.c, check_version). */
static void version_why(const char *url, const char *reason, char *why, size_t why_len)
{
    const char *m = strstr(reason, "master speaks ");
    unsigned lo, hi;
    if (m && sscanf(m, "master speaks %u..%u", &lo, &hi) == 2 && hi < RIPC_PROTO_MONITOR)
        snprintf(why, why_len,
                 "the master at %s speaks protocol %u..%u, which has no monitor; ringipc-stat "
                 "needs >= %u (a master built from a later ringipc)",
                 url, lo, hi, RIPC_PROTO_MONITOR);
    else
        snprintf(why, why_len, "the master at %s refused the monitor's protocol version: %s", url,
                 reason);
}

/* What the master's answer to our HELLO says (REJECT or WELCOME) in
 * words. */
static int answer_error(const char *url, const ripc__frame *f, const uint8_t *pl, char *why,
                        size_t why_len)
{
    if (f->ftype == RIPC_FRAME_WELCOME) {
        snprintf(why, why_len,
                 "the master at %s took the monitor for a worker: it does not speak the monitor "
                 "protocol (>= %u)",
                 url, RIPC_PROTO_MONITOR);
        return -EPROTONOSUPPORT;
    }
    char reason[RIPC_REASON_MAX + 1];
    size_t n = f->len > RIPC_REASON_MAX ? RIPC_REASON_MAX : (size_t)f->len;
    memcpy(reason, pl, n);
    reason[n] = 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)reason[i] < 0x20)
            reason[i] = '?';
    if (f->type == EPROTONOSUPPORT) {
        version_why(url, reason, why, why_len);
        return -EPROTONOSUPPORT;
    }
    snprintf(why, why_len, "the master at %s refused the monitor: %s", url, reason);
    return f->type == EACCES ? -EACCES : -ECONNREFUSED;
}

/* Connect, and check who listens on an abstract name (anybody may bind
 * one): a master of ours only, as a worker checks. */
static int dial(const char *url, const ripc_options *o, intptr_t *fd, char *why, size_t why_len)
{
    ripc__addr a;
    char w[256] = "";
    int rc = ripc__addr_parse(&a, url, w, sizeof w);
    if (rc < 0) {
        snprintf(why, why_len, "bad URL %s: %s", url, w[0] ? w : ripc_strerror(rc));
        return rc;
    }
    if ((rc = ripc__sock_connect(&a, fd, o->connect_timeout_ms, w, sizeof w)) < 0) {
        snprintf(why, why_len, "no master at %s (%s)", url, w[0] ? w : ripc_strerror(rc));
        return rc;
    }
    uint32_t uid;
    if (ripc__addr_abstract(&a) &&
        (ripc__sock_peer_cred(*fd, &uid, NULL, NULL) < 0 || !ripc__uid_allowed(o, uid))) {
        snprintf(why, why_len, "who listens at %s is not a master of our uid (%u)", url,
                 (unsigned)ripc__self_euid());
        ripc__sock_close(*fd);
        return -EACCES;
    }
    return 0;
}

/* One page: the workers from id `from` up. *pl (malloc'd) holds the
 * SNAPSHOT payload of *len bytes. 0 or -errno (why). */
static int page(const char *url, const ripc_options *o, uint64_t from, uint8_t **pl, size_t *len,
                char *why, size_t why_len)
{
    intptr_t fd;
    uint64_t deadline = ripc__deadline(o->connect_timeout_ms);
    int rc = dial(url, o, &fd, why, why_len);
    if (rc < 0)
        return rc;
    ripc__hello h = {.version_min = RIPC_PROTO_MONITOR,
                     .version_max = RIPC_PROTO_MONITOR,
                     .caps = RIPC_CAP_MONITOR,
                     .pid = (uint32_t)ripc__self_pid(),
                     .ring_bytes = from};
    snprintf(h.name, sizeof h.name, "ringipc-stat");
    size_t tl = o->token ? strlen(o->token) : 0;
    if (tl > RIPC_TOKEN_MAX) {
        snprintf(why, why_len, "token longer than %d bytes", RIPC_TOKEN_MAX);
        ripc__sock_close(fd);
        return -EINVAL;
    }
    memcpy(h.token, o->token ? o->token : "", tl);
    h.token_len = (uint8_t)tl;
    uint8_t hb[RIPC_FRAME_HDR + RIPC_HANDSHAKE_MAX];
    size_t hl = ripc__hello_encode(hb + RIPC_FRAME_HDR, RIPC_HANDSHAKE_MAX, &h);
    ripc__frame f = {.ftype = RIPC_FRAME_HELLO, .len = hl};
    ripc__frame_encode(hb, &f);
    rc = ripc__sock_send_all(fd, hb, RIPC_FRAME_HDR + hl);
    /* -EPIPE: a master out of descriptors refuses before it reads; its
     * REJECT can still be read. */
    if (rc < 0 && rc != -EPIPE)
        goto fail_io;
    if ((rc = ripc__sock_recv_all(fd, hb, RIPC_FRAME_HDR, ripc__remaining_ms(deadline))) < 0)
        goto fail_io;
    if ((rc = ripc__frame_decode(hb, &f, RIPC_SNAP_LEN_MAX)) < 0 ||
        (f.ftype != RIPC_FRAME_SNAPSHOT && f.len > RIPC_HANDSHAKE_MAX)) {
        snprintf(why, why_len, "the master at %s sent a malformed answer", url);
        ripc__sock_close(fd);
        return -EPROTO;
    }
    uint8_t *b = malloc(f.len ? (size_t)f.len : 1);
    if (!b) {
        ripc__sock_close(fd);
        return -ENOMEM;
    }
    if ((rc = ripc__sock_recv_all(fd, b, (size_t)f.len, ripc__remaining_ms(deadline))) < 0) {
        free(b);
        goto fail_io;
    }
    ripc__sock_close(fd);
    if (f.ftype != RIPC_FRAME_SNAPSHOT) {
        rc = f.ftype == RIPC_FRAME_REJECT || f.ftype == RIPC_FRAME_WELCOME
                 ? answer_error(url, &f, b, why, why_len)
                 : -EPROTO;
        if (rc == -EPROTO)
            snprintf(why, why_len, "the master at %s answered with frame type %u", url, f.ftype);
        free(b);
        return rc;
    }
    *pl = b;
    *len = (size_t)f.len;
    return 0;
fail_io:
    ripc__sock_close(fd);
    if (rc == -ETIMEDOUT)
        snprintf(why, why_len, "no answer from the master at %s within %d ms", url,
                 o->connect_timeout_ms);
    else
        snprintf(why, why_len, "the master at %s hung up without a snapshot (%s)", url,
                 ripc_strerror(rc));
    return rc;
}

/* Append a page's records to s (the first page gives the header). */
static int take_page(stat_snap *s, const uint8_t *pl, size_t len, int first, uint64_t *next)
{
    ripc__snap_head h;
    if (ripc__snap_head_decode(pl, len, &h) < 0)
        return -EPROTO;
    ripc__snap_peer *v = realloc(s->peers, (s->n + h.count + 1) * sizeof *v);
    if (!v)
        return -ENOMEM;
    s->peers = v;
    size_t off = h.hdr_len;
    for (unsigned i = 0; i < h.count; i++)
        if (ripc__snap_peer_decode(pl, len, h.rec_len, &off, &s->peers[s->n++]) < 0)
            return -EPROTO;
    if (off != len)
        return -EPROTO;
    if (first)
        s->head = h;
    *next = h.next_id;
    return 0;
}

int stat_fetch(const char *url, const char *token, int timeout_ms, stat_snap *out, char *why,
               size_t why_len)
{
    memset(out, 0, sizeof *out);
    ripc_options in = {.token = token, .connect_timeout_ms = timeout_ms}, o;
    char w[256] = "";
    int rc = ripc__options_resolve(&o, &in, w, sizeof w);
    if (rc < 0) {
        snprintf(why, why_len, "%s", w);
        return rc;
    }
    uint64_t from = 0;
    for (int k = 0; k < PAGES_MAX; k++) {
        uint8_t *pl;
        size_t len;
        if ((rc = page(url, &o, from, &pl, &len, why, why_len)) < 0)
            break;
        uint64_t next = 0;
        rc = take_page(out, pl, len, k == 0, &next);
        free(pl);
        if (rc < 0) {
            snprintf(why, why_len, "the master at %s sent a malformed snapshot", url);
            break;
        }
        if (next == 0)
            return 0;
        if (next <= from) {
            snprintf(why, why_len, "the master at %s sent pages out of order", url);
            rc = -EPROTO;
            break;
        }
        from = next;
    }
    if (rc == 0) {
        snprintf(why, why_len, "the master at %s has more than %d pages of workers", url,
                 PAGES_MAX);
        rc = -E2BIG;
    }
    stat_snap_free(out);
    return rc;
}

void stat_snap_free(stat_snap *s)
{
    free(s->peers);
    s->peers = NULL;
    s->n = 0;
}
