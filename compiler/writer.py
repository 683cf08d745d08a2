"""The output directory: atomic replacement, no stale files, manifest.json, nothing outside."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Mapping, Sequence

from compiler import __version__
from compiler.loader import Revision
from compiler.serialize import to_json
from targets import Artifact

MANIFEST = "manifest.json"
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class OutputError(Exception):
    """The output directory cannot be written as asked (exit 2, nothing changed)."""


def check_path(path: str) -> None:
    """Artifact paths are relative, normalised and made of plain segments: never outside DIR."""
    parts = path.split("/")
    if not path or path.startswith("/") or any(not _SEGMENT.match(p) or p in (".", "..") for p in parts):
        raise OutputError(f"refusing to write artifact path {path!r}")


def manifest(artifacts: list[Artifact], revision: Revision, *, targets: list[str] | None = None,
             kept: Sequence[dict] = (), inputs: Mapping[str, str] | None = None) -> bytes:
    """manifest.json; `kept` are entries of files carried over unchanged by an incremental build;
    `inputs` the git blob id of every intent file the build read (what `--changed-since`
    compares against, whether or not the tree was committed)."""
    entries = [
        {
            "path": a.path,
            "sha256": hashlib.sha256(a.content).hexdigest(),
            "sources": list(a.sources),
            "target": a.target,
            "workload": a.workload,
        }
        for a in artifacts
    ]
    document = {
        "artifacts": sorted([*entries, *kept], key=lambda entry: entry["path"]),
        "meshc": __version__,
        "source": {"commit": revision.commit, "dirty": revision.dirty, "ref": revision.ref},
    }
    if targets is not None:
        document["targets"] = sorted(targets)
    if inputs is not None:
        document["inputs"] = dict(sorted(inputs.items()))
    return to_json(document)


def render_tree(artifacts: list[Artifact], revision: Revision, *, targets: list[str] | None = None,
                kept: Sequence[dict] = (), inputs: Mapping[str, str] | None = None) -> dict[str, bytes]:
    """Every file of the output directory, manifest included, keyed by relative path.

    Files of `kept` manifest entries are not in the result: write_tree carries them over.
    """
    files: dict[str, bytes] = {}
    kept_paths = {entry["path"] for entry in kept}
    for artifact in artifacts:
        check_path(artifact.path)
        if artifact.path in files or artifact.path == MANIFEST or artifact.path in kept_paths:
            raise OutputError(f"two artifacts claim {artifact.path}")
        files[artifact.path] = artifact.content
    files[MANIFEST] = manifest(artifacts, revision, targets=targets, kept=list(kept), inputs=inputs)
    return files


def read_manifest(out_dir: Path) -> dict | None:
    """The manifest.json of a previous build, or None when there is none or it is unreadable."""
    import json

    try:
        document = json.loads((out_dir / MANIFEST).read_bytes())
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


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
