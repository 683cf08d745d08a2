"""`meshc graph --format html`: the linked graph as one self-contained page.

Python decides everything the page shows (which calls are denied, which carry plain text,
where each diagnostic belongs, what each workload gets); the page (compiler/assets) only
draws it with the vendored cytoscape.js and its dagre layout. The data travels as JSON inside
a <script type="application/json"> element, encoded by `script_json` so that no name can close
the element or break the script.
"""

from __future__ import annotations

import bisect
import html
import json
import re
from collections import defaultdict
from collections.abc import Set as AbstractSet
from importlib import resources
from typing import Any

from compiler import __version__
from compiler.artifact import Artifact, gateway_workload, platform_workload, service_workload
from compiler.build import Compiled, emit
from compiler.diagnostics import Diagnostic, Location
from compiler.evaluate import failover_tiers
from compiler.graph import Key, MeshGraph, Principal, RouteNode, ServiceNode
from compiler.loader import Origin
from compiler.model import HTTP_PROTOCOLS
from policies.authorization import denial

# The state an edge is drawn in, most severe first.
STATES = ("denied", "plaintext", "permissive", "allowed")
ASSETS = ("cytoscape.min.js", "cytoscape-dagre.min.js", "graph-page.css", "graph-page.js")


def _edge_class(protocol: str) -> str:
    """How an edge of this protocol draws: grpc, http (HTTP/1 and HTTP/2) or tcp (the rest)."""
    if protocol == "grpc":
        return "grpc"
    return "http" if protocol in HTTP_PROTOCOLS else "tcp"


def external_id(key: Key) -> str:
    return f"external:{key}"


def namespace_group(platform: str, namespace: str) -> str:
    return f"namespace:{platform}/{namespace}"


def platform_group(platform: str) -> str:
    return f"platform-group:{platform}"


EXTERNAL_GROUP = "external-group"


def placement_nodes(service: ServiceNode) -> list[tuple[str, str]]:
    """(platform, node id) of each place a service runs: one node on one platform; a service
    with several placements is drawn on each of them, `service:<key>@<platform>`."""
    if not service.placed:
        return [(service.platform.name, service_workload(service.key))]
    return [(p.platform.name, f"{service_workload(service.key)}@{p.platform.name}") for p in service.placements]


def reached_nodes(graph: MeshGraph, caller_platform: str, callee: ServiceNode) -> list[tuple[str, int | None]]:
    """The nodes of `callee` a caller on `caller_platform` sends to, with their failover tier
    (compiler.evaluate.failover_tiers; None for a service on one platform)."""
    if not callee.placed:
        return [(service_workload(callee.key), None)]
    ids = dict(placement_nodes(callee))
    return [(ids[r.placement.platform.name], tier)
            for tier, reached in enumerate(failover_tiers(graph.platforms[caller_platform], callee))
            for r in reached]


def _edge_name(node_id: str) -> str:
    return node_id.split(":", 1)[1]


def _transport(mtls: str) -> str:
    """What a mesh caller's traffic to a callee in this mTLS mode is (targets/envoy.py: the
    caller originates mTLS unless the callee is DISABLE; a PERMISSIVE callee also accepts
    plain text from anything without a mesh identity)."""
    return {"STRICT": "mtls", "PERMISSIVE": "permissive", "DISABLE": "plaintext"}[mtls]


def _state(authorization: str, transport: str) -> str:
    if authorization == "denied":
        return "denied"
    return transport if transport in ("plaintext", "permissive") else "allowed"


def _protocol_class(protocols: AbstractSet[str]) -> str:
    classes = {_edge_class(p) for p in protocols}
    return classes.pop() if len(classes) == 1 else "mixed"


def _principal(principal: Principal) -> str:
    if principal.kind == "any":
        return "*"
    if principal.kind == "unauthenticated":
        return "unauthenticated"
    if principal.blocks:
        return f"{principal.kind} {', '.join(principal.blocks)}"
    if principal.kind == "namespace":
        return f"namespace {principal.namespace}"
    return f"{principal.kind} {principal.namespace}/{principal.name}"


