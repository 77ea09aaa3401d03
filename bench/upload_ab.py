#!/usr/bin/python3
"""Upload A/B: fordelerd builds against each other, one upload at a time, with the CPU of each
build's io threads.

Where sftp_throughput.py compares fordelerd with OpenSSH, this compares two (or more) fordelerd
builds: each is started once, and the same file is uploaded to them in turn with OpenSSH's
`sftp`, builds alternating, `--rounds` times. For every upload it takes the wall time and the
CPU of the daemon's threads from /proc/PID/task/*/stat before and after: the io threads (the
main thread and `sftp-io-*`) apart from the rest (workers a build may add). Probe builds that
move work between threads are judged by both: which is cheaper, and which is faster.
"""

import argparse
import hashlib
import os
import shutil
import statistics
import sys

import routing_common as rc

st = rc.st


def thread_cpu(pid):
    """{tid: (name, CPU seconds)} of a process's threads."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                data = f.read()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        name = data[data.index("(") + 1:data.rindex(")")]
        fields = data[data.rindex(")") + 2:].split()
        out[int(tid)] = (name, (int(fields[11]) + int(fields[12])) / st.CLK_TCK)
    return out


def cpu_split(pid, before, after):
    """(io threads, all threads) CPU seconds spent between two thread_cpu() samples."""
    io = total = 0.0
    for tid, (name, cpu) in after.items():
        spent = cpu - before.get(tid, (name, 0.0))[1]
        total += spent
        if tid == pid or name.startswith("sftp-io"):
            io += spent
    return io, total


def span(values, fmt):
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}–" \
           f"{fmt.format(max(values))})"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fordelerd", action="append", required=True,
                    help="a build to compare (give it twice or more); NAME=PATH names it")
    ap.add_argument("--rounds", type=int, default=8, help="uploads per build (default 8)")
    ap.add_argument("--size", type=st.parse_size, default=2**30, help="file size (1GiB)")
    ap.add_argument("--cipher", default="aes128-gcm@openssh.com", help="(%(default)s)")
    ap.add_argument("--workdir", default="/var/tmp", help="where the bench directory is made")
    ap.add_argument("--output", help="also write the results as a markdown snippet here")
    ap.add_argument("--keep", action="store_true", help="keep the bench directory")
    args = ap.parse_args()
    if len(args.fordelerd) < 2 or args.rounds < 1:
        sys.exit("give --fordelerd at least twice, and --rounds at least 1")
    builds = []
    for spec in args.fordelerd:
        name, _, path = spec.rpartition("=")
        path = os.path.abspath(path)
        builds.append((name or os.path.basename(path), path))
    sftp_bin = shutil.which("sftp")
    if not sftp_bin:
        sys.exit("sftp not found")

    rc.install_signal_handlers()
    started = rc.now_text()
    load_start, cpu_start = st.loadavg(), st.cpu_counters()
    base = rc.bench_dir(args.workdir)
    daemons = []
    results = {name: ([], [], []) for name, _ in builds}  # MB/s, io CPU, all CPU per GiB
    try:
        key = rc.client_key(base)
        src = f"{base}/source.bin"
        want = hashlib.sha256()
        with open(src, "wb") as f:
            for left in range(args.size, 0, -(1 << 20)):
                chunk = os.urandom(min(left, 1 << 20))
                want.update(chunk)
                f.write(chunk)
        client = st.Client(sftp_bin, key, f"{base}/client")
        for i, (name, path) in enumerate(builds):
            d = st.Fordeler(path, f"{base}/fordeler{i}", key + ".pub")
            d.label = name
            daemons.append(d)
            d.start()
        timeout = max(60.0, args.size / 10e6)
        gib = args.size / 2**30
        for rnd in range(args.rounds):
            order = daemons if rnd % 2 == 0 else daemons[::-1]  # A/B, then B/A
            for d in order:
                if os.path.exists(d.local_path()):
                    os.unlink(d.local_path())
                os.sync()
                before_log = d.count("disconnect")
                before = thread_cpu(d.pid)
                elapsed, _, _ = client.session(d, [f"put {src} {d.remote_path()}"], args.cipher,
                                               timeout)
                d.wait_idle(15, before_log)
                io, total = cpu_split(d.pid, before, thread_cpu(d.pid))
                if st.sha256_file(d.local_path()) != want.hexdigest():
                    raise rc.BenchError(f"{d.label}: the uploaded file differs from the source")
                mbs = args.size / elapsed / 1e6
                for values, v in zip(results[d.label], (mbs, io / gib, total / gib)):
                    values.append(v)
                rc.log(f"{d.label:12} {elapsed:6.2f} s {mbs:6.0f} MB/s  io threads "
                       f"{io / gib:5.2f}  all {total / gib:5.2f} CPU s/GiB")
    finally:
        for d in daemons:
            d.stop()
        rc.remove_bench_dir(base, args.keep)

    lines = [f"Run {started}; {st.human_size(args.size)} uploads with OpenSSH `sftp`, "
             f"{args.cipher}, {args.rounds} per build, builds alternating; median (min–max).", "",
             "| build | MB/s | io threads CPU s/GiB | fordelerd CPU s/GiB |", "|---|---|---|---|"]
    for name, _ in builds:
        mbs, io, total = results[name]
        lines.append(f"| {name} | {span(mbs, '{:.0f}')} | {span(io, '{:.2f}')} | "
                     f"{span(total, '{:.2f}')} |")
    lines += ["", rc.load_footer(load_start, cpu_start)]
    machine = rc.machine_lines(builds[0][1], args.workdir)
    rc.publish("upload_ab.py", machine, "\n".join(lines), args.output)
    return 0


if __name__ == "__main__":
    rc.main_entry(main)
