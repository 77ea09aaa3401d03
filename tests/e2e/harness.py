"""Shared harness for fordeler's end-to-end tests: real fordelerd, real clients, 127.0.0.1 only.

What it does:
  * generates SSH keys at test time with ssh-keygen (never committed),
  * writes a config (contract §9) into a per-test temp dir (all paths relative to the config),
  * starts `$FORDELERD --config FILE`, waits (bounded) for `event=listening address=HOST:PORT`,
  * on teardown sends SIGTERM, asserts exit status 0 and no sanitizer report on stderr.

Every wait here is bounded in time; every client call has a timeout.
"""

from __future__ import annotations

import atexit
import hashlib
import sqlite3
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import paramiko
import pytest
import xmltodict

START_TIMEOUT = 20.0  # seconds for fordelerd to log all its listening lines
STOP_TIMEOUT = 15.0  # seconds for fordelerd to exit after SIGTERM
CLIENT_TIMEOUT = 30.0  # seconds for one SFTP request / one client program step

SANITIZER_MARKERS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "WARNING: ThreadSanitizer",
    "SUMMARY: AddressSanitizer",
    "SUMMARY: UndefinedBehaviorSanitizer",
    "runtime error:",
    "ERROR: MemorySanitizer",
)

LISTEN_RE = re.compile(r"event=listening address=(\S+)")

# Client key specs: ssh-keygen arguments by key type. A key's name is its type, optionally with a
# prefix naming its owner: "ed25519", "flis_ed25519", "weak_rsa1024".
KEY_SPECS = {
    "ed25519": ["-t", "ed25519"],
    "ecdsa256": ["-t", "ecdsa", "-b", "256"],
    "ecdsa384": ["-t", "ecdsa", "-b", "384"],
    "ecdsa521": ["-t", "ecdsa", "-b", "521"],
    "rsa2048": ["-t", "rsa", "-b", "2048"],
    "rsa3072": ["-t", "rsa", "-b", "3072"],
    "rsa4096": ["-t", "rsa", "-b", "4096"],
    "rsa1024": ["-t", "rsa", "-b", "1024"],
}


def fordelerd_path() -> str:
    path = os.environ.get("FORDELERD")
    if not path:
        pytest.fail(
            "FORDELERD is not set: run through ctest, or export "
            "FORDELERD=/path/to/build/daemon/fordelerd (see tests/e2e/README.md)",
            pytrace=False,
        )
    if not os.access(path, os.X_OK):
        pytest.fail(f"FORDELERD={path} is not an executable file", pytrace=False)
    return path


