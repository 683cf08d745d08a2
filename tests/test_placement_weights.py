"""Placement weights (docs/intents.md, Placements and failover, 4. Weights): a tier of
placements shared by their weights, on every target, against the reference evaluator
(compiler.evaluate.tier_shares). The split itself runs through real Envoy in
tests/e2e/test_envoy_locality_weights.py.

Envoy, "Locality weighted load balancing" (arch_overview/upstream/load_balancing/locality_weight):
"Locality weighted load balancing is configured by setting locality_weighted_lb_config in the
cluster configuration and providing weights in LocalityLbEndpoints via load_balancing_weight",
and endpoint_components.proto: "If no weights are specified when locality weighted load
balancing is enabled, the locality is assigned no load". Its table for localities X (weight 1)
and Y (weight 2) gives X 33%, 26%, 15% and 0% of the traffic with 100%, 50%, 25% and 0% of its
endpoints healthy: "effective_weight(L_X) = locality_weight_X * min(100, availability(L_X))".

Istio, DestinationRule LocalityLoadBalancerSetting (istio/api networking/v1alpha3/
destination_rule.proto; the CRD in ../shared/schemas): `distribute` is "Map of upstream
localities to traffic distribution weights" from an "Originating locality", and "only one of
distribute, failover or failoverPriority can be set"; istio/istio's validation refuses a
`to` whose weights do not add up to 100 ("total locality weight %v != 100") or one outside
[1, 100]. tests/istio_reference.py reads it as pilot's applyLocalityWeights writes it.
"""

from __future__ import annotations

import json
from fractions import Fraction

import pytest
import yaml

from compiler import codes
from compiler.build import compile_mesh
from compiler.evaluate import failover_tiers, tier_shares
from compiler.graph import Key
from targets import envoy, kubernetes
from targets.kubernetes_platform import whole_percentages
from tests import istio_reference
from tests.envoy_validate import assert_envoy_accepts, write_certificates
from tests.k8s_schemas import validation_errors

CATALOG = Key("shop", "catalog")

MESH = """\
apiVersion: meshc/v1
kind: Mesh
name: weights
defaultNamespace: shop
authorization: allow
defaults:
  outlierDetection: {{consecutive5xx: 3, interval: 5s, baseEjectionTime: 30s, maxEjectionPercent: 100}}
platforms:
  - {{name: east, kind: kubernetes, flavor: {flavor}, locality: {{region: us-east, zone: a}}}}
  - {{name: west-a, kind: kubernetes, locality: {{region: us-west, zone: a}}}}
  - {{name: west-vms, kind: vm, locality: {{region: us-west, zone: b}}, certificates: {{mode: files}}}}
  - {{name: far-vms, kind: vm, locality: {{region: eu-west, zone: a}}, certificates: {{mode: files}}}}
"""

WEB = """\
apiVersion: meshc/v1
kind: Service
name: web
platform: east
ports: [{name: http, port: 8080, protocol: http}]
calls: [catalog]
---
"""


def catalog(*placements: str) -> str:
    return ("apiVersion: meshc/v1\nkind: Service\nname: catalog\n"
            "ports: [{name: http, port: 8080, protocol: http}]\nplacements:\n"
            + "".join(f"  - {p}\n" for p in placements))


WEST_A = "{platform: west-a, weight: 3}"
WEST_VMS = "{platform: west-vms, endpoints: [{address: 10.0.5.1}]}"


def build(make_mesh, *placements: str, flavor: str = "istio", certificates: str = "/etc/meshc/certs"):
    mesh = MESH.format(flavor=flavor).replace("{mode: files}", f"{{mode: files, dir: {certificates}}}")
    compiled = compile_mesh(make_mesh({"mesh.yaml": mesh, "services.yaml": WEB + catalog(*placements)}))
    assert compiled.graph is not None, [d.message for d in compiled.report.diagnostics]
    return compiled


def found(compiled, code) -> list:
    return [d for d in compiled.report.diagnostics if d.code is code]