def _dump(model: Any) -> Any:
    return model.model_dump(mode="json", exclude_none=True, exclude_defaults=True)


def _route(route: RouteNode) -> dict:
    rules = []
    for rule in route.rules:
        spec = _dump(rule.spec)
        rules.append({
            "match": spec.pop("match", []),
            "to": [f"{t.service}{'@' + t.version if t.version else ''}:{t.port} {t.weight}%"
                   for t in rule.destinations],
            "other": {k: v for k, v in spec.items() if k != "to"},
        })
    return {"name": str(route.key), "hosts": list(route.spec.hosts), "rules": rules}


class _Places:
    """Which node or edge a diagnostic location belongs to: an exact call or destination
    position names an edge; otherwise the intent document that holds the line names a node."""

    def __init__(self, graph: MeshGraph) -> None:
        self.graph = graph
        self.exact: dict[Location, str] = {}
        self.documents: dict[str, list[tuple[int, str | None]]] = defaultdict(list)

    def document(self, origin: Origin, owner: str | None) -> None:
        document = self.graph.sources.documents.get((origin.file, origin.document))
        if document is not None:
            bisect.insort(self.documents[origin.file], (document.line, owner or ""))

    def field(self, origin: Origin, path: tuple, owner: str) -> None:
        self.exact[self.graph.sources.locate(origin, *path)] = owner

    def owner(self, location: Location | None) -> str | None:
        if location is None:
            return None
        if location in self.exact:
            return self.exact[location]
        starts = self.documents.get(location.file, [])
        index = bisect.bisect_right(starts, (location.line, "\uffff")) - 1
        return (starts[index][1] or None) if index >= 0 else None


