"""Gateway TLS (issue 12): mutual TLS with a client CA, a minimum TLS version and TLS 1.2 cipher
suites per listener, meaning docs/intents.md's text (Gateway; Semantics, "Ingress requests") in
the evaluator, through real Envoy with real TLS clients, in the Istio Gateway and in the Gateway
API Gateway, or a located diagnostic where the Gateway API cannot carry it.

Sources: Envoy TlsParameters ("tls_minimum_protocol_version ... By default, it's TLSv1_2 for
both clients and servers"; "cipher_suites: If specified, the TLS listener will only support the
specified cipher list when negotiating TLS 1.0-1.2 (this setting has no effect when negotiating
TLS 1.3)"); DownstreamTlsContext.require_client_certificate; Istio ServerTLSSettings (`mode:
MUTUAL`, "caCertCredentialName: For mutual TLS, the name of the secret or the configmap that
holds CA certificates", `minProtocolVersion`, `cipherSuites`); Gateway API v1.6 GatewaySpec
`tls.frontend.perPort[].tls.validation.caCertificateRefs` ("applied to all Listeners handling
HTTPS traffic and matching given port"; Core: "A single reference to a Kubernetes ConfigMap,
with the CA certificate in a key named `ca.crt`").
"""

from __future__ import annotations

import http.client
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from compiler.build import compile_mesh, emit
from compiler.diagnostics import Report
from compiler.evaluate import Proxy, Request, evaluate
from compiler.serialize import to_json
from targets.envoylib import gateway_bootstrap
from tests.conftest import require_envoy
from tests.e2e import harness
from tests.e2e.meshes import install_gateway_certificate
from tests.envoy_validate import assert_envoy_accepts
from tests.k8s_schemas import validation_errors
from tests.pki import Issued, TestPki
from tests.semantics import NS, gateway, key, linked, mesh, route, service, write
from tests.test_semantics_istio_security import k8s, of_kind

SECURE, LEGACY = "secure.example.test", "legacy.example.test"
ONLY_CIPHER = "ECDHE-ECDSA-AES128-GCM-SHA256"  # the test PKI's keys are EC: ECDSA suites
OTHER_CIPHER = "ECDHE-ECDSA-AES256-GCM-SHA384"


def listeners(secure_port: int = 443, legacy_port: int = 8443) -> list[dict]:
    return [
        {"name": "secure", "port": secure_port, "protocol": "https", "hosts": [SECURE],
         "tls": {"mode": "terminate", "certificate": "edge-cert", "clientValidation": {"ca": "clients"},
                 "minVersion": "1.3"}},
        {"name": "legacy", "port": legacy_port, "protocol": "https", "hosts": [LEGACY],
         "tls": {"mode": "terminate", "certificate": "edge-cert", "cipherSuites": [ONLY_CIPHER]}},
    ]


@dataclass(frozen=True)
class Client:
    """What a TLS client offers: its highest version, its TLS 1.2 suites (None: the defaults)
    and the CA its certificate comes from (None: no certificate)."""

    version: str = "1.3"
    ciphers: tuple[str, ...] | None = None
    ca: str | None = None


CASES = [  # (listener host, client) -> status, or None for a refused connection
    (SECURE, Client(ca="clients"), 200),
    (SECURE, Client(), None),
    (SECURE, Client(ca="strangers"), None),
    (SECURE, Client(version="1.2", ca="clients"), None),
    (LEGACY, Client(version="1.2", ciphers=(ONLY_CIPHER,)), 200),
    (LEGACY, Client(version="1.2", ciphers=(OTHER_CIPHER,)), None),
    (LEGACY, Client(version="1.3", ciphers=(OTHER_CIPHER,)), 200),
    (LEGACY, Client(version="1.2", ca="strangers"), 200),
]


def request_of(host: str, port: int, client: Client) -> Request:
    return Request(host, "/", port=port, sni=host, tls_version=client.version, client_ca=client.ca,
                   tls_ciphers=client.ciphers)


# ---------------------------------------------------------------------------------------------
# Semantics


@pytest.mark.parametrize(("host", "client", "status"), CASES)
def test_the_evaluator_refuses_the_handshakes_the_listener_does_not_accept(tmp_path: Path, host, client,
                                                                            status) -> None:
    graph = linked(tmp_path, [mesh(), service("web"), gateway("edge", listeners()),
                              route("edge", [{"to": [{"service": "web"}]}], gateway="edge", hosts=[SECURE, LEGACY])])
    port = 443 if host == SECURE else 8443
    decision = evaluate(graph, Proxy(gateway=key("edge")), request_of(host, port, client))
    assert (200 if decision.action == "forward" else decision.status) == status, decision.reason


