"""The envoy target carries docs/intents.md's semantics: each behaviour of issue 11's list, and
generated meshes and requests, answered by real Envoy exactly as the reference evaluator decides
(which backend answered, status, the path and the Host header it saw)."""

from __future__ import annotations

import dataclasses
import random
import re
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from compiler.diagnostics import Report
from compiler.evaluate import RESET, Behaviour, Proxy, Request, evaluate, in_sequence
from compiler.serialize import to_json
from targets.envoylib import EnvoyRunner, disagreement, gateway_bootstrap
from targets.envoylib.blocks import cluster_name
from targets.envoylib.run import _EchoServer, outcome_disagreement
from tests.conftest import require_envoy
from tests.envoy_validate import assert_envoy_accepts
from tests.jwt_tokens import Issuer
from tests.semantics import gateway, key, linked, mesh, route, service

pytestmark = pytest.mark.e2e
WEB = Proxy(service=key("web"))
EDGE = Proxy(gateway=key("edge"))


@pytest.fixture(scope="module")
def envoy_binary() -> str:
    return require_envoy()


def answers(graph, proxy: Proxy, requests: list[Request], binary: str, **runner_options) -> list[tuple]:
    """(decision, Envoy's reply, disagreement) per request, one Envoy for all of them."""
    # sent one after the other: a rule's rate limit bucket empties as the evaluator counts
    decisions = in_sequence([evaluate(graph, proxy, request) for request in requests])
    with EnvoyRunner(graph, binary, **runner_options) as runner:
        out = []
        for request, decision in zip(requests, decisions, strict=True):
            reply = runner.send(proxy, request)
            assert reply is not None, request
            out.append((decision, reply, outcome_disagreement(decision, request, reply) if request.behaviour
                        else disagreement(decision, reply)))
        return out


def canary(root: Path, rules: list[dict]):
    return linked(root, [mesh(), service("web", calls=["api"]), service("api", versions=("v1", "v2")),
                         route("api", rules, service="api")], allowed=("MESH301",))


def test_path_prefix_is_a_segment_prefix_in_envoy(tmp_path: Path, envoy_binary: str) -> None:
    """Issue 11: `path: {prefix: /v2}` was a character prefix on Envoy (`/v2example` went to v2).
    Gateway API PathPrefix: "the paths `/abc`, `/abc/`, and `/abc/def` would all match the prefix
    `/abc`, but the path `/abcd` would not"; Envoy path_separated_prefix: "/api/dev would match
    /api/dev, /api/dev/, /api/dev/v1, and /api/dev?param=true but would not match /api/developer"."""
    graph = canary(tmp_path, [{"match": [{"path": {"prefix": "/v2/"}}], "to": [{"version": "v2"}]},
                              {"to": [{"version": "v1"}]}])
    paths = ["/v2", "/v2/", "/v2/a", "/v2?x=1", "/v2example", "/V2/a"]
    results = answers(graph, WEB, [Request("api", p) for p in paths], envoy_binary)
    assert [r.cluster.split("|")[2] for _, r, _ in results] == ["v2", "v2", "v2", "v2", "v1", "v1"]
    assert [problem for *_, problem in results] == [None] * len(paths)


@pytest.mark.parametrize(("prefix", "replacement", "path", "expected"), [
    ("/api", "/", "/api/foo?x=1", "/foo?x=1"), ("/api", "/", "/api", "/"), ("/api/", "/", "/api/", "/"),
    ("/api", "/v1", "/api/foo", "/v1/foo"), ("/api", "/v1/", "/api", "/v1"),
    ("/", "/base", "/foo", "/base/foo"), (None, "/base", "/foo", "/base/foo"),
])
def test_rewrite_gives_the_documented_path_in_envoy(tmp_path: Path, envoy_binary: str, prefix, replacement,
                                                     path, expected) -> None:
    """Issue 11: `rewrite: {prefix: /}` after `/api` turned `/api/foo` into `//foo` elsewhere.
    Gateway API ReplacePrefixMatch table: `/foo/bar | /foo | / ... ` and `/foo | /foo | / | /`."""
    match = [{"path": {"prefix": prefix}}] if prefix else []
    graph = canary(tmp_path, [{"match": match, "to": [{"version": "v1"}], "rewrite": {"prefix": replacement}}])
    [(decision, reply, problem)] = answers(graph, WEB, [Request("api", path)], envoy_binary)
    assert (decision.path, reply.path, problem) == (expected, expected, None)


def test_exact_and_regex_rewrites_replace_the_whole_path(tmp_path: Path, envoy_binary: str) -> None:
    graph = canary(tmp_path, [
        {"match": [{"path": {"exact": "/old"}}, {"path": {"regex": "/r[0-9]+"}}], "to": [{"version": "v1"}],
         "rewrite": {"prefix": "/new"}}])
    results = answers(graph, WEB, [Request("api", "/old?q=1"), Request("api", "/r42")], envoy_binary)
    assert [(r.path, problem) for _, r, problem in results] == [("/new?q=1", None), ("/new", None)]


