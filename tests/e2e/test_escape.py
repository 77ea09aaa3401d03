"""Untrusted strings on the operator's screens, logs and pages, end to end: names put into /OUT
by other means than the server (bytes that are not UTF-8, escape sequences, C1 controls, line
breaks), names with quotes a sender may upload, trigger values with C1 controls and line breaks,
and SSH user names and banners a client chooses. The daemon must keep serving, its log must stay
one event a line with unforgeable fields, the JSON API and `fordeler --json` must be valid JSON,
and the pages and the CLI's text must carry no control character (docs/cli.md,
docs/operations.md).
"""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import re
import socket
import subprocess

import paramiko
import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness import (AccountSpec, data_areas_toml, db_rows, fordeler_path, trigger_xml,
                     wait_receipt, wait_until)

KMD, FLIS = "kmd", "flis"
KEY_NAMES = ["kmd_ed25519", "flis_ed25519"]
ROUTE = "oek-kmd"
INF_REF = "FLISOekonomiAflever_1"
HTTP_RE = r"event=http_listening address=127\.0\.0\.1:(\d+)"
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (trace|debug|info|warning|error|"
                      r"critical) event=[a-z_]+( |$)")
# What may not reach a terminal: C0 but the line break, DEL, C1 (as UTF-8), and stray bytes.
CONTROL = re.compile(rb"[\x00-\x09\x0b-\x1f\x7f]|\xc2[\x80-\x9f]")

HOSTILE = b"evil\xff\x1b[31mRED\n\xc2\x9b2J.csv"  # not UTF-8, ESC, line break, CSI
SHOWN = r"evil\xff\x1b[31mRED\x0a\xc2\x9b2J.csv"  # how the CLI and the pages show it


@pytest.fixture(scope="module")
def d(module_daemons, keyset):
    extra = (f'[[route]]\nid = "{ROUTE}"\ndata_area = "oekonomi"\nsender = "{KMD}"\n'
             f'authorities = ["*"]\nrecipients = ["{FLIS}"]\n\n' + data_areas_toml() +
             '\n[http]\nlisten = ["127.0.0.1:0"]\n')
    return module_daemons.create([AccountSpec(KMD, [keyset.key("kmd_ed25519")]),
                                  AccountSpec(FLIS, [keyset.key("flis_ed25519")])], extra=extra)


@pytest.fixture(autouse=True)
def still_one_event_a_line(d):
    """After each test the daemon runs and every line it logged is one whole event."""
    yield
    assert d.running(), d.stderr_text()[-3000:]
    for line in d.stderr_text().splitlines():
        assert LOG_LINE.match(line), f"not one event: {line!r}"


