"""`meshc check --format sarif` validates against the SARIF 2.1.0 schema (the file GitHub code scanning reads)."""

from __future__ import annotations

import json

from tests.conftest import REPO, require_shared_schemas
from tests.gitops_support import meshc

# broken/: shop/cart defined twice (MESH203) and a service on an unknown platform (MESH201)
FIXTURES = REPO / "tests" / "fixtures" / "sarif"


def test_sarif_with_related_locations_validates(jsonschema) -> None:
    schema = json.loads((require_shared_schemas() / "sarif" / "sarif-schema-2.1.0.json").read_bytes())
    result = meshc("check", str(FIXTURES / "broken"), "--format", "sarif")
    assert result.exit_code == 1
    log = json.loads(result.stdout)
    jsonschema.Draft4Validator.check_schema(schema)
    jsonschema.Draft4Validator(schema).validate(log)

    (run,) = log["runs"]
    by_rule = {r["ruleId"]: r for r in run["results"]}
    duplicate = by_rule["MESH203"]
    assert duplicate["level"] == "error"
    related = duplicate["relatedLocations"][0]["physicalLocation"]
    # files load in path order: cart-again.yaml defines shop/cart first
    assert related["artifactLocation"]["uri"].endswith("services/cart-again.yaml")
    assert duplicate["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith("services/cart.yaml")
    assert related["region"]["startLine"] == 3
    assert by_rule["MESH201"]["locations"][0]["physicalLocation"]["region"] == {"startLine": 4, "startColumn": 11}
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == sorted(by_rule)
    assert all(run["results"][i]["ruleId"] == rules[run["results"][i]["ruleIndex"]]["id"]
               for i in range(len(run["results"])))


def test_a_clean_mesh_is_an_empty_but_valid_log(jsonschema) -> None:
    schema = json.loads((require_shared_schemas() / "sarif" / "sarif-schema-2.1.0.json").read_bytes())
    result = meshc("check", str(FIXTURES / "clean"), "--format", "sarif")
    assert result.exit_code == 0, result.output
    log = json.loads(result.stdout)
    jsonschema.Draft4Validator(schema).validate(log)
    assert log["runs"][0]["results"] == []
