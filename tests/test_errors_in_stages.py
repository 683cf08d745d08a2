"""Errors in stages (issue 13, everyday friction): a document with a schema error is left out
of linking, but its identity still resolves references to it, so one run shows the schema
error, the link errors of the other files and the analysis of every complete kind, without an
"unknown reference" cascade; `meshc check` and `meshc build` report the same."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from compiler.cli import main
from tests.test_bad_input import MESH as BAD_INPUT_MESH

MESH = BAD_INPUT_MESH + "authorization: allow\n"


def service(name: str, extra: str = "") -> str:
    return (f"apiVersion: meshc/v1\nkind: Service\nname: {name}\nplatform: k8s\n"
            f"ports: [{{name: http, port: 8080, protocol: http}}]\n{extra}")


def _found(root: Path, tmp_path: Path) -> list[tuple[str, str, int]]:
    """check's diagnostics (code, file, line); build reports the very same."""
    runner = CliRunner()
    check = runner.invoke(main, ["check", str(root), "--format", "json", "--no-cache"])
    build = runner.invoke(main, ["build", str(root), "-o", str(tmp_path / "out"), "--format", "json"])
    assert check.exit_code == build.exit_code == 1, (check.output, build.output)
    assert json.loads(check.stdout)["diagnostics"] == json.loads(build.stdout)["diagnostics"]
    assert not (tmp_path / "out").exists()
    return [(d["code"], d["location"]["file"], d["location"]["line"]) for d in json.loads(check.stdout)["diagnostics"]]


def test_one_run_shows_schema_link_and_analysis_errors(make_mesh, tmp_path: Path) -> None:
    root = make_mesh({
        "mesh.yaml": MESH,
        # a schema error (no such protocol) in an ExternalService that web calls
        "external/mail.yaml": "apiVersion: meshc/v1\nkind: ExternalService\nname: mail\nhosts: [mail.example.com]\n"
                              "ports: [{name: smtp, port: 25, protocol: smtp}]\n",
        "services/api.yaml": service("api"),
        "services/web.yaml": service("web", "calls: [api, mail]\n"),
        # a link error in another file: an AccessPolicy admitting a service that does not exist
        "access/api.yaml": "apiVersion: meshc/v1\nkind: AccessPolicy\nname: api\nservice: api\n"
                           "allow: [{from: [web, ghost]}]\n",
        # an analysis finding over complete kinds (Mesh, Route, Service): a rule after a catch-all
        "routes/api.yaml": "apiVersion: meshc/v1\nkind: Route\nname: api\nservice: api\nrules:\n"
                           "  - to: [{service: api}]\n  - match: [{method: GET}]\n    to: [{service: api}]\n",
    })
    found = _found(root, tmp_path)
    assert ("MESH105", "external/mail.yaml", 5) in found  # schema
    assert ("MESH202", "access/api.yaml", 5) in found  # link: ghost
    assert ("MESH301", "routes/api.yaml", 7) in found  # analysis
    # web's call to the invalid ExternalService resolves: no "unknown service" for it
    assert [f for f in found if f[1] == "services/web.yaml"] == []


def test_references_to_an_invalid_document_do_not_cascade(make_mesh, tmp_path: Path) -> None:
    """Every reference to a Service whose document fails validation resolves to it: only the
    schema error is reported, not one "unknown service" per referrer, and no check runs over
    the incomplete services (it would report their holes)."""
    root = make_mesh({
        "mesh.yaml": MESH,
        "services/api.yaml": service("api", "public: yes\n"),
        "services/web.yaml": service("web", "calls: [api]\n"),
        "routes/api.yaml": "apiVersion: meshc/v1\nkind: Route\nname: api\nservice: api\nrules:\n"
                           "  - to: [{service: api}]\n",
        "routes/web.yaml": "apiVersion: meshc/v1\nkind: Route\nname: web\nservice: web\nrules:\n"
                           "  - to: [{service: web, weight: 90}, {service: api, weight: 10}]\n",
        "access/api.yaml": "apiVersion: meshc/v1\nkind: AccessPolicy\nname: api\nservice: api\n"
                           "allow: [{from: [web]}]\n",
    })
    assert _found(root, tmp_path) == [("MESH105", "services/api.yaml", 6)]


def test_a_file_that_cannot_be_parsed_hides_no_reference_error_behind_a_cascade(make_mesh, tmp_path: Path) -> None:
    """A file that is not YAML may hold anything: nothing is called unknown, and the other
    files' schema errors are still reported."""
    root = make_mesh({
        "mesh.yaml": MESH,
        "services/api.yaml": "apiVersion: meshc/v1\nkind: Service\nname: [api\n",
        "services/web.yaml": service("web", "calls: [api]\nmtls: SOMETIMES\n"),
    })
    assert _found(root, tmp_path) == [("MESH002", "services/api.yaml", 4), ("MESH105", "services/web.yaml", 7)]
