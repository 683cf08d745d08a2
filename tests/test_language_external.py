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


def test_envoy_resolves_a_dns_host_to_its_ipv4_address(tmp_path: Path) -> None:
    """resolution DNS through real Envoy: the cluster the envoy target writes (STRICT_DNS, its
    lookup family V4_ONLY as Istio's for a proxy with IPv4 addresses) resolves `localhost`
    through the system's resolver (/etc/hosts: 127.0.0.1) and reaches an HTTP server there; the
    evaluator names the host and port it connects to. (Envoy's default family, AUTO, asks for
    IPv6 first and connects to ::1, where nothing listens: measured 503.)"""
    binary = require_envoy()
    backend = _EchoServer("127.0.0.1", "the-dns-endpoint")
    try:
        port = backend.server_address[1]
        graph = linked(tmp_path / "mesh", [mesh(), service("web", calls=["billing"]), external(
            "billing", ["localhost"], [{"name": "http", "port": port, "protocol": "http"}], resolution="DNS")])
        report = Report()
        bootstrap = sidecar_bootstrap(graph, graph.services[key("web")], report, "127.0.0.1")
        assert report.diagnostics == []
        assert_envoy_accepts({"web.json": to_json(bootstrap)}, tmp_path)
        [cluster] = [c for c in bootstrap["static_resources"]["clusters"] if c["name"] == cluster_name(key("billing"),
                                                                                                        port)]
        assert (cluster["type"], cluster["dns_lookup_family"]) == ("STRICT_DNS", "V4_ONLY")
        sent = Request(f"localhost:{port}", "/invoices")
        assert evaluate(graph, WEB, sent).upstreams == (("localhost", port),)
        with EnvoyRunner(graph, binary, emitted=frozenset({cluster["name"]})) as runner:
            reply = runner.send(WEB, sent)
        assert (reply.status, reply.cluster, reply.path) == (200, "the-dns-endpoint", "/invoices")
        assert backend.answered == 1
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


# -- Routes on an external host ----------------------------------------------------------------

PAY_ROUTE = {"apiVersion": API, "kind": "Route", "name": "pay", "service": "pay-a", "rules": [
    {"match": [{"path": {"prefix": "/slow"}}], "timeout": "250ms", "retries": {"attempts": 2},
     "to": [{"service": "pay-a"}]},
    {"to": [{"service": "pay-a", "weight": 50}, {"service": "pay-b", "weight": 50}]}]}


def payments(root: Path, endpoints: dict[str, tuple[str, int]], platform: dict | None = None):
    on = {"platform": "k8s"} if platform else {}
    return linked(root, [mesh(platform) if platform else mesh(), service("web", calls=["pay-a"], **on),
                         *(external(name, [f"{name}.example.com"], resolution="STATIC",
                                    endpoints=[{"address": address, "ports": {"http": port}}])
                           for name, (address, port) in endpoints.items()),
                         PAY_ROUTE])


def test_the_evaluator_routes_an_external_host(tmp_path: Path) -> None:
    graph = payments(tmp_path, {"pay-a": ("127.0.0.9", 9001), "pay-b": ("127.0.0.9", 9002)})
    slow = evaluate(graph, WEB, Request("pay-a.example.com", "/slow/charge"))
    assert ([t.service.name for t in slow.backends], slow.timeout, slow.retries.attempts) == (["pay-a"], "250ms", 2)
    split = evaluate(graph, WEB, Request("pay-a.example.com", "/charge"))
    assert [(t.service.name, t.weight) for t in split.backends] == [("pay-a", 50), ("pay-b", 50)]
    assert split.host == "pay-a.example.com"  # no rewrite.host: the Host is the client's (docs/intents.md)


def test_a_route_mixing_mesh_and_external_destinations_is_located(tmp_path: Path) -> None:
    bad = {**PAY_ROUTE, "rules": [{"to": [{"service": "pay-a", "weight": 50}, {"service": "web", "weight": 50}]}]}
    root = write(tmp_path, [mesh(), service("web", calls=["pay-a"]), external("pay-a", ["pay-a.example.com"]), bad])
    [error] = [d for d in compile_mesh(root).report.sorted() if d.severity == "error"]
    assert error.code.code == "MESH222" and "shop/web is not an ExternalService" in error.message
    lines = (root / "03-route.yaml").read_text().splitlines()
    assert "web" in lines[error.location.line - 1]


