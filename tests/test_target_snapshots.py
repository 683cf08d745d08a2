"""The snapshot grid: every example mesh x every registered target, reviewed like code."""

from __future__ import annotations

import pytest

from compiler.build import compile_mesh, emit
from targets import REGISTRY
from tests.conftest import EXAMPLES

MESHES = sorted(p.name for p in EXAMPLES.iterdir() if (p / "mesh.yaml").is_file())


@pytest.mark.parametrize("target", sorted(REGISTRY))
@pytest.mark.parametrize("mesh", MESHES)
def test_target_output_matches_snapshot(mesh: str, target: str, snapshot) -> None:
    compiled = compile_mesh(EXAMPLES / mesh)
    assert compiled.graph is not None, compiled.report.sorted()
    artifacts = emit(compiled.graph, compiled.report, [target])
    assert {a.path: a.content.decode("utf-8") for a in artifacts} == snapshot


@pytest.mark.parametrize("target", sorted(REGISTRY))
def test_target_output_is_deterministic(target: str) -> None:
    first = emit(compile_mesh(EXAMPLES / "bookinfo").graph, compile_mesh(EXAMPLES / "bookinfo").report, [target])
    second = emit(compile_mesh(EXAMPLES / "bookinfo").graph, compile_mesh(EXAMPLES / "bookinfo").report, [target])
    assert [(a.path, a.content) for a in first] == [(a.path, a.content) for a in second]
