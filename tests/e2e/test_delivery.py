"""Delivery end to end (contract §2–§7): a sender's data file plus trigger reach every recipient's
/IN with metadata, the sender gets its receipt, rejections are quarantined with the right error
code, and everything is in the audit database. Driven by paramiko and OpenSSH `sftp -b`.

One daemon serves the module (trigger_grace = 1s so that DATA_FILE_MISSING is quick); every test
uses its own file names, so the tests do not see each other's transfers. FILE_TOO_LARGE needs its
own daemon (max_file_size = 10B).
"""

from __future__ import annotations

import io
import os
import re
import threading
import time
import uuid as uuidlib
from pathlib import Path

import paramiko
import pytest

from harness import (UUID_RE, AccountSpec, as_list, cli_json, data_areas_toml, db_rows,
                     metadata_of, parse_xml, receipt_of, run, sha256_bytes, ssh_base_options,
                     trigger_xml, verify_event_chain, wait_receipt, wait_transfer, wait_until)

KMD = "kmd-oekonomi"
KMD_AUTHORITY = "urn:oio:cvr-nr:55133018"
OTHER = "sd-loen"  # another sender: Sender of a SENDER_MISMATCH trigger
FLIS = "flis"
LISX = "lis-x"
LISX_AUTHORITY = "urn:oio:cvr-nr:29189803"
LISY = "lis-y"  # an account no route reaches
N_CONCURRENT = 20
CONCURRENT = [f"vendor{i:02d}" for i in range(N_CONCURRENT)]
DELIVER = "FLISOekonomiAflever_1"
FETCH = "FLISOekonomiHent_1"
RECIPIENTS = [FLIS, LISX]

KEY_NAMES = (["kmd_ed25519", "sd_ed25519", "flis_ed25519", "lisx_ed25519", "lisy_ed25519"]
             + [f"v{i:02d}_ed25519" for i in range(N_CONCURRENT)])

SENDER_KEYS = {KMD: "kmd_ed25519", OTHER: "sd_ed25519", FLIS: "flis_ed25519",
               LISX: "lisx_ed25519", LISY: "lisy_ed25519"}
SENDER_KEYS.update({v: f"v{i:02d}_ed25519" for i, v in enumerate(CONCURRENT)})


def accounts(keyset) -> list[AccountSpec]:
    def acc(id_, extra):
        return AccountSpec(id_, [keyset.key(SENDER_KEYS[id_])], extra=extra)

    out = [
        acc(KMD, f'authority = "{KMD_AUTHORITY}"\nit_system = "kmd-oekonomi"'),
        acc(OTHER, 'authority = "urn:oio:cvr-nr:11111111"\nit_system = "sd-loen"'),
        acc(FLIS, 'it_system = "FLIS"'),
        acc(LISX, f'authority = "{LISX_AUTHORITY}"\nit_system = "lis-x"'),
        acc(LISY, f'authority = "{LISX_AUTHORITY}"\nit_system = "lis-y"'),
    ]
    out += [acc(v, f'authority = "{vendor_authority(v)}"\nit_system = "{v}"') for v in CONCURRENT]
    return out


def vendor_authority(v: str) -> str:
    return f"urn:oio:cvr-nr:{40000000 + int(v[-2:])}"


def routes() -> str:
    text = f"""
[[route]]
id = "oekonomi-kmd"
data_area = "oekonomi"
sender = "{KMD}"
authorities = ["*"]
recipients = ["{FLIS}", "{LISX}"]

# A second data area from the same sender to FLIS: without InfRef, Recipients = flis alone fits
# both (AMBIGUOUS_DATA_AREA); flis + lis-x fits only oekonomi.
[[route]]
id = "personale-kmd"
data_area = "personale"
sender = "{KMD}"
authorities = ["*"]
recipients = ["{FLIS}"]

[[route]]
id = "oekonomi-sd"
data_area = "oekonomi"
sender = "{OTHER}"
authorities = ["*"]
recipients = ["{FLIS}"]
"""
    for v in CONCURRENT:
        text += f"""
[[route]]
id = "oekonomi-{v}"
data_area = "oekonomi"
sender = "{v}"
authorities = ["*"]
recipients = ["{FLIS}"]
"""
    return text


@pytest.fixture(scope="module", params=["root", "nobody"])
def d(request, keyset):
    """The module's daemon, once as root and once as `nobody` (as systemd runs it, without
    capabilities): every test here runs against both."""
    factory = request.getfixturevalue(
        "module_daemons" if request.param == "root" else "module_unprivileged_daemons")
    extra = '[delivery]\ntrigger_grace = "1s"\n' + routes() + "\n" + data_areas_toml()
    return factory.create(accounts(keyset), extra=extra)


def key(keyset, account: str) -> Path:
    return keyset.key(SENDER_KEYS[account])


def fresh(tag: str, ext: str = ".csv") -> str:
    return f"{tag}-{uuidlib.uuid4().hex[:10]}{ext}"


def put_bytes(sftp: paramiko.SFTPClient, data: bytes, path: str) -> None:
    """paramiko's putfo: write, close, then stat to confirm the size (as paramiko's put does)."""
    attrs = sftp.putfo(io.BytesIO(data), path)
    assert attrs.st_size == len(data)


def send(d, keyset, sender: str, name: str, data: bytes | None, trigger: bytes) -> None:
    with d.sftp(sender, key(keyset, sender)) as s:
        if data is not None:
            put_bytes(s, data, f"OUT/{name}")
        put_bytes(s, trigger, f"OUT/{name}.trigger")


def db(d) -> Path:
    return d.state / "audit.db"


def deliveries(d, uuid: str) -> dict[str, dict]:
    return {r["recipient"]: dict(r) for r in
            db_rows(db(d), "SELECT * FROM deliveries WHERE transfer_uuid = ?", (uuid,))}


def check_out_empty(d, account: str) -> None:
    wait_until(lambda: os.listdir(d.out_dir(account)) == [], 10,
               f"{account}'s OUT to be empty (now {os.listdir(d.out_dir(account))})")


def check_metadata(d, recipient: str, placed: str, *, uuid: str, size: int, sha: str,
                   sender: str = KMD, senders_file_id: str | None = None,
                   fetch: str = FETCH, authority: str = KMD_AUTHORITY) -> dict:
    path = d.in_dir(recipient) / (placed + ".metadata")
    m = metadata_of(path)
    assert m["@xmlns:ns2"] == "http://serviceplatformen.dk/xml/wsdl/soap11/SFTP/1/types"
    assert m["FileTransferUUID"] == uuid
    fd = m["FileDescriptor"]
    assert fd["FileName"] == placed
    assert fd["SizeInBytes"] == str(size)
    assert fd["Sender"] == sender
    if senders_file_id is not None:
        assert fd["SendersFileId"] == senders_file_id
    assert fd["Recipients"] == recipient, f"Recipients must be this recipient alone: {fd}"
    assert fd["Sha256"] == sha
    info = m["FileContentDescriptor"]["SFTPDynamicRoutingInfo"]
    assert info["InfRef"] == fetch
    assert info["SenderAuthority"] == authority
    return m


