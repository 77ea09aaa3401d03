"""fordelerd driven by OpenSSH's sftp(1) in batch mode (-b): the client most operators try first.

In batch mode sftp aborts at the first failing command (exit status 1) unless the command is
prefixed with '-'. Files are uploaded without `.trigger`, so these tests stay valid with routing.
"""

from __future__ import annotations

import http.client
import os
import re
import subprocess
from pathlib import Path

import pytest

from harness import (AccountSpec, db_rows, random_file, run, sha256_file, ssh_base_options,
                     wait_until)

# Every key type of contract §1 logs in; the last two belong to another account and to nobody.
VENDOR_KEYS = ["ed25519", "ecdsa256", "ecdsa384", "ecdsa521", "rsa2048", "rsa3072"]
KEY_NAMES = VENDOR_KEYS + ["flis_ed25519", "stranger_ed25519"]


@pytest.fixture(scope="module")
def d(module_daemons, keyset):
    # "fenced" and "expired" have the right key, but not from here or not any more.
    return module_daemons.create(
        [AccountSpec("vendor", [keyset.key(n) for n in VENDOR_KEYS], use_file=True),
         AccountSpec("flis", [keyset.key("flis_ed25519")]),
         AccountSpec("fenced", [keyset.key("ed25519")], options='from="192.0.2.0/24"'),
         AccountSpec("expired", [keyset.key("ed25519")], options='expiry-time="20200101Z"')],
        server_extra="max_sessions_per_account = 32",  # 20 concurrent sessions of one account
        extra='[http]\nlisten = ["127.0.0.1:0"]')  # /metrics


def sftp_batch(d, key: Path, commands: list[str], tmp_path: Path, user: str = "vendor",
               timeout: float = 30.0):
    batch = tmp_path / "batch"
    batch.write_text("\n".join(commands) + "\n")
    return run(["sftp", "-b", str(batch), "-P", str(d.port), *ssh_base_options(key),
                f"{user}@{d.host}"], timeout=timeout)


def ok(res) -> str:
    assert res.returncode == 0, (f"sftp failed with {res.returncode}\nstdout:\n{res.stdout}\n"
                                 f"stderr:\n{res.stderr}")
    return res.stdout


@pytest.mark.parametrize("keyname", VENDOR_KEYS)
def test_login_and_pwd(d, keyset, tmp_path, keyname):
    out = ok(sftp_batch(d, keyset.key(keyname), ["pwd", "ls -1 /"], tmp_path))
    assert "Remote working directory: /\n" in out, out
    listing = out.split("sftp> ls -1 /\n", 1)[1].split()
    assert sorted(listing) == ["/IN", "/OUT"], out


def test_put_get_ls_rename_rm(d, keyset, tmp_path):
    local = tmp_path / "up.dat"
    digest = random_file(local, 3 * (1 << 20) + 17)
    back = tmp_path / "down.dat"
    out = ok(sftp_batch(d, keyset.key("ed25519"), [
        f"put {local} OUT/ossh.dat",
        "ls -1 OUT",
        f"get OUT/ossh.dat {back}",
        "rename OUT/ossh.dat OUT/ossh2.dat",
        "ls -1 OUT",
        "rm OUT/ossh2.dat",
        "ls -1 OUT",
    ], tmp_path))
    assert sha256_file(back) == digest, "sftp get returned different bytes"
    parts = out.split("sftp> ls -1 OUT\n")
    assert len(parts) == 4, out
    first, second, third = (p.split("sftp> ")[0].split() for p in parts[1:])
    assert "OUT/ossh.dat" in first, out
    assert "OUT/ossh2.dat" in second and "OUT/ossh.dat" not in second, out
    assert "OUT/ossh2.dat" not in third, out
    assert not (d.out_dir("vendor") / "ossh2.dat").exists()


def test_scp_and_ssh_subsystem_exit_with_status_zero(d, keyset, tmp_path):
    """scp speaks SFTP since OpenSSH 9 and exits with the channel's exit status: without one it
    reports failure (1) after a transfer that worked, and a sender's script that stops at the
    first failure never sends its trigger. The server sends 0 when the SFTP subsystem ends, as
    sshd does; `ssh -s ... sftp` sees it too."""
    local = tmp_path / "scp.dat"
    digest = random_file(local, 200_000)
    target = f"vendor@{d.host}"
    opts = ["-P", str(d.port), *ssh_base_options(keyset.key("ed25519"))]
    up = run(["scp", *opts, str(local), f"{target}:OUT/scp.dat"])
    assert up.returncode == 0, f"scp upload exited {up.returncode}: {up.stderr}"
    assert sha256_file(d.out_dir("vendor") / "scp.dat") == digest
    back = tmp_path / "back.dat"
    down = run(["scp", *opts, f"{target}:OUT/scp.dat", str(back)])
    assert down.returncode == 0, f"scp download exited {down.returncode}: {down.stderr}"
    assert sha256_file(back) == digest
    sub = run(["ssh", "-p", str(d.port), *ssh_base_options(keyset.key("ed25519")), "-s", target,
               "sftp"])
    assert sub.returncode == 0, f"ssh -s sftp exited {sub.returncode}: {sub.stderr}"
    ok(sftp_batch(d, keyset.key("ed25519"), ["rm OUT/scp.dat"], tmp_path))


