"""A deferred Location (compiler.diagnostics) finds its line and column only when first asked,
and is otherwise indistinguishable from a plain one: equal, same hash, same order, pickled as
the plain position. Positions from the source side table are deferred, so a target that
computes a location in case it reports pays nothing when it does not."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from compiler.build import compile_mesh
from compiler.diagnostics import Location, Related

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "bookinfo"


def _counted(line: int, column: int, calls: list[int]):
    def find() -> tuple[int, int]:
        calls.append(1)
        return line, column
    return find


def test_found_once_when_first_asked() -> None:
    calls: list[int] = []
    location = Location.deferred("services/a.yaml", _counted(7, 3, calls))
    assert calls == []
    assert (location.line, location.column, location.line) == (7, 3, 7)
    assert calls == [1]
    assert str(location) == "services/a.yaml:7:3"
    assert repr(location) == "Location(file='services/a.yaml', line=7, column=3)"


def test_equal_hashed_and_ordered_as_the_plain_position() -> None:
    deferred = Location.deferred("b.yaml", _counted(2, 5, []))
    plain = Location("b.yaml", 2, 5)
    assert deferred == plain and plain == deferred and hash(deferred) == hash(plain)
    assert Related(deferred, "x") == Related(plain, "x")
    assert sorted([Location("b.yaml", 3, 1), deferred, Location("a.yaml", 9, 9)]) == [
        Location("a.yaml", 9, 9), plain, Location("b.yaml", 3, 1)]
    assert deferred != Location("b.yaml", 2, 6) and deferred < Location("b.yaml", 2, 6)
    match deferred:
        case Location(file, line, column):
            assert (file, line, column) == ("b.yaml", 2, 5)


def test_pickled_as_the_plain_position() -> None:
    restored = pickle.loads(pickle.dumps(Location.deferred("c.yaml", _counted(4, 1, []))))
    assert restored == Location("c.yaml", 4, 1)
    assert restored._find is None


def test_immutable() -> None:
    with pytest.raises(AttributeError):
        Location("a.yaml", 1, 1).line = 2  # type: ignore[misc]


def test_side_table_positions_are_found_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """A location taken from the side table composes nothing until its line is read, and then
    gives the line of the field in the file."""
    compiled = compile_mesh(EXAMPLE)
    service = next(i for i in compiled.loaded.intents if i.kind == "Service" and i.model.ports)
    document = compiled.sources.documents[(service.origin.file, service.origin.document)]
    positions = type(document.positions)
    original = positions.locate
    found: list[tuple] = []

    def counting(self, *args):
        found.append(args)
        return original(self, *args)

    monkeypatch.setattr(positions, "locate", counting)
    location = compiled.sources.locate(service.origin, "ports", 0, "protocol", key=True)
    assert found == []
    text = compiled.sources.line_text(location)
    assert len(found) == 1
    assert text is not None and text[location.column - 1:].startswith("protocol")
