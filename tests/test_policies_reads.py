"""Each check's declared `reads` is what it reads: every check runs over many meshes on a
recording graph (policies.check.ReadRecorder), and the kinds it opened must be exactly the
kinds it declares, taken over all meshes."""

from __future__ import annotations

import shutil
from dataclasses import fields, replace
from pathlib import Path

import pytest

from bench.generate import generate_mesh
from compiler.build import compile_mesh
from compiler.diagnostics import Report
from compiler.graph import MeshGraph
from policies.check import GRAPH_FIELD_KINDS, GRAPH_FIELDS_WITHOUT_KINDS, KINDS, Check, run_check
from policies.registry import CHECKS
from tests.conftest import EXAMPLES, REPO, copy_mesh
from tests.test_policies_checks import fixture_meshes


def _bookinfo_with_a_policy_over_every_kind(directory: Path) -> Path:
    root = directory / "bookinfo"
    copy_mesh(EXAMPLES / "bookinfo", root)
    shutil.copytree(REPO / "tests" / "fixtures" / "policies-every-kind", root / "policies" / "every-kind")
    return root


@pytest.fixture(scope="module")
def graphs(tmp_path_factory) -> list[MeshGraph]:
    roots = [EXAMPLES / "bookinfo", EXAMPLES / "gateway-api-shop", *fixture_meshes(),
             generate_mesh(tmp_path_factory.mktemp("generated"), 30),
             _bookinfo_with_a_policy_over_every_kind(tmp_path_factory.mktemp("policies"))]
    linked = [compile_mesh(root, analyse=False).graph for root in roots]
    assert all(graph is not None for graph in linked)
    return linked  # type: ignore[return-value]


def _kinds_read(check: Check, graphs: list[MeshGraph]) -> set[str]:
    read: set[str] = set()
    for graph in graphs:
        read |= run_check(check, graph, Report())
    return read


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.name)
def test_a_check_reads_exactly_the_kinds_it_declares(check: Check, graphs: list[MeshGraph]) -> None:
    read = _kinds_read(check, graphs)
    assert read <= check.reads, f"{check.name} reads {sorted(read - check.reads)} without declaring it"
    assert check.reads <= read, f"{check.name} declares {sorted(check.reads - read)} but never reads it"
    assert check.reads <= set(KINDS)


def test_an_undeclared_read_is_caught(graphs: list[MeshGraph]) -> None:
    mtls = next(check for check in CHECKS if check.name == "mtls")

    def also_gateways(graph: MeshGraph, report: Report) -> None:
        mtls.run(graph, report)
        len(graph.gateways)

    assert "Gateway" in _kinds_read(replace(mtls, run=also_gateways), graphs) - mtls.reads


def test_every_graph_field_says_which_kinds_it_is_made_from() -> None:
    assert {f.name for f in fields(MeshGraph)} == set(GRAPH_FIELD_KINDS) | GRAPH_FIELDS_WITHOUT_KINDS


def test_checks_see_the_same_graph(graphs: list[MeshGraph]) -> None:
    """Recording changes nothing a check finds: same diagnostics as on the plain graph."""
    for graph in graphs[:3]:
        for check in CHECKS:
            plain, recorded = Report(), Report()
            check.run(graph, plain)
            run_check(check, graph, recorded)
            assert plain.sorted() == recorded.sorted()


def test_no_import_cycles_through_policies() -> None:
    from tests.test_structure import cycles, import_graph

    assert [c for c in cycles(import_graph()) if any(m.startswith("policies") for m in c)] == []
