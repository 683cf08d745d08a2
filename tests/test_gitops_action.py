"""The shell steps of action.yml, run by bash against a real repository, as the runner would run them.

`uses:` steps (setup-python, upload-sarif) need GitHub; the steps written here are executed
with the env the action gives them and GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, TEST_EXTRA, require_meshc, require_shared_schemas, require_tool
from tests.gitops_support import GitMesh, git_mesh, meshc


@pytest.fixture(autouse=True)
def _meshc_installed() -> None:
    require_meshc()

ACTION = yaml.safe_load((REPO / "action.yml").read_text(encoding="utf-8"))
STEPS = {step["id"]: step for step in ACTION["runs"]["steps"] if "id" in step}


def _run_step(step_id: str, repo: GitMesh, context: dict[str, str], inputs: dict[str, str]) -> tuple[int, str]:
    """Run one step's script; ${{ inputs.x }} and ${{ github.x }} / ${{ steps.x }} come from the arguments."""
    defaults = {name: str(spec.get("default", "")) for name, spec in ACTION["inputs"].items()}
    values = {**{f"inputs.{k}": v for k, v in {**defaults, **inputs}.items()}, **context}
    step = STEPS[step_id]
    env = {**os.environ, "HOME": str(repo.top), "GIT_CONFIG_NOSYSTEM": "1", "NO_COLOR": "1"}
    for name, expression in step.get("env", {}).items():
        env[name] = re.sub(r"\$\{\{\s*([\w.-]+)\s*\}\}", lambda m: values[m.group(1)], str(expression))
    outputs = repo.top.parent / "github_output"
    env["GITHUB_OUTPUT"] = str(outputs)
    env["GITHUB_STEP_SUMMARY"] = str(repo.top.parent / "step_summary")
    done = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=repo.top, env=env, capture_output=True,
                          text=True, timeout=300)
    return done.returncode, done.stdout + done.stderr


def test_check_step_writes_valid_sarif_and_its_exit_code(tmp_path: Path, jsonschema) -> None:
    schema = json.loads((require_shared_schemas() / "sarif" / "sarif-schema-2.1.0.json").read_bytes())
    repo = git_mesh(tmp_path / "repo")
    code, log = _run_step("check", repo, {}, {"path": "mesh"})
    assert code == 0, log
    assert (tmp_path / "github_output").read_text() == "exit-code=0\n"
    jsonschema.Draft4Validator(schema).validate(json.loads((repo.top / "meshc.sarif").read_bytes()))

    repo.edit("services/reviews.yaml", "timeout: 10s", "timeout: soon")
    (tmp_path / "github_output").unlink()
    code, log = _run_step("check", repo, {}, {"path": "mesh"})
    assert code == 0, log  # the step itself succeeds so that the SARIF is uploaded
    assert (tmp_path / "github_output").read_text() == "exit-code=1\n"
    assert "error[MESH107]" in log
    sarif = json.loads((repo.top / "meshc.sarif").read_bytes())
    jsonschema.Draft4Validator(schema).validate(sarif)
    assert sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == \
        "mesh/services/reviews.yaml"
    failing, _ = _run_step("fail-on-diagnostics", repo, {"steps.check.outputs.exit-code": "1"}, {})
    assert failing == 1


def test_build_check_step_fails_on_stale_artifacts(tmp_path: Path) -> None:
    repo = git_mesh(tmp_path / "repo")
    assert meshc("build", str(repo.root), "-o", str(repo.top / "artifacts")).exit_code == 0
    code, log = _run_step("build-check", repo, {}, {"path": "mesh", "output": "artifacts"})
    assert code == 0, log
    repo.edit("services/reviews.yaml", "timeout: 10s", "timeout: 9s")
    code, log = _run_step("build-check", repo, {}, {"path": "mesh", "output": "artifacts"})
    assert code == 1
    assert "changed: artifacts/" in log


def test_diff_step_summarises_the_pull_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")  # set by the runner, not the step
    monkeypatch.setenv("GITHUB_REPOSITORY", "example/mesh")
    repo = git_mesh(tmp_path / "repo")
    base = repo.git("rev-parse", "HEAD")
    repo.edit("routes/reviews-canary.yaml", "exact: jason", "exact: bob")
    head = repo.commit("canary for bob")
    context = {"github.event.pull_request.base.sha": base, "github.event.pull_request.head.sha": head,
               "github.event.pull_request.number": "7", "github.token": "unused"}
    code, log = _run_step("diff", repo, context, {"path": "mesh"})
    assert code == 0, log
    summary = (tmp_path / "step_summary").read_text()
    assert summary == (repo.top / "meshc-diff.md").read_text()  # the comment's body, too
    assert summary.startswith("<!-- meshc diff -->\n### meshc diff\n")
    line = next(n for n, text in enumerate((repo.root / "routes/reviews-canary.yaml").read_text().splitlines(), 1)
                if text.startswith("name: reviews-canary"))
    assert (f"| [Route/bookinfo/reviews-canary](https://github.com/example/mesh/blob/{head}/mesh/routes/"
            f"reviews-canary.yaml#L{line}) (routes/reviews-canary.yaml:{line}) | modified |") in summary
    assert "```mermaid\nflowchart LR\n" in summary


def test_graph_step_writes_the_page_even_when_check_finds_errors(tmp_path: Path) -> None:
    repo = git_mesh(tmp_path / "repo")
    repo.edit("access/policies.yaml", "  - from: [productpage]\n    methods: [GET]\n---\napiVersion: meshc/v1\n"
              "kind: AccessPolicy\nname: ratings-callers", "  - from: [details]\n    methods: [GET]\n---\n"
              "apiVersion: meshc/v1\nkind: AccessPolicy\nname: ratings-callers")
    code, log = _run_step("check", repo, {}, {"path": "mesh"})
    assert (tmp_path / "github_output").read_text() == "exit-code=1\n", log  # productpage -> reviews is denied
    code, log = _run_step("graph", repo, {}, {"path": "mesh"})
    assert code == 0, log
    page = (repo.top / "meshc-graph.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and '"state":"denied"' in page
    upload = ACTION["runs"]["steps"][[s.get("id") for s in ACTION["runs"]["steps"]].index("graph") + 1]
    assert upload["uses"].startswith("actions/upload-artifact@")
    assert upload["with"]["path"] == "meshc-graph.html"


def _example_workflow() -> str:
    """The example workflow docs/gitops.md shows users (the YAML block that starts with `name:`)."""
    text = (REPO / "docs" / "gitops.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    [workflow] = [block for block in blocks if block.startswith("name:")]
    return workflow


@pytest.mark.parametrize(
    "schema, document",
    [
        ("vendor.github-actions", "action.yml"),
        ("vendor.github-workflows", ".github/workflows/ci.yml"),
        ("vendor.github-workflows", "docs/gitops.md#example"),
    ],
)
def test_github_files_validate_against_schemastore(schema: str, document: str, tmp_path: Path) -> None:
    """check-jsonschema's vendored SchemaStore schemas for action metadata and workflows."""
    path = REPO / document
    if document.endswith("#example"):
        path = tmp_path / "example-workflow.yml"
        path.write_text(_example_workflow(), encoding="utf-8")
    done = subprocess.run([require_tool("check-jsonschema", TEST_EXTRA), "--builtin-schema", schema, str(path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
