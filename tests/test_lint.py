"""Lint as part of the suite: ruff with the rule set chosen in pyproject.toml finds nothing."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO, require_module


def test_ruff_finds_nothing() -> None:
    require_module("ruff")
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--output-format", "concise", "."],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
