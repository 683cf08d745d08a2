"""The gateway-api flavour carries docs/intents.md's semantics, or says at the intent that it
cannot: a small, independent reader of the emitted HTTPRoute (the Gateway API's own rules:
HTTPRouteRule.matches precedence, PathPrefix element by element, ReplacePrefixMatch) decides
generated requests as the reference evaluator does, unless a MESH42x diagnostic was reported
on the rule that decided (the evaluator's or the HTTPRoute's) or on the whole Route."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.build import emit
from compiler.diagnostics import Report
from compiler.evaluate import Decision, Proxy, Request, evaluate, rewritten_path
from compiler.model import Match, PathMatch
from tests.k8s_schemas import validation_errors
from tests.semantics import excused, gateway, key, linked, mesh, route, rules_reported, service
from tests.test_semantics_envoy import rule
from tests.test_semantics_istio import ECHO_ANSWER, WELL_KNOWN_PORTS, joined, request

K8S = {"name": "k8s", "kind": "kubernetes", "flavor": "gateway-api"}
ALLOWED = ("MESH301", "MESH302", "MESH332")


def gateway_api(root: Path, rules: list[dict], extra: list[dict] = ()):
    graph = linked(root, [mesh(K8S), service("web", calls=["api"], platform="k8s"),
                          service("api", versions=("v1", "v2", "v3"), platform="k8s"),
                          route("api", rules, service="api"), *extra], allowed=ALLOWED)
    report = Report()
    documents = [doc for artifact in emit(graph, report, ["kubernetes"]) if artifact.path.endswith(".yaml")
                 for doc in yaml.safe_load_all(artifact.content) if doc and "metadata" in doc]
    return graph, documents, report


def value_matches(match: dict, value: str | None) -> bool:
    if value is None:
        return False
    if match.get("type", "Exact") == "Exact":
        return value == match["value"]
    return re.fullmatch(match["value"], value) is not None


def path_matches(path_match: dict, path: str) -> bool:
    kind, value = path_match.get("type", "PathPrefix"), path_match.get("value", "/")
    if kind == "Exact":
        return path == value
    if kind == "PathPrefix":  # "done on a path element by element basis ... a trailing `/` is ignored"
        stem = value.rstrip("/")
        return stem == "" or path == stem or path.startswith(stem + "/")
    return re.fullmatch(value, path) is not None


def route_matches(match: dict, sent: Request) -> bool:
    if not path_matches(match.get("path", {}), sent.bare_path):
        return False
    if "method" in match and match["method"] != sent.method:
        return False
    if any(not value_matches(h, sent.header(h["name"])) for h in match.get("headers", [])):
        return False
    return all(value_matches(q, sent.query(q["name"])) for q in match.get("queryParams", []))


def precedence(match: dict) -> tuple:
    """HTTPRouteRule.matches: "Exact" path match, "Prefix" path match with largest number of
    characters, method match, largest number of header matches, of query param matches."""
    path = match.get("path", {"type": "PathPrefix", "value": "/"})
    exact = path.get("type") == "Exact"
    prefix = len(path.get("value", "/")) if path.get("type", "PathPrefix") == "PathPrefix" else 0
    return (int(exact), prefix, int("method" in match), len(match.get("headers", [])),
            len(match.get("queryParams", [])))


def chosen_rule(spec: dict, sent: Request) -> tuple[int, dict, dict] | None:
    """(index, match, rule) of the HTTPRoute rule that takes the request, None for none."""
    candidates = [(precedence(match), -index, match, rule_spec)
                  for index, rule_spec in enumerate(spec["rules"])
                  for match in rule_spec.get("matches") or [{}] if route_matches(match, sent)]
    if not candidates:
        return None
    _, negated, match, chosen = max(candidates, key=lambda c: (c[0], c[1]))  # ties: "the FIRST matching rule"
    return -negated, match, chosen


def gateway_api_decides(spec: dict, sent: Request) -> tuple:
    found = chosen_rule(spec, sent)
    if found is None:
        return ("404",)
    _, match, chosen = found
    query = f"?{sent.query_string}" if "?" in sent.path else ""
    path, host = sent.bare_path, sent.host
    for entry in chosen.get("filters", []):
        if entry["type"] == "RequestRedirect":
            redirect = entry["requestRedirect"]
            target = modified_path(redirect.get("path"), match, path)
            return ("redirect", redirect.get("statusCode", 302), location(redirect, sent, target + query))
        if entry["type"] == "URLRewrite":  # HTTPURLRewriteFilter: `hostname` replaces the Host header
            path = modified_path(entry["urlRewrite"].get("path"), match, path)
            host = entry["urlRewrite"].get("hostname", host)
    rule_filters = chosen.get("filters", [])
    cors = next((cors_answer(f["cors"], sent) for f in rule_filters if f["type"] == "CORS"), None)
    if cors is not None and cors[0]:
        return ("preflight", cors[1])
    cors_set = [{"type": "ResponseHeaderModifier", "responseHeaderModifier": {
        "set": [{"name": n, "value": v} for n, v in cors[1]]}}] if cors is not None and cors[1] else []
    weighted = len(chosen["backendRefs"]) > 1
    backends = [(ref["name"], ref["port"], ref.get("weight", 1) if weighted else 100,
                 *modified(rule_filters + ref.get("filters", []) + cors_set, sent.headers))
                for ref in chosen["backendRefs"]]
    mirrors = tuple(sorted((f["requestMirror"]["backendRef"]["name"], f["requestMirror"]["backendRef"]["port"],
                           mirror_percent(f["requestMirror"])) for f in chosen.get("filters", [])
                          if f["type"] == "RequestMirror"))
    return ("route", sorted(backends), path + query, host, mirrors)


def origin_matches(allowed: str, origin: str) -> bool:
    """HTTPCORSFilter.allowOrigins: "The `Origin` consists of a scheme and a host, with an optional
    port ... if not included, port `80` is assumed for `http` scheme origins, and port `443` is
    assumed for `https` origins"; "`*` is a greedy match to the _left_, including any number of
    DNS labels to the left of its position"; "A wildcard by itself matches all hosts"; "An origin
    value that includes _only_ the `*` character indicates requests from all `Origin`s are
    allowed"."""
    if allowed == "*":
        return True

    def parts(text: str) -> tuple[str, str, int] | None:
        found = re.fullmatch(r"(https?)://([^/:]+)(?::([0-9]+))?", text)
        if found is None:
            return None
        return found[1], found[2], int(found[3]) if found[3] else WELL_KNOWN_PORTS[found[1]]

    written, sent = parts(allowed), parts(origin)
    if written is None or sent is None or written[0] != sent[0] or written[2] != sent[2]:
        return False
    host = written[1]
    if host == "*":
        return True
    if host.startswith("*."):
        return sent[1].endswith(host[1:]) and len(sent[1]) > len(host) - 1
    return sent[1] == host


