"""Complete Envoy bootstraps: a service's sidecar and an ingress gateway, as plain data.

The envoy target writes them as they are; the Cloud Foundry and VM targets ship the very same
configuration beside their apps and machines.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable

from compiler.diagnostics import Location
from compiler.graph import GatewayNode, Key, MeshGraph, RouteNode, ServiceNode, Target
from compiler.serialize import to_json
from targets.envoylib.blocks import ANY_ADDRESS
from targets.envoylib.gateway import gateway_listeners
from targets.envoylib.outbound import outbound_listeners
from targets.envoylib.proxy import Proxy
from targets.envoylib.tls import Certificates


def serialise(bootstrap: dict) -> bytes:
    """JSON, which is YAML too: Envoy reads the .yaml file alike, and it is 17x faster to write."""
    return to_json(bootstrap)


def _inbound_address(service: ServiceNode, address: str | None) -> str:
    if address is not None:
        return address
    endpoints = service.spec.endpoints
    return endpoints[0].address if len(endpoints) == 1 else ANY_ADDRESS


def sidecar_bootstrap(graph: MeshGraph, service: ServiceNode, report, address: str | None = None) -> dict:
    """The complete sidecar bootstrap of `service`, listening inbound on `address`."""
    address = _inbound_address(service, address)
    builder = Proxy(graph, report, service.key, service.platform.name,
                    Certificates(service.platform.certificates, service.key))
    listeners = [builder.inbound_listener(service, port, address) for port in service.spec.ports]
    listeners += outbound_listeners(builder, service, address)
    return builder.bootstrap(listeners, service.sidecar.admin_port)


# Serialised sidecar bootstraps by graph, then by (service, platform, address): the envoy,
# cloudfoundry and vm targets ship the same sidecar of a service, so it is built once per build.
_SERIALISED: dict[int, dict[tuple[Key, str, str], bytes]] = {}


def serialised_sidecar(graph: MeshGraph, service: ServiceNode, report, address: str | None = None) -> bytes:
    """serialise(sidecar_bootstrap(...)), built once per graph, service, platform and address.

    Its diagnostics go to the report of the target that built it first; a build shares one
    report between its targets, and the report keeps each distinct diagnostic once."""
    shared = _SERIALISED.get(id(graph))
    if shared is None:
        shared = _SERIALISED[id(graph)] = {}
        weakref.finalize(graph, _SERIALISED.pop, id(graph), None)
    key = (service.key, service.platform.name, _inbound_address(service, address))
    content = shared.get(key)
    if content is None:
        content = shared[key] = serialise(sidecar_bootstrap(graph, service, report, key[2]))
    return content


def release_sidecars(graph: MeshGraph) -> None:
    """Forget the serialised sidecars of `graph`. A build that emits workload shard by shard
    calls it after each shard: every target that ships a sidecar emits it with its workload."""
    _SERIALISED.pop(id(graph), None)


def gateway_bootstrap(graph: MeshGraph, gateway: GatewayNode, report, address: str | None = None) -> dict:
    """The complete bootstrap of an ingress gateway, listening on `address` (default any)."""
    builder = Proxy(graph, report, gateway.key, gateway.platform.name,
                    Certificates(gateway.platform.certificates, gateway.key))
    listeners = gateway_listeners(builder, gateway, address or ANY_ADDRESS)
    return builder.bootstrap(listeners, gateway.sidecar.admin_port)


def sidecar_sources(graph: MeshGraph, service: ServiceNode) -> tuple[str, ...]:
    """Intent files a sidecar is compiled from: the mesh, the service, its policies, its callees."""
    files = {graph.mesh_origin.file, service.origin.file}
    files.update(route.origin.file for route in graph.routes_for(service.key))
    files.update(policy.origin.file for policy in graph.policies_for(service.key))
    for callee in service.calls:
        files.update(_destination_files(graph, callee))
    return tuple(sorted(files))


def gateway_sources(graph: MeshGraph, gateway: GatewayNode) -> tuple[str, ...]:
    """Intent files a gateway is compiled from: the mesh, the gateway, its Routes, their services."""
    files = {graph.mesh_origin.file, gateway.origin.file}
    for route in graph.gateway_routes.get(gateway.key, ()):
        files.add(route.origin.file)
        for target in _route_targets(route):
            files.add(graph.services[target.service].origin.file)
    return tuple(sorted(files))


def _destination_files(graph: MeshGraph, callee: Key) -> set[str]:
    node = graph.externals.get(callee) or graph.services[callee]
    files = {node.origin.file}
    for route in graph.routes_for(callee):
        files.add(route.origin.file)
        files.update((graph.externals.get(t.service) or graph.services[t.service]).origin.file
                     for t in _route_targets(route))
    return files


def _route_targets(route: RouteNode) -> Iterable[Target]:
    for rule in route.rules:
        yield from rule.destinations
        yield from rule.mirrors


class OncePerIntent:
    """Forwards each distinct diagnostic once: many proxies share one callee's Route."""

    def __init__(self, report) -> None:
        self.report = report
        self.seen: set[tuple[str, str, Location | None]] = set()

    def add(self, code, message, location, **extra):
        key = (code.code, message, location)
        if key not in self.seen:
            self.seen.add(key)
            self.report.add(code, message, location, **extra)
