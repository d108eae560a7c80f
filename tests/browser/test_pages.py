"""The /demo and /inspector pages in a real Chromium, against a real gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from eventwire.server import Gateway
from eventwire.testing import running_gateway
from tests.browser.conftest import screenshot_path

TIMEOUT_MS = 10_000


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    async with running_gateway(demo=True, allow_pattern_subscriptions=True) as started:
        yield started


async def open_demo(browser: Browser, gateway: Gateway) -> Page:
    page = await (await browser.new_context(viewport={"width": 1100, "height": 760})).new_page()
    await page.goto(f"{gateway.url}/demo")
    await expect_live(page)
    return page


async def expect_live(page: Page) -> None:
    status = page.locator("#status")
    await expect(status).to_have_attribute("data-state", "open", timeout=TIMEOUT_MS)


def gift_row(page: Page, name: str) -> object:
    return page.locator("[data-testid=gift]").filter(has=page.locator(f"input[value='{name}']"))


async def test_two_tabs_stay_in_sync(browser: Browser, gateway: Gateway) -> None:
    alice, bob = await open_demo(browser, gateway), await open_demo(browser, gateway)

    await alice.get_by_test_id("new-name").fill("Kite")
    await alice.get_by_test_id("new-price").fill("19.50")
    await alice.get_by_test_id("add").click()
    bobs_gifts = bob.get_by_test_id("gift")
    await expect(bobs_gifts).to_have_count(1, timeout=TIMEOUT_MS)
    await expect(bobs_gifts.first.get_by_test_id("name")).to_have_value("Kite")
    await expect(bobs_gifts.first).to_contain_text("$19.50")

    await bob.get_by_test_id("gift").first.get_by_test_id("name").fill("Red kite")
    await bob.get_by_test_id("gift").first.get_by_test_id("rename").click()
    await expect(alice.get_by_test_id("gift").first.get_by_test_id("name")).to_have_value(
        "Red kite", timeout=TIMEOUT_MS
    )

    await alice.get_by_test_id("gift").first.get_by_test_id("purchase").click()
    await expect(bob.get_by_test_id("gift").first.get_by_test_id("status")).to_have_text(
        "purchased", timeout=TIMEOUT_MS
    )
    await expect(bob.get_by_test_id("log-entry").first).to_contain_text("GIFT_PURCHASED")
    await bob.screenshot(path=screenshot_path("demo"))

    await bob.get_by_test_id("gift").first.get_by_test_id("delete").click()
    await expect(alice.get_by_test_id("gift")).to_have_count(0, timeout=TIMEOUT_MS)


async def test_page_reconnects_and_catches_up_after_a_gateway_restart(browser: Browser) -> None:
    async with running_gateway(demo=True) as first:
        port = first.port
        page = await open_demo(browser, first)
        async with httpx.AsyncClient(base_url=first.url) as http:
            await http.post("/demo/api/gifts", json={"name": "Before restart"})
        await expect(page.get_by_test_id("gift")).to_have_count(1, timeout=TIMEOUT_MS)
    # The gateway is gone (its in-memory list with it); the page notices...
    status = page.locator("#status")
    await expect(status).not_to_have_attribute("data-state", "open", timeout=TIMEOUT_MS)
    second = running_gateway(demo=True, port=port)
    async with second as gateway, httpx.AsyncClient(base_url=gateway.url) as http:
        await http.post("/demo/api/gifts", json={"name": "While away"})
        # ...reconnects by itself, sees the new history, and refetches.
        await expect_live(page)
        gifts = page.get_by_test_id("gift")
        await expect(gifts).to_have_count(1, timeout=TIMEOUT_MS)
        await expect(gifts.first.get_by_test_id("name")).to_have_value("While away")
        await http.post("/demo/api/gifts", json={"name": "After return"})
        await expect(gifts).to_have_count(2, timeout=TIMEOUT_MS)


async def test_inspector_tails_every_topic_and_publishes(page: Page, gateway: Gateway) -> None:
    await page.goto(f"{gateway.url}/inspector")
    await expect(page.locator("#watching")).to_have_attribute(
        "data-pattern", "*", timeout=TIMEOUT_MS
    )
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        published = await http.post(
            "/v1/publish",
            json={"topic": "room:lobby", "event": "USER_JOINED",
                  "data": {"entity_id": "user-123",
                           "payload": {"user_id": "user-123", "username": "Alice"}}},
        )  # fmt: skip
    assert published.status_code == 200
    entry = page.get_by_test_id("log-entry").first
    await expect(entry).to_contain_text("room:lobby", timeout=TIMEOUT_MS)
    await expect(entry).to_contain_text('"username": "Alice"')  # pretty-printed JSON
    await expect(page.locator("#stat-published")).to_have_text("1", timeout=TIMEOUT_MS)

    await page.get_by_test_id("pub-topic").fill("gift-list:9")
    await page.get_by_test_id("publish").click()
    await expect(page.get_by_test_id("publish-result")).to_contain_text("seq=1", timeout=TIMEOUT_MS)
    await expect(page.get_by_test_id("log-entry").first).to_contain_text("gift-list:9")

    await page.get_by_test_id("pattern").fill("room:*")
    await page.get_by_test_id("watch").click()
    await expect(page.locator("#watching")).to_have_attribute(
        "data-pattern", "room:*", timeout=TIMEOUT_MS
    )
    await page.screenshot(path=screenshot_path("inspector"))
