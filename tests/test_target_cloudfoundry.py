"""The Cloud Foundry target: manifests against the real manifest schema, network policies that
admit exactly the permitted calls, the policy script run against a recording `cf`, located
diagnostics, the workload filter, and the shipped sidecars through `envoy --mode validate`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from compiler.build import compile_mesh
from targets import cloudfoundry
from tests.conftest import BOOKINFO, REPO, require_shared_schemas
from tests.envoy_validate import assert_envoy_accepts

FIXTURES = REPO / "tests" / "fixtures" / "targets" / "cloudfoundry"


@pytest.fixture
def shop():
    compiled = compile_mesh(FIXTURES / "shop", analyse=False)
    assert compiled.graph is not None, compiled.report.sorted()
    return compiled


def emit(compiled, workloads=None):
    return {a.path: a for a in cloudfoundry.emit(compiled.graph, compiled.report, workloads)}


def diagnostics(compiled) -> list[tuple[str, str]]:
    return sorted((d.code.code, str(d.location)) for d in compiled.report.sorted())


def test_every_manifest_passes_the_cloud_foundry_manifest_schema(shop, jsonschema) -> None:
    schema = json.loads((require_shared_schemas() / "cloudfoundry" / "cloudfoundry-application-manifest.json")
                        .read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    bookinfo = compile_mesh(BOOKINFO, analyse=False)
    manifests = [a for compiled in (shop, bookinfo) for path, a in emit(compiled).items()
                 if path.endswith("/manifest.yml")]
    assert len(manifests) == 2
    for artifact in manifests:
        errors = [e.message for e in validator.iter_errors(yaml.safe_load(artifact.content))]
        assert errors == [], artifact.path


def test_manifest_routes_sidecars_and_health_checks(shop) -> None:
    manifest = yaml.safe_load(emit(shop)["cloudfoundry/pcf/manifest.yml"].content)
    apps = {app["name"]: app for app in manifest["applications"]}
    assert manifest["version"] == 1
    assert list(apps) == ["cart", "catalog", "search", "web"]
    # public -> external route only; mesh callers -> internal route; grpc -> http2 on cart's routes
    assert apps["web"]["routes"] == [{"route": "web.apps.example.com"}]
    assert apps["search"]["routes"] == [{"route": "search.apps.internal"}]
    # cart is called from kubernetes as well, which reaches it through the router
    assert apps["cart"]["routes"] == [{"route": "cart.apps.example.com", "protocol": "http2"},
                                      {"route": "cart.apps.internal", "protocol": "http2"}]
    for app in apps.values():
        assert app["sidecars"] == [{"name": "meshc-envoy", "process_types": ["web"],
                                    "command": cloudfoundry.sidecar_command()}]
    # only web's sidecar listens on the router's app port 8080; the others are checked as processes
    assert "health-check-type" not in apps["web"]
    assert {apps[name]["health-check-type"] for name in ("cart", "catalog", "search")} == {"process"}
    assert apps["cart"]["metadata"]["annotations"] == {"meshc.dev/service": "shop/cart",
                                                        "meshc.dev/source": "services.yaml"}


def test_network_policies_are_exactly_the_admitted_calls(shop) -> None:
    data = json.loads(emit(shop)["cloudfoundry/pcf/network-policies.json"].content)
    admitted = [(p["source"]["app"], p["destination"]["app"], p["destination"]["ports"]["start"])
                for p in data["policies"]]
    assert admitted == [
        # web -> cart: 9090 (and 6379) by the first rule, 9091 (GET) by the namespace rule; the
        # path-scoped deny narrows HTTP requests on 9090, which the sidecar enforces, but
        # denies the tcp port 6379 outright, where no path can be seen (MESH412)
        ("web", "cart", 9090), ("web", "cart", 9091),
        ("web", "catalog", 9080),
        # cart -> catalog is denied; web -> search has no AccessPolicy (authorization: deny);
        # reports -> cart is on kubernetes, outside container networking
    ]
    assert all(p["destination"]["protocol"] == "tcp" and
               p["destination"]["ports"]["start"] == p["destination"]["ports"]["end"] for p in data["policies"])


def test_policy_script_runs_cf_in_order(shop, tmp_path: Path) -> None:
    artifacts = emit(shop)
    script = tmp_path / "network-policies.sh"
    script.write_bytes(artifacts["cloudfoundry/pcf/network-policies.sh"].content)
    recorder = tmp_path / "bin" / "cf"
    recorder.parent.mkdir()
    recorder.write_text('#!/bin/sh\nprintf "%s\\n" "$*" >> "$CF_LOG"\n', encoding="utf-8")
    recorder.chmod(0o755)
    env = {**os.environ, "PATH": f"{recorder.parent}:{os.environ['PATH']}", "CF_LOG": str(tmp_path / "log")}
    for _ in range(2):  # idempotent: the same commands each run
        subprocess.run(["sh", str(script)], check=True, env=env, timeout=30)
    calls = (tmp_path / "log").read_text(encoding="utf-8").splitlines()
    policies = json.loads(artifacts["cloudfoundry/pcf/network-policies.json"].content)["policies"]
    expected = [f"add-network-policy {p['source']['app']} {p['destination']['app']} --protocol tcp "
                f"--port {p['destination']['ports']['start']}" for p in policies]
    assert calls == expected * 2


def test_diagnostics_are_located_at_the_intent(shop) -> None:
    emit(shop)
    assert [(code, where) for code, where in diagnostics(shop) if code.startswith("MESH43")] == [
        ("MESH431", "services.yaml:43:9"),  # reports (kubernetes) calls cart
        ("MESH433", "services.yaml:16:41"),  # cart's second HTTP port has no external route
        ("MESH433", "services.yaml:17:41"),  # nor its tcp port
        ("MESH434", "services.yaml:15:24"),  # cart's routed grpc port is not the router's 8080
        ("MESH435", "services.yaml:28:24"),  # catalog's application would share the sidecar's port
    ]


def test_gateway_route_to_an_app_goes_through_the_router() -> None:
    compiled = compile_mesh(FIXTURES / "gateway-route-through-the-router", analyse=False)
    manifest = yaml.safe_load(emit(compiled)["cloudfoundry/pcf/manifest.yml"].content)
    assert manifest["applications"][0]["routes"] == [{"route": "shopfront.apps.example.com"}]
    assert manifest["applications"][0]["metadata"]["annotations"]["meshc.dev/source"] == "app.yaml,route.yaml"
    assert [d for d in diagnostics(compiled) if d[0].startswith("MESH43")] == [("MESH432", "route.yaml:7:20")]


def test_workload_filter_emits_only_those_workloads_byte_identically(shop) -> None:
    everything = emit(shop)
    platform_only = emit(shop, frozenset({"platform:pcf"}))
    one_service = emit(shop, frozenset({"service:shop/cart"}))
    assert sorted(platform_only) == [f"cloudfoundry/pcf/{name}" for name in
                                     ("manifest.yml", "network-policies.json", "network-policies.sh")]
    assert sorted(one_service) == ["cloudfoundry/pcf/sidecars/cart.yaml"]
    for subset in (platform_only, one_service):
        assert all(a.content == everything[path].content for path, a in subset.items())
    assert emit(shop, frozenset({"service:shop/reports"})) == {}


def test_shipped_sidecars_pass_envoy_validate(shop, tmp_path: Path) -> None:
    sidecars = {path.rsplit("/", 1)[1]: a.content for path, a in emit(shop).items() if "/sidecars/" in path}
    assert sorted(sidecars) == ["cart.yaml", "catalog.yaml", "search.yaml", "web.yaml"]
    assert_envoy_accepts(sidecars, tmp_path)
