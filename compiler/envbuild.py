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
            _, names = found.setdefault(key, (d, []))
            if environment not in names:
                names.append(environment)
    for diagnostic, names in found.values():
        labelled_message = f"[{', '.join(names)}] {diagnostic.message}"
        combined.diagnostics.append(dataclasses.replace(diagnostic, message=labelled_message,
                                                        environments=tuple(names)))
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
                       wanted: tuple[str, ...], *, targets: tuple[str, ...], chosen: list[str], ref: str | None,
                       fail_on: Severity, check_only: bool, changed_since: str | None,
                       stages: Stages) -> BuildOutcome:
    """compiler.build.build_mesh of a mesh with environments."""
    from compiler.build import BuildOutcome, Compiled, compile_mesh, drift, emit
    from compiler.loader import Revision
    from compiler.manifest import ArtifactRecord, Manifest, read_manifest
    from compiler.writer import OutputError, read_tree, render_tree, write_tree

    names = chosen_environments(declared, wanted)
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

            notes: list = []
            plan = _incremental_plan(root, changed_since, graph, ref, out_dir / environment, chosen, notes,
                                     environment=environment)
            outcome.notes.extend(
                dataclasses.replace(note, text=note.text.replace("meshc: ", f"meshc: [{environment}] ", 1))
                for note in notes)
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
    records = [record.model_copy(update={"path": f"{b.environment}/{record.path}"})
               for b in built for record in b.records]
    keep = {f"{b.environment}/{record.path}" for b in built for record in b.kept}
    graph = built[0].compiled.graph if built else None
    revision = graph.revision if graph is not None else Revision(None, True, None)
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
        others = [] if previous is None else sorted(
            e for e in set(previous.environments or ()) - set(names) if declared is not None and e in declared.names)
        for other in others:
            assert previous is not None
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


# --------------------------------------------------------------------------------------------
# meshc explain-value


class ValueNotFound(Exception):
    """explain-value names a document or field that is not there (exit 1, the message says why)."""


def parse_field(text: str) -> list[str | int]:
    """`rules[0].to[1].weight` or `ports[http].port` as path parts: ints index a list, other
    bracketed words name an item of a keyed list by its key."""
    import re

    parts: list[str | int] = []
    for match in re.finditer(r"([^.\[\]]+)|\[([^\]]*)\]", text):
        word, bracketed = match.groups()
        if word is not None:
            parts.append(word)
        else:
            parts.append(int(bracketed) if bracketed.isdigit() else f"[{bracketed}]")
    return parts


def _resolve(data: object, parts: list[str | int]) -> tuple:
    """The path in the data that `parts` name, an item `[key]` by the value of its key field."""
    from compiler.environments import OTHER_LIST_KEYS

    node, path = data, list[str | int]()
    for part in parts:
        if isinstance(part, str) and part.startswith("[") and isinstance(node, list):
            wanted = part[1:-1]
            keys = ("name", *OTHER_LIST_KEYS.values())
            index = next((i for i, item in enumerate(node)
                          if isinstance(item, dict) and any(str(item.get(k)) == wanted for k in keys)), None)
            if index is None:
                return (*path, part)
            part = index
        path.append(part)
        present = (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node))
        if not present:
            return tuple(path)
        node = node[part]  # type: ignore[index]  # a dict or a list here, as tested above
    return tuple(path)


@dataclasses.dataclass(frozen=True)
class ValueStep:
    role: str  # "base" or "overlay <folder>" or "deleted by overlay"
    location: object  # compiler.diagnostics.Location
    value: object
    line: str | None


@dataclasses.dataclass(frozen=True)
class ValueChain:
    environment: str
    document: str  # Kind namespace/name
    field: str
    value: object  # the merged value (None when deleted or unset)
    state: str  # "set", "deleted" or "unset"
    steps: tuple[ValueStep, ...]

    def text(self) -> str:
        import json

        def shown(value: object) -> str:
            return json.dumps(value, sort_keys=True, ensure_ascii=False)

        head = f"{self.environment}: {self.document} {self.field}"
        lines = [f"{head} = {shown(self.value)}" if self.state == "set" else
                 f"{head}: " + ("deleted in this environment" if self.state == "deleted"
                                else "not set (its default applies)")]
        for index, step in enumerate(self.steps):
            last = index == len(self.steps) - 1 and self.state == "set"
            mark = "the value" if last else ("deletes it" if step.role.startswith("deleted") else "overridden")
            lines.append(f"  {step.role:<30} {step.location}  {shown(step.value)}  ({mark})")
            if step.line is not None:
                lines.append(f"  {'':<30} | {step.line.strip()}")
        return "\n".join(lines) + "\n"

    def json(self) -> str:
        import json

        return json.dumps({"environment": self.environment, "document": self.document, "field": self.field,
                           "state": self.state, "value": self.value,
                           "chain": [{"role": s.role, "location": str(s.location), "value": s.value}
                                     for s in self.steps]}, indent=2, sort_keys=True) + "\n"


