"""Envoy v3 building blocks that need no graph: type URLs, converters and single filters.

Every function returns plain data in Envoy's proto3 JSON form (field names and type URLs as
in the Envoy v3 API); nothing here reads the mesh, so targets that embed Envoy configuration
in other formats (the Istio EnvoyFilter) build the very same values.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from compiler.evaluate import DEFAULT_PORTS, origin_parts
from compiler.graph import Key
from compiler.model import (
    HTTP2_PROTOCOLS,
    ConnectionSettings,
    Cors,
    HeaderEdits,
    Match,
    OriginMatch,
    OriginRegex,
    RateLimit,
    RouteRateLimit,
    StringMatch,
    duration_seconds,
    token_bucket_scale,
)

LOOPBACK = "127.0.0.1"
ANY_ADDRESS = "0.0.0.0"
REDIRECT_CODES = {
    301: "MOVED_PERMANENTLY", 302: "FOUND", 303: "SEE_OTHER", 307: "TEMPORARY_REDIRECT", 308: "PERMANENT_REDIRECT",
}

HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
FAULT = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"
CORS = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"
CORS_POLICY = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy"
HTTP_RBAC = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
NETWORK_RBAC = "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC"
JWT_AUTHN = "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication"
LOCAL_RATE_LIMIT = "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"
TCP_PROXY = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
MONGO_PROXY = "type.googleapis.com/envoy.extensions.filters.network.mongo_proxy.v3.MongoProxy"
TLS_INSPECTOR = "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
HTTP_PROTOCOL_OPTIONS = "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
HTTP_PROTOCOL_OPTIONS_NAME = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
PREVIOUS_HOSTS = "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
ZIPKIN = "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig"
OPENTELEMETRY = "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig"

HCM_FILTER = "envoy.filters.network.http_connection_manager"
ROUTER_FILTER = "envoy.filters.http.router"
FAULT_FILTER = "envoy.filters.http.fault"
CORS_FILTER = "envoy.filters.http.cors"
LOCAL_RATE_LIMIT_FILTER = "envoy.filters.http.local_ratelimit"


# ---------------------------------------------------------------------------------------------
# Converters


def duration(text: str | Decimal) -> str:
    """A meshc duration (or seconds) as a protobuf JSON Duration: `2s`, `0.25s`."""
    seconds = duration_seconds(text) if isinstance(text, str) else text
    return f"{seconds.normalize():f}s"


def fractional_percent(percent: float) -> dict:
    """A percentage as an Envoy FractionalPercent (per million when it has a fraction)."""
    if float(percent).is_integer():
        return {"numerator": int(percent), "denominator": "HUNDRED"}
    return {"numerator": round(percent * 10_000), "denominator": "MILLION"}


def cluster_discovery(dns: bool) -> dict:
    """A cluster's `type`: STATIC for IP addresses; STRICT_DNS for names, resolved to their IPv4
    addresses as Istio resolves them for a proxy with IPv4 addresses (pilot
    util.SelectDNSLookupFamily: "IPv4 only ... return cluster.Cluster_V4_ONLY"), where Envoy's
    own default, AUTO, would look for IPv6 addresses first (docs/intents.md, ExternalService)."""
    return {"type": "STRICT_DNS", "dns_lookup_family": "V4_ONLY"} if dns else {"type": "STATIC"}


def socket_address(address: str, port: int) -> dict:
    """An Envoy Address for an IP address (or DNS name, for STRICT_DNS clusters) and port."""
    return {"socket_address": {"address": address, "port_value": port}}


def string_matcher(match: StringMatch) -> dict:
    """An Envoy StringMatcher for an intent StringMatch that is not a presence match."""
    if match.exact is not None:
        return {"exact": match.exact}
    if match.prefix is not None:
        return {"prefix": match.prefix}
    return {"safe_regex": {"regex": match.regex}}


def typed(name: str, type_url: str, **config: Any) -> dict:
    """A named extension with its typed_config (a filter, a tracer, a transport socket)."""
    return {"name": name, "typed_config": {"@type": type_url, **config}}


def cluster_name(key: Key, port: int, version: str | None = None) -> str:
    """Istio's naming for the cluster of `key` (a service or external service Key):
    direction|port|subset|host."""
    return f"outbound|{port}|{version or ''}|{key.name}.{key.namespace}"


def needs_http2(protocol: str) -> bool:
    """Whether an upstream speaking `protocol` must be spoken to in HTTP/2."""
    return protocol in HTTP2_PROTOCOLS


def http2_options(connections: ConnectionSettings | None = None) -> dict:
    """typed_extension_protocol_options of a cluster whose upstream speaks HTTP/2 only."""
    return http_protocol_options(True, connections)


def http_protocol_options(http2: bool, connections: ConnectionSettings | None) -> dict:
    """typed_extension_protocol_options of an HTTP cluster: HTTP/2 or HTTP/1.1, with the
    service's connection settings (common_http_protocol_options: idle_timeout, "the idle timeout
    for upstream connection pool connections", and max_requests_per_connection)."""
    options: dict[str, Any] = {"@type": HTTP_PROTOCOL_OPTIONS}
    common: dict[str, Any] = {}
    if connections is not None and connections.idleTimeout is not None:
        common["idle_timeout"] = duration(connections.idleTimeout)
    if connections is not None and connections.maxRequestsPerConnection is not None:
        common["max_requests_per_connection"] = connections.maxRequestsPerConnection
    if common:
        options["common_http_protocol_options"] = common
    options["explicit_http_config"] = {"http2_protocol_options" if http2 else "http_protocol_options": {}}
    return {HTTP_PROTOCOL_OPTIONS_NAME: options}


