"""Local rate limits per rule and per header descriptor (issue 12): `rateLimit: {requests, per,
descriptors}` on a Route rule means docs/intents.md's text in the evaluator (`rule_bucket`,
`limited`) and through real Envoy (the bucket empties and further requests are answered 429);
the Kubernetes flavours cannot carry it and say so at the rule (MESH460).

Envoy's local rate limit filter (local_ratelimit.proto): `token_bucket` "The token bucket
configuration to use for rate limiting requests that are processed by this filter"; per route
through typed_per_filter_config; `descriptors` "The rate limit descriptor list to use in the
local rate limit to override on"; `always_consume_default_token_bucket` "If set to false,
default token bucket will only be consumed when there is no matching descriptor"; the route's
`rate_limits` `request_headers` action makes the descriptor entry (descriptor_key, the
header's value). A request refused is answered 429 ("Too Many Requests").
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from compiler.build import compile_mesh
from compiler.cli import main
from compiler.diagnostics import Report
from compiler.evaluate import Proxy, Request, evaluate, limited
from compiler.serialize import to_json
from targets.envoylib import EnvoyRunner, gateway_bootstrap, sidecar_bootstrap
from tests.conftest import require_envoy
from tests.envoy_validate import assert_envoy_accepts
from tests.semantics import gateway, key, kubernetes_route, linked, mesh, route, service, write

WEB = Proxy(service=key("web"))
EDGE = Proxy(gateway=key("edge"))
RULES = [
    {"match": [{"path": {"prefix": "/limited"}}], "to": [{}], "rateLimit": {"requests": 3, "per": "1m"}},
    {"match": [{"path": {"prefix": "/plans"}}], "to": [{}],
     "rateLimit": {"requests": 4, "per": "1m", "descriptors": [
         {"header": "x-plan", "value": "free", "requests": 2, "per": "1m"},
         {"header": "X-Plan", "value": "team", "requests": 1, "per": "1h"}]}},
    {"to": [{}]},
]
FREE, TEAM, PRO = (("x-plan", "free"),), (("x-plan", "team"),), (("x-plan", "pro"),)
SENT = ([Request("api", "/limited")] * 5 + [Request("api", "/other")] * 3
        + [Request("api", "/plans", headers=FREE)] * 3 + [Request("api", "/plans", headers=TEAM)] * 2
        + [Request("api", "/plans", headers=PRO)] * 2 + [Request("api", "/plans")] * 3)
# the status of each request of SENT, as docs/intents.md says
EXPECTED = ([200, 200, 200, 429, 429] + [200] * 3 + [200, 200, 429] + [200, 429] + [200, 200] + [200, 200, 429])


def shop(root: Path, rules: list[dict] = RULES):
    return linked(root, [mesh(), service("web", calls=["api"]), service("api"), route("api", rules, service="api")],
                  allowed=("MESH301",))


def located_error(tmp_path: Path, rule: dict) -> tuple[str, int, str]:
    root = write(tmp_path, [mesh(), service("web", calls=["api"]), service("api"), route("api", [rule], service="api")])
    [error] = [d for d in compile_mesh(root).report.sorted() if d.severity == "error"]
    return error.code.code, error.location.line, error.message


@pytest.mark.parametrize(("rule", "words"), [
    ({"to": [{}], "rateLimit": {"requests": 1, "per": "1s", "descriptors": [
        {"header": "a", "value": "1", "requests": 1, "per": "1s"},
        {"header": "b", "value": "1", "requests": 1, "per": "1s"}]}}, "descriptors name one header"),
    ({"to": [{}], "rateLimit": {"requests": 1, "per": "1s", "descriptors": [
        {"header": "a", "value": "1", "requests": 1, "per": "1s"},
        {"header": "A", "value": "1", "requests": 2, "per": "1s"}]}}, "listed twice"),
    ({"redirect": {"status": 307}, "rateLimit": {"requests": 1, "per": "1s"}}, "cannot also have rateLimit"),
    ({"to": [{}], "rateLimit": {"requests": 0, "per": "1s"}}, "greater than or equal to 1"),
])
def test_malformed_rate_limits_are_located_errors(tmp_path: Path, rule: dict, words: str) -> None:
    code, line, message = located_error(tmp_path, rule)
    assert code.startswith("MESH1") and line > 1 and words in message, message


def test_the_evaluator_empties_each_bucket(tmp_path: Path) -> None:
    graph = shop(tmp_path)
    decisions = [evaluate(graph, WEB, request) for request in SENT]
    assert [429 if refused else 200 for refused in limited(decisions)] == EXPECTED
    assert {d.bucket.key[2] for d in decisions if d.bucket is not None} == {None, "free", "team"}


def test_envoy_answers_429_when_a_bucket_is_empty(tmp_path: Path) -> None:
    """Real Envoy on loopback: the requests of SENT one after the other, within a minute of the
    sidecar's start: each answer is the evaluator's."""
    binary = require_envoy()
    graph = shop(tmp_path / "mesh")
    bootstrap = sidecar_bootstrap(graph, graph.services[key("web")], Report(), "127.0.0.1")
    assert_envoy_accepts({"web.json": to_json(bootstrap)}, tmp_path / "validate")
    with EnvoyRunner(graph, binary) as runner:
        replies = [runner.send(WEB, request) for request in SENT]
    assert [reply.status if reply is not None else None for reply in replies] == EXPECTED
    decisions = [evaluate(graph, WEB, request) for request in SENT]
    assert [429 if refused else 200 for refused in limited(decisions)] == EXPECTED


def test_a_gateway_holds_the_bucket_of_its_ingress_rule(tmp_path: Path) -> None:
    binary = require_envoy()
    graph = linked(tmp_path / "mesh", [
        mesh(), service("api"), gateway("edge", [{"name": "web", "port": 8080, "protocol": "http",
                                                  "hosts": ["shop.example.com"]}]),
        route("ingress", [{"to": [{"service": "api"}], "rateLimit": {"requests": 2, "per": "1h"}}],
              gateway="edge", hosts=["shop.example.com"])], allowed=("MESH301",))
    bootstrap = gateway_bootstrap(graph, graph.gateways[key("edge")], Report(), "127.0.0.1")
    assert_envoy_accepts({"edge.json": to_json(bootstrap)}, tmp_path / "validate")
    sent = [Request("shop.example.com", "/", port=8080)] * 3
    with EnvoyRunner(graph, binary) as runner:
        statuses = [reply.status if reply is not None else None for reply in (runner.send(EDGE, r) for r in sent)]
    assert statuses == [200, 200, 429]
    assert limited([evaluate(graph, EDGE, r) for r in sent]) == [False, False, True]


@pytest.mark.parametrize("flavor", ["istio", "gateway-api"])
def test_kubernetes_flavours_report_the_rule(tmp_path: Path, flavor: str) -> None:
    _, spec, report = kubernetes_route(tmp_path, flavor, [{"to": [{"version": "v1"}],
                                                           "rateLimit": {"requests": 3, "per": "1m"}}])
    [warning] = [d for d in report.diagnostics if d.code.code == "MESH460"]
    assert warning.location.line > 1 and f"flavor {flavor}" in warning.message
    assert "rateLimit" not in str(spec) and "ratelimit" not in str(spec)


def test_route_tests_run_in_order_and_expect_429(tmp_path: Path) -> None:
    """`meshc test` sends a proxy's cases in order with its buckets full at the start: the fourth
    request to /limited is 429 in the evaluator and through real Envoy."""
    cases = [{"name": f"request {n}", "request": {"host": "api", "path": "/limited"}, "expect": {"status": status}}
             for n, status in enumerate([200, 200, 200, 429, 200])]
    cases.append({"name": "the free plan", "request": {"host": "api", "path": "/plans", "headers": {"x-plan": "free"}},
                  "expect": {"route": "api", "rule": 1}})
    root = write(tmp_path, [mesh(), service("web", calls=["api"]), service("api"), route("api", RULES, service="api"),
                            {"apiVersion": "meshc/v1", "kind": "RouteTest", "name": "api", "caller": "web",
                             "cases": cases}])
    result = CliRunner().invoke(main, ["test", str(root), "--envoy", "--format", "json"])
    failures = [(d["code"], d["message"]) for d in json.loads(result.stdout)["diagnostics"]
                if d["code"] in ("MESH501", "MESH504")]
    assert failures == [("MESH501", "RouteTest shop/api case 'request 4': status: expected 200, got 429")]


def test_a_rule_of_several_matches_is_a_bucket_per_entry_in_envoy_and_says_so(tmp_path: Path) -> None:
    """The semantics give a rule one bucket; Envoy writes each match entry as a route of its own
    and a route's local rate limit is its own bucket, so through real Envoy two entries admit
    twice the rule's `requests` (measured below), which the envoy target reports at the rule's
    `rateLimit` (MESH417)."""
    binary = require_envoy()
    rules = [{"match": [{"path": {"exact": "/"}}, {"path": {"prefix": "/x"}}], "to": [{}],
              "rateLimit": {"requests": 2, "per": "1h"}}]
    graph = shop(tmp_path / "mesh", rules)
    report = Report()
    sidecar_bootstrap(graph, graph.services[key("web")], report, "127.0.0.1")
    [said] = report.diagnostics
    assert said.code.code == "MESH417" and said.location.file == "03-route.yaml"
    assert (tmp_path / "mesh" / "03-route.yaml").read_text().splitlines()[said.location.line - 2].strip() == \
        "rateLimit:"  # the bucket's own fields
    sent = [Request("api", path) for path in ("/", "/x", "/", "/x", "/")]
    # the semantics: one bucket of two, so the third request on is refused
    assert limited([evaluate(graph, WEB, r) for r in sent]) == [False, False, True, True, True]
    with EnvoyRunner(graph, binary) as runner:
        assert [runner.send(WEB, request).status for request in sent] == [200, 200, 200, 200, 429]
