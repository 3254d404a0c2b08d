/* SPDX-License-Identifier: MIT */
/* Windows helpers the platform files share (platform/win32.h). */
#include "platform/win32.h"

#include <errno.h>

int ripc__win32_errno(DWORD err)
{
    switch (err) {
    case ERROR_SUCCESS:
        return 0;
    case ERROR_INVALID_HANDLE:
        return -EBADF;
    case ERROR_ACCESS_DENIED:
    case ERROR_PRIVILEGE_NOT_HELD:
        return -EACCES;
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY:
    case ERROR_COMMITMENT_LIMIT:
        return -ENOMEM;
    case ERROR_DISK_FULL:
    case ERROR_HANDLE_DISK_FULL:
        return -ENOSPC;
    case ERROR_TOO_MANY_OPEN_FILES:
    case ERROR_NO_SYSTEM_RESOURCES:
        return -EMFILE;
    case ERROR_INVALID_PARAMETER:
    case ERROR_INVALID_ADDRESS:
        return -EINVAL;
    case ERROR_FILE_INVALID:
    case ERROR_INVALID_ACCESS:
        return -EPERM;
    case ERROR_CALL_NOT_IMPLEMENTED:
    case ERROR_NOT_SUPPORTED:
        return -ENOSYS;
    case ERROR_BROKEN_PIPE:
    case ERROR_NO_DATA:
    case ERROR_PIPE_NOT_CONNECTED:
        return -EPIPE;
    case ERROR_TIMEOUT:
    case WAIT_TIMEOUT:
        return -ETIMEDOUT;
    default:
        return -EIO;
    }
}

int ripc__handle_give(HANDLE process, HANDLE h, DWORD access, HANDLE *out)
{
    *out = NULL;
    if (!DuplicateHandle(GetCurrentProcess(), h, process, out, access, FALSE, 0)) {
        *out = NULL;
        return ripc__win32_errno(GetLastError());
    }
    return 0;
}
