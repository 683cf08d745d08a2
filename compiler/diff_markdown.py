"""`meshc diff --format markdown`: the pull-request comment the GitHub Action posts.

One summary table per target, the changed intents linked to their lines, and a Mermaid
flowchart of the change's blast radius (changed intents -> the workloads they reach), bounded
in size for huge changes. Every name a pull request controls (file names, git refs, intent
names) reaches the Markdown through `markdown_text` and the Mermaid through `mermaid_label`,
so no value can open a fence, a heading, a table cell, an HTML tag or a Mermaid statement.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from urllib.parse import quote

from compiler.artifact import PROXY_KINDS, parse_workload
from compiler.diff import FileChange, IntentChange, MeshDiff

# Sizes that keep a comment readable and far below GitHub's 65,536-character limit.
INTENTS_SHOWN = 20  # rows of the intents table shown open; the rest are folded
INTENTS_LISTED = 200  # rows listed at all; past this the comment says how many it left out
INTENTS_BUDGET = 40_000  # characters of intent rows; past this too
REACHES_SHOWN = 8  # workloads named per intent row
DIAGRAM_INTENTS = 15  # intent nodes drawn
DIAGRAM_WORKLOADS = 30  # workload nodes drawn before workloads are drawn one node per namespace

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
# Everything that can start or end Markdown syntax in the middle of a line (emphasis, code,
# links, images, HTML, entities, tables, strikethrough, GitHub's math); `/:.,-` stay readable.
_MARKDOWN_SYNTAX = re.compile(r"""([\\`*_{}\[\]()#+!|<>&~^$])""")


def markdown_text(text: str) -> str:
    """`text` as literal inline Markdown in the middle of a line (never at its start): syntax
    characters backslash-escaped (`\\|` also holds in a GFM table cell), control and invisible
    formatting characters replaced by U+FFFD so nothing can end the line, and `@` followed by a
    zero-width space so a name cannot mention (notify) a GitHub user (`#` likewise, so it
    cannot reference an issue)."""
    escaped = _MARKDOWN_SYNTAX.sub(r"\\\1", _CONTROL.sub("\ufffd", text))
    return escaped.replace("@", "@\u200b").replace("\\#", "\\#\u200b")


def mermaid_label(text: str) -> str:
    """`text` inside a quoted Mermaid label: everything but letters, digits, space and `/.:-_`
    written as a Mermaid entity code (`#60;`), so no quote, bracket, backtick, markdown string,
    HTML tag or line break survives."""
    return "".join(c if c.isascii() and (c.isalnum() or c in " /.:-_") else f"#{ord(c)};"
                   for c in _CONTROL.sub("\ufffd", text))


@dataclass(frozen=True)
class Links:
    """Web addresses of intent lines: BASE/blob/COMMIT/PREFIX/FILE#LLINE (GitHub's layout)."""

    base: str  # the repository's web address, e.g. https://github.com/OWNER/REPO
    prefix: str  # the mesh root relative to the repository top ("" at the top)

    def line(self, commit: str, file: str, line: int) -> str:
        path = f"{self.prefix}/{file}" if self.prefix else file
        return f"{self.base.rstrip('/')}/blob/{quote(commit, safe='')}/{quote(path, safe='/')}#L{line}"


def _status_counts(changes: list[FileChange]) -> dict[str, int]:
    return {s: sum(1 for c in changes if c.status == s) for s in ("added", "removed", "changed")}


def _target_table(diff: MeshDiff) -> list[str]:
    rows = ["| target | workloads | files added | files removed | files changed | lines |",
            "| --- | ---: | ---: | ---: | ---: | --- |"]
    for target, workloads in sorted(diff.by_target().items()):
        changes = [c for files in workloads.values() for c in files]
        counts = _status_counts(changes)
        plus = sum(c.counts()[0] for c in changes)
        minus = sum(c.counts()[1] for c in changes)
        rows.append(f"| {markdown_text(target)} | {len(workloads)} | {counts['added']} | {counts['removed']} "
                    f"| {counts['changed']} | +{plus} \u2212{minus} |")
    return rows


def _intent_link(diff: MeshDiff, change: IntentChange, links: Links | None) -> str:
    label = markdown_text(str(change.ref))
    where = markdown_text(f"{change.location.file}:{change.location.line}")
    revision = diff.base if change.status == "removed" else diff.head
    if links is None or revision.commit is None or revision.dirty:
        return f"{label} ({where})"
    return f"[{label}]({links.line(revision.commit, change.location.file, change.location.line)}) ({where})"


def _reach_cell(change: IntentChange) -> str:
    if change.everything:
        return "every workload (the Mesh changed)"
    if not change.reaches:
        return "no workload"
    shown = ", ".join(markdown_text(w) for w in change.reaches[:REACHES_SHOWN])
    more = len(change.reaches) - REACHES_SHOWN
    return f"{len(change.reaches)}: {shown}" + (f" and {more} more" if more > 0 else "")


def _intents_section(diff: MeshDiff, links: Links | None) -> list[str]:
    """The intents table: INTENTS_SHOWN rows open, then folded rows while they fit in
    INTENTS_BUDGET characters (a file name can be long), then a count of the rest."""
    header = ["| intent | change | reaches |", "| --- | --- | --- |"]
    rows: list[str] = []
    size = 0
    for change in diff.intents[:INTENTS_LISTED]:
        row = f"| {_intent_link(diff, change, links)} | {change.status} | {_reach_cell(change)} |"
        size += len(row) + 1
        if size > INTENTS_BUDGET:
            break
        rows.append(row)
    out = ["#### Changed intents", "", *header, *rows[:INTENTS_SHOWN]]
    folded = rows[INTENTS_SHOWN:]
    if folded:
        out += ["", f"<details><summary>{len(folded)} more changed intents</summary>", "",
                *header, *folded, "", "</details>"]
    left_out = len(diff.intents) - len(rows)
    if left_out > 0:
        out += ["", f"{left_out} more changed intents are not listed here: `meshc diff --stat` lists them all."]
    return out


def _workload_status(diff: MeshDiff) -> dict[str, str]:
    """added / removed / changed per workload whose artifacts changed (any target)."""
    statuses: dict[str, set[str]] = defaultdict(set)
    for change in diff.files:
        statuses[change.workload].add(change.status)
    return {w: (s.pop() if len(s) == 1 else "changed") for w, s in statuses.items()}


_INTENT_CLASS = {"added": "added", "removed": "removed", "modified": "changed", "moved": "moved"}
_CLASS_DEFS = (
    "  classDef added fill:#dafbe1,stroke:#1a7f37,color:#0b3d1a",
    "  classDef removed fill:#ffebe9,stroke:#cf222e,color:#5c0a0f",
    "  classDef changed fill:#fff8c5,stroke:#9a6700,color:#3b2800",
    "  classDef moved fill:#f6f8fa,stroke:#8c959f,color:#24292f",
    "  classDef reached fill:#ddf4ff,stroke:#0969da,color:#0a3069",
)


def _namespace_group(workload: str) -> str:
    """A proxy's group is its kind and namespace (`service:ns3`); a platform is its own group."""
    kind, name = parse_workload(workload)
    return f"{kind}:{name.partition('/')[0]}" if kind in PROXY_KINDS else workload


def blast_radius(diff: MeshDiff) -> tuple[list[str], list[str]]:
    """The Mermaid flowchart lines and the notes on what it leaves out or groups."""
    notes: list[str] = []
    intents = diff.intents[:DIAGRAM_INTENTS]
    if len(diff.intents) > DIAGRAM_INTENTS:
        notes.append(f"The diagram draws {DIAGRAM_INTENTS} of the {len(diff.intents)} changed intents.")
    reached = sorted({w for c in intents for w in c.reaches})
    status = _workload_status(diff)
    grouped = len(reached) > DIAGRAM_WORKLOADS
    if grouped:
        notes.append(f"The {len(reached)} workloads reached are drawn one node per kind and namespace.")

    def node_of(workload: str) -> str:
        return _namespace_group(workload) if grouped else workload

    members: dict[str, list[str]] = defaultdict(list)
    for workload in reached:
        members[node_of(workload)].append(workload)
    ids = {name: f"w{i}" for i, name in enumerate(sorted(members))}
    lines = ["flowchart LR"]
    if any(c.everything for c in intents):
        lines.append('  everything(["every workload"]):::reached')
    for index, change in enumerate(intents):
        lines.append(f'  i{index}["{mermaid_label(f"{change.status} {change.ref}")}"]:::{_INTENT_CLASS[change.status]}')
    for name, workloads in sorted(members.items()):
        statuses = {status.get(w, "reached") for w in workloads}
        css = statuses.pop() if len(statuses) == 1 else "changed"
        label = f"{name} ({len(workloads)})" if name not in workloads else name
        lines.append(f'  {ids[name]}["{mermaid_label(label)}"]:::{css}')
    for index, change in enumerate(intents):
        if change.everything:
            lines.append(f"  i{index} --> everything")
        for name in sorted({node_of(w) for w in change.reaches}):
            lines.append(f"  i{index} --> {ids[name]}")
    lines.extend(_CLASS_DEFS)
    return lines, notes


PATCHED_LISTED = 50  # patched artifacts listed; past this the comment says how many it left out


def _patched_section(diff: MeshDiff) -> list[str]:
    """Every artifact of the head a Patch edits, changed by this diff or not: a patch is never
    invisible in review (docs/cli.md)."""
    if not diff.patched:
        return []
    rows = [f"| {markdown_text(a.path)} | {markdown_text(a.workload)} | "
            f"{', '.join(markdown_text(name) for name in a.patches)} |" for a in diff.patched[:PATCHED_LISTED]]
    out = ["", "#### Patched artifacts", "",
           (f"{len(diff.patched)} artifact{'s' if len(diff.patched) != 1 else ''} of the head "
            f"{'are' if len(diff.patched) != 1 else 'is'} edited by Patches, outside the semantics."), "",
           "| artifact | workload | Patches |", "| --- | --- | --- |", *rows]
    if len(diff.patched) > PATCHED_LISTED:
        out += ["", f"{len(diff.patched) - PATCHED_LISTED} more are not listed here: `meshc diff` lists them all."]
    return out


def render_markdown(diff: MeshDiff, links: Links | None = None) -> str:
    base, head = markdown_text(diff.side(0)), markdown_text(diff.side(1))
    out = ["<!-- meshc diff -->", "### meshc diff", "", f"Compares {base} \u2192 {head}.", ""]
    if not diff.files and not diff.intents:
        out.append("No intent and no artifact changes.")
        out += _patched_section(diff)
        return "\n".join(out) + "\n"
    proxies = {w for c in diff.intents for w in c.proxies}
    everything = any(c.everything for c in diff.intents)
    reach = "every workload" if everything else f"{len(proxies)} prox{'y' if len(proxies) == 1 else 'ies'}"
    workloads = {c.workload for c in diff.files}
    out.append(f"**{len(diff.intents)}** changed intent{'s' if len(diff.intents) != 1 else ''} reaching "
               f"{reach}; **{len(diff.files)}** artifact file{'s' if len(diff.files) != 1 else ''} changed "
               f"in {len(workloads)} workload{'s' if len(workloads) != 1 else ''}.")
    out.append("")
    out += _target_table(diff) if diff.files else ["No artifact changes."]
    if diff.intents:
        lines, notes = blast_radius(diff)
        out += ["", *_intents_section(diff, links), "", "#### Blast radius", "", "```mermaid", *lines, "```"]
        if notes:
            out += ["", " ".join(notes)]
    out += _patched_section(diff)
    return "\n".join(out) + "\n"
