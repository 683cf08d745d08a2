"""AccessPolicy rules on end users, claims and headers, `{unauthenticated: true}`, rules
without `from`, and a Gateway's clients by address (issue 12), meaning docs/intents.md's AccessPolicy text in the evaluator
(`admitted`, `inbound`), through a real Envoy sidecar (a VM's: PERMISSIVE, certificates from
files) with plain-text and mutual-TLS clients and tokens minted here, and in the Istio
AuthorizationPolicy (tests/test_semantics_istio_security.py reads those back against
`admitted`; here their shape and schema).

Sources: Istio AuthorizationPolicy Source (`requestPrincipals`: "A list of request identities
derived from the JWT. The request identity is in the format of `<ISS>/<SUB>`";
`notPrincipals`), Condition (`request.auth.claims[...]`, `request.headers[...]`); Envoy RBAC
Principal (`metadata` on the jwt_authn filter's payload_in_metadata, `header`,
`authenticated`, `not_id`); the filters answer 401 (jwt_authn) before 403 (rbac), the order
Istio writes them in.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from compiler.build import compile_mesh, emit
from compiler.diagnostics import Report
from compiler.evaluate import Peer, Proxy, Request, evaluate, inbound
from compiler.graph import Key
from targets.envoylib import gateway_bootstrap, sidecar_bootstrap
from tests.conftest import require_envoy
from tests.e2e import harness
from tests.e2e.meshes import NAMESPACE, TRUST_DOMAIN, install_svid, mesh_document
from tests.istio_reference import Caller, authorization_allows
from tests.jwt_tokens import Issuer
from tests.k8s_schemas import validation_errors
from tests.pki import TestPki
from tests.semantics import linked, mesh, service, write
from tests.test_semantics_istio_security import documents, k8s, of_kind

ISSUER = Issuer("https://issuer.example")
OTHER_KEY = Issuer(ISSUER.iss)
API = Key(NAMESPACE, "api")
ALLOW = [
    {"from": ["web"], "paths": ["/mesh/*"]},
    {"from": [{"unauthenticated": True}], "paths": ["/public/*"]},
    {"requestPrincipals": [f"{ISSUER.iss}/alice"], "paths": ["/alice/*"]},
    {"requestPrincipals": ["*"], "claims": {"groups": ["admins"]}, "paths": ["/admin/*"]},
    {"headers": {"x-canary": ["yes"]}, "paths": ["/canary"]},
    {"from": ["*"], "requestPrincipals": [f"{ISSUER.iss}/*"], "paths": ["/users/*"]},
]
DENY = [
    {"headers": {"x-debug": ["*"]}},
    {"claims": {"role": ["banned"]}},
]


def policy() -> dict:
    return {"apiVersion": "meshc/v1", "kind": "AccessPolicy", "name": "api-callers", "service": "api",
            "allow": ALLOW, "deny": DENY}


def provider() -> dict:
    return {"name": "issuer", "issuer": ISSUER.iss, "jwks": {"inline": ISSUER.jwks}}


@dataclass(frozen=True)
class Case:
    peer: str  # "web" (mutual TLS with web's SVID) or "plain" (no mesh identity)
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    forged: bool = False


def bearer(token: str) -> tuple[str, str]:
    return ("authorization", f"Bearer {token}")


def cases() -> dict[str, tuple[Case, int]]:
    return {
        "web to its path": (Case("web", "/mesh/a"), 200),
        "plain to web's path": (Case("plain", "/mesh/a"), 403),
        "plain to the public path": (Case("plain", "/public/x"), 200),
        "web to the public path": (Case("web", "/public/x"), 403),
        "alice": (Case("plain", "/alice/x", (bearer(ISSUER.token("alice")),)), 200),
        "bob as alice": (Case("plain", "/alice/x", (bearer(ISSUER.token("bob")),)), 403),
        "nobody as alice": (Case("plain", "/alice/x"), 403),
        "alice, expired": (Case("plain", "/alice/x", (bearer(ISSUER.token("alice", lifetime=-3600)),)), 401),
        "alice, forged": (Case("plain", "/alice/x", (bearer(OTHER_KEY.token("alice")),), forged=True), 401),
        "an admin in a list": (Case("plain", "/admin/x", (bearer(ISSUER.token("carol", groups=["ops", "admins"])),)),
                               200),
        "an admin as a string": (Case("plain", "/admin/x", (bearer(ISSUER.token("carol", groups="admins")),)), 200),
        "not an admin": (Case("plain", "/admin/x", (bearer(ISSUER.token("carol", groups=["ops"])),)), 403),
        "an admin without a token": (Case("plain", "/admin/x"), 403),
        "the canary header": (Case("plain", "/canary", (("x-canary", "yes"),)), 200),
        "another canary value": (Case("plain", "/canary", (("x-canary", "no"),)), 403),
        "a mesh user": (Case("web", "/users/x", (bearer(ISSUER.token("bob")),)), 200),
        "a user without a mesh identity": (Case("plain", "/users/x", (bearer(ISSUER.token("bob")),)), 403),
        "a mesh identity without a user": (Case("web", "/users/x"), 403),
        "debugging is denied": (Case("web", "/mesh/a", (("x-debug", "1"),)), 403),
        "a banned user": (Case("plain", "/alice/x", (bearer(ISSUER.token("alice", role="banned")),)), 403),
    }


def evaluator_status(graph, case: Case, port: int) -> int:
    peer = Peer(service=Key(NAMESPACE, "web")) if case.peer == "web" else Peer()
    decision = inbound(graph, API, peer, Request("api", case.path, headers=case.headers, forged_token=case.forged),
                       port)
    return 200 if decision.action == "forward" else decision.status


@pytest.mark.parametrize("name", sorted(cases()))
def test_the_evaluator_admits_as_written(tmp_path_factory, name) -> None:
    graph = sidecar_mesh(tmp_path_factory.mktemp("rules"), port=8080, app_port=9000)
    case, status = cases()[name]
    assert evaluator_status(graph, case, 8080) == status


def sidecar_mesh(root: Path, port: int, app_port: int, cert_root: Path | None = None, address: str = "10.0.0.9"):
    documents_ = [
        mesh_document(cert_root or root / "certs", suppress=[]),
        {"apiVersion": "meshc/v1", "kind": "Service", "name": "api", "platform": "vms", "mtls": "PERMISSIVE",
         "ports": [{"name": "http", "port": port, "protocol": "http", "targetPort": app_port}],
         "endpoints": [{"address": address}], "jwt": [provider()]},
        {"apiVersion": "meshc/v1", "kind": "Service", "name": "web", "platform": "vms", "calls": ["api"],
         "ports": [{"name": "http", "port": 8080, "protocol": "http"}], "endpoints": [{"address": "10.0.0.8"}]},
        policy(),
    ]
    return linked(root / "mesh", documents_)


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    """api's sidecar under real Envoy, PERMISSIVE, in front of a backend; web's SVID for the
    mutual TLS client."""
    binary = require_envoy()
    workdir = tmp_path_factory.mktemp("access-rules")
    cert_root = workdir / "certs"
    pki = TestPki()
    address = harness.LoopbackAddresses().next()
    port = harness.free_port(address)
    backend = harness.Backend.start("api")
    envoy = None
    try:
        graph = sidecar_mesh(workdir, port, backend.port, cert_root, address)
        report = Report()
        bootstrap = sidecar_bootstrap(graph, graph.services[API], report, address)
        assert report.diagnostics == []
        admin = harness.free_port()
        bootstrap["admin"] = {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}}
        # the inbound listener is what is under test; the outbound one would need web's ports
        bootstrap["static_resources"]["listeners"] = [
            entry for entry in bootstrap["static_resources"]["listeners"] if entry["name"].startswith("inbound|")]
        install_svid(pki, cert_root, "api")
        client = pki.svid(f"spiffe://{TRUST_DOMAIN}/ns/{NAMESPACE}/sa/web")
        (workdir / "web.pem").write_bytes(client.cert_pem)
        harness.write_private(workdir / "web-key.pem", client.key_pem)
        envoy = harness.start_envoy(binary, "api", bootstrap, workdir / "envoy", admin)
        envoy.wait_ready(harness.configured_listeners(bootstrap))
        yield graph, bootstrap, address, port, pki, workdir
    finally:
        if envoy is not None:
            harness.stop_envoy(envoy)
        backend.stop()


def send(address: str, port: int, case: Case, pki: TestPki, workdir: Path) -> int:
    connection = http.client.HTTPConnection(address, port, timeout=5)
    if case.peer == "web":
        context = ssl.create_default_context(cadata=pki.ca_pem.decode())
        context.check_hostname = False  # an SVID names a SPIFFE ID, not a host
        context.load_cert_chain(workdir / "web.pem", workdir / "web-key.pem")
        connection.sock = context.wrap_socket(socket.create_connection((address, port), timeout=5))
    try:
        connection.request("GET", case.path, headers={"host": "api", **dict(case.headers)})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_envoy_admits_as_the_evaluator_does(running) -> None:
    graph, _, address, port, pki, workdir = running
    written = cases()
    seen = {name: send(address, port, case, pki, workdir) for name, (case, _) in written.items()}
    expected = {name: evaluator_status(graph, case, port) for name, (case, _) in written.items()}
    assert seen == expected
    assert expected == {name: status for name, (_, status) in written.items()}


def test_rules_become_rbac_principals_after_jwt_authn(running) -> None:
    """The sidecar's inbound chain: jwt_authn, RBAC deny, RBAC allow, router; an end user is a
    metadata matcher on jwt_authn's payload, `{unauthenticated: true}` the negation of `"*"`."""
    _, bootstrap, *_ = running
    [listener] = bootstrap["static_resources"]["listeners"]
    chain = listener["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]
    assert [f["name"] for f in chain] == ["envoy.filters.http.jwt_authn", "envoy.filters.http.rbac",
                                          "envoy.filters.http.rbac", "envoy.filters.http.router"]
    allow = chain[2]["typed_config"]["rules"]["policies"]
    [public] = allow["shop/api-callers/allow/1"]["principals"]
    assert public == {"not_id": {"authenticated": {"principal_name": {"prefix": f"spiffe://{TRUST_DOMAIN}/"}}}}
    [alice] = allow["shop/api-callers/allow/2"]["principals"]
    path = [step["key"] for step in alice["and_ids"]["ids"][0]["and_ids"]["ids"][1]["metadata"]["path"]]
    assert path == ["payload", "sub"]


# ---------------------------------------------------------------------------------------------
# Istio and the language


@pytest.mark.parametrize("flavor", ["istio", "gateway-api"])
def test_authorization_policies_carry_end_users_claims_and_headers(tmp_path: Path, flavor) -> None:
    graph = linked(tmp_path, [mesh(k8s(flavor), authorization="deny"),
                              service("web", platform="k8s", calls=["api"]),
                              {**service("api", platform="k8s"), "jwt": [provider()]}, policy()])
    policies = {d["metadata"]["name"]: d["spec"] for d in of_kind(documents(graph), "AuthorizationPolicy")
                if d["metadata"]["name"].startswith("api-callers")}
    assert [e for spec in policies.values()
            for e in validation_errors({"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
                                        "metadata": {"name": "x", "namespace": "shop"}, "spec": spec})] == []
    rules = policies["api-callers"]["rules"]
    assert rules[1]["from"] == [{"source": {"notPrincipals": ["*"]}}]
    assert rules[2]["from"] == [{"source": {"requestPrincipals": [f"{ISSUER.iss}/alice"]}}]
    assert rules[3]["when"] == [{"key": "request.auth.claims[groups]", "values": ["admins"]}]
    assert rules[4] == {"to": [{"operation": {"paths": ["/canary"]}}],
                        "when": [{"key": "request.headers[x-canary]", "values": ["yes"]}]}
    assert rules[5]["from"] == [{"source": {"principals": ["*"], "requestPrincipals": [f"{ISSUER.iss}/*"]}}]
    assert policies["api-callers-deny"]["rules"][0] == {"when": [{"key": "request.headers[x-debug]",
                                                                  "values": ["*"]}]}


@pytest.mark.parametrize(("rule", "words"), [
    ({"requestPrincipals": ["alice"]}, "requestPrincipals"),
    ({"requestPrincipals": ["https://i/a*"]}, "requestPrincipals"),
    ({"headers": {"x-a": []}}, "headers"),
    ({"headers": {"x-a": ["a*b"]}}, "headers"),
    ({"from": [{"unauthenticated": False}]}, "unauthenticated"),
    ({"from": []}, "from"),
])
def test_rules_that_mean_nothing_are_located_errors(tmp_path: Path, rule, words) -> None:
    root = write(tmp_path, [mesh(), service("web", calls=["api"]), service("api"),
                            {**policy(), "allow": [rule], "deny": []}])
    errors = [d for d in compile_mesh(root).report.sorted() if d.severity == "error"]
    assert errors and errors[0].code.code.startswith("MESH1") and errors[0].location.line > 1
    assert any(words in d.message or words in str(d.location) for d in errors), [(d.message, d.location) for d in errors]


def test_a_deny_rule_on_end_users_does_not_deny_a_declared_caller(tmp_path: Path) -> None:
    """MESH310 (a declared call the callee denies) counts only whole denials: a deny rule that
    looks at end users or headers denies some requests, not the call."""
    graph = linked(tmp_path, [mesh(), service("web", calls=["api"]), service("api"),
                              {**policy(), "allow": [{"from": ["web"]}],
                               "deny": [{"from": ["web"], "requestPrincipals": ["*"]}]}])
    assert graph.policies_for(Key("shop", "api"))


# ---------------------------------------------------------------------------------------------
# A Gateway's clients by address: ipBlocks (the connection's source) and remoteIpBlocks (the
# original client behind trustedProxies). Istio Source: "ipBlocks: A list of IP blocks,
# populated from the source address of the IP packet"; "remoteIpBlocks: A list of IP blocks,
# populated from X-Forwarded-For header or proxy protocol. To make use of this field, you must
# configure the numTrustedProxies field of the gatewayTopology". Envoy: with use_remote_address
# and xff_num_trusted_hops N "the trusted client address is the Nth address from the right end
# of XFF. (If the XFF contains fewer than N addresses, Envoy falls back to using the immediate
# downstream connection's source address"; RBAC `direct_remote_ip` and `remote_ip`.

PARTNERS = "203.0.113.0/24"
BANNED = "203.0.113.66"


def gateway_policy(office: str) -> dict:
    return {"apiVersion": "meshc/v1", "kind": "AccessPolicy", "name": "edge-clients", "gateway": "edge",
            "allow": [{"from": [{"ipBlocks": [office]}]},
                      {"from": [{"remoteIpBlocks": [PARTNERS]}], "paths": ["/partners/*"]},
                      {"from": [{"unauthenticated": True}], "paths": ["/public/*"]}],
            "deny": [{"from": [{"remoteIpBlocks": [f"{BANNED}/32"]}]}]}


def gateway_cases(office_client: str, outsider: str) -> dict[str, tuple[tuple[str, str, str | None], int]]:
    """(client address, path, X-Forwarded-For) -> status."""
    return {
        "the office": ((office_client, "/orders", None), 200),
        "an outsider": ((outsider, "/orders", None), 403),
        "an outsider, public": ((outsider, "/public/x", None), 200),
        "a partner behind the proxy": ((outsider, "/partners/x", "203.0.113.7"), 200),
        "a partner's forged entry": ((outsider, "/partners/x", "203.0.113.7, 198.51.100.2"), 403),
        "a partner without the proxy": ((outsider, "/partners/x", None), 403),
        "a banned partner": ((outsider, "/partners/x", BANNED), 403),
        "banned from the office": ((office_client, "/orders", BANNED), 403),
    }


def gateway_mesh(root: Path, prefix: str, port: int, backend_port: int, flavor: str | None = None):
    platform = "k8s" if flavor else "vms"
    web = {"apiVersion": "meshc/v1", "kind": "Service", "name": "web", "platform": platform, "mtls": "DISABLE",
           "ports": [{"name": "http", "port": backend_port, "protocol": "http"}],
           **({} if flavor else {"endpoints": [{"address": "127.0.0.1"}]})}
    edge = {"apiVersion": "meshc/v1", "kind": "Gateway", "name": "edge", "platform": platform, "trustedProxies": 1,
            "listeners": [{"name": "plain", "port": port, "protocol": "http", "hosts": ["*"]}]}
    route_ = {"apiVersion": "meshc/v1", "kind": "Route", "name": "edge", "gateway": "edge", "hosts": ["*"],
              "rules": [{"to": [{"service": "web"}]}]}
    return linked(root, [mesh(k8s(flavor)) if flavor else mesh(), web, edge, route_, gateway_policy(f"{prefix}.16/28")],
                  allowed=("MESH469",))


def gateway_request(case: tuple[str, str, str | None], port: int) -> Request:
    address, path, forwarded = case
    headers = (("x-forwarded-for", forwarded),) if forwarded else ()
    return Request("shop.example.test", path, port=port, headers=headers, client_address=address)


def test_the_evaluator_admits_gateway_clients_by_address(tmp_path: Path) -> None:
    graph = gateway_mesh(tmp_path, "127.9.9", 8080, 9000)
    for name, (case, status) in gateway_cases("127.9.9.17", "127.9.9.40").items():
        decision = evaluate(graph, Proxy(gateway=Key(NAMESPACE, "edge")), gateway_request(case, 8080))
        assert (200 if decision.action == "forward" else decision.status) == status, name


def test_envoy_admits_gateway_clients_as_the_evaluator_does(tmp_path: Path) -> None:
    """Clients connect from addresses of their own on loopback (the office's inside the
    block, the outsider's not), through the gateway's real Envoy."""
    binary = require_envoy()
    addresses = harness.LoopbackAddresses()
    gateway_address, office, outsider = addresses.next(), f"{addresses.prefix}.17", f"{addresses.prefix}.40"
    port = harness.free_port(gateway_address)
    backend = harness.Backend.start("web")
    envoy = None
    try:
        graph = gateway_mesh(tmp_path, addresses.prefix, port, backend.port)
        report = Report()
        bootstrap = gateway_bootstrap(graph, graph.gateways[Key(NAMESPACE, "edge")], report, gateway_address)
        assert report.diagnostics == []
        admin = harness.free_port()
        bootstrap["admin"] = {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}}
        envoy = harness.start_envoy(binary, "edge", bootstrap, tmp_path / "envoy", admin)
        envoy.wait_ready(harness.configured_listeners(bootstrap))
        seen, expected = {}, {}
        for name, (case, status) in gateway_cases(office, outsider).items():
            request = gateway_request(case, port)
            raw = socket.create_connection((gateway_address, port), timeout=5, source_address=(case[0], 0))
            connection = http.client.HTTPConnection(gateway_address, port, timeout=5)
            connection.sock = raw
            try:
                connection.request("GET", request.path, headers={"host": request.host, **dict(request.headers)})
                response = connection.getresponse()
                response.read()
                seen[name] = response.status
            finally:
                connection.close()
            decision = evaluate(graph, Proxy(gateway=Key(NAMESPACE, "edge")), request)
            expected[name] = 200 if decision.action == "forward" else decision.status
            assert expected[name] == status, name
        assert seen == expected
    finally:
        if envoy is not None:
            harness.stop_envoy(envoy)
        backend.stop()


