"""The build driver: load -> link -> analyse -> emit -> write. Used by every command.

compile_mesh is the front end every command shares; build_mesh is all of `meshc build`
(the incremental plan, running the targets, finishing suppressions, writing or comparing
the output directory) so that the CLI only parses options and prints.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections import Counter
from collections.abc import Container
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from compiler import DEFAULT_OUTPUT, codes
from compiler.artifact import Artifact
from compiler.diagnostics import Report
from compiler.graph import MeshGraph
from compiler.loader import Loaded, Revision, SourceTable, WorktreeSource, declared_environments, load
from compiler.stages import Stages
from targets import REGISTRY
from targets import load as load_target

if TYPE_CHECKING:
    from compiler.cache import CheckCache
    from compiler.codes import Severity
    from compiler.loader import FileCache, FileSource
    from compiler.suppress import Suppressor


@dataclass
class Compiled:
    graph: MeshGraph | None
    sources: SourceTable
    report: Report
    loaded: Loaded | None = None  # the intents as read: `meshc test` runs the RouteTests among them
    suppressor: Suppressor | None = None
    drift: Drift | None = None  # check_mesh(compare_with=...) only
    loaded_clean: bool = True  # loading reported no error: the graph holds every intent written
    linked_clean: bool = True  # neither loading nor linking reported an error

    def filter_suppressed(self) -> None:
        """Drop suppressed diagnostics reported so far (call after each stage that reports)."""
        if self.suppressor is not None:
            self.suppressor.filter(self.report)

    def finish(self, *, targets_ran: bool) -> None:
        """Filter once more and report the suppressions that suppressed nothing."""
        if self.suppressor is not None:
            self.suppressor.filter(self.report)
            if self.linked_clean:  # otherwise checks that did not run would call suppressions unused
                self.suppressor.report_unused(self.report, targets_ran=targets_ran)
            self.suppressor = None


def compile_mesh(root: Path, *, ref: str | None = None, skip_dirs: tuple[Path, ...] = (),
                 analyse: bool = True, finish: bool = True, stages: Stages | None = None,
                 source: FileSource | None = None, cache: FileCache | None = None,
                 environment: str | None = None) -> Compiled:
    """Load, link and (by default) analyse the mesh at root; never raises for user errors.

    Errors in one stage do not hide the next one's (docs/cli.md, "Errors in stages"): what
    validated is linked, a reference to a document that failed validation resolves to it
    without an "unknown" error, and each check runs when every kind it reads is complete (no
    document of it left out by an error), so no check reports the holes again. Suppressions
    are applied to what analysis reported; with `finish=False` the caller runs the targets and
    then calls Compiled.finish(). `source` replaces the working tree at root; `cache` serves
    unchanged files (compiler.cache). With `environment`, its overlays apply to the base
    (compiler.environments)."""
    report = Report()
    if ref is not None:
        from compiler.gitsource import GitError, GitSource

        try:
            source = GitSource(root, ref, skip_dirs)
        except GitError as error:
            report.add(codes.GIT_REVISION, str(error), None)
            return Compiled(None, SourceTable(), report)
    elif source is None:
        source = WorktreeSource(root, skip_dirs)
    stages = stages or Stages()
    with stages.stage("load") as counted:
        loaded = load(source, report, cache, environment)
        counted.append(f"{len(loaded.sources.texts)} files, {len(loaded.intents)} intents")
    from compiler.linker import link

    loaded_clean = not report.has_errors
    with stages.stage("link") as counted:
        graph = link(loaded, report)
        if graph is not None:
            counted.append(f"{len(graph.services)} services")
    compiled = Compiled(graph, loaded.sources, report, loaded, loaded_clean=loaded_clean,
                        linked_clean=not report.has_errors)
    if graph is not None and analyse:
        from policies.registry import analyse as run_checks

        # an environment's intents are not its files' alone (its overlays): no results kept
        known = cache.known_checks(loaded) if cache is not None and environment is None else None
        with stages.stage("analyse") as counted:
            skipped = run_checks(graph, report, incomplete=incomplete_kinds(loaded, graph), known=known)
            if known is not None:
                known.keep()
            counted.append(f"{len(report.diagnostics)} diagnostics"
                           + (f", {len(skipped)} checks not run over incomplete kinds" if skipped else ""))
        from compiler.suppress import Suppressor

        compiled.suppressor = Suppressor(loaded, graph, report.line_suppressions)
        compiled.filter_suppressed()
        if finish:
            compiled.finish(targets_ran=False)
    return compiled


# Policies judge each object on its own: one Policy left out does not change another's verdict;
# each Patch is listed on its own.
_INDEPENDENT_KINDS = frozenset({"Policy", "Patch"})


def incomplete_kinds(loaded: Loaded, graph: MeshGraph) -> frozenset[str]:
    """The intent kinds the graph lacks objects of: documents that failed validation, intents
    that failed to link, and every kind when some file or document could not be read."""
    from policies.check import KINDS

    if loaded.unread:
        return frozenset(KINDS)
    written = Counter(intent.kind for intent in loaded.intents)
    linked = {"Service": len(graph.services), "ExternalService": len(graph.externals), "Route": len(graph.routes),
              "Gateway": len(graph.gateways), "AccessPolicy": len(graph.access_policies),
              "Policy": len(graph.policies), "Patch": len(graph.patches)}
    kinds = {document.kind for document in loaded.invalid}
    kinds |= {kind for kind, count in linked.items() if count < written[kind]}
    if written["Mesh"] > 1 or len(graph.platforms) < len(graph.mesh.platforms):
        kinds.add("Mesh")
    return frozenset(kinds - _INDEPENDENT_KINDS)


def check_mesh(root: Path, *, ref: str | None = None, stages: Stages | None = None,
               source: FileSource | None = None, cache: FileCache | None = None,
               compare_with: Path | None = None, environments: tuple[str, ...] = ()) -> Compiled:
    """`meshc check`: compile and analyse, then run every target and lay out the output tree in
    memory, writing nothing, so that whatever a build would refuse is reported here too: a
    mesh that checks clean builds (tests/test_hostile_agreement.py). `source` and `cache` as
    for compile_mesh. With `compare_with`, the tree laid out is also compared with that output
    directory, as `build --check` does (compiled.drift; None when the mesh has errors).
    A mesh with environments is checked in each of them (or in `environments`), each
    diagnostic labelled with the environments it was found in (compiler.envbuild)."""
    from compiler.envbuild import check_environments, mesh_source

    source = source or mesh_source(root, ref, (root / DEFAULT_OUTPUT,))
    declared = declared_environments(source) if source is not None else None
    if environments or (declared is not None and declared.environments):
        return check_environments(root, source, declared, environments, ref=ref, stages=stages or Stages(),
                                  cache=cache, compare_with=compare_with)
    files, compiled = check_one(root, ref=ref, stages=stages, source=source, cache=cache)
    if compare_with is not None and files is not None:
        from compiler.writer import read_tree

        compiled.drift = drift(files, read_tree(compare_with))
    return compiled


def check_one(root: Path, *, ref: str | None = None, stages: Stages | None = None,
              source: FileSource | None = None, cache: FileCache | None = None,
              environment: str | None = None) -> tuple[dict[str, bytes] | None, Compiled]:
    """check_mesh of one environment (or a mesh without any): the output tree laid out in
    memory (None when the mesh has errors) and what was compiled."""
    stages = stages or Stages()
    compiled = compile_mesh(root, ref=ref, skip_dirs=(root / DEFAULT_OUTPUT,), finish=False, stages=stages,
                            source=source, cache=cache, environment=environment)
    files = None
    graph = compiled.graph
    ran = graph is not None and not compiled.report.has_errors
    if graph is not None and ran:
        from compiler.writer import render_tree

        with stages.stage("emit") as counted:
            artifacts = emit(graph, compiled.report)
            counted.append(f"{len(artifacts)} artifacts (not written)")
        if not compiled.report.has_errors:
            # the revision only fills manifest.json, and is not compared: not worth reading git state for
            files = render_tree(artifacts, Revision(None, True, None), targets=sorted(REGISTRY))
    compiled.finish(targets_ran=ran)
    return files, compiled


# What one build may write (MESH013); checked after each target, so a build holds at most
# this much plus one target's artifacts.
MAX_OUTPUT_BYTES = 1024 * 1024 * 1024


def emit(graph: MeshGraph, report: Report, targets: list[str] | None = None,
         workloads: Container[str] | None = None, *, jobs: int | None = None) -> list[Artifact]:
    """Artifacts of the named targets (default: all), sorted by path; only `workloads` if given.
    None of them (and MESH013) when they exceed the output budget. A full emission of a large
    mesh runs in two processes (compiler.shards; `jobs` 1 or 2 decides instead), with the
    same result; an incremental one (`workloads`) runs in this process."""
    names = targets or sorted(REGISTRY)

    def emit_shard(shard_report: Report, shard: Container[str] | None) -> list[tuple[str, list[Artifact]]]:
        emitted: list[tuple[str, list[Artifact]]] = []
        size = 0
        for name in names:
            artifacts = load_target(name).emit(graph, shard_report, shard)
            emitted.append((name, artifacts))
            size += sum(len(artifact.content) for artifact in artifacts)
            if size > MAX_OUTPUT_BYTES:
                break  # the whole emission is over the budget too: the caller reports it
        return emitted

    from compiler import shards

    if workloads is None and (jobs or shards.wanted_jobs(len(graph.services) + len(graph.gateways))) > 1:
        for name in names:
            load_target(name)  # imported once, before the fork
        per_target = shards.emit_in_two(emit_shard, report)
    else:
        per_target = emit_shard(report, workloads)
    artifacts: list[Artifact] = []
    size = 0
    for _, emitted in per_target:
        artifacts.extend(emitted)
        size += sum(len(artifact.content) for artifact in emitted)
        if size > MAX_OUTPUT_BYTES:
            _report_output_budget([(a.sources, len(a.content)) for a in artifacts], size, graph, report)
            return []
    from compiler.patches import apply_patches

    checks = {name: getattr(load_target(name), "patch_problem", None) for name in names}
    artifacts = apply_patches(graph, artifacts, report, checks, workloads)  # last, on every target's data
    if graph.sources.environment is not None:
        artifacts = with_overlay_sources(artifacts, graph)
    return sorted(artifacts, key=lambda a: a.path)


def with_overlay_sources(artifacts: list[Artifact], graph: MeshGraph) -> list[Artifact]:
    """In an environment, an artifact compiled from a base file was compiled from the overlay
    files that changed that file's documents too: its `sources` name them."""
    return [dataclasses.replace(a, sources=graph.sources.with_overlays(a.sources)) for a in artifacts]


