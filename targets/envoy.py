"""The envoy target: a complete static Envoy v3 bootstrap per service sidecar and per Gateway.

The bootstraps are plain data (`sidecar_bootstrap`, `gateway_bootstrap`) so the Cloud Foundry
and VM targets ship the very same configuration. Field names and type URLs follow the Envoy v3
API; every bootstrap the tests produce is checked with `envoy --mode validate`.
docs/targets/envoy.md describes the layout, the names and the certificate paths.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from compiler import codes
from compiler.addressing import Upstream, external_upstream, service_upstream
from compiler.artifact import Artifact, gateway_workload, service_workload
from compiler.diagnostics import Location
from compiler.graph import (
    DEFAULT_ADMIN_PORT,
    AccessPolicyNode,
    ExternalNode,
    GatewayNode,
    Key,
    MeshGraph,
    Principal,
    ResolvedAccessRule,
    RouteNode,
    ServiceNode,
    Target,
)
from compiler.model import HTTP_PROTOCOLS, Match, Retries, StringMatch, duration_seconds
from compiler.serialize import to_json
from targets.envoy_tls import Certificates

TARGET = "envoy"
LOOPBACK = "127.0.0.1"
ANY_ADDRESS = "0.0.0.0"
TRACING_CLUSTER = "tracing"
# RFC 9110 idempotent methods: retried unless a rule opts in with allowNonIdempotent.
IDEMPOTENT_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PUT", "TRACE")
LB_POLICIES = {"round-robin": "ROUND_ROBIN", "least-request": "LEAST_REQUEST", "random": "RANDOM"}
REDIRECT_CODES = {
    301: "MOVED_PERMANENTLY", 302: "FOUND", 303: "SEE_OTHER", 307: "TEMPORARY_REDIRECT", 308: "PERMANENT_REDIRECT",
}
# Envoy's local rate limiter refills at most every 50ms.
MIN_FILL_INTERVAL = Decimal("0.05")

HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
FAULT = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"
HTTP_RBAC = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
NETWORK_RBAC = "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC"
LOCAL_RATE_LIMIT = "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"
TCP_PROXY = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
MONGO_PROXY = "type.googleapis.com/envoy.extensions.filters.network.mongo_proxy.v3.MongoProxy"
TLS_INSPECTOR = "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
HTTP_PROTOCOL_OPTIONS = "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
ZIPKIN = "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig"
OPENTELEMETRY = "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig"


# ---------------------------------------------------------------------------------------------
# Entry points


def emit(graph: MeshGraph, report, workloads: frozenset[str] | None = None) -> list[Artifact]:
    """One bootstrap per service and per gateway (only the given workloads when set)."""
    once = _OncePerIntent(report)
    artifacts = []
    for key, service in graph.services.items():
        workload = service_workload(key)
        if workloads is not None and workload not in workloads:
            continue
        artifacts.append(Artifact(
            path=f"envoy/{key.namespace}/{key.name}.yaml",
            content=serialise(sidecar_bootstrap(graph, service, once)),
            target=TARGET,
            workload=workload,
            sources=sidecar_sources(graph, service),
        ))
    for key, gateway in graph.gateways.items():
        workload = gateway_workload(key)
        if workloads is not None and workload not in workloads:
            continue
        artifacts.append(Artifact(
            path=f"envoy/gateways/{key.namespace}/{key.name}.yaml",
            content=serialise(gateway_bootstrap(graph, gateway, once)),
            target=TARGET,
            workload=workload,
            sources=gateway_sources(graph, gateway),
        ))
    return artifacts


def serialise(bootstrap: dict) -> bytes:
    """JSON, which is YAML too: Envoy reads the .yaml file alike, and it is 17x faster to write."""
    return to_json(bootstrap)


def sidecar_bootstrap(graph: MeshGraph, service: ServiceNode, report, address: str | None = None) -> dict:
    """The complete sidecar bootstrap of `service`, listening inbound on `address`."""
    if address is None:
        endpoints = service.spec.endpoints
        address = endpoints[0].address if len(endpoints) == 1 else ANY_ADDRESS
    builder = _Proxy(graph, report, service.key, service.platform.name,
                     Certificates(service.platform.certificates, service.key))
    listeners = [builder.inbound_listener(service, port, address) for port in service.spec.ports]
    listeners += builder.outbound_listeners(service, address)
    return builder.bootstrap(listeners, service.sidecar.admin_port)


def gateway_bootstrap(graph: MeshGraph, gateway: GatewayNode, report, address: str | None = None) -> dict:
    """The complete bootstrap of an ingress gateway, listening on `address` (default any)."""
    from targets.envoy_gateway import gateway_listeners

    builder = _Proxy(graph, report, gateway.key, gateway.platform.name,
                     Certificates(gateway.platform.certificates, gateway.key))
    listeners = gateway_listeners(builder, gateway, address or ANY_ADDRESS)
    own = gateway.spec.sidecar
    admin_port = (own and own.adminPort) or gateway.platform.sidecar.adminPort or DEFAULT_ADMIN_PORT
    return builder.bootstrap(listeners, admin_port)


def sidecar_sources(graph: MeshGraph, service: ServiceNode) -> tuple[str, ...]:
    """Intent files a sidecar is compiled from: the mesh, the service, its policies, its callees."""
    files = {graph.mesh_origin.file, service.origin.file}
    route = graph.route_for(service.key)
    if route is not None:
        files.add(route.origin.file)
    files.update(policy.origin.file for policy in graph.policies_for(service.key))
    for callee in service.calls:
        files.update(_destination_files(graph, callee))
    return tuple(sorted(files))


def gateway_sources(graph: MeshGraph, gateway: GatewayNode) -> tuple[str, ...]:
    files = {graph.mesh_origin.file, gateway.origin.file}
    for route in graph.gateway_routes.get(gateway.key, ()):
        files.add(route.origin.file)
        for target in _route_targets(route):
            files.add(graph.services[target.service].origin.file)
    return tuple(sorted(files))


def _destination_files(graph: MeshGraph, callee: Key) -> set[str]:
    external = graph.externals.get(callee)
    if external is not None:
        return {external.origin.file}
    files = {graph.services[callee].origin.file}
    route = graph.route_for(callee)
    if route is not None:
        files.add(route.origin.file)
        files.update(graph.services[t.service].origin.file for t in _route_targets(route))
    return files


def _route_targets(route: RouteNode) -> Iterable[Target]:
    for rule in route.rules:
        yield from rule.destinations
        if rule.mirror is not None:
            yield rule.mirror


class _OncePerIntent:
    """Forwards each distinct diagnostic once: many proxies share one callee's Route."""

    def __init__(self, report) -> None:
        self.report = report
        self.seen: set[tuple[str, str, Location | None]] = set()

    def add(self, code, message, location, **extra):
        key = (code.code, message, location)
        if key not in self.seen:
            self.seen.add(key)
            self.report.add(code, message, location, **extra)


