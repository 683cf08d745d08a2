"""Suppressions of semantic-analysis diagnostics (3xx), and reports of the unused ones.

Two ways to suppress, both naming the code:

- a `# meshc: ignore[MESH301]` comment (several codes: `ignore[MESH301, MESH311]`) on the line
  the diagnostic points at; the loader collects them into Report.line_suppressions;
- a Mesh.suppress entry `{code: MESH311, name: ...}`. `name` names the object the diagnostic
  points into: `Kind/namespace/name` (`Service/shop/cart`), `namespace/name` (any namespaced
  kind), or `Mesh/name` / `Policy/name` for the kinds without a namespace; the namespace is
  the one the object lives in (Mesh.defaultNamespace when it names none). Without `name`, the
  entry suppresses the code everywhere.

Only 3xx and 4xx codes can be suppressed (not MESH387, which lists every Patch): loading,
schema and linking errors leave nothing to compile.
A suppression that matched nothing, or names an unknown or unsuppressible code, is itself
reported (MESH390), so suppressions do not outlive the problem they hid.
"""

from __future__ import annotations

import bisect
import re
from collections import defaultdict

from compiler import codes
from compiler.diagnostics import Diagnostic, Location, Report
from compiler.graph import MeshGraph
from compiler.loader import Loaded
from compiler.model import NAMESPACED_KINDS, Mesh

_COMMENT = re.compile(r"#\s*meshc:")


def suppressible(code: str) -> bool:
    """Semantic (3xx) and target (4xx) diagnostics can be suppressed; nothing earlier can."""
    return (code in codes.CODES and code[:5] in ("MESH3", "MESH4")
            and code not in (codes.UNUSED_SUPPRESSION.code, codes.PATCH_LISTED.code))  # a Patch is never hidden


class _ObjectIndex:
    """Which object a location lies in: the document whose start is the last one before it."""

    def __init__(self, loaded: Loaded, mesh: Mesh) -> None:
        self.names: dict[tuple[str, int], tuple[str, ...]] = {}
        starts: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for (file, index), document in loaded.sources.documents.items():
            starts[file].append((document.line, index))
        self.starts = {file: sorted(pairs) for file, pairs in starts.items()}
        for intent in loaded.intents:
            model = intent.model
            names: tuple[str, ...]
            if intent.kind in NAMESPACED_KINDS:
                namespace = model.namespace or mesh.defaultNamespace
                names = (f"{intent.kind}/{namespace}/{model.name}", f"{namespace}/{model.name}")
            else:
                names = (f"{intent.kind}/{model.name}",)
            self.names[(intent.origin.file, intent.origin.document)] = names

    def names_at(self, location: Location) -> tuple[str, ...]:
        pairs = self.starts.get(location.file, [])
        position = bisect.bisect_right(pairs, (location.line, float("inf"))) - 1
        if position < 0:
            return ()
        return self.names.get((location.file, pairs[position][1]), ())


def _unused_reason(code: str) -> str:
    if code not in codes.CODES:
        return f"{code} is not a diagnostic code"
    if not suppressible(code):
        return f"{code} cannot be suppressed (only semantic analysis, 3xx, can)"
    return f"no {code} diagnostic here to suppress"


class Suppressor:
    """Filters a report as stages add to it, and at the end reports what suppressed nothing.

    `meshc build` filters after analysis (so a suppressed error does not stop the build) and
    again after the targets; unused target-code (4xx) suppressions are reported only when
    every target ran, since `meshc check` never produces them.
    """

    def __init__(self, loaded: Loaded, graph: MeshGraph, line_suppressions: dict) -> None:
        self.loaded = loaded
        self.graph = graph
        self.lines = line_suppressions
        self.files_with_lines = {file for file, _ in line_suppressions}  # no other file's positions are needed
        self.entries = list(enumerate(graph.mesh.suppress))
        self.index = _ObjectIndex(loaded, graph.mesh) if self.entries else None
        self.used_lines: set[tuple[str, int, str]] = set()
        self.used_entries: set[int] = set()

    def filter(self, report: Report) -> None:
        if not self.lines and not self.entries:
            return
        kept: list[Diagnostic] = []
        for diagnostic in report.diagnostics:
            if not self._suppressed(diagnostic):
                kept.append(diagnostic)
        report.diagnostics[:] = kept

    def _suppressed(self, diagnostic: Diagnostic) -> bool:
        code, where = diagnostic.code.code, diagnostic.location
        if where is None or not suppressible(code):
            return False
        suppressed = False
        if where.file in self.files_with_lines and code in self.lines.get((where.file, where.line), ()):
            self.used_lines.add((where.file, where.line, code))
            suppressed = True
        if self.index is not None:
            names = self.index.names_at(where)
            for number, entry in self.entries:
                if entry.code == code and (entry.name is None or entry.name in names):
                    self.used_entries.add(number)
                    suppressed = True
        return suppressed

    def report_unused(self, report: Report, *, targets_ran: bool) -> None:
        def skipped(code: str) -> bool:
            return code.startswith("MESH4") and code in codes.CODES and not targets_ran

        sources = self.loaded.sources
        for (file, line), named in sorted(self.lines.items()):
            text = sources.texts.get(file, "").splitlines()
            comment = _COMMENT.search(text[line - 1]) if 0 < line <= len(text) else None
            column = comment.start() + 1 if comment else 1
            for code in sorted(named):
                if (file, line, code) not in self.used_lines and not skipped(code):
                    report.add(codes.UNUSED_SUPPRESSION,
                               f"`# meshc: ignore[{code}]` suppresses nothing: {_unused_reason(code)}",
                               Location(file, line, column))
        for number, entry in self.entries:
            if number not in self.used_entries and not skipped(entry.code):
                target = f" in {entry.name}" if entry.name else ""
                reason = (_unused_reason(entry.code) if not suppressible(entry.code)
                          else f"no {entry.code} diagnostic{target}")
                report.add(codes.UNUSED_SUPPRESSION, f"Mesh.suppress entry {number} suppresses nothing: {reason}",
                           sources.locate(self.graph.mesh_origin, "suppress", number))
