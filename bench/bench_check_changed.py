"""`meshc check` of the 10,000-service mesh with one file changed since the last run, for two
checkouts of meshc in alternation (a before and an after), so that both see the same load.

    python bench/bench_check_changed.py BEFORE_REPO AFTER_REPO [--services 10000] [--runs 3]

Each checkout checks its own copy of the synthetic mesh (bench/generate.py) with its own check
cache, filled by a first check; then, in each round, one service file's own timeout changes in
both copies and each checkout checks again. Prints wall and CPU (user + system of the process
and the processes it waited for) of every run and the least CPU of each checkout.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate_mesh, service_key

# meshc from compiled bytecode, as installed (bench_check.py says why)
ENVIRONMENT = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def _check(repo: Path, root: Path, cache: Path) -> tuple[float, float]:
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "compiler", "check", str(root)], cwd=repo,
                               stdout=subprocess.DEVNULL, env={**ENVIRONMENT, "MESHC_CACHE_DIR": str(cache)})
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        sys.exit(f"meshc check in {repo} failed ({status})")
    return time.perf_counter() - start, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("repos", nargs=2, type=Path)
    parser.add_argument("--services", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.1f} (2 cores)")
    with tempfile.TemporaryDirectory(prefix="meshc-bench-changed-") as scratch:
        copies = []
        for index, repo in enumerate(args.repos):
            root = generate_mesh(Path(scratch) / f"mesh-{index}", args.services)
            cache = Path(scratch) / f"cache-{index}"
            _check(repo, root, cache)  # fills the cache
            namespace, name = service_key(args.services // 2)
            copies.append((repo, root, cache, root / "services" / namespace / f"{name}.yaml", []))
        for round_ in range(args.runs):
            for repo, root, cache, touched, runs in copies:
                head, _, tail = touched.read_text().partition("  timeout: ")
                touched.write_text(f"{head}  timeout: {round_ + 20}s\n{tail.partition(chr(10))[2]}")
                runs.append(_check(repo, root, cache))
        for repo, _, _, _, runs in copies:
            shown = ", ".join(f"{wall:.2f} s wall ({cpu:.2f} s CPU)" for wall, cpu in runs)
            print(f"{repo}: {shown}; least CPU {min(cpu for _, cpu in runs):.2f} s")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
