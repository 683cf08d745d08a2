"""Semantic analysis: checks over the linked graph, and the organisation's CEL Policies.

Each check is a small unit that declares the kinds it reads and the codes it reports; CHECKS
is the one registry, sorted by name. Checks only read the graph and report; none raises for
anything a user can write.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from compiler.codes import Code
from compiler.diagnostics import Report
from compiler.graph import MeshGraph


@dataclass(frozen=True)
class Check:
    name: str
    reads: tuple[str, ...]  # intent kinds the check looks at
    codes: tuple[Code, ...]  # what it may report
    run: Callable[[MeshGraph, Report], None]


# The check modules import Check from here, so they are imported once it exists.
from policies import (  # noqa: E402
    authorization,
    cel_policies,
    gateways,
    mtls,
    ports,
    reachability,
    resilience,
    topology,
)

CHECKS: tuple[Check, ...] = tuple(
    sorted(
        (
            authorization.CHECK,
            cel_policies.CHECK,
            gateways.CHECK,
            mtls.CHECK,
            ports.CHECK,
            reachability.CHECK,
            resilience.CHECK,
            topology.CHECK,
        ),
        key=lambda check: check.name,
    )
)


def analyse(graph: MeshGraph, report: Report) -> None:
    for check in CHECKS:
        check.run(graph, report)
