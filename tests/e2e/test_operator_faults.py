"""What an operator (or the machine) does to a running fordelerd, against the real daemon:

* a recipient's IN removed, renamed away and recreated, or replaced by a symlink while transfers
  are in flight: fordeler never writes into the old folder (where nobody would find the file) nor
  through the symlink; the operator sees 5001 naming the folder; once the folder is back (made by
  hand, or by a reload), the transfer completes and the recipient's next session sees it; a
  reload runs the transfers waiting out their back-off at once;
* a reload that removes the sender of a transfer already accepted: it is delivered as routed when
  accepted (and not left polling for ever, invisibly, for a file nobody can hold open);
* a reload that removes a recipient of a transfer still waiting to be placed: the transfer is
  rejected (2001, delivered to nobody, quarantined), not placed where nobody can fetch it;
* fordeler's own folders (spool, staging, quarantine) removed, moved away, replaced by a symlink
  or covered by another filesystem: fordeler's own failure (5001, naming the folder), never a
  rejection of the sender's file, nothing written into the old folder or through the symlink;
  once the folder is back (made by hand, or by a reload) the waiting transfers go on by
  themselves, without a restart; a transfer whose data was lost with a removed spool ends with
  5001 in its receipt instead of waiting for ever;
* accounts/, or one account's IN or OUT, on another filesystem than the spool (a volume mounted
  there): fordelerd refuses to start, and a reload adding an account whose folder is such a
  mount is refused, rather than taking uploads it can never deliver (5001 for ever).

Faults of the disk, the audit database and an unwritable IN are in test_faults.py; crashes at
each step in test_crash.py.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import paramiko
import pytest

from harness import (AccountSpec, cli_json, data_areas_toml, fordeler_path, refused_start,
                     trigger_xml, wait_until)
from test_faults import (FLIS, KMD, OEKONOMI, PERSONALE, ROUTES, accounts, audit_verify, fresh,
                         key, make_jails, send, wait_receipt)
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


def test_spool_removed_is_fordelers_failure_and_goes_on_once_made_again(daemons, keyset):
    """`rm -r spool` while fordelerd runs: taking a trigger into the spool fails with ENOENT,
    which is not the sender having removed its trigger: no rejection (it used to be 1001 with a
    receipt, twice, and the trigger stayed in OUT to be rejected again at every rescan), but 5001
    naming the folder, retried; once the operator makes the folder again, without a restart, the
    transfer is delivered, once, with one receipt, and so are new transfers."""
    d = make(daemons, keyset)
    shutil.rmtree(d.state / "spool")
    name, data = fresh("spool-gone"), os.urandom(20_000)
    send(d, keyset, name, data)
    uuid = operator_sees_failure(d, name, "the storage folder spool")
    time.sleep(1)  # a few attempts more
    assert not (d.in_dir(KMD) / (name + ".sftpreceipt")).exists()
    assert sorted(os.listdir(d.out_dir(KMD))) == sorted([name, name + ".trigger"])
    mark = d.stderr_size()
    (d.state / "spool").mkdir(mode=0o750)
    r = wait_receipt(d, KMD, name)
    assert "Receipt" in r and r["FileTransferUUID"] == uuid, r
    d.wait_log(r"event=storage_reopened folder=spool", since=mark)
    assert (d.in_dir(FLIS) / name).read_bytes() == data
    assert [t["uuid"] for t in cli_json(d, "transfers") if t["name"] == name] == [uuid]
    assert os.listdir(d.out_dir(KMD)) == []
    later, later_data = fresh("spool-back"), os.urandom(10_000)
    send(d, keyset, later, later_data)
    assert "Receipt" in wait_receipt(d, KMD, later)
    assert (d.in_dir(FLIS) / later).read_bytes() == later_data
    assert d.running()
    audit_verify(d)


def test_spool_moved_away_is_never_written_into(daemons, keyset):
    """`mv spool spool.old && mkdir spool` while a transfer waits to be placed (flis's IN is
    missing): nothing more is written into spool.old, neither by that transfer nor by a new one;
    the waiting transfer's data, left in spool.old, is taken over (a hard link into the new spool)
    and delivered once IN is back; the new transfer is spooled in the new folder."""
    d = make(daemons, keyset)
    shutil.rmtree(d.in_dir(FLIS))
    name, data = fresh("waits"), os.urandom(30_000)
    send(d, keyset, name, data)
    uuid = operator_sees_failure(d, name, "accounts/flis/IN")
    spool, old = d.state / "spool", d.state / "spool.old"
    assert uuid in os.listdir(spool)
    os.rename(spool, old)
    spool.mkdir(mode=0o750)
    left = sorted(os.listdir(old))
    time.sleep(1.5)  # noticed at once (the folder watch), at the latest within a second
    later, later_data = fresh("after-mv"), os.urandom(10_000)
    send(d, keyset, later, later_data, inf_ref=PERSONALE, recipient=LIS)
    assert "Receipt" in wait_receipt(d, KMD, later)
    d.in_dir(FLIS).mkdir(mode=0o750)
    r = wait_receipt(d, KMD, name, timeout=90)  # back-off: at most a minute between attempts
    assert "Receipt" in r and r["FileTransferUUID"] == uuid, r
    assert (d.in_dir(FLIS) / name).read_bytes() == data
    assert (d.in_dir(LIS) / later).read_bytes() == later_data
    assert sorted(os.listdir(old)) == left, "fordelerd wrote into the spool moved away"
    assert (spool / uuid).stat().st_ino == (old / uuid).stat().st_ino
    later_uuid = [t["uuid"] for t in cli_json(d, "transfers") if t["name"] == later]
    assert len(later_uuid) == 1 and (spool / later_uuid[0]).exists()
    audit_verify(d)


def test_data_lost_with_a_removed_spool_ends_with_5001_not_waiting_for_ever(daemons, keyset):
    """A transfer accepted, its data in the spool, waits to be placed (flis's IN is missing); the
    operator removes the spool, then reloads, which makes spool and IN again: the data is gone, so
    the transfer cannot be delivered; it ends (rejected, delivered to nobody) with 5001 and a
    receipt telling the sender to send it again, rather than waiting for ever."""
    d = make(daemons, keyset)
    shutil.rmtree(d.in_dir(FLIS))
    name, data = fresh("lost"), os.urandom(20_000)
    send(d, keyset, name, data)
    uuid = operator_sees_failure(d, name, "accounts/flis/IN")
    shutil.rmtree(d.state / "spool")
    mark = d.stderr_size()
    d.send_signal(signal.SIGHUP)
    d.wait_log(r"event=reloaded", since=mark)
    r = wait_receipt(d, KMD, name, timeout=90)
    assert (d.state / "spool").is_dir() and d.in_dir(FLIS).is_dir()
    assert r["FileTransferUUID"] == uuid, r
    assert r["ErrorMessage"]["ErrorCode"] == "5001", r
    assert "send the file and its trigger again" in r["ErrorMessage"]["ErrorDescription"], r
    assert os.listdir(d.in_dir(FLIS)) == []
    shown = cli_json(d, "show", uuid)
    assert shown["state"] == "rejected" and shown["deliveries"] == [], shown
    assert shown["error_name"] == "INTERNAL_ERROR", shown
    audit_verify(d)


def test_staging_removed_then_made_again_goes_on(daemons, keyset):
    """`rm -r staging`: a transfer waits with 5001 naming staging; `mkdir staging` and it is
    delivered, without a restart."""
    d = make(daemons, keyset)
    shutil.rmtree(d.state / "staging")
    name, data = fresh("staging-gone"), os.urandom(20_000)
    send(d, keyset, name, data)
    uuid = operator_sees_failure(d, name, "the storage folder staging")
    assert not (d.in_dir(FLIS) / (name + ".metadata")).exists()
    (d.state / "staging").mkdir(mode=0o750)
    r = wait_receipt(d, KMD, name, timeout=30)
    assert "Receipt" in r and r["FileTransferUUID"] == uuid, r
    assert (d.in_dir(FLIS) / name).read_bytes() == data
    assert (d.in_dir(FLIS) / (name + ".metadata")).exists()
    recipient_sees(d, keyset, FLIS, [name, name + ".metadata"])
    audit_verify(d)


def test_quarantine_replaced_by_a_symlink_then_reload_restores_it(daemons, keyset, tmp_path):
    """quarantine replaced by a symlink to a folder elsewhere: a rejected transfer (unknown
    recipient) is not moved through it; it waits, the log naming the folder; the operator removes
    the symlink and reloads, which makes quarantine again: the rejection completes there, with
    its receipt (2001)."""
    d = make(daemons, keyset)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    quarantine = d.state / "quarantine"
    shutil.rmtree(quarantine)
    quarantine.symlink_to(elsewhere)
    mark = d.stderr_size()
    name, data = fresh("q-symlink"), os.urandom(5_000)
    send(d, keyset, name, data, recipient="nobody")
    d.wait_log(r"event=failed transfer=\S+ step=rejecting .*the storage folder quarantine",
               since=mark, timeout=30)
    time.sleep(1)
    assert os.listdir(elsewhere) == []
    assert not (d.in_dir(KMD) / (name + ".sftpreceipt")).exists()
    quarantine.unlink()
    mark = d.stderr_size()
    d.send_signal(signal.SIGHUP)
    d.wait_log(r"event=reloaded", since=mark)
    r = wait_receipt(d, KMD, name, timeout=30)
    assert r["ErrorMessage"]["ErrorCode"] == "2001", r
    assert quarantine.is_dir() and not quarantine.is_symlink()
    assert sorted(os.listdir(quarantine / r["FileTransferUUID"])) == sorted(
        [name, name + ".trigger", "receipt.xml"])
    assert os.listdir(elsewhere) == []
    audit_verify(d)


def test_staging_covered_by_another_filesystem_is_refused(daemons, mounts, keyset):  # noqa: F811
    """A tmpfs mounted on staging: fordeler hard-links between staging, the spool and the IN
    folders, which another filesystem cannot do, so it stops using staging (as it refuses to start
    with one): the transfer waits with 5001 naming staging; once it is unmounted, the transfer goes
    on by itself."""
    d = make(daemons, keyset)
    staging = d.state / "staging"
    mounts.tmpfs(staging, "1m")
    time.sleep(1.5)  # no inotify event for a mount: noticed within a second
    name, data = fresh("staging-tmpfs"), os.urandom(20_000)
    send(d, keyset, name, data)
    operator_sees_failure(d, name, "the storage folder staging is on another filesystem")
    d.wait_log(r"event=storage_failed folder=staging .*another filesystem")
    assert os.listdir(staging) == []
    mounts.undo()
    r = wait_receipt(d, KMD, name, timeout=30)
    assert "Receipt" in r, r
    assert (d.in_dir(FLIS) / name).read_bytes() == data


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


def another_filesystem(mounts, where: Path) -> None:  # noqa: F811
    """A 16 MiB tmpfs mounted at `where` (made if missing), unmounted when the test ends."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs for another filesystem needs root")
    mounts.tmpfs(where, "16m")  # skips when the mount fails (no CAP_SYS_ADMIN)


