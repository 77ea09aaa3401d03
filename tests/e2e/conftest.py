"""pytest fixtures for the e2e suite (machinery in harness.py)."""

from __future__ import annotations

import pytest

import harness
from harness import DaemonFactory, make_keyset

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
