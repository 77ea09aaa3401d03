#!/usr/bin/python3
"""Routing latency: trigger file closed -> <name>.metadata visible in the recipient's /IN.

One fordelerd on 127.0.0.1 with one sender and one recipient; one long-lived paramiko SFTP session
uploads a data file, then its trigger (with <Sha256>, so the digest is checked), and the clock
starts when the trigger's CLOSE returns. The metadata file's arrival is seen on disk
(<storage root>/accounts/<recipient>/IN/<name>.metadata) through inotify (IN_MOVED_TO: the
daemon renames it in), or with --watch stat by os.stat in a tight loop. The next transfer starts
only once the previous one is finished in the audit database (step done), so each is measured
alone. Upload time is excluded. See bench/README.md.

This is a benchmark run by hand, not a test: it asserts nothing about timing.
"""

import argparse
import hashlib
import os
import statistics
import time

import routing_common as rc

import paramiko

RECIPIENT = "recipient"
SENDER = "sender"


def connect(port, key, timeout=30):
    t = paramiko.Transport(("127.0.0.1", port))
    t.banner_timeout = timeout
    t.auth_timeout = timeout
    t.start_client(timeout=timeout)
    t.auth_publickey(SENDER, paramiko.Ed25519Key.from_private_key_file(key))
    sftp = paramiko.SFTPClient.from_transport(t)
    sftp.get_channel().settimeout(timeout)
    return t, sftp


class Source:
    """The bytes of one size class: in memory for small files, a file on disk for large."""

    def __init__(self, size, path):
        self.size = size
        if size <= 64 << 20:
            self.data = os.urandom(size)
            self.sha = hashlib.sha256(self.data).hexdigest()
            self.path = None
        else:
            self.data = None
            self.path = path
            h = hashlib.sha256()
            with open(path, "wb") as f:
                left = size
                while left:
                    chunk = os.urandom(min(left, 1 << 20))
                    h.update(chunk)
                    f.write(chunk)
                    left -= len(chunk)
            self.sha = h.hexdigest()

    def upload(self, sftp, remote):
        f = sftp.open(remote, "wb")
        try:
            if self.data is not None:
                f.write(self.data)
            else:
                f.set_pipelined(True)
                with open(self.path, "rb") as src:
                    while chunk := src.read(1 << 20):
                        f.write(chunk)
        finally:
            f.close()


