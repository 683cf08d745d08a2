"""How diagnostics read: a syrupy snapshot of the text rendering of every front-end case, and
the json, github and sarif renderers on one report."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from compiler.build import compile_mesh
from compiler.cli import main
from compiler.codes import CODES, RETIRED
from compiler.render import RENDERERS
from tests.test_bad_input import CASES, MESH, SERVICE


@pytest.mark.parametrize("files", [pytest.param(f, id=i) for i, f, _ in CASES if i not in ("too-large", "deep-nesting")])
def test_text_rendering(make_mesh, files: dict, snapshot) -> None:
    root = make_mesh({"mesh.yaml": MESH, **files})
    compiled = compile_mesh(root)
    assert RENDERERS["text"](compiled.report.sorted(), compiled.sources) == snapshot


def test_every_front_end_code_has_a_case() -> None:
    covered = {code for _, _, expected in CASES for code, *_ in expected} | {"MESH008", "MESH009", "MESH011"}
    covered |= {"MESH050", "MESH060", "MESH061", "MESH062", "MESH063", "MESH064"}  # meshc fmt and import: tests/test_fmt.py, tests/test_import.py
    covered |= {"MESH012", "MESH013"}  # tests/test_hostile_budgets.py: input and output budgets
    covered |= {"MESH014"}  # tests/test_hostile_boundary.py: an output directory inside the mesh root
    covered |= {"MESH020", "MESH021", "MESH022", "MESH023", "MESH024"}  # tests/test_environments.py: overlays
    covered |= {"MESH236"}  # tests/test_patches.py: a Patch that cannot be applied (found when the targets run)
    front_end = {c for c in CODES if c < "MESH300"}
    assert front_end - covered - RETIRED == set()


def test_git_revision_outside_a_repository(tmp_path) -> None:
    (tmp_path / "mesh.yaml").write_text(MESH)
    result = CliRunner().invoke(main, ["check", str(tmp_path), "--ref", "HEAD"])
    assert result.exit_code == 1
    assert "error[MESH009]" in result.output


@pytest.fixture
def broken(make_mesh):
    root = make_mesh({"mesh.yaml": MESH, "a.yaml": SERVICE, "b.yaml": SERVICE.replace("8080", "8081") + "calls: [x]\n"})
    return compile_mesh(root)


def test_text_shows_source_line_caret_and_related(broken) -> None:
    text = RENDERERS["text"](broken.report.sorted(), broken.sources)
    assert "b.yaml:3:7: error[MESH203]: Service shop/api is defined twice" in text
    assert " 3 | name: api\n   |       ^" in text
    assert "note: a.yaml:3:7: first defined here" in text
    assert text.endswith("1 error\n")


def test_json_rendering(broken) -> None:
    data = json.loads(RENDERERS["json"](broken.report.sorted(), broken.sources))
    [item] = data["diagnostics"]
    assert item["code"] == "MESH203" and item["severity"] == "error"
    assert item["location"] == {"file": "b.yaml", "line": 3, "column": 7}
    assert item["related"] == [{"message": "first defined here", "location": {"file": "a.yaml", "line": 3, "column": 7}}]


def test_github_rendering(broken) -> None:
    text = RENDERERS["github"](broken.report.sorted(), broken.sources, root="meshes/shop")
    assert text.startswith("::error file=meshes/shop/b.yaml,line=3,col=7,title=MESH203 duplicate-object::")
    assert re.fullmatch(r"::error [^\n]*\n", text)


def test_sarif_rendering_names_rules_and_regions(broken) -> None:
    log = json.loads(RENDERERS["sarif"](broken.report.sorted(), broken.sources))
    run = log["runs"][0]
    assert log["version"] == "2.1.0"
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == ["MESH203"]
    [result] = run["results"]
    region = result["locations"][0]["physicalLocation"]["region"]
    assert (result["ruleId"], result["level"], region["startLine"], region["startColumn"]) == ("MESH203", "error", 3, 7)
    assert result["relatedLocations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "a.yaml"


def test_explain_prints_every_code() -> None:
    runner = CliRunner()
    for code, entry in CODES.items():
        result = runner.invoke(main, ["explain", code.lower()])
        assert result.exit_code == 0
        assert result.output.startswith(f"{code} ({entry.name})")
        assert entry.explanation in result.output
    assert runner.invoke(main, ["explain", "MESH999"]).exit_code == 2
