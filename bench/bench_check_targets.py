"""What running every target in memory adds to an uncached `meshc check` (issue 13: a mesh that
checks clean builds, so check runs the targets and lays out the output tree without writing).

    python bench/bench_check_targets.py [--sizes 100,1000] [--runs 3]

Per mesh, in one fresh process each (imports done before the clock starts; building the models'
schemas at first validation counts), the CPU seconds (user + system, with the emit shard a
large build forks) of: load, link and analyse alone (what check did before it ran the
targets), the whole check (`compiler.build.check_mesh`, no cache), and a build into a fresh
directory. Each figure is the least of --runs; the ratio is taken within one run of this script.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from generate import generate_mesh  # noqa: E402

EXAMPLE = HERE.parent / "examples" / "bookinfo"

# Run in a child: the CPU time of one command over the mesh in argv[1] (and argv[2]: the output).
CHILD = """
import resource, sys
from pathlib import Path
from compiler.build import build_mesh, check_mesh, compile_mesh
root, what = Path(sys.argv[1]), sys.argv[2]
def spent():  # this process and the emit shard it may fork (compiler.shards)
    usages = map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return sum(usage.ru_utime + usage.ru_stime for usage in usages)
start = spent()
if what == "analyse":
    report = compile_mesh(root, skip_dirs=(root / "build",)).report
elif what == "check":
    report = check_mesh(root).report
else:
    report = build_mesh(root, Path(sys.argv[3])).compiled.report
seconds = spent() - start
assert not report.has_errors, report.sorted()[:3]
print(seconds, len(report.diagnostics))
"""


def cpu(root: Path, what: str, runs: int) -> tuple[float, int]:
    """Least CPU seconds of `what` over root in a fresh process, and the diagnostics it reported."""
    best, diagnostics = float("inf"), -1
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="meshc-bench-out-") as out:
            done = subprocess.run([sys.executable, "-c", CHILD, str(root), what, str(Path(out) / "build")],
                                  check=True, capture_output=True, text=True, cwd=HERE.parent)
        seconds, count = done.stdout.split()
        best, diagnostics = min(best, float(seconds)), int(count)
    return best, diagnostics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="meshc-bench-") as directory:
        meshes = [("examples/bookinfo", EXAMPLE)]
        for size in (int(s) for s in args.sizes.split(",")):
            meshes.append((f"{size:,} services", generate_mesh(Path(directory) / f"mesh-{size}", size)))
        for label, root in meshes:
            analyse, _ = cpu(root, "analyse", args.runs)
            check, checked = cpu(root, "check", args.runs)
            build, built = cpu(root, "build", args.runs)
            # check reports what the build reports (the targets' warnings included)
            assert checked == built, (label, checked, built)
            rows.append({"mesh": label, "analyse": analyse, "check": check, "build": build})
    print("| mesh | load, link, analyse | check (targets in memory) | ratio | build |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(f"| {row['mesh']} | {row['analyse']:.2f} s | {row['check']:.2f} s | "
              f"{row['check'] / row['analyse']:.2f}x | {row['build']:.2f} s |")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
