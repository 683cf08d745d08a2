"""`meshc fmt` and `meshc check --fix`: canonical layout, comments kept, meaning kept, fixes said."""

from __future__ import annotations

import io
import random
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from compiler.cli import main
from compiler.fmt import FormatProblem, format_text
from compiler.yamlload import load_documents
from tests.conftest import EXAMPLES, example_files

runner = CliRunner()
EXAMPLE_FILES = example_files(EXAMPLES)


def _data(text: str) -> list:
    return [d.data for d in load_documents(text) if d.data is not None]


# --------------------------------------------------------------------------------------------
# The layout


def test_examples_are_formatted() -> None:
    result = runner.invoke(main, ["fmt", "--check", str(EXAMPLES / "bookinfo"), str(EXAMPLES / "gateway-api-shop")])
    assert result.exit_code == 0, result.output


def test_keys_follow_the_model_and_identity_comes_first() -> None:
    text = ("ports: [{protocol: http, port: 80, name: web}]\nplatform: k8s\nname: web\nkind: Service\n"
            "apiVersion: meshc/v1\nextra: kept\n")
    out = format_text(text)
    assert out.splitlines() == [
        "apiVersion: meshc/v1", "kind: Service", "name: web", "platform: k8s",
        "ports: [{name: web, port: 80, protocol: http}]", "extra: kept",  # unknown keys last, kept
    ]


def test_platform_keys_name_kind_then_own_fields() -> None:
    text = ("apiVersion: meshc/v1\nkind: Mesh\nname: m\nplatforms:\n"
            "  - certificates: {mode: sds}\n    clusterDomain: c.local\n    kind: kubernetes\n    name: k\n")
    out = format_text(text)
    assert "  - name: k\n    kind: kubernetes\n    clusterDomain: c.local\n    certificates: {mode: sds}\n" in out


def test_short_lists_flow_sections_and_lists_of_records_block() -> None:
    text = ("apiVersion: meshc/v1\nkind: Route\nname: r\nservice: s\nrules:\n"
            "- to:\n  - {version: v1, weight: 50}\n  - {version: v2, weight: 50}\n  match:\n  - method: GET\n"
            "- {to: [{version: v1}]}\n")
    out = format_text(text)
    assert out.endswith(
        "rules:\n"
        "  - match: [{method: GET}]\n"  # one record: flow
        "    to:\n      - {version: v1, weight: 50}\n      - {version: v2, weight: 50}\n"  # two: one a line
        "  - to: [{version: v1}]\n"  # a route rule is a section: always a block
    )


def test_long_lists_break_and_strings_are_quoted_only_when_needed() -> None:
    hosts = [f"host-{n}.example.com" for n in range(8)]
    text = ("apiVersion: meshc/v1\nkind: ExternalService\nname: e\n"
            f"hosts: [{', '.join(hosts)}]\nports: [{{name: 'x', port: 1, protocol: 'tcp'}}]\n")
    out = format_text(text)
    assert "hosts:\n" + "".join(f"  - {h}\n" for h in hosts) in out  # past 100 columns: one a line
    assert "ports: [{name: x, port: 1, protocol: tcp}]" in out
    wildcard = format_text("apiVersion: meshc/v1\nkind: Route\nname: r\ngateway: g\nhosts: ['*.a.com']\n"
                           "rules: [{to: [{service: s}]}]\nsome: 'yes'\nnumber: '80'\n")
    assert 'hosts: ["*.a.com"]' in wildcard  # plain would be an alias
    assert "some: yes" in wildcard  # a string in YAML 1.2, as meshc reads it
    assert 'number: "80"' in wildcard  # plain would be a number


def test_comments_move_with_their_key() -> None:
    text = ("# file header\n\napiVersion: meshc/v1\nkind: Mesh\nname: m\n"
            "suppress:\n  # why we suppress\n  - {code: MESH431}  # until Q3\n"
            "platforms:   # where it runs\n  - {name: vm, kind: vm}\n# the end\n")
    out = format_text(text)
    assert out == ("# file header\n\napiVersion: meshc/v1\nkind: Mesh\nname: m\n"
                   "platforms:  # where it runs\n  - name: vm\n    kind: vm\n"  # a platform is a section
                   "suppress:\n  # why we suppress\n  - {code: MESH431}  # until Q3\n# the end\n")


