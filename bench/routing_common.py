"""Shared parts of the routing benchmarks (bench/routing_latency.py, routing_throughput.py,
recovery.py): a fordelerd with accounts and routes in a bench directory, trigger files, inotify,
the audit database read-only, the machine's raw fsync rate, and the markdown footer.

Process handling, machine facts and the private OpenSSH sshd come from bench/sftp_throughput.py
(imported, not copied). Every wait is bounded; only 127.0.0.1 is used.
"""

import ctypes
import ctypes.util
import datetime
import hashlib
import json
import os
import select
import shlex
import shutil
import signal
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sftp_throughput as st  # noqa: E402  (machine_info, OpenSSH, ensure_user, run, log, ...)

BenchError = st.BenchError
log = st.log
main_entry = st.main_entry
run = st.run
wait_for = st.wait_for
free_port = st.free_port

REPO = st.REPO
SFTP_NS = "http://serviceplatformen.dk/xml/wsdl/soap11/SFTP/1/types"
STEP_DONE = 6  # TransferStep::kDone as stored in transfers.step


def default_fordelerd(arg):
    if arg:
        return os.path.abspath(arg)
    for cand in (os.environ.get("FORDELERD"), "/tmp/build-bench2/daemon/fordelerd",
                 f"{REPO}/build/daemon/fordelerd", "/tmp/build-bench/daemon/fordelerd"):
        if cand and os.access(cand, os.X_OK):
            return os.path.abspath(cand)
    sys.exit("fordelerd not found: pass --fordelerd PATH")


def bench_sender(fordelerd, path=None):
    """fordeler_bench_sender (bench/sender.cc): `path`, else the one built beside `fordelerd`
    (BUILD/daemon/fordelerd -> BUILD/bench/fordeler_bench_sender). Exits when it is missing."""
    sender = os.path.abspath(path) if path else os.path.join(
        os.path.dirname(os.path.dirname(fordelerd)), "bench", "fordeler_bench_sender")
    if not os.access(sender, os.X_OK):
        sys.exit(f"{sender} not found: build the target fordeler_bench_sender, "
                 "or pass --client PATH")
    return sender


def bench_sender_argv(sender, port, key, cipher, data_path, sha256, duration, start_at, jobs):
    """The command line of fordeler_bench_sender: `jobs` are (user, folder, prefix, account,
    recipient); the senders start at Unix time `start_at` and send for `duration` seconds. It
    prints "PAIRS CPU_SECONDS"."""
    return [sender, str(port), key, cipher, data_path, sha256, str(duration),
            f"{start_at:.3f}"] + [":".join(j) for j in jobs]


