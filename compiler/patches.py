"""Patches: the escape hatch, applied last to the targets' output (docs/intents.md, Patch).

A Patch names one target, one workload (a service's sidecar, a gateway's proxy, a platform's
shared files) and one object among that workload's artifacts: an Envoy bootstrap
(`EnvoyBootstrap`), a Cloud Foundry manifest (`CloudFoundryManifest`) or any object with an
apiVersion and a kind in the target's YAML files (Kubernetes objects, a kustomization, a vm's
WorkloadGroup). It edits it with an RFC 7396 merge patch or RFC 6902 JSON Patch operations.

Where it runs: in the emit stage, once every target has built its artifacts. A target writes
its data with compiler.serialize; the patched artifact is that data read back (orjson, or
PyYAML's safe loader: tests/test_serialize.py proves the serialisers round-trip), patched, and
written again by the same serialiser, so a patch value reaches the output only through the
JSON or YAML encoder, and an artifact no Patch names keeps its bytes. A patch edits objects
in artifacts a target emitted: it cannot add a file, remove one or write anywhere else.

Then the patched object is checked again (it stays an object, MESH236; MESH416 for an Envoy
bootstrap, MESH482 for a Kubernetes object; and whatever the target itself checks: a target module may define
`patch_problem(kind, before, after) -> (Code, message) | None`, as vm and cloudfoundry do for
what they wrote beside the object). Every Patch is listed by the analysis (MESH387, never
suppressed, policies/patches.py), and every artifact it edits names it (Artifact.patches). The semantics, the
reference evaluator and `meshc test` do not know what a patch does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass
from typing import Any

from compiler import codes
from compiler.artifact import Artifact
from compiler.codes import Code
from compiler.diagnostics import Report
from compiler.graph import MeshGraph, PatchNode
from compiler.jsonpatch import PatchFailure, apply_json_patch, apply_merge_patch, json_type
from compiler.serialize import to_json, to_yaml, to_yaml_documents

ENVOY_BOOTSTRAP = "EnvoyBootstrap"
CF_MANIFEST = "CloudFoundryManifest"


@dataclass
class _Decoded:
    """An artifact's documents as data, and how to write them back."""

    artifact: Artifact
    layout: str  # json | yaml | yaml-stream
    documents: list[Any]
    patches: list[PatchNode] = dataclasses.field(default_factory=list)

    def encode(self) -> bytes:
        if self.layout == "json":
            return to_json(self.documents[0])
        if self.layout == "yaml":
            return to_yaml(self.documents[0])
        return to_yaml_documents(self.documents)


def _decode(artifact: Artifact) -> _Decoded | None:
    """The artifact's data when it is structured (JSON, or YAML written by compiler.serialize)."""
    content = artifact.content
    if content[:1] in (b"{", b"["):
        import orjson

        return _Decoded(artifact, "json", [orjson.loads(content)])
    if not artifact.path.endswith((".yaml", ".yml")):
        return None  # text: shell scripts, units, READMEs are not patched
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    if content.startswith(b"---\n"):
        return _Decoded(artifact, "yaml-stream", list(yaml.load_all(content, Loader=loader)))
    return _Decoded(artifact, "yaml", [yaml.load(content, Loader=loader)])


