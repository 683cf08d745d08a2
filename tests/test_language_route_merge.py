"""Several Routes for one host (issue 12): a team's routes kept in their own files are merged
in one documented order, docs/intents.md "Several Routes for one host": the Routes ordered by
`namespace/name`, each Route's rules as written, first match wins. Proved in the evaluator,
through real Envoy (a sidecar and a gateway), in the Istio flavour (one VirtualService per
merged set, read back by tests/istio_reference.py) and in the Gateway API flavour (one HTTPRoute
per merged set, read back by the reader of tests/test_semantics_gateway_api.py); two rules of
different Routes with identical matches are MESH354, located at both.

The order is the Gateway API's last tie-breaker across Routes (HTTPRouteRule.matches): "If ties
still exist across multiple Routes, matching precedence MUST be determined in order of the
following criteria, continuing on ties: The oldest Route based on creation timestamp. The Route
appearing first in alphabetical order by "{namespace}/{name}". If ties still exist within an
HTTPRoute, matching precedence MUST be granted to the FIRST matching rule (in list order)".
Istio (istio.io, Traffic Management Best Practices): "the cross-resource order is UNDEFINED"
for VirtualServices bound to a gateway, and "Host merging is not supported in sidecars".
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from compiler.build import compile_mesh, emit
from compiler.diagnostics import Report
from compiler.evaluate import Proxy, Request, evaluate
from compiler.serialize import to_json
from targets.envoylib import EnvoyRunner, disagreement, gateway_bootstrap, sidecar_bootstrap
from tests.conftest import require_envoy
from tests.envoy_validate import assert_envoy_accepts
from tests.istio_reference import gateway_decide
from tests.k8s_schemas import validation_errors
from tests.semantics import gateway, key, linked, mesh, route, service, write
from tests.test_semantics_gateway_api import evaluator_decides as gateway_api_evaluator
from tests.test_semantics_gateway_api import gateway_api_decides
from tests.test_semantics_istio import evaluator_decides as istio_evaluator
from tests.test_semantics_istio import istio_decides
from tests.test_semantics_istio_gateway import decision_of, outcome_of

WEB = Proxy(service=key("web"))
EDGE = Proxy(gateway=key("edge"))
# Written in this file order on purpose: the merge order is by name, not by file.
MESH_ROUTES = [
    route("api-main", [{"match": [{"path": {"prefix": "/admin"}}], "to": [{"version": "v3"}]},
                       {"to": [{"version": "v1"}]}], service="api"),
    route("api-canary", [{"match": [{"headers": {"x-beta": {"exact": "1"}}}], "to": [{"version": "v2"}]},
                         {"match": [{"path": {"exact": "/admin/canary"}}], "to": [{"version": "v2"}]}],
          service="api"),
]
GATEWAY_ROUTES = [
    route("shop-orders", [{"match": [{"path": {"prefix": "/orders"}}], "to": [{"service": "api", "version": "v2"}]},
                          {"to": [{"service": "api", "version": "v1"}]}],
          gateway="edge", hosts=["shop.example.com"]),
    route("shop-cart", [{"match": [{"path": {"prefix": "/cart"}}], "to": [{"service": "api", "version": "v3"}]}],
          gateway="edge", hosts=["shop.example.com", "cart.example.com"]),
    route("wild", [{"match": [{"path": {"prefix": "/"}}], "to": [{"service": "api", "version": "v1"}]}],
          gateway="edge", hosts=["*.example.com"]),
]
LISTENERS = [{"name": "web", "port": 8080, "protocol": "http", "hosts": ["*.example.com"]}]
# (proxy, request) -> (route, rule) that decides, or None for 404
EXPECTED = {
    (WEB, Request("api", "/x", headers=(("x-beta", "1"),))): ("api-canary", 0),
    (WEB, Request("api", "/admin/canary")): ("api-canary", 1),
    (WEB, Request("api", "/admin/users")): ("api-main", 0),
    (WEB, Request("api", "/other")): ("api-main", 1),
    (EDGE, Request("shop.example.com", "/cart/1", port=8080)): ("shop-cart", 0),
    (EDGE, Request("shop.example.com", "/orders/7", port=8080)): ("shop-orders", 0),
    (EDGE, Request("shop.example.com", "/anything", port=8080)): ("shop-orders", 1),
    (EDGE, Request("cart.example.com", "/cart", port=8080)): ("shop-cart", 0),
    (EDGE, Request("cart.example.com", "/orders", port=8080)): None,  # no fall-through to `wild`
    (EDGE, Request("other.example.com", "/orders", port=8080)): ("wild", 0),
}


def documents(platform: dict | None = None) -> list[dict]:
    on = {"platform": "k8s"} if platform else {}
    return [mesh(platform) if platform else mesh(), service("web", calls=["api"], **on),
            service("api", versions=("v1", "v2", "v3"), **on), gateway("edge", LISTENERS, **on),
            *MESH_ROUTES, *GATEWAY_ROUTES]


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    return linked(tmp_path_factory.mktemp("merge"), documents())


def decided(decision) -> tuple[str, int] | None:
    return (decision.rule.route.name, decision.rule.index) if decision.rule is not None else None


@pytest.mark.parametrize(("proxy", "sent"), list(EXPECTED), ids=[f"{r.host}{r.path}" for _, r in EXPECTED])
def test_the_evaluator_merges_by_name_and_keeps_each_routes_order(shop, proxy, sent) -> None:
    assert decided(evaluate(shop, proxy, sent)) == EXPECTED[(proxy, sent)]


def test_the_graph_holds_the_routes_in_merge_order(shop) -> None:
    assert [r.key.name for r in shop.routes_for(key("api"))] == ["api-canary", "api-main"]
    assert [r.key.name for r in shop.gateway_routes[key("edge")]] == ["shop-cart", "shop-orders", "wild"]


def test_envoy_merges_as_the_evaluator_does(shop, tmp_path: Path) -> None:
    """Every expected case through real Envoy: the sidecar's virtual host of `api` holds both
    Routes' routes in merge order, the gateway's virtual host of shop.example.com both Routes'."""
    binary = require_envoy()
    report = Report()
    assert_envoy_accepts({"web.json": to_json(sidecar_bootstrap(shop, shop.services[key("web")], report, "127.0.0.1")),
                          "edge.json": to_json(gateway_bootstrap(shop, shop.gateways[key("edge")], report,
                                                                 "127.0.0.1"))}, tmp_path)
    assert report.diagnostics == []
    with EnvoyRunner(shop, binary) as runner:
        replies = [(proxy, sent, runner.send(proxy, sent)) for proxy, sent in EXPECTED]
    problems = [(sent, disagreement(evaluate(shop, proxy, sent), reply)) for proxy, sent, reply in replies]
    assert [p for p in problems if p[1] is not None] == []
    assert {reply.status for *_, reply in replies} == {200, 404}


