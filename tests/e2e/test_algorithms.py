"""The algorithms fordelerd offers (contract §1): exactly these, in this order, nothing weaker.

Three independent views: OpenSSH forced to one algorithm at a time (works / refused with
"no matching ..."), the server's KEXINIT decoded by hand, and the RFC 8308 server-sig-algs
extension as paramiko and OpenSSH see it.
"""

from __future__ import annotations

import re
import socket
import struct

import paramiko
import pytest

from harness import AccountSpec, connect_transport, raw_socket, run, ssh_base_options

KEY_NAMES = ["ed25519", "ecdsa256", "ecdsa384", "ecdsa521", "rsa2048", "rsa3072"]

KEX = ["curve25519-sha256", "curve25519-sha256@libssh.org", "diffie-hellman-group16-sha512",
       "diffie-hellman-group18-sha512"]
KEX_MARKERS = {"kex-strict-s-v00@openssh.com", "ext-info-s"}  # added by libssh, not algorithms
HOSTKEYS = ["ssh-ed25519", "rsa-sha2-512", "rsa-sha2-256"]
CIPHERS = ["chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com", "aes256-gcm@openssh.com",
           "aes128-ctr", "aes256-ctr"]
MACS = ["hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com", "hmac-sha2-256",
        "hmac-sha2-512"]

WEAK_KEX = ["diffie-hellman-group14-sha256", "ecdh-sha2-nistp256", "ecdh-sha2-nistp384",
            "ecdh-sha2-nistp521", "diffie-hellman-group-exchange-sha256",
            "diffie-hellman-group-exchange-sha1", "diffie-hellman-group1-sha1",
            "diffie-hellman-group14-sha1"]
WEAK_CIPHERS = ["aes128-cbc", "aes192-cbc", "aes256-cbc", "3des-cbc", "aes192-ctr"]
WEAK_MACS = ["hmac-sha1", "hmac-sha1-etm@openssh.com", "hmac-sha1-96", "hmac-md5",
             "umac-64@openssh.com", "umac-64-etm@openssh.com", "umac-128-etm@openssh.com"]
WEAK_HOSTKEYS = ["ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ssh-dss"]


@pytest.fixture(scope="module")
def d(module_daemons, keyset):
    return module_daemons.create(
        [AccountSpec("vendor", [keyset.key(n) for n in KEY_NAMES], use_file=True)])


def ssh_with(d, key, *opts: str):
    """One OpenSSH login with forced options, running the sftp subsystem on an empty stdin."""
    args = []
    for o in opts:
        args += ["-o", o]
    return run(["ssh", "-v", *ssh_base_options(key), *args, "-p", str(d.port), "-s",
                f"vendor@{d.host}", "sftp"], timeout=60)


def assert_login(res, *want_lines: str) -> None:
    assert "Authenticated to" in res.stderr, f"login failed (status {res.returncode}):\n{res.stderr}"
    for line in want_lines:
        assert line in res.stderr, f"expected {line!r} in ssh -v output:\n{res.stderr}"


def their_offer(res, what: str) -> list[str]:
    m = re.search(r"no matching " + what + r" found\. Their offer: (\S+)", res.stderr)
    assert m, f"expected 'no matching {what} found' (status {res.returncode}):\n{res.stderr}"
    return m.group(1).split(",")


# ------------------------------------------------------------------------------------------
# OpenSSH, one algorithm at a time


@pytest.mark.parametrize("alg", KEX)
def test_kex_offered(d, keyset, alg):
    assert_login(ssh_with(d, keyset.key("ed25519"), f"KexAlgorithms={alg}"),
                 f"kex: algorithm: {alg}\n")


@pytest.mark.parametrize("alg", WEAK_KEX)
def test_weak_kex_refused(d, keyset, alg):
    res = ssh_with(d, keyset.key("ed25519"), f"KexAlgorithms={alg}")
    offer = their_offer(res, "key exchange method")
    assert [a for a in offer if a not in KEX_MARKERS] == KEX, offer


@pytest.mark.parametrize("alg", CIPHERS)
def test_cipher_offered(d, keyset, alg):
    res = ssh_with(d, keyset.key("ed25519"), f"Ciphers={alg}")
    assert_login(res, f"kex: server->client cipher: {alg} ", f"kex: client->server cipher: {alg} ")


@pytest.mark.parametrize("alg", WEAK_CIPHERS)
def test_weak_cipher_refused(d, keyset, alg):
    assert their_offer(ssh_with(d, keyset.key("ed25519"), f"Ciphers={alg}"), "cipher") == CIPHERS


@pytest.mark.parametrize("alg", MACS)
def test_mac_offered(d, keyset, alg):
    res = ssh_with(d, keyset.key("ed25519"), "Ciphers=aes128-ctr", f"MACs={alg}")
    assert_login(res, f"kex: server->client cipher: aes128-ctr MAC: {alg} ",
                 f"kex: client->server cipher: aes128-ctr MAC: {alg} ")