def refused_start(config_path: Path, what: str, cwd: Path | None = None,
                  timeout: float = 20) -> str:
    """Runs fordelerd on `config_path`, which must refuse to start (exit status 1); returns its
    log. Fails the test, naming `what`, when it starts instead."""
    proc = subprocess.Popen([fordelerd_path(), "--config", str(config_path)], cwd=cwd,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()
        _, err = proc.communicate(timeout=timeout)
        pytest.fail(f"fordelerd started {what}:\n{err[-3000:]}")
    assert proc.returncode == 1, err
    assert "event=not_started" in err, err
    return err


# --------------------------------------------------------------------------------------------
# Keys


def keygen_many(directory: Path, names: Iterable[str], prefix: str = "") -> dict[str, Path]:
    """Generates several key pairs in parallel; returns name -> private key path."""
    directory.mkdir(parents=True, exist_ok=True)
    procs = []
    out = {}
    for name in names:
        path = directory / f"{prefix}{name}"
        out[name] = path
        procs.append(
            (
                name,
                subprocess.Popen(
                    ["ssh-keygen", "-q", *KEY_SPECS[name.split("_")[-1]], "-N", "", "-C",
                     f"{prefix}{name}@e2e", "-f", str(path)],
                    stdin=subprocess.DEVNULL,
                ),
            )
        )
    for name, p in procs:
        rc = p.wait(timeout=180)
        assert rc == 0, f"ssh-keygen for {name} failed with {rc}"
    return out


def pubkey_line(private_key: Path) -> str:
    return Path(str(private_key) + ".pub").read_text().strip()


def load_pkey(private_key: Path) -> paramiko.PKey:
    text = Path(private_key).read_text()
    pub = pubkey_line(private_key)
    if pub.startswith("ssh-ed25519"):
        return paramiko.Ed25519Key.from_private_key_file(str(private_key))
    if pub.startswith("ecdsa-"):
        return paramiko.ECDSAKey.from_private_key_file(str(private_key))
    if pub.startswith("ssh-rsa"):
        return paramiko.RSAKey.from_private_key_file(str(private_key))
    raise ValueError(f"unknown key type in {private_key}: {text[:40]}")


@dataclass
class KeySet:
    """Client keys and host keys for one test module (generated once, at test time)."""

    directory: Path
    client: dict[str, Path]
    host_ed25519: Path
    host_rsa: Path

    def key(self, name: str) -> Path:
        return self.client[name]


def make_keyset(directory: Path, client_names: Iterable[str]) -> KeySet:
    names = list(client_names)
    host_dir = directory / "host"
    host_dir.mkdir(parents=True, exist_ok=True)
    # Host keys and client keys are generated concurrently (RSA 4096 dominates).
    host_ed = host_dir / "host_ed25519"
    host_rsa = host_dir / "host_rsa"
    procs = [
        subprocess.Popen(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "host",
                          "-f", str(host_ed)], stdin=subprocess.DEVNULL),
        subprocess.Popen(["ssh-keygen", "-q", "-t", "rsa", "-b", "3072", "-N", "", "-C", "host",
                          "-f", str(host_rsa)], stdin=subprocess.DEVNULL),
    ]
    client = keygen_many(directory / "client", names)
    for p in procs:
        assert p.wait(timeout=180) == 0, "host key generation failed"
    return KeySet(directory, client, host_ed, host_rsa)


# --------------------------------------------------------------------------------------------
# Config


@dataclass
class AccountSpec:
    id: str
    keys: list[Path] = field(default_factory=list)  # private key paths; their .pub is configured
    use_file: bool = False  # True: write an authorized_keys file, else inline `keys = [...]`
    extra: str = ""  # extra TOML lines inside [[account]]
    options: str = ""  # authorized_keys options put before every key, e.g. 'from="127.0.0.1"'

    def key_lines(self) -> list[str]:
        prefix = self.options + " " if self.options else ""
        return [prefix + pubkey_line(k) for k in self.keys]


def toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_config(
    workdir: Path,
    accounts: list[AccountSpec],
    listen: list[str],
    server_extra: str = "",
    extra: str = "",
) -> str:
    """Writes authorized_keys files for accounts that want one and returns the TOML text."""
    lines = [
        "[server]",
        "listen = [" + ", ".join(toml_str(a) for a in listen) + "]",
        'host_keys = ["keys/host_ed25519", "keys/host_rsa"]',
    ]
    if server_extra:
        lines += server_extra.strip("\n").split("\n")
    lines += ["", "[storage]", 'root = "state"', "", "[database]", 'path = "state/audit.db"', ""]
    for acc in accounts:
        lines += ["[[account]]", f"id = {toml_str(acc.id)}"]
        if acc.use_file:
            rel = f"keys/{acc.id}.pub"
            (workdir / rel).write_text("".join(line + "\n" for line in acc.key_lines()))
            lines.append(f"authorized_keys = {toml_str(rel)}")
        else:
            lines.append("keys = [" + ", ".join(toml_str(line) for line in acc.key_lines()) + "]")
        if acc.extra:
            lines += acc.extra.strip("\n").split("\n")
        lines.append("")
    if "[http]" not in extra:  # not the default 127.0.0.1:9122: tests run side by side
        lines += ["[http]", "listen = []", ""]
    if extra:
        lines += extra.strip("\n").split("\n")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# Daemon


def parse_address(text: str) -> tuple[str, int]:
    m = re.fullmatch(r"\[([0-9a-fA-F:.]+)\]:(\d+)", text) or re.fullmatch(r"([^:\[\]]+):(\d+)", text)
    assert m, f"cannot parse listening address {text!r}"
    return m.group(1), int(m.group(2))


def have_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


_RUNNING: set[subprocess.Popen] = set()
# Daemons started so far, newest last: a failing test's report shows their logs (conftest.py).
STARTED: list["Daemon"] = []


