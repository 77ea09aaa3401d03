"""fordelerd driven by paramiko: logins, the jail (contract §1), names (§2), round trips.

Data files are uploaded without a `.trigger`, so these tests stay valid once routing exists
(a data file without a trigger is left alone in /OUT).
"""

from __future__ import annotations

import concurrent.futures
import errno
import os
import stat
import struct
import threading

import paramiko
import pytest

from harness import (AccountSpec, connect_transport, db_rows, random_file, sha256_bytes, sha256_file,
                     wait_until)

VENDOR_KEYS = ["ed25519", "ecdsa256", "ecdsa384", "ecdsa521", "rsa2048", "rsa3072", "rsa4096"]
KEY_NAMES = VENDOR_KEYS + ["flis_ed25519", "stranger_ed25519"]
MiB = 1 << 20


@pytest.fixture(scope="module", params=["root", "nobody"])
def d(request, keyset):
    """The module's daemon, once as root and once as `nobody` (as systemd runs it, without
    capabilities): the jail's rules are fordelerd's own either way."""
    factory = request.getfixturevalue(
        "module_daemons" if request.param == "root" else "module_unprivileged_daemons")
    k = keyset.client
    return factory.create(
        [
            AccountSpec("vendor", [k[n] for n in VENDOR_KEYS], use_file=True),
            AccountSpec("flis", [k["flis_ed25519"]]),
        ],
        server_extra="max_sessions_per_account = 32",
    )


@pytest.fixture
def vendor(d, keyset):
    s = d.sftp("vendor", keyset.key("ed25519"))
    yield s.sftp
    s.close()


@pytest.fixture
def flis(d, keyset):
    s = d.sftp("flis", keyset.key("flis_ed25519"))
    yield s.sftp
    s.close()


def write_remote(sftp: paramiko.SFTPClient, path, data: bytes) -> None:
    with sftp.open(path, "wb") as f:
        f.write(data)


def read_remote(sftp: paramiko.SFTPClient, path) -> bytes:
    with sftp.open(path, "rb") as f:
        return f.read()


def recv_exact(ch: paramiko.Channel, n: int) -> bytes:
    buf = b""
    for _ in range(10000):
        if len(buf) >= n:
            break
        chunk = ch.recv(n - len(buf))
        if not chunk:
            raise EOFError(f"channel closed after {len(buf)} of {n} bytes")
        buf += chunk
    assert len(buf) == n
    return buf


# ------------------------------------------------------------------------------------------
# Authentication


@pytest.mark.parametrize("name", ["ed25519", "ecdsa256", "ecdsa384", "ecdsa521"])
def test_login_with_key_type(d, keyset, name):
    with d.sftp("vendor", keyset.key(name)) as s:
        assert sorted(s.listdir("/")) == ["IN", "OUT"], f"{name}: jail root listing"


@pytest.mark.parametrize("alg", ["rsa-sha2-256", "rsa-sha2-512"])
@pytest.mark.parametrize("name", ["rsa2048", "rsa3072", "rsa4096"])
def test_login_with_rsa_key(d, keyset, name, alg):
    other = "rsa-sha2-512" if alg == "rsa-sha2-256" else "rsa-sha2-256"
    session = d.sftp("vendor", keyset.key(name), disabled_algorithms={"pubkeys": [other, "ssh-rsa"]})
    try:
        assert session.transport._agreed_pubkey_algorithm == alg, (
            f"paramiko signed with {session.transport._agreed_pubkey_algorithm}, wanted {alg}")
        assert sorted(session.sftp.listdir("/")) == ["IN", "OUT"]
    finally:
        session.close()


