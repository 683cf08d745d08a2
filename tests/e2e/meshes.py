"""The meshes the e2e tests run: intents written as a real mesh repo, compiled by meshc, and
turned into Envoy bootstraps by targets.envoylib's builders.

Every workload runs on one vm platform (flavor static, certificates from files). The files-mode
layout (docs/targets/envoy.md) gives each workload its own directory under the platform's
`dir`, so several workloads on this one machine present different SPIFFE identities.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler.build import compile_mesh
from compiler.diagnostics import Report
from compiler.graph import Key, MeshGraph
from tests.e2e import harness
from tests.pki import Issued, TestPki

API = "meshc/v1"
TRUST_DOMAIN = "e2e.test"
NAMESPACE = "shop"
RATE_LIMIT = 3


@dataclass
class SidecarWorkload:
    name: str
    address: str
    port: int  # the service port: the sidecar's inbound listener at `address`
    outbound_port: int
    admin_port: int
    bootstrap: dict[str, Any] | None = None  # the sidecar's, once the mesh is compiled
    rate_limit: int | None = None


@dataclass
class BuiltMesh:
    root: Path
    graph: MeshGraph
    workloads: dict[str, SidecarWorkload] = field(default_factory=dict)
    backends: dict[str, harness.Backend] = field(default_factory=dict)


PLATFORM = "vms"


def mesh_document(cert_root: Path, suppress: list[dict], **platform: Any) -> dict:
    return {
        "apiVersion": API, "kind": "Mesh", "name": "e2e", "trustDomain": TRUST_DOMAIN,
        "defaultNamespace": NAMESPACE, "mtls": "STRICT", "authorization": "deny",
        "platforms": [{"name": PLATFORM, "kind": "vm", "flavor": "static",
                       "certificates": {"mode": "files", "dir": str(cert_root)}, **platform}],
        "suppress": suppress,
    }


def service(name: str, workload: SidecarWorkload, **fields: Any) -> dict:
    return {
        "apiVersion": API, "kind": "Service", "name": name, "platform": PLATFORM,
        "sidecar": {"outboundPort": workload.outbound_port, "adminPort": workload.admin_port},
        **fields,
    }


def access_policy(service_name: str, *callers: Any) -> dict:
    return {"apiVersion": API, "kind": "AccessPolicy", "name": f"{service_name}-callers",
            "service": service_name, "allow": [{"from": list(callers)}]}


def placed_mesh(name: str, localities: dict[str, dict], caller: str, web_address: str, outbound: int, admin: int,
                catalog: dict) -> list[dict]:
    """A mesh of vm platforms at `localities` where `web`, on platform `caller`, calls
    `catalog` (its ports and placements given). mtls DISABLE: the backends are bare, and what
    is under test happens in web's sidecar."""
    return [
        {"apiVersion": API, "kind": "Mesh", "name": name, "defaultNamespace": NAMESPACE,
         "mtls": "DISABLE", "authorization": "allow",
         "platforms": [{"name": place, "kind": "vm", "locality": locality} for place, locality in localities.items()]},
        {"apiVersion": API, "kind": "Service", "name": "web", "platform": caller,
         "ports": [{"name": "http", "port": harness.free_port(web_address), "protocol": "http"}],
         "endpoints": [{"address": web_address}], "calls": ["catalog"],
         "sidecar": {"outboundPort": outbound, "adminPort": admin}, "public": True},
        {"apiVersion": API, "kind": "Service", "name": "catalog", **catalog},
    ]


def start_placed_backends(backends, addresses: harness.LoopbackAddresses,
                          places) -> tuple[dict[str, str], int, dict[str, harness.Backend]]:
    """One bare `catalog-<place>` backend per placement, each at its own loopback address, all
    on one port: (addresses, port, backends) by place."""
    where = {place: addresses.next() for place in places}
    port = harness.free_port(next(iter(where.values())))
    return where, port, {place: backends.start(f"catalog-{place}", address=where[place], port=port)
                         for place in places}


