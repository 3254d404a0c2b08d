/* SPDX-License-Identifier: MIT */
/*
 * Peer credentials on Windows (contract: sockets/sock.h): the pipe peer's
 * process id from the pipe, and whether it runs as our user from its
 * token's user SID.
 */
#include "sockets/sock_win32.h"

#include <errno.h>

/* The token user SID of process pid into buf: 0 or -errno. */
static int user_sid(DWORD pid, void *buf, DWORD len)
{
    HANDLE p = pid == GetCurrentProcessId()
                   ? GetCurrentProcess()
                   : OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid);
    if (p == NULL)
        return -EACCES;
    HANDLE tok;
    int rc = -EACCES;
    if (OpenProcessToken(p, TOKEN_QUERY, &tok)) {
        DWORD n = 0;
        if (GetTokenInformation(tok, TokenUser, buf, len, &n))
            rc = 0;
        CloseHandle(tok);
    }
    if (p != GetCurrentProcess())
        CloseHandle(p);
    return rc;
}

static int peer_pid(intptr_t fd, DWORD *pid)
{
    wconn *c = ripc__wconn_get(fd);
    if (c == NULL)
        return -EBADF;
    if (c->kind != W_PIPE)
        return -ENOTSUP;
    int rc = 0;
    EnterCriticalSection(&c->rmu);
    if (c->h == NULL)
        rc = -EPIPE;
    else if (!(c->server ? GetNamedPipeClientProcessId(c->h, pid)
                         : GetNamedPipeServerProcessId(c->h, pid)))
        rc = ripc__win32_errno(GetLastError());
    LeaveCriticalSection(&c->rmu);
    return rc;
}

int ripc__sock_peer_same_user(intptr_t fd)
{
    DWORD pid;
    int rc = peer_pid(fd, &pid);
    if (rc < 0)
        return rc;
    union {
        TOKEN_USER tu;
        char buf[256];
    } ours, theirs;
    if ((rc = user_sid(GetCurrentProcessId(), &ours, sizeof ours)) < 0 ||
        (rc = user_sid(pid, &theirs, sizeof theirs)) < 0)
        return rc;
    return EqualSid(ours.tu.User.Sid, theirs.tu.User.Sid) ? 1 : 0;
}

int ripc__sock_peer_cred(intptr_t fd, uint32_t *uid, uint32_t *gid, int32_t *pid)
{
    DWORD p;
    int rc = peer_pid(fd, &p);
    if (rc < 0)
        return rc;
    int same = ripc__sock_peer_same_user(fd);
    if (same < 0)
        return same;
    if (uid)
        *uid = same ? 0 : RIPC_UID_OTHER;
    if (gid)
        *gid = 0;
    if (pid)
        *pid = (int32_t)p;
    return 0;
}
