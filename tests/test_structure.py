"""One home for each fact: the code is read as data here, so that a second copy of a fact (a
workload string built by hand, a front end that reaches into targets) fails a test."""

from __future__ import annotations

import ast
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