def test_rsa_sha1_signature_refused(d, keyset, monkeypatch):
    """A client signing with ssh-rsa (SHA-1) is refused even though the key is configured, and
    the refusal is a failed login in the audit log (and so in the metric), like a wrong key."""
    monkeypatch.setattr(paramiko.auth_handler.AuthHandler, "_finalize_pubkey_algorithm",
                        lambda self, key_type: "ssh-rsa")
    t = connect_transport(d.host, d.port, "vendor", None, authenticate=False)
    address = "{}:{}".format(*t.sock.getsockname())
    try:
        with pytest.raises(paramiko.BadAuthenticationType):  # as libssh2 does: "none" first
            t.auth_none("vendor")
        with pytest.raises(paramiko.AuthenticationException):
            t.auth_publickey("vendor", paramiko.RSAKey.from_private_key_file(
                str(keyset.key("rsa2048"))))
        assert not t.is_authenticated(), "an ssh-rsa (SHA-1) signature was accepted"
    finally:
        t.close()
    sql = "SELECT account FROM events WHERE kind = 'login_failed' AND detail LIKE ?"
    wait_until(lambda: db_rows(d.state / "audit.db", sql, (f"address={address}%",)), 10,
               f"a login_failed event for {address}")
    rows = db_rows(d.state / "audit.db", sql, (f"address={address}%",))
    assert [r["account"] for r in rows] == ["vendor"], rows


def test_password_auth_refused(d):
    t = connect_transport(d.host, d.port, "vendor", None, authenticate=False)
    try:
        with pytest.raises(paramiko.BadAuthenticationType) as e:
            t.auth_none("vendor")
        assert e.value.allowed_types == ["publickey"], (
            f"server offers {e.value.allowed_types}, want only publickey")
        with pytest.raises(paramiko.AuthenticationException):
            t.auth_password("vendor", "vendor")
        assert not t.is_authenticated()
    finally:
        t.close()


@pytest.mark.parametrize("user,keyname", [
    ("vendor", "stranger_ed25519"),  # key of nobody
    ("vendor", "flis_ed25519"),  # another account's key
    ("nobody", "ed25519"),  # no such account
    ("VENDOR", "ed25519"),  # ids are exact
    ("../vendor", "ed25519"),
    ("vendor/../vendor", "ed25519"),
    ("", "ed25519"),
])
def test_wrong_key_refused(d, keyset, user, keyname):
    t = connect_transport(d.host, d.port, user, None, authenticate=False)
    try:
        with pytest.raises(paramiko.AuthenticationException):
            t.auth_publickey(user, paramiko.Ed25519Key.from_private_key_file(
                str(keyset.key(keyname))))
        assert not t.is_authenticated()
    finally:
        t.close()


# ------------------------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("size", [0, 1, MiB, 64 * MiB], ids=["0B", "1B", "1MiB", "64MiB"])
def test_round_trip(d, vendor, tmp_path, size):
    name = f"rt_{size}.dat"
    local = tmp_path / "up"
    digest = random_file(local, size)
    attrs = vendor.put(str(local), f"/OUT/{name}")  # put stats after close and checks the size
    assert attrs.st_size == size
    assert sha256_file(d.out_dir("vendor") / name) == digest, "bytes on disk differ from upload"
    back = tmp_path / "down"
    vendor.get(f"/OUT/{name}", str(back))
    assert sha256_file(back) == digest, "bytes read back differ from upload"
    assert vendor.stat(f"OUT/{name}").st_size == size
    vendor.remove(f"/OUT/{name}")
    local.unlink()
    back.unlink()


def test_put_reports_size_after_close(vendor, tmp_path):
    local = tmp_path / "f"
    random_file(local, 12345)
    attrs = vendor.put(str(local), "OUT/put_confirm.csv", confirm=True)
    assert attrs.st_size == 12345
    assert vendor.stat("OUT/put_confirm.csv").st_size == 12345


def test_overwrite_truncates(d, vendor):
    write_remote(vendor, "/OUT/ow.csv", b"x" * 1000)
    write_remote(vendor, "/OUT/ow.csv", b"short")
    assert read_remote(vendor, "/OUT/ow.csv") == b"short"
    assert (d.out_dir("vendor") / "ow.csv").read_bytes() == b"short"