def check_delivered(d, name: str, data: bytes, receipt: dict, *, recipients=RECIPIENTS,
                    sender: str = KMD, senders_file_id: str | None = None,
                    authority: str = KMD_AUTHORITY) -> str:
    """The transfer of `receipt` delivered `data` as IN/<name> to each recipient, exactly once."""
    uuid = receipt["FileTransferUUID"]
    assert UUID_RE.fullmatch(uuid), f"FileTransferUUID {uuid!r} is no lowercase UUID"
    assert receipt["Receipt"]["Message"] == "SUCCESS", receipt
    assert "ErrorMessage" not in receipt, receipt
    if senders_file_id is not None:
        assert receipt["SendersFileId"] == senders_file_id
    sha = sha256_bytes(data)
    for r in recipients:
        placed = d.in_dir(r) / name
        assert placed.exists(), f"{r} has no IN/{name}: {sorted(os.listdir(d.in_dir(r)))}"
        assert sha256_bytes(placed.read_bytes()) == sha, f"{r}'s IN/{name} differs from what was sent"
        check_metadata(d, r, name, uuid=uuid, size=len(data), sha=sha, sender=sender,
                       senders_file_id=senders_file_id, authority=authority)
        copies = [n for n in os.listdir(d.in_dir(r)) if not n.endswith(".metadata")
                  and sha256_bytes((d.in_dir(r) / n).read_bytes()) == sha]
        assert copies == [name], f"{r} holds the data {len(copies)} times: {copies}"
    row = wait_transfer(db(d), uuid)
    assert row["state"] == "delivered" and row["error_code"] is None, dict(row)
    assert row["sha256"] == sha and row["size"] == len(data)
    dl = deliveries(d, uuid)
    assert sorted(dl) == sorted(recipients), dl
    for r, row in dl.items():
        assert row["state"] == "delivered" and row["name_in_in"] == name, row
    return uuid


# ------------------------------------------------------------------------------------------
# Accepted transfers


def sftp_batch(d, keyset, user: str, commands: list[str], tmp_path: Path, timeout: float = 30):
    batch = tmp_path / f"batch-{uuidlib.uuid4().hex[:6]}"
    batch.write_text("\n".join(commands) + "\n")
    res = run(["sftp", "-b", str(batch), "-P", str(d.port), *ssh_base_options(key(keyset, user)),
               f"{user}@{d.host}"], timeout=timeout)
    assert res.returncode == 0, f"sftp failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
    return res.stdout


def send_with(client: str, d, keyset, tmp_path: Path, name: str, data: bytes,
              trigger: bytes) -> None:
    """KMD puts OUT/<name>, then OUT/<name>.trigger, with paramiko or OpenSSH's sftp."""
    if client == "paramiko":
        send(d, keyset, KMD, name, data, trigger)
        return
    (tmp_path / "data").write_bytes(data)
    (tmp_path / "trigger").write_bytes(trigger)
    sftp_batch(d, keyset, KMD, [f"put {tmp_path / 'data'} OUT/{name}",
                                f"put {tmp_path / 'trigger'} OUT/{name}.trigger"], tmp_path)


@pytest.mark.parametrize("client", ["paramiko", "openssh"])
def test_happy_path_two_recipients(d, keyset, tmp_path, client):
    name = fresh(f"oekonomi-{client}")
    data = os.urandom(300_000) + "æøå;Ærø\n".encode()
    sfid = f"sfid-{client}-1"
    trig = trigger_xml(name, len(data), KMD, RECIPIENTS, senders_file_id=sfid, inf_ref=DELIVER)
    send_with(client, d, keyset, tmp_path, name, data, trig)
    receipt = wait_receipt(d, KMD, name)
    uuid = check_delivered(d, name, data, receipt, senders_file_id=sfid)
    for r, it_system, authority in ((FLIS, "FLIS", None), (LISX, "lis-x", LISX_AUTHORITY)):
        info = metadata_of(d.in_dir(r) / (name + ".metadata"))[
            "FileContentDescriptor"]["SFTPDynamicRoutingInfo"]
        assert info["SenderIt-system"] == "kmd-oekonomi"
        assert info.get("RecipientIt-system") == it_system
        assert info.get("RecipientAuthority") == authority
    check_out_empty(d, KMD)
    kinds = [r["kind"] for r in db_rows(db(d), "SELECT kind FROM events WHERE transfer_uuid = ? "
                                               "ORDER BY seq", (uuid,))]
    assert kinds.count("received") == 1 and kinds.count("receipt_sent") == 1, kinds
    assert kinds.count("delivered") == 2, kinds
    if client == "openssh":  # the receipt is readable with OpenSSH, and flis fetches with it
        out = tmp_path / "receipt.xml"
        sftp_batch(d, keyset, KMD, [f"get IN/{name}.sftpreceipt {out}"], tmp_path)
        assert receipt_of(out)["FileTransferUUID"] == uuid
        sftp_batch(d, keyset, FLIS, [f"get IN/{name}.metadata {tmp_path / 'm.xml'}",
                                     f"get IN/{name} {tmp_path / 'got'}", f"rm IN/{name}"],
                   tmp_path)
        assert metadata_of(tmp_path / "m.xml")["FileTransferUUID"] == uuid
        assert (tmp_path / "got").read_bytes() == data
        wait_until(lambda: deliveries(d, uuid)[FLIS]["state"] == "picked_up", 15,
                   "flis's delivery to be picked up")
        assert deliveries(d, uuid)[LISX]["state"] == "delivered"
    verify_event_chain(db(d))


@pytest.mark.parametrize("client", ["paramiko", "openssh"])
def test_large_upload_digest_taken_while_it_arrives(d, keyset, tmp_path, client):
    """A 24 MiB upload (hundreds of WRITEs; OpenSSH's sftp sends them 255 KiB at a time after
    limits@openssh.com, paramiko 32 KiB) is hashed by the SFTP server as it arrives: the digest
    it reports at close, the metadata's Sha256 and the trigger's Sha256 check all see the bytes
    that were sent, and a trigger with a wrong Sha256 is caught."""
    data = os.urandom(24 << 20) + b"tail"
    digest = sha256_bytes(data)
    good, bad = fresh(f"large-{client}"), fresh(f"large-bad-{client}")
    since = d.stderr_path.stat().st_size
    for name, sha in ((good, digest), (bad, "0" * 64)):
        trig = trigger_xml(name, len(data), KMD, RECIPIENTS, inf_ref=DELIVER, sha256=sha)
        send_with(client, d, keyset, tmp_path, name, data, trig)
    # The digest came from the upload itself (a file put in OUT by other means has none here).
    d.wait_log(rf'event=upload_closed account={KMD} name="{re.escape(good)}" size={len(data)} '
               rf'sha256={digest}', since)
    check_delivered(d, good, data, wait_receipt(d, KMD, good))
    check_rejected(d, KMD, bad, 1006, "CHECKSUM_MISMATCH", True)


