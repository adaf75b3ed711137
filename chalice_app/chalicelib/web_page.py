"""The web page for people: static files under web/, inlined into one HTML answer, read once.

The files live beside this module because `chalice deploy` ships all of chalicelib/ and nothing
outside it. They are inlined into index.html (its `{{app.css}}` and `{{app.js}}`) so the page is
one route and one request; reading them once keeps a warm Lambda off the disk.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["WebPage", "page"]

_WEB = Path(__file__).resolve().parent / "web"
_INLINE = re.compile(r"\{\{([\w.-]+)\}\}")
_INLINE_ELEMENT = re.compile(r"<(script|style)>(.*?)</\1>", re.DOTALL)


@dataclass(frozen=True)
class WebPage:
    html: str
    headers: dict[str, str]


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def _content_security_policy(html: str) -> str:
    """Only the page's own inline script and style run, so an injected one cannot read the admin
    token from sessionStorage. Uploads go to a bucket whose host depends on the stage (moto's port
    locally), hence any connect-src."""
    hashes: dict[str, list[str]] = {"script": [], "style": []}
    for kind, body in _INLINE_ELEMENT.findall(html):
        hashes[kind].append(_sha256(body))
    return (
        f"default-src 'none'; script-src {' '.join(hashes['script'])}; "
        f"style-src {' '.join(hashes['style'])}; "
        "img-src blob: data:; connect-src *; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )


@functools.cache
def page() -> WebPage:
    """The single-page app (recognize and enroll tabs), its stylesheet and script inlined."""
    template = (_WEB / "index.html").read_text(encoding="utf-8")
    # A missing file fails loudly here, not as a page that silently lacks its script.
    html = _INLINE.sub(lambda match: (_WEB / match.group(1)).read_text(encoding="utf-8"), template)
    headers = {
        "Content-Type": "text/html; charset=utf-8",
        "Cache-Control": "no-cache",
        "Content-Security-Policy": _content_security_policy(html),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    return WebPage(html=html, headers=headers)
