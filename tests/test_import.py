"""`meshc import` on Istio's own samples (tests/fixtures/istio-samples, see PROVENANCE) and on
hostile input: what is imported means what it meant, what is not is reported where it stands."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.build import compile_mesh
from compiler.cli import main
from compiler.diagnostics import Report
from compiler.evaluate import Proxy, Request, evaluate, rule_decision
from compiler.graph import Key
from compiler.importer import import_texts, read_inputs, render_intents
from compiler.yamlload import load_documents
from tests.istio_reference import Outcome
from tests.istio_reference import decide as istio_decide
from tests.jwt_tokens import Issuer

SAMPLES = Path(__file__).parent / "fixtures" / "istio-samples"
runner = CliRunner()


def _import(tmp_path: Path, *inputs: str, expect_exit: int = 0) -> tuple[Path, str]:
    out = tmp_path / "mesh"
    result = runner.invoke(main, ["import", *(str(SAMPLES / i) for i in inputs), "-o", str(out)])
    assert result.exit_code == expect_exit, result.output
    assert "Traceback" not in result.output
    return out, result.output


def _document(root: Path, relative: str) -> dict:
    [document] = [d.data for d in load_documents((root / relative).read_text())]
    return document


def _clean(root: Path) -> None:
    compiled = compile_mesh(root)
    problems = [f"{d.code} {d.location}: {d.message}" for d in compiled.report.sorted() if d.severity != "info"]
    assert compiled.graph is not None and problems == []


def test_bookinfo_imports_into_a_mesh_that_checks_and_builds_for_istio(tmp_path: Path) -> None:
    root, output = _import(tmp_path, "bookinfo")
    _clean(root)
    reviews = _document(root, "services/reviews.yaml")
    assert reviews["ports"] == [{"name": "http", "port": 9080, "protocol": "http"}]
    assert reviews["versions"] == {v: {"labels": {"version": v}} for v in ("v1", "v2", "v3")}
    assert _document(root, "routes/reviews.yaml")["rules"] == [
        {"match": [{"headers": {"end-user": {"exact": "jason"}}}], "to": [{"version": "v2"}]},
        {"to": [{"version": "v3"}]},
    ]
    assert _document(root, "routes/ratings.yaml")["rules"][0]["fault"] == {"delay": {"fixed": "7s", "percent": 100.0}}
    assert _document(root, "gateways/bookinfo-gateway.yaml")["listeners"] == [
        {"name": "http", "port": 8080, "protocol": "http", "hosts": ["*"]}]
    ingress = _document(root, "routes/bookinfo.yaml")
    assert ingress["gateway"] == "bookinfo-gateway" and ingress["hosts"] == ["*"]
    assert ingress["rules"][0]["to"] == [{"service": "productpage", "port": 9080}]
    mesh = _document(root, "mesh.yaml")
    assert mesh["mtls"] == "PERMISSIVE" and mesh["authorization"] == "allow"  # Istio's defaults
    # the samples' Services and ServiceAccounts stay theirs
    assert mesh["platforms"] == [{"name": "cluster", "kind": "kubernetes", "flavor": "istio", "owns": {"kinds": []}}]
    # each file names what it came from, file and line
    text = (root / "routes/reviews.yaml").read_text()
    assert text.startswith("# imported from VirtualService default/reviews (")
    assert "virtual-service-reviews-jason-v2-v3.yaml:1)" in text.splitlines()[0]
    # the Deployments' pods run as bookinfo-<service>: that is each Service's account, and the
    # ServiceAccount objects are those accounts; nothing of bookinfo.yaml is left unsaid
    assert {name: _document(root, f"services/{name}.yaml")["serviceAccount"]
            for name in ("details", "ratings", "reviews", "productpage")} == {
        name: f"bookinfo-{name}" for name in ("details", "ratings", "reviews", "productpage")}
    assert "warning[MESH06" not in output
    build = runner.invoke(main, ["build", str(root), "-o", str(tmp_path / "out"), "-t", "kubernetes"])
    assert build.exit_code == 0, build.output


def test_traffic_split_and_abort(tmp_path: Path) -> None:
    root, _ = _import(tmp_path, "bookinfo/bookinfo.yaml", "bookinfo/destination-rule-all.yaml", "bookinfo-split")
    _clean(root)
    assert _document(root, "routes/reviews.yaml")["rules"] == [
        {"to": [{"version": "v1", "weight": 80}, {"version": "v2", "weight": 20}]}]
    assert _document(root, "routes/ratings.yaml")["rules"][0]["fault"] == {"abort": {"status": 500, "percent": 100.0}}


def test_service_entry_with_tls_origination(tmp_path: Path) -> None:
    root, output = _import(tmp_path, "egress")
    _clean(root)
    external = _document(root, "external/googleapis.yaml")
    assert external["hosts"] == ["www.googleapis.com"]
    assert external["ports"] == [{"name": "http", "port": 80, "protocol": "http"},
                                 {"name": "https", "port": 443, "protocol": "tls"}]
    assert external["tls"] == {"originate": True}
    # the port-rewriting VirtualService routes within the external host: reported, not imported
    assert "egress-rule-google-apis.yaml:23:5: warning[MESH060]: VirtualService default/rewrite-port-for-googleapis" \
        in output


def test_gateway_api_gateway_and_gamma_route(tmp_path: Path) -> None:
    root, output = _import(tmp_path, "gateway-api", "bookinfo/bookinfo.yaml")
    _clean(root)
    assert _document(root, "mesh.yaml")["platforms"][0]["flavor"] == "istio"
    assert _document(root, "routes/bookinfo.yaml")["rules"][0]["to"] == [{"service": "productpage", "port": 9080}]
    assert _document(root, "routes/reviews.yaml") | {} == {
        "apiVersion": "meshc/v1", "kind": "Route", "name": "reviews", "service": "reviews",
        "rules": [{"to": [{"service": "reviews-v1", "port": 9080, "weight": 90},
                          {"service": "reviews-v2", "port": 9080, "weight": 10}]}]}
    assert "route-reviews-90-10.yaml:10:5: warning[MESH060]: HTTPRoute default/reviews: spec.parentRefs[0].port" \
        in output


def test_security_objects(tmp_path: Path) -> None:
    root, output = _import(tmp_path, "security")
    policy = _document(root, "access/authorization-policy.yaml")
    assert policy["service"] == "httpbin"
    assert policy["allow"] == [{"from": [{"namespace": "test"}], "methods": ["GET", "POST"], "paths": ["/info*", "/data"]}]
    assert _document(root, "services/httpbin.yaml")["mtls"] == "PERMISSIVE"
    for expected in (
        "security-v1-AuthorizationPolicy.yaml:13:20: warning[MESH063]",  # sa/sleep: not in the input
        "security-v1-AuthorizationPolicy.yaml:23:4: warning[MESH060]",  # `when`
        "security-v1-AuthorizationPolicy.yaml:9:6: warning[MESH060]",  # the version label of the selector
        "security-v1-PeerAuthentication.yaml:12:3: warning[MESH060]",  # portLevelMtls
        "security-v1-RequestAuthentication.yaml:11:5: warning[MESH060]",  # no jwksUri nor jwks: OIDC discovery
    ):
        assert expected in output


def test_fields_without_an_equivalent_are_reported_at_their_key(tmp_path: Path) -> None:
    (tmp_path / "in.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  ports: [{name: http, port: 80}]\n---\n"
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: web}\nspec:\n  hosts: [web]\n"
        "  http:\n  - match:\n    - sourceLabels: {app: a}\n    corsPolicy: {allowOrigins: [{exact: x}]}\n"
        "    route:\n    - destination: {host: web}\n      headers: {request: {set: {x: '%HOSTNAME%'}}}\n")
    result = runner.invoke(main, ["import", str(tmp_path / "in.yaml"), "-o", str(tmp_path / "mesh")])
    assert result.exit_code == 0, result.output
    located = sorted(line.split(": warning")[0].rsplit(":", 2)[-2:] for line in result.output.splitlines()
                     if "warning[MESH060]" in line)
    assert located == [["14", "7"], ["15", "5"], ["18", "7"]]  # sourceLabels, corsPolicy, headers


def test_principals_resolve_through_the_accounts_workloads_run_as(tmp_path: Path) -> None:
    def service(name: str) -> str:
        return f"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec:\n  ports: [{{name: http, port: 80}}]\n"

    def deployment(name: str, app: str, account: str | None) -> str:
        pod_spec = f"{{serviceAccountName: {account}, containers: []}}" if account else "{containers: []}"
        return (f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n"
                f"  template:\n    metadata: {{labels: {{app: {app}}}}}\n    spec: {pod_spec}\n")

    (tmp_path / "in.yaml").write_text("---\n".join([
        service("web"), service("cart"), service("jobs"),
        deployment("web", "web", "shop-web"), deployment("cart-v1", "cart", "shop-cart"),
        deployment("cart-v2", "cart", "other"), deployment("jobs", "jobs", None),
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: shop-web}\n",
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: unused}\n",
        ("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: cart}\nspec:\n"
         "  selector: {matchLabels: {app: cart}}\n  rules:\n  - from:\n    - source:\n"
         "        principals: [cluster.local/ns/default/sa/shop-web, cluster.local/ns/default/sa/web]\n"),
    ]))
    result = runner.invoke(main, ["import", str(tmp_path / "in.yaml"), "-o", str(tmp_path / "mesh")])
    assert result.exit_code == 0, result.output
    root = tmp_path / "mesh"
    accounts = {name: _document(root, f"services/{name}.yaml").get("serviceAccount") for name in ("web", "cart", "jobs")}
    assert accounts == {"web": "shop-web", "cart": "shop-cart", "jobs": "default"}  # no serviceAccountName: default
    # shop-web is web's identity; `sa/web` is nobody's (web runs as shop-web)
    assert _document(root, "access/cart.yaml")["allow"] == [{"from": ["web"]}]
    reported = sorted(line.split(": warning")[0].rsplit("in.yaml:", 1)[1] + " " + line.split("[")[1][:7]
                      for line in result.output.splitlines() if "warning[MESH06" in line)
    assert reported == [
        "41:12 MESH060",  # cart-v2 runs as another account than cart-v1: one account per Service
        "56:7 MESH060",  # the ServiceAccount no imported workload runs as
        "67:21 MESH063",  # sa/web: the principals list, where the unresolved one is
    ], result.output


def _alias_bomb() -> str:
    """Nine levels of nine aliases each: 9**9 nodes once expanded."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("text, code, line", [
    (_alias_bomb(), "MESH005", None),
    ("apiVersion: v1\nkind: Service\nkind: Service\n", "MESH003", 3),
    ("apiVersion: v1\nkind: !!python/object:os.system Service\n", "MESH004", 2),
    ("apiVersion: batch/v1\nkind: Job\nmetadata: {name: web}\n", "MESH061", 2),
    ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n", "MESH063", 2),
    ("- just\n- a list\n", "MESH062", 1),
    ("apiVersion: v1\nkind: Service\nmetadata: {name: Not_A_Name}\n", "MESH062", 3),
    ("apiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: a}\n",
     "MESH062", 7),
])
def test_hostile_input_gets_located_diagnostics(tmp_path: Path, text: str, code: str, line: int | None) -> None:
    (tmp_path / "in.yaml").write_text(text)
    result = runner.invoke(main, ["import", str(tmp_path / "in.yaml"), "-o", str(tmp_path / "mesh")])
    assert ("Traceback" not in result.output and result.exception is None) or isinstance(result.exception, SystemExit)
    assert f"[{code}]" in result.output
    if line is not None:
        assert f"in.yaml:{line}:" in result.output
    if code in ("MESH003", "MESH004", "MESH005", "MESH062"):
        assert result.exit_code == 1 and not (tmp_path / "mesh").exists()  # nothing written on errors


