"""A service on several platforms (docs/intents.md, Placements and failover), on every target:
the Envoy sidecars' locality-weighted endpoints, Istio's multicluster objects read by
tests/istio_reference.py, both against the evaluator (compiler.evaluate.failover_tiers), and
every artifact through its real validator. The failover itself runs through real Envoy in
tests/e2e/test_envoy_failover.py.
"""

from __future__ import annotations

import json

import pytest
import yaml

from compiler.build import compile_mesh
from compiler.evaluate import failover_tiers
from compiler.graph import Key
from targets import envoy, kubernetes, kubernetes_platform, vm
from tests import istio_reference
from tests.conftest import REPO
from tests.envoy_validate import assert_envoy_accepts, write_certificates
from tests.k8s_schemas import validation_errors

FIXTURE = REPO / "tests" / "fixtures" / "targets" / "multicluster"
CATALOG = Key("shop", "catalog")


@pytest.fixture(scope="module")
def compiled():
    result = compile_mesh(FIXTURE)
    assert result.graph is not None
    assert [d for d in result.report.sorted() if d.severity != "info"] == []
    return result


def _tiers(graph, caller: str, service: Key = CATALOG) -> list[list[str]]:
    return [sorted(r.placement.platform.name for r in tier)
            for tier in failover_tiers(graph.platforms[caller], graph.services[service])]


def _cluster(bootstrap: dict, name: str) -> dict:
    return next(c for c in bootstrap["static_resources"]["clusters"] if c["name"] == name)


def test_a_static_sidecar_sees_every_placement_in_the_evaluators_tiers(compiled) -> None:
    """report runs on the legacy VMs (us-east/b, net-east): its own placement first, then the
    east cluster (same region, same network: its cluster DNS name), then the west cluster on
    another network, through its east-west gateway with the SNI Istio's gateway forwards by
    (`outbound_.<port>_.<subset>_.<host>`, istio.io "Multicluster": AUTO_PASSTHROUGH)."""
    graph = compiled.graph
    artifacts = {a.path: a for a in envoy.emit(graph, compiled.report)}
    bootstrap = json.loads(artifacts["envoy/shop/report.yaml"].content)
    cluster = _cluster(bootstrap, "outbound|8080||catalog.shop")
    groups = [(g.get("priority", 0), g["locality"]["region"], g["locality"]["zone"],
               [e["endpoint"]["address"]["socket_address"]["address"] for e in g["lb_endpoints"]],
               {e["endpoint"]["address"]["socket_address"]["port_value"] for e in g["lb_endpoints"]})
              for g in cluster["load_assignment"]["endpoints"]]
    assert groups == [(0, "us-east", "b", ["10.0.3.7"], {8080}),
                      (1, "us-east", "a", ["catalog.shop.svc.cluster.local"], {8080}),
                      (2, "us-west", "a", ["198.51.100.10"], {15443})]
    assert _tiers(graph, "legacy") == [["legacy"], ["east"], ["west"]]
    tls = cluster["transport_socket"]["typed_config"]
    assert tls["sni"] == "outbound_.8080_._.catalog.shop.svc.cluster.local"
    assert cluster["outlier_detection"]["consecutive_5xx"] == 3
    assert bootstrap["node"]["locality"] == {"region": "us-east", "zone": "b"}


def test_a_service_on_several_platforms_has_one_sidecar_per_placement(compiled) -> None:
    paths = {a.path for a in envoy.emit(compiled.graph, compiled.report)}
    assert {"envoy/shop/catalog.east.yaml", "envoy/shop/catalog.west.yaml", "envoy/shop/catalog.legacy.yaml"} <= paths
    bundles = {a.path for a in vm.emit(compiled.graph, compiled.report)}
    assert "vm/legacy/catalog/endpoints/10.0.3.7/envoy.yaml" in bundles
    bundle = next(a for a in vm.emit(compiled.graph, compiled.report)
                  if a.path == "vm/legacy/catalog/endpoints/10.0.3.7/envoy.yaml")
    assert json.loads(bundle.content)["node"]["locality"] == {"region": "us-east", "zone": "b"}


