"""Load test (issue 6): 1,000 concurrent SFTP sessions and sustained routing against the real
fordelerd, driven by asyncssh on ONE asyncio event loop (no thread per client).

What it proves, over two identical cycles (each: open the sessions, route at a fixed rate for
half of `--duration`, let the daemon finish, close every session):

* every transfer is accounted for: each trigger got a receipt in the sender's IN; a good one
  (SUCCESS) has its data file (same SHA-256) and its metadata in every recipient's IN and is
  `delivered` in `fordeler transfers --json`; a deliberately bad one (every 10th: SizeInBytes
  off by one) has a 1005 SIZE_MISMATCH receipt, is `rejected` with 1005, and reached nobody;
* no file descriptor leaks: /proc/PID/fd of the daemon is back to its baseline (+ FD_SLACK) once
  the sessions are closed, after each cycle;
* memory plateaus: the daemon's live memory (RSS once every session is closed: fordelerd then
  hands freed heap back with malloc_trim(0)) after the second cycle exceeds that after the first
  by no more than RSS_SLACK_KIB (without the trim glibc keeps freed heap resident, RSS stays at
  each cycle's peak and drifts with fragmentation: docs/performance.md);
* no thread per session: /proc/PID/task has the same count with 1,000 sessions open as with
  none, and that count is at most io threads + delivery workers + MAX_HELPER_THREADS (the
  "fsync" helpers, started as syncs queue up, are counted apart: at most MAX_FSYNC_HELPERS).

CTest runs it with the default duration (120 s of routing in all, label `heavy`: not in the
sanitizer build). A soak by hand (docs/operations.md, "Load test and soak"):

    FORDELERD=/path/to/build/daemon/fordelerd /usr/bin/python3 tests/e2e/test_load.py \
        --duration 3600

Every wait is bounded; only 127.0.0.1 is used. No timing is asserted: the rate is a target, and
the achieved rate is only reported.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import random
import re
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness import (AccountSpec, data_areas_toml, receipt_of, sha256_bytes, sha256_file,
                     trigger_xml)

asyncssh = pytest.importorskip("asyncssh")  # python3-asyncssh (scripts/install-deps.sh)

KEY_NAMES = ["ed25519"]

DURATION = float(os.environ.get("FORDELER_LOAD_DURATION", "120"))  # seconds of routing, all cycles
SESSIONS = int(os.environ.get("FORDELER_LOAD_SESSIONS", "1000"))  # concurrent sessions per cycle
RATE = float(os.environ.get("FORDELER_LOAD_RATE", "5"))  # transfers per second (target)
CYCLES = int(os.environ.get("FORDELER_LOAD_CYCLES", "2"))  # identical cycles, at least 2
IO_THREADS = 2  # [server] threads, fixed so that the expected thread count does not depend on nproc
DELIVERY_WORKERS = 64  # [delivery] workers, its default (docs/configuration.md)
# Fixed helper threads besides the io threads and the delivery pool: today the audit writer, the
# folder watcher, the retention sweeper, the control socket server, the signal/watchdog context
# (daemon.cc) and the monitor; headroom for the HTTP server and the like. The point is the
# equality below (no thread per session), not this bound.
MAX_HELPER_THREADS = 16
# Env::FsyncAll's "fsync" helpers are started as syncs queue up (as many as wait for the disk at
# once, at most this many: core/env.cc), so their number follows the disk, not the sessions; they
# are counted apart.
MAX_FSYNC_HELPERS = 64
# fds the daemon may hold open after a cycle beyond its baseline: lazy opens, and the audit read
# pool's idle connections (audit/read_pool.h: up to 4 kept, 2 fds each: the database and its WAL),
# which fill up as the delivery workers look up downloads and pickups at once.
FD_SLACK = 4 + 4 * 2
# After malloc_trim, cycle 2 may end this much above cycle 1: SQLite's page cache filling up as
# the audit log grows (bounded), allocator fragments. A leak of 4 KiB per session passes it.
RSS_SLACK_KIB = 4 * 1024

SENDERS = [f"snd{i:02d}" for i in range(10)]
RECIPIENTS = ["rcpa", "rcpb"]
IDLERS = [f"idle{i:02d}" for i in range(10)]
SENDER_SESSIONS = 20  # active: upload data + trigger, one transfer at a time each
READER_SESSIONS = 10  # active: list IN and read a delivered file, about once a second each
LOGIN_CONCURRENCY = 40  # logins in flight at once (below max_unauthenticated_per_address)
DELIVER = "FLISOekonomiAflever_1"
CLIENT_TIMEOUT = 30.0
DRAIN_TIMEOUT = 120.0  # after the last trigger: every receipt there (slow CI disk)


def accounts(keyset) -> list[AccountSpec]:
    key = keyset.key("ed25519")
    out = [AccountSpec(s, [key], extra=f'authority = "urn:oio:cvr-nr:{40000000 + i}"\n'
                                       f'it_system = "{s}"') for i, s in enumerate(SENDERS)]
    out += [AccountSpec(a, [key]) for a in RECIPIENTS + IDLERS]
    return out


def config_extra() -> str:
    routes = "".join(f'\n[[route]]\nid = "load-{s}"\ndata_area = "oekonomi"\nsender = "{s}"\n'
                     f'authorities = ["*"]\nrecipients = {json.dumps(RECIPIENTS)}\n'
                     for s in SENDERS)
    return ('[delivery]\ntrigger_grace = "5s"\n\n[http]\nlisten = []\n' + routes + "\n"
            + data_areas_toml())


def server_extra(duration: float) -> str:
    idle = int(duration + 600)  # idle sessions must outlive a soak's routing phase
    return "\n".join([
        f"threads = {IO_THREADS}",
        f"max_sessions = {SESSIONS + 200}",
        f"max_sessions_per_account = {SESSIONS + 200}",
        "max_unauthenticated = 256",
        "max_unauthenticated_per_address = 256",
        f'idle_timeout = "{idle}s"',
        "ban_after = 0",
    ])


# ------------------------------------------------------------------------------------------
# The daemon seen from /proc


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def fd_targets(pid: int) -> collections.Counter:
    """What the daemon's fds are open on (sockets and pipes without their inode numbers)."""
    targets = collections.Counter()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            targets[re.sub(r":\[\d+\]$", ":[]", os.readlink(f"/proc/{pid}/fd/{fd}"))] += 1
        except OSError:  # closed meanwhile
            pass
    return targets