def test_real_client_flow_and_pickup(d, keyset, tmp_path):
    """What a Serviceplatformen client does: put data, put trigger (ns2 prefix), the recipient
    polls IN for the metadata, reads it with xmltodict, gets the data and removes it."""
    name = fresh("f")
    data = b"konto;beloeb\n" + os.urandom(5000).hex().encode()
    trig = trigger_xml(name, len(data), KMD, [FLIS], inf_ref=DELIVER, senders_file_id="rc-1")
    assert trig.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<ns2:Trigger xmlns:ns2=')
    (tmp_path / name).write_bytes(data)
    (tmp_path / (name + ".trigger")).write_bytes(trig)
    with d.sftp(KMD, key(keyset, KMD)) as s:
        s.put(str(tmp_path / name), f"OUT/{name}")
        s.put(str(tmp_path / (name + ".trigger")), f"OUT/{name}.trigger")
    with d.sftp(FLIS, key(keyset, FLIS)) as s:
        wait_until(lambda: name + ".metadata" in s.listdir("IN"), 20, "metadata in flis's IN",
                   interval=0.1)
        with s.open(f"IN/{name}.metadata", "r") as f:
            doc = parse_xml(f.read())  # as the client does: xmltodict, no namespaces
        assert "ns2:Trigger" in doc, doc
        m = doc["ns2:Trigger"]
        fd = m["FileDescriptor"]
        assert fd["Sender"] == KMD
        assert FLIS in as_list(fd["Recipients"])
        assert fd["FileName"] == name
        buf = io.BytesIO()
        s.getfo(f"IN/{name}", buf)
        assert buf.getvalue() == data
        assert fd["Sha256"] == sha256_bytes(data)
        uuid = m["FileTransferUUID"]
        s.remove(f"IN/{name}")
        assert name not in s.listdir("IN")

    def picked_up() -> bool:
        return deliveries(d, uuid).get(FLIS, {}).get("state") == "picked_up"

    wait_until(picked_up, 15, "deliveries.state = 'picked_up' for flis", interval=0.1)
    row = deliveries(d, uuid)[FLIS]
    assert row["picked_up_at"], row
    kinds = [r["kind"] for r in db_rows(db(d), "SELECT kind FROM events WHERE transfer_uuid = ?",
                                        (uuid,))]
    assert "picked_up" in kinds, kinds
    receipt = wait_receipt(d, KMD, name)
    assert receipt["FileTransferUUID"] == uuid


def test_trigger_attributes_kept_after_take(d, keyset, tmp_path):
    """Contract §2: paramiko's put stats right after close; fordeler takes the trigger at once
    but keeps its attributes for 10 s for the account that wrote it."""
    name = fresh("attr")
    data = os.urandom(1234)
    trig = trigger_xml(name, len(data), KMD, RECIPIENTS, inf_ref=DELIVER)
    (tmp_path / "data").write_bytes(data)
    (tmp_path / "trigger").write_bytes(trig)
    with d.sftp(KMD, key(keyset, KMD)) as s, d.sftp(KMD, key(keyset, KMD)) as s2:
        s.put(str(tmp_path / "data"), f"OUT/{name}")
        attrs = s.put(str(tmp_path / "trigger"), f"OUT/{name}.trigger")  # stats after close
        assert attrs.st_size == len(trig)
        assert s.stat(f"OUT/{name}.trigger").st_size == len(trig)
        s.utime(f"OUT/{name}.trigger", (1_700_000_000, 1_700_000_000))
        wait_until(lambda: not {name, name + ".trigger"} & set(s.listdir("OUT")), 10,
                   "trigger and data to leave OUT")
        # Taken, yet stat/setstat still work, in another session of the same account too.
        for sess in (s, s2):
            assert sess.stat(f"OUT/{name}.trigger").st_size == len(trig)
            assert sess.lstat(f"OUT/{name}.trigger").st_size == len(trig)
            assert sess.stat(f"OUT/{name}").st_size == len(data)
            sess.utime(f"OUT/{name}.trigger", None)
            sess.chmod(f"OUT/{name}.trigger", 0o644)
        assert name + ".trigger" not in s2.listdir("OUT")
        with pytest.raises(IOError):
            s.open(f"OUT/{name}.trigger", "r").read()
    receipt = wait_receipt(d, KMD, name)
    check_delivered(d, name, data, receipt)


def test_trigger_renamed_into_place(d, keyset):
    """Clients that upload to a temporary name and rename it to <name>.trigger (contract §2.3)."""
    name = fresh("renamed")
    data = os.urandom(2048)
    with d.sftp(KMD, key(keyset, KMD)) as s:
        put_bytes(s, data, f"OUT/{name}")
        put_bytes(s, trigger_xml(name, len(data), KMD, RECIPIENTS, inf_ref=DELIVER),
                  f"OUT/{name}.trigger.part")
        time.sleep(0.3)
        assert (d.out_dir(KMD) / f"{name}.trigger.part").exists(), "a .part file was taken"
        s.rename(f"OUT/{name}.trigger.part", f"OUT/{name}.trigger")
    check_delivered(d, name, data, wait_receipt(d, KMD, name))
    check_out_empty(d, KMD)


def test_files_put_in_out_by_other_means_are_copied(d, keyset, tmp_path):
    """Data and trigger that arrive in /OUT without fordeler's server (inotify) are delivered;
    the data is copied, so a writer still holding the original cannot change what was
    delivered (contract §2)."""
    name = fresh("local")
    data = os.urandom(10_000)
    out = d.out_dir(KMD)
    fd = os.open(out / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, data)
        staged = d.workdir / "staged.trigger"  # same filesystem: rename is atomic
        staged.write_bytes(trigger_xml(name, len(data), KMD, RECIPIENTS, inf_ref=DELIVER))
        os.rename(staged, out / (name + ".trigger"))
        receipt = wait_receipt(d, KMD, name)
        check_delivered(d, name, data, receipt)
        os.pwrite(fd, b"CHANGED", 0)
    finally:
        os.close(fd)
    for r in RECIPIENTS:
        assert (d.in_dir(r) / name).read_bytes() == data, f"{r}'s delivered file changed"
    check_out_empty(d, KMD)


def test_a_file_of_another_owner_written_over_through_fordeler_is_copied(d, keyset):
    """A data file in /OUT that another user owns (a storage root shared with another server,
    contract §9), written over through fordeler's server, is delivered as what was written:
    fordelerd may not change the mode of a file it does not own, so it takes a copy of its own
    (mode 0440) rather than the file. Against the `nobody` daemon the file was renamed into the
    spool and its fchmod failed, the transfer retried for ever with no receipt."""
    if os.geteuid() != 0:
        pytest.skip("giving a file another owner needs root")
    name = fresh("other-owner")
    path = d.out_dir(KMD) / name
    path.write_bytes(b"an older file of another user")
    os.chmod(path, 0o666)
    os.chown(path, 4242, 4242)
    data = os.urandom(5000)
    send(d, keyset, KMD, name, data,
         trigger_xml(name, len(data), KMD, RECIPIENTS, inf_ref=DELIVER))
    receipt = wait_receipt(d, KMD, name)
    check_delivered(d, name, data, receipt)
    for r in RECIPIENTS:
        placed = os.stat(d.in_dir(r) / name)
        assert placed.st_uid != 4242, f"{r} got the other user's file, not a copy"
        assert placed.st_mode & 0o7777 == 0o440, oct(placed.st_mode)
    check_out_empty(d, KMD)