@atexit.register
def _kill_leftovers() -> None:
    """Safety net if pytest dies before teardown: no daemon outlives the test run."""
    for p in list(_RUNNING):
        if p.poll() is None:
            p.kill()


@dataclass(frozen=True)
class RunAs:
    """An unprivileged user to run fordelerd as, the way the systemd unit runs it (its own user,
    no capabilities, UMask=0027), with a copy of the binary where that user can reach it."""
    uid: int
    gid: int
    binary: Path

    @staticmethod
    def user(name: str, binary: Path) -> "RunAs":
        entry = pwd.getpwnam(name)
        return RunAs(entry.pw_uid, entry.pw_gid, binary)


class Daemon:
    """One fordelerd process with its own temp dir, config, state and stderr log."""

    def __init__(self, workdir: Path, keys: KeySet, accounts: list[AccountSpec],
                 listen: list[str] | None = None, server_extra: str = "", extra: str = "",
                 run_as: RunAs | None = None):
        self.workdir = workdir
        self.keys = keys
        self.accounts = accounts
        self.listen = listen or ["127.0.0.1:0"]
        self.server_extra = server_extra
        self.extra = extra
        self.config_path = workdir / "config.toml"
        self.state = workdir / "state"
        self.stderr_path = workdir / "fordelerd.stderr"
        self.proc: subprocess.Popen | None = None
        self.addresses: list[tuple[str, int]] = []
        self._stderr_file = None
        (workdir / "keys").mkdir(parents=True, exist_ok=True)
        self.state.mkdir(parents=True, exist_ok=True)  # the operator creates the storage root
        for src, dst in ((keys.host_ed25519, "host_ed25519"), (keys.host_rsa, "host_rsa")):
            shutil.copyfile(src, workdir / "keys" / dst)
            os.chmod(workdir / "keys" / dst, 0o600)
            shutil.copyfile(str(src) + ".pub", workdir / "keys" / (dst + ".pub"))
        self.write_config()
        self.run_as = run_as
        if run_as is not None:  # its host keys, state and config are its own
            for path in [workdir, *workdir.rglob("*")]:
                os.chown(path, run_as.uid, run_as.gid)

    # -- config ------------------------------------------------------------------------------
    def write_config(self, text: str | None = None) -> None:
        if text is None:
            text = render_config(self.workdir, self.accounts, self.listen,
                                 self.server_extra, self.extra)
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.config_path)

    # -- process -----------------------------------------------------------------------------
    def start(self, timeout: float = START_TIMEOUT, env: dict[str, str] | None = None) -> "Daemon":
        """Starts fordelerd; `env` adds environment variables (e.g. FORDELER_CRASH_AT) for this
        start only: FORDELER_CRASH_AT is never inherited from the test's own environment."""
        assert self.proc is None or self.proc.poll() is not None, "daemon already running"
        self._close_log()  # a previous process that died (crash test) left its log open
        self._stderr_offset = self.stderr_path.stat().st_size if self.stderr_path.exists() else 0
        self._stderr_file = open(self.stderr_path, "ab")
        proc_env = dict(os.environ)
        proc_env.pop("FORDELER_CRASH_AT", None)
        proc_env.update(env or {})
        as_user = {}
        binary = fordelerd_path()
        if self.run_as is not None:
            as_user = dict(user=self.run_as.uid, group=self.run_as.gid, extra_groups=[],
                           umask=0o027)
            binary = str(self.run_as.binary)
        self.proc = subprocess.Popen(
            [binary, "--config", str(self.config_path)],
            cwd=self.workdir,
            env=proc_env,
            stdin=subprocess.DEVNULL,
            stdout=self._stderr_file,
            stderr=self._stderr_file,
            start_new_session=True,  # a terminal's Ctrl-C reaches pytest, not the daemon
            **as_user,
        )
        _RUNNING.add(self.proc)
        if self not in STARTED:
            STARTED.append(self)
        self.addresses = self._wait_listening(len(self.listen), timeout)
        return self

    def _wait_listening(self, count: int, timeout: float) -> list[tuple[str, int]]:
        deadline = time.monotonic() + timeout
        while True:
            text = self.stderr_since_start()
            found = LISTEN_RE.findall(text)
            if len(found) >= count:
                return [parse_address(a) for a in found[:count]]
            rc = self.proc.poll()
            if rc is not None:
                pytest.fail(f"fordelerd exited with {rc} before listening; stderr:\n{text}",
                            pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(f"fordelerd did not log {count} 'event=listening' line(s) within "
                            f"{timeout}s; stderr:\n{text}", pytrace=False)
            time.sleep(0.02)

    @property
    def host(self) -> str:
        return self.addresses[0][0]

    @property
    def port(self) -> int:
        return self.addresses[0][1]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stderr_text(self) -> str:
        if not self.stderr_path.exists():
            return ""
        return self.stderr_path.read_bytes().decode("utf-8", "replace")

    def stderr_since_start(self) -> str:
        if not self.stderr_path.exists():
            return ""
        return self.stderr_path.read_bytes()[self._stderr_offset:].decode("utf-8", "replace")

    def stderr_size(self) -> int:
        return self.stderr_path.stat().st_size if self.stderr_path.exists() else 0

    def wait_log(self, pattern: str, since: int = 0, timeout: float = 10.0) -> re.Match:
        """Waits until stderr (from byte offset `since`) matches the regex `pattern`."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            text = self.stderr_path.read_bytes()[since:].decode("utf-8", "replace")
            m = rx.search(text)
            if m:
                return m
            if time.monotonic() > deadline:
                pytest.fail(f"no log line matching {pattern!r} within {timeout}s; stderr since "
                            f"offset {since}:\n{text}", pytrace=False)
            time.sleep(0.05)

    def send_signal(self, sig: int) -> None:
        assert self.running(), f"fordelerd is not running; stderr:\n{self.stderr_text()}"
        self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int:
        """Sends `sig`, waits (bounded) for exit, returns the exit status (negative: signal)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                self._close_log()
                pytest.fail(f"fordelerd did not exit within {timeout}s of signal {sig}; "
                            f"stderr:\n{self.stderr_text()[-4000:]}", pytrace=False)
        self._close_log()
        return self.proc.returncode

    def wait_exit(self, timeout: float) -> int:
        """Waits (bounded) for the process to exit by itself; returns its exit status."""
        assert self.proc is not None, "daemon never started"
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"fordelerd did not exit within {timeout}s; stderr:\n"
                        f"{self.stderr_since_start()[-4000:]}", pytrace=False)
        self._close_log()
        return rc

    def kill_quietly(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self._close_log()

    def _close_log(self) -> None:
        if self._stderr_file is not None:
            self._stderr_file.close()
            self._stderr_file = None

    def assert_clean_exit(self) -> None:
        """SIGTERM → exit status 0, and no sanitizer report anywhere in stderr."""
        was_running = self.running()
        rc = self.stop()
        text = self.stderr_text()
        assert was_running, f"fordelerd died before teardown (status {rc}); stderr:\n{text[-4000:]}"
        assert rc == 0, f"fordelerd exited with {rc} after SIGTERM (want 0); stderr:\n{text[-4000:]}"
        assert_no_sanitizer_report(text)

    def own(self, *paths: Path) -> None:
        """Makes files a test planted the daemon's own, as every file under its storage root is
        in production (a no-op for a daemon running as root)."""
        if self.run_as is not None:
            for path in paths:
                os.lchown(path, self.run_as.uid, self.run_as.gid)

    # -- jails -------------------------------------------------------------------------------
    def jail(self, account: str) -> Path:
        return self.state / "accounts" / account

    def out_dir(self, account: str) -> Path:
        return self.jail(account) / "OUT"

    def in_dir(self, account: str) -> Path:
        return self.jail(account) / "IN"

    # -- clients -----------------------------------------------------------------------------
    def transport(self, user: str, key: Path | None, address: tuple[str, int] | None = None,
                  disabled_algorithms: dict | None = None) -> paramiko.Transport:
        """An authenticated paramiko Transport (raises on failure)."""
        host, port = address or self.addresses[0]
        return connect_transport(host, port, user, key, disabled_algorithms)

    def sftp(self, user: str, key: Path, address: tuple[str, int] | None = None,
             disabled_algorithms: dict | None = None) -> "Session":
        t = self.transport(user, key, address, disabled_algorithms)
        try:
            s = paramiko.SFTPClient.from_transport(t)
            s.get_channel().settimeout(CLIENT_TIMEOUT)
        except Exception:
            t.close()
            raise
        return Session(t, s)


def assert_no_sanitizer_report(text: str) -> None:
    for marker in SANITIZER_MARKERS:
        assert marker not in text, f"sanitizer report ({marker!r}) on fordelerd's stderr:\n{text[-8000:]}"


def raw_socket(host: str, port: int, timeout: float = 10.0) -> socket.socket:
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect((host, port))
    return s


def connect_transport(host: str, port: int, user: str, key: Path | None,
                      disabled_algorithms: dict | None = None,
                      authenticate: bool = True) -> paramiko.Transport:
    sock = raw_socket(host, port)
    t = paramiko.Transport(sock, disabled_algorithms=disabled_algorithms)
    t.banner_timeout = 15
    t.handshake_timeout = 15
    t.auth_timeout = 15
    try:
        t.start_client(timeout=15)
        if authenticate:
            t.auth_publickey(user, load_pkey(key))
            assert t.is_authenticated(), f"{user} not authenticated"
    except Exception:
        t.close()
        raise
    return t


class Session:
    """An authenticated paramiko transport plus its SFTP client; a context manager."""

    def __init__(self, transport: paramiko.Transport, sftp: paramiko.SFTPClient):
        self.transport = transport
        self.sftp = sftp

    def close(self) -> None:
        try:
            self.sftp.close()
        finally:
            self.transport.close()

    def __enter__(self) -> paramiko.SFTPClient:
        return self.sftp

    def __exit__(self, *exc) -> None:
        self.close()


# --------------------------------------------------------------------------------------------
# Helpers


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def random_file(path: Path, size: int) -> str:
    """Writes `size` random bytes to `path`; returns their SHA-256."""
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left > 0:
            chunk = os.urandom(min(left, 1 << 20))
            f.write(chunk)
            h.update(chunk)
            left -= len(chunk)
    return h.hexdigest()


def wait_until(pred: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for: {what}", pytrace=False)
        time.sleep(interval)


def ssh_base_options(key: Path | None) -> list[str]:
    """OpenSSH client options that isolate the test from the user's ssh config and agent."""
    opts = [
        "-F", "/dev/null",
        "-o", "StrictHostKeyChecking=no",
        "-o", "UserKnownHostsFile=/dev/null",
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "BatchMode=yes",
        "-o", "ConnectTimeout=10",
        "-o", "IdentityAgent=none",
        "-o", "IdentitiesOnly=yes",
        "-o", "PasswordAuthentication=no",
        "-o", "KbdInteractiveAuthentication=no",
    ]
    if key is not None:
        opts += ["-i", str(key)]
    return opts


def run(cmd: list[str], timeout: float = 60.0, text: bool = True,
        **kw) -> subprocess.CompletedProcess:
    """Runs a client program with a timeout; captures its output (text unless text=False)."""
    try:
        return subprocess.run(cmd, capture_output=True, text=text, timeout=timeout,
                              stdin=subprocess.DEVNULL, **kw)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{cmd[0]} did not finish within {timeout}s: {' '.join(map(str, cmd))}\n"
                    f"stdout: {e.stdout}\nstderr: {e.stderr}", pytrace=False)


# --------------------------------------------------------------------------------------------
# Fixtures' machinery (the fixtures themselves are in conftest.py)


class DaemonFactory:
    """Creates daemons in sub-directories of one temp dir; `finish()` stops every one of them
    with SIGTERM and checks exit status 0 and a clean stderr."""

    def __init__(self, base: Path, keys: KeySet, run_as: RunAs | None = None):
        self.base = base
        self.keys = keys
        self.run_as = run_as
        self.daemons: list[Daemon] = []

    def create(self, accounts: list[AccountSpec], start: bool = True, **kw) -> Daemon:
        workdir = self.base / f"d{len(self.daemons)}"
        workdir.mkdir(parents=True)
        d = Daemon(workdir, self.keys, accounts, run_as=self.run_as, **kw)
        self.daemons.append(d)
        if start:
            d.start()
        return d

    def finish(self) -> None:
        errors = []
        for d in self.daemons:
            if d.proc is None:
                continue
            try:
                if d.running():
                    d.assert_clean_exit()
                else:
                    d._close_log()
                    assert_no_sanitizer_report(d.stderr_text())
            except BaseException as e:  # report every daemon, then fail
                d.kill_quietly()
                errors.append(str(e))
        if errors:
            pytest.fail("\n\n".join(errors), pytrace=False)


# --------------------------------------------------------------------------------------------
# Delivery (contract §2–§7): triggers, metadata and receipts, the audit database


REPO_ROOT = Path(__file__).resolve().parents[2]
SFTP_NS = "http://serviceplatformen.dk/xml/wsdl/soap11/SFTP/1/types"
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
STEP_DONE = 6  # TransferStep::kDone as stored in transfers.step


def data_areas_toml() -> str:
    """The five shipped data areas (conf.d/flis-data-areas.toml), to append to a config."""
    return (REPO_ROOT / "conf.d" / "flis-data-areas.toml").read_text()


def xml_escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def trigger_xml(name: str, size: int | None, sender: str, recipients: list[str], *,
                senders_file_id: str | None = None, inf_ref: str | None = None,
                sha256: str | None = None, sender_authority: str | None = None,
                sender_it_system: str | None = None, transaction_id: str | None = None,
                recipient_it_system: str | None = None, recipient_authority: str | None = None,
                prefix: str = "ns2", omit: Iterable[str] = ()) -> bytes:
    """A trigger file (contract §3). `omit` drops FileDescriptor children by name."""
    omit = set(omit)
    fd = [("FileName", name), ("SizeInBytes", None if size is None else str(size)),
          ("Sender", sender), ("SendersFileId", senders_file_id)]
    fd += [("Recipients", r) for r in recipients]
    fd.append(("Sha256", sha256))
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             f'<{prefix}:Trigger xmlns:{prefix}="{SFTP_NS}">', "  <FileDescriptor>"]
    lines += [f"    <{k}>{xml_escape(v)}</{k}>" for k, v in fd if v is not None and k not in omit]
    lines.append("  </FileDescriptor>")
    routing = [("InfRef", inf_ref), ("SenderIt-system", sender_it_system),
               ("SenderAuthority", sender_authority), ("TransactionId", transaction_id),
               ("RecipientIt-system", recipient_it_system),
               ("RecipientAuthority", recipient_authority)]
    routing = [(k, v) for k, v in routing if v is not None]
    if routing:
        lines += ["  <FileContentDescriptor>", "    <SFTPDynamicRoutingInfo>"]
        lines += [f"      <{k}>{xml_escape(v)}</{k}>" for k, v in routing]
        lines += ["    </SFTPDynamicRoutingInfo>", "  </FileContentDescriptor>"]
    lines.append(f"</{prefix}:Trigger>")
    return ("\n".join(lines) + "\n").encode()


