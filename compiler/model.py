"""The intent language v1 as pydantic models (../shared/spec/intents.md).

Models hold exactly what a user wrote, validated; defaults that depend on other documents
(Mesh.defaults, defaultNamespace) are applied by the linker, not here. Positions never live
in a model: they are in the loader's side table.
"""

from __future__ import annotations

import ipaddress
import re
from decimal import ROUND_CEILING, Decimal
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    model_validator,
)
from pydantic_core import PydanticCustomError

API_VERSION = "meshc/v1"

# The length bound (at most 63) is inside the pattern so one error code covers every bad name.
LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
NAME_PATTERN = rf"^{LABEL}$"
REF_PATTERN = rf"^({LABEL}/)?{LABEL}$"
SOURCE_PATTERN = rf"^(\*|({LABEL}/)?{LABEL})$"
_LABEL_RULE = "lower-case letters, digits and '-', at most 63"
# What a value of each name-shaped pattern must be, for MESH106's message.
NAME_PATTERN_MEANINGS = {
    NAME_PATTERN: f"a DNS-1123 name ({_LABEL_RULE})",
    REF_PATTERN: f"a reference: `name` or `namespace/name`, each a DNS-1123 name ({_LABEL_RULE})",
    SOURCE_PATTERN: f"\"*\" or a reference: `name` or `namespace/name`, each a DNS-1123 name ({_LABEL_RULE})",
}
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]

