"""Intent files from a git revision, read through gitpython without touching the working tree."""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from compiler import DEFAULT_OUTPUT, MANIFEST, codes
from compiler.loader import MAX_FILE_BYTES, MAX_INPUT_BYTES, OUTPUT_DIRECTORY_NOTE, REFUSED, Refused, Revision

_LINK_MODE = 0o120000
_MAX_LINK_HOPS = 40  # as the kernel's ELOOP limit

if TYPE_CHECKING:
    from git.objects import Blob


class GitError(Exception):
    """A revision or repository that cannot be read; reported as MESH009."""


# the repositories opened so far: each keeps its `git cat-file` processes, and their pipes,
# until it is closed (close_repositories, at the end of every command)
_OPENED: list = []


def _repo(root: Path):  # -> git.Repo, imported lazily: gitpython costs ~100 ms to import
    import git

    try:
        repo = git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as error:
        raise GitError(f"{root} is not inside a git repository") from error
    _OPENED.append(repo)
    return repo


def close_repositories() -> None:
    """End the git processes of every repository opened so far (gitpython starts them again if
    one is used later)."""
    while _OPENED:
        _OPENED.pop().close()


def worktree_revision(root: Path, skip_dirs: tuple[Path, ...] = ()) -> Revision:
    """The commit a working tree is on and whether the mesh root differs from it; no git, no commit.

    The output directories in skip_dirs do not count: a build's own output does not make the
    next build "dirty".
    """
    if not any((parent / ".git").exists() for parent in (root.resolve(), *root.resolve().parents)):
        return Revision(None, True, None)
    try:
        repo = _repo(root)
        commit = repo.head.commit.hexsha if repo.head.is_valid() else None
        top = Path(repo.working_tree_dir).resolve()
        pathspecs = [(root.resolve().relative_to(top).as_posix() or ".")]
        for skipped in skip_dirs:
            resolved = skipped.resolve()
            if resolved.is_relative_to(top):
                pathspecs.append(f":(exclude){resolved.relative_to(top).as_posix()}")
        status = repo.git.status("--porcelain", "--untracked-files=all", "--", *pathspecs)
    except Exception:  # noqa: BLE001 - a broken repository only loses the provenance, not the build
        return Revision(None, True, None)
    return Revision(commit, commit is None or bool(status.strip()), None)


def repository_prefix(root: Path) -> str:
    """The mesh root relative to the top of its git repository ("" at the top)."""
    top = Path(_repo(root).working_tree_dir).resolve()
    prefix = root.resolve().relative_to(top).as_posix()
    return "" if prefix == "." else prefix


def resolve(root: Path, ref: str):  # -> (git.Repo, git.Commit)
    """The repository holding root and the commit `ref` names; GitError when there is none.

    git itself reads the revision (every syntax of gitrevisions(7), and never as an option)."""
    import git

    repo = _repo(root)
    try:
        commit = repo.git.rev_parse("--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
        return repo, repo.commit(commit)
    except (git.BadName, ValueError, git.GitCommandError) as error:
        raise GitError(f"{ref!r} does not name a commit") from error


class GitSource:
    """The intent files of the mesh root at one commit; skip_dirs (output directories) left out."""

    def __init__(self, root: Path, ref: str, skip_dirs: tuple[Path, ...] = ()) -> None:
        from git.objects import Blob  # gitpython is imported by now (resolve)

        repo, self.commit = resolve(root, ref)
        top = Path(repo.working_tree_dir).resolve()
        prefix = root.resolve().relative_to(top).as_posix()
        self.ref = ref
        self.blobs: dict[str, Blob] = {}
        skipped = tuple(
            p.resolve().relative_to(root.resolve()).as_posix() + "/"
            for p in skip_dirs
            if p.resolve().is_relative_to(root.resolve()) and p.resolve() != root.resolve()
        )
        try:
            tree = self.commit.tree if prefix == "." else self.commit.tree / prefix
        except KeyError as error:
            raise GitError(f"{prefix} does not exist at {ref}") from error
        self.refused: dict[str, Refused] = {}
        outputs = self._output_directories(tree, prefix)
        skipped += tuple(f"{directory}/" for directory in outputs)
        entries: dict[str, Blob] = {}
        for item in tree.traverse():
            relative = PurePosixPath(item.path).relative_to(prefix) if prefix != "." else PurePosixPath(item.path)
            if any(part.startswith(".") for part in relative.parts) or relative.as_posix().startswith(skipped):
                continue
            if item.type in ("commit", "submodule"):
                self.refused[relative.as_posix()] = Refused(
                    codes.OUTSIDE_MESH_ROOT, "a git submodule: its files belong to another repository and are not read")
            elif isinstance(item, Blob):
                entries[relative.as_posix()] = item
        for path in entries:
            if PurePosixPath(path).suffix in (".yaml", ".yml"):
                try:
                    self.blobs[path] = _follow(entries, path)
                except Refused as refused:
                    self.refused[path] = refused

    def _output_directories(self, tree, prefix: str) -> list[str]:
        """Directories below the mesh root that hold a build's manifest.json (as in the working
        tree: compiler.loader.is_build_output), each refused with the MESH014 note."""
        from compiler.manifest import ManifestError, parse_manifest

        found: list[str] = []
        candidates = [item for item in tree.traverse() if item.type == "blob" and item.name == MANIFEST]
        for item in sorted(candidates, key=lambda blob: blob.path.count("/")):  # outer directories first
            relative = PurePosixPath(item.path).relative_to(prefix) if prefix != "." else PurePosixPath(item.path)
            directory = relative.parent.as_posix()
            if (len(relative.parts) < 2 or relative.parts[0] == DEFAULT_OUTPUT or item.mode == _LINK_MODE
                    or any(part.startswith(".") for part in relative.parts) or item.size > MAX_INPUT_BYTES
                    or any(directory.startswith(f"{outer}/") for outer in found)):
                continue
            try:
                parse_manifest(item.data_stream.read())
            except ManifestError:
                continue
            found.append(directory)
            self.refused[relative.as_posix()] = Refused(codes.OUTPUT_DIRECTORY, OUTPUT_DIRECTORY_NOTE)
        return found

    def files(self) -> Iterator[tuple[str, int]]:
        listing = {**{path: blob.size for path, blob in self.blobs.items()}, **dict.fromkeys(self.refused, REFUSED)}
        yield from sorted(listing.items())

    def read(self, path: str) -> bytes:
        if path in self.refused:
            raise self.refused[path]
        return self.blobs[path].data_stream.read(MAX_FILE_BYTES + 1)

    def revision(self) -> Revision:
        return Revision(self.commit.hexsha, False, self.ref)


def _follow(entries: dict[str, Blob], path: str) -> Blob:
    """The blob a path of the tree stands for, following symbolic link blobs that stay
    inside the mesh root; Refused for a link that leaves it, dangles or loops."""
    item = entries[path]
    for _ in range(_MAX_LINK_HOPS):
        if item.mode != _LINK_MODE:
            return item
        target = item.data_stream.read(4096).decode("utf-8", "surrogateescape")
        joined = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
        if target.startswith("/") or joined == ".." or joined.startswith("../"):
            raise Refused(codes.OUTSIDE_MESH_ROOT, "a symbolic link to a file outside the mesh root; not read")
        if joined not in entries:
            raise Refused(codes.UNREADABLE_FILE, "a symbolic link to no file of this revision")
        path, item = joined, entries[joined]
    raise Refused(codes.UNREADABLE_FILE, "a symbolic link loop")
