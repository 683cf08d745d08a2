"""The Istio flavour carries docs/intents.md's semantics: a small, independent reader of the
emitted VirtualService (Istio's own rules: `http` entries in order, the first whose match list
matches wins; `uri.prefix` is a character prefix; `rewrite.uri` replaces the matched prefix or
the exact path) decides generated requests as the reference evaluator does."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.build import emit
from compiler.diagnostics import Report
from compiler.evaluate import Decision, Proxy, Request, evaluate
from tests.k8s_schemas import validation_errors
from tests.semantics import key, linked, mesh, route, service
from tests.test_semantics_envoy import REQUEST_PATHS, rule

K8S = {"name": "k8s", "kind": "kubernetes", "flavor": "istio"}


def kubernetes(root: Path, rules: list[dict], report: Report | None = None):
    graph = linked(root, [mesh(K8S), service("web", calls=["api"], platform="k8s"),
                          service("api", versions=("v1", "v2", "v3"), platform="k8s"),
                          route("api", rules, service="api")], allowed=("MESH301", "MESH302", "MESH332"))
    documents = [doc for artifact in emit(graph, report or Report(), ["kubernetes"]) if artifact.path.endswith(".yaml")
                 for doc in yaml.safe_load_all(artifact.content) if doc]
    return graph, documents


def string_matches(condition: dict, value: str | None) -> bool:
    if value is None:
        return False
    if not condition:
        return True  # Istio: an empty match checks presence
    if "exact" in condition:
        return value == condition["exact"]
    if "prefix" in condition:
        return value.startswith(condition["prefix"])
    return re.fullmatch(condition["regex"], value) is not None


def istio_matches(match: dict, request: Request) -> bool:
    path = request.bare_path
    uri = match.get("uri")
    if uri is not None and not string_matches(uri, path):
        return False
    if "method" in match and match["method"]["exact"] != request.method:
        return False
    if any(not string_matches(c, request.header(n)) for n, c in match.get("headers", {}).items()):
        return False
    return all(string_matches(c, request.query(n)) for n, c in match.get("queryParams", {}).items())


def istio_decides(spec: dict, request: Request) -> tuple:
    """What Istio does with the request: ("route", [(service, subset, port, weight)], path),
    ("redirect", code, location) or ("404",)."""
    for entry in spec.get("http", []):
        for match in entry.get("match") or [{}]:
            if istio_matches(match, request):
                return istio_outcome(entry, match, request)
    return ("404",)


def istio_outcome(entry: dict, match: dict, request: Request) -> tuple:
    query = f"?{request.query_string}" if "?" in request.path else ""
    path = request.bare_path
    if "redirect" in entry:
        return istio_redirect(entry["redirect"], request, path + query)
    rewrite = entry.get("rewrite", {})
    uri = match.get("uri", {})
    if "uri" in rewrite:  # replaces the exact path, the matched prefix, or Envoy's `/` without a uri match
        path = rewrite["uri"] if "exact" in uri else rewrite["uri"] + path[len(uri.get("prefix", "/")):]
    elif "uriRegexRewrite" in rewrite:
        path = re.sub(rewrite["uriRegexRewrite"]["match"], rewrite["uriRegexRewrite"]["rewrite"], path)
    destinations = [(d["destination"]["host"].split(".")[0], d["destination"].get("subset"),
                     d["destination"]["port"]["number"], d.get("weight", 100),
                     *istio_headers([entry.get("headers", {}), d.get("headers", {})], request.headers))
                    for d in entry["route"]]
    return ("route", sorted(destinations), path + query)


WELL_KNOWN_PORTS = {"http": 80, "https": 443}


def istio_redirect(redirect: dict, request: Request, path_and_query: str, arrival_port: int = 8080) -> tuple:
    """HTTPRedirect: `scheme`, `authority`, `uri` "overwrite" their part of the URL; `port`, or
    derivePort FROM_PROTOCOL_DEFAULT ("automatically set to 80 for HTTP and 443 for HTTPS") or
    FROM_REQUEST_PORT (the port the request came in on: the service port for a sidecar's route);
    redirectCode defaults to 301. A port that is the scheme's own is not written."""
    scheme = redirect.get("scheme", request.scheme)
    name = request.host.rsplit(":", 1)[0] if ":" in request.host else request.host
    port = redirect.get("port") or {"FROM_PROTOCOL_DEFAULT": WELL_KNOWN_PORTS[scheme],
                                    "FROM_REQUEST_PORT": arrival_port}[redirect["derivePort"]]
    shown = "" if WELL_KNOWN_PORTS[scheme] == port else f":{port}"
    path, _, query = path_and_query.partition("?")
    target = redirect.get("uri", path) + (f"?{query}" if "?" in path_and_query else "")
    return ("redirect", redirect.get("redirectCode", 301), f"{scheme}://{redirect.get('authority', name)}{shown}{target}")


def joined(headers) -> tuple:
    """Each header once, its values in order joined by `,` (RFC 9110 5.3), sorted by name."""
    values: dict[str, list[str]] = {}
    for name, value in headers:
        values.setdefault(name.lower(), []).append(value)
    return tuple(sorted((name, ",".join(v)) for name, v in values.items()))


def apply_operations(operations: list[dict], headers) -> tuple:
    """Istio HeaderOperations: `set` "Overwrite the headers specified by key with the given
    values", `add` "Append the given values to the headers specified by keys (will create a
    comma-separated list of values)", `remove` "Remove the specified headers"."""
    out = [(name.lower(), value) for name, value in headers]
    for ops in operations:
        gone = {n.lower() for n in ops.get("remove", [])} | {n.lower() for n in ops.get("set", {})}
        out = ([(n, v) for n, v in out if n not in gone] + [(n.lower(), v) for n, v in ops.get("set", {}).items()]
               + [(n.lower(), v) for n, v in ops.get("add", {}).items()])
    return joined(out)


def istio_headers(levels: list[dict], sent) -> tuple[tuple, tuple]:
    """(request headers the destination gets, response headers the client gets from a backend
    answering ECHO_ANSWER) under a rule's and a destination's Istio Headers."""
    return (apply_operations([level.get("request", {}) for level in levels], sent),
            apply_operations([level.get("response", {}) for level in levels], ECHO_ANSWER))


ECHO_ANSWER = (("content-type", "application/json"),)


def evaluator_decides(decision: Decision) -> tuple:
    if decision.action == "redirect":
        return ("redirect", decision.status, decision.location)
    if decision.action == "forward":
        return ("route", sorted((t.service.name, t.version, t.port, t.weight, joined(decision.headers_seen(t)),
                                 joined(decision.response_headers(t, ECHO_ANSWER))) for t in decision.destinations),
                decision.path)
    return ("404",)


request = st.builds(
    lambda path, query, method, header: Request(
        "api", path + query, method, (("x-h", header),) if header is not None else ()),
    st.sampled_from(REQUEST_PATHS), st.sampled_from(["", "?q=x", "?q=xy", "?q=y"]), st.sampled_from(["GET", "POST"]),
    st.one_of(st.none(), st.sampled_from(["x", "xy", "y"])),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(rules=st.lists(rule, min_size=1, max_size=4), requests=st.lists(request, min_size=10, max_size=20))
def test_the_istio_virtual_service_decides_as_the_evaluator(tmp_path_factory, rules, requests) -> None:
    report = Report()
    graph, documents = kubernetes(tmp_path_factory.mktemp("istio"), rules, report)
    [service_route] = [d for d in documents if d["kind"] == "VirtualService" and d["metadata"]["name"] == "api"]
    assert validation_errors(service_route) == []  # the Istio 1.30 CRD accepts what the reader reads
    said = {d.code.code for d in report.diagnostics if d.code.code == "MESH427"}
    for sent in requests:
        decision = evaluate(graph, Proxy(service=key("web")), sent)
        if istio_decides(service_route["spec"], sent) != evaluator_decides(decision):
            assert said, (sent, service_route["spec"])


def test_a_redirect_prefix_istio_cannot_carry_is_reported_at_the_intent(tmp_path: Path) -> None:
    """istio.io HTTPRedirect.uri: "On a redirect, overwrite the Path portion of the URL with this
    value"; the whole path, so a replaced prefix after a prefix match cannot be written. After
    the stem itself (`/a` exactly) the new path is fixed and is carried."""
    report = Report()
    graph, documents = kubernetes(tmp_path, [{"match": [{"path": {"prefix": "/a"}}], "redirect": {"prefix": "/new"}},
                                             {"to": [{"version": "v1"}]}], report)
    [warning] = [d for d in report.diagnostics if d.code.code == "MESH427"]
    assert "rule 0 of Route shop/api" in warning.message and warning.location.line > 1
    [spec] = [d["spec"] for d in documents if d["kind"] == "VirtualService" and d["metadata"]["name"] == "api"]
    web = Proxy(service=key("web"))
    assert istio_decides(spec, Request("api", "/a")) == evaluator_decides(evaluate(graph, web, Request("api", "/a")))
    assert istio_decides(spec, Request("api", "/a/b"))[2] == "http://api:8080/a/b"  # the path kept, as reported


def test_segment_prefix_and_rewrite_on_istio(tmp_path: Path) -> None:
    """Issue 11: `prefix: /v2` was a character prefix on Istio (`/v2example` went to v2), and
    `rewrite: {prefix: /}` after `/api` turned `/api/foo` into `//foo` (Istio's `uri` rewrite
    replaces the matched prefix `/api`)."""
    _, documents = kubernetes(tmp_path, [
        {"match": [{"path": {"prefix": "/api"}}], "to": [{"version": "v1"}], "rewrite": {"prefix": "/"}},
        {"match": [{"path": {"prefix": "/v2"}}], "to": [{"version": "v2"}]},
        {"to": [{"version": "v3"}]}])
    [spec] = [d["spec"] for d in documents if d["kind"] == "VirtualService" and d["metadata"]["name"] == "api"]
    unchanged = ((), ECHO_ANSWER)
    assert istio_decides(spec, Request("api", "/api/foo")) == ("route", [("api", "v1", 8080, 100, *unchanged)], "/foo")
    assert istio_decides(spec, Request("api", "/api")) == ("route", [("api", "v1", 8080, 100, *unchanged)], "/")
    assert istio_decides(spec, Request("api", "/v2example"))[1] == [("api", "v3", 8080, 100, *unchanged)]
    assert istio_decides(spec, Request("api", "/v2/x"))[1] == [("api", "v2", 8080, 100, *unchanged)]