@dataclass(frozen=True)
class _Identity:
    kind: str
    api_version: str | None = None
    name: str | None = None
    namespace: str | None = None

    def __str__(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace and self.name else self.name
        return f"{self.kind} {where}" if where else self.kind


def identity(target: str, path: str, layout: str, document: Any) -> _Identity | None:
    """What a Patch calls a document of an artifact, None for a document it cannot name."""
    if not isinstance(document, dict):
        return None
    if layout == "json" and isinstance(document.get("static_resources"), dict):
        return _Identity(ENVOY_BOOTSTRAP)
    if target == "cloudfoundry" and path.endswith("/manifest.yml") and "applications" in document:
        return _Identity(CF_MANIFEST)
    kind, api_version = document.get("kind"), document.get("apiVersion")
    if layout != "json" and isinstance(kind, str) and isinstance(api_version, str):
        metadata = document.get("metadata")
        metadata = metadata if isinstance(metadata, dict) else {}
        name, namespace = metadata.get("name"), metadata.get("namespace")
        return _Identity(kind, api_version, name if isinstance(name, str) else None,
                         namespace if isinstance(namespace, str) else None)
    return None


def _matches(node: PatchNode, found: _Identity) -> bool:
    wanted = node.spec.object
    return (wanted.kind == found.kind
            and all(getattr(wanted, field) in (None, getattr(found, attribute))
                    for field, attribute in (("apiVersion", "api_version"), ("name", "name"),
                                             ("namespace", "namespace"))))


# A target's own check of an object a Patch edited: (code, problem) or None.
TargetCheck = Callable[[str, dict, dict], "tuple[Code, str] | None"]


class _Patcher:
    def __init__(self, graph: MeshGraph, report: Report, checks: Mapping[str, TargetCheck | None]) -> None:
        self.graph = graph
        self.report = report
        self.checks = checks
        self.decoded: dict[int, _Decoded | None] = {}

    def at(self, node: PatchNode, *path: Any, key: bool = False):
        return self.graph.sources.locate(node.origin, *path, key=key)

    def documents(self, index: int, artifact: Artifact) -> _Decoded | None:
        if index not in self.decoded:
            self.decoded[index] = _decode(artifact)
        return self.decoded[index]

    def apply(self, node: PatchNode, candidates: list[tuple[int, Artifact]]) -> None:
        spec = node.spec
        if not candidates:
            self.report.add(codes.PATCH_NOT_APPLIED,
                            f"Patch {node.key}: target {spec.target} emits nothing for {node.workload}",
                            self.at(node, "target"))
            return
        offered: list[str] = []
        matches: list[tuple[_Decoded, int, _Identity]] = []
        for index, artifact in candidates:
            decoded = self.documents(index, artifact)
            if decoded is None:
                continue
            for position, document in enumerate(decoded.documents):
                found = identity(artifact.target, artifact.path, decoded.layout, document)
                if found is None:
                    continue
                offered.append(f"{found} ({artifact.path})")
                if _matches(node, found):
                    matches.append((decoded, position, found))
        if not matches or (len(matches) > 1 and spec.object.kind != ENVOY_BOOTSTRAP):
            problem = (f"matches {len(matches)} objects; name one with name, namespace or apiVersion" if matches
                       else "is not among them")
            shown = ", ".join(offered[:12]) + (f" and {len(offered) - 12} more" if len(offered) > 12 else "")
            self.report.add(codes.PATCH_NOT_APPLIED,
                            f"Patch {node.key}: {spec.target} emits {shown or 'no patchable object'} for "
                            f"{node.workload}; the object {problem}", self.at(node, "object", key=True))
            return
        patched = []
        for decoded, position, found in matches:
            result = self.patched(node, decoded.documents[position])
            if result is None or not self.still_valid(node, decoded, decoded.documents[position], result, found):
                return  # all or nothing: no object of a failing patch is changed
            patched.append((decoded, position, found, result))
        for decoded, position, _, result in patched:
            decoded.documents[position] = result
            if node not in decoded.patches:
                decoded.patches.append(node)

    def patched(self, node: PatchNode, document: Any) -> Any | None:
        spec = node.spec
        try:
            if spec.jsonPatch is not None:
                return apply_json_patch(document, [op.as_operation() for op in spec.jsonPatch])
            return apply_merge_patch(document, spec.mergePatch)
        except PatchFailure as failure:
            where = ("jsonPatch", failure.index, failure.member) if failure.index is not None else ("mergePatch",)
            self.report.add(codes.PATCH_NOT_APPLIED, f"Patch {node.key}: {failure.message}",
                            self.at(node, *where, key=failure.index is None))
            return None

    def still_valid(self, node: PatchNode, decoded: _Decoded, before: Any, after: Any, found: _Identity) -> bool:
        """The offline checks of a patched object (docs/intents.md, Patch: what the build checks)."""
        where = self.at(node, "jsonPatch" if node.spec.jsonPatch is not None else "mergePatch", key=True)
        if not isinstance(after, dict):
            self.report.add(codes.PATCH_NOT_APPLIED, f"Patch {node.key} leaves {found} in {decoded.artifact.path} as a "
                            f"JSON {json_type(after)}, not an object", where)
            return False
        problem, code = None, codes.PATCHED_KUBERNETES_OBJECT
        if found.kind == ENVOY_BOOTSTRAP:
            problem, code = envoy_bootstrap_problem(after), codes.PATCHED_ENVOY_BOOTSTRAP
        elif found.kind != CF_MANIFEST:
            changed = identity(decoded.artifact.target, decoded.artifact.path, decoded.layout, after)
            if changed != found:
                problem = f"its identity becomes {changed or 'nothing a patch can name'}"
        check = self.checks.get(decoded.artifact.target)
        if problem is None and check is not None:
            code, problem = check(found.kind, before, after) or (code, None)
        if problem is None:
            return True
        self.report.add(code, f"Patch {node.key} breaks {found} in {decoded.artifact.path}: {problem}", where)
        return False


def apply_patches(graph: MeshGraph, artifacts: list[Artifact], report: Report,
                  targets: Mapping[str, TargetCheck | None], workloads: Container[str] | None = None) -> list[Artifact]:
    """The artifacts with every Patch of the graph applied, in the order of the Patches'
    namespace and name: only Patches on the `targets` that ran (each with its own check of a
    patched object, if it has one) and, in an incremental build, on the `workloads` emitted. A
    patched artifact names the Patch's file among its sources."""
    if not graph.patches:
        return artifacts
    by_workload: dict[tuple[str, str], list[tuple[int, Artifact]]] = {}
    for index, artifact in enumerate(artifacts):
        by_workload.setdefault((artifact.target, artifact.workload), []).append((index, artifact))
    patcher = _Patcher(graph, report, targets)
    for node in graph.patches.values():
        if node.spec.target not in targets or (workloads is not None and node.workload not in workloads):
            continue
        patcher.apply(node, by_workload.get((node.spec.target, node.workload), []))
    out = list(artifacts)
    for index, decoded in patcher.decoded.items():
        if decoded is None or not decoded.patches:
            continue
        artifact = decoded.artifact
        out[index] = dataclasses.replace(
            artifact, content=decoded.encode(),
            sources=tuple(sorted({*artifact.sources, *(p.origin.file for p in decoded.patches)})),
            patches=tuple(sorted({*artifact.patches, *(str(p.key) for p in decoded.patches)})))
    return out


# ---------------------------------------------------------------------------------------------
# What the build checks of a patched object offline


def _named(items: Any, what: str) -> tuple[set[str] | None, str | None]:
    if not isinstance(items, list):
        return None, f"{what} is not a list"
    names: set[str] = set()
    for position, item in enumerate(items):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str):
            return None, f"{what}[{position}] has no string name"
        if name in names:
            return None, f"{what} names {name!r} twice"
        names.add(name)
    return names, None


