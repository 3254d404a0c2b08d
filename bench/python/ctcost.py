# SPDX-License-Identifier: MIT
"""What the ctypes layer costs per message, measured in one process.

A master and a worker in the same (forked) process, so nothing else runs
while a side is timed: the worker sends N one-way 64-byte messages into the
ring with the master not reading (its send cost alone), then the master
drains them with ripc_server_poll (its dispatch cost alone: C dispatch, the
ctypes callback into Python, the handler). Once over bare ctypes (the least
any ctypes binding can cost), once through the ringipc package, once with a
lean object API (a small message object and a read-only view). Beside them
the ctypes primitives: a call with no arguments, a call with send's five
arguments that the library refuses at once (argument conversion and the
call, no work), a C-to-Python callback (libc qsort's comparator), and what
CPython charges for calling a builtin and a Python function: the floor a
compiled binding would pay instead.
"""
import ctypes
import ctypes.util
import multiprocessing
import tempfile
import threading
import time

import rows

# Many short rounds, the least kept: a round well inside a scheduler slice
# (~0.3 ms) often runs undisturbed even on a loaded machine, a long one never.
N_MSGS = 1000  # 64-byte messages: well inside the default 1 MiB ring
ROUNDS = 101


def per_call(fn, n):
    """The least over ROUNDS of fn()'s time per call (fn makes n calls), in ns:
    on a shared machine the minimum is the estimate least disturbed by others."""
    out = []
    for _ in range(ROUNDS):
        t0 = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - t0) / n)
    return min(out)


def primitives(L):
    n = 1000
    msg = b"x" * 64
    send = L.lib.ripc_client_send
    # A function of its own, without argument types: int ripc_version_number(void)
    ver = ctypes.CDLL(L.lib._name).ripc_version_number

    def bare():
        for _ in range(n):
            ver()

    def send_args():
        for _ in range(n):
            send(None, 2, msg, 64, 0)

    class O:
        x = 1

    o = O()

    def builtin():
        for _ in range(n):
            getattr(o, "x", None)

    def f(a, b):
        pass

    def pyfunc():
        for _ in range(n):
            f(o, msg)

    def loop():
        for _ in range(n):
            pass

    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    cmp_t = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
    calls = [0]

    def cmp(a, b):
        calls[0] += 1
        return 0

    cb = cmp_t(cmp)
    arr = (ctypes.c_int * 128)()
    libc.qsort.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, cmp_t]
    libc.qsort(arr, 128, 4, cb)
    per_sort = calls[0]

    def callback():
        libc.qsort(arr, 128, 4, cb)

    base = per_call(loop, n)
    return {
        "ctypes_call": per_call(bare, n) - base,
        "ctypes_send_args": per_call(send_args, n) - base,
        "ctypes_callback": per_call(callback, per_sort),
        "builtin_call": per_call(builtin, n) - base,
        "python_call": per_call(pyfunc, n) - base,
    }


def serve_while(poll, fn):
    """Run fn (a connect) in a thread while this one polls the master."""
    box = {}

    def run():
        try:
            box["v"] = fn()
        except BaseException as e:  # handed to the caller below
            box["e"] = e

    t = threading.Thread(target=run)
    t.start()
    while t.is_alive():
        poll()
    t.join()
    if "e" in box:
        raise box["e"]
    return box["v"]


def stream(send1, poll0, counted):
    """(send, dispatch) in ns a message, each the least over ROUNDS: send1()
    N_MSGS times into the ring, then poll0() until counted() has them all."""
    sends, drains = [], []
    clock = time.perf_counter_ns
    for _ in range(ROUNDS):
        base = counted()
        t0 = clock()
        for _ in range(N_MSGS):
            send1()
        t1 = clock()
        while counted() - base < N_MSGS:
            poll0()
        sends.append((t1 - t0) / N_MSGS)
        drains.append((clock() - t1) / N_MSGS)
    return min(sends), min(drains)


def cost_url():
    return "unix:" + tempfile.mktemp(prefix="pybench-cost-", suffix=".sock")


def ring_ctypes(L, make_handler):
    """(send, dispatch) over the package's ctypes prototypes, the master's
    handler for one-way messages being make_handler(count), where count()
    is to be called once per message."""
    lib, url = L.lib, cost_url()
    s = rows.bare_open(L, lib.ripc_server_open_ex, url, "spin")
    got = [0]

    def count():
        got[0] += 1

    cb = L.HANDLER(make_handler(count))
    lib.ripc_server_handle(s, rows.T_ONE, cb, None)
    poll = lib.ripc_server_poll
    c = serve_while(lambda: poll(s, 10),
                    lambda: rows.bare_open(L, lib.ripc_client_open_ex, url, "spin"))
    send, msg = lib.ripc_client_send, b"O" + b"x" * 63
    try:
        return stream(lambda: send(c, rows.T_ONE, msg, 64, -1), lambda: poll(s, 0),
                      lambda: got[0])
    finally:
        lib.ripc_client_close(c)
        lib.ripc_server_close(s)