def bootstrap_cluster(compiled, path: str = "envoy/shop/web.yaml") -> dict:
    artifacts = {a.path: a for a in envoy.emit(compiled.graph, compiled.report)}
    bootstrap = json.loads(artifacts[path].content)
    return next(c for c in bootstrap["static_resources"]["clusters"] if c["name"] == "outbound|8080||catalog.shop")


def destination_rule(compiled, platform: str) -> dict:
    for artifact in kubernetes.emit(compiled.graph, compiled.report):
        if artifact.path.startswith(f"kubernetes/{platform}/") and artifact.path.endswith("catalog.yaml"):
            for doc in yaml.safe_load_all(artifact.content):
                if doc and doc["kind"] == "DestinationRule":
                    return doc
    raise AssertionError(f"no DestinationRule of catalog on {platform}")


def evaluator_shares(compiled, caller: str, healthy: dict[str, tuple[int, int]] | None = None) -> dict:
    graph = compiled.graph
    service = graph.services[CATALOG]
    tiers = failover_tiers(graph.platforms[caller], service)
    endpoints = {r.placement.platform.name: (1, 1) for tier in tiers for r in tier} | (healthy or {})
    return tier_shares(service, tiers[0], endpoints)


# ---------------------------------------------------------------------------------------------
# The evaluator


def test_tier_shares_follow_envoys_locality_weight_table(make_mesh) -> None:
    """Envoy's table: X weight 1, Y weight 2; X 100%, 50%, 25%, 0% healthy (of 20 endpoints)
    takes 33%, 26%, 15%, 0%. Unset weights beside a weight count 1."""
    compiled = build(make_mesh, "{platform: west-a, weight: 2}", WEST_VMS)
    taken = [round(100 * evaluator_shares(compiled, "east", {"west-vms": (healthy, 20)}).get("west-vms", 0))
             for healthy in (20, 10, 5, 0)]
    assert taken == [33, 26, 15, 0]


def test_without_weights_a_tier_is_shared_by_its_endpoints(make_mesh) -> None:
    compiled = build(make_mesh, "{platform: west-a}", "{platform: west-vms, endpoints: [{address: 10.0.5.1}, "
                     "{address: 10.0.5.2}, {address: 10.0.5.3}]}")
    assert evaluator_shares(compiled, "east", {"west-a": (1, 1), "west-vms": (3, 3)}) == \
        {"west-a": Fraction(1, 4), "west-vms": Fraction(3, 4)}
    assert "common_lb_config" not in bootstrap_cluster(compiled)


# ---------------------------------------------------------------------------------------------
# Envoy


def test_the_envoy_cluster_carries_the_weights_with_locality_weighted_balancing_on(make_mesh, tmp_path) -> None:
    certificates = tmp_path / "certs"
    compiled = build(make_mesh, WEST_A, WEST_VMS, certificates=str(certificates))
    cluster = bootstrap_cluster(compiled)
    groups = [(g["locality"]["zone"], g.get("priority", 0), g["load_balancing_weight"])
              for g in cluster["load_assignment"]["endpoints"]]
    assert groups == [("a", 0, 3), ("b", 0, 1)]
    assert cluster["common_lb_config"] == {"locality_weighted_lb_config": {}}
    assert evaluator_shares(compiled, "east") == {"west-a": Fraction(3, 4), "west-vms": Fraction(1, 4)}
    bootstraps = {a.path: a.content for a in envoy.emit(compiled.graph, compiled.report)}
    assert write_certificates(bootstraps, certificates) > 0
    assert_envoy_accepts(bootstraps, tmp_path / "out")


