"""What Istio does with a request, read from the emitted (or imported) objects themselves.

Written from Istio's reference, not from meshc; the one reader of Istio objects the tests use
(`meshc import`'s round trip and the semantic tests of the Istio flavour).

VirtualService (istio.io/latest/docs/reference/config/networking/virtual-service/):
- HTTPRoute: "Routing rules are evaluated in sequential order from top to bottom, with the
  first rule in the specification having the highest priority."
- HTTPMatchRequest: "All conditions inside a single match block have AND semantics, while the
  list of match blocks have OR semantics. The rule is matched if any one of the match blocks
  succeed."
- StringMatch: `exact`, `prefix` ("prefix-based match", a character prefix: Envoy's route
  `prefix`), `regex` ("RE2 style regex-based match", the whole value: Envoy `safe_regex`); an
  empty condition on a header or query parameter checks presence. Header names are matched
  case-insensitively (HTTP/2 lower-cases them; Envoy compares lower-cased names).
- HTTPRewrite `uri`: "rewrite the path (or the prefix) portion of the URI with this value. If
  the original URI was matched based on prefix, the value provided in this field will replace
  the corresponding matched prefix"; without a uri match Envoy's route prefix `/` is replaced.
  `authority`: "rewrite the Authority/Host header with this value".
- HTTPRouteDestination: "weight ... If there is only one destination in a rule, it will
  receive all traffic"; a destination without `port` goes to the service's only port.
- HTTPFaultInjection: a delay or abort applies to `percentage.value` percent of requests,
  else the deprecated integer `percent`, else to none (pilot's TranslateFault).
- CorsPolicy: `allowOrigins` "String patterns that match allowed origins. An origin is allowed
  if any of the string matchers match. If a match is found, then the outgoing
  Access-Control-Allow-Origin would be set to the origin as provided by the client";
  `allowMethods`, `allowHeaders`, `exposeHeaders` "serialized into" their Access-Control
  header (pilot joins them with `,`), `maxAge` the preflight cache time (seconds), and
  `unmatchedPreflights: IGNORE`: "preflight requests not matching the configured allowed origin
  shouldn't be forwarded to the upstream". Pilot hands the policy to Envoy's cors filter, so a
  preflight (OPTIONS with Origin and Access-Control-Request-Method) is answered 200 by the
  proxy, `*` methods or headers echo what the preflight asks for, an allowed origin's answers
  carry Access-Control-Allow-Origin, -Allow-Credentials and -Expose-Headers, and Envoy's
  matcher of the exact origin `*` allows every origin.

Security (istio.io/latest/docs/reference/config/security/):
- PeerAuthentication: the policy with a matching `selector` wins over the namespace-wide one
  (no selector), which wins over the root namespace's mesh-wide one.
- AuthorizationPolicy: "If there are any DENY policies that match the request, deny the
  request. If there are no ALLOW policies for the workload, allow the request. If any of the
  ALLOW policies match the request, allow the request. Deny the request." A rule matches when
  one of its `from` entries, one of its `to` entries and its `when` match; inside an entry the
  fields are ANDed and any listed value matches (`paths` with a trailing `*` are prefixes, a
  leading `*` suffixes). `requestPrincipals` are `<ISS>/<SUB>` of the verified JWT; `when`
  conditions on `request.headers[name]` and `request.auth.claims[name]` must all match.
  `ipBlocks` is "populated from the source address of the IP packet", `remoteIpBlocks` "from
  X-Forwarded-For header or proxy protocol" (with the gateway's numTrustedProxies). An
  ALLOW policy with `rules: [{}]` allows everything, with no `rules` nothing.
- Sidecar: `egress.hosts` entries are `namespace/dnsName`; `*` in either part is a wildcard and
  `~` names no namespace; a host is reachable when some entry's namespace and name cover it.

Multicluster and locality (istio.io/latest/docs/tasks/traffic-management/locality-load-balancing/
failover/, .../ops/deployment/deployment-models/#multiple-networks, pilot's Proxy.InNetwork):
- A proxy sees an endpoint on its own network directly; "if either the proxy's network or the
  given network is unspecified" they are one network. An endpoint on another network is reached
  through that network's gateway, and only when that network has one (a `TLS` server in
  `AUTO_PASSTHROUGH` mode on a Gateway in a cluster labelled `topology.istio.io/network`);
  otherwise it is left out.
- A cluster's pods are on the network of its root namespace's `topology.istio.io/network`
  label, a WorkloadEntry on its own `network`; a WorkloadEntry's `locality` is
  `region/zone/subzone`.
- Locality failover needs `localityLbSetting.enabled` and outlierDetection ("This is required
  in order for failover to function properly"). Priorities for a client: "0 Region, zone, and
  sub-zone all match ... 1 ... different sub-zone ... 2 Different zone within the same region
  ... (no failover defined) No match".
"""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from compiler.evaluate import Request


