"""`meshc graph --format html` without a browser: the data Python decides (edge states,
diagnostic placement, artifacts per workload), the inert embedding, and the vendored assets.
tests/test_browser_pages.py opens the same pages in Chromium."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.build import compile_mesh, emit
from compiler.graph_page import ASSETS, page_data, render_page, script_json
from tests.conftest import BOOKINFO, REPO
from tests.gitops_support import meshc

ASSET_DIR = REPO / "compiler" / "assets"
HOSTILE = ["</script><script>alert(1)</script>", "</SCRIPT >", "<!--", "]]>", "\u2028\u2029", "@@SCRIPT@@", "&lt;"]


def embedded(page: str) -> dict:
    return json.loads(re.search(r'<script type="application/json" id="mesh-data">(.*?)</script>', page, re.S).group(1))


def data_of(root: Path) -> dict:
    compiled = compile_mesh(root)
    assert compiled.graph is not None
    artifacts = [] if compiled.report.has_errors else emit(compiled.graph, compiled.report)
    return page_data(compiled.graph, compiled.report.sorted(), artifacts)


def edge(data: dict, edge_id: str) -> dict:
    return next(e for e in data["edges"] if e["id"] == edge_id)


@pytest.mark.parametrize("text", HOSTILE)
def test_script_json_is_inert_and_round_trips(text: str) -> None:
    encoded = script_json({"name": text, text: [text]})
    assert not re.search(r"</|<!--|]]>|[\u2028\u2029]", encoded, re.I)
    assert json.loads(encoded) == {"name": text, text: [text]}


def test_a_value_that_looks_like_a_placeholder_is_not_substituted() -> None:
    data = data_of(BOOKINFO)
    data["mesh"] = "@@SCRIPT@@ </script> <b>"
    page = render_page(data)
    assert embedded(page)["mesh"] == "@@SCRIPT@@ </script> <b>"
    assert "<title>@@SCRIPT@@ &lt;/script&gt; &lt;b&gt;: meshc graph</title>" in page
    assert page.count("<script") == 3 and page.count("</script>") == 3


def test_states_come_from_authorisation_and_mtls(bookinfo_copy: Path) -> None:
    data = data_of(bookinfo_copy)
    assert {e["state"] for e in data["edges"]} == {"allowed"}
    policies = bookinfo_copy / "access" / "policies.yaml"
    policies.write_text(policies.read_text().replace(
        "name: reviews-callers\nservice: reviews\nallow:\n  - from: [productpage]",
        "name: reviews-callers\nservice: reviews\nallow:\n  - from: [ratings]"))
    for name, mode in (("ratings", "DISABLE"), ("details", "PERMISSIVE")):
        service = bookinfo_copy / "services" / f"{name}.yaml"
        service.write_text(re.sub(r"^(platform: .*)$", rf"\1\nmtls: {mode}", service.read_text(), count=1, flags=re.M))
    data = data_of(bookinfo_copy)
    denied = edge(data, "call:bookinfo/productpage->bookinfo/reviews")
    assert (denied["state"], denied["authorization"], denied["denial"]) == ("denied", "denied", "no allow rule names it")
    assert edge(data, "call:bookinfo/reviews->bookinfo/ratings")["state"] == "plaintext"
    assert edge(data, "call:bookinfo/productpage->bookinfo/details")["state"] == "permissive"
    assert edge(data, "call:bookinfo/ratings->bookinfo/mongodb")["state"] == "allowed"
    # the call's MESH310 sits on the edge; the stale grant on the AccessPolicy's service
    [mesh310] = [d for d in data["diagnostics"] if d["code"] == "MESH310"]
    assert mesh310["on"] == denied["id"] and denied["severity"] == "error"
    [stale] = [d for d in data["diagnostics"] if d["code"] == "MESH311"]
    assert stale["on"] == "service:bookinfo/reviews"


def test_every_workload_lists_the_artifacts_it_gets() -> None:
    compiled = compile_mesh(BOOKINFO)
    artifacts = emit(compiled.graph, compiled.report)
    data = page_data(compiled.graph, compiled.report.sorted(), artifacts)
    listed = {(a["target"], a["path"]) for n in data["nodes"] for a in n["details"].get("artifacts", [])}
    listed |= {(a["target"], a["path"]) for g in data["groups"] for a in g["artifacts"]}
    assert listed == {(a.target, a.path) for a in artifacts}
    reviews = next(n for n in data["nodes"] if n["id"] == "service:bookinfo/reviews")
    assert [r["name"] for r in reviews["details"]["routes"]] == ["bookinfo/reviews-canary"]
    assert reviews["details"]["routes"][0]["rules"][0]["match"] == [{"headers": {"end-user": {"exact": "jason"}}}]


def test_the_cli_writes_one_self_contained_page() -> None:
    result = meshc("graph", str(BOOKINFO), "--format", "html")
    assert result.exit_code == 0, result.output
    page = result.stdout
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # nothing loaded from elsewhere
    assert "default-src 'none'" in page
    assert embedded(page)["mesh"] == "bookinfo-mesh"


def test_vendored_assets_match_their_readme_and_keep_their_licences() -> None:
    readme = (ASSET_DIR / "README.md").read_text(encoding="utf-8")
    for name in ASSETS[:2]:
        content = (ASSET_DIR / name).read_bytes()
        assert f"`{hashlib.sha256(content).hexdigest()}`" in readme, name
        assert not re.search(rb"</script|<!--", content, re.I), f"{name} would end or disturb its <script>"
    for licence in ("cytoscape", "cytoscape-dagre", "dagre", "graphlib"):
        assert "Permission is hereby granted" in (ASSET_DIR / f"LICENSE.{licence}").read_text(encoding="utf-8")


def test_the_assets_ship_as_package_data(tmp_path: Path) -> None:
    """setuptools' own build_py, as a wheel build runs it, copies the assets into the package."""
    script = ("import setuptools; setuptools.setup(script_args=['-q', 'egg_info', '--egg-base', "
              f"{str(tmp_path)!r}, 'build_py', '--build-lib', {str(tmp_path / 'lib')!r}])")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    shipped = {p.name for p in (tmp_path / "lib" / "compiler" / "assets").iterdir()}
    assert {*ASSETS, "graph-page.html", "README.md", "LICENSE.cytoscape", "LICENSE.dagre"} <= shipped


