"""`meshc build --changed-since REV`: only affected workloads re-emitted, the directory equal to a full build.

Each case builds a committed mesh in full, changes the working tree, then runs the
incremental build and a full build of the same tree into another directory: the two must be
byte-identical (manifest.json included), and files of unaffected workloads must be the very
same files as before (same inode: carried over, not rewritten).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench.generate import generate_mesh
from tests.gitops_support import GitMesh, git_mesh, meshc, tree

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "incremental"


def add_fixture(repo: GitMesh, name: str, directory: str) -> None:
    """Copy tests/fixtures/incremental/NAME into the mesh's DIRECTORY."""
    (repo.root / directory).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(FIXTURES / name, repo.root / directory / name)


# (case, change to the working tree, workloads whose files must not be rewritten)
CASES = {
    "route": (lambda m: m.edit("routes/reviews-canary.yaml", "exact: jason", "exact: bob"),
              ["service:bookinfo/details", "service:bookinfo/mongodb", "service:bookinfo/ratings"]),
    "service-resilience": (lambda m: m.edit("services/reviews.yaml", "timeout: 10s", "timeout: 8s"),
                           ["service:bookinfo/details", "service:bookinfo/mongodb"]),
    # every service's AccessPolicy is in access/policies.yaml, and artifacts record the files
    # they were compiled from: each service's files are re-emitted, the gateway's are not
    "access-policy": (lambda m: m.edit("access/policies.yaml", "methods: [GET, POST]", "methods: [GET]"),
                      ["gateway:bookinfo/public"]),
    "external-service": (lambda m: m.edit("external/books-api.yaml", "originate: false", "originate: true"),
                         ["service:bookinfo/mongodb", "service:bookinfo/reviews"]),
    # productpage's account is the principal of the AccessPolicies of details and reviews, which
    # productpage calls: their sidecars and AuthorizationPolicies change too
    "service-account": (lambda m: m.edit("services/productpage.yaml", "owner: team-frontend",
                                         "owner: team-frontend\nserviceAccount: bookinfo-productpage"),
                        ["service:bookinfo/mongodb", "service:bookinfo/ratings"]),
    "gateway": (lambda m: m.edit("gateways/public.yaml", "port: 80,", "port: 8080,"),
                ["service:bookinfo/details", "service:bookinfo/ratings"]),
    "service-added": (lambda m: add_fixture(m, "recommendations.yaml", "services"),
                      ["service:bookinfo/details", "service:bookinfo/reviews"]),
    "file-renamed": (lambda m: (m.root / "external" / "books-api.yaml").rename(m.root / "external" / "books.yaml"),
                     ["service:bookinfo/mongodb", "service:bookinfo/reviews"]),
    "comment-only": (lambda m: m.edit("access/policies.yaml", "# Each service", "# Every service"), []),
    "mesh": (lambda m: m.edit("mesh.yaml", "samplingPercent: 1", "samplingPercent: 2"), []),
}


def _inodes(directory: Path) -> dict[str, int]:
    return {p.relative_to(directory).as_posix(): p.stat().st_ino for p in directory.rglob("*") if p.is_file()}


def _workload_files(directory: Path) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for entry in json.loads((directory / "manifest.json").read_bytes())["artifacts"]:
        out.setdefault(entry["workload"], set()).add(entry["path"])
    return out


def _incremental_equals_full(repo: GitMesh, out: Path, tmp_path: Path, since: str = "HEAD"):
    """Run `build --changed-since`, then a full build elsewhere; the two trees must be equal."""
    result = meshc("build", str(repo.root), "--changed-since", since)
    assert result.exit_code == 0, result.output
    full = tmp_path / "full"
    assert meshc("build", str(repo.root), "-o", str(full)).exit_code == 0
    assert tree(out) == tree(full)
    return result


def _built(repo: GitMesh) -> Path:
    result = meshc("build", str(repo.root))
    assert result.exit_code == 0, result.output
    return repo.root / "build"


