"""Environments: the base intents with an environment's overlays applied (docs/intents.md,
"Environments").

An overlay document names a base document by kind, namespace and name and changes it: maps
merge key by key, lists of named objects merge item by item on their key, every other value
(scalars and other lists) is replaced, `null` deletes a field and `$patch` says what else an
overlay means (`add` a document or item the base lacks, `delete` one, `replace` instead of
merging). Merging works on plain data before validation, so the merged document is validated as
if written whole, and keeps, for every value, the chain of layers that set it (provenance): a
diagnostic about a value an overlay set points at the overlay's line, and names the base line it
overrode; `meshc explain-value` prints the chain.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from compiler import codes
from compiler.diagnostics import Location, Related, Report

PATCH = "$patch"
PATCH_ACTIONS = ("add", "delete", "replace")
# The fields that name a document: an overlay writes them to say which document it changes.
IDENTITY = ("apiVersion", "kind", "name", "namespace")
# The key of each list of objects that has one other than a required `name` (see list_key).
OTHER_LIST_KEYS = {"Endpoint": "address", "Placement": "platform"}
# Mesh fields an overlay cannot change: which files are read is decided before any overlay is.
FIXED_MESH_FIELDS = ("environments", "exclude")


@dataclass(frozen=True)
class Layer:
    """Where one value of a merged document was written: a document of `file` (the base or an
    overlay) and the value's path in it."""

    file: str
    document: Any  # compiler.yamlload.YamlDocument
    path: tuple[Any, ...]

    def location(self, *, key: bool = False) -> Location:
        line, column = self.document.locate(self.path, key=key)
        return Location(self.file, line, column)


@dataclass(frozen=True)
class Deletion:
    """A field or item an overlay deleted: what it was, and the overlay line that deleted it."""

    chain: tuple[Layer, ...]
    by: Layer


@dataclass(frozen=True)
class MergedDocument:
    """A base document with overlays applied, in the loader's place of the base document (same
    file and index: the intent keeps its identity); positions come from the layer that set each
    value."""

    index: int
    data: Any
    line: int
    chains: dict[tuple[Any, ...], tuple[Layer, ...]]
    deleted: dict[tuple[Any, ...], Deletion] = field(default_factory=dict)

    def present(self, path: tuple[Any, ...]) -> tuple[Any, ...]:
        """`path` without the parts that are not in the data (pydantic's union tags), as
        YamlDocument.locate skips them."""
        node, kept = self.data, []
        for part in path:
            if (isinstance(node, dict) and part in node) or (
                    isinstance(node, list) and type(part) is int and 0 <= part < len(node)):
                node = node[part]
                kept.append(part)
        return tuple(kept)

    def chain(self, path: tuple[Any, ...]) -> tuple[Layer, ...]:
        return self.chains[self.present(path)]

    def locate_in(self, path: tuple[Any, ...], *, key: bool = False) -> Location:
        return self.chain(path)[-1].location(key=key)

    def locate(self, path: tuple[Any, ...], *, key: bool = False) -> tuple[int, int]:
        """As YamlDocument.locate, for callers that know the file: only right for base values."""
        located = self.locate_in(path, key=key)
        return located.line, located.column


def overlay_files(documents: Iterator[tuple[tuple[str, int], object]]) -> dict[str, frozenset[str]]:
    """Each base file of an environment's merged documents -> the overlay files that set or
    deleted a value of one of them: what an artifact compiled from the base file was compiled
    from too (its `sources`)."""
    found: dict[str, set[str]] = {}
    for (file, _), document in documents:
        if isinstance(document, MergedDocument):
            layers = {layer.file for chain in document.chains.values() for layer in chain}
            layers |= {deletion.by.file for deletion in document.deleted.values()}
            found.setdefault(file, set()).update(layers - {file})
    return {file: frozenset(files) for file, files in found.items() if files}


# --------------------------------------------------------------------------------------------
# Which lists merge item by item


def _item_models(annotation: Any) -> list[type[BaseModel]]:
    from compiler.fields import _candidates

    for candidate in _candidates(annotation):
        if typing.get_origin(candidate) is list and typing.get_args(candidate):
            items = _candidates(typing.get_args(candidate)[0])
            models = [c for c in items if isinstance(c, type) and issubclass(c, BaseModel)]
            return models if len(models) == len(items) else []
    return []