def ejecting(consecutive_5xx: int, ejection: str) -> dict:
    """Resilience under which a failing endpoint's 503s reach the caller (retries off: the
    built-in default would retry on another endpoint) and eject it for `ejection`."""
    return {"retries": {"attempts": 0},
            "outlierDetection": {"consecutive5xx": consecutive_5xx, "interval": "100ms",
                                 "baseEjectionTime": ejection, "maxEjectionPercent": 100}}


def compile_graph(root: Path) -> MeshGraph:
    """The whole front end, analysis included: the meshes are clean but for what they suppress."""
    compiled = compile_mesh(root)
    problems = [f"{d.code} {d.location}: {d.message}" for d in compiled.report.sorted() if d.severity != "info"]
    assert compiled.graph is not None and not problems, problems
    return compiled.graph


def sidecar_bootstrap(graph: MeshGraph, name: str, address: str) -> dict:
    """The builder's bootstrap; every intent of these meshes is expressible, so no diagnostic."""
    from targets.envoylib import sidecar_bootstrap as build

    report = Report()
    bootstrap = build(graph, graph.services[Key(NAMESPACE, name)], report, address)
    assert not report.diagnostics, [f"{d.code} {d.location}: {d.message}" for d in report.diagnostics]
    return bootstrap


def gateway_bootstrap(graph: MeshGraph, name: str, address: str) -> dict:
    from targets.envoylib import gateway_bootstrap as build

    report = Report()
    bootstrap = build(graph, graph.gateways[Key(NAMESPACE, name)], report, address)
    assert not report.diagnostics, [f"{d.code} {d.location}: {d.message}" for d in report.diagnostics]
    return bootstrap


def workload_cert_dir(cert_root: Path, name: str) -> Path:
    """Files mode (docs/targets/envoy.md): <dir>/<namespace>/<workload>/."""
    return cert_root / NAMESPACE / name


def install_svid(pki: TestPki, cert_root: Path, name: str) -> None:
    """The workload's SVID, its key and the trust bundle: svid.pem, svid_key.pem, svid_bundle.pem."""
    directory = workload_cert_dir(cert_root, name)
    directory.mkdir(parents=True, exist_ok=True)
    issued = pki.svid(f"spiffe://{TRUST_DOMAIN}/ns/{NAMESPACE}/sa/{name}")
    (directory / "svid.pem").write_bytes(issued.cert_pem)
    harness.write_private(directory / "svid_key.pem", issued.key_pem)
    (directory / "svid_bundle.pem").write_bytes(pki.ca_pem)


def install_gateway_certificate(cert_root: Path, gateway: str, certificate: str, issued: Issued) -> None:
    """A named gateway certificate: <certificate>.pem and <certificate>_key.pem in the gateway's directory."""
    directory = workload_cert_dir(cert_root, gateway)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{certificate}.pem").write_bytes(issued.cert_pem)
    harness.write_private(directory / f"{certificate}_key.pem", issued.key_pem)


# ---------------------------------------------------------------------------------------------
# The sidecar mesh


