"""CEL Policies: compiled once, evaluated over linked and defaulted objects, located precisely."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import BOOKINFO, REPO
from tests.test_policies_support import MESH, analysed, fixture, found, frontend, position

BOUNDED = "has(self.resilience.timeout) && duration(self.resilience.timeout) <= duration('30s')"


def policy(rule: str, *, applies_to: str = "Service", when: str | None = None, severity: str = "error") -> str:
    return (
        "    apiVersion: meshc/v1\n    kind: Policy\n    name: house-rule\n"
        f"    appliesTo: {applies_to}\n    severity: {severity}\n"
        + (f'    when: "{when}"\n' if when else "")
        + f'    rule: "{rule}"\n    message: the house rule\n'
    )


def test_documented_example_uses_the_effective_timeout(make_mesh) -> None:
    files = {
        "mesh.yaml": MESH.replace("authorization: allow\n", "authorization: allow\ndefaults: {timeout: 15s}\n"),
        "front.yaml": frontend("slow", "plain"),
        # slow sets its own timeout above the bound; plain inherits Mesh.defaults' 15s
        "slow.yaml": fixture("slow.yaml"),
        "plain.yaml": fixture("plain.yaml"),
        "policy.yaml": policy(BOUNDED),
    }
    diagnostics = analysed(make_mesh(files))
    assert found(diagnostics) == [("MESH371", *position(files, "slow.yaml", "slow"))]
    (violation,) = diagnostics
    assert violation.message == "Service shop/slow: the house rule (Policy house-rule)"
    related = [(r.location.file, r.location.line, r.location.column) for r in violation.related]
    assert related == [position(files, "policy.yaml", '"has(self.resilience')]


def test_a_service_without_any_timeout_fails_has(make_mesh) -> None:
    files = {"mesh.yaml": MESH, "front.yaml": frontend(), "policy.yaml": policy(BOUNDED)}
    assert found(analysed(make_mesh(files))) == [("MESH371", *position(files, "front.yaml", "frontend"))]


def test_severity_is_the_policys(make_mesh) -> None:
    files = {"mesh.yaml": MESH, "front.yaml": frontend(), "policy.yaml": policy("has(self.owner)", severity="info")}
    (violation,) = analysed(make_mesh(files))
    assert (violation.code.code, violation.severity) == ("MESH371", "info")


def test_when_selects_the_objects(make_mesh) -> None:
    files = {"mesh.yaml": MESH, "front.yaml": frontend(),
             "policy.yaml": policy("has(self.owner)", when="self.namespace == 'prod'")}
    assert analysed(make_mesh(files)) == []


def test_when_syntax_error_is_located_in_the_expression(make_mesh) -> None:
    files = {"mesh.yaml": MESH, "front.yaml": frontend(),
             "policy.yaml": policy("has(self.owner)", when="self.namespace == ")}
    assert found(analysed(make_mesh(files))) == [("MESH370", *position(files, "policy.yaml", '== ^"'))]


def test_a_non_boolean_result_is_an_evaluation_failure(make_mesh) -> None:
    files = {"mesh.yaml": MESH, "front.yaml": frontend(), "policy.yaml": policy("self.name")}
    (failure,) = analysed(make_mesh(files))
    assert failure.code.code == "MESH372"
    assert "not a boolean" in failure.message


def test_other_kinds_are_dumped_by_alias_with_their_namespace(make_mesh) -> None:
    files = {"mesh.yaml": MESH, "front.yaml": frontend(), "access.yaml": fixture("open-access.yaml"),
             "policy.yaml": policy("self.namespace == 'shop' && self.allow.all(r, !('*' in r.from))",
                                   applies_to="AccessPolicy")}
    assert found(analysed(make_mesh(files))) == [("MESH371", *position(files, "access.yaml", "open"))]


def test_mesh_policies_see_defaults(make_mesh) -> None:
    files = {"mesh.yaml": MESH, "front.yaml": frontend(),
             "policy.yaml": policy("self.mtls == 'STRICT' && self.trustDomain == 'cluster.local'", applies_to="Mesh")}
    assert analysed(make_mesh(files)) == []


def _modules_after_check(root) -> set[str]:
    code = ("import sys; from compiler.build import compile_mesh; "
            f"compile_mesh(__import__('pathlib').Path({str(root)!r})); print(' '.join(sorted(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return set(result.stdout.split())


def test_cel_is_not_imported_without_policies(make_mesh) -> None:
    modules = _modules_after_check(make_mesh({"mesh.yaml": MESH, "front.yaml": frontend()}))
    assert not {"cel", "cel.cel"} & modules


def test_cel_is_loaded_without_its_command_line(make_mesh) -> None:
    # bookinfo has a Policy: the extension is loaded, the package's CLI (rich, ~200 ms) is not
    modules = _modules_after_check(BOOKINFO)
    assert "cel.cel" in modules
    assert not {"cel.cli", "rich"} & modules
