"""YAML 1.2 (core schema) loading on libyaml, with source positions on the side.

Two constructors share libyaml's composer and the core-schema resolver. The fast one builds
plain data straight from the nodes and records nothing; it covers documents without anchors,
merge keys, duplicate keys or tags outside the core schema. Anything else, and every
position, comes from the positioned constructor: it records, for every mapping and sequence
it builds, where each key and item stands, and enforces the limits (alias expansion, tags)
with a located YamlProblem. A file is read again with positions only when a diagnostic asks
where something is (`YamlDocument.locate`), so the hot path pays for neither the marks nor
their memory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, cast

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, ScalarNode, SequenceNode
from yaml.resolver import BaseResolver

from compiler import codes
from compiler.codes import Code

try:
    from yaml._yaml import CParser as _Parser
except ImportError:  # pragma: no cover - libyaml is a hard requirement, see pyproject.toml
    raise ImportError("meshc needs PyYAML built with libyaml (yaml.CParser)") from None

# Per document: how many nodes aliases may expand to before it is treated as an alias bomb.
MAX_EXPANDED_NODES = 200_000


class YamlProblem(Exception):
    """A document that cannot become data, with the code that says why."""

    def __init__(self, code: Code, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.line = line
        self.column = column


class _CoreSchemaResolver(BaseResolver):
    """YAML 1.2 core schema: only true/false are booleans; no timestamps, no YAML 1.1 octals."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        # libyaml's composer asks for every scalar; one that no implicit resolver can claim by
        # its first character is a string, as BaseResolver.resolve would conclude after trying them
        if kind is ScalarNode and (not implicit[0] or (value and value[0] not in _RESOLVER_FIRST_CHARS)):
            return self.DEFAULT_SCALAR_TAG
        return super().resolve(kind, value, implicit)


_CoreSchemaResolver.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in (
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        "tag:yaml.org,2002:float",
        (r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
         r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
        "-+0123456789.",
    ),
    ("tag:yaml.org,2002:merge", r"^<<$", "<"),
):
    _CoreSchemaResolver.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))

_RESOLVER_FIRST_CHARS = frozenset(key for key in _CoreSchemaResolver.yaml_implicit_resolvers if key)
_CORE_TAGS = frozenset(
    "tag:yaml.org,2002:" + t for t in ("str", "int", "float", "bool", "null", "map", "seq", "merge")
)