# ---------------------------------------------------------------------------------------------
# Small converters


def duration(text: str | Decimal) -> str:
    """A meshc duration (or seconds) as a protobuf JSON Duration: `2s`, `0.25s`."""
    seconds = duration_seconds(text) if isinstance(text, str) else text
    return f"{seconds.normalize():f}s"


def fractional_percent(percent: float) -> dict:
    if float(percent).is_integer():
        return {"numerator": int(percent), "denominator": "HUNDRED"}
    return {"numerator": round(percent * 10_000), "denominator": "MILLION"}


def socket_address(address: str, port: int) -> dict:
    return {"socket_address": {"address": address, "port_value": port}}


def string_matcher(match: StringMatch) -> dict:
    if match.exact is not None:
        return {"exact": match.exact}
    if match.prefix is not None:
        return {"prefix": match.prefix}
    return {"safe_regex": {"regex": match.regex}}


def typed(name: str, type_url: str, **config: Any) -> dict:
    return {"name": name, "typed_config": {"@type": type_url, **config}}


def cluster_name(key: Key, port: int, version: str | None = None) -> str:
    """Istio's naming: direction|port|subset|host."""
    return f"outbound|{port}|{version or ''}|{key.name}.{key.namespace}"


def router_filter() -> dict:
    return typed("envoy.filters.http.router", ROUTER)


def tcp_proxy(stat_prefix: str, weighted: list[tuple[str, int]]) -> dict:
    config: dict[str, Any] = {"stat_prefix": stat_prefix}
    if len(weighted) == 1:
        config["cluster"] = weighted[0][0]
    else:
        config["weighted_clusters"] = {"clusters": [{"name": n, "weight": w} for n, w in weighted]}
    return typed("envoy.filters.network.tcp_proxy", TCP_PROXY, **config)


