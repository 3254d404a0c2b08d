#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The classic first socket program, on ringipc: a service that translates
text to upper case.

    uppercase.py serve <url>           master: serve until Ctrl-C
    uppercase.py ask <url> <text>...   worker: one request per argument
    uppercase.py                       both: a worker process, served until it leaves
"""

import multiprocessing
import os
import sys

import ringipc

UPPER = 1  # our one message type


def open_server(url):
    srv = ringipc.Server(url)

    @srv.handler(UPPER)
    def upper(msg):
        return msg.bytes().upper()  # a request's handler returns its reply

    srv.on_joined = lambda peer: print("worker %d (%s) joined" % (peer.id, peer.name), flush=True)
    srv.on_left = lambda peer: print("worker %d left: %s" % (peer.id, peer.left_text), flush=True)
    return srv


def ask(url, texts):
    with ringipc.Client(url, name="uppercase-ask") as c:
        for text in texts:
            print("%s -> %s" % (text, c.request(UPPER, text, timeout=5).decode()), flush=True)


def serve(url):
    with open_server(url) as srv:
        print("serving on %s (Ctrl-C stops)" % url, flush=True)
        srv.run()


def demo():
    url = "unix:/tmp/uppercase-py-%d.sock" % os.getpid()
    with open_server(url) as srv:
        gone = []
        on_left = srv.on_left
        srv.on_left = lambda peer: (on_left(peer), gone.append(peer))
        worker = multiprocessing.Process(
            target=ask, args=(url, ["hello world", "shared memory is fast", "ringipc"]))
        worker.start()
        # Serve until the worker has left (or, dead without a word, for a
        # second after it exited).
        after = 0
        while not gone and after < 10:
            srv.poll(0.1)
            if not worker.is_alive():
                after += 1
        worker.join()
    return worker.exitcode


def main(argv):
    if len(argv) == 1:
        return demo()
    if len(argv) == 3 and argv[1] == "serve":
        return serve(argv[2])
    if len(argv) >= 4 and argv[1] == "ask":
        return ask(argv[2], argv[3:])
    sys.exit("usage: uppercase.py [serve <url> | ask <url> <text>...]")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
