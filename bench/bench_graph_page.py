"""Times `meshc graph --format html` on synthetic meshes and the page itself in headless Chromium:
how long meshc takes to write it, how large it is, and how long the browser takes from
navigation to a drawn, laid-out graph (the page's own timings: JSON parse, setup, layout).

    python bench/bench_graph_page.py [--sizes 100,1000] [--runs 3]

Needs Debian's chromium and Playwright (the test extra).
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

from playwright.sync_api import sync_playwright

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from generate import generate_mesh  # noqa: E402


def write_page(root: Path, out: Path) -> float:
    start = time.perf_counter()
    with out.open("wb") as sink:
        subprocess.run([sys.executable, "-m", "compiler", "graph", str(root), "--format", "html"],
                       check=True, stdout=sink, cwd=HERE.parent)
    return time.perf_counter() - start


def open_page(browser, page_file: Path) -> dict:
    page = browser.new_page(viewport={"width": 1400, "height": 850})
    start = time.perf_counter()
    page.goto(page_file.as_uri())
    page.wait_for_selector("body[data-ready=true]", timeout=300_000)
    ready = time.perf_counter() - start
    timings = page.evaluate("window.meshcGraph.timings")
    page.close()
    return {"ready": ready, **{k: v / 1000 for k, v in timings.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="meshc-bench-page-"))
    print("| services | meshc writes the page | page size | browser: ready | of which layout |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        for size in (int(s) for s in args.sizes.split(",")):
            root = generate_mesh(work / f"mesh-{size}", size)
            page_file = work / f"mesh-{size}.html"
            writes = statistics.median(write_page(root, page_file) for _ in range(args.runs))
            opened = [open_page(browser, page_file) for _ in range(args.runs)]
            ready = statistics.median(o["ready"] for o in opened)
            layout = statistics.median(o["layout"] for o in opened)
            megabytes = page_file.stat().st_size / 1e6
            print(f"| {size:,} | {writes:.2f} s | {megabytes:.1f} MB | {ready:.2f} s | {layout:.2f} s |")
        browser.close()
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
