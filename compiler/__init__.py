"""meshc: a declarative GitOps compiler for service meshes."""

__version__ = "0.1.0"
# Where `meshc build` writes when not told (relative to the mesh root); never read as intents.
DEFAULT_OUTPUT = "build"
# The record of a build in its output directory; a directory holding one is never read as intents.
MANIFEST = "manifest.json"


def version_line() -> str:
    """`0.1.0`, with the git revision of the source tree meshc runs from when it is a git
    checkout (a source install: `pip install -e .` or `git+https://...@REV`), so a bug report
    names the exact code."""
    import subprocess
    from pathlib import Path

    source = Path(__file__).resolve().parent.parent
    if not (source / ".git").exists():
        return __version__
    try:
        done = subprocess.run(["git", "-C", str(source), "describe", "--always", "--dirty", "--abbrev=12"],
                              capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return __version__
    revision = done.stdout.strip()
    return f"{__version__} (git {revision})" if done.returncode == 0 and revision else __version__
