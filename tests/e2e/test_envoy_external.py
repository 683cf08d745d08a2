"""ExternalService TLS origination per port, under real Envoy: the application calls port 80 in
plain HTTP and its sidecar sends the request over TLS to the external host's 443 (here a TLS
backend on loopback), while an application that speaks TLS itself to the `tls` port is passed
through, never wrapped twice.

The bootstrap is meshc's; only what one machine needs changes: the external host name in the
cluster's endpoint becomes the backend's loopback address (the port stays what meshc emitted:
that is under test) and the system CA bundle becomes the test CA.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl

import pytest

from compiler.evaluate import Proxy, Request, evaluate
from compiler.graph import Key
from targets.envoylib.tls import SYSTEM_CA_BUNDLE
from tests.e2e import harness
from tests.e2e.meshes import (
    API,
    NAMESPACE,
    SidecarWorkload,
    compile_graph,
    install_svid,
    mesh_document,
    service,
    sidecar_bootstrap,
)

pytestmark = pytest.mark.e2e

EXTERNAL_HOST = "api.e2e.test"

# The two spellings docs/intents.md gives for the common pattern: per port, with targetPort,
# and service-wide (the plain port then goes to the one `tls` port).
PER_PORT = "per-port"
SERVICE_WIDE = "service-wide"


def external_service(form: str, tls_port: int) -> dict:
    if form == PER_PORT:
        return {"apiVersion": API, "kind": "ExternalService", "name": "api", "hosts": [EXTERNAL_HOST],
                "ports": [{"name": "http", "port": 80, "protocol": "http", "targetPort": tls_port,
                           "tls": {"originate": True}},
                          {"name": "https", "port": tls_port, "protocol": "tls"}]}
    return {"apiVersion": API, "kind": "ExternalService", "name": "api", "hosts": [EXTERNAL_HOST],
            "ports": [{"name": "http", "port": 80, "protocol": "http"},
                      {"name": "https", "port": tls_port, "protocol": "tls"}],
            "tls": {"originate": True}}


def on_loopback(bootstrap: dict, backend: harness.Backend, ca_file: str) -> dict:
    """Point the external host's clusters at the backend's address and trust the test CA."""
    for cluster in bootstrap["static_resources"]["clusters"]:
        if not cluster["name"].endswith("||api.shop"):
            continue
        for group in cluster["load_assignment"]["endpoints"]:
            for endpoint in group["lb_endpoints"]:
                address = endpoint["endpoint"]["address"]["socket_address"]
                assert address["address"] == EXTERNAL_HOST
                address["address"] = backend.address
        context = cluster.get("transport_socket", {}).get("typed_config", {}).get("common_tls_context", {})
        if "validation_context" in context:
            assert context["validation_context"]["trusted_ca"]["filename"] == SYSTEM_CA_BUNDLE
            context["validation_context"]["trusted_ca"]["filename"] = ca_file
    return bootstrap


@pytest.fixture(scope="module", params=[PER_PORT, SERVICE_WIDE])
def external(request, envoys, backends, pki, addresses, workdir):
    form = request.param
    cert_root = workdir / f"external-{form}-certs"
    caller_address, backend_address = addresses.next(), addresses.next()
    tls_port = harness.free_port()  # the sidecar's loopback listener for the tls port binds it on 127.0.0.1
    outbound, admin = harness.free_ports(2)
    caller = SidecarWorkload("web", caller_address, harness.free_port(caller_address), outbound, admin)
    backend = backends.start("api", address=backend_address, port=tls_port,
                             tls=harness.tls_server_context(pki.server_cert(EXTERNAL_HOST), workdir, f"api-{form}"))
    root = harness.write_intents(workdir / f"external-{form}", [
        mesh_document(cert_root, suppress=[]),
        service("web", caller, ports=[{"name": "http", "port": caller.port, "protocol": "http"}],
                endpoints=[{"address": caller_address}], calls=["api"]),
        external_service(form, tls_port),
    ])
    graph = compile_graph(root)
    install_svid(pki, cert_root, "web")
    ca_file = workdir / "external-ca.pem"
    ca_file.write_bytes(pki.ca_pem)
    bootstrap = on_loopback(sidecar_bootstrap(graph, "web", caller_address), backend, str(ca_file))
    envoys.start(f"web-{form}", bootstrap, admin)
    return graph, caller, tls_port


@pytest.mark.parametrize("host", [EXTERNAL_HOST, f"{EXTERNAL_HOST}:80"])
def test_plain_http_to_port_80_leaves_the_sidecar_as_tls_to_the_target_port(external, host) -> None:
    """Issue 11: `tls: SIMPLE` applied to every port, so port 80 got TLS to port 80 and 443 was
    wrapped twice. docs/intents.md, "Per service and per external port": the sidecar connects
    on the port's upstream port (targetPort, else the one tls port) and originates TLS with the
    first host as SNI, checking the server certificate for it. Istio's "Egress TLS
    origination" task: a ServiceEntry port 80 with `targetPort: 443` and a DestinationRule
    `portLevelSettings` port 80 `tls: {mode: SIMPLE}` ("The above DestinationRule will perform
    TLS origination for HTTP requests on port 80 and the ServiceEntry will then redirect the
    requests on port 80 to target port 443")."""
    graph, caller, tls_port = external
    decision = evaluate(graph, Proxy(service=Key(NAMESPACE, "web")), Request(host, "/politics?x=1"))
    assert (decision.upstream_port, decision.tls_sni) == (tls_port, EXTERNAL_HOST)
    reply = harness.http_get("127.0.0.1", caller.outbound_port, "/politics?x=1", host=host)
    assert (reply.status, reply.backend) == (200, "api")  # the backend only speaks TLS
    seen = json.loads(reply.body)
    assert (seen["path"], seen["headers"]["host"]) == (decision.path, decision.host)


def test_the_application_own_tls_on_the_tls_port_is_passed_through(external, pki) -> None:
    """docs/intents.md: "A `tls` port never originates: the application's own TLS goes through
    unchanged, never wrapped twice". The client verifies the external host's certificate
    through the sidecar's loopback listener on the tls port (127.0.0.1, docs/targets/envoy.md)."""
    *_, tls_port = external
    context = ssl.create_default_context(cadata=pki.ca_pem.decode())
    with (socket.create_connection(("127.0.0.1", tls_port), timeout=5) as raw,
          context.wrap_socket(raw, server_hostname=EXTERNAL_HOST) as tls):
        connection = http.client.HTTPConnection(EXTERNAL_HOST, tls_port, timeout=5)
        connection.sock = tls
        reply = harness.http_get("127.0.0.1", tls_port, "/own-tls", host=EXTERNAL_HOST, connection=connection)
    assert (reply.status, reply.backend) == (200, "api")
