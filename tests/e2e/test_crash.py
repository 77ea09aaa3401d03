"""Crash safety of the delivery state machine (docs/architecture.md, contract §2, §5, §10).

Deterministic: for each step, fordelerd runs with FORDELER_CRASH_AT=after_<step> (it `_exit(86)`s
right after the commit that records the step; `after_revealed` is the moment between, when the
metadata and the receipt are in place and the commit recording them has not started), one transfer
is sent, the daemon dies with 86, and a restart without the variable must finish the transfer.

Random: bursts of concurrent transfers from several senders, fordelerd SIGKILLed at a random
moment 0–300 ms into each burst, restarted: 30 rounds (at least 20 within the time budget).
The seed is printed; FORDELER_E2E_SEED=<seed> repeats a run's choices (not its timing).

After the last restart, every transfer must end up: delivered exactly once to each of its
recipients (one copy of its bytes per recipient IN, with its metadata; no `<name>.<uuid>` twin
of the same transfer) or rejected with nothing delivered; with exactly one receipt; with nothing
partial or temporary visible in any IN (only `<name>`, `<name>.metadata`, `<name>.<uuid>`,
`<name>.<uuid>.metadata` and `<name>.sftpreceipt`); with its row at step done; and the events
hash chain must verify (recomputed here per audit/chain.h).

What is required of which transfer in the random test:
  * a trigger whose upload the client saw succeed (paramiko's put returned: write, close and the
    confirming stat all answered) must be finished: delivered (or, for the deliberately bad
    triggers, rejected with SIZE_MISMATCH), exactly one transfer row, one receipt;
  * a trigger whose upload was cut off by the kill may be absent (the kill came before the file
    was created), or present in any state of completeness: fordeler finds it in /OUT when it
    restarts and processes it like any other, so it is rejected (TRIGGER_MALFORMED for an empty
    or truncated document) or, when all its bytes had arrived before the kill (only the close or
    the confirming stat was cut off), delivered. Either way the invariants above hold for it and
    it yields at most one transfer;
  * a data file whose trigger was never sent stays in /OUT (contract §2: left until it expires).
"""

from __future__ import annotations

import io
import os
import random
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import paramiko
import pytest

from harness import (AccountSpec, STEP_DONE, data_areas_toml, db_rows, metadata_of, receipt_of,
                     sha256_bytes, trigger_xml, verify_event_chain, wait_until)

KMD = "kmd-oekonomi"
FLIS = "flis"
LISX = "lis-x"
RECIPIENTS = [FLIS, LISX]
N_SENDERS = 6
SENDERS = [f"vendor{i}" for i in range(N_SENDERS)]
DELIVER = "FLISOekonomiAflever_1"
CRASH_EXIT = 86

KEY_NAMES = ["kmd_ed25519", "flis_ed25519", "lisx_ed25519"] + [f"s{i}_ed25519"
                                                                for i in range(N_SENDERS)]
KEYS = {KMD: "kmd_ed25519", FLIS: "flis_ed25519", LISX: "lisx_ed25519"}
KEYS.update({s: f"s{i}_ed25519" for i, s in enumerate(SENDERS)})

SESSION_ERRORS = (paramiko.SSHException, EOFError, OSError)

# audit/records.h numbering
STEP_NUMBERS = {name: i for i, name in enumerate(
    ["received", "trigger_taken", "accepted", "spooled", "placed", "receipt_sent", "done",
     "rejecting"])}
# The steps a transfer passes through. A trigger is taken from /OUT into the spool before the
# transfer is first recorded ("taken": a crash point just before that first commit, with nothing
# recorded; start-up adopts the spooled trigger). The fast path (data complete when its trigger
# arrives) then records it straight as spooled or rejecting; the slow path (the trigger first)
# waits in trigger_taken and takes the data in accepted. Placement, receipt and the end share one
# commit (`placed` and `receipt_sent` are recorded only when the receipt fails, and by older
# versions). `received` is recorded first only for a name too long for the spool's naming
# (LONG_NAME).
FAST_ACCEPTED = ["taken", "spooled", "revealed", "done"]
FAST_REJECTED = ["taken", "rejecting", "done"]
SLOW_ACCEPTED = ["taken", "trigger_taken", "accepted"]
SLOW_REJECTED = ["trigger_taken"]
LONG_NAME = ["received"]


