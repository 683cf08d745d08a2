"""Environments reach every command that reads a mesh and every output that names where
something came from (docs/cli.md, "Environments"): the environments of a diagnostic as a field
of `check --format json` and a property of each SARIF result, overlay files in the `sources`
of the artifacts they changed, and `--env` on `graph`, `check-files` and `fmt`."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import require_shared_schemas
from tests.gitops_support import meshc
from tests.test_environments import SERVICES, shop

UNKNOWN_CALL = {"services/shop.yaml": SERVICES.replace("calls: [api]", "calls: [api, nothere]")}
# MESH320 in prod only: web is public, and prod's overlay makes the mesh STRICT
STRICT_IN_PROD = {"services/shop.yaml": SERVICES.replace("mtls: PERMISSIVE\n", "")}


def check(root: Path, *options: str) -> dict:
    result = meshc("check", str(root), "--no-cache", *options)
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


def test_check_json_names_the_environments_of_each_diagnostic(tmp_path: Path) -> None:
    found = check(shop(tmp_path / "a", **UNKNOWN_CALL), "--format", "json")["diagnostics"]
    [unknown] = [d for d in found if "nothere" in d["message"]]
    assert unknown["environments"] == ["staging", "prod"]
    [strict] = [d for d in check(shop(tmp_path / "b", **STRICT_IN_PROD), "--format", "json")["diagnostics"]
                if d["code"] == "MESH320"]
    assert strict["environments"] == ["prod"]


def test_a_mesh_without_environments_has_no_environments_field(tmp_path: Path) -> None:
    root = shop(tmp_path, **UNKNOWN_CALL, **{"mesh.yaml": "apiVersion: meshc/v1\nkind: Mesh\nname: shop\n"
                                            "authorization: allow\nplatforms: [{name: k8s, kind: kubernetes}]\n"})
    found = check(root, "--format", "json")["diagnostics"]
    assert found and all("environments" not in d for d in found)


def test_sarif_carries_the_environments_in_each_results_property_bag(tmp_path: Path, jsonschema) -> None:
    """SARIF 2.1.0, 3.8 "Property bags": every object may hold `properties`, "a property bag"
    for a tool's own data; validated against the schema in ../shared/schemas."""
    schema = json.loads((require_shared_schemas() / "sarif" / "sarif-schema-2.1.0.json").read_bytes())
    strict = check(shop(tmp_path / "a", **STRICT_IN_PROD), "--format", "sarif")
    unknown = check(shop(tmp_path / "b", **UNKNOWN_CALL), "--format", "sarif")
    for log in (strict, unknown):
        jsonschema.Draft4Validator(schema).validate(log)
    [result] = [r for r in strict["runs"][0]["results"] if r["ruleId"] == "MESH320"]
    assert result["properties"] == {"environments": ["prod"]}
    [result] = [r for r in unknown["runs"][0]["results"] if "nothere" in r["message"]["text"]]
    assert result["properties"] == {"environments": ["staging", "prod"]}


def test_artifacts_name_the_overlay_files_they_were_compiled_from(tmp_path: Path) -> None:
    root = shop(tmp_path / "mesh")
    out = tmp_path / "out"
    assert meshc("build", str(root), "-o", str(out)).exit_code == 0
    for environment, own, other in (("prod", "environments/prod/api.yaml", "environments/staging/api.yaml"),
                                    ("staging", "environments/staging/api.yaml", "environments/prod/api.yaml")):
        records = {r["path"]: r["sources"] for r in json.loads((out / environment / "manifest.json").read_text())
                   ["artifacts"]}
        # api's sidecar, and web's, which calls api: both read api's overlaid ports
        for path in ("envoy/default/api.yaml", "envoy/default/web.yaml"):
            assert own in records[path] and "services/shop.yaml" in records[path], (environment, path)
            assert other not in records[path]
        top = {r["path"]: r["sources"] for r in json.loads((out / "manifest.json").read_text())["artifacts"]}
        assert own in top[f"{environment}/envoy/default/api.yaml"]
    prod = {r["path"]: r["sources"] for r in json.loads((out / "prod" / "manifest.json").read_text())["artifacts"]}
    # the Mesh's overlay reaches everything compiled from mesh.yaml
    assert all("environments/prod/mesh.yaml" in sources for path, sources in prod.items() if "mesh.yaml" in sources)