def kubernetes_objects(root: Path, flavor: str) -> tuple:
    graph = linked(root, documents({"name": "k8s", "kind": "kubernetes", "flavor": flavor}))
    report = Report()
    docs = [doc for artifact in emit(graph, report, ["kubernetes"]) if artifact.path.endswith(".yaml")
            for doc in yaml.safe_load_all(artifact.content) if doc and "metadata" in doc]
    return graph, docs, sorted((d.code.code, d.location.file, d.location.line) for d in report.diagnostics)


def test_istio_writes_one_virtual_service_per_merged_set(tmp_path: Path) -> None:
    """The sidecar's `api` host: one VirtualService, api-canary's rules then api-main's; the
    gateway's shop.example.com: one VirtualService of shop-cart and shop-orders (merged name),
    cart.example.com shop-cart's own, *.example.com wild's. Read back by istio_reference."""
    graph, docs, said = kubernetes_objects(tmp_path, "istio")
    assert said == []
    services = [d for d in docs if d["kind"] == "VirtualService"]
    assert [error for d in services for error in validation_errors(d)] == []
    [mesh_service] = [d for d in services if not d["spec"].get("gateways")]
    assert mesh_service["metadata"]["name"].startswith("api-canary-merged-")
    bound = {d["metadata"]["name"]: d["spec"]["hosts"] for d in services if d["spec"].get("gateways")}
    merged = [name for name in bound if name.startswith("shop-cart-merged-")]
    assert bound == {"shop-cart": ["cart.example.com"], merged[0]: ["shop.example.com"], "wild": ["*.example.com"]}
    [istio_gateway] = [d for d in docs if d["kind"] == "Gateway"]
    for proxy, sent in EXPECTED:
        decision = evaluate(graph, proxy, sent)
        if proxy == WEB:
            assert istio_decides(mesh_service["spec"], sent) == istio_evaluator(decision), sent
        else:
            bound_services = [d for d in services if d["spec"].get("gateways")]
            assert outcome_of(gateway_decide(istio_gateway, bound_services, sent)) == decision_of(decision), sent


