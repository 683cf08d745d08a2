"""The target registry: one module per backend, each with
`emit(graph, report, workloads=None) -> list[Artifact]` (only those workloads when given).

Adding a target is adding its module and one entry here. Modules are imported only when a
build asks for them, so `meshc check` never pays for them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True)
class Artifact:
    path: str  # posix path relative to the output directory
    content: bytes
    target: str
    workload: str  # what runs it: "service:ns/name", "gateway:ns/name" or "platform:name"
    sources: tuple[str, ...]  # intent files it was compiled from, sorted


@dataclass(frozen=True)
class TargetInfo:
    name: str
    module: str
    summary: str


REGISTRY: dict[str, TargetInfo] = {
    info.name: info
    for info in sorted(
        [
        ],
        key=lambda info: info.name,
    )
}


def load(name: str) -> ModuleType:
    return importlib.import_module(REGISTRY[name].module)
