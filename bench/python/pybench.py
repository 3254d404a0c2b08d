# SPDX-License-Identifier: MIT
"""pybench: ringipc from Python beside multiprocessing.Pipe, multiprocessing.Queue,
a unix socket and pyzmq, every row in the same invocation.

Round trip: the client sends SIZE bytes and waits for them back (p50 .. max).
One-way: the client sends SIZE-byte messages for --time ms, then asks the
server for its counters; messages/s over the time until that answer. The
send_many rows send them 64 to a call (Client.send_many) to a batch handler
(one call into Python per run of messages), the others one. Each
row's server is a forked child pinned to one CPU, the client (this process)
to another; repetitions are interleaved and the table gives medians, and the
median over repetitions of each row's ratio to multiprocessing.Pipe's in the
same repetition. Then what the ctypes layer costs per call, measured here.

  python3 bench/python/pybench.py [--size 64,64k] [--repeat 3] [--time 100]
          [--only TEXT] [--json FILE] [--no-cost]

ringipc rows need the package (PYTHONPATH=python) and the library
(RINGIPC_LIBRARY=build-release/libringipc.so); without them they say
"skipped" and why, as the pyzmq row does without python3-zmq.
"""
import argparse
import json
import multiprocessing
import os
import platform
import select
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ctcost  # noqa: E402
import rows  # noqa: E402
from rows import TAG_ONE, TAG_REQ, TAG_STAT, cpu_ns, runq_ns, stat_of  # noqa: E402

MIN_ROUND_TRIPS = 50


def parse_size(s):
    s = s.strip().lower()
    mult = {"k": 1024, "m": 1024 * 1024}.get(s[-1:], 1)
    return int(s[:-1] if mult > 1 else s) * mult


def size_label(n):
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return "%dM" % (n >> 20)
    if n >= 1024 and n % 1024 == 0:
        return "%dK" % (n >> 10)
    return str(n)


def messages(tag, size):
    """16 messages of `size` bytes: the tag, a sequence number mod 16, filler."""
    return [bytes((tag, i)) + b"x" * (size - 2) for i in range(16)]


def pick_cpus():
    cpus = sorted(os.sched_getaffinity(0))
    return cpus[0], cpus[1] if len(cpus) > 1 else cpus[0]


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


class RowFailed(Exception):
    pass


def server_child(row, cpu, wfd):
    os.sched_setaffinity(0, {cpu})

    def ready():
        os.write(wfd, b"r")
        os.close(wfd)

    row.serve(ready)


def round_trip(row, size, budget_ns):
    msgs = messages(TAG_REQ, size)
    stat = messages(TAG_STAT, 2)[0]
    request = row.request
    clock = time.perf_counter_ns
    lat = []
    # CPU and run-queue figures span from before the first counters to after
    # the second, the window the server's figures cover too
    span0, c0, q0 = clock(), cpu_ns(), runq_ns()
    s0 = stat_of(request(stat))
    start = clock()
    end = start + budget_ns
    i = 0
    while True:
        m = msgs[i & 15]
        t0 = clock()
        r = request(m)
        t1 = clock()
        lat.append(t1 - t0)
        if len(r) != size or r[1] != (i & 15):
            raise RowFailed("round trip %d: reply of %d bytes, seq %d" % (i, len(r), r[1]))
        i += 1
        if t1 >= end and i >= MIN_ROUND_TRIPS:
            break
    s1 = stat_of(request(stat))
    c1, q1, span = cpu_ns(), runq_ns(), clock() - span0
    lat.sort()
    n = len(lat)

    def pct(p):
        return lat[min(n - 1, int(p * n))] / 1e3

    return {
        "n": n,
        "p50": pct(0.50),
        "p90": pct(0.90),
        "p99": pct(0.99),
        "p99.9": pct(0.999),
        "max": lat[-1] / 1e3,
        "cpu_cli": 100.0 * (c1 - c0) / span,
        "cpu_srv": 100.0 * (s1[3] - s0[3]) / span,
        "runq": 100.0 * max(q1 - q0, s1[4] - s0[4]) / span,
    }


