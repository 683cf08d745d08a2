"""End-user authentication (issue 12): JWT providers on a Gateway and a Service, meaning
docs/intents.md's text (End-user authentication) in the evaluator, through real Envoy with
tokens minted here (ES256, inline JWKS), in Istio's RequestAuthentication on both kubernetes
flavours (schema-valid, read back), and validated by `envoy --mode validate` with a remote JWKS.

Sources: Istio RequestAuthentication ("It will reject a request if the request contains
invalid authentication information ... A request that does not contain any authentication
credentials will be accepted but will not have any authenticated identity"); pilot's
convertToEnvoyJwtConfig (requires_any [provider, allow_missing], bypass_cors_preflight);
Envoy jwt_authn (`allow_missing` "should only allow requests without any JWT", so a token of
an unknown issuer is refused: envoyproxy/envoy#15194; default locations "Authorization:
Bearer" and `access_token`; `forward`: "If false, the JWT is removed in the request after a
success verification"; clock_skew_seconds "default is 60 seconds").
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from compiler.build import compile_mesh
from compiler.diagnostics import Report
from compiler.evaluate import Proxy, Request, authenticate, evaluate
from compiler.serialize import to_json
from targets.envoylib import EnvoyRunner, disagreement, gateway_bootstrap, sidecar_bootstrap
from tests.conftest import require_envoy
from tests.envoy_validate import assert_envoy_accepts
from tests.jwt_tokens import Issuer
from tests.k8s_schemas import validation_errors
from tests.semantics import gateway, key, linked, mesh, route, service, write
from tests.test_semantics_istio_security import documents, k8s, of_kind

EDGE = Proxy(gateway=key("edge"))
SHOP = Issuer("https://issuer.example/")
PARTNER = Issuer("partner@example.test", kid="partner")
STRANGER = Issuer("https://stranger.example/")
IMPOSTOR = Issuer(SHOP.iss)  # the shop's issuer, another key: a forged signature


def providers() -> list[dict]:
    return [{"name": "shop", "issuer": SHOP.iss, "audiences": ["shop"], "jwks": {"inline": SHOP.jwks}},
            {"name": "partner", "issuer": PARTNER.iss, "jwks": {"inline": PARTNER.jwks},
             "from": {"headers": [{"name": "x-partner-token"}], "params": ["partner_token"]}, "forward": True}]


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    return linked(tmp_path_factory.mktemp("jwt-edge"), [
        mesh(), service("web"),
        {**gateway("edge", [{"name": "plain", "port": 80, "protocol": "http", "hosts": ["*"]}]), "jwt": providers()},
        route("edge", [{"to": [{"service": "web"}]}], gateway="edge", hosts=["*"])])


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def cases() -> dict[str, tuple[Request, int]]:
    """Requests and the status the semantics give them (200: forwarded)."""
    now = int(time.time())
    return {
        "no token": (Request("a.example.test", port=80, path="/"), 200),
        "valid": (Request("a.example.test", port=80, path="/", headers=bearer(SHOP.token(aud="shop"))), 200),
        "valid, several audiences": (Request("a.example.test", port=80, path="/", headers=bearer(SHOP.token(aud=["x", "shop"]))), 200),
        "valid, as access_token": (Request("a.example.test", port=80,
                                           path=f"/?a=1&access_token={SHOP.token(aud='shop')}&b=2"), 200),
        "expired": (Request("a.example.test", port=80, path="/", headers=bearer(SHOP.token(aud="shop", lifetime=-3600))), 401),
        "not valid yet": (Request("a.example.test", port=80, path="/", headers=bearer(SHOP.sign(
            {"iss": SHOP.iss, "sub": "alice", "aud": "shop", "nbf": now + 3600, "exp": now + 7200}))), 401),
        "another audience": (Request("a.example.test", port=80, path="/", headers=bearer(SHOP.token(aud="admin"))), 403),
        "no audience": (Request("a.example.test", port=80, path="/", headers=bearer(SHOP.token())), 403),
        "unknown issuer": (Request("a.example.test", port=80, path="/", headers=bearer(STRANGER.token(aud="shop"))), 401),
        "forged": (Request("a.example.test", port=80, path="/", headers=bearer(IMPOSTOR.token(aud="shop")), forged_token=True), 401),
        "not a JWT": (Request("a.example.test", port=80, path="/", headers=bearer("not-a-token")), 401),
        "partner, in its header": (Request("a.example.test", port=80, path="/", headers=(("x-partner-token", PARTNER.token()),)),
                                   200),
        "partner, in its parameter": (Request("a.example.test", port=80, path=f"/?partner_token={PARTNER.token()}"), 200),
        "partner, as a bearer": (Request("a.example.test", port=80, path="/", headers=bearer(PARTNER.token())), 401),
        "shop, in the partner's header": (Request("a.example.test", port=80, path="/",
                                                  headers=(("x-partner-token", SHOP.token(aud="shop")),)), 401),
        "a CORS preflight": (Request("a.example.test", port=80, path="/", method="OPTIONS", headers=(
            ("origin", "https://a.example.test"), ("access-control-request-method", "GET"),
            *bearer("not-a-token"))), 200),
    }


@pytest.mark.parametrize("name", sorted(cases()))
def test_the_evaluator_authenticates_as_written(edge, name) -> None:
    request, status = cases()[name]
    decision = evaluate(edge, EDGE, request)
    assert (200 if decision.action == "forward" else decision.status) == status, decision.reason


def test_a_valid_token_is_the_end_user() -> None:
    from compiler.model import JwtProvider

    [shop, _] = [JwtProvider.model_validate(p) for p in providers()]
    checked = authenticate([shop], Request("a", "/", headers=bearer(SHOP.token("bob", aud="shop", groups=["ops"]))))
    assert checked.user is not None and not checked.refused
    assert (checked.user.principal, checked.user.claims["groups"], checked.removed) == \
        (f"{SHOP.iss}/bob", ["ops"], ("header", "authorization", "Bearer "))


def test_envoy_authenticates_as_the_evaluator_does(edge, tmp_path: Path) -> None:
    """Every case through real Envoy's gateway: 401 where the semantics refuse, forwarded where
    they pass, and the backend receives the shop's Authorization header removed (forward:
    false) and the partner's header kept (forward: true), as the evaluator says."""
    binary = require_envoy()
    assert_envoy_accepts({"edge.json": to_json(gateway_bootstrap(edge, edge.gateways[key("edge")], Report(),
                                                                  "127.0.0.1"))}, tmp_path)
    written = cases()
    with EnvoyRunner(edge, binary) as runner:
        replies = {name: runner.send(EDGE, Request(r.host, r.path, r.method, r.headers, port=80))
                   for name, (r, _) in written.items()}
    seen = {name: reply.status if reply is not None else None for name, reply in replies.items()}
    assert seen == {name: status for name, (_, status) in written.items()}
    problems = {name: disagreement(evaluate(edge, EDGE, request), replies[name])
                for name, (request, _) in written.items()}
    assert {name: problem for name, problem in problems.items() if problem} == {}
    assert "authorization" not in dict(replies["valid"].headers)
    assert "x-partner-token" in dict(replies["partner, in its header"].headers)


