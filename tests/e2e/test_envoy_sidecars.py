"""Sidecar bootstraps under real Envoy: routing, resilience, authorization, mTLS, rate limiting.

Every workload runs on a static vm platform at its own 127.x address (the endpoint written in
its intent), with its own sidecar ports; applications are small backends on 127.0.0.1. Callers
are driven the way an application drives its sidecar: plain HTTP to the outbound listener on
loopback, addressed by the callee's name.

`reviews` is the routing subject. Its two versions share one targetPort, and two sidecars on one
machine cannot both forward to 127.0.0.1:<targetPort>, so its versions are bare backends at their
endpoint addresses with `mtls: DISABLE`: the routing under test happens in the caller's sidecar.
`cart`, `limited` (STRICT) and `ledger` (PERMISSIVE) run behind their own sidecars, under
AccessPolicies.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import uuid
from collections import Counter
from dataclasses import dataclass

import pytest

from tests.e2e import harness
from tests.e2e.meshes import SidecarWorkload, build_sidecars

pytestmark = pytest.mark.e2e

SPLIT_REQUESTS = 400


@dataclass
class SidecarMesh:
    workloads: dict[str, SidecarWorkload]
    backends: dict[str, harness.Backend]
    envoys: dict[str, harness.EnvoyProcess]

    def call(self, caller: str, callee: str, path: str, headers: dict[str, str] | None = None,
             connection: http.client.HTTPConnection | None = None) -> harness.Reply:
        """What caller's application does: plain HTTP to its own sidecar, Host = the callee."""
        return harness.http_get("127.0.0.1", self.workloads[caller].outbound_port, path, host=callee,
                                headers=headers, connection=connection)


@pytest.fixture(scope="module")
def mesh(envoys, backends, pki, addresses, workdir) -> SidecarMesh:
    built = build_sidecars(workdir, pki, addresses, backends)
    started = {name: envoys.start(name, workload.bootstrap, workload.admin_port)
               for name, workload in built.workloads.items()}
    return SidecarMesh(built.workloads, built.backends, started)


def test_weighted_split_lands_within_six_percent(mesh: SidecarMesh) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", mesh.workloads["frontend"].outbound_port, timeout=10)
    try:
        replies = [mesh.call("frontend", "reviews", "/split", connection=connection) for _ in range(SPLIT_REQUESTS)]
    finally:
        connection.close()
    landed = Counter((reply.status, reply.backend) for reply in replies)
    assert set(landed) == {(200, "reviews-v1"), (200, "reviews-v2")}, landed
    # Envoy picks per request at random: 6 points is three standard deviations at n=400.
    assert abs(landed[200, "reviews-v1"] / SPLIT_REQUESTS - 0.80) <= 0.06, landed


def test_header_match_routes_to_its_version(mesh: SidecarMesh) -> None:
    matched = [mesh.call("frontend", "reviews", "/", headers={"end-user": "jason"}) for _ in range(20)]
    unmatched = [mesh.call("frontend", "reviews", "/", headers={"end-user": "kim"}) for _ in range(20)]
    assert {(reply.status, reply.backend) for reply in matched} == {(200, "reviews-v2")}
    assert {(reply.status, reply.backend) for reply in unmatched} == {(200, "reviews-v1")}


def test_retry_turns_a_first_attempt_503_into_a_200(mesh: SidecarMesh) -> None:
    path = f"/fail-once/{uuid.uuid4().hex}"
    reply = mesh.call("frontend", "reviews", path)
    assert (reply.status, reply.backend) == (200, "reviews-v1")
    assert mesh.backends["reviews-v1"].requests(path) == 2


def test_without_a_retry_policy_the_first_503_reaches_the_caller(mesh: SidecarMesh) -> None:
    # The header rule turns retries off (`attempts: 0`; without it the built-in default, Istio's,
    # would retry the 503): the same backend failure is returned as is, so the 200 above is the
    # retry policy's doing.
    path = f"/fail-once/{uuid.uuid4().hex}"
    reply = mesh.call("frontend", "reviews", path, headers={"end-user": "jason"})
    assert (reply.status, reply.backend) == (503, "reviews-v2")
    assert mesh.backends["reviews-v2"].requests(path) == 1


