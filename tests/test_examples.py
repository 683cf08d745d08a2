"""Every mesh shipped in examples/ is what a new user copies first: it checks with no error or
warning, its route tests pass, and it is laid out as `meshc fmt` writes it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from compiler.cli import main
from tests.conftest import EXAMPLES, require_envoy

MESHES = sorted(path for path in EXAMPLES.iterdir() if (path / "mesh.yaml").is_file())


def test_examples_are_found() -> None:
    assert {"bookinfo", "gateway-api-shop", "multicluster-shop"} <= {mesh.name for mesh in MESHES}


@pytest.mark.parametrize("mesh", MESHES, ids=lambda path: path.name)
def test_example_checks_without_errors_or_warnings(mesh: Path) -> None:
    result = CliRunner().invoke(main, ["check", "--no-cache", str(mesh)])
    assert result.exit_code == 0, result.output
    assert "error[" not in result.output and "warning[" not in result.output, result.output


@pytest.mark.parametrize("mesh", MESHES, ids=lambda path: path.name)
def test_example_route_tests_pass(mesh: Path) -> None:
    result = CliRunner().invoke(main, ["test", str(mesh)])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("mesh", MESHES, ids=lambda path: path.name)
def test_example_is_laid_out_by_fmt(mesh: Path) -> None:
    result = CliRunner().invoke(main, ["fmt", "--check", str(mesh)])
    assert result.exit_code == 0, result.output


@pytest.mark.e2e
@pytest.mark.parametrize("mesh", [m for m in MESHES if m.name != "gateway-api-conformance"], ids=lambda path: path.name)
def test_example_route_tests_pass_through_envoy(mesh: Path) -> None:
    """`meshc test --envoy`: every case of the example also through its proxies' real Envoy, the
    tokens of end-user-auth signed by the run's own key (tests/test_conformance.py runs the
    conformance example so)."""
    require_envoy()
    result = CliRunner().invoke(main, ["test", str(mesh), "--envoy"])
    assert result.exit_code == 0, result.output
    assert "0 failed" in result.stderr, result.stderr
