"""The snapshot grid: every example mesh x every registered target, reviewed like code."""

from __future__ import annotations

import pytest

from compiler.build import compile_mesh, emit
from targets import REGISTRY
from tests.conftest import EXAMPLES

MESHES = sorted(p.name for p in EXAMPLES.iterdir() if (p / "mesh.yaml").is_file())
# (mesh, target) pairs with nothing to snapshot -> the platform kind the target emits for, which
# the mesh does not have; test_a_target_emits_nothing_without_its_platform proves them empty.
NOTHING_TO_EMIT = {
    ("gateway-api-shop", "cloudfoundry"): "cloudfoundry",
    ("gateway-api-shop", "vm"): "vm",
    ("bookinfo-cluster", "cloudfoundry"): "cloudfoundry",
    ("bookinfo-cluster", "vm"): "vm",
    ("multicluster-shop", "cloudfoundry"): "cloudfoundry",
    ("team-routes", "cloudfoundry"): "cloudfoundry",
    ("team-routes", "vm"): "vm",
    ("gateway-api-conformance", "cloudfoundry"): "cloudfoundry",
    ("gateway-api-conformance", "vm"): "vm",
    ("end-user-auth", "cloudfoundry"): "cloudfoundry",
    ("end-user-auth", "vm"): "vm",
}
GRID = [(mesh, target) for mesh in MESHES for target in sorted(REGISTRY) if (mesh, target) not in NOTHING_TO_EMIT]


@pytest.mark.parametrize(("mesh", "target"), GRID, ids=[f"{mesh}-{target}" for mesh, target in GRID])
def test_target_output_matches_snapshot(mesh: str, target: str, snapshot) -> None:
    compiled = compile_mesh(EXAMPLES / mesh)
    assert compiled.graph is not None, compiled.report.sorted()
    artifacts = emit(compiled.graph, compiled.report, [target])
    assert artifacts
    assert {a.path: a.content.decode("utf-8") for a in artifacts} == snapshot


@pytest.mark.parametrize(("mesh", "target"), sorted(NOTHING_TO_EMIT))
def test_a_target_emits_nothing_without_its_platform(mesh: str, target: str) -> None:
    compiled = compile_mesh(EXAMPLES / mesh)
    assert compiled.graph is not None, compiled.report.sorted()
    assert NOTHING_TO_EMIT[(mesh, target)] not in {p.kind for p in compiled.graph.platforms.values()}
    diagnostics = len(compiled.report.sorted())
    assert emit(compiled.graph, compiled.report, [target]) == []
    assert len(compiled.report.sorted()) == diagnostics


@pytest.mark.parametrize("target", sorted(REGISTRY))
def test_target_output_is_deterministic(target: str) -> None:
    first = emit(compile_mesh(EXAMPLES / "bookinfo").graph, compile_mesh(EXAMPLES / "bookinfo").report, [target])
    second = emit(compile_mesh(EXAMPLES / "bookinfo").graph, compile_mesh(EXAMPLES / "bookinfo").report, [target])
    assert [(a.path, a.content) for a in first] == [(a.path, a.content) for a in second]
