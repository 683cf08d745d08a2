"""The one registry of semantic checks, sorted by name, and the analysis that runs them."""

from __future__ import annotations

from compiler.diagnostics import Report
from compiler.graph import MeshGraph
from policies import (
    authentication,
    authorization,
    cel_policies,
    gateways,
    identity,
    mtls,
    patches,
    placements,
    ports,
    reachability,
    resilience,
    route_merge,
    topology,
)
from policies.check import Check, run_check

CHECKS: tuple[Check, ...] = (
    authentication.CHECK,
    authorization.CHECK,
    cel_policies.CHECK,
    placements.CROSS_NETWORK,
    placements.FAILOVER_OUTLIERS,
    placements.FAILOVER_PORTS,
    gateways.CHECK,
    identity.CHECK,
    mtls.CHECK,
    patches.CHECK,
    placements.WEIGHTS,
    ports.CHECK,
    reachability.CHECK,
    resilience.CHECK,
    route_merge.CHECK,
    topology.CHECK,
    placements.TRUST_DOMAINS,
)


def analyse(graph: MeshGraph, report: Report, incomplete: frozenset[str] = frozenset()) -> list[Check]:
    """Run every check that reads none of the `incomplete` kinds (a kind some of whose objects
    an error left out of the graph: a check over it would report the hole); the checks not run."""
    skipped = []
    for check in CHECKS:
        if check.reads & incomplete:
            skipped.append(check)
        else:
            run_check(check, graph, report)
    return skipped
