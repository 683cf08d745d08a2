"""What a target emits (an Artifact) and the workload that runs it.

A workload names what runs an artifact, so that an incremental build and `meshc diff` can
tell which files one intent change reaches:

  service:<namespace>/<name>   a service's sidecar (or the objects that configure it)
  gateway:<namespace>/<name>   an ingress gateway's proxy
  platform:<name>              files shared by a whole platform (manifests, kustomizations)

The strings are built and read only here; the writer records them in manifest.json.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple, cast

from compiler.graph import Key

# Objects that carry metadata (Kubernetes objects, Cloud Foundry apps) name the intent files
# they were compiled from, comma-separated, under this annotation.
SOURCE_ANNOTATION = "meshc.dev/source"

WorkloadKind = Literal["service", "gateway", "platform"]
PROXY_KINDS: tuple[WorkloadKind, ...] = ("service", "gateway")


@dataclass(frozen=True)
class Artifact:
    path: str  # posix path relative to the output directory
    content: bytes
    target: str
    workload: str  # what runs it: see the module docstring and service_workload() and friends
    sources: tuple[str, ...]  # intent files it was compiled from, sorted
    patches: tuple[str, ...] = ()  # the Patches (namespace/name) that edited it, sorted (compiler.patches)


class Workload(NamedTuple):
    """A parsed workload: its kind, and `namespace/name` (a platform: just its name)."""

    kind: WorkloadKind
    name: str


def service_workload(key: Key) -> str:
    return f"service:{key}"


def gateway_workload(key: Key) -> str:
    return f"gateway:{key}"


def platform_workload(name: str) -> str:
    return f"platform:{name}"


def parse_workload(text: str) -> Workload:
    """The inverse of the three constructors; ValueError for anything they cannot build."""
    kind, sep, name = text.partition(":")
    if not sep or not name:
        raise ValueError(f"{text!r} is not a workload (kind:name)")
    if kind in PROXY_KINDS:
        namespace, slash, local = name.partition("/")
        if not slash or not namespace or not local or "/" in local:
            raise ValueError(f"{text!r} names no namespace/name")
    elif kind != "platform" or "/" in name:
        raise ValueError(f"{text!r} is not a service, gateway or platform workload")
    return Workload(cast(WorkloadKind, kind), name)


def is_proxy(workload: str) -> bool:
    """Sidecars and gateway proxies, as opposed to platform-wide files."""
    return parse_workload(workload).kind in PROXY_KINDS