def test_huge_files_are_refused_unread(tmp_path: Path) -> None:
    (tmp_path / "huge.yaml").write_text("a: " + "x" * (5 * 1024 * 1024) + "\n")
    result = runner.invoke(main, ["import", str(tmp_path / "huge.yaml"), "-o", str(tmp_path / "mesh")])
    assert result.exit_code == 1 and "huge.yaml:1:1: error[MESH006]" in result.output


def test_existing_files_are_never_replaced(tmp_path: Path) -> None:
    out = tmp_path / "mesh"
    out.mkdir()
    (out / "mesh.yaml").write_text("keep me\n")
    result = runner.invoke(main, ["import", str(SAMPLES / "bookinfo"), "-o", str(out)])
    assert result.exit_code == 1 and "error[MESH064]" in result.output
    assert (out / "mesh.yaml").read_text() == "keep me\n" and sorted(p.name for p in out.iterdir()) == ["mesh.yaml"]


SAMPLE_FILES = sorted(SAMPLES.rglob("*.yaml"))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index=st.integers(0, len(SAMPLE_FILES) - 1), seed=st.integers(0, 2**32 - 1))
def test_mutated_samples_never_raise(index: int, seed: int) -> None:
    """Cut, repeat and retype pieces of real input: every outcome is diagnostics, never an exception."""
    rng = random.Random(seed)
    lines = SAMPLE_FILES[index].read_text().splitlines()
    for _ in range(rng.randint(1, 6)):
        at = rng.randrange(len(lines))
        choice = rng.random()
        if choice < 0.3:
            del lines[at]
        elif choice < 0.6:
            lines.insert(at, lines[rng.randrange(len(lines))])
        else:
            lines[at] = lines[at].replace(":", rng.choice([": 7", ": [", ": {}", ": &x", ": *x", "::"]), 1)
    report = Report()
    intents = import_texts({"in.yaml": "\n".join(lines) + "\n"}, report)
    if not report.has_errors:
        render_intents(intents)
    assert all(d.location is not None and d.location.line >= 1 for d in report.diagnostics)