def test_round_trip_sha256_on_disk(d, keyset, tmp_path):
    local = tmp_path / "rt.dat"
    digest = random_file(local, 8 * (1 << 20))
    back = tmp_path / "rt_back.dat"
    ok(sftp_batch(d, keyset.key("rsa3072"), [f"put {local} /OUT/ossh_rt.dat",
                                              f"get /OUT/ossh_rt.dat {back}"], tmp_path))
    assert sha256_file(d.out_dir("vendor") / "ossh_rt.dat") == digest
    assert sha256_file(back) == digest


@pytest.mark.parametrize("size", [0, 1, 1 << 20, 64 << 20], ids=["0B", "1B", "1MiB", "64MiB"])
def test_round_trip_sizes(d, keyset, tmp_path, size):
    local = tmp_path / "sized.dat"
    digest = random_file(local, size)
    back = tmp_path / "sized_back.dat"
    name = f"ossh_{size}.dat"
    ok(sftp_batch(d, keyset.key("ed25519"), [f"put {local} OUT/{name}", f"get OUT/{name} {back}",
                                              f"rm OUT/{name}"], tmp_path, timeout=120.0))
    assert back.stat().st_size == size
    assert sha256_file(back) == digest


def login_failures(d) -> list:
    return db_rows(d.state / "audit.db", "SELECT seq, account, detail FROM events "
                   "WHERE kind = 'login_failed' ORDER BY seq")


def authentication_failures_metric(d) -> int:
    port = int(d.wait_log(r"event=http_listening address=127\.0\.0\.1:(\d+)").group(1))
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request("GET", "/metrics")
        body = conn.getresponse().read().decode()
    finally:
        conn.close()
    m = re.search(r"^fordeler_authentication_failures_total (\d+)$", body, re.MULTILINE)
    assert m, body
    return int(m.group(1))


def fingerprint(key: Path) -> str:
    out = run(["ssh-keygen", "-l", "-E", "sha256", "-f", f"{key}.pub"]).stdout
    return out.split()[1]  # "256 SHA256:... comment (ED25519)"


def login_failed_lines(d, since: int) -> list[str]:
    text = d.stderr_path.read_bytes()[since:].decode("utf-8", "replace")
    return [line for line in text.splitlines() if "event=login_failed " in line]


@pytest.mark.parametrize("user,keyname", [("vendor", "flis_ed25519"),
                                          ("vendor", "stranger_ed25519"),
                                          ("fenced", "ed25519"), ("expired", "ed25519")],
                         ids=["other-account-key", "unknown-key", "from-elsewhere", "expired"])
def test_wrong_key_is_refused(d, keyset, tmp_path, user, keyname):
    """OpenSSH asks whether a key would do before signing with it, and never signs with a key
    refused: such a session is one failed login all the same, in the audit log (with the key
    tried), the log and the metric."""
    before, metric, size = login_failures(d), authentication_failures_metric(d), d.stderr_size()
    res = sftp_batch(d, keyset.key(keyname), ["pwd"], tmp_path, user=user)
    assert res.returncode == 255, res
    assert "Permission denied (publickey)" in res.stderr, res.stderr
    wait_until(lambda: len(login_failures(d)) > len(before), 10, "a login_failed audit event")
    key = fingerprint(keyset.key(keyname))
    d.wait_log(rf"event=login_failed peer=127\.0\.0\.1:\d+ user={user} key={re.escape(key)} ",
               since=size)
    assert authentication_failures_metric(d) == metric + 1
    new = login_failures(d)[len(before):]
    assert [(r["account"], r["detail"].split()[1]) for r in new] == [(user, f"key={key}")], (
        [dict(r) for r in new])
    assert re.fullmatch(r"address=127\.0\.0\.1:\d+ key=\S+", new[0]["detail"]), new[0]["detail"]
    assert len(login_failed_lines(d, size)) == 1, login_failed_lines(d, size)


