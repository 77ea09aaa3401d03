#!/usr/bin/python3
"""SFTP throughput: fordelerd against a stock OpenSSH sshd (internal-sftp, chrooted user).

Starts both servers on 127.0.0.1 in one run, uploads and downloads the same file of random bytes
with the same OpenSSH `sftp` client command, interleaving the two servers, and prints the median
MB/s (1 MB = 10^6 bytes) with min and max, the ratio fordeler/OpenSSH, the servers' CPU time, and
their peak RSS. Every transfer is checked with SHA-256. Run as root; see bench/README.md.

This is a benchmark run by hand, not a test: it asserts nothing about timing.
"""

import argparse
import ctypes
import datetime
import hashlib
import os
import platform
import pwd
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")
REMOTE_NAME = "bench.bin"


class BenchError(Exception):
    pass


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def parse_size(text):
    m = re.fullmatch(r"\s*(\d+)\s*([KMGT]i?B?|B)?\s*", text, re.IGNORECASE)
    if not m:
        raise argparse.ArgumentTypeError(f"bad size {text!r} (examples: 1GiB, 256MiB, 1000000)")
    n = int(m.group(1))
    unit = (m.group(2) or "B").upper().rstrip("B")
    mult = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
            "KI": 2**10, "MI": 2**20, "GI": 2**30, "TI": 2**40}[unit]
    if n * mult <= 0:
        raise argparse.ArgumentTypeError("size must be positive")
    return n * mult


def human_size(n):
    for unit, mult in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= mult and n % mult == 0:
            return f"{n // mult} {unit}"
    return f"{n} B"


