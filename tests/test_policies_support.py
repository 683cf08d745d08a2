"""Helpers for the policies tests: the small base mesh of tests/fixtures/policies and the
diagnostics of a compiled mesh."""

from __future__ import annotations

import textwrap
from pathlib import Path

from compiler.build import compile_mesh
from compiler.diagnostics import Diagnostic

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "policies"
MESH = (FIXTURES / "mesh.yaml").read_text(encoding="utf-8")


def fixture(name: str) -> str:
    """The text of tests/fixtures/policies/NAME."""
    return (FIXTURES / name).read_text(encoding="utf-8")


def frontend(*calls: str) -> str:
    """The entry service (tests/fixtures/policies/front.yaml), calling `calls`."""
    return fixture("front.yaml") + ("calls:\n" + "".join(f"  - {c}\n" for c in calls) if calls else "")


def analysed(root: Path) -> list[Diagnostic]:
    """The diagnostics of a mesh that loads and links cleanly."""
    compiled = compile_mesh(root)
    assert compiled.graph is not None, [str(d) for d in compiled.report.sorted()]
    early = [d for d in compiled.report.diagnostics if not d.code.code.startswith(("MESH3", "MESH4"))]
    assert early == [], early
    return compiled.report.sorted()


def found(diagnostics: list[Diagnostic]) -> list[tuple[str, str, int, int]]:
    return [(d.code.code, d.location.file, d.location.line, d.location.column) for d in diagnostics]


def position(files: dict[str, str], path: str, needle: str, nth: int = 1) -> tuple[str, int, int]:
    """(file, line, column) of the nth occurrence of `needle` in one of the written files;
    a `^` in the needle marks the column, else it is the needle's first character."""
    text = textwrap.dedent(files[path])
    skip = needle.find("^") if "^" in needle else 0
    needle = needle.replace("^", "", 1)
    start = -1
    for _ in range(nth):
        start = text.index(needle, start + 1)
    start += skip
    line = text.count("\n", 0, start) + 1
    column = start - (text.rfind("\n", 0, start) + 1) + 1
    return path, line, column