# ---------------------------------------------------------------------------------------------
# Filters


def router_filter() -> dict:
    """The HTTP router, always the last HTTP filter."""
    return typed(ROUTER_FILTER, ROUTER)


def fault_filter() -> dict:
    """The HTTP fault filter, configured per route (typed_per_filter_config)."""
    return typed(FAULT_FILTER, FAULT)


def route_filters(virtual_hosts: list[dict], between: list[dict] | None = None) -> list[dict]:
    """The HTTP filters a route table needs: cors, a rule's local rate limit and fault where some
    route configures them (typed_per_filter_config), then the router. cors comes first (it
    answers a preflight before anything else can refuse or abort it, and its headers reach every
    answer to an allowed origin), `between` (such as end-user authentication) next, then the
    rate limit (a refused request is not counted; an empty bucket answers 429 before any
    fault), fault last before the router."""
    configured = {name for vh in virtual_hosts for r in vh["routes"] for name in r.get("typed_per_filter_config", {})}
    filters = [typed(CORS_FILTER, CORS)] if CORS_FILTER in configured else []
    filters += between or []
    if LOCAL_RATE_LIMIT_FILTER in configured:
        filters.append(route_rate_limit_filter())
    if FAULT_FILTER in configured:
        filters.append(fault_filter())
    return [*filters, router_filter()]


def origin_matchers(pattern: OriginMatch) -> list[dict]:
    """StringMatchers allowing the origins docs/intents.md's pattern allows (Envoy
    CorsPolicy.allow_origin_string_match, Istio corsPolicy.allowOrigins): `*` as the exact `*`
    (Envoy's filter takes a matcher of "*" as every origin); an origin without wildcard as
    itself with and without the scheme's own port; a wildcard host as a regex; `{regex}` as is."""
    if isinstance(pattern, OriginRegex):
        return [{"safe_regex": {"regex": pattern.regex}}]
    parts = origin_parts(pattern)
    if parts is None:
        return [{"exact": "*"}]
    scheme, host, port = parts
    default = DEFAULT_PORTS[scheme] == port
    if "*" not in host:
        base = f"{scheme}://{host}"
        return [{"exact": base}, {"exact": f"{base}:{port}"}] if default else [{"exact": f"{base}:{port}"}]
    name = "[-a-z0-9.]+" + re.escape(host[1:])  # `*` is one or more characters of a host name
    return [{"safe_regex": {"regex": f"{re.escape(scheme)}://{name}" + (f"(:{port})?" if default else f":{port}")}}]


