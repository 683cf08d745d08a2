"""A CLI that never surprises (issue 13, everyday friction): explain lists and finds codes,
--version names the source revision, init checks with no diagnostic at all, diff --quiet,
documented revisions exist, and environment faults are one plain line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import click
from click.testing import CliRunner

from compiler.cli import main
from compiler.codes import CODES
from tests.conftest import REPO
from tests.gitops_support import git_mesh, meshc

runner = CliRunner()


def test_explain_without_a_code_lists_every_code() -> None:
    result = runner.invoke(main, ["explain"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert [line.split()[0] for line in lines] == list(CODES)
    assert all(CODES[line.split()[0]].summary in line for line in lines)


def test_explain_takes_the_number_alone() -> None:
    for spelling in ("360", "mesh360", "MESH360", " 360 "):
        result = runner.invoke(main, ["explain", spelling])
        assert result.exit_code == 0 and result.output.startswith("MESH360 (unreachable-service)"), spelling
    assert runner.invoke(main, ["explain", "9999"]).exit_code == 2


def test_version_names_the_git_revision_of_a_source_install() -> None:
    result = subprocess.run([sys.executable, "-m", "compiler", "--version"], cwd=REPO, capture_output=True,
                            text=True, timeout=60, check=True)
    revision = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=30, check=True).stdout.strip()
    match = re.fullmatch(r"meshc \S+ \(git ([0-9a-f]{12})(-dirty)?\)\n", result.stdout)
    assert match and revision.startswith(match.group(1)), result.stdout


def test_init_checks_with_no_diagnostic_at_all(tmp_path: Path) -> None:
    assert runner.invoke(main, ["init", str(tmp_path)]).exit_code == 0
    result = runner.invoke(main, ["check", str(tmp_path), "--fail-on", "info", "--format", "json"])
    assert result.exit_code == 0 and '"diagnostics": []' in result.output, result.output


def test_diff_quiet_answers_by_exit_code(tmp_path: Path) -> None:
    repo = git_mesh(tmp_path / "repo")
    quiet = meshc("diff", str(repo.root), "--quiet")
    assert quiet.exit_code == 0 and quiet.output == ""
    repo.edit("services/reviews.yaml", "timeout: 10s", "timeout: 8s")
    quiet = meshc("diff", str(repo.root), "-q")
    assert quiet.exit_code == 1 and quiet.output == ""


def test_diff_works_from_outside_the_repository(tmp_path: Path, monkeypatch) -> None:
    repo = git_mesh(tmp_path / "repo")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = meshc("diff", str(repo.root), "--format", "json")
    assert result.exit_code == 0, result.output


def test_diff_takes_the_mesh_path_and_revisions_as_options(tmp_path: Path, monkeypatch) -> None:
    repo = git_mesh(tmp_path / "repo")
    base = repo.git("rev-parse", "HEAD")
    repo.edit("services/reviews.yaml", "timeout: 10s", "timeout: 8s")
    head = repo.commit("reviews timeout")
    monkeypatch.chdir(tmp_path)
    relative = repo.root.relative_to(tmp_path).as_posix()
    committed = meshc("diff", relative, "--base", base, "--head", head, "--format", "json")
    assert committed.exit_code == 0, committed.output
    assert [i["name"] for i in json.loads(committed.stdout)["intents"]] == ["bookinfo/reviews"]
    # the default pair, HEAD against the working tree: nothing uncommitted
    assert meshc("diff", relative, "--quiet").exit_code == 0
    assert meshc("diff", relative, "--base", base, "--quiet").exit_code == 1


MESH_PATH = "PATH is the mesh root, the directory holding mesh.yaml (default: the current directory)"


def test_every_command_documents_its_arguments_alike() -> None:
    """--help explains each argument by name (with its default, or at least one), the
    commands that take a mesh say PATH in the same words, and docs/cli.md has one heading per
    command that starts with the usage --help prints."""
    headings = {line.split()[2]: line.split()[3:] for line in (REPO / "docs" / "cli.md").read_text().splitlines()
                if line.startswith("## meshc ") and not line.startswith("## meshc -")}
    for name, command in main.commands.items():
        context = click.Context(command, info_name=name)
        pieces = [p for p in command.collect_usage_pieces(context) if p != "[OPTIONS]"]
        assert headings[name][:len(pieces)] == pieces, name
        text = " ".join((command.help or "").split())
        for argument in (p for p in command.params if isinstance(p, click.Argument)):
            word = re.sub(r"[^A-Z]", "", argument.make_metavar(context))
            explained = re.search(rf"(^|\. )(Each )?{word} (is|are) ((?!\. ).)*(\(default: [^)]+\)|at least one)", text)
            assert explained, (name, word)
            if word == "PATH" and argument.nargs != -1:
                assert MESH_PATH in text, name


def test_documented_revisions_exist_and_hold_the_hooks_and_the_action() -> None:
    pinned = set()
    for document in ("README.md", "docs/gitops.md"):
        text = (REPO / document).read_text(encoding="utf-8")
        pinned |= set(re.findall(r"rev: (\S+)", text)) | set(re.findall(r"uses: meshc/meshc@(\S+)", text))
    assert pinned and all(re.fullmatch(r"[0-9a-f]{40}", rev) for rev in pinned), pinned
    for rev in pinned:
        for path in (".pre-commit-hooks.yaml", "action.yml"):
            subprocess.run(["git", "-C", str(REPO), "cat-file", "-e", f"{rev}:{path}"], check=True, timeout=30)


def test_an_unwritable_environment_is_one_plain_line(tmp_path: Path, monkeypatch) -> None:
    from compiler import build

    def unreadable(*_args, **_kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "x"))

    monkeypatch.setattr(build, "compile_mesh", unreadable)
    result = runner.invoke(main, ["check", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output == f"meshc: Permission denied: {tmp_path / 'x'}\n"


def test_timings_say_where_the_time_went(tmp_path: Path) -> None:
    from tests.conftest import BOOKINFO

    result = meshc("build", str(BOOKINFO), "-o", str(tmp_path / "out"), "--timings", "-q")
    assert result.exit_code == 0
    stages = [line.split()[0] for line in result.stderr.splitlines()[1:]]
    assert result.stderr.startswith("meshc: timings\n") and stages == ["load", "link", "analyse", "emit", "write",
                                                                      "total"]
    assert re.search(r"^  emit +[0-9.]+ s  [0-9]+ artifacts$", result.stderr, re.M)


def test_progress_shows_on_a_terminal_only(tmp_path: Path, monkeypatch) -> None:
    from compiler import cli
    from tests.conftest import BOOKINFO

    quiet_pipe = meshc("check", str(BOOKINFO))
    assert quiet_pipe.exit_code == 0 and quiet_pipe.stderr == ""
    monkeypatch.setattr(cli, "_stderr_is_terminal", lambda: True)
    shown = meshc("check", str(BOOKINFO), "--no-cache")
    assert [line.split(":")[1].strip() for line in shown.stderr.splitlines()] == ["load", "link", "analyse", "emit"]
    cached = meshc("check", str(BOOKINFO))  # unchanged since the first check: its answer, from the cache
    assert re.fullmatch(r"meshc: cache: unchanged: the last check's diagnostics \([0-9.]+ s\)\n", cached.stderr)
    assert re.search(r"^meshc: load: [0-9]+ files, [0-9]+ intents \([0-9.]+ s\)$", shown.stderr, re.M)
    assert meshc("check", str(BOOKINFO), "--quiet").stderr == ""