def test_every_bootstrap_passes_envoy_validate(make_mesh, tmp_path) -> None:
    certificates = tmp_path / "certs"
    files = {p.name: p.read_text().replace("/etc/meshc/certs", str(certificates)) for p in FIXTURE.iterdir()}
    compiled = compile_mesh(make_mesh(files))
    bootstraps = {a.path: a.content for a in envoy.emit(compiled.graph, compiled.report)}
    assert write_certificates(bootstraps, certificates) > 0
    assert_envoy_accepts(bootstraps, tmp_path / "out")


def _documents(artifacts, platform: str) -> list[dict]:
    return [doc for a in artifacts if a.path.startswith(f"kubernetes/{platform}/")
            and not a.path.endswith(("kustomization.yaml", kubernetes_platform.MESH_CONFIG_FILE))
            for doc in yaml.safe_load_all(a.content)]


def test_istio_objects_validate_and_fail_over_as_the_evaluator_says(compiled) -> None:
    """Read as Istio does (tests/istio_reference.py): web on the east cluster (us-east/a) sees
    the east pods, then the legacy VMs' WorkloadEntry (same region, another zone), then the
    west pods through west's east-west gateway; the same order the evaluator gives."""
    graph = compiled.graph
    artifacts = kubernetes.emit(graph, compiled.report)
    docs = {platform: _documents(artifacts, platform) for platform in ("east", "west")}
    errors = [e for platform_docs in docs.values() for doc in platform_docs for e in validation_errors(doc)]
    assert errors == []
    networks = {p: istio_reference.cluster_network(d, "istio-system") for p, d in docs.items()}
    assert networks == {"east": "net-east", "west": "net-west"}
    gateways = {networks[p]: istio_reference.has_east_west_gateway(d) for p, d in docs.items()}
    # the clusters' pods are where their nodes are: the platforms' locality
    localities = {p: graph.platforms[p].locality.label() for p in docs}
    workloads = [istio_reference.Workloads(p, networks[p], localities[p]) for p in docs]
    entries = [d for d in docs["east"] if d["kind"] == "WorkloadEntry" and d["spec"]["labels"]["app"] == "catalog"]
    workloads += [istio_reference.Workloads(e["metadata"]["name"], e["spec"].get("network"), e["spec"].get("locality"))
                  for e in entries]
    rule = next(d for d in docs["east"] if d["kind"] == "DestinationRule" and d["metadata"]["name"] == "catalog")
    order = istio_reference.failover_order(networks["east"], localities["east"], workloads, gateways, rule)
    placement_of = {"east": "east", "west": "west", "catalog-legacy-1": "legacy"}
    assert [sorted(placement_of[s] for s in tier) for tier in order] == _tiers(graph, "east") \
        == [["east"], ["legacy"], ["west"]]


def test_a_cluster_that_only_calls_a_service_elsewhere_gets_its_service_and_workload_entries(compiled) -> None:
    """stock runs on the west cluster and the legacy VMs; web on east calls it. East gets the
    Kubernetes Service of its name (Istio merges the endpoints of one name and namespace across
    clusters: "namespace sameness"), its DestinationRule and the VMs' WorkloadEntries; read as
    Istio does, the order is the evaluator's: the VMs (same network, same region), then west."""
    graph = compiled.graph
    artifacts = {a.path: a for a in kubernetes.emit(graph, compiled.report)}
    docs = list(yaml.safe_load_all(artifacts["kubernetes/east/shop/remote/stock.yaml"].content))
    assert sorted(d["kind"] for d in docs) == ["DestinationRule", "Service", "WorkloadEntry", "WorkloadGroup"]
    assert [e for d in docs for e in validation_errors(d)] == []
    east, west = (_documents(artifacts.values(), p) for p in ("east", "west"))
    networks = {"east": istio_reference.cluster_network(east, "istio-system"),
                "west": istio_reference.cluster_network(west, "istio-system")}
    gateways = {networks["east"]: istio_reference.has_east_west_gateway(east),
                networks["west"]: istio_reference.has_east_west_gateway(west)}
    entry = next(d for d in docs if d["kind"] == "WorkloadEntry")
    workloads = [istio_reference.Workloads("west", networks["west"], graph.platforms["west"].locality.label()),
                 istio_reference.Workloads("legacy", entry["spec"]["network"], entry["spec"]["locality"])]
    rule = next(d for d in docs if d["kind"] == "DestinationRule")
    order = istio_reference.failover_order(networks["east"], graph.platforms["east"].locality.label(), workloads,
                                           gateways, rule)
    assert order == _tiers(graph, "east", Key("shop", "stock")) == [["legacy"], ["west"]]