def tls_inspector() -> dict:
    return typed("envoy.filters.listener.tls_inspector", TLS_INSPECTOR)


def http2_options() -> dict:
    return {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "@type": HTTP_PROTOCOL_OPTIONS,
        "explicit_http_config": {"http2_protocol_options": {}},
    }}


# ---------------------------------------------------------------------------------------------
# One proxy's configuration


class _Proxy:
    """Builds one bootstrap; collects the clusters its listeners refer to, once each."""

    def __init__(self, graph: MeshGraph, report, identity: Key, platform: str, certificates: Certificates) -> None:
        self.graph = graph
        self.report = report
        self.identity = identity
        self.platform = platform  # where this proxy runs: decides how it reaches Cloud Foundry apps
        self.certificates = certificates
        self.clusters: dict[str, dict] = {}

    def at(self, origin, *path: Any) -> Location:
        return self.graph.sources.locate(origin, *path)

    def bootstrap(self, listeners: list[dict], admin_port: int) -> dict:
        if self.graph.mesh.tracing is not None:
            self.add_tracing_cluster()
        clusters = [self.clusters[name] for name in sorted(self.clusters)]
        clusters += self.certificates.clusters()
        return {
            "node": {"id": f"{self.identity.namespace}/{self.identity.name}",
                     "cluster": f"{self.identity.name}.{self.identity.namespace}"},
            "admin": {"address": socket_address(LOOPBACK, admin_port)},
            "static_resources": {"listeners": listeners, "clusters": clusters},
        }

    # -- HTTP connection managers ------------------------------------------------------------

    def http_connection_manager(self, stat_prefix: str, virtual_hosts: list[dict], http_filters: list[dict],
                                direction: str) -> dict:
        config: dict[str, Any] = {
            "stat_prefix": stat_prefix,
            "codec_type": "AUTO",
            "route_config": {"name": stat_prefix, "virtual_hosts": virtual_hosts},
            "http_filters": http_filters,
        }
        tracing = self.tracing(direction)
        if tracing is not None:
            config["tracing"] = tracing
        return typed("envoy.filters.network.http_connection_manager", HCM, **config)

    def tracing(self, direction: str) -> dict | None:
        settings = self.graph.mesh.tracing
        if settings is None:
            return None
        if settings.provider == "zipkin":
            provider = typed("envoy.tracers.zipkin", ZIPKIN, collector_cluster=TRACING_CLUSTER,
                             collector_endpoint="/api/v2/spans", collector_endpoint_version="HTTP_JSON")
        else:
            provider = typed("envoy.tracers.opentelemetry", OPENTELEMETRY,
                             grpc_service={"envoy_grpc": {"cluster_name": TRACING_CLUSTER}},
                             service_name=f"{self.identity.name}.{self.identity.namespace}")
        return {"random_sampling": {"value": settings.samplingPercent}, "provider": provider,
                "spawn_upstream_span": direction == "outbound"}

    def add_tracing_cluster(self) -> None:
        settings = self.graph.mesh.tracing
        host, port = settings.address.rsplit(":", 1)
        cluster = self.plain_cluster(TRACING_CLUSTER, Upstream((host,), int(port), version_aware=False))
        if settings.provider == "opentelemetry":
            cluster["typed_extension_protocol_options"] = http2_options()
        self.clusters[TRACING_CLUSTER] = cluster

    # -- inbound -------------------------------------------------------------------------------

    def inbound_listener(self, service: ServiceNode, port, address: str) -> dict:
        local = f"inbound|{port.port}"
        app = self.plain_cluster(local, Upstream((LOOPBACK,), port.targetPort or port.port, version_aware=True))
        if port.protocol in ("http2", "grpc"):
            app["typed_extension_protocol_options"] = http2_options()
        self.clusters[local] = app

        if service.spec.rateLimit is not None and port.protocol not in HTTP_PROTOCOLS:
            self.report.add(
                codes.ENVOY_RATE_LIMIT_UNSUPPORTED,
                f"service {service.key} sets rateLimit, but port {port.port} ({port.protocol}) carries no HTTP "
                "requests to count; only its HTTP ports are limited",
                self.at(service.origin, "rateLimit"),
            )

        def filters() -> list[dict]:
            if port.protocol in HTTP_PROTOCOLS:
                return [self.inbound_http(service, port, local)]
            chain = self.network_rbac(service, port)
            if port.protocol == "mongo":
                chain.append(typed("envoy.filters.network.mongo_proxy", MONGO_PROXY, stat_prefix=local))
            chain.append(tcp_proxy(local, [(local, 100)]))
            return chain

        listener: dict[str, Any] = {"name": local, "address": socket_address(address, port.port)}
        if service.mtls == "DISABLE":
            listener["filter_chains"] = [{"filters": filters()}]
        elif service.mtls == "STRICT":
            listener["filter_chains"] = [{"filters": filters(), "transport_socket": self.certificates.downstream()}]
        else:
            # PERMISSIVE: TLS clients get mTLS, plain-text clients the same filters without it.
            listener["listener_filters"] = [tls_inspector()]
            listener["filter_chains"] = [
                {"filter_chain_match": {"transport_protocol": "tls"}, "filters": filters(),
                 "transport_socket": self.certificates.downstream()},
                {"filters": filters()},
            ]
        return listener

    def inbound_http(self, service: ServiceNode, port, local: str) -> dict:
        http_filters = self.http_rbac(service, port)
        if service.spec.rateLimit is not None:
            http_filters.append(self.local_rate_limit(service, local))
        http_filters.append(router_filter())
        virtual_host = {"name": local, "domains": ["*"],
                        "routes": [{"match": {"prefix": "/"}, "route": {"cluster": local, "timeout": "0s"}}]}
        return self.http_connection_manager(local, [virtual_host], http_filters, "inbound")

    def local_rate_limit(self, service: ServiceNode, stat_prefix: str) -> dict:
        limit = service.spec.rateLimit
        per = duration_seconds(limit.per)
        scale = 1
        while per * scale < MIN_FILL_INTERVAL:
            scale += 1
        tokens = limit.requests * scale
        always = {"numerator": 100, "denominator": "HUNDRED"}
        return typed(
            "envoy.filters.http.local_ratelimit", LOCAL_RATE_LIMIT,
            stat_prefix=f"{stat_prefix}|rate_limit",
            token_bucket={"max_tokens": tokens, "tokens_per_fill": tokens, "fill_interval": duration(per * scale)},
            filter_enabled={"runtime_key": "local_rate_limit_enabled", "default_value": always},
            filter_enforced={"runtime_key": "local_rate_limit_enforced", "default_value": always},
        )

    # -- authorization -------------------------------------------------------------------------

    def http_rbac(self, service: ServiceNode, port) -> list[dict]:
        deny, allow, enforce_allow = self.rbac_policies(service, port, http=True)
        filters = []
        if deny:
            filters.append(typed("envoy.filters.http.rbac", HTTP_RBAC, rules={"action": "DENY", "policies": deny}))
        if enforce_allow:
            filters.append(typed("envoy.filters.http.rbac", HTTP_RBAC, rules={"action": "ALLOW", "policies": allow}))
        return filters

    def network_rbac(self, service: ServiceNode, port) -> list[dict]:
        deny, allow, enforce_allow = self.rbac_policies(service, port, http=False)
        stat_prefix = f"inbound|{port.port}|rbac"
        filters = []
        if deny:
            filters.append(typed("envoy.filters.network.rbac", NETWORK_RBAC, stat_prefix=stat_prefix,
                                 rules={"action": "DENY", "policies": deny}))
        if enforce_allow:
            filters.append(typed("envoy.filters.network.rbac", NETWORK_RBAC, stat_prefix=stat_prefix,
                                 rules={"action": "ALLOW", "policies": allow}))
        return filters

    def rbac_policies(self, service: ServiceNode, port, http: bool) -> tuple[dict, dict, bool]:
        """(deny policies, allow policies, whether only allowed callers get in) for one port."""
        policies = self.graph.policies_for(service.key)
        enforce_allow = self.graph.mesh.authorization == "deny" or any(p.allow for p in policies)
        sections: dict[str, dict] = {"deny": {}, "allow": {}}
        for policy in policies:
            for rule in (*policy.deny, *policy.allow):
                if rule.spec.ports and port.port not in rule.spec.ports:
                    continue
                entry = self.rbac_policy(service, policy, rule, http)
                if entry is not None:
                    sections[rule.section][f"{policy.key}/{rule.section}/{rule.index}"] = entry
        return sections["deny"], sections["allow"], enforce_allow

    def rbac_policy(self, service: ServiceNode, policy: AccessPolicyNode, rule: ResolvedAccessRule,
                    http: bool) -> dict | None:
        where = self.at(policy.origin, rule.section, rule.index)
        if service.mtls == "DISABLE":
            self.report.add(
                codes.ENVOY_ACCESS_RULE_UNSUPPORTED,
                f"AccessPolicy {policy.key} names callers of {service.key}, whose mtls is DISABLE: "
                "no caller presents an identity, so the rule matches nobody",
                where, hint="enable mTLS (STRICT or PERMISSIVE) for the service",
            )
            return None
        http_fields = bool(rule.spec.methods or rule.spec.paths)
        if http_fields and not http:
            effect = "admits nobody" if rule.section == "allow" else "denies the callers it names on every request"
            self.report.add(
                codes.ENVOY_ACCESS_RULE_UNSUPPORTED,
                f"AccessPolicy {policy.key} {rule.section} rule {rule.index} names methods or paths, "
                f"which a non-HTTP port of {service.key} cannot see: on that port it {effect}",
                where, hint="limit the rule with `ports` to the HTTP ports",
            )
            if rule.section == "allow":
                return None
        permissions = [self.permission(rule) if http else {"any": True}]
        principals = [self.principal(p) for p in rule.principals]
        return {"permissions": permissions, "principals": principals}

    def permission(self, rule: ResolvedAccessRule) -> dict:
        conditions = []
        if rule.spec.methods:
            conditions.append({"or_rules": {"rules": [
                {"header": {"name": ":method", "string_match": {"exact": method}}} for method in rule.spec.methods
            ]}})
        paths = [p for p in rule.spec.paths if p != "*"]
        if paths and len(paths) == len(rule.spec.paths):
            conditions.append({"or_rules": {"rules": [{"url_path": {"path": path_pattern(p)}} for p in paths]}})
        if not conditions:
            return {"any": True}
        return {"and_rules": {"rules": conditions}}

    def principal(self, principal: Principal) -> dict:
        domain = self.graph.mesh.trustDomain
        if principal.kind == "any":
            name = {"prefix": f"spiffe://{domain}/"}
        elif principal.kind == "namespace":
            name = {"prefix": f"spiffe://{domain}/ns/{principal.namespace}/sa/"}
        else:
            name = {"exact": self.graph.spiffe_id(Key(principal.namespace, principal.name))}
        return {"authenticated": {"principal_name": name}}

    # -- outbound ------------------------------------------------------------------------------

    def outbound_listeners(self, service: ServiceNode, address: str) -> list[dict]:
        from targets.envoy_outbound import outbound_listeners

        return outbound_listeners(self, service, address)

    # -- clusters ------------------------------------------------------------------------------

    def plain_cluster(self, name: str, upstream: Upstream) -> dict:
        return {
            "name": name,
            "type": "STRICT_DNS" if upstream.needs_dns else "STATIC",
            "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": socket_address(host, upstream.port)}} for host in upstream.hosts
            ]}]},
        }

    def service_cluster(self, target: Target) -> str:
        """The cluster of a mesh destination (one version of it when given), added once."""
        name = cluster_name(target.service, target.port, target.version)
        if name in self.clusters:
            return name
        callee = self.graph.services[target.service]
        upstream = service_upstream(callee, target.port, target.version, caller_platform=self.platform)
        cluster = self.plain_cluster(name, upstream)
        resilience = callee.resilience
        if resilience.loadBalancer is not None:
            balancer = resilience.loadBalancer
            cluster["lb_policy"] = "RING_HASH" if not isinstance(balancer, str) else LB_POLICIES[balancer]
        breaker = resilience.circuitBreaker
        if breaker is not None:
            thresholds = {
                "max_connections": breaker.maxConnections, "max_pending_requests": breaker.maxPendingRequests,
                "max_requests": breaker.maxRequests, "max_retries": breaker.maxRetries,
            }
            cluster["circuit_breakers"] = {"thresholds": [{k: v for k, v in thresholds.items() if v is not None}]}
        outlier = resilience.outlierDetection
        if outlier is not None:
            cluster["outlier_detection"] = {
                "consecutive_5xx": outlier.consecutive5xx,
                "interval": duration(outlier.interval),
                "base_ejection_time": duration(outlier.baseEjectionTime),
                "max_ejection_percent": outlier.maxEjectionPercent,
            }
        if callee.port(target.port).protocol in ("http2", "grpc"):
            cluster["typed_extension_protocol_options"] = http2_options()
        if upstream.through_router:
            cluster["transport_socket"] = self.certificates.originate(upstream.hosts[0])
        elif callee.mtls != "DISABLE":
            cluster["transport_socket"] = self.certificates.upstream(self.graph.spiffe_id(callee.key))
        self.clusters[name] = cluster
        return name

    def external_cluster(self, external: ExternalNode, port) -> str:
        name = cluster_name(external.key, port.port)
        if name in self.clusters:
            return name
        hosts = []
        for index, host in enumerate(external.spec.hosts):
            if host.startswith("*"):
                self.report.add(
                    codes.ENVOY_EXTERNAL_HOST_UNSUPPORTED,
                    f"ExternalService {external.key} host {host!r} is a wildcard, which a static sidecar cannot resolve",
                    self.at(external.origin, "hosts", index),
                    hint="list the concrete host names",
                )
            else:
                hosts.append(host)
        upstream = external_upstream(external, port.port)
        cluster = self.plain_cluster(name, Upstream(tuple(hosts), upstream.port, upstream.version_aware))
        if port.protocol in ("http2", "grpc"):
            cluster["typed_extension_protocol_options"] = http2_options()
        if external.spec.tls.originate and hosts:
            cluster["transport_socket"] = self.certificates.originate(external.spec.tls.sni or hosts[0])
        self.clusters[name] = cluster
        return name


