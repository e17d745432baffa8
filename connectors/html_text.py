"""HTML fragments to plain text, for connectors whose platforms send markup.

Hacker News comments, feed summaries and Mastodon statuses arrive as HTML, but what we
store and score is text: VADER reads words, and the text is shown back to people in
reports and the web view. So markup is reduced here to what a reader would see:

* paragraph-level elements become blank lines, ``<br>`` and list items line breaks,
  so a paragraph structure survives for readers (and sentence splitting later);
* entities and character references are unescaped (``&#x27;`` -> ``'``);
* the contents of ``script``, ``style`` and ``template`` are dropped: never text;
* every other tag disappears and only its text stays. The result is plain text, never
  markup: ``&lt;script&gt;`` becomes the literal characters ``<script>``, which is what
  the author wrote, and whoever renders it must escape it like any other text.

Built on the standard library's tolerant ``html.parser`` (no extra dependency, no
network, no entity expansion beyond HTML's own): unclosed and stray tags are fine.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_DROPPED = frozenset({"script", "style", "template", "noscript", "head", "title"})
_PARAGRAPHS = frozenset({
    "p", "div", "blockquote", "pre", "section", "article", "aside", "header", "footer",
    "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "dl", "table", "figure", "hr",
    "main", "nav", "form", "fieldset", "details", "address",
})
_LINES = frozenset({"br", "li", "tr", "dt", "dd", "figcaption", "summary", "option"})
_CELLS = frozenset({"td", "th"})
_VOID = frozenset({"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "embed",
                   "source", "track", "wbr", "param"})

_BREAK = "\x00"
"""Placeholder for a line break from markup, kept apart from whitespace in the text
(which HTML collapses) until the end."""

_SPACES = re.compile(r"[ \t\r\n\f\v\u00a0]+")
_AROUND_BREAKS = re.compile(r" *\x00[ \x00]*")


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        # convert_charrefs: entities in text and attributes arrive already unescaped.
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._dropping: list[str] = []
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROPPED:
            if tag not in _VOID:
                self._dropping.append(tag)
            return
        if self._dropping:
            return
        if tag == "pre":
            self._pre += 1
        self._break_for(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # <br/> and friends: a self-closing tag opens nothing to drop or close.
        if not self._dropping and tag not in _DROPPED:
            self._break_for(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROPPED:
            # Close the innermost open dropped element of this name (and any left open in it).
            if tag in self._dropping:
                while self._dropping and self._dropping.pop() != tag:
                    pass
            return
        if self._dropping:
            return
        if tag == "pre" and self._pre:
            self._pre -= 1
        if tag in _PARAGRAPHS:
            self.parts.append(_BREAK * 2)
        # A line-level element breaks the line where it starts; breaking again where it
        # ends would put blank lines between list items.

    def handle_data(self, data: str) -> None:
        if self._dropping:
            return
        if self._pre:
            # Preformatted text keeps its own line breaks; they must survive collapsing.
            data = data.replace("\r\n", "\n").replace("\n", _BREAK)
        self.parts.append(data)

    def _break_for(self, tag: str) -> None:
        if tag in _PARAGRAPHS:
            self.parts.append(_BREAK * 2)
        elif tag in _LINES:
            self.parts.append(_BREAK)
        elif tag in _CELLS:
            self.parts.append(" ")


def html_to_text(html: str | None) -> str:
    """Plain text of an HTML fragment or document: paragraphs separated by a blank
    line, ``<br>`` and list items by a line break, whitespace collapsed, entities
    unescaped, scripts and styles dropped. ``None`` or empty input gives ``""``."""
    if not html:
        return ""
    collector = _TextCollector()
    # HTML replaces NUL anyway, and here it would be taken for a line break.
    collector.feed(html.replace(_BREAK, "\ufffd"))
    collector.close()
    text = _SPACES.sub(" ", "".join(collector.parts))
    text = _AROUND_BREAKS.sub(lambda m: _BREAK * min(m.group().count(_BREAK), 2), text)
    return text.replace(_BREAK, "\n").strip(" \n")
