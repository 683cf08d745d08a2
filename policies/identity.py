"""Identities: workloads that run as one service account are one principal to Istio and Envoy."""

from __future__ import annotations

from compiler import codes
from compiler.diagnostics import Related, Report
from compiler.graph import GatewayNode, Key, MeshGraph, ServiceNode
from policies.check import Check


def _where(graph: MeshGraph, node: ServiceNode | GatewayNode):
    at = graph.sources.locate
    if isinstance(node, ServiceNode):
        return at(node.origin, "serviceAccount") if node.spec.serviceAccount else at(node.origin, "name")
    return at(node.origin, "deployment", "serviceAccount") if node.bound else at(node.origin, "name")


def check(graph: MeshGraph, report: Report) -> None:
    first: dict[Key, ServiceNode | GatewayNode] = {}
    nodes: list[ServiceNode | GatewayNode] = [*graph.services.values(), *graph.gateways.values()]
    for node in nodes:
        owner = first.setdefault(node.identity, node)
        if owner is node:
            continue
        what = "service" if isinstance(node, ServiceNode) else "Gateway"
        report.add(codes.SHARED_IDENTITY,
                   f"{what} {node.key} runs as service account {node.identity}, as {owner.key} does: "
                   "an AccessPolicy that admits one admits both on Istio and Envoy",
                   _where(graph, node), related=(Related(_where(graph, owner), "the same account"),))


CHECK = Check(
    name="identity",
    summary="no two services or gateways share a service account",
    reads=frozenset({"Mesh", "Service", "Gateway"}),
    codes=(codes.SHARED_IDENTITY,),
    run=check,
)
