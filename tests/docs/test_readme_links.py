"""README.md is the front door: it stays short (what it is, the quick start, what the demo
shows, the commands in brief, where to read on), and every relative link in it, and the
anchor it names, resolves (the anchors GitHub gives headings). docs/ is checked by the
strict MkDocs build (test_docs_build.py)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MAX_LINES = 250

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _headings(markdown: str) -> list[str]:
    """The headings' texts, outside code blocks."""
    found, fence = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fence = not fence
        elif not fence and (m := re.match(r"#{1,6} +(.+?)(?: +#+)? *$", line)):
            found.append(m.group(1))
    return found


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a Markdown file's headings: the text without markup, lower
    case, punctuation dropped, spaces as hyphens; a repeated one gets -1, -2..."""
    anchors, seen = set(), Counter()
    for heading in _headings(markdown):
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
        slug = re.sub(r"[^\w\- ]", "", text.lower().replace("`", "")).replace(" ", "-")
        anchors.add(f"{slug}-{seen[slug]}" if seen[slug] else slug)
        seen[slug] += 1
    return anchors


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    """The relative links of a Markdown file whose target or anchor does not exist (files
    named relative to ``root``)."""
    text = path.read_text(encoding="utf-8")
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        resolved = (path.parent / file).resolve() if file else path
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in github_anchors(resolved.read_text(encoding="utf-8")):
            broken.append(f"{target}: no such heading in {resolved.relative_to(root)}")
    return broken


def test_every_relative_link_and_anchor_of_the_readme_resolves():
    assert not broken_links(README), broken_links(README)


def test_a_missing_page_or_heading_is_caught(tmp_path):
    (tmp_path / "pages").mkdir()
    (tmp_path / "pages" / "alerts.md").write_text("# Alerts\n\n## The rule\n\n```sh\n# not a heading\n```\n")
    page = tmp_path / "README.md"
    page.write_text("# Title\n\n## What `it` is, in short\n\n[a](#what-it-is-in-short) [b](pages/alerts.md#the-rule) "
                    "[c](https://example.com/x#y)\n[d](pages/alerts.md#not-a-heading) [e](pages/gone.md) [f](#title-1)\n")
    assert broken_links(page, tmp_path) == ["pages/alerts.md#not-a-heading: no such heading in pages/alerts.md",
                                            "pages/gone.md: no such file", "#title-1: no such heading in README.md"]


def test_the_readme_is_a_front_door():
    text = README.read_text(encoding="utf-8")
    lines = text.count("\n")
    assert lines <= MAX_LINES, (f"README.md has {lines} lines: it is the front door (what, quick start, the demo, "
                                f"the commands in brief, where to read on); move the rest to a page in docs/")
    assert _headings(text)[:2] == ["listener: brand mood on your own server", "Quick start"]
    # The quick start is exactly two commands (DEVELOPERS.md).
    quick_start = text.split("## Quick start", 1)[1]
    first_block = re.search(r"```sh\n(.*?)```", quick_start, re.S).group(1)
    assert len(first_block.splitlines()) == 2, first_block
