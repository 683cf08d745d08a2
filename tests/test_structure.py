"""One home for each fact: the code is read as data here, so that a second copy of a fact (a
workload string built by hand, a front end that reaches into targets) fails a test."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest

from compiler import DEFAULT_OUTPUT
from compiler.artifact import (
    SOURCE_ANNOTATION,
    Workload,
    gateway_workload,
    is_proxy,
    parse_workload,
    platform_workload,
    service_workload,
)
from compiler.build import compile_mesh, emit
from compiler.graph import DEFAULT_ADMIN_PORT, DEFAULT_OUTBOUND_PORT, Key, Sidecar
from compiler.model import (
    HTTP2_PROTOCOLS,
    HTTP_PROTOCOLS,
    LOAD_BALANCER_POLICIES,
    PROTOCOLS,
    STREAM_PROTOCOLS,
    Protocol,
    SidecarSettings,
    SimpleLoadBalancer,
)
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
    """compiler/* owns Artifact; only the build driver loads target modules, by the registry
    (REGISTRY, load, and release_shared between the shards of a streamed build)."""
    found = []
    for path in python_files("compiler"):
        for node in ast.walk(parsed(path)):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "targets":
                names = {alias.name for alias in node.names}
                if relative(path) not in REGISTRY_USERS or node.module != "targets" or names - {"REGISTRY", "load", "release_shared"}:
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


# ---------------------------------------------------------------------------------------------
# Facts with one definition each: a literal of the fact anywhere else is a second copy


def constants_outside(homes: set[str], wanted) -> list[str]:
    """Constants for which `wanted(value)` holds, in every project module but `homes`."""
    return [
        f"{relative(path)}:{node.lineno}: {node.value!r}"
        for path in python_files(*PACKAGES) if relative(path) not in homes
        for node in ast.walk(parsed(path))
        if isinstance(node, ast.Constant) and not isinstance(node.value, bool) and wanted(node.value)
    ]


SINGLE_HOMES = {
    "the source annotation": ({"compiler/artifact.py"}, lambda v: v == SOURCE_ANNOTATION),
    "the default output directory": ({"compiler/__init__.py"}, lambda v: v == DEFAULT_OUTPUT),
    "the default sidecar ports": ({"compiler/graph.py"}, lambda v: v in (DEFAULT_ADMIN_PORT, DEFAULT_OUTBOUND_PORT)),
    "the load-balancer enum names": ({"compiler/model.py"}, lambda v: v in LOAD_BALANCER_POLICIES.values()),
    "Kubernetes cluster DNS names": ({"compiler/addressing.py"},
                                     lambda v: isinstance(v, str) and ".svc." in f"{v}."),
    "Envoy type URLs": ({"targets/envoylib/blocks.py", "targets/envoylib/tls.py"},
                        lambda v: isinstance(v, str) and v.startswith("type.googleapis.com/envoy.")),
}


@pytest.mark.parametrize("fact", sorted(SINGLE_HOMES))
def test_fact_is_written_once(fact: str) -> None:
    homes, wanted = SINGLE_HOMES[fact]
    assert constants_outside(homes, wanted) == []


def test_protocol_sets_are_defined_only_in_the_model() -> None:
    """A literal tuple, set, list or dict key set of two or more protocols is a copied protocol set."""
    found = []
    for path in python_files(*PACKAGES):
        if relative(path) == "compiler/model.py":
            continue
        for node in ast.walk(parsed(path)):
            elements = node.keys if isinstance(node, ast.Dict) else getattr(node, "elts", None)
            if not isinstance(node, (ast.Tuple, ast.Set, ast.List, ast.Dict)) or not elements:
                continue
            values = [e.value for e in elements if isinstance(e, ast.Constant)]
            if len(values) >= 2 and len(values) == len(elements) and set(values) <= PROTOCOLS:
                found.append(f"{relative(path)}:{node.lineno}: {values}")
    assert found == []


def test_load_balancer_policies_name_every_simple_balancer() -> None:
    assert set(LOAD_BALANCER_POLICIES) == set(get_args(SimpleLoadBalancer))


def test_protocol_sets_partition_the_protocols() -> None:
    assert HTTP2_PROTOCOLS < HTTP_PROTOCOLS and STREAM_PROTOCOLS == PROTOCOLS - HTTP_PROTOCOLS
    assert set(get_args(Protocol)) == PROTOCOLS


def test_sidecar_ports_precedence() -> None:
    """The service's (or gateway's) own setting, else its platform's, else the defaults."""
    assert Sidecar.of(None, SidecarSettings()) == Sidecar(DEFAULT_OUTBOUND_PORT, DEFAULT_ADMIN_PORT)
    platform = SidecarSettings(outboundPort=16001, adminPort=16000)
    assert Sidecar.of(None, platform) == Sidecar(16001, 16000)
    assert Sidecar.of(SidecarSettings(adminPort=17000), platform) == Sidecar(16001, 17000)


def test_hostname_coverage_is_defined_once() -> None:
    found = [f"{relative(path)}:{node.lineno}" for path in python_files(*PACKAGES)
             for node in ast.walk(parsed(path))
             if isinstance(node, ast.FunctionDef) and node.name == "covers" and relative(path) != "compiler/hostnames.py"]
    assert found == []
