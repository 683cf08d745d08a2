"""The front-end commands: init, schema, graph, build's writer and the target registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from compiler.artifact import Artifact
from compiler.cli import main
from compiler.loader import Revision
from compiler.manifest import MANIFEST
from compiler.writer import OutputError, check_path, render_tree, write_tree
from compiler.yamlload import load_documents
from tests.conftest import BOOKINFO, example_files

runner = CliRunner()


def test_init_writes_a_mesh_that_checks_clean(tmp_path: Path) -> None:
    result = runner.invoke(main, ["init", str(tmp_path / "new")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "new" / "mesh.yaml").is_file()
    check = runner.invoke(main, ["check", str(tmp_path / "new"), "--fail-on", "warning"])
    assert check.exit_code == 0, check.output


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    (tmp_path / "mesh.yaml").write_text("keep me\n")
    result = runner.invoke(main, ["init", str(tmp_path)])
    assert result.exit_code == 2
    assert (tmp_path / "mesh.yaml").read_text() == "keep me\n"


def _schema() -> dict:
    result = runner.invoke(main, ["schema"])
    assert result.exit_code == 0
    return json.loads(result.output)


def test_schema_accepts_every_example_document(jsonschema) -> None:
    validator = jsonschema.Draft202012Validator(_schema())
    documents = 0
    for path in example_files(BOOKINFO):
        for document in load_documents(path.read_text()):
            errors = list(validator.iter_errors(document.data))
            assert errors == [], f"{path}: {errors[0].message}"
            documents += 1
    assert documents >= 15


@pytest.mark.parametrize(
    "document",
    [
        {"apiVersion": "meshc/v1", "kind": "Service", "name": "a", "platform": "p",
         "ports": [{"name": "h", "port": 1, "protocol": "http"}], "colour": "red"},
        {"apiVersion": "meshc/v1", "kind": "Service", "name": "Bad_Name", "platform": "p",
         "ports": [{"name": "h", "port": 1, "protocol": "http"}]},
        {"apiVersion": "meshc/v1", "kind": "Route", "name": "r"},
    ],
)
def test_schema_rejects_what_meshc_rejects(document: dict, jsonschema) -> None:
    assert list(jsonschema.Draft202012Validator(_schema()).iter_errors(document))


def test_schema_of_one_kind() -> None:
    result = runner.invoke(main, ["schema", "Gateway"])
    assert json.loads(result.output)["title"] == "Gateway"
    assert runner.invoke(main, ["schema", "Nope"]).exit_code == 2


@pytest.mark.parametrize("fmt", ["dot", "mermaid", "json"])
def test_graph_formats(fmt: str, snapshot) -> None:
    result = runner.invoke(main, ["graph", str(BOOKINFO), "--format", fmt])
    assert result.exit_code == 0, result.output
    assert result.output == snapshot


def test_graph_json_has_the_calls() -> None:
    data = json.loads(runner.invoke(main, ["graph", str(BOOKINFO), "--format", "json"]).output)
    calls = {s["id"]: s["calls"] for s in data["services"]}
    assert calls["bookinfo/productpage"] == ["bookinfo/details", "bookinfo/reviews"]
    assert calls["bookinfo/reviews"] == ["bookinfo/ratings"]


def _artifact(path: str, content: bytes = b"x\n") -> Artifact:
    return Artifact(path, content, "test", "platform:p", ("a.yaml",))


@pytest.mark.parametrize("path", ["../x", "/etc/passwd", "a/../../b", "a//b", "", ".hidden", "a/./b", "a\\b"])
def test_artifact_paths_cannot_leave_the_output_directory(path: str) -> None:
    with pytest.raises(OutputError):
        check_path(path)


def test_write_replaces_atomically_and_leaves_no_stale_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    revision = Revision("abc", False, None)
    write_tree(out, render_tree([_artifact("a/one.yaml"), _artifact("b/two.yaml")], revision))
    write_tree(out, render_tree([_artifact("a/one.yaml", b"new\n")], revision))
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == ["a/one.yaml", MANIFEST]
    assert (out / "a/one.yaml").read_bytes() == b"new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging or retired directories left


def test_write_refuses_a_directory_meshc_did_not_write(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("precious")
    with pytest.raises(OutputError):
        write_tree(tmp_path, render_tree([_artifact("a.yaml")], Revision(None, True, None)))
    assert (tmp_path / "mine.txt").read_text() == "precious"


def test_manifest_records_hashes_sources_and_revision() -> None:
    files = render_tree([_artifact("a.yaml", b"hello\n")], Revision("0" * 40, True, "main"))
    manifest = json.loads(files[MANIFEST])
    assert manifest["source"] == {"commit": "0" * 40, "dirty": True, "ref": "main"}
    [entry] = manifest["artifacts"]
    assert entry == {"path": "a.yaml", "sha256": "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03",
                     "sources": ["a.yaml"], "target": "test", "workload": "platform:p"}


def test_two_artifacts_cannot_claim_one_path() -> None:
    with pytest.raises(OutputError):
        render_tree([_artifact("a.yaml"), _artifact("a.yaml")], Revision(None, True, None))


def test_build_is_byte_identical_twice(tmp_path: Path) -> None:
    for out in ("one", "two"):
        assert runner.invoke(main, ["build", str(BOOKINFO), "-o", str(tmp_path / out)]).exit_code == 0
    one = {p.relative_to(tmp_path / "one"): p.read_bytes() for p in (tmp_path / "one").rglob("*") if p.is_file()}
    two = {p.relative_to(tmp_path / "two"): p.read_bytes() for p in (tmp_path / "two").rglob("*") if p.is_file()}
    assert one == two
    assert all(content.endswith(b"\n") and b"\r\n" not in content for content in one.values())


def test_unknown_target_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(main, ["build", str(BOOKINFO), "-o", str(tmp_path / "o"), "-t", "nope"])
    assert result.exit_code == 2
    assert not (tmp_path / "o").exists()


def test_check_reports_what_the_targets_report(bookinfo_copy: Path, tmp_path: Path) -> None:
    """check runs every target without writing (issue 13): target diagnostics and suppressions
    of target codes are the same as a build's."""
    mesh = bookinfo_copy / "mesh.yaml"
    mesh.write_text(mesh.read_text().replace("name: Service/bookinfo/details}", "name: Service/bookinfo/reviews}"))
    check = runner.invoke(main, ["check", str(bookinfo_copy), "--fail-on", "info"])
    build = runner.invoke(main, ["build", str(bookinfo_copy), "-o", str(tmp_path / "out")])
    for result in (check, build):
        assert "warning[MESH434]: the router delivers details.apps.example.com" in result.output
        assert ("warning[MESH390]: Mesh.suppress entry 1 suppresses nothing: no MESH434 diagnostic in "
                "Service/bookinfo/reviews") in result.output
    assert check.exit_code == 1 and build.exit_code == 0


