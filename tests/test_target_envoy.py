"""The envoy target: every bootstrap passes `envoy --mode validate`; features, scoping, diagnostics."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from bench.generate import generate_mesh
from compiler.build import compile_mesh
from compiler.diagnostics import Report
from targets import envoy, envoylib
from tests.conftest import BOOKINFO, EXAMPLES, REPO, copy_mesh
from tests.envoy_validate import assert_envoy_accepts, write_certificates

EXAMPLE_MESHES = sorted(p.name for p in EXAMPLES.iterdir() if (p / "mesh.yaml").is_file())


def compiled(root: Path):
    result = compile_mesh(root)
    assert result.graph is not None, [str(d.location) + " " + d.message for d in result.report.sorted()]
    return result


def bootstraps_of(artifacts) -> dict[str, bytes]:
    return {a.path: a.content for a in artifacts}


def listener(bootstrap: dict, name: str) -> dict:
    return next(item for item in bootstrap["static_resources"]["listeners"] if item["name"] == name)


def cluster_names(bootstrap: dict) -> list[str]:
    return [item["name"] for item in bootstrap["static_resources"]["clusters"]]


def http_filters(chain: dict) -> list[dict]:
    return chain["filters"][0]["typed_config"]["http_filters"]


def codes_at(report: Report) -> set[tuple[str, str]]:
    return {(d.code.code, str(d.location)) for d in report.sorted()}


# ---------------------------------------------------------------------------------------------
# A mesh exercising every feature the target expresses

FIXTURES = REPO / "tests" / "fixtures" / "targets" / "envoy"
EVERY_FEATURE = FIXTURES / "every-feature"


def point_certificates_at(mesh_file: Path, certs: Path) -> None:
    """Files-mode certificates must exist for Envoy to load them: point them into `certs`."""
    mesh_file.write_text(re.sub(r"dir: /[^\s,}]*", f"dir: {certs}", mesh_file.read_text()))


@pytest.fixture
def features(tmp_path: Path):
    certs = tmp_path / "certs"
    root = copy_mesh(EVERY_FEATURE, tmp_path / "mesh")
    point_certificates_at(root / "mesh.yaml", certs)
    result = compiled(root)
    artifacts = envoy.emit(result.graph, result.report)
    return result, bootstraps_of(artifacts), certs


def test_feature_mesh_bootstraps_pass_envoy_validate(features, tmp_path: Path) -> None:
    _, bootstraps, certs = features
    assert sorted(bootstraps) == [
        "envoy/gateways/shop/edge.yaml", "envoy/gateways/shop/files-edge.yaml",
        "envoy/shop/api.yaml", "envoy/shop/cache.yaml", "envoy/shop/db.yaml", "envoy/shop/grpc.yaml",
        "envoy/shop/h2.yaml", "envoy/shop/web.yaml",
    ]
    # db's SVID and bundle (3 files), files-edge's SVID and bundle for upstream mTLS (3) and its
    # named certificate and key (2): Envoy opens them to validate.
    assert write_certificates(bootstraps, certs) == 8
    assert_envoy_accepts(bootstraps, tmp_path / "out")


def test_opentelemetry_tracing_validates(tmp_path: Path) -> None:
    root = tmp_path / "mesh"
    for name in ("mesh.yaml", "services/web.yaml", "services/api.yaml"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(EVERY_FEATURE / name, root / name)
    point_certificates_at(root / "mesh.yaml", tmp_path / "certs")
    mesh_file, web_file = root / "mesh.yaml", root / "services" / "web.yaml"
    mesh_file.write_text(mesh_file.read_text().replace("provider: zipkin", "provider: opentelemetry"))
    web_file.write_text(web_file.read_text().replace(
        "calls: [api, grpc, h2, db, cache, payments/ext-http, payments/ext-tls]", "calls: [api]"))
    result = compiled(root)
    web = envoylib.sidecar_bootstrap(result.graph, result.graph.services[("shop", "web")], Report())
    manager = listener(web, "outbound|http")["filter_chains"][0]["filters"][0]["typed_config"]
    assert manager["tracing"]["provider"]["name"] == "envoy.tracers.opentelemetry"
    assert manager["tracing"]["random_sampling"] == {"value": 12.5}
    assert_envoy_accepts({"web.yaml": envoylib.serialise(web)}, tmp_path / "out")


def test_sidecar_is_scoped_to_its_calls(features) -> None:
    _, bootstraps, _ = features
    web = json.loads(bootstraps["envoy/shop/web.yaml"])
    assert cluster_names(web) == [
        "inbound|8080",
        "outbound|27017||db.shop",
        "outbound|443||ext-http.payments",
        "outbound|6379||cache.shop",
        "outbound|8080|v1|api.shop",
        "outbound|8080|v2|api.shop",
        "outbound|8443||ext-tls.payments",
        "outbound|8443||h2.shop",
        "outbound|9090||grpc.shop",
        "tracing",
        "sds-grpc",
    ]
    grpc = json.loads(bootstraps["envoy/shop/grpc.yaml"])
    assert cluster_names(grpc) == ["inbound|9090", "tracing", "sds-grpc"]
    assert [item["name"] for item in grpc["static_resources"]["listeners"]] == ["inbound|9090"]


def test_inbound_listener_mtls_rbac_and_rate_limit(features) -> None:
    _, bootstraps, _ = features
    web = json.loads(bootstraps["envoy/shop/web.yaml"])
    inbound = listener(web, "inbound|8080")
    assert inbound["address"] == {"socket_address": {"address": "127.0.0.10", "port_value": 8080}}
    chain = inbound["filter_chains"][0]
    tls = chain["transport_socket"]["typed_config"]
    assert tls["require_client_certificate"] is True
    assert tls["common_tls_context"]["tls_certificate_sds_secret_configs"][0]["name"] == "default"
    names = [f["name"] for f in http_filters(chain)]
    # mesh authorization defaults to deny: an ALLOW filter without policies admits nobody
    assert names == ["envoy.filters.http.rbac", "envoy.filters.http.local_ratelimit", "envoy.filters.http.router"]
    assert http_filters(chain)[0]["typed_config"]["rules"] == {"action": "ALLOW", "policies": {}}
    limit = http_filters(chain)[1]["typed_config"]
    assert limit["token_bucket"] == {"max_tokens": 10, "tokens_per_fill": 10, "fill_interval": "1s"}
    assert limit["filter_enforced"]["default_value"] == {"numerator": 100, "denominator": "HUNDRED"}
    app = next(c for c in web["static_resources"]["clusters"] if c["name"] == "inbound|8080")
    assert app["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"] == {
        "socket_address": {"address": "127.0.0.1", "port_value": 18080}}
    assert web["admin"]["address"] == {"socket_address": {"address": "127.0.0.1", "port_value": 16000}}


def test_rbac_denies_before_it_allows(features) -> None:
    _, bootstraps, _ = features
    api = json.loads(bootstraps["envoy/shop/api.yaml"])
    filters = http_filters(listener(api, "inbound|8080")["filter_chains"][0])
    deny, allow = (f["typed_config"]["rules"] for f in filters[:2])
    assert deny["action"] == "DENY" and allow["action"] == "ALLOW"
    assert deny["policies"]["shop/api-callers/deny/0"] == {
        "permissions": [{"and_rules": {"rules": [{"or_rules": {"rules": [{"url_path": {"path": {"exact": "/admin"}}}]}}]}}],
        "principals": [{"authenticated": {"principal_name": {"prefix": "spiffe://example.org/"}}}],
    }
    callers = allow["policies"]["shop/api-callers/allow/0"]
    assert callers["principals"] == [
        {"authenticated": {"principal_name": {"exact": "spiffe://example.org/ns/shop/sa/web"}}},
        {"authenticated": {"principal_name": {"exact": "spiffe://example.org/ns/shop/sa/edge"}}},
    ]
    methods, paths = callers["permissions"][0]["and_rules"]["rules"]
    assert [r["header"]["string_match"] for r in methods["or_rules"]["rules"]] == [{"exact": "GET"}, {"exact": "PUT"}]
    assert [r["url_path"]["path"] for r in paths["or_rules"]["rules"]] == [
        {"prefix": "/api/"}, {"safe_regex": {"regex": "/items/.*/detail"}}, {"exact": "/old"}]
    assert allow["policies"]["shop/api-callers/allow/1"] == {
        "permissions": [{"any": True}],
        "principals": [{"authenticated": {"principal_name": {"prefix": "spiffe://example.org/ns/ops/sa/"}}}],
    }


def test_permissive_accepts_tls_and_plain_text_and_mongo_uses_network_filters(features) -> None:
    _, bootstraps, certs = features
    db = json.loads(bootstraps["envoy/shop/db.yaml"])
    inbound = listener(db, "inbound|27017")
    assert inbound["listener_filters"][0]["name"] == "envoy.filters.listener.tls_inspector"
    tls_chain, plain_chain = inbound["filter_chains"]
    assert tls_chain["filter_chain_match"] == {"transport_protocol": "tls"}
    assert "transport_socket" not in plain_chain
    assert [f["name"] for f in plain_chain["filters"]] == [
        "envoy.filters.network.rbac", "envoy.filters.network.rbac",
        "envoy.filters.network.mongo_proxy", "envoy.filters.network.tcp_proxy"]
    context = tls_chain["transport_socket"]["typed_config"]["common_tls_context"]
    assert context["tls_certificates"][0]["certificate_chain"] == {"filename": f"{certs}/shop/db/svid.pem"}
    assert context["validation_context"]["trusted_ca"] == {"filename": f"{certs}/shop/db/svid_bundle.pem"}
    assert "sds-grpc" not in cluster_names(db)


def test_outbound_http_routes(features) -> None:
    _, bootstraps, _ = features
    web = json.loads(bootstraps["envoy/shop/web.yaml"])
    outbound = listener(web, "outbound|http")
    assert outbound["address"] == {"socket_address": {"address": "127.0.0.1", "port_value": 16001}}
    filters = http_filters(outbound["filter_chains"][0])
    assert [f["name"] for f in filters] == ["envoy.filters.http.fault", "envoy.filters.http.router"]
    virtual_hosts = {vh["name"]: vh for vh in filters and outbound["filter_chains"][0]["filters"][0][
        "typed_config"]["route_config"]["virtual_hosts"]}
    api = virtual_hosts["api.shop:8080"]
    assert api["domains"] == ["api.shop", "api", "api.shop:8080", "api:8080"]
    routes = api["routes"]
    # rule 0 has two match entries (ORed): two Envoy routes with one action
    assert routes[0]["match"]["headers"] == [
        {"name": "x-exact", "string_match": {"exact": "a"}},
        {"name": "x-prefix", "string_match": {"prefix": "b"}},
        {"name": "x-regex", "string_match": {"safe_regex": {"regex": "c+"}}},
        {"name": "x-present", "present_match": True},
    ]
    assert routes[1]["match"]["query_parameters"] == [
        {"name": "debug", "present_match": True}, {"name": "user", "string_match": {"exact": "jason"}}]
    assert routes[0]["route"]["cluster"] == routes[1]["route"]["cluster"] == "outbound|8080|v2|api.shop"
    assert routes[2] == {"match": {"path": "/old"}, "redirect": {  # the port: the one the request arrived on
        "host_redirect": "new.example.com", "path_redirect": "/new", "port_redirect": 8080,
        "response_code": "PERMANENT_REDIRECT"}}
    fault = routes[3]["typed_per_filter_config"]["envoy.filters.http.fault"]
    assert fault["delay"] == {"fixed_delay": "0.1s", "percentage": {"numerator": 125000, "denominator": "MILLION"}}
    assert fault["abort"] == {"http_status": 503, "percentage": {"numerator": 1, "denominator": "HUNDRED"}}
    assert routes[3]["match"] == {"safe_regex": {"regex": "/items/[0-9]+"},
                                  "headers": [{"name": ":method", "string_match": {"exact": "PUT"}}]}
    split = routes[4]["route"]
    assert routes[4]["match"]["path_separated_prefix"] == "/api"  # a segment prefix (docs/intents.md)
    assert split["weighted_clusters"] == {"clusters": [
        {"name": "outbound|8080|v1|api.shop", "weight": 80}, {"name": "outbound|8080|v2|api.shop", "weight": 20}]}
    assert split["timeout"] == "2s"
    assert split["retry_policy"] == {
        "retry_on": "5xx,gateway-error", "num_retries": 2, "per_try_timeout": "0.5s",
        "retriable_request_headers": [
            {"name": ":method", "string_match": {"safe_regex": {"regex": "DELETE|GET|HEAD|OPTIONS|PUT|TRACE"}}}],
    }
    assert split["request_mirror_policies"] == [{"cluster": "outbound|8080|v2|api.shop", "runtime_fraction": {
        "default_value": {"numerator": 5, "denominator": "HUNDRED"}}}]
    assert split["prefix_rewrite"] == "/v2"  # /api/x -> /v2/x, /api -> /v2
    assert split["hash_policy"] == [{"header": {"header_name": "x-user"}}]
    # the catch-all rule inherits the service's retries, which opt in to non-idempotent methods
    assert routes[5]["route"]["retry_policy"] == {"retry_on": "5xx,reset", "num_retries": 3, "per_try_timeout": "0.25s"}
    assert routes[5]["route"]["timeout"] == "15s"
    external = virtual_hosts["ext-http.payments:443"]
    assert external["domains"] == ["api.payments.example", "api2.payments.example",
                                   "api.payments.example:443", "api2.payments.example:443"]


def test_outbound_clusters(features) -> None:
    _, bootstraps, _ = features
    web = json.loads(bootstraps["envoy/shop/web.yaml"])
    clusters = {c["name"]: c for c in web["static_resources"]["clusters"]}
    v1 = clusters["outbound|8080|v1|api.shop"]
    assert v1["type"] == "STATIC" and v1["lb_policy"] == "RING_HASH"
    assert [e["endpoint"]["address"]["socket_address"] for e in v1["load_assignment"]["endpoints"][0]["lb_endpoints"]] == [
        {"address": "127.0.0.11", "port_value": 8080}]
    assert v1["circuit_breakers"] == {"thresholds": [
        {"max_connections": 10, "max_pending_requests": 5, "max_requests": 20, "max_retries": 3}]}
    assert v1["outlier_detection"] == {"consecutive_5xx": 3, "interval": "5s", "base_ejection_time": "60s",
                                       "max_ejection_percent": 50}
    upstream = v1["transport_socket"]["typed_config"]["common_tls_context"]
    assert upstream["combined_validation_context"]["default_validation_context"] == {
        "match_typed_subject_alt_names": [{"san_type": "URI", "matcher": {"exact": "spiffe://example.org/ns/shop/sa/api"}}]}
    grpc = clusters["outbound|9090||grpc.shop"]
    assert grpc["type"] == "STRICT_DNS" and grpc["lb_policy"] == "LEAST_REQUEST"
    assert grpc["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"] == {
        "address": "grpc.shop.svc.cluster.example", "port_value": 9090}
    assert "http2_protocol_options" in json.dumps(grpc["typed_extension_protocol_options"])
    # web runs on a vm: it reaches the Cloud Foundry app h2 through the router, over HTTPS
    h2 = clusters["outbound|8443||h2.shop"]
    assert h2["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"] == {
        "address": "h2.apps.example.com", "port_value": 443}
    router_tls = h2["transport_socket"]["typed_config"]
    assert router_tls["sni"] == "h2.apps.example.com"
    assert router_tls["common_tls_context"]["validation_context"]["match_typed_subject_alt_names"] == [
        {"san_type": "DNS", "matcher": {"exact": "h2.apps.example.com"}}]
    cache = clusters["outbound|6379||cache.shop"]
    assert cache["type"] == "STRICT_DNS" and cache["lb_policy"] == "RANDOM"
    origination = clusters["outbound|443||ext-http.payments"]["transport_socket"]["typed_config"]
    assert origination["sni"] == "api.payments.example"
    assert "transport_socket" not in clusters["outbound|8443||ext-tls.payments"]


def test_stream_destinations_get_loopback_listeners(features) -> None:
    _, bootstraps, _ = features
    web = json.loads(bootstraps["envoy/shop/web.yaml"])
    db = listener(web, "outbound|27017|db.shop")
    assert db["address"] == {"socket_address": {"address": "127.0.0.1", "port_value": 27017}}
    assert [f["name"] for f in db["filter_chains"][0]["filters"]] == [
        "envoy.filters.network.mongo_proxy", "envoy.filters.network.tcp_proxy"]
    tls = listener(web, "outbound|8443|ext-tls.payments")
    assert tls["filter_chains"][0]["filters"][0]["typed_config"]["cluster"] == "outbound|8443||ext-tls.payments"


def test_gateway_terminates_passes_through_and_redirects(features, tmp_path: Path) -> None:
    _, bootstraps, certs = features
    edge = json.loads(bootstraps["envoy/gateways/shop/edge.yaml"])
    files_edge = json.loads(bootstraps["envoy/gateways/shop/files-edge.yaml"])
    # the platform's admin port, unless the Gateway names its own
    assert edge["admin"]["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 15100}
    assert files_edge["admin"]["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 15200}
    secure = listener(edge, "gateway|8443")
    assert secure["listener_filters"][0]["name"] == "envoy.filters.listener.tls_inspector"
    terminate, passthrough = secure["filter_chains"]
    assert terminate["filter_chain_match"] == {"server_names": ["www.example.com"]}
    context = terminate["transport_socket"]["typed_config"]["common_tls_context"]
    assert context["tls_certificate_sds_secret_configs"][0]["name"] == "www-cert"
    assert passthrough == {"filter_chain_match": {"server_names": ["db.example.com"]}, "filters": [{
        "name": "envoy.filters.network.tcp_proxy", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
            "stat_prefix": "gateway|8443|db|shop/db-passthrough|0", "cluster": "outbound|27017||db.shop"}}]}
    redirect = listener(edge, "gateway|8080")["filter_chains"][0]["filters"][0]["typed_config"]
    assert redirect["route_config"]["virtual_hosts"] == [{
        "name": "redirect|https-redirect", "domains": ["*.example.com"],
        "routes": [{"match": {"prefix": "/", "headers": [
                        {"name": ":authority", "string_match": {"safe_regex": {"regex": ".*:[0-9]+"}}}]},
                    "redirect": {"https_redirect": True, "port_redirect": 443}},
                   {"match": {"prefix": "/"}, "redirect": {"https_redirect": True}}]}]
    assert redirect["route_config"]["ignore_port_in_host_matching"] is True  # a Host port takes no part
    plain = listener(edge, "gateway|9000")["filter_chains"][0]["filters"][0]["typed_config"]
    assert plain["route_config"]["virtual_hosts"][0]["routes"][0]["route"]["cluster"] == "outbound|8080|v1|api.shop"
    raw = listener(edge, "gateway|7000")["filter_chains"][0]["filters"][0]["typed_config"]
    assert raw["cluster"] == "outbound|6379||cache.shop"
    files_edge = json.loads(bootstraps["envoy/gateways/shop/files-edge.yaml"])
    files_context = listener(files_edge, "gateway|443")["filter_chains"][0]["transport_socket"]["typed_config"]
    assert files_context["common_tls_context"]["tls_certificates"][0]["private_key"] == {
        "filename": f"{certs}/shop/files-edge/files-cert_key.pem"}


def test_feature_mesh_diagnostics(features) -> None:
    result, _, _ = features
    found = codes_at(result.report)
    # grpc (kubernetes) and h2 (cloudfoundry) have no versions routed; api's versions are on a vm
    assert not [d for d in result.report.sorted() if d.code.code.startswith("MESH41")], found


def test_sources_name_every_intent_a_bootstrap_depends_on(features) -> None:
    result, _, _ = features
    artifacts = {a.path: a for a in envoy.emit(result.graph, Report())}
    assert artifacts["envoy/shop/web.yaml"].sources == (
        "external/payments.yaml", "mesh.yaml", "routes/api.yaml", "services/api.yaml",
        "services/cache.yaml", "services/db.yaml", "services/grpc.yaml", "services/h2.yaml", "services/web.yaml")
    assert artifacts["envoy/gateways/shop/edge.yaml"].sources == (
        "gateways/edge.yaml", "mesh.yaml", "routes/ingress.yaml", "services/api.yaml", "services/cache.yaml",
        "services/db.yaml")
    assert artifacts["envoy/shop/web.yaml"].workload == "service:shop/web"
    assert artifacts["envoy/gateways/shop/edge.yaml"].workload == "gateway:shop/edge"


def test_workload_filter_emits_only_those_workloads(features) -> None:
    result, bootstraps, _ = features
    only = envoy.emit(result.graph, Report(), frozenset({"service:shop/web", "gateway:shop/edge"}))
    assert {a.path: a.content for a in only} == {
        "envoy/shop/web.yaml": bootstraps["envoy/shop/web.yaml"],
        "envoy/gateways/shop/edge.yaml": bootstraps["envoy/gateways/shop/edge.yaml"],
    }
    assert envoy.emit(result.graph, Report(), frozenset()) == []


def test_builder_address_defaults_and_override(features) -> None:
    result, _, _ = features
    graph = result.graph
    cache = envoylib.sidecar_bootstrap(graph, graph.services[("shop", "cache")], Report())
    assert listener(cache, "inbound|6379")["address"]["socket_address"]["address"] == "0.0.0.0"  # two endpoints
    moved = envoylib.sidecar_bootstrap(graph, graph.services[("shop", "web")], Report(), address="127.0.0.99")
    assert listener(moved, "inbound|8080")["address"]["socket_address"]["address"] == "127.0.0.99"
    gateway = envoylib.gateway_bootstrap(graph, graph.gateways[("shop", "edge")], Report(), address="127.0.0.98")
    assert {item["address"]["socket_address"]["address"] for item in gateway["static_resources"]["listeners"]} == {
        "127.0.0.98"}


# ---------------------------------------------------------------------------------------------
# The example mesh and a generated one


@pytest.mark.parametrize("mesh", EXAMPLE_MESHES)
def test_example_bootstraps_pass_envoy_validate(mesh: str, tmp_path: Path) -> None:
    root = tmp_path / mesh
    copy_mesh(EXAMPLES / mesh, root)
    certs = tmp_path / "certs"
    point_certificates_at(root / "mesh.yaml", certs)
    result = compiled(root)
    bootstraps = bootstraps_of(envoy.emit(result.graph, result.report))
    # a sidecar per placement of every service (one for a service on one platform), one per gateway
    sidecars = sum(len(service.placements) for service in result.graph.services.values())
    assert len(bootstraps) == sidecars + len(result.graph.gateways)
    write_certificates(bootstraps, certs)
    assert_envoy_accepts(bootstraps, tmp_path / "out")


def test_bookinfo_addresses_kubernetes_versions_through_their_version_services() -> None:
    result = compiled(BOOKINFO)
    report = Report()
    bootstraps = bootstraps_of(envoy.emit(result.graph, report))
    productpage = json.loads(bootstraps["envoy/bookinfo/productpage.yaml"])
    hosts = {
        cluster["name"]: cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"][
            "socket_address"]["address"]
        for cluster in productpage["static_resources"]["clusters"] if "reviews" in cluster["name"]
    }
    assert hosts == {f"outbound|9080|{v}|reviews.bookinfo": f"reviews-{v}.bookinfo.svc.cluster.local"
                     for v in ("v1", "v2", "v3")}


def test_generated_mesh_bootstraps_pass_envoy_validate(tmp_path: Path) -> None:
    root = generate_mesh(tmp_path / "mesh", 100)
    result = compiled(root)
    artifacts = envoy.emit(result.graph, result.report)
    assert len(artifacts) == 100
    assert not [d for d in result.report.sorted() if d.severity == "error"]
    assert_envoy_accepts(bootstraps_of(artifacts), tmp_path / "out")


# ---------------------------------------------------------------------------------------------
# What Envoy cannot express is reported at the intent, never dropped silently

def test_inexpressible_intents_are_reported_at_their_location(tmp_path: Path) -> None:
    result = compiled(FIXTURES / "inexpressible-intents")
    assert not result.report.has_errors, [d.message for d in result.report.sorted()]
    graph = result.graph
    report = Report()
    bootstraps = bootstraps_of(envoy.emit(graph, report))
    # HTTP matches on byte streams, sni on HTTP routes and unserved gateway hosts are the
    # analysis' to report (MESH340, MESH341, MESH351); the target reports what only Envoy limits.
    assert codes_at(report) == {
        ("MESH411", "routes.yaml:17:5"),  # store rule 1: timeout on a tcp port
        ("MESH412", "access.yaml:6:5"),  # store has mtls DISABLE: no caller identity
        ("MESH412", "access.yaml:28:5"),  # methods on a tcp-only service (allow)
        ("MESH412", "access.yaml:31:5"),  # paths on a tcp-only service (deny)
        ("MESH413", "services.yaml:31:12"),  # rateLimit on a service with a tcp port
        ("MESH414", "services.yaml:7:32"),  # store2 and store both want loopback 5432
        ("MESH414", "gateway.yaml:7:25"),  # https and http listeners on one port
        ("MESH415", "services.yaml:7:14"),  # web and other/web
        ("MESH418", "services.yaml:43:9"),  # wildcard external host
    }
    store = json.loads(bootstraps["envoy/app/store.yaml"])
    limited = http_filters(listener(store, "inbound|8081")["filter_chains"][0])
    bucket = next(f for f in limited if f["name"] == "envoy.filters.http.local_ratelimit")["typed_config"]["token_bucket"]
    assert bucket == {"max_tokens": 25, "tokens_per_fill": 25, "fill_interval": "0.05s"}  # 5 per 10ms, in 50ms steps
    client = json.loads(bootstraps["envoy/app/client.yaml"])
    domains = {vh["name"]: vh["domains"] for vh in listener(client, "outbound|http")["filter_chains"][0]["filters"][0][
        "typed_config"]["route_config"]["virtual_hosts"]}
    assert domains["web.app:8080"] == ["web.app", "web", "web.app:8080", "web:8080"]
    assert domains["web.other:8080"] == ["web.other", "web.other:8080"]
    assert [item["name"] for item in client["static_resources"]["listeners"]] == [
        "inbound|8080", "outbound|http", "outbound|5432|store.app"]
    shutil.rmtree(tmp_path / "out", ignore_errors=True)
    assert_envoy_accepts(bootstraps, tmp_path / "out")
