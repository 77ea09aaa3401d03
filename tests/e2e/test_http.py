"""The status page, JSON API and /metrics over HTTP ([http], docs/operations.md), end to end.

Real transfers go through the daemon with paramiko; then the JSON API, the Prometheus text (parsed
with prometheus_client's parser) and the page rendered by a headless chromium must show them.
Bad requests get the right status and leave the daemon serving; basic auth and TLS are checked
with a hash from `openssl passwd -6` and a self-signed certificate made at test time; a listen
address that is not loopback without both is refused by `fordeler check-config`.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import signal
import socket
import ssl
import subprocess
import tempfile
import uuid as uuidlib
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness import AccountSpec, data_areas_toml, run, trigger_xml, wait_receipt, wait_until

KMD = "kmd-oekonomi"
FLIS = "flis"
ROUTE = "oekonomi-kmd"
DELIVER = "FLISOekonomiAflever_1"
KEY_NAMES = ["kmd_ed25519", "flis_ed25519"]
HTTP_RE = r"event=http_listening address=127\.0\.0\.1:(\d+)"
CHROMIUM = "/usr/bin/chromium"
N_DELIVERED = 2
N_REJECTED = 1

ROUTES = f"""
[[route]]
id = "{ROUTE}"
data_area = "oekonomi"
sender = "{KMD}"
authorities = ["*"]
recipients = ["{FLIS}"]
"""


def accounts(keyset) -> list[AccountSpec]:
    return [AccountSpec(KMD, [keyset.key("kmd_ed25519")],
                        extra='authority = "urn:oio:cvr-nr:55133018"\nit_system = "kmd"'),
            AccountSpec(FLIS, [keyset.key("flis_ed25519")], extra='it_system = "FLIS"')]


def http_port(d) -> int:
    return int(d.wait_log(HTTP_RE).group(1))


def get(port: int, path: str, method: str = "GET", headers: dict | None = None,
        context: ssl.SSLContext | None = None) -> tuple[int, dict, bytes]:
    """One request on a fresh connection; returns status, headers (lower-case names), body."""
    if context is None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    else:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=15, context=context)
    try:
        conn.request(method, path, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def send(d, keyset, name: str, data: bytes, size: int) -> dict:
    with d.sftp(KMD, keyset.key("kmd_ed25519")) as s:
        s.putfo(io.BytesIO(data), f"OUT/{name}")
        s.putfo(io.BytesIO(trigger_xml(name, size, KMD, [FLIS], inf_ref=DELIVER)),
                f"OUT/{name}.trigger")
    return wait_receipt(d, KMD, name)


def utc_day() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d")


def same_day(served) -> bool:
    """No UTC midnight since the transfers were sent: they all count as today's."""
    return served["first_day"] == served["day"] == utc_day()


@pytest.fixture(scope="module")
def served(module_daemons, keyset):
    """A daemon with HTTP on 127.0.0.1:0, after N_DELIVERED delivered transfers, N_REJECTED
    rejected one (SIZE_MISMATCH) and one delivered file downloaded by the recipient."""
    extra = ROUTES + "\n" + data_areas_toml() + '\n[http]\nlisten = ["127.0.0.1:0"]\n'
    d = module_daemons.create(accounts(keyset), extra=extra)
    port = http_port(d)
    names, uuids = [], []
    first_day = utc_day()
    for i in range(N_DELIVERED):
        name = f"status-{i}-{uuidlib.uuid4().hex[:8]}.csv"
        receipt = send(d, keyset, name, b"x" * (100 + i), 100 + i)
        names.append(name)
        uuids.append(receipt["FileTransferUUID"])
    bad = f"status-bad-{uuidlib.uuid4().hex[:8]}.csv"
    rejected = send(d, keyset, bad, b"short", 999)
    with d.sftp(FLIS, keyset.key("flis_ed25519")) as s:
        downloaded = s.open(f"IN/{names[0]}").read()
    return {"d": d, "port": port, "names": names + [bad], "uuids": uuids,
            "rejected": rejected["FileTransferUUID"], "downloaded": len(downloaded),
            "day": utc_day(), "first_day": first_day}