def test_name_collision_gets_uuid_suffix(d, keyset):
    name = fresh("same")
    first, second = os.urandom(1000), os.urandom(2000)
    send(d, keyset, KMD, name, first,
         trigger_xml(name, len(first), KMD, RECIPIENTS, inf_ref=DELIVER))
    r1 = wait_receipt(d, KMD, name)
    u1 = check_delivered(d, name, first, r1)
    send(d, keyset, KMD, name, second,
         trigger_xml(name, len(second), KMD, RECIPIENTS, inf_ref=DELIVER))
    r2 = wait_receipt(d, KMD, name, not_uuid=u1)
    u2 = r2["FileTransferUUID"]
    assert r2["Receipt"]["Message"] == "SUCCESS" and u2 != u1
    wait_transfer(db(d), u2)
    alt = f"{name}.{u2}"
    for r in RECIPIENTS:
        names = sorted(n for n in os.listdir(d.in_dir(r)) if n.startswith(name))
        assert names == sorted([name, name + ".metadata", alt, alt + ".metadata"]), names
        assert (d.in_dir(r) / name).read_bytes() == first, "the first file was overwritten"
        assert (d.in_dir(r) / alt).read_bytes() == second
        check_metadata(d, r, name, uuid=u1, size=len(first), sha=sha256_bytes(first))
        check_metadata(d, r, alt, uuid=u2, size=len(second), sha=sha256_bytes(second))
    assert {r["name_in_in"] for r in deliveries(d, u2).values()} == {alt}


@pytest.mark.parametrize("narrow", [None, "lis-x"])
def test_dynamic_routing(d, keyset, narrow):
    """Recipients = ROUTING_V1_0_0: the route's recipients (narrowed by RecipientIt-system)."""
    name = fresh("dyn")
    data = os.urandom(777)
    trig = trigger_xml(name, len(data), KMD, ["ROUTING_V1_0_0"], inf_ref=DELIVER,
                       sender_authority=KMD_AUTHORITY, recipient_it_system=narrow,
                       transaction_id="tx-42")
    send(d, keyset, KMD, name, data, trig)
    receipt = wait_receipt(d, KMD, name)
    want = [LISX] if narrow else RECIPIENTS
    uuid = check_delivered(d, name, data, receipt, recipients=want)
    for r in set(RECIPIENTS) - set(want):
        assert not (d.in_dir(r) / name).exists(), f"{r} got a file it was narrowed out of"
    info = metadata_of(d.in_dir(want[0]) / (name + ".metadata"))[
        "FileContentDescriptor"]["SFTPDynamicRoutingInfo"]
    assert info["TransactionId"] == "tx-42"
    assert db_rows(db(d), "SELECT data_area FROM transfers WHERE uuid = ?",
                   (uuid,))[0]["data_area"] == "oekonomi"


def test_data_area_inferred_without_infref(d, keyset):
    """No InfRef: flis + lis-x fit only the oekonomi route, so that is the data area."""
    name = fresh("infer")
    data = os.urandom(100)
    send(d, keyset, KMD, name, data, trigger_xml(name, len(data), KMD, RECIPIENTS))
    receipt = wait_receipt(d, KMD, name)
    check_delivered(d, name, data, receipt)


def test_same_name_sent_again_right_after(d, keyset):
    """Both files leave OUT, so the same <name> can be sent again at once (contract §2)."""
    name = fresh("again")
    payloads = [os.urandom(4096), os.urandom(4097)]
    with d.sftp(KMD, key(keyset, KMD)) as s:
        for p in payloads:
            put_bytes(s, p, f"OUT/{name}")
            put_bytes(s, trigger_xml(name, len(p), KMD, RECIPIENTS, inf_ref=DELIVER),
                      f"OUT/{name}.trigger")
            wait_until(lambda: not {name, name + ".trigger"} & set(s.listdir("OUT")), 10,
                       "both files to leave OUT", interval=0.02)

    def both_done() -> bool:
        rows = db_rows(db(d), "SELECT step FROM transfers WHERE sender = ? AND name = ?",
                       (KMD, name))
        return len(rows) == 2 and all(r["step"] == 6 for r in rows)

    wait_until(both_done, 20, "both transfers done")
    rows = db_rows(db(d), "SELECT uuid, state FROM transfers WHERE sender = ? AND name = ?",
                   (KMD, name))
    assert all(r["state"] == "delivered" for r in rows), [dict(r) for r in rows]
    uuids = {r["uuid"] for r in rows}
    for r in RECIPIENTS:
        data_files = [n for n in os.listdir(d.in_dir(r))
                      if n.startswith(name) and not n.endswith(".metadata")]
        assert len(data_files) == 2, data_files
        got = sorted(sha256_bytes((d.in_dir(r) / n).read_bytes()) for n in data_files)
        assert got == sorted(sha256_bytes(p) for p in payloads)
        metas = {metadata_of(d.in_dir(r) / (n + ".metadata"))["FileTransferUUID"]
                 for n in data_files}
        assert metas == uuids
    receipt = receipt_of(d.in_dir(KMD) / (name + ".sftpreceipt"))
    assert receipt["FileTransferUUID"] in uuids
    check_out_empty(d, KMD)


def test_concurrent_senders(d, keyset):
    """20 senders at once, each its own session: every transfer delivered exactly once."""
    sent: dict[str, tuple[str, bytes]] = {}
    errors: list[str] = []
    barrier = threading.Barrier(N_CONCURRENT, timeout=60)

    def sender(v: str) -> None:
        try:
            name = fresh(f"conc-{v}")
            data = os.urandom(4096 + 997 * int(v[-2:]))
            with d.sftp(v, key(keyset, v)) as s:
                barrier.wait()
                put_bytes(s, data, f"OUT/{name}")
                put_bytes(s, trigger_xml(name, len(data), v, [FLIS], inf_ref=DELIVER),
                          f"OUT/{name}.trigger")
            sent[v] = (name, data)
        except Exception as e:  # reported below
            errors.append(f"{v}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=sender, args=(v,), daemon=True) for v in CONCURRENT]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a sender thread hung"
    assert not errors, errors
    assert len(sent) == N_CONCURRENT
    for v, (name, data) in sent.items():
        receipt = wait_receipt(d, v, name, timeout=30)
        check_delivered(d, name, data, receipt, recipients=[FLIS], sender=v,
                        authority=vendor_authority(v))
        check_out_empty(d, v)
    verify_event_chain(db(d))


# ------------------------------------------------------------------------------------------
# Rejections: every code a sender can provoke


def too_large_trigger(name: str, data: bytes) -> bytes:
    t = trigger_xml(name, len(data), KMD, RECIPIENTS, inf_ref=DELIVER).decode()
    pad = "<!-- " + "x" * (65 * 1024) + " -->\n"
    return t.replace("<FileDescriptor>", pad + "  <FileDescriptor>", 1).encode()


XXE = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
       b'<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
       b'<ns2:Trigger xmlns:ns2="http://serviceplatformen.dk/xml/wsdl/soap11/SFTP/1/types">'
       b'<FileDescriptor><FileName>NAME</FileName><SizeInBytes>SIZE</SizeInBytes>'
       b'<Sender>kmd-oekonomi</Sender><SendersFileId>&xxe;</SendersFileId>'
       b'<Recipients>flis</Recipients></FileDescriptor></ns2:Trigger>\n')


