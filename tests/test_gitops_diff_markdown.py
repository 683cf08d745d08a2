"""`meshc diff --format markdown`, read back by a real CommonMark + GFM-tables parser (markdown-it-py).

The comment's structure (headings, tables, links, the one Mermaid fence) must not depend on
what a pull request names: hostile file names and git refs change only the text of cells.
The Mermaid it carries is parsed by Mermaid itself in tests/test_browser_pages.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.generate import generate_mesh
from compiler.diff_markdown import DIAGRAM_INTENTS, DIAGRAM_WORKLOADS, INTENTS_LISTED, markdown_text, mermaid_label
from tests.conftest import EXAMPLES, require_module
from tests.gitops_support import GitMesh, git_mesh, meshc

HOSTILE_FILE = "```\n# H1 <img src=x onerror=alert(1)> | [a](javascript:x) @octocat $x$ ~~s~~ #1 \u2028 --> \"] *b* _i_.yaml"
HOSTILE_REF = "x`<b>|#1$@a&(y)\"{z}]"  # git refs may hold all of these


def parse(text: str):
    markdown_it = require_module("markdown_it")
    return markdown_it.MarkdownIt("commonmark").enable(["table", "strikethrough"]).parse(text)


def structure(text: str) -> list[tuple]:
    """Every block and inline token but the text: adjacent text runs count as one."""
    shape: list[tuple] = []
    for token in parse(text):
        shape.append((token.type, token.tag, token.nesting, token.info))
        previous = None
        for child in token.children or ():
            kind = "text" if child.type in ("text", "text_special") else child.type
            if kind == "text" and previous == "text":
                continue
            shape.append(("  " + kind, child.tag, child.nesting, child.attrGet("href") and "href"))
            previous = kind
    return shape


def markdown_diff(repo: GitMesh, base: str, head: str) -> str:
    result = meshc("diff", str(repo.root), "--base", base, "--head", head, "--format", "markdown",
                   "--link-base", "https://github.com/example/mesh")
    assert result.exit_code == 0, result.output
    return result.stdout


def renamed_route_change(tmp_path: Path, file_name: str, branch: str) -> tuple[GitMesh, str]:
    """A change that edits the canary Route and moves it to `file_name`; the base is `branch`."""
    repo = git_mesh(tmp_path / "repo")
    repo.git("branch", branch)
    (repo.root / "routes/reviews-canary.yaml").rename(repo.root / "routes" / file_name)
    repo.edit(f"routes/{file_name}", "exact: jason", "exact: bob")
    repo.commit("canary for bob")
    return repo, markdown_diff(repo, branch, "HEAD")


def test_the_comment_has_a_table_per_target_linked_intents_and_a_diagram(tmp_path: Path) -> None:
    repo = git_mesh(tmp_path / "repo")
    base = repo.git("rev-parse", "HEAD")
    repo.edit("routes/reviews-canary.yaml", "exact: jason", "exact: bob")
    head = repo.commit("canary for bob")
    text = markdown_diff(repo, base, head)
    tokens = parse(text)
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert headings == ["meshc diff", "Changed intents", "Blast radius"]
    assert [t.type for t in tokens].count("table_open") == 2
    assert not [t for t in tokens if t.type in ("html_block", "html_inline") and "meshc diff" not in t.content]
    [fence] = [t for t in tokens if t.type == "fence"]
    assert fence.info == "mermaid"
    links = [c.attrGet("href") for t in tokens for c in t.children or () if c.type == "link_open"]
    line = next(n for n, s in enumerate((repo.root / "routes/reviews-canary.yaml").read_text().splitlines(), 1)
                if s.startswith("name:"))
    assert links == [f"https://github.com/example/mesh/blob/{head}/mesh/routes/reviews-canary.yaml#L{line}"]
    rows = [r for r in text.splitlines() if r.startswith("| ")]
    assert "| envoy | 1 | 0 | 0 | 1 | +1 \u22121 |" in rows
    # the diagram: the Route, coloured as changed, reaches the two proxies whose artifacts changed
    assert 'i0["modified Route/bookinfo/reviews-canary"]:::changed' in fence.content
    assert 'w1["service:bookinfo/productpage"]:::changed' in fence.content
    assert "i0 --> w1" in fence.content and "i0 --> w2" in fence.content


def test_without_a_link_base_or_git_the_intents_are_not_linked(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("GITHUB_SERVER_URL", raising=False)
    monkeypatch.delenv("GITHUB_REPOSITORY", raising=False)
    repo = git_mesh(tmp_path / "repo")
    repo.edit("routes/reviews-canary.yaml", "exact: jason", "exact: bob")
    result = meshc("diff", str(repo.root), "--format", "markdown")
    assert result.exit_code == 0, result.output
    assert "| Route/bookinfo/reviews-canary (routes/reviews-canary.yaml:" in result.stdout
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.example")
    monkeypatch.setenv("GITHUB_REPOSITORY", "org/mesh")
    # a dirty working tree has no commit to link to
    assert "](https://" not in meshc("diff", str(repo.root), "--format", "markdown").stdout
    head = repo.commit("canary")
    linked = meshc("diff", str(repo.root), "--base", "HEAD~1", "--head", "HEAD", "--format", "markdown").stdout
    assert f"](https://github.example/org/mesh/blob/{head}/mesh/routes/reviews-canary.yaml#L" in linked


def test_a_link_base_that_is_not_a_plain_web_address_is_a_usage_error(tmp_path: Path) -> None:
    repo = git_mesh(tmp_path / "repo")
    result = meshc("diff", str(repo.root), "--format", "markdown", "--link-base", "javascript:alert(1)")
    assert result.exit_code == 2
    assert "--link-base" in result.output


def test_hostile_file_names_and_refs_change_no_structure(tmp_path: Path) -> None:
    _, benign = renamed_route_change(tmp_path / "benign", "renamed.yaml", "base-branch")
    _, hostile = renamed_route_change(tmp_path / "hostile", HOSTILE_FILE, HOSTILE_REF)
    assert structure(hostile) == structure(benign)
    tokens = parse(hostile)
    assert not any(t.type == "html_block" and "<img" in t.content for t in tokens)
    assert [t.info for t in tokens if t.type == "fence"] == ["mermaid"]
    inline = "".join(c.content for t in tokens for c in t.children or () if c.type in ("text", "text_special"))
    assert "<img src=x onerror=alert(1)>" in inline  # shown as text, not markup
    assert "@\u200boctocat" in inline  # no mention
    assert "\u2028" not in hostile and "\n# H1" not in hostile


@pytest.mark.parametrize("text", [HOSTILE_FILE, HOSTILE_REF, "a\r\nb\u202e", "\\", "|||", "<!--", "]]>"])
def test_escapers_leave_no_syntax(text: str) -> None:
    cell = markdown_text(text)
    assert "\n" not in cell and "\r" not in cell
    [paragraph] = [t for t in parse(f"x {cell}") if t.type == "inline"]
    assert {c.type for c in paragraph.children} <= {"text", "text_special"}
    label = mermaid_label(text)
    assert re.fullmatch(r"[A-Za-z0-9 /.:_#;-]*", label)
    assert re.sub(r"#\d+;", "", label).count("#") == 0


def test_a_huge_change_is_bounded_and_says_what_it_left_out(tmp_path: Path) -> None:
    repo = git_mesh(tmp_path / "repo", generate_mesh(tmp_path / "generated", 300))
    base = repo.git("rev-parse", "HEAD")
    for path in sorted((repo.root / "services").rglob("*.yaml")):
        path.write_text(path.read_text().replace("timeout: 10s", "timeout: 9s"))
    head = repo.commit("every timeout")
    text = markdown_diff(repo, base, head)
    assert len(text) < 65536  # GitHub's limit for a comment body
    listed = len(re.findall(r"^\| \[", text, re.M))
    assert 20 < listed <= INTENTS_LISTED
    assert f"{300 - listed} more changed intents are not listed here" in text
    assert f"<details><summary>{listed - 20} more changed intents</summary>" in text
    [fence] = [t for t in parse(text) if t.type == "fence"]
    intents = re.findall(r"^  i\d+\[", fence.content, re.M)
    workloads = re.findall(r"^  w\d+\[", fence.content, re.M)
    assert len(intents) == DIAGRAM_INTENTS
    assert 0 < len(workloads) <= DIAGRAM_WORKLOADS
    assert f"The diagram draws {DIAGRAM_INTENTS} of the 300 changed intents." in text
    assert "drawn one node per kind and namespace" in text


def test_no_change_says_so(tmp_path: Path) -> None:
    repo = git_mesh(tmp_path / "repo", EXAMPLES / "gateway-api-shop")
    text = markdown_diff(repo, "HEAD", "HEAD")
    assert text.endswith("No intent and no artifact changes.\n")
