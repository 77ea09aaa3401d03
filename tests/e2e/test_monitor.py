"""Schedules and alerts end to end (docs/operations.md, "Schedules and alerts"): a route that
expected a delivery minutes ago and got none is LATE in `fordeler status` (exit 1) and its alert
command runs exactly once — not again at later checks, nor after a restart — with the alert in
its environment and nothing else of the daemon's; after a real transfer on the route, the route
is OK and `fordeler status` exits 0. A route configured (at start or by a reload) after its
expected delivery was due is not blamed for it: it is OK, and nothing is raised. A route whose
newest transfer was accepted but cannot be placed (5001) is FAILED, and its last delivery stays
the transfer before, which reached the recipient. A delivery not picked up in time raises
`not_picked_up` with the transfer's authority; the alert command's output is logged a line at a
time as `event=alert_output`, escaped, never copied raw into fordelerd's log.

The schedule is "daily HH:MM" in Europe/Copenhagen, HH:MM being 11 minutes before the current
minute, with 10 minutes' grace: LATE now, MISSING only 9 minutes or more from now. fordelerd
judges a schedule only from when it first watched it (its `route_watched` audit event); for the
LATE test the route has been watched for an hour: that event is written into the audit log,
backdated and hash-chained as fordelerd writes it, while the daemon is stopped.
"""

from __future__ import annotations

import datetime
import http.client
import io
import json
import re
import shutil
import signal
import socket
import sqlite3
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from harness import (AccountSpec, cli_json, data_areas_toml, db_rows, event_hash, refused_start,
                     run, trigger_xml, wait_receipt, wait_until)
from test_cli import fordeler_path

KMD, FLIS = "kmd", "flis"
KEY_NAMES = ["kmd_ed25519", "flis_ed25519"]
INF_REF = "FLISOekonomiAflever_1"
ROUTE = "oek-kmd"
AUTHORITY = "urn:oio:cvr-nr:55133018"  # kmd's
ZONE = ZoneInfo("Europe/Copenhagen")


def rfc3339(t: datetime.datetime) -> str:
    return t.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def schedule_in_the_past() -> tuple[str, datetime.datetime, datetime.datetime]:
    """("daily HH:MM", its due instant, the next one), HH:MM 11 minutes before this minute."""
    now = datetime.datetime.now(ZONE).replace(second=0, microsecond=0)
    due = (now.astimezone(datetime.timezone.utc) - datetime.timedelta(minutes=11)).astimezone(ZONE)
    tomorrow = due.date() + datetime.timedelta(days=1)
    nxt = datetime.datetime.combine(tomorrow, due.time().replace(tzinfo=None), tzinfo=ZONE)
    return f"daily {due:%H:%M}", due, nxt


def watch_key(spec: str) -> str:
    """The route_watched event's detail for ROUTE, authorities ["*"] and expect = [spec]."""
    return f"route={ROUTE} authority=* expect={spec.replace(' ', '_')}"


def append_event(db: Path, at: datetime.datetime, kind: str, detail: str) -> None:
    """Appends an event (no transfer, no account) to a stopped daemon's audit log, chained as
    fordelerd chains it (audit/chain.h)."""
    con = sqlite3.connect(db)
    try:
        last = con.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = last if last else (0, "")
        time_text = rfc3339(at)
        h = event_hash(prev, seq + 1, time_text, kind, "", "", detail)
        con.execute("INSERT INTO events (seq, time, kind, transfer_uuid, account, detail, "
                    "prev_hash, hash) VALUES (?, ?, ?, '', '', ?, ?, ?)",
                    (seq + 1, time_text, kind, detail, prev, h))
        con.commit()
    finally:
        con.close()


