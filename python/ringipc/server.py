# SPDX-License-Identifier: MIT
"""The master: ringipc.Server."""

import ctypes
import errno
import logging
import threading
import traceback

from . import _lib, _options
from .codecs import codecs as _default_codecs, json_encode, _check_type
from .errors import Closed, NoSuchPeer, RemoteError, check, error
from .message import Message, REQUEST

log = logging.getLogger("ringipc")
_lib_ = _lib.lib


class Peer:
    """A connected worker, as the master sees it.

    id, name, pid, transport ("shm" or "socket"), transport_reason; after it
    left, left_reason: 0 for a goodbye, else a negative errno (-EPIPE: the
    connection was lost, the worker died; -EPROTO: it broke the protocol;
    -ECANCELED: the server is closing), and left_text says it in words.
    """

    __slots__ = ("id", "name", "pid", "transport", "transport_reason", "left_reason")

    def __init__(self, p):
        self.id = _lib_.ripc_peer_id(p)
        self.name = _lib.text(_lib_.ripc_peer_name(p))
        self.pid = _lib_.ripc_peer_pid(p)
        self.transport = _lib.text(_lib_.ripc_peer_transport(p))
        self.transport_reason = _lib.text(_lib_.ripc_peer_transport_reason(p))
        self.left_reason = None

    @property
    def left_text(self):
        if self.left_reason is None:
            return ""
        return "goodbye" if self.left_reason == 0 else _lib.strerror(self.left_reason)

    def __repr__(self):
        return "<ringipc.Peer %d %r pid %d %s>" % (self.id, self.name, self.pid, self.transport)


