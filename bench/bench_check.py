"""Times `meshc check` (wall, interpreter start included) on the example and on synthetic meshes
of 100, 1,000 and 10,000 services, next to what libyaml alone takes to parse the same files,
without the check cache and through it (compiler.cache): a first run into an empty cache, a run
with nothing changed, and a run after one service file changed.

    python bench/bench_check.py [--sizes 100,1000,10000] [--runs 5]

Each figure is the minimum of --runs (the machine is shared: the minimum is the least disturbed
run); ratios are taken within one run of this script.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from generate import generate_mesh, service_key  # noqa: E402

EXAMPLE = HERE.parent / "examples" / "bookinfo"
MESHC = [sys.executable, "-m", "compiler", "check"]


# meshc runs from compiled bytecode, as a pip-installed meshc does (pip writes the .pyc files):
# an environment that turns bytecode caching off would add compiling every module of meshc to
# every run (about 0.2 s of CPU), which `python -c pass` does not pay.
ENVIRONMENT = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def timed(command: list[str], runs: int, cache: Path | None = None, before=None) -> tuple[float, float]:
    """Least wall time and least CPU time (user + system) of a command, in seconds; `before`
    runs (untimed) before each run."""
    environment = {**ENVIRONMENT, "MESHC_CACHE_DIR": str(cache)} if cache else ENVIRONMENT
    walls, cpus = [], []
    for _ in range(runs):
        if before is not None:
            before()
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, env=environment, cwd=HERE.parent)
        _, status, usage = os.wait4(process.pid, 0)
        walls.append(time.perf_counter() - start)
        cpus.append(usage.ru_utime + usage.ru_stime)
        if os.waitstatus_to_exitcode(status) not in (0, 1):
            sys.exit(f"{' '.join(command)} failed ({status})")
    return min(walls), min(cpus)


def libyaml_parse(root: Path) -> tuple[tuple[float, float], int]:
    """Wall and CPU seconds for yaml.CSafeLoader to load every intent file, and their total bytes."""
    files = sorted(root.rglob("*.yaml"))
    size = sum(f.stat().st_size for f in files)
    start, cpu = time.perf_counter(), time.process_time()
    for path in files:
        list(yaml.load_all(path.read_bytes(), Loader=yaml.CSafeLoader))
    return (time.perf_counter() - start, time.process_time() - cpu), size


def _shown(seconds: tuple[float, float]) -> str:
    return f"{seconds[0]:.2f} ({seconds[1]:.2f})"


def cached_runs(root: Path, runs: int, touched: Path) -> tuple[tuple[tuple[float, float], ...], str]:
    """A check into an empty cache, one with nothing changed, one after `touched` changed
    (wall and CPU seconds of each), and where the time of one more such check went (--timings)."""
    cache = Path(tempfile.mkdtemp(prefix="meshc-bench-cache-"))
    try:
        first = timed([*MESHC, str(root)], runs, cache, before=lambda: shutil.rmtree(cache, ignore_errors=True))
        unchanged = timed([*MESHC, str(root)], runs, cache)
        edits = iter(range(1, 1_000_000))

        def edit() -> None:
            touched.write_text(_retimed(touched.read_text(), next(edits)))

        changed = timed([*MESHC, str(root)], runs, cache, before=edit)
        edit()
        stages = subprocess.run([*MESHC, "--timings", str(root)], capture_output=True, text=True, cwd=HERE.parent,
                                env={**ENVIRONMENT, "MESHC_CACHE_DIR": str(cache)}).stderr
        return (first, unchanged, changed), stages[stages.find("meshc: timings"):]
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def _retimed(text: str, seconds: int) -> str:
    """The service's own timeout set to a new value: one file changed, the mesh still valid."""
    head, _, tail = text.partition("  timeout: ")
    return f"{head}  timeout: {seconds % 50 + 1}s\n{tail.partition(chr(10))[2]}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.1f} (2 cores)")
    timed([*MESHC, "--no-cache", str(EXAMPLE)], 1)  # writes the bytecode of what check imports
    python = timed([sys.executable, "-c", "pass"], args.runs * 2)
    uncached = timed([*MESHC, "--no-cache", str(EXAMPLE)], args.runs * 2)
    cache = Path(tempfile.mkdtemp(prefix="meshc-bench-cache-"))
    try:
        timed([*MESHC, str(EXAMPLE)], 1, cache)
        warm = timed([*MESHC, str(EXAMPLE)], args.runs * 2, cache)
    finally:
        shutil.rmtree(cache)
    print(f"python -c pass: {python[0]:.3f} s ({python[1]:.3f} s CPU)")
    for label, (seconds, cpu) in (("meshc check --no-cache", uncached), ("through the cache, unchanged", warm)):
        print(f"examples/bookinfo, {label}: {seconds:.3f} s ({seconds / python[0]:.1f}x python), "
              f"{cpu:.3f} s CPU ({cpu / python[1]:.1f}x python)")
    print("| services | intent MB | libyaml parse s (CPU s) | check --no-cache s (CPU s) | ratio (CPU) "
          "| first run s (CPU s) | unchanged s (CPU s) | one file changed s (CPU s) |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for size in (int(s) for s in args.sizes.split(",")):
        root = Path(tempfile.mkdtemp(prefix=f"meshc-bench-{size}-"))
        try:
            generate_mesh(root, size)
            namespace, name = service_key(size // 2)
            runs = 1 if size >= 10_000 else args.runs
            parse, total = libyaml_parse(root)
            check = timed([*MESHC, "--no-cache", str(root)], runs)
            (first, unchanged, changed), stages = cached_runs(root, runs,
                                                              root / "services" / namespace / f"{name}.yaml")
            print(f"| {size:,} | {total / 1e6:.1f} | {_shown(parse)} | {_shown(check)} | "
                  f"{check[0] / parse[0]:.1f}x ({check[1] / parse[1]:.1f}x) | "
                  f"{_shown(first)} | {_shown(unchanged)} | {_shown(changed)} |")
            print(f"one more file changed, {size:,} services, wall time by stage:\n{stages}")
        finally:
            shutil.rmtree(root)
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