def test_rules_decide_in_written_order_in_envoy(tmp_path: Path, envoy_binary: str) -> None:
    """Issue 11: the docs promise first match in written order. docs/intents.md (Rules): "Rules
    are tried in the order written; the first rule that matches decides, on every target" --
    here a prefix rule before an exact one and a header rule after a catch-all prefix, which
    Gateway API precedence ("Exact path match", then the longest prefix, method, headers)
    would order otherwise."""
    graph = canary(tmp_path, [
        {"match": [{"path": {"prefix": "/a"}}], "to": [{"version": "v1"}]},
        {"match": [{"path": {"exact": "/a/b"}}], "to": [{"version": "v2"}]},
        {"match": [{"path": {"prefix": "/"}}], "to": [{"version": "v1"}]},
        {"match": [{"headers": {"x-h": {"exact": "1"}}}], "to": [{"version": "v2"}]}])
    requests = [Request("api", "/a/b"), Request("api", "/a"), Request("api", "/c", headers=(("x-h", "1"),))]
    results = answers(graph, WEB, requests, envoy_binary)
    assert [(r.cluster.split("|")[2], problem) for _, r, problem in results] == [
        ("v1", None), ("v1", None), ("v1", None)]
    assert [d.rule.index for d, _, _ in results] == [0, 0, 2]


def test_a_wildcard_route_serves_the_intersection_with_a_listener_in_envoy(tmp_path: Path, envoy_binary: str) -> None:
    """Gateway API HTTPRouteSpec.hostnames: "A Listener with `test.example.com` as the hostname
    matches HTTPRoutes that have ... specified at least one of `test.example.com` or
    `*.example.com`" (and it was MESH351, "unserved", before). The `*.example.com` Route serves
    test.example.com through that listener, and nothing the listener does not name."""
    graph = linked(tmp_path, [
        mesh(), service("v1"),
        gateway("edge", [{"name": "test", "port": 80, "protocol": "http", "hosts": ["test.example.com"]}]),
        route("wild", [{"to": [{"service": "v1"}]}], gateway="edge", hosts=["*.example.com"]),
    ])
    requests = [Request(h, "/", port=80) for h in ("test.example.com", "other.example.com", "example.com")]
    results = answers(graph, EDGE, requests, envoy_binary)
    assert [(r.status, problem) for _, r, problem in results] == [(200, None), (404, None), (404, None)]


def catch_all_tls(root: Path, web_hosts: list[str]):
    """An https and a tls passthrough listener, both for every host (`*`)."""
    return linked(root, [
        mesh(), service("v1"), service("db", ports=[{"name": "tls", "port": 5432, "protocol": "tls"}]),
        gateway("edge", [
            {"name": "web", "port": 443, "protocol": "https", "hosts": ["*"],
             "tls": {"mode": "terminate", "certificate": "web"}},
            {"name": "pass", "port": 5432, "protocol": "tls", "hosts": ["*"], "tls": {"mode": "passthrough"}},
        ]),
        route("web", [{"to": [{"service": "v1"}]}], gateway="edge", hosts=web_hosts),
        route("db", [{"match": [{"sni": ["*"]}], "to": [{"service": "db"}]}], gateway="edge", hosts=["*"]),
    ])


def test_catch_all_tls_listeners_serve_any_sni_in_envoy(tmp_path: Path, envoy_binary: str) -> None:
    """Issue 11: a TLS listener with `hosts: ["*"]` emitted `server_names: ["*"]`, refused at
    start-up. Now it starts and serves: any SNI (and none) reaches the https listener's Route,
    and the passthrough listener's backend (Gateway API: a Listener without hostname matches
    all hostnames, "When unspecified, all hostnames are matched")."""
    graph = catch_all_tls(tmp_path / "mesh", ["shop.example.com", "*.example.org"])
    requests = [Request("shop.example.com", "/", port=443, sni="shop.example.com"),
                Request("a.example.org", "/x", port=443, sni="anything.test"),
                Request("other.net", "/", port=443, sni="other.net"),
                Request("db", "/", port=5432, sni="db.example.com"), Request("db", "/", port=5432)]
    results = answers(graph, EDGE, requests, envoy_binary)
    assert [problem for *_, problem in results] == [None] * len(requests)
    assert [(r.status, r.cluster) for _, r, _ in results] == [
        (200, "outbound|8080||v1.shop"), (200, "outbound|8080||v1.shop"), (404, None),
        (200, "outbound|5432||db.shop"), (200, "outbound|5432||db.shop")]


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    """The shapes of Gateway API conformance tests/httproute-hostname-intersection and
    httproute-listener-hostname-matching, plus a Route rule on one listener port."""
    return linked(tmp_path_factory.mktemp("edge"), [
        mesh(), *(service(n) for n in ("v1", "v2", "v3", "v4")),
        gateway("edge", [
            {"name": "specific", "port": 80, "protocol": "http", "hosts": ["very.specific.com"]},
            {"name": "wild", "port": 80, "protocol": "http", "hosts": ["*.wildcard.io"]},
            {"name": "alt", "port": 8080, "protocol": "http", "hosts": ["*"]},
        ]),
        route("specific", [{"match": [{"path": {"prefix": "/s1"}}], "to": [{"service": "v1"}]}],
              gateway="edge", hosts=["very.specific.com"]),
        route("wild", [{"match": [{"port": 8080}], "to": [{"service": "v4"}]}, {"to": [{"service": "v2"}]}],
              gateway="edge", hosts=["*.wildcard.io"]),
        route("exact", [{"to": [{"service": "v3"}]}], gateway="edge", hosts=["foo.wildcard.io"]),
    ])


def test_gateway_ignores_the_port_in_host(edge, envoy_binary: str) -> None:
    """Issue 11: `very.specific.com:1234` got 404 from a meshc gateway. Gateway API
    HTTPRouteSpec.hostnames: "Implementations MUST ignore any port value specified in the HTTP
    Host header while performing a match and ... MUST forward this header unmodified"."""
    [(_, reply, problem)] = answers(edge, EDGE, [Request("very.specific.com:1234", "/s1", port=80)],
                                           envoy_binary)
    assert (reply.status, reply.cluster, reply.host, problem) == (
        200, "outbound|8080||v1.shop", "very.specific.com:1234", None)


