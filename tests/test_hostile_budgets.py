"""Work that could grow without bound on small input is bounded (issue 13, finding 8): one
test per kind of amplification, each measuring time and peak memory (tracemalloc: what Python
allocates; a CEL evaluation runs under its own limits) in the test process, with generous
margins."""

from __future__ import annotations

import json
import time
import tracemalloc
from contextlib import contextmanager

import pytest

from compiler import loader
from compiler.build import compile_mesh, emit
from compiler.loader import glob_matches
from compiler.render import RENDERERS
from tests.test_bad_input import MESH, SERVICE

CALLER = SERVICE.replace("name: api", "name: web") + "calls: [api]\n"


@contextmanager
def bounded(seconds: float, megabytes: float):
    """Fails unless the block finishes within `seconds` and allocates at most `megabytes`."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert elapsed < seconds, f"took {elapsed:.1f}s"
    assert peak < megabytes * 1024 * 1024, f"peaked at {peak / 1024 / 1024:.0f} MB"


@pytest.mark.parametrize(("pattern", "path", "expected"), [
    ("vendor", "vendor/x.yaml", True),
    ("vendor/*.yaml", "vendor/x.yaml", True),
    ("vendor/*", "vendor/a/x.yaml", True),  # a directory the pattern names is excluded whole
    ("*.yaml", "a/x.yaml", False),
    ("**/x.yaml", "a/b/x.yaml", True),
    ("**/x.yaml", "x.yaml", True),
    ("a/**/c", "a/c/d.yaml", True),
    ("a/?.yaml", "a/bb.yaml", False),
    ("*a*a*b", "aaab", True),
])
def test_exclude_globs(pattern: str, path: str, expected: bool) -> None:
    assert glob_matches(pattern, path) is expected


def test_a_backtracking_glob_is_linear(make_mesh) -> None:
    pattern = "*a" * 40 + "*b"
    root = make_mesh({"mesh.yaml": MESH + f'exclude: ["{pattern}"]\n', "a.yaml": SERVICE,
                      ("a" * 200) + ".yaml": SERVICE.replace("name: api", "name: other")})
    with bounded(seconds=5, megabytes=50):
        compiled = compile_mesh(root)
    assert [d.code.code for d in compiled.report.sorted() if d.severity == "error"] == []


def test_a_tiny_rate_limit_period_is_arithmetic(make_mesh) -> None:
    root = make_mesh({"mesh.yaml": MESH, "a.yaml": SERVICE + "rateLimit: {requests: 1, per: 0.0000001ms}\n"})
    with bounded(seconds=10, megabytes=50):
        compiled = compile_mesh(root)
        artifacts = emit(compiled.graph, compiled.report, ["envoy"])
    assert artifacts and not compiled.report.has_errors
    # 1 request per 1e-10 s is 5e8 tokens per 50 ms refill: the rate the intent names
    assert b'"max_tokens": 500000000' in next(a.content for a in artifacts if a.path.endswith("api.yaml"))


def test_a_rate_no_token_bucket_holds_is_located(make_mesh) -> None:
    root = make_mesh({"mesh.yaml": MESH, "a.yaml": SERVICE + "rateLimit: {requests: 2000000000, per: 1ms}\n"})
    diagnostics = compile_mesh(root).report.sorted()
    assert [(d.code.code, str(d.location)) for d in diagnostics] == [("MESH108", "a.yaml:7:12")]


def test_echoing_many_diagnostics_of_one_long_line_is_bounded(make_mesh) -> None:
    fields = ", ".join(f"unknown{i}: {'x' * 30}" for i in range(1000))  # ~39 KB on one line
    root = make_mesh({"mesh.yaml": MESH, "a.yaml": f"{{apiVersion: meshc/v1, kind: Service, name: api, {fields}}}\n"})
    compiled = compile_mesh(root)
    with bounded(seconds=5, megabytes=50):
        text = RENDERERS["text"](compiled.report.sorted(), compiled.sources)
    assert len(text) < 100_000


def test_the_unreachable_rule_check_is_not_quadratic(make_mesh) -> None:
    rules = "".join(f"  - match: [{{path: {{exact: /p{i}}}}}]\n    to: [{{service: api}}]\n" for i in range(4000))
    rules += "  - match: [{path: {exact: /p7}}]\n    to: [{service: api}]\n"  # unreachable: rule 7 first
    route = "apiVersion: meshc/v1\nkind: Route\nname: big\nservice: api\nrules:\n" + rules
    root = make_mesh({"mesh.yaml": MESH, "a.yaml": SERVICE, "b.yaml": CALLER, "route.yaml": route})
    with bounded(seconds=60, megabytes=300):
        compiled = compile_mesh(root)
    assert [d.code.code for d in compiled.report.sorted() if d.code.code == "MESH301"] == ["MESH301"]


def test_a_large_document_is_not_called_an_alias_bomb(make_mesh) -> None:
    body = "".join(f"k{i}: [{', '.join('1' * 1 for _ in range(10))}]\n" for i in range(25_000))
    root = make_mesh({"mesh.yaml": MESH, "big.yaml": body})
    with bounded(seconds=120, megabytes=600):
        (diagnostic,) = compile_mesh(root).report.sorted()
    assert diagnostic.code.code == "MESH005"
    assert "alias" not in diagnostic.message and "split it" in diagnostic.message
    bomb = "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(6))
    (diagnostic,) = compile_mesh(make_mesh({"mesh.yaml": MESH, "big.yaml": bomb})).report.sorted()
    assert "alias bomb" in diagnostic.message


def test_many_small_documents_stop_at_the_document_budget(make_mesh, monkeypatch) -> None:
    """A file of tiny documents stops at the build's document budget (200,000; 20,000 here to
    keep the test short), with memory in proportion to the budget, not to the file."""
    monkeypatch.setattr(loader, "MAX_DOCUMENTS", 20_000)
    text = "{}\n---\n" * 600_000  # 4 MiB of empty mappings
    root = make_mesh({"mesh.yaml": MESH, "many.yaml": text[: loader.MAX_FILE_BYTES - 10]})
    with bounded(seconds=120, megabytes=150):
        diagnostics = compile_mesh(root).report.sorted()
    assert [(d.code.code, d.location.file) for d in diagnostics] == [("MESH012", "many.yaml")]
    assert diagnostics[0].location.line == 2 * (20_000 - 1) + 1


def test_the_total_input_budget_names_the_first_file_not_read(make_mesh, monkeypatch) -> None:
    monkeypatch.setattr(loader, "MAX_INPUT_BYTES", 4096)
    files = {"mesh.yaml": MESH, **{f"s{i:02}.yaml": SERVICE.replace("name: api", f"name: s{i}") + "#" * 400 + "\n"
                                   for i in range(20)}}
    with bounded(seconds=10, megabytes=50):
        diagnostics = compile_mesh(make_mesh(files)).report.sorted()
    [budget] = [d for d in diagnostics if d.code.code == "MESH012"]
    read = sum(1 for name in files if name.startswith("s") and name < budget.location.file)
    assert 0 < read < 20 and "4 MiB" not in budget.message
    assert f"the {20 - read - 1} after it are not read" in budget.message


SIXTEEN = "[" + ",".join(str(i) for i in range(16)) + "]"


def _cel_policy(rule: str) -> str:
    return ("apiVersion: meshc/v1\nkind: Policy\nname: costly\nappliesTo: Service\nseverity: error\n"
            f"rule: {json.dumps(rule)}\nmessage: never\n")


@pytest.mark.parametrize(("rule", "why"), [
    # ten nested comprehensions over a 10-element list: 10^10 steps
    ("[0,1,2,3,4,5,6,7,8,9]" + "".join(f".all(x{i}, [0,1,2,3,4,5,6,7,8,9]" for i in range(9))
     + ".all(y, true)" + ")" * 9, "ran past"),
    # six nested maps over 16 elements, each building a list of strings: 16^6 strings
    ("size(" + "".join(f"{SIXTEEN}.map({v}, " for v in "abcdef") + "'" + "a" * 64 + "'" + ")" * 6 + ") > 0", ""),
], ids=["nested-all", "nested-map"])
def test_a_costly_policy_is_stopped_at_its_budget(make_mesh, monkeypatch, rule: str, why: str) -> None:
    from policies import cel_policies

    monkeypatch.setattr(cel_policies, "EVALUATION_SECONDS", 2.0)
    monkeypatch.setattr(cel_policies, "EVALUATION_MEMORY", 256 * 1024 * 1024)
    root = make_mesh({"mesh.yaml": MESH, "a.yaml": SERVICE, "b.yaml": CALLER, "policy.yaml": _cel_policy(rule)})
    with bounded(seconds=60, megabytes=100):
        diagnostics = compile_mesh(root).report.sorted()
    stopped = [d for d in diagnostics if d.code.code == "MESH372"]
    assert len(stopped) == 2, [str(d.message) for d in diagnostics]  # each Service, each in its own budget
    assert all("within the evaluation budget" in d.message and why in d.message for d in stopped)
    assert {d.location.file for d in stopped} == {"a.yaml", "b.yaml"}


def test_policies_still_judge_after_a_stopped_evaluation(make_mesh, monkeypatch) -> None:
    from policies import cel_policies

    monkeypatch.setattr(cel_policies, "EVALUATION_SECONDS", 2.0)
    slow = ("self.name != 'api' || [0,1,2,3,4,5,6,7,8,9]" + "".join(f".all(x{i}, [0,1,2,3,4,5,6,7,8,9]" for i in range(9))
            + ".all(y, true)" + ")" * 9)
    root = make_mesh({"mesh.yaml": MESH, "a.yaml": SERVICE, "b.yaml": CALLER,
                      "policy.yaml": _cel_policy(slow).replace("message: never", "message: web is fine")})
    diagnostics = compile_mesh(root).report.sorted()
    assert [(d.code.code, d.location.file) for d in diagnostics if d.code.code.startswith("MESH37")] == [
        ("MESH372", "a.yaml")]


def test_an_output_multiplied_into_many_proxies_stops_at_the_output_budget(make_mesh, monkeypatch) -> None:
    """A Route of many rules called by many services: each caller's sidecar carries all of it.
    At the real budget (1 GiB) that takes 40,000 rules and 100 callers; 2 MiB here."""
    from click.testing import CliRunner

    from compiler import build
    from compiler.cli import main

    monkeypatch.setattr(build, "MAX_OUTPUT_BYTES", 2 * 1024 * 1024)
    rules = "".join(f"  - match: [{{path: {{exact: /p{i}}}}}]\n    to: [{{service: api}}]\n" for i in range(1500))
    callers = {f"c{i}.yaml": CALLER.replace("name: web", f"name: c{i}") for i in range(12)}
    root = make_mesh({"mesh.yaml": MESH + "authorization: allow\n", "a.yaml": SERVICE, **callers,
                      "route.yaml": "apiVersion: meshc/v1\nkind: Route\nname: big\nservice: api\nrules:\n" + rules})
    with bounded(seconds=300, megabytes=200):
        result = CliRunner().invoke(main, ["build", str(root), "-t", "envoy", "--format", "json"])
    assert result.exit_code == 1, result.output
    found = [d for d in json.loads(result.stdout)["diagnostics"] if d["code"] == "MESH013"]
    assert [d["location"]["file"] for d in found] == ["route.yaml"], result.output
    assert "output budget of 2 MiB" in found[0]["message"]
    assert not (root / "build").exists()
