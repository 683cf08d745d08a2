"""The target registry: one module per backend, and the contract every target keeps.

Adding a target is adding its module and one entry here. Modules are imported only when a
build asks for them, so `meshc check` never pays for them. Artifact and the workload names
are the compiler's (compiler.artifact).

The contract. A target module has

    emit(graph: MeshGraph, report: Report, workloads: Container[str] | None = None) -> list[Artifact]

- `graph` is the linked, analysed mesh (compiler.graph.MeshGraph): immutable, every
  reference resolved, every default applied. A target reads nothing else: no files, no
  environment, no clock, so identical input gives byte-identical output.
- `report` takes the target's own diagnostics (MESH4xx), located at the intent field
  they are about; a target never raises for anything a user can write.
- `workloads` is the filter of an incremental build (`build --changed-since`): when it
  is given, emit exactly the artifacts whose workload is in it, byte-identical to what a
  full build (`workloads=None`) emits for them. Every artifact names the one workload
  that runs it: a service's sidecar, a gateway's proxy, or its platform for files shared
  by a platform (a file listing every service of a platform belongs to that platform).
- `sources` of an artifact are every intent file whose content it was compiled from,
  read directly or through a resolved value (a callee's Route, the Mesh's defaults).
  manifest.json records them, and an incremental build re-emits every workload with an
  artifact compiled from a file whose intents changed (compiler.affected). An intent that
  is new has no artifact naming it yet: what it reaches is what the graph says
  (compiler.affected.Reach: the workload it configures, the callers and gateways that send
  traffic to what it changes, their platforms). A target may depend on a new intent only
  along those edges. tests/test_incremental_targets.py
  builds every registered target, and one registered only by the test, incrementally and
  in full across the kinds of change, and requires the two to be byte-identical.
"""

from __future__ import annotations

import importlib
import sys
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


def release_shared(graph) -> None:
    """Drop what the targets share within a build of `graph` (the serialised sidecars of
    targets.envoylib): a build that emits shard by shard calls it between shards, so that its
    memory tracks one shard's artifacts, not the whole output."""
    bootstrap = sys.modules.get("targets.envoylib.bootstrap")
    if bootstrap is not None:
        bootstrap.release_sidecars(graph)
