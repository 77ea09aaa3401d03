"""Limits (issue 6): unauthenticated connections, the authentication-failure ban, open handles per
session and out_quota. Each test ends by showing the daemon still serves a fresh login.

Sources other than 127.0.0.1 are made by binding the client socket to 127.0.0.2, 127.0.0.3, ...
(Linux routes all of 127/8 to the loopback interface)."""
from __future__ import annotations

import os
import resource
import signal
import socket
import time
from pathlib import Path

import paramiko
import pytest

from harness import AccountSpec, db_rows, load_pkey, wait_until

SESSION_ERRORS = (paramiko.SSHException, EOFError, OSError)


def vendor(keyset, extra: str = "") -> AccountSpec:
    return AccountSpec("vendor", [keyset.key("ed25519")], extra=extra)


def flis(keyset) -> AccountSpec:
    return AccountSpec("flis", [keyset.key("ecdsa256")])


def connect_from(d, source: str, timeout: float = 10.0) -> socket.socket:
    """A TCP connection to the daemon whose source address is `source`."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect(d.addresses[0])
    return s


def login_from(d, source: str, user: str, key: Path) -> paramiko.Transport:
    """An authenticated Transport from `source` (raises on failure)."""
    t = paramiko.Transport(connect_from(d, source))
    t.banner_timeout = t.handshake_timeout = t.auth_timeout = 15
    try:
        t.start_client(timeout=15)
        t.auth_publickey(user, load_pkey(key))
        assert t.is_authenticated()
    except Exception:
        t.close()
        raise
    return t


def can_login(d, source: str, user: str, key: Path) -> bool:
    """True when `user` logs in from `source` and sees its two folders."""
    try:
        t = login_from(d, source, user, key)
    except SESSION_ERRORS:
        return False
    try:
        sftp = paramiko.SFTPClient.from_transport(t)
        return sorted(sftp.listdir("/")) == ["IN", "OUT"]
    except SESSION_ERRORS:
        return False
    finally:
        t.close()


def fail_login(d, source: str, user: str, key: Path) -> None:
    """One failed login (a key the account does not have), the connection then closed."""
    with pytest.raises(paramiko.AuthenticationException):
        login_from(d, source, user, key)


def dropped_at_once(s: socket.socket) -> bool:
    """True when the server closed the connection without sending anything (not even its
    identification line), as it does to connections over the unauthenticated limits."""
    try:
        return s.recv(64) == b""
    except ConnectionResetError:
        return True


def limit_rows(d, needle: str) -> list:
    return db_rows(d.state / "audit.db",
                   "SELECT * FROM events WHERE kind = 'limit' AND detail LIKE ?",
                   (f"%{needle}%",))


def test_slowloris_connections_are_capped_per_address_and_overall(daemons, keyset):
    """Connections that never authenticate hold at most max_unauthenticated_per_address slots of
    their source and max_unauthenticated overall; the next ones are dropped at once, the first
    drop of a run is logged and audited (once, however many follow), another source still logs
    in, and once the idle connections are gone the blocked source logs in again."""
    d = daemons.create([vendor(keyset)], server_extra=(
        'max_unauthenticated = 8\nmax_unauthenticated_per_address = 4\nlogin_grace = "120s"'))
    held: list[socket.socket] = []
    try:
        for _ in range(4):
            s = connect_from(d, "127.0.0.1")
            assert s.recv(8) == b"SSH-2.0-", "a connection within the limit gets the banner"
            held.append(s)
        for _ in range(5):
            with connect_from(d, "127.0.0.1") as s:
                assert dropped_at_once(s), "a fifth idle connection from one address was kept"
        d.wait_log(r'event=limit peer=127\.0\.0\.1:\d+ '
                   r'limit="max_unauthenticated_per_address \(4\) reached"')
        assert can_login(d, "127.0.0.2", "vendor", keyset.key("ed25519")), (
            "another source could not log in while 127.0.0.1 was at its limit")
        for _ in range(4):
            s = connect_from(d, "127.0.0.3")
            assert s.recv(8) == b"SSH-2.0-"
            held.append(s)
        with connect_from(d, "127.0.0.4") as s:
            assert dropped_at_once(s), "a ninth idle connection overall was kept"
        d.wait_log(r'limit="max_unauthenticated \(8\) reached"')
        wait_until(lambda: len(limit_rows(d, "max_unauthenticated (8)")) == 1, 10,
                   "the overall limit audited")
        wait_until(lambda: len(limit_rows(d, "max_unauthenticated_per_address (4)")) == 1, 10,
                   "the per-address limit audited")
    finally:
        for s in held:
            s.close()
    wait_until(lambda: can_login(d, "127.0.0.1", "vendor", keyset.key("ed25519")), 20,
               "a fresh login from 127.0.0.1 once its idle connections closed")
    assert len(limit_rows(d, "max_unauthenticated_per_address (4)")) == 1, (
        "five drops in one run were audited more than once")
    assert d.running()


@pytest.mark.parametrize("spare", [0, 1], ids=["none-spare", "one-spare"])
def test_running_out_of_descriptors_pauses_accepting(daemons, keyset, spare):
    """Out of file descriptors, accept() fails while the connection stays queued and the listening
    socket stays readable; with one descriptor to spare, accept() succeeds but the session cannot
    get the second descriptor it needs, and that connection is dropped. Either way the daemon
    pauses accepting (100 ms, doubling up to 1 s) instead of retrying in a busy loop, its open
    sessions keep working, and it serves logins again once descriptors are free."""
    d = daemons.create([vendor(keyset)])
    key = keyset.key("ed25519")
    sessions = [login_from(d, "127.0.0.1", "vendor", key) for _ in range(2)]
    soft, hard = resource.prlimit(d.pid, resource.RLIMIT_NOFILE)
    since = d.stderr_size()
    queued: list[socket.socket] = []
    try:
        sftp = paramiko.SFTPClient.from_transport(sessions[0])
        in_use = len(os.listdir(f"/proc/{d.pid}/fd"))
        resource.prlimit(d.pid, resource.RLIMIT_NOFILE, (in_use + spare, hard))
        for _ in range(8):  # accepted by the kernel, waiting in the backlog
            queued.append(connect_from(d, "127.0.0.1"))
        d.wait_log(r'event=accept_paused error="[^"]+" retry_in_ms=100\b', since=since)
        time.sleep(2.0)  # long enough for a busy loop to log thousands of lines
        assert sorted(sftp.listdir("/")) == ["IN", "OUT"], "an open session stopped working"
        log = d.stderr_path.read_bytes()[since:].decode("utf-8", "replace")
        pauses = log.count("event=accept_paused")
        assert 1 <= pauses <= 10, f"{pauses} accept pauses logged in about 2 s"
        assert "event=accept_error" not in log, "accept failures were retried at once"
        assert "retry_in_ms=800" in log, "the pause did not grow while the shortage lasted"
        assert "event=accept_failed" not in log, "a session was started without its descriptors"
        assert d.running()
    finally:
        if d.running():
            resource.prlimit(d.pid, resource.RLIMIT_NOFILE, (soft, hard))
        for s in queued:
            s.close()
        for t in sessions:
            t.close()
    wait_until(lambda: can_login(d, "127.0.0.1", "vendor", key), 20,
               "a fresh login once descriptors were free again")


def test_ban_after_failed_logins_is_per_address_and_account(daemons, keyset):
    """ban_after failed logins of one (address, account) ban that pair: even the right key is
    refused from there, while the account still logs in from another address and the address
    as another account; allow-listed addresses are never banned; the ban is logged and
    audited once."""
    d = daemons.create([vendor(keyset), flis(keyset)], server_extra=(
        'ban_after = 3\nban_window = "10m"\nban_duration = "10m"\nban_allow = ["127.0.0.2"]'))
    wrong = keyset.key("rsa2048")
    for _ in range(3):
        fail_login(d, "127.0.0.1", "vendor", wrong)
    d.wait_log(r"event=ban address=127\.0\.0\.1 account=vendor failures=3 until=\S+Z")
    with pytest.raises(paramiko.AuthenticationException):
        login_from(d, "127.0.0.1", "vendor", keyset.key("ed25519"))
    d.wait_log(r"event=login_refused peer=127\.0\.0\.1:\d+ user=vendor reason=banned")
    assert can_login(d, "127.0.0.1", "flis", keyset.key("ecdsa256")), (
        "another account from the banned address was refused")
    assert can_login(d, "127.0.0.3", "vendor", keyset.key("ed25519")), (
        "the banned account from another address was refused")
    for _ in range(5):
        fail_login(d, "127.0.0.2", "vendor", wrong)
    assert can_login(d, "127.0.0.2", "vendor", keyset.key("ed25519")), (
        "an allow-listed address was banned")
    # Refusals during the ban neither extend it nor are audited again.
    wait_until(lambda: len(limit_rows(d, "banned after 3 failed logins")) == 1, 10,
               "the ban audited")
    rows = limit_rows(d, "banned after 3 failed logins")
    assert len(rows) == 1 and rows[0]["account"] == "vendor", [dict(r) for r in rows]
    assert d.stderr_text().count("event=ban ") == 1
    assert not can_login(d, "127.0.0.1", "vendor", keyset.key("ed25519")), "the ban ended early"
    # A reload that allow-lists the source lifts its ban.
    d.server_extra = d.server_extra.replace('["127.0.0.2"]', '["127.0.0.2", "127.0.0.1"]')
    d.write_config()
    since = d.stderr_size()
    d.send_signal(signal.SIGHUP)
    d.wait_log(r"event=reloaded", since)
    assert can_login(d, "127.0.0.1", "vendor", keyset.key("ed25519")), (
        "allow-listing the source by a reload did not lift its ban")


def test_ban_ends_after_its_duration(daemons, keyset):
    """A ban lasts ban_duration; then the right key works again from the same address."""
    d = daemons.create([vendor(keyset)], server_extra='ban_after = 2\nban_duration = "2s"')
    for _ in range(2):
        fail_login(d, "127.0.0.1", "vendor", keyset.key("rsa2048"))
    d.wait_log(r"event=ban address=127\.0\.0\.1 account=vendor")
    wait_until(lambda: can_login(d, "127.0.0.1", "vendor", keyset.key("ed25519")), 30,
               "a login after the ban ended", interval=0.5)


def test_ten_thousand_open_handles_in_one_session(daemons, keyset):
    """10,000 opens in one session: the first max_handles_per_session succeed, the rest fail
    with a clear status, the limit is logged and audited once, closing works and the freed
    handles are usable again; then a fresh login works."""
    d = daemons.create([vendor(keyset)], server_extra="max_handles_per_session = 100")
    t = login_from(d, "127.0.0.1", "vendor", keyset.key("ed25519"))
    try:
        sftp = paramiko.SFTPClient.from_transport(t)
        sftp.get_channel().settimeout(30)
        with sftp.open("/OUT/f", "w") as f:
            f.write(b"x")
        files = []
        refused = 0
        deadline = time.monotonic() + 150
        for i in range(10_000):
            assert time.monotonic() < deadline, f"10,000 opens took too long (at {i})"
            try:
                files.append(sftp.open("/OUT/f", "r"))
            except IOError as e:
                assert "too many open handles: max_handles_per_session (100) reached" in str(e)
                refused += 1
        assert len(files) == 100 and refused == 9_900
        with pytest.raises(IOError, match="too many open handles"):
            sftp.listdir("/OUT")  # OPENDIR counts too
        for f in files:
            f.close()
        assert sftp.listdir("/OUT") == ["f"]
        assert sftp.open("/OUT/f", "r").read() == b"x"
    finally:
        t.close()
    wait_until(lambda: len(limit_rows(d, "max_handles_per_session (100)")) == 1, 10,
               "the handle limit audited")
    d.wait_log(r'event=limit account=vendor peer=\S+ limit="max_handles_per_session \(100\)')
    assert can_login(d, "127.0.0.1", "vendor", keyset.key("ed25519"))


def test_the_handle_limit_is_the_connections_across_its_channels(daemons, keyset):
    """A session is one SSH connection (contract §1): max_handles_per_session bounds the handles
    of all its SFTP channels together, else one connection could hold 64 channels' worth of
    descriptors and lock every other account out. Closing handles in one channel makes room in
    another."""
    d = daemons.create([vendor(keyset), flis(keyset)], server_extra="max_handles_per_session = 30")
    t = login_from(d, "127.0.0.1", "vendor", keyset.key("ed25519"))
    try:
        channels = [paramiko.SFTPClient.from_transport(t) for _ in range(3)]
        with channels[0].open("/OUT/f", "w") as f:
            f.write(b"x")
        held = {i: [] for i in range(3)}
        for i, sftp in enumerate(channels):
            for _ in range(20):
                try:
                    held[i].append(sftp.open("/OUT/f", "r"))
                except IOError as e:
                    assert "max_handles_per_session (30) reached" in str(e)
                    break
        assert [len(held[i]) for i in range(3)] == [20, 10, 0]
        for f in held[0]:
            f.close()
        assert channels[2].open("/OUT/f", "r").read() == b"x"
        assert can_login(d, "127.0.0.1", "flis", keyset.key("ecdsa256"))
    finally:
        t.close()


def test_a_connection_opens_channel_after_channel(daemons, keyset):
    """Clients that keep a connection and open an SFTP channel per job (paramiko's open_sftp,
    JSch, OpenSSH ControlMaster) are limited in channels open at once, not over the
    connection's life: 150 channels opened and closed one after another all work."""
    d = daemons.create([vendor(keyset)])
    t = login_from(d, "127.0.0.1", "vendor", keyset.key("ed25519"))
    try:
        for i in range(150):
            sftp = paramiko.SFTPClient.from_transport(t)
            assert sorted(sftp.listdir("/")) == ["IN", "OUT"], i
            sftp.close()
        assert t.is_active()
    finally:
        t.close()
    assert can_login(d, "127.0.0.1", "vendor", keyset.key("ed25519"))


