"""Several SFTP sessions of one account at once (contract §2): clients pool connections, retry
while an old session still lives, and upload in parallel. What one session does to a file in
/OUT must never let another's handle reach the delivered copy, nor leave delivery trusting a
digest that no longer describes the file it takes.

One daemon serves the module; every test uses its own file names.
"""

from __future__ import annotations

import io
import os
import threading
import uuid as uuidlib
from pathlib import Path

import paramiko
import pytest

from harness import (AccountSpec, data_areas_toml, db_rows, metadata_of, sha256_bytes,
                     trigger_xml, wait_receipt, wait_transfer, wait_until)

KMD = "kmd-oekonomi"
FLIS = "flis"
KEY_NAMES = ["kmd_ed25519", "flis_ed25519"]
KEYS = {KMD: "kmd_ed25519", FLIS: "flis_ed25519"}
DELIVER = "FLISOekonomiAflever_1"


@pytest.fixture(scope="module")
def d(module_daemons, keyset):
    accounts = [AccountSpec(KMD, [keyset.key(KEYS[KMD])],
                            extra='authority = "urn:oio:cvr-nr:55133018"\nit_system = "kmd"'),
                AccountSpec(FLIS, [keyset.key(KEYS[FLIS])], extra='it_system = "FLIS"')]
    extra = ('[delivery]\ntrigger_grace = "2s"\n' + f"""
[[route]]
id = "oekonomi-kmd"
data_area = "oekonomi"
sender = "{KMD}"
authorities = ["*"]
recipients = ["{FLIS}"]

[[route]]
id = "oekonomi-flis"
data_area = "oekonomi"
sender = "{FLIS}"
authorities = ["*"]
recipients = ["{KMD}"]
""" + "\n" + data_areas_toml())
    return module_daemons.create(accounts, extra=extra)


def key(keyset, account):
    return keyset.key(KEYS[account])


def fresh(tag: str) -> str:
    return f"{tag}-{uuidlib.uuid4().hex[:10]}.csv"


def db(d) -> Path:
    return d.state / "audit.db"


def deliver_and_check(d, s, name: str, expected: bytes) -> None:
    """Sends the trigger for OUT/<name> (no Sha256 in it) and checks that flis received exactly
    `expected` with metadata whose Sha256 is that of `expected`, as the audit log says."""
    s.putfo(io.BytesIO(trigger_xml(name, len(expected), KMD, [FLIS], inf_ref=DELIVER)),
            f"OUT/{name}.trigger")
    r = wait_receipt(d, KMD, name)
    assert r["Receipt"]["Message"] == "SUCCESS", r
    got = (d.in_dir(FLIS) / name).read_bytes()
    assert got == expected
    sha = sha256_bytes(expected)
    m = metadata_of(d.in_dir(FLIS) / (name + ".metadata"))
    assert m["FileDescriptor"]["Sha256"] == sha, "the metadata names another file's digest"
    row = wait_transfer(db(d), r["FileTransferUUID"])
    assert row["sha256"] == sha, dict(row)



@pytest.mark.parametrize("how", ["setstat", "failed_write", "cut_session"])
def test_changed_after_close_is_hashed_again(d, keyset, how):
    """A data file uploaded and closed, then changed by another session without a complete
    upload — resized by SETSTAT (truncated and grown back to its size), rewritten through a
    handle whose later write failed, or rewritten by a session cut off before it closed — keeps
    its inode and size: delivery must hash what it takes, not reuse the digest of the first
    close (which would put a wrong Sha256 in the metadata, and let a trigger's Sha256 of the old
    bytes pass). A rewrite that did not finish leaves the file marked unfinished (it would get
    1004: test_delivery.py); a short rewrite through a handle that closes normally finishes
    it, and gives no digest either, since it did not write the whole file."""
    name = fresh(f"changed-{how}")
    data = os.urandom(5000)
    with d.sftp(KMD, key(keyset, KMD)) as a:
        a.putfo(io.BytesIO(data), f"OUT/{name}")
        if how == "setstat":
            with d.sftp(KMD, key(keyset, KMD)) as b:
                b.truncate(f"OUT/{name}", 0)
                b.truncate(f"OUT/{name}", len(data))
            expected = bytes(len(data))
        else:
            t = d.transport(KMD, key(keyset, KMD))
            b = paramiko.SFTPClient.from_transport(t)
            f = b.open(f"OUT/{name}", "r+")
            f.set_pipelined(False)
            f.write(b"X" * 100)
            expected = b"X" * 100 + data[100:]
            if how == "failed_write":
                # A write far past max_file_size is refused: the upload is incomplete.
                with pytest.raises(IOError):
                    f.seek(1 << 60)
                    f.write(b"y")
                f.close()
                b.close()
                t.close()
            else:
                t.sock.close()  # no CLOSE, no channel close: the session is cut off
                t.close()
            assert (d.out_dir(KMD) / name).read_bytes() == expected
            assert a.stat(f"OUT/{name}").st_mode & 0o7777 == 0o1640, "not marked unfinished"
            with a.open(f"OUT/{name}", "r+") as f:
                f.seek(4000)
                f.write(b"Z" * 10)
            expected = expected[:4000] + b"Z" * 10 + expected[4010:]
            assert a.stat(f"OUT/{name}").st_mode & 0o7777 == 0o640, "still marked unfinished"
        deliver_and_check(d, a, name, expected)


