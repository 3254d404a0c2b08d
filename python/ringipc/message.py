# SPDX-License-Identifier: MIT
"""A received message."""

import ctypes
import errno
import json

from . import _lib

ONEWAY, REQUEST, REPLY = _lib.RIPC_ONEWAY, _lib.RIPC_REQUEST, _lib.RIPC_REPLY
_RELEASED = memoryview(b"x")
_RELEASED.release()  # what a message's data is after its handler returned


class Message:
    """One message, as a handler or Client.recv() gets it.

    type      the message type (the dispatch key)
    kind      ringipc.ONEWAY, REQUEST or REPLY
    peer_id   the worker it came from (0: the master)
    id        the request id (requests and replies)
    size      the payload's length in bytes
    data      the payload: in a server's handler a read-only memoryview of
              the library's memory, valid only during the call (released
              when the handler returns: copy it, msg.bytes(), to keep it);
              from Client.recv() bytes
    value     the payload decoded by the codec of its type (bytes without one)
    """

    __slots__ = ("type", "kind", "peer_id", "id", "size", "_data", "_addr", "_codecs",
                 "_server", "_peer", "_cmsg", "_replied")

    def __init__(self, type, kind, peer_id, id, data, codecs, server=None, peer=None, cmsg=None,
                 addr=None, size=None):
        self.type = type
        self.kind = kind
        self.peer_id = peer_id
        self.id = id
        # Either the payload itself (bytes), or its address in the library's
        # memory, viewed only when asked for: a handler that copies it or
        # decodes it pays one copy, and one that ignores it nothing.
        self._data = data
        self._addr = addr
        self.size = len(data) if size is None else size
        self._codecs = codecs
        self._server = server
        self._peer = peer
        self._cmsg = cmsg
        self._replied = False

    def __repr__(self):
        kind = {ONEWAY: "oneway", REQUEST: "request", REPLY: "reply"}.get(self.kind, self.kind)
        return "<ringipc.Message type=%d %s from %d, %d bytes>" % (
            self.type, kind, self.peer_id, self.size)

    @property
    def data(self):
        d = self._data
        if d is None:
            d = self._data = _lib.view(self._addr, self.size)
        return d

    def _end(self):
        """The handler returned: the library's memory is no longer ours."""
        d = self._data
        self._data = _RELEASED
        self._addr = None
        if d is not None and d is not _RELEASED and d.nbytes:
            try:
                d.release()
            except BufferError:  # exported further by the handler
                pass

    @property
    def is_request(self):
        return self.kind == REQUEST

    @property
    def value(self):
        if self._data is None and not self._codecs.has_decoder(self.type):
            return self.bytes()
        return self._codecs.decode(self.type, self.data)

    def bytes(self):
        """A copy of the payload."""
        d = self._data
        if d is None:
            return ctypes.string_at(self._addr, self.size) if self.size else b""
        return d if isinstance(d, bytes) else bytes(d)

    def json(self):
        return json.loads(self.bytes())

    @property
    def peer(self):
        """The ringipc.Peer it came from (server side)."""
        if self._server is None:
            return None
        return self._server.peers.get(self.peer_id)

    def reply(self, obj=b""):
        """Answer this request now (in its handler), encoded by the codec of
        its type; the handler's return value is then not sent."""
        from .errors import check

        if self._cmsg is None:
            raise ValueError("reply() is for a request, in its handler")
        data, n, keep = _lib.buffer_of(self._codecs.encode(self.type, obj))
        check(_lib.lib.ripc_reply(self._peer, self._cmsg, data, n))
        self._replied = True

    def reply_json(self, obj):
        from .codecs import json_encode

        self.reply(json_encode(obj))

    def reply_error(self, reason, code=None):
        """Answer this request with an error: the worker's request raises
        ringipc.RemoteError with this reason (and code, a negative errno;
        default -EREMOTEIO)."""
        from .errors import check

        if self._cmsg is None:
            raise ValueError("reply_error() is for a request, in its handler")
        code = -errno.EREMOTEIO if code is None else -abs(int(code))
        text = str(reason).encode("utf-8", "replace")[:200]
        check(_lib.lib.ripc_reply_error(self._peer, self._cmsg, code, text))
        self._replied = True
