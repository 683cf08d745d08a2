"""Cloud Foundry: per cloudfoundry platform an application manifest, its Envoy sidecars and
the container-to-container network policies that admit exactly the permitted calls.

Layout (see docs/targets/cloudfoundry.md):
  cloudfoundry/<platform>/manifest.yml              every app of the platform (version 1)
  cloudfoundry/<platform>/network-policies.json     admitted calls, apps by name
  cloudfoundry/<platform>/network-policies.sh       the same as `cf add-network-policy` commands
  cloudfoundry/<platform>/sidecars/<app>.yaml       the app's Envoy bootstrap
"""

from __future__ import annotations

import re
from collections.abc import Container
from dataclasses import dataclass

from compiler import codes
from compiler.addressing import external_route_host, internal_route_host
from compiler.artifact import SOURCE_ANNOTATION, Artifact, platform_workload, service_workload
from compiler.diagnostics import Report
from compiler.graph import CloudFoundryPlatform, Key, MeshGraph, Principal, ServiceNode, Target
from compiler.model import HTTP2_PROTOCOLS, HTTP_PROTOCOLS
from compiler.serialize import to_json, to_yaml
from targets.envoylib import ANY_ADDRESS, serialised_sidecar, sidecar_sources
from targets.kubernetes_meta import parse_source_list, source_list
from targets.templating import render

TARGET = "cloudfoundry"
# The router delivers HTTP routes to this app port unless a route destination says otherwise.
ROUTER_APP_PORT = 8080
# Where the operator puts the shipped bootstrap and an Envoy binary inside the app's files;
# /home/vcap/app is where Cloud Foundry unpacks a buildpack app.
SIDECAR_NAME = "meshc-envoy"
APP_DIR = "/home/vcap/app"
SIDECAR_DIR = "meshc"
SERVICE_ANNOTATION = "meshc.dev/service"
_APP_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _app_name(value: str) -> str:
    """An app name as a bare shell word: the intent language allows only DNS-1123 labels."""
    if not _APP_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a DNS-1123 label and cannot be an app name in a script")
    return value


def _port(value: int) -> int:
    if not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValueError(f"{value!r} is not a port")
    return value


# ---------------------------------------------------------------------------------------------
# Who may call whom, at L4


def _matches(principal: Principal, caller: Key) -> bool:
    if principal.kind == "any":
        return True
    if principal.kind == "namespace":
        return principal.namespace == caller.namespace
    if principal.kind == "service":
        return (principal.namespace, principal.name) == (caller.namespace, caller.name)
    return False  # a gateway principal never names a service


def admitted_ports(graph: MeshGraph, caller: Key, callee: ServiceNode) -> tuple[int, ...]:
    """The callee's ports on which its AccessPolicies admit at least part of caller's traffic.

    Allow rules decide (without any, Mesh.authorization does); deny wins. Methods and paths
    narrow HTTP traffic, which the callee's sidecar enforces; a network policy can only admit
    a whole port, so on an HTTP port such a rule counts as admitting (allow) or as not denying
    the port (deny). On a tcp, tls or mongo port an allow rule that names methods or paths
    admits nobody and a deny rule that names them denies (as the sidecar does, MESH412).
    """
    http_ports = {p.port for p in callee.spec.ports if p.protocol in HTTP_PROTOCOLS}
    all_ports = {p.port for p in callee.spec.ports}
    policies = graph.policies_for(callee.key)
    allow_rules = [rule for policy in policies for rule in policy.allow]
    if allow_rules:
        admitted: set[int] = set()
        for rule in allow_rules:
            if any(_matches(p, caller) for p in rule.principals):
                ports = set(rule.spec.ports) & all_ports if rule.spec.ports else set(all_ports)
                if rule.spec.narrows_requests:
                    ports &= http_ports
                admitted |= ports
    else:
        admitted = set(all_ports) if graph.mesh.authorization == "allow" else set()
    for policy in policies:
        for rule in policy.deny:
            if any(_matches(p, caller) for p in rule.principals):
                ports = set(rule.spec.ports) & all_ports if rule.spec.ports else set(all_ports)
                if rule.spec.narrows_requests:
                    ports -= http_ports
                admitted -= ports
    return tuple(sorted(admitted))


@dataclass(frozen=True, order=True)
class NetworkPolicy:
    source: str  # app names: the policy API wants GUIDs, which exist only once apps are pushed
    destination: str
    port: int


def network_policies(graph: MeshGraph, platform: CloudFoundryPlatform) -> list[NetworkPolicy]:
    """Admitted calls between apps of the platform, sorted."""
    policies = []
    for callee in graph.services.values():
        if callee.platform.name != platform.name:
            continue
        for caller_key in graph.callers.get(callee.key, ()):
            caller = graph.services[caller_key]
            if caller.platform.name != platform.name:
                continue
            for port in admitted_ports(graph, caller_key, callee):
                policies.append(NetworkPolicy(caller.name, callee.name, port))
    return sorted(set(policies))