def cors_policy(cors: Cors) -> dict:
    """A route's CorsPolicy (typed_per_filter_config of the cors filter). A preflight whose
    Origin is not allowed is answered, not forwarded (forward_not_matching_preflights false:
    Istio's unmatchedPreflights IGNORE; the Gateway API answers it 200 or 204)."""
    policy: dict[str, Any] = {
        "@type": CORS_POLICY,
        "allow_origin_string_match": [m for pattern in cors.allowOrigins for m in origin_matchers(pattern)],
        "max_age": str(cors.max_age_seconds),
        "forward_not_matching_preflights": False,
    }
    for field, name in (("allowMethods", "allow_methods"), ("allowHeaders", "allow_headers"),
                        ("exposeHeaders", "expose_headers")):
        if getattr(cors, field):
            policy[name] = ",".join(getattr(cors, field))
    if cors.allowCredentials:
        policy["allow_credentials"] = True
    return policy


def tls_inspector() -> dict:
    """The listener filter that reads SNI and tells TLS from plain text."""
    return typed("envoy.filters.listener.tls_inspector", TLS_INSPECTOR)


def mongo_proxy(stat_prefix: str) -> dict:
    return typed("envoy.filters.network.mongo_proxy", MONGO_PROXY, stat_prefix=stat_prefix)


def tcp_proxy(stat_prefix: str, weighted: list[tuple[str, int]]) -> dict:
    """A tcp proxy to one cluster, or split over (cluster, weight) pairs."""
    config: dict[str, Any] = {"stat_prefix": stat_prefix}
    if len(weighted) == 1:
        config["cluster"] = weighted[0][0]
    else:
        config["weighted_clusters"] = {"clusters": [{"name": n, "weight": w} for n, w in weighted]}
    return typed("envoy.filters.network.tcp_proxy", TCP_PROXY, **config)


def local_rate_limit(limit: RateLimit, stat_prefix: str) -> dict:
    """The local rate limit HTTP filter admitting `limit.requests` per `limit.per`."""
    return typed(LOCAL_RATE_LIMIT_FILTER, LOCAL_RATE_LIMIT, **enforced_bucket(limit, stat_prefix))


def token_bucket(limit: RateLimit) -> dict:
    """A token bucket admitting `limit.requests` per `limit.per`, full at the start.

    Envoy refills at most every 50ms: a shorter `per` is scaled up to the first multiple that
    reaches 50ms, with as many more tokens, so the rate stays the one the intent names.
    """
    per = duration_seconds(limit.per)
    scale = token_bucket_scale(limit.per)
    tokens = limit.requests * scale
    return {"max_tokens": tokens, "tokens_per_fill": tokens, "fill_interval": duration(per * scale)}


def enforced_bucket(limit: RateLimit, stat_prefix: str) -> dict:
    """LocalRateLimit fields of one bucket enforced on every request (filter_enabled and
    filter_enforced default to 0%: "for safety")."""
    always = {"numerator": 100, "denominator": "HUNDRED"}
    return {"stat_prefix": stat_prefix, "token_bucket": token_bucket(limit),
            "filter_enabled": {"runtime_key": "local_rate_limit_enabled", "default_value": always},
            "filter_enforced": {"runtime_key": "local_rate_limit_enforced", "default_value": always}}


ROUTE_RATE_LIMIT_PREFIX = "route_rate_limit"


def route_rate_limit_filter() -> dict:
    """The local rate limit filter of a listener whose routes carry their own buckets: without
    a bucket of its own it limits only where a route configures it (typed_per_filter_config)."""
    return typed(LOCAL_RATE_LIMIT_FILTER, LOCAL_RATE_LIMIT, stat_prefix=ROUTE_RATE_LIMIT_PREFIX)


def route_rate_limit(limit: RouteRateLimit) -> tuple[dict, list[dict]]:
    """A rule's bucket: the route's LocalRateLimit (typed_per_filter_config) and the
    RouteAction.rate_limits that make a request's descriptor from its header. A request whose
    descriptor matches takes from that descriptor's bucket only
    (always_consume_default_token_bucket false), any other from the rule's."""
    config: dict[str, Any] = {"@type": LOCAL_RATE_LIMIT, **enforced_bucket(limit, ROUTE_RATE_LIMIT_PREFIX)}
    actions: list[dict] = []
    if limit.descriptors:
        header = limit.descriptors[0].header.lower()
        actions = [{"actions": [{"request_headers": {"header_name": header, "descriptor_key": header}}]}]
        config["descriptors"] = [{"entries": [{"key": header, "value": d.value}], "token_bucket": token_bucket(d)}
                                 for d in limit.descriptors]
        config["always_consume_default_token_bucket"] = False
    return config, actions