def parse_xml(data: bytes | str) -> dict:
    """As existing clients read metadata and receipts: xmltodict, no namespace processing."""
    return xmltodict.parse(data)


def as_list(v) -> list:
    return v if isinstance(v, list) else [v]


def receipt_of(path: Path) -> dict:
    """The TechnicalReceipt element of a receipt file."""
    doc = parse_xml(path.read_bytes())
    assert "ns2:TechnicalReceipt" in doc, f"{path.name} is no ns2:TechnicalReceipt: {doc}"
    return doc["ns2:TechnicalReceipt"]


def metadata_of(path: Path) -> dict:
    """The ns2:Trigger element of a metadata file."""
    doc = parse_xml(path.read_bytes())
    assert "ns2:Trigger" in doc, f"{path.name} has no ns2:Trigger root: {doc}"
    return doc["ns2:Trigger"]


def db_connect(path: Path) -> sqlite3.Connection:
    """A read-only connection to the audit database (the daemon may be writing it)."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    con.row_factory = sqlite3.Row
    # TEXT as stored, even when it is not UTF-8 (a trigger as received): bytes kept losslessly.
    con.text_factory = lambda b: b.decode("utf-8", "surrogateescape")
    return con


def db_rows(path: Path, sql: str, params: tuple = (), timeout: float = 10.0) -> list[sqlite3.Row]:
    """Runs a read-only query, retrying (bounded) while the database is busy or not there yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            con = db_connect(path)
            try:
                return con.execute(sql, params).fetchall()
            finally:
                con.close()
        except sqlite3.OperationalError as e:
            if time.monotonic() > deadline:
                raise AssertionError(f"audit database {path}: {e} (query {sql!r})") from e
            time.sleep(0.05)


