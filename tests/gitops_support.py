"""Real git repositories in temporary directories, and meshc run in-process against them."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner, Result

from compiler.cli import main
from tests.conftest import BOOKINFO, copy_mesh


@dataclass
class GitMesh:
    """A git repository whose `mesh` directory is a mesh root."""

    top: Path

    @property
    def root(self) -> Path:
        return self.top / "mesh"

    def git(self, *args: str) -> str:
        env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(self.top)}
        done = subprocess.run(["git", *args], cwd=self.top, env=env, check=True, capture_output=True, text=True)
        return done.stdout.strip()

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    def edit(self, relative: str, old: str, new: str) -> None:
        path = self.root / relative
        text = path.read_text(encoding="utf-8")
        assert old in text, f"{old!r} is not in {relative}"
        path.write_text(text.replace(old, new, 1), encoding="utf-8")


def git_mesh(top: Path, source: Path = BOOKINFO) -> GitMesh:
    """A repository with a copy of `source` committed as its first commit."""
    top.mkdir(parents=True, exist_ok=True)
    copy_mesh(source, top / "mesh")
    repo = GitMesh(top)
    repo.git("init", "-q", "-b", "main")
    repo.git("config", "user.name", "meshc tests")
    repo.git("config", "user.email", "tests@meshc.invalid")
    repo.git("config", "commit.gpgsign", "false")
    repo.commit("the mesh")
    return repo


def meshc(*args: str) -> Result:
    """`meshc ARGS` in-process; stdout and stderr kept apart."""
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def tree(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}