# Version labels are Kubernetes labels on every target (pods, WorkloadEntries, Istio's
# canonical revision, a VM's cluster.env): a qualified name, optionally under a DNS prefix,
# and a value of at most 63 letters, digits, '-', '_' and '.' (Kubernetes' validation).
LabelKey = Annotated[str, StringConstraints(
    pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
            r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$", max_length=253 + 1 + 63)]
LabelValue = Annotated[str, StringConstraints(pattern=r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")]

_DURATION = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)$")
_UNIT_SECONDS = {"ms": Decimal("0.001"), "s": Decimal(1), "m": Decimal(60), "h": Decimal(3600)}


def duration_seconds(text: str) -> Decimal:
    """Seconds in a validated duration string, exact (no float rounding)."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration such as 250ms, 1.5s, 2m or 1h")
    return Decimal(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _positive_duration(text: str) -> str:
    if duration_seconds(text) <= 0:
        raise ValueError("a duration must be greater than zero")
    return text


Duration = Annotated[str, AfterValidator(_positive_duration)]


def _duration(text: str) -> str:
    duration_seconds(text)
    return text


# A timeout: a duration, where zero means "no limit" (Envoy's route timeout 0s, Gateway API
# HTTPRouteTimeouts "0s"), so a rule or a service can lift a limit it would otherwise inherit.
Timeout = Annotated[str, AfterValidator(_duration)]


def timeout_seconds(timeout: str | None) -> Decimal | None:
    """The limit a timeout sets in seconds; None when there is none (unset or zero)."""
    if timeout is None:
        return None
    seconds = duration_seconds(timeout)
    return seconds if seconds > 0 else None

# Line breaks and the other control characters (tab aside): no header value, path, file glob or
# message can carry them, and in a generated file each one would start a new line or do worse,
# so a value holding one is a located error (MESH105), never a silent compile. CEL text may
# also break lines, as CEL's whitespace.
_CONTROL_CHARACTER = re.compile("[\x00-\x08\x0a-\x1f\x7f]")
_CEL_CONTROL_CHARACTER = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _without(characters: re.Pattern[str]):
    def check(text: str) -> str:
        found = characters.search(text)
        if found is not None:
            raise PydanticCustomError("control_character", "the value holds the control character U+{code} at "
                                      "character {index}; write it on one line, without control characters",
                                      {"code": f"{ord(found.group()):04X}", "index": found.start() + 1})
        return text

    return AfterValidator(check)


# Free text on one line: every string field that no pattern already restricts to printable characters.
Line = Annotated[str, _without(_CONTROL_CHARACTER)]
Port = Annotated[int, Field(ge=1, le=65535)]
Percent = Annotated[float, Field(ge=0, le=100)]
HostName = Annotated[
    str,
    StringConstraints(
        pattern=r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$|^\*$",
        max_length=253,
    ),
]
# Reference to a namespaced object: `name` or `namespace/name`.
Ref = Annotated[str, StringConstraints(pattern=REF_PATTERN)]
# An HTTP header or query parameter name (RFC 7230 token); Envoy and Istio lower-case headers.
HeaderName = Annotated[str, StringConstraints(pattern=r"^[!#$%&'*+.^_`|~0-9a-zA-Z-]+$", max_length=256)]
HttpMethod = Literal["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]
Protocol = Literal["http", "http2", "grpc", "tcp", "tls", "mongo"]
MtlsMode = Literal["STRICT", "PERMISSIVE", "DISABLE"]
Severity = Literal["error", "warning", "info"]
RetryOn = Literal[
    "5xx",
    "gateway-error",
    "reset",
    "connect-failure",
    "retriable-4xx",
    "refused-stream",
    "retriable-status-codes",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
]
DEFAULT_RETRY_ON: tuple[RetryOn, ...] = ("5xx", "reset", "connect-failure")

# The one home of protocol sets: what carries HTTP requests, what needs HTTP/2 to the upstream,
# what is a byte stream to a proxy.
PROTOCOLS: frozenset[str] = frozenset(get_args(Protocol))
HTTP_PROTOCOLS = frozenset({"http", "http2", "grpc"})
HTTP2_PROTOCOLS = frozenset({"http2", "grpc"})
STREAM_PROTOCOLS = PROTOCOLS - HTTP_PROTOCOLS


class Strict(BaseModel):
    """Base of every intent model: unknown fields are errors; models are immutable."""

    # strict: YAML 1.2 types are taken as written, so `public: "yes"` or `port: "80"` is an error,
    # not a silent coercion
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True, strict=True)


def _exactly_one(model: BaseModel, fields: tuple[str, ...], what: str) -> None:
    chosen = [f for f in fields if getattr(model, f) is not None]
    if len(chosen) != 1:
        raise ValueError(f"{what} takes exactly one of {', '.join(fields)}")


def _unique(values: list[Any], what: str) -> None:
    seen: set[Any] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{what} {value!r} is listed twice")
        seen.add(value)


# ---------------------------------------------------------------------------------------------
# Shared pieces


# Retries, timeouts and connection settings (issue 12) -----------------------------------------

# The status codes a rule may retry on: the 4xx and 5xx codes Go's net/http names, since Istio
# reads a number in HTTPRetry.retryOn as a status code only when http.StatusText knows it
# (pilot/pkg/networking/core/route/retry/retry.go, parseRetryOn).
RETRIABLE_STATUS_CODES = frozenset(
    [*range(400, 419), 421, 422, 423, 424, 425, 426, 428, 429, 431, 451, *range(500, 509), 510, 511])
StatusCode = Annotated[int, AfterValidator(lambda code: _retriable_status(code))]


def _retriable_status(code: int) -> int:
    if code not in RETRIABLE_STATUS_CODES:
        raise ValueError(f"{code} is not a 4xx or 5xx status code that can be retried "
                         "(one HTTP names, such as 409, 429, 503)")
    return code


def _at_least_a_millisecond(text: str) -> str:
    # Envoy rounds a back-off under 1ms up to 1ms; Istio refuses it (HTTPRetry.backoff >= 1ms)
    if duration_seconds(text) < Decimal("0.001"):
        raise ValueError("a back-off interval is at least 1ms")
    return text


BackoffInterval = Annotated[str, AfterValidator(_at_least_a_millisecond)]
# Envoy's back-off cap when none is given: 10 times the base interval (router filter docs)
BACKOFF_MAX_FACTOR = 10


class Backoff(Strict):
    """Envoy's fully jittered exponential back-off between tries: retry N waits a random time
    below min((2^N - 1) x base, max)."""

    base: BackoffInterval
    max: BackoffInterval | None = None  # unset: 10 x base

    def max_interval(self) -> str:
        """`max`, else 10 x `base`, as a duration string."""
        if self.max is not None:
            return self.max
        return f"{(duration_seconds(self.base) * BACKOFF_MAX_FACTOR * 1000).normalize():f}ms"

    @model_validator(mode="after")
    def _ordered(self) -> Backoff:
        if self.max is not None and duration_seconds(self.max) < duration_seconds(self.base):
            raise ValueError(f"the back-off max {self.max} is shorter than its base {self.base}")
        return self


class Retries(Strict):
    attempts: Annotated[int, Field(ge=0, le=100)]
    perTryTimeout: Timeout | None = None  # each try, the first included; 0s: none of its own
    retryOn: list[RetryOn] = Field(default_factory=lambda: list(DEFAULT_RETRY_ON))
    statusCodes: list[StatusCode] = []  # answers retried whatever retryOn says
    backoff: Backoff | None = None
    # Retrying POST/PATCH can duplicate side effects; a rule must opt in explicitly.
    allowNonIdempotent: bool = False

    def conditions(self) -> list[str]:
        """Envoy's retry_on conditions: retryOn, with retriable-status-codes when codes are listed."""
        written: list[str] = list(dict.fromkeys(self.retryOn))
        if self.statusCodes and "retriable-status-codes" not in written:
            written.append("retriable-status-codes")
        return written

    @model_validator(mode="after")
    def _codes_listed(self) -> Retries:
        _unique(list(self.statusCodes), "status code")
        if "retriable-status-codes" in self.retryOn and not self.statusCodes:
            raise ValueError("retryOn retriable-status-codes retries the codes of `statusCodes`, which lists none")
        return self


class ConnectionSettings(Strict):
    """How callers' sidecars keep their HTTP connections to the service (Istio
    connectionPool.http; Envoy's cluster HttpProtocolOptions)."""

    maxRequestsPerConnection: Annotated[int, Field(ge=1, le=INT32_MAX)] | None = None
    idleTimeout: Duration | None = None  # unset: 1h, Envoy's and Istio's default
    http2Upgrade: bool | None = None  # HTTP/1.1 requests go over HTTP/2 between the sidecars


# What a request without retries of its own gets on every target: Istio's default retry policy
# (retry.go, DefaultPolicy), which Istio applies to every route no VirtualService gives retries,
# so the envoy targets write it too. Istio retries every method so; so does this default.
BUILT_IN_RETRIES = Retries(attempts=2, retryOn=["connect-failure", "refused-stream", "unavailable", "cancelled"],
                           statusCodes=[503], allowNonIdempotent=True)


def retries_in_force(retries: Retries | None) -> Retries:
    """The retries a request gets: its own, else the built-in default (docs/intents.md)."""
    return retries if retries is not None else BUILT_IN_RETRIES


# Istio's connection pool settings are int32, Envoy's thresholds uint32: one range for both.
INT32_MAX = 2**31 - 1


class CircuitBreaker(Strict):
    maxConnections: Annotated[int, Field(ge=1, le=INT32_MAX)] | None = None
    maxPendingRequests: Annotated[int, Field(ge=1, le=INT32_MAX)] | None = None
    maxRequests: Annotated[int, Field(ge=1, le=INT32_MAX)] | None = None
    maxRetries: Annotated[int, Field(ge=0, le=INT32_MAX)] | None = None


class OutlierDetection(Strict):
    consecutive5xx: Annotated[int, Field(ge=1)] = 5
    interval: Duration = "10s"
    baseEjectionTime: Duration = "30s"
    maxEjectionPercent: Annotated[int, Field(ge=0, le=100)] = 10


class RingHash(Strict):
    header: HeaderName


class RingHashBalancer(Strict):
    ringHash: RingHash


def _string_or_mapping(value: Any) -> str:
    """Union tag for fields that take either a word or a mapping: one error, not one per branch."""
    return "mapping" if isinstance(value, (dict, BaseModel)) else "word"


SimpleLoadBalancer = Literal["round-robin", "least-request", "random"]
# The enum value of each simple balancer; Envoy's Cluster.lb_policy and Istio's
# LoadBalancerSettings.simple spell them alike.
LOAD_BALANCER_POLICIES: dict[str, str] = {
    "round-robin": "ROUND_ROBIN", "least-request": "LEAST_REQUEST", "random": "RANDOM",
}

LoadBalancer = Annotated[
    Annotated[SimpleLoadBalancer, Tag("word")] | Annotated[RingHashBalancer, Tag("mapping")],
    Discriminator(_string_or_mapping),
]


class Resilience(Strict):
    timeout: Timeout | None = None
    retries: Retries | None = None
    circuitBreaker: CircuitBreaker | None = None
    outlierDetection: OutlierDetection | None = None
    loadBalancer: LoadBalancer | None = None
    connections: ConnectionSettings | None = None


class SidecarSettings(Strict):
    """Where a generated Envoy sidecar listens on loopback (outside Kubernetes)."""

    outboundPort: Port | None = None
    adminPort: Port | None = None


# ---------------------------------------------------------------------------------------------
# Mesh


class Tracing(Strict):
    provider: Literal["zipkin", "opentelemetry"]
    address: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9.-]+:[0-9]{1,5}$")]
    samplingPercent: Percent = 1


class SdsCertificates(Strict):
    mode: Literal["sds"]
    sdsSocket: Annotated[str, StringConstraints(pattern=r"^/[^\s\x00-\x1f\x7f]*$")] = (
        "/run/spire/sockets/agent.sock"
    )


class FileCertificates(Strict):
    mode: Literal["files"]
    dir: Annotated[str, StringConstraints(pattern=r"^/[^\s\x00-\x1f\x7f]*$")] = "/etc/meshc/certs"


Certificates = Annotated[SdsCertificates | FileCertificates, Field(discriminator="mode")]


class Locality(Strict):
    """Where a platform's workloads run: Envoy's Locality and Istio's `region/zone/subzone`."""

    region: Name
    zone: Name | None = None
    subzone: Name | None = None

    @model_validator(mode="after")
    def _nested(self) -> Locality:
        if self.subzone is not None and self.zone is None:
            raise ValueError("a subzone lies inside a zone: name the zone too")
        return self

    def label(self) -> str:
        """Istio's locality string: `region/zone/subzone`, without trailing empty parts."""
        return "/".join(part for part in (self.region, self.zone, self.subzone) if part is not None)

    def distance(self, other: Locality | None) -> int:
        """How far `other` is from this locality, as Envoy and Istio rank failover: 0 the same
        region, zone and subzone, 1 the same region and zone, 2 the same region, 3 otherwise."""
        if other is None or other.region != self.region:
            return 3
        if other.zone != self.zone:
            return 2
        return 1 if other.subzone != self.subzone else 0


class PlatformBase(Strict):
    name: Name
    sidecar: SidecarSettings = SidecarSettings()
    certificates: Certificates = SdsCertificates(mode="sds")
    # where its workloads run, and on which network (docs/intents.md, Placements and failover)
    locality: Locality | None = None
    network: Name | None = None
    # the trust domain its certificate authority signs; unset, Mesh.trustDomain
    trustDomain: HostName | None = None


# An Istio Sidecar egress host: `namespace/host`, the namespace `*`, `.` or `~` or a name, the
# host `*` or a DNS name that may start with `*.` (istio.io, Sidecar, IstioEgressListener.hosts)
SidecarEgressHost = Annotated[
    str,
    StringConstraints(
        pattern=r"^(\*|\.|~|[a-z0-9]([-a-z0-9]*[a-z0-9])?)/(\*|(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)$",
        max_length=253,
    ),
]


# Core Kubernetes kinds meshc may write beside the mesh objects (Istio and Gateway API ones,
# which are always its own).
OwnableKind = Literal["Service", "ServiceAccount"]
OWNABLE_KINDS: tuple[OwnableKind, ...] = get_args(OwnableKind)


class Ownership(Strict):
    """What on a kubernetes platform is the mesh's to write (docs/intents.md, Platforms)."""

    # Services and ServiceAccounts meshc writes; without them the application's own chart owns
    # them and meshc refers to them by name
    kinds: list[OwnableKind] = list(OWNABLE_KINDS)
    # namespaces wholly the mesh's: a namespace-wide PeerAuthentication and default-deny there
    namespaces: list[Name] = []
    # the whole mesh of the cluster: a mesh-wide PeerAuthentication in the root namespace
    meshWide: bool = False

    @model_validator(mode="after")
    def _unique(self) -> Ownership:
        _unique(list(self.kinds), "kind")
        _unique(list(self.namespaces), "namespace")
        return self


class EastWestGateway(Strict):
    """How workloads on other networks reach a cluster's services (Istio's east-west gateway)."""

    address: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9.:-]+$", max_length=253)]
    port: Port = 15443


class KubernetesPlatform(PlatformBase):
    kind: Literal["kubernetes"]
    flavor: Literal["istio", "gateway-api"] = "istio"
    clusterDomain: HostName = "cluster.local"
    eastWestGateway: EastWestGateway | None = None
    # Istio's administrative root namespace (MeshConfig.rootNamespace): mesh-wide policy lives there
    rootNamespace: Name = "istio-system"
    owns: Ownership = Ownership()

    @model_validator(mode="after")
    def _root_is_not_a_namespace(self) -> KubernetesPlatform:
        # Istio applies selector-less policy in the root namespace to the whole mesh: a
        # namespace default-deny there would deny every workload of the cluster
        if self.rootNamespace in self.owns.namespaces:
            raise ValueError(f"owns.namespaces lists the root namespace {self.rootNamespace!r}, whose policy is "
                             "mesh-wide in Istio; say `owns.meshWide: true` for the whole mesh")
        return self
    # hosts every Sidecar lets out besides the service's calls: the mesh's own infrastructure
    # (istiod, trace and metric collectors), such as `istio-system/*`
    meshHosts: list[SidecarEgressHost] = []
    # what a sidecar does with a host outside its egress hosts: refuse it (REGISTRY_ONLY) or pass
    # it through unmanaged (ALLOW_ANY)
    outboundTrafficPolicy: Literal["REGISTRY_ONLY", "ALLOW_ANY"] = "REGISTRY_ONLY"


class CloudFoundryPlatform(PlatformBase):
    kind: Literal["cloudfoundry"]
    appsDomain: HostName
    internalDomain: HostName = "apps.internal"


class VmPlatform(PlatformBase):
    kind: Literal["vm"]
    flavor: Literal["static", "istio"] = "static"
    controlPlane: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9.-]+:[0-9]{1,5}$")] | None = None

    @model_validator(mode="after")
    def _control_plane_only_for_istio(self) -> VmPlatform:
        if self.flavor == "istio" and self.controlPlane is None:
            raise ValueError("a vm platform of flavor istio needs controlPlane")
        if self.flavor == "static" and self.controlPlane is not None:
            raise ValueError("controlPlane is for flavor istio only; a static vm has no control plane")
        return self


