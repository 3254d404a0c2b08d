/* SPDX-License-Identifier: MIT */
/*
 * Listening and accepting on a control-channel address (contract:
 * sockets/sock.h): a unix path (stale-socket reclaim, mode 0600, unlink of
 * exactly our file), a Linux abstract name, or TCP.
 */
#include "sockets/sock_posix.h"

#include <sys/stat.h>
#include <unistd.h>

#define SOCK_BACKLOG 128

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
    probe = sock_new(AF_UNIX, SOCK_STREAM, 0);
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
    int fd = sock_new(AF_UNIX, SOCK_STREAM, 0);
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
    fd = sock_new(AF_UNIX, SOCK_STREAM, 0);
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
        fd = sock_new(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
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

int ripc__sock_accept(intptr_t lfd, intptr_t *fd)
{
    *fd = -1;
    for (;;) {
        int nfd = sock_accept_new((int)lfd);
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
