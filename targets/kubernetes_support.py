"""Small translations shared by the Kubernetes target's flavours."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

from compiler.graph import GatewayNode, Key, ResolvedRule, RouteNode, Target
from compiler.hostnames import overlap
from compiler.model import STREAM_PROTOCOLS, Listener, duration_seconds

ISTIO_NETWORKING = "networking.istio.io/v1"
ISTIO_NETWORKING_ALPHA = "networking.istio.io/v1alpha3"
ISTIO_SECURITY = "security.istio.io/v1"
ISTIO_TELEMETRY = "telemetry.istio.io/v1"
GATEWAY_API = "gateway.networking.k8s.io/v1"


def protocol_name(protocol: str) -> str:
    """A port or listener protocol as Istio (ServiceEntry ports, Gateway servers) and the Gateway
    API (listeners) spell it: HTTP, HTTP2, GRPC, HTTPS, TCP, TLS, MONGO."""
    return protocol.upper()


def proto_duration(text: str) -> str:
    """A meshc duration as a protobuf JSON Duration (seconds with a fraction), as Istio reads it."""
    seconds = duration_seconds(text)
    if seconds == seconds.to_integral_value():
        return f"{int(seconds)}s"
    return f"{seconds.normalize():f}s"


def rule_kind(rule: ResolvedRule, protocol_of: Callable[[Target], str]) -> str:
    """http, tcp or tls: SNI matches make a tls rule, an L4 destination port a tcp rule."""
    if any(match.sni for match in rule.spec.match):
        return "tls"
    if rule.destinations and protocol_of(rule.destinations[0]) in STREAM_PROTOCOLS:
        return "tcp"
    return "http"


def whole_milliseconds(text: str) -> tuple[int, bool]:
    """Milliseconds in a duration, rounded up; and whether rounding was needed."""
    millis = duration_seconds(text) * 1000
    whole = int(millis.to_integral_value(rounding="ROUND_CEILING"))
    return whole, Decimal(whole) != millis


def gateway_api_duration(millis: int) -> str:
    """A Gateway API (GEP-2257) duration: up to four h/m/s/ms parts of at most five digits each."""
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis_part = divmod(rest, 1000)
    parts = [(hours, "h"), (minutes, "m"), (seconds, "s"), (millis_part, "ms")]
    text = "".join(f"{value}{unit}" for value, unit in parts if value)
    return text or "0s"


@dataclass(frozen=True)
class RouteGroup:
    """Routes merged for some hosts, in merge order (docs/intents.md, "Several Routes for one
    host"), written as one Kubernetes object: Istio does not merge VirtualServices for a host
    in sidecars and merges gateway ones in an undefined order, and across HTTPRoutes the Gateway
    API breaks ties by creation time, which the repository does not fix. `listeners` restricts
    a gateway group to some of its gateway's listeners (Route.listeners and Route.ports); None,
    every listener that serves its hosts."""

    routes: tuple[RouteNode, ...]
    hosts: tuple[str, ...] = ()
    listeners: tuple[Listener, ...] | None = None

    @property
    def key(self) -> Key:
        """The object's name: the one Route's, else the first Route's with a digest of what the
        group is (a Route may be first in several groups of a gateway)."""
        first = self.routes[0]
        if len(self.routes) == 1 and self.listeners is None:
            return first.key
        named = [str(r.key) for r in self.routes] + [f"listener {lst.name}" for lst in self.listeners or ()]
        digest = hashlib.sha256("\n".join(named).encode()).hexdigest()[:8]
        return Key(first.key.namespace, f"{first.key.name}-merged-{digest}")

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(route.origin.file for route in self.routes))

    def rules(self) -> list[tuple[RouteNode, ResolvedRule]]:
        """Every rule, with its Route, in merge order."""
        return [(route, rule) for route in self.routes for rule in route.rules]


def gateway_groups(gateway: GatewayNode, routes: Iterable[RouteNode]) -> list[RouteGroup]:
    """A gateway's Routes grouped as the evaluator merges them: for each host, on each listener
    that serves it, the Routes that write the host and attach to the listener. Where those are
    the same Routes on every such listener the group takes the whole gateway; otherwise one
    group per set of Routes, restricted to the listeners it applies on. Groups in the order
    their first host is written."""
    writers: dict[str, list[RouteNode]] = {}
    for route in routes:
        for host in route.spec.hosts:
            writers.setdefault(host, []).append(route)
    grouped: dict[tuple, tuple[list[RouteNode], tuple[Listener, ...] | None, list[str]]] = {}
    for host, written in writers.items():
        serving = [lst for lst in gateway.listeners if any(overlap(lh, host) for lh in lst.hosts)]
        per_listener = [(lst, [r for r in written if r.attaches(lst)]) for lst in serving]
        entries: list[tuple[list[RouteNode], tuple[Listener, ...] | None]]
        if all(len(merged) == len(written) for _, merged in per_listener):
            entries = [(written, None)]
        else:
            by_set: dict[tuple[Key, ...], tuple[list[RouteNode], list[Listener]]] = {}
            for lst, merged in per_listener:
                if merged:
                    by_set.setdefault(tuple(r.key for r in merged), (merged, []))[1].append(lst)
            entries = [(merged, tuple(on)) for merged, on in by_set.values()]
        for merged, on in entries:
            group_key = (tuple(r.key for r in merged), None if on is None else tuple(lst.name for lst in on))
            grouped.setdefault(group_key, (merged, on, []))[2].append(host)
    return [RouteGroup(tuple(merged), tuple(hosts), on) for merged, on, hosts in grouped.values()]