def test_read_inputs_walks_directories_for_yaml_only(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.yaml").write_text("a: 1\n")
    (tmp_path / "a" / "notes.txt").write_text("not yaml\n")
    (tmp_path / "b.yml").write_bytes(b"\xff\xfe")
    report = Report()
    texts = read_inputs([tmp_path / "a", tmp_path / "b.yml"], report)
    assert list(texts) == [(tmp_path / "a" / "x.yaml").as_posix()]
    assert [d.code.code for d in report.diagnostics] == ["MESH001"]


# --------------------------------------------------------------------------------------------
# Round trip: every imported route decides every generated request as the VirtualService did


def _virtual_services(*inputs: str) -> list[dict]:
    documents = [d.data for i in inputs for f in sorted((SAMPLES / i).glob("*.yaml")) if (SAMPLES / i).is_dir()
                 for d in load_documents(f.read_text())]
    documents += [d.data for i in inputs if (SAMPLES / i).is_file() for d in load_documents((SAMPLES / i).read_text())]
    return [d for d in documents if isinstance(d, dict) and d.get("kind") == "VirtualService"]


def _requests(virtual_service: dict) -> list[Request]:
    paths = {"/", "/other", "/productpage", "/productpage/x", "/staticx", "/static/app.css", "/api/v1/products/1"}
    for rule in virtual_service["spec"].get("http", []):
        for block in rule.get("match", []):
            for value in block.get("uri", {}).values():
                paths |= {value, value + "/x", value + "x", value[:-1] or "/"}
    headers = [(), (("end-user", "jason"),), (("End-User", "jason"),), (("end-user", "jasonx"),)]
    return [Request(virtual_service["spec"]["hosts"][0], p, m, h)
            for p in sorted(paths) for m in ("GET", "POST") for h in headers]


def _meshc_outcome(decision) -> Outcome:
    if decision.action == "abort":
        return Outcome("abort", status=decision.status)
    if decision.action == "not-found":
        return Outcome("not-found")
    assert decision.action == "forward", decision
    destinations = tuple(sorted((t.service.name, t.version, t.port, t.weight) for t in decision.backends))
    timing = (decision.delay, float(decision.delay_percent)) if decision.delay else None
    return Outcome("forward", destinations, decision.path, delay=timing)


@pytest.mark.parametrize("inputs", [
    ("bookinfo",),
    ("bookinfo/bookinfo.yaml", "bookinfo/destination-rule-all.yaml", "bookinfo-split"),
])
def test_imported_routes_decide_as_the_virtual_services_did(tmp_path: Path, inputs: tuple[str, ...]) -> None:
    root, _ = _import(tmp_path, *inputs)
    graph = compile_mesh(root).graph
    assert graph is not None
    ports = {"productpage": 9080, "details": 9080, "reviews": 9080, "ratings": 9080}
    compared = 0
    for virtual_service in _virtual_services(*inputs):
        name, gateways = virtual_service["metadata"]["name"], virtual_service["spec"].get("gateways")
        for request in _requests(virtual_service):
            # the Host is the one sent, on both sides (these VirtualServices rewrite no authority)
            expected = dataclasses.replace(istio_decide(virtual_service["spec"], request, ports), host=None)
            headers = request.headers
            if gateways:
                decision = evaluate(graph, Proxy(gateway=Key("default", gateways[0])),
                                    Request("bookinfo.example.com", request.path, request.method, headers, port=8080))
            else:
                routes = graph.routes_for(Key("default", virtual_service["spec"]["hosts"][0]))
                assert [route.key for route in routes] == [Key("default", name)]
                decision = rule_decision(graph, routes, Request(name, request.path, request.method, headers), 9080)
            assert _meshc_outcome(decision) == expected, (name, request)
            compared += 1
    assert compared >= 100


# --------------------------------------------------------------------------------------------
# Header edits and mirrors (issue 12): what the VirtualService or HTTPRoute did, the Route does

REVIEWS = ("apiVersion: v1\nkind: Service\nmetadata: {name: reviews}\nspec:\n  ports: [{name: http, port: 9080}]\n"
           "---\napiVersion: v1\nkind: Service\nmetadata: {name: shadow}\nspec:\n  ports: [{name: http, port: 9080}]\n"
           "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews}\n"
           "spec:\n  host: reviews\n  subsets:\n  - {name: v1, labels: {version: v1}}\n"
           "  - {name: v2, labels: {version: v2}}\n")
EDITS_AND_MIRRORS = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match:
    - uri: {prefix: /split}
    headers:
      request:
        set: {x-tenant: shop}
        add: {x-trace: imported}
        remove: [x-debug]
      response:
        set: {cache-control: no-store}
    route:
    - destination: {host: reviews, subset: v1, port: {number: 9080}}
      weight: 50
      headers: {request: {set: {x-backend: one}}, response: {add: {x-from: v1}}}
    - destination: {host: reviews, subset: v2, port: {number: 9080}}
      weight: 50
    mirror: {host: shadow, port: {number: 9080}}
    mirrorPercentage: {value: 25.5}
  - route:
    - destination: {host: reviews, subset: v2, port: {number: 9080}}
    mirrors:
    - destination: {host: shadow, port: {number: 9080}}
      percentage: {value: 10}
    - destination: {host: reviews, subset: v1, port: {number: 9080}}
"""


def _import_texts(tmp_path: Path, *texts: str) -> tuple[Path, str]:
    for index, text in enumerate(texts):
        (tmp_path / f"in{index}.yaml").write_text(text)
    out = tmp_path / "mesh"
    result = runner.invoke(main, ["import", *(str(tmp_path / f"in{i}.yaml") for i in range(len(texts))), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_istio_header_edits_and_mirrors_round_trip(tmp_path: Path) -> None:
    """istio.io VirtualService: HTTPRoute.headers ("Header manipulation rules") applies to every
    destination, HTTPRouteDestination.headers to one; `mirror` with `mirrorPercentage`, and
    `mirrors` ("Specifies the destinations to mirror HTTP traffic in addition to the original
    destination"), each HTTPMirrorPolicy with its own `percentage` (all requests when absent).
    The imported Route decides every request as tests/istio_reference.py reads the
    VirtualService: destinations, the headers each receives and answers with, and mirrors."""
    from tests.test_semantics_istio import evaluator_decides, istio_decides

    root, output = _import_texts(tmp_path, REVIEWS, EDITS_AND_MIRRORS)
    assert "MESH060" not in output
    rules = _document(root, "routes/reviews.yaml")["rules"]
    assert rules[0]["headers"] == {"request": {"set": {"x-tenant": "shop"}, "add": {"x-trace": "imported"},
                                               "remove": ["x-debug"]},
                                   "response": {"set": {"cache-control": "no-store"}}}
    assert rules[0]["to"][0]["headers"] == {"request": {"set": {"x-backend": "one"}}, "response": {"add": {"x-from": "v1"}}}
    assert rules[0]["mirror"] == {"service": "shadow", "port": 9080, "percent": 25.5}
    assert rules[1]["mirrors"] == [{"service": "shadow", "port": 9080, "percent": 10}, {"version": "v1", "port": 9080}]
    _clean(root)
    graph = compile_mesh(root).graph
    assert graph is not None
    [spec] = [d.data["spec"] for d in load_documents(EDITS_AND_MIRRORS)]
    sent_headers = (("x-debug", "1"), ("x-trace", "client"), ("x-tenant", "other"))
    for path in ("/split", "/split/a?q=1", "/other"):
        request = Request("reviews", path, "GET", sent_headers)
        routes = graph.routes_for(Key("default", "reviews"))
        assert routes
        assert istio_decides(spec, request) == evaluator_decides(rule_decision(graph, routes, request, 9080)), path


def test_istio_edits_meshc_cannot_carry_are_reported_where_they_stand(tmp_path: Path) -> None:
    """A header the rule and a destination both edit (Envoy applies the destination's edits
    first, which meshc does not promise: docs/intents.md edits a header in one place), and a
    value with Envoy's `%...%` command operators are MESH060 at the field; the rest of the rule
    is imported."""
    text = EDITS_AND_MIRRORS.replace("headers: {request: {set: {x-backend: one}}", "headers: {request: {set: {x-tenant: one}}")
    text = text.replace("      weight: 50\n    mirror:",
                        "      weight: 50\n      headers: {response: {set: {x-client: '%DOWNSTREAM_REMOTE_ADDRESS%'}}}\n"
                        "    mirror:")
    root, output = _import_texts(tmp_path, REVIEWS, text)
    lines = text.splitlines()
    at = [n for n, line in enumerate(lines, 1) if line.startswith("      headers:")]
    warnings = [line.split("in1.yaml:")[1] for line in output.splitlines() if "warning[MESH060]" in line]
    assert warnings == [
        (f"{at[0]}:7: warning[MESH060]: VirtualService default/reviews: spec.http[0].route[0].headers: header "
         "'x-tenant' is edited by the rule and by this destination: meshc edits a header in one place"),
        (f"{at[1]}:7: warning[MESH060]: VirtualService default/reviews: spec.http[0].route[1].headers: header edits "
         "meshc cannot carry: a header value is visible ASCII with inner spaces, without `%` (Envoy reads `%...%` as "
         "a command), and does not start or end with a space")], output
    rules = _document(root, "routes/reviews.yaml")["rules"]
    assert "headers" in rules[0] and ["headers" in d for d in rules[0]["to"]] == [False, False]
    _clean(root)


GATEWAY_API_EDITS = """\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: reviews}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /split}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: x-tenant, value: shop}]
        add: [{name: x-trace, value: imported}]
        remove: [x-debug]
    - type: ResponseHeaderModifier
      responseHeaderModifier: {set: [{name: cache-control, value: no-store}]}
    - type: RequestMirror
      requestMirror: {backendRef: {name: shadow, port: 9080}, percent: 30}
    - type: RequestMirror
      requestMirror: {backendRef: {name: shadow, port: 9080}, fraction: {numerator: 1, denominator: 8}}
    backendRefs:
    - name: reviews
      port: 9080
      filters:
      - type: RequestHeaderModifier
        requestHeaderModifier: {set: [{name: x-backend, value: one}]}
