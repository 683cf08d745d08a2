"""The hooks of .pre-commit-hooks.yaml, run by the real pre-commit tool against a real repository.

Offline, pre-commit cannot build the hooks' python environment from this repository, so the test
runs the very same hook definitions as `repo: local` hooks with `language: system` (meshc is
installed here). docs/gitops.md shows the `repo:` form users write.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import BOOKINFO, REPO, TEST_EXTRA, copy_mesh, require_meshc, require_tool
from tests.gitops_support import GitMesh, git_mesh


@pytest.fixture(autouse=True)
def _pre_commit_and_meshc_installed() -> None:
    require_tool("pre-commit", TEST_EXTRA)
    require_meshc()


def _local_config(args: dict[str, list[str]]) -> str:
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    local = [{**hook, "language": "system", **({"args": args[hook["id"]]} if hook["id"] in args else {})}
             for hook in hooks]
    return yaml.safe_dump({"repos": [{"repo": "local", "hooks": local}]}, sort_keys=False)


def _pre_commit(repo: GitMesh, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PRE_COMMIT_HOME": str(repo.top.parent / "pre-commit-home"), "HOME": str(repo.top),
           "GIT_CONFIG_NOSYSTEM": "1", "NO_COLOR": "1"}
    return subprocess.run(["pre-commit", "run", "--color", "never", *args], cwd=repo.top, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def repo(tmp_path: Path) -> GitMesh:
    repo = git_mesh(tmp_path / "repo")
    copy_mesh(BOOKINFO, repo.top / "other")
    (repo.top / "ci").mkdir()
    (repo.top / "ci" / "settings.yaml").write_text("not: an intent\n")
    (repo.top / ".pre-commit-config.yaml").write_text(_local_config({"meshc-build-check": ["mesh"]}))
    assert subprocess.run(["meshc", "build", "mesh"], cwd=repo.top, capture_output=True).returncode == 0
    repo.commit("two meshes, artifacts, hooks")
    return repo


def test_meshc_check_checks_the_mesh_of_each_staged_file_once(repo: GitMesh) -> None:
    repo.edit("services/reviews.yaml", "timeout: 10s", "timeout: soon")
    repo.edit("services/ratings.yaml", "timeout: 3s", "timeout: later")
    (repo.top / "ci" / "settings.yaml").write_text("still: not an intent\n")
    repo.git("add", "-A")
    result = _pre_commit(repo, "meshc-check")
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert "mesh/services/reviews.yaml:" in out and "error[MESH107]" in out
    assert out.count("mesh/services/ratings.yaml:") == 1
    assert "other/" not in out and "ci/settings.yaml:" not in out

    repo.edit("services/reviews.yaml", "timeout: soon", "timeout: 9s")
    repo.edit("services/ratings.yaml", "timeout: later", "timeout: 3s")
    repo.git("add", "-A")
    passed = _pre_commit(repo, "meshc-check")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "meshc check" in passed.stdout and "Passed" in passed.stdout


def test_meshc_check_skips_when_no_intent_is_staged(repo: GitMesh) -> None:
    (repo.top / "README.txt").write_text("docs\n")
    repo.git("add", "-A")
    result = _pre_commit(repo, "meshc-check")
    assert result.returncode == 0
    assert "(no files to check)Skipped" in result.stdout.replace(".", "")


def test_meshc_build_check_fails_until_the_artifacts_are_rebuilt(repo: GitMesh) -> None:
    repo.edit("services/reviews.yaml", "timeout: 10s", "timeout: 9s")
    repo.git("add", "-A")
    stale = _pre_commit(repo, "meshc-build-check")
    assert stale.returncode == 1, stale.stdout + stale.stderr
    assert "changed: mesh/build/" in stale.stdout

    assert subprocess.run(["meshc", "build", "mesh"], cwd=repo.top, capture_output=True).returncode == 0
    repo.git("add", "-A")
    fresh = _pre_commit(repo, "meshc-build-check")
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr


def test_meshc_fmt_fails_on_unformatted_intents_until_formatted(repo: GitMesh) -> None:
    repo.edit("services/reviews.yaml", "calls: [ratings]", "calls:\n  - ratings")
    (repo.top / "ci" / "settings.yaml").write_text("z: 1\na: 2\n")  # not in a mesh: never formatted
    repo.git("add", "-A")
    result = _pre_commit(repo, "meshc-fmt")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "would reformat mesh/services/reviews.yaml" in result.stdout and "ci/settings.yaml" not in result.stdout

    assert subprocess.run(["meshc", "fmt", "mesh"], cwd=repo.top, capture_output=True).returncode == 0
    assert "calls: [ratings]\n" in (repo.root / "services" / "reviews.yaml").read_text()
    repo.git("add", "-A")
    passed = _pre_commit(repo, "meshc-fmt")
    assert passed.returncode == 0, passed.stdout + passed.stderr


def test_one_hook_run_checks_and_compares_the_artifacts(repo: GitMesh) -> None:
    """meshc-check-and-build-check: what meshc-check and meshc-build-check say, from one run."""
    repo.edit("services/reviews.yaml", "timeout: 10s", "timeout: 9s")
    repo.git("add", "-A")
    stale = _pre_commit(repo, "meshc-check-and-build-check")
    assert stale.returncode == 1, stale.stdout + stale.stderr
    assert "changed: mesh/build/" in stale.stdout and "other/" not in stale.stdout
    assert _pre_commit(repo, "meshc-build-check").returncode == 1  # the same verdict

    repo.edit("services/ratings.yaml", "timeout: 3s", "timeout: later")
    repo.git("add", "-A")
    broken = _pre_commit(repo, "meshc-check-and-build-check")
    assert broken.returncode == 1 and "error[MESH107]" in broken.stdout, broken.stdout + broken.stderr

    repo.edit("services/ratings.yaml", "timeout: later", "timeout: 3s")
    assert subprocess.run(["meshc", "build", "mesh"], cwd=repo.top, capture_output=True).returncode == 0
    repo.git("add", "-A")
    fresh = _pre_commit(repo, "meshc-check-and-build-check")
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert "meshc check and build --check" in fresh.stdout and "Passed" in fresh.stdout