@dataclass(frozen=True)
class Outcome:
    """What the VirtualService decides: forward | redirect | abort | not-found."""

    action: str  # forward | redirect | abort | not-found | undefined (merged gateway fragments disagree)
    destinations: tuple[tuple[str, str | None, int | None, int], ...] = ()  # (host, subset, port, weight) > 0
    path: str | None = None  # path and query the destination sees
    host: str | None = None  # the Host header the destination sees
    mirrors: tuple[tuple[str, str | None, int | None, float], ...] = ()  # (host, subset, port, percent)
    status: int | None = None  # a redirect's or an abort's
    location: str | None = None
    delay: tuple[str, float] | None = None  # (fixedDelay, percent) when some requests are delayed
    # per destination (in `destinations` order) the request headers it receives and the
    # response headers the client gets from it, when decide() is given the backend's answer
    headers: tuple[tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]], ...] = ()
    cors: tuple[tuple[str, str], ...] = ()  # a CORS preflight's answer headers


def string_matches(condition: dict[str, Any], value: str | None) -> bool:
    if value is None:
        return False
    if "exact" in condition:
        return value == condition["exact"]
    if "prefix" in condition:
        return value.startswith(condition["prefix"])
    if "regex" in condition:
        return re.fullmatch(condition["regex"], value) is not None
    return True


def match_block(block: dict[str, Any], request: Request) -> bool:
    # HTTPMatchRequest.port: "Specifies the ports on the host that is being addressed"; a
    # sidecar request given without a port is taken to address the one written
    if "port" in block and request.port is not None and block["port"] != request.port:
        return False
    if "uri" in block and not string_matches(block["uri"], request.bare_path):
        return False
    if "method" in block and not string_matches(block["method"], request.method):
        return False
    if any(not string_matches(c, request.header(name)) for name, c in block.get("headers", {}).items()):
        return False
    return all(string_matches(c, request.query(name)) for name, c in block.get("queryParams", {}).items())


def percent(fault: dict[str, Any]) -> float:
    if "percentage" in fault:
        return float(fault["percentage"].get("value", 0))
    return float(fault.get("percent", 0))


def decide(spec: dict[str, Any], request: Request, ports: dict[str, int] | None = None,
           answer: tuple[tuple[str, str], ...] | None = None) -> Outcome:
    """The VirtualService `spec` on one request; `ports` gives each host's only port; with
    `answer` (the headers a backend answers with) the header edits are read too."""
    for rule in spec.get("http", []):
        for block in rule.get("match") or [{}]:
            if match_block(block, request):
                return outcome(rule, block, request, ports or {}, answer)
    return Outcome("not-found")


WELL_KNOWN_PORTS = {"http": 80, "https": 443}


def host_covers(pattern: str, name: str) -> bool:
    """Gateway.Server.hosts and VirtualService.hosts: an exact name, `*.suffix` (one or more
    labels before the suffix) or `*`."""
    pattern, name = pattern.lower(), name.lower()
    if pattern == "*" or pattern == name:
        return True
    return pattern.startswith("*.") and name != "*" and name.endswith(pattern[1:])


def pattern_rank(pattern: str) -> tuple[int, int]:
    return (0, 0) if pattern == "*" else (1, len(pattern)) if pattern.startswith("*.") else (2, len(pattern))