def test_a_placed_service_is_drawn_on_each_of_its_platforms() -> None:
    """examples/multicluster-shop: catalog runs on east, west and the legacy VMs; frontend on
    east and west calls it. Each placement is a node in its platform's group, and each of
    frontend's nodes has an edge to every placement its platform reaches, with the failover
    tier the evaluator gives it (compiler.evaluate.failover_tiers)."""
    from compiler.evaluate import failover_tiers
    from compiler.graph import Key

    root = REPO / "examples" / "multicluster-shop"
    compiled = compile_mesh(root, skip_dirs=(root / "build",))
    graph = compiled.graph
    data = page_data(graph, compiled.report.sorted(), emit(graph, compiled.report))
    nodes = {n["id"]: n for n in data["nodes"]}
    catalog, frontend = (graph.services[Key("shop", name)] for name in ("catalog", "frontend"))
    for service in (catalog, frontend):
        for placement in service.placements:
            node = nodes[f"service:{service.key}@{placement.platform.name}"]
            assert node["parent"] == f"namespace:{placement.platform.name}/shop"
            assert node["details"]["platform"] == placement.platform.name
            assert node["details"]["placement"]["platforms"] == [p.platform.name for p in service.placements]
    assert f"service:{catalog.key}" not in nodes  # no node of no platform
    edges = {(e["source"], e["target"]): e.get("tier") for e in data["edges"]}
    for placement in frontend.placements:
        source = f"service:{frontend.key}@{placement.platform.name}"
        drawn = {target.rsplit("@", 1)[1]: tier for (s, target), tier in edges.items()
                 if s == source and target.startswith(f"service:{catalog.key}@")}
        tiers = failover_tiers(placement.platform, catalog)
        assert drawn == {r.placement.platform.name: tier for tier, reached in enumerate(tiers) for r in reached}
        assert len(drawn) >= 2