class Server(_options.Handle):
    """A master listening on url.

    srv = ringipc.Server("unix:/tmp/app.sock")            # handlers by type
    srv = ringipc.Server("unix:/tmp/app.sock", callback)  # one callback for all

    url: "unix:/abs/path", "unix:@name" (Linux abstract socket), a bare
    path, or "tcp://host:port" (see the C library's ripc_server_open).
    callback(msg) gets every message no per-type handler takes. Keywords:
    wait ("adaptive", "spin", "block"), transport ("auto", "shm",
    "socket"; the environment's RIPC_TRANSPORT overrides it), ring_bytes,
    max_message, max_inline, spin_us, allow_uids, allow_any_uid,
    connect_timeout (seconds), token, tcp_without_token, codecs (a
    ringipc.Codecs; default the module's ringipc.codecs), on_joined(peer),
    on_left(peer), on_error(exc, msg).
    """

    def __init__(self, url, callback=None, *, codecs=None, on_joined=None, on_left=None,
                 on_error=None, **options):
        self._s = None
        self._closed_in_handler = None
        opt, self._keep = _options.build(**options)
        why = ctypes.create_string_buffer(256)
        s = ctypes.c_void_p()
        rc = _lib_.ripc_server_open_ex(ctypes.byref(s), url.encode(), ctypes.byref(opt), why,
                                       len(why))
        if rc < 0:
            raise error(rc, "%s: %s" % (url, _lib.text(why.value) or _lib.strerror(rc)))
        self._s = s.value
        self.codecs = codecs if codecs is not None else _default_codecs
        self.on_joined = on_joined
        self.on_left = on_left
        self.on_error = on_error
        self.peers = {}
        self._handlers = {}
        self._callback = callback
        # The C library calls these; they live as long as the server.
        self._c_handler = _lib.HANDLER(self._dispatch)
        self._raw = {}
        self._c_raw = _lib.RAW_HANDLER(self._dispatch_raw)  # kept alive: the cast below is a view
        self._c_raw_h = ctypes.cast(self._c_raw, _lib.HANDLER)
        self._batch = {}
        self._c_batch = _lib.BATCH_HANDLER(self._dispatch_batch)
        self._c_joined = _lib.JOINED(self._joined)
        self._c_left = _lib.LEFT(self._left)
        check(_lib_.ripc_server_on_peer(self._s, self._c_joined, self._c_left, None))
        if callback is not None:
            check(_lib_.ripc_server_handle(self._s, 0, self._c_handler, None))

    # ---- handlers ----

    def handler(self, type, raw=False, batch=False, max_batch=0):
        """Decorator: fn(msg) handles messages of `type`; for a request, what
        it returns is the reply (encoded by the type's codec). raw=True:
        fn(data) gets the payload as bytes instead; batch=True:
        fn(list_of_bytes) gets runs of messages at once (see set_handler)."""

        def deco(fn):
            self.set_handler(type, fn, raw, batch, max_batch)
            return fn

        return deco

    def set_handler(self, type, fn, raw=False, batch=False, max_batch=0):
        """fn(msg) for messages of `type` (0: every type without a handler);
        None removes it. raw=True: fn(data) with the payload as bytes, no
        Message and no codec (about half the cost per message in the
        dispatch, for streams of small messages); for a request, fn's return
        value, bytes-like, is the reply.

        batch=True: fn(datas), datas a list of the payloads (bytes) of a run
        of one-way messages of this type from one worker, in the order it
        sent them (ripc_server_handle_batch: up to max_batch, 0 meaning 256;
        what was queued already). One call into Python per run instead of
        one per message. A request comes alone (a list of one), and fn's
        return value, bytes-like, is its reply. Order with the worker's
        other messages, of every type, is kept."""
        type = _check_type(type)
        if fn is None:
            self._handlers.pop(type, None)
            self._raw.pop(type, None)
            self._batch.pop(type, None)
            if type != 0 or self._callback is None:
                check(_lib_.ripc_server_handle(self._live(), type, _lib.HANDLER(), None))
            return
        if batch:
            self._handlers.pop(type, None)
            self._raw.pop(type, None)
            self._batch[type] = fn
            check(_lib_.ripc_server_handle_batch(self._live(), type, self._c_batch, max_batch,
                                                 None))
            return
        self._batch.pop(type, None)
        if raw:
            self._handlers.pop(type, None)
            self._raw[type] = fn
            check(_lib_.ripc_server_handle(self._live(), type, self._c_raw_h, None))
            return
        self._raw.pop(type, None)
        self._handlers[type] = fn
        check(_lib_.ripc_server_handle(self._live(), type, self._c_handler, None))

    def _dispatch_batch(self, p, addr, n, arg, _unpack=_lib.MSG_LAYOUT.unpack_from,
                        _iter=_lib.MSG_LAYOUT.iter_unpack, _at=ctypes.string_at):
        recs = _at(addr, 32 * n)
        t, kind, peer_id, id_, first, ln = _unpack(recs)
        batch = self._batch
        fn = batch.get(t) or batch.get(0)
        if fn is None:  # made another kind of handler while these were on their way
            one = self._dispatch_raw if (self._raw.get(t) or self._raw.get(0)) else None
            for i in range(n):
                if one:
                    one(p, addr + 32 * i, arg)
                else:
                    self._dispatch(p, ctypes.cast(addr + 32 * i, _lib.POINTER_MSG), arg)
            return
        if n == 1:
            datas = [_at(first, ln) if ln else b""]
        else:
            r = list(_iter(recs))
            end = r[-1][4] + r[-1][5]
            if first <= end <= first + 256 * n:
                # Small messages: one copy of the span they lie in (a ring
                # or a receive buffer, in order; a run that wraps around the
                # ring's end ends below its start), sliced. Larger ones are
                # copied once each.
                blob = _at(first, end - first)
                datas = [blob[d - first:d - first + ln] for _, _, _, _, d, ln in r]
            else:
                datas = [_at(d, ln) if ln else b"" for _, _, _, _, d, ln in r]
        try:
            result = fn(datas)
            if kind == REQUEST:
                self._reply_at(p, addr, result, peer_id, t)
        except BaseException as e:
            self._failed_at(e, p, addr, kind, "the batch handler for type %d" % t)

    def _reply_at(self, p, addr, result, peer_id, t):
        """A raw or batch handler's return value as the reply to the request
        at addr."""
        out, n, keep = _lib.buffer_of(b"" if result is None else result)
        rc = _lib.reply_at(p, addr, out, n)
        if rc < 0:
            log.warning("ringipc: reply to worker %d (type %d): %s", peer_id, t,
                        _lib.strerror(rc))

    def _failed_at(self, e, p, addr, kind, what):
        """A raw or batch handler raised: reported, and a request answered
        with an error reply."""
        self._report(e, None, what)
        if kind == REQUEST:
            try:
                _lib.reply_error_at(p, addr, -errno.EREMOTEIO, (
                    "%s: %s" % (type(e).__name__, e)).encode("utf-8", "replace")[:200])
            except BaseException:
                pass

    def _dispatch_raw(self, p, addr, arg, _unpack=_lib.MSG_LAYOUT.unpack, _at=ctypes.string_at):
        t, kind, peer_id, id_, data, n = _unpack(_at(addr, 32))
        raw = self._raw
        fn = raw.get(t) or raw.get(0)
        if fn is None:  # made an ordinary handler while this message was on its way
            return self._dispatch(p, ctypes.cast(addr, _lib.POINTER_MSG), arg)
        try:
            result = fn(_at(data, n) if n else b"")
            if kind == REQUEST:
                self._reply_at(p, addr, result, peer_id, t)
        except BaseException as e:
            self._failed_at(e, p, addr, kind, "the raw handler for type %d" % t)

    def _dispatch(self, p, cmsg, arg):
        m = cmsg[0]
        t = m.type
        fn = self._handlers.get(t) or self._callback
        if fn is None:  # removed while this message was on its way
            if m.kind == REQUEST:
                self._reply_error(p, cmsg, -errno.ENOENT, "no handler for type %d" % t)
            return
        msg = Message(t, m.kind, m.peer_id, m.id, None, self.codecs, self, p, cmsg, m.data, m.len)
        try:
            result = fn(msg)
            if m.kind == REQUEST and not msg._replied:
                out, n, keep = _lib.buffer_of(self.codecs.encode(t, result))
                rc = _lib_.ripc_reply(p, cmsg, out, n)
                if rc < 0:
                    log.warning("ringipc: reply to worker %d (type %d): %s", m.peer_id, t,
                                _lib.strerror(rc))
        except RemoteError as e:  # the handler's chosen error reply
            if m.kind == REQUEST and not msg._replied:
                self._reply_error(p, cmsg, e.code, e.reason)
        except BaseException as e:
            self._report(e, msg, "the handler for type %d" % t)
            if m.kind == REQUEST and not msg._replied:
                self._reply_error(p, cmsg, -errno.EREMOTEIO, "%s: %s" % (type(e).__name__, e))
        finally:
            msg._end()

    def _reply_error(self, p, cmsg, code, text):
        try:
            _lib_.ripc_reply_error(p, cmsg, code, text.encode("utf-8", "replace")[:200])
        except BaseException:
            pass

    def _report(self, exc, msg, where):
        """An exception of a handler or callback: to on_error(exc, msg) if set
        (msg is None for on_joined / on_left), else to the log."""
        hook = self.on_error
        if hook is not None:
            try:
                hook(exc, msg)
                return
            except BaseException as e2:
                exc, where = e2, "on_error"
        log.error("ringipc: %s raised:\n%s", where,
                  "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip())

    def _joined(self, p, arg):
        try:
            peer = Peer(p)
            self.peers[peer.id] = peer
            if self.on_joined is not None:
                self.on_joined(peer)
        except BaseException as e:
            self._report(e, None, "on_joined")

    def _left(self, p, reason, arg):
        try:
            peer = self.peers.pop(_lib_.ripc_peer_id(p), None) or Peer(p)
            peer.left_reason = reason
            if self.on_left is not None:
                self.on_left(peer)
        except BaseException as e:
            self._report(e, None, "on_left")

    # ---- dispatch ----

    def poll(self, timeout=0):
        """Accept workers and dispatch what is ready, waiting up to timeout
        seconds (None: until something happens). Returns how many messages
        were dispatched."""
        rc = _lib_.ripc_server_poll(self._live(), _lib.timeout_ms(timeout))
        if rc == -errno.EDEADLK:
            return self._close_after_handler()
        return check(rc)

    def run(self, threads=1):
        """Dispatch on `threads` threads until stop(), close(), or Ctrl-C
        (KeyboardInterrupt in the main thread stops the server and run
        returns). Handlers run on the library's dispatch threads, with the
        GIL, one message at a time per worker."""
        s = self._live()
        if threading.current_thread() is not threading.main_thread():
            return self._run_rc(_lib_.ripc_server_run(s, threads))
        # The main thread waits where a signal reaches it (Thread.join) while
        # the library dispatches on another: Ctrl-C then stops the server.
        box = []
        t = threading.Thread(target=lambda: box.append(_lib_.ripc_server_run(s, threads)),
                             name="ringipc-run", daemon=True)
        t.start()
        try:
            t.join()
        except KeyboardInterrupt:
            _lib_.ripc_server_stop(s)
            t.join()
            return None
        return self._run_rc(box[0] if box else 0)

    def _run_rc(self, rc):
        if rc == -errno.EDEADLK:
            self._close_after_handler()
        elif rc != -errno.ECANCELED:
            check(rc)
        return None

    def _close_after_handler(self):
        # A handler called close(): the library only stopped the server (it
        # cannot free it under the dispatch that called), and run or poll
        # said so with -EDEADLK. Their caller, outside any handler now,
        # finishes the close.
        s, self._closed_in_handler = self._closed_in_handler, None
        if s:
            _lib_.ripc_server_close(s)
        return 0

    def serve_forever(self):
        """run(threads=1)."""
        self.run(1)

    def stop(self):
        """Make run() return (any thread, a handler's too)."""
        if self._s:
            _lib_.ripc_server_stop(self._s)

    # ---- sending ----

    def _peer_id(self, peer):
        return peer.id if isinstance(peer, Peer) else int(peer)

    def send(self, peer, type, obj=b"", timeout=1.0):
        """One-way message to a worker (a Peer or its id), encoded by the
        codec of its type; waits up to timeout seconds for room."""
        data, n, keep = _lib.buffer_of(self.codecs.encode(type, obj))
        rc = _lib_.ripc_server_send(self._live(), self._peer_id(peer), type, data, n,
                                    _lib.timeout_ms(timeout))
        if rc == -errno.ENOENT:
            raise NoSuchPeer(rc, "no worker %d" % self._peer_id(peer))
        check(rc)

    def send_json(self, peer, type, obj, timeout=1.0):
        self.send(peer, type, json_encode(obj), timeout)

    def send_batch(self, peer, messages, timeout=1.0):
        """Send (type, obj) pairs to one worker, in order, under one
        acquisition of its send lock (ripc_server_send_batch: cheaper per
        message than send() in a loop); timeout covers the whole batch.
        Returns how many were sent (fewer when the time ran out)."""
        enc = self.codecs.encode
        bufs = [(t, _lib.buffer_of(enc(t, obj))) for t, obj in messages]
        outs = (_lib.Out * len(bufs))()
        for o, (t, (data, n, keep)) in zip(outs, bufs):
            o.type = t
            o.data = ctypes.cast(data, ctypes.c_void_p) if isinstance(data, bytes) else data
            o.len = n
        rc = _lib_.ripc_server_send_batch(self._live(), self._peer_id(peer), outs, len(bufs),
                                          _lib.timeout_ms(timeout))
        if rc == -errno.ENOENT:
            raise NoSuchPeer(rc, "no worker %d" % self._peer_id(peer))
        return check(rc)

    def broadcast(self, type, obj=b"", timeout=1.0):
        """Send to every connected worker; returns how many it reached."""
        data, n, keep = _lib.buffer_of(self.codecs.encode(type, obj))
        return check(_lib_.ripc_server_broadcast(self._live(), type, data, n,
                                                 _lib.timeout_ms(timeout)))

    # ---- facts ----

    @property
    def url(self):
        buf = ctypes.create_string_buffer(256)
        _lib_.ripc_server_url(self._live(), buf, len(buf))
        return buf.value.decode()

    @property
    def peer_count(self):
        return _lib_.ripc_server_peer_count(self._live())

    @property
    def dropped(self):
        return _lib_.ripc_server_dropped(self._live())

    def stats(self):
        """The server's counters (ripc_server_stats) as a dict."""
        st = _lib.ServerStats(size=ctypes.sizeof(_lib.ServerStats))
        check(_lib_.ripc_server_stats(self._live(), ctypes.byref(st)))
        return _options.stats_dict(st)

    def peer_stats(self, peer):
        """A worker's counters as the master sees them (ripc_server_peer_stats)."""
        st = _lib.PeerStats(size=ctypes.sizeof(_lib.PeerStats))
        rc = _lib_.ripc_server_peer_stats(self._live(), self._peer_id(peer), ctypes.byref(st))
        check(rc)
        return _options.stats_dict(st)

    # ---- lifetime ----

    def _live(self):
        if not self._s:
            raise Closed(-errno.ECANCELED, "the server is closed")
        return self._s

    def close(self):
        """Stop, end every worker's connection (on_left runs for each), free
        everything. From a handler it stops the server, and the run() or
        poll() that dispatched finishes the close as it returns. In a forked
        child it releases nothing the parent uses."""
        s, self._s = self._s, None
        if s:
            # Kept for _close_after_handler, which is reached only when this
            # close came from a handler, and the server is therefore alive.
            self._closed_in_handler = s
            _lib_.ripc_server_close(s)
