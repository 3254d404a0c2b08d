# SPDX-License-Identifier: MIT
# Server batch handlers (@srv.handler(type, batch=True), over
# ripc_server_handle_batch) in both transports: content and order of a
# stream with a single-handler type and requests between the runs,
# max_batch, a request's reply, switching kinds at run time.
import struct
import threading

import ringipc

INLINE = 4096


def payload(i, n):
    return struct.pack("<Q", i) + bytes((i * 7 + k) & 0xFF for k in range(n - 8))


def test_batch_handler_stream_in_order(url, mode, serve):
    n = 20000
    sizes = [8, 9, 64, 100, INLINE - 1, INLINE + 1, 70000]
    want = [payload(i, sizes[i % 97] if i % 97 < len(sizes) else 8 + i % 50) for i in range(n)]
    seen = []
    calls = []
    bad = []
    done = threading.Event()
    srv = ringipc.Server(url, max_inline=INLINE)

    @srv.handler(2, batch=True, max_batch=64)
    def run(datas):
        calls.append(len(datas))
        for d in datas:
            if d != want[len(seen)]:
                bad.append(len(seen))
            seen.append(struct.unpack_from("<Q", d)[0])
        if len(seen) == n:
            done.set()
        if seen and len(seen) % 1000 == 999:  # a request, answered by its return value
            return b"r%d" % len(seen)

    @srv.handler(3, raw=True)
    def mark(data):  # between the runs: in order with them
        i = struct.unpack_from("<Q", data)[0]
        if i != len(seen):
            bad.append(("mark", i, len(seen)))

    with serve(srv):
        with ringipc.Client(url, max_inline=INLINE) as c:
            assert c.transport == mode
            i = 0
            while i < n:
                if i % 1000 == 998:
                    assert c.request(2, want[i], timeout=30) == b"r%d" % (i + 1)
                    i += 1
                    continue
                k = min(50, n - i, 998 - i % 1000 if i % 1000 < 998 else 50)
                assert c.send_many(2, want[i:i + k], timeout=30) == k
                c.send(3, struct.pack("<Q", i + k))
                i += k
            assert done.wait(120)
    assert not bad, bad[:5]
    assert seen == list(range(n))
    assert max(calls) <= 64
    assert len(calls) < n  # runs, not one call per message


def test_batch_handler_switch_kinds(url, mode, serve):
    got = {"batch": [], "single": []}
    srv = ringipc.Server(url)

    def as_batch(datas):
        got["batch"].extend(datas)

    def as_single(msg):
        got["single"].append(msg.bytes())

    srv.set_handler(2, as_batch, batch=True)

    @srv.handler(9)
    def switch(msg):
        how = msg.bytes()
        if how == b"s":
            srv.set_handler(2, as_single)
        elif how == b"b":
            srv.set_handler(2, as_batch, batch=True)
        else:
            srv.set_handler(2, None)
        return b"ok"

    with serve(srv):
        with ringipc.Client(url) as c:
            for k, how in enumerate([b"b", b"s", b"b", b"0"]):
                assert c.request(9, how, timeout=10) == b"ok"
                if how == b"0":
                    break
                assert c.send_many(2, [b"%d-%d" % (k, j) for j in range(300)], timeout=10) == 300
            try:
                c.request(2, b"x", timeout=10)
                raise AssertionError("a request without a handler was answered")
            except ringipc.Error as e:
                assert "no handler" in str(e)
    assert got["batch"] == [b"%d-%d" % (k, j) for k in (0, 2) for j in range(300)]
    assert got["single"] == [b"1-%d" % j for j in range(300)]