def metrics(port: int) -> dict:
    status, headers, body = get(port, "/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    return {f.name: f for f in text_string_to_metric_families(body.decode())}


def sample_sum(family, name: str, **labels) -> float:
    return sum(s.value for s in family.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def test_api_shows_routes_and_transfers(served):
    """/api/routes, /api/routes/<id> and /api/transfers/<uuid> agree with the real transfers."""
    port = served["port"]
    status, headers, body = get(port, "/api/routes")
    assert status == 200 and headers["content-type"] == "application/json"
    doc = json.loads(body)
    route = next(r for r in doc["routes"] if r["id"] == ROUTE)
    assert route["data_area"] == "oekonomi" and route["recipients"] == [FLIS]
    assert route["state"] in ("OK", "LATE", "MISSING", "FAILED")
    assert route["authorities"] and route["authorities"][0]["authority"] == "*"
    assert route["authorities"][0]["last_transfer_uuid"] == served["uuids"][-1]
    assert route["delivered_today"] == N_DELIVERED or not same_day(served)
    for name in served["names"]:  # no file names in the overview
        assert name.encode() not in body

    status, _, body = get(port, f"/api/routes/{ROUTE}")
    assert status == 200
    detail = json.loads(body)
    days = {x["day"]: x["count"] for x in detail["deliveries_per_day"]}
    assert len(days) == 30
    assert days.get(utc_day()) == N_DELIVERED or not same_day(served)
    assert sum(days.values()) == N_DELIVERED
    recent = {t["uuid"]: t for t in detail["recent_transfers"]}
    for u in served["uuids"]:
        assert recent[u]["state"] == "delivered"
        assert recent[u]["receipt"] == {"code": 0, "name": "SUCCESS", "description": None}

    status, _, body = get(port, f"/api/transfers/{served['uuids'][0]}")
    assert status == 200
    t = json.loads(body)
    assert t["name"] == served["names"][0] and t["state"] == "delivered"
    assert [x["recipient"] for x in t["deliveries"]] == [FLIS]
    kinds = [e["kind"] for e in t["events"]]
    assert "received" in kinds and "delivered" in kinds
    assert "trigger" not in t and b"<?xml" not in body  # no file contents

    status, _, body = get(port, f"/api/transfers/{served['rejected']}")
    rej = json.loads(body)
    assert status == 200 and rej["state"] == "rejected"
    assert rej["receipt"]["code"] == 1005 and rej["receipt"]["name"] == "SIZE_MISMATCH"


def test_metrics_count_real_transfers(served):
    """fordeler_transfers_total equals the delivered and rejected transfers; bytes, latency,
    sessions, pending deliveries and disk free are there with their types."""
    port = served["port"]
    wait_until(lambda: sample_sum(metrics(port)["fordeler_sent_bytes"], "fordeler_sent_bytes_total")
               >= served["downloaded"], 10, "bytes out counted")
    fams = metrics(port)
    t = fams["fordeler_transfers"]
    assert t.type == "counter"
    assert sample_sum(t, "fordeler_transfers_total", data_area="oekonomi",
                      outcome="delivered") == N_DELIVERED
    assert sample_sum(t, "fordeler_transfers_total", outcome="rejected") == N_REJECTED
    assert sample_sum(t, "fordeler_transfers_total", outcome="failed") == 0
    assert sample_sum(fams["fordeler_received_bytes"], "fordeler_received_bytes_total") == 100 + 101
    assert sample_sum(fams["fordeler_sent_bytes"], "fordeler_sent_bytes_total") == 100
    h = fams["fordeler_routing_latency_seconds"]
    assert h.type == "histogram"
    assert sample_sum(h, "fordeler_routing_latency_seconds_count") == N_DELIVERED
    # Downloaded is not picked up: a delivery is picked up when the recipient removes it.
    assert sample_sum(fams["fordeler_pending_deliveries"],
                      "fordeler_pending_deliveries") == N_DELIVERED
    assert fams["fordeler_storage_free_bytes"].samples[0].value > 0
    assert "fordeler_active_sessions" in fams and "fordeler_late_routes" in fams
    assert "fordeler_authentication_failures" in fams
    # Everything sent is finished: nothing waits for its turn, nothing is under way.
    assert sample_sum(fams["fordeler_triggers_waiting"], "fordeler_triggers_waiting") == 0
    assert sample_sum(fams["fordeler_transfers_in_progress"],
                      "fordeler_transfers_in_progress") == 0
    for f in fams.values():  # file names never appear in labels
        for s in f.samples:
            assert not any(n in v for v in s.labels.values() for n in served["names"])


def test_bad_requests_get_their_status_and_the_daemon_serves_on(served):
    """POST -> 405 with Allow, unknown path -> 404, a 64 KiB header -> 431 (or 400)."""
    port = served["port"]
    status, headers, _ = get(port, "/", method="POST")
    assert status == 405 and headers["allow"] == "GET, HEAD"
    assert get(port, "/nope")[0] == 404
    assert get(port, "/api/transfers/not-a-uuid")[0] == 404
    assert get(port, "/routes/no-such-route")[0] == 404
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n")
        reply = sock.recv(4096)
    assert reply.split(b" ")[1] in (b"431", b"400"), reply[:100]
    status, headers, body = get(port, "/", method="HEAD")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 0
    status, headers, _ = get(port, "/")
    assert status == 200
    assert "default-src 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff" and headers["cache-control"] == "no-store"
    assert served["d"].running()


class DomParser(HTMLParser):
    """Collects the chart's bars, the state badges and the text of a rendered page."""

    def __init__(self) -> None:
        super().__init__()
        self.bars: dict[str, int] = {}
        self.states: list[str] = []
        self.text: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "rect" and "bar" in (a.get("class") or "").split():
            self.bars[a["data-day"]] = int(a["data-count"])
        if tag == "span" and "data-state" in a:
            self.states.append(a["data-state"])
        if tag == "script":
            self.scripts += 1

    def handle_data(self, data):
        self.text.append(data)


def chromium(args: list[str], url: str, profile: str) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           f"--user-data-dir={profile}", *args, url]
    return subprocess.run(cmd, capture_output=True, timeout=90, text=True)


def artifacts_dir() -> Path:
    build = Path(os.environ["FORDELERD"]).resolve().parent.parent
    out = build / "tests" / "e2e" / "artifacts"
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK),
                    reason=f"{CHROMIUM} is missing: apt-get install chromium")
