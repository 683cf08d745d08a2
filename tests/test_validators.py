"""A missing validator skips locally and says why, but fails when CI is set (tests/conftest.py);
every test reaches its validators through those helpers, so no test can skip around them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests import conftest
from tests.conftest import REPO, lines_of_tests_matching, require_module, require_shared_schemas, require_tool

ABSENT_TOOL = "meshc-test-no-such-validator"


@pytest.mark.parametrize("value", ["true", "1", "yes"])
def test_a_missing_tool_fails_when_ci_is_set(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match=rf"{ABSENT_TOOL} is not on PATH: it comes from nowhere.*CI is set"):
        require_tool(ABSENT_TOOL, "nowhere")


@pytest.mark.parametrize("value", [None, "", "false", "0"])
def test_a_missing_tool_skips_locally_and_says_why(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.skip.Exception, match=rf"^{ABSENT_TOOL} is not on PATH: it comes from nowhere$"):
        require_tool(ABSENT_TOOL, "nowhere")


def test_a_missing_module_fails_when_ci_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="the Python module meshc_no_such_module cannot be imported"):
        require_module("meshc_no_such_module")


def test_missing_shared_schemas_fail_when_ci_is_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(conftest, "SCHEMAS", tmp_path / "absent")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"absent is absent: schema validation needs \.\./shared/schemas"):
        require_shared_schemas()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match=r"schema validation needs \.\./shared/schemas"):
        require_shared_schemas()


def test_present_validators_are_returned() -> None:
    assert Path(require_tool("git", "the Debian package git")).is_file()
    assert require_module("json").dumps([]) == "[]"


def test_skips_and_validator_lookups_happen_only_in_conftest() -> None:
    """A test that skipped or looked a program up by itself would bypass the CI rule."""
    bypasses = re.compile(r"pytest\.skip\(|pytest\.mark\.skip|importorskip|shutil\.which\(")
    helpers = REPO / "tests" / "conftest.py"
    assert lines_of_tests_matching(bypasses, besides=(helpers, Path(__file__))) == []
    assert bypasses.search(helpers.read_text(encoding="utf-8"))


def test_crd_conversion_rejects_unknown_fields_but_not_beside_a_value_validation() -> None:
    from tests.k8s_schemas import validation_errors

    def gateway(address: dict) -> dict:
        return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "g"},
                "spec": {"gatewayClassName": "istio", "addresses": [address],
                         "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}}

    # GatewaySpecAddress: a oneOf whose second branch lists only `type`; `value` is declared by
    # the node itself, so the branch's properties are a constraint, not the field list
    assert validation_errors(gateway({"type": "Hostname", "value": "gw.istio-system.svc.cluster.local"})) == []
    assert validation_errors(gateway({"type": "IPAddress", "value": "10.0.0.1"})) == []
    assert validation_errors(gateway({"type": "no such type", "value": "a"})) != []  # the node's own pattern
    assert any("bogus" in error for error in validation_errors(gateway({"type": "Hostname", "value": "a", "bogus": 1})))
