"""End-user authentication on Envoy: the jwt_authn filter of a Service's inbound HTTP listeners
or a Gateway's HTTP connection managers, and the clusters its remote JWKS are fetched from.

The requirement is Istio's own translation of RequestAuthentication (pilot's
convertToEnvoyJwtConfig): one provider is `requires_any: [provider, allow_missing]`, several are
`requires_any: [P1, ..., Pn, requires_all: [any(P1, allow_missing), ...]]`, so a request without
a token goes on and one with an invalid token is answered 401 (Envoy: allow_missing "should only
allow requests without any JWT", a token of an unknown issuer included). The verified payload is
written to the filter's dynamic metadata under PAYLOAD_KEY, where RBAC reads principals and
claims.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from compiler.evaluate import token_locations
from compiler.model import JwtProvider
from targets.envoylib.blocks import JWT_AUTHN, cluster_discovery, socket_address, typed
from targets.envoylib.tls import SYSTEM_CA_BUNDLE, TLS_SOCKET, UPSTREAM_TLS

JWT_AUTHN_FILTER = "envoy.filters.http.jwt_authn"
PAYLOAD_KEY = "payload"
JWKS_FETCH_TIMEOUT = "5s"  # Istio's remote JWKS timeout
JWKS_CACHE = "300s"  # Istio's remote JWKS cache duration


def jwks_cluster_name(uri: str) -> str:
    parts = urlsplit(uri)
    return f"jwks|{parts.hostname}|{parts.port or (443 if parts.scheme == 'https' else 80)}"


def jwks_cluster(uri: str) -> dict:
    """A cluster to the JWKS server of `uri`, found by DNS; TLS for https, checking the host."""
    parts = urlsplit(uri)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    name = jwks_cluster_name(uri)
    cluster: dict = {"name": name, **cluster_discovery(True), "connect_timeout": JWKS_FETCH_TIMEOUT,
                     "load_assignment": {"cluster_name": name,
                                         "endpoints": [{"lb_endpoints": [{"endpoint": {
                                             "address": socket_address(host, port)}}]}]}}
    if parts.scheme == "https":
        cluster["transport_socket"] = {"name": TLS_SOCKET, "typed_config": {
            "@type": UPSTREAM_TLS, "sni": host,
            "common_tls_context": {"validation_context": {
                "trusted_ca": {"filename": SYSTEM_CA_BUNDLE},
                "match_typed_subject_alt_names": [{"san_type": "DNS", "matcher": {"exact": host}}]}}}}
    return cluster


def provider_config(provider: JwtProvider) -> dict:
    config: dict = {"issuer": provider.issuer}
    if provider.audiences:
        config["audiences"] = list(provider.audiences)
    if provider.jwks.inline is not None:
        config["local_jwks"] = {"inline_string": provider.jwks.inline}
    else:
        assert provider.jwks.uri is not None  # Jwks takes exactly one of uri and inline
        config["remote_jwks"] = {"http_uri": {"uri": provider.jwks.uri, "cluster": jwks_cluster_name(provider.jwks.uri),
                                              "timeout": JWKS_FETCH_TIMEOUT},
                                 "cache_duration": JWKS_CACHE}
    locations = token_locations(provider)
    # written out even where they are Envoy's defaults, so the output says where tokens are read
    config["from_headers"] = [{"name": name, "value_prefix": prefix} for kind, name, prefix in locations
                              if kind == "header"]
    config["from_params"] = [name for kind, name, _ in locations if kind == "param"]
    if provider.forward:
        config["forward"] = True
    config["payload_in_metadata"] = PAYLOAD_KEY
    return config


def requirement(names: list[str]) -> dict:
    """Istio's requirement: any one provider's valid token, or none at all."""
    allow_missing: dict = {"allow_missing": {}}
    if len(names) == 1:
        return {"requires_any": {"requirements": [{"provider_name": names[0]}, allow_missing]}}
    each_or_none = [{"requires_any": {"requirements": [{"provider_name": name}, allow_missing]}} for name in names]
    return {"requires_any": {"requirements": [*({"provider_name": name} for name in names),
                                              {"requires_all": {"requirements": each_or_none}}]}}


def jwt_authn_filter(providers: list[JwtProvider]) -> dict:
    names = [provider.name for provider in providers]
    return typed(JWT_AUTHN_FILTER, JWT_AUTHN,
                 providers={provider.name: provider_config(provider) for provider in providers},
                 rules=[{"match": {"prefix": "/"}, "requires": requirement(names)}],
                 bypass_cors_preflight=True)


def jwks_clusters(providers: list[JwtProvider]) -> list[dict]:
    return [jwks_cluster(p.jwks.uri) for p in providers if p.jwks.uri is not None]
