"""What one kubernetes platform gets: the objects both flavours share (Services, security,
traffic policy, scoping, the kustomization) and the istio flavour's routing.

targets.kubernetes_gateway_api subclasses PlatformEmitter for flavor gateway-api; the layout
and the workload of each file are in targets.kubernetes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container
from dataclasses import dataclass
from functools import cached_property, partial

from compiler import codes
from compiler.addressing import CLOUD_FOUNDRY_ROUTER_PORT, istio_host, version_service_name
from compiler.artifact import SOURCE_ANNOTATION, Artifact, gateway_workload, platform_workload, service_workload
from compiler.diagnostics import Related, Report
from compiler.evaluate import failover_tiers, placement_weight, token_locations, weighted
from compiler.graph import (
    AccessPolicyNode,
    ExternalNode,
    GatewayNode,
    Key,
    MeshGraph,
    ResolvedAccessRule,
    ResolvedRule,
    RouteNode,
    ServiceNode,
    Target,
)
from compiler.hostnames import covers, overlap, specificity
from compiler.model import (
    HTTP_PROTOCOLS,
    LOAD_BALANCER_POLICIES,
    ExternalPort,
    ExternalService,
    JwtProvider,
    KubernetesPlatform,
    Listener,
    RateLimit,
)
from compiler.serialize import to_yaml, to_yaml_documents
from targets.envoylib import HCM_FILTER, ROUTER_FILTER, local_rate_limit
from targets.istio_workloads import workload_documents
from targets.kubernetes_istio import (
    BACKOFF_CAP,
    backoff_capped_otherwise,
    default_virtual_service,
    https_redirect_rule,
    https_redirects,
    istio_gateway,
    virtual_service,
)
from targets.kubernetes_meta import APP_LABEL, document, gateway_selector, metadata, parse_source_list, source_list
from targets.kubernetes_support import (
    GATEWAY_API,
    ISTIO_NETWORKING,
    ISTIO_NETWORKING_ALPHA,
    ISTIO_SECURITY,
    ISTIO_TELEMETRY,
    RouteGroup,
    gateway_groups,
    proto_duration,
    protocol_name,
)

TARGET = "kubernetes"
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
# Apply order within a file: identities and addresses first, then the DestinationRule whose
# subsets routes use, then routes, then security and scoping; name breaks ties.
KIND_ORDER = [
    ("v1", "Namespace"),
    ("v1", "ServiceAccount"),
    ("v1", "Service"),
    (ISTIO_NETWORKING, "ServiceEntry"),
    (ISTIO_NETWORKING, "WorkloadGroup"),
    (ISTIO_NETWORKING, "WorkloadEntry"),
    (ISTIO_NETWORKING, "DestinationRule"),
    (ISTIO_NETWORKING, "Gateway"),
    (GATEWAY_API, "Gateway"),
    (ISTIO_NETWORKING, "VirtualService"),
    (GATEWAY_API, "HTTPRoute"),
    (GATEWAY_API, "GRPCRoute"),
    (GATEWAY_API, "TLSRoute"),
    (GATEWAY_API, "TCPRoute"),
    (ISTIO_SECURITY, "PeerAuthentication"),
    (ISTIO_SECURITY, "RequestAuthentication"),
    (ISTIO_SECURITY, "AuthorizationPolicy"),
    (ISTIO_NETWORKING, "Sidecar"),
    (ISTIO_TELEMETRY, "Telemetry"),
    (ISTIO_NETWORKING_ALPHA, "EnvoyFilter"),
]
_KIND_RANK = {kind: rank for rank, kind in enumerate(KIND_ORDER)}
REMOTE_KINDS = frozenset({"cloudfoundry", "vm"})
RATE_LIMIT_STAT_PREFIX = "http_local_rate_limiter"
# Istio's name for the one selector-less PeerAuthentication or Telemetry of a namespace, and
# for the mesh-wide ones in the root namespace (istio.io: PeerAuthentication, Telemetry)
NAMESPACE_DEFAULT = "default"
MESH_DEFAULT = "mesh-default"
# Istio installation values (MeshConfig) the platform's objects need: not a Kubernetes object,
# so not in the kustomization
MESH_CONFIG_FILE = "istio-mesh-config.yaml"
# Istio's multicluster objects (istio.io, Install multi-primary on different networks)
NETWORK_LABEL = "topology.istio.io/network"
EAST_WEST_GATEWAY = "cross-network-gateway"  # istio/istio samples/multicluster/expose-services.yaml
EAST_WEST_SELECTOR = {"istio": "eastwestgateway"}


def tracing_provider(provider: str) -> str:
    """The MeshConfig extension provider meshc's Telemetry names for Mesh.tracing.provider."""
    return f"meshc-{provider}"


def ordered(documents: list[dict]) -> list[dict]:
    return sorted(documents, key=lambda d: (_KIND_RANK[(d["apiVersion"], d["kind"])],
                                            d["metadata"].get("namespace", ""), d["metadata"]["name"]))


@dataclass(frozen=True)
class Hosts:
    """How workloads on one kubernetes platform address every service of the mesh."""

    graph: MeshGraph
    platform: KubernetesPlatform

    def __call__(self, key: Key, version: str | None = None) -> str:
        external = self.graph.externals.get(key)
        if external is not None:  # a destination of a Route on an external host: its first name
            return external_host(external)
        return istio_host(self.graph.services[key], self.platform, version)

    def has_subsets(self, key: Key) -> bool:
        # A Cloud Foundry app is one app whatever its version: no subset selects part of it; an
        # ExternalService has no versions.
        service = self.graph.services.get(key)
        return service is not None and service.platform.kind != "cloudfoundry"


