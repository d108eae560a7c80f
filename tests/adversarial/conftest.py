"""Hostile input against real gateways and a real browser: the e2e and browser fixtures,
and a fuzzer's bystander with its traffic, on the ``target`` gateway each module defines."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from eventwire.server import Gateway
from tests.adversarial.live import TOPIC, Bystander, Traffic
from tests.browser.conftest import browser, page
from tests.e2e.conftest import gateway, http, start_gateway, token

__all__ = ["browser", "bystander", "gateway", "http", "page", "start_gateway", "traffic"]


@pytest.fixture
def traffic(target: Gateway) -> Traffic:
    """Numbered events published on ``target`` for the bystander to receive, all in order."""
    return Traffic(target)


@pytest.fixture
async def bystander(target: Gateway) -> AsyncIterator[Bystander]:
    """A normal client of ``target``, subscribed to ``TOPIC``, closed after the test."""
    watcher = await Bystander.join(target.ws_url, token(target, "bystander", subscribe=[TOPIC]))
    yield watcher
    await watcher.close()
