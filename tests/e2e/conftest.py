"""Fixtures of the end-to-end suite: the envoy binary, the test PKI, loopback addresses, and
module-scoped owners of backends and Envoy processes that always stop what they started."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import require_envoy
from tests.e2e import harness
from tests.pki import TestPki


@pytest.fixture(scope="session")
def envoy_bin() -> str:
    return require_envoy()


@pytest.fixture(scope="module")
def pki() -> TestPki:
    return TestPki()


@pytest.fixture(scope="module")
def addresses() -> harness.LoopbackAddresses:
    return harness.LoopbackAddresses()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    return tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])


class Backends:
    def __init__(self) -> None:
        self.started: list[harness.Backend] = []

    def start(self, identity: str, **options) -> harness.Backend:
        backend = harness.Backend.start(identity, **options)
        self.started.append(backend)
        return backend

    def stop_all(self) -> None:
        while self.started:
            self.started.pop().stop()


@pytest.fixture(scope="module")
def backends():
    owner = Backends()
    try:
        yield owner
    finally:
        owner.stop_all()


class Envoys:
    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.started: list[harness.EnvoyProcess] = []

    def start(self, name: str, config: dict, admin_port: int) -> harness.EnvoyProcess:
        """Start Envoy on config; return once it is LIVE with every listener of config bound."""
        envoy = harness.start_envoy(self.binary, name, config, self.workdir / "envoy", admin_port)
        self.started.append(envoy)
        envoy.wait_ready(harness.configured_listeners(config))
        return envoy

    def stop_all(self) -> None:
        while self.started:
            harness.stop_envoy(self.started.pop())


@pytest.fixture(scope="module")
def envoys(envoy_bin: str, workdir: Path):
    owner = Envoys(envoy_bin, workdir)
    try:
        yield owner
    finally:
        owner.stop_all()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A failing e2e test shows the log of every Envoy that is running at that moment."""
    report = yield
    if report.failed:
        for envoy in harness.RUNNING:
            report.sections.append((f"envoy {envoy.name} log ({envoy.log_path})", envoy.log() or "(empty)"))
    return report