Platform = Annotated[
    KubernetesPlatform | CloudFoundryPlatform | VmPlatform, Field(discriminator="kind")
]


class Suppression(Strict):
    code: Annotated[str, StringConstraints(pattern=r"^MESH[0-9]{3}$")]
    name: Annotated[Line, StringConstraints(min_length=1, max_length=253)] | None = None


# An overlay folder: relative to the mesh root, plain segments; none starts with '.', so no
# '.', '..' or hidden folder (which the loader never reads) can be named.
_FOLDER_SEGMENT = r"[A-Za-z0-9_][A-Za-z0-9_.-]*"
OverlayFolder = Annotated[str, StringConstraints(pattern=rf"^{_FOLDER_SEGMENT}(/{_FOLDER_SEGMENT})*$",
                                                 max_length=255)]


class Environment(Strict):
    """One environment of the mesh (docs/intents.md, "Environments"): the base intents with its
    overlay folders applied in order. Its name is a DNS-1123 label, so it is also a safe
    output directory name."""

    name: Name
    overlays: list[OverlayFolder] = []

    def folders(self) -> list[str]:
        return list(self.overlays) or [f"environments/{self.name}"]


def check_environments(environments: list[Environment]) -> None:
    _unique([e.name for e in environments], "environment")
    folders = sorted({folder for e in environments for folder in e.folders()})
    for folder in folders:
        inner = next((f for f in folders if f.startswith(folder + "/")), None)
        if inner is not None:
            raise ValueError(f"overlay folder {inner!r} lies inside overlay folder {folder!r}; "
                             "a file belongs to one overlay folder")


class Mesh(Strict):
    apiVersion: Literal["meshc/v1"]
    kind: Literal["Mesh"]
    name: Name
    trustDomain: HostName = "cluster.local"
    defaultNamespace: Name = "default"
    mtls: MtlsMode = "STRICT"
    authorization: Literal["deny", "allow"] = "deny"
    defaults: Resilience = Resilience()
    tracing: Tracing | None = None
    exclude: list[Annotated[Line, StringConstraints(min_length=1)]] = []
    platforms: Annotated[list[Platform], Field(min_length=1)]
    suppress: list[Suppression] = []
    environments: list[Environment] = []

    @model_validator(mode="after")
    def _environments(self) -> Mesh:
        check_environments(self.environments)
        return self


# ---------------------------------------------------------------------------------------------
# End-user authentication (issue 12, auth): JWT providers of a Service or a Gateway


class JwtHeader(Strict):
    name: HeaderName
    prefix: Annotated[Line, StringConstraints(max_length=64)] = ""  # such as "Bearer "


class JwtLocations(Strict):
    """Where a provider's token is read; a provider without any reads `Authorization: Bearer`
    and the `access_token` query parameter (Envoy's and Istio's default locations)."""

    headers: list[JwtHeader] = []
    params: list[HeaderName] = []

    @model_validator(mode="after")
    def _some(self) -> JwtLocations:
        if not self.headers and not self.params:
            raise ValueError("`from` needs headers or params; leave it out for Authorization: Bearer")
        _unique([h.name.lower() for h in self.headers], "header")
        _unique(list(self.params), "query parameter")
        return self


