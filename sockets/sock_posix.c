/* SPDX-License-Identifier: MIT */
/*
 * POSIX control-channel sockets (contract: sockets/sock.h).
 *
 * Written for Linux; the BSDs have the same calls (SOCK_CLOEXEC, accept4,
 * MSG_NOSIGNAL, MSG_CMSG_CLOEXEC). Every descriptor is created close-on-exec
 * atomically, so a fork+exec in another thread never inherits one.
 *
 * Blocking model: listeners are non-blocking (the caller polls them); every
 * connected socket handed out is blocking, and time limits are enforced with
 * poll() before the call, never with SO_RCVTIMEO/SO_SNDTIMEO left on the fd.
 */
#include "shm/clock.h"
#include "shm/why.h"
#include "sockets/closer.h"
#include "sockets/sock.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifndef POLLRDHUP
#define POLLRDHUP 0 /* Linux only; POLLHUP and the MSG_PEEK probe still catch EOF */
#endif

#define SOCK_MAX_FDS  8
#define SOCK_BACKLOG  128
#define SUN_PATH_SIZE (sizeof(((struct sockaddr_un *)0)->sun_path))
/* Longest path we accept: sun_path must also hold the terminating NUL. */
#define SOCK_PATH_MAX (SUN_PATH_SIZE - 1)

_Static_assert(SUN_PATH_SIZE <= RIPC_ADDR_PATH_MAX, "ripc__addr.path must hold any sun_path");

#define set_why ripc__set_why

/* Linux has an abstract namespace for unix sockets (sun_path[0] = 0): names
 * that are no files, gone with the last socket bound to them. */
#ifdef __linux__
#define HAVE_ABSTRACT 1
#else
#define HAVE_ABSTRACT 0
#endif

/* ---- time limits (deadlines: shm/clock.h) ---- */

/* 1 when fd is ready for events (or has an error/hang-up the next call will
 * report), 0 when the deadline passed, -errno on a poll failure. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, ripc__remaining_ms(deadline));
        if (r > 0)
            return 1;
        if (r == 0)
            return 0;
        if (errno != EINTR)
            return -errno;
    }
}

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
                "'unix:%s': abstract unix sockets exist only on Linux (use a path, or "
                "unix:./%s for a file of that name)",
                path, path);
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

static int unix_sockaddr(const ripc__addr *a, struct sockaddr_un *sun, socklen_t *slen, char *why,
                         size_t why_len)
{
    size_t n = strnlen(a->path, sizeof a->path);
    if (n == 0 || n > SOCK_PATH_MAX) {
        set_why(why, why_len, 0, "bad unix socket path (%zu bytes, max %zu)", n,
                (size_t)SOCK_PATH_MAX);
        return n == 0 ? -EINVAL : -ENAMETOOLONG;
    }
    memset(sun, 0, sizeof *sun);
    sun->sun_family = AF_UNIX;
    if (ripc__addr_abstract(a)) {
        /* sun_path[0] = 0, then the name; the length ends the name (no NUL:
         * a trailing zero byte would be part of it). */
        memcpy(sun->sun_path + 1, a->path + 1, n - 1);
        *slen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
        return 0;
    }
    memcpy(sun->sun_path, a->path, n);
    *slen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
}

/* getaddrinfo's errors as -errno; name-not-found becomes notfound. */
static int resolve(const ripc__addr *a, int passive, int notfound, struct addrinfo **res, char *why,
                   size_t why_len)
{
    struct addrinfo hints;
    char port[8];
    int r;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
    snprintf(port, sizeof port, "%u", (unsigned)a->port);
    r = getaddrinfo(a->host, port, &hints, res);
    if (r == 0)
        return 0;
    *res = NULL;
    if (r == EAI_SYSTEM) {
        int e = errno != 0 ? errno : EIO;
        set_why(why, why_len, e, "resolve '%s'", a->host);
        return -e;
    }
    set_why(why, why_len, 0, "resolve '%s': %s", a->host, gai_strerror(r));
    if (r == EAI_MEMORY)
        return -ENOMEM;
    if (r == EAI_AGAIN)
        return -EAGAIN;
    return notfound;
}

