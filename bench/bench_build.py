"""Full builds against the floor: `meshc build` (every target, one process with interpreter
start) next to what the same work costs at the floor: libyaml parsing the same intent files
plus orjson writing the same number of files and bytes.

    python bench/bench_build.py [--sizes 1000,10000] [--runs 3]

Per mesh size and run, in this order: a build into a fresh directory (a full build emits and
writes shard by shard in one process, compiler.build._build_streamed), a rebuild of the same
intents into the tree that build wrote (unchanged files are linked, not written; the old tree
is removed after the swap), and the floor. Prints the best of --runs of each (the machine is
shared: the minimum is the least disturbed run), the ratio build/floor measured in the same
run, in wall time and in CPU time (user + system of the build and the processes it waited
for), the peak RSS of the build and the wall and CPU time per service. meshc runs from
compiled bytecode, as an installed meshc does (bench_check.ENVIRONMENT).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_check import ENVIRONMENT  # noqa: E402
from generate import generate_mesh  # noqa: E402


def build(root: Path, out: Path, *, fresh: bool = True) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds and peak RSS (KiB) of one `meshc build` process."""
    if fresh:
        shutil.rmtree(out, ignore_errors=True)
    env = {key: value for key, value in ENVIRONMENT.items() if key != "MESHC_JOBS"}
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "compiler", "build", str(root), "-o", str(out), "-q"],
                               cwd=HERE.parent, stdout=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        sys.exit(f"meshc build {root} failed ({process.returncode})")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def floor(root: Path, out: Path, artifacts: list[tuple[str, int]]) -> tuple[float, float]:
    """libyaml parsing every intent file, then orjson writing files of the build's paths and sizes."""
    payloads = [(path, ["x" * max(size - 5, 0)]) for path, size in artifacts]  # ["..."] + newline
    shutil.rmtree(out, ignore_errors=True)
    start, cpu = time.perf_counter(), time.process_time()
    for path in sorted(root.rglob("*.yaml")):
        list(yaml.load_all(path.read_bytes(), Loader=yaml.CSafeLoader))
    made: set[str] = set()
    for path, payload in payloads:
        directory = os.path.dirname(path)
        if directory not in made:
            os.makedirs(out / directory, exist_ok=True)
            made.add(directory)
        descriptor = os.open(out / path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(descriptor, orjson.dumps(payload) + b"\n")
        finally:
            os.close(descriptor)
    return time.perf_counter() - start, time.process_time() - cpu


def _shown(seconds: tuple[float, float]) -> str:
    return f"{seconds[0]:.2f} ({seconds[1]:.2f})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.1f} (2 cores)")
    print("| services | files | output MB | floor s (CPU s) | build s (CPU s) "
          "| rebuild unchanged s (CPU s) | ratio wall | ratio CPU | peak RSS MB | ms per service (CPU) |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory(prefix="meshc-bench-warm-") as warm:  # writes the bytecode a build imports
        subprocess.run([sys.executable, "-m", "compiler", "build", str(HERE.parent / "examples" / "bookinfo"),
                        "-o", str(Path(warm) / "out"), "-q"], env=ENVIRONMENT, check=True, cwd=HERE.parent)
    for size in (int(s) for s in args.sizes.split(",")):
        work = Path(tempfile.mkdtemp(prefix=f"meshc-bench-build-{size}-"))
        try:
            root = generate_mesh(work / "mesh", size)
            times: dict[str, list[tuple[float, float]]] = {"build": [], "rebuild": [], "floor": []}
            peaks = []
            for _ in range(args.runs):
                elapsed, cpu, peak = build(root, work / "out")
                times["build"].append((elapsed, cpu))
                peaks.append(peak)
                elapsed, cpu, _ = build(root, work / "out", fresh=False)
                times["rebuild"].append((elapsed, cpu))
                manifest = json.loads((work / "out" / "manifest.json").read_bytes())
                artifacts = [(entry["path"], (work / "out" / entry["path"]).stat().st_size)
                             for entry in manifest["artifacts"]]
                artifacts.append(("manifest.json", (work / "out" / "manifest.json").stat().st_size))
                times["floor"].append(floor(root, work / "floor", artifacts))
            total = sum(size for _, size in artifacts)
            best = {kind: (min(w for w, _ in runs), min(c for _, c in runs)) for kind, runs in times.items()}
            (wall, cpu), (floor_wall, floor_cpu) = best["build"], best["floor"]
            print(f"| {size:,} | {len(artifacts):,} | {total / 1e6:.0f} | {_shown(best['floor'])} | "
                  f"{_shown(best['build'])} | {_shown(best['rebuild'])} | "
                  f"{wall / floor_wall:.1f}x | {cpu / floor_cpu:.1f}x | "
                  f"{max(peaks) / 1024:.0f} | {wall / size * 1000:.2f} ({cpu / size * 1000:.2f}) |")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
