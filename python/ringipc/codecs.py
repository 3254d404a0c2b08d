# SPDX-License-Identifier: MIT
"""Codecs: how objects of each message type become bytes and come back.

A registry maps a message type to an (encode, decode) pair: encode takes an
object and returns bytes (or any bytes-like object), decode takes a
bytes-like object (a memoryview in a server's handler) and returns the
object. Types without a codec carry bytes: bytes-like values (anything with
the buffer protocol) go as they are, str as UTF-8, None as an empty message,
and anything else as JSON
(send_json / request_json / Message.json() use JSON whatever the type).

    codecs = ringipc.Codecs()
    codecs.register(7, encode=lambda p: struct.pack("<dd", *p),
                       decode=lambda b: struct.unpack("<dd", b))
    codecs.register_json(8)          # type 8 carries JSON both ways

Server and Client take `codecs=`; without it they share ringipc.codecs,
the module's default registry.
"""

import json

_BYTES_LIKE = (bytes, bytearray, memoryview)


def json_encode(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def json_decode(buf):
    if not isinstance(buf, (bytes, bytearray)):
        buf = bytes(buf)
    return json.loads(buf)


class Codecs:
    """A registry of codecs by message type (0 .. 0xEFFF)."""

    def __init__(self):
        self._enc = {}
        self._dec = {}

    def register(self, type, encode=None, decode=None):
        """Use encode/decode for messages of `type` (None: bytes that way)."""
        type = _check_type(type)
        for table, fn in ((self._enc, encode), (self._dec, decode)):
            if fn is None:
                table.pop(type, None)
            else:
                table[type] = fn

    def register_json(self, type):
        """Messages of `type` carry JSON."""
        self.register(type, json_encode, json_decode)

    def unregister(self, type):
        self.register(type)

    def encode(self, type, obj):
        fn = self._enc.get(type)
        if fn is not None:
            return fn(obj)
        if isinstance(obj, _BYTES_LIKE):
            return obj
        if isinstance(obj, str):
            return obj.encode()
        if obj is None:
            return b""
        try:
            return memoryview(obj)  # any other buffer: array.array, numpy, mmap
        except TypeError:
            return json_encode(obj)

    def decode(self, type, buf):
        fn = self._dec.get(type)
        if fn is not None:
            return fn(buf)
        return bytes(buf)

    def has_decoder(self, type):
        return type in self._dec


def _check_type(type):
    type = int(type)
    if not 0 <= type < 0xF000:
        raise ValueError("message type %d: user types are 0 .. 0xEFFF" % type)
    return type


codecs = Codecs()
