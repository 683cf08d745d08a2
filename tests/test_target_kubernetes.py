"""Kubernetes target: every emitted document validates against the real schemas, plus layout,
apply order, determinism, provenance, workload filtering and the diagnostics of flavor gateway-api."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from compiler.artifact import SOURCE_ANNOTATION
from compiler.build import compile_mesh
from targets import envoy, kubernetes, kubernetes_platform
from targets.kubernetes_meta import MANAGED_BY_LABEL, parse_source_list
from tests.conftest import EXAMPLES, REPO, require_envoy
from tests.k8s_schemas import validation_errors

FIXTURES = REPO / "tests" / "fixtures" / "targets" / "kubernetes"


def every_feature_files(flavor: str) -> dict[str, str]:
    """The files of tests/fixtures/targets/kubernetes/every-feature, its kubernetes platform of `flavor`."""
    root = FIXTURES / "every-feature"
    return {path.relative_to(root).as_posix():
            path.read_text(encoding="utf-8").replace("flavor: istio}", f"flavor: {flavor}}}")
            for path in sorted(root.rglob("*.yaml"))}


def _documents(artifacts) -> list[tuple[str, dict]]:
    return [(a.path, doc) for a in artifacts
            if not a.path.endswith(("kustomization.yaml", kubernetes_platform.MESH_CONFIG_FILE))
            for doc in yaml.safe_load_all(a.content)]


def _compile(root: Path):
    compiled = compile_mesh(root, analyse=False)
    assert compiled.graph is not None, compiled.report.sorted()
    return compiled


@pytest.fixture(params=["istio", "gateway-api"])
def features(request, make_mesh):
    compiled = _compile(make_mesh(every_feature_files(request.param)))
    return request.param, compiled, kubernetes.emit(compiled.graph, compiled.report)


@pytest.mark.parametrize("mesh", ["bookinfo", "bookinfo-cluster", "gateway-api-shop"])
def test_example_documents_validate(mesh: str) -> None:
    compiled = _compile(EXAMPLES / mesh)
    documents = _documents(kubernetes.emit(compiled.graph, compiled.report))
    assert documents
    errors = [f"{path}: {error}" for path, doc in documents for error in validation_errors(doc)]
    assert errors == []


def test_feature_documents_validate(features) -> None:
    _, _, artifacts = features
    documents = _documents(artifacts)
    errors = [f"{path}: {error}" for path, doc in documents for error in validation_errors(doc)]
    assert errors == []
    kinds = {doc["kind"] for _, doc in documents}
    assert {"ServiceEntry", "WorkloadGroup", "WorkloadEntry", "DestinationRule", "EnvoyFilter",
            "AuthorizationPolicy", "PeerAuthentication", "Sidecar", "Gateway"} <= kinds


def test_feature_output_matches_snapshot(features, snapshot) -> None:
    _, compiled, artifacts = features
    diagnostics = [f"{d.code} {d.location} {d.message}" for d in compiled.report.sorted()]
    assert {"files": {a.path: a.content.decode() for a in artifacts}, "diagnostics": diagnostics} == snapshot


def test_gateway_api_reports_what_it_cannot_express(make_mesh) -> None:
    compiled = _compile(make_mesh(every_feature_files("gateway-api")))
    kubernetes.emit(compiled.graph, compiled.report)
    assert [(d.code.code, str(d.location)) for d in compiled.report.sorted()] == [
        # Mesh.defaults.retries, inherited by every rule without its own and by front (no
        # Route): said once, where they are written
        ("MESH421", "mesh.yaml:5:35"),
        ("MESH423", "routes.yaml:6:66"),  # the presence match on x-p
        ("MESH421", "routes.yaml:8:14"),  # the rule's own retries
        ("MESH422", "routes.yaml:11:12"),  # fault
        ("MESH424", "routes.yaml:14:14"),  # 2.0005s is finer than a millisecond
        ("MESH423", "routes.yaml:15:47"),  # port match on an HTTP rule
        ("MESH424", "routes.yaml:24:5"),  # tls rule of a mesh Route
        ("MESH424", "routes.yaml:26:5"),  # tcp rule of a mesh Route
        ("MESH425", "services.yaml:38:51"),  # the tcp port of the Cloud Foundry callee
    ]


def test_istio_flavor_reports_only_the_cloud_foundry_port(make_mesh) -> None:
    compiled = _compile(make_mesh(every_feature_files("istio")))
    kubernetes.emit(compiled.graph, compiled.report)
    assert [(d.code.code, str(d.location)) for d in compiled.report.diagnostics] == [
        ("MESH425", "services.yaml:38:51")]


def test_apply_order_puts_subsets_before_routes_and_kinds_in_fixed_order(features) -> None:
    _, _, artifacts = features
    for artifact in artifacts:
        if artifact.path.endswith("kustomization.yaml"):
            continue
        docs = list(yaml.safe_load_all(artifact.content))
        assert docs == kubernetes_platform.ordered(docs)
        kinds = [d["kind"] for d in docs]
        if "DestinationRule" in kinds and "VirtualService" in kinds:
            assert kinds.index("DestinationRule") < kinds.index("VirtualService")


def test_every_object_names_meshc_and_existing_intent_files(features, make_mesh) -> None:
    _, _, artifacts = features
    root = make_mesh({})  # writing nothing returns the root the fixture's mesh was written to
    for path, doc in _documents(artifacts):
        meta = doc["metadata"]
        assert meta["labels"][MANAGED_BY_LABEL] == "meshc", path
        for source in parse_source_list(meta["annotations"][SOURCE_ANNOTATION]):
            assert (root / source).is_file(), (path, source)


def test_kustomization_lists_every_file_relative_to_itself(features) -> None:
    _, _, artifacts = features
    kustomization = next(a for a in artifacts if a.path.endswith("kustomization.yaml"))
    resources = yaml.safe_load(kustomization.content)["resources"]
    base = kustomization.path.rsplit("/", 1)[0]
    assert sorted(f"{base}/{r}" for r in resources) == sorted(a.path for a in artifacts if a is not kustomization)


def test_output_is_deterministic() -> None:
    first = _compile(EXAMPLES / "gateway-api-shop")
    second = _compile(EXAMPLES / "gateway-api-shop")
    assert ([(a.path, a.content) for a in kubernetes.emit(first.graph, first.report)]
            == [(a.path, a.content) for a in kubernetes.emit(second.graph, second.report)])


def test_workloads_filter_emits_only_those_files_byte_identical() -> None:
    compiled = _compile(EXAMPLES / "bookinfo")
    everything = {a.path: a for a in kubernetes.emit(compiled.graph, compiled.report)}
    wanted = frozenset({"service:bookinfo/reviews", "gateway:bookinfo/public"})
    some = kubernetes.emit(compiled.graph, compiled.report, wanted)
    assert sorted(a.path for a in some) == ["kubernetes/prod-k8s/bookinfo/gateways/public.yaml",
                                            "kubernetes/prod-k8s/bookinfo/reviews.yaml"]
    assert all(everything[a.path].content == a.content and a.workload in wanted for a in some)


RATE_LIMITED = """\
    apiVersion: meshc/v1
    kind: Mesh
    name: limits
    defaultNamespace: shop
    platforms: [{name: k8s, kind: kubernetes}]
    ---
    apiVersion: meshc/v1
    kind: Service
    name: cart
    platform: k8s
    ports: [{name: http, port: 8080, protocol: http}]
    rateLimit: {requests: 3, per: PER}
    """


def _rate_limit_filters(make_mesh, per: str) -> tuple[dict, dict]:
    """(the Istio EnvoyFilter's patch, the envoy target's filter) for one rate-limited service."""
    compiled = _compile(make_mesh({"mesh.yaml": RATE_LIMITED.replace("PER", per)}))
    manifest = next(a for a in kubernetes.emit(compiled.graph, compiled.report) if a.path.endswith("/cart.yaml"))
    envoy_filter = next(d for d in yaml.safe_load_all(manifest.content) if d["kind"] == "EnvoyFilter")
    bootstrap = json.loads(envoy.emit(compiled.graph, compiled.report)[0].content)
    manager = bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    native = next(f for f in manager["http_filters"] if f["name"] == "envoy.filters.http.local_ratelimit")
    return envoy_filter["spec"]["configPatches"][0], native


@pytest.mark.parametrize(("per", "tokens", "fill_interval"), [("1s", 3, "1s"), ("500ms", 3, "0.5s"),
                                                                  ("10ms", 15, "0.05s"), ("20ms", 9, "0.06s")])
def test_rate_limit_is_one_filter_on_both_targets(make_mesh, per: str, tokens: int, fill_interval: str) -> None:
    """Envoy refuses a fill_interval under 50ms (local_ratelimit.proto): both targets scale a
    shorter `per` to the first multiple of it that reaches 50ms, keeping the rate."""
    patch, native = _rate_limit_filters(make_mesh, per)
    value = patch["patch"]["value"]
    assert value["typed_config"]["token_bucket"] == {"max_tokens": tokens, "tokens_per_fill": tokens,
                                                     "fill_interval": fill_interval}
    assert {**value["typed_config"], "stat_prefix": None} == {**native["typed_config"], "stat_prefix": None}
    assert value["name"] == native["name"]


@pytest.mark.parametrize("per", ["1s", "10ms"])
def test_rate_limit_envoy_filter_is_accepted_by_envoy(make_mesh, tmp_path: Path, per: str) -> None:
    """The EnvoyFilter's patch value, inserted before the router of an inbound HTTP connection
    manager (as Istio's INSERT_BEFORE on SIDECAR_INBOUND does), passes `envoy --mode validate`."""
    envoy_binary = require_envoy()
    patch, _ = _rate_limit_filters(make_mesh, per)
    assert patch["applyTo"] == "HTTP_FILTER" and patch["patch"]["operation"] == "INSERT_BEFORE"
    assert patch["match"]["context"] == "SIDECAR_INBOUND"
    router = {"name": "envoy.filters.http.router",
              "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
    assert patch["match"]["listener"]["filterChain"]["filter"]["subFilter"]["name"] == router["name"]
    manager = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "inbound",
        "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
            {"match": {"prefix": "/"}, "direct_response": {"status": 200}}]}]},
        "http_filters": [patch["patch"]["value"], router],
    }
    bootstrap = {"static_resources": {"listeners": [{
        "name": "inbound", "address": {"socket_address": {"address": "127.0.0.1", "port_value": 18080}},
        "filter_chains": [{"filters": [{"name": patch["match"]["listener"]["filterChain"]["filter"]["name"],
                                        "typed_config": manager}]}]}]}}
    config = tmp_path / "bootstrap.json"
    config.write_text(json.dumps(bootstrap), encoding="utf-8")
    result = subprocess.run([envoy_binary, "--mode", "validate", "-c", str(config), "--log-level", "error"],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_callee_on_another_cluster_is_named_in_its_own_cluster_domain() -> None:
    """The caller's Sidecar lets out exactly the host its Envoy connects to: the callee's
    Service in the callee's platform's clusterDomain, not the caller's."""
    compiled = _compile(FIXTURES / "callee-on-another-cluster")
    front = next(a for a in kubernetes.emit(compiled.graph, compiled.report) if a.path == "kubernetes/east/shop/front.yaml")
    sidecar = next(d for d in yaml.safe_load_all(front.content) if d["kind"] == "Sidecar")
    bootstrap = json.loads(next(a for a in envoy.emit(compiled.graph, compiled.report)
                                if a.path == "envoy/shop/front.yaml").content)
    cluster = next(c for c in bootstrap["static_resources"]["clusters"] if c["name"] == "outbound|8080||api.shop")
    endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert endpoint["address"]["socket_address"]["address"] == "api.shop.svc.west.example"
    assert sidecar["spec"]["egress"] == [{"hosts": ["shop/api.shop.svc.west.example"]}]


def test_authorization_policy_lives_in_the_namespace_of_the_service_it_protects() -> None:
    compiled = _compile(FIXTURES / "authorization-policy-in-callee-namespace")
    documents = _documents(kubernetes.emit(compiled.graph, compiled.report))
    policies = {(doc["metadata"]["namespace"], doc["metadata"]["name"]): doc["spec"]["action"]
                for _, doc in documents if doc["kind"] == "AuthorizationPolicy"}
    assert policies == {("backend", "shop-callers"): "ALLOW", ("backend", "shop-callers-deny"): "DENY",
                        ("shop", "front-allow-nothing"): "ALLOW"}  # front has no AccessPolicy: admits nobody
    assert [error for _, doc in documents for error in validation_errors(doc)] == []


def test_mesh_hosts_and_outbound_traffic_policy_reach_every_sidecar() -> None:
    """Istio's Sidecar reference: egress `hosts` are `namespace/dnsName`; its example admits
    `istio-system/*` so that the sidecar still reaches the control plane and telemetry;
    `outboundTrafficPolicy.mode` is REGISTRY_ONLY or ALLOW_ANY."""
    compiled = _compile(FIXTURES / "mesh-hosts-and-outbound-traffic-policy")
    sidecars = {d["metadata"]["name"]: d for a in kubernetes.emit(compiled.graph, compiled.report)
                for d in yaml.safe_load_all(a.content) if d and d["kind"] == "Sidecar"}
    assert sidecars["front"]["spec"]["egress"] == [
        {"hosts": ["shop/api.shop.svc.cluster.local", "istio-system/*", "observability/otel-collector.observability"]}]
    # a service that calls nothing still reaches the infrastructure, and nothing else
    assert sidecars["api"]["spec"]["egress"] == [
        {"hosts": ["istio-system/*", "observability/otel-collector.observability"]}]
    for sidecar in sidecars.values():
        assert sidecar["spec"]["outboundTrafficPolicy"] == {"mode": "ALLOW_ANY"}
        assert validation_errors(sidecar) == []


@pytest.mark.parametrize("host", ["istio-system", "istio-system/", "/*", "a/b/c", "Ns/*"])
def test_mesh_hosts_must_be_namespace_slash_host(make_mesh, host: str) -> None:
    root = make_mesh({"mesh.yaml": "apiVersion: meshc/v1\nkind: Mesh\nname: m\n"
                                   f"platforms: [{{name: k8s, kind: kubernetes, meshHosts: ['{host}']}}]\n"})
    compiled = compile_mesh(root)
    assert [d.code.code for d in compiled.report.diagnostics] == ["MESH105"]
