"""`meshc diff`: what changes in the artifacts between two revisions of a mesh, and why.

Two views of one change, side by side: the artifacts themselves (compared per target and per
workload, with a unified diff of each changed file) and the intents that changed, each with
the proxies it reaches through the graph (compiler.affected). A Route change on a service
lists the sidecars of that service's callers, whether or not a registered target emits them.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from compiler.affected import IntentRef, Reach, graph_intents
from compiler.artifact import Artifact, is_proxy
from compiler.diagnostics import Location
from compiler.graph import MeshGraph
from compiler.loader import Revision
from compiler.render import printable
from compiler.serialize import to_json


@dataclass(frozen=True)
class FileChange:
    path: str
    target: str
    workload: str
    status: str  # added | removed | changed
    before: bytes | None
    after: bytes | None
    patches: tuple[str, ...] = ()  # the Patches that edited it (the head's; the base's for a removed file)

    def unified(self) -> list[str]:
        before = _lines(self.before)
        after = _lines(self.after)
        old = f"a/{self.path}" if self.before is not None else "/dev/null"
        new = f"b/{self.path}" if self.after is not None else "/dev/null"
        return list(difflib.unified_diff(before, after, old, new, lineterm=""))

    def counts(self) -> tuple[int, int]:
        """Lines added and removed."""
        lines = self.unified()[2:]
        return (sum(1 for ln in lines if ln.startswith("+")), sum(1 for ln in lines if ln.startswith("-")))


def _lines(content: bytes | None) -> list[str]:
    return [] if content is None else content.decode("utf-8", errors="replace").splitlines()


@dataclass(frozen=True)
class IntentChange:
    ref: IntentRef
    status: str  # added | removed | modified | moved (same content, another file)
    location: Location  # where the head version is, else where the base version was
    reaches: tuple[str, ...]  # workloads the graph says it reaches, sorted (see `everything`)
    everything: bool  # a Mesh change reaches every workload

    @property
    def proxies(self) -> tuple[str, ...]:
        return tuple(w for w in self.reaches if is_proxy(w))


@dataclass(frozen=True)
class MeshDiff:
    base: Revision
    head: Revision
    files: tuple[FileChange, ...]  # sorted by target, workload, path
    intents: tuple[IntentChange, ...]  # sorted by identity
    # the environment compiled on each side (a mesh with environments), else None
    environments: tuple[str | None, str | None] = (None, None)

    def side(self, index: int) -> str:
        """How one side is named: its revision, and its environment if it has one."""
        revision = describe_revision((self.base, self.head)[index])
        environment = self.environments[index]
        return f"{revision}, environment {environment}" if environment is not None else revision
    patched: tuple[Artifact, ...] = ()  # every artifact of the head a Patch edited, changed or not, by path

    def by_target(self) -> dict[str, dict[str, list[FileChange]]]:
        grouped: dict[str, dict[str, list[FileChange]]] = defaultdict(lambda: defaultdict(list))
        for change in self.files:
            grouped[change.target][change.workload].append(change)
        return {t: dict(w) for t, w in grouped.items()}


def compare_artifacts(base: list[Artifact], head: list[Artifact]) -> tuple[FileChange, ...]:
    before = {a.path: a for a in base}
    after = {a.path: a for a in head}
    changes = []
    for path in sorted(set(before) | set(after)):
        old, new = before.get(path), after.get(path)
        if old is not None and new is not None and old.content == new.content:
            continue
        status = "added" if old is None else "removed" if new is None else "changed"
        which = new if new is not None else before[path]
        changes.append(FileChange(path, which.target, which.workload, status,
                                  old.content if old else None, new.content if new else None, which.patches))
    return tuple(sorted(changes, key=lambda c: (c.target, c.workload, c.path)))


def _dump(model: Any) -> Any:
    return model.model_dump(mode="json")


def compare_intents(base: MeshGraph, head: MeshGraph) -> tuple[IntentChange, ...]:
    before, after = graph_intents(base), graph_intents(head)
    reach = Reach((base, head))
    changes = []
    for ref in sorted(set(before) | set(after)):
        old, new = before.get(ref), after.get(ref)
        if old is not None and new is not None:
            same_content = _dump(old[1]) == _dump(new[1])
            if same_content and old[2].file == new[2].file:
                continue
            status = "moved" if same_content else "modified"
        else:
            status = "added" if old is None else "removed"
        reached: set[str] = set()
        everything = False
        for side, graph in ((old, base), (new, head)):
            if side is None:
                continue
            found = reach.workloads(side[0], side[1], graph.mesh.defaultNamespace)
            if found is None:
                everything = True
            else:
                reached |= found
        _, _, origin = new if new is not None else before[ref]
        location = (head if new else base).sources.locate(origin, "name")
        changes.append(IntentChange(ref, status, location, tuple(sorted(reached)), everything))
    return tuple(changes)


def diff_meshes(base: MeshGraph, head: MeshGraph, base_artifacts: list[Artifact],
                head_artifacts: list[Artifact], environments: tuple[str | None, str | None] = (None, None)) -> MeshDiff:
    return MeshDiff(base.revision, head.revision, compare_artifacts(base_artifacts, head_artifacts),
                    compare_intents(base, head), environments,
                    patched=tuple(a for a in sorted(head_artifacts, key=lambda a: a.path) if a.patches))


# ------------------------------------------------------------------------------------------
# Output


def describe_revision(revision: Revision) -> str:
    if revision.ref is not None:
        ref = printable(revision.ref)
        return f"{ref} ({revision.commit[:12]})" if revision.commit else ref
    state = "dirty" if revision.dirty else "clean"
    return f"working tree ({state}, on {revision.commit[:12]})" if revision.commit else f"working tree ({state})"


def _workload_line(target: str, workload: str, changes: list[FileChange]) -> str:
    counts = {s: sum(1 for c in changes if c.status == s) for s in ("added", "removed", "changed")}
    files = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    plus = sum(c.counts()[0] for c in changes)
    minus = sum(c.counts()[1] for c in changes)
    return f"{target} {workload}: {files} (+{plus} -{minus})"


def _intent_lines(change: IntentChange) -> list[str]:
    # a file name may hold a line break: printed escaped, it cannot end the code fence the
    # Action puts around this text, nor start a line of its own
    lines = [f"{change.status} {change.ref} ({printable(str(change.location))})"]
    if change.everything:
        lines.append("  reaches every workload (the Mesh changed)")
    elif change.proxies:
        lines.append(f"  reaches proxies: {', '.join(change.proxies)}")
    else:
        lines.append("  reaches no proxy")
    return lines


def patched_by(patches: tuple[str, ...]) -> str:
    return "patched by " + ", ".join(f"Patch {name}" for name in patches)


def _patched_lines(diff: MeshDiff) -> list[str]:
    """The head's patched artifacts: a Patch is never invisible, changed or not (docs/cli.md)."""
    if not diff.patched:
        return []
    return ["", "patched (edited by Patches, outside the semantics):",
            *(f"  {a.path} ({a.target} {a.workload}): {patched_by(a.patches)}" for a in diff.patched)]


