"""`meshc import`: Istio, Gateway API and core Kubernetes YAML in, meshc intents out.

Every field of every input object is either carried into an intent or reported where it
stands (file:line:col): an importer that drops what it does not understand would turn a
cluster's behaviour into a different one without a word. Input is read with meshc's own
positioned loader, so hostile YAML (alias bombs, duplicate keys, tags, huge files) gets the
same located diagnostics as intents do. docs/cli.md lists what maps to what.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler import codes
from compiler.diagnostics import Location, Report
from compiler.loader import MAX_FILE_BYTES
from compiler.model import LABEL, LOAD_BALANCER_POLICIES, RETRIABLE_STATUS_CODES
from compiler.yamlload import YamlDocument, YamlProblem, load_documents

ISTIO_GROUPS = ("networking.istio.io/", "security.istio.io/")
GATEWAY_API_GROUP = "gateway.networking.k8s.io/"
PLATFORM = "cluster"
DEFAULT_NAMESPACE = "default"
# metadata carries no routing or security meaning: not reported when left behind
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
IGNORED_METADATA = frozenset({"labels", "annotations", "uid", "resourceVersion", "generation",
                              "creationTimestamp", "managedFields", "ownerReferences", "finalizers"})
_NAME = re.compile(rf"^{LABEL}$")


# --------------------------------------------------------------------------------------------
# Reading one object: every key taken is recorded; what is left is reported where it stands


@dataclass
class Source:
    file: str
    document: YamlDocument
    kind: str
    name: str
    namespace: str
    taken: set[tuple[Any, ...]] = field(default_factory=set)

    @property
    def label(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"

    def locate(self, *path: Any, key: bool = False) -> Location:
        line, column = self.document.locate(path, key=key)
        return Location(self.file, line, column)

    def peek(self, *path: Any, default: Any = None) -> Any:
        """The value at `path`, not taken: what is under it is still reported unless taken."""
        node = self.document.data
        for part in path:
            in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
            if in_list or (isinstance(node, dict) and part in node):
                node = node[part]
            else:
                return default
        return node

    def get(self, *path: Any, default: Any = None) -> Any:
        """The value at `path`, taken whole: it will not be reported as left behind."""
        value = self.peek(*path, default=default)
        self.taken.add(path)
        return value

    def items(self, *path: Any) -> list[tuple[int, Any]]:
        value = self.peek(*path, default=[])
        return list(enumerate(value)) if isinstance(value, list) else []

    def leftovers(self) -> list[tuple[Any, ...]]:
        """Paths of keys nothing took, outermost first (a left mapping is one path, not many)."""
        out: list[tuple[Any, ...]] = []

        def walk(node: Any, path: tuple[Any, ...]) -> None:
            if path in self.taken:
                return
            below = any(t[: len(path)] == path and len(t) > len(path) for t in self.taken)
            if not below:
                out.append(path)
                return
            children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
            for key, value in children:
                walk(value, (*path, key))

        for key, value in self.document.data.items():
            if key in ("apiVersion", "kind", "status"):
                continue
            if key == "metadata" and isinstance(value, dict):
                for meta_key, meta_value in value.items():
                    if meta_key not in IGNORED_METADATA:
                        walk(meta_value, ("metadata", meta_key))
                continue
            walk(value, (key,))
        return out


# --------------------------------------------------------------------------------------------
# What is being built


@dataclass
class Intent:
    kind: str
    name: str
    namespace: str
    body: dict[str, Any]
    sources: list[Source]


@dataclass
class Imported:
    intents: list[Intent]
    report: Report
    texts: dict[str, str]


def _word(text: Any) -> str | None:
    """A meshc name from a Kubernetes one, or None when it cannot be one."""
    if not isinstance(text, str):
        return None
    name = text.lower()
    return name if _NAME.fullmatch(name) else None


class Importer:
    def __init__(self, report: Report) -> None:
        self.report = report
        self.sources: list[Source] = []
        self.services: dict[tuple[str, str], Intent] = {}
        self.externals: dict[tuple[str, str], Intent] = {}
        self.intents: list[Intent] = []
        self.mesh: dict[str, Any] = {}
        self.mesh_sources: list[Source] = []
        self.namespaces: list[str] = []
        self.gateways: dict[str, Intent] = {}
        # (namespace, service account) -> the imported Service whose workloads run as it
        self.accounts: dict[tuple[str, str], Intent] = {}
        self.seen: dict[tuple[str, str, str, str], Location] = {}

    # -- reporting --------------------------------------------------------------------------

    def drop(self, source: Source, path: tuple[Any, ...], why: str) -> None:
        """Report a field that is not imported (taking it, so it is reported once)."""
        source.taken.add(path)
        self.report.add(codes.IMPORT_NOT_IMPORTED, f"{source.label}: {_dotted(path)}: {why}",
                        source.locate(*path, key=True))

    def unresolved(self, source: Source, path: tuple[Any, ...], why: str) -> None:
        self.report.add(codes.IMPORT_UNRESOLVED, f"{source.label}: {why}", source.locate(*path))

    # -- reading ----------------------------------------------------------------------------

    def read(self, file: str, text: str) -> None:
        try:
            documents = load_documents(text)
        except YamlProblem as problem:
            self.report.add(problem.code, problem.message, Location(file, problem.line, problem.column))
            return
        for document in documents:
            data = document.data
            if data is None:
                continue
            where = Location(file, document.line, 1)
            if not isinstance(data, dict) or not isinstance(data.get("kind"), str) \
                    or not isinstance(data.get("apiVersion"), str):
                self.report.add(codes.IMPORT_INVALID, "not a Kubernetes object (a mapping with apiVersion and kind)",
                                where)
                continue
            if data["kind"] == "List" and isinstance(data.get("items"), list):
                self.report.add(codes.IMPORT_UNKNOWN_KIND, "a List: import its items as separate documents", where)
                continue
            metadata = data.get("metadata")
            name = _word(metadata.get("name")) if isinstance(metadata, dict) else None
            namespace = _word(metadata.get("namespace", DEFAULT_NAMESPACE)) if isinstance(metadata, dict) else None
            if name is None or namespace is None:
                self.report.add(codes.IMPORT_INVALID,
                                f"{data['kind']}: metadata.name and metadata.namespace must be DNS-1123 labels",
                                Location(file, *document.locate(("metadata",))))
                continue
            identity = (data["apiVersion"].split("/")[0], data["kind"], namespace, name)
            if identity in self.seen:
                first = self.seen[identity]
                self.report.add(codes.IMPORT_INVALID,
                                f"{data['kind']} {namespace}/{name} is defined twice (first at {first}): "
                                "import one of them", Location(file, *document.locate(("metadata", "name"))))
                continue
            self.seen[identity] = Location(file, document.line, 1)
            source = Source(file, document, data["kind"], name, namespace)
            source.get("metadata", "name")
            source.get("metadata", "namespace")
            if self._reader(data["apiVersion"], data["kind"]) is None:
                self.report.add(codes.IMPORT_UNKNOWN_KIND,
                                f"{data['apiVersion']} {data['kind']} {namespace}/{name} is not imported "
                                "(meshc imports Istio networking and security kinds, Gateway API routes and "
                                "gateways, core Services and ServiceAccounts, workloads' service accounts)",
                                Location(file, *document.locate(("kind",))))
                continue
            self.sources.append(source)
            self.namespaces.append(namespace)

    def _reader(self, api_version: str, kind: str) -> Callable[[Source], None] | None:
        if api_version == "v1" and kind in ("Service", "ServiceAccount"):
            return {"Service": self.core_service, "ServiceAccount": self.service_account}[kind]
        if api_version == "apps/v1" and kind in WORKLOAD_KINDS:
            return self.workload
        if api_version.startswith(ISTIO_GROUPS):
            return {
                "VirtualService": self.virtual_service, "DestinationRule": self.destination_rule,
                "Gateway": self.istio_gateway, "ServiceEntry": self.service_entry,
                "PeerAuthentication": self.peer_authentication, "AuthorizationPolicy": self.authorization_policy,
                "RequestAuthentication": self.request_authentication, "Sidecar": self.sidecar,
            }.get(kind)
        if api_version.startswith(GATEWAY_API_GROUP):
            return {
                "Gateway": self.api_gateway, "HTTPRoute": self.http_route, "GRPCRoute": self.grpc_route,
                "TLSRoute": self.tls_route, "TCPRoute": self.tcp_route,
            }.get(kind)
        return None

    def run(self) -> list[Intent]:
        # Services first (every other kind refers to them), then what refines them, then routes
        # (workloads before the ServiceAccounts and AuthorizationPolicies that name their accounts)
        order = ["Service", *WORKLOAD_KINDS, "ServiceEntry", "ServiceAccount", "DestinationRule",
                 "PeerAuthentication", "Sidecar", "AuthorizationPolicy", "RequestAuthentication", "Gateway",
                 "VirtualService", "HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute"]
        for source in sorted(self.sources, key=lambda s: order.index(s.kind)):
            reader = self._reader(source.document.data["apiVersion"], source.kind)
            assert reader is not None
            try:
                reader(source)
            except (TypeError, AttributeError, ValueError, KeyError) as error:
                # a field of the wrong shape (a string where the kind has a list...): the object
                # is not what its kind says; an error, so nothing is written from a half-read object
                self.report.add(codes.IMPORT_INVALID, f"{source.label}: a field has the wrong shape ({error})",
                                source.locate("kind"))
                continue
            for path in source.leftovers():
                self.report.add(codes.IMPORT_NOT_IMPORTED,
                                f"{source.label}: {_dotted(path)} has no meshc equivalent; not imported",
                                source.locate(*path, key=True))
        self.validate(self.intents)
        return self.intents

    def validate(self, intents: list[Intent]) -> None:
        """Each intent written must pass meshc's own validation; what does not is an error here."""
        from pydantic import ValidationError

        from compiler.model import KIND_MODELS

        for intent in intents:
            document = {"apiVersion": "meshc/v1", "kind": intent.kind, "name": intent.name, **intent.body}
            try:
                KIND_MODELS[intent.kind].model_validate(document)
            except ValidationError as error:
                first = error.errors(include_url=False)[0]
                where = ".".join(str(p) for p in first["loc"])
                source = intent.sources[-1]  # the last object that shaped it
                self.report.add(codes.IMPORT_INVALID, f"{source.label}: becomes an invalid {intent.kind} "
                                f"({where}: {first['msg']})", source.locate("kind"))

    # -- references -------------------------------------------------------------------------

    def service_of_host(self, host: Any, namespace: str) -> tuple[str, Intent] | None:
        """The Service or ExternalService a host names: `reviews`, `reviews.ns` or its cluster DNS name."""
        if not isinstance(host, str):
            return None
        for intent in self.externals.values():
            if host in intent.body["hosts"]:
                return self.ref(intent, namespace), intent
        parts = host.split(".")
        name, ns = parts[0], parts[1] if len(parts) > 1 else namespace
        if len(parts) > 2 and parts[2] != "svc":
            return None
        service = self.services.get((ns, name))
        return (self.ref(service, namespace), service) if service else None

    @staticmethod
    def ref(intent: Intent, namespace: str) -> str:
        return intent.name if intent.namespace == namespace else f"{intent.namespace}/{intent.name}"

    def add(self, intent: Intent) -> Intent:
        self.intents.append(intent)
        return intent

    # -- core -------------------------------------------------------------------------------

    def core_service(self, source: Source) -> None:
        ports = []
        for index, _ in source.items("spec", "ports"):
            number = source.get("spec", "ports", index, "port")
            port_name = _word(source.get("spec", "ports", index, "name")) or f"port-{number}"
            protocol = _protocol(source.get("spec", "ports", index, "appProtocol"), port_name)
            source.get("spec", "ports", index, "protocol")  # TCP/UDP/SCTP: meshc's protocol is above it
            entry: dict[str, Any] = {"name": port_name, "port": number, "protocol": protocol}
            target = source.get("spec", "ports", index, "targetPort")
            if isinstance(target, int) and target != number:
                entry["targetPort"] = target
            elif isinstance(target, str):
                self.drop(source, ("spec", "ports", index, "targetPort"), "a named targetPort is not imported")
            ports.append(entry)
        for ignored in ("selector", "type", "clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy",
                        "sessionAffinity", "internalTrafficPolicy"):
            source.get("spec", ignored)  # how Kubernetes runs the Service, not what the mesh does with it
        body = {"platform": PLATFORM, "ports": ports}
        self.services[(source.namespace, source.name)] = self.add(
            Intent("Service", source.name, source.namespace, body, [source]))

    def workload(self, source: Source) -> None:
        """A Deployment, StatefulSet or DaemonSet: the service account its pods run as is the
        identity of the Service selecting them (`app: <service>`); the rest is how Kubernetes
        runs them, not mesh configuration."""
        at = ("spec", "template", "metadata", "labels")
        labels = source.get(*at)
        # a pod without serviceAccountName runs as its namespace's `default` account
        account = source.get("spec", "template", "spec", "serviceAccountName", default="default")
        source.taken.add(("spec",))
        app = labels.get("app") if isinstance(labels, dict) else None
        service = self.services.get((source.namespace, app)) if isinstance(app, str) else None
        if service is None:
            self.unresolved(source, at if labels is not None else ("kind",),
                            f"its pods' labels {labels!r} select no imported Service (meshc selects "
                            "by `app: <service>`); their service account is not imported")
            return
        name = _word(account)
        known = service.body.get("serviceAccount")
        if name is None or (known is not None and known != name):
            why = (f"{account!r} is no DNS-1123 name" if name is None else
                   f"other workloads of Service {service.namespace}/{service.name} run as {known!r}, and a "
                   "meshc Service has one account")
            self.drop(source, ("spec", "template", "spec", "serviceAccountName"), why)
            return
        # written even when it is the service's name: it declares the chart's account (MESH427)
        service.body["serviceAccount"] = name
        service.sources.append(source)
        self.accounts.setdefault((source.namespace, name), service)

    def service_account(self, source: Source) -> None:
        if (source.namespace, source.name) not in self.accounts:
            self.report.add(codes.IMPORT_NOT_IMPORTED,
                            f"{source.label}: no imported workload runs as this account; not imported",
                            source.locate("kind"))

    def service_of_principal(self, principal: str) -> Intent | None:
        """The Service whose identity an Istio principal (`<trust domain>/ns/<ns>/sa/<account>`) is."""
        match = re.match(r"^[^/]+/ns/([^/]+)/sa/([^/]+)$", principal)
        if match is None:
            return None
        key = (match.group(1), match.group(2))
        if key in self.accounts:
            return self.accounts[key]
        service = self.services.get(key)  # no workload imported: meshc's default, the Service's name
        return service if service is not None and "serviceAccount" not in service.body else None

    # -- Istio ------------------------------------------------------------------------------

    def destination_rule(self, source: Source) -> None:
        found = self.service_of_host(source.get("spec", "host"), source.namespace)
        if found is None or found[1].kind != "Service":
            self.refines_external(source, found)
            return
        service = found[1]
        service.sources.append(source)
        versions = {}
        for index, _ in source.items("spec", "subsets"):
            name = _word(source.get("spec", "subsets", index, "name"))
            labels = source.get("spec", "subsets", index, "labels", default={})
            if name is None or not isinstance(labels, dict):
                self.drop(source, ("spec", "subsets", index), "a subset needs a DNS-1123 name and labels")
                continue
            versions[name] = {"labels": dict(labels)} if labels else {}
            if source.get("spec", "subsets", index, "trafficPolicy") is not None:
                self.drop(source, ("spec", "subsets", index, "trafficPolicy"), "per-subset traffic policy")
        if versions:
            service.body["versions"] = versions
        resilience = self.traffic_policy(source, ("spec", "trafficPolicy"))
        if resilience:
            service.body["resilience"] = resilience
        if source.get("spec", "exportTo") is not None:
            self.drop(source, ("spec", "exportTo"), "meshc scopes visibility by declared calls")

    def refines_external(self, source: Source, found: tuple[str, Intent] | None) -> None:
        if found is None:
            self.unresolved(source, ("spec", "host"), f"host {source.get('spec', 'host')!r} is no imported "
                            "Service or ServiceEntry; the DestinationRule is not imported")
            source.taken.add(("spec",))
            return
        external = found[1]
        external.sources.append(source)
        for index, _ in source.items("spec", "trafficPolicy", "portLevelSettings"):
            at = ("spec", "trafficPolicy", "portLevelSettings", index)
            number = source.get(*at, "port", "number")
            if source.get(*at, "tls", "mode") == "SIMPLE":
                tls: dict[str, Any] = {"originate": True}
                port_sni = source.get(*at, "tls", "sni")
                if isinstance(port_sni, str):
                    tls["sni"] = port_sni
                ports = [p for p in external.body.get("ports", []) if p["port"] == number]
                if ports and ports[0]["protocol"] != "tls":
                    ports[0]["tls"] = tls
                else:
                    # TLS originated towards an HTTPS port (Istio's egress samples route port 80
                    # there): meshc's service-wide origination, plain ports to the tls port
                    external.body["tls"] = tls
        if source.get("spec", "trafficPolicy", "tls", "mode") == "SIMPLE":
            external.body["tls"] = {"originate": True}
        sni = source.get("spec", "trafficPolicy", "tls", "sni")
        if isinstance(sni, str):
            external.body.setdefault("tls", {"originate": True})["sni"] = sni
        if source.get("spec", "trafficPolicy", "loadBalancer", "simple") is not None:
            self.drop(source, ("spec", "trafficPolicy", "loadBalancer"), "load balancing of an external service")

    def traffic_policy(self, source: Source, at: tuple[Any, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        simple = source.get(*at, "loadBalancer", "simple")
        # LEAST_CONN: Istio's deprecated name of LEAST_REQUEST
        balancers = {enum: word for word, enum in LOAD_BALANCER_POLICIES.items()} | {"LEAST_CONN": "least-request"}
        if simple in balancers:
            out["loadBalancer"] = balancers[simple]
        header = source.get(*at, "loadBalancer", "consistentHash", "httpHeaderName")
        if isinstance(header, str):
            out["loadBalancer"] = {"ringHash": {"header": header.lower()}}
        breaker = {
            "maxConnections": source.get(*at, "connectionPool", "tcp", "maxConnections"),
            "maxPendingRequests": source.get(*at, "connectionPool", "http", "http1MaxPendingRequests"),
            "maxRequests": source.get(*at, "connectionPool", "http", "http2MaxRequests"),
            "maxRetries": source.get(*at, "connectionPool", "http", "maxRetries"),
        }
        if any(v is not None for v in breaker.values()):
            out["circuitBreaker"] = {k: v for k, v in breaker.items() if v is not None}
        upgrade = {"UPGRADE": True, "DO_NOT_UPGRADE": False}.get(
            str(source.get(*at, "connectionPool", "http", "h2UpgradePolicy")))
        connections = {
            "maxRequestsPerConnection": source.get(*at, "connectionPool", "http", "maxRequestsPerConnection"),
            "idleTimeout": source.get(*at, "connectionPool", "http", "idleTimeout"),
            "http2Upgrade": upgrade,
        }
        if any(v is not None for v in connections.values()):
            out["connections"] = {k: v for k, v in connections.items() if v is not None}
        outlier = source.peek(*at, "outlierDetection")
        if isinstance(outlier, dict):
            detection = {
                "consecutive5xx": source.get(*at, "outlierDetection", "consecutive5xxErrors"),
                "interval": source.get(*at, "outlierDetection", "interval"),
                "baseEjectionTime": source.get(*at, "outlierDetection", "baseEjectionTime"),
                "maxEjectionPercent": source.get(*at, "outlierDetection", "maxEjectionPercent"),
            }
            out["outlierDetection"] = {k: v for k, v in detection.items() if v is not None}
        mode = source.get(*at, "tls", "mode")
        if mode not in (None, "ISTIO_MUTUAL"):
            self.drop(source, (*at, "tls"), f"client TLS mode {mode}: meshc sets mesh TLS from the effective mTLS mode")
        return out

    def service_entry(self, source: Source) -> None:
        hosts = source.get("spec", "hosts", default=[])
        ports = []
        for index, _ in source.items("spec", "ports"):
            number = source.get("spec", "ports", index, "number")
            name = _word(source.get("spec", "ports", index, "name")) or f"port-{number}"
            protocol = source.get("spec", "ports", index, "protocol", default="TCP")
            port = {"name": name, "port": number, "protocol": _ISTIO_PROTOCOLS.get(str(protocol).upper(), "tcp")}
            target = source.get("spec", "ports", index, "targetPort")
            if target is not None and target != number:
                port["targetPort"] = target
            ports.append(port)
        for ignored in ("resolution", "location"):
            source.get("spec", ignored)  # DNS resolution of a MESH_EXTERNAL host is meshc's too
        if source.get("spec", "location") == "MESH_INTERNAL":
            self.drop(source, ("spec", "location"), "a MESH_INTERNAL entry is a Service in meshc")
        if source.get("spec", "endpoints") is not None:
            self.drop(source, ("spec", "endpoints"), "static endpoints of an external service")
        body = {"hosts": list(hosts) if isinstance(hosts, list) else [], "ports": ports}
        self.externals[(source.namespace, source.name)] = self.add(
            Intent("ExternalService", source.name, source.namespace, body, [source]))

    def peer_authentication(self, source: Source) -> None:
        mode = source.get("spec", "mtls", "mode")
        labels = source.get("spec", "selector", "matchLabels")
        if mode not in ("STRICT", "PERMISSIVE", "DISABLE"):
            if mode is not None:  # UNSET inherits: nothing to say
                self.drop(source, ("spec", "mtls", "mode"), f"mode {mode!r}")
            return
        if labels is None:
            if source.namespace == "istio-system":
                self.mesh["mtls"] = mode
                self.mesh_sources.append(source)
            else:
                self.drop(source, ("spec", "mtls"), "namespace-wide mTLS: meshc sets it mesh-wide or per service")
            return
        service = self.selected_service(source, ("spec", "selector", "matchLabels"))
        if service is not None:
            service.body["mtls"] = mode
            service.sources.append(source)
        if source.get("spec", "portLevelMtls") is not None:
            self.drop(source, ("spec", "portLevelMtls"), "per-port mTLS")

    def selected_service(self, source: Source, at: tuple[Any, ...]) -> Intent | None:
        """The one Service in the object's namespace whose name the selector's app label (at `at`) names."""
        labels = source.get(*at)
        app = labels.get("app") if isinstance(labels, dict) else None
        service = self.services.get((source.namespace, app)) if isinstance(app, str) else None
        for label in sorted(labels if isinstance(labels, dict) else ()):
            if label != "app":
                self.drop(source, (*at, label), f"label {label}: meshc applies this to every workload of the service")
        if service is None:
            self.unresolved(source, at, f"selector {labels!r} selects no imported Service (meshc selects by "
                            "`app: <service>`)")
        return service

    def authorization_policy(self, source: Source) -> None:
        action = source.get("spec", "action", default="ALLOW")
        rules = source.peek("spec", "rules")
        labels = source.get("spec", "selector", "matchLabels")
        if action not in ("ALLOW", "DENY"):
            self.drop(source, ("spec", "action"), f"action {action}")
            source.taken.add(("spec",))
            return
        if labels is None:
            self.drop(source, ("spec",), "a namespace- or mesh-wide AuthorizationPolicy: meshc's Mesh.authorization "
                      "is the mesh-wide default, AccessPolicies are per service")
            return
        service = self.selected_service(source, ("spec", "selector", "matchLabels"))
        if service is None:
            source.taken.add(("spec",))
            return
        converted = []
        for index, _ in enumerate(rules if isinstance(rules, list) else []):
            rule = self.access_rule(source, ("spec", "rules", index))
            if rule is not None:
                converted.append(rule)
        body = {"service": service.name, ("allow" if action == "ALLOW" else "deny"): converted}
        self.add(Intent("AccessPolicy", source.name, source.namespace, body, [source]))

    def access_rule(self, source: Source, at: tuple[Any, ...]) -> dict[str, Any] | None:
        sources: list[Any] = []
        for index, _ in source.items(*at, "from"):
            for principal in source.get(*at, "from", index, "source", "principals", default=[]):
                found = self.service_of_principal(str(principal))
                if found is None:
                    self.unresolved(source, (*at, "from", index, "source", "principals"),
                                    f"principal {principal!r} is no imported Service's identity; left out")
                    continue
                sources.append(self.ref(found, source.namespace))
            for namespace in source.get(*at, "from", index, "source", "namespaces", default=[]):
                sources.append({"namespace": namespace})
        rule: dict[str, Any] = {"from": sources or ["*"]}
        for index, _ in source.items(*at, "to"):
            operation = (*at, "to", index, "operation")
            for key, out in (("methods", "methods"), ("paths", "paths")):
                values = source.get(*operation, key)
                if isinstance(values, list):
                    rule.setdefault(out, []).extend(values)
            ports = source.get(*operation, "ports")
            if isinstance(ports, list):
                rule.setdefault("ports", []).extend(int(p) for p in ports if str(p).isdigit())
        if source.get(*at, "when") is not None:
            self.drop(source, (*at, "when"), "conditions on request attributes")
        return rule

    def request_authentication(self, source: Source) -> None:
        """A RequestAuthentication of one service: its jwtRules as the Service's `jwt` providers
        (docs/intents.md, End-user authentication, which is what Istio's mean): issuer,
        audiences, jwksUri or jwks, fromHeaders, fromParams, forwardOriginalToken."""
        if source.peek("spec", "selector", "matchLabels") is None:
            self.drop(source, ("spec",), "a RequestAuthentication without a selector: meshc's jwt providers belong "
                      "to one Service or Gateway")
            return
        service = self.selected_service(source, ("spec", "selector", "matchLabels"))
        if service is None:
            source.taken.add(("spec",))
            return
        rules = source.items("spec", "jwtRules")
        for index, _ in rules:
            at = ("spec", "jwtRules", index)
            uri, inline = source.peek(*at, "jwksUri"), source.peek(*at, "jwks")
            if uri is None and inline is None:
                self.drop(source, at, "neither jwksUri nor jwks: Istio finds the keys by the issuer's OpenID Connect "
                          "discovery, which meshc does not; write `jwks` on the Service's provider")
                continue
            provider: dict[str, Any] = {"name": source.name if len(rules) == 1 else f"{source.name}-{index + 1}",
                                        "issuer": source.get(*at, "issuer")}
            audiences = source.get(*at, "audiences")
            if isinstance(audiences, list) and audiences:
                provider["audiences"] = audiences
            provider["jwks"] = {"uri": source.get(*at, "jwksUri")} if uri is not None else \
                {"inline": source.get(*at, "jwks")}
            headers = [{"name": source.get(*at, "fromHeaders", h, "name"),
                        **({"prefix": source.get(*at, "fromHeaders", h, "prefix")}
                           if source.peek(*at, "fromHeaders", h, "prefix") is not None else {})}
                       for h, _ in source.items(*at, "fromHeaders")]
            params = source.get(*at, "fromParams")
            if headers or params:
                provider["from"] = {"headers": headers, "params": params if isinstance(params, list) else []}
            if source.get(*at, "forwardOriginalToken") is True:
                provider["forward"] = True
            service.body.setdefault("jwt", []).append(provider)
        service.sources.append(source)

    def sidecar(self, source: Source) -> None:
        labels = source.get("spec", "workloadSelector", "labels")
        service = self.selected_service(source, ("spec", "workloadSelector", "labels")) if labels else None
        if service is None:
            if labels is None:
                self.drop(source, ("spec",), "a namespace-wide Sidecar: meshc scopes each sidecar by its calls")
            return
        calls = []
        for index, _ in source.items("spec", "egress"):
            for host_index, host in enumerate(source.get("spec", "egress", index, "hosts", default=[])):
                namespace, _, name = str(host).partition("/")
                namespace = source.namespace if namespace == "." else namespace
                found = self.service_of_host(name, namespace) if namespace != "*" else None
                if found is None:
                    if namespace != "istio-system":
                        self.unresolved(source, ("spec", "egress", index, "hosts", host_index),
                                        f"egress host {host!r} is no imported Service; not a call")
                    continue
                calls.append(self.ref(found[1], source.namespace))
        if calls:
            service.body["calls"] = sorted(set(calls))
            service.sources.append(source)

    def istio_gateway(self, source: Source) -> None:
        listeners = []
        for index, _ in source.items("spec", "servers"):
            at = ("spec", "servers", index)
            number = source.get(*at, "port", "number")
            protocol = str(source.get(*at, "port", "protocol", default="HTTP")).upper()
            name = _word(source.get(*at, "port", "name")) or f"port-{number}"
            hosts = [str(h).split("/")[-1] for h in source.get(*at, "hosts", default=[])]
            listener: dict[str, Any] = {"name": name, "port": number,
                                        "protocol": {"HTTP2": "http", "GRPC": "http"}.get(protocol, protocol.lower()),
                                        "hosts": hosts}
            mode = source.get(*at, "tls", "mode")
            if source.get(*at, "tls", "httpsRedirect") is True:
                listener["httpsRedirect"] = True
            elif mode == "SIMPLE":
                listener["tls"] = {"mode": "terminate", "certificate": _word(source.get(*at, "tls", "credentialName"))}
            elif mode == "PASSTHROUGH":
                listener["tls"] = {"mode": "passthrough"}
            elif mode is not None:
                self.drop(source, (*at, "tls", "mode"), f"TLS mode {mode} on a gateway")
            if listener["protocol"] not in ("http", "https", "tls", "tcp"):
                self.drop(source, (*at, "port", "protocol"), f"gateway protocol {protocol}")
                continue
            listeners.append(listener)
        source.get("spec", "selector")  # which proxy runs it: the platform's ingress gateway
        self.gateways[source.name] = self.add(
            Intent("Gateway", source.name, source.namespace, {"platform": PLATFORM, "listeners": listeners}, [source]))

    def virtual_service(self, source: Source) -> None:
        hosts = source.get("spec", "hosts", default=[])
        gateways = [g for g in source.get("spec", "gateways", default=[]) if g != "mesh"]
        sections = [(name, reader) for name, reader in (("http", self.http_rule), ("tls", self.stream_rule),
                                                        ("tcp", self.stream_rule))
                    if source.peek("spec", name) is not None]
        if len(sections) > 1:
            self.drop(source, ("spec", sections[1][0]),
                      "a VirtualService with several protocols: import each separately")
        rules = []
        if sections:
            name, reader = sections[0]
            for index, _ in source.items("spec", name):
                rule = reader(source, ("spec", name, index))
                if rule is not None:
                    rules.append(rule)
        if not rules:
            self.report.add(codes.IMPORT_INVALID, f"{source.label}: no rule could be imported", source.locate("spec"))
            return
        if gateways:
            if str(gateways[0]).split("/")[-1] not in self.gateways:
                self.unresolved(source, ("spec", "gateways"), f"gateway {gateways[0]!r} is no imported Gateway; "
                                "the VirtualService is not imported")
                source.taken.add(("spec",))
                return
            if len(gateways) > 1:
                self.drop(source, ("spec", "gateways", 1), "a Route binds one gateway: import one VirtualService each")
            gateway = str(gateways[0]).split("/")[-1]
            self.add(Intent("Route", source.name, source.namespace,
                            {"gateway": gateway, "hosts": list(hosts), "rules": rules}, [source]))
            return
        for index, host in enumerate(hosts):
            found = self.service_of_host(host, source.namespace)
            if found is None:
                self.unresolved(source, ("spec", "hosts", index), f"host {host!r} is no imported Service")
                continue
            if found[1].kind != "Service":
                self.drop(source, ("spec", "hosts", index), f"routing inside traffic to the external host {host!r}: "
                          "meshc routes to an ExternalService, not within one")
                continue
            name = source.name if len(hosts) == 1 else f"{source.name}-{found[1].name}"
            routed = [_relative(rule, found[0]) for rule in rules]
            self.add(Intent("Route", name, source.namespace, {"service": found[0], "rules": routed}, [source]))

    def destination(self, source: Source, at: tuple[Any, ...], weight: Any) -> dict[str, Any] | None:
        found = self.service_of_host(source.get(*at, "host"), source.namespace)
        if found is None:
            self.unresolved(source, (*at, "host"), f"destination {source.get(*at, 'host')!r} is no imported service")
            return None
        out: dict[str, Any] = {"service": found[0]}
        subset = source.get(*at, "subset")
        if subset is not None:
            out["version"] = subset
        number = source.get(*at, "port", "number")
        if number is not None:
            out["port"] = number
        if weight is not None:
            out["weight"] = weight
        return out

    def http_rule(self, source: Source, at: tuple[Any, ...]) -> dict[str, Any] | None:
        rule: dict[str, Any] = {}
        matches = []
        for index, _ in source.items(*at, "match"):
            match = self.http_match(source, (*at, "match", index))
            if match is not None:
                matches.append(match)
        if matches:
            rule["match"] = matches
        destinations = []
        for index, _ in source.items(*at, "route"):
            found = self.destination(source, (*at, "route", index, "destination"),
                                     source.get(*at, "route", index, "weight"))
            if found is not None:
                destinations.append(found)
                edits = self.header_edits(source, (*at, "route", index, "headers"))
                if edits is not None:
                    found["headers"] = edits  # HTTPRouteDestination.headers: this destination only
        if len(destinations) == 1:
            destinations[0].pop("weight", None)
        if destinations:
            rule["to"] = destinations
        redirect = source.peek(*at, "redirect")
        if isinstance(redirect, dict):
            target = {"scheme": source.get(*at, "redirect", "scheme"), "host": source.get(*at, "redirect", "authority"),
                      "port": source.get(*at, "redirect", "port"), "path": source.get(*at, "redirect", "uri"),
                      "status": source.get(*at, "redirect", "redirectCode")}
            rule["redirect"] = {k: v for k, v in target.items() if v is not None}
        if source.get(*at, "timeout") is not None:
            rule["timeout"] = source.get(*at, "timeout")
        retries = source.peek(*at, "retries")
        if isinstance(retries, dict):
            rule["retries"] = {k: v for k, v in {
                "attempts": source.get(*at, "retries", "attempts"),
                "perTryTimeout": source.get(*at, "retries", "perTryTimeout"),
                "retryOn": _retry_on(source.get(*at, "retries", "retryOn")),
                "statusCodes": _retry_status_codes(source.get(*at, "retries", "retryOn")),
                "backoff": ({"base": source.get(*at, "retries", "backoff")}
                            if source.get(*at, "retries", "backoff") is not None else None),
            }.items() if v is not None}
        fault = self.fault(source, (*at, "fault"))
        if fault:
            rule["fault"] = fault
        self.mirrors(source, at, rule)
        edits = self.header_edits(source, (*at, "headers"))
        if edits is not None:
            rule["headers"] = edits
            if any("headers" in d for d in destinations):
                self.edited_once(source, at, rule)
        uri = source.get(*at, "rewrite", "uri")
        if isinstance(uri, str):
            if any("regex" in m.get("path", {}) for m in matches):
                # Istio replaces the characters a uri prefix matched; meshc's rewrite replaces a
                # segment prefix, and the whole path after a regex: the two differ here
                self.drop(source, (*at, "rewrite"), "a rewrite after a character-prefix or regex uri match")
            else:
                rule["rewrite"] = {"prefix": uri}
        if "to" not in rule and "redirect" not in rule:
            self.report.add(codes.IMPORT_INVALID, f"{source.label}: a rule without an importable destination",
                            source.locate(*at))
            return None
        return rule

    def mirrors(self, source: Source, at: tuple[Any, ...], rule: dict[str, Any]) -> None:
        """HTTPRoute `mirror` with `mirrorPercentage` (or the deprecated integer `mirrorPercent`),
        and `mirrors`: each HTTPMirrorPolicy's `destination` with its own `percentage`; an
        omitted percentage mirrors every request, as meshc's default `percent: 100` does."""
        if isinstance(source.peek(*at, "mirror"), dict):
            if source.peek(*at, "mirrors") is not None:
                self.drop(source, (*at, "mirrors"), "`mirror` and `mirrors` together (Istio takes one or the other)")
            mirrored = self.destination(source, (*at, "mirror"), None)
            percent = source.get(*at, "mirrorPercentage", "value")
            if percent is None:
                percent = source.get(*at, "mirrorPercent")
            if mirrored is not None:
                rule["mirror"] = {**mirrored, **({"percent": percent} if percent is not None else {})}
            return
        mirrors = []
        for index, _ in source.items(*at, "mirrors"):
            mirrored = self.destination(source, (*at, "mirrors", index, "destination"), None)
            percent = source.get(*at, "mirrors", index, "percentage", "value")
            if mirrored is not None:
                mirrors.append({**mirrored, **({"percent": percent} if percent is not None else {})})
        if mirrors:
            rule["mirrors"] = mirrors

    def header_edits(self, source: Source, at: tuple[Any, ...]) -> dict[str, Any] | None:
        """Istio's Headers (`request` and `response`, each `set`, `add`, `remove`) as meshc's
        header edits, which mean the same (docs/intents.md); edits meshc cannot carry, such as
        a value with Envoy's `%...%` command operators or an edit of `host`, are reported whole."""
        if source.peek(*at) is None:
            return None
        edits: dict[str, Any] = {}
        for direction in ("request", "response"):
            written = {operation: source.get(*at, direction, operation) for operation in ("set", "add", "remove")}
            written = {operation: value for operation, value in written.items() if value}
            if written:
                edits[direction] = written
            source.get(*at, direction)
        return self.carried(source, at, edits)

    def carried(self, source: Source, at: tuple[Any, ...], edits: dict[str, Any]) -> dict[str, Any] | None:
        """`edits` when meshc's header edits can carry them; else reported at `at`, and None."""
        from pydantic import ValidationError

        from compiler.model import HeaderModifier

        try:
            HeaderModifier.model_validate(edits)
        except ValidationError as error:
            reason = error.errors(include_url=False)[0]["msg"].removeprefix("Value error, ")
            self.drop(source, at, f"header edits meshc cannot carry: {reason}")
            return None
        return edits

    def header_filter(self, source: Source, at: tuple[Any, ...]) -> dict[str, Any] | None:
        """A Gateway API RequestHeaderModifier or ResponseHeaderModifier filter (HTTPHeaderFilter:
        `set` and `add` lists of {name, value}, `remove` names) as meshc's edits of that direction."""
        kind = source.get(*at, "type")
        direction, key = (("request", "requestHeaderModifier") if kind == "RequestHeaderModifier"
                          else ("response", "responseHeaderModifier"))
        written: dict[str, Any] = {}
        for operation in ("set", "add"):
            entries = source.get(*at, key, operation, default=[])
            if entries:
                written[operation] = {e.get("name"): e.get("value") for e in entries if isinstance(e, dict)}
        if source.get(*at, key, "remove"):
            written["remove"] = source.get(*at, key, "remove")
        source.get(*at, key)
        return self.carried(source, at, {direction: written})

    def edited_once(self, source: Source, at: tuple[Any, ...], rule: dict[str, Any]) -> None:
        """A header edited by the rule and by a destination: Envoy applies the destination's
        edits first and the route's after them, which meshc does not promise (docs/intents.md:
        one place per header); the destination's edits of such a header are reported."""
        ruled = {name.lower() for edits in rule["headers"].values() for operation in edits.values()
                 for name in operation}
        for index, destination in enumerate(rule.get("to", [])):
            edits = destination.get("headers", {})
            shared = sorted(ruled & {name.lower() for e in edits.values() for op in e.values() for name in op})
            if shared:
                del destination["headers"]
                self.drop(source, (*at, "route", index, "headers"),
                          f"header {shared[0]!r} is edited by the rule and by this destination: meshc edits a header "
                          "in one place")

    def http_match(self, source: Source, at: tuple[Any, ...]) -> dict[str, Any] | None:
        match: dict[str, Any] = {}
        uri = source.get(*at, "uri")
        if isinstance(uri, dict) and len(uri) == 1:
            match["path"] = _path_match(uri)
        method = source.get(*at, "method", "exact")
        if isinstance(method, str):
            match["method"] = method
        for key in ("headers", "queryParams"):
            values = source.get(*at, key)
            if isinstance(values, dict):
                match["headers" if key == "headers" else "query"] = {
                    (name.lower() if key == "headers" else name): dict(condition) for name, condition in values.items()}
        port = source.get(*at, "port")
        if port is not None:
            match["port"] = port
        for key in ("sourceLabels", "gateways", "authority", "scheme", "ignoreUriCase", "withoutHeaders",
                    "sourceNamespace", "statPrefix"):
            if source.get(*at, key) is not None:
                self.drop(source, (*at, key), f"match on {key}")
        source.get(*at, "name")  # a label for logs
        return match

    def fault(self, source: Source, at: tuple[Any, ...]) -> dict[str, Any]:
        """Istio takes `percentage.value`, else the deprecated integer `percent`, else 0: a fault
        without either reaches no request (pilot's TranslateFault), so it is not imported."""
        fault: dict[str, Any] = {}
        for kind, field_name, out_name, value_name in (("delay", "fixedDelay", "fixed", "delay"),
                                                      ("abort", "httpStatus", "status", "abort")):
            value = source.get(*at, kind, field_name)
            if value is None:
                continue
            percent = source.get(*at, kind, "percentage", "value")
            if percent is None:
                percent = source.get(*at, kind, "percent")
            if not percent:
                self.drop(source, (*at, kind), f"a {kind} for no request (no percentage)")
                continue
            fault[value_name] = {out_name: value, "percent": percent}
        return fault

    def stream_rule(self, source: Source, at: tuple[Any, ...]) -> dict[str, Any] | None:
        match: dict[str, Any] = {}
        for index, _ in source.items(*at, "match"):
            sni = source.get(*at, "match", index, "sniHosts")
            if isinstance(sni, list):
                match.setdefault("sni", []).extend(sni)
            port = source.get(*at, "match", index, "port")
            if port is not None:
                match["port"] = port
        destinations = [d for index, _ in source.items(*at, "route")
                        if (d := self.destination(source, (*at, "route", index, "destination"),
                                                  source.get(*at, "route", index, "weight"))) is not None]
        if len(destinations) == 1:
            destinations[0].pop("weight", None)
        if not destinations:
            return None
        return {**({"match": [match]} if match else {}), "to": destinations}

    # -- Gateway API ------------------------------------------------------------------------

    def api_gateway(self, source: Source) -> None:
        listeners = []
        for index, _ in source.items("spec", "listeners"):
            at = ("spec", "listeners", index)
            protocol = str(source.get(*at, "protocol", default="HTTP")).lower()
            listener: dict[str, Any] = {"name": _word(source.get(*at, "name")), "port": source.get(*at, "port"),
                                        "protocol": protocol, "hosts": [source.get(*at, "hostname", default="*")]}
            mode = source.get(*at, "tls", "mode")
            if mode == "Passthrough":
                listener["tls"] = {"mode": "passthrough"}
            elif protocol in ("https", "tls"):
                certificate = _word(source.get(*at, "tls", "certificateRefs", 0, "name"))
                listener["tls"] = {"mode": "terminate", "certificate": certificate}
            if source.get(*at, "allowedRoutes") is not None:
                self.drop(source, (*at, "allowedRoutes"), "route admission by namespace or kind")
            listeners.append(listener)
        source.get("spec", "gatewayClassName")
        self.add(Intent("Gateway", source.name, source.namespace, {"platform": PLATFORM, "listeners": listeners},
                        [source]))

    def parents(self, source: Source) -> tuple[str | None, str | None]:
        """(gateway, service) the route attaches to; one parent only."""
        refs = source.items("spec", "parentRefs")
        if len(refs) > 1:
            self.drop(source, ("spec", "parentRefs", 1), "a Route attaches to one parent: import one route each")
        if not refs:
            return None, None
        index = refs[0][0]
        kind = source.get("spec", "parentRefs", index, "kind", default="Gateway")
        name = source.get("spec", "parentRefs", index, "name")
        source.get("spec", "parentRefs", index, "group")
        namespace = source.get("spec", "parentRefs", index, "namespace", default=source.namespace)
        for key in ("sectionName", "port"):
            if source.get("spec", "parentRefs", index, key) is not None:
                self.drop(source, ("spec", "parentRefs", index, key), "attaching to one listener only")
        ref = name if namespace == source.namespace else f"{namespace}/{name}"
        return (ref, None) if kind == "Gateway" else (None, ref)

    def backend_ref(self, source: Source, ref: tuple[Any, ...], what: str) -> dict[str, Any] | None:
        """A Gateway API BackendObjectReference as a destination ({service, port}), or None
        (reported) when it names no imported Service."""
        namespace = source.get(*ref, "namespace", default=source.namespace)
        found = self.services.get((namespace, source.get(*ref, "name")))
        source.get(*ref, "kind")
        source.get(*ref, "group")
        if found is None:
            self.unresolved(source, ref, f"{what} {source.get(*ref, 'name')!r} is no imported Service")
            return None
        target: dict[str, Any] = {"service": self.ref(found, source.namespace)}
        if source.get(*ref, "port") is not None:
            target["port"] = source.get(*ref, "port")
        return target

    def backends(self, source: Source, at: tuple[Any, ...]) -> list[dict[str, Any]]:
        out = []
        for index, _ in source.items(*at, "backendRefs"):
            ref = (*at, "backendRefs", index)
            target = self.backend_ref(source, ref, "backend")
            if target is None:
                continue
            target["weight"] = source.get(*ref, "weight", default=1)
            for f_index, _ in source.items(*ref, "filters"):  # HTTPBackendRef.filters: this backend only
                if source.peek(*ref, "filters", f_index, "type") in ("RequestHeaderModifier", "ResponseHeaderModifier"):
                    edits = self.header_filter(source, (*ref, "filters", f_index))
                    if edits is not None:
                        target.setdefault("headers", {}).update(edits)
            out.append(target)
        if len(out) == 1:
            out[0].pop("weight")
        elif out:
            total = sum(t["weight"] for t in out)
            if total == 0 or any((t["weight"] * 100) % total for t in out):
                self.drop(source, (*at, "backendRefs"), f"weights that do not scale to percentages (sum {total})")
                return []
            for target in out:
                target["weight"] = target["weight"] * 100 // total
        return out

    def route(self, source: Source, rules: list[dict[str, Any]], hosts: Any) -> None:
        gateway, service = self.parents(source)
        rules = [r for r in rules if r.get("to") or r.get("redirect")]
        if not rules or (gateway is None and service is None):
            self.report.add(codes.IMPORT_INVALID, f"{source.label}: no parent or no importable rule",
                            source.locate("spec"))
            return
        body: dict[str, Any]
        if gateway is not None:
            body = {"gateway": gateway, "hosts": list(hosts or ["*"]), "rules": rules}
        else:
            assert service is not None
            body = {"service": service, "rules": [_relative(r, service) for r in rules]}
        self.add(Intent("Route", source.name, source.namespace, body, [source]))

    def http_route(self, source: Source) -> None:
        rules = []
        for index, _ in source.items("spec", "rules"):
            at = ("spec", "rules", index)
            rule: dict[str, Any] = {}
            matches = []
            for match_index, _ in source.items(*at, "matches"):
                m = (*at, "matches", match_index)
                match: dict[str, Any] = {}
                kind = source.get(*m, "path", "type", default="PathPrefix")
                value = source.get(*m, "path", "value")
                if value is not None:
                    match["path"] = {{"Exact": "exact", "PathPrefix": "prefix"}.get(kind, "regex"): value}
                for key, out in (("headers", "headers"), ("queryParams", "query")):
                    for h_index, _ in source.items(*m, key):
                        name = source.get(*m, key, h_index, "name")
                        kind_of = source.get(*m, key, h_index, "type", default="Exact")
                        match.setdefault(out, {})[name.lower() if out == "headers" else name] = {
                            "exact" if kind_of == "Exact" else "regex": source.get(*m, key, h_index, "value")}
                if source.get(*m, "method") is not None:
                    match["method"] = source.get(*m, "method")
                matches.append(match)
            if matches and matches != [{"path": {"prefix": "/"}}]:
                rule["match"] = matches
            for f_index, _ in source.items(*at, "filters"):
                self.route_filter(source, (*at, "filters", f_index), rule)
            timeout = source.get(*at, "timeouts", "request")
            if timeout is not None:
                rule["timeout"] = timeout
            if "redirect" not in rule:
                rule["to"] = self.backends(source, at)
            rules.append(rule)
        self.route(source, rules, source.get("spec", "hostnames"))

    def route_filter(self, source: Source, at: tuple[Any, ...], rule: dict[str, Any]) -> None:
        kind = source.get(*at, "type")
        if kind in ("RequestHeaderModifier", "ResponseHeaderModifier"):
            edits = self.header_filter(source, at)
            if edits is not None:
                rule.setdefault("headers", {}).update(edits)
        elif kind == "RequestMirror":
            self.request_mirror(source, at, rule)
        elif kind == "URLRewrite" and source.get(*at, "urlRewrite", "path", "type") == "ReplacePrefixMatch":
            rule["rewrite"] = {"prefix": source.get(*at, "urlRewrite", "path", "replacePrefixMatch")}
        elif kind == "RequestRedirect":
            # HTTPRequestRedirectFilter.statusCode defaults to 302 (meshc's default is 301)
            redirect = {"scheme": source.get(*at, "requestRedirect", "scheme"),
                        "host": source.get(*at, "requestRedirect", "hostname"),
                        "port": source.get(*at, "requestRedirect", "port"),
                        "path": source.get(*at, "requestRedirect", "path", "replaceFullPath"),
                        "prefix": source.get(*at, "requestRedirect", "path", "replacePrefixMatch"),
                        "status": source.get(*at, "requestRedirect", "statusCode") or 302}
            source.get(*at, "requestRedirect", "path", "type")
            rule["redirect"] = {k: v for k, v in redirect.items() if v is not None}
        else:
            self.drop(source, at, f"filter {kind}")

    def request_mirror(self, source: Source, at: tuple[Any, ...], rule: dict[str, Any]) -> None:
        """HTTPRequestMirrorFilter: `backendRef`, and `percent` or `fraction` (numerator over a
        denominator of 100 by default); neither mirrors every request."""
        mirror = self.backend_ref(source, (*at, "requestMirror", "backendRef"), "mirror backend")
        if mirror is None:
            return
        percent = source.get(*at, "requestMirror", "percent")
        numerator = source.get(*at, "requestMirror", "fraction", "numerator")
        if numerator is not None:
            percent = 100 * numerator / source.get(*at, "requestMirror", "fraction", "denominator", default=100)
        if percent is not None:
            mirror["percent"] = percent
        rule.setdefault("mirrors", []).append(mirror)

    def grpc_route(self, source: Source) -> None:
        rules = []
        for index, _ in source.items("spec", "rules"):
            at = ("spec", "rules", index)
            matches = []
            for match_index, _ in source.items(*at, "matches"):
                m = (*at, "matches", match_index, "method")
                service, method = source.get(*m, "service"), source.get(*m, "method")
                source.get(*m, "type")
                if service and method:
                    matches.append({"path": {"exact": f"/{service}/{method}"}})
                elif service:
                    matches.append({"path": {"prefix": f"/{service}/"}})
            rules.append({**({"match": matches} if matches else {}), "to": self.backends(source, at)})
        self.route(source, rules, source.get("spec", "hostnames"))

    def tls_route(self, source: Source) -> None:
        hosts = source.get("spec", "hostnames", default=[])
        rules = [{"match": [{"sni": list(hosts)}], "to": self.backends(source, ("spec", "rules", index))}
                 for index, _ in source.items("spec", "rules")]
        self.route(source, rules, hosts)

    def tcp_route(self, source: Source) -> None:
        rules = [{"to": self.backends(source, ("spec", "rules", index))} for index, _ in source.items("spec", "rules")]
        self.route(source, rules, ["*"])


_ISTIO_PROTOCOLS = {"HTTP": "http", "HTTP2": "http2", "GRPC": "grpc", "HTTPS": "tls", "TLS": "tls", "TCP": "tcp",
                    "MONGO": "mongo", "GRPC-WEB": "http"}
_RETRY_ON = {"5xx", "gateway-error", "reset", "connect-failure", "retriable-4xx", "refused-stream",
             "retriable-status-codes", "cancelled", "deadline-exceeded", "internal", "resource-exhausted",
             "unavailable"}


def _protocol(app_protocol: Any, port_name: str) -> str:
    """Istio's protocol selection: appProtocol, else the port name's prefix (`http-web`)."""
    word = str(app_protocol or port_name).lower().split("-")[0]
    return {"http": "http", "http2": "http2", "grpc": "grpc", "grpc-web": "http", "https": "tls", "tls": "tls",
            "mongo": "mongo", "tcp": "tcp", "h2c": "http2"}.get(word, "tcp")


def _path_match(uri: dict[str, Any]) -> dict[str, Any]:
    """Istio's uri match as meshc's: Istio's `prefix` is a character prefix (`/v2` takes
    `/v2example`), meshc's a segment prefix, so a character prefix becomes a regex."""
    prefix = uri.get("prefix")
    if not isinstance(prefix, str) or prefix == "/":
        return dict(uri)
    return {"regex": re.sub(r"([.^$*+?()\[\]{}|\\])", r"\\\1", prefix) + ".*"}


def _retry_on(value: Any) -> list[str] | None:
    """Istio's retryOn conditions; retriable-status-codes only with codes (meshc's statusCodes)."""
    if not isinstance(value, str):
        return None
    conditions = [v.strip() for v in value.split(",") if v.strip() in _RETRY_ON]
    if not _retry_status_codes(value):
        conditions = [c for c in conditions if c != "retriable-status-codes"]
    return conditions or None


def _retry_status_codes(value: Any) -> list[int] | None:
    """The status codes in Istio's retryOn: its numbers (retry.go, parseRetryOn)."""
    if not isinstance(value, str):
        return None
    codes = [int(v) for v in (part.strip() for part in value.split(",")) if v.isdigit()]
    return [c for c in dict.fromkeys(codes) if c in RETRIABLE_STATUS_CODES] or None


def _relative(rule: dict[str, Any], service: str) -> dict[str, Any]:
    """A mesh route's destinations name other services only: its own service is implied."""
    out = dict(rule)
    if "to" in out:
        out["to"] = [{k: v for k, v in d.items() if not (k == "service" and v == service)} for d in out["to"]]
    if "mirror" in out and out["mirror"].get("service") == service:
        out["mirror"] = {k: v for k, v in out["mirror"].items() if k != "service"}
    if "mirrors" in out:
        out["mirrors"] = [{k: v for k, v in m.items() if not (k == "service" and v == service)} for m in out["mirrors"]]
    return out


def _dotted(path: tuple[Any, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p)) for i, p in enumerate(path))


# --------------------------------------------------------------------------------------------
# Files in, files out


def read_inputs(paths: list[Path], report: Report) -> dict[str, str]:
    """file name -> text, for every YAML file named or under a named directory."""
    texts: dict[str, str] = {}
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()) \
            if path.is_dir() else [path]
        for file in files:
            name = file.as_posix()
            try:
                size = file.stat().st_size
                if size > MAX_FILE_BYTES:
                    report.add(codes.FILE_TOO_LARGE, f"{size} bytes is over the {MAX_FILE_BYTES}-byte limit",
                               Location(name, 1, 1))
                    continue
                texts[name] = file.read_bytes().decode("utf-8")
            except (OSError, UnicodeDecodeError) as error:
                report.add(codes.UNREADABLE_FILE, f"cannot read the file: {error}", Location(name, 1, 1))
    return texts


