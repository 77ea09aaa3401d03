"""What an operator (or the machine) does to a running fordelerd, against the real daemon:

* a recipient's IN removed, renamed away and recreated, or replaced by a symlink while transfers
  are in flight: fordeler never writes into the old folder (where nobody would find the file) nor
  through the symlink; the operator sees 5001 naming the folder; once the folder is back (made by
  hand, or by a reload), the transfer completes and the recipient's next session sees it;
* a reload that removes the sender of a transfer already accepted: it is delivered as routed when
  accepted (and not left polling for ever, invisibly, for a file nobody can hold open);
* a reload that removes a recipient of a transfer still waiting to be placed: the transfer is
  rejected (2001, delivered to nobody, quarantined), not placed where nobody can fetch it;
* the spool removed: fordeler's own failure (5001, naming the folder), never a rejection of the
  sender's file; delivered once the folder is back and fordelerd restarted.

Faults of the disk, the audit database and an unwritable IN are in test_faults.py; crashes at
each step in test_crash.py.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import time
from pathlib import Path

from harness import cli_json, data_areas_toml, trigger_xml, wait_until
from test_faults import (FLIS, KMD, OEKONOMI, ROUTES, accounts, audit_verify, fresh, key,
                         make_jails, send, wait_receipt)
from test_faults import KEY_NAMES  # noqa: F401  (the keyset fixture reads it from this module)
from test_faults import LIS, mounts  # noqa: F401  (mounts: a fixture)

CONFIG_EXTRA = '[delivery]\ntrigger_grace = "30s"\n'


def make(daemons, keyset, start: bool = True, routes: str = ROUTES):
    d = daemons.create(accounts(keyset), start=False,
                       extra=CONFIG_EXTRA + routes + data_areas_toml())
    d.db = d.state / "audit.db"
    if start:
        d.start()
        make_jails(d, keyset)
    return d


def operator_sees_failure(d, name: str, mentioning: str) -> str:
    """Waits until `fordeler transfers` shows `name` failing with 5001 and `fordeler show` says
    why, naming `mentioning`; returns the transfer's uuid."""
    found = {}

    def failing() -> bool:
        rows = cli_json(d, "transfers")
        mine = [t for t in rows if t["name"] == name]
        if mine and mine[0]["error_code"] == 5001:
            found["uuid"] = mine[0]["uuid"]
            return True
        return False

    wait_until(failing, 30, f"fordeler transfers to show {name} failing with 5001")
    shown = cli_json(d, "show", found["uuid"])
    assert mentioning in (shown.get("error_description") or ""), shown
    return found["uuid"]


def recipient_sees(d, keyset, account: str, names: list[str]) -> None:
    with d.sftp(account, key(keyset, account)) as s:
        listed = s.listdir("IN")
        for n in names:
            assert n in listed, f"{account}'s session does not list {n}: {listed}"


def test_recipient_in_removed_then_made_again(daemons, keyset):
    """`rm -r accounts/flis/IN` while fordelerd runs: a transfer to flis waits (5001, the error
    names the folder), nothing is written elsewhere; `mkdir` it again and the transfer is
    delivered there without a restart, and flis's next session lists it."""
    d = make(daemons, keyset)
    flis_in = d.in_dir(FLIS)
    shutil.rmtree(flis_in)
    name, data = fresh("in-removed"), os.urandom(40_000)
    send(d, keyset, name, data)
    operator_sees_failure(d, name, "accounts/flis/IN")
    assert not (d.in_dir(KMD) / (name + ".sftpreceipt")).exists()
    flis_in.mkdir(mode=0o750)
    r = wait_receipt(d, KMD, name, timeout=90)  # back-off: at most a minute between attempts
    assert "Receipt" in r, r
    assert (flis_in / name).read_bytes() == data
    assert (flis_in / (name + ".metadata")).exists()
    recipient_sees(d, keyset, FLIS, [name, name + ".metadata"])
    audit_verify(d)


def test_recipient_in_renamed_away_and_replaced(daemons, keyset):
    """`mv IN IN.old && mkdir IN` (an operator clearing a folder): later deliveries go to the new
    IN, the one flis's sessions show from then on (also a session opened before), never into
    IN.old where nobody looks."""
    d = make(daemons, keyset)
    flis_in = d.in_dir(FLIS)
    before, before_data = fresh("before"), os.urandom(10_000)
    send(d, keyset, before, before_data)
    assert "Receipt" in wait_receipt(d, KMD, before)
    old = flis_in.with_name("IN.old")
    with d.sftp(FLIS, key(keyset, FLIS)) as earlier:  # a session opened before the change
        assert before in earlier.listdir("IN")
        os.rename(flis_in, old)
        flis_in.mkdir(mode=0o750)
        name, data = fresh("after-mv"), os.urandom(40_000)
        send(d, keyset, name, data)
        assert "Receipt" in wait_receipt(d, KMD, name)
        assert (flis_in / name).read_bytes() == data
        assert (flis_in / (name + ".metadata")).exists()
        assert sorted(os.listdir(old)) == sorted([before, before + ".metadata"])
        assert sorted(earlier.listdir("IN")) == sorted([name, name + ".metadata"])
        with earlier.open(f"IN/{name}", "rb") as f:
            assert f.read() == data
    recipient_sees(d, keyset, FLIS, [name, name + ".metadata"])


