"""The operator's CLI end to end (contract §10): the real `fordeler` binary against a real
fordelerd that real paramiko clients send files through. Every command's table and --json
content is checked, and the mutating commands (retry, recall, redeliver, quarantine release and
purge) go through the daemon's control socket.

`fordeler` is $FORDELER, else cli/fordeler beside the daemon's build folder.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pwd
import tempfile
import re
import shutil
import signal
import socket
import subprocess
import uuid as uuidlib
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from harness import (AccountSpec, DaemonFactory, data_areas_toml, db_rows, fordeler_path,
                     fordelerd_path,
                     receipt_of, run,
                     trigger_xml, wait_receipt, wait_transfer, wait_until)

KMD, FLIS, LIS, NEWBIE = "kmd", "flis", "lis", "newbie"
KEY_NAMES = ["kmd_ed25519", "flis_ed25519", "lis_ed25519", "newbie_ed25519"]
INF_REF = "FLISOekonomiAflever_1"
ANSI = re.compile(r"\x1b\[")


def cli(d, *args: str, expect: int | None = 0) -> subprocess.CompletedProcess:
    """Runs `fordeler --config <d's config> ARGS`; checks the exit status when `expect` is set."""
    r = run([fordeler_path(), "--config", str(d.config_path), *args], timeout=60)
    if expect is not None:
        assert r.returncode == expect, (f"fordeler {' '.join(args)} exited {r.returncode}, want "
                                        f"{expect}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}")
    return r


def cli_json(d, *args: str, expect: int = 0):
    return json.loads(cli(d, *args, "--json", expect=expect).stdout)


def account(keyset, name: str, extra: str = "") -> AccountSpec:
    return AccountSpec(name, [keyset.key(f"{name}_ed25519")], extra=extra)


def routes(recipients: list[str]) -> str:
    return (f'[[route]]\nid = "oek-kmd"\ndata_area = "oekonomi"\nsender = "{KMD}"\n'
            f'authorities = ["*"]\nrecipients = {json.dumps(recipients)}\n')


def make_daemon(daemons, keyset, with_newbie: bool = False):
    accounts = [account(keyset, KMD, 'authority = "urn:oio:cvr-nr:55133018"'),
                account(keyset, FLIS, 'it_system = "FLIS"'), account(keyset, LIS)]
    recipients = [FLIS, LIS]
    if with_newbie:
        accounts.append(account(keyset, NEWBIE))
        recipients.append(NEWBIE)
    extra = ('[delivery]\ntrigger_grace = "1s"\n' + routes(recipients) + "\n" + data_areas_toml())
    return daemons.create(accounts, server_extra='time_zone = "Europe/Copenhagen"', extra=extra)


def send(d, keyset, name: str, recipients: list[str], data: bytes = b"a;b;c\n1;2;3\n") -> dict:
    """Uploads OUT/<name> and its trigger as kmd; waits for the receipt; returns it."""
    with d.sftp(KMD, keyset.key("kmd_ed25519")) as s:
        s.putfo(io.BytesIO(data), f"OUT/{name}")
        s.putfo(io.BytesIO(trigger_xml(name, len(data), KMD, recipients, inf_ref=INF_REF)),
                f"OUT/{name}.trigger")
    return wait_receipt(d, KMD, name)


def fresh(tag: str) -> str:
    return f"{tag}-{uuidlib.uuid4().hex[:8]}.csv"


def event_kinds(doc: dict) -> list[str]:
    return [e["kind"] for e in doc["events"]]


def assert_table(text: str) -> None:
    """Plain tables: no colour when stdout is no terminal, and at most 80 columns."""
    assert not ANSI.search(text), text
    for line in text.splitlines():
        assert len(line) <= 80, f"line wider than 80 columns: {line!r}"


# --------------------------------------------------------------------------------------------


def copenhagen_day() -> str:
    """The day in the daemon's time zone (make_daemon): what `status` counts as today."""
    return datetime.now(ZoneInfo("Europe/Copenhagen")).strftime("%Y-%m-%d")


