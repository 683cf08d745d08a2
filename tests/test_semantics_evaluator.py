"""The reference evaluator against the normative text of docs/intents.md ("Semantics") and the
specification clauses it adopts, quoted in each test."""

from __future__ import annotations

import pytest

from compiler.evaluate import Proxy, Request, evaluate, host_matches, rewritten_path, segment_prefix_matches
from compiler.graph import Target
from compiler.model import Match, PathMatch
from tests.semantics import gateway, key, linked, mesh, route, service

CALLER = Proxy(service=key("web"))


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """web calls reviews (versions v1 v2 v3, a Route) and ratings (no Route)."""
    rules = [
        {"match": [{"headers": {"End-User": {"exact": "jason"}}}], "to": [{"version": "v2"}]},
        {"match": [{"path": {"prefix": "/api"}, "method": "GET"}],
         "to": [{"version": "v1", "weight": 80}, {"version": "v2", "weight": 20}], "rewrite": {"prefix": "/"},
         "timeout": "3s", "mirror": {"version": "v3", "percent": 5}},
        {"match": [{"path": {"exact": "/exact"}}, {"path": {"regex": "/v2.*"}}], "to": [{"version": "v2"}]},
        {"match": [{"query": {"debug": {"present": True}}}], "fault": {"abort": {"status": 418}},
         "to": [{"version": "v1"}]},
        {"match": [{"path": {"prefix": "/old"}}], "redirect": {"host": "new.example.com", "path": "/new", "status": 308}},
        {"match": [{"path": {"prefix": "/v1"}}], "to": [{"version": "v1"}]},
    ]
    return linked(tmp_path_factory.mktemp("shop"), [
        mesh(),
        service("web", calls=["reviews", "ratings"]),
        service("reviews", versions=("v1", "v2", "v3"), ports=[{"name": "http", "port": 9080, "protocol": "http"}]),
        service("ratings", ports=[{"name": "http", "port": 9080, "protocol": "http"},
                                  {"name": "admin", "port": 9090, "protocol": "http"}]),
        route("reviews", rules, service="reviews"),
    ])


def ask(graph, path: str = "/", host: str = "reviews", **fields):
    return evaluate(graph, CALLER, Request(host=host, path=path, **fields))


@pytest.mark.parametrize(("prefix", "path", "expected"), [
    ("/abc", "/abc", True), ("/abc", "/abc/", True), ("/abc", "/abc/def", True), ("/abc", "/abcd", False),
    ("/abc/", "/abc", True), ("/abc/", "/abcd", False), ("/", "/anything", True), ("/abc", "/ABC", False),
])
def test_path_prefix_is_a_path_segment_prefix(prefix: str, path: str, expected: bool) -> None:
    """Gateway API apis/v1/httproute_types.go, PathMatchPathPrefix: "Matching is case-sensitive
    and done on a path element by element basis ... When specified, a trailing `/` is ignored.
    For example, the paths `/abc`, `/abc/`, and `/abc/def` would all match the prefix `/abc`,
    but the path `/abcd` would not." Envoy route_components.proto, path_separated_prefix: the
    same for `/api/dev` against `/api/developer`."""
    assert segment_prefix_matches(prefix, path) is expected


def test_prefix_match_does_not_take_a_longer_path_element(shop) -> None:
    assert ask(shop, "/v1/x").rule.index == 5
    assert ask(shop, "/v1").rule.index == 5
    assert ask(shop, "/v1example").action == "not-found"  # `/v1` is no character prefix


def test_a_character_prefix_is_written_as_a_regex_over_the_whole_path(shop) -> None:
    decision = ask(shop, "/v2example")
    assert (decision.rule.index, decision.backends) == (2, (Target(key("reviews"), "v2", 9080, 100),))
    assert ask(shop, "/x/v2").action == "not-found"  # the regex must match the whole path


def test_exact_path_ignores_the_query_string_and_nothing_else(shop) -> None:
    """Gateway API PathMatchExact: "an exact path match on `/abc` will only match requests to
    `/abc`, NOT `/abc/`, `/Abc`, or `/abcd`"."""
    assert ask(shop, "/exact?x=1").rule.index == 2
    assert ask(shop, "/exact/").action == "not-found"


