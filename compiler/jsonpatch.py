"""JSON Pointer (RFC 6901), JSON Patch (RFC 6902) and JSON Merge Patch (RFC 7396) on plain data.

The data is what a JSON or YAML reader gives: dicts with string keys, lists, str, int, float,
bool and None. A patch never changes its input: each function returns a new document, sharing
the parts it did not touch. Every failure is a PatchFailure naming the operation (its index
in the patch) and the member of it (`path`, `from`, `value`) the failure is about, so the
caller can locate it in the intent file (compiler.patches).

Deviations from the RFCs, both on the strict side: an operation member the RFC does not
define is an error (the model forbids it; RFC 6902 section 4 ignores it, so a misspelt
`form:` would silently mean nothing), and a patch whose copies would grow the document past
MAX_COPIED_NODES is refused (copying a large subtree repeatedly doubles a document each time).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

# Nodes that `copy` operations may add to one document in all (hostile input: thirty copies
# of a growing subtree into itself would otherwise build 2**30 nodes).
MAX_COPIED_NODES = 1_000_000

_ARRAY_INDEX = re.compile(r"0|[1-9][0-9]*")


class PatchFailure(Exception):
    """An operation that cannot be applied: `index` is its position in the patch (None for a
    merge patch), `member` the operation member the failure is about."""

    def __init__(self, message: str, index: int | None = None, member: str = "path") -> None:
        super().__init__(message)
        self.message = message
        self.index = index
        self.member = member


# ---------------------------------------------------------------------------------------------
# RFC 6901: JSON Pointer


def parse_pointer(pointer: str) -> list[str]:
    """The reference tokens of a pointer, unescaped: `~1` is `/`, then `~0` is `~` (in that
    order, so `~01` is `~1`). "" is the whole document."""
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchFailure(f"the JSON Pointer {pointer!r} does not start with '/' (nor is it '', the whole document)")
    tokens = pointer[1:].split("/")
    for token in tokens:
        if re.search(r"~(?![01])", token):
            raise PatchFailure(f"the JSON Pointer {pointer!r} holds '~' not followed by 0 or 1 (RFC 6901 escapes "
                               "'~' as '~0' and '/' as '~1')")
    return [token.replace("~1", "/").replace("~0", "~") for token in tokens]


def escape_token(token: str) -> str:
    """A member name as a pointer token."""
    return token.replace("~", "~0").replace("/", "~1")


def _index(token: str, array: list, pointer: str, *, end: bool) -> int:
    """The array index a token names; `-` (past the last element) only where `end` allows."""
    if token == "-" and end:
        return len(array)
    if not _ARRAY_INDEX.fullmatch(token):
        raise PatchFailure(f"{pointer!r}: {token!r} is not an array index (0, 1, ... without leading zeros"
                           + (", or '-' for the end)" if end else ")"))
    index = int(token)
    if index > len(array) or (index == len(array) and not end):
        raise PatchFailure(f"{pointer!r}: index {index} is past the end of an array of {len(array)}")
    return index


def resolve(document: Any, pointer: str) -> Any:
    """The value a pointer refers to; PatchFailure when it refers to nothing."""
    node = document
    for depth, token in enumerate(tokens := parse_pointer(pointer)):
        where = "/" + "/".join(escape_token(t) for t in tokens[: depth + 1])
        if isinstance(node, dict):
            if token not in node:
                raise PatchFailure(f"{pointer!r}: there is no member {token!r} at {where!r}")
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(token, node, pointer, end=False)]
        else:
            raise PatchFailure(f"{pointer!r}: {where!r} is inside a {json_type(node)}, which has no members")
    return node


def json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


# ---------------------------------------------------------------------------------------------
# RFC 6902: JSON Patch


def json_equal(left: Any, right: Any) -> bool:
    """RFC 6902 section 4.6 equality: numbers by value (1 equals 1.0), never equal to a boolean;
    strings by code points; arrays element by element in order; objects by members, unordered."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, (int, float)) and isinstance(right, (int, float)):
        return left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(json_equal(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(json_equal(a, b) for a, b in zip(left, right, strict=True))
    return type(left) is type(right) and left == right


def node_count(value: Any) -> int:
    count = 0
    pending = [value]
    while pending:
        node = pending.pop()
        count += 1
        if isinstance(node, dict):
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return count


def deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [deep_copy(v) for v in value]
    return value


def _with(document: Any, tokens: list[str], pointer: str, change) -> Any:
    """A copy of `document` with the containers along `tokens[:-1]` copied and `change(parent,
    last token)` applied to the copied parent: nothing the caller holds is modified."""
    if not tokens:
        raise AssertionError("the whole document is replaced by the caller")
    root = _shallow(document)
    node = root
    for depth, token in enumerate(tokens[:-1]):
        where = "/" + "/".join(escape_token(t) for t in tokens[: depth + 1])
        if isinstance(node, dict):
            if token not in node:
                raise PatchFailure(f"{pointer!r}: there is no member {token!r} at {where!r}")
            child = node[token] = _shallow(node[token])
        elif isinstance(node, list):
            index = _index(token, node, pointer, end=False)
            child = node[index] = _shallow(node[index])
        else:
            raise PatchFailure(f"{pointer!r}: {where!r} is inside a {json_type(node)}, which has no members")
        node = child
    if not isinstance(node, (dict, list)):
        raise PatchFailure(f"{pointer!r}: the parent is a {json_type(node)}, which has no members")
    change(node, tokens[-1])
    return root


def _shallow(value: Any) -> Any:
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return list(value)
    return value


def _put(document: Any, pointer: str, value: Any, *, replace: bool) -> Any:
    """`add` (RFC 6902 4.1: into an array, insert) or `replace` (4.3: the target must exist)."""
    if replace:
        resolve(document, pointer)  # "The target location MUST exist for the operation to be successful"
    tokens = parse_pointer(pointer)
    if not tokens:
        return value

    def change(parent: dict | list, token: str) -> None:
        if isinstance(parent, dict):
            parent[token] = value
        elif replace:
            parent[_index(token, parent, pointer, end=False)] = value
        else:
            parent.insert(_index(token, parent, pointer, end=True), value)

    return _with(document, tokens, pointer, change)


def _remove(document: Any, pointer: str) -> Any:
    tokens = parse_pointer(pointer)
    if not tokens:
        raise PatchFailure("the whole document cannot be removed")

    def change(parent: dict | list, token: str) -> None:
        if isinstance(parent, dict):
            if token not in parent:
                raise PatchFailure(f"{pointer!r}: there is no member {token!r} to remove")
            del parent[token]
        else:
            del parent[_index(token, parent, pointer, end=False)]

    return _with(document, tokens, pointer, change)


def apply_json_patch(document: Any, operations: Iterable[Mapping[str, Any]]) -> Any:
    """The document after every operation, in order (RFC 6902 section 5: all or nothing, so the
    input is never changed). Each operation is a mapping with `op`, `path` and, as its op needs
    them, `value` and `from`; a missing member is a PatchFailure."""
    copied = 0
    for index, operation in enumerate(operations):
        op = operation.get("op")
        path = operation.get("path")
        try:
            if not isinstance(path, str):
                raise PatchFailure("an operation needs `path`, a JSON Pointer")
            if op in ("add", "replace", "test") and "value" not in operation:
                raise PatchFailure(f"a {op} operation needs `value`", member="op")
            if op in ("move", "copy") and not isinstance(operation.get("from"), str):
                raise PatchFailure(f"a {op} operation needs `from`, a JSON Pointer", member="op")
            if op == "add":
                document = _put(document, path, operation["value"], replace=False)
            elif op == "remove":
                document = _remove(document, path)
            elif op == "replace":
                document = _put(document, path, operation["value"], replace=True)
            elif op == "move":
                source = operation["from"]
                if path != source and path.startswith(source + "/"):
                    raise PatchFailure(f"{source!r} cannot be moved into one of its own children ({path!r})",
                                       member="from")
                value = _at(document, source)
                document = _put(_remove(document, source), path, value, replace=False)
            elif op == "copy":
                value = _at(document, operation["from"])
                copied += node_count(value)
                if copied > MAX_COPIED_NODES:
                    raise PatchFailure(f"the copies of this patch add more than {MAX_COPIED_NODES} nodes to the "
                                       "document", member="from")
                document = _put(document, path, deep_copy(value), replace=False)
            elif op == "test":
                found = resolve(document, path)
                if not json_equal(found, operation["value"]):
                    raise PatchFailure(f"test failed: {path!r} is {_shown(found)}, not {_shown(operation['value'])}",
                                       member="value")
            else:
                raise PatchFailure(f"{op!r} is not one of add, remove, replace, move, copy, test", member="op")
        except PatchFailure as failure:
            failure.index = index
            raise
    return document


def _at(document: Any, pointer: str) -> Any:
    try:
        return resolve(document, pointer)
    except PatchFailure as failure:
        failure.member = "from"
        raise


def _shown(value: Any, limit: int = 80) -> str:
    import json

    text = json.dumps(value, ensure_ascii=True, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------------------------------------
# RFC 7396: JSON Merge Patch


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 section 2, MergePatch(Target, Patch): an object patch merges member by member
    (null removes a member; a non-object target becomes {} first); anything else replaces the
    target. Returns a new value; the target is not changed."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = apply_merge_patch(merged.get(name), value)
    return merged
