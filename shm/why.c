/* SPDX-License-Identifier: MIT */
#include "shm/why.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* strerror_r comes in a GNU (char *) and an XSI (int) flavour. */
static const char *err_text(int err, char *buf, size_t len)
{
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
    return strerror_r(err, buf, len);
#elif defined(_WIN32)
    if (strerror_s(buf, len, err) != 0)
        snprintf(buf, len, "error %d", err);
    return buf;
#else
    if (strerror_r(err, buf, len) != 0)
        snprintf(buf, len, "error %d", err);
    return buf;
#endif
}

void ripc__set_why(char *why, size_t why_len, int err, const char *fmt, ...)
{
    va_list ap;

    if (why == NULL || why_len == 0)
        return;
    va_start(ap, fmt);
    int n = vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
    if (err != 0 && n >= 0 && (size_t)n < why_len) {
        char ebuf[96];
        snprintf(why + n, why_len - (size_t)n, ": %s", err_text(err, ebuf, sizeof ebuf));
    }
}