def test_envoy_splits_between_two_external_hosts(tmp_path: Path, loopback: str) -> None:
    """Two STATIC external services on 127.x behind one Route: real Envoy sends `/slow` to
    pay-a only and splits the rest between both, each request as the evaluator decides (the
    clusters exactly as written: type STATIC, the endpoints' ports)."""
    binary = require_envoy()
    names = {name: cluster_name(key(name), 80) for name in ("pay-a", "pay-b")}
    backends = {name: _EchoServer(loopback, cluster) for name, cluster in names.items()}
    try:
        graph = payments(tmp_path / "mesh", {name: (loopback, b.server_address[1]) for name, b in backends.items()})
        report = Report()
        bootstrap = sidecar_bootstrap(graph, graph.services[key("web")], report, "127.0.0.1")
        assert report.diagnostics == []
        assert_envoy_accepts({"web.json": to_json(bootstrap)}, tmp_path)
        [outbound] = [listener for listener in bootstrap["static_resources"]["listeners"]
                      if listener["name"] == "outbound|http"]
        [routes] = [vh["routes"] for vh in outbound["filter_chains"][0]["filters"][0]["typed_config"]["route_config"]
                    ["virtual_hosts"] if vh["name"].startswith("pay-a.")]
        assert [(r["route"].get("timeout"), r["route"].get("retry_policy", {}).get("num_retries")) for r in routes] \
            == [("0.25s", 2), ("0s", 2)]  # the second rule has the built-in default, Istio's 2 retries
        sent = [Request("pay-a.example.com", "/slow/1")] * 4 + [Request("pay-a.example.com", f"/c/{i}")
                                                                for i in range(40)]
        with EnvoyRunner(graph, binary, emitted=frozenset(names.values())) as runner:
            replies = [(request, runner.send(WEB, request)) for request in sent]
        from targets.envoylib import disagreement

        assert [(r, p) for r, reply in replies if (p := disagreement(evaluate(graph, WEB, r), reply))] == []
        split = [reply.cluster for request, reply in replies if request.path.startswith("/c/")]
        assert set(split) == set(names.values()) and backends["pay-a"].answered >= 4
    finally:
        for backend in backends.values():
            backend.stop()


def test_istio_routes_the_external_host_with_a_virtual_service(tmp_path: Path) -> None:
    """The VirtualService of pay-a.example.com (its ServiceEntry host) splits to both external
    hosts, with the rule's timeout and retries; pay-b's ServiceEntry is written and the caller's
    Sidecar lets its host out, though web calls pay-a only."""
    graph = payments(tmp_path, {"pay-a": ("10.0.0.1", 9001), "pay-b": ("10.0.0.2", 9002)},
                     {"name": "k8s", "kind": "kubernetes"})
    report = Report()
    documents = [doc for artifact in emit(graph, report, ["kubernetes"]) if artifact.path.endswith(".yaml")
                 for doc in yaml.safe_load_all(artifact.content) if doc and "kind" in doc]
    [virtual_service] = [d for d in documents if d["kind"] == "VirtualService"]
    assert validation_errors(virtual_service) == []
    spec = virtual_service["spec"]
    assert spec["hosts"] == ["pay-a.example.com"]
    # first the rule's POST/PATCH/CONNECT twin without retries (HTTPRetry retries every method)
    assert spec["http"][0]["retries"] == {"attempts": 0}
    assert (spec["http"][1]["timeout"], spec["http"][1]["retries"]["attempts"]) == ("0.25s", 2)
    from tests.istio_reference import decide

    for path in ("/slow/1", "/c"):
        sent = Request("pay-a.example.com", path)
        outcome = decide(spec, sent)
        decision = evaluate(graph, WEB, sent)
        assert sorted((host, weight) for host, _, _, weight in outcome.destinations) == sorted(
            (graph.externals[t.service].spec.hosts[0], t.weight) for t in decision.backends), path
    assert {d["metadata"]["name"] for d in documents if d["kind"] == "ServiceEntry"} == {"pay-a", "pay-b"}
    [sidecar] = [d for d in documents if d["kind"] == "Sidecar" and d["metadata"]["name"] == "web"]
    assert {"shop/pay-a.example.com", "shop/pay-b.example.com"} <= set(sidecar["spec"]["egress"][0]["hosts"])
