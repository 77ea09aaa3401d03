#!/usr/bin/python3
"""Where a running daemon's threads wait: samples every thread's kernel stack
(/proc/PID/task/TID/stack, root only) every few milliseconds and prints, per thread group (the
thread name without its trailing number), the share of samples in each state: RUNNING, or the
innermost kernel functions of the sleep (scheduler frames left out).

    sudo /usr/bin/python3 bench/stack_sample.py $(pgrep -x fordelerd) 5

Run it while a benchmark loads the daemon (docs/performance.md, "Back on the faster host").
"""

from __future__ import annotations

import argparse
import collections
import os
import time

SKIP = ("__schedule", "schedule", "entry_SYSCALL", "do_syscall", "x64_sys", "__x64")


def sample(pid: int, seconds: float, interval: float, match: str, depth: int):
    counts: collections.Counter = collections.Counter()
    totals: collections.Counter = collections.Counter()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for tid in os.listdir(f"/proc/{pid}/task"):
            base = f"/proc/{pid}/task/{tid}"
            try:
                with open(f"{base}/comm") as f:
                    comm = f.read().strip()
                if match not in comm:
                    continue
                with open(f"{base}/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
                with open(f"{base}/stack") as f:
                    stack = f.read().splitlines()
            except OSError:  # the thread ended meanwhile
                continue
            group = comm.rstrip("0123456789-")
            totals[group] += 1
            if state == "R":
                key = "RUNNING"
            else:
                frames = [line.split(" ", 1)[1].split("+")[0] for line in stack if " " in line]
                key = " < ".join([f for f in frames if not f.startswith(SKIP)][:depth])
            counts[(group, key)] += 1
        time.sleep(interval)
    return counts, totals


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pid", type=int)
    ap.add_argument("seconds", type=float, nargs="?", default=5.0)
    ap.add_argument("--interval", type=float, default=0.003, help="seconds between samples")
    ap.add_argument("--match", default="", help="only threads whose name contains this")
    ap.add_argument("--depth", type=int, default=6, help="kernel frames shown per stack")
    ap.add_argument("--top", type=int, default=40)
    args = ap.parse_args()
    counts, totals = sample(args.pid, args.seconds, args.interval, args.match, args.depth)
    for (group, key), n in counts.most_common(args.top):
        print(f"{group:14} {100 * n / totals[group]:5.1f}% {key}")


if __name__ == "__main__":
    main()