def envoy_bootstrap_problem(bootstrap: dict) -> str | None:
    """What a patched bootstrap lacks of the shape meshc writes and reads (MESH416), or None."""
    resources = bootstrap.get("static_resources")
    if not isinstance(resources, dict):
        return "static_resources is not an object"
    _, problem = _named(resources.get("listeners", []), "static_resources.listeners")
    if problem is not None:
        return problem
    clusters, problem = _named(resources.get("clusters", []), "static_resources.clusters")
    if problem is not None or clusters is None:
        return problem
    for listener in resources.get("listeners", []):
        address = listener.get("address")
        socket = address.get("socket_address") if isinstance(address, dict) else None
        if not isinstance(socket, dict) or not isinstance(socket.get("port_value"), int):
            return f"listener {listener['name']!r} has no socket_address with a port_value"
    missing = sorted(_clusters_sent_to(resources.get("listeners", [])) - clusters)
    if missing:
        return f"a listener sends to cluster {missing[0]!r}, which is not among static_resources.clusters"
    return None


def _clusters_sent_to(listeners: Any) -> set[str]:
    """Every cluster named in the listeners: `cluster` members (routes, mirrors, tcp_proxy) and
    the names of weighted clusters."""
    found: set[str] = set()
    pending = [listeners]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            if isinstance(node.get("cluster"), str):
                found.add(node["cluster"])
            weighted = node.get("weighted_clusters")
            if isinstance(weighted, dict) and isinstance(weighted.get("clusters"), list):
                found.update(c["name"] for c in weighted["clusters"] if isinstance(c, dict)
                             and isinstance(c.get("name"), str))
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return found