def test_danish_name_round_trip(d, vendor):
    name = "økonomi_æøå.csv"
    data = "kolonne;værdi\nÆbler;3\n".encode()
    write_remote(vendor, f"/OUT/{name}", data)
    assert name in vendor.listdir("/OUT")
    assert name.encode("utf-8") in os.listdir(bytes(d.out_dir("vendor"))), "not UTF-8 on disk"
    assert read_remote(vendor, f"OUT/{name}") == data


def test_longest_name_accepted(d, vendor):
    name = "æ" * 121 + "a"  # 243 bytes of UTF-8: the longest valid <name>
    assert len(name.encode()) == 243
    write_remote(vendor, f"/OUT/{name}", b"long")
    assert read_remote(vendor, f"/OUT/{name}") == b"long"
    vendor.remove(f"/OUT/{name}")


# ------------------------------------------------------------------------------------------
# Folder rights


def test_root_lists_in_and_out(vendor):
    assert sorted(vendor.listdir("/")) == ["IN", "OUT"]
    assert sorted(vendor.listdir(".")) == ["IN", "OUT"]
    assert vendor.normalize(".") == "/", "login directory must be /"
    for p in ("/", "/IN", "/OUT", "IN", "OUT"):
        assert stat.S_ISDIR(vendor.stat(p).st_mode), f"{p} is not a directory"


def test_rename_and_remove_in_out(d, vendor):
    write_remote(vendor, "/OUT/ren_a.csv", b"A")
    vendor.rename("/OUT/ren_a.csv", "OUT/ren_b.csv")
    names = vendor.listdir("/OUT")
    assert "ren_b.csv" in names and "ren_a.csv" not in names
    assert (d.out_dir("vendor") / "ren_b.csv").read_bytes() == b"A"
    vendor.remove("OUT/ren_b.csv")
    assert "ren_b.csv" not in vendor.listdir("/OUT")
    assert not (d.out_dir("vendor") / "ren_b.csv").exists()


def test_posix_rename_replaces(vendor):
    write_remote(vendor, "/OUT/pr_a.csv", b"new")
    write_remote(vendor, "/OUT/pr_b.csv", b"old")
    vendor.posix_rename("/OUT/pr_a.csv", "/OUT/pr_b.csv")
    assert read_remote(vendor, "/OUT/pr_b.csv") == b"new"
    assert "pr_a.csv" not in vendor.listdir("/OUT")


def test_setstat_in_out(vendor):
    write_remote(vendor, "/OUT/times.csv", b"t")
    vendor.utime("/OUT/times.csv", (1_700_000_000, 1_700_000_000))
    assert vendor.stat("/OUT/times.csv").st_mtime == 1_700_000_000
    with vendor.open("/OUT/times.csv", "r+b") as f:
        f.truncate(0)
    assert vendor.stat("/OUT/times.csv").st_size == 0


def test_write_in_IN_refused(d, vendor, tmp_path):
    local = tmp_path / "f"
    local.write_bytes(b"nope")
    with pytest.raises(PermissionError):
        vendor.put(str(local), "/IN/put.csv")
    with pytest.raises(PermissionError):
        vendor.open("IN/open.csv", "wb")
    left = {"put.csv", "open.csv"} & set(os.listdir(d.in_dir("vendor")))
    assert not left, f"a refused write left {left} in IN"


