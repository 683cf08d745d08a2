"""mTLS: traffic that cannot meet a STRICT service, and DISABLE services that STRICT ones call."""

from __future__ import annotations

from compiler import codes
from compiler.diagnostics import Related, Report
from compiler.graph import MeshGraph
from policies.check import Check


def check(graph: MeshGraph, report: Report) -> None:
    at = graph.sources.locate
    for service in graph.services.values():
        if service.spec.public and service.mtls == "STRICT":
            report.add(
                codes.STRICT_UNIDENTIFIED_CALLER,
                f"service {service.key} is public, so the router of platform {service.platform.name!r} reaches it "
                "without a mesh identity, but its mTLS mode is STRICT",
                at(service.origin, "public"),
                related=(Related(at(graph.mesh_origin, "mtls"), "STRICT from Mesh.mtls"),)
                if service.spec.mtls is None and "mtls" in graph.mesh.model_fields_set else (),
                hint="set `mtls: PERMISSIVE` on the service, or route public traffic through a Gateway",
            )
        if service.mtls != "DISABLE":
            continue
        strict_callers = [graph.services[c] for c in graph.callers.get(service.key, ())
                          if graph.services[c].mtls == "STRICT"]
        if strict_callers:
            report.add(
                codes.DISABLED_CALLEE_OF_STRICT,
                f"service {service.key} has mTLS DISABLE but is called by STRICT "
                f"service{'s' if len(strict_callers) > 1 else ''} {', '.join(str(c.key) for c in strict_callers)}",
                at(service.origin, "mtls") if service.spec.mtls else at(service.origin, "name"),
                related=tuple(Related(at(c.origin, "calls", c.calls.index(service.key)), f"STRICT caller {c.key}")
                              for c in strict_callers),
                hint="use PERMISSIVE while migrating, or STRICT",
            )


CHECK = Check(
    name="mtls",
    summary="STRICT services are reachable with a mesh identity; STRICT callers can reach DISABLE services",
    reads=frozenset({"Mesh", "Service"}),
    codes=(codes.STRICT_UNIDENTIFIED_CALLER, codes.DISABLED_CALLEE_OF_STRICT),
    run=check,
)
