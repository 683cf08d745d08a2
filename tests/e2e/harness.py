"""What the end-to-end tests run real Envoy processes with: loopback addresses and ports, a test
PKI (CA, SPIFFE SVIDs, server certificates), small backend servers, and Envoy process handling
(readiness through the admin endpoint, logs, always-killed process groups).
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import os
import random
import signal
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from compiler.serialize import to_yaml
from tests.pki import Issued

READY_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0

# ---------------------------------------------------------------------------------------------
# Addresses and ports


class LoopbackAddresses:
    """One 127.a.b.x address per workload; a and b are random so repeated or parallel runs of
    the suite do not meet on the same address (Linux routes all of 127.0.0.0/8 to lo)."""

    def __init__(self) -> None:
        self.prefix = f"127.{random.randrange(100, 250)}.{random.randrange(1, 250)}"
        self._hosts = itertools.count(11)

    def next(self) -> str:
        host = next(self._hosts)
        if host > 254:
            raise RuntimeError(f"no more workload addresses under {self.prefix}.0/24")
        return f"{self.prefix}.{host}"


# Below Linux's default ephemeral range (32768-60999): a port chosen here is not also handed out
# as the source port of some outgoing connection between our check and Envoy's bind.
PORT_RANGE = (20000, 32767)
_port_choice = random.Random()


def free_ports(count: int, address: str = "127.0.0.1") -> list[int]:
    """`count` distinct random ports in PORT_RANGE that are free on address right now."""
    chosen: list[int] = []
    for _ in range(count * 50):
        if len(chosen) == count:
            break
        port = _port_choice.randint(*PORT_RANGE)
        if port in chosen:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((address, port))
            except OSError:
                continue
        chosen.append(port)
    if len(chosen) != count:
        raise RuntimeError(f"found only {len(chosen)} of {count} free ports on {address}")
    return chosen


def free_port(address: str = "127.0.0.1") -> int:
    return free_ports(1, address)[0]


def write_private(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    path.chmod(0o600)


# ---------------------------------------------------------------------------------------------
# Backends


class _Behaviour:
    """Per-path behaviour selected by the request path, so tests sharing a backend stay
    independent: /fail-once/<token> answers 503 to the first request for <token> and 200 after;
    /delay/<ms> answers after waiting; every other path answers 200 at once. A failing backend
    (Backend.failing) answers 503 to everything."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self.stopping = threading.Event()
        self.failing = False

    def count(self, path: str) -> int:
        with self.lock:
            self.counts[path] = self.counts.get(path, 0) + 1
            return self.counts[path]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Envoy's upstream connection pools expect
    # Headers and body are two writes: with Nagle, the body waits ~40ms for the delayed ACK.
    disable_nagle_algorithm = True
    server: _BackendServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Quiet: the tests assert on responses, not on access logs."""

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        behaviour = self.server.behaviour
        seen = behaviour.count(self.path)
        status = 200
        if behaviour.failing or (self.path.startswith("/fail-once/") and seen == 1):
            status = 503
        elif self.path.startswith("/delay/"):
            behaviour.stopping.wait(int(self.path.split("/")[2]) / 1000)
        body = json.dumps({
            "backend": self.server.identity,
            "method": self.command,
            "path": self.path,
            "attempt": seen,
            "headers": {name.lower(): value for name, value in self.headers.items()},
        }).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.send_header("x-backend", self.server.identity)
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _answer


class _BackendServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], identity: str, tls: ssl.SSLContext | None) -> None:
        super().__init__(address, _Handler)
        self.identity = identity
        self.behaviour = _Behaviour()
        if tls is not None:
            # Handshake in the handler thread (on first read), not in the accept loop.
            self.socket = tls.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)


@dataclass
class Backend:
    """A small HTTP(S) server that answers with its identity and counts requests per path."""

    identity: str
    address: str
    port: int
    server: _BackendServer = field(repr=False)
    thread: threading.Thread = field(repr=False)

    @classmethod
    def start(cls, identity: str, address: str = "127.0.0.1", port: int = 0,
              tls: ssl.SSLContext | None = None) -> Backend:
        server = _BackendServer((address, port), identity, tls)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                  name=f"backend-{identity}", daemon=True)
        thread.start()
        return cls(identity, address, server.server_address[1], server, thread)

    def requests(self, path: str) -> int:
        with self.server.behaviour.lock:
            return self.server.behaviour.counts.get(path, 0)

    def failing(self, failing: bool) -> None:
        """Answer 503 to every request from now on (True), or serve again (False)."""
        self.server.behaviour.failing = failing

    def stop(self) -> None:
        self.server.behaviour.stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(STOP_TIMEOUT)


def tls_server_context(issued: Issued, directory: Path, name: str) -> ssl.SSLContext:
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    cert.write_bytes(issued.cert_pem)
    write_private(key, issued.key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


# ---------------------------------------------------------------------------------------------
# Clients


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def backend(self) -> str | None:
        return self.headers.get("x-backend")


def http_get(address: str, port: int, path: str, host: str, headers: dict[str, str] | None = None,
             connection: http.client.HTTPConnection | None = None, timeout: float = 10.0) -> Reply:
    """One GET with the Host header an application would send to its sidecar."""
    own = connection is None
    conn = connection or http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"host": host, **(headers or {})})
        response = conn.getresponse()
        body = response.read()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, body)
    finally:
        if own:
            conn.close()


# ---------------------------------------------------------------------------------------------
# Envoy


_instance_numbers = itertools.count()


class EnvoyFailed(RuntimeError):
    """Envoy exited or never became ready; the message carries its log."""


@dataclass
class EnvoyProcess:
    name: str
    config_path: Path
    log_path: Path
    admin_port: int
    process: subprocess.Popen = field(repr=False)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def admin(self, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=timeout)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def stats(self, prefix: str) -> dict[str, int]:
        """Counters and gauges whose name starts with prefix."""
        _, body = self.admin(f"/stats?format=json&filter=^{prefix}")
        return {entry["name"]: entry["value"] for entry in json.loads(body)["stats"] if "value" in entry}

    def wait_ready(self, listener_addresses: set[str] = frozenset(), timeout: float = READY_TIMEOUT) -> None:
        """Until the admin endpoint says LIVE and every expected listener address is bound."""
        deadline = time.monotonic() + timeout
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EnvoyFailed(f"envoy {self.name} exited with {self.process.returncode}:\n{self.log()}")
            try:
                status, body = self.admin("/ready", timeout=0.5)
                if status == 200 and body.strip() == b"LIVE":
                    bound = self.bound_listeners()
                    if listener_addresses <= bound:
                        return
                    last_error = f"listeners bound so far: {sorted(bound)}"
                else:
                    last_error = f"/ready answered {status} {body!r}"
            except OSError as error:
                last_error = repr(error)
            time.sleep(0.02)  # poll interval of the readiness loop, not a wait for readiness
        raise EnvoyFailed(f"envoy {self.name} not ready after {timeout}s ({last_error}):\n{self.log()}")

    def bound_listeners(self) -> set[str]:
        """`address:port` of every active listener, as the admin endpoint reports them."""
        _, body = self.admin("/listeners?format=json")
        bound = set()
        for status in json.loads(body).get("listener_statuses", []):
            socket_address = status.get("local_address", {}).get("socket_address", {})
            if socket_address:
                bound.add(f"{socket_address['address']}:{socket_address.get('port_value', 0)}")
        return bound

    def stop(self) -> None:
        if self.process.poll() is None:
            _signal_group(self.process, signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                _signal_group(self.process, signal.SIGKILL)
                self.process.wait(STOP_TIMEOUT)


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)  # the group this process leads (start_new_session)


def configured_listeners(config: dict) -> set[str]:
    """`address:port` of every static listener of a bootstrap."""
    bound = set()
    for listener in config.get("static_resources", {}).get("listeners", []):
        socket_address = listener["address"]["socket_address"]
        bound.add(f"{socket_address['address']}:{socket_address['port_value']}")
    return bound


RUNNING: list[EnvoyProcess] = []  # every Envoy started and not yet stopped, for failure logs


def start_envoy(binary: str, name: str, config: dict, workdir: Path, admin_port: int) -> EnvoyProcess:
    """Write config with compiler.serialize and start `envoy -c` on it in its own process group."""
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / f"{name}.yaml"
    config_path.write_bytes(to_yaml(config))
    log_path = workdir / f"{name}.log"
    # Unique among concurrent runs: pids are unique, and one run starts far fewer than 64 envoys.
    base_id = (os.getpid() % 100_000) * 64 + next(_instance_numbers) % 64
    with open(log_path, "ab") as output:
        process = subprocess.Popen(
            [binary, "-c", str(config_path), "--log-level", "warn", "--base-id", str(base_id),
             "--log-path", str(log_path), "--concurrency", "1"],
            stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )
    envoy = EnvoyProcess(name, config_path, log_path, admin_port, process)
    RUNNING.append(envoy)
    return envoy


def stop_envoy(envoy: EnvoyProcess) -> None:
    envoy.stop()
    if envoy in RUNNING:
        RUNNING.remove(envoy)


# ---------------------------------------------------------------------------------------------
# Meshes


def write_intents(root: Path, documents: list[dict]) -> Path:
    """Write intents as a mesh repo: mesh.yaml, and one file per other document by kind."""
    for document in documents:
        kind = document["kind"]
        relative = "mesh.yaml" if kind == "Mesh" else f"{kind.lower()}s/{document['name']}.yaml"
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(to_yaml(document))
    return root