def one_way(row, size, budget_ns):
    msgs = messages(TAG_ONE, size)
    stat = messages(TAG_STAT, 2)[0]
    send = row.send
    clock = time.perf_counter_ns
    span0, c0, q0 = clock(), cpu_ns(), runq_ns()
    s0 = stat_of(row.request(stat))
    start = clock()
    end = start + budget_ns
    sent = 0
    batch = getattr(row, "batch", 0)
    if batch:  # rows that send a list of messages per call
        many, send_many = msgs * (batch // 16), row.send_many
        while True:
            send_many(many)
            sent += len(many)
            if clock() >= end:
                break
    else:
        while True:
            for m in msgs:
                send(m)
            sent += 16
            if clock() >= end:
                break
    loop = clock() - start
    s1 = stat_of(row.request(stat))
    wall = clock() - start
    c1, q1, span = cpu_ns(), runq_ns(), clock() - span0
    got, nbytes, bad = s1[0] - s0[0], s1[1] - s0[1], s1[2] - s0[2]
    if got != sent or nbytes != sent * size or bad:
        raise RowFailed("one-way: sent %d, server counted %d (%d bytes), %d out of order"
                        % (sent, got, nbytes, bad))
    return {
        "n": sent,
        "msgs": sent * 1e9 / wall,
        "mbs": sent * size * 1e3 / wall,
        "send_ns": loop / sent,
        "cpu_cli": 100.0 * (c1 - c0) / span,
        "cpu_srv": 100.0 * (s1[3] - s0[3]) / span,
        "runq": 100.0 * max(q1 - q0, s1[4] - s0[4]) / span,
        # messages per second of the busier side's CPU time: the rate if that
        # side had a CPU to itself (a spinning side burns CPU while it waits,
        # so for spinning rows a lower bound)
        "cpu_rate": sent * 1e9 / max(c1 - c0, s1[3] - s0[3], 1),
    }


def run_row(row, sizes, budget_ns, cpus):
    """One repetition of one row: {(metric, size): result}."""
    ctx = multiprocessing.get_context("fork")
    row.prepare()
    rfd, wfd = os.pipe()
    p = ctx.Process(target=server_child, args=(row, cpus[0], wfd), daemon=True)
    p.start()
    os.close(wfd)
    row.after_fork_parent()
    out = {}
    try:
        if not select.select([rfd], [], [], 30)[0] or os.read(rfd, 1) != b"r":
            raise RowFailed("server did not start (exit code %s)" % p.exitcode)
        row.connect(None)
        for size in sizes:
            out[("rt", size)] = round_trip(row, size, budget_ns)
            out[("ow", size)] = one_way(row, size, budget_ns)
        row.quit()
        row.close()
        p.join(5)
    finally:
        os.close(rfd)
        if p.is_alive():
            p.kill()
            p.join()
    return out


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def fmt(x):
    if x != x:
        return "-"
    if x >= 1000:
        return "%.0f" % x
    if x >= 100:
        return "%.1f" % x
    if x >= 10:
        return "%.1f" % x
    return "%.2f" % x


def summarise(results, rowlist, sizes, reps):
    """Medians per (row, metric, size) and the median of per-repetition ratios
    against the first row (multiprocessing.Pipe)."""
    base = rowlist[0].name
    summary = {}
    for row in rowlist:
        for metric in ("rt", "ow"):
            for size in sizes:
                runs = [results[r][row.name][(metric, size)] for r in range(reps)
                        if isinstance(results[r].get(row.name), dict)]
                if not runs:
                    continue
                agg = {k: median([x[k] for x in runs]) for k in runs[0]}
                ratios = []
                for r in range(reps):
                    mine = results[r].get(row.name)
                    theirs = results[r].get(base)
                    if isinstance(mine, dict) and isinstance(theirs, dict):
                        a, b = mine[(metric, size)], theirs[(metric, size)]
                        # round trip: how many times faster (Pipe p50 / ours);
                        # one-way: msgs/s over Pipe's. Above 1 is better.
                        ratios.append(b["p50"] / a["p50"] if metric == "rt" else a["msgs"] / b["msgs"])
                agg["ratio"] = median(ratios)
                agg["reps"] = runs
                summary[(row.name, metric, size)] = agg
    return summary


def print_tables(summary, rowlist, sizes, skipped, failed, head):
    print(head)
    print()
    print("Round trip (microseconds): the client sends SIZE bytes, the server echoes them")
    print("%-24s %5s %8s %8s %8s %8s %8s %8s %7s %7s %5s"
          % ("row", "size", "p50", "p90", "p99", "p99.9", "max", "vs Pipe", "cpu cli", "cpu srv",
             "runq"))
    for size in sizes:
        for row in rowlist:
            name = row.name
            if name in skipped or name in failed:
                why = skipped.get(name) or failed.get(name)
                print("%-24s %5s   %s: %s" % (name, size_label(size),
                                              "skipped" if name in skipped else "FAILED", why))
                continue
            a = summary[(name, "rt", size)]
            print("%-24s %5s %8s %8s %8s %8s %8s %7.1fx %6.0f%% %6.0f%% %4.0f%%"
                  % (name, size_label(size), fmt(a["p50"]), fmt(a["p90"]), fmt(a["p99"]),
                     fmt(a["p99.9"]), fmt(a["max"]), a["ratio"], a["cpu_cli"], a["cpu_srv"],
                     a["runq"]))
        print()
    print("One-way: the client sends SIZE-byte messages, the server reads every byte")
    print("%-24s %5s %10s %9s %8s %8s %7s %7s %5s %10s"
          % ("row", "size", "msgs/s", "MB/s", "vs Pipe", "send us", "cpu snd", "cpu rcv", "runq",
             "per cpu-s"))
    for size in sizes:
        for row in rowlist:
            name = row.name
            if name in skipped or name in failed:
                continue
            a = summary[(name, "ow", size)]
            print("%-24s %5s %10.0f %9.1f %7.2fx %8.2f %6.0f%% %6.0f%% %4.0f%% %10.0f"
                  % (name, size_label(size), a["msgs"], a["mbs"], a["ratio"], a["send_ns"] / 1e3,
                     a["cpu_cli"], a["cpu_srv"], a["runq"], a["cpu_rate"]))
        print()


def print_vs(summary, results, rowlist, sizes, other):
    """One-way msgs/s of the ringipc rows over `other`'s, the median of the
    ratios within each repetition (both rows ran in the same one)."""
    if not any(k[0] == other for k in summary):
        return
    print()
    print("One-way msgs/s over %s's, paired within each repetition (median):" % other)
    for size in sizes:
        for row in rowlist:
            if row.kind != "ringipc" or (row.name, "ow", size) not in summary:
                continue
            ratios = [rep[row.name][("ow", size)]["msgs"] / rep[other][("ow", size)]["msgs"]
                      for rep in results
                      if isinstance(rep.get(row.name), dict) and isinstance(rep.get(other), dict)]
            print("  %-26s %5s %6.2fx  (%s)" % (row.name, size_label(size), median(ratios),
                                                ", ".join("%.2f" % r for r in ratios)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="64,64k", help="message sizes (default 64,64k)")
    ap.add_argument("--repeat", type=int, default=3, help="repetitions, interleaved (3)")
    ap.add_argument("--time", type=int, default=100, help="ms per measurement (100)")
    ap.add_argument("--only", default="", help="rows whose name contains TEXT (comma: any of several; the Pipe row always)")
    ap.add_argument("--json", help="write every result to FILE")
    ap.add_argument("--no-cost", action="store_true", help="skip the ctypes cost figures")
    args = ap.parse_args()
    sizes = [parse_size(s) for s in args.size.split(",")]
    if min(sizes) < 2:
        ap.error("sizes start at 2 bytes (a tag and a sequence number)")
    budget_ns = args.time * 1000000
    cpus = pick_cpus()
    os.sched_setaffinity(0, {cpus[1]})
    rowlist = rows.all_rows()
    if args.only:
        want = args.only.split(",")
        rowlist = [r for r in rowlist if r is rowlist[0] or any(w in r.name for w in want)]
    skipped = {}
    for row in rowlist:
        why = row.available()
        if not why and cpus[0] == cpus[1] and row.name.endswith("spin"):
            why = "one CPU: a spinning server would only burn its peer's time"
        if why:
            skipped[row.name] = why
    failed = {}
    results = []
    t_start = time.monotonic()
    load = os.getloadavg()[0]
    for r in range(args.repeat):
        rep = {}
        for row in rowlist:
            if row.name in skipped or row.name in failed:
                continue
            try:
                rep[row.name] = run_row(row, sizes, budget_ns, cpus)
            except (RowFailed, OSError) as e:
                failed[row.name] = "repetition %d: %s" % (r + 1, e)
        results.append(rep)
    if rowlist[0].name in failed:
        print("pybench: the reference row failed: %s" % failed[rowlist[0].name], file=sys.stderr)
        return 1
    summary = summarise(results, rowlist, sizes, args.repeat)
    head = ("pybench: %s; Python %s (%s); server on CPU %d, client on CPU %d; "
            "%d repetitions (interleaved), %d ms a run, %.1f s; load average %.1f at start, %.1f at end"
            % (cpu_model(), platform.python_version(), sys.executable, cpus[0], cpus[1],
               args.repeat, args.time, time.monotonic() - t_start, load, os.getloadavg()[0]))
    print_tables(summary, rowlist, sizes, skipped, failed, head)
    print("vs Pipe: round trip, multiprocessing.Pipe's p50 over the row's (above 1 is faster);")
    print("one-way, msgs/s over Pipe's; medians over repetitions of the ratio in each. send us:")
    print("the client's time per send() call. cpu: user+sys of each process over the run.")
    print("runq: the longer of the two sides' waits for a CPU while runnable, in % of the run")
    print("(Linux schedstat): above a few %, other processes took the CPUs and the row is suspect.")
    print("per cpu-s: messages per second of CPU time of the busier side, the rate it would")
    print("reach with a CPU to itself (a lower bound for spinning rows, which burn CPU waiting).")
    print_vs(summary, results, rowlist, sizes, "pyzmq PAIR ipc://")
    cost = None
    if not args.no_cost:
        print()
        cost = ctcost.report(summary, sizes)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({
                "head": head,
                "skipped": skipped,
                "failed": failed,
                "results": [{"row": k[0], "metric": k[1], "size": k[2],
                             **{kk: vv for kk, vv in v.items()}} for k, v in summary.items()],
                "cost": cost,
            }, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
