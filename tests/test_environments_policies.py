"""Policies and route tests per environment (docs/policies.md, "Policies (CEL)"; docs/cli.md,
"Environments"): `Policy.environments` selects the environments a Policy judges, CEL sees
`environment`, a Policy in one overlay exists there only, and `meshc test` runs the RouteTests
in each environment; each judges the environment's merged objects."""

from __future__ import annotations

from pathlib import Path

from compiler.build import check_mesh
from tests.test_environments import shop

PROD_IS_STRICT = """\
apiVersion: meshc/v1
kind: Policy
name: prod-is-strict
appliesTo: Service
environments: [prod]
rule: "self.mtls == 'STRICT'"
message: every service in prod takes mTLS only
"""


def violations(root: Path) -> list[str]:
    return sorted(f"{d.message} @{d.location.file}:{d.location.line}" for d in check_mesh(root).report.diagnostics
                  if d.code.code == "MESH371")


def test_a_policy_judges_the_environments_it_names(tmp_path: Path) -> None:
    """web sets PERMISSIVE itself (in every environment); api inherits the Mesh's mode:
    PERMISSIVE in the base and staging, STRICT from prod's overlay."""
    root = shop(tmp_path, **{"policies/prod.yaml": PROD_IS_STRICT})
    assert violations(root) == [("[prod] Service default/web: every service in prod takes mTLS only "
                                 "(Policy prod-is-strict) @services/shop.yaml:3")]


def test_cel_sees_the_environment(tmp_path: Path) -> None:
    policy = PROD_IS_STRICT.replace("environments: [prod]\n", "").replace(
        "rule: \"self.mtls == 'STRICT'\"", "rule: \"environment != 'staging' || self.mtls == 'STRICT'\"")
    assert violations(shop(tmp_path, **{"policies/any.yaml": policy})) == [
        f"[staging] Service default/{name}: every service in prod takes mTLS only (Policy prod-is-strict) "
        f"@services/shop.yaml:{line}" for name, line in (("api", 15), ("web", 3))]


def test_a_policy_added_by_an_overlay_exists_in_that_environment_only(tmp_path: Path) -> None:
    added = "$patch: add\n" + PROD_IS_STRICT.replace("environments: [prod]\n", "").replace("apiVersion: meshc/v1\n", "")
    root = shop(tmp_path, **{"environments/staging/policy.yaml": added})
    assert violations(root) == [
        f"[staging] Service default/{name}: every service in prod takes mTLS only (Policy prod-is-strict) "
        f"@services/shop.yaml:{line}" for name, line in (("api", 15), ("web", 3))]


def test_an_undeclared_environment_is_reported(tmp_path: Path) -> None:
    root = shop(tmp_path, **{"policies/prod.yaml": PROD_IS_STRICT.replace("[prod]", "[prod, prdo]")})
    [warning] = [d for d in check_mesh(root).report.diagnostics if d.code.code == "MESH373"]
    assert warning.message.startswith("[staging, prod] Policy prod-is-strict names environment 'prdo'")
    assert (warning.location.file, warning.location.line, warning.location.column) == ("policies/prod.yaml", 5, 22)


ROUTE = """\
apiVersion: meshc/v1
kind: Route
name: api
service: api
rules:
  - to: [{service: api, version: v1}]
---
apiVersion: meshc/v1
kind: RouteTest
name: api-goes-to-v1
caller: web
cases:
  - name: everything to v1
    request: {host: api, path: /}
    expect: {to: [{service: api, version: v1}], route: api, rule: 0}
"""
# prod sends api to v2: the same RouteTest fails there, and only there
PROD_ROUTE = "kind: Route\nname: api\nrules:\n  - to: [{service: api, version: v2}]\n"
VERSIONS = "versions:\n  v1: {labels: {track: one}}\n  v2: {labels: {track: two}}\n"


def test_meshc_test_runs_the_cases_in_each_environment(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from compiler.cli import main
    from tests.test_environments import SERVICES

    services = SERVICES.replace("resilience:\n  timeout: 2s\n", VERSIONS + "resilience:\n  timeout: 2s\n")
    root = shop(tmp_path, **{"services/shop.yaml": services, "routes/api.yaml": ROUTE,
                             "environments/prod/route.yaml": PROD_ROUTE, "environments/staging/api.yaml": ""})
    result = CliRunner().invoke(main, ["test", str(root)])
    assert result.exit_code == 1, result.output
    assert "meshc test: [staging] 1 route test case(s), 0 failed" in result.output
    assert "meshc test: [prod] 1 route test case(s), 1 failed" in result.output
    failures = [line for line in result.output.splitlines() if "MESH50" in line]
    assert failures and all("[prod]" in line for line in failures), result.output
    assert CliRunner().invoke(main, ["test", str(root), "--env", "staging"]).exit_code == 0
