"""Regenerate the README's pictures: the example's `meshc graph --format html` page and a
rendered `meshc diff --format markdown` comment.

    python docs/images/capture.py    # needs Debian's chromium, the test extra and tests/browser

The comment is rendered with markdown-it-py (CommonMark and GFM tables) and Mermaid's own
renderer in headless Chromium, close to what GitHub shows.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from markdown_it import MarkdownIt
from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.gitops_support import git_mesh, meshc  # noqa: E402

IMAGES = REPO / "docs" / "images"
MERMAID = REPO / "tests" / "browser" / "node_modules" / "mermaid" / "dist" / "mermaid.min.js"
COMMENT_STYLE = """
body { font: 14px/1.5 -apple-system, "Segoe UI", system-ui, sans-serif; color: #1f2328; margin: 0;
       background: #f6f8fa; }
.comment { max-width: 860px; margin: 16px; padding: 8px 20px 16px; background: #fff; border: 1px solid #d0d7de;
           border-radius: 6px; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border: 1px solid #d0d7de; padding: 4px 10px; }
th { background: #f6f8fa; }
a { color: #0969da; text-decoration: none; }
h3 { border-bottom: 1px solid #d0d7de; padding-bottom: 4px; }
"""


def graph_page(browser, out: Path) -> None:
    page_file = Path(tempfile.mkdtemp()) / "bookinfo.html"
    text = meshc("graph", str(REPO / "examples" / "bookinfo"), "--format", "html").stdout
    page_file.write_text(text, encoding="utf-8")
    page = browser.new_page(viewport={"width": 1400, "height": 760})
    page.goto(page_file.as_uri())
    page.wait_for_selector("body[data-ready=true]")
    page.evaluate("""() => {
        const reviews = window.meshcGraph.cy.getElementById("service:bookinfo/reviews");
        reviews.select();
        reviews.emit("tap");
    }""")
    page.screenshot(path=str(out))


def diff_comment(browser, out: Path) -> None:
    top = Path(tempfile.mkdtemp()) / "repo"
    repo = git_mesh(top)
    repo.edit("routes/reviews-canary.yaml", "exact: jason", "exact: bob")
    repo.edit("services/reviews.yaml", "timeout: 10s", "timeout: 8s")
    repo.edit("access/policies.yaml", "methods: [GET, POST]", "methods: [GET]")
    repo.commit("reviews: canary for bob, shorter timeout; productpage: GET only")
    markdown = meshc("diff", str(repo.root), "--base", "HEAD~1", "--head", "HEAD", "--format", "markdown",
                     "--link-base", "https://github.com/example/mesh").stdout
    body = MarkdownIt("commonmark").enable("table").render(markdown)
    page = browser.new_page(viewport={"width": 900, "height": 400})
    page.set_content(f"<!DOCTYPE html><html><head><style>{COMMENT_STYLE}</style></head>"
                     f"<body><div class='comment'>{body}</div></body></html>")
    page.add_script_tag(path=str(MERMAID))
    page.evaluate("""async () => {
        for (const code of document.querySelectorAll("code.language-mermaid")) {
            const div = document.createElement("div");
            div.className = "mermaid";
            div.textContent = code.textContent;
            code.parentElement.replaceWith(div);
        }
        window.mermaid.initialize({startOnLoad: false, securityLevel: "strict"});
        await window.mermaid.run({querySelector: ".mermaid"});
    }""")
    page.locator(".comment").screenshot(path=str(out))
    shutil.rmtree(top.parent)


if __name__ == "__main__":
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        graph_page(chromium, IMAGES / "graph-page.png")
        diff_comment(chromium, IMAGES / "diff-comment.png")
        chromium.close()
    print(f"wrote {IMAGES / 'graph-page.png'} and {IMAGES / 'diff-comment.png'}")
