"""Faults against the real daemon (issue 6), with real filesystems rather than mocks:

* a small tmpfs as the storage root, filled up: an upload that hits ENOSPC gets a failure status
  and its partial file is never routed, the daemon keeps serving; a delivery that hits ENOSPC
  waits and retries (5001 visible to the operator in `fordeler transfers` and `status`), nothing
  half-visible in /IN, and it completes once space is freed;
* the audit database made unwritable mid-run (`chattr +i` on the database and its WAL: root
  ignores mode bits, and a read-only remount is refused while SQLite holds the file open) and
  held busy by another writer: delivery pauses, resumes afterwards, no event is lost
  (`fordeler audit verify` passes, every transfer is accounted for);
* a recipient's /IN made immutable (`chattr +i`): that delivery retries with back-off while
  another route's transfer completes.

Unit-level fault injection through Env (fsync, rename, write, ENOSPC) is in
delivery/durability_test.cc and pipeline_test.cc. Each test skips, saying why, when the machine
does not allow mount or chattr. Everything mounted or made immutable is undone in a finalizer.
"""

from __future__ import annotations

import io
import json
import os
import re
import sqlite3
import subprocess
import time
import uuid as uuidlib
from pathlib import Path

import pytest

from harness import (AccountSpec, data_areas_toml, db_rows, fordeler_path, receipt_of,
                     trigger_xml, verify_event_chain, wait_transfer, wait_until)

KMD = "kmd-oekonomi"
FLIS = "flis"
LIS = "lis-x"
KEY_NAMES = ["kmd_ed25519", "flis_ed25519", "lis_ed25519"]
KEYS = {KMD: "kmd_ed25519", FLIS: "flis_ed25519", LIS: "lis_ed25519"}
OEKONOMI = "FLISOekonomiAflever_1"
PERSONALE = "FLISPersonaleAflever_1"

ROUTES = f"""
[[route]]
id = "oekonomi-kmd-flis"
data_area = "oekonomi"
sender = "{KMD}"
authorities = ["*"]
recipients = ["{FLIS}"]

[[route]]
id = "personale-kmd-lis"
data_area = "personale"
sender = "{KMD}"
authorities = ["*"]
recipients = ["{LIS}"]
"""


def accounts(keyset) -> list[AccountSpec]:
    return [AccountSpec(a, [keyset.key(k)], extra='authority = "urn:oio:cvr-nr:55133018"')
            for a, k in KEYS.items()]


def key(keyset, account: str) -> Path:
    return keyset.key(KEYS[account])


def fresh(tag: str) -> str:
    return f"{tag}-{uuidlib.uuid4().hex[:8]}.csv"


def sh(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)


