"""The envoy target: a complete static Envoy v3 bootstrap per service sidecar and per Gateway.

The bootstraps come from the Envoy library (targets.envoylib), which the Cloud Foundry and VM
targets share, so they ship the very same configuration. docs/targets/envoy.md describes the
layout, the names and the certificate paths. `meshc test --envoy` runs RouteTest cases through
these bootstraps in real Envoy processes (run_through_envoy).
"""

from __future__ import annotations

from collections.abc import Container

from compiler.artifact import Artifact, gateway_workload, service_workload
from compiler.diagnostics import Report
from compiler.graph import MeshGraph
from targets.envoylib import (
    OncePerIntent,
    gateway_bootstrap,
    gateway_sources,
    serialise,
    serialised_sidecar,
    sidecar_sources,
)

TARGET = "envoy"
__all__ = ["emit"]  # and, on demand, EnvoyUnavailable and run_through_envoy (below)


def __getattr__(name: str):
    """EnvoyUnavailable and run_through_envoy, imported when `meshc test --envoy` asks for them."""
    if name in ("EnvoyUnavailable", "run_through_envoy"):
        import targets.envoylib

        return getattr(targets.envoylib, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def emit(graph: MeshGraph, report: Report, workloads: Container[str] | None = None) -> list[Artifact]:
    """One bootstrap per service and per gateway (only the given workloads when set)."""
    once = OncePerIntent(report)
    artifacts = []
    for key, service in graph.services.items():
        workload = service_workload(key)
        if workloads is not None and workload not in workloads:
            continue
        # a service on several platforms has a sidecar per placement, each in its own locality
        placed = [(f".{p.platform.name}", service.on(p.platform.name)) for p in service.placements] \
            if service.placed else [("", service)]
        for suffix, sidecar in placed:
            artifacts.append(Artifact(
                path=f"envoy/{key.namespace}/{key.name}{suffix}.yaml",
                content=serialised_sidecar(graph, sidecar, once),
                target=TARGET,
                workload=workload,
                sources=sidecar_sources(graph, service),
            ))
    for key, gateway in graph.gateways.items():
        workload = gateway_workload(key)
        if workloads is not None and workload not in workloads:
            continue
        artifacts.append(Artifact(
            path=f"envoy/gateways/{key.namespace}/{key.name}.yaml",
            content=serialise(gateway_bootstrap(graph, gateway, once)),
            target=TARGET,
            workload=workload,
            sources=gateway_sources(graph, gateway),
        ))
    return artifacts
