"""One Envoy's configuration as it is built: the `Proxy` and what its routes share.

A `Proxy` is made per sidecar or gateway (see targets.envoylib.bootstrap); the inbound side,
authorization (RBAC), tracing and every cluster are built here, the outbound and gateway
listeners in targets.envoylib.outbound and targets.envoylib.gateway, which ask the proxy for
their clusters.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from compiler import codes
from compiler.addressing import (
    LocalityUpstream,
    Upstream,
    locality_upstreams,
    service_upstream,
    uses_localities,
)
from compiler.diagnostics import Location
from compiler.graph import (
    AccessPolicyNode,
    ExternalNode,
    Key,
    MeshGraph,
    Principal,
    ResolvedAccessRule,
    ServiceNode,
    Target,
)
from compiler.model import (
    HTTP_PROTOCOLS,
    LOAD_BALANCER_POLICIES,
    ExternalPort,
    JwtProvider,
    Retries,
    retries_in_force,
    timeout_seconds,
)
from targets.envoylib.authn import JWT_AUTHN_FILTER, PAYLOAD_KEY, jwks_clusters, jwt_authn_filter
from targets.envoylib.blocks import (
    HCM,
    HCM_FILTER,
    HTTP_RBAC,
    LOOPBACK,
    NETWORK_RBAC,
    OPENTELEMETRY,
    PREVIOUS_HOSTS,
    ZIPKIN,
    cluster_discovery,
    cluster_name,
    duration,
    http2_options,
    http_protocol_options,
    local_rate_limit,
    mongo_proxy,
    needs_http2,
    path_pattern,
    router_filter,
    socket_address,
    tcp_proxy,
    tls_inspector,
    typed,
)
from targets.envoylib.tls import Certificates

TRACING_CLUSTER = "tracing"
# RFC 9110 idempotent methods: retried unless a rule opts in with allowNonIdempotent.
IDEMPOTENT_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PUT", "TRACE")


class Proxy:
    """Builds one Envoy's configuration: its listeners ask it for filters and clusters, and it
    collects each cluster once; `bootstrap` assembles the whole.

    `identity` is the service or gateway the Envoy runs for, `platform` the platform it runs on
    (which decides how it reaches Cloud Foundry apps), `report` where target diagnostics go.
    """

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
        node: dict[str, Any] = {"id": f"{self.identity.namespace}/{self.identity.name}",
                                "cluster": f"{self.identity.name}.{self.identity.namespace}"}
        locality = self.graph.platforms[self.platform].locality
        if locality is not None:
            node["locality"] = envoy_locality(locality)
        return {
            "node": node,
            "admin": {"address": socket_address(LOOPBACK, admin_port)},
            "static_resources": {"listeners": listeners, "clusters": clusters},
        }

    # -- HTTP connection managers ------------------------------------------------------------

    def http_connection_manager(self, stat_prefix: str, virtual_hosts: list[dict], http_filters: list[dict],
                                direction: str, ignore_port_in_host: bool = False) -> dict:
        """With ignore_port_in_host, a port in the Host header takes no part in choosing the virtual
        host (a gateway, docs/intents.md); a sidecar's `name:port` domains choose the callee port."""
        route_config: dict[str, Any] = {"name": stat_prefix, "virtual_hosts": virtual_hosts}
        if ignore_port_in_host:
            route_config["ignore_port_in_host_matching"] = True
        config: dict[str, Any] = {
            "stat_prefix": stat_prefix,
            "codec_type": "AUTO",
            "route_config": route_config,
            "http_filters": http_filters,
            # WebSockets (an HTTP/1.1 Upgrade) pass on every HTTP port, as on Istio (docs/intents.md);
            # Envoy refuses an upgrade its connection manager does not name
            "upgrade_configs": [{"upgrade_type": "websocket"}],
        }
        tracing = self.tracing(direction)
        if tracing is not None:
            config["tracing"] = tracing
        return typed(HCM_FILTER, HCM, **config)

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
        if settings is None:
            return
        host, port = settings.address.rsplit(":", 1)
        cluster = self.plain_cluster(TRACING_CLUSTER, Upstream((host,), int(port), version_aware=False))
        if settings.provider == "opentelemetry":
            cluster["typed_extension_protocol_options"] = http2_options()
        self.clusters[TRACING_CLUSTER] = cluster

    # -- inbound -------------------------------------------------------------------------------

    def inbound_listener(self, service: ServiceNode, port, address: str) -> dict:
        local = f"inbound|{port.port}"
        app = self.plain_cluster(local, Upstream((LOOPBACK,), port.app_port, version_aware=True))
        if needs_http2(port.protocol):
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
                chain.append(mongo_proxy(local))
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
        # authentication (401) before authorization (403), as Istio orders jwt_authn before RBAC
        http_filters = self.authentication(service.spec.jwt) + self.http_rbac(service, port)
        if service.spec.rateLimit is not None:
            http_filters.append(local_rate_limit(service.spec.rateLimit, f"{local}|rate_limit"))
        http_filters.append(router_filter())
        virtual_host = {"name": local, "domains": ["*"],
                        "routes": [{"match": {"prefix": "/"}, "route": {"cluster": local, "timeout": "0s"}}]}
        return self.http_connection_manager(local, [virtual_host], http_filters, "inbound")

    # -- end-user authentication ---------------------------------------------------------------

    def authentication(self, providers: list[JwtProvider]) -> list[dict]:
        """The jwt_authn filter of the proxy's `jwt` providers, with the clusters of remote JWKS."""
        if not providers:
            return []
        for cluster in jwks_clusters(providers):
            self.clusters[cluster["name"]] = cluster
        return [jwt_authn_filter(providers)]

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
        identities = [p for p in rule.principals if p.kind != "unauthenticated"]
        if service.mtls == "DISABLE" and identities and rule.spec.from_ is not None:
            self.report.add(
                codes.ENVOY_ACCESS_RULE_UNSUPPORTED,
                f"AccessPolicy {policy.key} names callers of {service.key}, whose mtls is DISABLE: "
                "no caller presents an identity, so the rule matches nobody",
                where, hint="enable mTLS (STRICT or PERMISSIVE) for the service",
            )
            return None
        if rule.spec.narrows_requests and not http:
            effect = "admits nobody" if rule.section == "allow" else "denies the callers it names on every request"
            self.report.add(
                codes.ENVOY_ACCESS_RULE_UNSUPPORTED,
                f"AccessPolicy {policy.key} {rule.section} rule {rule.index} names methods, paths, end users or "
                f"headers, which a non-HTTP port of {service.key} cannot see: on that port it {effect}",
                where, hint="limit the rule with `ports` to the HTTP ports",
            )
            if rule.section == "allow":
                return None
        permissions = [self.permission(rule) if http else {"any": True}]
        return {"permissions": permissions, "principals": self.rule_principals(rule, http)}

    def rule_principals(self, rule: ResolvedAccessRule, http: bool) -> list[dict]:
        """RBAC principals of a rule: its callers (any, without `from`) and, on HTTP, each of its
        end-user, claim and header conditions."""
        callers = [{"any": True}] if rule.spec.from_ is None else [self.principal(p) for p in rule.principals]
        conditions = request_conditions(rule) if http else []
        if conditions:  # the caller, and each condition
            callers = [{"and_ids": {"ids": [*([] if rule.spec.from_ is None else [any_of(callers)]), *conditions]}}]
        return callers

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
        domain = self.graph.trust_domain(self.graph.platforms[self.platform])
        if principal.kind in ("ipBlocks", "remoteIpBlocks"):
            # the connection's source, or the trusted client address of the connection manager
            field = "direct_remote_ip" if principal.kind == "ipBlocks" else "remote_ip"
            return any_of([{field: cidr_range(block)} for block in principal.blocks])
        if principal.kind == "unauthenticated":
            return {"not_id": self.principal(Principal("any"))}
        if principal.kind == "any":
            name = {"prefix": f"spiffe://{domain}/"}
        elif principal.kind == "namespace":
            name = {"prefix": f"spiffe://{domain}/ns/{principal.namespace}/sa/"}
        else:
            name = {"exact": self.graph.spiffe_id(principal.key())}
        return {"authenticated": {"principal_name": name}}

    # -- clusters ------------------------------------------------------------------------------

    def plain_cluster(self, name: str, upstream: Upstream) -> dict:
        return {
            "name": name,
            **cluster_discovery(upstream.needs_dns),
            "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": socket_address(host, upstream.port)}} for host in upstream.hosts
            ]}]},
        }

    def service_cluster(self, target: Target) -> str:
        """The cluster of a mesh destination (one version of it when given), added once."""
        external = self.graph.externals.get(target.service)
        if external is not None:  # a Route on an external host sends to external hosts
            port = external.port(target.port)
            assert isinstance(port, ExternalPort)  # the linker resolved the destination's port
            return self.external_cluster(external, port)
        name = cluster_name(target.service, target.port, target.version)
        if name in self.clusters:
            return name
        callee = self.graph.services[target.service]
        caller = self.graph.platforms[self.platform]
        localities = None
        if uses_localities(callee, caller):
            localities = locality_upstreams(callee, target.port, target.version, caller)
            cluster = self.locality_cluster(name, localities)
            upstream = None
        else:
            upstream = service_upstream(callee, target.port, target.version, caller_platform=self.platform)
            cluster = self.plain_cluster(name, upstream)
        resilience = callee.resilience
        if resilience.loadBalancer is not None:
            balancer = resilience.loadBalancer
            cluster["lb_policy"] = "RING_HASH" if not isinstance(balancer, str) else LOAD_BALANCER_POLICIES[balancer]
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
        protocol = callee.protocol(target.port)
        connections = resilience.connections
        upgraded = bool(connections is not None and connections.http2Upgrade and protocol == "http")
        through_router = upstream is not None and upstream.through_router
        if upgraded and through_router:
            self.report.add(codes.CF_HTTP2_UPGRADE_THROUGH_ROUTER,
                            f"http2Upgrade of {callee.key} does not apply to callers reaching it through the "
                            "Cloud Foundry router: they keep HTTP/1.1",
                            self.connections_at(callee, "http2Upgrade"))
            upgraded = False
        if needs_http2(protocol) or upgraded:
            cluster["typed_extension_protocol_options"] = http2_options(connections)
        elif protocol in HTTP_PROTOCOLS and connections is not None and (
                connections.idleTimeout is not None or connections.maxRequestsPerConnection is not None):
            cluster["typed_extension_protocol_options"] = http_protocol_options(False, connections)
        if through_router:
            assert upstream is not None  # only a plain upstream goes through the router
            cluster["transport_socket"] = self.certificates.originate(upstream.hosts[0])
        elif callee.mtls != "DISABLE":
            # one server name for every endpoint: an east-west gateway forwards by it, a sidecar ignores it
            sni = next((u.sni for u in localities or () if u.sni is not None), None)
            cluster["transport_socket"] = self.certificates.upstream(self.graph.spiffe_id(callee.key), sni)
        self.clusters[name] = cluster
        return name

    def locality_cluster(self, name: str, localities: list[LocalityUpstream]) -> dict:
        """A cluster whose endpoints are grouped by placement: locality, failover priority and,
        when the service weighs its placements, the placement's weight."""
        groups = []
        for one in localities:
            group: dict[str, Any] = {}
            if one.locality is not None:
                group["locality"] = envoy_locality(one.locality)
            group["lb_endpoints"] = [{"endpoint": {"address": socket_address(host, one.upstream.port)}}
                                     for host in one.upstream.hosts]
            if one.weight is not None:
                group["load_balancing_weight"] = one.weight
            if one.tier:
                group["priority"] = one.tier
            groups.append(group)
        dns = any(one.upstream.needs_dns for one in localities)
        cluster: dict[str, Any] = {"name": name, **cluster_discovery(dns),
                                   "load_assignment": {"cluster_name": name, "endpoints": groups}}
        if any(one.weight is not None for one in localities):
            # Envoy reads the localities' weights only with locality weighted load balancing on
            cluster["common_lb_config"] = {"locality_weighted_lb_config": {}}
        return cluster

    def connections_at(self, callee: ServiceNode, field: str) -> Location:
        """Where a service's connection setting is written: its own resilience, else Mesh.defaults."""
        own = callee.spec.resilience is not None and callee.spec.resilience.connections is not None
        if own:
            return self.at(callee.origin, "resilience", "connections", field)
        return self.at(self.graph.mesh_origin, "defaults", "connections", field)

    def external_cluster(self, external: ExternalNode, port: ExternalPort) -> str:
        """The cluster of one port of an ExternalService, by its resolution (docs/intents.md):
        DNS, the hosts' addresses (wildcard hosts left out, MESH418); STATIC, its endpoints;
        NONE, nothing this sidecar can pass through to (MESH456): connections are refused."""
        name = cluster_name(external.key, port.port)
        if name in self.clusters:
            return name
        spec = external.spec
        hosts = [host for host in spec.hosts if not host.startswith("*")]
        upstream_port = spec.upstream_port(port)
        if spec.effective_resolution == "STATIC":
            cluster = {"name": name, "type": "STATIC", "load_assignment": {"cluster_name": name, "endpoints": [
                {"lb_endpoints": [{"endpoint": {"address": socket_address(address, number)}}
                                  for address, number in spec.static_endpoints(port)]}]}}
        elif spec.resolution == "NONE":
            self.report.add(
                codes.ENVOY_EXTERNAL_RESOLUTION_UNSUPPORTED,
                f"ExternalService {external.key} has resolution NONE: a sidecar meshc generates takes the "
                "application's traffic on loopback, with no original destination to pass it on to; it refuses it",
                self.at(external.origin, "resolution"),
                hint="name its addresses with resolution STATIC and `endpoints`",
            )
            cluster = {"name": name, "type": "STATIC", "load_assignment": {"cluster_name": name, "endpoints": []}}
            hosts = []
        else:
            for index, host in enumerate(spec.hosts):
                if host.startswith("*"):
                    self.report.add(
                        codes.ENVOY_EXTERNAL_HOST_UNSUPPORTED,
                        f"ExternalService {external.key} host {host!r} is a wildcard, "
                        "which a static sidecar cannot resolve",
                        self.at(external.origin, "hosts", index),
                        hint="list the concrete host names",
                    )
            cluster = self.plain_cluster(name, Upstream(tuple(hosts), upstream_port, version_aware=False))
        if needs_http2(port.protocol):
            cluster["typed_extension_protocol_options"] = http2_options()
        origination = spec.origination(port)
        if origination is not None and hosts:
            cluster["transport_socket"] = self.certificates.originate(origination.sni or hosts[0])
        self.clusters[name] = cluster
        return name