def assert_names_both_filesystems(message: str, folder: str) -> None:
    assert folder in message and "another filesystem" in message, message
    devices = re.findall(r"device (\d+:\d+)", message)
    assert len(devices) == 2 and devices[0] != devices[1], message


@pytest.mark.parametrize("where", ["accounts", f"accounts/{FLIS}/IN", f"accounts/{KMD}/OUT"])
def test_jails_on_another_filesystem_refuse_the_start(daemons, mounts, keyset,  # noqa: F811
                                                      where):
    """Contract §9: the jails and the spool on one filesystem, or no start. Files move between
    them by rename and hard link: with a jail elsewhere the daemon would take uploads and then
    fail every transfer with 5001, and senders would never get a receipt."""
    d = make(daemons, keyset, start=False)
    another_filesystem(mounts, d.state / where)
    # `fordeler check-config` says so before anyone tries to start it.
    checked = subprocess.run([fordeler_path(), "--config", str(d.config_path), "check-config"],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 2, checked
    assert_names_both_filesystems(checked.stderr, f"{d.state}/{where}")
    err = refused_start(d.config_path, f"with {where} on another filesystem")
    m = re.search(r"event=not_started error=(.*)", err)
    assert m, err
    assert_names_both_filesystems(m.group(1), f"{d.state}/{where}")
    assert "event=listening" not in err, err


def test_reload_adding_an_account_on_another_filesystem_is_refused(daemons, mounts,  # noqa: F811
                                                                   keyset):
    """A reload that adds an account whose IN is a mount of another filesystem is refused like
    any bad reload: the running configuration stays, the new account cannot log in."""
    d = make(daemons, keyset)
    newcomer = "lis-new"
    another_filesystem(mounts, d.state / "accounts" / newcomer / "IN")
    d.accounts = accounts(keyset) + [AccountSpec(newcomer, [key(keyset, LIS)])]
    d.write_config()
    mark = d.stderr_size()
    d.send_signal(signal.SIGHUP)
    m = d.wait_log(r"event=reload_refused error=(.*)", since=mark)
    assert_names_both_filesystems(m.group(1), f"{d.state}/accounts/{newcomer}/IN")
    assert "event=reloaded" not in d.stderr_text()[mark:]
    assert d.running()
    with pytest.raises(paramiko.AuthenticationException):
        d.sftp(newcomer, key(keyset, LIS)).close()
    name, data = fresh("after-refused-reload"), os.urandom(10_000)
    send(d, keyset, name, data)
    assert "Receipt" in wait_receipt(d, KMD, name)


def test_a_reload_runs_the_transfers_waiting_out_their_back_off(daemons, keyset):
    """A transfer failing on a missing IN backs off (up to a minute between attempts). A reload
    makes IN again and runs the waiting transfer at once, rather than when its back-off ends: the
    reload logs `event=woken by=reload`, and the step that goes through records `retried` with
    `by=reload` (`fordeler show`)."""
    d = make(daemons, keyset)
    flis_in = d.in_dir(FLIS)
    shutil.rmtree(flis_in)
    name, data = fresh("reload-wakes"), os.urandom(10_000)
    send(d, keyset, name, data)
    uuid = operator_sees_failure(d, name, "accounts/flis/IN")
    # Reload while the transfer waits out a back-off of 6.4 s or more, so that the reload, not
    # its timer, runs it.
    d.wait_log(rf"event=failed transfer={uuid} .*retry_in_ms=(6400|12800|25600|51200|60000)",
               timeout=60)
    mark = d.stderr_size()
    d.send_signal(signal.SIGHUP)
    d.wait_log(r"event=reloaded", since=mark)
    d.wait_log(r"event=woken by=reload transfers=1", since=mark)
    assert "Receipt" in wait_receipt(d, KMD, name, timeout=30)
    assert (flis_in / name).read_bytes() == data
    shown = cli_json(d, "show", uuid)
    retried = [e for e in shown["events"] if e["kind"] == "retried"]
    assert len(retried) == 1 and "by=reload" in retried[0]["detail"], shown["events"]
    audit_verify(d)