def test_read_commands_show_transfers_routes_accounts_and_status(daemons, keyset):
    d = make_daemon(daemons, keyset)
    day_sent = copenhagen_day()
    good = fresh("good")
    ok = send(d, keyset, good, [FLIS, LIS])
    bad = fresh("bad")
    rejected = send(d, keyset, bad, ["nobody"])
    assert rejected["ErrorMessage"]["ErrorCode"] == "2001"
    ok_uuid, bad_uuid = ok["FileTransferUUID"], rejected["FileTransferUUID"]

    routes_doc = cli_json(d, "routes")
    assert routes_doc == [{"id": "oek-kmd", "data_area": "oekonomi", "sender": KMD,
                           "authorities": ["*"], "recipients": [FLIS, LIS],
                           "defined_at": routes_doc[0]["defined_at"]}]
    assert_table(cli(d, "routes").stdout)

    accounts = {a["id"]: a for a in cli_json(d, "accounts")}
    assert set(accounts) == {KMD, FLIS, LIS}
    assert accounts[KMD]["authority"] == "urn:oio:cvr-nr:55133018"
    assert accounts[FLIS]["it_system"] == "FLIS" and accounts[LIS]["it_system"] is None
    fp = run(["ssh-keygen", "-lf", str(keyset.key("kmd_ed25519")) + ".pub"]).stdout.split()[1]
    assert [k["fingerprint"] for k in accounts[KMD]["keys"]] == [fp]
    assert accounts[KMD]["last_login"] is not None and accounts[LIS]["last_login"] is None
    table = cli(d, "accounts").stdout
    assert_table(table)
    assert fp in table

    rows = cli_json(d, "transfers")
    assert [r["uuid"] for r in rows] == [bad_uuid, ok_uuid]  # newest first
    assert rows[0] == {"uuid": bad_uuid, "state": "rejected", "sender": KMD, "name": bad,
                       "data_area": None, "error_code": 2001, "received_at": rows[0]["received_at"]}
    assert rows[1]["state"] == "delivered" and rows[1]["error_code"] is None
    assert rows[1]["data_area"] == "oekonomi" and rows[1]["received_at"].endswith("Z")
    uuids = lambda *a: [r["uuid"] for r in cli_json(d, "transfers", *a)]  # noqa: E731
    assert uuids("--state", "delivered") == [ok_uuid]
    assert uuids("--route", "oek-kmd") == [ok_uuid]
    assert uuids("--data-area", "oekonomi") == [ok_uuid]
    assert uuids("--sender", KMD, "--limit", "1") == [bad_uuid]
    assert uuids("--sender", FLIS) == []
    # An id the configuration does not know is listed all the same, with a warning.
    r = cli(d, "transfers", "--route", "oek-kmdd")
    assert "warning: --route \"oek-kmdd\" is no configured route" in r.stderr, r.stderr
    assert "warning" not in cli(d, "transfers", "--route", "oek-kmd").stderr
    assert uuids("--since", "1h") == [bad_uuid, ok_uuid]
    assert uuids("--since", "2200-01-01T00:00:00Z") == []
    assert "--state" in cli(d, "transfers", "--state", "done", expect=2).stderr
    assert "--since" in cli(d, "transfers", "--since", "soon", expect=2).stderr
    table = cli(d, "transfers").stdout
    assert_table(table)
    assert ok_uuid in table and f"{KMD} → {good} (oekonomi)" in table

    # FLIS fetches its copy: a pickup.
    with d.sftp(FLIS, keyset.key("flis_ed25519")) as s:
        s.remove(f"IN/{good}")
    wait_until(lambda: cli_json(d, "show", ok_uuid)["deliveries"][0]["state"] == "picked_up", 10,
               "flis's pickup recorded")
    doc = cli_json(d, "show", ok_uuid)
    assert doc["uuid"] == ok_uuid and doc["state"] == "delivered" and doc["name"] == good
    assert doc["routes"] == ["oek-kmd"] and doc["authority"] == "urn:oio:cvr-nr:55133018"
    deliveries = {x["recipient"]: x for x in doc["deliveries"]}
    assert deliveries[FLIS]["state"] == "picked_up" and deliveries[FLIS]["picked_up_at"]
    assert deliveries[LIS]["state"] == "delivered" and deliveries[LIS]["picked_up_at"] is None
    assert deliveries[LIS]["name"] == good and deliveries[LIS]["delivered_at"]
    kinds = event_kinds(doc)
    for kind in ("received", "delivered", "receipt_sent", "picked_up"):
        assert kind in kinds, kinds
    assert all(isinstance(e["seq"], int) for e in doc["events"])
    assert "<Message>SUCCESS</Message>" in doc["receipt"]
    shown = cli(d, "show", ok_uuid).stdout
    assert "Deliveries" in shown and "picked_up" in shown and "receipt_sent" in shown
    assert "SUCCESS" in shown
    bad_doc = cli_json(d, "show", bad_uuid.upper())
    assert bad_doc["error_code"] == 2001 and bad_doc["error_name"] == "UNKNOWN_RECIPIENT"
    assert bad_doc["deliveries"] == [] and "rejected" in event_kinds(bad_doc)
    assert "not a FileTransferUUID" in cli(d, "show", "nope", expect=2).stderr
    assert "no such transfer" in cli(d, "show", str(uuidlib.uuid4()), expect=1).stderr

    status = cli_json(d, "status")
    today = 1 if copenhagen_day() == day_sent else 0  # midnight passed since the transfer
    # The newest transfer of the route's sender was rejected: FAILED, which is not bad news.
    health = [{"authority": "*", "state": "FAILED", "due_at": None, "next_expected_at": None,
               "last_delivery_at": status[0]["health"][0]["last_delivery_at"],
               "detail": f"The sender's latest transfer ({bad_uuid}) was rejected with code 2001."}]
    assert status == [{"route": "oek-kmd", "data_area": "oekonomi", "sender": KMD,
                       "recipients": [FLIS, LIS],
                       "last_delivery": {"time": status[0]["last_delivery"]["time"],
                                         "file": good, "uuid": ok_uuid},
                       "today": today, "pending": 1, "failed_24h": 0, "rejected_24h": 1,
                       "state": "FAILED", "authority": "*", "due_at": None,
                       "next_expected_at": None, "detail": health[0]["detail"],
                       "health": health}]
    table = cli(d, "status").stdout
    assert_table(table)
    assert re.search(r"^oek-kmd\s+FAILED\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ\s+[01]\s+1\s+0\s+1$",
                     table, re.M), table


