#!/usr/bin/python3
"""Per-session cost: fordelerd against a stock OpenSSH sshd (internal-sftp, chrooted user).

(a) Memory of an idle authenticated SFTP session at N (default 1,000) concurrent sessions.
    fordelerd: (VmRSS with N sessions open - VmRSS with none) / N, one process.
    OpenSSH forks per connection (a root monitor plus the chrooted session process), so its cost
    is the sum over the listener's descendants, divided by N: RSS (counts shared pages once per
    process, what `ps` shows), PSS (shared pages split among the sharers) and USS (private pages
    only), from /proc/PID/smaps_rollup.
(b) Accept rate: complete logins per second (TCP connect + key exchange + publickey auth + open
    the sftp subsystem + close), C logins in flight at a time, for a fixed number of logins,
    with the server's CPU time per login. Runs alternate A/B, B/A, ...

The same client drives both: asyncssh (python3-asyncssh), one asyncio event loop per client
process (--procs), no thread per connection. Only 127.0.0.1. Run as root (the OpenSSH side needs
ChrootDirectory and a system user); see bench/README.md. A benchmark, not a test: nothing about
timing is asserted. Process handling, the private sshd and machine facts come from
bench/sftp_throughput.py and bench/routing_common.py.
"""

import argparse
import asyncio
import ctypes
import multiprocessing
import os
import resource
import shutil
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import routing_common as rc  # noqa: E402
import sftp_throughput as st  # noqa: E402

log = st.log
CONNECT_TIMEOUT = 60.0
# One cipher for both servers: asyncssh's chacha20-poly1305 costs the client more CPU per packet.
CIPHER = "aes128-gcm@openssh.com"


# ---------------------------------------------------------------------------------------------
# The client

_KEYS = {}


async def _login(port, user, key):
    import asyncssh
    if key not in _KEYS:  # parsed once per client process, not per login
        _KEYS[key] = asyncssh.read_private_key(key)
    conn = await asyncio.wait_for(
        asyncssh.connect("127.0.0.1", port, username=user, client_keys=[_KEYS[key]], known_hosts=None,
                         config=[], agent_path=None, preferred_auth="publickey",
                         encryption_algs=[CIPHER]),
        CONNECT_TIMEOUT)
    try:
        sftp = await asyncio.wait_for(conn.start_sftp_client(), CONNECT_TIMEOUT)
        await asyncio.wait_for(sftp.realpath("."), CONNECT_TIMEOUT)
    except BaseException:
        conn.close()
        raise
    return conn, sftp


async def _hold(port, user, key, count, concurrency, ready, release):
    """Opens `count` sessions, `concurrency` logins at a time; signals `ready`, keeps them open
    until `release` is set (multiprocessing events, polled), then closes them."""
    gate = asyncio.Semaphore(concurrency)

    async def one():
        async with gate:
            return await _login(port, user, key)

    sessions = await asyncio.gather(*(one() for _ in range(count)))
    ready.set()
    deadline = time.monotonic() + 3600
    while not release.is_set() and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    for conn, sftp in sessions:
        sftp.exit()
        conn.close()
    await asyncio.wait_for(asyncio.gather(*(c.wait_closed() for c, _ in sessions)), 120)


def _hold_proc(port, user, key, count, concurrency, ready, release, errors):
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (count + 256, resource.getrlimit(
            resource.RLIMIT_NOFILE)[1]))
        asyncio.run(_hold(port, user, key, count, concurrency, ready, release))
    except BaseException as e:  # noqa: BLE001 (reported by the parent)
        errors.put(repr(e))
        ready.set()


async def _churn(port, user, key, count, concurrency):
    done = 0
    failures = []

    async def worker():
        nonlocal done
        while done + len(failures) < count:
            done += 1  # claimed before the await, so workers never overshoot `count`
            try:
                conn, sftp = await _login(port, user, key)
                sftp.exit()
                conn.close()
                await asyncio.wait_for(conn.wait_closed(), CONNECT_TIMEOUT)
            except Exception as e:  # noqa: BLE001
                done -= 1
                failures.append(repr(e))
                if len(failures) > 10:
                    raise

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done, failures


