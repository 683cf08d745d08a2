"""manifest.json, the record of a build: one typed model, one writer, one reader.

The writer (compiler.writer), `build --check`, `build --changed-since` (compiler.affected)
and anything else that looks at an earlier build go through `Manifest`: `Manifest.to_json`
is the only way the file is written and `read_manifest` / `parse_manifest` the only way it
is read. A manifest that does not match the model is not a manifest meshc wrote.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, ValidationError

from compiler import __version__
from compiler.loader import Revision
from compiler.serialize import to_json

if TYPE_CHECKING:
    from compiler.artifact import Artifact

MANIFEST = "manifest.json"


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
    targets: tuple[str, ...] | None = None  # the targets built, sorted
    # git blob id of every intent file the build read: what `--changed-since` compares
    # against, whether or not the tree was committed when it was built
    inputs: dict[str, str] | None = None

    @classmethod
    def of_build(cls, artifacts: Iterable[ArtifactRecord], revision: Revision, *,
                 targets: Iterable[str] | None = None, inputs: Mapping[str, str] | None = None) -> Manifest:
        return cls.model_construct(
            meshc=__version__,
            source=BuildSource.of(revision),
            artifacts=tuple(sorted(artifacts, key=lambda record: record.path)),
            targets=None if targets is None else tuple(sorted(targets)),
            inputs=None if inputs is None else dict(sorted(inputs.items())),
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
        if self.inputs is not None:
            document["inputs"] = dict(self.inputs)
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
        return parse_manifest((out_dir / MANIFEST).read_bytes())
    except (OSError, ManifestError):
        return None
