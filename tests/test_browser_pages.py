"""The pages meshc writes, in a real browser: Debian's headless Chromium driven by Playwright.

`meshc graph --format html` for both examples and a generated 1,000-service mesh: the counts
the page draws equal the graph's (computed here from the linked graph, not from the page's
data), a denied call is drawn as denied, clicking a node shows its routes, hostile text stays
text, the console stays clean and the page asks the network for nothing. Mermaid's own parser
reads the diagram of `meshc diff --format markdown`. Screenshots go to $MESHC_ARTIFACTS (else
a temporary directory); their paths are printed.

Chromium comes from Debian (`apt-get install chromium`; .ci/run installs it), Playwright from
the test extra, Mermaid from tests/browser (`npm ci --prefix tests/browser`, also in .ci/run).
Without them these tests skip locally and fail when CI is set.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest

from bench.generate import generate_mesh
from compiler.artifact import gateway_workload, service_workload
from compiler.build import compile_mesh
from compiler.graph import MeshGraph
from compiler.graph_page import external_id, mesh_page
from tests.conftest import EXAMPLES, REPO, missing_validator, require_module, require_tool
from tests.gitops_support import git_mesh, meshc

MERMAID = REPO / "tests" / "browser" / "node_modules" / "mermaid" / "dist" / "mermaid.min.js"
HOSTILE = "</script><script>window.pwned=1</script><!-- \u2028\u2029 <img src=x onerror=window.pwned=2> ]]>"


@pytest.fixture(scope="module")
def browser():
    chromium = require_tool("chromium", "Debian's chromium package (apt-get install chromium; .ci/run installs it)")
    sync_api = require_module("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def artifacts() -> Path:
    directory = Path(os.environ.get("MESHC_ARTIFACTS") or tempfile.mkdtemp(prefix="meshc-pages-"))
    directory.mkdir(parents=True, exist_ok=True)
    return directory


class Page:
    """One page opened from a file, with every console message, page error and request kept."""

    def __init__(self, browser, path: Path) -> None:
        self.page = browser.new_page(viewport={"width": 1400, "height": 850})
        self.problems: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.problems.append(f"{m.type}: {m.text}")
                     if m.type in ("error", "warning") else None)
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.goto(path.as_uri())
        self.page.wait_for_selector("body[data-ready=true]", timeout=45_000)

    def counts(self) -> dict[str, int]:
        found = self.page.eval_on_selector("#counts", "e => ({...e.dataset})")
        return {k: int(v) for k, v in found.items()}

    def click_node(self, node_id: str) -> None:
        x, y = self.page.evaluate("""id => {
            const cy = window.meshcGraph.cy, node = cy.getElementById(id);
            cy.fit(node, 200);
            const p = node.renderedPosition(), box = cy.container().getBoundingClientRect();
            return [box.left + p.x, box.top + p.y];
        }""", node_id)
        self.page.mouse.click(x, y)

    def edge(self, edge_id: str) -> dict:
        return self.page.evaluate("""id => {
            const edge = window.meshcGraph.cy.getElementById(id);
            return {classes: edge.classes(), color: edge.style("line-color"), style: edge.style("line-style"),
                    visible: edge.visible()};
        }""", edge_id)

    def assert_clean(self, path: Path) -> None:
        assert self.problems == []
        assert [url for url in self.requests if url != path.as_uri()] == []  # nothing from the network

    def screenshot(self, artifacts: Path, name: str, capsys) -> Path:
        target = artifacts / f"{name}.png"
        self.page.screenshot(path=str(target))
        with capsys.disabled():
            print(f"\nscreenshot: {target}")
        return target


def graph_page(root: Path, out: Path) -> Path:
    result = meshc("graph", str(root), "--format", "html")
    assert result.exit_code == 0, result.output
    out.write_text(result.stdout, encoding="utf-8")
    return out


def expected_counts(graph: MeshGraph) -> tuple[int, int]:
    """Workloads and edges of the linked graph: every declared call, and one edge per gateway
    and service its ingress routes send to."""
    nodes = len(graph.services) + len(graph.gateways) + len(graph.externals)
    ingress = {(gateway, target.service) for gateway, routes in graph.gateway_routes.items()
               for route in routes for rule in route.rules for target in rule.destinations
               if target.service in graph.services}
    return nodes, sum(len(s.calls) for s in graph.services.values()) + len(ingress)


def linked(root: Path) -> MeshGraph:
    compiled = compile_mesh(root, skip_dirs=(root / "build",))
    assert compiled.graph is not None
    return compiled.graph


@pytest.mark.parametrize("example", ["bookinfo", "gateway-api-shop"])
def test_example_page_draws_the_graph_and_shows_routes(browser, artifacts, tmp_path, capsys, example) -> None:
    root = EXAMPLES / example
    graph = linked(root)
    path = graph_page(root, tmp_path / f"{example}.html")
    page = Page(browser, path)
    nodes, edges = expected_counts(graph)
    assert page.counts() == {"nodes": nodes, "edges": edges, "denied": 0}
    routed = next(s for s in graph.services.values() if graph.routes_for(s.key))
    page.click_node(service_workload(routed.key))
    assert page.page.inner_text("#details-title") == f"service {routed.key}"
    shown = page.page.eval_on_selector_all("#details .route", "all => all.map(r => r.dataset.route)")
    assert shown == [str(route.key) for route in graph.routes_for(routed.key)]
    ports = page.page.inner_text("#details table")
    assert all(str(p.port) in ports for p in routed.spec.ports)
    for gateway in graph.gateways.values():
        page.click_node(gateway_workload(gateway.key))
        shown = page.page.eval_on_selector_all("#details .route", "all => all.map(r => r.dataset.route)")
        assert shown == [str(r.key) for r in graph.gateway_routes.get(gateway.key, ())]
    for external in graph.externals.values():
        assert page.page.evaluate("id => window.meshcGraph.cy.getElementById(id).parent().id()",
                                  external_id(external.key)) == "external-group"
    page.screenshot(artifacts, f"graph-{example}", capsys)
    page.assert_clean(path)


def test_denied_and_plain_text_calls_are_drawn_so(browser, artifacts, bookinfo_copy, tmp_path, capsys) -> None:
    (bookinfo_copy / "access" / "policies.yaml").write_text(
        (bookinfo_copy / "access" / "policies.yaml").read_text().replace(
            "name: reviews-callers\nservice: reviews\nallow:\n  - from: [productpage]",
            "name: reviews-callers\nservice: reviews\nallow:\n  - from: [ratings]"))
    ratings = bookinfo_copy / "services" / "ratings.yaml"
    ratings.write_text(ratings.read_text().replace("platform: dc1-vms\n", "platform: dc1-vms\nmtls: DISABLE\n"))
    page = Page(browser, graph_page(bookinfo_copy, tmp_path / "denied.html"))
    assert page.counts()["denied"] == 1
    denied = page.edge("call:bookinfo/productpage->bookinfo/reviews")
    assert "denied" in denied["classes"] and denied["style"] == "dashed"
    assert denied["color"] == "rgb(207,34,46)"
    plain = page.edge("call:bookinfo/reviews->bookinfo/ratings")
    assert "plaintext" in plain["classes"] and plain["style"] == "dotted"
    assert "allowed" in page.edge("call:bookinfo/productpage->bookinfo/details")["classes"]
    # the MESH310 error is located at the call: it is on the edge, and its details say why
    page.page.evaluate("id => { window.meshcGraph.cy.getElementById(id).emit('tap'); }",
                       "call:bookinfo/productpage->bookinfo/reviews")
    details = page.page.inner_text("#details")
    assert "state: denied (no allow rule names it)" in details
    assert "MESH310" in details
    assert "diagnostic-error" in denied["classes"]
    page.screenshot(artifacts, "graph-denied", capsys)
    assert page.problems == []


def test_a_thousand_services_lay_out_filter_and_search(browser, artifacts, tmp_path, capsys) -> None:
    root = generate_mesh(tmp_path / "mesh-1000", 1000)
    compiled = compile_mesh(root, finish=False)  # one compile for the page and the expectations
    graph = compiled.graph
    path = tmp_path / "mesh-1000.html"
    path.write_text(mesh_page(compiled), encoding="utf-8")
    page = Page(browser, path)
    nodes, edges = expected_counts(graph)
    assert (nodes, edges) == (1000, 3000)
    assert page.counts() == {"nodes": nodes, "edges": edges, "denied": 0}
    page.screenshot(artifacts, "graph-1000", capsys)
    page.page.select_option("#namespace", "ns3")
    in_ns3 = {s.key for s in graph.services.values() if s.namespace == "ns3"}
    touching = {(s.key, c) for s in graph.services.values() for c in s.calls if s.key in in_ns3 or c in in_ns3}
    neighbours = in_ns3 | {k for pair in touching for k in pair}
    assert page.counts()["nodes"] == len(neighbours)
    assert page.counts()["edges"] == len(touching)
    page.page.fill("#search", "svc-00013")
    assert page.page.get_attribute("#search", "data-matches") == "1"
    page.screenshot(artifacts, "graph-1000-ns3", capsys)
    assert page.problems == []


def test_hostile_text_stays_text(browser, bookinfo_copy, tmp_path) -> None:
    canary = bookinfo_copy / "routes" / "reviews-canary.yaml"
    quoted = HOSTILE.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    canary.write_text(canary.read_text().replace("exact: jason", f'exact: "{quoted}"'))
    (bookinfo_copy / "policies" / "hostile.yaml").write_text(
        f'apiVersion: meshc/v1\nkind: Policy\nname: hostile\nseverity: warning\nappliesTo: Service\n'
        f'rule: "false"\nmessage: "{quoted}"\n')
    path = graph_page(bookinfo_copy, tmp_path / "hostile.html")
    text = path.read_text(encoding="utf-8")
    assert text.count("</script>") == 3  # the data, the libraries, the page's script
    assert "\u2028" not in text and "\u2029" not in text
    page = Page(browser, path)
    assert page.page.evaluate("window.pwned") is None
    assert page.page.query_selector("#details img, #diagnostic-list img") is None
    page.click_node("service:bookinfo/reviews")
    details = page.page.inner_text("#details")
    assert "</script><script>window.pwned=1</script><!--" in details
    assert "<img src=x onerror=window.pwned=2> ]]>" in details
    assert HOSTILE in page.page.evaluate("window.meshcGraph.data.diagnostics.map(d => d.message).join('\\n')")
    assert "window.pwned=1" in page.page.inner_text("#diagnostic-list")
    page.assert_clean(path)


def _mermaid_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```mermaid\n(.*?)^```$", markdown, re.M | re.S)


def test_the_diff_comment_diagram_parses_with_mermaid(browser, tmp_path) -> None:
    if not MERMAID.is_file():
        missing_validator(f"{MERMAID} is absent: run `npm ci --prefix tests/browser` (.ci/run does)")
    from tests.test_gitops_diff_markdown import HOSTILE_FILE, HOSTILE_REF, renamed_route_change

    _, hostile = renamed_route_change(tmp_path / "hostile", HOSTILE_FILE, HOSTILE_REF)
    big = git_mesh(tmp_path / "big", generate_mesh(tmp_path / "generated", 40))
    for path in sorted((big.root / "services").rglob("*.yaml")):
        path.write_text(path.read_text().replace("timeout: 10s", "timeout: 9s"))
    big.commit("timeouts")
    huge = meshc("diff", str(big.root), "--base", "HEAD~1", "--head", "HEAD", "--format", "markdown").stdout
    diagrams = _mermaid_blocks(hostile) + _mermaid_blocks(huge)
    assert len(diagrams) == 2
    page = browser.new_page()
    page.set_content("<!DOCTYPE html><body></body>")
    page.add_script_tag(path=str(MERMAID))
    parse = """async text => {
        try { await window.mermaid.parse(text); return "ok"; } catch (error) { return String(error.message || error); }
    }"""
    for diagram in diagrams:
        assert page.evaluate(parse, diagram) == "ok", diagram
    # the parser does reject a broken diagram
    assert page.evaluate(parse, 'flowchart LR\n  a["x"]] --> b') != "ok"
    rendered = page.evaluate("""async text => {
        window.mermaid.initialize({startOnLoad: false, securityLevel: "strict"});
        const {svg} = await window.mermaid.render("blast", text);
        return svg;
    }""", diagrams[1])
    assert rendered.count('class="node ') >= 2
    page.close()



def test_a_placed_service_is_drawn_in_each_platform(browser, artifacts, tmp_path, capsys) -> None:
    """examples/multicluster-shop: a service placed on several platforms is one node in each
    platform's group (not only its first), and a caller's edges reach each placement its
    platform sends to (compiler.evaluate.failover_tiers)."""
    from compiler.evaluate import failover_tiers

    root = EXAMPLES / "multicluster-shop"
    graph = linked(root)
    path = graph_page(root, tmp_path / "multicluster-shop.html")
    page = Page(browser, path)

    def places(service) -> list:
        return [p.platform for p in service.placements] if service.placed else [service.platform]

    def reached(caller_platform, callee) -> int:
        return sum(len(tier) for tier in failover_tiers(caller_platform, callee)) if callee.placed else 1

    nodes = sum(len(places(s)) for s in graph.services.values()) + len(graph.gateways) + len(graph.externals)
    calls = sum(reached(platform, graph.services[c]) if c in graph.services else 1
                for s in graph.services.values() for platform in places(s) for c in s.calls)
    ingress = {(key, target.service) for key, routes in graph.gateway_routes.items() for route in routes
               for rule in route.rules for target in rule.destinations if target.service in graph.services}
    edges = calls + sum(reached(graph.gateways[key].platform, graph.services[callee]) for key, callee in ingress)
    assert page.counts() == {"nodes": nodes, "edges": edges, "denied": 0}
    placed = [s for s in graph.services.values() if s.placed]
    assert placed
    for service in placed:
        for platform in places(service):
            node_id = f"{service_workload(service.key)}@{platform.name}"
            assert page.page.evaluate("id => window.meshcGraph.cy.getElementById(id).parent().id()",
                                      node_id) == f"namespace:{platform.name}/{service.namespace}"
        last = service.placements[-1]
        page.click_node(f"{service_workload(service.key)}@{last.platform.name}")
        assert page.page.inner_text("#details-title") == f"service {service.key}"
        shown = page.page.inner_text("#details-body")
        assert f"one of its placements on {', '.join(p.name for p in places(service))}" in shown
        assert f"failover priority {last.priority}" in shown
    # an edge to a placement of a later tier says so (the tap handler shows an edge's details)
    caller = next(s for s in placed if s.calls and graph.services.get(s.calls[0]) in placed)
    callee = graph.services[caller.calls[0]]
    tiers = failover_tiers(caller.placements[0].platform, callee)
    later = tiers[1][0].placement.platform.name
    edge_id = f"call:{caller.key}@{caller.placements[0].platform.name}->{callee.key}@{later}"
    page.page.evaluate("id => window.meshcGraph.cy.getElementById(id).emit('tap')", edge_id)
    assert "failover tier 1 of the caller's placements" in page.page.inner_text("#details-body")
    page.screenshot(artifacts, "graph-multicluster-shop", capsys)
    page.assert_clean(path)
