"""`meshc test --envoy`: RouteTest cases through real Envoy processes running meshc's bootstraps."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from compiler.build import compile_mesh
from compiler.diagnostics import Report
from compiler.routetest import run_route_tests
from targets.envoylib import run_through_envoy
from tests.conftest import require_envoy
from tests.semantics import mesh, route, service, write

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def envoy_binary() -> str:
    return require_envoy()


def canary_mesh(root: Path) -> Path:
    cases = [
        {"name": "v2 by header", "request": {"host": "api", "path": "/x", "headers": {"x-canary": "1"}},
         "expect": {"to": [{"service": "api", "version": "v2"}], "path": "/x", "host": "api"}},
        {"name": "v1 otherwise", "request": {"host": "api.shop:8080", "path": "/x?q=1"},
         "expect": {"to": [{"service": "api", "version": "v1"}], "path": "/x?q=1", "host": "api.shop:8080"}},
        {"name": "old moved", "request": {"host": "api", "path": "/old"},
         "expect": {"status": 302, "redirect": "http://api:8080/new"}},  # the port it arrived on
        {"name": "not called", "request": {"host": "db"}, "expect": {"status": 404}},
    ]
    return write(root, [
        mesh(), service("web", calls=["api"]), service("api", versions=("v1", "v2")),
        route("api", [{"match": [{"headers": {"x-canary": {"exact": "1"}}}], "to": [{"version": "v2"}]},
                      {"match": [{"path": {"exact": "/old"}}], "redirect": {"path": "/new", "status": 302}},
                      {"to": [{"version": "v1"}]}], service="api"),
        {"apiVersion": "meshc/v1", "kind": "RouteTest", "name": "api", "caller": "web", "cases": cases},
    ])


def through_envoy(root: Path, envoy_binary: str, alter=None):
    compiled = compile_mesh(root)
    assert compiled.graph is not None
    report = Report()
    run = run_route_tests(compiled.graph, compiled.loaded.intents, report)
    assert run.failed == []
    if alter is not None:
        run.cases = [alter(case) for case in run.cases]
    run_through_envoy(compiled.graph, run, report, envoy_binary)
    return run, [d for d in report.diagnostics if d.code.code == "MESH504"]


def test_envoy_answers_every_case_as_the_evaluator_does(tmp_path: Path, envoy_binary: str) -> None:
    run, disagreements = through_envoy(canary_mesh(tmp_path), envoy_binary)
    assert disagreements == []
    assert (run.through_envoy, run.not_through_envoy) == (4, 0)


def test_a_disagreement_is_reported_at_the_case_as_a_meshc_bug(tmp_path: Path, envoy_binary: str) -> None:
    """MESH504 made on purpose: the decision of one case is altered after evaluation, so Envoy
    (which runs the real bootstrap) necessarily answers otherwise."""

    def alter(case):
        if case.case.name != "v1 otherwise":
            return case
        return dataclasses.replace(case, decision=dataclasses.replace(case.decision, path="/elsewhere"))

    _, disagreements = through_envoy(canary_mesh(tmp_path), envoy_binary, alter)
    [problem] = disagreements
    assert "the backend saw path '/x?q=1'; the semantics give '/elsewhere'" in problem.message
    assert problem.location.file == "04-routetest.yaml"
    assert problem.related[0].location.file == "03-route.yaml"
