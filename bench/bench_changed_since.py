"""Incremental builds: a full build against `meshc build --changed-since HEAD` after one service changes.

    python bench/bench_changed_since.py [SERVICES] [WORKDIR]     (default 10000, a temporary directory)

Generates the synthetic mesh (bench/generate.py), commits it to a fresh git repository, builds
it in full, runs `meshc check` (which fills the check cache, compiler.cache), changes one
service's timeout in the working tree, then times the incremental build through the cache and
without it (from the same output directory), a full build of the same tree into another
directory, and a rebuild of that unchanged tree; it checks the incremental output is
byte-identical to the full build's. Each build is a separate `meshc` process, as in CI; CPU is
user + system time of the process.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.generate import generate_mesh, service_key

# meshc from compiled bytecode, as installed (bench_check.py says why); the check cache in the
# scratch directory given to main()
ENVIRONMENT = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def _git(top: Path, *args: str) -> None:
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(top)}
    subprocess.run(["git", *args], cwd=top, env=env, check=True, capture_output=True)


def _timed(*args: str) -> tuple[float, float, str]:
    """Wall and CPU seconds of one meshc process, and what it said on stderr."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen([sys.executable, "-m", "compiler", *args], stdout=output, stderr=output,
                                   env=ENVIRONMENT)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - start
        output.seek(0)
        said = output.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"meshc {' '.join(args)} failed ({status}):\n{said}")
    return elapsed, usage.ru_utime + usage.ru_stime, said.strip()


def _linked_copy(source: Path, destination: Path) -> None:
    """A copy of an output directory made of hard links (a build replaces files, never edits them)."""
    shutil.rmtree(destination, ignore_errors=True)
    shutil.copytree(source, destination, copy_function=os.link)


def _same_tree(left: Path, right: Path) -> bool:
    def walk(directory: Path) -> set[str]:
        return {p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()}

    names = walk(left)
    if names != walk(right):
        return False
    _, mismatch, errors = filecmp.cmpfiles(left, right, sorted(names), shallow=False)
    return not mismatch and not errors


def main(count: int, work: Path) -> None:
    ENVIRONMENT["MESHC_CACHE_DIR"] = str(work / "cache")
    root = generate_mesh(work / "repo" / "mesh", count)
    top = root.parent
    _git(top, "init", "-q", "-b", "main")
    _git(top, "config", "user.name", "bench")
    _git(top, "config", "user.email", "bench@meshc.invalid")
    _git(top, "add", "-A")
    _git(top, "commit", "-q", "-m", "synthetic mesh")

    print(f"load average at start: {os.getloadavg()[0]:.1f} (2 cores)")
    full = _timed("build", str(root), "-q")
    checked = _timed("check", str(root))
    _linked_copy(root / "build", work / "built")
    namespace, name = service_key(count // 2)
    changed = root / "services" / namespace / f"{name}.yaml"
    changed.write_text(changed.read_text().replace("timeout: 10s", "timeout: 9s"))
    incremental = _timed("build", str(root), "--changed-since", "HEAD")
    _linked_copy(root / "build", work / "incremental")
    _linked_copy(work / "built", root / "build")
    uncached = _timed("build", str(root), "--changed-since", "HEAD", "--no-cache")
    again = _timed("build", str(root), "-q", "-o", str(work / "full"))
    unchanged = _timed("build", str(root), "-q", "-o", str(work / "full"))
    files = sum(1 for p in (root / "build").rglob("*") if p.is_file())
    identical = _same_tree(work / "incremental", work / "full") and _same_tree(root / "build", work / "full")

    print(f"services: {count}, output files: {files}")
    for label, (wall, cpu, _) in (("full build (clean tree)", full), ("meshc check (fills the cache)", checked),
                                  ("--changed-since HEAD, through the cache", incremental),
                                  ("--changed-since HEAD, --no-cache", uncached),
                                  ("full build (same change)", again), ("rebuild of that unchanged tree", unchanged)):
        print(f"{label + ':':42} {wall:7.2f} s wall {cpu:7.2f} s CPU")
    print(f"[{incremental[2].splitlines()[0]}]")
    print(f"incremental output equals full build: {identical}")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")
    if not identical:
        sys.exit(1)


if __name__ == "__main__":
    services = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    if len(sys.argv) > 2:
        main(services, Path(sys.argv[2]))
    else:
        with tempfile.TemporaryDirectory(prefix="meshc-bench-") as scratch:
            main(services, Path(scratch))