def _jwks_json(text: str) -> str:
    import json

    try:
        document = json.loads(text)
    except ValueError as error:
        raise ValueError(f"inline JWKS is not JSON: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list) or not document["keys"]:
        raise ValueError('inline JWKS must be a JSON Web Key Set: {"keys": [...]} with at least one key')
    return text


class Jwks(Strict):
    """The provider's public keys: fetched from `uri`, or `inline` (a JSON Web Key Set)."""

    uri: Annotated[str, StringConstraints(pattern=r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[^\s#]*)?$",
                                          max_length=2048)] | None = None
    inline: Annotated[str, StringConstraints(min_length=2, max_length=65536), AfterValidator(_jwks_json)] | None = None

    @model_validator(mode="after")
    def _one(self) -> Jwks:
        _exactly_one(self, ("uri", "inline"), "jwks")
        return self


class JwtProvider(Strict):
    name: Name
    issuer: Annotated[Line, StringConstraints(min_length=1, max_length=1024)]
    audiences: list[Annotated[Line, StringConstraints(min_length=1, max_length=1024)]] = []
    jwks: Jwks
    from_: Annotated[JwtLocations | None, Field(alias="from")] = None
    forward: bool = False  # keep the token in the request the backend receives


def _unique_providers(providers: list[JwtProvider]) -> list[JwtProvider]:
    _unique([p.name for p in providers], "jwt provider")
    _unique([p.issuer for p in providers], "jwt issuer")
    return providers


JwtProviders = Annotated[list[JwtProvider], AfterValidator(_unique_providers)]


# ---------------------------------------------------------------------------------------------
# Service


class ServicePort(Strict):
    name: Name
    port: Port
    protocol: Protocol
    targetPort: Port | None = None

    @property
    def app_port(self) -> int:
        """Where the application listens: targetPort, else the service port itself."""
        return self.targetPort or self.port


class Version(Strict):
    labels: dict[LabelKey, LabelValue] = {}


class Endpoint(Strict):
    address: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9.:-]+$", max_length=253)]
    version: Name | None = None


# Every target enforces rateLimit with Envoy's local token bucket: it refuses a fill_interval
# under 50ms (local_ratelimit.proto) and holds at most 2^32-1 tokens (uint32).
TOKEN_BUCKET_MIN_FILL = Decimal("0.05")
TOKEN_BUCKET_MAX_TOKENS = 2**32 - 1


def token_bucket_scale(per: str) -> int:
    """How many `per` periods make one refill of Envoy's token bucket: the first whole
    multiple of `per` that reaches 50ms (by arithmetic: `per` may be a tiny fraction of 1ms)."""
    return max(1, int((TOKEN_BUCKET_MIN_FILL / duration_seconds(per)).to_integral_value(rounding=ROUND_CEILING)))


class RateLimit(Strict):
    requests: Annotated[int, Field(ge=1, le=INT32_MAX)]
    per: Duration

    @model_validator(mode="after")
    def _enforceable(self) -> RateLimit:
        if self.requests * token_bucket_scale(self.per) > TOKEN_BUCKET_MAX_TOKENS:
            raise ValueError(f"{self.requests} requests per {self.per} is a rate above what Envoy's token bucket "
                             f"holds ({TOKEN_BUCKET_MAX_TOKENS} per 50ms)")
        return self


class Placement(Strict):
    """One platform a Service runs on, when it runs on several (docs/intents.md)."""

    platform: Name
    endpoints: list[Endpoint] = []
    # tiers of failover: a caller uses priority 1 only when every endpoint of priority 0 it
    # reaches is ejected, and so on; within a priority, the caller's nearest locality first
    priority: Annotated[int, Field(ge=0, le=9)] = 0
    # its share of its tier's traffic beside the tier's other placements (1 where unset once any
    # placement of the service sets one); unset everywhere, a tier is shared by its endpoints
    weight: Annotated[int, Field(ge=1, le=100)] | None = None


class RateLimitDescriptor(RateLimit):
    """A bucket of its own for the requests whose header `header` has the value `value`."""

    header: HeaderName
    value: HeaderValue


class RouteRateLimit(RateLimit):
    """A rule's token bucket (docs/intents.md): `requests` per `per` for the requests the rule
    takes; a request matching a descriptor takes from that descriptor's bucket instead."""

    descriptors: Annotated[list[RateLimitDescriptor], Field(max_length=16)] = []

    @model_validator(mode="after")
    def _one_header(self) -> RouteRateLimit:
        headers = sorted({d.header.lower() for d in self.descriptors})
        if len(headers) > 1:
            raise ValueError(f"descriptors name one header, not {', '.join(headers)}: a request would match several")
        _unique([d.value for d in self.descriptors], "descriptor value")
        return self


class Service(Strict):
    apiVersion: Literal["meshc/v1"]
    kind: Literal["Service"]
    name: Name
    namespace: Name | None = None
    platform: Name | None = None
    placements: list[Placement] = []
    owner: Line | None = None
    public: bool = False
    ports: Annotated[list[ServicePort], Field(min_length=1)]
    versions: dict[Name, Version] = {}
    endpoints: list[Endpoint] = []
    calls: list[Ref] = []
    # the workload's service account: its identity is ns/<namespace>/sa/<serviceAccount>
    serviceAccount: Name | None = None
    # hosts the service's sidecar may reach besides its calls (kubernetes platforms only)
    egressHosts: list[SidecarEgressHost] = []
    mtls: MtlsMode | None = None
    resilience: Resilience | None = None
    rateLimit: RateLimit | None = None
    sidecar: SidecarSettings | None = None
    # end-user authentication at the service's sidecar (issue 12, auth)
    jwt: JwtProviders = []

    @model_validator(mode="after")
    def _unique_ports(self) -> Service:
        _unique([p.name for p in self.ports], "port name")
        _unique([p.port for p in self.ports], "port number")
        _unique(self.calls, "call")
        return self

    @model_validator(mode="after")
    def _one_way_to_place(self) -> Service:
        if (self.platform is None) == (not self.placements):
            raise ValueError("a Service names `platform` (one platform) or `placements` (several), exactly one")
        if self.placements and self.endpoints:
            raise ValueError("with `placements`, each placement on a vm platform lists its own `endpoints`")
        _unique([p.platform for p in self.placements], "placement platform")
        return self

    def platform_names(self) -> list[str]:
        """Every platform the service runs on, in the order written."""
        return [self.platform] if self.platform is not None else [p.platform for p in self.placements]


# ---------------------------------------------------------------------------------------------
# Route


class StringMatch(Strict):
    exact: Line | None = None
    prefix: Line | None = None
    regex: Annotated[Line, StringConstraints(min_length=1)] | None = None
    present: Literal[True] | None = None

    @model_validator(mode="after")
    def _one(self) -> StringMatch:
        _exactly_one(self, ("exact", "prefix", "regex", "present"), "a string match")
        return self


class PathMatch(Strict):
    exact: Annotated[Line, StringConstraints(pattern=r"^/")] | None = None
    prefix: Annotated[Line, StringConstraints(pattern=r"^/")] | None = None
    regex: Annotated[Line, StringConstraints(min_length=1)] | None = None

    @model_validator(mode="after")
    def _one(self) -> PathMatch:
        _exactly_one(self, ("exact", "prefix", "regex"), "a path match")
        return self


class Match(Strict):
    path: PathMatch | None = None
    method: HttpMethod | None = None
    headers: dict[HeaderName, StringMatch] = {}
    query: dict[HeaderName, StringMatch] = {}
    sni: list[HostName] = []
    port: Port | None = None


# A header value written into a request or response: visible ASCII and inner spaces, no `%`
# (Envoy reads `%...%` in a header value as a command operator, so a literal `%` would not stay
# literal everywhere), at most 4096 characters (Gateway API HTTPHeader.value).
_HEADER_VALUE = re.compile(r"[!-$&-~]([ \t!-$&-~]*[!-$&-~])?")


def _header_value(text: str) -> str:
    if _HEADER_VALUE.fullmatch(text) is None:
        raise ValueError("a header value is visible ASCII with inner spaces, without `%` (Envoy reads `%...%` "
                         "as a command), and does not start or end with a space")
    return text


HeaderValue = Annotated[str, StringConstraints(max_length=4096), AfterValidator(_header_value),
                        Field(json_schema_extra={"pattern": _HEADER_VALUE.pattern.join("^$")})]
# The Gateway API takes at most 16 entries in each of set, add and remove (HTTPHeaderFilter).
HEADER_EDITS_MAX = 16
# Envoy refuses to modify pseudo-headers and `host` (HeaderValueOption); the Host is rewritten
# with a rule's rewrite, never as a header edit.
UNMODIFIABLE_HEADERS = frozenset({"host"})


class HeaderEdits(Strict):
    """One direction's edits: `set` overwrites, `add` appends, `remove` drops (docs/intents.md)."""

    set: Annotated[dict[HeaderName, HeaderValue], Field(max_length=HEADER_EDITS_MAX)] = {}
    add: Annotated[dict[HeaderName, HeaderValue], Field(max_length=HEADER_EDITS_MAX)] = {}
    remove: Annotated[list[HeaderName], Field(max_length=HEADER_EDITS_MAX)] = []

    def names(self) -> list[str]:
        """Every header name the edits touch, lower-cased, in the order written."""
        return [name.lower() for name in (*self.set, *self.add, *self.remove)]

    def lowered(self) -> dict[str, Any]:
        """The non-empty edits with lower-case names (Envoy and Istio keep names lower-case)."""
        out: dict[str, Any] = {}
        for operation in ("set", "add"):
            values = getattr(self, operation)
            if values:
                out[operation] = {name.lower(): value for name, value in values.items()}
        if self.remove:
            out["remove"] = [name.lower() for name in self.remove]
        return out

    @model_validator(mode="after")
    def _one_edit_per_header(self) -> HeaderEdits:
        names = self.names()
        if not names:
            raise ValueError("header edits need at least one of set, add, remove")
        _unique(names, "header (names compare case-insensitively; each header takes one of set, add, remove)")
        fixed = sorted(UNMODIFIABLE_HEADERS.intersection(names))
        if fixed:
            raise ValueError(f"header {fixed[0]!r} cannot be edited (Envoy refuses to edit the Host header)")
        return self


class HeaderModifier(Strict):
    request: HeaderEdits | None = None
    response: HeaderEdits | None = None

    def directions(self) -> list[tuple[str, HeaderEdits]]:
        """("request" | "response", edits) for each direction that has edits."""
        return [(d, e) for d, e in (("request", self.request), ("response", self.response)) if e is not None]

    @model_validator(mode="after")
    def _something(self) -> HeaderModifier:
        if self.request is None and self.response is None:
            raise ValueError("headers need request, response or both")
        return self


class Destination(Strict):
    service: Ref | None = None
    version: Name | None = None
    port: Port | None = None
    weight: Annotated[int, Field(ge=0, le=100)] | None = None
    headers: HeaderModifier | None = None


class Delay(Strict):
    fixed: Duration
    percent: Percent = 100


class Abort(Strict):
    status: Annotated[int, Field(ge=200, le=599)]
    percent: Percent = 100


class Fault(Strict):
    delay: Delay | None = None
    abort: Abort | None = None

    @model_validator(mode="after")
    def _something(self) -> Fault:
        if self.delay is None and self.abort is None:
            raise ValueError("a fault needs a delay, an abort or both")
        return self


class Mirror(Strict):
    service: Ref | None = None
    version: Name | None = None
    port: Port | None = None
    percent: Percent = 100


# A host a rule sends to (a redirect's or a rewrite's): a name, never a wildcard.
TargetHost = Annotated[str, StringConstraints(
    pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", max_length=253)]


class Rewrite(Strict):
    """What the destination receives instead (docs/intents.md): the path, with `prefix` in
    place of the matched prefix or `path` whole, and the Host header `host`."""

    prefix: Annotated[Line, StringConstraints(pattern=r"^/")] | None = None
    path: Annotated[Line, StringConstraints(pattern=r"^/")] | None = None
    host: TargetHost | None = None

    @model_validator(mode="after")
    def _something(self) -> Rewrite:
        if self.prefix is not None and self.path is not None:
            raise ValueError("a rewrite takes `prefix` (the matched prefix) or `path` (the whole path), not both")
        if self.prefix is None and self.path is None and self.host is None:
            raise ValueError("a rewrite needs a prefix, a path or a host")
        return self


class Redirect(Strict):
    """Where the Location of a redirect points (docs/intents.md): each field replaces that part
    of the request's URL; none at all redirects to the request's own URL with `status`."""

    scheme: Literal["http", "https"] | None = None
    host: TargetHost | None = None
    port: Port | None = None
    path: Annotated[Line, StringConstraints(pattern=r"^/")] | None = None
    prefix: Annotated[Line, StringConstraints(pattern=r"^/")] | None = None  # replaces the matched prefix
    # 301, as Istio's HTTPRedirect.redirectCode and Envoy's RedirectAction.response_code default
    # (the Gateway API's 302 is written out on that flavour)
    status: Literal[301, 302, 303, 307, 308] = 301

    @model_validator(mode="after")
    def _one_path(self) -> Redirect:
        if self.path is not None and self.prefix is not None:
            raise ValueError("a redirect takes `path` (the whole path) or `prefix` (the matched prefix), not both")
        return self


# ---------------------------------------------------------------------------------------------
# CORS on a rule (docs/intents.md, "CORS")

# A browser's serialised origin (RFC 6454 6.2: lower-case scheme and host, the port only when it
# is not the scheme's own), where the host may also be `*` (any host) or start with `*.` (one or
# more labels); or `*`, any origin. The Gateway API's allowOrigins form, lower-case.
ORIGIN_PATTERN = re.compile(
    r"^\*$|^(?P<scheme>https?)://(?P<host>\*|(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)"
    r"(:(?P<port>[0-9]{1,5}))?$")


def _origin(text: str) -> str:
    match = ORIGIN_PATTERN.fullmatch(text)
    if match is None:
        raise ValueError("an origin is `*` or `http(s)://host[:port]` in lower case, the host a name, `*` or "
                         "`*.` and a name (such as https://*.example.com)")
    port = match.group("port")
    if port is not None and not 1 <= int(port) <= 65535:
        raise ValueError(f"port {port} of origin {text!r} is not between 1 and 65535")
    return text


Origin = Annotated[str, StringConstraints(max_length=253), AfterValidator(_origin),
                   Field(json_schema_extra={"pattern": ORIGIN_PATTERN.pattern})]


class OriginRegex(Strict):
    regex: Annotated[Line, StringConstraints(min_length=1)]


OriginMatch = Annotated[
    Annotated[Origin, Tag("word")] | Annotated[OriginRegex, Tag("mapping")], Discriminator(_string_or_mapping)]
CorsMethod = HttpMethod | Literal["*"]
CorsHeader = HeaderName  # `*` is a header-name token too: every header


def _matches_whole(pattern: str, text: str) -> bool:
    try:
        return re.fullmatch(pattern, text) is not None
    except re.error:
        return False


def _alone(values: list[str], what: str) -> None:
    if "*" in values and len(values) > 1:
        raise ValueError(f"{what} takes `*` (every one) alone, not beside other values")


class Cors(Strict):
    """A rule's CORS policy (Gateway API HTTPCORSFilter, Istio CorsPolicy, Envoy CorsPolicy)."""

    allowOrigins: Annotated[list[OriginMatch], Field(min_length=1, max_length=64)]
    allowMethods: Annotated[list[CorsMethod], Field(max_length=10)] = []
    allowHeaders: Annotated[list[CorsHeader], Field(max_length=64)] = []
    exposeHeaders: Annotated[list[CorsHeader], Field(max_length=64)] = []
    # the Gateway API's default (maxAge: 5), written out on every target
    maxAge: Duration = "5s"
    allowCredentials: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> Cors:
        _unique([o for o in self.allowOrigins if isinstance(o, str)], "origin")
        for pattern in self.allowOrigins:
            # Envoy's cors filter tries every matcher on the text `*` first: one matching it allows every origin
            if not isinstance(pattern, str) and _matches_whole(pattern.regex, "*"):
                raise ValueError(f"origin regex {pattern.regex!r} matches `*`, which Envoy takes as every origin; "
                                 "write `*` for that")
        _alone([o for o in self.allowOrigins if isinstance(o, str)]
               + (["regex"] if any(not isinstance(o, str) for o in self.allowOrigins) else []), "allowOrigins")
        _unique(list(self.allowMethods), "method")
        _unique([h.lower() for h in self.allowHeaders], "allowed header")
        _unique([h.lower() for h in self.exposeHeaders], "exposed header")
        for field in ("allowMethods", "allowHeaders", "exposeHeaders"):
            _alone(list(getattr(self, field)), field)
        if self.allowCredentials and "*" in self.exposeHeaders:
            raise ValueError("exposeHeaders `*` is taken literally by browsers when credentials are allowed "
                             "(Fetch); list the headers")
        seconds = duration_seconds(self.maxAge)
        if seconds != seconds.to_integral_value():
            raise ValueError("maxAge is whole seconds (Access-Control-Max-Age)")
        return self

    @property
    def max_age_seconds(self) -> int:
        return int(duration_seconds(self.maxAge))


class RouteRule(Strict):
    match: list[Match] = []
    to: list[Destination] = []
    redirect: Redirect | None = None
    timeout: Timeout | None = None  # 0s: no limit, even where the service sets one
    retries: Retries | None = None
    fault: Fault | None = None
    mirror: Mirror | None = None
    mirrors: list[Mirror] = []  # several mirrors, each with its own percent
    rewrite: Rewrite | None = None
    headers: HeaderModifier | None = None
    cors: Cors | None = None
    rateLimit: RouteRateLimit | None = None  # a token bucket at each proxy that applies the rule

    def written_mirrors(self) -> list[tuple[tuple[Any, ...], Mirror]]:
        """Every mirror of the rule with its path below the rule (`mirror` or `mirrors`)."""
        if self.mirror is not None:
            return [(("mirror",), self.mirror)]
        return [(("mirrors", index), mirror) for index, mirror in enumerate(self.mirrors)]

    @model_validator(mode="after")
    def _shape(self) -> RouteRule:
        if self.redirect is not None:
            extra = [f for f in ("to", "retries", "fault", "mirror", "mirrors", "rewrite", "headers", "cors",
                                 "rateLimit")
                     if getattr(self, f)]
            if extra:
                raise ValueError(f"a redirect rule cannot also have {', '.join(extra)}")
            return self
        if not self.to:
            raise ValueError("a rule needs `to` (one or more destinations) or `redirect`")
        if self.mirror is not None and self.mirrors:
            raise ValueError("a rule takes `mirror` (one) or `mirrors` (several), not both")
        if len(self.to) > 1:
            if any(d.weight is None for d in self.to):
                raise ValueError("with more than one destination every destination needs a weight")
            total = sum(d.weight or 0 for d in self.to)
            if total != 100:
                raise ValueError(f"destination weights sum to {total}, not 100")
        self._headers_edited_once()
        return self

    def _headers_edited_once(self) -> None:
        """A header is edited by the rule or by its destinations, not both: backends apply the
        two levels in different orders, so the same name at both would mean different things."""
        for direction in ("request", "response"):
            edits = getattr(self.headers, direction) if self.headers is not None else None
            for destination in self.to:
                own = getattr(destination.headers, direction) if destination.headers is not None else None
                shared = sorted(set(edits.names()) & set(own.names())) if edits and own else []
                if shared:
                    raise ValueError(f"{direction} header {shared[0]!r} is edited by the rule and by a destination; "
                                     "edit it in one place")


class Route(Strict):
    apiVersion: Literal["meshc/v1"]
    kind: Literal["Route"]
    name: Name
    namespace: Name | None = None
    service: Ref | None = None
    gateway: Ref | None = None
    hosts: list[HostName] = []
    # an ingress Route attaches to these listeners of its gateway only, by name and/or by port
    # (Gateway API ParentReference sectionName and port); unset, to every listener
    listeners: list[Name] = []
    ports: list[Port] = []
    rules: Annotated[list[RouteRule], Field(min_length=1)]

    @model_validator(mode="after")
    def _target(self) -> Route:
        if (self.service is None) == (self.gateway is None):
            raise ValueError("a Route names either `service` (mesh route) or `gateway` (ingress route)")
        if self.service is not None and (self.listeners or self.ports):
            raise ValueError("`listeners` and `ports` attach an ingress Route (with `gateway`) to some of its "
                             "gateway's listeners")
        _unique(self.listeners, "listener")
        _unique(self.ports, "port")
        if self.gateway is not None and not self.hosts:
            raise ValueError("an ingress Route needs `hosts`")
        if self.service is not None and self.hosts:
            raise ValueError("`hosts` belongs to ingress Routes (with `gateway`)")
        _unique(self.hosts, "host")
        return self


# ---------------------------------------------------------------------------------------------
# AccessPolicy


class NamespaceSource(Strict):
    namespace: Name


class GatewaySource(Strict):
    gateway: Ref


class IpBlocksSource(Strict):
    """Clients of a gateway whose connection comes from one of the blocks (Istio source.ipBlocks)."""

    ipBlocks: Annotated[list[Cidr], Field(min_length=1)]


class RemoteIpBlocksSource(Strict):
    """Clients of a gateway whose original address, behind `Gateway.trustedProxies`, is in one of
    the blocks (Istio source.remoteIpBlocks)."""

    remoteIpBlocks: Annotated[list[Cidr], Field(min_length=1)]


class UnauthenticatedSource(Strict):
    """A caller without a mesh identity: `"*"`'s complement (issue 12, auth)."""

    unauthenticated: Literal[True]


_SOURCE_TAGS = ("gateway", "unauthenticated", "ipBlocks", "remoteIpBlocks")


def _source_tag(value: Any) -> str:
    if isinstance(value, dict):
        return next((tag for tag in _SOURCE_TAGS if tag in value), "namespace")
    if isinstance(value, BaseModel):
        return {GatewaySource: "gateway", UnauthenticatedSource: "unauthenticated", IpBlocksSource: "ipBlocks",
                RemoteIpBlocksSource: "remoteIpBlocks"}.get(type(value), "namespace")
    return "service"


# `"*"` (any mesh identity), a service reference, {namespace: ...}, {gateway: ...} or
# {unauthenticated: true}
ServiceOrAny = Annotated[str, StringConstraints(pattern=SOURCE_PATTERN)]
Source = Annotated[
    Annotated[ServiceOrAny, Tag("service")]
    | Annotated[NamespaceSource, Tag("namespace")]
    | Annotated[GatewaySource, Tag("gateway")]
    | Annotated[UnauthenticatedSource, Tag("unauthenticated")]
    | Annotated[IpBlocksSource, Tag("ipBlocks")]
    | Annotated[RemoteIpBlocksSource, Tag("remoteIpBlocks")],
    Discriminator(_source_tag),
]
# An end user, `<issuer>/<subject>` split at the last `/`: `*` any valid token, `<issuer>/*` any
# subject of the issuer (docs/intents.md, AccessPolicy)
RequestPrincipal = Annotated[Line, StringConstraints(pattern=r"^(\*|[^\s*]+/(\*|[^\s*/]+))$", max_length=2048)]
# A value a header or claim is compared with: exact, `prefix*`, `*suffix`, or `*` (present)
ValuePattern = Annotated[Line, StringConstraints(pattern=r"^(\*|\*?[^*]+|[^*]+\*)$", max_length=1024)]
ClaimName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_:.-]+$", max_length=256)]


class AccessRule(Strict):
    # unset: any caller, with a mesh identity or without
    from_: Annotated[list[Source] | None, Field(alias="from", min_length=1)] = None
    methods: list[HttpMethod] = []
    paths: list[Annotated[Line, StringConstraints(pattern=r"^(/[^\s]*|\*)$")]] = []
    ports: list[Port] = []
    # the end user and the request (issue 12, auth): HTTP ports only
    requestPrincipals: list[RequestPrincipal] = []
    claims: dict[ClaimName, Annotated[list[ValuePattern], Field(min_length=1)]] = {}
    headers: dict[HeaderName, Annotated[list[ValuePattern], Field(min_length=1)]] = {}

    @property
    def narrows_requests(self) -> bool:
        """Whether the rule looks into HTTP requests (methods, paths, the end user, headers)."""
        return bool(self.methods or self.paths or self.requestPrincipals or self.claims or self.headers)


class AccessPolicy(Strict):
    apiVersion: Literal["meshc/v1"]
    kind: Literal["AccessPolicy"]
    name: Name
    namespace: Name | None = None
    service: Ref | None = None
    gateway: Ref | None = None  # or the Gateway whose clients it admits (issue 12, auth)
    allow: list[AccessRule] = []
    deny: list[AccessRule] = []

    @model_validator(mode="after")
    def _target(self) -> AccessPolicy:
        _exactly_one(self, ("service", "gateway"), "an AccessPolicy")
        return self


# ---------------------------------------------------------------------------------------------
# Gateway


# TLS 1.2 cipher suites by their OpenSSL (BoringSSL) names, which Envoy's
# TlsParameters.cipher_suites and Istio's ServerTLSSettings.cipherSuites both take: Envoy's
# non-FIPS server list (TLS 1.3 suites are not configurable: "this setting has no effect when
# negotiating TLS 1.3").
CipherSuite = Literal[
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    "ECDHE-ECDSA-AES128-SHA", "ECDHE-RSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA", "ECDHE-RSA-AES256-SHA",
    "AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-SHA", "AES256-SHA",
]
# TLS below 1.2 is left out: Envoy's default ciphers no longer include any it could use.
TlsVersion = Literal["1.2", "1.3"]


class ClientValidation(Strict):
    """Mutual TLS at a gateway listener: clients present a certificate that chains to `ca`."""

    ca: Name  # the secret/ConfigMap (Kubernetes), SDS resource or file stem holding the CA bundle


class ListenerTls(Strict):
    mode: Literal["terminate", "passthrough"]
    certificate: Name | None = None
    # gateway TLS settings (issue 12, auth): client certificates, protocol versions, ciphers
    clientValidation: ClientValidation | None = None
    minVersion: TlsVersion | None = None
    cipherSuites: list[CipherSuite] = []

    @model_validator(mode="after")
    def _certificate(self) -> ListenerTls:
        if self.mode == "passthrough" and self.certificate is not None:
            raise ValueError("a passthrough listener does not terminate TLS and takes no certificate")
        terminating = [f for f in ("clientValidation", "minVersion", "cipherSuites") if getattr(self, f)]
        if self.mode == "passthrough" and terminating:
            raise ValueError(f"a passthrough listener does not terminate TLS and takes no {', '.join(terminating)}")
        _unique(list(self.cipherSuites), "cipher suite")
        if self.cipherSuites and self.minVersion == "1.3":
            raise ValueError("cipherSuites choose among TLS 1.2 suites, and minVersion 1.3 allows none of them "
                             "(TLS 1.3 suites are not configurable)")
        return self


class Listener(Strict):
    name: Name
    port: Port
    protocol: Literal["http", "https", "tls", "tcp"]
    hosts: Annotated[list[HostName], Field(min_length=1)]
    tls: ListenerTls | None = None
    httpsRedirect: bool = False

    @model_validator(mode="after")
    def _tls_matches_protocol(self) -> Listener:
        if self.protocol == "https" and (self.tls is None or self.tls.mode != "terminate"):
            raise ValueError("an https listener needs tls: {mode: terminate, certificate: ...}")
        if self.protocol == "tls" and self.tls is None:
            raise ValueError("a tls listener needs tls: {mode: passthrough} or {mode: terminate, ...}")
        if self.protocol in ("http", "tcp") and self.tls is not None:
            raise ValueError(f"a {self.protocol} listener takes no tls block")
        if self.httpsRedirect and self.protocol != "http":
            raise ValueError("httpsRedirect applies to http listeners only")
        return self


class GatewayDeployment(Strict):
    """An existing gateway deployment the Gateway configures (kubernetes platforms), such as
    Istio's default ingress gateway: meshc writes no ServiceAccount for it."""

    namespace: Name | None = None  # where the deployment runs; default the Gateway's namespace
    selector: Annotated[dict[LabelKey, LabelValue], Field(min_length=1)]
    serviceAccount: Name
    # the Kubernetes Service in front of it: flavor gateway-api binds to a deployment through
    # its Service (Istio's manual deployment)
    service: Name | None = None


class Gateway(Strict):
    apiVersion: Literal["meshc/v1"]
    kind: Literal["Gateway"]
    name: Name
    namespace: Name | None = None
    platform: Name
    deployment: GatewayDeployment | None = None
    listeners: Annotated[list[Listener], Field(min_length=1)]
    # the gateway's Envoy admin port on loopback (outboundPort does not apply to a gateway)
    sidecar: SidecarSettings | None = None
    # end-user authentication of every HTTP request the gateway receives (issue 12, auth)
    jwt: JwtProviders = []
    # proxies in front of the gateway that append to X-Forwarded-For: the client's address is
    # the one this many entries from its right end (Envoy xff_num_trusted_hops)
    trustedProxies: Annotated[int, Field(ge=0, le=16)] = 0

    @model_validator(mode="after")
    def _unique(self) -> Gateway:
        _unique([listener.name for listener in self.listeners], "listener name")
        return self


# ---------------------------------------------------------------------------------------------
# ExternalService


class ExternalTls(Strict):
    originate: bool = False
    sni: HostName | None = None


class ExternalPort(Strict):
    name: Name
    port: Port  # what the application calls
    protocol: Protocol
    targetPort: Port | None = None  # where the external host listens (docs/intents.md, "external ports")
    tls: ExternalTls | None = None  # this port's own TLS origination, instead of the service's

    @model_validator(mode="after")
    def _no_double_wrap(self) -> ExternalPort:
        if self.protocol == "tls" and self.tls is not None and self.tls.originate:
            raise ValueError("a tls port carries the application's own TLS; originating TLS on it would wrap it twice")
        return self


def _ip_address(text: str) -> str:
    ipaddress.ip_address(text)  # a ValueError says what is wrong
    return text


def _cidr(text: str) -> str:
    ipaddress.ip_network(text, strict=True)  # a ValueError says what is wrong (host bits set, ...)
    return text


IpAddress = Annotated[str, StringConstraints(max_length=45), AfterValidator(_ip_address)]
# An IP address or a CIDR block (`10.0.0.0/24`, `2001:db8::/32`), its host bits zero.
Cidr = Annotated[str, StringConstraints(max_length=49), AfterValidator(_cidr)]
Resolution = Literal["DNS", "STATIC", "NONE"]


class ExternalEndpoint(Strict):
    """One address a STATIC ExternalService is reached at (Istio WorkloadEntry)."""

    address: IpAddress
    # port name -> where this endpoint listens for it; unset ports use the port's upstream port
    ports: dict[Name, Port] = {}


class ExternalService(Strict):
    apiVersion: Literal["meshc/v1"]
    kind: Literal["ExternalService"]
    name: Name
    namespace: Name | None = None
    hosts: Annotated[list[HostName], Field(min_length=1)]
    ports: Annotated[list[ExternalPort], Field(min_length=1)]
    tls: ExternalTls = ExternalTls()
    # the addresses the application may dial instead of a host name (Istio ServiceEntry.addresses)
    addresses: list[Cidr] = []
    # how the sidecar finds where to connect: DNS names (hosts), STATIC endpoints, or NONE (the
    # address the application dialled); unset, DNS, or NONE when a host is a wildcard
    resolution: Resolution | None = None
    endpoints: list[ExternalEndpoint] = []

    @model_validator(mode="after")
    def _unique(self) -> ExternalService:
        _unique([p.name for p in self.ports], "port name")
        _unique([p.port for p in self.ports], "port number")
        _unique(list(self.addresses), "address")
        return self

    @model_validator(mode="after")
    def _resolved(self) -> ExternalService:
        resolution = self.effective_resolution
        if resolution == "STATIC" and not self.endpoints:
            raise ValueError("resolution STATIC needs `endpoints`: the addresses the sidecar connects to")
        if resolution != "STATIC" and self.endpoints:
            raise ValueError(f"`endpoints` are for resolution STATIC; with {resolution} the sidecar connects to "
                             + ("the hosts' DNS addresses" if resolution == "DNS" else "the address dialled"))
        if resolution == "DNS" and any(host.startswith("*") for host in self.hosts):
            raise ValueError("resolution DNS needs host names to resolve; a wildcard host takes resolution NONE "
                             "or STATIC")
        names = {p.name for p in self.ports}
        for endpoint in self.endpoints:
            unknown = sorted(set(endpoint.ports) - names)
            if unknown:
                raise ValueError(f"endpoint {endpoint.address} names port {unknown[0]!r}, which is not one of "
                                 f"the service's ports ({', '.join(sorted(names))})")
        return self

    def static_endpoints(self, port: ExternalPort) -> list[tuple[str, int]]:
        """(address, port) of each endpoint for one of the ports: the endpoint's own port for
        it, else the port's upstream port."""
        upstream = self.upstream_port(port)
        return [(endpoint.address, endpoint.ports.get(port.name, upstream)) for endpoint in self.endpoints]

    @property
    def effective_resolution(self) -> Resolution:
        """`resolution`, else NONE when a host is a wildcard (nothing to resolve), else DNS."""
        if self.resolution is not None:
            return self.resolution
        return "NONE" if any(host.startswith("*") for host in self.hosts) else "DNS"

    def origination(self, port: ExternalPort) -> ExternalTls | None:
        """The TLS the sidecar originates on this port, None for none: the port's own `tls`,
        else the service's `tls` on every port the application speaks in plain text (never on a
        `tls` port, whose bytes are already TLS). `sni` is the one written, if any (the port's,
        else the service's); without one the target uses the first host name."""
        chosen = port.tls if port.tls is not None else (self.tls if port.protocol != "tls" else None)
        if chosen is None or not chosen.originate:
            return None
        return ExternalTls(originate=True, sni=chosen.sni or self.tls.sni)

    def upstream_port(self, port: ExternalPort) -> int:
        """Where the sidecar connects for this port: `targetPort`; else, when it originates TLS
        and the service has exactly one `tls` port, that port (app on 80, TLS to 443); else the
        port itself."""
        if port.targetPort is not None:
            return port.targetPort
        secured = [p.port for p in self.ports if p.protocol == "tls"]
        return secured[0] if self.origination(port) is not None and len(secured) == 1 else port.port


# ---------------------------------------------------------------------------------------------
# RouteTest: requests and what must happen to them (`meshc test`, docs/intents.md)

# A Host header: a host name or IP address, optionally with `:port`.
HostHeader = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9*]([-A-Za-z0-9.*]*[A-Za-z0-9])?(:[0-9]{1,5})?$",
                                              max_length=259)]
