"""Outbound side of a sidecar, and the HTTP route tables a gateway shares with it.

Applications send HTTP to one loopback listener (sidecar.outboundPort) addressed by Host
`<service>` or `<service>.<namespace>` (with or without `:port`); each tcp, tls or mongo
destination gets its own loopback listener on the callee's port. Only the destinations in
`calls` are configured, plus the services their Routes send to.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from typing import Any

from compiler import codes
from compiler.diagnostics import Related
from compiler.evaluate import DEFAULT_PORTS
from compiler.graph import ExternalNode, Key, ResolvedRule, RouteNode, ServiceNode, Target
from compiler.model import HTTP_PROTOCOLS, HeaderModifier, Match, Redirect, Rewrite, RouteRule
from targets.envoylib.blocks import (
    ANY_ADDRESS,
    CORS_FILTER,
    FAULT,
    FAULT_FILTER,
    LOCAL_RATE_LIMIT_FILTER,
    LOOPBACK,
    REDIRECT_CODES,
    cors_policy,
    duration,
    fractional_percent,
    header_mutations,
    literal_substitution,
    mongo_proxy,
    path_rewrite,
    route_filters,
    route_match,
    route_rate_limit,
    socket_address,
    tcp_proxy,
)
from targets.envoylib.proxy import Proxy, retry_policy

OUTBOUND_HTTP = "outbound|http"


def outbound_listeners(proxy: Proxy, service: ServiceNode, address: str) -> list[dict]:
    graph = proxy.graph
    sidecar = service.sidecar
    taken: dict[int, str] = {sidecar.outbound_port: "the outbound HTTP listener",
                             sidecar.admin_port: "the admin listener"}
    if address in (ANY_ADDRESS, LOOPBACK):
        taken.update({p.port: f"inbound port {p.port}" for p in service.spec.ports})
    short_names = short_name_owners(proxy, service)
    virtual_hosts: list[dict] = []
    stream_listeners: list[dict] = []
    for index, callee_key in enumerate(service.calls):
        external = graph.externals.get(callee_key)
        ports = external.spec.ports if external is not None else graph.services[callee_key].spec.ports
        primary = True  # the first HTTP port also answers to the host names without a port
        for port in ports:
            if port.protocol in HTTP_PROTOCOLS:
                if external is not None:
                    virtual_hosts.append(external_virtual_host(proxy, external, port, primary))
                else:
                    callee = graph.services[callee_key]
                    virtual_hosts.append(mesh_virtual_host(proxy, callee, port.port, primary,
                                                           callee_key in short_names))
                primary = False
                continue
            holder = taken.get(port.port)
            if holder is not None:
                proxy.report.add(
                    codes.ENVOY_LISTENER_PORT_CLASH,
                    f"service {service.key} calls {callee_key} on {port.protocol} port {port.port}, "
                    f"but the sidecar's loopback port {port.port} is already {holder}",
                    proxy.at(service.origin, "calls", index),
                    hint="set `sidecar: {outboundPort, adminPort}` to other ports, or change the callee's port",
                )
                continue
            taken[port.port] = f"the listener for {callee_key}"
            stream_listeners.append(stream_listener(proxy, callee_key, port))
    listeners = []
    if virtual_hosts:
        manager = proxy.http_connection_manager(OUTBOUND_HTTP, virtual_hosts, route_filters(virtual_hosts),
                                                "outbound")
        listeners.append({"name": OUTBOUND_HTTP, "address": socket_address(LOOPBACK, sidecar.outbound_port),
                          "filter_chains": [{"filters": [manager]}]})
    return listeners + stream_listeners


def short_name_owners(proxy: Proxy, service: ServiceNode) -> set[Key]:
    """Callees that answer to their bare name: one per name, preferring the caller's namespace."""
    by_name: dict[str, list[tuple[int, Key]]] = defaultdict(list)
    for index, key in enumerate(service.calls):
        if key in proxy.graph.services:
            by_name[key.name].append((index, key))
    owners = set()
    for name, entries in by_name.items():
        own = [key for _, key in entries if key.namespace == service.namespace]
        if len(entries) == 1 or own:
            owners.add(own[0] if own else entries[0][1])
        if len(entries) > 1:
            first_index, _ = entries[0]
            proxy.report.add(
                codes.ENVOY_AMBIGUOUS_HOST,
                f"service {service.key} calls {len(entries)} services named {name!r}; "
                + (f"host {name!r} goes to {own[0]}" if own else f"host {name!r} is left out")
                + ", the others are reached as <name>.<namespace>",
                proxy.at(service.origin, "calls", entries[1][0]),
                related=(Related(proxy.at(service.origin, "calls", first_index), "the other call"),),
            )
    return owners


