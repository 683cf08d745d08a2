"""Certificates for one Envoy: SDS from a SPIRE-agent-style socket, or files on disk.

Never key material in the configuration: SDS names a secret the agent serves, files mode names
paths (docs/targets/envoy.md lists them). SDS secret names are SPIRE's defaults: `default` is the
workload's X.509 SVID, `ROOTCA` the trust bundle.
"""

from __future__ import annotations

from compiler.graph import Key
from compiler.model import FileCertificates, ListenerTls, SdsCertificates
from targets.envoylib.blocks import http2_options

SDS_CLUSTER = "sds-grpc"
SVID_SECRET = "default"
BUNDLE_SECRET = "ROOTCA"
# TLS origination to external services checks their certificate against the system roots.
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
TLS_SOCKET = "envoy.transport_sockets.tls"
DOWNSTREAM_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
UPSTREAM_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
# Listener minVersion to Envoy's TlsParameters.TlsProtocol.
TLS_VERSIONS = {"1.2": "TLSv1_2", "1.3": "TLSv1_3"}


def workload_certificate_dir(settings: FileCertificates, identity: Key) -> str:
    """Where files mode keeps the certificates of one workload (`<dir>/<namespace>/<name>`)."""
    return f"{settings.dir}/{identity.namespace}/{identity.name}"


class Certificates:
    """TLS contexts of one workload (a sidecar's service or a gateway), per its platform setting."""

    def __init__(self, settings: SdsCertificates | FileCertificates, identity: Key) -> None:
        self.settings = settings
        self.identity = identity
        self.uses_sds = False

    def sds_secret(self, name: str) -> dict:
        self.uses_sds = True
        return {"name": name, "sds_config": {
            "resource_api_version": "V3",
            "api_config_source": {
                "api_type": "GRPC",
                "transport_api_version": "V3",
                "grpc_services": [{"envoy_grpc": {"cluster_name": SDS_CLUSTER}}],
            },
        }}

    def own_certificate(self, certificate: str | None = None) -> dict:
        """The workload's SVID, or a named (gateway) certificate."""
        settings = self.settings
        if settings.mode == "sds":
            return {"tls_certificate_sds_secret_configs": [self.sds_secret(certificate or SVID_SECRET)]}
        stem = f"{workload_certificate_dir(settings, self.identity)}/{certificate or 'svid'}"
        return {"tls_certificates": [{
            "certificate_chain": {"filename": f"{stem}.pem"},
            "private_key": {"filename": f"{stem}_key.pem"},
        }]}

    def mesh_validation(self, peer: str | None = None) -> dict:
        """Trust the mesh bundle; with `peer`, accept only that SPIFFE ID."""
        check = {}
        if peer is not None:
            check = {"match_typed_subject_alt_names": [{"san_type": "URI", "matcher": {"exact": peer}}]}
        settings = self.settings
        if settings.mode == "sds":
            return {"combined_validation_context": {
                "default_validation_context": check,
                "validation_context_sds_secret_config": self.sds_secret(BUNDLE_SECRET),
            }}
        bundle = f"{workload_certificate_dir(settings, self.identity)}/svid_bundle.pem"
        return {"validation_context": {"trusted_ca": {"filename": bundle}, **check}}

    def downstream(self) -> dict:
        """mTLS for an inbound listener: the SVID, and a client certificate from the mesh required."""
        return {"name": TLS_SOCKET, "typed_config": {
            "@type": DOWNSTREAM_TLS,
            "require_client_certificate": True,
            "common_tls_context": {**self.own_certificate(), **self.mesh_validation()},
        }}

    def terminate(self, tls: ListenerTls) -> dict:
        """TLS termination on a gateway listener with the named certificate (the SVID without one,
        which MESH353 reports as an error); with `clientValidation`, a client certificate that
        chains to the named CA bundle is required (docs/intents.md, Gateway)."""
        context: dict = self.own_certificate(tls.certificate)
        config: dict = {"@type": DOWNSTREAM_TLS}
        if tls.clientValidation is not None:
            config["require_client_certificate"] = True
            context.update(self.client_ca(tls.clientValidation.ca))
        params: dict = {}
        if tls.minVersion is not None:
            params["tls_minimum_protocol_version"] = TLS_VERSIONS[tls.minVersion]
        if tls.cipherSuites:
            params["cipher_suites"] = list(tls.cipherSuites)
        if params:
            context["tls_params"] = params
        config["common_tls_context"] = context
        return {"name": TLS_SOCKET, "typed_config": config}

    def client_ca(self, ca: str) -> dict:
        """The validation context of a gateway's client certificates: the named CA bundle (an SDS
        secret, or `<ca>.pem` beside the workload's certificates)."""
        if self.settings.mode == "sds":
            return {"validation_context_sds_secret_config": self.sds_secret(ca)}
        directory = workload_certificate_dir(self.settings, self.identity)
        return {"validation_context": {"trusted_ca": {"filename": f"{directory}/{ca}.pem"}}}

    def upstream(self, peer: str, sni: str | None = None) -> dict:
        """mTLS to a mesh callee: present the SVID, accept only the callee's SPIFFE ID; `sni`
        for a callee reached through an east-west gateway, which forwards by it."""
        config: dict = {"@type": UPSTREAM_TLS}
        if sni is not None:
            config["sni"] = sni
        config["common_tls_context"] = {**self.own_certificate(), **self.mesh_validation(peer)}
        return {"name": TLS_SOCKET, "typed_config": config}

    def originate(self, sni: str) -> dict:
        """TLS to an external service on behalf of a plain-text caller, checking its host name."""
        return {"name": TLS_SOCKET, "typed_config": {
            "@type": UPSTREAM_TLS,
            "sni": sni,
            "common_tls_context": {"validation_context": {
                "trusted_ca": {"filename": SYSTEM_CA_BUNDLE},
                "match_typed_subject_alt_names": [{"san_type": "DNS", "matcher": {"exact": sni}}],
            }},
        }}

    def clusters(self) -> list[dict]:
        """The SDS agent's cluster, when anything asked for an SDS secret."""
        settings = self.settings
        if not self.uses_sds or settings.mode != "sds":  # only an SDS platform asks for SDS secrets
            return []
        return [{
            "name": SDS_CLUSTER,
            "type": "STATIC",
            "typed_extension_protocol_options": http2_options(),
            "load_assignment": {"cluster_name": SDS_CLUSTER, "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": {"pipe": {"path": settings.sdsSocket}}}},
            ]}]},
        }]
