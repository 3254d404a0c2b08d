# SPDX-License-Identifier: MIT
"""ringipc from Python: one master, many workers, messages through shared memory.

    import ringipc

    srv = ringipc.Server("unix:/tmp/app.sock")

    @srv.handler(1)
    def upper(msg):
        return bytes(msg.data).upper()    # a request's handler returns its reply

    srv.run()                             # Ctrl-C stops it

    with ringipc.Client("unix:/tmp/app.sock") as c:
        print(c.request(1, b"hello", timeout=1.0))    # b'HELLO'

The C library is loaded with ctypes: the installed one, or the file named by
RINGIPC_LIBRARY (docs/python.md).
"""

from ._lib import version as library_version
from .codecs import Codecs, codecs
from .errors import (AddressInUse, Busy, Closed, Error, InvalidArgument, MessageTooLarge,
                     NoHandler, NoSuchPeer, PeerGone, ProtocolError, Refused, Rejected,
                     RemoteError, Timeout)
from .message import ONEWAY, REPLY, REQUEST, Message
from .server import Peer, Server
from .client import Client

__version__ = library_version
__all__ = [
    "Server", "Client", "Peer", "Message", "Codecs", "codecs", "ONEWAY", "REQUEST", "REPLY",
    "Error", "Timeout", "PeerGone", "MessageTooLarge", "Rejected", "Refused", "AddressInUse",
    "ProtocolError", "Closed", "Busy", "NoSuchPeer", "InvalidArgument", "RemoteError",
    "NoHandler", "library_version",
]
