"""Object metadata every Kubernetes document meshc emits carries: who made it, from what."""

from __future__ import annotations

from collections.abc import Iterable

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "meshc"
SOURCE_ANNOTATION = "meshc.dev/source"
# Workloads of a service carry `app: <service>` (Istio's own convention, used by its telemetry);
# Services, WorkloadEntries and subsets select on it.
APP_LABEL = "app"


def metadata(name: str, namespace: str | None, sources: Iterable[str],
             labels: dict[str, str] | None = None) -> dict:
    """metadata of one object: name, namespace, the meshc label and the intent files it came from."""
    meta: dict = {
        "name": name,
        "labels": {**(labels or {}), MANAGED_BY_LABEL: MANAGED_BY},
        "annotations": {SOURCE_ANNOTATION: ",".join(sorted(set(sources)))},
    }
    if namespace is not None:
        meta["namespace"] = namespace
    return meta


def document(api_version: str, kind: str, meta: dict, **body: object) -> dict:
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, **body}
