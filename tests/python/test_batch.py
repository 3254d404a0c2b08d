# SPDX-License-Identifier: MIT
# Client.send_many (ripc_client_send_batch): content and order over many
# batches in both transports, what it takes as messages, a batch cut short
# by its timeout, and the errors.
import random
import struct
import threading
import time

import pytest

import ringipc
from conftest import killed_master

INLINE = 4096  # max_inline of these tests: sizes sit around it


def payload(i, n):
    """Message i, n >= 8 bytes: its number, then filler that depends on it."""
    return struct.pack("<Q", i) + bytes((i + k) & 0xFF for k in range(n - 8))


def test_send_many_in_order(url, mode, serve):
    rnd = random.Random(15)
    sizes = [8, 9, 64, 100, INLINE - 1, INLINE, INLINE + 1, 3000, 70000]
    batches = []
    i = 0
    for b in range(300):
        k = 1 if b % 7 == 0 else rnd.randint(1, 100)
        batch = []
        for _ in range(k):
            r = rnd.randrange(64)
            n = sizes[r] if r < len(sizes) else 8 + r
            batch.append(payload(i, n))
            i += 1
        batches.append(batch)
    want = [m for b in batches for m in b]
    seen = []
    bad = []
    done = threading.Event()
    srv = ringipc.Server(url, max_inline=INLINE)

    @srv.handler(2)
    def got(msg):
        d = msg.bytes()
        if d != want[len(seen)]:
            bad.append(len(seen))
        seen.append(struct.unpack_from("<Q", d)[0])
        if len(seen) == len(want):
            done.set()

    with serve(srv):
        with ringipc.Client(url, max_inline=INLINE) as c:
            assert c.transport == mode
            for b in batches:
                assert c.send_many(2, b, timeout=30) == len(b)
            assert done.wait(120)
    assert not bad, "wrong content at %r" % bad[:5]
    assert seen == list(range(len(want)))


def test_send_many_takes_what_send_takes(url, mode, serve):
    got = []
    done = threading.Event()
    codecs = ringipc.Codecs()
    codecs.register_json(5)
    srv = ringipc.Server(url, codecs=codecs)

    @srv.handler(4)
    def raw(msg):
        got.append(msg.bytes())

    @srv.handler(5)
    def js(msg):
        got.append(msg.value)

    @srv.handler(6)
    def end(msg):
        done.set()

    with serve(srv):
        with ringipc.Client(url, codecs=codecs) as c:
            assert c.send_many(4, []) == 0
            assert c.send_many(4, (b"a", b"", b"bc")) == 3
            assert c.send_many(4, (bytes([i]) for i in range(3))) == 3
            assert c.send_many(4, [bytearray(b"ba"), memoryview(b"mv"), "h\u00e9"]) == 3
            assert c.send_many(4, [struct.pack("<2I", 1, 2)]) == 1
            wide = memoryview(struct.pack("<2I", 3, 4)).cast("I")  # len() 2, 8 bytes
            assert c.send_many(4, [wide, b"z"]) == 2
            assert c.send_many(5, [{"a": 1}, [2, 3]]) == 2
            c.send(6)
            assert done.wait(30)
    assert got == [b"a", b"", b"bc", b"\0", b"\1", b"\2", b"ba", b"mv", "h\u00e9".encode(),
                   struct.pack("<2I", 1, 2), struct.pack("<2I", 3, 4), b"z", {"a": 1}, [2, 3]]


def test_send_many_timeout_sends_part(url, mode, serve):
    """A batch larger than the channel while the master does not read: a
    Timeout that says how many went; the rest goes once it reads again."""
    hold = threading.Event()
    holding = threading.Event()
    seen = []
    srv = ringipc.Server(url, ring_bytes=64 * 1024)

    @srv.handler(1)
    def block(msg):
        holding.set()
        hold.wait(60)

    @srv.handler(2)
    def got(msg):
        seen.append(struct.unpack_from("<Q", msg.data)[0])

    @srv.handler(3)
    def count(msg):
        return b"%d" % len(seen)

    msgs = [payload(i, 2000) for i in range(1000)]
    with serve(srv):
        with ringipc.Client(url, ring_bytes=64 * 1024) as c:
            c.send(1)
            assert holding.wait(30)
            with pytest.raises(ringipc.Timeout) as ei:
                c.send_many(2, msgs, timeout=0.2)
            sent = ei.value.sent
            assert 0 < sent < len(msgs)
            hold.set()
            assert c.send_many(2, msgs[sent:], timeout=60) == len(msgs) - sent
            # answered after every message before it was dispatched
            assert c.request(3, timeout=60) == b"1000"
    assert seen == list(range(len(msgs)))


def test_send_many_errors(url, mode, serve):
    got = []
    done = threading.Event()
    srv = ringipc.Server(url, max_message=1024)

    @srv.handler(2)
    def sink(msg):
        got.append(msg.bytes())

    @srv.handler(3)
    def end(msg):
        done.set()

    with serve(srv):
        with ringipc.Client(url) as c:
            with pytest.raises(ringipc.MessageTooLarge) as ei:
                c.send_many(2, [b"x", b"y" * 1025, b"z"])
            assert ei.value.sent == 0  # one call: refused before anything went
            with pytest.raises(ringipc.MessageTooLarge) as ei:
                c.send_many(2, [b"w" * 100, b"y" * 70000, b"z"])
            assert ei.value.sent == 1  # over 64 KiB in all: a call per part
            with pytest.raises(ringipc.InvalidArgument):
                c.send_many(0xF000, [b"x"])
            with pytest.raises(TypeError):
                c.send_many(2, [object()])  # no codec turns it into bytes
            c.send(3)
            assert done.wait(30)
    assert got == [b"w" * 100]


def test_send_many_dead_master(url, mode):
    with killed_master(url) as c:
        t0 = time.monotonic()
        with pytest.raises(ringipc.PeerGone) as ei:
            for _ in range(10000):  # a ring's worth may still be taken
                c.send_many(1, [b"x" * 100] * 64, timeout=30)
        assert time.monotonic() - t0 < 20
        assert 0 <= ei.value.sent < 64


def test_raw_handler(url, mode, serve):
    """handler(type, raw=True): the payload as bytes; a request's reply is
    what it returns; an exception is reported and answered with an error."""
    got = []
    errors = []
    srv = ringipc.Server(url, on_error=lambda e, m: errors.append(e))

    @srv.handler(2, raw=True)
    def sink(data):
        got.append(data)

    @srv.handler(3, raw=True)
    def upper(data):
        if data == b"boom":
            raise ValueError("boom")
        return data.upper()

    with serve(srv):
        with ringipc.Client(url) as c:
            msgs = [payload(i, 8 + i % 50) for i in range(500)] + [b""]
            assert c.send_many(2, msgs, timeout=30) == len(msgs)
            assert c.request(3, b"hello", timeout=30) == b"HELLO"
            assert c.request(3, b"", timeout=30) == b""
            with pytest.raises(ringipc.RemoteError) as ei:
                c.request(3, b"boom", timeout=30)
            assert "boom" in str(ei.value)
            # back to an ordinary handler
            srv.set_handler(2, lambda m: got.append(("msg", m.bytes())))
            c.send(2, b"x")
            assert c.request(3, b"end", timeout=30) == b"END"
    assert got == msgs + [("msg", b"x")]
    assert len(errors) == 1 and isinstance(errors[0], ValueError)
