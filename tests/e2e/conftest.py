"""pytest fixtures for the e2e suite (machinery in harness.py)."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from pathlib import Path

import pytest

import harness
from harness import DaemonFactory, RunAs, fordelerd_path, make_keyset

# Keys a module gets unless it sets KEY_NAMES = [...] itself.
DEFAULT_KEY_NAMES = ["ed25519", "ecdsa256", "rsa2048"]


@pytest.fixture(scope="module")
def keyset(request, tmp_path_factory):
    """Client keys (KEY_NAMES of the test module) and host keys, generated at test time."""
    names = getattr(request.module, "KEY_NAMES", DEFAULT_KEY_NAMES)
    return make_keyset(tmp_path_factory.mktemp("keys"), names)


@pytest.fixture(scope="module")
def module_daemons(keyset, tmp_path_factory):
    """A DaemonFactory whose daemons live for the whole module (cheap shared daemons)."""
    factory = DaemonFactory(tmp_path_factory.mktemp("mod"), keyset)
    yield factory
    factory.finish()


@pytest.fixture
def daemons(keyset, tmp_path):
    """A DaemonFactory whose daemons are stopped (SIGTERM, exit 0 checked) after the test."""
    factory = DaemonFactory(tmp_path, keyset)
    yield factory
    factory.finish()


def unprivileged_factory(keyset):
    """A DaemonFactory whose daemons run as `nobody`, without capabilities and with umask 027,
    as the systemd unit runs fordelerd (User=fordeler): permission mistakes that root's
    CAP_DAC_OVERRIDE hides show up there. Their directory is under /tmp, which that user can
    reach (pytest's own temp dirs are private to root), with a copy of the binary. Skips unless
    the tests run as root on a machine with that user."""
    if os.geteuid() != 0:
        pytest.skip("running fordelerd as another user needs root")
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user nobody on this machine")
    base = Path(tempfile.mkdtemp(prefix="fordeler-e2e-", dir="/tmp"))
    try:
        base.chmod(0o755)
        binary = base / "fordelerd"
        shutil.copy2(fordelerd_path(), binary)
        factory = DaemonFactory(base, keyset, run_as=RunAs.user("nobody", binary))
        yield factory
        factory.finish()
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def unprivileged_daemons(keyset):
    """unprivileged_factory, for one test."""
    yield from unprivileged_factory(keyset)


@pytest.fixture(scope="module")
def module_unprivileged_daemons(keyset):
    """unprivileged_factory, for the whole module."""
    yield from unprivileged_factory(keyset)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test's report ends with the last lines each recent daemon logged: a flaky
    failure in CI is then explained by the daemon's side, not only the client's."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    for daemon in harness.STARTED[-3:]:
        tail = daemon.stderr_text().splitlines()[-40:]
        report.sections.append((f"fordelerd log {daemon.workdir}", "\n".join(tail)))