def test_a_rejection_after_routing_counts_against_its_own_data_area_only(daemons, keyset):
    """Contract §10: only a transfer rejected before its data area was known has none. A 1005
    (SizeInBytes differs) in oekonomi is listed under oekonomi and its route, and `status` counts
    it there, not on the same sender's personale route."""
    extra = ('[delivery]\ntrigger_grace = "1s"\n' + routes([FLIS]) +
             f'\n[[route]]\nid = "pers-kmd"\ndata_area = "personale"\nsender = "{KMD}"\n'
             f'authorities = ["*"]\nrecipients = ["{FLIS}"]\n\n' + data_areas_toml())
    d = daemons.create([account(keyset, KMD), account(keyset, FLIS)], extra=extra)
    name = fresh("short")
    with d.sftp(KMD, keyset.key("kmd_ed25519")) as s:
        s.putfo(io.BytesIO(b"abc"), f"OUT/{name}")
        s.putfo(io.BytesIO(trigger_xml(name, 4, KMD, [FLIS], inf_ref=INF_REF)),
                f"OUT/{name}.trigger")
    receipt = wait_receipt(d, KMD, name)
    assert receipt["ErrorMessage"]["ErrorCode"] == "1005"
    uuid = receipt["FileTransferUUID"]

    rows = cli_json(d, "transfers")
    assert [(r["uuid"], r["data_area"], r["error_code"]) for r in rows] == \
        [(uuid, "oekonomi", 1005)]
    assert [r["uuid"] for r in cli_json(d, "transfers", "--route", "oek-kmd")] == [uuid]
    assert cli_json(d, "transfers", "--data-area", "personale") == []
    doc = cli_json(d, "show", uuid)
    assert doc["routes"] == ["oek-kmd"] and doc["deliveries"] == []
    status = {r["route"]: r for r in cli_json(d, "status")}
    assert status["oek-kmd"]["rejected_24h"] == 1 and status["oek-kmd"]["state"] == "FAILED"
    assert status["pers-kmd"]["rejected_24h"] == 0 and status["pers-kmd"]["state"] != "FAILED"


@pytest.mark.parametrize("factory", ["daemons", "unprivileged_daemons"],
                         ids=["root", "nobody"])
def test_recall_before_pickup_then_redeliver(request, factory, keyset):
    daemons = request.getfixturevalue(factory)  # also as `nobody`, as systemd runs it
    d = make_daemon(daemons, keyset)
    name = fresh("recall")
    uuid = send(d, keyset, name, [FLIS, LIS])["FileTransferUUID"]
    assert (d.in_dir(FLIS) / name).exists() and (d.in_dir(FLIS) / (name + ".metadata")).exists()

    doc = cli_json(d, "recall", uuid, "--recipient", FLIS)
    assert doc["ok"] is True and doc["recalled"] == [{"recipient": FLIS, "name": name}]
    assert not (d.in_dir(FLIS) / name).exists()
    assert not (d.in_dir(FLIS) / (name + ".metadata")).exists()
    assert (d.in_dir(LIS) / name).exists(), "only flis's delivery is recalled"
    shown = cli_json(d, "show", uuid)
    deliveries = {x["recipient"]: x for x in shown["deliveries"]}
    assert deliveries[FLIS]["state"] == "recalled" and deliveries[LIS]["state"] == "delivered"
    recalled = [e for e in shown["events"] if e["kind"] == "recalled"]
    assert len(recalled) == 1 and name in recalled[0]["detail"]
    # The audit log says who: the operator, by the uid the control socket saw (root here).
    assert recalled[0]["detail"].endswith(" by=operator uid=0"), recalled
    assert "picked_up" not in event_kinds(shown), "the recall's removal is no pickup"
    # Nothing left to recall for flis; an unknown recipient is refused.
    # (naming flis's delivery alone: lis's is still waiting)
    err = cli(d, "recall", uuid, "--recipient", FLIS, expect=1).stderr
    assert f"nothing to recall: the delivery of {uuid} to {FLIS} is picked up, expired or " \
        "recalled already" in err, err
    assert "no recipient" in cli(d, "recall", uuid, "--recipient", "x", expect=1).stderr

    # Redeliver to flis from the spool: data and metadata are back.
    out = cli(d, "redeliver", uuid, "--recipient", FLIS).stdout
    assert "again" in out
    assert (d.in_dir(FLIS) / name).read_bytes() == b"a;b;c\n1;2;3\n"
    assert (d.in_dir(FLIS) / (name + ".metadata")).exists()
    shown = cli_json(d, "show", uuid)
    assert {x["recipient"]: x["state"] for x in shown["deliveries"]} == {FLIS: "delivered",
                                                                         LIS: "delivered"}
    redelivered = [e["detail"] for e in shown["events"] if e["kind"] == "redelivered"]
    assert len(redelivered) == 1 and redelivered[0].endswith(" by=operator uid=0"), redelivered
    sha = hashlib.sha256(b"a;b;c\n1;2;3\n").hexdigest()
    assert redelivered[0] == f"name={name} sha256={sha} size=12 by=operator uid=0", redelivered
    # lis still has its copy waiting: nothing to place again.
    assert "not picked up" in cli(d, "redeliver", uuid, "--recipient", LIS, expect=1).stderr

    # Recall everything still waiting (no --recipient).
    doc = cli_json(d, "recall", uuid)
    assert sorted(r["recipient"] for r in doc["recalled"]) == [FLIS, LIS]
    assert not (d.in_dir(LIS) / name).exists()


@pytest.mark.parametrize("factory", ["daemons", "unprivileged_daemons"],
                         ids=["root", "nobody"])
