# SPDX-License-Identifier: MIT
"""Exceptions: the C library's negative errno and its reason, as a class.

Every exception the package raises for a failure of the library is a
ringipc.Error, an OSError whose errno is the library's code (positive, as
OSError has it; `code` is the library's negative form) and whose strerror is
the library's reason: the `why` line of an open call, the master's text of
an error reply, or ripc_strerror(). Where Python has a built-in of the same
meaning the class derives from it too (Timeout is a TimeoutError, PeerGone a
BrokenPipeError, Refused a ConnectionRefusedError).
"""

import errno as _errno

from . import _lib


class Error(OSError):
    """Base of the package's exceptions."""

    def __init__(self, code, reason=None):
        code = -abs(int(code))
        reason = reason or _lib.strerror(code)
        super().__init__(-code, reason)
        self.code = code
        self.reason = reason

    def __str__(self):
        return "%s (%s)" % (self.reason, _errno.errorcode.get(-self.code, str(-self.code)))

    def __reduce__(self):  # pickled across multiprocessing as the same class
        return (type(self), (self.code, self.reason))


class Timeout(Error, TimeoutError):
    """The timeout passed (or, with timeout 0, the call would have waited)."""


class PeerGone(Error, BrokenPipeError):
    """The other side is gone: it closed, died, or the connection broke."""


class MessageTooLarge(Error):
    """Larger than the negotiated limit (max_message)."""


class Rejected(Error):
    """The master refused the worker (protocol version, credentials, limits)."""


class Refused(Error, ConnectionRefusedError):
    """Nobody listens at the URL."""


class AddressInUse(Error):
    """A live master already listens at the URL."""


class ProtocolError(Error):
    """The peer broke the protocol or corrupted shared memory."""


class Closed(Error):
    """The server is closing (or closed)."""


class Busy(Error):
    """Another thread is inside a call on the same client."""


class NoSuchPeer(Error):
    """No worker with that id is connected (anymore)."""


class InvalidArgument(Error, ValueError):
    """A bad argument: a reserved type, an option out of range, a malformed URL."""


class RemoteError(Error):
    """The master answered the request with an error (its handler raised, or
    chose to answer so by raising RemoteError itself). `code` is the error
    code the master chose, `reason` its text."""

    def __init__(self, code=-_errno.EREMOTEIO, reason=None):
        super().__init__(code, reason)


class NoHandler(RemoteError):
    """The master has no handler for the request's type."""


_BY_CODE = {
    _errno.ETIMEDOUT: Timeout,
    _errno.EAGAIN: Timeout,
    _errno.EPIPE: PeerGone,
    _errno.ECONNRESET: PeerGone,
    _errno.EMSGSIZE: MessageTooLarge,
    _errno.EPROTONOSUPPORT: Rejected,
    _errno.EACCES: Rejected,
    _errno.ECONNREFUSED: Refused,
    _errno.EADDRINUSE: AddressInUse,
    _errno.EPROTO: ProtocolError,
    _errno.ECANCELED: Closed,
    _errno.EBUSY: Busy,
    _errno.EINVAL: InvalidArgument,
}


def error(code, reason=None, cls=None):
    """The exception for the library's negative errno `code`."""
    if cls is None:
        cls = _BY_CODE.get(-code, Error)
    return cls(code, reason)


def check(code, reason=None):
    """Raise for a negative return; pass a count through."""
    if code < 0:
        raise error(code, reason)
    return code
