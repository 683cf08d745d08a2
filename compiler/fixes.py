"""`meshc check --fix`: apply the mechanical fixes that diagnostics carry, in place.

A fix renames one key where it stands (text spliced at the key's line and column), so the
rest of the file, comments and layout included, is untouched.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from compiler.diagnostics import Diagnostic, Rename


def replace_file(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file and a rename: never a half-written file."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
        os.chmod(temporary, path.stat().st_mode & 0o7777)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _offset(text: str, line: int, column: int) -> int:
    lines = text.splitlines(keepends=True)
    return sum(len(lines[i]) for i in range(line - 1)) + column - 1


def _splice(text: str, rename: Rename) -> str | None:
    """`text` with the key renamed, or None when the key is not where the diagnostic says."""
    start = _offset(text, rename.location.line, rename.location.column)
    for quote in ("", '"', "'"):
        written = f"{quote}{rename.old}{quote}"
        if text.startswith(written, start):
            return text[:start] + f"{quote}{rename.new}{quote}" + text[start + len(written):]
    return None


def apply_fixes(root: Path, diagnostics: list[Diagnostic]) -> list[tuple[Rename, bool]]:
    """Apply every fix; per fix, whether it was applied. Files are rewritten once each."""
    by_file: dict[str, list[Rename]] = {}
    for diagnostic in diagnostics:
        if diagnostic.fix is not None:
            by_file.setdefault(diagnostic.fix.location.file, []).append(diagnostic.fix)
    results: list[tuple[Rename, bool]] = []
    for file, renames in sorted(by_file.items()):
        path = root / file
        raw = path.read_bytes().decode("utf-8")
        bom = "\ufeff" if raw.startswith("\ufeff") else ""
        text = raw[len(bom):]
        # from the end backwards, so earlier positions stay valid
        for rename in sorted(set(renames), key=lambda r: (r.location.line, r.location.column), reverse=True):
            spliced = _splice(text, rename)
            results.append((rename, spliced is not None))
            text = spliced if spliced is not None else text
        replace_file(path, bom + text)
    return sorted(results, key=lambda r: (r[0].location, r[0].old))
