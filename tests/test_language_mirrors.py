"""Several mirrors on one rule (issue 12), each with its own percent: docs/intents.md's meaning
in the evaluator, through real Envoy (every mirror's backend receives its copies), in the Istio
VirtualService (HTTPRoute.mirrors, "each ... with its own percentage"; `mirror` is deprecated)
and the Gateway API HTTPRoute (RequestMirror filters, which may be repeated: the CRD forbids
repeating RequestHeaderModifier, ResponseHeaderModifier, RequestRedirect, URLRewrite and CORS
only), both schema-valid and read back by the independent readers."""

from __future__ import annotations

import json
import time
from pathlib import Path

from compiler.build import compile_mesh
from compiler.evaluate import Proxy, Request, evaluate
from targets.envoylib import EnvoyRunner, disagreement
from tests.conftest import require_envoy
from tests.semantics import key, kubernetes_route, linked, mesh, route, service, write
from tests.test_semantics_gateway_api import evaluator_decides as gateway_api_evaluator
from tests.test_semantics_gateway_api import gateway_api_decides
from tests.test_semantics_istio import evaluator_decides as istio_evaluator
from tests.test_semantics_istio import istio_decides

WEB = Proxy(service=key("web"))
RULES = [
    {"match": [{"path": {"prefix": "/shadowed"}}], "to": [{"version": "v1"}],
     "mirrors": [{"version": "v2"}, {"version": "v3", "percent": 12.5}]},
    {"match": [{"path": {"prefix": "/quiet"}}], "to": [{"version": "v1"}], "mirrors": [{"version": "v3", "percent": 0}]},
    {"to": [{"version": "v1"}], "mirror": {"version": "v2", "percent": 50}},
]


def test_the_evaluator_names_every_mirror_with_its_percent(tmp_path: Path) -> None:
    graph = linked(tmp_path, [mesh(), service("web", calls=["api"]), service("api", versions=("v1", "v2", "v3")),
                              route("api", RULES, service="api")])
    decision = evaluate(graph, WEB, Request("api", "/shadowed/x"))
    assert [(t.version, p) for t, p in decision.mirrors] == [("v2", 100), ("v3", 12.5)]
    assert [(t.version, p) for t, p in evaluate(graph, WEB, Request("api", "/")).mirrors] == [("v2", 50)]


def test_mirror_and_mirrors_together_is_a_located_error(tmp_path: Path) -> None:
    root = write(tmp_path, [mesh(), service("web", calls=["api"]), service("api", versions=("v1", "v2")),
                            route("api", [{"to": [{"version": "v1"}], "mirror": {"version": "v2"},
                                           "mirrors": [{"version": "v2"}]}], service="api")])
    [error] = [d for d in compile_mesh(root).report.sorted() if d.severity == "error"]
    assert error.code.code == "MESH108" and error.location.line > 1 and "`mirrors` (several)" in error.message


def test_envoy_sends_a_copy_to_every_mirror(tmp_path: Path) -> None:
    """Real Envoy: RouteAction.request_mirror_policies, one per mirror. Six requests to
    /shadowed reach v1 and, as copies whose answers are dropped, v2 (100 %); /quiet's 0 %
    mirror gets none. The copies are sent asynchronously, so their count is awaited."""
    binary = require_envoy()
    graph = linked(tmp_path, [mesh(), service("web", calls=["api"]), service("api", versions=("v1", "v2", "v3")),
                              route("api", RULES[:2], service="api")])
    with EnvoyRunner(graph, binary) as runner:
        replies = [runner.send(WEB, Request("api", path)) for path in ["/shadowed/a"] * 6 + ["/quiet"] * 4]
        problems = [disagreement(evaluate(graph, WEB, Request("api", p)), reply)
                    for p, reply in zip(["/shadowed/a"] * 6 + ["/quiet"] * 4, replies, strict=True)]
        deadline = time.monotonic() + 10
        while runner.answered(WEB).get("outbound|8080|v2|api.shop", 0) < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        answered = runner.answered(WEB)
    assert problems == [None] * 10
    assert answered["outbound|8080|v1|api.shop"] == 10  # every request, answered by v1
    assert answered["outbound|8080|v2|api.shop"] == 6  # a copy of each /shadowed request
    assert answered.get("outbound|8080|v3|api.shop", 0) <= 6  # 12.5 % of /shadowed, none of /quiet


def test_istio_and_the_gateway_api_carry_every_mirror(tmp_path: Path) -> None:
    graph, istio, _ = kubernetes_route(tmp_path / "istio", "istio", RULES)
    assert [m["percentage"]["value"] for m in istio["http"][0]["mirrors"]] == [100.0, 12.5]
    graph_api, gateway_api, _ = kubernetes_route(tmp_path / "gateway-api", "gateway-api", RULES)
    mirrors = [f["requestMirror"] for f in gateway_api["rules"][0]["filters"] if f["type"] == "RequestMirror"]
    assert [m["backendRef"]["name"] for m in mirrors] == ["api-v2", "api-v3"]
    assert mirrors[1]["fraction"] == {"numerator": 125000, "denominator": 1000000}
    for path in ("/shadowed/x", "/quiet", "/other"):
        sent = Request("api", path)
        assert istio_decides(istio, sent) == istio_evaluator(evaluate(graph, WEB, sent)), path
        assert gateway_api_decides(gateway_api, sent) == gateway_api_evaluator(evaluate(graph_api, WEB, sent)), path


def test_route_tests_expect_every_mirror(tmp_path: Path) -> None:
    """RouteTest `expect.mirrors`: every copy, each with the fields written (docs/intents.md,
    RouteTest); a missing, an extra or a wrong percent fails the case at its place, also
    through real Envoy (`meshc test --envoy`, where each copy is checked to arrive)."""
    from click.testing import CliRunner

    from compiler.cli import main

    require_envoy()
    mirror_v3 = {"service": "api", "version": "v3", "percent": 12.5}
    cases = [("both", "/shadowed/x", [{"service": "api", "version": "v2", "percent": 100}, mirror_v3], True),
             ("any field may be left out", "/shadowed", [{"service": "api"}, {"service": "api", "version": "v3"}],
              True),
             ("none", "/quiet/x", [{"service": "api", "version": "v3", "percent": 0}], True),
             ("one missing", "/shadowed/x", [mirror_v3], False),
             ("another percent", "/", [{"service": "api", "version": "v2", "percent": 10}], False),
             ("none expected", "/", [], False)]
    test = {"apiVersion": "meshc/v1", "kind": "RouteTest", "name": "mirrors", "caller": "web",
            "cases": [{"name": name, "request": {"host": "api", "path": path}, "expect": {"mirrors": mirrors}}
                      for name, path, mirrors, _ in cases]}
    root = write(tmp_path, [mesh(), service("web", calls=["api"]), service("api", versions=("v1", "v2", "v3")),
                            route("api", RULES, service="api"), test])
    for extra in ([], ["--envoy"]):
        result = CliRunner().invoke(main, ["test", str(root), "--format", "json", *extra])
        failed = {d["message"].split("case ")[1].split(":")[0].strip("'")
                  for d in json.loads(result.stdout)["diagnostics"] if d["code"] == "MESH501"}
        assert failed == {name for name, *_, passes in cases if not passes}, result.output