def build_sidecars(workdir: Path, pki: TestPki, addresses: harness.LoopbackAddresses,
                   backends) -> BuiltMesh:
    """frontend and intruder call cart (STRICT; admitted: frontend only); frontend calls reviews
    (two versions, routed), limited (rate limited) and ledger (PERMISSIVE)."""
    cert_root = workdir / "sidecar-mesh-certs"
    sidecar_ports = iter(harness.free_ports(10))

    def workload(name: str) -> SidecarWorkload:
        address = addresses.next()
        return SidecarWorkload(name, address, harness.free_port(address), next(sidecar_ports), next(sidecar_ports))

    frontend, intruder, cart, limited, ledger = (
        workload(n) for n in ("frontend", "intruder", "cart", "limited", "ledger"))
    limited.rate_limit = RATE_LIMIT
    reviews_v1 = addresses.next()
    reviews_v2 = addresses.next()
    reviews_port = harness.free_port(reviews_v1)
    # The applications behind sidecars listen on 127.0.0.1; the port they got is their targetPort.
    started = {
        "reviews-v1": backends.start("reviews-v1", address=reviews_v1, port=reviews_port),
        "reviews-v2": backends.start("reviews-v2", address=reviews_v2, port=reviews_port),
        "cart": backends.start("cart"),
        "limited": backends.start("limited"),
        "ledger": backends.start("ledger"),
    }

    def http_port(workload: SidecarWorkload, application: harness.Backend | None = None) -> list[dict]:
        port = {"name": "http", "port": workload.port, "protocol": "http"}
        if application is not None:
            port["targetPort"] = application.port
        return [port]

    documents = [
        mesh_document(cert_root, suppress=[
            # Deliberate: intruder's call must reach cart's sidecar to be denied there at run time.
            {"code": "MESH310", "name": "Service/shop/intruder"},
            # Deliberate: two versions on one machine cannot both run sidecars (see the tests).
            {"code": "MESH321", "name": "Service/shop/reviews"},
        ]),
        service("frontend", frontend, ports=http_port(frontend), endpoints=[{"address": frontend.address}],
                calls=["reviews", "cart", "limited", "ledger"]),
        service("intruder", intruder, ports=http_port(intruder), endpoints=[{"address": intruder.address}],
                calls=["cart"]),
        service("cart", cart, ports=http_port(cart, started["cart"]), endpoints=[{"address": cart.address}]),
        service("limited", limited, ports=http_port(limited, started["limited"]),
                endpoints=[{"address": limited.address}], rateLimit={"requests": RATE_LIMIT, "per": "1h"}),
        service("ledger", ledger, ports=http_port(ledger, started["ledger"]), endpoints=[{"address": ledger.address}],
                mtls="PERMISSIVE"),
        {
            "apiVersion": API, "kind": "Service", "name": "reviews", "platform": PLATFORM,
            "ports": [{"name": "http", "port": reviews_port, "protocol": "http"}],
            "versions": {"v1": {"labels": {"version": "v1"}}, "v2": {"labels": {"version": "v2"}}},
            "endpoints": [{"address": reviews_v1, "version": "v1"}, {"address": reviews_v2, "version": "v2"}],
            "mtls": "DISABLE",
        },
        {
            "apiVersion": API, "kind": "Route", "name": "reviews-routing", "service": "reviews",
            "rules": [
                {"match": [{"headers": {"end-user": {"exact": "jason"}}}], "to": [{"version": "v2"}],
                 "retries": {"attempts": 0}},
                {"match": [{"path": {"prefix": "/split"}}],
                 "to": [{"version": "v1", "weight": 80}, {"version": "v2", "weight": 20}]},
                {"match": [{"path": {"prefix": "/fail-once/"}}], "to": [{"version": "v1"}],
                 "retries": {"attempts": 2, "retryOn": ["5xx"]}},
                {"match": [{"path": {"prefix": "/delay/"}}], "to": [{"version": "v1"}], "timeout": "250ms"},
                {"to": [{"version": "v1"}]},
            ],
        },
        access_policy("reviews", "frontend"),
        access_policy("cart", "frontend"),
        access_policy("limited", "frontend"),
        access_policy("ledger", "frontend"),
    ]
    root = harness.write_intents(workdir / "sidecar-mesh", documents)
    graph = compile_graph(root)
    built = BuiltMesh(root, graph, backends=started)
    for sidecar in (frontend, intruder, cart, limited, ledger):
        install_svid(pki, cert_root, sidecar.name)
        sidecar.bootstrap = sidecar_bootstrap(graph, sidecar.name, sidecar.address)
        built.workloads[sidecar.name] = sidecar
    return built


# ---------------------------------------------------------------------------------------------
# The gateway mesh