def make_daemon(daemons, keyset):
    accs = [AccountSpec(a, [keyset.key(KEYS[a])], extra=f'it_system = "{a}"')
            for a in [KMD, FLIS, LISX, *SENDERS]]
    routes = ""
    for s in [KMD, *SENDERS]:
        routes += (f'\n[[route]]\nid = "oekonomi-{s}"\ndata_area = "oekonomi"\nsender = "{s}"\n'
                   f'authorities = ["*"]\nrecipients = ["{FLIS}", "{LISX}"]\n')
    extra = '[delivery]\ntrigger_grace = "10s"\n' + routes + "\n" + data_areas_toml()
    return daemons.create(accs, start=False, extra=extra)


@dataclass
class Sent:
    sender: str
    name: str
    data: bytes
    expect: str  # "delivered" or "rejected" when the trigger is complete
    code: int = 1005  # the rejection's code: SIZE_MISMATCH, unless said otherwise
    data_ok: bool = False  # the client saw the data file's put succeed
    trigger_started: bool = False  # the client began uploading the trigger
    trigger_ok: bool = False  # the client saw the trigger's put succeed


def trigger_for(s: Sent) -> bytes:
    size = len(s.data) + (1 if s.expect == "rejected" else 0)
    return trigger_xml(s.name, size, s.sender, RECIPIENTS, inf_ref=DELIVER,
                       senders_file_id="id-" + s.name)


def put(sftp: paramiko.SFTPClient, data: bytes, path: str) -> None:
    attrs = sftp.putfo(io.BytesIO(data), path)  # write, close, stat (confirm)
    assert attrs.st_size == len(data)


def send(sftp: paramiko.SFTPClient, s: Sent) -> None:
    put(sftp, s.data, f"OUT/{s.name}")
    s.data_ok = True
    s.trigger_started = True
    put(sftp, trigger_for(s), f"OUT/{s.name}.trigger")
    s.trigger_ok = True


def send_trigger_first(d, sftp: paramiko.SFTPClient, s: Sent) -> None:
    """Writes the whole data file but keeps its handle open while the trigger is uploaded and
    until fordeler has recorded the trigger as taken (it found the data still being written:
    the slow path); then closes it. The daemon may die at trigger_taken meanwhile."""
    f = sftp.open(f"OUT/{s.name}", "wb")
    f.write(s.data)
    f.flush()  # every byte written and acknowledged; only the close is still to come
    s.trigger_started = True
    put(sftp, trigger_for(s), f"OUT/{s.name}.trigger")
    s.trigger_ok = True
    deadline = time.monotonic() + 20
    while d.running() and time.monotonic() < deadline:
        rows = db_rows(db(d), "SELECT step FROM transfers") if db(d).exists() else []
        if any(r["step"] == STEP_NUMBERS["trigger_taken"] for r in rows):
            break
        time.sleep(0.02)
    f.close()
    s.data_ok = True


def db(d) -> Path:
    return d.state / "audit.db"


