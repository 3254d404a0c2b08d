/* SPDX-License-Identifier: MIT */
/*
 * Winsock2 for tcp:// on Windows (sockets/sock_win32.h): started once per
 * process, its errors as -errno, names resolved, sockets prepared.
 */
#include "sockets/sock_win32.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static INIT_ONCE wsa_once = INIT_ONCE_STATIC_INIT;
static int wsa_rc;

static BOOL CALLBACK wsa_init(PINIT_ONCE once, PVOID param, PVOID *ctx)
{
    WSADATA d;
    int r = WSAStartup(MAKEWORD(2, 2), &d);
    wsa_rc = r == 0 ? 0 : ripc__wsa_errno(r);
    return TRUE;
}

int ripc__wsa_start(void)
{
    InitOnceExecuteOnce(&wsa_once, wsa_init, NULL, NULL);
    return wsa_rc;
}

int ripc__wsa_errno(int err)
{
    switch (err) {
    case 0:
        return 0;
    case WSAEWOULDBLOCK:
        return -EAGAIN;
    case WSAECONNREFUSED:
        return -ECONNREFUSED;
    case WSAETIMEDOUT:
        return -ETIMEDOUT;
    case WSAEADDRINUSE:
    case WSAEACCES: /* SO_EXCLUSIVEADDRUSE: another socket holds the port */
        return -EADDRINUSE;
    case WSAEADDRNOTAVAIL:
        return -EADDRNOTAVAIL;
    case WSAECONNRESET:
    case WSAECONNABORTED:
    case WSAESHUTDOWN:
    case WSAENOTCONN:
    case WSAENETRESET:
        return -EPIPE;
    case WSAENOBUFS:
        return -ENOMEM;
    case WSAEMFILE:
        return -EMFILE;
    case WSAEINVAL:
    case WSAEFAULT:
        return -EINVAL;
    case WSAENOTSOCK:
        return -EBADF;
    case WSAEAFNOSUPPORT:
    case WSAEPROTONOSUPPORT:
        return -ENOTSUP;
    case WSAENETUNREACH:
    case WSAEHOSTUNREACH:
        return -ENETUNREACH;
    case WSANOTINITIALISED:
    case WSASYSNOTREADY:
        return -ENOSYS;
    default:
        return ripc__win32_errno((DWORD)err);
    }
}

int ripc__tcp_resolve(const ripc__addr *a, int passive, int notfound, struct addrinfo **res,
                      char *why, size_t why_len)
{
    struct addrinfo hints;
    char port[8];
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
    *res = NULL;
    int r = ripc__wsa_start();
    if (r < 0) {
        set_why(why, why_len, 0, "Winsock did not start");
        return r;
    }
    snprintf(port, sizeof port, "%u", (unsigned)a->port);
    r = getaddrinfo(a->host[0] ? a->host : NULL, port, &hints, res);
    if (r == 0)
        return 0;
    *res = NULL;
    set_why(why, why_len, 0, "resolve '%s': Winsock error %d", a->host, r);
    if (r == WSA_NOT_ENOUGH_MEMORY || r == EAI_MEMORY)
        return -ENOMEM;
    if (r == WSATRY_AGAIN)
        return -EAGAIN;
    return notfound;
}

void ripc__tcp_prepare(SOCKET s)
{
    u_long zero = 0;
    BOOL one = TRUE;
    WSAEventSelect(s, NULL, 0); /* what accept inherits from the listener */
    ioctlsocket(s, FIONBIO, &zero);
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, (const char *)&one, sizeof one);
    SetHandleInformation((HANDLE)s, HANDLE_FLAG_INHERIT, 0);
}

int ripc__tcp_socket(const struct addrinfo *ai, SOCKET *s)
{
    *s = WSASocketW(ai->ai_family, ai->ai_socktype, ai->ai_protocol, NULL, 0,
                    WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
    return *s == INVALID_SOCKET ? ripc__wsa_errno(WSAGetLastError()) : 0;
}
