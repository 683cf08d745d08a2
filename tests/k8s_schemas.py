"""Validation of emitted Kubernetes documents against the real schemas.

Custom resources (Istio, Gateway API) are checked against their CRDs' openAPIV3Schema from
../shared/schemas, converted to JSON Schema as ../shared/schemas/README.md describes (what
kubeconform's openapi2jsonschema does in strict mode); core kinds go to kubernetes-validate
in strict mode. Conversions are cached for the test session.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import require_module, require_shared_schemas

KUBERNETES_VERSION = "1.35.0"
CORE_API_VERSIONS = frozenset({"v1"})
# ObjectMeta as far as meshc writes it: anything else in metadata is a mistake.
_OBJECT_META = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", "maxLength": 253},
        "namespace": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "additionalProperties": False,
}


# Value validations: their `properties` constrain fields the node itself declares, they are no
# field list of their own (Kubernetes, structural schemas), so unknown fields are not judged there.
_JUNCTORS = frozenset({"oneOf", "anyOf", "allOf", "not"})


def to_json_schema(node: object, *, in_junctor: bool = False) -> object:
    """One openAPIV3Schema node as strict JSON Schema (a new object; the input is untouched)."""
    if isinstance(node, list):
        return [to_json_schema(item, in_junctor=in_junctor) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: to_json_schema(value, in_junctor=in_junctor or key in _JUNCTORS)
                 for key, value in node.items()}
    if converted.pop("x-kubernetes-int-or-string", False):
        converted["type"] = ["integer", "string"]
    if converted.pop("nullable", False) and "type" in converted:
        kinds = converted["type"] if isinstance(converted["type"], list) else [converted["type"]]
        converted["type"] = [*kinds, "null"]
    if ("properties" in converted and "additionalProperties" not in converted and not in_junctor
            and not converted.get("x-kubernetes-preserve-unknown-fields")):
        converted["additionalProperties"] = False
    return converted


@cache
def crd_schemas() -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> JSON Schema, for every served version of every CRD in ../shared/schemas."""
    root = require_shared_schemas()
    files = [root / "istio-1.30.3" / "customresourcedefinitions.gen.yaml",
             *sorted((root / "gateway-api-v1.6.1").glob("gateway.networking.k8s.io_*.yaml"))]
    schemas: dict[tuple[str, str], dict] = {}
    for path in files:
        for crd in yaml.safe_load_all(Path(path).read_text(encoding="utf-8")):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if not version.get("served"):
                    continue
                api_version = f"{group}/{version['name']}"
                schema = to_json_schema(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
                schema["properties"].update({
                    "apiVersion": {"type": "string", "enum": [api_version]},
                    "kind": {"type": "string", "enum": [kind]},
                    "metadata": _OBJECT_META,
                })
                schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata"})
                schema["additionalProperties"] = False
                schemas[(api_version, kind)] = schema
    return schemas


@cache
def _validator(api_version: str, kind: str) -> Any:
    schemas = crd_schemas()
    if (api_version, kind) not in schemas:
        raise AssertionError(f"no CRD schema for {api_version} {kind} in ../shared/schemas")
    schema = schemas[(api_version, kind)]
    draft7 = require_module("jsonschema").Draft7Validator
    draft7.check_schema(schema)
    return draft7(schema)


def validation_errors(document: dict) -> list[str]:
    """Every reason the document is not valid for its kind; empty when it validates."""
    api_version, kind = document.get("apiVersion"), document.get("kind")
    if api_version in CORE_API_VERSIONS:
        kubernetes_validate = require_module("kubernetes_validate")
        try:
            kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            return [f"{kind} {document['metadata'].get('name')}: {error.message} at {list(error.path)}"]
        return []
    validator = _validator(api_version, kind)
    return [
        f"{kind} {document['metadata'].get('name')}: {error.message} at {'/'.join(map(str, error.absolute_path))}"
        for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    ]