def test_out_quota_refuses_writes_beyond_it(daemons, keyset):
    """out_quota caps the bytes an account holds in /OUT: a write beyond fails with "quota
    exceeded", the failed upload is not announced for routing, the limit is audited, and once
    files leave /OUT there is room again."""
    d = daemons.create([vendor(keyset, extra='out_quota = "1KiB"')])
    with d.sftp("vendor", keyset.key("ed25519")) as sftp:
        with sftp.open("/OUT/a", "w") as f:
            f.write(b"a" * 800)
        with pytest.raises(IOError, match="quota exceeded"):
            with sftp.open("/OUT/b", "w") as f:
                f.write(b"b" * 400)
        assert sftp.stat("/OUT/a").st_size == 800
        d.wait_log(r'event=limit account=vendor peer=\S+ limit="out_quota: b: quota exceeded')
        assert 'event=upload_closed account=vendor name="a" size=800' in d.stderr_text()
        assert 'event=upload_closed account=vendor name="b"' not in d.stderr_text(), (
            "the failed upload was announced")
        sftp.remove("/OUT/a")
        with sftp.open("/OUT/b", "w") as f:
            f.write(b"b" * 1000)
    d.wait_log(r'event=upload_closed account=vendor name="b" size=1000')
    wait_until(lambda: len(limit_rows(d, "out_quota: b")) == 1, 10, "the quota audited")
    assert can_login(d, "127.0.0.1", "vendor", keyset.key("ed25519"))


