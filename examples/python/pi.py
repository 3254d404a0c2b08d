#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Pi by ten worker processes, the way the seeds compute it through every IPC
mechanism:

    pi^2 / 8 = sum over k >= 0 of 1 / (2k + 1)^2

Each worker sums its slice of k in [0, n) and sends the partial sum to the
master as one JSON message; the master adds them up and prints
sqrt(8 * total). For n = 10,000,000 that is 3.14159262176.

    pi.py [workers=10] [n=10000000]
"""

import math
import multiprocessing
import os
import sys

import ringipc

PART = 1  # message type: one worker's partial sum


def worker(url, lo, hi):
    part = math.fsum(1.0 / ((2 * k + 1) * (2 * k + 1)) for k in range(lo, hi))
    with ringipc.Client(url, name="pi-worker") as c:
        c.send_json(PART, part)  # the goodbye after it loses nothing


def main():
    nworkers = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000_000
    url = "unix:/tmp/ringipc-pi-py-%d.sock" % os.getpid()
    parts = []
    with ringipc.Server(url) as srv:
        srv.set_handler(PART, lambda msg: parts.append(msg.json()))
        procs = [multiprocessing.Process(target=worker,
                                         args=(url, n * i // nworkers, n * (i + 1) // nworkers))
                 for i in range(nworkers)]
        for p in procs:
            p.start()
        # Dispatch until every partial sum is in, or every worker is gone.
        while len(parts) < nworkers and any(p.is_alive() for p in procs):
            srv.poll(0.1)
        srv.poll(0.1)  # the last messages may still be in the rings
        for p in procs:
            p.join()
    if len(parts) < nworkers or any(p.exitcode for p in procs):
        sys.exit("pi: %d of %d partial sums arrived" % (len(parts), nworkers))
    print("pi = %.11f (%d workers, n = %d)" % (math.sqrt(8 * math.fsum(parts)), nworkers, n))


if __name__ == "__main__":
    main()