def test_status_page_in_headless_chromium(served):
    """chromium renders the overview and the route page: routes, state words and a chart whose
    bars carry the real delivery counts; a screenshot is kept as a test artifact."""
    port = served["port"]
    with tempfile.TemporaryDirectory() as profile:
        shot = artifacts_dir() / "status.png"
        r = chromium([f"--screenshot={shot}", "--window-size=1280,1600"],
                     f"http://127.0.0.1:{port}/routes/{ROUTE}", profile)
        assert shot.exists() and shot.stat().st_size > 1000, r.stderr[-2000:]
        print(f"screenshot: {shot}")
        overview = DomParser()
        r = chromium(["--dump-dom"], f"http://127.0.0.1:{port}/", profile)
        overview.feed(r.stdout)
        page = DomParser()
        r = chromium(["--dump-dom"], f"http://127.0.0.1:{port}/routes/{ROUTE}", profile)
        page.feed(r.stdout)
    text = "".join(overview.text)
    assert ROUTE in text and overview.states
    assert all(s in ("OK", "LATE", "MISSING", "FAILED") and s in text for s in overview.states)
    assert not any(n in text for n in served["names"])  # no file names on the overview
    assert len(page.bars) == 30
    assert page.bars.get(utc_day()) == N_DELIVERED or not same_day(served)
    assert sum(page.bars.values()) == N_DELIVERED
    assert page.states and served["names"][0] in "".join(page.text)  # names allowed here
    assert overview.scripts == 0 and page.scripts == 0


def make_tls(workdir: Path) -> tuple[Path, Path]:
    cert, key = workdir / "http.crt", workdir / "http.key"
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)])
    return cert, key


def test_basic_auth_and_tls(daemons, keyset, tmp_path):
    """With user, password_hash (openssl passwd -6) and a self-signed certificate: HTTPS only,
    401 with WWW-Authenticate without or with wrong credentials, 200 with the right ones."""
    cert, key = make_tls(tmp_path)
    hashed = run(["openssl", "passwd", "-6", "s3cret-pass"]).stdout.strip()
    extra = (ROUTES + "\n" + data_areas_toml() + '\n[http]\nlisten = ["127.0.0.1:0"]\n'
             f'user = "ops"\npassword_hash = "{hashed}"\n'
             f'tls_certificate = "{cert}"\ntls_key = "{key}"\n')
    d = daemons.create(accounts(keyset), extra=extra)
    port = http_port(d)
    ctx = ssl.create_default_context(cafile=str(cert))
    status, headers, _ = get(port, "/api/routes", context=ctx)
    assert status == 401 and headers["www-authenticate"].startswith("Basic realm=")
    wrong = base64.b64encode(b"ops:wrong").decode()
    assert get(port, "/metrics", headers={"Authorization": f"Basic {wrong}"}, context=ctx)[0] == 401
    good = base64.b64encode(b"ops:s3cret-pass").decode()
    status, _, body = get(port, "/api/routes", headers={"Authorization": f"Basic {good}"},
                          context=ctx)
    assert status == 200 and json.loads(body)["routes"][0]["id"] == ROUTE
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException, OSError)):
        get(port, "/")  # plain HTTP on the TLS port gets no page
    assert b"s3cret-pass" not in d.stderr_text().encode()


