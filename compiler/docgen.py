"""Write the generated documentation: `python -m compiler.docgen`.

docs/diagnostics.md is generated whole from the code table; in docs/policies.md the table
of checks, between two markers, is generated from the check registry; in docs/intents.md the
field tables of each kind, between markers, from the models and compiler/fielddocs.py (the
text `meshc schema` describes each field with). None is edited by hand; tests keep the
committed copies current.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

import annotated_types
from pydantic import BaseModel

from compiler.codes import CODES

DOCS = Path(__file__).resolve().parent.parent / "docs"
OUTPUT = DOCS / "diagnostics.md"
POLICIES = DOCS / "policies.md"
INTENTS = DOCS / "intents.md"
CHECKS_BEGIN = "<!-- checks: generated from policies/registry.py by `python -m compiler.docgen`; do not edit -->"
CHECKS_END = "<!-- end of checks -->"

RANGES = (
    ("MESH0", "Loading and YAML (0xx)"),
    ("MESH1", "Schema (1xx)"),
    ("MESH2", "References and linking (2xx)"),
    ("MESH3", "Semantic analysis and Policies (3xx)"),
    ("MESH4", "Target-specific (4xx)"),
    ("MESH5", "Route tests (5xx)"),
)


def render() -> str:
    lines = [
        "# Diagnostic codes",
        "",
        "<!-- Generated from compiler/codes.py by `python -m compiler.docgen`; do not edit. -->",
        "",
        "Every diagnostic meshc reports has a stable code. `meshc explain CODE` prints one entry.",
        "The severity is the default; Policies set their own, and `--fail-on` chooses which",
        "severity fails a command. Semantic-analysis codes (3xx) can be suppressed, see",
        "docs/policies.md.",
        "",
    ]
    for prefix, title in RANGES:
        entries = [CODES[c] for c in sorted(CODES) if c.startswith(prefix)]
        if not entries:
            continue
        lines += [f"## {title}", "", "| code | name | severity | summary |", "| --- | --- | --- | --- |"]
        lines += [f"| [{e.code}](#{e.code.lower()}) | {e.name} | {e.severity} | {e.summary} |" for e in entries]
        lines.append("")
        for entry in entries:
            lines += [f"### {entry.code}", "", f"**{entry.name}**, {entry.severity} by default. {entry.summary}",
                      "", entry.explanation, ""]
    return "\n".join(lines)


def _code_list(codes: list[str]) -> str:
    """MESH301, MESH302 / MESH340-MESH343: runs of three or more consecutive codes as a range."""
    runs: list[list[str]] = []
    for code in sorted(codes):
        if runs and int(code[4:]) == int(runs[-1][-1][4:]) + 1:
            runs[-1].append(code)
        else:
            runs.append([code])
    return ", ".join(f"{run[0]}-{run[-1]}" if len(run) >= 3 else ", ".join(run) for run in runs)


def render_checks() -> str:
    """The table of checks: name, the kinds it reads, its codes, what it proves."""
    from policies.check import KINDS
    from policies.registry import CHECKS

    lines = [CHECKS_BEGIN, "", "| check | reads | codes | what it proves |", "| --- | --- | --- | --- |"]
    for check in CHECKS:
        reads = ", ".join(kind for kind in KINDS if kind in check.reads)
        lines.append(f"| {check.name} | {reads} | {_code_list([c.code for c in check.codes])} | {check.summary} |")
    return "\n".join([*lines, "", CHECKS_END])


def render_policies(page: str) -> str:
    """docs/policies.md with its table of checks regenerated."""
    begin, end = page.index(CHECKS_BEGIN), page.index(CHECKS_END) + len(CHECKS_END)
    return page[:begin] + render_checks() + page[end:]



# --------------------------------------------------------------------------------------------
# docs/intents.md: the field tables of each kind, from the models and compiler/fielddocs.py


def _named_types() -> list[tuple[Any, str]]:
    """The model's type aliases by the name a reader knows them by."""
    from compiler import model

    return [
        (model.Name, "name"), (model.Ref, "reference (`name` or `namespace/name`)"), (model.HostName, "host name"),
        (model.Duration, "duration"), (model.Port, "port"), (model.Percent, "percent (0-100)"),
        (model.HeaderName, "header name"), (model.LabelKey, "label key"), (model.LabelValue, "label value"),
        (model.SidecarEgressHost, "`namespace/host`"), (model.HostHeader, "host[:port]"),
        (model.RequestPath, "path"), (model.CelText, "CEL expression"), (model.ServiceOrAny, "reference or `*`"),
        (model.JsonData, "JSON data"), (model.JsonPointer, "JSON Pointer"),
    ]


