"""End-user authentication where it can act: `jwt` providers verify HTTP requests only, so a
Service without an HTTP port or a Gateway without an http or https listener verifies nothing."""

from __future__ import annotations

from compiler import codes
from compiler.diagnostics import Report
from compiler.graph import MeshGraph
from compiler.model import HTTP_PROTOCOLS
from policies.check import Check


def check(graph: MeshGraph, report: Report) -> None:
    at = graph.sources.locate
    for service in graph.services.values():
        if service.spec.jwt and not any(p.protocol in HTTP_PROTOCOLS for p in service.spec.ports):
            report.add(codes.JWT_WITHOUT_HTTP,
                       f"service {service.key} has jwt providers but no HTTP port: no request is verified",
                       at(service.origin, "jwt"), hint="remove `jwt`, or give the service an http, http2 or grpc port")
    for gateway in graph.gateways.values():
        if gateway.spec.jwt and not any(listener.protocol in ("http", "https") for listener in gateway.listeners):
            report.add(codes.JWT_WITHOUT_HTTP,
                       f"gateway {gateway.key} has jwt providers but no http or https listener: no request is "
                       "verified", at(gateway.origin, "jwt"), hint="remove `jwt`, or add an http or https listener")


CHECK = Check(
    name="authentication",
    summary="jwt providers are on services and gateways that receive HTTP requests",
    reads=frozenset({"Mesh", "Service", "Gateway"}),  # services' ports and sources need the Mesh defaults
    codes=(codes.JWT_WITHOUT_HTTP,),
    run=check,
)
