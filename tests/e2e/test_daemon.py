"""fordelerd as a process (contract §9, §10, §1 limits): configuration errors, signals, restart
on the same port, reload, IPv6, hostile peers, login_grace, the SFTP packet cap, session limits,
systemd notification, keyboard-interactive refused, TCP_NODELAY, SIGTERM during an upload.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

import paramiko
import pytest

from harness import (AccountSpec, assert_no_sanitizer_report, connect_transport, data_areas_toml,
                     db_rows, fordeler_path, fordelerd_path, have_ipv6_loopback, pubkey_line,
                     raw_socket, refused_start, render_config, run, trigger_xml, wait_until)

KEY_NAMES = ["ed25519", "ecdsa256", "flis_ed25519", "new_ed25519", "weak_rsa1024"]

SESSION_ERRORS = (paramiko.SSHException, EOFError, OSError)


def line_of(text: str, needle: str) -> int:
    for i, line in enumerate(text.split("\n"), 1):
        if needle in line:
            return i
    raise AssertionError(f"{needle!r} not in config:\n{text}")


def vendor(keyset, *names: str) -> AccountSpec:
    return AccountSpec("vendor", [keyset.key(n) for n in (names or ("ed25519",))], use_file=True)


def flis(keyset) -> AccountSpec:
    return AccountSpec("flis", [keyset.key("flis_ed25519")])


def can_login(d, user, key, address=None) -> bool:
    try:
        with d.sftp(user, key, address) as s:
            return sorted(s.listdir("/")) == ["IN", "OUT"]
    except SESSION_ERRORS:
        return False


def assert_session_ends(ch_or_sftp_call, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            ch_or_sftp_call()
        except SESSION_ERRORS:
            return
        time.sleep(0.2)
    pytest.fail(f"{what}: session still usable after {timeout}s", pytrace=False)


# ------------------------------------------------------------------------------------------
# Configuration errors


@pytest.mark.parametrize("case", ["unknown_key", "toml_syntax", "rsa1024", "duplicate_account",
                                  "missing_host_key", "route_unknown_account", "bad_duration"])
def test_config_error_names_file_and_line(daemons, keyset, tmp_path, case):
    d = daemons.create([vendor(keyset)], start=False)
    accounts = [vendor(keyset)]
    server_extra = extra = ""
    if case == "unknown_key":
        server_extra, needle = "bogus_setting = 1", "bogus_setting"
    elif case == "toml_syntax":
        server_extra, needle = "max_sessions = = 3", "max_sessions = = 3"
    elif case == "rsa1024":
        accounts.append(AccountSpec("weak", [keyset.key("weak_rsa1024")]))
        needle = pubkey_line(keyset.key("weak_rsa1024"))[:40]
    elif case == "duplicate_account":
        accounts.append(AccountSpec("vendor", [keyset.key("ecdsa256")]))
        needle = None  # the second `id = "vendor"`
    elif case == "missing_host_key":
        needle = "host_keys"
    elif case == "route_unknown_account":
        extra = ('[[data_area]]\nid = "oekonomi"\nname = "Økonomi"\n'
                 'deliver_service = "FLISOekonomiAflever_1"\nfetch_service = "FLISOekonomiHent_1"\n'
                 '[[route]]\nid = "r1"\ndata_area = "oekonomi"\nsender = "vendor"\n'
                 'authorities = ["*"]\nrecipients = ["no-such-account"]\n')
        needle = '"no-such-account"'
    elif case == "bad_duration":
        server_extra, needle = 'login_grace = "soon"', "login_grace"
    text = render_config(d.workdir, accounts, ["127.0.0.1:0"], server_extra, extra)
    if case == "missing_host_key":
        text = text.replace('"keys/host_rsa"', '"keys/no_such_key"')
    if case == "duplicate_account":
        lines = text.split("\n")
        line = [i for i, l in enumerate(lines, 1) if l == 'id = "vendor"'][1]
    else:
        line = line_of(text, needle)
    d.write_config(text)
    res = run([fordelerd_path(), "--config", str(d.config_path)], timeout=30, cwd=d.workdir)
    assert res.returncode > 0, (f"{case}: fordelerd exited with {res.returncode} (want non-zero "
                                f"exit status, no crash)\nstderr:\n{res.stderr}")
    assert "event=listening" not in res.stderr, res.stderr
    assert f"config.toml:{line}" in res.stderr, (
        f"{case}: stderr does not name config.toml:{line}\nconfig:\n{text}\nstderr:\n{res.stderr}")
    assert_no_sanitizer_report(res.stderr)


@pytest.mark.parametrize("case", ["rsa1024", "unknown_option"])
def test_authorized_keys_error_names_file_and_line(daemons, keyset, case):
    d = daemons.create([vendor(keyset)], start=False)
    good = pubkey_line(keyset.key("ed25519"))
    bad = (pubkey_line(keyset.key("weak_rsa1024")) if case == "rsa1024"
           else 'command="/bin/sh" ' + pubkey_line(keyset.key("ecdsa256")))
    text = render_config(d.workdir, [vendor(keyset)], ["127.0.0.1:0"])
    (d.workdir / "keys" / "vendor.pub").write_text(f"# vendor keys\n{good}\n{bad}\n")
    d.write_config(text)
    res = run([fordelerd_path(), "--config", str(d.config_path)], timeout=30, cwd=d.workdir)
    assert res.returncode > 0, f"{case}: exit status {res.returncode}\n{res.stderr}"
    assert "vendor.pub:3" in res.stderr, f"{case}: stderr does not name vendor.pub:3\n{res.stderr}"
    assert_no_sanitizer_report(res.stderr)


# ------------------------------------------------------------------------------------------
# Signals and restart


def test_sigterm_with_open_sessions_exits_zero(daemons, keyset):
    d = daemons.create([vendor(keyset)])
    s = d.sftp("vendor", keyset.key("ed25519"))
    f = s.sftp.open("/OUT/half_written.dat", "wb")
    f.write(b"x" * 100_000)
    f.flush()
    raw = raw_socket(d.host, d.port)  # an unauthenticated connection too
    try:
        t0 = time.monotonic()
        rc = d.stop(signal.SIGTERM)
        assert rc == 0, f"exit status {rc} after SIGTERM\n{d.stderr_text()[-3000:]}"
        assert time.monotonic() - t0 < 10, "SIGTERM took too long"
    finally:
        raw.close()
        s.transport.close()
    assert_no_sanitizer_report(d.stderr_text())


def test_sigkill_then_immediate_restart_on_same_port(daemons, keyset):
    d = daemons.create([vendor(keyset)])  # port 0: no other job can take the port meanwhile
    port = d.port
    d.listen = [f"127.0.0.1:{port}"]  # the restart asks for the same port
    d.write_config()
    s = d.sftp("vendor", keyset.key("ed25519"))  # an established connection at kill time
    assert "OUT" in s.sftp.listdir("/")
    d.proc.kill()
    d.proc.wait(timeout=10)
    d._close_log()
    try:
        d.start()  # at once: no sleep
        assert d.addresses == [("127.0.0.1", port)]
        assert can_login(d, "vendor", keyset.key("ed25519")), "no login after restart"
    finally:
        s.transport.close()


def test_a_second_daemon_on_the_same_storage_root_refuses_to_start(daemons, keyset):
    """A fordelerd started by hand beside the running one (same configuration) must not touch
    its state: no recovery or retention of its own, and the running daemon's control socket
    stays (it used to be replaced, then removed, so `fordeler retry` said "not running")."""
    d = daemons.create([vendor(keyset)])  # listen port 0: the second one could listen too
    sock = d.state / "control.sock"
    assert sock.exists()
    err = refused_start(d.config_path, f"a second time on {d.state}")
    assert "another fordelerd" in err, err
    assert "event=listening" not in err and "event=control_socket" not in err, err
    assert sock.exists(), "the running daemon's control socket was removed"
    r = run([fordeler_path(), "--config", str(d.config_path), "retry",
             "01a24daf-0000-7000-8000-000000000000"])
    assert r.returncode == 1 and "not running" not in r.stderr, r.stderr
    assert can_login(d, "vendor", keyset.key("ed25519"))


def test_a_second_daemon_on_the_same_database_refuses_to_start(daemons, keyset):
    """Another storage root but the same [database] path: the second fordelerd must not write
    the running one's audit chain (it used to start, and the first one's writes then failed
    with "UNIQUE constraint failed: events.seq"). The CLI still reads the database."""
    d = daemons.create([vendor(keyset)])
    db = d.state / "audit.db"
    other = daemons.create([vendor(keyset)], start=False)
    text = other.config_path.read_text()
    assert 'path = "state/audit.db"' in text
    other.write_config(text.replace('path = "state/audit.db"', f'path = "{db}"'))
    err = refused_start(other.config_path, f"a second time on the database {db}",
                        cwd=other.workdir)
    assert f"another fordelerd uses the database {db}" in err, err
    assert "event=listening" not in err and "event=recovery" not in err, err
    # The running daemon records on; the CLI reads beside it.
    assert can_login(d, "vendor", keyset.key("ed25519"))
    r = run([fordeler_path(), "--config", str(d.config_path), "audit", "verify"])
    assert r.returncode == 0 and r.stdout.startswith("audit log OK: "), r


# ------------------------------------------------------------------------------------------
# Reload


def test_sighup_adds_account(daemons, keyset):
    d = daemons.create([vendor(keyset)])
    assert not can_login(d, "newcomer", keyset.key("new_ed25519"))
    d.accounts = [vendor(keyset), AccountSpec("newcomer", [keyset.key("new_ed25519")])]
    d.write_config()
    d.send_signal(signal.SIGHUP)
    wait_until(lambda: can_login(d, "newcomer", keyset.key("new_ed25519")), 10,
               "the account added by SIGHUP can log in")
    with d.sftp("newcomer", keyset.key("new_ed25519")) as s:
        with s.open("/OUT/hello.csv", "wb") as f:
            f.write(b"hi")
    assert (d.out_dir("newcomer") / "hello.csv").read_bytes() == b"hi"
    assert can_login(d, "vendor", keyset.key("ed25519"))


def test_sighup_with_broken_config_keeps_running_config(daemons, keyset):
    d = daemons.create([vendor(keyset)])
    session = d.sftp("vendor", keyset.key("ed25519"))
    try:
        good = d.config_path.read_text()
        broken = good.replace("[storage]", "[storage]\nnot_a_setting = true")
        line = line_of(broken, "not_a_setting")
        d.write_config(broken + '\n[[account]]\nid = "newcomer"\nkeys = ["'
                       + pubkey_line(keyset.key("new_ed25519")) + '"]\n')
        offset = d.stderr_size()
        d.send_signal(signal.SIGHUP)
        d.wait_log(rf"config\.toml:{line}", since=offset, timeout=10)
        assert d.running(), f"a bad reload stopped the daemon:\n{d.stderr_text()[-3000:]}"
        assert can_login(d, "vendor", keyset.key("ed25519")), "old account lost by a bad reload"
        assert not can_login(d, "newcomer", keyset.key("new_ed25519")), (
            "an account from a refused configuration can log in")
        assert sorted(session.sftp.listdir("/")) == ["IN", "OUT"], "open session broken"
        # A good reload after the bad one still works.
        d.accounts = [vendor(keyset), AccountSpec("newcomer", [keyset.key("new_ed25519")])]
        d.write_config()
        d.send_signal(signal.SIGHUP)
        wait_until(lambda: can_login(d, "newcomer", keyset.key("new_ed25519")), 10,
                   "a good reload after a refused one takes effect")
    finally:
        session.close()


def thread_names(pid: int) -> list[str]:
    return sorted(Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
                  for tid in os.listdir(f"/proc/{pid}/task"))


def test_sighup_leaves_the_worker_count_to_a_restart(daemons, keyset):
    """[delivery] workers sizes the pool at start: a reload that changes it says so in the log
    (event=reload_partial) and keeps the pool; every thread the daemon starts is named."""
    d = daemons.create([vendor(keyset)], extra="[delivery]\nworkers = 3\n")
    # A thread names itself when it starts running, which may be just after event=ready.
    wait_until(lambda: thread_names(d.proc.pid).count("fordelerd") == 1, 5,
               "every thread but the main one to name itself", interval=0.02)
    names = thread_names(d.proc.pid)
    assert names.count("delivery") == 3, names
    assert names.count("fordelerd") == 1, f"an unnamed thread besides the main one: {names}"
    assert "audit-writer" in names and "folder-watch" in names, names
    good = d.config_path.read_text()
    d.write_config(good.replace("workers = 3", "workers = 5"))
    offset = d.stderr_size()
    d.send_signal(signal.SIGHUP)
    d.wait_log(r"event=reload_partial restart_needed=delivery\.workers ", since=offset,
               timeout=10)
    d.wait_log(r"event=reloaded", since=offset, timeout=10)
    assert thread_names(d.proc.pid).count("delivery") == 3
    # A second reload still says so: the pool is still the one of the start.
    offset = d.stderr_size()
    d.send_signal(signal.SIGHUP)
    d.wait_log(r"event=reload_partial restart_needed=delivery\.workers ", since=offset,
               timeout=10)
    assert can_login(d, "vendor", keyset.key("ed25519"))


def test_sighup_leaves_the_storage_root_to_a_restart(daemons, keyset):
    """[storage] root changes only at restart, and until then no part of the daemon follows the
    new value: the SFTP server keeps the jails of the root the pipeline works in (an upload lands
    where it is routed from), and nothing is made under the new root."""
    d = daemons.create([vendor(keyset)])
    elsewhere = d.workdir / "elsewhere"  # made ready for the restart, say
    elsewhere.mkdir()
    good = d.config_path.read_text()
    assert 'root = "state"' in good
    d.write_config(good.replace('root = "state"', f'root = "{elsewhere}"'))
    offset = d.stderr_size()
    d.send_signal(signal.SIGHUP)
    d.wait_log(r"event=reload_partial restart_needed=storage\.root", since=offset, timeout=10)
    d.wait_log(r"event=reloaded", since=offset, timeout=10)
    with d.sftp("vendor", keyset.key("ed25519")) as s:
        with s.open("OUT/after-reload.csv", "wb") as f:
            f.write(b"x")
    assert (d.state / "accounts" / "vendor" / "OUT" / "after-reload.csv").read_bytes() == b"x"
    assert os.listdir(elsewhere) == []


def test_sighup_removing_account_or_key_ends_its_sessions(daemons, keyset):
    d = daemons.create([vendor(keyset, "ed25519", "ecdsa256"), flis(keyset)])
    fs = d.sftp("flis", keyset.key("flis_ed25519"))
    v_ed = d.sftp("vendor", keyset.key("ed25519"))
    v_ec = d.sftp("vendor", keyset.key("ecdsa256"))
    try:
        d.accounts = [vendor(keyset, "ecdsa256")]  # flis removed, vendor's ed25519 key removed
        d.write_config()
        d.send_signal(signal.SIGHUP)
        assert_session_ends(lambda: fs.sftp.listdir("/"), 10, "removed account flis")
        assert_session_ends(lambda: v_ed.sftp.listdir("/"), 10, "vendor's removed ed25519 key")
        assert sorted(v_ec.sftp.listdir("/")) == ["IN", "OUT"], "a kept key's session ended"
        assert not can_login(d, "flis", keyset.key("flis_ed25519"))
        assert not can_login(d, "vendor", keyset.key("ed25519"))
        assert can_login(d, "vendor", keyset.key("ecdsa256"))
    finally:
        for s in (fs, v_ed, v_ec):
            s.transport.close()


# ------------------------------------------------------------------------------------------
# Listening


def test_listens_on_ipv4_and_ipv6(daemons, keyset):
    if not have_ipv6_loopback():
        pytest.skip("this host has no IPv6 loopback (::1)")
    d = daemons.create([vendor(keyset)], listen=["127.0.0.1:0", "[::1]:0"])
    hosts = sorted(h for h, _ in d.addresses)
    assert hosts == ["127.0.0.1", "::1"], d.addresses
    for address in d.addresses:
        assert can_login(d, "vendor", keyset.key("ed25519"), address), f"no login via {address}"


# ------------------------------------------------------------------------------------------
# Hostile or slow peers


def read_until_closed(sock: socket.socket, timeout: float) -> float:
    """Reads and discards until the peer closes; returns the seconds it took."""
    t0 = time.monotonic()
    sock.settimeout(0.5)
    while time.monotonic() - t0 < timeout:
        try:
            if not sock.recv(65536):
                return time.monotonic() - t0
        except socket.timeout:
            continue
        except ConnectionResetError:
            return time.monotonic() - t0
    pytest.fail(f"connection still open after {timeout}s", pytrace=False)


def test_garbage_instead_of_banner(daemons, keyset):
    d = daemons.create([vendor(keyset)])
    for payload in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", os.urandom(4096),
                    b"SSH-1.5-ancient\r\n", b"\x00" * 300 + b"\r\n"):
        with raw_socket(d.host, d.port) as s:
            try:
                s.sendall(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass
            read_until_closed(s, 10)
    assert d.running(), d.stderr_text()[-3000:]
    assert can_login(d, "vendor", keyset.key("ed25519")), "no login after garbage connections"


def test_idle_unauthenticated_connections_do_not_block_logins(daemons, keyset):
    # The per-address cap is raised above the 100 idle connections: this is about the event loop
    # not being starved by them; test_limits.py tests the caps.
    d = daemons.create([vendor(keyset)], server_extra="max_unauthenticated_per_address = 128")
    idle = []
    try:
        for i in range(100):
            s = raw_socket(d.host, d.port)
            if i % 2:
                s.sendall(b"SSH-2.0-")  # half a banner, then silence
            idle.append(s)
        t0 = time.monotonic()
        assert can_login(d, "vendor", keyset.key("ed25519")), "no login beside idle connections"
        assert time.monotonic() - t0 < 5, "login took over 5 s beside 100 idle connections"
    finally:
        for s in idle:
            s.close()
    assert can_login(d, "vendor", keyset.key("ed25519"))


def test_login_grace(daemons, keyset):
    d = daemons.create([vendor(keyset)], server_extra='login_grace = "2s"')
    # 1. silent after the TCP connect (not even a banner)
    with raw_socket(d.host, d.port) as s:
        took = read_until_closed(s, 10)
    assert 1.0 <= took <= 6.0, f"silent connection dropped after {took:.1f}s, want ~2s"
    # 2. key exchange done, never authenticates
    t = connect_transport(d.host, d.port, "vendor", None, authenticate=False)
    t0 = time.monotonic()
    try:
        wait_until(lambda: not t.is_active(), 8, "unauthenticated transport dropped")
        took = time.monotonic() - t0
        assert took <= 6.0, took
    finally:
        t.close()
    # 3. an authenticated session outlives login_grace
    with d.sftp("vendor", keyset.key("ed25519")) as s:
        time.sleep(3.0)
        assert sorted(s.listdir("/")) == ["IN", "OUT"], "authenticated session dropped"


def recv_until_eof(ch: paramiko.Channel, timeout: float) -> None:
    ch.settimeout(0.5)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if not ch.recv(65536):
                return
        except socket.timeout:
            if ch.closed or not ch.get_transport().is_active():
                return
            continue
    pytest.fail(f"SFTP session not ended {timeout}s after an oversized packet", pytrace=False)


@pytest.mark.parametrize("after_init", [False, True], ids=["first-packet", "after-init"])
def test_oversized_sftp_packet_ends_session(daemons, keyset, after_init):
    d = daemons.create([vendor(keyset)])
    t = d.transport("vendor", keyset.key("ed25519"))
    try:
        ch = t.open_session(timeout=10)
        ch.invoke_subsystem("sftp")
        ch.settimeout(10)
        if after_init:
            ch.sendall(struct.pack(">IBI", 5, 1, 3))
            (n,) = struct.unpack(">I", ch.recv(4))
            assert ch.recv(n)[0] == 2
        ch.sendall(struct.pack(">IB", 300 * 1024, 3) + os.urandom(1024))
        recv_until_eof(ch, 10)
    finally:
        t.close()
    assert d.running(), d.stderr_text()[-3000:]
    assert can_login(d, "vendor", keyset.key("ed25519")), "no login after the oversized packet"


# ------------------------------------------------------------------------------------------
# Session limits (contract §1)


def test_max_sessions_per_account(daemons, keyset):
    d = daemons.create([vendor(keyset), flis(keyset)], server_extra="max_sessions_per_account = 2")
    a = d.sftp("vendor", keyset.key("ed25519"))
    b = d.sftp("vendor", keyset.key("ed25519"))
    try:
        assert not can_login(d, "vendor", keyset.key("ed25519")), "a third vendor session got in"
        assert can_login(d, "flis", keyset.key("flis_ed25519")), "the limit is per account"
        assert sorted(a.sftp.listdir("/")) == ["IN", "OUT"], "an older session was ended"
        assert sorted(b.sftp.listdir("/")) == ["IN", "OUT"], "an older session was ended"
        a.close()
        wait_until(lambda: can_login(d, "vendor", keyset.key("ed25519")), 10,
                   "a slot freed by a closed session is usable")
    finally:
        a.transport.close()
        b.transport.close()


def test_max_sessions(daemons, keyset):
    d = daemons.create([vendor(keyset), flis(keyset)], server_extra="max_sessions = 2\nmax_sessions_per_account = 2")
    a = d.sftp("vendor", keyset.key("ed25519"))
    b = d.sftp("flis", keyset.key("flis_ed25519"))
    try:
        assert not can_login(d, "vendor", keyset.key("ed25519")), "a third session got in"
        assert not can_login(d, "flis", keyset.key("flis_ed25519")), "a third session got in"
        assert sorted(a.sftp.listdir("/")) == ["IN", "OUT"]
        b.close()
        wait_until(lambda: can_login(d, "flis", keyset.key("flis_ed25519")), 10,
                   "a slot freed by a closed session is usable")
    finally:
        a.transport.close()
        b.transport.close()


# ------------------------------------------------------------------------------------------
# authorized_keys options (contract §1: from=, restrict, expiry-time=)


@dataclass
class AccountLines(AccountSpec):
    """An account whose authorized_keys lines are given as they are."""
    lines: list[str] = field(default_factory=list)

    def key_lines(self) -> list[str]:
        return self.lines


def test_authorized_keys_options(daemons, keyset):
    k = [keyset.key("ed25519")]
    cases = {  # account -> (options, may log in from 127.0.0.1)
        "from-exact": ('from="127.0.0.1"', True),
        "from-cidr": ('from="127.0.0.0/8"', True),
        "from-glob": ('from="127.0.0.?"', True),
        "from-star": ('from="*"', True),
        "from-other": ('from="10.0.0.0/8"', False),
        "from-other-glob": ('from="192.168.*"', False),
        "from-negated": ('from="!127.0.0.1,*"', False),
        "from-list": ('from="10.1.2.3,127.0.0.1"', True),
        "restricted": ("restrict", True),
        "expired": ('expiry-time="20000101"', False),
        "not-expired": ('expiry-time="20991231"', True),
        "not-expired-minutes": ('expiry-time="209912312359Z"', True),
        "far-future": ('expiry-time="29991231"', True),  # past 2262: beyond int64 nanoseconds
    }
    accounts = [AccountSpec(name, k, use_file=True, options=opt) for name, (opt, _) in cases.items()]
    # The same key on several lines: each line is tried, as sshd does (contract §1).
    line = pubkey_line(keyset.key("ed25519"))
    several = {  # account -> (its lines, may log in from 127.0.0.1)
        "renewed": ([f'expiry-time="20000101" {line}', f'expiry-time="20991231" {line}'], True),
        "from-second-line": ([f'from="10.0.0.0/8" {line}', f'from="127.0.0.1" {line}'], True),
        "no-line-fits": ([f'expiry-time="20000101" {line}', f'from="10.0.0.0/8" {line}'], False),
    }
    accounts += [AccountLines(name, lines=lines, use_file=True)
                 for name, (lines, _) in several.items()]
    d = daemons.create(accounts)
    expected = {name: ok for name, (_, ok) in cases.items()}
    expected.update({name: ok for name, (_, ok) in several.items()})
    wrong = {name: ok for name, ok in expected.items()
             if can_login(d, name, keyset.key("ed25519")) != ok}
    assert not wrong, f"login result differs from the options (account: expected login) {wrong}"


# ------------------------------------------------------------------------------------------
# Only SFTP: no exec, shell, other subsystems, forwarding


def test_no_exec_shell_subsystem_or_forwarding(daemons, keyset):
    d = daemons.create([vendor(keyset)])
    t = d.transport("vendor", keyset.key("ed25519"))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.5)
    try:
        for what, request in (("exec", lambda ch: ch.exec_command("id; cat /etc/passwd")),
                              ("shell", lambda ch: ch.invoke_shell()),
                              ("subsystem", lambda ch: ch.invoke_subsystem("netconf"))):
            ch = t.open_session(timeout=10)
            ch.settimeout(3)
            try:
                request(ch)
                out = b""
                for _ in range(100):
                    chunk = ch.recv(4096)
                    if not chunk:
                        break
                    out += chunk
            except (paramiko.SSHException, socket.timeout, EOFError):
                out = b""
            assert b"uid=" not in out and b"root:" not in out, f"{what} ran: {out[:200]!r}"
            ch.close()
        with pytest.raises(paramiko.SSHException):
            t.open_channel("direct-tcpip", dest_addr=listener.getsockname(),
                           src_addr=("127.0.0.1", 40000), timeout=10)
        with pytest.raises(socket.timeout):
            listener.accept()
        with pytest.raises(paramiko.SSHException):
            t.request_port_forward("127.0.0.1", 0)
        assert t.is_active()
    finally:
        listener.close()
        t.close()
    assert can_login(d, "vendor", keyset.key("ed25519"))


# ------------------------------------------------------------------------------------------
# Malformed SFTP packets: a malformed packet ends the session, a well-formed unknown or bad
# request gets a status; the daemon survives all of them.


def open_sftp_channel(d, keyset):
    t = d.transport("vendor", keyset.key("ed25519"))
    ch = t.open_session(timeout=10)
    ch.invoke_subsystem("sftp")
    ch.settimeout(10)
    ch.sendall(struct.pack(">IBI", 5, 1, 3))
    read_sftp_packet(ch)
    return t, ch


def recv_exact(ch, n: int) -> bytes:
    buf = b""
    for _ in range(100000):
        if len(buf) >= n:
            return buf
        chunk = ch.recv(n - len(buf))
        if not chunk:
            raise EOFError(f"channel closed after {len(buf)} of {n} bytes")
        buf += chunk
    raise AssertionError("recv loop bound reached")


def read_sftp_packet(ch) -> bytes:
    (n,) = struct.unpack(">I", recv_exact(ch, 4))
    assert n <= 256 * 1024, n
    return recv_exact(ch, n)


def status_of(body: bytes, request_id: int) -> int:
    assert body[0] == 101, f"expected SSH_FXP_STATUS, got type {body[0]}"
    rid, code = struct.unpack(">II", body[1:9])
    assert rid == request_id, (rid, request_id)
    return code


def sftp_string(b: bytes) -> bytes:
    return struct.pack(">I", len(b)) + b


def test_unknown_and_bad_requests_get_a_status(daemons, keyset):
    d = daemons.create([vendor(keyset)])
    t, ch = open_sftp_channel(d, keyset)
    try:
        ch.sendall(struct.pack(">IBI", 5, 50, 7))  # unknown type
        assert status_of(read_sftp_packet(ch), 7) == 8, "want SSH_FX_OP_UNSUPPORTED"
        body = struct.pack(">BI", 5, 8) + sftp_string(b"no-such-handle") + struct.pack(">QI", 0, 10)
        ch.sendall(struct.pack(">I", len(body)) + body)  # READ with a bad handle
        assert status_of(read_sftp_packet(ch), 8) != 0
        body = struct.pack(">BI", 200, 9) + sftp_string(b"no-such-extension@example.com")
        ch.sendall(struct.pack(">I", len(body)) + body)  # unknown extended request
        assert status_of(read_sftp_packet(ch), 9) == 8
        body = struct.pack(">BI", 16, 10) + sftp_string(b"/OUT/../OUT")  # REALPATH still works
        ch.sendall(struct.pack(">I", len(body)) + body)
        reply = read_sftp_packet(ch)
        assert reply[0] == 104 and b"/OUT" in reply, reply
    finally:
        t.close()


@pytest.mark.parametrize("packet", [
    struct.pack(">I", 0),  # empty packet
    struct.pack(">IB", 1, 3),  # OPEN without id
    struct.pack(">IBII", 9, 3, 1, 0xFFFFFFF0),  # OPEN with a string longer than the packet
    struct.pack(">IBI", 5, 1, 3),  # a second INIT
    struct.pack(">IBIIB", 10, 3, 2, 1, 0x2F),  # OPEN: truncated after the path
], ids=["empty", "no-id", "huge-string", "second-init", "truncated-open"])
def test_malformed_sftp_packet(daemons, keyset, packet):
    d = daemons.create([vendor(keyset)])
    t, ch = open_sftp_channel(d, keyset)
    try:
        ch.sendall(packet)
        ch.settimeout(0.5)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # a status reply or the end of the session
            try:
                data = ch.recv(65536)
            except socket.timeout:
                if ch.closed or not t.is_active():
                    break
                continue
            if not data:
                break
            if data[4:5] == bytes([101]):
                break
        else:
            pytest.fail("no status reply and no end of session within 10 s", pytrace=False)
    finally:
        t.close()
    assert d.running(), d.stderr_text()[-3000:]
    assert can_login(d, "vendor", keyset.key("ed25519"))


def test_max_sessions_below_default_per_account_limit_is_valid(daemons, keyset):
    """Both limits apply independently (contract §1); setting only max_sessions is valid."""
    d = daemons.create([vendor(keyset)], server_extra="max_sessions = 4")
    assert can_login(d, "vendor", keyset.key("ed25519"))


# ------------------------------------------------------------------------------------------
# systemd notification, keyboard-interactive, TCP_NODELAY, SIGTERM during a trigger's upload


class NotifySocket:
    """A unix datagram socket in the abstract namespace, bound by the test, as systemd's
    NOTIFY_SOCKET; collects every message with its arrival time."""

    def __init__(self):
        self.name = f"fordeler-e2e-notify-{os.getpid()}-{os.urandom(6).hex()}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.name)
        self.messages: list[tuple[float, str]] = []

    @property
    def env(self) -> str:
        return "@" + self.name

    def wait_for(self, pred, timeout: float, what: str) -> None:
        """Reads messages (bounded in time) until pred(messages) holds."""
        deadline = time.monotonic() + timeout
        while not pred(self.messages):
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"timed out after {timeout}s waiting for {what}; got "
                            f"{[m for _, m in self.messages][-20:]}", pytrace=False)
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            self.messages.append((time.monotonic(), data.decode()))

    def close(self) -> None:
        self.sock.close()


def notify_index(messages, field: str, start: int = 0) -> int:
    """Index of the first message from `start` on that has the line `field`, else -1."""
    for i in range(start, len(messages)):
        if field in messages[i][1].split("\n"):
            return i
    return -1


def test_sd_notify_ready_watchdog_reload_stop(daemons, keyset):
    """Type=notify (contract §10, operations.md): with NOTIFY_SOCKET set, fordelerd sends
    READY=1 once it listens, WATCHDOG=1 every WATCHDOG_USEC/2 (0.2 s here, so pings 0.1 s apart),
    RELOADING=1 then READY=1 on SIGHUP, and STOPPING=1 on SIGTERM before exiting with status 0."""
    ns = NotifySocket()
    try:
        d = daemons.create([vendor(keyset)], start=False)
        d.start(env={"NOTIFY_SOCKET": ns.env, "WATCHDOG_USEC": "200000"})
        ns.wait_for(lambda m: notify_index(m, "READY=1") >= 0, 10, "READY=1")
        ready = ns.messages[notify_index(ns.messages, "READY=1")][1]
        assert "STATUS=" in ready, ready
        assert can_login(d, "vendor", keyset.key("ed25519")), "READY=1 but no login"
        # Watchdog pings keep coming, about WATCHDOG_USEC/2 apart: 8 of them well within the
        # bound (a daemon that ignored WATCHDOG_USEC would ping far less often). No timing is
        # asserted beyond that bound: a loaded CI machine stretches the gaps.
        first = len(ns.messages)
        ns.wait_for(lambda m: sum(x == "WATCHDOG=1" for _, x in m[first:]) >= 8, 10,
                    "8 WATCHDOG=1 pings")
        # SIGHUP: RELOADING=1, then READY=1 again; pings go on.
        mark = len(ns.messages)

        def reloaded(m) -> bool:
            r = notify_index(m, "RELOADING=1", mark)
            return r >= 0 and notify_index(m, "READY=1", r + 1) >= 0

        d.send_signal(signal.SIGHUP)
        ns.wait_for(reloaded, 10, "RELOADING=1 then READY=1")
        mark = len(ns.messages)
        ns.wait_for(lambda m: sum(x == "WATCHDOG=1" for _, x in m[mark:]) >= 3, 5,
                    "watchdog pings after the reload")
        assert notify_index(ns.messages, "STOPPING=1") == -1, "STOPPING=1 before SIGTERM"
        # SIGTERM: STOPPING=1, then exit 0, and no READY=1 after it.
        mark = len(ns.messages)
        rc = d.stop(signal.SIGTERM)
        assert rc == 0, f"exit status {rc} after SIGTERM\n{d.stderr_text()[-3000:]}"
        ns.wait_for(lambda m: notify_index(m, "STOPPING=1", mark) >= 0, 5, "STOPPING=1")
        stop_at = notify_index(ns.messages, "STOPPING=1", mark)
        assert notify_index(ns.messages, "READY=1", stop_at) == -1, "READY=1 after STOPPING=1"
    finally:
        ns.close()


def test_keyboard_interactive_is_refused(daemons, keyset):
    """Contract §1: public keys only. A keyboard-interactive attempt (paramiko, and OpenSSH with
    only keyboard-interactive allowed) fails and no prompt is ever sent; a key still works."""
    d = daemons.create([vendor(keyset)])
    prompts = []

    def handler(title, instructions, prompt_list):
        prompts.append((title, instructions, prompt_list))
        return ["hunter2"] * len(prompt_list)

    t = connect_transport(d.host, d.port, "vendor", None, authenticate=False)
    try:
        with pytest.raises(paramiko.AuthenticationException) as e:
            t.auth_interactive("vendor", handler)
        assert not t.is_authenticated()
        if isinstance(e.value, paramiko.BadAuthenticationType):
            assert e.value.allowed_types == ["publickey"], e.value.allowed_types
    finally:
        t.close()
    assert prompts == [], f"the server sent keyboard-interactive prompts: {prompts}"
    res = run(["ssh", "-F", "/dev/null", "-p", str(d.port), "-o", "StrictHostKeyChecking=no",
               "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
               "-o", "ConnectTimeout=10", "-o", "IdentityAgent=none",
               "-o", "PubkeyAuthentication=no",
               "-o", "PreferredAuthentications=keyboard-interactive",
               "-o", "KbdInteractiveAuthentication=yes", "-o", "NumberOfPasswordPrompts=1",
               "-v", "-N", f"vendor@{d.host}"], timeout=30)
    assert res.returncode == 255, f"ssh exited {res.returncode}\n{res.stderr}"
    assert "Permission denied (publickey)" in res.stderr, res.stderr
    assert "Authenticated to" not in res.stderr, res.stderr
    assert can_login(d, "vendor", keyset.key("ed25519"))


def pidfd_getfd(pid: int, fd: int) -> int:
    """A duplicate of another process's file descriptor (pidfd_getfd(2), Linux 5.6); raises
    OSError when the kernel or a seccomp filter refuses it."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        r = libc.syscall(438, pidfd, fd, 0)  # SYS_pidfd_getfd, the same on x86-64 and arm64
        if r < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        return r
    finally:
        os.close(pidfd)


