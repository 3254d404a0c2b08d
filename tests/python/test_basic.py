# SPDX-License-Identifier: MIT
# Request/reply, one-way streams, codecs, sends from the master, stats: in
# both transports.
import json
import struct
import threading

import pytest

import ringipc


def upper_server(url, **kw):
    srv = ringipc.Server(url, **kw)

    @srv.handler(1)
    def upper(msg):
        assert msg.is_request and msg.type == 1
        return bytes(msg.data).upper()

    @srv.handler(2)
    def echo(msg):
        return msg.data  # the library's memory, replied from without a copy

    return srv


@pytest.mark.parametrize("size", [0, 1, 64, 4096, 65536, 3 << 20])
def test_request_reply_content(url, mode, serve, size):
    with serve(upper_server(url)):
        with ringipc.Client(url, name="py-test") as c:
            assert c.transport == mode
            payload = bytes((97 + i % 26) for i in range(size))
            for _ in range(3):
                assert c.request(1, payload, timeout=10) == payload.upper()
                assert c.request(2, payload, timeout=10) == payload


def test_request_kinds_of_data(url, mode, serve):
    with serve(upper_server(url)):
        with ringipc.Client(url) as c:
            assert c.request(1, "text", timeout=5) == b"TEXT"
            assert c.request(1, bytearray(b"ba"), timeout=5) == b"BA"
            assert c.request(1, memoryview(b"xmvx")[1:3], timeout=5) == b"MV"
            assert c.request(1, timeout=5) == b""
            import array

            doubles = array.array("d", [1.5, -2.0])
            assert c.request(1, doubles, timeout=5) == doubles.tobytes().upper()
            assert c.request(1, memoryview(bytearray(b"ab")), timeout=5) == b"AB"


def test_oneway_stream_in_order(url, mode, serve):
    n = 20000
    seen = []
    done = threading.Event()
    srv = ringipc.Server(url)

    @srv.handler(2)
    def got(msg):
        seen.append(struct.unpack("<Q", msg.data)[0])
        if len(seen) == n:
            done.set()

    with serve(srv):
        with ringipc.Client(url) as c:
            for i in range(n):
                c.send(2, struct.pack("<Q", i), timeout=10)
            assert done.wait(60)
    assert seen == list(range(n))


def test_json(url, mode, serve):
    got = []
    srv = ringipc.Server(url)

    @srv.handler(3)
    def add(msg):
        d = msg.json()
        if msg.is_request:
            return {"sum": d["a"] + d["b"], "echo": d}
        got.append(d)

    with serve(srv):
        with ringipc.Client(url) as c:
            c.send_json(3, {"a": 1, "b": [1, "x"]})
            body = {"a": 2, "b": 40, "text": "h\u00e9llo"}
            assert c.request_json(3, body, timeout=5) == {"sum": 42, "echo": body}
    assert got == [{"a": 1, "b": [1, "x"]}]


def test_custom_codec(url, mode, serve):
    point = ringipc.Codecs()
    point.register(7, encode=lambda p: struct.pack("<dd", *p),
                   decode=lambda b: struct.unpack("<dd", b))
    point.register_json(8)
    got = []
    srv = ringipc.Server(url, codecs=point)

    @srv.handler(7)
    def mirror(msg):
        x, y = msg.value
        if not msg.is_request:
            got.append((x, y))
            return None
        return (y, x)

    @srv.handler(8)
    def keys(msg):
        return sorted(msg.value)

    with serve(srv):
        with ringipc.Client(url, codecs=point) as c:
            c.send(7, (0.5, 1.5))
            assert c.request(7, (1.0, 2.0), timeout=5) == (2.0, 1.0)
            assert c.request(8, {"b": 1, "a": 2}, timeout=5) == ["a", "b"]
    assert got == [(0.5, 1.5)]
    with pytest.raises(ValueError):
        point.register(0xF000, json.dumps, json.loads)