def page_data(graph: MeshGraph, diagnostics: list[Diagnostic], artifacts: list[Artifact]) -> dict:
    """Everything the page draws, as plain data."""
    at = graph.sources.locate
    gets: dict[str, list[dict]] = defaultdict(list)
    for artifact in artifacts:
        gets[artifact.workload].append({"target": artifact.target, "path": artifact.path})
    places = _Places(graph)
    groups: dict[str, dict] = {}
    nodes: list[dict] = []
    edges: list[dict] = []

    def group(platform: str, namespace: str) -> str:
        outer = platform_group(platform)
        groups.setdefault(outer, {"id": outer, "label": f"{platform} ({graph.platforms[platform].kind})",
                                  "kind": "platform", "parent": None, "artifacts": gets[platform_workload(platform)]})
        inner = namespace_group(platform, namespace)
        groups.setdefault(inner, {"id": inner, "label": namespace, "kind": "namespace", "parent": outer,
                                  "artifacts": []})
        return inner

    def base(node_id: str, kind: str, key: Key, origin: Origin, parent: str, located: bool = True) -> dict:
        location = at(origin, "name")
        if located:
            places.document(origin, node_id)
        return {"id": node_id, "kind": kind, "name": key.name, "namespace": key.namespace, "parent": parent,
                "source": f"{location.file}:{location.line}", "diagnostics": [], "details": {}}

    for service in graph.services.values():
        for index, (platform, node_id) in enumerate(placement_nodes(service)):
            node = base(node_id, "service", service.key, service.origin, group(platform, service.namespace),
                        located=index == 0)  # the document's diagnostics show on its first node
            node["details"] = {
                "platform": platform,
                "mtls": service.mtls,
                "ports": [{"name": p.name, "port": p.port, "protocol": p.protocol} for p in service.spec.ports],
                "versions": sorted(service.spec.versions),
                "routes": [_route(route) for route in graph.routes_for(service.key)],
                "policies": _policies(graph, service),
                "calls": [str(k) for k in service.calls],
                "callers": [str(k) for k in graph.callers.get(service.key, ())],
                "artifacts": gets[service_workload(service.key)],
            }
            if service.placed:
                placement = service.placements[index]
                node["details"]["placement"] = {"platforms": [p.platform.name for p in service.placements],
                                                "priority": placement.priority, "weight": placement.weight}
            nodes.append(node)
    for gateway in graph.gateways.values():
        node = base(gateway_workload(gateway.key), "gateway", gateway.key, gateway.origin,
                    group(gateway.platform.name, gateway.key.namespace))
        node["details"] = {
            "platform": gateway.platform.name,
            "ports": [{"name": listener.name, "port": listener.port, "protocol": listener.protocol}
                      for listener in gateway.listeners],
            "hosts": sorted({h for listener in gateway.listeners for h in listener.hosts}),
            "routes": [_route(route) for route in graph.gateway_routes.get(gateway.key, ())],
            "artifacts": gets[gateway_workload(gateway.key)],
        }
        nodes.append(node)
    if graph.externals:
        groups[EXTERNAL_GROUP] = {"id": EXTERNAL_GROUP, "label": "external services", "kind": "external",
                                  "parent": None, "artifacts": []}
    for external in graph.externals.values():
        node = base(external_id(external.key), "external", external.key, external.origin, EXTERNAL_GROUP)
        node["details"] = {
            "hosts": list(external.spec.hosts),
            "ports": [{"name": p.name, "port": p.port, "protocol": p.protocol} for p in external.spec.ports],
            "tls": _dump(external.spec.tls),
        }
        nodes.append(node)

    for service in graph.services.values():
        for index, callee_key in enumerate(service.calls):
            callee = graph.services.get(callee_key)
            if callee is not None:
                why = denial(graph, callee, service.key)
                transport = _transport(callee.mtls)
                protocols = {p.protocol for p in callee.spec.ports}
            else:
                external = graph.externals[callee_key]
                why = None  # outside the mesh's authorisation
                protocols = {p.protocol for p in external.spec.ports}
                originates = all(external.spec.origination(p) is not None or p.protocol == "tls"
                                 for p in external.spec.ports)
                transport = "tls" if originates else "plaintext"
            located = False
            for platform, source in placement_nodes(service):
                targets = reached_nodes(graph, platform, callee) if callee is not None \
                    else [(external_id(callee_key), None)]
                for target, tier in targets:
                    edge_id = f"call:{_edge_name(source)}->{_edge_name(target)}"
                    if not located:  # the call's line shows on its first edge
                        places.field(service.origin, ("calls", index), edge_id)
                        located = True
                    edge = _edge(edge_id, source, target, "call", protocols, why, transport)
                    if tier is not None:
                        edge["tier"] = tier
                    edges.append(edge)
    for gateway_key, routes in graph.gateway_routes.items():
        destinations: dict[Key, list[tuple[RouteNode, int, int, int]]] = defaultdict(list)
        for route in routes:
            for rule in route.rules:
                for index, destination in enumerate(rule.destinations):
                    destinations[destination.service].append((route, rule.index, index, destination.port))
        for callee_key, uses in sorted(destinations.items()):
            callee = graph.services.get(callee_key)
            if callee is None:
                continue
            protocols = {p.protocol for _, _, _, number in uses for p in callee.spec.ports if p.port == number}
            why = denial(graph, callee, gateway_key, is_gateway=True)
            gateway_platform = graph.gateways[gateway_key].platform.name
            for position, (target, tier) in enumerate(reached_nodes(graph, gateway_platform, callee)):
                edge_id = f"route:{gateway_key}->{_edge_name(target)}"
                if position == 0:  # the destinations' lines show on the first edge
                    for route, rule_index, index, _ in uses:
                        places.field(route.origin, ("rules", rule_index, "to", index), edge_id)
                edge = _edge(edge_id, gateway_workload(gateway_key), target, "route",
                             protocols or {p.protocol for p in callee.spec.ports}, why, _transport(callee.mtls))
                edge["routes"] = sorted({str(route.key) for route, *_ in uses})
                if tier is not None:
                    edge["tier"] = tier
                edges.append(edge)
    def service_node(key: Key) -> str:
        """The node a service's Routes and policies show their diagnostics on: its first."""
        service = graph.services.get(key)
        return placement_nodes(service)[0][1] if service is not None else service_workload(key)

    for route in graph.routes.values():
        kind, attached = route.attachment()
        places.document(route.origin, service_node(attached) if kind == "service" else gateway_workload(attached))
    for policy in graph.access_policies.values():
        places.document(policy.origin, service_node(policy.service) if policy.service is not None
                        else gateway_workload(policy.gateway) if policy.gateway is not None else None)
    for cel_policy in graph.policies.values():
        places.document(cel_policy.origin, None)
    places.document(graph.mesh_origin, None)

    by_id = {item["id"]: item for item in (*nodes, *edges)}
    listed = []
    for index, diagnostic in enumerate(diagnostics):
        shown_on = places.owner(diagnostic.location)
        if shown_on in by_id:
            by_id[shown_on]["diagnostics"].append(index)
        listed.append({"code": diagnostic.code.code, "severity": diagnostic.severity, "message": diagnostic.message,
                       "location": str(diagnostic.location) if diagnostic.location else "", "on": shown_on})
    for item in by_id.values():
        severities = {listed[i]["severity"] for i in item["diagnostics"]}
        item["severity"] = next((s for s in ("error", "warning", "info") if s in severities), None)
    return {
        "mesh": graph.mesh.name,
        "generator": f"meshc {__version__}",
        "groups": sorted(groups.values(), key=lambda g: (g["parent"] or "", g["id"])),
        "nodes": nodes,
        "edges": edges,
        "diagnostics": listed,
        "namespaces": sorted({n["namespace"] for n in nodes}),
    }


