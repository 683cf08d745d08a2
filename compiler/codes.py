"""The one table of diagnostic codes, each with its documentation.

Ranges: 0xx loading and YAML (02x environments, 05x `meshc fmt`, 06x `meshc import`), 1xx schema,
2xx references and linking, 3xx semantic analysis and Policies, 4xx target-specific (41x and 45x
envoy, 42x and 46x-49x kubernetes, 43x cloudfoundry, 44x vm), 5xx route tests (`meshc test`).
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
    "MESH001", "unreadable-file", "error", "A file or directory of the mesh cannot be read.",
    """Intent files must be UTF-8. The diagnostic points at the first byte that is not valid
    UTF-8, or says why the file could not be read at all. A directory under the mesh root
    that cannot be listed is reported too, since its intents would silently be missing; a
    FIFO, socket or device named like an intent file is refused, not opened. Re-save the file
    as UTF-8, fix the permissions, or list the path in Mesh.exclude.""",
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
    "MESH005", "alias-expansion", "error",
    "A document is too large once aliases are expanded, recurses, or nests too deeply.",
    """Anchors and aliases are allowed, but a document whose aliases expand past 200,000 nodes
    (a "billion laughs" alias bomb), an alias that contains itself, or nesting deeper than
    the interpreter can follow is rejected before anything walks it. The message names the
    cause: a document with more than 200,000 nodes written out (no alias involved) exceeds the
    same per-document budget; split it into several documents.""",
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
OUTSIDE_MESH_ROOT = _code(
    "MESH011", "outside-mesh-root", "error", "A symbolic link or submodule leads outside the mesh root.",
    """meshc reads nothing outside the mesh root: intents come from pull requests, and a
    symbolic link such as `services/x.yaml -> /proc/self/environ` would otherwise put the CI
    job's secrets into its log. A symbolic link whose target is outside the root (in the
    working tree or as a link blob of a `--ref` revision), and a git submodule (whose files
    are another repository's), are reported and never read. Links that stay inside the root
    are followed. Replace the link with the file, or list the path in Mesh.exclude.""",
)
INPUT_BUDGET = _code(
    "MESH012", "input-budget", "error", "The mesh's intent files exceed the input budget of one build.",
    """Besides the 4 MiB limit per file, one build reads at most 64 MiB of intent files and
    200,000 documents in all, so that a pull request cannot make a pre-commit hook or a CI job
    run out of memory (every document is validated into a model and positioned). The files
    past the budget are not read; the diagnostic is at the first of them. List generated or
    vendored YAML in Mesh.exclude, or split the mesh.""",
)
OUTPUT_BUDGET = _code(
    "MESH013", "output-budget", "error", "The artifacts of one build exceed the output budget.",
    """One build writes at most 1 GiB of artifacts (a 10,000-service mesh writes about 460 MB),
    so that a small intent multiplied into many proxies (a Route of thousands of rules that a
    hundred services call, each sidecar carrying all of it) cannot fill a disk or a CI
    runner's memory. Nothing is written. The diagnostic is at the intent file whose objects
    account for most of the output; split what it defines, or call it from fewer services.""",
)

OUTPUT_DIRECTORY = _code(
    "MESH014", "output-directory", "info", "A directory below the mesh root holds a meshc build; it is not read.",
    """A directory that holds the manifest.json of a meshc build (`meshc build -o DIR` with DIR
    inside the mesh root) is left out of the intents, with everything below it: its YAML files
    are artifacts, not intents. The default output directory, `build/`, is left out silently, and
    so is a directory listed in Mesh.exclude; this note says that any other one was skipped, so
    that a manifest.json added beside intents cannot hide them unseen. List the directory in
    Mesh.exclude to say it is an output directory.""",
)

# 02x: environments and overlays (docs/intents.md, "Environments") ------------------------------
OVERLAY_INVALID = _code(
    "MESH020", "overlay-invalid", "error", "An overlay document cannot be applied as written.",
    """An overlay document names the document it changes by `kind`, `name` and, for a namespaced
    kind, `namespace` (default `Mesh.defaultNamespace`); `apiVersion` may be left out. `$patch`
    takes `add` (a document or list item the base lacks), `delete` or `replace`. An item of a
    list that merges item by item (a list of named objects, Service.endpoints by address) names
    the item by its key. An overlay cannot change `Mesh.environments` or `Mesh.exclude`: which
    files are read is decided before any overlay applies.""",
)
OVERLAY_NOT_IN_BASE = _code(
    "MESH021", "overlay-not-in-base", "error",
    "An overlay changes or deletes a document, item or field the base does not have.",
    """An overlay changes what the base has; a name it writes that matches nothing in the base
    is a typo until it says otherwise, so it is an error here, not a new object. To add a
    document or a list item in one environment only, write `$patch: add` in it; a field of the
    schema that the base leaves unset may simply be written. Deleting (`null`, `$patch:
    delete`) what the base does not have, or adding what it already has, is reported too.""",
)
OVERLAY_DUPLICATE = _code(
    "MESH022", "overlay-duplicate", "error", "One overlay folder changes the same document twice.",
    """Within one overlay folder each base document is changed by one overlay document, so the
    order of files never decides a value. Merge the two documents, or put one of them in a
    later overlay folder of the environment (folders apply in the order they are listed).""",
)
OVERLAY_FOLDER_MISSING = _code(
    "MESH023", "overlay-folder-missing", "warning", "An environment's overlay folder does not exist.",
    """The folder is listed in `Mesh.environments[].overlays` (or is the default
    `environments/<name>`) but holds no intent file, so the environment is the base as
    written. Create the folder, or fix its name.""",
)

UNKNOWN_ENVIRONMENT = _code(
    "MESH024", "unknown-environment", "error", "The environment asked for is not declared by the mesh.",
    """`--env NAME` (or explain-value's ENV) names an environment that `Mesh.environments` in
    mesh.yaml does not declare (at the revision read). The message lists the ones it does.""",
)

# 05x: meshc fmt ------------------------------------------------------------------------------
FORMAT_UNSAFE = _code(
    "MESH050", "format-unsafe", "error", "meshc fmt cannot lay a file out without changing its meaning.",
    """`meshc fmt` re-reads every file it formats and compares the data with what it read; when
    they differ (a scalar another YAML reader takes differently, such as `1_000`, which meshc
    reads as a string), the file is left untouched and reported. Quote the value to say which
    one is meant.""",
)

# 06x: meshc import -----------------------------------------------------------------------------
IMPORT_NOT_IMPORTED = _code(
    "MESH060", "import-not-imported", "warning", "Part of an imported object has no meshc equivalent.",
    """`meshc import` carries every field it can into an intent and reports every other one where
    it stands in the input, so nothing is dropped silently: a header value with Envoy's `%...%`
    operators, a match on source labels, a jwtRule without keys, a namespace-wide policy. The
    intents are written without it; decide whether the mesh needs it (docs/cli.md lists what maps to what).""",
)
IMPORT_UNKNOWN_KIND = _code(
    "MESH061", "import-unknown-kind", "warning", "An input object of a kind meshc does not import.",
    """`meshc import` reads Istio's networking and security kinds, Gateway API gateways and
    routes, core Services and ServiceAccounts, and the service accounts of Deployments,
    StatefulSets and DaemonSets. Other objects (ConfigMaps, Jobs, CRDs of other projects) are
    reported once each and left alone.""",
)
IMPORT_INVALID = _code(
    "MESH062", "import-invalid", "error", "An input object cannot be read as what its kind says.",
    """The object is not a Kubernetes object (no apiVersion or kind), its name or namespace is no
    DNS-1123 label, or nothing of it could be imported (a route none of whose rules reaches an
    imported service). Nothing is written while such errors stand.""",
)
IMPORT_UNRESOLVED = _code(
    "MESH063", "import-unresolved", "warning", "An imported object refers to something not in the input.",
    """A route destination, a DestinationRule host, a selector or a principal names a Service that
    is not among the imported objects. Import the Service's own YAML too (`kubectl get svc -o
    yaml`), or write the Service intent by hand; the reference is left out until then.""",
)
IMPORT_OUTPUT_EXISTS = _code(
    "MESH064", "import-output-exists", "error", "meshc import would overwrite a file.",
    """`meshc import` writes new intent files and never replaces one: a mesh directory that
    already holds a file of the same name is left as it is, and nothing is written. Import into
    an empty directory and merge by hand.""",
)

# 1xx: schema ---------------------------------------------------------------------------------
UNKNOWN_API_VERSION = _code(
    "MESH101", "unknown-api-version", "error", "apiVersion is not meshc/v1.",
    """This release of meshc reads the intent language v1: every document says
    `apiVersion: meshc/v1`.""",
)
UNKNOWN_KIND = _code(
    "MESH102", "unknown-kind", "error", "kind is not one of the intent kinds.",
    """The kinds are Mesh, Service, Route, AccessPolicy, Gateway, ExternalService, Policy, RouteTest and Patch.
    Kinds are case-sensitive.""",
)
UNKNOWN_FIELD = _code(
    "MESH103", "unknown-field", "error", "A field that the kind does not have.",
    """Unknown fields are errors, so a misspelt field (`timout:`) cannot silently do nothing.
    When a field of that object is close, the hint names it ("did you mean 'timeout'?"). When
    the rename is mechanical (an Istio word such as `subset:` where meshc says `version:`, or
    a field written in another case or in snake_case, such as `TargetPort` or `target_port`),
    `meshc check --fix` renames the key in place and says so. `meshc schema KIND` lists the
    fields; editors with yaml-language-server complete them.""",
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
    "MESH204", "second-mesh-route", "error", "Retired: a second mesh Route for one service.",
    """No longer reported. Several Routes of one service are merged in a documented order
    (docs/intents.md, "Several Routes for one host"); rules of two Routes with identical
    matches are MESH354.""",
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
    "MESH210", "duplicate-gateway-host", "error", "Retired: two Routes claim one host on one gateway.",
    """No longer reported. Several Routes for one gateway host are merged in a documented
    order (docs/intents.md, "Several Routes for one host"); rules of two Routes with
    identical matches are MESH354.""",
)
UNKNOWN_LISTENER = _code(
    "MESH221", "unknown-listener", "error", "A Route attaches to a listener or port its gateway does not have.",
    """An ingress Route's `listeners` name listeners of its gateway, and its `ports` are ports
    some listener of the gateway listens on (the Gateway API's ParentReference sectionName and
    port). A name or port the gateway does not have would attach the Route nowhere; the Route
    is left out until it is fixed.""",
)
EXTERNAL_ROUTE_DESTINATION = _code(
    "MESH222", "external-route-destination", "error",
    "A Route mixes mesh services and ExternalServices.",
    """A Route whose `service` is an ExternalService (a Route on an external host: timeouts,
    retries, splits between external hosts) sends to ExternalServices only, and only such a
    Route sends to an ExternalService: the caller's sidecar carries it without mesh identity
    or versions, which a mesh destination would need. Route mesh traffic with a Route on the
    Service, external traffic with a Route on the ExternalService.""",
)
# Codes no longer reported (kept so that `meshc explain` still says what they were).
RETIRED = frozenset({"MESH204", "MESH210"})
PLATFORM_MISMATCH = _code(
    "MESH211", "platform-mismatch", "error", "An object or field on a platform kind that cannot carry it.",
    """A Gateway runs on a kubernetes or vm platform (Cloud Foundry's own router is its
    ingress); only a Gateway on a kubernetes platform can bind to an existing deployment
    (`deployment`), and on flavor gateway-api only through the Kubernetes Service in front of
    it (`deployment.service`: Istio's manual deployment addresses the Gateway to that Service;
    without one Istio would deploy a gateway of its own); only a Service on a kubernetes
    platform has Istio Sidecar `egressHosts`. The diagnostic says which platform kinds are
    possible.""",
)
ADDRESS_COLLISION = _code(
    "MESH212", "address-collision", "error", "Two services would get the same address on a platform.",
    """On Cloud Foundry a service is reached at `<name>.<internalDomain>` and deployed as an
    app called `<name>`, whatever its namespace, so two services with one name on one Cloud
    Foundry platform collide. Both are reported. Rename one or place it on another platform.""",
)
EXTERNAL_HOST_CLAIMED_TWICE = _code(
    "MESH213", "external-host-claimed-twice", "error", "Two ExternalServices list the same host.",
    """A sidecar routes outbound HTTP by host name, so one host can lead to one ExternalService
    only (Envoy rejects a configuration with two virtual hosts for one domain, and Istio merges
    or rejects conflicting ServiceEntries). Both locations are reported. List the host in one
    ExternalService, with all the ports it serves.""",
)
ACCESS_SOURCE_OUT_OF_PLACE = _code(
    "MESH218", "access-source-out-of-place", "error",
    "An AccessPolicy `from` entry that cannot name the callers of what it protects.",
    """A service's callers are mesh workloads (and plain-text clients); a Gateway's are outside
    clients, which carry no mesh identity. So `ipBlocks` and `remoteIpBlocks` (addresses of a
    gateway's clients) belong to an AccessPolicy with `gateway`, and service references,
    `{namespace}`, `{gateway}` and `"*"` (mesh identities) to one with `service`. Move the
    entry to an AccessPolicy of the right kind.""",
)
PLACEMENT_UNSUPPORTED = _code(
    "MESH230", "placement-unsupported", "error", "A Service placement on a platform that cannot take part.",
    """A Service with several `placements` runs on kubernetes and vm platforms: their
    workloads are endpoints a caller can weigh by locality and fail over between. A Cloud
    Foundry app is reached through its foundation's own routes, one app per foundation, so it
    cannot be one placement of several. Keep the Cloud Foundry app a Service of its own, or
    place the service on kubernetes and vm platforms only.""",
)
PATCH_UNKNOWN_WORKLOAD = _code(
    "MESH235", "patch-unknown-workload", "error", "A Patch names a service, gateway or platform the mesh lacks.",
    """A Patch edits the output of one workload: the sidecar of a Service (`service`), the proxy
    of a Gateway (`gateway`) or the files shared by a platform (`platform`). References without
    a namespace are looked up in the Patch's namespace. Nothing is patched while it names
    nothing.""",
)
PATCH_NOT_APPLIED = _code(
    "MESH236", "patch-not-applied", "error", "A Patch cannot be applied to its target's output as written.",
    """A Patch is applied when the targets have built their artifacts, and each way it can fail is
    located: the target emits no artifact for the workload (at `target`); none of the
    workload's artifacts holds the object, or it matches several (at `object`: the message
    lists the objects the target does emit, docs/targets/*.md says what each writes); a JSON
    Patch operation's `path` or `from` refers to nothing (RFC 6901: a missing member, an index
    past the end, a member of a string), a `test` found another value (RFC 6902 section 4.6:
    1 and 1.0 are equal, "1" and 1 are not), a `move` into its own child, or copies that would
    grow the document past a million nodes (at the operation's member); the result is not a
    JSON object (at `jsonPatch` or `mergePatch`). Nothing is written while it stands.""",
)

# 3xx: semantic analysis and Policies ---------------------------------------------------------
UNREACHABLE_RULE = _code(
    "MESH301", "unreachable-rule", "warning", "A route rule that can never match.",
    """Rules are tried in order and the first match wins. A rule is unreachable when every one
    of its match entries is covered by an entry of an earlier rule: a catch-all (a rule without
    `match`, or an empty match entry), an identical entry, or a broader one (a shorter path
    prefix, fewer header conditions, no method where the later rule names one). Move the rule
    up, narrow the earlier rule, or delete it. The related location is the covering rule.""",
)
DUPLICATE_MATCH = _code(
    "MESH302", "duplicate-match", "warning", "A match entry that repeats an earlier one.",
    """An entry of a rule's `match` list that is identical to an earlier entry of the same
    Route (in the same rule or in an earlier one) never decides anything; its rule is still
    reachable through its other entries. Remove the repeated entry.""",
)
CALL_DENIED = _code(
    "MESH310", "call-denied", "error", "A declared call that the callee's AccessPolicies deny.",
    """The caller lists the callee in `calls`, but the callee admits it on no port and no
    method: no allow rule names the caller (by service, namespace or `*`), every rule that
    does is restricted to ports the callee does not have, or a deny rule without restrictions
    names it (deny wins over allow). A service without any allow rule admits nobody when
    Mesh.authorization is `deny` and everybody when it is `allow`. Rules that admit the caller
    only for some methods, paths or ports count as admitting it: they are deliberate. This is
    the outage you would otherwise find in production; the related location is the policy.""",
)
STALE_GRANT = _code(
    "MESH311", "stale-grant", "info", "An allow rule names a caller that does not declare the call.",
    """An AccessPolicy admits a service that does not list the policy's service in `calls`,
    so its sidecar can never send that traffic: the permission is stale. Remove it, or add
    the call if it is still wanted. Namespaces, gateways and `*` are not reported.""",
)
UNKNOWN_PRINCIPAL = _code(
    "MESH312", "unknown-principal", "warning", "A `from` entry names a namespace or gateway that does not exist.",
    """An allow entry `{namespace: X}` where no Service or Gateway of the mesh lives in X, or a
    `{gateway: G}` entry (allow or deny) naming no Gateway, grants or denies nothing: usually a
    typo. A deny entry for an unknown namespace is not reported: denying a namespace before
    anything runs in it is a deliberate precaution.""",
)
SHARED_IDENTITY = _code(
    "MESH313", "shared-identity", "warning", "Two workloads run as one service account.",
    """Services (or a service and a Gateway) whose identity is the same service account,
    `ns/<namespace>/sa/<account>` (Service.serviceAccount, Gateway.deployment), are one
    principal to Istio and Envoy: an AccessPolicy that admits one of them admits the other,
    while Cloud Foundry's network policies still tell them apart. Give each its own account,
    or merge them into one Service with versions.""",
)
STRICT_UNIDENTIFIED_CALLER = _code(
    "MESH320", "strict-unidentified-caller", "error", "A STRICT service receives traffic without a mesh identity.",
    """A service whose effective mTLS mode is STRICT accepts only mutual TLS with a mesh
    certificate. A `public: true` service is reached directly by its platform's router (the
    Cloud Foundry router, a load balancer), which presents no mesh identity, so every such
    request is refused. Set `mtls: PERMISSIVE` on the service, or route the public traffic
    through a Gateway, which has a mesh identity.""",
)
DISABLED_CALLEE_OF_STRICT = _code(
    "MESH321", "mtls-disabled-callee", "warning", "mTLS DISABLE on a service called by STRICT services.",
    """The service's mode is DISABLE (plain text), but callers whose own mode is STRICT send
    mutual TLS to mesh destinations. Their traffic either fails or silently loses mutual TLS
    on this hop. Use PERMISSIVE while migrating, or STRICT. The callers are related
    locations.""",
)
RETRY_BUDGET_EXCEEDS_TIMEOUT = _code(
    "MESH330", "retry-budget-exceeds-timeout", "warning", "Retries that cannot fit in the timeout.",
    """`perTryTimeout` bounds the first try and each retry, so the worst case takes
    (attempts + 1) x perTryTimeout (Istio's HTTPRetry semantics). When that is longer than
    the timeout that applies to the same request, the last tries are cut off by the timeout.
    Checked where `retries` is written (Mesh.defaults, a Service's resilience, a Route rule)
    against the timeout in force there. A service that only lowers its timeout keeps the
    mesh default retries, which Envoy then bounds by that timeout: that is not reported.""",
)
ROUTE_TIMEOUT_EXCEEDS_CALLER = _code(
    "MESH331", "route-timeout-exceeds-caller", "warning", "A route timeout longer than a caller's own timeout.",
    """A rule's `timeout` is longer than the timeout of a service that calls the route's
    service. The caller's own request is abandoned first, so the longer wait buys nothing and
    holds resources. The caller's timeout is its effective `resilience.timeout`.""",
)
RETRY_NON_IDEMPOTENT = _code(
    "MESH332", "retry-non-idempotent", "warning", "Retries on a non-idempotent method without opt-in.",
    """A rule that matches POST, PATCH or CONNECT (RFC 9110: not idempotent) retries its
    requests, so a request that reached the service before failing may be applied twice. Set
    `retries: {attempts: 0}` on the rule, or `allowNonIdempotent: true` if the service
    deduplicates.""",
)
HTTP_MATCH_ON_STREAM = _code(
    "MESH340", "http-match-on-stream", "warning", "A path, method, header or query match on a tcp or tls route.",
    """A route to a tcp, tls or mongo port (or through tls and tcp gateway listeners only)
    forwards a byte stream and sees no HTTP request, so an HTTP match there never matches.
    Use `port` or `sni` matches on stream routes.""",
)
SNI_MATCH_ON_HTTP = _code(
    "MESH341", "sni-match-on-http", "warning", "An `sni` match on an HTTP route.",
    """An HTTP route sees the request's Host header, not a TLS server name: an `sni` match
    on a route to an http, http2 or grpc port (or through http and https gateway listeners
    only) never matches. Match HTTP routes on headers; use `sni` with tls passthrough.""",
)
UNKNOWN_MATCH_PORT = _code(
    "MESH342", "unknown-match-port", "error", "A match `port` that the route's service or gateway does not have.",
    """A mesh Route's match `port` must be a port of its service; an ingress Route's, a port
    of one of its gateway's listeners. Any other port never receives traffic, so the entry
    never matches.""",
)
VERSION_WITHOUT_ENDPOINTS = _code(
    "MESH343", "version-without-endpoints", "error", "A route sends traffic to a vm service version with no endpoint.",
    """On a vm platform a version's workloads are the endpoints labelled with it. A
    destination or mirror naming a version that no endpoint carries has no upstream host, so
    its share of the traffic fails (503). Label an endpoint with the version, or drop it from
    the route.""",
)
VERSION_NOT_ADDRESSABLE = _code(
    "MESH344", "version-not-addressable", "warning",
    "A route selects a version of a Cloud Foundry app, which has no versions to select.",
    """Cloud Foundry deploys a service as one app whose instances all run the same droplet,
    reached through one route: neither the router, container networking nor a sidecar can
    send traffic to one version of it. A version split, a version match or a mirror to a
    version of such an app reaches all of its instances alike. Versions are addressable on
    kubernetes platforms (meshc emits a Service `<name>-<version>` per version) and on vm
    platforms (endpoints carry their version); on Cloud Foundry deploy each version as its own
    service.""",
)
OVERLAPPING_LISTENERS = _code(
    "MESH350", "overlapping-listeners", "error", "Two gateway listeners on one port with the same host.",
    """Listeners of one Gateway that share a port are told apart by host (the Host header, or
    the SNI name on TLS). Hosts that merely overlap are served: `foo.bar.com` and `*.bar.com`
    on one port each take the names they match most specifically (Gateway API, "Listeners
    that are distinct only by Hostname"). Two listeners that write the same host (`*` and `*`,
    or `foo.bar.com` twice) cannot be told apart: the Gateway API calls them Conflicted and
    accepts neither, and Envoy refuses a domain or SNI name written twice. Give them distinct
    hosts or distinct ports.""",
)
GATEWAY_HOST_UNSERVED = _code(
    "MESH351", "gateway-host-unserved", "error", "An ingress Route host that no listener of its gateway serves.",
    """A request reaches a Route through a listener whose `hosts` include the Route's host,
    exactly or by a `*.` wildcard (`*` serves every host), or that a wildcard Route host
    includes (a `*.example.com` Route under a `foo.example.com` listener serves
    foo.example.com: the Gateway API's hostname intersection). A host that shares no name
    with any listener never receives traffic. Add the host to a listener, or fix the Route's
    hosts.""",
)
SHARED_CERTIFICATE = _code(
    "MESH352", "shared-certificate", "warning", "One certificate on several gateways.",
    """A certificate (a Secret or SDS name, resolved in the gateway's namespace) terminated by
    more than one Gateway shares its private key across ingress points: revoking or rotating
    it for one affects all, and a compromise of one exposes the others. Issue one certificate
    per gateway.""",
)
LISTENER_WITHOUT_CERTIFICATE = _code(
    "MESH353", "listener-without-certificate", "error", "A listener that terminates TLS has no certificate.",
    """An https listener, or a tls listener with `mode: terminate`, needs `certificate` (the
    Secret or SDS name of its certificate and key); without one it cannot complete a TLS
    handshake.""",
)
ROUTE_MERGE_CONFLICT = _code(
    "MESH354", "route-merge-conflict", "error",
    "Two Routes merged for one host have rules with an identical match.",
    """Several Routes for one service, or for one gateway host, are merged into one list of
    rules: the Routes in the order of their `namespace/name`, each Route's rules as written
    (docs/intents.md, "Several Routes for one host"). A rule whose match (an entry, or no
    `match` at all) repeats one of an earlier Route's rules never decides those requests,
    and on the Gateway API which of the two wins would depend on the Routes' creation times.
    Matches are compared by what they select (a path prefix `/` is no path match, a trailing
    `/` of a prefix is ignored, header names compare in any case). Both rules are named.
    Narrow one of them, or move the rules into one Route.""",
)
ROUTE_MERGE_SHADOWED = _code(
    "MESH355", "route-merge-shadowed", "warning",
    "A rule that an earlier Route merged for the same host always decides first.",
    """Several Routes for one host are merged, the Routes by `namespace/name` (docs/intents.md,
    "Several Routes for one host"). A rule every one of whose match entries an earlier Route's
    rule also matches (a catch-all, a shorter path prefix, fewer conditions) never decides
    anything: the earlier Route's rule takes those requests first. A Route named after another
    team's Route that ends in a catch-all is shadowed entirely. Narrow the earlier rule, or
    rename the Routes so that the more specific one comes first.""",
)
UNREACHABLE_SERVICE = _code(
    "MESH360", "unreachable-service", "info", "A service that nothing calls and no gateway reaches.",
    """No service lists it in `calls`, no Route sends traffic (or a mirror) to it and it is
    not `public`. It may be reached from outside the mesh in ways meshc does not know, or be
    left over.""",
)
CALL_CYCLE = _code(
    "MESH361", "call-cycle", "info", "Services that call each other in a cycle.",
    """A cycle of calls (printed a --> b --> a) can turn one slow service into a retry storm
    around the loop, and makes startup order matter. One cycle is reported per group of
    services that can all reach each other, at the first of them.""",
)
UNUSED_EXTERNAL = _code(
    "MESH362", "unused-external", "info", "An ExternalService that no service calls.",
    """Egress to an ExternalService is configured only for services that list it in `calls`
    (and for the ExternalServices a Route on a called external host sends to), so one that
    nobody calls or routes to has no effect. Remove it, or add the call.""",
)
CROSS_NETWORK_WITHOUT_GATEWAY = _code(
    "MESH363", "cross-network-without-gateway", "warning",
    "A call to a placement on another network that has no east-west gateway.",
    """Workloads on one network cannot open connections to workloads on another: a caller
    reaches a kubernetes placement on another network only through that cluster's east-west
    gateway (`eastWestGateway`, Istio's AUTO_PASSTHROUGH gateway on 15443), and a vm
    placement on another network not at all. The placement is left out of the caller's
    endpoints, so it takes none of its traffic and is no failover target. Give the cluster an
    `eastWestGateway`, or put the platforms on one network.""",
)
TRUST_DOMAIN_MISMATCH = _code(
    "MESH364", "trust-domain-mismatch", "error", "Traffic between platforms of different trust domains.",
    """A sidecar accepts a peer only with an identity in its own trust domain (Istio's
    multicluster installations share one root of trust and one trust domain). A call, a
    Route or a Service placed on several platforms joins platforms whose `trustDomain`
    differ, so mTLS between them would be refused. Give the platforms one trust domain.""",
)
FAILOVER_PORT_UNSERVED = _code(
    "MESH365", "failover-port-unserved", "warning", "A failover placement that cannot serve a port its callers use.",
    """An east-west gateway forwards Istio mTLS by its SNI (AUTO_PASSTHROUGH): a port of a
    service whose `mtls` is DISABLE carries no SNI and cannot cross it. A placement reached
    across networks therefore serves none of that service's ports, and a caller whose nearer
    placements fail has nowhere to fail over to on them. Enable mTLS (STRICT or PERMISSIVE),
    or put the placements on one network.""",
)
PLACEMENT_WEIGHTS_INDISTINCT = _code(
    "MESH374", "placement-weights-indistinct", "error",
    "Weighted placements of one tier in one locality, which no proxy can weigh apart.",
    """A placement's `weight` is its share of its failover tier, and Envoy and Istio carry it as
    the weight of a locality: endpoints of one locality and one priority are one group with
    one weight (Envoy: "one can have multiple LocalityLbEndpoints for a locality, but only if
    they have different priorities"). Two placements of a service with one `priority` and
    one locality (or both without a locality) are always in one tier, so their weights would
    merge into one. Give the platforms distinct localities, different priorities, or drop the
    weights.""",
)
FAILOVER_WITHOUT_OUTLIER_DETECTION = _code(
    "MESH366", "failover-without-outlier-detection", "warning",
    "Several failover tiers and no outlierDetection to eject failing endpoints.",
    """Traffic leaves a caller's first tier of placements (its own locality, or priority 0)
    only when outlier detection has ejected that tier's endpoints: without it nothing marks an
    endpoint unhealthy, so Envoy never fails over and Istio turns locality load balancing off.
    Set `resilience.outlierDetection` on the service (or in Mesh.defaults).""",
)
POLICY_EXPRESSION_INVALID = _code(
    "MESH370", "policy-expression-invalid", "error", "A Policy's CEL expression does not compile.",
    """`rule` and `when` are CEL expressions, compiled once per build. The message gives the
    parser's line and column inside the expression. The Policy is not evaluated.""",
)
POLICY_VIOLATION = _code(
    "MESH371", "policy-violation", "error", "An object violates an organisation Policy.",
    """The Policy's `rule` evaluated to false for this object (where `when` held). The message
    and the severity are the Policy's own; the related location is the Policy. The object is
    `self`: the linked object with its namespace and defaults filled in (see docs/policies.md).""",
)
POLICY_EVALUATION_FAILED = _code(
    "MESH372", "policy-evaluation-failed", "error", "A Policy could not be evaluated for an object.",
    """Evaluating `rule` or `when` failed for this object: a field that is absent (guard it
    with `has()`), a type mismatch (CEL does not convert between types), or a result that is
    not a boolean. The object is neither passed nor failed; fix the expression. An evaluation
    also fails when it exceeds its budget (5 s and 1 GiB per object: CEL has no cost limit of
    its own here), which takes comprehensions nested in comprehensions over large lists.""",
)
POLICY_UNKNOWN_ENVIRONMENT = _code(
    "MESH373", "policy-unknown-environment", "warning", "A Policy names an environment the mesh does not declare.",
    """`Policy.environments` lists the environments the Policy judges; a name that is not in
    `Mesh.environments` never matches, so the Policy judges nothing there (a typo, or an
    environment since removed). Fix the name, or remove it.""",
)
PATCH_LISTED = _code(
    "MESH387", "patch-listed", "info", "A Patch edits a target's output: listed so that it is never invisible.",
    """Every Patch of the mesh is listed at the Patch, with the object, workload and target it
    edits, by `meshc check` and every build. A patch is an escape hatch for what the language
    cannot say yet: the Semantics, the reference evaluator and `meshc test` do not know what it
    does, and `meshc diff` marks the artifacts it edits. This note cannot be suppressed.""",
)
HEADERS_ON_STREAM = _code(
    "MESH389", "headers-on-stream", "error", "Header edits on a rule that routes tcp or tls byte streams.",
    """A rule whose destinations are tcp, tls or mongo ports, or that matches on `sni`, forwards
    bytes, not HTTP requests: there are no request or response headers to set, add or remove,
    and no target can apply them (Envoy's tcp_proxy, Istio's VirtualService `tcp` and `tls`
    routes and the Gateway API's TCPRoute and TLSRoute have no header filter). The edits would
    silently mean nothing, so they are an error at the `headers` field. Remove them, or route
    an HTTP port.""",
)
JWT_WITHOUT_HTTP = _code(
    "MESH391", "jwt-without-http", "warning", "JWT providers where no HTTP request arrives.",
    """`jwt` providers verify the tokens of HTTP requests (docs/intents.md, End-user
    authentication). A Service whose ports are all tcp, tls or mongo, or a Gateway without an
    http or https listener, receives byte streams: its providers verify nothing, and an
    AccessPolicy rule on end users there admits nobody. Remove `jwt`, or serve HTTP.""",
)
UNUSED_SUPPRESSION = _code(
    "MESH390", "unused-suppression", "warning", "A suppression that suppresses nothing.",
    """A `# meshc: ignore[CODE]` comment or a Mesh.suppress entry that matched no diagnostic,
    names an unknown code, or names a code outside 3xx (only semantic analysis can be
    suppressed; loading, schema and linking errors must be fixed). Stale suppressions hide
    future problems, so they are reported; remove them.""",
)

# 41x: envoy ----------------------------------------------------------------------------------
ENVOY_ROUTE_FEATURE_UNSUPPORTED = _code(
    "MESH411", "envoy-route-feature-unsupported", "warning",
    "A route rule feature Envoy cannot apply to this destination.",
    """Timeouts, retries, faults, mirrors, rewrites and redirects act on HTTP requests; a
    tcp, tls or mongo destination is proxied as a byte stream, where Envoy takes the first
    rule without HTTP matches (those never match: MESH340) and forwards to its destinations
    by weight. Later rules for the port and the HTTP-only fields are reported instead of being
    applied.""",
)
ENVOY_ACCESS_RULE_UNSUPPORTED = _code(
    "MESH412", "envoy-access-rule-unsupported", "warning", "An AccessPolicy rule Envoy cannot enforce as written.",
    """Methods, paths, end users (requestPrincipals, claims) and headers are HTTP-only: on a
    tcp, tls or mongo port an allow rule that names them admits nobody there and a deny rule
    that names them denies every caller it names (as Istio does). Callers are identified by
    their SPIFFE certificate, so on a service with `mtls: DISABLE` no caller can be identified
    and a rule naming callers matches nobody.""",
)
ENVOY_RATE_LIMIT_UNSUPPORTED = _code(
    "MESH413", "envoy-rate-limit-unsupported", "warning", "rateLimit on a port that carries no HTTP requests.",
    """The local rate limit counts HTTP requests. A tcp, tls or mongo port carries a byte
    stream, so the limit applies to the service's HTTP ports only and this port is not
    limited.""",
)
ENVOY_RATE_LIMIT_PER_MATCH = _code(
    "MESH417", "envoy-rate-limit-per-match", "warning",
    "A rule's rateLimit with several match entries: one bucket per entry in Envoy.",
    """A rule's `rateLimit` is one token bucket for every request the rule takes (docs/intents.md,
    Rate limits of rules). Envoy matches one route at a time, so the envoy target (and the Cloud
    Foundry and VM sidecars) writes a rule of several `match` entries as one Envoy route per
    entry, and a local rate limit configured on a route is a bucket of that route's own: such a
    rule admits up to `requests` per entry in each `per`. Write the entries as rules of their
    own, each with its `rateLimit`, or match with one entry.""",
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
PATCHED_ENVOY_BOOTSTRAP = _code(
    "MESH416", "patched-envoy-bootstrap", "error", "A patched Envoy bootstrap lost the shape meshc writes.",
    """After the patches, the bootstrap is checked offline for what meshc and its readers rely
    on: `static_resources.listeners` and `static_resources.clusters` are lists of objects with
    unique string names, every listener has a socket address with a port, and every cluster a
    listener sends to (`cluster`, weighted clusters, mirrors) is one of the bootstrap's
    clusters. What Envoy itself accepts is proved by `envoy --mode validate` (CI runs it on
    patched bootstraps, tests/test_patches.py); this check catches at build time what the
    compiler can see.""",
)
ENVOY_EXTERNAL_HOST_UNSUPPORTED = _code(
    "MESH418", "envoy-external-host-unsupported", "warning", "An ExternalService host a static Envoy cannot resolve.",
    """A wildcard host (`*.example.com`) names no address: a static sidecar resolves the hosts
    of an ExternalService by DNS, so a wildcard host is left out of its cluster.""",
)
ENVOY_EXTERNAL_RESOLUTION_UNSUPPORTED = _code(
    "MESH456", "envoy-external-resolution-unsupported", "warning",
    "An ExternalService of resolution NONE on a sidecar meshc generates.",
    """Resolution NONE passes a connection on to the address the application dialled. A sidecar
    meshc generates (Cloud Foundry, VMs) takes the application's traffic on loopback, without
    the transparent redirect (iptables) that keeps the original destination, so nothing is left
    to pass on: the sidecar refuses the port's traffic. Name the addresses with resolution
    STATIC and `endpoints`, or the hosts with resolution DNS.""",
)
ENVOY_EXTERNAL_ADDRESS_RANGE = _code(
    "MESH457", "envoy-external-address-range", "warning",
    "An ExternalService address range a sidecar meshc generates cannot match HTTP requests on.",
    """A sidecar meshc generates routes outbound HTTP by the Host header, and Envoy matches virtual
    hosts by name, never by address range: an `addresses` entry of one address (`10.0.0.7`,
    `10.0.0.7/32`) is matched as a Host, a wider block (`10.0.0.0/24`) is not, and HTTP requests
    to an address in it are answered 404 by the sidecar. List the addresses one by one.""",
)

# 42x: kubernetes ----------------------------------------------------------------------------
K8S_NAME_NOT_DNS1035 = _code(
    "MESH420", "k8s-name-not-dns1035", "error", "A name that cannot be a Kubernetes Service name.",
    """Kubernetes Service names are DNS-1035 labels: they start with a letter. A service (or,
    on flavor gateway-api, a version subset Service `<service>-<version>`) whose name starts
    with a digit or is longer than 63 characters gets no Kubernetes objects. Rename it.""",
)
K8S_GATEWAY_API_RETRIES = _code(
    "MESH421", "k8s-gateway-api-retries", "warning", "Retries that the Gateway API standard channel cannot express.",
    """HTTPRoute in the Gateway API standard channel has no retry field (retries are
    experimental, GEP-1731), so on a kubernetes platform of flavor gateway-api a rule's
    retries, and the service's default retries, are not applied to mesh traffic. Use flavor
    istio for the service, or accept the mesh's default retry behaviour.""",
)
K8S_GATEWAY_API_FAULT = _code(
    "MESH422", "k8s-gateway-api-fault", "warning", "Fault injection that the Gateway API cannot express.",
    """The Gateway API has no fault injection filter, so on a kubernetes platform of flavor
    gateway-api a rule's `fault` (delay or abort) is not emitted. Use flavor istio to inject
    faults with a VirtualService.""",
)
K8S_GATEWAY_API_MATCH = _code(
    "MESH423", "k8s-gateway-api-match", "warning", "A route match the Gateway API cannot express.",
    """HTTPRoute header and query parameter matches are Exact or RegularExpression: a
    `prefix` match becomes the equivalent regular expression, but a `present` match has no
    form and that match entry is left out (the rest of the match still applies). Write a
    `regex: ".*"` match instead to make the intent explicit.""",
)
K8S_GATEWAY_API_UNSUPPORTED = _code(
    "MESH424", "k8s-gateway-api-unsupported", "warning", "A route feature the Gateway API cannot express as written.",
    """On flavor gateway-api: mesh Routes are HTTPRoutes with a Service parent (GAMMA), and
    the standard channel has no mesh TCPRoute or TLSRoute, so tcp and tls rules of a mesh
    Route are not emitted; a `rewrite` or a redirect's `prefix` needs at most one match entry
    with a path prefix or no path in its rule (ReplacePrefixMatch, with PathPrefix `/` written
    out for no path), or only exact and regex path matches (ReplaceFullPath); durations are
    whole milliseconds, so a finer timeout is rounded up. The message says which applies.""",
)
K8S_GATEWAY_API_ORDER = _code(
    "MESH426", "k8s-gateway-api-order", "error",
    "Gateway API match precedence picks a later rule than written order for some requests.",
    """meshc's rules are tried in written order and the first match wins (docs/intents.md). The
    Gateway API orders an HTTPRoute's matches itself: an exact path first, then the longest path
    prefix, then a method match, the most header matches, the most query parameter matches;
    only ties go to the first rule. When a later rule's match ranks higher than an earlier
    rule's and some request can match both, that request goes to the later rule on flavor
    gateway-api and to the earlier one everywhere else. Both rules are named. Put the more
    specific rule first (the order then agrees), or make the matches disjoint. Regular
    expression paths are ordered by each implementation and are not compared.""",
)
K8S_ISTIO_UNSUPPORTED = _code(
    "MESH427", "k8s-istio-unsupported", "warning", "A route feature Istio's VirtualService cannot express as written.",
    """On flavor istio (and for what flavor gateway-api leaves to Istio): a redirect's `prefix`
    replaces the part of the path a prefix match matched, but Istio's HTTPRedirect `uri`
    overwrites the whole path, so after a path prefix match (or no path match) the redirect
    keeps the request's path. After an exact or regex path match the new path is fixed and is
    carried. Write `path` for a fixed target, or match exact paths. A gateway http listener's
    `httpsRedirect` is a rule on the listener's port first in each Route its hosts reach; when
    such a Route's hosts also reach a listener of that port that does not redirect, the rule
    would redirect both and the listener is reported: give the two listeners Routes of their
    own.""",
)
K8S_GATEWAY_API_ROUTE_MERGE = _code(
    "MESH428", "k8s-gateway-api-route-merge", "error",
    "A request no rule of the most specific Route matches falls through to another Route on Gateway API.",
    """meshc gives a request to the gateway Route whose host matches it most specifically and
    answers 404 when none of that Route's rules matches: there is no fall-through to a less
    specific Route (docs/intents.md). The Gateway API merges the HTTPRoutes whose hostnames
    match a request: the more specific Route's rules come first ("precedence must be given to
    rules from the HTTPRoute with the largest number of: Characters in a matching non-wildcard
    hostname"), then the other Route's rules still apply. A Route under a broader Route's
    wildcard (`foo.example.com` under `*.example.com`) whose rules do not match every request
    therefore sends the rest to the broader Route on flavor gateway-api, where every other
    target answers 404. Both Routes are named. Give the more specific Route a last rule without
    `match` (it then decides every request to its host), or fold the two Routes into one.""",
)
K8S_ISTIO_GATEWAY_HOST_MERGE = _code(
    "MESH470", "k8s-istio-gateway-host-merge", "error",
    "On Istio, a broader gateway Route meets a listener host another Route serves, and the two are merged.",
    """meshc gives a gateway request to the attached Route whose host matches it most
    specifically, with no fall-through (docs/intents.md, "Ingress requests"). Istio builds one
    route table per http port (one per https listener) and gives each VirtualService bound to
    the Gateway a virtual host for every host it shares with a Server, the more specific of the
    two: a Route for `*.example.com` on a listener for `shop.example.com` becomes a virtual host
    `shop.example.com`. When another Route serves that name too, Istio appends both
    VirtualServices' rules to the one virtual host, and "the cross-resource order is UNDEFINED"
    (istio.io, Traffic Management Best Practices): requests meshc gives to the more specific
    Route may meet the broader Route's rules first. The broader Route's host is named, with the
    listener and the other Route. Attach the broader Route to the listeners it is meant for
    (`listeners` or `ports`, on ports of their own), or narrow the listener's hosts.""",
)
K8S_UNOWNED_REFERENCE = _code(
    "MESH429", "k8s-unowned-reference", "warning",
    "An emitted object names a Kubernetes object meshc does not write and no intent declares.",
    """The platform's `owns.kinds` leaves Services or ServiceAccounts to the application's own
    chart, so meshc refers to them by name. An AuthorizationPolicy principal of a service or
    gateway whose service account no intent names (Service.serviceAccount,
    Gateway.deployment.serviceAccount), or a gateway-api route to a version Service
    `<service>-<version>`, names an object meshc will not create: if the chart's object is
    called otherwise, the policy admits nobody and the route has no backend. Name the chart's
    account in the intent, or let the platform own the kind.""",
)
PATCHED_KUBERNETES_OBJECT = _code(
    "MESH482", "patched-kubernetes-object", "error", "A patch changes what identifies a Kubernetes object.",
    """A patch edits an object in place; it cannot change its apiVersion, kind,
    metadata.name or metadata.namespace, which the kustomization, the ownership rules and
    every reference to the object rely on (a patch cannot create or move objects either).
    Patch the fields you need and leave the identity as meshc wrote it.""",
)
K8S_CF_CALLEE_PORT = _code(
    "MESH425", "k8s-cf-callee-port", "warning",
    "A port of a Cloud Foundry callee that Kubernetes callers cannot reach.",
    """Kubernetes callers reach a Cloud Foundry app through its external route
    (`<name>.<appsDomain>`) on the Cloud Foundry router, which carries HTTP only: a tcp, tls
    or mongo port of the callee gets no ServiceEntry port. Move the service to a platform
    with container networking to Kubernetes, or call it over HTTP.""",
)
K8S_PLACEMENT_PRIORITY = _code(
    "MESH478", "k8s-placement-priority", "warning", "A placement priority Istio cannot carry.",
    """Istio orders a service's endpoints for failover by locality alone (region, zone,
    subzone; DestinationRule localityLbSetting): it has no field for an explicit tier per
    cluster or per WorkloadEntry. On a kubernetes platform the service's placements are
    ordered by locality, and a `priority` that would order them otherwise is not applied.
    Express the order with the platforms' `locality`, or leave `priority` unset.""",
)
K8S_PLACEMENT_WEIGHT = _code(
    "MESH475", "k8s-placement-weight", "warning", "Placement weights Istio cannot carry.",
    """Istio writes placement weights as the DestinationRule's `localityLbSetting.distribute`,
    which replaces its locality failover ("only one of distribute, failover or
    failoverPriority can be set") and names placements by their locality. Where the proxies of
    a cluster see the service's placements in several tiers (by priority or distance) and one
    tier holds two placements, or a weighted tier holds a placement without a locality or one
    whose locality contains another's, the weights would cost the failover or reach the wrong
    workloads; they are not written, and that cluster's proxies share each tier by its
    endpoints. Put the weighted placements in one tier for the cluster's locality, give their
    platforms distinct localities, or drop the weights.""",
)
K8S_PLACEMENT_WEIGHT_ROUNDED = _code(
    "MESH476", "k8s-placement-weight-rounded", "warning", "Placement weights Istio rounds to whole percentages.",
    """Istio's `localityLbSetting.distribute` takes whole percentages that add up to 100 (its
    validation refuses any other total). Weights whose shares are not whole percentages, such
    as 1 and 2 (33.3% and 66.7%), are written rounded (33 and 67), so the cluster's proxies
    split the tier slightly otherwise than the weights say. Choose weights whose shares are
    whole percentages to make the split exact.""",
)
K8S_GATEWAY_API_CORS_ORIGIN = _code(
    "MESH464", "k8s-gateway-api-cors-origin", "warning",
    "A CORS origin regex the Gateway API cannot express.",
    """The Gateway API's HTTPCORSFilter takes origins as `scheme://host[:port]` with a `*`
    wildcard host, or `*`; it has no regular expressions. On a kubernetes platform of flavor
    gateway-api a `{regex}` origin of a rule's `cors` is left out of the HTTPRoute, so the
    origins it alone allows are refused there. Write the origins as wildcard hosts, or use
    flavor istio (corsPolicy allowOrigins take a regex).""",
)