def wait_all_done(d, sent: list[Sent], timeout: float) -> None:
    """Waits until every completed trigger has a finished transfer, nothing is unfinished, and
    no trigger waits to be taken: one cut off by a kill is found in /OUT at the restart and
    taken into the spool before its transfer is first recorded."""
    need = {(s.sender, s.name) for s in sent if s.trigger_ok}
    senders = {s.sender for s in sent}

    def done() -> bool:
        if not db(d).exists():
            return False
        rows = db_rows(db(d), "SELECT uuid, sender, name, step FROM transfers")
        finished = {(r["sender"], r["name"]) for r in rows if r["step"] == STEP_DONE}
        if not (need <= finished and all(r["step"] == STEP_DONE for r in rows)):
            return False
        if any(n.endswith(".trigger") for s in senders for n in os.listdir(d.out_dir(s))):
            return False
        recorded = {r["uuid"] for r in rows}
        spool = d.state / "spool"
        taken = [n for n in os.listdir(spool) if "~" in n] if spool.exists() else []
        return all(n.split("~", 1)[0] in recorded for n in taken)

    deadline = time.monotonic() + timeout
    while not done():
        if not d.running():
            pytest.fail(f"fordelerd exited ({d.proc.returncode}) while finishing transfers; "
                        f"stderr:\n{d.stderr_since_start()[-4000:]}", pytrace=False)
        if time.monotonic() > deadline:
            rows = db_rows(db(d), "SELECT uuid, sender, name, state, step, error_code, "
                                  "error_description FROM transfers WHERE step != 6")
            missing = need - {(r["sender"], r["name"]) for r in
                              db_rows(db(d), "SELECT sender, name FROM transfers")}
            left = [f"{s}/OUT/{n}" for s in senders for n in os.listdir(d.out_dir(s))
                    if n.endswith(".trigger")]
            pytest.fail(f"transfers not finished within {timeout}s: unfinished "
                        f"{[dict(r) for r in rows]}; completed triggers without a transfer "
                        f"{sorted(missing)}; triggers not taken {left}"
                        f"\nstderr:\n{d.stderr_since_start()[-4000:]}", pytrace=False)
        time.sleep(0.1)


