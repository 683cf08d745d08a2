"""The Istio flavour's ingress Gateway carries docs/intents.md's semantics: the emitted Gateway
and the VirtualServices bound to it, read by tests/istio_reference.py (`gateway_decide`),
answer requests as the reference evaluator does."""

from __future__ import annotations

from pathlib import Path

import yaml

from compiler.build import emit
from compiler.diagnostics import Report
from compiler.evaluate import Decision, Proxy, Request, canonical_location, evaluate
from tests.istio_reference import Outcome, gateway_decide
from tests.k8s_schemas import validation_errors
from tests.semantics import gateway, key, linked, mesh, route, service

K8S = {"name": "k8s", "kind": "kubernetes", "flavor": "istio"}
TERMINATE = {"mode": "terminate", "certificate": "edge-cert"}


def istio_gateway_objects(root: Path, listeners: list[dict], routes: list[dict], report: Report,
                          allowed: tuple[str, ...] = ()):
    graph = linked(root, [mesh(K8S), *(service(f"v{n}", platform="k8s") for n in (1, 2)),
                          gateway("edge", listeners, platform="k8s"), *routes], allowed=allowed)
    documents = [doc for artifact in emit(graph, report, ["kubernetes"]) if artifact.path.endswith(".yaml")
                 for doc in yaml.safe_load_all(artifact.content) if doc]
    [istio_gateway] = [d for d in documents if d["kind"] == "Gateway"]
    services = [d for d in documents if d["kind"] == "VirtualService" and d["spec"].get("gateways")]
    return graph, istio_gateway, services


def outcome_of(outcome: Outcome) -> tuple:
    if outcome.action == "redirect":
        return ("redirect", outcome.status, canonical_location(outcome.location))
    if outcome.action == "forward":
        return ("forward", sorted((host.split(".")[0], subset) for host, subset, *_ in outcome.destinations),
                outcome.path)
    return ("undefined",) if outcome.action == "undefined" else ("404",)


def decision_of(decision: Decision) -> tuple:
    if decision.action == "redirect":
        return ("redirect", decision.status, canonical_location(decision.location))
    if decision.action == "forward":
        return ("forward", sorted((t.service.name, t.version) for t in decision.backends), decision.path)
    return ("404",)


def disagreements(graph, istio_gateway: dict, services: list[dict], requests: list[Request]) -> list:
    edge = Proxy(gateway=key("edge"))
    return [(sent, istio, meshc) for sent in requests
            if (istio := outcome_of(gateway_decide(istio_gateway, services, sent)))
            != (meshc := decision_of(evaluate(graph, edge, sent)))]


def test_https_redirect_sends_a_host_with_a_port_to_443_on_istio(tmp_path: Path) -> None:
    """docs/intents.md (Ingress requests): `httpsRedirect` answers `301` with
    `https://<host without port><path>` (Gateway API HTTPRequestRedirectFilter: "the redirect
    port MUST be the well-known port associated with the redirect scheme"). Istio's Server
    `tls.httpsRedirect` is Envoy's `require_tls`, which keeps `:8080` from `Host: a:8080`; the
    flavour writes instead a VirtualService rule `redirect: {scheme: https, port: 443}`
    (istio/api networking/v1alpha3/virtual_service.proto, HTTPRedirect.port: "On a redirect,
    overwrite the port portion of the URL with this value") on the listener's port, first in
    a Route whose hosts the listener serves, alone for its other hosts."""
    report = Report()
    graph, istio_gateway, services = istio_gateway_objects(tmp_path, [
        {"name": "plain", "port": 80, "protocol": "http", "hosts": ["*.example.com"], "httpsRedirect": True},
        {"name": "secure", "port": 443, "protocol": "https", "hosts": ["*.example.com"], "tls": TERMINATE},
    ], [route("shop", [{"to": [{"service": "v1"}]}], gateway="edge", hosts=["a.example.com"])], report)
    assert [d.code.code for d in report.diagnostics if d.severity != "info"] == []
    for document in (istio_gateway, *services):
        assert validation_errors(document) == []  # the Istio 1.30 CRDs accept what the reader reads
    requests = [Request(host, path, port=80) for host in ("a.example.com", "a.example.com:8080", "x.example.com:8080",
                                                          "x.example.com", "example.com")
                for path in ("/", "/p?q=1")]
    requests += [Request(host, "/p", port=443, sni=host, scheme="https") for host in ("a.example.com", "x.example.com")]
    assert disagreements(graph, istio_gateway, services, requests) == []
    assert outcome_of(gateway_decide(istio_gateway, services, Request("a.example.com:8080", "/p", port=80))) == (
        "redirect", 301, "https://a.example.com/p")
    assert outcome_of(gateway_decide(istio_gateway, services, Request("a.example.com", "/p", port=443))) == (
        "forward", [("v1", None)], "/p")
    assert all("tls" not in server or "httpsRedirect" not in server["tls"] for server in istio_gateway["spec"]["servers"])


def test_https_redirect_beside_a_plain_listener_a_route_reaches_is_reported_on_istio(tmp_path: Path) -> None:
    """One rule matching on the port cannot redirect `a.example.com` and forward `b.example.com`
    of one Route on one port; the listener's `httpsRedirect` is reported (MESH427) rather than
    emitted as something else."""
    report = Report()
    istio_gateway_objects(tmp_path, [
        {"name": "plain", "port": 80, "protocol": "http", "hosts": ["a.example.com"], "httpsRedirect": True},
        {"name": "open", "port": 80, "protocol": "http", "hosts": ["*.example.com"]},
    ], [route("shop", [{"to": [{"service": "v1"}]}], gateway="edge", hosts=["*.example.com"])], report,
        allowed=("MESH351",))
    [warning] = [d for d in report.diagnostics if d.code.code == "MESH427"]
    assert "listener 'plain' of Gateway shop/edge" in warning.message and "Route shop/shop" in warning.message
    assert warning.location.line > 1