def test_match_port_selects_the_listener_in_envoy(edge, envoy_binary: str) -> None:
    """Issue 11: `match: [{port: 8080}]` on a gateway Route was dropped from the Envoy gateway
    routes (every listener got every rule)."""
    results = answers(edge, EDGE, [Request("x.wildcard.io", "/", port=8080), Request("x.wildcard.io", "/", port=80)],
                      envoy_binary)
    assert [(r.cluster, problem) for _, r, problem in results] == [
        ("outbound|8080||v4.shop", None), ("outbound|8080||v2.shop", None)]


def test_most_specific_route_host_wins_in_envoy(edge, envoy_binary: str) -> None:
    requests = [Request(h, "/", port=80) for h in ("foo.wildcard.io", "bar.wildcard.io", "a.b.wildcard.io",
                                                   "wildcard.io", "very.specific.com")]
    results = answers(edge, EDGE, requests, envoy_binary)
    assert [problem for *_, problem in results] == [None] * len(requests)
    assert [r.status for _, r, _ in results] == [200, 200, 200, 404, 404]


def test_catch_all_tls_listeners_start(tmp_path: Path, envoy_binary: str) -> None:
    """Issue 11: a TLS listener (terminate or passthrough) with `hosts: ["*"]` emitted
    `server_names: ["*"]`, which Envoy refuses at start-up."""
    graph = catch_all_tls(tmp_path / "mesh", ["shop.example.com"])
    bootstrap = gateway_bootstrap(graph, graph.gateways[key("edge")], Report(), "127.0.0.1")
    chains = [c for listener in bootstrap["static_resources"]["listeners"] for c in listener["filter_chains"]]
    names = [c.get("filter_chain_match", {}).get("server_names") for c in chains]
    # the catch-all chains carry no server_names; the https Route's host (an HTTP destination)
    # is no chain of the passthrough listener (docs/intents.md, Gateway)
    assert names == [None, None]
    assert_envoy_accepts({"edge.json": to_json(bootstrap)}, tmp_path)


def test_overlapping_http_listeners_share_a_port_in_envoy(tmp_path: Path, envoy_binary: str) -> None:
    """Issue 11: two http listeners on one port with `foo.bar.com` and `*.bar.com` were refused
    (MESH350), and with the code suppressed the bootstrap had duplicate virtual-host domains.
    Gateway API GatewaySpec.listeners, "Listeners that are distinct only by Hostname": "Exact
    matches MUST be processed before wildcard matches"; "if Listeners are defined for
    "foo.example.com" and "*.example.com", a request to "foo.example.com" SHOULD only be routed
    using routes attached to the "foo.example.com" Listener". Here the wildcard listener
    redirects to https, the exact one routes, and a `*.bar.com` Route serves the exact
    listener's name through it (hostname intersection)."""
    graph = linked(tmp_path, [
        mesh(), service("v1"), service("v2"),
        gateway("edge", [
            {"name": "foo", "port": 80, "protocol": "http", "hosts": ["foo.bar.com", "api.bar.com"]},
            {"name": "bar", "port": 80, "protocol": "http", "hosts": ["*.bar.com"], "httpsRedirect": True},
            {"name": "all", "port": 80, "protocol": "http", "hosts": ["*"]},
        ]),
        route("wild", [{"to": [{"service": "v1"}]}], gateway="edge", hosts=["*.bar.com"]),
        route("api", [{"to": [{"service": "v2"}]}], gateway="edge", hosts=["api.bar.com", "example.org"]),
    ])
    bootstrap = gateway_bootstrap(graph, graph.gateways[key("edge")], Report(), "127.0.0.1")
    [http] = bootstrap["static_resources"]["listeners"]
    hosts = http["filter_chains"][0]["filters"][0]["typed_config"]["route_config"]["virtual_hosts"]
    domains = [d for host in hosts for d in host["domains"]]
    assert sorted(domains) == sorted(set(domains))  # Envoy refuses a domain written twice
    requests = [Request(h, "/p?q=1", port=80) for h in ("foo.bar.com", "api.bar.com:80", "x.bar.com", "a.b.bar.com",
                                                         "example.org", "bar.com", "other.net")]
    results = answers(graph, EDGE, requests, envoy_binary)
    assert [problem for *_, problem in results] == [None] * len(requests)
    assert [(r.status, r.cluster) for _, r, _ in results] == [
        (200, "outbound|8080||v1.shop"), (200, "outbound|8080||v2.shop"), (301, None), (301, None),
        (200, "outbound|8080||v2.shop"), (404, None), (404, None)]
    assert results[2][1].location == "https://x.bar.com/p?q=1"


# ---------------------------------------------------------------------------------------------
# Differential: generated meshes and requests

SEGMENTS = ["a", "b", "ab"]
segment_paths = st.lists(st.sampled_from(SEGMENTS), min_size=0, max_size=2).map(lambda parts: "/" + "/".join(parts))
# requests where a segment prefix and a character prefix differ: `/ab` under `/a`, trailing `/`
REQUEST_PATHS = ["/", "/a", "/a/", "/ab", "/a/b", "/ab/a", "/b", "/b/ab", "/aa", "/a/b/"]
string_match = st.one_of(
    st.builds(lambda v: {"exact": v}, st.sampled_from(["x", "xy"])),
    st.builds(lambda v: {"prefix": v}, st.sampled_from(["x", "y"])),
    st.just({"present": True}),
)
prefix_match = st.builds(lambda p, slash: {"prefix": p + ("/" if slash and p != "/" else "")}, segment_paths,
                         st.booleans())
