"""Kubernetes security and scoping output against the semantics, not snapshots: a reader of the
emitted PeerAuthentications, AuthorizationPolicies, Sidecars, DestinationRules and
ServiceEntries (tests/istio_reference.py, written from Istio's reference) must give what the
reference evaluator and the linked graph give. A wrong mode, path, principal, subset name,
egress host or TLS origination port in the output fails here even after `--snapshot-update`.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.build import emit
from compiler.diagnostics import Report
from compiler.evaluate import EndUser, Peer, Proxy, Request, admitted, evaluate
from compiler.graph import Key, MeshGraph
from tests.istio_reference import (
    Caller,
    authorization_allows,
    decide,
    peer_authentication_mode,
    sidecar_reaches,
)
from tests.k8s_schemas import validation_errors
from tests.semantics import NS, key, linked, mesh, route, service

FIXTURES = Path(__file__).parent / "fixtures" / "targets" / "kubernetes"
FLAVORS = ["istio", "gateway-api"]


def documents(graph: MeshGraph) -> list[dict]:
    return [doc for artifact in emit(graph, Report(), ["kubernetes"]) if artifact.path.endswith(".yaml")
            for doc in yaml.safe_load_all(artifact.content) if doc and "spec" in doc]


def of_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def k8s(flavor: str = "istio", **fields) -> dict:
    return {"name": "k8s", "kind": "kubernetes", "flavor": flavor, **fields}


# ---------------------------------------------------------------------------------------------
# AuthorizationPolicy: generated AccessPolicies, every caller, method, path and port

PATHS = ["/a", "/a/b", "/b", "/b/c", "/admin/x", "/"]
source = st.sampled_from(["web", "ops/batch", {"namespace": "ops"}, {"gateway": "edge"}, "*",
                          {"unauthenticated": True}])
ISSUER = "https://issuer.example"
value_pattern = st.sampled_from(["ops", "admin", "ad*", "*ps", "*"])
access_rule = st.fixed_dictionaries({}, optional={
    "from": st.lists(source, min_size=1, max_size=2, unique_by=str),
    "methods": st.lists(st.sampled_from(["GET", "POST"]), min_size=1, max_size=2, unique=True),
    "paths": st.lists(st.sampled_from(["/a", "/b/*", "/admin/*", "*"]), min_size=1, max_size=2, unique=True),
    "ports": st.just([8080]),
    "requestPrincipals": st.lists(st.sampled_from(["*", f"{ISSUER}/*", f"{ISSUER}/alice", "other.example/bob"]),
                                  min_size=1, max_size=2, unique=True),
    "claims": st.dictionaries(st.sampled_from(["groups", "role"]), st.lists(value_pattern, min_size=1, max_size=2,
                                                                              unique=True), min_size=1, max_size=2),
    "headers": st.dictionaries(st.sampled_from(["x-team", "X-Canary"]), st.lists(value_pattern, min_size=1,
                                                                                 max_size=2, unique=True),
                               min_size=1, max_size=1),
})
PEERS = [Peer(service=key("web")), Peer(service=Key("ops", "batch")), Peer(gateway=key("edge")), Peer()]
# end users of a valid token (None: no token), with string and list claims
USERS = [None, EndUser(ISSUER, "alice", {"groups": ["ops", "dev"]}), EndUser(ISSUER, "bob", {"role": "admin"}),
         EndUser("other.example", "bob", {"groups": "admins", "role": 7})]
HEADERS = [(), (("x-team", "ops"),), (("x-canary", "admin"), ("x-team", "dev"), ("x-team", "ops"))]


def principal(graph, peer: Peer) -> Caller:
    """The caller as Istio's sidecar sees it: the peer certificate's principal and namespace,
    from the account its workload runs as (docs/intents.md, Identities: on flavor gateway-api
    Istio's own deployment of a Gateway runs as `<gateway>-istio`)."""
    workload = peer.service or peer.gateway
    if workload is None:
        return Caller(None, None)
    account = graph.identity(workload)
    return Caller(f"cluster.local/ns/{account.namespace}/sa/{account.name}", account.namespace)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(allow=st.lists(access_rule, max_size=2), deny=st.lists(access_rule, max_size=2),
       authorization=st.sampled_from(["allow", "deny"]), flavor=st.sampled_from(FLAVORS))
def test_authorization_policies_admit_what_the_evaluator_admits(tmp_path_factory, allow, deny, authorization,
                                                                 flavor) -> None:
    """Istio AuthorizationPolicy: "If there are any DENY policies that match the request, deny
    the request. If there are no ALLOW policies for the workload, allow the request. If any of
    the ALLOW policies match the request, allow the request. Deny the request." Principals are
    `<trust domain>/ns/<namespace>/sa/<service account>`; request principals `<iss>/<sub>` of
    the verified JWT, claims and headers are `when` conditions (issue 12: end users, claims,
    headers, `{unauthenticated: true}`, rules without `from`)."""
    documents_ = [mesh(k8s(flavor), authorization=authorization),
                  service("web", platform="k8s", calls=["api"]), service("api", platform="k8s"),
                  {**service("batch", platform="k8s", calls=["shop/api"]), "namespace": "ops"},
                  {"apiVersion": "meshc/v1", "kind": "Gateway", "name": "edge", "platform": "k8s",
                   "listeners": [{"name": "web", "port": 80, "protocol": "http", "hosts": ["a.example.com"]}]}]
    if allow or deny:
        documents_.append({"apiVersion": "meshc/v1", "kind": "AccessPolicy", "name": "api-callers",
                           "service": "api", "allow": allow, "deny": deny})
    graph = linked(tmp_path_factory.mktemp("authz"), documents_, allowed=("MESH310", "MESH311", "MESH312"))
    policies = of_kind(documents(graph), "AuthorizationPolicy")
    assert [e for p in policies for e in validation_errors(p)] == []
    for peer in PEERS:
        caller = principal(graph, peer)
        for method, path, port, user, headers in itertools.product(("GET", "POST"), PATHS, (8080, 9090), USERS,
                                                                   HEADERS):
            seen = Caller(caller.principal, caller.namespace, method, path, port,
                          user.principal if user else None, dict(user.claims) if user else None, headers)
            istio = authorization_allows(policies, NS, {"app": "api"}, seen)
            assert istio == admitted(graph, key("api"), peer, method, path, port, headers, user), seen


# ---------------------------------------------------------------------------------------------
# PeerAuthentication


@pytest.mark.parametrize("flavor", FLAVORS)
@pytest.mark.parametrize(("mesh_mode", "override"), [("STRICT", None), ("PERMISSIVE", None), ("STRICT", "DISABLE"),
                                                     ("DISABLE", "PERMISSIVE"), ("PERMISSIVE", "STRICT")])
def test_peer_authentication_gives_each_workload_its_effective_mode(tmp_path: Path, flavor, mesh_mode,
                                                                      override) -> None:
    """docs/intents.md: `Service.mtls` overrides `Mesh.mtls`. Istio PeerAuthentication: the
    policy whose selector matches the workload wins over namespace- and mesh-wide ones."""
    extra = {"mtls": override} if override else {}
    graph = linked(tmp_path, [mesh(k8s(flavor), mtls=mesh_mode), service("web", platform="k8s", calls=["api"]),
                              service("api", platform="k8s", **extra)], allowed=("MESH320", "MESH321", "MESH322"))
    policies = of_kind(documents(graph), "PeerAuthentication")
    for name in ("web", "api"):
        expected = graph.services[key(name)].mtls
        assert expected == (override if name == "api" and override else mesh_mode)
        assert peer_authentication_mode(policies, NS, {"app": name}) == expected


# ---------------------------------------------------------------------------------------------
# Sidecar egress and the host the caller's Envoy dials


@pytest.mark.parametrize("flavor", FLAVORS)
def test_sidecar_egress_admits_the_host_in_the_callee_cluster_domain(tmp_path: Path, flavor) -> None:
    """Issue 11: a service on one kubernetes platform calling one on another got a Sidecar
    egress host in the caller's cluster domain while its Envoy dialled the callee's.
    docs/intents.md (Platforms): a kubernetes service is `<name>.<namespace>.svc.<clusterDomain>`
    of its own platform; Istio Sidecar egress `hosts` are `namespace/dnsName`."""
    text = (FIXTURES / "callee-on-another-cluster" / "mesh.yaml").read_text()
    (tmp_path / "mesh.yaml").write_text(text.replace("kind: kubernetes,", f"kind: kubernetes, flavor: {flavor},"))
    from compiler.build import compile_mesh

    graph = compile_mesh(tmp_path).graph
    assert graph is not None
    [sidecar] = [d for d in of_kind(documents(graph), "Sidecar") if d["metadata"]["name"] == "front"]
    assert sidecar_reaches(sidecar, "shop", "api.shop.svc.west.example")
    assert not sidecar_reaches(sidecar, "shop", "api.shop.svc.east.example")


# ---------------------------------------------------------------------------------------------
# Subsets and weights: the VirtualService's destinations resolve to the versions' workloads


@pytest.mark.parametrize("flavor", ["istio"])
def test_virtual_service_subsets_select_the_version_workloads(tmp_path: Path, flavor) -> None:
    """Istio DestinationRule Subset: "labels ... apply a filter over the endpoints of a service
    in the service registry"; a VirtualService destination's `subset` names one. Each
    destination the reader chooses selects exactly the pods of the version the evaluator sends
    the request to, with its weight."""
    graph = linked(tmp_path, [
        mesh(k8s(flavor)), service("web", platform="k8s", calls=["api"]),
        {**service("api", platform="k8s"), "versions": {"v1": {"labels": {"track": "stable"}},
                                                       "v2": {"labels": {"track": "canary", "tier": "b"}}}},
        route("api", [{"match": [{"headers": {"x-canary": {"exact": "1"}}}], "to": [{"version": "v2"}]},
                      {"to": [{"version": "v1", "weight": 90}, {"version": "v2", "weight": 10}]}], service="api")])
    docs = documents(graph)
    [virtual_service] = [d for d in of_kind(docs, "VirtualService") if d["metadata"]["name"] == "api"]
    rules = {d["spec"]["host"]: d["spec"] for d in of_kind(docs, "DestinationRule")}
    for request in (Request("api", "/", headers=(("x-canary", "1"),)), Request("api", "/")):
        decision = evaluate(graph, Proxy(service=key("web")), request)
        chosen = decide(virtual_service["spec"], request)
        selected = []
        for host, subset, port, weight in chosen.destinations:
            [labels] = [s["labels"] for s in rules[host].get("subsets", []) if s["name"] == subset]
            selected.append((labels, port, weight))
        expected = [({"app": "api", **graph.services[t.service].spec.versions[t.version].labels}, t.port, t.weight)
                    for t in decision.backends]
        assert sorted(map(repr, selected)) == sorted(map(repr, expected))


# ---------------------------------------------------------------------------------------------
# ExternalService TLS origination per port


@pytest.mark.parametrize("flavor", FLAVORS)
@pytest.mark.parametrize("form", ["per-port", "service-wide"])
def test_service_entry_and_destination_rule_originate_where_the_evaluator_does(tmp_path: Path, flavor, form) -> None:
    """Istio's egress TLS origination task: ServiceEntry port 80 `targetPort: 443` and a
    DestinationRule `portLevelSettings` port 80 `tls: {mode: SIMPLE}`; ServicePort.targetPort:
    "The port number on the endpoint where the traffic will be received". For each port the
    application calls, the reader's upstream port and TLS agree with the evaluator's."""
    ports = ([{"name": "http", "port": 80, "protocol": "http", "targetPort": 443, "tls": {"originate": True}},
              {"name": "https", "port": 443, "protocol": "tls"}, {"name": "plain", "port": 8080, "protocol": "http"}]
             if form == "per-port" else
             [{"name": "http", "port": 80, "protocol": "http"}, {"name": "https", "port": 443, "protocol": "tls"}])
    external = {"apiVersion": "meshc/v1", "kind": "ExternalService", "name": "cnn", "hosts": ["edition.cnn.com"],
                "ports": ports, **({"tls": {"originate": True}} if form == "service-wide" else {})}
    graph = linked(tmp_path, [mesh(k8s(flavor)), service("web", platform="k8s", calls=["cnn"]), external])
    docs = documents(graph)
    [entry] = of_kind(docs, "ServiceEntry")
    rules = of_kind(docs, "DestinationRule")
    assert [e for d in (entry, *rules) for e in validation_errors(d)] == []
    levels = {s["port"]["number"]: s["tls"]["mode"] for r in rules if r["spec"]["host"] == "edition.cnn.com"
              for s in r["spec"].get("trafficPolicy", {}).get("portLevelSettings", [])}
    for port in entry["spec"]["ports"]:
        upstream = port.get("targetPort", port["number"])
        originates = levels.get(port["number"]) == "SIMPLE"
        if port["protocol"] == "HTTP":
            decision = evaluate(graph, Proxy(service=key("web")), Request(f"edition.cnn.com:{port['number']}"))
            assert (upstream, originates) == (decision.upstream_port, decision.tls_sni is not None)
        else:
            assert (upstream, originates) == (port["number"], False)  # the application's own TLS
    assert levels == {80: "SIMPLE"}
