"""Differential test of the check cache (compiler.cache): over random sequences of edits of a
small mesh (examples/bookinfo: every intent kind, four platforms, a CEL Policy, Routes, a
Gateway), `meshc check` through the cache prints exactly what `meshc check --no-cache` prints,
with the same exit code, after every edit; and `meshc build`, which reads the cache, writes and
prints what `meshc build --no-cache` does."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import compiler.cache
from compiler.cli import main
from tests.conftest import BOOKINFO, EXAMPLES, copy_mesh, example_files

runner = CliRunner()

_TIMEOUT = re.compile(r"timeout: \d+s")


def _check(root: Path, *extra: str) -> tuple[int, str]:
    result = runner.invoke(main, ["check", str(root), "--format", "json", "--fail-on", "info", *extra])
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, result.output


def _edit(root: Path, action: str, pick: int, base: Path = BOOKINFO) -> None:
    """One edit of the mesh at root (a copy of `base`); `pick` chooses the file and the value."""
    files = sorted(p for p in root.rglob("*.yaml") if "tests" not in p.parts)
    added = [p for p in files if p.name.startswith("added-")]  # where the diagnostics are, often
    target = added[pick % len(added)] if added and pick % 2 else files[pick % len(files)]
    text = target.read_text()
    if action == "retime":  # a value changes: may break the Policy's bound of 30s, or the retries' budget
        seconds = (1, 4, 20, 31, 90)[pick % 5]
        target.write_text(_TIMEOUT.sub(f"timeout: {seconds}s", text, count=1) if _TIMEOUT.search(text)
                          else text.replace("\nname:", f"\nresilience: {{timeout: {seconds}s}}\nname:", 1))
    elif action == "shift":  # every position in the file moves down a line
        target.write_text("# moved\n" + text)
    elif action == "invalid":  # a field the schema refuses
        target.write_text(text.rstrip("\n") + "\nbogus: true\n")
    elif action == "unparsable":
        target.write_text(text + "\n: [unclosed\n")
    elif action == "delete":
        target.unlink()
    elif action == "rename":
        target.rename(target.with_name(f"renamed-{pick}-{target.name}"))
    elif action == "restore":  # an original file comes back, or back to its original text
        original = [p for p in example_files(base) if "tests" not in p.relative_to(base).parts]
        source = original[pick % len(original)]
        restored = root / source.relative_to(base)
        restored.parent.mkdir(parents=True, exist_ok=True)
        restored.write_bytes(source.read_bytes())
    elif action == "admit":  # an AccessPolicy admits another caller, or one more than exists
        access = root / "access" / "policies.yaml"
        if access.exists():
            caller = ("reviews", "ratings", "added-1", "added-3")[pick % 4]
            access.write_text(access.read_text().replace("from: [productpage]", f"from: [productpage, {caller}]", 1))
    elif action == "bound":  # the CEL Policy's bound moves: every service is judged again
        policy = root / "policies" / "timeouts.yaml"
        if policy.exists():
            policy.write_text(re.sub(r"duration\('\d+s'\)", f"duration('{(5, 30, 60)[pick % 3]}s')", policy.read_text()))
    elif action == "add":  # a new service calling another one, perhaps one that does not exist
        callee = ("details", "ratings", "reviews", "nowhere")[pick % 4]
        suppressed = "  # meshc: ignore[MESH202]" if pick % 3 == 0 else ""
        (root / "services" / f"added-{pick}.yaml").parent.mkdir(exist_ok=True)
        (root / "services" / f"added-{pick}.yaml").write_text(
            f"apiVersion: meshc/v1\nkind: Service\nname: added-{pick}\nplatform: prod-k8s\n"
            f"ports: [{{name: http, port: 8080, protocol: http}}]\ncalls:\n  - {callee}{suppressed}\n")


EDITS = st.lists(st.tuples(st.sampled_from(["retime", "shift", "invalid", "unparsable", "delete", "rename",
                                            "restore", "add", "admit", "bound"]),
                           st.integers(min_value=0, max_value=1000)), min_size=1, max_size=5)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=EDITS)
@example(edits=[("add", 1), ("shift", 1)])  # a diagnostic's file moves: its position must too
@example(edits=[("add", 3), ("rename", 1), ("retime", 1)])
@example(edits=[("retime", 3), ("delete", 0), ("restore", 0)])
@example(edits=[("bound", 0), ("admit", 1), ("add", 1), ("admit", 2)])  # checks kept by what they read
def test_cached_check_equals_uncached_over_random_edits(edits: list[tuple[str, int]],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    with tempfile.TemporaryDirectory(prefix="meshc-differential-") as scratch:
        monkeypatch.setenv(compiler.cache.ENVIRONMENT, str(Path(scratch) / "cache"))
        root = copy_mesh(BOOKINFO, Path(scratch) / "mesh")
        assert _check(root) == _check(root, "--no-cache")
        for action, pick in edits:
            _edit(root, action, pick)
            assert _check(root) == _check(root, "--no-cache"), (action, pick)
            assert _check(root) == _check(root, "--no-cache"), (action, pick)  # nothing changed: the last result
        # a build reads what the checks kept: the same output and the same files as without it
        built = [_build(root, Path(scratch) / name, *extra) for name, extra in (("cached", ()), ("uncached", ("--no-cache",)))]
        assert built[0] == built[1]


def _build(root: Path, out: Path, *extra: str) -> tuple[int, str, dict[str, bytes]]:
    result = runner.invoke(main, ["build", str(root), "-o", str(out), "--format", "json", *extra])
    assert result.exit_code in (0, 1), result.output
    files = {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    return result.exit_code, result.output.replace(str(out), "OUT"), files


MULTICLUSTER = EXAMPLES / "multicluster-shop"


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.sampled_from(["retime", "shift", "invalid", "delete", "restore"]),
                                st.integers(min_value=0, max_value=1000)), min_size=1, max_size=6))
# an overlay edited, broken, moved and deleted, then a base service and the Mesh edited
@example(edits=[("retime", 2), ("invalid", 3), ("shift", 3), ("delete", 3), ("retime", 8), ("retime", 6)])
def test_cached_check_of_a_mesh_with_environments_equals_uncached(edits: list[tuple[str, int]],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The same over examples/multicluster-shop, checked in its three environments: edits reach
    base files and environments' overlay files (a cached file an overlay touches is loaded
    again; an environment's checks are not kept)."""
    with tempfile.TemporaryDirectory(prefix="meshc-differential-") as scratch:
        monkeypatch.setenv(compiler.cache.ENVIRONMENT, str(Path(scratch) / "cache"))
        root = copy_mesh(MULTICLUSTER, Path(scratch) / "mesh")
        assert _check(root) == _check(root, "--no-cache")
        for action, pick in edits:
            _edit(root, action, pick, MULTICLUSTER)
            assert _check(root) == _check(root, "--no-cache"), (action, pick)
            assert _check(root) == _check(root, "--no-cache"), (action, pick)
