"""Prove Envoy bootstraps with the real binary: `envoy --mode validate`, several at a time.

Files-mode certificates must exist for Envoy to load a bootstrap, so `write_certificates` writes
a test CA (tests/pki.py) and a workload certificate to every path under a certificate directory.
"""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from targets.vm import certificate_files
from tests.conftest import require_envoy
from tests.pki import TestPki

WORKERS = 3


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


def write_certificates(bootstraps: dict[str, bytes], certificate_dir: Path) -> int:
    """Create every certificate file the bootstraps name below `certificate_dir`; returns how many."""
    pki = TestPki()
    svid = pki.svid("spiffe://test/workload")
    pem = {"bundle": pki.ca_pem, "key": svid.key_pem, "certificate": svid.cert_pem}
    names = {name for content in bootstraps.values() for name in certificate_files(content)}
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
