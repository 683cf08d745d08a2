"""The reference evaluator: what a request meets, as docs/intents.md "Semantics" says.

Given the linked graph and a request as one proxy sees it (the sidecar of a calling service, or
a Gateway), `evaluate` returns the decision: the rule that matched and where it is written, the
destinations and their weights, or the redirect, fault or 404, and the path and host the
backend sees. It is deliberately small and direct; `meshc test` and the differential tests of
every target run it.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote_plus

from compiler.diagnostics import Location
from compiler.graph import (
    ExternalNode,
    GatewayNode,
    Key,
    MeshGraph,
    Placement,
    Platform,
    Principal,
    ResolvedAccessRule,
    ResolvedRule,
    RouteNode,
    ServiceNode,
    Target,
)
from compiler.hostnames import covers, most_specific, specificity
from compiler.model import (
    HTTP_PROTOCOLS,
    ORIGIN_PATTERN,
    Cors,
    ExternalPort,
    HeaderEdits,
    HeaderModifier,
    JwtProvider,
    Listener,
    Locality,
    Match,
    OriginMatch,
    OriginRegex,
    Redirect,
    Retries,
    RouteRateLimit,
    StringMatch,
    retries_in_force,
    timeout_seconds,
    token_bucket_scale,
)

Action = Literal["forward", "redirect", "abort", "preflight", "not-found", "misdirected", "refused",
                 "unauthenticated", "forbidden", "rate-limited"]


@dataclass(frozen=True)
class Request:
    """One request as a proxy sees it. `path` may carry a query string (`/a?x=1`)."""

    host: str
    path: str = "/"
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    port: int | None = None  # a gateway: the listener port (required); a sidecar: see host_and_port
    sni: str | None = None  # the TLS server name, on gateway https and tls listeners
    scheme: str = "http"
    # TLS the client offers a terminating gateway listener: the highest version it speaks, and
    # the CA (a listener's clientValidation.ca) its certificate chains to, None for none
    tls_version: str = "1.3"
    client_ca: str | None = None
    tls_ciphers: tuple[str, ...] | None = None  # the TLS 1.2 suites it offers; None: any
    # a JWT the request carries whose signature does not verify with its provider's keys (signature
    # checks are cryptography, outside the semantics: tests sign such tokens with another key)
    forged_token: bool = False
    now: float | None = None  # the time tokens are checked at (seconds since the epoch); None: now
    behaviour: Behaviour | None = None  # how the destination answers its tries (`meshc test`)
    client_address: str | None = None  # where a gateway's client connects from

    @property
    def bare_path(self) -> str:
        return self.path.split("?", 1)[0]

    @property
    def query_string(self) -> str:
        return self.path.split("?", 1)[1] if "?" in self.path else ""

    def header(self, name: str) -> str | None:
        """The first value of a header; names compare case-insensitively."""
        return next((value for key, value in self.headers if key.lower() == name.lower()), None)

    def query(self, name: str) -> str | None:
        """The first value of a query parameter; names compare case-sensitively."""
        return next((value for key, value in parse_qsl(self.query_string, keep_blank_values=True)
                     if key == name), None)


Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class HeaderEdit:
    """What one direction's edits do to a header list (names lower-case): Gateway API
    HTTPHeaderFilter's `set` ("overwrites"), `add` ("appends to any existing values") and
    `remove`. A name takes one of the three, so their order does not matter."""

    set: Headers = ()
    add: Headers = ()
    remove: tuple[str, ...] = ()

    @classmethod
    def of(cls, *written: HeaderEdits | None) -> HeaderEdit:
        """The edits of the rule and of the chosen destination together (their names are disjoint)."""
        edits = [e for e in written if e is not None]
        return cls(tuple((n.lower(), v) for e in edits for n, v in e.set.items()),
                   tuple((n.lower(), v) for e in edits for n, v in e.add.items()),
                   tuple(n.lower() for e in edits for n in e.remove))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.set) + tuple(n for n, _ in self.add) + self.remove

    def apply(self, headers: Headers) -> Headers:
        dropped = set(self.remove) | {n for n, _ in self.set}
        return (tuple((n.lower(), v) for n, v in headers if n.lower() not in dropped) + self.set + self.add)

    def then_set(self, headers: Headers) -> HeaderEdit:
        """These edits followed by setting `headers` (which replace whatever the edits did to them)."""
        if not headers:
            return self
        names = {n for n, _ in headers}
        return HeaderEdit(tuple((n, v) for n, v in self.set if n not in names) + headers,
                          tuple((n, v) for n, v in self.add if n not in names),
                          tuple(n for n in self.remove if n not in names))


def header_value(headers: Headers, name: str) -> str | None:
    """A header as one value: its values in order, joined by `,` (RFC 9110 5.3), None when absent."""
    values = [v for n, v in headers if n.lower() == name.lower()]
    return ",".join(values) if values else None


def destination_edits(rule_headers: HeaderModifier | None,
                      written: HeaderModifier | None) -> tuple[HeaderEdit, HeaderEdit]:
    """(request, response) edits for one destination of a rule."""
    def side(modifier: HeaderModifier | None, direction: str) -> HeaderEdits | None:
        return getattr(modifier, direction) if modifier is not None else None

    return (HeaderEdit.of(side(rule_headers, "request"), side(written, "request")),
            HeaderEdit.of(side(rule_headers, "response"), side(written, "response")))


@dataclass(frozen=True)
class RuleRef:
    route: Key
    index: int  # position in Route.rules
    location: Location | None  # where the rule is written

    def __str__(self) -> str:
        return f"Route {self.route} rule {self.index}"


@dataclass(frozen=True)
class Decision:
    action: Action
    status: int | None = None  # what the client is answered, when the proxy answers itself
    rule: RuleRef | None = None
    listener: str | None = None  # the gateway listener that took the request
    destinations: tuple[Target, ...] = ()  # with their weights
    external: Key | None = None  # an ExternalService destination (port in `port`)
    port: int | None = None
    upstream_port: int | None = None  # an ExternalService: the port its host is dialled on
    tls_sni: str | None = None  # an ExternalService: the SNI of the TLS the sidecar originates
    # an ExternalService: where the sidecar connects, by its resolution: (host name or address,
    # port) of DNS hosts or STATIC endpoints, the request's own host for NONE
    upstreams: tuple[tuple[str, int], ...] = ()
    path: str | None = None  # path and query as the backend sees them
    host: str | None = None  # Host header as the backend sees it
    location: str | None = None  # a redirect's Location
    mirrors: tuple[tuple[Target, float], ...] = ()  # each mirror with the percent of requests it gets
    timeout: str | None = None
    retries: Retries | None = None
    abort_status: int | None = None  # an abort fault for some requests only: forwarded otherwise
    abort_percent: float | None = None
    delay: str | None = None
    delay_percent: float | None = None
    # per destination (parallel to `destinations`): the request and response header edits
    edits: tuple[tuple[HeaderEdit, HeaderEdit], ...] = ()
    request_headers: Headers = ()  # the headers the client sent
    # an abort answers in place of the destination the request was going to, with its response
    # edits: one per destination the rule may choose
    abort_edits: tuple[HeaderEdit, ...] = ()
    # the CORS response headers the rule's policy governs for this request (docs/intents.md,
    # CORS): compared on every answer, absent unless `edits`, `abort_edits` or a preflight's
    # answer (in abort_edits too) sets them
    cors_names: tuple[str, ...] = ()
    bucket: Bucket | None = None  # the rule's rate limit bucket the request takes a token from
    reason: str = ""  # for people: why the proxy decided so

    def edits_of(self, target: Target) -> tuple[HeaderEdit, HeaderEdit]:
        """(request, response) header edits on the way to, and back from, one destination."""
        for destination, edits in zip(self.destinations, self.edits, strict=False):
            if destination == target:
                return edits
        return HeaderEdit(), HeaderEdit()

    def headers_seen(self, target: Target) -> Headers:
        """The request headers `target` receives, of those the client sent or the edits name."""
        return self.edits_of(target)[0].apply(self.request_headers)

    def response_headers(self, target: Target, answered: Headers) -> Headers:
        """What the client receives when `target` answers with `answered`."""
        return self.edits_of(target)[1].apply(answered)

    @property
    def backends(self) -> tuple[Target, ...]:
        """The destinations that receive traffic (weight above zero)."""
        return tuple(t for t in self.destinations if t.weight > 0)


# ---------------------------------------------------------------------------------------------
# Host names


def split_host(host: str) -> tuple[str, int | None]:
    """`name[:port]`, lower-cased; the port is None when absent or not a number."""
    host = host.strip().lower()
    name, colon, port = host.rpartition(":")
    return (name, int(port)) if colon and port.isdigit() else (host, None)


def host_matches(pattern: str, name: str) -> bool:
    """Exact, `*.suffix` (one label or more in front of suffix) or `*` (any), ignoring case:
    compiler.hostnames.covers, the one definition the checks and targets use too."""
    return covers(pattern.lower(), name.lower())


# ---------------------------------------------------------------------------------------------
# Matches


def segment_prefix_matches(prefix: str, path: str) -> bool:
    """Gateway API PathPrefix: element by element, a trailing `/` of the prefix ignored."""
    stem = prefix.rstrip("/")
    return stem == "" or path == stem or path.startswith(stem + "/")


def full_match(pattern: str, text: str) -> bool:
    try:
        return re.fullmatch(pattern, text) is not None
    except re.error:
        return False


def string_matches(condition: StringMatch, value: str | None) -> bool:
    if value is None:
        return False
    if condition.present:
        return True
    if condition.exact is not None:
        return value == condition.exact
    if condition.prefix is not None:
        return value.startswith(condition.prefix)
    return full_match(condition.regex or "", value)


def entry_matches(entry: Match, request: Request, port: int | None) -> bool:
    if entry.port is not None and entry.port != port:
        return False
    if entry.sni:
        return False  # an HTTP request carries no SNI
    path = request.bare_path
    if entry.path is not None:
        spec = entry.path
        if spec.exact is not None and path != spec.exact:
            return False
        if spec.prefix is not None and not segment_prefix_matches(spec.prefix, path):
            return False
        if spec.regex is not None and not full_match(spec.regex, path):
            return False
    if entry.method is not None and entry.method != request.method:
        return False
    if any(not string_matches(c, request.header(name)) for name, c in entry.headers.items()):
        return False
    return all(string_matches(c, request.query(name)) for name, c in entry.query.items())


def matching_entry(rule: ResolvedRule, request: Request, port: int | None) -> tuple[bool, Match | None]:
    """Whether the rule matches, and the entry that did (None: the rule has no match list)."""
    if not rule.spec.match:
        return True, None
    for entry in rule.spec.match:
        if entry_matches(entry, request, port):
            return True, entry
    return False, None


def rewritten_path(prefix: str, entry: Match | None, path: str) -> str:
    """Gateway API ReplacePrefixMatch; an exact or regex match replaces the whole path."""
    matched = entry.path if entry is not None else None
    if matched is None:
        stem = ""
    elif matched.prefix is None:
        return prefix
    else:
        stem = matched.prefix.rstrip("/")
    return prefix.rstrip("/") + path[len(stem):] or "/"


# ---------------------------------------------------------------------------------------------
# Redirects

DEFAULT_PORTS = {"http": 80, "https": 443}


def url(scheme: str, host: str, port: int | None, path_and_query: str) -> str:
    """A URL whose port is left out when it is the scheme's own (RFC 3986 6.2.3; Gateway API
    HTTPRequestRedirectFilter.port: "SHOULD NOT add the port number" for http on 80, https on 443)."""
    shown = "" if port is None or DEFAULT_PORTS.get(scheme) == port else f":{port}"
    return f"{scheme}://{host}{shown}{path_and_query}"


def canonical_location(location: str | None) -> str | None:
    """A Location with a port that is the scheme's own left out: the same URL either way."""
    if location is None or "://" not in location:
        return location
    scheme, rest = location.split("://", 1)
    authority, slash, path = rest.partition("/")
    name, colon, port = authority.rpartition(":")
    if colon and port.isdigit() and DEFAULT_PORTS.get(scheme.lower()) == int(port):
        authority = name
    return f"{scheme}://{authority}{slash}{path}"