@pytest.mark.parametrize("flavor", ["istio", "gateway-api"])
def test_gateway_authorization_policies_admit_what_the_evaluator_admits(tmp_path: Path, flavor) -> None:
    """The Istio reader over the gateway's AuthorizationPolicies (its remote address computed
    as numTrustedProxies 1 gives it), against the evaluator; trustedProxies itself is MESH469."""
    graph = gateway_mesh(tmp_path, "10.1.2", 80, 8080, flavor=flavor)
    report = Report()
    docs = [doc for artifact in emit(graph, report, ["kubernetes"]) if artifact.path.endswith(".yaml")
            for doc in yaml.safe_load_all(artifact.content) if doc and "spec" in doc]
    policies = [d for d in of_kind(docs, "AuthorizationPolicy") if d["metadata"]["name"].startswith("edge-clients")]
    assert [e for p in policies for e in validation_errors(p)] == []
    assert [d.code.code for d in report.diagnostics if d.code.code == "MESH469"] == ["MESH469"]
    selects = (lambda p: p["spec"].get("targetRefs") == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "edge"}]) if flavor == "gateway-api" \
        else (lambda p: p["spec"]["selector"] == {"matchLabels": {"app": "edge"}})
    assert policies and all(selects(p) for p in policies)
    for name, (case, status) in gateway_cases("10.1.2.17", "10.1.2.40").items():
        request = gateway_request(case, 80)
        forwarded = request.header("x-forwarded-for")
        remote = forwarded.split(",")[-1].strip() if forwarded else request.client_address
        caller = Caller(None, None, "GET", request.path, 80, address=request.client_address, remote_address=remote)
        istio = authorization_allows([{**p, "spec": {k: v for k, v in p["spec"].items() if k != "targetRefs"}}
                                      for p in policies], NAMESPACE, {"app": "edge"}, caller)
        decision = evaluate(graph, Proxy(gateway=Key(NAMESPACE, "edge")), request)
        assert istio == (decision.action == "forward") == (status == 200), name


