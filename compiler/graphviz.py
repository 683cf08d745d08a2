"""Exports of the linked graph: Graphviz dot, Mermaid, JSON."""

from __future__ import annotations

import json
from collections.abc import Callable

from compiler.graph import MeshGraph


def graph_data(graph: MeshGraph) -> dict:
    """The graph as plain data; the dot and Mermaid views are drawn from it."""
    return {
        "mesh": graph.mesh.name,
        "platforms": {name: p.kind for name, p in graph.platforms.items()},
        "services": [
            {
                "id": str(node.key),
                "platform": node.platform.name,
                "ports": [{"name": p.name, "port": p.port, "protocol": p.protocol} for p in node.spec.ports],
                "versions": sorted(node.spec.versions),
                "calls": [str(k) for k in node.calls],
                "mtls": node.mtls,
                "routes": [str(route.key) for route in graph.routes_for(node.key)],
                "accessPolicies": [str(p.key) for p in graph.policies_for(node.key)],
            }
            for node in graph.services.values()
        ],
        "externalServices": [
            {"id": str(node.key), "hosts": list(node.spec.hosts)} for node in graph.externals.values()
        ],
        "gateways": [
            {
                "id": str(node.key),
                "platform": node.platform.name,
                "routes": [
                    {
                        "route": str(route.key),
                        "hosts": list(route.spec.hosts),
                        "to": sorted({str(t.service) for rule in route.rules for t in rule.destinations}),
                    }
                    for route in graph.gateway_routes.get(node.key, ())
                ],
            }
            for node in graph.gateways.values()
        ],
        "policies": sorted(graph.policies),
    }


def to_json(graph: MeshGraph) -> str:
    return json.dumps(graph_data(graph), indent=2, sort_keys=True) + "\n"


def _edges(data: dict) -> list[tuple[str, str, str]]:
    edges = [(s["id"], callee, "calls") for s in data["services"] for callee in s["calls"]]
    edges += [(g["id"], to, "routes") for g in data["gateways"] for r in g["routes"] for to in r["to"]]
    return edges


def to_dot(graph: MeshGraph) -> str:
    data = graph_data(graph)
    lines = [f'digraph "{data["mesh"]}" {{', "  rankdir=LR;"]
    for service in data["services"]:
        lines.append(f'  "{service["id"]}" [shape=box, label="{service["id"]}\\n{service["platform"]}"];')
    for external in data["externalServices"]:
        lines.append(f'  "{external["id"]}" [shape=box, style=dashed];')
    for gateway in data["gateways"]:
        lines.append(f'  "{gateway["id"]}" [shape=invhouse];')
    for source, target, label in _edges(data):
        style = ", style=bold" if label == "routes" else ""
        lines.append(f'  "{source}" -> "{target}" [label="{label}"{style}];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_id(name: str) -> str:
    return name.replace("/", "__").replace("-", "_")


def to_mermaid(graph: MeshGraph) -> str:
    data = graph_data(graph)
    lines = ["flowchart LR"]
    for service in data["services"]:
        lines.append(f'  {_mermaid_id(service["id"])}["{service["id"]}"]')
    for external in data["externalServices"]:
        lines.append(f'  {_mermaid_id(external["id"])}(["{external["id"]}"])')
    for gateway in data["gateways"]:
        lines.append(f'  {_mermaid_id(gateway["id"])}{{{{"{gateway["id"]}"}}}}')
    for source, target, label in _edges(data):
        arrow = "==>" if label == "routes" else "-->"
        lines.append(f"  {_mermaid_id(source)} {arrow} {_mermaid_id(target)}")
    return "\n".join(lines) + "\n"


EXPORTERS: dict[str, Callable[[MeshGraph], str]] = {"dot": to_dot, "json": to_json, "mermaid": to_mermaid}