static void set_nodelay(int fd)
{
    int one = 1;
    /* Best effort: a missing NODELAY costs latency, not correctness. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static int sock_family(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
        return -errno;
    return ss.ss_family;
}

int ripc__sock_set_nonblock(intptr_t fd, int on)
{
    int fl = fcntl((int)fd, F_GETFL);
    if (fl < 0)
        return -errno;
    fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
    if (fcntl((int)fd, F_SETFL, fl) != 0)
        return -errno;
    return 0;
}

void ripc__sock_close(intptr_t fd)
{
    /* No retry on EINTR: on Linux the descriptor is gone either way. */
    if (fd >= 0)
        close((int)fd);
}

/* ---- listen ---- */

/*
 * Make room for a unix listener at sun. A socket file that refuses a
 * connection has no listener behind it (its server died without unlinking):
 * remove it. The probe is non-blocking, so a live server with a full backlog
 * (EAGAIN) counts as live instead of stalling us.
 */
static int reclaim_stale(const ripc__addr *a, const struct sockaddr_un *sun, socklen_t slen,
                         char *why, size_t why_len)
{
    struct stat st, st2;
    int probe, err;

    if (lstat(a->path, &st) != 0) {
        if (errno == ENOENT)
            return 0;
        err = errno;
        set_why(why, why_len, err, "stat %s", a->path);
        return -err;
    }
    if (!S_ISSOCK(st.st_mode)) {
        set_why(why, why_len, 0, "%s exists and is not a socket", a->path);
        return -EEXIST;
    }
    probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (probe < 0) {
        err = errno;
        set_why(why, why_len, err, "socket");
        return -err;
    }
    do
        err = connect(probe, (const struct sockaddr *)sun, slen) == 0 ? 0 : errno;
    while (err == EINTR);
    close(probe);

    switch (err) {
    case ENOENT: /* removed meanwhile */
        return 0;
    case ECONNREFUSED:
        /* Remove only the file we probed, not one a racing server just made. */
        if (lstat(a->path, &st2) != 0)
            return 0;
        if (st2.st_dev == st.st_dev && st2.st_ino == st.st_ino && unlink(a->path) != 0 &&
            errno != ENOENT) {
            err = errno;
            set_why(why, why_len, err, "remove stale socket %s", a->path);
            return -err;
        }
        return 0;
    case 0:
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
    case EINPROGRESS:
        set_why(why, why_len, 0, "a server is already listening on %s", a->path);
        return -EADDRINUSE;
    case EPROTOTYPE:
        set_why(why, why_len, 0, "%s is in use by a socket of another type", a->path);
        return -EADDRINUSE;
    default:
        set_why(why, why_len, err, "probe %s", a->path);
        return -err;
    }
}

/* An abstract name: no file, so nothing stale to reclaim, no mode to set and
 * nothing to unlink; a name in use is a live listener (the kernel frees it
 * with the last socket bound to it). Who may connect is up to the caller's
 * credential check (ripc__sock_peer_cred): the namespace has no permissions. */
static int listen_abstract(const ripc__addr *a, const struct sockaddr_un *sun, socklen_t slen,
                           intptr_t *out, char *why, size_t why_len)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        int err = errno;
        set_why(why, why_len, err, "socket");
        return -err;
    }
    if (bind(fd, (const struct sockaddr *)sun, slen) != 0 || listen(fd, SOCK_BACKLOG) != 0) {
        int err = errno;
        if (err == EADDRINUSE)
            set_why(why, why_len, 0, "a server is already listening on unix:%s", a->path);
        else
            set_why(why, why_len, err, "bind unix:%s", a->path);
        close(fd);
        return -err;
    }
    *out = fd;
    return 0;
}

