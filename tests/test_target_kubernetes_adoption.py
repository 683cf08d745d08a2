"""Adoption into an existing cluster (issue 15): service accounts, a Gateway bound to an existing
deployment, ownership of Kubernetes kinds, mTLS modes, mesh- and namespace-wide policy, tracing
through the Telemetry API and Sidecar egress, read back from the emitted objects of every target."""

from __future__ import annotations

import yaml

from compiler.build import compile_mesh, emit
from targets.kubernetes_platform import MESH_CONFIG_FILE
from tests.conftest import EXAMPLES, REPO
from tests.k8s_schemas import validation_errors

FIXTURE = REPO / "tests" / "fixtures" / "targets" / "kubernetes" / "adoption"
WEB = "cluster.local/ns/shop/sa/shop-web"
INGRESS = "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"


def _files(**replacements: str) -> dict[str, str]:
    """The adoption fixture's files, each `old=new` text replacement applied where it occurs."""
    files = {p.name: p.read_text(encoding="utf-8") for p in sorted(FIXTURE.glob("*.yaml"))}
    for old, new in replacements.values():
        assert any(old in text for text in files.values()), old
        files = {name: text.replace(old, new) for name, text in files.items()}
    return files


def _build(make_mesh, files: dict[str, str] | None = None):
    compiled = compile_mesh(make_mesh(files or _files()), finish=False)
    assert compiled.graph is not None, compiled.report.sorted()
    return compiled, {a.path: a.content for a in emit(compiled.graph, compiled.report)}


def _objects(artifacts: dict[str, bytes]) -> list[dict]:
    """Every Kubernetes object the kubernetes target wrote, each validated against its schema."""
    objects = [doc for path, content in artifacts.items()
               if path.startswith("kubernetes/") and not path.endswith(("kustomization.yaml", MESH_CONFIG_FILE))
               for doc in yaml.safe_load_all(content)]
    assert [error for doc in objects for error in validation_errors(doc)] == []
    return objects


def _one(objects: list[dict], kind: str, name: str, namespace: str = "shop") -> dict:
    (found,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name
                and o["metadata"].get("namespace") == namespace]
    return found


def _principals(policy: dict) -> list[str]:
    return [p for rule in policy["spec"]["rules"] for source in rule["from"]
            for p in source["source"].get("principals", [])]


def _values(node: object, key: str) -> list:
    """Every value under `key` anywhere in a JSON-like tree."""
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == key] + [x for v in node.values() for x in _values(v, key)]
    if isinstance(node, list):
        return [x for v in node for x in _values(v, key)]
    return []


def test_the_service_account_is_the_principal_on_every_target(make_mesh) -> None:
    compiled, artifacts = _build(make_mesh)
    objects = _objects(artifacts)
    # Istio: AuthorizationPolicies name the callers' accounts, the bound gateway's included
    assert _principals(_one(objects, "AuthorizationPolicy", "cart-callers")) == [
        WEB, "cluster.local/ns/shop/sa/legacy"]
    assert _principals(_one(objects, "AuthorizationPolicy", "web-callers")) == [INGRESS]
    # the vm services' WorkloadGroups and WorkloadEntries run as their accounts
    assert {o["spec"].get("serviceAccount") or o["spec"]["template"]["serviceAccount"]
            for o in objects if o["kind"] in ("WorkloadGroup", "WorkloadEntry")} == {"shop-stock", "shop-ledger"}
    # Envoy: the static vm sidecar of stock admits web's and the gateway's SPIFFE IDs, and web's
    # sidecar accepts only shop-cart's certificate from cart
    stock = yaml.safe_load(artifacts["vm/vms/stock/endpoints/10.0.0.7/envoy.yaml"])
    admitted = {name["exact"] for name in _values(stock, "principal_name")}
    assert admitted == {f"spiffe://{WEB}", f"spiffe://{INGRESS}"}
    web = yaml.safe_load(artifacts["envoy/shop/web.yaml"])
    peers = {m["matcher"]["exact"] for m in _values(web, "match_typed_subject_alt_names") for m in m}
    assert "spiffe://cluster.local/ns/shop/sa/shop-cart" in peers
    # the istio vm's bundle asks for its account's token
    env = artifacts["vm/vmi/ledger/endpoints/10.0.1.7/cluster.env"].decode()
    assert "SERVICE_ACCOUNT='shop-ledger'" in env.splitlines()
    # legacy names no account and the platform writes none: the reference is reported
    assert [(d.code.code, str(d.location)) for d in compiled.report.sorted()] == [("MESH429", "access.yaml:6:17")]