def test_both_flavours_turn_locality_failover_on_beside_outlier_detection(compiled) -> None:
    artifacts = kubernetes.emit(compiled.graph, compiled.report)
    for platform in ("east", "west"):
        rule = next(d for d in _documents(artifacts, platform)
                    if d["kind"] == "DestinationRule" and d["metadata"]["name"] == "catalog")
        policy = rule["spec"]["trafficPolicy"]
        assert policy["loadBalancer"]["localityLbSetting"] == {"enabled": True}, platform
        assert policy["outlierDetection"]["consecutive5xxErrors"] == 3, platform


def test_a_network_is_istio_installation_values_too(compiled) -> None:
    artifacts = {a.path: a for a in kubernetes.emit(compiled.graph, compiled.report)}
    values = yaml.safe_load(artifacts["kubernetes/east/istio-mesh-config.yaml"].content)
    assert values["values"]["global"]["network"] == "net-east"


def test_a_placement_priority_is_reported_where_istio_cannot_carry_it(make_mesh) -> None:
    files = {p.name: p.read_text() for p in FIXTURE.iterdir()}
    files["services.yaml"] = files["services.yaml"].replace(
        "    endpoints: [{address: 10.0.3.7}]", "    endpoints: [{address: 10.0.3.7}]\n    priority: 1")
    compiled = compile_mesh(make_mesh(files))
    kubernetes.emit(compiled.graph, compiled.report)
    found = {(str(d.code), d.location.file, d.location.line) for d in compiled.report.sorted()}
    assert ("MESH478", "services.yaml", 29) in found
    # Envoy carries it: the legacy VMs become the last tier for a caller on the east cluster
    assert _tiers(compiled.graph, "east") == [["east"], ["west"], ["legacy"]]


# ---------------------------------------------------------------------------------------------
# examples/multicluster-shop: every artifact through its real validator

EXAMPLE = REPO / "examples" / "multicluster-shop"


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """The example, its certificate directory moved below a temporary one (files mode)."""
    root = tmp_path_factory.mktemp("multicluster-shop")
    certificates = root / "certs"
    for path in EXAMPLE.rglob("*.yaml"):
        target = root / "mesh" / path.relative_to(EXAMPLE)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text().replace("/etc/meshc/certs", str(certificates)))
    compiled = compile_mesh(root / "mesh")
    assert compiled.graph is not None
    assert [d for d in compiled.report.sorted() if d.severity != "info"] == []
    return compiled, certificates, root


ENVIRONMENTS = ("dev", "staging", "prod")


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def environment(request, example):
    """The example in one of its environments (its overlays applied)."""
    _, certificates, root = example
    compiled = compile_mesh(root / "mesh", environment=request.param)
    assert compiled.graph is not None
    assert [d for d in compiled.report.sorted() if d.severity != "info"] == []
    return compiled, certificates, root / request.param


def test_example_environments_differ_as_their_overlays_say(example) -> None:
    _, _, root = example
    dev, staging, prod = (compile_mesh(root / "mesh", environment=name).graph for name in ENVIRONMENTS)
    assert sorted(dev.platforms) == ["east"] and len(dev.services[CATALOG].placements) == 1
    assert staging.platforms["west"].eastWestGateway.address == "198.51.100.110"
    assert staging.mesh.trustDomain == "staging.shop.example"
    assert prod.services[Key("shop", "orders")].resilience.outlierDetection.consecutive5xx == 2
    assert _tiers(prod, "west") == [["west"], ["east", "legacy"]]