static int listen_unix(ripc__addr *a, intptr_t *out, char *why, size_t why_len)
{
    struct sockaddr_un sun;
    socklen_t slen;
    struct stat st, st2;
    int fd, r, err;

    r = unix_sockaddr(a, &sun, &slen, why, why_len);
    if (r != 0)
        return r;
    if (ripc__addr_abstract(a))
        return listen_abstract(a, &sun, slen, out, why, why_len);
    r = reclaim_stale(a, &sun, slen, why, why_len);
    if (r != 0)
        return r;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        err = errno;
        set_why(why, why_len, err, "socket");
        return -err;
    }
    if (bind(fd, (const struct sockaddr *)&sun, slen) != 0) {
        err = errno;
        set_why(why, why_len, err, "bind %s", a->path);
        close(fd);
        return -err;
    }
    /*
     * The file exists now with umask-dependent permissions, but nobody can
     * connect before listen(), so tightening it here leaves no window. umask()
     * would avoid the chmod but is process-wide (racy with other threads).
     * chmod follows symlinks: check the path is our socket before and after.
     */
    if (lstat(a->path, &st) != 0 || !S_ISSOCK(st.st_mode)) {
        set_why(why, why_len, 0, "%s was replaced right after bind", a->path);
        close(fd);
        return -EEXIST;
    }
    a->dev = (uint64_t)st.st_dev;
    a->ino = (uint64_t)st.st_ino;
    if (chmod(a->path, S_IRUSR | S_IWUSR) != 0) {
        err = errno;
        set_why(why, why_len, err, "chmod 0600 %s", a->path);
        goto fail;
    }
    if (lstat(a->path, &st2) != 0 || st2.st_dev != st.st_dev || st2.st_ino != st.st_ino) {
        err = EEXIST;
        set_why(why, why_len, 0, "%s was replaced right after bind", a->path);
        goto fail;
    }
    if (listen(fd, SOCK_BACKLOG) != 0) {
        err = errno;
        set_why(why, why_len, err, "listen %s", a->path);
        goto fail;
    }
    *out = fd;
    return 0;

fail:
    ripc__sock_unlink(a, fd);
    close(fd);
    a->dev = 0;
    a->ino = 0;
    return -err;
}

static int listen_tcp(ripc__addr *a, intptr_t *out, char *why, size_t why_len)
{
    struct addrinfo *res, *ai;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    const char *step = "socket";
    int fd = -1, err = EADDRNOTAVAIL, r;

    r = resolve(a, 1, -EADDRNOTAVAIL, &res, why, why_len);
    if (r != 0)
        return r;
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        int one = 1;
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            step = "socket";
            continue;
        }
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            if (listen(fd, SOCK_BACKLOG) == 0)
                break;
            step = "listen";
        } else {
            step = "bind";
        }
        err = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        set_why(why, why_len, err, "%s tcp://%s:%u", step, a->host, (unsigned)a->port);
        return -err;
    }
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
        err = errno;
        set_why(why, why_len, err, "getsockname");
        close(fd);
        return -err;
    }
    if (ss.ss_family == AF_INET)
        a->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    else if (ss.ss_family == AF_INET6)
        a->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    *out = fd;
    return 0;
}

int ripc__sock_listen(ripc__addr *a, intptr_t *fd, char *why, size_t why_len)
{
    *fd = -1;
    if (a->kind == RIPC_ADDR_UNIX)
        return listen_unix(a, fd, why, why_len);
    if (a->kind == RIPC_ADDR_TCP)
        return listen_tcp(a, fd, why, why_len);
    set_why(why, why_len, 0, "bad address kind %d", a->kind);
    return -EINVAL;
}

/*
 * Unlink by path cannot be atomic with the identity check, so the window is
 * lstat -> unlink. The inode number is a safe identity only while lfd is open
 * (the bound socket pins the inode, so the number cannot be reused): that is
 * why lfd must still be ours and bound to this path.
 */
