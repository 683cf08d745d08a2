"""Suppressions: line comments and Mesh.suppress, each reported when unused; --fail-on."""

from __future__ import annotations

from click.testing import CliRunner

from compiler.cli import main
from tests.test_policies_support import MESH, analysed, fixture, found, frontend, position

ORPHAN = fixture("orphan.yaml")


def with_suppress(entries: str) -> str:
    return MESH + f"suppress:\n{entries}"


def test_mesh_suppress_by_kind_namespace_and_name(make_mesh) -> None:
    files = {"mesh.yaml": with_suppress("  - {code: MESH360, name: Service/batch/orphan}\n"),
             "front.yaml": frontend(), "orphan.yaml": ORPHAN}
    assert analysed(make_mesh(files)) == []


def test_mesh_suppress_by_namespace_and_name(make_mesh) -> None:
    files = {"mesh.yaml": with_suppress("  - {code: MESH360, name: batch/orphan}\n"),
             "front.yaml": frontend(), "orphan.yaml": ORPHAN}
    assert analysed(make_mesh(files)) == []


def test_mesh_suppress_without_name_covers_the_whole_mesh(make_mesh) -> None:
    second = ORPHAN.replace("name: orphan", "name: other")
    files = {"mesh.yaml": with_suppress("  - {code: MESH360}\n"),
             "front.yaml": frontend(), "orphan.yaml": ORPHAN, "other.yaml": second}
    assert analysed(make_mesh(files)) == []


def test_mesh_suppress_for_another_object_is_unused(make_mesh) -> None:
    files = {"mesh.yaml": with_suppress("  - {code: MESH360, name: Service/shop/orphan}\n"),
             "front.yaml": frontend(), "orphan.yaml": ORPHAN}
    assert found(analysed(make_mesh(files))) == [
        ("MESH390", *position(files, "mesh.yaml", "{code: MESH360")),
        ("MESH360", *position(files, "orphan.yaml", "orphan")),
    ]


def test_suppressing_a_non_analysis_code_is_reported(make_mesh) -> None:
    files = {"mesh.yaml": with_suppress("  - {code: MESH202}\n"), "front.yaml": frontend()}
    (unused,) = analysed(make_mesh(files))
    assert unused.code.code == "MESH390"
    assert "MESH202 cannot be suppressed" in unused.message


def test_line_comment_with_several_codes(make_mesh) -> None:
    orphan = ORPHAN.replace("name: orphan\n", "name: orphan  # meshc: ignore[MESH360, MESH999]\n")
    files = {"mesh.yaml": MESH, "front.yaml": frontend(), "orphan.yaml": orphan}
    (unused,) = analysed(make_mesh(files))
    assert found([unused]) == [("MESH390", *position(files, "orphan.yaml", "# meshc"))]
    assert "MESH999 is not a diagnostic code" in unused.message


def test_fail_on_chooses_the_failing_severity(make_mesh) -> None:
    root = make_mesh({"mesh.yaml": MESH, "front.yaml": frontend(), "orphan.yaml": ORPHAN})
    runner = CliRunner()
    assert runner.invoke(main, ["check", str(root)]).exit_code == 0
    assert runner.invoke(main, ["check", str(root), "--fail-on", "warning"]).exit_code == 0
    failed = runner.invoke(main, ["check", str(root), "--fail-on", "info"])
    assert failed.exit_code == 1
    assert "info[MESH360]" in failed.output