"""


def test_gateway_api_header_filters_and_mirrors_round_trip(tmp_path: Path) -> None:
    """HTTPHeaderFilter (RequestHeaderModifier, ResponseHeaderModifier) on a rule and on a
    backendRef (HTTPBackendRef.filters), and HTTPRequestMirrorFilter, repeatable, with `percent`
    or `fraction` ("numerator/denominator", denominator 100 by default): imported, the Route
    decides as tests/test_semantics_gateway_api.py reads the HTTPRoute."""
    from tests.test_semantics_gateway_api import evaluator_decides, gateway_api_decides

    root, output = _import_texts(tmp_path, REVIEWS, GATEWAY_API_EDITS)
    assert "MESH060" not in output
    [rule] = _document(root, "routes/reviews.yaml")["rules"]
    assert rule["headers"] == {"request": {"set": {"x-tenant": "shop"}, "add": {"x-trace": "imported"},
                                           "remove": ["x-debug"]}, "response": {"set": {"cache-control": "no-store"}}}
    assert rule["to"] == [{"port": 9080, "headers": {"request": {"set": {"x-backend": "one"}}}}]
    assert rule["mirrors"] == [{"service": "shadow", "port": 9080, "percent": 30},
                               {"service": "shadow", "port": 9080, "percent": 12.5}]
    _clean(root)
    graph = compile_mesh(root).graph
    assert graph is not None
    [spec] = [d.data["spec"] for d in load_documents(GATEWAY_API_EDITS)]
    request = Request("reviews", "/split/a", "GET", (("x-debug", "1"), ("x-trace", "client")))
    expected = gateway_api_decides(spec, request)
    routes = graph.routes_for(Key("default", "reviews"))
    assert routes
    assert evaluator_decides(rule_decision(graph, routes, request, 9080)) == expected


PARTNER_JWKS = Issuer("partner@example.test").jwks
REQUEST_AUTHENTICATION = """\
apiVersion: v1
kind: Service
metadata: {name: orders, namespace: shop}
spec:
  selector: {app: orders}
  ports: [{name: http, port: 8080}]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: orders-jwt, namespace: shop}
