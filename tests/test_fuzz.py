"""Hypothesis: no input a user can write makes meshc raise; every diagnostic is located."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.build import compile_mesh
from tests.conftest import BOOKINFO, copy_mesh, example_files

FIELDS = [
    "apiVersion", "kind", "name", "namespace", "platform", "ports", "port", "protocol", "calls", "rules",
    "match", "to", "weight", "version", "versions", "service", "gateway", "hosts", "allow", "deny", "from",
    "listeners", "tls", "mode", "endpoints", "address", "resilience", "timeout", "retries", "attempts",
    "headers", "path", "prefix", "exact", "sni", "platforms", "rule", "appliesTo", "message", "labels",
]
WORDS = ["meshc/v1", "Service", "Route", "Mesh", "AccessPolicy", "Gateway", "ExternalService", "Policy",
         "api", "k8s", "http", "tcp", "v1", "10s", "0s", "-1s", "*", "on", "../x", "", "STRICT"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
    st.sampled_from(WORDS), st.text(max_size=12),
)
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(FIELDS), children, max_size=6),
    ),
    max_leaves=30,
)
intent_like = st.fixed_dictionaries(
    {"apiVersion": st.just("meshc/v1"), "kind": st.sampled_from(WORDS[1:8]), "name": st.sampled_from(WORDS)},
    optional=dict.fromkeys(FIELDS[3:], documents),
)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _compile_with(files: dict[str, bytes]) -> None:
    root = Path(tempfile.mkdtemp(prefix="meshc-fuzz-"))
    try:
        copy_mesh(BOOKINFO, root, dirs_exist_ok=True)
        for relative, content in files.items():
            (root / relative).write_bytes(content)
        report = compile_mesh(root).report
        for diagnostic in report.diagnostics:
            assert diagnostic.code.code.startswith("MESH")
            if diagnostic.code.code != "MESH008":
                assert diagnostic.location is not None and diagnostic.location.line >= 1
    finally:
        shutil.rmtree(root)


@SETTINGS
@given(st.lists(st.one_of(intent_like, documents), min_size=1, max_size=3))
def test_generated_documents_never_raise(docs: list) -> None:
    text = yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True)
    _compile_with({"fuzz.yaml": text.encode("utf-8")})


@SETTINGS
@given(st.sampled_from([p.relative_to(BOOKINFO).as_posix() for p in example_files(BOOKINFO)]),
       st.integers(0, 10_000), st.integers(0, 40), st.text(max_size=8))
def test_mutated_example_files_never_raise(relative: str, position: int, cut: int, insert: str) -> None:
    text = (BOOKINFO / relative).read_text()
    position %= len(text) + 1
    mutated = text[:position] + insert + text[position + cut:]
    _compile_with({relative: mutated.encode("utf-8")})


@SETTINGS
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(content: bytes) -> None:
    _compile_with({"noise.yaml": content})