def mesh_service_name(graph) -> str:
    """`<first Route>-merged-<digest of the Routes' keys>`, the same on both flavours."""
    import hashlib
    keys = "\n".join(str(r.key) for r in graph.routes_for(key("api")))
    return f"api-canary-merged-{hashlib.sha256(keys.encode()).hexdigest()[:8]}"


def test_gateway_api_writes_one_http_route_per_merged_set(tmp_path: Path) -> None:
    """The mesh HTTPRoute (parent: the Service) holds both Routes' rules in merge order; read
    back with the Gateway API's precedence, it decides as the evaluator for every request."""
    graph, docs, said = kubernetes_objects(tmp_path, "gateway-api")
    # where the Gateway API's precedence or its merge of intersecting hostnames decides
    # otherwise, at the later rule: api-main's /admin prefix outranks api-canary's header match
    # (a request with both), api-canary's exact path its own header match, and cart.example.com
    # falls through to `wild`
    assert said == [("MESH426", "04-route.yaml", 5), ("MESH426", "05-route.yaml", 11),
                    ("MESH428", "07-route.yaml", 5)]
    routes = [d for d in docs if d["kind"] == "HTTPRoute"]
    assert [error for d in routes for error in validation_errors(d)] == []
    [mesh_route] = [d for d in routes if d["spec"]["parentRefs"][0].get("kind") == "Service"]
    assert mesh_route["metadata"]["name"] == mesh_service_name(graph)
    for proxy, sent in EXPECTED:
        if proxy == WEB:
            assert gateway_api_decides(mesh_route["spec"], sent) == gateway_api_evaluator(evaluate(graph, proxy, sent))
    hostnames = sorted(tuple(d["spec"].get("hostnames", ())) for d in routes if d is not mesh_route)
    assert hostnames == [("*.example.com",), ("cart.example.com",), ("shop.example.com",)]


def test_gateway_api_precedence_across_merged_routes_is_reported(tmp_path: Path) -> None:
    """api-main's exact path outranks api-canary's prefix under the Gateway API's precedence,
    while the merged order puts api-canary first: MESH426 names both Routes' rules."""
    platform = {"name": "k8s", "kind": "kubernetes", "flavor": "gateway-api"}
    graph = linked(tmp_path, [mesh(platform), service("web", calls=["api"], platform="k8s"),
                              service("api", versions=("v1", "v2"), platform="k8s"),
                              route("b-main", [{"match": [{"path": {"exact": "/a/b"}}], "to": [{"version": "v1"}]}],
                                    service="api"),
                              route("a-first", [{"match": [{"path": {"prefix": "/a"}}], "to": [{"version": "v2"}]}],
                                    service="api")], allowed=("MESH355",))  # b-main's rule never decides
    report = Report()
    emit(graph, report, ["kubernetes"])
    [order] = [d for d in report.diagnostics if d.code.code == "MESH426"]
    assert "Route shop/b-main" in order.message and "Route shop/a-first" in order.message
    assert order.location.file == "03-route.yaml" and order.related[0].location.file == "04-route.yaml"


