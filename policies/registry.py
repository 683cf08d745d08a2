"""The one registry of semantic checks, sorted by name, and the analysis that runs them."""

from __future__ import annotations

from compiler.diagnostics import Report
from compiler.graph import MeshGraph
from policies import authorization, cel_policies, gateways, mtls, ports, reachability, resilience, topology
from policies.check import Check, run_check

CHECKS: tuple[Check, ...] = (
    authorization.CHECK,
    cel_policies.CHECK,
    gateways.CHECK,
    mtls.CHECK,
    ports.CHECK,
    reachability.CHECK,
    resilience.CHECK,
    topology.CHECK,
)


def analyse(graph: MeshGraph, report: Report) -> None:
    for check in CHECKS:
        run_check(check, graph, report)
