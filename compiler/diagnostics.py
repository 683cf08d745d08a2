"""Diagnostics: what meshc says about a mesh, and the sink every stage reports into."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from compiler.codes import CODES, SEVERITY_RANK, Code, Severity


class Location:
    """file:line:column (posix path relative to the mesh root; line and column 1-based).

    A position looked up in the source side table is deferred (`Location.deferred`): finding
    it means composing its file again, which costs more than the rest of most diagnostics, and
    a diagnostic nobody prints, sorts or compares (a warning under --quiet, a value a target
    computes in case it reports) never needs it. Equality, hashing, ordering and pickling see
    the position, so a deferred Location is indistinguishable from a plain one.
    """

    __slots__ = ("_column", "_find", "_line", "file")
    __match_args__ = ("file", "line", "column")
    file: str
    _line: int
    _column: int
    _find: Callable[[], tuple[int, int]] | None

    def __init__(self, file: str, line: int, column: int) -> None:
        object.__setattr__(self, "file", file)
        object.__setattr__(self, "_line", line)
        object.__setattr__(self, "_column", column)
        object.__setattr__(self, "_find", None)

    @classmethod
    def deferred(cls, file: str, find: Callable[[], tuple[int, int]]) -> Location:
        """A Location of `file` whose line and column `find` gives when first asked for."""
        location = cls(file, 0, 0)
        object.__setattr__(location, "_find", find)
        return location

    def _resolve(self) -> None:
        find = self._find
        assert find is not None
        line, column = find()
        object.__setattr__(self, "_line", line)
        object.__setattr__(self, "_column", column)
        object.__setattr__(self, "_find", None)

    @property
    def line(self) -> int:
        if self._find is not None:
            self._resolve()
        return self._line

    @property
    def column(self) -> int:
        if self._find is not None:
            self._resolve()
        return self._column

    def _key(self) -> tuple[str, int, int]:
        return (self.file, self.line, self.column)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Location is immutable: cannot set {name!r}")

    def __eq__(self, other: object) -> bool:
        return self._key() == other._key() if isinstance(other, Location) else NotImplemented

    def __lt__(self, other: Location) -> bool:
        return self._key() < other._key() if isinstance(other, Location) else NotImplemented

    def __le__(self, other: Location) -> bool:
        return self._key() <= other._key() if isinstance(other, Location) else NotImplemented

    def __gt__(self, other: Location) -> bool:
        return self._key() > other._key() if isinstance(other, Location) else NotImplemented

    def __ge__(self, other: Location) -> bool:
        return self._key() >= other._key() if isinstance(other, Location) else NotImplemented

    def __hash__(self) -> int:
        return hash(self._key())

    def __reduce__(self) -> tuple:
        return (Location, self._key())

    def __repr__(self) -> str:
        return f"Location(file={self.file!r}, line={self.line!r}, column={self.column!r})"

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
    # a mesh with environments: the environments it was found in (the text prefixes the message)
    environments: tuple[str, ...] = ()

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
        return [(d.code.code, d.message, d.location, d.severity, d.related, d.hint, d.fix, d.environments)
                for d in self.diagnostics[start:]]

    def add_records(self, records: Any) -> None:
        """Add diagnostics kept by `records`; raises TypeError, ValueError or KeyError for a
        malformed record, before adding any."""
        diagnostics = [Diagnostic(CODES[code], message, location, severity, tuple(related), hint, fix,
                                  tuple(environments))
                       for code, message, location, severity, related, hint, fix, environments in records]
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