@pytest.mark.parametrize("alg", WEAK_MACS)
def test_weak_mac_refused(d, keyset, alg):
    res = ssh_with(d, keyset.key("ed25519"), "Ciphers=aes128-ctr", f"MACs={alg}")
    assert their_offer(res, "MAC") == MACS


@pytest.mark.parametrize("alg", HOSTKEYS)
def test_hostkey_offered(d, keyset, alg):
    assert_login(ssh_with(d, keyset.key("ed25519"), f"HostKeyAlgorithms={alg}"),
                 f"kex: host key algorithm: {alg}\n")


@pytest.mark.parametrize("alg", WEAK_HOSTKEYS)
def test_weak_hostkey_refused(d, keyset, alg):
    res = ssh_with(d, keyset.key("ed25519"), f"HostKeyAlgorithms={alg}")
    assert their_offer(res, "host key type") == HOSTKEYS


@pytest.mark.parametrize("keyname,alg", [
    ("ed25519", "ssh-ed25519"), ("ecdsa256", "ecdsa-sha2-nistp256"),
    ("ecdsa384", "ecdsa-sha2-nistp384"), ("ecdsa521", "ecdsa-sha2-nistp521"),
    ("rsa2048", "rsa-sha2-256"), ("rsa2048", "rsa-sha2-512"), ("rsa3072", "rsa-sha2-512"),
])
def test_client_signature_accepted(d, keyset, keyname, alg):
    assert_login(ssh_with(d, keyset.key(keyname), f"PubkeyAcceptedAlgorithms={alg}"))


def test_client_signature_ssh_rsa_refused(d, keyset):
    res = ssh_with(d, keyset.key("rsa2048"), "PubkeyAcceptedAlgorithms=ssh-rsa")
    assert res.returncode == 255 and "Authenticated to" not in res.stderr, res.stderr
    assert "Permission denied (publickey)" in res.stderr, res.stderr


# ------------------------------------------------------------------------------------------
# The server's KEXINIT, decoded by hand


def read_line(sock: socket.socket, limit: int = 512) -> bytes:
    buf = b""
    while not buf.endswith(b"\n"):
        c = sock.recv(1)
        if not c:
            raise EOFError(f"connection closed after {buf!r}")
        buf += c
        assert len(buf) <= limit, f"identification line too long: {buf!r}"
    return buf


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def server_hello(d) -> tuple[str, dict]:
    """Returns the server's identification line and its decoded KEXINIT."""
    with raw_socket(d.host, d.port) as s:
        s.sendall(b"SSH-2.0-e2e_probe\r\n")
        for _ in range(20):  # RFC 4253 4.2: lines before the identification are allowed
            line = read_line(s)
            if line.startswith(b"SSH-"):
                break
        else:
            pytest.fail("no SSH- identification line")
        (length,) = struct.unpack(">I", recv_exact(s, 4))
        assert 12 <= length <= 35000, f"implausible packet length {length}"
        packet = recv_exact(s, length)
    pad = packet[0]
    payload = packet[1:length - pad]
    assert payload[0] == 20, f"first packet is message {payload[0]}, not SSH_MSG_KEXINIT"
    i = 17  # message type + 16-byte cookie
    names = ["kex", "hostkey", "enc_cs", "enc_sc", "mac_cs", "mac_sc", "comp_cs", "comp_sc",
             "lang_cs", "lang_sc"]
    lists = {}
    for n in names:
        (ln,) = struct.unpack(">I", payload[i:i + 4])
        text = payload[i + 4:i + 4 + ln].decode("ascii")
        lists[n] = text.split(",") if text else []
        i += 4 + ln
    lists["first_kex_packet_follows"] = payload[i]
    return line.decode("ascii").rstrip("\r\n"), lists


def kexinit_packet(kex: str) -> bytes:
    """An unencrypted SSH_MSG_KEXINIT offering `kex` and otherwise the contract's algorithms."""
    def namelist(items: list[str]) -> bytes:
        text = ",".join(items).encode("ascii")
        return struct.pack(">I", len(text)) + text
    payload = bytes([20]) + bytes(16)
    for lst in ([kex], HOSTKEYS, CIPHERS, CIPHERS, MACS, MACS, ["none"], ["none"], [], []):
        payload += namelist(lst)
    payload += bytes([0]) + struct.pack(">I", 0)
    pad = 8 - (len(payload) + 5) % 8
    pad += 8 if pad < 4 else 0
    return struct.pack(">IB", len(payload) + pad + 1, pad) + payload + bytes(pad)


