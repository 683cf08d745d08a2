"""Kubernetes target: mesh configuration (not workloads) for Istio, in two flavours.

Per kubernetes platform P (docs/targets/kubernetes.md has the whole contract):
  kubernetes/P/<ns>/<service>.yaml            a service on P           workload service:<ns>/<service>
  kubernetes/P/<ns>/remote/<service>.yaml     a Cloud Foundry or vm    workload service:<ns>/<service>
                                              service that P calls
  kubernetes/P/<ns>/external/<name>.yaml      an ExternalService that  workload platform:P
                                              a service on P calls
  kubernetes/P/<ns>/gateways/<gateway>.yaml   a Gateway on P           workload gateway:<ns>/<gateway>
  kubernetes/P/kustomization.yaml             every file above         workload platform:P
Flavor istio routes with VirtualServices and Istio Gateways (targets.kubernetes_platform);
flavor gateway-api with Gateway API HTTPRoutes (GAMMA) and Gateways
(targets.kubernetes_gateway_api). Security, traffic policy and scoping are Istio's in both.
"""

from __future__ import annotations

from collections.abc import Container

from compiler.artifact import Artifact
from compiler.diagnostics import Report
from compiler.graph import MeshGraph
from compiler.model import KubernetesPlatform
from targets.kubernetes_gateway_api import GatewayApiEmitter
from targets.kubernetes_platform import PlatformEmitter


def emitter_for(graph: MeshGraph, report: Report, platform: KubernetesPlatform) -> PlatformEmitter:
    if platform.flavor == "gateway-api":
        return GatewayApiEmitter(graph, report, platform)
    return PlatformEmitter(graph, report, platform)


def emit(graph: MeshGraph, report: Report, workloads: Container[str] | None = None) -> list[Artifact]:
    artifacts: list[Artifact] = []
    for platform in graph.platforms.values():
        if platform.kind == "kubernetes":
            artifacts.extend(emitter_for(graph, report, platform).emit(workloads))
    return artifacts
