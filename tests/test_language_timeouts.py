"""Timeouts (issue 12): the whole request (`timeout`) and each try (`perTryTimeout`), with `0s`
meaning no limit, as docs/intents.md's Semantics section says, in the evaluator, through real
Envoy (a slow destination hits the limit and the client gets 504), in the Istio VirtualService
and in the Gateway API HTTPRoute.

Envoy's route timeout: "the route timeout ... includes all retries"; `0s` disables it
(RouteAction.timeout: "A value of 0 will disable the route's timeout"). Istio's HTTPRoute
`timeout`: "Timeout for HTTP requests, default is disabled", and the CRD refuses 0s
(`duration(self) >= duration('1ms')`), so no limit is written as no field. Gateway API
HTTPRouteTimeouts: `request` "Setting a timeout to the zero duration (e.g. "0s") SHOULD disable
the timeout completely"; `backendRequest` "a timeout for an individual request from the gateway
to a backend ... must be no more than the value of the Request timeout".
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from compiler.build import compile_mesh, emit
from compiler.diagnostics import Report
from compiler.evaluate import Behaviour, Proxy, Request, evaluate, outcome
from compiler.serialize import to_json
from targets.envoylib import EnvoyRunner, sidecar_bootstrap
from targets.envoylib.run import outcome_disagreement
from tests.conftest import require_envoy
from tests.envoy_validate import assert_envoy_accepts
from tests.istio_reference import matched_rule
from tests.k8s_schemas import validation_errors
from tests.semantics import gateway, key, kubernetes_route, linked, mesh, route, service, write

WEB = Proxy(service=key("web"))
SLOW = Decimal("0.4")
RULES = [
    {"match": [{"path": {"prefix": "/short"}}], "to": [{}], "timeout": "150ms", "retries": {"attempts": 0}},
    {"match": [{"path": {"prefix": "/none"}}], "to": [{}], "timeout": "0s"},
    {"match": [{"path": {"prefix": "/try5xx"}}], "to": [{}], "timeout": "5s",
     "retries": {"attempts": 2, "retryOn": ["5xx"], "perTryTimeout": "100ms"}},
    {"match": [{"path": {"prefix": "/trygw"}}], "to": [{}], "timeout": "5s",
     "retries": {"attempts": 1, "retryOn": ["gateway-error"], "perTryTimeout": "100ms"}},
    {"match": [{"path": {"prefix": "/tryreset"}}], "to": [{}], "timeout": "5s",
     "retries": {"attempts": 2, "retryOn": ["reset"], "perTryTimeout": "100ms"}},
    {"match": [{"path": {"prefix": "/once"}}], "to": [{}], "retries": {"attempts": 0, "perTryTimeout": "100ms"}},
    {"to": [{}]},  # the service's timeout
]
# (path, the destination's delay per try) and what the client gets: (status, tries)
CASES = [
    ("/short", SLOW, (504, 1)),
    ("/short", Decimal(0), (200, 1)),
    ("/none", SLOW, (200, 1)),  # 0s lifts the service's 150ms
    ("/try5xx", SLOW, (504, 3)),
    ("/trygw", SLOW, (504, 2)),
    ("/tryreset", SLOW, (504, 3)),  # Envoy retries a try cut by perTryTimeout under reset too
    ("/once", SLOW, (504, 1)),
    ("/other", SLOW, (504, 1)),
    ("/other", Decimal("0.05"), (200, 1)),
]


def shop(root: Path, rules: list[dict] = RULES, **platform):
    extra = {"platform": "k8s"} if platform else {}
    return linked(root, [mesh(platform) if platform else mesh(), service("web", calls=["api"], **extra),
                         service("api", resilience={"timeout": "150ms", "retries": {"attempts": 0}}, **extra),
                         route("api", rules, service="api")], allowed=("MESH301",))


@pytest.mark.parametrize(("path", "delay", "expected"), CASES)
def test_the_evaluator_cuts_slow_requests_and_tries(tmp_path: Path, path: str, delay: Decimal,
                                                     expected: tuple) -> None:
    graph = shop(tmp_path)
    result = outcome(evaluate(graph, WEB, Request("api", path)), "GET", Behaviour((), delay))
    assert (result.status, result.tries) == expected, result.reason


def test_envoy_times_out_as_the_evaluator_does(tmp_path: Path) -> None:
    """Real Envoy on loopback with a destination that answers each try after the case's delay."""
    binary = require_envoy()
    graph = shop(tmp_path / "mesh")
    bootstrap = sidecar_bootstrap(graph, graph.services[key("web")], Report(), "127.0.0.1")
    assert_envoy_accepts({"web.json": to_json(bootstrap)}, tmp_path / "validate")
    requests = [Request("api", path, behaviour=Behaviour((), delay)) for path, delay, _ in CASES]
    with EnvoyRunner(graph, binary) as runner:
        replies = [(request, runner.send(WEB, request)) for request in requests]
    problems = [(r.path, outcome_disagreement(evaluate(graph, WEB, r), r, reply)) for r, reply in replies]
    assert [p for p in problems if p[1] is not None] == []
    assert [(reply.status, reply.tries) for _, reply in replies] == [expected for *_, expected in CASES]


def test_zero_is_accepted_and_a_negative_or_unitless_timeout_is_not(tmp_path: Path) -> None:
    for bad in ("-1s", "10", "1d"):
        root = write(tmp_path / bad, [mesh(), service("web", calls=["api"]), service("api"),
                                      route("api", [{"to": [{}], "timeout": bad}], service="api")])
        [error] = [d for d in compile_mesh(root).report.sorted() if d.severity == "error"]
        assert error.code.code.startswith("MESH1") and error.location.line > 1