# ---------------------------------------------------------------------------------------------
# Routes and diagnostics


def _gateway_exposure(graph: MeshGraph, platform: CloudFoundryPlatform, report: Report) -> dict[Key, set[str]]:
    """Services of the platform reached through a Gateway, with the ingress Route files."""
    reached: dict[Key, set[str]] = {}
    for route in graph.routes.values():
        if route.gateway is None:
            continue
        for rule in route.rules:
            targets: list[tuple[tuple[object, ...], Target]] = [
                (("rules", rule.index, "to", i, "service"), d) for i, d in enumerate(rule.destinations)]
            targets.extend((("rules", rule.index, *path), target)
                           for target, (path, _) in zip(rule.mirrors, rule.spec.written_mirrors(), strict=True))
            for path, target in targets:
                service = graph.services.get(target.service)
                if service is None or service.platform.name != platform.name:
                    continue
                reached.setdefault(service.key, set()).add(route.origin.file)
                report.add(
                    codes.CF_GATEWAY_VIA_ROUTER,
                    f"Gateway {route.gateway} reaches Cloud Foundry app {service.name!r} through the router at "
                    f"{external_route_host(service)}, which gets an external route for it",
                    graph.sources.locate(route.origin, *path),
                )
    return reached


def _off_platform_callers(graph: MeshGraph, service: ServiceNode, report: Report) -> bool:
    """Report callers outside the app's platform; True when there is one (it needs the router)."""
    platform = service.platform
    found = False
    for caller_key in graph.callers.get(service.key, ()):
        caller = graph.services[caller_key]
        if caller.platform.name == platform.name:
            continue
        found = True
        report.add(
            codes.CF_CALLER_OFF_PLATFORM,
            f"service {caller.key} on platform {caller.platform.name!r} calls Cloud Foundry app {service.name!r} "
            f"through the router at {external_route_host(service)}: container networking admits no caller from "
            f"outside the foundation, and the caller's mesh identity ends at the router",
            graph.sources.locate(caller.origin, "calls", caller.calls.index(service.key)),
        )
    return found


def _web_port_index(service: ServiceNode) -> int | None:
    """The port external routes carry: the service's first HTTP, HTTP/2 or gRPC port."""
    return next((i for i, p in enumerate(service.spec.ports) if p.protocol in HTTP_PROTOCOLS), None)


def _routes(graph: MeshGraph, service: ServiceNode, external: bool, report: Report) -> list[dict]:
    web = _web_port_index(service)
    http2 = web is not None and service.spec.ports[web].protocol in HTTP2_PROTOCOLS
    protocol = {"protocol": "http2"} if http2 else {}
    routes = []
    if external:
        for index, port in enumerate(service.spec.ports):
            if index != web:
                report.add(
                    codes.CF_PORT_NOT_ROUTABLE,
                    f"port {port.port} ({port.protocol}) of Cloud Foundry app {service.name!r} gets no external "
                    f"route: its external route carries port {service.spec.ports[web].port}" if web is not None else
                    f"port {port.port} ({port.protocol}) of Cloud Foundry app {service.name!r} gets no external "
                    "route: an external route carries HTTP only",
                    graph.sources.locate(service.origin, "ports", index, "protocol"),
                )
        if web is not None:
            routes.append({"route": external_route_host(service), **protocol})
            web_port = service.spec.ports[web].port
            if web_port != ROUTER_APP_PORT:
                report.add(
                    codes.CF_ROUTER_PORT,
                    f"the router delivers {external_route_host(service)} to app port {ROUTER_APP_PORT}, "
                    f"not to the sidecar on port {web_port}",
                    graph.sources.locate(service.origin, "ports", web, "port"),
                    hint=f"give the port number {ROUTER_APP_PORT}, or map the route destination to port {web_port}",
                )
    if graph.callers.get(service.key):
        routes.append({"route": internal_route_host(service), **protocol})
    return routes


def _report_port_clashes(graph: MeshGraph, service: ServiceNode, report: Report) -> None:
    for index, port in enumerate(service.spec.ports):
        if port.app_port == port.port:
            report.add(
                codes.CF_PORT_CLASH,
                f"the sidecar of Cloud Foundry app {service.name!r} listens on port {port.port} in the container, "
                f"where the application would listen too",
                graph.sources.locate(service.origin, "ports", index, "port"),
                hint="set `targetPort` to the port the application listens on",
            )


def sidecar_command() -> str:
    """The sidecar process: Envoy from the app's files, running the shipped bootstrap."""
    base = f"{APP_DIR}/{SIDECAR_DIR}"
    return f"{base}/envoy --config-path {base}/envoy.yaml --disable-hot-restart --log-level info"


