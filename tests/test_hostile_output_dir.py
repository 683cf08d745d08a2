"""Nothing read from the output directory is trusted, the output directory is swapped in with
no moment at which it is missing or partial, and environment faults are one plain line with
exit 2 (issue 13, findings 3, 4 and 10)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from compiler import writer
from compiler.manifest import MANIFEST, ManifestError, parse_manifest
from tests.gitops_support import git_mesh, meshc
from tests.test_gitops_incremental import CASES, _built, _fallback


def _tree(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def _rewrite_manifest(out: Path, edit) -> None:
    document = json.loads((out / MANIFEST).read_bytes())
    edit(document)
    (out / MANIFEST).write_text(json.dumps(document), encoding="utf-8")


@pytest.mark.parametrize("bad_path", ["/etc/passwd", "../outside.yaml", "envoy/../../outside.yaml", "a//b", ".hidden"])
def test_manifest_paths_outside_the_output_are_not_a_manifest(bad_path: str) -> None:
    record = {"path": bad_path, "sha256": "0" * 64, "sources": ["a.yaml"], "target": "envoy", "workload": "w"}
    document = {"artifacts": [record], "meshc": "0", "source": {"commit": None, "dirty": True, "ref": None}}
    with pytest.raises(ManifestError):
        parse_manifest(json.dumps(document).encode())


@pytest.mark.parametrize("bad_input", [{"/etc/passwd": "0" * 40}, {"../x.yaml": "0" * 40}, {"a.yaml": "zz"}])
def test_manifest_inputs_must_be_intent_paths_and_blob_ids(bad_input: dict) -> None:
    document = {"artifacts": [], "meshc": "0", "source": {"commit": None, "dirty": True, "ref": None},
                "inputs": bad_input}
    with pytest.raises(ManifestError):
        parse_manifest(json.dumps(document).encode())


def test_changed_since_never_reads_outside_the_output_directory(tmp_path: Path) -> None:
    repo = git_mesh(tmp_path / "repo")
    out = _built(repo)
    (tmp_path / "repo" / "outside.yaml").write_text("secret", encoding="utf-8")
    _rewrite_manifest(out, lambda d: d["artifacts"][0].update(path="../../outside.yaml"))
    CASES["route"][0](repo)
    assert "holds no readable manifest.json" in _fallback(repo)


def test_a_link_to_a_device_in_the_output_is_not_read(tmp_path: Path) -> None:
    repo = git_mesh(tmp_path / "repo")
    out = _built(repo)
    document = json.loads((out / MANIFEST).read_bytes())
    victim = next(r for r in document["artifacts"] if "details" in r["path"])
    (out / victim["path"]).unlink()
    (out / victim["path"]).symlink_to("/dev/zero")  # read in full, it never ends
    CASES["route"][0](repo)
    started = time.monotonic()
    assert "cannot be read" in _fallback(repo)
    assert time.monotonic() - started < 60
    assert not (out / victim["path"]).is_symlink()  # the full build replaced it


def test_a_linked_directory_in_the_output_is_not_followed(tmp_path: Path) -> None:
    repo = git_mesh(tmp_path / "repo")
    out = _built(repo)
    document = json.loads((out / MANIFEST).read_bytes())
    victim = next(r for r in document["artifacts"] if r["path"].count("/") >= 2)
    directory = out / victim["path"].rsplit("/", 1)[0]
    elsewhere = tmp_path / "elsewhere"
    shutil.move(directory, elsewhere)
    directory.symlink_to(elsewhere, target_is_directory=True)
    CASES["route"][0](repo)
    assert "cannot be read" in _fallback(repo)
    assert not directory.is_symlink()


def test_build_check_does_not_follow_links_in_the_output(tmp_path: Path) -> None:
    repo = git_mesh(tmp_path / "repo")
    out = _built(repo)
    (out / "extra.yaml").symlink_to("/dev/zero")
    result = meshc("build", str(repo.root), "--check")
    assert result.exit_code == 1
    assert f"removed: {out / 'extra.yaml'}" in result.stdout


# ---------------------------------------------------------------------------------------------
# The swap, killed at every step


_STEPS = ("open", "write", "close", "fchmod", "mkdir", "makedirs", "chmod", "rename", "link", "unlink",
          "rmdir", "mkdtemp", "rmtree", "exchange")


def _run_killed_at(step: int | None, out: Path, files: dict[str, bytes]) -> int:
    """write_tree in a forked child killed (SIGKILL) before its step-th file system call;
    the number of calls it made when `step` is None."""
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child never returns
        os.close(read)
        calls = 0

        def counted(function):
            def wrapper(*args, **kwargs):
                nonlocal calls
                if calls == step:
                    os.kill(os.getpid(), signal.SIGKILL)
                calls += 1
                return function(*args, **kwargs)
            return wrapper

        for name in _STEPS:
            if hasattr(os, name):
                setattr(os, name, counted(getattr(os, name)))
        writer.tempfile.mkdtemp = counted(writer.tempfile.mkdtemp)
        writer.shutil.rmtree = counted(writer.shutil.rmtree)
        writer._exchange = counted(writer._exchange)
        writer.write_tree(out, files)
        os.write(write, str(calls).encode())
        os._exit(0)
    os.close(write)
    _, status = os.waitpid(child, 0)
    with os.fdopen(read) as pipe:
        reported = pipe.read()
    return int(reported) if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 else -1


def test_a_kill_at_any_step_of_the_swap_leaves_the_old_or_the_new_tree(tmp_path: Path) -> None:
    old = {"manifest.json": b"{}", "envoy/a.yaml": b"old a", "envoy/gone.yaml": b"gone"}
    new = {"manifest.json": b"{ }", "envoy/a.yaml": b"new a", "vm/x/install.sh": b"#!/bin/sh\n"}
    assert_every_kill_leaves_the_old_or_the_new_tree(tmp_path, old, new)


def assert_every_kill_leaves_the_old_or_the_new_tree(tmp_path: Path, old: dict[str, bytes],
                                                     new: dict[str, bytes]) -> None:
    """write_tree from `old` to `new`, killed before each of its file system calls in turn."""
    out = tmp_path / "out"
    writer.write_tree(out, old)
    total = _run_killed_at(None, out, new)
    assert total > 10
    writer.write_tree(out, old)
    seen = set()
    for step in range(total):
        assert _run_killed_at(step, out, new) == -1
        state = _tree(out)
        assert state in (old, new), f"killed before call {step}: {sorted(state)}"
        seen.add("new" if state == new else "old")
        # the next build cleans up what the killed one left, and writes the tree asked for
        writer.write_tree(out, old)
        assert _tree(out) == old
        assert [p.name for p in tmp_path.iterdir()] == ["out"], f"left behind after call {step}"
    assert seen == {"old", "new"}


def test_the_output_stays_a_real_directory(tmp_path: Path) -> None:
    out = tmp_path / "out"
    writer.write_tree(out, {"manifest.json": b"1"})
    inode = out.stat().st_ino
    writer.write_tree(out, {"manifest.json": b"2"})
    assert out.is_dir() and not out.is_symlink() and out.stat().st_ino != inode
    assert (out / "manifest.json").read_bytes() == b"2"


def test_a_link_to_the_output_is_kept_and_its_target_replaced(tmp_path: Path) -> None:
    target = tmp_path / "versions" / "current"
    writer.write_tree(target, {"manifest.json": b"1"})
    link = tmp_path / "out"
    link.symlink_to(target, target_is_directory=True)
    writer.write_tree(link, {"manifest.json": b"2"})
    assert link.is_symlink() and (target / "manifest.json").read_bytes() == b"2"


# ---------------------------------------------------------------------------------------------
# Environment faults: one plain line, exit 2, the old output intact, nothing left behind


def _assert_plain_fault(result, *words: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("meshc: "), result.stderr
    assert "internal error" not in result.stderr and "please report" not in result.stderr
    for word in words:
        assert word in lines[0]


@pytest.mark.parametrize("fault", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_a_failing_write_is_one_plain_line(tmp_path: Path, monkeypatch, fault: int) -> None:
    repo = git_mesh(tmp_path / "repo")
    out = _built(repo)
    before = _tree(out)
    repo.edit("services/reviews.yaml", "timeout: 10s", "timeout: 8s")  # unchanged files are linked, not written
    real_write = os.write

    def failing_write(descriptor, data):
        if os.path.basename(os.readlink(f"/proc/self/fd/{descriptor}")).endswith(".yaml"):
            raise OSError(fault, os.strerror(fault))
        return real_write(descriptor, data)

    monkeypatch.setattr(os, "write", failing_write)
    result = meshc("build", str(repo.root), "-q")
    monkeypatch.undo()
    _assert_plain_fault(result, "cannot write the output directory", os.strerror(fault))
    assert _tree(out) == before
    assert sorted(p.name for p in out.parent.iterdir() if p.name.startswith(".build")) == []


def test_a_read_only_output_parent_is_one_plain_line(tmp_path: Path, monkeypatch) -> None:
    repo = git_mesh(tmp_path / "repo")

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(repo.root))

    monkeypatch.setattr(writer.tempfile, "mkdtemp", read_only)
    _assert_plain_fault(meshc("build", str(repo.root), "-q"), "Read-only file system")


def test_a_dangling_output_link_is_one_plain_line(tmp_path: Path) -> None:
    repo = git_mesh(tmp_path / "repo")
    link = tmp_path / "out"
    link.symlink_to(tmp_path / "nowhere")
    _assert_plain_fault(meshc("build", str(repo.root), "-o", str(link)), "symbolic link", "does not exist")


def test_a_reflog_revision_is_read_by_git(tmp_path: Path) -> None:
    repo = git_mesh(tmp_path / "repo")
    for ref in ("HEAD@{1.year.ago}", "HEAD@{0}", "main~0"):
        result = meshc("check", str(repo.root), "--ref", ref, "-q")
        assert result.exit_code in (0, 1) and "internal error" not in result.output, (ref, result.output)


def test_a_revision_is_never_an_option(tmp_path: Path) -> None:
    repo = git_mesh(tmp_path / "repo")
    marker = tmp_path / "written"
    result = meshc("check", str(repo.root), "--ref", f"--output={marker}")
    assert result.exit_code == 1 and "MESH009" in result.output
    assert not marker.exists()


def test_abandoned_staging_trees_are_removed_by_the_next_build(tmp_path: Path) -> None:
    out = tmp_path / "out"
    writer.write_tree(out, {"manifest.json": b"1"})
    dead = os.fork()
    if dead == 0:  # pragma: no cover
        os._exit(0)
    os.waitpid(dead, 0)
    for kind in ("new", "old"):
        (tmp_path / f".out.{kind}-{dead}-abc123" / "tree").mkdir(parents=True)
    alive = tmp_path / f".out.new-{os.getppid()}-keepme"  # a build still running: left alone
    alive.mkdir()
    writer.write_tree(out, {"manifest.json": b"2"})
    assert sorted(p.name for p in tmp_path.iterdir()) == [alive.name, "out"]


def test_without_an_exchange_a_killed_swap_is_put_back_by_the_next_build(tmp_path: Path, monkeypatch) -> None:
    """Where renameat2 cannot exchange (docs/cli.md), the output is missing between two renames;
    the next build finds the retired tree and puts it back before anything else."""
    monkeypatch.setattr(writer, "_exchange", lambda staging, out_dir: False)
    out = tmp_path / "out"
    old, new = {"manifest.json": b"old"}, {"manifest.json": b"new"}
    writer.write_tree(out, old)
    for step in range(_run_killed_at(None, out, new)):
        writer.write_tree(out, old)
        _run_killed_at(step, out, new)
        writer.remove_abandoned(out)
        assert _tree(out) in (old, new), f"killed before call {step}"
        assert [p.name for p in tmp_path.iterdir()] == ["out"]