def trigger_xml(name, size, sender, recipients, sha256=None,
                inf_ref="FLISOekonomiAflever_1"):
    """A trigger file (contract §3) with fordeler's <Sha256> extension when `sha256` is given."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             f'<ns2:Trigger xmlns:ns2="{SFTP_NS}">', "  <FileDescriptor>",
             f"    <FileName>{name}</FileName>", f"    <SizeInBytes>{size}</SizeInBytes>",
             f"    <Sender>{sender}</Sender>"]
    lines += [f"    <Recipients>{r}</Recipients>" for r in recipients]
    if sha256:
        lines.append(f"    <Sha256>{sha256}</Sha256>")
    lines += ["  </FileDescriptor>", "  <FileContentDescriptor>", "    <SFTPDynamicRoutingInfo>",
              f"      <InfRef>{inf_ref}</InfRef>", "    </SFTPDynamicRoutingInfo>",
              "  </FileContentDescriptor>", "</ns2:Trigger>"]
    return ("\n".join(lines) + "\n").encode()


def parse_settings(items):
    """["server.threads=4", ...] -> {"server": ["threads = 4"]}, for Daemon(settings=...)."""
    settings = {}
    for item in items:
        key, sep, value = item.partition("=")
        table, dot, name = key.partition(".")
        if not sep or not dot or not table or not name:
            sys.exit(f"--set {item!r}: expected TABLE.KEY=VALUE")
        settings.setdefault(table.strip(), []).append(f"{name.strip()} = {value.strip()}")
    return settings


class Daemon:
    """fordelerd with senders, recipients and one route per sender, in `root`.

    routes: {sender: [recipients]}. All accounts share one client key. The listen port is fixed
    in advance (free_port) so that a client can try to log in before the daemon listens.
    `settings`: extra TOML lines per table, e.g. {"server": ["threads = 4"]}.
    """

    def __init__(self, binary, root, client_pub, routes, port=None, settings=None):
        self.binary, self.root, self.routes = binary, root, routes
        self.port = port or free_port()
        os.makedirs(f"{root}/keys", exist_ok=True)
        os.makedirs(f"{root}/state", exist_ok=True)
        if not os.path.exists(f"{root}/keys/host_ed25519"):
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bench-host",
                 "-f", f"{root}/keys/host_ed25519"])
        shutil.copy(client_pub, f"{root}/keys/client.pub")
        accounts = list(routes)
        for rs in routes.values():
            accounts += [r for r in rs if r not in accounts]
        self.accounts = accounts
        settings = settings or {}
        # A setting given for the database's path (e.g. on another file system) replaces ours.
        db_path = next((line.split("=", 1)[1].strip().strip('"')
                        for line in settings.get("database", [])
                        if line.split("=", 1)[0].strip() == "path"),
                       "state/audit.db")
        cfg = [f'[server]\nlisten = ["127.0.0.1:{self.port}"]\nhost_keys = ["keys/host_ed25519"]\n',
               '[storage]\nroot = "state"\n', '[database]\n']
        if db_path == "state/audit.db":
            cfg[2] += 'path = "state/audit.db"\n'
        cfg += [f"[{table}]\n" + "\n".join(lines) + "\n" for table, lines in settings.items()
                if table not in ("server", "storage", "database")]
        for i, table in enumerate(("server", "storage", "database")):
            cfg[i] += "".join(line + "\n" for line in settings.get(table, []))
        for a in accounts:
            cfg.append(f'[[account]]\nid = "{a}"\nauthority = "urn:oio:cvr-nr:55133018"\n'
                       f'it_system = "{a}"\nauthorized_keys = "keys/client.pub"\n')
        cfg.append(open(f"{REPO}/conf.d/flis-data-areas.toml").read())
        for s, rs in routes.items():
            cfg.append(f'[[route]]\nid = "route-{s}"\ndata_area = "oekonomi"\nsender = "{s}"\n'
                       f'authorities = ["*"]\nrecipients = {json.dumps(rs)}\n')
        self.config = f"{root}/fordeler.toml"
        with open(self.config, "w") as f:
            f.write("\n".join(cfg))
        self.db = os.path.join(root, db_path)
        self.log_path = f"{root}/fordelerd.log"
        self.proc = None
        self.pid = None

    def in_dir(self, account):
        return f"{self.root}/state/accounts/{account}/IN"

    def out_dir(self, account):
        return f"{self.root}/state/accounts/{account}/OUT"

    def command(self):
        return [self.binary, "--config", self.config]

    def spawn(self, prefix=(), env=None):
        """Starts the daemon (optionally under `prefix`, e.g. strace) without waiting."""
        self._log_offset = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        self._log = open(self.log_path, "ab")
        e = dict(os.environ)
        e.pop("FORDELER_CRASH_AT", None)
        e.update(env or {})
        self.proc = subprocess.Popen(list(prefix) + self.command(), stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True, env=e)
        self.pid = self.proc.pid
        return self.proc

    def start(self, prefix=(), env=None, timeout=30):
        self.spawn(prefix, env)
        wait_for(lambda: "event=ready" in self.log_text(since_start=True), timeout,
                 "fordelerd event=ready", self.proc)
        if prefix:  # the daemon is strace's child
            self.pid = self.daemon_pid()
            if self.pid == self.proc.pid:
                raise BenchError("fordelerd not found under " + prefix[0])
        return self

    def daemon_pid(self):
        # The main thread's name is the binary's file name, cut to 15 characters by the kernel
        # (a copy named fordelerd-before for an A/B run is "fordelerd-befor").
        comm = os.path.basename(self.binary)[:15]
        for pid in st.descendants(self.proc.pid) + [self.proc.pid]:
            if st.OpenSSH._comm(pid) == comm:
                return pid
        return self.proc.pid

    def log_text(self, since_start=False):
        with open(self.log_path, errors="replace") as f:
            if since_start:
                f.seek(self._log_offset)
            return f.read()

    def stop(self, timeout=30):
        if self.proc and self.proc.poll() is None:
            # Under a wrapper (strace) the daemon itself gets the signal; the wrapper follows.
            os.kill(self.pid or self.proc.pid, signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout)
                if rc != 0:
                    log(f"fordelerd exited with {rc} after SIGTERM (see {self.log_path})")
            except subprocess.TimeoutExpired:
                log(f"fordelerd ignored SIGTERM for {timeout} s; killing it")
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        if self.proc is not None and getattr(self, "_log", None):
            self._log.close()

    def cpu_seconds(self):
        s = st.proc_stat(self.pid)
        return s[0] if s else float("nan")

    # --- the audit database, read-only (the daemon writes it) ---
    def query(self, sql, params=(), timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)
                try:
                    return con.execute(sql, params).fetchall()
                finally:
                    con.close()
            except sqlite3.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def count_done(self):
        return self.query("SELECT count(*) FROM transfers WHERE step = ?", (STEP_DONE,))[0][0]


# ---------------------------------------------------------------------------------------------
# inotify (ctypes): the time a name appears in a directory, without spinning a CPU

IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


class Inotify:
    def __init__(self):
        self.fd = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        self.wd = {}
        self.poller = select.poll()
        self.poller.register(self.fd, select.POLLIN)

    def watch(self, path, mask=IN_MOVED_TO | IN_CREATE):
        wd = _libc.inotify_add_watch(self.fd, os.fsencode(path), mask)
        if wd < 0:
            raise OSError(ctypes.get_errno(), f"inotify_add_watch {path}")
        self.wd[wd] = path
        return wd

    def read(self, timeout):
        """[(time_ns, dir, name)] for the events available within `timeout` s (may be [])."""
        if not self.poller.poll(int(timeout * 1000)):
            return []
        now = time.perf_counter_ns()
        try:
            data = os.read(self.fd, 1 << 16)
        except BlockingIOError:
            return []
        out, i = [], 0
        while i + 16 <= len(data):
            wd, _mask, _cookie, ln = struct.unpack_from("iIII", data, i)
            name = data[i + 16:i + 16 + ln].rstrip(b"\0").decode(errors="replace")
            out.append((now, self.wd.get(wd), name))
            i += 16 + ln
        return out

    def close(self):
        os.close(self.fd)


# ---------------------------------------------------------------------------------------------
# The machine: raw fsync rate on the bench directory's filesystem

def fsync_rate(directory, count=2000, threads=1, timeout=120):
    """write(4 KiB)+fsync of a small file, `count` times in total over `threads` threads (at least
    once each), each on its own file (overwritten in place). Returns (fsyncs/s, median ms,
    p99 ms). REQUIRES: count > 0."""
    per = max(1, count // threads)
    lat = []
    lock = threading.Lock()
    deadline = time.monotonic() + timeout
    buf = os.urandom(4096)

    def worker(k):
        path = f"{directory}/fsync-probe-{k}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        mine = []
        try:
            for _ in range(per):
                if time.monotonic() > deadline:
                    break
                t0 = time.perf_counter()
                os.pwrite(fd, buf, 0)
                os.fsync(fd)
                mine.append(time.perf_counter() - t0)
        finally:
            os.close(fd)
            os.unlink(path)
        with lock:
            lat.extend(mine)

    t0 = time.perf_counter()
    ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout + 10)
    elapsed = time.perf_counter() - t0
    lat.sort()
    return (len(lat) / elapsed, statistics.median(lat) * 1e3, pct(lat, 99) * 1e3)


def dir_fsync_rate(directory, count=1000, timeout=120):
    """create+write+fsync a small file, rename it, fsync the directory (WriteFileDurably's
    pattern): returns (such writes/s, median ms)."""
    d = f"{directory}/dirsync-probe"
    os.makedirs(d, exist_ok=True)
    dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    lat = []
    deadline = time.monotonic() + timeout
    t0 = time.perf_counter()
    try:
        for i in range(count):
            if time.monotonic() > deadline:
                break
            a = time.perf_counter()
            fd = os.open(f"{d}/tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.write(fd, b"x" * 600)
            os.fsync(fd)
            os.close(fd)
            os.rename(f"{d}/tmp", f"{d}/f{i}")
            os.fsync(dfd)
            lat.append(time.perf_counter() - a)
    finally:
        os.close(dfd)
        shutil.rmtree(d, ignore_errors=True)
    return len(lat) / (time.perf_counter() - t0), statistics.median(lat) * 1e3


def pct(sorted_values, p):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, int(round(p / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def machine_lines(fordelerd, base):
    info = st.machine_info()
    df = run(["df", "-T", base]).stdout.strip().splitlines()[-1].split()
    mount = "?"
    with open("/proc/mounts") as f:
        for line in f:
            p = line.split()
            if p[0] == df[0] and p[1] == df[-1]:
                mount = p[3]
    dev = os.path.basename(df[0])
    journal = "tmpfs: fsync is a no-op" if df[1] == "tmpfs" else (
        "with a journal (jbd2)" if any(j.startswith(dev + "-") for j in os.listdir("/proc/fs/jbd2"))
        else "NO journal (no jbd2 for this device)")
    if dev.startswith("loop"):
        backing = run(["losetup", "-n", "-O", "BACK-FILE", df[0]], check=False).stdout.strip()
        journal += f"; loop device backed by {backing}"
    ver = run([fordelerd, "--version"], check=False).stdout.strip()
    try:
        commit = run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], check=False).stdout.strip()
        dirty = run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                    check=False).stdout.strip()
        commit += " + uncommitted changes" if dirty else ""
    except Exception:  # noqa: BLE001
        commit = "?"
    return [
        f"- CPU: {info['cpu']}",
        f"- memory: {info['memory']}; kernel {info['kernel']}; {info['os']}",
        f"- disk: {df[0]} {df[1]} mounted on {df[-1]} ({mount}), {journal}",
        f"- packages: {info['packages']}",
        f"- fordelerd: {ver} ({fordelerd}; working tree at {commit})",
    ]


def bench_dir(workdir):
    base = tempfile.mkdtemp(prefix="fordeler-bench.", dir=workdir)
    os.chmod(base, 0o755)
    return base


def remove_bench_dir(base, keep):
    """Called from a `finally:`: removes the bench directory, unless --keep was given or the run
    is failing (an exception is on its way out), when its logs are what tells why."""
    failing = sys.exc_info()[0] is not None
    if keep or failing:
        log(f"kept {base}" + (" (the run failed: the daemon's log and state are there)"
                              if failing and not keep else ""))
    else:
        shutil.rmtree(base, ignore_errors=True)


def client_key(base):
    cdir = f"{base}/client"
    os.makedirs(cdir, exist_ok=True)
    key = f"{cdir}/id_ed25519"
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bench-client", "-f", key])
    return key


def install_signal_handlers():
    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)


def load_footer(load_start, cpu_start):
    cpu_end = st.cpu_counters()
    d = {k: cpu_end[k] - cpu_start[k] for k in cpu_end}
    busy = 100.0 * (d["total"] - d["idle"]) / max(d["total"], 1)
    steal = 100.0 * d["steal"] / max(d["total"], 1)
    return (f"Load average (1/5/15 min): {load_start} at start, {st.loadavg()} at end; all CPUs "
            f"{busy:.0f}% busy over the run (this benchmark included), {steal:.1f}% steal; "
            f"nice {os.nice(0)}.")


def command_line(script):
    nice = os.nice(0)
    return ("sudo " + (f"nice -n {nice} " if nice else "") + f"/usr/bin/python3 bench/{script} "
            + shlex.join(sys.argv[1:]))


def publish(script, machine, table, output):
    """Prints the report (machine, command line, results) and, with --output, writes it there
    as a markdown snippet."""
    cmdline = command_line(script)
    print("\n" + "\n".join(machine) + f"\n\nCommand: {cmdline}\n\n{table}")
    if output:
        with open(output, "w") as f:
            f.write("Machine:\n\n" + "\n".join(machine) +
                    f"\n\nCommand:\n\n```sh\n{cmdline}\n```\n\n{table}\n")
        log(f"wrote {output}")


def now_text():
    return f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}"


def sha256_bytes(b):
    return hashlib.sha256(b).hexdigest()