def daemon_socket_for_peer(pid: int, peer: tuple[str, int]) -> int:
    """fordelerd's fd of the accepted TCP connection whose remote end is `peer` (found via
    /proc/<pid>/net/tcp and the socket inodes of /proc/<pid>/fd)."""
    host, port = peer
    want = "%08X:%04X" % (int.from_bytes(socket.inet_aton(host), "little"), port)
    inode = None
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[2] == want and fields[3] == "01":  # rem_address, ESTABLISHED
            inode = fields[9]
    assert inode, f"no established connection from {peer} in /proc/{pid}/net/tcp"
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                return int(fd)
        except OSError:
            continue
    raise AssertionError(f"socket inode {inode} not among fordelerd's fds")


def test_accepted_sockets_have_tcp_nodelay(daemons, keyset):
    """Accepted connections run with TCP_NODELAY (small SFTP replies are not held back by
    Nagle's algorithm). Neither `ss` nor /proc/net/tcp shows the option, so the test borrows
    the daemon's socket with pidfd_getfd(2) and asks getsockopt: before and after login."""
    d = daemons.create([vendor(keyset)])
    raw = raw_socket(d.host, d.port)  # not authenticated: the accepted socket is set at once
    try:
        assert raw.recv(64).startswith(b"SSH-2.0-")
        try:
            dup = pidfd_getfd(d.pid, daemon_socket_for_peer(d.pid, raw.getsockname()))
        except OSError as e:
            pytest.skip(f"pidfd_getfd refused here ({e}): TCP_NODELAY cannot be read from outside")
        with socket.socket(fileno=dup) as s:
            assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0, \
                "accepted socket without TCP_NODELAY"
    finally:
        raw.close()
    with d.sftp("vendor", keyset.key("ed25519")) as sftp:
        assert sorted(sftp.listdir("/")) == ["IN", "OUT"]
        peer = sftp.get_channel().get_transport().sock.getsockname()
        with socket.socket(fileno=pidfd_getfd(d.pid, daemon_socket_for_peer(d.pid, peer))) as s:
            assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0, \
                "a logged-in session's socket without TCP_NODELAY"


