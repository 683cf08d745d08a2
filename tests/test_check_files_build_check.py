"""`meshc check-files --build-check` (the hook meshc-check-and-build-check): one compile gives
the check's diagnostics and `build --check`'s verdict on the output directory, with and
without the check cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler import DEFAULT_OUTPUT
from tests.gitops_support import meshc


@pytest.mark.parametrize("cache", [[], ["--no-cache"]], ids=["cache", "no-cache"])
def test_build_check_from_the_check_agrees_with_build_check(bookinfo_copy: Path, cache: list[str]) -> None:
    files = [str(bookinfo_copy / "services" / "reviews.yaml")]
    out = bookinfo_copy / DEFAULT_OUTPUT
    missing = meshc("check-files", "--build-check", *cache, *files)
    assert missing.exit_code == 1
    assert any(line.startswith("added: ") and line.endswith(f"{DEFAULT_OUTPUT}/manifest.json")
               for line in missing.stdout.splitlines())
    assert meshc("build", str(bookinfo_copy), "-q").exit_code == 0
    assert meshc("check-files", "--build-check", *cache, *files).exit_code == 0
    (out / "envoy").rename(out / "elsewhere")  # the artifacts changed, not the intents
    drifted = meshc("check-files", "--build-check", *cache, *files)
    assert drifted.exit_code == 1 and "removed: " in drifted.stdout and "added: " in drifted.stdout
    assert meshc("build", str(bookinfo_copy), "--check").exit_code == 1
    assert meshc("check-files", *cache, *files).exit_code == 0  # without --build-check: intents only