spec:
  selector:
    matchLabels: {app: orders}
  jwtRules:
  - issuer: https://auth.example.com
    jwksUri: https://auth.example.com/.well-known/jwks.json
    audiences: [orders]
    forwardOriginalToken: true
  - issuer: partner@example.test
    jwks: 'PARTNER_JWKS'
    fromHeaders: [{name: x-partner-token, prefix: "Token "}]
    fromParams: [partner_token]
    outputPayloadToHeader: x-jwt-payload
""".replace("PARTNER_JWKS", PARTNER_JWKS)


def test_request_authentication_becomes_the_services_jwt_providers(tmp_path: Path) -> None:
    """Istio RequestAuthentication jwtRules (issuer, audiences, jwksUri or jwks, fromHeaders
    with their prefix, fromParams, forwardOriginalToken) are the Service's `jwt` providers;
    what meshc has no field for is reported where it is (outputPayloadToHeader), and the
    imported mesh, built for Istio, writes the same rules back."""
    import yaml

    from compiler.build import emit

    report = Report()
    intents = import_texts({"orders.yaml": REQUEST_AUTHENTICATION}, report)
    [orders] = [i for i in intents if i.kind == "Service"]
    assert orders.body["jwt"] == [
        {"name": "orders-jwt-1", "issuer": "https://auth.example.com", "audiences": ["orders"],
         "jwks": {"uri": "https://auth.example.com/.well-known/jwks.json"}, "forward": True},
        {"name": "orders-jwt-2", "issuer": "partner@example.test", "jwks": {"inline": PARTNER_JWKS},
         "from": {"headers": [{"name": "x-partner-token", "prefix": "Token "}], "params": ["partner_token"]}}]
    [left] = [d for d in report.diagnostics if d.code.code == "MESH060"]
    assert "outputPayloadToHeader" in left.message and left.location.line == 23
    root = tmp_path / "mesh"
    for path, text in render_intents(intents).items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    compiled = compile_mesh(root)
    assert compiled.graph is not None
    written = [d for a in emit(compiled.graph, Report(), ["kubernetes"]) if a.path.endswith(".yaml")
               for d in yaml.safe_load_all(a.content) if d and d.get("kind") == "RequestAuthentication"]
    [back] = written
    [original] = [d.data for d in load_documents(REQUEST_AUTHENTICATION) if d.data["kind"] == "RequestAuthentication"]
    imported = [{k: v for k, v in rule.items() if k != "outputPayloadToHeader"} for rule in original["spec"]["jwtRules"]]
    # the rules as written, with the token locations meshc always writes out (Istio's defaults)
    assert [{k: v for k, v in rule.items() if k in imported[i]} for i, rule in enumerate(back["spec"]["jwtRules"])] \
        == imported