def test_check_files_checks_the_environments_asked_for(tmp_path: Path) -> None:
    root = shop(tmp_path, **UNKNOWN_CALL)
    result = meshc("check-files", str(root / "services" / "shop.yaml"), "--no-cache", "--env", "prod",
                   "--format", "json")
    [unknown] = [d for d in json.loads(result.stdout)["diagnostics"] if "nothere" in d["message"]]
    assert unknown["environments"] == ["prod"]
    assert meshc("check-files", str(root / "services" / "shop.yaml"), "--env", "qa").exit_code == 2


def test_graph_shows_the_environment_asked_for(tmp_path: Path) -> None:
    root = shop(tmp_path)

    def api_ports(*options: str) -> list:
        result = meshc("graph", str(root), "--format", "json", *options)
        assert result.exit_code == 0, result.output
        [api] = [s for s in json.loads(result.stdout)["services"] if s["id"] == "default/api"]
        return sorted(p["port"] for p in api["ports"])

    assert api_ports() == [9090]
    assert api_ports("--env", "prod") == [9443]
    assert api_ports("--env", "staging") == [9090, 9091]
    assert meshc("graph", str(root), "--env", "qa").exit_code == 2
    page = meshc("graph", str(root), "--format", "html", "--env", "prod")
    assert page.exit_code == 0 and "9443" in page.stdout


def test_fmt_lays_out_the_overlay_files_too(tmp_path: Path) -> None:
    unformatted = "kind: Service\nname: api\nports:\n  -   name: http\n      port: 9443\n"
    root = shop(tmp_path, **{"environments/prod/api.yaml": unformatted,
                             "environments/staging/api.yaml": unformatted.replace("9443", "9091")})
    def would_reformat(*options: str) -> list[str]:
        result = meshc("fmt", str(root), "--check", *options)
        assert result.exit_code == 1, result.output
        return sorted(line for line in result.stdout.splitlines() if "environments" in line)

    assert would_reformat("--env", "staging") == [f"would reformat {root / 'environments/staging/api.yaml'}"]
    assert would_reformat() == [f"would reformat {root / 'environments/prod/api.yaml'}",
                                f"would reformat {root / 'environments/staging/api.yaml'}"]
    assert meshc("fmt", str(root)).exit_code == 0
    assert meshc("fmt", str(root), "--check").exit_code == 0
    assert (root / "environments/prod/api.yaml").read_text() == "kind: Service\nname: api\nports: [{name: http, port: 9443}]\n"
    assert meshc("fmt", str(root), "--env", "qa").exit_code == 2


def test_kubernetes_objects_name_the_overlay_files_in_their_source_annotation(tmp_path: Path) -> None:
    import yaml

    from compiler.artifact import SOURCE_ANNOTATION
    from targets.kubernetes_meta import parse_source_list

    out = tmp_path / "out"
    assert meshc("build", str(shop(tmp_path / "mesh")), "-o", str(out)).exit_code == 0
    for environment in ("prod", "staging"):
        [path] = list((out / environment / "kubernetes").rglob("api.yaml"))
        annotated = {source for doc in yaml.safe_load_all(path.read_text()) if doc
                     for source in parse_source_list(doc["metadata"]["annotations"][SOURCE_ANNOTATION])}
        assert f"environments/{environment}/api.yaml" in annotated and "services/shop.yaml" in annotated
        records = {r["path"]: set(r["sources"]) for r in json.loads((out / environment / "manifest.json").read_text())
                   ["artifacts"]}
        assert annotated <= records[str(path.relative_to(out / environment))]


def test_the_check_cache_keeps_the_environments(tmp_path: Path, monkeypatch) -> None:
    """A second check of an unchanged tree comes from the check cache (compiler.cache): the
    same diagnostics, environments included."""
    monkeypatch.setenv("MESHC_CACHE_DIR", str(tmp_path / "cache"))
    root = shop(tmp_path / "mesh", **UNKNOWN_CALL)
    first, second = (meshc("check", str(root), "--format", "json", "--timings") for _ in range(2))
    assert "unchanged: the last check's diagnostics" in second.stderr
    assert json.loads(first.stdout) == json.loads(second.stdout)
    assert [d["environments"] for d in json.loads(second.stdout)["diagnostics"]] == [["staging", "prod"]]
