"""Shared fixtures: the example mesh, a scratch mesh writer, and the path to ../shared."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
BOOKINFO = EXAMPLES / "bookinfo"
SHARED = REPO.parent / "shared"
SCHEMAS = SHARED / "schemas"


def require_shared_schemas() -> Path:
    if not SCHEMAS.is_dir():
        pytest.skip(f"{SCHEMAS} is absent: schema validation needs ../shared/schemas beside the repository")
    return SCHEMAS


@pytest.fixture
def bookinfo_copy(tmp_path: Path) -> Path:
    """A writable copy of the example mesh."""
    target = tmp_path / "bookinfo"
    shutil.copytree(BOOKINFO, target, ignore=shutil.ignore_patterns("build"))
    return target


@pytest.fixture
def make_mesh(tmp_path: Path):
    """Write a mesh repo from {relative path: YAML text}; returns its root."""

    def write(files: dict[str, str], root: Path | None = None) -> Path:
        root = root or tmp_path / "mesh"
        for relative, text in files.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(text, bytes):
                path.write_bytes(text)
            else:
                path.write_text(textwrap.dedent(text), encoding="utf-8")
        return root

    return write
