"""Authorisation against intent: declared traffic the callee denies, stale and dangling grants.

A caller is admitted when some allow rule names it (as a service, by its namespace, as a
gateway, or `*`) on at least one port the callee has, and no deny rule without restrictions
names it. Rules restricted to some methods, paths or ports admit (or deny) partially, which is
deliberate and not reported. A callee without allow rules admits everybody or nobody, as
Mesh.authorization says.
"""

from __future__ import annotations

from compiler import codes
from compiler.diagnostics import Related, Report
from compiler.graph import Key, MeshGraph, Principal, ResolvedAccessRule, ServiceNode
from policies.check import Check


def _names(graph: MeshGraph, principal: Principal, caller: Key, is_gateway: bool) -> bool:
    if principal.kind == "any":
        return True
    if principal.kind == "unauthenticated":
        return False  # a declared caller runs with a mesh identity
    if principal.kind == "namespace":
        # every identity in the namespace: a gateway's deployment may run in another one
        return principal.namespace == graph.identity(caller).namespace
    wanted = "gateway" if is_gateway else "service"
    return principal.kind == wanted and (principal.namespace, principal.name) == tuple(caller)


def _rule_names(graph: MeshGraph, rule: ResolvedAccessRule, caller: Key, is_gateway: bool) -> bool:
    return any(_names(graph, p, caller, is_gateway) for p in rule.principals)


def denial(graph: MeshGraph, callee: ServiceNode, caller: Key,
           is_gateway: bool = False) -> tuple[str, tuple[Related, ...]] | None:
    """Why `callee` admits `caller` on no port and no method, or None when it admits it."""
    at = graph.sources.locate
    policies = graph.policies_for(callee.key)
    ports = {p.port for p in callee.spec.ports}
    for policy in policies:
        for rule in policy.deny:
            every_port = not rule.spec.ports or ports <= set(rule.spec.ports)
            whole = not rule.spec.narrows_requests and every_port
            if whole and _rule_names(graph, rule, caller, is_gateway):
                return (f"deny rule {rule.index} of AccessPolicy {policy.key} denies it",
                        (Related(at(policy.origin, "deny", rule.index), "the deny rule"),))
    allow = [(policy, rule) for policy in policies for rule in policy.allow]
    if not allow:
        if graph.mesh.authorization == "allow":
            return None
        if policies:
            return ("its AccessPolicies have no allow rule and Mesh.authorization is deny",
                    tuple(Related(at(p.origin, "name"), "AccessPolicy without allow rules") for p in policies))
        return ("it has no AccessPolicy and Mesh.authorization is deny",
                (Related(at(graph.mesh_origin, "authorization"), "Mesh.authorization"),))
    naming = [(policy, rule) for policy, rule in allow if _rule_names(graph, rule, caller, is_gateway)]
    if any(not rule.spec.ports or ports & set(rule.spec.ports) for _, rule in naming):
        return None
    if naming:
        return ("the allow rules that name it are restricted to ports it does not have",
                tuple(Related(at(p.origin, "allow", r.index, "ports"), "allowed ports") for p, r in naming))
    return ("no allow rule names it",
            tuple(Related(at(p.origin, "name"), "AccessPolicy of the callee") for p in policies))


def _declared_calls(graph: MeshGraph, report: Report) -> None:
    at = graph.sources.locate
    for caller in graph.services.values():
        for index, callee_key in enumerate(caller.calls):
            callee = graph.services.get(callee_key)
            if callee is None:
                continue  # an ExternalService: outside the mesh's authorisation
            why = denial(graph, callee, caller.key)
            if why is not None:
                report.add(codes.CALL_DENIED,
                           f"{caller.key} calls {callee_key}, but {callee_key} denies it: {why[0]}",
                           at(caller.origin, "calls", index), related=why[1],
                           hint=f"admit {caller.key} in an AccessPolicy for {callee_key}, or remove the call")


def _ingress_routes(graph: MeshGraph, report: Report) -> None:
    at = graph.sources.locate
    for route in graph.routes.values():
        if route.gateway is None:
            continue
        for rule in route.rules:
            for index, target in enumerate(rule.destinations):
                callee = graph.services.get(target.service)
                why = denial(graph, callee, route.gateway, is_gateway=True) if callee else None
                if why is not None:
                    report.add(codes.CALL_DENIED,
                               f"gateway {route.gateway} routes to {target.service}, "
                               f"but {target.service} denies it: {why[0]}",
                               at(route.origin, "rules", rule.index, "to", index), related=why[1],
                               hint=f"admit {{gateway: {route.gateway}}} in an AccessPolicy for {target.service}")


def _grants(graph: MeshGraph, report: Report) -> None:
    at = graph.sources.locate
    namespaces = ({key.namespace for key in graph.services} | {key.namespace for key in graph.gateways}
                  | {gateway.identity.namespace for gateway in graph.gateways.values()})
    for policy in graph.access_policies.values():
        for rule in (*policy.allow, *policy.deny):
            for index, principal in enumerate(rule.principals):
                if principal.kind == "service" and rule.section == "allow":
                    caller = graph.services.get(principal.key())
                    if caller is not None and policy.service not in caller.calls:
                        report.add(codes.STALE_GRANT,
                                   f"AccessPolicy {policy.key} admits {caller.key}, "
                                   f"which does not call {policy.service}",
                                   at(policy.origin, rule.section, rule.index, "from", index),
                                   related=(Related(at(caller.origin, "name"), "the service, without the call"),))
                elif principal.kind == "gateway" and principal.key() not in graph.gateways:
                    report.add(codes.UNKNOWN_PRINCIPAL,
                               f"AccessPolicy {policy.key} names gateway {principal.namespace}/{principal.name}, "
                               "which is not a Gateway", at(policy.origin, rule.section, rule.index, "from", index))
                elif (principal.kind == "namespace" and rule.section == "allow"
                      and principal.namespace not in namespaces):
                    report.add(codes.UNKNOWN_PRINCIPAL,
                               f"AccessPolicy {policy.key} admits namespace {principal.namespace!r}, "
                               "where no Service or Gateway lives",
                               at(policy.origin, rule.section, rule.index, "from", index))


def check(graph: MeshGraph, report: Report) -> None:
    _declared_calls(graph, report)
    _ingress_routes(graph, report)
    _grants(graph, report)


CHECK = Check(
    name="authorization",
    summary="declared traffic is admitted; grants are used; `from` entries exist",
    reads=frozenset({"Mesh", "Service", "Route", "Gateway", "AccessPolicy"}),
    codes=(codes.CALL_DENIED, codes.STALE_GRANT, codes.UNKNOWN_PRINCIPAL),
    run=check,
)
