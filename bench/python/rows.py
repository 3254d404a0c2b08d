# SPDX-License-Identifier: MIT
"""The transports pybench compares, each a server side and a client side.

Every row carries the same messages: byte 0 is a tag, byte 1 a sequence
number (mod 16), the rest filler, SIZE bytes in all. The server echoes
R(equest) messages, counts O(ne-way) messages and checks their sequence,
answers S(tat) with its counters and CPU time, and leaves on Q(uit).
ringipc carries the tag as the message type as well, so that its C
dispatch picks the handler; the baselines test the tag in Python, as their
users must.

A row's server runs in a forked child (serve()); the parent calls
connect(), then request() / send(), then close(). Objects a row shares with
its child (pipes, queues) are made in prepare(), before the fork.
"""
import ctypes
import multiprocessing
import os
import resource
import socket
import tempfile

TAG_REQ, TAG_ONE, TAG_STAT, TAG_QUIT = ord("R"), ord("O"), ord("S"), ord("Q")
# ringipc message types, one per tag
T_REQ, T_ONE, T_STAT, T_QUIT = 1, 2, 3, 4
# A request's limit in the ringipc rows. The counters' request after a
# one-way run waits behind a ring of messages for a server that may get 1%
# of a CPU on a loaded machine (10 s was once not enough at load 150).
REQUEST_TIMEOUT_S = 30


def cpu_ns():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return int((r.ru_utime + r.ru_stime) * 1e9)


def runq_ns():
    """How long this thread has waited for a CPU while runnable (Linux
    schedstat; 0 elsewhere): the time other processes took from it."""
    try:
        with open("/proc/thread-self/schedstat") as f:
            return int(f.read().split()[1])
    except (OSError, IndexError, ValueError):
        return 0


class Counters:
    """What a server has seen: one-way messages, their bytes, sequence errors."""

    __slots__ = ("count", "nbytes", "bad", "expect")

    def __init__(self):
        self.count = self.nbytes = self.bad = 0
        self.expect = 0

    def oneway(self, d):
        """Count one one-way message and check its sequence number."""
        self.count += 1
        self.nbytes += len(d)
        if d[1] != self.expect:
            self.bad += 1
        self.expect = (d[1] + 1) & 15

    def stat(self):
        return b"%d %d %d %d %d" % (self.count, self.nbytes, self.bad, cpu_ns(), runq_ns())


def serve_stream(recv, send):
    """The server of the rows without message types: the tag byte says what
    to do. Returns on Q or end of stream (recv returning b"")."""
    c = Counters()
    oneway = c.oneway
    while True:
        d = recv()
        t = d[0] if d else TAG_QUIT
        if t == TAG_ONE:
            oneway(d)
        elif t == TAG_REQ:
            send(d)
        elif t == TAG_STAT:
            send(c.stat())
        else:
            return


def stat_of(reply):
    """(count, bytes, out of order, CPU ns, run-queue wait ns of the thread that answered)"""
    return tuple(int(x) for x in bytes(reply).split())


class Row:
    name = "?"
    kind = "baseline"

    def available(self):
        """None when the row can run here, else why not."""
        return None

    def prepare(self):
        pass

    def after_fork_parent(self):
        pass

    def close(self):
        pass


# ---- multiprocessing.Pipe -------------------------------------------------


class MpPipe(Row):
    name = "multiprocessing.Pipe"

    def prepare(self):
        self.cli, self.srv = multiprocessing.Pipe(duplex=True)

    def after_fork_parent(self):
        self.srv.close()

    def serve(self, ready):
        self.cli.close()
        ready()
        serve_stream(self.srv.recv_bytes, self.srv.send_bytes)

    def connect(self, url):
        self.request = self._request
        self.send = self.cli.send_bytes

    def _request(self, m):
        self.cli.send_bytes(m)
        return self.cli.recv_bytes()

    def quit(self):
        self.cli.send_bytes(b"Q")

    def close(self):
        self.cli.close()


# ---- multiprocessing.Queue ------------------------------------------------


class MpQueue(Row):
    name = "multiprocessing.Queue"

    def prepare(self):
        # Bounded, as a pipeline's queue is: an unbounded one lets put()
        # run ahead of the reader by gigabytes at 64 KiB, and the run's end
        # waits for the backlog (128 x 64 KiB: 8 MiB, a fraction of a second).
        self.to_srv = multiprocessing.Queue(128)
        self.to_cli = multiprocessing.Queue(128)

    def serve(self, ready):
        ready()
        serve_stream(self.to_srv.get, self.to_cli.put)
        self.to_cli.close()
        self.to_cli.join_thread()

    def connect(self, url):
        self.send = self.to_srv.put

    def request(self, m):
        self.to_srv.put(m)
        return self.to_cli.get()

    def quit(self):
        self.to_srv.put(b"Q")

    def close(self):
        self.to_srv.close()
        self.to_srv.join_thread()


