/* SPDX-License-Identifier: MIT */
/*
 * The platform contract: everything the core (src/) needs from the
 * operating system, and the one header src/ includes for it. Each service
 * is declared, with its rules, in the header named below; this file says
 * what each is for and which file provides it on each platform. The core
 * calls these and nothing OS-specific of its own; a port is a new set of
 * the files in the right-hand columns, picked by CMakeLists.txt.
 *
 *   service                 header             Linux (default)          portable POSIX
 *                                                                       (RIPC_PORTABLE_POSIX)
 *   poller, wake handle     sockets/poller.h   poller_epoll.c           poller_poll.c
 *                                              (epoll, eventfd)         (poll(2), a pipe)
 *   clocks and deadlines    shm/clock.h        inline: CLOCK_MONOTONIC  the same
 *                                              (+ _COARSE)
 *   control sockets,        sockets/sock.h     listen_posix.c,          the same files;
 *   descriptor passing,                        dial_posix.c,            cred_posix.c with
 *   peer credentials,                          conn_posix.c,            getpeereid: uid, gid,
 *   waiting on one or a                        cred_posix.c (SO_PEER-   pid unknown
 *   few descriptors,                           CRED: uid, gid, pid);    (peereid_linux.c on glibc);
 *   shutdown, sends                            close-on-exec atomic     socket/accept/recvmsg
 *                                              (SOCK_CLOEXEC, accept4,  then fcntl; SO_NOSIGPIPE
 *                                              MSG_CMSG_CLOEXEC)        where no MSG_NOSIGNAL;
 *                                                                       no unix:@name (-ENOTSUP)
 *   closing what a peer     sockets/closer.h   closer_posix.c           closer_posix.c
 *   passed us; plain
 *   closes, a reserve fd
 *   shared segments         shm/segment.h      segment_posix.c          segment_posix.c
 *                                              (memfd, sealed; then     (shm_open only)
 *                                              shm_open)
 *   guard for unsealable    shm/fault_guard.h  fault_guard.c (SIGBUS)   fault_guard.c
 *   segments
 *   doorbells               shm/doorbell.h     doorbell.c + eventfd,    doorbell.c +
 *                                              futex, socket kinds      doorbell_socket.c
 *   asymmetric fences       shm/fence.h        fence_linux.c            fence_none.c
 *                                              (membarrier)             (symmetric fences)
 *   threads and locks       <pthread.h>        POSIX threads            POSIX threads
 *   timed locks and waits,  platform/thread.h  thread_posix.c +         thread_posix.c +
 *   spin decision, signal                      sched_linux.c (clock-    sched_posix.c (trylock
 *   masks, naps, yield,                        lock, clockwait,         and naps, timedwait on a
 *   pid, euid                                  clock_nanosleep,         monotonic cond, relative
 *                                              sched_getaffinity)       naps, CPUs online;
 *                                                                       naps.c)
 *
 * Windows (mingw-w64, cmake/toolchain-mingw-w64.cmake) so far:
 *   shared segments         shm/segment_win32.c: CreateFileMapping on the
 *                           paging file, unnamed, committed; handles passed
 *                           by DuplicateHandle (platform/win32.h)
 *   doorbells               shm/doorbell_win32.c: auto-reset events; the
 *                           peer's process handle is the watched object
 *   asymmetric fences       shm/fence_none.c (why: shm/fence.h)
 *   handing a peer objects  platform/pass_win32.c: duplicated into the
 *   (platform/pass.h)       worker's process, values in WELCOME
 *                           (POSIX: pass_posix.c, SCM_RIGHTS)
 *   threads and locks       winpthreads
 *   timed locks and waits   platform/thread_win32.c (relative timed waits,
 *                           high-resolution timer naps, no signals)
 *   tables (src/tables.h)   src/tables_win32.c: an SRWLOCK reader/writer table
 *   control sockets         sockets/listen_win32.c, dial_win32.c,
 *                           conn_win32.c, wait_win32.c, tcp_win32.c,
 *                           cred_win32.c: named pipes (unix:) and Winsock2
 *                           (tcp://); connection descriptors are tagged
 *                           table entries; no descriptor passing; peer pid
 *                           from the pipe, same user from token SIDs
 *   poller, wake handle     sockets/poller_win32.c: looks, then sleeps on
 *                           every handle (helper threads past 62); a
 *                           manual-reset event
 *   closing                 sockets/closer_win32.c: every close inline
 * The core (src/) is the same files as on Linux.
 *
 * Threads and locks: POSIX threads are this contract's thread layer, used
 * by the core as they stand, not wrapped: pthread_mutex_t (init, destroy,
 * lock, trylock, unlock), pthread_cond_t (init, destroy, wait, signal,
 * broadcast), pthread_create / join, pthread_once, pthread_atfork,
 * pthread_self / equal, and _Thread_local. mingw-w64's winpthreads provides them on Windows. What
 * POSIX does not give everywhere in one form (waits on a CLOCK_MONOTONIC
 * deadline, CPU affinity, signal masks, absolute naps) is in
 * platform/thread.h.
 *
 * Everything else src/ needs of the OS (descriptors, sockets, sleeping,
 * ids) goes through the headers above; src/ calls no system function of
 * its own beyond plain C (memory, strings, getenv) and that thread layer.
 *
 * What the portable POSIX build gives up, and what the core does instead:
 *   - no sealed memfd: segments are shm_open objects, which a worker could
 *     truncate; the master's mapping is guarded (shm/fault_guard.h), and a
 *     large message (over one ring record) cannot travel in shared memory,
 *     so max_message is capped to a ring record in shm mode (socket mode
 *     carries any size);
 *   - no eventfd or futex doorbell: the socket doorbell, without the futex
 *     sleep word;
 *   - no membarrier: both sides of every ring keep their full fences;
 *   - no peer pid from the kernel: a unix-socket peer's pid is what its
 *     HELLO says (as over TCP), and spinning is decided without it;
 *   - no pollable descriptor for the whole loop: ripc_server_fd() says
 *     -ENOTSUP.
 */
#ifndef RIPC_SRC_PLATFORM_H
#define RIPC_SRC_PLATFORM_H

#include <pthread.h>

#include "platform/pass.h"
#include "platform/thread.h"
#include "shm/clock.h"
#include "shm/doorbell.h"
#include "shm/fault_guard.h"
#include "shm/fence.h"
#include "shm/segment.h"
#include "sockets/closer.h"
#include "sockets/poller.h"
#include "sockets/sock.h"

#endif /* RIPC_SRC_PLATFORM_H */
