/* SPDX-License-Identifier: MIT */
/* Symbol visibility: the library is built with hidden visibility; RIPC_API
 * marks what it exports. Static users define RIPC_STATIC (the CMake target
 * ringipc::ringipc_static does it for them). */
#ifndef RINGIPC_EXPORT_H
#define RINGIPC_EXPORT_H

#if defined(RIPC_STATIC)
#define RIPC_API
#elif defined(_WIN32)
#if defined(RIPC_BUILDING)
#define RIPC_API __declspec(dllexport)
#else
#define RIPC_API __declspec(dllimport)
#endif
#elif defined(__GNUC__)
#define RIPC_API __attribute__((visibility("default")))
#else
#define RIPC_API
#endif

#endif /* RINGIPC_EXPORT_H */