@dataclass(frozen=True)
class Marks:
    """Where the keys and values of one mapping (or the items of one sequence) stand."""

    keys: dict[Any, tuple[int, int]]
    values: dict[Any, tuple[int, int]]


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _PositionConstructor(SafeConstructor):
    def __init__(self) -> None:
        super().__init__()
        self.marks: dict[int, Marks] = {}
        self.sizes: dict[int, int] = {}

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        if node.tag not in _CORE_TAGS:
            line, column = _mark(node)
            raise YamlProblem(codes.UNSUPPORTED_TAG, f"tag {node.tag!r} is not in the YAML 1.2 core schema",
                              line, column)
        try:
            return super().construct_object(node, deep=True)
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            line, column = _mark(node)
            shown = repr(node.value) if isinstance(node, yaml.ScalarNode) else "this node"
            raise YamlProblem(
                codes.YAML_SYNTAX, f"{shown} does not fit tag {node.tag!r}: {error}", line, column
            ) from None

    def _size(self, value: Any) -> int:
        return self.sizes.get(id(value), 1)

    def _check_size(self, node: yaml.Node, data: Any, size: int) -> None:
        if size > MAX_EXPANDED_NODES:
            line, column = _mark(node)
            # name the real cause: aliases only when the nodes written are within the budget
            written = len(self.constructed_objects)
            cause = (f"aliases expand this document past {MAX_EXPANDED_NODES} nodes (an alias bomb?)"
                     if written <= MAX_EXPANDED_NODES else
                     f"this document has more than {MAX_EXPANDED_NODES} nodes, the budget of one document: split it")
            raise YamlProblem(codes.ALIAS_EXPANSION, cause, line, column)
        self.sizes[id(data)] = size

    def construct_yaml_map(self, node: yaml.MappingNode) -> Any:
        data: dict[Any, Any] = {}
        yield data
        explicit: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                line, column = _mark(key_node)
                raise YamlProblem(codes.YAML_SYNTAX, "a mapping key must be a scalar", line, column)
            if key in explicit:
                line, column = _mark(key_node)
                first_line, _ = _mark(explicit[key])
                raise YamlProblem(
                    codes.DUPLICATE_KEY, f"duplicate key {key!r} (first at line {first_line})", line, column
                )
            explicit[key] = key_node
        self.flatten_mapping(node)
        keys: dict[Any, tuple[int, int]] = {}
        values: dict[Any, tuple[int, int]] = {}
        size = 1
        for key_node, value_node in node.value:
            key = self.construct_object(key_node)
            value = self.construct_object(value_node)
            data[key] = value
            keys[key] = _mark(key_node)
            values[key] = _mark(value_node)
            size += self._size(value)
        self._check_size(node, data, size)
        self.marks[id(data)] = Marks(keys, values)

    def construct_yaml_seq(self, node: yaml.SequenceNode) -> Any:
        data: list[Any] = []
        yield data
        positions: dict[Any, tuple[int, int]] = {}
        size = 1
        for index, child in enumerate(node.value):
            value = self.construct_object(child)
            data.append(value)
            positions[index] = _mark(child)
            size += self._size(value)
        self._check_size(node, data, size)
        self.marks[id(data)] = Marks(positions, positions)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        text = node.value
        if text.startswith("0o"):
            return int(text[2:], 8)
        if text.startswith("0x"):
            return int(text[2:], 16)
        return int(text, 10)

    def construct_yaml_bool(self, node: yaml.ScalarNode) -> bool:
        if node.value in ("true", "True", "TRUE"):
            return True
        if node.value in ("false", "False", "FALSE"):
            return False
        raise ValueError("YAML 1.2 booleans are true and false only")

    def construct_undefined(self, node: yaml.Node) -> Any:
        line, column = _mark(node)
        raise YamlProblem(codes.UNSUPPORTED_TAG, f"tag {node.tag!r} is not in the YAML 1.2 core schema", line, column)


# A table of its own: deleting from the inherited one would take timestamps and the other
# YAML 1.1 types away from every yaml.safe_load in the process.
_PositionConstructor.yaml_constructors = {
    **{tag: construct for tag, construct in SafeConstructor.yaml_constructors.items() if tag in _CORE_TAGS},
    "tag:yaml.org,2002:map": _PositionConstructor.construct_yaml_map,
    "tag:yaml.org,2002:seq": _PositionConstructor.construct_yaml_seq,
    "tag:yaml.org,2002:int": _PositionConstructor.construct_yaml_int,
    "tag:yaml.org,2002:bool": _PositionConstructor.construct_yaml_bool,
    None: _PositionConstructor.construct_undefined,
}


class _Loader(_Parser, _PositionConstructor, _CoreSchemaResolver):
    def __init__(self, stream: str) -> None:
        _Parser.__init__(self, stream)
        _PositionConstructor.__init__(self)
        _CoreSchemaResolver.__init__(self)


class _NeedsPositions(Exception):
    """The fast constructor met something only the positioned one handles (or reports)."""


_STR, _MAP, _SEQ = ("tag:yaml.org,2002:" + t for t in ("str", "map", "seq"))
_SCALARS = {
    "tag:yaml.org,2002:" + name: getattr(_PositionConstructor, f"construct_yaml_{name}")
    for name in ("int", "float", "bool", "null")
}