def envoy_locality(locality) -> dict:
    """Envoy's Locality (region, zone, sub_zone) of a platform's `locality`."""
    fields = {"region": locality.region, "zone": locality.zone, "sub_zone": locality.subzone}
    return {key: value for key, value in fields.items() if value is not None}


def value_matcher(pattern: str) -> dict:
    """An Envoy StringMatcher for an AccessRule value: exact, `prefix*`, `*suffix`, `*` (any)."""
    if pattern == "*":
        return {"safe_regex": {"regex": ".*"}}
    if pattern.endswith("*"):
        return {"prefix": pattern[:-1]}
    if pattern.startswith("*"):
        return {"suffix": pattern[1:]}
    return {"exact": pattern}


def payload_matcher(claim: str, value: dict) -> dict:
    """A claim of the verified JWT payload, which jwt_authn wrote to its dynamic metadata."""
    return {"metadata": {"filter": JWT_AUTHN_FILTER, "path": [{"key": PAYLOAD_KEY}, {"key": claim}],
                         "value": value}}


def claim_matcher(claim: str, pattern: str) -> dict:
    """A string claim with the value, or a list claim with a string element that has it."""
    matcher = value_matcher(pattern)
    return {"or_ids": {"ids": [payload_matcher(claim, {"string_match": matcher}),
                               payload_matcher(claim, {"list_match": {"one_of": {"string_match": matcher}}})]}}