def render_text(diff: MeshDiff, *, stat: bool = False) -> str:
    out = [f"meshc diff {diff.side(0)} -> {diff.side(1)}"]
    if not diff.files and not diff.intents:
        out.append("no changes")
        out.extend(_patched_lines(diff))
        return "\n".join(out) + "\n"
    if diff.intents:
        out.append("")
        out.append("intents:")
        out.extend(f"  {line}" for change in diff.intents for line in _intent_lines(change))
    grouped = diff.by_target()
    out.append("")
    out.append("workloads:" if grouped else "workloads: no artifact changes")
    for target, workloads in sorted(grouped.items()):
        for workload, changes in sorted(workloads.items()):
            out.append(f"  {_workload_line(target, workload, changes)}")
    out.extend(_patched_lines(diff))
    if not stat:
        for target, workloads in sorted(grouped.items()):
            for workload, changes in sorted(workloads.items()):
                out.append("")
                out.append(f"== {_workload_line(target, workload, changes)}")
                for change in changes:
                    if change.patches:
                        out.append(f"{change.path}: {patched_by(change.patches)}")
                    out.extend(change.unified())
    return "\n".join(out) + "\n"


def _revision_json(revision: Revision, environment: str | None = None) -> dict:
    side = {"commit": revision.commit, "dirty": revision.dirty, "ref": revision.ref}
    if environment is not None:
        side["environment"] = environment
    return side


def render_json(diff: MeshDiff, *, stat: bool = False) -> bytes:
    targets: dict[str, dict] = {}
    for target, workloads in diff.by_target().items():
        targets[target] = {}
        for workload, changes in workloads.items():
            files = []
            for change in changes:
                added, removed = change.counts()
                entry: dict[str, Any] = {"path": change.path, "status": change.status,
                                         "linesAdded": added, "linesRemoved": removed}
                if change.patches:
                    entry["patches"] = list(change.patches)
                if not stat:
                    entry["diff"] = "\n".join(change.unified()) + "\n"
                files.append(entry)
            targets[target][workload] = {"files": files}
    intents = [
        {
            "kind": c.ref.kind,
            "name": c.ref.name,
            "status": c.status,
            "location": {"file": c.location.file, "line": c.location.line, "column": c.location.column},
            "reaches": list(c.reaches),
            "proxies": list(c.proxies),
            "reachesEverything": c.everything,
        }
        for c in diff.intents
    ]
    patched = [{"path": a.path, "target": a.target, "workload": a.workload, "patches": list(a.patches)}
               for a in diff.patched]
    return to_json({"base": _revision_json(diff.base, diff.environments[0]),
                    "head": _revision_json(diff.head, diff.environments[1]),
                    "intents": intents, "targets": targets, "patched": patched})
