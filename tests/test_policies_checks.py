"""Every semantic-analysis code: a violating mesh reports exactly that code at exactly the
field it is about; the clean variant reports nothing."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.test_policies_support import MESH, analysed, found, frontend, position


@dataclass(frozen=True)
class Case:
    code: str
    violating: dict[str, str]
    clean: dict[str, str]
    path: str  # where the diagnostic points: a file of `violating` ...
    needle: str  # ... the text at its line and column ...
    nth: int = 1  # ... its nth occurrence


def mesh(**files: str) -> dict[str, str]:
    return {"mesh.yaml": MESH, **{name.replace("__", "/") + ".yaml": text for name, text in files.items()}}


API = """\
    apiVersion: meshc/v1
    kind: Service
    name: api
    platform: k8s
    ports: [{name: http, port: 8080, protocol: http}]
    versions: {v1: {labels: {version: v1}}, v2: {labels: {version: v2}}}
"""

TCP_API = """\
    apiVersion: meshc/v1
    kind: Service
    name: api
    platform: k8s
    ports: [{name: db, port: 5432, protocol: tcp}]
"""


def route(rules: str) -> str:
    return "    apiVersion: meshc/v1\n    kind: Route\n    name: api\n    service: api\n    rules:\n" + rules


def policy(body: str) -> str:
    return "    apiVersion: meshc/v1\n    kind: AccessPolicy\n    name: api-callers\n    service: api\n" + body


def vm_api(endpoint_versions: str) -> str:
    return (
        "    apiVersion: meshc/v1\n    kind: Service\n    name: api\n    platform: vms\n"
        "    ports: [{name: http, port: 8080, protocol: http}]\n"
        "    versions: {v1: {labels: {version: v1}}, v2: {labels: {version: v2}}}\n"
        f"    endpoints: {endpoint_versions}\n"
    )


def gateway(listeners: str, name: str = "gw") -> str:
    return f"    apiVersion: meshc/v1\n    kind: Gateway\n    name: {name}\n    platform: k8s\n    listeners:\n" + listeners


def ingress(hosts: str) -> str:
    return (
        "    apiVersion: meshc/v1\n    kind: Route\n    name: web\n    gateway: gw\n"
        f"    hosts: {hosts}\n    rules:\n      - to: [{{service: api}}]\n"
    )


def cel_policy(rule: str, severity: str = "error") -> str:
    return (
        "    apiVersion: meshc/v1\n    kind: Policy\n    name: owners\n    appliesTo: Service\n"
        f"    severity: {severity}\n    rule: {rule}\n    message: every service names its owner\n"
    )


def owned(text: str, owner: str) -> str:
    return text + f"    owner: {owner}\n"


WORKER = "    apiVersion: meshc/v1\n    kind: Service\n    name: worker\n    platform: k8s\n    ports: [{name: http, port: 8080, protocol: http}]\n"

CASES = [
    Case("MESH301",
         mesh(front=frontend("api"), api=API, route=route(
             "      - match: [{path: {prefix: /}}]\n        to: [{version: v1}]\n"
             "      - match: [{path: {prefix: /v2}}]\n        to: [{version: v2}]\n")),
         mesh(front=frontend("api"), api=API, route=route(
             "      - match: [{path: {prefix: /v2}}]\n        to: [{version: v2}]\n"
             "      - match: [{path: {prefix: /}}]\n        to: [{version: v1}]\n")),
         "route.yaml", "match: [{path: {prefix: /v2}", 1),
    Case("MESH302",
         mesh(front=frontend("api"), api=API, route=route(
             "      - match:\n          - {headers: {x-beta: {exact: '1'}}}\n          - {headers: {X-Beta: {exact: '1'}}}\n"
             "        to: [{version: v2}]\n      - to: [{version: v1}]\n")),
         mesh(front=frontend("api"), api=API, route=route(
             "      - match:\n          - {headers: {x-beta: {exact: '1'}}}\n          - {headers: {x-gamma: {exact: '1'}}}\n"
             "        to: [{version: v2}]\n      - to: [{version: v1}]\n")),
         "route.yaml", "{headers: {X-Beta"),
    Case("MESH310",
         mesh(front=frontend("api"), api=API, policy=policy("    deny:\n      - from: [frontend]\n")),
         mesh(front=frontend("api"), api=API, policy=policy("    deny:\n      - from: [frontend]\n        methods: [DELETE]\n")),
         "front.yaml", "- ^api"),
    Case("MESH311",
         mesh(front=frontend("api", "worker"), api=API, worker=WORKER,
              policy=policy("    allow:\n      - from: [frontend, worker]\n")),
         mesh(front=frontend("api", "worker"), api=API, worker=WORKER,
              policy=policy("    allow:\n      - from: [frontend]\n")),
         "policy.yaml", "worker"),
    Case("MESH312",
         mesh(front=frontend("api"), api=API, policy=policy("    allow:\n      - from: [frontend, {namespace: ghost}]\n")),
         mesh(front=frontend("api"), api=API, policy=policy("    allow:\n      - from: [frontend, {namespace: shop}]\n")),
         "policy.yaml", "{namespace: ghost}"),
    Case("MESH320",
         mesh(front=frontend("api"), api=API + "    public: true\n"),
         mesh(front=frontend("api"), api=API + "    public: true\n    mtls: PERMISSIVE\n"),
         "api.yaml", "true"),
    Case("MESH321",
         mesh(front=frontend("worker"), worker=WORKER + "    calls: [api]\n", api=API + "    mtls: DISABLE\n"),
         mesh(front=frontend("worker"), worker=WORKER + "    calls: [api]\n", api=API + "    mtls: PERMISSIVE\n"),
         "api.yaml", "DISABLE"),
    Case("MESH330",
         mesh(front=frontend("api"), api=API + "    resilience:\n      timeout: 2s\n      retries: {attempts: 2, perTryTimeout: 1s}\n"),
         mesh(front=frontend("api"), api=API + "    resilience:\n      timeout: 3s\n      retries: {attempts: 2, perTryTimeout: 1s}\n"),
         "api.yaml", "1s}"),
    Case("MESH331",
         mesh(front=frontend("api") + "    resilience: {timeout: 2s}\n", api=API,
              route=route("      - to: [{version: v1}]\n        timeout: 5s\n")),
         mesh(front=frontend("api") + "    resilience: {timeout: 2s}\n", api=API,
              route=route("      - to: [{version: v1}]\n        timeout: 1s\n")),
         "route.yaml", "5s"),
    Case("MESH332",
         mesh(front=frontend("api"), api=API, route=route(
             "      - match: [{method: POST}]\n        to: [{version: v1}]\n        retries: {attempts: 2}\n"
             "      - to: [{version: v1}]\n")),
         mesh(front=frontend("api"), api=API, route=route(
             "      - match: [{method: POST}]\n        to: [{version: v1}]\n"
             "        retries: {attempts: 2, allowNonIdempotent: true}\n      - to: [{version: v1}]\n")),
         "route.yaml", "POST"),
    Case("MESH340",
         mesh(front=frontend("api"), api=TCP_API, route=route("      - match: [{path: {prefix: /}}]\n        to: [{port: 5432}]\n")),
         mesh(front=frontend("api"), api=TCP_API, route=route("      - match: [{port: 5432}]\n        to: [{port: 5432}]\n")),
         "route.yaml", "{path"),
    Case("MESH341",
         mesh(front=frontend("api"), api=API, route=route("      - match: [{sni: [api.example.com]}]\n        to: [{version: v1}]\n"
                                                          "      - to: [{version: v2}]\n")),
         mesh(front=frontend("api"), api=API, route=route("      - match: [{headers: {host: {exact: api.example.com}}}]\n"
                                                          "        to: [{version: v1}]\n      - to: [{version: v2}]\n")),
         "route.yaml", "[api.example.com]"),
    Case("MESH342",
         mesh(front=frontend("api"), api=API, route=route("      - match: [{port: 9090}]\n        to: [{version: v1}]\n"
                                                          "      - to: [{version: v2}]\n")),
         mesh(front=frontend("api"), api=API, route=route("      - match: [{port: 8080, method: GET}]\n        to: [{version: v1}]\n"
                                                          "      - to: [{version: v2}]\n")),
         "route.yaml", "9090"),
    Case("MESH343",
         mesh(front=frontend("api"), api=vm_api("[{address: 10.0.0.1, version: v1}]"),
              route=route("      - to: [{version: v1, weight: 90}, {version: v2, weight: 10}]\n")),
         mesh(front=frontend("api"), api=vm_api("[{address: 10.0.0.1, version: v1}, {address: 10.0.0.2, version: v2}]"),
              route=route("      - to: [{version: v1, weight: 90}, {version: v2, weight: 10}]\n")),
         "route.yaml", "v2"),
    Case("MESH344",
         mesh(front=frontend("api"), api=API.replace("platform: k8s", "platform: cf"),
              route=route("      - match: [{headers: {x-beta: {exact: 'on'}}}]\n        to: [{version: v2}]\n"
                          "      - to: [{}]\n")),
         mesh(front=frontend("api"), api=API,
              route=route("      - match: [{headers: {x-beta: {exact: 'on'}}}]\n        to: [{version: v2}]\n"
                          "      - to: [{}]\n")),
         "route.yaml", "v2}"),
    Case("MESH350",
         mesh(front=frontend("api"), api=API, gw=gateway(
             "      - {name: wild, port: 80, protocol: http, hosts: ['*.example.com']}\n"
             "      - {name: shop, port: 80, protocol: http, hosts: [shop.example.com]}\n"),
              web=ingress("[shop.example.com]")),
         mesh(front=frontend("api"), api=API, gw=gateway(
             "      - {name: wild, port: 80, protocol: http, hosts: ['*.example.com']}\n"
             "      - {name: shop, port: 8080, protocol: http, hosts: [shop.example.com]}\n"),
              web=ingress("[shop.example.com]")),
         "gw.yaml", "shop.example.com"),
    Case("MESH351",
         mesh(front=frontend("api"), api=API, gw=gateway("      - {name: web, port: 80, protocol: http, hosts: [shop.example.com]}\n"),
              web=ingress("[other.example.com]")),
         mesh(front=frontend("api"), api=API, gw=gateway("      - {name: web, port: 80, protocol: http, hosts: [shop.example.com]}\n"),
              web=ingress("[shop.example.com]")),
         "web.yaml", "other.example.com"),
    Case("MESH352",
         mesh(front=frontend("api"), api=API,
              gw=gateway("      - {name: web, port: 443, protocol: https, hosts: [a.example.com], tls: {mode: terminate, certificate: shop-cert}}\n"),
              gw2=gateway("      - {name: web, port: 443, protocol: https, hosts: [b.example.com], tls: {mode: terminate, certificate: shop-cert}}\n", "gw2")),
         mesh(front=frontend("api"), api=API,
              gw=gateway("      - {name: web, port: 443, protocol: https, hosts: [a.example.com], tls: {mode: terminate, certificate: shop-cert}}\n"),
              gw2=gateway("      - {name: web, port: 443, protocol: https, hosts: [b.example.com], tls: {mode: terminate, certificate: b-cert}}\n", "gw2")),
         "gw2.yaml", "shop-cert"),
    Case("MESH353",
         mesh(front=frontend("api"), api=API,
              gw=gateway("      - {name: web, port: 443, protocol: https, hosts: [a.example.com], tls: {mode: terminate}}\n")),
         mesh(front=frontend("api"), api=API,
              gw=gateway("      - {name: web, port: 443, protocol: https, hosts: [a.example.com], tls: {mode: terminate, certificate: a-cert}}\n")),
         "gw.yaml", "{mode: terminate}"),
    Case("MESH360",
         mesh(front=frontend("api"), api=API, worker=WORKER),
         mesh(front=frontend("api", "worker"), api=API, worker=WORKER),
         "worker.yaml", "worker"),
    Case("MESH361",
         mesh(front=frontend("api"), api=API + "    calls: [worker]\n", worker=WORKER + "    calls: [api]\n"),
         mesh(front=frontend("api"), api=API + "    calls: [worker]\n", worker=WORKER),
         "api.yaml", "worker"),
    Case("MESH362",
         mesh(front=frontend("api"), api=API,
              pay="    apiVersion: meshc/v1\n    kind: ExternalService\n    name: payments\n    hosts: [pay.example.com]\n"
                  "    ports: [{name: https, port: 443, protocol: tls}]\n"),
         mesh(front=frontend("api", "payments"), api=API,
              pay="    apiVersion: meshc/v1\n    kind: ExternalService\n    name: payments\n    hosts: [pay.example.com]\n"
                  "    ports: [{name: https, port: 443, protocol: tls}]\n"),
         "pay.yaml", "payments"),
    Case("MESH370",
         mesh(front=owned(frontend(), "team-a"), owners=cel_policy('"has(self.owner) &&"')),
         mesh(front=owned(frontend(), "team-a"), owners=cel_policy('"has(self.owner)"')),
         "owners.yaml", '&&^"'),
    Case("MESH371",
         mesh(front=frontend("api"), api=owned(API, "team-a"), owners=cel_policy('"has(self.owner)"')),
         mesh(front=owned(frontend("api"), "team-a"), api=owned(API, "team-a"), owners=cel_policy('"has(self.owner)"')),
         "front.yaml", "frontend"),
    Case("MESH372",
         mesh(front=frontend("api"), api=owned(API, "team-a"), owners=cel_policy("\"self.owner.startsWith('team-')\"")),
         mesh(front=frontend("api"), api=owned(API, "team-a"),
              owners=cel_policy("\"!has(self.owner) || self.owner.startsWith('team-')\"")),
         "front.yaml", "frontend"),
    Case("MESH390",
         mesh(front=frontend("api"), api=API.replace("name: api\n", "name: api  # meshc: ignore[MESH360]\n")),
         mesh(front=frontend("api"), api=API, worker=WORKER.replace("name: worker\n", "name: worker  # meshc: ignore[MESH360]\n")),
         "api.yaml", "# meshc"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.code)
def test_violating_mesh_reports_the_code_at_the_field(case: Case, make_mesh, tmp_path) -> None:
    root = make_mesh(case.violating, tmp_path / "violating")
    assert found(analysed(root)) == [(case.code, *position(case.violating, case.path, case.needle, case.nth))]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.code)
def test_clean_mesh_reports_nothing(case: Case, make_mesh, tmp_path) -> None:
    root = make_mesh(case.clean, tmp_path / "clean")
    assert analysed(root) == []


def test_every_analysis_code_has_a_case() -> None:
    from compiler.codes import CODES

    assert sorted(c for c in CODES if c.startswith("MESH3")) == sorted(case.code for case in CASES)
