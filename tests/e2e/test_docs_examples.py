"""The examples of docs/sending.md and docs/receiving.md, run as their readers would run them.

The code and XML blocks are taken from the Markdown itself (only host, port, key and sizes are
put in), so an example that stops working fails here. Accounts and routes are those the docs
use (kmd-oekonomi, tabulex-skole → flis, lis-aarhus).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from harness import (REPO_ROOT, AccountSpec, data_areas_toml, metadata_of, random_file, receipt_of,
                     run, sha256_file, ssh_base_options, trigger_xml, wait_receipt)

KEY_NAMES = ["kmd_ed25519", "tabulex_ed25519", "flis_ed25519", "lis_ed25519"]

ROUTES = """
[[route]]
id = "oekonomi-kmd-flis"
data_area = "oekonomi"
sender = "kmd-oekonomi"
authorities = ["*"]
recipients = ["flis", "lis-aarhus"]

[[route]]
id = "skole-tabulex"
data_area = "skole"
sender = "tabulex-skole"
authorities = ["*"]
recipients = ["flis", "lis-aarhus"]
"""


def blocks(doc: str, lang: str) -> list[str]:
    text = (REPO_ROOT / "docs" / doc).read_text()
    return re.findall(rf"```{lang}\n(.*?)```", text, re.S)


@pytest.fixture(scope="module")
def d(module_daemons, keyset):
    k = keyset.client
    return module_daemons.create(
        [AccountSpec("kmd-oekonomi", [k["kmd_ed25519"]],
                     extra='authority = "urn:oio:cvr-nr:55133018"\nit_system = "kmd-oekonomi"'),
         AccountSpec("tabulex-skole", [k["tabulex_ed25519"]],
                     extra='authority = "urn:oio:cvr-nr:29189919"\nit_system = "tabulex"'),
         AccountSpec("flis", [k["flis_ed25519"]], extra='it_system = "FLIS"'),
         AccountSpec("lis-aarhus", [k["lis_ed25519"]],
                     extra='authority = "urn:oio:cvr-nr:55133018"\nit_system = "lis-aarhus"')],
        extra=data_areas_toml() + ROUTES)


def sftp_put(d, key: Path, user: str, pairs: list[tuple[Path, str]]) -> None:
    batch = "".join(f"put {local} {remote}\n" for local, remote in pairs)
    res = subprocess.run(["sftp", "-b", "-", "-P", str(d.port), *ssh_base_options(key),
                          f"{user}@{d.host}"], input=batch, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr


def test_sending_openssh_session_with_the_named_recipients_trigger(d, keyset, tmp_path):
    """sending.md: the named-recipients trigger, uploaded by the OpenSSH session shown."""
    name = "oekonomi_2026-11-22.csv"
    random_file(tmp_path / name, 1048576)  # the example's SizeInBytes
    (tmp_path / f"{name}.trigger").write_text(blocks("sending.md", "xml")[0])
    session = blocks("sending.md", "sh")[-1]
    opts = " ".join(ssh_base_options(keyset.key("kmd_ed25519")))
    session = session.replace("-P 2222 -i ~/.ssh/id_ed25519", f"-P {d.port} {opts}")
    session = session.replace("fordeler.example.dk", d.host)
    res = run(["bash", "-euo", "pipefail", "-c", session], cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    receipt = receipt_of(tmp_path / f"{name}.sftpreceipt")
    assert receipt["Receipt"]["Message"] == "SUCCESS", receipt
    assert receipt["SendersFileId"] == "a1b2c3"
    for recipient in ("flis", "lis-aarhus"):
        meta = metadata_of(d.in_dir(recipient) / f"{name}.metadata")
        assert meta["FileDescriptor"]["Sha256"] == sha256_file(tmp_path / name)
        assert meta["FileContentDescriptor"]["SFTPDynamicRoutingInfo"]["InfRef"] == \
            "FLISOekonomiHent_1"


def test_sending_dynamic_routing_example(d, keyset, tmp_path):
    """sending.md: the ROUTING_V1_0_0 trigger reaches the recipient with RecipientIt-system."""
    name = "skole_elever_2026-11-22.xml"
    digest = random_file(tmp_path / name, 52311)  # the example's SizeInBytes
    xml = blocks("sending.md", "xml")[1]
    xml = re.sub(r"<Sha256>[0-9a-f]{64}</Sha256>", f"<Sha256>{digest}</Sha256>", xml)
    (tmp_path / f"{name}.trigger").write_text(xml)
    sftp_put(d, keyset.key("tabulex_ed25519"), "tabulex-skole",
             [(tmp_path / name, f"OUT/{name}"), (tmp_path / f"{name}.trigger", f"OUT/{name}.trigger")])
    receipt = wait_receipt(d, "tabulex-skole", name)
    assert receipt["Receipt"]["Message"] == "SUCCESS", receipt
    assert (d.in_dir("flis") / f"{name}.metadata").exists()
    assert not (d.in_dir("lis-aarhus") / name).exists(), "RecipientIt-system FLIS did not narrow"


def test_receiving_paramiko_script(d, keyset, tmp_path):
    """receiving.md's fetch script, on an IN with a collision (<name>.<uuid>) and a data file
    whose own name ends in .metadata."""
    sent = {}
    for name, size in [("a.csv", 10), ("a.csv", 11), ("report.metadata", 12), ("report", 13)]:
        local = tmp_path / "send" / name
        local.parent.mkdir(exist_ok=True)
        digest = random_file(local, size)
        (tmp_path / "send" / f"{name}.trigger").write_bytes(
            trigger_xml(name, size, "kmd-oekonomi", ["lis-aarhus"]))
        old = None
        receipt_path = d.in_dir("kmd-oekonomi") / f"{name}.sftpreceipt"
        if receipt_path.exists():
            old = receipt_of(receipt_path)["FileTransferUUID"]
        sftp_put(d, keyset.key("kmd_ed25519"), "kmd-oekonomi",
                 [(local, f"OUT/{name}"), (tmp_path / "send" / f"{name}.trigger",
                                           f"OUT/{name}.trigger")])
        receipt = wait_receipt(d, "kmd-oekonomi", name, not_uuid=old)
        assert receipt["Receipt"]["Message"] == "SUCCESS", receipt
        sent[receipt["FileTransferUUID"]] = digest
    placed = {p.name for p in d.in_dir("lis-aarhus").iterdir()}
    assert {"report.metadata", "report.metadata.metadata", "a.csv", "a.csv.metadata"} <= placed
    assert any(re.fullmatch(r"a\.csv\.[0-9a-f-]{36}", n) for n in placed), placed

    script = blocks("receiving.md", "python")[0]
    script = script.replace('"fordeler.example.dk", 2222', f'"{d.host}", {d.port}')
    script = script.replace('os.path.expanduser("~/.ssh/id_ed25519")',
                            repr(str(keyset.key("lis_ed25519"))))
    script = script.replace("client.load_system_host_keys()",
                            "client.set_missing_host_key_policy(paramiko.AutoAddPolicy())")
    (tmp_path / "fetch.py").write_text(script)
    res = run(["/usr/bin/python3", "fetch.py"], cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    printed = {line.split()[0]: line.split()[-1] for line in res.stdout.splitlines()}
    assert set(sent) <= set(printed), res.stdout  # and what earlier tests delivered
    for uuid, digest in sent.items():
        assert sha256_file(tmp_path / "inbox" / printed[uuid]) == digest, printed[uuid]
    assert list(d.in_dir("lis-aarhus").iterdir()) == [], "the script left files in IN"
