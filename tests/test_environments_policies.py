"""Policies per environment (docs/policies.md, "Policies (CEL)"): `Policy.environments` selects
the environments a Policy judges, CEL sees `environment`, and a Policy in one overlay exists
there only; each judges the environment's merged objects."""

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
