/* SPDX-License-Identifier: MIT */
/* The library's one formatter for the `why` buffers its calls fill: one line
 * of detail about a failure, "<step>: <strerror(err)>", or just the step when
 * err == 0. Truncated to why_len; why may be NULL. */
#ifndef RIPC_SHM_WHY_H
#define RIPC_SHM_WHY_H

#include <stddef.h>

/* mingw-w64's format checks follow its own printf (C99 with
 * __USE_MINGW_ANSI_STDIO, which the Windows build sets). */
#if defined(__MINGW32__)
#define RIPC_PRINTF_FORMAT gnu_printf
#else
#define RIPC_PRINTF_FORMAT printf
#endif

void ripc__set_why(char *why, size_t why_len, int err, const char *fmt, ...)
    __attribute__((format(RIPC_PRINTF_FORMAT, 4, 5)));

#endif