def test_weights_do_not_order_tiers(make_mesh) -> None:
    """A weight splits a tier and never moves a placement into another: from west-vms (us-west/b)
    its own placement is tier 0 and west-a tier 1, whatever their weights."""
    compiled = build(make_mesh, "{platform: west-a, weight: 100}", "{platform: west-vms, weight: 1, "
                     "endpoints: [{address: 10.0.5.1}]}")
    graph = compiled.graph
    tiers = failover_tiers(graph.platforms["west-vms"], graph.services[CATALOG])
    assert [[r.placement.platform.name for r in tier] for tier in tiers] == [["west-vms"], ["west-a"]]


# ---------------------------------------------------------------------------------------------
# Istio (both flavours write the same DestinationRule)


@pytest.mark.parametrize("flavor", ["istio", "gateway-api"])
def test_istio_distributes_the_tier_as_the_evaluator_shares_it(make_mesh, flavor) -> None:
    compiled = build(make_mesh, WEST_A, WEST_VMS, flavor=flavor)
    rule = destination_rule(compiled, "east")
    assert validation_errors(rule) == []
    setting = rule["spec"]["trafficPolicy"]["loadBalancer"]["localityLbSetting"]
    assert setting["distribute"] == [{"from": "us-east/a", "to": {"us-west/a": 75, "us-west/b": 25}}]
    assert "failover" not in setting
    workloads = [istio_reference.Workloads("west-a", None, "us-west/a"),
                 istio_reference.Workloads("west-vms", None, "us-west/b")]
    weights = istio_reference.distributed_weights("us-east/a", workloads, rule)
    assert istio_reference.locality_shares(weights, workloads) == evaluator_shares(compiled, "east")
    assert istio_reference.failover_order(None, "us-east/a", workloads, {}, rule) == [["west-a", "west-vms"]]
    assert found(compiled, codes.K8S_PLACEMENT_WEIGHT) == found(compiled, codes.K8S_PLACEMENT_WEIGHT_ROUNDED) == []


def test_a_cluster_whose_tiers_hold_one_placement_each_keeps_istios_failover(make_mesh) -> None:
    """From west-a the tiers are [west-a], [west-vms]: weights change nothing there, and the
    DestinationRule on west-a keeps locality failover (no `distribute`)."""
    compiled = build(make_mesh, WEST_A, WEST_VMS)
    setting = destination_rule(compiled, "west-a")["spec"]["trafficPolicy"]["loadBalancer"]["localityLbSetting"]
    assert setting == {"enabled": True}


def test_weights_istio_cannot_carry_are_reported_at_the_weight(make_mesh) -> None:
    """east itself holds a placement: east's proxies see [east], [west-a, west-vms], and
    `distribute` would cost the failover between the tiers (MESH475); the weights are left out
    and Istio's failover kept."""
    compiled = build(make_mesh, "{platform: east}", WEST_A, WEST_VMS)
    setting = destination_rule(compiled, "east")["spec"]["trafficPolicy"]["loadBalancer"]["localityLbSetting"]
    assert setting == {"enabled": True}
    [diagnostic] = found(compiled, codes.K8S_PLACEMENT_WEIGHT)
    assert "2 tiers" in diagnostic.message and "'east'" in diagnostic.message
    assert diagnostic.location.file.endswith("services.yaml")
    assert (diagnostic.location.line, diagnostic.location.column) == (14, 32)  # west-a's `weight: 3`


def test_a_placement_without_locality_cannot_be_distributed(make_mesh) -> None:
    mesh = MESH.format(flavor="istio") + "  - {name: bare-vms, kind: vm, certificates: {mode: files}}\n"
    compiled = compile_mesh(make_mesh({"mesh.yaml": mesh, "services.yaml": WEB + catalog(
        "{platform: far-vms, weight: 3, endpoints: [{address: 10.0.6.1}]}",
        "{platform: bare-vms, endpoints: [{address: 10.0.7.1}]}")}))
    assert "distribute" not in destination_rule(compiled, "east")["spec"]["trafficPolicy"]["loadBalancer"][
        "localityLbSetting"]
    [diagnostic] = found(compiled, codes.K8S_PLACEMENT_WEIGHT)
    assert "'bare-vms' has no locality" in diagnostic.message