path_match = st.one_of(
    prefix_match, prefix_match,
    st.builds(lambda p: {"exact": p}, segment_paths),
    st.builds(lambda p: {"regex": re.escape(p) + ".*"}, segment_paths),
)
match_entry = st.fixed_dictionaries({"path": path_match}, optional={
    "method": st.sampled_from(["GET", "POST"]),
    "headers": st.dictionaries(st.sampled_from(["x-h"]), string_match, max_size=1),
    "query": st.dictionaries(st.sampled_from(["q"]), string_match, max_size=1),
})


def as_edits(entries: list[tuple[str, str, str]]) -> dict:
    """HeaderEdits from (name, set | add | remove, value), one entry per name."""
    edits: dict = {}
    for name, operation, value in entries:
        if operation == "remove":
            edits.setdefault("remove", []).append(name)
        else:
            edits.setdefault(operation, {})[name] = value
    return edits


def header_edits(names: list[str]):
    return st.lists(st.tuples(st.sampled_from(names), st.sampled_from(["set", "add", "remove"]),
                              st.sampled_from(["1", "a b"])),
                    min_size=1, max_size=len(names), unique_by=lambda entry: entry[0]).map(as_edits)


def header_modifier(request_names: list[str], response_names: list[str]):
    """Request edits on headers the generated requests send (x-h) or not; response edits on a
    header the echo backend answers with (content-type) or not."""
    return st.fixed_dictionaries({}, optional={"request": header_edits(request_names),
                                               "response": header_edits(response_names)}).filter(bool)


# the rule's and its destinations' edits name disjoint headers (RouteRule validation)
destination = st.builds(lambda version, headers: {"version": version, **({"headers": headers} if headers else {})},
                        st.sampled_from(["v1", "v2", "v3"]),
                        st.one_of(st.none(), header_modifier(["x-d", "X-Dest"], ["x-rd"])))
# Gateway API HTTPRequestRedirectFilter's fields (conformance httproute-redirect-host-and-status,
# -path, -port, -scheme, -port-and-scheme); without `status` the default 301
redirect = st.fixed_dictionaries({}, optional={
    "scheme": st.sampled_from(["http", "https"]), "host": st.sampled_from(["example.org"]),
    "port": st.sampled_from([80, 443, 8083]), "status": st.sampled_from([302, 303, 307, 308]),
    "path": st.sampled_from(["/moved", "/"]), "prefix": st.sampled_from(["/", "/new", "/new/"]),
}).filter(lambda r: not ("path" in r and "prefix" in r))
# a prefix replaced or the whole path (Gateway API ReplacePrefixMatch, ReplaceFullPath), and
# the Host (HTTPURLRewriteFilter.hostname)
rewrite = st.one_of(
    st.builds(lambda p: {"prefix": p}, st.sampled_from(["/", "/r", "/r/"])),
    st.builds(lambda p: {"path": p}, st.sampled_from(["/", "/whole"])),
).flatmap(lambda written: st.sampled_from([written, {**written, "host": "rewritten.example.org"}]))
# several mirrors, each with its own percent (Istio HTTPRoute.mirrors, repeated Gateway API
# RequestMirror filters)
mirrors = st.lists(st.builds(lambda version, percent: {"version": version, "percent": percent},
                             st.sampled_from(["v1", "v2", "v3"]), st.sampled_from([0, 12.5, 100])),
                   min_size=1, max_size=2)
# CORS (Gateway API HTTPCORSFilter, conformance httproute-cors): origins exact, with the
# scheme's port or another, wildcard hosts, a regex, or `*`; methods and headers listed or `*`
ORIGINS = ["https://a.example.com", "https://*.example.com", "http://a.example.com:8080", "https://*",
           {"regex": "https://r[0-9]+\\.test"}]
cors = st.fixed_dictionaries(
    {"allowOrigins": st.one_of(st.just(["*"]), st.lists(st.sampled_from(ORIGINS), min_size=1, max_size=3,
                                                        unique_by=str))},
    optional={"allowMethods": st.sampled_from([["GET", "PUT"], ["*"], ["DELETE"]]),
              "allowHeaders": st.sampled_from([["x-h", "content-type"], ["*"]]),
              "exposeHeaders": st.sampled_from([["x-r"], ["x-r", "x-s"]]),
              "maxAge": st.sampled_from(["1s", "10m"]), "allowCredentials": st.booleans()})
destinations = st.lists(destination, min_size=1, max_size=2, unique_by=lambda d: d["version"]).map(
    lambda chosen: chosen if len(chosen) == 1 else [{**d, "weight": w} for d, w in zip(chosen, (30, 70), strict=True)])
# retries (issue 12): the conditions and codes a destination's failures meet or miss
retries = st.fixed_dictionaries({"attempts": st.integers(0, 2)}, optional={
    "retryOn": st.lists(st.sampled_from(["5xx", "gateway-error", "reset", "retriable-4xx"]), unique=True, max_size=2),
    "statusCodes": st.lists(st.sampled_from([429, 503]), unique=True, max_size=1),
    "allowNonIdempotent": st.booleans(),
})
# a rule's local rate limit (issue 12), an hour's bucket of a few requests, and a bucket of its
# own for requests whose x-h is `x` (Envoy local_ratelimit descriptors)
rate_limit = st.fixed_dictionaries({"requests": st.integers(1, 3), "per": st.just("1h")}, optional={
    "descriptors": st.just([{"header": "x-h", "value": "x", "requests": 1, "per": "1h"}])})