def test_sigterm_during_trigger_upload_removes_the_half_written_trigger(daemons, keyset):
    """SIGTERM while a session has OUT/<name>.trigger open and partly written (its data file
    complete), and another data file half written: fordelerd exits 0; the half-written trigger
    is gone, so it never looks complete (sftp_session.h: Abort); the data files stay in OUT, as
    any data file without a trigger (contract §2). After a restart nothing is routed: no
    receipt, no delivery, nothing in quarantine."""
    route = ('[[route]]\nid = "r"\ndata_area = "oekonomi"\nsender = "vendor"\n'
             'authorities = ["*"]\nrecipients = ["flis"]\n')
    d = daemons.create([vendor(keyset), flis(keyset)],
                       extra='[delivery]\ntrigger_grace = "1s"\n' + route + data_areas_toml())
    name, other = "x.csv", "y.csv"
    data = os.urandom(10_000)
    trig = trigger_xml(name, len(data), "vendor", ["flis"], inf_ref="FLISOekonomiAflever_1")
    s = d.sftp("vendor", keyset.key("ed25519"))
    try:
        s.sftp.putfo(io.BytesIO(data), f"OUT/{name}")
        half = s.sftp.open(f"OUT/{other}", "wb")
        half.set_pipelined(False)
        half.write(b"z" * 5000)
        half.flush()
        f = s.sftp.open(f"OUT/{name}.trigger", "wb")
        f.set_pipelined(False)
        f.write(trig[: len(trig) // 2])
        f.flush()
        assert (d.out_dir("vendor") / f"{name}.trigger").stat().st_size == len(trig) // 2
        rc = d.stop(signal.SIGTERM)
        assert rc == 0, f"exit status {rc} after SIGTERM\n{d.stderr_text()[-3000:]}"
    finally:
        s.transport.close()
    out = sorted(os.listdir(d.out_dir("vendor")))
    assert f"{name}.trigger" not in out, f"half-written trigger left in OUT: {out}"
    assert out == [name, other], out
    assert (d.out_dir("vendor") / name).read_bytes() == data
    assert (d.out_dir("vendor") / other).read_bytes() == b"z" * 5000
    d.start()
    time.sleep(2.0)  # > trigger_grace: a trigger adopted at start would have its receipt by now
    assert sorted(os.listdir(d.out_dir("vendor"))) == [name, other]
    assert os.listdir(d.in_dir("vendor")) == [], "a receipt for a trigger that never completed"
    assert os.listdir(d.in_dir("flis")) == []
    q = d.state / "quarantine"
    assert not q.exists() or os.listdir(q) == [], os.listdir(q)
    assert db_rows(d.state / "audit.db", "SELECT uuid FROM transfers") == []
