"""Intent files from a git revision, read through gitpython without touching the working tree."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Iterator

from compiler.loader import Revision


class GitError(Exception):
    """A revision or repository that cannot be read; reported as MESH009."""


def _repo(root: Path):  # -> git.Repo, imported lazily: gitpython costs ~100 ms to import
    import git

    try:
        return git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as error:
        raise GitError(f"{root} is not inside a git repository") from error


def worktree_revision(root: Path) -> Revision:
    """The commit a working tree is on and whether it differs from it; no git, no commit."""
    if not any((parent / ".git").exists() for parent in (root.resolve(), *root.resolve().parents)):
        return Revision(None, True, None)
    try:
        repo = _repo(root)
        commit = repo.head.commit.hexsha if repo.head.is_valid() else None
        dirty = repo.is_dirty(untracked_files=True, path=str(root.resolve()))
    except Exception:  # noqa: BLE001 - a broken repository only loses the provenance, not the build
        return Revision(None, True, None)
    return Revision(commit, dirty, None)


class GitSource:
    def __init__(self, root: Path, ref: str) -> None:
        import git

        repo = _repo(root)
        try:
            self.commit = repo.commit(ref)
        except (git.BadName, ValueError, git.GitCommandError) as error:
            raise GitError(f"{ref!r} does not name a commit") from error
        top = Path(repo.working_tree_dir).resolve()
        prefix = root.resolve().relative_to(top).as_posix()
        self.ref = ref
        self.blobs: dict[str, object] = {}
        try:
            tree = self.commit.tree if prefix == "." else self.commit.tree / prefix
        except KeyError as error:
            raise GitError(f"{prefix} does not exist at {ref}") from error
        for item in tree.traverse():
            if item.type != "blob":
                continue
            relative = PurePosixPath(item.path).relative_to(prefix) if prefix != "." else PurePosixPath(item.path)
            if any(part.startswith(".") for part in relative.parts):
                continue
            if relative.suffix in (".yaml", ".yml"):
                self.blobs[relative.as_posix()] = item

    def files(self) -> Iterator[tuple[str, int]]:
        for path in sorted(self.blobs):
            yield path, self.blobs[path].size

    def read(self, path: str) -> bytes:
        return self.blobs[path].data_stream.read()

    def revision(self) -> Revision:
        return Revision(self.commit.hexsha, False, self.ref)
