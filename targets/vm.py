"""VM bundles: per service on a vm platform, what an operator installs on its machines.

Layout (see docs/targets/vm.md), one directory per service, one sub-directory per endpoint:
  flavor static:  vm/<platform>/<service>/{README.md, install.sh, meshc-envoy-<service>.service}
                  vm/<platform>/<service>/endpoints/<address>/envoy.yaml
  flavor istio:   vm/<platform>/<service>/{README.md, install.sh, hosts, workloadgroup.yaml}
                  vm/<platform>/<service>/endpoints/<address>/{cluster.env, mesh.yaml}
Every endpoint gets its own files because its address is part of them: the sidecar's inbound
listeners bind that address (static) and ISTIO_SVC_IP names it (istio).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Container

import orjson

from compiler import codes
from compiler.addressing import ISTIOD_HOST
from compiler.artifact import Artifact, service_workload
from compiler.diagnostics import Related, Report
from compiler.graph import MeshGraph, ServiceNode, VmPlatform
from compiler.serialize import to_json, to_yaml, to_yaml_documents
from targets.envoylib import serialised_sidecar, sidecar_sources, workload_certificate_dir
from targets.istio_workloads import workload_documents
from targets.kubernetes_meta import APP_LABEL
from targets.templating import Encoded, Unencodable, comment_text, markdown_code, render, shell_word

TARGET = "vm"
ENVOY_BINARY = "/usr/local/bin/envoy"
ENVOY_USER = "meshc-envoy"
CONFIG_ROOT = "/etc/meshc"
# Envoy's recommended floor for open files: each connection holds a downstream and an upstream.
OPEN_FILES = 65536
# What `istioctl x workload entry configure` leaves out of inbound capture: ssh, Envoy's
# Prometheus port, the agent's health and status ports.
ISTIO_LOCAL_EXCLUDE_PORTS = "22,15090,15021,15020"
# The cluster ID istiod uses unless installed with values.global.multiCluster.clusterName.
ISTIO_CLUSTER_ID = "Kubernetes"
CANONICAL_NAME_LABEL = "service.istio.io/canonical-name"
CANONICAL_REVISION_LABEL = "service.istio.io/canonical-revision"

_HOST_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", re.IGNORECASE)
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9._/-]+$")
_ENV_KEY = re.compile(r"^[A-Z_][A-Z0-9_]*$")


# ---------------------------------------------------------------------------------------------
# Values, validated for the text formats they go into


def endpoint_directory(address: str) -> str | None:
    """The bundle directory name of an endpoint, or None for an address that is neither an IP
    address nor a host name (IPv6 colons become dashes: a path segment holds no colon)."""
    try:
        name = str(ipaddress.ip_address(address)).replace(":", "-")
        return name if name[0].isalnum() else f"0{name}"  # ::1 is 0--1: a segment starts with a digit
    except ValueError:
        pass
    if len(address) <= 253 and _HOST_NAME.fullmatch(address):
        return address.lower()
    return None


def unit_path(value: str) -> str:
    """An absolute path for a unit file line: no spaces, quotes, `%` specifiers or `$` expansion."""
    if not _SAFE_PATH.fullmatch(value) or "/../" in f"{value}/" or "/./" in f"{value}/":
        raise ValueError(f"{value!r} cannot be written into a systemd unit unquoted")
    return value


def env_assignment(key: str, value: str) -> Encoded:
    """`KEY='value'`, as istioctl writes cluster.env (always single-quoted; `'` as '\\'')."""
    if not _ENV_KEY.fullmatch(key):
        raise ValueError(f"{key!r} is not an environment variable name")
    if "\x00" in value or "\n" in value:
        raise Unencodable(f"the value of {key} holds a character cluster.env cannot carry")
    return Encoded(f"{key}='" + value.replace("'", "'\\''") + "'")


# ---------------------------------------------------------------------------------------------
# Which services and endpoints get bundles


def _platform_index(graph: MeshGraph, platform: VmPlatform) -> int:
    return next(i for i, p in enumerate(graph.mesh.platforms) if p.name == platform.name)


def _bundled_services(graph: MeshGraph, platform: VmPlatform, report: Report) -> list[ServiceNode]:
    """Services of the platform, one per name (MESH440 for a second one)."""
    by_name: dict[str, ServiceNode] = {}
    for service in graph.placed_on(platform.name):
        first = by_name.get(service.name)
        if first is not None:
            report.add(
                codes.VM_NAME_COLLISION,
                f"services {first.key} and {service.key} would share bundle vm/{platform.name}/{service.name} "
                f"and systemd unit {unit_name(service)}",
                graph.sources.locate(service.origin, "name"),
                related=(Related(graph.sources.locate(first.origin, "name"), "the other service"),),
            )
            continue
        by_name[service.name] = service
    return [by_name[name] for name in sorted(by_name)]


def _endpoints(graph: MeshGraph, service: ServiceNode, report: Report) -> list[tuple[int, str, str]]:
    """(index, address, directory) of each usable endpoint; MESH441 for the others."""
    usable = []
    seen: set[str] = set()
    for index, endpoint in enumerate(service.spec.endpoints):
        directory = endpoint_directory(endpoint.address)
        if directory is None:
            problem = f"endpoint address {endpoint.address!r} is neither an IP address nor a host name"
        elif directory in seen:
            problem = f"endpoint address {endpoint.address!r} of service {service.key} is listed twice"
        else:
            seen.add(directory)
            usable.append((index, endpoint.address, directory))
            continue
        report.add(codes.VM_ENDPOINT_ADDRESS, problem,
                   graph.sources.locate(service.origin, "endpoints", index, "address"))
    return usable


def unit_name(service: ServiceNode) -> str:
    return f"meshc-envoy-{service.name}.service"


# ---------------------------------------------------------------------------------------------
# flavor static


# A DataSource file in the serialised bootstrap; the value is a JSON string (escapes included).
_DATA_SOURCE_FILE = re.compile(rb'"filename": ("(?:[^"\\]|\\.)*")')


def certificate_files(serialised_bootstrap: bytes) -> list[str]:
    """The files a files-mode bootstrap reads, as the envoy target named them."""
    return sorted({json.loads(found) for found in _DATA_SOURCE_FILE.findall(serialised_bootstrap)})


def listen_ports(bootstrap: dict) -> list[int]:
    return sorted({listener["address"]["socket_address"]["port_value"]
                   for listener in bootstrap.get("static_resources", {}).get("listeners", [])
                   if "socket_address" in listener.get("address", {})})


def config_dir(service: ServiceNode) -> str:
    return f"{CONFIG_ROOT}/{service.namespace}/{service.name}"


def render_unit(service: ServiceNode, needs_low_ports: bool, envoy_binary: str = ENVOY_BINARY) -> bytes:
    """The systemd unit running the service's sidecar; `envoy_binary` lets tests verify it."""
    return render(
        "vm-envoy.service.j2",
        service=str(service.key),
        source=comment_text(service.origin.file),
        user=ENVOY_USER,
        envoy=unit_path(envoy_binary),
        config=unit_path(f"{config_dir(service)}/envoy.yaml"),
        open_files=OPEN_FILES,
        low_ports=needs_low_ports,
    )


def _template_values(service: ServiceNode, flavor: str, endpoints: list[tuple[int, str, str]]) -> dict:
    """What the templates of both flavors show, encoded for them."""
    return {
        "flavor": flavor,
        "service": str(service.key),
        "platform": service.platform.name,
        "source": comment_text(service.origin.file),
        "source_code": markdown_code(service.origin.file),
        "endpoints": [(shell_word(address), shell_word(directory)) for _, address, directory in endpoints],
    }


def _static_bundle(graph: MeshGraph, platform: VmPlatform, service: ServiceNode, base: str,
                   report: Report) -> list[tuple[str, bytes]]:
    endpoints = _endpoints(graph, service, report)
    files: list[tuple[str, bytes]] = []
    certificates: set[str] = set()
    low_ports = False
    for _, address, directory in endpoints:
        content = serialised_sidecar(graph, service, report, address=address)
        certificates.update(certificate_files(content))
        low_ports |= any(port < 1024 for port in listen_ports(orjson.loads(content)))  # 24 KB each: orjson
        files.append((f"{base}/endpoints/{directory}/envoy.yaml", content))
    settings = platform.certificates
    cert_dir = workload_certificate_dir(settings, service.key) if settings.mode == "files" else None
    owned = sorted(f for f in certificates if cert_dir is not None and f.startswith(f"{cert_dir}/"))
    values = {
        **_template_values(service, "static", endpoints),
        "unit": unit_name(service),
        "user": ENVOY_USER,
        "config_dir": shell_word(config_dir(service)),
        "certificate_mode": settings.mode,
        "certificate_dir": shell_word(cert_dir) if cert_dir else "",
        "certificate_dir_code": markdown_code(cert_dir) if cert_dir else "",
        "certificate_files": [markdown_code(file) for file in owned],
        "system_files": [markdown_code(file) for file in sorted(certificates - set(owned))],
        "sds_socket": markdown_code(settings.sdsSocket) if settings.mode == "sds" else "",
        "envoy": ENVOY_BINARY,
    }
    files += [
        (f"{base}/{unit_name(service)}", render_unit(service, low_ports)),
        (f"{base}/install.sh", render("vm-install.sh.j2", **values)),
        (f"{base}/README.md", render("vm-README.md.j2", **values)),
    ]
    return files


# ---------------------------------------------------------------------------------------------
# flavor istio


def _canonical(labels: dict[str, str], name: str) -> tuple[str, str]:
    """Istio's canonical service and revision from workload labels (pkg/config/labels)."""
    service = labels.get(CANONICAL_NAME_LABEL) or labels.get("app.kubernetes.io/name") or labels.get("app") or name
    revision = labels.get(CANONICAL_REVISION_LABEL) or labels.get("app.kubernetes.io/version") or \
        labels.get("version") or "latest"
    return service, revision


def proxy_metadata(graph: MeshGraph, platform: VmPlatform, service: ServiceNode,
                   labels: dict[str, str]) -> dict[str, str]:
    """proxyMetadata as `istioctl x workload entry configure` derives it from a WorkloadGroup."""
    all_labels = {APP_LABEL: service.name, **labels}
    canonical_service, canonical_revision = _canonical(all_labels, service.name)
    all_labels[CANONICAL_NAME_LABEL] = canonical_service
    all_labels[CANONICAL_REVISION_LABEL] = canonical_revision
    pod_ports = [{"name": p.name, "containerPort": p.port} for p in sorted(service.spec.ports, key=lambda p: p.name)]
    return {
        "CANONICAL_REVISION": canonical_revision,
        "CANONICAL_SERVICE": canonical_service,
        "ISTIO_META_CLUSTER_ID": ISTIO_CLUSTER_ID,
        "ISTIO_META_DNS_CAPTURE": "true",
        "ISTIO_META_MESH_ID": "",
        "ISTIO_META_NETWORK": platform.network or "",
        "ISTIO_META_POD_PORTS": json.dumps(pod_ports, separators=(",", ":")),
        "ISTIO_META_WORKLOAD_NAME": service.name,
        "ISTIO_METAJSON_LABELS": json.dumps(dict(sorted(all_labels.items())), separators=(",", ":")),
        "POD_NAMESPACE": service.namespace,
        "SERVICE_ACCOUNT": service.identity.name,
        "TRUST_DOMAIN": graph.trust_domain(platform),
    }


def cluster_env(metadata: dict[str, str], service: ServiceNode, address: str) -> bytes:
    """cluster.env: proxyMetadata plus the WorkloadGroup overrides, sorted as istioctl writes it."""
    values = {
        **metadata,
        "ISTIO_INBOUND_PORTS": ",".join(str(p.port) for p in service.spec.ports),
        "ISTIO_LOCAL_EXCLUDE_PORTS": ISTIO_LOCAL_EXCLUDE_PORTS,
        "ISTIO_NAMESPACE": service.namespace,
        "ISTIO_SERVICE": f"{service.name}.{service.namespace}",
        "ISTIO_SERVICE_CIDR": "*",
        "ISTIO_SVC_IP": address,
        "SERVICE_ACCOUNT": service.identity.name,
    }
    lines = sorted(env_assignment(key, value) for key, value in values.items())
    return render("vm-cluster.env.j2", lines=lines)


def _report_unused_certificates(graph: MeshGraph, platform: VmPlatform, report: Report) -> None:
    if "certificates" in platform.model_fields_set:
        report.add(
            codes.VM_CERTIFICATES_IGNORED,
            f"vm platform {platform.name!r} is of flavor istio: the Istio agent obtains certificates from "
            f"{platform.controlPlane} and `certificates` is not used",
            graph.sources.locate(graph.mesh_origin, "platforms", _platform_index(graph, platform), "certificates",
                                 key=True),
        )


def _istio_bundle(graph: MeshGraph, platform: VmPlatform, service: ServiceNode, base: str,
                  report: Report) -> list[tuple[str, bytes]]:
    control_plane = platform.controlPlane
    assert control_plane is not None  # flavor istio requires it (VmPlatform's validator)
    endpoints = _endpoints(graph, service, report)
    files: list[tuple[str, bytes]] = []
    for index, address, directory in endpoints:
        endpoint = service.spec.endpoints[index]
        labels = dict(service.spec.versions[endpoint.version].labels) if endpoint.version else {}
        metadata = proxy_metadata(graph, platform, service, labels)
        mesh = {"defaultConfig": {"discoveryAddress": control_plane, "proxyMetadata": metadata}}
        files.append((f"{base}/endpoints/{directory}/cluster.env", cluster_env(metadata, service, address)))
        files.append((f"{base}/endpoints/{directory}/mesh.yaml", to_yaml(mesh)))
    control_host = control_plane.rsplit(":", 1)[0]
    values = {
        **_template_values(service, "istio", endpoints),
        "namespace": service.namespace,
        "service_account": service.identity.name,
        "control_plane": control_plane,
        "control_host": control_host,
        "istiod_host": ISTIOD_HOST,
    }
    files += [
        (f"{base}/workloadgroup.yaml", to_yaml_documents(workload_documents(graph, service))),
        (f"{base}/hosts", render("vm-hosts.j2", **values)),
        (f"{base}/install.sh", render("vm-install.sh.j2", **values)),
        (f"{base}/README.md", render("vm-README.md.j2", **values)),
    ]
    return files


# ---------------------------------------------------------------------------------------------


def emit(graph: MeshGraph, report: Report, workloads: Container[str] | None = None) -> list[Artifact]:
    artifacts: list[Artifact] = []
    for platform in graph.platforms.values():
        if platform.kind != "vm":
            continue
        services = graph.placed_on(platform.name)
        if workloads is not None and not any(service_workload(s.key) in workloads for s in services):
            continue
        if platform.flavor == "istio":
            _report_unused_certificates(graph, platform, report)
        for service in _bundled_services(graph, platform, report):
            workload = service_workload(service.key)
            if workloads is not None and workload not in workloads:
                continue
            base = f"{TARGET}/{platform.name}/{service.name}"
            bundle = (_istio_bundle if platform.flavor == "istio" else _static_bundle)(graph, platform, service, base,
                                                                                    report)
            sources = sidecar_sources(graph, service) if platform.flavor == "static" else \
                tuple(sorted({graph.mesh_origin.file, service.origin.file}))
            artifacts += [Artifact(path, content, TARGET, workload, sources) for path, content in bundle]
    return artifacts


def patch_problem(kind: str, before: dict, after: dict) -> tuple[codes.Code, str] | None:
    """What a Patch (compiler.patches) may not change in a bundle's bootstrap: the install
    script and the unit were written from the unpatched one (its low ports, its certificates)."""
    if kind != "EnvoyBootstrap":
        return None
    if listen_ports(before) != listen_ports(after):
        return codes.PATCHED_VM_BOOTSTRAP, (f"the listen ports change from {listen_ports(before)} to "
                                            f"{listen_ports(after)}, which the bundle's unit and install script "
                                            "were written for")
    if certificate_files(to_json(before)) != certificate_files(to_json(after)):
        return codes.PATCHED_VM_BOOTSTRAP, ("the certificate files it reads change, which the bundle's install "
                                            "script was written for")
    return None