K8S_ROUTE_RATE_LIMIT = _code(
    "MESH460", "k8s-route-rate-limit", "warning", "A rule's rate limit that the Kubernetes flavours cannot carry.",
    """A Route rule's `rateLimit` is a token bucket at each proxy that applies the rule. Istio
    has no rate limit API and the Gateway API no rate limit filter (v1.6), so on a kubernetes
    platform (flavor istio or gateway-api) the rule is written without it. A service's own
    `rateLimit` is carried (an EnvoyFilter with the envoy target's filter at its sidecar); a
    per-rule bucket would need an EnvoyFilter patching every caller's generated route by name,
    which meshc does not write. Limit the service, or route those callers through the envoy
    targets.""",
)
K8S_GATEWAY_API_CLIENT_VALIDATION = _code(
    "MESH467", "k8s-gateway-api-client-validation", "error",
    "Client certificate validation the Gateway API cannot carry as written.",
    """On flavor gateway-api a listener's `tls.clientValidation` is the Gateway's
    `spec.tls.frontend.perPort` entry for its port: the Gateway API validates client
    certificates per port, for the HTTPS listeners of that port. Https listeners of one port
    that validate differently (one CA and another, or one and none) all get the stricter
    setting, and a `tls` listener that terminates TLS gets none, so clients without a
    certificate would get in. Give the listeners of a port one setting, use an https listener,
    or use flavor istio (per Server `tls.mode: MUTUAL`).""",
)
K8S_GATEWAY_API_TLS_PARAMETERS = _code(
    "MESH468", "k8s-gateway-api-tls-parameters", "error",
    "A listener's minimum TLS version or cipher suites the Gateway API cannot carry.",
    """The Gateway API standard channel has no field for a listener's minimum TLS version or
    cipher suites (listener `tls.options` are implementation-specific), so on flavor
    gateway-api the implementation's defaults would apply instead of `tls.minVersion` and
    `tls.cipherSuites`: a weaker TLS than written. Use flavor istio for the gateway (Server
    `tls.minProtocolVersion` and `tls.cipherSuites`), or the envoy target.""",
)