def test_IN_read_and_remove_allowed_write_refused(d, vendor):
    target = d.in_dir("vendor") / "delivered.csv"
    target.write_bytes(b"delivered data")
    d.own(target)
    assert "delivered.csv" in vendor.listdir("/IN")
    assert read_remote(vendor, "/IN/delivered.csv") == b"delivered data"
    with pytest.raises(PermissionError):
        vendor.open("/IN/delivered.csv", "r+b")
    with pytest.raises(PermissionError):
        vendor.open("/IN/delivered.csv", "ab")
    with pytest.raises(PermissionError):
        vendor.chmod("/IN/delivered.csv", 0o777)
    with pytest.raises(PermissionError):
        vendor.utime("/IN/delivered.csv", (1, 1))
    with pytest.raises(PermissionError):
        vendor.truncate("/IN/delivered.csv", 0)
    with pytest.raises(PermissionError):
        vendor.rename("/IN/delivered.csv", "/OUT/delivered.csv")
    with pytest.raises(PermissionError):
        vendor.rename("/IN/delivered.csv", "/IN/renamed.csv")
    assert target.read_bytes() == b"delivered data", "a refused request changed the IN file"
    vendor.remove("/IN/delivered.csv")
    assert not target.exists()


def test_IN_open_for_reading_ignores_attributes(d, vendor):
    """libssh2 (curl, PHP ssh2) sends attributes with an open for reading (contract §1)."""
    target = d.in_dir("vendor") / "attrs.csv"
    target.write_bytes(b"keep me")
    os.chmod(target, 0o640)
    d.own(target)
    before = target.stat()
    attrs = paramiko.SFTPAttributes()
    attrs.st_size = 0
    attrs.st_mode = 0o777
    attrs.st_atime = attrs.st_mtime = 1_000_000_000
    t, msg = vendor._request(paramiko.sftp.CMD_OPEN, "/IN/attrs.csv", paramiko.sftp.SFTP_FLAG_READ,
                             attrs)
    assert t == paramiko.sftp.CMD_HANDLE, "open for reading with attributes refused"
    with paramiko.SFTPFile(vendor, msg.get_binary(), "rb") as f:
        assert f.read() == b"keep me"
    after = target.stat()
    assert (after.st_size, after.st_mode, after.st_mtime_ns) == (
        before.st_size, before.st_mode, before.st_mtime_ns), "the attributes were applied"
    for flags in (paramiko.sftp.SFTP_FLAG_READ | paramiko.sftp.SFTP_FLAG_TRUNC,
                  paramiko.sftp.SFTP_FLAG_READ | paramiko.sftp.SFTP_FLAG_CREATE,
                  paramiko.sftp.SFTP_FLAG_READ | paramiko.sftp.SFTP_FLAG_APPEND):
        with pytest.raises(PermissionError):
            vendor._request(paramiko.sftp.CMD_OPEN, "/IN/attrs.csv", flags,
                            paramiko.SFTPAttributes())
    assert target.read_bytes() == b"keep me"
    with pytest.raises(PermissionError):
        vendor._request(paramiko.sftp.CMD_OPEN, "/IN/new.csv",
                        paramiko.sftp.SFTP_FLAG_READ | paramiko.sftp.SFTP_FLAG_CREATE,
                        paramiko.SFTPAttributes())
    assert not (d.in_dir("vendor") / "new.csv").exists()
    target.unlink()


def test_large_directory_listing(d, vendor):
    out = d.out_dir("vendor")
    names = {f"many_{i:05d}_{'x' * 60}.csv" for i in range(3000)}
    for n in names:
        (out / n).write_bytes(b"")
        d.own(out / n)
    try:
        listed = vendor.listdir("/OUT")
        assert len(listed) == len(set(listed)), "duplicates in the listing"
        missing = names - set(listed)
        assert not missing, f"{len(missing)} of {len(names)} files not listed"
        attrs = {a.filename: a for a in vendor.listdir_attr("OUT")}
        assert all(stat.S_ISREG(attrs[n].st_mode) for n in names)
        assert set(vendor.listdir("/")) == {"IN", "OUT"}
    finally:
        for n in names:
            (out / n).unlink()


