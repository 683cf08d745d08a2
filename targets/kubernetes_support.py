"""Small translations shared by the Kubernetes target's flavours."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from compiler.graph import ResolvedRule, Target
from compiler.model import STREAM_PROTOCOLS, duration_seconds

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
