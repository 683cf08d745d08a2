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
from tests.semantics import gateway, mesh, route, service, write

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


def gateway_mesh(root: Path) -> Path:
    """One Gateway with every listener kind: overlapping http hosts on one port, overlapping
    https hosts and a TLS passthrough host on another, and a tcp listener."""
    def case(name: str, request: dict, expect: dict) -> dict:
        return {"name": name, "request": request, "expect": expect}

    cases = [
        case("exact http listener", {"host": "foo.bar.com", "port": 80}, {"to": [{"service": "v1"}]}),
        case("wildcard http listener", {"host": "x.bar.com:80", "port": 80}, {"to": [{"service": "v2"}]}),
        case("no http listener", {"host": "bar.com", "port": 80}, {"status": 404}),
        case("exact https listener", {"host": "shop.example.com", "port": 443, "sni": "shop.example.com"},
             {"to": [{"service": "v3"}]}),
        case("wildcard https listener", {"host": "a.example.com", "port": 443, "sni": "a.example.com"},
             {"to": [{"service": "v4"}]}),
        case("host another https listener serves", {"host": "a.example.com", "port": 443, "sni": "shop.example.com"},
             {"status": 421}),
        case("unknown sni", {"host": "other.org", "port": 443, "sni": "other.org"}, {"status": 404}),
        case("passthrough", {"host": "db.example.com", "port": 443, "sni": "db.example.com"},
             {"to": [{"service": "db"}]}),
        case("tcp", {"host": "anything", "port": 9000}, {"to": [{"service": "queue"}]}),
    ]
    https = {"protocol": "https", "port": 443}
    return write(root, [
        mesh(), *(service(n) for n in ("v1", "v2", "v3", "v4")),
        service("db", ports=[{"name": "tls", "port": 5432, "protocol": "tls"}]),
        service("queue", ports=[{"name": "tcp", "port": 5672, "protocol": "tcp"}]),
        gateway("edge", [
            {"name": "foo", "port": 80, "protocol": "http", "hosts": ["foo.bar.com"]},
            {"name": "bar", "port": 80, "protocol": "http", "hosts": ["*.bar.com"]},
            {"name": "shop", **https, "hosts": ["shop.example.com"], "tls": {"mode": "terminate", "certificate": "a"}},
            {"name": "rest", **https, "hosts": ["*.example.com"], "tls": {"mode": "terminate", "certificate": "b"}},
            {"name": "db", "port": 443, "protocol": "tls", "hosts": ["db.example.com"], "tls": {"mode": "passthrough"}},
            {"name": "queue", "port": 9000, "protocol": "tcp", "hosts": ["queue.internal"]},
        ]),
        route("foo", [{"to": [{"service": "v1"}]}], gateway="edge", hosts=["foo.bar.com"]),
        route("bar", [{"to": [{"service": "v2"}]}], gateway="edge", hosts=["*.bar.com"]),
        route("shop", [{"to": [{"service": "v3"}]}], gateway="edge", hosts=["shop.example.com"]),
        route("rest", [{"to": [{"service": "v4"}]}], gateway="edge", hosts=["*.example.com"]),
        route("db", [{"match": [{"sni": ["db.example.com"]}], "to": [{"service": "db"}]}], gateway="edge",
              hosts=["db.example.com"]),
        route("queue", [{"to": [{"service": "queue"}]}], gateway="edge", hosts=["queue.internal"]),
        {"apiVersion": "meshc/v1", "kind": "RouteTest", "name": "edge", "gateway": "edge", "cases": cases},
    ])


def test_gateway_cases_on_http_https_tls_and_tcp_listeners_run_through_envoy(tmp_path: Path,
                                                                                 envoy_binary: str) -> None:
    """Issue 11: `meshc test --envoy` must not skip https and tls listeners: every case runs
    through Envoy, over TLS with its SNI where the listener speaks TLS. Overlapping listeners on
    one port (`foo.bar.com` and `*.bar.com`, `shop.example.com` and `*.example.com`) each take
    the names they match most specifically (Gateway API GatewaySpec.listeners, "Listeners that
    are distinct only by Hostname": "Exact matches MUST be processed before wildcard matches");
    an unknown SNI is answered 404 ("If traffic to a Gateway does not match any Listener's
    hostname ... HTTP returns a 404 status code")."""
    run, disagreements = through_envoy(gateway_mesh(tmp_path), envoy_binary)
    assert [d.message for d in disagreements] == []
    assert (run.through_envoy, run.not_through_envoy) == (9, 0)


def test_a_backslash_in_a_rewrite_stays_literal_in_envoy(tmp_path: Path, envoy_binary: str) -> None:
    """Envoy's regex_rewrite substitution reads `\\1` as a capture group (RE2): a rewrite prefix
    or path holding a backslash must reach the path as written, as the evaluator decides."""
    cases = [
        {"name": "no path match", "request": {"host": "api", "path": "/x"}, "expect": {"path": "/a\\1b/x"}},
        {"name": "regex path", "request": {"host": "api", "path": "/r/y"}, "expect": {"path": "/c\\\\d"}},
        {"name": "whole path", "request": {"host": "api", "path": "/w"}, "expect": {"path": "/p\\1q"}},
    ]
    root = write(tmp_path, [
        mesh(), service("web", calls=["api"]), service("api"),
        route("api", [{"match": [{"path": {"exact": "/w"}}], "rewrite": {"path": "/p\\1q"}, "to": [{}]},
                      {"match": [{"path": {"regex": "/r/.*"}}], "rewrite": {"prefix": "/c\\\\d"}, "to": [{}]},
                      {"rewrite": {"prefix": "/a\\1b"}, "to": [{}]}], service="api"),
        {"apiVersion": "meshc/v1", "kind": "RouteTest", "name": "api", "caller": "web", "cases": cases},
    ])
    run, disagreements = through_envoy(root, envoy_binary)
    assert disagreements == [] and run.through_envoy == 3
