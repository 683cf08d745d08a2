"""The output directory: atomic replacement, no stale files, manifest.json, nothing outside."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from compiler.artifact import Artifact
from compiler.loader import Revision
from compiler.manifest import MANIFEST, ArtifactRecord, Manifest

_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class OutputError(Exception):
    """The output directory cannot be written as asked (exit 2, nothing changed)."""


def check_path(path: str) -> None:
    """Artifact paths are relative, normalised and made of plain segments: never outside DIR."""
    parts = path.split("/")
    if not path or path.startswith("/") or any(not _SEGMENT.match(p) or p in (".", "..") for p in parts):
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
    if out_dir.exists():
        if not out_dir.is_dir():
            raise OutputError(f"{out_dir} exists and is not a directory")
        if any(out_dir.iterdir()) and not (out_dir / MANIFEST).is_file():
            raise OutputError(
                f"{out_dir} is not empty and holds no {MANIFEST}: refusing to replace a directory meshc did not write"
            )


def write_tree(out_dir: Path, files: dict[str, bytes], *, keep: frozenset[str] = frozenset()) -> None:
    """Replace out_dir with exactly `files` plus the `keep` files of the current out_dir, unchanged.

    Kept files are hard links into the new tree (no copy: a file is never rewritten in place,
    only replaced with the whole directory). On any failure out_dir is left as it was.
    """
    out_dir = out_dir.absolute()
    check_replaceable(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.new-", dir=out_dir.parent))
    made: set[str] = set()

    def parent_of(path: str) -> Path:
        directory = os.path.dirname(path)
        if directory not in made:
            os.makedirs(staging / directory, exist_ok=True)
            made.add(directory)
        return staging / path

    try:
        for path, content in sorted(files.items()):
            # descriptor-level calls: a 10,000-service build writes ~33,000 files
            mode = 0o755 if path.endswith(".sh") else 0o644
            descriptor = os.open(parent_of(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            try:
                os.fchmod(descriptor, mode)  # whatever the umask
                view = memoryview(content)
                while view:
                    view = view[os.write(descriptor, view):]
            finally:
                os.close(descriptor)
        for path in sorted(keep):
            check_path(path)
            target = parent_of(path)
            try:
                os.link(out_dir / path, target)
            except OSError:
                shutil.copy2(out_dir / path, target)
        os.chmod(staging, 0o755)
        if out_dir.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
            os.rename(out_dir, retired / "tree")
            try:
                os.rename(staging, out_dir)
            except OSError:
                os.rename(retired / "tree", out_dir)
                raise
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.rename(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def read_tree(out_dir: Path) -> dict[str, bytes]:
    """The files under out_dir as they are now (for `build --check`)."""
    files: dict[str, bytes] = {}
    if not out_dir.is_dir():
        return files
    for path in sorted(out_dir.rglob("*")):
        if path.is_file():
            files[path.relative_to(out_dir).as_posix()] = path.read_bytes()
    return files
