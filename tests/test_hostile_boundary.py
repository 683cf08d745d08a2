"""The mesh root is a boundary (issue 13, findings 2 and 6): symbolic links that leave it and
git submodules are located errors and never read, FIFOs and devices are refused without being
opened, and a directory that cannot be listed is reported instead of silently skipped; the
same holds for a `--ref` tree."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from compiler.build import compile_mesh
from compiler.cli import main
from tests.test_bad_input import MESH, SERVICE

SECRET = "CI_TOKEN=hunter2-secret"


def _found(compiled) -> list[tuple[str, str]]:
    return [(d.code.code, str(d.location)) for d in compiled.report.sorted()]


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    secret = tmp_path / "outside" / "environ.yaml"
    secret.parent.mkdir()
    secret.write_text(f"apiVersion: meshc/v1\nkind: Service\nname: {SECRET}\n", encoding="utf-8")
    return secret


def test_a_link_leaving_the_root_is_located_and_never_echoed(make_mesh, outside: Path) -> None:
    root = make_mesh({"mesh.yaml": MESH, "a.yaml": SERVICE})
    (root / "services").mkdir()
    (root / "services" / "x.yaml").symlink_to(outside)
    (root / "elsewhere").symlink_to(outside.parent, target_is_directory=True)
    result = CliRunner().invoke(main, ["check", str(root)])
    assert result.exit_code == 1
    assert SECRET not in result.output and "hunter2" not in result.output
    compiled = compile_mesh(root)
    assert _found(compiled) == [("MESH011", "elsewhere:1:1"), ("MESH011", "services/x.yaml:1:1")]
    assert "services/x.yaml" not in compiled.sources.texts


def test_a_link_inside_the_root_is_followed(make_mesh) -> None:
    root = make_mesh({"mesh.yaml": MESH, "real/a.yaml": SERVICE})
    (root / "a.yaml").symlink_to(root / "real" / "a.yaml")
    # the same Service twice: read through the link as well as directly
    assert [code for code, _ in _found(compile_mesh(root))] == ["MESH203"]


def test_a_link_loop_is_a_located_unreadable_file(make_mesh) -> None:
    root = make_mesh({"mesh.yaml": MESH, "a.yaml": SERVICE})
    (root / "loop.yaml").symlink_to("loop.yaml")
    (root / "ring.yaml").symlink_to("ring2.yaml")
    (root / "ring2.yaml").symlink_to("ring.yaml")
    compiled = compile_mesh(root)
    assert _found(compiled) == [("MESH001", "loop.yaml:1:1"), ("MESH001", "ring.yaml:1:1"), ("MESH001", "ring2.yaml:1:1")]
    assert {d.message for d in compiled.report.diagnostics} == {"cannot read the file: a symbolic link loop"}


def test_a_fifo_is_refused_without_being_opened(make_mesh) -> None:
    root = make_mesh({"mesh.yaml": MESH, "a.yaml": SERVICE})
    os.mkfifo(root / "pipe.yaml")  # opening it for reading would block forever
    (root / "null.yaml").symlink_to("/dev/null")
    devices = []
    try:  # a character device inside the root (/dev/zero's numbers: read, it never ends)
        os.mknod(root / "zero.yaml", stat.S_IFCHR | 0o600, os.makedev(1, 5))
        devices = [("MESH001", "zero.yaml:1:1")]
    except PermissionError:
        pass  # no CAP_MKNOD here: the FIFO stands for every file that is not a regular one
    compiled = compile_mesh(root)
    assert _found(compiled) == [("MESH011", "null.yaml:1:1"), ("MESH001", "pipe.yaml:1:1"), *devices]


def test_an_unlistable_directory_is_reported(make_mesh, monkeypatch) -> None:
    root = make_mesh({"mesh.yaml": MESH, "a.yaml": SERVICE, "policies/strict.yaml": SERVICE})
    real_scandir = os.scandir  # chmod 0 would not stop root: the listing fails as it would for a user

    def scandir(path):
        if Path(path).name == "policies":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    compiled = compile_mesh(root)
    assert _found(compiled) == [("MESH001", "policies:1:1")]
    assert "cannot list the directory: Permission denied" in compiled.report.sorted()[0].message


def _git(top: Path, *args: str) -> None:
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(top)}
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid", "-c", "commit.gpgsign=false",
                    "-c", "protocol.file.allow=always", *args], cwd=top, env=env, check=True, capture_output=True)


def test_ref_trees_refuse_links_leaving_the_root_and_submodules(tmp_path: Path, outside: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "svc.yaml").write_text(SERVICE, encoding="utf-8")
    _git(other, "init", "-q")
    _git(other, "add", "-A")
    _git(other, "commit", "-qm", "other")
    top = tmp_path / "repo"
    (top / "mesh").mkdir(parents=True)
    (top / "mesh" / "mesh.yaml").write_text(MESH, encoding="utf-8")
    (top / "mesh" / "a.yaml").write_text(SERVICE, encoding="utf-8")
    (top / "mesh" / "b.yaml").symlink_to(outside)
    (top / "mesh" / "c.yaml").symlink_to("../outside.yaml")  # inside the repo, outside the mesh root
    (top / "outside.yaml").write_text(SERVICE, encoding="utf-8")
    (top / "mesh" / "inside.yaml").symlink_to("a.yaml")
    _git(top, "init", "-q")
    _git(top, "submodule", "add", "-q", str(other), "mesh/vendored")
    _git(top, "add", "-A")
    _git(top, "commit", "-qm", "mesh")
    compiled = compile_mesh(top / "mesh", ref="HEAD")
    # inside.yaml, a link to a.yaml, defines a.yaml's service a second time: linked despite the
    # refused files (errors in stages), that is reported too
    assert _found(compiled) == [("MESH011", "b.yaml:1:1"), ("MESH011", "c.yaml:1:1"), ("MESH203", "inside.yaml:3:7"),
                                ("MESH011", "vendored:1:1")]
    assert compiled.sources.texts["inside.yaml"] == SERVICE  # a link inside the root is followed
    worktree = compile_mesh(top / "mesh")
    assert _found(worktree) == _found(compiled)
    assert worktree.sources.texts["inside.yaml"] == SERVICE


def test_an_excluded_link_is_neither_read_nor_reported(make_mesh, outside: Path) -> None:
    root = make_mesh({"mesh.yaml": MESH + "exclude: [vendor]\n", "a.yaml": SERVICE})
    (root / "vendor").mkdir()
    (root / "vendor" / "x.yaml").symlink_to(outside)
    assert [code for code, _ in _found(compile_mesh(root))] == ["MESH360"]  # api is unreachable: no error


def _diagnostics(result) -> list[tuple[str, str, str]]:
    import json

    return [(d["code"], d["severity"], d["location"]["file"]) for d in json.loads(result.stdout)["diagnostics"]]


def test_an_output_directory_inside_the_root_is_skipped_with_a_note(tmp_path: Path) -> None:
    """`meshc build -o out` inside the mesh root, then `meshc check`: out/ holds a build's
    manifest.json, so its YAML artifacts are not read as intents; an info says so, unless
    Mesh.exclude lists the directory. A manifest.json meshc did not write hides nothing."""
    from compiler.scaffold import write_starter

    root = tmp_path / "mesh"
    write_starter(root)
    runner = CliRunner()
    assert runner.invoke(main, ["build", str(root), "-o", str(root / "out")]).exit_code == 0
    assert list((root / "out").rglob("*.yaml"))
    check = runner.invoke(main, ["check", str(root), "--format", "json"])
    assert check.exit_code == 0, check.output
    assert _diagnostics(check) == [("MESH014", "info", "out/manifest.json")]
    # nested deeper, and read from a commit: the same
    (root / "deploy").mkdir()
    (root / "out").rename(root / "deploy" / "out")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "-qm", "x"],
                   check=True)
    for ref in ([], ["--ref", "HEAD"]):
        check = runner.invoke(main, ["check", str(root), "--format", "json", *ref])
        assert _diagnostics(check) == [("MESH014", "info", "deploy/out/manifest.json")], ref
    # listed in Mesh.exclude: silent
    mesh = root / "mesh.yaml"
    mesh.write_text(mesh.read_text().replace("platforms:", "exclude: [deploy/out]\nplatforms:"), encoding="utf-8")
    check = runner.invoke(main, ["check", str(root), "--format", "json"])
    assert check.exit_code == 0 and _diagnostics(check) == []
    # not a manifest meshc wrote: the directory is read, and its intents count
    (root / "policies" / "manifest.json").write_text('{"meshc": "0.1.0", "artifacts": []}', encoding="utf-8")
    (root / "policies" / "timeouts.yaml").write_text(
        (root / "policies" / "timeouts.yaml").read_text().replace("<= duration('30s')", "<= duration('1s')"),
        encoding="utf-8")
    check = runner.invoke(main, ["check", str(root), "--format", "json"])
    assert check.exit_code == 1 and ("MESH371", "error", "services/api.yaml") in _diagnostics(check), check.output
