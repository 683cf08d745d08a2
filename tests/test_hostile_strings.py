"""Hostile strings through every field that reaches a generated file (issue 13, "What to
build"): newlines, quotes, `$()`, backticks, NUL, U+2028, `::` and ESC in an intent file's
name, a certificate directory, an SDS socket, a header match, a version label, and a Route's
query and header-prefix matches, exact path, redirect path and header edit. Either check
reports a located diagnostic, or the build succeeds and every file reads back, by the reader of
its format, to exactly the value given: install.sh passes `bash -n` and, run with stub
commands that log their argv, hands the value to `install` as one argument; the unit passes
`systemd-analyze verify`; cluster.env sourced by sh gives the value back; YAML and JSON load
back to it."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.cli import main
from tests.conftest import require_tool

PIECES = ["a", "\n", "\x00", "'", '"', "$(id)", "`id`", "\u2028", "::", "\x1b[2J", " ", "-", "%", "\\", "#", ";"]
hostile = st.lists(st.sampled_from(PIECES), min_size=1, max_size=5).map("".join)

MESH = """\
apiVersion: meshc/v1
kind: Mesh
name: m
defaultNamespace: shop
authorization: allow
platforms:
  - {name: k8s, kind: kubernetes}
  - {name: vms, kind: vm, certificates: {mode: files, dir: CERT_DIR}}
  - {name: sds, kind: vm, certificates: {mode: sds, sdsSocket: SDS_SOCKET}}
  - {name: ivms, kind: vm, flavor: istio, controlPlane: "istiod.istio-system.svc:15012"}
