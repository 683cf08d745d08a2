"""The output directory: atomic replacement, no stale files, manifest.json, nothing outside."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path

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


def manifest(artifacts: list[Artifact], revision: Revision) -> bytes:
    entries = [
        {
            "path": a.path,
            "sha256": hashlib.sha256(a.content).hexdigest(),
            "sources": list(a.sources),
            "target": a.target,
            "workload": a.workload,
        }
        for a in sorted(artifacts, key=lambda a: a.path)
    ]
    return to_json(
        {
            "artifacts": entries,
            "meshc": __version__,
            "source": {"commit": revision.commit, "dirty": revision.dirty, "ref": revision.ref},
        }
    )


def render_tree(artifacts: list[Artifact], revision: Revision) -> dict[str, bytes]:
    """Every file of the output directory, manifest included, keyed by relative path."""
    files: dict[str, bytes] = {}
    for artifact in artifacts:
        check_path(artifact.path)
        if artifact.path in files or artifact.path == MANIFEST:
            raise OutputError(f"two artifacts claim {artifact.path}")
        files[artifact.path] = artifact.content
    files[MANIFEST] = manifest(artifacts, revision)
    return files


def write_tree(out_dir: Path, files: dict[str, bytes]) -> None:
    """Replace out_dir with exactly `files`; on any failure out_dir is left as it was."""
    out_dir = out_dir.absolute()
    if out_dir.exists():
        if not out_dir.is_dir():
            raise OutputError(f"{out_dir} exists and is not a directory")
        if any(out_dir.iterdir()) and not (out_dir / MANIFEST).is_file():
            raise OutputError(
                f"{out_dir} is not empty and holds no {MANIFEST}: refusing to replace a directory meshc did not write"
            )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.new-", dir=out_dir.parent))
    try:
        for path, content in sorted(files.items()):
            target = staging / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            os.chmod(target, 0o755 if path.endswith(".sh") else 0o644)
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
