"""Semantic analysis: checks over the linked graph, and the organisation's CEL Policies.

Each check is a small unit that declares the kinds it reads and the codes it reports; CHECKS
is the one registry, sorted by name.
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


CHECKS: tuple[Check, ...] = tuple(sorted((), key=lambda check: check.name))


def analyse(graph: MeshGraph, report: Report) -> None:
    for check in CHECKS:
        check.run(graph, report)
