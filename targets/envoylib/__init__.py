"""The Envoy library: static Envoy v3 configuration compiled from the mesh graph.

This package is the one public way into Envoy configuration for every target: the envoy
target writes the bootstraps, Cloud Foundry and VM ship the same bootstraps beside their apps
and machines, and the kubernetes target embeds single filters in Istio EnvoyFilters. Targets
import from `targets.envoylib` only; its modules depend on each other in one direction:

  blocks     type URLs, converters and single filters that need no graph (local_rate_limit,
             route_match, tcp_proxy, ...)
  tls        Certificates: TLS contexts and the SDS cluster of one workload
  proxy      Proxy: one Envoy's inbound listeners, RBAC, tracing and clusters
  outbound   a sidecar's outbound listeners and the route tables gateways share
  gateway    an ingress gateway's listeners
  bootstrap  sidecar_bootstrap, gateway_bootstrap and the intent files each is built from;
             serialised_sidecar, built once per build for every target that ships it
  run        real Envoy processes on those bootstraps for `meshc test --envoy`

Everything is plain data in Envoy's proto3 JSON form; `serialise` writes it. The tests check
every bootstrap with `envoy --mode validate` and run real Envoy processes against it.
"""

from __future__ import annotations

from targets.envoylib.blocks import ANY_ADDRESS, HCM_FILTER, LOOPBACK, ROUTER_FILTER, local_rate_limit, origin_matchers
from targets.envoylib.bootstrap import (
    OncePerIntent,
    gateway_bootstrap,
    gateway_sources,
    serialise,
    serialised_sidecar,
    sidecar_bootstrap,
    sidecar_sources,
)
from targets.envoylib.tls import workload_certificate_dir

__all__ = [
    "ANY_ADDRESS",
    "HCM_FILTER",
    "LOOPBACK",
    "ROUTER_FILTER",
    "EnvoyRunner",
    "EnvoyUnavailable",
    "OncePerIntent",
    "disagreement",
    "gateway_bootstrap",
    "gateway_sources",
    "local_rate_limit",
    "origin_matchers",
    "run_through_envoy",
    "serialise",
    "serialised_sidecar",
    "sidecar_bootstrap",
    "sidecar_sources",
    "workload_certificate_dir",
]

# Real Envoy processes serve `meshc test --envoy` and the tests: a build or a check does not
# import them (their module pulls in subprocess and http servers).
_RUN = frozenset({"EnvoyRunner", "EnvoyUnavailable", "disagreement", "run_through_envoy"})


def __getattr__(name: str):
    if name in _RUN:
        from targets.envoylib import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
