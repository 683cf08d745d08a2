"""The README's two commands, run in order in a fresh clone as a newcomer runs them, and the rule
that lets them follow each other: tests that walk a mesh's files leave meshc's output out.

The commands are read from README.md, so this test follows the README when it changes.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from compiler.manifest import MANIFEST, read_manifest
from targets import REGISTRY
from tests.conftest import (
    BOOKINFO,
    REPO,
    SHARED,
    copy_mesh,
    example_files,
    is_meshc_output,
    lines_of_tests_matching,
    require_tool,
)
from tests.gitops_support import meshc

FRESH_MACHINE_SECTION = "## Two commands on a fresh machine"
# The tests that read files below examples/ themselves rather than through meshc's loader (which
# leaves its default output directory out on its own); examples/bookinfo/build is in their way.
WALK_EXAMPLES = ["test_commands.py", "test_target_snapshots.py"]


def readme_commands() -> list[str]:
    """The shell commands of the README's fresh-machine section, in order."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert FRESH_MACHINE_SECTION in text, f"README.md has no {FRESH_MACHINE_SECTION!r} section"
    section = text.split(FRESH_MACHINE_SECTION, 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"^```sh\n(.*?)^```", section, flags=re.S | re.M)]


def test_readme_has_two_commands_and_ci_runs_the_second() -> None:
    install_and_build, install_and_test = readme_commands()
    assert "meshc build examples/bookinfo" in install_and_build
    assert install_and_test.endswith("python -m pytest -q")
    ci_lines = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert ci_lines[-1] == install_and_test


def _run(command: str, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(["bash", "-e", "-c", command], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_readme_commands_in_order_in_a_fresh_clone(tmp_path: Path) -> None:
    """Both commands, verbatim, in a `git clone` of this repository's HEAD (uncommitted changes are
    not part of a fresh clone), in a virtual environment of its own.

    The environment is created with --system-site-packages (and without pip, which it then finds
    there): the dependencies are already installed, so pip builds and installs meshc alone instead
    of downloading every dependency from PyPI on every run, as a plain venv would. `../shared`
    beside the clone points to the real one, as beside the repository.

    The second command runs the whole suite; running the whole suite again inside it would double
    the suite's time. So it runs verbatim with `-k` selecting the modules whose tests list files
    below examples/ (WALK_EXAMPLES), the ones the first command's output could break, and pytest
    still imports and collects every module. test_fuzz samples the same listing but compiles
    hundreds of meshes, so it is left to the outer run; test_no_test_walks_the_examples_by_itself
    keeps every other walk on the same two helpers.
    """
    git = require_tool("git", "the Debian package git")
    install_and_build, install_and_test = readme_commands()
    if SHARED.is_dir():
        (tmp_path / "shared").symlink_to(SHARED, target_is_directory=True)
    clone = tmp_path / "meshc"
    subprocess.run([git, "clone", "-q", str(REPO), str(clone)], check=True, capture_output=True, timeout=120)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)],
                   check=True, capture_output=True, timeout=120)
    env = {name: value for name, value in os.environ.items() if name not in ("PYTHONPATH", "PYTHONHOME")}
    env |= {"PATH": f"{venv / 'bin'}{os.pathsep}{env['PATH']}", "VIRTUAL_ENV": str(venv),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1"}

    _run(install_and_build, clone, env)
    build = clone / "examples" / "bookinfo" / "build"
    manifest = read_manifest(build)
    assert manifest is not None, f"{build} holds no manifest meshc reads"
    head = subprocess.run([git, "rev-parse", "HEAD"], cwd=clone, check=True, capture_output=True, text=True)
    assert (manifest.source.commit, manifest.source.dirty) == (head.stdout.strip(), False)
    assert {record.target for record in manifest.artifacts} == set(REGISTRY)
    on_disk = {p.relative_to(build).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
               for p in build.rglob("*") if p.is_file() and p.name != MANIFEST}
    assert on_disk == {record.path: record.sha256 for record in manifest.artifacts}

    selection = " or ".join(WALK_EXAMPLES)
    tested = _run(f"{install_and_test} -p no:cacheprovider --basetemp={shlex.quote(str(tmp_path / 'nested'))}"
                  f" -k {shlex.quote(selection)}", clone, env)
    summary = tested.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ passed, \d+ deselected(, \d+ warnings?)? in .*", summary), tested

def test_walks_of_a_mesh_leave_out_every_directory_meshc_built(tmp_path: Path) -> None:
    mesh = copy_mesh(BOOKINFO, tmp_path / "bookinfo")
    intents = example_files(mesh)
    for output in (mesh / "build", mesh / "services" / "artifacts"):  # the default and any -o
        assert meshc("build", str(mesh), "-o", str(output)).exit_code == 0
        assert is_meshc_output(output)
    (mesh / "notes").mkdir()
    (mesh / "notes" / "manifest.json").write_text("{}\n", encoding="utf-8")  # not one meshc wrote
    (mesh / "notes" / "extra.yaml").write_text("a: 1\n", encoding="utf-8")

    assert [p.relative_to(mesh) for p in example_files(mesh)] == \
        sorted([p.relative_to(mesh) for p in intents] + [Path("notes/extra.yaml")])
    copied = copy_mesh(mesh, tmp_path / "copy")
    assert not (copied / "build").exists() and not (copied / "services" / "artifacts").exists()
    assert example_files(copied) == [copied / p.relative_to(mesh) for p in example_files(mesh)]



def test_no_test_walks_the_examples_by_itself() -> None:
    """Listing or copying an example's files goes through example_files / copy_mesh, which leave
    meshc's output out; a walk written again in a test would trip over examples/*/build."""
    walk = re.compile(r"\b(EXAMPLES|BOOKINFO)\b.*\.(r?glob|walk)\(|\bos\.walk\(|copytree\(\s*(EXAMPLES|BOOKINFO)\b")
    helpers = REPO / "tests" / "conftest.py"
    assert lines_of_tests_matching(walk, besides=(helpers, Path(__file__))) == []
    assert walk.search(helpers.read_text(encoding="utf-8"))