def cors_answer(cors: dict, sent: Request) -> tuple[bool, tuple] | None:
    """HTTPCORSFilter on a request with an Origin: (a preflight, the CORS headers of the
    answer). A preflight whose origin matches gets "Access-Control-Allow-Origin ... same as the
    `Origin` header provided by the client", -Allow-Credentials `true` "When set to true",
    -Allow-Methods and -Allow-Headers "present in the" fields (for `*` this reader echoes what
    was asked, which the filter allows with and without credentials, and omits -Allow-Headers
    when nothing was asked), and -Max-Age (default 5); one that does not gets 200 "but doesn't
    set the relevant cross-origin response headers". The actual request's answer gets the
    origin, credentials and -Expose-Headers."""
    origin = sent.header("origin")
    if not origin:
        return None
    allowed = any(origin_matches(o, origin) for o in cors.get("allowOrigins", []))
    credentials = [("access-control-allow-credentials", "true")] if cors.get("allowCredentials") else []
    if sent.method == "OPTIONS" and sent.header("access-control-request-method"):
        if not allowed:
            return True, ()
        out = [("access-control-allow-origin", origin), *credentials]
        for field, name, asked in (("allowMethods", "access-control-allow-methods", "access-control-request-method"),
                                   ("allowHeaders", "access-control-allow-headers", "access-control-request-headers")):
            value = sent.header(asked) if cors.get(field) == ["*"] else ",".join(cors.get(field, []))
            if value:
                out.append((name, value))
        out.append(("access-control-max-age", str(cors.get("maxAge", 5))))
        if cors.get("exposeHeaders"):  # conformance HTTPRouteCORS expects it on preflights too
            out.append(("access-control-expose-headers", ",".join(cors["exposeHeaders"])))
        return True, joined(out)
    if not allowed:
        return False, ()
    expose = [("access-control-expose-headers", ",".join(cors["exposeHeaders"]))] if cors.get("exposeHeaders") else []
    return False, (("access-control-allow-origin", origin), *credentials, *expose)