@dataclass
class GatewayMesh:
    graph: MeshGraph
    address: str
    port: int  # one port for both hosts: the filter chain is chosen by SNI
    admin_port: int
    bootstrap: dict[str, Any]
    served_certificate: Issued  # what the gateway presents for TERMINATED_HOST
    vault_certificate: Issued  # what the vault backend presents for PASSTHROUGH_HOST
    web: SidecarWorkload
    backends: dict[str, harness.Backend]


TERMINATED_HOST = "shop.e2e.test"
PASSTHROUGH_HOST = "vault.e2e.test"
GATEWAY_CERTIFICATE = "shop-cert"


def build_gateway(workdir: Path, pki: TestPki, addresses: harness.LoopbackAddresses,
                  backends) -> GatewayMesh:
    """Gateway `edge` listens on one port for two hosts: it terminates TLS for shop.e2e.test and
    routes it to `web` (behind its own sidecar, STRICT, admitting only the gateway), and passes
    vault.e2e.test through by SNI to `vault`, a backend that terminates TLS itself."""
    cert_root = workdir / "gateway-mesh-certs"
    gateway_address, web_address, vault_address = addresses.next(), addresses.next(), addresses.next()
    gateway_port = harness.free_port(gateway_address)
    gateway_admin, web_outbound, web_admin = harness.free_ports(3)
    web = SidecarWorkload("web", web_address, harness.free_port(web_address), web_outbound, web_admin)
    vault_port = harness.free_port(vault_address)
    vault_certificate = pki.server_cert(PASSTHROUGH_HOST)
    started = {
        "web": backends.start("web"),
        "vault": backends.start("vault", address=vault_address, port=vault_port,
                                tls=harness.tls_server_context(vault_certificate, workdir, "vault")),
    }
    documents = [
        # A Gateway has no sidecar block of its own: its admin port is its platform's setting.
        mesh_document(cert_root, suppress=[], sidecar={"adminPort": gateway_admin}),
        {
            "apiVersion": API, "kind": "Gateway", "name": "edge", "platform": PLATFORM,
            "listeners": [
                {"name": "shop", "port": gateway_port, "protocol": "https", "hosts": [TERMINATED_HOST],
                 "tls": {"mode": "terminate", "certificate": GATEWAY_CERTIFICATE}},
                {"name": "vault", "port": gateway_port, "protocol": "tls", "hosts": [PASSTHROUGH_HOST],
                 "tls": {"mode": "passthrough"}},
            ],
        },
        service("web", web, endpoints=[{"address": web_address}],
                ports=[{"name": "http", "port": web.port, "protocol": "http", "targetPort": started["web"].port}]),
        {
            "apiVersion": API, "kind": "Service", "name": "vault", "platform": PLATFORM,
            "ports": [{"name": "tls", "port": vault_port, "protocol": "tls"}],
            "endpoints": [{"address": vault_address}],
            "mtls": "DISABLE",
        },
        {"apiVersion": API, "kind": "Route", "name": "shop-web", "gateway": "edge", "hosts": [TERMINATED_HOST],
         "rules": [{"to": [{"service": "web"}]}]},
        {"apiVersion": API, "kind": "Route", "name": "vault-passthrough", "gateway": "edge",
         "hosts": [PASSTHROUGH_HOST],
         "rules": [{"match": [{"sni": [PASSTHROUGH_HOST]}], "to": [{"service": "vault", "port": vault_port}]}]},
        access_policy("web", {"gateway": "edge"}),
        access_policy("vault", {"gateway": "edge"}),
    ]
    root = harness.write_intents(workdir / "gateway-mesh", documents)
    graph = compile_graph(root)
    install_svid(pki, cert_root, "web")
    web.bootstrap = sidecar_bootstrap(graph, "web", web_address)
    install_svid(pki, cert_root, "edge")
    served_certificate = pki.server_cert(TERMINATED_HOST)
    install_gateway_certificate(cert_root, "edge", GATEWAY_CERTIFICATE, served_certificate)
    return GatewayMesh(graph, gateway_address, gateway_port, gateway_admin,
                       gateway_bootstrap(graph, "edge", gateway_address), served_certificate,
                       vault_certificate, web, started)