def test_file_open_in_another_session_is_not_renamed(d, keyset):
    """A handle follows a name: a file held open (even for reading) by one session cannot be
    renamed by another, else the handle would reach the file once delivery took it under its new
    name. Once the handle is closed, the rename goes through and the file is delivered intact."""
    name = fresh("held")
    data = os.urandom(3000)
    with d.sftp(KMD, key(keyset, KMD)) as a, d.sftp(KMD, key(keyset, KMD)) as b:
        a.putfo(io.BytesIO(data), f"OUT/{name}.part")
        for mode in ("rb", "r+"):
            f = a.open(f"OUT/{name}.part", mode)
            with pytest.raises(IOError):
                b.rename(f"OUT/{name}.part", f"OUT/{name}")
            with pytest.raises(IOError):
                b.posix_rename(f"OUT/{name}.part", f"OUT/{name}")
            f.close()
        assert sorted(x for x in a.listdir("OUT") if x.startswith(name)) == [name + ".part"]
        b.rename(f"OUT/{name}.part", f"OUT/{name}")
        deliver_and_check(d, b, name, data)
    assert [x for x in os.listdir(d.out_dir(KMD)) if x.startswith(name)] == []


def test_trigger_retried_while_the_old_session_lives(d, keyset):
    """A client times out uploading the trigger, reconnects and sends data and trigger again
    while its old session still holds the trigger open; then the old session is cut off. Its
    half-written upload must not remove the trigger the new session completed: exactly one
    transfer, delivered, with one receipt."""
    name = fresh("retry")
    data = os.urandom(2000)
    trig = trigger_xml(name, len(data), KMD, [FLIS], inf_ref=DELIVER)
    t1 = d.transport(KMD, key(keyset, KMD))
    s1 = paramiko.SFTPClient.from_transport(t1)
    f = s1.open(f"OUT/{name}.trigger", "w")
    f.set_pipelined(False)
    f.write(trig[:20])
    with d.sftp(KMD, key(keyset, KMD)) as s2:
        s2.putfo(io.BytesIO(data), f"OUT/{name}")
        s2.putfo(io.BytesIO(trig), f"OUT/{name}.trigger")
        t1.sock.close()  # the old session ends without closing its handle
        t1.close()
        r = wait_receipt(d, KMD, name)
    assert r["Receipt"]["Message"] == "SUCCESS", r
    assert (d.in_dir(FLIS) / name).read_bytes() == data
    rows = db_rows(db(d), "SELECT uuid FROM transfers WHERE sender = ? AND name = ?", (KMD, name))
    assert [x["uuid"] for x in rows] == [r["FileTransferUUID"]]


def wait_receipt_uuid(d, name: str) -> str:
    """The uuid of flis's transfer of <name>, once recorded (its receipt may have either name)."""
    query = "SELECT uuid FROM transfers WHERE sender = ? AND name = ?"
    wait_until(lambda: db_rows(db(d), query, (FLIS, name)), 20, f"flis's transfer of {name}")
    return db_rows(db(d), query, (FLIS, name))[0]["uuid"]


def test_a_receipt_and_a_delivery_of_its_name_at_once(d, keyset):
    """flis also sends (to kmd), so its receipt for <y> is IN/<y>.sftpreceipt, while kmd delivers
    a data file of that very name to flis: both triggers go up at the same instant, several
    times. Whichever is placed first keeps the name and the other takes its <name>.<uuid> form;
    the receipt never replaces the delivered file, whose delivery is then still waiting to be
    fetched (contract §5). Before the fix, most such rounds lost kmd's file."""
    for _ in range(6):
        y = fresh("both")
        delivered = y + ".sftpreceipt"
        kmd_data, flis_data = os.urandom(1000), os.urandom(500)
        start = threading.Barrier(2, timeout=10)

        def send(s, name, trigger):
            start.wait()
            s.putfo(io.BytesIO(trigger), f"OUT/{name}.trigger")

        with d.sftp(KMD, key(keyset, KMD)) as k, d.sftp(FLIS, key(keyset, FLIS)) as f:
            k.putfo(io.BytesIO(kmd_data), f"OUT/{delivered}")
            f.putfo(io.BytesIO(flis_data), f"OUT/{y}")
            senders = [threading.Thread(target=send, args=(k, delivered, trigger_xml(
                           delivered, len(kmd_data), KMD, [FLIS], inf_ref=DELIVER))),
                       threading.Thread(target=send, args=(f, y, trigger_xml(
                           y, len(flis_data), FLIS, [KMD], inf_ref=DELIVER)))]
            for t in senders:
                t.start()
            for t in senders:
                t.join(timeout=30)
        kmd_uuid = wait_receipt(d, KMD, delivered)["FileTransferUUID"]
        assert (d.in_dir(KMD) / y).read_bytes() == flis_data
        flis_uuid = wait_receipt_uuid(d, y)
        wait_transfer(db(d), flis_uuid)
        [row] = db_rows(db(d), "SELECT name_in_in, state FROM deliveries WHERE transfer_uuid = ?",
                        (kmd_uuid,))
        assert row["state"] == "delivered", dict(row)  # not taken for a pickup
        in_flis = d.in_dir(FLIS)
        assert (in_flis / row["name_in_in"]).read_bytes() == kmd_data
        assert metadata_of(in_flis / (row["name_in_in"] + ".metadata"))["FileDescriptor"][
            "FileName"] == row["name_in_in"]
        receipts = [n for n in os.listdir(in_flis)
                    if n.startswith(y) and n.endswith(".sftpreceipt") and n != row["name_in_in"]]
        assert len(receipts) == 1, sorted(os.listdir(in_flis))
        assert flis_uuid in (in_flis / receipts[0]).read_text()
