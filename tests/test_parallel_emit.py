"""Emitting in two processes (compiler.shards) gives exactly what one process gives: the same
artifacts byte for byte, with the same workloads and sources, and the same diagnostics, on
every example and target fixture mesh and on a synthetic mesh large enough to fork by itself."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import compiler.build
import compiler.shards
from compiler.build import compile_mesh, emit
from tests.conftest import REPO

sys.path.insert(0, str(REPO / "bench"))
from generate import generate_mesh

MESHES = sorted(path.parent for pattern in ("examples/*/mesh.yaml", "tests/fixtures/targets/*/*/mesh.yaml")
                for path in REPO.glob(pattern))


def _emitted(root: Path, jobs: int | None) -> tuple[list[tuple], list[tuple]]:
    compiled = compile_mesh(root)
    assert compiled.graph is not None, [str(d.message) for d in compiled.report.diagnostics]
    first = len(compiled.report.diagnostics)
    artifacts = emit(compiled.graph, compiled.report, jobs=jobs)
    diagnostics = [(d.sort_key(), d.severity, d.related, d.hint) for d in compiled.report.sorted()
                   if d in compiled.report.diagnostics[first:]]
    return [(a.path, a.content, a.target, a.workload, a.sources) for a in artifacts], diagnostics


@pytest.mark.parametrize("root", MESHES, ids=lambda root: str(root.relative_to(REPO)))
def test_two_processes_emit_what_one_does(root: Path) -> None:
    serial = _emitted(root, jobs=1)
    assert serial[0]  # the mesh compiles and emits something
    assert _emitted(root, jobs=2) == serial


def test_the_diagnostics_of_both_shards_are_kept() -> None:
    """The inexpressible-intents mesh makes the targets report: both shards' reports arrive."""
    root = REPO / "tests/fixtures/targets/envoy/inexpressible-intents"
    _, diagnostics = _emitted(root, jobs=2)
    assert diagnostics and diagnostics == _emitted(root, jobs=1)[1]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_mesh(tmp_path_factory.mktemp("synthetic") / "mesh", compiler.shards.MIN_PROXIES)


def test_a_large_mesh_forks_by_itself_and_emits_what_one_process_does(synthetic: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    forks: list[int] = []
    real_fork = os.fork

    def counting_fork() -> int:
        forks.append(1)
        return real_fork()

    monkeypatch.setattr(compiler.shards.os, "fork", counting_fork)
    monkeypatch.delenv(compiler.shards.JOBS_ENVIRONMENT, raising=False)
    monkeypatch.setattr(compiler.shards.os, "cpu_count", lambda: 2)
    parallel = _emitted(synthetic, jobs=None)
    assert forks == [1]
    monkeypatch.setenv(compiler.shards.JOBS_ENVIRONMENT, "1")
    assert _emitted(synthetic, jobs=None) == parallel
    assert forks == [1]  # MESHC_JOBS=1: no fork
    both = {a[3] for a in parallel[0]}
    assert any(w in compiler.shards.WorkloadShard(0, 2) for w in both)
    assert any(w in compiler.shards.WorkloadShard(1, 2) for w in both)  # each shard had work


def test_a_failed_fork_is_emitted_here(synthetic: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The forked process dies before sending anything: this process emits its shard itself."""
    serial = _emitted(synthetic, jobs=1)
    monkeypatch.setattr(compiler.shards, "_emit_and_send", lambda *_: os._exit(3))
    assert _emitted(synthetic, jobs=2) == serial


def test_the_output_budget_is_judged_on_both_shards_together(synthetic: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiler.build, "MAX_OUTPUT_BYTES", 2 * 1024 * 1024)
    serial = _emitted(synthetic, jobs=1)
    assert serial[0] == [] and [d[0][3] for d in serial[1]].count("MESH013") == 1
    assert _emitted(synthetic, jobs=2) == serial