def gateway_view_of_preflight(headers) -> tuple:
    """A preflight's answer as the Gateway API states it: nothing for a refused origin, no empty
    header."""
    kept = [(n, v) for n, v in headers if v]
    return joined(kept) if any(n == "access-control-allow-origin" for n, _ in kept) else ()


def mirror_percent(mirror: dict) -> float:
    """HTTPRequestMirrorFilter: `percent`, or `fraction` numerator/denominator (default 100); all
    requests when neither is given."""
    if "percent" in mirror:
        return float(mirror["percent"])
    if "fraction" in mirror:
        return 100 * mirror["fraction"]["numerator"] / mirror["fraction"].get("denominator", 100)
    return 100.0


def modified_path(modifier: dict | None, match: dict, path: str) -> str:
    """HTTPPathModifier: ReplaceFullPath, or ReplacePrefixMatch of the rule's one PathPrefix match."""
    if modifier is None:
        return path
    if modifier["type"] == "ReplaceFullPath":
        return modifier["replaceFullPath"]
    return rewritten_path(modifier["replacePrefixMatch"], Match(path=PathMatch(prefix=match["path"]["value"])), path)


def location(redirect: dict, sent: Request, path_and_query: str, listener_port: int = 8080) -> str:
    """HTTPRequestRedirectFilter: scheme and hostname "When empty, the ... of the request is
    used"; port: "If redirect scheme is not-empty, the redirect port MUST be the well-known port
    associated with the redirect scheme ... If redirect scheme is empty, the redirect port MUST
    be the Gateway Listener port" (a mesh route's: the service port), and "SHOULD NOT add the
    port number" for http on 80 and https on 443."""
    scheme = redirect.get("scheme", sent.scheme)
    name = sent.host.rsplit(":", 1)[0] if ":" in sent.host else sent.host
    port = redirect.get("port") or (WELL_KNOWN_PORTS[scheme] if "scheme" in redirect else listener_port)
    shown = "" if WELL_KNOWN_PORTS[scheme] == port else f":{port}"
    return f"{scheme}://{redirect.get('hostname', name)}{shown}{path_and_query}"


def header_filter(headers, operations: dict) -> list:
    """HTTPHeaderFilter: `set` "overwrites the request with the given header", `add` "appends to
    any existing values associated with the header name", `remove` the named headers; names
    case-insensitive."""
    gone = {n.lower() for n in operations.get("remove", [])} | {h["name"].lower() for h in operations.get("set", [])}
    return ([(n.lower(), v) for n, v in headers if n.lower() not in gone]
            + [(h["name"].lower(), h["value"]) for h in operations.get("set", []) + operations.get("add", [])])


def modified(filters: list[dict], sent) -> tuple[tuple, tuple]:
    """(request headers the backend gets, response headers the client gets from an ECHO_ANSWER)."""
    request, response = list(sent), list(ECHO_ANSWER)
    for entry in filters:
        if entry["type"] == "RequestHeaderModifier":
            request = header_filter(request, entry["requestHeaderModifier"])
        elif entry["type"] == "ResponseHeaderModifier":
            response = header_filter(response, entry["responseHeaderModifier"])
    return joined(request), joined(response)


