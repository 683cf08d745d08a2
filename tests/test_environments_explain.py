"""`meshc explain-value ENV KIND/NAME FIELD` (docs/cli.md, "Environments"): the chain of layers
that set one value of an environment, base first."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from compiler.cli import main
from tests.test_environments import shop

runner = CliRunner()


def explain(root: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(main, ["explain-value", *args, str(root)])
    return result.exit_code, result.output


def test_an_overridden_value_shows_the_base_then_the_overlay(tmp_path: Path) -> None:
    code, text = explain(shop(tmp_path), "prod", "Service/api", "resilience.timeout")
    assert code == 0, text
    assert text == (
        'prod: Service default/api resilience.timeout = "5s"\n'
        '  base                           services/shop.yaml:22:12  "2s"  (overridden)\n'
        "                                 | timeout: 2s\n"
        '  overlay environments/prod      environments/prod/api.yaml:7:12  "5s"  (the value)\n'
        "                                 | timeout: 5s\n")


def test_a_keyed_item_is_named_by_its_key_or_index(tmp_path: Path) -> None:
    root = shop(tmp_path)
    by_key = json.loads(explain(root, "prod", "Service/default/api", "ports[http].port", "--format", "json")[1])
    by_index = json.loads(explain(root, "prod", "Service/api", "ports[0].port", "--format", "json")[1])
    assert by_key["chain"] == by_index["chain"]
    assert by_key["value"] == 9443 and by_key["state"] == "set"
    assert [(s["role"], s["location"], s["value"]) for s in by_key["chain"]] == [
        ("base", "services/shop.yaml:19:11", 9090),
        ("overlay environments/prod", "environments/prod/api.yaml:5:11", 9443)]


def test_a_value_no_overlay_touches_has_the_base_alone(tmp_path: Path) -> None:
    data = json.loads(explain(shop(tmp_path), "staging", "Service/api", "resilience.timeout", "--format", "json")[1])
    assert [(s["role"], s["location"]) for s in data["chain"]] == [("base", "services/shop.yaml:22:12")]
    data = json.loads(explain(shop(tmp_path / "other"), "staging", "Service/web", "calls", "--format", "json")[1])
    assert data["value"] == ["api"] and [s["role"] for s in data["chain"]] == ["base"]


def test_an_added_item_has_the_overlay_alone(tmp_path: Path) -> None:
    data = json.loads(explain(shop(tmp_path), "staging", "Service/api", "ports[grpc].port", "--format", "json")[1])
    assert data["value"] == 9091
    assert [(s["role"], s["location"]) for s in data["chain"]] == \
        [("overlay environments/staging", "environments/staging/api.yaml:5:11")]


def test_a_deleted_value_names_the_overlay_that_deleted_it(tmp_path: Path) -> None:
    root = shop(tmp_path, **{"environments/prod/api.yaml": "kind: Service\nname: api\nresilience: null\n"})
    data = json.loads(explain(root, "prod", "Service/api", "resilience", "--format", "json")[1])
    assert data["state"] == "deleted"
    assert [(s["role"], s["location"]) for s in data["chain"]] == [
        ("base", "services/shop.yaml:22:3"), ("deleted by overlay environments/prod", "environments/prod/api.yaml:3:13")]


def test_an_unset_field_and_unknown_names(tmp_path: Path) -> None:
    root = shop(tmp_path)
    code, text = explain(root, "prod", "Service/api", "owner")
    assert code == 0 and text == "prod: Service default/api owner: not set (its default applies)\n"
    code, text = explain(root, "prod", "Service/api", "ownr")
    assert code == 1 and "has no field 'ownr'" in text
    code, text = explain(root, "prod", "Service/nothere", "owner")
    assert code == 1 and "prod has no Service default/nothere" in text
    code, text = explain(root, "qa", "Service/api", "owner")
    assert code == 2 and "no environment 'qa'" in text
