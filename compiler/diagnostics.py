"""Diagnostics: what meshc says about a mesh, and the sink every stage reports into."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from compiler.codes import CODES, SEVERITY_RANK, Code, Severity


@dataclass(frozen=True, order=True)
class Location:
    file: str  # posix path relative to the mesh root
    line: int  # 1-based
    column: int  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Related:
    location: Location
    message: str


@dataclass(frozen=True)
class Rename:
    """A mechanical fix: the key `old` at `location` becomes `new` (`meshc check --fix`)."""

    location: Location
    old: str
    new: str


@dataclass(frozen=True)
class Diagnostic:
    code: Code
    message: str
    location: Location | None
    severity: Severity
    related: tuple[Related, ...] = ()
    hint: str | None = None
    fix: Rename | None = None

    def sort_key(self) -> tuple:
        where = self.location or Location("", 0, 0)
        return (where.file, where.line, where.column, self.code.code, self.message)


@dataclass
class Report:
    """Collects diagnostics from every stage; stages never raise for user errors."""

    diagnostics: list[Diagnostic] = field(default_factory=list)
    # (file, line) -> codes suppressed there by a `# meshc: ignore[CODE]` comment
    line_suppressions: dict[tuple[str, int], frozenset[str]] = field(default_factory=dict)

    def add(
        self,
        code: Code,
        message: str,
        location: Location | None,
        *,
        related: tuple[Related, ...] | list[Related] = (),
        hint: str | None = None,
        severity: Severity | None = None,
        fix: Rename | None = None,
    ) -> Diagnostic:
        diagnostic = Diagnostic(
            code, message, location, severity or code.severity, tuple(related), hint, fix
        )
        self.diagnostics.append(diagnostic)
        return diagnostic

    def records(self, start: int = 0) -> list[tuple]:
        """The diagnostics from `start` on as plain tuples (the code by name), as the check cache keeps them."""
        return [(d.code.code, d.message, d.location, d.severity, d.related, d.hint, d.fix)
                for d in self.diagnostics[start:]]

    def add_records(self, records: Any) -> None:
        """Add diagnostics kept by `records`; raises TypeError, ValueError or KeyError for a
        malformed record, before adding any."""
        diagnostics = [Diagnostic(CODES[code], message, location, severity, tuple(related), hint, fix)
                       for code, message, location, severity, related, hint, fix in records]
        if not all(isinstance(d.message, str) and d.severity in SEVERITY_RANK for d in diagnostics):
            raise ValueError("not a diagnostic record")
        self.diagnostics.extend(diagnostics)

    @property
    def has_errors(self) -> bool:
        return any(d.severity == "error" for d in self.diagnostics)

    def sorted(self) -> list[Diagnostic]:
        unique = {(d.sort_key(), d.severity, d.related, d.hint): d for d in self.diagnostics}
        return [unique[k] for k in sorted(unique, key=lambda k: (k[0], k[1]))]

    def fails(self, fail_on: Severity) -> bool:
        threshold = SEVERITY_RANK[fail_on]
        return any(SEVERITY_RANK[d.severity] >= threshold for d in self.diagnostics)


def lookup(code: str) -> Code | None:
    """The code `MESH360`, `mesh360` or `360` names."""
    code = code.strip().upper()
    return CODES.get(code if code.startswith("MESH") else f"MESH{code.zfill(3)}")
