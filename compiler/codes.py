"""The one table of diagnostic codes, each with its documentation.

Ranges: 0xx loading and YAML, 1xx schema, 2xx references and linking, 3xx semantic analysis
and Policies, 4xx target-specific (41x envoy, 42x kubernetes, 43x cloudfoundry, 44x vm).
A code never changes meaning and is never reused; `meshc explain CODE` prints its entry and
docs/diagnostics.md is generated from this table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning", "info"]
SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2}


@dataclass(frozen=True)
class Code:
    code: str
    name: str
    severity: Severity
    summary: str
    explanation: str

    def __str__(self) -> str:
        return self.code


CODES: dict[str, Code] = {}


def _code(code: str, name: str, severity: Severity, summary: str, explanation: str) -> Code:
    assert code not in CODES, f"{code} defined twice"
    entry = Code(code, name, severity, summary, " ".join(explanation.split()))
    CODES[code] = entry
    return entry


# 0xx: loading and YAML -----------------------------------------------------------------------
UNREADABLE_FILE = _code(
    "MESH001", "unreadable-file", "error", "A file cannot be read as UTF-8 text.",
    """Intent files must be UTF-8. The diagnostic points at the first byte that is not valid
    UTF-8 (or says why the file could not be read at all). Re-save the file as UTF-8.""",
)
YAML_SYNTAX = _code(
    "MESH002", "yaml-syntax", "error", "The file is not well-formed YAML.",
    """libyaml could not parse the document, or a scalar does not fit its explicit tag, or a
    mapping key is not a scalar. The line and column are where the parser stopped.""",
)
DUPLICATE_KEY = _code(
    "MESH003", "duplicate-key", "error", "A mapping holds the same key twice.",
    """YAML loaders disagree on which of two equal keys wins, so meshc rejects the document
    instead of guessing. Remove one of them. Keys merged in with `<<: *anchor` may be
    overridden; only keys written twice are reported.""",
)
UNSUPPORTED_TAG = _code(
    "MESH004", "unsupported-tag", "error", "A YAML tag outside the YAML 1.2 core schema.",
    """Only the core schema's tags (str, int, float, bool, null, map, seq) are allowed.
    Application tags such as `!foo` and YAML 1.1 types such as `!!binary`, `!!timestamp`,
    `!!set` or `!!python/...` are rejected, so no document can construct arbitrary objects.""",
)
ALIAS_EXPANSION = _code(
    "MESH005", "alias-expansion", "error", "Aliases expand too far, recurse, or nesting is too deep.",
    """Anchors and aliases are allowed, but a document whose aliases expand past 200,000 nodes
    (a "billion laughs" alias bomb), an alias that contains itself, or nesting deeper than
    the interpreter can follow is rejected before anything walks it.""",
)
FILE_TOO_LARGE = _code(
    "MESH006", "file-too-large", "error", "An intent file is larger than the size limit.",
    """Intent files over 4 MiB are not read: a single intent never needs that much, and
    refusing keeps a stray generated or binary file from stalling a pre-commit hook. Split the
    file, or add it to Mesh.exclude if it is not an intent file.""",
)
NOT_AN_INTENT = _code(
    "MESH007", "not-an-intent", "error", "A document is not a mapping with apiVersion and kind.",
    """Every document in an intent file is a mapping that starts with `apiVersion: meshc/v1`
    and `kind: <Kind>`. Empty documents are skipped; anything else (a list, a scalar, a
    mapping without apiVersion or kind) is reported.""",
)
NO_MESH = _code(
    "MESH008", "no-mesh", "error", "The mesh root has no mesh.yaml with a Mesh document.",
    """The directory given to meshc (default: the current directory) must hold `mesh.yaml`
    with exactly one `kind: Mesh` document. Run `meshc init DIR` to start a new mesh repo.""",
)
GIT_REVISION = _code(
    "MESH009", "git-revision", "error", "A git revision cannot be read.",
    """With `--ref REV` (or `meshc diff`), meshc reads intents from git without touching the
    working tree. The directory must be inside a git repository and REV must name a commit.""",
)
MESH_PLACEMENT = _code(
    "MESH010", "mesh-placement", "error", "A Mesh document outside mesh.yaml, or more than one.",
    """Exactly one Mesh document exists, in `mesh.yaml` at the mesh root. Move the Mesh into
    mesh.yaml and keep the other kinds in their own files (mesh.yaml may hold them too).""",
)

# 1xx: schema ---------------------------------------------------------------------------------
UNKNOWN_API_VERSION = _code(
    "MESH101", "unknown-api-version", "error", "apiVersion is not meshc/v1.",
    """This release of meshc reads the intent language v1: every document says
    `apiVersion: meshc/v1`.""",
)
UNKNOWN_KIND = _code(
    "MESH102", "unknown-kind", "error", "kind is not one of the intent kinds.",
    """The kinds are Mesh, Service, Route, AccessPolicy, Gateway, ExternalService and Policy.
    Kinds are case-sensitive.""",
)
UNKNOWN_FIELD = _code(
    "MESH103", "unknown-field", "error", "A field that the kind does not have.",
    """Unknown fields are errors, so a misspelt field (`timout:`) cannot silently do nothing.
    `meshc schema KIND` lists the fields; editors with yaml-language-server complete them.""",
)
MISSING_FIELD = _code(
    "MESH104", "missing-field", "error", "A required field is missing.",
    """The diagnostic points at the object that lacks the field. `meshc schema KIND` shows
    which fields are required.""",
)
INVALID_VALUE = _code(
    "MESH105", "invalid-value", "error", "A value has the wrong type, is out of range or not allowed.",
    """Types follow YAML 1.2: only `true`/`false` are booleans, so `on` is a string. Ports are
    1-65535, percentages 0-100, enums are case-sensitive. The message says what was expected.""",
)
INVALID_NAME = _code(
    "MESH106", "invalid-name", "error", "A name or reference is not a DNS-1123 label.",
    """Names and namespaces match `[a-z0-9]([-a-z0-9]*[a-z0-9])?` and have at most 63
    characters; references are `name` or `namespace/name`. They become file names and
    Kubernetes object names, so nothing else (`../x`, `Upper_Case`) is accepted.""",
)
INVALID_DURATION = _code(
    "MESH107", "invalid-duration", "error", "A duration is malformed, zero or negative.",
    """Durations are strings: a whole or decimal number followed by ms, s, m or h
    (`250ms`, `1.5s`, `2m`, `1h`), greater than zero.""",
)
INCONSISTENT_FIELDS = _code(
    "MESH108", "inconsistent-fields", "error", "Fields of one object contradict each other.",
    """For example: a Route with both `service` and `gateway`; a rule with both `to` and
    `redirect`; several destinations whose weights are missing or do not sum to 100; a
    passthrough listener with a certificate; controlPlane on a static vm platform.""",
)

# 2xx: references and linking -----------------------------------------------------------------
UNKNOWN_PLATFORM = _code(
    "MESH201", "unknown-platform", "error", "A platform name that Mesh.platforms does not define.",
    """Service.platform and Gateway.platform name an entry of Mesh.platforms.""",
)
UNKNOWN_SERVICE = _code(
    "MESH202", "unknown-service", "error", "A reference to a service that does not exist.",
    """A call, a Route's service or destination, an AccessPolicy's service or a `from` entry
    names a Service (or, for calls, an ExternalService) that is not defined. References
    without a namespace are looked up in the referrer's own namespace.""",
)
DUPLICATE_OBJECT = _code(
    "MESH203", "duplicate-object", "error", "Two objects of one kind share a namespace and name.",
    """Each object is identified by kind, namespace and name (Mesh and Policy by name only).
    Both locations are reported. Services and ExternalServices share one name space, since
    both are called by name.""",
)
SECOND_MESH_ROUTE = _code(
    "MESH204", "second-mesh-route", "error", "A second mesh Route for one service.",
    """At most one Route with `service:` exists per service, so the order of rules is never
    in doubt. Merge the rules into one Route.""",
)
ENDPOINTS_OFF_VM = _code(
    "MESH205", "endpoints-off-vm", "error", "Endpoints on a service that does not run on a vm platform.",
    """Kubernetes and Cloud Foundry find their workloads themselves; `endpoints` are for
    services on vm platforms only.""",
)
VM_WITHOUT_ENDPOINTS = _code(
    "MESH206", "vm-without-endpoints", "error", "A service on a vm platform has no endpoints.",
    """Nothing else says where a vm service runs: list its addresses in `endpoints`.""",
)
UNKNOWN_VERSION = _code(
    "MESH207", "unknown-version", "error", "A version that the service does not define.",
    """Route destinations, mirrors and endpoints name a key of the service's `versions`.""",
)
UNKNOWN_PORT = _code(
    "MESH208", "unknown-port", "error", "A port the destination does not have, or a port that must be named.",
    """A destination port must be one of the service's ports; when the destination has more
    than one port, `port` is required so the route is not ambiguous.""",
)
UNKNOWN_GATEWAY = _code(
    "MESH209", "unknown-gateway", "error", "A reference to a Gateway that does not exist.",
    """An ingress Route's `gateway` names a Gateway; references without a namespace are
    looked up in the Route's namespace.""",
)
DUPLICATE_GATEWAY_HOST = _code(
    "MESH210", "duplicate-gateway-host", "error", "Two Routes claim one host on one gateway.",
    """At most one Route per gateway host, so which rules apply to a request is never in
    doubt. Both Routes are reported.""",
)
PLATFORM_MISMATCH = _code(
    "MESH211", "platform-mismatch", "error", "An object on a platform kind that cannot host it.",
    """A Gateway runs on a kubernetes or vm platform (Cloud Foundry's own router is its
    ingress); the diagnostic says which platform kinds are possible.""",
)
ADDRESS_COLLISION = _code(
    "MESH212", "address-collision", "error", "Two services would get the same address on a platform.",
    """On Cloud Foundry a service is reached at `<name>.<internalDomain>` and deployed as an
    app called `<name>`, whatever its namespace, so two services with one name on one Cloud
    Foundry platform collide. Both are reported. Rename one or place it on another platform.""",
)

