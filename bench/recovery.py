#!/usr/bin/python3
"""Recovery: fordelerd starting on an audit log of 100,000 finished and 1,000 unfinished
transfers: time to the first successful login, and until every unfinished transfer is finished.

The state is built once, then copied afresh for every measured start:
  1. fordelerd starts once on an empty storage root (creating the database, jails, spool) and
     stops;
  2. fordeler_bench_fill_audit (cli/bench_fill_audit.cc) appends the finished transfers through
     AuditStore (a month of traffic, 3-4 events each, hash chain and all);
  3. the unfinished transfers are written with sqlite3 as the pipeline records them, each with
     its files on disk: a quarter at each of the steps received (trigger and data in the sender's
     /OUT), trigger_taken (trigger in the spool, data in /OUT), accepted (the same, deliveries
     pending) and spooled (data and trigger in the spool); their `received` events continue the
     hash chain (audit/chain.h), so `fordeler audit verify` still passes;
then fordelerd is started and a paramiko client tries to log in every 5 ms (only 127.0.0.1)
while the database is polled read-only for transfers not yet done. Every wait is bounded.
See bench/README.md.

This is a benchmark run by hand, not a test: it asserts nothing about timing.
"""

import argparse
import datetime
import hashlib
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import uuid as uuidlib

import routing_common as rc

import paramiko

SENDERS = 8
RECIPIENTS = 2
STEPS = [(0, "received"), (1, "trigger_taken"), (2, "accepted"), (3, "spooled")]


def fmt_time(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def event_hash(prev, seq, time_text, kind, transfer_uuid, account, detail):
    text = "\n".join([prev, str(seq), time_text, kind, transfer_uuid, account, detail])
    return hashlib.sha256(text.encode()).hexdigest()


def add_unfinished(d, count, size):
    """Writes `count` unfinished transfers (rows, chained events, files). Returns per-step counts."""
    con = sqlite3.connect(d.db, timeout=30, isolation_level=None)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = FULL")
    con.execute("BEGIN IMMEDIATE")
    seq, prev = con.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    spool = f"{d.root}/state/spool"
    now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=30)
    per_step = {}
    for i in range(count):
        sender = f"s{i % SENDERS}"
        recipient = f"r{(i % SENDERS) % RECIPIENTS}"
        step, step_name = STEPS[i % len(STEPS)]
        per_step[step_name] = per_step.get(step_name, 0) + 1
        u = str(uuidlib.uuid4())
        name = f"pending_{i:05d}.csv"
        trig = name + ".trigger"
        data = os.urandom(size)
        sha = hashlib.sha256(data).hexdigest()
        xml = rc.trigger_xml(name, size, sender, [recipient], sha256=sha)
        at = fmt_time(now + datetime.timedelta(milliseconds=i))
        out = d.out_dir(sender)
        # Files where the step left them.
        if step == 0:
            write(f"{out}/{trig}", xml, 0o640)
        else:
            write(f"{spool}/{u}.trigger", xml, 0o640)
        if step <= 2:
            write(f"{out}/{name}", data, 0o640)
        else:
            write(f"{spool}/{u}", data, 0o440)
        accepted = step >= 2
        con.execute(
            "INSERT INTO transfers (uuid, sender, trigger_name, name, senders_file_id, size, "
            "sha256, data_area, authority, route_ids, state, step, error_code, "
            "error_description, trigger_xml, receipt_xml, received_at, updated_at) "
            "VALUES (?,?,?,?,NULL,?,?,?,?,?,?,?,NULL,'',?,'',?,?)",
            (u, sender, trig, name, size if accepted else None, sha if step >= 3 else None,
             "oekonomi" if accepted else None,
             "urn:oio:cvr-nr:55133018" if accepted else None,
             f"route-{sender}" if accepted else "",
             "delivering" if step >= 3 else "received", step,
             xml.decode() if step >= 1 else "", at, at))
        if accepted:
            con.execute("INSERT INTO transfer_routes (transfer_uuid, route_id, received_at) "
                        "VALUES (?,?,?)", (u, f"route-{sender}", at))
            con.execute("INSERT INTO deliveries (transfer_uuid, recipient, name_in_in, state) "
                        "VALUES (?,?,'','pending')", (u, recipient))
        seq += 1
        detail = f"trigger={trig}"
        h = event_hash(prev, seq, at, "received", u, sender, detail)
        con.execute("INSERT INTO events (seq, time, kind, transfer_uuid, account, detail, "
                    "prev_hash, hash) VALUES (?,?,?,?,?,?,?,?)",
                    (seq, at, "received", u, sender, detail, prev, h))
        prev = h
    con.execute("COMMIT")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    os.sync()
    return per_step


