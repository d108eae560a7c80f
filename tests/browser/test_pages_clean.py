"""Every page loads clean in Chromium: no console error (a refused Content-Security-Policy
would be one), no failed request, no answer of 400 or more, the icon found."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page, expect

from eventwire.server import Gateway
from eventwire.testing import running_gateway
from tests.browser.conftest import problems_of

TIMEOUT_MS = 10_000


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    async with running_gateway(demo=True, allow_pattern_subscriptions=True) as started:
        yield started


async def _settled(page: Page, path: str) -> None:
    """Wait for what the page does after loading: connect, fetch, render."""
    if path in ("/inspector", "/demo"):
        status = page.locator("#status")
        await expect(status).to_have_attribute("data-state", "open", timeout=TIMEOUT_MS)
    if path == "/inspector":
        await expect(page.locator("#watching")).to_have_attribute("data-pattern", "*")
        await expect(page.locator("#stat-connections")).to_have_text("1", timeout=TIMEOUT_MS)
    if path == "/demo":
        await expect(page.locator("#empty")).to_be_visible()  # the list was fetched


async def _icon_status(page: Page) -> int:
    status: int = await page.evaluate(
        """async () => {
            const link = document.querySelector('link[rel=icon]');
            return (await fetch(link ? link.href : '/favicon.ico')).status;
        }"""
    )
    return status


@pytest.mark.parametrize("path", ["/", "/inspector", "/demo", "/catalog"])
async def test_page_loads_without_errors(browser: Browser, gateway: Gateway, path: str) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    problems = problems_of(page)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        response = await page.goto(gateway.url + path)
        assert response is not None
        assert response.status == 200
        assert response.headers["content-security-policy"].startswith("default-src 'self'")
        await _settled(page, path)
        assert await _icon_status(page) == 200
    finally:
        await context.close()
    assert (problems, errors) == ([], [])


async def test_the_catalog_page_keeps_its_style_under_the_policy(
    page: Page, gateway: Gateway
) -> None:
    problems = problems_of(page)
    await page.goto(f"{gateway.url}/catalog")
    max_width = await page.evaluate("getComputedStyle(document.body).maxWidth")
    assert max_width == "960px"  # 60rem: the inline style, allowed by its hash, applied
    assert problems == []