class PlatformEmitter:
    def __init__(self, graph: MeshGraph, report: Report, platform: KubernetesPlatform) -> None:
        self.graph = graph
        self.report = report
        self.platform = platform
        self.hosts = Hosts(graph, platform)
        self.root = f"kubernetes/{platform.name}"

    # -- what this platform holds ------------------------------------------------------------

    def plan(self) -> list[tuple[str, str, Callable[[], list[dict]]]]:
        """(path, workload, build) of every file, cheap: nothing is built here."""
        graph, name = self.graph, self.platform.name
        local = graph.placed_on(name)
        gateways = [g for g in graph.gateways.values() if g.platform.name == name]
        remote: set[Key] = set()
        externals: set[Key] = set()
        for service in local:
            for callee in service.calls:
                if callee in graph.externals:
                    externals.update(reached_externals(graph, callee))
                elif self.remote(graph.services[callee]):
                    remote.add(callee)
        for gateway in gateways:
            for route in graph.gateway_routes.get(gateway.key, ()):
                for rule in route.rules:
                    remote.update(t.service for t in rule.destinations if self.remote(graph.services[t.service]))
        plan: list[tuple[str, str, Callable[[], list[dict]]]] = []
        for service in local:
            if self.nameable(service):
                plan.append((f"{self.root}/{service.namespace}/{service.name}.yaml",
                             service_workload(service.key), partial(self.service_documents, service)))
        for key in sorted(remote):
            service = graph.services[key]
            if self.nameable(service):
                plan.append((f"{self.root}/{key.namespace}/remote/{key.name}.yaml",
                             service_workload(key), partial(self.remote_documents, service)))
        for key in sorted(externals):
            plan.append((f"{self.root}/{key.namespace}/external/{key.name}.yaml",
                         platform_workload(name), partial(self.external_documents, graph.externals[key])))
        for gateway in gateways:
            if self.nameable(gateway):
                plan.append((f"{self.root}/{gateway.key.namespace}/gateways/{gateway.key.name}.yaml",
                             gateway_workload(gateway.key), partial(self.gateway_documents, gateway)))
        if self.platform.network is not None or self.platform.eastWestGateway is not None:
            plan.append((f"{self.root}/multicluster.yaml", platform_workload(name), self.multicluster_documents))
        owns = self.platform.owns
        if owns.meshWide:
            plan.append((f"{self.root}/mesh-wide.yaml", platform_workload(name), self.mesh_wide_documents))
        for namespace in owns.namespaces:
            plan.append((f"{self.root}/{namespace}/namespace/defaults.yaml", platform_workload(name),
                         partial(self.namespace_documents, namespace)))
        return plan

    def remote(self, service: ServiceNode) -> bool:
        """Whether callers here need objects for a service that does not run here: one on Cloud
        Foundry or VMs, or one on several platforms none of which is this one."""
        if service.placed:
            return service.placement(self.platform.name) is None
        return service.platform.kind in REMOTE_KINDS

    def nameable(self, node: ServiceNode | GatewayNode) -> bool:
        if DNS1035_LABEL.fullmatch(node.key.name):
            return True
        self.report.add(
            codes.K8S_NAME_NOT_DNS1035,
            f"{node.key} cannot be a Kubernetes Service name (it must start with a letter); "
            f"platform {self.platform.name!r} gets no objects for it",
            self.graph.sources.locate(node.origin, "name"),
        )
        return False

    # -- documents ---------------------------------------------------------------------------

    def protocol_of(self, target: Target) -> str:
        callee = self.graph.services.get(target.service) or self.graph.externals[target.service]
        return callee.protocol(target.port)

    # -- what the platform owns --------------------------------------------------------------

    def owns(self, kind: str) -> bool:
        return kind in self.platform.owns.kinds

    @cached_property
    def account_writers(self) -> dict[Key, Key]:
        """Service account -> the first service on the platform that runs as it, which writes it."""
        writers: dict[Key, Key] = {}
        for service in self.graph.placed_on(self.platform.name):
            writers.setdefault(service.identity, service.key)
        return writers

    def service_account(self, service: ServiceNode) -> list[dict]:
        if not self.owns("ServiceAccount") or self.account_writers.get(service.identity) != service.key:
            return []
        sources = (service.origin.file, self.graph.mesh_origin.file)
        return [document("v1", "ServiceAccount", metadata(service.identity.name, service.namespace, sources))]

    def report_unowned_account(self, key: Key, where) -> None:
        """MESH429 for a principal whose service account meshc does not write and no intent names."""
        node = self.graph.services.get(key) or self.graph.gateways.get(key)
        platform = node.platform if node is not None else None
        if node is None or not isinstance(platform, KubernetesPlatform) or "ServiceAccount" in platform.owns.kinds:
            return
        if isinstance(node, ServiceNode):
            if node.spec.serviceAccount is not None:
                return
            what, hint = f"service {key}", "name the workload's account with `serviceAccount:`"
        else:
            if node.bound or platform.flavor == "gateway-api":  # Istio's own deployment has its account
                return
            what, hint = f"Gateway {key}", "bind the Gateway to its deployment with `deployment:`"
        self.report.add(codes.K8S_UNOWNED_REFERENCE,
                        f"an AuthorizationPolicy names service account {node.identity} of {what}, which platform "
                        f"{platform.name!r} does not write (owns.kinds: {', '.join(platform.owns.kinds) or 'none'}) "
                        "and no intent names",
                        where, hint=hint)

    # -- documents ---------------------------------------------------------------------------

    def service_documents(self, service: ServiceNode) -> list[dict]:
        docs = [*self.service_account(service)]
        if self.owns("Service"):
            docs.append(self.kubernetes_service(service.name, service.namespace, {APP_LABEL: service.name}, service,
                                                (service.origin.file,)))
        docs += [
            self.destination_rule(service),
            *self.routing(service),
            self.peer_authentication(service),
            *self.request_authentication(service.spec.jwt, service.name, service.namespace,
                                         {"selector": {"matchLabels": {APP_LABEL: service.name}}},
                                         (service.origin.file,)),
            *self.authorization_policies(service),
            self.sidecar(service),
            *self.workload_telemetry(service.namespace, service.name,
                                     {"selector": {"matchLabels": {APP_LABEL: service.name}}},
                                     (service.origin.file,)),
        ]
        if service.spec.rateLimit is not None:
            docs.append(self.rate_limit_filter(service, service.spec.rateLimit))
        for placement in service.placements:
            if placement.platform.kind == "vm":  # endpoints Istio cannot discover: WorkloadEntries
                docs += workload_documents(self.graph, service.on(placement.platform.name))
        return docs + self.version_services(service)

    def version_services(self, service: ServiceNode) -> list[dict]:
        """A Service per version, so that proxies outside Istio (static Envoy sidecars and
        gateways, the gateway-api flavour's routes) can address one version by name."""
        if not self.owns("Service"):
            return []
        docs = []
        for version, spec in service.spec.versions.items():
            name = version_service_name(service.name, version)
            if not DNS1035_LABEL.fullmatch(name) or len(name) > 63:
                self.report.add(codes.K8S_NAME_NOT_DNS1035,
                                f"version Service {name!r} of {service.key} is not a DNS-1035 label",
                                self.graph.sources.locate(service.origin, "versions", version, key=True))
                continue
            docs.append(self.kubernetes_service(name, service.namespace, {APP_LABEL: service.name, **spec.labels},
                                                service, (service.origin.file,)))
        return docs

    def kubernetes_service(self, name: str, namespace: str, selector: dict[str, str], service: ServiceNode,
                           sources: tuple[str, ...]) -> dict:
        ports = [
            {"name": port.name, "port": port.port, "targetPort": port.app_port,
             # meshc's protocol names are Istio's appProtocol values (Istio: protocol selection)
             "protocol": "TCP", "appProtocol": port.protocol}
            for port in service.spec.ports
        ]
        return document("v1", "Service", metadata(name, namespace, sources, {APP_LABEL: service.name}),
                        spec={"selector": selector, "ports": ports})

    def client_tls(self, service: ServiceNode) -> dict | None:
        """What callers' sidecars send: Istio mTLS to a STRICT service, plain text to a DISABLE
        one; none under PERMISSIVE, where Istio's auto mTLS decides per endpoint (mTLS to a
        workload with a sidecar, plain text to one without, the case PERMISSIVE is for)."""
        if service.mtls == "PERMISSIVE":
            return None
        return {"mode": "DISABLE" if service.mtls == "DISABLE" else "ISTIO_MUTUAL"}

    def traffic_policy(self, service: ServiceNode) -> dict:
        policy: dict = {}
        tls = self.client_tls(service)
        if tls is not None:
            policy["tls"] = tls
        resilience = service.resilience
        breaker = resilience.circuitBreaker
        if breaker is not None:
            pool: dict = {}
            if breaker.maxConnections is not None:
                pool["tcp"] = {"maxConnections": breaker.maxConnections}
            http = {
                field: value
                for field, value in (("http1MaxPendingRequests", breaker.maxPendingRequests),
                                     ("http2MaxRequests", breaker.maxRequests),
                                     ("maxRetries", breaker.maxRetries))
                if value is not None
            }
            if http:
                pool["http"] = http
            policy["connectionPool"] = pool
        connections = resilience.connections
        if connections is not None:
            # connectionPool.http: maxRequestsPerConnection, idleTimeout ("the idle timeout for
            # upstream connection pool connections"), h2UpgradePolicy UPGRADE | DO_NOT_UPGRADE
            written = {
                "maxRequestsPerConnection": connections.maxRequestsPerConnection,
                "idleTimeout": proto_duration(connections.idleTimeout) if connections.idleTimeout else None,
                "h2UpgradePolicy": (None if connections.http2Upgrade is None
                                    else "UPGRADE" if connections.http2Upgrade else "DO_NOT_UPGRADE"),
            }
            http_pool = {k: v for k, v in written.items() if v is not None}
            if http_pool:
                pool = policy.setdefault("connectionPool", {})
                pool["http"] = {**pool.get("http", {}), **http_pool}
        outlier = resilience.outlierDetection
        if outlier is not None:
            policy["outlierDetection"] = {
                "consecutive5xxErrors": outlier.consecutive5xx,
                "interval": proto_duration(outlier.interval),
                "baseEjectionTime": proto_duration(outlier.baseEjectionTime),
                "maxEjectionPercent": outlier.maxEjectionPercent,
            }
        balancer = resilience.loadBalancer
        if isinstance(balancer, str):
            policy["loadBalancer"] = {"simple": LOAD_BALANCER_POLICIES[balancer]}
        elif balancer is not None:
            policy["loadBalancer"] = {"consistentHash": {"httpHeaderName": balancer.ringHash.header.lower()}}
        if service.placed:
            # Istio fails over by locality only with outlier detection (MESH366 without it)
            setting: dict = {"enabled": True}
            distribute = self.locality_distribution(service)
            if distribute is not None:
                setting["distribute"] = distribute
            policy.setdefault("loadBalancer", {})["localityLbSetting"] = setting
            self.report_priorities(service)
        return policy

    def locality_distribution(self, service: ServiceNode) -> list[dict] | None:
        """The placements' weights as this cluster's proxies use them (docs/intents.md,
        Placements and failover): Istio's `distribute` from the cluster's locality to the
        localities of its one tier, in whole percentages; None where weights change nothing for
        these proxies, or where Istio cannot carry them (MESH475)."""
        if not weighted(service):
            return None
        tiers = failover_tiers(self.platform, service)
        shared = next((tier for tier in tiers if len(tier) > 1), None)
        if shared is None:
            return None  # every tier has one placement: nothing to weigh
        at = self.graph.sources.locate
        weight_at = next((at(service.origin, *r.placement.path("weight")) for r in shared
                          if r.placement.weight is not None),
                         at(service.origin, "placements", key=True))
        labels = [r.placement.platform.locality.label() if r.placement.platform.locality else None for r in shared]
        problem = None
        if len(tiers) > 1:
            problem = (f"its proxies there see the placements in {len(tiers)} tiers, and Istio's `distribute` "
                       "replaces the locality failover between them")
        elif None in labels:
            nameless = next(r.placement.platform.name for r, label in zip(shared, labels, strict=True) if label is None)
            problem = f"platform {nameless!r} has no locality, by which `distribute` names a placement"
        else:
            named = [label for label in labels if label is not None]
            nested = next(((a, b) for a in named for b in named if a != b and locality_contains(a, b)), None)
            if nested is not None:
                problem = f"locality {nested[0]!r} contains {nested[1]!r}, so `distribute` cannot tell them apart"
        if problem is not None:
            self.report.add(
                codes.K8S_PLACEMENT_WEIGHT,
                f"the placement weights of {service.key} are not written on platform {self.platform.name!r}: "
                f"{problem}; its proxies there share each tier by its endpoints",
                weight_at,
                hint="put the weighted placements in one tier for the cluster's locality, give their platforms "
                     "distinct localities, or drop the weights")
            return None
        weights = [placement_weight(service, r.placement) or 1 for r in shared]
        percentages = whole_percentages(weights)
        if any(share * sum(weights) != weight * 100 for share, weight in zip(percentages, weights, strict=True)):
            self.report.add(
                codes.K8S_PLACEMENT_WEIGHT_ROUNDED,
                f"the placement weights of {service.key} ({', '.join(map(str, weights))}) are written on platform "
                f"{self.platform.name!r} as the whole percentages {', '.join(map(str, percentages))}, which is "
                "all Istio's `distribute` takes",
                weight_at,
                hint="choose weights whose shares of 100 are whole numbers")
        locality = self.platform.locality
        return [{"from": locality.label() if locality is not None else "*",
                 "to": dict(zip(labels, percentages, strict=True))}]

    def report_priorities(self, service: ServiceNode) -> None:
        """MESH478 where a placement's priority would order the placements otherwise than
        Istio's locality order does: Istio has no field for it."""
        for placement in service.placements:
            if placement.priority:
                self.report.add(
                    codes.K8S_PLACEMENT_PRIORITY,
                    f"placement of {service.key} on platform {placement.platform.name!r} has priority "
                    f"{placement.priority}, which Istio on platform {self.platform.name!r} cannot carry: it "
                    "orders the placements by locality only",
                    self.graph.sources.locate(service.origin, *placement.path("priority")),
                    hint="order the placements with the platforms' `locality`, or leave `priority` unset")

    def multicluster_documents(self) -> list[dict]:
        """The cluster's part of a multi-network mesh: its network on the root namespace (how
        istiod knows the cluster's network) and the east-west gateway's Gateway, which exposes
        every service of the cluster to other networks by SNI (AUTO_PASSTHROUGH)."""
        platform, sources = self.platform, (self.graph.mesh_origin.file,)
        docs = []
        if platform.network is not None:
            # Not labelled as meshc's: a prune by that label must never delete the namespace
            docs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {
                "name": platform.rootNamespace, "labels": {NETWORK_LABEL: platform.network},
                "annotations": {SOURCE_ANNOTATION: source_list(sources)}}})
        gateway = platform.eastWestGateway
        if gateway is not None:
            domain = platform.clusterDomain
            hosts = ["*.local"] if domain.endswith(".local") else [f"*.{domain}"]
            docs.append(document(ISTIO_NETWORKING, "Gateway",
                                 metadata(EAST_WEST_GATEWAY, platform.rootNamespace, sources),
                                 spec={"selector": dict(EAST_WEST_SELECTOR), "servers": [{
                                     "port": {"number": gateway.port, "name": "tls", "protocol": "TLS"},
                                     "tls": {"mode": "AUTO_PASSTHROUGH"}, "hosts": hosts}]}))
        return docs

    def destination_rule(self, service: ServiceNode, with_subsets: bool = True) -> dict:
        spec: dict = {"host": self.hosts(service.key)}
        policy = self.traffic_policy(service)
        if policy:
            spec["trafficPolicy"] = policy
        if with_subsets and service.spec.versions and self.hosts.has_subsets(service.key):
            spec["subsets"] = [
                {"name": version, "labels": {APP_LABEL: service.name, **spec_.labels}}
                for version, spec_ in service.spec.versions.items()
            ]
        return document(ISTIO_NETWORKING, "DestinationRule",
                        metadata(service.name, service.namespace, (service.origin.file,)), spec=spec)

    def routing(self, service: ServiceNode) -> list[dict]:
        """VirtualService of the service's mesh Route, else of its own timeout and retries."""
        routes = self.graph.routes_for(service.key)
        host = self.hosts(service.key)
        if routes:
            return [self.virtual_service(RouteGroup(routes), [host])]
        http_ports = [p.port for p in service.spec.ports if p.protocol in HTTP_PROTOCOLS]
        resilience = service.resilience
        if not http_ports or (resilience.timeout is None and resilience.retries is None):
            return []
        if resilience.retries is not None and backoff_capped_otherwise(resilience.retries):
            own = service.spec.resilience is not None and service.spec.resilience.retries is not None
            self.report.add(codes.K8S_ISTIO_UNSUPPORTED, f"retries of {service.key}: {BACKOFF_CAP}",
                            self.graph.sources.locate(service.origin, "resilience", "retries", "backoff", "max") if own
                            else self.graph.sources.locate(self.graph.mesh_origin, "defaults", "retries", "backoff",
                                                           "max"))
        return [default_virtual_service(service.name, service.namespace, host, http_ports, resilience.timeout,
                                        resilience.retries, (service.origin.file, self.graph.mesh_origin.file))]

    def peer_authentication(self, service: ServiceNode) -> dict:
        return document(ISTIO_SECURITY, "PeerAuthentication",
                        metadata(service.name, service.namespace, (service.origin.file, self.graph.mesh_origin.file)),
                        spec={"selector": {"matchLabels": {APP_LABEL: service.name}},
                              "mtls": {"mode": service.mtls}})

    def principal_sources(self, policy: AccessPolicyNode, rule: ResolvedAccessRule) -> list[dict]:
        """Istio sources: each `from` entry's (fields inside a source are ANDed, sources ORed),
        each with the rule's `requestPrincipals`; no `from`, one source of those alone."""
        users = {"requestPrincipals": list(rule.spec.requestPrincipals)} if rule.spec.requestPrincipals else {}
        if rule.spec.from_ is None:
            return [{"source": users}] if users else []
        names, namespaces, unauthenticated = [], [], False
        addresses: list[dict] = []
        for index, principal in enumerate(rule.principals):
            if principal.kind in ("ipBlocks", "remoteIpBlocks"):
                addresses.append({"source": {principal.kind: list(principal.blocks), **users}})
            elif principal.kind == "any":
                names.append("*")
            elif principal.kind == "unauthenticated":
                unauthenticated = True  # Istio: notPrincipals ["*"], a peer without an identity
            elif principal.kind == "namespace":
                namespaces.append(principal.namespace)
            else:
                names.append(self.graph.principal(principal.key()))
                self.report_unowned_account(principal.key(), self.graph.sources.locate(
                    policy.origin, rule.section, rule.index, "from", index))
        sources: list[dict] = []
        if names:
            sources.append({"source": {"principals": names, **users}})
        if namespaces:
            sources.append({"source": {"namespaces": namespaces, **users}})
        if unauthenticated:
            sources.append({"source": {"notPrincipals": ["*"], **users}})
        return sources + addresses

    def authorization_rule(self, policy: AccessPolicyNode, rule: ResolvedAccessRule) -> dict:
        out: dict = {}
        sources = self.principal_sources(policy, rule)
        if sources:
            out["from"] = sources
        operation: dict = {}
        if rule.spec.methods:
            operation["methods"] = list(rule.spec.methods)
        if rule.spec.paths:
            operation["paths"] = list(rule.spec.paths)
        if rule.spec.ports:
            operation["ports"] = [str(port) for port in rule.spec.ports]
        if operation:
            out["to"] = [{"operation": operation}]
        # Istio conditions: "request.auth.claims[name]" and "request.headers[name]", any value
        conditions = [{"key": f"request.auth.claims[{name}]", "values": list(values)}
                      for name, values in rule.spec.claims.items()]
        conditions += [{"key": f"request.headers[{name.lower()}]", "values": list(values)}
                       for name, values in rule.spec.headers.items()]
        if conditions:
            out["when"] = conditions
        return out

    def authorization_policies(self, service: ServiceNode) -> list[dict]:
        selector = {"matchLabels": {APP_LABEL: service.name}}
        policies = self.graph.policies_for(service.key)
        docs = []
        for policy in policies:
            # the files of the services and gateways it names: their accounts are its principals
            sources = (policy.origin.file, *self.principal_files(policy))
            # An AuthorizationPolicy applies in the namespace of the workloads it selects, which
            # is the service's, wherever the AccessPolicy was written.
            name = (policy.key.name if policy.key.namespace == service.namespace
                    else f"{policy.key.namespace}-{policy.key.name}")
            if policy.allow:
                docs.append(document(ISTIO_SECURITY, "AuthorizationPolicy",
                                     metadata(name, service.namespace, sources),
                                     spec={"selector": selector, "action": "ALLOW",
                                           "rules": [self.authorization_rule(policy, r) for r in policy.allow]}))
            if policy.deny:
                docs.append(document(ISTIO_SECURITY, "AuthorizationPolicy",
                                     metadata(f"{name}-deny", service.namespace, sources),
                                     spec={"selector": selector, "action": "DENY",
                                           "rules": [self.authorization_rule(policy, r) for r in policy.deny]}))
        if self.graph.mesh.authorization == "deny" and not any(p.allow for p in policies):
            # An ALLOW policy without rules matches nothing: Istio then admits no caller.
            docs.append(document(ISTIO_SECURITY, "AuthorizationPolicy",
                                 metadata(f"{service.name}-allow-nothing", service.namespace,
                                          (service.origin.file, self.graph.mesh_origin.file)),
                                 spec={"selector": selector, "action": "ALLOW"}))
        return docs

    def principal_files(self, policy: AccessPolicyNode) -> list[str]:
        files = []
        for rule in (*policy.allow, *policy.deny):
            for principal in rule.principals:
                if principal.kind in ("service", "gateway"):
                    node = self.graph.services.get(principal.key()) or self.graph.gateways.get(principal.key())
                    if node is not None:
                        files.append(node.origin.file)
        return files

    def egress_hosts(self, service: ServiceNode) -> list[str]:
        hosts: list[str] = []
        for callee in service.calls:
            if callee in self.graph.externals:
                for key in reached_externals(self.graph, callee):
                    hosts.extend(egress for host in self.graph.externals[key].spec.hosts
                                 if (egress := f"{key.namespace}/{host}") not in hosts)
            else:
                hosts.append(f"{callee.namespace}/{self.hosts(callee)}")
                hosts.extend(f"{callee.namespace}/{host}" for host in self.extra_callee_hosts(callee))
        tracing = self.graph.mesh.tracing
        collector = tracing.address.rsplit(":", 1)[0] if tracing is not None else None
        infrastructure = [*self.platform.meshHosts,
                          # the trace collector, in whatever namespace it runs (an IP needs no host)
                          *([f"*/{collector}"] if collector and not collector.replace(".", "").isdigit() else []),
                          *service.spec.egressHosts]
        hosts.extend(host for host in infrastructure if host not in hosts)
        # `~/*` names no namespace: a service that calls nothing may reach nothing.
        return hosts or ["~/*"]

    def extra_callee_hosts(self, callee: Key) -> list[str]:
        """Further hosts a caller needs for one callee (the gateway-api flavour's version Services)."""
        return []

    def sidecar(self, service: ServiceNode) -> dict:
        return document(ISTIO_NETWORKING, "Sidecar", metadata(service.name, service.namespace, (service.origin.file,)),
                        spec={"workloadSelector": {"labels": {APP_LABEL: service.name}},
                              "egress": [{"hosts": self.egress_hosts(service)}],
                              "outboundTrafficPolicy": {"mode": self.platform.outboundTrafficPolicy}})

    def rate_limit_filter(self, service: ServiceNode, limit: RateLimit) -> dict:
        """Istio has no rate limit API: Envoy's local rate limit filter (the envoy target's very
        filter), inserted before the router."""
        patch = {
            "applyTo": "HTTP_FILTER",
            "match": {"context": "SIDECAR_INBOUND",
                      "listener": {"filterChain": {"filter": {
                          "name": HCM_FILTER, "subFilter": {"name": ROUTER_FILTER}}}}},
            "patch": {"operation": "INSERT_BEFORE",
                      "value": local_rate_limit(limit, RATE_LIMIT_STAT_PREFIX)},
        }
        return document(ISTIO_NETWORKING_ALPHA, "EnvoyFilter",
                        metadata(f"{service.name}-local-ratelimit", service.namespace, (service.origin.file,)),
                        spec={"workloadSelector": {"labels": {APP_LABEL: service.name}}, "configPatches": [patch]})

    def remote_documents(self, service: ServiceNode) -> list[dict]:
        """What Kubernetes callers need to reach a service on Cloud Foundry or VMs, or on
        several platforms but not this one: its Kubernetes Service (namespace sameness: Istio
        merges the endpoints of every cluster's Service of one name and namespace, and the name
        resolves here), its traffic policy and its vm placements' WorkloadEntries."""
        host = self.hosts(service.key)
        sources = (service.origin.file,)
        if service.placed:
            docs = [self.kubernetes_service(service.name, service.namespace, {APP_LABEL: service.name}, service,
                                            sources)] if self.owns("Service") else []
            docs.append(self.destination_rule(service))
            for placement in service.placements:
                if placement.platform.kind == "vm":
                    docs += workload_documents(self.graph, service.on(placement.platform.name))
            return docs + self.routing(service)
        if service.platform.kind == "vm":
            entry_spec = {
                "hosts": [host],
                "location": "MESH_INTERNAL",
                "resolution": "STATIC",
                "ports": [{"number": p.port, "name": p.name, "protocol": protocol_name(p.protocol)}
                          for p in service.spec.ports],
                "workloadSelector": {"labels": {APP_LABEL: service.name}},
            }
            docs = [*workload_documents(self.graph, service), self.destination_rule(service)]
        else:
            entry_spec = {
                "hosts": [host],
                "location": "MESH_EXTERNAL",
                "resolution": "DNS",
                "ports": self.cloud_foundry_ports(service),
            }
            # Callers speak HTTP to the sidecar, which originates TLS to the Cloud Foundry router.
            rule = self.destination_rule(service)
            rule["spec"].setdefault("trafficPolicy", {})["tls"] = {"mode": "SIMPLE", "sni": host}
            docs = [rule]
        docs.append(document(ISTIO_NETWORKING, "ServiceEntry", metadata(service.name, service.namespace, sources),
                             spec=entry_spec))
        docs.extend(self.routing(service))
        return docs

    def cloud_foundry_ports(self, service: ServiceNode) -> list[dict]:
        ports = []
        for index, port in enumerate(service.spec.ports):
            if port.protocol in HTTP_PROTOCOLS:
                ports.append({"number": port.port, "name": port.name, "protocol": "HTTP",
                              "targetPort": CLOUD_FOUNDRY_ROUTER_PORT})
            else:
                self.report.add(
                    codes.K8S_CF_CALLEE_PORT,
                    f"port {port.name} ({port.protocol}) of Cloud Foundry service {service.key} is not reachable "
                    f"from platform {self.platform.name!r}: the Cloud Foundry router carries HTTP only",
                    self.graph.sources.locate(service.origin, "ports", index),
                )
        return ports

    def external_documents(self, external: ExternalNode) -> list[dict]:
        spec = external.spec
        sources = (external.origin.file,)
        entry: dict = {"hosts": list(spec.hosts)}
        if spec.addresses:
            entry["addresses"] = list(spec.addresses)
        # ServiceEntry.resolution: DNS, STATIC (the endpoints) or NONE (the original destination)
        entry.update({"location": "MESH_EXTERNAL", "resolution": spec.effective_resolution,
                      "ports": [service_entry_port(spec, p) for p in spec.ports]})
        if spec.endpoints:
            # WorkloadEntry.ports: "Set of ports associated with the endpoint"; a port not listed
            # is reached on the ServiceEntry port's targetPort, else its number
            entry["endpoints"] = [{"address": endpoint.address, **({"ports": dict(endpoint.ports)}
                                                                   if endpoint.ports else {})}
                                  for endpoint in spec.endpoints]
        docs = [document(ISTIO_NETWORKING, "ServiceEntry", metadata(external.name, external.namespace, sources),
                         spec=entry)]
        routes = self.graph.routes_for(external.key)
        if routes:  # a Route on the external host: a VirtualService for its hosts, the mesh's sidecars
            docs.append(self.virtual_service(RouteGroup(routes), list(spec.hosts)))
        # Istio's egress TLS origination: the port the application calls originates TLS
        # (portLevelSettings, mode SIMPLE) and the ServiceEntry sends it to its targetPort.
        originating = []
        for port in spec.ports:
            origination = spec.origination(port)
            if origination is not None:
                tls: dict = {"mode": "SIMPLE"}
                if origination.sni is not None:
                    tls["sni"] = origination.sni
                originating.append({"port": {"number": port.port}, "tls": tls})
        if originating:
            docs.extend(
                document(ISTIO_NETWORKING, "DestinationRule",
                         metadata(f"{external.name}-{index}" if len(spec.hosts) > 1 else external.name,
                                  external.namespace, sources),
                         spec={"host": host, "trafficPolicy": {"portLevelSettings": originating}})
                for index, host in enumerate(spec.hosts, start=1)
            )
        return docs

    def gateway_documents(self, gateway: GatewayNode) -> list[dict]:
        docs = [*self.gateway_workload_documents(gateway), istio_gateway(gateway)]
        groups = gateway_groups(gateway, self.graph.gateway_routes.get(gateway.key, ()))
        redirects = https_redirects(gateway, groups)
        for group in groups:
            service = self.virtual_service(group, list(group.hosts), [f"{gateway.key.namespace}/{gateway.key.name}"])
            if group.listeners is not None:
                self.restrict_to_listeners(gateway, group, service["spec"], groups)
            ports = redirects.group_ports.get(group.key, [])
            service["spec"]["http"] = [https_redirect_rule(port) for port in ports] + service["spec"].get("http", [])
            docs.append(service)
        self.report_merged_virtual_hosts(gateway, groups)
        for index, group in redirects.conflicts:
            listener = gateway.listeners[index]
            names = ", ".join(f"Route {route.key}" for route in group.routes)
            self.report.add(codes.K8S_ISTIO_UNSUPPORTED,
                            f"listener {listener.name!r} of Gateway {gateway.key} redirects to https on port "
                            f"{listener.port}, where {names} also reaches a listener that does not",
                            self.graph.sources.locate(gateway.origin, "listeners", index, "httpsRedirect"))
        return docs + redirects.services

    def restrict_to_listeners(self, gateway: GatewayNode, group: RouteGroup, spec: dict,
                              groups: list[RouteGroup]) -> None:
        """A VirtualService binds to a whole Gateway; Routes attached to some of its listeners
        are carried by matching on those listeners' ports (HTTPMatchRequest.port "Specifies the
        ports on the host that is being addressed"; on a gateway, its port). Another listener on
        such a port that serves the hosts cannot be told apart, and is reported."""
        assert group.listeners is not None  # called for restricted groups only
        ports = sorted({listener.port for listener in group.listeners})
        restrict_to_ports(spec, ports)
        for index, other in enumerate(gateway.listeners):
            if other in group.listeners or other.port not in ports or \
                    not any(overlap(lh, h) for lh in other.hosts for h in group.hosts):
                continue
            # the Route whose attachment split the host's Routes: this group's, or (for a group of
            # Routes attached everywhere) another group's of one of its hosts
            route = next(r for g in [group, *groups] if set(g.hosts) & set(group.hosts)
                         for r in g.routes if r.spec.listeners or r.spec.ports)
            field = "listeners" if route.spec.listeners else "ports"
            names = ", ".join(str(r.key) for r in group.routes)
            split = "" if route in group.routes else f", so the Routes {names} of its hosts apply on some listeners"
            self.report.add(codes.K8S_ISTIO_UNSUPPORTED,
                            f"Route {route.key} attaches to some listeners of Gateway {gateway.key}{split}, which "
                            f"flavor istio selects by port only: listener {other.name!r} on port {other.port} serves "
                            "their hosts too and gets their rules",
                            self.graph.sources.locate(route.origin, field, key=True),
                            related=(Related(self.graph.sources.locate(gateway.origin, "listeners", index, "name"),
                                             f"listener {other.name!r}"),),
                            hint="give the listeners distinct ports, or attach the Route to all of them")
            return

    def report_merged_virtual_hosts(self, gateway: GatewayNode, groups: list[RouteGroup]) -> None:
        """Istio builds one route table per http port and one per https listener (pilot
        gatewayRDSRouteName); in it, each VirtualService bound to the Gateway gets a virtual host
        for each host it shares with a Server, the more specific of the two (gateway.go
        buildGatewayHTTPRouteConfig, `serverHosts.Intersection(virtualServiceHosts)`), and
        VirtualServices meeting on one such name are appended to one virtual host in an undefined
        order. A VirtualService none of whose rules is for the port gives no routes there ("no
        routes matched") and takes no part. meshc lets the most specific Route decide (MESH470
        at each broader Route); two groups of one host are restrict_to_listeners's MESH427."""
        tables: dict[tuple, list[Listener]] = {}
        for listener in gateway.listeners:
            if listener.protocol == "http":
                tables.setdefault(("http", listener.port), []).append(listener)
            elif listener.protocol == "https":
                tables[("https", listener.name)] = [listener]
        reported: set[tuple] = set()
        for listeners in tables.values():
            port = listeners[0].port
            meeting: dict[str, dict[int, tuple[RouteGroup, str, Listener]]] = {}
            for index, group in enumerate(groups):
                if group.listeners is not None and port not in {listener.port for listener in group.listeners}:
                    continue
                for host in group.hosts:
                    for listener in listeners:
                        for served in listener.hosts:
                            name = host if covers(served, host) else served if covers(host, served) else None
                            if name is None:
                                continue
                            found = meeting.setdefault(name.lower(), {})
                            # a group meets a name through its most specific host
                            if index not in found or specificity(host) > specificity(found[index][1]):
                                found[index] = (group, host, listener)
            for name, met in meeting.items():
                if len(met) < 2:
                    continue
                winner, winner_host, _ = max(met.values(), key=lambda found: specificity(found[1]))
                for group, host, listener in met.values():
                    if group is winner or host == winner_host or (group.key, host, name, port) in reported:
                        continue
                    reported.add((group.key, host, name, port))
                    route = next(r for r in group.routes if host in r.spec.hosts)
                    other = next(r for r in winner.routes if winner_host in r.spec.hosts)
                    self.report.add(
                        codes.K8S_ISTIO_GATEWAY_HOST_MERGE,
                        f"Route {route.key}'s host {host!r} meets listener {listener.name!r} of Gateway {gateway.key} "
                        f"on port {port} as {name!r}, which Route {other.key} serves: Istio merges their "
                        f"VirtualServices' rules for {name!r} in an undefined order, where meshc lets Route "
                        f"{other.key} decide",
                        self.graph.sources.locate(route.origin, "hosts", route.spec.hosts.index(host)),
                        related=(Related(self.graph.sources.locate(other.origin, "hosts",
                                                                   other.spec.hosts.index(winner_host)),
                                         f"Route {other.key} serves {name!r}"),),
                        hint="attach the broader Route to the listeners it is for (`listeners` or `ports`, on "
                             "ports of their own), or narrow the listener's hosts",
                    )

    def virtual_service(self, group: RouteGroup, hosts: list[str], gateways: list[str] | None = None) -> dict:
        """The merged Routes' VirtualService; what Istio cannot carry is reported at the rule."""
        inexpressible: list[tuple[RouteNode, ResolvedRule, str]] = []
        translated = virtual_service(group, hosts, self.protocol_of, self.hosts, inexpressible, gateways)
        for route, rule, reason in inexpressible:
            where: tuple = ("redirect", "prefix")
            if reason == BACKOFF_CAP:
                where = ("retries", "backoff", "max") if rule.spec.retries is not None else ()
            self.report.add(codes.K8S_ISTIO_UNSUPPORTED, f"rule {rule.index} of Route {route.key}: {reason}",
                            self.graph.sources.locate(route.origin, "rules", rule.index, *where))
        for route in group.routes:
            for rule in route.rules:
                self.report_rule_rate_limit(route, rule)
        return translated

    def report_rule_rate_limit(self, route: RouteNode, rule: ResolvedRule) -> None:
        """A rule's own token bucket has no place in Istio's or the Gateway API's objects."""
        if rule.spec.rateLimit is not None:
            self.report.add(codes.K8S_ROUTE_RATE_LIMIT,
                            f"the rate limit of rule {rule.index} of Route {route.key} is not applied on platform "
                            f"{self.platform.name!r} (flavor {self.platform.flavor}): neither a VirtualService "
                            "nor an HTTPRoute has a per-route rate limit",
                            self.graph.sources.locate(route.origin, "rules", rule.index, "rateLimit"))

    def gateway_workload_documents(self, gateway: GatewayNode) -> list[dict]:
        """What the gateway's workload itself gets: its ServiceAccount (when meshc runs it and
        owns the kind), admission of outside traffic where the namespace denies by default, and
        its tracing."""
        sources = (gateway.origin.file, self.graph.mesh_origin.file)
        account = gateway.identity
        docs = []
        if self.writes_gateway_account(gateway):
            docs.append(document("v1", "ServiceAccount", metadata(account.name, account.namespace, sources)))
        workload = self.gateway_workload_ref(gateway)
        policies = self.graph.gateway_policies_for(gateway.key)
        docs += self.gateway_authorization(gateway, policies, account.namespace, workload)
        if account.namespace in self.platform.owns.namespaces and self.graph.mesh.authorization == "deny" \
                and not any(p.allow for p in policies):  # an allow-all beside them would admit everyone
            # the namespace's allow-nothing would refuse the clients a gateway exists for
            # (istio.io, AuthorizationPolicy: `rules: [{}]` allows every request)
            docs.append(document(ISTIO_SECURITY, "AuthorizationPolicy",
                                 metadata(f"{gateway.key.name}-ingress", account.namespace, sources),
                                 spec={**workload, "action": "ALLOW", "rules": [{}]}))
        docs += self.request_authentication(gateway.spec.jwt, gateway.key.name, account.namespace, workload,
                                            (gateway.origin.file,))
        docs += self.workload_telemetry(account.namespace, gateway.key.name, workload, sources)
        return docs

    def request_authentication(self, providers: list[JwtProvider], name: str, namespace: str, workload: dict,
                               sources: tuple[str, ...]) -> list[dict]:
        """Istio RequestAuthentication of a service's or gateway's `jwt` providers: "It will
        reject a request if the request contains invalid authentication information ... A
        request that does not contain any authentication credentials will be accepted but will
        not have any authenticated identity" (docs/intents.md, End-user authentication)."""
        if not providers:
            return []
        rules = []
        for provider in providers:
            rule: dict = {"issuer": provider.issuer}
            if provider.audiences:
                rule["audiences"] = list(provider.audiences)
            if provider.jwks.uri is not None:
                rule["jwksUri"] = provider.jwks.uri
            else:
                rule["jwks"] = provider.jwks.inline
            locations = token_locations(provider)
            rule["fromHeaders"] = [{"name": name_, "prefix": prefix} if prefix else {"name": name_}
                                   for kind, name_, prefix in locations if kind == "header"]
            params = [name_ for kind, name_, _ in locations if kind == "param"]
            if params:
                rule["fromParams"] = params
            if provider.forward:
                rule["forwardOriginalToken"] = True
            rules.append(rule)
        return [document(ISTIO_SECURITY, "RequestAuthentication", metadata(f"{name}-jwt", namespace, sources),
                         spec={**workload, "jwtRules": rules})]

    def writes_gateway_account(self, gateway: GatewayNode) -> bool:
        return self.owns("ServiceAccount") and not gateway.bound

    def gateway_authorization(self, gateway: GatewayNode, policies: tuple[AccessPolicyNode, ...], namespace: str,
                              workload: dict) -> list[dict]:
        """AuthorizationPolicies of a Gateway's AccessPolicies, selecting its workload (an ALLOW
        and a DENY policy each, as for services). Istio reads `remoteIpBlocks` from
        X-Forwarded-For only with the gateway's `gatewayTopology.numTrustedProxies`, which is
        the gateway deployment's proxy configuration: reported where `trustedProxies` is set."""
        if gateway.spec.trustedProxies:
            self.report.add(codes.K8S_TRUSTED_PROXIES,
                            f"Gateway {gateway.key} trusts {gateway.spec.trustedProxies} proxies in front of it, which "
                            "Istio takes from the gateway deployment's proxy configuration, not from the objects "
                            "meshc writes", self.graph.sources.locate(gateway.origin, "trustedProxies"),
                            hint="set gatewayTopology.numTrustedProxies to the same number in the gateway's "
                                 "proxy.istio.io/config annotation or MeshConfig.defaultConfig")
        docs = []
        for policy in policies:
            sources = (policy.origin.file, gateway.origin.file)
            for section, action, suffix in (("allow", "ALLOW", ""), ("deny", "DENY", "-deny")):
                rules = getattr(policy, section)
                if rules:
                    docs.append(document(ISTIO_SECURITY, "AuthorizationPolicy",
                                         metadata(f"{policy.key.name}{suffix}", namespace, sources),
                                         spec={**workload, "action": action,
                                               "rules": [self.authorization_rule(policy, r) for r in rules]}))
        return docs

    def gateway_workload_ref(self, gateway: GatewayNode) -> dict:
        """How an Istio policy selects the gateway's pods."""
        return {"selector": {"matchLabels": gateway_selector(gateway)}}

    # -- mesh-wide, namespace-wide and tracing -----------------------------------------------

    def tracing_scope(self, namespace: str) -> str:
        """Where Mesh.tracing is applied for a workload in `namespace`: the widest scope the
        platform owns (mesh, namespace), else the workload itself."""
        owns = self.platform.owns
        if owns.meshWide:
            return "mesh"
        return "namespace" if namespace in owns.namespaces else "workload"

    def telemetry(self, name: str, namespace: str, sources: tuple[str, ...], **target: object) -> list[dict]:
        tracing = self.graph.mesh.tracing
        if tracing is None:
            return []
        spec = {**target, "tracing": [{"providers": [{"name": tracing_provider(tracing.provider)}],
                                       "randomSamplingPercentage": float(tracing.samplingPercent)}]}
        return [document(ISTIO_TELEMETRY, "Telemetry", metadata(name, namespace, sources), spec=spec)]

    def workload_telemetry(self, namespace: str, name: str, workload: dict, sources: tuple[str, ...]) -> list[dict]:
        if self.tracing_scope(namespace) != "workload":
            return []
        return self.telemetry(name, namespace, (*sources, self.graph.mesh_origin.file), **workload)

    def mesh_wide_documents(self) -> list[dict]:
        """Mesh-wide policy in the root namespace: the mTLS mode and tracing of every workload
        the platform's Istio runs, where nothing narrower says otherwise."""
        root, sources = self.platform.rootNamespace, (self.graph.mesh_origin.file,)
        return [document(ISTIO_SECURITY, "PeerAuthentication", metadata(NAMESPACE_DEFAULT, root, sources),
                         spec={"mtls": {"mode": self.graph.mesh.mtls}}),
                *self.telemetry(MESH_DEFAULT, root, sources)]

    def namespace_documents(self, namespace: str) -> list[dict]:
        """A namespace the mesh owns: its mTLS mode, and under Mesh.authorization deny an
        allow-nothing policy (an AuthorizationPolicy with an empty spec denies every request
        to the namespace's workloads that no ALLOW policy of theirs admits)."""
        sources = (self.graph.mesh_origin.file,)
        docs = [document(ISTIO_SECURITY, "PeerAuthentication", metadata(NAMESPACE_DEFAULT, namespace, sources),
                         spec={"mtls": {"mode": self.graph.mesh.mtls}})]
        if self.graph.mesh.authorization == "deny":
            docs.append(document(ISTIO_SECURITY, "AuthorizationPolicy",
                                 metadata("allow-nothing", namespace, sources), spec={}))
        if self.tracing_scope(namespace) == "namespace":
            docs += self.telemetry(NAMESPACE_DEFAULT, namespace, sources)
        return docs

    def mesh_config(self) -> dict | None:
        """Istio installation values the platform's objects need: the MeshConfig extension
        provider the Telemetry objects name (istio.io, MeshConfig extensionProviders) and the
        cluster's network (`values.global.network`, istio.io multi-network installs); not a
        Kubernetes object."""
        config: dict = {}
        tracing = self.graph.mesh.tracing
        if tracing is not None:
            host, port = tracing.address.rsplit(":", 1)
            config["meshConfig"] = {"extensionProviders": [
                {"name": tracing_provider(tracing.provider), tracing.provider: {"service": host, "port": int(port)}}]}
        if self.platform.network is not None:
            config["values"] = {"global": {"network": self.platform.network}}
        return config or None

    # -- files -------------------------------------------------------------------------------

    def emit(self, workloads: Container[str] | None) -> list[Artifact]:
        plan = self.plan()
        artifacts = []
        for path, workload, build in plan:
            if workloads is not None and workload not in workloads:
                continue
            docs = ordered(build())
            for doc in docs if self.graph.sources.environment is not None else ():
                # in an environment, the overlay files that changed the documents it came from too
                annotations = doc["metadata"]["annotations"]
                annotations[SOURCE_ANNOTATION] = source_list(
                    self.graph.sources.with_overlays(parse_source_list(annotations[SOURCE_ANNOTATION])))
            sources = sorted({source for doc in docs
                              for source in parse_source_list(doc["metadata"]["annotations"][SOURCE_ANNOTATION])})
            artifacts.append(Artifact(path, to_yaml_documents(docs), TARGET, workload, tuple(sources)))
        shared = platform_workload(self.platform.name)
        if workloads is None or shared in workloads:
            prefix = len(self.root) + 1
            kustomization = {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [path[prefix:] for path, _, _ in plan],
            }
            artifacts.append(Artifact(f"{self.root}/kustomization.yaml", to_yaml(kustomization), TARGET,
                                      shared, (self.graph.mesh_origin.file,)))
            mesh_config = self.mesh_config()
            if mesh_config is not None:
                artifacts.append(Artifact(f"{self.root}/{MESH_CONFIG_FILE}", to_yaml(mesh_config), TARGET,
                                          shared, (self.graph.mesh_origin.file,)))
        return artifacts