def test_quarantine_release_after_the_account_exists_and_purge(request, factory, keyset):
    daemons = request.getfixturevalue(factory)  # also as `nobody`, as systemd runs it
    d = make_daemon(daemons, keyset)
    name = fresh("newbie")
    receipt = send(d, keyset, name, [NEWBIE])
    assert receipt["ErrorMessage"]["ErrorCode"] == "2001"
    old = receipt["FileTransferUUID"]
    listed = cli_json(d, "quarantine", "list")
    assert [q["uuid"] for q in listed] == [old]
    assert listed[0]["error_code"] == 2001 and listed[0]["error_name"] == "UNKNOWN_RECIPIENT"
    assert set(listed[0]["files"]) >= {name, name + ".trigger"}
    assert old in cli(d, "quarantine", "list").stdout

    # The operator adds the account and its route, reloads, and releases the pair.
    d.accounts.append(account(keyset, NEWBIE))
    d.extra = d.extra.replace(json.dumps([FLIS, LIS]), json.dumps([FLIS, LIS, NEWBIE]))
    d.write_config()
    since = d.stderr_size()
    d.send_signal(signal.SIGHUP)
    d.wait_log(r"event=reloaded", since=since)
    old_receipt = d.in_dir(KMD) / (name + ".sftpreceipt")
    doc = cli_json(d, "quarantine", "release", old)
    assert doc["ok"] is True and doc["files"] == [name, name + ".trigger"]
    fresh_receipt = wait_receipt(d, KMD, name, not_uuid=old)
    assert "Receipt" in fresh_receipt, fresh_receipt
    assert (d.in_dir(NEWBIE) / name).read_bytes() == b"a;b;c\n1;2;3\n"
    assert receipt_of(old_receipt)["FileTransferUUID"] == fresh_receipt["FileTransferUUID"]
    released = [e["detail"] for e in cli_json(d, "show", old)["events"] if e["kind"] == "released"]
    assert len(released) == 1 and released[0].endswith(" by=operator uid=0"), released
    assert cli_json(d, "quarantine", "list") == []
    err = cli(d, "quarantine", "release", old, expect=1).stderr
    assert err.startswith("fordeler quarantine release: ") and "no quarantine folder" in err, err
    assert "rejected" in cli(d, "quarantine", "release", fresh_receipt["FileTransferUUID"],
                             expect=1).stderr

    # Purge: another rejected pair, deleted for good.
    other = send(d, keyset, fresh("purge"), ["nobody"])["FileTransferUUID"]
    assert (d.state / "quarantine" / other).is_dir()
    doc = cli_json(d, "quarantine", "purge", other)
    assert doc["ok"] is True and doc["files"]
    assert not (d.state / "quarantine" / other).exists()
    purged = [e["detail"] for e in cli_json(d, "show", other)["events"] if e["kind"] == "purged"]
    assert len(purged) == 1 and purged[0].endswith(" by=operator uid=0"), purged
    assert cli(d, "quarantine", "list").stdout == "quarantine is empty\n"


def chattr_works(folder: Path) -> bool:
    probe = folder / "chattr-probe"
    probe.mkdir()
    try:
        if run(["chattr", "+i", str(probe)]).returncode != 0:
            return False
        try:
            (probe / "x").write_text("x")
            return False  # root could still write: immutability not enforced here
        except OSError:
            return True
    finally:
        run(["chattr", "-i", str(probe)])
        shutil.rmtree(probe, ignore_errors=True)


def test_retry_after_an_unwritable_in_folder(daemons, keyset):
    if shutil.which("chattr") is None:
        pytest.skip("chattr (e2fsprogs) is not installed: no way to make a folder unwritable "
                    "for root")
    d = make_daemon(daemons, keyset)
    if not chattr_works(d.state):
        pytest.skip("the filesystem under the test's temp dir ignores chattr +i")
    lis_in = d.in_dir(LIS)
    assert run(["chattr", "+i", str(lis_in)]).returncode == 0
    try:
        name = fresh("retry")
        with d.sftp(KMD, keyset.key("kmd_ed25519")) as s:
            s.putfo(io.BytesIO(b"x"), f"OUT/{name}")
            s.putfo(io.BytesIO(trigger_xml(name, 1, KMD, [FLIS, LIS], inf_ref=INF_REF)),
                    f"OUT/{name}.trigger")
        db = d.state / "audit.db"
        wait_until(lambda: db_rows(db, "SELECT 1 FROM transfers WHERE name = ? AND "
                                       "error_code = 5001", (name,)), 20, "the 5001 failure")
        uuid = db_rows(db, "SELECT uuid FROM transfers WHERE name = ?", (name,))[0]["uuid"]
        r = cli(d, "status", expect=1)  # a transfer failing with 5001 is bad news
        assert uuid in r.stdout and "attention" in r.stdout
        failing = cli_json(d, "status", expect=1)
        assert failing[0]["failed_24h"] == 1
        assert cli_json(d, "show", uuid)["error_code"] == 5001
        # Let the back-off grow (100 ms doubling) to 3.2 s: the next attempt is `retry`'s.
        wait_until(lambda: f"transfer={uuid} step=spooled attempt=6 retry_in_ms=3200"
                   in d.stderr_text(), 30, "the back-off to reach 3.2 s")
    finally:
        run(["chattr", "-i", str(lis_in)])
    doc = cli_json(d, "retry", uuid)
    assert doc["ok"] is True and uuid in doc["message"]
    row = wait_transfer(d.state / "audit.db", uuid, timeout=20)
    assert row["state"] == "delivered"
    assert (lis_in / name).read_bytes() == b"x"
    assert "finished" in cli(d, "retry", uuid, expect=1).stderr
    cli(d, "status", expect=0)
    events = cli_json(d, "show", uuid)["events"]
    kinds = [e["kind"] for e in events]
    assert "failed" in kinds and "delivered" in kinds
    # The operator's retry ran the step, not the back-off's next attempt.
    retried = [e["detail"] for e in events if e["kind"] == "retried"]
    assert retried and retried[0] == "by=operator uid=0 step=spooled", retried


