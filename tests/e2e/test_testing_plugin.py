"""The pytest plugin and test kit: fixtures, expect(), running_gateway(), loading anywhere."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from eventwire.client import InProcessPublisher
from eventwire.server import Gateway
from eventwire.testing import TestClient, running_gateway
from eventwire.testing.client import ClientFactory

TOPIC = "gift-list:123"


async def test_gateway_fixture_is_listening_on_a_free_local_port(
    eventwire_gateway: Gateway,
) -> None:
    assert eventwire_gateway.port != 0
    assert eventwire_gateway.settings.host == "127.0.0.1"
    async with httpx.AsyncClient(timeout=5.0) as http:
        response = await http.get(f"{eventwire_gateway.url}/healthz")
    assert response.json() == {"status": "ok"}


async def test_client_fixture_connects_test_clients_to_that_gateway(
    eventwire_gateway: Gateway, eventwire_client: ClientFactory
) -> None:
    first, second = await eventwire_client(), await eventwire_client()
    assert isinstance(first, TestClient)
    assert first.connected
    assert second.connected
    assert first.session_id != second.session_id
    assert len(eventwire_gateway.connections) == 2


@pytest.mark.eventwire(max_subscriptions=1)
async def test_marker_passes_settings_to_the_gateway(
    eventwire_gateway: Gateway, eventwire_client: ClientFactory
) -> None:
    assert eventwire_gateway.settings.max_subscriptions == 1
    client = await eventwire_client()
    await client.subscribe("room:a")
    with pytest.raises(Exception, match="TOO_MANY_SUBSCRIPTIONS"):
        await client.subscribe("room:b")


async def test_expect_returns_each_matching_event_once_in_order(
    eventwire_gateway: Gateway, eventwire_client: ClientFactory
) -> None:
    client = await eventwire_client()
    await client.subscribe(TOPIC)
    publisher = InProcessPublisher(eventwire_gateway)
    for name in ("a", "b", "c"):
        await publisher.added(TOPIC, entity_id=f"gift-{name}", payload={"name": name})
    await publisher.deleted(TOPIC, entity_id="gift-a")

    deleted = await client.expect(TOPIC, "DELETED")
    second = await client.expect(TOPIC, where=lambda e: e.payload == {"name": "b"})
    first = await client.expect(TOPIC, "ADDED")
    third = await client.expect(TOPIC)
    assert [e.seq for e in (first, second, third, deleted)] == [1, 2, 3, 4]
    assert len(client.received) == 4
    await client.expect_nothing(TOPIC, within=0.05)  # all four consumed


async def test_expect_waits_for_an_event_still_to_come(
    eventwire_gateway: Gateway, eventwire_client: ClientFactory
) -> None:
    client = await eventwire_client()
    await client.subscribe(TOPIC)
    publisher = InProcessPublisher(eventwire_gateway)

    @client.on(TOPIC, "ADDED")
    async def reply(event: object) -> None:
        await publisher.deleted(TOPIC, entity_id="gift-1")

    await publisher.added(TOPIC, entity_id="gift-1", payload={})
    assert (await client.expect(TOPIC, "DELETED")).seq == 2


async def test_expect_timeout_fails_with_what_was_received(
    eventwire_gateway: Gateway, eventwire_client: ClientFactory
) -> None:
    client = await eventwire_client()
    await client.subscribe(TOPIC)
    await InProcessPublisher(eventwire_gateway).added(TOPIC, entity_id="gift-456", payload={})
    await client.expect(TOPIC, "ADDED")

    with pytest.raises(AssertionError) as failed:
        await client.expect(TOPIC, "DELETED", timeout=0.1)
    message = str(failed.value)
    assert "expected DELETED on 'gift-list:123' within 0.1s" in message
    assert "received 1 event:" in message
    assert "#0 gift-list:123 ADDED seq=1 entity_id=gift-456" in message
    assert "(consumed)" in message


async def test_expect_nothing_fails_when_an_event_arrives(
    eventwire_gateway: Gateway, eventwire_client: ClientFactory
) -> None:
    client = await eventwire_client()
    await client.subscribe(TOPIC)
    await client.expect_nothing(TOPIC, within=0.05)
    await InProcessPublisher(eventwire_gateway).deleted(TOPIC, entity_id="gift-456")
    with pytest.raises(AssertionError, match="expected no DELETED on 'gift-list:123', got #0"):
        await client.expect_nothing(TOPIC, "DELETED")


async def test_running_gateway_without_pytest_fixtures() -> None:
    async with running_gateway(payload_warn=2048) as gateway:
        assert gateway.settings.payload_warn == 2048
        async with TestClient(gateway.ws_url) as client:
            await client.subscribe("room:lobby")
            await InProcessPublisher(gateway).emit("room:lobby", "USER_JOINED", entity_id="u1")
            assert (await client.expect("room:lobby", "USER_JOINED")).entity_id == "u1"
    assert gateway.stopping


# -- the plugin in a pytest session of its own -----------------------------------


def run_pytest(tmp_path: Path, test_source: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run pytest in a fresh process on one test file, warnings as errors."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_user.py").write_text(textwrap.dedent(test_source))
    command = [sys.executable, "-m", "pytest", "-W", "error", "-p", "no:cacheprovider", *args]
    return subprocess.run(
        [*command, "test_user.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )


def test_plugin_loads_quietly_without_pytest_asyncio(tmp_path: Path) -> None:
    source = """
        def test_unrelated():
            assert True

        def test_wants_a_gateway(eventwire_gateway):
            pass
    """
    result = run_pytest(tmp_path, source, "-p", "no:asyncio", "-rf")
    assert "1 passed, 1 error" in result.stdout, result.stdout + result.stderr
    assert "need pytest-asyncio" in result.stdout
    assert "warning" not in result.stdout.lower()


def test_fixtures_work_in_pytest_asyncio_strict_mode(tmp_path: Path) -> None:
    source = """
        import pytest
        from eventwire.client import InProcessPublisher

        @pytest.mark.asyncio
        async def test_round_trip(eventwire_gateway, eventwire_client):
            client = await eventwire_client()
            await client.subscribe("room:lobby")
            await InProcessPublisher(eventwire_gateway).emit("room:lobby", "PING_ME", entity_id="x")
            await client.expect("room:lobby", "PING_ME")
    """
    result = run_pytest(
        tmp_path,
        source,
        "-o",
        "asyncio_mode=strict",
        "-o",
        "asyncio_default_fixture_loop_scope=function",
    )
    assert "1 passed" in result.stdout, result.stdout + result.stderr