def gateway_decide(gateway: dict[str, Any], services: list[dict[str, Any]], request: Request) -> Outcome:
    """An Istio ingress gateway on `request` (its `port` the arrival port): the Servers on the
    port whose `hosts` cover the Host name; a Server with `tls.httpsRedirect` ("send a 301
    redirect for all http connections, asking the clients to use HTTPS"; Envoy's require_tls,
    which keeps the Host header as written); else the VirtualServices bound to the gateway
    (`gateways: [namespace/name]`) that have a rule for the port (routes_on_port), each host of
    one giving, with a Server host it overlaps,
    the more specific of the two as a domain, and the most specific domain covering the name
    chooses the VirtualService that decides (one virtual host per domain, as Envoy picks)."""
    name = request.host.rsplit(":", 1)[0] if ":" in request.host else request.host
    servers = [s for s in gateway["spec"]["servers"] if s["port"]["number"] == request.port
               and any(host_covers(h, name) for h in s["hosts"])]
    if not servers:
        return Outcome("not-found")
    if any(s.get("tls", {}).get("httpsRedirect") for s in servers):
        return Outcome("redirect", status=301, location=f"https://{request.host}{request.path}")
    bound = f"{gateway['metadata']['namespace']}/{gateway['metadata']['name']}"
    domains: list[tuple[str, dict[str, Any]]] = []
    for service in services:
        if bound not in service["spec"].get("gateways", []) or not routes_on_port(service["spec"], request.port):
            continue
        for host in service["spec"]["hosts"]:
            for server in servers:
                for server_host in server["hosts"]:
                    if host_covers(server_host, host):
                        domains.append((host, service))
                    elif host_covers(host, server_host):
                        domains.append((server_host, service))
    matching = [(pattern_rank(domain), service) for domain, service in domains if host_covers(domain, name)]
    if not matching:
        return Outcome("not-found")
    best = max(rank for rank, _ in matching)
    fragments = {id(service): service for rank, service in matching if rank == best}.values()
    # Several VirtualServices of one host bound to a gateway are merged: "the order of
    # evaluation for rules in any given source VirtualService will be retained, the
    # cross-resource order is UNDEFINED" (istio.io, Traffic Management Best Practices), so a
    # request two fragments both take has no defined outcome
    decided = [outcome for fragment in fragments
               if (outcome := decide(fragment["spec"], request)).action != "not-found"]
    if len(decided) > 1:
        return Outcome("undefined")
    return decided[0] if decided else Outcome("not-found")


def routes_on_port(spec: dict[str, Any], port: int | None) -> bool:
    """Whether a VirtualService gives a gateway port any route: a match entry for another
    port gives none (route.go TranslateRoute: `match.Port != 0 && match.Port !=
    uint32(listenPort)` returns nil), and a VirtualService left without routes is skipped
    whole (BuildHTTPRoutesForVirtualService: "no routes matched"; gateway.go
    buildGatewayHTTPRouteConfig: `continue`), so its hosts make no virtual host on that port."""
    return any(not block.get("port") or block["port"] == port
               for rule in spec.get("http", []) for block in rule.get("match") or [{}])


def redirect_outcome(redirect: dict[str, Any], request: Request, path_and_query: str,
                     arrival_port: int = 8080) -> Outcome:
    """HTTPRedirect: `scheme`, `authority`, `uri` "overwrite" their part of the URL; `port`, or
    derivePort FROM_PROTOCOL_DEFAULT ("automatically set to 80 for HTTP and 443 for HTTPS") or
    FROM_REQUEST_PORT (the port the request came in on: the service port for a sidecar's route);
    without either the Host header's authority is kept; redirectCode defaults to 301. A port
    that is the scheme's own is not written."""
    scheme = redirect.get("scheme", request.scheme)
    path, _, query = path_and_query.partition("?")
    target = redirect.get("uri", path) + (f"?{query}" if "?" in path_and_query else "")
    status = redirect.get("redirectCode", 301)
    if "port" not in redirect and "derivePort" not in redirect:
        return Outcome("redirect", status=status, location=f"{scheme}://{redirect.get('authority', request.host)}{target}")
    name = request.host.rsplit(":", 1)[0] if ":" in request.host else request.host
    port = redirect.get("port") or {"FROM_PROTOCOL_DEFAULT": WELL_KNOWN_PORTS[scheme],
                                    "FROM_REQUEST_PORT": arrival_port}[redirect["derivePort"]]
    shown = "" if WELL_KNOWN_PORTS[scheme] == port else f":{port}"
    return Outcome("redirect", status=status, location=f"{scheme}://{redirect.get('authority', name)}{shown}{target}")


