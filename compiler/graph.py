"""The linked mesh: every reference resolved, every default applied, immutable.

Targets and checks read only this. Node objects keep the user's model (`spec`) for what is
written as-is, plus resolved fields for what needed the rest of the mesh to decide.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import NamedTuple

from compiler.loader import Origin, Revision, SourceTable
from compiler.model import (
    AccessPolicy,
    AccessRule,
    CloudFoundryPlatform,
    Endpoint,
    ExternalPort,
    ExternalService,
    Gateway,
    KubernetesPlatform,
    Listener,
    Mesh,
    Patch,
    Policy,
    Resilience,
    Retries,
    Route,
    RouteRule,
    Service,
    ServicePort,
    SidecarSettings,
    VmPlatform,
)

Platform = KubernetesPlatform | CloudFoundryPlatform | VmPlatform
# The GatewayClass of the gateway-api flavour's Gateways: Istio names the deployment it makes for
# a Gateway `<gateway>-<class>` and runs it as the service account of that name.
GATEWAY_API_CLASS = "istio"


class Key(NamedTuple):
    """Identity of a namespaced object."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Sidecar:
    """Loopback ports of a generated Envoy sidecar (platform settings, service override)."""

    outbound_port: int
    admin_port: int


    @classmethod
    def of(cls, own: SidecarSettings | None, platform: SidecarSettings) -> Sidecar:
        """A service's or gateway's own setting, else its platform's, else the defaults."""
        return cls(outbound_port=(own and own.outboundPort) or platform.outboundPort or DEFAULT_OUTBOUND_PORT,
                   admin_port=(own and own.adminPort) or platform.adminPort or DEFAULT_ADMIN_PORT)


DEFAULT_OUTBOUND_PORT = 15001
DEFAULT_ADMIN_PORT = 15000


class _Callable:
    """What services and external services share: a name, a namespace, ports by number."""

    key: Key
    spec: Service | ExternalService

    @property
    def name(self) -> str:
        return self.key.name

    @property
    def namespace(self) -> str:
        return self.key.namespace

    def port(self, number: int) -> ServicePort | ExternalPort | None:
        return next((p for p in self.spec.ports if p.port == number), None)

    def protocol(self, number: int) -> str:
        """The protocol of a port the linker resolved, such as a Target's."""
        port = self.port(number)
        if port is None:
            raise KeyError(f"{self.key} has no port {number}")
        return port.protocol


@dataclass(frozen=True)
class Placement:
    """One platform a service runs on (Service.platform, or one of Service.placements)."""

    platform: Platform
    endpoints: tuple[Endpoint, ...]
    priority: int
    index: int | None  # position in Service.placements; None for `platform:`
    weight: int | None = None  # Placement.weight as written

    def path(self, *field: object) -> tuple:
        """The field path of this placement (or of a field in it) in the Service document."""
        return ("platform",) if self.index is None else ("placements", self.index, *field)


@dataclass(frozen=True)
class ServiceNode(_Callable):
    key: Key
    spec: Service
    origin: Origin
    platform: Platform  # where this node's workloads run: the first placement, or the one `on` chose
    mtls: str  # effective: Service.mtls, else Mesh.mtls
    resilience: Resilience  # Mesh.defaults overlaid field by field with Service.resilience
    sidecar: Sidecar
    calls: tuple[Key, ...]  # resolved, in the order written; services and external services
    placements: tuple[Placement, ...] = ()  # every platform it runs on, as written

    @property
    def identity(self) -> Key:
        """The workload's service account: Service.serviceAccount, else the service's name."""
        return Key(self.namespace, self.spec.serviceAccount or self.name)

    @property
    def placed(self) -> bool:
        """Whether the service runs on several platforms (Service.placements)."""
        return len(self.placements) > 1

    def placement(self, platform: str) -> Placement | None:
        return next((p for p in self.placements if p.platform.name == platform), None)

    def on(self, platform: str) -> ServiceNode:
        """The service as its workloads on `platform` see it: that platform, its endpoints there
        and its sidecar settings there. Targets that write one platform's files use this view."""
        if platform == self.platform.name:
            return self
        placement = self.placement(platform)
        if placement is None:
            raise KeyError(f"{self.key} does not run on platform {platform!r}")
        spec = self.spec.model_copy(update={"endpoints": list(placement.endpoints)})
        return replace(self, spec=spec, platform=placement.platform,
                       sidecar=Sidecar.of(self.spec.sidecar, placement.platform.sidecar))


