"""`meshc init`: a small working mesh repo that checks clean."""

from __future__ import annotations

from pathlib import Path

STARTER = {
    "mesh.yaml": """\
# The one Mesh document: platforms, defaults and organisation-wide settings.
apiVersion: meshc/v1
kind: Mesh
name: starter
defaultNamespace: shop
mtls: STRICT
authorization: deny          # a service without an AccessPolicy admits no caller
defaults:
  timeout: 15s
  retries: {attempts: 2, perTryTimeout: 5s, retryOn: [5xx, reset, connect-failure]}
platforms:
  - name: k8s
    kind: kubernetes
""",
    "services/web.yaml": """\
apiVersion: meshc/v1
kind: Service
name: web
platform: k8s
public: true                 # reached from outside the mesh, through the platform's router
mtls: PERMISSIVE             # the router is no mesh workload: it calls in plain text
ports:
  - {name: http, port: 8080, protocol: http}
calls: [api]
""",
    "services/api.yaml": """\
apiVersion: meshc/v1
kind: Service
name: api
platform: k8s
ports:
  - {name: http, port: 9090, protocol: http}
versions:
  v1: {labels: {version: v1}}
  v2: {labels: {version: v2}}
---
apiVersion: meshc/v1
kind: Route
name: api
service: api
rules:
  - to: [{version: v1, weight: 90}, {version: v2, weight: 10}]
---
apiVersion: meshc/v1
kind: AccessPolicy
name: api-callers
service: api
allow:
  - from: [web]
""",
    "policies/timeouts.yaml": """\
# An organisation rule, checked at compile time (CEL over the linked, defaulted object).
apiVersion: meshc/v1
kind: Policy
name: bounded-timeouts
severity: error
appliesTo: Service
rule: "!has(self.resilience.timeout) || duration(self.resilience.timeout) <= duration('30s')"
message: "service timeouts are at most 30s"
""",
}


class InitError(Exception):
    """The directory cannot take a starter repo (exit 2, nothing written)."""


def write_starter(directory: Path) -> list[Path]:
    clashes = [directory / p for p in STARTER if (directory / p).exists()]
    if clashes:
        raise InitError(f"{clashes[0]} already exists: meshc init writes into a new or empty mesh repo")
    written = []
    for relative, text in STARTER.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
