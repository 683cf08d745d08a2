"""Diagnostic renderers: text (as a compiler prints), json, sarif 2.1.0 and github."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import PurePosixPath

from compiler import __version__
from compiler.codes import CODES
from compiler.diagnostics import Diagnostic
from compiler.loader import SourceTable

_COLORS = {"error": "\033[1;31m", "warning": "\033[1;33m", "info": "\033[1;36m", "bold": "\033[1m", "reset": "\033[0m"}
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


# Text a pull request controls (messages, file names, source lines) is printed through
# `printable`: no control character, line or paragraph separator or bidirectional override
# reaches a terminal or a CI log, so no printed line can start a `::` workflow command and no
# escape sequence reaches the terminal.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
# Source lines echoed under a diagnostic are cut to a window around the caret.
ECHO_WIDTH = 160
# Text diagnostics shown per file; the rest are counted (every format still carries them all).
SHOWN_PER_FILE = 50


def printable(text: str) -> str:
    """`text` with every control and invisible formatting character as a visible escape."""
    return _UNPRINTABLE.sub(_escape_character, text)


def _escape_character(match: re.Match[str]) -> str:
    character = match.group()
    return f"\\x{ord(character):02x}" if ord(character) < 0x100 else f"\\u{ord(character):04x}"


def _echo(line: str, column: int) -> tuple[str, int]:
    """The source line as shown (tabs as one space, escapes visible, at most ECHO_WIDTH
    characters around the column) and the caret's offset in it."""
    line = line.expandtabs(1)
    before, after = printable(line[: column - 1]), printable(line[column - 1:])
    if len(before) + len(after) <= ECHO_WIDTH:
        return before + after, len(before)
    start = max(0, len(before) - ECHO_WIDTH // 2)
    shown = before[start:] + after
    prefix = "..." if start else ""
    suffix = "..." if len(shown) > ECHO_WIDTH else ""
    return prefix + shown[:ECHO_WIDTH] + suffix, len(prefix) + len(before) - start


def render_text(diagnostics: list[Diagnostic], sources: SourceTable, *, color: bool = False, root: str = "") -> str:
    def paint(style: str, text: str) -> str:
        return f"{_COLORS[style]}{text}{_COLORS['reset']}" if color else text

    out: list[str] = []
    shown: dict[str, int] = {}
    for d in diagnostics:
        file = d.location.file if d.location else ""
        shown[file] = shown.get(file, 0) + 1
        if shown[file] > SHOWN_PER_FILE:
            continue
        where = f"{_display(root, d.location.file)}:{d.location.line}:{d.location.column}: " if d.location else ""
        out.append(f"{paint('bold', where)}{paint(d.severity, d.severity)}[{d.code.code}]: {printable(d.message)}")
        if d.location is not None:
            line = sources.line_text(d.location)
            if line is not None:
                text, caret = _echo(line, d.location.column)
                gutter = " " * len(str(d.location.line))
                out.append(f" {gutter} |")
                out.append(f" {d.location.line} | {text}")
                out.append(f" {gutter} | {' ' * caret}{paint(d.severity, '^')}")
        for related in d.related:
            out.append(f"  note: {_display(root, related.location.file)}:{related.location.line}:"
                       f"{related.location.column}: {printable(related.message)}")
        if d.hint:
            out.append(f"  hint: {printable(d.hint)}")
    for file, count in shown.items():
        if count > SHOWN_PER_FILE:
            out.append(f"{_display(root, file) if file else 'meshc'}: {count - SHOWN_PER_FILE} more diagnostics "
                       "not shown (--format json lists them all)")
    counts = {s: sum(1 for d in diagnostics if d.severity == s) for s in ("error", "warning", "info")}
    if diagnostics:
        out.append(", ".join(f"{n} {s}{'s' if n != 1 else ''}" for s, n in counts.items() if n))
    return "\n".join(out) + ("\n" if out else "")


def _display(root: str, file: str) -> str:
    """A file name as printed: escaped (a file name may hold any character but / and NUL)."""
    return printable(str(PurePosixPath(root) / file) if root else file)


def _location_json(location) -> dict | None:
    if location is None:
        return None
    return {"file": location.file, "line": location.line, "column": location.column}


def render_json(diagnostics: list[Diagnostic], sources: SourceTable, **_: object) -> str:
    items = [
        {
            "code": d.code.code,
            "name": d.code.name,
            "severity": d.severity,
            "message": d.message,
            "location": _location_json(d.location),
            "related": [{"message": r.message, "location": _location_json(r.location)} for r in d.related],
            "hint": d.hint,
            # a mesh with environments: where it was found (the message starts with them too)
            **({"environments": list(d.environments)} if d.environments else {}),
        }
        for d in diagnostics
    ]
    return json.dumps({"diagnostics": items}, indent=2, sort_keys=True) + "\n"


_SARIF_LEVEL = {"error": "error", "warning": "warning", "info": "note"}


def render_sarif(diagnostics: list[Diagnostic], sources: SourceTable, *, root: str = "", **_: object) -> str:
    used = sorted({d.code.code for d in diagnostics})
    rule_index = {code: i for i, code in enumerate(used)}

    def physical(location) -> dict:
        return {
            "physicalLocation": {
                "artifactLocation": {"uri": _display(root, location.file)},
                "region": {"startLine": location.line, "startColumn": location.column},
            }
        }

    results = []
    for d in diagnostics:
        result = {
            "ruleId": d.code.code,
            "ruleIndex": rule_index[d.code.code],
            "level": _SARIF_LEVEL[d.severity],
            "message": {"text": d.message + (f" (hint: {d.hint})" if d.hint else "")},
        }
        if d.location is not None:
            result["locations"] = [physical(d.location)]
        if d.environments:  # SARIF 2.1.0 3.8, property bags: a tool's own properties of a result
            result["properties"] = {"environments": list(d.environments)}
        if d.related:
            result["relatedLocations"] = [
                {"id": i, "message": {"text": r.message}, **physical(r.location)} for i, r in enumerate(d.related)
            ]
        results.append(result)
    rules = [
        {
            "id": code,
            "name": CODES[code].name,
            "shortDescription": {"text": CODES[code].summary},
            "fullDescription": {"text": CODES[code].explanation},
            "help": {"text": CODES[code].explanation},
            "defaultConfiguration": {"level": _SARIF_LEVEL[CODES[code].severity]},
        }
        for code in used
    ]
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "meshc", "version": __version__, "informationUri":
                                    "https://github.com/meshc/meshc", "rules": rules}},
                "results": results,
            }
        ],
    }
    return json.dumps(log, indent=2, sort_keys=True) + "\n"


def _github_escape(text: str, *, property_value: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if property_value:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


_GITHUB_COMMAND = {"error": "error", "warning": "warning", "info": "notice"}


def render_github(diagnostics: list[Diagnostic], sources: SourceTable, *, root: str = "", **_: object) -> str:
    out = []
    for d in diagnostics:
        props = [f"title={_github_escape(d.code.code + ' ' + d.code.name, property_value=True)}"]
        if d.location is not None:
            props[:0] = [
                f"file={_github_escape(_display(root, d.location.file), property_value=True)}",
                f"line={d.location.line}",
                f"col={d.location.column}",
            ]
        message = printable(d.message) + (f"\nhint: {printable(d.hint)}" if d.hint else "")
        out.append(f"::{_GITHUB_COMMAND[d.severity]} {','.join(props)}::{_github_escape(message)}")
    return "\n".join(out) + ("\n" if out else "")


RENDERERS: dict[str, Callable[..., str]] = {
    "text": render_text,
    "json": render_json,
    "sarif": render_sarif,
    "github": render_github,
}
