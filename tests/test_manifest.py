"""manifest.json: one typed model written by the writer and read back by every reader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from compiler.artifact import Artifact
from compiler.cli import main
from compiler.loader import Revision
from compiler.manifest import MANIFEST, Manifest, ManifestError, parse_manifest, read_manifest
from compiler.scaffold import write_starter
from compiler.writer import render_tree
from targets import REGISTRY
from tests.conftest import BOOKINFO


def _built(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["build", str(BOOKINFO), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_a_written_manifest_reads_back_to_the_same_bytes(tmp_path: Path) -> None:
    out = _built(tmp_path)
    manifest = read_manifest(out)
    assert isinstance(manifest, Manifest)
    assert manifest.to_json() == (out / MANIFEST).read_bytes()
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} - {MANIFEST}
    assert {record.path for record in manifest.artifacts} == files
    assert manifest.targets == ("cloudfoundry", "envoy", "kubernetes", "vm")
    assert manifest.emptyTargets == ()


def test_the_manifest_lists_the_targets_that_wrote_files_apart_from_those_that_ran_empty(tmp_path: Path) -> None:
    """The starter mesh runs on Kubernetes alone: the cloudfoundry and vm targets run, and write nothing."""
    write_starter(tmp_path / "mesh")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["build", str(tmp_path / "mesh"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    manifest = read_manifest(out)
    written = {record.target for record in manifest.artifacts}
    assert manifest.targets == tuple(sorted(written)) and "vm" not in written and "cloudfoundry" not in written
    assert manifest.emptyTargets == ("cloudfoundry", "vm")
    assert manifest.built_targets() == set(REGISTRY)


def test_render_tree_writes_the_typed_manifest() -> None:
    artifact = Artifact("a/b.yaml", b"x\n", "test", "platform:p", ("mesh.yaml",))
    files = render_tree([artifact], Revision("c" * 40, False, None), targets=["test"], inputs={"mesh.yaml": "1" * 40})
    manifest = parse_manifest(files[MANIFEST])
    [record] = manifest.artifacts
    assert (record.path, record.sources, record.target, record.workload) == ("a/b.yaml", ("mesh.yaml",), "test",
                                                                            "platform:p")
    assert manifest.source.commit == "c" * 40 and manifest.inputs == {"mesh.yaml": "1" * 40}


@pytest.mark.parametrize("damage", [
    lambda d: d["source"].update(dirty="yes"),  # no coercion: "yes" is not a boolean
    lambda d: d.update(extra=1),  # a field meshc never writes
    lambda d: d["artifacts"][0].pop("sha256"),
    lambda d: d["artifacts"][0].update(sources="mesh.yaml"),
    lambda d: d.update(targets=[*d["targets"], "zz"]),  # a target that wrote none of the artifacts
    lambda d: d.update(emptyTargets=["envoy"]),  # a target that wrote files cannot be empty
])
def test_a_manifest_meshc_did_not_write_is_refused(tmp_path: Path, damage) -> None:
    out = _built(tmp_path)
    document = json.loads((out / MANIFEST).read_bytes())
    damage(document)
    data = json.dumps(document).encode()
    with pytest.raises(ManifestError):
        parse_manifest(data)
    (out / MANIFEST).write_bytes(data)
    assert read_manifest(out) is None


def test_comparable_ignores_only_the_revision_and_the_inputs(tmp_path: Path) -> None:
    manifest = read_manifest(_built(tmp_path))
    assert manifest is not None
    moved = manifest.model_copy(update={"source": manifest.source.model_copy(update={"commit": "f" * 40}),
                                        "inputs": {}})
    assert moved.comparable() == manifest.comparable()
    assert moved.to_json() != manifest.to_json()
    fewer = manifest.model_copy(update={"artifacts": manifest.artifacts[1:]})
    assert fewer.comparable() != manifest.comparable()
