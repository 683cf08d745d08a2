"""A gateway Route attached to named listeners or ports (issue 12): `Route.listeners` and
`Route.ports` (docs/intents.md, Gateway), the Gateway API's ParentReference `sectionName` and
`port`: "When the parent resource is a Gateway, this targets all listeners listening on the
specified port ... When both Port and SectionName are specified, the name and port of the
selected listener must match both specified values." Proved in the evaluator, by requests on
two listeners of one gateway through real Envoy, in the Istio flavour (a `port` match on every
rule, HTTPMatchRequest.port; MESH427 where another listener shares the port) and in the
Gateway API flavour (parentRefs, read back below from the ParentReference text).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from compiler.build import compile_mesh, emit
from compiler.diagnostics import Report
from compiler.evaluate import Proxy, Request, evaluate
from compiler.serialize import to_json
from targets.envoylib import EnvoyRunner, disagreement, gateway_bootstrap
from tests.conftest import require_envoy
from tests.envoy_validate import assert_envoy_accepts
from tests.istio_reference import gateway_decide, host_covers, pattern_rank
from tests.k8s_schemas import validation_errors
from tests.semantics import gateway, key, linked, mesh, route, service, write
from tests.test_semantics_gateway_api import evaluator_decides as gateway_api_evaluator
from tests.test_semantics_gateway_api import gateway_api_decides as gateway_api_decides_one
from tests.test_semantics_istio_gateway import decision_of, outcome_of

EDGE = Proxy(gateway=key("edge"))
LISTENERS = [{"name": "public", "port": 8080, "protocol": "http", "hosts": ["*.example.com"]},
             {"name": "internal", "port": 9090, "protocol": "http", "hosts": ["*.example.com"]}]
ROUTES = [
    route("shop-public", [{"to": [{"service": "api", "version": "v1"}]}],
          gateway="edge", hosts=["shop.example.com"], listeners=["public"]),
    route("shop-internal", [{"match": [{"path": {"prefix": "/debug"}}], "to": [{"service": "api", "version": "v3"}]},
                            {"to": [{"service": "api", "version": "v2"}]}],
          gateway="edge", hosts=["shop.example.com"], ports=[9090]),
    route("everything", [{"to": [{"service": "api", "version": "v1"}]}], gateway="edge", hosts=["*.example.com"]),
]
# request -> (route, rule) that decides
EXPECTED = {
    Request("shop.example.com", "/", port=8080): ("shop-public", 0),
    Request("shop.example.com", "/debug/x", port=8080): ("shop-public", 0),
    Request("shop.example.com:9090", "/", port=9090): ("shop-internal", 1),
    Request("shop.example.com", "/debug/x", port=9090): ("shop-internal", 0),
    Request("other.example.com", "/debug", port=8080): ("everything", 0),
    Request("other.example.com", "/debug", port=9090): ("everything", 0),
}


def documents(platform: dict | None = None, routes: list[dict] = ROUTES, listeners: list[dict] = LISTENERS):
    on = {"platform": "k8s"} if platform else {}
    return [mesh(platform) if platform else mesh(), service("api", versions=("v1", "v2", "v3"), **on),
            gateway("edge", listeners, **on), *routes]


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    return linked(tmp_path_factory.mktemp("attach"), documents())


@pytest.mark.parametrize("sent", list(EXPECTED), ids=[f"{r.host}-{r.port}{r.path}" for r in EXPECTED])
def test_the_evaluator_attaches_by_listener_name_and_port(edge, sent) -> None:
    decision = evaluate(edge, EDGE, sent)
    assert (decision.rule.route.name, decision.rule.index) == EXPECTED[sent]


def test_envoy_serves_each_listener_its_own_routes(edge, tmp_path: Path) -> None:
    """Requests on the two listeners of one gateway through real Envoy agree with the evaluator:
    shop.example.com is shop-public on 8080 and shop-internal on 9090."""
    binary = require_envoy()
    report = Report()
    assert_envoy_accepts({"edge.json": to_json(gateway_bootstrap(edge, edge.gateways[key("edge")], report,
                                                                 "127.0.0.1"))}, tmp_path)
    assert report.diagnostics == []
    with EnvoyRunner(edge, binary) as runner:
        replies = [(sent, runner.send(EDGE, sent)) for sent in EXPECTED]
    assert [(sent, problem) for sent, reply in replies
            if (problem := disagreement(evaluate(edge, EDGE, sent), reply)) is not None] == []
    clusters = {(sent.host.split(":")[0], sent.port, sent.path): reply.cluster for sent, reply in replies}
    assert clusters[("shop.example.com", 8080, "/")] != clusters[("shop.example.com", 9090, "/")]


def test_an_unknown_listener_or_port_is_located(tmp_path: Path) -> None:
    root = write(tmp_path, documents(routes=[route("r", [{"to": [{"service": "api"}]}], gateway="edge",
                                                   hosts=["a.example.com"], listeners=["public", "nope"],
                                                   ports=[8080, 7070])]))
    found = sorted((d.code.code, d.location.line, d.location.column) for d in compile_mesh(root).report.sorted()
                   if d.code.code == "MESH221")
    lines = (root / "03-route.yaml").read_text().splitlines()
    assert [lines[line - 1].strip() for _, line, _ in found] == ["- nope", "- 7070"]
    mesh_route = write(tmp_path / "mesh-route", documents(routes=[route("r", [{"to": [{}]}], service="api",
                                                                        ports=[8080])]))
    [error] = [d for d in compile_mesh(mesh_route).report.sorted() if d.severity == "error"]
    assert error.code.code.startswith("MESH1") and "attach an ingress Route" in error.message


def test_a_host_only_unattached_listeners_serve_is_unserved(tmp_path: Path) -> None:
    root = write(tmp_path, documents(listeners=[*LISTENERS, {"name": "admin", "port": 7070, "protocol": "http",
                                                             "hosts": ["admin.example.com"]}],
                                     routes=[route("r", [{"to": [{"service": "api"}]}], gateway="edge",
                                                   hosts=["admin.example.com"], listeners=["public"]),
                                             route("s", [{"to": [{"service": "api"}]}], gateway="edge",
                                                   hosts=["x.example.com"], listeners=["admin"])]))
    found = [d for d in compile_mesh(root).report.sorted() if d.code.code == "MESH351"]
    assert [d.message.split(" of Route ")[1] for d in found] == ["shop/s"]
    assert "listener it attaches to" in found[0].message


def test_a_listener_named_with_a_port_it_is_not_on_attaches_nowhere(tmp_path: Path) -> None:
    """Gateway API conformance HTTPRouteInvalidParentRefSectionNameNotMatchingPort: "When both
    Port and SectionName are specified, the name and port of the selected listener must match
    both specified values"; a listener and a port that select no listener leave the Route's
    hosts unserved, a located error (MESH351) where a controller would not accept the Route."""
    root = write(tmp_path, documents(routes=[route("r", [{"to": [{"service": "api"}]}], gateway="edge",
                                                   hosts=["a.example.com"], listeners=["public"], ports=[9090])]))
    [error] = [d for d in compile_mesh(root).report.sorted() if d.severity == "error"]
    assert error.code.code == "MESH351" and "listener it attaches to" in error.message
    assert (root / "03-route.yaml").read_text().splitlines()[error.location.line - 1].strip() == "- a.example.com"


def kubernetes_objects(root: Path, flavor: str, listeners: list[dict] = LISTENERS, routes: list[dict] = ROUTES,
                       allowed: tuple[str, ...] = ()):
    graph = linked(root, documents({"name": "k8s", "kind": "kubernetes", "flavor": flavor}, routes=routes,
                                   listeners=listeners), allowed=allowed)
    report = Report()
    docs = [doc for artifact in emit(graph, report, ["kubernetes"]) if artifact.path.endswith(".yaml")
            for doc in yaml.safe_load_all(artifact.content) if doc and "metadata" in doc]
    return graph, docs, report


def test_istio_matches_the_attached_listeners_ports(tmp_path: Path) -> None:
    """Two VirtualServices for shop.example.com bound to the Gateway, each matching only its
    listener's port; Istio merges them as fragments, which stay well-defined because their ports
    are disjoint (tests/istio_reference.gateway_decide says `undefined` otherwise)."""
    graph, docs, report = kubernetes_objects(tmp_path, "istio")
    assert report.diagnostics == []
    services = [d for d in docs if d["kind"] == "VirtualService"]
    assert [error for d in services for error in validation_errors(d)] == []
    shop = sorted(({m.get("port") for rule in d["spec"]["http"] for m in rule.get("match", [{}])}
                   for d in services if d["spec"]["hosts"] == ["shop.example.com"]), key=sorted)
    assert shop == [{8080}, {9090}]
    [istio_gateway] = [d for d in docs if d["kind"] == "Gateway"]
    for sent in EXPECTED:
        assert outcome_of(gateway_decide(istio_gateway, services, sent)) == decision_of(evaluate(graph, EDGE, sent))


def test_istio_reports_a_listener_sharing_the_port(tmp_path: Path) -> None:
    listeners = [*LISTENERS, {"name": "staff", "port": 8080, "protocol": "http", "hosts": ["shop.example.com"]}]
    _, _, report = kubernetes_objects(tmp_path, "istio", listeners)
    [said] = [d for d in report.diagnostics if d.code.code == "MESH427"]
    assert "'staff'" in said.message and said.location.file == "03-route.yaml" and said.location.line == 6
    assert said.related[0].location.file == "02-gateway.yaml"


def istio_disagreements(graph, docs: list[dict], requests: list[Request]) -> list[tuple]:
    services = [d for d in docs if d["kind"] == "VirtualService" and d["spec"].get("gateways")]
    [istio_gateway] = [d for d in docs if d["kind"] == "Gateway"]
    return [(sent.host, sent.port, sent.path, istio, meshc) for sent in requests
            if (istio := outcome_of(gateway_decide(istio_gateway, services, sent)))
            != (meshc := decision_of(evaluate(graph, EDGE, sent)))]


def test_istio_leaves_the_ports_a_route_is_not_attached_to_to_the_broader_route(tmp_path: Path) -> None:
    """shop.example.com's Route is attached to 8080 only, a broader Route serves
    *.example.com on both listeners: on 9090 the evaluator gives shop.example.com to the
    broader Route. So does Istio: the shop VirtualService's rules all match port 8080, so on
    9090 it has no routes and no virtual host (tests/istio_reference.routes_on_port: route.go
    TranslateRoute skips a match for another port, BuildHTTPRoutesForVirtualService answers "no
    routes matched" and buildGatewayHTTPRouteConfig goes on to the next VirtualService)."""
    routes = [ROUTES[0], ROUTES[2]]
    graph, docs, report = kubernetes_objects(tmp_path, "istio", routes=routes)
    assert report.diagnostics == []
    requests = [Request(host, path, port=port) for host in ("shop.example.com", "other.example.com")
                for port in (8080, 9090) for path in ("/", "/debug/x")]
    assert istio_disagreements(graph, docs, requests) == []
    assert decision_of(evaluate(graph, EDGE, Request("shop.example.com", "/", port=9090))) == (
        "forward", [("api", "v1")], "/")
    assert evaluate(graph, EDGE, Request("shop.example.com", "/", port=9090)).rule.route.name == "everything"


def test_istio_reports_a_broader_route_merged_into_a_listeners_host(tmp_path: Path) -> None:
    """A listener for shop.example.com only: Istio gives the *.example.com Route the virtual
    host shop.example.com there too (the more specific of its host and the Server's), the same
    as the shop Route's, and merges the two VirtualServices' rules in an undefined order; the
    evaluator gives every request to the shop Route. Reported at the broader Route's host
    (MESH470); attached to the other port instead, it meets the listener no more, and Istio
    answers as the evaluator."""
    listeners = [{"name": "shop", "port": 8080, "protocol": "http", "hosts": ["shop.example.com"]},
                 {"name": "rest", "port": 9090, "protocol": "http", "hosts": ["*.example.com"]}]
    shop = route("shop", [{"match": [{"path": {"prefix": "/debug"}}], "to": [{"service": "api", "version": "v3"}]}],
                 gateway="edge", hosts=["shop.example.com"])
    broad = route("everything", [{"to": [{"service": "api", "version": "v1"}]}], gateway="edge",
                  hosts=["*.example.com"])
    graph, docs, report = kubernetes_objects(tmp_path / "merged", "istio", listeners, [shop, broad])
    [said] = report.diagnostics
    assert said.code.code == "MESH470" and said.severity == "error"
    assert (said.location.file, said.location.line) == ("04-route.yaml", 4)  # its `- "*.example.com"`
    assert said.related[0].location.file == "03-route.yaml" and "'shop.example.com'" in said.message
    requests = [Request("shop.example.com", path, port=8080) for path in ("/", "/debug/x")]
    # the shop Route has no rule for `/`, which the broader Route's takes; both take /debug/x
    assert istio_disagreements(graph, docs, requests) == [
        ("shop.example.com", 8080, "/", ("forward", [("api", "v1")], "/"), ("404",)),
        ("shop.example.com", 8080, "/debug/x", ("undefined",), ("forward", [("api", "v3")], "/debug/x"))]
    attached = {**broad, "ports": [9090]}
    graph, docs, report = kubernetes_objects(tmp_path / "attached", "istio", listeners, [shop, attached])
    assert report.diagnostics == []
    requests += [Request(host, path, port=9090) for host in ("shop.example.com", "x.example.com")
                 for path in ("/", "/debug/x")]
    assert istio_disagreements(graph, docs, requests) == []


def test_a_route_attached_elsewhere_beside_one_attached_everywhere_is_reported_not_a_crash(tmp_path: Path) -> None:
    """Two Routes of one host, one attached to a listener that shares its port with another:
    the group of the Route attached everywhere is split by the other Route's attachment, which
    is the one reported (MESH427), with no traceback."""
    listeners = [*LISTENERS, {"name": "extra", "port": 9090, "protocol": "http", "hosts": ["*"]}]
    routes = [route("everywhere", [{"to": [{"service": "api", "version": "v1"}]}], gateway="edge", hosts=["*"]),
              route("internal", [{"to": [{"service": "api", "version": "v2"}]}], gateway="edge", hosts=["*"],
                    listeners=["internal"])]
    _, _, report = kubernetes_objects(tmp_path, "istio", listeners, routes, allowed=("MESH354",))
    said = sorted((d.location.file, d.location.line, d.message.split(": listener ")[1].split()[0])
                  for d in report.diagnostics if d.code.code == "MESH427")
    # internal's `listeners`: on 9090 the Routes attached everywhere cannot leave 'internal' out,
    # nor can internal's own rules leave 'extra' out
    assert said == [("04-route.yaml", 6, "'extra'"), ("04-route.yaml", 6, "'internal'")]
    assert any("so the Routes shop/everywhere of its hosts apply on some listeners" in d.message
               for d in report.diagnostics)


GENERATED_HOSTS = ["shop.example.com", "*.example.com", "a.shop.example.com", "*"]


@st.composite
def attached_gateway(draw) -> tuple[list[dict], list[dict]]:
    """Listeners on 8080 and 9090 (and maybe a catch-all beside one of them), and up to three
    Routes of overlapping hosts, each attached everywhere, to a listener, or to a port."""
    listeners = [{"name": f"l{port}", "port": port, "protocol": "http",
                  "hosts": draw(st.lists(st.sampled_from(GENERATED_HOSTS[:3]), min_size=1, max_size=2, unique=True))}
                 for port in (8080, 9090)]
    if draw(st.booleans()):
        listeners.append({"name": "extra", "port": draw(st.sampled_from([8080, 9090])), "protocol": "http",
                          "hosts": ["*"]})
    routes = []
    for index in range(draw(st.integers(1, 3))):
        target = {"service": "api", "version": f"v{index + 1}"}
        rules = [{"match": [{"path": {"prefix": "/p"}}], "to": [target]}] if draw(st.booleans()) else [{"to": [target]}]
        attachment = draw(st.sampled_from(["everywhere", "listener", "port"]))
        extra = ({"listeners": [draw(st.sampled_from([lst["name"] for lst in listeners]))]} if attachment == "listener"
                 else {"ports": [draw(st.sampled_from([8080, 9090]))]} if attachment == "port" else {})
        routes.append(route(f"r{index}", rules, gateway="edge", **extra,
                            hosts=draw(st.lists(st.sampled_from(GENERATED_HOSTS), min_size=1, max_size=2, unique=True))))
    return listeners, routes


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(generated=attached_gateway())
def test_istio_answers_generated_attached_routes_as_the_evaluator_or_reports_the_port(tmp_path_factory,
                                                                                        generated) -> None:
    """Every request (host, port, path) is answered by the emitted Gateway and VirtualServices
    (tests/istio_reference.gateway_decide) as the evaluator decides, except on a port a
    diagnostic names: a listener sharing the port with an attached Route's (MESH427) or a
    broader Route merged into another's virtual host (MESH470)."""
    listeners, routes = generated
    root = write(tmp_path_factory.mktemp("generated"),
                 documents({"name": "k8s", "kind": "kubernetes", "flavor": "istio"}, routes, listeners))
    compiled = compile_mesh(root)
    assume(compiled.graph is not None and not any(d.severity == "error" for d in compiled.report.diagnostics))
    report = Report()
    docs = [doc for artifact in emit(compiled.graph, report, ["kubernetes"]) if artifact.path.endswith(".yaml")
            for doc in yaml.safe_load_all(artifact.content) if doc and "metadata" in doc]
    reported = {port for d in report.diagnostics if d.code.code in ("MESH427", "MESH470")
                for port in (8080, 9090) if f"on port {port}" in d.message}
    assert {d.code.code for d in report.diagnostics} <= {"MESH427", "MESH470"}
    requests = [Request(host, path, port=port) for host in ("shop.example.com", "x.example.com", "a.shop.example.com",
                                                            "other.org") for port in (8080, 9090) for path in ("/", "/p")]
    assert [found for found in istio_disagreements(compiled.graph, docs, requests) if found[1] not in reported] == []


def parent_selects(ref: dict, gateway: dict, listener: dict) -> bool:
    """ParentReference on a Gateway: no sectionName and no port, the whole Gateway; `sectionName`
    the listener of that name, `port` "all listeners listening on the specified port", both
    "must match both specified values"."""
    if ref.get("kind", "Gateway") != "Gateway" or ref["name"] != gateway["metadata"]["name"]:
        return False
    return ref.get("sectionName", listener["name"]) == listener["name"] and \
        ref.get("port", listener["port"]) == listener["port"]


def gateway_api_decides(gateway: dict, routes: list[dict], sent: Request) -> tuple:
    """The listener of the port whose hostname matches the Host most specifically (Gateway API
    Listener.hostname; none: every host), then the HTTPRoutes attached to it, merged."""
    name = sent.host.split(":")[0]
    on_port = [lst for lst in gateway["spec"]["listeners"] if lst["port"] == sent.port
               and host_covers(lst.get("hostname", "*"), name)]
    if not on_port:
        return ("404",)
    listener = max(on_port, key=lambda lst: pattern_rank(lst.get("hostname", "*")))
    attached = [r for r in routes if any(parent_selects(ref, gateway, listener) for ref in r["spec"]["parentRefs"])]
    # HTTPRoutes with intersecting hostnames are merged, the most specific hostname first
    # (merged_decides, which compares the Host without its port; the request keeps it)
    def rank(spec: dict) -> tuple[int, int]:
        return max((pattern_rank(h) for h in spec.get("hostnames", ["*"]) if host_covers(h, name)), default=(-1, -1))

    for spec in sorted((r["spec"] for r in attached), key=rank, reverse=True):
        if rank(spec) >= (0, 0):
            decided = gateway_api_decides_one(spec, sent)
            if decided != ("404",):
                return decided
    return ("404",)


def test_gateway_api_writes_parent_refs_by_section_name_and_port(tmp_path: Path) -> None:
    graph, docs, report = kubernetes_objects(tmp_path, "gateway-api")
    assert [d for d in report.diagnostics if d.severity == "error"] == []
    routes = [d for d in docs if d["kind"] == "HTTPRoute"]
    assert [error for d in routes for error in validation_errors(d)] == []
    refs = sorted(str(ref) for d in routes for ref in d["spec"]["parentRefs"])
    assert refs == sorted(str(ref) for ref in ({"name": "edge", "namespace": "shop"},
                                                {"name": "edge", "namespace": "shop", "sectionName": "public"},
                                                {"name": "edge", "namespace": "shop", "port": 9090}))
    [edge_gateway] = [d for d in docs if d["kind"] == "Gateway"]
    for sent in EXPECTED:
        assert gateway_api_decides(edge_gateway, routes, sent) == \
            gateway_api_evaluator(evaluate(graph, EDGE, sent)), sent


def test_istio_reports_the_merge_per_https_listener(tmp_path: Path) -> None:
    """An https Server has a route table of its own (pilot gatewayRDSRouteName:
    `https.<port>.<portName>.<gateway>.<namespace>`): the broader Route meets the shop listener's
    host there (MESH470), while on the wildcard listener's table the two Routes keep virtual
    hosts of their own and nothing is reported for it."""
    tls = {"mode": "terminate", "certificate": "cert"}
    listeners = [{"name": "shop", "port": 443, "protocol": "https", "hosts": ["shop.example.com"], "tls": tls},
                 {"name": "rest", "port": 443, "protocol": "https", "hosts": ["*.example.com"], "tls": tls}]
    routes = [route("shop", [{"to": [{"service": "api", "version": "v3"}]}], gateway="edge", hosts=["shop.example.com"]),
              route("everything", [{"to": [{"service": "api", "version": "v1"}]}], gateway="edge",
                    hosts=["*.example.com"])]
    _, _, report = kubernetes_objects(tmp_path, "istio", listeners, routes)
    assert [(d.code.code, d.message.split(" of Gateway")[0]) for d in report.diagnostics] == [
        ("MESH470", "Route shop/everything's host '*.example.com' meets listener 'shop'")]
