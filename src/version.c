/* SPDX-License-Identifier: MIT */
/* The version of the library that is loaded (ringipc.h: RIPC_VERSION_*). */
#include "ringipc/ringipc.h"

#define RIPC_STR_(x) #x
#define RIPC_STR(x)  RIPC_STR_(x)

const char *ripc_version(void)
{
    return RIPC_STR(RIPC_VERSION_MAJOR) "." RIPC_STR(RIPC_VERSION_MINOR) "." RIPC_STR(
        RIPC_VERSION_PATCH);
}

unsigned ripc_version_number(void)
{
    return RIPC_VERSION_NUMBER;
}