rule = st.one_of(
    st.fixed_dictionaries({"match": st.lists(match_entry, max_size=2), "to": destinations},
                          optional={"rewrite": rewrite, "mirrors": mirrors, "retries": retries,
                                    "rateLimit": rate_limit, "timeout": st.sampled_from(["0s", "10s"]),
                                    "headers": header_modifier(["x-h", "x-e"], ["content-type", "x-r"]),
                                    "cors": cors}).filter(
        # a rule's bucket is one per match entry in Envoy (MESH417, tests/test_language_ratelimits.py)
        lambda written: "rateLimit" not in written or len(written["match"]) <= 1),
    st.fixed_dictionaries({"match": st.lists(match_entry, min_size=1, max_size=1),
                           "redirect": redirect}),
)
request = st.builds(
    lambda path, query, method, header, failures: Request(
        "api", path + query, method, (("x-h", header),) if header is not None else (),
        behaviour=Behaviour(tuple(failures)) if failures else None),
    st.sampled_from(REQUEST_PATHS), st.sampled_from(["", "?q=x", "?q=xy", "?q=y"]), st.sampled_from(["GET", "POST"]),
    st.one_of(st.none(), st.sampled_from(["x", "xy", "y"])),
    st.lists(st.sampled_from([409, 429, 500, 503, RESET]), max_size=3),
)
# Origins a browser (or another client) sends: allowed by some patterns only, the scheme's port
# written out, another port, no more label than the wildcard needs, `null`
SENT_ORIGINS = ["https://a.example.com", "https://b.a.example.com", "https://example.com", "http://a.example.com",
                "http://a.example.com:8080", "https://a.example.com:443", "https://r7.test", "null"]
cors_request = st.builds(
    lambda sent, origin, preflight, asked: Request(sent.host, sent.path, "OPTIONS" if preflight else sent.method,
                                                   sent.headers + (("origin", origin),) + (
                                                       (("access-control-request-method", "PUT"),) if preflight else ())
                                                   + ((("access-control-request-headers", asked),)
                                                      if preflight and asked else ())),
    request, st.sampled_from(SENT_ORIGINS), st.booleans(), st.sampled_from([None, "x-h", "x-h,x-q"]))
any_request = st.one_of(request, cors_request)


