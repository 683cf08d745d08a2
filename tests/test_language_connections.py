"""Connection settings (issue 12): `resilience.connections` {maxRequestsPerConnection,
idleTimeout, http2Upgrade} as docs/intents.md says, measured on a caller's real Envoy (its
cluster counters, and the protocol a backend sees), and written into the Istio DestinationRule
that both kubernetes flavours emit.

Envoy HttpProtocolOptions.common_http_protocol_options: `idle_timeout` "The idle timeout for
upstream connection pool connections. The idle timeout is defined as the period in which there
are no active requests ... If not specified, this defaults to 1 hour"; `max_requests_per_connection`
"Optional maximum requests for both upstream and downstream connections"; `explicit_http_config`
`http2_protocol_options` for HTTP/2. Istio ConnectionPoolSettings.HTTPSettings:
`maxRequestsPerConnection` "Maximum number of requests per connection to a backend",
`idleTimeout` "The idle timeout for upstream connection pool connections", `h2UpgradePolicy`
"Specify if http1.1 connection should be upgraded to http2 for the associated destination".
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import yaml
from click.testing import CliRunner

from compiler.build import emit
from compiler.cli import main
from compiler.diagnostics import Report
from compiler.evaluate import Proxy, Request
from compiler.serialize import to_json
from targets.envoylib import EnvoyRunner, sidecar_bootstrap
from targets.envoylib.blocks import HCM, HCM_FILTER, cluster_name, router_filter
from targets.envoylib.run import free_port, socket_of
from tests.conftest import require_envoy
from tests.envoy_validate import assert_envoy_accepts
from tests.k8s_schemas import validation_errors
from tests.semantics import key, linked, mesh, service

WEB = Proxy(service=key("web"))
SETTINGS = {
    "reuse": None,
    "once": {"maxRequestsPerConnection": 1},
    "idle": {"idleTimeout": "1s"},
    "upgraded": {"http2Upgrade": True, "maxRequestsPerConnection": 100},
}


def shop(root: Path, **platform):
    extra = {"platform": "k8s"} if platform else {}
    callees = [service(name, **extra, **({"resilience": {"connections": settings}} if settings else {}))
               for name, settings in SETTINGS.items()]
    return linked(root, [mesh(platform) if platform else mesh(), service("web", calls=list(SETTINGS), **extra),
                         *callees], allowed=("MESH301",))


def counter(runner: EnvoyRunner, callee: str, name: str) -> int:
    cluster = cluster_name(key(callee), 8080)
    return runner.counters(WEB, f"cluster.{cluster}.").get(f"cluster.{cluster}.{name}", 0)


def test_envoy_opens_connections_as_the_settings_say(tmp_path: Path) -> None:
    """Three requests each: over one kept connection by default, over three with
    maxRequestsPerConnection 1; an idle connection is closed after idleTimeout."""
    binary = require_envoy()
    graph = shop(tmp_path / "mesh")
    bootstrap = sidecar_bootstrap(graph, graph.services[key("web")], Report(), "127.0.0.1")
    assert_envoy_accepts({"web.json": to_json(bootstrap)}, tmp_path / "validate")
    with EnvoyRunner(graph, binary) as runner:
        for callee in ("reuse", "once", "idle"):
            replies = [runner.send(WEB, Request(callee, "/")) for _ in range(3)]
            assert [reply.status for reply in replies if reply is not None] == [200] * 3
        assert counter(runner, "idle", "upstream_cx_idle_timeout") == 0  # within its second
        assert counter(runner, "reuse", "upstream_cx_total") == 1
        assert counter(runner, "once", "upstream_cx_total") == 3
        assert counter(runner, "once", "upstream_cx_max_requests") >= 2
        time.sleep(2.5)
        assert counter(runner, "idle", "upstream_cx_idle_timeout") == 1
        assert counter(runner, "reuse", "upstream_cx_idle_timeout") == 0


def protocol_echo(binary: str, workdir: Path) -> tuple[subprocess.Popen, int]:
    """An Envoy answering every request 200 with the protocol it received (%PROTOCOL%)."""
    port = free_port("127.0.0.1")
    config = {"admin": {"address": socket_of(free_port("127.0.0.1"), "127.0.0.1")},
              "static_resources": {"listeners": [{"name": "echo", "address": socket_of(port, "127.0.0.1"),
                                                  "filter_chains": [{"filters": [{"name": HCM_FILTER, "typed_config": {
                                                      "@type": HCM, "stat_prefix": "echo", "codec_type": "AUTO",
                                                      "route_config": {"virtual_hosts": [{
                                                          "name": "all", "domains": ["*"],
                                                          "routes": [{"match": {"prefix": "/"},
                                                                      "direct_response": {"status": 200}}],
                                                          "response_headers_to_add": [{"header": {
                                                              "key": "x-seen-protocol", "value": "%PROTOCOL%"}}]}]},
                                                      "http_filters": [router_filter()]}}]}]}]}}
    path = workdir / "echo.json"
    path.write_text(json.dumps(config))
    process = subprocess.Popen([binary, "-c", str(path), "--base-id", str((os.getpid() % 100_000) * 64 + 63),
                                "--log-level", "warn", "--concurrency", "1"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, port
        except OSError:
            time.sleep(0.05)
    process.terminate()
    raise AssertionError("the protocol echo Envoy did not listen within 30s")


def test_an_upgraded_service_is_spoken_to_in_http2(tmp_path: Path) -> None:
    """The caller's sidecar sends an http port's requests over HTTP/2 with http2Upgrade, and
    over HTTP/1.1 without; the backend says which protocol it received."""
    binary = require_envoy()
    graph = shop(tmp_path / "mesh")
    process, port = protocol_echo(binary, tmp_path)
    try:
        with EnvoyRunner(graph, binary, upstream=("127.0.0.1", port)) as runner:
            seen = {}
            for callee in ("upgraded", "reuse"):
                reply = runner.send(WEB, Request(callee, "/"))
                assert reply is not None and reply.status == 200
                seen[callee] = dict(reply.response_headers).get("x-seen-protocol")
            assert seen == {"upgraded": "HTTP/2", "reuse": "HTTP/1.1"}
            assert counter(runner, "upgraded", "upstream_cx_http2_total") == 1
    finally:
        process.terminate()
        process.wait(5)


def test_istio_and_gateway_api_flavours_write_the_connection_pool(tmp_path: Path) -> None:
    for flavor in ("istio", "gateway-api"):
        graph = shop(tmp_path / flavor, name="k8s", kind="kubernetes", flavor=flavor)
        documents = [doc for artifact in emit(graph, Report(), ["kubernetes"]) if artifact.path.endswith(".yaml")
                     for doc in yaml.safe_load_all(artifact.content) if doc and "metadata" in doc]
        rules = {d["metadata"]["name"]: d for d in documents if d["kind"] == "DestinationRule"}
        for rule in rules.values():
            assert validation_errors(rule) == []
        pools = {name: rules[name]["spec"].get("trafficPolicy", {}).get("connectionPool", {}).get("http")
                 for name in SETTINGS}
        assert pools == {"reuse": None, "once": {"maxRequestsPerConnection": 1}, "idle": {"idleTimeout": "1s"},
                         "upgraded": {"maxRequestsPerConnection": 100, "h2UpgradePolicy": "UPGRADE"}}, flavor


def test_a_caller_through_the_cloud_foundry_router_keeps_http1(tmp_path: Path) -> None:
    graph = linked(tmp_path, [
        mesh({"name": "vms", "kind": "vm"}, {"name": "pcf", "kind": "cloudfoundry", "appsDomain": "apps.example.com"}),
        service("web", calls=["api"]),
        service("api", platform="pcf", public=True, resilience={"connections": {"http2Upgrade": True}})],
        allowed=("MESH301", "MESH320", "MESH431", "MESH434"))
    report = Report()
    bootstrap = sidecar_bootstrap(graph, graph.services[key("web")], report, "127.0.0.1")
    [warning] = [d for d in report.diagnostics if d.code.code == "MESH436"]
    assert warning.location.line > 1 and "keep HTTP/1.1" in warning.message
    [cluster] = [c for c in bootstrap["static_resources"]["clusters"] if "api" in c["name"]]
    assert "typed_extension_protocol_options" not in cluster


def test_meshc_import_reads_istios_connection_pool(tmp_path: Path) -> None:
    """An Istio DestinationRule's connectionPool.http settings become `resilience.connections`."""
    source = tmp_path / "istio"
    source.mkdir()
    (source / "reviews.yaml").write_text("""\
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec:
  host: reviews
  trafficPolicy:
    connectionPool:
      http: {maxRequestsPerConnection: 10, idleTimeout: 30s, h2UpgradePolicy: UPGRADE}
""")
    result = CliRunner().invoke(main, ["import", str(source), "-o", str(tmp_path / "mesh")])
    assert result.exit_code == 0, result.output
    imported = yaml.safe_load((tmp_path / "mesh" / "services" / "reviews.yaml").read_text())
    assert imported["resilience"]["connections"] == {"maxRequestsPerConnection": 10, "idleTimeout": "30s",
                                                     "http2Upgrade": True}
