"""Times `meshc check` (wall, interpreter start included) on the example and on synthetic meshes
of 100, 1,000 and 10,000 services, next to what libyaml alone takes to parse the same files.

    python bench/bench_check.py [--sizes 100,1000,10000] [--runs 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from generate import generate_mesh  # noqa: E402

EXAMPLE = HERE.parent / "examples" / "bookinfo"


def wall(command: list[str], runs: int) -> float:
    """Median wall time of a command, in seconds."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def libyaml_parse(root: Path) -> tuple[float, int]:
    """Seconds for yaml.CSafeLoader to load every intent file, and their total bytes."""
    files = sorted(root.rglob("*.yaml"))
    size = sum(f.stat().st_size for f in files)
    start = time.perf_counter()
    for path in files:
        list(yaml.load_all(path.read_bytes(), Loader=yaml.CSafeLoader))
    return time.perf_counter() - start, size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    meshc = [sys.executable, "-m", "compiler", "check"]
    print(f"example mesh (examples/bookinfo): meshc check {wall([*meshc, str(EXAMPLE)], args.runs * 2):.3f} s")
    print(f"python -c pass: {wall([sys.executable, '-c', 'pass'], args.runs * 2):.3f} s")
    print("| services | intent MB | libyaml parse s | meshc check s (wall) | ratio |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for size in (int(s) for s in args.sizes.split(",")):
        root = Path(tempfile.mkdtemp(prefix=f"meshc-bench-{size}-"))
        try:
            generate_mesh(root, size)
            parse, total = libyaml_parse(root)
            check = wall([*meshc, str(root)], 1 if size >= 10_000 else args.runs)
            print(f"| {size:,} | {total / 1e6:.1f} | {parse:.2f} | {check:.2f} | {check / parse:.1f}x |")
        finally:
            shutil.rmtree(root)


if __name__ == "__main__":
    main()
