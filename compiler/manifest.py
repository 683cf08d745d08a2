"""manifest.json, the record of a build: one typed model, one writer, one reader.

The writer (compiler.writer), `build --check`, `build --changed-since` (compiler.affected)
and anything else that looks at an earlier build go through `Manifest`: `Manifest.to_json`
is the only way the file is written and `read_manifest` / `parse_manifest` the only way it
is read. A manifest that does not match the model is not a manifest meshc wrote.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from compiler import MANIFEST, __version__
from compiler.loader import Revision, read_limited
from compiler.serialize import to_json

if TYPE_CHECKING:
    from compiler.artifact import Artifact



class ManifestError(Exception):
    """The bytes are not a manifest.json meshc writes."""


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ArtifactRecord(_Record):
    """One file of the output directory (manifest.json itself excluded)."""

    path: str  # relative to the output directory, posix
    sha256: str  # of the file's bytes, hex
    sources: tuple[str, ...]  # intent files it was compiled from (targets/__init__.py says what counts)
    target: str
    workload: str

    @field_validator("path")
    @classmethod
    def _inside_the_output(cls, path: str) -> str:
        if not is_output_path(path) or path == MANIFEST:
            raise ValueError(f"artifact path {path!r} is not a path meshc writes")
        return path

    @field_validator("sha256")
    @classmethod
    def _a_sha256(cls, digest: str) -> str:
        if not _SHA256.fullmatch(digest):
            raise ValueError("sha256 is not 64 lower-case hex digits")
        return digest

    @field_validator("sources")
    @classmethod
    def _intent_files(cls, sources: tuple[str, ...]) -> tuple[str, ...]:
        if not all(is_intent_path(source) for source in sources):
            raise ValueError("a source is not a path inside the mesh root")
        return sources

    @classmethod
    def of(cls, artifact: Artifact) -> ArtifactRecord:
        return cls.model_construct(path=artifact.path, sha256=hashlib.sha256(artifact.content).hexdigest(),
                                   sources=tuple(artifact.sources), target=artifact.target,
                                   workload=artifact.workload)


class BuildSource(_Record):
    """The revision the intents were read from."""

    commit: str | None  # None outside git
    dirty: bool
    ref: str | None  # what --ref named; None for the working tree

    @classmethod
    def of(cls, revision: Revision) -> BuildSource:
        return cls.model_construct(commit=revision.commit, dirty=revision.dirty, ref=revision.ref)


class Manifest(_Record):
    meshc: str  # the version that wrote it
    source: BuildSource
    artifacts: tuple[ArtifactRecord, ...]  # sorted by path
    targets: tuple[str, ...] | None = None  # the targets that wrote files, sorted
    # the targets that ran and had nothing to write (no workload of theirs in the mesh):
    # `--changed-since` counts them as built, so adding their first workload stays incremental
    emptyTargets: tuple[str, ...] | None = None
    # git blob id of every intent file the build read: what `--changed-since` compares
    # against, whether or not the tree was committed when it was built
    inputs: dict[str, str] | None = None
    # a mesh with environments: the environments whose builds are below, one directory each
    # (each with its own manifest.json); the artifacts are theirs, paths prefixed
    environments: tuple[str, ...] | None = None

    @model_validator(mode="after")
    def _targets_are_what_was_written(self) -> Manifest:
        written = tuple(sorted({record.target for record in self.artifacts}))
        if self.targets is not None and self.targets != written:
            raise ValueError(f"targets {list(self.targets)} are not the targets of the artifacts {list(written)}")
        if set(self.emptyTargets or ()) & set(written):
            raise ValueError("a target of emptyTargets wrote files")
        return self

    def built_targets(self) -> frozenset[str]:
        """Every target the build ran, whether it wrote files or not."""
        return frozenset((*(self.targets or ()), *(self.emptyTargets or ())))

    @field_validator("inputs")
    @classmethod
    def _blob_ids_of_intent_files(cls, inputs: dict[str, str] | None) -> dict[str, str] | None:
        for path, blob in (inputs or {}).items():
            if not is_intent_path(path) or not _GIT_BLOB_ID.fullmatch(blob):
                raise ValueError(f"input {path!r}: not an intent path with a git blob id")
        return inputs

    @classmethod
    def of_build(cls, artifacts: Iterable[ArtifactRecord], revision: Revision, *,
                 targets: Iterable[str] | None = None, inputs: Mapping[str, str] | None = None,
                 environments: Iterable[str] | None = None) -> Manifest:
        """The manifest of a build that ran `targets` (None: not recorded) and made `artifacts`."""
        records = tuple(sorted(artifacts, key=lambda record: record.path))
        written = tuple(sorted({record.target for record in records}))
        return cls.model_construct(
            meshc=__version__,
            source=BuildSource.of(revision),
            artifacts=records,
            targets=None if targets is None else written,
            emptyTargets=None if targets is None else tuple(sorted(set(targets) - set(written))),
            inputs=None if inputs is None else dict(sorted(inputs.items())),
            environments=None if environments is None else tuple(sorted(environments)),
        )

    def to_json(self) -> bytes:
        return to_json(self._document())

    def comparable(self) -> bytes:
        """The manifest without what moves with no change to the artifacts: the source revision
        (every commit) and the inputs' blob ids (every comment). `build --check` compares this."""
        document = self._document()
        del document["source"]
        document.pop("inputs", None)
        return to_json(document)

    def _document(self) -> dict:
        document: dict = {
            "artifacts": [
                {"path": r.path, "sha256": r.sha256, "sources": list(r.sources), "target": r.target,
                 "workload": r.workload}
                for r in self.artifacts
            ],
            "meshc": self.meshc,
            "source": {"commit": self.source.commit, "dirty": self.source.dirty, "ref": self.source.ref},
        }
        if self.targets is not None:
            document["targets"] = list(self.targets)
        if self.emptyTargets is not None:
            document["emptyTargets"] = list(self.emptyTargets)
        if self.inputs is not None:
            document["inputs"] = dict(self.inputs)
        if self.environments is not None:
            document["environments"] = list(self.environments)
        return document