def check_world(d, sent: list[Sent]) -> dict[str, int]:
    """The invariants of the module docstring, over everything ever sent to this daemon."""
    by_key = {(s.sender, s.name): s for s in sent}
    rows = [dict(r) for r in db_rows(db(d), "SELECT * FROM transfers")]
    events = [dict(r) for r in db_rows(db(d), "SELECT kind, transfer_uuid FROM events")]
    dls = [dict(r) for r in db_rows(db(d), "SELECT * FROM deliveries")]
    per_key: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        assert (r["sender"], r["name"]) in by_key, f"a transfer nobody sent: {r}"
        per_key.setdefault((r["sender"], r["name"]), []).append(r)
    for k, rs in per_key.items():
        assert len(rs) == 1, f"{len(rs)} transfers for one trigger {k}: {rs}"
    stats = {"delivered": 0, "rejected": 0, "cut_off_but_processed": 0, "cut_off_absent": 0}
    expected_in: dict[str, dict[str, tuple[str, str]]] = {r: {} for r in RECIPIENTS}
    for s in sent:
        rs = per_key.get((s.sender, s.name), [])
        if not rs:
            assert not s.trigger_ok, f"completed trigger {s.sender}/{s.name} has no transfer"
            if s.trigger_started:
                stats["cut_off_absent"] += 1
            continue
        assert s.trigger_started, f"a transfer for a trigger never sent: {rs[0]}"
        t = rs[0]
        uuid = t["uuid"]
        if not s.trigger_ok:
            stats["cut_off_but_processed"] += 1
        assert t["step"] == STEP_DONE, t
        if s.trigger_ok:
            assert t["state"] == s.expect, (f"{s.sender}/{s.name}: state {t['state']} "
                                            f"(code {t['error_code']} {t['error_description']}),"
                                            f" expected {s.expect}")
            if s.expect == "rejected":
                assert t["error_code"] == s.code, t
        assert t["state"] in ("delivered", "rejected"), t
        stats[t["state"]] += 1
        kinds = [e["kind"] for e in events if e["transfer_uuid"] == uuid]
        assert kinds.count("received") == 1, (uuid, kinds)
        assert kinds.count("receipt_sent") == 1, (uuid, kinds)
        # The receipt (names are unique per transfer, so it is this transfer's).
        rpath = d.in_dir(s.sender) / (s.name + ".sftpreceipt")
        assert rpath.exists(), f"no receipt for {s.sender}/{s.name} ({t['state']})"
        receipt = receipt_of(rpath)
        assert receipt["FileTransferUUID"] == uuid, (receipt, uuid)
        mine = [dl for dl in dls if dl["transfer_uuid"] == uuid]
        if t["state"] == "delivered":
            assert "Receipt" in receipt and receipt["Receipt"]["Message"] == "SUCCESS", receipt
            assert t["sha256"] == sha256_bytes(s.data), (t, "digest differs from what was sent")
            assert sorted(dl["recipient"] for dl in mine) == RECIPIENTS, mine
            assert kinds.count("delivered") == len(RECIPIENTS), (uuid, kinds)
            for dl in mine:
                assert dl["state"] == "delivered", dl
                placed = dl["name_in_in"]
                assert placed in (s.name, f"{s.name}.{uuid}"), dl
                expected_in[dl["recipient"]][placed] = (uuid, t["sha256"])
        else:
            assert "ErrorMessage" in receipt, receipt
            assert receipt["ErrorMessage"]["ErrorCode"] == str(t["error_code"]), receipt
            assert mine == [], f"a rejected transfer has deliveries: {mine}"
            assert (d.state / "quarantine" / uuid / (s.name + ".trigger")).exists()
        # Nothing of it left in /OUT.
        assert not (d.out_dir(s.sender) / (s.name + ".trigger")).exists()
        if t["state"] == "delivered" or s.trigger_ok:
            assert not (d.out_dir(s.sender) / s.name).exists(), f"{s.name} left in OUT"
    # Each recipient's IN holds exactly the delivered files (plus metadata), once each.
    for r in RECIPIENTS:
        names = sorted(os.listdir(d.in_dir(r)))
        data_files = [n for n in names if not n.endswith(".metadata")]
        metas = [n for n in names if n.endswith(".metadata")]
        assert sorted(data_files) == sorted(expected_in[r]), (
            f"{r}'s IN: unexpected {sorted(set(data_files) - set(expected_in[r]))}, "
            f"missing {sorted(set(expected_in[r]) - set(data_files))}")
        assert sorted(metas) == sorted(n + ".metadata" for n in data_files), (
            f"{r}'s IN: metadata and data do not pair up: {names}")
        seen_sha: dict[str, str] = {}
        for n in data_files:
            uuid, sha = expected_in[r][n]
            got = sha256_bytes((d.in_dir(r) / n).read_bytes())
            assert got == sha, f"{r}'s IN/{n} holds other bytes than transfer {uuid}"
            if (d.in_dir(r) / n).stat().st_size >= 16:  # random bytes: unique per transfer
                assert got not in seen_sha, f"{r} holds the same bytes twice: {n}, {seen_sha[got]}"
                seen_sha[got] = n
            m = metadata_of(d.in_dir(r) / (n + ".metadata"))
            assert m["FileTransferUUID"] == uuid and m["FileDescriptor"]["FileName"] == n, m
    # Senders' INs: receipts only; OUTs: no trigger left anywhere.
    receipt_re = re.compile(r".+\.sftpreceipt")
    for s_id in {s.sender for s in sent}:
        for n in os.listdir(d.in_dir(s_id)):
            assert receipt_re.fullmatch(n) and (s_id, n[:-len(".sftpreceipt")]) in per_key, (
                f"{s_id}'s IN holds {n!r}")
        left = [n for n in os.listdir(d.out_dir(s_id)) if n.endswith(".trigger")]
        assert left == [], f"triggers left in {s_id}'s OUT: {left}"
    rows_checked = verify_event_chain(db(d))
    assert rows_checked > 0
    return stats


# ------------------------------------------------------------------------------------------
# Deterministic crash points


CASES = ([("accepted", s) for s in FAST_ACCEPTED] + [("rejected", s) for s in FAST_REJECTED] +
         [("accepted-slow", s) for s in SLOW_ACCEPTED] +
         [("rejected-slow", s) for s in SLOW_REJECTED] +
         [("accepted-long", s) for s in LONG_NAME])


@pytest.mark.parametrize("path,step", CASES, ids=[f"{p}-after_{s}" for p, s in CASES])
def test_crash_after_step(daemons, keyset, path, step):
    crash_and_recover(make_daemon(daemons, keyset), keyset, path, step)


UNPRIVILEGED_CASES = ([("accepted", s) for s in FAST_ACCEPTED] +
                      [("rejected", s) for s in FAST_REJECTED])


@pytest.mark.parametrize("path,step", UNPRIVILEGED_CASES,
                         ids=[f"{p}-after_{s}" for p, s in UNPRIVILEGED_CASES])