def test_a_remote_jwks_gets_a_cluster_envoy_accepts(tmp_path: Path) -> None:
    """jwks.uri: Envoy's remote_jwks needs a cluster of the JWKS host (`jwks|<host>|<port>`),
    TLS for https; the sidecar's bootstrap with it passes `envoy --mode validate`."""
    remote = {"name": "idp", "issuer": "https://idp.example.com/", "jwks": {
        "uri": "https://idp.example.com:8443/.well-known/jwks.json"}}
    graph = linked(tmp_path, [mesh(), {**service("api"), "jwt": [remote]}])
    bootstrap = sidecar_bootstrap(graph, graph.services[key("api")], Report(), "127.0.0.1")
    assert_envoy_accepts({"api.json": to_json(bootstrap)}, tmp_path / "validate")
    [cluster] = [c for c in bootstrap["static_resources"]["clusters"] if c["name"].startswith("jwks|")]
    assert cluster["name"] == "jwks|idp.example.com|8443"
    assert cluster["transport_socket"]["typed_config"]["sni"] == "idp.example.com"
    [listener] = [entry for entry in bootstrap["static_resources"]["listeners"] if entry["name"] == "inbound|8080"]
    filters = listener["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]
    [jwt] = [f for f in filters if f["name"] == "envoy.filters.http.jwt_authn"]
    provider = jwt["typed_config"]["providers"]["idp"]
    assert provider["remote_jwks"]["http_uri"]["cluster"] == cluster["name"]
    assert [f["name"] for f in filters].index("envoy.filters.http.jwt_authn") == 0  # before RBAC


@pytest.mark.parametrize(("written", "words"), [
    ({"name": "a", "issuer": "i", "jwks": {}}, "exactly one of uri, inline"),
    ({"name": "a", "issuer": "i", "jwks": {"inline": "{}"}}, "JSON Web Key Set"),
    ({"name": "a", "issuer": "i", "jwks": {"inline": "not json"}}, "not JSON"),
    ({"name": "a", "issuer": "i", "jwks": {"uri": "ftp://x"}}, "should match pattern"),
    ({"name": "a", "issuer": "i", "jwks": {"inline": SHOP.jwks}, "from": {}}, "headers or params"),
])
def test_a_provider_that_cannot_verify_anything_is_a_located_error(tmp_path: Path, written, words) -> None:
    root = write(tmp_path, [mesh(), {**service("api"), "jwt": [written]}])
    errors = [d for d in compile_mesh(root).report.sorted() if d.severity == "error"]
    assert errors and errors[0].code.code.startswith("MESH1") and errors[0].location.line > 1
    assert any(words in d.message for d in errors), [d.message for d in errors]


def test_two_providers_of_one_issuer_are_an_error(tmp_path: Path) -> None:
    twice = [providers()[0], {**providers()[0], "name": "again"}]
    root = write(tmp_path, [mesh(), {**service("api"), "jwt": twice}])
    assert any("jwt issuer" in d.message for d in compile_mesh(root).report.sorted() if d.severity == "error")


# ---------------------------------------------------------------------------------------------
# Kubernetes: RequestAuthentication on both flavours


def istio_token_rule(rules: list[dict], request: Request) -> tuple[str, dict] | None:
    """Which jwtRule reads the request's token, read from RequestAuthentication's reference:
    `fromHeaders` (`name`, `prefix`) and `fromParams`; without either, "Authorization: Bearer"
    then `access_token` (JWTRule: "If no explicit location is specified the following default
    locations are tried in order")."""
    for rule in rules:
        headers = rule.get("fromHeaders")
        params = rule.get("fromParams")
        if headers is None and params is None:
            headers, params = [{"name": "Authorization", "prefix": "Bearer "}], ["access_token"]
        for header in headers or []:
            value = request.header(header["name"])
            if value is not None and value.startswith(header.get("prefix", "")):
                return value[len(header.get("prefix", "")):], rule
        for param in params or []:
            if request.query(param) is not None:
                return request.query(param), rule
    return None


@pytest.mark.parametrize("flavor", ["istio", "gateway-api"])
def test_request_authentication_reads_tokens_where_the_evaluator_does(tmp_path: Path, flavor) -> None:
    graph = linked(tmp_path, [
        mesh(k8s(flavor)), {**service("api", platform="k8s"), "jwt": providers()},
        {**gateway("edge", [{"name": "plain", "port": 80, "protocol": "http", "hosts": ["*"]}], platform="k8s"),
         "jwt": providers()[:1]},
        route("edge", [{"to": [{"service": "api"}]}], gateway="edge", hosts=["*"])])
    written = of_kind(documents(graph), "RequestAuthentication")
    assert [e for d in written for e in validation_errors(d)] == []
    by_name = {d["metadata"]["name"]: d["spec"] for d in written}
    assert by_name["api-jwt"]["selector"] == {"matchLabels": {"app": "api"}}
    edge_target = by_name["edge-jwt"].get("targetRefs") or by_name["edge-jwt"]["selector"]
    assert edge_target == ([{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "edge"}]
                           if flavor == "gateway-api" else {"matchLabels": {"app": "edge"}})
    rules = by_name["api-jwt"]["jwtRules"]
    assert [(r["issuer"], r.get("audiences"), r["jwks"], r.get("forwardOriginalToken", False)) for r in rules] == [
        (SHOP.iss, ["shop"], SHOP.jwks, False), (PARTNER.iss, None, PARTNER.jwks, True)]
    from compiler.evaluate import token_locations, token_payload
    from compiler.model import JwtProvider

    models = [JwtProvider.model_validate(p) for p in providers()]
    for name, (request, _) in cases().items():
        read = istio_token_rule(rules, request)
        checked = authenticate(models, request)
        found = [(p, loc) for p in models for loc in token_locations(p)]
        if read is None:
            assert not checked.refused and checked.user is None, name
            continue
        token, rule = read
        payload = token_payload(token)
        istio_refuses = payload is None or payload.get("iss") != rule["issuer"] or request.forged_token
        if not istio_refuses and rule.get("audiences"):
            aud = payload.get("aud")
            aud = [aud] if isinstance(aud, str) else aud or []
            istio_refuses = not set(aud) & set(rule["audiences"])
        if not istio_refuses:
            istio_refuses = payload.get("exp", time.time() + 120) + 60 <= time.time() or \
                payload.get("nbf", 0) - 60 > time.time()
        if request.method == "OPTIONS" and request.header("origin"):
            istio_refuses = False  # pilot sets bypass_cors_preflight
        assert istio_refuses == checked.refused, (name, found)


# ---------------------------------------------------------------------------------------------
# `meshc test`: a RouteTest's `token`, made by meshc, checked by the evaluator and by real Envoy

TOKEN_CASES = [
    ("a valid token", {"issuer": SHOP.iss, "subject": "alice", "audiences": ["shop"]}, {"status": 200}),
    ("a bad signature", {"issuer": SHOP.iss, "subject": "alice", "audiences": ["shop"], "signature": "invalid"},
     {"status": 401}),
    ("an expired token", {"issuer": SHOP.iss, "audiences": ["shop"], "expired": True}, {"status": 401}),
    ("another audience", {"issuer": SHOP.iss, "audiences": ["admin"]}, {"status": 403}),
    ("an unknown issuer", {"issuer": STRANGER.iss, "audiences": ["shop"]}, {"status": 401}),
    ("a banned end user", {"issuer": SHOP.iss, "subject": "mallory", "audiences": ["shop"], "claims": {"role": "banned"}},
     {"status": 403}),
    ("the partner's token in its own header", {"issuer": PARTNER.iss, "subject": "acme"},
     {"status": 200, "headers": {"x-partner-token": "present"}}),
    ("the partner's bad signature", {"issuer": PARTNER.iss, "signature": "invalid"}, {"status": 401}),
]


def token_route_test(cases: list[tuple[str, dict, dict]]) -> dict:
    return {"apiVersion": "meshc/v1", "kind": "RouteTest", "name": "tokens", "gateway": "edge",
            "cases": [{"name": name, "request": {"host": "a.example.test", "path": "/", "port": 80, "token": token},
                       "expect": {key: value for key, value in expect.items() if key == "status"}}
                      for name, token, expect in cases]}


def token_mesh(root: Path, cases: list[tuple[str, dict, dict]]) -> Path:
    banned = {"apiVersion": "meshc/v1", "kind": "AccessPolicy", "name": "edge-clients", "gateway": "edge",
              "allow": [{"requestPrincipals": ["*"]}, {"from": [{"unauthenticated": True}]}],
              "deny": [{"claims": {"role": ["banned"]}}]}
    return write(root, [mesh(), service("web"),
                        {**gateway("edge", [{"name": "plain", "port": 80, "protocol": "http", "hosts": ["*"]}]),
                         "jwt": providers()},
                        route("edge", [{"to": [{"service": "web"}]}], gateway="edge", hosts=["*"]), banned,
                        token_route_test(cases)])


def test_route_tests_make_tokens_the_evaluator_and_envoy_check(tmp_path: Path) -> None:
    """A case's `token` is a JWT meshc makes and sends where the issuer's provider reads tokens
    (the partner's in `x-partner-token`): the evaluator reads its claims and takes `signature:
    invalid` as a signature that does not verify; `meshc test --envoy` signs it with a key it adds
    to every provider's keys (an invalid one: that signature altered), so real Envoy verifies it."""
    from click.testing import CliRunner

    from compiler.cli import main

    require_envoy()
    root = token_mesh(tmp_path, TOKEN_CASES)
    for extra in ([], ["--envoy"]):
        result = CliRunner().invoke(main, ["test", str(root), *extra])
        assert result.exit_code == 0, result.output
        assert f"{len(TOKEN_CASES)} route test case(s), 0 failed" in result.stderr
    assert f"{len(TOKEN_CASES)} through Envoy" in result.stderr


def test_a_token_case_expecting_the_wrong_answer_fails(tmp_path: Path) -> None:
    """The same cases with every expected status turned around fail, case by case (MESH501):
    the statuses above are checked, not taken."""
    from click.testing import CliRunner

    from compiler.cli import main

    flipped = [(name, token, {"status": 401 if expect["status"] == 200 else 200}) for name, token, expect in TOKEN_CASES]
    result = CliRunner().invoke(main, ["test", str(token_mesh(tmp_path, flipped)), "--format", "json"])
    assert result.exit_code != 0
    assert f"{len(TOKEN_CASES)} failed" in result.stderr


def test_a_token_claim_that_is_the_tokens_own_is_a_located_error(tmp_path: Path) -> None:
    root = token_mesh(tmp_path, [("iss in claims", {"issuer": SHOP.iss, "claims": {"iss": "x"}}, {"status": 200})])
    [error] = [d for d in compile_mesh(root).report.sorted() if d.severity == "error"]
    assert "are the token's own" in error.message and error.location.file.endswith("routetest.yaml")