def test_mutating_commands_need_the_running_daemon(daemons, keyset):
    d = make_daemon(daemons, keyset)
    uuid = send(d, keyset, fresh("stopped"), [FLIS])["FileTransferUUID"]
    assert (d.state / "control.sock").is_socket()
    assert d.stop() == 0
    assert not (d.state / "control.sock").exists()
    for args in (["retry", uuid], ["recall", uuid], ["redeliver", uuid, "--recipient", FLIS],
                 ["quarantine", "release", uuid], ["quarantine", "purge", uuid]):
        r = cli(d, *args, expect=1)
        assert "fordelerd is not running" in r.stderr, r.stderr
    assert "not a FileTransferUUID" in cli(d, "retry", "x", expect=2).stderr
    # The read commands answer without the daemon.
    assert cli_json(d, "show", uuid)["state"] == "delivered"
    cli(d, "status")


def test_audit_verify_detects_a_changed_row_and_a_cut_end(daemons, keyset):
    d = make_daemon(daemons, keyset)
    send(d, keyset, fresh("audit"), [FLIS])
    assert cli(d, "audit", "verify").stdout.startswith("audit log OK: ")
    assert d.stop() == 0
    head = re.findall(r"event=audit_head seq=(\d+) hash=([0-9a-f]{64})", d.stderr_text())[-1]
    head_arg = f"{head[0]}:{head[1]}"
    doc = cli_json(d, "audit", "verify", "--head", head_arg)
    assert doc["ok"] is True and doc["head"] == {"seq": int(head[0]), "hash": head[1]}
    assert doc["events"] == int(head[0]) and doc["first_bad_seq"] is None
    assert "SEQ:HASH" in cli(d, "audit", "verify", "--head", "12", expect=2).stderr

    db = str(d.state / "audit.db")
    subprocess.run(["sqlite3", db, "DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete;"
                    "UPDATE events SET detail = 'name=forged.csv' WHERE seq = 2;"], check=True)
    r = cli(d, "audit", "verify", expect=1)
    assert r.stdout == "audit log BROKEN at seq 2: hash mismatch\n"
    doc = cli_json(d, "audit", "verify", expect=1)
    assert doc["ok"] is False and doc["first_bad_seq"] == 2 and doc["problem"] == "hash mismatch"

    # Put row 2 back as it was? Its hash cannot be forged; instead cut the end of a clean copy.
    clean = d.state / "clean.db"
    subprocess.run(["sqlite3", db, f"VACUUM INTO '{clean}'"], check=True)
    subprocess.run(["sqlite3", str(clean), f"DELETE FROM events WHERE seq >= 2"], check=True)
    d.write_config(d.config_path.read_text().replace('path = "state/audit.db"',
                                                      'path = "state/clean.db"'))
    doc = cli_json(d, "audit", "verify", "--head", head_arg, expect=1)
    assert doc["ok"] is False and "cut from the end" in doc["problem"]


def test_audit_verify_detects_a_changed_digest(daemons, keyset):
    """Contract §10 (every transfer with its digest, append-only): the `delivered` events carry
    the file's sha256 and size into the hash chain, so a digest or size edited in the transfers
    row (which `show` prints and the chain does not cover) fails `audit verify`, naming the
    transfer and the column."""
    d = make_daemon(daemons, keyset)
    name = fresh("digest")
    data = b"a;b;c\n1;2;3\n"
    uuid = send(d, keyset, name, [FLIS, LIS], data)["FileTransferUUID"]
    sha = hashlib.sha256(data).hexdigest()
    shown = cli_json(d, "show", uuid)
    assert shown["sha256"] == sha and shown["size"] == len(data)
    delivered = [e for e in shown["events"] if e["kind"] == "delivered"]
    assert [e["detail"] for e in delivered] == [f"name={name} sha256={sha} size={len(data)}"] * 2
    r = cli(d, "audit", "verify")
    assert r.stdout.startswith("audit log OK: ")
    assert ("file digests OK: the transfers' sha256 and size match the 2 events that carry them"
            in r.stdout), r.stdout
    assert cli_json(d, "audit", "verify")["digests"] == 2

    db = str(d.state / "audit.db")
    forged = "0" * 64
    subprocess.run(["sqlite3", db, f"UPDATE transfers SET sha256 = '{forged}' "
                                   f"WHERE uuid = '{uuid}'"], check=True)
    assert cli_json(d, "show", uuid)["sha256"] == forged  # what a reader would be shown
    first = min(e["seq"] for e in delivered)
    r = cli(d, "audit", "verify", expect=1)
    assert r.stdout == (f"audit log BROKEN at seq {first}: transfers.sha256 of transfer {uuid} "
                        f"is {forged}, but this event (delivered) says {sha}\n"), r.stdout
    doc = cli_json(d, "audit", "verify", expect=1)
    assert doc["ok"] is False and doc["first_bad_seq"] == first and doc["transfer"] == uuid
    assert doc["problem"].startswith("transfers.sha256 of transfer "), doc

    subprocess.run(["sqlite3", db, f"UPDATE transfers SET sha256 = '{sha}', size = 13 "
                                   f"WHERE uuid = '{uuid}'"], check=True)
    doc = cli_json(d, "audit", "verify", expect=1)
    assert doc["transfer"] == uuid and doc["problem"] == (
        f"transfers.size of transfer {uuid} is 13, but this event (delivered) says {len(data)}")
    subprocess.run(["sqlite3", db, f"UPDATE transfers SET size = {len(data)} "
                                   f"WHERE uuid = '{uuid}'"], check=True)
    assert cli_json(d, "audit", "verify")["ok"] is True


