"""Resilience: retries that cannot fit their timeout, route timeouts that outlast their callers,
retries of non-idempotent requests."""

from __future__ import annotations

from compiler import codes
from compiler.diagnostics import Location, Related, Report
from compiler.graph import MeshGraph, ResolvedRule, RouteNode, ServiceNode
from compiler.model import Retries, timeout_seconds
from policies.check import Check

NON_IDEMPOTENT = frozenset({"POST", "PATCH", "CONNECT"})  # RFC 9110, section 9.2.2


def _service_timeout_location(graph: MeshGraph, service: ServiceNode) -> Location:
    own = service.spec.resilience
    if own is not None and own.timeout is not None:
        return graph.sources.locate(service.origin, "resilience", "timeout")
    return graph.sources.locate(graph.mesh_origin, "defaults", "timeout")


def _service_retries_location(graph: MeshGraph, service: ServiceNode) -> Location:
    own = service.spec.resilience
    if own is not None and own.retries is not None:
        return graph.sources.locate(service.origin, "resilience", "retries")
    return graph.sources.locate(graph.mesh_origin, "defaults", "retries")


def _budget_overrun(report: Report, retries: Retries, timeout: str | None, where: Location,
                    timeout_at: Location, what: str) -> None:
    per_try, limit = timeout_seconds(retries.perTryTimeout), timeout_seconds(timeout)
    if retries.attempts == 0 or per_try is None or limit is None:
        return
    tries = retries.attempts + 1
    budget = tries * per_try
    if budget > limit:
        report.add(
            codes.RETRY_BUDGET_EXCEEDS_TIMEOUT,
            f"{what}: {tries} tries x perTryTimeout {retries.perTryTimeout} take up to {budget.normalize():f}s, "
            f"longer than the timeout {timeout}",
            where,
            related=(Related(timeout_at, "the timeout in force"),),
            hint="lower attempts or perTryTimeout, or raise the timeout",
        )


def _retry_budgets(graph: MeshGraph, report: Report) -> None:
    at = graph.sources.locate
    defaults = graph.mesh.defaults
    if defaults.retries is not None:
        _budget_overrun(report, defaults.retries, defaults.timeout,
                        at(graph.mesh_origin, "defaults", "retries", "perTryTimeout"),
                        at(graph.mesh_origin, "defaults", "timeout"), "Mesh.defaults retries")
    for service in graph.services.values():
        own = service.spec.resilience
        if own is not None and own.retries is not None:
            _budget_overrun(report, own.retries, service.resilience.timeout,
                            at(service.origin, "resilience", "retries", "perTryTimeout"),
                            _service_timeout_location(graph, service), f"service {service.key} retries")
    for route in graph.routes.values():
        for rule in route.rules:
            if rule.spec.retries is None:
                continue
            if rule.spec.timeout is not None:
                timeout_at = at(route.origin, "rules", rule.index, "timeout")
            else:
                owner = _settings_owner(graph, route, rule)
                timeout_at = _service_timeout_location(graph, owner) if owner else at(route.origin, "rules", rule.index)
            _budget_overrun(report, rule.spec.retries, rule.timeout,
                            at(route.origin, "rules", rule.index, "retries", "perTryTimeout"), timeout_at,
                            f"rule {rule.index} of Route {route.key}")


def _route_timeouts(graph: MeshGraph, report: Report) -> None:
    at = graph.sources.locate
    for route in graph.routes.values():
        if route.service is None:
            continue
        callers = [graph.services[c] for c in graph.callers.get(route.service, ())]
        for rule in route.rules:
            if rule.spec.timeout is None:
                continue
            limit = timeout_seconds(rule.spec.timeout)  # None: no limit, longer than any caller's
            shorter = [c for c in callers if (own := timeout_seconds(c.resilience.timeout)) is not None
                       and (limit is None or own < limit)]
            if shorter:
                waits = f"up to {rule.spec.timeout}" if limit is not None else "without limit (0s)"
                report.add(
                    codes.ROUTE_TIMEOUT_EXCEEDS_CALLER,
                    f"rule {rule.index} of Route {route.key} waits {waits}, longer than the "
                    f"timeout of its caller{'s' if len(shorter) > 1 else ''} "
                    + ", ".join(f"{c.key} ({c.resilience.timeout})" for c in shorter),
                    at(route.origin, "rules", rule.index, "timeout"),
                    related=tuple(Related(_service_timeout_location(graph, c), f"timeout of {c.key}") for c in shorter),
                )


def _retries_location(graph: MeshGraph, route: RouteNode, rule: ResolvedRule) -> Location:
    if rule.spec.retries is not None:
        return graph.sources.locate(route.origin, "rules", rule.index, "retries")
    owner = _settings_owner(graph, route, rule)
    if owner is None:
        return graph.sources.locate(route.origin, "rules", rule.index)
    return _service_retries_location(graph, owner)


def _settings_owner(graph: MeshGraph, route: RouteNode, rule: ResolvedRule) -> ServiceNode | None:
    """The service whose resilience a rule falls back to: the Route's, else its first destination's."""
    key = route.service or (rule.destinations[0].service if rule.destinations else None)
    return graph.services.get(key) if key is not None else None


def _non_idempotent_retries(graph: MeshGraph, report: Report) -> None:
    at = graph.sources.locate
    for route in graph.routes.values():
        for rule in route.rules:
            retries = rule.retries
            if not isinstance(retries, Retries) or retries.attempts == 0 or retries.allowNonIdempotent:
                continue
            for index, entry in enumerate(rule.spec.match):
                if entry.method in NON_IDEMPOTENT:
                    report.add(
                        codes.RETRY_NON_IDEMPOTENT,
                        f"rule {rule.index} of Route {route.key} retries {entry.method} requests "
                        f"({retries.attempts} attempts), which may apply them twice",
                        at(route.origin, "rules", rule.index, "match", index, "method"),
                        related=(Related(_retries_location(graph, route, rule), "the retries in force"),),
                        hint="set `retries: {attempts: 0}` on the rule, or `allowNonIdempotent: true`",
                    )


def check(graph: MeshGraph, report: Report) -> None:
    _retry_budgets(graph, report)
    _route_timeouts(graph, report)
    _non_idempotent_retries(graph, report)


CHECK = Check(
    name="resilience",
    summary="retries fit their timeout; route timeouts fit their callers; no silent retries of POST",
    reads=frozenset({"Mesh", "Service", "Route"}),
    codes=(codes.RETRY_BUDGET_EXCEEDS_TIMEOUT, codes.ROUTE_TIMEOUT_EXCEEDS_CALLER, codes.RETRY_NON_IDEMPOTENT),
    run=check,
)
