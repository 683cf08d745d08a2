"""Environments (docs/intents.md, "Environments"; docs/cli.md, "Environments"): overlays merged
onto the base, diagnostics located at the overlay line that set a value (and naming the base
line it overrode), one output directory per environment, checks labelled by environment."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from compiler.build import build_mesh, check_mesh, compile_mesh
from compiler.cli import main
from compiler.render import render_text

runner = CliRunner()

MESH = """\
apiVersion: meshc/v1
kind: Mesh
name: shop
mtls: PERMISSIVE
authorization: allow
platforms:
  - name: k8s
    kind: kubernetes
environments:
  - name: staging
  - name: prod
"""

SERVICES = """\
apiVersion: meshc/v1
kind: Service
name: web
public: true
mtls: PERMISSIVE
platform: k8s
ports:
  - name: http
    port: 8080
    protocol: http
calls: [api]
---
apiVersion: meshc/v1
kind: Service
name: api
platform: k8s
ports:
  - name: http
    port: 9090
    protocol: http
resilience:
  timeout: 2s
"""

PROD_MESH = """\
kind: Mesh
name: shop
mtls: STRICT
"""

PROD_API = """\
kind: Service
name: api
ports:
  - name: http
    port: 9443
resilience:
  timeout: 5s
"""

STAGING_API = """\
kind: Service
name: api
ports:
  - name: grpc
    port: 9091
    protocol: grpc
    $patch: add
