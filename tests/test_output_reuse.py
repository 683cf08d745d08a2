"""A rebuild does not rewrite unchanged files (compiler.writer): a file whose bytes and mode
the new tree wants as they are is hard-linked from the current output into the new tree.
Nothing read from the output is trusted: a tampered, re-moded or linked file is written
afresh, and a kill at any step still leaves the old tree or the new one."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from compiler import writer
from tests.conftest import BOOKINFO
from tests.gitops_support import meshc
from tests.test_hostile_output_dir import _tree, assert_every_kill_leaves_the_old_or_the_new_tree


def _inodes(directory: Path) -> dict[str, int]:
    return {p.relative_to(directory).as_posix(): p.stat().st_ino for p in directory.rglob("*") if p.is_file()}


def test_a_rebuild_links_every_unchanged_file(tmp_path: Path) -> None:
    out, fresh = tmp_path / "out", tmp_path / "fresh"
    assert meshc("build", str(BOOKINFO), "-o", str(out), "-q").exit_code == 0
    before = _inodes(out)
    assert meshc("build", str(BOOKINFO), "-o", str(out), "-q").exit_code == 0
    assert meshc("build", str(BOOKINFO), "-o", str(fresh), "-q").exit_code == 0
    assert _tree(out) == _tree(fresh)
    after = _inodes(out)
    assert after == before  # every file the same inode: not one rewritten
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh", "out"]


def test_changed_tampered_and_re_moded_files_are_written_afresh(tmp_path: Path) -> None:
    out = tmp_path / "out"
    old = {"manifest.json": b"{}", "a/same.yaml": b"same", "a/changed.yaml": b"one",
           "a/tampered.yaml": b"right", "vm/x/install.sh": b"#!/bin/sh\n", "b/linked.yaml": b"linked"}
    writer.write_tree(out, old)
    (out / "a" / "tampered.yaml").write_bytes(b"wrong")  # same size, other bytes
    os.chmod(out / "vm" / "x" / "install.sh", 0o700)
    elsewhere = tmp_path / "elsewhere.yaml"
    elsewhere.write_bytes(b"linked")
    (out / "b" / "linked.yaml").unlink()
    (out / "b" / "linked.yaml").symlink_to(elsewhere)  # the right bytes, through a link
    before = _inodes(out)
    new = {**old, "a/changed.yaml": b"two"}
    writer.write_tree(out, new)
    assert _tree(out) == new
    after = _inodes(out)
    assert after["a/same.yaml"] == before["a/same.yaml"]
    for rewritten in ("a/changed.yaml", "a/tampered.yaml", "vm/x/install.sh"):
        assert after[rewritten] != before[rewritten], rewritten
    assert not (out / "b" / "linked.yaml").is_symlink()
    assert after["b/linked.yaml"] != elsewhere.stat().st_ino
    assert (out / "vm" / "x" / "install.sh").stat().st_mode & 0o777 == 0o755


def test_a_kill_at_any_step_of_a_swap_with_linked_files_leaves_the_old_or_the_new_tree(tmp_path: Path) -> None:
    old = {"manifest.json": b"{}", "envoy/same.yaml": b"same", "envoy/a.yaml": b"old a", "vm/x/install.sh": b"#!"}
    new = {"manifest.json": b"{ }", "envoy/same.yaml": b"same", "envoy/a.yaml": b"new a", "vm/x/install.sh": b"#!"}
    assert_every_kill_leaves_the_old_or_the_new_tree(tmp_path, old, new)


def test_a_large_swapped_out_tree_is_removed_after_write_tree_returns(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Past BACKGROUND_REMOVAL_FILES the previous tree is unlinked by a detached process: the
    new tree is complete when write_tree returns, and the old one goes away by itself."""
    monkeypatch.setattr(writer, "BACKGROUND_REMOVAL_FILES", 1)
    out = tmp_path / "out"
    old = {"manifest.json": b"{}", "envoy/a.yaml": b"old a", "envoy/same.yaml": b"same"}
    new = {"manifest.json": b"{ }", "envoy/b.yaml": b"new b", "envoy/same.yaml": b"same"}
    writer.write_tree(out, old)
    writer.write_tree(out, new)
    assert _tree(out) == new
    waited = 0
    while [p.name for p in tmp_path.iterdir()] != ["out"] and waited < 600:  # up to 60 s on a loaded machine
        time.sleep(0.1)
        waited += 1
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert _tree(out) == new


def test_a_kept_file_replaced_while_it_is_linked_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`build --changed-since` keeps files by hard link: one swapped for a link to a file outside
    between the check and the link is caught by comparing the linked inode with the one held
    open, and nothing changes."""
    out = tmp_path / "out"
    writer.write_tree(out, {"manifest.json": b"{}", "envoy/a.yaml": b"a"})
    real_link = os.link

    def swapped_first(source, destination, *, src_dir_fd=None, dst_dir_fd=None, follow_symlinks=True):
        os.unlink(source, dir_fd=src_dir_fd)
        os.symlink("/etc/passwd", source, dir_fd=src_dir_fd)
        return real_link(source, destination, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd,
                         follow_symlinks=follow_symlinks)

    monkeypatch.setattr(writer.os, "link", swapped_first)
    with pytest.raises(writer.OutputError, match="replaced while it was kept"):
        writer.write_tree(out, {"manifest.json": b"{ }"}, keep=frozenset({"envoy/a.yaml"}))
    monkeypatch.undo()
    assert (out / "manifest.json").read_bytes() == b"{}"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
