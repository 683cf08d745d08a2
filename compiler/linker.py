"""Link validated intents into one MeshGraph: resolve every reference, apply defaults."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from compiler import codes
from compiler.diagnostics import Related, Report
from compiler.graph import (
    AccessPolicyNode,
    ExternalNode,
    GatewayNode,
    Key,
    MeshGraph,
    PatchNode,
    Placement,
    PolicyNode,
    Principal,
    ResolvedAccessRule,
    ResolvedRule,
    RouteNode,
    ServiceNode,
    Sidecar,
    Target,
    frozen_mapping,
)
from compiler.loader import Intent, Loaded, Origin
from compiler.model import (
    GatewaySource,
    IpBlocksSource,
    NamespaceSource,
    RemoteIpBlocksSource,
    Resilience,
    UnauthenticatedSource,
)


def parse_ref(ref: str, namespace: str) -> Key:
    """`name` (in the referrer's namespace) or `namespace/name`."""
    if "/" in ref:
        ns, name = ref.split("/", 1)
        return Key(ns, name)
    return Key(namespace, ref)


_RESILIENCE_FIELDS = tuple(Resilience.model_fields)  # pydantic computes model_fields on each access


def overlay_resilience(defaults: Resilience, own: Resilience | None) -> Resilience:
    if own is None:
        return defaults
    return defaults.model_copy(
        update={name: getattr(own, name) for name in _RESILIENCE_FIELDS if getattr(own, name) is not None}
    )


class _Linker:
    def __init__(self, loaded: Loaded, report: Report) -> None:
        self.loaded = loaded
        self.sources = loaded.sources
        self.report = report

    def at(self, origin: Origin, *path: Any, key: bool = False):
        return self.sources.locate(origin, *path, key=key)

    def duplicate(self, what: str, key: object, first: Origin, second: Origin) -> None:
        self.report.add(
            codes.DUPLICATE_OBJECT,
            f"{what} {key} is defined twice",
            self.at(second, "name"),
            related=(Related(self.at(first, "name"), "first defined here"),),
        )

    def link(self) -> MeshGraph | None:
        """The graph, in dependency order: each step links one kind against what came before."""
        mesh_intent = next((i for i in self.loaded.intents if i.kind == "Mesh"), None)
        if mesh_intent is None:
            return None
        self.mesh = mesh_intent.model
        self.platforms = self.link_platforms(mesh_intent)
        by_kind = self.index_intents()
        invalid = self.invalid_keys()
        externals = self.externals = self.link_externals(by_kind["ExternalService"])
        self.callable = set(externals) | set(by_kind["Service"]) | invalid["Service"] | invalid["ExternalService"]
        # every Service the mesh defines, linked or not: a reference to one that failed to link
        # or to validate is not "unknown" (its own diagnostic says what is wrong)
        self.known_services = set(by_kind["Service"]) | invalid["Service"]
        self.known_gateways = set(by_kind["Gateway"]) | invalid["Gateway"]
        self.services = self.link_services(by_kind["Service"])
        self.gateways = self.link_gateways(by_kind["Gateway"])
        routes, service_routes = self.link_routes(by_kind["Route"])
        access_policies = self.link_access_policies(by_kind["AccessPolicy"])
        policies = {k: PolicyNode(k, i.model, i.origin) for k, i in by_kind["Policy"].items()}
        self.patches = self.link_patches(by_kind["Patch"])
        return self.graph(mesh_intent, externals, routes, service_routes, access_policies, policies)

    def invalid_keys(self) -> dict[str, set[Any]]:
        """Identities of the documents that failed validation, by kind."""
        keys: dict[str, set[Any]] = defaultdict(set)
        for document in self.loaded.invalid:
            keys[document.kind].add(Key(document.namespace or self.mesh.defaultNamespace, document.name))
        return keys

    def unknown(self, code: codes.Code, message: str, location: Any) -> None:
        """Report a reference to nothing, unless loading left a file unread: it may be there."""
        if not self.loaded.unread:
            self.report.add(code, message, location)

    def link_platforms(self, mesh_intent: Intent) -> dict[str, Any]:
        """Mesh.platforms by name; a second platform of one name is reported and dropped."""
        platforms: dict[str, Any] = {}
        platform_index: dict[str, int] = {}
        for index, platform in enumerate(self.mesh.platforms):
            if platform.name in platforms:
                self.report.add(
                    codes.DUPLICATE_OBJECT,
                    f"platform {platform.name!r} is defined twice",
                    self.at(mesh_intent.origin, "platforms", index, "name"),
                    related=(Related(self.at(mesh_intent.origin, "platforms", platform_index[platform.name], "name"),
                                     "first defined here"),),
                )
                continue
            platforms[platform.name] = platform
            platform_index[platform.name] = index
        return platforms

    def index_intents(self) -> dict[str, dict[Any, Intent]]:
        """Every intent but the Mesh by kind and identity; duplicates (and a Service and an
        ExternalService of one name) are reported and the later one dropped."""
        by_kind: dict[str, dict[Any, Intent]] = defaultdict(dict)
        callable_names: dict[Key, Intent] = {}
        for intent in self.loaded.intents:
            if intent.kind == "Mesh":
                continue
            model = intent.model
            if intent.kind == "Policy":
                key: Any = model.name
            else:
                key = Key(model.namespace or self.mesh.defaultNamespace, model.name)
            table = by_kind[intent.kind]
            if key in table:
                self.duplicate(intent.kind, key, table[key].origin, intent.origin)
                continue
            if intent.kind in ("Service", "ExternalService"):
                if key in callable_names:
                    other = callable_names[key]
                    self.duplicate(f"{other.kind}/{intent.kind} name", key, other.origin, intent.origin)
                    continue
                callable_names[key] = intent
            table[key] = intent
        return by_kind

    def link_externals(self, intents: dict[Key, Intent]) -> dict[Key, ExternalNode]:
        externals = {k: ExternalNode(k, i.model, i.origin) for k, i in intents.items()}
        self.check_external_hosts(externals)
        return externals

    def link_services(self, intents: dict[Key, Intent]) -> dict[Key, ServiceNode]:
        services = {}
        for key, intent in intents.items():
            node = self.link_service(key, intent)
            if node is not None:
                services[key] = node
        self.check_addresses(services)
        return services

    def link_gateways(self, intents: dict[Key, Intent]) -> dict[Key, GatewayNode]:
        gateways = {}
        for key, intent in intents.items():
            platform = self.platform(intent, "Gateway")
            if platform is None:
                continue
            if platform.kind == "cloudfoundry":
                self.report.add(
                    codes.PLATFORM_MISMATCH,
                    f"Gateway {key} cannot run on cloudfoundry platform {platform.name!r}; "
                    "Cloud Foundry's router is its ingress",
                    self.at(intent.origin, "platform"),
                    hint="put the Gateway on a kubernetes or vm platform, or mark the service `public: true`",
                )
                continue
            if intent.model.deployment is not None and platform.kind != "kubernetes":
                self.kubernetes_only(intent, "deployment", f"Gateway {key} binds to an existing deployment, which only "
                                     f"a kubernetes platform has; on {platform.kind} platform {platform.name!r} "
                                     "meshc runs the gateway itself",
                                     "remove `deployment`, or put the Gateway on a kubernetes platform")
                continue
            if (intent.model.deployment is not None and intent.model.deployment.service is None
                    and getattr(platform, "flavor", None) == "gateway-api"):
                self.kubernetes_only(intent, "deployment", f"Gateway {key} binds to an existing deployment, which "
                                     f"flavor gateway-api of platform {platform.name!r} reaches through the "
                                     "Kubernetes Service in front of it; without one Istio would deploy a "
                                     "gateway of its own",
                                     "name the Service with `deployment.service`, e.g. istio-ingressgateway")
                continue
            gateways[key] = GatewayNode(key, intent.model, intent.origin, platform)
        return gateways

    def link_routes(self, intents: dict[Key, Intent]) -> tuple[dict[Key, RouteNode], dict[Key, list[RouteNode]]]:
        """Every Route that links, and each service's mesh Routes. Several Routes of one service
        (or of one gateway host) are merged in the order of their keys (docs/intents.md);
        conflicting rules among them are the analysis' to report (MESH354)."""
        routes: dict[Key, RouteNode] = {}
        service_routes: dict[Key, list[RouteNode]] = defaultdict(list)
        for key, intent in intents.items():
            node = self.link_route(key, intent)
            if node is None:
                continue
            if node.service is not None:
                service_routes[node.service].append(node)
            routes[key] = node
        return routes, service_routes

    def link_access_policies(self, intents: dict[Key, Intent]) -> dict[Key, AccessPolicyNode]:
        access_policies = {}
        for key, intent in intents.items():
            node = self.link_access_policy(key, intent)
            if node is not None:
                access_policies[key] = node
        return access_policies

    def graph(self, mesh_intent: Intent, externals: dict[Key, ExternalNode], routes: dict[Key, RouteNode],
              service_routes: dict[Key, list[RouteNode]], access_policies: dict[Key, AccessPolicyNode],
              policies: dict[str, PolicyNode]) -> MeshGraph:
        """The immutable graph, with its reverse indexes (gateway routes, service policies, callers)."""
        gateway_routes: dict[Key, list[RouteNode]] = defaultdict(list)
        for route in routes.values():
            if route.gateway is not None:
                gateway_routes[route.gateway].append(route)
        service_policies: dict[Key, list[AccessPolicyNode]] = defaultdict(list)
        for policy in access_policies.values():
            if policy.service is not None:
                service_policies[policy.service].append(policy)
        callers: dict[Key, list[Key]] = defaultdict(list)
        for service in self.services.values():
            for callee in service.calls:
                callers[callee].append(service.key)
        loaded = self.loaded
        return MeshGraph(
            mesh=self.mesh,
            mesh_origin=mesh_intent.origin,
            platforms=frozen_mapping(self.platforms),
            services=frozen_mapping(self.services),
            externals=frozen_mapping(externals),
            routes=frozen_mapping(routes),
            gateways=frozen_mapping(self.gateways),
            access_policies=frozen_mapping(access_policies),
            policies=frozen_mapping(policies),
            service_routes=frozen_mapping({k: tuple(sorted(v, key=lambda r: r.key))
                                           for k, v in service_routes.items()}),
            gateway_routes=frozen_mapping({k: tuple(sorted(v, key=lambda r: r.key))
                                           for k, v in gateway_routes.items()}),
            service_policies=frozen_mapping({k: tuple(sorted(v, key=lambda p: p.key))
                                             for k, v in service_policies.items()}),
            callers=frozen_mapping({k: tuple(sorted(v)) for k, v in callers.items()}),
            sources=self.sources,
            read_revision=lambda: loaded.revision,
            patches=frozen_mapping(self.patches),
        )

    # ----------------------------------------------------------------------------------------

    def platform(self, intent: Intent, kind: str):
        name = intent.model.platform
        platform = self.platforms.get(name)
        if platform is None:
            known = ", ".join(sorted(self.platforms)) or "none"
            self.report.add(
                codes.UNKNOWN_PLATFORM,
                f"{kind} {intent.model.name} runs on platform {name!r}, "
                f"which Mesh.platforms does not define (known: {known})",
                self.at(intent.origin, "platform"),
            )
        return platform

    def kubernetes_only(self, intent: Intent, field: str, message: str, hint: str) -> None:
        """MESH211 at a field only a kubernetes platform (or flavor) can carry."""
        self.report.add(codes.PLATFORM_MISMATCH, message, self.at(intent.origin, field, key=True), hint=hint)

    def link_service(self, key: Key, intent: Intent) -> ServiceNode | None:
        spec = intent.model
        placements = self.link_placements(key, intent)
        ok = placements is not None
        platform = placements[0].platform if placements else None
        kinds = {p.platform.kind for p in placements or ()}
        if placements and kinds != {"kubernetes"} and spec.egressHosts:
            ok = False
            other = next(p.platform for p in placements if p.platform.kind != "kubernetes")
            self.kubernetes_only(intent, "egressHosts", f"service {key} lists egressHosts, Istio Sidecar hosts that "
                                 f"only a kubernetes platform has; on {other.kind} platform {other.name!r} "
                                 "its sidecar reaches exactly its calls",
                                 "declare what it reaches as an ExternalService and call it")
        for placement in placements or ():
            for index, endpoint in enumerate(placement.endpoints):
                if endpoint.version is not None and endpoint.version not in spec.versions:
                    ok = False
                    self.report.add(
                        codes.UNKNOWN_VERSION,
                        f"endpoint version {endpoint.version!r} is not one of service {key}'s versions",
                        self.at(intent.origin, *(() if placement.index is None else ("placements", placement.index)),
                                "endpoints", index, "version"),
                    )
        calls = []
        for index, ref in enumerate(spec.calls):
            callee = parse_ref(ref, key.namespace)
            if callee not in self.callable:
                ok = False
                self.unknown(codes.UNKNOWN_SERVICE,
                             f"service {key} calls {callee}, which is neither a Service nor an ExternalService",
                             self.at(intent.origin, "calls", index))
                continue
            calls.append(callee)
        if not ok or platform is None or placements is None:
            return None
        sidecar = Sidecar.of(spec.sidecar, platform.sidecar)
        return ServiceNode(
            key=key,
            spec=spec.model_copy(update={"endpoints": list(placements[0].endpoints)}) if spec.placements else spec,
            origin=intent.origin,
            platform=platform,
            mtls=spec.mtls or self.mesh.mtls,
            resilience=overlay_resilience(self.mesh.defaults, spec.resilience),
            sidecar=sidecar,
            calls=tuple(calls),
            placements=tuple(placements),
        )

    def link_placements(self, key: Key, intent: Intent) -> list[Placement] | None:
        """The platforms a service runs on, each with its endpoints; None when one is wrong."""
        spec = intent.model
        written: list[tuple[str, list, int, int | None, int | None]]
        if spec.platform is not None:
            written = [(spec.platform, spec.endpoints, 0, None, None)]
        else:
            written = [(p.platform, p.endpoints, p.priority, index, p.weight)
                       for index, p in enumerate(spec.placements)]
        placements: list[Placement] = []
        ok = True
        for name, endpoints, priority, index, weight in written:
            where = ("platform",) if index is None else ("placements", index)
            platform = self.platforms.get(name)
            if platform is None:
                ok = False
                known = ", ".join(sorted(self.platforms)) or "none"
                self.report.add(codes.UNKNOWN_PLATFORM, f"Service {spec.name} runs on platform {name!r}, "
                                f"which Mesh.platforms does not define (known: {known})",
                                self.at(intent.origin, *where, *(("platform",) if index is not None else ())))
                continue
            if index is not None and len(written) > 1 and platform.kind == "cloudfoundry":
                ok = False
                self.report.add(codes.PLACEMENT_UNSUPPORTED,
                                f"service {key} is placed on cloudfoundry platform {name!r} among others; a Cloud "
                                "Foundry app is reached through its own foundation's routes, not as one "
                                "locality of several",
                                self.at(intent.origin, *where, "platform"),
                                hint="place the service on kubernetes and vm platforms only")
                continue
            endpoints_at = ("endpoints",) if index is None else ("placements", index, "endpoints")
            if platform.kind != "vm" and endpoints:
                ok = False
                self.report.add(
                    codes.ENDPOINTS_OFF_VM,
                    f"service {key} runs on {platform.kind} platform {platform.name!r}, which finds its workloads "
                    "itself",
                    self.at(intent.origin, *endpoints_at, key=True),
                    hint="remove `endpoints`, or move the service to a vm platform",
                )
                continue
            if platform.kind == "vm" and not endpoints:
                ok = False
                self.report.add(
                    codes.VM_WITHOUT_ENDPOINTS,
                    f"service {key} runs on vm platform {platform.name!r} but lists no endpoints",
                    self.at(intent.origin, *where, *(("platform",) if index is not None else ())),
                    hint="add `endpoints: [{address: 10.0.0.7}]`",
                )
                continue
            placements.append(Placement(platform, tuple(endpoints), priority, index, weight))
        return placements if ok else None

    def check_external_hosts(self, externals: dict[Key, ExternalNode]) -> None:
        claimed: dict[str, tuple[ExternalNode, int]] = {}
        for node in externals.values():
            for index, host in enumerate(node.spec.hosts):
                first = claimed.setdefault(host, (node, index))
                if first[0] is not node:
                    self.report.add(
                        codes.EXTERNAL_HOST_CLAIMED_TWICE,
                        f"host {host!r} of ExternalService {node.key} is already ExternalService {first[0].key}'s",
                        self.at(node.origin, "hosts", index),
                        related=(Related(self.at(first[0].origin, "hosts", first[1]), "listed here first"),),
                    )

    def check_addresses(self, services: dict[Key, ServiceNode]) -> None:
        seen: dict[tuple[str, str], ServiceNode] = {}
        for node in services.values():
            if node.platform.kind != "cloudfoundry":
                continue
            other = seen.get((node.platform.name, node.name))
            if other is not None:
                self.report.add(
                    codes.ADDRESS_COLLISION,
                    f"services {other.key} and {node.key} would both be app {node.name!r} "
                    f"on cloudfoundry platform {node.platform.name!r}",
                    self.at(node.origin, "name"),
                    related=(Related(self.at(other.origin, "name"), "the other service"),),
                )
            else:
                seen[(node.platform.name, node.name)] = node

    def resolve_target(self, origin: Origin, path: tuple, ref: str | None, default: Key | None,
                       version: str | None, port: int | None, weight: int | None, namespace: str) -> Target | None:
        if ref is not None:
            service_key = parse_ref(ref, namespace)
        elif default is not None:
            service_key = default
        else:
            self.report.add(codes.MISSING_FIELD, "an ingress route destination must name its `service`",
                            self.at(origin, *path))
            return None
        node: ServiceNode | ExternalNode | None = self.services.get(service_key)
        where = (*path, "service") if ref is not None else ("service",)
        routed_external = default is not None and default in self.externals
        if node is None and service_key in self.externals:
            node = self.externals[service_key]
        if node is None:
            if service_key in self.known_services or service_key in self.callable:
                return None  # the service itself failed to link or validate and was reported there
            self.unknown(codes.UNKNOWN_SERVICE, f"route destination {service_key} is not a Service",
                         self.at(origin, *where))
            return None
        if isinstance(node, ExternalNode) != routed_external:
            # a Route on an external host sends to external hosts only, and only it does
            rule = ("a Route on an external host sends to ExternalServices only" if routed_external else
                    "only a Route on an external host (`service:` an ExternalService) sends to one")
            what = "not an ExternalService" if routed_external else "an ExternalService"
            self.report.add(codes.EXTERNAL_ROUTE_DESTINATION, f"route destination {service_key} is {what}; {rule}",
                            self.at(origin, *where))
            return None
        versions = node.spec.versions if isinstance(node, ServiceNode) else {}
        if version is not None and version not in versions:
            known = ", ".join(sorted(versions)) or "none"
            self.report.add(codes.UNKNOWN_VERSION,
                            f"service {service_key} has no version {version!r} (versions: {known})",
                            self.at(origin, *path, "version"))
            return None
        if port is None:
            if len(node.spec.ports) > 1:
                numbers = ", ".join(str(p.port) for p in node.spec.ports)
                self.report.add(codes.UNKNOWN_PORT,
                                f"service {service_key} has several ports ({numbers}): name the destination `port`",
                                self.at(origin, *path))
                return None
            port = node.spec.ports[0].port
        elif node.port(port) is None:
            numbers = ", ".join(str(p.port) for p in node.spec.ports)
            self.report.add(codes.UNKNOWN_PORT, f"service {service_key} has no port {port} (ports: {numbers})",
                            self.at(origin, *path, "port"))
            return None
        return Target(service_key, version, port, 100 if weight is None else weight)

    def link_route(self, key: Key, intent: Intent) -> RouteNode | None:
        spec = intent.model
        service = gateway = None
        if spec.service is not None:
            service = parse_ref(spec.service, key.namespace)
            if service not in self.services and service not in self.externals:
                if service not in self.known_services and service not in self.callable:
                    self.unknown(codes.UNKNOWN_SERVICE, f"Route {key} is for service {service}, which is not a Service",
                                 self.at(intent.origin, "service"))
                return None
        else:
            gateway = parse_ref(spec.gateway, key.namespace)
            if gateway not in self.gateways:
                if gateway not in self.known_gateways:
                    self.unknown(codes.UNKNOWN_GATEWAY,
                                 f"Route {key} attaches to gateway {gateway}, which is not a Gateway",
                                 self.at(intent.origin, "gateway"))
                return None
            if not self.listeners_exist(key, intent, self.gateways[gateway]):
                return None
        rules = []
        ok = True
        for index, rule in enumerate(spec.rules):
            resolved: list[Target | None] = []
            for d_index, destination in enumerate(rule.to):
                target = self.resolve_target(intent.origin, ("rules", index, "to", d_index), destination.service,
                                             service, destination.version, destination.port, destination.weight,
                                             key.namespace)
                ok &= target is not None
                resolved.append(target)
            mirrors: list[Target] = []
            for path, m in rule.written_mirrors():
                first = resolved[0] if resolved else None
                mirror = self.resolve_target(intent.origin, ("rules", index, *path), m.service,
                                             service or (first.service if first else None),
                                             m.version, m.port, None, key.namespace)
                ok &= mirror is not None
                if mirror is not None:
                    mirrors.append(mirror)
            if not ok:
                continue
            destinations = [target for target in resolved if target is not None]  # every one: ok
            owner = service or (destinations[0].service if destinations else None)
            resilience = self.services[owner].resilience if owner in self.services else None
            rules.append(ResolvedRule(
                index=index,
                spec=rule,
                destinations=tuple(destinations),
                mirrors=tuple(mirrors),
                timeout=rule.timeout or (resilience.timeout if resilience else None),
                retries=rule.retries or (resilience.retries if resilience else None),
            ))
        if not ok:
            return None
        return RouteNode(key, spec, intent.origin, service, gateway, tuple(rules))

    def listeners_exist(self, key: Key, intent: Intent, gateway: GatewayNode) -> bool:
        """Whether every listener name and port an ingress Route attaches to is its gateway's."""
        names = [listener.name for listener in gateway.listeners]
        ports = sorted({listener.port for listener in gateway.listeners})
        ok = True
        for field, values, known in (("listeners", intent.model.listeners, names),
                                     ("ports", intent.model.ports, ports)):
            for index, value in enumerate(values):
                if value not in known:
                    ok = False
                    self.report.add(codes.UNKNOWN_LISTENER,
                                    f"Route {key} attaches to {field[:-1]} {value!r}, which gateway {gateway.key} "
                                    f"does not have ({field}: {', '.join(map(str, known))})",
                                    self.at(intent.origin, field, index))
        return ok

    def link_access_policy(self, key: Key, intent: Intent) -> AccessPolicyNode | None:
        spec = intent.model
        ok = True
        service = gateway = None
        if spec.service is not None:
            service = parse_ref(spec.service, key.namespace)
            if service not in self.services:
                if service not in self.known_services:
                    self.unknown(codes.UNKNOWN_SERVICE, f"AccessPolicy {key} is for {service}, which is not a Service",
                                 self.at(intent.origin, "service"))
                ok = False
        else:
            gateway = parse_ref(spec.gateway, key.namespace)
            if gateway not in self.gateways:
                if gateway not in self.known_gateways:
                    self.unknown(codes.UNKNOWN_GATEWAY, f"AccessPolicy {key} is for gateway {gateway}, "
                                 "which is not a Gateway", self.at(intent.origin, "gateway"))
                ok = False
        sections = {}
        for section in ("allow", "deny"):
            resolved = []
            for index, rule in enumerate(getattr(spec, section)):
                # no `from`: any caller, with a mesh identity or without
                principals = [] if rule.from_ is not None else [Principal("any"), Principal("unauthenticated")]
                for s_index, source in enumerate(rule.from_ or ()):
                    if not self.source_in_place(key, intent, source, gateway is not None, (section, index, s_index)):
                        ok = False
                    if isinstance(source, (IpBlocksSource, RemoteIpBlocksSource)):
                        kind = "ipBlocks" if isinstance(source, IpBlocksSource) else "remoteIpBlocks"
                        principals.append(Principal(kind, blocks=tuple(getattr(source, kind))))
                    elif source == "*":
                        principals.append(Principal("any"))
                    elif isinstance(source, UnauthenticatedSource):
                        principals.append(Principal("unauthenticated"))
                    elif isinstance(source, NamespaceSource):
                        principals.append(Principal("namespace", source.namespace))
                    elif isinstance(source, GatewaySource):
                        gw = parse_ref(source.gateway, key.namespace)
                        principals.append(Principal("gateway", gw.namespace, gw.name))
                    else:
                        caller = parse_ref(source, key.namespace)
                        if caller not in self.known_services:
                            ok = False
                            self.unknown(codes.UNKNOWN_SERVICE,
                                         f"AccessPolicy {key} admits {caller}, which is not a Service",
                                         self.at(intent.origin, section, index, "from", s_index))
                        principals.append(Principal("service", caller.namespace, caller.name))
                resolved.append(ResolvedAccessRule(index, section, rule, tuple(principals)))
            sections[section] = tuple(resolved)
        if not ok:
            return None
        return AccessPolicyNode(key, spec, intent.origin, service, sections["allow"], sections["deny"], gateway)

    def source_in_place(self, key: Key, intent: Intent, source: object, at_gateway: bool,
                        where: tuple[str, int, int]) -> bool:
        """Addresses name a gateway's clients, mesh identities a service's callers (MESH218)."""
        addresses = isinstance(source, (IpBlocksSource, RemoteIpBlocksSource))
        identity = not addresses and not isinstance(source, UnauthenticatedSource)
        if at_gateway and identity:
            problem = "names a mesh identity, which a gateway's outside clients do not carry"
        elif not at_gateway and addresses:
            problem = "names client addresses, which only a gateway's AccessPolicy can check"
        else:
            return True
        section, index, s_index = where
        self.report.add(codes.ACCESS_SOURCE_OUT_OF_PLACE, f"AccessPolicy {key} {section} rule {index} {problem}",
                        self.at(intent.origin, section, index, "from", s_index),
                        hint="use `gateway:` for ipBlocks and remoteIpBlocks, `service:` for mesh identities")
        return False


    def link_patches(self, intents: dict[Key, Intent]) -> dict[Key, PatchNode]:
        """Patches whose workload exists (MESH235 otherwise); what they patch is found when
        the targets have emitted (compiler.patches)."""
        from compiler.artifact import gateway_workload, platform_workload, service_workload

        patches: dict[Key, PatchNode] = {}
        for key, intent in intents.items():
            spec = intent.model
            if spec.platform is not None:
                if spec.platform not in self.platforms:
                    self.report.add(codes.PATCH_UNKNOWN_WORKLOAD,
                                    f"Patch {key} patches platform {spec.platform!r}, which Mesh.platforms does not "
                                    f"define (known: {', '.join(sorted(self.platforms)) or 'none'})",
                                    self.at(intent.origin, "platform"))
                    continue
                workload = platform_workload(spec.platform)
            else:
                field = "service" if spec.service is not None else "gateway"
                ref = parse_ref(getattr(spec, field), key.namespace)
                known, linked = ((self.known_services, self.services) if field == "service"
                                 else (self.known_gateways, self.gateways))
                if ref not in linked:
                    if ref not in known:
                        self.unknown(codes.PATCH_UNKNOWN_WORKLOAD,
                                     f"Patch {key} patches {field} {ref}, which is not a "
                                     f"{'Service' if field == 'service' else 'Gateway'} of the mesh",
                                     self.at(intent.origin, field))
                    continue
                workload = (service_workload if field == "service" else gateway_workload)(ref)
            patches[key] = PatchNode(key, spec, intent.origin, workload)
        return patches


def link(loaded: Loaded, report: Report) -> MeshGraph | None:
    """The linked graph, or None when there is no Mesh to link against."""
    return _Linker(loaded, report).link()
