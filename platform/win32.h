/* SPDX-License-Identifier: MIT */
/*
 * Windows only: what the Windows files of the platform layer share.
 *
 * Handles in descriptor fields. The contract's structs keep descriptors in
 * int (doorbells) or intptr_t (segments) fields; on Windows those fields
 * hold kernel handles. Windows defines kernel handle values as fitting in
 * 32 bits (a 64-bit process may truncate one to 32 bits and sign-extend it
 * back: that is how 32- and 64-bit processes share them), so an int holds
 * one, and -1 (INVALID_HANDLE_VALUE when extended) stays "none".
 *
 * Handles for a peer. Nothing is inherited and nothing is named: the side
 * that made an object duplicates it into the peer's process with the
 * rights the peer needs and no more (ripc__handle_give), and sends the
 * value it got; the peer adopts that value. A worker given a mapping with
 * FILE_MAP_READ | FILE_MAP_WRITE cannot resize or re-protect the section,
 * and one given an event with EVENT_MODIFY_STATE | SYNCHRONIZE cannot make
 * a SetEvent block or fail.
 */
#ifndef RIPC_PLATFORM_WIN32_H
#define RIPC_PLATFORM_WIN32_H

#include <stdint.h>
#include <windows.h>

/* A handle as the int kept in a descriptor field, and back. */
static inline int ripc__handle_to_fd(HANDLE h)
{
    return h == NULL || h == INVALID_HANDLE_VALUE ? -1 : (int)(intptr_t)h;
}

static inline HANDLE ripc__fd_to_handle(intptr_t fd)
{
    return fd < 0 ? NULL : (HANDLE)fd;
}

/* The negative errno for a Win32 error code (GetLastError()); -EIO for
 * codes with no closer match. */
int ripc__win32_errno(DWORD err);

/*
 * Duplicate h (ours) into the process `process` (a handle to it with
 * PROCESS_DUP_HANDLE) with exactly the rights `access`, not inheritable;
 * *out is the value in that process (meaningless in ours). 0, or the
 * -errno of DuplicateHandle's error. Ours stays open either way.
 */
int ripc__handle_give(HANDLE process, HANDLE h, DWORD access, HANDLE *out);

#endif /* RIPC_PLATFORM_WIN32_H */