def test_addresses_name_gateway_clients_and_identities_service_callers(tmp_path: Path) -> None:
    for policy_, words in (({**policy(), "allow": [{"from": [{"ipBlocks": ["10.0.0.0/8"]}]}], "deny": []},
                            "client addresses"),
                           ({**gateway_policy("10.0.0.0/8"), "allow": [{"from": ["web"]}], "deny": []},
                            "mesh identity")):
        root = write(tmp_path / words.split()[0], [
            mesh(), service("web", calls=["api"]), service("api"),
            {"apiVersion": "meshc/v1", "kind": "Gateway", "name": "edge", "platform": "vms",
             "listeners": [{"name": "plain", "port": 80, "protocol": "http", "hosts": ["*"]}]}, policy_])
        [error] = [d for d in compile_mesh(root).report.sorted() if d.severity == "error"]
        assert (error.code.code, words in error.message, error.location.line > 1) == ("MESH218", True, True)
    bad = {**gateway_policy("10.0.0.300/8")}
    root = write(tmp_path / "bad", [mesh(), service("web"), {"apiVersion": "meshc/v1", "kind": "Gateway",
                                                             "name": "edge", "platform": "vms", "listeners": [
                                                                 {"name": "p", "port": 80, "protocol": "http",
                                                                  "hosts": ["*"]}]}, bad])
    errors = [d for d in compile_mesh(root).report.sorted() if d.severity == "error"]
    assert errors and "does not appear to be an IPv4 or IPv6 network" in errors[0].message
