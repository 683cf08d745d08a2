"""How a caller reaches a callee: the one place that turns a platform into addresses.

Kubernetes services are reached by their cluster DNS name, Cloud Foundry apps by their internal
route (container-to-container networking), vm services at their endpoint addresses, external
services at their hosts. Every target that needs an upstream address asks here.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from compiler.graph import ExternalNode, ServiceNode


@dataclass(frozen=True)
class Upstream:
    """Where to send traffic for one service (or one version of it) on one port."""

    hosts: tuple[str, ...]  # IP addresses or DNS names, in a stable order
    port: int
    # False when the address reaches every version alike (a DNS name in front of all of them),
    # so a version subset cannot be selected by address.
    version_aware: bool

    @property
    def needs_dns(self) -> bool:
        return not all(is_ip_address(host) for host in self.hosts)


def is_ip_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def service_host(service: ServiceNode) -> str | None:
    """The one DNS name of a kubernetes or cloudfoundry service; None on vm platforms."""
    platform = service.platform
    if platform.kind == "kubernetes":
        return f"{service.name}.{service.namespace}.svc.{platform.clusterDomain}"
    if platform.kind == "cloudfoundry":
        return f"{service.name}.{platform.internalDomain}"
    return None


def service_upstream(service: ServiceNode, port: int, version: str | None = None) -> Upstream:
    """Addresses of `service` on `port`, narrowed to `version` where the platform can.

    On vm platforms the endpoints list the workloads; an endpoint without a version serves
    every version.
    """
    host = service_host(service)
    if host is not None:
        return Upstream((host,), port, version_aware=False)
    addresses = tuple(
        endpoint.address
        for endpoint in service.spec.endpoints
        if version is None or endpoint.version in (None, version)
    )
    return Upstream(addresses, port, version_aware=True)


def external_upstream(external: ExternalNode, port: int) -> Upstream:
    return Upstream(tuple(external.spec.hosts), port, version_aware=False)