def event_hash(prev_hash: str, seq: int, time_text: str, kind: str, transfer_uuid: str,
               account: str, detail: str) -> str:
    """audit/chain.h's canonical form."""
    text = "\n".join([prev_hash, str(seq), time_text, kind, transfer_uuid, account, detail])
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def verify_event_chain(path: Path) -> int:
    """Recomputes the events hash chain (audit/chain.h); fails on the first bad row. Returns the
    number of rows."""
    rows = db_rows(path, "SELECT seq, time, kind, transfer_uuid, account, detail, prev_hash, hash "
                         "FROM events ORDER BY seq")
    prev = ""
    for i, r in enumerate(rows, 1):
        assert r["seq"] == i, f"event seq {r['seq']} where {i} was expected"
        assert r["prev_hash"] == prev, f"event {i}: prev_hash {r['prev_hash']} != {prev}"
        want = event_hash(prev, r["seq"], r["time"], r["kind"], r["transfer_uuid"],
                          r["account"], r["detail"])
        assert r["hash"] == want, f"event {i} ({r['kind']}): hash {r['hash']} != recomputed {want}"
        prev = r["hash"]
    return len(rows)


def wait_transfer(db: Path, uuid: str, timeout: float = 20.0) -> sqlite3.Row:
    """Waits until the transfer has reached step done; returns its row."""
    deadline = time.monotonic() + timeout
    while True:
        rows = db_rows(db, "SELECT * FROM transfers WHERE uuid = ?", (uuid,)) if db.exists() else []
        if rows and rows[0]["step"] == STEP_DONE:
            return rows[0]
        if time.monotonic() > deadline:
            pytest.fail(f"transfer {uuid} not done within {timeout}s: "
                        f"{dict(rows[0]) if rows else 'no row'}", pytrace=False)
        time.sleep(0.05)


