"""Rules of Routes merged for one host that repeat each other's match (docs/intents.md,
"Several Routes for one host")."""

from __future__ import annotations

from compiler import codes
from compiler.diagnostics import Related, Report
from compiler.graph import MeshGraph, RouteNode
from compiler.model import Match
from policies.check import Check
from policies.reachability import CATCH_ALL, match_covers


def merges(graph: MeshGraph) -> list[tuple[RouteNode, ...]]:
    """Every set of several Routes whose rules are merged: a service's mesh Routes, and the
    Routes of one gateway that write one host and attach to one listener, each in merge order."""
    found = [routes for routes in graph.service_routes.values() if len(routes) > 1]
    for gateway_key, routes in graph.gateway_routes.items():
        writers: dict[tuple[str, str], list[RouteNode]] = {}
        for listener in graph.gateways[gateway_key].listeners:
            for route in routes:
                if route.attaches(listener):
                    for host in route.spec.hosts:
                        writers.setdefault((listener.name, host), []).append(route)
        distinct = {tuple(r.key for r in w): tuple(w) for w in writers.values() if len(w) > 1}
        found.extend(distinct.values())
    return found


def _entries(route: RouteNode, index: int) -> list[tuple[Match, tuple]]:
    """(match entry, its path below the Route) of one rule; a rule without `match` is one catch-all."""
    rule = route.spec.rules[index]
    if not rule.match:
        return [(CATCH_ALL, ("rules", index))]
    return [(entry, ("rules", index, "match", e_index)) for e_index, entry in enumerate(rule.match)]


def check(graph: MeshGraph, report: Report) -> None:
    at = graph.sources.locate
    pairs = {(earlier.key, later.key): (earlier, later) for routes in merges(graph)
             for position, later in enumerate(routes) for earlier in routes[:position]}
    shadowed: set[tuple] = set()
    for earlier, later in pairs.values():
        theirs = [entry for index in range(len(earlier.spec.rules)) for entry in _entries(earlier, index)]
        for index in range(len(later.spec.rules)):
            entries = _entries(later, index)
            # per entry: the first earlier entry covering it, and whether the two are the same
            found = [next(((where, match_covers(entry, other)) for other, where in theirs
                           if match_covers(other, entry)), None) for entry, _ in entries]
            covers = [cover for cover in found if cover is not None]
            if len(covers) == len(entries) and not all(same for _, same in covers) and \
                    (later.key, index) not in shadowed:
                shadowed.add((later.key, index))
                cover = covers[0][0]
                report.add(
                    codes.ROUTE_MERGE_SHADOWED,
                    f"rule {index} of Route {later.key} never decides: rule {cover[1]} of Route {earlier.key}, "
                    "merged before it for one host, matches every request it would",
                    at(later.origin, "rules", index),
                    related=(Related(at(earlier.origin, *cover), f"matched first in Route {earlier.key}"),),
                    hint="narrow the earlier rule, or name the Routes so that the more specific one comes first",
                )
            for entry, path in entries:
                twin = next((where for other, where in theirs
                             if match_covers(other, entry) and match_covers(entry, other)), None)
                if twin is None:
                    continue
                report.add(
                    codes.ROUTE_MERGE_CONFLICT,
                    f"rule {index} of Route {later.key} matches what rule {twin[1]} of Route {earlier.key} matches; "
                    f"merged for one host, Route {earlier.key}'s rule comes first and decides those requests",
                    at(later.origin, *path),
                    related=(Related(at(earlier.origin, *twin), f"the same match in Route {earlier.key}"),),
                    hint="narrow one of the two rules, or keep them in one Route",
                )


CHECK = Check(
    name="route-merge",
    summary="Routes merged for one host have no two rules with an identical match, nor a rule an earlier "
            "Route's always takes first",
    reads=frozenset({"Mesh", "Service", "Route", "Gateway"}),
    codes=(codes.ROUTE_MERGE_CONFLICT, codes.ROUTE_MERGE_SHADOWED),
    run=check,
)
