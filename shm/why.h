/* SPDX-License-Identifier: MIT */
/* One line of detail about a failure, for the `why` buffers of shm/ and
 * sockets/: "<step>: <strerror(err)>", or just the step when err == 0.
 * why may be NULL. */
#ifndef RIPC_SHM_WHY_H
#define RIPC_SHM_WHY_H

#include <stddef.h>

void ripc__set_why(char *why, size_t why_len, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