"""

# The commands install.sh runs, as stubs that log their argv (NUL-separated, one line each).
STUBS = ("getent", "groupadd", "id", "useradd", "install", "systemctl", "dpkg-query", "rpm", "chown", "grep")


def _files(name: str, cert_dir: str, socket: str, header: str, label: str) -> dict[str, str]:
    def service(service_name: str, platform: str, n: int) -> str:
        return (f"apiVersion: meshc/v1\nkind: Service\nname: {service_name}\nplatform: {platform}\n"
                "ports: [{name: http, port: 8080, protocol: http}]\n"
                f"versions: {{v1: {{labels: {{version: {json.dumps(label)}}}}}}}\n"
                f"endpoints: [{{address: 10.0.0.{n}, version: v1}}]\n")

    route = ("apiVersion: meshc/v1\nkind: Route\nname: web\nservice: web\nrules:\n"
             f"  - match: [{{headers: {{x-user: {{exact: {json.dumps(header)}}}}}}}]\n"
             "    to: [{service: web, version: v1}]\n  - to: [{service: web}]\n")
    caller = ("apiVersion: meshc/v1\nkind: Service\nname: front\nplatform: k8s\npublic: true\nmtls: PERMISSIVE\n"
              "ports: [{name: http, port: 8080, protocol: http}]\ncalls: [web, disk, agent]\n")
    return {
        "mesh.yaml": MESH.replace("CERT_DIR", json.dumps(cert_dir)).replace("SDS_SOCKET", json.dumps(socket)),
        f"services/{name}.yaml": service("web", "ivms", 1),
        "services/disk.yaml": service("disk", "vms", 2),
        "services/agent.yaml": service("agent", "sds", 3),
        "services/front.yaml": caller,
        "routes/web.yaml": route,
    }


def _header_matchers(node, name: str) -> list[dict]:
    """Every Envoy HeaderMatcher for header `name` in a loaded bootstrap."""
    if isinstance(node, dict):
        found = [node] if node.get("name") == name and "string_match" in node else []
        return found + [m for value in node.values() for m in _header_matchers(value, name)]
    if isinstance(node, list):
        return [m for item in node for m in _header_matchers(item, name)]
    return []


def _run_install(script: Path, bundle: Path, endpoint: str, tmp: Path) -> list[list[str]]:
    """install.sh run by sh with every command it calls stubbed: the argv each stub got."""
    stubs, log = tmp / "stubs", tmp / "argv.log"
    stubs.mkdir(exist_ok=True)
    for command in STUBS:
        stub = stubs / command
        stub.write_text(f'#!/bin/sh\nprintf "%s\\0" {command} "$@" >> {log}\nprintf "\\n" >> {log}\n'
                        f'{"exit 1" if command in ("getent", "id") else "exit 0"}\n', encoding="utf-8")
        stub.chmod(0o755)
    for issued in ("root-cert.pem", "istio-token"):
        (bundle / issued).write_text("x", encoding="utf-8")
    env = {"PATH": f"{stubs}:/usr/bin:/bin", "HOME": str(tmp)}
    done = subprocess.run(["sh", str(script), endpoint], env=env, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    return [line.rstrip("\0").split("\0") for line in log.read_text(encoding="utf-8").split("\0\n") if line]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(field=st.sampled_from(["name", "cert", "socket", "header", "label"]), value=hostile)
def test_hostile_strings_reach_generated_files_only_encoded(field: str, value: str) -> None:
    """One field hostile at a time (the others plain), so that each reaches the files."""
    given_values = {"name": "svc", "cert": "certs", "socket": "agent.sock", "header": "jason", "label": "v1",
                    field: value}
    name, cert, socket, header, label = (given_values[k] for k in ("name", "cert", "socket", "header", "label"))
    analyze = require_tool("systemd-analyze", "the Debian package systemd (.ci/run installs it)")
    file_name = name.replace("\x00", "").replace("/", "") or "x"
    if file_name.startswith("."):
        file_name = "x" + file_name
    with tempfile.TemporaryDirectory() as directory:
        tmp = Path(directory)
        root = tmp / "mesh"
        files = _files(file_name, "/etc/" + cert, "/run/" + socket, header, label)
        for relative, text in files.items():
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            (root / relative).write_text(text, encoding="utf-8")
        check = CliRunner().invoke(main, ["check", str(root), "--format", "json"], catch_exceptions=False)
        assert check.exit_code in (0, 1), check.output
        errors = [d for d in json.loads(check.stdout)["diagnostics"] if d["severity"] == "error"]
        assert all(d["location"] and d["location"]["line"] >= 1 for d in errors), errors
        if errors:
            return
        out = tmp / "out"
        build = CliRunner().invoke(main, ["build", str(root), "-o", str(out), "-q"], catch_exceptions=False)
        assert build.exit_code == 0, build.output
        source = f"services/{file_name}.yaml"
        # JSON: the manifest names the source file exactly
        manifest = json.loads((out / "manifest.json").read_bytes())
        assert any(source in record["sources"] for record in manifest["artifacts"])
        # YAML: the VirtualService matches the header value exactly
        documents = [d for p in (out / "kubernetes").rglob("*.yaml") for d in yaml.safe_load_all(p.read_bytes()) if d]
        exact = [m["headers"]["x-user"]["exact"] for d in documents if d["kind"] == "VirtualService"
                 for rule in d["spec"].get("http", []) for m in rule.get("match", []) if "headers" in m]
        assert exact == [header], exact
        # JSON: the caller's Envoy bootstrap carries the same value
        bootstrap = json.loads((out / "envoy" / "shop" / "front.yaml").read_bytes())
        assert [m["string_match"]["exact"] for m in _header_matchers(bootstrap, "x-user")] == [header]
        # the static bundle: its script hands the certificate directory to `install` as one word
        bundle = out / "vm" / "vms" / "disk"
        script = bundle / "install.sh"
        subprocess.run(["bash", "-n", str(script)], check=True, timeout=30)
        calls = _run_install(script, bundle, "10.0.0.2", tmp)
        assert ["install", "-d", "-m", "0750", "-o", "root", "-g", "meshc-envoy", f"/etc/{cert}/shop/disk"] in calls
        unit = bundle / "meshc-envoy-disk.service"
        unit.write_text(unit.read_text(encoding="utf-8").replace("/usr/local/bin/envoy", "/bin/true"), encoding="utf-8")
        verified = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=120,
                                  check=False)
        assert verified.returncode == 0 and unit.name not in verified.stdout + verified.stderr, verified.stderr
        # the istio bundle: cluster.env sourced by sh gives the label back; its script is valid shell
        env_file = out / "vm" / "ivms" / "web" / "endpoints" / "10.0.0.1" / "cluster.env"
        dump = subprocess.run(["sh", "-c", f'set -a; . "{env_file}"; env -0'], capture_output=True, check=True,
                              timeout=30, env={}).stdout.decode()
        values = dict(item.split("=", 1) for item in dump.split("\0") if "=" in item)
        assert values["CANONICAL_REVISION"] == label
        istio_script = out / "vm" / "ivms" / "web" / "install.sh"
        subprocess.run(["bash", "-n", str(istio_script)], check=True, timeout=30)
        for path in (script, istio_script, unit):
            assert "\x1b" not in path.read_text(encoding="utf-8")
        assert os.listdir(out)


def _strings(node) -> set[str]:
    """Every string in loaded YAML or JSON, keys included."""
    if isinstance(node, dict):
        return {key for key in node if isinstance(key, str)} | {s for value in node.values() for s in _strings(value)}
    if isinstance(node, list):
        return {s for item in node for s in _strings(item)}
    return {node} if isinstance(node, str) else set()


ROUTE_FIELDS = {  # field: where the value stands in the Route (one hostile at a time, the others plain)
    "query": "jason", "header-prefix": "ja", "path": "/exact", "redirect": "/new", "edit": "canary",
}


# The HTTPRoute carries these verbatim; a header prefix becomes a RegularExpression there.
GATEWAY_API_VERBATIM = {"query", "path", "redirect", "edit"}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(field=st.sampled_from(sorted(ROUTE_FIELDS)), value=hostile, flavor=st.sampled_from(["istio", "gateway-api"]))
def test_hostile_route_values_reach_istio_and_envoy_verbatim(field: str, value: str, flavor: str) -> None:
    """The values of a Route that reach generated files (query and header matches, an exact
    path, a redirect's path, a header edit): check reports a located diagnostic, or the
    Kubernetes route (VirtualService, or HTTPRoute on the gateway-api flavour) and the caller's
    Envoy bootstrap both load back holding the value exactly."""
    given_values = {**ROUTE_FIELDS, field: ("/" + value) if field in ("path", "redirect") else value}
    quoted = {key: json.dumps(text) for key, text in given_values.items()}
    # most specific rule first, so the Gateway API's precedence keeps the written order (MESH426)
    route = ("apiVersion: meshc/v1\nkind: Route\nname: web\nservice: web\nrules:\n"
             f"  - match: [{{path: {{exact: {quoted['path']}}}}}]\n    to: [{{service: web}}]\n"
             f"  - match: [{{path: {{prefix: /old}}}}]\n    redirect: {{path: {quoted['redirect']}}}\n"
             f"  - match: [{{query: {{q: {{exact: {quoted['query']}}}}}, "
             f"headers: {{x-user: {{prefix: {quoted['header-prefix']}}}}}}}]\n"
             f"    to: [{{service: web}}]\n    headers: {{request: {{set: {{x-tag: {quoted['edit']}}}}}}}\n"
             "  - to: [{service: web}]\n")
    web = ("apiVersion: meshc/v1\nkind: Service\nname: web\nplatform: k8s\n"
           "ports: [{name: http, port: 8080, protocol: http}]\n")
    front = web.replace("name: web", "name: front") + "calls: [web]\n"
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory) / "mesh"
        for relative, text in {"mesh.yaml": MESH, "services/web.yaml": web, "services/front.yaml": front,
                               "routes/web.yaml": route}.items():
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            text = text.replace("CERT_DIR", "/etc/certs").replace("SDS_SOCKET", "/run/s")
            (root / relative).write_text(text.replace("kind: kubernetes}", f"kind: kubernetes, flavor: {flavor}}}"),
                                         encoding="utf-8")
        check = CliRunner().invoke(main, ["check", str(root), "--format", "json", "--no-cache"], catch_exceptions=False)
        assert check.exit_code in (0, 1), check.output
        errors = [d for d in json.loads(check.stdout)["diagnostics"] if d["severity"] == "error"]
        assert all(d["location"] and d["location"]["file"] == "routes/web.yaml" for d in errors), errors
        if errors:
            return
        out = Path(directory) / "out"
        build = CliRunner().invoke(main, ["build", str(root), "-o", str(out), "-q"], catch_exceptions=False)
        assert build.exit_code == 0, build.output
        route_kind = {"istio": "VirtualService", "gateway-api": "HTTPRoute"}[flavor]
        kubernetes = _strings([d for p in (out / "kubernetes").rglob("*.yaml")
                               for d in yaml.safe_load_all(p.read_bytes()) if d and d["kind"] == route_kind])
        envoy = _strings(json.loads((out / "envoy" / "shop" / "front.yaml").read_bytes()))
        assert given_values[field] in envoy, given_values[field]
        if flavor == "istio" or field in GATEWAY_API_VERBATIM:
            assert given_values[field] in kubernetes, (route_kind, given_values[field])
