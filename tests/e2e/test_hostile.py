"""Hostile clients against the real daemon (issue 6): malformed SSH and SFTP traffic, path
traversal in every request that takes a path, symlinks/FIFOs/hard links planted on disk, a file
swapped for a symlink between stat and open, a client (OpenSSH) pipelining 1 GiB of writes
without reading a reply and one that never reads at all, attempts to change delivered files,
weird names, malicious triggers and a spoofed `Sender`.

Canary files with a random marker lie outside the attacker's jail (in the storage root's parent,
in another account's OUT and IN, in spool and staging); every byte any client of this module read
is kept, and the last test proves the marker is in none of them, in no file of the attacker's or
the recipient's jail (data, metadata, receipts), and that every canary is unchanged. After each
test a fresh login must work and the daemon must still run (autouse fixture `still_serving`).
Slowloris, bans and handle limits are test_limits.py's.
"""

from __future__ import annotations

import functools
import io
import os
import re
import select
import socket
import struct
import subprocess
import threading
import time
import uuid as uuidlib
from pathlib import Path

import paramiko
import pytest

from harness import (AccountSpec, data_areas_toml, ssh_base_options, trigger_xml, wait_receipt,
                     wait_until)

KMD = "kmd-oekonomi"  # the attacker: a sender
FLIS = "flis"  # its recipient
VICTIM = "victim"  # another sender whose jail holds canaries
KEY_NAMES = ["kmd_ed25519", "flis_ed25519", "victim_ed25519"]
KEYS = {KMD: "kmd_ed25519", FLIS: "flis_ed25519", VICTIM: "victim_ed25519"}
DELIVER = "FLISOekonomiAflever_1"

MARKER = "CANARY-" + uuidlib.uuid4().hex  # never in any byte a client receives
SEEN: list[bytes] = []  # every byte string any client of this module received


@functools.cache
def sanitized_build() -> bool:
    """True when $FORDELERD is built with AddressSanitizer (much slower, much more memory)."""
    binary = Path(os.environ.get("FORDELERD", "/nonexistent"))
    return binary.is_file() and b"AddressSanitizer" in binary.read_bytes()


def rss_cap_kib() -> int:
    """Daemon resident memory must stay below this under abuse: 300 MiB, or 1 GiB for a sanitizer
    build (ASan keeps up to 256 MiB of freed memory in quarantine, plus its shadow memory)."""
    return (1024 if sanitized_build() else 300) * 1024


# SFTP v3 packet types and open flags (draft-ietf-secsh-filexfer-02).
FXP_INIT, FXP_VERSION, FXP_OPEN, FXP_CLOSE, FXP_READ, FXP_WRITE = 1, 2, 3, 4, 5, 6
FXP_STATUS, FXP_HANDLE, FXP_DATA = 101, 102, 103
FXF_READ, FXF_WRITE, FXF_CREAT, FXF_TRUNC = 0x1, 0x2, 0x8, 0x10


# --------------------------------------------------------------------------------------------
# Fixtures


def routes() -> str:
    return f"""
[[route]]
id = "oekonomi-kmd"
data_area = "oekonomi"
sender = "{KMD}"
authorities = ["*"]
recipients = ["{FLIS}"]

[[route]]
id = "oekonomi-victim"
data_area = "oekonomi"
sender = "{VICTIM}"
authorities = ["*"]
recipients = ["{FLIS}"]
"""


@pytest.fixture(scope="module", params=["root", "nobody"])
def d(request, keyset):
    """The module's daemon, once as root and once as `nobody` (as systemd runs it, without
    capabilities): every attack here is tried against both."""
    factory = request.getfixturevalue(
        "module_daemons" if request.param == "root" else "module_unprivileged_daemons")
    accounts = [AccountSpec(a, [keyset.key(k)], extra=f'authority = "urn:oio:cvr-nr:{n}"')
                for n, (a, k) in enumerate(KEYS.items(), start=11111111)]
    extra = '[delivery]\ntrigger_grace = "2s"\n' + routes() + "\n" + data_areas_toml()
    daemon = factory.create(accounts, extra=extra)
    # A first login creates the jails; then the canaries are planted.
    with daemon.sftp(VICTIM, keyset.key(KEYS[VICTIM])) as s:
        s.listdir("OUT")
    with daemon.sftp(KMD, keyset.key(KEYS[KMD])) as s:
        s.listdir("OUT")
    plant_canaries(daemon)
    return daemon


CANARIES: dict[Path, tuple[bytes, int]] = {}  # path -> (content, mtime_ns)


def plant_canaries(d) -> None:
    places = [d.workdir / "canary.csv", d.out_dir(VICTIM) / "canary.csv",
              d.in_dir(VICTIM) / "canary.csv"]
    for sub in ("spool", "staging", "quarantine"):
        if (d.state / sub).is_dir():
            places.append(d.state / sub / "canary.csv")
    assert len(places) >= 5, f"spool/staging not found under {d.state}: {os.listdir(d.state)}"
    for p in places:
        data = f"{MARKER} {p.name} secret\n".encode() * 64
        p.write_bytes(data)
        d.own(p)  # the daemon's own, as its files are: only the jail guards them
        CANARIES[p] = (data, p.stat().st_mtime_ns)


def key(keyset, account: str) -> Path:
    return keyset.key(KEYS[account])


@pytest.fixture(autouse=True)
def still_serving(request, d, keyset):
    """After each test: the daemon still runs and serves a fresh login."""
    yield
    assert d.running(), f"fordelerd died; stderr:\n{d.stderr_text()[-4000:]}"
    with d.sftp(KMD, key(keyset, KMD)) as s:
        SEEN.append("\n".join(s.listdir("/")).encode())
        assert set(s.listdir("/")) == {"IN", "OUT"}


def fresh(tag: str, ext: str = ".csv") -> str:
    return f"{tag}-{uuidlib.uuid4().hex[:8]}{ext}"


def daemon_rss_kib(d) -> int:
    text = Path(f"/proc/{d.pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", text, re.M).group(1))


def send_pair(sftp: paramiko.SFTPClient, name: str, data: bytes, trigger: bytes) -> None:
    sftp.putfo(io.BytesIO(data), f"OUT/{name}", confirm=False)
    sftp.putfo(io.BytesIO(trigger), f"OUT/{name}.trigger", confirm=False)


# --------------------------------------------------------------------------------------------
# Raw SFTP over a paramiko channel


