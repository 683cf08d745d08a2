"""`--ref REV` reads git without touching the working tree; manifest.json records the revision; `build --check`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.gitops_support import git_mesh, meshc, tree


@pytest.fixture
def repo(tmp_path: Path):
    return git_mesh(tmp_path / "repo")


def _source(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_bytes())["source"]


def test_ref_reads_the_commit_and_leaves_the_working_tree_alone(repo) -> None:
    good = repo.git("rev-parse", "HEAD")
    repo.edit("services/reviews.yaml", "timeout: 10s", "timeout: soon")
    before = tree(repo.root)
    assert meshc("check", str(repo.root)).exit_code == 1
    for command in (["check"], ["graph"], ["build", "-o", str(repo.top.parent / "out")]):
        result = meshc(*command, str(repo.root), "--ref", good)
        assert result.exit_code == 0, (command, result.output)
    assert tree(repo.root) == before
    assert repo.git("status", "--porcelain") == "M mesh/services/reviews.yaml"
    assert _source(repo.top.parent / "out") == {"commit": good, "dirty": False, "ref": good}


def test_ref_that_names_no_commit_is_a_located_diagnostic(repo) -> None:
    result = meshc("check", str(repo.root), "--ref", "no-such-tag")
    assert result.exit_code == 1
    assert "error[MESH009]: 'no-such-tag' does not name a commit" in result.stdout


def test_manifest_records_commit_and_dirtiness(repo) -> None:
    head = repo.git("rev-parse", "HEAD")
    assert meshc("build", str(repo.root)).exit_code == 0
    assert _source(repo.root / "build") == {"commit": head, "dirty": False, "ref": None}
    # the untracked output directory of the previous build does not make the tree dirty
    assert meshc("build", str(repo.root)).exit_code == 0
    assert _source(repo.root / "build")["dirty"] is False
    (repo.root / "notes.txt").write_text("an untracked file\n")
    assert meshc("build", str(repo.root)).exit_code == 0
    assert _source(repo.root / "build") == {"commit": head, "dirty": True, "ref": None}


def test_ref_skips_a_committed_output_directory(repo) -> None:
    out = repo.root / "artifacts"
    assert meshc("build", str(repo.root), "-o", str(out)).exit_code == 0
    commit = repo.commit("artifacts")
    result = meshc("build", str(repo.root), "-o", str(out), "--ref", commit, "--check")
    assert result.exit_code == 0, result.output


def test_build_check_reports_drift_by_kind(repo) -> None:
    out = repo.root / "build"
    assert meshc("build", str(repo.root)).exit_code == 0
    clean = meshc("build", str(repo.root), "--check")
    assert clean.exit_code == 0, clean.output
    repo.commit("artifacts")  # another commit: the recorded revision moves, the artifacts do not
    assert meshc("build", str(repo.root), "--check").exit_code == 0

    stray = out / "envoy" / "stray.yaml"
    stray.write_text("left over\n")
    some_file = next(p for p in sorted(out.rglob("*.yaml")) if p != stray)
    some_file.write_bytes(some_file.read_bytes() + b"# edited\n")
    gone = next(p for p in sorted(out.rglob("*.json")) if p.name != "manifest.json")
    gone.unlink()
    result = meshc("build", str(repo.root), "--check")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert f"added: {gone}" in lines
    assert f"removed: {stray}" in lines
    assert f"changed: {some_file}" in lines
    assert "is out of date: run `meshc build`" in result.stderr


def test_build_check_sees_a_manifest_that_lies(repo) -> None:
    out = repo.root / "build"
    assert meshc("build", str(repo.root)).exit_code == 0
    manifest = json.loads((out / "manifest.json").read_bytes())
    manifest["artifacts"][0]["sources"] = ["somewhere-else.yaml"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    result = meshc("build", str(repo.root), "--check")
    assert result.exit_code == 1
    assert f"changed: {out / 'manifest.json'}" in result.stdout


def test_check_and_changed_since_do_not_combine(repo) -> None:
    result = meshc("build", str(repo.root), "--check", "--changed-since", "HEAD")
    assert result.exit_code == 2


def _descriptors() -> int:
    return len(os.listdir("/dev/fd"))  # this process's open descriptors (Linux and the BSDs)


def test_commands_that_read_git_leave_no_git_process_open(repo) -> None:
    """gitpython keeps a repository's `git cat-file --batch` processes, and their pipes, until the
    repository is closed (git.Repo.close); an in-process caller such as this test run gained
    about twenty descriptors per command before every command closed what it opened."""
    meshc("check", str(repo.root), "--ref", "HEAD")  # imports and caches once
    before = _descriptors()
    repo.edit("services/reviews.yaml", "timeout: 10s", "timeout: 8s")
    out = repo.top.parent / "out"
    for command in (["check", str(repo.root), "--ref", "HEAD"], ["build", "-o", str(out), str(repo.root)],
                    ["build", "-o", str(out), str(repo.root), "--changed-since", "HEAD"]):
        result = meshc(*command)
        assert result.exit_code == 0, (command, result.output)
    assert _descriptors() == before
