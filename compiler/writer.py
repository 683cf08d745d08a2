"""The output directory: atomic replacement, no stale files, manifest.json, nothing outside."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from compiler.artifact import Artifact
from compiler.loader import Revision
from compiler.manifest import (
    MANIFEST,
    MAX_OUTPUT_FILE_BYTES,
    ArtifactRecord,
    Manifest,
    is_output_path,
    open_build_parent,
    read_build_file,
)


class OutputError(Exception):
    """The output directory cannot be written as asked (exit 2, nothing changed)."""


def check_path(path: str) -> None:
    """Artifact paths are relative, normalised and made of plain segments: never outside DIR."""
    if not is_output_path(path):
        raise OutputError(f"refusing to write artifact path {path!r}")


def render_tree(artifacts: list[Artifact], revision: Revision, *, targets: list[str] | None = None,
                kept: Sequence[ArtifactRecord] = (), inputs: Mapping[str, str] | None = None) -> dict[str, bytes]:
    """Every file of the output directory, manifest included, keyed by relative path.

    `kept` are the records of files an incremental build carries over unchanged: they are in
    the manifest but not in the result (write_tree links them). `inputs` are the git blob ids
    of the intent files the build read.
    """
    files: dict[str, bytes] = {}
    kept_paths = {record.path for record in kept}
    for artifact in artifacts:
        check_path(artifact.path)
        if artifact.path in files or artifact.path == MANIFEST or artifact.path in kept_paths:
            raise OutputError(f"two artifacts claim {artifact.path}")
        files[artifact.path] = artifact.content
    records = [*map(ArtifactRecord.of, artifacts), *kept]
    files[MANIFEST] = Manifest.of_build(records, revision, targets=targets, inputs=inputs).to_json()
    return files


def check_replaceable(out_dir: Path) -> None:
    """out_dir is absent, empty, or an earlier meshc output (it holds manifest.json)."""
    out_dir = output_directory(out_dir)
    if out_dir.exists():
        if not out_dir.is_dir():
            raise OutputError(f"{out_dir} exists and is not a directory")
        if any(out_dir.iterdir()) and not (out_dir / MANIFEST).is_file():
            raise OutputError(
                f"{out_dir} is not empty and holds no {MANIFEST}: refusing to replace a directory meshc did not write"
            )


# Staging and retired trees sit beside the output directory, named after it and the process
# that made them, so the next build can tell an abandoned one (its process is gone) from one
# another build is still writing.
_STAGING_NAME = re.compile(r"^\.(?P<name>.+)\.(?:new|old)-(?P<pid>[0-9]+)-[A-Za-z0-9_]+$")
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def output_directory(out_dir: Path) -> Path:
    """The directory a build replaces: out_dir, or where out_dir points when it is a
    symbolic link (the link stays, its target is replaced). OutputError for a dangling link."""
    out_dir = out_dir.absolute()
    if out_dir.is_symlink():
        target = Path(os.path.realpath(out_dir))
        if not target.exists():
            raise OutputError(f"{out_dir} is a symbolic link to {target}, which does not exist")
        return target
    return out_dir


def write_tree(out_dir: Path, files: dict[str, bytes], *, keep: frozenset[str] = frozenset()) -> None:
    """Replace out_dir with exactly `files` plus the `keep` files of the current out_dir, unchanged
    (StagedTree says how)."""
    with StagedTree(out_dir) as tree:
        for path, content in sorted(files.items()):
            tree.write(path, content)
        for path in sorted(keep):
            tree.keep(path)
        tree.commit()


class StagedTree:
    """A new output tree written beside out_dir file by file, then swapped in whole.

    The tree is swapped in with one renameat2(RENAME_EXCHANGE): at every moment out_dir is the
    complete old tree or the complete new one, and it stays a real directory (docs/cli.md,
    "Output directory"). A file the current out_dir holds with the same bytes and mode is a
    hard link to it, not a new file; kept files (`keep`) are hard links too, reached without
    following a link. Staging trees that a killed build left behind are removed first. Leaving
    the `with` block without commit() (an exception, a failed build) removes the staging tree:
    out_dir is left as it was. OSError becomes OutputError.
    """

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = output_directory(out_dir)
        check_replaceable(self.out_dir)
        # made here and removed again when the build fails: a failed build leaves nothing behind
        self._made_parents = [parent for parent in self.out_dir.parents if not parent.exists()]
        try:
            self.out_dir.parent.mkdir(parents=True, exist_ok=True)
            remove_abandoned(self.out_dir)
            self.path = Path(tempfile.mkdtemp(prefix=f".{self.out_dir.name}.new-{os.getpid()}-",
                                              dir=self.out_dir.parent))
        except OSError as error:
            raise _environment_fault(self.out_dir, error) from None
        self.files = 0
        self._root = str(self.path)
        self._made: set[str] = set()
        self._previous = _PreviousTree(self.out_dir)
        self._done = False

    def __enter__(self) -> StagedTree:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        self._previous.close()
        if not self._done:
            shutil.rmtree(self.path, ignore_errors=True)
            for parent in self._made_parents:  # deepest first
                with contextlib.suppress(OSError):
                    os.rmdir(parent)
        if isinstance(error, OSError):
            raise _environment_fault(self.out_dir, error) from None

    def _parent_of(self, path: str) -> str:
        """The staging path of `path`, its directory made (strings: no Path per file)."""
        directory = os.path.dirname(path)
        if directory not in self._made:
            os.makedirs(f"{self._root}/{directory}", exist_ok=True)
            self._made.add(directory)
        return f"{self._root}/{path}"

    def write(self, path: str, content: bytes) -> None:
        """One file of the new tree (paths in sorted order cost the fewest directory lookups)."""
        check_path(path)
        # descriptor-level calls: a 10,000-service build writes ~33,000 files
        mode = 0o755 if path.endswith(".sh") else 0o644
        self.files += 1
        if self._previous.link_if_same(path, content, mode, self._parent_of(path)):
            return
        try:
            descriptor = os.open(self._parent_of(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        except FileExistsError:
            raise OutputError(f"two artifacts claim {path}") from None
        try:
            os.fchmod(descriptor, mode)  # whatever the umask
            view = memoryview(content)
            while view:
                view = view[os.write(descriptor, view):]
        finally:
            os.close(descriptor)

    def keep(self, path: str) -> None:
        """The current out_dir's file at `path`, unchanged."""
        check_path(path)
        self.files += 1
        self._previous.link_kept(path, self._parent_of(path))

    def commit(self) -> None:
        """Swap the new tree in (the old one is removed, a large one after the swap)."""
        os.chmod(self.path, 0o755)
        if not self.out_dir.exists():
            os.rename(self.path, self.out_dir)
        elif _exchange(self.path, self.out_dir):
            self._done = True
            _remove_retired(self.path, self.files)  # the previous tree, swapped out
        else:
            _replace_in_two_renames(self.path, self.out_dir)
        self._done = True