@pytest.mark.parametrize("case", sorted(CASES))
def test_incremental_build_equals_full_build(tmp_path: Path, case: str) -> None:
    change, untouched = CASES[case]
    repo = git_mesh(tmp_path / "repo")
    out = _built(repo)
    before = _inodes(out)
    files_of = _workload_files(out)
    change(repo)

    result = meshc("build", str(repo.root), "--changed-since", "HEAD")
    assert result.exit_code == 0, result.output
    full = tmp_path / "full"
    assert meshc("build", str(repo.root), "-o", str(full)).exit_code == 0
    assert tree(out) == tree(full)

    after = _inodes(out)
    for workload in untouched:
        assert files_of.get(workload), f"no target emits {workload}: the case proves nothing"
        for path in files_of[workload]:
            assert after[path] == before[path], f"{path} of unaffected {workload} was rewritten"
    if case == "mesh":
        assert "the Mesh changed; rebuilding every workload" in result.stderr
    else:
        assert "re-emitting" in result.stderr


def test_route_change_re_emits_only_the_callers_and_the_service(tmp_path: Path) -> None:
    repo = git_mesh(tmp_path / "repo")
    out = _built(repo)
    before = _inodes(out)
    files_of = _workload_files(out)
    CASES["route"][0](repo)
    assert meshc("build", str(repo.root), "--changed-since", "HEAD").exit_code == 0
    after = _inodes(out)
    rewritten = {w for w, paths in files_of.items() if any(after.get(p) != before[p] for p in paths)}
    reached = {"service:bookinfo/reviews", "service:bookinfo/productpage"}
    assert rewritten - {w for w in rewritten if w.startswith("platform:")} <= reached
    assert "service:bookinfo/productpage" in rewritten


def test_synthetic_mesh_incremental_build_equals_full_build(tmp_path: Path) -> None:
    source = generate_mesh(tmp_path / "generated", 30)
    repo = git_mesh(tmp_path / "repo", source)
    out = _built(repo)
    repo.edit("services/ns4/svc-00004.yaml", "timeout: 10s", "timeout: 7s")
    result = _incremental_equals_full(repo, out, tmp_path)
    assert "1 intent file(s) changed" in result.stderr


def test_a_committed_change_since_an_older_revision(tmp_path: Path) -> None:
    repo = git_mesh(tmp_path / "repo")
    first = repo.git("rev-parse", "HEAD")
    CASES["route"][0](repo)
    repo.commit("route change")
    out = _built(repo)
    CASES["service-resilience"][0](repo)
    result = meshc("build", str(repo.root), "--changed-since", first)
    assert result.exit_code == 0, result.output
    assert "re-emitting" in result.stderr
    full = tmp_path / "full"
    assert meshc("build", str(repo.root), "-o", str(full)).exit_code == 0
    assert tree(out) == tree(full)


def _fallback(repo: GitMesh, since: str = "HEAD") -> str:
    result = meshc("build", str(repo.root), "--changed-since", since)
    assert result.exit_code == 0, result.output
    assert "doing a full build" in result.stderr
    return result.stderr


def test_falls_back_without_an_earlier_build(tmp_path: Path) -> None:
    repo = git_mesh(tmp_path / "repo")
    assert "holds no readable manifest.json" in _fallback(repo)
    assert (repo.root / "build" / "manifest.json").is_file()


def test_falls_back_when_the_earlier_build_was_of_uncommitted_intents(tmp_path: Path) -> None:
    repo = git_mesh(tmp_path / "repo")
    CASES["route"][0](repo)
    _built(repo)
    CASES["service-resilience"][0](repo)
    assert "uncommitted changes, not from the intents of HEAD" in _fallback(repo)


