"""Retries (issue 12): attempts, the failures retried (retryOn conditions and statusCodes), the
per-try timeout, the back-off, and the built-in default when a request has none, as
docs/intents.md's Semantics section says, in the evaluator (`compiler.evaluate.outcome`), in
`meshc test`, through real Envoy, and in the Istio VirtualService and Gateway API HTTPRoute.

Envoy's router filter docs (x-envoy-retry-on): "5xx: Envoy will attempt a retry if the upstream
server responds with any 5xx response code, or does not respond at all (disconnect/reset/read
timeout). (Includes connect-failure and refused-stream)"; "gateway-error: ... will only retry
requests that result in a 502, 503, or 504"; "reset: ... does not respond at all";
"retriable-4xx: ... Currently, the only response code in this category is 409";
"retriable-status-codes: ... any response code matching one defined in ... the retry policy".
Istio's pilot (route/retry/retry.go): no HTTPRetry is DefaultPolicy, 2 retries on
"connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes" with 503;
"Any integers [in retryOn] are assumed to be status codes"; `attempts: 0` disables retries.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from compiler.build import compile_mesh
from compiler.cli import main
from compiler.diagnostics import Report
from compiler.evaluate import RESET, Behaviour, Decision, Proxy, Request, evaluate, outcome
from compiler.model import BUILT_IN_RETRIES, Retries
from compiler.serialize import to_json
from targets.envoylib import EnvoyRunner, sidecar_bootstrap
from targets.envoylib.run import outcome_disagreement
from tests.conftest import require_envoy
from tests.envoy_validate import assert_envoy_accepts
from tests.istio_reference import matched_rule, retry_policy
from tests.semantics import gateway, key, kubernetes_route, linked, mesh, route, service, write

WEB = Proxy(service=key("web"))
RULES = [
    {"match": [{"path": {"prefix": "/five"}}], "to": [{}],
     "retries": {"attempts": 2, "retryOn": ["5xx"], "backoff": {"base": "5ms", "max": "20ms"}}},
    {"match": [{"path": {"prefix": "/gateway"}}], "to": [{}], "retries": {"attempts": 3, "retryOn": ["gateway-error"]}},
    {"match": [{"path": {"prefix": "/codes"}}], "to": [{}],
     "retries": {"attempts": 2, "retryOn": ["retriable-4xx"], "statusCodes": [429]}},
    {"match": [{"path": {"prefix": "/reset"}}], "to": [{}], "retries": {"attempts": 1, "retryOn": ["reset"]}},
    {"match": [{"path": {"prefix": "/post"}}], "to": [{}],
     "retries": {"attempts": 2, "retryOn": ["5xx"], "allowNonIdempotent": True}},
    {"match": [{"path": {"prefix": "/off"}}], "to": [{}], "retries": {"attempts": 0}},
    {"to": [{}]},  # no retries of its own: the built-in default
]
# (path, method, the destination's failures) and what the client gets: (status, tries)
CASES = [
    ("/five", "GET", (503, 500), (200, 3)),
    ("/five", "GET", (500, 500, 502), (502, 3)),
    ("/five", "POST", (503,), (503, 1)),  # not idempotent: not retried without the opt-in
    ("/five", "GET", (RESET,), (200, 2)),
    ("/five", "GET", (409,), (409, 1)),
    ("/gateway", "GET", (502, 503, 504), (200, 4)),
    ("/gateway", "GET", (500,), (500, 1)),
    ("/codes", "GET", (409, 429), (200, 3)),
    ("/codes", "GET", (503,), (503, 1)),
    ("/reset", "GET", (RESET,), (200, 2)),
    ("/reset", "GET", (RESET, RESET), (503, 2)),
    ("/reset", "GET", (503,), (503, 1)),
    ("/post", "POST", (500, 503), (200, 3)),
    ("/off", "GET", (503,), (503, 1)),
    ("/default", "GET", (503, 503), (200, 3)),
    ("/default", "POST", (503,), (200, 2)),  # Istio's default retries every method
    ("/default", "GET", (500,), (500, 1)),
    ("/default", "GET", (503, 503, 503), (503, 3)),
]


def shop(root: Path, rules: list[dict] = RULES, **platform):
    extra = {"platform": "k8s"} if platform else {}
    return linked(root, [mesh(platform) if platform else mesh(), service("web", calls=["api"], **extra),
                         service("api", **extra), route("api", rules, service="api")],
                  allowed=("MESH301", "MESH332"))


def located_error(tmp_path: Path, retries: dict) -> tuple[str, int, str]:
    root = write(tmp_path, [mesh(), service("web", calls=["api"]), service("api"),
                            route("api", [{"to": [{}], "retries": retries}], service="api")])
    [error] = [d for d in compile_mesh(root).report.sorted() if d.severity == "error"]
    return error.code.code, error.location.line, error.message


@pytest.mark.parametrize(("retries", "words"), [
    ({"attempts": 1, "statusCodes": [200]}, "200 is not a 4xx or 5xx status code"),
    ({"attempts": 1, "statusCodes": [599]}, "599 is not a 4xx or 5xx status code"),
    ({"attempts": 1, "statusCodes": [503, 503]}, "listed twice"),
    ({"attempts": 1, "retryOn": ["retriable-status-codes"]}, "`statusCodes`, which lists none"),
    ({"attempts": 1, "backoff": {"base": "1s", "max": "100ms"}}, "shorter than its base"),
    ({"attempts": 1, "backoff": {"base": "0.5ms"}}, "at least 1ms"),
])
def test_malformed_retries_are_located_errors(tmp_path: Path, retries: dict, words: str) -> None:
    code, line, message = located_error(tmp_path, retries)
    assert code.startswith("MESH1") and line > 1 and words in message, message


@pytest.mark.parametrize(("path", "method", "failures", "expected"), CASES)
def test_the_evaluator_retries_what_the_conditions_name(tmp_path: Path, path: str, method: str,
                                                         failures: tuple, expected: tuple) -> None:
    graph = shop(tmp_path)
    decision = evaluate(graph, WEB, Request("api", path, method=method))
    result = outcome(decision, method, Behaviour(failures))
    assert (result.status, result.tries) == expected, result.reason


def test_the_built_in_default_is_istios() -> None:
    """retry.go defaultPolicy: NumRetries 2, RetryOn "connect-failure,refused-stream,unavailable,
    cancelled,retriable-status-codes", RetriableStatusCodes [503]; every method."""
    assert (BUILT_IN_RETRIES.attempts, set(BUILT_IN_RETRIES.conditions()), BUILT_IN_RETRIES.statusCodes,
            BUILT_IN_RETRIES.allowNonIdempotent) == (
        2, {"connect-failure", "refused-stream", "unavailable", "cancelled", "retriable-status-codes"}, [503], True)
    assert outcome(Decision("forward"), "PATCH", Behaviour((503, 503, 503))).tries == 3