def test_rename_out_to_in_refused(d, vendor):
    write_remote(vendor, "/OUT/to_in.csv", b"x")
    with pytest.raises(PermissionError):
        vendor.rename("/OUT/to_in.csv", "/IN/to_in.csv")
    assert (d.out_dir("vendor") / "to_in.csv").exists()
    assert not (d.in_dir("vendor") / "to_in.csv").exists()
    vendor.remove("/OUT/to_in.csv")


@pytest.mark.parametrize("path", ["/OUT/sub", "/IN/sub", "/new", "OUT/sub"])
def test_mkdir_refused(d, vendor, path):
    with pytest.raises(IOError):
        vendor.mkdir(path)
    assert not (d.jail("vendor") / path.lstrip("/")).exists(), f"mkdir {path} created it"


def test_root_is_read_only(d, vendor):
    with pytest.raises(IOError):
        vendor.open("/rootfile.csv", "wb")
    assert not (d.jail("vendor") / "rootfile.csv").exists()
    for call in (lambda: vendor.remove("/OUT"), lambda: vendor.rmdir("/OUT"),
                 lambda: vendor.rename("/OUT", "/OUT2"), lambda: vendor.chmod("/OUT", 0o777),
                 lambda: vendor.rmdir("/IN")):
        with pytest.raises(IOError):
            call()
    assert sorted(vendor.listdir("/")) == ["IN", "OUT"]


def test_symlink_and_hardlink_requests_refused(d, vendor):
    write_remote(vendor, "/OUT/link_target.csv", b"t")
    with pytest.raises(IOError):
        vendor.symlink("/etc/passwd", "/OUT/sym.csv")
    with pytest.raises(IOError):
        vendor.symlink("/OUT/link_target.csv", "/OUT/sym2.csv")
    with pytest.raises(IOError):
        vendor._request(paramiko.sftp.CMD_EXTENDED, "hardlink@openssh.com",
                        "/OUT/link_target.csv", "/OUT/hard.csv")
    names = os.listdir(d.out_dir("vendor"))
    for n in ("sym.csv", "sym2.csv", "hard.csv"):
        assert n not in names, f"{n} was created"


def test_sftp_version_is_3(d, keyset):
    """The server answers version 3 whatever the client asks (lftp asks for 6)."""
    t = d.transport("vendor", keyset.key("ed25519"))
    try:
        ch = t.open_session(timeout=10)
        ch.settimeout(10)
        ch.invoke_subsystem("sftp")
        ch.sendall(struct.pack(">IBI", 5, 1, 6))  # SSH_FXP_INIT, version 6
        (length,) = struct.unpack(">I", recv_exact(ch, 4))
        assert 5 <= length <= 256 * 1024
        body = recv_exact(ch, length)
        assert body[0] == 2, "expected SSH_FXP_VERSION"
        assert struct.unpack(">I", body[1:5])[0] == 3
        ext, i = {}, 5
        for _ in range(1000):
            if i >= len(body):
                break
            (n,) = struct.unpack(">I", body[i:i + 4]); name = body[i + 4:i + 4 + n]; i += 4 + n
            (n,) = struct.unpack(">I", body[i:i + 4]); ext[name] = body[i + 4:i + 4 + n]; i += 4 + n
        assert b"hardlink@openssh.com" not in ext, "contract §2: no hard-link extension"
        ch.close()
    finally:
        t.close()


# ------------------------------------------------------------------------------------------
# Paths


def test_relative_and_redundant_spellings_name_one_file(d, vendor):
    data = b"same file"
    write_remote(vendor, "OUT/rel.csv", data)
    assert (d.out_dir("vendor") / "rel.csv").read_bytes() == data
    for spelling in ("/OUT/rel.csv", "/OUT/./rel.csv", "OUT//rel.csv", "./OUT/rel.csv",
                     "//OUT/rel.csv", "/IN/../OUT/rel.csv", "OUT/./././rel.csv"):
        assert vendor.stat(spelling).st_size == len(data), spelling
        assert read_remote(vendor, spelling) == data, spelling
    write_remote(vendor, "/OUT/./rel.csv", b"via dot")
    assert read_remote(vendor, "OUT//rel.csv") == b"via dot"
    assert sorted(n for n in os.listdir(d.out_dir("vendor")) if n.startswith("rel")) == ["rel.csv"]