class RawSftp:
    """A hand-written SFTP v3 client on an authenticated channel: sends any bytes it is told to,
    reads replies only when asked."""

    def __init__(self, transport: paramiko.Transport, timeout: float = 15.0):
        self.transport = transport
        self.chan = transport.open_session(timeout=timeout)
        self.chan.settimeout(timeout)
        self.chan.invoke_subsystem("sftp")
        self.next_id = 1
        self.send_packet(FXP_INIT, struct.pack(">I", 3), with_id=False)
        ptype, body = self.read_packet()
        assert ptype == FXP_VERSION, f"no VERSION reply: {ptype}"

    def close(self) -> None:
        self.chan.close()
        self.transport.close()

    @staticmethod
    def string(b: bytes | str) -> bytes:
        if isinstance(b, str):
            b = b.encode()
        return struct.pack(">I", len(b)) + b

    def send_packet(self, ptype: int, payload: bytes, with_id: bool = True) -> int:
        rid = self.next_id
        self.next_id += 1
        body = bytes([ptype]) + (struct.pack(">I", rid) if with_id else b"") + payload
        self.chan.sendall(struct.pack(">I", len(body)) + body)
        return rid

    def recv_exact(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.chan.recv(n - len(out))
            if not chunk:
                raise EOFError(f"channel closed after {len(out)} of {n} bytes")
            out += chunk
        return out

    def read_packet(self) -> tuple[int, bytes]:
        (length,) = struct.unpack(">I", self.recv_exact(4))
        body = self.recv_exact(length)
        SEEN.append(body)
        return body[0], body[1:]

    def reply(self) -> tuple[int, int, bytes]:
        """(type, request id, rest) of the next reply."""
        ptype, body = self.read_packet()
        return ptype, struct.unpack(">I", body[:4])[0], body[4:]

    def open(self, path: bytes | str, pflags: int) -> tuple[int, bytes]:
        self.send_packet(FXP_OPEN, self.string(path) + struct.pack(">II", pflags, 0))
        ptype, _, rest = self.reply()
        if ptype == FXP_HANDLE:
            (n,) = struct.unpack(">I", rest[:4])
            return ptype, rest[4:4 + n]
        return ptype, rest

    def closed_within(self, timeout: float) -> bool:
        """True if the server ends the channel within `timeout` (replies are drained)."""
        deadline = time.monotonic() + timeout
        self.chan.settimeout(0.5)
        while time.monotonic() < deadline:
            try:
                data = self.chan.recv(65536)
            except socket.timeout:
                continue
            except Exception:
                return True
            if not data:
                return True
            SEEN.append(data)
        return False


def raw_sftp(d, keyset, account: str = KMD) -> RawSftp:
    return RawSftp(d.transport(account, key(keyset, account)))


def test_every_request_is_answered_before_the_channel_closes_on_eof(d, keyset):
    """A client pipelines a 3 MiB upload and its CLOSE, then a second small file, and sends EOF
    without waiting for the answers: the CLOSE of an upload that large is answered only once the
    file is on disk, and that answer must still come before the server ends the channel, as
    sftp-server answers everything it read."""
    name = fresh("eof")
    raw = raw_sftp(d, keyset)
    chunk = os.urandom(32768)
    try:
        ptype, handle = raw.open(f"OUT/{name}", FXF_WRITE | FXF_CREAT | FXF_TRUNC)
        assert ptype == FXP_HANDLE
        ids = [raw.send_packet(FXP_WRITE, raw.string(handle) + struct.pack(">Q", i * len(chunk)) +
                               raw.string(chunk)) for i in range(96)]
        ids.append(raw.send_packet(FXP_CLOSE, raw.string(handle)))
        # The next file's OPEN is answered (the data's CLOSE may still wait for its sync).
        opened = raw.send_packet(FXP_OPEN, raw.string(f"OUT/{name}.2") +
                                 struct.pack(">II", FXF_WRITE | FXF_CREAT | FXF_TRUNC, 0))
        answered = {}
        while opened not in answered:
            ptype, rid, rest = raw.reply()
            answered[rid] = (ptype, rest)
        assert answered.pop(opened)[0] == FXP_HANDLE
        second = rest[4:4 + struct.unpack(">I", rest[:4])[0]]
        ids.append(raw.send_packet(FXP_WRITE, raw.string(second) + struct.pack(">Q", 0) +
                                   raw.string(b"small")))
        ids.append(raw.send_packet(FXP_CLOSE, raw.string(second)))
        raw.chan.shutdown_write()
        while len(answered) < len(ids):
            ptype, rid, rest = raw.reply()  # EOFError if the channel ends first
            answered[rid] = (ptype, rest)
        assert {rid: (t, struct.unpack(">I", r[:4])[0]) for rid, (t, r) in answered.items()} == \
            {rid: (FXP_STATUS, 0) for rid in ids}
        assert raw.closed_within(10)
    finally:
        raw.close()
    assert (d.out_dir(KMD) / name).stat().st_size == 96 * len(chunk)


# --------------------------------------------------------------------------------------------
# SSH transport level


def ssh_server_closes(sock: socket.socket, timeout: float = 20.0) -> bytes:
    """Reads until the server closes the connection (bounded); returns what it sent."""
    sock.settimeout(timeout)
    got = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return got
        if not chunk:
            return got
        got += chunk
    pytest.fail(f"server kept the connection open for {timeout}s; got {got[:200]!r}")


def test_garbage_before_the_banner(d):
    """Random bytes, long lines, a NUL-filled blob and an SSH-1 banner: the server never crashes
    and drops the connection (or ignores the lines, RFC 4253 §4.2) without a version leak."""
    payloads = [
        os.urandom(4096),
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\x00" * 70000,
        b"A" * 300000 + b"\r\n",
        b"SSH-1.5-evil\r\n",
        b"SSH-2.0-" + b"x" * 10000 + b"\r\n",
    ]
    for payload in payloads:
        with socket.create_connection((d.host, d.port), timeout=10) as s:
            try:
                s.sendall(payload)
            except (ConnectionResetError, BrokenPipeError):
                continue
            got = ssh_server_closes(s)
            if got:
                assert got.startswith(b"SSH-2.0-fordeler\r\n"), got[:80]


def ssh_packet(payload: bytes, block: int = 8) -> bytes:
    """An unencrypted binary packet (RFC 4253 §6) around `payload`."""
    pad = block - (len(payload) + 5) % block
    if pad < 4:
        pad += block
    return struct.pack(">IB", len(payload) + pad + 1, pad) + payload + b"\x00" * pad


def test_truncated_and_oversized_ssh_packets(d):
    """After a proper banner: a packet length of 4 GiB, of 1 MiB, of 0, a packet cut short
    followed by EOF, and a KEXINIT whose name-list length points past the packet: the server
    closes each connection; nothing hangs or crashes."""
    kexinit_bad = bytes([20]) + os.urandom(16) + struct.pack(">I", 0x7FFFFFF0) + b"curve"
    cases = [
        struct.pack(">I", 0xFFFFFFFF) + b"\x04" + os.urandom(64),
        struct.pack(">I", 1 << 20) + b"\x04" + os.urandom(4096),
        struct.pack(">I", 0) + os.urandom(16),
        ssh_packet(kexinit_bad),
    ]
    for case in cases:
        with socket.create_connection((d.host, d.port), timeout=10) as s:
            s.sendall(b"SSH-2.0-hostile_probe\r\n")
            s.sendall(case)
            ssh_server_closes(s)
    # Cut short, then EOF from our side: the server must notice and clean up.
    for _ in range(5):
        with socket.create_connection((d.host, d.port), timeout=10) as s:
            s.sendall(b"SSH-2.0-hostile_probe\r\n" + struct.pack(">I", 500) + b"\x05" * 40)
            s.shutdown(socket.SHUT_WR)
            ssh_server_closes(s)


# --------------------------------------------------------------------------------------------
# SFTP packet level


def test_oversized_sftp_packet_ends_the_session(d, keyset):
    """An SFTP packet longer than 256 KiB ends that session (contract: bounded memory)."""
    for length in (256 * 1024 + 1, 0x7FFFFFFF, 0xFFFFFFFF):
        c = raw_sftp(d, keyset)
        try:
            c.chan.sendall(struct.pack(">IB", length, FXP_WRITE) + os.urandom(8192))
            assert c.closed_within(15), f"session survived an SFTP packet of length {length}"
        finally:
            c.close()


def test_truncated_sftp_packets(d, keyset):
    """Packets whose fields run past their end, a zero-length packet, and a packet cut short by
    EOF: a failure status or the end of the session, never a crash; other sessions go on."""
    bad = [
        struct.pack(">IB", 1, FXP_OPEN),  # no id
        struct.pack(">IBI", 5, FXP_OPEN, 7),  # no path
        struct.pack(">IBII", 9, FXP_OPEN, 8, 1000),  # path length past the end
        struct.pack(">IBI", 5, FXP_WRITE, 9),  # no handle
        struct.pack(">IBII", 9, FXP_READ, 10, 0xFFFFFFFF),  # handle length 4 GiB
        struct.pack(">IBI", 5, 200, 11),  # unknown type
        struct.pack(">I", 0),  # empty packet
    ]
    for packet in bad:
        c = raw_sftp(d, keyset)
        try:
            c.chan.sendall(packet)
            # Either a STATUS reply or the session ends; then a valid request on a new session.
            try:
                ptype, _ = c.read_packet()
                assert ptype == FXP_STATUS, f"reply type {ptype} to {packet!r}"
            except (EOFError, socket.timeout, OSError):
                pass
        finally:
            c.close()
    # Cut short: a length promising more than is sent, then EOF on the channel.
    c = raw_sftp(d, keyset)
    try:
        c.chan.sendall(struct.pack(">IBI", 1000, FXP_OPEN, 12) + b"abc")
        c.chan.shutdown_write()
        assert c.closed_within(15), "session kept open after EOF in the middle of a packet"
    finally:
        c.close()


def test_session_ended_while_its_large_uploads_close_is_synced(d, keyset):
    """The CLOSE of an upload of 1 MiB or more is answered from the server's sync threads once
    the file is on disk. Clients that send that CLOSE and end the session at once, or a moment
    later, while the sync runs: the answer has nowhere to go and is dropped, the daemon goes on
    (the sanitizer build would report a use after free), and each upload is in OUT complete and
    can be sent with its trigger from a new session."""
    chunk = os.urandom(32 * 1024)
    data = chunk * 64  # 2 MiB: written back while it arrives, so its CLOSE waits for the sync
    pflags = 0x02 | 0x08 | 0x10  # WRITE | CREAT | TRUNC
    names = []
    for pause in (0, 0, 0.0005, 0.002, 0.01, 0):
        name = fresh("gone-at-close")
        c = raw_sftp(d, keyset)
        try:
            ptype, handle = c.open(f"OUT/{name}", pflags)
            assert ptype == FXP_HANDLE, f"open for writing: reply type {ptype}"
            for offset in range(0, len(data), len(chunk)):
                c.send_packet(FXP_WRITE,
                              c.string(handle) + struct.pack(">Q", offset) + c.string(chunk))
            for _ in range(len(data) // len(chunk)):  # every WRITE done before the CLOSE
                ptype, _, rest = c.reply()
                assert ptype == FXP_STATUS and rest[:4] == b"\0\0\0\0", (ptype, rest)
            c.send_packet(FXP_CLOSE, c.string(handle))
            if pause:
                time.sleep(pause)
        finally:
            c.close()
        names.append(name)
    for name in names:
        path = d.out_dir(KMD) / name
        wait_until(lambda: path.exists() and path.stat().st_size == len(data), 10,
                   f"{name} complete in OUT")
        assert path.read_bytes() == data, name
    name = names[-1]
    with d.sftp(KMD, key(keyset, KMD)) as s:
        s.putfo(io.BytesIO(trigger_xml(name, len(data), KMD, [FLIS], inf_ref=DELIVER)),
                f"OUT/{name}.trigger", confirm=False)
    assert "Receipt" in wait_receipt(d, KMD, name)
    assert (d.in_dir(FLIS) / name).read_bytes() == data


# --------------------------------------------------------------------------------------------
# Path traversal


TRAVERSALS = [
    "../victim/OUT/canary.csv",
    "/../victim/OUT/canary.csv",
    "OUT/../../victim/OUT/canary.csv",
    "/OUT/../../../../../../etc/passwd",
    "//victim/OUT/canary.csv",
    "///../..//victim//IN//canary.csv",
    "OUT/..\\..\\victim\\OUT\\canary.csv",
    "OUT/%2e%2e/%2e%2e/victim/OUT/canary.csv",
    "OUT/..%2f..%2fvictim%2fOUT%2fcanary.csv",
    "OUT/\u2024\u2024/victim",  # one-dot leaders look like ".."
    "IN/../../../canary.csv",
    "../../canary.csv",
    "/../../state/spool/canary.csv",
    "..",
    "/..",
    "OUT/..",
    "OUT/.",
]


def attempt(fn, *args):
    """Runs one SFTP call; returns ("ok", result) or ("err", exception)."""
    try:
        return "ok", fn(*args)
    except (IOError, OSError) as e:
        return "err", e


def test_path_traversal_in_every_request(d, keyset):
    """open (read and write), opendir, stat, lstat, setstat, remove, rename (both sides),
    realpath, mkdir, rmdir, readlink and symlink with `..`, absolute paths, `//`, backslashes and
    percent-encoding: nothing outside the jail is read, changed or even confirmed to exist;
    realpath stays inside `/`; mutations all fail."""
    with d.sftp(KMD, key(keyset, KMD)) as s:
        s.putfo(io.BytesIO(b"mine\n"), "OUT/mine.csv", confirm=False)
        for path in TRAVERSALS:
            status, f = attempt(s.open, path, "rb")
            if status == "ok":
                try:
                    SEEN.append(f.read(1 << 20))
                except (IOError, OSError):
                    pass
                f.close()
            status, names = attempt(s.listdir, path)
            if status == "ok":
                SEEN.append("\n".join(names).encode())
                assert "canary.csv" not in names or path.startswith("OUT"), (path, names)
                assert set(names) <= {"IN", "OUT", "mine.csv"} | set(s.listdir("OUT")) | set(
                    s.listdir("IN")), (path, names)
            for fn in (s.stat, s.lstat):
                status, attrs = attempt(fn, path)
                if status == "ok":
                    # Only the jail root, a folder or our own file may answer.
                    canary_size = len(CANARIES[d.out_dir(VICTIM) / "canary.csv"][0])
                    assert attrs.st_size != canary_size, (path, attrs)
            status, real = attempt(s.normalize, path)
            if status == "ok":
                SEEN.append(real.encode())
                assert real.startswith("/") and ".." not in real.split("/"), (path, real)
                assert "victim" not in real or real.startswith(("/OUT/", "/IN/")), (path, real)
                assert "etc" not in real.split("/")[:2], (path, real)
            status, target = attempt(s.readlink, path)
            if status == "ok" and target:
                SEEN.append(target.encode())
            if path in ("OUT/.", "OUT/.."):
                continue  # these name our own folders: mutations below are refused anyway
            for call, args in (
                (s.open, (path, "wb")),
                (s.chmod, (path, 0o666)),
                (s.utime, (path, (1, 1))),
                (s.truncate, (path, 0)),
                (s.remove, (path,)),
                (s.rename, (path, "OUT/stolen.csv")),
                (s.rename, ("OUT/mine.csv", path)),
                (s.mkdir, (path,)),
                (s.rmdir, (path,)),
                (s.symlink, ("OUT/mine.csv", path)),
                (s.symlink, (path, "OUT/link.csv")),
            ):
                status, result = attempt(call, *args)
                if status == "ok" and call == s.open:
                    result.close()
                assert status == "err", f"{call.__name__}{args} succeeded"
        assert s.open("OUT/mine.csv").read() == b"mine\n"
        s.remove("OUT/mine.csv")
    assert_canaries_intact()


# --------------------------------------------------------------------------------------------
# Things planted on disk


def test_planted_symlinks_fifos_and_hard_links(d, keyset):
    """Symlinks (to a canary, to `/`, to a directory), FIFOs and hard links planted in OUT and
    IN: listing works and does not hang, no open follows a symlink or blocks on a FIFO, a hard
    link in OUT is refused, and a trigger naming any of them delivers nothing of the canary."""
    target = d.out_dir(VICTIM) / "canary.csv"
    planted = []
    for folder in (d.out_dir(KMD), d.in_dir(KMD)):
        for name, make in (
            ("sym.csv", lambda p: os.symlink(target, p)),
            ("symroot.csv", lambda p: os.symlink("/", p)),
            ("symdir", lambda p: os.symlink(d.state, p)),
            ("fifo.csv", lambda p: os.mkfifo(p)),
        ):
            make(folder / name)
            d.own(folder / name)
            planted.append(folder / name)
    os.link(target, d.out_dir(KMD) / "hard.csv")
    planted.append(d.out_dir(KMD) / "hard.csv")
    names = ["sym.csv", "symroot.csv", "symdir", "fifo.csv", "hard.csv"]
    try:
        with d.sftp(KMD, key(keyset, KMD)) as s:
            s.get_channel().settimeout(15)
            for folder in ("OUT", "IN"):
                listing = s.listdir_attr(folder)  # must not hang on the FIFO
                SEEN.append(repr([(a.filename, a.st_size) for a in listing]).encode())
                for n in names:
                    for mode in ("rb", "r+b", "ab"):
                        status, f = attempt(s.open, f"{folder}/{n}", mode)
                        if status == "ok":
                            try:
                                SEEN.append(f.read(1 << 20))
                            except (IOError, OSError):
                                pass
                            f.close()
                            pytest.fail(f"opened planted {folder}/{n} with {mode}")
                    for fn in (s.stat, s.lstat):
                        status, attrs = attempt(fn, f"{folder}/{n}")
                        # A hard link is a regular file of our folder: stat may describe it
                        # (its size and times, never its bytes); nothing else may answer.
                        if n != "hard.csv":
                            assert status == "err", f"{fn.__name__} {folder}/{n}: {attrs}"
                    status, _ = attempt(s.listdir, f"{folder}/{n}")
                    assert status == "err", f"opendir {folder}/{n} succeeded"
            # Triggers naming them: rejected, the canary never reaches flis.
            for n in ("sym.csv", "fifo.csv", "hard.csv"):
                trig = trigger_xml(n, len(CANARIES[target][0]), KMD, [FLIS], inf_ref=DELIVER)
                s.putfo(io.BytesIO(trig), f"OUT/{n}.trigger", confirm=False)
            for n in ("sym.csv", "fifo.csv", "hard.csv"):
                r = wait_receipt(d, KMD, n, timeout=30)
                assert "ErrorMessage" in r, f"trigger naming planted {n} was accepted: {r}"
    finally:
        for p in planted:
            if os.path.lexists(p):
                os.unlink(p)
    assert_canaries_intact()


def test_file_swapped_for_symlink_between_stat_and_open(d, keyset):
    """A thread flips OUT/race.csv between a regular file and a symlink to a canary while the
    client stats, opens and reads it in a loop for a few seconds: no canary byte is ever read."""
    path = d.out_dir(KMD) / "race.csv"
    stop = threading.Event()
    target = d.out_dir(VICTIM) / "canary.csv"

    def flipper():
        i = 0
        while not stop.is_set():
            tmp = path.with_name(f".flip{i % 2}")
            if i % 2:
                try:
                    os.symlink(target, tmp)
                except FileExistsError:
                    os.unlink(tmp)
                    continue
            else:
                tmp.write_bytes(b"harmless\n")
            os.replace(tmp, path)
            i += 1

    t = threading.Thread(target=flipper, daemon=True)
    t.start()
    opened = 0
    try:
        with d.sftp(KMD, key(keyset, KMD)) as s:
            deadline = time.monotonic() + 4
            while time.monotonic() < deadline:
                attempt(s.stat, "OUT/race.csv")
                status, f = attempt(s.open, "OUT/race.csv", "rb")
                if status == "ok":
                    status, data = attempt(f.read, 1 << 16)
                    if status == "ok":
                        SEEN.append(data)
                        assert MARKER.encode() not in data
                        opened += 1
                    f.close()
    finally:
        stop.set()
        t.join(10)
        for p in (path, path.with_name(".flip0"), path.with_name(".flip1")):
            if os.path.lexists(p):
                os.unlink(p)
    assert opened > 0, "the regular file was never opened: the test proved nothing"


# --------------------------------------------------------------------------------------------
# Pipelining and never-reading clients


FLOOD_CHUNK = 32 * 1024
FLOOD_WRITES = 32 * 1024  # 32,768 WRITEs of 32 KiB: 1 GiB
FLOOD_BATCH = 8  # WRITEs per write(2) to ssh's stdin


class OpenSshPipe:
    """OpenSSH's client in C as a raw SFTP transport: `ssh -s USER@HOST sftp` with raw SFTP v3
    packets written to its stdin; its stdout (the server's replies) is read only when asked, and
    otherwise left unread. Python never touches the SSH layer, so the client is as fast as
    OpenSSH."""

    def __init__(self, d, account: str, key_path: Path, stderr_path: Path):
        self.stderr_path = stderr_path
        self._stderr = open(stderr_path, "wb")
        cmd = ["ssh", *ssh_base_options(key_path), "-T", "-x", "-a", "-e", "none",
               "-p", str(d.port), "-s", f"{account}@{d.host}", "sftp"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._stderr, bufsize=0)
        self._buf = b""

    def send(self, data: bytes) -> None:
        """Blocks until the pipe took all of `data` (OSError once ssh is gone)."""
        view = memoryview(data)
        while view:
            view = view[os.write(self.proc.stdin.fileno(), view):]

    def _read_some(self, deadline: float) -> bytes:
        fd = self.proc.stdout.fileno()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no reply from ssh in time; stderr:\n{self.stderr_text()}")
            if select.select([fd], [], [], min(left, 1.0))[0]:
                return os.read(fd, 1 << 16)

    def read_packet(self, deadline: float) -> tuple[int, bytes]:
        while len(self._buf) < 4 or len(self._buf) < 4 + struct.unpack(">I", self._buf[:4])[0]:
            chunk = self._read_some(deadline)
            if not chunk:
                raise EOFError(f"ssh's stdout ended; stderr:\n{self.stderr_text()}")
            self._buf += chunk
        (length,) = struct.unpack(">I", self._buf[:4])
        body, self._buf = self._buf[4:4 + length], self._buf[4 + length:]
        SEEN.append(body)
        return body[0], body[1:]

    def close_input_and_drain(self, timeout: float) -> bytes | None:
        """Closes ssh's stdin (EOF on the channel: the server finishes its replies and closes),
        then reads stdout to its end. None if it did not end within `timeout`."""
        self.proc.stdin.close()
        deadline = time.monotonic() + timeout
        parts = [self._buf]
        try:
            while chunk := self._read_some(deadline):
                parts.append(chunk)
        except TimeoutError:
            return None
        self._buf = b""
        rest = b"".join(parts)
        SEEN.append(rest)
        return rest

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.kill()
        for f in (self.proc.stdin, self.proc.stdout):
            if not f.closed:
                f.close()
        self._stderr.close()

    def stderr_text(self) -> str:
        return self.stderr_path.read_text(errors="replace")[-4000:]


def sftp_packet(ptype: int, rid: int | None, payload: bytes) -> bytes:
    body = bytes([ptype]) + (b"" if rid is None else struct.pack(">I", rid)) + payload
    return struct.pack(">I", len(body)) + body


def status_codes(replies: bytes) -> list[tuple[int, int, int]]:
    """(type, request id, status code or -1) of each packet in a reply stream."""
    out = []
    pos = 0
    while pos + 9 <= len(replies):
        (length,) = struct.unpack_from(">I", replies, pos)
        ptype = replies[pos + 4]
        (rid,) = struct.unpack_from(">I", replies, pos + 5)
        code = -1
        if ptype == FXP_STATUS and length >= 9:
            (code,) = struct.unpack_from(">I", replies, pos + 9)
        out.append((ptype, rid, code))
        pos += 4 + length
    assert pos == len(replies), f"reply stream cut in a packet at {pos} of {len(replies)}"
    return out


def test_pipelining_writer_and_never_reader_keep_memory_bounded(d, keyset, tmp_path):
    """OpenSSH's `ssh -s … sftp`, fed raw SFTP by the test, pipelines 1 GiB of WRITE requests
    (32,768 × 32 KiB at consecutive offsets) into OUT/flood.csv without reading a single reply:
    after INIT and OPEN (their VERSION and HANDLE replies are read) its stdout is left an unread
    pipe. Another client asks for 32 KiB reads and never reads the replies. Meanwhile other
    sessions keep uploading and downloading 4 MiB (each round must finish), the daemon's RSS,
    sampled all along, stays below the cap, and once the 1 GiB is out a fresh login is served
    while the flood session still holds its replies. Then the writer's stdin is closed: the
    session ends, every WRITE was answered with SSH_FX_OK and flood.csv holds 1 GiB. In the
    Release build all 1 GiB must go out within 120 s; under the sanitizers (much slower) the
    writer is bounded by 90 s and what it sent is checked."""
    sanitized = sanitized_build()
    bound = 90.0 if sanitized else 120.0
    total = FLOOD_WRITES * FLOOD_CHUNK
    flood_path = d.out_dir(KMD) / "flood.csv"
    # The never-reader's file.
    with d.sftp(KMD, key(keyset, KMD)) as s:
        s.putfo(io.BytesIO(os.urandom(4 << 20)), "OUT/big-read.csv", confirm=False)
    writer = OpenSshPipe(d, KMD, key(keyset, KMD), tmp_path / "flood-ssh.stderr")
    reader = None
    sent = {"writer": 0, "reader": 0}
    times = {"start": 0.0, "pushed": 0.0}
    stop = threading.Event()
    errors: list[str] = []
    max_rss = [0]
    threads: list[threading.Thread] = []
    try:
        deadline = time.monotonic() + 30
        writer.send(sftp_packet(FXP_INIT, None, struct.pack(">I", 3)))
        ptype, _ = writer.read_packet(deadline)
        assert ptype == FXP_VERSION, f"no VERSION reply: {ptype}"
        writer.send(sftp_packet(FXP_OPEN, 1, RawSftp.string("OUT/flood.csv") +
                                struct.pack(">II", FXF_WRITE | FXF_CREAT | FXF_TRUNC, 0)))
        ptype, rest = writer.read_packet(deadline)
        assert ptype == FXP_HANDLE, f"OPEN OUT/flood.csv: reply type {ptype} {rest!r}"
        handle = RawSftp.string(rest[8:8 + struct.unpack(">I", rest[4:8])[0]])
        # From here on the writer's stdout is never read until the flood is over.
        reader = raw_sftp(d, keyset)

        def write_flood():
            chunk = os.urandom(FLOOD_CHUNK)
            head = 1 + 4 + len(handle) + 8 + 4 + FLOOD_CHUNK  # type, id, handle, offset, data
            times["start"] = time.monotonic()
            try:
                for first in range(0, FLOOD_WRITES, FLOOD_BATCH):
                    if stop.is_set():
                        return
                    parts = []
                    for i in range(first, min(first + FLOOD_BATCH, FLOOD_WRITES)):
                        parts += [struct.pack(">IBI", head, FXP_WRITE, 2 + i) + handle +
                                  struct.pack(">QI", i * FLOOD_CHUNK, FLOOD_CHUNK), chunk]
                    writer.send(b"".join(parts))
                    sent["writer"] = min(first + FLOOD_BATCH, FLOOD_WRITES) * FLOOD_CHUNK
                times["pushed"] = time.monotonic()
            except OSError as e:  # ssh is gone: killed at the time bound, or the server ended it
                errors.append(f"writer: {e!r}")

        def read_flood():
            ptype, rhandle = reader.open("OUT/big-read.csv", FXF_READ)
            assert ptype == FXP_HANDLE
            reader.chan.settimeout(1.0)
            n = 0
            while not stop.is_set():
                try:
                    reader.send_packet(FXP_READ, RawSftp.string(rhandle) +
                                       struct.pack(">QI", (n * 32768) % (4 << 20), 32768))
                except socket.timeout:
                    continue  # the window is full: the server is applying back-pressure
                except Exception as e:
                    errors.append(f"reader: {e!r}")
                    return
                n += 1
                sent["reader"] = n

        def sample_rss():
            while not stop.wait(0.2):
                try:
                    max_rss[0] = max(max_rss[0], daemon_rss_kib(d))
                except (OSError, AttributeError):
                    return  # the daemon is gone; the fixture reports it

        threads = [threading.Thread(target=f, daemon=True)
                   for f in (write_flood, read_flood, sample_rss)]
        for t in threads:
            t.start()
        flood = threads[0]
        deadline = time.monotonic() + bound
        data = os.urandom(4 << 20)
        rounds = 0
        while rounds == 0 or (flood.is_alive() and time.monotonic() < deadline):
            t0 = time.monotonic()
            with d.sftp(KMD, key(keyset, KMD)) as s:
                s.putfo(io.BytesIO(data), "OUT/meanwhile.csv", confirm=False)
                assert s.open("OUT/meanwhile.csv").read() == data
                s.remove("OUT/meanwhile.csv")
            assert time.monotonic() - t0 < 90, "a well-behaved session got no service"
            rounds += 1
            time.sleep(0.2)
        flood.join(max(0.0, deadline - time.monotonic()))
        timed_out = flood.is_alive()
        if timed_out:
            stop.set()
            writer.kill()  # unblocks the writer thread's write
            flood.join(10)
        pushed_s = (times["pushed"] or time.monotonic()) - times["start"]
        if not timed_out:
            # The flood session still has its replies unread: a fresh login is served anyway.
            with d.sftp(KMD, key(keyset, KMD)) as s:
                assert "flood.csv" in s.listdir("OUT")
            max_rss[0] = max(max_rss[0], daemon_rss_kib(d))
        stop.set()
        for t in threads:
            t.join(15)
        replies = None if timed_out else writer.close_input_and_drain(60)
        ended = replies is not None
        if ended:
            try:
                writer.proc.wait(timeout=30)  # ssh exits once the server closed the channel
            except subprocess.TimeoutExpired:
                ended = False
        answered_s = time.monotonic() - times["start"]
        flood_size = flood_path.stat().st_size if flood_path.exists() else -1
        end = (f"killed at the {bound:.0f} s bound" if timed_out else
               f"all answered and the session closed after {answered_s:.1f} s" if ended else
               "the session did not end")
        print(f"pipelining writer (OpenSSH) pushed {sent['writer'] / 2**20:.0f} MiB of WRITEs "
              f"without reading a reply in {pushed_s:.1f} s ({end}); never-reader sent "
              f"{sent['reader']} READ requests; {rounds} 4 MiB round trips meanwhile; daemon "
              f"max RSS {max_rss[0] / 1024:.0f} MiB{' (sanitizer build)' if sanitized else ''}")
        cap = rss_cap_kib()
        assert max_rss[0] < cap, f"daemon RSS {max_rss[0]} KiB under a flood (cap {cap} KiB)"
        if not sanitized:
            assert not timed_out and sent["writer"] == total, (
                f"the writer got {sent['writer']} of {total} bytes out within {bound:.0f} s: "
                f"{errors}; ssh stderr:\n{writer.stderr_text()}")
        assert timed_out or sent["writer"] == total, f"the writer stopped early: {errors}"
        assert sent["writer"] >= 64 << 20, f"writer hardly sent anything: {sent}, {errors}"
        if not timed_out:
            assert ended, "the flood session did not end within 60 s of EOF on its stdin"
            codes = status_codes(replies)
            bad = [c for c in codes if c[0] != FXP_STATUS or c[2] != 0][:5]
            assert not bad and len(codes) == FLOOD_WRITES, (
                f"{len(codes)} replies to {FLOOD_WRITES} WRITEs; not OK: {bad}")
            assert sorted(c[1] for c in codes) == list(range(2, 2 + FLOOD_WRITES))
            assert flood_size == total, f"flood.csv has {flood_size} bytes, not {total}"
    finally:
        stop.set()
        for t in threads:
            t.join(15)
        writer.close()
        if reader is not None:
            reader.close()
        with d.sftp(KMD, key(keyset, KMD)) as s:
            for n in ("flood.csv", "big-read.csv"):
                attempt(s.remove, f"OUT/{n}")
        if flood_path.exists():
            flood_path.unlink()


# --------------------------------------------------------------------------------------------
# Delivered files are immutable


def test_delivered_files_cannot_be_changed(d, keyset):
    """In the recipient's IN: setstat (mode, times, size), truncate, open for write or append,
    rename, symlink and hard-link-like tricks all fail; the bytes stay the sender's. A sender's
    handle still open for writing holds the transfer back until it closes; what is delivered is
    exactly what was written, and the spool copy cannot be reached through a later open."""
    name = fresh("immutable")
    data = os.urandom(100_000)
    with d.sftp(KMD, key(keyset, KMD)) as s:
        f = s.open(f"OUT/{name}", "wb")
        f.write(data[:50_000])
        f.flush()
        s.putfo(io.BytesIO(trigger_xml(name, len(data), KMD, [FLIS], inf_ref=DELIVER)),
                f"OUT/{name}.trigger", confirm=False)
        time.sleep(0.3)  # the trigger is there; the data file is still open for writing
        f.write(data[50_000:])
        f.close()
        r = wait_receipt(d, KMD, name)
        assert "Receipt" in r, r
    delivered = d.in_dir(FLIS) / name
    assert delivered.read_bytes() == data
    with d.sftp(FLIS, key(keyset, FLIS)) as s:
        p = f"IN/{name}"
        for call, args in ((s.chmod, (p, 0o666)), (s.utime, (p, (1, 1))),
                           (s.truncate, (p, 0)), (s.open, (p, "r+b")), (s.open, (p, "ab")),
                           (s.open, (p, "wb")), (s.rename, (p, f"IN/{name}.x")),
                           (s.rename, (p, f"OUT/{name}")), (s.symlink, (p, f"OUT/{name}")),
                           (s.posix_rename, (p, f"IN/{name}.y"))):
            status, result = attempt(call, *args)
            if status == "ok" and call == s.open:
                result.close()
            assert status == "err", f"{call.__name__}{args} succeeded in IN"
        # Reading with attributes on open is allowed and changes nothing.
        assert s.open(p, "rb").read() == data
        # A write through a read handle fails.
        f = s.open(p, "rb")
        status, _ = attempt(lambda: (f.write(b"x"), f.flush()))
        f.close()
        assert status == "err", "write through a read handle succeeded"
    assert delivered.read_bytes() == data
    assert delivered.stat().st_mode & 0o222 == 0, oct(delivered.stat().st_mode)  # read-only
    # A raw writer who kept an OUT handle from before the take cannot reach the delivered file.
    name2 = fresh("kept-handle")
    c = raw_sftp(d, keyset)
    try:
        ptype, handle = c.open(f"OUT/{name2}", FXF_WRITE | FXF_CREAT | FXF_TRUNC)
        assert ptype == FXP_HANDLE
        c.send_packet(FXP_WRITE, RawSftp.string(handle) + struct.pack(">Q", 0) +
                      RawSftp.string(b"first\n"))
        assert c.reply()[0] == FXP_STATUS
        c.send_packet(FXP_CLOSE, RawSftp.string(handle))
        assert c.reply()[0] == FXP_STATUS
        with d.sftp(KMD, key(keyset, KMD)) as s:
            s.putfo(io.BytesIO(trigger_xml(name2, 6, KMD, [FLIS], inf_ref=DELIVER)),
                    f"OUT/{name2}.trigger", confirm=False)
        assert "Receipt" in wait_receipt(d, KMD, name2)
        # The closed handle is dead: a write on it fails.
        c.send_packet(FXP_WRITE, RawSftp.string(handle) + struct.pack(">Q", 0) +
                      RawSftp.string(b"CHANGED"))
        ptype, _, rest = c.reply()
        assert ptype == FXP_STATUS and struct.unpack(">I", rest[:4])[0] != 0
    finally:
        c.close()
    assert (d.in_dir(FLIS) / name2).read_bytes() == b"first\n"


# --------------------------------------------------------------------------------------------
# Names


WEIRD_NAMES = [
    b"OUT/a\x00b.csv", b"OUT/\x00", b"OUT/a\x01b.csv", b"OUT/a\nb.csv", b"OUT/a\rb.csv",
    b"OUT/a\x7fb.csv", b"OUT/\x1b[31mred.csv", b"OUT/\xc0\xaf.csv", b"OUT/\xc0\xae\xc0\xae",
    b"OUT/\xe0\x80\xaf.csv", b"OUT/\xff\xfe.csv", b"OUT/\xed\xa0\x80.csv", b"OUT/.hidden",
    b"OUT/.", b"OUT/..", b"OUT/" + b"x" * 244, b"OUT/" + "æ".encode() * 130, b"OUT/a/b.csv",
    b"OUT/" + b"x" * 5000,
    # Names a trigger (XML) cannot carry: white space at either end, which XML readers trim,
    # and the noncharacters U+FFFE and U+FFFF.
    b"OUT/ lead.csv", b"OUT/trail.csv ", b"OUT/trail ", b"OUT/trail .trigger",
    "OUT/nbsp.csv\u00a0".encode(), "OUT/\u3000ideo.csv".encode(), "OUT/a\ufffe.csv".encode(),
    "OUT/a\uffff.csv".encode(),
]


def test_weird_names_are_refused(d, keyset):
    """Names with NUL, control characters, overlong or otherwise invalid UTF-8, dot names,
    over-long names, sub-folders and names XML cannot carry: creating one fails with a status
    and the session goes on; nothing of them is left in OUT."""
    c = raw_sftp(d, keyset)
    try:
        for name in WEIRD_NAMES:
            ptype, rest = c.open(name, FXF_WRITE | FXF_CREAT | FXF_TRUNC)
            assert ptype == FXP_STATUS, f"created {name!r}"
            assert struct.unpack(">I", rest[:4])[0] != 0, f"OK status creating {name!r}"
    finally:
        c.close()
    with d.sftp(KMD, key(keyset, KMD)) as s:
        left = s.listdir("OUT")
        assert not [n for n in left if "\x00" in n or n.startswith(".") or len(n) > 243], left
    out_names = os.listdir(os.fsencode(d.out_dir(KMD)))
    assert not [n for n in out_names if b"\x00" in n or b"\n" in n or b"\xc0" in n], out_names
    assert not [n for n in out_names if n.strip() != n or b"\xef\xbf\xbe" in n], out_names


# --------------------------------------------------------------------------------------------
# Triggers


def xxe_trigger(name: str, size: int, target: Path) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<!DOCTYPE t [<!ENTITY xxe SYSTEM "file://{target}">]>\n'
            f'<ns2:Trigger xmlns:ns2="http://serviceplatformen.dk/xml/wsdl/soap11/SFTP/1/types">'
            f"<FileDescriptor><FileName>{name}</FileName><SizeInBytes>{size}</SizeInBytes>"
            f"<Sender>{KMD}</Sender><SendersFileId>&xxe;</SendersFileId>"
            f"<Recipients>{FLIS}</Recipients></FileDescriptor></ns2:Trigger>\n").encode()


def laughs_trigger(name: str, size: int) -> bytes:
    ents = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10))
    return (f'<?xml version="1.0"?>\n<!DOCTYPE lolz [{ents}]>\n'
            f'<ns2:Trigger xmlns:ns2="http://serviceplatformen.dk/xml/wsdl/soap11/SFTP/1/types">'
            f"<FileDescriptor><FileName>{name}</FileName><SizeInBytes>{size}</SizeInBytes>"
            f"<Sender>{KMD}</Sender><SendersFileId>&lol9;</SendersFileId>"
            f"<Recipients>{FLIS}</Recipients></FileDescriptor></ns2:Trigger>\n").encode()