def test_example_bootstraps_pass_envoy_validate(environment) -> None:
    compiled, certificates, root = environment
    bootstraps = {a.path: a.content for a in envoy.emit(compiled.graph, compiled.report)}
    bootstraps.update({a.path: a.content for a in vm.emit(compiled.graph, compiled.report)
                       if a.path.endswith("envoy.yaml")})
    write_certificates(bootstraps, certificates)  # dev has no files-mode platform: none
    assert_envoy_accepts(bootstraps, root / "out")


def test_example_kubernetes_objects_validate(environment) -> None:
    compiled, _, _ = environment
    artifacts = kubernetes.emit(compiled.graph, compiled.report)
    documents = [doc for platform in ("east", "west") for doc in _documents(artifacts, platform)]
    assert {"Gateway", "DestinationRule", "Namespace"} <= {d["kind"] for d in documents}
    assert [e for doc in documents for e in validation_errors(doc)] == []


def test_example_vm_unit_passes_systemd_analyze_verify(example, tmp_path) -> None:
    import subprocess

    from tests.conftest import require_tool

    systemd_analyze = require_tool("systemd-analyze", "the Debian package systemd (.ci/run installs it)")
    compiled, _, _ = example
    stub = tmp_path / "bin" / "envoy"  # verify checks that ExecStart's binary exists
    stub.parent.mkdir()
    stub.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    stub.chmod(0o755)
    service = compiled.graph.services[CATALOG].on("legacy")
    unit = tmp_path / "units" / vm.unit_name(service)
    unit.parent.mkdir()
    unit.write_bytes(vm.render_unit(service, False, envoy_binary=str(stub)))
    result = subprocess.run([systemd_analyze, "verify", str(unit)], capture_output=True, text=True, timeout=120)
    ours = [line for line in (result.stdout + result.stderr).splitlines() if unit.name in line]
    assert result.returncode == 0 and ours == [], result.stdout + result.stderr


def test_example_frontend_on_west_fails_over_to_east_then_to_the_vms(example) -> None:
    """The frontend's west sidecar: the west pods, then east through its east-west gateway and
    the VMs (both another region: one tier), as the evaluator orders them."""
    compiled, _, _ = example
    graph = compiled.graph
    assert _tiers(graph, "west") == [["west"], ["east", "legacy"]]
    assert _tiers(graph, "east") == [["east"], ["legacy"], ["west"]]
    artifacts = {a.path: a for a in envoy.emit(graph, compiled.report)}
    cluster = _cluster(json.loads(artifacts["envoy/shop/frontend.west.yaml"].content), "outbound|8080||catalog.shop")
    groups = sorted((g.get("priority", 0), g["locality"]["zone"]) for g in cluster["load_assignment"]["endpoints"])
    assert groups == [(0, "us-west1-a"), (1, "us-east1-b"), (1, "us-east1-c")]


# ---------------------------------------------------------------------------------------------
# The evaluator's rules, one by one (docs/intents.md, Placements and failover)


@pytest.mark.parametrize(("caller", "placement", "distance"), [
    ("us-east/a/r1", "us-east/a/r1", 0), ("us-east/a/r1", "us-east/a/r2", 1), ("us-east/a", "us-east/b", 2),
    ("us-east/a", "us-west/a", 3), (None, None, 0), ("us-east/a", None, 3), (None, "us-east/a", 3)])
def test_locality_distance_is_istios_priority(caller, placement, distance) -> None:
    from compiler.evaluate import locality_distance
    from compiler.model import Locality

    def locality(text):
        if text is None:
            return None
        return Locality(**dict(zip(("region", "zone", "subzone"), text.split("/"), strict=False)))

    assert locality_distance(locality(caller), locality(placement)) == distance
    if caller is not None and placement is not None:  # the reader of Istio's objects agrees
        assert istio_reference.locality_priority(caller, placement) == distance


