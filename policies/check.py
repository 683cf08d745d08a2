"""What a semantic check is, and how what it reads is known rather than trusted.

A check is a small unit: a name, a one-line summary of what it proves, the intent kinds it
reads, the codes it may report, and a function over the linked graph. The graph a check
runs on is a `ReadRecorder`: the MeshGraph itself, noting which intent kinds the check
opened. tests/test_policies_reads.py runs every check over every fixture mesh and fails when
a check reads a kind it does not declare (or declares one it never reads), so `reads` is
what the code does, not what its author remembered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from compiler.codes import Code
from compiler.diagnostics import Report
from compiler.graph import MeshGraph

KINDS = ("Mesh", "Service", "ExternalService", "Route", "Gateway", "AccessPolicy", "Policy", "Patch")

# The intent kinds each MeshGraph field is made from. Linked nodes carry resolved values:
# a service's platform, effective mTLS, resilience and sidecar ports come from the Mesh; a
# route rule's effective timeout and retries from its service and the Mesh; a gateway's
# platform from the Mesh. Reading the node reads those kinds too.
GRAPH_FIELD_KINDS: dict[str, frozenset[str]] = {
    "mesh": frozenset({"Mesh"}),
    "mesh_origin": frozenset({"Mesh"}),
    "platforms": frozenset({"Mesh"}),
    "services": frozenset({"Service", "Mesh"}),
    "callers": frozenset({"Service"}),
    "externals": frozenset({"ExternalService"}),
    "routes": frozenset({"Route", "Service", "Mesh"}),
    "service_routes": frozenset({"Route", "Service", "Mesh"}),
    "gateway_routes": frozenset({"Route", "Service", "Mesh"}),
    "gateways": frozenset({"Gateway", "Mesh"}),
    "access_policies": frozenset({"AccessPolicy"}),
    "service_policies": frozenset({"AccessPolicy"}),
    "policies": frozenset({"Policy"}),
    "patches": frozenset({"Patch"}),
}
# Positions of the source text and the revision: where things are, not what they say.
GRAPH_FIELDS_WITHOUT_KINDS = frozenset({"sources", "read_revision"})


@dataclass(frozen=True)
class Check:
    name: str
    summary: str  # what it proves, for the table in docs/policies.md
    reads: frozenset[str]  # intent kinds (KINDS) whose content it looks at
    codes: tuple[Code, ...]  # what it may report
    run: Callable[[MeshGraph, Report], None]


class _FirstRead:
    """A MeshGraph field seen through a ReadRecorder: the first read notes the field's kinds
    and keeps the value on the instance, which later reads find first (a descriptor with
    only __get__ yields to the instance's own attributes), so a check's loops run at full
    speed."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, recorder: ReadRecorder | None, owner: type | None = None) -> Any:
        if recorder is None:
            return self
        value = getattr(recorder.graph, self.name)
        recorder.kinds_read.update(GRAPH_FIELD_KINDS[self.name])
        recorder.__dict__[self.name] = value
        return value


class ReadRecorder(MeshGraph):
    """The graph as one check sees it: the same fields, and a note of the kinds opened."""

    graph: MeshGraph
    kinds_read: set[str]

    def __init__(self, graph: MeshGraph) -> None:
        # not MeshGraph.__init__: the fields with kinds are read through _FirstRead
        object.__setattr__(self, "graph", graph)
        object.__setattr__(self, "kinds_read", set())
        for name in GRAPH_FIELDS_WITHOUT_KINDS:
            object.__setattr__(self, name, getattr(graph, name))


for _field in GRAPH_FIELD_KINDS:
    setattr(ReadRecorder, _field, _FirstRead(_field))


def run_check(check: Check, graph: MeshGraph, report: Report) -> frozenset[str]:
    """Run one check; the intent kinds it read."""
    recorder = ReadRecorder(graph)
    check.run(recorder, report)
    return frozenset(recorder.kinds_read)
