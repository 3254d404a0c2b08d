# SPDX-License-Identifier: MIT
# Fixtures of the Python tests: a fresh URL per test, both transports, a
# server dispatching on a thread of its own.
import contextlib
import itertools
import multiprocessing
import os
import signal
import threading

import pytest

import ringipc

_n = itertools.count()


@pytest.fixture
def url():
    path = "/tmp/ripc-py-%d-%d.sock" % (os.getpid(), next(_n))
    yield "unix:" + path
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


@pytest.fixture(params=["shm", "socket"])
def mode(request, monkeypatch):
    """Each test that takes it runs in both transports, chosen the way a user
    would force socket mode: RIPC_TRANSPORT in the environment."""
    monkeypatch.setenv("RIPC_TRANSPORT", request.param)
    return request.param


@contextlib.contextmanager
def serving(srv, threads=1):
    """srv.run(threads) on a thread; stopped, joined and closed on exit."""
    box = []

    def run():
        try:
            srv.run(threads)
        except BaseException as e:  # seen by the test below
            box.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.stop()
        t.join(30)
        assert not t.is_alive(), "run() did not return after stop()"
        srv.close()
    if box:
        raise box[0]


@pytest.fixture
def serve():
    return serving


@contextlib.contextmanager
def killed_master(url):
    """A client of a master (a forked child) that answered one request and
    was then killed with SIGKILL."""
    fork = multiprocessing.get_context("fork")
    ready = fork.Event()
    p = fork.Process(target=pong_master, args=(url, ready))
    p.start()
    try:
        assert ready.wait(30)
        with ringipc.Client(url) as c:
            assert c.request(1, b"ping", timeout=10) == b"pong"
            os.kill(p.pid, signal.SIGKILL)
            p.join(30)
            yield c
    finally:
        if p.is_alive():
            p.kill()
        p.join()


def pong_master(url, ready):
    """A master in a forked child: every request is answered b"pong"."""
    srv = ringipc.Server(url, lambda m: b"pong")
    ready.set()
    srv.run()