def test_committed_artifacts_workflow_goes_incremental(tmp_path: Path) -> None:
    """Build before committing (the manifest records a dirty tree and the blob ids it read),
    commit intents and artifacts together, change again: the next build is incremental."""
    repo = git_mesh(tmp_path / "repo")
    CASES["route"][0](repo)
    out = _built(repo)
    assert json.loads((out / "manifest.json").read_bytes())["source"]["dirty"] is True
    repo.commit("route change, with its artifacts")
    before = _inodes(out)
    CASES["service-resilience"][0](repo)
    result = _incremental_equals_full(repo, out, tmp_path)
    assert "1 intent file(s) changed" in result.stderr
    assert _inodes(out)["envoy/bookinfo/mongodb.yaml"] == before["envoy/bookinfo/mongodb.yaml"]


def test_falls_back_when_the_build_predates_the_revision(tmp_path: Path) -> None:
    repo = git_mesh(tmp_path / "repo")
    _built(repo)
    CASES["route"][0](repo)
    repo.commit("route change")
    assert "does not contain HEAD" in _fallback(repo)


def test_falls_back_when_a_built_file_was_edited(tmp_path: Path) -> None:
    repo = git_mesh(tmp_path / "repo")
    out = _built(repo)
    details = next(p for p in sorted(out.rglob("*")) if p.is_file() and "details" in p.name)
    details.write_bytes(details.read_bytes() + b"\n")
    CASES["route"][0](repo)
    assert "was changed after it was built" in _fallback(repo)
    full = tmp_path / "full"
    assert meshc("build", str(repo.root), "-o", str(full)).exit_code == 0
    assert tree(out) == tree(full)


def test_an_unknown_revision_is_a_usage_error(tmp_path: Path) -> None:
    repo = git_mesh(tmp_path / "repo")
    _built(repo)
    result = meshc("build", str(repo.root), "--changed-since", "no-such-branch")
    assert result.exit_code == 2
    assert "'no-such-branch' does not name a commit" in result.output


def test_a_target_that_ran_empty_counts_as_built(tmp_path: Path) -> None:
    """A mesh without vm services built with every target, then its first vm service added:
    the vm target ran and wrote nothing (manifest.json `emptyTargets`), so the build stays
    incremental, re-emits the new service (and its platform) alone and equals a full build."""
    from compiler.scaffold import write_starter

    starter = tmp_path / "starter"
    write_starter(starter)
    repo = git_mesh(tmp_path / "repo", starter)
    out = _built(repo)
    repo.edit("mesh.yaml", "platforms:\n", "platforms:\n  - {name: vms, kind: vm}\n")
    repo.commit("a vm platform")
    assert meshc("build", str(repo.root)).exit_code == 0
    assert "vm" in json.loads((out / "manifest.json").read_bytes())["emptyTargets"]
    (repo.root / "services" / "batch.yaml").write_text(
        "apiVersion: meshc/v1\nkind: Service\nname: batch\nplatform: vms\n"
        "ports: [{name: http, port: 8080, protocol: http}]\nendpoints: [{address: 10.0.0.9}]\n", encoding="utf-8")
    before = _inodes(out)
    result = _incremental_equals_full(repo, out, tmp_path)
    assert "re-emitting 2 workload(s)" in result.stderr, result.stderr  # the service and its platform
    assert any(path.startswith("vm/vms/batch/") for path in _inodes(out))
    kept = {path for path, inode in _inodes(out).items() if before.get(path) == inode}
    assert kept >= {path for path in before if path.startswith("kubernetes/")} - {"kubernetes/k8s/kustomization.yaml"}


def test_a_build_of_fewer_targets_is_not_an_incremental_base(tmp_path: Path) -> None:
    repo = git_mesh(tmp_path / "repo")
    assert meshc("build", str(repo.root), "-t", "envoy").exit_code == 0
    repo.edit("services/reviews.yaml", "timeout: 10s", "timeout: 8s")
    result = meshc("build", str(repo.root), "--changed-since", "HEAD")
    assert result.exit_code == 0, result.output
    assert "holds no build of target(s) cloudfoundry, kubernetes, vm; doing a full build" in result.stderr
