"""CORS on a rule (issue 12): `cors: {allowOrigins, allowMethods, allowHeaders, exposeHeaders,
maxAge, allowCredentials}` means docs/intents.md's text in the evaluator, in `meshc test`,
through real Envoy (sidecar and gateway), and in the emitted Istio VirtualService `corsPolicy`
and Gateway API HTTPRoute `CORS` filter (schema-valid against the Istio 1.30 and Gateway API
v1.6.1 CRDs, read back by tests/istio_reference.py and tests/test_semantics_gateway_api.py).

The cases are those of the Gateway API conformance test HTTPRouteCORS
(conformance/tests/httproute-cors.go and .yaml), with its expectations: a preflight from an
allowed origin "access-control-allow-origin: https://www.foo.com", methods "GET, OPTIONS"
(whitespace ignored), "access-control-max-age: 3600", "access-control-allow-credentials:
true", expose headers on the preflight too; a preflight from "https://foobar.com" with
StatusCodes 200, 204 or 403 and AbsentHeaders access-control-allow-origin; `*.bar.com` matching
"https://xpto.www.bar.com" ("a wildcard matching any number of periods left to '*'"); a
wildcard method list answering the method asked ("POST" or "*") without credentials.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from compiler.build import compile_mesh, emit
from compiler.cli import main
from compiler.diagnostics import Report
from compiler.evaluate import Proxy, Request, evaluate, header_value
from compiler.serialize import to_json
from targets.envoylib import EnvoyRunner, disagreement, sidecar_bootstrap
from tests.conftest import require_envoy
from tests.envoy_validate import assert_envoy_accepts
from tests.istio_reference import decide as istio_decide
from tests.semantics import gateway, key, kubernetes_route, linked, mesh, route, service, write
from tests.test_semantics_gateway_api import evaluator_decides as gateway_api_evaluator
from tests.test_semantics_gateway_api import gateway_api_decides
from tests.test_semantics_istio import evaluator_decides as istio_evaluator
from tests.test_semantics_istio import istio_decides

WEB = Proxy(service=key("web"))
CORS_1 = {"allowOrigins": ["https://www.foo.com", "https://*.bar.com"], "allowMethods": ["GET", "OPTIONS"],
          "allowHeaders": ["x-header-1", "x-header-2"], "exposeHeaders": ["x-header-3", "x-header-4"],
          "allowCredentials": True, "maxAge": "3600s"}
RULES = [
    {"match": [{"path": {"prefix": "/cors-1"}}], "to": [{"version": "v1"}], "cors": CORS_1},
    {"match": [{"path": {"prefix": "/cors-2"}}], "to": [{"version": "v1"}],
     "cors": {"allowOrigins": ["https://www.foo.com"], "allowMethods": ["*"]}},
    {"match": [{"path": {"prefix": "/cors-wildcard-origin"}}], "to": [{"version": "v1"}],
     "cors": {"allowOrigins": ["*"], "allowMethods": ["*"], "allowHeaders": ["*"]}},
    {"to": [{"version": "v1"}]},
]


def preflight(path: str, origin: str, method: str = "GET", asked: str | None = None, host: str = "api",
              port: int | None = None) -> Request:
    headers = (("origin", origin), ("access-control-request-method", method))
    return Request(host, path, "OPTIONS", headers + ((("access-control-request-headers", asked),) if asked else ()),
                   port=port)


def simple(path: str, origin: str, method: str = "GET", host: str = "api", port: int | None = None) -> Request:
    return Request(host, path, method, (("origin", origin),), port=port)


def spaced(value: str | None) -> str | None:
    return value.replace(" ", "") if value is not None else None


# (request, status, {header: accepted values, None for absent}) from HTTPRouteCORS
CONFORMANCE = [
    (preflight("/cors-1", "https://www.foo.com", asked="x-header-1, x-header-2"), 200, {
        "access-control-allow-origin": {"https://www.foo.com"}, "access-control-allow-methods": {"GET,OPTIONS"},
        "access-control-allow-headers": {"x-header-1,x-header-2"},
        "access-control-expose-headers": {"x-header-3,x-header-4"}, "access-control-max-age": {"3600"},
        "access-control-allow-credentials": {"true"}}),
    (preflight("/cors-1", "https://www.bar.com", asked="x-header-1, x-header-2"), 200, {
        "access-control-allow-origin": {"https://www.bar.com"}, "access-control-max-age": {"3600"}}),
    (preflight("/cors-1", "https://xpto.www.bar.com", asked="x-header-1, x-header-2"), 200, {
        "access-control-allow-origin": {"https://xpto.www.bar.com"}}),
    (preflight("/cors-1", "https://foobar.com"), 200, {"access-control-allow-origin": None}),
    (simple("/cors-1", "https://www.foo.com"), 200, {"access-control-allow-origin": {"https://www.foo.com"}}),
    (simple("/cors-1", "https://www.bar.com"), 200, {"access-control-allow-origin": {"https://www.bar.com"}}),
    (simple("/cors-1", "https://foobar.com"), 200, {"access-control-allow-origin": None}),
    (preflight("/cors-2", "https://www.foo.com", "POST"), 200, {
        "access-control-allow-origin": {"https://www.foo.com"}, "access-control-allow-methods": {"POST", "*"},
        "access-control-allow-credentials": None}),
    (preflight("/cors-wildcard-origin", "https://foobar.com", "PUT"), 200, {
        "access-control-allow-origin": {"https://foobar.com", "*"}, "access-control-allow-methods": {"PUT"},
        "access-control-allow-credentials": None}),
    (preflight("/cors-wildcard-origin", "https://foobar.com:12345", "PUT"), 200, {
        "access-control-allow-origin": {"https://foobar.com:12345", "*"}}),
    (simple("/cors-wildcard-origin", "https://foobar.com:12345", "PUT"), 200, {
        "access-control-allow-origin": {"https://foobar.com:12345", "*"}}),
    (simple("/cors-wildcard-origin", "https://foobar.com", "PUT"), 200, {
        "access-control-allow-origin": {"https://foobar.com", "*"}}),
]


def meets(status: int | None, headers, wanted_status: int, wanted: dict) -> list[str]:
    """What of a conformance expectation an answer misses (header values compared without spaces)."""
    missed = [f"status {status}"] if status != wanted_status else []
    for name, accepted in wanted.items():
        got = header_value(headers, name)
        if (accepted is None and got is not None) or (accepted is not None and spaced(got) not in accepted):
            missed.append(f"{name}: {got!r}")
    return missed


def shop(root: Path, platform: dict | None = None, rules: list[dict] = RULES):
    extra = {"platform": "k8s"} if platform else {}
    return linked(root, [mesh(platform) if platform else mesh(), service("web", calls=["api"], **extra),
                         service("api", versions=("v1",), **extra), route("api", rules, service="api")],
                  allowed=("MESH301", "MESH302"))


def evaluator_answer(decision) -> tuple[int | None, tuple]:
    """The status and headers the client gets by the decision, from a backend that sends none."""
    if decision.action == "forward":
        return 200, decision.response_headers(decision.backends[0], ())
    return decision.status, decision.abort_edits[0].apply(()) if decision.abort_edits else ()


def located_error(tmp_path: Path, cors: dict) -> tuple[str, int, str]:
    root = write(tmp_path, [mesh(), service("web", calls=["api"]), service("api", versions=("v1",)),
                            route("api", [{"to": [{"version": "v1"}], "cors": cors}], service="api")])
    [error] = [d for d in compile_mesh(root).report.sorted() if d.severity == "error"]
    return error.code.code, error.location.line, error.message


@pytest.mark.parametrize(("cors", "words"), [
    ({"allowOrigins": ["https://App.example.com"]}, "in lower case"),
    ({"allowOrigins": ["*", "https://a.example.com"]}, "`*` (every one) alone"),
    ({"allowOrigins": ["https://a.example.com/path"]}, "http(s)://host[:port]"),
    ({"allowOrigins": ["https://a.example.com:70000"]}, "not between 1 and 65535"),
    ({"allowOrigins": [{"regex": ".*"}]}, "matches `*`"),
    ({"allowOrigins": ["https://a.example.com"], "allowMethods": ["*", "GET"]}, "alone"),
    ({"allowOrigins": ["https://a.example.com"], "exposeHeaders": ["*"], "allowCredentials": True},
     "taken literally by browsers"),
    ({"allowOrigins": ["https://a.example.com"], "maxAge": "1.5s"}, "whole seconds"),
    ({"allowOrigins": []}, "at least 1"),
])
def test_malformed_cors_is_a_located_error(tmp_path: Path, cors: dict, words: str) -> None:
    code, line, message = located_error(tmp_path, cors)
    assert code.startswith("MESH1") and line > 1 and words in message, message


def test_a_redirect_rule_takes_no_cors(tmp_path: Path) -> None:
    root = write(tmp_path, [mesh(), service("web", calls=["api"]), service("api"),
                            route("api", [{"redirect": {"path": "/x"}, "cors": {"allowOrigins": ["*"]}}], service="api")])
    assert any("cannot also have cors" in d.message for d in compile_mesh(root).report.sorted())


def test_the_evaluator_answers_the_conformance_cases(tmp_path: Path) -> None:
    graph = shop(tmp_path)
    for sent, status, wanted in CONFORMANCE:
        decision = evaluate(graph, WEB, sent)
        assert decision.action == ("preflight" if sent.method == "OPTIONS" else "forward"), sent
        assert meets(*evaluator_answer(decision), status, wanted) == [], sent
    # without an Origin nothing changes; a plain OPTIONS (no Access-Control-Request-Method) is forwarded
    plain = evaluate(graph, WEB, Request("api", "/cors-1", "OPTIONS"))
    assert (plain.action, plain.cors_names) == ("forward", ())
    asked = evaluate(graph, WEB, simple("/cors-1", "https://www.foo.com", "OPTIONS"))
    assert asked.action == "forward" and header_value(evaluator_answer(asked)[1], "access-control-allow-origin")


def test_envoy_answers_as_the_evaluator_decides_and_conformance_expects(tmp_path: Path) -> None:
    """Real Envoy on loopback (the sidecar's outbound listener): every conformance case answered
    as the evaluator decides (targets.envoylib.run.disagreement compares every CORS response
    header, present or absent, and that a preflight never reaches a backend) and as HTTPRouteCORS
    expects."""
    binary = require_envoy()
    graph = shop(tmp_path / "mesh")
    bootstrap = sidecar_bootstrap(graph, graph.services[key("web")], Report(), "127.0.0.1")
    assert_envoy_accepts({"web.json": to_json(bootstrap)}, tmp_path / "validate")
    with EnvoyRunner(graph, binary) as runner:
        for sent, status, wanted in CONFORMANCE:
            decision, reply = evaluate(graph, WEB, sent), runner.send(WEB, sent)
            assert reply is not None
            assert disagreement(decision, reply) is None, sent
            assert meets(reply.status, reply.response_headers, status, wanted) == [], sent
            assert (reply.cluster is None) == (sent.method == "OPTIONS"), sent  # preflights are answered


def test_a_gateway_answers_cors_in_envoy(tmp_path: Path) -> None:
    graph = linked(tmp_path / "mesh", [
        mesh(), service("v1"),
        gateway("edge", [{"name": "web", "port": 80, "protocol": "http", "hosts": ["shop.example.com"]}]),
        route("shop", [{"to": [{"service": "v1"}], "cors": CORS_1}], gateway="edge", hosts=["shop.example.com"])])
    edge = Proxy(gateway=key("edge"))
    requests = [preflight("/", "https://a.bar.com", host="shop.example.com", port=80),
                preflight("/", "https://evil.example", host="shop.example.com", port=80),
                simple("/", "https://www.foo.com", "POST", host="shop.example.com", port=80)]
    with EnvoyRunner(graph, require_envoy()) as runner:
        replies = [(evaluate(graph, edge, r), runner.send(edge, r)) for r in requests]
    assert [disagreement(d, r) for d, r in replies] == [None] * 3
    assert [header_value(r.response_headers, "access-control-allow-origin") for _, r in replies] == [
        "https://a.bar.com", None, "https://www.foo.com"]


def test_route_tests_expect_cors_headers(tmp_path: Path) -> None:
    cases = [
        {"name": "preflight", "request": {"host": "api", "path": "/cors-1", "method": "OPTIONS",
                                          "headers": {"origin": "https://www.foo.com",
                                                      "access-control-request-method": "GET"}},
         "expect": {"status": 200, "responseHeaders": {"access-control-allow-origin": "https://www.foo.com",
                                                       "access-control-max-age": "3600"}}},
        {"name": "refused", "request": {"host": "api", "path": "/cors-1", "headers": {"origin": "https://foobar.com"}},
         "expect": {"responseHeaders": {"access-control-allow-origin": "https://foobar.com"}}},
    ]
    root = write(tmp_path, [mesh(), service("web", calls=["api"]), service("api", versions=("v1",)),
                            route("api", RULES, service="api"),
                            {"apiVersion": "meshc/v1", "kind": "RouteTest", "name": "api", "caller": "web",
                             "cases": cases}])
    result = CliRunner().invoke(main, ["test", str(root), "--envoy", "--format", "json"])
    failures = [(d["code"], d["message"]) for d in json.loads(result.stdout)["diagnostics"]
                if d["code"] in ("MESH501", "MESH504")]
    assert failures == [("MESH501", ("RouteTest shop/api case 'refused': responseHeaders 'access-control-allow-origin' "
                                     "at shop/api@v1:8080: expected 'https://foobar.com', got None"))]


def test_istio_carries_the_cors_policy(tmp_path: Path) -> None:
    """istio.io VirtualService CorsPolicy: allowOrigins StringMatches, `maxAge` a duration,
    `unmatchedPreflights: IGNORE` ("preflight requests not matching the configured allowed
    origin shouldn't be forwarded to the upstream")."""
    graph, spec, _ = kubernetes_route(tmp_path, "istio", RULES)
    policy = spec["http"][0]["corsPolicy"]
    assert policy == {"allowOrigins": [{"exact": "https://www.foo.com"}, {"exact": "https://www.foo.com:443"},
                                       {"regex": "https://[-a-z0-9.]+\\.bar\\.com(:443)?"}],
                      "allowMethods": ["GET", "OPTIONS"], "allowHeaders": ["x-header-1", "x-header-2"],
                      "exposeHeaders": ["x-header-3", "x-header-4"], "maxAge": "3600s", "allowCredentials": True,
                      "unmatchedPreflights": "IGNORE"}
    for sent, *_ in CONFORMANCE:
        assert istio_decides(spec, sent) == istio_evaluator(evaluate(graph, WEB, sent)), sent
        assert istio_decide(spec, sent).action == (
            "preflight" if sent.method == "OPTIONS" else "forward")


def test_gateway_api_carries_the_cors_filter(tmp_path: Path) -> None:
    """Gateway API v1.6.1 HTTPRouteFilter type `CORS` (Extended), in the standard channel's CRD:
    the origins as written, maxAge in seconds."""
    graph, spec, report = kubernetes_route(tmp_path, "gateway-api", RULES)
    [cors] = [f["cors"] for f in spec["rules"][0]["filters"] if f["type"] == "CORS"]
    assert cors == {"allowOrigins": ["https://www.foo.com", "https://*.bar.com"], "allowMethods": ["GET", "OPTIONS"],
                    "allowHeaders": ["x-header-1", "x-header-2"], "exposeHeaders": ["x-header-3", "x-header-4"],
                    "maxAge": 3600, "allowCredentials": True}
    for sent, *_ in CONFORMANCE:
        assert gateway_api_decides(spec, sent) == gateway_api_evaluator(evaluate(graph, WEB, sent)), sent
    assert not [d for d in report.diagnostics if d.code.code in ("MESH464",) or d.code.code.startswith("MESH42")]


def test_a_regex_origin_is_reported_on_the_gateway_api(tmp_path: Path) -> None:
    rules = [{"to": [{"version": "v1"}], "cors": {"allowOrigins": ["https://a.example.com", {"regex": "https://r[0-9]+\\.test"}]}}]
    graph, spec, report = kubernetes_route(tmp_path, "gateway-api", rules)
    [warning] = [d for d in report.diagnostics if d.code.code == "MESH464"]
    assert "https://r[0-9]+\\.test" in warning.message and warning.location.line > 1
    assert spec["rules"][0]["filters"][0]["cors"]["allowOrigins"] == ["https://a.example.com"]
    sent = simple("/", "https://r7.test")
    assert gateway_api_decides(spec, sent) != gateway_api_evaluator(evaluate(graph, WEB, sent))
    _, istio_spec, istio_report = kubernetes_route(tmp_path / "istio", "istio", rules)
    assert {"regex": "https://r[0-9]+\\.test"} in istio_spec["http"][0]["corsPolicy"]["allowOrigins"]
    assert not [d for d in istio_report.diagnostics if d.code.code == "MESH464"]


def http_managers(bootstrap: dict) -> list[dict]:
    return [f["typed_config"] for listener in bootstrap["static_resources"]["listeners"]
            for chain in listener["filter_chains"] for f in chain["filters"]
            if f["name"] == "envoy.filters.network.http_connection_manager"]


def test_cloud_foundry_and_vm_sidecars_carry_cors_and_websockets(tmp_path: Path) -> None:
    """The Cloud Foundry and VM targets ship the envoy target's sidecar bootstrap: each carries
    the rule's CorsPolicy, the cors filter before the router, and WebSocket upgrades on every
    HTTP connection manager (docs/intents.md, Protocols on HTTP ports)."""
    cf = {"name": "cf", "kind": "cloudfoundry", "appsDomain": "apps.example.com"}
    graph = linked(tmp_path / "mesh", [
        mesh({"name": "vms", "kind": "vm"}, cf),
        service("web", calls=["api"], platform="cf"), service("plant", calls=["api"]),
        service("api", platform="cf"),
        route("api", [{"to": [{"service": "api"}], "cors": CORS_1}], service="api")], allowed=("MESH301", "MESH431"))
    artifacts = {a.path: a.content for a in emit(graph, Report(), ["cloudfoundry", "vm"])}
    sidecars = {path: yaml.safe_load(content) for path, content in artifacts.items()
                if path.endswith(("sidecars/web.yaml", "/envoy.yaml")) and b"outbound|http" in content}
    assert len(sidecars) == 2, sorted(artifacts)
    for path, bootstrap in sidecars.items():
        managers = http_managers(bootstrap)
        assert all(m["upgrade_configs"] == [{"upgrade_type": "websocket"}] for m in managers), path
        [outbound] = [m for m in managers if m["stat_prefix"] == "outbound|http"]
        assert [f["name"] for f in outbound["http_filters"]] == ["envoy.filters.http.cors", "envoy.filters.http.router"]
        [policy] = {json.dumps(r["typed_per_filter_config"], sort_keys=True)
                    for vh in outbound["route_config"]["virtual_hosts"] for r in vh["routes"]}
        assert json.loads(policy)["envoy.filters.http.cors"]["allow_credentials"] is True, path
        assert json.loads(policy)["envoy.filters.http.cors"]["max_age"] == "3600", path
