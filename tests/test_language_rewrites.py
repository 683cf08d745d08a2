"""Rewrites (issue 12): `rewrite: {prefix | path, host}` means docs/intents.md's text in the
evaluator, through real Envoy (a sidecar and a gateway), in the Istio VirtualService and the
Gateway API HTTPRoute (schema-valid, read back by the independent readers).

The cases are those of the Gateway API conformance tests httproute-rewrite-path and
httproute-rewrite-host, written from HTTPURLRewriteFilter's text: "Hostname is the value to be
used to replace the Host header value during forwarding"; HTTPPathModifier ReplaceFullPath
("the value with which to replace the full path of a request during a rewrite") and
ReplacePrefixMatch.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.build import compile_mesh
from compiler.diagnostics import Report
from compiler.evaluate import Proxy, Request, evaluate
from compiler.serialize import to_json
from targets.envoylib import EnvoyRunner, disagreement, gateway_bootstrap
from tests.conftest import require_envoy
from tests.envoy_validate import assert_envoy_accepts
from tests.semantics import gateway, key, kubernetes_route, linked, mesh, route, service, write
from tests.test_semantics_gateway_api import evaluator_decides as gateway_api_evaluator
from tests.test_semantics_gateway_api import gateway_api_decides
from tests.test_semantics_istio import evaluator_decides as istio_evaluator
from tests.test_semantics_istio import istio_decides

EDGE = Proxy(gateway=key("edge"))
WEB = Proxy(service=key("web"))
RULES = [
    {"match": [{"path": {"prefix": "/prefix/one"}}], "to": [{"version": "v1"}], "rewrite": {"prefix": "/one"}},
    {"match": [{"path": {"prefix": "/full/one"}}], "to": [{"version": "v1"}], "rewrite": {"path": "/one"}},
    {"match": [{"path": {"exact": "/full/exact"}}], "to": [{"version": "v1"}], "rewrite": {"path": "/two"}},
    {"match": [{"path": {"prefix": "/host"}}], "to": [{"version": "v1"}], "rewrite": {"host": "one.example.org"}},
    {"match": [{"path": {"prefix": "/both"}}], "to": [{"version": "v2"}],
     "rewrite": {"host": "two.example.org", "path": "/two"}},
    {"match": [{"path": {"prefix": "/all"}}], "to": [{"version": "v2"}],
     "rewrite": {"host": "three.example.org", "prefix": "/"}},
    {"to": [{"version": "v1"}]},
]
# request path -> (path, Host) the destination receives; the request's Host is "api.shop:8080"
EXPECTED = {
    "/prefix/one/two?x=1": ("/one/two?x=1", "api.shop:8080"),
    "/prefix/one": ("/one", "api.shop:8080"),
    "/prefix/onetwo": ("/prefix/onetwo", "api.shop:8080"),
    "/full/one/two?x=1": ("/one?x=1", "api.shop:8080"),
    "/full/one": ("/one", "api.shop:8080"),
    "/full/exact": ("/two", "api.shop:8080"),
    "/host/x": ("/host/x", "one.example.org"),
    "/both/a/b?q": ("/two?q", "two.example.org"),
    "/all/a": ("/a", "three.example.org"),
    "/other": ("/other", "api.shop:8080"),
}


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    return linked(tmp_path_factory.mktemp("shop"), [
        mesh(), service("web", calls=["api"]), service("api", versions=("v1", "v2")),
        gateway("edge", [{"name": "plain", "port": 80, "protocol": "http", "hosts": ["*"]}]),
        route("api", RULES, service="api"),
        route("edge", [{**r, "to": [{"service": "api", **r["to"][0]}]} for r in RULES], gateway="edge",
              hosts=["*"])], allowed=("MESH301",))


@pytest.mark.parametrize(("path", "seen"), sorted(EXPECTED.items()))
def test_the_evaluator_rewrites_path_and_host(shop, path: str, seen: tuple[str, str]) -> None:
    decision = evaluate(shop, WEB, Request("api.shop:8080", path))
    assert (decision.path, decision.host) == seen


def test_envoy_rewrites_as_the_evaluator_does(shop, tmp_path: Path) -> None:
    """A sidecar and a gateway, real Envoy; the echo backend reports the path and Host it got."""
    binary = require_envoy()
    assert_envoy_accepts({"edge.json": to_json(gateway_bootstrap(shop, shop.gateways[key("edge")], Report(),
                                                                  "127.0.0.1"))}, tmp_path)
    requests = [(WEB, Request("api.shop:8080", path)) for path in EXPECTED]
    requests += [(EDGE, Request("api.shop:8080", path, port=80)) for path in EXPECTED]
    with EnvoyRunner(shop, binary) as runner:
        replies = [(proxy, request, runner.send(proxy, request)) for proxy, request in requests]
    assert [(r.path, disagreement(evaluate(shop, proxy, r), reply)) for proxy, r, reply in replies
            if disagreement(evaluate(shop, proxy, r), reply) is not None] == []
    assert {r.path: (reply.path, reply.host) for proxy, r, reply in replies if proxy == WEB} == EXPECTED


@pytest.mark.parametrize(("rewrite", "words"), [
    ({"prefix": "/a", "path": "/b"}, "`prefix` (the matched prefix) or `path`"),
    ({}, "a prefix, a path or a host"),
    ({"host": "*.example.org"}, "should match pattern"),
])
def test_malformed_rewrites_are_located_errors(tmp_path: Path, rewrite: dict, words: str) -> None:
    root = write(tmp_path, [mesh(), service("web", calls=["api"]), service("api"),
                            route("api", [{"to": [{}], "rewrite": rewrite}], service="api")])
    [error] = [d for d in compile_mesh(root).report.sorted() if d.severity == "error"]
    assert error.code.code.startswith("MESH1") and error.location.line > 1 and words in error.message


def test_istio_rewrites_as_the_evaluator_does(tmp_path: Path) -> None:
    """HTTPRewrite: `authority` "rewrite the Authority/Host header with this value"; the whole
    path by `uriRegexRewrite` over all of it (`uri` replaces only a matched prefix)."""
    graph, spec, _ = kubernetes_route(tmp_path, "istio", RULES)
    rewrites = [entry["rewrite"] for entry in spec["http"] if "rewrite" in entry]
    assert {"authority": "two.example.org", "uriRegexRewrite": {"match": "^.*$", "rewrite": "/two"}} in rewrites
    for path in EXPECTED:
        sent = Request("api.shop:8080", path)
        assert istio_decides(spec, sent) == istio_evaluator(evaluate(graph, WEB, sent)), path


def test_gateway_api_rewrites_as_the_evaluator_does(tmp_path: Path) -> None:
    """HTTPURLRewriteFilter `hostname` and `path` (ReplaceFullPath, ReplacePrefixMatch)."""
    graph, spec, report = kubernetes_route(tmp_path, "gateway-api", RULES)
    rewrites = [f["urlRewrite"] for rule in spec["rules"] for f in rule.get("filters", []) if f["type"] == "URLRewrite"]
    assert {"hostname": "two.example.org", "path": {"type": "ReplaceFullPath", "replaceFullPath": "/two"}} in rewrites
    assert [d for d in report.diagnostics if d.code.code in ("MESH424", "MESH426")] == []
    for path in EXPECTED:
        sent = Request("api.shop:8080", path)
        assert gateway_api_decides(spec, sent) == gateway_api_evaluator(evaluate(graph, WEB, sent)), path


def test_a_prefix_after_no_path_match_is_the_gateway_apis_default_prefix(tmp_path: Path) -> None:
    """Issue 12's gap: a rewrite or redirect `prefix` on a rule without a path match was MESH424
    on flavor gateway-api. docs/intents.md: "after an entry without `path` the matched prefix is
    `/`"; the Gateway API (HTTPRouteRule.matches): "If no matches are specified, the default is a
    prefix path match on "/"", and an HTTPRouteMatch's path defaults to PathPrefix "/". So the
    rule is written with that one PathPrefix match, which ReplacePrefixMatch needs ("exactly one
    PathPrefix match must be specified"), and it means what the evaluator says."""
    rules = [{"match": [{"method": "POST"}], "redirect": {"prefix": "/forms", "status": 307}},
             {"match": [{"headers": {"x-legacy": {"exact": "1"}}}], "to": [{"version": "v2"}],
              "rewrite": {"prefix": "/legacy"}},
             {"to": [{"version": "v1"}], "rewrite": {"prefix": "/api"}}]
    graph, spec, report = kubernetes_route(tmp_path, "gateway-api", rules)
    assert [d.code.code for d in report.diagnostics if d.code.code.startswith("MESH42")] == []
    root_prefix = {"type": "PathPrefix", "value": "/"}
    assert [rule["matches"] for rule in spec["rules"]] == [
        [{"path": root_prefix, "method": "POST"}],
        [{"path": root_prefix, "headers": [{"type": "Exact", "name": "x-legacy", "value": "1"}]}],
        [{"path": root_prefix}]]
    modifiers = [f.get("urlRewrite", f.get("requestRedirect"))["path"] for r in spec["rules"] for f in r["filters"]]
    assert modifiers == [{"type": "ReplacePrefixMatch", "replacePrefixMatch": p} for p in ("/forms", "/legacy", "/api")]
    for sent in [Request("api", "/a/b?q=1"), Request("api", "/", headers=(("x-legacy", "1"),)),
                 Request("api", "/x", "POST"), Request("api", "/x/", headers=(("x-legacy", "1"),))]:
        decided = gateway_api_decides(spec, sent)
        assert decided == gateway_api_evaluator(evaluate(graph, WEB, sent)), sent
    assert gateway_api_decides(spec, Request("api", "/a/b?q=1"))[2] == "/api/a/b?q=1"
