"""`meshc fmt`: one canonical layout for intent files, comments and blank lines kept.

The layout (docs/cli.md): keys in the model's field order (apiVersion, kind, name, namespace
first; unknown keys last, as written); a collection is written in flow style when it holds no
comment, is not a section (a document, resilience, a route rule, an access rule, a platform),
holds at most one collection and fits in LINE_WIDTH columns, in block style otherwise; strings are plain unless plain
would read as something else, then double-quoted; multi-line strings keep their block style.

How: ruamel.yaml reads the file (round trip), the comments are lifted off the lines they
stand on and tied to the key or item they precede (or end), the tree is rebuilt in canonical
order and style, and the comments are tied back on. The result is re-read with meshc's own
loader and must be equal to the input as data, or the file is left alone.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.emitter import RoundTripEmitter
from ruamel.yaml.error import CommentMark, YAMLError
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.resolver import VersionedResolver
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, FoldedScalarString, LiteralScalarString
from ruamel.yaml.tokens import CommentToken, DocumentEndToken, DocumentStartToken, ScalarToken

from compiler import codes
from compiler.codes import Code
from compiler.diagnostics import Report
from compiler.fields import child_annotation, key_order, model_for_document, model_of
from compiler.loader import MESH_FILE, WorktreeSource, load
from compiler.model import AccessRule, PlatformBase, Resilience, RouteRule
from compiler.yamlload import YamlProblem, load_documents, plain_scalar_is_string

LINE_WIDTH = 100
INDENT = 2
# Models always written as blocks: a document's sections read better one field a line.
SECTIONS = (Resilience, RouteRule, AccessRule, PlatformBase)

Path_ = tuple[Any, ...]


class FormatProblem(Exception):
    def __init__(self, code: Code, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.code, self.message, self.line, self.column = code, message, line, column


@dataclass
class _Comments:
    """Comments of one document: full lines before a node, one at the end of its line."""

    head: list[str] = field(default_factory=list)
    before: dict[Path_, list[str]] = field(default_factory=dict)
    eol: dict[Path_, str] = field(default_factory=dict)
    tail: list[str] = field(default_factory=list)

    def paths(self) -> set[Path_]:
        return set(self.before) | set(self.eol)


def format_text(text: str) -> str:
    """The canonical layout of one intent file; raises FormatProblem for what it cannot read."""
    try:
        before = [d.data for d in load_documents(text)]
    except YamlProblem as problem:
        raise FormatProblem(problem.code, problem.message, problem.line, problem.column) from None
    yaml = _yaml()
    try:
        documents = list(yaml.load_all(text))
        tokens = list(yaml.scan(text))
    except YAMLError as error:  # meshc's loader accepted it; ruamel may still refuse
        mark = getattr(error, "problem_mark", None)
        raise FormatProblem(codes.YAML_SYNTAX, f"cannot be formatted: {getattr(error, 'problem', error)}",
                            (mark.line + 1) if mark else 1, (mark.column + 1) if mark else 1) from None
    lines = text.splitlines()
    full, eol = _comment_lines(lines, tokens)
    separators = sorted({t.start_mark.line for t in tokens if isinstance(t, (DocumentStartToken, DocumentEndToken))})
    segments = list(zip([0, *(line + 1 for line in separators)], [*separators, len(lines)], strict=True))
    placed = {line: d for d in documents if (line := _first_line(d)) is not None}
    out = []
    for start, end in segments:
        document = next((d for line, d in placed.items() if start <= line < end), None)
        comments = _assign(document, full, eol, start, end)
        stream = io.StringIO()
        if document is not None:
            yaml.dump(_Builder(comments).document(document), stream)
        else:
            stream.write("".join(f"{line}\n" for line in _collapse_blanks(comments.head, leading=True, trailing=True)))
        if stream.getvalue():
            out.append(stream.getvalue())
    formatted = "---\n".join(out)
    try:
        after = [d.data for d in load_documents(formatted)]
    except YamlProblem as problem:  # pragma: no cover - a defect in fmt, caught before any write
        raise FormatProblem(codes.FORMAT_UNSAFE, f"formatting would not re-read: {problem.message}", 1, 1) from None
    if after != [d for d in before if d is not None]:
        raise FormatProblem(codes.FORMAT_UNSAFE,
                            "formatting would change what this file means; left as it is", 1, 1)
    return formatted


class _Emitter(RoundTripEmitter):
    """ruamel's round-trip emitter, with its line state right after an end-of-line comment.

    `no_newline` means "the line is still the one after `- `: the next indent must not break
    it". An end-of-line comment ends that line, but ruamel leaves the flag set after the comment
    of a flow collection (`- {a: 1}  # c`); the next item's dash inherits it and the flag is
    spent on that item's second key, which then shares the first key's line
    (`- a: 1 b: 2`, no longer YAML). The flag is cleared once the comment's line is ended.
    """

    def write_post_comment(self, event: Any) -> bool:
        written = super().write_post_comment(event)
        if written and self.column == 0:
            self.no_newline = False
        return bool(written)


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.Emitter = _Emitter
    yaml.indent(mapping=INDENT, sequence=2 * INDENT, offset=INDENT)
    yaml.width = 4096  # flow or block is decided here, never by the emitter wrapping lines
    yaml.allow_duplicate_keys = False
    yaml.brace_single_entry_mapping_in_flow_sequence = True
    return yaml


# --------------------------------------------------------------------------------------------
# Reading comments off the source


def _comment_lines(lines: list[str], tokens: list[Any]) -> tuple[dict[int, str], dict[int, str]]:
    """0-based line -> full-line comment ('' for a blank line), and line -> end-of-line comment."""
    inside: set[int] = set()  # lines within a multi-line scalar: a '#' there is text
    eol: dict[int, str] = {}
    for token in tokens:
        if isinstance(token, ScalarToken) and token.end_mark.line > token.start_mark.line:
            last = token.end_mark.line if token.end_mark.column > 0 else token.end_mark.line - 1
            inside.update(range(token.start_mark.line + 1, last + 1))
        for comment in _token_comments(token):
            at, column = comment.start_mark.line, comment.start_mark.column
            first = comment.value.split("\n", 1)[0]
            if first.startswith("#") and at < len(lines) and lines[at][:column].strip():
                eol[at] = first.rstrip()
    full: dict[int, str] = {}
    for number, line in enumerate(lines):
        stripped = line.strip()
        if number in inside or number in eol:
            continue
        if not stripped:
            full[number] = ""
        elif stripped.startswith("#"):
            full[number] = stripped.rstrip()
    return full, eol


def _token_comments(token: Any) -> list[CommentToken]:
    if isinstance(token, CommentToken):
        return [token]
    found: list[CommentToken] = []
    for part in getattr(token, "comment", None) or ():
        if isinstance(part, CommentToken):
            found.append(part)
        elif isinstance(part, list):
            found.extend(p for p in part if isinstance(p, CommentToken))
    return found


def _anchors(node: Any, path: Path_ = ()) -> list[tuple[int, int, Path_]]:
    """(line, column, path) of every key and sequence item, as written."""
    found: list[tuple[int, int, Path_]] = []
    if isinstance(node, CommentedMap):
        for key, value in node.items():
            if key not in node.lc.data:
                continue  # merged in with `<<:`: it stands where its anchor is
            line, column = node.lc.key(key)
            found.append((line, column, (*path, key)))
            found.extend(_anchors(value, (*path, key)))
    elif isinstance(node, CommentedSeq):
        for index, value in enumerate(node):
            line, column = node.lc.item(index)
            found.append((line, column, (*path, index)))
            found.extend(_anchors(value, (*path, index)))
    return found


def _first_line(document: Any) -> int | None:
    anchors = _anchors(document)
    return min(line for line, _, _ in anchors) if anchors else None


def _at(document: Any, path: Path_) -> Any:
    for part in path:
        document = document[part]
    return document


def _assign(document: Any, full: dict[int, str], eol: dict[int, str], start: int, end: int) -> _Comments:
    """Tie each comment of lines [start, end) to the node it precedes or ends the line of."""
    comments = _Comments()
    anchors = sorted(_anchors(document), key=lambda a: (a[0], a[1])) if document is not None else []
    by_line: dict[int, list[Path_]] = {}
    for line, _, path in anchors:
        by_line.setdefault(line, []).append(path)
    first = anchors[0][0] if anchors else end
    pending: list[str] = []
    for number in range(start, end):
        if number in full:
            (comments.head if number < first else pending).append(full[number])
        if number in by_line and number >= first and pending:
            comments.before[by_line[number][0]] = pending
            pending = []
        if number in eol:
            comments.eol[_eol_owner(document, anchors, by_line, number)] = eol[number]
    comments.tail = pending
    return comments


def _eol_owner(document: Any, anchors: list[tuple[int, int, Path_]], by_line: dict[int, list[Path_]],
               line: int) -> Path_:
    """The outermost node starting on the line; for `- key: value  # c`, that key; on a line
    that only continues a node, the last node started before it."""
    starting = by_line.get(line)
    if not starting:
        return max((a for a in anchors if a[0] <= line), key=lambda a: (a[0], a[1]), default=(0, 0, ()))[2]
    owner = starting[0]
    value = _at(document, owner)
    if owner and isinstance(owner[-1], int) and isinstance(value, CommentedMap) and len(starting) > 1 \
            and not value.fa.flow_style():
        return starting[1]
    return owner


# --------------------------------------------------------------------------------------------
# Rebuilding in canonical order and style


def _collapse_blanks(lines: list[str], *, leading: bool = False, trailing: bool = False) -> list[str]:
    """Runs of blank lines become one; `leading`/`trailing` drop them at that end too."""
    out: list[str] = []
    for line in lines:
        if line == "" and ((out and out[-1] == "") or (leading and not out)):
            continue
        out.append(line)
    while trailing and out and out[-1] == "":
        out.pop()
    return out


def _tokens(lines: list[str], column: int) -> list[CommentToken]:
    return [CommentToken(f"{line}\n" if line else "\n", CommentMark(column)) for line in lines]


class _Builder:
    def __init__(self, comments: _Comments) -> None:
        self.comments = comments
        self.commented = comments.paths()
        self.built: dict[int, Any] = {}  # aliased nodes stay one node (and keep their anchor)
        self.lifted: dict[Path_, list[str]] = {}

    def document(self, data: Any) -> Any:
        model = model_for_document(data)
        node = self.node(data, model, (), column=0, room=LINE_WIDTH, block=True, document=True)
        head = _collapse_blanks(self.comments.head, leading=True)
        if head and isinstance(node, (CommentedMap, CommentedSeq)):
            node.ca.comment = [None, _tokens(head, 0)]
        tail = _collapse_blanks(self.comments.tail, trailing=True)
        if tail and isinstance(node, (CommentedMap, CommentedSeq)):
            node.ca.end = _tokens(tail, 0)
        return node

    def node(self, data: Any, annotation: Any, path: Path_, *, column: int, room: int, block: bool = False,
             document: bool = False) -> Any:
        if isinstance(data, CommentedMap):
            return self.mapping(data, annotation, path, column=column, room=room, block=block, document=document)
        if isinstance(data, CommentedSeq):
            return self.sequence(data, annotation, path, column=column, room=room)
        return _scalar(data)

    def _shared(self, data: Any) -> Any | None:
        return self.built.get(id(data)) if getattr(data, "anchor", None) and data.anchor.value else None

    def _remember(self, data: Any, node: Any) -> None:
        if getattr(data, "anchor", None) and data.anchor.value:
            node.yaml_set_anchor(data.anchor.value, always_dump=True)
            self.built[id(data)] = node

    def mapping(self, data: CommentedMap, annotation: Any, path: Path_, *, column: int, room: int,
                block: bool, document: bool) -> CommentedMap:
        shared = self._shared(data)
        if shared is not None:
            return shared
        model = model_of(annotation, data) if annotation is not None else None
        order = key_order(model, document=document) if model is not None else []
        keys = [k for k in order if k in data] + [k for k in data if k not in order]
        node = CommentedMap()
        self._remember(data, node)
        children = {key: child_annotation(annotation, data, key) for key in keys}
        section = block or (model is not None and issubclass(model, SECTIONS))
        # comments above a sequence item's first key are lifted above the item (see _attach)
        liftable = (*path, keys[0]) if keys and path and isinstance(path[-1], int) else None
        flow = not section and self._fits_flow(data, children, path, room, liftable)
        if liftable is not None and liftable in self.comments.before:
            self.lifted[path] = self.comments.before[liftable]
        for key in keys:
            child_path = (*path, key)
            child_room = LINE_WIDTH - column - len(_scalar_text(key)) - 2
            node[_scalar(key)] = self.node(data[key], children[key], child_path,
                                           column=column + INDENT, room=child_room)
            if not flow:
                self._attach(node, _scalar(key), child_path, column, lifted=child_path == liftable)
        node.fa.set_flow_style() if flow else node.fa.set_block_style()
        return node

    def sequence(self, data: CommentedSeq, annotation: Any, path: Path_, *, column: int, room: int) -> CommentedSeq:
        shared = self._shared(data)
        if shared is not None:
            return shared
        node = CommentedSeq()
        self._remember(data, node)
        children = {index: child_annotation(annotation, data, index) for index in range(len(data))}
        flow = self._fits_flow(data, children, path, room)
        for index, item in enumerate(data):
            child_path = (*path, index)
            node.append(self.node(item, children[index], child_path,
                                  column=column + INDENT, room=LINE_WIDTH - column - 2))
            if not flow:
                self._attach(node, index, child_path, column)
        node.fa.set_flow_style() if flow else node.fa.set_block_style()
        return node

    def _fits_flow(self, data: Any, children: dict[Any, Any], path: Path_, room: int,
                   liftable: Path_ | None = None) -> bool:
        if not data:
            return True
        inside = {p for p in self.commented if p[: len(path)] == path and len(p) > len(path)}
        if liftable in inside and liftable not in self.comments.eol:
            inside.discard(liftable)
        if inside:
            return False  # a comment inside: only a block can carry it
        if any(isinstance(v, (LiteralScalarString, FoldedScalarString)) for v in _leaves(data)):
            return False
        if any(_is_section(annotation, data[key]) for key, annotation in children.items()):
            return False
        values = data.values() if isinstance(data, dict) else data
        if sum(isinstance(v, (dict, list)) for v in values) > 1:
            return False  # several records: one a line
        return len(_flow_text(data)) <= room

    def _attach(self, node: CommentedMap | CommentedSeq, key: Any, path: Path_, column: int,
                lifted: bool = False) -> None:
        before = [] if lifted else self.comments.before.get(path, [])
        if isinstance(node, CommentedSeq):
            # a mapping item's first key stands on the dash's line: its comments go above it
            before = before + self.lifted.pop(path, [])
        before = _collapse_blanks(before)
        eol = self.comments.eol.get(path)
        if not before and eol is None:
            return
        entry = node.ca.items.setdefault(key, [None, None, None, None])
        if before:
            entry[1] = _tokens(before, column)
        if eol is not None:
            value = node[key]
            if isinstance(node, CommentedSeq) and isinstance(value, CommentedMap) and value \
                    and not value.fa.flow_style():
                first = next(iter(value))  # `- name: x  # note` stays on the first key's line
                value.ca.items.setdefault(first, [None, None, None, None])[2] = _eol(eol)
            else:
                entry[0 if isinstance(node, CommentedSeq) else 2] = _eol(eol)


def _eol(text: str) -> CommentToken:
    return CommentToken(f" {text}\n", CommentMark(0))


def _is_section(annotation: Any, value: Any) -> bool:
    model = model_of(annotation, value) if annotation is not None else None
    return model is not None and issubclass(model, SECTIONS)


def _leaves(data: Any) -> list[Any]:
    if isinstance(data, dict):
        return [leaf for key, value in data.items() for leaf in [key, *_leaves(value)]]
    if isinstance(data, list):
        return [leaf for value in data for leaf in _leaves(value)]
    return [data]


def _scalar_analyser() -> Any:
    """An emitter wired to a serializer (its scalar analysis asks which YAML version is out)."""
    yaml = YAML(typ="rt")
    yaml.serializer  # noqa: B018 - created on first access; the emitter reads its version
    return yaml.emitter


_EMITTER = _scalar_analyser()
_RESOLVER = VersionedResolver(version=(1, 2))


def _plain_ok(text: str) -> bool:
    if not text or text != text.strip() or "\n" in text:
        return False
    analysis = _EMITTER.analyze_scalar(text)
    if not (analysis.allow_flow_plain and analysis.allow_block_plain):
        return False
    return (_RESOLVER.resolve(ScalarNode, text, (True, False)) == "tag:yaml.org,2002:str"
            and plain_scalar_is_string(text))


def _scalar(value: Any) -> Any:
    if isinstance(value, (LiteralScalarString, FoldedScalarString)):
        return value
    if isinstance(value, str):
        text = str(value)
        return text if _plain_ok(text) else DoubleQuotedScalarString(text)
    return value


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return value if _plain_ok(value) else json.dumps(value, ensure_ascii=False)
    return str(value)


def _flow_text(data: Any) -> str:
    if isinstance(data, dict):
        return "{" + ", ".join(f"{_scalar_text(k)}: {_flow_text(v)}" for k, v in data.items()) + "}"
    if isinstance(data, list):
        return "[" + ", ".join(_flow_text(v) for v in data) + "]"
    return _scalar_text(data)


def mesh_files(root: Path, environments: tuple[str, ...] | None = None) -> list[Path] | None:
    """Every intent file `meshc check` reads under the mesh root: the base's and the overlay
    files of `environments` (default: every environment the mesh declares); None without
    mesh.yaml. Raises compiler.envbuild.UnknownEnvironment for an undeclared one."""
    from compiler.envbuild import chosen_environments
    from compiler.loader import declared_environments

    if not (root / MESH_FILE).is_file():
        return None
    source = WorktreeSource(root)
    listed: set[str] = set()
    for environment in [None, *chosen_environments(declared_environments(source), environments or ())]:
        loaded = load(source, Report(), environment=environment)
        listed |= set(loaded.sources.texts) | set(loaded.sources.blob_ids)
    return [root / name for name in sorted(listed)]