def test_the_platform_writes_only_the_kinds_it_owns(make_mesh) -> None:
    _, owned_nothing = _build(make_mesh)
    kinds = {o["kind"] for o in _objects(owned_nothing)}
    assert "ServiceAccount" not in kinds and "Service" not in kinds
    _, owned = _build(make_mesh, _files(kinds=("kinds: []", "kinds: [Service, ServiceAccount]")))
    objects = _objects(owned)
    accounts = {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in objects if o["kind"] == "ServiceAccount"}
    # each account once, named as the intent says; none for the gateway's existing deployment
    assert accounts == {("shop", "shop-web"), ("shop", "shop-cart"), ("shop", "legacy")}
    assert {o["metadata"]["name"] for o in objects if o["kind"] == "Service"} == {
        "web", "cart", "cart-v1", "cart-v2", "legacy"}


def test_a_gateway_binds_to_an_existing_deployment(make_mesh) -> None:
    _, artifacts = _build(make_mesh)
    gateway = _one(_objects(artifacts), "Gateway", "public")
    assert gateway["spec"]["selector"] == {"istio": "ingressgateway"}
    # flavor gateway-api: Istio's manual deployment, through the Service in front of it
    _, artifacts = _build(make_mesh, _files(flavor=("flavor: istio\n    rootNamespace", "flavor: gateway-api\n    rootNamespace")))
    objects = _objects(artifacts)
    gateway = _one(objects, "Gateway", "public")
    assert gateway["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert gateway["spec"]["addresses"] == [
        {"type": "Hostname", "value": "istio-ingressgateway.istio-system.svc.cluster.local"}]
    assert _principals(_one(objects, "AuthorizationPolicy", "web-callers")) == [INGRESS]
    assert "ServiceAccount" not in {o["kind"] for o in objects}


def test_destination_rule_tls_follows_the_effective_mode(make_mesh) -> None:
    objects = _objects(_build(make_mesh)[1])
    # istio/api mesh/v1alpha1/config.proto, enable_auto_mtls (default true): "If the upstream
    # authentication policy is in PERMISSIVE mode, Istio configures clients to use mutual TLS
    # when server sides are capable of accepting mutual TLS traffic. If service DestinationRule
    # exists and has ClientTLSSettings specified, that is always used instead." So PERMISSIVE
    # leaves client TLS out: a forced ISTIO_MUTUAL would break callers of sidecar-less pods.
    modes = {"web": "PERMISSIVE", "cart": "STRICT", "legacy": "DISABLE"}
    client = {name: _one(objects, "DestinationRule", name)["spec"].get("trafficPolicy", {}).get("tls")
              for name in modes}
    assert client == {"web": None, "cart": {"mode": "ISTIO_MUTUAL"}, "legacy": {"mode": "DISABLE"}}
    assert {name: _one(objects, "PeerAuthentication", name)["spec"]["mtls"]["mode"] for name in modes} == modes


def test_mesh_wide_and_namespace_wide_policy_where_the_mesh_owns_them(make_mesh) -> None:
    _, artifacts = _build(make_mesh)
    objects = _objects(artifacts)
    # root namespace configurable: the mesh-wide PeerAuthentication is selector-less in it
    mesh_wide = _one(objects, "PeerAuthentication", "default", "mesh-root")
    assert mesh_wide["spec"] == {"mtls": {"mode": "STRICT"}}
    assert _one(objects, "PeerAuthentication", "default")["spec"] == {"mtls": {"mode": "STRICT"}}
    # istio/api security/v1beta1/authorization_policy.proto: `spec: {}` "allows nothing and
    # effectively denies all requests to workloads in namespace foo"
    assert _one(objects, "AuthorizationPolicy", "allow-nothing")["spec"] == {}
    kustomization = yaml.safe_load(artifacts["kubernetes/k8s/kustomization.yaml"])["resources"]
    assert {"mesh-wide.yaml", "shop/namespace/defaults.yaml"} <= set(kustomization)
    assert MESH_CONFIG_FILE not in kustomization
    # a gateway whose deployment runs in an owned namespace is let in there
    _, artifacts = _build(make_mesh, _files(namespace=("  namespace: istio-system\n", "")))
    ingress = _one(_objects(artifacts), "AuthorizationPolicy", "public-ingress")
    assert ingress["spec"] == {"selector": {"matchLabels": {"istio": "ingressgateway"}}, "action": "ALLOW",
                               "rules": [{}]}
    # Mesh.authorization allow: no default-deny; nothing owned: no namespace or mesh-wide files
    _, artifacts = _build(make_mesh, _files(allow=("authorization: deny", "authorization: allow")))
    assert not [o for o in _objects(artifacts) if o["metadata"]["name"] in ("allow-nothing", "public-ingress")]
    _, artifacts = _build(make_mesh, _files(owned=("namespaces: [shop]\n      meshWide: true", "namespaces: []")))
    assert not [path for path in artifacts if path.endswith(("mesh-wide.yaml", "defaults.yaml"))]