def wait_file(path: Path, timeout: float = 20.0, what: str = "") -> Path:
    wait_until(path.exists, timeout, what or f"{path} to appear")
    return path


def wait_receipt(d: "Daemon", sender: str, name: str, timeout: float = 20.0,
                 not_uuid: str | None = None) -> dict:
    """Waits for IN/<name>.sftpreceipt in the sender's jail (a different one than `not_uuid`'s,
    when given) and the transfer it names to be done; returns the receipt element."""
    path = d.in_dir(sender) / (name + ".sftpreceipt")

    def ready() -> bool:
        if not path.exists():
            return False
        if not_uuid is None:
            return True
        try:
            return receipt_of(path).get("FileTransferUUID") != not_uuid
        except Exception:  # replaced atomically, so this is not expected; retry anyway
            return False

    wait_until(ready, timeout, f"receipt {path}")
    receipt = receipt_of(path)
    wait_transfer(d.state / "audit.db", receipt["FileTransferUUID"], timeout)
    return receipt


# --------------------------------------------------------------------------------------------
# The operator's CLI


def fordeler_path() -> str:
    """`fordeler`: $FORDELER, else cli/fordeler beside the daemon's build folder."""
    path = os.environ.get("FORDELER")
    if not path:
        path = str(Path(fordelerd_path()).resolve().parent.parent / "cli" / "fordeler")
    assert os.access(path, os.X_OK), f"no fordeler binary at {path} (set FORDELER)"
    return path


def cli_json(d: "Daemon", *args: str, expect: int = 0, timeout: float = 60.0):
    """Runs `fordeler --config <d's config> ARGS --json`, checks the exit status, parses stdout."""
    import json
    r = run([fordeler_path(), "--config", str(d.config_path), *args, "--json"], timeout=timeout)
    assert r.returncode == expect, (f"fordeler {' '.join(args)} exited {r.returncode}, want "
                                    f"{expect}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}")
    return json.loads(r.stdout)