def list_key(annotation: Any) -> str | None:
    """The field that identifies an item of a list under `annotation`, or None (the list is
    replaced whole): `name` where every item kind requires one, else OTHER_LIST_KEYS."""
    models = _item_models(annotation)
    if not models:
        return None
    if all("name" in m.model_fields and m.model_fields["name"].is_required() for m in models):
        return "name"
    keys = {OTHER_LIST_KEYS.get(m.__name__) for m in models}
    return keys.pop() if len(keys) == 1 else None


def keyed_lists() -> dict[str, str]:
    """`Model.field` -> key of every list that merges item by item (docs/intents.md lists them)."""
    from compiler.fields import _candidates, field_names
    from compiler.model import KIND_MODELS

    found: dict[str, str] = {}
    seen: set[type] = set()

    def walk(model: type[BaseModel]) -> None:
        if model in seen:
            return
        seen.add(model)
        for name, annotation in field_names(model).items():
            key = list_key(annotation)
            if key is not None:
                found[f"{model.__name__}.{name}"] = key
            for candidate in _candidates(annotation):
                for inner in (candidate, *typing.get_args(candidate)):
                    for option in _candidates(inner):
                        if isinstance(option, type) and issubclass(option, BaseModel):
                            walk(option)

    for model in KIND_MODELS.values():
        walk(model)
    return dict(sorted(found.items()))


# --------------------------------------------------------------------------------------------
# Merging, with the layer of every value


@dataclass
class _Node:
    value: Any  # dict[Any, _Node] | list[_Node] | a scalar
    chain: tuple[Layer, ...]  # the layers that set this value, oldest first


class _Problems:
    def __init__(self, report: Report) -> None:
        self.report = report

    def add(self, code: codes.Code, message: str, layer: Layer, *, key: bool = False,
            related: tuple[Related, ...] = (), hint: str | None = None) -> None:
        self.report.add(code, message, layer.location(key=key), related=related, hint=hint)


def _wrap(data: Any, file: str, document: Any, path: tuple[Any, ...], previous: _Node | None) -> _Node:
    """`data` written by a layer at `path`, over `previous` (what it replaces, if anything: its
    layers stay in each value's chain where the same path existed before)."""
    prior = previous.chain if previous is not None else ()
    before = previous.value if previous is not None else None
    if isinstance(data, dict):
        value: Any = {k: _wrap(v, file, document, (*path, k), before.get(k) if isinstance(before, dict) else None)
                      for k, v in data.items() if k != PATCH}
    elif isinstance(data, list):
        value = [_wrap(v, file, document, (*path, i),
                       before[i] if isinstance(before, list) and i < len(before) else None)
                 for i, v in enumerate(data)]
    else:
        value = data
    return _Node(value, (*prior, Layer(file, document, path)))


def _unwrap(node: _Node, path: tuple[Any, ...], chains: dict[tuple[Any, ...], tuple[Layer, ...]]) -> Any:
    chains[path] = node.chain
    if isinstance(node.value, dict):
        return {k: _unwrap(v, (*path, k), chains) for k, v in node.value.items()}
    if isinstance(node.value, list):
        return [_unwrap(v, (*path, i), chains) for i, v in enumerate(node.value)]
    return node.value