@dataclass(frozen=True)
class ExternalNode(_Callable):
    key: Key
    spec: ExternalService
    origin: Origin


@dataclass(frozen=True)
class Target:
    """One resolved route destination (or mirror): a service, a version subset, a port."""

    service: Key
    version: str | None
    port: int
    weight: int  # 0-100; a lone destination weighs 100


@dataclass(frozen=True)
class ResolvedRule:
    index: int  # position in Route.rules, for locating diagnostics
    spec: RouteRule
    destinations: tuple[Target, ...]  # empty for redirect rules
    mirrors: tuple[Target, ...]  # as RouteRule.written_mirrors() lists them
    timeout: str | None  # rule timeout, else the route's service resilience timeout (mesh routes)
    retries: Retries | None  # the rule's, else the service's effective


@dataclass(frozen=True)
class RouteNode:
    key: Key
    spec: Route
    origin: Origin
    service: Key | None  # mesh route (of a Service, or of an ExternalService: a Route on an external host)
    gateway: Key | None  # ingress route
    rules: tuple[ResolvedRule, ...]

    def attaches(self, listener: Listener) -> bool:
        """Whether an ingress Route may take requests of this listener of its gateway: it names
        the listener (or names none) and the listener's port (or none); hosts decide the rest."""
        return ((not self.spec.listeners or listener.name in self.spec.listeners)
                and (not self.spec.ports or listener.port in self.spec.ports))

    def attachment(self) -> tuple[str, Key]:
        """("service", key) for a mesh Route, ("gateway", key) for an ingress Route."""
        if self.service is not None:
            return "service", self.service
        if self.gateway is not None:
            return "gateway", self.gateway
        raise ValueError(f"Route {self.key} is for no service and on no gateway")


@dataclass(frozen=True)
class GatewayNode:
    key: Key
    spec: Gateway
    origin: Origin
    platform: Platform

    @property
    def listeners(self) -> list[Listener]:
        return self.spec.listeners

    @property
    def bound(self) -> bool:
        """Whether the Gateway configures an existing deployment (Gateway.deployment)."""
        return self.spec.deployment is not None

    @property
    def identity(self) -> Key:
        """The gateway's service account: the deployment's; Istio's automated Gateway API
        deployment runs as `<gateway>-istio`; otherwise the gateway's name."""
        deployment = self.spec.deployment
        if deployment is not None:
            return Key(deployment.namespace or self.key.namespace, deployment.serviceAccount)
        if isinstance(self.platform, KubernetesPlatform) and self.platform.flavor == "gateway-api":
            return Key(self.key.namespace, f"{self.key.name}-{GATEWAY_API_CLASS}")
        return self.key

    @property
    def sidecar(self) -> Sidecar:
        """The gateway Envoy's loopback ports (it has no outbound listener: only admin_port counts)."""
        return Sidecar.of(self.spec.sidecar, self.platform.sidecar)


class Principal(NamedTuple):
    """One `from` entry: kind is service, namespace, gateway, any (a mesh identity),
    unauthenticated (none), or at a gateway ipBlocks and remoteIpBlocks (with `blocks`)."""

    kind: str
    namespace: str | None = None
    name: str | None = None
    blocks: tuple[str, ...] = ()

    def key(self) -> Key:
        """The service or gateway a `service` or `gateway` principal names."""
        if self.namespace is None or self.name is None:
            raise ValueError(f"a {self.kind} principal names no service or gateway")
        return Key(self.namespace, self.name)


@dataclass(frozen=True)
class ResolvedAccessRule:
    index: int
    section: str  # "allow" or "deny"
    spec: AccessRule
    principals: tuple[Principal, ...]