def test_crash_after_step_as_an_unprivileged_user(unprivileged_daemons, keyset, path, step):
    """The same, with fordelerd running as `nobody` with umask 027 (as systemd runs it, without
    CAP_DAC_OVERRIDE): recovery must be able to replace or remove every file the crashed run
    left, even those it had already made read-only."""
    d = make_daemon(unprivileged_daemons, keyset)
    crash_and_recover(d, keyset, path, step)
    assert (d.state / "audit.db").stat().st_uid == d.run_as.uid, "not run as that user"


def crash_and_recover(d, keyset, path: str, step: str) -> None:
    d.start(env={"FORDELER_CRASH_AT": f"after_{step}"})
    expect = "delivered" if path.startswith("accepted") else "rejected"
    name = f"crash-{step}.csv"
    if path.endswith("-long"):  # 230 bytes: too long to spool with its sender and name
        name = f"crash-{step}-" + "x" * (230 - len(f"crash-{step}-.csv")) + ".csv"
    s = Sent(KMD, name, os.urandom(50_000), expect=expect)
    if path.endswith("-slow") and step in ("taken", "trigger_taken"):
        # The crash comes while the data file is still open for writing: its upload never
        # finishes, so it is not delivered whatever its bytes (sending.md), and the trigger gets
        # DATA_FILE_MISSING once trigger_grace has passed.
        s.expect, s.code = "rejected", 1004
    try:
        with d.sftp(KMD, keyset.key(KEYS[KMD])) as sftp:
            if path.endswith("-slow"):
                send_trigger_first(d, sftp, s)
            else:
                send(sftp, s)
    except SESSION_ERRORS:
        # The daemon may die between the trigger's close and paramiko's confirming stat.
        assert s.trigger_started
    rc = d.wait_exit(20)
    assert rc == CRASH_EXIT, (f"fordelerd exited with {rc}, not {CRASH_EXIT} at after_{step}; "
                              f"stderr:\n{d.stderr_text()[-4000:]}")
    rows = db_rows(db(d), "SELECT step, state FROM transfers")
    if step == "taken":
        # Taken and synced, nothing recorded: the trigger waits in the spool under a name that
        # says whose it is.
        assert rows == [], [dict(r) for r in rows]
        spooled = [n for n in os.listdir(d.state / "spool")
                   if n.endswith(f"~{KMD}~{s.name}.trigger")]
        assert len(spooled) == 1, os.listdir(d.state / "spool")
    elif step == "revealed":
        # Metadata and receipt in place, the end not recorded: still at `spooled`, with the
        # deliveries pending, and the recipients' metadata already visible.
        assert [r["step"] for r in rows] == [STEP_NUMBERS["spooled"]], [dict(r) for r in rows]
        for r in RECIPIENTS:
            assert (d.in_dir(r) / (s.name + ".metadata")).exists(), os.listdir(d.in_dir(r))
    else:
        # The crash came right after the commit recording that step (audit/records.h numbering).
        assert [r["step"] for r in rows] == [STEP_NUMBERS[step]], [dict(r) for r in rows]
    d.start()
    s.trigger_ok = True  # it was closed (the crash point fired after it): it must finish
    wait_all_done(d, [s], timeout=20)
    stats = check_world(d, [s])
    assert stats[s.expect] == 1, stats
    assert len(db_rows(db(d), "SELECT uuid FROM transfers")) == 1