def transfer(d, sftp, ino, src, name, watch, timeout, sync_data=False):
    """One data file + trigger; returns (ms from CLOSE sent, ms from CLOSE returned, upload s)."""
    t_up = time.monotonic()
    src.upload(sftp, f"OUT/{name}")
    if sync_data:  # diagnostic: as if the server had fsynced the data at its CLOSE
        fd = os.open(f"{d.out_dir(SENDER)}/{name}", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    up_s = time.monotonic() - t_up
    xml = rc.trigger_xml(name, src.size, SENDER, [RECIPIENT], sha256=src.sha)
    meta = f"{name}.metadata"
    meta_path = f"{d.in_dir(RECIPIENT)}/{meta}"
    tf = sftp.open(f"OUT/{name}.trigger", "wb")
    tf.write(xml)
    tf.flush()  # the WRITE has been answered: only CLOSE remains
    t_send = time.perf_counter_ns()
    tf.close()
    t_closed = time.perf_counter_ns()
    deadline = time.monotonic() + timeout
    seen = None
    if watch == "inotify":
        while seen is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise rc.BenchError(f"{meta} did not appear within {timeout}s")
            for t, _d, n in ino.read(min(left, 1.0)):
                if n == meta:
                    seen = t
                    break
    else:
        while True:
            try:
                os.stat(meta_path)
                seen = time.perf_counter_ns()
                break
            except FileNotFoundError:
                if time.monotonic() > deadline:
                    raise rc.BenchError(f"{meta} did not appear within {timeout}s")
    return (seen - t_send) / 1e6, (seen - t_closed) / 1e6, up_s


def summary(values):
    v = sorted(values)
    return {"n": len(v), "p50": rc.pct(v, 50), "p90": rc.pct(v, 90), "p99": rc.pct(v, 99),
            "max": v[-1], "mean": statistics.fmean(v)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fordelerd", help="daemon binary (default: $FORDELERD, "
                    "/tmp/build-bench2/daemon/fordelerd, build/daemon/fordelerd)")
    ap.add_argument("--count", type=int, default=200, help="small transfers measured (200)")
    ap.add_argument("--small", type=st_size, default=1024, help="small file size (1KiB)")
    ap.add_argument("--warmup", type=int, default=10, help="small transfers not counted (10)")
    ap.add_argument("--large-count", type=int, default=5, help="large transfers measured (5)")
    ap.add_argument("--large", type=st_size, default=2**30, help="large file size (1GiB)")
    ap.add_argument("--watch", choices=("inotify", "stat"), default="inotify",
                    help="how the metadata's arrival is seen (default inotify)")
    ap.add_argument("--sync-data", action="store_true",
                    help="diagnostic: fsync the uploaded data file (on disk, by path) before the "
                         "trigger, as if the server fsynced uploads at CLOSE; counted in the "
                         "upload time")
    ap.add_argument("--fsync-count", type=int, default=2000,
                    help="write+fsync probes for the raw fsync rate (2000; 0 = skip the probe)")
    ap.add_argument("--workdir", default="/var/lib",
                    help="parent of the bench directory (default /var/lib)")
    ap.add_argument("--output", help="also write the results as a markdown snippet")
    ap.add_argument("--keep", action="store_true",
                    help="keep the bench directory (a failed run always keeps it)")
    args = ap.parse_args()
    if args.fsync_count < 0:
        ap.error("--fsync-count: 0 (skip the raw fsync probe) or more")
    fordelerd = rc.default_fordelerd(args.fordelerd)
    rc.install_signal_handlers()

    started = rc.now_text()
    load_start, cpu_start = rc.st.loadavg(), rc.st.cpu_counters()
    base = rc.bench_dir(args.workdir)
    d = None
    results = {}
    raw_fsync = None  # (f1, dfs); None when --fsync-count 0 skipped the probe
    try:
        st_ = os.statvfs(base)
        need = (args.large_count + 2) * args.large + (256 << 20) if args.large_count else 1 << 28
        if st_.f_bavail * st_.f_frsize < need:
            raise rc.BenchError(f"{base}: need {need >> 20} MiB free")
        machine = rc.machine_lines(fordelerd, base)
        if args.fsync_count > 0:
            rc.log(f"raw fsync rate on {base} ({args.fsync_count} × pwrite 4 KiB + fsync)")
            f1 = rc.fsync_rate(base, args.fsync_count, 1)
            dfs = rc.dir_fsync_rate(base, max(200, args.fsync_count // 2))
            rc.log(f"fsync: {f1[0]:.0f}/s, median {f1[1]:.3f} ms, p99 {f1[2]:.3f} ms; durable "
                   f"file write+rename+dir fsync: {dfs[0]:.0f}/s, median {dfs[1]:.3f} ms")
            raw_fsync = (f1, dfs)
        else:
            rc.log("raw fsync probe skipped (--fsync-count 0)")

        key = rc.client_key(base)
        d = rc.Daemon(fordelerd, f"{base}/fordeler", key + ".pub", {SENDER: [RECIPIENT]})
        d.start()
        rc.log(f"fordelerd pid {d.pid} on 127.0.0.1:{d.port}; bench dir {base}")
        # Both jails exist once the daemon is ready; log in once as the recipient to be sure.
        rc.wait_for(lambda: os.path.isdir(d.in_dir(RECIPIENT)), 10, "recipient's IN folder")
        ino = rc.Inotify()
        ino.watch(d.in_dir(RECIPIENT))
        t, sftp = connect(d.port, key)
        done = 0

        def one(src, name):
            nonlocal done
            r = transfer(d, sftp, ino, src, name, args.watch, timeout=60,
                         sync_data=args.sync_data)
            done += 1
            rc.wait_for(lambda: d.count_done() >= done, 60, f"transfer {name} to finish",
                        d.proc, interval=0.002)
            return r

        small = rc_source(args.small, None)
        for i in range(args.warmup):
            one(small, f"warmup_{i:04d}.csv")
        lat_sent, lat_closed = [], []
        for i in range(args.count):
            small = rc_source(args.small, None)  # fresh bytes, fresh digest each time
            a, b, _ = one(small, f"small_{i:05d}.csv")
            lat_sent.append(a)
            lat_closed.append(b)
            if (i + 1) % 50 == 0:
                rc.log(f"{i + 1}/{args.count} small: p50 {statistics.median(lat_closed):.2f} ms")
        results["small"] = (args.small, summary(lat_closed), summary(lat_sent), [])
        if args.large_count:
            rc.log(f"writing {args.large} random bytes for the large transfers")
            large = rc_source(args.large, f"{base}/large.bin")
            lc, ls, ups = [], [], []
            for i in range(args.large_count):
                a, b, up = one(large, f"large_{i:02d}.bin")
                ls.append(a)
                lc.append(b)
                ups.append(up)
                rc.log(f"large {i + 1}/{args.large_count}: upload {up:.1f} s, "
                       f"routing {b:.2f} ms")
            results["large"] = (args.large, summary(lc), summary(ls), ups)
        # Every transfer delivered, with the digest the trigger named.
        bad = d.query("SELECT count(*) FROM transfers WHERE state != 'delivered'")[0][0]
        if bad:
            raise rc.BenchError(f"{bad} transfers not delivered (see {d.db})")
        sftp.close()
        t.close()
        ino.close()
    finally:
        if d is not None:
            d.stop()
        rc.remove_bench_dir(base, args.keep)

    note = " Each data file fsynced before its trigger (--sync-data)." if args.sync_data else ""
    lines = [f"Run {started}; latency from the trigger's CLOSE reply to `<name>.metadata` "
             f"appearing in the recipient's /IN ({args.watch}), ms; each transfer alone "
             f"(the next starts when the previous is done).{note}", "",
             "| file size | transfers | p50 | p90 | p99 | max | mean | p50 / p99 from CLOSE sent "
             "| target |", "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for label, (size, s, s2, ups) in results.items():
        ok50, ok99 = s["p50"] <= 2.0, s["p99"] <= 10.0
        lines.append(f"| {rc.st.human_size(size)} | {s['n']} | {s['p50']:.2f} | {s['p90']:.2f} | "
                     f"{s['p99']:.2f} | {s['max']:.2f} | {s['mean']:.2f} | "
                     f"{s2['p50']:.2f} / {s2['p99']:.2f} | p50 ≤ 2 {'met' if ok50 else 'NOT met'}, "
                     f"p99 ≤ 10 {'met' if ok99 else 'NOT met'} |")
    if "large" in results and results["large"][3]:
        ups = results["large"][3]
        lines += ["", f"Large uploads (excluded from the latency): median "
                  f"{statistics.median(ups):.1f} s ({args.large / statistics.median(ups) / 1e6:.0f}"
                  f" MB/s, paramiko)."]
    if raw_fsync:
        f1, dfs = raw_fsync
        lines += ["", f"Raw fsync on the same filesystem, same run: {f1[0]:.0f} pwrite(4 KiB)+"
                  f"fsync/s (median {f1[1]:.3f} ms, p99 {f1[2]:.3f} ms); durable small-file write "
                  f"(write, fsync, rename, fsync dir): {dfs[0]:.0f}/s (median {dfs[1]:.3f} ms)."]
    else:
        lines += ["", "Raw fsync: skipped (--fsync-count 0)."]
    lines += ["", rc.load_footer(load_start, cpu_start)]
    table = "\n".join(lines)
    rc.publish("routing_latency.py", machine, table, args.output)
    return 0


def st_size(text):
    return rc.st.parse_size(text)


def rc_source(size, path):
    return Source(size, path)


if __name__ == "__main__":
    rc.main_entry(main)