def test_route_timeout_fires(mesh: SidecarMesh) -> None:
    path = f"/delay/3000/{uuid.uuid4().hex}"
    reply = mesh.call("frontend", "reviews", path)
    assert (reply.status, reply.body) == (504, b"upstream request timeout")
    assert mesh.backends["reviews-v1"].requests(path) == 1  # it reached the slow backend, once


def rbac_decisions(envoy: harness.EnvoyProcess, decision: str) -> int:
    """How many requests the RBAC filters of envoy's inbound listeners have `allowed` or `denied`."""
    return sum(value for name, value in envoy.stats("http.inbound").items() if name.endswith(f".rbac.{decision}"))


def test_caller_admitted_by_the_access_policy_gets_200(mesh: SidecarMesh) -> None:
    allowed = rbac_decisions(mesh.envoys["cart"], "allowed")
    reply = mesh.call("frontend", "cart", "/items")
    assert (reply.status, reply.backend) == (200, "cart")
    assert rbac_decisions(mesh.envoys["cart"], "allowed") == allowed + 1


def test_caller_not_admitted_by_the_access_policy_gets_403(mesh: SidecarMesh) -> None:
    denied = rbac_decisions(mesh.envoys["cart"], "denied")
    path = f"/denied/{uuid.uuid4().hex}"
    reply = mesh.call("intruder", "cart", path)
    assert (reply.status, reply.body) == (403, b"RBAC: access denied")
    assert mesh.backends["cart"].requests(path) == 0
    # Denied by cart's own sidecar, on the identity intruder's sidecar presented.
    assert rbac_decisions(mesh.envoys["cart"], "denied") == denied + 1


def test_strict_mtls_refuses_a_plain_text_client(mesh: SidecarMesh) -> None:
    cart = mesh.workloads["cart"]
    # The listener is bound (readiness waited for it), so this is a refusal of plain text, not
    # a missing listener: the connection is closed without an HTTP answer.
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        harness.http_get(cart.address, cart.port, "/items", host="cart", timeout=5)
    assert mesh.call("frontend", "cart", "/items").status == 200


def test_strict_mtls_refuses_a_tls_client_without_a_certificate(mesh: SidecarMesh, pki) -> None:
    cart = mesh.workloads["cart"]
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.load_verify_locations(cadata=pki.ca_pem.decode())
    client.check_hostname = False  # the server presents an SVID (URI SAN), not a host name
    with socket.create_connection((cart.address, cart.port), timeout=5) as raw, client.wrap_socket(raw) as tls:
        presented = tls.getpeercert()["subjectAltName"]
        # TLS 1.3: the server's verdict on the (missing) client certificate arrives as an alert
        # on the first read, after the client's side of the handshake has completed. Nothing is
        # sent first: unread data at the server would turn its close into a reset that can
        # overtake the alert.
        with pytest.raises(ssl.SSLError, match="CERTIFICATE_REQUIRED"):
            tls.recv(1024)
    assert presented == (("URI", "spiffe://e2e.test/ns/shop/sa/cart"),)


def test_permissive_mtls_accepts_plain_text_and_still_authorizes_it(mesh: SidecarMesh) -> None:
    ledger = mesh.workloads["ledger"]
    # Plain text gets an HTTP answer (unlike STRICT), but carries no identity: RBAC denies it.
    plain = harness.http_get(ledger.address, ledger.port, "/balance", host="ledger", timeout=5)
    assert (plain.status, plain.body) == (403, b"RBAC: access denied")
    assert mesh.call("frontend", "ledger", "/balance").backend == "ledger"


def test_local_rate_limit_returns_429_once_the_bucket_is_exhausted(mesh: SidecarMesh) -> None:
    limit = mesh.workloads["limited"].rate_limit
    path = f"/limited/{uuid.uuid4().hex}"
    statuses = [mesh.call("frontend", "limited", path).status for _ in range(limit + 3)]
    assert statuses == [200] * limit + [429] * 3
    assert mesh.backends["limited"].requests(path) == limit  # the rejected ones never reached it