def test_single_callback(url, mode, serve):
    seen = []

    def callback(msg):
        seen.append((msg.type, msg.kind, bytes(msg.data)))
        if msg.is_request:
            return b"re:" + bytes(msg.data)

    with serve(ringipc.Server(url, callback)):
        with ringipc.Client(url) as c:
            c.send(5, b"a")
            assert c.request(6, b"b", timeout=5) == b"re:b"
            assert c.request(1000, b"c", timeout=5) == b"re:c"
    assert seen == [(5, ringipc.ONEWAY, b"a"), (6, ringipc.REQUEST, b"b"),
                    (1000, ringipc.REQUEST, b"c")]


def test_explicit_reply_and_per_type_over_callback(url, mode, serve):
    srv = ringipc.Server(url, lambda m: b"fallback")

    @srv.handler(4)
    def early(msg):
        msg.reply(b"early")
        return b"ignored"

    with serve(srv):
        with ringipc.Client(url) as c:
            assert c.request(4, b"", timeout=5) == b"early"
            assert c.request(9, b"", timeout=5) == b"fallback"


def test_master_sends_and_broadcasts(url, mode, serve):
    joined = threading.Event()
    peers = []
    srv = ringipc.Server(url, on_joined=lambda p: (peers.append(p), joined.set()))

    @srv.handler(1)
    def hello(msg):
        # Answer, then push two messages to the worker that asked.
        srv.send(msg.peer_id, 10, b"pushed")
        srv.send_json(msg.peer, 11, {"k": "v"})
        return b"ok"

    with serve(srv):
        with ringipc.Client(url, name="listener") as c:
            assert joined.wait(10)
            assert peers[0].name == "listener" and peers[0].id == c.id
            assert peers[0].transport == mode
            assert c.request(1, b"hi", timeout=5) == b"ok"
            m = c.recv(timeout=5)
            assert (m.type, m.data, m.kind) == (10, b"pushed", ringipc.ONEWAY)
            assert c.recv(timeout=5).json() == {"k": "v"}
            batch = [(13, b"b%d" % i) for i in range(100)] + [(14, {"last": True})]
            assert srv.send_batch(c.id, batch, timeout=5) == 101
            for i in range(100):
                assert c.recv(timeout=5).data == b"b%d" % i
            assert c.recv(timeout=5).json() == {"last": True}
            assert srv.send_batch(c.id, [], timeout=5) == 0
            assert srv.broadcast(12, b"all", timeout=5) == 1
            assert c.recv(timeout=5).data == b"all"
            with pytest.raises(ringipc.Timeout):
                c.recv(timeout=0)
            with pytest.raises(ringipc.NoSuchPeer):
                srv.send(c.id + 1000, 10, b"nobody")


def test_stats(url, mode, serve):
    srv = upper_server(url)
    with serve(srv):
        with ringipc.Client(url) as c:
            for _ in range(5):
                c.request(1, b"abc", timeout=5)
            st = c.stats()
            assert st["msgs_out"][ringipc.REQUEST] == 5
            assert st["msgs_in"][ringipc.REPLY] == 5
            assert st["bytes_out"][ringipc.REQUEST] == 15
            ps = srv.peer_stats(c.id)
            assert ps["msgs_in"][ringipc.REQUEST] == 5
            assert ps["transport"] == (1 if mode == "shm" else 2)
            s = srv.stats()
            assert s["peers_now"] == 1 and s["peers_total"] == 1
            assert srv.peer_count == 1
    assert isinstance(s["opened_ns"], int)


def test_url_and_version(url):
    with ringipc.Server(url) as srv:
        assert srv.url.startswith("unix:")
    assert ringipc.library_version.count(".") == 2


def test_handler_data_ends_with_the_call(url, mode, serve):
    kept = []
    srv = ringipc.Server(url)

    @srv.handler(1)
    def keep(msg):
        assert msg.size == 5 and msg.bytes() == b"hello" and msg.data == b"hello"
        assert msg.data.readonly
        kept.append(msg)
        return msg.value

    with serve(srv):
        with ringipc.Client(url) as c:
            assert c.request(1, b"hello", timeout=5) == b"hello"
    with pytest.raises(ValueError):  # released: the library's memory is not ours now
        bytes(kept[0].data)
