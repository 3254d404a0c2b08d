# SPDX-License-Identifier: MIT
"""The C library, loaded with ctypes, and the prototypes of the calls used.

Which file is loaded, first match wins:
  1. RINGIPC_LIBRARY, a path to libringipc.so (a build tree's, say);
  2. the library installed beside this package (the path `cmake --install`
     wrote into _installed.py);
  3. the system's libringipc.so.0 (the dynamic loader's search path).

Calls through ctypes.CDLL release the GIL while they run, so a thread that
waits in the library (poll, run, request, recv) lets the others go on; the
handlers the library calls back take the GIL again (CFUNCTYPE does that).
"""

import ctypes
import ctypes.util
import os
import struct

SONAME = "libringipc.so.0"


def _candidates():
    env = os.environ.get("RINGIPC_LIBRARY")
    if env:
        return [env], True
    out = []
    try:
        from . import _installed  # written by cmake --install

        out.append(_installed.LIBRARY)
    except ImportError:
        pass
    out.append(SONAME)
    found = ctypes.util.find_library("ringipc")
    if found:
        out.append(found)
    return out, False


def _load():
    paths, explicit = _candidates()
    errors = []
    for p in paths:
        try:
            return ctypes.CDLL(p)
        except OSError as e:
            errors.append("%s: %s" % (p, e))
            if explicit:
                break
    raise ImportError(
        "ringipc: cannot load the C library (%s); install it (cmake --install) "
        "or set RINGIPC_LIBRARY=/path/to/libringipc.so" % "; ".join(errors)
    )


lib = _load()

c_peer_p = ctypes.c_void_p
c_server_p = ctypes.c_void_p
c_client_p = ctypes.c_void_p

RIPC_ONEWAY, RIPC_REQUEST, RIPC_REPLY = 0, 1, 2
TRANSPORTS = {"auto": 0, "shm": 1, "socket": 2}
WAITS = {"adaptive": 0, "spin": 1, "block": 2}
DOORBELLS = {"auto": 0, "eventfd": 1, "futex": 2, "socket": 3}
TYPE_RESERVED = 0xF000


class Options(ctypes.Structure):
    _fields_ = [
        ("ring_bytes", ctypes.c_size_t),
        ("max_inline", ctypes.c_size_t),
        ("max_message", ctypes.c_uint64),
        ("transport", ctypes.c_int),
        ("wait", ctypes.c_int),
        ("spin_us", ctypes.c_uint32),
        ("name", ctypes.c_char_p),
        ("doorbell", ctypes.c_int),
        ("allow_uids", ctypes.POINTER(ctypes.c_uint32)),
        ("n_allow_uids", ctypes.c_size_t),
        ("allow_any_uid", ctypes.c_int),
        ("connect_timeout_ms", ctypes.c_int),
        ("token", ctypes.c_char_p),
        ("tcp_without_token", ctypes.c_int),
    ]


class Msg(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_uint16),
        ("kind", ctypes.c_uint8),
        ("peer_id", ctypes.c_uint32),
        ("id", ctypes.c_uint64),
        ("data", ctypes.c_void_p),
        ("len", ctypes.c_uint64),
    ]


class Out(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_uint16),
        ("data", ctypes.c_void_p),
        ("len", ctypes.c_uint64),
    ]


_u64x3 = ctypes.c_uint64 * 3


class PeerStats(ctypes.Structure):
    _fields_ = [
        ("size", ctypes.c_uint32),
        ("peer_id", ctypes.c_uint32),
        ("pid", ctypes.c_int32),
        ("transport", ctypes.c_int32),
        ("connected_ns", ctypes.c_uint64),
        ("msgs_in", _u64x3),
        ("bytes_in", _u64x3),
        ("msgs_out", _u64x3),
        ("bytes_out", _u64x3),
        ("large_in", ctypes.c_uint64),
        ("large_bytes_in", ctypes.c_uint64),
        ("large_out", ctypes.c_uint64),
        ("large_bytes_out", ctypes.c_uint64),
        ("ring_bytes", ctypes.c_uint64),
        ("ring_in_used", ctypes.c_uint64),
        ("ring_out_used", ctypes.c_uint64),
        ("ring_in_high", ctypes.c_uint64),
        ("ring_out_high", ctypes.c_uint64),
        ("send_waits", ctypes.c_uint64),
        ("send_wait_ns", ctypes.c_uint64),
        ("sleeps", ctypes.c_uint64),
        ("wakeups", ctypes.c_uint64),
        ("doorbells", ctypes.c_uint64),
        ("dropped", ctypes.c_uint64),
        ("proto_errors", ctypes.c_uint64),
        ("name", ctypes.c_char * 64),
        ("reason", ctypes.c_char * 208),
    ]


