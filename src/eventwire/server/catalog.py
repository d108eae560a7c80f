"""The gateway's event catalog: loaded once, checked on every publish, served as documents.

``Settings.catalog`` names it (``module:attribute`` or a .json file; the
demo's ``eventwire.demo:catalog`` when ``demo`` is on and none is given);
``Settings.lint`` sets the publish-time lint severities. Every publish, on
every path, goes through :meth:`CatalogService.check` once, after the
payload is encoded: the catalog's validation, then the lint rules it does
not cover. Lint errors refuse the publish; warnings and infos are logged,
at most once a minute per rule, resource type and event type, so a
publisher that always leaves out ``user_id`` does not flood the log.

The documents (``/v1/catalog``, ``/asyncapi.json``, ``/catalog``) are
rendered on first request and kept. Nothing of the catalog package is
imported until a gateway asks for a catalog or lint.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from eventwire.catalog import Catalog
    from eventwire.catalog.lint import Finding, LintConfig
    from eventwire.envelope import NewEvent
    from eventwire.server.config import Settings

__all__ = ["DEMO_CATALOG", "CatalogService", "catalog_spec"]

log = logging.getLogger("eventwire.catalog")

DEMO_CATALOG = "eventwire.demo:catalog"
"""What a demo gateway (``demo`` on) checks its events against when no catalog is given."""

_LOG_EVERY = 60.0
"""Seconds between two log lines of the same lint rule, resource type and event type."""
_LOG_KEYS = 4096
_DOCUMENTS = 16
"""Rendered documents kept; the AsyncAPI one varies with the address a request came in on."""
_LEVELS = {"warning": logging.WARNING, "info": logging.INFO}


def catalog_spec(settings: Settings) -> str | None:
    """The catalog a gateway with ``settings`` loads: the setting, or the demo's in demo mode."""
    return settings.catalog or (DEMO_CATALOG if settings.demo else None)


class CatalogService:
    """A loaded catalog (or none, with lint only) and the publish-time lint configuration."""

    def __init__(self, catalog: Catalog | None, lint: LintConfig | None = None) -> None:
        from eventwire.catalog.lint import LintConfig, lint_published, to_validation_error

        self.catalog = catalog
        self.lint = lint or LintConfig()
        self._lint_published = lint_published
        self._to_validation_error = to_validation_error
        self._logged: dict[tuple[str, str, str], float] = {}
        self._documents: dict[str, bytes] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> CatalogService | None:
        """The service ``settings`` ask for; None without a catalog and without lint settings.

        Raises CatalogLoadError when the catalog cannot be loaded.
        """
        spec = catalog_spec(settings)
        if spec is None and not settings.lint:
            return None
        from eventwire.catalog import load_catalog
        from eventwire.catalog.lint import LintConfig

        catalog = load_catalog(spec) if spec is not None else None
        return cls(catalog, LintConfig.parse(settings.lint))

    # -- publishing ------------------------------------------------------------------

    def check(self, event: NewEvent, payload_json: bytes) -> None:
        """Validate one published event, then lint it; raise ValidationFailed to refuse it."""
        if self.catalog is not None:
            self.catalog.validate(event, payload_json)
        findings = self._lint_published(event, payload_json, catalog=self.catalog, config=self.lint)
        if not findings:
            return
        refusal = self._to_validation_error(findings)
        if refusal is not None:
            raise refusal
        self._log(event, findings)

    def _log(self, event: NewEvent, findings: list[Finding]) -> None:
        now = time.monotonic()
        resource = event.topic.split(":", 1)[0]
        if self.catalog is not None:
            resource = self.catalog.resource_name(event.topic)
        for finding in findings:
            key = (finding.rule, resource, event.event)
            if now - self._logged.get(key, -_LOG_EVERY) < _LOG_EVERY:
                continue
            if len(self._logged) >= _LOG_KEYS:
                self._logged.clear()
            self._logged[key] = now
            level = _LEVELS.get(finding.severity, logging.WARNING)
            where = f" ({finding.path})" if finding.path else ""
            log.log(
                level,
                "lint %s %s on %s %s%s: %s",
                finding.rule,
                finding.name,
                event.topic,
                event.event,
                where,
                finding.message,
            )

    # -- documents -------------------------------------------------------------------

    def json_document(self) -> bytes:
        """The catalog as ``eventwire catalog export --format json`` writes it."""
        return self._document("json", self._json)

    def asyncapi_document(self, server_url: str) -> bytes:
        """The AsyncAPI 3.0 document, with ``server_url`` as its server."""
        return self._document(f"asyncapi {server_url}", lambda: self._asyncapi(server_url))

    def html_page(self) -> bytes:
        """The readable page, with the gateway's icon (a relative URL: right under any mount)."""
        return self._document("html", self._html)

    def _document(self, key: str, render: Callable[[], bytes]) -> bytes:
        found = self._documents.get(key)
        if found is None:
            found = render()
            if len(self._documents) < _DOCUMENTS:  # one AsyncAPI per server URL: keep a few
                self._documents[key] = found
        return found

    def _loaded(self) -> Catalog:
        if self.catalog is None:
            raise LookupError("no catalog is loaded")
        return self.catalog

    def _json(self) -> bytes:
        from eventwire.catalog.export import dumps

        return dumps(self._loaded())

    def _asyncapi(self, server_url: str) -> bytes:
        from eventwire.catalog.export import asyncapi_document

        document = asyncapi_document(self._loaded(), server_url=server_url)
        return orjson.dumps(document, option=orjson.OPT_INDENT_2)

    def _html(self) -> bytes:
        from eventwire.catalog.export import html_page

        return html_page(self._loaded(), icon="static/favicon.svg").encode()