def cli_json(d, *args: str) -> tuple[int, object]:
    r = subprocess.run([fordeler_path(), "--config", str(d.config_path), *args, "--json"],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode in (0, 1), f"fordeler {args}: {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r.returncode, json.loads(r.stdout)


def create_with_db_elsewhere(daemons, keyset, db_dir: str = "db", start: bool = True):
    """A daemon whose audit database lies in `workdir/<db_dir>`, not under the storage root."""
    d = daemons.create(accounts(keyset), start=False,
                       extra='[delivery]\ntrigger_grace = "2s"\n' + ROUTES + data_areas_toml())
    (d.workdir / db_dir).mkdir(exist_ok=True)
    text = d.config_path.read_text().replace('path = "state/audit.db"',
                                             f'path = "{db_dir}/audit.db"')
    d.write_config(text)
    d.db = d.workdir / db_dir / "audit.db"
    if start:
        d.start()
        make_jails(d, keyset)
    return d


def make_jails(d, keyset) -> None:
    """Logs in once as every account: each jail (created at start-up, before the folder watcher
    watches it) serves a session before the test begins."""
    for a in KEYS:
        with d.sftp(a, key(keyset, a)) as s:
            s.listdir("/")
    time.sleep(0.5)


def wait_receipt(d, sender: str, name: str, timeout: float = 30.0) -> dict:
    """harness.wait_receipt for a daemon whose database is `d.db` (not under the storage root)."""
    path = d.in_dir(sender) / (name + ".sftpreceipt")
    wait_until(path.exists, timeout, f"receipt {path}")
    receipt = receipt_of(path)
    wait_transfer(d.db, receipt["FileTransferUUID"], timeout)
    return receipt


class Mounts:
    """tmpfs mounts and immutable flags made by a test, undone at its end."""

    def __init__(self):
        self.mounted: list[Path] = []
        self.immutable: list[Path] = []

    def tmpfs(self, where: Path, size: str) -> None:
        where.mkdir(parents=True, exist_ok=True)
        r = sh("mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where))
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN): {r.stderr}")
        self.mounted.append(where)

    def chattr_i(self, path: Path) -> None:
        r = sh("chattr", "+i", str(path))
        if r.returncode != 0:
            pytest.skip(f"chattr +i not possible on {path} (needs root and ext4/xfs/btrfs/"
                        f"tmpfs ≥ 6.0): {r.stderr}")
        self.immutable.append(path)

    def chattr_clear(self, path: Path) -> None:
        sh("chattr", "-i", str(path))
        if path in self.immutable:
            self.immutable.remove(path)

    def undo(self) -> None:
        for p in reversed(self.immutable):
            sh("chattr", "-i", str(p))
        self.immutable.clear()
        for p in reversed(self.mounted):
            r = sh("umount", str(p))
            if r.returncode != 0:
                sh("umount", "-l", str(p))
        self.mounted.clear()


@pytest.fixture
def mounts(daemons):
    """Runs its finalizer after the daemons' (fixture order): daemons stop first, then unmount."""
    m = Mounts()
    yield m
    m.undo()


# --------------------------------------------------------------------------------------------
# (a) Disk full


def fill(path: Path, leave: int = 0) -> None:
    """Writes `path` until the filesystem is full, then gives back `leave` bytes."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        chunk = 1 << 20
        while chunk >= 4096:
            try:
                os.write(fd, b"\0" * chunk)
            except OSError:
                chunk //= 2
    finally:
        os.close(fd)
    if leave:
        os.truncate(path, max(0, path.stat().st_size - leave))


def assert_upload_fails(s, path: str, data: bytes) -> None:
    """Writes `data` with one WRITE at a time, each reply checked (paramiko's pipelined putfo
    does not report a failed WRITE): some WRITE or the CLOSE must get a failure status."""
    f = s.open(path, "wb")
    f.set_pipelined(False)
    try:
        for i in range(0, len(data), 32768):
            f.write(data[i:i + 32768])
            f.flush()
    except IOError:
        attempt_close(f)
        return
    try:
        f.close()
    except IOError:
        return
    pytest.fail(f"uploading {len(data)} bytes to {path} succeeded on a full disk")


def attempt_close(f) -> None:
    try:
        f.close()
    except IOError:
        pass


def in_names(d, account: str) -> list[str]:
    return sorted(os.listdir(d.in_dir(account)))


def test_disk_full_during_upload_and_during_delivery(daemons, mounts, keyset):
    """Storage root on an 8 MiB tmpfs (the audit database elsewhere).
    Upload: with ~1 MiB free, a 3 MiB upload fails with a status; its trigger (naming the full
    size) is rejected, the partial bytes reach nobody; the daemon keeps serving.
    Delivery: a 2 MiB file placed in OUT by other means must be copied into the spool; with the
    disk full the copy fails: the transfer is retried, the operator sees 5001, /IN shows nothing;
    once space is freed it is delivered whole, with its metadata."""
    d = create_with_db_elsewhere(daemons, keyset, start=False)
    mounts.tmpfs(d.state, "8m")
    d.start()
    make_jails(d, keyset)
    filler = d.state / "filler"

    # -- upload hits ENOSPC
    fill(filler, leave=1 << 20)
    name = fresh("full-upload")
    data = os.urandom(3 << 20)
    with d.sftp(KMD, key(keyset, KMD)) as s:
        assert_upload_fails(s, f"OUT/{name}", data)
    os.unlink(filler)
    with d.sftp(KMD, key(keyset, KMD)) as s:
        s.putfo(io.BytesIO(trigger_xml(name, len(data), KMD, [FLIS], inf_ref=OEKONOMI)),
                f"OUT/{name}.trigger", confirm=False)
    r = wait_receipt(d, KMD, name, timeout=30)
    assert r["ErrorMessage"]["ErrorCode"] in ("1004", "1005"), r
    assert name not in in_names(d, FLIS)

    # -- the next transfer works
    ok_name = fresh("after-full")
    ok_data = os.urandom(1 << 20)
    with d.sftp(KMD, key(keyset, KMD)) as s:
        s.putfo(io.BytesIO(ok_data), f"OUT/{ok_name}", confirm=False)
        s.putfo(io.BytesIO(trigger_xml(ok_name, len(ok_data), KMD, [FLIS], inf_ref=OEKONOMI)),
                f"OUT/{ok_name}.trigger", confirm=False)
    assert "Receipt" in wait_receipt(d, KMD, ok_name, timeout=30)
    assert (d.in_dir(FLIS) / ok_name).read_bytes() == ok_data

    # -- delivery hits ENOSPC: a file that arrived by other means must be copied
    name = fresh("full-delivery")
    data = os.urandom(2 << 20)
    (d.out_dir(KMD) / name).write_bytes(data)
    fill(filler, leave=256 << 10)  # room for the trigger, not for the copy
    before = d.stderr_size()
    with d.sftp(KMD, key(keyset, KMD)) as s:
        s.putfo(io.BytesIO(trigger_xml(name, len(data), KMD, [FLIS], inf_ref=OEKONOMI)),
                f"OUT/{name}.trigger", confirm=False)
    d.wait_log(r"event=failed transfer=\S+ .*(No space|ENOSPC|space)", since=before, timeout=20)
    d.wait_log(r"event=failed transfer=\S+ .*attempt=2", since=before, timeout=20)  # retried
    uuid = None

    def operator_sees_5001() -> bool:
        nonlocal uuid
        _, rows = cli_json(d, "transfers")
        mine = [t for t in rows if t["name"] == name]
        if mine and mine[0]["error_code"] == 5001:
            uuid = mine[0]["uuid"]
            return True
        return False

    wait_until(operator_sees_5001, 20, "fordeler transfers to show 5001")
    rc, status = cli_json(d, "status")
    route = [r for r in status if r["route"] == "oekonomi-kmd-flis"][0]
    assert route["failed_24h"] >= 1, status
    assert rc == 1, "status must be bad news while a transfer fails with 5001"
    assert name not in in_names(d, FLIS) and (name + ".metadata") not in in_names(d, FLIS)
    assert not [n for n in in_names(d, FLIS) if n.startswith(".") or n.endswith(".part")]
    assert not (d.in_dir(KMD) / (name + ".sftpreceipt")).exists()
    os.unlink(filler)
    r = wait_receipt(d, KMD, name, timeout=60)  # back-off is at most 60 s, usually far less
    assert "Receipt" in r and r["FileTransferUUID"] == uuid, r
    assert (d.in_dir(FLIS) / name).read_bytes() == data
    assert (d.in_dir(FLIS) / (name + ".metadata")).exists()
    assert verify_event_chain(d.db) > 0


# --------------------------------------------------------------------------------------------
# (b) The audit database unwritable or busy


def send(d, keyset, name: str, data: bytes, inf_ref: str = OEKONOMI,
         recipient: str = FLIS) -> None:
    with d.sftp(KMD, key(keyset, KMD)) as s:
        s.putfo(io.BytesIO(data), f"OUT/{name}", confirm=False)
        s.putfo(io.BytesIO(trigger_xml(name, len(data), KMD, [recipient], inf_ref=inf_ref)),
                f"OUT/{name}.trigger", confirm=False)


def assert_paused(d, names: list[str], seconds: float = 3.0) -> None:
    """For `seconds`: none of `names` is delivered (its metadata, which tells a recipient it may
    fetch the data, contract §5, does not appear) and none gets a receipt. The data itself may
    already be linked into /IN: that half of the placement runs alongside the commit recording
    the deliveries (docs/architecture.md), and the metadata waits for that commit."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for n in names:
            assert not (d.in_dir(FLIS) / (n + ".metadata")).exists(), \
                f"{n} delivered while the audit log is down"
            assert not (d.in_dir(KMD) / (n + ".sftpreceipt")).exists(), f"receipt for {n}"
        time.sleep(0.1)


def audit_verify(d) -> None:
    r = subprocess.run([fordeler_path(), "--config", str(d.config_path), "audit", "verify"],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"audit verify: {r.returncode}\n{r.stdout}\n{r.stderr}"


def delivered_everything(d, keyset, names: dict[str, bytes], timeout: float = 60) -> None:
    for n, data in names.items():
        r = wait_receipt(d, KMD, n, timeout=timeout)
        assert "Receipt" in r, r
        assert (d.in_dir(FLIS) / n).read_bytes() == data
        rows = db_rows(d.db, "SELECT kind FROM events WHERE transfer_uuid = ? ORDER BY seq",
                       (r["FileTransferUUID"],))
        kinds = [row["kind"] for row in rows]
        for k in ("received", "delivered", "receipt_sent"):
            assert k in kinds, f"{n}: event {k} missing from {kinds}"
    with d.sftp(KMD, key(keyset, KMD)) as s:  # the daemon serves throughout
        s.listdir("IN")
    verify_event_chain(d.db)
    audit_verify(d)


def test_audit_database_made_unwritable_mid_run(daemons, mounts, keyset):
    """`chattr +i` on audit.db and its WAL while the daemon runs: SQLite's writes fail; transfers
    sent meanwhile are neither delivered (no metadata) nor receipted (nothing delivered without its
    record);
    logins still work; after `chattr -i` they complete and the hash chain verifies."""
    d = create_with_db_elsewhere(daemons, keyset)
    warm = {fresh("warm"): b"warm\n"}
    for n, data in warm.items():
        send(d, keyset, n, data)
    delivered_everything(d, keyset, warm)
    wal = Path(str(d.db) + "-wal")
    before = d.stderr_size()
    for p in (d.db, wal):
        if p.exists():
            mounts.chattr_i(p)
    names = {fresh("ro"): os.urandom(50_000) for _ in range(3)}
    for n, data in names.items():
        send(d, keyset, n, data)
    d.wait_log(r"event=audit_retry", since=before, timeout=20)
    assert_paused(d, list(names))
    for p in (d.db, wal):
        mounts.chattr_clear(p)
    delivered_everything(d, keyset, names)


def test_audit_database_busy(daemons, keyset):
    """Another process holds the write lock (`BEGIN EXCLUSIVE`) for a few seconds: delivery
    waits, then resumes; no event lost."""
    d = create_with_db_elsewhere(daemons, keyset)
    warm = {fresh("warm"): b"warm\n"}
    for n, data in warm.items():
        send(d, keyset, n, data)
    delivered_everything(d, keyset, warm, timeout=15)
    con = sqlite3.connect(str(d.db), timeout=10, isolation_level=None)
    try:
        con.execute("BEGIN EXCLUSIVE")
        names = {fresh("busy"): os.urandom(50_000) for _ in range(3)}
        for n, data in names.items():
            send(d, keyset, n, data)
        assert_paused(d, list(names), seconds=4)
    finally:
        con.execute("ROLLBACK")
        con.close()
    delivered_everything(d, keyset, names)


# --------------------------------------------------------------------------------------------
# (c) A recipient's IN unwritable


def test_unwritable_recipient_retries_while_others_continue(daemons, mounts, keyset):
    """flis's IN made immutable: a transfer to flis fails (5001), is retried with back-off
    (growing retry_in_ms), while a transfer on another route (to lis-x) is delivered; once IN is
    writable again the first one completes."""
    d = create_with_db_elsewhere(daemons, keyset)
    mounts.chattr_i(d.in_dir(FLIS))
    stuck, data = fresh("stuck"), os.urandom(30_000)
    before = d.stderr_size()
    send(d, keyset, stuck, data)
    d.wait_log(r"event=failed transfer=\S+ .*attempt=3 retry_in_ms=(\d+)", since=before,
               timeout=30)
    log = d.stderr_path.read_bytes()[before:].decode("utf-8", "replace")
    delays = [int(x) for x in re.findall(r"event=failed transfer=\S+ .*?retry_in_ms=(\d+)", log)]
    assert delays == sorted(delays) and delays[-1] > delays[0], f"no back-off: {delays}"
    other, other_data = fresh("other-route"), os.urandom(30_000)
    send(d, keyset, other, other_data, inf_ref=PERSONALE, recipient=LIS)
    r = wait_receipt(d, KMD, other, timeout=30)
    assert "Receipt" in r, r
    assert (d.in_dir(LIS) / other).read_bytes() == other_data
    assert not (d.in_dir(FLIS) / stuck).exists()
    _, rows = cli_json(d, "transfers")
    assert [t["error_code"] for t in rows if t["name"] == stuck] == [5001], rows
    mounts.chattr_clear(d.in_dir(FLIS))
    r = wait_receipt(d, KMD, stuck, timeout=90)
    assert "Receipt" in r, r
    assert (d.in_dir(FLIS) / stuck).read_bytes() == data
    audit_verify(d)
