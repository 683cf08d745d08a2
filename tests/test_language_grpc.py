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
