"""Helpers of the semantics tests: meshes written from documents, linked, and requests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from compiler.build import compile_mesh, emit
from compiler.diagnostics import Report
from compiler.graph import Key, MeshGraph
from compiler.serialize import to_yaml
from tests.k8s_schemas import validation_errors

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


def kubernetes_route(root: Path, flavor: str, rules: list[dict],
                     allowed: tuple[str, ...] = ()) -> tuple[MeshGraph, dict, Report]:
    """Route `api` (versions v1 v2 v3, called by web) on a kubernetes platform of `flavor`: the
    graph, the spec of its VirtualService (istio) or HTTPRoute (gateway-api), checked against the
    CRD, and what emitting reported."""
    graph = linked(root, [mesh({"name": "k8s", "kind": "kubernetes", "flavor": flavor}),
                          service("web", calls=["api"], platform="k8s"),
                          service("api", versions=("v1", "v2", "v3"), platform="k8s"),
                          route("api", rules, service="api")], allowed=("MESH301", *allowed))
    report = Report()
    documents = [doc for artifact in emit(graph, report, ["kubernetes"]) if artifact.path.endswith(".yaml")
                 for doc in yaml.safe_load_all(artifact.content) if doc and "metadata" in doc]
    kind = "VirtualService" if flavor == "istio" else "HTTPRoute"
    [translated] = [d for d in documents if d["kind"] == kind and d["metadata"]["name"] == "api"]
    assert validation_errors(translated) == []
    return graph, translated["spec"], report


def rules_reported(graph: MeshGraph, report: Report, route_key: Key, prefix: str | tuple[str, ...]) -> set[int | None]:
    """The rules of Route `route_key` that a diagnostic whose code starts with `prefix` points
    into, at its location or a related one: their indexes, and None when one points into the
    Route but at no rule (it is about the whole Route). A property test excuses a target's
    disagreement with the evaluator only when the rule that decided was reported."""
    route = graph.routes[route_key]
    starts = [graph.sources.locate(route.origin, "rules", index).line for index in range(len(route.rules))]
    found: set[int | None] = set()
    for diagnostic in report.diagnostics:
        if not diagnostic.code.code.startswith(prefix):
            continue
        for location in (diagnostic.location, *(related.location for related in diagnostic.related)):
            if location is None or location.file != route.origin.file:
                continue
            inside = [index for index, line in enumerate(starts) if line <= location.line]
            found.add(inside[-1] if inside else None)
    return found


def excused(reported: set[int | None], *deciding: int | None) -> bool:
    """Whether a disagreement on a request is explained: a diagnostic about the whole Route, or
    about a rule that decided it (the evaluator's, or the one the target's reader chose)."""
    return None in reported or bool(reported.intersection(d for d in deciding if d is not None))