class ServerStats(ctypes.Structure):
    _fields_ = [
        ("size", ctypes.c_uint32),
        ("peers_now", ctypes.c_uint32),
        ("peers_total", ctypes.c_uint64),
        ("parked_now", ctypes.c_uint64),
        ("opened_ns", ctypes.c_uint64),
        ("left_bye", ctypes.c_uint64),
        ("left_pipe", ctypes.c_uint64),
        ("left_proto", ctypes.c_uint64),
        ("left_timedout", ctypes.c_uint64),
        ("left_canceled", ctypes.c_uint64),
        ("left_other", ctypes.c_uint64),
        ("refused_version", ctypes.c_uint64),
        ("refused_credentials", ctypes.c_uint64),
        ("refused_limits", ctypes.c_uint64),
        ("refused_transport", ctypes.c_uint64),
        ("refused_resources", ctypes.c_uint64),
        ("refused_malformed", ctypes.c_uint64),
        ("handshake_hangups", ctypes.c_uint64),
        ("handshake_timeouts", ctypes.c_uint64),
        ("handshake_evicted", ctypes.c_uint64),
        ("unhandled", ctypes.c_uint64),
        ("large_pool_bytes", ctypes.c_uint64),
        ("large_pool_limit", ctypes.c_uint64),
    ]


HANDLER = ctypes.CFUNCTYPE(None, c_peer_p, ctypes.POINTER(Msg), ctypes.c_void_p)
# The same handler with the message as its address (an int): no ctypes
# pointer object is made per message; Msg's fields are read with MSG_LAYOUT.
RAW_HANDLER = ctypes.CFUNCTYPE(None, c_peer_p, ctypes.c_void_p, ctypes.c_void_p)
# ripc_batch_handler, with the array of messages as its address.
BATCH_HANDLER = ctypes.CFUNCTYPE(None, c_peer_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)
JOINED = ctypes.CFUNCTYPE(None, c_peer_p, ctypes.c_void_p)
LEFT = ctypes.CFUNCTYPE(None, c_peer_p, ctypes.c_int, ctypes.c_void_p)

_I, _U, _P, _S = ctypes.c_int, ctypes.c_uint, ctypes.c_void_p, ctypes.c_char_p
_U16, _U32, _U64, _SZ = ctypes.c_uint16, ctypes.c_uint32, ctypes.c_uint64, ctypes.c_size_t
_PP = ctypes.POINTER(ctypes.c_void_p)
_MSGP = POINTER_MSG = ctypes.POINTER(Msg)

