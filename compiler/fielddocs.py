"""What every field of the intent language means: the one text behind `meshc schema`'s
descriptions (editors show them on hover) and the field tables of docs/intents.md, which
`python -m compiler.docgen` generates from it. Keyed by model class, then by field as
written in YAML (its alias); the fields every kind shares are in KIND_FIELDS. A field
without an entry fails tests/test_schema_descriptions.py.
"""

from __future__ import annotations

KIND_FIELDS: dict[str, str] = {
    "apiVersion": "Always `meshc/v1`.",
    "kind": "Which intent this document is.",
    "name": "The object's name, unique per kind (and namespace): lower-case letters, digits and `-`, at most 63.",
    "namespace": "The namespace it lives in; default `Mesh.defaultNamespace`.",
}

FIELDS: dict[str, dict[str, str]] = {
    "Mesh": {
        "trustDomain": "SPIFFE trust domain: identities are `spiffe://<trustDomain>/ns/<namespace>/sa/<account>` "
                       "(see Identities).",
        "defaultNamespace": "The namespace of objects that do not name one.",
        "mtls": "The mesh-wide mTLS mode of inbound traffic; a Service may override it.",
        "authorization": "What a service without any AccessPolicy admits: nobody (`deny`) or every caller (`allow`).",
        "defaults": "Resilience every Service inherits, field by field (a field a Service sets replaces the default "
                    "of that field).",
        "tracing": "Where proxies send traces; unset, no tracing.",
        "exclude": "Globs of paths below the mesh root that are not intent files (`*` and `?` within a path "
                   "segment, `**` across segments); `build/` is always excluded.",
        "platforms": "Where services and gateways run; at least one.",
        "suppress": "Silence a diagnostic code, for one object or everywhere (see docs/policies.md).",
        "environments": "The environments built from this mesh, each the base intents with its overlays applied "
                        "(see Environments); none, the mesh is built as written.",
    },
    "Environment": {
        "name": "The environment's name (a DNS-1123 label): `--env NAME`, and its output directory `<out>/NAME`.",
        "overlays": "Folders below the mesh root whose files are this environment's overlays, applied in order; "
                    "default `environments/<name>`. Files in any overlay folder are never part of the base.",
    },
    "Tracing": {
        "provider": "The tracing protocol the proxies speak.",
        "address": "The collector, as `host:port`.",
        "samplingPercent": "The percentage of requests traced.",
    },
    "Suppression": {
        "code": "The diagnostic code silenced, such as `MESH320`.",
        "name": "The object it is silenced for (as the diagnostic names it); unset, everywhere.",
    },
    "PlatformBase": {
        "name": "The platform's name, which Services and Gateways give as `platform`.",
        "sidecar": "Loopback ports of the Envoy sidecars meshc generates on this platform (Cloud Foundry, VMs, tests).",
        "certificates": "Where sidecars get their certificates: an SDS socket (the default, a SPIRE agent's) or "
                        "files in a directory; never key material.",
        "locality": "Where its workloads run (region, zone, subzone): callers prefer the endpoints nearest them "
                    "and fail over by distance (see Placements and failover).",
        "network": "The network its workloads are on; unset, one that every network reaches. Workloads on other "
                   "networks reach its kubernetes services only through its east-west gateway.",
        "trustDomain": "The trust domain its certificate authority signs identities in; unset, `Mesh.trustDomain`. "
                       "Traffic between platforms of different trust domains is refused (MESH364).",
    },
    "Locality": {
        "region": "The region, such as `us-east1`.",
        "zone": "The zone within the region; unset, the whole region.",
        "subzone": "The subzone within the zone (needs `zone`).",
    },
    "EastWestGateway": {
        "address": "The address (IP or DNS name) other networks reach the gateway at.",
        "port": "Its mTLS port, Istio's AUTO_PASSTHROUGH port 15443 by default.",
    },
    "KubernetesPlatform": {
        "kind": "A Kubernetes cluster.",
        "flavor": "Which API the artifacts use: Istio's or the Gateway API's.",
        "clusterDomain": "The cluster's DNS domain.",
        "eastWestGateway": "Istio's east-west gateway of the cluster, through which workloads on other networks "
                           "reach its services (see Placements and failover).",
        "meshHosts": "Sidecar egress hosts, `namespace/host`, every service may reach besides its calls, such as "
                     "`istio-system/*` for istiod and collectors.",
        "outboundTrafficPolicy": "What a sidecar does with a host it does not know: refuse it (`REGISTRY_ONLY`) or "
                                 "pass it through unmanaged (`ALLOW_ANY`).",
        "rootNamespace": "Istio's root namespace (MeshConfig.rootNamespace), where mesh-wide policy lives.",
        "owns": "What of the cluster is the mesh's to write: core kinds, whole namespaces, the mesh-wide policy "
                "(see below).",
    },
    "Ownership": {
        "kinds": "The core kinds meshc writes beside the mesh objects; `[]` leaves Services and ServiceAccounts "
                 "to the application's chart, referred to by name.",
        "namespaces": "Namespaces wholly the mesh's: a namespace-wide PeerAuthentication and, under "
                      "`authorization: deny`, a default-deny there; never the root namespace.",
        "meshWide": "The whole mesh of the cluster: a mesh-wide PeerAuthentication in `rootNamespace`.",
    },
    "CloudFoundryPlatform": {
        "kind": "A Cloud Foundry foundation.",
        "appsDomain": "The domain of external routes (public services).",
        "internalDomain": "The domain of container-to-container routes.",
    },
    "VmPlatform": {
        "kind": "Virtual machines running an Envoy sidecar from a meshc bundle.",
        "flavor": "`static`: meshc's bootstrap configures everything; `istio`: the VMs join an Istio control plane.",
        "controlPlane": "The Istio control plane, as `host:port`: required for, and only for, flavor `istio`.",
    },
    "SidecarSettings": {
        "outboundPort": "The loopback port the sidecar takes outbound traffic on (default 15001).",
        "adminPort": "The loopback port of the sidecar's Envoy admin interface (default 15000).",
    },
    "SdsCertificates": {
        "mode": "Certificates from an SDS server.",
        "sdsSocket": "The SDS server's Unix socket: an absolute path without whitespace or control characters.",
    },
    "FileCertificates": {
        "mode": "Certificates from files.",
        "dir": "The directory of the certificate files: an absolute path without whitespace or control characters.",
    },
    "Service": {
        "jwt": "End-user authentication: JWT providers whose tokens are verified on every HTTP request; "
               "an invalid token is answered 401 (see AccessPolicy).",
        "platform": "The platform it runs on (a name in `Mesh.platforms`); or `placements`, for several.",
        "placements": "The platforms it runs on at once, with their endpoints and failover priority (see "
                      "Placements and failover); instead of `platform`.",
        "owner": "Free text, for people: who to ask about this service.",
        "public": "Reachable from outside the platform without a Gateway (on Cloud Foundry: an external route).",
        "ports": "The ports it serves; at least one.",
        "versions": "Named subsets for routing, each with the labels of its workloads.",
        "endpoints": "Where its workloads run: required on vm platforms, forbidden elsewhere (the platform finds "
                     "them).",
        "calls": "The services and external services this one sends traffic to; its sidecar is configured for "
                 "exactly these.",
        "serviceAccount": "The account its workloads run as, its identity `ns/<namespace>/sa/<account>` on every "
                          "target; unset, the service's name.",
        "egressHosts": "Kubernetes only: Istio Sidecar egress hosts (`namespace/host`) its sidecar may reach "
                       "besides its calls.",
        "mtls": "This service's inbound mTLS mode; unset, `Mesh.mtls`.",
        "resilience": "Applied by callers' sidecars on traffic to this service; each field set replaces that field "
                      "of `Mesh.defaults`.",
        "rateLimit": "A local, inbound token bucket at this service's sidecar.",
        "sidecar": "This service's sidecar ports; unset, the platform's.",
    },
    "ServicePort": {
        "name": "The port's name, unique in the service.",
        "port": "The port number callers use.",
        "protocol": "What the port speaks; `http`, `http2` and `grpc` are routed per request, the others per "
                    "connection.",
        "targetPort": "Where the application listens; unset, `port`.",
    },
    "Version": {
        "labels": "Kubernetes labels of the version's workloads, on every target: a key is a name of at most 63 "
                  "letters, digits, `-`, `_`, `.` with an optional DNS prefix and `/`; a value at most 63 of the "
                  "same characters, starting and ending with a letter or digit.",
    },
    "Placement": {
        "platform": "A platform the service runs on (a name in `Mesh.platforms`), once per service.",
        "endpoints": "Where its workloads run on this platform: required on a vm platform, forbidden elsewhere.",
        "priority": "Its failover tier, 0 to 9: callers use a higher number only when every endpoint of the lower "
                    "ones they reach is ejected.",
        "weight": "Its share, 1 to 100, of its failover tier's traffic beside the tier's other placements (see "
                  "Placements and failover); once one placement of the service sets it, the others count 1.",
    },
    "Endpoint": {
        "address": "An IP address or host name of one workload.",
        "version": "The version (a key of `versions`) this workload runs.",
    },
    "RateLimit": {
        "requests": "Requests admitted per period (at most 2147483647).",
        "per": "The period, a duration such as `1s` or `1m`.",
    },
    "RouteRateLimit": {
        "requests": "Requests the rule admits per period at each proxy that applies it (at most 2147483647).",
        "per": "The period, a duration such as `1s` or `1m`.",
        "descriptors": "Buckets of their own for requests carrying a value of one header (at most 16).",
    },
    "RateLimitDescriptor": {
        "header": "The request header (one for all descriptors of a rule).",
        "value": "The value (the header's first, compared exactly) whose requests take from this bucket instead "
                 "of the rule's.",
        "requests": "Requests with that value admitted per period.",
        "per": "The period.",
    },
    "Resilience": {
        "timeout": "The time a request may take, retries included; `0s` for no limit.",
        "retries": "How failed requests are retried; unset, Istio's default: 2 retries on connect-failure, "
                   "refused-stream, unavailable, cancelled and 503.",
        "circuitBreaker": "Limits on connections and requests in flight.",
        "outlierDetection": "When a failing endpoint is taken out of the load balancing.",
        "loadBalancer": "How endpoints are chosen: `round-robin`, `least-request`, `random`, or "
                        "`{ringHash: {header}}` (consistent hashing on a request header).",
        "connections": "How callers' sidecars keep their HTTP connections to the service.",
    },
    "ConnectionSettings": {
        "maxRequestsPerConnection": "Requests sent over one connection at most; then a new one is opened.",
        "idleTimeout": "How long a connection without a request in flight stays open; unset, 1h.",
        "http2Upgrade": "Send HTTP/1.1 requests over HTTP/2 between the sidecars (Istio h2UpgradePolicy); "
                        "unset, Istio's mesh default (no upgrade).",
    },
    "Retries": {
        "attempts": "Retries after the first try (0 turns retries off).",
        "perTryTimeout": "The time each try may take, the first included; `0s` or unset, only `timeout` bounds "
                         "it.",
        "retryOn": "The failures that are retried.",
        "statusCodes": "Answers with these 4xx or 5xx status codes are retried too (Envoy's "
                       "retriable-status-codes).",
        "backoff": "The random wait before each retry; unset, Envoy's 25ms base and 250ms cap.",
        "allowNonIdempotent": "Also retry POST and PATCH, whose retry may repeat a side effect (meshc's opt-in).",
    },
    "Backoff": {
        "base": "The base interval: retry N waits a random time below (2^N - 1) x base (at least 1ms).",
        "max": "The longest wait; unset, 10 x base.",
    },
    "CircuitBreaker": {
        "maxConnections": "Connections to the service at most (each limit at most 2147483647, Istio's int32).",
        "maxPendingRequests": "Requests waiting for a connection at most.",
        "maxRequests": "Requests in flight at most.",
        "maxRetries": "Retries in flight at most.",
    },
    "OutlierDetection": {
        "consecutive5xx": "Consecutive 5xx answers that eject an endpoint.",
        "interval": "How often endpoints are judged.",
        "baseEjectionTime": "How long an ejected endpoint stays out (times the number of its ejections).",
        "maxEjectionPercent": "The share of endpoints that may be ejected at once.",
    },
    "RingHashBalancer": {
        "ringHash": "Consistent hashing: requests with one value of the header go to one endpoint.",
    },
    "RingHash": {
        "header": "The request header whose value is hashed.",
    },
    "Route": {
        "service": "A mesh route: traffic addressed to this service or ExternalService (several Routes of one "
                   "service are merged: docs/intents.md).",
        "gateway": "An ingress route: traffic arriving at this Gateway for `hosts`.",
        "hosts": "The host names an ingress route serves (several Routes of one gateway host are merged: "
                 "docs/intents.md).",
        "listeners": "An ingress route attaches to these listeners of its gateway only, by name (Gateway API "
                     "parentRefs sectionName); unset, to every listener that serves one of its hosts.",
        "ports": "An ingress route attaches to the listeners on these ports only (Gateway API parentRefs port); "
                 "unset, any port.",
        "rules": "Tried in order; the first that matches a request decides it (docs/intents.md, Semantics).",
    },
    "RouteRule": {
        "match": "Which requests the rule takes: any entry may match; unset, every request.",
        "to": "Where matched requests go; with several destinations, every one has a weight and they sum to 100.",
        "redirect": "Answer matched requests with a redirect instead of forwarding them.",
        "timeout": "The time a request may take, retries included; `0s` for no limit; unset, the destination "
                   "service's resilience.",
        "retries": "How failed requests are retried; unset, the destination service's resilience.",
        "fault": "Faults injected into matched requests (testing resilience).",
        "mirror": "Also send a copy of matched requests to another service; the copy's answer is dropped.",
        "mirrors": "Several mirrors, each with its own percent (instead of `mirror`).",
        "rewrite": "What the destination receives instead: another path (a replaced prefix, or a whole path) "
                    "and Host header.",
        "headers": "Edits of the request on its way to every destination of the rule, and of the answer on its "
                   "way back.",
        "cors": "The CORS policy of matched requests: preflights answered by the proxy, the answers to "
                "allowed origins carrying the Access-Control headers (docs/intents.md, CORS).",
        "rateLimit": "A local token bucket for the requests the rule takes: at each proxy that applies the rule, "
                     "further requests are answered 429.",
    },
    "Cors": {
        "allowOrigins": "Origins allowed: `*`, `http(s)://host[:port]` (lower case; the host may be `*` or start "
                        "with `*.`), or `{regex}` for the whole Origin; at least one, at most 64.",
        "allowMethods": "Methods a preflight allows (Access-Control-Allow-Methods), or `[\"*\"]`: the method "
                        "the preflight asks for.",
        "allowHeaders": "Request headers a preflight allows (Access-Control-Allow-Headers), or `[\"*\"]`: "
                        "the headers the preflight asks for.",
        "exposeHeaders": "Response headers scripts may read (Access-Control-Expose-Headers); `*` not with "
                         "allowCredentials.",
        "maxAge": "How long a browser may keep a preflight's answer (Access-Control-Max-Age), whole seconds.",
        "allowCredentials": "Allow requests with credentials (Access-Control-Allow-Credentials: true).",
    },
    "OriginRegex": {
        "regex": "An RE2 regular expression the whole Origin header matches (not on flavor gateway-api: "
                 "MESH464).",
    },
    "HeaderModifier": {
        "request": "Edits of the request the destination receives.",
        "response": "Edits of the answer the client receives from the destination.",
    },
    "HeaderEdits": {
        "set": "Headers replaced (every value) or added, by name (at most 16).",
        "add": "Values appended after the header's values, if any, by name (at most 16).",
        "remove": "Headers dropped (at most 16).",
    },
    "Match": {
        "path": "The request path.",
        "method": "The HTTP method.",
        "headers": "Request headers by name (lower-cased), each matched as given; all must match.",
        "query": "Query parameters by name, each matched as given; all must match.",
        "sni": "TLS server names (tls and tcp routes).",
        "port": "The port the request arrived on.",
    },
    "StringMatch": {
        "exact": "The value is exactly this.",
        "prefix": "The value starts with this.",
        "regex": "The whole value matches this RE2 regular expression.",
        "present": "The header or parameter is present, whatever its value.",
    },
    "PathMatch": {
        "exact": "The path is exactly this.",
        "prefix": "The path is this or continues it with `/` (a segment prefix: `/api` matches `/api/x`, not "
                  "`/apix`).",
        "regex": "The whole path matches this RE2 regular expression.",
    },
    "Destination": {
        "service": "The service; unset, the route's service (required on ingress routes).",
        "version": "A version of the service; unset, all its endpoints.",
        "port": "The service port; required when the service has several.",
        "weight": "The percentage of matched requests sent here.",
        "headers": "Edits of the requests sent to this destination and of its answers (a header is edited at one "
                   "level, the rule's or the destination's).",
    },
    "Redirect": {
        "scheme": "The scheme of the Location; unset, the scheme the request arrived with.",
        "host": "The host of the Location (no wildcard); unset, the name in the request's Host header.",
        "port": "The port of the Location; unset, the scheme's well-known port when `scheme` is given, else "
                "the port the request arrived on.",
        "path": "The whole path of the Location; unset, the request's path.",
        "prefix": "What replaces the matched path prefix in the Location's path (as `rewrite.prefix` does); "
                  "not with `path`.",
        "status": "The redirect's HTTP status: 303, 307 and 308 tell the client to keep the URL's meaning.",
    },
    "Fault": {
        "delay": "Delay matched requests.",
        "abort": "Answer matched requests with an error status instead of forwarding them.",
    },
    "Delay": {
        "fixed": "How long a request is held.",
        "percent": "The percentage of matched requests delayed.",
    },
    "Abort": {
        "status": "The HTTP status answered.",
        "percent": "The percentage of matched requests aborted.",
    },
    "Mirror": {
        "service": "The service that receives the copies; unset, the route's service.",
        "version": "A version of that service.",
        "port": "The port of that service; required when it has several.",
        "percent": "The percentage of matched requests copied.",
    },
    "Rewrite": {
        "prefix": "What replaces the part of the path the match's `prefix` matched.",
        "path": "The path the destination receives, whatever was matched (the query stays).",
        "host": "The Host header the destination receives, without a port.",
    },
    "AccessPolicy": {
        "service": "The service it protects.",
        "gateway": "Or the Gateway whose clients it admits (requests through it, before routing).",
        "allow": "Requests any of these rules matches are admitted.",
        "deny": "Requests any of these rules matches are refused, whatever allows them.",
    },
    "AccessRule": {
        "from": "Who: service references, `{namespace: ns}` (every identity of a namespace), `{gateway: ref}` "
                "(traffic arriving through a Gateway), `\"*\"` (any mesh identity) or `{unauthenticated: true}` "
                "(no mesh identity); unset, any caller.",
        "methods": "HTTP methods (HTTP ports only); unset, any.",
        "paths": "Exact paths, or paths ending in `*` for a prefix (HTTP ports only); unset, any.",
        "ports": "Ports of the service; unset, any.",
        "requestPrincipals": "End users: `<issuer>/<subject>` of a valid JWT, `<issuer>/*` or `\"*\"` (any valid "
                             "token) (HTTP ports only); unset, with or without a token.",
        "claims": "Claims of the end user's valid JWT, each with values it must have one of (exact, `prefix*`, "
                  "`*suffix`, `\"*\"` for present) (HTTP ports only).",
        "headers": "Request headers, each with values it must have one of (exact, `prefix*`, `*suffix`, "
                   "`\"*\"` for present) (HTTP ports only).",
    },
    "IpBlocksSource": {
        "ipBlocks": "Gateway clients whose connection comes from one of these addresses or CIDR blocks.",
    },
    "RemoteIpBlocksSource": {
        "remoteIpBlocks": "Gateway clients whose original address (behind `Gateway.trustedProxies`) is in one of "
                          "these addresses or CIDR blocks.",
    },
    "UnauthenticatedSource": {
        "unauthenticated": "`true`: a caller without a mesh identity (`\"*\"`'s complement).",
    },
    "NamespaceSource": {
        "namespace": "Every identity in this namespace.",
    },
    "GatewaySource": {
        "gateway": "Traffic arriving through this Gateway.",
    },
    "Gateway": {
        "jwt": "End-user authentication: JWT providers whose tokens are verified on every HTTP request; "
               "an invalid token is answered 401 (see AccessPolicy).",
        "trustedProxies": "Proxies in front of the gateway that append the client to X-Forwarded-For: the "
                          "client's original address is that many entries from the right (0: the connection's).",
        "platform": "The platform it runs on: kubernetes or vm (Cloud Foundry's router is its own ingress).",
        "listeners": "The ports it listens on; at least one.",
        "sidecar": "The gateway Envoy's admin port on loopback (`adminPort`); unset, the platform's.",
        "deployment": "Kubernetes only: an existing gateway deployment it configures (such as Istio's ingress "
                      "gateway); meshc writes no ServiceAccount for it.",
    },
    "GatewayDeployment": {
        "namespace": "Where the deployment runs; unset, the Gateway's namespace.",
        "selector": "The labels of its pods, such as `{istio: ingressgateway}`.",
        "serviceAccount": "The account its pods run as: the gateway's identity.",
        "service": "The Kubernetes Service in front of it; required on flavor gateway-api (Istio's manual "
                   "deployment).",
    },
    "Listener": {
        "name": "The listener's name, unique in the gateway.",
        "port": "The port it listens on.",
        "protocol": "`https` terminates TLS; `tls` terminates it or passes it through (routed by SNI).",
        "hosts": "The host names it accepts; at least one.",
        "tls": "How TLS is handled (https and tls listeners).",
        "httpsRedirect": "Answer every request with a redirect to https (http listeners).",
    },
    "ListenerTls": {
        "mode": "`terminate`: the gateway holds the certificate; `passthrough`: the backend terminates.",
        "certificate": "The name of the secret (Kubernetes) or SDS resource holding the certificate.",
        "clientValidation": "Mutual TLS: clients must present a certificate that chains to this CA "
                            "(terminating listeners).",
        "minVersion": "The lowest TLS version accepted, `\"1.2\"` or `\"1.3\"` (quoted); unset, 1.2.",
        "cipherSuites": "The TLS 1.2 cipher suites accepted, by OpenSSL name; unset, the proxy's defaults "
                        "(TLS 1.3 suites are not configurable).",
    },
    "JwtProvider": {
        "name": "The provider's name, unique among the service's or gateway's providers.",
        "issuer": "The `iss` its tokens carry; unique among the providers.",
        "audiences": "Audiences a token's `aud` must name one of; unset, any.",
        "jwks": "The public keys that sign its tokens: `{uri}` or `{inline}`.",
        "from": "Where the token is read: `headers` (`{name, prefix}`) and `params`; unset, "
                "`Authorization: Bearer <token>` and the `access_token` query parameter.",
        "forward": "Keep the token in the request the backend receives; unset, it is removed once verified.",
    },
    "Jwks": {
        "uri": "An http(s) URL the proxy fetches the JSON Web Key Set from.",
        "inline": "The JSON Web Key Set itself, as a JSON string.",
    },
    "JwtLocations": {
        "headers": "Headers the token is read from, each `{name, prefix}` (the value after the prefix).",
        "params": "Query parameters the token is read from.",
    },
    "JwtHeader": {
        "name": "The header name.",
        "prefix": "What precedes the token in the value, such as `Bearer ` (with its space).",
    },
    "ClientValidation": {
        "ca": "The CA bundle client certificates must chain to: a ConfigMap or secret with `ca.crt` "
              "(Kubernetes), an SDS resource, or `<ca>.pem` beside the gateway's certificates (files).",
    },
    "ExternalService": {
        "hosts": "The host names it is reached at; at least one.",
        "ports": "Its ports; at least one.",
        "tls": "TLS towards it.",
        "addresses": "IP addresses or CIDR blocks the application may dial instead of a host name (Istio "
                     "ServiceEntry addresses).",
        "resolution": "Where the sidecar connects: `DNS` (the hosts' addresses), `STATIC` (the `endpoints`) or "
                      "`NONE` (the address the application dialled); unset, DNS, or NONE with a wildcard host.",
        "endpoints": "The addresses of resolution STATIC, each with its own ports by port name.",
    },
    "ExternalEndpoint": {
        "address": "An IP address the sidecar connects to.",
        "ports": "Port name to the port this endpoint listens on for it; unset, the port's upstream port.",
    },
    "ExternalPort": {
        "name": "The port's name, unique in the external service.",
        "port": "The port the application calls.",
        "protocol": "What the port speaks.",
        "targetPort": "Where the external host listens (default: docs/intents.md, Semantics, \"Per service and per "
                      "external port\").",
        "tls": "This port's own TLS origination, which replaces the ExternalService's `tls` for it.",
    },
    "ExternalTls": {
        "originate": "The caller's sidecar opens TLS to the host, for an application that speaks plain text.",
        "sni": "The TLS server name sent; unset, the host.",
    },
    "RouteTest": {
        "caller": "The calling service, whose sidecar sees the requests.",
        "gateway": "Or the Gateway that receives them (then every request needs `port`).",
        "cases": "Requests and what must happen to them; at least one.",
    },
    "RouteTestCase": {
        "name": "What the case proves, unique in the RouteTest.",
        "request": "The request sent.",
        "expect": "What must happen to it.",
    },
    "RouteTestRequest": {
        "host": "The Host header, with `:port` if the client sends one.",
        "path": "The path, with the query string if any.",
        "method": "The HTTP method.",
        "headers": "Request headers by name.",
        "port": "The gateway listener port it arrives on; on a sidecar the port comes from `host` (default the "
                "service's first HTTP port).",
        "sni": "The TLS server name (https and tls gateway listeners).",
        "clientCa": "The CA the client's certificate chains to (a listener's `clientValidation.ca`); unset, the "
                    "client presents none.",
        "tlsVersion": "The highest TLS version the client speaks, `\"1.2\"` or `\"1.3\"`.",
        "clientAddress": "The IP address a gateway's client connects from (AccessPolicy `ipBlocks`); "
                         "an `x-forwarded-for` header in `headers` gives `remoteIpBlocks` their address.",
        "backend": "How the destination answers the tries of this request (to test retries and timeouts); "
                   "unset, 200 at once.",
        "token": "A JWT that `meshc test` makes and sends where the issuer's provider reads tokens (its first "
                 "header, else the `Authorization: Bearer` header); unset, none but what `headers` carry.",
    },
    "RouteTestToken": {
        "issuer": "Its `iss`: the issuer of one of the proxy's `jwt` providers (another is refused, 401).",
        "subject": "Its `sub`, the end user.",
        "audiences": "Its `aud`.",
        "claims": "Further claims by name: a text, or a list of texts.",
        "expired": "Its `exp` an hour ago (refused, 401); else an hour ahead.",
        "signature": "`valid`: signed with a key of the issuer (through Envoy, a key `meshc test --envoy` adds "
                     "to the provider's keys); `invalid`: a signature no key of the issuer verifies (refused, "
                     "401).",
    },
    "BackendBehaviour": {
        "failures": "The answers to the first tries in turn: a 4xx or 5xx status, or `reset` (the connection "
                    "closed without an answer); every later try is answered 200.",
        "delay": "How long the destination takes to answer each try.",
        "failureDelay": "How long it takes to answer each try it fails (a slow failure, then a quick answer: "
                        "Gateway API conformance's `delayRetry`); unset, `delay`.",
    },
    "RouteTestExpectation": {
        "status": "200 when the request is forwarded, else the proxy's own answer: 404, a redirect's or an "
                  "abort's status.",
        "to": "The destinations that receive the request; an omitted field of each is not compared.",
        "mirrors": "Every mirror the request is copied to (`[]`: none); an omitted field of each is not compared.",
        "redirect": "The Location of the redirect.",
        "path": "The path the destination sees, query string included.",
        "host": "The Host the destination sees.",
        "headers": "Request headers as every destination that gets the request receives them: several values "
                   "joined by `,`, `null` for absent.",
        "responseHeaders": "Response headers as the client receives them, from a destination that itself sends "
                           "none of them (on an abort, the abort's answer).",
        "route": "The Route that decided.",
        "rule": "The index of the rule of `route` that decided.",
        "tries": "How many tries the destination receives (1 without retries).",
    },
    "ExpectedDestination": {
        "service": "The service.",
        "version": "Its version.",
        "port": "Its port.",
        "weight": "The percentage of requests it receives.",
    },
    "ExpectedMirror": {
        "service": "The service the copy goes to.",
        "version": "Its version.",
        "port": "Its port.",
        "percent": "The percentage of requests copied.",
    },
    "Policy": {
        "severity": "The severity of what the Policy reports.",
        "appliesTo": "The kind of object it judges.",
        "when": "A CEL condition: the objects it judges; unset, every object of the kind.",
        "rule": "A CEL expression over `self`, the linked, defaulted object, that must hold.",
        "message": "What is reported where the rule does not hold.",
        "environments": "The environments it judges (names in `Mesh.environments`); empty, every environment, and a "
                        "mesh without environments.",
    },
    "Patch": {
        "target": "The target whose output it edits: `envoy`, `kubernetes`, `cloudfoundry` or `vm`.",
        "service": "The Service whose sidecar's artifacts it edits (or `gateway`, or `platform`).",
        "gateway": "The Gateway whose proxy's artifacts it edits.",
        "platform": "The platform whose shared files it edits (a Cloud Foundry manifest, a kustomization, "
                    "ServiceEntries of external services).",
        "object": "The object it edits among the workload's artifacts of the target.",
        "mergePatch": "An RFC 7396 JSON merge patch: members merge into the object, `null` removes one.",
        "jsonPatch": "RFC 6902 JSON Patch operations, applied in order, all or nothing.",
        "reason": "Why the patch is needed; shown in its MESH387 note.",
    },
    "PatchObject": {
        "kind": "`EnvoyBootstrap`, `CloudFoundryManifest`, or the kind of a Kubernetes object "
                "(`VirtualService`, `HTTPRoute`, ...).",
        "apiVersion": "The object's apiVersion, when the kind alone is ambiguous.",
        "name": "The object's metadata.name (required for Kubernetes objects).",
        "namespace": "The object's metadata.namespace; unset, any.",
    },
    "JsonPatchOperation": {
        "op": "`add`, `remove`, `replace`, `move`, `copy` or `test` (RFC 6902 section 4).",
        "path": "An RFC 6901 JSON Pointer: `/`-separated members and array indexes, `~0` for `~` and `~1` for "
                "`/`; `-` is the end of an array (add).",
        "from": "The JSON Pointer a `move` or `copy` reads from.",
        "value": "The value an `add` or `replace` writes, or a `test` compares (JSON data, `null` allowed).",
    },
}


def description(model: type, field: str) -> str:
    """What `field` (as written in YAML) of `model` means; KeyError when nobody wrote it down
    (tests/test_schema_descriptions.py fails then; `meshc schema` leaves the field undescribed)."""
    from compiler.model import KIND_MODELS

    for klass in model.__mro__:
        if field in FIELDS.get(klass.__name__, {}):
            return FIELDS[klass.__name__][field]
    if model in KIND_MODELS.values() and field in KIND_FIELDS:
        return KIND_FIELDS[field]
    raise KeyError(f"{model.__name__}.{field} has no description in compiler/fielddocs.py")