@pytest.mark.parametrize(("tls", "words"), [
    ({"mode": "passthrough", "clientValidation": {"ca": "clients"}}, "takes no clientValidation"),
    ({"mode": "terminate", "certificate": "c", "minVersion": "1.3", "cipherSuites": [ONLY_CIPHER]},
     "minVersion 1.3 allows none of them"),
    ({"mode": "terminate", "certificate": "c", "minVersion": 1.2}, "minVersion"),
    ({"mode": "terminate", "certificate": "c", "cipherSuites": ["RC4-MD5"]}, "cipherSuites"),
])
def test_tls_settings_that_mean_nothing_are_located_errors(tmp_path: Path, tls, words) -> None:
    listener = {"name": "l", "port": 443, "protocol": "tls", "hosts": ["a.example.test"], "tls": tls}
    compiled = compile_mesh(write(tmp_path, [mesh(), service("web"), gateway("edge", [listener])]))
    errors = [d for d in compiled.report.sorted() if d.severity == "error"]
    assert errors and all(d.code.code.startswith("MESH1") for d in errors)
    assert any(words in d.message or words in str(d.location) or words in (d.hint or "") for d in errors), \
        [(d.message, d.location) for d in errors]
    assert errors[0].location.line > 1


# ---------------------------------------------------------------------------------------------
# Real Envoy, real TLS clients


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    """Gateway `edge` (certificates from files) in front of a plain backend `web`; the server
    certificate comes from the test CA, client certificates from `clients` or `strangers`."""
    binary = require_envoy()
    workdir = tmp_path_factory.mktemp("gateway-tls")
    cert_root = workdir / "certs"
    server_ca, client_cas = TestPki("server CA"), {"clients": TestPki("clients CA"), "strangers": TestPki("others")}
    address = harness.LoopbackAddresses().next()
    secure_port, legacy_port = harness.free_ports(2, address)
    admin_port = harness.free_port()
    backend = harness.Backend.start("web")
    envoy = None
    try:
        platform = {"name": "vms", "kind": "vm", "certificates": {"mode": "files", "dir": str(cert_root)},
                    "sidecar": {"adminPort": admin_port}}
        graph = linked(workdir / "mesh", [
            mesh(platform), service("web", mtls="DISABLE", endpoints=[{"address": "127.0.0.1"}],
                                    ports=[{"name": "http", "port": backend.port, "protocol": "http"}]),
            gateway("edge", listeners(secure_port, legacy_port)),
            route("edge", [{"to": [{"service": "web"}]}], gateway="edge", hosts=[SECURE, LEGACY])])
        report = Report()
        bootstrap = gateway_bootstrap(graph, graph.gateways[key("edge")], report, address)
        assert report.diagnostics == []
        install_gateway_certificate(cert_root, "edge", "edge-cert", server_ca.server_cert(SECURE, LEGACY))
        (cert_root / NS / "edge" / "clients.pem").write_bytes(client_cas["clients"].ca_pem)
        envoy = harness.start_envoy(binary, "edge", bootstrap, workdir / "envoy", admin_port)
        envoy.wait_ready(harness.configured_listeners(bootstrap))
        yield graph, bootstrap, address, {SECURE: secure_port, LEGACY: legacy_port}, server_ca, client_cas, workdir
    finally:
        if envoy is not None:
            harness.stop_envoy(envoy)
        backend.stop()


def handshake_and_get(address: str, port: int, host: str, client: Client, server_ca: TestPki,
                      certificates: dict[str, Issued], directory: Path) -> int | None:
    """The status of a GET over TLS as `client`, or None when the connection is refused (in the
    handshake, or, under TLS 1.3, on the first read after it: the server checks the client's
    certificate after the client has finished)."""
    context = ssl.create_default_context(cadata=server_ca.ca_pem.decode())
    context.maximum_version = ssl.TLSVersion.TLSv1_3 if client.version == "1.3" else ssl.TLSVersion.TLSv1_2
    if client.ciphers is not None:
        context.set_ciphers(":".join(client.ciphers))
    if client.ca is not None:
        issued = certificates[client.ca]
        cert, private = directory / f"{client.ca}-client.pem", directory / f"{client.ca}-client-key.pem"
        cert.write_bytes(issued.cert_pem)
        harness.write_private(private, issued.key_pem)
        context.load_cert_chain(cert, private)
    try:
        with (socket.create_connection((address, port), timeout=5) as raw,
              context.wrap_socket(raw, server_hostname=host) as tls):
            connection = http.client.HTTPConnection(host, port, timeout=5)
            connection.sock = tls
            return harness.http_get(address, port, "/", host=host, connection=connection).status
    except (ssl.SSLError, ConnectionError, http.client.HTTPException, TimeoutError):
        return None


def test_envoy_accepts_the_bootstrap_and_carries_the_settings(edge, tmp_path: Path) -> None:
    _, bootstrap, *_ = edge
    assert_envoy_accepts({"edge.json": to_json(bootstrap)}, tmp_path)
    [listener] = [entry for entry in bootstrap["static_resources"]["listeners"]
                  if any(SECURE in c.get("filter_chain_match", {}).get("server_names", [])
                         for c in entry["filter_chains"])]
    [chain] = [c for c in listener["filter_chains"] if SECURE in c["filter_chain_match"]["server_names"]]
    context = chain["transport_socket"]["typed_config"]
    assert context["require_client_certificate"] is True
    assert context["common_tls_context"]["validation_context"]["trusted_ca"]["filename"].endswith("/edge/clients.pem")
    assert context["common_tls_context"]["tls_params"] == {"tls_minimum_protocol_version": "TLSv1_3"}


