"""A full `meshc build` emits the workloads shard by shard and writes each shard's artifacts
into the staging tree before emitting the next (compiler.build._build_streamed), so that its
memory tracks one shard. Whatever the number of shards, the output directory is byte for byte
what one emission of the whole mesh renders, with the same diagnostics; the shared sidecars
are released after each shard; a build that fails leaves nothing behind."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

import compiler.shards
import targets
from compiler.build import build_mesh, compile_mesh, emit
from compiler.writer import read_tree, render_tree
from tests.conftest import REPO

sys.path.insert(0, str(REPO / "bench"))
from generate import generate_mesh

# meshes without environments: one emission of a mesh with environments is not its build, which
# writes each environment under <out>/<env>/ (tests/test_environments.py compares those)
MESHES = sorted(path.parent for pattern in ("examples/*/mesh.yaml", "tests/fixtures/targets/*/*/mesh.yaml")
                for path in REPO.glob(pattern)
                if not any("environments" in (doc or {}) for doc in yaml.safe_load_all(path.read_text(encoding="utf-8"))))


def _diagnostics(report) -> list[tuple]:
    return [(d.sort_key(), d.severity, d.related, d.hint) for d in report.sorted()]


def _in_memory(root: Path) -> tuple[dict[str, bytes] | None, list[tuple]]:
    """What the build writes (None: it fails), rendered from one emission of every target."""
    compiled = compile_mesh(root, finish=False)
    assert compiled.graph is not None
    if compiled.report.has_errors:  # the build stops before the targets
        compiled.finish(targets_ran=False)
        return None, _diagnostics(compiled.report)
    artifacts = emit(compiled.graph, compiled.report, jobs=1)
    compiled.finish(targets_ran=bool(artifacts))
    if compiled.report.has_errors:
        return None, _diagnostics(compiled.report)
    files = render_tree(artifacts, compiled.graph.revision, targets=sorted(targets.REGISTRY),
                        inputs=compiled.sources.blob_ids)
    return files, _diagnostics(compiled.report)


@pytest.mark.parametrize("root", MESHES, ids=lambda root: str(root.relative_to(REPO)))
def test_one_proxy_per_shard_writes_what_one_emission_renders(root: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiler.shards, "STREAM_PROXIES", 1)
    outcome = build_mesh(root, tmp_path / "out", fail_on="error")
    files, diagnostics = _in_memory(root)
    assert _diagnostics(outcome.compiled.report) == diagnostics
    assert outcome.output_error is None and outcome.failed == (files is None)
    if files is None:  # an error: nothing written
        assert list(tmp_path.iterdir()) == []
    else:
        assert read_tree(tmp_path / "out") == files
        assert outcome.written == len(files)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_mesh(tmp_path_factory.mktemp("synthetic") / "mesh", 60)


def test_sidecars_are_released_after_each_shard(synthetic: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The sidecars the envoy, cloudfoundry and vm targets share are held for one shard at a
    time, and each is still built once (a shard's targets all ship its workloads' sidecars)."""
    from targets.envoylib import bootstrap

    monkeypatch.setattr(compiler.shards, "STREAM_PROXIES", 20)
    held: list[int] = []
    built: list[object] = []
    real_release, real_build = targets.release_shared, bootstrap.sidecar_bootstrap

    def release(graph) -> None:
        held.append(len(bootstrap._SERIALISED.get(id(graph), {})))
        real_release(graph)
        assert id(graph) not in bootstrap._SERIALISED

    def build_once(graph, service, report, address=None):
        built.append(service.key)
        return real_build(graph, service, report, address)

    monkeypatch.setattr(targets, "release_shared", release)
    monkeypatch.setattr(bootstrap, "sidecar_bootstrap", build_once)
    outcome = build_mesh(synthetic, tmp_path / "out", fail_on="error")
    assert not outcome.failed
    assert len(held) == 3 and all(0 < count < 60 for count in held) and sum(held) == len(set(built))
    assert len(built) == len(set(built)) == 60
    assert read_tree(tmp_path / "out") == _in_memory(synthetic)[0]


def test_a_failed_build_leaves_nothing_behind(synthetic: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The targets' warnings fail the build at --fail-on warning after shards were written:
    no output directory, no staging tree, not even the parent directories it made."""
    monkeypatch.setattr(compiler.shards, "STREAM_PROXIES", 20)
    out_dir = tmp_path / "made" / "for" / "out"
    outcome = build_mesh(synthetic, out_dir, fail_on="warning")
    assert outcome.failed
    assert any(d.code.code.startswith("MESH4") for d in outcome.compiled.report.diagnostics)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_build_keeps_the_previous_output(synthetic: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiler.shards, "STREAM_PROXIES", 20)
    out_dir = tmp_path / "out"
    assert not build_mesh(synthetic, out_dir, fail_on="error").failed
    before = read_tree(out_dir)
    assert build_mesh(synthetic, out_dir, fail_on="warning").failed
    assert read_tree(out_dir) == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]
