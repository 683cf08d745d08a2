"""`meshc test`: RouteTest cases run through the reference evaluator, and rule coverage.

A case passes when every field of its `expect` agrees with the evaluator's decision. A failing
case is reported at the case, with the rule that decided it as the related location; rules no
case reaches are listed (MESH503) and counted for `--fail-under`.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field, replace

from compiler import codes
from compiler.diagnostics import Related, Report
from compiler.evaluate import (
    DEFAULT_TOKEN_HEADER,
    Behaviour,
    Decision,
    HeaderEdit,
    Proxy,
    Request,
    canonical_location,
    evaluate,
    header_value,
    in_sequence,
    outcome,
    token_locations,
)
from compiler.graph import Key, MeshGraph
from compiler.linker import parse_ref
from compiler.loader import Intent
from compiler.model import (
    JwtProvider,
    RouteTest,
    RouteTestCase,
    RouteTestExpectation,
    RouteTestToken,
    duration_seconds,
)


@dataclass(frozen=True)
class CaseRun:
    test: Key
    index: int
    case: RouteTestCase
    intent: Intent
    proxy: Proxy
    request: Request
    decision: Decision
    differences: tuple[str, ...]
    token: str | None = None  # the JWT meshc made for the case (request.token), unsigned

    @property
    def passed(self) -> bool:
        return not self.differences


@dataclass
class TestRun:
    cases: list[CaseRun] = field(default_factory=list)
    rules: list[tuple[Key, int]] = field(default_factory=list)  # every rule of every Route
    covered: set[tuple[Key, int]] = field(default_factory=set)
    through_envoy: int = 0  # cases also sent through Envoy (`meshc test --envoy`)
    not_through_envoy: int = 0  # cases no listener of the proxy takes (a gateway port without one)

    @property
    def failed(self) -> list[CaseRun]:
        return [c for c in self.cases if not c.passed]

    @property
    def coverage(self) -> float:
        """Percent of Route rules that decide at least one case (100 when there are none)."""
        return 100.0 * len(self.covered) / len(self.rules) if self.rules else 100.0

    def summary(self) -> str:
        envoy = ""
        if self.through_envoy or self.not_through_envoy:
            envoy = f"; {self.through_envoy} through Envoy"
            if self.not_through_envoy:
                envoy += (f" ({self.not_through_envoy} not: on a port without a listener, or from a client address "
                          "off loopback)")
        return (f"{len(self.cases)} route test case(s), {len(self.failed)} failed; rule coverage "
                f"{self.coverage:.0f}% ({len(self.covered)} of {len(self.rules)} rules){envoy}")


def as_request(case: RouteTestCase) -> Request:
    spec = case.request
    backend = spec.backend
    behaviour = (Behaviour(tuple(backend.failures), duration_seconds(backend.delay),
                           None if backend.failureDelay is None else duration_seconds(backend.failureDelay))
                 if backend is not None else None)
    return Request(host=spec.host, path=spec.path, method=spec.method, headers=tuple(spec.headers.items()),
                   port=spec.port, sni=spec.sni, client_ca=spec.clientCa, tls_version=spec.tlsVersion,
                   behaviour=behaviour, client_address=spec.clientAddress)


# the header of the JWTs `meshc test` makes: RS256 under a key id of its own, which
# `meshc test --envoy` adds to every provider's keys (targets.envoylib.run)
TOKEN_HEADER = {"alg": "RS256", "typ": "JWT", "kid": "meshc-test"}
UNSIGNED = "meshc-test-unsigned"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def made_token(token: RouteTestToken, now: float) -> str:
    """The JWT a case's `token` describes, its signature left for whoever checks signatures:
    the evaluator does not (signature checks are cryptography, outside the semantics, so a
    token's `signature: invalid` is Request.forged_token), Envoy does (the runner signs it)."""
    issued = int(now)
    payload: dict = {"iss": token.issuer, "iat": issued, "exp": issued + (-3600 if token.expired else 3600)}
    if token.subject is not None:
        payload["sub"] = token.subject
    if token.audiences:
        payload["aud"] = list(token.audiences)
    payload.update(token.claims)
    header, body = (b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (TOKEN_HEADER, payload))
    return f"{header}.{body}.{b64url(UNSIGNED.encode())}"


def with_token(request: Request, token: RouteTestToken, text: str, providers: list[JwtProvider]) -> Request:
    """The request carrying the made token where the provider of its issuer reads tokens
    first (compiler.evaluate.token_locations), else in `Authorization: Bearer`."""
    owner = next((p for p in providers if p.issuer == token.issuer), None)
    kind, name, prefix = token_locations(owner)[0] if owner is not None else ("header", *DEFAULT_TOKEN_HEADER)
    forged = token.signature == "invalid"
    if kind == "param":
        joined = "&" if "?" in request.path else "?"
        return replace(request, path=f"{request.path}{joined}{name}={text}", forged_token=forged)
    return replace(request, headers=(*request.headers, (name, prefix + text)), forged_token=forged)


def case_providers(graph: MeshGraph, proxy: Proxy) -> list[JwtProvider]:
    """The jwt providers a case's token may meet: the gateway's, or every service's."""
    if proxy.gateway is not None:
        return list(graph.gateways[proxy.gateway].spec.jwt)
    return [provider for service in graph.services.values() for provider in service.spec.jwt]


def answer(decision: Decision, request: Request) -> tuple[int | None, int]:
    """The status the client sees (200 from a destination, else the proxy's own) and the tries
    the destination receives; a destination with a behaviour answers as it says."""
    if decision.action != "forward":
        return decision.status, 0
    if request.behaviour is not None and decision.external is None:
        result = outcome(decision, request.method, request.behaviour)
        return result.status, result.tries
    return 200, 1


def differences(expect: RouteTestExpectation, decision: Decision, namespace: str, request: Request) -> list[str]:
    found: list[str] = []

    def differ(what: str, wanted: object, got: object) -> None:
        if wanted is not None and wanted != got:
            found.append(f"{what}: expected {wanted}, got {got}")

    status, tries = answer(decision, request)
    differ("status", expect.status, status)
    differ("tries", expect.tries, tries)
    if expect.to is not None:
        got: list[tuple[Key, str | None, int | None, int]] = [
            (t.service, t.version, t.port, t.weight) for t in decision.backends]
        if decision.external is not None:
            got = [(decision.external, None, decision.port, 100)]
        wanted = [(parse_ref(d.service, namespace), d.version, d.port, d.weight) for d in expect.to]
        if not same_entries(wanted, got):
            shown = ", ".join(f"{s}{'@' + v if v else ''}:{p} ({w}%)" for s, v, p, w in got) or decision.action
            found.append(f"to: expected {', '.join(describe(w) for w in wanted)}, got {shown}")
    if expect.mirrors is not None:
        copies = [(t.service, t.version, t.port, percent) for t, percent in decision.mirrors]
        copied = [(parse_ref(m.service, namespace), m.version, m.port, m.percent) for m in expect.mirrors]
        if not same_entries(copied, copies):
            shown = ", ".join(f"{describe((s, v, p, None))} ({c}%)" for s, v, p, c in copies) or "none"
            found.append(f"mirrors: expected {', '.join(describe(w) for w in copied) or 'none'}, got {shown}")
    if expect.redirect is not None and canonical_location(expect.redirect) != canonical_location(decision.location):
        found.append(f"redirect: expected {expect.redirect}, got {decision.location}")
    differ("path", expect.path, decision.path)
    differ("host", expect.host, decision.host)
    found.extend(header_differences(expect, decision))
    if expect.route is not None:
        route = parse_ref(expect.route, namespace)
        got_rule = (decision.rule.route, decision.rule.index) if decision.rule else None
        if got_rule is None or got_rule[0] != route or (expect.rule is not None and got_rule[1] != expect.rule):
            wanted_rule = f"Route {route}" + (f" rule {expect.rule}" if expect.rule is not None else "")
            found.append(f"decided by: expected {wanted_rule}, got {decision.rule or 'no rule'}")
    return found


def same_entries(wanted: list[tuple], got: list[tuple]) -> bool:
    """As many entries as expected, each expected one matching some entry got in every field
    it names (None: not compared)."""
    return len(got) == len(wanted) and all(
        any(all(w is None or w == g for w, g in zip(want, have, strict=True)) for have in got) for want in wanted)


def header_differences(expect: RouteTestExpectation, decision: Decision) -> list[str]:
    """`headers` against every destination that receives the request; `responseHeaders` against
    every answer the client may get (from those destinations, or an abort in their place)."""
    forwarded = [(describe((t.service, t.version, t.port, None)), *decision.edits_of(t)) for t in decision.backends]
    if decision.external is not None:
        forwarded.append((str(decision.external), HeaderEdit(), HeaderEdit()))
    answers = [(who, response) for who, _, response in forwarded]
    if decision.action in ("abort", "preflight"):
        answers = [(f"the {decision.status} {decision.action}", edit)
                   for edit in decision.abort_edits or (HeaderEdit(),)]
    found: list[str] = []
    checks = (("headers", expect.headers,
               [(who, request.apply(decision.request_headers)) for who, request, _ in forwarded]),
              ("responseHeaders", expect.responseHeaders, [(who, response.apply(())) for who, response in answers]))
    for what, wanted, receivers in checks:
        if not wanted:
            continue
        if not receivers:
            found.append(f"{what}: expected {dict(wanted)}, got no destination ({decision.action})")
        for receiver, got in receivers:
            found.extend(f"{what} {name!r} at {receiver}: expected {value!r}, got {header_value(got, name)!r}"
                         for name, value in wanted.items() if header_value(got, name) != value)
    return found


def describe(wanted: tuple) -> str:
    service, version, port, weight = wanted
    return (f"{service}{'@' + version if version else ''}{':' + str(port) if port else ''}"
            + (f" ({weight}%)" if weight is not None else ""))


def route_tests(intents: list[Intent]) -> list[Intent]:
    return [intent for intent in intents if intent.kind == "RouteTest"]


def run_route_tests(graph: MeshGraph, intents: list[Intent], report: Report) -> TestRun:
    run = TestRun(rules=[(route.key, rule.index) for route in graph.routes.values() for rule in route.rules])
    seen: set[Key] = set()
    sent: dict[Proxy, list[Decision]] = {}  # what each proxy decided so far, for its rate limits
    for intent in route_tests(intents):
        spec: RouteTest = intent.model
        test = Key(spec.namespace or graph.mesh.defaultNamespace, spec.name)
        if test in seen:
            continue  # the linker reported the duplicate
        seen.add(test)
        proxy = resolve_proxy(graph, spec, test, intent, report)
        if proxy is None or not expectations_resolve(graph, spec, test, intent, report):
            continue
        for index, case in enumerate(spec.cases):
            request = as_request(case)
            token = None
            if case.request.token is not None:
                token = made_token(case.request.token, time.time())
                request = with_token(request, case.request.token, token, case_providers(graph, proxy))
            earlier = sent.setdefault(proxy, [])
            earlier.append(evaluate(graph, proxy, request))
            decision = in_sequence(earlier)[-1]
            if decision.rule is not None:
                run.covered.add((decision.rule.route, decision.rule.index))
            found = tuple(differences(case.expect, decision, test.namespace, request))
            run.cases.append(CaseRun(test, index, case, intent, proxy, request, decision, found, token))
            if found:
                report_failure(graph, run.cases[-1], report)
    for route_key, index in run.rules:
        if (route_key, index) not in run.covered:
            route = graph.routes[route_key]
            report.add(codes.RULE_NOT_COVERED, f"Route {route_key} rule {index} decides no RouteTest case",
                       graph.sources.locate(route.origin, "rules", index))
    return run


def resolve_proxy(graph: MeshGraph, spec: RouteTest, test: Key, intent: Intent, report: Report) -> Proxy | None:
    if spec.caller is not None:
        caller = parse_ref(spec.caller, test.namespace)
        if caller in graph.services:
            return Proxy(service=caller)
        what, field_name = f"caller {caller} is not a Service", "caller"
    else:
        assert spec.gateway is not None  # a RouteTest names exactly one of caller and gateway (its validator)
        gateway = parse_ref(spec.gateway, test.namespace)
        if gateway in graph.gateways:
            return Proxy(gateway=gateway)
        what, field_name = f"gateway {gateway} is not a Gateway", "gateway"
    report.add(codes.ROUTE_TEST_UNRESOLVED, f"RouteTest {test}: {what}",
               graph.sources.locate(intent.origin, field_name))
    return None


def expectations_resolve(graph: MeshGraph, spec: RouteTest, test: Key, intent: Intent, report: Report) -> bool:
    ok = True
    for index, case in enumerate(spec.cases):
        expect = case.expect
        named: list[tuple[str, int, str]] = [("to", i, d.service) for i, d in enumerate(expect.to or ())]
        named += [("mirrors", i, m.service) for i, m in enumerate(expect.mirrors or ())]
        for field_name, d_index, written in named:
            service = parse_ref(written, test.namespace)
            if service not in graph.services and service not in graph.externals:
                ok = False
                report.add(codes.ROUTE_TEST_UNRESOLVED, f"RouteTest {test} expects {service}, which is not a Service",
                           graph.sources.locate(intent.origin, "cases", index, "expect", field_name, d_index,
                                                "service"))
        if expect.route is not None:
            route = graph.routes.get(parse_ref(expect.route, test.namespace))
            if route is None or (expect.rule is not None and expect.rule >= len(route.spec.rules)):
                ok = False
                problem = (f"Route {parse_ref(expect.route, test.namespace)} does not exist" if route is None
                           else f"Route {route.key} has {len(route.spec.rules)} rule(s), no rule {expect.rule}")
                report.add(codes.ROUTE_TEST_UNRESOLVED, f"RouteTest {test}: {problem}",
                           graph.sources.locate(intent.origin, "cases", index, "expect",
                                                "route" if route is None else "rule"))
    return ok


def report_failure(graph: MeshGraph, run: CaseRun, report: Report) -> None:
    decision = run.decision
    related: tuple[Related, ...] = ()
    if decision.rule is not None and decision.rule.location is not None:
        related = (Related(decision.rule.location, f"{decision.rule} decided the request"),)
    why = "" if decision.rule is not None else f" ({decision.reason})"
    report.add(
        codes.ROUTE_TEST_FAILED,
        f"RouteTest {run.test} case {run.case.name!r}: " + "; ".join(run.differences) + why,
        graph.sources.locate(run.intent.origin, "cases", run.index),
        related=related,
    )
