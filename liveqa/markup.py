"""Plain text from people, made safe to show: escaped, line breaks kept, web links clickable."""

from __future__ import annotations

import re

from markupsafe import Markup, escape

# http(s) only: a `javascript:` or `data:` link never becomes clickable.
LINK = re.compile(r"\bhttps?://[^\s<>\"']+", re.IGNORECASE)
TRAILING = ".,;:!?)]}'\""


def linkify(text: str) -> Markup:
    parts: list[Markup] = []
    last = 0
    for match in LINK.finditer(text):
        url = match.group(0)
        trimmed = url.rstrip(TRAILING)
        end = match.start() + len(trimmed)
        parts.append(escape(text[last : match.start()]))
        parts.append(
            Markup('<a href="{0}" rel="nofollow ugc noopener noreferrer">{0}</a>').format(trimmed)
        )
        last = end
    parts.append(escape(text[last:]))
    return Markup("").join(parts).replace("\n", Markup("<br>\n"))