def test_good_login_records_no_failed_login(d, keyset, tmp_path):
    """OpenSSH's question "would this key do?" answered yes, then the signed login: no failure.
    A wrong-key session afterwards is the barrier: once its event is in, an event of the good
    session would be too."""
    before, metric, size = login_failures(d), authentication_failures_metric(d), d.stderr_size()
    ok(sftp_batch(d, keyset.key("ed25519"), ["pwd"], tmp_path))
    d.wait_log(r"event=disconnect peer=\S+ account=vendor ", since=size)
    assert authentication_failures_metric(d) == metric
    assert login_failed_lines(d, size) == []
    res = sftp_batch(d, keyset.key("stranger_ed25519"), ["pwd"], tmp_path)
    assert res.returncode == 255, res
    wait_until(lambda: len(login_failures(d)) > len(before), 10, "the barrier's login_failed")
    new = login_failures(d)[len(before):]
    key = fingerprint(keyset.key("stranger_ed25519"))
    assert [r["detail"].split()[1] for r in new] == [f"key={key}"], [dict(r) for r in new]
    assert authentication_failures_metric(d) == metric + 1


def test_password_is_never_offered(d, tmp_path):
    """Even a client that would only use a password or keyboard-interactive finds nothing to
    try: the server offers publickey alone."""
    batch = tmp_path / "batch"
    batch.write_text("pwd\n")
    res = run(["sftp", "-b", str(batch), "-P", str(d.port),
               "-o", "PubkeyAuthentication=no", "-o", "PasswordAuthentication=yes",
               "-o", "KbdInteractiveAuthentication=yes",
               "-o", "PreferredAuthentications=password,keyboard-interactive",
               *ssh_base_options(None), f"vendor@{d.host}"], timeout=30)
    assert res.returncode == 255, res
    assert "Permission denied (publickey)" in res.stderr, res.stderr


def test_accounts_cannot_see_each_other(d, keyset, tmp_path):
    (d.out_dir("flis") / "flis-only.dat").write_bytes(b"flis")
    got = tmp_path / "got.dat"
    out = ok(sftp_batch(d, keyset.key("ed25519"), [
        "ls -1 /", "ls -1 /OUT", "-ls -1 ../flis/OUT", "-ls -1 /../../flis/OUT",
        f"-get /../flis/OUT/flis-only.dat {got}", f"-get ../../flis/OUT/flis-only.dat {got}",
        f"-get /OUT/../../flis/OUT/flis-only.dat {got}"], tmp_path))
    listed = [line for line in out.splitlines() if not line.startswith("sftp> ")]
    assert listed[:2] == ["/IN", "/OUT"], out
    assert not [line for line in listed if "flis" in line], out
    assert not got.exists(), "vendor read a file of flis"