@pytest.mark.parametrize(("mine", "theirs", "same"), [
    ("n1", "n1", True), ("n1", "n2", False), (None, "n2", True), ("n1", None, True), (None, None, True)])
def test_an_unset_network_is_every_network(mine, theirs, same) -> None:
    from compiler.evaluate import same_network
    from compiler.model import VmPlatform

    assert same_network(VmPlatform(name="a", kind="vm", network=mine),
                        VmPlatform(name="b", kind="vm", network=theirs)) is same


def test_priority_comes_before_distance_and_ejection_moves_down_the_tiers(compiled) -> None:
    from dataclasses import replace

    from compiler.evaluate import serving_placements

    graph = compiled.graph
    catalog = graph.services[CATALOG]
    legacy_first = replace(catalog, placements=tuple(
        replace(p, priority=0 if p.platform.name == "legacy" else 1) for p in catalog.placements))
    tiers = failover_tiers(graph.platforms["east"], legacy_first)
    assert [[r.placement.platform.name for r in tier] for tier in tiers] == [["legacy"], ["east"], ["west"]]
    assert serving_placements(tiers, frozenset()) == ("legacy",)
    assert serving_placements(tiers, frozenset({"legacy"})) == ("east",)
    assert serving_placements(tiers, frozenset({"legacy", "east", "west"})) == ()


def test_the_server_name_names_a_version_as_the_callees_cluster_knows_it(compiled) -> None:
    """Istio's SNI cluster names: `outbound_.<port>_.<subset>_.<host>`; the istio flavour writes a
    version as a DestinationRule subset, the gateway-api flavour as the Service <name>-<version>."""
    from compiler.addressing import istio_sni

    graph = compiled.graph
    catalog = graph.services[CATALOG]
    assert istio_sni(catalog, 8080, None, graph.platforms["west"]) == "outbound_.8080_._.catalog.shop.svc.cluster.local"
    assert istio_sni(catalog, 8080, "v1", graph.platforms["east"]) == "outbound_.8080_.v1_.catalog.shop.svc.cluster.local"
    assert istio_sni(catalog, 8080, "v1", graph.platforms["west"]) == \
        "outbound_.8080_._.catalog-v1.shop.svc.cluster.local"


def test_the_east_west_gateway_is_istios_cross_network_gateway(compiled, make_mesh) -> None:
    """istio/istio samples/multicluster/expose-services.yaml, the Gateway Istio's multi-network
    installation applies beside each cluster's east-west gateway: `selector: {istio:
    eastwestgateway}`, one server on port 15443 named `tls`, protocol TLS, `tls.mode:
    AUTO_PASSTHROUGH`, hosts `"*.local"`; and the control plane's namespace labelled
    `topology.istio.io/network` with the cluster's network (istio.io, "Install Multi-Primary on
    different networks": `kubectl label namespace istio-system topology.istio.io/network=network1`).
    Both schema-valid; a cluster of another domain exposes `*.<domain>`, and a cluster without
    `eastWestGateway` exposes nothing."""
    artifacts = kubernetes.emit(compiled.graph, compiled.report)
    for platform, network in (("east", "net-east"), ("west", "net-west")):
        docs = _documents(artifacts, platform)
        [gateway] = [d for d in docs if d["kind"] == "Gateway" and d["apiVersion"].startswith("networking.istio.io")]
        assert gateway["metadata"]["namespace"] == "istio-system"
        assert gateway["spec"] == {"selector": {"istio": "eastwestgateway"}, "servers": [
            {"port": {"number": 15443, "name": "tls", "protocol": "TLS"}, "tls": {"mode": "AUTO_PASSTHROUGH"},
             "hosts": ["*.local"]}]}
        [namespace] = [d for d in docs if d["kind"] == "Namespace" and d["metadata"]["name"] == "istio-system"]
        assert namespace["metadata"]["labels"] == {"topology.istio.io/network": network}
        assert validation_errors(gateway) == validation_errors(namespace) == []
    files = {p.name: p.read_text() for p in FIXTURE.iterdir()}
    files["mesh.yaml"] = files["mesh.yaml"].replace(
        "    eastWestGateway: {address: 192.0.2.10}\n", "    clusterDomain: east.example\n    eastWestGateway: {address: 192.0.2.10}\n"
    ).replace("    eastWestGateway: {address: 198.51.100.10, port: 15443}\n", "")
    other = compile_mesh(make_mesh(files))
    artifacts = kubernetes.emit(other.graph, other.report)
    [gateway] = [d for d in _documents(artifacts, "east") if d["kind"] == "Gateway"]
    assert gateway["spec"]["servers"][0]["hosts"] == ["*.east.example"]
    assert [d for d in _documents(artifacts, "west") if d["kind"] == "Gateway"] == []