K8S_TRUSTED_PROXIES = _code(
    "MESH469", "k8s-trusted-proxies", "warning",
    "A Gateway's trustedProxies, which Istio takes from the gateway deployment's proxy configuration.",
    """`Gateway.trustedProxies` says which X-Forwarded-For entry is a client's original address
    (what `remoteIpBlocks` checks). Istio reads it from the gateway proxy's
    `gatewayTopology.numTrustedProxies` (the deployment's `proxy.istio.io/config` annotation or
    MeshConfig `defaultConfig`), which is not among the objects meshc writes: until it is set
    there to the same number, Istio's remote address is the connection's source. Set it in
    the gateway's deployment or the mesh configuration.""",
)

# 43x: cloudfoundry ---------------------------------------------------------------------------
PATCHED_CF_MANIFEST = _code(
    "MESH430", "patched-cf-manifest", "error", "A patch changes the apps of a Cloud Foundry manifest.",
    """The manifest's `applications` stay a list of objects naming the same apps in the same
    order: the sidecars, network policies and routes meshc wrote beside the manifest are for
    those apps. Patch the fields of an app, not which apps there are.""",
)
CF_CALLER_OFF_PLATFORM = _code(
    "MESH431", "cf-caller-off-platform", "warning",
    "A service outside a Cloud Foundry platform calls an app on it.",
    """An app's internal route (`<name>.<internalDomain>`) resolves and connects only inside
    its Cloud Foundry foundation, and container-to-container network policies name apps of
    that foundation. A caller on another platform therefore gets no network policy: the app
    gets an external route `<name>.<appsDomain>` on the Cloud Foundry router, and the caller's
    sidecar (or Istio, through a ServiceEntry) reaches it there over HTTPS on port 443. The
    router terminates that connection, so the caller's mesh identity ends at the router: the
    app's sidecar cannot tell the caller from anyone else who reaches the router, and the
    app's AccessPolicy cannot admit or refuse it by identity (see also MESH434). Keep such
    apps behind a Gateway or move caller and callee onto one platform where identity
    matters.""",
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
CF_PORT_CLASH = _code(
    "MESH435", "cf-port-clash", "warning", "A Cloud Foundry app port whose application and sidecar need one socket.",
    """Inside an app container the sidecar listens on every service port on all addresses
    (the container's address is known only when it starts) and forwards to the application
    on 127.0.0.1 at targetPort. When targetPort equals the port, both would bind one port
    and the second to start fails. Set `targetPort` to where the application listens.""",
)
CF_HTTP2_UPGRADE_THROUGH_ROUTER = _code(
    "MESH436", "cf-http2-upgrade-through-router", "warning",
    "An HTTP/2 upgrade that callers reaching the service through the Cloud Foundry router cannot make.",
    """`resilience.connections.http2Upgrade` makes callers' sidecars speak HTTP/2 to the
    service's sidecar. A caller that reaches a Cloud Foundry app through the router (from
    another platform) speaks TLS to the router, which delivers to the app itself, so that
    caller keeps HTTP/1.1. Callers on the same platform still upgrade.""",
)

# 44x: vm -------------------------------------------------------------------------------------
VM_NAME_COLLISION = _code(
    "MESH440", "vm-name-collision", "error", "Two services with one name on one vm platform.",
    """A vm bundle is `vm/<platform>/<service>/` and its systemd unit is named after the
    service, so two services of one name in different namespaces on one vm platform would
    overwrite each other. Both are reported; rename one or move it to another platform.""",
)
VM_ENDPOINT_ADDRESS = _code(
    "MESH441", "vm-endpoint-address", "error",
    "A vm endpoint address that is not an IP address or host name, or is listed twice.",
    """Each endpoint is one workload with its own sidecar configuration (its inbound address)
    and its own directory in the bundle, so an address is an IP address or a DNS host name
    and is listed once per service.""",
)
VM_CERTIFICATES_IGNORED = _code(
    "MESH442", "vm-certificates-ignored", "info", "certificates on a vm platform of flavor istio.",
    """On flavor istio the Istio agent on the VM obtains the workload certificate from the
    control plane (with the service account token and root-cert.pem of the bundle), so the
    platform's `certificates` setting is not used. Remove it, or use flavor static.""",
)
PATCHED_VM_BOOTSTRAP = _code(
    "MESH448", "patched-vm-bootstrap", "error", "A patch changes what a vm bundle's install script was written for.",
    """A vm bundle's install script and systemd unit are written from the bootstrap before it
    is patched: the ports below 1024 Envoy binds (the unit's CAP_NET_BIND_SERVICE) and the
    certificate files it reads. A patch that changes the listen ports or the certificate
    files of a vm bootstrap would leave them wrong, so it is refused.""",
)

# 5xx: route tests (`meshc test`) ----------------------------------------------------------
ROUTE_TEST_FAILED = _code(
    "MESH501", "route-test-failed", "error", "A RouteTest case does not get what it expects.",
    """`meshc test` evaluated the case's request with the reference evaluator (the semantics in
    docs/intents.md) and the decision differs from `expect`. The diagnostic points at the case;
    the related location is the rule that decided the request (or the message says why no rule
    did: a host nobody serves, a port without listener, no matching rule). Either the Route
    does not do what the case says, or the case is wrong: fix the one that is.""",
)
ROUTE_TEST_UNRESOLVED = _code(
    "MESH502", "route-test-unresolved", "error", "A RouteTest names a caller, gateway or route that does not exist.",
    """A RouteTest's `caller` must be a Service and its `gateway` a Gateway of the mesh; an
    expected `route` must be a Route, and an expected `rule` one of its rule indexes. The cases
    of such a test are not run.""",
)
RULE_NOT_COVERED = _code(
    "MESH503", "rule-not-covered", "info", "A route rule that no RouteTest case exercises.",
    """Rule coverage (the istio-router-check habit): every Route rule should decide at least one
    RouteTest case, so a change that makes it unreachable or sends its traffic elsewhere fails a
    test. `meshc test --fail-under PERCENT` fails when fewer rules than that are covered.""",
)
ENVOY_DISAGREES = _code(
    "MESH504", "envoy-disagrees", "error", "Envoy, running meshc's bootstrap, does not do what the semantics say.",
    """`meshc test --envoy` sends every case's request through real Envoy processes started
    from the bootstraps meshc emitted, with echo backends on loopback, and compares the backend
    that answered (or the status), the path and the host it saw with the reference evaluator.
    A difference is a bug in meshc's envoy target, not in your mesh: please report it with the
    case. The message names what differs.""",
)
