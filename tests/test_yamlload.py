"""compiler.yamlload: the fast constructor reads exactly what the positioned one reads, and
positions are computed only when a diagnostic asks for one."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.serialize import to_yaml
from compiler.yamlload import YamlProblem, _load_fast, _load_positioned, _read_positioned, load_documents

_scalars = st.text(max_size=20) | st.integers() | st.floats(allow_nan=False) | st.booleans() | st.none()
_data = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


def _texts(data) -> list[str]:
    """The same data in meshc's block style, PyYAML's flow style and PyYAML's mixed style."""
    return [to_yaml(data).decode()] + [
        yaml.safe_dump(data, default_flow_style=style, allow_unicode=True) for style in (True, None)
    ]


@settings(max_examples=200, deadline=None)
@given(st.lists(_data, min_size=1, max_size=3))
def test_fast_and_positioned_readings_agree(documents) -> None:
    for text in [*_texts(documents[0]), "".join("---\n" + to_yaml(d).decode() for d in documents)]:
        fast = _load_fast(text)
        positioned = _read_positioned(text)
        assert [(d.data, d.line) for d in fast] == [(data, line) for data, line, _ in positioned]


TEXT = "a: 1\nb:\n  c: [x, {d: true}]\n---\nkind: Service\nports:\n  - {name: http, port: 8080}\n"


def test_positions_are_read_when_asked() -> None:
    first, second = load_documents(TEXT)
    assert first.positions._roots == []  # no marks were kept on the way in
    assert first.locate(("b", "c", 1, "d")) == (3, 14)
    assert first.locate(("b", "c"), key=True) == (3, 3)
    assert second.locate(("ports", 0, "port")) == (7, 24)
    assert second.locate(("ports", 0, "nope")) == (7, 5)  # a part not in the data is skipped
    assert second.line == 5
    assert first.positions is second.positions and len(first.positions._roots) == 2  # composed once


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(max_size=8) | st.integers() | st.booleans(), _data, min_size=1, max_size=4))
def test_positions_composed_again_equal_the_recorded_ones(data) -> None:
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    [fast] = load_documents(text)
    positioned = _load_positioned(text)[0]

    def paths(node, prefix=()):
        yield prefix
        if isinstance(node, dict):
            for k, v in node.items():
                yield from paths(v, (*prefix, k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                yield from paths(v, (*prefix, i))

    for path in paths(data):
        for key in (False, True):
            assert fast.locate(path, key=key) == positioned.locate(path, key=key)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a: &x [1, 2]\nb: *x\n", {"a": [1, 2], "b": [1, 2]}),  # anchors and aliases
        ("a: &b {x: 1}\nc:\n  <<: *b\n  y: 2\n", {"a": {"x": 1}, "c": {"x": 1, "y": 2}}),  # merge key
        ("a: !!str 12\nb: !!int '7'\n", {"a": "12", "b": 7}),  # explicit core tags
    ],
)
def test_what_the_fast_constructor_leaves_is_read_with_positions(text: str, expected) -> None:
    [document] = load_documents(text)
    assert document.data == expected
    assert document.locate(("a",)) == (1, 4)


@pytest.mark.parametrize(
    "text, code, position",
    [
        ("a: 1\na: 2\n", "MESH003", (2, 1)),
        ("a: !custom 1\n", "MESH004", (1, 4)),
        ("a: [1\n", "MESH002", (2, 1)),
    ],
)
def test_problems_are_located_whichever_constructor_met_them(text: str, code: str, position) -> None:
    with pytest.raises(YamlProblem) as raised:
        load_documents(text)
    assert (raised.value.code.code, raised.value.line, raised.value.column) == (code, *position)


@pytest.mark.parametrize("text", [
    "a: 1\n---\nb: 2\n---\nc: 3\n",  # read by the fast constructor
    "a: 1\n---\nb: 2\n---\nc: &x 3\n",  # an anchor: read by the positioned one
])
def test_the_document_budget_stops_both_readings_at_the_same_document(text: str) -> None:
    assert len(load_documents(text, max_documents=3)) == 3
    with pytest.raises(YamlProblem) as stopped:
        load_documents(text, max_documents=2)
    assert (stopped.value.code.code, stopped.value.line) == ("MESH012", 5)


def test_a_text_long_enough_for_a_document_over_the_node_budget_is_counted(monkeypatch) -> None:
    """The fast constructor counts no nodes; a text that could hold more than the budget goes
    to the positioned one, which does."""
    monkeypatch.setattr("compiler.yamlload.MAX_EXPANDED_NODES", 50)
    with pytest.raises(YamlProblem) as refused:
        load_documents("[" + ",".join(["1"] * 60) + "]\n")
    assert refused.value.code.code == "MESH005" and "split it" in refused.value.message
