"""The Istio flavour carries docs/intents.md's semantics: tests/istio_reference.py, a small
reader of the emitted objects written from Istio's reference (VirtualService: `http` entries in
order, the first whose match list matches wins; `uri.prefix` is a character prefix;
`rewrite.uri` replaces the matched prefix or the exact path), decides generated requests as the
reference evaluator does."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.build import emit
from compiler.diagnostics import Report
from compiler.evaluate import Decision, Proxy, Request, evaluate
from tests.istio_reference import WELL_KNOWN_PORTS, decide, joined
from tests.k8s_schemas import validation_errors
from tests.semantics import excused, key, linked, mesh, route, rules_reported, service
from tests.test_semantics_envoy import any_request, rule

__all__ = ["ECHO_ANSWER", "WELL_KNOWN_PORTS", "evaluator_decides", "istio_decides", "joined"]

K8S = {"name": "k8s", "kind": "kubernetes", "flavor": "istio"}


def kubernetes(root: Path, rules: list[dict], report: Report | None = None):
    graph = linked(root, [mesh(K8S), service("web", calls=["api"], platform="k8s"),
                          service("api", versions=("v1", "v2", "v3"), platform="k8s"),
                          route("api", rules, service="api")], allowed=("MESH301", "MESH302", "MESH332"))
    documents = [doc for artifact in emit(graph, report or Report(), ["kubernetes"]) if artifact.path.endswith(".yaml")
                 for doc in yaml.safe_load_all(artifact.content) if doc]
    return graph, documents


ECHO_ANSWER = (("content-type", "application/json"),)


def istio_decides(spec: dict, request: Request) -> tuple:
    """What Istio does with the request, read by tests/istio_reference.py: ("route",
    [(service, subset, port, weight, request headers, response headers)], path), ("redirect",
    code, location) or ("404",)."""
    outcome = decide(spec, request, answer=ECHO_ANSWER)
    if outcome.action == "redirect":
        return ("redirect", outcome.status, outcome.location)
    if outcome.action == "preflight":
        return ("preflight", joined(outcome.cors))
    if outcome.action == "forward":
        return ("route", sorted((host.split(".")[0], *rest, *edits)
                                for (host, *rest), edits in zip(outcome.destinations, outcome.headers, strict=True)),
                outcome.path, outcome.host, tuple((h.split(".")[0], *rest) for h, *rest in outcome.mirrors))
    return ("404",)


def evaluator_decides(decision: Decision) -> tuple:
    if decision.action == "redirect":
        return ("redirect", decision.status, decision.location)
    if decision.action == "preflight":
        return ("preflight", joined(decision.abort_edits[0].apply(())))
    if decision.action == "forward":
        return ("route", sorted((t.service.name, t.version, t.port, t.weight, joined(decision.headers_seen(t)),
                                 joined(decision.response_headers(t, ECHO_ANSWER))) for t in decision.backends),
                decision.path, decision.host,
                tuple(sorted((t.service.name, t.version, t.port, float(p)) for t, p in decision.mirrors)))
    return ("404",)


# the envoy differential test's requests, CORS preflights and requests with an Origin among them
request = any_request


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(rules=st.lists(rule, min_size=1, max_size=4), requests=st.lists(request, min_size=10, max_size=20))
def test_the_istio_virtual_service_decides_as_the_evaluator(tmp_path_factory, rules, requests) -> None:
    report = Report()
    graph, documents = kubernetes(tmp_path_factory.mktemp("istio"), rules, report)
    [service_route] = [d for d in documents if d["kind"] == "VirtualService" and d["metadata"]["name"] == "api"]
    assert validation_errors(service_route) == []  # the Istio 1.30 CRD accepts what the reader reads
    # the VirtualService keeps the rules' order and matches (first match wins, as in meshc), so
    # the rule that decides is the evaluator's: a MESH427 there, or on the whole Route, excuses
    said = rules_reported(graph, report, key("api"), "MESH427")
    for sent in requests:
        decision = evaluate(graph, Proxy(service=key("web")), sent)
        if istio_decides(service_route["spec"], sent) != evaluator_decides(decision):
            assert excused(said, decision.rule.index if decision.rule else None), (sent, said, service_route["spec"])


def test_a_redirect_prefix_istio_cannot_carry_is_reported_at_the_intent(tmp_path: Path) -> None:
    """istio.io HTTPRedirect.uri: "On a redirect, overwrite the Path portion of the URL with this
    value"; the whole path, so a replaced prefix after a prefix match cannot be written. After
    the stem itself (`/a` exactly) the new path is fixed and is carried."""
    report = Report()
    graph, documents = kubernetes(tmp_path, [{"match": [{"path": {"prefix": "/a"}}], "redirect": {"prefix": "/new"}},
                                             {"to": [{"version": "v1"}]}], report)
    [warning] = [d for d in report.diagnostics if d.code.code == "MESH427"]
    assert "rule 0 of Route shop/api" in warning.message and warning.location.line > 1
    [spec] = [d["spec"] for d in documents if d["kind"] == "VirtualService" and d["metadata"]["name"] == "api"]
    web = Proxy(service=key("web"))
    assert istio_decides(spec, Request("api", "/a")) == evaluator_decides(evaluate(graph, web, Request("api", "/a")))
    assert istio_decides(spec, Request("api", "/a/b"))[2] == "http://api:8080/a/b"  # the path kept, as reported


def test_segment_prefix_and_rewrite_on_istio(tmp_path: Path) -> None:
    """Issue 11: `prefix: /v2` was a character prefix on Istio (`/v2example` went to v2), and
    `rewrite: {prefix: /}` after `/api` turned `/api/foo` into `//foo` (Istio's `uri` rewrite
    replaces the matched prefix `/api`)."""
    _, documents = kubernetes(tmp_path, [
        {"match": [{"path": {"prefix": "/api"}}], "to": [{"version": "v1"}], "rewrite": {"prefix": "/"}},
        {"match": [{"path": {"prefix": "/v2"}}], "to": [{"version": "v2"}]},
        {"to": [{"version": "v3"}]}])
    [spec] = [d["spec"] for d in documents if d["kind"] == "VirtualService" and d["metadata"]["name"] == "api"]
    unchanged = ((), ECHO_ANSWER)
    assert istio_decides(spec, Request("api", "/api/foo")) == (
        "route", [("api", "v1", 8080, 100, *unchanged)], "/foo", "api", ())
    assert istio_decides(spec, Request("api", "/api")) == ("route", [("api", "v1", 8080, 100, *unchanged)], "/", "api", ())
    assert istio_decides(spec, Request("api", "/v2example"))[1] == [("api", "v3", 8080, 100, *unchanged)]
    assert istio_decides(spec, Request("api", "/v2/x"))[1] == [("api", "v2", 8080, 100, *unchanged)]
