"""ExternalService addresses, resolution and endpoints (issue 12): docs/intents.md,
ExternalService. Istio ServiceEntry (istio.io, networking/service-entry): `resolution` DNS
("attempt to resolve the IP address by querying the ambient DNS"), STATIC ("use the static IP
addresses specified in endpoints"), NONE ("connections ... will be forwarded to the IP address
requested by the application"); `addresses`: "For HTTP traffic, generated route
configurations will include http route domains for both the addresses and hosts field
values"; WorkloadEntry.ports: "If omitted, and the targetPort is specified as part of the
service's port specification, traffic to the service port will be forwarded to one of the
endpoints on the specified targetPort. If both the targetPort and endpoint's port map are not
specified, traffic to a service port will be forwarded to one of the endpoints on the same
port."

Proved: the evaluator's upstreams, real Envoy reaching a STATIC endpoint on 127.x (by host and
by address), the Istio ServiceEntry (schema-valid, its endpoints read back), and a located
diagnostic where a sidecar meshc generates cannot carry NONE or an address range.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml

from compiler.build import compile_mesh, emit
from compiler.diagnostics import Report
from compiler.evaluate import Proxy, Request, evaluate
from compiler.serialize import to_json
from targets.envoylib import EnvoyRunner, sidecar_bootstrap
from targets.envoylib.blocks import cluster_name
from targets.envoylib.run import _EchoServer
from tests.conftest import require_envoy
from tests.envoy_validate import assert_envoy_accepts
from tests.k8s_schemas import validation_errors
from tests.semantics import key, linked, mesh, service, write

WEB = Proxy(service=key("web"))
API, EXT = "meshc/v1", "ExternalService"


def external(name: str, hosts: list[str], ports: list[dict] | None = None, **fields) -> dict:
    return {"apiVersion": API, "kind": EXT, "name": name, "hosts": hosts,
            "ports": ports or [{"name": "http", "port": 80, "protocol": "http"}], **fields}


@pytest.mark.parametrize(("fields", "words"), [
    ({"resolution": "STATIC"}, "resolution STATIC needs `endpoints`"),
    ({"endpoints": [{"address": "10.0.0.1"}]}, "`endpoints` are for resolution STATIC"),
    ({"resolution": "STATIC", "endpoints": [{"address": "10.0.0.1", "ports": {"https": 443}}]}, "names port 'https'"),
    ({"resolution": "STATIC", "endpoints": [{"address": "billing.example.com"}]}, "does not appear to be an IPv4"),
    ({"addresses": ["10.0.0.1/24"]}, "has host bits set"),
    ({"hosts": ["*.example.com"], "resolution": "DNS"}, "resolution DNS needs host names"),
])
def test_resolution_endpoints_and_addresses_are_checked(tmp_path: Path, fields: dict, words: str) -> None:
    document = {**external("billing", ["billing.example.com"]), **fields}
    root = write(tmp_path, [mesh(), service("web", calls=["billing"]), document])
    [error] = [d for d in compile_mesh(root).report.sorted() if d.severity == "error"]
    assert error.code.code.startswith("MESH1") and words in error.message
    assert error.location.file == "02-externalservice.yaml"


def test_without_resolution_a_wildcard_host_is_none_and_a_name_is_dns() -> None:
    from compiler.model import ExternalService

    def resolution(hosts: list[str]) -> str:
        return ExternalService.model_validate(external("x", hosts)).effective_resolution

    assert (resolution(["a.example.com"]), resolution(["a.example.com", "*.example.com"])) == ("DNS", "NONE")


@pytest.fixture
def loopback() -> str:
    return f"127.{random.randrange(100, 250)}.{random.randrange(1, 250)}.{random.randrange(2, 250)}"


def static_mesh(root: Path, address: str, port: int) -> object:
    return linked(root, [mesh(), service("web", calls=["billing"]),
                         external("billing", ["billing.example.com"], addresses=["10.9.8.7", "192.0.2.0/24"],
                                  resolution="STATIC", endpoints=[{"address": address, "ports": {"http": port}}])],
                  allowed=("MESH457",))


def test_the_evaluator_connects_to_the_static_endpoints(tmp_path: Path) -> None:
    graph = static_mesh(tmp_path, "127.0.0.9", 18080)
    for host in ("billing.example.com", "10.9.8.7", "192.0.2.77:80"):
        decision = evaluate(graph, WEB, Request(host, "/invoices"))
        assert (decision.action, decision.external, decision.upstreams) == (
            "forward", key("billing"), (("127.0.0.9", 18080),)), host
    assert evaluate(graph, WEB, Request("10.9.8.8", "/")).status == 404


def test_envoy_reaches_the_static_endpoint_on_loopback(tmp_path: Path, loopback: str) -> None:
    """The cluster exactly as the envoy target writes it (type STATIC, the endpoint's port for
    the port name) in front of an HTTP server on 127.x: reached by host name and by an address
    of `addresses`; an address in the /24 block is not matched by the sidecar (MESH457)."""
    binary = require_envoy()
    backend = _EchoServer(loopback, "the-static-endpoint")
    try:
        graph = static_mesh(tmp_path / "mesh", loopback, backend.server_address[1])
        report = Report()
        bootstrap = sidecar_bootstrap(graph, graph.services[key("web")], report, "127.0.0.1")
        assert_envoy_accepts({"web.json": to_json(bootstrap)}, tmp_path)
        [range_warning] = report.diagnostics
        assert range_warning.code.code == "MESH457" and "'192.0.2.0/24'" in range_warning.message
        [cluster] = [c for c in bootstrap["static_resources"]["clusters"]
                     if c["name"] == cluster_name(key("billing"), 80)]
        assert cluster["type"] == "STATIC"
        with EnvoyRunner(graph, binary, emitted=frozenset({cluster["name"]})) as runner:
            replies = {host: runner.send(WEB, Request(host, "/invoices"))
                       for host in ("billing.example.com", "10.9.8.7:80", "192.0.2.77")}
        assert {host: (reply.status, reply.cluster, reply.path) for host, reply in replies.items()} == {
            "billing.example.com": (200, "the-static-endpoint", "/invoices"),
            "10.9.8.7:80": (200, "the-static-endpoint", "/invoices"),
            "192.0.2.77": (404, None, None)}
        assert backend.answered == 2
    finally:
        backend.stop()


def test_resolution_none_is_reported_on_a_generated_sidecar(tmp_path: Path) -> None:
    graph = linked(tmp_path, [mesh(), service("web", calls=["anything"]),
                              external("anything", ["*.example.com"], resolution="NONE")])
    report = Report()
    bootstrap = sidecar_bootstrap(graph, graph.services[key("web")], report, "127.0.0.1")
    [said] = report.diagnostics
    assert said.code.code == "MESH456" and said.location.file == "02-externalservice.yaml"
    [cluster] = [c for c in bootstrap["static_resources"]["clusters"] if c["name"].startswith("outbound|80|")]
    assert cluster["load_assignment"]["endpoints"] == []  # refused, never sent anywhere else
    assert evaluate(graph, WEB, Request("a.example.com", "/")).upstreams == (("a.example.com", 80),)


def service_entry_upstreams(entry: dict, port_number: int, requested: str) -> tuple[tuple[str, int], ...]:
    """Where Istio sends a port's traffic, read from a ServiceEntry (see the module docstring)."""
    port = next(p for p in entry["ports"] if p["number"] == port_number)
    target = port.get("targetPort", port["number"])
    if entry["resolution"] == "STATIC":
        return tuple((e["address"], e.get("ports", {}).get(port["name"], target)) for e in entry["endpoints"])
    if entry["resolution"] == "NONE":
        return ((requested, target),)
    return tuple((host, target) for host in entry["hosts"] if not host.startswith("*"))