def _report_output_budget(artifacts: list[tuple[tuple[str, ...], int]], size: int, graph: MeshGraph,
                          report: Report) -> None:
    """MESH013 at the intent file that accounts for most of the output bytes of `artifacts`
    (their sources and sizes): each artifact's bytes are shared among its source files in
    proportion to their sizes (a sidecar that carries a Route of thousands of rules owes its
    size to the Route, not to its Service)."""
    from compiler.diagnostics import Location
    from compiler.loader import MESH_FILE

    share: dict[str, float] = {}
    for sources, length in artifacts:
        weights = {source: len(graph.sources.texts.get(source, "")) + 1 for source in sources}
        total = sum(weights.values())
        for source, weight in weights.items():
            share[source] = share.get(source, 0) + length * weight / total
    # mesh.yaml is a source of nearly everything: the cause is the heaviest other file
    candidates = sorted(source for source in share if source != MESH_FILE) or [MESH_FILE]
    cause = max(candidates, key=lambda source: share[source])
    mib = 1024 * 1024
    report.add(codes.OUTPUT_BUDGET,
               f"the artifacts would exceed the output budget of {MAX_OUTPUT_BYTES // mib} MiB "
               f"({size // mib} MiB after the targets emitted so far); about {int(share[cause]) // mib} MiB of them "
               "come from this file", Location(cause, 1, 1))