def redirect_location(redirect: Redirect, entry: Match | None, request: Request, port: int | None) -> str:
    """docs/intents.md (Gateway API HTTPRequestRedirectFilter): the scheme, host name, port and
    path of the request, each replaced by the redirect's own when it has one. Without `port`
    the port is the scheme's well-known one when `scheme` is given, else the port the request
    arrived on."""
    scheme = redirect.scheme or request.scheme
    sent_name, sent_port = request.host.rsplit(":", 1) if ":" in request.host else (request.host, "")
    host = redirect.host or (sent_name if sent_port.isdigit() else request.host)
    if redirect.port is not None:
        to_port: int | None = redirect.port
    elif redirect.scheme is not None:
        to_port = DEFAULT_PORTS[redirect.scheme]
    else:
        to_port = port
    path = request.bare_path
    if redirect.path is not None:
        path = redirect.path
    elif redirect.prefix is not None:
        path = rewritten_path(redirect.prefix, entry, path)
    query = f"?{request.query_string}" if "?" in request.path else ""
    return url(scheme, host, to_port, path + query)


# ---------------------------------------------------------------------------------------------
# CORS

CORS_RESPONSE_HEADERS = ("access-control-allow-origin", "access-control-allow-credentials",
                         "access-control-allow-methods", "access-control-allow-headers", "access-control-max-age",
                         "access-control-expose-headers")
SENT_ORIGIN = re.compile(r"^(?P<scheme>https?)://(?P<host>[-a-z0-9.]+)(:(?P<port>[1-9][0-9]{0,4}))?$")