def _plain_data(node: yaml.Node, constructor: _PositionConstructor) -> Any:
    """The data of a node without anchors, merge keys, duplicate keys or non-core tags."""
    kind = node.__class__
    tag = node.tag
    if kind is ScalarNode:
        if tag == _STR:
            return node.value
        convert = _SCALARS.get(tag)
        if convert is None:
            raise _NeedsPositions
        return convert(constructor, node)
    if kind is MappingNode and tag == _MAP:
        data: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.__class__ is not ScalarNode:
                raise _NeedsPositions
            key = _plain_data(key_node, constructor)
            if key in data:
                raise _NeedsPositions
            data[key] = _plain_data(value_node, constructor)
        return data
    if kind is SequenceNode and tag == _SEQ:
        return [_plain_data(child, constructor) for child in node.value]
    raise _NeedsPositions


class _Marked:
    """Positions recorded by the positioned constructor, for the documents it read."""

    def __init__(self, documents: list[tuple[Any, int, dict[int, Marks]]]) -> None:
        self._documents = documents

    def locate(self, index: int, path: tuple[Any, ...], key: bool, start: tuple[int, int]) -> tuple[int, int]:
        node, _, marks_of = self._documents[index]
        position = start
        for part in path:
            marks = marks_of.get(id(node)) if isinstance(node, (dict, list)) else None
            if marks is None or part not in marks.values:
                continue
            position = marks.keys[part] if key else marks.values[part]
            node = node[part]
        return position


class _Composed:
    """Positions of documents the fast constructor read: their text is composed again (libyaml,
    nodes with marks, no data built) the first time a position is asked for."""

    def __init__(self, text: str) -> None:
        self._text: str | None = text
        self._roots: list[yaml.Node] = []

    def locate(self, index: int, path: tuple[Any, ...], key: bool, start: tuple[int, int]) -> tuple[int, int]:
        if self._text is not None:
            loader = _Locating(self._text)
            try:
                while loader.check_node():
                    self._roots.append(cast(yaml.Node, loader.get_node()))
            finally:
                loader.dispose()
            self._text = None
        node = self._roots[index]
        position = start
        for part in path:
            found = None
            if node.__class__ is MappingNode:
                found = next(((k, v) for k, v in node.value if _key_data(k) == part), None)
            elif node.__class__ is SequenceNode and type(part) is int and 0 <= part < len(node.value):
                found = (node.value[part], node.value[part])
            if found is None:
                continue  # not in the data, as with _Marked
            position = _mark(found[0] if key else found[1])
            node = found[1]
        return position


_SCALAR_KEYS = _PositionConstructor()
_UNRESOLVED = "meshc:unresolved"


class _Locating(_Parser, _CoreSchemaResolver):
    """Composes a text for its marks only. Scalars keep an unresolved tag: a path walks a few
    keys, whose data _key_data resolves, so the other scalars of the file are never resolved."""

    def __init__(self, stream: str) -> None:
        _Parser.__init__(self, stream)
        _CoreSchemaResolver.__init__(self)

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        return _UNRESOLVED if kind is ScalarNode else super().resolve(kind, value, implicit)

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        pass  # no path resolvers: nothing to track

    def ascend_resolver(self) -> None:
        pass


def _key_data(node: yaml.Node) -> Any:
    """The data of a mapping key composed by _Locating (a fast-loaded document's keys are scalars)."""
    if node.__class__ is not ScalarNode:
        return None
    if node.tag == _UNRESOLVED:
        plain = not node.style
        node = ScalarNode(_SCALAR_RESOLVER.resolve(ScalarNode, node.value, (plain, not plain)), node.value)
    return _plain_data(node, _SCALAR_KEYS)


@dataclass(frozen=True)
class YamlDocument:
    index: int
    data: Any
    line: int  # where the document starts
    positions: _Marked | _Composed  # shared by the documents of one text

    def locate(self, path: tuple[Any, ...], *, key: bool = False) -> tuple[int, int]:
        """Line and column of the deepest part of `path` present in the document.

        Path parts that are not in the data (such as pydantic's union tags) are skipped, so a
        pydantic error `loc` maps straight to the field it is about. With `key`, the position of
        the last key itself rather than its value.
        """
        return self.positions.locate(self.index, path, key, (self.line, 1))


_SCALAR_RESOLVER = _CoreSchemaResolver()


