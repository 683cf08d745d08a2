"""docs/diagnostics.md and the check table of docs/policies.md are generated and current;
every code explains itself; the checks form one sorted registry."""

from __future__ import annotations

from click.testing import CliRunner

from compiler import docgen
from compiler.cli import main
from compiler.codes import CODES
from policies.registry import CHECKS


def test_diagnostics_page_is_current() -> None:
    assert docgen.OUTPUT.read_text(encoding="utf-8") == docgen.render(), "run `python -m compiler.docgen`"


def test_policies_page_check_table_is_current() -> None:
    page = docgen.POLICIES.read_text(encoding="utf-8")
    assert page == docgen.render_policies(page), "run `python -m compiler.docgen`"
    for check in CHECKS:
        assert f"| {check.name} | " in page and check.summary


def test_every_code_is_on_the_page_and_explained() -> None:
    page = docgen.render()
    runner = CliRunner()
    for code in CODES.values():
        assert f"### {code.code}" in page
        result = runner.invoke(main, ["explain", code.code.lower()])
        assert result.exit_code == 0, result.output
        assert result.output.startswith(f"{code.code} ({code.name}), {code.severity} by default")


def test_checks_form_one_sorted_registry_that_declares_every_analysis_code() -> None:
    assert [c.name for c in CHECKS] == sorted(c.name for c in CHECKS)
    declared = [code.code for check in CHECKS for code in check.codes]
    assert len(declared) == len(set(declared))
    suppression = {"MESH390"}  # reported by compiler.suppress after the checks, not by a check
    assert sorted(declared) == sorted(c for c in CODES if c.startswith("MESH3") and c not in suppression)