def test_fetched_while_stopped_after_the_metadata_appeared_is_not_delivered_again(daemons, keyset):
    """The daemon stops once the metadata is in /IN but before the commit recording the delivery
    (after_revealed); while it is down each recipient fetches its file and metadata. The restart
    must not place them again: the deliveries end `picked_up`, the sender has its receipt."""
    d = make_daemon(daemons, keyset)
    d.start(env={"FORDELER_CRASH_AT": "after_revealed"})
    s = Sent(KMD, "fetched-while-down.csv", os.urandom(20_000), expect="delivered")
    try:
        with d.sftp(KMD, keyset.key(KEYS[KMD])) as sftp:
            send(sftp, s)
    except SESSION_ERRORS:
        assert s.trigger_started
    assert d.wait_exit(20) == CRASH_EXIT, d.stderr_text()[-4000:]
    for r in RECIPIENTS:  # fetched (and removed) while fordelerd is down
        assert (d.in_dir(r) / s.name).read_bytes() == s.data
        os.remove(d.in_dir(r) / s.name)
        os.remove(d.in_dir(r) / (s.name + ".metadata"))
    d.start()
    wait_until(lambda: [r["step"] for r in db_rows(db(d), "SELECT step FROM transfers")] ==
               [STEP_NUMBERS["done"]], 20, "the transfer finished after the restart")
    for r in RECIPIENTS:
        assert os.listdir(d.in_dir(r)) == [], f"{r} got the file again: {os.listdir(d.in_dir(r))}"
    states = sorted(r["state"] for r in db_rows(db(d), "SELECT state FROM deliveries"))
    assert states == ["picked_up"] * len(RECIPIENTS), states
    assert (d.in_dir(KMD) / (s.name + ".sftpreceipt")).exists()
    assert os.listdir(d.state / "staging") == [], os.listdir(d.state / "staging")
    assert verify_event_chain(db(d)) > 0


# ------------------------------------------------------------------------------------------
# Random kills


ROUNDS = 30  # rounds wanted; at least MIN_ROUNDS must fit in TIME_BUDGET (slow builds)
MIN_ROUNDS = 20
PER_SENDER = 5  # 6 senders x 5 = a burst of 30 transfers
TIME_BUDGET = 120.0  # seconds for the rounds; the test stops adding rounds beyond it
REJECT_EVERY = 7  # every 7th transfer has a wrong SizeInBytes


def test_random_sigkill(daemons, keyset):
    seed = int(os.environ.get("FORDELER_E2E_SEED", str(time.time_ns() % 1_000_000)))
    rng = random.Random(seed)
    print(f"seed {seed} (FORDELER_E2E_SEED={seed} repeats it)")
    d = make_daemon(daemons, keyset)
    sent: list[Sent] = []
    t_start = time.monotonic()
    rounds = 0
    counter = 0
    while rounds < ROUNDS and time.monotonic() - t_start < TIME_BUDGET:
        d.start()
        sessions = {}
        try:
            for sender in SENDERS:
                sessions[sender] = d.sftp(sender, keyset.key(KEYS[sender]))
        except SESSION_ERRORS as e:
            pytest.fail(f"round {rounds}: login failed: {e}", pytrace=False)
        batches: dict[str, list[Sent]] = {}
        for sender in SENDERS:
            batch = []
            for i in range(PER_SENDER):
                counter += 1
                expect = "rejected" if counter % REJECT_EVERY == 0 else "delivered"
                size = rng.choice([0, 1, 17, 4096, rng.randint(1, 200_000)])
                batch.append(Sent(sender, f"r{rounds:02d}-{sender}-{i}.csv", os.urandom(size),
                                  expect))
            batches[sender] = batch
            sent.extend(batch)

        def burst(sender: str) -> None:
            try:
                for s in batches[sender]:
                    send(sessions[sender].sftp, s)
            except SESSION_ERRORS:
                pass  # the kill

        threads = [threading.Thread(target=burst, args=(s,), daemon=True) for s in SENDERS]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.0, 0.3))
        d.kill_quietly()  # SIGKILL
        for t in threads:
            t.join(timeout=40)
        assert not any(t.is_alive() for t in threads), "a client hung after the daemon's kill"
        for sess in sessions.values():
            try:
                sess.close()
            except Exception:
                pass
        rounds += 1
    assert rounds >= MIN_ROUNDS, f"only {rounds} rounds within {TIME_BUDGET}s"
    d.start()
    wait_all_done(d, sent, timeout=40)
    stats = check_world(d, sent)
    completed = sum(s.trigger_ok for s in sent)
    print(f"{rounds} rounds, {len(sent)} transfers started, {completed} triggers completed; "
          f"{stats}")
    assert completed > 0, "no trigger upload ever completed: the kills came too early"