def test_multi_document_files_and_blank_lines() -> None:
    text = ("apiVersion: meshc/v1\nkind: Policy\nname: p\nappliesTo: Service\nrule: 'true'\nmessage: m\n\n\n"
            "---\n# second\n\n\nkind: Policy\napiVersion: meshc/v1\nname: q\nappliesTo: Route\nrule: |\n"
            "  # not a comment\n  true\nmessage: m\n")
    out = format_text(text)
    assert out.count("---\n") == 1
    assert "# second\n\n" in out and "# second\n\n\n" not in out  # runs of blank lines become one
    assert "rule: |\n  # not a comment\n  true\n" in out  # a block scalar's text is not a comment
    assert format_text(out) == out


@pytest.mark.parametrize("item", ["{service: a, weight: 80}", "[a, b]", "plain"])
@pytest.mark.parametrize("key_comment", ["", "  # on the key"])
@pytest.mark.parametrize("second, third", [("    # before the second key\n", ""),
                                           ("", "    # before the third key\n")])
def test_an_item_after_a_commented_flow_item_keeps_its_line_breaks(item: str, key_comment: str,
                                                                    second: str, third: str) -> None:
    # ruamel's emitter kept "still after `- `" across the end-of-line comment of a flow item, so
    # the next item's second key joined its first (`- a: 1 b: 2`, found by the property below)
    text = (f"to:{key_comment}\n  - {item}  # on the item\n  - version: v2\n{second}    service: b\n"
            f"{third}    weight: 20\n")
    out = format_text(text)
    assert f"  - version: v2\n{second}    service: b\n{third}    weight: 20\n" in out
    assert _data(out) == _data(text) and format_text(out) == out
    assert {line.strip() for line in out.splitlines() if "#" in line} == \
        {line.strip() for line in text.splitlines() if "#" in line}


@pytest.mark.parametrize("text, code", [
    ("a: [\n", "MESH002"),
    ("a: 1\na: 2\n", "MESH003"),
    ("a: !!python/object x\n", "MESH004"),
    # ruamel.yaml reads a timestamp here, meshc a string: rewriting it could change it
    ("at: 2001-12-14t21:59:43.10-05:00\n", "MESH050"),
])
def test_what_fmt_cannot_lay_out_is_a_located_error(text: str, code: str) -> None:
    with pytest.raises(FormatProblem) as problem:
        format_text(text)
    assert problem.value.code.code == code and problem.value.line >= 1


def test_fmt_command_writes_checks_and_skips_files_outside_a_mesh(tmp_path: Path) -> None:
    (tmp_path / "mesh").mkdir()
    mesh = tmp_path / "mesh" / "mesh.yaml"
    mesh.write_text("name: m\nkind: Mesh\napiVersion: meshc/v1\nplatforms: [{name: k, kind: kubernetes}]\n")
    outside = tmp_path / "ci.yaml"
    outside.write_text("b: 1\na: 2\n")
    check = runner.invoke(main, ["fmt", "--check", str(mesh), str(outside)])
    assert check.exit_code == 1 and f"would reformat {mesh}" in check.output and "ci.yaml" not in check.output
    diff = runner.invoke(main, ["fmt", "--diff", str(tmp_path / "mesh")])
    assert diff.exit_code == 1 and "+apiVersion: meshc/v1" in diff.output
    assert mesh.read_text().startswith("name: m")  # --check and --diff change nothing
    assert runner.invoke(main, ["fmt", str(tmp_path / "mesh")]).exit_code == 0
    assert mesh.read_text().startswith("apiVersion: meshc/v1\nkind: Mesh\nname: m\n")
    assert outside.read_text() == "b: 1\na: 2\n"
    assert runner.invoke(main, ["fmt", "--check", str(tmp_path / "mesh")]).exit_code == 0
    broken = tmp_path / "mesh" / "bad.yaml"
    broken.write_text("a: [\n")
    result = runner.invoke(main, ["fmt", str(tmp_path / "mesh")])
    assert result.exit_code == 1 and "bad.yaml:2:1: error[MESH002]" in result.output
    assert runner.invoke(main, ["fmt", str(tmp_path)]).exit_code == 2  # not a mesh root