# 41x: envoy ----------------------------------------------------------------------------------
ENVOY_MATCH_UNSUPPORTED = _code(
    "MESH410", "envoy-match-unsupported", "warning", "A route match Envoy cannot apply where it is used.",
    """An `sni` match on a route to an HTTP port (the sidecar sees the Host header, not an SNI),
    or an HTTP match (path, method, headers, query) on a route to a tcp, tls or mongo port,
    where Envoy forwards bytes and sees no requests. A match entry that cannot be applied
    never matches, so its rule is only taken through its other match entries.""",
)
ENVOY_ROUTE_FEATURE_UNSUPPORTED = _code(
    "MESH411", "envoy-route-feature-unsupported", "warning",
    "A route rule feature Envoy cannot apply to this destination.",
    """Timeouts, retries, faults, mirrors, rewrites and redirects act on HTTP requests; a
    tcp, tls or mongo destination is proxied as a byte stream, where Envoy takes the first
    rule without HTTP matches and forwards to its destinations by weight. The other rules and
    the HTTP-only fields are reported instead of being applied. `retryOn:
    retriable-status-codes` is reported too: the intent language has no list of status codes.""",
)
ENVOY_ACCESS_RULE_UNSUPPORTED = _code(
    "MESH412", "envoy-access-rule-unsupported", "warning", "An AccessPolicy rule Envoy cannot enforce as written.",
    """Methods and paths are HTTP-only: on a tcp, tls or mongo port an allow rule that names
    them admits nobody there and a deny rule that names them denies every caller it names
    (as Istio does). Callers are identified by their SPIFFE certificate, so on a service with
    `mtls: DISABLE` no caller can be identified and a rule naming callers matches nobody.""",
)
ENVOY_RATE_LIMIT_UNSUPPORTED = _code(
    "MESH413", "envoy-rate-limit-unsupported", "warning", "rateLimit on a port that carries no HTTP requests.",
    """The local rate limit counts HTTP requests. A tcp, tls or mongo port carries a byte
    stream, so the limit applies to the service's HTTP ports only and this port is not
    limited.""",
)
ENVOY_LISTENER_PORT_CLASH = _code(
    "MESH414", "envoy-listener-port-clash", "error", "Two sidecar or gateway listeners need one port.",
    """Outside Kubernetes each tcp, tls or mongo destination gets its own loopback listener on
    the callee's port, beside the outbound HTTP listener (`sidecar.outboundPort`) and the
    admin listener (`sidecar.adminPort`). Two of them on one port cannot both listen; on a
    Gateway, an HTTP listener and a TLS listener cannot share a port. Move one of them: set
    the sidecar ports, or change the Gateway listener.""",
)
ENVOY_AMBIGUOUS_HOST = _code(
    "MESH415", "envoy-ambiguous-host", "warning", "Two called services share a short host name.",
    """The outbound listener routes by Host `<service>` or `<service>.<namespace>`. When a
    service calls two services of the same name in different namespaces, the short name goes
    to the one in the caller's own namespace; if neither is, the short name is left out and
    both are reached only as `<service>.<namespace>`.""",
)
ENVOY_VERSION_NOT_ADDRESSABLE = _code(
    "MESH416", "envoy-version-not-addressable", "warning",
    "A route picks a version of a service whose address reaches every version.",
    """A static Envoy reaches a kubernetes service through its cluster DNS name and a Cloud
    Foundry app through its internal route; both lead to every version alike, so a version
    split or a version match does not select the version from such a sidecar or gateway.
    Versions are addressable on vm platforms, where endpoints carry their version.""",
)
ENVOY_GATEWAY_ROUTE_UNSERVED = _code(
    "MESH417", "envoy-gateway-route-unserved", "warning", "An ingress Route host that no Gateway listener serves.",
    """A Route attached to a Gateway takes effect on the listeners whose `hosts` cover its
    hosts (exactly, or by a `*.` wildcard), by protocol: HTTP rules on http and https
    listeners, `sni` rules on tls listeners. A host no listener covers is reported.""",
)
ENVOY_EXTERNAL_HOST_UNSUPPORTED = _code(
    "MESH418", "envoy-external-host-unsupported", "warning", "An ExternalService host a static Envoy cannot resolve.",
    """A wildcard host (`*.example.com`) names no address: a static sidecar resolves the hosts
    of an ExternalService by DNS, so a wildcard host is left out of its cluster.""",
)

