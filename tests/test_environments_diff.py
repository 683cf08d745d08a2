"""Environments across revisions: `meshc diff` per environment and between two environments
(naming the proxies), and `build --changed-since` equal to a full build whether the base or one
environment's overlay changed (docs/cli.md, "Environments")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.gitops_support import GitMesh, meshc, tree
from tests.test_environments import shop


def repository(top: Path) -> GitMesh:
    top.mkdir(parents=True)
    shop(top / "mesh")
    repo = GitMesh(top)
    repo.git("init", "-q", "-b", "main")
    repo.git("config", "user.name", "meshc tests")
    repo.git("config", "user.email", "tests@meshc.invalid")
    repo.git("config", "commit.gpgsign", "false")
    repo.commit("the shop")
    return repo


def test_an_overlay_change_shows_in_its_environment_only(tmp_path: Path) -> None:
    repo = repository(tmp_path / "repo")
    repo.edit("environments/prod/api.yaml", "9443", "9444")
    result = meshc("diff", str(repo.root), "--format", "json", "--stat")
    assert result.exit_code == 0, result.output
    sides = {d["head"]["environment"]: d for d in json.loads(result.output)["environments"]}
    assert set(sides) == {"staging", "prod"}
    assert sides["staging"]["intents"] == [] and sides["staging"]["targets"] == {}
    [intent] = sides["prod"]["intents"]
    assert (intent["kind"], intent["name"], intent["status"]) == ("Service", "default/api", "modified")
    assert intent["proxies"] == ["service:default/api", "service:default/web"]
    assert "service:default/api" in sides["prod"]["targets"]["envoy"]


def test_a_base_change_shows_in_every_environment(tmp_path: Path) -> None:
    repo = repository(tmp_path / "repo")
    repo.edit("services/shop.yaml", "timeout: 2s", "timeout: 3s")
    result = meshc("diff", str(repo.root), "--stat")
    assert result.exit_code == 0, result.output
    staging, prod = result.output.split("meshc diff ")[1:]
    assert "environment staging" in staging and "modified Service/default/api" in staging
    # prod's overlay sets the timeout: the base change does not reach its artifacts
    assert "environment prod" in prod and "modified Service/default/api" not in prod
    assert meshc("diff", str(repo.root), "--env", "prod", "--quiet").exit_code == 0
    assert meshc("diff", str(repo.root), "--env", "staging", "--quiet").exit_code == 1


def test_two_environments_compared_name_the_proxies_that_differ(tmp_path: Path) -> None:
    repo = repository(tmp_path / "repo")
    result = meshc("diff", str(repo.root), "--env", "staging", "--env", "prod", "--stat")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("meshc diff working tree") and lines[0].endswith("environment prod")
    assert ", environment staging -> " in lines[0]
    assert "  modified Service/default/api (services/shop.yaml:15:7)" in lines
    assert "    reaches proxies: service:default/api, service:default/web" in lines
    assert "  modified Mesh/shop (mesh.yaml:3:7)" in lines  # prod's mtls: STRICT
    data = json.loads(meshc("diff", str(repo.root), "--env", "staging", "--env", "prod", "--format", "json").output)
    assert (data["base"]["environment"], data["head"]["environment"]) == ("staging", "prod")
    changed = {path["path"] for workloads in data["targets"].values() for w in workloads.values() for path in w["files"]}
    assert "envoy/default/api.yaml" in changed
    assert meshc("diff", str(repo.root), "--env", "prod", "--env", "prod", "--quiet").exit_code == 0
    assert meshc("diff", str(repo.root), "--env", "qa", "--env", "prod").exit_code == 2


@pytest.mark.parametrize("change", ["base", "overlay", "other overlay", "added document", "overlay of equal value",
                                    "overlay removed"])
def test_changed_since_equals_a_full_build(tmp_path: Path, change: str) -> None:
    repo = repository(tmp_path / "repo")
    out = tmp_path / "out"
    assert meshc("build", str(repo.root), "-o", str(out)).exit_code == 0
    if change == "base":
        repo.edit("services/shop.yaml", "port: 8080", "port: 8081")
    elif change == "overlay":
        repo.edit("environments/prod/api.yaml", "9443", "9444")
    elif change == "other overlay":
        repo.edit("environments/staging/api.yaml", "9091", "9092")
    elif change == "overlay of equal value":  # the merged intents stay equal; the artifacts' sources do not
        (repo.root / "environments/staging/mesh.yaml").write_text("kind: Mesh\nname: shop\nmtls: PERMISSIVE\n")
    elif change == "overlay removed":
        (repo.root / "environments/prod/api.yaml").unlink()
    else:
        (repo.root / "environments/prod/extra.yaml").write_text(
            "$patch: add\nkind: Service\nname: audit\nplatform: k8s\nports: [{name: http, port: 7070, protocol: http}]\n")
    result = meshc("build", str(repo.root), "-o", str(out), "--changed-since", "HEAD")
    assert result.exit_code == 0, result.output
    full = tmp_path / "full"
    assert meshc("build", str(repo.root), "-o", str(full)).exit_code == 0
    assert tree(out) == tree(full)
    notes = result.stderr
    if change == "overlay":
        assert "[staging]" in notes and "re-emitting 0 workload(s)" in notes.split("[staging]")[1].splitlines()[0]
    if change == "other overlay":
        assert "re-emitting 0 workload(s)" in notes.split("[prod]")[1].splitlines()[0]