RequestPath = Annotated[Line, StringConstraints(pattern=r"^/[^\s#]*$", max_length=4096)]


class BackendBehaviour(Strict):
    """How the destination answers the tries of a case's request (retries and timeouts)."""

    # the first tries' answers in turn: a failing status, or `reset` (the connection closed
    # without an answer); every later try is answered 200
    failures: Annotated[list[Annotated[int, Field(ge=400, le=599)] | Literal["reset"]], Field(max_length=20)] = []
    delay: Timeout = "0s"  # how long the destination takes to answer each try
    failureDelay: Timeout | None = None  # how long it takes to answer a failing try; unset: `delay`


TokenText = Annotated[Line, StringConstraints(min_length=1, max_length=1024)]


class RouteTestToken(Strict):
    """A JWT `meshc test` makes for a case (docs/intents.md, RouteTest): its claims, and whether
    its signature verifies with the issuer's keys."""

    issuer: TokenText
    subject: TokenText | None = None
    audiences: Annotated[list[TokenText], Field(max_length=20)] = []
    claims: Annotated[dict[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,128}$")],
                           TokenText | Annotated[list[TokenText], Field(max_length=20)]], Field(max_length=20)] = {}
    expired: bool = False  # its `exp` an hour ago
    signature: Literal["valid", "invalid"] = "valid"

    @model_validator(mode="after")
    def _registered_claims(self) -> RouteTestToken:
        taken = {"iss", "sub", "aud", "exp", "iat", "nbf"} & set(self.claims)
        if taken:
            raise ValueError(f"claims {sorted(taken)} are the token's own: write `issuer`, `subject`, `audiences`, "
                             "`expired`")
        return self