def run(cmd, timeout=60, check=True, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise BenchError(f"{shlex.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout, what, proc=None, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        if proc is not None and proc.poll() is not None:
            raise BenchError(f"{what}: process exited with {proc.returncode}")
        time.sleep(interval)
    raise BenchError(f"timed out after {timeout}s waiting for {what}")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 << 20):
            h.update(chunk)
    return h.hexdigest()


def proc_stat(pid):
    """(utime+stime, cutime+cstime) in seconds, or None if the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = data[data.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); utime=14, stime=15, cutime=16, cstime=17
    ut, st, cut, cst = (int(x) for x in fields[11:15])
    return (ut + st) / CLK_TCK, (cut + cst) / CLK_TCK


def proc_status(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                out[k] = v.strip()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return out


def kib(status, key):
    v = status.get(key, "0 kB").split()
    return int(v[0]) if v else 0


def descendants(root):
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                data = f.read()
        except OSError:
            continue
        ppid = int(data[data.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


class RssSampler:
    """Samples VmHWM of the sshd session processes while a transfer runs (they exit with it)."""

    def __init__(self, root_pid, session_uid):
        self.root_pid, self.session_uid = root_pid, session_uid
        self.peak = {"session": 0, "monitor": 0}
        self._stop = threading.Event()
        self._thread = None

    def __enter__(self):
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)

    def _loop(self):
        while not self._stop.wait(0.1):
            for pid in descendants(self.root_pid):
                st = proc_status(pid)
                if not st:
                    continue
                uid = int(st.get("Uid", "0").split()[0])
                role = "session" if uid == self.session_uid else "monitor"
                self.peak[role] = max(self.peak[role], kib(st, "VmHWM"))


class Server:
    label = "?"
    pid = None
    user = None
    port = None

    def remote_path(self):
        raise NotImplementedError

    def local_path(self):
        raise NotImplementedError

    def cpu_seconds(self):
        raise NotImplementedError

    def wait_idle(self, timeout):
        raise NotImplementedError


class Fordeler(Server):
    label = "fordeler"

    def __init__(self, binary, root, client_pub):
        self.binary, self.root = binary, root
        self.user = "bench"
        os.makedirs(f"{root}/keys")
        os.makedirs(f"{root}/state")
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bench-host",
             "-f", f"{root}/keys/host_ed25519"])
        shutil.copy(client_pub, f"{root}/keys/bench.pub")
        with open(f"{root}/fordeler.toml", "w") as f:
            f.write('[server]\nlisten = ["127.0.0.1:0"]\nhost_keys = ["keys/host_ed25519"]\n'
                    '[storage]\nroot = "state"\n'
                    '[http]\nlisten = []\n'  # no status page: several may run side by side
                    f'[[account]]\nid = "{self.user}"\nauthorized_keys = "keys/bench.pub"\n')
        self.log_path = f"{root}/fordelerd.log"
        self.proc = None

    def start(self):
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([self.binary, "--config", f"{self.root}/fordeler.toml"],
                                     stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.pid = self.proc.pid

        def listening():
            with open(self.log_path, errors="replace") as f:
                m = re.search(r"event=listening address=127\.0\.0\.1:(\d+)", f.read())
            return int(m.group(1)) if m else None

        self.port = wait_for(listening, 15, "fordelerd event=listening", self.proc)

    def remote_path(self):
        return f"OUT/{REMOTE_NAME}"

    def local_path(self):
        return f"{self.root}/state/accounts/{self.user}/OUT/{REMOTE_NAME}"

    def cpu_seconds(self):
        s = proc_stat(self.pid)
        return s[0] if s else float("nan")

    def count(self, event):
        with open(self.log_path, errors="replace") as f:
            return f.read().count(f"event={event} ")

    def wait_idle(self, timeout, before=None):
        # A session is over when the daemon has logged its disconnect.
        if before is not None:
            wait_for(lambda: self.count("disconnect") > before, timeout,
                     "fordelerd to log the disconnect", self.proc)

    def rss(self):
        st = proc_status(self.pid) or {}
        return kib(st, "VmHWM"), kib(st, "VmRSS"), st.get("Threads", "?")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(15)
                if rc != 0:
                    log(f"fordelerd exited with {rc} after SIGTERM (see its log)")
            except subprocess.TimeoutExpired:
                log("fordelerd ignored SIGTERM for 15 s; killing it")
                self.proc.kill()
                self.proc.wait(5)


class OpenSSH(Server):
    label = "OpenSSH"

    def __init__(self, sshd, root, client_pub, user):
        self.sshd, self.root, self.user = sshd, root, user
        os.makedirs(root, mode=0o755)
        self.chroot = f"{root}/chroot"
        os.makedirs(f"{self.chroot}/upload", mode=0o755)
        pw = pwd.getpwnam(user)
        self.uid = pw.pw_uid
        os.chown(f"{self.chroot}/upload", pw.pw_uid, pw.pw_gid)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bench-host",
             "-f", f"{root}/host_ed25519"])
        shutil.copy(client_pub, f"{root}/authorized_keys")
        os.chmod(f"{root}/authorized_keys", 0o644)
        self.port = free_port()
        self.log_path = f"{root}/sshd.log"
        self.cfg = f"{root}/sshd_config"
        with open(self.cfg, "w") as f:
            f.write(f"""\
# written by bench/sftp_throughput.py: a second, private sshd; the system one is not touched
Port {self.port}
ListenAddress 127.0.0.1
HostKey {root}/host_ed25519
PidFile {root}/sshd.pid
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin no
AllowUsers {user}
AuthorizedKeysFile {root}/authorized_keys
X11Forwarding no
AllowTcpForwarding no
LogLevel INFO
Subsystem sftp internal-sftp
Match User {user}
    ChrootDirectory {self.chroot}
    ForceCommand internal-sftp
""")
        self.proc = None

    def start(self):
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        run([self.sshd, "-t", "-f", self.cfg])
        self.proc = subprocess.Popen([self.sshd, "-D", "-f", self.cfg, "-E", self.log_path],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        self.pid = self.proc.pid

        def listening():
            try:
                with open(self.log_path, errors="replace") as f:
                    return f"Server listening on 127.0.0.1 port {self.port}" in f.read()
            except FileNotFoundError:
                return False

        wait_for(listening, 15, "sshd to listen", self.proc)

    def remote_path(self):
        return f"upload/{REMOTE_NAME}"

    def local_path(self):
        return f"{self.chroot}/upload/{REMOTE_NAME}"

    def cpu_seconds(self):
        # A session's processes end up either reaped inside sshd (then their CPU time is in
        # the listener's cutime+cstime) or, when the monitor exits without waiting for the
        # chrooted child, orphaned to this script (a child subreaper), which reaps them in
        # wait_idle and adds their rusage to orphan_cpu.
        s = proc_stat(self.pid)
        return s[0] + s[1] + self.orphan_cpu if s else float("nan")

    orphan_cpu = 0.0
    known_children = set()

    def _reap_orphans(self):
        me = os.getpid()
        alive = False
        for pid in descendants(me):
            if pid in self.known_children or self._ppid(pid) != me:
                continue
            try:
                if self._comm(pid) == "sftp" or self._comm(pid) == "ssh":
                    continue
                rpid, _, ru = os.wait4(pid, os.WNOHANG)
            except ChildProcessError:
                continue
            if rpid == 0:
                alive = True
            else:
                self.orphan_cpu += ru.ru_utime + ru.ru_stime
        return alive

    @staticmethod
    def _ppid(pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                data = f.read()
            return int(data[data.rindex(")") + 2:].split()[1])
        except OSError:
            return -1

    @staticmethod
    def _comm(pid):
        try:
            with open(f"/proc/{pid}/comm") as f:
                return f.read().strip()
        except OSError:
            return ""

    def wait_idle(self, timeout, before=None):
        wait_for(lambda: not self._reap_orphans() and not descendants(self.pid), timeout,
                 "sshd session processes to exit", self.proc)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            kids = descendants(self.pid)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            for pid in kids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def ensure_user(name):
    try:
        pwd.getpwnam(name)
        return False
    except KeyError:
        pass
    # '*' rather than useradd's default '!': with UsePAM no, sshd refuses accounts whose
    # password field starts with '!' as locked; '*' means "no password" and is not locked.
    run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
         "--shell", "/usr/sbin/nologin", "--password", "*", name])
    log(f"created system user {name} (remove with: userdel {name})")
    return True


class Client:
    def __init__(self, sftp, key, workdir):
        self.sftp, self.key, self.workdir = sftp, key, workdir
        self._n = 0

    def command(self, server, batch_file, cipher, verbose=False):
        cmd = [self.sftp, "-F", "/dev/null", "-b", batch_file, "-P", str(server.port),
               "-i", self.key, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
               "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", "LogLevel=" + ("DEBUG" if verbose else "ERROR")]
        if cipher:
            cmd += ["-o", f"Ciphers={cipher}"]
        return cmd + [f"{server.user}@127.0.0.1"]

    def session(self, server, lines, cipher, timeout, verbose=False):
        self._n += 1
        batch = f"{self.workdir}/batch{self._n}"
        with open(batch, "w") as f:
            f.write("\n".join(lines) + "\n")
        cmd = self.command(server, batch, cipher, verbose)
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        # start_new_session so a timeout kills sftp and its ssh child together.
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate(timeout=10)
            raise BenchError(f"{server.label}: sftp timed out after {timeout:.0f}s: "
                             f"{shlex.join(cmd)}")
        elapsed = time.monotonic() - t0
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if p.returncode != 0:
            raise BenchError(f"{server.label}: sftp failed ({p.returncode}): "
                             f"{shlex.join(cmd)}\n{err.strip()}")
        cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        return elapsed, cpu, err


def machine_info():
    lscpu = run(["lscpu"]).stdout
    def field(name):
        m = re.search(rf"^{name}:\s*(.+)$", lscpu, re.MULTILINE)
        return m.group(1).strip() if m else "?"
    pkgs = run(["dpkg-query", "-W", "-f", "${Package} ${Version}\\n",
                "openssh-client", "openssh-server", "libssh-4", "openssl"], check=False).stdout
    ssh_v = run(["ssh", "-V"], check=False).stderr.strip()
    try:
        with open("/etc/debian_version") as f:
            debian = f.read().strip()
    except OSError:
        debian = "?"
    mem = "?"
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) // 1024} MiB"
    cpus, cores = field(r"CPU\(s\)"), field(r"Core\(s\) per socket")
    return {
        "cpu": f"{field('Model name')} ({field('Vendor ID')}), {cpus} CPUs, "
               f"{cores} cores/socket, hypervisor {field('Hypervisor vendor')}",
        "memory": mem,
        "kernel": platform.release(),
        "os": f"Debian {debian}",
        "openssh": ssh_v,
        "packages": ", ".join(pkgs.split("\n")).strip(", "),
    }


def cpu_counters():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...
    return {"total": sum(v[:8]), "idle": v[3] + v[4], "steal": v[7]}


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def fmt_mbs(values):
    med = statistics.median(values)
    return f"{med:.0f} ({min(values):.0f}–{max(values):.0f})"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=parse_size, default=2**30,
                    help="file size, e.g. 1GiB (default), 256MiB, 1000000")
    ap.add_argument("--repeat", type=int, default=3, help="measurements per cell (default 3)")
    ap.add_argument("--ciphers", default="default,aes128-gcm@openssh.com",
                    help="comma-separated; 'default' = the client's default cipher "
                         "(default: %(default)s)")
    ap.add_argument("--fordelerd", default=os.environ.get("FORDELERD"),
                    help="fordelerd binary (default: $FORDELERD, else build/daemon/fordelerd "
                         "or /tmp/build-bench/daemon/fordelerd)")
    ap.add_argument("--sshd", default="/usr/sbin/sshd", help="sshd binary (absolute path)")
    ap.add_argument("--sftp", default="sftp", help="sftp client (default: sftp on PATH)")
    ap.add_argument("--user", default="fordeler-bench",
                    help="local system user for the chrooted OpenSSH side (created if missing)")
    ap.add_argument("--workdir", default="/var/lib",
                    help="parent of the bench directory; it and all its parents must be "
                         "root-owned and not group/world-writable (sshd's ChrootDirectory "
                         "rule), so not /tmp or /var/tmp (default: %(default)s)")
    ap.add_argument("--output", help="also write the results as a markdown snippet to this file")
    ap.add_argument("--keep", action="store_true", help="keep the bench directory (debugging)")
    args = ap.parse_args()

    if os.geteuid() != 0:
        sys.exit("run as root: the OpenSSH side needs sshd's chroot and a system user")
    if args.repeat < 1:
        sys.exit("--repeat must be at least 1")
    if not args.fordelerd:
        for cand in (f"{REPO}/build/daemon/fordelerd", "/tmp/build-bench/daemon/fordelerd"):
            if os.access(cand, os.X_OK):
                args.fordelerd = cand
                break
        else:
            sys.exit("fordelerd not found: pass --fordelerd PATH")
    args.fordelerd = os.path.abspath(args.fordelerd)
    if not os.path.isabs(args.sshd):
        sys.exit("--sshd must be an absolute path (sshd re-executes itself)")
    sftp_bin = shutil.which(args.sftp)
    if not sftp_bin:
        sys.exit(f"{args.sftp} not found")

    default_cipher = None
    m = re.search(r"^ciphers (\S+)", run(["ssh", "-F", "/dev/null", "-G", "127.0.0.1"]).stdout,
                  re.MULTILINE)
    if m:
        default_cipher = m.group(1).split(",")[0]
    ciphers = []
    for c in (x.strip() for x in args.ciphers.split(",") if x.strip()):
        if c == "default":
            # Pass no Ciphers option at all: exactly what a user's plain `sftp` negotiates.
            ciphers.append((None, f"{default_cipher or '?'} (client default)"))
        else:
            ciphers.append((c, c))

    # Turn SIGTERM/SIGHUP into SystemExit so the finally clause cleans up.
    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)

    # Become a child subreaper so that sshd session processes orphaned by their monitor are
    # reparented to us and their CPU time can be collected (see OpenSSH.cpu_seconds).
    PR_SET_CHILD_SUBREAPER = 36
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)

    started = datetime.datetime.now().astimezone()
    info = machine_info()
    load_start = loadavg()
    cpu_start = cpu_counters()
    ensure_user(args.user)
    base = tempfile.mkdtemp(prefix="fordeler-bench.", dir=args.workdir)
    os.chmod(base, 0o755)
    servers = []
    results = {}   # (cipher_label, direction, server_label) -> [MB/s]
    cpu = {}       # (cipher_label, direction, server_label) -> [server CPU s]
    client_cpu = {}
    elapsed_all = {}
    connect = {}
    ssh_rss = None
    try:
        st = os.statvfs(base)
        need = 3 * args.size + (64 << 20)
        if st.f_bavail * st.f_frsize < need:
            raise BenchError(f"{base}: need {need >> 20} MiB free")
        data = f"{base}/data"
        cdir = f"{base}/client"
        os.makedirs(data)
        os.makedirs(cdir)
        key = f"{cdir}/id_ed25519"
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bench-client", "-f", key])

        src = f"{data}/source.bin"
        log(f"writing {human_size(args.size)} of random bytes to {src}")
        h = hashlib.sha256()
        with open(src, "wb") as f:
            left = args.size
            while left:
                chunk = os.urandom(min(left, 1 << 20))
                h.update(chunk)
                f.write(chunk)
                left -= len(chunk)
        want = h.hexdigest()
        dst = f"{data}/download.bin"

        fd = Fordeler(args.fordelerd, f"{base}/fordeler", key + ".pub")
        servers.append(fd)
        oss = OpenSSH(args.sshd, f"{base}/openssh", key + ".pub", args.user)
        servers.append(oss)
        fd.start()
        oss.start()
        OpenSSH.known_children = {fd.pid, oss.pid}
        log(f"fordelerd pid {fd.pid} on 127.0.0.1:{fd.port}; "
            f"sshd pid {oss.pid} on 127.0.0.1:{oss.port}; bench dir {base}")
        client = Client(sftp_bin, key, cdir)
        sampler = RssSampler(oss.pid, oss.uid)

        # 10 MB/s is far below anything plausible on loopback: a slower transfer is a hang.
        timeout = max(60.0, args.size / 10e6)

        def one(server, lines, cipher, verbose=False):
            """One sftp session; returns only once the server side has fully finished it."""
            before = fd.count("disconnect") if server is fd else None
            cpu0 = server.cpu_seconds()
            with sampler if server is oss else _null():
                elapsed, ccpu, err = client.session(server, lines, cipher, timeout, verbose)
                server.wait_idle(15, before)
            return elapsed, server.cpu_seconds() - cpu0, ccpu, err

        # Sanity: both servers negotiate the cipher asked for, and login cost.
        for cipher, label in ciphers:
            for s in (fd, oss):
                err = one(s, ["pwd"], cipher, verbose=True)[3]
                m = re.search(r"kex: server->client cipher: (\S+)", err)
                got = m.group(1) if m else "?"
                expect = cipher or default_cipher
                if expect and got != expect:
                    raise BenchError(f"{s.label} negotiated {got}, expected {expect}")
        for s in (fd, oss):
            times = []
            for _ in range(5):
                times.append(one(s, ["pwd"], None)[0])
            connect[s.label] = statistics.median(times)

        pairs = [(fd, oss), (oss, fd)]
        for cipher, label in ciphers:
            for direction in ("upload", "download"):
                for rep in range(args.repeat):
                    # A/B then B/A: alternating the order cancels linear drift.
                    for s in pairs[rep % 2]:
                        if direction == "upload":
                            if os.path.exists(s.local_path()):
                                one(s, [f"rm {s.remote_path()}"], cipher)
                            lines = [f"put {src} {s.remote_path()}"]
                            check = s.local_path()
                        else:
                            if os.path.exists(dst):
                                os.unlink(dst)
                            lines = [f"get {s.remote_path()} {dst}"]
                            check = dst
                        os.sync()   # identical start: no dirty pages from the previous run
                        elapsed, scpu, ccpu, _ = one(s, lines, cipher)
                        got = sha256_file(check)
                        if got != want:
                            raise BenchError(f"{s.label} {direction} {label}: SHA-256 mismatch "
                                             f"({got} != {want})")
                        mbs = args.size / elapsed / 1e6
                        k = (label, direction, s.label)
                        results.setdefault(k, []).append(mbs)
                        elapsed_all.setdefault(k, []).append(elapsed)
                        cpu.setdefault(k, []).append(scpu)
                        client_cpu.setdefault(k, []).append(ccpu)
                        log(f"{label:40} {direction:8} {s.label:8} {elapsed:7.2f} s "
                            f"{mbs:7.1f} MB/s  server CPU {scpu:5.2f} s  client CPU "
                            f"{ccpu:5.2f} s  sha256 ok")
        fd_hwm, fd_rss, fd_threads = fd.rss()
        ssh_rss = dict(sampler.peak)
        if os.path.exists(dst):
            os.unlink(dst)
    finally:
        for s in reversed(servers):
            try:
                s.stop()
            except Exception as e:   # keep cleaning up
                log(f"stopping {s.label}: {e}")
        if args.keep:
            log(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)

    load_end = loadavg()
    cpu_end = cpu_counters()
    d = {k: cpu_end[k] - cpu_start[k] for k in cpu_end}
    busy = 100.0 * (d["total"] - d["idle"]) / max(d["total"], 1)
    steal = 100.0 * d["steal"] / max(d["total"], 1)
    nice = os.nice(0)
    cmdline = ("sudo " + (f"nice -n {nice} " if nice else "") +
               "/usr/bin/python3 bench/sftp_throughput.py " + shlex.join(sys.argv[1:]))
    gib = args.size / 2**30
    lines = []
    lines.append(f"Run {started:%Y-%m-%d %H:%M %Z}, {human_size(args.size)} file, "
                 f"{args.repeat} runs per cell, median (min–max) MB/s, 1 MB = 10^6 bytes; "
                 f"ratio = fordeler / OpenSSH of the medians.")
    lines.append("")
    lines.append("| cipher | direction | fordeler MB/s | OpenSSH MB/s | ratio | target | "
                 "ratio without login |")
    lines.append("|---|---|---:|---:|---:|---|---:|")
    verdicts = []
    for _, label in ciphers:
        for direction in ("upload", "download"):
            f_v = results[(label, direction, "fordeler")]
            o_v = results[(label, direction, "OpenSSH")]
            ratio = statistics.median(f_v) / statistics.median(o_v)
            target = 1.2 if direction == "upload" else 1.0
            ok = ratio >= target
            verdicts.append(ok)
            # The same ratio with each server's median login+logout time taken off every run.
            f_t = statistics.median(elapsed_all[(label, direction, "fordeler")])
            o_t = statistics.median(elapsed_all[(label, direction, "OpenSSH")])
            ratio_nl = (o_t - connect["OpenSSH"]) / (f_t - connect["fordeler"])
            lines.append(f"| {label} | {direction} | {fmt_mbs(f_v)} | {fmt_mbs(o_v)} | "
                         f"{ratio:.2f}× | ≥ {target:.1f}× {'met' if ok else 'NOT met'} | "
                         f"{ratio_nl:.2f}× |")
    lines.append("")
    lines.append("Server CPU seconds per GiB transferred (median; fordelerd: the daemon process, "
                 "all threads; OpenSSH: the sshd session processes), and the sftp+ssh client's:")
    lines.append("")
    lines.append("| cipher | direction | fordelerd CPU s/GiB | sshd CPU s/GiB | "
                 "client CPU s/GiB (vs fordeler / vs OpenSSH) |")
    lines.append("|---|---|---:|---:|---:|")
    for _, label in ciphers:
        for direction in ("upload", "download"):
            f_c = statistics.median(cpu[(label, direction, "fordeler")]) / gib
            o_c = statistics.median(cpu[(label, direction, "OpenSSH")]) / gib
            fc_c = statistics.median(client_cpu[(label, direction, "fordeler")]) / gib
            oc_c = statistics.median(client_cpu[(label, direction, "OpenSSH")]) / gib
            lines.append(f"| {label} | {direction} | {f_c:.2f} | {o_c:.2f} | "
                         f"{fc_c:.2f} / {oc_c:.2f} |")
    lines.append("")
    lines.append(f"Login + `pwd` + logout (median of 5; part of every timed transfer, taken off "
                 f"in the last column): "
                 f"fordeler {connect['fordeler'] * 1000:.0f} ms, "
                 f"OpenSSH {connect['OpenSSH'] * 1000:.0f} ms.")
    lines.append("")
    lines.append(f"Peak RSS: fordelerd VmHWM {fd_hwm / 1024:.1f} MiB over the whole run "
                 f"(one process, {fd_threads} threads, serving every session; VmRSS at the end "
                 f"{fd_rss / 1024:.1f} MiB). OpenSSH, per session: the chrooted internal-sftp "
                 f"process {ssh_rss['session'] / 1024:.1f} MiB, its privileged monitor "
                 f"{ssh_rss['monitor'] / 1024:.1f} MiB (sampled every 0.1 s), plus the "
                 f"listener.")
    lines.append("")
    lines.append(f"Load average (1/5/15 min): {load_start} at start, {load_end} at end; "
                 f"all CPUs {busy:.0f}% busy over the run (this benchmark included), "
                 f"{steal:.1f}% steal; the benchmark ran at nice {os.nice(0)}.")
    table = "\n".join(lines)

    machine = "\n".join([
        f"- CPU: {info['cpu']}",
        f"- memory: {info['memory']}; kernel {info['kernel']}; {info['os']}",
        f"- OpenSSH: {info['openssh']}",
        f"- packages: {info['packages']}",
        f"- fordelerd: {run([args.fordelerd, '--version'], check=False).stdout.strip()} "
        f"({args.fordelerd})",
    ])
    print()
    print(machine)
    print()
    print(f"Command: {cmdline}")
    print()
    print(table)
    if args.output:
        with open(args.output, "w") as f:
            f.write(f"Machine:\n\n{machine}\n\nCommand:\n\n```sh\n{cmdline}\n```\n\n{table}\n")
        log(f"wrote {args.output}")
    # Exit 0 whatever the ratios: this reports, it does not assert (see bench/README.md).
    return 0


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def main_entry(main_function):
    """Runs a benchmark's main() as the script: exit 2 on a BenchError, 130 on ^C."""
    try:
        sys.exit(main_function())
    except BenchError as e:
        log(f"error: {e}")
        sys.exit(2)
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main_entry(main)