class ChangedSinceError(Exception):
    """`--changed-since REV` names no commit of the mesh's repository (a usage error)."""


@dataclass(frozen=True)
class Note:
    """A line for stderr about how the build went; `quiet` ones are dropped by --quiet."""

    text: str
    quiet: bool = True


@dataclass(frozen=True)
class Drift:
    """How the output directory differs from what a build would write (`build --check`)."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


@dataclass
class BuildOutcome:
    compiled: Compiled
    failed: bool  # the mesh did not compile, or reported something at --fail-on or above
    notes: list[Note]  # printed before the diagnostics
    written: int = 0  # files of the new output directory, manifest.json included
    kept: int | None = None  # files carried over by an incremental build (None: a full build)
    drift: Drift | None = None  # build --check only
    output_error: str | None = None  # the output directory could not be written as asked (nothing changed)


def build_mesh(root: Path, out_dir: Path, *, targets: tuple[str, ...] = (), ref: str | None = None,
               fail_on: Severity = "error", check_only: bool = False, changed_since: str | None = None,
               stages: Stages | None = None, environments: tuple[str, ...] = (),
               cache: CheckCache | None = None) -> BuildOutcome:
    """`meshc build`: compile, emit the targets (all when none are named), then write out_dir,
    or with `check_only` compare it. Raises compiler.writer.OutputError when out_dir cannot be
    replaced (checked before compiling: nothing is reported yet) and ChangedSinceError for an
    unknown revision; an output problem found after compiling is outcome.output_error.
    A mesh with environments builds each of them (or `environments`) into out_dir/<name>
    (compiler.envbuild); compiler.envbuild.UnknownEnvironment for one it does not declare.
    `cache` (compiler.cache, read-only) serves the unchanged files of a working tree."""
    from compiler.writer import OutputError, check_replaceable, read_tree, render_tree, write_tree

    if not check_only:
        check_replaceable(out_dir)  # before compiling: an output directory over the intents says so
    stages = stages or Stages()
    from compiler.envbuild import build_environments, mesh_source

    source = mesh_source(root, ref, (out_dir,))
    declared = declared_environments(source) if source is not None else None
    if environments or (declared is not None and declared.environments):
        return build_environments(root, out_dir, source, declared, environments, targets=targets,
                                  chosen=sorted(targets or REGISTRY), ref=ref, fail_on=fail_on, check_only=check_only,
                                  changed_since=changed_since, stages=stages)
    if cache is not None and ref is None:
        cache.begin(root)
    compiled = compile_mesh(root, ref=ref, skip_dirs=(out_dir,), finish=False, stages=stages,
                            cache=cache if ref is None else None)
    chosen = sorted(targets or REGISTRY)
    outcome = BuildOutcome(compiled, failed=True, notes=[])
    graph = compiled.graph
    if graph is None or compiled.report.fails(fail_on):
        compiled.finish(targets_ran=False)
        return outcome
    plan = _incremental_plan(root, changed_since, graph, ref, out_dir, chosen, outcome.notes) if changed_since else None
    if plan is None and not check_only:
        return _build_streamed(compiled, out_dir, chosen, every_target=not targets, fail_on=fail_on,
                               stages=stages, outcome=outcome)
    with stages.stage("emit") as counted:
        artifacts = emit(graph, compiled.report, chosen, plan.workloads if plan else None)
        counted.append(f"{len(artifacts)} artifacts")
    compiled.finish(targets_ran=bool(artifacts) and not targets and plan is None)
    if compiled.report.fails(fail_on):
        return outcome
    outcome.failed = False
    emitted = {a.path for a in artifacts}
    kept = [record for record in plan.kept if record.path not in emitted] if plan else []
    try:
        files = render_tree(artifacts, graph.revision, targets=chosen, kept=kept, inputs=compiled.sources.blob_ids)
        if check_only:
            outcome.drift = drift(files, read_tree(out_dir))
            return outcome
        with stages.stage("write") as counted:
            write_tree(out_dir, files, keep=frozenset(record.path for record in kept))
            counted.append(f"{len(files)} files")
    except OutputError as error:
        outcome.output_error = str(error)
        return outcome
    outcome.written = len(files)
    outcome.kept = len(kept) if plan else None
    return outcome


def _build_streamed(compiled: Compiled, out_dir: Path, chosen: list[str], *, every_target: bool,
                    fail_on: Severity, stages: Stages, outcome: BuildOutcome) -> BuildOutcome:
    """A full build: the workloads are emitted shard by shard and each shard's artifacts are
    written into the staging tree before the next shard is emitted, so memory tracks one shard,
    not the whole output; the tree is swapped in only when the build does not fail."""
    from compiler.manifest import MANIFEST, Manifest
    from compiler.writer import OutputError, StagedTree

    graph = compiled.graph
    assert graph is not None
    revision = graph.revision  # read before the staging tree appears beside the output (git status)
    try:
        with StagedTree(out_dir) as tree:
            with stages.stage("emit") as counted:
                records = _emit_streamed(graph, compiled.report, chosen, tree)
                counted.append(f"{len(records)} artifacts")  # written as they are emitted
            compiled.finish(targets_ran=bool(records) and every_target)
            if compiled.report.fails(fail_on):
                return outcome
            outcome.failed = False
            with stages.stage("write") as counted:
                manifest = Manifest.of_build(records, revision, targets=chosen, inputs=compiled.sources.blob_ids)
                tree.write(MANIFEST, manifest.to_json())
                tree.commit()
                counted.append(f"{tree.files} files")
    except OutputError as error:  # the output directory, not the mesh: exit 2, as after a whole emission
        outcome.failed = False
        outcome.output_error = str(error)
        return outcome
    outcome.written = tree.files
    return outcome


def _emit_streamed(graph: MeshGraph, report: Report, names: list[str], tree) -> list:
    """emit() into a StagedTree, shard by shard (compiler.shards.stream_shards); the manifest
    records of what was written, or none (and MESH013) when the output is over its budget."""
    from compiler import shards
    from compiler.manifest import MANIFEST, ArtifactRecord
    from compiler.patches import apply_patches
    from compiler.writer import OutputError
    from targets import release_shared

    count = shards.stream_shards(len(graph.services) + len(graph.gateways))
    records: list[ArtifactRecord] = []
    sizes: list[tuple[tuple[str, ...], int]] = []
    size = 0
    for index in range(count):
        shard = shards.WorkloadShard(index, count) if count > 1 else None
        for name in names:
            target = load_target(name)
            artifacts = sorted(target.emit(graph, report, shard), key=lambda a: a.path)
            # the Patches of this shard's workloads, as emit() applies them (compiler.patches)
            artifacts = apply_patches(graph, artifacts, report, {name: getattr(target, "patch_problem", None)}, shard)
            sizes.extend((artifact.sources, len(artifact.content)) for artifact in artifacts)
            size += sum(len(artifact.content) for artifact in artifacts)
            if size > MAX_OUTPUT_BYTES:
                _report_output_budget(sizes, size, graph, report)
                return []
            for artifact in artifacts:
                if artifact.path == MANIFEST:
                    raise OutputError(f"two artifacts claim {MANIFEST}")
                tree.write(artifact.path, artifact.content)
                records.append(ArtifactRecord.of(artifact))
        release_shared(graph)  # every target ships a workload's sidecar in that workload's shard
    return records


def _incremental_plan(root: Path, since: str, graph: MeshGraph, ref: str | None, out_dir: Path,
                      targets: list[str], notes: list[Note], environment: str | None = None):
    """The plan of `build --changed-since`, or None (a full build) with the reason in notes."""
    from compiler.affected import FullBuildNeeded, plan_incremental
    from compiler.gitsource import GitError

    try:
        plan = plan_incremental(root, since, graph, ref, out_dir, targets, (out_dir,), environment=environment)
    except GitError as error:
        raise ChangedSinceError(f"--changed-since: {error}") from None
    except FullBuildNeeded as reason:
        notes.append(Note(f"meshc: --changed-since {since}: {reason}; doing a full build", quiet=False))
        return None
    if plan.workloads is None:
        notes.append(Note(f"meshc: --changed-since {since}: the Mesh changed; rebuilding every workload"))
        return None
    notes.append(Note(f"meshc: {len(plan.changed_files)} intent file(s) changed since {plan.built_from[:12]}; "
                      f"re-emitting {len(plan.workloads)} workload(s)"))
    return plan


def drift(wanted: dict[str, bytes], present: dict[str, bytes]) -> Drift:
    """Files a build would add, remove and change; manifest.json is compared without what
    moves with no change to the artifacts (Manifest.comparable)."""
    from compiler.manifest import MANIFEST, ManifestError, parse_manifest

    def comparable(files: dict[str, bytes]) -> dict[str, bytes]:
        out = dict(files)
        for path in out:
            if path == MANIFEST or (path.endswith(f"/{MANIFEST}") and path.count("/") == 1):  # <env>/manifest.json
                with contextlib.suppress(ManifestError):  # not a manifest meshc wrote: it differs as it is
                    out[path] = parse_manifest(out[path]).comparable()
        return out

    wanted, present = comparable(wanted), comparable(present)
    return Drift(added=tuple(sorted(set(wanted) - set(present))),
                 removed=tuple(sorted(set(present) - set(wanted))),
                 changed=tuple(sorted(p for p in set(wanted) & set(present) if wanted[p] != present[p])))
