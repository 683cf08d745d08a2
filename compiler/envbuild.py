"""Checking and building a mesh with environments (docs/cli.md, "Environments").

Each environment is compiled on its own (the base with its overlays applied), and every
diagnostic is labelled with the environments it was found in. A build writes one output
directory holding a directory per environment, each a complete build with its own
manifest.json, and a top-level manifest.json that lists the environments and records every
artifact below them. `--env NAME` rebuilds that environment's directory and keeps the others
as they are; the whole tree is still replaced in one step, so it is never half written.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from compiler import MANIFEST
from compiler.diagnostics import Report
from compiler.environments import annotate_overrides
from compiler.loader import Declared, SourceTable

if TYPE_CHECKING:
    from compiler.build import BuildOutcome, Compiled
    from compiler.codes import Severity
    from compiler.loader import FileCache, FileSource
    from compiler.stages import Stages


class UnknownEnvironment(Exception):
    """`--env` names an environment the mesh does not declare (a usage error)."""


def mesh_source(root: Path, ref: str | None, skip_dirs: tuple[Path, ...]) -> FileSource | None:
    """The files of the mesh at root (at `ref`), or None when the revision cannot be read
    (compile_mesh reports it)."""
    from compiler.loader import WorktreeSource

    if ref is None:
        return WorktreeSource(root, skip_dirs)
    from compiler.gitsource import GitError, GitSource

    try:
        return GitSource(root, ref, skip_dirs)
    except GitError:
        return None


def chosen_environments(declared: Declared | None, wanted: tuple[str, ...]) -> list[str]:
    """The environments to compile: `wanted` (each declared, else UnknownEnvironment), or every
    declared one. Names come from the declaration, so each is a DNS-1123 label: a safe
    directory name, never `..` or a path."""
    names = declared.names if declared is not None else []
    for name in wanted:
        if name not in names:
            raise UnknownEnvironment(f"the mesh declares no environment {name!r} "
                                     f"(it declares: {', '.join(names) or 'none'})")
    return list(dict.fromkeys(wanted)) or names


def labelled(reports: list[tuple[str, Report]]) -> Report:
    """One report of several environments' reports: each diagnostic once, its message starting
    with the environments it was found in (`[staging, prod] ...`)."""
    combined = Report()
    found: dict[tuple, tuple] = {}
    for environment, report in reports:
        combined.line_suppressions.update(report.line_suppressions)
        for d in report.diagnostics:
            key = (d.code.code, d.message, d.location, d.severity, d.related, d.hint, d.fix)
            first, names = found.setdefault(key, (d, []))
            if environment not in names:
                names.append(environment)
    for diagnostic, names in found.values():
        combined.diagnostics.append(dataclasses.replace(diagnostic, message=f"[{', '.join(names)}] {diagnostic.message}"))
    return combined


def _texts(tables: list[SourceTable]) -> SourceTable:
    combined = SourceTable()
    for table in tables:
        combined.texts.update(table.texts)
        combined.blob_ids.update(table.blob_ids)
    return combined


def prefixed(environment: str, files: dict[str, bytes]) -> dict[str, bytes]:
    return {f"{environment}/{path}": content for path, content in files.items()}


def check_environments(root: Path, source: FileSource | None, declared: Declared | None, wanted: tuple[str, ...],
                       *, ref: str | None, stages: Stages, cache: FileCache | None,
                       compare_with: Path | None) -> Compiled:
    """check_mesh in each environment (compiler.build.check_mesh)."""
    from compiler.build import Compiled, check_one, drift

    reports, tables, trees = [], [], {}
    for environment in chosen_environments(declared, wanted):
        files, compiled = check_one(root, ref=ref, stages=stages, source=source, cache=cache, environment=environment)
        annotate_overrides(compiled.report, compiled.sources)
        reports.append((environment, compiled.report))
        tables.append(compiled.sources)
        if files is not None:
            trees[environment] = files
    result = Compiled(None, _texts(tables), labelled(reports))
    if compare_with is not None and len(trees) == len(reports):
        from compiler.writer import read_tree

        present = read_tree(compare_with)
        wanted_files = {path: content for environment, files in trees.items()
                        for path, content in prefixed(environment, files).items()}
        result.drift = drift(wanted_files, {p: c for p, c in present.items() if p.split("/")[0] in trees})
    return result


@dataclasses.dataclass
class _Built:
    environment: str
    compiled: Compiled
    files: dict[str, bytes]
    records: list  # ArtifactRecord, paths below the environment's directory
    kept: list  # ArtifactRecord of files carried over by --changed-since


def build_environments(root: Path, out_dir: Path, source: FileSource | None, declared: Declared | None,
                       wanted: tuple[str, ...], *, targets: tuple[str, ...], ref: str | None, fail_on: Severity,
                       check_only: bool, changed_since: str | None, stages: Stages) -> BuildOutcome:
    """compiler.build.build_mesh of a mesh with environments."""
    from compiler.build import BuildOutcome, Compiled, compile_mesh, drift, emit
    from compiler.manifest import ArtifactRecord, Manifest, read_manifest
    from compiler.writer import OutputError, read_tree, render_tree, write_tree
    from targets import REGISTRY

    names = chosen_environments(declared, wanted)
    chosen = sorted(targets or REGISTRY)
    built: list[_Built] = []
    failed = False
    outcome = BuildOutcome(Compiled(None, SourceTable(), Report()), failed=True, notes=[])
    for environment in names:
        compiled = compile_mesh(root, ref=ref, skip_dirs=(out_dir,), finish=False, stages=stages, source=source,
                                environment=environment)
        graph = compiled.graph
        if graph is None or compiled.report.fails(fail_on):
            compiled.finish(targets_ran=False)
            failed = True
            built.append(_Built(environment, compiled, {}, [], []))
            continue
        plan = None
        if changed_since:
            from compiler.build import _incremental_plan

            plan = _incremental_plan(root, changed_since, graph, ref, out_dir / environment, chosen, outcome.notes,
                                     environment=environment)
        with stages.stage(f"emit {environment}") as counted:
            artifacts = emit(graph, compiled.report, chosen, plan.workloads if plan else None)
            counted.append(f"{len(artifacts)} artifacts")
        compiled.finish(targets_ran=bool(artifacts) and not targets and plan is None)
        failed |= compiled.report.fails(fail_on)
        emitted = {a.path for a in artifacts}
        kept = [record for record in plan.kept if record.path not in emitted] if plan else []
        files = render_tree(artifacts, graph.revision, targets=chosen, kept=kept, inputs=compiled.sources.blob_ids)
        records = [ArtifactRecord.of(a) for a in artifacts] + kept
        built.append(_Built(environment, compiled, files, records, kept))
    for item in built:
        annotate_overrides(item.compiled.report, item.compiled.sources)
    outcome.compiled = Compiled(None, _texts([b.compiled.sources for b in built]),
                                labelled([(b.environment, b.compiled.report) for b in built]))
    if failed:
        return outcome
    outcome.failed = False
    files = {path: content for b in built for path, content in prefixed(b.environment, b.files).items()}
    records = [record.model_copy(update={"path": f"{b.environment}/{record.path}"}) for b in built for record in b.records]
    keep = {f"{b.environment}/{record.path}" for b in built for record in b.kept}
    revision = built[0].compiled.graph.revision if built and built[0].compiled.graph else None
    try:
        if check_only:
            present = read_tree(out_dir)
            if not wanted:
                files[MANIFEST] = Manifest.of_build(records, revision, targets=chosen, environments=names).to_json()
            else:
                present = {p: c for p, c in present.items() if p.split("/")[0] in names}
            outcome.drift = drift(files, present)
            return outcome
        # the environments not rebuilt stay as the previous build left them
        previous = read_manifest(out_dir)
        others = sorted(set(previous.environments or ()) - set(names)
                        if previous is not None and previous.environments else set())
        others = [e for e in others if declared is not None and e in declared.names]
        for other in others:
            records.extend(r for r in previous.artifacts if r.path.split("/")[0] == other)
            keep |= {r.path for r in previous.artifacts if r.path.split("/")[0] == other}
            keep.add(f"{other}/{MANIFEST}")
        files[MANIFEST] = Manifest.of_build(records, revision, targets=chosen,
                                            environments=[*names, *others]).to_json()
        with stages.stage("write") as counted:
            write_tree(out_dir, files, keep=frozenset(keep))
            counted.append(f"{len(files)} files")
    except OutputError as error:
        outcome.output_error = str(error)
        return outcome
    outcome.written = len(files)
    outcome.kept = sum(len(b.kept) for b in built) if changed_since else None
    return outcome