@dataclass(frozen=True)
class AccessPolicyNode:
    key: Key
    spec: AccessPolicy
    origin: Origin
    service: Key | None  # the service it protects, or
    allow: tuple[ResolvedAccessRule, ...]
    deny: tuple[ResolvedAccessRule, ...]
    gateway: Key | None = None  # the Gateway whose clients it admits


@dataclass(frozen=True)
class PolicyNode:
    name: str
    spec: Policy
    origin: Origin


@dataclass(frozen=True)
class PatchNode:
    """A Patch with its workload resolved: "service:<ns>/<name>", "gateway:<ns>/<name>" or
    "platform:<name>" (compiler.artifact's workload names)."""

    key: Key
    spec: Patch
    origin: Origin
    workload: str


@dataclass(frozen=True)
class MeshGraph:
    mesh: Mesh
    mesh_origin: Origin
    platforms: Mapping[str, Platform]
    services: Mapping[Key, ServiceNode]
    externals: Mapping[Key, ExternalNode]
    routes: Mapping[Key, RouteNode]
    gateways: Mapping[Key, GatewayNode]
    access_policies: Mapping[Key, AccessPolicyNode]
    policies: Mapping[str, PolicyNode]
    # derived indexes
    # service -> its mesh Routes, in merge order (docs/intents.md, "Several Routes for one host")
    service_routes: Mapping[Key, tuple[RouteNode, ...]]
    gateway_routes: Mapping[Key, tuple[RouteNode, ...]]  # gateway -> ingress Routes, in merge order
    service_policies: Mapping[Key, tuple[AccessPolicyNode, ...]]  # service -> AccessPolicies
    callers: Mapping[Key, tuple[Key, ...]]  # callee -> services that declare a call to it
    sources: SourceTable
    read_revision: Callable[[], Revision]  # lazy: only builds pay for asking git
    # applied last, to the targets' output (compiler.patches)
    patches: Mapping[Key, PatchNode] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def revision(self) -> Revision:
        return self.read_revision()

    def identity(self, key: Key) -> Key:
        """The service account (namespace, name) of a service or gateway workload."""
        node = self.services.get(key) or self.gateways.get(key)
        # a `from` entry naming no Gateway (MESH312) names the account of that name
        return key if node is None else node.identity

    def trust_domain(self, platform: Platform | None) -> str:
        """The trust domain a platform's identities are in: its own, else Mesh.trustDomain."""
        return (platform.trustDomain if platform is not None else None) or self.mesh.trustDomain

    def principal(self, key: Key) -> str:
        """Istio's principal of a service or gateway workload: <trustDomain>/ns/<ns>/sa/<account>,
        in the trust domain of the platform it runs on."""
        account = self.identity(key)
        node = self.services.get(key) or self.gateways.get(key)
        domain = self.trust_domain(node.platform if node is not None else None)
        return f"{domain}/ns/{account.namespace}/sa/{account.name}"

    def placed_on(self, platform: str) -> list[ServiceNode]:
        """Every service with workloads on `platform`, each as those workloads see it."""
        return [service.on(platform) for service in self.services.values()
                if service.platform.name == platform or service.placement(platform) is not None]

    def spiffe_id(self, key: Key) -> str:
        """SPIFFE identity of a service or gateway workload."""
        return f"spiffe://{self.principal(key)}"

    def routes_for(self, service: Key) -> tuple[RouteNode, ...]:
        """The service's mesh Routes in merge order: their rules are one list, each Route's in
        written order, the Routes by `namespace/name` (docs/intents.md)."""
        return self.service_routes.get(service, ())

    def gateway_policies_for(self, gateway: Key) -> tuple[AccessPolicyNode, ...]:
        """The AccessPolicies of a Gateway's clients, by name."""
        return tuple(sorted((p for p in self.access_policies.values() if p.gateway == gateway), key=lambda p: p.key))

    def policies_for(self, service: Key) -> tuple[AccessPolicyNode, ...]:
        return self.service_policies.get(service, ())


def frozen_mapping(items: dict) -> Mapping:
    return MappingProxyType(dict(sorted(items.items())))
