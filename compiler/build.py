"""The build driver: load -> link -> analyse -> emit. Used by every command."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from compiler import codes
from compiler.diagnostics import Report
from compiler.graph import MeshGraph
from compiler.loader import SourceTable, WorktreeSource, load
from targets import REGISTRY, Artifact
from targets import load as load_target


@dataclass
class Compiled:
    graph: MeshGraph | None
    sources: SourceTable
    report: Report


def compile_mesh(root: Path, *, ref: str | None = None, skip_dirs: tuple[Path, ...] = (),
                 analyse: bool = True) -> Compiled:
    """Load, link and (by default) analyse the mesh at root; never raises for user errors."""
    report = Report()
    if ref is not None:
        from compiler.gitsource import GitError, GitSource

        try:
            source = GitSource(root, ref)
        except GitError as error:
            report.add(codes.GIT_REVISION, str(error), None)
            return Compiled(None, SourceTable(), report)
    else:
        source = WorktreeSource(root, skip_dirs)
    loaded = load(source, report)
    from compiler.linker import link

    graph = link(loaded, report) if not report.has_errors else None
    if graph is not None and analyse:
        from policies import analyse as run_checks

        run_checks(graph, report)
    return Compiled(graph, loaded.sources, report)


def emit(graph: MeshGraph, report: Report, targets: list[str] | None = None,
         workloads: frozenset[str] | None = None) -> list[Artifact]:
    """Artifacts of the named targets (default: all), sorted by path; only `workloads` if given."""
    artifacts: list[Artifact] = []
    for name in targets or sorted(REGISTRY):
        artifacts.extend(load_target(name).emit(graph, report, workloads))
    return sorted(artifacts, key=lambda a: a.path)