def _application(graph: MeshGraph, service: ServiceNode, exposure: dict[Key, set[str]], report: Report) -> dict:
    off_platform = _off_platform_callers(graph, service, report)
    external = service.spec.public or service.key in exposure or off_platform
    app: dict = {
        "name": service.name,
        "metadata": {"annotations": {
            SOURCE_ANNOTATION: source_list(graph.sources.with_overlays({service.origin.file,
                                                                        *exposure.get(service.key, ())})),
            SERVICE_ANNOTATION: str(service.key),
        }},
        "sidecars": [{
            "name": SIDECAR_NAME,
            "process_types": ["web"],
            "command": sidecar_command(),
        }],
    }
    routes = _routes(graph, service, external, report)
    if routes:
        app["routes"] = routes
    else:
        app["no-route"] = True
    if all(p.port != ROUTER_APP_PORT for p in service.spec.ports):
        # Only the sidecar listens on the container's address, on the service ports: the default
        # port health check (app port 8080) would find nothing and restart the app forever.
        app["health-check-type"] = "process"
    return app


def manifest(graph: MeshGraph, platform: CloudFoundryPlatform, services: list[ServiceNode], report: Report) -> dict:
    exposure = _gateway_exposure(graph, platform, report)
    applications = []
    for service in services:
        _report_port_clashes(graph, service, report)
        applications.append(_application(graph, service, exposure, report))
    return {"version": 1, "applications": applications}


# ---------------------------------------------------------------------------------------------
# Artifacts


def _policy_documents(graph: MeshGraph, platform: CloudFoundryPlatform) -> tuple[bytes, bytes]:
    policies = network_policies(graph, platform)
    data = {
        "platform": platform.name,
        "policies": [
            {
                "source": {"app": p.source},
                "destination": {"app": p.destination, "protocol": "tcp", "ports": {"start": p.port, "end": p.port}},
            }
            for p in policies
        ],
    }
    script = render(
        "cf-network-policies.sh.j2",
        platform=_app_name(platform.name),
        policies=[(_app_name(p.source), _app_name(p.destination), _port(p.port)) for p in policies],
    )
    return to_json(data), script


def _policy_sources(graph: MeshGraph, services: list[ServiceNode]) -> tuple[str, ...]:
    files = {graph.mesh_origin.file}
    for service in services:
        files.add(service.origin.file)
        files.update(policy.origin.file for policy in graph.policies_for(service.key))
    return tuple(sorted(files))


def emit(graph: MeshGraph, report: Report, workloads: Container[str] | None = None) -> list[Artifact]:
    artifacts: list[Artifact] = []
    for platform in graph.platforms.values():
        if platform.kind != "cloudfoundry":
            continue
        services = sorted(graph.placed_on(platform.name),
                          key=lambda s: s.name)
        base = f"{TARGET}/{platform.name}"
        shared = platform_workload(platform.name)
        if workloads is None or shared in workloads:
            document = manifest(graph, platform, services, report)
            sources = tuple(sorted({graph.mesh_origin.file,
                                    *document_sources(document)}))
            policies_json, policies_sh = _policy_documents(graph, platform)
            policy_sources = _policy_sources(graph, services)
            artifacts += [
                Artifact(f"{base}/manifest.yml", to_yaml(document), TARGET, shared, sources),
                Artifact(f"{base}/network-policies.json", policies_json, TARGET, shared, policy_sources),
                Artifact(f"{base}/network-policies.sh", policies_sh, TARGET, shared, policy_sources),
            ]
        selected = [s for s in services if workloads is None or service_workload(s.key) in workloads]
        if selected:
            for service in selected:
                # The container's address is known only at start-up: listen on all of the
                # container's own addresses (MESH435 covers the application's port).
                artifacts.append(Artifact(
                    f"{base}/sidecars/{service.name}.yaml",
                    serialised_sidecar(graph, service, report, address=ANY_ADDRESS), TARGET,
                    service_workload(service.key), sidecar_sources(graph, service),
                ))
    return artifacts


def document_sources(document: dict) -> set[str]:
    """Intent files named in the manifest's source annotations."""
    files: set[str] = set()
    for app in document["applications"]:
        files.update(parse_source_list(app["metadata"]["annotations"][SOURCE_ANNOTATION]))
    return files


def patch_problem(kind: str, before: dict, after: dict) -> tuple[codes.Code, str] | None:
    """What a Patch (compiler.patches) may not change in a manifest: which apps there are, in
    order; the sidecars, network policies and routes beside it are written for them."""
    if kind != "CloudFoundryManifest":
        return None

    def apps(manifest: dict) -> list | None:
        listed = manifest.get("applications")
        if not isinstance(listed, list) or not all(isinstance(app, dict) for app in listed):
            return None
        return [app.get("name") for app in listed]

    if apps(after) != apps(before):
        return codes.PATCHED_CF_MANIFEST, f"the applications become {apps(after)}, not {apps(before)}"
    return None