def test_a_rule_without_limit_is_longer_than_a_callers_timeout(tmp_path: Path) -> None:
    """MESH331: a rule that lifts the limit (0s) waits longer than any caller's own timeout."""
    root = write(tmp_path, [mesh(), service("web", calls=["api"], resilience={"timeout": "2s"}), service("api"),
                            route("api", [{"to": [{}], "timeout": "0s"}], service="api")])
    [warning] = [d for d in compile_mesh(root).report.sorted() if d.code.code == "MESH331"]
    assert "without limit (0s)" in warning.message and warning.location.line > 1


def test_istio_writes_limits_and_leaves_no_limit_unwritten(tmp_path: Path) -> None:
    _, spec, _ = kubernetes_route(tmp_path, "istio", RULES)
    by_path = {path: matched_rule(spec, Request("api", path)) for path, *_ in CASES}
    assert by_path["/short"]["timeout"] == "0.15s"
    assert "timeout" not in by_path["/none"]  # Istio's default is none; its CRD refuses 0s
    assert by_path["/try5xx"]["retries"] == {"attempts": 2, "retryOn": "5xx", "perTryTimeout": "0.1s"}
    assert by_path["/once"] == {**by_path["/once"], "timeout": "0.1s", "retries": {"attempts": 0}}
    for rule in spec["http"]:
        if "timeout" in rule:
            assert Decimal(rule["timeout"].rstrip("s")) >= Decimal("0.001")


def test_gateway_api_writes_request_and_backend_request(tmp_path: Path) -> None:
    rules = [*RULES[:3], {"match": [{"path": {"prefix": "/capped"}}], "to": [{}], "timeout": "50ms",
                          "retries": {"attempts": 1, "perTryTimeout": "2s"}}, RULES[-1]]
    _, spec, report = kubernetes_route(tmp_path, "gateway-api", rules, allowed=("MESH330",))
    timeouts = [rule.get("timeouts") for rule in spec["rules"]]
    assert timeouts[:4] == [{"request": "150ms"}, {"request": "0s"}, {"request": "5s", "backendRequest": "100ms"},
                            {"request": "50ms", "backendRequest": "50ms"}]
    assert "MESH421" in {d.code.code for d in report.diagnostics}


# Gateway API conformance HTTPRouteTimeoutRequest (tests/httproute-timeout-request.yaml:
# `timeouts: {request: 500ms}` before a backend delayed 1s: 504) and
# HTTPRouteTimeoutBackendRequest (`backendRequest: 500ms` on /backend-timeout: 200 at once, 504
# with ?delay=1s; `backendRequest: "0s"` on /disabled-backend-timeout: 200 with ?delay=1s),
# written in meshc and run through a real Envoy gateway.
CONFORMANCE_RULES = [
    {"match": [{"path": {"prefix": "/backend-timeout"}}], "to": [{"service": "api"}],
     "retries": {"attempts": 0, "perTryTimeout": "500ms"}},
    {"match": [{"path": {"prefix": "/disabled-backend-timeout"}}], "to": [{"service": "api"}],
     "retries": {"attempts": 0, "perTryTimeout": "0s"}},
    {"match": [{"path": {"prefix": "/request-timeout"}}], "to": [{"service": "api"}], "timeout": "500ms",
     "retries": {"attempts": 0}},
]
CONFORMANCE_CASES = [("/backend-timeout", Decimal(0), 200), ("/backend-timeout", Decimal(1), 504),
                     ("/disabled-backend-timeout", Decimal(1), 200), ("/request-timeout", Decimal(1), 504)]


def test_gateway_api_timeout_conformance_cases_through_an_envoy_gateway(tmp_path: Path) -> None:
    binary = require_envoy()
    listeners = [{"name": "web", "port": 8080, "protocol": "http", "hosts": ["shop.example.com"]}]
    documents = [mesh(), service("api"), gateway("edge", listeners),
                 route("edge-web", CONFORMANCE_RULES, gateway="edge", hosts=["shop.example.com"])]
    graph = linked(tmp_path / "mesh", documents, allowed=("MESH301",))
    edge = Proxy(gateway=key("edge"))
    requests = [Request("shop.example.com", path, port=8080, behaviour=Behaviour((), delay))
                for path, delay, _ in CONFORMANCE_CASES]
    with EnvoyRunner(graph, binary) as runner:
        replies = [runner.send(edge, request) for request in requests]
    assert [reply.status if reply is not None else None for reply in replies] == [s for *_, s in CONFORMANCE_CASES]
    assert [outcome(evaluate(graph, edge, r), "GET", r.behaviour).status for r in requests if r.behaviour] == [
        s for *_, s in CONFORMANCE_CASES]
    # the same Route on a gateway-api platform is the conformance manifests' timeouts
    k8s = {"name": "k8s", "kind": "kubernetes", "flavor": "gateway-api"}
    graph = linked(tmp_path / "k8s", [mesh(k8s), service("api", platform="k8s"), gateway("edge", listeners, "k8s"),
                                      route("edge-web", CONFORMANCE_RULES, gateway="edge", hosts=["shop.example.com"])],
                   allowed=("MESH301",))
    report = Report()
    documents = [doc for artifact in emit(graph, report, ["kubernetes"]) if artifact.path.endswith(".yaml")
                 for doc in yaml.safe_load_all(artifact.content) if doc and "metadata" in doc]
    [http_route] = [d for d in documents if d["kind"] == "HTTPRoute" and d["metadata"]["name"] == "edge-web"]
    assert validation_errors(http_route) == []
    assert [rule.get("timeouts") for rule in http_route["spec"]["rules"]] == [
        {"backendRequest": "500ms"}, {"backendRequest": "0s"}, {"request": "500ms"}]
