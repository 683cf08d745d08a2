"""WebSockets (issue 12): an HTTP/1.1 Upgrade on an `http` port passes through meshc's Envoy by
default, as on Istio, and is proven with a real handshake (101 Switching Protocols, RFC 6455
4.2.2) and an echoed frame through a caller's sidecar and through a gateway, each into the
callee's own sidecar (mutual TLS) and on to a WebSocket echo server.

Envoy (docs/root/intro/arch_overview/http/upgrades.rst): "Envoy Upgrade support is intended
mainly for WebSocket ... One may configure the upgrade_configs ..."; an upgrade the connection
manager does not name is refused (the second test shows the 403 without it). Istio: the 1.30
VirtualService HTTPRoute has no upgrade field at all (v1alpha1's `websocketUpgrade: true`, which
samples/websockets/route.yaml still shows, is gone), upgrades being always on; the Kubernetes
flavours therefore write nothing for WebSockets.
"""

from __future__ import annotations

import copy
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect
from websockets.sync.server import Server, ServerConnection, serve

from compiler.build import emit
from compiler.diagnostics import Report
from compiler.evaluate import Proxy, Request, evaluate
from tests.e2e import harness
from tests.e2e.conftest import Envoys
from tests.k8s_schemas import validation_errors
from tests.protocol_mesh import CALLER, Application, ProtocolMesh, running
from tests.semantics import key, linked, mesh, route, service

pytestmark = pytest.mark.e2e
CHAT_HOST = "chat.e2e.test"
ROUTE_TIMEOUT = "1s"  # the chat Route's: it bounds the wait for the 101, not the conversation