void ripc__sock_unlink(const ripc__addr *a, intptr_t lfd)
{
    struct sockaddr_un sun;
    socklen_t sl = sizeof sun;
    struct stat st;

    if (a == NULL || a->kind != RIPC_ADDR_UNIX || (a->dev == 0 && a->ino == 0) || lfd < 0)
        return;
    memset(&sun, 0, sizeof sun);
    if (getsockname((int)lfd, (struct sockaddr *)&sun, &sl) != 0 || sun.sun_family != AF_UNIX ||
        strncmp(sun.sun_path, a->path, sizeof sun.sun_path) != 0)
        return;
    if (lstat(a->path, &st) != 0 || !S_ISSOCK(st.st_mode) || (uint64_t)st.st_dev != a->dev ||
        (uint64_t)st.st_ino != a->ino)
        return;
    (void)unlink(a->path);
}

/* ---- connect / accept ---- */

/*
 * Linux unix sockets: a non-blocking connect to a listener whose backlog is
 * full fails with EAGAIN and cannot be polled for completion. A blocking
 * connect waits for room, bounded by SO_SNDTIMEO, so use that for the time
 * left and clear it afterwards.
 */
static int connect_unix_wait(int fd, const struct sockaddr *sa, socklen_t slen, uint64_t deadline)
{
    static const struct timeval forever = {0, 0};
    int r, err;

    r = ripc__sock_set_nonblock(fd, 0);
    if (r != 0)
        return r;
    for (;;) {
        int left = ripc__remaining_ms(deadline);
        struct timeval tv = forever;
        if (left == 0) {
            err = ETIMEDOUT;
            break;
        }
        if (left > 0) {
            tv.tv_sec = left / 1000;
            tv.tv_usec = (left % 1000) * 1000;
        }
        if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) {
            err = errno;
            break;
        }
        if (connect(fd, sa, slen) == 0) {
            err = 0;
            break;
        }
        err = errno;
        if (err != EINTR && err != EAGAIN && err != EWOULDBLOCK)
            break;
    }
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &forever, sizeof forever);
    return -err;
}

/* Connect the non-blocking fd to sa before deadline. */
static int connect_fd(int fd, const struct sockaddr *sa, socklen_t slen, uint64_t deadline)
{
    socklen_t elen;
    int err, r;

    for (;;) {
        if (connect(fd, sa, slen) == 0)
            return 0;
        err = errno;
        if (err == EINTR && sa->sa_family == AF_UNIX)
            continue; /* unix connect has no in-progress state to wait for */
        break;
    }
    if ((err == EAGAIN || err == EWOULDBLOCK) && sa->sa_family == AF_UNIX)
        return connect_unix_wait(fd, sa, slen, deadline);
    if (err != EINPROGRESS && err != EINTR)
        return -err;
    r = wait_fd(fd, POLLOUT, deadline);
    if (r == 0)
        return -ETIMEDOUT;
    if (r < 0)
        return r;
    elen = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
        return -errno;
    return -err;
}

static int connect_unix(const ripc__addr *a, int *out, uint64_t deadline, char *why, size_t why_len)
{
    struct sockaddr_un sun;
    socklen_t slen;
    int fd, r;

    r = unix_sockaddr(a, &sun, &slen, why, why_len);
    if (r != 0)
        return r;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        r = -errno;
        set_why(why, why_len, -r, "socket");
        return r;
    }
    r = connect_fd(fd, (const struct sockaddr *)&sun, slen, deadline);
    if (r == -ENOENT)
        r = -ECONNREFUSED; /* no file: nobody listens, same as a stale one */
    if (r != 0) {
        set_why(why, why_len, -r, "connect unix:%s", a->path);
        close(fd);
        return r;
    }
    *out = fd;
    return 0;
}

static int connect_tcp(const ripc__addr *a, int *out, uint64_t deadline, char *why, size_t why_len)
{
    struct addrinfo *res, *ai;
    int fd = -1, r = -EHOSTUNREACH;

    if (a->port == 0) {
        set_why(why, why_len, 0, "cannot connect to port 0");
        return -EINVAL;
    }
    r = resolve(a, 0, -EHOSTUNREACH, &res, why, why_len);
    if (r != 0)
        return r;
    r = -EHOSTUNREACH;
    /* "localhost" may give ::1 then 127.0.0.1: try each until one answers. */
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0) {
            r = -errno;
            continue;
        }
        r = connect_fd(fd, ai->ai_addr, ai->ai_addrlen, deadline);
        if (r == 0)
            break;
        close(fd);
        fd = -1;
        if (r == -ETIMEDOUT)
            break;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        set_why(why, why_len, -r, "connect tcp://%s:%u", a->host, (unsigned)a->port);
        return r;
    }
    set_nodelay(fd);
    *out = fd;
    return 0;
}

