"""Services on several platforms (docs/intents.md, Placements and failover): which placements
each caller reaches, in which trust domain, and whether failover can happen at all.

Four small checks over one view of the traffic: every caller's platform (each placement of a
calling service, each Gateway) with every service it sends to (its calls, and the destinations
of its callees' and its own Routes), located where the traffic is written.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from compiler import codes
from compiler.diagnostics import Location, Related, Report
from compiler.evaluate import failover_tiers, same_network, weighted
from compiler.graph import MeshGraph, Placement, Platform, ServiceNode
from policies.check import Check

READS = frozenset({"Mesh", "Service", "Route", "Gateway"})


class Flow(NamedTuple):
    """Traffic from workloads on `caller` to `callee`, written at `where`."""

    caller: Platform
    callee: ServiceNode
    where: Location
    who: str  # the sender, for messages


def flows(graph: MeshGraph) -> Iterator[Flow]:
    # four checks walk every call of the mesh: each call's location and sender are made once
    at = graph.sources.locate
    for service in graph.services.values():
        who = f"service {service.key}"
        for index, key in enumerate(service.calls):
            callee = graph.services.get(key)
            if callee is None:
                continue
            targets = [callee]
            targets += [graph.services[t.service] for route in graph.routes_for(key) for rule in route.rules
                        for t in rule.destinations if t.service != key]
            where = at(service.origin, "calls", index)
            for placement in service.placements:
                for target in targets:
                    yield Flow(placement.platform, target, where, who)
    for gateway in graph.gateways.values():
        for route in graph.gateway_routes.get(gateway.key, ()):
            for rule in route.rules:
                for d_index, destination in enumerate(rule.destinations):
                    yield Flow(gateway.platform, graph.services[destination.service],
                               at(route.origin, "rules", rule.index, "to", d_index), f"Gateway {gateway.key}")


def _placement_at(graph: MeshGraph, service: ServiceNode, placement: Placement) -> Location:
    return graph.sources.locate(service.origin, *placement.path("platform"))


def _cross_network(graph: MeshGraph, report: Report) -> None:
    for flow in flows(graph):
        for placement in flow.callee.placements:
            platform = placement.platform
            if same_network(flow.caller, platform):
                continue
            if getattr(platform, "eastWestGateway", None) is None:
                report.add(
                    codes.CROSS_NETWORK_WITHOUT_GATEWAY,
                    f"{flow.who} on platform {flow.caller.name!r} (network {flow.caller.network!r}) sends to "
                    f"{flow.callee.key}, whose placement on platform {platform.name!r} is on network "
                    f"{platform.network!r} without an east-west gateway: it is not one of the caller's endpoints",
                    flow.where,
                    related=(Related(_placement_at(graph, flow.callee, placement), "the placement"),),
                    hint="give the platform `eastWestGateway: {address: ...}`, or put the platforms on one network",
                )


def _failover_ports(graph: MeshGraph, report: Report) -> None:
    for flow in flows(graph):
        if flow.callee.mtls != "DISABLE":
            continue
        for placement in flow.callee.placements:
            platform = placement.platform
            if same_network(flow.caller, platform) or getattr(platform, "eastWestGateway", None) is None:
                continue
            ports = ", ".join(str(p.port) for p in flow.callee.spec.ports)
            report.add(
                codes.FAILOVER_PORT_UNSERVED,
                f"{flow.who} on platform {flow.caller.name!r} reaches {flow.callee.key}'s placement on platform "
                f"{platform.name!r} only through its east-west gateway, which cannot forward port(s) {ports}: "
                f"{flow.callee.key} has mtls DISABLE, so there is no SNI to forward by",
                flow.where,
                related=(Related(_placement_at(graph, flow.callee, placement), "the placement"),),
                hint="enable mTLS (STRICT or PERMISSIVE) for the service, or put the platforms on one network",
            )


def _trust_domains(graph: MeshGraph, report: Report) -> None:
    at = graph.sources.locate
    for service in graph.services.values():
        first = service.placements[0]
        for placement in service.placements[1:]:
            if graph.trust_domain(placement.platform) != graph.trust_domain(first.platform):
                report.add(
                    codes.TRUST_DOMAIN_MISMATCH,
                    f"service {service.key} runs on platform {first.platform.name!r} (trust domain "
                    f"{graph.trust_domain(first.platform)!r}) and on {placement.platform.name!r} (trust domain "
                    f"{graph.trust_domain(placement.platform)!r}): its identity would differ by platform",
                    _placement_at(graph, service, placement),
                    hint="give the platforms one trustDomain",
                )
    for flow in flows(graph):
        mine = graph.trust_domain(flow.caller)
        others = [p for p in flow.callee.placements
                  if graph.trust_domain(p.platform) != mine and p.platform.name != flow.caller.name]
        if others:
            names = ", ".join(f"{p.platform.name!r} ({graph.trust_domain(p.platform)!r})" for p in others)
            report.add(
                codes.TRUST_DOMAIN_MISMATCH,
                f"{flow.who} on platform {flow.caller.name!r} (trust domain {mine!r}) sends to {flow.callee.key} "
                f"on platform(s) {names} of another trust domain: mTLS between them is refused",
                flow.where,
                related=tuple(Related(at(flow.callee.origin, *p.path("platform")), "the placement") for p in others),
                hint="give the platforms one trustDomain",
            )


def _failover_without_outliers(graph: MeshGraph, report: Report) -> None:
    seen: set = set()
    for flow in flows(graph):
        callee = flow.callee
        if callee.key in seen or callee.resilience.outlierDetection is not None:
            continue
        if len(failover_tiers(flow.caller, callee)) > 1:
            seen.add(callee.key)
            report.add(
                codes.FAILOVER_WITHOUT_OUTLIER_DETECTION,
                f"{flow.who} on platform {flow.caller.name!r} has several failover tiers of {callee.key}'s "
                "placements, but no outlierDetection ejects a failing endpoint: traffic never leaves the first tier",
                graph.sources.locate(callee.origin, "placements", key=True),
                hint="set `resilience.outlierDetection` on the service or in Mesh.defaults",
            )


def _indistinct_weights(graph: MeshGraph, report: Report) -> None:
    for service in graph.services.values():
        if not weighted(service):
            continue
        first: dict[tuple, Placement] = {}
        for placement in service.placements:
            locality = placement.platform.locality
            group = (placement.priority, locality.label() if locality is not None else None)
            seen = first.setdefault(group, placement)
            if seen is placement:
                continue
            where = "locality " + seen.platform.locality.label() if seen.platform.locality else "no locality"
            report.add(
                codes.PLACEMENT_WEIGHTS_INDISTINCT,
                f"placements of {service.key} on platforms {seen.platform.name!r} and {placement.platform.name!r} "
                f"have priority {placement.priority} and {where}: they are one tier and one locality to every "
                "caller, whose proxies cannot weigh them apart",
                _placement_at(graph, service, placement),
                related=(Related(_placement_at(graph, service, seen), "the other placement"),),
                hint="give the platforms distinct localities, give the placements different priorities, "
                     "or drop the weights",
            )


CROSS_NETWORK = Check(
    name="cross-network",
    summary="every placement a caller sends to is on its network or behind an east-west gateway",
    reads=READS,
    codes=(codes.CROSS_NETWORK_WITHOUT_GATEWAY,),
    run=_cross_network,
)
FAILOVER_PORTS = Check(
    name="failover-ports",
    summary="a placement reached through an east-west gateway can carry the service's ports (mTLS)",
    reads=READS,
    codes=(codes.FAILOVER_PORT_UNSERVED,),
    run=_failover_ports,
)
FAILOVER_OUTLIERS = Check(
    name="failover-outliers",
    summary="a service with several failover tiers has outlier detection to fail over with",
    reads=READS,
    codes=(codes.FAILOVER_WITHOUT_OUTLIER_DETECTION,),
    run=_failover_without_outliers,
)
TRUST_DOMAINS = Check(
    name="trust-domains",
    summary="traffic and placements stay within one trust domain",
    reads=READS,
    codes=(codes.TRUST_DOMAIN_MISMATCH,),
    run=_trust_domains,
)
WEIGHTS = Check(
    name="placement-weights",
    summary="weighted placements of one tier are in distinct localities",
    reads=frozenset({"Mesh", "Service"}),
    codes=(codes.PLACEMENT_WEIGHTS_INDISTINCT,),
    run=_indistinct_weights,
)
