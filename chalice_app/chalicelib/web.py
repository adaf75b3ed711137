"""The web page for people: static files under web/, inlined into one HTML answer, read once.

The files live beside this module because `chalice deploy` ships all of chalicelib/ and nothing
outside it. They are inlined into index.html (its `{{app.css}}` and `{{app.js}}`) so the page is
one route and one request; reading them once keeps a warm Lambda off the disk.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

__all__ = ["HTML_HEADERS", "page"]

_WEB = Path(__file__).resolve().parent / "web"
_INLINE = re.compile(r"\{\{([\w.-]+)\}\}")

HTML_HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@functools.cache
def page() -> str:
    """The single-page app (recognize and enroll tabs) with its stylesheet and script inlined."""
    html = (_WEB / "index.html").read_text(encoding="utf-8")
    # A missing file fails loudly here, not as a page that silently lacks its script.
    return _INLINE.sub(lambda match: (_WEB / match.group(1)).read_text(encoding="utf-8"), html)
