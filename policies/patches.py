"""Patches: every one listed where it is written, so that an escape hatch is never invisible
(docs/intents.md, Patch). What a Patch edits is found, and checked, when the targets have run
(compiler.patches)."""

from __future__ import annotations

from compiler import codes
from compiler.diagnostics import Report
from compiler.graph import MeshGraph
from policies.check import Check


def check(graph: MeshGraph, report: Report) -> None:
    for key, node in graph.patches.items():
        spec = node.spec
        edits = (f"{len(spec.jsonPatch)} JSON Patch operation{'s' * (len(spec.jsonPatch) > 1)}"
                 if spec.jsonPatch is not None else "a JSON merge patch")
        wanted = spec.object
        where = "/".join(part for part in (wanted.namespace, wanted.name) if part)
        named = f"{wanted.kind} {where}" if where else wanted.kind
        report.add(codes.PATCH_LISTED,
                   f"Patch {key} edits {named} of {node.workload} on target {spec.target} with {edits}; the "
                   "semantics, the evaluator and `meshc test` do not know what it does"
                   + (f" (reason: {spec.reason})" if spec.reason else ""),
                   graph.sources.locate(node.origin, "name"))


CHECK = Check(
    name="patches",
    summary="every Patch is listed where it is written, with what it edits (never suppressed)",
    reads=frozenset({"Patch"}),
    codes=(codes.PATCH_LISTED,),
    run=check,
)
