"""A readable, self-contained HTML page of the catalog (what the gateway serves at ``/catalog``)."""

from __future__ import annotations

import base64
import hashlib
import json
from html import escape
from typing import Any

from eventwire.catalog.events import EventSpec
from eventwire.catalog.export.common import example_event
from eventwire.catalog.model import Catalog
from eventwire.catalog.resource import Resource

__all__ = ["STYLE_SOURCE", "html_page"]

_STYLE = """
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{margin-bottom:0}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2.5rem}
code,pre{font:13px ui-monospace,monospace;background:#f5f5f5;border-radius:4px}
code{padding:0 .25rem}pre{padding:.6rem;overflow:auto}h2 code,h3 code{font-size:inherit}
table{border-collapse:collapse}td,th{padding:.2rem .8rem .2rem 0;text-align:left;vertical-align:top}
.tag{font-size:12px;border:1px solid #999;border-radius:3px;padding:0 .3rem;margin-left:.4rem}
details{margin:.3rem 0}summary{cursor:pointer}
"""
STYLE_SOURCE = f"'sha256-{base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()}'"
"""The page's one inline style as a Content-Security-Policy source: served, it needs no other."""


def _json(value: Any) -> str:
    return escape(json.dumps(value, indent=2, ensure_ascii=False))


def _facts(resource: Resource) -> str:
    rows = [
        ("topics", f"<code>{escape(resource.name)}:{{id}}</code>"),
        ("undeclared event types", "refused (strict)" if resource.strict else "accepted (open)"),
        ("payload mode", f"<code>{resource.payload_mode.value}</code>"),
    ]
    if resource.reference_url:
        rows.append(("fetch an entity", f"<code>{escape(resource.reference_url)}</code>"))
    if resource.statuses:
        shown = ", ".join(f"<code>{escape(s)}</code>" for s in resource.statuses)
        rows.append(("statuses", shown))
    if resource.transitions is not None:
        moves = [
            f"{escape(o)} → {escape(n)}"
            for o, ns in resource.transitions.items()
            for n in sorted(ns)
        ]
        rows.append(("transitions", ", ".join(moves) or "none"))
    cells = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def _event(resource: Resource, spec: EventSpec) -> str:
    versions = ", ".join(f"v{v}" for v in spec.versions)
    parts = [
        f'<h3 id="{escape(spec.key)}"><code>{escape(spec.name)}</code>'
        f'<span class="tag">{spec.kind}</span><span class="tag">{versions}</span></h3>',
        f"<p>{escape(spec.description)}</p>" if spec.description else "",
    ]
    for version, declared in spec.versions.items():
        schema = declared.payload.json_schema()
        parts.append(
            f"<details><summary>v{version} payload: {escape(declared.payload.name)}</summary>"
            f"<pre>{_json(schema)}</pre></details>"
        )
        example = example_event(resource, spec, version)
        if example is not None:
            shown = _json(example)
            parts.append(
                f"<details><summary>v{version} example</summary><pre>{shown}</pre></details>"
            )
    return "\n".join(parts)


def html_page(catalog: Catalog, *, icon: str | None = None) -> str:
    """The catalog as one HTML page: resources, their facts, events, schemas and examples.

    ``icon``: the URL of the page's icon (the gateway's, when it serves the page).
    """
    sections = []
    for resource in catalog.resources.values():
        events = "\n".join(_event(resource, spec) for spec in resource.events.values())
        description = f"<p>{escape(resource.description)}</p>" if resource.description else ""
        sections.append(
            f'<h2 id="{escape(resource.name)}"><code>{escape(resource.name)}</code></h2>'
            f"{description}{_facts(resource)}\n{events}"
        )
    index = " · ".join(
        f'<a href="#{escape(n)}"><code>{escape(n)}</code></a>' for n in catalog.resources
    )
    title, name = escape(catalog.title), escape(catalog.name)
    head = f"<title>{title}: event catalog</title><style>{_STYLE}</style>"
    if icon is not None:
        head += f'<link rel="icon" href="{escape(icon)}">'
    intro = (
        f"<h1>{title}</h1><p>Event catalog <code>{name}</code> {escape(catalog.version)}."
        f" {escape(catalog.description)}</p><p>{index}</p>"
    )
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">{head}</head><body>'
        + intro
        + "\n".join(sections)
        + "\n</body></html>\n"
    )