def test_envoy_retries_as_the_evaluator_does(tmp_path: Path) -> None:
    """Real Envoy on loopback, each destination failing as the case says (the echo backend of
    targets.envoylib.run answers a request's tries from its behaviour header): the status the
    client gets and the tries the destination received are the evaluator's."""
    binary = require_envoy()
    graph = shop(tmp_path / "mesh")
    bootstrap = sidecar_bootstrap(graph, graph.services[key("web")], Report(), "127.0.0.1")
    assert_envoy_accepts({"web.json": to_json(bootstrap)}, tmp_path / "validate")
    requests = [Request("api", path, method=method, behaviour=Behaviour(failures))
                for path, method, failures, _ in CASES]
    with EnvoyRunner(graph, binary) as runner:
        replies = [(request, runner.send(WEB, request)) for request in requests]
    problems = [(r.path, r.method, outcome_disagreement(evaluate(graph, WEB, r), r, reply)) for r, reply in replies]
    assert [p for p in problems if p[2] is not None] == []
    assert [(reply.status, reply.tries) for _, reply in replies] == [expected for *_, expected in CASES]


def test_envoy_writes_the_back_off_codes_and_default(tmp_path: Path) -> None:
    graph = shop(tmp_path)
    bootstrap = sidecar_bootstrap(graph, graph.services[key("web")], Report(), "127.0.0.1")
    routes = {r["match"].get("path_separated_prefix", "/"): r["route"]
              for listener in bootstrap["static_resources"]["listeners"]
              for chain in listener.get("filter_chains", [])
              for f in chain["filters"] if f["name"] == "envoy.filters.network.http_connection_manager"
              for vhost in f["typed_config"].get("route_config", {}).get("virtual_hosts", [])
              for r in vhost["routes"]}
    assert routes["/five"]["retry_policy"]["retry_back_off"] == {"base_interval": "0.005s", "max_interval": "0.02s"}
    assert routes["/codes"]["retry_policy"]["retriable_status_codes"] == [429]
    assert routes["/codes"]["retry_policy"]["retry_on"] == "retriable-4xx,retriable-status-codes"
    assert "retry_policy" not in routes["/off"]
    default = routes["/"]["retry_policy"]
    assert (default["num_retries"], default["retriable_status_codes"]) == (2, [503])