def get(d, path: str) -> tuple[int, bytes]:
    port = int(d.wait_log(HTTP_RE).group(1))
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def cli(d, *args: str) -> subprocess.CompletedProcess:
    r = subprocess.run([fordeler_path(), "--config", str(d.config_path), *args],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, (args, r.returncode, r.stdout, r.stderr)
    return r


def plant(d, name: bytes, trigger: bytes) -> str:
    """Writes OUT/<name> and its trigger as a local process would; returns the transfer's uuid
    once done."""
    out = os.fsencode(d.out_dir(KMD))
    with open(os.path.join(out, name), "wb") as f:
        f.write(b"abc")
    with open(os.path.join(out, name + b".trigger"), "wb") as f:
        f.write(trigger)
    db = d.state / "audit.db"
    trig = os.fsdecode(name + b".trigger")

    def done():
        return [r["uuid"] for r in db_rows(db, "SELECT uuid, trigger_name FROM transfers "
                                               "WHERE step = 6")
                if r["trigger_name"] == trig]
    wait_until(lambda: bool(done()), 20, f"transfer of planted {name!r}")
    return done()[0]


def test_name_from_the_file_system_that_is_not_utf8_nor_printable(d):
    """GET /api/... ended the daemon (json type_error 316 on the HTTP thread); the CLI printed
    ESC, CSI and the line break raw and its --json aborted."""
    uuid = plant(d, HOSTILE, trigger_xml("x.csv", 3, KMD, [FLIS], inf_ref=INF_REF))
    replaced = HOSTILE.decode("utf-8", "replace")  # U+FFFD for the stray byte
    for path in (f"/api/routes/{ROUTE}", f"/api/transfers/{uuid}"):
        status, body = get(d, path)
        assert status == 200, (path, body)
        doc = json.loads(body.decode("utf-8"))  # strict UTF-8, then JSON
    assert doc["name"] == replaced and doc["trigger_name"] == replaced + ".trigger"
    for path in (f"/routes/{ROUTE}", f"/transfers/{uuid}"):
        status, body = get(d, path)
        assert status == 200
        body.decode("utf-8")
        assert not CONTROL.search(body.replace(b"\n", b"")), path
        assert SHOWN.encode() in body or path.startswith("/routes/"), path  # not on the route

    for args in (["transfers"], ["show", uuid], ["quarantine", "list"]):
        out = cli(d, *args).stdout
        out.decode("utf-8")
        assert not CONTROL.search(out), (args, out)
        assert SHOWN.encode() in out, (args, out)
    assert json.loads(cli(d, "transfers", "--json").stdout)[0]["name"] == replaced
    assert json.loads(cli(d, "show", uuid, "--json").stdout)["trigger_name"] == replaced + ".trigger"
    q = json.loads(cli(d, "quarantine", "list", "--json").stdout)
    assert any(row["uuid"] == uuid and row["name"] == replaced for row in q), q
    log = d.stderr_text()
    assert rf'trigger="{SHOWN}.trigger"' in log
    status, body = get(d, "/metrics")  # labels hold configured ids only: still parses
    assert status == 200
    families = {f.name for f in text_string_to_metric_families(body.decode("utf-8"))}
    assert "fordeler_transfers" in families


def test_quotes_in_a_name_cannot_forge_a_log_field(d, keyset):
    """A valid name may hold '"' and spaces; in `name="..."` the quote is escaped."""
    name = 'q" size=0 sha256=x how=forged ".csv'
    with d.sftp(KMD, keyset.key("kmd_ed25519")) as s:
        s.putfo(io.BytesIO(b"abc"), f"OUT/{name}")
        s.putfo(io.BytesIO(trigger_xml(name, 3, KMD, [FLIS], inf_ref=INF_REF)),
                f"OUT/{name}.trigger")
    uuid = wait_receipt(d, KMD, name)["FileTransferUUID"]
    shown = name.replace('"', r"\x22")
    # The audit event's detail quotes the name as a whole: it has spaces.
    events = json.loads(cli(d, "show", uuid, "--json").stdout)["events"]
    sha = hashlib.sha256(b"abc").hexdigest()
    assert [e["detail"] for e in events if e["kind"] == "delivered"] == \
        [f'name="{shown}" sha256={sha} size=3'], events
    received = [e["detail"] for e in events if e["kind"] == "received"]
    assert received == [f'trigger="{shown}.trigger"'], events
    d.wait_log(rf'event=upload_closed account={KMD} name="{re.escape(shown)}" size=3 ')
    d.wait_log(rf'event=delivered transfer=\S+ recipient={FLIS} name="{re.escape(shown)}"')
    assert 'name="q" size=0' not in d.stderr_text()
    with d.sftp(FLIS, keyset.key("flis_ed25519")) as s:
        s.remove(f"IN/{name}")
    d.wait_log(rf'event=removed account={FLIS} folder=IN name="{re.escape(shown)}"')


def test_trigger_values_with_c1_controls_and_line_breaks(d, keyset):
    """SendersFileId with CSI (U+009B) and a line break, SizeInBytes with a line break and a
    quote: the receipt is XML a stock parser reads, `show` shows no control character, and the
    rejection's log line stays one line."""
    name, bad = "c1-values.csv", "c1-size.csv"
    trig = trigger_xml(name, 999, KMD, [FLIS], inf_ref=INF_REF,
                       senders_file_id="id\u009b2J\nevent=delivered")
    trig_bad = trigger_xml(bad, 3, KMD, [FLIS], inf_ref=INF_REF).replace(
        b"<SizeInBytes>3</SizeInBytes>", b'<SizeInBytes>3\nerror event=delivered x="</SizeInBytes>')
    with d.sftp(KMD, keyset.key("kmd_ed25519")) as s:
        for n, t in ((name, trig), (bad, trig_bad)):
            s.putfo(io.BytesIO(b"abc"), f"OUT/{n}")
            s.putfo(io.BytesIO(t), f"OUT/{n}.trigger")
    receipt = wait_receipt(d, KMD, name)
    assert receipt["ErrorMessage"]["ErrorCode"] == "1005"
    assert receipt["SendersFileId"] == "id\u009b2J\nevent=delivered"  # as sent
    uuid = receipt["FileTransferUUID"]
    out = cli(d, "show", uuid).stdout
    assert not CONTROL.search(out), out
    assert rb"id\xc2\x9b2J\x0aevent=delivered" in out
    assert rb"<SendersFileId>id\xc2\x9b2J" in out  # the receipt, shown
    receipt = wait_receipt(d, KMD, bad)
    assert receipt["ErrorMessage"]["ErrorCode"] == "1002"
    d.wait_log(rf"event=rejected transfer={receipt['FileTransferUUID']} sender={KMD} code=1002 "
               r'reason="SizeInBytes \\x223\\x0aerror event=delivered x=\\x22\\x22 is not ')


# A field of a log line or an audit event's detail: `key=word`, or `key="..."` with no '"' and no
# backslash inside but as \xNN (LogValue, core/names.h).
FIELD = re.compile(r'([a-z_]+)=("(?:[^"\\]|\\x[0-9a-f]{2})*"|[^\s"=\\]+)')


def logfmt(text: str) -> dict[str, str]:
    """The fields of `text`, strictly: whole `key=value` fields one space apart, each key once,
    values as written. Anything else fails the test."""
    fields: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        m = FIELD.match(text, pos)
        assert m and (m.end() == len(text) or text[m.end()] == " "), f"not key=value: {text!r}"
        assert m.group(1) not in fields, f"{m.group(1)} twice: {text!r}"
        fields[m.group(1)] = m.group(2)
        pos = m.end() + 1
    return fields


def unquoted(value: str) -> str:
    """A field's value as the text it stands for."""
    if not value.startswith('"'):
        return value
    raw = re.sub(rb"\\x([0-9a-f]{2})", lambda m: bytes([int(m.group(1), 16)]),
                 value[1:-1].encode("utf-8"))
    return raw.decode("utf-8")


def test_a_rejection_reason_cannot_forge_a_field(d, keyset):
    """The rejection's reason quotes the sender's SizeInBytes; its '"' and `key=value` pairs stay
    inside `reason=`, in the log line and in the audit event's detail. Before, the line read
    `reason="SizeInBytes "3" account=flis x="" is not a whole number"`: a field `account=flis`."""
    name = "forge-size.csv"
    value = '3" account=flis x="'
    trig = trigger_xml(name, 3, KMD, [FLIS], inf_ref=INF_REF).replace(
        b"<SizeInBytes>3</SizeInBytes>", f"<SizeInBytes>{value}</SizeInBytes>".encode())
    with d.sftp(KMD, keyset.key("kmd_ed25519")) as s:
        s.putfo(io.BytesIO(b"abc"), f"OUT/{name}")
        s.putfo(io.BytesIO(trig), f"OUT/{name}.trigger")
    receipt = wait_receipt(d, KMD, name)
    assert receipt["ErrorMessage"]["ErrorCode"] == "1002"
    uuid = receipt["FileTransferUUID"]
    line = d.wait_log(rf"event=rejected transfer={uuid} .*").group(0)
    fields = logfmt(line)
    assert list(fields) == ["event", "transfer", "sender", "code", "reason"], line
    assert fields["sender"] == KMD and fields["code"] == "1002", line
    reason = unquoted(fields["reason"])
    assert reason.startswith(f'SizeInBytes "{value}" is not '), line
    assert "account=flis" not in re.sub(r'reason="[^"]*"', "", line), line

    events = json.loads(cli(d, "show", uuid, "--json").stdout)["events"]
    detail = [e["detail"] for e in events if e["kind"] == "rejected"]
    assert len(detail) == 1, events
    fields = logfmt(detail[0])
    assert list(fields) == ["code", "error", "reason"], detail
    assert fields["code"] == "1002" and fields["error"] == "TRIGGER_INVALID", detail
    assert unquoted(fields["reason"]) == reason, detail


def test_a_disconnect_before_a_login_names_no_account(d):
    """A connection that ends after the key exchange, before any login: its `disconnect` line says
    `account=-` (a value that is not there, docs/operations.md) and parses strictly. Before, it
    read `account= reason=...`: an empty value, which strict logfmt parsers reject."""
    size = d.stderr_size()
    t = paramiko.Transport(("127.0.0.1", d.port))
    port = t.sock.getsockname()[1]
    try:
        t.start_client(timeout=10)
    finally:
        t.close()
    line = d.wait_log(rf"event=disconnect peer=127\.0\.0\.1:{port} .*", since=size).group(0)
    fields = logfmt(line)
    assert list(fields) == ["event", "peer", "account", "reason"], line
    assert fields["account"] == "-", line


@pytest.mark.parametrize("user", [
    "x\nerror event=login account=flis peer=127.0.0.1:1 key=SHA256:forged",
    'y" account=flis \x1b[2J\u009b',
    "z account=flis",
    "bad\udcff",  # sent as the byte 0xff
])
def test_user_names_a_client_chooses(d, keyset, user):
    """Password and public-key attempts with hostile user names: `user=` is a quoted, escaped
    value, never a line or a field of its own."""
    size = d.stderr_size()
    raw = user.encode("utf-8", "surrogateescape")
    ports = set()
    for method in ("password", "publickey"):
        t = paramiko.Transport(("127.0.0.1", d.port))
        ports.add(t.sock.getsockname()[1])
        try:
            t.start_client(timeout=10)
            try:
                if method == "password":
                    t.auth_password(raw, "pw")
                else:
                    t.auth_publickey(raw, paramiko.Ed25519Key.from_private_key_file(
                        str(keyset.key("kmd_ed25519"))))
            except paramiko.SSHException:
                pass
        finally:
            t.close()
    d.wait_log(r"event=auth_refused peer=\S+ user=\"", since=size)
    d.wait_log(r"event=login_failed peer=\S+ user=\"", since=size)
    new = d.stderr_text()[size:]
    # Not the lines of other connections: an earlier test's flis session may log its end
    # meanwhile. A line a forged name would make (peer=127.0.0.1:1) is no other connection's.
    def other_connection(line: str) -> bool:
        m = re.search(r"peer=127\.0\.0\.1:(\d+) ", line)
        return m is not None and int(m.group(1)) not in ports | {1}

    ours = "".join(line for line in new.splitlines(keepends=True) if not other_connection(line))
    assert "account=flis" not in re.sub(r'user="[^"]*"', "", ours), ours
    assert "\x1b" not in new and "\u009b" not in new


def test_a_banner_with_quotes_and_escapes(d):
    """libssh quotes the client's banner in its error: escaped like a name."""
    size = d.stderr_size()
    with socket.create_connection(("127.0.0.1", d.port), timeout=10) as sock:
        sock.sendall(b'SSH-1.0-evil" peer=forged \x1b[2J\xc2\x9b\r\n')
        try:
            sock.recv(4096)
            sock.recv(4096)
        except OSError:
            pass
    wait_until(lambda: "event=kex_failed" in d.stderr_text()[size:] or
               "event=disconnect" in d.stderr_text()[size:], 10, "the connection's end logged")
    new = d.stderr_text()[size:]
    assert "peer=forged" not in new.replace(r"\x22 peer=forged", ""), new
    assert "\x1b" not in new and "\u009b" not in new
