/* SPDX-License-Identifier: MIT */
/*
 * Closing on Windows (contract: sockets/closer.h). Nothing a peer hands
 * over arrives with bytes here (handles travel by DuplicateHandle, sent
 * as values), and closing a handle never runs a release a peer chose in
 * the closing thread the way a last close() of a file can: a pipe or
 * socket close cancels our own I/O and returns. So every close happens
 * inline; there are no closer threads and nothing is ever held for them.
 * A connection descriptor (sockets/sock.h, "On Windows") goes through
 * ripc__sock_close, anything else is a handle.
 */
#include "sockets/closer.h"

#include "sockets/sock_win32.h"

void ripc__fd_close(int fd)
{
    if (fd >= 0)
        ripc__sock_close(fd);
}

void ripc__fd_dispose(int fd)
{
    ripc__fd_close(fd);
}

void ripc__sock_dispose(int fd)
{
    ripc__fd_close(fd);
}

void ripc__fd_dispose_wait(void)
{
}

int ripc__fd_dispose_full(void)
{
    return 0;
}

/* Handles are not counted against a small per-process table as
 * descriptors are: an unnamed event stands in, so that the core's reserve
 * logic has something to close. */
int ripc__fd_reserve(void)
{
    HANDLE h = CreateEventW(NULL, TRUE, FALSE, NULL);
    return h == NULL ? ripc__win32_errno(GetLastError()) : ripc__handle_to_fd(h);
}

int ripc__fd_limit_raise(void)
{
    return 0;
}

uint64_t ripc__fd_limit(void)
{
    return 0;
}
