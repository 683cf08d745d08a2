"""One home for each fact: the code is read as data here, so that a second copy of a fact (a
workload string built by hand, a front end that reaches into targets) fails a test."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.artifact import (
    Workload,
    gateway_workload,
    is_proxy,
    parse_workload,
    platform_workload,
    service_workload,
)
from compiler.build import compile_mesh, emit
from compiler.graph import Key
from tests.conftest import EXAMPLES, REPO

PACKAGES = ("compiler", "policies", "targets")
# The build driver (and the CLI's target list) may load target modules through the registry.
REGISTRY_USERS = {"compiler/build.py", "compiler/cli.py"}


def python_files(*packages: str) -> list[Path]:
    return sorted(path for package in packages for path in (REPO / package).rglob("*.py"))


def relative(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def string_pieces(tree: ast.AST) -> list[tuple[int, str]]:
    """Every string constant, f-string pieces included, with its line."""
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)]


# ---------------------------------------------------------------------------------------------
# Workloads and artifacts: compiler/artifact.py


def test_workload_constructors_and_parser_agree() -> None:
    key = Key("shop", "cart")
    assert parse_workload(service_workload(key)) == Workload("service", "shop/cart")
    assert parse_workload(gateway_workload(key)) == Workload("gateway", "shop/cart")
    assert parse_workload(platform_workload("k8s")) == Workload("platform", "k8s")
    assert is_proxy(service_workload(key)) and is_proxy(gateway_workload(key))
    assert not is_proxy(platform_workload("k8s"))


@pytest.mark.parametrize("text", ["cart", "service:cart", "service:/cart", "gateway:shop/", "platform:",
                                  "platform:a/b", "pod:shop/cart", "service:a/b/c"])
def test_parse_workload_refuses_what_no_constructor_builds(text: str) -> None:
    with pytest.raises(ValueError):
        parse_workload(text)


def test_workload_strings_are_built_only_in_compiler_artifact() -> None:
    """A hand-written "service:..." elsewhere is a second copy of the format."""
    found = [
        f"{relative(path)}:{line}: {text!r}"
        for path in python_files(*PACKAGES) if relative(path) != "compiler/artifact.py"
        for line, text in string_pieces(parsed(path))
        if text.startswith(("service:", "gateway:", "platform:"))
    ]
    assert found == []


def test_front_end_does_not_import_targets() -> None:
    """compiler/* owns Artifact; only the build driver loads target modules, by the registry."""
    found = []
    for path in python_files("compiler"):
        for node in ast.walk(parsed(path)):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "targets":
                names = {alias.name for alias in node.names}
                if relative(path) not in REGISTRY_USERS or node.module != "targets" or names - {"REGISTRY", "load"}:
                    found.append(f"{relative(path)}:{node.lineno}: from {node.module} import {sorted(names)}")
            elif isinstance(node, ast.Import):
                found += [f"{relative(path)}:{node.lineno}: import {alias.name}" for alias in node.names
                          if alias.name.split(".")[0] == "targets"]
    assert found == []


@pytest.mark.parametrize("mesh", sorted(p.name for p in EXAMPLES.iterdir() if (p / "mesh.yaml").is_file()))
def test_every_emitted_workload_parses(mesh: str) -> None:
    compiled = compile_mesh(EXAMPLES / mesh)
    artifacts = emit(compiled.graph, compiled.report)
    kinds = {parse_workload(artifact.workload).kind for artifact in artifacts}
    assert kinds == {"service", "gateway", "platform"}


# ---------------------------------------------------------------------------------------------
# Imports: no cycles, no private names across modules, the Envoy library's one way in


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in python_files(*PACKAGES)}


def imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) of every import in a file, function-level ones included."""
    found = []
    for node in ast.walk(parsed(path)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module, [alias.name for alias in node.names]))
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (`from package import module` counts too)."""
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        edges = graph.setdefault(name, set())
        for _, module, names in imports(path):
            edges.update(m for m in [module, *(f"{module}.{n}" for n in names)] if m in MODULES and m != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_cycle_finder_finds_a_hidden_cycle() -> None:
    graph = import_graph()
    graph["targets.envoylib.blocks"] = graph["targets.envoylib.blocks"] | {"targets.envoylib.gateway"}
    assert any("targets.envoylib.blocks" in component for component in cycles(graph))


def test_no_import_cycles_through_targets() -> None:
    """Function-level imports count: a cycle they hide is still a cycle."""
    assert [c for c in cycles(import_graph()) if any(m.startswith("targets") for m in c)] == []


def test_targets_import_no_private_names() -> None:
    found = [
        f"{relative(path)}:{line}: {module}.{name}"
        for name_, path in MODULES.items() if name_.startswith("targets")
        for line, module, names in imports(path)
        for name in names if name.startswith("_") and name != "__future__"
    ]
    assert found == []


def test_the_envoy_library_is_entered_through_its_package() -> None:
    """Targets outside targets.envoylib use its public API, not its modules."""
    found = [
        f"{relative(path)}:{line}: {module}"
        for name, path in MODULES.items() if not name.startswith("targets.envoylib")
        for line, module, _ in imports(path) if module.startswith("targets.envoylib.")
    ]
    assert found == []


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("targets")))
def test_each_target_module_imports_alone(module: str) -> None:
    """In a fresh interpreter, first: an import that only works after another module is a cycle."""
    result = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)
    assert result.returncode == 0, result.stderr
