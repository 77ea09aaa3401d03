"""The installation and the systemd unit (systemd/, the install rules of CMakeLists.txt).

Run by CTest (label `systemd`) with FORDELER_BUILD_DIR set to the build tree; by hand:

    FORDELER_BUILD_DIR=build/release /usr/bin/python3 -m pytest -q tests/systemd

What runs here, and what does not: the unit is checked with `systemd-analyze verify` and
`systemd-analyze security --offline=yes` (both work without a running systemd), the sysusers and
tmpfiles snippets are applied with `systemd-sysusers --root` and `systemd-tmpfiles --root` to an
installed tree, and `fordeler check-config` loads the installed default configuration. The unit
is not started: that needs systemd as PID 1 (docs/operations.md says how to do it on a server).

`systemd-analyze verify` insists that ExecStart's binary exists. The unit names
/usr/sbin/fordelerd, where `cmake --install build --prefix /usr` puts it; so the tree is installed
with DESTDIR=<tmp> --prefix /usr (the production layout, under a temporary root), and verify runs
on a copy of the installed unit whose two paths (/usr/sbin/fordelerd and
/etc/fordeler/fordeler.toml) are rewritten to point into that temporary root; every other line
is verified as installed. (`verify --root=` is no help: it then also looks for sysinit.target and
/bin/kill inside the temporary root.)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path, PurePosixPath

import pytest

BUILD_DIR = os.environ.get("FORDELER_BUILD_DIR")
SOURCE_DIR = Path(__file__).resolve().parents[2]
UNIT = "fordelerd.service"
MAX_EXPOSURE = 3.0  # systemd-analyze security: "OK" or better

pytestmark = pytest.mark.skipif(not BUILD_DIR, reason="FORDELER_BUILD_DIR (the build tree) not set")


def run(args, **kwargs):
    return subprocess.run(args, capture_output=True, text=True, timeout=120, **kwargs)


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} not found: scripts/install-deps.sh installs the systemd package")
    return path


def install(destdir: Path | None, prefix: Path | str) -> None:
    env = dict(os.environ)
    env.pop("DESTDIR", None)
    if destdir is not None:
        env["DESTDIR"] = str(destdir)
    r = run(["cmake", "--install", BUILD_DIR, "--prefix", str(prefix)], env=env)
    assert r.returncode == 0, r.stdout + r.stderr


def parse_unit(path: Path) -> dict[str, list[str]]:
    """Directive -> values, in order ("Section.Key"). Good enough for our own unit: no
    continuation lines, no specifier expansion."""
    values: dict[str, list[str]] = {}
    section = ""
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        values.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return values


def last(unit: dict[str, list[str]], key: str) -> str:
    return unit[key][-1]


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """The production install (--prefix /usr) under a temporary root."""
    root = tmp_path_factory.mktemp("root")
    install(root, "/usr")
    return root


@pytest.fixture(scope="module")
def unit(root) -> dict[str, list[str]]:
    return parse_unit(root / "usr/lib/systemd/system" / UNIT)


def test_production_layout(root):
    for path, kind in [
        ("usr/sbin/fordelerd", "exe"),
        ("usr/bin/fordeler", "exe"),
        ("usr/lib/systemd/system/fordelerd.service", "file"),
        ("usr/lib/sysusers.d/fordeler.conf", "file"),
        ("usr/lib/tmpfiles.d/fordeler.conf", "file"),
        ("etc/fordeler/fordeler.toml", "file"),
        ("etc/fordeler/conf.d/flis-data-areas.toml", "file"),
        ("etc/fordeler/keys", "dir"),
        ("usr/share/doc/fordeler/fordeler.toml.example", "file"),
        ("usr/share/doc/fordeler/README.md", "file"),
    ] + [(f"usr/share/doc/fordeler/{d}", "file") for d in
         ["operations.md", "sending.md", "receiving.md", "configuration.md", "error-codes.md"]]:
        p = root / path
        assert p.is_dir() if kind == "dir" else p.is_file(), f"{path} not installed"
        if kind == "exe":
            assert os.access(p, os.X_OK), f"{path} is not executable"
    assert (root / "etc/fordeler/keys").stat().st_mode & 0o007 == 0, "keys/ open to others"
    shipped = (SOURCE_DIR / "config/fordeler.toml.example").read_bytes()
    assert (root / "etc/fordeler/fordeler.toml").read_bytes() == shipped


def test_relocated_install(tmp_path):
    """Any other prefix keeps everything beneath it (<prefix>/etc, not /etc)."""
    install(None, tmp_path)
    for path in ["sbin/fordelerd", "bin/fordeler", "lib/systemd/system/fordelerd.service",
                 "etc/fordeler/fordeler.toml", "etc/fordeler/conf.d/flis-data-areas.toml",
                 "share/doc/fordeler/operations.md"]:
        assert (tmp_path / path).exists(), f"{path} not installed under the prefix"


def test_reinstall_keeps_the_operators_configuration(tmp_path):
    install(tmp_path, "/usr")
    config = tmp_path / "etc/fordeler/fordeler.toml"
    config.write_text(config.read_text() + "\n# edited by the operator\n")
    data_areas = tmp_path / "etc/fordeler/conf.d/flis-data-areas.toml"
    data_areas.write_text("# stale\n")
    install(tmp_path, "/usr")
    assert config.read_text().endswith("# edited by the operator\n")
    assert data_areas.read_bytes() == (SOURCE_DIR / "conf.d/flis-data-areas.toml").read_bytes()


def test_unit_runs_what_was_installed(root, unit):
    """ExecStart names the installed daemon and the installed default configuration."""
    exec_start = last(unit, "Service.ExecStart").split()
    assert exec_start[0] == "/usr/sbin/fordelerd"
    assert (root / exec_start[0].lstrip("/")).is_file()
    config = exec_start[exec_start.index("--config") + 1]
    assert config == "/etc/fordeler/fordeler.toml"
    assert (root / config.lstrip("/")).is_file()
    assert last(unit, "Service.Type") == "notify"
    assert last(unit, "Service.ExecReload") == "/bin/kill -HUP $MAINPID"
    assert last(unit, "Service.User") == last(unit, "Service.Group") == "fordeler"
    assert "Service.DynamicUser" not in unit
    sysusers = (root / "usr/lib/sysusers.d/fordeler.conf").read_text()
    assert re.search(r"^u fordeler ", sysusers, re.M), "sysusers does not create User="


def test_unit_file_descriptors_suffice(unit):
    """max_sessions (2048 by default) sessions need about 3 descriptors each, plus the rest."""
    assert int(last(unit, "Service.LimitNOFILE")) >= 3 * 2048 + 1024


def test_systemd_analyze_verify(root, tmp_path):
    need("systemd-analyze")
    text = (root / "usr/lib/systemd/system" / UNIT).read_text()
    assert text.count("/usr/sbin/fordelerd") == 1
    text = text.replace("/usr/sbin/fordelerd", str(root / "usr/sbin/fordelerd"))
    text = text.replace("/etc/fordeler/fordeler.toml", str(root / "etc/fordeler/fordeler.toml"))
    copy = tmp_path / UNIT
    copy.write_text(text)
    r = run(["systemd-analyze", "verify", str(copy)])
    output = (r.stdout + r.stderr).strip()
    assert r.returncode == 0, output
    # Unknown or misspelt directives are only warnings: refuse them too.
    assert output == "", output


def test_systemd_analyze_security(root):
    need("systemd-analyze")
    r = run(["systemd-analyze", "security", "--offline=yes", "--no-pager",
             str(root / "usr/lib/systemd/system" / UNIT)])
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", r.stdout)
    assert m, r.stdout
    assert float(m.group(1)) <= MAX_EXPOSURE, r.stdout
    print(f"systemd-analyze security: {m.group(1)} {m.group(2)}")


def test_sysusers_and_tmpfiles_apply(tmp_path):
    """The user exists and owns what it must: applied to a fresh root, as at package install."""
    need("systemd-sysusers")
    need("systemd-tmpfiles")
    install(tmp_path, "/usr")
    r = run(["systemd-sysusers", f"--root={tmp_path}"])
    assert r.returncode == 0, r.stderr
    passwd = (tmp_path / "etc/passwd").read_text()
    m = re.search(r"^fordeler:x:(\d+):(\d+):[^:]*:/var/lib/fordeler:", passwd, re.M)
    assert m, passwd
    gid = int(m.group(2))
    r = run(["systemd-tmpfiles", f"--root={tmp_path}", "--create"])
    assert r.returncode == 0, r.stderr
    keys = (tmp_path / "etc/fordeler/keys").stat()
    assert (keys.st_uid, keys.st_gid, keys.st_mode & 0o777) == (0, gid, 0o750)


def default_config_writes(config_path: Path) -> dict[str, PurePosixPath]:
    """Every path the daemon writes under the default configuration, with the loader's
    defaults (config/config.h, config/loader.cc) applied."""
    with config_path.open("rb") as f:
        config = tomllib.load(f)
    base = PurePosixPath("/etc/fordeler")  # where the unit's --config file stands

    def resolve(p: str) -> PurePosixPath:
        return PurePosixPath(os.path.normpath(base / p))

    storage = config.get("storage", {})
    database = config.get("database", {})
    root = resolve(storage.get("root", "/var/lib/fordeler"))
    if "path" in database:
        db = resolve(database["path"])
    elif "root" in storage:
        db = root / "audit.db"
    else:
        db = PurePosixPath("/var/lib/fordeler/audit.db")
    return {
        "storage root": root,
        "database": db,
        "database WAL": PurePosixPath(f"{db}-wal"),
        "database shared memory": PurePosixPath(f"{db}-shm"),
        "control socket": root / "control.sock",  # daemon/control_server.h
    }


def writable_paths(unit: dict[str, list[str]]) -> list[PurePosixPath]:
    roots = {"StateDirectory": "/var/lib", "RuntimeDirectory": "/run",
             "CacheDirectory": "/var/cache", "LogsDirectory": "/var/log"}
    paths = []
    for key, base in roots.items():
        for value in unit.get(f"Service.{key}", []):
            paths += [PurePosixPath(base) / d.split(":")[0] for d in value.split()]
    for value in unit.get("Service.ReadWritePaths", []):
        paths += [PurePosixPath(p.lstrip("-+")) for p in value.split()]
    return paths


def test_default_configuration_writes_only_where_the_unit_allows(root, unit):
    assert last(unit, "Service.ProtectSystem") == "strict"
    allowed = writable_paths(unit)
    assert allowed, "the unit allows no writes at all"
    for what, path in default_config_writes(root / "etc/fordeler/fordeler.toml").items():
        assert any(path == a or a in path.parents for a in allowed), (
            f"{what} {path} is not within {', '.join(map(str, allowed))}")


def test_default_configuration_needs_only_host_keys(root, tmp_path):
    need("ssh-keygen")
    etc = tmp_path / "etc/fordeler"
    shutil.copytree(root / "etc/fordeler", etc)
    fordeler = str(root / "usr/bin/fordeler")
    config = str(etc / "fordeler.toml")
    r = run([fordeler, "--config", config, "check-config"])
    assert r.returncode == 2, r.stdout + r.stderr
    errors = [l for l in r.stderr.splitlines() if not l.startswith("fordeler: ")]
    assert len(errors) == 2 and all("host_keys: cannot read" in l for l in errors), r.stderr
    for kind, extra in [("ed25519", []), ("rsa", ["-b", "3072"])]:
        key = etc / f"keys/ssh_host_{kind}_key"
        subprocess.run(["ssh-keygen", "-q", "-t", kind, *extra, "-N", "", "-f", str(key)],
                       check=True)
    r = run([fordeler, "--config", config, "check-config"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "configuration OK" in r.stdout
    assert re.search(r"data areas:\s+5\b", r.stdout), r.stdout
    assert re.search(r"accounts:\s+0\b", r.stdout), r.stdout
