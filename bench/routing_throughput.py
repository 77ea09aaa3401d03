#!/usr/bin/python3
"""Routing throughput: routed transfers per second with concurrent senders, against the raw rate
of the same uploads to a stock OpenSSH sshd (internal-sftp, chrooted user) in the same run.

N senders (one SFTP connection each: threads of bench/sender.cc's fordeler_bench_sender, or with
--client asyncssh Python coroutines in --procs processes) each send small data files and their
triggers as fast as they can for a fixed duration; each sender has one route to
one of the recipients. fordelerd routes them (durable: every step is recorded in the SQLite audit
log, synchronous=FULL, and files are fsynced before they are renamed in); the OpenSSH side
receives the same two files per transfer and does nothing else. A separate, shorter run under
`strace -f -y -T -e trace=fsync,fdatasync` counts the fsyncs per transfer, by what they sync.
Run as root; see bench/README.md.

This is a benchmark run by hand, not a test: it asserts nothing about timing.
"""

import argparse
import asyncio
import collections
import ctypes
import multiprocessing
import os
import re
import resource
import statistics
import subprocess
import sys
import time

import routing_common as rc


# ---------------------------------------------------------------------------------------------
# The client: one asyncio loop per process, one SFTP connection per sender

async def _sender(port, user, key, cipher, folder, tag, sender, recipient, data, sha, deadline):
    import asyncssh
    async with asyncssh.connect("127.0.0.1", port, username=user, client_keys=[key],
                                known_hosts=None, encryption_algs=[cipher], config=[],
                                agent_path=None, connect_timeout=30) as conn:
        async with conn.start_sftp_client() as sftp:
            n = 0
            t_first = time.monotonic()
            while time.monotonic() < deadline:
                name = f"{tag}{sender}_{n:07d}.csv"
                async with sftp.open(f"{folder}/{name}", "wb") as f:
                    await f.write(data)
                xml = rc.trigger_xml(name, len(data), sender, [recipient], sha256=sha)
                async with sftp.open(f"{folder}/{name}.trigger", "wb") as f:
                    await f.write(xml)
                n += 1
            return n, time.monotonic() - t_first


def _client_proc(jobs, conf, start_at, q):
    """jobs: [(user, folder, tag, sender, recipient)]. Puts (count, cpu seconds, error)."""
    try:
        import warnings
        warnings.filterwarnings("ignore")
        data = os.urandom(conf["size"])
        sha = rc.sha256_bytes(data)
        now = time.time()
        if start_at > now:
            time.sleep(start_at - now)
        deadline = time.monotonic() + conf["duration"]

        async def all_():
            return await asyncio.wait_for(asyncio.gather(*[
                _sender(conf["port"], u, conf["key"], conf["cipher"], fo, tg, s, r, data, sha,
                        deadline) for (u, fo, tg, s, r) in jobs]),
                conf["duration"] + 60)

        res = asyncio.run(all_())
        ru = resource.getrusage(resource.RUSAGE_SELF)
        q.put((sum(n for n, _ in res), ru.ru_utime + ru.ru_stime, None))
    except BaseException as e:  # noqa: BLE001  (reported to the parent)
        q.put((0, 0.0, f"{type(e).__name__}: {e}"))


def run_native_clients(sender_bin, port, key, cipher, jobs, size, duration):
    """The senders as threads of one fordeler_bench_sender process (bench/sender.cc)."""
    import tempfile
    data = os.urandom(size)
    with tempfile.NamedTemporaryFile(prefix="bench-data-") as f:
        f.write(data)
        f.flush()
        start_at = time.time() + 1.0  # the senders log in meanwhile
        argv = rc.bench_sender_argv(sender_bin, port, key, cipher, f.name, rc.sha256_bytes(data),
                                    duration, start_at, jobs)
        r = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 120)
    fields = r.stdout.split()
    if r.returncode != 0 or len(fields) != 2:
        raise rc.BenchError(f"client {sender_bin} (exit {r.returncode}): {r.stderr.strip()}")
    return int(fields[0]), duration, float(fields[1]), start_at