def explain_value(root: Path, environment: str, document: str, field: str, *, ref: str | None = None) -> ValueChain:
    """Where the value of FIELD of DOCUMENT (`Kind/name` or `Kind/namespace/name`) comes from in
    `environment`: the base line and every overlay line that set it, in order. Raises
    UnknownEnvironment, or ValueNotFound for a document or field that is not there."""
    from compiler import DEFAULT_OUTPUT
    from compiler.environments import PATCH, Layer, MergedDocument, describe, identity_of
    from compiler.loader import declared_environments, load
    from compiler.model import KIND_MODELS, NAMESPACED_KINDS

    source = mesh_source(root, ref, (root / DEFAULT_OUTPUT,))
    if source is None:
        raise ValueNotFound(f"cannot read the revision {ref}")
    declared = declared_environments(source)
    chosen_environments(declared, (environment,))
    kind, _, rest = document.partition("/")
    if kind not in KIND_MODELS or not rest:
        raise ValueNotFound(f"{document!r} is not Kind/name or Kind/namespace/name "
                            f"(kinds: {', '.join(KIND_MODELS)})")
    namespace, _, name = rest.rpartition("/")
    wanted = (kind, (namespace or declared.default_namespace) if kind in NAMESPACED_KINDS else None, name)
    loaded = load(source, Report(), environment=environment)
    found = next(((file, doc) for (file, _), doc in loaded.sources.documents.items()
                  if identity_of(doc.data, declared.default_namespace) == wanted), None)
    if found is None:
        raise ValueNotFound(f"{environment} has no {describe(wanted)}")
    file, doc = found
    path = _resolve(doc.data, parse_field(field))
    sources = loaded.sources

    def step(role: str, layer: Layer) -> ValueStep:
        location = layer.location()
        value = _value_at(layer.document.data, layer.path)
        if isinstance(value, dict):  # what the layer set, without how it said so
            value = {k: v for k, v in value.items() if k != PATCH}
        return ValueStep(role, location, value, sources.line_text(location))

    def role(layer: Layer) -> str:
        return "base" if layer.file == file else f"overlay {layer.file.rsplit('/', 1)[0]}"

    if isinstance(doc, MergedDocument):
        if path in doc.chains:
            steps = tuple(step(role(layer), layer) for layer in doc.chain(path))
            return ValueChain(environment, describe(wanted), field, _value_at(doc.data, path), "set", steps)
        deletion = doc.deleted.get(path) or doc.deleted.get(_keyed_text(path, field))
        if deletion is not None:
            steps = (*(step(role(layer), layer) for layer in deletion.chain),
                     step(f"deleted by {role(deletion.by)}", deletion.by))
            return ValueChain(environment, describe(wanted), field, None, "deleted", steps)
    elif _present(doc.data, path):
        layer = Layer(file, doc, path)
        return ValueChain(environment, describe(wanted), field, _value_at(doc.data, path), "set",
                          (step("base", layer),))
    if not _is_field(doc.data, path):
        raise ValueNotFound(f"{describe(wanted)} has no field {field!r}")
    return ValueChain(environment, describe(wanted), field, None, "unset", ())


def _keyed_text(path: tuple, field: str) -> tuple:
    """How a deleted keyed item is recorded: its list's path and `key=value`."""
    parts = parse_field(field)
    if parts and isinstance(parts[-1], str) and parts[-1].startswith("["):
        from compiler.environments import OTHER_LIST_KEYS

        wanted = parts[-1][1:-1]
        return tuple(path[:-1]) + tuple(f"{k}={wanted}" for k in ("name", *OTHER_LIST_KEYS.values()))[:1]
    return path


def _present(data: object, path: tuple) -> bool:
    node = data
    for part in path:
        if (isinstance(node, dict) and part in node) or (
                isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)):
            node = node[part]
        else:
            return False
    return True


def _value_at(data: object, path: tuple) -> object:
    node = data
    for part in path:
        try:
            node = node[part]  # type: ignore[index]  # a dict or a list here, as tested above
        except (KeyError, IndexError, TypeError):
            return None
    return node


def _is_field(data: object, path: tuple) -> bool:
    """Whether the schema has a field at `path` (its parent present in the data)."""
    from compiler.fields import child_annotation, model_for_document

    annotation: object = model_for_document(data)
    node = data
    for part in path:
        annotation = child_annotation(annotation, node, part) if annotation is not None else None
        if annotation is None:
            return False
        if not _present(node, (part,)):
            return True
        node = node[part]  # type: ignore[index]  # a dict or a list here, as tested above
    return True


# --------------------------------------------------------------------------------------------
# meshc diff


def diff_plan(root: Path, base: str | None, head: str | None,
              wanted: tuple[str, ...]) -> list[tuple[tuple[str | None, str | None], tuple[str | None, str | None]]]:
    """The (revision, environment) pairs `meshc diff` compares: the two revisions in each
    environment the head declares (or the `wanted` ones; an environment the base revision does
    not declare yet is compared with the base as written), the two `wanted` environments with
    each other at the head, or the two revisions of a mesh without environments."""
    from compiler import DEFAULT_OUTPUT
    from compiler.loader import declared_environments

    skip = (root / DEFAULT_OUTPUT,)
    source = mesh_source(root, head, skip)
    declared = declared_environments(source) if source is not None else None
    if len(wanted) > 2:
        raise UnknownEnvironment("give one --env to compare two revisions in it, or two to compare the two")
    if len(wanted) == 2:
        first, second = chosen_environments(declared, wanted) if wanted[0] != wanted[1] else (wanted[0], wanted[1])
        return [((head, first), (head, second))]
    names = chosen_environments(declared, wanted)
    if not names:
        return [((base, None), (head, None))]
    base_source = mesh_source(root, base, skip)
    at_base = declared_environments(base_source).names if base_source is not None else []
    return [((base, name if name in at_base else None), (head, name)) for name in names]
