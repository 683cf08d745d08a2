"""JSON Schema of the intent language, generated from the models (for yaml-language-server),
every property described with the text docs/intents.md shows (compiler/fielddocs.py)."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from pydantic import BaseModel

from compiler import model as models
from compiler.fielddocs import KIND_FIELDS, description
from compiler.model import KIND_MODELS

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def kind_schema(kind: str) -> dict:
    schema = KIND_MODELS[kind].model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = SCHEMA_DIALECT
    return described(schema)


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
            {"if": {"properties": {"kind": {"const": name, "description": KIND_FIELDS["kind"]}}, "required": ["kind"]},
             "then": {"$ref": f"#/$defs/{name}"}}
        )
    combined = {
        "$schema": SCHEMA_DIALECT,
        "title": "meshc intent (meshc/v1)",
        "type": "object",
        "required": ["apiVersion", "kind", "name"],
        "properties": {"apiVersion": {"const": "meshc/v1", "description": KIND_FIELDS["apiVersion"]},
                       "kind": {"enum": list(KIND_MODELS), "description": KIND_FIELDS["kind"]}},
        "allOf": branches,
        "$defs": definitions,
    }
    return json.dumps(described(combined), indent=2, sort_keys=True) + "\n"


def _models() -> dict[str, type[BaseModel]]:
    return {name: value for name, value in vars(models).items()
            if isinstance(value, type) and issubclass(value, BaseModel) and value.__module__ == models.__name__}


def described(schema: Any, by_title: dict[str, type[BaseModel]] | None = None) -> Any:
    """The schema with a description on every property of every model (editors show it on hover)."""
    by_title = by_title if by_title is not None else _models()
    if isinstance(schema, dict):
        owner = by_title.get(schema.get("title", "")) if "properties" in schema else None
        for key, value in schema.items():
            described(value, by_title)
            if key == "properties" and owner is not None:
                for name, property_schema in value.items():
                    with contextlib.suppress(KeyError):  # a new field not described yet: the tests say so
                        property_schema["description"] = description(owner, name)
    elif isinstance(schema, list):
        for item in schema:
            described(item, by_title)
    return schema
