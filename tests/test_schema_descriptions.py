"""`meshc schema` describes every field, with the text docs/intents.md shows (issue 13, everyday
friction): one source, compiler/fielddocs.py, behind both; docs/intents.md's field tables are
generated from it and the models, and kept current here."""

from __future__ import annotations

import inspect
import json
import re

import pytest
from click.testing import CliRunner
from pydantic import BaseModel

from compiler import docgen, model
from compiler.cli import main
from compiler.fielddocs import FIELDS, KIND_FIELDS, description
from compiler.model import KIND_MODELS

MODELS = {name: value for name, value in inspect.getmembers(model, inspect.isclass)
          if issubclass(value, BaseModel) and value.__module__ == model.__name__}


def _properties(schema, path: str = ""):
    """(path, property schema) of every property of every object schema in `schema`."""
    if isinstance(schema, dict):
        for name, value in schema.get("properties", {}).items():
            yield f"{path}.{name}", value
        for key, value in schema.items():
            yield from _properties(value, f"{path}/{key}")
    elif isinstance(schema, list):
        for index, item in enumerate(schema):
            yield from _properties(item, f"{path}[{index}]")


@pytest.mark.parametrize("kind", [None, *KIND_MODELS])
def test_every_property_of_the_schema_has_a_description(kind: str | None) -> None:
    result = CliRunner().invoke(main, ["schema", *([kind] if kind else [])])
    assert result.exit_code == 0, result.output
    properties = list(_properties(json.loads(result.stdout)))
    assert len(properties) > (100 if kind is None else 3)
    assert [path for path, schema in properties if not str(schema.get("description", "")).strip()] == []


def test_the_schema_says_what_docs_intents_md_says() -> None:
    """Each description is the meaning column of the field's row in docs/intents.md."""
    page = docgen.INTENTS.read_text(encoding="utf-8")
    schema = json.loads(CliRunner().invoke(main, ["schema"]).stdout)
    service = schema["$defs"]["Service"]["properties"]
    assert service["calls"]["description"] == description(model.Service, "calls")
    for name, cls in MODELS.items():
        for field, info in cls.model_fields.items():
            key = info.alias or field
            meaning = description(cls, key).replace("|", "\\|")
            if name in schema["$defs"]:
                assert schema["$defs"][name]["properties"][key]["description"] == description(cls, key)
            if cls is not model.PlatformBase and cls is not model.Strict:
                assert re.search(rf"^\| `{re.escape(key)}` \|.*\| {re.escape(meaning)} \|$", page, re.MULTILINE), \
                    (name, key)


def test_docs_intents_md_is_current() -> None:
    page = docgen.INTENTS.read_text(encoding="utf-8")
    assert page == docgen.render_intents(page), "run `python -m compiler.docgen`"


def test_no_description_is_of_a_field_that_does_not_exist() -> None:
    for name, fields in FIELDS.items():
        assert name in MODELS, name
        known = {info.alias or field for field, info in MODELS[name].model_fields.items()}
        assert set(fields) <= known, (name, set(fields) - known)
    assert all(set(KIND_FIELDS) <= set(kind.model_fields) for kind in KIND_MODELS.values() if kind is not model.Policy
               and kind is not model.Mesh)


@pytest.mark.parametrize("page", sorted(p.relative_to(docgen.DOCS).as_posix() for p in docgen.DOCS.rglob("*.md")))
def test_no_heading_is_written_twice_in_a_page(page: str) -> None:
    """A section pasted twice (docs/intents.md once held "mTLS modes" two times) reads as two
    meanings and gives its second copy an anchor nobody links to; fenced code is not a heading."""
    fenced, seen = False, {}
    for number, line in enumerate((docgen.DOCS / page).read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,6} ", line):
            seen.setdefault(line, []).append(number)
    assert {heading: lines for heading, lines in seen.items() if len(lines) > 1} == {}