def request_principal_matcher(pattern: str) -> dict:
    """`*`, `<issuer>/*` or `<issuer>/<subject>` on the verified payload's `iss` and `sub`."""
    if pattern == "*":
        return payload_matcher("iss", {"present_match": True})
    issuer, _, subject = pattern.rpartition("/")
    by_issuer = payload_matcher("iss", {"string_match": {"exact": issuer}})
    if subject == "*":
        return by_issuer
    return {"and_ids": {"ids": [by_issuer, payload_matcher("sub", {"string_match": {"exact": subject}})]}}


def header_matcher(name: str, pattern: str) -> dict:
    if pattern == "*":
        return {"header": {"name": name.lower(), "present_match": True}}
    return {"header": {"name": name.lower(), "string_match": value_matcher(pattern)}}


def cidr_range(block: str) -> dict:
    """An Envoy CidrRange of an address or CIDR block."""
    network = ipaddress.ip_network(block, strict=False)
    return {"address_prefix": str(network.network_address), "prefix_len": network.prefixlen}


def any_of(ids: list[dict]) -> dict:
    return ids[0] if len(ids) == 1 else {"or_ids": {"ids": ids}}


def request_conditions(rule: ResolvedAccessRule) -> list[dict]:
    """RBAC principals for a rule's end users, claims and headers, each of which must match."""
    spec = rule.spec
    conditions = []
    if spec.requestPrincipals:
        conditions.append(any_of([request_principal_matcher(p) for p in spec.requestPrincipals]))
    conditions += [any_of([claim_matcher(name, p) for p in patterns]) for name, patterns in spec.claims.items()]
    conditions += [any_of([header_matcher(name, p) for p in patterns]) for name, patterns in spec.headers.items()]
    return conditions


