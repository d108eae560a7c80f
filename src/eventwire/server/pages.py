"""The gateway's pages and static files, and the headers every HTTP answer carries.

Pages: ``/inspector`` always, ``/demo`` only with ``demo`` on, ``/catalog``
with a catalog (rendered by ``server/catalog.py``); the files of
``server/static`` at ``/static/{file}``; the icon at ``/favicon.ico``. The
pages link their assets and call the API with relative URLs, so they work
wherever the gateway is mounted (an ASGI ``root_path`` such as ``/realtime``)
with no templating.

Every answer of the HTTP API, pages and JSON alike, carries:

- ``Content-Security-Policy: default-src 'self'`` (and ``base-uri``,
  ``form-action`` and ``frame-ancestors`` limited to ``'self'``, which
  ``default-src`` does not cover): scripts, styles, images and connections
  only from the gateway itself, no inline script or style. Pages show event
  data, which anyone allowed to publish writes; they build it into text
  nodes, never markup, and the policy is the second wall should one slip.
  The catalog page keeps its inline ``<style>`` (it is also exported as one
  self-contained file) and allows exactly that style by its hash.
- ``X-Content-Type-Options: nosniff``: a JSON body or static file is only
  ever what its Content-Type says.
- ``Referrer-Policy: no-referrer``: the pages link nowhere else, and a URL of
  the gateway may carry a token (``?token=``, the inspector's ``#token=``).
"""

from __future__ import annotations

from pathlib import Path

from eventwire.codes import ErrorCode
from eventwire.errors import ProtocolError

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "CONTENT_TYPES",
    "SECURITY_HEADERS",
    "Headers",
    "page_of",
    "secured",
    "static_file",
    "style_policy",
]

Headers = tuple[tuple[str, str], ...]
"""HTTP headers as ``(name, value)`` pairs, names in lower case (as ASGI wants them)."""

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'"
)
SECURITY_HEADERS: Headers = (
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
)

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}

_STATIC = Path(__file__).parent / "static"
_PAGES = {"/inspector": "inspector.html", "/favicon.ico": "favicon.svg"}
_DEMO_PAGES = {"/demo": "demo.html"}


def page_of(path: str, *, demo: bool) -> str | None:
    """The static file served at ``path`` (a page, the icon), or None; ``/demo`` needs ``demo``."""
    return _PAGES.get(path) or (_DEMO_PAGES.get(path) if demo else None)


def static_file(name: str) -> tuple[bytes, str]:
    """A committed file of ``server/static`` and its Content-Type: nothing outside, nothing hidden.

    Raises ProtocolError NOT_FOUND for anything else.
    """
    parts = name.split("/")
    if not name or any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        raise ProtocolError(ErrorCode.NOT_FOUND, "no such static file")
    path = _STATIC.joinpath(*parts)
    content_type = CONTENT_TYPES.get(path.suffix)
    if content_type is None or not path.is_file():
        raise ProtocolError(ErrorCode.NOT_FOUND, "no such static file", {"path": name[:200]})
    return path.read_bytes(), content_type


def style_policy(style_source: str) -> Headers:
    """The policy of a page whose one inline style is allowed by ``style_source`` (its hash)."""
    policy = f"{CONTENT_SECURITY_POLICY}; style-src 'self' {style_source}"
    return (("content-security-policy", policy),)


def secured(headers: Headers) -> Headers:
    """``headers`` and the security headers they do not set themselves."""
    present = {name for name, _ in headers}
    return headers + tuple(pair for pair in SECURITY_HEADERS if pair[0] not in present)
