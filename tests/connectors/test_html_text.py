"""HTML to plain text: what a reader would see, never markup."""

from __future__ import annotations

import pytest

from connectors.html_text import html_to_text


@pytest.mark.parametrize("html, text", [
    (None, ""),
    ("", ""),
    ("plain words", "plain words"),
    # Hacker News comment HTML: paragraphs opened with <p> and never closed.
    ("First&#x27;s point.<p>Second &quot;point&quot; &#x2F; &amp; more.<p>Third",
     "First's point.\n\nSecond \"point\" / & more.\n\nThird"),
    ("<p>one</p>\n\n  <p>  two   words </p>", "one\n\ntwo words"),
    ("a<br>b<br/>c", "a\nb\nc"),
    ("<ul><li>one</li><li>two</li></ul>after", "one\ntwo\n\nafter"),
    ("<div><p>nested</p></div><div>next</div>", "nested\n\nnext"),
    ("<b>bold</b> and <a href='https://x.example/?a=1&amp;b=2'>a link</a>", "bold and a link"),
    ("&nbsp;x&nbsp;&nbsp;y &unknown; &amp;amp; &lt;3", "x y &unknown; &amp; <3"),
    ("<pre><code>line 1\nline 2</code></pre>", "line 1\nline 2"),
    ("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", "a b\nc"),
])
def test_structure_and_entities(html, text):
    assert html_to_text(html) == text


@pytest.mark.parametrize("html, text", [
    ("<script>alert('x')</script>Visible<style>p { color: red }</style> text", "Visible text"),
    ("<SCRIPT type='text/javascript'>document.write('<p>hi</p>')</SCRIPT>ok", "ok"),
    ("before<script>never closed <p>still script", "before"),
    ("<template><p>hidden</p></template>shown", "shown"),
    ("<img src=x onerror=alert(1)><iframe src='https://evil.example'></iframe>ok", "ok"),
    ("<!-- a comment --><![CDATA[ cdata ]]>text", "text"),
    ("<p onclick=\"steal()\">click</p>", "click"),
])
def test_scripts_styles_and_attributes_are_dropped(html, text):
    assert html_to_text(html) == text


@pytest.mark.parametrize("html, text", [
    # Escaped markup is what the author wrote: it comes out as characters, not as tags.
    ("&lt;script&gt;alert(1)&lt;/script&gt;", "<script>alert(1)</script>"),
    ("a < b and c > d, x<y", "a < b and c > d, x<y"),
    ("unterminated <a href=\"x", "unterminated <a href=\"x"),
    ("<scr<script>ipt>alert(1)</script>tail", "ipt>alert(1)tail"),
    ("nul\x00byte", "nul\ufffdbyte"),
])
def test_hostile_or_broken_markup_becomes_text(html, text):
    assert html_to_text(html) == text


def test_output_never_has_more_than_one_blank_line_or_edge_whitespace():
    text = html_to_text("<p> </p><div>\n\n</div><p>a</p><br><br><br><br><p>b</p>   ")
    assert text == "a\n\nb"
