"""The call graph: services nothing reaches, call cycles, external services nothing calls."""

from __future__ import annotations

import itertools
from collections import deque

from compiler import codes
from compiler.diagnostics import Related, Report
from compiler.graph import Key, MeshGraph
from policies.check import Check


def _unreached(graph: MeshGraph, report: Report) -> None:
    reached = set(graph.callers)
    for route in graph.routes.values():
        for rule in route.rules:
            reached.update(target.service for target in rule.destinations)
            reached.update(target.service for target in rule.mirrors)
    for key, service in graph.services.items():
        if key not in reached and not service.spec.public:
            report.add(codes.UNREACHABLE_SERVICE,
                       f"nothing calls service {key}, no Route sends traffic to it and it is not public",
                       graph.sources.locate(service.origin, "name"))
    for key, external in graph.externals.items():
        if key not in reached:  # called, or sent to by a Route on another external host
            report.add(codes.UNUSED_EXTERNAL, f"no service calls ExternalService {key}",
                       graph.sources.locate(external.origin, "name"))


def strongly_connected(graph: MeshGraph) -> list[list[Key]]:
    """Tarjan's algorithm over service-to-service calls, iterative (meshes are deep)."""
    successors = {key: [c for c in node.calls if c in graph.services] for key, node in graph.services.items()}
    index: dict[Key, int] = {}
    low: dict[Key, int] = {}
    on_stack: set[Key] = set()
    stack: list[Key] = []
    components: list[list[Key]] = []
    for root in successors:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, position = work.pop()
            if position == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            for offset, successor in enumerate(successors[node][position:], start=position):
                if successor not in index:
                    work.append((node, offset + 1))
                    work.append((successor, 0))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(component)
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
    return components


def shortest_cycle(graph: MeshGraph, start: Key, members: set[Key]) -> list[Key]:
    """start, ..., start: the fewest calls from start back to itself inside one component."""
    previous: dict[Key, Key] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for successor in graph.services[node].calls:
            if successor == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [*reversed(path), start]
            if successor in members and successor not in previous:
                previous[successor] = node
                queue.append(successor)
    return [start]


def _cycles(graph: MeshGraph, report: Report) -> None:
    at = graph.sources.locate
    for component in strongly_connected(graph):
        start = min(component)
        if len(component) == 1 and start not in graph.services[start].calls:
            continue
        cycle = shortest_cycle(graph, start, set(component))
        hops = list(itertools.pairwise(cycle))
        size = (f" (one of a group of {len(component)} services that all reach each other)"
                if len(component) > len(hops) else "")
        report.add(
            codes.CALL_CYCLE,
            f"call cycle: {' --> '.join(str(k) for k in cycle)}{size}",
            at(graph.services[start].origin, "calls", graph.services[start].calls.index(hops[0][1])),
            related=tuple(Related(at(graph.services[a].origin, "calls", graph.services[a].calls.index(b)),
                                  f"{a} calls {b}") for a, b in hops[1:]),
        )


def check(graph: MeshGraph, report: Report) -> None:
    _unreached(graph, report)
    _cycles(graph, report)


CHECK = Check(
    name="topology",
    summary="every service and ExternalService is used; call cycles are shown (a --> b --> a)",
    reads=frozenset({"Mesh", "Service", "ExternalService", "Route"}),
    codes=(codes.UNREACHABLE_SERVICE, codes.CALL_CYCLE, codes.UNUSED_EXTERNAL),
    run=check,
)
