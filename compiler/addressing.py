"""How a caller reaches a callee: the one place that turns a platform into addresses.

Kubernetes services are reached by their cluster DNS name (one version of them through the
Service `<name>-<version>` that the kubernetes target emits beside the service), Cloud Foundry
apps by their internal route (container-to-container networking), vm services at their
endpoint addresses, external services at their hosts. Every target that needs an upstream
address asks here.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass

from compiler.evaluate import failover_tiers, placement_weight
from compiler.graph import Placement, Platform, ServiceNode
from compiler.model import CloudFoundryPlatform, KubernetesPlatform, Locality

# istiod's Service as VMs outside the cluster name it (resolved through their hosts file).
ISTIOD_HOST = "istiod.istio-system.svc"


@dataclass(frozen=True)
class Upstream:
    """Where to send traffic for one service (or one version of it) on one port."""

    hosts: tuple[str, ...]  # IP addresses or DNS names, in a stable order
    port: int
    # False when the address reaches every version alike (a DNS name in front of all of them),
    # so a version subset cannot be selected by address.
    version_aware: bool
    # True for a Cloud Foundry app called from outside its foundation: the connection is HTTPS
    # to the platform's router, which terminates it; mesh mTLS cannot cross the router.
    through_router: bool = False

    @property
    def needs_dns(self) -> bool:
        return not all(is_ip_address(host) for host in self.hosts)


@functools.lru_cache(maxsize=1 << 16)  # every caller of a service asks about the same hosts
def is_ip_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def version_service_name(service: str, version: str) -> str:
    """The Kubernetes Service that selects the pods of one version of a service."""
    return f"{service}-{version}"


def cluster_dns_name(name: str, namespace: str, cluster_domain: str) -> str:
    """A Kubernetes Service's DNS name: `<name>.<namespace>.svc.<clusterDomain>`."""
    return f"{name}.{namespace}.svc.{cluster_domain}"


def service_host(service: ServiceNode, version: str | None = None) -> str | None:
    """The DNS name of a kubernetes service (or of one version of it) in its own platform's
    cluster domain, or of a cloudfoundry app; None on vm platforms."""
    platform = service.platform
    if platform.kind == "kubernetes":
        name = version_service_name(service.name, version) if version else service.name
        return cluster_dns_name(name, service.namespace, platform.clusterDomain)
    if platform.kind == "cloudfoundry":
        return internal_route_host(service)
    return None


def istio_host(service: ServiceNode, caller: KubernetesPlatform, version: str | None = None) -> str:
    """The host by which Istio on kubernetes platform `caller` knows `service` (or, on
    kubernetes, the Service of one version of it): what its ServiceEntries, DestinationRules,
    routes and Sidecar egress name.

    A kubernetes service has its own cluster DNS name, in its own platform's cluster domain,
    exactly as a static Envoy reaches it (service_upstream); a Cloud Foundry app is reached on
    the platform's router; a vm service is named by its ServiceEntry on `caller`, in the
    caller's cluster domain.
    """
    if service.platform.kind == "cloudfoundry":
        return external_route_host(service)
    own = service_host(service, version)  # kubernetes: its own cluster domain
    return own if own is not None else cluster_dns_name(service.name, service.namespace, caller.clusterDomain)


CLOUD_FOUNDRY_ROUTER_PORT = 443


def external_route_host(service: ServiceNode) -> str:
    """A Cloud Foundry app's route on the platform's router (appsDomain)."""
    return f"{service.name}.{_cloudfoundry(service).appsDomain}"


def internal_route_host(service: ServiceNode) -> str:
    """A Cloud Foundry app's container-to-container route (internalDomain)."""
    return f"{service.name}.{_cloudfoundry(service).internalDomain}"


def _cloudfoundry(service: ServiceNode) -> CloudFoundryPlatform:
    platform = service.platform
    if platform.kind != "cloudfoundry":
        raise ValueError(f"{service.key} runs on {platform.kind} platform {platform.name!r}, not on Cloud Foundry")
    return platform


def reached_through_router(service: ServiceNode, caller_platform: str | None) -> bool:
    """Container networking admits only apps of the same foundation: anything else calls a
    Cloud Foundry app through its external route."""
    return service.platform.kind == "cloudfoundry" and caller_platform not in (None, service.platform.name)