def _field_text(path: tuple[Any, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the document"


class _Merge:
    """One overlay document applied to a merged document."""

    def __init__(self, file: str, document: Any, problems: _Problems,
                 deleted: dict[tuple[Any, ...], Deletion], *, compose: bool = False) -> None:
        self.file = file
        self.document = document
        self.problems = problems
        self.deleted = deleted
        # merging two overlays into one: an item the first lacks is added as the second wrote
        # it, `$patch: add` included, for the base to judge
        self.compose = compose

    def layer(self, path: tuple[Any, ...]) -> Layer:
        return Layer(self.file, self.document, path)

    def marker(self, patch: dict, path: tuple[Any, ...], allowed: tuple[str, ...]) -> str | None:
        action = patch.get(PATCH)
        if action is None or action in allowed:
            return action
        self.problems.add(codes.OVERLAY_INVALID, f"`{PATCH}: {action}` is not one of {', '.join(allowed)} here",
                          self.layer((*path, PATCH)))
        return None

    def node(self, node: _Node, patch: Any, annotation: Any, path: tuple[Any, ...], at: tuple[Any, ...],
             skip: tuple[str, ...] = ()) -> _Node | None:
        """`node` (at `at` in the merged document) with `patch` (at `path` in the overlay)
        applied; None when the patch deletes it."""
        if isinstance(patch, dict):
            action = self.marker(patch, path, ("delete", "replace"))
            if action == "delete":
                self.deleted[at] = Deletion(node.chain, self.layer((*path, PATCH)))
                return None
            if action == "replace" or not isinstance(node.value, dict):
                return _wrap(patch, self.file, self.document, path, node)
            return self.mapping(node, patch, annotation, path, at, skip)
        if isinstance(patch, list) and isinstance(node.value, list):
            key = list_key(annotation)
            if key is not None:
                return self.keyed(node, patch, annotation, key, path, at)
        return _wrap(patch, self.file, self.document, path, node)

    def mapping(self, node: _Node, patch: dict, annotation: Any, path: tuple[Any, ...], at: tuple[Any, ...],
                skip: tuple[str, ...]) -> _Node:
        from compiler.fields import child_annotation

        plain = {k: v.value for k, v in node.value.items()}
        merged = dict(node.value)
        for name, value in patch.items():
            if name == PATCH or name in skip:
                continue
            inner = child_annotation(annotation, plain, name) if annotation is not None else None
            if value is None:
                if name not in merged:
                    self.problems.add(codes.OVERLAY_NOT_IN_BASE,
                                      f"`{name}: null` deletes {_field_text((*at, name))}, which the base does not set",
                                      self.layer((*path, name)), key=True)
                    continue
                self.deleted[(*at, name)] = Deletion(merged.pop(name).chain, self.layer((*path, name)))
            elif name in merged:
                result = self.node(merged[name], value, inner, (*path, name), (*at, name))
                if result is None:
                    del merged[name]
                else:
                    merged[name] = result
            else:
                if isinstance(value, dict) and value.get(PATCH) == "delete":
                    self.problems.add(codes.OVERLAY_NOT_IN_BASE,
                                      f"deletes {_field_text((*at, name))}, which the base does not set",
                                      self.layer((*path, name, PATCH)))
                    continue
                merged[name] = _wrap(value, self.file, self.document, (*path, name), None)
        return _Node(merged, node.chain)

    def keyed(self, node: _Node, patch: list, annotation: Any, key: str, path: tuple[Any, ...],
              at: tuple[Any, ...]) -> _Node:
        from compiler.fields import child_annotation

        items: list[_Node] = list(node.value)
        item_annotation = child_annotation(annotation, [None], 0)

        def identity(item: _Node) -> Any:
            found = item.value.get(key) if isinstance(item.value, dict) else None
            return found.value if found is not None else None

        for index, item in enumerate(patch):
            where = (*path, index)
            if not isinstance(item, dict) or not isinstance(item.get(key), (str, int)):
                self.problems.add(codes.OVERLAY_INVALID,
                                  f"an item of {_field_text(at)} in an overlay names the item it changes "
                                  f"by its `{key}`",
                                  self.layer(where))
                continue
            action = self.marker(item, where, PATCH_ACTIONS)
            wanted = item[key]
            found = next((i for i, existing in enumerate(items) if identity(existing) == wanted), None)
            shown = f"{_field_text(at)}[{key}={wanted}]"
            if action == "add":
                if found is not None:
                    self.problems.add(codes.OVERLAY_NOT_IN_BASE,
                                      f"`{PATCH}: add` adds {shown}, which the base already has",
                                      self.layer((*where, key)),
                                      related=(Related(items[found].chain[-1].location(), "the item in the base"),))
                    continue
                items.append(_wrap(item, self.file, self.document, where, None))
            elif found is None and self.compose:
                added = _wrap(item, self.file, self.document, where, None)
                if action is not None:
                    added.value[PATCH] = _Node(action, added.chain)
                items.append(added)
            elif found is None:
                self.problems.add(codes.OVERLAY_NOT_IN_BASE, f"the base has no {shown} to change",
                                  self.layer((*where, key)),
                                  hint=f"to add an item, write `{PATCH}: add` in it")
            elif action == "delete":
                self.deleted[(*at, f"{key}={wanted}")] = Deletion(items[found].chain, self.layer((*where, PATCH)))
                del items[found]
            else:
                result = self.node(items[found], item, item_annotation, where, (*at, found), skip=(key,))
                if result is not None:
                    items[found] = result
        return _Node(items, node.chain)


def merge_document(base_file: str, base: Any, overlays: list[tuple[str, Any]], report: Report, *,
                   compose: bool = False) -> MergedDocument | None:
    """The base YamlDocument with each (file, overlay YamlDocument) applied in order; None when
    an overlay deletes it. Problems (an overlay naming what the base lacks) go to report."""
    from compiler.fields import model_for_document

    annotation = model_for_document(base.data)
    root = _wrap(base.data, base_file, base, (), None)
    deleted: dict[tuple[Any, ...], Deletion] = {}
    problems = _Problems(report)
    for file, overlay in overlays:
        merge = _Merge(file, overlay, problems, deleted, compose=compose)
        if overlay.data.get(PATCH) == "delete":
            return None
        if overlay.data.get("kind") == "Mesh":
            for fixed in FIXED_MESH_FIELDS:
                if fixed in overlay.data:
                    problems.add(codes.OVERLAY_INVALID,
                                 f"an overlay cannot change Mesh.{fixed}: which files are read is decided before any "
                                 "overlay is applied", merge.layer((fixed,)), key=True)
            overlay_data = {k: v for k, v in overlay.data.items() if k not in FIXED_MESH_FIELDS}
        else:
            overlay_data = overlay.data
        if overlay_data.get(PATCH) == "replace":
            # the whole document is the overlay's, but it names the same document and reads the same files
            kept = {k: v for k, v in root.value.items() if k in IDENTITY or k in FIXED_MESH_FIELDS}
            replaced = _wrap(overlay_data, file, overlay, (), root)
            root = _Node({**kept, **{k: v for k, v in replaced.value.items() if k not in kept}}, replaced.chain)
            continue
        merged = merge.node(root, overlay_data, annotation, (), (), skip=IDENTITY)
        assert merged is not None  # a document-level delete returned above
        root = merged
    chains: dict[tuple[Any, ...], tuple[Layer, ...]] = {}
    data = _unwrap(root, (), chains)
    return MergedDocument(base.index, data, base.line, chains, deleted)


def merge_data(base: Any, *overlays: Any, compose: bool = False) -> Any:
    """Plain-data merge of overlays onto `base` (no provenance, problems ignored): what the
    property tests of tests/test_environments_merge.py state the rules on. With `compose`,
    `base` is an overlay too, and the result the overlay that does what the two do in turn."""
    import yaml

    from compiler.yamlload import restore_documents

    def document(data: Any) -> Any:  # its text only places the problems, which are dropped
        return restore_documents(yaml.safe_dump(data, sort_keys=False), [(data, 1)])[0]

    report = Report()
    merged = merge_document("base.yaml", document(base), [(f"overlay{i}.yaml", document(o))
                                                          for i, o in enumerate(overlays)], report, compose=compose)
    return None if merged is None else merged.data


# --------------------------------------------------------------------------------------------
# Overlay documents of one environment


def identity_of(data: Any, default_namespace: str) -> tuple[str, str | None, str] | None:
    """(kind, namespace, name) a document names, or None when it names none."""
    from compiler.model import NAMESPACED_KINDS

    if not isinstance(data, dict):
        return None
    kind, name, namespace = data.get("kind"), data.get("name"), data.get("namespace")
    if not isinstance(kind, str) or not isinstance(name, str) or not isinstance(namespace, (str, type(None))):
        return None
    if kind in NAMESPACED_KINDS:
        return kind, namespace or default_namespace, name
    return kind, None, name


def describe(identity: tuple[str, str | None, str]) -> str:
    kind, namespace, name = identity
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


@dataclass
class OverlayDocument:
    file: str
    document: Any  # YamlDocument
    identity: tuple[str, str | None, str]
    folder: str
    used: bool = False

    def layer(self, *path: Any, key: bool = False) -> Location:
        return Layer(self.file, self.document, path).location(key=key)


@dataclass
class Overlays:
    """The overlay documents of one environment, by the identity of the document they change."""

    environment: str
    by_identity: dict[tuple[str, str | None, str], list[OverlayDocument]] = field(default_factory=dict)
    default_namespace: str = "default"

    def add(self, file: str, folder: str, documents: list[Any], report: Report) -> None:
        from compiler.model import API_VERSION, KIND_MODELS

        for document in documents:
            data = document.data
            if data is None:
                continue
            where = Location(file, document.line, 1)
            if not isinstance(data, dict):
                report.add(codes.OVERLAY_INVALID, f"an overlay document must be a mapping, not a {type(data).__name__}",
                           where)
                continue
            overlay = OverlayDocument(file, document, ("", None, ""), folder)
            if "apiVersion" in data and data["apiVersion"] != API_VERSION:
                report.add(codes.OVERLAY_INVALID, f"apiVersion {data['apiVersion']!r} is not {API_VERSION}",
                           overlay.layer("apiVersion"))
                continue
            identity = identity_of(data, self.default_namespace)
            if identity is None or identity[0] not in KIND_MODELS:
                report.add(codes.OVERLAY_INVALID,
                           "an overlay document names the document it changes by `kind` "
                           f"(one of {', '.join(KIND_MODELS)}),"
                           " `name` and, for a namespaced kind, `namespace`", where)
                continue
            action = data.get(PATCH)
            if action is not None and action not in PATCH_ACTIONS:
                report.add(codes.OVERLAY_INVALID, f"`{PATCH}: {action}` is not one of {', '.join(PATCH_ACTIONS)}",
                           overlay.layer(PATCH))
                continue
            overlay.identity = identity
            earlier = [o for o in self.by_identity.get(identity, []) if o.folder == folder]
            if earlier:
                report.add(codes.OVERLAY_DUPLICATE,
                           f"overlay folder {folder} changes {describe(identity)} twice; write one document",
                           overlay.layer("name"),
                           related=(Related(earlier[0].layer("name"), "the first overlay document for it"),))
                continue
            self.by_identity.setdefault(identity, []).append(overlay)

    def touches(self, data: Any) -> bool:
        identity = identity_of(data, self.default_namespace)
        return identity is not None and identity in self.by_identity

    def apply(self, file: str, document: Any, report: Report) -> Any | None:
        """The document this environment sees in place of the base `document`: itself, a
        MergedDocument, or None (deleted)."""
        identity = identity_of(document.data, self.default_namespace)
        patches = self.by_identity.get(identity) if identity is not None else None
        if not patches:
            return document
        layers = []
        for overlay in patches:
            overlay.used = True
            if overlay.document.data.get(PATCH) == "add":
                report.add(codes.OVERLAY_NOT_IN_BASE, f"`{PATCH}: add` adds {describe(overlay.identity)}, "
                           "which the base already has", overlay.layer(PATCH),
                           related=(Related(Location(file, document.line, 1), "the document in the base"),))
                continue
            layers.append((overlay.file, overlay.document))
        return merge_document(file, document, layers, report)

    def additions(self, report: Report) -> Iterator[OverlayDocument]:
        """Overlay documents that matched no base document: the ones marked `$patch: add`
        (new documents of this environment); every other one is reported."""
        for overlays in self.by_identity.values():
            for overlay in overlays:
                if overlay.used:
                    continue
                if overlay.document.data.get(PATCH) == "add":
                    yield overlay
                else:
                    report.add(codes.OVERLAY_NOT_IN_BASE,
                               f"the base has no {describe(overlay.identity)} for environment {self.environment} "
                               "to change", overlay.layer("name"),
                               hint=f"to add a document in this environment only, write `{PATCH}: add` in it")


def annotate_overrides(report: Report, sources: Any) -> None:
    """Give each diagnostic located at a value an overlay set the base line it overrode."""
    overridden: dict[Location, Location] = sources.overridden
    if not overridden:
        return
    for index, diagnostic in enumerate(report.diagnostics):
        base = overridden.get(diagnostic.location) if diagnostic.location is not None else None
        if base is not None and all(r.location != base for r in diagnostic.related):
            report.diagnostics[index] = type(diagnostic)(
                diagnostic.code, diagnostic.message, diagnostic.location, diagnostic.severity,
                (*diagnostic.related, Related(base, "the base value this overrides")), diagnostic.hint, diagnostic.fix)
