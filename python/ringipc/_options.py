# SPDX-License-Identifier: MIT
"""Keyword arguments of Server and Client -> ripc_options."""

import ctypes

from . import _lib


def _choice(table, what, value):
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    try:
        return table[value]
    except KeyError:
        raise ValueError("%s=%r: one of %s" % (what, value, ", ".join(table))) from None


def build(wait="adaptive", transport=None, ring_bytes=0, max_inline=0, max_message=0,
          spin_us=0, name=None, doorbell=None, allow_uids=None, allow_any_uid=False,
          connect_timeout=None, token=None, tcp_without_token=False):
    """(ripc_options, keepalive): the keepalive holds the buffers it points to."""
    o = _lib.Options()
    keep = []
    o.ring_bytes = ring_bytes or 0
    o.max_inline = max_inline or 0
    o.max_message = max_message or 0
    o.transport = _choice(_lib.TRANSPORTS, "transport", transport)
    o.wait = _choice(_lib.WAITS, "wait", wait)
    o.spin_us = spin_us or 0
    o.doorbell = _choice(_lib.DOORBELLS, "doorbell", doorbell)
    if name is not None:
        b = name.encode() if isinstance(name, str) else bytes(name)
        keep.append(b)
        o.name = b
    if allow_uids:
        arr = (ctypes.c_uint32 * len(allow_uids))(*allow_uids)
        keep.append(arr)
        o.allow_uids = arr
        o.n_allow_uids = len(allow_uids)
    o.allow_any_uid = 1 if allow_any_uid else 0
    if connect_timeout is not None:
        o.connect_timeout_ms = _lib.timeout_ms(connect_timeout) if connect_timeout > 0 else -1
    if token is not None:
        b = token.encode() if isinstance(token, str) else bytes(token)
        keep.append(b)
        o.token = b
    o.tcp_without_token = 1 if tcp_without_token else 0
    return o, keep


def stats_dict(st):
    """A ctypes stats struct as a dict (arrays as lists, strings as str)."""
    out = {}
    for field, _ in st._fields_:
        if field == "size":
            continue
        v = getattr(st, field)
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        elif isinstance(v, ctypes.Array):
            v = list(v)
        out[field] = v
    return out


class Handle:
    """What Server and Client share: `with` closes, and so does the garbage
    collector (close() must accept being called more than once)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
