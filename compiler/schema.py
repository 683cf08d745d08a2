"""JSON Schema of the intent language, generated from the models (for yaml-language-server)."""

from __future__ import annotations

import json

from compiler.model import KIND_MODELS

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def kind_schema(kind: str) -> dict:
    schema = KIND_MODELS[kind].model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = SCHEMA_DIALECT
    return schema


def intent_schema(kind: str | None = None) -> str:
    """One kind's schema, or every kind's under `oneOf`, chosen by the document's `kind`."""
    if kind is not None:
        return json.dumps(kind_schema(kind), indent=2, sort_keys=True) + "\n"
    definitions: dict = {}
    branches = []
    for name, model in KIND_MODELS.items():
        schema = model.model_json_schema(by_alias=True, mode="validation", ref_template="#/$defs/{model}")
        definitions.update(schema.pop("$defs", {}))
        definitions[name] = schema
        branches.append(
            {"if": {"properties": {"kind": {"const": name}}, "required": ["kind"]}, "then": {"$ref": f"#/$defs/{name}"}}
        )
    combined = {
        "$schema": SCHEMA_DIALECT,
        "title": "meshc intent (meshc/v1)",
        "type": "object",
        "required": ["apiVersion", "kind", "name"],
        "properties": {"apiVersion": {"const": "meshc/v1"}, "kind": {"enum": list(KIND_MODELS)}},
        "allOf": branches,
        "$defs": definitions,
    }
    return json.dumps(combined, indent=2, sort_keys=True) + "\n"
