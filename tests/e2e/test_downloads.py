"""Who read a transfer's files (contract §10: "who read it is part of the record"): downloads of a
delivered data file and its metadata by the recipients (paramiko, OpenSSH sftp) and of the receipt
by the sender appear as `downloaded` events of the transfer in `fordeler show`, with the account
that read them; a file no transfer is known for is still recorded, without one. The daemon's log
line of a download names its transfer too (`transfer=-` for none).
"""

from __future__ import annotations

import io
import json
import re
import uuid as uuidlib
from pathlib import Path

from harness import (AccountSpec, cli_json, data_areas_toml, db_rows, fordeler_path, run,
                     ssh_base_options, trigger_xml, verify_event_chain, wait_receipt, wait_until)

KMD, FLIS, LIS = "kmd", "flis", "lis"
KEY_NAMES = ["kmd_ed25519", "flis_ed25519", "lis_ed25519"]


def make_daemon(daemons, keyset):
    accounts = [AccountSpec(KMD, [keyset.key("kmd_ed25519")],
                            extra='authority = "urn:oio:cvr-nr:55133018"'),
                AccountSpec(FLIS, [keyset.key("flis_ed25519")]),
                AccountSpec(LIS, [keyset.key("lis_ed25519")])]
    route = (f'[[route]]\nid = "oek-kmd"\ndata_area = "oekonomi"\nsender = "{KMD}"\n'
             f'authorities = ["*"]\nrecipients = {json.dumps([FLIS, LIS])}\n')
    return daemons.create(accounts, extra=route + "\n" + data_areas_toml())


def send(d, keyset, name: str, data: bytes) -> str:
    with d.sftp(KMD, keyset.key("kmd_ed25519")) as s:
        s.putfo(io.BytesIO(data), f"OUT/{name}")
        s.putfo(io.BytesIO(trigger_xml(name, len(data), KMD, [FLIS, LIS],
                                       inf_ref="FLISOekonomiAflever_1")), f"OUT/{name}.trigger")
    return wait_receipt(d, KMD, name)["FileTransferUUID"]


def downloads(d, uuid: str) -> set[tuple[str, str]]:
    return {(e["account"], e["detail"]) for e in cli_json(d, "show", uuid)["events"]
            if e["kind"] == "downloaded"}


def test_show_lists_who_downloaded_the_data_its_metadata_and_the_receipt(daemons, keyset,
                                                                         tmp_path: Path):
    d = make_daemon(daemons, keyset)
    name = f"dl-{uuidlib.uuid4().hex[:8]}.csv"
    data = b"a;b;c\n1;2;3\n"
    uuid = send(d, keyset, name, data)

    # FLIS (paramiko) reads the metadata, then the data, and removes the data at once: the
    # download and the pickup race.
    with d.sftp(FLIS, keyset.key("flis_ed25519")) as s:
        with s.open(f"IN/{name}.metadata") as f:
            assert uuid.encode() in f.read()
        with s.open(f"IN/{name}") as f:
            assert f.read() == data
        s.remove(f"IN/{name}")
    # The local LIS fetches with OpenSSH sftp; the sender reads its receipt.
    batch = tmp_path / "batch"
    batch.write_text(f"get IN/{name} {tmp_path / 'lis.csv'}\n"
                     f"get IN/{name}.metadata {tmp_path / 'lis.metadata'}\n")
    r = run(["sftp", "-b", str(batch), "-P", str(d.port), *ssh_base_options(
        keyset.key("lis_ed25519")), f"{LIS}@{d.host}"], timeout=30)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "lis.csv").read_bytes() == data
    with d.sftp(KMD, keyset.key("kmd_ed25519")) as s:
        with s.open(f"IN/{name}.sftpreceipt") as f:
            assert uuid.encode() in f.read()

    want = {(FLIS, f"name={name}"), (FLIS, f"name={name}.metadata"), (LIS, f"name={name}"),
            (LIS, f"name={name}.metadata"), (KMD, f"name={name}.sftpreceipt")}
    # The lookups and the audit writes happen after the clients are answered: poll, bounded.
    wait_until(lambda: downloads(d, uuid) >= want, 10, "the downloads recorded with the transfer")
    states = lambda: {x["recipient"]: x["state"]  # noqa: E731
                      for x in cli_json(d, "show", uuid)["deliveries"]}
    wait_until(lambda: states()[FLIS] == "picked_up", 10, "flis's pickup recorded")
    assert downloads(d, uuid) == want
    assert states()[LIS] == "delivered"  # reading is no pickup
    shown = run([fordeler_path(), "--config", str(d.config_path), "show", uuid]).stdout
    assert f"downloaded  {FLIS}  name={name}\n" in shown, shown
    assert f"downloaded  {KMD}  name={name}.sftpreceipt\n" in shown, shown
    # The daemon's log line of each download names the transfer, as every line of a transfer
    # does (operators grep the journal for transfer=<uuid>): once, with the account that read it.
    for account, detail in want:
        line = (f"event=downloaded transfer={uuid} account={account} folder=IN "
                f'name="{detail.removeprefix("name=")}"')
        wait_until(lambda: line in d.stderr_text(), 10, f"the log line {line!r}")
        assert d.stderr_text().count(line + "\n") == 1, d.stderr_text()[-3000:]
    assert not re.search(r"event=downloaded (?!transfer=)", d.stderr_text()), d.stderr_text()

    # A file put in IN by other means belongs to no transfer: recorded all the same, without one.
    stray = d.in_dir(LIS) / "stray.csv"
    stray.write_bytes(b"x\n")
    d.own(stray)
    with d.sftp(LIS, keyset.key("lis_ed25519")) as s:
        with s.open("IN/stray.csv") as f:
            assert f.read() == b"x\n"
    db = d.state / "audit.db"
    wait_until(lambda: db_rows(db, "SELECT transfer_uuid FROM events WHERE kind = 'downloaded' "
                               "AND account = ? AND detail = 'name=stray.csv'", (LIS,)), 10,
               "the stray download recorded")
    rows = db_rows(db, "SELECT transfer_uuid FROM events WHERE kind = 'downloaded' "
                   "AND detail = 'name=stray.csv'")
    assert [r["transfer_uuid"] for r in rows] == [""]
    stray_line = f'event=downloaded transfer=- account={LIS} folder=IN name="stray.csv"\n'
    wait_until(lambda: stray_line in d.stderr_text(), 10, "the stray download's log line")

    verify = run([fordeler_path(), "--config", str(d.config_path), "audit", "verify"])
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert verify_event_chain(db) > 0