def joined(headers) -> tuple[tuple[str, str], ...]:
    """Each header once, its values in order joined by `,` (RFC 9110 5.3), sorted by name."""
    values: dict[str, list[str]] = {}
    for name, value in headers:
        values.setdefault(name.lower(), []).append(value)
    return tuple(sorted((name, ",".join(v)) for name, v in values.items()))


def apply_operations(operations: list[dict[str, Any]], headers) -> tuple[tuple[str, str], ...]:
    """Istio HeaderOperations: `set` "Overwrite the headers specified by key with the given
    values", `add` "Append the given values to the headers specified by keys (will create a
    comma-separated list of values)", `remove` "Remove the specified headers"."""
    out = [(name.lower(), value) for name, value in headers]
    for ops in operations:
        gone = {n.lower() for n in ops.get("remove", [])} | {n.lower() for n in ops.get("set", {})}
        out = ([(n, v) for n, v in out if n not in gone] + [(n.lower(), v) for n, v in ops.get("set", {}).items()]
               + [(n.lower(), v) for n, v in ops.get("add", {}).items()])
    return joined(out)


def cors_headers(policy: dict[str, Any], request: Request) -> tuple[bool, tuple[tuple[str, str], ...]] | None:
    """(a preflight, the CORS headers of the answer) under a corsPolicy; None without an Origin."""
    origin = request.header("origin")
    if not origin:
        return None
    allowed = any(string_matches(m, "*") or string_matches(m, origin) for m in policy.get("allowOrigins", []))
    out: list[tuple[str, str]] = []
    expose = [("access-control-expose-headers", ",".join(policy["exposeHeaders"]))] if policy.get("exposeHeaders") else []
    credentials = [("access-control-allow-credentials", "true")] if policy.get("allowCredentials") else []
    if request.method == "OPTIONS" and request.header("access-control-request-method"):
        assert policy.get("unmatchedPreflights") == "IGNORE"  # otherwise an unmatched one is forwarded
        out += [("access-control-allow-origin", origin)] if allowed else []
        out += credentials
        for field, name, asked in (("allowMethods", "access-control-allow-methods", "access-control-request-method"),
                                   ("allowHeaders", "access-control-allow-headers", "access-control-request-headers")):
            if policy.get(field) == ["*"]:
                out.append((name, request.header(asked) or ""))
            elif policy.get(field):
                out.append((name, ",".join(policy[field])))
        if "maxAge" in policy:
            out.append(("access-control-max-age", str(int(float(policy["maxAge"].rstrip("s"))))))
        return True, tuple(out + (expose if allowed else []))
    return False, tuple([("access-control-allow-origin", origin), *credentials, *expose] if allowed else [])