@pytest.mark.parametrize("round_", range(20))
def test_kexinit_reaches_a_client_that_matches_nothing(d, round_):
    """What OpenSSH does on a busy machine: it reads our banner, then its own banner and a KEXINIT
    that matches nothing reach us in one read. The server must still send its KEXINIT before it
    closes, or the client cannot say what the server offers. (libssh buffers that packet unless
    told the socket is writable: SshSession::ContinueKeyExchange. A client that sends its KEXINIT
    before it has our banner can still miss ours: see docs/architecture.md.)"""
    with raw_socket(d.host, d.port) as s:
        received = read_line(s)
        s.sendall(b"SSH-2.0-e2e_probe\r\n" + kexinit_packet("diffie-hellman-group1-sha1"))
        for _ in range(100):  # bounded: the server closes after the failed negotiation
            chunk = s.recv(65536)
            if not chunk:
                break
            received += chunk
    banner_end = received.find(b"\r\n")
    assert received.startswith(b"SSH-2.0-") and banner_end > 0, f"no banner: {received[:80]!r}"
    packet = received[banner_end + 2:]
    assert len(packet) > 6 and packet[5] == 20, (
        f"server closed without sending its KEXINIT ({len(packet)} bytes after the banner)")


def test_kexinit_lists_exactly_the_contract(d):
    _, k = server_hello(d)
    algorithms = [a for a in k["kex"] if a not in KEX_MARKERS]
    markers = [a for a in k["kex"] if a in KEX_MARKERS]
    assert algorithms == KEX, f"kex list {k['kex']}"
    assert k["kex"][:len(KEX)] == KEX, f"markers must follow the algorithms: {k['kex']}"
    assert "kex-strict-s-v00@openssh.com" in markers, f"no strict kex (Terrapin): {k['kex']}"
    assert k["hostkey"] == HOSTKEYS
    assert k["enc_cs"] == CIPHERS and k["enc_sc"] == CIPHERS
    assert k["mac_cs"] == MACS and k["mac_sc"] == MACS
    assert k["comp_cs"] == ["none"] and k["comp_sc"] == ["none"], "compression is not offered"
    assert k["lang_cs"] == [] and k["lang_sc"] == []
    assert k["first_kex_packet_follows"] == 0


def test_banner_reveals_no_version(d):
    banner, _ = server_hello(d)
    assert banner.startswith("SSH-2.0-"), banner
    software = banner[len("SSH-2.0-"):]
    assert "libssh" not in banner.lower(), f"banner names libssh: {banner!r}"
    assert re.fullmatch(r"[A-Za-z_-]+", software), f"banner reveals a version or comment: {banner!r}"


# ------------------------------------------------------------------------------------------
# server-sig-algs (RFC 8308)


def test_server_sig_algs_paramiko(d, keyset):
    t = connect_transport(d.host, d.port, "vendor", keyset.key("rsa2048"))
    try:
        algs = t.server_extensions.get("server-sig-algs")
        assert algs, f"no server-sig-algs; extensions: {t.server_extensions}"
        algs = (algs.decode() if isinstance(algs, bytes) else algs).split(",")
        assert "rsa-sha2-512" in algs and "rsa-sha2-256" in algs, algs
        assert "ssh-rsa" not in algs and "ssh-dss" not in algs, f"SHA-1 announced: {algs}"
        assert t._agreed_pubkey_algorithm == "rsa-sha2-512", t._agreed_pubkey_algorithm
    finally:
        t.close()


def test_server_sig_algs_openssh(d, keyset):
    res = ssh_with(d, keyset.key("rsa3072"))
    assert_login(res)
    m = re.search(r"kex_input_ext_info: server-sig-algs=<([^>]*)>", res.stderr)
    assert m, f"OpenSSH saw no server-sig-algs:\n{res.stderr}"
    algs = m.group(1).split(",")
    assert "rsa-sha2-512" in algs and "ssh-rsa" not in algs, algs


@pytest.mark.parametrize("position", ["first", "middle", "last"])
def test_server_sig_algs_wherever_ext_info_c_stands(d, keyset, monkeypatch, position):
    """The server must see `ext-info-c` anywhere in the client's kex list (contract §1)."""
    original = paramiko.message.Message.add_list

    def add_list(self, items):
        items = list(items)
        if "ext-info-c" in items:
            items.remove("ext-info-c")
            where = {"first": 0, "middle": len(items) // 2, "last": len(items)}[position]
            items.insert(where, "ext-info-c")
        return original(self, items)

    monkeypatch.setattr(paramiko.message.Message, "add_list", add_list)
    t = connect_transport(d.host, d.port, "vendor", keyset.key("rsa2048"))
    try:
        assert "server-sig-algs" in t.server_extensions, (
            f"ext-info-c {position}: no server-sig-algs ({t.server_extensions})")
        assert t._agreed_pubkey_algorithm == "rsa-sha2-512"
    finally:
        t.close()