def test_a_locality_that_contains_another_cannot_be_distributed(make_mesh) -> None:
    """`us-west` would match west-vms' us-west/b too: Istio's validation calls it an overlap."""
    mesh = MESH.format(flavor="istio") + "  - {name: west-region, kind: kubernetes, locality: {region: us-west}}\n"
    compiled = compile_mesh(make_mesh({"mesh.yaml": mesh, "services.yaml": WEB + catalog(
        "{platform: west-region, weight: 3}", WEST_VMS)}))
    assert "distribute" not in destination_rule(compiled, "east")["spec"]["trafficPolicy"]["loadBalancer"][
        "localityLbSetting"]
    [diagnostic] = found(compiled, codes.K8S_PLACEMENT_WEIGHT)
    assert "locality 'us-west' contains 'us-west/b'" in diagnostic.message


def test_shares_that_are_not_whole_percentages_are_rounded_and_reported(make_mesh) -> None:
    compiled = build(make_mesh, "{platform: west-a, weight: 2}", WEST_VMS)
    rule = destination_rule(compiled, "east")
    assert rule["spec"]["trafficPolicy"]["loadBalancer"]["localityLbSetting"]["distribute"] == [
        {"from": "us-east/a", "to": {"us-west/a": 67, "us-west/b": 33}}]
    assert validation_errors(rule) == []
    [diagnostic] = found(compiled, codes.K8S_PLACEMENT_WEIGHT_ROUNDED)
    assert "67, 33" in diagnostic.message


@pytest.mark.parametrize("weights", [[1, 1], [1, 2], [1, 1, 1], [1, 100, 100], [7, 13, 29, 51], [100] * 7])
def test_whole_percentages_add_up_to_100_each_at_least_1(weights) -> None:
    shares = whole_percentages(weights)
    assert sum(shares) == 100 and min(shares) >= 1
    assert all(abs(share - w * 100 / sum(weights)) < 1 for share, w in zip(shares, weights, strict=True))


# ---------------------------------------------------------------------------------------------
# Analysis


def test_weighted_placements_in_one_locality_and_priority_are_an_error(make_mesh) -> None:
    """west-vms and a second vm platform in the same locality: every caller sees them in one
    tier and one locality, and no proxy can weigh them apart (MESH374)."""
    mesh = MESH.format(flavor="istio") + ("  - {name: west-vms-2, kind: vm, locality: {region: us-west, zone: b}, "
                                         "certificates: {mode: files}}\n")
    compiled = compile_mesh(make_mesh({"mesh.yaml": mesh, "services.yaml": WEB + catalog(
        WEST_A, WEST_VMS, "{platform: west-vms-2, endpoints: [{address: 10.0.5.9}]}")}))
    [diagnostic] = found(compiled, codes.PLACEMENT_WEIGHTS_INDISTINCT)
    assert diagnostic.severity == "error"
    assert "'west-vms' and 'west-vms-2'" in diagnostic.message
    assert diagnostic.location.line == 15
    assert [r.location.line for r in diagnostic.related] == [14]
    # a different priority makes them two tiers: no error
    compiled = compile_mesh(make_mesh({"mesh.yaml": mesh, "services.yaml": WEB + catalog(
        WEST_A, WEST_VMS, "{platform: west-vms-2, priority: 1, endpoints: [{address: 10.0.5.9}]}")}))
    assert found(compiled, codes.PLACEMENT_WEIGHTS_INDISTINCT) == []


def test_a_weight_out_of_range_is_a_located_schema_error(make_mesh) -> None:
    compiled = compile_mesh(make_mesh({"mesh.yaml": MESH.format(flavor="istio"),
                                       "services.yaml": WEB + catalog("{platform: west-a, weight: 0}", WEST_VMS)}))
    errors = [d for d in compiled.report.diagnostics if d.severity == "error"]
    assert [(e.location.line, e.location.column) for e in errors] == [(13, 32)]