def test_route_tests_state_failures_and_expect_tries(tmp_path: Path) -> None:
    cases = [
        {"name": "recovers", "request": {"host": "api", "path": "/five", "backend": {"failures": [503, 500]}},
         "expect": {"status": 200, "tries": 3}},
        {"name": "post once", "request": {"host": "api", "path": "/five", "method": "POST",
                                          "backend": {"failures": [503]}},
         "expect": {"status": 503, "tries": 1}},
        {"name": "wrong", "request": {"host": "api", "path": "/off", "backend": {"failures": [503]}},
         "expect": {"status": 200}},
    ]
    root = write(tmp_path, [mesh(), service("web", calls=["api"]), service("api"), route("api", RULES, service="api"),
                            {"apiVersion": "meshc/v1", "kind": "RouteTest", "name": "api", "caller": "web",
                             "cases": cases}])
    result = CliRunner().invoke(main, ["test", str(root), "--envoy", "--format", "json"])
    failures = [d for d in json.loads(result.stdout)["diagnostics"] if d["code"] in ("MESH501", "MESH504")]
    assert [(d["code"], d["message"]) for d in failures] == [
        ("MESH501", "RouteTest shop/api case 'wrong': status: expected 200, got 503")]


def istio_outcome(rule: dict, method: str, behaviour: Behaviour):
    """What the client gets through the VirtualService rule, read by tests/istio_reference.py:
    Envoy's retry conditions on pilot's policy (Istio retries every method)."""
    policy = retry_policy(rule)
    retries = Retries(attempts=0) if policy is None else Retries(
        attempts=policy.attempts, retryOn=[c for c in policy.conditions if c != "retriable-status-codes"],
        statusCodes=list(policy.status_codes), perTryTimeout=policy.per_try_timeout, allowNonIdempotent=True)
    return outcome(Decision("forward", timeout=rule.get("timeout"), retries=retries), method, behaviour)


def test_istio_retries_as_the_evaluator_does(tmp_path: Path) -> None:
    graph, spec, report = kubernetes_route(tmp_path, "istio", RULES)
    assert [d.code.code for d in report.diagnostics if d.code.code == "MESH427"] == ["MESH427"]  # backoff.max
    for path, method, failures, expected in CASES:
        request = Request("api", path, method=method)
        rule = matched_rule(spec, request)
        assert rule is not None
        got = istio_outcome(rule, method, Behaviour(failures))
        assert (got.status, got.tries) == expected, (path, method, rule)
        want = outcome(evaluate(graph, WEB, request), method, Behaviour(failures))
        assert (got.status, got.tries) == (want.status, want.tries)
    five = matched_rule(spec, Request("api", "/five"))
    assert five is not None and five["retries"] == {"attempts": 2, "retryOn": "5xx", "backoff": "0.005s"}
    codes = matched_rule(spec, Request("api", "/codes"))
    assert codes is not None and codes["retries"]["retryOn"] == "retriable-4xx,429"
    assert "retries" not in (matched_rule(spec, Request("api", "/default")) or {"retries": 1})


def test_gateway_api_reports_retries_at_the_rule(tmp_path: Path) -> None:
    """Gateway API v1.6 standard channel: HTTPRouteRule has no `retry` (../shared/schemas has
    none); retries written in the intent are MESH421 at their place, the default is not."""
    _, spec, report = kubernetes_route(tmp_path, "gateway-api", RULES)
    assert all("retry" not in rule for rule in spec["rules"])
    reported = sorted(d.location.line for d in report.diagnostics if d.code.code == "MESH421")
    assert len(reported) == 6 and len(set(reported)) == 6


def test_a_slow_try_is_retried_under_5xx_gateway_error_and_reset_only() -> None:
    """A try cut by its per-try timeout is retried under 5xx, gateway-error and reset (Envoy
    1.40 retries it under reset too, measured through real Envoy in
    tests/test_language_timeouts.py), not under connect-failure or a status code."""
    slow = Behaviour((), Decimal("0.3"))
    for conditions, expected in ((["5xx"], (504, 3)), (["gateway-error"], (504, 3)), (["reset"], (504, 3)),
                                 (["connect-failure", "retriable-4xx"], (504, 1))):
        decision = Decision("forward", retries=Retries(attempts=2, retryOn=conditions, perTryTimeout="100ms"))
        result = outcome(decision, "GET", slow)
        assert (result.status, result.tries) == expected, conditions


