"""The pages of a gateway mounted at /realtime in a FastAPI app (uvicorn), in Chromium: their
assets, WebSocket and API calls all resolve under the prefix."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from playwright.async_api import Browser, expect

from eventwire.server import Gateway
from tests.browser.conftest import open_page
from tests.e2e.asgiserver import PREFIX, mounted_gateway

TIMEOUT_MS = 10_000


@pytest.fixture
async def mounted() -> AsyncIterator[tuple[str, Gateway]]:
    async with mounted_gateway(demo=True, allow_pattern_subscriptions=True) as served_at:
        yield served_at


async def test_the_inspector_connects_and_shows_events(
    browser: Browser, mounted: tuple[str, Gateway]
) -> None:
    url, _ = mounted
    page, problems = await open_page(browser, f"{url}{PREFIX}/inspector#pattern=room:*")
    await expect(page.locator("#watching")).to_have_attribute(
        "data-pattern", "room:*", timeout=TIMEOUT_MS
    )
    async with httpx.AsyncClient(base_url=url) as http:
        published = await http.post(
            f"{PREFIX}/v1/publish",
            json={"topic": "room:lobby", "event": "USER_JOINED",
                  "data": {"entity_id": "u-1", "payload": {"user_id": "u-1", "username": "Ada"}}},
        )  # fmt: skip
    assert published.status_code == 200
    entry = page.get_by_test_id("log-entry").first
    await expect(entry).to_contain_text('"username": "Ada"', timeout=TIMEOUT_MS)
    await expect(page.locator("#stat-published")).to_have_text("1", timeout=TIMEOUT_MS)

    await page.get_by_test_id("pub-topic").fill("room:kitchen")  # the form's own publish
    await page.get_by_test_id("pub-event").fill("MESSAGE_POSTED")
    await page.get_by_test_id("pub-payload").fill(
        '{"message_id": "m-1", "user_id": "u-1", "username": "Ada", "text": "hi"}'
    )
    await page.get_by_test_id("publish").click()
    await expect(page.get_by_test_id("publish-result")).to_contain_text(
        "published room:kitchen MESSAGE_POSTED seq=1", timeout=TIMEOUT_MS
    )
    await expect(page.get_by_test_id("log-entry").first).to_contain_text("room:kitchen")
    assert problems == []


async def test_the_demo_page_works(browser: Browser, mounted: tuple[str, Gateway]) -> None:
    url, _ = mounted
    alice, problems = await open_page(browser, f"{url}{PREFIX}/demo")
    bob, _ = await open_page(browser, f"{url}{PREFIX}/demo")
    await alice.get_by_test_id("new-name").fill("Kite")
    await alice.get_by_test_id("add").click()
    gifts = bob.get_by_test_id("gift")
    await expect(gifts).to_have_count(1, timeout=TIMEOUT_MS)
    await expect(gifts.first.get_by_test_id("name")).to_have_value("Kite")
    await bob.get_by_test_id("gift").first.get_by_test_id("purchase").click()
    status = alice.get_by_test_id("gift").first.get_by_test_id("status")
    await expect(status).to_have_text("purchased", timeout=TIMEOUT_MS)
    await expect(alice.get_by_test_id("log-entry").first).to_contain_text("GIFT_PURCHASED")
    assert problems == []
