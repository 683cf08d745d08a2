"""Deterministic serialisation of structured artifacts: sorted keys, LF, one trailing newline."""

from __future__ import annotations

from typing import Any, Iterable

import yaml

try:
    from yaml import CSafeDumper as _Dumper
except ImportError:  # pragma: no cover - libyaml is required, see pyproject.toml
    raise ImportError("meshc needs PyYAML built with libyaml (yaml.CSafeDumper)") from None


def to_json(data: Any) -> bytes:
    import orjson

    return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def to_yaml(data: Any) -> bytes:
    return yaml.dump(
        data, Dumper=_Dumper, sort_keys=True, default_flow_style=False, allow_unicode=True, width=4096
    ).encode("utf-8")


def to_yaml_documents(documents: Iterable[Any]) -> bytes:
    """A multi-document YAML stream, each document introduced by `---`."""
    return yaml.dump_all(
        list(documents),
        Dumper=_Dumper,
        sort_keys=True,
        default_flow_style=False,
        allow_unicode=True,
        width=4096,
        explicit_start=True,
    ).encode("utf-8")