# ---- unix socket, length-prefixed ------------------------------------------


class UnixSocket(Row):
    name = "unix socket"

    def prepare(self):
        self.cli, self.srv = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)

    def after_fork_parent(self):
        self.srv.close()

    def serve(self, ready):
        self.cli.close()
        sock = self.srv
        rd = sock.makefile("rb", buffering=256 * 1024).read
        sendmsg = sock.sendmsg

        def recv():
            h = rd(4)
            return rd(int.from_bytes(h, "little")) if len(h) == 4 else b""

        def send(d):
            sendmsg((len(d).to_bytes(4, "little"), d))

        ready()
        serve_stream(recv, send)

    def connect(self, url):
        self.rd = self.cli.makefile("rb", buffering=256 * 1024).read
        self.sendmsg = self.cli.sendmsg

    def request(self, m):
        self.sendmsg((len(m).to_bytes(4, "little"), m))
        return self.rd(int.from_bytes(self.rd(4), "little"))

    def send(self, m):
        # a stream socket's sendmsg may take part of a large message
        n = self.sendmsg((len(m).to_bytes(4, "little"), m))
        if n != len(m) + 4:
            self.cli.sendall((len(m).to_bytes(4, "little") + m)[n:])

    def quit(self):
        self.cli.sendall(b"\1\0\0\0Q")

    def close(self):
        self.cli.close()


# ---- pyzmq PAIR over ipc:// -------------------------------------------------


class Zmq(Row):
    name = "pyzmq PAIR ipc://"

    def available(self):
        try:
            import zmq  # noqa: F401
        except ImportError:
            return "no pyzmq (Debian: python3-zmq)"
        return None

    def serve(self, ready):
        import zmq

        ctx = zmq.Context()
        sock = ctx.socket(zmq.PAIR)
        sock.bind(self.url)
        ready()
        serve_stream(sock.recv, sock.send)
        sock.close(linger=0)
        ctx.term()

    def prepare(self):
        self.url = "ipc://" + tempfile.mktemp(prefix="pybench-zmq-", suffix=".ipc")

    def connect(self, url):
        import zmq

        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.PAIR)
        self.sock.connect(self.url)
        self.send = self.sock.send

    def request(self, m):
        self.sock.send(m)
        return self.sock.recv()

    def quit(self):
        self.sock.send(b"Q")

    def close(self):
        self.sock.close(linger=1000)
        self.ctx.term()
        try:
            os.unlink(self.url[len("ipc://"):])
        except OSError:
            pass


# ---- ringipc, the package ---------------------------------------------------


def ringipc_missing():
    try:
        import ringipc  # noqa: F401
    except ImportError as e:
        return "no ringipc package (%s; set PYTHONPATH=python and RINGIPC_LIBRARY)" % e
    except OSError as e:
        return "ringipc cannot load its library (%s; set RINGIPC_LIBRARY)" % e
    return None


class Ringipc(Row):
    kind = "ringipc"

    def __init__(self, wait):
        self.wait = wait
        self.name = "ringipc " + wait

    def available(self):
        return ringipc_missing()

    def prepare(self):
        self.url = "unix:" + tempfile.mktemp(prefix="pybench-ripc-", suffix=".sock")

    def serve(self, ready):
        import ringipc

        srv = ringipc.Server(self.url, wait=self.wait)
        c = Counters()

        @srv.handler(T_REQ)
        def echo(msg):
            return msg.data

        oneway = c.oneway
        if getattr(self, "batch_handler", False):

            def runs(datas):
                for d in datas:
                    oneway(d)

            srv.set_handler(T_ONE, runs, batch=True)
        elif getattr(self, "raw", False):
            srv.set_handler(T_ONE, oneway, raw=True)
        else:

            @srv.handler(T_ONE)
            def sink(msg):
                oneway(msg.data)

        @srv.handler(T_STAT)
        def stat(msg):
            return c.stat()

        @srv.handler(T_QUIT)
        def quit(msg):
            srv.stop()

        ready()
        srv.run()
        srv.close()

    def connect(self, url):
        import ringipc

        self.c = ringipc.Client(self.url, wait=self.wait)
        send, req = self.c.send, self.c.request
        self.send = lambda m: send(T_ONE, m)
        self.request = lambda m: req(T_REQ if m[0] == TAG_REQ else T_STAT, m, timeout=REQUEST_TIMEOUT_S)

    def quit(self):
        self.c.send(T_QUIT, b"Q")

    def close(self):
        self.c.close()