# 43x: cloudfoundry ---------------------------------------------------------------------------
CF_VERSION_SPLIT = _code(
    "MESH430", "cf-version-split", "warning", "A Route splits traffic between versions of a Cloud Foundry app.",
    """Cloud Foundry deploys a service as one app whose instances all run the same droplet:
    the router and container networking know no version subsets and no weights between them.
    Every request to the app is balanced over all of its instances, whatever version or
    weight the rule names. Run each version as its own service to split traffic on Cloud
    Foundry.""",
)
CF_CALLER_OFF_PLATFORM = _code(
    "MESH431", "cf-caller-off-platform", "warning",
    "A service outside a Cloud Foundry platform calls an app on it.",
    """An app's internal route (`<name>.<internalDomain>`) resolves and connects only inside
    its Cloud Foundry foundation, and container-to-container network policies name apps of
    that foundation. A caller on another platform gets no network policy and cannot reach
    the internal route; it reaches the app only through its external route
    (`<name>.<appsDomain>`, when the service is `public: true`), where the app's sidecar is
    the only access control.""",
)
CF_GATEWAY_VIA_ROUTER = _code(
    "MESH432", "cf-gateway-via-router", "info", "A Gateway routes to a Cloud Foundry app through the CF router.",
    """A Gateway cannot run on Cloud Foundry and Cloud Foundry admits no container networking
    from outside, so an ingress Route to a Cloud Foundry app gets the app an external route
    `<name>.<appsDomain>` and the Gateway forwards through the Cloud Foundry router. The
    app is then reachable by anyone who reaches the router, subject to its sidecar.""",
)
CF_PORT_NOT_ROUTABLE = _code(
    "MESH433", "cf-port-not-routable", "warning", "A port of a public Cloud Foundry app that no route can carry.",
    """The external route of an app is an HTTP route to one app port. A tcp, tls or mongo
    port, or a second HTTP port, of a service that is public or reached through a Gateway
    gets no external route (a TCP route needs a TCP router domain, which the platform does
    not name); mesh callers on the same platform still reach it through the internal route.""",
)
CF_ROUTER_PORT = _code(
    "MESH434", "cf-router-port", "warning", "A Cloud Foundry router route bypasses the sidecar.",
    """The Cloud Foundry router delivers an app's HTTP routes to app port 8080. The sidecar
    listens on the service's ports, so external traffic passes it only when the routed port
    is 8080 (the application itself then listens on its targetPort on loopback). Otherwise
    map the route to the sidecar's port with the v3 API (`cf curl
    /v3/routes/GUID/destinations`), or give the service port 8080.""",
)

# 44x: vm -------------------------------------------------------------------------------------
VM_NAME_COLLISION = _code(
    "MESH440", "vm-name-collision", "error", "Two services with one name on one vm platform.",
    """A vm bundle is `vm/<platform>/<service>/` and its systemd unit is named after the
    service, so two services of one name in different namespaces on one vm platform would
    overwrite each other. Both are reported; rename one or move it to another platform.""",
)
VM_DUPLICATE_ENDPOINT = _code(
    "MESH441", "vm-duplicate-endpoint", "error", "A vm service lists one endpoint address twice.",
    """Each endpoint is one workload with its own sidecar configuration (its inbound address),
    so an address can be listed once per service. Remove the duplicate.""",
)
VM_CERTIFICATES_IGNORED = _code(
    "MESH442", "vm-certificates-ignored", "info", "certificates on a vm platform of flavor istio.",
    """On flavor istio the Istio agent on the VM obtains the workload certificate from the
    control plane (with the service account token and root-cert.pem of the bundle), so the
    platform's `certificates` setting is not used. Remove it, or use flavor static.""",
)
