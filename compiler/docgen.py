"""Write docs/diagnostics.md from the code table: `python -m compiler.docgen`.

The page is generated, never edited by hand; a test keeps the committed copy current.
"""

from __future__ import annotations

from pathlib import Path

from compiler.codes import CODES

OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "diagnostics.md"

RANGES = (
    ("MESH0", "Loading and YAML (0xx)"),
    ("MESH1", "Schema (1xx)"),
    ("MESH2", "References and linking (2xx)"),
    ("MESH3", "Semantic analysis and Policies (3xx)"),
    ("MESH4", "Target-specific (4xx)"),
    ("MESH5", "Route tests (5xx)"),
)


def render() -> str:
    lines = [
        "# Diagnostic codes",
        "",
        "<!-- Generated from compiler/codes.py by `python -m compiler.docgen`; do not edit. -->",
        "",
        "Every diagnostic meshc reports has a stable code. `meshc explain CODE` prints one entry.",
        "The severity is the default; Policies set their own, and `--fail-on` chooses which",
        "severity fails a command. Semantic-analysis codes (3xx) can be suppressed, see",
        "docs/policies.md.",
        "",
    ]
    for prefix, title in RANGES:
        entries = [CODES[c] for c in sorted(CODES) if c.startswith(prefix)]
        if not entries:
            continue
        lines += [f"## {title}", "", "| code | name | severity | summary |", "| --- | --- | --- | --- |"]
        lines += [f"| [{e.code}](#{e.code.lower()}) | {e.name} | {e.severity} | {e.summary} |" for e in entries]
        lines.append("")
        for entry in entries:
            lines += [f"### {entry.code}", "", f"**{entry.name}**, {entry.severity} by default. {entry.summary}",
                      "", entry.explanation, ""]
    return "\n".join(lines)


def main() -> None:
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
