"""`meshc check` and `meshc build` agree (issue 13, finding 7): a mesh that checks clean builds,
on every target; what a target cannot carry is a located diagnostic at check time, never
"internal error" or an unlocated refusal at build time."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.cli import main
from compiler.serialize import to_yaml
from tests.test_bad_input import MESH, SERVICE
from tests.test_policies_hypothesis import meshes

ISTIO_VMS = '  - {name: ivms, kind: vm, flavor: istio, controlPlane: "istiod.istio-system.svc:15012"}\n'
FULL_MESH = MESH + ISTIO_VMS + "authorization: allow\n"


def _run(root: Path, *args: str):
    return CliRunner().invoke(main, [*args, str(root), "--format", "json"], catch_exceptions=False)


def _agree(root: Path, out: Path) -> tuple[list[dict], int]:
    """check's diagnostics; asserts that build agrees with it."""
    check = _run(root, "check")
    assert check.exit_code in (0, 1), check.output
    diagnostics = json.loads(check.stdout)["diagnostics"]
    assert all(d["location"] is not None for d in diagnostics if d["code"] != "MESH008"), diagnostics
    build = _run(root, "build", "-o", str(out))
    assert "internal error" not in build.output and "refusing" not in build.output, build.output
    assert build.exit_code == check.exit_code, (check.output, build.output)
    return diagnostics, check.exit_code


VM_SERVICE = SERVICE.replace("platform: k8s", "platform: ivms")


@pytest.mark.parametrize(("files", "expected"), [
    ({"a.yaml": VM_SERVICE + 'versions: {v1: {labels: {version: "v1\\nEVIL=1"}}}\n'
      "endpoints: [{address: 10.0.0.1, version: v1}]\n"}, ("MESH105", "a.yaml", 7)),
    ({"a.yaml": VM_SERVICE + 'versions: {v1: {labels: {version: "v1\\u0000"}}}\n'
      "endpoints: [{address: 10.0.0.1, version: v1}]\n"}, ("MESH105", "a.yaml", 7)),
    ({"a.yaml": SERVICE + f"resilience: {{circuitBreaker: {{maxConnections: {2**64}}}}}\n"}, ("MESH105", "a.yaml", 7)),
    ({"a.yaml": SERVICE + "rateLimit: {requests: 1e20, per: 1s}\n"}, ("MESH105", "a.yaml", 7)),
    ({"a.yaml": VM_SERVICE.replace("ivms", "vms") + 'endpoints: [{address: "::1"}]\n'}, None),
    ({"a.yaml": VM_SERVICE + 'endpoints: [{address: "::1"}]\n'}, None),
    ({b"caf\xe9.yaml": SERVICE}, ("MESH001", "caf\\xe9.yaml", 1)),
], ids=["label-newline", "label-nul", "max-connections-2^64", "requests-1e20", "endpoint-::1-static",
        "endpoint-::1-istio", "non-utf8-file-name"])
def test_reproduced_cases_are_located_at_check_or_build(make_mesh, tmp_path: Path, files: dict, expected) -> None:
    root = make_mesh({"mesh.yaml": FULL_MESH})
    for name, text in files.items():
        path = root / (os.fsdecode(name) if isinstance(name, bytes) else name)
        path.write_bytes(text.encode())
    diagnostics, code = _agree(root, tmp_path / "out")
    errors = [(d["code"], d["location"]["file"], d["location"]["line"]) for d in diagnostics if d["severity"] == "error"]
    if expected is None:
        assert code == 0 and errors == [], errors
    else:
        assert code == 1 and errors == [expected], errors


HOSTILE_TEXT = st.lists(st.sampled_from(["a", "\n", "\x00", "'", '"', "$(", "`", "\u2028", "::", "\x1b", "-"]),
                        max_size=6).map("".join)