def thread_count(pid: int) -> int:
    """The daemon's threads, the "fsync" helpers aside."""
    names = thread_names(pid)
    return sum(names.values()) - names["fsync"]


def thread_names(pid: int) -> collections.Counter:
    """How many of the daemon's threads bear each name (fordelerd names every thread it starts;
    the main thread keeps the process's name)."""
    names = collections.Counter()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                names[f.read().strip()] += 1
        except FileNotFoundError:  # ended meanwhile
            pass
    return names


def trimmed_rss_kib(pid: int) -> int:
    """VmRSS once no session is open. glibc keeps freed heap memory resident, so RSS after a
    cycle would be the cycle's peak, and a second cycle would land partly elsewhere in the heap
    (fragmentation) and look like growth; fordelerd calls malloc_trim(0) itself when its last
    session closes (sftp/server_context.cc), so what is left is live memory."""
    return rss_kib(pid)


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


async def wait_for(pred, timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for: {what}")
        await asyncio.sleep(interval)


# ------------------------------------------------------------------------------------------
# Clients


@dataclass
class Client:
    account: str
    conn: object
    sftp: object
    account_in: Path  # the account's IN on the daemon's disk


@dataclass
class Sent:
    name: str
    sender: str
    sha256: str
    good: bool


@dataclass
class Cycle:
    index: int
    sent: list[Sent] = field(default_factory=list)
    lag_max: float = 0.0
    reads: int = 0
    figures: dict = field(default_factory=dict)


_KEYS: dict[Path, object] = {}


async def login(d, account: str, key: Path) -> Client:
    if key not in _KEYS:  # parsed once, not per login
        _KEYS[key] = asyncssh.read_private_key(str(key))
    conn = await asyncio.wait_for(
        asyncssh.connect(d.host, d.port, username=account, client_keys=[_KEYS[key]],
                         known_hosts=None, agent_path=None, config=[], preferred_auth="publickey",
                         encryption_algs=["aes128-gcm@openssh.com"]),  # cheapest for asyncssh
        CLIENT_TIMEOUT)
    try:
        sftp = await asyncio.wait_for(conn.start_sftp_client(), CLIENT_TIMEOUT)
        await asyncio.wait_for(sftp.realpath("."), CLIENT_TIMEOUT)
    except BaseException:
        conn.close()
        raise
    return Client(account, conn, sftp, d.in_dir(account))


async def open_sessions(d, key: Path) -> list[Client]:
    """SESSIONS authenticated SFTP sessions, LOGIN_CONCURRENCY logins at a time. The first
    SENDER_SESSIONS are senders', the next READER_SESSIONS recipients', the rest idle."""
    plan = [SENDERS[i % len(SENDERS)] for i in range(SENDER_SESSIONS)]
    plan += [RECIPIENTS[i % len(RECIPIENTS)] for i in range(READER_SESSIONS)]
    plan += [IDLERS[i % len(IDLERS)] for i in range(SESSIONS - len(plan))]
    gate = asyncio.Semaphore(LOGIN_CONCURRENCY)

    async def one(account: str) -> Client:
        async with gate:
            return await login(d, account, key)

    results = await asyncio.gather(*(one(a) for a in plan), return_exceptions=True)
    clients = [r for r in results if isinstance(r, Client)]
    errors = [r for r in results if not isinstance(r, Client)]
    if errors:
        await close_sessions(clients)
        raise AssertionError(f"{len(errors)} of {len(plan)} logins failed; first: {errors[0]!r}")
    return clients


async def close_sessions(clients: list[Client]) -> None:
    for c in clients:
        c.sftp.exit()
        c.conn.close()
    await asyncio.wait_for(asyncio.gather(*(c.conn.wait_closed() for c in clients),
                                          return_exceptions=True), 60)


async def sessions_alive(clients: list[Client]) -> int:
    """How many sessions still answer an SFTP request (the idle ones were not dropped)."""
    gate = asyncio.Semaphore(100)

    async def ping(c: Client) -> None:
        async with gate:
            await asyncio.wait_for(c.sftp.stat("."), CLIENT_TIMEOUT)

    results = await asyncio.gather(*(ping(c) for c in clients), return_exceptions=True)
    return sum(1 for r in results if not isinstance(r, BaseException))


async def upload(client: Client, s: Sent, data: bytes, trigger: bytes) -> None:
    for path, body in ((f"OUT/{s.name}", data), (f"OUT/{s.name}.trigger", trigger)):
        async with client.sftp.open(path, "wb") as f:
            await asyncio.wait_for(f.write(body), CLIENT_TIMEOUT)


async def route_at_rate(cycle: Cycle, senders: list[Client], seconds: float, rng) -> None:
    """Starts one transfer every 1/RATE s for `seconds`, each on a free sender session."""
    free: asyncio.Queue[Client] = asyncio.Queue()
    for c in senders:
        free.put_nowait(c)
    tasks = []
    errors = []

    async def transfer(client: Client, s: Sent, data: bytes, trigger: bytes) -> None:
        try:
            await upload(client, s, data, trigger)
        except Exception as e:  # noqa: BLE001 (reported below, with the transfer)
            errors.append(f"{s.name}: {e!r}")
        finally:
            free.put_nowait(client)

    count = max(1, int(seconds * RATE))
    t0 = time.monotonic()
    for i in range(count):
        delay = t0 + i / RATE - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        client = await asyncio.wait_for(free.get(), CLIENT_TIMEOUT)
        cycle.lag_max = max(cycle.lag_max, time.monotonic() - (t0 + i / RATE))
        data = os.urandom(rng.randint(1, 16) * 1024)
        good = i % 10 != 9
        s = Sent(f"c{cycle.index}-{i:06d}-{client.account}.csv", client.account,
                 sha256_bytes(data), good)
        trigger = trigger_xml(s.name, len(data) + (0 if good else 1), client.account, RECIPIENTS,
                              inf_ref=DELIVER, senders_file_id=f"load-{cycle.index}-{i}")
        cycle.sent.append(s)
        tasks.append(asyncio.create_task(transfer(client, s, data, trigger)))
    await asyncio.wait_for(asyncio.gather(*tasks), CLIENT_TIMEOUT * 2)
    cycle.figures["routing_seconds"] = time.monotonic() - t0
    assert not errors, f"{len(errors)} uploads failed: {errors[:5]}"


async def read_in(cycle: Cycle, readers: list[Client], stop: asyncio.Event) -> None:
    """Recipients' sessions, about once a second each: list OUT, stat IN and read the newest
    delivered file (active load that does not grow with the length of a soak)."""

    async def reader(c: Client) -> None:
        while not stop.is_set():
            await asyncio.wait_for(c.sftp.listdir("OUT"), CLIENT_TIMEOUT)
            await asyncio.wait_for(c.sftp.stat("IN"), CLIENT_TIMEOUT)
            for s in reversed(cycle.sent[-50:]):
                if s.good and (c.account_in / (s.name + ".metadata")).exists():
                    async with c.sftp.open(f"IN/{s.name}", "rb") as f:
                        data = await asyncio.wait_for(f.read(), CLIENT_TIMEOUT)
                    assert sha256_bytes(data) == s.sha256, f"{c.account} read a bad IN/{s.name}"
                    cycle.reads += 1
                    break
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except asyncio.TimeoutError:
                pass

    await asyncio.gather(*(reader(c) for c in readers))


# ------------------------------------------------------------------------------------------
# Accounting


def check_accounted(d, cycle: Cycle, cli_rows: dict[str, dict]) -> None:
    """Every transfer of the cycle: receipt in the sender's IN; delivered to both recipients
    (data with its SHA-256, metadata), or rejected with 1005 and delivered to nobody; and the
    audit log (`fordeler transfers --json`) says the same."""
    problems = []
    for s in cycle.sent:
        path = d.in_dir(s.sender) / (s.name + ".sftpreceipt")
        if not path.exists():
            problems.append(f"{s.name}: no receipt")
            continue
        receipt = receipt_of(path)
        message = (receipt.get("Receipt") or {}).get("Message")
        row = cli_rows.get(receipt["FileTransferUUID"])
        placed = [r for r in RECIPIENTS if (d.in_dir(r) / s.name).exists()]
        if s.good:
            if message != "SUCCESS":
                problems.append(f"{s.name}: receipt {receipt}")
            for r in RECIPIENTS:
                f = d.in_dir(r) / s.name
                if not f.exists() or sha256_file(f) != s.sha256:
                    problems.append(f"{s.name}: {r}'s IN has {'a wrong' if f.exists() else 'no'} "
                                    "copy")
                if not (d.in_dir(r) / (s.name + ".metadata")).exists():
                    problems.append(f"{s.name}: {r}'s IN has no metadata")
            if not row or row["state"] != "delivered":
                problems.append(f"{s.name}: audit row {row}")
        else:
            code = (receipt.get("ErrorMessage") or {}).get("ErrorCode")
            if message == "SUCCESS" or code != "1005":
                problems.append(f"{s.name}: want a 1005 rejection, receipt {receipt}")
            if placed:
                problems.append(f"{s.name}: rejected but placed in {placed}")
            if not row or row["state"] != "rejected" or row["error_code"] != 1005:
                problems.append(f"{s.name}: audit row {row}")
        if row and (row["name"] != s.name or row["sender"] != s.sender):
            problems.append(f"{s.name}: audit row names another transfer: {row}")
        if len(problems) > 20:
            break
    assert not problems, f"{len(problems)}+ transfers not accounted for:\n" + "\n".join(problems)


def cli_transfers(d) -> dict[str, dict]:
    fordeler = Path(os.environ.get("FORDELER") or
                    Path(os.environ["FORDELERD"]).resolve().parent.parent / "cli" / "fordeler")
    r = subprocess.run([str(fordeler), "--config", str(d.config_path), "transfers", "--limit", "0",
                        "--json"], capture_output=True, text=True, timeout=120,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"fordeler transfers failed ({r.returncode}): {r.stderr}"
    return {row["uuid"]: row for row in json.loads(r.stdout)}


def receipts_done(d, cycle: Cycle) -> bool:
    return all((d.in_dir(s.sender) / (s.name + ".sftpreceipt")).exists() for s in cycle.sent)


# ------------------------------------------------------------------------------------------
# The test


async def run_cycle(d, key: Path, index: int, seconds: float, baseline: dict) -> Cycle:
    cycle = Cycle(index)
    pid = d.pid
    f = cycle.figures
    t0 = time.monotonic()
    clients = await open_sessions(d, key)
    try:
        f["login_seconds"] = time.monotonic() - t0
        f["rss_open_kib"] = rss_kib(pid)
        f["threads_open"] = thread_count(pid)
        f["fds_open"] = fd_count(pid)
        senders = clients[:SENDER_SESSIONS]
        readers = clients[SENDER_SESSIONS:SENDER_SESSIONS + READER_SESSIONS]
        stop = asyncio.Event()
        reading = asyncio.create_task(read_in(cycle, readers, stop))
        try:
            await route_at_rate(cycle, senders, seconds, random.Random(index))
            await wait_for(lambda: receipts_done(d, cycle), DRAIN_TIMEOUT,
                           f"receipts for all {len(cycle.sent)} transfers of cycle {index}")
        finally:
            stop.set()
            await asyncio.wait_for(reading, CLIENT_TIMEOUT * 2)
        f["rss_peak_kib"] = rss_kib(pid)
        f["threads_peak"] = thread_count(pid)
        f["sessions_alive"] = await sessions_alive(clients)
    finally:
        await close_sessions(clients)
    # Closed on our side; the daemon notices each EOF on its own io threads.
    try:
        await wait_for(lambda: fd_count(pid) <= baseline["fds"] + FD_SLACK, 60,
                       f"daemon fds back to {baseline['fds']} + {FD_SLACK} after cycle {index}")
    except AssertionError as e:
        extra = fd_targets(pid) - baseline["fd_targets"]
        raise AssertionError(f"{e}; open beyond the baseline: {dict(extra)}") from None
    await asyncio.sleep(2)  # let freed memory settle (io threads finish their last callbacks)
    f["fds_after"] = fd_count(pid)
    f["rss_after_kib"] = rss_kib(pid)
    f["rss_trimmed_kib"] = trimmed_rss_kib(pid)
    f["threads_after"] = thread_count(pid)
    return cycle


def raise_nofile(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need:
        return
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.fail(f"RLIMIT_NOFILE hard limit {hard} < {need}: raise it (ulimit -Hn) to run "
                    "the load test", pytrace=False)
    resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


def test_thousand_sessions_and_sustained_routing(daemons, keyset):
    """1,000 sessions + routing at RATE/s, twice: accounted, no fd leak, RSS plateaus, threads
    fixed (module docstring)."""
    # Client sockets here, and the daemon (which inherits the limit) needs one fd per session.
    raise_nofile(2 * SESSIONS + 512)
    d = daemons.create(accounts(keyset), server_extra=server_extra(DURATION),
                       extra=config_extra())
    key = keyset.key("ed25519")
    asyncio.run(run_all(d, key))


async def run_all(d, key: Path) -> None:
    pid = d.pid
    # Warm up: one small cycle's worth of lazy initialisation (SQLite pages, jails, first
    # transfer) before the baseline, so that it is not counted as a leak.
    warm = Cycle(0)
    clients = [await login(d, SENDERS[0], key), await login(d, RECIPIENTS[0], key)]
    try:
        await route_at_rate(warm, clients[:1], 2 / RATE, random.Random(0))
        await wait_for(lambda: receipts_done(d, warm), DRAIN_TIMEOUT, "warm-up receipts")
    finally:
        await close_sessions(clients)
    await wait_for(lambda: d.running(), 1, "daemon alive")
    await asyncio.sleep(2)
    baseline = {"fds": fd_count(pid), "fd_targets": fd_targets(pid),
                "threads": thread_count(pid), "rss_kib": rss_kib(pid),
                "rss_trimmed_kib": trimmed_rss_kib(pid)}
    cycles = []
    for i in range(1, CYCLES + 1):
        cycles.append(await run_cycle(d, key, i, DURATION / CYCLES, baseline))
        assert d.running(), "fordelerd died during the load"

    report(baseline, cycles)
    rows = cli_transfers(d)
    for c in [warm] + cycles:
        check_accounted(d, c, rows)
    ours = sum(len(c.sent) for c in [warm] + cycles)
    assert len(rows) == ours, f"the audit log has {len(rows)} transfers, {ours} were sent"

    assert baseline["threads"] <= IO_THREADS + DELIVERY_WORKERS + MAX_HELPER_THREADS, baseline
    names = thread_names(pid)
    assert names["delivery"] == DELIVERY_WORKERS and names["fordelerd"] == 1, names
    assert names["fsync"] <= MAX_FSYNC_HELPERS, names
    assert sum(n for k, n in names.items() if k.startswith("sftp-io-")) == IO_THREADS - 1, names
    for c in cycles:
        f = c.figures
        assert f["sessions_alive"] == SESSIONS, f"sessions closed under load: {f}"
        for k in ("threads_open", "threads_peak", "threads_after"):
            assert f[k] == baseline["threads"], (
                f"cycle {c.index}: {k} = {f[k]} threads, {baseline['threads']} with no session")
        assert f["fds_open"] >= baseline["fds"] + SESSIONS, f"not {SESSIONS} sockets open: {f}"
        assert f["fds_after"] <= baseline["fds"] + FD_SLACK, f"fd leak: {f} vs {baseline}"
    # The plateau: the last cycle ends where the one before it ended.
    a, b = cycles[-2].figures, cycles[-1].figures
    assert b["rss_trimmed_kib"] - a["rss_trimmed_kib"] <= RSS_SLACK_KIB, (
        f"live memory grew {b['rss_trimmed_kib'] - a['rss_trimmed_kib']} KiB from cycle "
        f"{CYCLES - 1} to cycle {CYCLES} (slack {RSS_SLACK_KIB} KiB; RSS after malloc_trim): "
        f"{a} -> {b}")


def report(baseline: dict, cycles: list[Cycle]) -> None:
    """The figures, on stdout (pytest -s, or the script's output) for docs/performance.md."""
    print(f"\nload: {SESSIONS} sessions, target {RATE}/s, {DURATION:.0f} s of routing in "
          f"{CYCLES} cycles; io threads {IO_THREADS}")
    print(f"baseline: { {k: v for k, v in baseline.items() if k != 'fd_targets'} }")
    for c in cycles:
        f = c.figures
        good = sum(1 for s in c.sent if s.good)
        per_session = (f["rss_open_kib"] - baseline["rss_kib"]) / SESSIONS
        print(f"cycle {c.index}: {len(c.sent)} transfers ({good} good) in "
              f"{f['routing_seconds']:.1f} s ({len(c.sent) / f['routing_seconds']:.2f}/s, max lag "
              f"{c.lag_max:.2f} s), {c.reads} reads; logins {f['login_seconds']:.1f} s; "
              f"RSS {baseline['rss_kib']} -> open {f['rss_open_kib']} "
              f"({per_session:.0f} KiB/session) -> peak {f['rss_peak_kib']} -> after "
              f"{f['rss_after_kib']} KiB, {f['rss_trimmed_kib']} KiB after malloc_trim; fds open {f['fds_open']} after {f['fds_after']}; "
              f"threads {f['threads_open']}/{f['threads_peak']}/{f['threads_after']}")
    sys.stdout.flush()


def main() -> int:
    import argparse
    ap = argparse.ArgumentParser(description="fordeler load test / soak (tests/e2e/test_load.py)")
    ap.add_argument("--duration", type=float, default=DURATION,
                    help="seconds of routing over all cycles (default %(default)s; soak: 3600)")
    ap.add_argument("--sessions", type=int, default=SESSIONS)
    ap.add_argument("--rate", type=float, default=RATE, help="transfers per second")
    ap.add_argument("--cycles", type=int, default=CYCLES,
                    help="identical cycles; memory must not grow from the last but one to the last")
    args = ap.parse_args()
    if args.cycles < 2:
        ap.error("--cycles must be at least 2")
    os.environ["FORDELER_LOAD_CYCLES"] = str(args.cycles)
    os.environ["FORDELER_LOAD_DURATION"] = str(args.duration)
    os.environ["FORDELER_LOAD_SESSIONS"] = str(args.sessions)
    os.environ["FORDELER_LOAD_RATE"] = str(args.rate)
    os.chdir(os.path.dirname(os.path.abspath(__file__)))
    timeout = int(args.duration * 2 + 450 * args.cycles)
    return pytest.main(["-q", "-s", "-p", "no:cacheprovider", f"--timeout={timeout}",
                        os.path.abspath(__file__)])


if __name__ == "__main__":
    sys.exit(main())