# What no validator here can read: each file name with the reason, so that every other artifact
# of the example must pass one (test_every_artifact_of_each_environment_goes_through_a_validator).
UNVALIDATED = {
    "kustomization.yaml": "no Kustomization schema in ../shared/schemas (its resources are checked to exist)",
    "istio-mesh-config.yaml": "Istio installation values have no schema in ../shared/schemas",
    "README.md": "prose for the operator",
}


def test_every_artifact_of_each_environment_goes_through_a_validator(environment, tmp_path) -> None:
    """Every file a build of the environment writes, by kind: Envoy bootstraps (sidecars,
    gateways, VM endpoints) through `envoy --mode validate`, Kubernetes objects through the CRD
    schemas and kubernetes-validate, systemd units through `systemd-analyze verify`, install
    scripts through `sh -n`; only the files of UNVALIDATED are not, for the reason given."""
    import subprocess

    from compiler.build import emit
    from tests.conftest import require_tool

    compiled, certificates, root = environment
    artifacts = emit(compiled.graph, compiled.report)
    assert artifacts
    bootstraps, objects, units, scripts, skipped = {}, [], [], [], []
    for artifact in artifacts:
        name = artifact.path.rsplit("/", 1)[-1]
        if name in UNVALIDATED:
            skipped.append(artifact)
            if name == "kustomization.yaml":
                base = artifact.path.rsplit("/", 1)[0]
                resources = yaml.safe_load(artifact.content)["resources"]
                assert {f"{base}/{r}" for r in resources} <= {a.path for a in artifacts}
        elif artifact.path.startswith("envoy/") or name == "envoy.yaml":
            bootstraps[artifact.path] = artifact.content
        elif artifact.path.startswith("kubernetes/"):
            objects.extend(doc for doc in yaml.safe_load_all(artifact.content) if doc)
        elif name.endswith(".service"):
            units.append(artifact)
        elif name == "install.sh":
            scripts.append(artifact)
        else:
            raise AssertionError(f"{artifact.path}: no validator for this artifact")
    write_certificates(bootstraps, certificates)
    assert_envoy_accepts(bootstraps, root / "every")
    assert objects and [e for doc in objects for e in validation_errors(doc)] == []

    systemd_analyze = require_tool("systemd-analyze", "the Debian package systemd (.ci/run installs it)")
    stub = tmp_path / "bin" / "envoy"  # verify checks that ExecStart's binary exists
    stub.parent.mkdir()
    stub.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    stub.chmod(0o755)
    for unit in units:
        path = tmp_path / "units" / unit.path.rsplit("/", 1)[-1]
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(unit.content.replace(b"ExecStart=/usr/local/bin/envoy ", f"ExecStart={stub} ".encode()))
        result = subprocess.run([systemd_analyze, "verify", str(path)], capture_output=True, text=True, timeout=120)
        ours = [line for line in (result.stdout + result.stderr).splitlines() if path.name in line]
        assert result.returncode == 0 and ours == [], result.stdout + result.stderr
    for script in scripts:
        path = tmp_path / "install.sh"
        path.write_bytes(script.content)
        checked = subprocess.run(["sh", "-n", str(path)], capture_output=True, text=True, timeout=60)
        assert checked.returncode == 0, checked.stderr
    has_vms = "legacy" in compiled.graph.platforms
    assert bool(units) == bool(scripts) == has_vms