# Istio's retries prefer an endpoint not tried yet, except under consistent hashing (retry.go)
PREVIOUS_HOSTS_PREDICATE = {"name": "envoy.retry_host_predicates.previous_hosts",
                            "typed_config": {"@type": PREVIOUS_HOSTS}}
HOST_SELECTION_RETRY_MAX_ATTEMPTS = 5  # Istio's, with the predicate


def retry_policy(retries: Retries | None, sticky: bool) -> dict | None:
    """The Envoy RetryPolicy of the retries in force (unset: meshc's built-in default, Istio's),
    or None when there are no retries and no per-try timeout. `sticky`: the destination hashes
    requests to endpoints (ringHash), so a retry may go back to the same one."""
    in_force = retries_in_force(retries)
    per_try = timeout_seconds(in_force.perTryTimeout)
    if in_force.attempts == 0 and per_try is None:
        return None
    policy: dict[str, Any] = {"retry_on": ",".join(in_force.conditions()), "num_retries": in_force.attempts}
    if in_force.statusCodes:
        policy["retriable_status_codes"] = list(in_force.statusCodes)
    if per_try is not None:
        policy["per_try_timeout"] = duration(per_try)
    if in_force.backoff is not None:
        policy["retry_back_off"] = {"base_interval": duration(in_force.backoff.base),
                                    "max_interval": duration(in_force.backoff.max_interval())}
    if not sticky:
        policy["retry_host_predicate"] = [PREVIOUS_HOSTS_PREDICATE]
        policy["host_selection_retry_max_attempts"] = HOST_SELECTION_RETRY_MAX_ATTEMPTS
    if not in_force.allowNonIdempotent:
        idempotent = "|".join(IDEMPOTENT_METHODS)
        policy["retriable_request_headers"] = [
            {"name": ":method", "string_match": {"safe_regex": {"regex": idempotent}}}]
    return policy