def test_output_directory_over_the_intents_is_refused_before_compiling(bookinfo_copy: Path) -> None:
    result = runner.invoke(main, ["build", str(bookinfo_copy), "-o", str(bookinfo_copy / "services")])
    assert result.exit_code == 2
    assert "holds no manifest.json: refusing to replace a directory meshc did not write" in result.output
    assert "MESH202" not in result.output
    assert (bookinfo_copy / "services" / "reviews.yaml").is_file()


def test_target_option_help_lists_every_registered_target_with_its_summary() -> None:
    from targets import REGISTRY

    for command in ("build", "diff"):
        result = runner.invoke(main, [command, "--help"], terminal_width=1000)
        assert result.exit_code == 0
        for info in REGISTRY.values():
            assert f"{info.name}: {info.summary}." in " ".join(result.output.split())


def test_build_driver_compares_without_writing(tmp_path: Path) -> None:
    from compiler.build import build_mesh

    out = tmp_path / "out"
    written = build_mesh(BOOKINFO, out)
    assert not written.failed and written.written == len([p for p in out.rglob("*") if p.is_file()])
    assert written.kept is None and written.drift is None
    edited = next(p for p in sorted(out.rglob("*.yaml")))
    edited.write_bytes(b"edited\n")
    (out / "stray.txt").write_bytes(b"x\n")
    checked = build_mesh(BOOKINFO, out, check_only=True)
    assert checked.drift is not None
    assert (checked.drift.added, checked.drift.removed, checked.drift.changed) == (
        (), ("stray.txt",), (edited.relative_to(out).as_posix(),))
    assert edited.read_bytes() == b"edited\n"