def test_malicious_triggers_are_malformed(d, keyset):
    """XXE pointing at a canary, billion laughs, a 1 MiB trigger, UTF-16 and Latin-1 encodings:
    each gets TRIGGER_MALFORMED (1001), is delivered to nobody, and no canary byte appears in the
    receipt."""
    data = b"payload\n"
    target = d.out_dir(VICTIM) / "canary.csv"
    cases = {}
    n = fresh("xxe")
    cases[n] = xxe_trigger(n, len(data), target)
    n = fresh("laughs")
    cases[n] = laughs_trigger(n, len(data))
    n = fresh("big")  # over the 64 KiB a trigger may have, under the 1 MiB upload cap
    big = trigger_xml(n, len(data), KMD, [FLIS], inf_ref=DELIVER)
    cases[n] = big.replace(b"<FileDescriptor>", b"<FileDescriptor><!--" + b"x" * (512 << 10) +
                           b"-->")
    n = fresh("utf16")
    cases[n] = trigger_xml(n, len(data), KMD, [FLIS], inf_ref=DELIVER).decode().replace(
        'encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    n = fresh("latin1-æ")
    cases[n] = trigger_xml(n, len(data), KMD, [FLIS], inf_ref=DELIVER,
                           senders_file_id="blåbærgrød").decode().encode("latin-1")
    with d.sftp(KMD, key(keyset, KMD)) as s:
        for name, trig in cases.items():
            send_pair(s, name, data, trig)
        # 1 MiB and more: the server refuses the trigger's upload itself (a failure status).
        huge = fresh("huge")
        s.putfo(io.BytesIO(data), f"OUT/{huge}", confirm=False)
        f = s.open(f"OUT/{huge}.trigger", "wb")
        f.set_pipelined(False)  # paramiko's pipelined putfo drops a failed WRITE's status
        with pytest.raises(IOError):
            for _ in range(40):
                f.write(b"<a>" + b"x" * 32768)
                f.flush()
        try:
            f.close()
        except IOError:
            pass
        assert f"{huge}.trigger" not in s.listdir("OUT")
    for name in cases:
        r = wait_receipt(d, KMD, name, timeout=30)
        receipt_bytes = (d.in_dir(KMD) / (name + ".sftpreceipt")).read_bytes()
        SEEN.append(receipt_bytes)
        assert "ErrorMessage" in r, f"{name}: {r}"
        assert r["ErrorMessage"]["ErrorCode"] == "1001", f"{name}: {r}"
        assert not (d.in_dir(FLIS) / name).exists(), f"{name} was delivered"


def test_sender_spoofing_another_account(d, keyset):
    """A trigger whose `Sender` names another account (one with its own route to the same
    recipient) is SENDER_MISMATCH (1007) and delivered to nobody."""
    name = fresh("spoof")
    data = b"spoofed\n"
    with d.sftp(KMD, key(keyset, KMD)) as s:
        send_pair(s, name, data, trigger_xml(name, len(data), VICTIM, [FLIS], inf_ref=DELIVER))
    r = wait_receipt(d, KMD, name)
    assert r["ErrorMessage"]["ErrorCode"] == "1007", r
    assert not (d.in_dir(FLIS) / name).exists()
    assert not (d.in_dir(VICTIM) / (name + ".sftpreceipt")).exists()


def test_bad_triggers_cannot_stall_another_sender(d, keyset):
    """One sender streams bad triggers (random bytes, billion laughs, XXE, over 64 KiB, 9,000
    unclosed nested elements, and triggers whose data file never comes, each retried for
    trigger_grace) while another sender's transfers go on: each of those is delivered within
    STALL_BOUND s of its trigger while the stream still runs, and every bad trigger gets its own
    1001 or 1004 receipt in the end."""
    STALL_BOUND, FLOOD_MAX, FLOOD_SECONDS, GOOD = 10.0, 3000, 40.0, 6
    data = b"bad\n"

    def bad(i: int) -> tuple[str, bytes, bytes | None, str]:
        """(name, trigger, data or None, expected code) of the i-th bad trigger."""
        name = fresh(f"flood{i:03d}")
        kind = i % 6
        if kind == 0:
            return name, os.urandom(3000), data, "1001"
        if kind == 1:
            return name, laughs_trigger(name, len(data)), data, "1001"
        if kind == 2:
            return name, xxe_trigger(name, len(data), Path("/nonexistent/x")), data, "1001"
        if kind == 3:
            t = trigger_xml(name, len(data), KMD, [FLIS], inf_ref=DELIVER)
            return name, t.replace(b"<FileDescriptor>", b"<FileDescriptor><!--" +
                                   b"x" * (70 << 10) + b"-->"), data, "1001"
        if kind == 4:
            t = trigger_xml(name, len(data), KMD, [FLIS], inf_ref=DELIVER)
            deep = b"<a>" * 9000  # never closed: not well-formed, under 64 KiB
            return name, t.replace(b"</FileDescriptor>", deep + b"</FileDescriptor>"), data, \
                "1001"
        return name, trigger_xml(name, len(data), KMD, [FLIS], inf_ref=DELIVER), None, "1004"

    flood: dict[str, str] = {}  # name -> expected code
    flood_times: list[float] = []
    errors: list[str] = []
    stop = threading.Event()

    def flooder() -> None:
        try:
            deadline = time.monotonic() + FLOOD_SECONDS
            with d.sftp(KMD, key(keyset, KMD)) as s:
                for i in range(FLOOD_MAX):
                    if stop.is_set() or time.monotonic() > deadline:
                        break
                    name, trig, payload, code = bad(i)
                    if payload is not None:
                        s.putfo(io.BytesIO(payload), f"OUT/{name}", confirm=False)
                    s.putfo(io.BytesIO(trig), f"OUT/{name}.trigger", confirm=False)
                    flood[name] = code
                    flood_times.append(time.monotonic())
        except Exception as e:  # reported below
            errors.append(f"flooder: {type(e).__name__}: {e}")

    t = threading.Thread(target=flooder, daemon=True)
    t.start()
    good: list[tuple[str, float, float]] = []  # name, trigger sent, receipt seen
    try:
        wait_until(lambda: len(flood_times) >= 30 or errors or not t.is_alive(), 30,
                   "the flood to start")
        assert not errors, errors
        with d.sftp(VICTIM, key(keyset, VICTIM)) as s:
            for i in range(GOOD):
                name = fresh(f"good{i}")
                payload = os.urandom(5000)
                s.putfo(io.BytesIO(payload), f"OUT/{name}", confirm=False)
                s.putfo(io.BytesIO(trigger_xml(name, len(payload), VICTIM, [FLIS],
                                               inf_ref=DELIVER)), f"OUT/{name}.trigger",
                        confirm=False)
                sent = time.monotonic()
                r = wait_receipt(d, VICTIM, name, timeout=STALL_BOUND)
                took = time.monotonic() - sent
                assert "Receipt" in r, f"{name}: {r}"
                assert (d.in_dir(FLIS) / name).read_bytes() == payload
                good.append((name, sent, took))
                time.sleep(0.3)  # let the stream go on between good transfers
    finally:
        stop_at = time.monotonic()
        stop.set()
        t.join(timeout=60)
    assert not t.is_alive(), "the flooding thread hung"
    assert not errors, errors
    # The good transfers ran while the flood did: it stopped only when told to.
    assert len(good) == GOOD
    assert len(flood) < FLOOD_MAX and flood_times[-1] > good[-1][1], (
        f"the stream ended before the last good transfer ({len(flood)} bad triggers, last "
        f"{stop_at - flood_times[-1]:.1f}s before the end)")
    assert len(flood) >= 60, f"only {len(flood)} bad triggers were sent"
    assert max(g[2] for g in good) < STALL_BOUND
    # Every bad trigger was answered, with the right code, and delivered nothing.
    for name, code in flood.items():
        r = wait_receipt(d, KMD, name, timeout=60)
        SEEN.append((d.in_dir(KMD) / (name + ".sftpreceipt")).read_bytes())
        assert r.get("ErrorMessage", {}).get("ErrorCode") == code, f"{name}: {r}"
        assert not (d.in_dir(FLIS) / name).exists(), f"{name} was delivered"


# --------------------------------------------------------------------------------------------
# Last: the canaries


def assert_canaries_intact() -> None:
    for p, (data, mtime) in CANARIES.items():
        assert p.read_bytes() == data, f"canary {p} changed"
        assert p.stat().st_mtime_ns == mtime, f"canary {p} was touched"


def test_zz_no_canary_byte_ever_left_its_place(d):
    """Runs last: the marker is in no byte any client received, in no file of the attacker's or
    the recipient's jail (data, metadata, receipts), every canary is unchanged, and the daemon's
    log holds no private key material."""
    assert SEEN, "no client output was recorded"
    marker = MARKER.encode()
    for i, blob in enumerate(SEEN):
        assert marker not in blob, f"canary marker in client output #{i}: {blob[:200]!r}"
    for account in (KMD, FLIS):
        for p in d.jail(account).rglob("*"):
            if p.is_file() and not p.is_symlink():
                assert marker not in p.read_bytes(), f"canary marker in {p}"
    assert_canaries_intact()
    log = d.stderr_text()
    assert "PRIVATE KEY" not in log
    for host_key in (d.workdir / "keys" / "host_ed25519", d.workdir / "keys" / "host_rsa"):
        body = "".join(l for l in host_key.read_text().splitlines() if "PRIVATE KEY" not in l)
        for i in range(0, len(body) - 40, 40):  # any 40-character slice of the base64 body
            assert body[i:i + 40] not in log, f"host key material of {host_key.name} in the log"