def import_texts(texts: dict[str, str], report: Report) -> list[Intent]:
    importer = Importer(report)
    for name, text in texts.items():
        importer.read(name, text.removeprefix("\ufeff"))
    intents = importer.run()
    namespaces = importer.namespaces or [DEFAULT_NAMESPACE]
    default = max(sorted(set(namespaces)), key=namespaces.count)
    mesh: dict[str, Any] = {"name": "imported", "defaultNamespace": default, "mtls": "PERMISSIVE",
                            "authorization": "allow", **importer.mesh,
                            # the input's Services and ServiceAccounts stay its own: meshc writes mesh objects
                            "platforms": [{"name": PLATFORM, "kind": "kubernetes", "flavor": _flavor(importer),
                                           "owns": {"kinds": []}}]}
    return [Intent("Mesh", "imported", default, mesh, importer.mesh_sources), *intents]


def _flavor(importer: Importer) -> str:
    api = sum(1 for s in importer.sources if s.document.data["apiVersion"].startswith(GATEWAY_API_GROUP))
    return "gateway-api" if api and api >= len(importer.sources) - api else "istio"


def render_intents(intents: list[Intent]) -> dict[str, str]:
    """Relative path in the mesh directory -> text, each intent with comments naming its sources,
    laid out by `meshc fmt` (ruamel.yaml keeps the comments)."""
    from compiler.fmt import format_text
    from compiler.serialize import to_yaml

    folders = {"Mesh": "", "Service": "services", "ExternalService": "external", "Route": "routes",
               "Gateway": "gateways", "AccessPolicy": "access"}
    files: dict[str, list[str]] = {}
    default = intents[0].namespace
    for intent in intents:
        document: dict[str, Any] = {"apiVersion": "meshc/v1", "kind": intent.kind, "name": intent.name}
        if intent.kind != "Mesh" and intent.namespace != default:
            document["namespace"] = intent.namespace
        document.update(intent.body)
        origin = "".join(f"# imported from {s.label} ({s.file}:{s.document.line})\n" for s in intent.sources)
        if intent.kind == "Mesh":
            origin = "# written by meshc import: Istio's defaults (PERMISSIVE mTLS, allow when no policy)\n" + origin
        text = origin + to_yaml(document).decode("utf-8")
        path = "mesh.yaml" if intent.kind == "Mesh" else \
            f"{folders[intent.kind]}/{'' if intent.namespace == default else intent.namespace + '-'}{intent.name}.yaml"
        files.setdefault(path, []).append(text)
    return {path: format_text("---\n".join(texts)) for path, texts in files.items()}


def planned_files(output: Path, intents: list[Intent], report: Report) -> dict[Path, str]:
    """Where each file goes; an existing file is an error (nothing is replaced)."""
    files = {output / name: text for name, text in render_intents(intents).items()}
    for path in sorted(files):
        if path.exists():
            report.add(codes.IMPORT_OUTPUT_EXISTS, f"{path} exists; meshc import replaces no file",
                       Location(path.as_posix(), 1, 1))
    return files
