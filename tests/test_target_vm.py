"""The VM target: systemd units through `systemd-analyze verify`, bootstraps through `envoy
--mode validate`, shell scripts through `sh -n`, cluster.env read back by a shell in the shape
of Istio's golden files, located diagnostics and the workload filter."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from compiler.build import compile_mesh
from targets import vm
from tests.conftest import BOOKINFO, REPO, require_tool
from tests.envoy_validate import assert_envoy_accepts, write_certificates

# The keys of istioctl's testdata/vmconfig/ipv4/cluster.env.golden that do not depend on the
# test's own mesh config (CLUSTER_MESH_CONFIG_VALUE, PROXY_CONFIG_ANNOT_VALUE) or a revision (CA_ADDR).
ISTIO_GOLDEN_KEYS = {
    "CANONICAL_REVISION", "CANONICAL_SERVICE", "ISTIO_INBOUND_PORTS", "ISTIO_LOCAL_EXCLUDE_PORTS",
    "ISTIO_METAJSON_LABELS", "ISTIO_META_CLUSTER_ID", "ISTIO_META_DNS_CAPTURE", "ISTIO_META_MESH_ID",
    "ISTIO_META_NETWORK", "ISTIO_META_WORKLOAD_NAME", "ISTIO_NAMESPACE", "ISTIO_SERVICE", "ISTIO_SERVICE_CIDR",
    "ISTIO_SVC_IP", "POD_NAMESPACE", "SERVICE_ACCOUNT", "TRUST_DOMAIN",
}


PLANT = REPO / "tests" / "fixtures" / "targets" / "vm" / "plant"


def mesh_files(cert_dir: str) -> dict[str, str]:
    """The files of tests/fixtures/targets/vm/plant, its files-mode certificates in `cert_dir`."""
    return {path.relative_to(PLANT).as_posix():
            path.read_text(encoding="utf-8").replace("dir: /etc/meshc/certs}", f"dir: {cert_dir}}}")
            for path in sorted(PLANT.rglob("*.yaml"))}


@pytest.fixture
def plant(make_mesh, tmp_path: Path):
    root = make_mesh(mesh_files(str(tmp_path / "certs")))
    compiled = compile_mesh(root, analyse=False)
    assert compiled.graph is not None, compiled.report.sorted()
    return compiled


def emit(compiled, workloads=None):
    return {a.path: a for a in vm.emit(compiled.graph, compiled.report, workloads)}


def test_static_bundle_layout_one_bootstrap_per_endpoint(plant) -> None:
    paths = sorted(p for p in emit(plant) if p.startswith("vm/dc1/"))
    assert paths == [
        "vm/dc1/sensor/README.md",
        "vm/dc1/sensor/endpoints/10.1.0.5/envoy.yaml",
        "vm/dc1/sensor/endpoints/fd00--5/envoy.yaml",
        "vm/dc1/sensor/install.sh",
        "vm/dc1/sensor/meshc-envoy-sensor.service",
    ]
    bootstrap = json.loads(emit(plant)["vm/dc1/sensor/endpoints/fd00--5/envoy.yaml"].content)
    inbound = {listener["address"]["socket_address"]["address"]
               for listener in bootstrap["static_resources"]["listeners"]
               if listener["address"]["socket_address"]["port_value"] in (8080, 443)}
    assert inbound == {"fd00::5"}


def test_static_bootstraps_pass_envoy_validate(plant, tmp_path: Path) -> None:
    bootstraps = {path.replace("/", "_"): a.content for path, a in emit(plant).items() if path.endswith("envoy.yaml")}
    assert write_certificates(bootstraps, tmp_path / "certs") == 3
    assert_envoy_accepts(bootstraps, tmp_path / "bootstraps")


@pytest.mark.parametrize("low_ports", [True, False])
def test_units_pass_systemd_analyze_verify(plant, tmp_path: Path, low_ports: bool) -> None:
    systemd_analyze = require_tool("systemd-analyze", "the Debian package systemd (.ci/run installs it)")
    # verify checks that ExecStart's binary exists: point it at a stub in place of Envoy
    stub = tmp_path / "bin" / "envoy"
    stub.parent.mkdir()
    stub.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    stub.chmod(0o755)
    service = plant.graph.services[("plant", "sensor")]
    unit = tmp_path / "units" / vm.unit_name(service)
    unit.parent.mkdir()
    unit.write_bytes(vm.render_unit(service, low_ports, envoy_binary=str(stub)))
    result = subprocess.run([systemd_analyze, "verify", str(unit)], capture_output=True, text=True, timeout=120)
    ours = [line for line in (result.stdout + result.stderr).splitlines() if unit.name in line]
    assert result.returncode == 0 and ours == [], result.stdout + result.stderr


def test_shipped_unit_binds_low_ports_only_when_needed(plant) -> None:
    unit = emit(plant)["vm/dc1/sensor/meshc-envoy-sensor.service"].content.decode()
    assert "AmbientCapabilities=CAP_NET_BIND_SERVICE" in unit  # port 443
    assert "ExecStart=/usr/local/bin/envoy --config-path /etc/meshc/plant/sensor/envoy.yaml" in unit
    assert "User=meshc-envoy" in unit and "Restart=on-failure" in unit


def test_install_scripts_are_valid_shell_and_pick_the_endpoint(plant, tmp_path: Path) -> None:
    artifacts = emit(plant)
    for path in ("vm/dc1/sensor/install.sh", "vm/dc2/store/install.sh"):
        script = tmp_path / path.replace("/", "_")
        script.write_bytes(artifacts[path].content)
        subprocess.run(["sh", "-n", str(script)], check=True, timeout=30)
        refused = subprocess.run(["sh", str(script), "10.9.9.9"], capture_output=True, text=True, timeout=30)
        assert refused.returncode == 2 and "usage: sh install.sh ENDPOINT" in refused.stderr


def test_istio_files_match_istioctl_shapes(plant, tmp_path: Path) -> None:
    artifacts = emit(plant)
    assert sorted(p for p in artifacts if p.startswith("vm/dc2/")) == [
        "vm/dc2/store/README.md",
        "vm/dc2/store/endpoints/10.2.0.7/cluster.env",
        "vm/dc2/store/endpoints/10.2.0.7/mesh.yaml",
        "vm/dc2/store/endpoints/store-2.dc2.example.com/cluster.env",
        "vm/dc2/store/endpoints/store-2.dc2.example.com/mesh.yaml",
        "vm/dc2/store/hosts",
        "vm/dc2/store/install.sh",
        "vm/dc2/store/workloadgroup.yaml",
    ]
    env_file = tmp_path / "cluster.env"
    env_file.write_bytes(artifacts["vm/dc2/store/endpoints/10.2.0.7/cluster.env"].content)
    # read back by a shell, as istio-start.sh sources it
    dump = subprocess.run(["sh", "-c", f"set -a; . {env_file}; env -0"], capture_output=True, check=True,
                          timeout=30, env={}).stdout.decode()
    values = dict(item.split("=", 1) for item in dump.split("\0") if "=" in item)
    assert set(values) >= ISTIO_GOLDEN_KEYS
    assert values["ISTIO_SVC_IP"] == "10.2.0.7"
    assert values["CANONICAL_REVISION"] == "v1"  # the endpoint's version label
    assert values["ISTIO_SERVICE"] == "store.plant" and values["ISTIO_META_NETWORK"] == "east"
    assert json.loads(values["ISTIO_METAJSON_LABELS"])["service.istio.io/canonical-name"] == "store"
    lines = artifacts["vm/dc2/store/endpoints/10.2.0.7/cluster.env"].content.decode().splitlines()
    assert lines == sorted(lines)
    mesh = yaml.safe_load(artifacts["vm/dc2/store/endpoints/10.2.0.7/mesh.yaml"].content)
    assert mesh["defaultConfig"]["discoveryAddress"] == "istiod.istio-system.svc:15012"
    assert {k: values[k] for k in mesh["defaultConfig"]["proxyMetadata"]} == mesh["defaultConfig"]["proxyMetadata"]
    kinds = [d["kind"] for d in yaml.safe_load_all(artifacts["vm/dc2/store/workloadgroup.yaml"].content)]
    assert kinds == ["WorkloadGroup", "WorkloadEntry", "WorkloadEntry"]


def test_diagnostics_are_located_at_the_intent(plant) -> None:
    emit(plant)
    found = sorted((d.code.code, str(d.location)) for d in plant.report.sorted() if d.code.code.startswith("MESH44"))
    assert found == [
        ("MESH440", "services.yaml:16:7"),  # zoo/sensor shares the bundle of plant/sensor
        ("MESH441", "services.yaml:11:15"),  # 10.1.0.5 listed twice
        ("MESH442", "mesh.yaml:14:5"),  # certificates on the istio platform
    ]


def test_workload_filter_and_determinism(plant) -> None:
    everything = emit(plant)
    again = emit(plant)
    assert {p: a.content for p, a in everything.items()} == {p: a.content for p, a in again.items()}
    only_store = emit(plant, frozenset({"service:plant/store"}))
    assert only_store and all(p.startswith("vm/dc2/store/") for p in only_store)
    assert all(a.content == everything[p].content for p, a in only_store.items())
    assert emit(plant, frozenset({"platform:dc1"})) == {}


def test_bookinfo_static_readme_lists_the_certificate_files() -> None:
    compiled = compile_mesh(BOOKINFO, analyse=False)
    readme = emit(compiled)["vm/dc1-vms/ratings/README.md"].content.decode()
    for name in ("svid.pem", "svid_key.pem", "svid_bundle.pem"):
        assert f"/etc/meshc/certs/bookinfo/ratings/{name}" in readme