# case -> (code, name of the code, sender account, makes (trigger bytes, data or None))
REJECTIONS = {
    "1001-not-xml": (1001, "TRIGGER_MALFORMED", KMD, lambda n, b: (b"this is <not xml", b)),
    "1001-doctype-xxe": (1001, "TRIGGER_MALFORMED", KMD, lambda n, b: (
        XXE.replace(b"NAME", n.encode()).replace(b"SIZE", str(len(b)).encode()), b)),
    "1001-over-64KiB": (1001, "TRIGGER_MALFORMED", KMD, lambda n, b: (too_large_trigger(n, b), b)),
    "1001-not-utf8": (1001, "TRIGGER_MALFORMED", KMD, lambda n, b: (
        trigger_xml(n, len(b), KMD, RECIPIENTS, inf_ref=DELIVER,
                    senders_file_id="SFID").replace(b"SFID", b"\xe6\xf8\xe5"), b)),
    "1002-no-size": (1002, "TRIGGER_INVALID", KMD, lambda n, b: (
        trigger_xml(n, len(b), KMD, RECIPIENTS, inf_ref=DELIVER, senders_file_id="SFI-1002",
                    omit=["SizeInBytes"]), b)),
    "1003-filename": (1003, "FILENAME_MISMATCH", KMD, lambda n, b: (
        trigger_xml("another-" + n, len(b), KMD, RECIPIENTS, inf_ref=DELIVER), b)),
    "1004-no-data": (1004, "DATA_FILE_MISSING", KMD, lambda n, b: (
        trigger_xml(n, len(b), KMD, RECIPIENTS, inf_ref=DELIVER), None)),
    "1005-size": (1005, "SIZE_MISMATCH", KMD, lambda n, b: (
        trigger_xml(n, len(b) + 1, KMD, RECIPIENTS, inf_ref=DELIVER), b)),
    "1006-sha256": (1006, "CHECKSUM_MISMATCH", KMD, lambda n, b: (
        trigger_xml(n, len(b), KMD, RECIPIENTS, inf_ref=DELIVER, sha256="0" * 64), b)),
    "1007-sender": (1007, "SENDER_MISMATCH", KMD, lambda n, b: (
        trigger_xml(n, len(b), OTHER, [FLIS], inf_ref=DELIVER), b)),
    "2001-unknown-recipient": (2001, "UNKNOWN_RECIPIENT", KMD, lambda n, b: (
        trigger_xml(n, len(b), KMD, [FLIS, "nobody-at-all"], inf_ref=DELIVER), b)),
    "2002-no-route": (2002, "NO_ROUTE", KMD, lambda n, b: (
        trigger_xml(n, len(b), KMD, [FLIS, LISY], inf_ref=DELIVER), b)),
    "2003-unknown-infref": (2003, "UNKNOWN_DATA_AREA", KMD, lambda n, b: (
        trigger_xml(n, len(b), KMD, RECIPIENTS, inf_ref="FLISBogusAflever_1"), b)),
    "2004-ambiguous": (2004, "AMBIGUOUS_DATA_AREA", KMD, lambda n, b: (
        trigger_xml(n, len(b), KMD, [FLIS]), b)),
}


def check_rejected(d, sender: str, name: str, code: int, code_name: str, had_data: bool,
                   recipients=(FLIS, LISX, LISY), timeout: float = 20.0) -> str:
    receipt = wait_receipt(d, sender, name, timeout=timeout)
    uuid = receipt["FileTransferUUID"]
    assert UUID_RE.fullmatch(uuid), uuid
    assert "Receipt" not in receipt, receipt
    err = receipt["ErrorMessage"]
    assert err["ErrorCode"] == str(code), receipt
    assert err["ErrorCodeDescription"] == code_name, receipt
    assert err.get("ErrorDescription"), f"empty ErrorDescription: {receipt}"
    row = wait_transfer(db(d), uuid)
    assert row["state"] == "rejected" and row["error_code"] == code, dict(row)
    # Delivered to nobody: no delivery row may say (or, as 'pending', promise) otherwise.
    live = {r: row["state"] for r, row in deliveries(d, uuid).items()
            if row["state"] in ("pending", "delivered", "picked_up")}
    assert live == {}, f"rejected transfer {uuid} ({code}) has live delivery rows: {live}"
    for r in recipients:
        got = [n for n in os.listdir(d.in_dir(r)) if n.startswith(name)]
        assert got == [], f"{r} received something of a rejected transfer: {got}"
    q = d.state / "quarantine" / uuid
    held = sorted(os.listdir(q))
    assert name + ".trigger" in held, f"quarantine/{uuid} lacks the trigger: {held}"
    if had_data:
        assert name in held, f"quarantine/{uuid} lacks the data file: {held}"
    check_out_empty(d, sender)
    return uuid


@pytest.mark.parametrize("case", list(REJECTIONS))
def test_rejection(d, keyset, case):
    code, code_name, sender, make = REJECTIONS[case]
    name = fresh(f"rej{case[:4]}")
    data = os.urandom(321)
    trig, data_sent = make(name, data)
    t0 = time.monotonic()
    send(d, keyset, sender, name, data_sent, trig)
    uuid = check_rejected(d, sender, name, code, code_name, data_sent is not None)
    if code == 1004:
        assert time.monotonic() - t0 >= 0.9, "rejected before trigger_grace had passed"
    if case == "1002-no-size":  # an invalid trigger's id is echoed too (contract §5)
        receipt = receipt_of(d.in_dir(sender) / (name + ".sftpreceipt"))
        assert receipt.get("SendersFileId") == "SFI-1002", receipt
    if case == "1001-doctype-xxe":
        q = d.state / "quarantine" / uuid
        for n in os.listdir(q):
            assert b"root:" not in (q / n).read_bytes(), f"an entity was expanded into {n}"
        assert b"root:" not in (d.in_dir(sender) / (name + ".sftpreceipt")).read_bytes()


