"""Incremental builds: a full build against `meshc build --changed-since HEAD` after one service changes.

    python bench/bench_changed_since.py [SERVICES] [WORKDIR]     (default 10000, a temporary directory)

Generates the synthetic mesh (bench/generate.py), commits it to a fresh git repository, builds
it in full, changes one service's timeout in the working tree, then times the incremental
build and a second full build of the same tree into another directory, and checks the two
output directories are byte-identical. Each build is a separate `meshc` process, as in CI.
"""

from __future__ import annotations

import filecmp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.generate import generate_mesh, service_key


def _git(top: Path, *args: str) -> None:
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(top)}
    subprocess.run(["git", *args], cwd=top, env=env, check=True, capture_output=True)


def _timed(*args: str) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "compiler", *args], capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"meshc {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return elapsed, done.stderr.strip()


def _same_tree(left: Path, right: Path) -> bool:
    def walk(directory: Path) -> set[str]:
        return {p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()}

    names = walk(left)
    if names != walk(right):
        return False
    _, mismatch, errors = filecmp.cmpfiles(left, right, sorted(names), shallow=False)
    return not mismatch and not errors


def main(count: int, work: Path) -> None:
    root = generate_mesh(work / "repo" / "mesh", count)
    top = root.parent
    _git(top, "init", "-q", "-b", "main")
    _git(top, "config", "user.name", "bench")
    _git(top, "config", "user.email", "bench@meshc.invalid")
    _git(top, "add", "-A")
    _git(top, "commit", "-q", "-m", "synthetic mesh")

    full, _ = _timed("build", str(root), "-q")
    namespace, name = service_key(count // 2)
    changed = root / "services" / namespace / f"{name}.yaml"
    changed.write_text(changed.read_text().replace("timeout: 10s", "timeout: 9s"))
    incremental, said = _timed("build", str(root), "--changed-since", "HEAD")
    again, _ = _timed("build", str(root), "-q", "-o", str(work / "full"))
    files = sum(1 for p in (root / "build").rglob("*") if p.is_file())
    identical = _same_tree(root / "build", work / "full")

    print(f"services: {count}, output files: {files}")
    print(f"full build (clean tree):            {full:7.2f} s")
    print(f"--changed-since HEAD (1 service):   {incremental:7.2f} s   [{said.splitlines()[0]}]")
    print(f"full build (same change):           {again:7.2f} s")
    print(f"incremental output equals full build: {identical}")
    if not identical:
        sys.exit(1)


if __name__ == "__main__":
    services = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    if len(sys.argv) > 2:
        main(services, Path(sys.argv[2]))
    else:
        with tempfile.TemporaryDirectory(prefix="meshc-bench-") as scratch:
            main(services, Path(scratch))
