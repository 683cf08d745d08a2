"""Gateways: listeners Envoy would reject, hosts nobody serves, certificates shared or missing."""

from __future__ import annotations

from collections import defaultdict

from compiler import codes
from compiler.diagnostics import Related, Report
from compiler.graph import GatewayNode, Key, MeshGraph
from compiler.hostnames import overlap
from policies.check import Check


def _overlapping_listeners(graph: MeshGraph, gateway: GatewayNode, report: Report) -> None:
    """Listeners of one port that write the same host are indistinct (Gateway API: "Conflicted");
    overlapping hosts (`foo.bar.com` and `*.bar.com`) are distinct: the most specific serves."""
    at = graph.sources.locate
    listeners = gateway.listeners
    for second_index, second in enumerate(listeners):
        for first_index, first in enumerate(listeners[:second_index]):
            if first.port != second.port:
                continue
            clash = next(((fi, si) for si, sh in enumerate(second.hosts) for fi, fh in enumerate(first.hosts)
                          if fh.lower() == sh.lower()), None)
            if clash is not None:
                report.add(
                    codes.OVERLAPPING_LISTENERS,
                    f"listeners {first.name!r} and {second.name!r} of gateway {gateway.key} share port {second.port} "
                    f"and both serve {second.hosts[clash[1]]!r}",
                    at(gateway.origin, "listeners", second_index, "hosts", clash[1]),
                    related=(Related(at(gateway.origin, "listeners", first_index, "hosts", clash[0]),
                                     f"listener {first.name!r}"),),
                    hint="give the listeners distinct hosts or distinct ports",
                )
                break


def _unserved_hosts(graph: MeshGraph, report: Report) -> None:
    at = graph.sources.locate
    for route in graph.routes.values():
        if route.gateway is None:
            continue
        gateway = graph.gateways[route.gateway]
        for index, host in enumerate(route.spec.hosts):
            # Gateway API: a Route host and a listener host that intersect attach the Route for
            # the intersection (`*.example.com` under a `foo.example.com` listener serves foo)
            if not any(overlap(lh, host) for listener in gateway.listeners if route.attaches(listener)
                       for lh in listener.hosts):
                attached = " it attaches to" if route.spec.listeners or route.spec.ports else ""
                report.add(codes.GATEWAY_HOST_UNSERVED,
                           f"no listener{attached} of gateway {gateway.key} serves host {host!r} of Route {route.key}",
                           at(route.origin, "hosts", index),
                           related=(Related(at(gateway.origin, "listeners", key=True), "the gateway's listeners"),))


def _certificates(graph: MeshGraph, report: Report) -> None:
    at = graph.sources.locate
    users: dict[tuple[str, str], dict[Key, int]] = defaultdict(dict)  # certificate -> gateway -> listener
    for gateway in graph.gateways.values():
        for index, listener in enumerate(gateway.listeners):
            tls = listener.tls
            if tls is None or tls.mode != "terminate":
                continue
            if tls.certificate is None:
                report.add(codes.LISTENER_WITHOUT_CERTIFICATE,
                           f"listener {listener.name!r} of gateway {gateway.key} terminates TLS without a certificate",
                           at(gateway.origin, "listeners", index, "tls"),
                           hint="add `certificate: <secret or SDS name>` to the listener's tls")
                continue
            users[(gateway.key.namespace, tls.certificate)].setdefault(gateway.key, index)
    for (namespace, certificate), gateways in users.items():
        first_key, *others = gateways
        first = graph.gateways[first_key]
        for key in others:
            gateway = graph.gateways[key]
            report.add(codes.SHARED_CERTIFICATE,
                       f"gateway {key} terminates TLS with certificate {namespace}/{certificate}, "
                       f"which gateway {first_key} uses too",
                       at(gateway.origin, "listeners", gateways[key], "tls", "certificate"),
                       related=(Related(at(first.origin, "listeners", gateways[first_key], "tls", "certificate"),
                                        f"also on gateway {first_key}"),),
                       hint="issue one certificate per gateway")


def check(graph: MeshGraph, report: Report) -> None:
    for gateway in graph.gateways.values():
        _overlapping_listeners(graph, gateway, report)
    _unserved_hosts(graph, report)
    _certificates(graph, report)


CHECK = Check(
    name="gateways",
    summary="listeners Envoy accepts; every route host is served; certificates present and not shared",
    reads=frozenset({"Mesh", "Service", "Route", "Gateway"}),
    codes=(codes.OVERLAPPING_LISTENERS, codes.GATEWAY_HOST_UNSERVED, codes.SHARED_CERTIFICATE,
           codes.LISTENER_WITHOUT_CERTIFICATE),
    run=check,
)