_PROTOS = {
    "ripc_version": (_S, []),
    "ripc_strerror": (_S, [_I]),
    "ripc_server_open_ex": (_I, [_PP, _S, ctypes.POINTER(Options), ctypes.c_char_p, _SZ]),
    "ripc_server_handle": (_I, [_P, _U16, HANDLER, _P]),
    "ripc_server_handle_batch": (_I, [_P, _U16, BATCH_HANDLER, _SZ, _P]),
    "ripc_server_on_peer": (_I, [_P, JOINED, LEFT, _P]),
    "ripc_server_poll": (_I, [_P, _I]),
    "ripc_server_run": (_I, [_P, _U]),
    "ripc_server_stop": (None, [_P]),
    "ripc_server_send": (_I, [_P, _U32, _U16, _P, _U64, _I]),
    "ripc_server_send_batch": (_I, [_P, _U32, ctypes.POINTER(Out), _SZ, _I]),
    "ripc_server_broadcast": (_I, [_P, _U16, _P, _U64, _I]),
    "ripc_reply": (_I, [_P, _MSGP, _P, _U64]),
    "ripc_reply_error": (_I, [_P, _MSGP, _I, _S]),
    "ripc_peer_id": (_U32, [_P]),
    "ripc_peer_name": (_S, [_P]),
    "ripc_peer_transport": (_S, [_P]),
    "ripc_peer_transport_reason": (_S, [_P]),
    "ripc_peer_pid": (ctypes.c_int32, [_P]),
    "ripc_server_url": (_I, [_P, ctypes.c_char_p, _SZ]),
    "ripc_server_dropped": (_U64, [_P]),
    "ripc_server_peer_count": (_U, [_P]),
    "ripc_server_close": (None, [_P]),
    "ripc_server_shutdown": (None, [_P]),
    "ripc_server_stats": (_I, [_P, ctypes.POINTER(ServerStats)]),
    "ripc_server_peer_stats": (_I, [_P, _U32, ctypes.POINTER(PeerStats)]),
    "ripc_client_open_ex": (_I, [_PP, _S, ctypes.POINTER(Options), ctypes.c_char_p, _SZ]),
    "ripc_client_send": (_I, [_P, _U16, _P, _U64, _I]),
    "ripc_client_send_batch": (_I, [_P, _U16, _P, _P, _SZ, _I]),
    "ripc_client_recv": (_I, [_P, _MSGP, _I]),
    "ripc_client_request": (_I, [_P, _U16, _P, _U64, _MSGP, _I]),
    "ripc_client_error": (_S, [_P]),
    "ripc_client_transport": (_S, [_P]),
    "ripc_client_transport_reason": (_S, [_P]),
    "ripc_client_id": (_U32, [_P]),
    "ripc_client_fd": (_I, [_P]),
    "ripc_client_dropped": (_U64, [_P]),
    "ripc_client_close": (None, [_P]),
    "ripc_client_stats": (_I, [_P, ctypes.POINTER(PeerStats)]),
}

for _name, (_res, _args) in _PROTOS.items():
    _fn = getattr(lib, _name)
    _fn.restype = _res
    _fn.argtypes = _args

# ripc_msg's fields in order (type, kind, peer_id, id, data, len), as Msg
# lays them out; checked against Msg below.
MSG_LAYOUT = struct.Struct("=HBxIQQQ")
assert MSG_LAYOUT.size == ctypes.sizeof(Msg) and Msg.len.offset == 24 and Msg.data.offset == 16

# ripc_reply and ripc_reply_error with the request as an address (RAW_HANDLER's).
reply_at = ctypes.CFUNCTYPE(_I, _P, _P, _P, _U64)(("ripc_reply", lib))
reply_error_at = ctypes.CFUNCTYPE(_I, _P, _P, _I, _S)(("ripc_reply_error", lib))

version = lib.ripc_version().decode()


def strerror(code):
    return lib.ripc_strerror(code).decode("utf-8", "replace")


def text(p):
    """A C string the library returned, as str ("" for NULL)."""
    return p.decode("utf-8", "replace") if p else ""


# A read-only memoryview straight over the library's memory, without a copy:
# a ctypes array placed at the address, viewed as unsigned bytes. (The C
# API's PyMemoryView_FromMemory through ctypes.pythonapi costs about twice
# as much per call.)
_U8 = ctypes.c_ubyte
_EMPTY = memoryview(b"")


def view(addr, n):
    if not n:
        return _EMPTY
    return memoryview((_U8 * n).from_address(addr)).cast("B").toreadonly()


def buffer_of(data):
    """(pointer, length, keepalive) for bytes-like data passed to the library."""
    if isinstance(data, bytes):
        return data, len(data), data  # c_void_p takes bytes as its address
    if isinstance(data, str):
        b = data.encode()
        return b, len(b), b
    mv = memoryview(data)
    n = mv.nbytes
    if n == 0:
        return None, 0, None
    base = mv.obj
    if isinstance(base, ctypes.Array) and n == ctypes.sizeof(base):
        # A whole message of the library's, as view() gives it (a handler
        # echoing msg.data): its address, no copy.
        return ctypes.addressof(base), n, mv
    if mv.readonly or not mv.c_contiguous:
        # ctypes takes the address of writable buffers only.
        b = mv.tobytes()
        return b, n, b
    if mv.format != "B" or mv.ndim != 1:
        mv = mv.cast("B")
    arr = (ctypes.c_char * n).from_buffer(mv)
    return ctypes.addressof(arr), n, arr


def timeout_ms(timeout):
    """Seconds (None: forever) to the library's milliseconds (-1: forever)."""
    if timeout is None:
        return -1
    if timeout <= 0:
        return 0
    ms = int(timeout * 1000 + 0.999)
    return min(ms, 0x7FFFFFFF)