class RingipcMany(Ringipc):
    """ringipc with one-way messages sent BATCH at a time (Client.send_many),
    the per-call cost of the binding paid once per batch, and taken by a
    batch handler (a list of bytes per run of messages, one call into Python
    per run; each message then counted and checked as in the other rows).
    Round trips as in the ringipc row."""

    batch = 64
    batch_handler = True

    def __init__(self, wait):
        super().__init__(wait)
        self.name = "ringipc %s send_many" % wait

    def connect(self, url):
        super().connect(url)
        many = self.c.send_many
        self.send_many = lambda ms: many(T_ONE, ms)


# ---- ringipc over bare ctypes: the floor of any ctypes binding ---------------


def bare():
    """The package's ctypes prototypes of the C library (ringipc._lib), with
    none of its Python around them: what the bare ctypes rows call."""
    from ringipc import _lib

    return _lib


def check(L, rc, what):
    if rc < 0:
        raise OSError(-rc, "%s: %s" % (what, L.strerror(rc)))
    return rc


def bare_open(L, fn, url, wait):
    """ripc_server_open_ex or ripc_client_open_ex: the handle, as c_void_p."""
    h = ctypes.c_void_p()
    why = ctypes.create_string_buffer(256)
    opt = L.Options(wait=L.WAITS[wait])
    rc = fn(ctypes.byref(h), url.encode(), ctypes.byref(opt), why, len(why))
    if rc < 0:
        raise OSError(-rc, "%s: %s" % (url, why.value.decode() or L.strerror(rc)))
    return h


class Ctypes(Row):
    """ringipc through the package's ctypes prototypes and a few lines of
    Python: the least any ctypes binding can cost (no checks, no objects per
    message)."""

    kind = "ringipc"

    def __init__(self, wait):
        self.wait = wait
        self.name = "bare ctypes " + wait

    def available(self):
        return ringipc_missing()

    def prepare(self):
        self.url = "unix:" + tempfile.mktemp(prefix="pybench-ct-", suffix=".sock")

    def serve(self, ready):
        L = bare()
        lib = L.lib
        s = bare_open(L, lib.ripc_server_open_ex, self.url, self.wait)
        c = Counters()
        reply, string_at = lib.ripc_reply, ctypes.string_at

        def on_msg(peer, msg, arg):
            m = msg.contents
            t = m.type
            if t == T_ONE:
                c.count += 1
                c.nbytes += m.len
                b = string_at(m.data + 1, 1)[0]
                if b != c.expect:
                    c.bad += 1
                c.expect = (b + 1) & 15
            elif t == T_REQ:
                reply(peer, msg, m.data, m.len)
            elif t == T_STAT:
                st = c.stat()
                reply(peer, msg, st, len(st))
            else:
                lib.ripc_server_stop(s)

        cb = L.HANDLER(on_msg)
        check(L, lib.ripc_server_handle(s, 0, cb, None), "handle")
        ready()
        lib.ripc_server_run(s, 1)
        lib.ripc_server_close(s)

    def connect(self, url):
        L = self.L = bare()
        lib = L.lib
        c = self.c = bare_open(L, lib.ripc_client_open_ex, self.url, self.wait)
        send, req, string_at = lib.ripc_client_send, lib.ripc_client_request, ctypes.string_at
        rep = L.Msg()
        prep = ctypes.byref(rep)

        def request(m):
            rc = req(c, T_REQ if m[0] == TAG_REQ else T_STAT, m, len(m), prep,
                     REQUEST_TIMEOUT_S * 1000)
            if rc < 0:
                check(L, rc, "request")
            return string_at(rep.data, rep.len)

        def send1(m):
            rc = send(c, T_ONE, m, len(m), -1)
            if rc < 0:
                check(L, rc, "send")

        self.request, self.send = request, send1

    def quit(self):
        self.L.lib.ripc_client_send(self.c, T_QUIT, b"Q", 1, -1)

    def close(self):
        self.L.lib.ripc_client_close(self.c)


def all_rows():
    return [
        MpPipe(),
        MpQueue(),
        UnixSocket(),
        Zmq(),
        Ringipc("spin"),
        Ringipc("adaptive"),
        RingipcMany("spin"),
        RingipcMany("adaptive"),
        Ctypes("spin"),
        Ctypes("adaptive"),
    ]
