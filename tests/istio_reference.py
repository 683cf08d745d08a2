"""What an Istio VirtualService does with one HTTP request, read from the object itself.

The test side of `meshc import`'s round trip: written from Istio's reference, not from meshc.
istio.io/latest/docs/reference/config/networking/virtual-service/:
- HTTPRoute: "Routing rules are evaluated in sequential order from top to bottom, with the
  first rule in the specification having the highest priority."
- HTTPMatchRequest: "All conditions inside a single match block have AND semantics, while the
  list of match blocks have OR semantics. The rule is matched if any one of the match blocks
  succeed."
- StringMatch: `exact`, `prefix` ("prefix-based match", a character prefix: Envoy's route
  `prefix`), `regex` ("RE2 style regex-based match", the whole value: Envoy `safe_regex`).
  Header names are matched case-insensitively (HTTP/2 lower-cases them; Envoy compares
  lower-cased names).
- HTTPRouteDestination: "weight ... If there is only one destination in a rule, it will
  receive all traffic"; a destination without `port` goes to the service's only port.
- HTTPFaultInjection: a delay or abort applies to `percentage.value` percent of requests,
  else the deprecated integer `percent`, else to none (pilot's TranslateFault).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

Outcome = tuple[Any, ...]


@dataclass(frozen=True)
class HttpRequest:
    path: str
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()


def _string_matches(condition: dict[str, Any], value: str | None) -> bool:
    if value is None:
        return False
    if "exact" in condition:
        return value == condition["exact"]
    if "prefix" in condition:
        return value.startswith(condition["prefix"])
    if "regex" in condition:
        return re.fullmatch(condition["regex"], value) is not None
    return True


def _header(request: HttpRequest, name: str) -> str | None:
    return next((v for k, v in request.headers if k.lower() == name.lower()), None)


def _match_block(block: dict[str, Any], request: HttpRequest) -> bool:
    path = request.path.split("?", 1)[0]
    if "uri" in block and not _string_matches(block["uri"], path):
        return False
    if "method" in block and not _string_matches(block["method"], request.method):
        return False
    return all(_string_matches(condition, _header(request, name)) for name, condition in block.get("headers", {}).items())


def _percent(fault: dict[str, Any]) -> float:
    if "percentage" in fault:
        return float(fault["percentage"].get("value", 0))
    return float(fault.get("percent", 0))


def evaluate(virtual_service: dict[str, Any], request: HttpRequest, ports: dict[str, int]) -> Outcome:
    """("forward", destinations, delay) | ("abort", status) | ("not-found",).

    destinations: sorted (host, subset, port, weight); `ports` gives each service's only port.
    """
    for rule in virtual_service["spec"].get("http", []):
        blocks = rule.get("match") or [{}]
        if not any(_match_block(block, request) for block in blocks):
            continue
        fault = rule.get("fault", {})
        abort = fault.get("abort")
        if abort is not None and _percent(abort) >= 100:
            return ("abort", abort["httpStatus"])
        routes = rule["route"]
        destinations = tuple(sorted(
            (d["destination"]["host"], d["destination"].get("subset"),
             d["destination"].get("port", {}).get("number", ports.get(d["destination"]["host"])),
             100 if len(routes) == 1 else d.get("weight", 0))
            for d in routes if len(routes) == 1 or d.get("weight", 0) > 0))
        delay = fault.get("delay")
        timing = (delay["fixedDelay"], _percent(delay)) if delay is not None and _percent(delay) > 0 else None
        return ("forward", destinations, timing)
    return ("not-found",)