@pytest.mark.parametrize("limit,size", [("10B", 11), ("1KiB", 1025)])
def test_file_too_large(daemons, keyset, limit, size):
    """FILE_TOO_LARGE: a data file over max_file_size. fordeler's SFTP server refuses to write a
    file past the limit, so the data file arrives in /OUT by other means (written into the folder
    directly, as contract §2 allows); the trigger, a few hundred bytes, comes over SFTP: a
    trigger is limited to 64 KiB by contract §3, not by max_file_size."""
    extra = (f'[delivery]\nmax_file_size = "{limit}"\n' + routes() + "\n" + data_areas_toml())
    d2 = daemons.create(accounts(keyset), extra=extra)
    name = fresh("big")
    data = os.urandom(size)
    (d2.out_dir(KMD) / name).write_bytes(data)
    with d2.sftp(KMD, key(keyset, KMD)) as s:
        # Over SFTP the data file cannot get past the limit: the write fails.
        with pytest.raises(IOError):
            put_bytes(s, data, "OUT/over.csv")
        put_bytes(s, trigger_xml(name, size, KMD, RECIPIENTS, inf_ref=DELIVER),
                  f"OUT/{name}.trigger")
        # A client that sends the trigger all the same gets 3001 for the size it announced, not
        # 1005 for the part the server wrote; the part goes to quarantine with the trigger.
        put_bytes(s, trigger_xml("over.csv", size, KMD, RECIPIENTS, inf_ref=DELIVER),
                  "OUT/over.csv.trigger")
    uuid = check_rejected(d2, KMD, name, 3001, "FILE_TOO_LARGE", True)
    assert (d2.state / "quarantine" / uuid / name).read_bytes() == data
    part = check_rejected(d2, KMD, "over.csv", 3001, "FILE_TOO_LARGE", True)
    assert len((d2.state / "quarantine" / part / "over.csv").read_bytes()) < size
    # At the limit a data file still passes.
    name = fresh("limit")
    data = os.urandom(size - 1)
    send(d2, keyset, KMD, name, data,
         trigger_xml(name, len(data), KMD, RECIPIENTS, inf_ref=DELIVER))
    check_delivered(d2, name, data, wait_receipt(d2, KMD, name))
    verify_event_chain(db(d2))


# ------------------------------------------------------------------------------------------
# Quota, a data file held open past trigger_grace, pickup by other means, filemetadata


@pytest.mark.parametrize("limit", ["quota_files", "quota"])
def test_recipient_quota_exceeded(daemons, keyset, limit):
    """3002 QUOTA_EXCEEDED (contract §7): flis may hold 2 data files (or 1,800 bytes) in /IN;
    metadata files do not count, so two 600-byte transfers fit and a third (601 bytes) would
    pass the quota: it is rejected for all its recipients (lis-x has no quota and gets nothing
    either), the pair is quarantined, the receipt names flis. A file that fills the byte quota
    exactly still fits. Once flis fetched a file there is room again."""
    quota = "quota_files = 2" if limit == "quota_files" else 'quota = "1800B"'
    accs = accounts(keyset)
    for a in accs:
        if a.id == FLIS:
            a.extra += "\n" + quota
    d2 = daemons.create(accs, extra=routes() + "\n" + data_areas_toml())

    def transfer(name: str, data: bytes, not_uuid: str | None = None) -> dict:
        send(d2, keyset, KMD, name, data, trigger_xml(name, len(data), KMD, RECIPIENTS,
                                                      inf_ref=DELIVER))
        return wait_receipt(d2, KMD, name, not_uuid=not_uuid)

    def rejected(name: str, data: bytes) -> str:  # a fresh name: its first receipt
        send(d2, keyset, KMD, name, data, trigger_xml(name, len(data), KMD, RECIPIENTS,
                                                      inf_ref=DELIVER))
        uuid = check_rejected(d2, KMD, name, 3002, "QUOTA_EXCEEDED", True,
                              recipients=RECIPIENTS)
        assert (d2.state / "quarantine" / uuid / name).read_bytes() == data
        desc = receipt_of(d2.in_dir(KMD) / (name + ".sftpreceipt"))["ErrorMessage"][
            "ErrorDescription"]
        assert FLIS in desc, f"the description does not name the recipient over quota: {desc!r}"
        return uuid

    sent = []
    for i in range(2):
        name, data = fresh(f"quota-ok{i}"), os.urandom(600)
        check_delivered(d2, name, data, transfer(name, data))
        sent.append(name)
    name = fresh("quota-over")
    uuid = rejected(name, os.urandom(601))
    assert sorted(n for n in os.listdir(d2.in_dir(FLIS)) if not n.endswith(".metadata")) == \
        sorted(sent)
    if limit == "quota":  # 1,200 + 600 is exactly the quota: that fits; one byte more does not
        data = os.urandom(600)
        uuid = check_delivered(d2, name, data, transfer(name, data, not_uuid=uuid))
        sent.append(name)
        name = fresh("quota-one-byte")
        uuid = rejected(name, b"x")
    # flis fetches one file: room again for the same name.
    first_uuid = metadata_of(d2.in_dir(FLIS) / (sent[0] + ".metadata"))["FileTransferUUID"]
    with d2.sftp(FLIS, key(keyset, FLIS)) as s:
        s.remove(f"IN/{sent[0]}")
    wait_until(lambda: deliveries(d2, first_uuid)[FLIS]["state"] == "picked_up", 15,
               "flis's pickup to be recorded")
    data = os.urandom(600 if limit == "quota_files" else 1)
    check_delivered(d2, name, data, transfer(name, data, not_uuid=uuid))
    verify_event_chain(db(d2))


def test_a_rejected_trigger_leaves_a_data_file_still_being_written_for_the_next(d, keyset):
    """Contract §2: both files leave /OUT when a transfer is rejected, but a data file that a
    session still writes is an upload in progress, not yet part of any transfer: a trigger
    rejected meanwhile (here 2001, an unknown recipient) leaves it in /OUT, and once it is
    complete a corrected trigger sends it."""
    name = fresh("still-writing")
    data = os.urandom(20_000)
    with d.sftp(KMD, key(keyset, KMD)) as s:
        f = s.open(f"OUT/{name}", "wb")
        f.set_pipelined(False)
        f.write(data)
        f.flush()
        put_bytes(s, trigger_xml(name, len(data), KMD, ["nobody"], inf_ref=DELIVER),
                  f"OUT/{name}.trigger")
        receipt = wait_receipt(d, KMD, name, timeout=20)
        assert receipt["ErrorMessage"]["ErrorCode"] == "2001", receipt
        uuid = receipt["FileTransferUUID"]
        assert sorted(os.listdir(d.state / "quarantine" / uuid)) == \
            sorted([name + ".trigger", "receipt.xml"])
        assert os.listdir(d.out_dir(KMD)) == [name], "the data file being written left /OUT"
        f.write(b"end")
        f.close()
        full = data + b"end"
        put_bytes(s, trigger_xml(name, len(full), KMD, RECIPIENTS, inf_ref=DELIVER),
                  f"OUT/{name}.trigger")
    check_delivered(d, name, full, wait_receipt(d, KMD, name, not_uuid=uuid))
    check_out_empty(d, KMD)