int ripc__sock_connect(const ripc__addr *a, intptr_t *fd, int timeout_ms, char *why, size_t why_len)
{
    uint64_t deadline = ripc__deadline(timeout_ms);
    int nfd = -1, r;

    *fd = -1;
    if (a->kind == RIPC_ADDR_UNIX) {
        r = connect_unix(a, &nfd, deadline, why, why_len);
    } else if (a->kind == RIPC_ADDR_TCP) {
        r = connect_tcp(a, &nfd, deadline, why, why_len);
    } else {
        set_why(why, why_len, 0, "bad address kind %d", a->kind);
        return -EINVAL;
    }
    if (r != 0)
        return r;
    r = ripc__sock_set_nonblock(nfd, 0);
    if (r != 0) {
        set_why(why, why_len, -r, "fcntl");
        close(nfd);
        return r;
    }
    *fd = nfd;
    return 0;
}

int ripc__sock_accept(intptr_t lfd, intptr_t *fd)
{
    *fd = -1;
    for (;;) {
        /* Linux: the accepted socket does not inherit O_NONBLOCK, so it is blocking. */
        int nfd = accept4((int)lfd, NULL, NULL, SOCK_CLOEXEC);
        if (nfd >= 0) {
            int fam = sock_family(nfd);
            if (fam == AF_INET || fam == AF_INET6)
                set_nodelay(nfd);
            *fd = nfd;
            return 0;
        }
        switch (errno) {
        case EINTR:
        case ECONNABORTED:
        /* Linux reports a pending connection's network error through accept:
         * that connection is gone, the next one may be fine. */
        case EPROTO:
        case ENETDOWN:
        case ENETUNREACH:
        case EHOSTDOWN:
        case EHOSTUNREACH:
        case ENOPROTOOPT:
            continue;
        case EAGAIN:
#if EWOULDBLOCK != EAGAIN
        case EWOULDBLOCK:
#endif
            return -EAGAIN;
        default:
            return -errno;
        }
    }
}

/* ---- data and descriptors ---- */

typedef union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int) * SOCK_MAX_FDS)];
} fd_control;

/* Room for the most descriptors one message can carry: the kernel never
 * truncates what a peer sent, as what it drops it releases in the receiving
 * thread (sockets/closer.h). */
typedef union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int) * RIPC_SOCK_RECV_FDS)];
} fd_recv_control;

/* Put nfds (<= SOCK_MAX_FDS) descriptors into m's control data (SCM_RIGHTS). */
static void attach_fds(struct msghdr *m, fd_control *ctl, const int *fds, int nfds)
{
    if (nfds <= 0)
        return;
    memset(ctl, 0, sizeof *ctl);
    m->msg_control = ctl->buf;
    m->msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
    struct cmsghdr *c = CMSG_FIRSTHDR(m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
}

long ripc__sock_try_send_fds(intptr_t fd, const void *buf, size_t len, const int *fds, int nfds)
{
    fd_control ctl;
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    struct msghdr m;
    ssize_t n;

    if (nfds < 0 || nfds > SOCK_MAX_FDS || (nfds > 0 && (fds == NULL || len == 0)))
        return -EINVAL;
    memset(&m, 0, sizeof m);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    attach_fds(&m, &ctl, fds, nfds);
    do
        n = sendmsg((int)fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n >= 0)
        return (long)n;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return -EAGAIN;
    return errno == EPIPE || errno == ECONNRESET ? -EPIPE : -errno;
}

int ripc__sock_send_fds(intptr_t fd, const void *buf, size_t len, const int *fds, int nfds)
{
    const char *p = buf;
    size_t done = 0;
    fd_control ctl;

    if (nfds < 0 || nfds > SOCK_MAX_FDS || (nfds > 0 && (fds == NULL || len == 0)))
        return -EINVAL;
    while (done < len) {
        struct iovec iov = {.iov_base = (void *)(p + done), .iov_len = len - done};
        struct msghdr m;
        ssize_t n;

        memset(&m, 0, sizeof m);
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        /* The descriptors ride on the first byte: attach them until a send
         * has taken at least one byte, then never again. */
        if (done == 0)
            attach_fds(&m, &ctl, fds, nfds);
        n = sendmsg((int)fd, &m, MSG_NOSIGNAL);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n == 0)
            return -EIO; /* cannot happen with len > 0; do not spin */
        switch (errno) {
        case EINTR:
            continue;
        case EAGAIN:
#if EWOULDBLOCK != EAGAIN
        case EWOULDBLOCK:
#endif
        {
            /* The contract says blocking, but cope with a non-blocking fd. */
            int r = wait_fd((int)fd, POLLOUT, -1);
            if (r < 0)
                return r;
            continue;
        }
        case EPIPE:
        case ECONNRESET:
            return -EPIPE;
        default:
            return -errno;
        }
    }
    return 0;
}

