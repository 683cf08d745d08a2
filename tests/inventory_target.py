"""A target that exists only in tests/test_incremental_targets.py, which registers it.

It reads the graph along edges no shipped target uses (a service's file lists the listener
hosts and ports of the gateways that route to it; a platform's file lists its services), so an
incremental build can be correct for it only if what is rebuilt is derived from what
artifacts record and from the graph, not from a table of what the shipped targets read.
"""

from __future__ import annotations

from compiler.artifact import Artifact, gateway_workload, platform_workload, service_workload
from compiler.diagnostics import Report
from compiler.graph import MeshGraph, ServiceNode
from compiler.serialize import to_json

TARGET = "inventory"


def _service(graph: MeshGraph, service: ServiceNode) -> tuple[dict, set[str]]:
    files = {graph.mesh_origin.file, service.origin.file}
    calls = []
    for callee in service.calls:
        if callee in graph.externals:
            external = graph.externals[callee]
            files.add(external.origin.file)
            calls.append({"external": str(callee), "hosts": list(external.spec.hosts)})
        else:
            callee_routes = graph.routes_for(callee)
            files.add(graph.services[callee].origin.file)
            files.update(route.origin.file for route in callee_routes)
            calls.append({"service": str(callee), "ports": [port.port for port in graph.services[callee].spec.ports],
                          "routed": bool(callee_routes)})
    served_by = set()
    for gateway_key, routes in graph.gateway_routes.items():
        for route in routes:
            if any(target.service == service.key for rule in route.rules for target in rule.destinations):
                gateway = graph.gateways[gateway_key]
                files.update((route.origin.file, gateway.origin.file))
                served_by.update(f"{host}:{listener.port}" for listener in gateway.listeners for host in listener.hosts)
    own_routes = graph.routes_for(service.key)
    files.update(route.origin.file for route in own_routes)
    document = {"service": str(service.key), "platform": service.platform.name, "mtls": service.mtls,
                "timeout": service.resilience.timeout, "calls": calls, "servedBy": sorted(served_by),
                "routeRules": sum(len(route.rules) for route in own_routes)}
    return document, files


def emit(graph: MeshGraph, report: Report, workloads: frozenset[str] | None = None) -> list[Artifact]:
    artifacts = []
    for key, service in graph.services.items():
        workload = service_workload(key)
        if workloads is None or workload in workloads:
            document, files = _service(graph, service)
            artifacts.append(Artifact(f"{TARGET}/services/{key.namespace}/{key.name}.json", to_json(document),
                                      TARGET, workload, tuple(sorted(files))))
    for key, gateway in graph.gateways.items():
        workload = gateway_workload(key)
        if workloads is None or workload in workloads:
            routes = graph.gateway_routes.get(key, ())
            document = {"gateway": str(key), "routes": {str(r.key): list(r.spec.hosts) for r in routes}}
            files = {graph.mesh_origin.file, gateway.origin.file, *(r.origin.file for r in routes)}
            artifacts.append(Artifact(f"{TARGET}/gateways/{key.namespace}/{key.name}.json", to_json(document),
                                      TARGET, workload, tuple(sorted(files))))
    for name in graph.platforms:
        workload = platform_workload(name)
        if workloads is None or workload in workloads:
            services = [s for s in graph.services.values() if s.platform.name == name]
            document = {"platform": name, "services": sorted(str(s.key) for s in services)}
            files = {graph.mesh_origin.file, *(s.origin.file for s in services)}
            artifacts.append(Artifact(f"{TARGET}/platforms/{name}.json", to_json(document), TARGET, workload,
                                      tuple(sorted(files))))
    return artifacts
