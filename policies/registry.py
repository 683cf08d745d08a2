"""The one registry of semantic checks, sorted by name, and the analysis that runs them."""

from __future__ import annotations

from typing import Protocol

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


class KnownResults(Protocol):
    """What earlier runs found (compiler.cache.KnownChecks): a check's diagnostics as
    Report.records gives them, for intents of the kinds it reads exactly as they are now."""

    def recall(self, check: Check) -> list[tuple] | None: ...

    def remember(self, check: Check, records: list[tuple]) -> None: ...


def analyse(graph: MeshGraph, report: Report, incomplete: frozenset[str] = frozenset(),
            known: KnownResults | None = None) -> list[Check]:
    """Run every check that reads none of the `incomplete` kinds (a kind some of whose objects
    an error left out of the graph: a check over it would report the hole); the checks not run.
    With `known`, a check whose inputs are unchanged reports what it reported then."""
    skipped = []
    for check in CHECKS:
        if check.reads & incomplete:
            skipped.append(check)
            continue
        recalled = known.recall(check) if known is not None else None
        if recalled is not None:
            report.add_records(recalled)
            continue
        first = len(report.diagnostics)
        run_check(check, graph, report)
        if known is not None:
            known.remember(check, report.records(first))
    return skipped