def test_dotdot_clamps_at_root(d, vendor):
    write_remote(vendor, "/OUT/clamp.csv", b"clamped")
    assert vendor.normalize("..") == "/"
    assert vendor.normalize("/../..") == "/"
    assert vendor.normalize("/OUT/../../..") == "/"
    assert sorted(vendor.listdir("..")) == ["IN", "OUT"]
    assert sorted(vendor.listdir("/../../..")) == ["IN", "OUT"]
    assert read_remote(vendor, "/../OUT/clamp.csv") == b"clamped"
    assert read_remote(vendor, "../../OUT/clamp.csv") == b"clamped"


@pytest.mark.parametrize("path", [
    "../flis/OUT/secret.csv", "/../flis/OUT/secret.csv", "/OUT/../../flis/OUT/secret.csv",
    "OUT/../../../flis/OUT/secret.csv", "../../accounts/flis/OUT/secret.csv",
    "../../../state/accounts/flis/OUT/secret.csv", "/flis/OUT/secret.csv",
])
def test_traversal_cannot_reach_other_account(d, vendor, path):
    secret = d.out_dir("flis") / "secret.csv"
    secret.write_bytes(b"flis-secret")
    d.own(secret)
    with pytest.raises(IOError) as e:
        read_remote(vendor, path)
    assert e.value.errno in (errno.ENOENT, errno.EACCES, None), e.value
    with pytest.raises(IOError):
        vendor.stat(path)
    with pytest.raises(IOError):
        write_remote(vendor, path, b"overwritten")
    assert secret.read_bytes() == b"flis-secret"


@pytest.mark.parametrize("path", ["/../../etc/passwd", "../../../../../../../etc/passwd",
                                  "/etc/passwd", "/OUT/../../../../etc/passwd"])
def test_traversal_cannot_reach_host(d, vendor, path):
    with pytest.raises(IOError):
        vendor.stat(path)
    with pytest.raises(IOError):
        read_remote(vendor, path)


def test_traversal_write_plants_nothing(d, vendor):
    for path in ("../flis/OUT/planted.csv", "/../../planted.csv", "../../../planted.csv"):
        with pytest.raises(IOError):
            write_remote(vendor, path, b"planted")
    planted = [p for p in d.workdir.rglob("planted.csv")]
    assert planted == [], f"a traversal write created {planted}"


def test_symlinks_on_disk_are_not_followed(d, vendor):
    """Links that appear in a jail by other means never lead out of it."""
    secret = d.out_dir("flis") / "linked_secret.csv"
    secret.write_bytes(b"flis-secret")
    os.symlink("/etc/passwd", d.out_dir("vendor") / "evil_passwd")
    os.symlink(secret, d.out_dir("vendor") / "evil_flis.csv")
    os.symlink(d.out_dir("flis"), d.in_dir("vendor") / "evil_dir")
    d.own(secret, d.out_dir("vendor") / "evil_passwd", d.out_dir("vendor") / "evil_flis.csv",
          d.in_dir("vendor") / "evil_dir")
    for path in ("/OUT/evil_passwd", "/OUT/evil_flis.csv"):
        with pytest.raises(IOError):
            read_remote(vendor, path)
        with pytest.raises(IOError):
            write_remote(vendor, path, b"overwritten")
    with pytest.raises(IOError):
        read_remote(vendor, "/IN/evil_dir/linked_secret.csv")
    with pytest.raises(IOError):
        vendor.listdir("/IN/evil_dir")
    assert secret.read_bytes() == b"flis-secret"
    os.unlink(d.out_dir("vendor") / "evil_passwd")
    os.unlink(d.out_dir("vendor") / "evil_flis.csv")
    os.unlink(d.in_dir("vendor") / "evil_dir")


