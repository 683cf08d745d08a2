"""meshc's YAML 1.2 loader keeps its restrictions to itself."""

from __future__ import annotations

import datetime

import pytest
import yaml

from compiler import codes
from compiler.yamlload import YamlProblem, load_documents


def test_the_core_schema_loader_leaves_yaml_safe_load_as_it_was() -> None:
    with pytest.raises(YamlProblem) as problem:
        load_documents("when: 2024-01-01\n---\nblob: !!binary aGk=\n")
    assert (problem.value.code, problem.value.line) == (codes.UNSUPPORTED_TAG, 3)
    assert load_documents("when: 2024-01-01\n")[0].data == {"when": "2024-01-01"}
    # PyYAML's own safe loader, in the same process, still reads YAML 1.1 timestamps and binary
    assert yaml.safe_load("when: 2024-01-01\nblob: !!binary aGk=\n") == {"when": datetime.date(2024, 1, 1),
                                                                        "blob": b"hi"}