def mesh_virtual_host(proxy: Proxy, callee: ServiceNode, port: int, primary: bool, short_name: bool) -> dict:
    names = [f"{callee.name}.{callee.namespace}"] + ([callee.name] if short_name else [])
    domains = (names if primary else []) + [f"{name}:{port}" for name in names]
    merged = proxy.graph.routes_for(callee.key)
    if not merged:
        routes = [default_route(proxy, callee, Target(callee.key, None, port, 100))]
    else:
        routes = merged_routes(proxy, merged, port)
    return {"name": f"{callee.name}.{callee.namespace}:{port}", "domains": domains, "routes": routes}


def external_virtual_host(proxy: Proxy, external: ExternalNode, port, primary: bool) -> dict:
    hosts = [h for h in external.spec.hosts if not h.startswith("*")] + address_domains(proxy, external)
    domains = (hosts if primary else []) + [f"{host}:{port.port}" for host in hosts]
    name = f"{external.name}.{external.namespace}:{port.port}"
    routes = proxy.graph.routes_for(external.key)
    if routes:  # a Route on the external host
        return {"name": name, "domains": domains, "routes": merged_routes(proxy, routes, port.port)}
    cluster = proxy.external_cluster(external, port)
    return {"name": name, "domains": domains,
            "routes": [{"match": {"prefix": "/"}, "route": {"cluster": cluster, "timeout": "0s",
                                                            "retry_policy": retry_policy(None, sticky=False)}}]}


def address_domains(proxy: Proxy, external: ExternalNode) -> list[str]:
    """The ExternalService's `addresses` as Host names: each single address (IPv6 in brackets,
    as a Host header writes it); a wider block cannot be a virtual host domain (MESH457)."""
    domains = []
    for index, written in enumerate(external.spec.addresses):
        network = ipaddress.ip_network(written)
        if network.num_addresses == 1:
            address = str(network.network_address)
            domains.append(f"[{address}]" if network.version == 6 else address)
            continue
        proxy.report.add(
            codes.ENVOY_EXTERNAL_ADDRESS_RANGE,
            f"ExternalService {external.key} address {written!r} is a range: a sidecar meshc generates matches "
            "HTTP requests by Host name and answers requests to an address in it 404",
            proxy.at(external.origin, "addresses", index),
            hint="list the addresses one by one",
        )
    return domains


def default_route(proxy: Proxy, callee: ServiceNode, target: Target) -> dict:
    """A callee without a Route: all of it, with its resilience."""
    action: dict[str, Any] = {"cluster": proxy.service_cluster(target)}
    resilience = callee.resilience
    action["timeout"] = duration(resilience.timeout) if resilience.timeout else "0s"
    hash_policy = ring_hash_policy(callee)
    retries = retry_policy(resilience.retries, sticky=hash_policy is not None)
    if retries is not None:
        action["retry_policy"] = retries
    if hash_policy is not None:
        action["hash_policy"] = hash_policy
    return {"match": {"prefix": "/"}, "route": action}


def ring_hash_policy(service: ServiceNode) -> list[dict] | None:
    balancer = service.resilience.loadBalancer
    if balancer is None or isinstance(balancer, str):
        return None
    return [{"header": {"header_name": balancer.ringHash.header}}]


def applicable_matches(proxy: Proxy, route: RouteNode, rule: ResolvedRule, port: int | None) -> list[Match | None]:
    """The match entries of a rule that an HTTP route on `port` can apply (None: match-all)."""
    if not rule.spec.match:
        return [None]
    matches: list[Match | None] = []
    for match in rule.spec.match:
        if port is not None and match.port is not None and match.port != port:
            continue
        if match.sni:
            continue  # an HTTP route sees no SNI: the entry never matches (analysis reports MESH341)
        matches.append(match)
    return matches


