"""What `meshc check` imports (issue 14, docs/performance.md): jinja2 renders the line-oriented
artifacts of VMs and Cloud Foundry apps only, so a mesh with neither does not import it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _modules_after_check(root: Path) -> set[str]:
    code = ("import sys\nfrom compiler.cli import main\n"
            f"try:\n    main(['check', {str(root)!r}, '--no-cache', '-q'])\n"
            "finally:\n    print(' '.join(sorted(sys.modules)))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def test_a_kubernetes_only_mesh_is_checked_without_jinja2() -> None:
    modules = _modules_after_check(REPO / "examples" / "bookinfo-cluster")
    assert "targets.vm" in modules and "targets.cloudfoundry" in modules  # every target ran
    assert "jinja2" not in modules


def test_a_mesh_with_vms_renders_with_jinja2() -> None:
    assert "jinja2" in _modules_after_check(REPO / "examples" / "bookinfo")