def test_precommit_hook_runs_fmt_check() -> None:
    hooks = YAML(typ="safe").load((EXAMPLES.parent / ".pre-commit-hooks.yaml").read_text())
    hook = next(h for h in hooks if h["id"] == "meshc-fmt")
    assert hook["entry"] == "meshc fmt --check" and hook["language"] == "python"


# --------------------------------------------------------------------------------------------
# Properties: on any layout of any example, fmt is idempotent, keeps comments where they were
# and the data as it was, and its result does not depend on the input's order or style.


USER_KEYED = {"versions", "labels", "headers", "query", "set", "add", "responseHeaders"}  # names the user chose: their order is kept


def _relayout(data, rng: random.Random, parent: object = None):
    """The same data with fields shuffled and each collection flow or block at random."""
    if isinstance(data, dict):
        keys = list(data)
        if parent not in USER_KEYED:
            rng.shuffle(keys)
        node = CommentedMap((k, _relayout(data[k], rng, k)) for k in keys)
    elif isinstance(data, list):
        node = CommentedSeq(_relayout(v, rng) for v in data)
    else:
        return data
    leaf = all(not isinstance(v, (dict, list)) for v in (data.values() if isinstance(data, dict) else data))
    node.fa.set_flow_style() if leaf and rng.random() < 0.5 else node.fa.set_block_style()
    return node


def _dump(documents: list) -> str:
    yaml = YAML()
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096  # one line per scalar, so a comment can follow any line
    stream = io.StringIO()
    yaml.dump_all(documents, stream)
    return stream.getvalue()


_KEY = re.compile(r"^[-\s{\[]*([^:,\]}]*)")


def _anchor(line: str) -> tuple[bool, str]:
    """What a content line starts: (a sequence item?, its first key or scalar)."""
    return line.strip().startswith("- "), _KEY.match(line.strip()).group(1).strip()


def _comment_anchors(text: str) -> dict[str, tuple[bool, str]]:
    """comment -> what it precedes or ends the line of, for every comment in `text`."""
    out, pending = {}, []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# c"):
            pending.append(stripped)
        elif stripped and not stripped.startswith("---"):
            out.update((comment, _anchor(line)) for comment in pending)
            pending = []
            if " # e" in line:
                out[line[line.index(" # e") + 1:]] = _anchor(line)
    return out | dict.fromkeys(pending, (False, ""))


def _same_place(before: tuple[bool, str], after: tuple[bool, str]) -> bool:
    """The same key (a block mapping item's first key shares the dash's line, so a comment of
    that key stands above the item), or the same item, which may now start with another key."""
    return before[1] == after[1] or (before[0] and after[0])


def _add_comments(text: str, rng: random.Random) -> str:
    """Comments before and after random lines; not above a document's first key, where a
    comment is the document's own (it stays at the top)."""
    out = []
    first = True
    for number, line in enumerate(text.splitlines()):
        indent = line[: len(line) - len(line.lstrip())]
        if line.startswith("---"):
            first = True
        elif not first and rng.random() < 0.3:
            out.append(f"{indent}# c{number} before")
            if rng.random() < 0.3:
                out.append("")
        else:
            first = False
        out.append(line + (f"  # e{number}" if line.strip() and not line.startswith("---")
                           and rng.random() < 0.3 else ""))
    return "\n".join(out) + "\n"


PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(index=st.integers(0, len(EXAMPLE_FILES) - 1), seed=st.integers(0, 2**32 - 1))
def test_fmt_is_idempotent_and_canonical(index: int, seed: int) -> None:
    original = EXAMPLE_FILES[index].read_text()
    relaid = _dump([_relayout(d, random.Random(seed)) for d in _data(original)])
    formatted = format_text(relaid)
    assert _data(formatted) == _data(original)  # fmt never changes meaning
    assert format_text(formatted) == formatted  # idempotent
    bare = "".join(line + "\n" for line in original.splitlines() if not line.lstrip().startswith("#"))
    assert formatted == format_text(bare)  # one layout, whatever order and style came in