@st.composite
def hostile_meshes(draw) -> dict[str, object]:
    generated = draw(meshes())
    # what targets refuse is the point here: no denied calls, no Policies
    generated["mesh"]["authorization"] = "allow"
    generated["documents"] = [d for d in generated["documents"] if d["kind"] != "Policy"]

    def sometimes() -> bool:
        return draw(st.integers(0, 7)) == 0

    generated["mesh"]["platforms"] = [*generated["mesh"]["platforms"],
                                      {"name": "ivms", "kind": "vm", "flavor": "istio",
                                       "controlPlane": "istiod.istio-system.svc:15012"}]
    for document in generated["documents"]:
        if document["kind"] != "Service":
            continue
        if document["platform"] == "vms" and sometimes():
            document["platform"] = "ivms"
        for version in document["versions"].values():
            if sometimes():
                version["labels"][draw(st.sampled_from(["version", "x/y", "bad key"]))] = draw(HOSTILE_TEXT)
        if document["platform"] in ("vms", "ivms") and sometimes():
            document["endpoints"].append({"address": draw(st.sampled_from(["::1", "::", "fd00::5", "a-b.example"]))})
        if sometimes():
            document.setdefault("resilience", {})["circuitBreaker"] = {
                "maxConnections": draw(st.sampled_from([1, 2**31 - 1, 2**31, 2**64]))}
        if sometimes():
            document["rateLimit"] = {"requests": draw(st.sampled_from([1, 10**9, 2**31 - 1, 10**20])),
                                     "per": draw(st.sampled_from(["0.0000001ms", "1ms", "1s"]))}
        if sometimes():
            document["owner"] = draw(HOSTILE_TEXT)
    return generated


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(hostile_meshes())
def test_check_clean_implies_build_succeeds(generated) -> None:
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory) / "mesh"
        root.mkdir()
        (root / "mesh.yaml").write_bytes(to_yaml(generated["mesh"]))
        for index, document in enumerate(generated["documents"]):
            (root / f"d{index}.yaml").write_bytes(to_yaml(document))
        _agree(root, Path(directory) / "out")


ROUTE = ("apiVersion: meshc/v1\nkind: Route\nname: api\nservice: api\nrules:\n"
         "  - match: [MATCH]\n    to: [{service: api}]\n    EXTRA\n")
ACCESS = "apiVersion: meshc/v1\nkind: AccessPolicy\nname: api\nservice: api\nallow:\n  - from: ['*']\n    paths: [PATH]\n"
POLICY = ("apiVersion: meshc/v1\nkind: Policy\nname: p\nappliesTo: Service\nrule: \"true\"\n"
          "message: MESSAGE\n")


@pytest.mark.parametrize("character", ["\n", "\r", "\x00", "\x1b"], ids=["LF", "CR", "NUL", "ESC"])
@pytest.mark.parametrize(("file", "text", "line"), [
    ("route.yaml", ROUTE.replace("MATCH", "{headers: {x-user: {exact: VALUE}}}").replace("EXTRA", ""), 6),
    ("route.yaml", ROUTE.replace("MATCH", "{query: {q: {prefix: VALUE}}}").replace("EXTRA", ""), 6),
    ("route.yaml", ROUTE.replace("MATCH", "{path: {regex: VALUE}}").replace("EXTRA", ""), 6),
    ("route.yaml", ROUTE.replace("MATCH", "{path: {exact: /a}}").replace("EXTRA", "rewrite: {prefix: /VALUE}"), 8),
    ("access.yaml", ACCESS.replace("PATH", "/VALUE"), 7),
    ("policy.yaml", POLICY.replace("MESSAGE", "VALUE"), 6),
    ("api.yaml", SERVICE + "owner: VALUE\n", 7),
], ids=["header-exact", "query-prefix", "path-regex", "rewrite-prefix", "access-path", "policy-message", "owner"])
def test_a_control_character_in_any_value_is_a_located_error(make_mesh, tmp_path: Path, file: str, text: str,
                                                             line: int, character: str) -> None:
    """A value no header, path or message can carry compiles nowhere: check and build both stop
    at its line (MESH105), neither compiles it silently."""
    value = json.dumps(f"v{character}x")
    files = {"mesh.yaml": FULL_MESH, "api.yaml": SERVICE, file: text.replace("/VALUE", value.replace('"', '"/', 1))
             .replace("VALUE", value)}
    root = make_mesh(files)
    diagnostics, code = _agree(root, tmp_path / "out")
    errors = [(d["code"], d["location"]["file"], d["location"]["line"]) for d in diagnostics if d["severity"] == "error"]
    assert code == 1 and errors == [("MESH105", file, line)], errors
    assert f"U+{ord(character):04X}" in next(d["message"] for d in diagnostics if d["code"] == "MESH105")