def test_recipient_in_replaced_by_a_symlink_then_reload_restores_it(daemons, keyset, tmp_path):
    """IN replaced by a symlink to a folder elsewhere: nothing is placed through it (5001); the
    operator removes the symlink and reloads (SIGHUP), which makes IN again; the transfer is
    delivered there."""
    d = make(daemons, keyset)
    flis_in = d.in_dir(FLIS)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.rmtree(flis_in)
    flis_in.symlink_to(elsewhere)
    name, data = fresh("in-symlink"), os.urandom(20_000)
    send(d, keyset, name, data)
    operator_sees_failure(d, name, "accounts/flis/IN")
    assert os.listdir(elsewhere) == []
    flis_in.unlink()
    mark = d.stderr_size()
    d.send_signal(signal.SIGHUP)
    d.wait_log(r"event=reloaded", since=mark)
    assert flis_in.is_dir() and not flis_in.is_symlink()
    assert "Receipt" in wait_receipt(d, KMD, name, timeout=90)
    assert (flis_in / name).read_bytes() == data
    assert os.listdir(elsewhere) == []
    recipient_sees(d, keyset, FLIS, [name])


def test_sender_removed_after_its_transfer_was_accepted(daemons, keyset):
    """The transfer is recorded `accepted` (trigger first, then its data) when fordelerd dies;
    the operator removes the sender and its routes, then starts fordelerd: the accepted transfer
    is delivered as routed when accepted, with its receipt, instead of waiting for ever for a
    file no session can hold open."""
    d = make(daemons, keyset, start=False)
    d.start(env={"FORDELER_CRASH_AT": "after_accepted"})
    make_jails(d, keyset)
    name, data = fresh("sender-gone"), os.urandom(30_000)
    with d.sftp(KMD, key(keyset, KMD)) as s:
        s.putfo(io.BytesIO(trigger_xml(name, len(data), KMD, [FLIS], inf_ref=OEKONOMI)),
                f"OUT/{name}.trigger", confirm=False)
        time.sleep(0.5)  # the trigger is taken and waits for its data
        try:
            s.putfo(io.BytesIO(data), f"OUT/{name}", confirm=False)
        except (OSError, EOFError):
            pass  # the daemon may die before the reply
    assert d.wait_exit(20) == 86, "fordelerd did not stop at after_accepted"
    d.accounts = [a for a in accounts(keyset) if a.id != KMD]
    d.extra = CONFIG_EXTRA + data_areas_toml()
    d.write_config()
    d.start()
    receipt = Path(d.in_dir(KMD)) / (name + ".sftpreceipt")
    wait_until(receipt.exists, 30, f"receipt {receipt}")
    assert (d.in_dir(FLIS) / name).read_bytes() == data
    assert name not in os.listdir(d.out_dir(KMD))
    rows = [t for t in cli_json(d, "transfers") if t["name"] == name]
    assert [t["state"] for t in rows] == ["delivered"], rows


def test_spool_removed_is_fordelers_failure_not_the_senders(daemons, keyset):
    """`rm -r spool` while fordelerd runs: taking a trigger into the spool fails with ENOENT,
    which is not the sender having removed its trigger: no rejection (it used to be 1001 with a
    receipt, twice, and the trigger stayed in OUT to be rejected again at every rescan), but 5001
    naming the folder, retried; once the folder is made again and fordelerd restarted, the
    transfer is delivered, once, with one receipt."""
    d = make(daemons, keyset)
    shutil.rmtree(d.state / "spool")
    name, data = fresh("spool-gone"), os.urandom(20_000)
    send(d, keyset, name, data)
    uuid = operator_sees_failure(d, name, "spool")
    time.sleep(1)  # a few attempts more
    assert not (d.in_dir(KMD) / (name + ".sftpreceipt")).exists()
    assert sorted(os.listdir(d.out_dir(KMD))) == sorted([name, name + ".trigger"])
    (d.state / "spool").mkdir(mode=0o750)
    d.stop()
    d.start()
    r = wait_receipt(d, KMD, name)
    assert "Receipt" in r and r["FileTransferUUID"] == uuid, r
    assert (d.in_dir(FLIS) / name).read_bytes() == data
    assert [t["uuid"] for t in cli_json(d, "transfers") if t["name"] == name] == [uuid]
    assert os.listdir(d.out_dir(KMD)) == []
    audit_verify(d)


def test_recipient_removed_while_its_delivery_waits(daemons, mounts, keyset):  # noqa: F811
    """flis's IN is unwritable, so a transfer to flis waits (5001); the operator removes flis
    (and routes the data area to lis-x instead) and reloads, then IN is writable again: the
    transfer is not placed in the IN of an account nobody can log in to any more; it is rejected
    as a whole with 2001, its files quarantined, and the sender told by its receipt."""
    d = make(daemons, keyset)
    mounts.chattr_i(d.in_dir(FLIS))
    name, data = fresh("recipient-gone"), os.urandom(20_000)
    send(d, keyset, name, data)
    uuid = operator_sees_failure(d, name, "")
    d.accounts = [a for a in accounts(keyset) if a.id != FLIS]
    d.extra = CONFIG_EXTRA + ROUTES.replace(f'recipients = ["{FLIS}"]',
                                            f'recipients = ["{LIS}"]') + data_areas_toml()
    d.write_config()
    mark = d.stderr_size()
    d.send_signal(signal.SIGHUP)
    d.wait_log(r"event=reloaded", since=mark)
    mounts.chattr_clear(d.in_dir(FLIS))
    r = wait_receipt(d, KMD, name, timeout=90)
    assert r["FileTransferUUID"] == uuid, r
    assert r["ErrorMessage"]["ErrorCode"] == "2001", r
    assert os.listdir(d.in_dir(FLIS)) == []
    assert os.listdir(d.in_dir(LIS)) == []
    shown = cli_json(d, "show", uuid)
    assert shown["state"] == "rejected" and shown["deliveries"] == [], shown
    assert uuid in [q["uuid"] for q in cli_json(d, "quarantine", "list")]
    audit_verify(d)
