"""Synthetic mesh repos for benchmarks: N services, each calling three others, valid v1 intents.

    python bench/generate.py 1000 /tmp/mesh-1000

Services are spread over a kubernetes, a cloudfoundry and a vm platform and over ten
namespaces; every third service has versions and a canary Route, every service an
AccessPolicy admitting exactly its callers. Output is deterministic for a given N.
"""

from __future__ import annotations

import sys
from pathlib import Path

NAMESPACES = 10
CALLS_PER_SERVICE = 3

MESH = """\
apiVersion: meshc/v1
kind: Mesh
name: synthetic-{count}
defaultNamespace: ns0
defaults:
  timeout: 15s
  retries: {{attempts: 2, perTryTimeout: 5s, retryOn: [5xx, reset]}}
platforms:
  - {{name: k8s, kind: kubernetes}}
  - {{name: cf, kind: cloudfoundry, appsDomain: apps.example.com}}
  - {{name: vms, kind: vm, flavor: static}}
"""


def service_key(index: int) -> tuple[str, str]:
    return f"ns{index % NAMESPACES}", f"svc-{index:05d}"


def callees(index: int, count: int) -> list[int]:
    """Three distinct other services, spread over the mesh."""
    if count <= CALLS_PER_SERVICE:
        return [i for i in range(count) if i != index]
    picked: list[int] = []
    step = 1
    while len(picked) < CALLS_PER_SERVICE:
        candidate = (index * 7 + step * 13) % count
        if candidate != index and candidate not in picked:
            picked.append(candidate)
        step += 1
    return picked


def service_documents(index: int, count: int, callers: list[int]) -> str:
    namespace, name = service_key(index)
    platform = ("k8s", "cf", "vms")[index % 3]
    calls = [f"{service_key(c)[0]}/{service_key(c)[1]}" for c in callees(index, count)]
    canary = index % 3 == 0 and platform != "cf"
    lines = [
        "apiVersion: meshc/v1",
        "kind: Service",
        f"name: {name}",
        f"namespace: {namespace}",
        f"platform: {platform}",
        f"owner: team-{index % 50}",
        "ports:",
        "  - {name: http, port: 8080, protocol: http}",
    ]
    if canary:
        lines += ["versions:", "  v1: {labels: {version: v1}}", "  v2: {labels: {version: v2}}"]
    if platform == "vms":
        address = f"10.{(index >> 16) & 255}.{(index >> 8) & 255}.{index & 255}"
        lines += ["endpoints:", f"  - {{address: {address}{', version: v1' if canary else ''}}}"]
    lines += ["calls:"] + [f"  - {c}" for c in calls]
    lines += ["resilience:", "  timeout: 10s", "  circuitBreaker: {maxConnections: 100}"]
    documents = ["\n".join(lines) + "\n"]
    if canary:
        documents.append(
            "apiVersion: meshc/v1\nkind: Route\n"
            f"name: {name}\nnamespace: {namespace}\nservice: {name}\n"
            "rules:\n"
            "  - match: [{headers: {x-canary: {exact: 'true'}}}]\n"
            "    to: [{version: v2}]\n"
            "  - to: [{version: v1, weight: 90}, {version: v2, weight: 10}]\n"
        )
    if callers:
        sources = ", ".join(f"{service_key(c)[0]}/{service_key(c)[1]}" for c in sorted(callers))
        documents.append(
            "apiVersion: meshc/v1\nkind: AccessPolicy\n"
            f"name: {name}-callers\nnamespace: {namespace}\nservice: {name}\n"
            f"allow:\n  - from: [{sources}]\n"
        )
    return "---\n".join(documents)


def generate_mesh(root: Path, count: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "mesh.yaml").write_text(MESH.format(count=count), encoding="utf-8")
    callers: dict[int, list[int]] = {i: [] for i in range(count)}
    for index in range(count):
        for callee in callees(index, count):
            callers[callee].append(index)
    for index in range(count):
        namespace, name = service_key(index)
        path = root / "services" / namespace / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(service_documents(index, count, callers[index]), encoding="utf-8")
    return root


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    generate_mesh(Path(sys.argv[2]), int(sys.argv[1]))