def test_explain(daemons, keyset, tmp_path):
    d = make_daemon(daemons, keyset)

    def explain(name: str, body: bytes, expect: int, account: str = KMD):
        path = tmp_path / name
        path.write_bytes(body)
        r = cli(d, "explain", str(path), "--as", account, "--json", expect=expect)
        return json.loads(r.stdout) if r.stdout else None

    ok = explain("a.csv.trigger", trigger_xml("a.csv", 3, KMD, [FLIS, LIS]), 0)
    assert ok["accepted"] is True and ok["data_area"] == "oekonomi"
    assert ok["data_area_name"] == "Økonomi" and ok["authority"] == "urn:oio:cvr-nr:55133018"
    assert ok["routes"] == ["oek-kmd"] and ok["recipients"] == [FLIS, LIS]
    assert ok["error_code"] is None
    text = cli(d, "explain", str(tmp_path / "a.csv.trigger"), "--as", KMD).stdout
    assert text.startswith("ACCEPTED: a.csv from kmd") and "flis, lis" in text
    assert ok["name_checked"] is True and "not compared" not in text
    # A vendor's sample called trigger.xml is resolved; the answer says FileName was not compared.
    sample = explain("trigger.xml", trigger_xml("a.csv", 3, KMD, [FLIS]), 0)
    assert sample["accepted"] is True and sample["name_checked"] is False
    assert sample["recipients"] == [FLIS]
    text = cli(d, "explain", str(tmp_path / "trigger.xml"), "--as", KMD).stdout
    assert "FileName is not compared with the file's own name" in text, text

    cases = [("b.csv.trigger", trigger_xml("b.csv", 3, KMD, ["nobody"]), 2001, "UNKNOWN_RECIPIENT"),
             ("c.csv.trigger", trigger_xml("other.csv", 3, KMD, [FLIS]), 1003,
              "FILENAME_MISMATCH"),
             ("d.csv.trigger", b"<not xml", 1001, "TRIGGER_MALFORMED"),
             ("e.csv.trigger", trigger_xml("e.csv", 3, FLIS, [LIS]), 1007, "SENDER_MISMATCH"),
             ("f.csv.trigger", trigger_xml("f.csv", 3, KMD, [FLIS], inf_ref="Nope_1"), 2003,
              "UNKNOWN_DATA_AREA"),
             # Over max_file_size (10 GiB by default): known from the trigger alone, as fordelerd
             # rejects it at once.
             ("g.csv.trigger", trigger_xml("g.csv", 20_000_000_000, KMD, [FLIS]), 3001,
              "FILE_TOO_LARGE"),
             # A vendor's sample naming a path: what is wrong with the name, not "mismatch".
             ("sample.xml", trigger_xml("OUT/h.csv", 3, KMD, [FLIS]), 1003, "FILENAME_MISMATCH")]
    for name, body, code, code_name in cases:
        doc = explain(name, body, 1)
        assert doc["accepted"] is False and doc["error_code"] == code, doc
        assert doc["error_name"] == code_name and doc["error_description"]
    text = cli(d, "explain", str(tmp_path / "b.csv.trigger"), "--as", KMD, expect=1).stdout
    assert text.startswith("REJECTED: 2001 UNKNOWN_RECIPIENT")
    text = cli(d, "explain", str(tmp_path / "sample.xml"), "--as", KMD, expect=1).stdout
    assert "is not a valid name: it holds '/'" in text, text
    assert "no configured account" in cli(d, "explain", str(tmp_path / "a.csv.trigger"), "--as",
                                          "ghost", expect=2).stderr
    err = cli(d, "explain", str(tmp_path / "none"), "--as", KMD, expect=2).stderr
    assert "cannot read" in err and err.rstrip().endswith("No such file or directory"), err
    err = cli(d, "explain", str(tmp_path), "--as", KMD, expect=2).stderr  # a folder
    assert "cannot read" in err and err.rstrip().endswith("Is a directory"), err


