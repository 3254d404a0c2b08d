/* SPDX-License-Identifier: MIT */
/*
 * ThreadSanitizer builds. RIPC_TSAN is defined when this translation unit is
 * compiled with -fsanitize=thread (clang's __has_feature, GCC's
 * __SANITIZE_THREAD__), whichever way the flag was given. RIPC_TSAN_ACQUIRE
 * and RIPC_TSAN_RELEASE tell TSan about an ordering it cannot see (memory
 * ordered by an uninstrumented library, such as liburcu's publication of a
 * hash-table node): a release on an address happens before every later
 * acquire on it. Each use names its partner like an atomic does (T1/T2,
 * U1/U2 in tables_urcu.c). Both are nothing outside TSan builds.
 */
#ifndef RIPC_SRC_TSAN_H
#define RIPC_SRC_TSAN_H

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RIPC_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__) && !defined(RIPC_TSAN)
#define RIPC_TSAN 1
#endif

#ifdef RIPC_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define RIPC_TSAN_ACQUIRE(addr) __tsan_acquire((void *)(addr))
#define RIPC_TSAN_RELEASE(addr) __tsan_release((void *)(addr))
#else
#define RIPC_TSAN_ACQUIRE(addr) ((void)(addr))
#define RIPC_TSAN_RELEASE(addr) ((void)(addr))
#endif

#endif
