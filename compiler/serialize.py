"""Deterministic serialisation of structured artifacts: sorted keys, LF, one trailing newline."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml
from yaml.nodes import ScalarNode

try:
    from yaml import CSafeDumper
except ImportError:  # pragma: no cover - libyaml is required, see pyproject.toml
    raise ImportError("meshc needs PyYAML built with libyaml (yaml.CSafeDumper)") from None


class _Dumper(CSafeDumper):
    """libyaml's emitter with a leaner representer for plain data.

    PyYAML represents data in Python even with libyaml: for artifacts made of dicts, lists and
    scalars the generic dispatch, the alias bookkeeping and re-resolving every repeated scalar
    were most of a build's time. Output is unchanged: the same nodes reach the same emitter,
    and scalars are still quoted wherever YAML 1.1 readers would take them for another type.
    """

    def ignore_aliases(self, data: Any) -> bool:
        return True  # artifacts never use anchors: a repeated object is written out again

    def represent_data(self, data: Any) -> Any:
        kind = type(data)
        self.alias_key = None
        if kind is str:
            return self.represent_str(data)
        if kind is dict:
            return self.represent_dict(data)
        if kind is list:
            return self.represent_list(data)
        return super().represent_data(data)

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        # A scalar that no implicit resolver can claim (by its first character) is a plain
        # string: exactly what BaseResolver.resolve concludes, without trying each pattern.
        if kind is ScalarNode and (not implicit[0] or (value and value[0] not in _RESOLVER_FIRST_CHARS)):
            return self.DEFAULT_SCALAR_TAG
        return super().resolve(kind, value, implicit)


_RESOLVER_FIRST_CHARS = frozenset(key for key in _Dumper.yaml_implicit_resolvers if key)
assert None not in _Dumper.yaml_implicit_resolvers, "a wildcard implicit resolver would defeat the fast path"


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
