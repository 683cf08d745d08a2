"""Lint and types as part of the suite: ruff with the rule set chosen in pyproject.toml, and
mypy with the configuration there (compiler/, policies/, targets/), find nothing."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import REPO, require_module

PACKAGES = ("compiler", "policies", "targets")


def _run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *command], cwd=REPO, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing() -> None:
    require_module("ruff")
    done = _run("ruff", "check", "--output-format", "concise", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_finds_nothing() -> None:
    require_module("mypy")
    done = _run("mypy")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"no issues found in {sum(len(list((REPO / p).rglob('*.py'))) for p in PACKAGES)} source files" \
        in done.stdout, done.stdout


def test_every_type_ignore_names_its_code_and_says_why() -> None:
    """mypy insists on the code (ignore-without-code); the reason after it is this project's rule."""
    ignore = re.compile(r"#\s*type:\s*ignore")
    explained = re.compile(r"#\s*type:\s*ignore\[[a-z-]+(,\s*[a-z-]+)*\]\s*(#|-)\s*\w")
    unexplained = [f"{path.relative_to(REPO)}:{number}: {line.strip()}"
                   for package in PACKAGES for path in sorted((REPO / package).rglob("*.py"))
                   for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                   if ignore.search(line) and not explained.search(line)]
    assert unexplained == []