def monitor_config(tmp_path: Path, alerts: Path, expect: str | None, alerts_extra: str = "",
                   script: Path | None = None) -> str:
    schedule = f'expect = ["{expect}"]\ngrace = "10m"\n' if expect else ""
    script = script or alert_script(tmp_path)
    return (f'[alerts]\non_alert = ["{script}", "{alerts}"]\n'
            f'check_interval = "1s"\ntimeout = "10s"\n{alerts_extra}'
            '[delivery]\ntrigger_grace = "1s"\n'
            f'[[route]]\nid = "{ROUTE}"\ndata_area = "oekonomi"\nsender = "{KMD}"\n'
            f'authorities = ["*"]\nrecipients = ["{FLIS}"]\n{schedule}'
            '\n[http]\nlisten = ["127.0.0.1:0"]\n\n' + data_areas_toml())


def create_daemon(daemons, keyset, extra: str):
    accounts = [AccountSpec(KMD, [keyset.key("kmd_ed25519")],
                            extra=f'authority = "{AUTHORITY}"'),
                AccountSpec(FLIS, [keyset.key("flis_ed25519")])]
    return daemons.create(accounts, server_extra='time_zone = "Europe/Copenhagen"', extra=extra)


def alert_script(directory: Path) -> Path:
    """A command that writes its environment to <directory>/alert.<pid>.env."""
    script = directory / "notify-ops"
    script.write_text('#!/bin/sh\nenv > "$1/alert.$$.env"\n')
    script.chmod(0o755)
    return script


def alert_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("alert.*.env"))


def status(d, *args: str) -> tuple[int, str]:
    r = run([fordeler_path(), "--config", str(d.config_path), "status", *args], timeout=60)
    assert r.returncode in (0, 1), r.stderr
    return r.returncode, r.stdout


HTTP_RE = r"event=http_listening address=127\.0\.0\.1:(\d+)"


def page_and_api(d, since: int = 0) -> tuple[dict, str]:
    """The route as /api/routes reports it, and the status page's overview HTML."""
    port = int(d.wait_log(HTTP_RE, since=since).group(1))
    states = {}
    for path in ("/api/routes", "/"):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            assert r.status == 200, (path, r.status)
            states[path] = r.read().decode("utf-8")
        finally:
            conn.close()
    route = next(x for x in json.loads(states["/api/routes"])["routes"] if x["id"] == ROUTE)
    return route, states["/"]


def page_and_api_state(d, since: int = 0) -> tuple[str, str]:
    """The route's state as /api/routes reports it, and the status page's overview HTML."""
    route, page = page_and_api(d, since)
    return route["state"], page


def send_to_flis(d, keyset, name: str) -> None:
    data = b"a;b;c\n1;2;3\n"
    with d.sftp(KMD, keyset.key("kmd_ed25519")) as s:
        s.putfo(io.BytesIO(data), f"OUT/{name}")
        s.putfo(io.BytesIO(trigger_xml(name, len(data), KMD, [FLIS], inf_ref=INF_REF)),
                f"OUT/{name}.trigger")


