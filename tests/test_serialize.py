"""compiler.serialize's YAML emitter: every value reads back as exactly itself in YAML 1.1
(PyYAML, which resolves like Kubernetes' go-yaml v2) and YAML 1.2 (ruamel.yaml's pure
reader, and meshc's own core-schema loader), and strings stay plain only where that is safe."""

from __future__ import annotations

import math

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from compiler.serialize import _quote, _single_quotable, to_yaml, to_yaml_documents
from compiler.yamlload import load_documents

_YAML12 = YAML(typ="safe", pure=True)  # ruamel's pure reader follows YAML 1.2 by default

# Strings a reader of some YAML version would take for something else if written plain.
# YAML 1.1 (yaml.org/type/bool.html, null.html, int.html, float.html, timestamp.html),
# go-yaml v2 (resolve.go: resolveMapList has y/Y/n/N as booleans) and YAML 1.2's core schema.
AMBIGUOUS = [
    # booleans of 1.1, go-yaml and 1.2, in every case
    "y", "Y", "n", "N", "yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF",
    "true", "True", "TRUE", "false", "False", "FALSE", "tRUE", "yEs",
    # nulls and the empty string
    "null", "Null", "NULL", "~", "", " ",
    # integers: decimal, signed, octal (1.1 and 1.2 forms), hex, binary, underscores, base 60
    "0", "7", "-1", "+1", "012", "0o17", "0x1F", "0X1f", "0b101", "1_000", "190:20:30", "-0",
    # floats: exponents with and without dots, leading dots, infinities, not-a-number, base 60
    "1.5", "1e3", "1E3", "1.0e+3", ".5", "-.5", "+.5", "1.", "6.8523015e+5", "685.230_15e+03",
    "190:20:30.15", ".inf", "-.inf", "+.inf", ".Inf", ".INF", ".nan", ".NaN", ".NAN", "inf", "nan", "NaN",
    "Infinity",
    # the YAML 1.1 spec's float pattern allows more than one dot
    "10.0.0.1", "1.2.3",
    # timestamps
    "2001-12-14", "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10 -5", "2002-12-14T00:00:00Z",
    # merge and value keys
    "<<", "=",
    # indicators at the start, and the two-character indicators anywhere
    "-", "- a", "-a", "?", "? a", ":", ": a", "a:", "a: b", "a:b c: d", "#", "#a", "a #b", ",", "[", "]", "{", "}",
    "{a: 1}", "[a]", "&a", "*a", "!a", "!!str", "|", ">", "'", '"', "%", "@", "`", "a'b", 'a"b',
    "--- a", "---", "...", "a\\b",
    # surrounding and repeated white space
    " a", "a ", "a  b", "\ta", "a\t",
    # line breaks of YAML 1.1 and 1.2, multi-line text
    "a\nb", "a\n", "\n", "a\r\nb", "a\rb", "a\x85b", "a\u2028b", "a\u2029b", "line 1\n\nline 3\n",
    # control characters, DEL, C1 controls, byte-order mark, non-characters
    "\x00", "a\x07b", "\x1b[31m", "\x7f", "\x80", "\x9f", "\ufeff", "a\ufeffb", "\ufffe", "\uffff",
    # non-ASCII text
    "café", "日本語", "emoji 🚀", "\u00a0", "ünïcödé: yes",
]

# Strings that stay plain: what meshc writes every day must read as it did before.
PLAIN = ["svc-a", "/healthz", "http://svc.ns:8080/x", "10s", "5xx,reset", "100ms", "1m30s", "app.kubernetes.io/name",
         "team_a", "a b", "v1", "/api/*", "b.*"]


def _readers(text: bytes) -> list:
    return [
        yaml.safe_load(text),
        _YAML12.load(text),
        load_documents(text.decode("utf-8"))[0].data,
    ]


@pytest.mark.parametrize("value", AMBIGUOUS, ids=repr)
def test_ambiguous_strings_round_trip_as_strings(value: str) -> None:
    for document in ({"key": value}, [value], {value: "v"} if value else {"k": [value]}):
        for data in _readers(to_yaml(document)):
            assert data == document


@pytest.mark.parametrize("value", PLAIN)
def test_unambiguous_strings_stay_plain(value: str) -> None:
    assert to_yaml({"k": value}) == f"k: {value}\n".encode()
    assert all(data == {"k": value} for data in _readers(to_yaml({"k": value})))


@pytest.mark.parametrize("value", [0, -7, 2**70, 1.5, -0.25, 1e17, 1e-7, -1e300, 0.0, True, False, None, math.inf, -math.inf])
def test_scalars_keep_their_type(value) -> None:
    for data in _readers(to_yaml({"k": value})):
        assert type(data["k"]) is type(value) and data["k"] == value


def test_nan_reads_back_as_nan() -> None:
    for data in _readers(to_yaml({"k": math.nan})):
        assert math.isnan(data["k"])


def test_block_layout() -> None:
    data = {"b": [{"x": 1, "y": [1, [2, 3]]}, [], {}], "a": {"c": {"d": None}}, "e": {}, "f": "10.0.0.1"}
    assert to_yaml(data) == (
        b"a:\n"
        b"  c:\n"
        b"    d: null\n"
        b"b:\n"
        b"- x: 1\n"
        b"  'y':\n"  # go-yaml v2 reads a plain y as true
        b"  - 1\n"
        b"  - - 2\n"
        b"    - 3\n"
        b"- []\n"
        b"- {}\n"
        b"e: {}\n"
        b"f: '10.0.0.1'\n"
    )


def test_documents_stream() -> None:
    stream = to_yaml_documents([{"a": 1}, {}, ["x"]])
    assert stream == b"---\na: 1\n---\n{}\n---\n- x\n"
    assert list(yaml.safe_load_all(stream)) == [{"a": 1}, {}, ["x"]]
    assert list(_YAML12.load_all(stream)) == [{"a": 1}, {}, ["x"]]


@pytest.mark.parametrize("value", [(1, 2), {1, 2}, b"bytes", object()], ids=repr)
def test_anything_but_plain_data_is_refused(value) -> None:
    with pytest.raises(TypeError):
        to_yaml({"k": value})


def test_overlong_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="longer than YAML allows"):
        to_yaml({"k" * 1025: 1})


_scalars = (
    st.text()
    | st.sampled_from(AMBIGUOUS + PLAIN)
    | st.integers()
    | st.floats(allow_nan=False)
    | st.booleans()
    | st.none()
)
_keys = st.text(max_size=40) | st.sampled_from(AMBIGUOUS + PLAIN)
_data = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_keys, children, max_size=4),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_keys, _data, max_size=5))
def test_any_plain_data_round_trips(data) -> None:
    text = to_yaml(data)
    for read in _readers(text):
        assert read == data


def test_ascii_text_is_single_quoted_exactly_where_the_printable_ranges_say() -> None:
    """ASCII text is judged by str.isprintable instead of the compiled ranges (which cost
    milliseconds to compile at start-up): the two must agree on every ASCII character."""
    for point in range(128):
        text = f"'{chr(point)}"  # a leading quote is never plain
        assert _quote(text).startswith("'") == bool(_single_quotable().fullmatch(text)), point