def write(path, data, mode):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def try_login(port, key, timeout=2.0):
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError:
        return False
    t = paramiko.Transport(sock)
    try:
        t.banner_timeout = timeout
        t.auth_timeout = timeout
        t.start_client(timeout=timeout)
        t.auth_publickey("r0", key)
        return t.is_authenticated()
    except (paramiko.SSHException, OSError, EOFError):
        return False
    finally:
        t.close()


def measure(d, key, timeout):
    """Starts fordelerd on the prepared state; returns (s to login, s to all finished, s to
    listening logged)."""
    pkey = paramiko.Ed25519Key.from_private_key_file(key)
    t0 = time.monotonic()
    d.spawn()
    t_login = None
    deadline = t0 + timeout
    while t_login is None:
        if time.monotonic() > deadline:
            raise rc.BenchError(f"no login within {timeout}s")
        if d.proc.poll() is not None:
            raise rc.BenchError(f"fordelerd exited with {d.proc.returncode}")
        if try_login(d.port, pkey):
            t_login = time.monotonic() - t0
        else:
            time.sleep(0.005)
    t_done = None
    while t_done is None:
        if time.monotonic() > deadline:
            raise rc.BenchError(f"unfinished transfers left after {timeout}s")
        if d.proc.poll() is not None:
            raise rc.BenchError(f"fordelerd exited with {d.proc.returncode}")
        try:
            left = d.query("SELECT count(*) FROM transfers WHERE step != ?", (rc.STEP_DONE,),
                           timeout=2)[0][0]
        except sqlite3.OperationalError:
            left = -1
        if left == 0:
            t_done = time.monotonic() - t0
        else:
            time.sleep(0.02)
    return t_login, t_done


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fordelerd", help="daemon binary (default: $FORDELERD, "
                    "/tmp/build-bench2/daemon/fordelerd, build/daemon/fordelerd)")
    ap.add_argument("--fill", help="fordeler_bench_fill_audit binary (default: beside fordelerd, "
                    "../cli/fordeler_bench_fill_audit)")
    ap.add_argument("--cli", help="fordeler CLI for `audit verify` (default: ../cli/fordeler)")
    ap.add_argument("--finished", type=int, default=100_000, help="finished transfers (100000)")
    ap.add_argument("--unfinished", type=int, default=1000, help="unfinished transfers (1000)")
    ap.add_argument("--size", type=rc.st.parse_size, default=4096,
                    help="data size of the unfinished (4KiB)")
    ap.add_argument("--repeat", type=int, default=3, help="measured starts (3)")
    ap.add_argument("--drop-caches", action="store_true",
                    help="also measure cold starts: sync; echo 3 > /proc/sys/vm/drop_caches "
                         "before each (affects the whole machine)")
    ap.add_argument("--timeout", type=float, default=120, help="bound per start (120 s)")
    ap.add_argument("--workdir", default="/var/lib", help="parent of the bench directory")
    ap.add_argument("--output", help="also write the results as a markdown snippet")
    ap.add_argument("--keep", action="store_true",
                    help="keep the bench directory (a failed run always keeps it)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (the bench directory is made under /var/lib)")
    fordelerd = rc.default_fordelerd(args.fordelerd)
    build = os.path.dirname(os.path.dirname(fordelerd))
    fill = args.fill or f"{build}/cli/fordeler_bench_fill_audit"
    cli = args.cli or f"{build}/cli/fordeler"
    for b in (fill,):
        if not os.access(b, os.X_OK):
            sys.exit(f"{b} not found: cmake --build BUILD --target fordeler_bench_fill_audit")
    rc.install_signal_handlers()

    started = rc.now_text()
    load_start, cpu_start = rc.st.loadavg(), rc.st.cpu_counters()
    base = rc.bench_dir(args.workdir)
    d = None
    warm, cold = [], []
    try:
        machine = rc.machine_lines(fordelerd, base)
        f1 = rc.fsync_rate(base, 2000, 1)
        rc.log(f"raw fsync: {f1[0]:.0f}/s (median {f1[1]:.3f} ms)")
        key = rc.client_key(base)
        routes = {f"s{i}": [f"r{i % RECIPIENTS}"] for i in range(SENDERS)}
        tmpl = f"{base}/template"
        d = rc.Daemon(fordelerd, tmpl, key + ".pub", routes)
        d.start()
        d.stop()
        rc.log(f"filling {args.finished} finished transfers with {fill}")
        t = time.monotonic()
        rc.run([fill, d.db, str(args.finished)], timeout=1800)
        rc.log(f"filled in {time.monotonic() - t:.1f} s")
        per_step = add_unfinished(d, args.unfinished, args.size)
        rows = d.query("SELECT (SELECT count(*) FROM transfers), (SELECT count(*) FROM events), "
                       "(SELECT count(*) FROM transfers WHERE step != 6)")[0]
        db_mb = os.path.getsize(d.db) / 1e6
        rc.log(f"state: {rows[0]} transfers ({rows[2]} unfinished: {per_step}), {rows[1]} "
               f"events, database {db_mb:.0f} MB")
        verify = "not run"
        if os.access(cli, os.X_OK):
            r = rc.run([cli, "--config", d.config, "audit", "verify"], check=False, timeout=600)
            verify = f"exit {r.returncode}: {(r.stdout + r.stderr).strip().splitlines()[-1:]}"
            rc.log(f"fordeler audit verify on the prepared state: {verify}")
            if r.returncode != 0:
                raise rc.BenchError(f"prepared state fails audit verify: {r.stdout}{r.stderr}")
        modes = [("warm", warm)] + ([("cold", cold)] if args.drop_caches else [])
        for rep in range(args.repeat):
            for mode, out in modes:
                run_dir = f"{base}/run{rep}{mode}"
                subprocess.run(["cp", "-a", tmpl, run_dir], check=True, timeout=600)
                rd = rc.Daemon(fordelerd, run_dir, key + ".pub", routes)
                os.sync()
                if mode == "cold":
                    with open("/proc/sys/vm/drop_caches", "w") as f:
                        f.write("3\n")
                d = rd
                try:
                    t_login, t_done = measure(rd, key, args.timeout)
                    log_text = rd.log_text()
                    rec = [ln for ln in log_text.splitlines() if "event=recovery" in ln]
                    if not rec or f"unfinished={args.unfinished}" not in rec[-1]:
                        raise rc.BenchError(f"expected event=recovery unfinished="
                                            f"{args.unfinished}, got {rec}")
                    bad = rd.query("SELECT count(*) FROM transfers WHERE step = 6 AND name LIKE "
                                   "'pending_%' AND state != 'delivered'")[0][0]
                    if bad:
                        raise rc.BenchError(f"{bad} recovered transfers not delivered")
                    cpu = rd.cpu_seconds()
                finally:
                    rd.stop()
                out.append((t_login, t_done, cpu))
                rc.log(f"{mode} start {rep + 1}: login after {t_login * 1000:.0f} ms, all "
                       f"{args.unfinished} finished after {t_done:.2f} s (fordelerd CPU "
                       f"{cpu:.2f} s)")
                shutil.rmtree(run_dir, ignore_errors=True)
        d = None
    finally:
        if d is not None:
            d.stop()
        rc.remove_bench_dir(base, args.keep)

    lines = [f"Run {started}; {rows[0]:,} transfers in the audit log ({rows[2]:,} unfinished: "
             + ", ".join(f"{v} at `{k}`" for k, v in per_step.items())
             + f"), {rows[1]:,} events, database {db_mb:.0f} MB; {args.repeat} starts per mode, "
             "median (all runs).", "",
             "| start | first login | target | all unfinished done | target | fordelerd CPU s |",
             "|---|---:|---|---:|---|---:|"]
    for mode, out in modes:
        lg = [x[0] for x in out]
        dn = [x[1] for x in out]
        cp = [x[2] for x in out]
        lines.append(
            f"| {mode} page cache | {statistics.median(lg) * 1000:.0f} ms "
            f"({', '.join(f'{x * 1000:.0f}' for x in lg)}) | ≤ 2 s "
            f"{'met' if max(lg) <= 2 else 'NOT met'} | {statistics.median(dn):.2f} s "
            f"({', '.join(f'{x:.2f}' for x in dn)}) | ≤ 10 s "
            f"{'met' if max(dn) <= 10 else 'NOT met'} | {statistics.median(cp):.2f} |")
    lines += ["", f"Prepared state checked with `fordeler audit verify`: {verify}. Raw fsync in "
              f"the same run: {f1[0]:.0f}/s (median {f1[1]:.3f} ms).", "",
              rc.load_footer(load_start, cpu_start)]
    table = "\n".join(lines)
    rc.publish("recovery.py", machine, table, args.output)
    return 0


if __name__ == "__main__":
    rc.main_entry(main)
