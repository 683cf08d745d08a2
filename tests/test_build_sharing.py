"""A build computes each sidecar bootstrap once and ships it from every target that needs it
(envoy, cloudfoundry, vm), with output equal to targets built on their own."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

import targets.envoylib.bootstrap as bootstrap
from bench.generate import generate_mesh
from compiler.build import compile_mesh, emit


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # services on kubernetes, cloudfoundry and vm platforms, a third with a canary Route
    return generate_mesh(tmp_path_factory.mktemp("shared") / "mesh", 24)


def test_each_sidecar_is_built_once_per_build(mesh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built: Counter = Counter()
    original = bootstrap.sidecar_bootstrap

    def counting(graph, service, report, address=None):
        built[service.key] += 1
        return original(graph, service, report, address)

    monkeypatch.setattr(bootstrap, "sidecar_bootstrap", counting)
    compiled = compile_mesh(mesh, finish=False)
    assert compiled.graph is not None
    artifacts = emit(compiled.graph, compiled.report)
    sidecars = [a for a in artifacts if a.path.startswith("envoy/") or "/sidecars/" in a.path
                or a.path.endswith("/envoy.yaml")]
    assert len(sidecars) > len(compiled.graph.services)  # shipped more than once...
    assert set(built.values()) == {1}  # ...built once each (every service has one address here)
    assert set(built) == set(compiled.graph.services)


def test_shared_sidecars_equal_targets_built_alone(mesh: Path) -> None:
    together = compile_mesh(mesh, finish=False)
    shipped = {a.path: a.content for a in emit(together.graph, together.report)}
    for target in ("cloudfoundry", "envoy", "vm"):
        alone = compile_mesh(mesh, finish=False)
        for artifact in emit(alone.graph, alone.report, [target]):
            assert shipped[artifact.path] == artifact.content, artifact.path