def plain_scalar_is_string(text: str) -> bool:
    """Whether `text`, written unquoted, loads as a string here (and not as a number, bool, null)."""
    return _SCALAR_RESOLVER.resolve(yaml.ScalarNode, text, (True, False)) == "tag:yaml.org,2002:str"


def load_documents(text: str, max_documents: int | None = None) -> list[YamlDocument]:
    """Every document in `text`; raises YamlProblem for anything that is not clean YAML 1.2,
    and for more than `max_documents` documents (what is left of the build's budget)."""
    # The fast constructor needs no anchor (so no alias) and a text too short for any document
    # to pass the node budget (every counted node takes at least one character), which only
    # the positioned constructor counts.
    if "&" not in text and len(text) <= MAX_EXPANDED_NODES:
        try:
            return _load_fast(text, max_documents)
        except (_NeedsPositions, yaml.YAMLError, RecursionError, ValueError, TypeError):
            pass  # the positioned loader reads it again and says where the problem is
    return _load_positioned(text, max_documents)


def restore_documents(text: str, loaded: list[tuple[Any, int]]) -> list[YamlDocument]:
    """Documents read from `text` earlier (data, start line), as the check cache keeps them;
    positions are read again from the text if a diagnostic asks."""
    positions = _Composed(text)
    return [YamlDocument(index, data, line, positions) for index, (data, line) in enumerate(loaded)]


def _check_document_budget(loader: _Loader, index: int, max_documents: int | None) -> None:
    if max_documents is not None and index >= max_documents:
        mark = getattr(loader.peek_event(), "start_mark", None)
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        raise YamlProblem(codes.INPUT_BUDGET,
                          "the build's budget of documents is used up before this document; "
                          "it and the rest of the file are not read", line, column)


def _load_fast(text: str, max_documents: int | None = None) -> list[YamlDocument]:
    loader = _Loader(text)
    positions = _Composed(text)
    documents: list[YamlDocument] = []
    try:
        while loader.check_node():
            _check_document_budget(loader, len(documents), max_documents)
            node = cast(yaml.Node, loader.get_node())  # not None: check_node saw a document
            data = _plain_data(node, loader)
            documents.append(YamlDocument(len(documents), data, node.start_mark.line + 1, positions))
    finally:
        loader.dispose()
    return documents


def _load_positioned(text: str, max_documents: int | None = None) -> list[YamlDocument]:
    read = _read_positioned(text, max_documents)
    positions = _Marked(read)
    return [YamlDocument(index, data, line, positions) for index, (data, line, _) in enumerate(read)]


def _read_positioned(text: str, max_documents: int | None = None) -> list[tuple[Any, int, dict[int, Marks]]]:
    """(data, start line, marks) of every document; raises YamlProblem with its position."""
    loader = _Loader(text)
    documents: list[tuple[Any, int, dict[int, Marks]]] = []
    try:
        while loader.check_node():
            _check_document_budget(loader, len(documents), max_documents)
            node = cast(yaml.Node, loader.get_node())  # not None: check_node saw a document
            documents.append((loader.construct_document(node), node.start_mark.line + 1, loader.marks))
    except YamlProblem:
        raise
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        # libyaml >= 0.2.5 refuses nesting deeper than 1000 levels by itself
        too_deep = any(word in str(error.problem) for word in ("recursive", "nesting depth"))
        code = codes.ALIAS_EXPANSION if too_deep else codes.YAML_SYNTAX
        problem = error.problem or str(error)
        if isinstance(error, ConstructorError) and "recursive" in str(problem):
            problem = "a recursive alias (a node that contains itself) cannot be loaded"
        raise YamlProblem(code, problem, line, column) from None
    except yaml.YAMLError as error:
        raise YamlProblem(codes.YAML_SYNTAX, str(error), 1, 1) from None
    except RecursionError:
        raise YamlProblem(codes.ALIAS_EXPANSION, "the document is nested too deeply", 1, 1) from None
    finally:
        loader.dispose()
    return documents
