"""Per-proxy scoping: a sidecar's bootstrap grows with its calls, not with the mesh.

    python bench/bench_envoy_scoping.py [SIZE ...]        (default: 1000 10000)

For each synthetic mesh (bench/generate.py: every service calls three others) this compiles
the mesh, emits every sidecar bootstrap and reports their mean size, next to the size of one
full-mesh bootstrap: the same sidecar configured for every service of the mesh (every cluster
in every proxy), which is what a proxy without per-proxy scoping would carry.
"""

from __future__ import annotations

import dataclasses
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.generate import generate_mesh
from compiler.artifact import parse_workload
from compiler.build import compile_mesh
from compiler.diagnostics import Report
from targets import envoy, envoylib


def measure(count: int) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        root = generate_mesh(Path(scratch) / "mesh", count)
        started = time.perf_counter()
        compiled = compile_mesh(root)
        compile_seconds = time.perf_counter() - started
    graph = compiled.graph
    started = time.perf_counter()
    artifacts = [a for a in envoy.emit(graph, Report()) if parse_workload(a.workload).kind == "service"]
    emit_seconds = time.perf_counter() - started
    sizes = [len(a.content) for a in artifacts]
    sample = next(iter(graph.services.values()))
    everything = tuple(key for key in graph.services if key != sample.key)
    calling_everything = dataclasses.replace(sample, calls=everything)
    full_mesh = envoylib.serialise(envoylib.sidecar_bootstrap(graph, calling_everything, Report()))
    return {
        "services": count,
        "mean_bytes": statistics.fmean(sizes),
        "max_bytes": max(sizes),
        "full_mesh_bytes": len(full_mesh),
        "compile_seconds": compile_seconds,
        "emit_seconds": emit_seconds,
    }


def main(sizes: list[int]) -> None:
    gc.disable()  # as every meshc command runs (compiler/cli.py, paused_gc)
    print("| services | mean sidecar bootstrap | largest sidecar | full-mesh bootstrap | full / mean | "
          "compile | envoy emit |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for count in sizes:
        row = measure(count)
        print(f"| {row['services']:,} | {row['mean_bytes'] / 1024:,.1f} KiB | {row['max_bytes'] / 1024:,.1f} KiB "
              f"| {row['full_mesh_bytes'] / 1024:,.0f} KiB | {row['full_mesh_bytes'] / row['mean_bytes']:,.0f}x "
              f"| {row['compile_seconds']:.1f} s | {row['emit_seconds']:.1f} s |", flush=True)


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]] or [1000, 10000])
