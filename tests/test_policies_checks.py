"""Every semantic-analysis code: a violating mesh reports that code at exactly the field it is
about; the clean variant does not report it.

Each code has a directory under tests/fixtures/checks/: `violating/` and `clean/` are mesh
roots, `expected.yaml` says where the code is reported. A fixture asserts its own code only,
so a new check never forces edits to the fixtures of the others.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.test_policies_support import analysed, found

FIXTURES = REPO / "tests" / "fixtures" / "checks"
CODES = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())


def _expected(code: str) -> tuple[str, str, int, int]:
    where = yaml.safe_load((FIXTURES / code / "expected.yaml").read_text(encoding="utf-8"))
    return code, where["file"], where["line"], where["column"]


@pytest.mark.parametrize("code", CODES)
def test_violating_mesh_reports_the_code_at_the_field(code: str) -> None:
    reported = [d for d in found(analysed(FIXTURES / code / "violating")) if d[0] == code]
    assert reported == [_expected(code)]


@pytest.mark.parametrize("code", CODES)
def test_clean_mesh_does_not_report_the_code(code: str) -> None:
    assert [d for d in found(analysed(FIXTURES / code / "clean")) if d[0] == code] == []


def test_every_analysis_code_has_a_fixture() -> None:
    from compiler.codes import CODES as TABLE

    assert sorted(c for c in TABLE if c.startswith("MESH3")) == CODES


def fixture_meshes() -> list[Path]:
    """Every mesh root under tests/fixtures/checks (for tests that want many small meshes)."""
    return [FIXTURES / code / side for code in CODES for side in ("violating", "clean")]


def test_a_path_prefix_covers_whole_segments_only() -> None:
    """docs/intents.md: a path `prefix` matches element by element (Gateway API PathPrefix), so
    `/port` never takes `/port-and-host`: a rule for it after a `/port` rule is reachable and is
    not MESH301 (the Gateway API conformance test httproute-redirect-port writes exactly this)."""
    from compiler.model import Match, PathMatch
    from policies.reachability import match_covers

    def prefix(value: str) -> Match:
        return Match(path=PathMatch(prefix=value))

    assert not match_covers(prefix("/port"), prefix("/port-and-host"))
    assert not match_covers(prefix("/port"), Match(path=PathMatch(exact="/portable")))
    assert match_covers(prefix("/port"), prefix("/port/x"))
    assert match_covers(prefix("/port/"), Match(path=PathMatch(exact="/port")))
    assert match_covers(prefix("/"), prefix("/anything"))