def test_late_route_alerts_once_and_a_transfer_makes_it_ok(daemons, keyset, tmp_path):
    """LATE in status (exit 1), on the status page and in the API, and one alert run with the
    right variables; OK everywhere after a transfer."""
    alerts = tmp_path / "alerts"
    alerts.mkdir()
    spec, due, nxt = schedule_in_the_past()
    # A route without a schedule first, so that the audit log exists; then it has been watched
    # with `spec` since an hour ago (before `due`).
    d = create_daemon(daemons, keyset, monitor_config(tmp_path, alerts, None))
    d.stop()
    append_event(d.workdir / "state" / "audit.db",
                 datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1),
                 "route_watched", watch_key(spec))
    d.extra = monitor_config(tmp_path, alerts, spec)
    d.write_config()
    started_at = d.stderr_size()
    d.start()

    code, table = status(d)
    assert code == 1, table
    assert f"{ROUTE}" in table and "LATE" in table, table
    code, out = status(d, "--json")
    assert code == 1
    row = json.loads(out)[0]
    assert (row["state"], row["authority"]) == ("LATE", "*")
    assert row["due_at"] == rfc3339(due)
    assert row["next_expected_at"] == rfc3339(nxt)
    api_state, page = page_and_api_state(d, since=started_at)
    assert api_state == "LATE"
    assert ROUTE in page and "LATE" in page, page

    # The shell creates the file before `env` writes it: read it once the command has ended.
    d.wait_log(r"event=alert_command_done kind=late", timeout=20)
    assert len(alert_files(alerts)) == 1, [p.read_text() for p in alert_files(alerts)]
    env = dict(line.split("=", 1) for line in alert_files(alerts)[0].read_text().splitlines())
    assert env["FORDELER_ALERT_KIND"] == "late"
    assert env["FORDELER_ALERT_ROUTE"] == ROUTE
    assert env["FORDELER_ALERT_AUTHORITY"] == "*"
    assert env["FORDELER_ALERT_STATE"] == "LATE"
    assert env["FORDELER_ALERT_DUE"] == rfc3339(due)
    assert env["FORDELER_ALERT_SENDER"] == KMD
    assert env["FORDELER_ALERT_COUNT"] == "1"
    assert due.strftime("%H:%M") in env["FORDELER_ALERT_MESSAGE"]
    assert set(env) - {"PWD", "SHLVL", "_"} == {k for k in env if k.startswith("FORDELER_ALERT_")} | {"PATH"}

    # Later checks, and a restart, raise it no more (the audit log remembers it).
    d.wait_log(r"event=alert kind=late route=oek-kmd")
    time.sleep(3)  # three more checks
    d.stop()
    restarted_at = d.stderr_size()
    d.start()
    d.wait_log(r"event=route_state route=oek-kmd authority=\* state=LATE", since=restarted_at,
               timeout=20)
    time.sleep(2)  # two more checks
    assert len(alert_files(alerts)) == 1, [p.read_text() for p in alert_files(alerts)]
    events = db_rows(d.workdir / "state" / "audit.db",
                     "SELECT detail FROM events WHERE kind = 'alert'")
    assert len(events) == 1
    assert events[0]["detail"].startswith(f"kind=late route={ROUTE} authority=* due={rfc3339(due)}")

    data = b"a;b;c\n1;2;3\n"
    with d.sftp(KMD, keyset.key("kmd_ed25519")) as s:
        s.putfo(io.BytesIO(data), "OUT/late.csv")
        s.putfo(io.BytesIO(trigger_xml("late.csv", len(data), KMD, [FLIS], inf_ref=INF_REF)),
                "OUT/late.csv.trigger")
    wait_receipt(d, KMD, "late.csv")
    code, out = status(d, "--json")
    row = json.loads(out)[0]
    assert code == 0, out
    assert row["state"] == "OK" and row["due_at"] is None
    code, table = status(d)
    assert code == 0 and "LATE" not in table, table
    api_state, page = page_and_api_state(d, since=restarted_at)
    assert api_state == "OK"
    assert "LATE" not in page and "OK" in page, page
    assert len(alert_files(alerts)) == 1


def test_a_route_configured_after_its_due_time_is_not_late(daemons, keyset, tmp_path):
    """First configured 11 minutes after its expected delivery, with 10 minutes' grace: OK in
    status (exit 0) and the API, no alert; the same after a reload that changes the schedule to
    another time already past, and after a restart (the moment it was first watched is kept)."""
    alerts = tmp_path / "alerts"
    alerts.mkdir()
    spec, _, nxt = schedule_in_the_past()
    d = create_daemon(daemons, keyset, monitor_config(tmp_path, alerts, spec))
    db = d.workdir / "state" / "audit.db"
    d.wait_log("event=route_watched " + re.escape(watch_key(spec)))
    time.sleep(2)  # two more checks
    code, out = status(d, "--json")
    row = json.loads(out)[0]
    assert code == 0, out
    assert (row["state"], row["due_at"]) == ("OK", None), row
    assert row["next_expected_at"] == rfc3339(nxt)
    assert "first watched" in row["detail"], row
    assert page_and_api_state(d)[0] == "OK"
    assert "route_state" not in d.stderr_text() and "event=alert " not in d.stderr_text()

    # A reload moves the schedule to 13 minutes ago (never the HH:MM of `spec`): watched anew
    # from now, still nothing due.
    due2 = (datetime.datetime.now(ZONE).replace(second=0, microsecond=0)
            - datetime.timedelta(minutes=13))
    spec2 = f"daily {due2:%H:%M}"
    d.extra = monitor_config(tmp_path, alerts, spec2)
    d.write_config()
    since = d.stderr_size()
    d.send_signal(signal.SIGHUP)
    d.wait_log(r"event=reloaded", since=since)
    d.wait_log("event=route_watched " + re.escape(watch_key(spec2)), since=since)
    time.sleep(2)
    assert status(d)[0] == 0

    d.stop()
    restarted_at = d.stderr_size()
    d.start()
    page_and_api_state(d, since=restarted_at)  # up and checked at least once
    time.sleep(2)
    assert status(d)[0] == 0
    watched = db_rows(db, "SELECT detail FROM events WHERE kind = 'route_watched' ORDER BY seq")
    assert [r["detail"] for r in watched] == [watch_key(spec), watch_key(spec2)]
    assert db_rows(db, "SELECT detail FROM events WHERE kind = 'alert'") == []
    assert alert_files(alerts) == []