def evaluator_decides(decision: Decision) -> tuple:
    if decision.action == "redirect":
        return ("redirect", decision.status, decision.location)
    if decision.action == "preflight":
        return ("preflight", gateway_view_of_preflight(decision.abort_edits[0].apply(())))
    if decision.action == "forward":
        names = [(t.service.name + (f"-{t.version}" if t.version else ""), t.port, t.weight,
                  joined(decision.headers_seen(t)), joined(decision.response_headers(t, ECHO_ANSWER)))
                 for t in decision.destinations]
        mirrors = tuple(sorted((t.service.name + (f"-{t.version}" if t.version else ""), t.port, float(p))
                               for t, p in decision.mirrors))
        return ("route", sorted(names), decision.path, decision.host, mirrors)
    return ("404",)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(rules=st.lists(rule, min_size=1, max_size=4), requests=st.lists(request, min_size=10, max_size=20))
def test_the_http_route_decides_as_the_evaluator_or_a_diagnostic_says_why_not(tmp_path_factory, rules,
                                                                              requests) -> None:
    graph, documents, report = gateway_api(tmp_path_factory.mktemp("gwapi"), rules)
    [http_route] = [d for d in documents if d["kind"] == "HTTPRoute" and d["metadata"]["name"] == "api"]
    assert validation_errors(http_route) == []
    assert len(http_route["spec"]["rules"]) == len(rules)  # every generated rule is HTTP: one HTTPRoute rule each
    said = rules_reported(graph, report, key("api"), ("MESH42", "MESH464"))
    # the rank of a RegularExpression path is implementation-specific: not part of the property
    regex = any("regex" in entry.get("path", {}) for r in rules for entry in r["match"])
    for sent in requests:
        decision = evaluate(graph, Proxy(service=key("web")), sent)
        if gateway_api_decides(http_route["spec"], sent) != evaluator_decides(decision):
            chosen = chosen_rule(http_route["spec"], sent)
            deciding = (decision.rule.index if decision.rule else None, chosen[0] if chosen else None)
            assert regex or excused(said, *deciding), (sent, deciding, said, http_route["spec"])


def test_written_order_against_precedence_is_an_error_naming_both_rules(tmp_path: Path) -> None:
    """Issue 11: the gateway-api flavour emitted HTTPRoute rules whose precedence picks another
    rule for some requests, with no warning (httproute_types.go: "Proxy or Load Balancer routing
    configuration generated from HTTPRoutes MUST prioritize matches based on the following
    criteria ... "Exact" path match ... "Prefix" path match with largest number of characters")."""
    _, _, report = gateway_api(tmp_path, [
        {"match": [{"path": {"prefix": "/api"}}], "to": [{"version": "v1"}]},
        {"match": [{"path": {"prefix": "/api/v2"}}], "to": [{"version": "v2"}]},
        {"match": [{"path": {"prefix": "/other"}, "method": "GET"}], "to": [{"version": "v3"}]},
    ])
    [order] = [d for d in report.diagnostics if d.code.code == "MESH426"]
    assert "rule 1 of Route shop/api takes precedence over rule 0" in order.message
    assert order.location.line > order.related[0].location.line


def test_disjoint_or_already_ordered_rules_are_not_reported(tmp_path: Path) -> None:
    _, _, report = gateway_api(tmp_path, [
        {"match": [{"path": {"exact": "/api"}}], "to": [{"version": "v2"}]},
        {"match": [{"path": {"prefix": "/api"}, "headers": {"x": {"exact": "1"}}}], "to": [{"version": "v3"}]},
        {"match": [{"path": {"prefix": "/api"}}], "to": [{"version": "v1"}]},
        {"match": [{"path": {"prefix": "/web"}, "method": "POST"}], "to": [{"version": "v1"}]},
        {"match": [{"path": {"prefix": "/web"}, "method": "GET", "headers": {"y": {"exact": "2"}}}],
         "to": [{"version": "v2"}]},
    ])
    assert [d for d in report.diagnostics if d.code.code == "MESH426"] == []