def run_clients(port, key, cipher, jobs, size, duration, procs, sender_bin=None):
    """Runs the senders (fordeler_bench_sender, else asyncssh in `procs` processes); returns
    (transfers sent, wall seconds, client CPU seconds, start time)."""
    if sender_bin:
        return run_native_clients(sender_bin, port, key, cipher, jobs, size, duration)
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    conf = {"port": port, "key": key, "cipher": cipher, "size": size, "duration": duration}
    start_at = time.time() + 1.0  # all processes start their clocks together
    ps = []
    for k in range(procs):
        p = ctx.Process(target=_client_proc, args=(jobs[k::procs], conf, start_at, q))
        p.start()
        ps.append(p)
    out = []
    try:
        for _ in ps:
            out.append(q.get(timeout=duration + 120))
    finally:
        for p in ps:
            p.join(10)
            if p.is_alive():
                p.kill()
                p.join(5)
    errors = [e for _, _, e in out if e]
    if errors:
        raise rc.BenchError("client: " + "; ".join(errors))
    return sum(n for n, _, _ in out), duration, sum(c for _, c, _ in out), start_at


# ---------------------------------------------------------------------------------------------

def fordeler_run(d, key, args, senders, tag, perf_out=None):
    jobs = [(f"s{i}", "OUT", tag, f"s{i}", f"r{i % args.recipients}") for i in senders]
    done0 = d.count_done()
    cpu0 = d.cpu_seconds()
    samples = []
    stop = [False]

    import threading

    def sampler():
        while not stop[0]:
            try:
                samples.append((time.time(), d.count_done()))
            except Exception:  # noqa: BLE001
                pass
            time.sleep(0.25)

    th = threading.Thread(target=sampler, daemon=True)
    th.start()
    perf = None
    if perf_out:  # the profile covers the middle of the run
        perf = subprocess.Popen(["perf", "record", "-F", "999", "-g", "-p", str(d.pid), "-o",
                                 perf_out, "--", "sleep", str(max(1.0, args.duration - 4))],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        sent, dur, ccpu, t0 = run_clients(d.port, key, args.cipher, jobs, args.size, args.duration,
                                          args.procs, args.sender_bin)
        t_end_window = t0 + dur
        rc.wait_for(lambda: d.count_done() - done0 >= sent, args.drain_timeout,
                    f"fordelerd to finish {sent} transfers", d.proc, interval=0.05)
        t_all = time.time()
        # A rejection costs less than a delivery: a rate counting rejections would flatter.
        rejected = d.query("SELECT count(*) FROM transfers WHERE state != 'delivered'")[0][0]
        if rejected:
            raise rc.BenchError(f"{rejected} transfers not delivered (see the audit log)")
    finally:
        stop[0] = True
        th.join(2)
        if perf is not None:
            try:
                perf.wait(60)
            except subprocess.TimeoutExpired:
                perf.kill()
                perf.wait(5)
    cpu = d.cpu_seconds() - cpu0
    # Finished inside the senders' window (interpolated from the 0.25 s samples).
    in_window = done_at(samples, t_end_window) - done_at(samples, t0)
    return {"sent": sent, "dur": dur, "client_cpu": ccpu, "server_cpu": cpu,
            "in_window": max(in_window, 0), "drain": t_all - t_end_window,
            "sustained": sent / (t_all - t0)}


def done_at(samples, t):
    prev = None
    for ts, n in samples:
        if ts >= t:
            if prev is None:
                return n
            pt, pn = prev
            return pn + (n - pn) * (t - pt) / max(ts - pt, 1e-9)
        prev = (ts, n)
    return samples[-1][1] if samples else 0


def openssh_run(oss, key, args, senders, tag):
    jobs = [(oss.user, "upload", tag, f"s{i}", f"r{i % args.recipients}") for i in senders]
    cpu0 = oss.cpu_seconds()
    sent, dur, ccpu, _ = run_clients(oss.port, key, args.cipher, jobs, args.size, args.duration,
                                     args.procs, args.sender_bin)
    oss.wait_idle(30)
    cpu = oss.cpu_seconds() - cpu0
    # Clean the chroot between runs (outside the measurement).
    up = f"{oss.chroot}/upload"
    for n in os.listdir(up):
        os.unlink(f"{up}/{n}")
    return {"sent": sent, "dur": dur, "client_cpu": ccpu, "server_cpu": cpu}


# "PID fsync(FD</path>) = 0 <0.000123>", or split in two when another thread's call comes between:
# "PID fsync(FD</path> <unfinished ...>" ... "PID <... fsync resumed>) = 0 <0.000123>".
FSYNC_RE = re.compile(r"^(\d+)\s+(fsync|fdatasync)\((\d+)<([^>]*)>\)\s+=\s+(-?\d+).*<([\d.]+)>")
UNFINISHED_RE = re.compile(r"^(\d+)\s+(fsync|fdatasync)\((\d+)<([^>]*)>\s+<unfinished \.\.\.>")
RESUMED_RE = re.compile(r"^(\d+)\s+<\.\.\. (fsync|fdatasync) resumed>.*=\s+(-?\d+).*<([\d.]+)>")


def classify(path, root):
    p = path[len(root):] if path.startswith(root) else path
    if p.endswith("audit.db-wal"):
        return "SQLite WAL (commit)"
    if p.endswith("audit.db"):
        return "SQLite database (checkpoint)"
    if p.endswith("audit.db-shm"):
        return "SQLite shm"
    if re.fullmatch(r"/state/spool", p):
        return "dir spool/"
    if re.fullmatch(r"/state/staging", p):
        return "dir staging/"
    if re.fullmatch(r"/state/accounts/[^/]+/OUT", p):
        return "dir OUT/ (sender)"
    if re.fullmatch(r"/state/accounts/r\d+/IN", p):
        return "dir IN/ (recipient)"
    if re.fullmatch(r"/state/accounts/s\d+/IN", p):
        return "dir IN/ (sender: receipt)"
    if p.startswith("/state/staging/") and p.endswith(".metadata"):
        return "file metadata (staging)"
    if p.startswith("/state/staging/") and p.endswith(".receipt"):
        return "file receipt (staging)"
    if p.startswith("/state/spool/"):
        return "file spool/ (data)"
    return "other: " + p


def strace_run(d, key, args, senders, tag, trace):
    """The daemon restarted under strace; returns per-class (count, total seconds) and sent."""
    d.stop()
    d.start(prefix=["strace", "-f", "--seccomp-bpf", "-y", "-T", "-qq", "-e", "trace=fsync,fdatasync",
                    "-o", trace])
    rc.log(f"fordelerd under strace (pid {d.pid}); {args.strace_duration} s of senders")
    time.sleep(1.0)
    done0 = d.count_done()
    with open(trace) as f:
        skip = sum(1 for _ in f)
    jobs = [(f"s{i}", "OUT", tag, f"s{i}", f"r{i % args.recipients}") for i in senders]
    sent, dur, _, t0 = run_clients(d.port, key, args.cipher, jobs, args.size,
                                   args.strace_duration, args.procs, args.sender_bin)
    rc.wait_for(lambda: d.count_done() - done0 >= sent, args.drain_timeout, "traced transfers to finish",
                d.proc, interval=0.1)
    elapsed = time.time() - t0
    time.sleep(0.5)
    d.stop()
    per = collections.defaultdict(lambda: [0, 0.0])
    pending = {}
    with open(trace, errors="replace") as f:
        for i, line in enumerate(f):
            m = UNFINISHED_RE.match(line)
            if m:
                pending[m.group(1)] = m.group(4)
                continue
            m = RESUMED_RE.match(line)
            if m:
                path, secs = pending.pop(m.group(1), "?"), float(m.group(4))
            else:
                m = FSYNC_RE.match(line)
                if not m:
                    continue
                path, secs = m.group(4), float(m.group(6))
            if i < skip:
                continue
            cls = classify(path, d.root)
            per[cls][0] += 1
            per[cls][1] += secs
    return per, sent, elapsed


def profile_summary(perf_data):
    out = []
    for sort, n in (("comm", 8), ("dso", 10), ("sym", 30)):
        r = rc.run(["perf", "report", "-i", perf_data, "--stdio", "--no-children", "-g", "none",
                    "--sort", sort, "--percent-limit", "0.5"], check=False, timeout=300)
        rows = [ln.rstrip() for ln in r.stdout.splitlines() if ln.strip() and
                not ln.startswith("#")][:n]
        out += [f"-- by {sort}:"] + rows
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fordelerd", help="daemon binary (default: $FORDELERD, "
                    "/tmp/build-bench2/daemon/fordelerd, build/daemon/fordelerd)")
    ap.add_argument("--senders", type=int, default=8, help="concurrent senders (8)")
    ap.add_argument("--recipients", type=int, default=2, help="recipients (2); sender i's route "
                    "goes to recipient i mod N")
    ap.add_argument("--size", type=rc.st.parse_size, default=4096, help="data file size (4KiB)")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds per run (20)")
    ap.add_argument("--repeat", type=int, default=2,
                    help="runs per server, alternating (2: fordeler, OpenSSH, OpenSSH, fordeler)")
    ap.add_argument("--procs", type=int, default=1, help="client processes (1)")
    ap.add_argument("--client", default="native",
                    help="the senders: 'native' (fordeler_bench_sender, built beside fordelerd: "
                         "BUILD/bench/), 'asyncssh' (Python, one asyncio loop per --procs "
                         "process; the client of the runs before 7 December 2026, 20:00), or "
                         "the path of a fordeler_bench_sender (native)")
    ap.add_argument("--cipher", default="aes128-gcm@openssh.com", help="(aes128-gcm@openssh.com)")
    ap.add_argument("--strace-duration", type=float, default=5.0,
                    help="seconds of the fsync-counting run under strace (5; 0 = skip)")
    ap.add_argument("--fsync-count", type=int, default=2000,
                    help="raw fsync probes (2000; 0 = skip the raw fsync probe)")
    ap.add_argument("--sshd", default="/usr/sbin/sshd")
    ap.add_argument("--user", default="fordeler-bench",
                    help="system user for the chrooted OpenSSH side (created if missing)")
    ap.add_argument("--workdir", default="/var/lib",
                    help="parent of the bench directory; root-owned, not group/world-writable "
                         "(sshd's ChrootDirectory rule) (default /var/lib)")
    ap.add_argument("--output", help="also write the results as a markdown snippet")
    ap.add_argument("--keep", action="store_true",
                    help="keep the bench directory (a failed run always keeps it)")
    ap.add_argument("--drain-timeout", type=float, default=300,
                    help="bound on the wait for fordelerd to finish what was sent (300 s)")
    ap.add_argument("--fordeler-only", action="store_true",
                    help="no OpenSSH side (e.g. comparing fordelerd builds or settings)")
    ap.add_argument("--perf", action="store_true",
                    help="profile fordelerd (perf record -g) during its first run")
    ap.add_argument("--set", action="append", default=[], metavar="TABLE.KEY=VALUE",
                    help="a setting for fordelerd's configuration, e.g. server.threads=4 or "
                         "delivery.workers=32 (VALUE as written in TOML)")
    ap.add_argument("--env", action="append", default=[],
                    help="NAME=VALUE for fordelerd's environment (a modified build's knobs)")
    args = ap.parse_args()
    if args.fsync_count < 0:
        ap.error("--fsync-count: 0 (skip the raw fsync probe) or more")
    if os.geteuid() != 0 and not args.fordeler_only:
        sys.exit("run as root: the OpenSSH side needs sshd's chroot and a system user")
    fordelerd = rc.default_fordelerd(args.fordelerd)
    args.sender_bin = None if args.client == "asyncssh" else rc.bench_sender(
        fordelerd, None if args.client == "native" else args.client)
    rc.install_signal_handlers()
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER (sshd CPU)

    started = rc.now_text()
    load_start, cpu_start = rc.st.loadavg(), rc.st.cpu_counters()
    if not args.fordeler_only:
        rc.st.ensure_user(args.user)
    base = rc.bench_dir(args.workdir)
    d = oss = None
    senders = list(range(args.senders))
    fd_runs, os_runs = [], []
    per = None
    perf_report = None
    raw_fsync = None  # (f1, f4, f8, dfs); None when --fsync-count 0 skipped the probe
    try:
        machine = rc.machine_lines(fordelerd, base)
        if args.fsync_count > 0:
            rc.log(f"raw fsync rate on {base}")
            f1 = rc.fsync_rate(base, args.fsync_count, 1)
            f4 = rc.fsync_rate(base, args.fsync_count, 4)
            f8 = rc.fsync_rate(base, args.fsync_count, 8)
            dfs = rc.dir_fsync_rate(base, max(200, args.fsync_count // 2))
            rc.log(f"fsync/s: 1 thread {f1[0]:.0f} (median {f1[1]:.3f} ms), 4 threads "
                   f"{f4[0]:.0f}, 8 threads {f8[0]:.0f}; durable write+rename+dir fsync "
                   f"{dfs[0]:.0f}/s")
            raw_fsync = (f1, f4, f8, dfs)
        else:
            rc.log("raw fsync probe skipped (--fsync-count 0)")
        key = rc.client_key(base)
        routes = {f"s{i}": [f"r{i % args.recipients}"] for i in senders}
        env = dict(e.split("=", 1) for e in args.env)
        d = rc.Daemon(fordelerd, f"{base}/fordeler", key + ".pub", routes,
                      settings=rc.parse_settings(args.set))
        d.start(env=env)
        if not args.fordeler_only:
            oss = rc.st.OpenSSH(args.sshd, f"{base}/openssh", key + ".pub", args.user)
            oss.start()
            rc.st.OpenSSH.known_children = {d.proc.pid, oss.pid}
            rc.log(f"sshd pid {oss.pid} on 127.0.0.1:{oss.port}")
        rc.log(f"fordelerd pid {d.pid} on 127.0.0.1:{d.port}; bench dir {base}")
        order = []
        for rep in range(args.repeat):
            order += [("fordeler", "openssh")] if rep % 2 == 0 else [("openssh", "fordeler")]
        for rep, pair in enumerate(order):
            for which in pair:
                if which == "openssh" and args.fordeler_only:
                    continue
                tag = f"run{rep}_"
                os.sync()
                if which == "fordeler":
                    perf_out = f"{base}/perf.data" if args.perf and not fd_runs else None
                    r = fordeler_run(d, key, args, senders, tag, perf_out)
                    if perf_out:
                        perf_report = profile_summary(perf_out)
                    fd_runs.append(r)
                    rc.log(f"fordeler: {r['sent']} sent in {r['dur']:.0f} s "
                           f"({r['sent'] / r['dur']:.0f}/s), {r['in_window'] / r['dur']:.0f}/s "
                           f"routed in the window, all routed {r['drain']:.1f} s after; "
                           f"sustained {r['sustained']:.0f}/s; fordelerd CPU "
                           f"{r['server_cpu']:.1f} s, client CPU {r['client_cpu']:.1f} s")
                else:
                    r = openssh_run(oss, key, args, senders, tag)
                    os_runs.append(r)
                    rc.log(f"OpenSSH: {r['sent']} sent in {r['dur']:.0f} s "
                           f"({r['sent'] / r['dur']:.0f}/s); sshd CPU {r['server_cpu']:.1f} s, "
                           f"client CPU {r['client_cpu']:.1f} s")
        bad = d.query("SELECT count(*) FROM transfers WHERE state != 'delivered'")[0][0]
        if bad:
            raise rc.BenchError(f"{bad} transfers not delivered (see {d.db})")
        if args.strace_duration > 0:
            per, s_sent, s_elapsed = strace_run(d, key, args, senders, "strace_",
                                                f"{base}/fsync.strace")
    finally:
        for s in (oss, d):
            if s is not None:
                try:
                    s.stop()
                except Exception as e:  # noqa: BLE001
                    rc.log(f"stopping: {e}")
        rc.remove_bench_dir(base, args.keep)

    def med(runs, f):
        return statistics.median(f(r) for r in runs)

    rate_sent = med(fd_runs, lambda r: r["sent"] / r["dur"])
    rate_win = med(fd_runs, lambda r: r["in_window"] / r["dur"])
    rate_sus = med(fd_runs, lambda r: r["sustained"])
    rate_os = med(os_runs, lambda r: r["sent"] / r["dur"]) if os_runs else float("nan")
    client = ("fordeler_bench_sender, libssh, one thread each" if args.sender_bin else
              f"asyncssh, {args.procs} client process(es)")
    lines = [f"Run {started}; {args.senders} senders ({client}, {args.cipher}), "
             f"{rc.st.human_size(args.size)} data file + trigger per transfer, "
             f"{args.duration:.0f} s per run, {args.repeat} runs per server alternating; "
             f"median of the runs (all runs in brackets).", "",
             "| | transfers/s | runs | server CPU s per 1,000 | client CPU s per 1,000 |",
             "|---|---:|---|---:|---:|"]

    def runs_text(runs, f):
        return ", ".join(f"{f(r):.0f}" for r in runs)

    lines.append(f"| fordeler: pairs uploaded | {rate_sent:.0f} | "
                 f"{runs_text(fd_runs, lambda r: r['sent'] / r['dur'])} | "
                 f"{med(fd_runs, lambda r: r['server_cpu'] / r['sent'] * 1000):.2f} | "
                 f"{med(fd_runs, lambda r: r['client_cpu'] / r['sent'] * 1000):.2f} |")
    lines.append(f"| fordeler: routed (done in the window) | {rate_win:.0f} | "
                 f"{runs_text(fd_runs, lambda r: r['in_window'] / r['dur'])} | | |")
    lines.append(f"| fordeler: routed, until the last is done | {rate_sus:.0f} | "
                 f"{runs_text(fd_runs, lambda r: r['sustained'])} (drain "
                 f"{runs_text(fd_runs, lambda r: r['drain'] * 1000)} ms) | | |")
    if os_runs:
        lines.append(f"| OpenSSH: pairs uploaded, no routing | {rate_os:.0f} | "
                     f"{runs_text(os_runs, lambda r: r['sent'] / r['dur'])} | "
                     f"{med(os_runs, lambda r: r['server_cpu'] / r['sent'] * 1000):.2f} | "
                     f"{med(os_runs, lambda r: r['client_cpu'] / r['sent'] * 1000):.2f} |")
    ok1 = rate_sus >= 1000
    verdict = f"Target ≥ 1,000 routed/s: {'met' if ok1 else 'NOT met'} ({rate_sus:.0f}/s)."
    if os_runs:
        ok2 = rate_sus >= rate_os
        verdict += (f" Target ≥ OpenSSH raw rate: {'met' if ok2 else 'NOT met'} "
                    f"(ratio {rate_sus / rate_os:.2f}×).")
    if args.env:
        verdict += " fordelerd environment: " + " ".join(args.env) + "."
    if args.set:
        verdict += " fordelerd settings: " + " ".join(args.set) + "."
    lines += ["", verdict]
    if raw_fsync:
        f1, f4, f8, dfs = raw_fsync
        lines += ["", f"Raw fsync, same filesystem, same run: pwrite(4 KiB)+fsync {f1[0]:.0f}/s "
                  f"with 1 thread (median {f1[1]:.3f} ms, p99 {f1[2]:.3f} ms), {f4[0]:.0f}/s with "
                  f"4 threads, {f8[0]:.0f}/s with 8 threads; durable small-file write (write, "
                  f"fsync, rename, fsync dir) {dfs[0]:.0f}/s (median {dfs[1]:.3f} ms)."]
    else:
        lines += ["", "Raw fsync: skipped (--fsync-count 0)."]
    if per:
        total = sum(c for c, _ in per.values())
        lines += ["", f"fsyncs per transfer (strace run: {s_sent} transfers, "
                  f"{s_sent / s_elapsed:.0f}/s under strace, so only the counts mean anything; "
                  f"logins and start-up of that run excluded):", "",
                  "| what is synced | per transfer | mean ms per call (under strace) |",
                  "|---|---:|---:|"]
        for cls, (c, t) in sorted(per.items(), key=lambda kv: -kv[1][0]):
            lines.append(f"| {cls} | {c / s_sent:.2f} | {t / c * 1000:.3f} |")
        lines.append(f"| **total** | **{total / s_sent:.2f}** | |")
    if perf_report:
        lines += ["", "fordelerd's CPU by DSO and by thread (perf record -g, first fordeler run; "
                  "share of its samples):", "", "```", perf_report, "```"]
    lines += ["", rc.load_footer(load_start, cpu_start)]
    table = "\n".join(lines)
    rc.publish("routing_throughput.py", machine, table, args.output)
    return 0


if __name__ == "__main__":
    rc.main_entry(main)