def test_meshc_import_reads_istios_status_codes_and_backoff(tmp_path: Path) -> None:
    """HTTPRetry.retryOn numbers are status codes (retry.go parseRetryOn), `backoff` the base."""
    source = tmp_path / "istio"
    source.mkdir()
    (source / "reviews.yaml").write_text("""\
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews}}]
    retries: {attempts: 3, retryOn: "gateway-error,503,429,retriable-status-codes", backoff: 50ms}
""")
    result = CliRunner().invoke(main, ["import", str(source), "-o", str(tmp_path / "mesh")])
    assert result.exit_code == 0, result.output
    [rule] = yaml.safe_load((tmp_path / "mesh" / "routes" / "reviews.yaml").read_text())["rules"]
    assert rule["retries"] == {"attempts": 3, "retryOn": ["gateway-error", "retriable-status-codes"],
                               "statusCodes": [503, 429], "backoff": {"base": "50ms"}}


# Gateway API conformance HTTPRouteRetry (tests/httproute-retry.yaml: `retry: {codes: [500],
# attempts: 3}` on /retry/code-500-attempts-3 and `{codes: [500, 502, 503, 504], attempts: 2}`
# on /retry/code-all-attempts-2; the backend fails `succeedAfter` tries with `responseCode`) and
# HTTPRouteRetryConnectionError (`retry: {attempts: 3}` on /retry/no-status-code-attempts-3; the
# backend drops the connection of `succeedAfter` tries; "fails when required retries on
# connection errors exceed max attempts": 500 or 503). The Gateway API retries connection errors
# whatever `codes` says (HTTPRouteRetry: "Implementations MUST retry on connection errors
# (disconnect, reset, timeout, TCP failure) if a retry stanza is configured"): in meshc,
# `retryOn: [connect-failure, reset]` beside the codes. Written in meshc and run through a real
# Envoy gateway (the gateway-api flavour reports retries, MESH421: v1.6's standard channel has
# no HTTPRouteRule.retry).
CONNECTION_ERRORS = ["connect-failure", "reset"]
RETRY_CONFORMANCE_RULES = [
    {"match": [{"path": {"prefix": "/retry/code-500-attempts-3"}}], "to": [{"service": "api"}],
     "retries": {"attempts": 3, "retryOn": CONNECTION_ERRORS, "statusCodes": [500]}},
    {"match": [{"path": {"prefix": "/retry/code-all-attempts-2"}}], "to": [{"service": "api"}],
     "retries": {"attempts": 2, "retryOn": CONNECTION_ERRORS, "statusCodes": [500, 502, 503, 504]}},
    {"match": [{"path": {"prefix": "/retry/no-status-code-attempts-3"}}], "to": [{"service": "api"}],
     "retries": {"attempts": 3, "retryOn": CONNECTION_ERRORS}},
]
# (path, the backend's failures, the conformance test's statuses), in the .go files' order
RETRY_CONFORMANCE_CASES = [
    ("/retry/code-500-attempts-3", (500, 500), {200}),
    ("/retry/code-500-attempts-3", (500,) * 4, {500}),
    ("/retry/code-500-attempts-3", (503, 503), {503}),
    *[case for code in (500, 502, 503, 504) for case in (("/retry/code-all-attempts-2", (code,), {200}),
                                                          ("/retry/code-all-attempts-2", (code,) * 3, {code}))],
    ("/retry/no-status-code-attempts-3", (RESET, RESET), {200}),
    ("/retry/no-status-code-attempts-3", (RESET,) * 4, {500, 503}),
]


def test_gateway_api_retry_conformance_cases_through_an_envoy_gateway(tmp_path: Path) -> None:
    binary = require_envoy()
    cases = RETRY_CONFORMANCE_CASES
    assert len(cases) == 13  # HTTPRouteRetry's eleven, HTTPRouteRetryConnectionError's two
    listeners = [{"name": "web", "port": 8080, "protocol": "http", "hosts": ["*"]}]
    graph = linked(tmp_path, [mesh(), service("api"), gateway("same-namespace", listeners),
                              route("retries", RETRY_CONFORMANCE_RULES, gateway="same-namespace", hosts=["*"])],
                   allowed=("MESH301",))
    edge = Proxy(gateway=key("same-namespace"))
    requests = [Request("gateway.example", path, port=8080, behaviour=Behaviour(failures)) for path, failures, _ in cases]
    with EnvoyRunner(graph, binary) as runner:
        replies = [runner.send(edge, request) for request in requests]
    assert None not in replies
    problems = [(r.path, outcome_disagreement(evaluate(graph, edge, r), r, reply)) for r, reply in zip(requests, replies, strict=True)]
    assert [problem for problem in problems if problem[1] is not None] == []
    assert [(path, failures, reply.status) for (path, failures, wanted), reply in zip(cases, replies, strict=True)
            if reply.status not in wanted] == []