@pytest.mark.parametrize("flavor", ["istio", "gateway-api"])
def test_the_service_entry_carries_addresses_resolution_and_endpoints(tmp_path: Path, flavor: str) -> None:
    k8s = {"name": "k8s", "kind": "kubernetes", "flavor": flavor}
    graph = linked(tmp_path, [
        mesh(k8s), service("web", calls=["billing", "anything", "maps"], platform="k8s"),
        external("billing", ["billing.example.com"], addresses=["10.9.8.7", "192.0.2.0/24"],
                 ports=[{"name": "http", "port": 80, "protocol": "http", "targetPort": 8080},
                        {"name": "db", "port": 5432, "protocol": "tcp"}],
                 resolution="STATIC", endpoints=[{"address": "10.9.8.7", "ports": {"http": 9090}},
                                                 {"address": "10.9.8.8"}]),
        external("anything", ["*.example.org"], resolution="NONE"),
        external("maps", ["maps.example.net"])])
    report = Report()
    documents = [doc for artifact in emit(graph, report, ["kubernetes"]) if artifact.path.endswith(".yaml")
                 for doc in yaml.safe_load_all(artifact.content) if doc and doc.get("kind") == "ServiceEntry"]
    assert [e for doc in documents for e in validation_errors(doc)] == []
    entries = {doc["metadata"]["name"]: doc["spec"] for doc in documents}
    assert entries["billing"]["addresses"] == ["10.9.8.7", "192.0.2.0/24"]
    assert [entries[n]["resolution"] for n in ("billing", "anything", "maps")] == ["STATIC", "NONE", "DNS"]
    for name, host, port in (("billing", "billing.example.com", 80), ("billing", "10.9.8.7", 5432),
                             ("anything", "a.example.org", 80), ("maps", "maps.example.net", 80)):
        spec = graph.externals[key(name)].spec
        written = next(p for p in spec.ports if p.port == port)
        from compiler.evaluate import external_upstreams

        assert service_entry_upstreams(entries[name], port, host) == \
            external_upstreams(graph.externals[key(name)], written, host), (name, port)