def _churn_proc(port, user, key, count, concurrency, start_at, q):
    try:
        while time.time() < start_at:
            time.sleep(0.005)
        c0 = time.process_time()
        t0 = time.monotonic()
        done, failures = asyncio.run(_churn(port, user, key, count, concurrency))
        q.put((done, time.monotonic() - t0, time.process_time() - c0, failures))
    except BaseException as e:  # noqa: BLE001
        q.put((0, 0.0, 0.0, [repr(e)]))


def hold_sessions(server, key, total, procs, concurrency):
    """Starts client processes holding `total` sessions; returns (release, processes)."""
    ctx = multiprocessing.get_context("fork")
    ready_events, release, errors, ps = [], ctx.Event(), ctx.Queue(), []
    per = [total // procs + (1 if i < total % procs else 0) for i in range(procs)]
    for n in per:
        ready = ctx.Event()
        p = ctx.Process(target=_hold_proc, args=(server.port, server.user, key, n,
                                                 max(1, concurrency // procs), ready, release,
                                                 errors), daemon=True)
        p.start()
        ready_events.append(ready)
        ps.append(p)
    deadline = time.monotonic() + 600
    for ev in ready_events:
        if not ev.wait(max(1, deadline - time.monotonic())):
            raise st.BenchError(f"{server.label}: {total} sessions not open within 600 s")
    if not errors.empty():
        release.set()
        raise st.BenchError(f"{server.label}: opening sessions failed: {errors.get()}")
    return release, ps


def churn(server, key, count, procs, concurrency):
    """`count` logins over `procs` processes; returns (logins/s, client CPU s, failures)."""
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    start_at = time.time() + 0.5
    per = [count // procs + (1 if i < count % procs else 0) for i in range(procs)]
    ps = [ctx.Process(target=_churn_proc, args=(server.port, server.user, key, n,
                                                max(1, concurrency // procs), start_at, q),
                      daemon=True) for n in per]
    for p in ps:
        p.start()
    results = [q.get(timeout=900) for _ in ps]
    for p in ps:
        p.join(30)
    done = sum(r[0] for r in results)
    elapsed = max(r[1] for r in results)
    failures = [f for r in results for f in r[3]]
    return done / elapsed if elapsed else 0.0, sum(r[2] for r in results), done, failures


# ---------------------------------------------------------------------------------------------
# Memory seen from /proc

def smaps_rollup(pid):
    """{'Rss': kB, 'Pss': kB, 'Uss': kB} of one process, or None when it is gone."""
    out = {"Rss": 0, "Pss": 0, "Uss": 0}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("Rss", "Pss"):
                    out[k] = int(v.split()[0])
                elif k in ("Private_Clean", "Private_Dirty"):
                    out["Uss"] += int(v.split()[0])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return out


def sshd_children_memory(server):
    kids = st.descendants(server.pid)
    total = {"Rss": 0, "Pss": 0, "Uss": 0}
    for pid in kids:
        m = smaps_rollup(pid)
        if m:
            for k in total:
                total[k] += m[k]
    return total, len(kids)


def settle(seconds=3.0):
    time.sleep(seconds)


def measure_memory(server, key, n, procs, concurrency):
    """Returns a dict of per-session KiB figures (and the raw totals)."""
    if server.label == "fordeler":
        before = smaps_rollup(server.pid)
    else:
        server.wait_idle(60)
        before = None
    t0 = time.monotonic()
    release, ps = hold_sessions(server, key, n, procs, concurrency)
    open_s = time.monotonic() - t0
    try:
        settle()
        if server.label == "fordeler":
            after = smaps_rollup(server.pid)
            threads = (st.proc_status(server.pid) or {}).get("Threads", "?")
            res = {k: (after[k] - before[k]) / n for k in ("Rss", "Pss", "Uss")}
            res.update(before_rss=before["Rss"], after_rss=after["Rss"], threads=threads,
                       processes=1)
        else:
            total, count = sshd_children_memory(server)
            res = {k: total[k] / n for k in total}
            res.update(total_rss=total["Rss"], processes=count)
        res["open_seconds"] = open_s
    finally:
        release.set()
        for p in ps:
            p.join(180)
    if server.label == "fordeler":
        st.wait_for(lambda: len(os.listdir(f"/proc/{server.pid}/fd")) < 64, 60,
                    "fordelerd's sessions to close", server.proc)
    else:
        server.wait_idle(120)
    return res


# ---------------------------------------------------------------------------------------------

def make_fordeler(binary, root, client_pub, sessions):
    f = st.Fordeler(binary, root, client_pub)
    cfg = f"{root}/fordeler.toml"
    with open(cfg) as fh:
        text = fh.read()
    limits = (f"max_sessions = {sessions + 512}\nmax_sessions_per_account = {sessions + 512}\n"
              "max_unauthenticated = 512\nmax_unauthenticated_per_address = 512\nban_after = 0\n")
    text = text.replace('host_keys = ["keys/host_ed25519"]\n',
                        'host_keys = ["keys/host_ed25519"]\n' + limits, 1)
    text += "[http]\nlisten = []\n"
    with open(cfg, "w") as fh:
        fh.write(text)
    return f


def make_openssh(sshd, root, client_pub, user, sessions):
    o = st.OpenSSH(sshd, root, client_pub, user)
    with open(o.cfg) as fh:
        text = fh.read()
    # Default MaxStartups 10:30:100 drops concurrent unauthenticated connections at random.
    text = text.replace("Match User", f"MaxStartups {sessions + 512}\nMatch User", 1)
    with open(o.cfg, "w") as fh:
        fh.write(text)
    return o


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=1000, help="idle sessions held open (a)")
    ap.add_argument("--logins", type=int, default=1000, help="logins per accept-rate run (b)")
    ap.add_argument("--repeat", type=int, default=3, help="accept-rate runs per server")
    ap.add_argument("--concurrency", type=int, default=16, help="logins in flight at once")
    ap.add_argument("--procs", type=int, default=2, help="client processes (one event loop each)")
    ap.add_argument("--fordelerd", default=None)
    ap.add_argument("--sshd", default="/usr/sbin/sshd")
    ap.add_argument("--user", default="fordeler-bench")
    ap.add_argument("--workdir", default="/var/lib")
    ap.add_argument("--output", help="also write the figures as a markdown snippet")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (the OpenSSH side needs ChrootDirectory and a system user)")
    binary = rc.default_fordelerd(args.fordelerd)
    rc.install_signal_handlers()
    PR_SET_CHILD_SUBREAPER = 36  # orphaned sshd session processes come to us (st.OpenSSH)
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    need = 2 * args.sessions + 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))

    started = rc.now_text()
    load_start = st.loadavg()
    cpu_start = st.cpu_counters()
    st.ensure_user(args.user)
    base = rc.bench_dir(args.workdir)
    servers = []
    try:
        key = rc.client_key(base)
        fd = make_fordeler(binary, f"{base}/fordeler", key + ".pub", args.sessions)
        ossh = make_openssh(args.sshd, f"{base}/openssh", key + ".pub", args.user, args.sessions)
        servers = [fd, ossh]
        for s in servers:
            s.start()
        st.OpenSSH.known_children = {fd.pid, ossh.pid}  # not orphans to reap (st.OpenSSH)
        for s in servers:  # warm-up: first logins page in code, fill caches
            churn(s, key, 50, 1, 4)
            if s.label == "OpenSSH":
                s.wait_idle(60)

        mem = {}
        for s in servers:
            log(f"{s.label}: opening {args.sessions} idle sessions")
            mem[s.label] = measure_memory(s, key, args.sessions, args.procs, args.concurrency)
            log(f"{s.label}: {mem[s.label]}")

        rates = {s.label: [] for s in servers}
        cpu = {s.label: [] for s in servers}
        client_cpu = {s.label: [] for s in servers}
        for r in range(args.repeat):
            order = servers if r % 2 == 0 else servers[::-1]
            for s in order:
                c0 = s.cpu_seconds()
                rate, ccpu, done, failures = churn(s, key, args.logins, args.procs,
                                                   args.concurrency)
                if s.label == "OpenSSH":
                    s.wait_idle(120)
                c1 = s.cpu_seconds()
                if failures:
                    raise st.BenchError(f"{s.label}: {len(failures)} logins failed: "
                                        f"{failures[:3]}")
                rates[s.label].append(rate)
                cpu[s.label].append((c1 - c0) / done * 1e3)
                client_cpu[s.label].append(ccpu / done * 1e3)
                log(f"{s.label}: {rate:.0f} logins/s, server {cpu[s.label][-1]:.2f} ms CPU/login,"
                    f" client {client_cpu[s.label][-1]:.2f} ms CPU/login")

        lines = report(args, binary, base, mem, rates, cpu, client_cpu, started)
        lines.append("")
        lines.append(rc.load_footer(load_start, cpu_start))
        text = "\n".join(lines) + "\n"
        print(text)
        if args.output:
            with open(args.output, "w") as f:
                f.write(text)
        return 0
    except st.BenchError as e:
        log(f"error: {e}")
        return 2
    finally:
        for s in servers:
            s.stop()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


def report(args, binary, base, mem, rates, cpu, client_cpu, started):
    f, o = mem["fordeler"], mem["OpenSSH"]
    med = {k: statistics.median(v) for k, v in rates.items()}
    lines = [f"Run {started}; {args.sessions} idle sessions; accept rate: {args.logins} logins × "
             f"{args.repeat} runs per server, {args.concurrency} in flight, {args.procs} asyncssh "
             "client process(es).", "",
             "Machine:"] + rc.machine_lines(binary, base) + [
        f"- nproc {os.cpu_count()}", "",
        f"Command: `{rc.command_line('session_cost.py')}`", "",
        f"| idle authenticated SFTP session, at {args.sessions} | fordelerd | OpenSSH "
        "(its per-connection processes) | OpenSSH / fordeler |",
        "|---|---|---|---|",
    ]
    for k, what in (("Rss", "RSS per session"), ("Pss", "PSS per session"),
                    ("Uss", "private (USS) per session")):
        ratio = o[k] / f[k] if f[k] > 0 else float("nan")
        lines.append(f"| {what} | {f[k]:.0f} KiB | {o[k]:.0f} KiB | {ratio:.1f}× |")
    lines += [
        f"| processes / threads | 1 process, {f['threads']} threads | {o['processes']} processes "
        f"({o['processes'] / args.sessions:.0f} per session) | |",
        f"| time to open all sessions | {f['open_seconds']:.1f} s | {o['open_seconds']:.1f} s | |",
        "",
        "| logins per second (connect + kex + auth + sftp + close) | fordelerd | OpenSSH | "
        "fordeler / OpenSSH |",
        "|---|---|---|---|",
        f"| median (min–max) | {med['fordeler']:.0f} ({min(rates['fordeler']):.0f}–"
        f"{max(rates['fordeler']):.0f}) | {med['OpenSSH']:.0f} ({min(rates['OpenSSH']):.0f}–"
        f"{max(rates['OpenSSH']):.0f}) | {med['fordeler'] / med['OpenSSH']:.1f}× |",
        f"| server CPU per login (median) | {statistics.median(cpu['fordeler']):.2f} ms | "
        f"{statistics.median(cpu['OpenSSH']):.2f} ms | "
        f"{statistics.median(cpu['OpenSSH']) / statistics.median(cpu['fordeler']):.1f}× less |",
        f"| client CPU per login (median) | {statistics.median(client_cpu['fordeler']):.2f} ms | "
        f"{statistics.median(client_cpu['OpenSSH']):.2f} ms | |",
        "", f"fordelerd VmRSS {f['before_rss']} KiB with no session, {f['after_rss']} KiB with "
        f"{args.sessions}; OpenSSH's per-connection processes {o['total_rss']} KiB RSS in all "
        "(the idle listener not counted).",
    ]
    return lines


if __name__ == "__main__":
    sys.exit(main())