class RouteTestRequest(Strict):
    host: HostHeader
    path: RequestPath = "/"  # with the query string, if any: /search?q=1
    method: HttpMethod = "GET"
    headers: dict[HeaderName, Annotated[Line, StringConstraints(max_length=4096)]] = {}
    port: Port | None = None
    sni: HostName | None = None
    backend: BackendBehaviour | None = None
    token: RouteTestToken | None = None  # a JWT meshc makes, where the issuer's provider reads one
    # the TLS client (issue 12, auth): the CA its certificate chains to, and its highest version
    clientCa: Name | None = None
    tlsVersion: TlsVersion = "1.3"
    clientAddress: IpAddress | None = None  # where a gateway's client connects from (ipBlocks)


class ExpectedDestination(Strict):
    service: Ref
    version: Name | None = None
    port: Port | None = None
    weight: Annotated[int, Field(ge=1, le=100)] | None = None


class ExpectedMirror(Strict):
    service: Ref
    version: Name | None = None
    port: Port | None = None
    percent: Annotated[float, Field(ge=0, le=100)] | None = None


class RouteTestExpectation(Strict):
    # 200 means "forwarded to a destination" (its answer); anything else is the proxy's own
    # answer: 404 for no route, a redirect's status, an abort's status
    status: Annotated[int, Field(ge=200, le=599)] | None = None
    to: list[ExpectedDestination] | None = None
    mirrors: list[ExpectedMirror] | None = None  # every copy the rule sends ([]: none)
    redirect: Annotated[Line, StringConstraints(min_length=1, max_length=4096)] | None = None
    path: RequestPath | None = None
    host: HostHeader | None = None
    # request headers as each destination receives them (null: absent); several values of one
    # header are compared joined by `,`
    headers: dict[HeaderName, HeaderValue | None] | None = None
    # response headers as the client receives them from a destination that sends none of them
    responseHeaders: dict[HeaderName, HeaderValue | None] | None = None
    route: Ref | None = None
    rule: Annotated[int, Field(ge=0)] | None = None
    # how many tries the destination receives (with the request's `backend` behaviour)
    tries: Annotated[int, Field(ge=1, le=101)] | None = None

    @model_validator(mode="after")
    def _something(self) -> RouteTestExpectation:
        if all(getattr(self, f) is None for f in type(self).model_fields):
            raise ValueError("an expectation needs at least one of " + ", ".join(type(self).model_fields))
        if self.rule is not None and self.route is None:
            raise ValueError("`rule` is an index into the Rules of `route`: name the route too")
        return self


