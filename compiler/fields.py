"""What fields a mapping in an intent document may hold, walked from the data and the models.

`meshc fmt` orders keys by it, and the loader uses it to suggest the field a user meant when a
key is unknown (and `meshc check --fix` to rename it when the intent is unambiguous).
"""

from __future__ import annotations

import difflib
import inspect
import re
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, Union

from pydantic import BaseModel

from compiler.model import KIND_MODELS

# Identity first in every document, then the model's own order.
DOCUMENT_HEAD = ("apiVersion", "kind", "name", "namespace")
# What Istio users write where meshc has another word (VirtualService destinations and mirrors).
HABITS = {"subset": "version"}


def model_for_document(data: Any) -> type[BaseModel] | None:
    kind = data.get("kind") if isinstance(data, dict) else None
    return KIND_MODELS.get(kind) if isinstance(kind, str) else None


def field_names(model: type[BaseModel]) -> dict[str, Any]:
    """Key as written in YAML (the alias where there is one) -> annotation, in the model's order."""
    return {(info.alias or name): info.annotation for name, info in model.model_fields.items()}


def key_order(model: type[BaseModel], *, document: bool) -> list[str]:
    """Canonical key order. Documents: apiVersion, kind, name, namespace, then the model's order.
    Kinds of a nested union (platforms): name, kind, the kind's own fields, then the shared ones."""
    aliases = {name: (info.alias or name) for name, info in model.model_fields.items()}
    if document:
        head: tuple[str, ...] = DOCUMENT_HEAD
        fields = list(aliases.values())
    elif "kind" in aliases:
        head = ("name", "kind")
        own = list(inspect.get_annotations(model))
        fields = [aliases[n] for n in own if n in aliases] + [a for n, a in aliases.items() if n not in own]
    else:
        return list(aliases.values())
    return [k for k in head if k in fields] + [k for k in fields if k not in head]


def _candidates(annotation: Any) -> list[Any]:
    """The alternatives of a union annotation, Annotated and Optional unwrapped."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _candidates(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [c for arg in typing.get_args(annotation) for c in _candidates(arg)]
    return [annotation]


def _literal_admits(annotation: Any, value: Any) -> bool:
    for candidate in _candidates(annotation):
        if typing.get_origin(candidate) is Literal and value in typing.get_args(candidate):
            return True
        if typing.get_origin(candidate) is not Literal:
            return True
    return False


def model_of(annotation: Any, data: Any) -> type[BaseModel] | None:
    """The model a mapping under `annotation` validates as (for unions: the one `data` fits best)."""
    if not isinstance(data, dict):
        return None
    models = [c for c in _candidates(annotation) if isinstance(c, type) and issubclass(c, BaseModel)]
    best, best_score = None, -1
    for model in models:
        fields = field_names(model)
        if any(k in fields and not _literal_admits(fields[k], v) for k, v in data.items()):
            continue
        score = sum(1 for k in data if k in fields)
        if score > best_score:
            best, best_score = model, score
    return best


def child_annotation(annotation: Any, data: Any, key: Any) -> Any:
    """The annotation of `data[key]` when `data` sits under `annotation`; None when unknown."""
    model = model_of(annotation, data)
    if model is not None:
        return field_names(model).get(key)
    for candidate in _candidates(annotation):
        origin = typing.get_origin(candidate)
        args = typing.get_args(candidate)
        if origin is list and isinstance(data, list) and args:
            return args[0]
        if origin is dict and isinstance(data, dict) and len(args) == 2:
            return args[1]
    return None


@dataclass(frozen=True)
class Suggestion:
    field: str
    # the rename is mechanical: one obvious field, not present yet (`meshc check --fix` applies it)
    fixable: bool


def _normalised(key: str) -> str:
    return re.sub(r"[-_]", "", key).lower()


def _holder(data: Any, loc: tuple[Any, ...]) -> tuple[Any, Any, bool]:
    """The mapping that holds the key at pydantic `loc` in a document, its annotation, and
    whether it is nested (not the document itself)."""
    annotation: Any = model_for_document(data)
    node = data
    nested = False
    for part in loc[:-1]:
        present = (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        )
        if not present:
            continue  # a union tag: not in the data
        annotation = child_annotation(annotation, node, part)
        node = node[part]
        nested = True
    return node, annotation, nested


def nested_model_at(data: Any, loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model of the nested object that holds the key at `loc`; None for the document's own keys."""
    node, annotation, nested = _holder(data, loc)
    return model_of(annotation, node) if nested else None


def suggest_field(data: Any, loc: tuple[Any, ...]) -> Suggestion | None:
    """For an unknown key at pydantic `loc` in a document: the field the user probably meant."""
    node, annotation, _ = _holder(data, loc)
    model = model_of(annotation, node)
    key = loc[-1] if loc else None
    if model is None or not isinstance(key, str) or not isinstance(node, dict):
        return None
    fields = [f for f in field_names(model) if f not in node]
    habit = HABITS.get(key)
    if habit in fields:
        return Suggestion(habit, True)
    same = [f for f in fields if _normalised(f) == _normalised(key)]
    if len(same) == 1:
        return Suggestion(same[0], True)
    close = difflib.get_close_matches(key, fields, n=1, cutoff=0.7)
    return Suggestion(close[0], False) if close else None
