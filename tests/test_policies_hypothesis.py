"""The checks never raise on valid generated meshes, and locate everything they report."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.build import compile_mesh
from compiler.serialize import to_yaml

PLATFORMS = [{"name": "k8s", "kind": "kubernetes"},
             {"name": "cf", "kind": "cloudfoundry", "appsDomain": "apps.example.com"},
             {"name": "vms", "kind": "vm"}]
NAMESPACES = ("a", "b")
PROTOCOLS = ("http", "http2", "grpc", "tcp", "tls", "mongo")
DURATIONS = ("100ms", "1s", "2s", "5s", "30s")
HOSTS = ("*", "*.example.com", "a.example.com", "b.example.com")
EXPRESSIONS = (
    "has(self.resilience.timeout) && duration(self.resilience.timeout) <= duration('2s')",
    "self.namespace == 'a'",
    "self.name.startsWith('svc')",
    "self.ports.all(p, p.port > 1024)",
    "self.owner == 'x'",  # absent everywhere: an evaluation failure, never an exception
    "self.name ==",  # a syntax error
    "1 + 'a' == 2",
)


@st.composite
def meshes(draw) -> dict[str, object]:
    count = draw(st.integers(1, 6))
    keys = [(draw(st.sampled_from(NAMESPACES)), f"svc-{i}") for i in range(count)]
    documents: list[dict] = []
    services = []
    for namespace, name in keys:
        platform = draw(st.sampled_from(PLATFORMS))["name"]
        ports = [{"name": f"p{i}", "port": 8000 + i, "protocol": draw(st.sampled_from(PROTOCOLS))}
                 for i in range(draw(st.integers(1, 2)))]
        versions = draw(st.lists(st.sampled_from(("v1", "v2")), unique=True, max_size=2))
        service = {"apiVersion": "meshc/v1", "kind": "Service", "name": name, "namespace": namespace,
                   "platform": platform, "ports": ports, "versions": {v: {"labels": {"version": v}} for v in versions},
                   "calls": [f"{ns}/{n}" for ns, n in draw(st.lists(st.sampled_from(keys), unique=True, max_size=3))],
                   "public": draw(st.booleans())}
        if platform == "vms":
            service["endpoints"] = [{"address": f"10.0.0.{i + 1}", **({"version": v} if v else {})}
                                    for i, v in enumerate(draw(st.lists(st.sampled_from([None, *versions]), min_size=1, max_size=2)))]
        if draw(st.booleans()):
            service["mtls"] = draw(st.sampled_from(("STRICT", "PERMISSIVE", "DISABLE")))
        if draw(st.booleans()):
            service["resilience"] = {"timeout": draw(st.sampled_from(DURATIONS)),
                                     "retries": {"attempts": draw(st.integers(0, 3)),
                                                 "perTryTimeout": draw(st.sampled_from(DURATIONS))}}
        documents.append(service)
        services.append((namespace, name, ports, versions))
    for namespace, name, ports, versions in services:
        if not draw(st.booleans()):
            continue
        rules = []
        for _ in range(draw(st.integers(1, 3))):
            match = draw(st.lists(st.fixed_dictionaries({}, optional={
                "path": st.sampled_from([{"prefix": "/"}, {"prefix": "/a"}, {"exact": "/a"}]),
                "method": st.sampled_from(["GET", "POST"]),
                "headers": st.just({"x-user": {"exact": "jason"}}),
                "sni": st.just(["a.example.com"]),
                "port": st.sampled_from([p["port"] for p in ports] + [9999]),
            }), max_size=2))
            destination = {"port": ports[0]["port"]}
            if versions:
                destination["version"] = draw(st.sampled_from(versions))
            rule = {"match": match, "to": [destination]}
            if draw(st.booleans()):
                rule["timeout"] = draw(st.sampled_from(DURATIONS))
                rule["retries"] = {"attempts": draw(st.integers(0, 2)), "perTryTimeout": draw(st.sampled_from(DURATIONS))}
            rules.append(rule)
        documents.append({"apiVersion": "meshc/v1", "kind": "Route", "name": f"{name}-route", "namespace": namespace,
                          "service": name, "rules": rules})
        sources = draw(st.lists(st.sampled_from(
            ["*", f"{keys[0][0]}/{keys[0][1]}", {"namespace": "a"}, {"namespace": "ghost"}, {"gateway": "a/gw"}]),
            min_size=1, max_size=3))
        section = draw(st.sampled_from(["allow", "deny"]))
        documents.append({"apiVersion": "meshc/v1", "kind": "AccessPolicy", "name": f"{name}-access",
                          "namespace": namespace, "service": name,
                          section: [{"from": sources, "ports": draw(st.lists(st.sampled_from([8000, 8001, 9999]), max_size=1))}]})
    listeners = [{"name": f"l{i}", "port": draw(st.sampled_from([80, 8080])), "protocol": "http",
                  "hosts": draw(st.lists(st.sampled_from(HOSTS), min_size=1, max_size=2, unique=True))}
                 for i in range(draw(st.integers(1, 3)))]
    documents.append({"apiVersion": "meshc/v1", "kind": "Gateway", "name": "gw", "namespace": "a",
                      "platform": "k8s", "listeners": listeners})
    entry_namespace, entry_name, entry_ports, _ = services[0]
    documents.append({"apiVersion": "meshc/v1", "kind": "Route", "name": "ingress", "namespace": "a", "gateway": "gw",
                      "hosts": [draw(st.sampled_from(HOSTS[1:]))],
                      "rules": [{"to": [{"service": f"{entry_namespace}/{entry_name}", "port": entry_ports[0]["port"]}]}]})
    for index, expression in enumerate(draw(st.lists(st.sampled_from(EXPRESSIONS), max_size=2, unique=True))):
        documents.append({"apiVersion": "meshc/v1", "kind": "Policy", "name": f"rule-{index}",
                          "appliesTo": draw(st.sampled_from(["Service", "Route", "AccessPolicy", "Mesh"])),
                          "rule": expression, "message": "generated"})
    mesh = {"apiVersion": "meshc/v1", "kind": "Mesh", "name": "generated", "defaultNamespace": "a",
            "authorization": draw(st.sampled_from(["allow", "deny"])), "platforms": PLATFORMS,
            "suppress": draw(st.lists(st.fixed_dictionaries({"code": st.sampled_from(["MESH301", "MESH360"])}), max_size=1))}
    return {"mesh": mesh, "documents": documents}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(meshes())
def test_checks_never_raise_and_locate_every_diagnostic(generated) -> None:
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        (root / "mesh.yaml").write_bytes(to_yaml(generated["mesh"]))
        for index, document in enumerate(generated["documents"]):
            (root / f"doc-{index:02d}.yaml").write_bytes(to_yaml(document))
        compiled = compile_mesh(root)
    assert compiled.graph is not None, [f"{d.code} {d.message}" for d in compiled.report.sorted()]
    for diagnostic in compiled.report.diagnostics:
        assert diagnostic.location is not None and diagnostic.location.line >= 1, diagnostic
