# SPDX-License-Identifier: MIT
# Failures as exceptions with the library's reason: timeouts, nobody
# listening, limits, a master that dies, handlers that raise.
import errno
import logging
import threading
import time

import pytest

import ringipc
from conftest import killed_master


def test_request_timeout(url, mode, serve):
    release = threading.Event()
    srv = ringipc.Server(url)

    @srv.handler(1)
    def slow(msg):
        release.wait(30)
        return b"late"

    with serve(srv):
        with ringipc.Client(url) as c:
            t0 = time.monotonic()
            with pytest.raises(ringipc.Timeout) as ei:
                c.request(1, b"x", timeout=0.2)
            assert time.monotonic() - t0 < 5
            assert isinstance(ei.value, TimeoutError)
            assert ei.value.code == -errno.ETIMEDOUT
            release.set()


def test_refused(url):
    with pytest.raises(ringipc.Refused) as ei:
        ringipc.Client(url, timeout=2)
    assert isinstance(ei.value, ConnectionRefusedError)
    assert url in ei.value.reason


def test_refused_stale_socket_file(url):
    """A socket file nobody listens on (a master that died)."""
    import socket

    s = socket.socket(socket.AF_UNIX)
    s.bind(url[len("unix:"):])
    s.close()
    with pytest.raises(ringipc.Refused) as ei:
        ringipc.Client(url, timeout=2)
    assert ei.value.code == -errno.ECONNREFUSED


def test_rejected_over_tcp(serve):
    srv = ringipc.Server("tcp://127.0.0.1:0", token="the-right-token-1234")
    with serve(srv):
        with pytest.raises(ringipc.Rejected) as ei:
            ringipc.Client(srv.url, token="a-wrong-token-123456", timeout=10)
        assert ei.value.code == -errno.EACCES and "token" in ei.value.reason
        with ringipc.Client(srv.url, token="the-right-token-1234") as c:
            assert c.transport == "socket"


def test_address_in_use(url):
    with ringipc.Server(url):
        with pytest.raises(ringipc.AddressInUse):
            ringipc.Server(url)


def test_bad_arguments(url):
    with pytest.raises(ringipc.InvalidArgument) as ei:
        ringipc.Server("unix://x")
    assert ei.value.reason
    with pytest.raises(ValueError):
        ringipc.Server(url, wait="sometimes")
    with pytest.raises(ringipc.InvalidArgument):
        ringipc.Server(url, max_message=10)


def test_too_large(url, mode, serve):
    with serve(ringipc.Server(url, lambda m: b"", max_message=4096)):
        with ringipc.Client(url) as c:
            with pytest.raises(ringipc.MessageTooLarge):
                c.send(1, b"x" * 8192, timeout=5)
            with pytest.raises(ringipc.MessageTooLarge):
                c.request(1, b"x" * 8192, timeout=5)
            assert c.request(1, b"x" * 1000, timeout=5) == b""


def test_reserved_type(url, mode, serve):
    with serve(ringipc.Server(url)):
        with ringipc.Client(url) as c:
            with pytest.raises(ringipc.InvalidArgument):
                c.send(0xF001, b"x")


def test_handler_exception_gets_error_reply(url, mode, serve, caplog):
    seen = []
    srv = ringipc.Server(url)

    @srv.handler(1)
    def broken(msg):
        raise KeyError("no such thing")

    @srv.handler(2)
    def fine(msg):
        return b"still here"

    with serve(srv):
        with ringipc.Client(url) as c:
            with caplog.at_level(logging.ERROR, logger="ringipc"):
                with pytest.raises(ringipc.RemoteError) as ei:
                    c.request(1, b"x", timeout=5)
            assert "KeyError" in ei.value.reason and "no such thing" in ei.value.reason
            assert ei.value.code == -errno.EREMOTEIO
            assert c.request(2, timeout=5) == b"still here"
            # One-way messages to a raising handler are reported, not answered.
            srv.on_error = lambda exc, msg: seen.append((type(exc), msg.type))
            c.send(1, b"y")
            with pytest.raises(ringipc.RemoteError):
                c.request(1, b"z", timeout=5)
            with pytest.raises(ringipc.NoHandler) as ei:
                c.request(99, b"", timeout=5)
            assert ei.value.code == -errno.ENOENT
    assert "no such thing" in caplog.text
    assert seen == [(KeyError, 1), (KeyError, 1)]


def test_peer_callback_exception_reported(url, serve, caplog):
    srv = ringipc.Server(url, lambda m: b"ok", on_joined=lambda peer: 1 / 0)
    with caplog.at_level(logging.ERROR, logger="ringipc"):
        with serve(srv):
            with ringipc.Client(url) as c:
                assert c.request(1, timeout=5) == b"ok"
    assert "on_joined raised" in caplog.text and "ZeroDivisionError" in caplog.text


def test_handler_chooses_error_reply(url, mode, serve):
    srv = ringipc.Server(url)

    @srv.handler(1)
    def no(msg):
        raise ringipc.RemoteError(-errno.EPERM, "not for you")

    @srv.handler(2)
    def also_no(msg):
        msg.reply_error("nor this", code=errno.EACCES)

    with serve(srv):
        with ringipc.Client(url) as c:
            with pytest.raises(ringipc.RemoteError) as ei:
                c.request(1, b"", timeout=5)
            assert (ei.value.code, ei.value.reason) == (-errno.EPERM, "not for you")
            with pytest.raises(ringipc.RemoteError) as ei:
                c.request(2, b"", timeout=5)
            assert (ei.value.code, ei.value.reason) == (-errno.EACCES, "nor this")


def test_dead_master(url, mode):
    with killed_master(url) as c:
        t0 = time.monotonic()
        with pytest.raises(ringipc.PeerGone) as ei:
            c.request(1, b"ping", timeout=30)
        assert time.monotonic() - t0 < 20
        assert isinstance(ei.value, BrokenPipeError)
        with pytest.raises(ringipc.PeerGone):
            c.recv(timeout=5)
        with pytest.raises(ringipc.PeerGone):
            for _ in range(100000):  # a ring's worth may still be taken
                c.send(1, b"x", timeout=5)


def test_closed_objects(url, serve):
    srv = ringipc.Server(url)
    with serve(srv):
        c = ringipc.Client(url)
        c.close()
        c.close()
        with pytest.raises(ringipc.Error):
            c.send(1, b"x")
    srv.close()
    with pytest.raises(ringipc.Closed):
        srv.poll(0)


def test_close_from_handler(url, mode, serve):
    """close() in a handler stops the server; run() returns and finishes it."""
    srv = ringipc.Server(url)

    @srv.handler(1)
    def last(msg):
        srv.close()
        return b"bye"

    with serve(srv):
        with ringipc.Client(url) as c:
            assert c.request(1, timeout=10) == b"bye"
            # Requests that reached the dispatch before it stopped are still
            # answered; then the worker sees the end.
            with pytest.raises(ringipc.PeerGone):
                for _ in range(1000):
                    assert c.request(1, timeout=10) == b"bye"
    with pytest.raises(ringipc.Closed):
        srv.poll(0)


def test_exceptions_pickle():
    import pickle

    e = pickle.loads(pickle.dumps(ringipc.Timeout(-errno.ETIMEDOUT, "why")))
    assert type(e) is ringipc.Timeout and e.reason == "why" and e.errno == errno.ETIMEDOUT