def test_idle_timeout_closes_a_quiet_session_and_not_a_busy_one(daemons, keyset):
    """idle_timeout (contract §9): a logged-in session with no traffic is closed after it; one
    that keeps working is not, however long it lasts."""
    d = daemons.create([vendor(keyset)], server_extra='idle_timeout = "2s"')
    quiet = login_from(d, "127.0.0.1", "vendor", keyset.key("ed25519"))
    busy = login_from(d, "127.0.0.1", "vendor", keyset.key("ed25519"))
    try:
        busy_sftp = paramiko.SFTPClient.from_transport(busy)
        paramiko.SFTPClient.from_transport(quiet)  # a channel open, then nothing
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # 5 s of work, a request every 0.5 s
            assert sorted(busy_sftp.listdir("/")) == ["IN", "OUT"]
            time.sleep(0.5)
        assert busy.is_active(), "a working session was closed"
        wait_until(lambda: not quiet.is_active(), 5, "the quiet session to be closed")
        d.wait_log(r'event=disconnect peer=\S+ account=vendor reason="idle timeout"')
        assert d.stderr_text().count('reason="idle timeout"') == 1
    finally:
        quiet.close()
        busy.close()
    assert can_login(d, "127.0.0.1", "vendor", keyset.key("ed25519"))
