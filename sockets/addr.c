/* SPDX-License-Identifier: MIT */
/*
 * Control-channel addresses: parse and format URLs (contract: sockets/sock.h).
 * Pure string work, no system calls; only sun_path's size comes from the
 * platform (sockets/sun_path.h).
 */
#include "shm/why.h"
#include "sockets/sock.h"
#include "sockets/sun_path.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define set_why ripc__set_why

/* Linux has an abstract namespace for unix sockets (sun_path[0] = 0): names
 * that are no files, gone with the last socket bound to them. The portable
 * build leaves it out, as it does the other Linux extras. */
#if defined(__linux__) && !defined(RIPC_PORTABLE_POSIX)
#define HAVE_ABSTRACT 1
#define NO_ABSTRACT_WHY ""
#elif defined(__linux__)
#define HAVE_ABSTRACT 0
#define NO_ABSTRACT_WHY ", and this is the portable build (RIPC_PORTABLE_POSIX)"
#else
#define HAVE_ABSTRACT 0
#define NO_ABSTRACT_WHY ""
#endif

/* ---- addresses ---- */

/* Length of a leading "scheme" when url starts with "scheme://", else 0. */
static size_t scheme_len(const char *url)
{
    size_t i = 0;
    if (!isalpha((unsigned char)url[0]))
        return 0;
    while (isalnum((unsigned char)url[i]) || url[i] == '+' || url[i] == '-' || url[i] == '.')
        i++;
    return strncmp(url + i, "://", 3) == 0 ? i : 0;
}

static int parse_unix(ripc__addr *a, const char *path, char *why, size_t why_len)
{
    size_t n = strlen(path);
    if (n == 0) {
        set_why(why, why_len, 0, "empty unix socket path");
        return -EINVAL;
    }
    if (n > SOCK_PATH_MAX) {
        set_why(why, why_len, 0, "unix socket path too long (%zu bytes, max %zu)", n,
                (size_t)SOCK_PATH_MAX);
        return -ENAMETOOLONG;
    }
    if (path[0] == '@' && !HAVE_ABSTRACT) {
        set_why(why, why_len, 0,
                "'unix:%s': abstract unix sockets exist only on Linux%s (use a path, or "
                "unix:./%s for a file of that name)",
                path, NO_ABSTRACT_WHY, path);
        return -ENOTSUP;
    }
    if (path[0] == '@' && n == 1) {
        set_why(why, why_len, 0, "empty abstract unix socket name (want unix:@name)");
        return -EINVAL;
    }
    memcpy(a->path, path, n + 1);
    a->kind = RIPC_ADDR_UNIX;
    return 0;
}

/* s is what follows "tcp://": "host:port" or "[v6]:port". */
static int parse_tcp(ripc__addr *a, const char *s, char *why, size_t why_len)
{
    const char *host, *hend, *colon, *p;
    size_t hlen;
    unsigned long port = 0;

    if (s[0] == '[') {
        host = s + 1;
        hend = strchr(host, ']');
        if (hend == NULL) {
            set_why(why, why_len, 0, "missing ']' after IPv6 address in 'tcp://%s'", s);
            return -EINVAL;
        }
        colon = hend + 1;
        if (*colon != ':') {
            set_why(why, why_len, 0,
                    *colon == '\0' ? "missing port in 'tcp://%s'"
                                   : "expected ':port' after ']' in 'tcp://%s'",
                    s);
            return -EINVAL;
        }
    } else {
        host = s;
        colon = strrchr(s, ':');
        if (colon == NULL) {
            set_why(why, why_len, 0, "missing port in 'tcp://%s'", s);
            return -EINVAL;
        }
        hend = colon;
        if (memchr(host, ':', (size_t)(hend - host)) != NULL) {
            set_why(why, why_len, 0, "IPv6 address must be in brackets: 'tcp://[addr]:port'");
            return -EINVAL;
        }
    }
    hlen = (size_t)(hend - host);
    if (hlen == 0) {
        set_why(why, why_len, 0, "empty host in 'tcp://%s'", s);
        return -EINVAL;
    }
    if (hlen >= RIPC_ADDR_HOST_MAX) {
        set_why(why, why_len, 0, "host too long (%zu bytes, max %d)", hlen, RIPC_ADDR_HOST_MAX - 1);
        return -EINVAL;
    }
    p = colon + 1;
    if (*p == '\0') {
        set_why(why, why_len, 0, "missing port in 'tcp://%s'", s);
        return -EINVAL;
    }
    for (const char *q = p; *q != '\0'; q++) {
        if (!isdigit((unsigned char)*q) || q - p >= 5) {
            port = 65536; /* not a number, or too many digits: reported below */
            break;
        }
        port = port * 10 + (unsigned long)(*q - '0');
    }
    if (port > 65535) {
        set_why(why, why_len, 0, "bad port '%.16s' (want 0..65535)", p);
        return -EINVAL;
    }
    memcpy(a->host, host, hlen);
    a->host[hlen] = '\0';
    a->port = (uint16_t)port;
    a->kind = RIPC_ADDR_TCP;
    return 0;
}

int ripc__addr_parse(ripc__addr *a, const char *url, char *why, size_t why_len)
{
    size_t n;

    memset(a, 0, sizeof *a);
    if (url == NULL || url[0] == '\0') {
        set_why(why, why_len, 0, "empty address");
        return -EINVAL;
    }
    n = scheme_len(url);
    if (n == 4 && strncasecmp(url, "unix", 4) == 0) {
        /* URL style: an empty authority, then an absolute path ("unix:///p"
         * -> "/p", as in nng's ipc://). "unix://tmp/x" would read as the
         * relative path "tmp/x" where "/tmp/x" was likely meant: refused. */
        if (url[7] != '/') {
            set_why(why, why_len, 0,
                    "'%.64s': unix:// takes an absolute path (unix:///tmp/x or unix:/tmp/x; "
                    "a relative path is unix:tmp/x, an abstract socket unix:@name)",
                    url);
            return -EINVAL;
        }
        return parse_unix(a, url + 7, why, why_len);
    }
    if (n == 3 && strncasecmp(url, "tcp", 3) == 0)
        return parse_tcp(a, url + 6, why, why_len);
    if (n > 0) {
        set_why(why, why_len, 0, "unknown scheme '%.*s' (want unix: or tcp://)",
                (int)(n > 32 ? 32 : n), url);
        return -EINVAL;
    }
    if (strncasecmp(url, "unix:", 5) == 0)
        return parse_unix(a, url + 5, why, why_len);
    if (strncasecmp(url, "tcp:", 4) == 0) {
        set_why(why, why_len, 0, "tcp address must be 'tcp://host:port'");
        return -EINVAL;
    }
    return parse_unix(a, url, why, why_len);
}

int ripc__addr_format(const ripc__addr *a, char *buf, size_t len)
{
    if (a->kind == RIPC_ADDR_UNIX) /* "//x" must not read back as "unix://x" */
        return snprintf(buf, len, "unix:%s%s", strncmp(a->path, "//", 2) == 0 ? "//" : "", a->path);
    if (a->kind == RIPC_ADDR_TCP) {
        if (strchr(a->host, ':') != NULL)
            return snprintf(buf, len, "tcp://[%s]:%u", a->host, (unsigned)a->port);
        return snprintf(buf, len, "tcp://%s:%u", a->host, (unsigned)a->port);
    }
    return snprintf(buf, len, "(invalid address)");
}