def test_a_daemon_that_cannot_listen_watches_no_schedule(daemons, keyset, tmp_path):
    """A fordelerd that does not start (its port is taken) records nothing of the monitor's: no
    route_watched event, which would have `fordeler status` judge the schedule from a moment
    nothing watched it. Started for real, it watches the schedule from then."""
    alerts = tmp_path / "alerts"
    alerts.mkdir()
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    accounts = [AccountSpec(KMD, [keyset.key("kmd_ed25519")]),
                AccountSpec(FLIS, [keyset.key("flis_ed25519")])]
    d = daemons.create(accounts, start=False, listen=[f"127.0.0.1:{taken.getsockname()[1]}"],
                       server_extra='time_zone = "Europe/Copenhagen"',
                       extra=monitor_config(tmp_path, alerts, "daily 06:00"))
    try:
        err = refused_start(d.config_path, "on a port that was taken", cwd=d.workdir)
    finally:
        taken.close()
    assert "event=route_watched" not in err and "retention_swept" not in err, err
    db = d.workdir / "state" / "audit.db"
    assert db_rows(db, "SELECT kind FROM events WHERE kind = 'route_watched'") == []
    d.listen = ["127.0.0.1:0"]
    d.write_config()
    d.start()
    d.wait_log("event=route_watched " + re.escape(watch_key("daily 06:00")))


def test_a_transfer_failing_with_5001_makes_its_route_failed(daemons, keyset, tmp_path):
    """flis's IN is a file, not a folder: the route's newest transfer is accepted and its
    placement fails with 5001 at every attempt. The route is FAILED in `fordeler status`, the API
    and the status page, and its last delivery everywhere is still the transfer before, the one
    that reached flis. Once IN is a folder again (and a reload retries at once), OK."""
    alerts = tmp_path / "alerts"
    alerts.mkdir()
    d = create_daemon(daemons, keyset, monitor_config(tmp_path, alerts, None))
    send_to_flis(d, keyset, "first.csv")
    first = wait_receipt(d, KMD, "first.csv")["FileTransferUUID"].lower()
    flis_in = d.in_dir(FLIS)
    shutil.rmtree(flis_in)
    flis_in.write_bytes(b"not a folder\n")
    send_to_flis(d, keyset, "second.csv")
    found = {}

    def failing() -> bool:
        mine = [t for t in cli_json(d, "transfers") if t["name"] == "second.csv"]
        found.update(mine[0] if mine else {})
        return bool(mine) and mine[0]["error_code"] == 5001
    wait_until(failing, 30, "fordeler transfers to show second.csv failing with 5001")
    second = found["uuid"]
    assert found["state"] == "delivering", found

    code, out = status(d, "--json")
    assert code == 1, out  # a transfer failing with 5001 needs the operator
    row = json.loads(out)[0]
    assert row["state"] == "FAILED", row
    assert f"({second}) is failing with fordeler's own error 5001" in row["detail"], row
    assert row["last_delivery"]["uuid"] == first, row
    assert row["health"][0]["last_delivery_at"] == row["last_delivery"]["time"], row
    code, table = status(d)
    assert re.search(rf"^{ROUTE}\s+FAILED\s", table, re.M), table
    route, page = page_and_api(d)
    assert route["state"] == "FAILED", route
    assert route["authorities"][0]["last_transfer_uuid"] == first, route
    assert route["authorities"][0]["last_delivery_at"] == row["last_delivery"]["time"], route
    assert "FAILED" in page, page

    flis_in.unlink()
    flis_in.mkdir(mode=0o750)
    since = d.stderr_size()
    d.send_signal(signal.SIGHUP)  # runs the transfers waiting out their back-off
    d.wait_log(r"event=reloaded", since=since)
    wait_receipt(d, KMD, "second.csv", timeout=90)
    code, out = status(d, "--json")
    row = json.loads(out)[0]
    assert code == 0, out
    assert (row["state"], row["last_delivery"]["uuid"]) == ("OK", second), row
    route, _ = page_and_api(d)
    assert (route["state"], route["authorities"][0]["last_transfer_uuid"]) == ("OK", second)