class RouteTestCase(Strict):
    name: Annotated[Line, StringConstraints(min_length=1, max_length=253)]
    request: RouteTestRequest
    expect: RouteTestExpectation


class RouteTest(Strict):
    apiVersion: Literal["meshc/v1"]
    kind: Literal["RouteTest"]
    name: Name
    namespace: Name | None = None
    caller: Ref | None = None  # the calling service: its sidecar sees the requests
    gateway: Ref | None = None  # or the Gateway that receives them
    cases: Annotated[list[RouteTestCase], Field(min_length=1)]

    @model_validator(mode="after")
    def _proxy(self) -> RouteTest:
        if (self.caller is None) == (self.gateway is None):
            raise ValueError("a RouteTest names either `caller` (a service's sidecar) or `gateway`")
        if self.gateway is not None and any(c.request.port is None for c in self.cases):
            raise ValueError("requests to a gateway need `port` (the listener port they arrive on)")
        _unique([c.name for c in self.cases], "case name")
        return self


# ---------------------------------------------------------------------------------------------
# Policy

PolicyKind = Literal["Mesh", "Service", "Route", "AccessPolicy", "Gateway", "ExternalService"]
CelText = Annotated[str, StringConstraints(min_length=1, max_length=4096), _without(_CEL_CONTROL_CHARACTER)]