def path_pattern(path: str) -> dict:
    """An AccessPolicy path: exact, `/prefix/*`, or a glob with `*` inside (as a regex)."""
    if "*" not in path:
        return {"exact": path}
    if path.endswith("*") and "*" not in path[:-1]:
        return {"prefix": path[:-1]}
    return {"safe_regex": {"regex": ".*".join(re.escape(part) for part in path.split("*"))}}


def retry_policy(proxy: _Proxy, retries: Retries, where: Location) -> dict:
    conditions = [c for c in retries.retryOn if c != "retriable-status-codes"]
    if len(conditions) != len(retries.retryOn):
        proxy.report.add(
            codes.ENVOY_ROUTE_FEATURE_UNSUPPORTED,
            "retryOn retriable-status-codes needs a list of status codes, which the intent has no field for; "
            "it is left out",
            where, hint="use 5xx, gateway-error or retriable-4xx",
        )
    policy: dict[str, Any] = {"retry_on": ",".join(conditions), "num_retries": retries.attempts}
    if retries.perTryTimeout is not None:
        policy["per_try_timeout"] = duration(retries.perTryTimeout)
    if not retries.allowNonIdempotent:
        idempotent = "|".join(IDEMPOTENT_METHODS)
        policy["retriable_request_headers"] = [{"name": ":method", "string_match": {"safe_regex": {"regex": idempotent}}}]
    return policy


def route_match(match: Match | None) -> dict:
    """An Envoy RouteMatch for one intent match entry (None: everything)."""
    result: dict[str, Any] = {"prefix": "/"}
    if match is None:
        return result
    if match.path is not None:
        if match.path.exact is not None:
            result = {"path": match.path.exact}
        elif match.path.prefix is not None:
            result = {"prefix": match.path.prefix}
        else:
            result = {"safe_regex": {"regex": match.path.regex}}
    headers = []
    if match.method is not None:
        headers.append({"name": ":method", "string_match": {"exact": match.method}})
    for name, value in match.headers.items():
        if value.present:
            headers.append({"name": name.lower(), "present_match": True})
        else:
            headers.append({"name": name.lower(), "string_match": string_matcher(value)})
    if headers:
        result["headers"] = headers
    parameters = []
    for name, value in match.query.items():
        if value.present:
            parameters.append({"name": name, "present_match": True})
        else:
            parameters.append({"name": name, "string_match": string_matcher(value)})
    if parameters:
        result["query_parameters"] = parameters
    return result