def reached_externals(graph: MeshGraph, called: Key) -> list[Key]:
    """A called ExternalService and those the Routes on its hosts send to (a caller's sidecar
    needs the ServiceEntry and egress of each)."""
    reached = [called]
    for route in graph.routes_for(called):
        for rule in route.rules:
            reached.extend(t.service for t in (*rule.destinations, *rule.mirrors) if t.service not in reached)
    return reached


def external_host(external: ExternalNode) -> str:
    """The name an Istio destination gives an ExternalService: its first host that is not a
    wildcard (a ServiceEntry host, which Istio routes to), else its first host."""
    concrete = [host for host in external.spec.hosts if not host.startswith("*")]
    return (concrete or list(external.spec.hosts))[0]


def restrict_to_ports(spec: dict, ports: list[int]) -> None:
    """Every rule of a VirtualService (its http, tls and tcp sections) matches only on `ports`:
    each match entry once per port (an entry naming another port is dropped, a rule left
    without one too)."""
    for section, rules in spec.items():
        if section in ("hosts", "gateways"):
            continue
        kept = []
        for rule in rules:
            entries = [{**entry, "port": port} for entry in rule.get("match") or [{}] for port in ports
                       if entry.get("port", port) == port]
            if entries:
                kept.append({**rule, "match": entries})
        spec[section] = kept


