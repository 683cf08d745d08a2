"""Deterministic serialisation of structured artifacts: sorted keys, LF, one trailing newline.

YAML is written by a small block-style emitter for the only data artifacts are made of (dicts
with string keys, lists, str, int, float, bool, None): PyYAML represents every node in Python
even with libyaml, which made YAML output the slowest stage of a build. The layout is PyYAML's
block style (two-space mappings, sequences not indented under their key). A string is written
plain only when no YAML 1.1 or 1.2 reader could take it for anything else (it starts with a
letter, `_` or `/`, holds only characters that never start an indicator, and is not a boolean
or null word in any case, including YAML 1.1's y/n/yes/no/on/off); every other string is
quoted: single quotes when it is one line of printable characters, double quotes with escapes
otherwise. tests/test_serialize.py round-trips this through PyYAML (YAML 1.1) and ruamel.yaml
(YAML 1.2).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable
from typing import Any

# No reader resolves these to a non-string. The first character is a letter, `_` or `/`
# (never a number, a timestamp or an indicator), or a digit when a letter that no number or
# timestamp format holds follows somewhere (`10s`, `5xx,reset`; not a-f, o, p, t, x, z, which
# hex, octal, exponents, Go's hex floats and timestamps use). The rest are word characters and
# separators that only mean something at the start of a scalar or before a space: ':' and ' '
# stand only between two safe characters, so `: ` and ` #` never occur.
_PLAIN = re.compile(
    r"(?:[A-Za-z_/]|[0-9](?=.*[g-np-su-wyG-NP-SU-WY]))[A-Za-z0-9_./@%+=,*~-]*(?:[: ][A-Za-z0-9_./@%+=,*~-]+)*"
)
# YAML 1.1 booleans and nulls (PyYAML, go-yaml v2: y/n too) and YAML 1.2's, in any case;
# inf/nan for readers that take them without the leading dot.
_WORDS = frozenset(("y", "n", "yes", "no", "true", "false", "on", "off", "null", "inf", "nan", "infinity"))


@functools.cache
def _single_quotable() -> re.Pattern[str]:
    """One line of printable characters that single quotes carry verbatim: no tab, no line break
    (NEL, LS and PS are line breaks in YAML 1.1), no byte-order mark, no C0/C1 control. Compiled
    when first needed (these ranges take milliseconds to compile, and ASCII text never needs them)."""
    return re.compile(r"[\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]*")


@functools.cache
def _needs_escape() -> re.Pattern[str]:
    return re.compile(
        r"[^\x20-\x21\x23-\x5b\x5d-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
    )


_NAMED_ESCAPES = {
    "\0": "\\0", "\a": "\\a", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\v": "\\v", "\f": "\\f",
    "\r": "\\r", "\x1b": "\\e", '"': '\\"', "\\": "\\\\", "\x85": "\\N", "\u2028": "\\L", "\u2029": "\\P",
}
# Longest key written as an implicit key: YAML limits those to 1024 characters.
_MAX_KEY = 1024


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED_ESCAPES.get(char)
    if named is not None:
        return named
    point = ord(char)
    if point < 0x100:
        return f"\\x{point:02X}"
    if point < 0x10000:
        return f"\\u{point:04X}"
    return f"\\U{point:08X}"


def _quote(text: str) -> str:
    if _PLAIN.fullmatch(text) and text.lower() not in _WORDS:
        return text
    # ASCII is single-quotable exactly when printable (\x20-\x7e)
    if text.isprintable() if text.isascii() else _single_quotable().fullmatch(text):
        return "'" + text.replace("'", "''") + "'"
    return '"' + _needs_escape().sub(_escape, text) + '"'


# Artifacts repeat the same strings (names, labels, kinds) many times: each is quoted once.
_quoted: dict[str, str] = {}


def _string(text: str) -> str:
    quoted = _quoted.get(text)
    if quoted is None:
        if len(_quoted) > 500_000:
            _quoted.clear()
        quoted = _quoted[text] = _quote(text)
    return quoted


def _float(value: float) -> str:
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value)
    # YAML 1.1 floats need a dot: 1e+17 is written 1.0e+17 (a float in 1.1 and 1.2 alike)
    return text.replace("e", ".0e", 1) if "e" in text and "." not in text else text


def _scalar(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return _string(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if value is None:
        return "null"
    if kind is float:
        return _float(value)
    if kind is dict:
        return "{}"  # only empty ones reach here
    if kind is list:
        return "[]"
    raise TypeError(f"cannot write {kind.__name__} as YAML: artifacts are built from plain data")


def _key(key: Any) -> str:
    if type(key) is not str:
        if type(key) in (dict, list):
            raise TypeError("a YAML mapping key must be a scalar")
        return _scalar(key)
    text = _string(key)
    if len(text) > _MAX_KEY:
        raise ValueError(f"a mapping key of {len(key)} characters is longer than YAML allows")
    return text


def _mapping(data: dict, pad: str, first: str, out: list[str]) -> None:
    prefix = first
    inner = pad + "  "
    for key in sorted(data):
        value = data[key]
        kind = type(value)
        if kind is dict and value:
            out.append(f"{prefix}{_key(key)}:\n")
            _mapping(value, inner, inner, out)
        elif kind is list and value:
            out.append(f"{prefix}{_key(key)}:\n")
            _sequence(value, pad, pad, out)
        else:
            out.append(f"{prefix}{_key(key)}: {_scalar(value)}\n")
        prefix = pad


def _sequence(data: list, pad: str, first: str, out: list[str]) -> None:
    prefix = first
    inner = pad + "  "
    for item in data:
        kind = type(item)
        if kind is dict and item:
            _mapping(item, inner, prefix + "- ", out)
        elif kind is list and item:
            _sequence(item, inner, prefix + "- ", out)
        else:
            out.append(f"{prefix}- {_scalar(item)}\n")
        prefix = pad


def _document(data: Any, out: list[str]) -> None:
    kind = type(data)
    if kind is dict and data:
        _mapping(data, "", "", out)
    elif kind is list and data:
        _sequence(data, "", "", out)
    else:
        out.append(_scalar(data) + "\n")


def to_json(data: Any) -> bytes:
    import orjson

    return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def to_yaml(data: Any) -> bytes:
    out: list[str] = []
    _document(data, out)
    return "".join(out).encode("utf-8")


def to_yaml_documents(documents: Iterable[Any]) -> bytes:
    """A multi-document YAML stream, each document introduced by `---`."""
    out: list[str] = []
    for document in documents:
        out.append("---\n")
        _document(document, out)
    return "".join(out).encode("utf-8")