@PROPERTY
@given(index=st.integers(0, len(EXAMPLE_FILES) - 1), seed=st.integers(0, 2**32 - 1))
def test_fmt_keeps_every_comment_beside_its_key(index: int, seed: int) -> None:
    rng = random.Random(seed)
    original = EXAMPLE_FILES[index].read_text()
    commented = _add_comments(_dump([_relayout(d, rng) for d in _data(original)]), rng)
    formatted = format_text(commented)
    placed, kept = _comment_anchors(commented), _comment_anchors(formatted)
    assert sorted(kept) == sorted(placed)  # every comment, once
    assert all(_same_place(placed[c], kept[c]) for c in placed), (placed, kept)
    assert _data(formatted) == _data(commented)
    assert format_text(formatted) == formatted


# --------------------------------------------------------------------------------------------
# check --fix and did-you-mean


def test_unknown_fields_get_did_you_mean_and_fix_renames_them(make_mesh) -> None:
    root = make_mesh({
        "mesh.yaml": "apiVersion: meshc/v1\nkind: Mesh\nname: m\nplatforms: [{name: k, kind: kubernetes}]\n",
        "s.yaml": "apiVersion: meshc/v1\nkind: Service\nname: s\nplatform: k\n"
                  "ports: [{name: http, port: 80, protocol: http}]\nversions: {v1: {}}\n"
                  "resilience: {perTrytimeout: 1s}  # keep me\n",
        "r.yaml": "apiVersion: meshc/v1\nkind: Route\nname: r\nservice: s\n"
                  "rules:\n  - to: [{subset: v1}]\n    mirror: {service: s, \"subset\": v1}\n    timout: 1s\n",
    })
    check = runner.invoke(main, ["check", str(root)])
    assert check.exit_code == 1
    assert "rules[0].to[0].subset: Destination has no field 'subset' here" in check.output
    assert "hint: did you mean 'version'? (`meshc check --fix` renames it)" in check.output
    assert "hint: did you mean 'timeout'?\n" in check.output  # a guess, not a mechanical fix
    # the message names the object the key is in: the nested one, or the document's kind
    assert "resilience.perTrytimeout: Resilience has no field 'perTrytimeout' here" in check.output
    assert "rules[0].mirror.subset: Mirror has no field 'subset' here" in check.output
    assert "rules[0].timout: RouteRule has no field 'timout' here" in check.output
    fixed = runner.invoke(main, ["check", "--fix", str(root)])
    assert "r.yaml:6:11: renamed 'subset' to 'version'" in fixed.output
    assert "r.yaml:7:26: renamed 'subset' to 'version'" in fixed.output
    assert (root / "r.yaml").read_text().endswith(
        "  - to: [{version: v1}]\n    mirror: {service: s, \"version\": v1}\n    timout: 1s\n")
    # resilience.perTrytimeout is not a field of Resilience: no rename is offered there
    assert "resilience: {perTrytimeout: 1s}  # keep me\n" in (root / "s.yaml").read_text()
    assert fixed.exit_code == 1 and "timout" in fixed.output  # what is left is still reported


def test_fix_renames_mis_cased_and_snake_case_fields(make_mesh) -> None:
    root = make_mesh({
        "mesh.yaml": "apiVersion: meshc/v1\nkind: Mesh\nname: m\nDefaultNamespace: apps\n"
                     "platforms: [{name: k, kind: kubernetes, cluster_domain: c.local}]\n",
    })
    fixed = runner.invoke(main, ["check", "--fix", str(root)])
    assert fixed.exit_code == 0, fixed.output
    assert "renamed 'DefaultNamespace' to 'defaultNamespace'" in fixed.output
    assert "renamed 'cluster_domain' to 'clusterDomain'" in fixed.output
    assert runner.invoke(main, ["check", "--ref", "HEAD", "--fix", str(root)]).exit_code == 2


def test_aliases_are_kept_and_merge_keys_written_out() -> None:
    text = "base: &b {timeout: 1s, x: 2}  # c\na:\n  <<: *b\n  y: 3\nc: *b\n"
    out = format_text(text)
    assert out == "base: &b {timeout: 1s, x: 2}  # c\na: {y: 3, timeout: 1s, x: 2}\nc: *b\n"
    assert _data(out) == _data(text)
