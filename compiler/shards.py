"""Emitting in shards of workloads: on both cores, and shard by shard.

On both cores (emit_in_two; `meshc check` and `build --check`, which hold every artifact in
memory): the workloads are split in two shards, and a process forked after the graph is built
(copy-on-write: nothing is loaded or linked twice) emits one of them while this process emits
the other. Shard by shard (stream_shards; a full `meshc build`): one process emits a shard of
at most STREAM_PROXIES proxies, writes it and releases it before the next, so the build's
memory tracks one shard (docs/performance.md says why the build does not also fork).

A shard is a set of workloads by hash of the workload name, so it needs no list of the
workloads a target will name: every workload falls in exactly one shard. The targets'
contract (targets/__init__.py) makes the artifacts of a subset of the workloads byte-identical
to those a full emission gives for them, so the two shards together are exactly the serial
output; diagnostics are the same too, each reported by the shard that met it (a diagnostic
both shards meet is one, as Report.sorted keeps each distinct diagnostic once).
tests/test_parallel_emit.py compares both paths on every example and fixture mesh.

The forked process streams its artifacts back through a pipe, one pickle each, so neither
process holds a second copy of them. If it fails in any way (killed, out of memory, an
exception), this process emits its shard itself, and a real error in a target is raised
here as in a serial build.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import zlib
from collections.abc import Callable, Container
from typing import TYPE_CHECKING

from compiler.diagnostics import Report

if TYPE_CHECKING:
    from compiler.artifact import Artifact

# Below this many services and gateways, forking costs more than it saves.
MIN_PROXIES = 200
JOBS_ENVIRONMENT = "MESHC_JOBS"  # 1: emit in this process only

EmitShard = Callable[[Report, Container[str] | None], list[tuple[str, list["Artifact"]]]]


class WorkloadShard(Container[str]):
    """The workloads whose name hashes to `index` of `count` (crc32: the same in every process)."""

    def __init__(self, index: int, count: int) -> None:
        self.index = index
        self.count = count

    def __contains__(self, workload: object) -> bool:
        return isinstance(workload, str) and zlib.crc32(workload.encode()) % self.count == self.index


# A full build emits and writes the artifacts of this many proxies at a time (about 45 MB of
# output at 2,000 services): more shards, less memory, more passes of each target over the graph.
STREAM_PROXIES = 2_000


def stream_shards(proxies: int) -> int:
    """How many workload shards a full build emits one after the other."""
    return max(1, -(-proxies // STREAM_PROXIES))


def wanted_jobs(proxies: int) -> int:
    """Processes to emit with: 2 on a machine with two cores or more and a mesh large enough,
    unless MESHC_JOBS=1."""
    if os.environ.get(JOBS_ENVIRONMENT, "").strip() == "1" or not hasattr(os, "fork"):
        return 1
    return 2 if proxies >= MIN_PROXIES and (os.cpu_count() or 1) >= 2 else 1


def emit_in_two(emit_shard: EmitShard, report: Report) -> list[tuple[str, list[Artifact]]]:
    """emit_shard(report, shard) for both shards, the second in a forked process; the
    per-target lists of the two, merged in the order emit_shard gives them."""
    mine, theirs = WorkloadShard(0, 2), WorkloadShard(1, 2)
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked process (its coverage is not collected)
        os.close(read_end)
        _emit_and_send(emit_shard, theirs, write_end)
    os.close(write_end)
    try:
        own = emit_shard(report, mine)
        sent = _receive(read_end)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
        raise
    finally:
        os.close(read_end)
        _, status = os.waitpid(child, 0)
    if sent is None or status != 0:
        received = emit_shard(report, theirs)
    else:
        records, received = sent
        report.add_records(records)
    by_target = {name: list(artifacts) for name, artifacts in own}
    for name, artifacts in received:
        by_target.setdefault(name, []).extend(artifacts)
    return list(by_target.items())


def _emit_and_send(emit_shard: EmitShard, shard: WorkloadShard, write_end: int) -> None:  # pragma: no cover
    """In the forked process: emit the shard and stream it back; never returns."""
    code = 1
    try:
        report = Report()
        emitted = emit_shard(report, shard)
        with os.fdopen(write_end, "wb", buffering=1024 * 1024) as stream:
            pickle.dump(report.records(), stream, protocol=pickle.HIGHEST_PROTOCOL)
            for name, artifacts in emitted:
                pickle.dump((name, len(artifacts)), stream, protocol=pickle.HIGHEST_PROTOCOL)
                for artifact in artifacts:
                    pickle.dump(artifact, stream, protocol=pickle.HIGHEST_PROTOCOL)
            pickle.dump(None, stream, protocol=pickle.HIGHEST_PROTOCOL)
        code = 0
    finally:
        os._exit(code)  # no atexit handlers, no second flush of the parent's buffers


def _receive(read_end: int) -> tuple[list[tuple], list[tuple[str, list[Artifact]]]] | None:
    """The diagnostic records and per-target artifacts the forked process sent, or None if it
    did not finish sending."""
    received: list[tuple[str, list[Artifact]]] = []
    with os.fdopen(read_end, "rb", buffering=1024 * 1024, closefd=False) as stream:
        try:
            records = pickle.load(stream)
            while (header := pickle.load(stream)) is not None:
                name, count = header
                received.append((name, [pickle.load(stream) for _ in range(count)]))
        except (EOFError, pickle.UnpicklingError):
            return None
    return records, received