def test_data_file_held_open_past_trigger_grace_is_1004(d, keyset):
    """Contract §2: a trigger whose data file is still open for writing is retried until
    trigger_grace (1 s here) has passed, then rejected with 1004 DATA_FILE_MISSING; nothing is
    delivered, not even after the writer closes the file. (A writer that closes within the grace
    is delivered: test_hostile.py::test_delivered_files_cannot_be_changed.)"""
    name = fresh("held-open")
    data = os.urandom(50_000)
    with d.sftp(KMD, key(keyset, KMD)) as s:
        f = s.open(f"OUT/{name}", "wb")
        f.set_pipelined(False)
        f.write(data)
        f.flush()
        t0 = time.monotonic()
        put_bytes(s, trigger_xml(name, len(data), KMD, RECIPIENTS, inf_ref=DELIVER),
                  f"OUT/{name}.trigger")
        receipt = wait_receipt(d, KMD, name, timeout=20)
        waited = time.monotonic() - t0
        err = receipt.get("ErrorMessage")
        assert err and err["ErrorCode"] == "1004", receipt
        assert err["ErrorCodeDescription"] == "DATA_FILE_MISSING", receipt
        assert err.get("ErrorDescription"), receipt
        assert waited >= 0.9, f"rejected after {waited:.2f}s, before trigger_grace (1s)"
        uuid = receipt["FileTransferUUID"]
        row = wait_transfer(db(d), uuid)
        assert row["state"] == "rejected" and row["error_code"] == 1004, dict(row)
        assert (d.state / "quarantine" / uuid / (name + ".trigger")).exists()
        f.write(b"late")
        f.close()
    time.sleep(1.5)  # the close must not revive the rejected transfer
    for r in (FLIS, LISX):
        got = [n for n in os.listdir(d.in_dir(r)) if n.startswith(name)]
        assert got == [], f"{r} received something of a rejected transfer: {got}"
    live = {r: x["state"] for r, x in deliveries(d, uuid).items()
            if x["state"] in ("pending", "delivered", "picked_up")}
    assert live == {}, live
    rows = db_rows(db(d), "SELECT uuid FROM transfers WHERE sender = ? AND name = ?", (KMD, name))
    assert [r["uuid"] for r in rows] == [uuid], "one trigger, one transfer"
    assert receipt_of(d.in_dir(KMD) / (name + ".sftpreceipt"))["FileTransferUUID"] == uuid
    # The data file could not be taken: it stays in OUT, complete now, like any data file
    # without a trigger (contract §2), and a new trigger sends it.
    full = data + b"late"
    assert (d.out_dir(KMD) / name).read_bytes() == full
    with d.sftp(KMD, key(keyset, KMD)) as s:
        put_bytes(s, trigger_xml(name, len(full), KMD, RECIPIENTS, inf_ref=DELIVER),
                  f"OUT/{name}.trigger")
    check_delivered(d, name, full, wait_receipt(d, KMD, name, not_uuid=uuid))
    check_out_empty(d, KMD)


def test_an_upload_that_did_not_finish_is_never_delivered(d, keyset):
    """sending.md: an upload that does not finish is never taken as complete, even when a
    trigger announces exactly the part that was written. Here the connection ends with the data
    file open: the file keeps its mark (the sticky bit, shown to the sender), its trigger waits
    trigger_grace and gets 1004 saying why, the part goes to quarantine with the trigger and
    nobody receives anything; uploaded again completely, the file is sent."""
    name = fresh("cut-off")
    part = os.urandom(40_000)
    t = d.transport(KMD, key(keyset, KMD))
    try:
        s = paramiko.SFTPClient.from_transport(t)
        f = s.open(f"OUT/{name}", "wb")
        f.set_pipelined(False)
        f.write(part)
        f.flush()
    finally:
        t.close()  # the connection ends with the upload open
    d.wait_log(rf'event=upload_changed account={KMD} name="{re.escape(name)}" size={len(part)}')
    with d.sftp(KMD, key(keyset, KMD)) as s:
        assert s.stat(f"OUT/{name}").st_mode & 0o7777 == 0o1640, "no unfinished mark shown"
        put_bytes(s, trigger_xml(name, len(part), KMD, RECIPIENTS, inf_ref=DELIVER),
                  f"OUT/{name}.trigger")
    receipt = wait_receipt(d, KMD, name, timeout=20)
    err = receipt.get("ErrorMessage")
    assert err and err["ErrorCode"] == "1004", receipt
    assert "its upload did not finish" in err.get("ErrorDescription", ""), receipt
    uuid = receipt["FileTransferUUID"]
    assert (d.state / "quarantine" / uuid / name).read_bytes() == part
    for r in (FLIS, LISX):
        got = [n for n in os.listdir(d.in_dir(r)) if n.startswith(name)]
        assert got == [], f"{r} received something of an unfinished upload: {got}"
    full = part + os.urandom(10_000)
    send(d, keyset, KMD, name, full, trigger_xml(name, len(full), KMD, RECIPIENTS,
                                                  inf_ref=DELIVER))
    check_delivered(d, name, full, wait_receipt(d, KMD, name, not_uuid=uuid))


def flis_picked_up_lisx_not(d, uuid: str, timeout: float) -> dict:
    """Waits until `fordeler show` has flis's delivery of `uuid` picked up, checks that lisx's is
    still delivered, and returns the document."""

    def flis_state() -> str:
        return {x["recipient"]: x for x in cli_json(d, "show", uuid)["deliveries"]}[FLIS]["state"]

    wait_until(lambda: flis_state() == "picked_up", timeout,
               "flis's delivery to be picked_up in `fordeler show`", interval=0.2)
    doc = cli_json(d, "show", uuid)
    dl = {x["recipient"]: x for x in doc["deliveries"]}
    assert dl[FLIS]["picked_up_at"], dl[FLIS]
    assert dl[LISX]["state"] == "delivered" and not dl[LISX]["picked_up_at"], dl[LISX]
    return doc


@pytest.mark.parametrize("how", ["remove", "move_away"])
def test_pickup_by_removal_on_disk_is_recorded(d, keyset, how):
    """Contract §5 and operations.md: a delivered file removed from the recipient's IN by other
    means (os.remove on the jail path, or a rename out of the jail; no SFTP) is recorded as
    picked up (inotify), seen through `fordeler show --json`; the other recipient's delivery
    stays delivered."""
    name = fresh(f"disk-pickup-{how}")
    data = os.urandom(3000)
    send(d, keyset, KMD, name, data, trigger_xml(name, len(data), KMD, RECIPIENTS,
                                                 inf_ref=DELIVER))
    uuid = check_delivered(d, name, data, wait_receipt(d, KMD, name))
    if how == "remove":
        os.remove(d.in_dir(FLIS) / name)
    else:
        os.rename(d.in_dir(FLIS) / name, d.workdir / name)

    doc = flis_picked_up_lisx_not(d, uuid, 15)
    picked = [e for e in doc["events"] if e["kind"] == "picked_up"]
    assert len(picked) == 1, doc["events"]
    row = deliveries(d, uuid)[FLIS]
    assert row["state"] == "picked_up" and row["picked_up_at"], row
    # Removing the metadata file too records nothing more.
    os.remove(d.in_dir(FLIS) / (name + ".metadata"))
    time.sleep(0.5)
    assert [e["kind"] for e in cli_json(d, "show", uuid)["events"]].count("picked_up") == 1
    verify_event_chain(db(d))