/* Move the descriptors of one received message into fds; 1 when any did not
 * fit (those are disposed of), else 0. */
static int take_fds(struct msghdr *m, int *fds, int max_fds, int *have)
{
    int overflow = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c != NULL; c = CMSG_NXTHDR(m, c)) {
        size_t k;
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len < CMSG_LEN(0))
            continue;
        k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int x;
            memcpy(&x, CMSG_DATA(c) + i * sizeof(int), sizeof x);
            if (*have < max_fds) {
                fds[(*have)++] = x;
            } else {
                ripc__fd_dispose(x);
                overflow = 1;
            }
        }
    }
    return overflow;
}

int ripc__sock_recv_fds(intptr_t fd, void *buf, size_t len, int *fds, int max_fds, int *nfds,
                        int timeout_ms)
{
    uint64_t deadline = ripc__deadline(timeout_ms);
    char *p = buf;
    size_t got = 0;
    int have = 0, r = 0;
    fd_recv_control ctl;

    if (nfds != NULL)
        *nfds = 0;
    if (max_fds < 0 || (max_fds > 0 && (fds == NULL || nfds == NULL)))
        return -EINVAL;
    while (got < len) {
        struct iovec iov = {.iov_base = p + got, .iov_len = len - got};
        struct msghdr m;
        ssize_t n;

        if (deadline != RIPC_DEADLINE_NEVER) {
            r = wait_fd((int)fd, POLLIN, deadline);
            if (r == 0)
                r = -ETIMEDOUT;
            if (r <= 0)
                goto fail;
        }
        memset(&m, 0, sizeof m);
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        m.msg_control = ctl.buf;
        m.msg_controllen = sizeof ctl.buf;
        n = recvmsg((int)fd, &m, MSG_CMSG_CLOEXEC);
        if (n < 0) {
            int err = errno;
            if (err == EINTR)
                continue;
            if (err == EAGAIN || err == EWOULDBLOCK) {
                /* Non-blocking fd with no deadline: wait here instead of spinning. */
                if (deadline == RIPC_DEADLINE_NEVER &&
                    (r = wait_fd((int)fd, POLLIN, RIPC_DEADLINE_NEVER)) < 0)
                    goto fail;
                continue;
            }
            r = err == ECONNRESET ? -EPIPE : -err;
            goto fail;
        }
        /* Descriptors first: whatever happens next, none may leak. More than
         * the caller takes, or MSG_CTRUNC (no room left in our descriptor
         * table: the kernel has dropped the rest): the stream is not ours
         * to trust any more. */
        if (take_fds(&m, fds, max_fds, &have) || (m.msg_flags & MSG_CTRUNC)) {
            r = -EPROTO;
            goto fail;
        }
        if (n == 0) {
            r = -EPIPE;
            goto fail;
        }
        got += (size_t)n;
    }
    if (nfds != NULL)
        *nfds = have;
    return 0;

fail:
    for (int i = 0; i < have; i++) {
        ripc__fd_dispose(fds[i]);
        fds[i] = -1;
    }
    return r;
}

