"""Object metadata every Kubernetes document meshc emits carries: who made it, from what."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote, unquote

from compiler.artifact import SOURCE_ANNOTATION
from compiler.graph import GatewayNode

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "meshc"
# Workloads of a service carry `app: <service>` (Istio's own convention, used by its telemetry);
# Services, WorkloadEntries and subsets select on it.
APP_LABEL = "app"


def gateway_selector(gateway: GatewayNode) -> dict[str, str]:
    """The labels of a gateway's workloads: its deployment's selector, else `app: <gateway>`."""
    if gateway.spec.deployment is not None:
        return dict(gateway.spec.deployment.selector)
    return {APP_LABEL: gateway.key.name}


def source_list(sources: Iterable[str]) -> str:
    """The value of the source annotation: the intent files, sorted, comma-separated, each
    percent-encoded beyond letters, digits and `/._-~` (a file name may hold a comma)."""
    return ",".join(quote(source, safe="/") for source in sorted(set(sources)))


def parse_source_list(value: str) -> list[str]:
    """The intent files a source annotation names (inverse of source_list)."""
    return [unquote(source) for source in value.split(",")] if value else []


def metadata(name: str, namespace: str | None, sources: Iterable[str],
             labels: dict[str, str] | None = None) -> dict:
    """metadata of one object: name, namespace, the meshc label and the intent files it came from."""
    meta: dict = {
        "name": name,
        "labels": {**(labels or {}), MANAGED_BY_LABEL: MANAGED_BY},
        "annotations": {SOURCE_ANNOTATION: source_list(sources)},
    }
    if namespace is not None:
        meta["namespace"] = namespace
    return meta


def document(api_version: str, kind: str, meta: dict, **body: object) -> dict:
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, **body}
