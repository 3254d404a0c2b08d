# SPDX-License-Identifier: MIT
# Workers in processes of their own: many at once, one killed, the examples,
# Ctrl-C on a serving master.
import errno
import multiprocessing
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time

import pytest

import ringipc

fork = multiprocessing.get_context("fork")
HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(HERE, "..", "..", "examples", "python")


def _idle_worker(url, go):
    with ringipc.Client(url, name="doomed") as c:
        assert c.request(1, b"ready", timeout=10) == b"ok"
        go.wait(60)  # killed meanwhile


def test_killed_worker_on_left(url, mode, serve):
    asked, left = threading.Event(), threading.Event()
    gone = []
    srv = ringipc.Server(url, lambda m: (asked.set(), b"ok")[1],
                         on_left=lambda p: (gone.append(p), left.set()))
    with serve(srv):
        go = fork.Event()
        p = fork.Process(target=_idle_worker, args=(url, go))
        p.start()
        assert asked.wait(30)  # connected and served; then it dies
        os.kill(p.pid, signal.SIGKILL)
        p.join()
        assert left.wait(30)
        assert srv.peer_count == 0
    (peer,) = gone
    assert peer.name == "doomed" and peer.pid == p.pid
    assert peer.left_reason == -errno.EPIPE and peer.left_text


def _busy_worker(url, k, n, out):
    try:
        with ringipc.Client(url, name="w%d" % k) as c:
            for i in range(n):
                body = {"k": k, "i": i}
                if c.request_json(1, body, timeout=30) != {"k": k, "i": i, "pid": os.getpid()}:
                    raise AssertionError("bad reply")
                c.send(2, b"%d:%d" % (k, i), timeout=30)
        out.put((k, None))
    except BaseException as e:
        out.put((k, repr(e)))


@pytest.mark.parametrize("threads", [1, 2])
def test_many_worker_processes(url, mode, serve, threads):
    nproc, n = 8, 200
    seen = {}
    lock = threading.Lock()
    srv = ringipc.Server(url)

    @srv.handler(1)
    def answer(msg):
        d = msg.json()
        d["pid"] = msg.peer.pid
        return d

    @srv.handler(2)
    def note(msg):
        k, i = map(int, bytes(msg.data).split(b":"))
        with lock:
            seen.setdefault(k, []).append(i)

    with serve(srv, threads):
        out = fork.Queue()
        procs = [fork.Process(target=_busy_worker, args=(url, k, n, out)) for k in range(nproc)]
        for p in procs:
            p.start()
        results = dict(out.get(timeout=120) for _ in procs)
        for p in procs:
            p.join(60)
    assert results == {k: None for k in range(nproc)}
    # Each worker's one-way messages in its order (its ring is read by one thread).
    assert seen == {k: list(range(n)) for k in range(nproc)}
    assert all(p.exitcode == 0 for p in procs)


def _run(args, **kw):
    return subprocess.run([sys.executable] + args, capture_output=True, text=True, timeout=300,
                          **kw)


def test_example_pi():
    r = _run([os.path.join(EXAMPLES, "pi.py")])
    assert r.returncode == 0, r.stderr
    assert re.search(r"pi = 3\.14159262176 \(10 workers", r.stdout), r.stdout


def test_example_uppercase():
    r = _run([os.path.join(EXAMPLES, "uppercase.py")])
    assert r.returncode == 0, r.stderr
    for line in ("hello world -> HELLO WORLD", "ringipc -> RINGIPC", "left: goodbye"):
        assert line in r.stdout, r.stdout


def _wait_output(p, text, timeout=30):
    """What p has printed, read until `text` appears in it (or fail after
    timeout seconds, rather than block on a master that never says it)."""
    out = b""
    deadline = time.monotonic() + timeout
    while text.encode() not in out:
        left = deadline - time.monotonic()
        ready, _, _ = select.select([p.stdout], [], [], max(left, 0))
        assert ready, "no %r in %r within %s s" % (text, out, timeout)
        chunk = os.read(p.stdout.fileno(), 4096)
        assert chunk, "no %r in %r before the end" % (text, out)
        out += chunk
    return out.decode()


def test_example_uppercase_serve_ask_and_ctrl_c(url):
    """The master serving in its main thread stops on SIGINT (Ctrl-C)."""
    p = subprocess.Popen([sys.executable, os.path.join(EXAMPLES, "uppercase.py"), "serve", url],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    try:
        _wait_output(p, "serving on")
        r = _run([os.path.join(EXAMPLES, "uppercase.py"), "ask", url, "abc", "x y"])
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines() == ["abc -> ABC", "x y -> X Y"]
        # Its goodbye handled (else close would end it), then Ctrl-C.
        out = _wait_output(p, "left: goodbye")
        assert "joined" in out
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
