"""Emitting every target in one process or on both cores (compiler.shards), side by side.

    python bench/bench_emit_jobs.py [--sizes 1000,10000] [--runs 3]

`meshc check` (and `build --check`) emit every target of a large mesh in two processes, a
forked one sending its artifacts back (compiler.build.emit). Per mesh, the graph is built once
in this process (garbage collector off, as in the CLI); then `emit` runs with jobs=1 and
jobs=2 alternately, --runs times each, so both see the same load. Prints the least wall and
CPU seconds (this process and the forked one) of each, their ratio, and the load average.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from generate import generate_mesh  # noqa: E402

from compiler.build import compile_mesh, emit  # noqa: E402
from targets import release_shared  # noqa: E402


def _spent() -> float:
    usages = map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return sum(usage.ru_utime + usage.ru_stime for usage in usages)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    gc.disable()
    print(f"load average at start: {os.getloadavg()[0]:.1f} (2 cores)")
    print("| services | one process s (CPU s) | both cores s (CPU s) | both / one, wall | both / one, CPU |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix=f"meshc-bench-emit-{size}-") as work:
            compiled = compile_mesh(generate_mesh(Path(work) / "mesh", size))
            assert compiled.graph is not None and not compiled.report.has_errors
            best = {1: (float("inf"), float("inf")), 2: (float("inf"), float("inf"))}
            for _ in range(args.runs):
                for jobs in (1, 2):
                    start, cpu = time.perf_counter(), _spent()
                    artifacts = emit(compiled.graph, compiled.report, jobs=jobs)
                    elapsed, spent = time.perf_counter() - start, _spent() - cpu
                    del artifacts
                    release_shared(compiled.graph)  # each run builds the sidecars again
                    best[jobs] = (min(best[jobs][0], elapsed), min(best[jobs][1], spent))
            (one, one_cpu), (two, two_cpu) = best[1], best[2]
            print(f"| {size:,} | {one:.2f} ({one_cpu:.2f}) | {two:.2f} ({two_cpu:.2f}) | "
                  f"{two / one:.2f}x | {two_cpu / one_cpu:.2f}x |")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