def test_tracing_is_istio_telemetry_at_the_widest_scope_owned(make_mesh) -> None:
    def telemetry(artifacts) -> dict[tuple[str, str], dict]:
        return {(o["metadata"]["namespace"], o["metadata"]["name"]): o["spec"]
                for o in _objects(artifacts) if o["kind"] == "Telemetry"}

    _, artifacts = _build(make_mesh)
    mesh_config = yaml.safe_load(artifacts[f"kubernetes/k8s/{MESH_CONFIG_FILE}"])
    (provider,) = mesh_config["meshConfig"]["extensionProviders"]
    assert provider["opentelemetry"] == {"service": "otel.observability", "port": 4317}
    expected = [{"providers": [{"name": provider["name"]}], "randomSamplingPercentage": 5.0}]
    assert telemetry(artifacts) == {("mesh-root", "mesh-default"): {"tracing": expected}}
    _, artifacts = _build(make_mesh, _files(mesh=("meshWide: true", "meshWide: false")))
    found = telemetry(artifacts)
    assert found[("shop", "default")] == {"tracing": expected}  # the owned namespace
    assert found[("istio-system", "public")] == {"selector": {"matchLabels": {"istio": "ingressgateway"}},
                                                 "tracing": expected}  # the gateway, not in it
    _, artifacts = _build(make_mesh, _files(owned=("namespaces: [shop]\n      meshWide: true", "namespaces: []")))
    found = telemetry(artifacts)
    assert found[("shop", "web")] == {"selector": {"matchLabels": {"app": "web"}}, "tracing": expected}
    assert set(found) == {("shop", "web"), ("shop", "cart"), ("shop", "legacy"), ("istio-system", "public")}


def test_sidecar_egress_admits_infrastructure_and_the_services_own_hosts(make_mesh) -> None:
    objects = _objects(_build(make_mesh, _files(mesh_hosts=("rootNamespace: mesh-root",
                                                            "rootNamespace: mesh-root\n    meshHosts: [mesh-root/*]")))[1])
    (egress,) = _one(objects, "Sidecar", "web")["spec"]["egress"]
    assert egress["hosts"] == [
        "shop/cart.shop.svc.cluster.local", "shop/stock.shop.svc.cluster.local",
        "shop/ledger.shop.svc.cluster.local",
        "mesh-root/*",  # Platform.meshHosts: the control plane's namespace
        "*/otel.observability",  # the trace collector of Mesh.tracing, wherever it runs
        "payments/api.payments.svc.cluster.local",  # Service.egressHosts
    ]
    (cart,) = _one(objects, "Sidecar", "cart")["spec"]["egress"]
    assert cart["hosts"] == ["mesh-root/*", "*/otel.observability"]


def test_what_only_kubernetes_carries_is_an_error_elsewhere(make_mesh) -> None:
    files = _files(egress=("endpoints: [{address: 10.0.0.7}]",
                           "endpoints: [{address: 10.0.0.7}]\negressHosts: [shop/x.example.com]"),
                   gateway=("platform: k8s\ndeployment:", "platform: vms\ndeployment:"))
    compiled = compile_mesh(make_mesh(files))
    assert [(d.code.code, str(d.location)) for d in compiled.report.sorted() if d.code.code == "MESH211"] == [
        ("MESH211", "gateway.yaml:5:1"), ("MESH211", "services.yaml:36:1")]
    # flavor gateway-api binds through the Service in front of the deployment, or not at all
    files = _files(flavor=("flavor: istio\n    rootNamespace", "flavor: gateway-api\n    rootNamespace"),
                   service=("  service: istio-ingressgateway\n", ""))
    compiled = compile_mesh(make_mesh(files))
    assert [(d.code.code, str(d.location)) for d in compiled.report.sorted() if d.code.code == "MESH211"] == [
        ("MESH211", "gateway.yaml:5:1")]


def test_the_cluster_example_passes_the_schema_validators() -> None:
    compiled = compile_mesh(EXAMPLES / "bookinfo-cluster", finish=False)
    assert compiled.graph is not None
    artifacts = {a.path: a.content for a in emit(compiled.graph, compiled.report)}
    objects = _objects(artifacts)
    assert compiled.report.sorted() == []
    # bookinfo's chart owns Services and accounts; the principals are the chart's accounts
    assert not {"Service", "ServiceAccount"} & {o["kind"] for o in objects}
    assert _principals(_one(objects, "AuthorizationPolicy", "ratings-viewer", "bookinfo")) == [
        "cluster.local/ns/bookinfo/sa/bookinfo-reviews"]
    assert _principals(_one(objects, "AuthorizationPolicy", "productpage-viewer", "bookinfo")) == [INGRESS]
    assert _one(objects, "Gateway", "bookinfo-gateway", "bookinfo")["spec"]["selector"] == {"istio": "ingressgateway"}


def test_the_root_namespace_is_not_an_owned_namespace(make_mesh) -> None:
    # Istio: selector-less policy in the root namespace is mesh-wide, so its allow-nothing would
    # deny the whole cluster; the platform says meshWide for that
    compiled = compile_mesh(make_mesh(_files(root=("namespaces: [shop]", "namespaces: [shop, mesh-root]"))))
    assert compiled.graph is None
    assert [(d.code.code, str(d.location)) for d in compiled.report.sorted()] == [("MESH108", "mesh.yaml:12:5")]
