#!/usr/bin/python3
"""Burst fairness: how long one sender's transfer waits while other senders upload as fast as
they can.

Seven senders (fordeler_bench_sender, bench/sender.cc) send 4 KiB data files and triggers for
--duration seconds, far faster than a durable disk routes them; from 3 s into that burst an
eighth sender (paramiko, one session) sends --count transfers, one a second, each timed from its
trigger's CLOSE reply until its `<name>.metadata` appears in the recipient's `/IN` (polled every
2 ms). Run as root; see bench/README.md. A benchmark, run by hand: it asserts nothing about
timing.
"""

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import time

import routing_common as rc


def main():
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("--fordelerd",
                    help="daemon binary (default: $FORDELERD, build/daemon/fordelerd)")
    ap.add_argument("--client",
                    help="fordeler_bench_sender (default: BUILD/bench/ beside fordelerd)")
    ap.add_argument("--workdir", default="/var/lib",
                    help="parent of the bench directory (/var/lib)")
    ap.add_argument("--duration", type=float, default=14.0, help="seconds of the burst (14)")
    ap.add_argument("--count", type=int, default=8, help="the lone sender's transfers (8)")
    args = ap.parse_args()
    fordelerd = rc.default_fordelerd(args.fordelerd)
    client = rc.bench_sender(fordelerd, args.client)
    rc.install_signal_handlers()
    import paramiko

    base = rc.bench_dir(args.workdir)
    key = rc.client_key(base)
    d = rc.Daemon(fordelerd, f"{base}/fordeler", key + ".pub",
                  {f"s{i}": [f"r{i % 2}"] for i in range(8)})
    burst = None
    try:
        d.start()
        data = os.urandom(4096)
        sha = hashlib.sha256(data).hexdigest()
        with open(f"{base}/data", "wb") as f:
            f.write(data)
        start_at = time.time() + 1.0
        burst = subprocess.Popen(
            rc.bench_sender_argv(client, d.port, key, "aes128-gcm@openssh.com", f"{base}/data", sha,
                                 args.duration, start_at,
                                 [(f"s{i}", "OUT", "b_", f"s{i}", f"r{i % 2}") for i in range(7)]),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        transport = paramiko.Transport(("127.0.0.1", d.port))
        transport.connect(username="s7", pkey=paramiko.Ed25519Key.from_private_key_file(key))
        sftp = paramiko.SFTPClient.from_transport(transport)
        time.sleep(max(0.0, start_at + 3 - time.time()))
        waits = []
        for n in range(args.count):
            name = f"lone_{n}.csv"
            with sftp.open(f"OUT/{name}", "wb") as f:
                f.write(data)
            with sftp.open(f"OUT/{name}.trigger", "wb") as f:
                f.write(rc.trigger_xml(name, len(data), "s7", ["r1"], sha256=sha))
            t0 = time.monotonic()
            metadata = f"{d.root}/state/accounts/r1/IN/{name}.metadata"
            while not os.path.exists(metadata) and time.monotonic() - t0 < 300:
                time.sleep(0.002)
            waits.append(time.monotonic() - t0)
            in_burst = time.time() < start_at + args.duration
            rc.log(f"lone transfer {n}: metadata after {waits[-1]:.3f} s"
                   f"{'' if in_burst else ' (the burst is over)'}")
            time.sleep(max(0.0, 1.0 - waits[-1]))
        sftp.close()
        transport.close()
        out, err = burst.communicate(timeout=args.duration + 120)
        if burst.returncode != 0:
            raise rc.BenchError(f"burst client: {err.strip()}")
        pairs = int(out.split()[0])
        rc.log(f"burst: {pairs} pairs in {args.duration:.0f} s ({pairs / args.duration:.0f}/s)")
        print(f"lone sender, trigger closed -> metadata (s): "
              f"{', '.join(f'{w:.3f}' for w in waits)}; median {statistics.median(waits):.3f}")
    finally:
        if burst is not None and burst.poll() is None:
            burst.kill()
            burst.wait(10)
        d.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    rc.main_entry(main)
