"""The target registry: one module per backend, each with
`emit(graph, report, workloads=None) -> list[Artifact]` (only those workloads when given).
Artifact and the workload names are the compiler's (compiler.artifact).

Adding a target is adding its module and one entry here. Modules are imported only when a
build asks for them, so `meshc check` never pays for them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True)
class TargetInfo:
    name: str
    module: str
    summary: str


REGISTRY: dict[str, TargetInfo] = {
    info.name: info
    for info in sorted(
        [
            TargetInfo("cloudfoundry", "targets.cloudfoundry",
                       "Cloud Foundry app manifests, Envoy sidecars and network policies"),
            TargetInfo("envoy", "targets.envoy", "Static Envoy v3 bootstraps: one per service sidecar and per gateway"),
            TargetInfo("kubernetes", "targets.kubernetes",
                       "Istio and Gateway API resources per kubernetes platform, with a kustomization"),
            TargetInfo("vm", "targets.vm", "VM bundles: Envoy with systemd, or Istio workload files"),
        ],
        key=lambda info: info.name,
    )
}


def load(name: str) -> ModuleType:
    return importlib.import_module(REGISTRY[name].module)