@settings(max_examples=10, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(rules=st.lists(rule, min_size=1, max_size=4), requests=st.lists(any_request, min_size=20, max_size=30),
       split=st.integers(0, 4))
def test_envoy_and_the_evaluator_agree_on_generated_routes(tmp_path_factory, envoy_binary: str, rules, requests,
                                                           split) -> None:
    """One Envoy per generated mesh; every generated request answered as the evaluator decides.
    The rules are written in one Route, or in two Routes of the service whose merge order (by
    name: `api-a` first) is the written order (docs/intents.md, "Several Routes for one host").
    Bounded: ten meshes, no shrinking (each example starts an Envoy); a failure prints the
    generated rules and the requests Envoy answered otherwise."""
    started = time.monotonic()
    split = min(split, len(rules))
    routes = ([route("api", rules, service="api")] if split in (0, len(rules)) else
              [route("api-b", rules[split:], service="api"), route("api-a", rules[:split], service="api")])
    graph = linked(tmp_path_factory.mktemp("generated"), [
        mesh(), service("web", calls=["api"]), service("api", versions=("v1", "v2", "v3")), *routes],
        allowed=("MESH301", "MESH302", "MESH332", "MESH354", "MESH355"))
    results = answers(graph, WEB, requests, envoy_binary)
    assert [(request.method, request.path, problem) for request, (*_, problem) in zip(requests, results, strict=True)
            if problem is not None] == []
    assert time.monotonic() - started < 20


# ---------------------------------------------------------------------------------------------
# Differential: generated Routes on an external host (issue 12, docs/intents.md ExternalService)

EXTERNALS = {"v1": "pay-a", "v2": "pay-b", "v3": "pay-c"}
PAY_ADDRESS = "10.9.8.7"


def on_external_hosts(written: dict) -> dict:
    """A generated rule with its destinations and mirrors on the ExternalServices pay-a, pay-b
    and pay-c instead of api's versions (a Route on an external host: docs/intents.md)."""
    def external_destination(target: dict) -> dict:
        return {("service" if name == "version" else name): (EXTERNALS[value] if name == "version" else value)
                for name, value in target.items()}
    return {**written, **({"to": [external_destination(t) for t in written["to"]]} if "to" in written else {}),
            **({"mirrors": [external_destination(m) for m in written["mirrors"]]} if "mirrors" in written else {})}


EXTERNAL_HOSTS = ["pay-a.example.com", "pay-a.example.com:80", PAY_ADDRESS, "pay-b.example.com",
                  "other.example.com"]
external_request = st.builds(
    # a backend's failures only where a Route decides (a request straight to an ExternalService
    # has no retries of the mesh's to count: outcome_disagreement)
    lambda sent, host: Request(host, sent.path, sent.method, sent.headers,
                               behaviour=sent.behaviour if host.startswith(("pay-a", PAY_ADDRESS)) else None),
    any_request, st.sampled_from(EXTERNAL_HOSTS))


@settings(max_examples=8, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rules=st.lists(rule.map(on_external_hosts), max_size=3),  # none: no Route on pay-a
       requests=st.lists(external_request, min_size=15, max_size=25),
       target_ports=st.lists(st.booleans(), min_size=3, max_size=3), calls_b=st.booleans())
def test_envoy_and_the_evaluator_agree_on_generated_external_routes(tmp_path_factory, envoy_binary: str, rules,
                                                                    requests, target_ports, calls_b) -> None:
    """Three STATIC ExternalServices on 127.x (each endpoint's port by the endpoint's port map
    or by the port's `targetPort`, Istio WorkloadEntry.ports), pay-a also reached by an address
    of its `addresses`; a generated Route on pay-a's host (or none) whose rules split, mirror,
    rewrite, retry and time out between the three external hosts; web calls pay-a (and maybe
    pay-b, which no Route decides). Their clusters are kept exactly as the envoy target writes
    them (type STATIC, the endpoint's address and port); every generated request answered by
    real Envoy as the evaluator decides (the endpoint reached, status, path, Host, header
    edits, CORS, retries, rate limits). Bounded: eight meshes, no shrinking (80 ran clean once by
    hand)."""
    started = time.monotonic()
    if not rules:  # no Route decides: no failures of a backend to count
        requests = [dataclasses.replace(request, behaviour=None) for request in requests]
    loopback = f"127.{random.randrange(100, 250)}.{random.randrange(1, 250)}.{random.randrange(2, 250)}"
    names = {name: cluster_name(key(name), 80) for name in EXTERNALS.values()}
    backends = {name: _EchoServer(loopback, cluster) for name, cluster in names.items()}
    try:
        externals = []
        for (name, backend), by_target_port in zip(backends.items(), target_ports, strict=True):
            listening = backend.server_address[1]
            port = {"name": "http", "port": 80, "protocol": "http", **({"targetPort": listening} if by_target_port
                                                                      else {})}
            endpoint = {"address": loopback, **({} if by_target_port else {"ports": {"http": listening}})}
            externals.append({"apiVersion": "meshc/v1", "kind": "ExternalService", "name": name,
                              "hosts": [f"{name}.example.com"], "ports": [port], "resolution": "STATIC",
                              "endpoints": [endpoint], **({"addresses": [PAY_ADDRESS]} if name == "pay-a" else {})})
        graph = linked(tmp_path_factory.mktemp("external"), [
            mesh(), service("web", calls=["pay-a", *(["pay-b"] if calls_b else [])]), *externals,
            *([route("pay", rules, service="pay-a")] if rules else [])],
            allowed=("MESH301", "MESH302", "MESH332", "MESH354", "MESH355"))
        results = answers(graph, WEB, requests, envoy_binary, emitted=frozenset(names.values()),
                          backends=list(backends.values()))
        assert [(r.host, r.method, r.path, problem) for r, (*_, problem) in zip(requests, results, strict=True)
                if problem is not None] == []
    finally:
        for backend in backends.values():
            backend.stop()
    assert time.monotonic() - started < 20


# ---------------------------------------------------------------------------------------------
# Differential: generated gateways (listeners sharing a port with overlapping hosts) and requests

# TLS 1.2 suites for the test certificate's EC key (targets/envoylib/run.py self_signed)
CIPHERS = ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384"]
GATEWAY_HOSTS = ["a.example.com", "*.example.com", "b.a.example.com", "*.a.example.com", "*", "other.org"]
REQUEST_HOSTS = ["a.example.com", "x.example.com", "b.a.example.com", "c.b.a.example.com", "example.com",
                 "other.org", "z.other.org", "a.example.com:8080"]


@st.composite
def gateway_mesh(draw) -> tuple[str, list[dict], list[dict]]:
    """(protocol, listeners on port 80, Routes): every host written once among the listeners and
    once among the Routes, as MESH350 and one Route per gateway host require."""
    protocol = draw(st.sampled_from(["http", "https"]))
    hosts = draw(st.permutations(GATEWAY_HOSTS))
    cuts = sorted(draw(st.lists(st.integers(1, len(hosts) - 1), min_size=1, max_size=2, unique=True)))
    groups = [hosts[a:b] for a, b in zip([0, *cuts], [*cuts, len(hosts)], strict=True)]
    listeners = []
    for index, group in enumerate(groups):
        listener = {"name": f"l{index}", "port": 80, "protocol": protocol, "hosts": group[:2]}
        if protocol == "https":
            # issue 12: a listener's minimum TLS version (docs/intents.md, Gateway: `minVersion`)
            minimum = draw(st.sampled_from([None, "1.2", "1.3"]))
            # and its TLS 1.2 cipher suites (none with 1.3 only, which has no choice of them)
            suites = None if minimum == "1.3" else draw(st.sampled_from([None, CIPHERS[:1], CIPHERS[1:], CIPHERS]))
            listener["tls"] = {"mode": "terminate", "certificate": f"c{index}",
                               **({"minVersion": minimum} if minimum else {}),
                               **({"cipherSuites": suites} if suites else {})}
        elif draw(st.booleans()) and index == 0:
            listener["httpsRedirect"] = True
        listeners.append(listener)
    route_hosts = draw(st.permutations(GATEWAY_HOSTS))
    count = draw(st.integers(1, 3))
    routes = []
    for index in range(count):
        target = {"service": f"v{index + 1}"}
        rules = ([{"match": [{"path": {"prefix": "/p"}}], "to": [target]}] if draw(st.booleans()) else
                 [{"to": [target]}])
        # several Routes may write one host (merged by name), and attach to some listeners only
        hosts = (route_hosts[index * 2:index * 2 + 2] if draw(st.booleans()) else
                 draw(st.lists(st.sampled_from(GATEWAY_HOSTS[:3]), min_size=1, max_size=2, unique=True)))
        attached = draw(st.lists(st.sampled_from([listener["name"] for listener in listeners]), max_size=2,
                                 unique=True))
        routes.append(route(f"r{index}", rules, gateway="edge", hosts=hosts,
                            **({"listeners": attached} if attached else {})))
    # issue 12: end-user authentication and an AccessPolicy of the gateway's clients
    secured = draw(st.booleans())
    return protocol, listeners, routes, secured


gateway_request = st.tuples(st.sampled_from(REQUEST_HOSTS), st.sampled_from(["/", "/p", "/p/x", "/q"]),
                            st.sampled_from(["none", "valid", "banned", "expired", "forged", "pass"]),
                            st.sampled_from(["1.2", "1.3"]),  # the highest TLS version the client speaks
                            st.sampled_from([None, (CIPHERS[0],), (CIPHERS[1],)]))  # its 1.2 suites, None: any
ISSUER = Issuer("https://issuer.example")
IMPOSTOR = Issuer(ISSUER.iss)  # the issuer's name, another key: a signature that does not verify


def secured_documents() -> tuple[list[dict], dict]:
    """The gateway's `jwt` provider and an AccessPolicy of its clients: end users on /p, a
    header anywhere, anyone on /q, never a banned end user (docs/intents.md, End-user
    authentication and "A Gateway's clients")."""
    providers = [{"name": "issuer", "issuer": ISSUER.iss, "jwks": {"inline": ISSUER.jwks}}]
    policy = {"apiVersion": "meshc/v1", "kind": "AccessPolicy", "name": "edge-clients", "gateway": "edge",
              "allow": [{"requestPrincipals": ["*"], "paths": ["/p/*"]}, {"headers": {"x-pass": ["yes"]}},
                        {"from": [{"unauthenticated": True}], "paths": ["/q"]}],
              "deny": [{"claims": {"role": ["banned"]}}]}
    return providers, policy


def credential_headers(credential: str) -> tuple[tuple[str, str], ...]:
    tokens = {"valid": ISSUER.token("alice"), "banned": ISSUER.token("mallory", role="banned"),
              "expired": ISSUER.token("alice", lifetime=-3600), "forged": IMPOSTOR.token("alice")}
    if credential in tokens:
        return (("authorization", f"Bearer {tokens[credential]}"),)
    return (("x-pass", "yes"),) if credential == "pass" else ()


@settings(max_examples=8, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(generated=gateway_mesh(), sent=st.lists(gateway_request, min_size=15, max_size=25))
def test_envoy_and_the_evaluator_agree_on_generated_gateways(tmp_path_factory, envoy_binary: str, generated,
                                                              sent) -> None:
    """Listeners of one kind sharing a port with overlapping hosts, Routes with overlapping hosts
    (docs/intents.md, Ingress requests: the most specific listener, then the most specific Route,
    no fall-through; an unknown SNI answered 404): one Envoy per generated gateway, every request
    (over TLS with its host as SNI on https) answered as the evaluator decides; an
    httpsRedirect to a Host with a port goes to 443 (Gateway API HTTPRequestRedirectFilter:
    "the redirect port MUST be the well-known port associated with the redirect scheme"). Half
    of the gateways verify JWTs and admit clients by end user, claim, header and path (issue
    12): invalid tokens 401, refused clients 403, before any listener or Route decides.
    https listeners may require TLS 1.2 or 1.3 (`minVersion`, issue 12) and choose their TLS
    1.2 `cipherSuites`, and clients speak at most 1.2 or 1.3 and offer some 1.2 suites: a
    handshake below the listener's minimum (the one the SNI chose), or a 1.2 one sharing no
    suite with it, is refused as the evaluator decides. Bounded: eight gateways, no shrinking
    (60 ran clean once by hand)."""
    protocol, listeners, routes, secured = generated
    providers, policy = secured_documents()
    edge = {**gateway("edge", listeners), **({"jwt": providers} if secured else {})}
    graph = linked(tmp_path_factory.mktemp("gateway"), [
        mesh(), *(service(f"v{n}") for n in (1, 2, 3)), edge, *routes, *([policy] if secured else [])],
        allowed=("MESH351", "MESH354", "MESH355"))
    requests = [Request(host, path, port=80, sni=host.split(":")[0] if protocol == "https" else None,
                        headers=credential_headers(credential) if secured else (),
                        forged_token=secured and credential == "forged", tls_version=version, tls_ciphers=ciphers)
                for host, path, credential, version, ciphers in sent]
    results = answers(graph, EDGE, requests, envoy_binary)
    assert [(r.host, r.path, problem) for r, (*_, problem) in zip(requests, results, strict=True)
            if problem is not None] == []


# Gateway API conformance HTTPRouteHTTPSListenerDetectMisdirectedRequests: (SNI, Host, status, backend)
MISDIRECTED_CASES = [
    ("example.org", "example.org", 200, "v1"), ("example.org", "second-example.org", 421, None),
    ("example.org", "unknown-example.org", 404, None),
    ("second-example.org", "second-example.org", 200, "v2"), ("second-example.org", "example.org", 421, None),
    ("second-example.org", "unknown-example.org", 421, None),
    ("third-example.wildcard.org", "third-example.wildcard.org", 200, "v3"),
    ("third-example.wildcard.org", "fith-example.wildcard.org", 200, "v3"),
    ("third-example.wildcard.org", "fourth-example.wildcard.org", 421, None),
    ("third-example.wildcard.org", "second-example.org", 421, None),
    ("third-example.wildcard.org", "unknown-example.org", 421, None),
    ("fourth-example.wildcard.org", "fourth-example.wildcard.org", 200, "v1"),
    ("fourth-example.wildcard.org", "fith-example.wildcard.org", 421, None),
    ("unknown-example.org", "example.org", 200, "v1"), ("unknown-example.org", "unknown-example.org", 404, None),
]


def test_a_host_another_https_listener_serves_is_misdirected_in_envoy(tmp_path: Path, envoy_binary: str) -> None:
    """Gateway API Listener.hostname (apis/v1/gateway_types.go): "To detect misdirected
    requests, Gateways SHOULD match the authority of the requests with all the SNI hostname(s)
    configured across all the Gateway Listeners on the same port and protocol: * If another
    Listener has an exact match or more specific wildcard entry, the Gateway SHOULD return a
    421. * If the current Listener (selected by SNI matching during ClientHello) does not match
    the Host: * If another Listener does match the Host, the Gateway SHOULD return a 421. * If
    no other Listener matches the Host, the Gateway MUST return a 404." The conformance test
    HTTPRouteHTTPSListenerDetectMisdirectedRequests's listeners (one without hostname, one
    exact, a wildcard and an exact name under it) and its cases: the evaluator decides each as
    the test expects and real Envoy answers as the evaluator decides."""
    tls = [{"mode": "terminate", "certificate": f"c{n}"} for n in range(4)]
    graph = linked(tmp_path, [
        mesh(), *(service(f"v{n}") for n in (1, 2, 3)),
        gateway("edge", [
            {"name": "https", "port": 443, "protocol": "https", "hosts": ["*"], "tls": tls[0]},
            {"name": "https-with-hostname", "port": 443, "protocol": "https", "hosts": ["second-example.org"],
             "tls": tls[1]},
            {"name": "https-with-wildcard-hostname", "port": 443, "protocol": "https", "hosts": ["*.wildcard.org"],
             "tls": tls[2]},
            {"name": "https-with-hostname-matching-wildcard", "port": 443, "protocol": "https",
             "hosts": ["fourth-example.wildcard.org"], "tls": tls[3]}]),
        route("first", [{"to": [{"service": "v1"}]}], gateway="edge", hosts=["example.org"]),
        route("second", [{"to": [{"service": "v2"}]}], gateway="edge", hosts=["second-example.org"]),
        route("third", [{"to": [{"service": "v3"}]}], gateway="edge", hosts=["*.wildcard.org"]),
        route("fourth", [{"to": [{"service": "v1"}]}], gateway="edge", hosts=["fourth-example.wildcard.org"]),
    ], allowed=("MESH351",))
    requests = [Request(host, "/detect-misdirected-requests", port=443, sni=sni) for sni, host, *_ in MISDIRECTED_CASES]
    results = answers(graph, EDGE, requests, envoy_binary)
    decided = [(d.status or (200 if d.action == "forward" else None),
                d.backends[0].service.name if d.action == "forward" else None) for d, *_ in results]
    assert decided == [(status, backend) for *_, status, backend in MISDIRECTED_CASES]
    assert [(r.sni, r.host, problem) for r, (*_, problem) in zip(requests, results, strict=True)
            if problem is not None] == []


def test_a_passthrough_listener_takes_no_rule_to_an_http_port(tmp_path: Path, envoy_binary: str) -> None:
    """docs/intents.md (Gateway): a `tls` passthrough listener takes the rules that match on
    `sni`, and by their Route's hosts the rules whose destinations take a byte stream; a rule to
    an HTTP port is never sent encrypted bytes. Gateway API: a TLS listener's
    `allowedRoutes.kinds` is TLSRoute ("TLS: The Listener Hostname MUST match the SNI"), and
    such a rule is an HTTPRoute there. Issue 11: a `*` passthrough listener took an https
    Route's host and forwarded the TLS bytes to the HTTP service."""
    graph = linked(tmp_path, [
        mesh(), service("web"), service("db", ports=[{"name": "tls", "port": 5432, "protocol": "tls"}]),
        gateway("edge", [
            {"name": "shop", "port": 443, "protocol": "https", "hosts": ["shop.example.com"],
             "tls": {"mode": "terminate", "certificate": "shop"}},
            {"name": "raw", "port": 8443, "protocol": "tls", "hosts": ["*"], "tls": {"mode": "passthrough"}}]),
        route("web", [{"to": [{"service": "web"}]}], gateway="edge", hosts=["shop.example.com"]),
        route("stream", [{"to": [{"service": "db"}]}], gateway="edge", hosts=["raw.example.com"]),
        route("named", [{"match": [{"sni": ["db.example.com"]}], "to": [{"service": "db"}]}], gateway="edge",
              hosts=["*.internal"]),
    ], allowed=("MESH351",))
    requests = [Request(name, "/", port=8443, sni=name) for name in ("shop.example.com", "raw.example.com",
                                                                      "db.example.com")]
    results = answers(graph, EDGE, requests, envoy_binary)
    assert [(d.action, [t.service.name for t in d.destinations]) for d, *_ in results] == [
        ("refused", []), ("forward", ["db"]), ("forward", ["db"])]
    assert [(r.sni, problem) for r, (*_, problem) in zip(requests, results, strict=True) if problem is not None] == []