def rule_routes(proxy: Proxy, route: RouteNode, port: int | None) -> list[dict]:
    """Envoy routes for a Route's rules, in order; one per match entry (entries are ORed)."""
    entries: list[dict] = []
    for rule in route.rules:
        matches = applicable_matches(proxy, route, rule, port)
        if not matches:
            continue
        action = rule_action(proxy, route, rule, port)
        if rule.spec.rateLimit is not None and len(matches) > 1:
            proxy.report.add(
                codes.ENVOY_RATE_LIMIT_PER_MATCH,
                f"Route {route.key} rule {rule.index} has a rateLimit and {len(matches)} match entries: Envoy gives "
                f"each entry's route a bucket of its own, so the rule admits up to {len(matches)} x "
                f"{rule.spec.rateLimit.requests} requests per {rule.spec.rateLimit.per}",
                proxy.at(route.origin, "rules", rule.index, "rateLimit"),
                hint="write the entries as rules of their own, each with its rateLimit",
            )
        for match in matches:
            entry = {"match": route_match(match), **action}
            if rule.spec.rewrite is not None:
                entry["route"] = {**action["route"], **route_rewrite(rule.spec.rewrite, match)}
            if rule.spec.redirect is not None and rule.spec.redirect.prefix is not None:
                entry["redirect"] = {**action["redirect"], **path_rewrite(rule.spec.redirect.prefix, match)}
            entries.append(entry)
    return entries


def merged_routes(proxy: Proxy, routes: tuple[RouteNode, ...], port: int | None) -> list[dict]:
    """The Envoy routes of several Routes merged for one host: each Route's in turn, in merge
    order (docs/intents.md, "Several Routes for one host"); Envoy takes the first that matches."""
    return [entry for route in routes for entry in rule_routes(proxy, route, port)]


def route_rewrite(rewrite: Rewrite, match: Match | None) -> dict:
    """RouteAction fields for a rewrite: the path (a replaced prefix after `match`, or the whole
    path by a regex over all of it; the query stays) and host_rewrite_literal for the Host."""
    fields: dict[str, Any] = {}
    if rewrite.path is not None:
        fields["regex_rewrite"] = {"pattern": {"regex": "^.*$"}, "substitution": literal_substitution(rewrite.path)}
    elif rewrite.prefix is not None:
        fields.update(path_rewrite(rewrite.prefix, match))
    if rewrite.host is not None:
        fields["host_rewrite_literal"] = rewrite.host
    return fields


def redirect_action(written: Redirect, port: int | None) -> dict:
    """An Envoy RedirectAction for docs/intents.md's Location. Envoy keeps the Host header's
    port unless told (scheme_redirect keeps it too), so the port is always given: the
    redirect's, the scheme's well-known one, or the port this route table serves (`port`)."""
    redirect: dict[str, Any] = {"response_code": REDIRECT_CODES[written.status]}
    if written.scheme is not None:
        redirect["scheme_redirect"] = written.scheme
    if written.host is not None:
        redirect["host_redirect"] = written.host
    to_port = written.port or (DEFAULT_PORTS[written.scheme] if written.scheme is not None else port)
    if to_port is not None:
        redirect["port_redirect"] = to_port
    if written.path is not None:
        redirect["path_redirect"] = written.path
    return redirect


def rule_action(proxy: Proxy, route: RouteNode, rule: ResolvedRule, port: int | None) -> dict:
    spec = rule.spec
    if spec.redirect is not None:
        return {"redirect": redirect_action(spec.redirect, port)}
    weighted = [(proxy.service_cluster(t), t.weight) for t in rule.destinations]
    action: dict[str, Any]
    if len(weighted) == 1:
        action = {"cluster": weighted[0][0]}
    else:
        action = {"weighted_clusters": {"clusters": [
            {"name": n, "weight": w, **destination_header_mutations(written.headers)}
            for (n, w), written in zip(weighted, spec.to, strict=True)]}}
    action["timeout"] = duration(rule.timeout) if rule.timeout else "0s"
    first = proxy.graph.services.get(rule.destinations[0].service)  # an ExternalService has no balancer
    hash_policy = ring_hash_policy(first) if first is not None else None
    retries = retry_policy(rule.retries, sticky=hash_policy is not None)
    if retries is not None:
        action["retry_policy"] = retries
    if rule.mirrors:
        action["request_mirror_policies"] = [
            {"cluster": proxy.service_cluster(target),
             "runtime_fraction": {"default_value": fractional_percent(m.percent)}}
            for target, (_, m) in zip(rule.mirrors, spec.written_mirrors(), strict=True)]
    if hash_policy is not None:
        action["hash_policy"] = hash_policy
    entry: dict[str, Any] = {"route": action, **rule_header_mutations(spec)}
    if spec.cors is not None:
        entry.setdefault("typed_per_filter_config", {})[CORS_FILTER] = cors_policy(spec.cors)
    if spec.rateLimit is not None:
        bucket, descriptor_actions = route_rate_limit(spec.rateLimit)
        if descriptor_actions:
            action["rate_limits"] = descriptor_actions
        entry.setdefault("typed_per_filter_config", {})[LOCAL_RATE_LIMIT_FILTER] = bucket
    if spec.fault is not None:
        fault: dict[str, Any] = {"@type": FAULT}
        if spec.fault.delay is not None:
            fault["delay"] = {"fixed_delay": duration(spec.fault.delay.fixed),
                              "percentage": fractional_percent(spec.fault.delay.percent)}
        if spec.fault.abort is not None:
            fault["abort"] = {"http_status": spec.fault.abort.status,
                              "percentage": fractional_percent(spec.fault.abort.percent)}
        entry.setdefault("typed_per_filter_config", {})[FAULT_FILTER] = fault
    return entry