def test_pickup_while_stopped_is_recorded_at_start(daemons, keyset):
    """Contract §5: a delivered file its recipient removed while fordelerd was stopped (no SFTP
    report, no inotify event to see) is recorded as picked up at the next start, once, by the
    rescan (`note="found by a rescan"`), seen through `fordeler show --json`; the other
    recipient's delivery stays delivered, and `fordeler audit verify` passes."""
    d2 = daemons.create(accounts(keyset), extra=routes() + "\n" + data_areas_toml())
    name = fresh("stopped-pickup")
    data = os.urandom(2000)
    send(d2, keyset, KMD, name, data, trigger_xml(name, len(data), KMD, RECIPIENTS,
                                                  inf_ref=DELIVER))
    uuid = check_delivered(d2, name, data, wait_receipt(d2, KMD, name))
    assert d2.stop() == 0
    os.remove(d2.in_dir(FLIS) / name)
    offset = d2.stderr_size()
    d2.start()
    d2.wait_log(rf'event=picked_up transfer={uuid} recipient={FLIS} name="{re.escape(name)}" '
                r'note="found by a rescan"', since=offset)

    doc = flis_picked_up_lisx_not(d2, uuid, 10)
    picked = [e for e in doc["events"] if e["kind"] == "picked_up"]
    assert [(e["detail"], e.get("account")) for e in picked] == \
        [(f'name={name} note="found by a rescan"', FLIS)], doc["events"]
    # The next start finds nothing more to record.
    assert d2.stop() == 0
    offset = d2.stderr_size()
    d2.start()
    d2.wait_log(r"event=retention_swept ", since=offset)
    assert [e["kind"] for e in cli_json(d2, "show", uuid)["events"]].count("picked_up") == 1
    assert cli_json(d2, "audit", "verify")["ok"] is True


def test_metadata_format_filemetadata(daemons, keyset):
    """`metadata_format = "filemetadata"` (contract §6): every recipient's metadata file has the
    root ns2:FileMetadata (read with xmltodict, no namespace processing) with the same children
    as the ns2:Trigger form, in the same order; receipts keep ns2:TechnicalReceipt."""
    extra = ('[delivery]\nmetadata_format = "filemetadata"\n' + routes() + "\n" +
             data_areas_toml())
    d2 = daemons.create(accounts(keyset), extra=extra)
    name = fresh("filemetadata")
    data = os.urandom(4321)
    trig = trigger_xml(name, len(data), KMD, RECIPIENTS, inf_ref=DELIVER, senders_file_id="fm-1",
                       transaction_id="tx-fm")
    send(d2, keyset, KMD, name, data, trig)
    receipt = wait_receipt(d2, KMD, name)
    assert receipt["Receipt"]["Message"] == "SUCCESS", receipt
    uuid = receipt["FileTransferUUID"]
    sha = sha256_bytes(data)
    for r, it_system, authority in ((FLIS, "FLIS", None), (LISX, "lis-x", LISX_AUTHORITY)):
        assert (d2.in_dir(r) / name).read_bytes() == data
        doc = parse_xml((d2.in_dir(r) / (name + ".metadata")).read_bytes())
        assert list(doc) == ["ns2:FileMetadata"], f"root is {list(doc)}, want ns2:FileMetadata"
        m = doc["ns2:FileMetadata"]
        assert m["@xmlns:ns2"] == "http://serviceplatformen.dk/xml/wsdl/soap11/SFTP/1/types"
        assert [k for k in m if not k.startswith("@")] == \
            ["FileTransferUUID", "FileDescriptor", "FileContentDescriptor"], list(m)
        assert m["FileTransferUUID"] == uuid
        fd = m["FileDescriptor"]
        assert list(fd) == ["FileName", "SizeInBytes", "Sender", "SendersFileId", "Recipients",
                            "Sha256"], list(fd)
        assert (fd["FileName"], fd["SizeInBytes"], fd["Sender"], fd["SendersFileId"],
                fd["Recipients"], fd["Sha256"]) == (name, str(len(data)), KMD, "fm-1", r, sha)
        info = m["FileContentDescriptor"]["SFTPDynamicRoutingInfo"]
        assert info["InfRef"] == FETCH
        assert info["SenderIt-system"] == "kmd-oekonomi"
        assert info["SenderAuthority"] == KMD_AUTHORITY
        assert info.get("RecipientIt-system") == it_system
        assert info.get("RecipientAuthority") == authority
        assert info["TransactionId"] == "tx-fm"
    assert list(parse_xml((d2.in_dir(KMD) / (name + ".sftpreceipt")).read_bytes())) == \
        ["ns2:TechnicalReceipt"]


def test_retention_at_start_up_expires_what_waited_too_long(daemons, keyset):
    """Contract §8: at start-up (and hourly) fordelerd removes what waited longer than
    `retention` — an unfetched delivery (recorded as expired, never as picked up), a data file
    without trigger left in /OUT — after warning `retention_warning` before the delivery
    expires (an alert)."""
    extra = ('[delivery]\ntrigger_grace = "1s"\nretention = "8s"\nretention_warning = "6s"\n'
             + routes() + "\n" + data_areas_toml())
    d = daemons.create(accounts(keyset), extra=extra)
    name = fresh("expiring")
    send(d, keyset, KMD, name, b"a;b\n", trigger_xml(name, 4, KMD, [FLIS], inf_ref=DELIVER))
    uuid = wait_receipt(d, KMD, name)["FileTransferUUID"]
    assert (d.in_dir(FLIS) / name).exists()
    with d.sftp(KMD, key(keyset, KMD)) as s:
        put_bytes(s, b"never triggered", "OUT/leftover.csv")
    # Within retention_warning of the expiry (older than 2 s), the sweep at the next start warns.
    assert d.stop() == 0
    time.sleep(2.5)
    d.start()
    d.wait_log(r"event=retention_swept ", timeout=10)
    assert (d.in_dir(FLIS) / name).exists() and (d.out_dir(KMD) / "leftover.csv").exists()
    d.wait_log(r"event=alert kind=retention_warning ", timeout=10)
    # Past retention (8 s), the sweep at the next start removes both and records the expiry.
    assert d.stop() == 0
    time.sleep(6.0)
    d.start()
    d.wait_log(r"event=retention_swept expired_out=1 expired_deliveries=1 ", timeout=10)
    assert not (d.in_dir(FLIS) / name).exists()
    assert not (d.in_dir(FLIS) / (name + ".metadata")).exists()
    assert not (d.out_dir(KMD) / "leftover.csv").exists()
    assert deliveries(d, uuid)[FLIS]["state"] == "expired"
    kinds = [r["kind"] for r in db_rows(db(d), "SELECT kind FROM events WHERE transfer_uuid = ?",
                                        (uuid,))]
    assert "expired" in kinds and "picked_up" not in kinds, kinds
