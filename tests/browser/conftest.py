"""A real headless Chromium (Debian's package), driven by Playwright, for browser tests.

Playwright cannot download browsers here, so it is handed the system's
``chromium``; the flags keep it from reaching anything but our 127.0.0.1
servers. Screenshots land in ``build/screenshots``.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import (
    Browser,
    ConsoleMessage,
    Page,
    Request,
    Response,
    async_playwright,
    expect,
)

SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("chromium is not installed; `make test` installs it (scripts/system-deps.sh)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1200, "height": 800})
    opened = await context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield opened
    finally:
        await context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def screenshot_path(name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / f"{name}.png"


def problems_of(page: Page) -> list[str]:
    """What goes wrong on ``page`` from now on: console errors (a refused Content-Security-Policy
    among them), failed requests and answers of 400 or more. The list grows as they happen."""
    problems: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            problems.append(f"console {message.type}: {message.text}")

    def failed(request: Request) -> None:
        problems.append(f"request failed: {request.method} {request.url} {request.failure}")

    def answered(response: Response) -> None:
        if response.status >= 400:
            problems.append(f"HTTP {response.status}: {response.url}")

    page.on("console", console)
    page.on("requestfailed", failed)
    page.on("response", answered)
    return problems


async def open_page(browser: Browser, url: str, timeout_ms: int = 10_000) -> tuple[Page, list[str]]:
    """A page of its own at ``url``, once its WebSocket is open; with what goes wrong on it."""
    page = await (await browser.new_context()).new_page()
    problems = problems_of(page)
    await page.goto(url)
    status = page.locator("#status")
    await expect(status).to_have_attribute("data-state", "open", timeout=timeout_ms)
    return page, problems