/* One non-blocking recvmsg with room for every descriptor the message may
 * carry; they go to fds[*have .. max_fds), the rest are disposed of (*over
 * set, as with MSG_CTRUNC). Bytes, 0 at end of stream, or -errno. */
static long recv_once(int fd, void *buf, size_t len, int *fds, int max_fds, int *have, int *over)
{
    fd_recv_control ctl;
    struct iovec iov = {.iov_base = buf, .iov_len = len};
    struct msghdr m;
    ssize_t n;

    memset(&m, 0, sizeof m);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctl.buf;
    m.msg_controllen = sizeof ctl.buf;
    do
        n = recvmsg(fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return -EAGAIN;
        return errno == ECONNRESET ? -EPIPE : -errno;
    }
    *over = take_fds(&m, fds, max_fds, have) || (m.msg_flags & MSG_CTRUNC);
    return (long)n;
}

long ripc__sock_try_recv_fds(intptr_t fd, void *buf, size_t len, int *fds, int max_fds, int *nfds)
{
    if (max_fds < 0 || max_fds > RIPC_SOCK_RECV_FDS ||
        (max_fds > 0 && (fds == NULL || nfds == NULL)))
        return -EINVAL;
    int have = nfds ? *nfds : 0, over = 0;
    long n = recv_once((int)fd, buf, len, fds, max_fds, &have, &over);
    if (nfds)
        *nfds = have;
    if (n >= 0 && over)
        return -EPROTO;
    return n;
}

long ripc__sock_try_recv(intptr_t fd, void *buf, size_t len)
{
    int have = 0, over = 0;
    return recv_once((int)fd, buf, len, NULL, 0, &have, &over);
}

int ripc__sock_send_all(intptr_t fd, const void *buf, size_t len)
{
    return ripc__sock_send_fds(fd, buf, len, NULL, 0);
}

int ripc__sock_recv_all(intptr_t fd, void *buf, size_t len, int timeout_ms)
{
    return ripc__sock_recv_fds(fd, buf, len, NULL, 0, NULL, timeout_ms);
}

/* ---- peer ---- */

int ripc__sock_peer_cred(intptr_t fd, uint32_t *uid, uint32_t *gid, int32_t *pid)
{
    int fam = sock_family((int)fd);
    if (fam < 0)
        return fam;
    if (fam != AF_UNIX)
        return -ENOTSUP;
#if defined(__linux__)
    struct ucred uc;
    socklen_t ul = sizeof uc;
    if (getsockopt((int)fd, SOL_SOCKET, SO_PEERCRED, &uc, &ul) != 0)
        return -errno;
    if (uid != NULL)
        *uid = (uint32_t)uc.uid;
    if (gid != NULL)
        *gid = (uint32_t)uc.gid;
    if (pid != NULL)
        *pid = (int32_t)uc.pid;
#else
    uid_t u;
    gid_t g;
    if (getpeereid((int)fd, &u, &g) != 0)
        return -errno;
    if (uid != NULL)
        *uid = (uint32_t)u;
    if (gid != NULL)
        *gid = (uint32_t)g;
    if (pid != NULL)
        *pid = -1; /* getpeereid does not tell */
#endif
    return 0;
}

int ripc__sock_alive(intptr_t fd)
{
    struct pollfd p = {.fd = (int)fd, .events = POLLIN | POLLRDHUP};
    char c;
    ssize_t n;
    int r;

    do
        r = poll(&p, 1, 0);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return 0;
    if (r == 0)
        return 1;
    if (p.revents & (POLLHUP | POLLERR | POLLNVAL | POLLRDHUP))
        return 0;
    if (!(p.revents & POLLIN))
        return 1;
    /* Readable: either data (alive) or a plain EOF (gone). */
    do
        n = recv((int)fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n > 0)
        return 1;
    if (n == 0)
        return 0;
    return errno == EAGAIN || errno == EWOULDBLOCK;
}