@pytest.fixture
def reachable_daemons(keyset):
    """Root's daemons in a folder under /tmp that every user may traverse, with a copy of the
    CLI there: pytest's own temp folders are private to root, and a pytest starting beside this
    one (ctest -j) makes them private again."""
    base = Path(tempfile.mkdtemp(prefix="fordeler-e2e-", dir="/tmp"))
    try:
        base.chmod(0o755)
        shutil.copy2(fordeler_path(), base / "fordeler")
        factory = DaemonFactory(base / "daemons", keyset)
        yield factory
        factory.finish()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_a_refused_caller_gets_the_refusal(reachable_daemons, keyset):
    """Someone outside root and fordelerd's group who can reach the socket (an operator opened
    it up) is told why, even when it sends its request after fordelerd has made up its mind."""
    nobody = pwd.getpwnam("nobody")
    d = make_daemon(reachable_daemons, keyset)
    uuid = send(d, keyset, fresh("refused"), [FLIS])["FileTransferUUID"]
    sock = d.state / "control.sock"
    os.chmod(sock, 0o666)
    base = d.workdir.parent.parent
    # A configuration the unprivileged caller can read: only where the state is.
    config = base / "nobody.toml"
    config.write_text(f'[storage]\nroot = "{d.state}"\n\n[database]\npath = "{d.state}/audit.db"\n')
    config.chmod(0o644)
    as_nobody = dict(user=nobody.pw_uid, group=nobody.pw_gid, extra_groups=[])
    slow_client = (
        "import socket, sys, time\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "s.connect(sys.argv[1])\n"
        "time.sleep(0.3)\n"  # fordelerd has refused by now
        "s.sendall(sys.argv[2].encode() + b'\\n')\n"
        "print(s.makefile().readline(), end='')\n")
    request = json.dumps({"command": "retry", "uuid": uuid})
    r = subprocess.run(["/usr/bin/python3", "-c", slow_client, str(sock), request],
                       capture_output=True, text=True, timeout=30, **as_nobody)
    assert r.returncode == 0, r.stderr
    reply = json.loads(r.stdout)
    assert reply["ok"] is False and reply["error"] == "refused", reply
    assert "only root and fordelerd's group" in reply["message"]
    for _ in range(3):
        r = subprocess.run([str(base / "fordeler"), "--config", str(config), "retry", uuid],
                           capture_output=True, text=True, timeout=30, **as_nobody)
        assert r.returncode != 0 and "only root and fordelerd's group" in r.stderr, r
        assert "Broken pipe" not in r.stderr
    assert "event=control_refused" in d.stderr_since_start()


