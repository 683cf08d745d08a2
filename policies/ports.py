"""Routes and ports: matches a port's protocol cannot see, header edits on byte streams, match
ports that do not exist, versions of vm services with no endpoint to send to, versions of Cloud
Foundry apps (which have none to select)."""

from __future__ import annotations

from compiler import codes
from compiler.diagnostics import Related, Report
from compiler.graph import MeshGraph, ResolvedRule, RouteNode, Target
from compiler.hostnames import covers as host_covers
from compiler.model import HTTP_PROTOCOLS, STREAM_PROTOCOLS, Match
from policies.check import Check

HTTP_LISTENERS = frozenset({"http", "https"})


def _has_http_match(entry: Match) -> bool:
    return bool(entry.path or entry.method or entry.headers or entry.query)


def _entry_protocols(graph: MeshGraph, route: RouteNode, entry: Match) -> tuple[set[bool], set[int]] | None:
    """(is-HTTP flags of what the entry can apply to, the ports there), None if it applies nowhere."""
    if route.service is not None:  # a Service, or an ExternalService (a Route on an external host)
        externals = graph.externals
        ports = (graph.services.get(route.service) or externals[route.service]).spec.ports
        chosen = [p for p in ports if entry.port in (None, p.port)]
        return {p.protocol in HTTP_PROTOCOLS for p in chosen}, {p.port for p in ports}
    assert route.gateway is not None  # a Route without a service attaches to a gateway (linker)
    gateway = graph.gateways[route.gateway]
    serving = [listener for listener in gateway.listeners
               if any(host_covers(lh, rh) for lh in listener.hosts for rh in route.spec.hosts)]
    if not serving:
        return None  # reported by the gateways check
    listening = [listener for listener in serving if entry.port in (None, listener.port)]
    return {listener.protocol in HTTP_LISTENERS for listener in listening}, {listener.port for listener in serving}


def _check_matches(graph: MeshGraph, route: RouteNode, report: Report) -> None:
    at = graph.sources.locate
    target = f"service {route.service}" if route.service is not None else f"gateway {route.gateway}"
    for rule_index, rule in enumerate(route.spec.rules):
        for index, entry in enumerate(rule.match):
            where = ("rules", rule_index, "match", index)
            found = _entry_protocols(graph, route, entry)
            if found is None:
                continue
            kinds, ports = found
            if entry.port is not None and entry.port not in ports:
                report.add(codes.UNKNOWN_MATCH_PORT,
                           f"{target} has no port {entry.port} for this route "
                           f"(ports: {', '.join(map(str, sorted(ports)))})",
                           at(route.origin, *where, "port"))
                continue
            if _has_http_match(entry) and True not in kinds:
                report.add(codes.HTTP_MATCH_ON_STREAM,
                           f"match entry {index} of rule {rule_index} in Route {route.key} matches HTTP requests, "
                           f"but {target} carries only tcp or tls streams here",
                           at(route.origin, *where), hint="match stream routes on `port` or `sni`")
            if entry.sni and False not in kinds:
                report.add(codes.SNI_MATCH_ON_HTTP,
                           f"match entry {index} of rule {rule_index} in Route {route.key} matches a TLS server name, "
                           f"but {target} carries only HTTP here",
                           at(route.origin, *where, "sni"), hint="match HTTP routes on headers")


def _stream_protocol(graph: MeshGraph, rule: ResolvedRule) -> str | None:
    """`tls` for a rule matching on SNI, the protocol of its destinations' port when it is a byte
    stream (tcp, tls, mongo), else None (the rule routes HTTP requests)."""
    if any(entry.sni for entry in rule.spec.match):
        return "tls"
    if not rule.destinations:
        return None
    first = rule.destinations[0]  # a Service or, for a Route on an external host, an ExternalService
    callee = graph.services.get(first.service) or graph.externals[first.service]
    protocol = callee.protocol(first.port)
    return protocol if protocol in STREAM_PROTOCOLS else None


def _check_header_edits(graph: MeshGraph, route: RouteNode, report: Report) -> None:
    """MESH389: `headers` on a rule, or on one of its destinations, that forwards byte streams."""
    for rule in route.rules:
        protocol = _stream_protocol(graph, rule)
        if protocol is None:
            continue
        edited: list[tuple[object, ...]] = [("rules", rule.index, "headers")] if rule.spec.headers is not None else []
        edited += [("rules", rule.index, "to", index, "headers")
                   for index, destination in enumerate(rule.spec.to) if destination.headers is not None]
        for path in edited:
            report.add(codes.HEADERS_ON_STREAM,
                       f"rule {rule.index} of Route {route.key} forwards {protocol} byte streams, which have no HTTP "
                       "headers: these header edits would mean nothing on every target",
                       graph.sources.locate(route.origin, *path, key=True),
                       hint="remove `headers`, or route an HTTP port")


def _check_versions(graph: MeshGraph, route: RouteNode, report: Report) -> None:
    at = graph.sources.locate

    def unserved(target: Target | None) -> bool:
        if target is None or target.version is None:
            return False
        service = graph.services[target.service]
        return service.platform.kind == "vm" and all(e.version != target.version for e in service.spec.endpoints)

    def report_version(target: Target, *path: object) -> None:
        service = graph.services[target.service]
        report.add(codes.VERSION_WITHOUT_ENDPOINTS,
                   f"Route {route.key} sends traffic to version {target.version!r} of vm service {service.key}, "
                   "but no endpoint carries that version",
                   at(route.origin, *path, "version"),
                   related=(Related(at(service.origin, "versions", target.version, key=True), "the version"),),
                   hint=f"add `version: {target.version}` to an endpoint of {service.key}")

    def unaddressable(target: Target | None) -> bool:
        return (target is not None and target.version is not None
                and graph.services[target.service].platform.kind == "cloudfoundry")

    def report_unaddressable(target: Target, *path: object) -> None:
        service = graph.services[target.service]
        report.add(codes.VERSION_NOT_ADDRESSABLE,
                   f"Route {route.key} selects version {target.version!r} of {service.key}, which runs on Cloud "
                   f"Foundry platform {service.platform.name!r} as one app: every instance gets this traffic",
                   at(route.origin, *path, "version"),
                   related=(Related(at(service.origin, "versions", target.version, key=True), "the version"),),
                   hint="deploy each version as its own service and route between those")

    for rule in route.rules:
        targets: list[tuple[Target, tuple[object, ...]]] = [
            (target, ("rules", rule.index, "to", index)) for index, target in enumerate(rule.destinations)]
        targets.extend((target, ("rules", rule.index, *path))
                       for target, (path, _) in zip(rule.mirrors, rule.spec.written_mirrors(), strict=True))
        for target, path in targets:
            if unserved(target):
                report_version(target, *path)
            if unaddressable(target):
                report_unaddressable(target, *path)


def check(graph: MeshGraph, report: Report) -> None:
    for route in graph.routes.values():
        _check_matches(graph, route, report)
        _check_header_edits(graph, route, report)
        _check_versions(graph, route, report)


CHECK = Check(
    name="ports",
    summary="matches and header edits fit the protocol and ports they are on; routed versions have endpoints "
            "and can be addressed",
    reads=frozenset({"Mesh", "Service", "ExternalService", "Route", "Gateway"}),
    codes=(codes.HTTP_MATCH_ON_STREAM, codes.HEADERS_ON_STREAM, codes.SNI_MATCH_ON_HTTP, codes.UNKNOWN_MATCH_PORT,
           codes.VERSION_WITHOUT_ENDPOINTS, codes.VERSION_NOT_ADDRESSABLE),
    run=check,
)