# From this many files on, the swapped-out tree is removed by a detached process, after the
# swap: out_dir is already complete, and a large tree takes a while to unlink.
BACKGROUND_REMOVAL_FILES = 2_000


def _remove_retired(tree: Path, files: int) -> None:
    """Remove the swapped-out tree: here, or for a large one in a detached process (its stdio on
    /dev/null, so a caller reading this process's output is not kept waiting). If that process
    is killed, the tree is a staging tree of a finished build: the next build removes it."""
    if files < BACKGROUND_REMOVAL_FILES:
        shutil.rmtree(tree)
        return
    try:
        child = os.fork()
    except OSError:
        shutil.rmtree(tree)
        return
    if child == 0:  # pragma: no cover - runs in the forked processes
        try:
            if os.fork() == 0:
                os.setsid()
                quiet = os.open(os.devnull, os.O_RDWR)
                for standard in (0, 1, 2):
                    os.dup2(quiet, standard)
                os.closerange(3, os.sysconf("SC_OPEN_MAX"))  # no pipe of the caller's kept open
                shutil.rmtree(tree, ignore_errors=True)
        finally:
            os._exit(0)
    os.waitpid(child, 0)


class _PreviousTree:
    """The current out_dir, read to find files the new tree holds unchanged: those are hard
    links to the current file (not rewritten, their modification time kept). Nothing read
    here is trusted: a file is linked only when it is a regular file reached without
    following a symbolic link, with the wanted mode, and its bytes equal the new content."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        # the directory of the last path asked about and its descriptor (None: absent); paths
        # come sorted, so one at a time is enough
        self.parent: str | None = None
        self.directory: int | None = None

    def _directory(self, path: str) -> tuple[int | None, str]:
        parent, _, name = path.rpartition("/")
        if parent != self.parent:
            self.close()
            self.parent = parent
            try:
                self.directory = open_build_parent(self.out_dir, path)[0]
            except OSError:
                self.directory = None
        return self.directory, name

    def link_if_same(self, path: str, content: bytes, mode: int, target: str) -> bool:
        directory, name = self._directory(path)
        if directory is None:
            return False
        try:
            status = os.stat(name, dir_fd=directory, follow_symlinks=False)
            if (not stat.S_ISREG(status.st_mode) or status.st_size != len(content)
                    or stat.S_IMODE(status.st_mode) != mode):
                return False
            descriptor = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=directory)
            try:
                opened = os.fstat(descriptor)
                if (opened.st_ino, opened.st_dev) != (status.st_ino, status.st_dev):
                    return False
                with os.fdopen(descriptor, "rb", closefd=False) as stream:
                    if stream.read(len(content) + 1) != content:
                        return False
                os.link(name, target, src_dir_fd=directory, follow_symlinks=False)
                linked = os.stat(target, follow_symlinks=False)
                if (linked.st_ino, linked.st_dev) != (opened.st_ino, opened.st_dev):
                    os.unlink(target)  # the name was replaced since it was compared: write instead
                    return False
            finally:
                os.close(descriptor)  # held open until then: the compared file's inode is not reused
        except OSError:
            return False
        return True

    def link_kept(self, path: str, target: str) -> None:
        """Hard-link a file of the current build into the new tree (an incremental build keeps
        it); refused unless it is a regular file reached without following a symbolic link.
        The directory descriptor is the one write() uses: kept paths come sorted too."""
        directory, name = self._directory(path)
        if directory is None:  # open it again, for the reason
            os.close(open_build_parent(self.out_dir, path)[0])
            raise OutputError(f"{self.out_dir / path}: its directory cannot be opened")
        if not stat.S_ISREG(os.stat(name, dir_fd=directory, follow_symlinks=False).st_mode):
            raise OutputError(f"{self.out_dir / path} is not a regular file: refusing to keep it")
        # held open while it is linked: the inode compared below cannot be reused meanwhile
        descriptor = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=directory)
        try:
            kept = os.fstat(descriptor)
            os.link(name, target, src_dir_fd=directory, follow_symlinks=False)
            linked = os.stat(target, follow_symlinks=False)
            if not stat.S_ISREG(kept.st_mode) or (linked.st_ino, linked.st_dev) != (kept.st_ino, kept.st_dev):
                raise OutputError(f"{self.out_dir / path} was replaced while it was kept: refusing to keep it")
        finally:
            os.close(descriptor)

    def close(self) -> None:
        if self.directory is not None:
            os.close(self.directory)
        self.parent = self.directory = None


def _environment_fault(out_dir: Path, error: OSError) -> OutputError:
    where = f" ({error.filename})" if error.filename else ""
    return OutputError(f"cannot write the output directory {out_dir}: {error.strerror or error}{where}")




@functools.cache
def _renameat2():
    return getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)


def _exchange(staging: Path, out_dir: Path) -> bool:
    """Swap two directories atomically (renameat2 RENAME_EXCHANGE: Linux 3.15, glibc 2.28);
    False where the system or the file system cannot."""
    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(staging), _AT_FDCWD, os.fsencode(out_dir), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(out_dir))


def _replace_in_two_renames(staging: Path, out_dir: Path) -> None:
    """Where no exchange exists: out_dir is missing between the two renames (docs/cli.md)."""
    retired = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-{os.getpid()}-", dir=out_dir.parent))
    os.rename(out_dir, retired / "tree")
    try:
        os.rename(staging, out_dir)
    except OSError:
        os.rename(retired / "tree", out_dir)
        raise
    shutil.rmtree(retired, ignore_errors=True)


def remove_abandoned(out_dir: Path) -> None:
    """Remove the staging and retired trees of out_dir whose build process is gone. A retired
    tree is put back first when out_dir is missing (a build killed between two renames)."""
    for entry in sorted(out_dir.parent.iterdir()):
        match = _STAGING_NAME.fullmatch(entry.name)
        if match is None or match["name"] != out_dir.name or _running(int(match["pid"])):
            continue
        if not out_dir.exists() and (entry / "tree").is_dir():
            os.rename(entry / "tree", out_dir)
        shutil.rmtree(entry, ignore_errors=True)


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return False  # an earlier build of this very process cannot still be writing
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_tree(out_dir: Path) -> dict[str, bytes]:
    """The files under out_dir as they are now (for `build --check`). A symbolic link or a
    special file is never followed or opened: it reads as a marker, so it differs."""
    files: dict[str, bytes] = {}
    if not out_dir.is_dir():
        return files
    for directory, subdirs, names in os.walk(out_dir):
        here = Path(directory)
        for name in [*names, *(d for d in subdirs if (here / d).is_symlink())]:
            relative = (here / name).relative_to(out_dir).as_posix()
            try:
                files[relative] = read_build_file(out_dir, relative, MAX_OUTPUT_FILE_BYTES)
            except OSError as error:
                files[relative] = f"<not read: {error.strerror}>".encode()
    return dict(sorted(files.items()))
