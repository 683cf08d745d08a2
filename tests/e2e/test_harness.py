"""The e2e harness itself: PKI, backends and Envoy process handling do what the tests rely on."""

from __future__ import annotations

import socket
import ssl
import time

import pytest

from tests.e2e import harness


def test_server_certificate_chains_to_the_test_ca(pki, backends, workdir) -> None:
    context = harness.tls_server_context(pki.server_cert("echo.test"), workdir, "echo-test")
    backend = backends.start("tls-echo", tls=context)
    client = ssl.create_default_context(cadata=pki.ca_pem.decode())
    with (socket.create_connection(("127.0.0.1", backend.port), timeout=5) as raw,
          client.wrap_socket(raw, server_hostname="echo.test") as tls):
        peer = tls.getpeercert()
    assert ("DNS", "echo.test") in peer["subjectAltName"]


def test_svid_carries_its_spiffe_id_as_uri_san(pki) -> None:
    from cryptography import x509

    issued = pki.svid("spiffe://e2e.test/ns/shop/sa/cart")
    cert = x509.load_pem_x509_certificate(issued.cert_pem)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.UniformResourceIdentifier) == ["spiffe://e2e.test/ns/shop/sa/cart"]
    ca = x509.load_pem_x509_certificate(pki.ca_pem)
    cert.verify_directly_issued_by(ca)


def test_backend_answers_with_identity_and_fails_once_per_token(backends) -> None:
    backend = backends.start("plain")
    first = harness.http_get("127.0.0.1", backend.port, "/fail-once/a", host="plain")
    second = harness.http_get("127.0.0.1", backend.port, "/fail-once/a", host="plain")
    other = harness.http_get("127.0.0.1", backend.port, "/fail-once/b", host="plain")
    assert (first.status, second.status, other.status) == (503, 200, 503)
    assert first.backend == second.backend == "plain"
    assert backend.requests("/fail-once/a") == 2


def test_backend_delays_when_asked(backends) -> None:
    backend = backends.start("slow")
    started = time.monotonic()
    reply = harness.http_get("127.0.0.1", backend.port, "/delay/300", host="slow")
    assert reply.status == 200
    assert time.monotonic() - started >= 0.3


def test_loopback_addresses_are_distinct_and_bindable() -> None:
    addresses = harness.LoopbackAddresses()
    first, second = addresses.next(), addresses.next()
    assert first != second and first.startswith("127.")
    assert harness.free_port(first) > 0


@pytest.mark.e2e
def test_envoy_is_ready_through_admin_and_stopped_with_its_group(envoys) -> None:
    admin_port, listen_port = harness.free_ports(2)
    # A minimal hand-written bootstrap: only here to exercise process handling, not the target.
    config = {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {"listeners": [{
            "name": "probe",
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": listen_port}},
            "filter_chains": [{"filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": "probe",
                    "route_config": {"virtual_hosts": [{
                        "name": "all", "domains": ["*"],
                        "routes": [{"match": {"prefix": "/"}, "direct_response": {"status": 218}}],
                    }]},
                    "http_filters": [{
                        "name": "envoy.filters.http.router",
                        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
                    }],
                },
            }]}],
        }]},
    }
    envoy = envoys.start("probe", config, admin_port)
    assert harness.http_get("127.0.0.1", listen_port, "/", host="any").status == 218
    harness.stop_envoy(envoy)
    envoys.started.remove(envoy)
    assert envoy.process.poll() is not None
    with pytest.raises(OSError):
        envoy.admin("/ready", timeout=0.5)


@pytest.mark.e2e
def test_envoy_that_cannot_start_fails_with_its_log(envoys) -> None:
    admin_port = harness.free_port()
    config = {"admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
              "static_resources": {"clusters": [{"name": "broken", "type": "NO_SUCH_TYPE"}]}}
    with pytest.raises(harness.EnvoyFailed, match="NO_SUCH_TYPE"):
        envoys.start("broken", config, admin_port)
