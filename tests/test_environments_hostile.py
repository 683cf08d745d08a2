"""Hostile environments (docs/intents.md, "Environments"; BRIEF: nothing outside the mesh root is
read, nothing is written outside the output directory): overlay folders that climb out of the
root or are links out of it, and environment names that would be paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from compiler.build import check_mesh
from compiler.cli import main
from tests.test_environments import MESH, PROD_API, shop

runner = CliRunner()
# An overlay that, if it were read, would show: api's timeout becomes 9s.
OUTSIDE = "kind: Service\nname: api\nresilience:\n  timeout: 9s\n"


def codes_at(root: Path) -> list[tuple[str, str]]:
    return sorted((d.code.code, d.location.file if d.location else "") for d in check_mesh(root).report.diagnostics)


@pytest.mark.parametrize("folder", ["../outside", "/tmp/outside", "environments/../../outside", ".hidden", "a/./b",
                                    "a//b", "environments/prod/"])
def test_an_overlay_folder_that_is_not_a_plain_path_below_the_root_is_refused(tmp_path: Path, folder: str) -> None:
    root = shop(tmp_path / "mesh", **{"mesh.yaml": MESH.replace("  - name: prod\n",
                                                                f"  - name: prod\n    overlays: [{folder!r}]\n")})
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "api.yaml").write_text(OUTSIDE)
    result = runner.invoke(main, ["check", str(root), "--no-cache"])
    assert result.exit_code == 1
    assert "mesh.yaml:12" in result.output and "error[MESH10" in result.output  # the Mesh does not validate
    assert "9s" not in result.output


def test_an_overlay_folder_linked_outside_the_root_is_not_read(tmp_path: Path) -> None:
    root = shop(tmp_path / "mesh", **{"environments/prod/api.yaml": "", "environments/prod/mesh.yaml": ""})
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "api.yaml").write_text(OUTSIDE)
    (root / "environments").mkdir(exist_ok=True)
    os.symlink(tmp_path / "outside", root / "environments" / "prod")
    compiled = check_mesh(root)
    found = [(d.code.code, d.location.file) for d in compiled.report.diagnostics]
    assert ("MESH011", "environments/prod") in found
    assert not any("9s" in d.message for d in compiled.report.diagnostics)
    assert "environments/prod/api.yaml" not in compiled.sources.texts


def test_an_overlay_file_linked_outside_the_root_is_not_read(tmp_path: Path) -> None:
    root = shop(tmp_path / "mesh", **{"environments/prod/api.yaml": ""})
    (tmp_path / "secret.yaml").write_text(OUTSIDE)
    os.symlink(tmp_path / "secret.yaml", root / "environments" / "prod" / "api.yaml")
    compiled = check_mesh(root)
    assert ("MESH011", "environments/prod/api.yaml") in \
        [(d.code.code, d.location.file) for d in compiled.report.diagnostics]
    assert "environments/prod/api.yaml" not in compiled.sources.texts


@pytest.mark.parametrize("name", ["..", "../x", "Prod", "a/b", "prod ", "-x", ""])
def test_an_environment_name_that_is_not_a_label_is_refused(tmp_path: Path, name: str) -> None:
    root = shop(tmp_path / "mesh", **{"mesh.yaml": MESH.replace("  - name: prod\n", f"  - name: {name!r}\n")})
    out = tmp_path / "out"
    result = runner.invoke(main, ["build", str(root), "-o", str(out)])
    assert result.exit_code == 1
    assert "mesh.yaml:11" in result.output
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mesh"]


@pytest.mark.parametrize("name", ["..", "../x", "/tmp/x", "staging/../..", "prod\n"])
def test_env_options_name_declared_environments_only(tmp_path: Path, name: str) -> None:
    root = shop(tmp_path / "mesh")
    out = tmp_path / "out"
    for command in (["build", str(root), "-o", str(out), "--env", name], ["check", str(root), "--env", name],
                    ["diff", str(root), "--env", name], ["explain-value", name, "Service/api", "owner", str(root)]):
        result = runner.invoke(main, command)
        assert result.exit_code == 2, (command, result.output)
        assert "no environment" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mesh"]


def test_two_environments_sharing_a_folder_and_nested_folders(tmp_path: Path) -> None:
    shared = MESH.replace("  - name: staging\n", "  - name: staging\n    overlays: [environments/prod]\n")
    root = shop(tmp_path / "a", **{"mesh.yaml": shared, "environments/staging/api.yaml": ""})
    assert not check_mesh(root).report.has_errors  # one folder, two environments: allowed
    nested = MESH.replace("  - name: staging\n", "  - name: staging\n    overlays: [environments/prod/eu]\n")
    root = shop(tmp_path / "b", **{"mesh.yaml": nested, "environments/prod/eu/api.yaml": PROD_API,
                                   "environments/staging/api.yaml": ""})
    compiled = check_mesh(root)
    assert any("lies inside overlay folder" in d.message for d in compiled.report.diagnostics)


def test_mesh_exclude_applies_to_overlay_files(tmp_path: Path) -> None:
    mesh = MESH.replace("platforms:", "exclude: ['environments/prod/notes/**']\nplatforms:")
    root = shop(tmp_path, **{"mesh.yaml": mesh, "environments/prod/notes/draft.yaml": "not: an overlay\n"})
    compiled = check_mesh(root)
    assert not compiled.report.has_errors
    assert "environments/prod/notes/draft.yaml" not in compiled.sources.texts
