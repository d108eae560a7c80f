"""Hostile input against real gateways and a real browser: the e2e and browser fixtures."""

from __future__ import annotations

from tests.browser.conftest import browser, page
from tests.e2e.conftest import gateway, http, start_gateway

__all__ = ["browser", "gateway", "http", "page", "start_gateway"]