def destination_header_mutations(written: HeaderModifier | None) -> dict:
    """A destination's own header edits, on its weighted cluster."""
    if written is None:
        return {}
    return {**header_mutations("request", written.request), **header_mutations("response", written.response)}


def rule_header_mutations(spec: RouteRule) -> dict:
    """The rule's header edits on the route; with one destination, its own edits too (the names
    are disjoint, so where Envoy applies them makes no difference)."""
    own = [spec.headers] + ([spec.to[0].headers] if len(spec.to) == 1 else [])
    edits = [modifier for modifier in own if modifier is not None]
    return {**header_mutations("request", *(m.request for m in edits)),
            **header_mutations("response", *(m.response for m in edits))}


# ---------------------------------------------------------------------------------------------
# tcp, tls and mongo destinations

HTTP_ONLY_RULE_FIELDS = ("timeout", "retries", "fault", "mirror", "rewrite", "headers", "rateLimit")


def http_only_fields(spec: RouteRule) -> list[str]:
    """The fields of a rule that only an HTTP route can apply."""
    fields = [f for f in HTTP_ONLY_RULE_FIELDS if getattr(spec, f) is not None]
    if spec.mirrors:
        fields.append("mirrors")
    if any(d.headers is not None for d in spec.to):
        fields.append("to[].headers")
    return fields


def stream_listener(proxy: Proxy, callee_key: Key, port) -> dict:
    name = f"outbound|{port.port}|{callee_key.name}.{callee_key.namespace}"
    weighted = stream_targets(proxy, callee_key, port.port)
    filters = []
    if port.protocol == "mongo":
        filters.append(mongo_proxy(name))
    filters.append(tcp_proxy(name, weighted))
    return {"name": name, "address": socket_address(LOOPBACK, port.port), "filter_chains": [{"filters": filters}]}


def stream_targets(proxy: Proxy, callee: Key, port: int) -> list[tuple[str, int]]:
    """Weighted clusters for a byte-stream destination: the first rule a tcp proxy can take."""
    routes = proxy.graph.routes_for(callee)
    if routes:
        chosen = stream_rule(proxy, routes, port)
        if chosen is not None:
            return [(proxy.service_cluster(t), t.weight) for t in chosen.destinations]
    return [(proxy.service_cluster(Target(callee, None, port, 100)), 100)]


def stream_rule(proxy: Proxy, routes: tuple[RouteNode, ...], port: int | None) -> ResolvedRule | None:
    """The first rule of the merged Routes a byte stream can take; every later rule for this
    port is reported."""
    chosen = None
    for route, rule in [(owner, rule) for owner in routes for rule in owner.rules]:
        entries = [m for m in rule.spec.match if port is None or m.port in (None, port)]
        if rule.spec.match and not entries:
            continue  # for another port
        if rule.spec.match and all(m.path or m.method or m.headers or m.query for m in entries):
            continue  # HTTP matches never match a byte stream (analysis reports MESH340)
        where = proxy.at(route.origin, "rules", rule.index)
        if chosen is None and rule.spec.redirect is None:
            chosen = rule
            http_fields = http_only_fields(rule.spec)
            if http_fields:
                proxy.report.add(
                    codes.ENVOY_ROUTE_FEATURE_UNSUPPORTED,
                    f"Route {route.key} rule {rule.index} sets {', '.join(http_fields)}, which a tcp proxy "
                    "cannot apply to a byte stream; its destinations are used without them",
                    where,
                )
            continue
        proxy.report.add(
            codes.ENVOY_ROUTE_FEATURE_UNSUPPORTED,
            f"Route {route.key} rule {rule.index} cannot be applied to port {port}, which carries a byte stream: "
            + ("a redirect needs HTTP" if rule.spec.redirect is not None
               else "a tcp proxy takes only the first rule that matches the stream"),
            where,
        )
    return chosen
