"""The build driver: load -> link -> analyse -> emit. Used by every command."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from compiler import codes
from compiler.artifact import Artifact
from compiler.diagnostics import Report
from compiler.graph import MeshGraph
from compiler.loader import Loaded, SourceTable, WorktreeSource, load
from targets import REGISTRY
from targets import load as load_target

if TYPE_CHECKING:
    from compiler.suppress import Suppressor


@dataclass
class Compiled:
    graph: MeshGraph | None
    sources: SourceTable
    report: Report
    loaded: Loaded | None = None
    suppressor: Suppressor | None = None

    def filter_suppressed(self) -> None:
        """Drop suppressed diagnostics reported so far (call after each stage that reports)."""
        if self.suppressor is not None:
            self.suppressor.filter(self.report)

    def finish(self, *, targets_ran: bool) -> None:
        """Filter once more and report the suppressions that suppressed nothing."""
        if self.suppressor is not None:
            self.suppressor.filter(self.report)
            self.suppressor.report_unused(self.report, targets_ran=targets_ran)
            self.suppressor = None


def compile_mesh(root: Path, *, ref: str | None = None, skip_dirs: tuple[Path, ...] = (),
                 analyse: bool = True, finish: bool = True) -> Compiled:
    """Load, link and (by default) analyse the mesh at root; never raises for user errors.

    Analysis runs only on a mesh that linked without errors: checks over a graph with holes
    would report the holes again. Suppressions are applied to what analysis reported; with
    `finish=False` the caller runs the targets and then calls Compiled.finish()."""
    report = Report()
    if ref is not None:
        from compiler.gitsource import GitError, GitSource

        try:
            source = GitSource(root, ref, skip_dirs)
        except GitError as error:
            report.add(codes.GIT_REVISION, str(error), None)
            return Compiled(None, SourceTable(), report)
    else:
        source = WorktreeSource(root, skip_dirs)
    loaded = load(source, report)
    from compiler.linker import link

    graph = link(loaded, report) if not report.has_errors else None
    compiled = Compiled(graph, loaded.sources, report, loaded)
    if graph is not None and analyse and not report.has_errors:
        from policies import analyse as run_checks

        run_checks(graph, report)
        from compiler.suppress import Suppressor

        compiled.suppressor = Suppressor(loaded, graph, report.line_suppressions)
        compiled.filter_suppressed()
        if finish:
            compiled.finish(targets_ran=False)
    return compiled


def emit(graph: MeshGraph, report: Report, targets: list[str] | None = None,
         workloads: frozenset[str] | None = None) -> list[Artifact]:
    """Artifacts of the named targets (default: all), sorted by path; only `workloads` if given."""
    artifacts: list[Artifact] = []
    for name in targets or sorted(REGISTRY):
        artifacts.extend(load_target(name).emit(graph, report, workloads))
    return sorted(artifacts, key=lambda a: a.path)