def test_rules_are_tried_in_written_order(tmp_path) -> None:
    """docs/intents.md: first match in written order, on every target (not Gateway API's
    precedence, where the exact `/x` would win over the earlier prefix `/`)."""
    graph = linked(tmp_path, [
        mesh(), service("web", calls=["api"]), service("api", versions=("a", "b")),
        route("api", [{"match": [{"path": {"prefix": "/"}}], "to": [{"version": "a"}]},
                      {"match": [{"path": {"exact": "/x"}}], "to": [{"version": "b"}]}], service="api"),
    ], allowed=("MESH301",))
    decision = evaluate(graph, CALLER, Request("api", "/x"))
    assert (decision.rule.index, decision.backends[0].version) == (0, "a")


def test_header_names_compare_case_insensitively_and_values_exactly(shop) -> None:
    assert ask(shop, headers=(("end-user", "jason"),)).rule.index == 0
    assert ask(shop, headers=(("END-USER", "Jason"),)).action == "not-found"


def test_method_and_prefix_are_anded_and_weights_are_kept(shop) -> None:
    decision = ask(shop, "/api/ratings?id=7")
    assert decision.rule.index == 1
    assert [(t.version, t.weight) for t in decision.destinations] == [("v1", 80), ("v2", 20)]
    assert (decision.timeout, [(t.version, p) for t, p in decision.mirrors]) == ("3s", [("v3", 5)])
    assert ask(shop, "/api/ratings", method="POST").action == "not-found"


def test_rule_location_points_at_the_rule(shop) -> None:
    location = ask(shop, "/v1").rule.location
    assert location.file == "04-route.yaml" and location.line > 1


@pytest.mark.parametrize(("path", "prefix", "replacement", "expected"), [
    ("/foo/bar", "/foo", "/xyz", "/xyz/bar"), ("/foo/bar", "/foo", "/xyz/", "/xyz/bar"),
    ("/foo/bar", "/foo/", "/xyz", "/xyz/bar"), ("/foo/bar", "/foo/", "/xyz/", "/xyz/bar"),
    ("/foo", "/foo", "/xyz", "/xyz"), ("/foo/", "/foo", "/xyz", "/xyz/"),
    ("/foo/", "/foo", "/", "/"), ("/foo", "/foo", "/", "/"),
])
def test_rewrite_replaces_the_matched_prefix_element_by_element(path, prefix, replacement, expected) -> None:
    """Gateway API HTTPPathModifier.ReplacePrefixMatch, the table in httproute_types.go
    (Request Path | Prefix Match | Replace Prefix | Modified Path), every row with a non-empty
    replacement (meshc's rewrite prefix starts with `/`)."""
    entry = Match(path=PathMatch(prefix=prefix))
    assert rewritten_path(replacement, entry, path) == expected


def test_rewrite_to_root_after_a_prefix_gives_a_single_slash(shop) -> None:
    """The issue's case: `rewrite: {prefix: /}` after `/api` turns `/api/foo` into `/foo`, not `//foo`."""
    assert ask(shop, "/api/foo?x=1").path == "/foo?x=1"
    assert ask(shop, "/api").path == "/"


def test_rewrite_after_exact_or_no_path_match() -> None:
    assert rewritten_path("/new", Match(path=PathMatch(exact="/old")), "/old") == "/new"
    assert rewritten_path("/api", None, "/a") == "/api/a"
    assert rewritten_path("/", None, "/a") == "/a"


def test_redirect_location_keeps_the_query(shop) -> None:
    """The port is the one the request arrived on, reviews' 9080 (Gateway API
    HTTPRequestRedirectFilter.port: "If redirect scheme is empty, the redirect port MUST be the
    Gateway Listener port")."""
    decision = ask(shop, "/old/x?q=1")
    assert (decision.action, decision.status, decision.location) == (
        "redirect", 308, "http://new.example.com:9080/new?q=1")


def test_full_abort_answers_the_status(shop) -> None:
    decision = ask(shop, "/q?debug")
    assert (decision.action, decision.status, decision.rule.index) == ("abort", 418, 3)


def test_sidecar_hosts_and_ports(shop) -> None:
    assert ask(shop, "/", host="ratings").backends == (Target(key("ratings"), None, 9080, 100),)
    assert ask(shop, "/", host="ratings.shop:9090").backends == (Target(key("ratings"), None, 9090, 100),)
    assert ask(shop, "/", host="Ratings.Shop").action == "forward"
    assert ask(shop, "/", host="ratings:1234").action == "not-found"
    assert ask(shop, "/", host="web").action == "not-found"  # not called


