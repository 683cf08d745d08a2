"""`meshc diff`: per target and per workload artifact changes, and the proxies each intent change reaches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compiler.affected import Reach
from compiler.build import compile_mesh
from targets import REGISTRY
from tests.conftest import BOOKINFO, EXAMPLES
from tests.gitops_support import git_mesh, meshc

PRODUCTPAGE = "service:bookinfo/productpage"
REVIEWS = "service:bookinfo/reviews"


@pytest.fixture
def repo(tmp_path: Path):
    return git_mesh(tmp_path / "repo")


def _json_diff(*args: str) -> dict:
    result = meshc("diff", "--format", "json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _intent(diff: dict, kind: str, name: str) -> dict:
    return next(i for i in diff["intents"] if (i["kind"], i["name"]) == (kind, name))


def test_a_route_change_lists_the_callers_sidecars(repo) -> None:
    repo.edit("routes/reviews-canary.yaml", "exact: jason", "exact: bob")
    diff = _json_diff(str(repo.root))
    route = _intent(diff, "Route", "bookinfo/reviews-canary")
    assert route["status"] == "modified"
    assert route["location"]["file"] == "routes/reviews-canary.yaml"
    # productpage is the only service that calls reviews: its sidecar routes to reviews
    assert route["proxies"] == [PRODUCTPAGE, REVIEWS]
    assert [i["name"] for i in diff["intents"]] == ["bookinfo/reviews-canary"]
    if "envoy" in REGISTRY:
        changed = diff["targets"]["envoy"]
        assert PRODUCTPAGE in changed
        assert set(changed) <= set(route["reaches"])
        (entry,) = changed[PRODUCTPAGE]["files"]
        assert entry["status"] == "changed"
        removed = [ln for ln in entry["diff"].splitlines() if ln.startswith("-") and not ln.startswith("---")]
        added = [ln for ln in entry["diff"].splitlines() if ln.startswith("+") and not ln.startswith("+++")]
        assert [ln.split(":")[-1].strip() for ln in removed + added] == ['"jason"', '"bob"']


def test_every_changed_artifact_belongs_to_a_reached_workload(repo) -> None:
    repo.edit("services/reviews.yaml", "timeout: 10s", "timeout: 8s")
    repo.edit("access/policies.yaml", "methods: [GET, POST]", "methods: [GET]")
    diff = _json_diff(str(repo.root))
    reached = {w for intent in diff["intents"] for w in intent["reaches"]}
    for target, workloads in diff["targets"].items():
        assert set(workloads) <= reached, target
    policy = _intent(diff, "AccessPolicy", "bookinfo/productpage-ingress")
    assert policy["proxies"] == [PRODUCTPAGE]  # the callee's sidecar enforces it, nobody else's
    service = _intent(diff, "Service", "bookinfo/reviews")
    assert service["proxies"] == [PRODUCTPAGE, REVIEWS]


def test_text_output_has_summary_lines_and_unified_diffs(repo) -> None:
    repo.edit("routes/reviews-canary.yaml", "exact: jason", "exact: bob")
    result = meshc("diff", str(repo.root))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("meshc diff HEAD (")
    assert "modified Route/bookinfo/reviews-canary (routes/reviews-canary.yaml:3:7)" in out
    assert f"reaches proxies: {PRODUCTPAGE}, {REVIEWS}" in out
    if "envoy" in REGISTRY:
        assert f"  envoy {PRODUCTPAGE}: 1 changed (+1 -1)" in out
        assert "--- a/envoy/bookinfo/productpage.yaml" in out
    stat = meshc("diff", str(repo.root), "--stat")
    assert stat.exit_code == 0
    assert "--- a/" not in stat.stdout and "@@" not in stat.stdout
    assert f"reaches proxies: {PRODUCTPAGE}, {REVIEWS}" in stat.stdout


def test_two_committed_revisions(repo) -> None:
    first = repo.git("rev-parse", "HEAD")
    (repo.root / "services" / "mongodb.yaml").write_text(
        (repo.root / "services" / "mongodb.yaml").read_text().replace("maxConnections: 200", "maxConnections: 300"))
    second = repo.commit("mongodb limits")
    repo.edit("services/reviews.yaml", "timeout: 10s", "timeout: 8s")  # the working tree is not compared
    diff = _json_diff(str(repo.root), "--base", first, "--head", second)
    assert diff["base"] == {"commit": first, "dirty": False, "ref": first}
    assert diff["head"]["commit"] == second
    (change,) = diff["intents"]
    assert (change["kind"], change["name"]) == ("Service", "bookinfo/mongodb")
    # ratings calls mongodb; the public gateway routes db.example.com to it
    assert change["proxies"] == ["gateway:bookinfo/public", "service:bookinfo/mongodb", "service:bookinfo/ratings"]


def test_no_change(repo) -> None:
    result = meshc("diff", str(repo.root))
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-1] == "no changes"


def test_a_mesh_change_reaches_everything_and_a_moved_file_is_reported(repo) -> None:
    repo.edit("mesh.yaml", "samplingPercent: 1", "samplingPercent: 2")
    (repo.root / "external" / "books-api.yaml").rename(repo.root / "external" / "books.yaml")
    diff = _json_diff(str(repo.root), "--stat")
    assert _intent(diff, "Mesh", "bookinfo-mesh")["reachesEverything"] is True
    moved = _intent(diff, "ExternalService", "bookinfo/books-api")
    assert moved["status"] == "moved"
    assert moved["proxies"] == ["service:bookinfo/details"]
    assert all("diff" not in f for w in diff["targets"].values() for e in w.values() for f in e["files"])


def test_a_side_that_does_not_compile_fails_with_its_diagnostics(repo) -> None:
    repo.edit("services/reviews.yaml", "timeout: 10s", "timeout: soon")
    result = meshc("diff", str(repo.root))
    assert result.exit_code == 1
    assert "the working tree does not compile" in result.stderr
    assert "MESH107" in result.stdout


def test_reach_searches_both_graphs_for_a_removed_service() -> None:
    graph = compile_mesh(BOOKINFO, analyse=False).graph
    reach = Reach([graph])
    ratings = graph.services[next(k for k in graph.services if k.name == "ratings")]
    assert reach.workloads("Service", ratings.spec, "bookinfo") >= {
        "service:bookinfo/ratings", REVIEWS, "platform:dc1-vms", "platform:prod-k8s"}
    assert reach.workloads("Mesh", graph.mesh, "bookinfo") is None
    assert reach.workloads("Policy", next(iter(graph.policies.values())).spec, "bookinfo") == set()


def _changed_lines(entry: dict) -> list[str]:
    return [line for line in entry["diff"].splitlines()
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def test_the_way_from_permissive_to_strict_is_a_reviewable_diff(tmp_path: Path) -> None:
    # docs/intents.md, "From PERMISSIVE to STRICT", on the adopted cluster example
    repo = git_mesh(tmp_path / "repo", EXAMPLES / "bookinfo-cluster")
    # step 3: one service first; its callers now send Istio mTLS, its sidecar requires it
    repo.edit("services/ratings.yaml", "serviceAccount: bookinfo-ratings",
              "serviceAccount: bookinfo-ratings\nmtls: STRICT")
    diff = _json_diff(str(repo.root))
    (entry,) = diff["targets"]["kubernetes"]["service:bookinfo/ratings"]["files"]
    assert entry["path"] == "kubernetes/cluster/bookinfo/ratings.yaml"
    assert _changed_lines(entry) == ["+  trafficPolicy:", "+    tls:", "+      mode: ISTIO_MUTUAL",
                                     "-    mode: PERMISSIVE", "+    mode: STRICT"]
    assert set(diff["targets"]["kubernetes"]) == {"service:bookinfo/ratings"}
    repo.commit("ratings is STRICT")
    # step 4: the whole mesh; every file that changes is listed, per workload
    repo.edit("mesh.yaml", "mtls: PERMISSIVE", "mtls: STRICT")
    diff = _json_diff(str(repo.root))
    kubernetes = diff["targets"]["kubernetes"]
    assert set(kubernetes) == {"platform:cluster", "service:bookinfo/details", "service:bookinfo/productpage",
                               "service:bookinfo/reviews"}  # ratings already was
    (namespace,) = kubernetes["platform:cluster"]["files"]
    assert namespace["path"] == "kubernetes/cluster/bookinfo/namespace/defaults.yaml"
    assert _changed_lines(namespace) == ["-    mode: PERMISSIVE", "+    mode: STRICT"]
    (reviews,) = kubernetes["service:bookinfo/reviews"]["files"]
    assert "+      mode: ISTIO_MUTUAL" in _changed_lines(reviews)
    assert [line for line in _changed_lines(reviews) if line.endswith(("PERMISSIVE", "    mode: STRICT"))] == [
        "-    mode: PERMISSIVE", "+    mode: STRICT"]
