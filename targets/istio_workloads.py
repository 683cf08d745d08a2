"""WorkloadGroup and WorkloadEntry documents that make a vm service's endpoints part of an Istio mesh.

Shared by the Kubernetes target (callees on VMs) and the VM target (istio-flavoured bundles).
Each endpoint becomes one WorkloadEntry carrying the labels the service's Kubernetes Service,
ServiceEntry and DestinationRule subsets select on; the WorkloadGroup is the template that
`istioctl x workload entry configure` and auto-registration use for new VMs of the service.
"""

from __future__ import annotations

from compiler.graph import MeshGraph, ServiceNode
from targets.kubernetes_meta import APP_LABEL, document, metadata
from targets.kubernetes_support import ISTIO_NETWORKING


def _template(service: ServiceNode) -> dict:
    # The generated sidecar listens on each service port at the workload's address, so the
    # endpoint port is the service port (the application's targetPort stays behind it on loopback).
    spec: dict = {
        "serviceAccount": service.identity.name,
        "ports": {port.name: port.port for port in service.spec.ports},
    }
    network = service.platform.network
    if network is not None:
        spec["network"] = network
    if service.platform.locality is not None:
        spec["locality"] = service.platform.locality.label()
    return spec


def workload_documents(graph: MeshGraph, service: ServiceNode) -> list[dict]:
    """The WorkloadGroup of a vm service, then one WorkloadEntry per endpoint in written order.
    A service on several platforms names them after the vm platform too (one group per placement)."""
    sources = (service.origin.file,)
    stem = f"{service.name}-{service.platform.name}" if service.placed else service.name
    group = document(
        ISTIO_NETWORKING,
        "WorkloadGroup",
        metadata(stem, service.namespace, sources),
        spec={"metadata": {"labels": {APP_LABEL: service.name}}, "template": _template(service)},
    )
    entries = []
    for number, endpoint in enumerate(service.spec.endpoints, start=1):
        labels = {APP_LABEL: service.name}
        if endpoint.version is not None:
            labels.update(service.spec.versions[endpoint.version].labels)
        entries.append(document(
            ISTIO_NETWORKING,
            "WorkloadEntry",
            metadata(f"{stem}-{number}", service.namespace, sources),
            spec={"address": endpoint.address, "labels": labels, **_template(service)},
        ))
    return [group, *entries]
