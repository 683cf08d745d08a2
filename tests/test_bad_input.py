"""Bad input: every case gets located diagnostics (code, file, line, column), exit 1, no write."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from compiler.build import compile_mesh
from compiler.cli import main

MESH = """\
apiVersion: meshc/v1
kind: Mesh
name: m
defaultNamespace: shop
platforms:
  - {name: k8s, kind: kubernetes}
  - {name: cf, kind: cloudfoundry, appsDomain: apps.example.com}
  - {name: vms, kind: vm}
"""

SERVICE = """\
apiVersion: meshc/v1
kind: Service
name: api
platform: k8s
ports:
  - {name: http, port: 8080, protocol: http}
"""

# (case id, files besides a valid mesh.yaml, [(code, file, line, column), ...])
CASES = [
    ("not-utf8", {"a.yaml": b"apiVersion: meshc/v1\nname: caf\xe9\n"}, [("MESH001", "a.yaml", 2, 10)]),
    ("yaml-syntax", {"a.yaml": "a: [1, 2\nb: 3\n"}, [("MESH002", "a.yaml", 2, 2)]),
    ("duplicate-key", {"a.yaml": SERVICE + "platform: cf\n"}, [("MESH003", "a.yaml", 7, 1)]),
    ("python-tag", {"a.yaml": "!!python/object:os.system {}\n"}, [("MESH004", "a.yaml", 1, 1)]),
    ("app-tag", {"a.yaml": SERVICE + "owner: !vault x\n"}, [("MESH004", "a.yaml", 7, 8)]),
    ("timestamp-tag", {"a.yaml": SERVICE + "owner: !!timestamp 2001-01-01\n"}, [("MESH004", "a.yaml", 7, 8)]),
    ("recursive-alias", {"a.yaml": "a: &x [*x]\n"}, [("MESH005", "a.yaml", 1, 4)]),
    (
        "alias-bomb",
        {"a.yaml": "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))},
        [("MESH005", "a.yaml", 6, 4)],
    ),
    # 900 levels: within libyaml's own limit of 1000, past what the constructor can follow
    ("deep-nesting", {"a.yaml": "[" * 900 + "]" * 900 + "\n"}, [("MESH005", "a.yaml", 1, 1)]),
    ("too-large", {"big.yaml": "# " + "x" * (4 * 1024 * 1024) + "\n"}, [("MESH006", "big.yaml", 1, 1)]),
    ("list-document", {"a.yaml": "- 1\n- 2\n"}, [("MESH007", "a.yaml", 1, 1)]),
    ("no-kind", {"a.yaml": "apiVersion: meshc/v1\nname: x\n"}, [("MESH007", "a.yaml", 1, 1)]),
    ("second-mesh", {"a.yaml": MESH}, [("MESH010", "a.yaml", 2, 7)]),
    ("api-version", {"a.yaml": SERVICE.replace("meshc/v1", "meshc/v2")}, [("MESH101", "a.yaml", 1, 13)]),
    ("unknown-kind", {"a.yaml": SERVICE.replace("kind: Service", "kind: Servce")}, [("MESH102", "a.yaml", 2, 7)]),
    ("unknown-field", {"a.yaml": SERVICE + "resilience: {timout: 1s}\n"}, [("MESH103", "a.yaml", 7, 14)]),
    ("missing-field", {"a.yaml": SERVICE.replace("name: api\n", "")}, [("MESH104", "a.yaml", 1, 1)]),
    ("no-platform", {"a.yaml": SERVICE.replace("platform: k8s\n", "")}, [("MESH108", "a.yaml", 1, 1)]),
    ("port-range", {"a.yaml": SERVICE.replace("8080", "70000")}, [("MESH105", "a.yaml", 6, 24)]),
    ("yaml11-bool", {"a.yaml": SERVICE + "public: yes\n"}, [("MESH105", "a.yaml", 7, 9)]),
    ("enum-case", {"a.yaml": SERVICE + "mtls: strict\n"}, [("MESH105", "a.yaml", 7, 7)]),
    ("upper-name", {"a.yaml": SERVICE.replace("name: api", "name: Upper_Case")}, [("MESH106", "a.yaml", 3, 7)]),
    ("path-name", {"a.yaml": SERVICE.replace("name: api", "name: ../x")}, [("MESH106", "a.yaml", 3, 7)]),
    ("path-namespace", {"a.yaml": SERVICE + "namespace: a/b\n"}, [("MESH106", "a.yaml", 7, 12)]),
    ("long-name", {"a.yaml": SERVICE.replace("name: api", "name: " + "a" * 64)}, [("MESH106", "a.yaml", 3, 7)]),
    ("bad-call", {"a.yaml": SERVICE + "calls: [../../etc]\n"}, [("MESH106", "a.yaml", 7, 9)]),
    ("duration", {"a.yaml": SERVICE + "resilience: {timeout: 10}\n"}, [("MESH105", "a.yaml", 7, 23)]),
    ("duration-unit", {"a.yaml": SERVICE + "resilience: {timeout: 10d}\n"}, [("MESH107", "a.yaml", 7, 23)]),
    ("duration-zero", {"a.yaml": SERVICE + "rateLimit: {requests: 1, per: 0ms}\n"}, [("MESH107", "a.yaml", 7, 31)]),
    (
        "weights",
        {"a.yaml": SERVICE + "---\napiVersion: meshc/v1\nkind: Route\nname: r\nservice: api\nrules:\n"
                             "  - to: [{weight: 50}, {weight: 40}]\n"},
        [("MESH108", "a.yaml", 13, 5)],
    ),
    (
        "route-service-and-gateway",
        {"a.yaml": "apiVersion: meshc/v1\nkind: Route\nname: r\nservice: api\ngateway: g\nhosts: [a.b]\n"
                   "rules: [{to: [{service: api}]}]\n"},
        [("MESH108", "a.yaml", 1, 1)],
    ),
    ("unknown-platform", {"a.yaml": SERVICE.replace("platform: k8s", "platform: k9s")}, [("MESH201", "a.yaml", 4, 11)]),
    ("unknown-callee", {"a.yaml": SERVICE + "calls: [nope]\n"}, [("MESH202", "a.yaml", 7, 9)]),
    (
        "address-in-a-service-policy",
        {"a.yaml": SERVICE, "b.yaml": "apiVersion: meshc/v1\nkind: AccessPolicy\nname: p\nservice: api\n"
                                      "allow:\n  - from: [{ipBlocks: [10.0.0.0/8]}]\n"},
        [("MESH218", "b.yaml", 6, 12)],
    ),
    (
        "duplicate-service",
        {"a.yaml": SERVICE, "b.yaml": SERVICE.replace("8080", "8081")},
        [("MESH203", "b.yaml", 3, 7)],
    ),
    (
        "second-mesh-route-same-match",
        {"a.yaml": SERVICE, "r.yaml": "apiVersion: meshc/v1\nkind: Route\nname: r1\nservice: api\nrules: [{to: [{}]}]\n"
                                      "---\napiVersion: meshc/v1\nkind: Route\nname: r2\nservice: api\nrules: [{to: [{}]}]\n"},
        [("MESH354", "r.yaml", 11, 9)],
    ),
    ("endpoints-off-vm", {"a.yaml": SERVICE + "endpoints: [{address: 10.0.0.1}]\n"}, [("MESH205", "a.yaml", 7, 1)]),
    ("vm-without-endpoints", {"a.yaml": SERVICE.replace("platform: k8s", "platform: vms")}, [("MESH206", "a.yaml", 4, 11)]),
    ("placement-on-cloudfoundry", {"a.yaml": SERVICE.replace("platform: k8s", "placements: [{platform: k8s}, {platform: cf}]")},
     [("MESH230", "a.yaml", 4, 42)]),
    ("placement-unknown-platform", {"a.yaml": SERVICE.replace("platform: k8s", "placements: [{platform: k8s}, {platform: k9}]")},
     [("MESH201", "a.yaml", 4, 42)]),
    ("placement-vm-without-endpoints",
     {"a.yaml": SERVICE.replace("platform: k8s", "placements:\n  - platform: k8s\n  - platform: vms")},
     [("MESH206", "a.yaml", 6, 15)]),
    ("placement-endpoints-off-vm",
     {"a.yaml": SERVICE.replace("platform: k8s", "placements:\n  - platform: k8s\n    endpoints: [{address: 10.0.0.1}]\n"
                                                 "  - {platform: vms, endpoints: [{address: 10.0.0.2}]}")},
     [("MESH205", "a.yaml", 6, 5)]),
    (
        "unknown-version",
        {"a.yaml": SERVICE + "---\napiVersion: meshc/v1\nkind: Route\nname: r\nservice: api\nrules: [{to: [{version: v9}]}]\n"},
        [("MESH207", "a.yaml", 12, 25)],
    ),
    (
        "unknown-port",
        {"a.yaml": SERVICE + "---\napiVersion: meshc/v1\nkind: Route\nname: r\nservice: api\nrules: [{to: [{port: 9}]}]\n"},
        [("MESH208", "a.yaml", 12, 22)],
    ),
    (
        "unknown-gateway",
        {"a.yaml": SERVICE + "---\napiVersion: meshc/v1\nkind: Route\nname: r\ngateway: nope\nhosts: [a.example.com]\n"
                             "rules: [{to: [{service: api}]}]\n"},
        [("MESH209", "a.yaml", 11, 10)],
    ),
    (
        "gateway-host-routes-same-match",
        {"a.yaml": SERVICE, "g.yaml": "apiVersion: meshc/v1\nkind: Gateway\nname: g\nplatform: k8s\n"
                                      "listeners: [{name: web, port: 80, protocol: http, hosts: [a.example.com]}]\n",
         "r.yaml": "apiVersion: meshc/v1\nkind: Route\nname: r1\ngateway: g\nhosts: [a.example.com]\n"
                   "rules: [{to: [{service: api}]}]\n---\napiVersion: meshc/v1\nkind: Route\nname: r2\ngateway: g\n"
                   "hosts: [a.example.com]\nrules: [{to: [{service: api}]}]\n",
         "p.yaml": "apiVersion: meshc/v1\nkind: AccessPolicy\nname: p\nservice: api\nallow: [{from: [{gateway: g}]}]\n"},
        [("MESH354", "r.yaml", 13, 9)],
    ),
    (
        "unknown-listener",
        {"a.yaml": SERVICE, "g.yaml": "apiVersion: meshc/v1\nkind: Gateway\nname: g\nplatform: k8s\n"
                                      "listeners: [{name: web, port: 80, protocol: http, hosts: [a.example.com]}]\n",
         "r.yaml": "apiVersion: meshc/v1\nkind: Route\nname: r1\ngateway: g\nhosts: [a.example.com]\n"
                   "listeners: [web, admin]\nrules: [{to: [{service: api}]}]\n"},
        [("MESH221", "r.yaml", 6, 18)],
    ),
    (
        "external-route-destination",
        {"a.yaml": SERVICE + "calls: [pay]\n",
         "x.yaml": "apiVersion: meshc/v1\nkind: ExternalService\nname: pay\nhosts: [pay.example.com]\n"
                   "ports: [{name: http, port: 80, protocol: http}]\n",
         "r.yaml": "apiVersion: meshc/v1\nkind: Route\nname: r\nservice: pay\nrules: [{to: [{service: api}]}]\n"},
        [("MESH222", "r.yaml", 5, 25)],
    ),
    (
        "external-host-twice",
        {"x.yaml": "apiVersion: meshc/v1\nkind: ExternalService\nname: a\nhosts: [api.example.com]\n"
                   "ports: [{name: https, port: 443, protocol: tls}]\n---\napiVersion: meshc/v1\nkind: ExternalService\n"
                   "name: b\nhosts: [b.example.com, api.example.com]\nports: [{name: http, port: 80, protocol: http}]\n"},
        [("MESH213", "x.yaml", 10, 24)],
    ),
    (
        "cf-gateway",
        {"g.yaml": "apiVersion: meshc/v1\nkind: Gateway\nname: g\nplatform: cf\n"
                   "listeners: [{name: web, port: 80, protocol: http, hosts: [a.example.com]}]\n"},
        [("MESH211", "g.yaml", 4, 11)],
    ),
    (
        "cf-address-collision",
        {"a.yaml": SERVICE.replace("k8s", "cf"), "b.yaml": SERVICE.replace("k8s", "cf") + "namespace: other\n"},
        [("MESH212", "b.yaml", 3, 7)],
    ),
    (
        "patch-unknown-workload",
        {"p.yaml": "apiVersion: meshc/v1\nkind: Patch\nname: p\ntarget: envoy\nservice: nobody\n"
                   "object: {kind: EnvoyBootstrap}\nmergePatch: {node: {id: x}}\n"},
        [("MESH235", "p.yaml", 5, 10)],
    ),
]


@pytest.mark.parametrize("files, expected", [pytest.param(f, e, id=i) for i, f, e in CASES])
def test_bad_input_is_located(make_mesh, files: dict, expected: list) -> None:
    root = make_mesh({"mesh.yaml": MESH, **files})
    report = compile_mesh(root).report
    found = [(d.code.code, d.location.file, d.location.line, d.location.column)
             for d in report.sorted() if d.severity == "error"]
    assert found == [tuple(e) for e in expected]


@pytest.mark.parametrize("files", [pytest.param(f, id=i) for i, f, _ in CASES])
def test_bad_input_exits_1_and_writes_nothing(make_mesh, tmp_path: Path, files: dict) -> None:
    root = make_mesh({"mesh.yaml": MESH, **files})
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["build", str(root), "-o", str(out)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_failed_build_leaves_previous_output_untouched(make_mesh, tmp_path: Path) -> None:
    root = make_mesh({"mesh.yaml": MESH, "a.yaml": SERVICE})
    out = tmp_path / "out"
    assert CliRunner().invoke(main, ["build", str(root), "-o", str(out)]).exit_code == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    (root / "a.yaml").write_text(SERVICE + "calls: [nope]\n")
    assert CliRunner().invoke(main, ["build", str(root), "-o", str(out)]).exit_code == 1
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_missing_mesh_yaml(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["check", str(tmp_path)])
    assert result.exit_code == 1
    assert "error[MESH008]" in result.output


def test_yaml_12_scalars(make_mesh) -> None:
    """on/off/yes/no stay strings, a leading zero is decimal, 0o17 is octal (YAML 1.2 core)."""
    from compiler.yamlload import load_documents

    [document] = load_documents("a: on\nb: off\nc: yes\nd: n\ne: 012\nf: 0o17\ng: 0x1F\nh: True\ni: ~\n")
    assert document.data == {"a": "on", "b": "off", "c": "yes", "d": "n", "e": 12, "f": 15, "g": 31,
                             "h": True, "i": None}


def test_a_name_shaped_value_is_described_as_what_its_field_takes(make_mesh) -> None:
    root = make_mesh({
        "mesh.yaml": "apiVersion: meshc/v1\nkind: Mesh\nname: m\nplatforms: [{name: k, kind: kubernetes}]\n",
        "a.yaml": SERVICE.replace("name: api", "name: Api") + "calls: [a/b/c]\n"
                  "---\napiVersion: meshc/v1\nkind: AccessPolicy\nname: p\nservice: api\nallow: [{from: [a/b/c]}]\n",
    })
    result = CliRunner().invoke(main, ["check", str(root)])
    lines = [line for line in result.output.splitlines() if "MESH106" in line]
    assert any("name: 'Api' is not a DNS-1123 name (" in line for line in lines)
    assert any("calls[0]: 'a/b/c' is not a reference: `name` or `namespace/name`" in line for line in lines)
    assert any("from[0]: 'a/b/c' is not \"*\" or a reference" in line for line in lines)