class Policy(Strict):
    apiVersion: Literal["meshc/v1"]
    kind: Literal["Policy"]
    name: Name
    severity: Severity = "error"
    appliesTo: PolicyKind
    when: CelText | None = None
    rule: CelText
    message: Annotated[Line, StringConstraints(min_length=1, max_length=1024)]
    environments: list[Name] = []


# ---------------------------------------------------------------------------------------------
# Patch: a typed, located edit of one target's output for one workload (docs/intents.md, Patch)

# What a JSON or YAML writer can carry exactly: orjson writes 64-bit integers, no NaN or
# infinity (it would write null), and UTF-8 text only (no lone surrogates).
_JSON_INT_RANGE = (-(2**63), 2**64 - 1)


def _json_data(value: Any) -> Any:
    """`value` when it is JSON data both serialisers write as it is: objects with string keys,
    arrays, strings, integers in 64 bits, finite numbers, booleans and null."""
    pending: list[tuple[Any, str]] = [(value, "")]
    while pending:
        node, where = pending.pop()
        problem = None
        if isinstance(node, dict):
            for key, child in node.items():
                if not isinstance(key, str):
                    problem = f"the key {key!r} is not a string"
                    break
                pending.append((child, f"{where}/{key.replace('~', '~0').replace('/', '~1')}"))
        elif isinstance(node, list):
            pending.extend((child, f"{where}/{index}") for index, child in enumerate(node))
        elif isinstance(node, bool) or node is None:
            pass
        elif isinstance(node, int):
            if not _JSON_INT_RANGE[0] <= node <= _JSON_INT_RANGE[1]:
                problem = "the integer does not fit in 64 bits"
        elif isinstance(node, float):
            if node != node or node in (float("inf"), float("-inf")):
                problem = "JSON has no NaN or infinity"
        elif isinstance(node, str):
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                problem = "the string holds a lone surrogate, which is not text"
        else:
            problem = f"a {type(node).__name__} is not JSON data"
        if problem is not None:
            raise PydanticCustomError("json_data", "{problem} (at JSON Pointer '{where}' of the value)",
                                      {"problem": problem, "where": where})
    return value


JsonData = Annotated[Any, AfterValidator(_json_data)]
# RFC 6901: '/'-separated reference tokens, '~' escaped as '~0' and '/' as '~1'; '' is the whole document
JsonPointer = Annotated[str, StringConstraints(pattern=r"^(/([^/~]|~[01])*)*$", max_length=4096),
                        _without(_CONTROL_CHARACTER)]
PATCH_TARGETS = ("cloudfoundry", "envoy", "kubernetes", "vm")  # the registry's names (tests/test_patches.py)
PatchTarget = Literal["cloudfoundry", "envoy", "kubernetes", "vm"]
# Objects a patch names by kind alone: the one Envoy bootstrap of a proxy, a Cloud Foundry manifest.
UNNAMED_OBJECT_KINDS = ("EnvoyBootstrap", "CloudFoundryManifest")


class PatchObject(Strict):
    """Which object of the workload's artifacts: a kind, and for Kubernetes objects its name."""

    kind: Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Za-z0-9]{0,62}$")]
    apiVersion: Annotated[str, StringConstraints(
        pattern=r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?v[0-9]+((alpha|beta)[0-9]+)?$", max_length=253)] | None = None
    name: Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=253)] | None = None
    namespace: Name | None = None


class JsonPatchOperation(Strict):
    """One RFC 6902 operation; `value` and `from` as the op needs them."""

    op: Literal["add", "remove", "replace", "move", "copy", "test"]
    path: JsonPointer
    from_: Annotated[JsonPointer | None, Field(alias="from")] = None
    value: JsonData = None

    @model_validator(mode="after")
    def _members(self) -> JsonPatchOperation:
        takes_value = self.op in ("add", "replace", "test")
        takes_from = self.op in ("move", "copy")
        if takes_value != ("value" in self.model_fields_set):
            raise ValueError(f"the {self.op} operation {'needs' if takes_value else 'takes no'} `value`")
        if takes_from != (self.from_ is not None):
            raise ValueError(f"the {self.op} operation {'needs' if takes_from else 'takes no'} `from`")
        return self

    def as_operation(self) -> dict[str, Any]:
        """The operation as RFC 6902 writes it (compiler.jsonpatch.apply_json_patch)."""
        out: dict[str, Any] = {"op": self.op, "path": self.path}
        if self.from_ is not None:
            out["from"] = self.from_
        if "value" in self.model_fields_set:
            out["value"] = self.value
        return out


class Patch(Strict):
    apiVersion: Literal["meshc/v1"]
    kind: Literal["Patch"]
    name: Name
    namespace: Name | None = None
    target: PatchTarget
    # the workload whose artifacts are patched: exactly one of these
    service: Ref | None = None
    gateway: Ref | None = None
    platform: Name | None = None
    object: PatchObject
    mergePatch: Annotated[dict[str, Any], AfterValidator(_json_data)] | None = None  # RFC 7396
    jsonPatch: Annotated[list[JsonPatchOperation], Field(min_length=1)] | None = None  # RFC 6902
    reason: Annotated[Line, StringConstraints(min_length=1, max_length=1024)] | None = None

    @model_validator(mode="after")
    def _shape(self) -> Patch:
        _exactly_one(self, ("service", "gateway", "platform"), "a Patch")
        _exactly_one(self, ("mergePatch", "jsonPatch"), "a Patch")
        if self.object.name is None and self.object.kind not in UNNAMED_OBJECT_KINDS:
            raise ValueError(f"object: a {self.object.kind} is named by `name` (only "
                             f"{' and '.join(UNNAMED_OBJECT_KINDS)} are named by kind alone)")
        return self


KIND_MODELS: dict[str, type[Strict]] = {
    "Mesh": Mesh,
    "Service": Service,
    "Route": Route,
    "AccessPolicy": AccessPolicy,
    "Gateway": Gateway,
    "ExternalService": ExternalService,
    "Policy": Policy,
    "RouteTest": RouteTest,
    "Patch": Patch,
}
NAMESPACED_KINDS = frozenset({"Service", "Route", "AccessPolicy", "Gateway", "ExternalService", "RouteTest",
                              "Patch"})
