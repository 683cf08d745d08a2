"""`meshc test`: RouteTest cases through the reference evaluator, located failures, coverage."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from compiler.cli import main
from tests.conftest import BOOKINFO, copy_mesh
from tests.semantics import linked, mesh, route, service, write

runner = CliRunner()


def meshc_test(*args: str):
    return runner.invoke(main, ["test", *args])


def test_bookinfo_route_tests_pass_with_every_rule_covered() -> None:
    result = meshc_test(str(BOOKINFO), "--fail-under", "100", "--format", "json")
    assert result.exit_code == 0, result.output
    assert "0 failed; rule coverage 100% (5 of 5 rules)" in result.stderr
    assert json.loads(result.stdout)["diagnostics"] == []


def canary(tmp_path: Path, cases: list[dict], rules: list[dict] | None = None) -> Path:
    documents = [
        mesh(), service("web", calls=["api"]), service("api", versions=("v1", "v2")),
        route("api", rules or [{"match": [{"path": {"prefix": "/v2"}}], "to": [{"version": "v2"}]},
                               {"to": [{"version": "v1"}]}], service="api"),
        {"apiVersion": "meshc/v1", "kind": "RouteTest", "name": "api", "caller": "web", "cases": cases},
    ]
    linked(tmp_path / "probe", documents)  # the mesh itself is clean
    return write(tmp_path / "mesh", documents)


def test_a_failing_case_points_at_the_case_and_at_the_deciding_rule(tmp_path: Path) -> None:
    root = canary(tmp_path, [
        {"name": "ok", "request": {"host": "api", "path": "/v2/x"}, "expect": {"to": [{"service": "api", "version": "v2"}]}},
        {"name": "character prefix", "request": {"host": "api", "path": "/v2example"},
         "expect": {"to": [{"service": "api", "version": "v2"}]}},
    ])
    result = meshc_test(str(root), "--format", "json")
    assert result.exit_code == 1
    [failure] = [d for d in json.loads(result.stdout)["diagnostics"] if d["code"] == "MESH501"]
    assert failure["location"]["file"].endswith("04-routetest.yaml") and failure["location"]["line"] > 1
    assert "character prefix" in failure["message"] and "shop/api@v1" in failure["message"]
    assert failure["related"][0]["location"]["file"].endswith("03-route.yaml")
    assert "rule 1 decided" in failure["related"][0]["message"]


def test_coverage_lists_uncovered_rules_and_fail_under_fails(tmp_path: Path) -> None:
    root = canary(tmp_path, [{"name": "v1", "request": {"host": "api.shop"}, "expect": {"status": 200, "path": "/"}}])
    result = meshc_test(str(root), "--format", "json", "--fail-under", "60")
    assert result.exit_code == 1
    uncovered = [d for d in json.loads(result.stdout)["diagnostics"] if d["code"] == "MESH503"]
    assert [d["message"] for d in uncovered] == ["Route shop/api rule 0 decides no RouteTest case"]
    assert "rule coverage 50% (1 of 2 rules)" in result.stderr
    assert meshc_test(str(root), "--fail-under", "50").exit_code == 0


def test_unknown_caller_and_rule_are_reported(tmp_path: Path) -> None:
    root = canary(tmp_path, [{"name": "x", "request": {"host": "api"}, "expect": {"route": "api", "rule": 7}}])
    text = (root / "04-routetest.yaml").read_text()
    (root / "04-routetest.yaml").write_text(text.replace("caller: web", "caller: nobody"))
    result = meshc_test(str(root), "--format", "json")
    assert result.exit_code == 1
    codes = [d["code"] for d in json.loads(result.stdout)["diagnostics"] if d["code"].startswith("MESH50")]
    assert codes == ["MESH503", "MESH503", "MESH502"]
    (root / "04-routetest.yaml").write_text(text)
    messages = [d["message"] for d in json.loads(meshc_test(str(root), "--format", "json").stdout)["diagnostics"]]
    assert "RouteTest shop/api: Route shop/api has 2 rule(s), no rule 7" in messages


def test_a_route_test_is_schema_checked_like_any_intent(tmp_path: Path) -> None:
    root = tmp_path / "bookinfo"
    copy_mesh(BOOKINFO, root)
    path = root / "tests" / "routes.yaml"
    path.write_text(path.read_text().replace("caller: productpage", "caller: productpage\ngateway: public", 1))
    result = meshc_test(str(root), "--format", "json")
    assert result.exit_code == 1
    assert [d["code"] for d in json.loads(result.stdout)["diagnostics"]] == ["MESH108"]


def test_route_tests_do_not_change_what_build_emits(tmp_path: Path) -> None:
    root = tmp_path / "bookinfo"
    copy_mesh(BOOKINFO, root)
    with_tests = runner.invoke(main, ["build", str(root), "-o", str(tmp_path / "a"), "-q"])
    shutil.rmtree(root / "tests")
    without = runner.invoke(main, ["build", str(root), "-o", str(tmp_path / "b"), "-q"])
    assert with_tests.exit_code == without.exit_code == 0
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    for relative in files:
        if relative.name != "manifest.json":  # it lists the intent files read
            assert (tmp_path / "a" / relative).read_bytes() == (tmp_path / "b" / relative).read_bytes(), relative
