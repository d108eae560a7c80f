"""Hostile event data on the gateway's pages, in Chromium: shown as text, never run.

Anyone allowed to publish writes the ``entity_id`` and payload that /demo and
/inspector show on the gateway's own origin. The pages build that data into
text nodes; should a script ever slip, the Content-Security-Policy refuses
inline handlers and scripts as the second wall.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from eventwire.server import Gateway
from eventwire.server.demo_app import DEMO_LIST_TOPIC
from eventwire.testing import running_gateway
from tests.browser.conftest import open_page

TIMEOUT_MS = 10_000
ENTITY_ID = '<img src=x onerror="window.__pwned=1">'
NAME = "<script>window.__pwned=2</script><img src=y onerror=window.__pwned=3>"
NOTES = '"><svg onload=window.__pwned=4>'


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    async with running_gateway(demo=True, allow_pattern_subscriptions=True) as started:
        yield started


def _hostile_gift() -> dict[str, Any]:
    payload = {"id": ENTITY_ID, "name": NAME, "notes": NOTES, "price": None}
    data = {"entity_id": ENTITY_ID, "payload": payload, "user_id": "mallory"}
    return {"topic": DEMO_LIST_TOPIC, "event": "ADDED", "data": data}


async def _assert_nothing_ran(page: Page) -> None:
    assert await page.evaluate("window.__pwned") is None
    assert await page.locator("img, svg, body script:not([src])").count() == 0


async def test_hostile_event_data_shows_as_text_on_the_demo_and_the_inspector(
    browser: Browser, gateway: Gateway
) -> None:
    demo, demo_problems = await open_page(browser, f"{gateway.url}/demo")
    inspector, inspector_problems = await open_page(browser, f"{gateway.url}/inspector")
    await expect(inspector.locator("#watching")).to_have_attribute("data-pattern", "*")
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        published = await http.post("/v1/publish", json=_hostile_gift())
    assert published.status_code == 200, published.text

    logged = demo.get_by_test_id("log-entry").first
    await expect(logged).to_contain_text(f"#1 ADDED {ENTITY_ID}", timeout=TIMEOUT_MS)
    await expect(logged).to_contain_text(NOTES.replace('"', '\\"'))  # the payload's JSON
    gift = demo.get_by_test_id("gift")
    await expect(gift).to_have_count(1)
    await expect(gift.get_by_test_id("name")).to_have_value(NAME)
    assert await gift.get_attribute("data-id") == ENTITY_ID

    tailed = inspector.get_by_test_id("log-entry").first
    await expect(tailed).to_contain_text(ENTITY_ID.replace('"', '\\"'), timeout=TIMEOUT_MS)
    await expect(tailed).to_contain_text(NAME)
    for page in (demo, inspector):
        await _assert_nothing_ran(page)
    assert (demo_problems, inspector_problems) == ([], [])  # no request for x or y


async def test_the_policy_refuses_markup_that_slipped_through(
    browser: Browser, gateway: Gateway
) -> None:
    page, _ = await open_page(browser, f"{gateway.url}/demo")
    violations: list[str] = await page.evaluate(
        """() => new Promise((resolve) => {
            const seen = [];
            document.addEventListener('securitypolicyviolation', (e) => {
                seen.push(e.effectiveDirective);
                if (seen.length === 2) resolve(seen.sort());
            });
            // What an innerHTML of event data would do: an inline handler, an inline script.
            document.body.insertAdjacentHTML(
                'beforeend', '<img src="static/nowhere.png" onerror="window.__pwned=1">');
            const script = document.createElement('script');
            script.textContent = 'window.__pwned = 2';
            document.body.append(script);
        })"""
    )
    assert violations == ["script-src-attr", "script-src-elem"]
    assert await page.evaluate("window.__pwned") is None