def outcome(rule: dict[str, Any], block: dict[str, Any], request: Request, ports: dict[str, int],
            answer: tuple[tuple[str, str], ...] | None) -> Outcome:
    query = f"?{request.query_string}" if "?" in request.path else ""
    path = request.bare_path
    if "redirect" in rule:
        return redirect_outcome(rule["redirect"], request, path + query)
    cors = cors_headers(rule["corsPolicy"], request) if "corsPolicy" in rule else None
    if cors is not None and cors[0]:
        return Outcome("preflight", status=200, cors=cors[1])
    cors_set = [{"set": dict(cors[1])}] if cors is not None and cors[1] else []
    fault = rule.get("fault", {})
    abort = fault.get("abort")
    if abort is not None and percent(abort) >= 100:
        return Outcome("abort", status=abort["httpStatus"])
    rewrite = rule.get("rewrite", {})
    uri = block.get("uri", {})
    if "uri" in rewrite:
        path = rewrite["uri"] if "exact" in uri else rewrite["uri"] + path[len(uri.get("prefix", "/")):]
    elif "uriRegexRewrite" in rewrite:
        path = re.sub(rewrite["uriRegexRewrite"]["match"], rewrite["uriRegexRewrite"]["rewrite"], path)
    routes = rule["route"]
    kept = [d for d in routes if len(routes) == 1 or d.get("weight", 0) > 0]
    chosen = sorted((((d["destination"]["host"], d["destination"].get("subset"),
                       d["destination"].get("port", {}).get("number", ports.get(d["destination"]["host"])),
                       100 if len(routes) == 1 else d.get("weight", 0)), d) for d in kept),
                    key=lambda pair: pair[0])
    headers = () if answer is None else tuple(
        (apply_operations([level.get("request", {}) for level in (rule.get("headers", {}), d.get("headers", {}))],
                          request.headers),
         apply_operations([level.get("response", {}) for level in (rule.get("headers", {}), d.get("headers", {}))]
                          + cors_set, answer))
        for _, d in chosen)
    delay = fault.get("delay")
    timing = (delay["fixedDelay"], percent(delay)) if delay is not None and percent(delay) > 0 else None
    return Outcome("forward", tuple(key for key, _ in chosen), path + query, rewrite.get("authority", request.host),
                   headers=headers, delay=timing, mirrors=mirrored(rule))


def mirrored(rule: dict[str, Any]) -> tuple[tuple[str, str | None, int | None, float], ...]:
    """HTTPRoute.mirrors, each "with its own percentage" (HTTPMirrorPolicy.percentage, all when
    absent), or the deprecated `mirror` with `mirrorPercentage`."""
    policies = rule.get("mirrors") or ([{"destination": rule["mirror"], **({"percentage": rule["mirrorPercentage"]}
                                                                          if "mirrorPercentage" in rule else {})}]
                                       if "mirror" in rule else [])
    return tuple(sorted((p["destination"]["host"], p["destination"].get("subset"),
                         p["destination"].get("port", {}).get("number"),
                         float(p.get("percentage", {}).get("value", 100))) for p in policies))


# ---------------------------------------------------------------------------------------------
# Security and scoping