@pytest.mark.parametrize(("host", "client", "status"), CASES)
def test_envoy_refuses_and_completes_handshakes_as_the_evaluator_does(edge, host, client, status) -> None:
    graph, _, address, ports, server_ca, client_cas, workdir = edge
    certificates = {name: pki.server_cert(f"alice.{name}.test") for name, pki in client_cas.items()}
    seen = handshake_and_get(address, ports[host], host, client, server_ca, certificates, workdir)
    decision = evaluate(graph, Proxy(gateway=key("edge")), request_of(host, ports[host], client))
    expected = 200 if decision.action == "forward" else None
    assert (seen, expected) == (status, status)


# ---------------------------------------------------------------------------------------------
# Kubernetes


def gateway_objects(tmp_path: Path, flavor: str, listener_list: list[dict], hosts: tuple[str, ...] = (SECURE, LEGACY)):
    web = service("web", platform="k8s", ports=[{"name": "tcp", "port": 9000, "protocol": "tcp"}]) \
        if any(listener["protocol"] == "tls" for listener in listener_list) else service("web", platform="k8s")
    graph = linked(tmp_path, [mesh(k8s(flavor)), web, gateway("edge", listener_list, platform="k8s"),
                              route("edge", [{"to": [{"service": "web"}]}], gateway="edge", hosts=list(hosts))])
    report = Report()
    docs = [doc for artifact in emit(graph, report, ["kubernetes"]) if artifact.path.endswith(".yaml")
            for doc in yaml.safe_load_all(artifact.content) if doc and "spec" in doc]
    return graph, docs, report


def test_istio_servers_are_mutual_with_the_version_and_ciphers(tmp_path: Path) -> None:
    """Istio Server tls: MUTUAL with caCertCredentialName (the client CA), minProtocolVersion
    TLSV1_3 and cipherSuites as written; schema-valid against the Istio 1.30 CRD."""
    _, docs, report = gateway_objects(tmp_path, "istio", listeners())
    [istio_gateway] = of_kind(docs, "Gateway")
    assert validation_errors(istio_gateway) == []
    servers = {s["port"]["name"]: s["tls"] for s in istio_gateway["spec"]["servers"]}
    assert servers["secure"] == {"mode": "MUTUAL", "credentialName": "edge-cert", "caCertCredentialName": "clients",
                                 "minProtocolVersion": "TLSV1_3"}
    assert servers["legacy"] == {"mode": "SIMPLE", "credentialName": "edge-cert", "cipherSuites": [ONLY_CIPHER]}
    assert [d for d in report.diagnostics if d.severity != "info"] == []


def test_gateway_api_validates_clients_per_port_and_reports_what_it_cannot_carry(tmp_path: Path) -> None:
    """Gateway API: frontend validation per port, a ConfigMap reference (Core); the listener's
    minVersion and cipherSuites have no field (MESH468), located at the listener's field."""
    _, docs, report = gateway_objects(tmp_path, "gateway-api", listeners())
    [api_gateway] = [d for d in of_kind(docs, "Gateway") if d["apiVersion"].startswith("gateway.networking.k8s.io")]
    assert validation_errors(api_gateway) == []
    assert api_gateway["spec"]["tls"] == {"frontend": {"default": {}, "perPort": [{"port": 443, "tls": {"validation": {
        "caCertificateRefs": [{"group": "", "kind": "ConfigMap", "name": "clients"}]}}}]}}
    found = sorted((d.code.code, d.location.line) for d in report.diagnostics)
    assert [code for code, _ in found] == ["MESH468", "MESH468"]
    assert all(line > 1 for _, line in found)


def test_gateway_api_reports_listeners_of_one_port_that_validate_differently(tmp_path: Path) -> None:
    both = [{**listener, "port": 443} for listener in listeners()]
    both[1]["tls"] = {"mode": "terminate", "certificate": "edge-cert"}
    _, docs, report = gateway_objects(tmp_path / "port", "gateway-api", both)
    [api_gateway] = [d for d in of_kind(docs, "Gateway") if d["apiVersion"].startswith("gateway.networking.k8s.io")]
    # the stricter setting: every https listener of the port requires the client CA
    assert api_gateway["spec"]["tls"]["frontend"]["perPort"][0]["port"] == 443
    assert "MESH467" in {d.code.code for d in report.diagnostics}
    tls_listener = [{"name": "t", "port": 9443, "protocol": "tls", "hosts": [SECURE],
                     "tls": {"mode": "terminate", "certificate": "edge-cert", "clientValidation": {"ca": "clients"}}}]
    _, docs, report = gateway_objects(tmp_path / "tls", "gateway-api", tls_listener, hosts=[SECURE])
    [error] = [d for d in report.diagnostics if d.code.code == "MESH467"]
    assert error.severity == "error" and "HTTPS listeners only" in error.message