def test_an_earlier_rule_that_wins_the_overlap_with_another_entry_is_not_reported(tmp_path: Path) -> None:
    """A later entry beats one entry of the earlier rule, but another entry of the earlier rule
    matches every request both match and ranks at least as high, so the earlier rule still wins
    ("If ties still exist within an HTTPRoute, matching precedence MUST be granted to the FIRST
    matching rule", httproute_types.go): examples/gateway-api-shop's catalog-canary."""
    canary = {"x-canary": {"exact": "true"}}
    graph, documents, report = gateway_api(tmp_path, [
        {"match": [{"path": {"prefix": "/api/products"}, "method": "GET", "headers": canary},
                   {"headers": canary}], "to": [{"version": "v2"}]},
        {"match": [{"path": {"prefix": "/api/products"}, "method": "GET"}], "to": [{"version": "v1"}]},
    ])
    assert [d for d in report.diagnostics if d.code.code == "MESH426"] == []
    [http_route] = [d for d in documents if d["kind"] == "HTTPRoute" and d["metadata"]["name"] == "api"]
    header = (("x-canary", "true"),)
    for sent in (Request("api", "/api/products/1", "GET", header), Request("api", "/api/products/1", "POST", header),
                 Request("api", "/api/products/1"), Request("api", "/other", "GET", header)):
        decision = evaluate(graph, Proxy(service=key("web")), sent)
        assert gateway_api_decides(http_route["spec"], sent) == evaluator_decides(decision), sent


def test_an_entry_of_the_earlier_rule_that_does_not_cover_the_overlap_still_reports(tmp_path: Path) -> None:
    """The earlier rule's specific entry asks for POST, so it does not cover GET /api/products/1
    with the header: there the later, longer prefix wins over the earlier catch-all entry."""
    canary = {"x-canary": {"exact": "true"}}
    _, _, report = gateway_api(tmp_path, [
        {"match": [{"path": {"prefix": "/api/products"}, "method": "POST", "headers": canary},
                   {"headers": canary}], "to": [{"version": "v2"}]},
        {"match": [{"path": {"prefix": "/api/products"}, "method": "GET"}], "to": [{"version": "v1"}]},
    ])
    assert [d.code.code for d in report.diagnostics if d.code.code == "MESH426"] == ["MESH426"]


def test_catch_all_hosts_and_tcp_routes(tmp_path: Path) -> None:
    """Issue 11: `hosts: ["*"]` came out as `hostname: '*'`, which the Gateway API CRD pattern
    rejects (an omitted hostname matches every host), and a plain-TCP gateway route as a
    TLSRoute with `hostnames: ['*']` instead of a TCPRoute."""
    _, documents, _ = gateway_api(tmp_path, [{"to": [{"version": "v1"}]}], extra=[
        service("db", ports=[{"name": "pg", "port": 5432, "protocol": "tcp"}], platform="k8s"),
        gateway("edge", [{"name": "web", "port": 443, "protocol": "https", "hosts": ["*"],
                          "tls": {"mode": "terminate", "certificate": "web"}},
                         {"name": "pg", "port": 5432, "protocol": "tcp", "hosts": ["*"]}], platform="k8s"),
        route("web", [{"to": [{"service": "api", "version": "v1"}]}], gateway="edge", hosts=["*"]),
        route("pg", [{"to": [{"service": "db"}]}], gateway="edge", hosts=["pg.example.com"]),
    ])
    kinds = {(d["kind"], d["metadata"]["name"]) for d in documents}
    assert ("TCPRoute", "pg") in kinds and ("TLSRoute", "pg") not in kinds
    [edge] = [d for d in documents if d["kind"] == "Gateway"]
    assert all("hostname" not in listener for listener in edge["spec"]["listeners"])
    [web] = [d for d in documents if d["kind"] == "HTTPRoute" and d["metadata"]["name"] == "web"]
    assert "hostnames" not in web["spec"]
    checked = [d for d in documents if d["kind"] in ("Gateway", "HTTPRoute", "TCPRoute")]
    assert [error for d in checked for error in validation_errors(d)] == []


