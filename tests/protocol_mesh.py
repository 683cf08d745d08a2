"""A mesh for protocol tests through real Envoy: applications that are not plain request/answer
HTTP (a WebSocket echo server, a gRPC server) behind their own meshc sidecars, called from
another service's sidecar and through a meshc gateway.

Every workload runs on a static vm platform at its own 127.x address with mutual TLS (STRICT,
SPIFFE identities from tests/pki.py, certificates in files), as tests/e2e/meshes.py builds its
meshes: what is under test is exactly the bootstraps meshc emits, caller sidecar -> callee
sidecar -> application, and gateway -> callee sidecar -> application.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler.graph import MeshGraph
from tests.conftest import require_envoy
from tests.e2e import harness
from tests.e2e.conftest import Envoys
from tests.e2e.meshes import (
    API,
    PLATFORM,
    SidecarWorkload,
    access_policy,
    compile_graph,
    gateway_bootstrap,
    install_svid,
    mesh_document,
    service,
    sidecar_bootstrap,
)
from tests.pki import TestPki

CALLER = "frontend"
GATEWAY = "edge"


@dataclass
class Application:
    """A callee: its intent name, its port's protocol, where its application listens, and the
    gateway host that routes to it."""

    name: str
    protocol: str
    app_port: int
    gateway_host: str
    route_rules: list[dict] | None = None  # its mesh Route's rules, if it has one


@dataclass
class ProtocolMesh:
    graph: MeshGraph
    caller: SidecarWorkload
    callees: dict[str, SidecarWorkload]
    gateway_address: str
    gateway_port: int
    gateway_admin: int
    bootstraps: dict[str, dict[str, Any]] = field(default_factory=dict)


def build(workdir: Path, pki: TestPki, addresses: harness.LoopbackAddresses,
          applications: list[Application]) -> ProtocolMesh:
    """`frontend` calls every application; gateway `edge` serves each one's `gateway_host` on
    one http listener; each application admits `frontend` and the gateway only."""
    cert_root = workdir / "certs"
    gateway_address = addresses.next()
    gateway_port = harness.free_port(gateway_address)
    ports = iter(harness.free_ports(3 + 2 * len(applications)))
    gateway_admin = next(ports)

    def workload(name: str) -> SidecarWorkload:
        address = addresses.next()
        return SidecarWorkload(name, address, harness.free_port(address), next(ports), next(ports))

    caller = workload(CALLER)
    callees = {app.name: workload(app.name) for app in applications}
    documents: list[dict] = [
        mesh_document(cert_root, suppress=[], sidecar={"adminPort": gateway_admin}),
        service(CALLER, caller, ports=[{"name": "http", "port": caller.port, "protocol": "http"}],
                endpoints=[{"address": caller.address}], calls=[app.name for app in applications]),
        {"apiVersion": API, "kind": "Gateway", "name": GATEWAY, "platform": PLATFORM,
         "listeners": [{"name": "web", "port": gateway_port, "protocol": "http",
                        "hosts": [app.gateway_host for app in applications]}]},
    ]
    for app in applications:
        sidecar = callees[app.name]
        documents += [
            service(app.name, sidecar, endpoints=[{"address": sidecar.address}],
                    ports=[{"name": app.protocol, "port": sidecar.port, "protocol": app.protocol,
                            "targetPort": app.app_port}]),
            {"apiVersion": API, "kind": "Route", "name": f"{app.name}-edge", "gateway": GATEWAY,
             "hosts": [app.gateway_host], "rules": [{"to": [{"service": app.name}]}]},
            access_policy(app.name, CALLER, {"gateway": GATEWAY}),
        ]
        if app.route_rules is not None:
            documents.append({"apiVersion": API, "kind": "Route", "name": app.name, "service": app.name,
                              "rules": app.route_rules})
    graph = compile_graph(harness.write_intents(workdir / "mesh", documents))
    built = ProtocolMesh(graph, caller, callees, gateway_address, gateway_port, gateway_admin)
    for sidecar in (caller, *callees.values()):
        install_svid(pki, cert_root, sidecar.name)
        sidecar.bootstrap = sidecar_bootstrap(graph, sidecar.name, sidecar.address)
        built.bootstraps[sidecar.name] = sidecar.bootstrap
    install_svid(pki, cert_root, GATEWAY)
    built.bootstraps[GATEWAY] = gateway_bootstrap(graph, GATEWAY, gateway_address)
    return built


def start_all(mesh: ProtocolMesh, envoys) -> dict[str, harness.EnvoyProcess]:
    """Every sidecar and the gateway, each ready with all its listeners bound."""
    started = {name: envoys.start(name, workload.bootstrap, workload.admin_port)
               for name, workload in {CALLER: mesh.caller, **mesh.callees}.items()}
    started[GATEWAY] = envoys.start(GATEWAY, mesh.bootstraps[GATEWAY], mesh.gateway_admin)
    return started


@contextlib.contextmanager
def running(workdir: Path, applications: list[Application]) -> Iterator[tuple[ProtocolMesh, Envoys]]:
    """The mesh built in `workdir` with every Envoy started; stopped on the way out."""
    built = build(workdir, TestPki(), harness.LoopbackAddresses(), applications)
    envoys = Envoys(require_envoy(), workdir)
    try:
        start_all(built, envoys)
        yield built, envoys
    finally:
        envoys.stop_all()