def service_entry_port(spec: ExternalService, port: ExternalPort) -> dict:
    """A ServiceEntry port; `targetPort` where the sidecar dials another port than the one the
    application calls (ServicePort.targetPort: "The port number on the endpoint where the
    traffic will be received")."""
    entry: dict = {"number": port.port, "name": port.name, "protocol": protocol_name(port.protocol)}
    upstream = spec.upstream_port(port)
    if upstream != port.port:
        entry["targetPort"] = upstream
    return entry


def locality_contains(outer: str, inner: str) -> bool:
    """Whether Istio's locality pattern `outer` (`region[/zone[/subzone]]`) matches every
    workload of locality `inner`: its parts are the first parts of inner's."""
    outer_parts, inner_parts = outer.split("/"), inner.split("/")
    return len(outer_parts) <= len(inner_parts) and inner_parts[:len(outer_parts)] == outer_parts


def whole_percentages(weights: list[int]) -> list[int]:
    """Weights as whole percentages adding up to 100, each at least 1 (Istio's `distribute`):
    the largest remainders round up."""
    total = sum(weights)
    exact = [weight * 100 / total for weight in weights]
    shares = [max(1, int(value)) for value in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(exact[i] - int(exact[i])), i))
    for index in by_remainder[:max(0, 100 - sum(shares))]:
        shares[index] += 1
    while sum(shares) > 100:
        shares[shares.index(max(shares))] -= 1
    return shares
