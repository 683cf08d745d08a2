"""The Gateway API HTTPRoute conformance checklist (docs/conformance.md): every case of
kubernetes-sigs/gateway-api conformance/tests is listed with the meshc test that covers it or the
reason meshc cannot express it, and the cases written in meshc (examples/gateway-api-conformance:
one Route and one RouteTest per case, with the requests and expectations of its .go file) pass
through the reference evaluator and real Envoy, and emit schema-valid HTTPRoutes."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from click.testing import CliRunner

from compiler.build import compile_mesh, emit
from compiler.cli import main
from compiler.diagnostics import Report
from compiler.routetest import route_tests
from tests.conftest import EXAMPLES, REPO, require_envoy
from tests.k8s_schemas import validation_errors

EXAMPLE = EXAMPLES / "gateway-api-conformance"
CHECKLIST = REPO / "docs" / "conformance.md"
# a checklist row: | `ShortName` | Core or Extended | covered by / not expressible: ... |
ROW = re.compile(r"^\| `(HTTPRoute[A-Za-z0-9]+)` \| (Core|Extended) \| (.+) \|$")
TEST_REFERENCE = re.compile(r"`(tests/[a-z_]+\.py)::([a-z_0-9]+)(?:\[[^\]]*\])?`")
EXAMPLE_REFERENCE = re.compile(r"RouteTest `(httproute-[a-z0-9-]+)`")


def checklist() -> dict[str, tuple[str, str]]:
    rows = [ROW.match(line) for line in CHECKLIST.read_text(encoding="utf-8").splitlines()]
    return {row.group(1): (row.group(2), row.group(3)) for row in rows if row}


def example_route_tests() -> set[str]:
    compiled = compile_mesh(EXAMPLE)
    assert compiled.loaded is not None
    return {test.model.name for test in route_tests(compiled.loaded.intents)}


def test_every_case_says_what_covers_it_or_why_not() -> None:
    rows = checklist()
    assert len(rows) >= 55  # the HTTPRoute cases of conformance/tests
    for name, (_, cell) in rows.items():
        covered = TEST_REFERENCE.findall(cell) or EXAMPLE_REFERENCE.findall(cell)
        assert covered or cell.startswith("not expressible: "), name


def test_every_test_the_checklist_names_exists() -> None:
    for _, cell in checklist().values():
        for path, name in TEST_REFERENCE.findall(cell):
            assert re.search(rf"^def {name}\(", (REPO / path).read_text(encoding="utf-8"), re.M), (path, name)


def test_the_example_holds_every_route_test_the_checklist_names_and_no_other() -> None:
    named = {test for _, cell in checklist().values() for test in EXAMPLE_REFERENCE.findall(cell)}
    assert named == example_route_tests()


@pytest.mark.e2e
def test_the_conformance_cases_pass_through_the_evaluator_and_real_envoy() -> None:
    """`meshc test --envoy`: every case by the reference evaluator, then through the gateway's
    bootstrap in a real Envoy on loopback (targets.envoylib.run), which must agree."""
    require_envoy()
    result = CliRunner().invoke(main, ["test", str(EXAMPLE), "--envoy", "--format", "json"])
    assert result.exit_code == 0, result.output
    diagnostics = json.loads(result.stdout)["diagnostics"]
    assert [d for d in diagnostics if d["severity"] != "info"] == []
    assert "0 failed" in result.stderr and "through Envoy" in result.stderr, result.stderr
    run, through = re.search(r"(\d+) route test case\(s\).*; (\d+) through Envoy", result.stderr).groups()
    assert int(run) == int(through) >= 90


def test_the_gateway_api_flavour_emits_schema_valid_http_routes_without_diagnostics() -> None:
    compiled = compile_mesh(EXAMPLE)
    assert compiled.graph is not None
    report = Report()
    documents = [d for a in emit(compiled.graph, report, ["kubernetes"]) if a.path.endswith(".yaml")
                 for d in yaml.safe_load_all(a.content) if d and d.get("kind") == "HTTPRoute"]
    assert len(documents) >= 20
    assert [error for d in documents for error in validation_errors(d)] == []
    assert [d.code.code for d in report.diagnostics if d.severity != "info"] == []


def test_checklist_and_example_agree_on_the_case_names() -> None:
    """Each example Route is named after its case (`httproute-<route>`), as its RouteTest is."""
    routes = {path.stem for path in (EXAMPLE / "routes").glob("*.yaml")}
    assert {f"httproute-{name}" for name in routes} == example_route_tests()
