# SPDX-License-Identifier: MIT
"""A worker: ringipc.Client."""

import ctypes
import errno
import json
import time
from array import array

from . import _lib, _options
from .codecs import codecs as _default_codecs, json_encode
from .errors import NoHandler, PeerGone, Refused, RemoteError, Timeout, check, error
from .message import Message

_lib_ = _lib.lib
_send = _lib_.ripc_client_send
_send_batch = _lib_.ripc_client_send_batch
_request = _lib_.ripc_client_request
_string_at = ctypes.string_at
# send_many() joins up to this many bytes of payloads for one call; beyond
# it, the calls it saves cost less than the copy.
_JOIN_MAX = 64 * 1024
# recv() without a timeout waits in slices this long, so that Ctrl-C (seen
# between calls) ends it.
_SLICE_MS = 250


class Client(_options.Handle):
    """A worker connected to the master at url.

    with ringipc.Client("unix:/tmp/app.sock") as c:
        c.send(2, b"one-way")
        print(c.request(1, b"hello", timeout=1.0))

    Keywords: timeout (connect and handshake, seconds; default 5), name
    (shown by tools), wait ("adaptive", "spin", "block"), transport
    ("auto", "shm", "socket"; the environment's RIPC_TRANSPORT overrides
    it), ring_bytes, max_message, max_inline, spin_us, doorbell, token,
    allow_uids, allow_any_uid, codecs (default: the module's
    ringipc.codecs). A client is used by one thread at a time (another
    thread's call meanwhile raises ringipc.Busy).
    """

    def __init__(self, url, *, timeout=None, codecs=None, **options):
        self._c = None
        opt, keep = _options.build(connect_timeout=timeout, **options)
        why = ctypes.create_string_buffer(256)
        c = ctypes.c_void_p()
        rc = _lib_.ripc_client_open_ex(ctypes.byref(c), url.encode(), ctypes.byref(opt), why,
                                       len(why))
        if rc < 0:
            reason = "%s: %s" % (url, _lib.text(why.value) or _lib.strerror(rc))
            if rc == -errno.ENOENT:  # no socket file: nobody listens there
                raise Refused(rc, reason)
            raise error(rc, reason)
        self._c = c.value
        self.codecs = codecs if codecs is not None else _default_codecs
        self._reply = _lib.Msg()
        self._reply_p = ctypes.byref(self._reply)

    # ---- sending ----

    # The common case, bytes of a type without a codec, goes straight to the
    # library: this path is paid per message.

    def send(self, type, obj=b"", timeout=None):
        """One-way message to the master, encoded by the codec of its type
        (bytes-like as is, str as UTF-8, others as JSON); waits up to
        timeout seconds (None: as long as the master lives) for room."""
        if obj.__class__ is not bytes or type in self.codecs._enc:
            obj = self.codecs.encode(type, obj)
        self.send_bytes(type, obj, timeout)

    def send_json(self, type, obj, timeout=None):
        """send() of obj as JSON, whatever the type's codec."""
        self.send_bytes(type, json_encode(obj), timeout)

    def send_bytes(self, type, data, timeout=None):
        """send() of bytes-like data, bypassing the codecs."""
        if data.__class__ is bytes:
            n = len(data)
        else:
            data, n, keep = _lib.buffer_of(data)
        rc = _send(self._c or self._live(), type, data, n,
                   -1 if timeout is None else _lib.timeout_ms(timeout))
        if rc < 0:
            raise error(rc)

    def send_many(self, type, msgs, timeout=None):
        """Send every message of the iterable msgs as a one-way message of
        `type`, in order, in one call to the library (ripc_client_send_batch):
        the per-call cost of send() paid once per batch. Each is encoded as
        send() would encode it. timeout (seconds; None: as long as the master
        lives) covers the whole batch. Returns how many were sent (all of
        them); when not all went, raises the error of the first one that did
        not (Timeout, PeerGone, MessageTooLarge, ...) with its `sent`
        attribute set to how many went before it."""
        if type in self.codecs._enc:
            msgs = [self.codecs.encode(type, m) for m in msgs]
        elif msgs.__class__ is not list and msgs.__class__ is not tuple:
            msgs = list(msgs)
        try:
            lens = array("Q", map(len, msgs))
            total = sum(lens)
            if total > _JOIN_MAX:
                raise OverflowError  # large payloads: see _send_chunks
            buf = b"".join(msgs)
            if len(buf) != total:  # an item whose len() is not its bytes
                raise TypeError
        except (TypeError, OverflowError):
            return self._send_chunks(type, msgs, timeout)
        n = len(lens)
        if not n:
            return 0
        c = self._c or self._live()
        ms = -1 if timeout is None else _lib.timeout_ms(timeout)
        rc = _send_batch(c, type, buf, lens.buffer_info()[0], n, ms)
        if rc == n:
            return n
        return self._send_rest(c, type, buf, lens, rc, ms, 0, None)

    def _send_chunks(self, type, msgs, timeout):
        """send_many() of messages that are not all bytes, or of more than
        _JOIN_MAX bytes in all: encoded one by one, and sent in batches of up
        to _JOIN_MAX bytes (a larger message alone, not copied). Joining
        megabytes would cost more than the calls it saves (a fresh buffer
        per call, its pages faulted in)."""
        enc = self.codecs.encode
        msgs = [m if m.__class__ is bytes else enc(type, m) for m in msgs]
        c = self._c or self._live()
        ms = -1 if timeout is None else _lib.timeout_ms(timeout)
        end = time.monotonic() + ms / 1000.0 if ms > 0 else None
        n, sent, i = len(msgs), 0, 0
        while i < n:
            j, size = i, 0
            while j < n and (j == i or size + memoryview(msgs[j]).nbytes <= _JOIN_MAX):
                size += memoryview(msgs[j]).nbytes
                j += 1
            chunk = msgs[i:j]
            lens = array("Q", [memoryview(m).nbytes for m in chunk])
            buf = chunk[0] if j == i + 1 and chunk[0].__class__ is bytes else b"".join(chunk)
            left = ms if end is None else max(0, int((end - time.monotonic()) * 1000))
            rc = _send_batch(c, type, buf or None, lens.buffer_info()[0], j - i, left)
            if rc != j - i:
                self._send_rest(c, type, buf, lens, rc, left, sent, end)
            sent += j - i
            i = j
        return n

    def _send_rest(self, c, type, buf, lens, rc, ms, before, end):
        """A batch of send_many() after the library sent only rc (< n) of its
        messages, or none (rc < 0): the rest once more, with what is left of
        the time, which sends more or tells why it cannot. Returns n once
        all went; else raises with e.sent counting `before` (messages of
        earlier batches). end: the deadline (None: from ms)."""
        n = len(lens)
        sent = 0
        if end is None and ms > 0:
            end = time.monotonic() + ms / 1000.0
        left = ms
        while rc >= 0:
            sent += rc
            if sent == n:
                return n
            if end is not None:
                left = max(0, int((end - time.monotonic()) * 1000))
            rest = buf[sum(lens[:sent]):]
            rc = _send_batch(c, type, rest or None, lens.buffer_info()[0] + lens.itemsize * sent,
                             n - sent, left)
        if rc == -errno.EAGAIN and ms != 0:  # the time ran out between the two calls
            rc = -errno.ETIMEDOUT
        e = error(rc)
        e.sent = before + sent
        raise e

    def request_bytes(self, type, data, timeout=None):
        """request() of bytes-like data, the reply as bytes, bypassing the codecs."""
        if data.__class__ is bytes:
            n = len(data)
        else:
            data, n, keep = _lib.buffer_of(data)
        c = self._c or self._live()
        rc = _request(c, type, data, n, self._reply_p,
                      -1 if timeout is None else _lib.timeout_ms(timeout))
        if rc < 0:
            self._raise_request(c, rc, type)
        r = self._reply
        n = r.len
        return _string_at(r.data, n) if n else b""

    def request(self, type, obj=b"", timeout=None):
        """Send a request and wait up to timeout seconds (None: as long as the
        master lives) for the reply; returns the reply decoded by the codec of
        the type (bytes without one). Raises ringipc.RemoteError when the
        master's handler raised (NoHandler: no handler for the type), Timeout,
        PeerGone, MessageTooLarge, ..."""
        codecs = self.codecs
        if obj.__class__ is not bytes or type in codecs._enc:
            obj = codecs.encode(type, obj)
        reply = self.request_bytes(type, obj, timeout)
        if type in codecs._dec:
            return codecs.decode(type, reply)
        return reply

    def request_json(self, type, obj, timeout=None):
        """request() of obj as JSON; the reply decoded from JSON."""
        return json.loads(self.request_bytes(type, json_encode(obj), timeout))

    def _raise_request(self, c, rc, type):
        text = _lib.text(_lib_.ripc_client_error(c))
        if text:
            cls = NoHandler if rc == -errno.ENOENT else RemoteError
            raise cls(rc, text)
        if rc == -errno.ETIMEDOUT:
            raise Timeout(rc, "no reply to a request of type %d in time" % type)
        raise error(rc)

    # ---- receiving ----

    def recv(self, timeout=None):
        """The next message from the master (a one-way send or broadcast), a
        ringipc.Message whose data is bytes. Waits up to timeout seconds
        (None: until one comes or the master is gone; 0: raise Timeout at
        once when none is there)."""
        c = self._live()
        m = _lib.Msg()
        if timeout is None:
            while True:
                rc = _lib_.ripc_client_recv(c, ctypes.byref(m), _SLICE_MS)
                if rc != -errno.ETIMEDOUT and rc != -errno.EAGAIN:
                    break
        else:
            rc = _lib_.ripc_client_recv(c, ctypes.byref(m), _lib.timeout_ms(timeout))
        check(rc)
        data = ctypes.string_at(m.data, m.len) if m.len else b""
        return Message(m.type, m.kind, m.peer_id, m.id, data, self.codecs)

    def __iter__(self):
        """Messages from the master until it is gone."""
        while True:
            try:
                yield self.recv()
            except PeerGone:
                return

    # ---- facts ----

    @property
    def id(self):
        return _lib_.ripc_client_id(self._live())

    @property
    def transport(self):
        """"shm" or "socket"."""
        return _lib.text(_lib_.ripc_client_transport(self._live()))

    @property
    def transport_reason(self):
        return _lib.text(_lib_.ripc_client_transport_reason(self._live()))

    @property
    def dropped(self):
        return _lib_.ripc_client_dropped(self._live())

    def fileno(self):
        """A descriptor readable when the master may have sent something (for
        select/selectors; see ripc_client_fd)."""
        return check(_lib_.ripc_client_fd(self._live()))

    def stats(self):
        """The worker's counters for its connection (ripc_client_stats) as a dict."""
        st = _lib.PeerStats(size=ctypes.sizeof(_lib.PeerStats))
        check(_lib_.ripc_client_stats(self._live(), ctypes.byref(st)))
        return _options.stats_dict(st)

    # ---- lifetime ----

    def _live(self):
        if not self._c:
            raise PeerGone(-errno.EPIPE, "the client is closed")
        return self._c

    def close(self):
        """Say goodbye and free everything."""
        c, self._c = self._c, None
        if c:
            _lib_.ripc_client_close(c)
