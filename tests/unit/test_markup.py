from __future__ import annotations

from liveqa.markup import linkify


def test_links_become_clickable_and_text_stays_text() -> None:
    html = linkify("See https://example.org/a?b=1&c=2, or <script>alert(1)</script>\nThanks")
    assert html == (
        'See <a href="https://example.org/a?b=1&amp;c=2" rel="nofollow ugc noopener noreferrer">'
        "https://example.org/a?b=1&amp;c=2</a>, or &lt;script&gt;alert(1)&lt;/script&gt;<br>\nThanks"
    )


def test_only_web_links_are_linked() -> None:
    for text in ("javascript:alert(1)", "data:text/html,<b>x</b>", "ftp://x.example"):
        assert "<a" not in linkify(text)
    assert 'href="https://x.example/&#34;onmouseover=&#34;' not in linkify(
        'https://x.example/"onmouseover="alert(1)'
    )
    assert "onmouseover=&#34;alert(1)" in linkify('https://x.example/"onmouseover="alert(1)')