def header_mutations(direction: str, *written: HeaderEdits | None) -> dict:
    """Route, or weighted cluster, fields applying header edits in one direction ("request" or
    "response"): HeaderValueOption append_action OVERWRITE_IF_EXISTS_OR_ADD for `set`,
    APPEND_IF_EXISTS_OR_ADD (a further value) for `add`; `<direction>_headers_to_remove`."""
    edits = [e for e in written if e is not None]
    added = [{"header": {"key": name.lower(), "value": value}, "append_action": action}
             for e in edits
             for values, action in ((e.set, "OVERWRITE_IF_EXISTS_OR_ADD"), (e.add, "APPEND_IF_EXISTS_OR_ADD"))
             for name, value in values.items()]
    removed = [name.lower() for e in edits for name in e.remove]
    out: dict[str, Any] = {}
    if added:
        out[f"{direction}_headers_to_add"] = added
    if removed:
        out[f"{direction}_headers_to_remove"] = removed
    return out


# ---------------------------------------------------------------------------------------------
# Matches


def path_pattern(path: str) -> dict:
    """An AccessPolicy path as a StringMatcher: exact, `/prefix/*`, or a glob with `*` inside."""
    if "*" not in path:
        return {"exact": path}
    if path.endswith("*") and "*" not in path[:-1]:
        return {"prefix": path[:-1]}
    return {"safe_regex": {"regex": ".*".join(re.escape(part) for part in path.split("*"))}}


def segment_prefix(prefix: str) -> dict:
    """A path-segment prefix (docs/intents.md): Envoy's path_separated_prefix, which takes no
    trailing `/`; the prefix `/` is every path."""
    stem = prefix.rstrip("/")
    return {"path_separated_prefix": stem} if stem else {"prefix": "/"}


def path_rewrite(replacement: str, match: Match | None) -> dict:
    """RouteAction fields giving docs/intents.md's rewrite of what `match` matched.

    A segment prefix is replaced element by element (Gateway API ReplacePrefixMatch): Envoy's
    prefix_rewrite does that for a replacement other than `/`; for `/` a regex drops the prefix
    and the `/` after it. Without a path match the matched prefix is `/`, so the replacement
    goes in front of the path. An exact or regex path is replaced whole. The query is kept.
    """
    path = match.path if match is not None else None
    if path is not None and path.exact is not None:
        return {"prefix_rewrite": replacement}
    if path is not None and path.regex is not None:
        return {"regex_rewrite": {"pattern": {"regex": "^.*$"}, "substitution": literal_substitution(replacement)}}
    stem = (path.prefix or "").rstrip("/") if path is not None else ""
    head = replacement.rstrip("/")
    if stem and head:
        return {"prefix_rewrite": head}
    if stem:
        return {"regex_rewrite": {"pattern": {"regex": f"^{re.escape(stem)}/?"}, "substitution": "/"}}
    if head:
        return {"regex_rewrite": {"pattern": {"regex": "^/"}, "substitution": literal_substitution(f"{head}/")}}
    return {}


def literal_substitution(text: str) -> str:
    """`text` as an RE2 rewrite string (Envoy's RegexMatchAndSubstitute.substitution), where a
    backslash starts a capture-group reference (`\\1`): each backslash doubled stays literal."""
    return text.replace("\\", "\\\\")


def route_match(match: Match | None) -> dict:
    """An Envoy RouteMatch for one intent match entry (None: everything)."""
    result: dict[str, Any] = {"prefix": "/"}
    if match is None:
        return result
    if match.path is not None:
        if match.path.exact is not None:
            result = {"path": match.path.exact}
        elif match.path.prefix is not None:
            result = segment_prefix(match.path.prefix)
        else:
            result = {"safe_regex": {"regex": match.path.regex}}
    headers: list[dict[str, Any]] = []
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