def parse_manifest(data: bytes) -> Manifest:
    """The manifest in `data`; ManifestError when it is not one meshc writes."""
    try:
        return Manifest.model_validate_json(data)
    except ValidationError as error:
        raise ManifestError(f"not a meshc manifest: {error.errors()[0]['msg']}") from None


def read_manifest(out_dir: Path) -> Manifest | None:
    """The manifest.json of the build in out_dir, or None when there is none or it is not one."""
    try:
        return parse_manifest(read_build_file(out_dir, MANIFEST, MAX_MANIFEST_BYTES))
    except (OSError, ManifestError):
        return None


# ---------------------------------------------------------------------------------------------
# Reading an earlier build: nothing in the output directory is trusted. Paths are checked
# against the output root before any read, no symbolic link inside it is followed, only
# regular files are opened, and reads are bounded.

MAX_MANIFEST_BYTES = 256 * 1024 * 1024
MAX_OUTPUT_FILE_BYTES = 1024 * 1024 * 1024
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_GIT_BLOB_ID = re.compile(r"^[0-9a-f]{40}$")


def is_output_path(path: str) -> bool:
    """A path meshc writes in an output directory: relative, normalised, plain segments."""
    return bool(path) and all(_SEGMENT.fullmatch(part) for part in path.split("/"))


def is_intent_path(path: str) -> bool:
    """A path of an intent file, relative to the mesh root and inside it."""
    parts = path.split("/")
    return bool(path) and "\x00" not in path and all(part not in ("", ".", "..") for part in parts)


def open_build_parent(out_dir: Path, path: str) -> tuple[int, str]:
    """A descriptor of the directory holding `path` inside out_dir, reached without following
    any symbolic link below out_dir, and the file's name in it. The caller closes it."""
    if not is_output_path(path):
        raise OSError(errno.EINVAL, "not a path meshc writes", path)
    *directories, name = path.split("/")
    directory = os.open(out_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for segment in directories:
            inner = os.open(segment, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=directory)
            os.close(directory)
            directory = inner
    except BaseException:
        os.close(directory)
        raise
    return directory, name


def read_build_file(out_dir: Path, path: str, limit: int) -> bytes:
    """The bytes of a regular file of an earlier build; OSError for anything else (a link, a
    FIFO or device, a file over `limit` bytes)."""
    directory, name = open_build_parent(out_dir, path)
    try:
        descriptor = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=directory)
    finally:
        os.close(directory)
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
        if status.st_size > limit:
            raise OSError(errno.EFBIG, f"larger than {limit} bytes", path)
        data = read_limited(descriptor, status.st_size, limit)
        if len(data) > limit:
            raise OSError(errno.EFBIG, f"larger than {limit} bytes", path)
        return data
    finally:
        os.close(descriptor)
