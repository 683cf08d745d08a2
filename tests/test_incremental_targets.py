"""`build --changed-since` equals a full build for every registered target, one target at a
time, across the kinds of intent change, and for a target the test registers itself
(tests/inventory_target.py): what an incremental build re-emits is derived from what
artifacts record and from the graph (targets/__init__.py states the contract), so a new
target needs no change to the planner.

Each case commits bookinfo (after an optional set-up change), builds one target into a
directory outside the repository, changes the working tree, rebuilds with
`--changed-since HEAD`, builds the same tree in full elsewhere and compares the two trees
byte for byte, manifest.json included.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import compiler.affected
from targets import REGISTRY, TargetInfo
from tests.gitops_support import GitMesh, git_mesh, meshc, tree
from tests.test_gitops_incremental import add_fixture

INVENTORY = TargetInfo("inventory", "tests.inventory_target", "a target registered by the tests")

Change = Callable[[GitMesh], None]


def _calls_payments(repo: GitMesh) -> None:
    add_fixture(repo, "payments-api.yaml", "external")
    repo.edit("services/ratings.yaml", "calls: [mongodb]", "calls: [mongodb, payments-api]")


# kind of change -> (set-up committed before the first build, or None; the change)
CHANGES: dict[str, tuple[Change | None, Change]] = {
    "route-modified": (None, lambda m: m.edit("routes/reviews-canary.yaml", "exact: jason", "exact: bob")),
    "ingress-route-modified": (None, lambda m: m.edit("routes/ingress.yaml", "{path: {exact: /login}}",
                                                      "{path: {exact: /signin}}")),
    "service-modified": (None, lambda m: m.edit("services/reviews.yaml", "timeout: 10s", "timeout: 8s")),
    "service-added": (None, lambda m: add_fixture(m, "recommendations.yaml", "services")),
    "service-removed": (lambda m: add_fixture(m, "recommendations.yaml", "services"),
                        lambda m: (m.root / "services" / "recommendations.yaml").unlink()),
    "access-policy-modified": (None, lambda m: m.edit("access/policies.yaml", "methods: [GET, POST]", "methods: [GET]")),
    "access-policy-added": (lambda m: add_fixture(m, "recommendations.yaml", "services"),
                            lambda m: add_fixture(m, "recommendations-callers.yaml", "access")),
    "external-modified": (None, lambda m: m.edit("external/books-api.yaml", "originate: false", "originate: true")),
    "external-added-and-called": (None, _calls_payments),
    "gateway-modified": (None, lambda m: m.edit("gateways/public.yaml", "port: 80,", "port: 8080,")),
    "intent-moved": (None, lambda m: (m.root / "external" / "books-api.yaml").rename(m.root / "external" / "books.yaml")),
    "policy-modified": (None, lambda m: m.edit("policies/timeouts.yaml", "duration('30s')", "duration('31s')")),
    "comment-only": (None, lambda m: m.edit("access/policies.yaml", "# Each service", "# Every service")),
    "mesh": (None, lambda m: m.edit("mesh.yaml", "samplingPercent: 1", "samplingPercent: 2")),
}


@pytest.fixture
def inventory_registered(monkeypatch) -> None:
    monkeypatch.setitem(REGISTRY, INVENTORY.name, INVENTORY)


def _build(repo: GitMesh, out: Path, target: str, *extra: str) -> str:
    result = meshc("build", str(repo.root), "-o", str(out), "-t", target, *extra)
    assert result.exit_code == 0, result.output
    return result.stderr


def _incremental_and_full(tmp_path: Path, target: str, change: str) -> tuple[dict, dict, str]:
    set_up, edit = CHANGES[change]
    repo = git_mesh(tmp_path / "repo")
    if set_up is not None:
        set_up(repo)
        repo.commit(f"set up {change}")
    out = tmp_path / "out"
    _build(repo, out, target)
    edit(repo)
    stderr = _build(repo, out, target, "--changed-since", "HEAD")
    full = tmp_path / "full"
    _build(repo, full, target)
    return tree(out), tree(full), stderr


@pytest.mark.parametrize("change", sorted(CHANGES))
@pytest.mark.parametrize("target", [*sorted(REGISTRY), INVENTORY.name])
def test_incremental_build_of_one_target_equals_its_full_build(
        tmp_path: Path, target: str, change: str, inventory_registered: None) -> None:
    incremental, full, stderr = _incremental_and_full(tmp_path, target, change)
    assert incremental == full
    assert any(path.startswith(f"{target}/") for path in full), f"{target} emitted nothing: the case proves nothing"
    expected = "rebuilding every workload" if change == "mesh" else "re-emitting"
    assert expected in stderr, stderr


def test_the_recorded_sources_are_what_keeps_the_registered_target_current(
        tmp_path: Path, inventory_registered: None, monkeypatch) -> None:
    """Without the rule "re-emit what was compiled from a touched file", the graph alone does
    not know that a service's inventory lists the ports of the gateways routing to it (a
    Gateway change reaches only the gateway): the grid above has teeth."""
    derived = compiler.affected.rebuilt_workloads
    monkeypatch.setattr(compiler.affected, "rebuilt_workloads",
                        lambda records, *rest: derived((), *rest))
    incremental, full, _ = _incremental_and_full(tmp_path, INVENTORY.name, "gateway-modified")
    stale = "inventory/services/bookinfo/productpage.json"
    assert incremental[stale] != full[stale]
