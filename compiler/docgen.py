"""Write the generated documentation: `python -m compiler.docgen`.

docs/diagnostics.md is generated whole from the code table; in docs/policies.md the table
of checks, between two markers, is generated from the check registry. Neither is edited by
hand; tests keep the committed copies current.
"""

from __future__ import annotations

from pathlib import Path

from compiler.codes import CODES

DOCS = Path(__file__).resolve().parent.parent / "docs"
OUTPUT = DOCS / "diagnostics.md"
POLICIES = DOCS / "policies.md"
CHECKS_BEGIN = "<!-- checks: generated from policies/registry.py by `python -m compiler.docgen`; do not edit -->"
CHECKS_END = "<!-- end of checks -->"

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


def _code_list(codes: list[str]) -> str:
    """MESH301, MESH302 / MESH340-MESH343: runs of three or more consecutive codes as a range."""
    runs: list[list[str]] = []
    for code in sorted(codes):
        if runs and int(code[4:]) == int(runs[-1][-1][4:]) + 1:
            runs[-1].append(code)
        else:
            runs.append([code])
    return ", ".join(f"{run[0]}-{run[-1]}" if len(run) >= 3 else ", ".join(run) for run in runs)


def render_checks() -> str:
    """The table of checks: name, the kinds it reads, its codes, what it proves."""
    from policies.check import KINDS
    from policies.registry import CHECKS

    lines = [CHECKS_BEGIN, "", "| check | reads | codes | what it proves |", "| --- | --- | --- | --- |"]
    for check in CHECKS:
        reads = ", ".join(kind for kind in KINDS if kind in check.reads)
        lines.append(f"| {check.name} | {reads} | {_code_list([c.code for c in check.codes])} | {check.summary} |")
    return "\n".join([*lines, "", CHECKS_END])


def render_policies(page: str) -> str:
    """docs/policies.md with its table of checks regenerated."""
    begin, end = page.index(CHECKS_BEGIN), page.index(CHECKS_END) + len(CHECKS_END)
    return page[:begin] + render_checks() + page[end:]


def main() -> None:
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(render(), encoding="utf-8")
    POLICIES.write_text(render_policies(POLICIES.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote {OUTPUT} and the checks of {POLICIES}")


if __name__ == "__main__":
    main()
