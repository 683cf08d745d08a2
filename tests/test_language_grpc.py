"""gRPC end to end (issue 12): a `grpc` port is carried as HTTP/2 to the application (Envoy
cluster `typed_extension_protocol_options` with `http2_protocol_options`; Istio appProtocol
`grpc`), and real gRPC calls, unary and server-streaming, go through a caller's sidecar and a
gateway into the callee's own sidecar (mutual TLS) and on to a real grpcio server.

gRPC on HTTP/2 (grpc/grpc doc/PROTOCOL-HTTP2.md): "Path → ":path" "/" Service-Name "/"
{method name}", so Route rules select methods by path (`exact: /pkg.Service/Method`, or the
segment prefix `/pkg.Service` for a whole service). When the proxy answers a call itself (no
rule matches, an abort), the client reads the HTTP status through gRPC's mapping
(doc/http-grpc-status-mapping.md: "404 Not Found | UNIMPLEMENTED", "503 Service Unavailable |
UNAVAILABLE"); compiler.evaluate.grpc_status is that table, and real Envoy answers so.

The services are defined without protoc: grpcio's generic handlers with raw-bytes messages
(no serializers), which is all the wire format needs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
import yaml

from compiler.build import emit
from compiler.diagnostics import Report
from compiler.evaluate import Proxy, Request, evaluate, grpc_status
from tests.istio_reference import decide as istio_decide
from tests.k8s_schemas import validation_errors
from tests.protocol_mesh import CALLER, Application, ProtocolMesh, running
from tests.semantics import key, linked, mesh, route, service
from tests.test_semantics_gateway_api import gateway_api_decides

pytestmark = pytest.mark.e2e
SERVICE = "meshc.test.Greeter"
GRPC_HOST = "grpc.e2e.test"
# The greeter's mesh Route: one method aborted, the service's other methods forwarded, and no
# rule for anything else (answered 404, UNIMPLEMENTED to a gRPC client).
RULES = [
    {"match": [{"path": {"exact": f"/{SERVICE}/Broken"}}], "fault": {"abort": {"status": 503}},
     "to": [{"service": "greeter"}]},
    {"match": [{"path": {"prefix": f"/{SERVICE}"}}], "to": [{"service": "greeter"}]},
]


class Greeter:
    """`Hello` answers `hello <request>`; `Count` streams 1..n for the request `n`; every call's
    method and `:authority` is remembered."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        handlers = {
            "Hello": grpc.unary_unary_rpc_method_handler(self.hello),
            "Count": grpc.unary_stream_rpc_method_handler(self.count),
            "Broken": grpc.unary_unary_rpc_method_handler(self.hello),
        }
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def hello(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self.calls.append("Hello")
        return b"hello " + request

    def count(self, request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        self.calls.append("Count")
        for n in range(1, int(request) + 1):
            yield str(n).encode()

    def stop(self) -> None:
        self.server.stop(grace=None).wait(5)


@pytest.fixture(scope="module")
def greeter() -> Iterator[Greeter]:
    server = Greeter()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def grpc_mesh(tmp_path_factory: pytest.TempPathFactory, greeter: Greeter) -> Iterator[ProtocolMesh]:
    with running(tmp_path_factory.mktemp("grpc"),
                 [Application("greeter", "grpc", greeter.port, GRPC_HOST, route_rules=RULES)]) as (built, _):
        yield built


def channel(port: int, authority: str, address: str = "127.0.0.1") -> grpc.Channel:
    """A plain-text (h2c) channel to a proxy, with the authority an application names its callee by."""
    return grpc.insecure_channel(f"{address}:{port}", options=[("grpc.default_authority", authority)])


def calls(connection: grpc.Channel) -> tuple[bytes, list[bytes]]:
    hello = connection.unary_unary(f"/{SERVICE}/Hello")(b"mesh", timeout=10)
    counted = list(connection.unary_stream(f"/{SERVICE}/Count")(b"3", timeout=10))
    return hello, counted


def test_unary_and_streaming_calls_through_the_sidecars(grpc_mesh: ProtocolMesh, greeter: Greeter) -> None:
    with channel(grpc_mesh.caller.outbound_port, "greeter") as connection:
        assert calls(connection) == (b"hello mesh", [b"1", b"2", b"3"])
    assert greeter.calls[-2:] == ["Hello", "Count"]


def test_unary_and_streaming_calls_through_a_gateway(grpc_mesh: ProtocolMesh, greeter: Greeter) -> None:
    with channel(grpc_mesh.gateway_port, GRPC_HOST, grpc_mesh.gateway_address) as connection:
        assert calls(connection) == (b"hello mesh", [b"1", b"2", b"3"])


@pytest.mark.parametrize(("method", "expected"), [
    (f"/{SERVICE}/Broken", grpc.StatusCode.UNAVAILABLE),  # the rule's abort 503
    ("/other.Service/Call", grpc.StatusCode.UNIMPLEMENTED),  # no rule: 404
])
def test_a_route_failure_is_the_mapped_grpc_status(grpc_mesh: ProtocolMesh, greeter: Greeter, method: str,
                                                   expected: grpc.StatusCode) -> None:
    """Real Envoy answers the call itself, and the gRPC client reads the status the evaluator's
    decision maps to; the greeter never sees the call."""
    before = list(greeter.calls)
    decision = evaluate(grpc_mesh.graph, Proxy(service=key(CALLER)),
                        Request("greeter", method, "POST", (("content-type", "application/grpc"),)))
    assert grpc_status(decision) == expected.name
    with channel(grpc_mesh.caller.outbound_port, "greeter") as connection, pytest.raises(grpc.RpcError) as failed:
        connection.unary_unary(method)(b"x", timeout=10)
    assert failed.value.code() == expected
    assert greeter.calls == before


def test_the_grpc_port_speaks_http2_to_the_application(grpc_mesh: ProtocolMesh) -> None:
    """The callee's inbound cluster to its application and the caller's cluster to the callee
    both use HTTP/2 (a gRPC server speaks nothing else); HTTP/1.1 clusters would fail every call."""
    def cluster(bootstrap: dict, name: str) -> dict:
        return next(c for c in bootstrap["static_resources"]["clusters"] if c["name"] == name)

    options = {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        "explicit_http_config": {"http2_protocol_options": {}}}}
    port = grpc_mesh.callees["greeter"].port
    assert cluster(grpc_mesh.bootstraps["greeter"], f"inbound|{port}")["typed_extension_protocol_options"] == options
    assert cluster(grpc_mesh.bootstraps[CALLER], f"outbound|{port}||greeter.shop")[
        "typed_extension_protocol_options"] == options


@pytest.mark.parametrize("flavor", ["istio", "gateway-api"])
def test_kubernetes_flavours_carry_grpc(tmp_path: Path, flavor: str) -> None:
    """The Kubernetes Service port says `appProtocol: grpc` (Istio protocol selection: "Istio
    supports proxying any TCP traffic ... the protocol can be explicitly specified: By the
    appProtocol field: appProtocol: <protocol>" with `grpc` among the values), and the route the
    flavour emits decides gRPC calls as the evaluator does: the aborted method, a method of the
    service, and an unknown service."""
    graph = linked(tmp_path, [mesh({"name": "k8s", "kind": "kubernetes", "flavor": flavor}),
                              service("web", calls=["greeter"], platform="k8s"),
                              service("greeter", platform="k8s", ports=[{"name": "grpc", "port": 9090,
                                                                         "protocol": "grpc"}]),
                              route("greeter", RULES, service="greeter")], allowed=("MESH301",))
    report = Report()
    documents = [doc for artifact in emit(graph, report, ["kubernetes"]) if artifact.path.endswith(".yaml")
                 for doc in yaml.safe_load_all(artifact.content) if doc and "metadata" in doc]
    [kubernetes_service] = [d for d in documents if d["kind"] == "Service" and d["metadata"]["name"] == "greeter"]
    assert [(p["port"], p["appProtocol"]) for p in kubernetes_service["spec"]["ports"]] == [(9090, "grpc")]
    assert validation_errors(kubernetes_service) == []
    kind = "VirtualService" if flavor == "istio" else "HTTPRoute"
    [translated] = [d for d in documents if d["kind"] == kind and d["metadata"]["name"] == "greeter"]
    assert validation_errors(translated) == []
    for method in (f"/{SERVICE}/Broken", f"/{SERVICE}/Hello", "/other.Service/Call"):
        sent = Request("greeter", method, "POST", (("content-type", "application/grpc"),))
        decision = evaluate(graph, Proxy(service=key("web")), sent)
        if flavor == "istio":
            outcome = istio_decide(translated["spec"], sent)
            status = 404 if outcome.action == "not-found" else outcome.status  # a VirtualService's no-match
            assert (outcome.action, status) == (decision.action, decision.status), method
        elif decision.action == "abort":
            # the Gateway API has no fault filter: reported at the rule (MESH42x), forwarded there
            assert any(d.code.code.startswith("MESH4") and "fault" in d.message for d in report.diagnostics)
        else:
            decided = gateway_api_decides(translated["spec"], sent)
            assert decided[0] == ("route" if decision.action == "forward" else "404"), method


# Method matching on flavor gateway-api: rules a GRPCRoute can carry become one (conformance
# grpcroute-exact-method-matching, grpcroute-header-matching, grpcroute-weight).
GRPC_RULES = [
    {"match": [{"path": {"exact": f"/{SERVICE}/Hello"}, "headers": {"x-canary": {"exact": "yes"}}}],
     "to": [{"version": "v2"}], "headers": {"request": {"set": {"x-routed": "canary"}}}},
    {"match": [{"path": {"exact": f"/{SERVICE}/Count"}}],
     "to": [{"version": "v1", "weight": 80}, {"version": "v2", "weight": 20}]},
    {"match": [{"path": {"prefix": f"/{SERVICE}"}}], "to": [{"version": "v1"}]},
]
CALLS = [(f"/{SERVICE}/Hello", (("x-canary", "yes"),)), (f"/{SERVICE}/Hello", ()), (f"/{SERVICE}/Count", ()),
         (f"/{SERVICE}/Other", ()), ("/other.Service/Call", ())]  # every gRPC call is /<service>/<method>


def grpc_route_decides(spec: dict, sent: Request) -> tuple:
    """A GRPCRoute on one call, from the Gateway API's text: GRPCMethodMatch Exact "matches the
    service and/or method" of the path `/<service>/<method>`, headers Exact or
    RegularExpression; among matching rules "precedence MUST be given to the rule with the
    largest number of: Characters in a matching service. Characters in a matching method. Header
    matches", ties to the first rule; no match: "the response MUST be UNIMPLEMENTED (12)"."""
    service, _, method = sent.bare_path[1:].partition("/")

    def matches(entry: dict) -> bool:
        wanted = entry.get("method", {})
        if wanted.get("service", service) != service or wanted.get("method", method) != method or not method:
            return False
        return all((sent.header(h["name"]) == h["value"]) if h.get("type", "Exact") == "Exact" else
                   sent.header(h["name"]) is not None and re.fullmatch(h["value"], sent.header(h["name"])) is not None
                   for h in entry.get("headers", []))

    candidates = [((len(e.get("method", {}).get("service", "")), len(e.get("method", {}).get("method", "")),
                    len(e.get("headers", []))), -index, rule)
                  for index, rule in enumerate(spec["rules"]) for e in rule.get("matches") or [{}] if matches(e)]
    if not candidates:
        return ("UNIMPLEMENTED",)
    *_, chosen = max(candidates, key=lambda c: (c[0], c[1]))
    weighted = len(chosen["backendRefs"]) > 1
    sets = {h["name"]: h["value"] for f in chosen.get("filters", []) if f["type"] == "RequestHeaderModifier"
            for h in f["requestHeaderModifier"].get("set", [])}
    return ("route", sorted((ref["name"], ref["port"], ref.get("weight", 1) if weighted else 100) for ref in
                            chosen["backendRefs"]), sets)


def evaluator_grpc(decision) -> tuple:
    if decision.action != "forward":
        return (grpc_status(decision),)
    edits = decision.edits_of(decision.destinations[0])[0]
    return ("route", sorted((f"{t.service.name}-{t.version}", t.port, t.weight) for t in decision.destinations),
            dict(edits.set))


def test_gateway_api_writes_a_grpc_route_with_method_matches(tmp_path: Path) -> None:
    """A Route whose rules a GRPCRoute can carry is one on flavor gateway-api (standard channel,
    validated against its v1.6.1 CRD), and it decides every call as the evaluator does."""
    graph, documents, report = grpc_kubernetes(tmp_path, "gateway-api", GRPC_RULES)
    [grpc_route] = [d for d in documents if d["kind"] == "GRPCRoute"]
    assert not [d for d in documents if d["kind"] == "HTTPRoute" and d["metadata"]["name"] == "greeter"]
    assert validation_errors(grpc_route) == []
    assert grpc_route["spec"]["rules"][0]["matches"] == [
        {"method": {"type": "Exact", "service": SERVICE, "method": "Hello"},
         "headers": [{"type": "Exact", "name": "x-canary", "value": "yes"}]}]
    assert grpc_route["spec"]["rules"][2]["matches"] == [{"method": {"type": "Exact", "service": SERVICE}}]
    for path, headers in CALLS:
        sent = Request("greeter", path, "POST", (("content-type", "application/grpc"), *headers))
        decision = evaluate(graph, Proxy(service=key("web")), sent)
        assert grpc_route_decides(grpc_route["spec"], sent) == evaluator_grpc(decision), path
    assert not [d for d in report.diagnostics if d.severity != "info"]


@pytest.mark.parametrize("rules", [
    RULES,  # a fault: the GRPCRoute has no fault filter
    [{"match": [{"path": {"prefix": f"/{SERVICE}"}}], "to": [{"version": "v1"}]},
     {"match": [{"path": {"exact": f"/{SERVICE}/Hello"}}], "to": [{"version": "v2"}]}],  # precedence against order
    [{"match": [{"path": {"regex": "/meshc[.].*"}}], "to": [{"version": "v1"}]}],  # no method form
], ids=["fault", "precedence", "regex"])
def test_rules_a_grpc_route_cannot_carry_stay_an_http_route(tmp_path: Path, rules: list[dict]) -> None:
    _, documents, _ = grpc_kubernetes(tmp_path, "gateway-api", rules)
    assert [d["kind"] for d in documents if d["metadata"]["name"] == "greeter" and d["kind"].endswith("Route")] == [
        "HTTPRoute"]


def grpc_kubernetes(root: Path, flavor: str, rules: list[dict]):
    graph = linked(root, [mesh({"name": "k8s", "kind": "kubernetes", "flavor": flavor}),
                          service("web", calls=["greeter"], platform="k8s"),
                          service("greeter", platform="k8s", versions=("v1", "v2"),
                                  ports=[{"name": "grpc", "port": 9090, "protocol": "grpc"}]),
                          route("greeter", rules, service="greeter")], allowed=("MESH301",))
    report = Report()
    documents = [doc for artifact in emit(graph, report, ["kubernetes"]) if artifact.path.endswith(".yaml")
                 for doc in yaml.safe_load_all(artifact.content) if doc and "metadata" in doc]
    return graph, documents, report