@pytest.mark.parametrize(("pattern", "name", "expected"), [
    ("*.example.com", "test.example.com", True), ("*.example.com", "foo.test.example.com", True),
    ("*.example.com", "example.com", False), ("*", "anything.at.all", True), ("a.com", "A.COM", True),
])
def test_wildcard_hosts(pattern: str, name: str, expected: bool) -> None:
    """Gateway API HTTPRouteSpec.hostnames: "a match for `*.example.com` would match both
    `test.example.com`, and `foo.test.example.com`, but not `example.com`"."""
    assert host_matches(pattern, name) is expected


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    """Gateway API conformance HTTPRouteHostnameIntersection / ListenerHostnameMatching shapes."""
    return linked(tmp_path_factory.mktemp("edge"), [
        mesh(),
        *(service(n) for n in ("v1", "v2", "v3", "v4")),
        gateway("edge", [
            {"name": "specific", "port": 80, "protocol": "http", "hosts": ["very.specific.com"]},
            {"name": "wild", "port": 80, "protocol": "http", "hosts": ["*.wildcard.io"]},
            {"name": "alt", "port": 8080, "protocol": "http", "hosts": ["*"]},
            {"name": "redirect", "port": 81, "protocol": "http", "hosts": ["*"], "httpsRedirect": True},
            {"name": "tls-a", "port": 443, "protocol": "https", "hosts": ["a.example.com"],
             "tls": {"mode": "terminate", "certificate": "a"}},
        ]),
        route("specific", [{"match": [{"path": {"prefix": "/s1"}}], "to": [{"service": "v1"}]}],
              gateway="edge", hosts=["very.specific.com"]),
        route("wild", [{"match": [{"port": 8080}], "to": [{"service": "v4"}]}, {"to": [{"service": "v2"}]}],
              gateway="edge", hosts=["*.wildcard.io"]),
        route("exact-under-wild", [{"to": [{"service": "v3"}]}], gateway="edge", hosts=["foo.wildcard.io"]),
        route("tls", [{"to": [{"service": "v1"}]}], gateway="edge", hosts=["a.example.com"]),
    ], allowed=("MESH350",))


def at_edge(graph, host: str, path: str = "/", port: int = 80, **fields):
    return evaluate(graph, Proxy(gateway=key("edge")), Request(host=host, path=path, port=port, **fields))


def test_gateway_ignores_the_port_in_host_and_forwards_it_unchanged(edge) -> None:
    """Gateway API HTTPRouteSpec.hostnames: "Implementations MUST ignore any port value
    specified in the HTTP Host header while performing a match and (absent of any applicable
    header modification configuration) MUST forward this header unmodified to the backend."
    (conformance tests/httproute-hostname-intersection: `very.specific.com:1234` /s1 -> v1)."""
    decision = at_edge(edge, "very.specific.com:1234", "/s1")
    assert (decision.backends[0].service, decision.host) == (key("v1"), "very.specific.com:1234")


def test_most_specific_host_wins_without_fall_through(edge) -> None:
    """Gateway API HTTPRouteSpec.hostnames: with intersecting hostnames "precedence must be given
    to rules from the HTTPRoute with the largest number of: Characters in a matching
    non-wildcard hostname"; gateway_types.go: "Exact matches MUST be processed before wildcard
    matches"."""
    assert at_edge(edge, "foo.wildcard.io").backends[0].service == key("v3")
    assert at_edge(edge, "bar.wildcard.io").backends[0].service == key("v2")
    assert at_edge(edge, "foo.bar.wildcard.io").backends[0].service == key("v2")
    assert at_edge(edge, "wildcard.io").status == 404
    assert at_edge(edge, "very.specific.com", "/other").status == 404  # no fall-through to `*`


def test_match_port_selects_the_listener_port(edge) -> None:
    assert at_edge(edge, "x.wildcard.io", port=8080).backends[0].service == key("v4")
    assert at_edge(edge, "x.wildcard.io", port=80).backends[0].service == key("v2")


def test_https_redirect_and_unknown_sni(edge) -> None:
    """gateway_types.go: "If traffic to a Gateway does not match any Listener's hostname ... the
    request MUST be rejected ... HTTP returns a 404 status code"."""
    redirect = at_edge(edge, "shop.example.com:81", "/a?b=1", port=81)
    assert (redirect.status, redirect.location) == (301, "https://shop.example.com/a?b=1")
    assert at_edge(edge, "a.example.com", port=443, sni="a.example.com").backends[0].service == key("v1")
    assert at_edge(edge, "b.example.com", port=443, sni="b.example.com").status == 404
    assert at_edge(edge, "a.example.com", port=9999).action == "refused"
