"""Every diagnostic code, as users read it: syrupy snapshots of the rendered text of meshes that
trigger the semantic (3xx) and target (4xx) codes, and a check that together with the
front-end cases (tests/test_diagnostic_rendering.py) they show every code in the table."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from compiler.build import compile_mesh, emit
from compiler.codes import CODES, RETIRED
from compiler.render import render_text
from compiler.routetest import route_tests, run_route_tests
from tests import test_policies_checks, test_target_cloudfoundry, test_target_envoy, test_target_kubernetes
from tests.conftest import REPO
from tests.test_bad_input import CASES as FRONT_END_CASES
from tests.test_target_vm import mesh_files as vm_mesh_files


def _write(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def _rendered(root: Path) -> str:
    """Everything meshc says about the mesh: analysis, then every target, then suppressions."""
    compiled = compile_mesh(root, finish=False)
    if compiled.graph is not None:
        emit(compiled.graph, compiled.report)
        if route_tests(compiled.loaded.intents):
            run_route_tests(compiled.graph, compiled.loaded.intents, compiled.report)
    compiled.finish(targets_ran=True)
    return render_text(compiled.report.sorted(), compiled.sources)


CATALOGUE = REPO / "tests" / "fixtures" / "catalogue"

MESHES = {
    **{code: test_policies_checks.FIXTURES / code / "violating" for code in test_policies_checks.CODES},
    "envoy-problems": test_target_envoy.FIXTURES / "inexpressible-intents",
    "cloudfoundry-shop": test_target_cloudfoundry.FIXTURES / "shop",
    "cloudfoundry-gateway": CATALOGUE / "cloudfoundry-gateway",
    "kubernetes-gateway-api": test_target_kubernetes.every_feature_files("gateway-api"),
    "kubernetes-names": CATALOGUE / "kubernetes-names",
    "kubernetes-ownership": CATALOGUE / "kubernetes-ownership",
    "vm-plant": vm_mesh_files("/etc/meshc/certs"),
    "unused-suppressions": CATALOGUE / "unused-suppressions",
    "route-tests": CATALOGUE / "route-tests",
    "gateway-api-order": CATALOGUE / "gateway-api-order",
    "istio-redirect-prefix": CATALOGUE / "istio-redirect-prefix",
    "istio-gateway-host-merge": CATALOGUE / "istio-gateway-host-merge",
    "gateway-api-route-merge": CATALOGUE / "gateway-api-route-merge",
    "placement-priority": CATALOGUE / "placement-priority",
    "placement-weights": CATALOGUE / "placement-weights",
    "gateway-api-tls": CATALOGUE / "gateway-api-tls",
    "external-resolution": CATALOGUE / "external-resolution",
    "gateway-api-cors-regex": CATALOGUE / "gateway-api-cors-regex",
    "patches": CATALOGUE / "patches",
    "gateway-access": CATALOGUE / "gateway-access",
    "access-sources": CATALOGUE / "access-sources",
    "traffic-limits": CATALOGUE / "traffic-limits",
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, str]:
    return {name: _rendered(files if isinstance(files, Path) else _write(tmp_path_factory.mktemp(name), files))
            for name, files in MESHES.items()}


@pytest.mark.parametrize("name", sorted(MESHES))
def test_rendered_diagnostics(rendered: dict[str, str], name: str, snapshot) -> None:
    assert rendered[name] == snapshot


def test_every_code_is_shown_somewhere(rendered: dict[str, str]) -> None:
    shown = {code for text in rendered.values() for code in re.findall(r"\[(MESH\d{3})\]", text)}
    shown |= {code for _, _, expected in FRONT_END_CASES for code, *_ in expected}
    shown |= {"MESH008", "MESH009"}  # tests/test_diagnostic_rendering.py: no mesh.yaml, no git revision
    shown |= {"MESH504"}  # tests/test_route_tests_envoy.py: a disagreement with Envoy, made on purpose
    shown |= {"MESH011", "MESH014"}  # tests/test_hostile_boundary.py: links, submodules, output directories
    shown |= {"MESH050", "MESH060", "MESH061", "MESH062", "MESH063", "MESH064"}  # meshc fmt and import: tests/test_fmt.py, tests/test_import.py
    shown |= {"MESH012", "MESH013"}  # tests/test_hostile_budgets.py: input and output budgets
    shown |= {"MESH020", "MESH021", "MESH022", "MESH023", "MESH024"}  # tests/test_environments.py: overlays
    assert sorted(set(CODES) - shown - RETIRED) == []