def merged_decides(routes: list[dict], sent: Request) -> tuple:
    """HTTPRoutes with intersecting hostnames on one Gateway, merged as HTTPRouteSpec.hostnames
    says: "precedence must be given to rules from the HTTPRoute with the largest number of:
    Characters in a matching non-wildcard hostname. Characters in a matching hostname." A
    Route's rules that match decide; else the next Route's."""
    def rank(spec: dict) -> tuple[int, int]:
        names = [h for h in spec.get("hostnames", []) if h == sent.host or
                 (h.startswith("*.") and sent.host.endswith(h[1:]))]
        return max(((0 if h.startswith("*") else len(h), len(h)) for h in names), default=(-1, -1))

    for spec in sorted((r["spec"] for r in routes if rank(r["spec"]) >= (0, 0)), key=rank, reverse=True):
        decided = gateway_api_decides(spec, sent)
        if decided != ("404",):
            return decided
    return ("404",)


def edge_routes(tmp_path: Path, specific_rules: list[dict]):
    return gateway_api(tmp_path, [{"to": [{"version": "v1"}]}], extra=[
        gateway("edge", [{"name": "web", "port": 80, "protocol": "http", "hosts": ["*.example.com"]}],
                platform="k8s"),
        route("wild", [{"match": [{"path": {"prefix": "/b"}}], "to": [{"service": "api", "version": "v2"}]}],
              gateway="edge", hosts=["*.example.com"]),
        route("foo", specific_rules, gateway="edge", hosts=["foo.example.com"]),
    ])


def test_routes_merged_by_hostname_fall_through_is_an_error_naming_both(tmp_path: Path) -> None:
    """Gateway API HTTPRouteSpec.hostnames: with "multiple HTTPRoutes [that] specify intersecting
    hostnames (e.g. overlapping wildcard matching and exact matching hostnames), precedence must
    be given to rules from the HTTPRoute with the largest number of: Characters in a matching
    non-wildcard hostname" -- the broader Route's rules still apply after the specific one's.
    docs/intents.md: the most specific Route decides, "There is no fall-through to a less
    specific Route". `foo.example.com/b` is 404 for meshc and v2 through the merge: MESH428."""
    graph, documents, report = edge_routes(tmp_path, [
        {"match": [{"path": {"prefix": "/a"}}], "to": [{"service": "api", "version": "v3"}]}])
    [merge] = [d for d in report.diagnostics if d.code.code == "MESH428"]
    assert "'foo.example.com'" in merge.message and "shop/foo" in merge.message and "shop/wild" in merge.message
    assert merge.location.file == "06-route.yaml" and merge.related[0].location.file == "05-route.yaml"
    routes = [d for d in documents if d["kind"] == "HTTPRoute" and d["metadata"]["name"] in ("foo", "wild")]
    sent = Request("foo.example.com", "/b", port=80)
    assert evaluate(graph, Proxy(gateway=key("edge")), sent).status == 404
    assert merged_decides(routes, sent) == (
        "route", [("api-v2", 8080, 100, (), joined(ECHO_ANSWER))], "/b", "foo.example.com", ())
    # where the specific Route decides, the merge agrees with the evaluator
    decision = evaluate(graph, Proxy(gateway=key("edge")), Request("foo.example.com", "/a", port=80))
    assert merged_decides(routes, Request("foo.example.com", "/a", port=80)) == evaluator_decides(decision)


def test_a_specific_route_ending_in_a_catch_all_is_not_reported(tmp_path: Path) -> None:
    graph, documents, report = edge_routes(tmp_path, [
        {"match": [{"path": {"prefix": "/a"}}], "to": [{"service": "api", "version": "v3"}]},
        {"to": [{"service": "api", "version": "v1"}]}])
    assert [d for d in report.diagnostics if d.code.code == "MESH428"] == []
    routes = [d for d in documents if d["kind"] == "HTTPRoute" and d["metadata"]["name"] in ("foo", "wild")]
    for path in ("/a", "/b", "/c"):
        sent = Request("foo.example.com", path, port=80)
        assert merged_decides(routes, sent) == evaluator_decides(evaluate(graph, Proxy(gateway=key("edge")), sent))