def labels_select(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    wanted = (selector or {}).get("matchLabels", {})
    return all(labels.get(k) == v for k, v in wanted.items())


def peer_authentication_mode(policies: list[dict[str, Any]], namespace: str, labels: dict[str, str],
                             root_namespace: str = "istio-system") -> str | None:
    """The mTLS mode of a workload: the selecting policy of its namespace, else its namespace's
    policy without selector, else the root namespace's; None when nothing applies."""
    def mode(candidates: list[dict[str, Any]]) -> str | None:
        return candidates[0]["spec"].get("mtls", {}).get("mode") if candidates else None

    own = [p for p in policies if p["metadata"]["namespace"] == namespace]
    selecting = [p for p in own if p["spec"].get("selector") and labels_select(p["spec"]["selector"], labels)]
    namespace_wide = [p for p in own if not p["spec"].get("selector")]
    mesh_wide = [p for p in policies if p["metadata"]["namespace"] == root_namespace and not p["spec"].get("selector")]
    return mode(selecting) or mode(namespace_wide) or mode(mesh_wide)


@dataclass(frozen=True)
class Caller:
    """What an AuthorizationPolicy sees of a request: the peer's principal and namespace (None
    for a plain-text peer), the operation, the request principal `<iss>/<sub>` and claims of
    the JWT RequestAuthentication verified (None: no valid token), and the headers."""

    principal: str | None
    namespace: str | None
    method: str = "GET"
    path: str = "/"
    port: int | None = None
    request_principal: str | None = None
    claims: dict[str, Any] | None = None
    headers: tuple[tuple[str, str], ...] = ()
    # at a gateway: the connection's source address and the remote (original client) address
    address: str | None = None
    remote_address: str | None = None


def address_in(blocks: list[str] | None, address: str | None) -> bool | None:
    """Source.ipBlocks: "Single IP (e.g. 203.0.113.4) and CIDR (e.g. 203.0.113.0/24) are
    supported"; None when the field is absent."""
    if blocks is None:
        return None
    if address is None:
        return False
    return any(ipaddress.ip_address(address) in ipaddress.ip_network(block, strict=False) for block in blocks)


def value_matches(pattern: str, value: str | None) -> bool:
    if value is None:
        return False
    if pattern == "*":
        return True
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    return value == pattern


def field_matches(values: list[str] | None, not_values: list[str] | None, value: str | None) -> bool:
    if values is not None and not any(value_matches(v, value) for v in values):
        return False
    return not (not_values is not None and any(value_matches(v, value) for v in not_values))


def source_matches(source: dict[str, Any], caller: Caller) -> bool:
    """A `notPrincipals: ["*"]` source matches a peer without a principal: "not_values" match
    when no value does (an absent principal matches none)."""
    return (field_matches(source.get("principals"), source.get("notPrincipals"), caller.principal)
            and field_matches(source.get("namespaces"), source.get("notNamespaces"), caller.namespace)
            and field_matches(source.get("requestPrincipals"), source.get("notRequestPrincipals"),
                              caller.request_principal)
            and address_in(source.get("ipBlocks"), caller.address) is not False
            and address_in(source.get("remoteIpBlocks"), caller.remote_address) is not False
            and not address_in(source.get("notIpBlocks"), caller.address)
            and not address_in(source.get("notRemoteIpBlocks"), caller.remote_address))


def condition_values(key: str, caller: Caller) -> list[str] | None:
    """The values a `when` key names: `request.headers[name]` (the header, values joined by
    `,`), `request.auth.claims[name]` (a string claim, or each string of a list claim); None
    when absent."""
    if key.startswith("request.headers[") and key.endswith("]"):
        name = key[len("request.headers["):-1].lower()
        values = [v for n, v in caller.headers if n.lower() == name]
        return [",".join(values)] if values else None
    if key.startswith("request.auth.claims[") and key.endswith("]"):
        claim = (caller.claims or {}).get(key[len("request.auth.claims["):-1])
        if isinstance(claim, str):
            return [claim]
        if isinstance(claim, list):
            return [v for v in claim if isinstance(v, str)]
        return None
    raise AssertionError(f"this reader does not know the condition key {key!r}")


def condition_matches(condition: dict[str, Any], caller: Caller) -> bool:
    """Condition: "values: A list of allowed values for the attribute"; "notValues: A list of
    negative match of values"; a list claim matches when one of its values does; `*` is
    present-with-any-value."""
    found = condition_values(condition["key"], caller)
    values, not_values = condition.get("values"), condition.get("notValues")
    if values is not None and (found is None or not any(value_matches(v, f) for v in values for f in found)):
        return False
    return not (not_values is not None and found is not None
                and any(value_matches(v, f) for v in not_values for f in found))


def operation_matches(operation: dict[str, Any], caller: Caller) -> bool:
    port = str(caller.port) if caller.port is not None else None
    return (field_matches(operation.get("methods"), operation.get("notMethods"), caller.method)
            and field_matches(operation.get("paths"), operation.get("notPaths"), caller.path)
            and field_matches(operation.get("ports"), operation.get("notPorts"), port))


def rule_matches(rule: dict[str, Any], caller: Caller) -> bool:
    """Entries of `from` (and of `to`) are alternatives, fields inside one are ANDed: Istio's
    example allows "service account cluster.local/ns/default/sa/sleep or namespace test" from
    two `from` entries, and "GET ... or POST ..." from two `to` entries."""
    sources = rule.get("from")
    operations = rule.get("to")
    return ((not sources or any(source_matches(s.get("source", {}), caller) for s in sources))
            and (not operations or any(operation_matches(o.get("operation", {}), caller) for o in operations))
            and all(condition_matches(c, caller) for c in rule.get("when", [])))


def authorization_allows(policies: list[dict[str, Any]], namespace: str, labels: dict[str, str],
                         caller: Caller, root_namespace: str = "istio-system") -> bool:
    applying = [p for p in policies
                if p["metadata"]["namespace"] in (namespace, root_namespace)
                and labels_select(p["spec"].get("selector"), labels)]

    def matches(policy: dict[str, Any]) -> bool:
        return any(rule_matches(rule, caller) for rule in policy["spec"].get("rules", []))

    if any(matches(p) for p in applying if p["spec"].get("action") == "DENY"):
        return False
    allowing = [p for p in applying if p["spec"].get("action", "ALLOW") == "ALLOW"]
    return not allowing or any(matches(p) for p in allowing)


def sidecar_reaches(sidecar: dict[str, Any], namespace: str, host: str) -> bool:
    """Whether a Sidecar's egress lets its workload reach `host` exported from `namespace`."""
    for egress in sidecar["spec"].get("egress", []):
        for entry in egress.get("hosts", []):
            entry_namespace, _, name = entry.partition("/")
            namespace_ok = entry_namespace == "*" or entry_namespace == namespace or (
                entry_namespace == "." and sidecar["metadata"]["namespace"] == namespace)
            name_ok = name == "*" or name == host or (name.startswith("*.") and host.endswith(name[1:]))
            if namespace_ok and name_ok:
                return True
    return False


# ---------------------------------------------------------------------------------------------
# Multicluster: which endpoints a client sees, in Istio's failover priority


@dataclass(frozen=True)
class Workloads:
    """Endpoints of one service as Istio finds them: a cluster's pods, or WorkloadEntries."""

    source: str  # the cluster (pods) or the WorkloadEntry's name
    network: str | None
    locality: str | None


def cluster_network(documents: list[dict[str, Any]], root_namespace: str) -> str | None:
    for doc in documents:
        if doc["kind"] == "Namespace" and doc["metadata"]["name"] == root_namespace:
            return doc["metadata"].get("labels", {}).get("topology.istio.io/network")
    return None


def has_east_west_gateway(documents: list[dict[str, Any]]) -> bool:
    return any(doc["kind"] == "Gateway" and doc["apiVersion"].startswith("networking.istio.io")
               and any(server.get("tls", {}).get("mode") == "AUTO_PASSTHROUGH" for server in doc["spec"]["servers"])
               for doc in documents)


def locality_priority(client: str | None, endpoint: str | None) -> int:
    """Istio's priority of an endpoint's locality for a client's (both `region/zone/subzone`)."""
    mine, theirs = (client or "").split("/"), (endpoint or "").split("/")
    mine += [""] * (3 - len(mine))
    theirs += [""] * (3 - len(theirs))
    if mine[0] != theirs[0]:
        return 3
    if mine[1] != theirs[1]:
        return 2
    return 1 if mine[2] != theirs[2] else 0


def failover_order(client_network: str | None, client_locality: str | None, workloads: list[Workloads],
                   gateways: dict[str, bool], destination_rule: dict[str, Any]) -> list[list[str]]:
    """The sources of the endpoints a client sends to, grouped by priority, first first.
    `gateways` says which networks have an east-west gateway."""
    policy = destination_rule["spec"].get("trafficPolicy", {})
    setting = policy.get("loadBalancer", {}).get("localityLbSetting", {})
    # pilot's ApplyLocalityLoadBalancer: `distribute` (its weights) or failover, never both
    locality_on = setting.get("enabled") and "outlierDetection" in policy and not setting.get("distribute")
    kept = distributed_weights(client_locality, workloads, destination_rule)
    tiers: dict[int, list[str]] = {}
    for one in workloads:
        same = client_network is None or one.network is None or one.network == client_network
        if not same and not gateways.get(one.network or "", False):
            continue
        if kept is not None and one.source not in kept:
            continue
        rank = locality_priority(client_locality, one.locality) if locality_on else 0
        tiers.setdefault(rank, []).append(one.source)
    return [sorted(tiers[rank]) for rank in sorted(tiers)]


def locality_match(locality: str | None, pattern: str) -> bool:
    """pilot's util.LocalityMatch: each part of the pattern (`region/zone/subzone`) is `*` or
    equal to the locality's; a part the pattern leaves out matches anything."""
    parts = [*(locality or "").split("/"), "", ""]
    for index, wanted in enumerate(pattern.split("/")[:3]):
        if index > 0 and wanted == "":
            continue
        if wanted != "*" and wanted != parts[index]:
            return False
    return True


def distributed_weights(client_locality: str | None, workloads: list[Workloads],
                        destination_rule: dict[str, Any]) -> dict[str, Fraction] | None:
    """The locality weight each workload's group gets under the DestinationRule's
    `localityLbSetting.distribute`, as pilot's applyLocalityWeights writes it
    (pilot/pkg/networking/core/loadbalancer): the first entry whose `from` matches the client;
    each `to` locality's weight shared by the groups (one per locality) it matches first; groups
    it does not match lose their endpoints. None when no entry applies (weights untouched)."""
    setting = destination_rule["spec"].get("trafficPolicy", {}).get("loadBalancer", {}).get("localityLbSetting", {})
    entry = next((e for e in setting.get("distribute") or [] if locality_match(client_locality, e.get("from", ""))),
                 None)
    if entry is None:
        return None
    groups = sorted({one.locality or "" for one in workloads})
    weight: dict[str, Fraction] = {}
    for pattern, percent in entry.get("to", {}).items():
        matched = [g for g in groups if g not in weight and locality_match(g, pattern)]
        for group in matched:
            weight[group] = Fraction(math.ceil(percent / len(matched)))
    return {one.source: weight[one.locality or ""] for one in workloads if (one.locality or "") in weight}


def locality_shares(weights: dict[str, Fraction], workloads: list[Workloads]) -> dict[str, Fraction]:
    """Envoy's locality weighted load balancing over healthy groups: each locality's weight over
    their sum, shared evenly by the sources in it."""
    by_locality: dict[str, list[str]] = {}
    for one in workloads:
        if one.source in weights:
            by_locality.setdefault(one.locality or "", []).append(one.source)
    total = sum(weights[sources[0]] for sources in by_locality.values())
    return {source: weights[source] / total / len(sources)
            for sources in by_locality.values() for source in sources}


# Retries and timeouts (istio.io VirtualService HTTPRoute.timeout "default is disabled";
# HTTPRetry; pilot's pilot/pkg/networking/core/route/retry/retry.go ConvertPolicy: no `retries`
# is DefaultPolicy, `attempts: 0` disables, retryOn numbers are status codes and add
# retriable-status-codes, an empty retryOn keeps the default conditions, `backoff` is the base).
ISTIO_DEFAULT_RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int
    conditions: frozenset[str]
    status_codes: tuple[int, ...]
    per_try_timeout: str | None
    backoff_base: str | None


def matched_rule(spec: dict[str, Any], request: Request) -> dict[str, Any] | None:
    """The first HTTPRoute of the VirtualService that matches the request."""
    for rule in spec.get("http", []):
        if any(match_block(block, request) for block in rule.get("match") or [{}]):
            return rule
    return None


def retry_policy(rule: dict[str, Any]) -> RetryPolicy | None:
    """Envoy's retry policy for one HTTPRoute, as pilot converts it; None: no retries."""
    retries = rule.get("retries")
    if retries is None:
        return RetryPolicy(2, frozenset(ISTIO_DEFAULT_RETRY_ON.split(",")), (503,), None, None)
    if retries.get("attempts", 0) <= 0:
        return None
    conditions, codes = set(ISTIO_DEFAULT_RETRY_ON.split(",")), (503,)
    if retries.get("retryOn"):
        parts = [p.strip() for p in retries["retryOn"].split(",") if p.strip()]
        codes = tuple(int(p) for p in parts if p.isdigit())
        conditions = {p for p in parts if not p.isdigit()} | ({"retriable-status-codes"} if codes else set())
    return RetryPolicy(retries["attempts"], frozenset(conditions), codes, retries.get("perTryTimeout"),
                       retries.get("backoff"))