"""


def write(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def shop(root: Path, **overrides: str) -> Path:
    files = {"mesh.yaml": MESH, "services/shop.yaml": SERVICES, "environments/prod/mesh.yaml": PROD_MESH,
             "environments/prod/api.yaml": PROD_API, "environments/staging/api.yaml": STAGING_API}
    files.update(overrides)
    return write(root, {k: v for k, v in files.items() if v})


def model(root: Path, environment: str | None, kind: str, name: str):
    compiled = compile_mesh(root, environment=environment)
    assert not compiled.report.has_errors, render_text(compiled.report.sorted(), compiled.sources)
    return next(i.model for i in compiled.loaded.intents if i.kind == kind and i.model.name == name)


def test_each_environment_sees_the_base_with_its_overlays(tmp_path: Path) -> None:
    root = shop(tmp_path)
    base_api = model(root, None, "Service", "api")
    assert [(p.name, p.port) for p in base_api.ports] == [("http", 9090)]
    assert model(root, None, "Mesh", "shop").mtls == "PERMISSIVE"

    prod_api = model(root, "prod", "Service", "api")
    assert [(p.name, p.port, p.protocol) for p in prod_api.ports] == [("http", 9443, "http")]  # merged by name
    assert prod_api.resilience.timeout == "5s"
    assert model(root, "prod", "Mesh", "shop").mtls == "STRICT"

    staging_api = model(root, "staging", "Service", "api")
    assert [(p.name, p.port) for p in staging_api.ports] == [("http", 9090), ("grpc", 9091)]
    assert staging_api.resilience.timeout == "2s"
    # overlay files are never intents of the base
    compiled = compile_mesh(root)
    assert {i.origin.file for i in compiled.loaded.intents} == {"mesh.yaml", "services/shop.yaml"}


def test_a_diagnostic_about_an_overlaid_value_points_at_the_overlay_and_the_base(tmp_path: Path) -> None:
    root = shop(tmp_path, **{"environments/prod/api.yaml": PROD_API.replace("port: 9443", "port: 0")})
    compiled = check_mesh(root, environments=("prod",))
    [diagnostic] = [d for d in compiled.report.diagnostics if d.severity == "error"]
    assert diagnostic.code.code == "MESH105"
    assert diagnostic.message.startswith("[prod] ports[0].port")
    assert (diagnostic.location.file, diagnostic.location.line, diagnostic.location.column) == \
        ("environments/prod/api.yaml", 5, 11)
    [related] = diagnostic.related
    assert (related.location.file, related.location.line) == ("services/shop.yaml", 19)
    assert "the base value this overrides" in related.message


def test_an_analysis_diagnostic_names_the_overlay_that_set_the_value(tmp_path: Path) -> None:
    """MESH320: a public service under STRICT mTLS; STRICT comes from the prod overlay of the Mesh."""
    root = shop(tmp_path, **{"services/shop.yaml": SERVICES.replace("mtls: PERMISSIVE\n", "")})
    compiled = check_mesh(root)
    [diagnostic] = [d for d in compiled.report.diagnostics if d.code.code == "MESH320"]
    assert diagnostic.message.startswith("[prod] ")  # staging inherits PERMISSIVE from the base
    assert any(r.location.file == "environments/prod/mesh.yaml" and r.location.line == 3 for r in diagnostic.related)


def test_check_labels_what_every_environment_reports_once(tmp_path: Path) -> None:
    root = shop(tmp_path, **{"services/shop.yaml": SERVICES.replace("calls: [api]", "calls: [api, nothere]")})
    compiled = check_mesh(root)
    unknown = [d for d in compiled.report.diagnostics if "nothere" in d.message]
    assert len(unknown) == 1 and unknown[0].message.startswith("[staging, prod] ")


def test_build_writes_one_directory_per_environment(tmp_path: Path) -> None:
    root = shop(tmp_path)
    out = tmp_path / "out"
    result = runner.invoke(main, ["build", str(root), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "prod", "staging"]
    top = json.loads((out / "manifest.json").read_text())
    assert top["environments"] == ["prod", "staging"]
    for environment in ("prod", "staging"):
        own = json.loads((out / environment / "manifest.json").read_text())
        assert {r["path"] for r in own["artifacts"]} == \
            {r["path"].removeprefix(f"{environment}/") for r in top["artifacts"] if r["path"].startswith(environment)}
        for record in own["artifacts"]:
            assert (out / environment / record["path"]).is_file()
    # the environments differ where their overlays do
    prod_api = (out / "prod/envoy/default/api.yaml").read_text()
    staging_api = (out / "staging/envoy/default/api.yaml").read_text()
    assert "9443" in prod_api and "9443" not in staging_api
    assert "9091" in staging_api and "9091" not in prod_api
    assert runner.invoke(main, ["build", str(root), "-o", str(out), "--check"]).exit_code == 0


def test_build_of_one_environment_keeps_the_others(tmp_path: Path) -> None:
    root = shop(tmp_path)
    out = tmp_path / "out"
    assert runner.invoke(main, ["build", str(root), "-o", str(out)]).exit_code == 0
    staging_before = {p.relative_to(out): p.read_bytes() for p in (out / "staging").rglob("*") if p.is_file()}
    write(root, {"environments/prod/api.yaml": PROD_API.replace("9443", "9444")})
    result = runner.invoke(main, ["build", str(root), "-o", str(out), "--env", "prod"])
    assert result.exit_code == 0, result.output
    assert "9444" in (out / "prod/envoy/default/api.yaml").read_text()
    assert {p.relative_to(out): p.read_bytes() for p in (out / "staging").rglob("*") if p.is_file()} == staging_before
    # the tree is what a full build writes
    assert runner.invoke(main, ["build", str(root), "-o", str(out), "--check"]).exit_code == 0
    assert runner.invoke(main, ["build", str(root), "-o", str(out), "--check", "--env", "staging"]).exit_code == 0


def test_build_check_reports_drift_of_one_environment(tmp_path: Path) -> None:
    root = shop(tmp_path)
    out = tmp_path / "out"
    assert runner.invoke(main, ["build", str(root), "-o", str(out)]).exit_code == 0
    write(root, {"environments/staging/api.yaml": STAGING_API.replace("9091", "9092")})
    result = runner.invoke(main, ["build", str(root), "-o", str(out), "--check"])
    assert result.exit_code == 1
    assert "changed: " + str(out / "staging/envoy/default/api.yaml") in result.output
    assert "prod/" not in result.output.replace(str(out), "")
    assert runner.invoke(main, ["build", str(root), "-o", str(out), "--check", "--env", "prod"]).exit_code == 0


def test_a_mesh_without_environments_keeps_its_layout(tmp_path: Path) -> None:
    root = write(tmp_path, {"mesh.yaml": MESH.split("environments:")[0], "services/shop.yaml": SERVICES})
    out = tmp_path / "out"
    outcome = build_mesh(root, out)
    assert not outcome.failed
    assert (out / "manifest.json").is_file() and (out / "envoy").is_dir()
    assert "environments" not in json.loads((out / "manifest.json").read_text())


def test_unknown_environment_is_a_usage_error(tmp_path: Path) -> None:
    root = shop(tmp_path)
    for command in (["build", str(root), "--env", "qa"], ["check", str(root), "--env", "qa"]):
        result = runner.invoke(main, command)
        assert result.exit_code == 2
        assert "no environment 'qa'" in result.output and "staging, prod" in result.output


OVERLAY_PROBLEMS = {
    "unknown document": ("environments/prod/extra.yaml", "kind: Service\nname: payments\nplatform: k8s\n",
                         "MESH021", (2, 7)),
    "unknown list item": ("environments/prod/extra.yaml",
                          "kind: Service\nname: web\nports:\n  - name: https\n    port: 8443\n", "MESH021", (4, 11)),
    "deleting what is not there": ("environments/prod/extra.yaml", "kind: Service\nname: web\nowner: null\n",
                                   "MESH021", (3, 1)),
    "adding what is there": ("environments/prod/extra.yaml", "$patch: add\nkind: Service\nname: web\n", "MESH021",
                             (1, 9)),
    "no name": ("environments/prod/extra.yaml", "kind: Service\nplatform: k8s\n", "MESH020", (1, 1)),
    "bad marker": ("environments/prod/extra.yaml", "kind: Service\nname: web\n$patch: merge\n", "MESH020", (3, 9)),
    "changing environments": ("environments/prod/mesh.yaml", "kind: Mesh\nname: shop\nenvironments: []\n",
                              "MESH020", (3, 1)),
    "twice in one folder": ("environments/prod/extra.yaml", "kind: Service\nname: api\nowner: team\n", "MESH022",
                            (2, 7)),
    "a typo in a field": ("environments/prod/extra.yaml", "kind: Service\nname: web\nowners: team\n", "MESH103",
                          (3, 1)),
}


@pytest.mark.parametrize("case", sorted(OVERLAY_PROBLEMS))
def test_overlay_problems_are_located_in_the_overlay(tmp_path: Path, case: str) -> None:
    file, text, code, (line, column) = OVERLAY_PROBLEMS[case]
    root = shop(tmp_path, **{file: text})
    compiled = check_mesh(root, environments=("prod",))
    found = [d for d in compiled.report.diagnostics if d.code.code == code]
    assert found, render_text(compiled.report.sorted(), compiled.sources)
    assert (found[0].location.file, found[0].location.line, found[0].location.column) == (file, line, column)
    assert found[0].message.startswith("[prod] ")


def test_additions_and_deletions(tmp_path: Path) -> None:
    root = shop(tmp_path, **{
        "environments/prod/extra.yaml": textwrap.dedent("""\
            $patch: add
            kind: Service
            name: payments
            platform: k8s
            ports: [{name: http, port: 7070, protocol: http}]
            ---
            kind: Service
            name: api
            $patch: delete
            ---
            kind: Service
            name: web
            calls: [payments]
            """),
        "environments/prod/api.yaml": "",
    })
    compiled = compile_mesh(root, environment="prod")
    assert not compiled.report.has_errors, render_text(compiled.report.sorted(), compiled.sources)
    names = {i.model.name: i for i in compiled.loaded.intents if i.kind == "Service"}
    assert set(names) == {"web", "payments"}
    assert names["payments"].origin.file == "environments/prod/extra.yaml"
    assert names["web"].model.calls == ["payments"]


def test_missing_overlay_folder_is_a_warning(tmp_path: Path) -> None:
    root = shop(tmp_path, **{"environments/staging/api.yaml": ""})
    compiled = check_mesh(root)
    assert [d.message for d in compiled.report.diagnostics if d.code.code == "MESH023"] == \
        ["[staging] environment staging: overlay folder environments/staging/ holds no intent file"]
    assert not compiled.report.has_errors


def test_loading_an_undeclared_environment_is_located_at_mesh_yaml(tmp_path: Path) -> None:
    """The CLI refuses `--env qa` before compiling; a caller of the compiler gets MESH024."""
    compiled = compile_mesh(shop(tmp_path), environment="qa")
    [diagnostic] = [d for d in compiled.report.diagnostics if d.code.code == "MESH024"]
    assert diagnostic.location.file == "mesh.yaml"
    assert "it declares: staging, prod" in diagnostic.message


def test_a_suppression_comment_in_an_overlay_suppresses_there(tmp_path: Path) -> None:
    """MESH320 is reported at web's `public` (base); prod's overlay makes web public itself and
    says, on that line, that it knows."""
    services = SERVICES.replace("public: true\nmtls: PERMISSIVE\n", "")
    overlay = "kind: Service\nname: web\npublic: true  # meshc: ignore[MESH320]\n"
    root = shop(tmp_path, **{"services/shop.yaml": services, "environments/prod/web.yaml": overlay})
    assert not [d for d in check_mesh(root).report.diagnostics if d.code.code == "MESH320"]
    root = shop(tmp_path / "unsuppressed", **{"services/shop.yaml": services,
                                              "environments/prod/web.yaml": overlay.split("  #")[0] + "\n"})
    [found] = [d for d in check_mesh(root).report.diagnostics if d.code.code == "MESH320"]
    assert (found.location.file, found.location.line) == ("environments/prod/web.yaml", 3)
