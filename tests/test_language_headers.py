"""Header edits (issue 12): `headers: {request, response: {set, add, remove}}` on a rule and on a
destination mean docs/intents.md's text in the evaluator, in `meshc test`, through real Envoy,
and in the emitted Istio VirtualService and Gateway API HTTPRoute (schema-valid, read back by
the independent readers of tests/test_semantics_istio.py and tests/test_semantics_gateway_api.py).

The cases are those of the Gateway API conformance tests httproute-request-header-modifier and
httproute-response-header-modifier (conformance/tests), written from HTTPHeaderFilter's text:
"Set overwrites the request with the given header (name, value)", "Add ... appends to any
existing values associated with the header name ... Output: my-header: foo,bar,baz", "Remove the
given header(s)".
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from compiler.build import check_mesh, compile_mesh, emit
from compiler.cli import main
from compiler.diagnostics import Report
from compiler.evaluate import Proxy, Request, evaluate, header_value
from compiler.serialize import to_json
from targets.envoylib import EnvoyRunner, disagreement, sidecar_bootstrap
from tests.conftest import require_envoy
from tests.envoy_validate import assert_envoy_accepts
from tests.k8s_schemas import validation_errors
from tests.semantics import key, linked, mesh, route, service, write
from tests.test_semantics_gateway_api import evaluator_decides as gateway_api_evaluator
from tests.test_semantics_gateway_api import gateway_api_decides
from tests.test_semantics_istio import evaluator_decides as istio_evaluator
from tests.test_semantics_istio import istio_decides

WEB = Proxy(service=key("web"))
SENT = (("x-header-set", "some-other-value"), ("x-header-add", "add-value-1"), ("x-header-remove", "gone"),
        ("x-untouched", "same"))
RULES = [
    {"match": [{"path": {"prefix": "/split"}}],
     "to": [{"version": "v1", "weight": 50, "headers": {"request": {"set": {"x-backend": "one"}},
                                                         "response": {"add": {"x-from": "v1"}}}},
            {"version": "v2", "weight": 50, "headers": {"request": {"add": {"X-Backend": "two"}},
                                                         "response": {"set": {"x-from": "v2"}}}}],
     "headers": {"request": {"set": {"X-Header-Set": "set-overwrites-values"},
                             "add": {"x-header-add": "add-appends-values"}, "remove": ["x-header-remove"]},
                 "response": {"set": {"content-type": "text/plain"}, "add": {"x-header-add": "r"}}}},
    {"match": [{"path": {"prefix": "/abort"}}], "fault": {"abort": {"status": 418}},
     "to": [{"version": "v1", "headers": {"response": {"set": {"x-from": "v1"}}}}],
     "headers": {"response": {"set": {"x-aborted": "yes"}}}},
    {"to": [{"version": "v1"}]},
]


def shop(root: Path, platform: dict | None = None, rules: list[dict] = RULES):
    extra = {"platform": "k8s"} if platform else {}
    return linked(root, [mesh(platform) if platform else mesh(), service("web", calls=["api"], **extra),
                         service("api", versions=("v1", "v2", "v3"), **extra),
                         route("api", rules, service="api")], allowed=("MESH301", "MESH302"))


def located_error(tmp_path: Path, headers: dict, on_destination: dict | None = None) -> tuple[str, int, str]:
    to = [{"version": "v1", **({"headers": on_destination} if on_destination else {})}]
    root = write(tmp_path, [mesh(), service("web", calls=["api"]), service("api", versions=("v1",)),
                            route("api", [{"to": to, "headers": headers}], service="api")])
    [error] = [d for d in compile_mesh(root).report.sorted() if d.severity == "error"]
    return error.code.code, error.location.line, error.message


@pytest.mark.parametrize(("headers", "words"), [
    ({"request": {"set": {"X-A": "1"}, "add": {"x-a": "2"}}}, "'x-a' is listed twice"),
    ({"request": {"set": {"host": "elsewhere"}}}, "'host' cannot be edited"),
    ({"response": {"set": {"x-a": "100%"}}}, "without `%`"),
    ({"request": {"set": {"x-a": "line\nbreak"}}}, "visible ASCII"),
    ({"request": {}}, "at least one of set, add, remove"),
    ({"request": {"add": {f"x-{i}": "v" for i in range(17)}}}, "at most 16"),
])
def test_malformed_header_edits_are_located_errors(tmp_path: Path, headers: dict, words: str) -> None:
    code, line, message = located_error(tmp_path, headers)
    assert code.startswith("MESH1") and line > 1 and words in message


def test_a_header_edited_by_the_rule_and_a_destination_is_an_error(tmp_path: Path) -> None:
    """docs/intents.md: backends apply the rule's and the destination's edits in different
    orders (Envoy: weighted cluster first, then route, unless most_specific_header_mutations_wins),
    so one name in both places would mean different things."""
    code, _, message = located_error(tmp_path, {"request": {"set": {"x-a": "rule"}}},
                                     {"request": {"remove": ["X-A"]}})
    assert code == "MESH108" and "'x-a' is edited by the rule and by a destination" in message


def test_the_evaluator_sets_appends_and_removes(tmp_path: Path) -> None:
    graph = shop(tmp_path)
    decision = evaluate(graph, WEB, Request("api", "/split", headers=SENT))
    seen = {t.version: decision.headers_seen(t) for t in decision.backends}
    for version, backend in (("v1", "one"), ("v2", "two")):
        assert header_value(seen[version], "x-header-set") == "set-overwrites-values"
        assert header_value(seen[version], "x-header-add") == "add-value-1,add-appends-values"
        assert header_value(seen[version], "x-header-remove") is None
        assert header_value(seen[version], "x-untouched") == "same"
        assert header_value(seen[version], "x-backend") == backend
    answered = (("content-type", "application/json"), ("x-from", "backend"))
    v1, v2 = (decision.response_headers(t, answered) for t in decision.backends)
    assert (header_value(v1, "x-from"), header_value(v2, "x-from")) == ("backend,v1", "v2")
    assert header_value(v1, "content-type") == "text/plain"
    abort = evaluate(graph, WEB, Request("api", "/abort"))
    assert (abort.action, [e.apply(()) for e in abort.abort_edits]) == (
        "abort", [(("x-aborted", "yes"), ("x-from", "v1"))])


def test_envoy_edits_headers_as_the_evaluator_does(tmp_path: Path) -> None:
    """Real Envoy on loopback: every request through the sidecar's outbound listener, each reply
    compared with the decision (tests/semantics: targets.envoylib.run.disagreement compares the
    request headers the echo backend received and the response headers the client got)."""
    binary = require_envoy()
    graph = shop(tmp_path / "mesh")
    bootstrap = sidecar_bootstrap(graph, graph.services[key("web")], Report(), "127.0.0.1")
    assert_envoy_accepts({"web.json": to_json(bootstrap)}, tmp_path / "validate")
    requests = [Request("api", "/split", headers=SENT)] * 12 + [Request("api", "/abort"), Request("api", "/x", headers=SENT)]
    with EnvoyRunner(graph, binary) as runner:
        replies = [(evaluate(graph, WEB, r), runner.send(WEB, r)) for r in requests]
    assert [disagreement(decision, reply) for decision, reply in replies] == [None] * len(requests)
    split = [reply for _, reply in replies[:12]]
    assert {reply.cluster for reply in split} == {"outbound|8080|v1|api.shop", "outbound|8080|v2|api.shop"}
    for reply in split:
        assert header_value(reply.headers, "x-header-add") == "add-value-1,add-appends-values"
        assert header_value(reply.headers, "x-header-remove") is None
        assert header_value(reply.response_headers, "content-type") == "text/plain"
    abort = replies[12][1]
    assert (abort.status, header_value(abort.response_headers, "x-aborted")) == (418, "yes")
    untouched = replies[13][1]
    assert header_value(untouched.headers, "x-header-remove") == "gone"


def test_route_tests_expect_headers_through_the_evaluator_and_envoy(tmp_path: Path) -> None:
    cases = [
        {"name": "edited", "request": {"host": "api", "path": "/split", "headers": dict(SENT)},
         "expect": {"headers": {"x-header-set": "set-overwrites-values", "x-header-remove": None,
                                "x-header-add": "add-value-1,add-appends-values"},
                    "responseHeaders": {"content-type": "text/plain", "x-header-add": "r"}}},
        {"name": "aborted", "request": {"host": "api", "path": "/abort"},
         "expect": {"status": 418, "responseHeaders": {"x-aborted": "yes", "x-from": "v1"}}},
        {"name": "wrong", "request": {"host": "api", "path": "/x", "headers": {"x-header-remove": "kept"}},
         "expect": {"headers": {"x-header-remove": None}}},
    ]
    root = write(tmp_path, [mesh(), service("web", calls=["api"]), service("api", versions=("v1", "v2", "v3")),
                            route("api", RULES, service="api"),
                            {"apiVersion": "meshc/v1", "kind": "RouteTest", "name": "api", "caller": "web",
                             "cases": cases}])
    result = CliRunner().invoke(main, ["test", str(root), "--envoy", "--format", "json"])
    failures = [d for d in json.loads(result.stdout)["diagnostics"] if d["code"] in ("MESH501", "MESH504")]
    assert [(d["code"], d["message"]) for d in failures] == [
        ("MESH501", ("RouteTest shop/api case 'wrong': headers 'x-header-remove' at shop/api@v1:8080: "
                     "expected None, got 'kept'"))]


def test_istio_carries_rule_and_destination_edits(tmp_path: Path) -> None:
    """istio.io VirtualService: HTTPRoute.headers applies to every destination,
    HTTPRouteDestination.headers to one ("Header manipulation rules can be specified for a
    specific route destination or for all destinations")."""
    graph = shop(tmp_path, {"name": "k8s", "kind": "kubernetes", "flavor": "istio"})
    documents = [doc for artifact in emit(graph, Report(), ["kubernetes"]) if artifact.path.endswith(".yaml")
                 for doc in yaml.safe_load_all(artifact.content) if doc]
    [service_route] = [d for d in documents if d["kind"] == "VirtualService" and d["metadata"]["name"] == "api"]
    assert validation_errors(service_route) == []
    first = service_route["spec"]["http"][0]
    assert first["headers"]["request"] == {"set": {"x-header-set": "set-overwrites-values"},
                                           "add": {"x-header-add": "add-appends-values"},
                                           "remove": ["x-header-remove"]}
    assert [d["headers"]["request"] for d in first["route"]] == [{"set": {"x-backend": "one"}},
                                                                 {"add": {"x-backend": "two"}}]
    sent = Request("api", "/split", headers=SENT)
    assert istio_decides(service_route["spec"], sent) == istio_evaluator(evaluate(graph, WEB, sent))


def test_gateway_api_carries_rule_and_backend_filters(tmp_path: Path) -> None:
    """Gateway API HTTPRouteRule.filters RequestHeaderModifier (Core) and ResponseHeaderModifier
    (Extended); HTTPBackendRef.filters for one backend (Extended)."""
    graph = shop(tmp_path, {"name": "k8s", "kind": "kubernetes", "flavor": "gateway-api"},
                 rules=[{**RULES[0]}, RULES[2]])
    report = Report()
    documents = [doc for artifact in emit(graph, report, ["kubernetes"]) if artifact.path.endswith(".yaml")
                 for doc in yaml.safe_load_all(artifact.content) if doc and "metadata" in doc]
    [http_route] = [d for d in documents if d["kind"] == "HTTPRoute" and d["metadata"]["name"] == "api"]
    assert validation_errors(http_route) == []
    first = http_route["spec"]["rules"][0]
    assert [f["type"] for f in first["filters"]] == ["RequestHeaderModifier", "ResponseHeaderModifier"]
    assert first["filters"][0]["requestHeaderModifier"]["set"] == [{"name": "x-header-set",
                                                                    "value": "set-overwrites-values"}]
    assert [ref["filters"][0]["type"] for ref in first["backendRefs"]] == ["RequestHeaderModifier"] * 2
    sent = Request("api", "/split", headers=SENT)
    assert gateway_api_decides(http_route["spec"], sent) == gateway_api_evaluator(evaluate(graph, WEB, sent))
    assert not [d for d in report.diagnostics if d.code.code.startswith("MESH42")]


@pytest.mark.parametrize("flavor", [None, "istio", "gateway-api"])
def test_headers_on_a_byte_stream_rule_are_an_error_at_the_field_on_every_target(tmp_path: Path, flavor) -> None:
    """Issue 12's gap: headers on a tcp rule were dropped silently by the Istio and Gateway API
    flavours (VirtualService `tcp` routes, TCPRoute and TLSRoute have no header filter) and only
    the Envoy target said so. docs/intents.md: a rule that forwards byte streams has no headers
    to edit, so the edits are an analysis error (MESH389) at each `headers` field, whatever the
    target: on the rule, on a destination, and after an `sni` match."""
    extra = {"platform": "k8s"} if flavor else {}
    platforms = [{"name": "k8s", "kind": "kubernetes", "flavor": flavor}] if flavor else []
    root = write(tmp_path, [mesh(*platforms), service("web", calls=["db", "vault"], **extra),
                            service("db", ports=[{"name": "pg", "port": 5432, "protocol": "tcp"}], **extra),
                            service("vault", ports=[{"name": "tls", "port": 8200, "protocol": "tls"}], **extra),
                            route("db", [{"to": [{"headers": {"request": {"set": {"x-a": "1"}}}}],
                                          "headers": {"response": {"remove": ["x-b"]}}}], service="db"),
                            route("vault", [{"match": [{"sni": ["vault.example.com"]}], "to": [{}],
                                             "headers": {"request": {"add": {"x-c": "1"}}}}], service="vault")])
    compiled = check_mesh(root)
    errors = [(d.code.code, d.location.file, d.location.line, d.message) for d in compiled.report.sorted()
              if d.severity == "error"]
    text = {name: (root / name).read_text().splitlines() for name in ("04-route.yaml", "05-route.yaml")}

    def line(name: str, prefix: str, after: int = 0) -> int:
        return next(n for n, ln in enumerate(text[name], 1) if n > after and ln.strip().lstrip("- ").startswith(prefix))

    to_headers = line("04-route.yaml", "headers:", line("04-route.yaml", "to:"))
    nothing = "byte streams, which have no HTTP headers: these header edits would mean nothing on every target"
    assert errors == [
        ("MESH389", "04-route.yaml", line("04-route.yaml", "headers:"), f"rule 0 of Route shop/db forwards tcp {nothing}"),
        ("MESH389", "04-route.yaml", to_headers, f"rule 0 of Route shop/db forwards tcp {nothing}"),
        ("MESH389", "05-route.yaml", line("05-route.yaml", "headers:"), f"rule 0 of Route shop/vault forwards tls {nothing}"),
    ]
    assert meshc_build_fails(root, tmp_path / "out")


def meshc_build_fails(root: Path, out: Path) -> bool:
    result = CliRunner().invoke(main, ["build", str(root), "-o", str(out)])
    return result.exit_code != 0 and not out.exists()