def origin_parts(text: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin pattern or of a sent Origin, the port the scheme's own
    when none is written; None for `*` or what is not an origin."""
    match = (ORIGIN_PATTERN if "*" in text else SENT_ORIGIN).fullmatch(text)
    if match is None or text == "*":
        return None
    scheme = match.group("scheme")
    port = match.group("port")
    return scheme, match.group("host"), int(port) if port else DEFAULT_PORTS[scheme]


def origin_allowed(pattern: OriginMatch, origin: str) -> bool:
    """docs/intents.md, CORS: `*` any origin; `{regex}` the whole Origin; else the same scheme and
    port (the scheme's own when not written) and host, where `*` is one or more characters of a
    host name and `*.name` ends in `.name` after one or more of them."""
    if isinstance(pattern, OriginRegex):
        return full_match(pattern.regex, origin)
    if pattern == "*":
        return True
    written, sent = origin_parts(pattern), origin_parts(origin) if SENT_ORIGIN.fullmatch(origin) else None
    if written is None or sent is None or written[0] != sent[0] or written[2] != sent[2]:
        return False
    host, name = written[1], sent[1]
    if host == "*":
        return True
    if host.startswith("*."):
        return name.endswith(host[1:]) and len(name) > len(host) - 1
    return name == host


def cors_answer(cors: Cors, request: Request) -> tuple[bool, Headers] | None:
    """(is a preflight, the CORS headers of the answer) for a request with an Origin, None for
    one without (docs/intents.md, CORS)."""
    origin = request.header("origin")
    if not origin:
        return None
    allowed = any(origin_allowed(pattern, origin) for pattern in cors.allowOrigins)
    headers: list[tuple[str, str]] = []
    if request.method == "OPTIONS" and request.header("access-control-request-method"):
        if allowed:
            headers.append(("access-control-allow-origin", origin))
        if cors.allowCredentials:
            headers.append(("access-control-allow-credentials", "true"))
        for field, name, asked in (("allowMethods", "access-control-allow-methods", "access-control-request-method"),
                                   ("allowHeaders", "access-control-allow-headers", "access-control-request-headers")):
            written = getattr(cors, field)
            if written == ["*"]:
                headers.append((name, request.header(asked) or ""))
            elif written:
                headers.append((name, ",".join(written)))
        headers.append(("access-control-max-age", str(cors.max_age_seconds)))
        if allowed and cors.exposeHeaders:
            headers.append(("access-control-expose-headers", ",".join(cors.exposeHeaders)))
        return True, tuple(headers)
    if allowed:
        headers.append(("access-control-allow-origin", origin))
        if cors.allowCredentials:
            headers.append(("access-control-allow-credentials", "true"))
        if cors.exposeHeaders:
            headers.append(("access-control-expose-headers", ",".join(cors.exposeHeaders)))
    return False, tuple(headers)


# ---------------------------------------------------------------------------------------------
# Rules to decisions


def rule_decision(graph: MeshGraph, routes: tuple[RouteNode, ...], request: Request, port: int | None,
                  listener: str | None = None) -> Decision:
    """The Routes' rules merged (docs/intents.md, "Several Routes for one host"): the Routes in
    merge order, each one's rules in written order; the first rule that matches decides; none: 404."""
    for route in routes:
        for rule in route.rules:
            matched, entry = matching_entry(rule, request, port)
            if matched:
                return apply_rule(graph, route, rule, entry, request, listener, port)
    names = ", ".join(str(route.key) for route in routes)
    return Decision("not-found", 404, listener=listener, reason=f"no rule of Route {names} matches")


def apply_rule(graph: MeshGraph, route: RouteNode, rule: ResolvedRule, entry: Match | None, request: Request,
               listener: str | None, port: int | None = None) -> Decision:
    spec = rule.spec
    ref = RuleRef(route.key, rule.index, graph.sources.locate(route.origin, "rules", rule.index))
    query = f"?{request.query_string}" if "?" in request.path else ""
    if spec.redirect is not None:
        return Decision("redirect", spec.redirect.status, ref, listener,
                        location=redirect_location(spec.redirect, entry, request, port), reason="redirect")
    fault = spec.fault
    edits = tuple(destination_edits(spec.headers, written.headers) for written in spec.to)
    cors = cors_answer(spec.cors, request) if spec.cors is not None else None
    cors_names: tuple[str, ...] = CORS_RESPONSE_HEADERS if cors is not None else ()
    if cors is not None:
        preflight, answered = cors
        if preflight:
            return Decision("preflight", 200, ref, listener, abort_edits=(HeaderEdit(set=answered),),
                            cors_names=cors_names, reason="CORS preflight answered by the proxy")
        edits = tuple((request_edit, response_edit.then_set(answered)) for request_edit, response_edit in edits)
    # the cors filter answers a preflight before the local rate limit filter sees it
    bucket = rule_bucket(ref, spec.rateLimit, request)
    if fault is not None and fault.abort is not None and fault.abort.percent >= 100:
        return Decision("abort", fault.abort.status, ref, listener, abort_edits=tuple(e for _, e in edits),
                        cors_names=cors_names, bucket=bucket, reason="fault abort for every request")
    path = request.bare_path
    host = request.host
    if spec.rewrite is not None:
        if spec.rewrite.path is not None:
            path = spec.rewrite.path
        elif spec.rewrite.prefix is not None:
            path = rewritten_path(spec.rewrite.prefix, entry, path)
        host = spec.rewrite.host or host
    return Decision(
        "forward", None, ref, listener,
        destinations=rule.destinations,
        port=rule.destinations[0].port,
        path=path + query,
        host=host,
        mirrors=tuple((target, m.percent) for target, (_, m) in zip(rule.mirrors, spec.written_mirrors(), strict=True)),
        timeout=rule.timeout,
        retries=rule.retries,
        abort_status=fault.abort.status if fault is not None and fault.abort is not None else None,
        abort_percent=fault.abort.percent if fault is not None and fault.abort is not None else None,
        delay=fault.delay.fixed if fault is not None and fault.delay is not None else None,
        delay_percent=fault.delay.percent if fault is not None and fault.delay is not None else None,
        edits=edits,
        abort_edits=tuple(e for _, e in edits) if fault is not None and fault.abort is not None else (),
        request_headers=request.headers,
        cors_names=cors_names,
        bucket=bucket,
        reason="first matching rule",
    )


# ---------------------------------------------------------------------------------------------
# gRPC

# What a gRPC client reads from an HTTP status the proxy answers itself (grpc/grpc
# doc/http-grpc-status-mapping.md; Envoy turns its own answers to a gRPC request into a
# trailers-only response with this grpc-status). Every other status is UNKNOWN.
GRPC_STATUS_OF_HTTP = {400: "INTERNAL", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "UNIMPLEMENTED",
                       429: "UNAVAILABLE", 431: "INTERNAL", 502: "UNAVAILABLE", 503: "UNAVAILABLE",
                       504: "UNAVAILABLE"}


def grpc_status(decision: Decision) -> str | None:
    """The gRPC status a client sees when the proxy answers a gRPC call itself (docs/intents.md,
    Protocols on HTTP ports); None when the call is forwarded (the server's own status)."""
    if decision.action == "forward" or decision.status is None:
        return None
    return GRPC_STATUS_OF_HTTP.get(decision.status, "UNKNOWN")


# ---------------------------------------------------------------------------------------------
# Sidecars


def callee_names(graph: MeshGraph, caller: ServiceNode) -> dict[str, Key]:
    """Host name (without port) -> called service or ExternalService, for the caller's sidecar."""
    names: dict[str, Key] = {}
    by_short: dict[str, list[Key]] = {}
    for key in caller.calls:
        external = graph.externals.get(key)
        if external is not None:
            names.update(dict.fromkeys(external.spec.hosts, key))
            continue
        names[f"{key.name}.{key.namespace}"] = key
        by_short.setdefault(key.name, []).append(key)
    for name, keys in by_short.items():
        own = [k for k in keys if k.namespace == caller.namespace]
        if len(keys) == 1 or own:
            names[name] = own[0] if own else keys[0]
    return names


def addressed_external(graph: MeshGraph, caller: ServiceNode, name: str) -> Key | None:
    """The called ExternalService whose `addresses` hold the IP address `name` (a Host header
    naming an address; IPv6 in brackets), if any."""
    try:
        address = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return None
    for key in caller.calls:
        external = graph.externals.get(key)
        if external is not None and any(address in ipaddress.ip_network(block) for block in external.spec.addresses):
            return key
    return None


def external_upstreams(external: ExternalNode, port: ExternalPort, name: str) -> tuple[tuple[str, int], ...]:
    """Where the sidecar connects for a request to `name` on `port`, by the ExternalService's
    resolution: the (non-wildcard) hosts by DNS, the STATIC endpoints, or with NONE the name
    the request gave (docs/intents.md, ExternalService)."""
    spec = external.spec
    resolution = spec.effective_resolution
    if resolution == "STATIC":
        return tuple(spec.static_endpoints(port))
    if resolution == "NONE":
        return ((name, spec.upstream_port(port)),)
    return tuple((host, spec.upstream_port(port)) for host in spec.hosts if not host.startswith("*"))


def evaluate_sidecar(graph: MeshGraph, caller: ServiceNode, request: Request) -> Decision:
    name, host_port = split_host(request.host)
    names = callee_names(graph, caller)
    pattern = most_specific(list(names), name)
    key = names[pattern] if pattern is not None else addressed_external(graph, caller, name)
    if key is None:
        return Decision("not-found", 404, reason=f"{caller.key} does not call {name!r}")
    callee: ServiceNode | ExternalNode = graph.externals.get(key) or graph.services[key]
    http_ports = [p.port for p in callee.spec.ports if p.protocol in HTTP_PROTOCOLS]
    port = host_port or request.port or (http_ports[0] if http_ports else None)
    if port not in http_ports:
        return Decision("not-found", 404, reason=f"{key} has no HTTP port {port}")
    routes = graph.routes_for(key)
    if isinstance(callee, ExternalNode) and not routes:
        spec = next(p for p in callee.spec.ports if p.port == port)
        origination = callee.spec.origination(spec)
        concrete = [h for h in callee.spec.hosts if not h.startswith("*")]
        sni = (origination.sni or (concrete or callee.spec.hosts)[0]) if origination is not None else None
        return Decision("forward", external=key, port=port, upstream_port=callee.spec.upstream_port(spec),
                        tls_sni=sni, upstreams=external_upstreams(callee, spec, name),
                        path=request.path, host=request.host, request_headers=request.headers,
                        reason=f"ExternalService {key}")
    if not routes:
        assert isinstance(callee, ServiceNode)  # an ExternalService without Routes was decided above
        return Decision("forward", destinations=(Target(key, None, port, 100),), port=port, path=request.path,
                        host=request.host, request_headers=request.headers, timeout=callee.resilience.timeout,
                        retries=callee.resilience.retries, reason=f"{key} has no Route")
    return rule_decision(graph, routes, request, port)


# ---------------------------------------------------------------------------------------------
# Gateways


def choose_listener(listeners: list[Listener], name: str) -> Listener | None:
    """The listener whose hosts match `name` most specifically."""
    scored = [(specificity(p), index) for index, listener in enumerate(listeners)
              if (p := most_specific(list(listener.hosts), name)) is not None]
    return listeners[max(scored, key=lambda s: (s[0], -s[1]))[1]] if scored else None


def attached_routes(graph: MeshGraph, gateway: GatewayNode, listener: Listener, name: str) -> tuple[RouteNode, ...]:
    """Among the Routes sharing hosts with the listener, those whose host matches `name` most
    specifically (several Routes writing that one host are merged, in merge order); none when
    the listener's own hosts do not serve the name (an https Host header other than what the
    SNI chose)."""
    if most_specific(list(listener.hosts), name) is None:
        return ()
    return most_specific_routes(graph.gateway_routes.get(gateway.key, ()), listener, name)


def most_specific_routes(routes: tuple[RouteNode, ...], listener: Listener, name: str) -> tuple[RouteNode, ...]:
    """The Routes of `routes` attached to `listener` whose host matching `name` is the most
    specific one any of them writes (they all write that same host), in merge order."""
    scored: list[tuple[tuple[int, int], RouteNode]] = []
    for route in routes:
        if not route.attaches(listener):
            continue
        served = [h for h in route.spec.hosts if any(host_matches(lh, h) or host_matches(h, lh)
                                                     for lh in listener.hosts)]
        pattern = most_specific(served, name)
        if pattern is not None:
            scored.append((specificity(pattern), route))
    best = max((score for score, _ in scored), default=None)
    return tuple(route for score, route in scored if score == best)


def evaluate_gateway(graph: MeshGraph, gateway: GatewayNode, request: Request) -> Decision:
    on_port = [listener for listener in gateway.listeners if listener.port == request.port]
    if not on_port:
        return Decision("refused", reason=f"gateway {gateway.key} has no listener on port {request.port}")
    name, _ = split_host(request.host)
    http = [listener for listener in on_port if listener.protocol == "http"]
    if http:
        passed = gateway_checks(graph, gateway, request)
        if isinstance(passed, Decision):
            return passed
        request = passed
        listener = choose_listener(http, name)
        if listener is None:
            return Decision("not-found", 404, reason=f"no listener on port {request.port} serves {name!r}")
        if listener.httpsRedirect:
            return Decision("redirect", 301, listener=listener.name,
                            location=url("https", name, None, request.path), reason="httpsRedirect")
        return routed(graph, gateway, listener, request, name)
    sni = (request.sni or "").lower()
    secured = [listener for listener in on_port if listener.protocol in ("https", "tls")]
    if secured:
        listener = choose_listener(secured, sni)
        https = [candidate for candidate in secured if candidate.protocol == "https"]
        if listener is None:
            if https:
                refused = tls_refusal(https[0], request)  # the first https listener's TLS completes it
                if refused is not None:
                    return Decision("refused", listener=https[0].name, reason=refused)
                passed = gateway_checks(graph, gateway, request)
                if isinstance(passed, Decision):
                    return passed
                return Decision("not-found", 404, listener=https[0].name,
                                reason=f"SNI {request.sni!r} names no listener on port {request.port}")
            return Decision("refused", reason=f"SNI {request.sni!r} names no listener on port {request.port}")
        refused = tls_refusal(listener, request)
        if refused is not None:
            return Decision("refused", listener=listener.name, reason=refused)
        if listener.protocol == "https":
            passed = gateway_checks(graph, gateway, request)
            if isinstance(passed, Decision):
                return passed
            request = passed
            owner = choose_listener(https, name)
            if owner is not None and owner is not listener:
                return Decision("misdirected", 421, listener=listener.name,
                                reason=f"Host {name!r} is listener {owner.name!r}'s; the SNI chose {listener.name!r}")
            return routed(graph, gateway, listener, replace(request, scheme="https"), name)
        passthrough = listener.tls is not None and listener.tls.mode == "passthrough"
        return stream_decision(graph, gateway, listener, sni if passthrough else None)
    return stream_decision(graph, gateway, on_port[0], None)


def gateway_checks(graph: MeshGraph, gateway: GatewayNode, request: Request) -> Decision | Request:
    """What a gateway decides of every HTTP request before routing: its `jwt` providers
    authenticate it (401), its AccessPolicies admit it or not (403); else the request as it is
    passed on (docs/intents.md, End-user authentication and AccessPolicy)."""
    checked = authenticate(gateway.spec.jwt, request)
    if checked.refused:
        return Decision("unauthenticated", checked.status, reason=checked.reason)
    if not gateway_admitted(graph, gateway, request, checked.user):
        return Decision("forbidden", 403, reason=f"the AccessPolicies of gateway {gateway.key} do not admit it")
    return checked.passed_on(request)


def tls_refusal(listener: Listener, request: Request) -> str | None:
    """Why a terminating listener refuses the client's TLS handshake, None when it completes:
    a version below `minVersion` (default 1.2), a TLS 1.2 client offering none of the
    listener's `cipherSuites`, or, with `clientValidation`, a client certificate that is
    missing or does not chain to `ca`."""
    tls = listener.tls
    if tls is None or tls.mode != "terminate":
        return None
    if request.tls_version < (tls.minVersion or "1.2"):
        return f"listener {listener.name!r} requires TLS {tls.minVersion or '1.2'} or later"
    if request.tls_version == "1.2" and tls.cipherSuites and request.tls_ciphers is not None \
            and not set(request.tls_ciphers) & set(tls.cipherSuites):
        return f"listener {listener.name!r} shares no TLS 1.2 cipher suite with the client"
    if tls.clientValidation is not None and request.client_ca != tls.clientValidation.ca:
        return f"listener {listener.name!r} requires a client certificate from {tls.clientValidation.ca!r}"
    return None


def is_http_only(entry: Match) -> bool:
    return bool(entry.path or entry.method or entry.headers or entry.query)


def passthrough_names(graph: MeshGraph, rule: ResolvedRule, entries: list[Match], hosts: list[str]) -> list[str]:
    """The SNI names a rule takes on a TLS passthrough listener: its `sni` matches, else its
    Route's hosts when its destinations take a byte stream; none for a rule to an HTTP port,
    which is never sent encrypted bytes (a Gateway API TLS listener takes TLSRoutes only, and
    meshc writes such a rule as an HTTPRoute)."""
    named = [n for m in entries for n in m.sni]
    if named:
        return named
    for destination in rule.destinations[:1]:
        service = graph.services.get(destination.service)
        if service is not None and service.protocol(destination.port) in HTTP_PROTOCOLS:
            return []
    return hosts


def stream_decision(graph: MeshGraph, gateway: GatewayNode, listener: Listener, sni: str | None) -> Decision:
    """A byte stream: by SNI on passthrough (the rule's `sni`, else its Route's hosts), else the
    first rule of the first Route that can carry a stream; HTTP-only rules are skipped."""
    for route in graph.gateway_routes.get(gateway.key, ()):
        hosts = [h for h in route.spec.hosts if route.attaches(listener)
                 and any(host_matches(lh, h) or host_matches(h, lh) for lh in listener.hosts)]
        if not hosts:
            continue
        for rule in route.rules:
            entries = [m for m in rule.spec.match if m.port in (None, listener.port)]
            if rule.spec.redirect is not None or (rule.spec.match and not entries) or \
                    (entries and all(is_http_only(m) for m in entries)):
                continue
            names = passthrough_names(graph, rule, entries, hosts)
            if sni is not None and most_specific(names, sni) is None:
                continue
            ref = RuleRef(route.key, rule.index, graph.sources.locate(route.origin, "rules", rule.index))
            return Decision("forward", rule=ref, listener=listener.name, destinations=rule.destinations,
                            port=rule.destinations[0].port, reason="byte stream")
    return Decision("refused", listener=listener.name,
                    reason=f"no Route rule of listener {listener.name!r} takes the stream")


def routed(graph: MeshGraph, gateway: GatewayNode, listener: Listener, request: Request, name: str) -> Decision:
    routes = attached_routes(graph, gateway, listener, name)
    if not routes:
        return Decision("not-found", 404, listener=listener.name,
                        reason=f"no Route of listener {listener.name!r} serves {name!r}")
    return rule_decision(graph, routes, request, request.port, listener.name)


# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proxy:
    """Where the request is seen: the sidecar of `service`, or `gateway`."""

    service: Key | None = None
    gateway: Key | None = None

    def sidecar_of(self) -> Key:
        """The service whose sidecar this proxy is."""
        if self.service is None:
            raise ValueError(f"the proxy of gateway {self.gateway} is not a sidecar")
        return self.service


def evaluate(graph: MeshGraph, proxy: Proxy, request: Request) -> Decision:
    if proxy.gateway is not None:
        return evaluate_gateway(graph, graph.gateways[proxy.gateway], request)
    return evaluate_sidecar(graph, graph.services[proxy.sidecar_of()], request)


# ---------------------------------------------------------------------------------------------
# Access: what the callee's sidecar admits (docs/intents.md, AccessPolicy)


@dataclass(frozen=True)
class Peer:
    """The caller as the callee's sidecar sees it: a mesh service, a gateway, or neither (no
    mesh identity: a plain-text client of a PERMISSIVE service)."""

    service: Key | None = None
    gateway: Key | None = None
    # a gateway's client: the address its connection comes from, and its original address
    address: str | None = None
    remote_address: str | None = None

    @property
    def namespace(self) -> str | None:
        key = self.service or self.gateway
        return key.namespace if key is not None else None


def in_blocks(blocks: Sequence[str], address: str | None) -> bool:
    if address is None:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(block, strict=False) for block in blocks)


def principal_matches(principal: Principal, peer: Peer) -> bool:
    if principal.kind == "ipBlocks":
        return in_blocks(principal.blocks, peer.address)
    if principal.kind == "remoteIpBlocks":
        return in_blocks(principal.blocks, peer.remote_address)
    if principal.kind == "any":
        return peer.namespace is not None
    if principal.kind == "unauthenticated":
        return peer.namespace is None
    if principal.kind == "namespace":
        return principal.namespace == peer.namespace
    wanted = peer.gateway if principal.kind == "gateway" else peer.service
    return wanted is not None and principal.key() == wanted


def path_admitted(pattern: str, path: str) -> bool:
    """`paths`: exact, `*` for any, or a prefix ending in `*`."""
    return path.startswith(pattern[:-1]) if pattern.endswith("*") else path == pattern


def value_admitted(pattern: str, value: str | None) -> bool:
    """A header or claim value against `exact`, `prefix*`, `*suffix` or `*` (any value)."""
    if value is None:
        return False
    if pattern == "*":
        return True
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    return value == pattern


def request_principal_admitted(pattern: str, user: EndUser | None) -> bool:
    """`*` any end user; `<issuer>/*` any subject of the issuer; `<issuer>/<subject>` (split at
    the last `/`)."""
    if user is None:
        return False
    if pattern == "*":
        return True
    issuer, _, subject = pattern.rpartition("/")
    return user.issuer == issuer and (subject == "*" or user.subject == subject)


def claim_admitted(patterns: list[str], user: EndUser | None, name: str) -> bool:
    """A string claim, or a string in a list claim, has one of the values (`*`: any string);
    claims of other types match nothing."""
    value = user.claims.get(name) if user is not None else None
    values = [value] if isinstance(value, str) else [v for v in value if isinstance(v, str)] \
        if isinstance(value, list) else []
    return any(value_admitted(p, v) for p in patterns for v in values)


def access_rule_matches(rule: ResolvedAccessRule, peer: Peer, method: str, path: str, port: int,
                        headers: Headers = (), user: EndUser | None = None) -> bool:
    spec = rule.spec
    return (any(principal_matches(p, peer) for p in rule.principals)
            and (not spec.methods or method in spec.methods)
            and (not spec.paths or any(path_admitted(p, path.split("?", 1)[0]) for p in spec.paths))
            and (not spec.ports or port in spec.ports)
            and (not spec.requestPrincipals or any(request_principal_admitted(p, user) for p in spec.requestPrincipals))
            and all(claim_admitted(patterns, user, name) for name, patterns in spec.claims.items())
            and all(any(value_admitted(p, header_value(headers, name)) for p in patterns)
                    for name, patterns in spec.headers.items()))


def admitted(graph: MeshGraph, callee: Key, peer: Peer, method: str, path: str, port: int,
             headers: Headers = (), user: EndUser | None = None) -> bool:
    """Whether the callee's sidecar admits an HTTP request from `peer` with `headers`, whose
    end user (from a valid token) is `user`: no deny rule matches, and an allow rule matches
    (without any allow rule: whatever Mesh.authorization says)."""
    policies = graph.policies_for(callee)
    if any(access_rule_matches(r, peer, method, path, port, headers, user) for p in policies for r in p.deny):
        return False
    allows = [r for p in policies for r in p.allow]
    if not allows:
        return graph.mesh.authorization == "allow"
    return any(access_rule_matches(r, peer, method, path, port, headers, user) for r in allows)


def gateway_client(gateway: GatewayNode, request: Request) -> Peer:
    """A gateway's client: the connection's source address, and its original address, which is
    the `trustedProxies`-th X-Forwarded-For entry from the right (the connection's source without
    trusted proxies, or when the header has fewer entries: Envoy's trusted client address with
    use_remote_address and xff_num_trusted_hops)."""
    hops = gateway.spec.trustedProxies
    forwarded = header_value(request.headers, "x-forwarded-for")
    entries = [entry.strip() for entry in forwarded.split(",")] if forwarded else []
    remote = entries[-hops] if hops and len(entries) >= hops else request.client_address
    return Peer(address=request.client_address, remote_address=remote)


def gateway_admitted(graph: MeshGraph, gateway: GatewayNode, request: Request, user: EndUser | None) -> bool:
    """A gateway's AccessPolicies: no deny rule matches, and, when there are allow rules, one of
    them does; a gateway without allow rules admits every client (it exists for them), whatever
    Mesh.authorization says of services."""
    policies = graph.gateway_policies_for(gateway.key)
    client = gateway_client(gateway, request)
    port = request.port or 0

    def matches(rule: ResolvedAccessRule) -> bool:
        return access_rule_matches(rule, client, request.method, request.path, port, request.headers, user)

    if any(matches(r) for p in policies for r in p.deny):
        return False
    allows = [r for p in policies for r in p.allow]
    return not allows or any(matches(r) for r in allows)


def inbound(graph: MeshGraph, callee: Key, peer: Peer, request: Request, port: int) -> Decision:
    """What the callee's sidecar does with an HTTP request on `port`: its `jwt` providers
    authenticate it (401 for an invalid token), then its AccessPolicies decide (403), else it
    reaches the application (docs/intents.md, AccessPolicy and End-user authentication)."""
    checked = authenticate(graph.services[callee].spec.jwt, request)
    if checked.refused:
        return Decision("unauthenticated", checked.status, reason=checked.reason)
    if not admitted(graph, callee, peer, request.method, request.path, port, request.headers, checked.user):
        return Decision("forbidden", 403, reason=f"the AccessPolicies of {callee} do not admit it")
    passed = checked.passed_on(request)
    return Decision("forward", destinations=(Target(callee, None, port, 100),), port=port, path=passed.path,
                    host=passed.host, request_headers=passed.headers, reason="admitted")


# ---------------------------------------------------------------------------------------------
# End-user authentication: JWT providers of a Service or Gateway (docs/intents.md)

# Envoy JwtProvider.clock_skew_seconds: "If not specified, default is 60 seconds"; Istio keeps it.
CLOCK_SKEW_SECONDS = 60
DEFAULT_TOKEN_HEADER = ("authorization", "Bearer ")
DEFAULT_TOKEN_PARAM = "access_token"


@dataclass(frozen=True)
class EndUser:
    """Who a valid token says the end user is: its issuer, subject and claims."""

    issuer: str
    subject: str | None
    claims: Mapping[str, Any]

    @property
    def principal(self) -> str:
        """Istio's request principal, `<iss>/<sub>`."""
        return f"{self.issuer}/{self.subject or ''}"


@dataclass(frozen=True)
class Authentication:
    refused: bool = False  # answered `status`
    user: EndUser | None = None  # None: no token (or refused)
    reason: str = ""
    # where a verified token was that the backend does not receive (forward: false): a location
    # of token_locations
    removed: tuple[str, str, str] | None = None
    status: int = 401  # of a refusal: 401, or 403 for a token meant for other audiences

    def passed_on(self, request: Request) -> Request:
        """The request as the proxy passes it on: without the verified token's header or query
        parameter unless its provider forwards it."""
        if self.removed is None:
            return request
        kind, name, _ = self.removed
        if kind == "header":
            return replace(request, headers=tuple((n, v) for n, v in request.headers if n.lower() != name))
        kept = [part for part in request.query_string.split("&") if unquote_plus(part.split("=", 1)[0]) != name]
        return replace(request, path=request.bare_path + ("?" + "&".join(kept) if kept else ""))


def is_cors_preflight(request: Request) -> bool:
    """OPTIONS with Origin and Access-Control-Request-Method: a CORS preflight request."""
    return (request.method == "OPTIONS" and request.header("origin") is not None
            and request.header("access-control-request-method") is not None)


def token_locations(provider: JwtProvider) -> list[tuple[str, str, str]]:
    """("header", name, prefix) and ("param", name, "") where the provider reads its token."""
    if provider.from_ is None:
        return [("header", *DEFAULT_TOKEN_HEADER), ("param", DEFAULT_TOKEN_PARAM, "")]
    return ([("header", h.name.lower(), h.prefix) for h in provider.from_.headers]
            + [("param", name, "") for name in provider.from_.params])


def token_at(request: Request, location: tuple[str, str, str]) -> str | None:
    kind, name, prefix = location
    value = request.header(name) if kind == "header" else request.query(name)
    if value is None or not value.startswith(prefix) or not value[len(prefix):]:
        return None
    return value[len(prefix):]


def token_payload(token: str) -> dict | None:
    """The claims of a JWT (`header.payload.signature`, base64url JSON), unverified; None when
    the text is not a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def authenticate(providers: Sequence[JwtProvider], request: Request) -> Authentication:
    """docs/intents.md, End-user authentication: no token, no end user; a token that does not
    verify, 401; else its issuer, subject and claims."""
    if is_cors_preflight(request):
        return Authentication()  # Envoy bypass_cors_preflight, as Istio sets it
    found = [(provider, location, token) for provider in providers for location in token_locations(provider)
             if (token := token_at(request, location)) is not None]
    if not found:
        return Authentication()
    _, location, token = found[0]
    payload = token_payload(token)
    if payload is None:
        return Authentication(True, reason="the token is not a JWT")
    issuer = payload.get("iss")
    owner = next((p for p, where, _ in found if p.issuer == issuer and where == location), None)
    if owner is None:
        return Authentication(True, reason=f"no provider of issuer {issuer!r} reads a token there")
    if request.forged_token:
        return Authentication(True, reason="the token's signature does not verify")
    now = request.now if request.now is not None else time.time()
    expires, not_before = payload.get("exp"), payload.get("nbf")
    if isinstance(expires, (int, float)) and expires + CLOCK_SKEW_SECONDS <= now:
        return Authentication(True, reason="the token has expired")
    if isinstance(not_before, (int, float)) and not_before - CLOCK_SKEW_SECONDS > now:
        return Authentication(True, reason="the token is not valid yet")
    audiences = payload.get("aud")
    audiences = [audiences] if isinstance(audiences, str) else audiences if isinstance(audiences, list) else []
    if owner.audiences and not set(owner.audiences) & set(audiences):
        # Envoy answers JwtAudienceNotAllowed with 403, the token being valid but not for this proxy
        return Authentication(True, reason=f"the token's audiences {audiences} name none of {owner.audiences}",
                              status=403)
    subject = payload.get("sub")
    removed = None if owner.forward else location
    return Authentication(user=EndUser(owner.issuer, subject if isinstance(subject, str) else None,
                                       MappingProxyType(dict(payload))), removed=removed)


# ---------------------------------------------------------------------------------------------
# Placements and failover: which workloads a caller sends to (docs/intents.md)


def locality_distance(caller: Locality | None, placement: Locality | None) -> int:
    """0 the same region, zone and subzone; 1 the same region and zone; 2 the same region;
    3 otherwise. Platforms without a locality are all in one unnamed locality."""
    if caller is None and placement is None:
        return 0
    if caller is None:
        return 3
    return caller.distance(placement)


def same_network(a: Platform, b: Platform) -> bool:
    """Whether workloads of two platforms reach each other directly: the same network, or either
    unset (Istio's Proxy.InNetwork: "if either the proxy's network or the given network is
    unspecified")."""
    return a.network is None or b.network is None or a.network == b.network


@dataclass(frozen=True)
class Reached:
    """One placement as a caller reaches it: directly, or through its cluster's east-west gateway."""

    placement: Placement
    through_gateway: bool


def reach(caller: Platform, callee: ServiceNode, placement: Placement) -> Reached | None:
    """How a caller on `caller` reaches the workloads of one placement, None when it cannot:
    across networks only a kubernetes placement with an east-west gateway is reachable, and
    only with mTLS (the gateway forwards by the SNI of Istio's mTLS)."""
    platform = placement.platform
    if same_network(caller, platform):
        return Reached(placement, False)
    gateway = getattr(platform, "eastWestGateway", None)
    if gateway is None or callee.mtls == "DISABLE":
        return None
    return Reached(placement, True)


def failover_tiers(caller: Platform, callee: ServiceNode) -> list[tuple[Reached, ...]]:
    """The placements of `callee` that a caller on `caller` sends to, in failover order.

    Placements are ordered by (priority, locality distance from the caller); each distinct
    value is one tier. Tier 0 takes every request, shared evenly among its placements' workloads;
    tier n takes them when every endpoint of the tiers before it is ejected (outlier detection).
    Placements the caller cannot reach are in no tier."""
    ranked: dict[tuple[int, int], list[Reached]] = {}
    for placement in callee.placements:
        reached = reach(caller, callee, placement)
        if reached is None:
            continue
        rank = (placement.priority, locality_distance(caller.locality, placement.platform.locality))
        ranked.setdefault(rank, []).append(reached)
    return [tuple(ranked[rank]) for rank in sorted(ranked)]


# Envoy's and Istio's overprovisioning factor: a tier, or a weighted placement, keeps its whole
# share while at least 1/1.4 (72%) of its endpoints are healthy
OVERPROVISIONING = Fraction(7, 5)


def weighted(callee: ServiceNode) -> bool:
    """Whether the service's tiers are shared by placement weights: one placement sets `weight`."""
    return any(p.weight is not None for p in callee.placements)


def placement_weight(callee: ServiceNode, placement: Placement) -> int | None:
    """A placement's weight as its tier uses it: as written, 1 where unset beside a weighted one,
    None when the service weighs nothing (its tiers are shared by their endpoints)."""
    if not weighted(callee):
        return None
    return placement.weight if placement.weight is not None else 1


def tier_shares(callee: ServiceNode, tier: tuple[Reached, ...],
                endpoints: Mapping[str, tuple[int, int]]) -> dict[str, Fraction]:
    """How the requests that reach one tier are split among its placements (by platform name).

    `endpoints` gives each placement's (healthy, total) endpoints. With weights, a placement's
    effective weight is its weight times its availability, min(1, 1.4 * healthy / total) (0
    without endpoints), and its share is its effective weight over the tier's sum: a placement
    wholly ejected gives its share to the others in proportion to their weights. Without weights,
    the tier's healthy endpoints share it evenly. Empty when nothing in the tier is healthy."""
    raw: dict[str, Fraction] = {}
    for reached in tier:
        name = reached.placement.platform.name
        healthy, total = endpoints[name]
        weight = placement_weight(callee, reached.placement)
        if weight is None:
            raw[name] = Fraction(healthy)
        else:
            raw[name] = weight * min(Fraction(1), OVERPROVISIONING * healthy / total) if total else Fraction(0)
    whole = sum(raw.values())
    return {name: value / whole for name, value in raw.items() if value} if whole else {}


def serving_placements(tiers: list[tuple[Reached, ...]], ejected: frozenset[str]) -> tuple[str, ...]:
    """The platforms whose workloads receive a request when the placements on `ejected` have
    every endpoint ejected: the first tier with a placement left, without the ejected ones."""
    for tier in tiers:
        left = tuple(r.placement.platform.name for r in tier if r.placement.platform.name not in ejected)
        if left:
            return left
    return ()


# ---------------------------------------------------------------------------------------------
# Retries and timeouts: what the client receives from a destination that fails (docs/intents.md)

# RFC 9110 9.2.2: the methods whose repetition has the effect of one request
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
RESET = "reset"  # a try the destination answers by closing the connection, without a status
# what the client is answered when the last try failed so: Envoy's local replies
RESET_STATUS = 503
TIMEOUT_STATUS = 504


@dataclass(frozen=True)
class Behaviour:
    """How a destination answers the tries of one request: the first `len(failures)` tries with
    those failures (a status code, or `reset`), every later one 200; each after `delay` seconds,
    a failing one after `failure_delay` when given."""

    failures: tuple[int | str, ...] = ()
    delay: Decimal = Decimal(0)
    failure_delay: Decimal | None = None

    def answer(self, index: int) -> int | str:
        return self.failures[index] if index < len(self.failures) else 200

    def delay_of(self, index: int) -> Decimal:
        failing = index < len(self.failures) and self.failure_delay is not None
        return self.failure_delay if failing and self.failure_delay is not None else self.delay


@dataclass(frozen=True)
class Outcome:
    status: int  # what the client receives
    tries: int  # how many tries the destination received
    reason: str


def retried(retries: Retries, failure: int | str) -> bool:
    """Whether one failed try is retried under the retry conditions (Envoy's x-envoy-retry-on:
    `5xx` any 5xx or no answer, `gateway-error` 502/503/504 or no answer, `reset` no answer,
    `retriable-4xx` 409, and `statusCodes`)."""
    conditions = set(retries.conditions())
    if failure == RESET:
        return bool(conditions & {"5xx", "gateway-error", "reset"})
    assert isinstance(failure, int)
    return ((failure >= 500 and "5xx" in conditions)
            or (failure in (502, 503, 504) and "gateway-error" in conditions)
            or (failure == 409 and "retriable-4xx" in conditions)
            or failure in retries.statusCodes)


def outcome(decision: Decision, method: str, behaviour: Behaviour) -> Outcome:
    """What the client receives when the decision forwards to a destination that behaves so:
    tries until one succeeds, or a failure is not retried, or the retries are spent; a try
    slower than `perTryTimeout` is cut and counts as a failure retried under `5xx`,
    `gateway-error` and `reset` (504 when it is the last); the whole request slower than `timeout` is 504.
    The back-off between tries is random and not counted: cases keep their delays far from
    the limits."""
    in_force = retries_in_force(decision.retries)
    limit = timeout_seconds(decision.timeout)
    per_try = timeout_seconds(in_force.perTryTimeout)
    may_retry = in_force.allowNonIdempotent or method in IDEMPOTENT_METHODS
    conditions = set(in_force.conditions())
    elapsed = Decimal(0)
    tries = 0
    while True:
        answer, delay = behaviour.answer(tries), behaviour.delay_of(tries)
        tries += 1
        remaining = None if limit is None else limit - elapsed
        if per_try is not None and delay > per_try and (remaining is None or per_try < remaining):
            elapsed += per_try
            retry = bool(conditions & {"5xx", "gateway-error", "reset"})
            failure: int | str = TIMEOUT_STATUS
            why = f"try {tries} took longer than perTryTimeout {in_force.perTryTimeout}"
        elif remaining is not None and delay >= remaining:
            return Outcome(TIMEOUT_STATUS, tries, f"the request took longer than its timeout {decision.timeout}")
        else:
            elapsed += delay
            if answer == 200:
                return Outcome(200, tries, f"try {tries} succeeded")
            failure = answer
            retry = retried(in_force, answer)
            why = f"try {tries} failed with {answer}"
        final = RESET_STATUS if failure == RESET else int(failure)
        if not retry:
            return Outcome(final, tries, f"{why}, which retryOn does not retry")
        if not may_retry:
            return Outcome(final, tries, f"{why}; {method} is retried only with allowNonIdempotent")
        if tries > in_force.attempts:
            return Outcome(final, tries, f"{why}, the last of {in_force.attempts + 1} tries")


# ---------------------------------------------------------------------------------------------
# Rate limits of rules (docs/intents.md): a token bucket per rule, and per descriptor value

RATE_LIMITED_STATUS = 429


@dataclass(frozen=True)
class Bucket:
    key: tuple[Key, int, str | None]  # the rule, and the descriptor value whose bucket it is
    requests: int  # tokens when full: requests admitted per `per`
    per: str


def rule_bucket(ref: RuleRef, limit: RouteRateLimit | None, request: Request) -> Bucket | None:
    """The bucket a request the rule takes draws from: the first descriptor whose header has
    its value (the header's first value, compared exactly), else the rule's own."""
    if limit is None:
        return None
    for descriptor in limit.descriptors:
        if request.header(descriptor.header) == descriptor.value:
            return Bucket((ref.route, ref.index, descriptor.value), descriptor.requests, descriptor.per)
    return Bucket((ref.route, ref.index, None), limit.requests, limit.per)


def limited(decisions: list[Decision]) -> list[bool]:
    """For requests sent one after the other within one `per` of a proxy's start (every bucket
    full): which are answered 429 because their bucket is empty."""
    taken: dict[tuple[Key, int, str | None], int] = {}
    out = []
    for decision in decisions:
        bucket = decision.bucket
        if bucket is None:
            out.append(False)
            continue
        taken[bucket.key] = taken.get(bucket.key, 0) + 1
        # a `per` under 50ms is Envoy's 50ms refill with as many more tokens (token_bucket_scale)
        out.append(taken[bucket.key] > bucket.requests * token_bucket_scale(bucket.per))
    return out


def in_sequence(decisions: list[Decision]) -> list[Decision]:
    """The decisions of requests a proxy receives one after the other (`meshc test` sends a
    proxy's cases in order, its buckets full at the start): those whose bucket is empty are
    answered 429 instead."""
    return [replace(decision, action="rate-limited", status=RATE_LIMITED_STATUS,
                    reason="the rule's rate limit bucket is empty") if refused else decision
            for decision, refused in zip(decisions, limited(decisions), strict=True)]
