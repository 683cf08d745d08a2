"""Text a pull request controls reaches printed and generated text only through an encoder:
diagnostics (text, github), `meshc diff`, VM install scripts and units, source annotations
(issue 13, findings 1, 5, 9 and 11)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from compiler.build import compile_mesh, emit
from compiler.cli import main
from compiler.render import ECHO_WIDTH, RENDERERS, SHOWN_PER_FILE
from targets.kubernetes_meta import SOURCE_ANNOTATION, parse_source_list
from tests.conftest import require_tool
from tests.gitops_support import git_mesh, meshc
from tests.test_bad_input import MESH as BAD_INPUT_MESH

MESH = BAD_INPUT_MESH + '  - {name: ivms, kind: vm, flavor: istio, controlPlane: "istiod.istio-system.svc:15012"}\n'

# A line break followed by a GitHub workflow command, an ANSI escape and a line separator.
INJECTED = "x\n::add-mask::secret\x1b[2J\u2028::stop-commands::t"
# What a value may hold (a control character is MESH105, tests/test_hostile_agreement.py): line separators.
INJECTED_VALUE = "x\u2028::add-mask::secret\u2029::stop-commands::t"


def service(name: str, platform: str, extra: str = "") -> str:
    return (f"apiVersion: meshc/v1\nkind: Service\nname: {name}\nplatform: {platform}\n"
            f"ports:\n  - {{name: http, port: 8080, protocol: http}}\n{extra}")


def policy(message: str) -> str:
    return ("apiVersion: meshc/v1\nkind: Policy\nname: house-rule\nappliesTo: Service\nseverity: error\n"
            f"rule: \"has(self.owner)\"\nmessage: {json.dumps(message)}\n")


def assert_no_injected_line(text: str) -> None:
    assert "\x1b" not in text and "\u2028" not in text and "\u2029" not in text and "\r" not in text
    for line in text.split("\n"):
        assert not line.lstrip().startswith("::") or line.startswith(("::error ", "::warning ", "::notice ")), line


@pytest.mark.parametrize("fmt", ["text", "github"])
@pytest.mark.parametrize("where", ["policy message", "file name"])
def test_intent_text_cannot_start_a_workflow_command_or_reach_the_terminal(make_mesh, fmt, where) -> None:
    files = {"mesh.yaml": MESH, "a.yaml": service("api", "k8s")}
    if where == "policy message":
        files["policy.yaml"] = policy(INJECTED_VALUE)
    else:
        files[f"odd{INJECTED}.yaml"] = "kind: [\n"
    root = make_mesh(files)
    result = CliRunner().invoke(main, ["check", str(root), "--format", fmt, "--color", "always"])
    assert result.exit_code == 1
    assert "add-mask" in result.output  # the text is there, escaped
    text = result.output.replace("\x1b[1;31m", "").replace("\x1b[1;33m", "").replace("\x1b[1m", "") \
        .replace("\x1b[0m", "").replace("\x1b[1;36m", "")  # meshc's own colours
    assert_no_injected_line(text)
    if fmt == "text" and where == "file name":
        assert "x\\x0a::add-mask::secret\\x1b[2J\\u2028::stop-commands::t" in text
    elif fmt == "text":
        assert "x\\u2028::add-mask::secret\\u2029::stop-commands::t" in text


def test_long_lines_are_echoed_as_a_window_around_the_caret(make_mesh) -> None:
    long_value = "a" * 100_000
    root = make_mesh({"mesh.yaml": MESH, "a.yaml": service("api", "k8s", f"owner: x\nbogus: {long_value}\n")})
    compiled = compile_mesh(root)
    text = RENDERERS["text"](compiled.report.sorted(), compiled.sources)
    echoed = [line for line in text.splitlines() if line.startswith(" 8 | ")]
    assert len(echoed) == 1 and len(echoed[0]) <= ECHO_WIDTH + 20
    caret_line = text.splitlines()[text.splitlines().index(echoed[0]) + 1]
    # the caret still points at `bogus`, the unknown field
    assert echoed[0][caret_line.index("^")] == "b"


def test_text_shows_a_bounded_number_of_diagnostics_per_file(make_mesh) -> None:
    many = "".join(f"  - {{name: p{i}, port: {i}, protocol: bogus}}\n" for i in range(1, 301))
    root = make_mesh({"mesh.yaml": MESH, "a.yaml": service("api", "k8s").replace(
        "ports:\n  - {name: http, port: 8080, protocol: http}\n", "ports:\n" + many)})
    compiled = compile_mesh(root)
    assert len(compiled.report.sorted()) == 300
    text = RENDERERS["text"](compiled.report.sorted(), compiled.sources)
    assert text.count("error[") == SHOWN_PER_FILE
    assert f"a.yaml: {300 - SHOWN_PER_FILE} more diagnostics not shown" in text
    assert text.endswith("300 errors\n")


def test_diff_stat_escapes_file_names(tmp_path: Path) -> None:
    repo = git_mesh(tmp_path / "repo")
    name = "services/x\n```\n# Approved by security.yaml"
    (repo.root / name).write_text(service("extra", "prod-k8s"), encoding="utf-8")
    result = meshc("diff", str(repo.root), "--stat")
    assert result.exit_code == 0, result.output
    assert "x\\x0a```\\x0a# Approved" in result.stdout
    assert not any(line.startswith(("```", "#")) for line in result.stdout.splitlines())


def test_cloud_foundry_sources_keep_a_comma_in_a_file_name(make_mesh) -> None:
    root = make_mesh({"mesh.yaml": MESH, "services/det,ails.yaml": service("details", "cf")})
    compiled = compile_mesh(root)
    artifacts = {a.path: a for a in emit(compiled.graph, compiled.report, ["cloudfoundry"])}
    manifest = artifacts["cloudfoundry/cf/manifest.yml"]
    assert "services/det,ails.yaml" in manifest.sources
    assert not {"services/det", "ails.yaml"} & set(manifest.sources)
    (app,) = yaml.safe_load(manifest.content)["applications"]
    assert parse_source_list(app["metadata"]["annotations"][SOURCE_ANNOTATION]) == ["services/det,ails.yaml"]


NEWLINE_FILE = "services/x\nExecStartPre=+/bin/touch /tmp/pwned\necho pwned; .yaml"


@pytest.mark.parametrize("platform", ["vms", "ivms"])
def test_a_file_name_never_reaches_a_script_or_unit_raw(make_mesh, tmp_path: Path, platform: str) -> None:
    root = make_mesh({"mesh.yaml": MESH,
                      NEWLINE_FILE: service("api", platform, "endpoints: [{address: 10.0.0.1}]\n")})
    compiled = compile_mesh(root)
    assert not compiled.report.has_errors, compiled.report.sorted()
    artifacts = {a.path: a.content.decode() for a in emit(compiled.graph, compiled.report, ["vm"])}
    base = f"vm/{platform}/api"
    for path in (f"{base}/install.sh", f"{base}/meshc-envoy-api.service"):
        if path not in artifacts:
            continue
        text = artifacts[path]
        assert not any(line.startswith(("ExecStartPre", "echo pwned")) for line in text.splitlines()), path
        assert '"services/x\\nExecStartPre=+/bin/touch /tmp/pwned\\necho pwned; .yaml"' in text, path
    script = tmp_path / "install.sh"
    script.write_text(artifacts[f"{base}/install.sh"])
    subprocess.run(["bash", "-n", str(script)], check=True, timeout=30)
    readme = artifacts[f"{base}/README.md"]
    assert "from `services/x\\nExecStartPre=+/bin/touch /tmp/pwned\\necho pwned; .yaml`." in readme
    if platform == "vms":
        analyze = require_tool("systemd-analyze", "the Debian package systemd (.ci/run installs it)")
        unit = tmp_path / "units" / "meshc-envoy-api.service"
        unit.parent.mkdir()
        unit.write_text(artifacts[f"{base}/meshc-envoy-api.service"].replace(
            "/usr/local/bin/envoy", "/bin/true"))
        result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, check=False,
                                timeout=120)
        assert result.returncode == 0 and unit.name not in result.stdout + result.stderr, result.stderr
