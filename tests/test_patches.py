"""Patch, the escape hatch (issue 12; docs/intents.md, Patch): typed, located edits of one
target's output for one workload, applied last, checked again, never invisible.

The JSON Pointer, JSON Patch and merge patch cases are the RFCs' own examples: RFC 6901
section 5, RFC 6902 appendix A (A.1-A.16) and RFC 7396 section 3 and appendix A. The backends'
own validators judge the patched output: `envoy --mode validate` and real Envoy on loopback
for a patched bootstrap, the Istio CRD schema for a patched VirtualService.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from compiler import codes
from compiler.build import check_mesh, compile_mesh, emit
from compiler.evaluate import Proxy, Request, header_value
from compiler.jsonpatch import PatchFailure, apply_json_patch, apply_merge_patch, resolve
from compiler.model import PATCH_TARGETS
from compiler.serialize import to_yaml
from targets import REGISTRY
from targets.envoylib import EnvoyRunner
from tests.conftest import require_envoy, require_shared_schemas
from tests.envoy_validate import assert_envoy_accepts
from tests.gitops_support import git_mesh, meshc
from tests.k8s_schemas import validation_errors
from tests.semantics import API, gateway, key, mesh, route, service, write

# ---------------------------------------------------------------------------------------------
# RFC 6901 section 5: "Given the JSON document ... the following JSON strings evaluate to the
# accompanying values"

RFC6901_DOCUMENT = {"foo": ["bar", "baz"], "": 0, "a/b": 1, "c%d": 2, "e^f": 3, "g|h": 4, "i\\j": 5, 'k"l': 6,
                    " ": 7, "m~n": 8}


@pytest.mark.parametrize(("pointer", "value"), [
    ("", RFC6901_DOCUMENT), ("/foo", ["bar", "baz"]), ("/foo/0", "bar"), ("/", 0), ("/a~1b", 1), ("/c%d", 2),
    ("/e^f", 3), ("/g|h", 4), ("/i\\j", 5), ('/k"l', 6), ("/ ", 7), ("/m~0n", 8),
])
def test_rfc6901_examples(pointer: str, value: Any) -> None:
    assert resolve(RFC6901_DOCUMENT, pointer) == value


@pytest.mark.parametrize(("pointer", "words"), [
    ("foo", "does not start with '/'"), ("/m~2n", "'~' not followed by 0 or 1"), ("/foo/01", "not an array index"),
    ("/foo/2", "past the end"), ("/foo/-", "not an array index"), ("/nothing", "no member 'nothing'"),
    ("/foo/0/x", "inside a string"),
])
def test_pointers_to_nothing_fail(pointer: str, words: str) -> None:
    with pytest.raises(PatchFailure, match=words.replace("(", r"\(")):
        resolve(RFC6901_DOCUMENT, pointer)


# ---------------------------------------------------------------------------------------------
# RFC 6902 appendix A

RFC6902_SUCCESSES = [
    ("A.1 adding an object member", {"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}],
     {"baz": "qux", "foo": "bar"}),
    ("A.2 adding an array element", {"foo": ["bar", "baz"]}, [{"op": "add", "path": "/foo/1", "value": "qux"}],
     {"foo": ["bar", "qux", "baz"]}),
    ("A.3 removing an object member", {"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}],
     {"foo": "bar"}),
    ("A.4 removing an array element", {"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/1"}],
     {"foo": ["bar", "baz"]}),
    ("A.5 replacing a value", {"baz": "qux", "foo": "bar"}, [{"op": "replace", "path": "/baz", "value": "boo"}],
     {"baz": "boo", "foo": "bar"}),
    ("A.6 moving a value", {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
     [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
     {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}),
    ("A.7 moving an array element", {"foo": ["all", "grass", "cows", "eat"]},
     [{"op": "move", "from": "/foo/1", "path": "/foo/3"}], {"foo": ["all", "cows", "eat", "grass"]}),
    ("A.8 testing a value: success", {"baz": "qux", "foo": ["a", 2, "c"]},
     [{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": 2}],
     {"baz": "qux", "foo": ["a", 2, "c"]}),
    ("A.10 adding a nested member object", {"foo": "bar"},
     [{"op": "add", "path": "/child", "value": {"grandchild": {}}}], {"foo": "bar", "child": {"grandchild": {}}}),
    ("A.14 ~ escape ordering", {"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}],
     {"/": 9, "~1": 10}),
    ("A.16 adding an array value", {"foo": ["bar"]}, [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
     {"foo": ["bar", ["abc", "def"]]}),
    ("4.1 add replaces the whole document", {"a": 1}, [{"op": "add", "path": "", "value": {"b": 2}}], {"b": 2}),
    ("4.6 1 equals 1.0", {"a": 1}, [{"op": "test", "path": "/a", "value": 1.0}], {"a": 1}),
    ("4.5 copy", {"a": {"b": [1]}}, [{"op": "copy", "from": "/a", "path": "/c"}], {"a": {"b": [1]}, "c": {"b": [1]}}),
]


@pytest.mark.parametrize(("case", "document", "patch", "result"), RFC6902_SUCCESSES, ids=[c[0] for c in RFC6902_SUCCESSES])
def test_rfc6902_examples(case: str, document: Any, patch: list, result: Any) -> None:
    before = json.dumps(document, sort_keys=True)
    assert apply_json_patch(document, patch) == result
    assert json.dumps(document, sort_keys=True) == before  # the input is never changed


RFC6902_ERRORS = [
    ("A.9 testing a value: error", {"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}], 0, "test failed"),
    ("A.12 adding to a nonexistent target", {"foo": "bar"}, [{"op": "add", "path": "/baz/bat", "value": "qux"}], 0,
     "no member 'baz'"),
    ("A.15 comparing strings and numbers", {"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": "10"}], 0,
     "test failed"),
    ("4.6 true is not 1", {"a": 1}, [{"op": "test", "path": "/a", "value": True}], 0, "test failed"),
    ("4.4 a move into its own child", {"a": {"b": {}}}, [{"op": "move", "from": "/a", "path": "/a/b/c"}], 0,
     "into one of its own children"),
    ("5 all or nothing: the second operation fails", {"a": 1},
     [{"op": "replace", "path": "/a", "value": 2}, {"op": "remove", "path": "/b"}], 1, "no member 'b'"),
    ("4.2 remove needs its target", {"a": []}, [{"op": "remove", "path": "/a/0"}], 0, "past the end"),
    ("4.3 replace needs its target", {"a": {}}, [{"op": "replace", "path": "/a/b", "value": 1}], 0, "no member 'b'"),
]


@pytest.mark.parametrize(("case", "document", "patch", "index", "words"), RFC6902_ERRORS,
                         ids=[c[0] for c in RFC6902_ERRORS])
def test_rfc6902_errors_name_the_operation(case: str, document: Any, patch: list, index: int, words: str) -> None:
    before = json.dumps(document, sort_keys=True)
    with pytest.raises(PatchFailure) as failure:
        apply_json_patch(document, patch)
    assert failure.value.index == index and words in failure.value.message
    assert json.dumps(document, sort_keys=True) == before


def test_copies_that_would_explode_are_refused() -> None:
    """Hostile input: each copy of the document into itself doubles it; 30 would make 2**30 nodes."""
    patch = [{"op": "copy", "from": "", "path": f"/{index}"} for index in range(30)]
    with pytest.raises(PatchFailure, match="more than 1000000 nodes"):
        apply_json_patch({"seed": list(range(100))}, patch)


# RFC 7396 appendix A: ORIGINAL, PATCH, RESULT
RFC7396_EXAMPLES = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    # section 3's example
    ({"title": "Goodbye!", "author": {"givenName": "John", "familyName": "Doe"}, "tags": ["example", "sample"],
      "content": "This will be unchanged"},
     {"title": "Hello!", "phoneNumber": "+01-123-456-7890", "author": {"familyName": None}, "tags": ["example"]},
     {"title": "Hello!", "author": {"givenName": "John"}, "tags": ["example"], "content": "This will be unchanged",
      "phoneNumber": "+01-123-456-7890"}),
]


@pytest.mark.parametrize(("original", "patch", "result"), RFC7396_EXAMPLES)
def test_rfc7396_examples(original: Any, patch: Any, result: Any) -> None:
    before = json.dumps(original, sort_keys=True)
    assert apply_merge_patch(original, patch) == result
    assert json.dumps(original, sort_keys=True) == before


# ---------------------------------------------------------------------------------------------
# Meshes with Patches

HTTP = {"name": "web", "port": 8080, "protocol": "http", "hosts": ["shop.example.com"]}
ROUTES = "/static_resources/listeners/0/filter_chains/0/filters/0/typed_config/route_config"


def patch(name: str, **fields: Any) -> dict:
    return {"apiVersion": API, "kind": "Patch", "name": name, **fields}


def bootstrap_patch(name: str, operations: list[dict], **fields: Any) -> dict:
    return patch(name, target="envoy", gateway="edge", object={"kind": "EnvoyBootstrap"}, jsonPatch=operations,
                 **fields)


POWERED_BY = [{"op": "test", "path": f"{ROUTES}/name", "value": "gateway|8080"},
              {"op": "add", "path": f"{ROUTES}/response_headers_to_add",
               "value": [{"header": {"key": "x-powered-by", "value": "meshc patch"}}]}]


def shop(root: Path, *patches: dict, platforms: tuple[dict, ...] = ()) -> Path:
    platform = platforms[0]["name"] if platforms else "vms"
    return write(root, [mesh(*platforms) if platforms else mesh(), service("api", platform=platform),
                        service("web", calls=["api"], platform=platform),
                        gateway("edge", [HTTP], platform=platform),
                        route("shop", [{"to": [{"service": "api"}]}], gateway="edge", hosts=["shop.example.com"]),
                        *patches])


def diagnostics(root: Path) -> list:
    compiled = check_mesh(root)
    return [d for d in compiled.report.sorted() if d.code.code not in ("MESH360",)]


def built(root: Path, targets: list[str] | None = None):
    compiled = compile_mesh(root)
    assert compiled.graph is not None and not compiled.report.has_errors
    artifacts = emit(compiled.graph, compiled.report, targets)
    return compiled, {a.path: a for a in artifacts}


def line_of(root: Path, file: str, text: str, after: int = 0) -> int:
    lines = (root / file).read_text().splitlines()
    return next(n for n, line in enumerate(lines, 1) if n > after and text in line)


def test_the_targets_are_the_registry() -> None:
    assert tuple(sorted(REGISTRY)) == PATCH_TARGETS


def test_a_patch_is_listed_at_its_place_and_edits_only_its_object(tmp_path: Path) -> None:
    root = shop(tmp_path / "mesh", bootstrap_patch("powered-by", POWERED_BY, reason="the CDN wants it"))
    [note] = diagnostics(root)
    assert (note.code, note.severity, note.location.file) == (codes.PATCH_LISTED, "info", "05-patch.yaml")
    assert note.location.line == line_of(root, "05-patch.yaml", "name: powered-by")
    assert note.message == ("Patch shop/powered-by edits EnvoyBootstrap of gateway:shop/edge on target envoy with 2 "
                            "JSON Patch operations; the semantics, the evaluator and `meshc test` do not know what it "
                            "does (reason: the CDN wants it)")
    _, patched = built(root)
    _, plain = built(shop(tmp_path / "plain"))
    assert set(patched) == set(plain)  # no file added or removed
    changed = sorted(p for p in plain if plain[p].content != patched[p].content)
    assert changed == ["envoy/gateways/shop/edge.yaml"]
    artifact = patched["envoy/gateways/shop/edge.yaml"]
    assert artifact.patches == ("shop/powered-by",) and "05-patch.yaml" in artifact.sources
    config = json.loads(artifact.content)
    assert resolve(config, f"{ROUTES}/response_headers_to_add") == POWERED_BY[1]["value"]
    # everything else is the target's own data, written by the same serialiser
    del resolve(config, ROUTES)["response_headers_to_add"]
    assert config == json.loads(plain["envoy/gateways/shop/edge.yaml"].content)


def test_real_envoy_answers_as_patched(tmp_path: Path) -> None:
    """The patched bootstrap passes `envoy --mode validate` and real Envoy, running it on
    loopback, adds the header the patch wrote (RouteConfiguration.response_headers_to_add: "a
    list of HTTP headers that should be added to each response that the connection manager
    encodes"); without the patch it does not."""
    binary = require_envoy()
    root = shop(tmp_path / "mesh", bootstrap_patch("powered-by", POWERED_BY))
    compiled, artifacts = built(root, ["envoy"])
    patched = artifacts["envoy/gateways/shop/edge.yaml"].content
    assert_envoy_accepts({"edge.json": patched}, tmp_path / "validate")
    edge = Proxy(gateway=key("edge"))
    request = Request("shop.example.com", "/", port=8080)
    with EnvoyRunner(compiled.graph, binary, bootstraps={edge: json.loads(patched)}) as runner:
        reply = runner.send(edge, request)
    with EnvoyRunner(compiled.graph, binary) as runner:
        unpatched = runner.send(edge, request)
    assert reply is not None and reply.status == 200 and reply.cluster == "outbound|8080||api.shop"
    assert header_value(reply.response_headers, "x-powered-by") == "meshc patch"
    assert unpatched is not None and header_value(unpatched.response_headers, "x-powered-by") is None


def patched_virtual_service(root: Path, merge_patch: dict) -> dict:
    """The gateway's VirtualService `shop` on an istio platform, after `merge_patch`."""
    k8s = {"name": "k8s", "kind": "kubernetes", "flavor": "istio"}
    shop(root, patch("cors", target="kubernetes", gateway="edge", object={"kind": "VirtualService", "name": "shop"},
                     mergePatch=merge_patch), platforms=(k8s,))
    _, artifacts = built(root, ["kubernetes"])
    [virtual_service] = [d for a in artifacts.values() if a.patches for d in yaml.safe_load_all(a.content)
                         if d and d.get("kind") == "VirtualService"]
    return virtual_service


def test_a_merge_patch_on_a_virtual_service_is_schema_valid_istio(tmp_path: Path) -> None:
    """A merge patch adds what the language lacks to the VirtualService (a corsPolicy, Istio's
    HTTPRoute.corsPolicy); the result still validates against Istio's CRD schema, and a patch
    that breaks the schema is caught by the same validator the tests run on every artifact."""
    cors = {"spec": {"http": [{"corsPolicy": {"allowOrigins": [{"exact": "https://shop.example.com"}]},
                               "route": [{"destination": {"host": "api.shop.svc.cluster.local"}}]}]}}
    virtual_service = patched_virtual_service(tmp_path / "mesh", cors)
    assert virtual_service["spec"]["http"] == cors["spec"]["http"]  # a merge patch replaces an array whole
    assert virtual_service["metadata"]["name"] == "shop"
    assert validation_errors(virtual_service) == []
    broken = patched_virtual_service(tmp_path / "broken", {"spec": {"http": [{"corsPolicy": {"allowOrigins": "x"}}]}})
    assert validation_errors(broken) != []


def only_error(root: Path) -> Any:
    errors = [d for d in diagnostics(root) if d.severity == "error"]
    assert len(errors) == 1, [(d.code.code, d.message) for d in errors]
    return errors[0]


@pytest.mark.parametrize(("operations", "code", "field", "words"), [
    ([{"op": "remove", "path": "/static_resources/nothing"}], "MESH236", "path", "no member 'nothing'"),
    ([{"op": "test", "path": "/admin/address/socket_address/port_value", "value": 1}], "MESH236", "value",
     "test failed: '/admin/address/socket_address/port_value' is 15000, not 1"),
    ([{"op": "copy", "from": "/nowhere", "path": "/x"}], "MESH236", "from", "no member 'nowhere'"),
    ([{"op": "replace", "path": "", "value": [1]}], "MESH236", "jsonPatch", "as a JSON array, not an object"),
    ([{"op": "add", "path": f"{ROUTES}/virtual_hosts/0/routes/0/route/cluster", "value": "nowhere"}], "MESH416",
     "jsonPatch", "cluster 'nowhere', which is not among static_resources.clusters"),
    ([{"op": "copy", "from": "/static_resources/clusters/0", "path": "/static_resources/clusters/-"}], "MESH416",
     "jsonPatch", "names 'outbound|8080||api.shop' twice"),
])
def test_failures_are_located_errors_and_nothing_is_written(tmp_path: Path, operations: list, code: str, field: str,
                                                           words: str) -> None:
    root = shop(tmp_path / "mesh", bootstrap_patch("broken", [{"op": "test", "path": "/admin/address/socket_address/"
                                                                "port_value", "value": 15000}, *operations]))
    error = only_error(root)
    assert error.code.code == code and words in error.message, error.message
    anchor = line_of(root, "05-patch.yaml", "jsonPatch:")
    expected = anchor if field == "jsonPatch" else line_of(root, "05-patch.yaml", f"{field}:", after=anchor + 3)
    assert (error.location.file, error.location.line) == ("05-patch.yaml", expected)
    result = meshc("build", str(root), "-o", str(tmp_path / "out"))
    assert result.exit_code != 0 and not (tmp_path / "out").exists()


@pytest.mark.parametrize(("fields", "code", "at", "words"), [
    ({"target": "envoy", "service": "nobody", "object": {"kind": "EnvoyBootstrap"}}, "MESH235", "service:",
     "patches service shop/nobody, which is not a Service of the mesh"),
    ({"target": "envoy", "platform": "mars", "object": {"kind": "EnvoyBootstrap"}}, "MESH235", "platform:",
     "platform 'mars', which Mesh.platforms does not define"),
    ({"target": "cloudfoundry", "service": "web", "object": {"kind": "EnvoyBootstrap"}}, "MESH236", "target:",
     "target cloudfoundry emits nothing for service:shop/web"),
    ({"target": "envoy", "service": "web", "object": {"kind": "VirtualService", "name": "web"}}, "MESH236",
     "object:", "envoy emits EnvoyBootstrap (envoy/shop/web.yaml) for service:shop/web; the object is not among them"),
    ({"target": "envoy", "service": "web", "object": {"kind": "EnvoyBootstrap", "name": "x"}}, "MESH236", "object:",
     "is not among them"),
])
def test_a_patch_that_names_nothing_is_a_located_error(tmp_path: Path, fields: dict, code: str, at: str,
                                                       words: str) -> None:
    root = shop(tmp_path / "mesh", patch("lost", **fields, mergePatch={"a": 1}))
    error = only_error(root)
    assert error.code.code == code and words in error.message, error.message
    assert (error.location.file, error.location.line) == ("05-patch.yaml", line_of(root, "05-patch.yaml", at))


@pytest.mark.parametrize(("document", "code", "at", "words"), [
    ({"jsonPatch": [{"op": "add", "path": "a"}]}, "MESH105", "path:", "should match pattern"),
    ({"jsonPatch": [{"op": "add", "path": "/a"}]}, "MESH108", "op:", "the add operation needs `value`"),
    ({"jsonPatch": [{"op": "remove", "path": "/a", "value": 1}]}, "MESH108", "op:", "takes no `value`"),
    ({"jsonPatch": [{"op": "move", "path": "/a"}]}, "MESH108", "op:", "the move operation needs `from`"),
    ({"jsonPatch": [{"op": "add", "path": "/a", "value": 1, "xyz": 123}]}, "MESH103", "xyz:", "no field 'xyz'"),
    ({"mergePatch": {"a": 18446744073709551616}}, "MESH105", "  a:", "does not fit in 64 bits (at JSON Pointer '/a'"),
    ({"mergePatch": {"a": [1, ".nan"]}, "_nan": True}, "MESH105", "  a:", "no NaN or infinity (at JSON Pointer '/a/1'"),
    ({"mergePatch": {"a": 1}, "jsonPatch": [{"op": "remove", "path": "/a"}]}, "MESH108", "apiVersion:",
     "exactly one of mergePatch, jsonPatch"),
    ({"mergePatch": {"a": 1}, "object": {"kind": "VirtualService"}}, "MESH108", "apiVersion:", "named by `name`"),
])
def test_malformed_patches_are_schema_errors(tmp_path: Path, document: dict, code: str, at: str, words: str) -> None:
    """RFC 6902 A.11 ignores an unknown member (`xyz`); meshc reports it, as every unknown field:
    a misspelt `form:` would otherwise mean nothing. A.13 (a duplicate `op`) is MESH003 for any
    YAML mapping."""
    fields = {"target": "envoy", "gateway": "edge", "object": {"kind": "EnvoyBootstrap"}, **document}
    root = shop(tmp_path / "mesh", patch("bad", **{k: v for k, v in fields.items() if k != "_nan"}))
    if document.get("_nan"):  # YAML's .nan, which to_yaml writes for float('nan') only
        text = (root / "05-patch.yaml").read_text().replace("'.nan'", ".nan")
        (root / "05-patch.yaml").write_text(text)
    error = only_error(root)
    assert error.code.code == code and words in error.message, error.message
    assert error.location.line == line_of(root, "05-patch.yaml", at)


def test_the_listing_cannot_be_suppressed(tmp_path: Path) -> None:
    root = shop(tmp_path / "mesh", bootstrap_patch("powered-by", POWERED_BY))
    text = (root / "mesh.yaml").read_text() + "suppress:\n- code: MESH387\n"
    (root / "mesh.yaml").write_text(text)
    found = {d.code.code for d in diagnostics(root)}
    assert {"MESH387", "MESH390"} <= found


def test_check_lists_every_patch_in_its_json_output(tmp_path: Path) -> None:
    root = shop(tmp_path / "mesh", bootstrap_patch("powered-by", POWERED_BY),
                patch("admin", target="envoy", service="web", object={"kind": "EnvoyBootstrap"},
                      mergePatch={"admin": {"address": {"socket_address": {"port_value": 15099}}}}))
    result = meshc("check", str(root), "--format", "json")
    assert result.exit_code == 0, result.output
    listed = [(d["location"]["file"], d["message"].split(" edits ")[0]) for d in json.loads(result.stdout)["diagnostics"]
              if d["code"] == "MESH387"]
    assert sorted(listed) == [("05-patch.yaml", "Patch shop/powered-by"), ("06-patch.yaml", "Patch shop/admin")]


def test_values_reach_the_output_only_through_the_encoders(tmp_path: Path) -> None:
    """Hostile values (YAML indicators, a document start, line breaks, a quote) are data: read
    back, the patched objects hold them verbatim, in the JSON bootstrap and the YAML object."""
    hostile = "x\n---\nkind: Secret\n'\"# {{ }} %s \u2028 ${HOME}"
    k8s = {"name": "k8s", "kind": "kubernetes", "flavor": "istio"}
    root = shop(tmp_path / "mesh",
                patch("label", target="kubernetes", service="web", object={"kind": "Sidecar", "name": "web"},
                      mergePatch={"metadata": {"annotations": {"example.com/note": hostile}}}),
                platforms=(k8s,))
    _, artifacts = built(root, ["kubernetes"])
    [artifact] = [a for a in artifacts.values() if a.patches]
    documents = list(yaml.safe_load_all(artifact.content))
    assert [d["kind"] for d in documents if d].count("Secret") == 0
    [sidecar] = [d for d in documents if d and d["kind"] == "Sidecar"]
    assert sidecar["metadata"]["annotations"]["example.com/note"] == hostile
    root = shop(tmp_path / "envoy", bootstrap_patch("v", [{"op": "add", "path": "/node/metadata",
                                                           "value": {"note": hostile}}]))
    _, artifacts = built(root, ["envoy"])
    assert json.loads(artifacts["envoy/gateways/shop/edge.yaml"].content)["node"]["metadata"] == {"note": hostile}


def test_a_kubernetes_object_keeps_its_identity(tmp_path: Path) -> None:
    k8s = {"name": "k8s", "kind": "kubernetes", "flavor": "istio"}
    root = shop(tmp_path / "mesh", patch("rename", target="kubernetes", service="web",
                                         object={"kind": "Sidecar", "name": "web"},
                                         mergePatch={"metadata": {"namespace": "kube-system"}}),
                platforms=(k8s,))
    error = only_error(root)
    assert error.code == codes.PATCHED_KUBERNETES_OBJECT
    assert "its identity becomes Sidecar kube-system/web" in error.message


def test_vm_and_cloudfoundry_check_what_they_wrote_beside_the_object(tmp_path: Path, jsonschema) -> None:
    vm = shop(tmp_path / "vm", patch("port", target="vm", service="web", object={"kind": "EnvoyBootstrap"},
                                     jsonPatch=[{"op": "replace", "value": 80,
                                                 "path": "/static_resources/listeners/0/address/socket_address/"
                                                         "port_value"}]))
    error = only_error(vm)
    assert error.code == codes.PATCHED_VM_BOOTSTRAP and "the listen ports change" in error.message
    cf = {"name": "pcf", "kind": "cloudfoundry", "appsDomain": "apps.example.com"}
    root = write(tmp_path / "cf", [mesh(cf), service("api", platform="pcf"),
                                   patch("apps", target="cloudfoundry", platform="pcf",
                                         object={"kind": "CloudFoundryManifest"},
                                         jsonPatch=[{"op": "replace", "path": "/applications/0/name", "value": "x"}])])
    error = only_error(root)
    assert error.code == codes.PATCHED_CF_MANIFEST and "the applications become ['x'], not ['api']" in error.message
    root = write(tmp_path / "cf-ok", [mesh(cf), service("api", platform="pcf"),
                                      patch("memory", target="cloudfoundry", platform="pcf",
                                            object={"kind": "CloudFoundryManifest"},
                                            jsonPatch=[{"op": "add", "path": "/applications/0/memory",
                                                        "value": "256M"}])])
    found = diagnostics(root)
    assert "MESH387" in [d.code.code for d in found] and not [d for d in found if d.severity == "error"]
    _, artifacts = built(root, ["cloudfoundry"])
    manifest = yaml.safe_load(artifacts["cloudfoundry/pcf/manifest.yml"].content)
    assert manifest["applications"][0]["memory"] == "256M"
    schema = json.loads((require_shared_schemas() / "cloudfoundry" / "cloudfoundry-application-manifest.json")
                        .read_text(encoding="utf-8"))
    assert [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(manifest)] == []


def test_diff_shows_patched_artifacts_as_patched(tmp_path: Path) -> None:
    repo = git_mesh(tmp_path / "repo")
    (repo.root / "patches").mkdir()
    (repo.root / "patches" / "productpage.yaml").write_text(yaml.safe_dump(patch(
        "productpage-admin", namespace="bookinfo", target="envoy", service="productpage",
        object={"kind": "EnvoyBootstrap"}, mergePatch={"admin": {"address": {"socket_address": {"port_value": 15999}}}})))
    result = meshc("diff", str(repo.root), "-t", "envoy")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "added Patch/bookinfo/productpage-admin (patches/productpage.yaml:" in text
    assert "  reaches proxies: service:bookinfo/productpage" in text
    assert ("patched (edited by Patches, outside the semantics):\n  envoy/bookinfo/productpage.yaml "
            "(envoy service:bookinfo/productpage): patched by Patch bookinfo/productpage-admin") in text
    assert "envoy/bookinfo/productpage.yaml: patched by Patch bookinfo/productpage-admin\n--- a/" in text
    payload = json.loads(meshc("diff", str(repo.root), "-t", "envoy", "--format", "json").stdout)
    [file] = payload["targets"]["envoy"]["service:bookinfo/productpage"]["files"]
    assert file["patches"] == ["bookinfo/productpage-admin"]
    assert payload["patched"] == [{"path": "envoy/bookinfo/productpage.yaml", "target": "envoy",
                                   "workload": "service:bookinfo/productpage",
                                   "patches": ["bookinfo/productpage-admin"]}]
    markdown = meshc("diff", str(repo.root), "-t", "envoy", "--format", "markdown").stdout
    assert ("#### Patched artifacts\n\n1 artifact of the head is edited by Patches, outside the semantics." in markdown
            and "| envoy/bookinfo/productpage.yaml | service:bookinfo/productpage | bookinfo/productpage-admin |"
            in markdown)
    # committed, an unrelated change still shows the patched artifact as patched
    repo.commit("a patch")
    repo.edit("services/details.yaml", "owner:", "owner: x")
    text = meshc("diff", str(repo.root), "-t", "envoy").stdout
    assert "envoy/bookinfo/productpage.yaml (envoy service:bookinfo/productpage): patched by" in text


def test_an_incremental_build_after_a_patch_changes_equals_a_full_build(tmp_path: Path) -> None:
    repo = git_mesh(tmp_path / "repo")
    patch_file = repo.root / "patches.yaml"
    patch_file.write_text(yaml.safe_dump(patch(
        "reviews-admin", namespace="bookinfo", target="envoy", service="reviews", object={"kind": "EnvoyBootstrap"},
        mergePatch={"admin": {"address": {"socket_address": {"port_value": 15998}}}})))
    repo.commit("a patch")
    out = tmp_path / "out"
    assert meshc("build", str(repo.root), "-o", str(out)).exit_code == 0
    repo.edit("patches.yaml", "15998", "15997")
    incremental = meshc("build", str(repo.root), "-o", str(out), "--changed-since", "HEAD")
    assert incremental.exit_code == 0, incremental.output
    full = tmp_path / "full"
    assert meshc("build", str(repo.root), "-o", str(full)).exit_code == 0
    files = sorted(p.relative_to(full) for p in full.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    for relative in files:
        if relative.name != "manifest.json":
            assert (out / relative).read_bytes() == (full / relative).read_bytes(), relative
    assert b'"port_value": 15997' in (out / "envoy/bookinfo/reviews.yaml").read_bytes()


def test_every_bootstrap_of_the_workload_is_patched(tmp_path: Path) -> None:
    """A service placed on several platforms has a sidecar per placement (examples/multicluster-
    shop): a Patch of its EnvoyBootstrap edits each of them, and nothing else."""
    from tests.conftest import EXAMPLES, copy_mesh

    root = copy_mesh(EXAMPLES / "multicluster-shop", tmp_path / "mesh")
    (root / "patch.yaml").write_bytes(to_yaml(patch("catalog-node", target="envoy", service="catalog",
                                                    object={"kind": "EnvoyBootstrap"},
                                                    mergePatch={"node": {"metadata": {"patched": "yes"}}})))
    _, artifacts = built(root, ["envoy"])
    patched = sorted(path for path, a in artifacts.items() if b'"patched"' in a.content)
    assert len(patched) > 1 and patched == sorted(path for path, a in artifacts.items() if a.patches)
    assert all(artifacts[path].workload == "service:shop/catalog" for path in patched)