def test_twenty_concurrent_sessions(d, keyset, tmp_path):
    """20 `sftp -b` processes at once, each putting and getting its own file."""
    procs = []
    for i in range(20):
        work = tmp_path / f"s{i}"
        work.mkdir()
        local = work / "up.dat"
        random_file(local, 256 * 1024 + i)
        batch = work / "batch"
        batch.write_text(f"put {local} OUT/c{i}.dat\nget OUT/c{i}.dat {work / 'down.dat'}\n"
                         f"rm OUT/c{i}.dat\n")
        procs.append((work, subprocess.Popen(
            ["sftp", "-b", str(batch), "-P", str(d.port),
             *ssh_base_options(keyset.key(VENDOR_KEYS[i % len(VENDOR_KEYS)])),
             f"vendor@{d.host}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
    failed = []
    for work, p in procs:
        try:
            out, err = p.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        if p.returncode != 0 or sha256_file(work / "down.dat") != sha256_file(work / "up.dat"):
            failed.append((work.name, p.returncode, err[-300:]))
    assert not failed, failed


def test_repeated_put_get_in_one_session(d, keyset, tmp_path):
    """Uploads followed by downloads in one session (an earlier build stalled at the end of a
    download that followed an upload: replies stopped once the client sent no more requests)."""
    files = []
    commands = []
    for i, size in enumerate((3 * (1 << 20) + 17, 8 << 20, 5 * (1 << 20) + 1, 3 << 20)):
        local = tmp_path / f"rep{i}.dat"
        files.append((local, random_file(local, size), tmp_path / f"rep{i}.back"))
        commands += [f"put {local} OUT/rep{i}.dat", f"get OUT/rep{i}.dat {tmp_path}/rep{i}.back"]
    ok(sftp_batch(d, keyset.key("ed25519"), commands, tmp_path))
    for local, digest, back in files:
        assert sha256_file(back) == digest, f"{back.name} differs"


def test_cd_and_relative_put(d, keyset, tmp_path):
    local = tmp_path / "økonomi_æøå.csv"
    local.write_text("a;b\næ;ø\n", encoding="utf-8")
    out = ok(sftp_batch(d, keyset.key("ecdsa256"), [
        "cd OUT", "pwd", f"put {local}", "ls -1"], tmp_path))
    assert "Remote working directory: /OUT\n" in out, out
    assert "økonomi_æøå.csv" in out.split("sftp> ls -1\n", 1)[1], out
    assert (d.out_dir("vendor") / "økonomi_æøå.csv").read_text(encoding="utf-8") == "a;b\næ;ø\n"


def test_put_preserving_times(d, keyset, tmp_path):
    local = tmp_path / "times.csv"
    local.write_bytes(b"times")
    os.utime(local, (1_600_000_000, 1_600_000_000))
    ok(sftp_batch(d, keyset.key("ed25519"), [f"put -p {local} OUT/times.csv"], tmp_path))
    assert int((d.out_dir("vendor") / "times.csv").stat().st_mtime) == 1_600_000_000


def test_put_with_fsync(d, keyset, tmp_path):
    """`put -f` asks for fsync@openssh.com after the upload."""
    local = tmp_path / "synced.csv"
    digest = random_file(local, 200_000)
    ok(sftp_batch(d, keyset.key("ed25519"), [f"put -f {local} OUT/synced.csv"], tmp_path))
    assert sha256_file(d.out_dir("vendor") / "synced.csv") == digest


def test_put_into_IN_fails_and_aborts_batch(d, keyset, tmp_path):
    local = tmp_path / "x.dat"
    local.write_bytes(b"x")
    res = sftp_batch(d, keyset.key("ed25519"), [f"put {local} IN/x.dat", "ls -1 OUT"], tmp_path)
    assert res.returncode == 1, f"want exit 1, got {res.returncode}\n{res.stdout}\n{res.stderr}"
    assert "Permission denied" in res.stderr, res.stderr
    assert "sftp> ls" not in res.stdout, "batch mode must abort at the failing put"
    assert not (d.in_dir("vendor") / "x.dat").exists()


def test_put_into_root_fails(d, keyset, tmp_path):
    local = tmp_path / "x.dat"
    local.write_bytes(b"x")
    res = sftp_batch(d, keyset.key("ed25519"), [f"put {local} /x.dat"], tmp_path)
    assert res.returncode == 1, f"{res.stdout}\n{res.stderr}"
    assert 'open "/x.dat"' in res.stderr, res.stderr  # Permission denied or No such file
    assert "sftp> " not in res.stdout.split(f"put {local} /x.dat", 1)[1]
    assert not (d.jail("vendor") / "x.dat").exists()


@pytest.mark.parametrize("path", ["OUT/sub", "/newdir"])
def test_mkdir_fails(d, keyset, tmp_path, path):
    res = sftp_batch(d, keyset.key("ed25519"), [f"mkdir {path}", "ls"], tmp_path)
    assert res.returncode == 1, f"{res.stdout}\n{res.stderr}"
    assert "mkdir" in res.stderr, res.stderr
    assert "sftp> ls" not in res.stdout
    assert not (d.jail("vendor") / path.lstrip("/")).exists()


def test_ignored_failure_continues(d, keyset, tmp_path):
    local = tmp_path / "y.dat"
    local.write_bytes(b"y")
    ok(sftp_batch(d, keyset.key("ed25519"), [f"-put {local} IN/y.dat", f"put {local} OUT/y.dat"],
                  tmp_path))
    assert (d.out_dir("vendor") / "y.dat").read_bytes() == b"y"
    assert not (d.in_dir("vendor") / "y.dat").exists()


def test_get_and_rm_in_IN(d, keyset, tmp_path):
    (d.in_dir("vendor") / "fetch_me.csv").write_bytes(b"delivered")
    back = tmp_path / "fetched.csv"
    out = ok(sftp_batch(d, keyset.key("ed25519"), [
        "ls -1 IN", f"get IN/fetch_me.csv {back}", "rm IN/fetch_me.csv", "ls -1 IN"], tmp_path))
    assert back.read_bytes() == b"delivered"
    assert "IN/fetch_me.csv" in out.split("sftp> ls -1 IN\n")[1], out
    assert "fetch_me.csv" not in out.split("sftp> ls -1 IN\n")[2], out
    assert not (d.in_dir("vendor") / "fetch_me.csv").exists()


def test_rename_into_IN_fails(d, keyset, tmp_path):
    local = tmp_path / "z.dat"
    local.write_bytes(b"z")
    res = sftp_batch(d, keyset.key("ed25519"), [f"put {local} OUT/z.dat",
                                                 "rename OUT/z.dat IN/z.dat"], tmp_path)
    assert res.returncode == 1, f"{res.stdout}\n{res.stderr}"
    assert (d.out_dir("vendor") / "z.dat").exists()
    assert not (d.in_dir("vendor") / "z.dat").exists()