def bare_handler(count):
    """The least a handler can do: be called."""

    def on_msg(peer, cmsg, arg):
        count()

    return on_msg


class LeanMsg:
    __slots__ = ("type", "kind", "peer_id", "id", "data")

    def __init__(self, type, kind, peer_id, id, data):
        self.type, self.kind, self.peer_id, self.id, self.data = type, kind, peer_id, id, data


def lean_handler(count):
    """Dispatch as a lean binding over the same ctypes might do it: a handler
    by type, called with a small object and a read-only zero-copy view
    (memoryview over (c_ubyte * n).from_address, its type cached per n)."""
    handlers, arrays, ubyte = {rows.T_ONE: lambda msg: count()}, {}, ctypes.c_ubyte

    def on_msg(peer, cmsg, arg):
        m = cmsg.contents
        t, n = m.type, m.len
        at = arrays.get(n)
        if at is None:
            at = arrays[n] = ubyte * n
        data = memoryview(at.from_address(m.data)).toreadonly()
        handlers[t](LeanMsg(t, m.kind, m.peer_id, m.id, data))
        data.release()

    return on_msg


def ring_package():
    import ringipc

    url = cost_url()
    srv = ringipc.Server(url, wait="spin")
    got = [0]

    def count():
        got[0] += 1

    @srv.handler(rows.T_ONE)
    def sink(msg):
        count()

    poll = srv.poll
    c = serve_while(lambda: poll(timeout=0.01), lambda: ringipc.Client(url, wait="spin"))
    send, msg = c.send, b"O" + b"x" * 63
    try:
        return stream(lambda: send(rows.T_ONE, msg), lambda: poll(timeout=0), lambda: got[0])
    finally:
        c.close()
        srv.close()


def measure(conn):
    out = {}
    try:
        why = rows.ringipc_missing()
        if why:
            raise ImportError(why)
        L = rows.bare()
        out.update(primitives(L))
        # the stream's loop calls each send through a lambda: not the send's cost
        noop = lambda: None  # noqa: E731
        loop_call = per_call(lambda: [noop() for _ in range(1000)], 1000)
        for key, (snd, disp) in (("bare", ring_ctypes(L, bare_handler)),
                                 ("pkg", ring_package())):
            out[key + "_send"], out[key + "_dispatch"] = snd - loop_call, disp
        out["lean_dispatch"] = ring_ctypes(L, lean_handler)[1]
    except Exception as e:  # reported, the table stands without it
        out["error"] = "%s: %s" % (type(e).__name__, e)
    conn.send(out)


def collect():
    """The figures, measured in a forked child (the parent never opens the library)."""
    ctx = multiprocessing.get_context("fork")
    a, b = ctx.Pipe()
    p = ctx.Process(target=measure, args=(b,))
    p.start()
    out = a.recv() if a.poll(60) else {"error": "timed out"}
    p.join(5)
    if p.is_alive():
        p.kill()
    return out


def report(summary, sizes):
    c = collect()
    print("ctypes cost, 64 B, one process (ns per call or per message; least of %d rounds)" % ROUNDS)
    if "error" in c:
        print("  incomplete: %s" % c["error"])

    def line(key, text):
        if key in c:
            print("  %-44s %8.0f ns" % (text, c[key]))

    line("python_call", "call of a Python function, 2 arguments")
    line("builtin_call", "call of a builtin, 3 arguments")
    line("ctypes_call", "ctypes call, no arguments")
    line("ctypes_send_args", "ctypes call, send's 5 arguments (refused)")
    line("ctypes_callback", "ctypes callback, C to Python (qsort)")
    line("bare_send", "send, bare ctypes (ripc_client_send)")
    line("pkg_send", "send, ringipc package (Client.send)")
    line("bare_dispatch", "dispatch, bare ctypes handler")
    line("pkg_dispatch", "dispatch, ringipc package handler")
    line("lean_dispatch", "dispatch, a lean object API over ctypes")
    if "bare_send" in c and "ctypes_send_args" in c:
        work = c["bare_send"] - c["ctypes_send_args"]
        if work <= 0:
            print("  (send costs less than the refused call: the machine disturbed every round;"
                  " no estimate)")
            return c
        compiled = c["builtin_call"] + work
        c["est_compiled_send"] = compiled
        c["est_compiled_dispatch"] = c["bare_dispatch"] - c["ctypes_callback"] + c["python_call"]
        print("  the library's own work in a send (bare send - refused call): %.0f ns" % work)
        print("  a compiled binding, estimated: send %.0f ns (builtin call + that work), "
              "dispatch %.0f ns" % (compiled, c["est_compiled_dispatch"]))
        print("  (bare dispatch - ctypes callback + a Python call)")
        if "pkg_send" in c:
            print("  the package over bare ctypes: send +%.0f ns, dispatch +%.0f ns a message"
                  % (c["pkg_send"] - c["bare_send"], c["pkg_dispatch"] - c["bare_dispatch"]))
    return c
