"""Helpers of the semantics tests: meshes written from documents, linked, and requests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from compiler.build import compile_mesh
from compiler.graph import Key, MeshGraph
from compiler.serialize import to_yaml

API = "meshc/v1"
NS = "shop"


def mesh(*platforms: dict, **fields: Any) -> dict:
    return {"apiVersion": API, "kind": "Mesh", "name": "semantics", "defaultNamespace": NS,
            "authorization": "allow", "platforms": list(platforms) or [{"name": "vms", "kind": "vm"}], **fields}


def service(name: str, *, ports: list[dict] | None = None, calls: list[str] = (), versions: tuple[str, ...] = (),
            platform: str = "vms", **fields: Any) -> dict:
    document = {"apiVersion": API, "kind": "Service", "name": name, "platform": platform,
                "ports": ports or [{"name": "http", "port": 8080, "protocol": "http"}], "calls": list(calls),
                **fields}
    if versions:
        document["versions"] = {v: {"labels": {"version": v}} for v in versions}
    if platform == "vms":
        document.setdefault("endpoints", [{"address": f"10.0.0.{i + 1}", **({"version": v} if v else {})}
                                          for i, v in enumerate(versions or (None,))])
    return document


def route(name: str, rules: list[dict], **target: Any) -> dict:
    return {"apiVersion": API, "kind": "Route", "name": name, "rules": rules, **target}


def gateway(name: str, listeners: list[dict], platform: str = "vms") -> dict:
    return {"apiVersion": API, "kind": "Gateway", "name": name, "platform": platform, "listeners": listeners}


def write(root: Path, documents: list[dict]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for index, document in enumerate(documents):
        name = "mesh.yaml" if document["kind"] == "Mesh" else f"{index:02d}-{document['kind'].lower()}.yaml"
        (root / name).write_bytes(to_yaml(document))
    return root


def linked(root: Path, documents: list[dict], allowed: tuple[str, ...] = ()) -> MeshGraph:
    """The graph of a mesh that compiles without errors (and without warnings outside `allowed`)."""
    compiled = compile_mesh(write(root, documents))
    problems = [f"{d.code} {d.location}: {d.message}" for d in compiled.report.sorted()
                if d.severity != "info" and d.code.code not in allowed]
    assert compiled.graph is not None and not problems, problems
    return compiled.graph


def key(name: str) -> Key:
    return Key(NS, name)