def service_upstream(service: ServiceNode, port: int, version: str | None = None, *,
                     caller_platform: str | None = None) -> Upstream:
    """Addresses of `service` on `port` for a caller on `caller_platform`, narrowed to
    `version` where the platform can.

    On vm platforms the endpoints list the workloads; an endpoint without a version serves
    every version.
    """
    if reached_through_router(service, caller_platform):
        return Upstream((external_route_host(service),), CLOUD_FOUNDRY_ROUTER_PORT, version_aware=False,
                        through_router=True)
    host = service_host(service, version)
    if host is not None:
        return Upstream((host,), port, version_aware=service.platform.kind == "kubernetes")
    addresses = tuple(
        endpoint.address
        for endpoint in service.spec.endpoints
        if version is None or endpoint.version in (None, version)
    )
    return Upstream(addresses, port, version_aware=True)



@dataclass(frozen=True)
class LocalityUpstream:
    """The workloads of one placement as one caller reaches them: one Envoy LocalityLbEndpoints."""

    platform: str
    locality: Locality | None
    tier: int  # its failover tier: Envoy's priority
    upstream: Upstream
    sni: str | None  # the server name an east-west gateway forwards by, when reached through one
    weight: int | None = None  # its share of its tier (Placement.weight); None: shared by endpoints


def uses_localities(service: ServiceNode, caller: Platform) -> bool:
    """Whether a caller's endpoints of `service` need locality and priority: the service runs on
    several platforms, or the caller's and the service's platforms set a locality or network."""
    platforms = [caller, *(p.platform for p in service.placements)]
    return service.placed or any(p.locality is not None or p.network is not None for p in platforms)


def istio_sni(service: ServiceNode, port: int, version: str | None, platform: KubernetesPlatform) -> str:
    """The server name Istio's sidecars send to a callee and the east-west gateway of its
    cluster `platform` forwards by (AUTO_PASSTHROUGH): `outbound_.<port>_.<subset>_.<host>`,
    `_` for no subset. A version is a DestinationRule subset on the istio flavour, and the
    version's own Service `<service>-<version>` on the gateway-api flavour, which has no subsets."""
    if version is not None and platform.flavor == "gateway-api":
        name, subset = version_service_name(service.name, version), ""
    else:
        name, subset = service.name, version or ""
    return f"outbound_.{port}_.{subset}_.{cluster_dns_name(name, service.namespace, platform.clusterDomain)}"


def placement_upstream(service: ServiceNode, placement: Placement, port: int, version: str | None,
                       through_gateway: bool) -> Upstream:
    """The addresses of one placement's workloads: its east-west gateway, its cluster DNS name
    (narrowed to a version by the version's Service), or its vm endpoints of that version."""
    platform = placement.platform
    if through_gateway:
        gateway = getattr(platform, "eastWestGateway", None)
        if gateway is None:
            raise ValueError(f"platform {platform.name!r} has no east-west gateway")
        return Upstream((gateway.address,), gateway.port, version_aware=True)
    if isinstance(platform, KubernetesPlatform):
        name = version_service_name(service.name, version) if version else service.name
        return Upstream((cluster_dns_name(name, service.namespace, platform.clusterDomain),), port, version_aware=True)
    addresses = tuple(e.address for e in placement.endpoints if version is None or e.version in (None, version))
    return Upstream(addresses, port, version_aware=True)


def locality_upstreams(service: ServiceNode, port: int, version: str | None,
                       caller: Platform) -> list[LocalityUpstream]:
    """Every placement of `service` a caller on `caller` reaches, with its failover tier
    (docs/intents.md, Placements and failover; compiler.evaluate.failover_tiers)."""
    upstreams = []
    for tier, reached in enumerate(failover_tiers(caller, service)):
        for one in reached:
            placement = one.placement
            upstreams.append(LocalityUpstream(
                placement.platform.name, placement.platform.locality, tier,
                placement_upstream(service, placement, port, version, one.through_gateway),
                istio_sni(service, port, version, placement.platform)
                if one.through_gateway and isinstance(placement.platform, KubernetesPlatform) else None,
                placement_weight(service, placement)))
    return upstreams