def test_not_picked_up_alert_names_the_authority_and_logs_the_commands_output(daemons, keyset,
                                                                             tmp_path):
    """A delivery flis has not fetched a second after it was placed: its `not_picked_up` alert
    names the transfer's authority (as `rejected` and `stuck` do) in the command's environment
    and the log line, whose absent values are `-`. What the alert command writes to stdout and
    stderr is logged a line at a time as `event=alert_output`, escaped: a line of its output
    that looks like one of fordelerd's own stays inside its `line="…"`."""
    alerts = tmp_path / "alerts"
    alerts.mkdir()
    script = tmp_path / "talking-notify-ops"
    script.write_text('#!/bin/sh\nenv > "$1/alert.$$.env"\necho "sent $FORDELER_ALERT_KIND"\n'
                      "printf 'x\\nfordelerd[1]: event=login user=\"root\"\\n' >&2\n")
    script.chmod(0o755)
    d = create_daemon(daemons, keyset, monitor_config(
        tmp_path, alerts, None, alerts_extra='not_picked_up_after = "1s"\n', script=script))
    send_to_flis(d, keyset, "unfetched.csv")
    uuid = wait_receipt(d, KMD, "unfetched.csv")["FileTransferUUID"].lower()
    d.wait_log(r"event=alert_command_done kind=not_picked_up", timeout=30)
    assert len(alert_files(alerts)) == 1, [p.read_text() for p in alert_files(alerts)]
    env = dict(line.split("=", 1) for line in alert_files(alerts)[0].read_text().splitlines())
    assert env["FORDELER_ALERT_KIND"] == "not_picked_up"
    assert env["FORDELER_ALERT_AUTHORITY"] == AUTHORITY
    assert env["FORDELER_ALERT_ERROR_CODE"] == ""
    d.wait_log(rf"event=alert kind=not_picked_up route={ROUTE} authority={AUTHORITY} "
               rf"state=NOT_PICKED_UP due=- transfer={uuid} sender={KMD} recipient={FLIS} "
               r"code=- message=")
    d.wait_log(r'event=alert_output kind=not_picked_up stream=stdout line="sent not_picked_up"')
    d.wait_log(r'event=alert_output kind=not_picked_up stream=stderr line=x\n')
    d.wait_log(r'event=alert_output kind=not_picked_up stream=stderr '
               r'line="fordelerd\[1\]: event=login user=\\x22root\\x22"')
    for line in d.stderr_text().splitlines():
        assert not line.startswith(("sent ", "x", "fordelerd[1]")), line
    detail = db_rows(d.workdir / "state" / "audit.db",
                     "SELECT detail FROM events WHERE kind = 'alert'")[0]["detail"]
    assert f"authority={AUTHORITY}" in detail, detail