def _policies(graph: MeshGraph, service: ServiceNode) -> list[dict]:
    return [
        {"name": str(policy.key),
         "rules": [{"section": rule.section, "from": [_principal(p) for p in rule.principals],
                    **{k: v for k, v in _dump(rule.spec).items() if k != "from"}}
                   for rule in (*policy.deny, *policy.allow)]}
        for policy in graph.policies_for(service.key)
    ]


def _edge(edge_id: str, source: str, target: str, kind: str, protocols: AbstractSet[str],
          why: tuple[str, Any] | None, transport: str) -> dict:
    authorization = "denied" if why else "allowed"
    return {"id": edge_id, "source": source, "target": target, "kind": kind, "protocols": sorted(protocols),
            "protocolClass": _protocol_class(protocols), "authorization": authorization,
            "denial": why[0] if why else None, "transport": transport,
            "state": _state(authorization, transport), "diagnostics": []}


_SCRIPT_UNSAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                                "\u2028": "\\u2028", "\u2029": "\\u2029"})


def script_json(data: Any) -> str:
    """JSON that is inert inside a <script> element: no `</script`, `<!--` or `]]>` can occur,
    and U+2028/U+2029 are escaped (they end a line in older JavaScript)."""
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":")).translate(_SCRIPT_UNSAFE)


_PLACEHOLDER = re.compile(r"@@(TITLE|STYLE|DATA|LIBRARIES|SCRIPT)@@")


def _asset(name: str) -> str:
    return resources.files("compiler").joinpath("assets", name).read_text(encoding="utf-8")


def render_page(data: dict) -> str:
    """The page: the skeleton with the vendored scripts, the style and the data inlined."""
    page = _asset("graph-page.html")
    values = {
        "TITLE": html.escape(f"{data['mesh']}: meshc graph"),
        "STYLE": _asset("graph-page.css"),
        "DATA": script_json(data),
        "LIBRARIES": "\n".join(_asset(name) for name in ASSETS[:2]),
        "SCRIPT": _asset("graph-page.js"),
    }
    # one pass: a value that happens to contain @@NAME@@ is not substituted again
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], page)


def mesh_page(compiled: Compiled) -> str:
    """The page of a linked mesh (compile_mesh(..., finish=False)): its diagnostics and, when
    it has no errors, what every workload gets from the targets."""
    assert compiled.graph is not None
    artifacts = [] if compiled.report.has_errors else emit(compiled.graph, compiled.report)
    compiled.finish(targets_ran=bool(artifacts))
    return render_page(page_data(compiled.graph, compiled.report.sorted(), artifacts))
