"""`meshc check --format sarif` validates against the SARIF 2.1.0 schema (the file GitHub code scanning reads)."""

from __future__ import annotations

import json

from tests.conftest import require_shared_schemas
from tests.gitops_support import meshc

MESH = """\
apiVersion: meshc/v1
kind: Mesh
name: scanned
defaultNamespace: shop
platforms:
  - {name: k8s, kind: kubernetes}
"""
SERVICE = """\
apiVersion: meshc/v1
kind: Service
name: cart
platform: {platform}
ports:
  - {{name: http, port: 8080, protocol: http}}
"""


def test_sarif_with_related_locations_validates(make_mesh, jsonschema) -> None:
    schema = json.loads((require_shared_schemas() / "sarif" / "sarif-schema-2.1.0.json").read_bytes())
    root = make_mesh({
        "mesh.yaml": MESH,
        "services/cart.yaml": SERVICE.format(platform="k8s"),
        "services/cart-again.yaml": SERVICE.format(platform="k8s"),
        "services/elsewhere.yaml": SERVICE.format(platform="nowhere").replace("cart", "basket"),
    })
    result = meshc("check", str(root), "--format", "sarif")
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


def test_a_clean_mesh_is_an_empty_but_valid_log(make_mesh, jsonschema) -> None:
    schema = json.loads((require_shared_schemas() / "sarif" / "sarif-schema-2.1.0.json").read_bytes())
    root = make_mesh({"mesh.yaml": MESH})
    result = meshc("check", str(root), "--format", "sarif")
    assert result.exit_code == 0, result.output
    log = json.loads(result.stdout)
    jsonschema.Draft4Validator(schema).validate(log)
    assert log["runs"][0]["results"] == []