def control_request(d, line: bytes) -> dict:
    """Sends one raw request line to d's control socket (reached through /proc/self/fd: the
    test's path may be longer than a socket address) and returns the reply."""
    folder = os.open(d.state, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(f"/proc/self/fd/{folder}/control.sock")
            s.sendall(line + b"\n")
            return json.loads(s.makefile("rb").readline())
    finally:
        os.close(folder)


def test_a_malformed_control_request_is_refused_and_the_daemon_serves_on(daemons, keyset):
    """A request line that is not JSON, not an object, or whose fields are not strings gets
    `bad_request` with the reason; fordelerd goes on serving (a number where the command
    belongs used to end the daemon on an uncaught JSON type error)."""
    d = make_daemon(daemons, keyset)
    uuid = send(d, keyset, fresh("control"), [FLIS])["FileTransferUUID"]
    cases = {
        json.dumps({"command": 5, "uuid": uuid}): '"command" is not a string',
        json.dumps({"command": "retry", "uuid": [uuid]}): '"uuid" is not a string',
        json.dumps({"command": "redeliver", "uuid": uuid, "recipient": {"id": FLIS}}):
            '"recipient" is not a string',
        json.dumps({"command": None, "uuid": uuid}): '"command" is not a string',
        json.dumps(["retry", uuid]): "not a JSON object",
        "retry " + uuid: "not a JSON object",
    }
    for line, why in cases.items():
        reply = control_request(d, line.encode())
        assert reply == {"ok": False, "error": "bad_request", "message": why}, (line, reply)
        assert d.running(), f"fordelerd ended on {line!r}"
    # Members the daemon does not know are ignored; a good request is answered as ever.
    reply = control_request(d, json.dumps({"command": "retry", "uuid": uuid, "by": 7}).encode())
    assert reply["ok"] is False and reply["error"] == "refused", reply
    assert "nothing to retry" in reply["message"], reply
    r = cli(d, "retry", uuid, expect=None)
    assert r.returncode != 0 and "nothing to retry" in r.stderr, r
    assert d.running()


def test_arguments_that_are_not_utf8_get_an_answer_not_an_abort(daemons, keyset, tmp_path):
    """JSON cannot hold bytes that are not UTF-8: a configuration file named with one, and a
    recipient typed in another encoding, are shown or sent with U+FFFD in their place (both used
    to end `fordeler` on an uncaught JSON error, status 134)."""
    bad_name = tmp_path / os.fsdecode(b"conf\xff.toml")
    bad_name.write_text("nonsense = \n")
    r = run([fordeler_path(), "--config", str(bad_name), "check-config", "--json"], timeout=30)
    assert r.returncode == 2, r
    doc = json.loads(r.stdout)
    assert doc["ok"] is False and doc["config"].endswith("conf\ufffd.toml"), doc
    assert doc["errors"][0]["line"] == 1, doc

    d = make_daemon(daemons, keyset)
    uuid = send(d, keyset, fresh("not-utf8"), [FLIS])["FileTransferUUID"]
    r = subprocess.run([fordeler_path(), "--config", str(d.config_path), "recall", uuid,
                        "--recipient", os.fsdecode(b"fl\xffis")],
                       capture_output=True, timeout=60)
    assert r.returncode in (1, 2), r
    assert b"fordeler recall:" in r.stderr and b"terminate" not in r.stderr, r
    assert (d.in_dir(FLIS) / json.loads(cli(d, "show", uuid, "--json").stdout)["deliveries"][0]
            ["name"]).exists(), "nothing was recalled"
    assert d.running()


def test_check_config_and_fordelerd_refuse_a_host_key_the_server_cannot_use(tmp_path):
    key = tmp_path / "host_ed25519"
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    cases = {
        "public key": (f'host_keys = ["{key}.pub"]', "is a public key"),
        "no host key": ("host_keys = []", "fordelerd needs at least one host key"),
        "not a key": (f'host_keys = ["{tmp_path / "junk"}"]', "is not a private key"),
        # Refused by fordelerd whoever it runs as, so check-config says so too.
        "readable by all": (f'host_keys = ["{tmp_path / "open_ed25519"}"]', "gives others access"),
    }
    (tmp_path / "junk").write_text("junk\n")
    shutil.copy(key, tmp_path / "open_ed25519")
    (tmp_path / "open_ed25519").chmod(0o644)
    for name, (line, words) in cases.items():
        path = tmp_path / "fordeler.toml"
        path.write_text(f'[server]\nlisten = ["127.0.0.1:0"]\n{line}\n\n'
                        f'[storage]\nroot = "{tmp_path}/state"\n')
        r = run([fordeler_path(), "--config", str(path), "check-config"])
        assert r.returncode == 2, (name, r)
        assert f"{path}:3: [server] host_keys: " in r.stderr and words in r.stderr, (name, r.stderr)
        # fordelerd refuses it as a configuration error (exit 2, which systemd does not restart)
        # before it starts anything.
        r = run([fordelerd_path(), "--config", str(path)], timeout=30)
        assert r.returncode == 2, (name, r)
        assert words in r.stderr and "event=recovery" not in r.stderr, (name, r.stderr)
    path.write_text(f'[storage]\nroot = "{tmp_path}/state"\n')
    r = run([fordeler_path(), "--config", str(path), "check-config", "--json"])
    assert r.returncode == 2
    assert "at least one host key" in json.loads(r.stdout)["errors"][0]["message"]


def test_check_config_warns_of_an_include_that_matches_nothing(tmp_path):
    key = tmp_path / "host_ed25519"
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    path = tmp_path / "fordeler.toml"
    path.write_text(f'include = ["conf.d/*.tml", "nowhere/*.toml"]\n\n[server]\n'
                    f'host_keys = ["{key}"]\n')
    (tmp_path / "conf.d").mkdir()
    r = run([fordeler_path(), "--config", str(path), "check-config"])
    assert r.returncode == 0, r
    assert f"{path}:1: include: {tmp_path}/conf.d/*.tml matches no file: warning" in r.stderr
    assert (f"{path}:1: include: {tmp_path}/nowhere/*.toml matches no file (there is no folder "
            f"{tmp_path}/nowhere): warning") in r.stderr
    doc = json.loads(run([fordeler_path(), "--config", str(path), "check-config",
                          "--json"]).stdout)
    assert doc["ok"] is True and len(doc["warnings"]) == 2


CONFIG_ERRORS = {
    "unknown_key": ("[server]\nlisten = [\"127.0.0.1:0\"]\nmax_sesions = 3\n", 3, "unknown key"),
    "duplicate_account": ("[[account]]\nid = \"a\"\n[[account]]\nid = \"a\"\n", 4, "first at"),
    "unknown_route_account": ("[[account]]\nid = \"a\"\n[[data_area]]\nid = \"x\"\nname = \"X\"\n"
                              "deliver_service = \"X_1\"\nfetch_service = \"Y_1\"\n"
                              "[[route]]\nid = \"r\"\ndata_area = \"x\"\nsender = \"ghost\"\n"
                              "authorities = [\"*\"]\nrecipients = [\"a\"]\n", 11, "ghost"),
    "unknown_data_area": ("[[account]]\nid = \"a\"\n[[route]]\nid = \"r\"\n"
                          "data_area = \"nope\"\nsender = \"a\"\nauthorities = [\"*\"]\n"
                          "recipients = [\"a\"]\n", 5, "nope"),
    "bad_duration": ("[delivery]\nretention = \"forever\"\n", 2, "retention"),
    "missing_keys_file": ("[[account]]\nid = \"a\"\nauthorized_keys = \"keys/none.pub\"\n", 3,
                          "none.pub"),
    "toml_syntax": ("[server\nlisten = 1\n", 1, ""),
}


@pytest.mark.parametrize("kind", sorted(CONFIG_ERRORS))
def test_check_config_reports_each_kind_of_error(tmp_path, kind):
    text, line, words = CONFIG_ERRORS[kind]
    path = tmp_path / "bad.toml"
    path.write_text(text)
    r = run([fordeler_path(), "--config", str(path), "check-config"])
    assert r.returncode == 2, r
    assert f"{path}:{line}: " in r.stderr and words in r.stderr, r.stderr
    r = run([fordeler_path(), "check-config", "--config", str(path), "--json"])
    assert r.returncode == 2
    doc = json.loads(r.stdout)
    # (check-config also reports that these fragments name no host key)
    assert doc["ok"] is False and doc["accounts"] is None
    assert any(e["line"] == line and words in e["message"] for e in doc["errors"]), doc
    # Every other command refuses a bad configuration the same way.
    r = run([fordeler_path(), "--config", str(path), "status"])
    assert r.returncode == 2 and f"{path}:{line}: " in r.stderr


def test_missing_database_is_named(tmp_path):
    path = tmp_path / "fordeler.toml"
    path.write_text(f'[database]\npath = "{tmp_path}/nope/audit.db"\n')
    for args in (["status"], ["transfers"], ["show", str(uuidlib.uuid4())], ["audit", "verify"],
                 ["quarantine", "list"], ["accounts"]):
        r = run([fordeler_path(), "--config", str(path), *args])
        assert r.returncode == 2, (args, r)
        assert f"{tmp_path}/nope/audit.db" in r.stderr and "does not exist" in r.stderr, r.stderr
    r = run([fordeler_path(), "--config", str(path), "routes", "--json"])
    assert r.returncode == 0 and json.loads(r.stdout) == []