def test_a_reload_names_the_http_settings_it_leaves_to_a_restart(daemons, keyset):
    """[http] takes effect at restart only: a reload with a new password_hash (a leaked password
    rotated) says so in event=reload_partial, never with the hash, and until the restart the
    old password is the one that works; a restart takes the new one."""
    old = run(["openssl", "passwd", "-6", "old-pass"]).stdout.strip()
    new = run(["openssl", "passwd", "-6", "new-pass"]).stdout.strip()
    extra = (ROUTES + "\n" + data_areas_toml() + '\n[http]\nlisten = ["127.0.0.1:0"]\n'
             f'user = "ops"\npassword_hash = "{old}"\n')
    d = daemons.create(accounts(keyset), extra=extra)
    port = http_port(d)

    def status_with(password: str) -> int:
        auth = base64.b64encode(f"ops:{password}".encode()).decode()
        return get(port, "/api/routes", headers={"Authorization": f"Basic {auth}"})[0]

    assert status_with("old-pass") == 200
    text = d.config_path.read_text()
    d.write_config(text.replace(old, new))
    offset = d.stderr_size()
    d.send_signal(signal.SIGHUP)
    d.wait_log(r"event=reload_partial restart_needed=http\.password_hash ", since=offset,
               timeout=10)
    d.wait_log(r"event=reloaded", since=offset, timeout=10)
    assert status_with("old-pass") == 200 and status_with("new-pass") == 401
    # Every [http] setting that differs is named, the listen addresses too.
    two = '[http]\nlisten = ["127.0.0.1:0", "127.0.0.2:0"]'
    d.write_config(text.replace(old, new).replace('[http]\nlisten = ["127.0.0.1:0"]', two))
    offset = d.stderr_size()
    d.send_signal(signal.SIGHUP)
    d.wait_log(r"event=reload_partial restart_needed=http\.listen,http\.password_hash ",
               since=offset, timeout=10)
    assert new not in d.stderr_text() and old not in d.stderr_text()
    d.write_config(text.replace(old, new))
    assert d.stop() == 0
    offset = d.stderr_size()
    d.start()
    port = int(d.wait_log(HTTP_RE, since=offset).group(1))
    assert status_with("new-pass") == 200 and status_with("old-pass") == 401


def served_certificate(port: int) -> bytes:
    """The certificate (DER) that the TLS server on 127.0.0.1:port presents to a new connection."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        with ctx.wrap_socket(sock) as tls:
            return tls.getpeercert(binary_form=True)


def test_a_certificate_renewed_in_place_is_served_after_a_reload(daemons, keyset, tmp_path):
    """[http] changes only at restart, but a certificate renewed in place (same paths, new files,
    as certbot renews) is served from the first connection after a reload; one that does not load
    is reported and the certificate in use stays."""
    cert, key = make_tls(tmp_path)
    extra = (ROUTES + "\n" + data_areas_toml() + '\n[http]\nlisten = ["127.0.0.1:0"]\n'
             f'tls_certificate = "{cert}"\ntls_key = "{key}"\n')
    d = daemons.create(accounts(keyset), extra=extra)
    port = http_port(d)
    first = served_certificate(port)
    assert first == ssl.PEM_cert_to_DER_cert(cert.read_text())
    (tmp_path / "renewed").mkdir()
    new_cert, new_key = make_tls(tmp_path / "renewed")
    os.replace(new_key, key)
    os.replace(new_cert, cert)
    assert served_certificate(port) == first, "changed before any reload"

    offset = d.stderr_size()
    d.send_signal(signal.SIGHUP)
    d.wait_log(r"event=http_tls_reloaded certificate=", since=offset, timeout=10)
    d.wait_log(r"event=reloaded", since=offset, timeout=10)
    renewed = served_certificate(port)
    assert renewed == ssl.PEM_cert_to_DER_cert(cert.read_text()) and renewed != first
    ctx = ssl.create_default_context(cafile=str(cert))  # and it serves pages over it
    assert get(port, "/api/routes", context=ctx)[0] == 200

    cert.write_text("not a certificate\n")
    offset = d.stderr_size()
    d.send_signal(signal.SIGHUP)
    d.wait_log(r'event=http_tls_reload_failed error="tls_certificate .*" '
               r'note="the certificate in use is kept"', since=offset, timeout=10)
    assert served_certificate(port) == renewed


def test_non_loopback_listen_needs_auth_and_tls(daemons, keyset, tmp_path):
    """check-config refuses [http] listen on 0.0.0.0 without basic auth and TLS, at its line."""
    d = daemons.create(accounts(keyset), start=False,
                       extra=ROUTES + '\n[http]\nlisten = ["0.0.0.0:0"]\n')
    cli = Path(os.environ["FORDELERD"]).resolve().parent.parent / "cli" / "fordeler"
    r = run([str(cli), "--config", str(d.config_path), "check-config"], check=False)
    assert r.returncode != 0
    assert "not a loopback address" in r.stdout + r.stderr
    assert "config.toml:" in r.stdout + r.stderr