class EchoServer:
    """A WebSocket server that echoes every message and remembers each handshake's path and Host."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []
        self.server: Server = serve(self.echo, "127.0.0.1", 0)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.server.socket.getsockname()[1]

    def echo(self, connection: ServerConnection) -> None:
        assert connection.request is not None  # the handshake is done when the handler runs
        self.seen.append((connection.request.path, connection.request.headers.get("Host")))
        for message in connection:
            connection.send(message)

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(5)


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def chat_mesh(tmp_path_factory: pytest.TempPathFactory, echo: EchoServer) -> Iterator[tuple[ProtocolMesh, Envoys]]:
    rules = [{"to": [{"service": "chat"}], "timeout": ROUTE_TIMEOUT}]
    with running(tmp_path_factory.mktemp("websockets"),
                 [Application("chat", "http", echo.port, CHAT_HOST, route_rules=rules)]) as started:
        yield started


def open_socket(port: int, address: str = "127.0.0.1") -> socket.socket:
    return socket.create_connection((address, port), timeout=10)


def handshake(port: int, host: str, path: str, address: str = "127.0.0.1") -> ClientConnection:
    """A WebSocket client connected to `address:port` with the Host header `host`, as an
    application reaches its sidecar (or a browser a gateway)."""
    return connect(f"ws://{host}{path}", sock=open_socket(port, address), open_timeout=10, close_timeout=2)


def test_a_websocket_passes_through_the_callers_and_the_callees_sidecars(chat_mesh, echo: EchoServer) -> None:
    built, _ = chat_mesh
    with handshake(built.caller.outbound_port, "chat", "/room/1") as client:
        assert client.response is not None and client.response.status_code == 101
        client.send("hello over the mesh")
        assert client.recv(timeout=10) == "hello over the mesh"
        time.sleep(1.5)  # longer than the Route's timeout: the conversation goes on (docs/intents.md)
        client.send(b"\x00binary\xff")
        assert client.recv(timeout=10) == b"\x00binary\xff"
    assert ("/room/1", "chat") in echo.seen
    # the evaluator routes the upgrade request like any other request: to chat, path unchanged
    decision = evaluate(built.graph, Proxy(service=key(CALLER)),
                        Request("chat", "/room/1", headers=(("upgrade", "websocket"),)))
    assert (decision.action, [t.service.name for t in decision.backends], decision.path) == (
        "forward", ["chat"], "/room/1")


def test_a_websocket_passes_through_a_gateway(chat_mesh, echo: EchoServer) -> None:
    built, _ = chat_mesh
    with handshake(built.gateway_port, CHAT_HOST, "/live?x=1", built.gateway_address) as client:
        assert client.response is not None and client.response.status_code == 101
        client.send("through the gateway")
        assert client.recv(timeout=10) == "through the gateway"
    assert ("/live?x=1", CHAT_HOST) in echo.seen


def test_without_upgrade_configs_envoy_refuses_the_handshake(chat_mesh, tmp_path: Path) -> None:
    """The emitted `upgrade_configs` is what lets the handshake through: the caller's bootstrap
    without it, on another port, answers the same handshake 403."""
    built, envoys = chat_mesh
    stripped = copy.deepcopy(built.caller.bootstrap)
    assert stripped is not None
    outbound_port, admin_port = harness.free_ports(2)
    for listener in stripped["static_resources"]["listeners"]:
        for chain in listener["filter_chains"]:
            for network_filter in chain["filters"]:
                if network_filter["name"] == "envoy.filters.network.http_connection_manager":
                    assert network_filter["typed_config"].pop("upgrade_configs") == [{"upgrade_type": "websocket"}]
        if listener["name"] == "outbound|http":
            listener["address"]["socket_address"]["port_value"] = outbound_port
    stripped["static_resources"]["listeners"] = [
        listener for listener in stripped["static_resources"]["listeners"] if listener["name"] == "outbound|http"]
    stripped["admin"]["address"]["socket_address"]["port_value"] = admin_port
    envoys.start("frontend-without-upgrades", stripped, admin_port)
    with pytest.raises(InvalidStatus) as refused:
        handshake(outbound_port, "chat", "/room/2")
    assert refused.value.response.status_code == 403


def test_every_http_connection_manager_allows_websockets(chat_mesh) -> None:
    built, _ = chat_mesh
    for name, bootstrap in built.bootstraps.items():
        managers = [f["typed_config"] for listener in bootstrap["static_resources"]["listeners"]
                    for chain in listener["filter_chains"] for f in chain["filters"]
                    if f["name"] == "envoy.filters.network.http_connection_manager"]
        assert managers, name
        assert all(m["upgrade_configs"] == [{"upgrade_type": "websocket"}] for m in managers), name


@pytest.mark.parametrize("flavor", ["istio", "gateway-api"])
def test_kubernetes_flavours_carry_websockets_without_a_field(tmp_path: Path, flavor: str) -> None:
    """Istio's proxies allow the upgrade on every HTTP route and the CRDs have no field for it:
    the emitted route is schema-valid and carries nothing WebSocket-specific (no `websocketUpgrade`,
    which the Istio 1.30 CRD would reject)."""
    graph = linked(tmp_path, [mesh({"name": "k8s", "kind": "kubernetes", "flavor": flavor}),
                              service("web", calls=["chat"], platform="k8s"),
                              service("chat", versions=("v1",), platform="k8s"),
                              route("chat", [{"to": [{"version": "v1"}]}], service="chat")], allowed=("MESH301",))
    documents = [doc for artifact in emit(graph, Report(), ["kubernetes"]) if artifact.path.endswith(".yaml")
                 for doc in yaml.safe_load_all(artifact.content) if doc and "metadata" in doc]
    kind = "VirtualService" if flavor == "istio" else "HTTPRoute"
    [translated] = [d for d in documents if d["kind"] == kind and d["metadata"]["name"] == "chat"]
    assert validation_errors(translated) == []
    assert "websocket" not in yaml.safe_dump(translated).lower()
    with_field = copy.deepcopy(translated)
    if flavor == "istio":
        with_field["spec"]["http"][0]["websocketUpgrade"] = True
        assert validation_errors(with_field) != []