def _type_text(hint: Any, named: list[tuple[Any, str]]) -> str:
    """A field's type as docs/intents.md says it: `list of [ServicePort](#serviceport), at least one`."""
    for alias, label in named:
        if hint == alias:
            return label
    origin, args = get_origin(hint), get_args(hint)
    if origin is Annotated:
        text = _type_text(args[0], named)
        for constraint in (m for meta in args[1:] for m in getattr(meta, "metadata", [meta])):
            if isinstance(constraint, annotated_types.MinLen) and constraint.min_length == 1:
                text += ", at least one"
            elif isinstance(constraint, annotated_types.Ge):
                text += f" from {constraint.ge}"
            elif isinstance(constraint, annotated_types.Le):
                text += f" to {constraint.le}"
        return text
    if origin in (Union, UnionType):
        return " or ".join(_type_text(arg, named) for arg in args if arg is not type(None))
    if origin is Literal:
        return " \\| ".join(f"`{value}`" for value in args)
    if origin is list:
        return f"list of {_type_text(args[0], named)}"
    if origin is dict:
        return f"map of {_type_text(args[0], named)} to {_type_text(args[1], named)}"
    if isinstance(hint, type) and issubclass(hint, BaseModel):
        return f"[{hint.__name__}](#{hint.__name__.lower()})"
    return {bool: "bool", int: "integer", float: "number", str: "text", Any: "JSON data"}[hint]


def _flow(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {_flow(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(item) for item in value) + "]"
    return json.dumps(value) if isinstance(value, bool) else str(value)


def _default_text(field: Any) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", by_alias=True, exclude_none=True)
    return f"`{_flow(value)}`"


def _models_of(hint: Any) -> list[type[BaseModel]]:
    """The models a field's type holds, in order."""
    if isinstance(hint, type) and issubclass(hint, BaseModel):
        return [hint]
    return [model for arg in get_args(hint) for model in _models_of(arg)]


def field_tables(kind: str, done: set[str]) -> str:
    """The table of a kind's fields, then one of each model it holds that `done` lacks."""
    from compiler.fielddocs import description
    from compiler.model import KIND_MODELS

    named = _named_types()
    pending: list[type[BaseModel]] = [KIND_MODELS[kind]]
    lines = [fields_begin(kind), ""]
    while pending:
        model = pending.pop(0)
        if model.__name__ in done:
            continue
        done.add(model.__name__)
        hints = get_type_hints(model, include_extras=True)
        if model is not KIND_MODELS[kind]:
            lines += [f"### {model.__name__}", ""]
        lines += ["| field | type | default | meaning |", "| --- | --- | --- | --- |"]
        for name, field in model.model_fields.items():
            key = field.alias or name
            meaning = description(model, key).replace("|", "\\|")
            lines.append(f"| `{key}` | {_type_text(hints[name], named)} | {_default_text(field)} | {meaning} |")
            pending += [m for m in _models_of(hints[name]) if m.__name__ not in done and m not in pending]
        lines.append("")
    return "\n".join([*lines, FIELDS_END])


def fields_begin(kind: str) -> str:
    return (f"<!-- fields of {kind}: generated from compiler/fielddocs.py by `python -m compiler.docgen`; "
            "do not edit -->")


FIELDS_END = "<!-- end of fields -->"


def render_intents(page: str) -> str:
    """docs/intents.md with the field tables of every kind regenerated where their markers stand."""
    from compiler.model import KIND_MODELS

    done: set[str] = set()
    for kind in KIND_MODELS:
        begin = page.index(fields_begin(kind))
        end = page.index(FIELDS_END, begin) + len(FIELDS_END)
        page = page[:begin] + field_tables(kind, done) + page[end:]
    return page


def main() -> None:
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(render(), encoding="utf-8")
    POLICIES.write_text(render_policies(POLICIES.read_text(encoding="utf-8")), encoding="utf-8")
    INTENTS.write_text(render_intents(INTENTS.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote {OUTPUT}, the checks of {POLICIES} and the field tables of {INTENTS}")


if __name__ == "__main__":
    main()