def test_identical_matches_in_two_routes_are_located_at_both(tmp_path: Path) -> None:
    """MESH354 at the later Route's entry (merge order: by name), the earlier one related."""
    root = write(tmp_path, [mesh(), service("web", calls=["api"]), service("api", versions=("v1", "v2")),
                            route("team-b", [{"match": [{"path": {"prefix": "/x"}}, {"method": "POST"}],
                                              "to": [{"version": "v1"}]}], service="api"),
                            route("team-a", [{"match": [{"method": "POST"}], "to": [{"version": "v2"}]},
                                             {"to": [{"version": "v1"}]}], service="api")])
    [conflict] = [d for d in compile_mesh(root).report.sorted() if d.code.code == "MESH354"]
    assert conflict.severity == "error"
    assert (conflict.location.file, conflict.location.line) == ("03-route.yaml", 8)
    assert (conflict.related[0].location.file, conflict.related[0].location.line) == ("04-route.yaml", 6)
    assert "Route shop/team-b" in conflict.message and "Route shop/team-a" in conflict.message


def test_routes_on_one_gateway_host_that_repeat_a_catch_all_conflict(tmp_path: Path) -> None:
    root = write(tmp_path, [mesh(), service("api"), gateway("edge", LISTENERS),
                            route("one", [{"to": [{"service": "api"}]}], gateway="edge", hosts=["a.example.com"]),
                            route("two", [{"to": [{"service": "api"}]}], gateway="edge",
                                  hosts=["b.example.com", "a.example.com"])])
    [conflict] = [d for d in compile_mesh(root).report.sorted() if d.code.code == "MESH354"]
    assert conflict.location.file == "04-route.yaml" and conflict.related[0].location.file == "03-route.yaml"


@pytest.mark.parametrize(("earlier", "later"), [
    ({"path": {"prefix": "/"}}, None),  # a prefix `/` matches every path, as no match does
    (None, {"path": {"prefix": "/"}}),
    ({"path": {"prefix": "/a"}}, {"path": {"prefix": "/a/"}}),  # a prefix's trailing `/` is ignored
    ({"headers": {"X-Team": {"exact": "b"}}}, {"headers": {"x-team": {"exact": "b"}}}),  # names in any case
])
def test_matches_that_mean_the_same_conflict_however_written(tmp_path: Path, earlier, later) -> None:
    """MESH354 compares what two matches select (docs/intents.md, "Several Routes for one host"),
    not their text; the evaluator agrees that the two select the same requests."""
    def rule(match: dict | None, version: str) -> dict:
        return {**({"match": [match]} if match is not None else {}), "to": [{"version": version}]}

    documents = [mesh(), service("web", calls=["api"]), service("api", versions=("v1", "v2")),
                 route("team-a", [rule(earlier, "v1")], service="api"), route("team-b", [rule(later, "v2")], service="api")]
    [conflict] = [d for d in compile_mesh(write(tmp_path / "written", documents)).report.sorted()
                  if d.code.code == "MESH354"]
    assert conflict.location.file == "04-route.yaml" and conflict.related[0].location.file == "03-route.yaml"
    graph = linked(tmp_path / "linked", documents, allowed=("MESH354",))
    for path in ("/", "/a", "/a/", "/ab", "/a/b"):
        for headers in ((), (("x-team", "b"),)):
            decision = evaluate(graph, WEB, Request("api", path, headers=headers))
            assert decision.rule is None or decision.rule.route.name == "team-a", (path, headers)