# Gateway API conformance HTTPRouteRetryWithTimeouts (tests/httproute-retry-with-timeouts.yaml):
# `retry: {attempts: 2}, timeouts: {backendRequest: 200ms}` on
# /retry/backend-request-timeout-200ms, where the backend fails `succeedAfter` tries slowly
# (`delayRetry: 300ms`, each cut by the backend request timeout) and answers the next at once:
# 200 after two, 504 after three; `retry: {codes: [500], attempts: 5}, timeouts:
# {backendRequest: 200ms, request: 400ms}` on /retry/request-timeout-200ms: 200 after one quick
# 500, 504 when four 500s of 100ms each reach the request timeout. A RouteTest's
# `backend.failureDelay` is `delayRetry`.
RETRY_TIMEOUT_RULES = [
    {"match": [{"path": {"prefix": "/retry/backend-request-timeout-200ms"}}], "to": [{"service": "api"}],
     "retries": {"attempts": 2, "retryOn": CONNECTION_ERRORS, "perTryTimeout": "200ms"}},
    {"match": [{"path": {"prefix": "/retry/request-timeout-200ms"}}], "to": [{"service": "api"}], "timeout": "400ms",
     "retries": {"attempts": 5, "retryOn": CONNECTION_ERRORS, "statusCodes": [500], "perTryTimeout": "200ms"}},
]
# (path, failures, their delay, the status the conformance test expects)
RETRY_TIMEOUT_CASES = [
    ("/retry/backend-request-timeout-200ms", (500, 500), Decimal("0.3"), 200),
    ("/retry/backend-request-timeout-200ms", (500,) * 3, Decimal("0.3"), 504),
    ("/retry/request-timeout-200ms", (500,), None, 200),
    ("/retry/request-timeout-200ms", (500,) * 4, Decimal("0.1"), 504),
]


def test_gateway_api_retry_with_timeouts_conformance_cases_through_an_envoy_gateway(tmp_path: Path) -> None:
    binary = require_envoy()
    listeners = [{"name": "web", "port": 8080, "protocol": "http", "hosts": ["*"]}]
    graph = linked(tmp_path, [mesh(), service("api"), gateway("same-namespace", listeners),
                              route("retries-with-timeouts", RETRY_TIMEOUT_RULES, gateway="same-namespace",
                                    hosts=["*"])], allowed=("MESH301", "MESH330"))  # the case: tries cut by the timeout
    edge = Proxy(gateway=key("same-namespace"))
    requests = [Request("gateway.example", path, port=8080, behaviour=Behaviour(failures, Decimal(0), slow))
                for path, failures, slow, _ in RETRY_TIMEOUT_CASES]
    assert [outcome(evaluate(graph, edge, r), "GET", r.behaviour).status for r in requests if r.behaviour] == [
        status for *_, status in RETRY_TIMEOUT_CASES]
    with EnvoyRunner(graph, binary) as runner:
        replies = [runner.send(edge, request) for request in requests]
    assert [reply.status if reply is not None else None for reply in replies] == [
        status for *_, status in RETRY_TIMEOUT_CASES]


def test_route_tests_state_slow_failures_apart_from_quick_answers(tmp_path: Path) -> None:
    """`backend.failureDelay`: the failing tries are slow, the answer is not; `delay` makes every
    try slow. Through the evaluator and real Envoy (`meshc test --envoy`)."""
    rules = [{"to": [{}], "retries": {"attempts": 1, "retryOn": ["5xx"], "perTryTimeout": "100ms"}}]
    cases = [
        {"name": "a slow failure, then a quick answer",
         "request": {"host": "api", "backend": {"failures": [500], "failureDelay": "300ms"}},
         "expect": {"status": 200, "tries": 2}},
        {"name": "every try slow", "request": {"host": "api", "backend": {"failures": [500], "delay": "300ms"}},
         "expect": {"status": 504, "tries": 2}},
    ]
    root = write(tmp_path, [mesh(), service("web", calls=["api"]), service("api"), route("api", rules, service="api"),
                            {"apiVersion": "meshc/v1", "kind": "RouteTest", "name": "api", "caller": "web",
                             "cases": cases}])
    result = CliRunner().invoke(main, ["test", str(root), "--envoy"])
    assert result.exit_code == 0, result.output
    assert "2 route test case(s), 0 failed" in result.stderr and "2 through Envoy" in result.stderr
