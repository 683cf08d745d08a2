"""Which workloads an intent change reaches, through the linked graph.

A workload is what runs an artifact: "service:<ns>/<name>" (a sidecar), "gateway:<ns>/<name>"
(a gateway proxy) or "platform:<name>" (platform-wide files). An intent reaches:

- Service S: S's sidecar; the sidecars of S's callers (they hold S's ports, versions,
  endpoints, mTLS, resilience and service account); the owners of every Route that sends
  traffic to S (a mesh Route's service and its callers, an ingress Route's gateway); when S
  names its `serviceAccount`, the services whose AccessPolicies name S (the account is their
  principal; without one it is S's name, which no edit of S changes).
- Route of service S: S itself and S's callers' sidecars; gateways whose Routes send to S.
  Ingress Route on gateway G: G's proxy.
- AccessPolicy of S: S's sidecar (inbound authorisation is the callee's); of a Gateway G: G.
- ExternalService E: the sidecars of E's callers.
- Gateway G: G's proxy; when G's account is not its name (a bound `deployment`, flavor
  gateway-api's `<gateway>-istio`), the services whose AccessPolicies name G.
- Patch: the one workload it names (a patch edits only that workload's artifacts).
- Policy: nothing (Policies only add diagnostics). Mesh: everything.

Every service or gateway reached also reaches its platform's platform-wide files. Both
sides of a change count: a Route that moved from service A to B reaches A's and B's callers.
The graphs given are searched together, so a removed service's callers are still found.

`meshc build --changed-since` re-emits what the changed intents reach and, besides, every
workload with an artifact compiled from a file whose intents changed: manifest.json records
each artifact's sources, so what a target reads needs no entry here (rebuilt_workloads).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from compiler.artifact import gateway_workload, platform_workload, service_workload
from compiler.graph import Key, MeshGraph
from compiler.linker import parse_ref
from compiler.loader import REFUSED, git_blob_id
from compiler.manifest import ArtifactRecord

EVERYTHING = None  # the answer for a Mesh change: every workload is reached


@dataclass(frozen=True, order=True)
class IntentRef:
    """Identity of one intent: kind plus "namespace/name" (or "name" for Mesh and Policy)."""

    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"


def intent_key(model: Any, default_namespace: str) -> Key:
    return Key(model.namespace or default_namespace, model.name)


def intent_ref(kind: str, model: Any, default_namespace: str) -> IntentRef:
    if kind in ("Mesh", "Policy"):
        return IntentRef(kind, model.name)
    return IntentRef(kind, str(intent_key(model, default_namespace)))


def graph_intents(graph: MeshGraph) -> dict[IntentRef, tuple[str, Any, Any]]:
    """Every intent of a linked graph: identity -> (kind, model, origin)."""
    out: dict[IntentRef, tuple[str, Any, Any]] = {
        IntentRef("Mesh", graph.mesh.name): ("Mesh", graph.mesh, graph.mesh_origin)
    }
    for kind, nodes in (
        ("Service", graph.services),
        ("ExternalService", graph.externals),
        ("Route", graph.routes),
        ("Gateway", graph.gateways),
        ("AccessPolicy", graph.access_policies),
        ("Patch", graph.patches),
    ):
        for key, node in nodes.items():
            out[IntentRef(kind, str(key))] = (kind, node.spec, node.origin)
    for name, policy in graph.policies.items():
        out[IntentRef("Policy", name)] = ("Policy", policy.spec, policy.origin)
    return out


class _Index:
    """Reverse edges of one graph, built once: who calls whom, which routes send where."""

    def __init__(self, graph: MeshGraph) -> None:
        self.graph = graph
        # destination service -> (owner kind, owner key) of every Route sending traffic to it
        self.route_senders: dict[Key, set[tuple[str, Key]]] = defaultdict(set)
        for route in graph.routes.values():
            owner = route.attachment()
            for rule in route.rules:
                targets = [*rule.destinations, *rule.mirrors]
                for target in targets:
                    self.route_senders[target.service].add(owner)
        # (principal kind, service or gateway) -> services whose AccessPolicies name it
        self.admitted_by: dict[tuple[str, Key], set[Key]] = defaultdict(set)
        for policy in graph.access_policies.values():
            for access in (*policy.allow, *policy.deny):
                for principal in access.principals:
                    if principal.kind in ("service", "gateway") and policy.service is not None:
                        self.admitted_by[(principal.kind, principal.key())].add(policy.service)


class Reach:
    """Answers "which workloads does this intent reach" over one or more graphs."""

    def __init__(self, graphs: Iterable[MeshGraph]) -> None:
        self.indexes = [_Index(g) for g in graphs]

    def callers(self, key: Key) -> set[Key]:
        return {c for index in self.indexes for c in index.graph.callers.get(key, ())}

    def senders(self, key: Key) -> set[tuple[str, Key]]:
        return {s for index in self.indexes for s in index.route_senders.get(key, ())}

    def admitting(self, kind: str, key: Key) -> set[Key]:
        return {s for index in self.indexes for s in index.admitted_by.get((kind, key), ())}

    def on_gateway_api(self, platform: str) -> bool:
        return any(getattr(index.graph.platforms.get(platform), "flavor", None) == "gateway-api"
                   for index in self.indexes)

    def platforms_of(self, kind: str, key: Key) -> set[str]:
        found: set[str] = set()
        for index in self.indexes:
            nodes = index.graph.services if kind == "service" else index.graph.gateways
            node = nodes.get(key)
            if node is not None:
                found.update(p.platform.name for p in getattr(node, "placements", ()))
                found.add(node.platform.name)
        return found

    def _service(self, key: Key, out: set[str]) -> None:
        out.add(service_workload(key))
        out.update(platform_workload(p) for p in self.platforms_of("service", key))

    def _gateway(self, key: Key, out: set[str]) -> None:
        out.add(gateway_workload(key))
        out.update(platform_workload(p) for p in self.platforms_of("gateway", key))

    def _traffic_to(self, key: Key, out: set[str]) -> None:
        """Everything that sends traffic to service or external `key`: callers and route owners."""
        for caller in self.callers(key):
            self._service(caller, out)
        for kind, owner in self.senders(key):
            if kind == "gateway":
                self._gateway(owner, out)
            else:
                self._service(owner, out)
                for caller in self.callers(owner):
                    self._service(caller, out)

    def workloads(self, kind: str, model: Any, default_namespace: str) -> set[str] | None:
        """The workloads one version of one intent reaches; EVERYTHING (None) for the Mesh."""
        if kind == "Mesh":
            return EVERYTHING
        out: set[str] = set()
        if kind == "Policy":
            return out
        key = intent_key(model, default_namespace)
        if kind == "Service":
            self._service(key, out)
            out.update(platform_workload(name) for name in model.platform_names())
            self._traffic_to(key, out)
            if model.serviceAccount is not None:
                for protected in self.admitting("service", key):
                    self._service(protected, out)
        elif kind == "ExternalService":
            self._traffic_to(key, out)
        elif kind == "Gateway":
            self._gateway(key, out)
            out.add(platform_workload(model.platform))
            if model.deployment is not None or self.on_gateway_api(model.platform):
                for protected in self.admitting("gateway", key):
                    self._service(protected, out)
        elif kind == "AccessPolicy":
            if model.service is not None:
                self._service(parse_ref(model.service, key.namespace), out)
            else:  # a gateway's clients: that gateway's configuration
                self._gateway(parse_ref(model.gateway, key.namespace), out)
        elif kind == "Patch":
            if model.platform is not None:
                out.add(platform_workload(model.platform))
            elif model.service is not None:
                out.add(service_workload(parse_ref(model.service, key.namespace)))
            else:
                out.add(gateway_workload(parse_ref(model.gateway, key.namespace)))
        elif kind == "Route":
            if model.service is not None:
                service = parse_ref(model.service, key.namespace)
                self._service(service, out)
                self._traffic_to(service, out)
            else:
                self._gateway(parse_ref(model.gateway, key.namespace), out)
        return out


# ------------------------------------------------------------------------------------------
# `meshc build --changed-since REV`: re-emit only what the changed intents reach


def rebuilt_workloads(records: Iterable[ArtifactRecord], touched: set[str], versions: Iterable[tuple[str, Any]],
                      default_namespace: str, head: MeshGraph) -> frozenset[str] | None:
    """The workloads an incremental build re-emits; None means every one.

    Neither is kept per target: every workload with an artifact whose recorded `sources`
    include a touched file (what the targets say they read, so a target that starts reading
    another kind needs no change here), and what the graph says the changed intent versions
    reach (Reach.workloads): what a new intent reaches, which no earlier artifact could
    have recorded, and the platform-wide files a set of services makes.
    """
    reach = Reach([head])
    out = {record.workload for record in records if not touched.isdisjoint(record.sources)}
    for kind, model in versions:
        reached = reach.workloads(kind, model, default_namespace)
        if reached is EVERYTHING:
            return EVERYTHING
        out |= reached
    return frozenset(out)


class FullBuildNeeded(Exception):
    """The output directory cannot be updated incrementally; the message says why."""


@dataclass(frozen=True)
class IncrementalPlan:
    built_from: str  # the commit the output directory was built from
    changed_files: tuple[str, ...]  # intent files that differ between built_from and the head
    workloads: frozenset[str] | None  # to emit; None: every workload (the Mesh changed)
    kept: tuple[ArtifactRecord, ...]  # records of files carried over byte-identical


def _file_ids(source) -> dict[str, str]:
    blobs = getattr(source, "blobs", None)
    if blobs is not None:
        return {path: blob.hexsha for path, blob in blobs.items()}
    return {path: git_blob_id(source.read(path)) for path, size in source.files() if size != REFUSED}


class _RecordedInputs:
    """The intent files an earlier build read, by the blob ids its manifest.json recorded, read
    back from the repository's object store (plan_incremental uses it only once it knows they
    are there: they are the intents of a commit)."""

    def __init__(self, repo, inputs: dict[str, str]) -> None:
        self.repo = repo
        self.inputs = inputs
        self.sizes = {path: repo.odb.info(bytes.fromhex(sha)).size for path, sha in inputs.items()}

    def files(self):
        return iter(sorted(self.sizes.items()))

    def read(self, path: str) -> bytes:
        return self.repo.odb.stream(bytes.fromhex(self.inputs[path])).read()

    def revision(self):
        from compiler.loader import Revision

        return Revision(None, True, None)


class _Subset:
    """A FileSource restricted to some paths (plus mesh.yaml, which every load needs)."""

    def __init__(self, source, paths: set[str]) -> None:
        self.source = source
        self.paths = paths

    def files(self):
        return ((p, size) for p, size in self.source.files() if p in self.paths or p == "mesh.yaml")

    def read(self, path: str) -> bytes:
        return self.source.read(path)

    def revision(self):
        return self.source.revision()


def _same(old: Any, new: Any) -> bool:
    return old.model_dump(mode="json") == new.model_dump(mode="json")


def plan_incremental(root, since: str, head: MeshGraph, head_ref: str | None, out_dir,
                     targets: list[str], skip_dirs: tuple = (), *, environment: str | None = None) -> IncrementalPlan:
    """What to re-emit so that out_dir ends up equal to a full build of the head.

    out_dir must hold a complete, unmodified build by this meshc, of every target asked for,
    made from exactly the intents of `since` (its manifest.json records the blob id of every
    intent file read, so a build of a dirty tree committed with its artifacts counts) or from
    a clean checkout of `since` or a later commit; otherwise FullBuildNeeded says why. The
    intents compared are the ones out_dir was made from against the head.
    Raises compiler.gitsource.GitError when `since` does not name a commit.
    With `environment`, out_dir is that environment's build and the intents compared are
    merged with its overlays: a base change reaches every environment, an overlay change its
    own (the intents it changes live in base files, so then every intent is compared).
    """
    import hashlib

    from compiler import __version__
    from compiler.diagnostics import Report
    from compiler.gitsource import GitError, GitSource, resolve
    from compiler.loader import FileSource, WorktreeSource, load
    from compiler.manifest import MAX_OUTPUT_FILE_BYTES, read_build_file, read_manifest

    repo, since_commit = resolve(root, since)
    previous = read_manifest(out_dir)
    if previous is None:
        raise FullBuildNeeded(f"{out_dir} holds no readable manifest.json from an earlier build")
    built_from = previous.source.commit
    if previous.meshc != __version__:
        raise FullBuildNeeded(f"{out_dir} was built by meshc {previous.meshc}, not {__version__}")
    inputs = previous.inputs
    missing = sorted(set(targets) - previous.built_targets())
    if missing:
        raise FullBuildNeeded(f"{out_dir} holds no build of target(s) {', '.join(missing)}")
    if inputs is not None and inputs == _file_ids(GitSource(root, since, skip_dirs)):
        # built from exactly the intents of `since`, committed or not (or outside git) when it was built
        built_from = built_from or since_commit.hexsha
    elif not built_from or previous.source.dirty:
        raise FullBuildNeeded(f"{out_dir} was built from a working tree with uncommitted changes, "
                              f"not from the intents of {since}")
    else:
        try:
            _, built_commit = resolve(root, built_from)
        except GitError:
            raise FullBuildNeeded(f"{out_dir} was built from commit {built_from[:12]}, "
                                  "which this repository lacks") from None
        if not repo.is_ancestor(since_commit, built_commit):
            raise FullBuildNeeded(f"{out_dir} was built from {built_from[:12]}, which does not contain {since}")

    base_source: FileSource
    if inputs is not None:
        base_source = _RecordedInputs(repo, inputs)
        before = dict(inputs)
    else:
        base_source = GitSource(root, built_from, skip_dirs)
        before = _file_ids(base_source)
    head_source = GitSource(root, head_ref, skip_dirs) if head_ref is not None else WorktreeSource(root, skip_dirs)
    after = _file_ids(head_source)
    changed = {p for p in set(before) | set(after) if before.get(p) != after.get(p)}
    compared = changed
    if environment is not None:
        from compiler.loader import declared_environments, in_folders

        folders = [f for e in declared_environments(head_source).environments if e.name == environment
                   for f in e.folders()]
        overlay_files = {p for p in set(before) | set(after) if in_folders(p, folders)}
        compared = (set(before) | set(after)) if changed & overlay_files else changed | overlay_files

    base = load(_Subset(base_source, compared), Report(), environment=environment)
    base_mesh = next((i.model for i in base.intents if i.kind == "Mesh"), None)
    kept: list[ArtifactRecord] = []
    if base_mesh is None or not _same(base_mesh, head.mesh):
        return IncrementalPlan(built_from, tuple(sorted(changed)), EVERYTHING, ())

    namespace = head.mesh.defaultNamespace
    old_versions = {intent_ref(i.kind, i.model, namespace): (i.kind, i.model, i.origin.file)
                    for i in base.intents if i.origin.file in compared and i.kind != "Mesh"}
    new_versions = {ref: (kind, model, origin.file) for ref, (kind, model, origin) in graph_intents(head).items()
                    if origin.file in compared and kind != "Mesh"}
    versions: list[tuple[str, Any]] = []
    touched: set[str] = set()  # files where an intent was added, removed, moved or modified
    for ref in set(old_versions) | set(new_versions):
        old, new = old_versions.get(ref), new_versions.get(ref)
        # an intent in another file changes its artifacts too: they name the files they came from
        if old and new and old[2] == new[2] and _same(old[1], new[1]):
            continue
        for version in (old, new):
            if version is not None:
                versions.append((version[0], version[1]))
                touched.add(version[2])
    if environment is not None:
        # an artifact names the overlay files of its base files (compiler.build.with_overlay_sources):
        # where a changed overlay file changes a base file's documents, even to equal values, its
        # artifacts name a changed file
        for table in (base.sources, head.sources):
            touched |= {file for file, files in table.overlay_files().items() if files & changed}
    workloads = rebuilt_workloads(previous.artifacts, touched, versions, namespace, head)
    if workloads is EVERYTHING:
        return IncrementalPlan(built_from, tuple(sorted(changed)), EVERYTHING, ())

    for record in previous.artifacts:
        if record.workload in workloads or record.target not in targets:
            continue
        path = out_dir / record.path
        try:
            digest = hashlib.sha256(read_build_file(out_dir, record.path, MAX_OUTPUT_FILE_BYTES)).hexdigest()
        except OSError as error:
            raise FullBuildNeeded(f"{path} of the earlier build cannot be read: {error.strerror}") from None
        if digest != record.sha256:
            raise FullBuildNeeded(f"{path} was changed after it was built")
        kept.append(record)
    return IncrementalPlan(built_from, tuple(sorted(changed)), workloads, tuple(kept))