def test_accounts_are_isolated(d, vendor, flis):
    write_remote(vendor, "/OUT/isolated.csv", b"vendor only")
    assert "isolated.csv" not in flis.listdir("/OUT")
    with pytest.raises(FileNotFoundError):
        flis.stat("/OUT/isolated.csv")
    assert not (d.out_dir("flis") / "isolated.csv").exists()
    write_remote(flis, "/OUT/flis_own.csv", b"flis only")
    assert "flis_own.csv" not in vendor.listdir("/OUT")
    assert (d.out_dir("flis") / "flis_own.csv").read_bytes() == b"flis only"


# ------------------------------------------------------------------------------------------
# Names (contract §2)


@pytest.mark.parametrize("name", [
    ".hidden.csv", "..data", ".", "a\x01b.csv", "line\nbreak.csv", "esc\x1b.csv", "tab\tx.csv",
    "del\x7f.csv", "c1\u0085x.csv", "x" * 244,
], ids=["dot", "dotdot-prefix", "single-dot", "ctrl-01", "newline", "escape", "tab", "del",
        "c1-nel", "244-bytes"])
def test_invalid_names_refused(d, vendor, name):
    before = set(os.listdir(d.out_dir("vendor")))
    with pytest.raises(IOError):
        write_remote(vendor, "/OUT/" + name, b"x")
    assert set(os.listdir(d.out_dir("vendor"))) == before, f"{name!r} was created"


def test_invalid_utf8_name_refused(d, vendor):
    before = set(os.listdir(d.out_dir("vendor")))
    try:
        with pytest.raises(IOError):
            write_remote(vendor, b"/OUT/bad\xff\xfe.csv", b"x")
    except UnicodeDecodeError as e:  # SFTP status messages are UTF-8 (draft-ietf-secsh-filexfer-02 7)
        pytest.fail(f"refused, but the status message is not UTF-8: {e.object!r}", pytrace=False)
    assert set(os.listdir(d.out_dir("vendor"))) == before


def test_rename_to_invalid_name_refused(d, vendor):
    write_remote(vendor, "/OUT/valid.csv", b"v")
    for bad in (".hidden", "a\nb", "y" * 244):
        with pytest.raises(IOError):
            vendor.rename("/OUT/valid.csv", "/OUT/" + bad)
    assert (d.out_dir("vendor") / "valid.csv").read_bytes() == b"v"
    vendor.remove("/OUT/valid.csv")


# ------------------------------------------------------------------------------------------
# Concurrency


def test_twenty_concurrent_sessions(d, keyset):
    n = 20
    barrier = threading.Barrier(n, timeout=60)

    def one(i: int) -> None:
        data = os.urandom(256 * 1024 + i)
        with d.sftp("vendor", keyset.key("ed25519" if i % 2 else "ecdsa256")) as s:
            barrier.wait()  # all 20 sessions are open at once
            write_remote(s, f"/OUT/conc_{i:02d}.dat", data)
            assert sha256_bytes(read_remote(s, f"OUT/conc_{i:02d}.dat")) == sha256_bytes(data)
            assert s.stat(f"/OUT/conc_{i:02d}.dat").st_size == len(data)

    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
        futures = [pool.submit(one, i) for i in range(n)]
        done, not_done = concurrent.futures.wait(futures, timeout=120)
        assert not not_done, "concurrent sessions did not finish within 120 s"
        errors = [f"session {i}: {f.exception()!r}" for i, f in enumerate(futures) if f.exception()]
    assert not errors, "\n".join(errors)
    for i in range(n):
        assert (d.out_dir("vendor") / f"conc_{i:02d}.dat").stat().st_size == 256 * 1024 + i
